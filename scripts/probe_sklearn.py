"""Re-fits the probes of a `probe train` run with scikit-learn and compares them fold by fold.

Same cached features, same folds (read from probes.json), same standardization (StandardScaler
on the training rows), same objective: LogisticRegression(C, L2) with each positive row weighted
by the factor probe used (class_weight), same tolerance and iteration cap, solver
newton-cholesky (default) or lbfgs.

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
    ap.add_argument("--hooks", type=int, help="re-fit the per-layer probes of the first N hooks only")
    ap.add_argument("--no-shared", action="store_true", help="skip the shared probe")
    ap.add_argument(
        "--solver", default="newton-cholesky",
        help="scikit-learn solver: newton-cholesky (exact Newton, converges; default) or lbfgs "
        "(sklearn's default; needs 500+ iterations on these features and may stop short)",
    )
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
        hooks_run = hooks[: args.hooks] if args.hooks else hooks
        ours = {(r["party"], r["hook"]): r for r in rep["per_layer"]}
        t0 = time.perf_counter()
        for h in hooks_run:
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
                        solver=args.solver, C=params["c"], tol=params["tolerance"], max_iter=params["max_iterations"],
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
        # probe's per-layer time scaled to the hooks re-fitted here (fits per hook are equal).
        timings["probe_per_layer_s"] = rep["per_layer_seconds"] * len(hooks_run) / len(hooks)

    if params["shared"] and not args.no_shared:
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
                    solver=args.solver, C=params["c"], tol=params["tolerance"], max_iter=params["max_iterations"],
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
        timings["probe_shared_s"] = rep["shared_seconds"]

    total = sum(v for k, v in timings.items() if not k.startswith("probe_"))
    ours_total = sum(v for k, v in timings.items() if k.startswith("probe_"))
    out = dict(
        run=args.run, n_rows=len(y), dim=int(X[hooks[0]].shape[1]), hooks=len(hooks), parties=len(parties),
        folds=k, params=params, max_abs_accuracy_diff=worst, max_abs_balanced_accuracy_diff=worst_bal,
        solver=params.get("solver"), sklearn_solver=args.solver, seconds=timings, sklearn_total_s=total, probe_total_s=ours_total,
        speedup=total / ours_total if ours_total else None, comparisons=len(rows),
    )
    print(json.dumps({k: v for k, v in out.items()}, indent=1))
    if args.json:
        json.dump(dict(out, rows=rows), open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
