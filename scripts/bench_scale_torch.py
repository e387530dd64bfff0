"""Reference side of scripts/bench-scale: the MLP coefficients `probe scale` reads, computed by
PyTorch/transformers on the same model and the same persona prompts.

Renders the persona prompts exactly as `probe scale` does (spec + templates + --where filter,
persona-major, variants in the given order), runs them in left-padded batches through the
decoder blocks, and keeps the input of `mlp.down_proj` (= act(gate) * up = mlp.hook_post) at
the last token of the given layers, via forward hooks. Prints one JSON line with the timing;
with --save, also an .npy of the coefficients `[prompts, layers, intermediate]` (for parity
checks against the probe cache).

usage: bench_scale_torch.py GGUF SPEC PROMPTS --variants a,b --where attr=v1,v2 ... --layers 0,1,... --threads 2 [--limit N]
"""
import argparse
import itertools
import json
import os
import time
import tomllib

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def render_prompts(spec_path, prompts_path, variants, where):
    spec = tomllib.load(open(spec_path, "rb"))
    templates = {t["id"]: t for t in tomllib.load(open(prompts_path, "rb"))["template"]}
    keep = {}
    for clause in where:
        attr, values = clause.split("=", 1)
        keep.setdefault(attr, set()).update(v for v in values.split(",") if v)
    attrs = spec["attribute"]
    choices = [[v for v in a["values"] if a["name"] not in keep or v["id"] in keep[a["name"]]] for a in attrs]
    chosen = [templates[v] for v in variants] if variants else list(templates.values())
    out = []
    for combo in itertools.product(*choices):
        for t in chosen:
            lang = t["language"]
            texts = {a["name"]: v[lang] for a, v in zip(attrs, combo)}
            description = spec["description"][lang].format(**texts)
            out.append(t["text"].format(persona=description, **texts))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("spec")
    ap.add_argument("prompts")
    ap.add_argument("--variants", default="")
    ap.add_argument("--where", action="append", default=[])
    ap.add_argument("--layers", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--save")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    prompts = render_prompts(args.spec, args.prompts, [v for v in args.variants.split(",") if v], args.where)
    if args.limit:
        prompts = prompts[: args.limit]
    d, f = os.path.dirname(args.gguf) or ".", os.path.basename(args.gguf)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model.eval()
    layers = [int(x) for x in args.layers.split(",")]
    inner = model.model
    captured = {}

    def hook(layer):
        def fn(module, inputs):
            captured[layer] = inputs[0][:, -1, :].clone()
        return fn

    handles = [inner.layers[l].mlp.down_proj.register_forward_pre_hook(hook(l)) for l in layers]
    # Same work as probe: blocks up to the last needed layer, no final norm or lm_head.
    last = max(layers)
    blocks = inner.layers[: last + 1]
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    saved = []
    tokens = 0
    start = time.perf_counter()
    with torch.inference_mode():
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        for b in range(0, len(order), args.batch):
            idx = order[b : b + args.batch]
            enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            ids, mask = enc["input_ids"], enc["attention_mask"]
            tokens += int(mask.sum())
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            x = inner.embed_tokens(ids)
            pe = inner.rotary_emb(x, pos)
            n = ids.shape[1]
            allowed = torch.ones(n, n, dtype=torch.bool).tril()[None, None] & (mask[:, None, None, :] == 1)
            # The dtype's minimum, not -inf: fully masked (pad) query rows stay finite.
            attn = torch.where(allowed, 0.0, torch.finfo(torch.float32).min)
            for block in blocks:
                x = block(x, attention_mask=attn, position_ids=pos, position_embeddings=pe)
                if isinstance(x, tuple):
                    x = x[0]
            if args.save:
                saved.append((idx, torch.stack([captured[l] for l in layers], 1)))
    seconds = time.perf_counter() - start
    for h in handles:
        h.remove()
    if args.save:
        import numpy as np
        out = np.zeros((len(prompts), len(layers), saved[0][1].shape[-1]), dtype=np.float32)
        for idx, t in saved:
            out[idx] = t.numpy()
        np.save(args.save, out)
    print(json.dumps({"prompts": len(prompts), "tokens": tokens, "seconds": seconds,
                      "prompts_per_s": len(prompts) / seconds, "tok_per_s": tokens / seconds,
                      "threads": args.threads, "batch": args.batch, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
