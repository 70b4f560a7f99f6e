"""Statistics helpers checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from culturelens.stats import (
    adjust_pvalues,
    beta_binomial_strength,
    binomial_p_greater,
    clopper_pearson_interval,
    cluster_bootstrap_ci,
    cochran_q,
    holm,
    kendall_tau,
    kish_effective_n,
    mcnemar,
    mcnemar_counts,
    mean_interval,
    metric_interval,
    min_detectable_diff,
    paired_binary_se,
    paired_bootstrap,
    paired_permutation,
    posterior_ranks,
    proportion_interval,
    shrink_proportions,
    sign_flips,
    variants_differ,
    vs_baseline,
    wilson_interval,
)

Z = 1.959963984540054  # two-sided 95% normal quantile


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
    # a 0/1 metric's difference lies in [-1, 1]: 2.80 is never "detectable", it is "nothing is"
    assert min_detectable_diff(1.0) == math.inf
    assert min_detectable_diff(0.35) == pytest.approx(0.980, abs=1e-3)  # just inside the range
    assert min_detectable_diff(1.0, max_diff=None) == pytest.approx(2.8016, abs=1e-4)
    assert min_detectable_diff(1.0, max_diff=5.0) == pytest.approx(2.8016, abs=1e-4)
    assert min_detectable_diff(float("inf")) == math.inf
    # 100 pairs, 20 discordant: SE = sqrt(0.2 / 100)
    assert paired_binary_se(100, 20) == pytest.approx(math.sqrt(0.002))
    assert paired_binary_se(100, 0) == pytest.approx(math.sqrt(0.01 / 100))


def test_holm() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    out = holm([0.2, float("nan")])
    assert out[0] == 0.2 and math.isnan(out[1])


def test_adjust_pvalues_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max
    assert adjust_pvalues(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: p * 4 / rank = 0.02, 0.02, 0.04, 0.04 for ranks 1..4, then cumulative min from the top
    assert adjust_pvalues(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust_pvalues(p, "fdr") == adjust_pvalues(p, "BH")
    assert adjust_pvalues(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.02])
    # the step-up makes a larger p pull smaller ones down: 0.04 * 3 / 3 = 0.04 < 0.03 * 3 / 2 = 0.045
    assert adjust_pvalues([0.03, 0.04, 0.02], "bh") == pytest.approx([0.04, 0.04, 0.04])
    # capped at 1, nan passed through and not counted as a test (m = 2)
    out = adjust_pvalues([0.6, float("nan"), 0.7], "bh")
    assert out[0] == pytest.approx(0.7) and math.isnan(out[1]) and out[2] == pytest.approx(0.7)
    assert adjust_pvalues([0.6, 0.9], "bonferroni") == [1.0, 1.0]
    assert adjust_pvalues([], "holm") == []
    with pytest.raises(ValueError):
        adjust_pvalues([0.1], "sidak")
    with pytest.raises(ValueError):
        adjust_pvalues([1.5], "bh")


# --- intervals -----------------------------------------------------------------------------------
def test_wilson_by_hand() -> None:
    # 0/6: [0, z^2 / (n + z^2)];  1/1: [1 / (1 + z^2), 1]
    assert wilson_interval(0, 6) == pytest.approx((0.0, Z**2 / (6 + Z**2)))
    assert wilson_interval(0, 6)[1] == pytest.approx(0.3903, abs=1e-4)
    assert wilson_interval(1, 1) == pytest.approx((1 / (1 + Z**2), 1.0))
    # 2/5: centre (0.4 + z^2/10) / (1 + z^2/5), half z sqrt(0.24/5 + z^2/100) / (1 + z^2/5)
    d = 1 + Z**2 / 5
    c, h = (0.4 + Z**2 / 10) / d, Z * math.sqrt(0.24 / 5 + Z**2 / 100) / d
    assert wilson_interval(2, 5) == pytest.approx((c - h, c + h))
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    lo, hi = wilson_interval(np.array([0, 3]), np.array([6, 6]))
    assert lo[0] == 0.0 and hi[1] == pytest.approx(1 - lo[1])  # symmetric about 1/2


def test_clopper_pearson_by_hand() -> None:
    # 0/6: upper = 1 - 0.025^(1/6);  6/6: lower = 0.025^(1/6)
    assert clopper_pearson_interval(0, 6) == pytest.approx((0.0, 1 - 0.025 ** (1 / 6)))
    assert clopper_pearson_interval(6, 6) == pytest.approx((0.025 ** (1 / 6), 1.0))


def test_small_n_intervals_are_honest() -> None:
    """The issue's cases: 0/6 and n = 1 no longer read as certainty."""
    zero = metric_interval([0.0] * 6)
    assert zero.method == "wilson" and zero.low == 0.0 and zero.high == pytest.approx(0.3903, abs=1e-4)
    one = metric_interval([1.0])
    assert one.method == "wilson" and one.high == 1.0 and one.low == pytest.approx(0.2065, abs=1e-4)
    # the old bootstrap said [0, 0] and [1, 1]
    assert cluster_bootstrap_ci([0.0] * 6)[1:] == (0.0, 0.0)
    assert cluster_bootstrap_ci([1.0])[1:] == (1.0, 1.0)
    empty = metric_interval([])
    assert empty.method == "none" and math.isnan(empty.mean)
    # singleton clusters are independent rows: plain Wilson
    assert proportion_interval([1, 0, 1], ["a", "b", "c"]) == proportion_interval([1, 0, 1])
    with pytest.raises(ValueError):
        proportion_interval([0.5])


