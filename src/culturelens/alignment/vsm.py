"""The VSM 2013 report: the model's six indices per condition and their agreement across countries
with Hofstede's published scores."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from culturelens.alignment.samples import Debiased, PerPresentation
from culturelens.stats import kendall_tau, sign_flips
from culturelens.vsm_formulas import VSM_FORMULAS, vsm_indices

#: country -> dimension -> score
Scores = Mapping[str, Mapping[str, float]]


def _sps() -> ModuleType:  # scipy.stats is slow to import: only when a VSM report needs it
    from scipy import stats

    return stats


def _corr(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> dict[str, float | int | None]:
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    n = int(xa.size)
    res: dict[str, float | int | None] = {"n": n, "pearson": None, "spearman": None, "kendall": None}
    if n < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return res
    res["pearson"] = float(_sps().pearsonr(xa, ya).statistic)
    res["spearman"] = float(_sps().spearmanr(xa, ya).statistic)
    res["kendall"] = kendall_tau(xa, ya)
    return res


def _perm_p_spearman(x: np.ndarray, y: np.ndarray, n_perm: int = 5000, seed: int = 0) -> float | None:
    """Two-sided permutation p of Spearman's rho (exact for up to 8 countries)."""
    n = x.size
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    obs = abs(float(_sps().spearmanr(x, y).statistic))
    if n <= 8:
        perms: Iterable[Sequence[int]] = itertools.permutations(range(n))
    else:
        rng = np.random.default_rng(seed)
        perms = (rng.permutation(n).tolist() for _ in range(n_perm))
    hits = total = 0
    for perm in perms:
        yy = y[list(perm)]
        if np.ptp(yy) == 0:
            continue
        total += 1
        hits += abs(float(_sps().spearmanr(x, yy).statistic)) >= obs - 1e-12
    return hits / total if total else None


def _boot_corr(x: np.ndarray, y: np.ndarray, n_boot: int, seed: int) -> list[float] | None:
    """Percentile bootstrap CI of Spearman's rho, resampling countries (needs >= 5 countries)."""
    n = x.size
    if n < 5:
        return None
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if np.ptp(x[idx]) == 0 or np.ptp(y[idx]) == 0:
            continue
        vals.append(float(_sps().spearmanr(x[idx], y[idx]).statistic))
    if len(vals) < n_boot // 2:
        return None
    lo, hi = np.quantile(vals, [0.025, 0.975])
    return [float(lo), float(hi)]


