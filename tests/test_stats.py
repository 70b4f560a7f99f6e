"""Statistics helpers checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from culturelens.stats import (
    cluster_bootstrap_ci,
    cochran_q,
    holm,
    kendall_tau,
    mcnemar,
    mcnemar_counts,
    min_detectable_diff,
    paired_binary_se,
    paired_bootstrap,
    paired_permutation,
    sign_flips,
    variants_differ,
)


def test_mcnemar_exact_by_hand() -> None:
    # b=10, c=2: two-sided exact binomial p = 2 * P(X <= 2 | n=12, 1/2) = 2 * (1 + 12 + 66) / 4096
    r = mcnemar_counts(10, 2)
    assert r.method == "exact"
    assert r.p == pytest.approx(2 * 79 / 4096)
    # symmetric counts: p capped at 1
    assert mcnemar_counts(3, 3).p == 1.0
    assert mcnemar_counts(0, 0).p == 1.0


def test_mcnemar_chi2_by_hand() -> None:
    # b=30, c=10: continuity-corrected statistic (|30-10|-1)^2/40 = 9.025; chi2(1) tail = erfc(sqrt(x/2))
    r = mcnemar_counts(30, 10)
    assert r.method == "chi2"
    assert r.statistic == pytest.approx(9.025)
    assert r.p == pytest.approx(math.erfc(math.sqrt(9.025 / 2)))


def test_mcnemar_from_outcomes() -> None:
    a = [1, 1, 1, 1, 0, 0, 1, 0]
    b = [0, 0, 0, 1, 1, 0, 1, 0]
    r = mcnemar(a, b)
    assert (r.b, r.c) == (3, 1)
    assert r.p == pytest.approx(2 * (1 + 4) / 16)  # P(X <= 1 | n=4) = 5/16, doubled
    with pytest.raises(ValueError):
        mcnemar([1, 0], [1])


def test_kendall_tau_by_hand() -> None:
    # one discordant pair of six: (5 - 1) / 6
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # tau-b with a tie in x: 2 concordant, 0 discordant, 3 pairs, 1 tied in x -> 2 / sqrt(2 * 3)
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))  # a constant ranking says nothing


def test_sign_flips() -> None:
    # pairs (0,1): 2>1 vs 1<3 flip; (0,2): tie in y -> undecided; (1,2): 1<2 vs 3>2 flip
    assert sign_flips([2, 1, 3], [1, 3, 1]) == (2, 2)
    assert sign_flips([1, 2, 3], [1, 2, 3]) == (0, 3)


def test_paired_permutation_exact() -> None:
    # three positive differences: of 8 sign patterns only all-plus / all-minus reach |mean| = 1
    assert paired_permutation([1, 1, 1], [0, 0, 0]) == pytest.approx(2 / 8)
    assert paired_permutation([1, 0, 1], [1, 0, 1]) == 1.0
    # clustered: rows 0-1 and 2-3 flip together -> 2 clusters, 4 patterns
    assert paired_permutation([1, 1, 1, 1], [0, 0, 0, 0], clusters=["a", "a", "b", "b"]) == pytest.approx(
        2 / 4
    )


def test_paired_permutation_monte_carlo_is_close_to_exact() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(0.3, 1, 20)
    b = rng.normal(0.0, 1, 20)
    p_mc = paired_permutation(a, b, n_perm=20000, seed=3)  # 20 clusters: Monte Carlo
    p_exact = paired_permutation(a[:14], b[:14])
    assert 0 < p_mc <= 1 and 0 < p_exact <= 1
    # a t-test on the same differences should be in the same ballpark
    from scipy import stats as sps

    assert abs(p_mc - sps.ttest_rel(a, b).pvalue) < 0.1


def test_paired_bootstrap() -> None:
    a = [1, 1, 0, 1, 1, 0, 1, 1, 1, 0]
    b = [0, 1, 0, 0, 1, 0, 1, 0, 1, 0]
    diff, lo, hi = paired_bootstrap(a, b, n_boot=2000, seed=0)
    assert diff == pytest.approx(0.3)
    assert lo <= diff <= hi and lo >= 0.0 and hi <= 0.7
    d1, lo1, hi1 = paired_bootstrap([0.5], [0.25])
    assert (d1, lo1, hi1) == (0.25, 0.25, 0.25)


def test_cluster_bootstrap_ci_resamples_clusters() -> None:
    # two clusters with constant values: every resample is a mix of whole clusters
    vals = [1, 1, 1, 0]
    mean, lo, hi = cluster_bootstrap_ci(vals, ["q1", "q1", "q1", "q2"], n_boot=500)
    assert mean == 0.75
    assert lo == 0.0 and hi == 1.0  # only {q1,q1}, {q2,q2} or a mix can be drawn


def test_power() -> None:
    assert min_detectable_diff(0.1) == pytest.approx((1.959964 + 0.841621) * 0.1, abs=1e-5)
    # 100 pairs, 20 discordant: SE = sqrt(0.2 / 100)
    assert paired_binary_se(100, 20) == pytest.approx(math.sqrt(0.002))
    assert paired_binary_se(100, 0) == pytest.approx(math.sqrt(0.01 / 100))


def test_holm() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    out = holm([0.2, float("nan")])
    assert out[0] == 0.2 and math.isnan(out[1])


def test_cochran_q_two_variants_is_uncorrected_mcnemar() -> None:
    # with k = 2, Q = (b - c)^2 / (b + c)
    a = [1, 1, 1, 1, 0, 0, 1, 0, 1, 1]
    b = [0, 0, 0, 1, 1, 0, 1, 0, 0, 1]
    q, p = cochran_q(np.array([a, b]).T)
    assert q == pytest.approx((4 - 1) ** 2 / 5)
    assert p == pytest.approx(math.erfc(math.sqrt(q / 2)))
    assert cochran_q([[1, 1], [0, 0]]) == (0.0, 1.0)  # no item changes: nothing differs


def test_variants_differ_dispatch() -> None:
    mat = np.array([[1, 0, 0], [1, 0, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0], [1, 0, 0]])
    name, p = variants_differ(mat, binary=True)
    assert name == "Cochran's Q" and p < 0.05
    name, p = variants_differ(mat * 0.5 + 0.1, binary=False)
    assert name == "Friedman" and p < 0.05
