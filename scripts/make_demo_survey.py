#!/usr/bin/env python3
"""Writes data/demo/survey.csv: a FICTIONAL respondent-level survey of the fictional demo election
(no real person, no real poll, no real party) in the shape of a GLES extract, with the persona grid's attribute ids, so `probe report`
and `probe compare --survey` run without third-party data. Votes come from a made-up
multinomial logit (ideology dominates, a few demographic nudges); weights are made up too.

    python3 scripts/make_demo_survey.py   # stdlib only, seeded, byte-identical on rerun
"""
import csv
import math
import pathlib
import random

# the invented parties of the demo election data/demo/wahl-o-mat/2099-demowahl
PARTIES = ["KBP", "SA", "ÖU", "LM", "HL", "FB", "Sonstige"]
ATTRS = {
    "age": ["18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75+"],
    "gender": ["female", "male"],
    "education": ["none", "hauptschule", "realschule", "abitur", "university"],
    "income": ["low", "middle", "high"],
    "employment": ["employed", "unemployed", "not-in-labour-force"],
    "ideology": ["left", "centre-left", "centre", "centre-right", "right"],
    "region": ["east", "west"],
}
# utility offsets per attribute value, per party (fictional)
IDEOLOGY = {
    "left": [-1.5, 0.6, 1.0, -1.2, -2.0, 1.6, 0.0],
    "centre-left": [-0.4, 1.0, 0.8, -0.3, -1.5, 0.4, 0.0],
    "centre": [0.6, 0.5, 0.0, 0.4, -0.5, -0.8, 0.2],
    "centre-right": [1.3, -0.2, -0.8, 0.9, 0.4, -1.6, 0.0],
    "right": [0.6, -1.2, -2.0, 0.2, 1.8, -2.0, 0.3],
}
NUDGES = {
    ("region", "east"): [-0.3, -0.2, -0.5, -0.3, 0.9, 0.6, 0.0],
    ("age", "18-24"): [-0.6, -0.3, 0.6, 0.4, 0.0, 0.3, 0.4],
    ("age", "75+"): [0.6, 0.5, -0.6, -0.2, -0.3, -0.2, -0.4],
    ("education", "university"): [0.0, -0.1, 0.7, 0.3, -0.6, 0.1, 0.0],
    ("education", "none"): [-0.2, 0.1, -0.8, -0.5, 0.6, 0.2, 0.3],
    ("income", "high"): [0.3, -0.2, 0.2, 0.7, -0.2, -0.5, 0.0],
    ("employment", "unemployed"): [-0.5, 0.1, -0.4, -0.6, 0.6, 0.6, 0.3],
}


def main():
    rng = random.Random(2021)
    out = pathlib.Path(__file__).resolve().parent.parent / "data" / "demo" / "survey.csv"
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", *ATTRS, "weight", "vote"])
        for i in range(1, 1501):
            person = {a: rng.choice(v) for a, v in ATTRS.items()}
            u = [0.2, 0.3, -0.1, -0.4, -0.3, -0.8, -1.0]
            u = [x + y for x, y in zip(u, IDEOLOGY[person["ideology"]])]
            for (a, v), nudge in NUDGES.items():
                if person[a] == v:
                    u = [x + y for x, y in zip(u, nudge)]
            z = sum(math.exp(x) for x in u)
            r, acc, vote = rng.random() * z, 0.0, PARTIES[-1]
            for p, x in zip(PARTIES, u):
                acc += math.exp(x)
                if r <= acc:
                    vote = p
                    break
            if rng.random() < 0.04:
                vote = "-99"  # refused, GLES-style negative code
            weight = round(math.exp(rng.gauss(0.0, 0.3)), 3)
            w.writerow([i, *person.values(), weight, vote])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
