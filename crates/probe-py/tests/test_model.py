"""probe.Model against transformers' reference tensors and against the `probe` CLI."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

import probe

# the parity bars of crates/probe-lm/tests/parity.rs (../shared/reference/README.md)
HIDDEN_MAX_REL = 1e-4
LOGITS_MAX_ABS = 1e-3
LAYERS = range(18, 28)  # 0.6L..0.9L of SmolLM2's 30 blocks


def test_run_with_cache_matches_transformers_on_a_left_padded_batch(model_f32, reference):
    prompts = json.loads((reference / "smollm2-135m-prompts.json").read_text())
    ref = load_file(str(reference / "smollm2-135m-leftpad-batch.safetensors"))
    acts = model_f32.run_with_cache(prompts["prompts"], reduce=None, logits="last")
    # same tokens (the reference pads with id 2, probe with its pad id: compare real tokens)
    mask = ref["attention_mask"].astype(bool)
    assert np.array_equal(acts["attention_mask"].astype(bool), mask)
    assert np.array_equal(acts["input_ids"][mask], ref["input_ids"][mask])
    assert acts["input_ids"][mask].tolist() == sum(prompts["token_ids"], [])
    for layer in LAYERS:
        name = f"blocks.{layer}.hook_resid_post"
        ours, theirs = acts[name][mask], ref[name][mask]
        assert ours.dtype == np.float32 and ours.shape == theirs.shape
        rel = np.abs(ours - theirs).max() / np.abs(theirs).max()
        assert rel <= HIDDEN_MAX_REL, f"{name}: relative error {rel:.2e}"
    logits = acts["logits"]
    assert logits.shape == (3, 49152)
    assert np.abs(logits - ref["logits"][:, -1, :]).max() <= LOGITS_MAX_ABS


def test_reduce_last_and_mean_are_the_positions_of_the_full_tensor(model):
    prompts = ["Hallo Welt", "Wie stimmen Sie bei der Bundestagswahl ab?"]
    hook = "blocks.20.hook_resid_post"
    full = model.run_with_cache(prompts, hooks=hook)
    last = model.run_with_cache(prompts, hooks=hook, reduce="last")
    mean = model.run_with_cache(prompts, hooks=hook, reduce="mean")
    mask = full["attention_mask"].astype(bool)
    for i in range(len(prompts)):
        real = full[hook][i][mask[i]]
        np.testing.assert_allclose(last[hook][i], real[-1], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(mean[hook][i], real.mean(axis=0), rtol=1e-4, atol=1e-4)
    assert np.all(full[hook][~mask] == 0), "padding positions are zero"


def test_run_with_cache_equals_the_cli_bit_for_bit(model, cli, tmp_path):
    prompts = ["Die Rente muss steigen.", "Tempolimit auf Autobahnen", "Ja"]
    hooks = "blocks.{0.6L..0.9L}.hook_resid_post; blocks.25.mlp.hook_post"
    for reduce in ["last", None]:
        out = tmp_path / f"cli-{reduce}.safetensors"
        args = ["run-with-cache", model.path, "--hooks", hooks, "--out", out]
        args += ["--reduce", reduce or "none"]
        for p in prompts:
            args += ["--prompt", p]
        cli(*args)
        theirs = load_file(str(out))
        ours = model.run_with_cache(prompts, hooks=hooks, reduce=reduce)
        assert sorted(ours) == sorted(theirs)
        for name in ours:
            assert np.array_equal(ours[name], theirs[name]), name


def test_token_ids_and_lists_of_ids_are_accepted(model):
    ids = model.to_tokens("The capital of France is")
    assert ids.dtype == np.int64
    a = model.run_with_cache(["The capital of France is"], hooks="blocks.3.hook_resid_post")
    b = model.run_with_cache([ids.tolist()], hooks="blocks.3.hook_resid_post")
    assert np.array_equal(a["blocks.3.hook_resid_post"], b["blocks.3.hook_resid_post"])


def test_tokens_and_generation_match_transformers(model_f32, reference):
    prompts = json.loads((reference / "smollm2-135m-prompts.json").read_text())
    for text, ids in zip(prompts["prompts"], prompts["token_ids"]):
        assert model_f32.to_tokens(text).tolist() == ids
        pieces = model_f32.to_str_tokens(text)
        assert len(pieces) == len(ids) and "".join(pieces) == text
    texts = model_f32.generate(prompts["prompts"], max_new_tokens=12)
    assert texts == [prompts["greedy_12"][p] for p in prompts["prompts"]]
    assert model_f32.generate(prompts["prompts"][0], max_new_tokens=12) == texts[0]


def test_errors_are_probe_errors_with_the_cli_messages(model, cli, tmp_path):
    missing = tmp_path / "nope.gguf"
    done = cli("generate", missing, "x", check=False)
    assert done.returncode == 1
    with pytest.raises(probe.ProbeError) as err:
        probe.Model(str(missing))
    assert done.stderr.strip() == f"error: {err.value}"
    with pytest.raises(probe.ProbeError, match="hooks"):
        model.run_with_cache(["x"], hooks="blocks.99.hook_resid_post")
    with pytest.raises(ValueError, match="reduce"):
        model.run_with_cache(["x"], reduce="median")
    with pytest.raises(probe.ProbeError, match="no input"):
        model.run_with_cache([])


def test_long_calls_release_the_gil(model):
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    thread = threading.Thread(target=count)
    thread.start()
    model.run_with_cache(["Wie stimmen Sie ab?"] * 64, hooks="blocks.29.hook_resid_post")
    stop.set()
    thread.join()
    assert len(ticks) > 50, f"the other thread ran {len(ticks)} times during the forward"


def test_ctrl_c_stops_a_long_call_and_the_model_stays_usable(gguf, root):
    script = textwrap.dedent(f"""
        import signal, sys, time, probe
        # A suite started in the background inherits SIGINT ignored, and Python then installs
        # no KeyboardInterrupt handler: install it, as an interactive session has it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        probe.set_progress(False)
        m = probe.Model({str(gguf)!r})
        print("ready", flush=True)
        start = time.time()
        try:
            m.run_with_cache([[1] * 64] * 4000, hooks="blocks.29.hook_resid_post", batch_size=4)
            print("finished", flush=True)
        except KeyboardInterrupt:
            print(f"interrupted {{time.time() - start:.2f}}", flush=True)
        out = m.run_with_cache(["again"], hooks="blocks.1.hook_resid_post", reduce="last")
        print("usable", out["blocks.1.hook_resid_post"].shape, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=root)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()  # not left running on the CI machine's cores
        raise
    lines = out.splitlines()
    assert lines[0].startswith("interrupted"), out
    assert time.time() - sent < 10, "the interrupt took effect within a few batches"
    assert lines[1] == "usable (1, 576)", out
