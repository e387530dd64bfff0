#!/usr/bin/env bash
# Builds `probe` with GPU support (`--device cuda`: burn-tch over the libtorch of an installed
# PyTorch). tch 0.22 targets PyTorch 2.9; newer versions whose C++ ABI is checked for what tch
# calls (built and run here) are accepted with tch's version check bypassed; others are refused.
#
#   bash scripts/build-tch.sh                  # PyTorch from .venv-torch (made if missing)
#   PYTHON=/opt/conda/bin/python bash scripts/build-tch.sh   # the PyTorch a machine already has
#   TORCH_VERSION=2.9.0 bash scripts/build-tch.sh            # venv with another version
#
# Output: target/tch/release/probe, beside it probe.torch (the PyTorch version it links and that
# PyTorch's lib directory). Run it through scripts/probe-gpu, which checks the version and sets
# LD_LIBRARY_PATH. A GPU machine without a Rust toolchain gets the stripped binary, probe.torch
# and scripts/probe-gpu (see README, "On a GPU").
set -euo pipefail
cd "$(dirname "$0")/.."

# PyTorch versions whose ABI matches what tch 0.22 calls: 2.9 is tch's own; 2.11 was built and
# run against here (scripts/gpu-check.sh on libtorch's CPU device; see docs/PERFORMANCE.md).
CHECKED_MINORS="2.9 2.11"

if [[ -z "${PYTHON:-}" ]]; then
  VENV=${VENV:-.venv-torch}
  TORCH_VERSION=${TORCH_VERSION:-2.11.0}
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    echo "build-tch: installing torch==$TORCH_VERSION into $VENV (~5 GB)"
    "$VENV/bin/pip" install --quiet "torch==$TORCH_VERSION"
  fi
  PYTHON="$PWD/$VENV/bin/python"
fi
version=$("$PYTHON" -c 'import torch; print(torch.__version__)') || {
  echo "build-tch: error: $PYTHON cannot import torch" >&2
  exit 1
}
minor=$(echo "$version" | cut -d. -f1,2)
bypass=0
case " $CHECKED_MINORS " in
  *" $minor "*) [[ $minor == 2.9 ]] || bypass=1 ;;
  *)
    if [[ ${PROBE_TORCH_UNCHECKED:-0} == 1 ]]; then
      echo "build-tch: warning: PyTorch $version has not been checked against tch 0.22 (built for 2.9); building anyway" >&2
      bypass=1
    else
      echo "build-tch: error: PyTorch $version ($PYTHON) is not one whose C++ ABI is known to match tch 0.22 (built for PyTorch 2.9; checked: ${CHECKED_MINORS// /, }). Install one of those (TORCH_VERSION=2.11.0), or set PROBE_TORCH_UNCHECKED=1 to try." >&2
      exit 1
    fi
    ;;
esac
libdir=$("$PYTHON" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
echo "build-tch: PyTorch $version at $libdir (version check bypassed: $bypass)"
# torch-sys runs `python3` (or `python`) from PATH to find libtorch: put this one first, in a
# folder of its own so nothing else of its environment comes along.
shim=$(mktemp -d)
trap 'rm -rf "$shim"' EXIT
py_abs=$(command -v "$PYTHON")
for name in python3 python; do
  # A wrapper, not a link: a venv's python finds its packages from the path it is run by.
  printf '#!/bin/sh\nexec "%s" "$@"\n' "$py_abs" > "$shim/$name"
  chmod +x "$shim/$name"
done
export PATH="$shim:$PATH"
export LIBTORCH_USE_PYTORCH=1 LIBTORCH_BYPASS_VERSION_CHECK=$bypass
export PROBE_TORCH_VERSION="$version"
# A target directory of its own: the CPU build in target/release stays as it is.
CARGO_TARGET_DIR=target/tch cargo build --release --features tch -p probe-cli "$@"
printf 'version=%s\nlibdir=%s\n' "$version" "$libdir" > target/tch/release/probe.torch
echo "build-tch: built target/tch/release/probe against PyTorch $version"
echo "build-tch: run it with: scripts/probe-gpu <command> ... --device cuda"