def compare_with_hofstede(
    model: Scores, hofstede: Scores, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Agreement across countries between model VSM indices and published scores.

    VSM constants are arbitrary, so nothing absolute is compared: per dimension, Pearson /
    Spearman / Kendall across countries and pairwise order agreement; overall, the correlation of
    the two after centring each dimension across the countries both cover.
    """
    dims: dict[str, Any] = {}
    pooled_m: list[float] = []
    pooled_h: list[float] = []
    centred: dict[str, dict[str, tuple[float, float]]] = defaultdict(dict)
    for dim in VSM_FORMULAS:
        countries = [c for c in model if dim in model[c] and dim in hofstede.get(c, {})]
        x = np.array([model[c][dim] for c in countries], float)
        y = np.array([hofstede[c][dim] for c in countries], float)
        entry: dict[str, Any] = {"countries": countries, **_corr(x, y)}
        if countries:
            flipped, decided = sign_flips(list(x), list(y))
            entry["pair_agreement"] = (decided - flipped) / decided if decided else None
            entry["pairs"] = decided
            entry["p_spearman"] = _perm_p_spearman(x, y, seed=seed)
            entry["spearman_ci"] = _boot_corr(x, y, n_boot, seed)
            if len(countries) >= 2:
                xs = (x - x.mean()) / (x.std() or 1.0)
                ys = (y - y.mean()) / (y.std() or 1.0)
                pooled_m.extend(xs)
                pooled_h.extend(ys)
                for c, a, b in zip(countries, xs, ys, strict=True):
                    centred[c][dim] = (float(a), float(b))
        dims[dim] = entry
    overall = _corr(pooled_m, pooled_h)
    per_country = {}
    for c, vals in centred.items():
        if len(vals) >= 3:
            a = np.array([v[0] for v in vals.values()])
            b = np.array([v[1] for v in vals.values()])
            per_country[c] = {"profile_r": _corr(a, b)["pearson"], "dims": len(vals)}
    return {"dimensions": dims, "overall": overall, "countries": per_country}


def extrapolability(model: Scores, hofstede: Scores) -> dict[str, Any]:
    """Does agreement on some dimensions predict agreement on a held-out one?

    Unit: a pair of countries. On each dimension the pair "agrees" when the model orders the two
    countries as Hofstede does. For each held-out dimension, the predictor is the pair's agreement
    rate on the other five; reported are the correlation of predictor and held-out agreement
    across pairs, and held-out agreement among pairs the other dimensions get mostly right vs
    mostly wrong. (The paper clusters countries and compares clusterings; see the report.)
    """
    countries = [
        c for c in model if c in hofstede and all(d in model[c] and d in hofstede[c] for d in VSM_FORMULAS)
    ]
    pairs = list(itertools.combinations(countries, 2))
    agree: dict[tuple[str, str], dict[str, float]] = {}
    for a, b in pairs:
        row = {}
        for dim in VSM_FORMULAS:
            dm = model[a][dim] - model[b][dim]
            dh = hofstede[a][dim] - hofstede[b][dim]
            if abs(dm) > 1e-9 and abs(dh) > 1e-9:
                row[dim] = float((dm > 0) == (dh > 0))
        agree[(a, b)] = row
    out: dict[str, Any] = {"countries": countries, "pairs": len(pairs), "held_out": {}}
    for dim in VSM_FORMULAS:
        pred, target = [], []
        for row in agree.values():
            others = [v for d, v in row.items() if d != dim]
            if dim in row and others:
                pred.append(float(np.mean(others)))
                target.append(row[dim])
        entry: dict[str, Any] = {
            "pairs": len(target),
            "agreement": float(np.mean(target)) if target else None,
        }
        entry["r"] = _corr(pred, target)["pearson"] if len(target) >= 3 else None
        hi = [t for p, t in zip(pred, target, strict=True) if p > 0.5]
        lo = [t for p, t in zip(pred, target, strict=True) if p <= 0.5]
        entry["agreement_if_others_agree"] = float(np.mean(hi)) if hi else None
        entry["agreement_if_others_disagree"] = float(np.mean(lo)) if lo else None
        out["held_out"][dim] = entry
    rs = [e["r"] for e in out["held_out"].values() if e["r"] is not None]
    out["mean_r"] = float(np.mean(rs)) if rs else None
    return out


def vsm_report(
    debiased: Debiased,
    per_pres: PerPresentation,
    numbers: Mapping[str, int],
    hofstede: Scores | None,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """VSM 2013 indices per condition (constants 0), their spread over presentation variants, and
    agreement with Hofstede's published scores across the countries of each persona style."""

    def indices(dists: Mapping[str, np.ndarray]) -> dict[str, float] | None:
        means = {numbers[g]: float(d @ np.arange(1, d.size + 1)) for g, d in dists.items() if g in numbers}
        try:
            return vsm_indices(means)
        except ValueError:
            return None

    conditions: dict[str, Any] = {}
    by_style: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for cond, dists in debiased.items():
        idx = indices(dists)
        if idx is None:
            continue
        pres = [i for i in (indices(d) for d in per_pres.get(cond, {}).values()) if i is not None]
        sd = (
            {dim: float(np.std([p[dim] for p in pres], ddof=1)) for dim in VSM_FORMULAS}
            if len(pres) > 1
            else None
        )
        item_means = {
            f"{numbers[g]:02d}": float(d @ np.arange(1, d.size + 1)) for g, d in dists.items() if g in numbers
        }
        conditions[cond.id] = {
            "style": cond.style,
            "target": cond.target,
            "indices": idx,
            "presentation_sd": sd,
            "item_means": dict(sorted(item_means.items())),
        }
        if cond.style is not None and cond.target is not None:
            by_style[cond.style][cond.target] = idx
    out: dict[str, Any] = {
        "constants": "0 for every index (VSM constants are arbitrary; compare across countries only)",
        "conditions": conditions,
        "styles": {},
    }
    for style, model in sorted(by_style.items()):
        entry: dict[str, Any] = {"countries": sorted(model)}
        # how far apart the countries' indices are, against how much one country's index moves with
        # the presentation (option order, labels): below 1, the persona moves less than the wording
        sds = [conditions[f"{style}:{c}"]["presentation_sd"] for c in model]
        entry["country_sd_over_presentation_sd"] = {
            dim: (
                float(np.std([model[c][dim] for c in model], ddof=1))
                / float(np.mean([sd[dim] for sd in sds]))
                if len(model) > 1 and all(sds) and np.mean([sd[dim] for sd in sds]) > 0
                else None
            )
            for dim in VSM_FORMULAS
        }
        if hofstede is not None:
            entry["hofstede"] = compare_with_hofstede(model, hofstede, n_boot=n_boot, seed=seed)
            entry["extrapolability"] = extrapolability(model, hofstede)
            entry["missing_in_hofstede"] = sorted(c for c in model if c not in hofstede)
        out["styles"][style] = entry
    return out
