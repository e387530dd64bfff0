"""Reference values for probe-metrics from independent implementations: scipy (entropy,
wasserstein_distance, jensenshannon, pearsonr, spearmanr, linregress, t.ppf, multinomial),
POT (ot.emd2, ot.sinkhorn2), scikit-learn (RMSE) and numpy (percentile, ECE, quantile-function
barycenter). Written to crates/probe-metrics/tests/fixtures/reference.json; run through
scripts/metric-fixtures.sh, which creates the venv.
"""
import itertools
import json

import numpy as np
import ot
import scipy
import sklearn
from scipy import stats
from scipy.optimize import minimize_scalar
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import mean_squared_error

rng = np.random.default_rng(20261125)
CASES = 120


def rand_dist(n, kind=None):
    kind = kind or rng.choice(["dense", "zeros", "onehot", "dirichlet_sparse"], p=[0.55, 0.2, 0.1, 0.15])
    if kind == "onehot":
        p = np.zeros(n)
        p[rng.integers(n)] = 1.0
        return p
    p = rng.dirichlet(np.full(n, 0.3 if kind == "dirichlet_sparse" else 1.0))
    if kind == "zeros" and n > 2:
        p[rng.choice(n, size=rng.integers(1, n - 1), replace=False)] = 0.0
        if p.sum() == 0:
            p[0] = 1.0
    return p / p.sum()


def sizes():
    return int(rng.choice([2, 2, 3, 4, 5, 7, 10]))


out = {"versions": {"numpy": np.__version__, "scipy": scipy.__version__, "pot": ot.__version__, "sklearn": sklearn.__version__}}

out["entropy"] = []
for _ in range(CASES):
    p = rand_dist(sizes())
    out["entropy"].append({"p": p.tolist(), "entropy": float(stats.entropy(p)), "normalized": float(stats.entropy(p) / np.log(len(p)))})

out["divergence"] = []
for _ in range(CASES):
    n = sizes()
    p, q = rand_dist(n), rand_dist(n)
    eps = float(rng.choice([1e-6, 1e-3, 1e-2]))
    ps, qs = (p + eps) / (1 + n * eps), (q + eps) / (1 + n * eps)
    row = {"p": p.tolist(), "q": q.tolist(), "eps": eps,
           "tv": float(0.5 * np.abs(p - q).sum()),
           "kl_smoothed": float(stats.entropy(ps, qs)),
           "js_distance": float(jensenshannon(p, q)),
           "rmse": float(np.sqrt(mean_squared_error(p, q)))}
    kl = stats.entropy(p, q)
    row["kl"] = float(kl) if np.isfinite(kl) else None
    out["divergence"].append(row)

out["wasserstein_1d"] = []
for _ in range(CASES):
    n = sizes()
    p, q = rand_dist(n), rand_dist(n)
    pos = np.sort(rng.uniform(-3, 3, size=n)) if rng.random() < 0.5 else np.arange(n, dtype=float)
    if rng.random() < 0.3:
        pos = rng.permutation(pos)
    w = stats.wasserstein_distance(pos, pos, p, q)
    out["wasserstein_1d"].append({"p": p.tolist(), "q": q.tolist(), "positions": pos.tolist(), "value": float(w),
                                   "normalized": float(w / (pos.max() - pos.min()))})

out["emd"] = []
out["sinkhorn"] = []
for i in range(CASES):
    n, m = sizes(), sizes()  # unequal supports allowed
    a, b = rand_dist(n), rand_dist(m)
    M = rng.uniform(0, 1, size=(n, m))
    if i % 4 == 0:  # metric cost on a line
        x, y = rng.uniform(0, 1, n), rng.uniform(0, 1, m)
        M = np.abs(x[:, None] - y[None, :])
    out["emd"].append({"a": a.tolist(), "b": b.tolist(), "n": n, "m": m, "cost": M.ravel().tolist(), "value": float(ot.emd2(a, b, M))})
    reg = float(rng.choice([0.05, 0.1, 0.5, 1.0]))
    a2, b2 = rand_dist(n, "dense"), rand_dist(m, "dense")
    val = ot.sinkhorn2(a2, b2, M, reg, numItermax=200000, stopThr=1e-14)
    out["sinkhorn"].append({"a": a2.tolist(), "b": b2.tolist(), "n": n, "m": m, "cost": M.ravel().tolist(), "reg": reg, "value": float(val)})


def w2_bary(dists, pos, w):
    order = np.argsort(pos)
    spos = pos[order]
    cdfs = [np.cumsum(d[order]) for d in dists]
    br = np.unique(np.concatenate([[0.0, 1.0]] + [c[(c > 0) & (c < 1)] for c in cdfs]))
    atoms, masses = [], []
    for lo, hi in zip(br[:-1], br[1:]):
        if hi - lo <= 1e-15:
            continue
        mid = 0.5 * (lo + hi)
        atom = sum(wk * spos[np.searchsorted(c, mid, side="left")] for c, wk in zip(cdfs, w))
        if atoms and abs(atoms[-1] - atom) < 1e-12:
            masses[-1] += hi - lo
        else:
            atoms.append(float(atom)); masses.append(float(hi - lo))
    return atoms, masses


