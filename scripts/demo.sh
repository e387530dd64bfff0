#!/usr/bin/env bash
# The main job: set up (fetch the embedded default model, build `probe`), then run the whole
# study of examples/demo.toml — extract → train → vectors → scale → eval → compare → report on
# SmolLM2-135M-Instruct, the fictional demo election, a slice of the persona grid and the
# fictional demo survey. A second run reuses every finished stage and takes seconds.
# Works with any target directory (CARGO_TARGET_DIR): the binary is run through cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "demo: building probe (release; a cold build takes 6–16 minutes on 2 cores)"
cargo build --release -p probe-cli
cargo run --release --quiet -p probe-cli -- study examples/demo.toml
