"""The demo study from Python, stage by stage: probes → value vectors → persona ψ → the
model's own answers to the voting question → one report against the demo survey.

Same settings as examples/demo.toml, so the ψ printed here equals the one in
`probe study examples/demo.toml` (out/study-demo/.../scale-personas/psi.json); tests check it.
Run from the repository root after `scripts/setup.sh` and `pip install` of the wheel
(docs/PYTHON.md):

    python examples/quickstart.py            # about a minute and a half on 2 CPU cores
"""

import argparse
import csv
from collections import Counter

import probe

MODEL = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
ELECTION = "data/demo/wahl-o-mat/2099-demowahl"
PARTIES = ["SA", "ÖU", "FB", "LM", "KBP", "HL"]
# 2 genders × 5 ideologies × 2 regions = 20 personas, voting in the past election (2021)
WHERE = ["age=45-54", "education=abitur", "income=middle", "employment=employed", "year=2021"]
VARIANTS = ["de-stimme", "de-interview", "de-umfrage", "en-vote", "en-survey"]
SURVEY = dict(survey="data/demo/survey.csv", survey_weight="weight", answer="vote")
NOTE = "Fictional data: the demo election (2099) and the demo survey are invented."


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/quickstart", help="where caches and results go")
    args = parser.parse_args()

    # 1. Inside the model: residual streams of one prompt, as numpy arrays.
    model = probe.Model(MODEL)
    acts = model.run_with_cache("Wenn morgen Wahl wäre, würde ich wählen:", reduce="last")
    print(f"{model}: {len(acts) - 2} hooked layers, each {acts['blocks.18.hook_resid_post'].shape}")

    # 2. Per-party probes on the election's statements (blocks 18..27 of 30, leak-free positions).
    trained = probe.train(
        MODEL, ELECTION, parties=PARTIES, layers="0.6L..0.9L", templates=["de-quiz", "en-short"],
        folds=3, cache=f"{args.out}/cache", probes_dir=args.out, run="run",
    )
    run = trained["dir"]
    best = max(trained["scores"], key=lambda s: s["balanced_accuracy"])
    print(f"probes → {run}; best: {best['probe']} {best['hook']} {best['party']} "
          f"balanced accuracy {best['balanced_accuracy']:.3f}")

    # 3. Each party's top-20 value vectors by cosine with its probe, with a chance test.
    vectors = probe.vectors(MODEL, run, k=20)
    above = [c["party"] for c in vectors["vectors"]["chance"] if c["above_chance"]]
    print(f"value vectors above chance for: {', '.join(above) or 'no party (a 135M model)'}")

    # 4. Persona scaling factors and the party distribution ψ (arXiv 2502.16280).
    scaled = probe.scale(
        MODEL, vectors["dir"], persona="data/personas/paper-grid.toml",
        prompts="data/personas/prompts.toml", variants=VARIANTS, where=WHERE,
        out=f"{run}/scale-personas", overwrite=True,
    )
    psi = scaled["psi"]["all"]
    print(f"ψ (all {psi['rows']} rows): " + "  ".join(f"{p} {psi['psi'][p]:.3f}" for p in PARTIES))

    # 5. The model's own answers for 4 of the personas (Meister et al. 2024): log-p, samples,
    #    verbalized JSON; few-shot examples from the demo world's previous election, never
    #    the scored survey.
    voted = probe.eval(
        MODEL, vote=ELECTION, parties=PARTIES, where=WHERE, persona_sample=4,
        methods=["logp", "sample", "verbalize"], steering=["none", "persona", "fewshot"],
        shots_from="data/demo/survey-2095.csv", n=10, out=f"{run}/eval-vote", **SURVEY,
    )
    for row in voted["scores"]["tv"]:
        tv_all = "-" if row["tv_all"] is None else f"{row['tv_all']:.3f}"
        print(f"  {row['method']:>9} / {row['steering']:<8} TV(everyone) {tv_all}")

    # 6. Against the (fictional) demo survey's weighted vote shares, and one report of it all.
    votes = Counter()
    with open("data/demo/survey.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            votes[r["vote"]] += float(r["weight"])
    total = sum(votes[p] for p in PARTIES)
    tv = probe.metrics.tv([psi["psi"][p] for p in PARTIES], [votes[p] / total for p in PARTIES])
    print(f"TV(ψ, survey over these parties) = {tv:.3f}")
    report = probe.report([run], notes=[NOTE], formats=["svg"], **SURVEY)
    print(f"report → {report['dir']}/report.html")


if __name__ == "__main__":
    main()
