"""Agreement between raters (judges, judge wordings, people): Krippendorff's alpha, weighted kappa,
rank correlation.

Krippendorff's alpha comes from the ``krippendorff`` package (PyPI, ``culturelens[judge]``) when it is
installed; otherwise from :func:`alpha_coincidence`, this module's own implementation of the same
coincidence-matrix definition (Krippendorff 2011, "Computing Krippendorff's alpha-reliability"), so a
run without the extra still reports agreement. ``tests/test_judges.py`` checks both against values
computed by hand.

Data layout everywhere here: ``ratings[r][u]`` is rater r's value for unit u, ``None`` (or NaN) when
that rater gave none. Units with fewer than two values are not pairable and are ignored, as the
definition says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

Level = Literal["nominal", "ordinal", "interval", "ratio"]
Ratings = Sequence[Sequence[float | None]]

#: Krippendorff's conventions: alpha >= 0.800 supports conclusions; 0.667 <= alpha < 0.800 only
#: tentative ones; below 0.667 the data do not support conclusions
ALPHA_RELIABLE = 0.800
ALPHA_TENTATIVE = 0.667


def _matrix(ratings: Ratings) -> np.ndarray:
    rows = [[np.nan if v is None else float(v) for v in r] for r in ratings]
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError("ratings: one equally long row of values per rater")
    return np.asarray(rows, dtype=float)


def pairable_units(ratings: Ratings) -> int:
    """Units with at least two values (the ones alpha is computed from)."""
    m = _matrix(ratings)
    return int(((~np.isnan(m)).sum(axis=0) >= 2).sum())


def alpha_coincidence(ratings: Ratings, level: Level = "interval") -> float | None:
    """Krippendorff's alpha from the coincidence matrix; None when it is undefined (fewer than two
    pairable values, or every pairable value the same)."""
    m = _matrix(ratings)
    keep = (~np.isnan(m)).sum(axis=0) >= 2
    m = m[:, keep]
    if m.size == 0:
        return None
    values = np.unique(m[~np.isnan(m)])
    if len(values) < 2:
        return None
    index = {v: i for i, v in enumerate(values)}
    o = np.zeros((len(values), len(values)))
    for u in range(m.shape[1]):
        col = [index[v] for v in m[:, u] if not np.isnan(v)]
        mu = len(col)
        for a in range(mu):
            for b in range(mu):
                if a != b:
                    o[col[a], col[b]] += 1.0 / (mu - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    delta = np.zeros_like(o)
    for c in range(len(values)):
        for k in range(len(values)):
            if level == "nominal":
                delta[c, k] = 0.0 if c == k else 1.0
            elif level == "ordinal":
                lo, hi = min(c, k), max(c, k)
                delta[c, k] = (n_c[lo : hi + 1].sum() - (n_c[c] + n_c[k]) / 2.0) ** 2
            elif level == "interval":
                delta[c, k] = (values[c] - values[k]) ** 2
            elif level == "ratio":
                s = values[c] + values[k]
                delta[c, k] = 0.0 if s == 0 else ((values[c] - values[k]) / s) ** 2
            else:
                raise ValueError(f"unknown level of measurement {level!r}")
    d_o = (o * delta).sum()
    d_e = (np.outer(n_c, n_c) * delta).sum() / (n - 1)
    if d_e == 0:
        return None
    return float(1.0 - d_o / d_e)


def krippendorff_alpha(ratings: Ratings, level: Level = "interval") -> float | None:
    """Krippendorff's alpha (the ``krippendorff`` package when installed, else
    :func:`alpha_coincidence`); None when undefined."""
    m = _matrix(ratings)
    keep = (~np.isnan(m)).sum(axis=0) >= 2
    if keep.sum() == 0 or len(np.unique(m[:, keep][~np.isnan(m[:, keep])])) < 2:
        return None
    try:
        import krippendorff
    except ImportError:
        return alpha_coincidence(ratings, level)
    value = krippendorff.alpha(reliability_data=m[:, keep], level_of_measurement=level)
    return None if value is None or math.isnan(value) else float(value)


def alpha_backend() -> str:
    """Which implementation :func:`krippendorff_alpha` uses here."""
    try:
        import krippendorff  # noqa: F401
    except ImportError:
        return "culturelens.agreement (coincidence matrix)"
    return "krippendorff (PyPI)"


def weighted_kappa(
    a: Sequence[float], b: Sequence[float], categories: Sequence[float], weights: str = "quadratic"
) -> float | None:
    """Cohen's weighted kappa of two raters over the same units (``quadratic`` or ``linear`` weights
    on the category positions); None when undefined (no units, or no expected disagreement)."""
    if len(a) != len(b):
        raise ValueError("weighted_kappa: two equally long rating lists")
    if not a:
        return None
    cats = list(categories)
    pos = {c: i for i, c in enumerate(cats)}
    k = len(cats)
    obs = np.zeros((k, k))
    for x, y in zip(a, b, strict=True):
        obs[pos[x], pos[y]] += 1
    obs /= obs.sum()
    exp = np.outer(obs.sum(axis=1), obs.sum(axis=0))
    i, j = np.indices((k, k))
    w = np.abs(i - j) / max(k - 1, 1)
    if weights == "quadratic":
        w = w**2
    elif weights != "linear":
        raise ValueError(f"weights {weights!r}: quadratic or linear")
    den = (w * exp).sum()
    if den == 0:
        return None
    return float(1.0 - (w * obs).sum() / den)


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0  # ties share their mean rank
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (ties get mean ranks); None with fewer than 3 pairs or no spread."""
    if len(x) != len(y):
        raise ValueError("spearman: two equally long lists")
    if len(x) < 3:
        return None
    rx, ry = _ranks(np.asarray(x, float)), _ranks(np.asarray(y, float))
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def alpha_verdict(alpha: float | None, what: str = "judge agreement") -> str:
    """One line: what Krippendorff's conventions say an alpha supports."""
    if alpha is None:
        return f"{what}: not measurable (too few pairable verdicts, or no spread)"
    if alpha < ALPHA_TENTATIVE:
        return (
            f"{what} too low to support the score (alpha {alpha:.2f} < {ALPHA_TENTATIVE}): "
            "do not draw conclusions from it"
        )
    if alpha < ALPHA_RELIABLE:
        return f"{what} supports tentative conclusions only (alpha {alpha:.2f} < {ALPHA_RELIABLE})"
    return f"{what} sufficient (alpha {alpha:.2f} >= {ALPHA_RELIABLE})"
