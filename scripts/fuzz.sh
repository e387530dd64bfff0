#!/usr/bin/env bash
# Fuzzes probe's readers with cargo-fuzz (libFuzzer, AddressSanitizer, debug assertions and
# overflow checks): GGUF, the GGUF tokenizer, safetensors, config.json, Wahl-o-Mat elections,
# cells JSONL, experiment files, surveys (codebook + data), respondent CSVs, LoRA adapters and
# the run JSON files the report draws (psi.json, scores.json, probes.json). Nightly Rust only, so never part of CI or scripts/test.sh.
#
#   bash scripts/fuzz.sh              # every target for 600 s, two at a time
#   SECONDS_EACH=60 TARGETS="gguf cells_jsonl" JOBS=1 bash scripts/fuzz.sh
#
# Seeds come from the regression corpus (tests/corpus, malformed inputs and their valid
# controls) and the demo data; the grown corpora stay in fuzz/corpus/<target> (ignored by
# git) so a rerun continues from them. Logs: fuzz/logs/<target>.log; a crash leaves its input
# in fuzz/artifacts/<target>/ (turn it into a tests/corpus case once fixed). The last lines
# print each target's executions, for docs/FUZZING.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${SECONDS_EACH:-600}
JOBS=${JOBS:-2}
TARGETS=${TARGETS:-"gguf gguf_tokenizer safetensors config_json wahl_o_mat cells_jsonl experiment survey respondents_csv adapter run_json"}

command -v cargo-fuzz >/dev/null || cargo +nightly install cargo-fuzz --locked
cargo +nightly fuzz build

seed() { # target dir files...
  local dir=$1; shift
  mkdir -p "$dir"
  for f in "$@"; do
    [ -f "$f" ] && cp "$f" "$dir/seed-$(echo "$f" | tr '/' '_')"
  done
  return 0
}
election_seed() { # out (election-dir | election.json bundle): the six files joined by the target's separator
  python3 - "$1" "$2" <<'PY'
import json, os, sys
out, src = sys.argv[1:]
names = ["overview", "party", "statement", "answer", "opinion", "comment"]
if os.path.isdir(src):
    files = {f"{n}.json": open(os.path.join(src, f"{n}.json")).read() for n in names if os.path.isfile(os.path.join(src, f"{n}.json"))}
else:
    files = json.load(open(src))
open(out, "w").write("\n@@\n".join(files.get(f"{n}.json", "") for n in names))
PY
}

joined_seed() { # out file1 file2: the two files joined by the targets' separator
  [ -f "$2" ] && [ -f "$3" ] && { cat "$2"; printf '\n@@\n'; cat "$3"; } > "$1"
  return 0
}

C=tests/corpus
for t in $TARGETS; do
  d=fuzz/corpus/$t
  case $t in
    gguf) seed $d $C/gguf-*/model.gguf $C/valid-gguf/model.gguf ;;
    gguf_tokenizer) seed $d $C/tokenizer-*/tok.gguf $C/valid-gguf/model.gguf ;;
    safetensors) seed $d $C/safetensors-*/model.safetensors $C/valid-safetensors/model.safetensors ;;
    config_json) seed $d $C/config-*/config.json $C/valid-safetensors/config.json ../shared/reference/tiny-*/config.json ;;
    wahl_o_mat)
      mkdir -p $d
      for e in $C/election-*/election.json $C/valid-election/election.json data/demo/wahl-o-mat/2099-demowahl; do
        election_seed "$d/seed-$(echo "$e" | tr '/' '_')" "$e"
      done ;;
    cells_jsonl) seed $d $C/cells-*/pred.jsonl $C/valid-cells/*.jsonl data/eval/coin.jsonl ;;
    experiment) seed $d $C/experiment-*/experiment.toml examples/*.toml ;;
    survey)
      mkdir -p $d
      for c in $C/survey-* $C/valid-survey data/demo data/surveys/anes96; do
        joined_seed "$d/seed-$(echo "$c" | tr '/' '_')" "$c/codebook.toml" "$c/$(grep -o '^data = "[^"]*"' "$c/codebook.toml" | cut -d'"' -f2)"
      done ;;
    respondents_csv) seed $d $C/respondents-*/survey.csv data/demo/survey.csv data/demo/survey-2095.csv ;;
    adapter)
      mkdir -p $d
      for c in $C/adapter-* $C/valid-adapter; do
        joined_seed "$d/seed-$(echo "$c" | tr '/' '_')" "$c/adapter/adapter_config.json" "$c/adapter/adapter_model.safetensors"
      done ;;
    run_json) seed $d $C/report-*/run/*/psi.json $C/report-*/run/*/scores.json $C/report-*/run/*/vectors.json $C/valid-report-*/run/*/*.json out/study-demo/*/*/run/probes.json out/study-demo/*/*/run/scale-*/psi.json ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
done

mkdir -p fuzz/logs
run() { # target
  cargo +nightly fuzz run "$1" "fuzz/corpus/$1" -- -max_total_time="$SECONDS_EACH" \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 > "fuzz/logs/$1.log" 2>&1 \
    && echo "$1: ok" || echo "$1: FAILED (see fuzz/logs/$1.log and fuzz/artifacts/$1/)"
}
export -f run
export SECONDS_EACH
printf '%s\n' $TARGETS | xargs -P "$JOBS" -I{} bash -c 'run {}'

echo "target executions seconds corpus"
for t in $TARGETS; do
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "fuzz/logs/$t.log" | grep -o '[0-9]*$' | tail -1)
  secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "fuzz/logs/$t.log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' | tail -1)
  units=$(ls "fuzz/corpus/$t" | wc -l)
  echo "$t ${execs:-?} ${secs:-?} $units"
done
