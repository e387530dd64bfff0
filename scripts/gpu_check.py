#!/usr/bin/env python3
"""The device check behind scripts/gpu-check.sh: probe's GPU build against transformers on the
same machine, in one run.

(a) parity: the tiny Llama / Qwen2 / Mistral checkpoints of ../shared/reference, in f32 against
    the stored transformers outputs (bars 1e-4 relative on hidden states, 1e-3 on logits) and in
    bf16 against transformers run in bf16 on the same device (bar 2e-2 relative);
(b) a Llama-3.1-8B-shaped checkpoint with random weights, written in bf16 by transformers on the
    device (no download): hidden-state agreement at 0.6L..0.9L, tokens/s of probe's forward to
    0.9L with those hooks and of transformers' `output_hidden_states` forward for batch 16 x 256,
    peak GPU memory of both and probe's host peak RSS;
(c) `probe scale` throughput on that model (extract -> train -> vectors -> scale on the demo
    election and a slice of the persona grid) and the time the paper's full grid would take;
then one summary line, and everything in <out>/gpu-check.json.

    python3 scripts/gpu_check.py --device cuda --shape 8b --out /tmp/gpu-check
    python3 scripts/gpu_check.py --device torch-cpu --shape small --out /tmp/gpu-check   # no GPU
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {
    # Llama-3.1-8B: what the study runs.
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
               rms_norm_eps=1e-5),
    # The same proportions, small enough for libtorch on a CPU.
    "small": dict(hidden_size=512, intermediate_size=1792, num_hidden_layers=10,
                  num_attention_heads=8, num_key_value_heads=2, vocab_size=49152,
                  rms_norm_eps=1e-5),
}
# Llama 3.1's RoPE: theta 5e5 with the llama3 long-context rescaling.
LLAMA31_ROPE = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192}
PAPER_GRID_PROMPTS = 12_600 * 10  # personas x prompt variants (arXiv 2502.16280)


def log(msg):
    print(f"gpu-check: {msg}", flush=True)


def probe(args, cmd, **kw):
    """Runs probe through the launcher; returns its stderr (where probe reports)."""
    full = [str(args.probe)] + [str(c) for c in cmd]
    t0 = time.time()
    res = subprocess.run(full, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(full)} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    log(f"  {cmd[0]} ok in {time.time() - t0:.1f}s")
    return res.stderr


class GpuMemoryPoller:
    """Peak memory in use on the GPU while a command runs (nvidia-smi, every 0.2 s)."""

    def __init__(self, device):
        self.enabled = device.startswith("cuda")
        self.peak = 0
        self.base = self._used() if self.enabled else 0
        self._stop = threading.Event()

    def _used(self):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                capture_output=True, text=True, timeout=10).stdout
            return int(out.strip().splitlines()[0]) * 2**20
        except Exception:
            return 0

    def __enter__(self):
        if self.enabled:
            def run():
                while not self._stop.is_set():
                    self.peak = max(self.peak, self._used())
                    time.sleep(0.2)
            self._thread = threading.Thread(target=run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.enabled:
            self._thread.join()

    @property
    def used(self):
        return max(0, self.peak - self.base)


def rel_err(ours, ref, mask=None):
    """max |ours - ref| / max |ref| over real positions; also the norm-wise relative error."""
    if mask is not None:
        ours, ref = ours[mask.bool()], ref[mask.bool()]
    ours, ref = ours.double(), ref.double()
    return ((ours - ref).abs().max() / ref.abs().max()).item(), \
        ((ours - ref).norm() / ref.norm()).item()


def ids_args(ids, mask):
    out = []
    for row, m in zip(ids.tolist(), mask.tolist()):
        out += ["--ids", ",".join(str(t) for t, keep in zip(row, m) if keep)]
    return out


def hf_hidden(model, ids, mask, dtype):
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    coeffs = {}
    handles = [layer.mlp.down_proj.register_forward_hook(
        lambda mod, inp, out, l=l: coeffs.__setitem__(l, inp[0].float().cpu()))
        for l, layer in enumerate(model.model.layers)]
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                    output_hidden_states=True)
    for h in handles:
        h.remove()
    t = {"hook_embed": out.hidden_states[0].float().cpu(), "logits": out.logits.float().cpu()}
    for l in range(model.config.num_hidden_layers - 1):
        t[f"blocks.{l}.hook_resid_post"] = out.hidden_states[l + 1].float().cpu()
    for l, c in coeffs.items():
        t[f"blocks.{l}.mlp.hook_post"] = c
    return t


def check_parity(args, dev):
    from transformers import AutoModelForCausalLM
    results = {}
    for name in ["tiny-llama", "tiny-qwen2", "tiny-mistral"]:
        d = args.reference / name
        ref = load_file(d / "reference.safetensors")
        ids, mask = ref["input_ids"], ref["attention_mask"]
        L = json.loads((d / "config.json").read_text())["num_hidden_layers"]
        hooks = "hook_embed; blocks.*.hook_resid_post; blocks.*.mlp.hook_post"
        row = {}
        for dtype in ["f32", "bf16"]:
            out = args.out / f"{name}-{dtype}.safetensors"
            probe(args, ["run-with-cache", d, "--device", args.device, "--dtype", dtype,
                         "--hooks", hooks, "--logits", "all", "--out", out] + ids_args(ids, mask))
            ours = load_file(out)
            if dtype == "f32":
                want = {k.replace("embed", "hook_embed") if k == "embed" else k: v
                        for k, v in ref.items()}
            else:
                m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16).to(dev).eval()
                want = hf_hidden(m, ids.to(dev), mask.to(dev), torch.bfloat16)
                del m
            worst, logits = 0.0, 0.0
            for k, v in want.items():
                if k in ("input_ids", "attention_mask") or k not in ours and k != "logits":
                    continue
                if k == "logits":
                    logits = ((ours["logits"] - v)[mask.bool()]).abs().max().item()
                    continue
                worst = max(worst, rel_err(ours[k], v, mask)[0])
            bar_h, bar_l = (1e-4, 1e-3) if dtype == "f32" else (2e-2, 5e-2)
            ok = worst <= bar_h and logits <= bar_l
            row[dtype] = dict(hidden_rel=worst, logits_abs=logits, ok=ok)
            log(f"(a) {name} {dtype}: hidden rel {worst:.2e} (bar {bar_h:g}), logits abs "
                f"{logits:.2e} (bar {bar_l:g}) {'ok' if ok else 'FAIL'}")
        results[name] = row
    return results


def build_checkpoint(args, dev):
    from transformers import LlamaConfig, LlamaForCausalLM
    shape = SHAPES[args.shape]
    path = args.out / f"llama-{args.shape}-random"
    config = LlamaConfig(**shape, rope_parameters=dict(LLAMA31_ROPE),
                         max_position_embeddings=131072, tie_word_embeddings=False,
                         bos_token_id=1, eos_token_id=2, torch_dtype="bfloat16")
    torch.manual_seed(0)
    t0 = time.time()
    with torch.device(dev):
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    if not (path / "config.json").exists():
        model.save_pretrained(path)
        source = ROOT / args.tokenizer_from
        if source.suffix == ".json":
            (path / "tokenizer.json").write_bytes(source.read_bytes())
        else:  # a GGUF: probe rebuilds its tokenizer
            subprocess.run([str(args.probe), "inspect", source, "--save-tokenizer",
                            path / "tokenizer.json"], check=True, capture_output=True)
    n_params = sum(p.numel() for p in model.parameters())
    # The reference is the checkpoint as users load it: a model cast with `.to(bfloat16)` also
    # rounds its RoPE frequencies (a buffer) to bf16, which `from_pretrained` keeps in f32.
    del model
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).to(dev).eval()
    log(f"(b) {args.shape}-shaped checkpoint ({n_params / 1e9:.2f} B parameters, bf16) in "
        f"{time.time() - t0:.0f}s at {path}")
    return model, path


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def time_transformers(model, dev, batch, seq, reps):
    ids = torch.randint(0, model.config.vocab_size, (batch, seq), device=dev)
    res = {}
    for label, fn in [("with_lm_head", model), ("base_model", model.model)]:
        with torch.no_grad():
            fn(input_ids=ids, output_hidden_states=True)  # warm-up
            sync(dev)
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            t0 = time.time()
            for _ in range(reps):
                fn(input_ids=ids, output_hidden_states=True)
            sync(dev)
        secs = (time.time() - t0) / reps
        res[label] = dict(tokens_per_second=batch * seq / secs,
                          peak_gpu_bytes=torch.cuda.max_memory_allocated() if dev.type == "cuda" else None)
        log(f"(b) transformers bf16 output_hidden_states ({label}): {batch * seq / secs:,.0f} tok/s")
    return res


def check_large(args, dev):
    model, path = build_checkpoint(args, dev)
    cfg = model.config
    L = cfg.num_hidden_layers
    # Agreement on 4 fixed prompts, all positions.
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, cfg.vocab_size, (4, args.seq), generator=g)
    mask = torch.ones_like(ids)
    # Each block's output (transformers' last hidden state has the final norm applied, so
    # the blocks' own outputs are taken with hooks).
    want = {}
    handles = [model.model.layers[l].register_forward_hook(
        lambda mod, inp, out, l=l: want.__setitem__(l, (out[0] if isinstance(out, tuple) else out).float().cpu()))
        for l in range(L)]
    with torch.no_grad():
        model(input_ids=ids.to(dev))
    for h in handles:
        h.remove()
    out = args.out / "large-hooks.safetensors"
    hooks = "blocks.{0.6L..0.9L}.hook_resid_post"
    probe(args, ["run-with-cache", path, "--device", args.device, "--dtype", "bf16",
                 "--hooks", hooks, "--out", out] + ids_args(ids, mask))
    ours = load_file(out)
    layers = sorted(int(k.split(".")[1]) for k in ours if k.endswith("hook_resid_post"))
    worst_max, worst_norm = 0.0, 0.0
    for l in layers:
        mx, nm = rel_err(ours[f"blocks.{l}.hook_resid_post"], want[l])
        worst_max, worst_norm = max(worst_max, mx), max(worst_norm, nm)
    log(f"(b) hidden states at blocks {layers[0]}..{layers[-1]}: max rel {worst_max:.2e}, "
        f"norm rel {worst_norm:.2e} (bar 2e-2)")
    hf = time_transformers(model, dev, args.batch, args.seq, args.reps)
    del model, want
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    # probe: the same batch shape, forward to 0.9L with the hooks, reduced on the device.
    timing = args.out / "probe-timing.json"
    with GpuMemoryPoller(args.device) as mem:
        probe(args, ["run-with-cache", path, "--device", args.device, "--dtype", "bf16",
                     "--hooks", hooks, "--reduce", "mean", "--random-prompts",
                     args.batch * (args.reps + 1), "--seq-len", args.seq, "--batch-size",
                     args.batch, "--out", args.out / "probe-timing.safetensors",
                     "--timing-json", timing])
    t = json.loads(timing.read_text())
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    ratio = t["steady_tokens_per_second"] / hf["with_lm_head"]["tokens_per_second"]
    ratio_base = t["steady_tokens_per_second"] / hf["base_model"]["tokens_per_second"]
    log(f"(b) probe bf16 forward to 0.9L with hooks: {t['steady_tokens_per_second']:,.0f} tok/s "
        f"= {ratio:.2f}x transformers ({ratio_base:.2f}x its base model without lm_head); "
        f"peak GPU {mem.used / 1e9:.1f} GB; host peak RSS {rss / 1e9:.2f} GB")
    largest = 2 * max(cfg.vocab_size * cfg.hidden_size, cfg.hidden_size * cfg.intermediate_size)
    return dict(path=str(path), layers=[layers[0], layers[-1]], hidden_max_rel=worst_max,
                hidden_norm_rel=worst_norm, hidden_ok=worst_max <= 2e-2 or worst_norm <= 2e-2,
                transformers=hf, probe=t, ratio=ratio, ratio_vs_base_model=ratio_base,
                probe_peak_gpu_bytes=mem.used if mem.enabled else None,
                probe_host_peak_rss_bytes=rss,
                host_rss_bar_bytes=int(3e9) + largest)


def check_scale(args, path):
    work = args.out / "scale"
    election = ROOT / "data/demo/wahl-o-mat/2099-demowahl"
    common = ["--device", args.device, "--dtype", "bf16"]
    probe(args, ["train", path, "--election", election, "--parties", "SA,ÖU,FB,LM,KBP,HL",
                 "--templates", "de-quiz,en-short", "--folds", "3", "--out", work / "cache",
                 "--probes-dir", work / "probes"] + common)
    runs = sorted((work / "probes").glob("*/*"))
    run = runs[0]
    probe(args, ["vectors", path, "--probes", run] + common)
    where = ["--where", f"age={args.scale_age}"] + [x for w in args.scale_where for x in ("--where", w)]
    err = probe(args, ["scale", path, "--probes", run, "--batch-size", args.scale_batch]
                + where + common)
    line = [l for l in err.splitlines() if "prompts/s" in l][-1]
    rate = float(line.split("prompts/s")[0].split()[-1])
    hours = PAPER_GRID_PROMPTS / rate / 3600
    log(f"(c) probe scale: {line.strip()} -> the paper's grid ({PAPER_GRID_PROMPTS:,} prompts) "
        f"in {hours:.1f} h on this device")
    return dict(line=line.strip(), prompts_per_second=rate, paper_grid_hours=hours)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--probe", type=Path, default=ROOT / "scripts/probe-gpu")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--shape", default="8b", choices=sorted(SHAPES))
    ap.add_argument("--reference", type=Path, default=ROOT.parent / "shared/reference")
    ap.add_argument("--tokenizer-from", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--out", type=Path, default=Path("/tmp/probe-gpu-check"))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale-age", default="45-54")
    ap.add_argument("--scale-where", action="append", default=[])
    ap.add_argument("--scale-batch", type=int, default=32)
    ap.add_argument("--skip", action="append", default=[], choices=["parity", "large", "scale"])
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dev = torch.device("cuda:0" if args.device.startswith("cuda") else "cpu")
    gpu = torch.cuda.get_device_name(0) if dev.type == "cuda" else "none (libtorch CPU)"
    report = dict(date=time.strftime("%Y-%m-%d"), device=args.device, gpu=gpu,
                  torch=torch.__version__, shape=args.shape)
    log(f"device {args.device} ({gpu}), PyTorch {torch.__version__}, shape {args.shape}")
    t0 = time.time()
    if "parity" not in args.skip:
        report["parity"] = check_parity(args, dev)
    if "large" not in args.skip or "scale" not in args.skip:
        large = check_large(args, dev)
        report["large"] = large
        if "scale" not in args.skip:
            report["scale"] = check_scale(args, large["path"])
    report["seconds"] = time.time() - t0
    (args.out / "gpu-check.json").write_text(json.dumps(report, indent=2))
    parity_ok = all(r["ok"] for m in report.get("parity", {}).values() for r in m.values())
    large = report.get("large", {})
    scale = report.get("scale", {})
    summary = (f"gpu-check: {gpu} torch {torch.__version__} | parity {'ok' if parity_ok else 'FAIL'}"
               + (f" | {args.shape} bf16: hidden rel {large['hidden_max_rel']:.1e} (norm "
                  f"{large['hidden_norm_rel']:.1e}), probe {large['probe']['steady_tokens_per_second']:,.0f} "
                  f"tok/s = {large['ratio']:.2f}x transformers ({large['ratio_vs_base_model']:.2f}x without lm_head), "
                  f"host RSS {large['probe_host_peak_rss_bytes'] / 1e9:.2f} GB"
                  + (f", peak GPU {large['probe_peak_gpu_bytes'] / 1e9:.1f} GB" if large.get('probe_peak_gpu_bytes') else "")
                  if large else "")
               + (f" | scale {scale['prompts_per_second']:.1f} prompts/s, paper grid "
                  f"{scale['paper_grid_hours']:.1f} h" if scale else "")
               + f" | {report['seconds']:.0f}s")
    print(summary)
    (args.out / "summary.txt").write_text(summary + "\n")
    sys.exit(0 if parity_ok and large.get("hidden_ok", True) else 1)


if __name__ == "__main__":
    main()
