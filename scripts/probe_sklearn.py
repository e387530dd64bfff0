"""Re-fits the probes of a `probe train` run with scikit-learn and compares them fold by fold.

Same cached features, same folds (read from probes.json), same standardization (StandardScaler
on the training rows), same objective: LogisticRegression(C, lbfgs, L2) with each positive row
weighted by the replication factor probe used (class_weight), same tolerance and iteration cap.

    .venv-bench/bin/python scripts/probe_sklearn.py probes/<model>/<run> [--json out.json]

Prints the largest per-fold accuracy difference and both wall times (fits only, same machine).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(__file__))
from read_cache import load_cache  # noqa: E402




def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--json")
    args = ap.parse_args()
    meta = json.load(open(os.path.join(args.run, "probes.json")))
    rep = meta["report"]
    params = rep["params"]
    X, y, _, manifest = load_cache(meta["cache"])
    folds = np.array(rep["folds"])
    k = params["folds"]
    hooks = rep["hooks"]
    parties = rep["parties"]
    worst = {"per_layer": 0.0, "shared": 0.0}
    worst_bal = {"per_layer": 0.0, "shared": 0.0}
    rows = []
    timings = {}

    if params["per_layer"]:
        ours = {(r["party"], r["hook"]): r for r in rep["per_layer"]}
        t0 = time.perf_counter()
        for h in hooks:
            A = X[h].astype(np.float64)
            for f in range(k + 1):
                tr, te = folds != f, folds == f
                scaler = StandardScaler().fit(A[tr])
                Ztr = scaler.transform(A[tr])
                Zte = scaler.transform(A[te]) if f < k else None
                for pi, party in enumerate(parties):
                    r = rep["positive_replication"][pi]
                    ytr = y[tr] == pi
                    clf = LogisticRegression(
                        C=params["c"], tol=params["tolerance"], max_iter=params["max_iterations"],
                        class_weight={False: 1.0, True: float(r)},
                    ).fit(Ztr, ytr)
                    if f == k:
                        continue
                    yte = y[te] == pi
                    pred = clf.decision_function(Zte) > 0
                    acc = float((pred == yte).mean())
                    bal = float(balanced_accuracy_score(yte, pred))
                    mine = ours[(party, h)]["folds"][f]
                    worst["per_layer"] = max(worst["per_layer"], abs(acc - mine["accuracy"]))
                    worst_bal["per_layer"] = max(worst_bal["per_layer"], abs(bal - mine["balanced_accuracy"]))
                    rows.append(dict(kind="per_layer", party=party, hook=h, fold=f, sklearn=acc, probe=mine["accuracy"]))
        timings["per_layer_s"] = time.perf_counter() - t0

    if params["shared"]:
        ours = {(r["party"], r["hook"]): r for r in rep["shared"]}
        n = len(y)
        S = np.concatenate([X[h] for h in hooks]).astype(np.float64)
        ys = np.tile(y, len(hooks))
        fs = np.tile(folds, len(hooks))
        t0 = time.perf_counter()
        for f in range(k + 1):
            tr = fs != f
            scaler = StandardScaler().fit(S[tr])
            Ztr = scaler.transform(S[tr])
            for pi, party in enumerate(parties):
                r = rep["positive_replication"][pi]
                clf = LogisticRegression(
                    C=params["c"], tol=params["tolerance"], max_iter=params["max_iterations"],
                    class_weight={False: 1.0, True: float(r)},
                ).fit(Ztr, ys[tr] == pi)
                if f == k:
                    continue
                te = folds == f
                for h in hooks:
                    Zte = scaler.transform(X[h][te].astype(np.float64))
                    yte = y[te] == pi
                    pred = clf.decision_function(Zte) > 0
                    acc = float((pred == yte).mean())
                    mine = ours[(party, h)]["folds"][f]
                    worst["shared"] = max(worst["shared"], abs(acc - mine["accuracy"]))
                    rows.append(dict(kind="shared", party=party, hook=h, fold=f, sklearn=acc, probe=mine["accuracy"]))
        timings["shared_s"] = time.perf_counter() - t0

    total = sum(timings.values())
    out = dict(
        run=args.run, n_rows=len(y), dim=int(X[hooks[0]].shape[1]), hooks=len(hooks), parties=len(parties),
        folds=k, params=params, max_abs_accuracy_diff=worst, max_abs_balanced_accuracy_diff=worst_bal,
        sklearn_seconds=timings, sklearn_total_s=total, probe_seconds=rep["seconds"],
        speedup=total / rep["seconds"] if rep["seconds"] else None, comparisons=len(rows),
    )
    print(json.dumps({k: v for k, v in out.items()}, indent=1))
    if args.json:
        json.dump(dict(out, rows=rows), open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
