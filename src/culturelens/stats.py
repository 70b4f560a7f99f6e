"""Statistics for every number culturelens reports.

* confidence intervals for reported means (:func:`metric_interval`): Wilson score intervals for
  proportions (per-item values in {0, 1}), on the Kish effective sample size with a Korn-Graubard
  degrees-of-freedom correction when rows come in clusters; for other metrics the union of a
  cluster percentile bootstrap, a cluster t-interval and (on [0, 1]) a Wilson interval on the
  effective n, clipped to [0, 1] and never of zero width there. :func:`cluster_bootstrap_ci` (plain percentile bootstrap, resampling whole clusters, i.e.
  rows that share one underlying question) stays for callers that want it as it was;
* partial pooling of per-country proportions (empirical-Bayes beta-binomial,
  :func:`shrink_proportions`) and ranks with uncertainty drawn from its posteriors
  (:func:`posterior_ranks`);
* paired comparisons of two runs on the same items: McNemar (exact binomial when discordant pairs
  are few) for 0/1 metrics, cluster sign-flip permutation test and paired cluster bootstrap otherwise;
* rank agreement (Kendall's tau-b) and the minimum detectable difference of a paired design, so a
  non-significant difference can be called "too few items to tell" rather than "no difference";
* multiple-comparison adjustment (Holm, Benjamini-Hochberg, Bonferroni: :func:`adjust_pvalues`);
* comparison of a score with a baseline (:func:`vs_baseline`, :func:`binomial_p_greater`).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: numbers given as a sequence or an array (every function converts with np.asarray)
Floats = Sequence[float] | NDArray[Any]
Matrix = Sequence[Sequence[float]] | NDArray[Any]


def _sps():  # scipy.stats takes ~1.5 s to import: only when a test statistic is asked for
    from scipy import stats

    return stats


#: groups with fewer scored units than this are flagged (table †, hatched on the map): their interval is wide
SMALL_N = 10
DEFAULT_BOOT = 1000
DEFAULT_PERM = 10000
#: below this many discordant pairs McNemar uses the exact binomial test
EXACT_MCNEMAR_BELOW = 25
#: up to this many clusters the sign-flip permutation test enumerates all 2^k flips
EXACT_PERM_MAX_CLUSTERS = 14


def cluster_bootstrap_ci(
    values: Floats,
    clusters: Sequence[str] | None = None,
    n_boot: int = DEFAULT_BOOT,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean and percentile bootstrap CI; resamples whole clusters when given."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if v.size == 1:
        return mean, mean, mean
    if clusters is None:
        sums, counts = v, np.ones_like(v)
    else:
        _, inv = np.unique(np.asarray(clusters), return_inverse=True)
        sums = np.bincount(inv, weights=v)
        counts = np.bincount(inv).astype(float)
    k = sums.size
    if k == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    # resample in blocks of rows so memory stays bounded however many clusters there are
    # (the generator fills row by row, so the draws equal one (n_boot, k) array's)
    boot = np.empty(n_boot)
    step = max(1, 1_000_000 // k)
    for start in range(0, n_boot, step):
        idx = rng.integers(0, k, size=(min(step, n_boot - start), k))
        boot[start : start + len(idx)] = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return mean, float(lo), float(hi)


# --- intervals for reported means ------------------------------------------------------------------
#: ``ci_method`` values of :class:`Interval`
WILSON = "wilson"  # 0/1 values, independent rows: Wilson score interval
WILSON_KISH = "wilson-kish"  # 0/1 values in clusters: Wilson on the Kish effective n (Korn-Graubard df)
WILSON_BOUND = "wilson-bound"  # [0, 1] values without observed spread: Wilson at the largest variance
BOOTSTRAP_T_WILSON = "bootstrap-t-wilson"  # other [0, 1] values: bootstrap, t and Wilson-on-n_eff united
BOOTSTRAP_T = "bootstrap-t"  # unbounded values: cluster percentile bootstrap united with a t-interval
NO_DATA = "none"
PROPORTION_METHODS = frozenset({WILSON, WILSON_KISH})


@dataclass(frozen=True)
class Interval:
    """A mean with its confidence interval and how the interval was made."""

    mean: float
    low: float
    high: float
    method: str  # WILSON, WILSON_KISH, WILSON_BOUND, BOOTSTRAP_T_WILSON, BOOTSTRAP_T or NO_DATA
    n_eff: float | None = None  # effective sample size behind a Wilson interval


def _zq(alpha: float) -> float:
    """Two-sided normal quantile; stdlib, so a Wilson interval does not need scipy."""
    return NormalDist().inv_cdf(1 - alpha / 2)


@functools.lru_cache(maxsize=1024)
def _tq(alpha: float, df: int) -> float:
    """Two-sided Student t quantile (cached: every breakdown group asks for one)."""
    return float(_sps().t.ppf(1 - alpha / 2, df))


def wilson_interval(
    successes: float | np.ndarray, n: float | np.ndarray, alpha: float = 0.05
) -> tuple[Any, Any]:
    """Wilson score interval for a binomial proportion; broadcasts over arrays.

    ``successes`` and ``n`` may be fractional (effective counts). n <= 0 gives nan. The interval
    always contains ``successes / n`` and has positive width for n > 0, also at 0/n and n/n
    (0/6 -> [0, 0.390], 1/1 -> [0.207, 1]).
    """
    x = np.asarray(successes, dtype=float)
    m = np.asarray(n, dtype=float)
    z = _zq(alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.clip(x / m, 0.0, 1.0)
        denom = 1.0 + z * z / m
        centre = (p + z * z / (2 * m)) / denom
        half = z * np.sqrt(p * (1 - p) / m + z * z / (4 * m * m)) / denom
        lo = np.where(m > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
        hi = np.where(m > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    # at 0/n and n/n the bound is exactly 0 / 1 (rounding can leave 1e-17)
    lo = np.where(p <= 0, 0.0, lo)
    hi = np.where(p >= 1, 1.0, hi)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def clopper_pearson_interval(successes: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval: coverage never below nominal, at the cost of width."""
    if n <= 0:
        return float("nan"), float("nan")
    beta = _sps().beta
    lo = 0.0 if successes <= 0 else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    hi = 1.0 if successes >= n else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return lo, hi


