#!/usr/bin/env bash
# The main job: set up (fetch the embedded default model, build `probe`), then run the whole
# study of examples/demo.toml — extract → train → vectors → scale → eval → compare → report on
# SmolLM2-135M-Instruct, the fictional demo election, a slice of the persona grid and the
# fictional demo survey. A second run reuses every finished stage and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet
target/release/probe study examples/demo.toml
