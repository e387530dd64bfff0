"""probe.metrics against scipy on the same inputs."""

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, pearsonr, spearmanr, wasserstein_distance

import probe

RNG = np.random.default_rng(0)


def dists(n, k=7):
    return [RNG.dirichlet(np.ones(k)) for _ in range(n)]


@pytest.mark.parametrize("p,q", list(zip(dists(20), dists(20))))
def test_divergences_match_scipy(p, q):
    assert probe.metrics.tv(p, q) == pytest.approx(0.5 * np.abs(p - q).sum(), abs=1e-12)
    assert probe.metrics.js_distance(p, q) == pytest.approx(jensenshannon(p, q), abs=1e-10)
    assert probe.metrics.js_divergence(p, q) == pytest.approx(jensenshannon(p, q) ** 2, abs=1e-10)
    assert probe.metrics.kl(p, q) == pytest.approx(entropy(p, q), abs=1e-10)
    assert probe.metrics.entropy(p) == pytest.approx(entropy(p), abs=1e-12)
    assert probe.metrics.normalized_entropy(p) == pytest.approx(entropy(p) / np.log(len(p)), abs=1e-12)
    x = np.arange(len(p), dtype=float)
    assert probe.metrics.wasserstein(p, q) == pytest.approx(wasserstein_distance(x, x, p, q), abs=1e-12)
    pos = np.sort(RNG.normal(size=len(p)))
    w = wasserstein_distance(pos, pos, p, q)
    assert probe.metrics.wasserstein(p, q, positions=pos) == pytest.approx(w, abs=1e-12)
    span = pos.max() - pos.min()
    assert probe.metrics.wasserstein(p, q, positions=pos, normalized=True) == pytest.approx(w / span, abs=1e-12)


def test_correlations_match_scipy():
    x, y = RNG.normal(size=50), RNG.normal(size=50)
    y[:10] = x[:10]
    assert probe.metrics.pearson(x, y) == pytest.approx(pearsonr(x, y)[0], abs=1e-12)
    ties = np.round(x, 1)
    assert probe.metrics.spearman(ties, y) == pytest.approx(spearmanr(ties, y)[0], abs=1e-12)


def test_bad_distributions_raise_probe_errors():
    with pytest.raises(probe.ProbeError):
        probe.metrics.tv([0.5, 0.5], [1.0])
    with pytest.raises(probe.ProbeError):
        probe.metrics.tv([0.5, 0.6], [0.5, 0.5])
