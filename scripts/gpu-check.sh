#!/usr/bin/env bash
# The device check (issue 16): parity of the tiny checkpoints on the GPU, an 8B-shaped bf16
# checkpoint against transformers (agreement, tokens/s, peak memory) and `probe scale`
# throughput, ending in one summary line; < 8 minutes on one H200 (scripts/gpu_check.py).
#
#   bash scripts/gpu-check.sh                                 # GPU machine, tch build present
#   DEVICE=torch-cpu SHAPE=small bash scripts/gpu-check.sh    # as far as libtorch on a CPU goes
#
# On a GPU machine without Rust, `scripts/gpu-bundle.sh` (run here first) puts the stripped
# binary, the reference checkpoints, a tokenizer and missing Python packages into .gpu/, which
# this script then uses.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TOKENIZER=models/SmolLM2-135M-Instruct.Q4_1.gguf
REFERENCE=${REFERENCE:-../shared/reference}
if [[ -d .gpu ]]; then
  if [[ -f .gpu/probe.xz && ! -x .gpu/probe ]]; then
    xz -dk .gpu/probe.xz && chmod +x .gpu/probe
  fi
  [[ -x .gpu/probe ]] && export PROBE_BIN=${PROBE_BIN:-$PWD/.gpu/probe}
  [[ -d .gpu/reference ]] && REFERENCE=.gpu/reference
  [[ -f .gpu/tokenizer.json ]] && TOKENIZER=.gpu/tokenizer.json
  if ! "$PY" -c 'import transformers' 2>/dev/null && [[ -d .gpu/wheels ]]; then
    echo "gpu-check: installing transformers from .gpu/wheels into /tmp/probe-site"
    # Every package the wheels hold, without resolving (numpy comes with the machine's PyTorch).
    names=$(ls .gpu/wheels | sed 's/-[0-9].*//' | sort -u)
    "$PY" -m pip install --quiet --no-index --no-deps --find-links .gpu/wheels \
      --target /tmp/probe-site $names
    export PYTHONPATH=/tmp/probe-site${PYTHONPATH:+:$PYTHONPATH}
  fi
fi
exec "$PY" scripts/gpu_check.py --device "${DEVICE:-cuda}" --shape "${SHAPE:-8b}" \
  --reference "$REFERENCE" --tokenizer-from "$TOKENIZER" --out "${OUT:-/tmp/probe-gpu-check}" "$@"
