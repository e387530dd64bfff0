#!/usr/bin/env python3
"""Writes data/demo/survey-2095.csv: the fictional demo world's previous election (2095), asked of
the same fictional respondents. It exists so that few-shot steering of the voting question can
show a vote by group that is *not* the one the cells are scored against (data/demo/survey.csv).

Deterministic: about a third of the respondents voted otherwise in 2095, drawn towards the
parties that were larger then (SA and HL), so the groups' distributions differ from 2099's.
"""
import csv
import random
from pathlib import Path

root = Path(__file__).resolve().parent.parent
rows = list(csv.DictReader(open(root / "data/demo/survey.csv", encoding="utf-8")))
rng = random.Random(2095)
parties = ["SA", "ÖU", "FB", "LM", "KBP", "HL"]
then = [0.30, 0.15, 0.10, 0.10, 0.10, 0.25]
for r in rows:
    if rng.random() < 0.35:
        r["vote"] = rng.choices(parties, weights=then)[0]
out = root / "data/demo/survey-2095.csv"
with open(out, "w", encoding="utf-8", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
print(f"{len(rows)} respondents → {out}")
