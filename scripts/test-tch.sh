#!/usr/bin/env bash
# Numerics of the `tch` (libtorch) build against the transformers references:
#   bash scripts/test-tch.sh            # libtorch on the CPU (no GPU needed)
#   bash scripts/test-tch.sh cuda       # on a GPU machine
# Needs the venv scripts/build-tch.sh creates (.venv-torch, PyTorch 2.9.0).
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${1:-torch-cpu}
VENV=${VENV:-.venv-torch}
[[ -x "$VENV/bin/python" ]] || { echo "run scripts/build-tch.sh first" >&2; exit 1; }
libdir=$("$VENV/bin/python" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
PATH="$PWD/$VENV/bin:$PATH" LIBTORCH_USE_PYTORCH=1 LD_LIBRARY_PATH="$libdir" PROBE_TEST_DEVICE="$DEVICE" \
  cargo test --release -p probe-lm --features tch --test parity --test gguf_tokenizer_generate -- --nocapture
