#!/usr/bin/env bash
# The Python bindings' tests: build the wheel (`maturin build --release`), install it into a
# fresh venv with only its declared dependencies and run examples/quickstart.py there (the
# README's install path), then install it into the test venv (made once: maturin, numpy,
# pytest, safetensors, scipy, scikit-learn) and run pytest (crates/probe-py/tests). The tests compare
# `probe.Model` with transformers' reference tensors in ../shared and every stage with the
# `probe` binary. Without `python3 -m venv` (or pip) they are skipped with a notice.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
VENV=$TARGET/py-venv
FRESH=$TARGET/py-fresh-venv
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "test-python: notice: python3 with venv and ensurepip is not available; the Python bindings' tests are skipped"
  exit 0
fi
if ! "$VENV/bin/python" -c 'import maturin, numpy, pytest, safetensors, scipy, sklearn' >/dev/null 2>&1; then
  echo "test-python: making $VENV (maturin numpy pytest safetensors scipy scikit-learn; once)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet maturin numpy pytest safetensors scipy scikit-learn
fi
cargo build --release --quiet -p probe-cli
rm -rf "$TARGET/wheels/py-test"
"$VENV/bin/python" -m maturin build --release --quiet -m crates/probe-py/Cargo.toml --out "$TARGET/wheels/py-test"
WHEEL=$(ls "$TARGET"/wheels/py-test/probe-*.whl)
echo "test-python: $WHEEL into a fresh venv, then examples/quickstart.py"
python3 -m venv --clear "$FRESH"
"$FRESH/bin/pip" install --quiet "$WHEEL"
"$FRESH/bin/python" -c 'import probe; print("test-python: import probe", probe.__version__, "from", probe.__file__)'
# a fresh folder, its printout kept: the pytest suite reads both ($PROBE_QUICKSTART) instead
# of running the quickstart a second time
rm -rf "$TARGET/py-quickstart"
mkdir -p "$TARGET/py-quickstart"
"$FRESH/bin/python" examples/quickstart.py --out "$TARGET/py-quickstart" | tee "$TARGET/py-quickstart/stdout.txt"
"$VENV/bin/pip" install --quiet --force-reinstall --no-deps "$WHEEL"
PROBE_BIN=$TARGET/release/probe PROBE_QUICKSTART=$TARGET/py-quickstart \
  "$VENV/bin/python" -m pytest -q crates/probe-py/tests
