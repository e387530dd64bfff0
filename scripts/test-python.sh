#!/usr/bin/env bash
# The Python bindings' tests (crates/probe-py/tests): `maturin develop --release` into a venv
# under the target directory (made once: maturin, numpy, pytest, safetensors, scipy), then
# pytest. They compare `probe.Model` with transformers' reference tensors in ../shared and
# with the `probe` binary, and run examples/quickstart.py against `probe study`.
# Without `python3 -m venv` (or pip) they are skipped with a notice.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
VENV=$TARGET/py-venv
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "test-python: notice: python3 with venv and ensurepip is not available; the Python bindings' tests are skipped"
  exit 0
fi
if ! "$VENV/bin/python" -c 'import maturin, numpy, pytest, safetensors, scipy' >/dev/null 2>&1; then
  echo "test-python: making $VENV (maturin numpy pytest safetensors scipy; once)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet maturin numpy pytest safetensors scipy
fi
cargo build --release --quiet -p probe-cli
VIRTUAL_ENV=$PWD/$VENV PATH=$PWD/$VENV/bin:$PATH \
  "$VENV/bin/python" -m maturin develop --release --quiet -m crates/probe-py/Cargo.toml
PROBE_BIN=$TARGET/release/probe "$VENV/bin/python" -m pytest -q crates/probe-py/tests
