"""Confidence intervals: cluster bootstrap over items (rows sharing a question resample together)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_BOOT = 1000


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
    idx = rng.integers(0, k, size=(n_boot, k))
    boot = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return mean, float(lo), float(hi)
