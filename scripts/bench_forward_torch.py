"""Reference side of scripts/bench-forward: PyTorch/transformers on the same model, shapes and
threads as `probe run-with-cache`.

(a) the plain forward users run: model(ids, output_hidden_states=True) — all blocks + lm_head;
(b) the same minimal work probe does: blocks 0..27 only, no final norm or lm_head, keeping the
    residual stream after blocks 18..27 and its mean over positions.
Prints one JSON line.
"""
import json
import sys
import time

import torch
from transformers import AutoModelForCausalLM

gguf_path, batch, seq, n_batches, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
import os
model = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf_path) or ".", gguf_file=os.path.basename(gguf_path), dtype=torch.float32)
model.eval()
vocab = model.config.vocab_size
gen = torch.Generator().manual_seed(0)
inputs = [torch.randint(0, vocab, (batch, seq), generator=gen) for _ in range(n_batches + 1)]
mask = torch.ones(batch, seq, dtype=torch.long)


def plain(ids):
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    return [h.mean(dim=1) for h in out.hidden_states[19:29]]


inner = model.model
layers = inner.layers


def minimal(ids):
    x = inner.embed_tokens(ids)
    pos = torch.arange(seq).unsqueeze(0).expand(batch, -1)
    pe = inner.rotary_emb(x, pos)
    kept = []
    for i, layer in enumerate(layers[:28]):
        out = layer(x, attention_mask=None, position_ids=pos, position_embeddings=pe)
        x = out[0] if isinstance(out, tuple) else out
        if i >= 18:
            kept.append(x.mean(dim=1))
    return kept


def bench(fn):
    with torch.inference_mode():
        fn(inputs[0])  # warm-up
        start = time.perf_counter()
        for ids in inputs[1:]:
            fn(ids)
        secs = time.perf_counter() - start
    return batch * seq * n_batches / secs


# `minimal` relies on the causal mask being implied: check it against the plain forward once.
with torch.inference_mode():
    ref = plain(inputs[0])
    got = minimal(inputs[0])
    err = max((a - b).abs().max().item() for a, b in zip(ref, got))
    if err > 1e-3:
        raise SystemExit(f"minimal forward disagrees with plain forward by {err}: causal mask not applied?")

result = {"torch": torch.__version__, "threads": threads, "plain_tok_s": bench(plain), "minimal_tok_s": bench(minimal)}
print(json.dumps(result))
