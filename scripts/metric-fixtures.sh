#!/usr/bin/env bash
# Regenerates crates/probe-metrics/tests/fixtures/reference.json from scipy / POT / scikit-learn
# in a venv of its own (.venv-ref). The JSON is committed; tests need no Python.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-ref}
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import scipy, ot, sklearn' 2>/dev/null || "$VENV/bin/pip" install --quiet numpy scipy pot scikit-learn
"$VENV/bin/python" scripts/make_metric_fixtures.py