def test_kish_effective_n_by_hand() -> None:
    # clusters of 2 with 2, 1, 0 successes: p = 1/2; linearised Var = 3/2 * (1 + 0 + 1) / 36 = 1/12
    # against p(1-p)/n = 1/24: deff 2, n_eff 3; Korn-Graubard: * (z / t_2)^2, t_2 = 4.302653
    n_eff = float(kish_effective_n(np.array([2.0, 1.0, 0.0]), np.array([2.0, 2.0, 2.0])))
    assert n_eff == pytest.approx(3 * (Z / 4.302653) ** 2, rel=1e-6)
    iv = metric_interval([1, 1, 1, 0, 0, 0], ["a", "a", "b", "b", "c", "c"])
    assert iv.method == "wilson-kish" and iv.n_eff == pytest.approx(n_eff)
    assert (iv.low, iv.high) == pytest.approx(wilson_interval(0.5 * n_eff, n_eff))
    # p = 0: no variance to estimate; worst case (icc 1): n^2 / sum m^2 = 49 / (9 + 16) = 1.96
    assert float(kish_effective_n(np.array([0.0, 0.0]), np.array([3.0, 4.0]))) == pytest.approx(1.96)
    zero = metric_interval([0.0] * 6, ["a", "a", "a", "b", "b", "b"])
    assert zero.n_eff == pytest.approx(2.0) and zero.high == pytest.approx(Z**2 / (2 + Z**2))
    # a design effect below 1 is not believed: n_eff stays <= n (before the df factor)
    even = float(kish_effective_n(np.array([1.0, 1.0, 1.0, 1.0]), np.array([2.0, 2.0, 2.0, 2.0])))
    assert even == pytest.approx(8 * (Z / 3.182446) ** 2, rel=1e-6)
    # one cluster holding everything: one observation's worth
    assert metric_interval([1, 0, 1], ["q", "q", "q"]).n_eff == pytest.approx(1.0)


def test_mean_interval_never_zero_width_on_unit_range() -> None:
    # no spread: Wilson of 0.7 as a pseudo-proportion on n = 5
    iv = mean_interval([0.7] * 5)
    assert iv.method == "wilson-bound" and (iv.low, iv.high) == pytest.approx(wilson_interval(3.5, 5))
    assert iv.low < 0.7 < iv.high
    # one value, one cluster of several: worst case n_eff = 1
    assert mean_interval([0.25]).n_eff == 1.0
    assert mean_interval([0.2, 0.4], ["q", "q"]).n_eff == 1.0
    # with spread: contains the t-interval (t_1 = 12.706) and stays in [0, 1]
    iv = mean_interval([0.7, 0.71])
    assert iv.method == "bootstrap-t-wilson"
    assert iv.low <= 0.705 - 12.7062 * 0.005 + 1e-9 and iv.high >= 0.705 + 12.7062 * 0.005 - 1e-9
    iv = mean_interval([0.9, 1.0, 0.95, 1.0])
    assert 0.0 <= iv.low < iv.mean < iv.high == 1.0
    # outside [0, 1] nothing bounds the variance: bootstrap and t only, no clipping
    iv = mean_interval([2.0, 3.0, 5.0])
    se = math.sqrt(7 / 3 / 3)
    assert iv.method == "bootstrap-t" and iv.low == pytest.approx(10 / 3 - 4.302653 * se, rel=1e-6)
    assert mean_interval([2.0, 2.0]).method == "bootstrap-t"


def test_metric_interval_dispatch() -> None:
    assert metric_interval([1, 0, 1, 1]).method == "wilson"
    assert metric_interval([1, 0, 0.5]).method == "bootstrap-t-wilson"


# --- pooling and ranks ----------------------------------------------------------------------------
def test_beta_binomial_strength_is_the_marginal_ml() -> None:
    x = np.array([2, 9, 5, 14, 1, 7])
    n = np.array([10, 12, 10, 20, 8, 9])
    mu = np.full(6, (x.sum() + 0.5) / (n.sum() + 1))
    kap = beta_binomial_strength(x, n, mu)
    from scipy import stats as sps

    def loglik(k: float) -> float:
        return float(np.sum(sps.betabinom.logpmf(x, n, mu * k, (1 - mu) * k)))

    grid = np.exp(np.linspace(np.log(0.1), np.log(1e5), 4001))
    best = grid[np.argmax([loglik(k) for k in grid])]
    assert kap == pytest.approx(best, rel=0.01)
    assert loglik(kap) >= loglik(best) - 1e-6