def _cluster_sums(values: np.ndarray, clusters: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray]:
    if clusters is None:
        return values, np.ones_like(values)
    if len(clusters) != values.size:
        raise ValueError("one cluster id per value")
    _, inv = np.unique(np.asarray(clusters), return_inverse=True)
    return np.bincount(inv, weights=values), np.bincount(inv).astype(float)


def kish_effective_n(sums: np.ndarray, sizes: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Effective sample size of a clustered proportion; ``sums`` has shape (..., k), ``sizes`` (k,).

    ``n_eff = p(1 - p) / Var(p)`` with the linearised (ratio-estimator) variance over the k
    clusters, i.e. n / deff with Kish's design effect, deff kept >= 1. Then the Korn-Graubard
    correction multiplies it by ``(z / t_{k-1})^2`` for the k - 1 degrees of freedom the variance
    has. When p is 0 or 1 the variance is 0 and the design effect unknowable: the worst case
    (intra-cluster correlation 1, every cluster one observation) is taken, ``n_eff = n^2 / sum m^2``
    (= k for equal clusters), without the df correction since no variance is estimated.
    """
    s = np.asarray(sums, dtype=float)
    m = np.asarray(sizes, dtype=float)
    k, total = m.size, float(m.sum())
    worst = total * total / float(np.sum(m * m))
    p = s.sum(axis=-1) / total
    if k < 2:
        return np.full(p.shape, worst)
    var = k / (k - 1) * np.sum((s - p[..., None] * m) ** 2, axis=-1) / total**2
    pq = p * (1 - p)
    with np.errstate(invalid="ignore", divide="ignore"):
        n_eff = np.clip(pq / var, 1.0, total)  # var 0 with 0 < p < 1: clusters agree, deff -> 1
    z = _zq(alpha)
    t = _tq(alpha, k - 1)
    degenerate = pq <= 0
    return np.where(degenerate, worst, n_eff * (z / t) ** 2)


def cluster_wilson(
    sums: np.ndarray, sizes: np.ndarray, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high, n_eff) of clustered 0/1 data given per-cluster success counts.

    Vectorised over leading axes of ``sums`` (shape (..., k)) so coverage can be simulated; see
    :func:`kish_effective_n` for the effective n and :func:`wilson_interval` for the interval.
    """
    s = np.asarray(sums, dtype=float)
    m = np.asarray(sizes, dtype=float)
    mean = s.sum(axis=-1) / m.sum()
    n_eff = kish_effective_n(s, m, alpha)
    lo, hi = wilson_interval(mean * n_eff, n_eff, alpha)
    return mean, np.asarray(lo), np.asarray(hi), n_eff


def proportion_interval(
    values: Floats, clusters: Sequence[str] | None = None, alpha: float = 0.05
) -> Interval:
    """Mean and CI of 0/1 values (accuracy and the like).

    Independent rows (no clusters, or every cluster a single row): Wilson score interval on the
    counts. Its coverage stays close to nominal at small n (Brown, Cai & DasGupta 2001), where the
    percentile bootstrap collapses to a point at 0/n, n/n and n = 1; Clopper-Pearson would never
    undercover but is much wider (coverage 0.99-1.0 at n = 5). Clustered rows (items that share one
    underlying question are correlated): Wilson on the Kish effective sample size with the
    Korn-Graubard degrees-of-freedom correction (:func:`kish_effective_n`), the design-based
    analogue used for survey proportions; few clusters make it wide, as they should.
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), NO_DATA)
    if not np.all((v == 0) | (v == 1)):
        raise ValueError("proportion_interval needs values in {0, 1}")
    sums, sizes = _cluster_sums(v, clusters)
    if sizes.max() <= 1:
        lo, hi = wilson_interval(float(v.sum()), float(v.size), alpha)
        return Interval(float(v.mean()), lo, hi, WILSON, float(v.size))
    mean, lo, hi, n_eff = cluster_wilson(sums, sizes, alpha)
    return Interval(float(mean), float(lo), float(hi), WILSON_KISH, float(n_eff))


def mean_interval(
    values: Floats,
    clusters: Sequence[str] | None = None,
    n_boot: int = DEFAULT_BOOT,
    alpha: float = 0.05,
    seed: int = 0,
) -> Interval:
    """Mean and CI of a non-binary metric (fractional scores, similarities, distances).

    With k >= 2 clusters (or rows) and some spread, the interval is the union of

    * the cluster percentile bootstrap (follows skew once k is moderate),
    * a cluster t-interval, ``mean -+ t_{k-1} SE`` with the linearised SE over the clusters (keeps
      width at small k, where the percentile bootstrap is too narrow), and, for a metric on [0, 1],
    * the Wilson interval of the mean as a pseudo-proportion on its effective n,
      ``n_eff = mean (1 - mean) / SE^2`` times the Korn-Graubard factor ``(z / t_{k-1})^2`` (bends
      toward the middle near 0 and 1, where the symmetric intervals undercover skewed scores),

    clipped to [0, 1] when every value lies there (method ``bootstrap-t-wilson``). A [0, 1] metric
    without observed spread (one cluster, or every cluster mean equal) gets the Wilson interval on
    the worst-case effective n, ``n^2 / sum m^2`` (method ``wilson-bound``): a variable on [0, 1]
    with mean mu has variance at most mu (1 - mu), so this bounds the uncertainty without
    estimating it. Outside [0, 1] no bound is known: bootstrap and t only (method ``bootstrap-t``),
    and a metric without spread keeps a zero-width interval.
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), NO_DATA)
    sums, sizes = _cluster_sums(v, clusters)
    k, total = sums.size, float(sizes.sum())
    mean = float(sums.sum() / total)
    bounded = bool(v.min() >= 0.0 and v.max() <= 1.0)
    se = 0.0
    if k >= 2:
        se = math.sqrt(k / (k - 1) * float(np.sum((sums - mean * sizes) ** 2))) / total
    if se <= 1e-12 * max(1.0, abs(mean)):  # no observed spread
        if not bounded:
            return Interval(mean, mean, mean, BOOTSTRAP_T)
        n_eff = total * total / float(np.sum(sizes * sizes))
        wlo, whi = wilson_interval(mean * n_eff, n_eff, alpha)
        return Interval(mean, wlo, whi, WILSON_BOUND, n_eff)
    _, blo, bhi = cluster_bootstrap_ci(v, clusters, n_boot=n_boot, alpha=alpha, seed=seed)
    t = _tq(alpha, k - 1)
    lo, hi = min(blo, mean - t * se), max(bhi, mean + t * se)
    if not bounded:
        return Interval(mean, lo, hi, BOOTSTRAP_T)
    n_eff = mean * (1 - mean) / se**2 * (_zq(alpha) / t) ** 2
    if n_eff > 0:
        wlo, whi = wilson_interval(mean * n_eff, n_eff, alpha)
        lo, hi = min(lo, wlo), max(hi, whi)
    return Interval(mean, max(0.0, lo), min(1.0, hi), BOOTSTRAP_T_WILSON)


