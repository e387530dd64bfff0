"""Python side of scripts/bench-python: in one process, `probe.Model.run_with_cache` and
transformers' plain forward (`output_hidden_states=True`) on the same work as
scripts/bench-forward: SmolLM2-135M-Instruct, 16 × 64-token batches of random ids, the
residual stream after blocks 18..27 averaged over positions, THREADS threads. Between the
Python reps the CLI's `probe run-with-cache` runs on the same shapes (a subprocess).
Prints one line per rep, then medians and ratios.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

gguf, batches, threads, reps, probe_bin = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
os.environ["RAYON_NUM_THREADS"] = str(threads)  # read by probe's thread pool when it starts

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

import probe  # noqa: E402

torch.set_num_threads(threads)
probe.set_progress(False)
BATCH, SEQ, HOOKS = 16, 64, "blocks.{18..=27}.hook_resid_post"
n = BATCH * batches

models = {dtype: probe.Model(gguf, dtype=dtype) for dtype in ["f32", "native"]}
vocab = models["f32"].config["vocab_size"]
ids = np.random.default_rng(1).integers(0, vocab, size=(n, SEQ)).tolist()
hf = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf) or ".", gguf_file=os.path.basename(gguf), dtype=torch.float32)
hf.eval()
mask = torch.ones(BATCH, SEQ, dtype=torch.long)
tensors = [torch.tensor(ids[i:i + BATCH]) for i in range(0, n, BATCH)]


def python_probe(dtype):
    start = time.perf_counter()
    acts = models[dtype].run_with_cache(ids, hooks=HOOKS, reduce="mean", batch_size=BATCH)
    secs = time.perf_counter() - start  # the whole call: tokens in, numpy arrays out
    assert acts["blocks.27.hook_resid_post"].shape == (n, 576)
    return n * SEQ / secs


def transformers_plain():
    with torch.inference_mode():
        start = time.perf_counter()
        for t in tensors:
            out = hf(input_ids=t, attention_mask=mask, output_hidden_states=True)
            [h.mean(dim=1) for h in out.hidden_states[19:29]]
        secs = time.perf_counter() - start
    return n * SEQ / secs


def cli(dtype, tmp):
    timing = os.path.join(tmp, "timing.json")
    subprocess.run(
        [probe_bin, "run-with-cache", gguf, "--random-prompts", str(n), "--seq-len", str(SEQ), "--seed", "1",
         "--hooks", HOOKS, "--reduce", "mean", "--batch-size", str(BATCH), "--dtype", dtype,
         "--out", os.path.join(tmp, "acts.safetensors"), "--timing-json", timing],
        check=True, capture_output=True, env={**os.environ, "RAYON_NUM_THREADS": str(threads)},
    )
    return json.load(open(timing))["tokens_per_second"]


# warm-up: one batch each
models["f32"].run_with_cache(ids[:BATCH], hooks=HOOKS, reduce="mean")
models["native"].run_with_cache(ids[:BATCH], hooks=HOOKS, reduce="mean")
with torch.inference_mode():
    hf(input_ids=tensors[0], attention_mask=mask, output_hidden_states=True)

runs = {k: [] for k in ["py-f32", "cli-f32", "py-native", "cli-native", "transformers"]}
with tempfile.TemporaryDirectory() as tmp:
    for rep in range(reps):  # alternate: the VM's speed drifts
        runs["py-f32"].append(python_probe("f32"))
        runs["cli-f32"].append(cli("f32", tmp))
        runs["transformers"].append(transformers_plain())
        runs["py-native"].append(python_probe("native"))
        runs["cli-native"].append(cli("native", tmp))
        print(f"rep {rep + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in runs.items()), flush=True)

med = {k: statistics.median(v) for k, v in runs.items()}
print(f"medians of {reps} alternating reps, tokens/s ({n} prompts × {SEQ} tokens, {threads} threads, torch {torch.__version__}):")
for k, v in med.items():
    print(f"  {k:<13} {v:8.1f}")
print(f"python/cli f32 {med['py-f32'] / med['cli-f32']:.2f}  native {med['py-native'] / med['cli-native']:.2f}  (target >= 1.0)")
print(f"python/transformers plain: f32 {med['py-f32'] / med['transformers']:.2f}  native {med['py-native'] / med['transformers']:.2f}  (target >= 1.0)")
