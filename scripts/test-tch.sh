#!/usr/bin/env bash
# Numerics of the GPU (`tch`, libtorch) build against the transformers references:
#   bash scripts/test-tch.sh            # libtorch on the CPU (no GPU needed)
#   bash scripts/test-tch.sh cuda       # on a GPU machine with a Rust toolchain
# Runs the parity, generation, half-precision and host-memory tests of probe-lm on that device,
# built against the PyTorch scripts/build-tch.sh used (its record in target/tch/release).
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${1:-torch-cpu}
record=target/tch/release/probe.torch
[[ -f $record ]] || { echo "test-tch: run scripts/build-tch.sh first" >&2; exit 1; }
version=$(sed -n 's/^version=//p' $record)
libdir=$(sed -n 's/^libdir=//p' $record)
python=$(cd "$libdir/../../../../.." && pwd)/bin/python
shim=$(mktemp -d)
trap 'rm -rf "$shim"' EXIT
for name in python3 python; do
  printf '#!/bin/sh\nexec "%s" "$@"\n' "$python" > "$shim/$name"
  chmod +x "$shim/$name"
done
minor=$(echo "$version" | cut -d. -f1,2)
bypass=$([[ $minor == 2.9 ]] && echo 0 || echo 1)
PATH="$shim:$PATH" LIBTORCH_USE_PYTORCH=1 LIBTORCH_BYPASS_VERSION_CHECK=$bypass \
  PROBE_TORCH_VERSION="$version" LD_LIBRARY_PATH="$libdir" PROBE_TEST_DEVICE="$DEVICE" \
  CARGO_TARGET_DIR=target/tch \
  cargo test --release -p probe-lm --features tch --no-fail-fast --test parity --test gguf_tokenizer_generate \
  --test half_precision --test gemma -- --nocapture
