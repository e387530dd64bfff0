#!/usr/bin/env python3
"""Recomputes by hand (stdlib only) what `probe compare --opinionqa DIR --attribute A
--baseline uniform --baseline majority --metrics tv` prints: the mean total variation of the
uniform and the majority-vote baselines over every (question, group) cell.

Rules, as probe-data reads OpinionQA: options from info.csv `references` (MC_options splits
texts at commas), "Refused" dropped, groups from metadata.csv, a cell's distribution = its
weighted counts normalized; majority = the option with the most pooled weighted count over the
question's groups.

    python3 scripts/check_opinionqa_baselines.py ../shared/data/opinionqa/pew-atp-disagreement-500 POLPARTY
"""
import ast
import csv
import json
import sys


def main(directory, attribute):
    meta = {r["key"]: ast.literal_eval(r["options"]) for r in csv.DictReader(open(f"{directory}/metadata.csv"))}
    info = {r["key"]: ast.literal_eval(r["references"]) for r in csv.DictReader(open(f"{directory}/info.csv"))}
    data = json.load(open(f"{directory}/{attribute}_data.json"))
    uniform, majority = [], []
    for key, q in data.items():
        options = [o for o in info.get(key, q["MC_options"]) if o != "Refused"]
        pooled, cells = [0.0] * len(options), []
        for group in meta[attribute]:
            if group not in q:
                continue
            counts = [q[group].get(o, 0) for o in options]
            total = sum(counts)
            if total <= 0:
                continue
            cells.append([c / total for c in counts])
            pooled = [a + c for a, c in zip(pooled, counts)]
        top = max(range(len(options)), key=lambda i: pooled[i])
        for p in cells:
            uniform.append(0.5 * sum(abs(1 / len(options) - x) for x in p))
            majority.append(0.5 * sum(abs((i == top) - x) for i, x in enumerate(p)))
    print(f"{len(uniform)} cells: uniform TV {sum(uniform) / len(uniform):.4f}, majority TV {sum(majority) / len(majority):.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
