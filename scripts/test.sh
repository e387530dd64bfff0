#!/usr/bin/env bash
# The whole test suite, as CI runs it: fetch the embedded default model (idempotent), check
# formatting and lints, run every test in release mode (burn's CPU backend is ~200x slower
# unoptimised; release shares one build with the main job), then run the README's examples.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The report test renders report.html in headless Chromium (Debian package `chromium`): install
# it when missing and possible; without it that one check is skipped with a notice.
if ! command -v chromium >/dev/null 2>&1 && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "test: installing chromium for the report rendering check"
  { apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 &&
      apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }; } ||
    echo "test: notice: could not install chromium; the report rendering check will be skipped"
fi
cargo fmt --all -- --check
python3 scripts/check_module_cycles.py
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --release --workspace
# The Python bindings: built into a venv with maturin, tested with pytest (~5 min the first
# time, ~1 min after).
bash scripts/test-python.sh
# PEFT loads `probe finetune`'s adapters and gives probe's logits (needs torch + peft; skipped
# with a notice without them).
bash scripts/test-peft.sh
# Every shell and Python block of README.md, in order, in a fresh clone of HEAD (~4 min: commands
# that repeat a test run a slice, see the script; the
# SLURM and CUDA blocks and demo.sh's cold build are left to a manual `--full` run, see
# docs/TESTING.md). PROBE_README_EXAMPLES=0 leaves it out of a quick local run.
if [[ ${PROBE_README_EXAMPLES:-1} != 0 ]]; then
  python3 scripts/readme_examples.py
fi
