"""Statistics for every number culturelens reports.

* confidence intervals: percentile bootstrap over items, resampling whole clusters (rows that share
  one underlying question) together;
* paired comparisons of two runs on the same items: McNemar (exact binomial when discordant pairs
  are few) for 0/1 metrics, cluster sign-flip permutation test and paired cluster bootstrap otherwise;
* rank agreement (Kendall's tau-b) and the minimum detectable difference of a paired design, so a
  non-significant difference can be called "too few items to tell" rather than "no difference".
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _sps():  # scipy.stats takes ~1.5 s to import: only when a test statistic is asked for
    from scipy import stats

    return stats


DEFAULT_BOOT = 1000
DEFAULT_PERM = 10000
#: below this many discordant pairs McNemar uses the exact binomial test
EXACT_MCNEMAR_BELOW = 25
#: up to this many clusters the sign-flip permutation test enumerates all 2^k flips
EXACT_PERM_MAX_CLUSTERS = 14


def cluster_bootstrap_ci(
    values: Sequence[float],
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


def mcnemar(a: Sequence[float], b: Sequence[float], exact: bool | None = None) -> McNemar:
    """McNemar's test on paired 0/1 outcomes of the same items under A and B."""
    x = np.asarray(a, dtype=float) > 0.5
    y = np.asarray(b, dtype=float) > 0.5
    if x.shape != y.shape:
        raise ValueError("paired samples must have the same length")
    return mcnemar_counts(int(np.sum(x & ~y)), int(np.sum(~x & y)), exact=exact)


def _cluster_diff_sums(
    a: Sequence[float], b: Sequence[float], clusters: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if np.asarray(b).shape != np.asarray(a).shape:
        raise ValueError("paired samples must have the same length")
    if clusters is None:
        return d, np.ones_like(d)
    _, inv = np.unique(np.asarray(clusters), return_inverse=True)
    return np.bincount(inv, weights=d), np.bincount(inv).astype(float)


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
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
    a: Sequence[float],
    b: Sequence[float],
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


def min_detectable_diff(se: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true difference a two-sided test at ``alpha`` detects with ``power``, given its SE."""
    return (_z(1 - alpha / 2) + _z(power)) * se


def paired_binary_se(n: int, discordant: int) -> float:
    """Approximate SE of a paired difference in proportions (McNemar setting) under H0.

    With no discordant pair observed, one is assumed so that the estimate stays informative.
    """
    if n <= 0:
        return float("inf")
    psi = max(discordant, 1) / n
    return math.sqrt(psi / n)


def paired_se(a: Sequence[float], b: Sequence[float], clusters: Sequence[str] | None = None) -> float:
    """SE of the mean paired difference, from the spread of per-cluster mean differences."""
    sums, counts = _cluster_diff_sums(a, b, clusters)
    k = sums.size
    if k < 2:
        return float("inf")
    means = sums / counts
    return float(np.std(means, ddof=1) / math.sqrt(k))


# --- rank agreement and multiple testing ---------------------------------------------------------
def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b between two score vectors over the same entities (nan if undefined)."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xa.shape != ya.shape:
        raise ValueError("rankings must cover the same entities")
    if xa.size < 2 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return float("nan")
    return float(_sps().kendalltau(xa, ya).statistic)


def sign_flips(x: Sequence[float], y: Sequence[float], tol: float = 1e-12) -> tuple[int, int]:
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
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    order = sorted(idx, key=lambda i: pvalues[i])
    m = len(order)
    out = list(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


# --- do several presentations of the same items differ? ---------------------------------------------
def cochran_q(matrix: Sequence[Sequence[float]]) -> tuple[float, float]:
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


def variants_differ(matrix: Sequence[Sequence[float]], binary: bool) -> tuple[str, float]:
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
