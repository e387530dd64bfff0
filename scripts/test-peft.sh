#!/usr/bin/env bash
# PEFT parity of `probe finetune`'s adapters (scripts/peft_parity.py): needs a Python with
# torch, transformers, peft and gguf ($PEFT_PYTHON, else .venv-torch's); skipped with a notice
# where there is none. `scripts/test.sh` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PEFT_PYTHON:-.venv-torch/bin/python}
if ! [[ -x $PY ]] || ! "$PY" -c 'import torch, transformers, peft, gguf' 2>/dev/null; then
  echo "test-peft: notice: no Python with torch, transformers, peft and gguf ($PY); skipping the PEFT parity check (pip install torch transformers peft gguf into .venv-torch to run it)"
  exit 0
fi
bash scripts/setup.sh >/dev/null
cargo build --release --quiet -p probe-cli
"$PY" scripts/peft_parity.py target/release/probe models/SmolLM2-135M-Instruct.Q4_1.gguf target/peft-parity llama
"$PY" scripts/peft_parity.py target/release/probe models/gemma-3-270m-q4_k_m.gguf target/peft-parity gemma3