def test_shrinkage_by_hand() -> None:
    # identical countries: no spread beyond binomial noise, kappa at its upper end, full pooling
    s = shrink_proportions([5, 5, 5, 5], [10, 10, 10, 10])
    assert all(r.prior_n == pytest.approx(1e5) and r.mean == pytest.approx(0.5, abs=1e-4) for r in s)
    assert all(r.toward == "global" and r.prior_mean == pytest.approx(20.5 / 41) for r in s)
    # posterior Beta(mu k + x, (1 - mu) k + n - x): check one unit's numbers from its fields
    s = shrink_proportions([0, 5, 10, 3, 8], [6, 10, 12, 5, 20], ["E", "E", "E", "A", "A"])
    first = s[0]
    assert first.toward == "region" and first.prior_mean == pytest.approx(15.5 / 29)
    assert first.a == pytest.approx(first.prior_mean * first.prior_n)
    assert first.b == pytest.approx((1 - first.prior_mean) * first.prior_n + 6)
    assert first.mean == pytest.approx(first.a / (first.a + first.b))
    assert 0.0 < first.mean < first.prior_mean  # 0/6 pulled up toward its region, not to it
    assert s[3].toward == "global" and s[3].prior_mean == pytest.approx(26.5 / 54)  # region of 2
    # a heavily sampled unit barely moves; a thin one moves more
    raw = [0 / 6, 5 / 10, 10 / 12, 3 / 5, 8 / 20]
    assert abs(s[4].mean - raw[4]) < abs(s[0].mean - raw[0])
    assert shrink_proportions([1, 2], [3, 4]) == []  # two units: nothing to pool


def test_posterior_ranks() -> None:
    # three well separated rates: ranks are sure
    r = posterior_ranks([900, 500, 100], [100, 500, 900], top_k=1, n_sim=2000)
    assert r["rank_mean"] == pytest.approx([1, 2, 3])
    assert r["rank_low"] == [1, 2, 3] and r["rank_high"] == [1, 2, 3]
    assert r["p_top"] == [1.0, 0.0, 0.0] and r["p_bottom"] == [0.0, 0.0, 1.0]
    # two identical posteriors: each first half the time
    r = posterior_ranks([5, 5], [5, 5], top_k=1, n_sim=20000)
    assert r["p_top"] == pytest.approx([0.5, 0.5], abs=0.02)
    assert r["rank_low"] == [1.0, 1.0] and r["rank_high"] == [2.0, 2.0]
    assert sum(r["rank_mean"]) == pytest.approx(3.0)


# --- baselines -------------------------------------------------------------------------------------
def test_vs_baseline() -> None:
    assert vs_baseline(0.6, 0.55, 0.65, 0.25) == "above"
    assert vs_baseline(0.2, 0.1, 0.24, 0.25) == "below"
    assert vs_baseline(0.3, 0.2, 0.4, 0.25) == "indistinguishable"
    assert vs_baseline(0.3, 0.25, 0.4, 0.25) == "indistinguishable"  # touching is not above
    assert vs_baseline(None, None, None, 0.25) == "indistinguishable"
    assert vs_baseline(0.3, float("nan"), 0.4, 0.25) == "indistinguishable"


def test_binomial_p_greater_by_hand() -> None:
    # P(X >= 7 | 10, 1/2) = (120 + 45 + 10 + 1) / 1024
    assert binomial_p_greater(7, 10, 0.5) == pytest.approx(176 / 1024)
    # P(X >= 3 | 3, 1/4) = 1/64
    assert binomial_p_greater(3, 3, 0.25) == pytest.approx(1 / 64)
    assert binomial_p_greater(0, 10, 0.25) == 1.0
    # effective counts interpolate smoothly
    assert binomial_p_greater(7, 10, 0.5) < binomial_p_greater(6.5, 10, 0.5) < binomial_p_greater(6, 10, 0.5)
    assert math.isnan(binomial_p_greater(1, 0, 0.5))


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


def test_metric_interval_on_a_declared_scale():
    """A 1-10 rating is mapped to [0, 1], bounded there, and mapped back."""
    from culturelens.stats import mean_interval, metric_interval

    ones = metric_interval([1.0] * 6, bounds=(1.0, 10.0))
    assert ones.mean == 1.0 and ones.low == pytest.approx(1.0) and ones.high > 1.5
    assert ones.method.endswith("on [1, 10]")
    vals = [1.0, 4.0, 7.0, 10.0, 3.0, 6.0]
    scaled = mean_interval([(v - 1) / 9 for v in vals], n_boot=500, seed=3)
    iv = metric_interval(vals, n_boot=500, seed=3, bounds=(1.0, 10.0))
    assert (iv.mean, iv.low, iv.high) == pytest.approx(
        (scaled.mean * 9 + 1, scaled.low * 9 + 1, scaled.high * 9 + 1)
    )
    assert 1.0 <= iv.low < iv.mean < iv.high <= 10.0
    # (0, 1) bounds change nothing; reversed bounds are an error
    assert metric_interval([0.0, 1.0, 1.0], bounds=(0.0, 1.0)) == metric_interval([0.0, 1.0, 1.0])
    with pytest.raises(ValueError):
        metric_interval([1.0], bounds=(10.0, 1.0))
