#!/usr/bin/env python3
"""Writes a GGUF of a real model's shape with random weights, quantized as llama.cpp's Q4_K_M
files are (Q4_K matrices, Q6_K for the attention values, the FFN down-projections of every
other block and the tied embedding; F32 norms), with the embedded SmolLM2 model's tokenizer,
for memory and speed checks of models larger than SmolLM2 (no download: the blocks are random
but well formed, their scales drawn so activations stay finite).

    .venv-torch/bin/python scripts/make_large_gguf.py llama-1b out/llama-1b-q4k.gguf
    .venv-torch/bin/python scripts/make_large_gguf.py llama-8b out/llama-8b-q4k.gguf

Shapes: `llama-1b` (Llama 3.2 1B's blocks: 16 × hidden 2048, 32/8 heads, FFN 8192; SmolLM2's
49,152-token vocabulary: 1.07 B parameters), `llama-8b` (Llama 3.1 8B's blocks with the same
vocabulary: 7.0 B parameters).
"""
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFValueType, GGUFWriter
from gguf.constants import GGML_QUANT_SIZES

SHAPES = {
    "llama-1b": dict(layers=16, hidden=2048, ffn=8192, heads=32, kv_heads=8),
    "llama-8b": dict(layers=32, hidden=4096, ffn=14336, heads=32, kv_heads=8),
}
TOKENIZER_FROM = Path(__file__).resolve().parent.parent / "models/SmolLM2-135M-Instruct.Q4_1.gguf"


def random_blocks(rng, ty, rows, cols, scale):
    """`rows × cols` values of `ty` as random blocks with small, finite scales."""
    block, size = GGML_QUANT_SIZES[ty]
    n = rows * cols // block
    raw = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    f16 = lambda k: rng.uniform(0.2, 1.0, size=(n, k)).astype(np.float16) * np.float16(scale)
    if ty in (T.Q4_K, T.Q5_K):
        raw[:, 0:4] = f16(2).view(np.uint8)
    elif ty == T.Q6_K:
        raw[:, size - 2:] = f16(1).view(np.uint8)
    elif ty in (T.Q8_0, T.Q4_0):
        raw[:, 0:2] = f16(1).view(np.uint8)
    return raw.reshape(rows, cols // block * size)


def main(shape_name, out_path):
    s = SHAPES[shape_name]
    rng = np.random.default_rng(7)
    src = GGUFReader(TOKENIZER_FROM)
    w = GGUFWriter(out_path, "llama")
    w.add_name(f"probe random {shape_name} Q4_K_M")
    w.add_block_count(s["layers"])
    w.add_context_length(8192)
    w.add_embedding_length(s["hidden"])
    w.add_feed_forward_length(s["ffn"])
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    # The tokenizer (and chat template) of the embedded model, key for key.
    for field in src.fields.values():
        if not field.name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        if vtype == GGUFValueType.ARRAY:
            items = [field.parts[i] for i in field.data]
            if field.types[1] == GGUFValueType.STRING:
                w.add_array(field.name, [bytes(x).decode("utf-8", "replace") for x in items])
            else:
                w.add_array(field.name, [x.tolist()[0] for x in items])
        elif vtype == GGUFValueType.STRING:
            w.add_string(field.name, bytes(field.parts[field.data[0]]).decode("utf-8"))
        else:
            w.add_key_value(field.name, field.parts[field.data[0]].tolist()[0], vtype)
    vocab = len(src.fields["tokenizer.ggml.tokens"].data)
    h, f, kv = s["hidden"], s["ffn"], s["hidden"] // s["heads"] * s["kv_heads"]

    def add(name, ty, rows, cols, scale=0.002):
        # gguf-py takes a quantized tensor as its bytes, `[rows, bytes per row]`.
        w.add_tensor(name, random_blocks(rng, ty, rows, cols, scale), raw_dtype=ty)

    add("token_embd.weight", T.Q6_K, vocab, h, 0.02)
    w.add_tensor("output_norm.weight", np.ones(h, dtype=np.float32))
    for l in range(s["layers"]):
        p = f"blk.{l}"
        w.add_tensor(f"{p}.attn_norm.weight", np.ones(h, dtype=np.float32))
        w.add_tensor(f"{p}.ffn_norm.weight", np.ones(h, dtype=np.float32))
        add(f"{p}.attn_q.weight", T.Q4_K, h, h)
        add(f"{p}.attn_k.weight", T.Q4_K, kv, h)
        add(f"{p}.attn_v.weight", T.Q6_K, kv, h)
        add(f"{p}.attn_output.weight", T.Q4_K, h, h)
        add(f"{p}.ffn_gate.weight", T.Q4_K, f, h)
        add(f"{p}.ffn_up.weight", T.Q4_K, f, h)
        add(f"{p}.ffn_down.weight", T.Q6_K if l % 2 == 0 else T.Q4_K, h, f)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {out_path} ({Path(out_path).stat().st_size / 1e9:.2f} GB)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