def metric_interval(
    values: Floats,
    clusters: Sequence[str] | None = None,
    n_boot: int = DEFAULT_BOOT,
    alpha: float = 0.05,
    seed: int = 0,
    bounds: tuple[float, float] | None = None,
) -> Interval:
    """The interval every reported mean gets: :func:`proportion_interval` when every value is 0 or
    1, :func:`mean_interval` otherwise (see there for the methods and why).

    ``bounds``: the metric's declared scale (e.g. a judge rating on 1-10). Its values are mapped to
    [0, 1], given :func:`mean_interval`'s bounded interval there, and mapped back: a rating column of
    only 1s is not a proportion, and its interval must reach up the scale, not down to 0."""
    v = np.asarray(values, dtype=float)
    if bounds is not None and tuple(bounds) != (0.0, 1.0):
        lo, hi = float(bounds[0]), float(bounds[1])
        if not hi > lo:
            raise ValueError(f"metric bounds must be increasing, got {bounds}")
        iv = mean_interval((v - lo) / (hi - lo), clusters, n_boot=n_boot, alpha=alpha, seed=seed)
        scale = hi - lo
        return Interval(
            iv.mean * scale + lo, iv.low * scale + lo, iv.high * scale + lo,
            f"{iv.method} on [{lo:g}, {hi:g}]", iv.n_eff,
        )  # fmt: skip
    if v.size and np.all((v == 0) | (v == 1)):
        return proportion_interval(v, clusters, alpha)
    return mean_interval(v, clusters, n_boot=n_boot, alpha=alpha, seed=seed)


