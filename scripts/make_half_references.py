#!/usr/bin/env python3
"""Half-precision references for the tiny checkpoints of ../shared/reference, made with
transformers on the CPU:

  bf16 / f16  the model loaded in that dtype: weights and compute in half precision (what a
              GPU run computes; probe's `compute` override checks the same code path on the CPU)
  bf16w       weights rounded to bf16, computing in f32 (probe's `--dtype bf16` on the CPU)

Inputs are the shared references' (a batch of 2, the second left-padded). Each variant stores,
as f32: `embed`, `blocks.{l}.hook_resid_post` (l < L-1), `blocks.{l}.mlp.hook_post`, `logits`.

  .venv-torch/bin/python scripts/make_half_references.py ../shared/reference crates/probe-lm/tests/fixtures/half [NAME...]

NAMEs (default: all) are tiny-llama, tiny-qwen2, tiny-mistral (in ../shared/reference) and
tiny-gemma2, tiny-gemma3 (in crates/probe-lm/tests/fixtures, beside `half/`).
"""
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM


def run(model, ids, mask):
    L = model.config.num_hidden_layers
    coeffs = {}
    handles = [
        layer.mlp.down_proj.register_forward_hook(
            lambda mod, inp, out, l=l: coeffs.__setitem__(l, inp[0].detach().float())
        )
        for l, layer in enumerate(model.model.layers)
    ]
    # Positions count from each sequence's first real token, as probe and generation do.
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                    output_hidden_states=True)
    for h in handles:
        h.remove()
    t = {"embed": out.hidden_states[0].float(), "logits": out.logits.float()}
    for l in range(L - 1):
        t[f"blocks.{l}.hook_resid_post"] = out.hidden_states[l + 1].float()
    for l in range(L):
        t[f"blocks.{l}.mlp.hook_post"] = coeffs[l]
    return t


def main(ref_dir, out_dir, names):
    torch.manual_seed(0)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in names or ["tiny-llama", "tiny-qwen2", "tiny-mistral", "tiny-gemma2", "tiny-gemma3"]:
        d = (out_dir.parent if "gemma" in name else ref_dir) / name
        r = load_file(d / "reference.safetensors")
        ids, mask = r["input_ids"], r["attention_mask"]
        tensors = {"input_ids": ids, "attention_mask": mask}
        for variant, dtype in [("bf16", torch.bfloat16), ("f16", torch.float16)]:
            model = AutoModelForCausalLM.from_pretrained(d, dtype=dtype).eval()
            for k, v in run(model, ids, mask).items():
                tensors[f"{variant}/{k}"] = v.contiguous()
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(torch.bfloat16).float())
        for k, v in run(model, ids, mask).items():
            tensors[f"bf16w/{k}"] = v.contiguous()
        save_file(tensors, out_dir / f"{name}.safetensors",
                  metadata={"made_by": "scripts/make_half_references.py",
                            "torch": torch.__version__})
        print(f"{name}: {len(tensors)} tensors")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
