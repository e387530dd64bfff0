"""Writes crates/probe-lm/tests/fixtures/quant_blocks.safetensors: random ggml quant blocks and
their dequantization by gguf-py (llama.cpp's own Python package), the independent reference for
probe's dequantizers. Run with a venv that has `gguf numpy safetensors`:

    .venv-bench/bin/python scripts/make_quant_fixtures.py
"""
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize
from safetensors.numpy import save_file

rng = np.random.default_rng(20261125)
out = {}
for ty in [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K]:
    block_size, type_size = GGML_QUANT_SIZES[ty]
    n_blocks = 6
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    # Overwrite the f16 scale fields with sane values: random bytes there can be NaN/inf.
    def f16(count):
        return rng.uniform(-0.05, 0.05, size=(n_blocks, count)).astype(np.float16).view(np.uint8)
    if ty in (T.Q4_0, T.Q5_0, T.Q8_0):
        raw[:, 0:2] = f16(1)
    elif ty in (T.Q4_1, T.Q5_1, T.Q4_K, T.Q5_K):
        raw[:, 0:4] = f16(2)
    elif ty == T.Q6_K:
        raw[:, type_size - 2:] = f16(1)
    values = dequantize(raw.reshape(-1), ty).astype(np.float32).reshape(-1)
    assert values.size == n_blocks * block_size and np.isfinite(values).all()
    out[f"{ty.name}.blocks"] = raw.reshape(-1)
    out[f"{ty.name}.values"] = values
save_file(out, "crates/probe-lm/tests/fixtures/quant_blocks.safetensors")
print({k: v.shape for k, v in out.items()})