# --- partial pooling and ranks -------------------------------------------------------------------
#: prior strength (pseudo-observations) is searched in this range
KAPPA_RANGE = (0.1, 1e5)
#: a region's own mean is the prior only when it has this many units; else the global mean
MIN_REGION_UNITS = 3
#: no pooling below this many units in all
MIN_POOL_UNITS = 3


@dataclass(frozen=True)
class Shrunk:
    """One unit's partially pooled proportion (empirical-Bayes beta-binomial posterior)."""

    mean: float  # posterior mean
    low: float  # equal-tailed posterior interval
    high: float
    prior_mean: float
    prior_n: float  # prior strength kappa, in pseudo-items
    toward: str  # "region" (its group's mean) or "global"
    a: float  # posterior Beta(a, b)
    b: float


def _betaln(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.special import betaln

    return betaln(a, b)


def beta_binomial_strength(successes: Floats, trials: Floats, prior_means: Floats) -> float:
    """Prior strength kappa maximising the beta-binomial marginal likelihood.

    Unit i has x_i successes in n_i trials (fractional effective counts allowed) and a true rate
    drawn from Beta(mu_i kappa, (1 - mu_i) kappa) with the given prior means mu_i. Searched over
    :data:`KAPPA_RANGE`; the upper end means the units do not vary beyond binomial noise.
    """
    from scipy.optimize import minimize_scalar

    x = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    mu = np.clip(np.asarray(prior_means, dtype=float), 1e-6, 1 - 1e-6)

    def nll(log_k: float) -> float:
        kap = math.exp(log_k)
        a, b = mu * kap, (1 - mu) * kap
        return -float(np.sum(_betaln(a + x, b + n - x) - _betaln(a, b)))

    lo, hi = math.log(KAPPA_RANGE[0]), math.log(KAPPA_RANGE[1])
    res = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    best = float(res.x)
    # the bounded search never lands exactly on an end: take the end when it is at least as good
    for end in (lo, hi):
        if nll(end) <= nll(best):
            best = end
    return math.exp(best)


def shrink_proportions(
    successes: Floats,
    trials: Floats,
    groups: Sequence[str | None] | None = None,
    alpha: float = 0.05,
    min_group: int = MIN_REGION_UNITS,
) -> list[Shrunk]:
    """Empirical-Bayes partial pooling of unit proportions (e.g. countries) toward a prior mean.

    The prior mean is the unit's group (region) pooled rate when the group has at least
    ``min_group`` units, else the global pooled rate (both (sum x + 1/2) / (sum n + 1), so never 0
    or 1); one prior strength kappa is fitted to all units by marginal likelihood
    (:func:`beta_binomial_strength`). Each unit's posterior is Beta(mu kappa + x, (1 - mu) kappa +
    n - x). Plug-in empirical Bayes: the uncertainty in kappa and the prior means is not
    propagated, so with few units the intervals are somewhat too narrow. Counts may be effective
    (mean * n_eff) for clustered units. Fewer than :data:`MIN_POOL_UNITS` units: empty list.
    """
    x = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    if x.shape != n.shape:
        raise ValueError("one trial count per success count")
    if x.size < MIN_POOL_UNITS:
        return []
    g = list(groups) if groups is not None else [None] * x.size
    glob = (x.sum() + 0.5) / (n.sum() + 1.0)
    size: dict[str | None, int] = {}
    for key in g:
        size[key] = size.get(key, 0) + 1
    mu = np.empty_like(x)
    toward: list[str] = []
    for i, key in enumerate(g):
        if key is not None and size[key] >= min_group:
            members = np.array([gi == key for gi in g])
            mu[i] = (x[members].sum() + 0.5) / (n[members].sum() + 1.0)
            toward.append("region")
        else:
            mu[i] = glob
            toward.append("global")
    kap = beta_binomial_strength(x, n, mu)
    a, b = mu * kap + x, (1 - mu) * kap + n - x
    beta = _sps().beta
    lo, hi = beta.ppf(alpha / 2, a, b), beta.ppf(1 - alpha / 2, a, b)
    return [
        Shrunk(
            float(a[i] / (a[i] + b[i])),
            float(lo[i]),
            float(hi[i]),
            float(mu[i]),
            kap,
            t,
            float(a[i]),
            float(b[i]),
        )
        for i, t in enumerate(toward)
    ]


def posterior_ranks(
    a: Floats,
    b: Floats,
    top_k: int = 3,
    n_sim: int = 4000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Ranks with uncertainty, by simulation from independent Beta(a_i, b_i) posteriors.

    Rank 1 is the highest rate. Returns lists aligned with the inputs: ``rank_mean``, the
    equal-tailed ``rank_low`` / ``rank_high`` interval (level 1 - alpha), and ``p_top`` /
    ``p_bottom``, the probability of being among the ``top_k`` highest / lowest.
    """
    aa, bb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    m = aa.size
    if m == 0:
        return {"rank_mean": [], "rank_low": [], "rank_high": [], "p_top": [], "p_bottom": []}
    rng = np.random.default_rng(seed)
    draws = rng.beta(aa, bb, size=(n_sim, m))
    ranks = m - np.argsort(np.argsort(draws, axis=1, kind="stable"), axis=1)  # 1 = highest
    lo, hi = np.quantile(ranks, [alpha / 2, 1 - alpha / 2], axis=0, method="inverted_cdf")
    k = max(0, min(top_k, m))
    return {
        "rank_mean": ranks.mean(axis=0).tolist(),
        "rank_low": lo.astype(float).tolist(),
        "rank_high": hi.astype(float).tolist(),
        "p_top": np.mean(ranks <= k, axis=0).tolist(),
        "p_bottom": np.mean(ranks > m - k, axis=0).tolist(),
    }


# --- baselines ------------------------------------------------------------------------------------
def vs_baseline(
    mean: float | None, ci_low: float | None, ci_high: float | None, baseline: float | None
) -> str:
    """Where a score stands against a baseline, from its CI.

    ``"above"`` when the whole CI lies above the baseline, ``"below"`` when it lies below, else
    ``"indistinguishable"`` (also when a number is missing).
    """
    vals = (mean, ci_low, ci_high, baseline)
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in vals):
        return "indistinguishable"
    assert ci_low is not None and ci_high is not None and baseline is not None
    if ci_low > baseline:
        return "above"
    if ci_high < baseline:
        return "below"
    return "indistinguishable"


def binomial_p_greater(successes: float, n: float, p0: float) -> float:
    """One-sided exact binomial p-value P(X >= successes | n, p0) for "better than p0".

    Regularised incomplete beta, so effective (fractional) counts work: I_{p0}(x, n - x + 1).
    """
    if n <= 0:
        return float("nan")
    if successes <= 0 or p0 <= 0:
        return 1.0 if successes <= 0 else 0.0
    if p0 >= 1:
        return 1.0 if successes >= n else 0.0
    from scipy.special import betainc

    x = min(float(successes), float(n))
    return float(betainc(x, n - x + 1, p0))


# --- paired tests ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class McNemar:
    b: int  # pairs right in A only
    c: int  # pairs right in B only
    statistic: float  # chi-square (continuity corrected), or min(b, c) for the exact test
    p: float
    method: str  # "exact" | "chi2"


def mcnemar_counts(b: int, c: int, exact: bool | None = None) -> McNemar:
    """McNemar's test from the discordant counts.

    Exact two-sided binomial test (b ~ Bin(b + c, 1/2)) when ``b + c`` is below
    :data:`EXACT_MCNEMAR_BELOW` (or ``exact=True``), otherwise chi-square with continuity correction.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n = b + c
    if n == 0:
        return McNemar(b, c, 0.0, 1.0, "exact")
    if exact is None:
        exact = n < EXACT_MCNEMAR_BELOW
    if exact:
        k = min(b, c)
        p = min(1.0, 2.0 * float(_sps().binom.cdf(k, n, 0.5)))
        return McNemar(b, c, float(k), p, "exact")
    stat = (abs(b - c) - 1.0) ** 2 / n
    return McNemar(b, c, stat, float(_sps().chi2.sf(stat, 1)), "chi2")


def mcnemar(a: Floats, b: Floats, exact: bool | None = None) -> McNemar:
    """McNemar's test on paired 0/1 outcomes of the same items under A and B."""
    x = np.asarray(a, dtype=float) > 0.5
    y = np.asarray(b, dtype=float) > 0.5
    if x.shape != y.shape:
        raise ValueError("paired samples must have the same length")
    return mcnemar_counts(int(np.sum(x & ~y)), int(np.sum(~x & y)), exact=exact)


def _cluster_diff_sums(a: Floats, b: Floats, clusters: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if np.asarray(b).shape != np.asarray(a).shape:
        raise ValueError("paired samples must have the same length")
    if clusters is None:
        return d, np.ones_like(d)
    _, inv = np.unique(np.asarray(clusters), return_inverse=True)
    return np.bincount(inv, weights=d), np.bincount(inv).astype(float)


def paired_bootstrap(
    a: Floats,
    b: Floats,
    clusters: Sequence[str] | None = None,
    n_boot: int = DEFAULT_BOOT,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean difference A - B with a paired (cluster) percentile bootstrap CI."""
    sums, counts = _cluster_diff_sums(a, b, clusters)
    if sums.size == 0:
        return float("nan"), float("nan"), float("nan")
    diff = float(sums.sum() / counts.sum())
    if sums.size == 1:
        return diff, diff, diff
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, sums.size, size=(n_boot, sums.size))
    boot = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return diff, float(lo), float(hi)


def paired_permutation(
    a: Floats,
    b: Floats,
    clusters: Sequence[str] | None = None,
    n_perm: int = DEFAULT_PERM,
    seed: int = 0,
) -> float:
    """Two-sided p-value of the paired sign-flip permutation test on the mean difference.

    Under H0 (A and B exchangeable within each item) the per-cluster difference sums are symmetric
    about 0, so their signs are flipped at random. Exact (all 2^k flips) for few clusters.
    """
    sums, counts = _cluster_diff_sums(a, b, clusters)
    k = sums.size
    if k == 0:
        return float("nan")
    total = counts.sum()
    observed = abs(sums.sum()) / total
    if observed == 0:
        return 1.0
    if k <= EXACT_PERM_MAX_CLUSTERS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=k)))
        null = np.abs(signs @ sums) / total
        return float(np.mean(null >= observed - 1e-12))
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(n_perm, k))
    null = np.abs(signs @ sums) / total
    # add-one estimate so a Monte Carlo p-value is never exactly 0
    return float((np.sum(null >= observed - 1e-12) + 1) / (n_perm + 1))


# --- power ------------------------------------------------------------------------------------------
def _z(q: float) -> float:
    return float(_sps().norm.ppf(q))


def min_detectable_diff(
    se: float, alpha: float = 0.05, power: float = 0.8, max_diff: float | None = 1.0
) -> float:
    """Smallest true difference a two-sided test at ``alpha`` detects with ``power``, given its SE.

    ``max_diff`` is the largest |difference| the metric allows (1 for scores on [0, 1], the
    default; None for no bound). When the normal-approximation answer exceeds it, no difference
    the metric can show is detectable with that power and the result is ``inf``: never a number
    like 2.80 for an accuracy.
    """
    mde = (_z(1 - alpha / 2) + _z(power)) * se
    if max_diff is not None and not mde <= max_diff:
        return math.inf
    return mde


def paired_binary_se(n: int, discordant: int) -> float:
    """Approximate SE of a paired difference in proportions (McNemar setting) under H0.

    With no discordant pair observed, one is assumed so that the estimate stays informative.
    """
    if n <= 0:
        return float("inf")
    psi = max(discordant, 1) / n
    return math.sqrt(psi / n)


def paired_se(a: Floats, b: Floats, clusters: Sequence[str] | None = None) -> float:
    """SE of the mean paired difference, from the spread of per-cluster mean differences."""
    sums, counts = _cluster_diff_sums(a, b, clusters)
    k = sums.size
    if k < 2:
        return float("inf")
    means = sums / counts
    return float(np.std(means, ddof=1) / math.sqrt(k))


# --- rank agreement and multiple testing ---------------------------------------------------------
def kendall_tau(x: Floats, y: Floats) -> float:
    """Kendall's tau-b between two score vectors over the same entities (nan if undefined)."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xa.shape != ya.shape:
        raise ValueError("rankings must cover the same entities")
    if xa.size < 2 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return float("nan")
    return float(_sps().kendalltau(xa, ya).statistic)


def sign_flips(x: Floats, y: Floats, tol: float = 1e-12) -> tuple[int, int]:
    """(flipped, decided) over entity pairs: pairs ordered one way by ``x`` and strictly the other by ``y``.

    ``decided`` counts pairs that are strictly ordered under both; ties are no conclusion either way.
    """
    flipped = decided = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = x[i] - x[j], y[i] - y[j]
        if abs(dx) <= tol or abs(dy) <= tol:
            continue
        decided += 1
        flipped += (dx > 0) != (dy > 0)
    return flipped, decided


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (nan entries are passed through)."""
    return adjust_pvalues(pvalues, "holm")


PADJUST_METHODS = ("holm", "bh", "bonferroni")


def adjust_pvalues(pvalues: Sequence[float], method: str = "holm") -> list[float]:
    """Multiple-comparison adjusted p-values, in the input order; nan entries pass through and do
    not count as tests.

    * ``holm``: Holm's step-down, controls the family-wise error rate (any false flag);
    * ``bh``: Benjamini-Hochberg step-up, controls the false discovery rate (the expected share of
      false flags among the flagged), the usual choice for screening many countries;
    * ``bonferroni``: p * m.
    Same values as R's ``p.adjust`` with these method names ("BH" there).
    """
    method = method.lower()
    if method == "fdr":
        method = "bh"
    if method not in PADJUST_METHODS:
        raise ValueError(f"unknown method {method!r} ({', '.join(PADJUST_METHODS)})")
    vals = [float(p) for p in pvalues]
    idx = [i for i, p in enumerate(vals) if not math.isnan(p)]
    out = list(vals)
    m = len(idx)
    if m == 0:
        return out
    if any(not 0.0 <= vals[i] <= 1.0 for i in idx):
        raise ValueError("p-values must lie in [0, 1]")
    if method == "bonferroni":
        for i in idx:
            out[i] = min(1.0, m * vals[i])
        return out
    if method == "holm":
        running = 0.0
        for rank, i in enumerate(sorted(idx, key=lambda j: vals[j])):
            running = max(running, min(1.0, (m - rank) * vals[i]))
            out[i] = running
        return out
    running = 1.0  # bh: from the largest p down, cumulative minimum of p * m / rank
    order = sorted(idx, key=lambda j: vals[j])
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, vals[i] * m / rank)
        out[i] = running
    return out


# --- do several presentations of the same items differ? ---------------------------------------------
def cochran_q(matrix: Matrix) -> tuple[float, float]:
    """Cochran's Q test: do k related 0/1 outcomes (columns) share one success rate? Returns (Q, p).

    ``matrix`` is items x variants. Items answered identically under every variant carry no
    information and drop out; with none left, p is 1.
    """
    x = (np.asarray(matrix, dtype=float) > 0.5).astype(float)
    if x.ndim != 2 or x.shape[1] < 2 or x.shape[0] == 0:
        return float("nan"), float("nan")
    k = x.shape[1]
    col, row = x.sum(axis=0), x.sum(axis=1)
    total = row.sum()
    denom = k * total - np.sum(row**2)
    if denom <= 0:
        return 0.0, 1.0
    q = (k - 1) * (k * np.sum(col**2) - total**2) / denom
    return float(q), float(_sps().chi2.sf(q, k - 1))


def variants_differ(matrix: Matrix, binary: bool) -> tuple[str, float]:
    """Omnibus test that the column means of an items x variants matrix differ: (test name, p).

    Cochran's Q for 0/1 outcomes, Friedman for continuous ones (3+ variants), the sign-flip
    permutation test for two continuous variants.
    """
    x = np.asarray(matrix, dtype=float)
    if x.ndim != 2 or x.shape[1] < 2 or x.shape[0] < 2:
        return "none", float("nan")
    if binary:
        return "Cochran's Q", cochran_q(x)[1]
    if x.shape[1] == 2:
        return "paired permutation", paired_permutation(x[:, 0], x[:, 1])
    if np.all(np.ptp(x, axis=1) == 0):
        return "Friedman", 1.0
    return "Friedman", float(_sps().friedmanchisquare(*x.T).pvalue)
