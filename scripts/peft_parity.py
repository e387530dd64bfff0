"""An adapter trained by `probe finetune` loads in PEFT and gives probe's logits.

1. Builds a tiny random Llama with SmolLM2's tokenizer and chat template (transformers,
   seeded), so `probe finetune` can prompt it with the demo survey; with ARCH `gemma3`, a
   tiny random Gemma 3 (GeGLU, sandwich and q/k norms, sliding layers) with Gemma's tokenizer
   from the Gemma 3 270M GGUF, prompted without a chat template.
2. `probe finetune` trains a LoRA adapter on it for a few steps (a large learning rate, so the
   adapter moves far from its B = 0 start).
3. `probe run-with-cache --adapter` (on the fly, and `--merge-adapter`) writes logits of every
   position of three left-padded prompts.
4. transformers + PEFT: `PeftModel.from_pretrained(base, adapter)` on the same token ids and
   attention mask; the logits must agree to 1e-4 (max |Δ| over the logits' scale), and differ
   clearly from the base model's.

Usage: peft_parity.py PROBE_BIN GGUF WORKDIR [ARCH]   (ARCH: llama, the default, or gemma3)
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
from peft import PeftModel
from safetensors.numpy import load_file
from transformers import (AutoModelForCausalLM, AutoTokenizer, Gemma3ForCausalLM,
                          Gemma3TextConfig, LlamaConfig, LlamaForCausalLM)

probe, gguf, work = sys.argv[1], sys.argv[2], sys.argv[3]
arch = sys.argv[4] if len(sys.argv) > 4 else "llama"
work = os.path.join(work, arch)
os.makedirs(work, exist_ok=True)
tiny = os.path.join(work, "tiny")
torch.manual_seed(0)
tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(gguf) or ".", gguf_file=os.path.basename(gguf))
sizes = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
             tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
             eos_token_id=tokenizer.eos_token_id)
if arch == "gemma3":
    # a window shorter than the prompts; norm weights random, so 1 + w matters
    config = Gemma3TextConfig(**sizes, num_hidden_layers=3, head_dim=16, sliding_window=4,
                              query_pre_attn_scalar=16, layer_types=["sliding_attention",
                              "full_attention", "sliding_attention"], pad_token_id=0)
    model = Gemma3ForCausalLM(config).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.normal_(0.0, 0.3)
    chat = ["--no-chat"]
else:
    config = LlamaConfig(**sizes, num_hidden_layers=2, rms_norm_eps=1e-5)
    model = LlamaForCausalLM(config).float().eval()
    chat = []
model.save_pretrained(tiny, safe_serialization=True)
tokenizer.save_pretrained(tiny)

ft = os.path.join(work, "finetune")
subprocess.run([probe, "finetune", tiny, "--survey", "data/demo", "--limit", "6",
                "--validation-limit", "2", "--max-steps", "3", "--batch-size", "4", "--lr", "0.05",
                "--rank", "4", "--alpha", "8", "--out", ft, "--overwrite"] + chat, check=True)
adapter = os.path.join(ft, "adapter")
prompts = ["Which party will you vote for?", "Hello", "Where would you place yourself on a scale?"]
outputs = {}
for name, extra in [("on_the_fly", []), ("merged", ["--merge-adapter"]), ("base", None)]:
    path = os.path.join(work, f"{name}.safetensors")
    args = [probe, "run-with-cache", tiny, "--dtype", "f32", "--hooks", "blocks.0.hook_resid_post",
            "--logits", "all", "-o", path]
    if extra is not None:
        args += ["--adapter", adapter] + extra
    for p in prompts:
        args += ["-p", p]
    subprocess.run(args, check=True, capture_output=True)
    outputs[name] = load_file(path)

ids = torch.tensor(outputs["on_the_fly"]["input_ids"].astype(np.int64))
mask = torch.tensor(outputs["on_the_fly"]["attention_mask"].astype(np.int64))
base = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32,
                                            attn_implementation="eager").eval()
with torch.no_grad():
    base_logits = base(input_ids=ids, attention_mask=mask).logits.numpy()
peft_model = PeftModel.from_pretrained(base, adapter).eval()
with torch.no_grad():
    peft_logits = peft_model(input_ids=ids, attention_mask=mask).logits.numpy()
real = mask.numpy().astype(bool)
scale = np.abs(peft_logits[real]).max()
report = {"logit_scale": float(scale)}
for name in ["on_the_fly", "merged", "base"]:
    ours = outputs[name]["logits"]
    report[name] = float(np.abs(ours[real] - (base_logits if name == "base" else peft_logits)[real]).max() / scale)
report["adapter_moves_logits"] = float(np.abs(peft_logits[real] - base_logits[real]).max() / scale)
print(json.dumps(report))
assert report["on_the_fly"] <= 1e-4, report
assert report["merged"] <= 1e-4, report
assert report["base"] <= 1e-4, report
assert report["adapter_moves_logits"] > 1e-2, report
print(f"peft parity ({arch}): probe's adapter gives PEFT's logits (on the fly and merged) to 1e-4")
