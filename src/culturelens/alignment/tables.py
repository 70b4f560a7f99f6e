"""Country-level summaries: mean similarity per country with bootstrap intervals over questions."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from culturelens.distributions import normalised
from culturelens.stats import cluster_bootstrap_ci


@contextmanager
def quiet() -> Iterator[None]:
    """Silence numpy's warnings for all-NaN slices (missing country data is expected)."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def boot_rows(mat: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap replicates of column nan-means, resampling rows (questions) jointly: (n_boot, cols)."""
    rng = np.random.default_rng(seed)
    g = mat.shape[0]
    idx = rng.integers(0, g, size=(n_boot, g))
    with quiet():
        return np.nanmean(mat[idx], axis=1)


def matrix_mean_ci(mat: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Mean over columns of per-column nan-means, with a CI from resampling rows (questions)."""
    with quiet():
        cols = np.nanmean(mat, axis=0)
        est = float(np.nanmean(cols)) if np.any(np.isfinite(cols)) else float("nan")
        if mat.shape[0] < 2 or not math.isfinite(est):
            return est, est, est
        boot = np.nanmean(boot_rows(mat, n_boot, seed), axis=1)
    boot = boot[np.isfinite(boot)]
    lo, hi = np.quantile(boot, [0.025, 0.975]) if boot.size else (est, est)
    return est, float(lo), float(hi)


def nanmean(v: np.ndarray) -> float | None:
    """Mean of the finite values; None when there are none."""
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else None


def mean_ci(v: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """``{"mean", "ci", "n"}`` of the finite values of one column (questions), bootstrap CI."""
    vals = [float(x) for x in v if math.isfinite(x)]
    if not vals:
        return {"mean": None, "ci": [None, None], "n": 0}
    m, lo, hi = cluster_bootstrap_ci(vals, None, n_boot=n_boot, seed=seed)
    return {"mean": m, "ci": [lo, hi], "n": len(vals)}


def matrix_ci(mat: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """``{"mean", "ci", "n"}`` of :func:`matrix_mean_ci`; ``n`` counts questions with any value."""
    m, lo, hi = matrix_mean_ci(mat, n_boot, seed)
    return {
        "mean": m if math.isfinite(m) else None,
        "ci": [lo, hi],
        "n": int(np.isfinite(mat).any(axis=1).sum()),
    }


def country_table(
    sims: np.ndarray,
    countries: Sequence[str],
    baselines: Mapping[str, np.ndarray] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Per country: mean similarity over its questions with a bootstrap CI, baselines, normalised score,
    rank with a bootstrap interval and the share of resamples in which it is the nearest country.

    ``sims`` is questions x countries, NaN where a country has no data for a question.
    """
    from culturelens.countries import try_normalize_country

    g, c = sims.shape
    rows: list[dict[str, Any]] = []
    if c == 0 or g == 0:
        return rows
    boot = boot_rows(sims, n_boot, seed) if g > 1 else sims[:1]
    with np.errstate(invalid="ignore"):
        filled = np.where(np.isfinite(boot), boot, -np.inf)
    order = np.argsort(-filled, axis=1, kind="stable")
    ranks = np.empty_like(order)
    for b in range(order.shape[0]):
        ranks[b, order[b]] = np.arange(1, c + 1)
    top1 = np.bincount(order[:, 0], minlength=c) / order.shape[0]
    for j, name in enumerate(countries):
        col = sims[:, j]
        vals = col[np.isfinite(col)]
        if vals.size == 0:
            continue
        mean, lo, hi = cluster_bootstrap_ci(list(vals), None, n_boot=n_boot, seed=seed)
        row: dict[str, Any] = {"country": name, "n": int(vals.size), "sim": mean, "ci": [lo, hi]}
        ctry = try_normalize_country(name)
        if ctry is not None:
            row.update({"iso2": ctry.iso2, "iso3": ctry.iso3, "region": ctry.region})
        for bname, bmat in (baselines or {}).items():
            bvals = bmat[:, j][np.isfinite(col) & np.isfinite(bmat[:, j])]
            row[bname] = float(bvals.mean()) if bvals.size else None
        if row.get("uniform") is not None:
            row["normalised"] = normalised(mean, row["uniform"])
        row["rank_ci"] = [int(np.quantile(ranks[:, j], 0.025)), int(np.quantile(ranks[:, j], 0.975))]
        row["p_nearest"] = float(top1[j])
        rows.append(row)
    rows.sort(key=lambda r: -r["sim"])
    for i, r in enumerate(rows, start=1):
        r["rank"] = i
    return rows