out["barycenter"] = []
for _ in range(CASES):
    n, k = sizes(), int(rng.integers(2, 5))
    dists = [rand_dist(n) for _ in range(k)]
    w = rng.dirichlet(np.ones(k))
    pos = np.arange(n, dtype=float)
    atoms, masses = w2_bary(dists, pos, w)
    # Check the quantile average against the definition on a fine grid of levels.
    us = (np.arange(2000) + 0.5) / 2000
    qf = lambda d, u: pos[np.searchsorted(np.cumsum(d), u, side="left").clip(0, n - 1)]
    avg = sum(wk * qf(d, us) for d, wk in zip(dists, w))
    bq = np.array(atoms)[np.searchsorted(np.cumsum(masses), us, side="left").clip(0, len(atoms) - 1)]
    assert np.abs(avg - bq).max() < 1e-9
    out["barycenter"].append({"dists": [d.tolist() for d in dists], "weights": w.tolist(), "positions": pos.tolist(),
                              "arithmetic": np.average(np.array(dists), axis=0, weights=w).tolist(), "atoms": atoms, "masses": masses})

out["correlation"] = []
for _ in range(CASES):
    n = int(rng.integers(3, 40))
    x = rng.normal(size=n)
    y = 0.6 * x + rng.normal(size=n)
    if rng.random() < 0.4:  # Likert-style ties
        x, y = np.round(x * 2), np.round(y * 2)
    if np.std(x) == 0 or np.std(y) == 0:
        continue
    r = stats.linregress(x, y) if np.std(x) > 0 else None
    t = stats.t.ppf(0.975, n - 2)
    out["correlation"].append({"x": x.tolist(), "y": y.tolist(), "pearson": float(stats.pearsonr(x, y)[0]),
                               "spearman": float(stats.spearmanr(x, y)[0]),
                               "slope": float(r.slope), "intercept": float(r.intercept), "r": float(r.rvalue),
                               "stderr": float(r.stderr), "slope_low": float(r.slope - t * r.stderr), "slope_high": float(r.slope + t * r.stderr)})

out["t_ppf"] = [{"p": float(p), "df": float(df), "value": float(stats.t.ppf(p, df))}
                for p, df in zip(rng.uniform(0.01, 0.99, CASES), rng.choice([1, 2, 3, 5, 8, 13, 30, 100, 1000], CASES))]

out["percentile"] = []
for _ in range(CASES):
    v = rng.normal(size=int(rng.integers(1, 30)))
    q = float(rng.uniform(0, 100))
    out["percentile"].append({"values": v.tolist(), "q": q, "value": float(np.percentile(v, q))})


def exact_discretization(p, n):
    k = len(p)
    total = 0.0
    for c in itertools.product(range(n + 1), repeat=k - 1):
        if sum(c) > n:
            continue
        counts = list(c) + [n - sum(c)]
        pr = stats.multinomial.pmf(counts, n, p)
        total += pr * 0.5 * np.abs(np.array(counts) / n - p).sum()
    return float(total)


out["discretization"] = []
for _ in range(CASES):
    k = int(rng.choice([2, 3, 4]))
    p = rand_dist(k, "dense")
    n = int(rng.choice([1, 2, 5, 10, 15]))
    out["discretization"].append({"p": p.tolist(), "n": n, "value": exact_discretization(p, n)})


def ece_numpy(P, labels, bins):
    conf = P.max(axis=1)
    pred = P.argmax(axis=1)
    idx = np.clip(np.ceil(conf * bins).astype(int), 1, bins) - 1
    e = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            e += m.mean() * abs((pred[m] == labels[m]).mean() - conf[m].mean())
    return float(e)


out["ece"] = []
for _ in range(CASES):
    n, k = int(rng.integers(5, 60)), sizes()
    P = np.array([rand_dist(k, "dense") for _ in range(n)])
    labels = rng.integers(0, k, size=n)
    bins = int(rng.choice([5, 10, 15]))
    out["ece"].append({"predictions": P.tolist(), "labels": labels.tolist(), "bins": bins, "value": ece_numpy(P, labels, bins)})


def temp_scale(p, tau):
    with np.errstate(divide="ignore"):
        l = np.where(p > 0, np.log(np.where(p > 0, p, 1)) / tau, -np.inf)
    e = np.exp(l - l.max())
    return e / e.sum()


out["temperature"] = []
for _ in range(CASES):
    k, cells = sizes(), int(rng.integers(1, 6))
    pairs = [(rand_dist(k, "dense"), rand_dist(k, "dense")) for _ in range(cells)]
    f = lambda lt: np.mean([0.5 * np.abs(y - temp_scale(p, np.exp(lt))).sum() for y, p in pairs])
    grid = np.linspace(np.log(0.05), np.log(20), 4001)
    vals = np.array([f(g) for g in grid])
    g0 = grid[vals.argmin()]
    res = minimize_scalar(f, bounds=(max(g0 - 0.01, np.log(0.05)), min(g0 + 0.01, np.log(20))), method="bounded", options={"xatol": 1e-12})
    best = min(res.fun, vals.min())
    out["temperature"].append({"cells": [[y.tolist(), p.tolist()] for y, p in pairs], "objective": float(best)})

with open("crates/probe-metrics/tests/fixtures/reference.json", "w") as fh:
    json.dump(out, fh)
print({k: len(v) for k, v in out.items() if isinstance(v, list)})
