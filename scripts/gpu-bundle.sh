#!/usr/bin/env bash
# Assembles .gpu/ (git-ignored) for `scripts/gpu-check.sh` on a GPU machine that has PyTorch but
# no Rust toolchain and no internet: the stripped GPU build and its probe.torch, the tiny
# reference checkpoints, SmolLM2's tokenizer.json, and transformers with the packages it needs
# that such a machine may lack (installed with this machine's Python into .gpu/site). Needs
# scripts/build-tch.sh first (against the GPU machine's PyTorch version).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/tch/release/probe
[[ -x $bin && -f $bin.torch ]] || { echo "gpu-bundle: build first: scripts/build-tch.sh" >&2; exit 1; }
rm -rf .gpu && mkdir -p .gpu/reference
cp "$bin" .gpu/probe && strip .gpu/probe
cp "$bin.torch" .gpu/probe.torch
cp -r ../shared/reference/tiny-llama ../shared/reference/tiny-qwen2 ../shared/reference/tiny-mistral .gpu/reference/
bash scripts/setup.sh >/dev/null
target/release/probe inspect models/SmolLM2-135M-Instruct.Q4_1.gguf --save-tokenizer .gpu/tokenizer.json >/dev/null 2>&1 ||
  PROBE_BIN= "$bin" inspect models/SmolLM2-135M-Instruct.Q4_1.gguf --save-tokenizer .gpu/tokenizer.json >/dev/null
python3 -m pip install --quiet --disable-pip-version-check --target .gpu/site \
  "transformers==5.24.0" "safetensors" >/dev/null
# PyTorch and numpy come with the machine's PyTorch.
rm -rf .gpu/site/torch* .gpu/site/nvidia* .gpu/site/numpy* .gpu/site/triton* .gpu/site/bin
du -sh .gpu
echo "gpu-bundle: carry .gpu (device tool: carry [\".gpu\"]) and run: bash scripts/gpu-check.sh"
