"""Answer distributions on a k-point scale and distances between them (pure math, no culturelens imports).

A model's answer to a survey item is a distribution over the options in original order; the
similarity metrics compare it with one country's human answers, as values in [0, 1] (higher = closer):

* ``jsd``: 1 - Jensen-Shannon distance between distributions (GlobalOpinionQA);
* ``w1``: 1 - Wasserstein-1 distance on the ordinal scale mapped to [0, 1] (WorldValuesBench);
* ``mae``: 1 - |model mean - country mean| on a 0-1 scale (when only means exist).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

METRICS = ("jsd", "w1", "mae")
METRIC_NAMES = {
    "jsd": "1 - Jensen-Shannon distance",
    "w1": "1 - Wasserstein-1 (ordinal scale on [0, 1])",
    "mae": "1 - |mean difference| (0-1 scale)",
}


def as_distribution(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Non-negative vector scaled to sum 1 (survey shares often sum to 0.99 or 1.01)."""
    a = np.asarray(p, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise ValueError("a distribution needs at least one value")
    if np.any(~np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"distribution has negative or non-finite values: {a.tolist()}")
    s = a.sum()
    if s <= 0:
        raise ValueError("distribution sums to zero")
    return a / s


def js_distance(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray, base: float = 2.0) -> float:
    """Jensen-Shannon distance: sqrt of the JS divergence; in [0, 1] with ``base=2``."""
    a, b = as_distribution(p), as_distribution(q)
    if a.size != b.size:
        raise ValueError(f"distributions differ in length ({a.size} vs {b.size})")
    m = (a + b) / 2

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float(np.sum(x[nz] * np.log(x[nz] / m[nz])))

    div = (kl(a) + kl(b)) / 2 / math.log(base)
    return math.sqrt(max(div, 0.0))


def scale_positions(k: int) -> np.ndarray:
    """Positions of a k-point ordinal scale mapped to [0, 1] (min -> 0, max -> 1)."""
    return np.linspace(0.0, 1.0, k) if k > 1 else np.zeros(1)


def expected_position(p: Sequence[float] | np.ndarray) -> float:
    """Mean answer on the 0-1 scale."""
    a = as_distribution(p)
    return float(a @ scale_positions(a.size))


def wasserstein1(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Earth mover's distance between two distributions on the same k-point scale, scale on [0, 1]."""
    a, b = as_distribution(p), as_distribution(q)
    if a.size != b.size:
        raise ValueError(f"distributions differ in length ({a.size} vs {b.size})")
    if a.size == 1:
        return 0.0
    step = 1.0 / (a.size - 1)
    return float(np.sum(np.abs(np.cumsum(a - b)[:-1])) * step)


def uniform(k: int) -> np.ndarray:
    """The uniform distribution over k options."""
    return np.full(k, 1.0 / k)


def onehot(k: int, i: int) -> np.ndarray:
    """All mass on option ``i`` of k."""
    v = np.zeros(k)
    v[i] = 1.0
    return v


def similarity(
    metric: str,
    model: Sequence[float] | np.ndarray,
    ref_dist: Sequence[float] | np.ndarray | None = None,
    ref_mean: float | None = None,
) -> float:
    """Similarity in [0, 1] of a model distribution to one country's reference."""
    if metric == "jsd":
        if ref_dist is None:
            raise ValueError("jsd needs a reference distribution")
        return 1.0 - js_distance(model, ref_dist)
    if metric == "w1":
        if ref_dist is None:
            raise ValueError("w1 needs a reference distribution")
        return 1.0 - wasserstein1(model, ref_dist)
    if metric == "mae":
        if ref_mean is None:
            if ref_dist is None:
                raise ValueError("mae needs a reference mean or distribution")
            ref_mean = expected_position(ref_dist)
        return 1.0 - abs(expected_position(model) - ref_mean)
    raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")


def normalised(model: float, baseline: float, best: float = 1.0) -> float:
    """Share of the gap between a baseline and a perfect score that the model closes."""
    if not (math.isfinite(model) and math.isfinite(baseline)) or best - baseline <= 1e-12:
        return float("nan")
    return (model - baseline) / (best - baseline)
