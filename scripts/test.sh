#!/usr/bin/env bash
# The whole test suite, as CI runs it: fetch the embedded default model (idempotent), check
# formatting and lints, run every test in release mode (burn's CPU backend is ~200x slower
# unoptimised; release shares one build with the main job).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --release --workspace
