#!/usr/bin/env bash
# Assembles .gpu/ (git-ignored, < 64 MiB) for `scripts/gpu-check.sh` on a GPU machine that has
# PyTorch but no Rust toolchain and no internet: the GPU build (xz-compressed) and its
# probe.torch, the tiny reference checkpoints, SmolLM2's tokenizer.json, and wheels of
# transformers and the packages it needs besides numpy and PyTorch (for Python 3.10–3.13), which
# gpu-check.sh installs there only if that machine lacks transformers. Needs
# scripts/build-tch.sh first, against the GPU machine's PyTorch version.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/tch/release/probe
[[ -x $bin && -f $bin.torch ]] || { echo "gpu-bundle: build first: scripts/build-tch.sh" >&2; exit 1; }
rm -rf .gpu && mkdir -p .gpu/reference .gpu/wheels
cp "$bin" .gpu/probe && strip .gpu/probe && xz -T2 -6 .gpu/probe
cp "$bin.torch" .gpu/probe.torch
cp -r ../shared/reference/tiny-llama ../shared/reference/tiny-qwen2 ../shared/reference/tiny-mistral .gpu/reference/
bash scripts/setup.sh >/dev/null
cargo build --release --quiet -p probe-cli
target/release/probe inspect models/SmolLM2-135M-Instruct.Q4_1.gguf --save-tokenizer .gpu/tokenizer.json >/dev/null 2>&1
for v in ${PY_VERSIONS:-3.10 3.11 3.12 3.13}; do
  python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    --python-version "$v" --dest .gpu/wheels "transformers==5.24.0" safetensors 2>/dev/null ||
    echo "gpu-bundle: notice: no wheels for Python $v"
done
rm -f .gpu/wheels/numpy-* .gpu/wheels/torch-* .gpu/wheels/nvidia_* .gpu/wheels/triton-*
du -sh .gpu
echo "gpu-bundle: carry .gpu (device tool: carry [\".gpu\"]) and run: bash scripts/gpu-check.sh"
