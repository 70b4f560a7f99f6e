"""Coverage of the reported 95% intervals, by simulation (seeded, vectorised, a few seconds).

Tolerances (nominal 0.95):

* 0/1 metrics, independent rows (Wilson): coverage >= 0.90 at n = 5 (Bin(5, p) has 6 outcomes, so
  nominal cannot be hit exactly) and within 0.035 of 0.95 at n = 20 and 100;
* 0/1 metrics in clusters (Wilson on the Kish effective n, Korn-Graubard df): >= 0.92 at every
  number of clusters, within 0.03 of 0.95 from 25 clusters on (few clusters make it conservative);
* [0, 1] fractional metrics (bootstrap / t / Wilson union): >= 0.86 at n = 5 and >= 0.90 from
  n = 20 for p in 0.2-0.9; at p = 0.05 (a very skewed Beta(0.2, 3.8)) >= 0.75 at n = 5 and >= 0.87
  from n = 20 (about 0.84 / 0.92 / 0.94 with 1,000 draws; the percentile bootstrap alone: 0.66 /
  0.84 / 0.91). These bounds leave room for the Monte Carlo error of 300 draws (about 0.015).

The Monte Carlo error is below 0.002 for the iid 0/1 cases (20,000 draws) and 0.003 for the
clustered ones (6,000); simulated coverage of the iid Wilson interval is also checked against the
exact binomial sum.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from culturelens.stats import (
    cluster_bootstrap_ci,
    cluster_wilson,
    mean_interval,
    metric_interval,
    proportion_interval,
    wilson_interval,
)

NS = (5, 20, 100)
PS = (0.05, 0.2, 0.5, 0.9)
DRAWS = 20_000
CLUSTER_DRAWS = 6_000


def _wilson_exact(n: int, p: float) -> float:
    x = np.arange(n + 1)
    lo, hi = wilson_interval(x, np.full(n + 1, n))
    return float(np.sum(sps.binom.pmf(x, n, p) * ((lo <= p) & (p <= hi))))


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("p", PS)
def test_wilson_coverage_iid(n: int, p: float) -> None:
    rng = np.random.default_rng(1000 * n + int(100 * p))
    x = rng.binomial(n, p, DRAWS)
    lo, hi = wilson_interval(x, np.full(DRAWS, n))
    cov = float(np.mean((lo <= p) & (p <= hi)))
    exact = _wilson_exact(n, p)
    assert abs(cov - exact) < 4 * np.sqrt(exact * (1 - exact) / DRAWS) + 1e-9
    if n == 5:
        assert cov >= 0.90
    else:
        assert abs(cov - 0.95) <= 0.035
    # the public entry point gives the same interval as the vectorised formula
    iv = proportion_interval([1.0] * int(x[0]) + [0.0] * (n - int(x[0])))
    assert iv.method == "wilson" and (iv.low, iv.high) == pytest.approx((lo[0], hi[0]))


def test_percentile_bootstrap_was_not_honest_at_small_n() -> None:
    """Why the aggregates left the percentile bootstrap: at n = 5, p = 0.05 every all-wrong sample
    (77% of them) gets [0, 0]. Exact coverage over the 6 outcomes, with the old function."""
    n, p = 5, 0.05
    cover = 0.0
    for x in range(n + 1):
        _, lo, hi = cluster_bootstrap_ci([1.0] * x + [0.0] * (n - x), n_boot=500)
        cover += sps.binom.pmf(x, n, p) * (lo <= p <= hi)
    assert cover < 0.25
    assert _wilson_exact(n, p) > 0.95


def _clustered(rng: np.random.Generator, p: float, icc: float, sizes: np.ndarray, draws: int) -> np.ndarray:
    """Per-cluster success counts: cluster rates ~ Beta with mean p and intra-cluster correlation icc."""
    a, b = p * (1 - icc) / icc, (1 - p) * (1 - icc) / icc
    rates = rng.beta(a, b, size=(draws, sizes.size))
    return rng.binomial(sizes.astype(int), rates).astype(float)


@pytest.mark.parametrize("k", (5, 25, 100))
@pytest.mark.parametrize("p", PS)
def test_cluster_wilson_coverage(k: int, p: float) -> None:
    """Clusters of 4 rows with intra-cluster correlation 0.3 (design effect 1.9): n = 4k rows."""
    rng = np.random.default_rng(7 * k + int(100 * p))
    sizes = np.full(k, 4.0)
    sums = _clustered(rng, p, 0.3, sizes, CLUSTER_DRAWS)
    _, lo, hi, _ = cluster_wilson(sums, sizes)
    cov = float(np.mean((lo <= p) & (p <= hi)))
    assert cov >= 0.92
    if k >= 25:
        assert abs(cov - 0.95) <= 0.03


@pytest.mark.parametrize("p", (0.2, 0.5))
def test_cluster_wilson_coverage_unequal_clusters(p: float) -> None:
    """Strong clustering (icc 0.6) in 30 clusters of 1 to 10 rows: still near nominal."""
    rng = np.random.default_rng(int(100 * p))
    sizes = np.tile(np.array([1.0, 2.0, 3.0, 5.0, 8.0, 10.0]), 5)
    sums = _clustered(rng, p, 0.6, sizes, CLUSTER_DRAWS)
    _, lo, hi, n_eff = cluster_wilson(sums, sizes)
    cov = float(np.mean((lo <= p) & (p <= hi)))
    assert abs(cov - 0.95) <= 0.03
    assert float(np.median(n_eff)) < sizes.sum() / 2  # the design effect is felt
    # ignoring the clusters would claim far more certainty than there is
    lo_iid, hi_iid = wilson_interval(sums.sum(axis=1), np.full(CLUSTER_DRAWS, sizes.sum()))
    assert float(np.mean((lo_iid <= p) & (p <= hi_iid))) < 0.85


def test_cluster_wilson_matches_metric_interval() -> None:
    sums = np.array([3.0, 1.0, 0.0, 4.0, 2.0])
    sizes = np.array([4.0, 2.0, 3.0, 4.0, 5.0])
    values, clusters = [], []
    for c, (s, m) in enumerate(zip(sums, sizes, strict=True)):
        values += [1.0] * int(s) + [0.0] * int(m - s)
        clusters += [f"q{c}"] * int(m)
    mean, lo, hi, n_eff = cluster_wilson(sums, sizes)
    iv = metric_interval(values, clusters)
    assert iv.method == "wilson-kish"
    assert [iv.mean, iv.low, iv.high, iv.n_eff] == pytest.approx(
        [float(mean), float(lo), float(hi), float(n_eff)]
    )


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("p", PS)
def test_fractional_metric_coverage(n: int, p: float) -> None:
    """Scores on [0, 1] drawn from Beta(4p, 4(1 - p)) (skewed near 0 and 1)."""
    rng = np.random.default_rng(31 * n + int(100 * p))
    draws = 300
    values = rng.beta(4 * p, 4 * (1 - p), size=(draws, n))
    hit = 0
    for i, v in enumerate(values):
        iv = mean_interval(v, n_boot=100, seed=i)
        assert iv.method == "bootstrap-t-wilson" and 0.0 <= iv.low < iv.mean < iv.high <= 1.0
        hit += iv.low <= p <= iv.high
    cov = hit / draws
    if p == 0.05:
        assert cov >= (0.75 if n == 5 else 0.87)
    else:
        assert cov >= (0.86 if n == 5 else 0.90)
