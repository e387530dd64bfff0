"""The demo study's latent half from Python: probes → value vectors → persona ψ.

Same settings as examples/demo.toml, so the ψ printed here equals the one in
`probe study examples/demo.toml` (out/study-demo/.../scale-personas/psi.json); tests check it.
Run from the repository root after `scripts/setup.sh` and `pip install` of the wheel
(docs/PYTHON.md):

    python examples/quickstart.py            # about a minute on 2 CPU cores
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
    print(f"probes → {trained['dir']}")

    # 3. Each party's top-20 value vectors by cosine with its probe, with a chance test.
    vectors = probe.vectors(MODEL, trained["dir"], k=20)
    for row in vectors["vectors"]["chance"]:
        print(f"  {row['party']:>4}: above chance: {row['above_chance']}")

    # 4. Persona scaling factors and the party distribution ψ (arXiv 2502.16280).
    scaled = probe.scale(
        MODEL, vectors["dir"], persona="data/personas/paper-grid.toml",
        prompts="data/personas/prompts.toml", variants=VARIANTS, where=WHERE,
        out=f"{trained['dir']}/scale-personas", overwrite=True,
    )
    psi = scaled["psi"]["all"]
    print(f"ψ (all {psi['rows']} rows): " + "  ".join(f"{p} {psi['psi'][p]:.3f}" for p in PARTIES))

    # 5. Against the (fictional) demo survey's weighted vote shares.
    votes = Counter()
    with open("data/demo/survey.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            votes[r["vote"]] += float(r["weight"])
    total = sum(votes[p] for p in PARTIES)
    survey = [votes[p] / total for p in PARTIES]
    tv = probe.metrics.tv([psi["psi"][p] for p in PARTIES], survey)
    print(f"TV(ψ, survey over these parties) = {tv:.3f}")


if __name__ == "__main__":
    main()
