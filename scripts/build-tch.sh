#!/usr/bin/env bash
# Builds `probe` with the optional GPU backend (burn-tch → libtorch from PyTorch 2.9.0, the
# version burn-tch 0.22.1 pins). Needs ~7 GB for the venv (the PyPI wheel carries CUDA 12.8).
# Afterwards run with:  LD_LIBRARY_PATH=$(cat target/tch-libpath) target/release/probe ... --device cuda
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-torch}
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.9.0")' 2>/dev/null; then
  "$VENV/bin/pip" install --quiet torch==2.9.0
fi
export PATH="$PWD/$VENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export LIBTORCH_BYPASS_VERSION_CHECK=${LIBTORCH_BYPASS_VERSION_CHECK:-0}
cargo build --release --features tch -p probe-cli
libdir=$("$VENV/bin/python" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
echo "$libdir" > target/tch-libpath
echo "built target/release/probe with --device cuda support"
echo "run with: LD_LIBRARY_PATH=$libdir target/release/probe <command> --device cuda"
