#!/usr/bin/env bash
# A guided tour, command by command, on the embedded default model (SmolLM2-135M-Instruct,
# Q4_1 GGUF): inspect, generate, run-with-cache, then the pipeline stage by stage (on the 2025
# Bundestag Wahl-o-Mat when ../shared/data or data/wahl-o-mat has it: ~25 min of extraction).
# Outputs go to out/demo/. The main job, `scripts/demo.sh`, runs the same pipeline as one study.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -p probe-cli
# the built binary wherever the target directory is (CARGO_TARGET_DIR)
PROBE="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/probe"
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p out/demo

echo "== probe inspect"
$PROBE inspect "$MODEL"

echo; echo "== probe generate (greedy, KV cache)"
$PROBE generate "$MODEL" "The capital of France is" -n 12
$PROBE generate "$MODEL" --chat "Which party would a 45-year-old woman from Saxony vote for? Answer in one sentence." -n 40

echo; echo "== probe run-with-cache: residual stream at 0.6L..0.9L and MLP coefficients"
$PROBE run-with-cache "$MODEL" \
  --prompt "Ich bin 45 Jahre alt und weiblich. Wenn morgen Bundestagswahl wäre, würde ich wählen:" \
  --prompt "I am a 30-year-old man from Hamburg. In the next federal election I will vote for" \
  --hooks "blocks.{0.6L..0.9L}.hook_resid_post; blocks.{0.6L..0.9L}.mlp.hook_post" \
  --reduce last --out out/demo/activations.safetensors
echo "wrote out/demo/activations.safetensors (open with safetensors.numpy.load_file)"

echo; echo "== probe extract: residual streams of Wahl-o-Mat probe prompts (fictional demo election)"
$PROBE extract "$MODEL" --election data/demo/wahl-o-mat/2099-demowahl --parties "SA,ÖU,FB,LM,KBP,HL" \
  --templates de-quiz,en-short --out out/demo/cache
echo "cache in out/demo/cache (python scripts/read_cache.py out/demo/cache loads it into numpy)"

echo; echo "== probe train: per-party probes, 5-fold CV grouped by statement"
# A real election when one is at hand (../shared in this project's CI, or `probe data fetch`),
# else the fictional demo election. All 11 templates: ~25 min of extraction on 2 cores, resumable.
ELECTION=${ELECTION:-}
for candidate in ../shared/data/wahl-o-mat/2025-deutschland data/wahl-o-mat/2025-deutschland; do
  [[ -z "$ELECTION" && -f "$candidate/statement.json" ]] && ELECTION=$candidate
done
if [[ -n "$ELECTION" ]]; then
  $PROBE train "$MODEL" --election "$ELECTION" --out out/demo/cache-$(basename "$ELECTION")
else
  ELECTION=data/demo/wahl-o-mat/2099-demowahl
  $PROBE train "$MODEL" --election "$ELECTION" --parties "SA,ÖU,FB,LM,KBP,HL" \
    --templates de-quiz,en-short --folds 3 --out out/demo/cache
fi
RUN=probes/$(basename "$MODEL" .gguf)/$(basename "$ELECTION")-last-before-answer

echo; echo "== probe vectors: each party's MLP value vectors and the tokens they promote"
$PROBE vectors "$MODEL" --probes "$RUN"

echo; echo "== probe scale: persona scaling factors and ψ on a subset of the paper's persona grid"
# 2 genders × 5 ideologies × 2 regions × 2 years × 5 variants = 200 prompts (~30 s); drop the
# --where clauses for the full grid (12,600 personas; see docs/PERFORMANCE.md for its time).
$PROBE scale "$MODEL" --probes "$RUN" --where age=45-54 --where education=abitur \
  --where income=middle --where employment=employed \
  --variants de-stimme,de-interview,de-umfrage,en-vote,en-survey
echo "ψ, ψ_g, ψ_jg in $RUN/scale-paper-grid/psi.{json,csv}"

echo; echo "== probe eval: the model's own answers on the biased-coin toy (log-p, samples, sequence, JSON)"
$PROBE eval "$MODEL" --questions data/eval/coin.jsonl --steering none --out out/demo/eval-coin

echo; echo "== probe report: figures and tables against a survey"
if [[ "$ELECTION" == data/demo/* ]]; then
  # the fictional election has a fictional respondent-level survey
  $PROBE report "$RUN" --survey data/demo/survey.csv --survey-weight weight
else
  # a real Bundestag election: the built-in 2021 second-vote result
  $PROBE report "$RUN" --election btw2021
fi
echo "open $RUN/report/report.html"
