"""Whose values do a model's answers resemble? Survey alignment, Hofstede dimensions, steerability.

A model's answer to a survey item is a distribution over the answer scale (``Score.probs``, in
original option order). The distribution is *debiased* by averaging it over the presentation
variants of a run (option order, scale direction, label style, template): each variant's
position and label preferences pull in different directions, and the average is what remains.
The bias that was removed is reported (distance of each variant from the average, excess mass on
the first / last displayed position).

Metrics against one country's human data, as similarities in [0, 1] (higher = closer):

* ``jsd``: 1 - Jensen-Shannon distance between distributions (GlobalOpinionQA);
* ``w1``: 1 - Wasserstein-1 distance on the ordinal scale mapped to [0, 1] (WorldValuesBench);
* ``mae``: 1 - |model mean - country mean| on a 0-1 scale (when only means exist).

Each comes with a uniform baseline, a majority baseline (all mass on the option most chosen
across the reference countries), a leave-one-out pooled baseline (the average of the other
countries) and a normalised score ``(model - uniform) / (1 - uniform)``.

Run-level entry point: :func:`analyze_alignment` reads a run directory (``config.json``,
``samples.jsonl``), reloads the survey tasks' items for their reference data and writes
``alignment.json``: per country similarity with bootstrap CIs over questions, nearest countries,
baselines, removed bias, steerability and specificity when persona variants were run, and the
VSM 2013 indices compared with Hofstede's published scores for the ``vsm`` task.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from culturelens.stats import cluster_bootstrap_ci, kendall_tau, sign_flips

METRICS = ("jsd", "w1", "mae")
METRIC_NAMES = {
    "jsd": "1 - Jensen-Shannon distance",
    "w1": "1 - Wasserstein-1 (ordinal scale on [0, 1])",
    "mae": "1 - |mean difference| (0-1 scale)",
}


# --- distributions and distances ---------------------------------------------------------------------


def _sps():  # scipy.stats is slow to import: only when a survey task needs it
    from scipy import stats

    return stats


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


def js_distance(p: Sequence[float], q: Sequence[float], base: float = 2.0) -> float:
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


def expected_position(p: Sequence[float]) -> float:
    """Mean answer on the 0-1 scale."""
    a = as_distribution(p)
    return float(a @ scale_positions(a.size))


def wasserstein1(p: Sequence[float], q: Sequence[float]) -> float:
    """Earth mover's distance between two distributions on the same k-point scale, scale on [0, 1]."""
    a, b = as_distribution(p), as_distribution(q)
    if a.size != b.size:
        raise ValueError(f"distributions differ in length ({a.size} vs {b.size})")
    if a.size == 1:
        return 0.0
    step = 1.0 / (a.size - 1)
    return float(np.sum(np.abs(np.cumsum(a - b)[:-1])) * step)


def uniform(k: int) -> np.ndarray:
    return np.full(k, 1.0 / k)


def onehot(k: int, i: int) -> np.ndarray:
    v = np.zeros(k)
    v[i] = 1.0
    return v


def similarity(
    metric: str,
    model: Sequence[float],
    ref_dist: Sequence[float] | None = None,
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


# --- VSM 2013 ---------------------------------------------------------------------------------------
#: index = sum of weight * (m[first] - m[second]) + C  (VSM 2013 Manual, section 6)
VSM_FORMULAS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "PDI": ((35, 7, 2), (25, 20, 23)),
    "IDV": ((35, 4, 1), (35, 9, 6)),
    "MAS": ((35, 5, 3), (35, 8, 10)),
    "UAI": ((40, 18, 15), (25, 21, 24)),
    "LTO": ((40, 13, 14), (25, 19, 22)),
    "IVR": ((35, 12, 11), (40, 17, 16)),
}
VSM_DIMENSIONS: dict[str, tuple[int, ...]] = {
    dim: tuple(sorted({t[1] for t in f} | {t[2] for t in f})) for dim, f in VSM_FORMULAS.items()
}
#: Hofstede CSV column per dimension (LTO is Minkov's WVS-based re-estimate)
HOFSTEDE_COLUMNS = {"PDI": "pdi", "IDV": "idv", "MAS": "mas", "UAI": "uai", "LTO": "ltowvs", "IVR": "ivr"}


def vsm_indices(means: Mapping[int, float], constants: Mapping[str, float] | None = None) -> dict[str, float]:
    """The six VSM 2013 indices from item means (items 1..24 on their 1-5 codes).

    The constants C default to 0: they are arbitrary, so only differences between samples
    (countries) carry meaning.
    """
    out = {}
    for dim, terms in VSM_FORMULAS.items():
        missing = [n for t in terms for n in t[1:] if n not in means]
        if missing:
            raise ValueError(f"{dim} needs item(s) {sorted(set(missing))}")
        value = sum(w * (means[a] - means[b]) for w, a, b in terms)
        out[dim] = float(value + (constants or {}).get(dim, 0.0))
    return out


def load_hofstede(path: str | Path) -> dict[str, dict[str, float]]:
    """Published 6-D country scores: canonical country -> {PDI, IDV, ...}; regions and missing values dropped."""
    from culturelens.countries import UnknownCountryError, hofstede_code, try_normalize_country
    from culturelens.errors import DatasetError

    p = Path(path)
    if not p.exists():
        raise DatasetError(p, "file not found")
    text = p.read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(text.splitlines(), delimiter=";"))
    if not rows or "ctr" not in rows[0]:
        raise DatasetError(
            p, "expected a semicolon-separated file with columns ctr;country;pdi;idv;...", field="ctr"
        )
    out: dict[str, dict[str, float]] = {}
    for i, row in enumerate(rows, start=2):
        try:
            country = hofstede_code(row["ctr"])
        except UnknownCountryError:  # a code culturelens does not know: fall back to the name column
            country = try_normalize_country(row.get("country") or "")
        if country is None or country.subnational:
            continue
        scores = {}
        for dim, col in HOFSTEDE_COLUMNS.items():
            raw = (row.get(col) or "").strip()
            if raw in ("", "#NULL!"):
                continue
            try:
                scores[dim] = float(raw)
            except ValueError as exc:
                raise DatasetError(p, f"not a number: {raw!r}", row=i, field=col) from exc
        out[country.name] = scores
    return out


def _corr(x: Sequence[float], y: Sequence[float]) -> dict[str, float | int | None]:
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
        perms = (rng.permutation(n) for _ in range(n_perm))
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
    model: Mapping[str, Mapping[str, float]],
    hofstede: Mapping[str, Mapping[str, float]],
    n_boot: int = 1000,
    seed: int = 0,
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


def extrapolability(
    model: Mapping[str, Mapping[str, float]], hofstede: Mapping[str, Mapping[str, float]]
) -> dict[str, Any]:
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


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's warnings for all-NaN slices (missing country data is expected)."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# --- country-level summaries ---------------------------------------------------------------------------
def _boot_rows(mat: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap replicates of column nan-means, resampling rows (questions) jointly: (n_boot, cols)."""
    rng = np.random.default_rng(seed)
    g = mat.shape[0]
    idx = rng.integers(0, g, size=(n_boot, g))
    with _quiet():
        return np.nanmean(mat[idx], axis=1)


def boot_mean_ci(values: Sequence[float], n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return cluster_bootstrap_ci(v, None, n_boot=n_boot, seed=seed)


def matrix_mean_ci(mat: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Mean over columns of per-column nan-means, with a CI from resampling rows (questions)."""
    with _quiet():
        cols = np.nanmean(mat, axis=0)
        est = float(np.nanmean(cols)) if np.any(np.isfinite(cols)) else float("nan")
        if mat.shape[0] < 2 or not math.isfinite(est):
            return est, est, est
        boot = np.nanmean(_boot_rows(mat, n_boot, seed), axis=1)
    boot = boot[np.isfinite(boot)]
    lo, hi = np.quantile(boot, [0.025, 0.975]) if boot.size else (est, est)
    return est, float(lo), float(hi)


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
    boot = _boot_rows(sims, n_boot, seed) if g > 1 else sims[:1]
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


# --- run-level analysis ---------------------------------------------------------------------------------
@dataclass
class Reference:
    """One question's human data: per-country distributions and/or 0-1 means."""

    k: int
    ordered: bool
    dists: dict[str, np.ndarray] = field(default_factory=dict)
    means: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> list[str]:
        out = []
        if self.dists:
            out.append("jsd")
            if self.ordered:
                out.append("w1")
        if self.ordered and (self.dists or self.means):
            out.append("mae")
        return out

    def countries(self) -> list[str]:
        return sorted(set(self.dists) | set(self.means))

    def mean_of(self, c: str) -> float | None:
        if c in self.means:
            return self.means[c]
        if c in self.dists:
            return expected_position(self.dists[c])
        return None

    def sim(self, metric: str, model: np.ndarray, c: str) -> float:
        if metric in ("jsd", "w1"):
            if c not in self.dists:
                return float("nan")
            return similarity(metric, model, self.dists[c])
        m = self.mean_of(c)
        return float("nan") if m is None else similarity("mae", model, ref_mean=m)

    def baselines(self, metric: str, c: str) -> dict[str, float]:
        """Uniform, majority and leave-one-out pooled baselines for country ``c``."""
        out = {"uniform": self.sim(metric, uniform(self.k), c)}
        others = [o for o in self.countries() if o != c]
        if metric in ("jsd", "w1"):
            if c not in self.dists:
                return {"uniform": float("nan"), "majority": float("nan"), "pooled": float("nan")}
            pooled_all = np.mean([self.dists[o] for o in self.dists], axis=0)
            out["majority"] = self.sim(metric, onehot(self.k, int(np.argmax(pooled_all))), c)
            rest = [self.dists[o] for o in others if o in self.dists]
            out["pooled"] = self.sim(metric, np.mean(rest, axis=0), c) if rest else float("nan")
            return out
        ref = self.mean_of(c)
        all_means = [m for m in (self.mean_of(o) for o in self.countries()) if m is not None]
        if ref is None or not all_means:
            return {"uniform": float("nan"), "majority": float("nan"), "pooled": float("nan")}
        point = round(float(np.mean(all_means)) * (self.k - 1)) / max(self.k - 1, 1)
        out["majority"] = 1.0 - abs(point - ref)
        rest_m = [m for m in (self.mean_of(o) for o in others) if m is not None]
        out["pooled"] = 1.0 - abs(float(np.mean(rest_m)) - ref) if rest_m else float("nan")
        return out


def reference_of(item: Any) -> Reference | None:
    """Build a :class:`Reference` from an Item's ``reference`` / ``reference_means``."""
    k = len(item.options)
    if k < 2 or not (item.reference or item.reference_means):
        return None
    dists = {}
    for c, d in item.reference.items():
        if len(d) == k and sum(d) > 0:
            dists[c] = as_distribution(d)
    means = {c: float(m) for c, m in item.reference_means.items() if m is not None and math.isfinite(m)}
    return Reference(k=k, ordered=bool(item.ordered), dists=dists, means=means)


PRESENTATION_FIELDS = ("template", "option_order", "labels", "scale_direction", "mode", "few_shot")


@dataclass(frozen=True)
class Condition:
    """A steering condition: persona style (or ``language``) and target country; (None, None) = unsteered."""

    style: str | None
    target: str | None

    @property
    def id(self) -> str:
        if self.style is None:
            return "unsteered"
        return f"{self.style}:{self.target}" if self.target else self.style


def condition_of(variant: Any, item: Any) -> Condition:
    """Steering condition of one sample: the persona (``style:arg``; ``@item`` = the item's country)."""
    from culturelens.countries import try_normalize_country

    extra = f"+system={variant.system}" if variant.system else ""
    if variant.persona:
        style, _, arg = variant.persona.partition(":")
        arg = arg.split("|", 1)[0].strip()
        if arg in ("", "@item"):
            target = item.country.name if item.country else None
        else:
            c = try_normalize_country(arg.replace("_", " "))
            target = c.name if c else arg
        return Condition(style + extra, target)
    if variant.language and variant.language != item.language:
        return Condition(f"language={variant.language}{extra}", None)
    return Condition(("system=" + variant.system) if variant.system else None, None)


def presentation_id(variant: Any) -> str:
    parts = []
    for name in PRESENTATION_FIELDS:
        value = getattr(variant, name)
        default = type(variant).model_fields[name].default
        if value != default:
            parts.append(f"{name}={getattr(value, 'value', value)}")
    return ",".join(parts) or "default"


def _mean_dist(dists: Sequence[np.ndarray]) -> np.ndarray:
    return as_distribution(np.mean(np.stack(dists), axis=0))


def _tv(a: np.ndarray, b: np.ndarray) -> float:
    return float(0.5 * np.abs(a - b).sum())


@dataclass
class _Sample:
    item_id: str
    group: str
    condition: Condition
    presentation: str
    variant: Any
    probs: np.ndarray
    order: list[int]


def _load_samples(
    run_dir: Path, task: str, items: Mapping[str, Any], variants: Mapping[str, Any]
) -> tuple[list[_Sample], int]:
    out: list[_Sample] = []
    invalid = 0
    with (run_dir / "samples.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec.get("task") != task:
                continue
            item = items.get(rec["item_id"])
            variant = variants.get(rec["variant"])
            if item is None or variant is None:
                continue
            probs = rec.get("probs")
            if not probs or not rec.get("valid", True) or len(probs) != len(item.options) or sum(probs) <= 0:
                invalid += 1
                continue
            out.append(
                _Sample(
                    rec["item_id"],
                    item.group or item.id,
                    condition_of(variant, item),
                    presentation_id(variant),
                    variant,
                    as_distribution(probs),
                    list(rec.get("order") or range(len(probs))),
                )
            )
    return out, invalid


def _debias(
    samples: Sequence[_Sample],
) -> tuple[dict[Condition, dict[str, np.ndarray]], dict[Condition, dict[str, dict[str, np.ndarray]]]]:
    """Per condition: per question group, the distribution averaged over presentation variants
    (and over the group's items), and the same per presentation variant."""
    by: dict[Condition, dict[str, dict[str, dict[str, list[np.ndarray]]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    )
    for s in samples:
        by[s.condition][s.group][s.presentation][s.item_id].append(s.probs)
    debiased: dict[Condition, dict[str, np.ndarray]] = {}
    per_pres: dict[Condition, dict[str, dict[str, np.ndarray]]] = {}
    for cond, groups in by.items():
        debiased[cond] = {}
        per_pres[cond] = defaultdict(dict)
        for g, pres in groups.items():
            pres_means = {}
            for p, items in pres.items():
                pres_means[p] = _mean_dist([_mean_dist(v) for v in items.values()])
                per_pres[cond][p][g] = pres_means[p]
            debiased[cond][g] = _mean_dist(list(pres_means.values()))
    return debiased, per_pres


def bias_report(
    samples: Sequence[_Sample],
    debiased: Mapping[str, np.ndarray],
    per_pres: Mapping[str, Mapping[str, np.ndarray]],
) -> dict[str, Any]:
    """What averaging over presentations removed, for one condition.

    * per presentation variant: mean total-variation distance of its distribution from the average
      (and the shift of the mean answer on the 0-1 scale);
    * per factor level (e.g. ``labels=numbers``): the same for the level's own average;
    * position bias: excess probability on the option shown first / last over its debiased probability.
    """
    variants = {}
    for p, groups in per_pres.items():
        tvs = [_tv(d, debiased[g]) for g, d in groups.items()]
        shifts = [expected_position(d) - expected_position(debiased[g]) for g, d in groups.items()]
        variants[p] = {"tv": float(np.mean(tvs)), "mean_shift": float(np.mean(shifts)), "n": len(tvs)}
    levels: dict[str, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    first, last = [], []
    for s in samples:
        for name in PRESENTATION_FIELDS:
            value = getattr(s.variant, name)
            levels[f"{name}={getattr(value, 'value', value)}"][s.group].append(s.probs)
        ref = debiased.get(s.group)
        if ref is not None and s.order:
            first.append(s.probs[s.order[0]] - ref[s.order[0]])
            last.append(s.probs[s.order[-1]] - ref[s.order[-1]])
    by_level = {}
    for lvl, groups in levels.items():
        tvs = [_tv(_mean_dist(v), debiased[g]) for g, v in groups.items() if g in debiased]
        if tvs:
            by_level[lvl] = float(np.mean(tvs))
    n_levels = Counter(k.split("=")[0] for k in by_level)
    by_level = {k: v for k, v in by_level.items() if n_levels[k.split("=")[0]] > 1}  # factors that varied
    return {
        "variants": variants,
        "levels": by_level,
        "first_position_excess": float(np.mean(first)) if first else None,
        "last_position_excess": float(np.mean(last)) if last else None,
        "mean_tv": float(np.mean([v["tv"] for v in variants.values()])) if variants else 0.0,
    }


def _sim_matrix(
    dists: Mapping[str, np.ndarray],
    refs: Mapping[str, Reference],
    groups: Sequence[str],
    countries: Sequence[str],
    metric: str,
) -> np.ndarray:
    mat = np.full((len(groups), len(countries)), np.nan)
    for i, g in enumerate(groups):
        d = dists.get(g)
        ref = refs.get(g)
        if d is None or ref is None or metric not in ref.metrics():
            continue
        for j, c in enumerate(countries):
            mat[i, j] = ref.sim(metric, d, c)
    return mat


def _baseline_matrices(
    refs: Mapping[str, Reference], groups: Sequence[str], countries: Sequence[str], metric: str
) -> dict[str, np.ndarray]:
    out = {k: np.full((len(groups), len(countries)), np.nan) for k in ("uniform", "majority", "pooled")}
    for i, g in enumerate(groups):
        ref = refs.get(g)
        if ref is None or metric not in ref.metrics():
            continue
        for j, c in enumerate(countries):
            if c in ref.dists or c in ref.means:
                for k, v in ref.baselines(metric, c).items():
                    out[k][i, j] = v
    return out


def primary_metric(task: Any, refs: Mapping[str, Reference]) -> str | None:
    declared = task.alignment_metric
    avail = {m for r in refs.values() for m in r.metrics()}
    if declared in avail:
        return declared
    for m in METRICS:
        if m in avail:
            return m
    return None


def steering_report(
    debiased: Mapping[Condition, Mapping[str, np.ndarray]],
    refs: Mapping[str, Reference],
    metric: str,
    splits: Mapping[str, Sequence[str]],
    heldout_countries: Sequence[str],
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Gain and specificity of steering toward each target country X, per style and question split.

    * gain(X) = alignment with X when steered toward X - alignment with X unsteered;
    * specificity(X) = alignment with X when steered toward X - mean alignment with X when steered
      toward each other target country (same style).
    Both are means over questions of per-question differences, with bootstrap CIs over questions.
    """
    unsteered = debiased.get(Condition(None, None))
    styles: dict[str, dict[str, Mapping[str, np.ndarray]]] = defaultdict(dict)
    for cond, d in debiased.items():
        if cond.style is not None and cond.target is not None:
            styles[cond.style][cond.target] = d
    out: dict[str, Any] = {"metric": metric, "styles": {}, "heldout_countries": list(heldout_countries)}
    for style, by_target in sorted(styles.items()):
        targets = sorted(by_target)
        s_entry: dict[str, Any] = {"targets": targets, "splits": {}}
        for split, groups in splits.items():
            groups = list(groups)
            if not groups:
                continue
            # alignment matrix A[steer Y][reference c], per question: (G, Y, C)
            sims = np.stack(
                [_sim_matrix(by_target[y], refs, groups, targets, metric) for y in targets], axis=1
            )
            diag = np.stack([sims[:, i, i] for i in range(len(targets))], axis=1)  # (G, X)
            base = _sim_matrix(unsteered, refs, groups, targets, metric) if unsteered else None
            gain = diag - base if base is not None else None
            if len(targets) > 1:
                with _quiet():
                    off = np.stack(
                        [
                            np.nanmean(np.delete(sims[:, :, i], i, axis=1), axis=1)
                            for i in range(len(targets))
                        ],
                        axis=1,
                    )
                spec = diag - off
            else:
                spec = None
            per_target = {}
            for i, x in enumerate(targets):
                row: dict[str, Any] = {"aligned": _ci(diag[:, i], n_boot, seed)}
                if gain is not None:
                    row["gain"] = _ci(gain[:, i], n_boot, seed)
                    row["unsteered"] = _ci(base[:, i], n_boot, seed)  # type: ignore[index]
                if spec is not None:
                    row["specificity"] = _ci(spec[:, i], n_boot, seed)
                    with _quiet():
                        col = np.nanmean(sims[:, :, i], axis=0)  # alignment with x under each steer
                    row["best_steer"] = targets[int(np.nanargmax(col))] if np.any(np.isfinite(col)) else None
                row["heldout_country"] = x in heldout_countries
                per_target[x] = row
            with _quiet():
                matrix = {
                    y: {c: _nanmean(sims[:, iy, ic]) for ic, c in enumerate(targets)}
                    for iy, y in enumerate(targets)
                }
            summary: dict[str, Any] = {}
            for label, cols in (
                ("all", list(range(len(targets)))),
                ("main_countries", [i for i, x in enumerate(targets) if x not in heldout_countries]),
                ("heldout_countries", [i for i, x in enumerate(targets) if x in heldout_countries]),
            ):
                if not cols or (label != "all" and not heldout_countries):
                    continue
                entry = {"targets": len(cols)}
                if gain is not None:
                    entry["gain"] = _ci_matrix(gain[:, cols], n_boot, seed)
                if spec is not None:
                    entry["specificity"] = _ci_matrix(spec[:, cols], n_boot, seed)
                    hits = [per_target[targets[i]].get("best_steer") == targets[i] for i in cols]
                    entry["top1"] = float(np.mean(hits))
                summary[label] = entry
            spread = _spread_ratio(by_target, refs, groups, targets) if metric == "mae" else None
            s_entry["splits"][split] = {
                "questions": len(groups),
                "targets": per_target,
                "summary": summary,
                "matrix": matrix,
                "spread_ratio": spread,
            }
        out["styles"][style] = s_entry
    return out


def _nanmean(v: np.ndarray) -> float | None:
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else None


def _ci(v: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    vals = [float(x) for x in v if math.isfinite(x)]
    if not vals:
        return {"mean": None, "ci": [None, None], "n": 0}
    m, lo, hi = cluster_bootstrap_ci(vals, None, n_boot=n_boot, seed=seed)
    return {"mean": m, "ci": [lo, hi], "n": len(vals)}


def _ci_matrix(mat: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    m, lo, hi = matrix_mean_ci(mat, n_boot, seed)
    return {
        "mean": m if math.isfinite(m) else None,
        "ci": [lo, hi],
        "n": int(np.isfinite(mat).any(axis=1).sum()),
    }


def _spread_ratio(
    by_target: Mapping[str, Mapping[str, np.ndarray]],
    refs: Mapping[str, Reference],
    groups: Sequence[str],
    targets: Sequence[str],
) -> float | None:
    """The paper's statistic: mean pairwise distance between the steered answer vectors (one per
    target country, mean answers on 0-1) over the same mean distance between the countries' human
    answers. Near 0: steering barely moves answers; near 1: as different as the countries are."""
    if len(targets) < 2:
        return None
    keep = [
        g
        for g in groups
        if g in refs and all(refs[g].mean_of(t) is not None and g in by_target[t] for t in targets)
    ]
    if len(keep) < 2:
        return None
    model = np.array([[expected_position(by_target[t][g]) for g in keep] for t in targets])
    human = np.array([[refs[g].mean_of(t) for g in keep] for t in targets], dtype=float)

    def mpd(x: np.ndarray) -> float:
        d = [np.linalg.norm(x[i] - x[j]) for i, j in itertools.combinations(range(len(x)), 2)]
        return float(np.mean(d))

    h = mpd(human)
    return mpd(model) / h if h > 0 else None


def vsm_report(
    debiased: Mapping[Condition, Mapping[str, np.ndarray]],
    per_pres: Mapping[Condition, Mapping[str, Mapping[str, np.ndarray]]],
    numbers: Mapping[str, int],
    hofstede: Mapping[str, Mapping[str, float]] | None,
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


def _task_items(name: str, cfg: Mapping[str, Any]) -> tuple[Any, dict[str, Any]] | None:
    from culturelens.tasks.base import SurveyTask, get_task

    try:
        task = get_task(name, data_dir=cfg.get("data_dir"), **(cfg.get("task_options") or {}).get(name, {}))
    except KeyError:
        return None
    if not isinstance(task, SurveyTask):
        return None
    items = task.items(limit=cfg.get("limit"), countries=cfg.get("countries"))
    return task, {it.id: it for it in items}


def analyze_task(
    run_dir: Path,
    task: Any,
    items: Mapping[str, Any],
    variants: Mapping[str, Any],
    n_boot: int = 1000,
    seed: int = 0,
    hofstede: Mapping[str, Mapping[str, float]] | None = None,
    ivs: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """Alignment analysis of one survey task's samples in a run (see :func:`analyze_alignment`)."""
    samples, invalid = _load_samples(run_dir, task.name, items, variants)
    debiased, per_pres = _debias(samples)
    entry: dict[str, Any] = {
        "kind": task.survey_kind,
        "samples": len(samples),
        "invalid": invalid,
        "presentations": sorted({s.presentation for s in samples}),
        "conditions": sorted(c.id for c in debiased),
    }
    entry["bias_removed"] = {
        cond.id: bias_report([s for s in samples if s.condition == cond], debiased[cond], per_pres[cond])
        for cond in debiased
        if len(per_pres[cond]) > 1
    }
    if task.survey_kind == "vsm":
        numbers = {
            it.group or it.id: int(it.metadata["number"]) for it in items.values() if "number" in it.metadata
        }
        entry["vsm"] = vsm_report(debiased, per_pres, numbers, hofstede, n_boot, seed)
        return entry

    refs: dict[str, Reference] = {}
    split_of: dict[str, str] = {}
    heldout: set[str] = set()
    shared = task.group_references()
    for it in items.values():
        g = it.group or it.id
        if g not in refs:
            ref = reference_of(it.model_copy(update={"reference": shared[g]}) if g in shared else it)
            if ref is not None:
                refs[g] = ref
        if "split" in it.subset:
            split_of[g] = it.subset["split"]
        heldout.update(it.metadata.get("heldout_countries", []))
    metric = primary_metric(task, refs)
    entry["metric"] = metric
    entry["metric_name"] = METRIC_NAMES.get(metric or "")
    if metric is None:
        entry["note"] = "no reference data with a usable metric"
        return entry
    countries = sorted({c for r in refs.values() for c in r.countries()})
    entry["heldout_countries"] = sorted(heldout)
    entry["by_condition"] = {}
    for cond, dists in sorted(debiased.items(), key=lambda kv: (kv[0].style is not None, kv[0].id)):
        groups = [g for g in dists if g in refs]
        if not groups:
            continue
        tables = {}
        for m in METRICS:
            if not any(m in refs[g].metrics() for g in groups):
                continue
            if cond.style is not None and m != metric:
                continue  # steered conditions: the primary metric only
            sims = _sim_matrix(dists, refs, groups, countries, m)
            base = _baseline_matrices(refs, groups, countries, m)
            tables[m] = country_table(sims, countries, base, n_boot=n_boot, seed=seed)
        cond_entry: dict[str, Any] = {"questions": len(groups), "countries": tables}
        head = tables.get(metric) or []
        cond_entry["nearest"] = [r["country"] for r in head[:5]]
        if ivs and head:
            cond_entry["map"] = _iw_map(head, ivs)
        entry["by_condition"][cond.id] = cond_entry
    if any(c.style is not None and c.target is not None for c in debiased):
        all_groups = sorted(refs)
        splits: dict[str, list[str]] = {"all": all_groups}
        for g in all_groups:
            if g in split_of:
                splits.setdefault(split_of[g], []).append(g)
        entry["steering"] = steering_report(debiased, refs, metric, splits, sorted(heldout), n_boot, seed)
    return entry


def _iw_map(
    table: Sequence[Mapping[str, Any]], ivs: Mapping[str, tuple[float, float]], k: int = 3
) -> dict[str, Any]:
    """Inglehart-Welzel coordinates of the nearest countries and their mean (an estimate of where the
    model's answers sit on the map, derived from its nearest countries, not measured)."""
    located = [(r["country"], ivs[r["country"]]) for r in table if r["country"] in ivs]
    if not located:
        return {}
    near = located[:k]
    trad = float(np.mean([p[0] for _, p in near]))
    surv = float(np.mean([p[1] for _, p in near]))
    return {
        "countries": {c: {"traditional_secular": p[0], "survival_selfexpression": p[1]} for c, p in located},
        "estimate_from_nearest": {
            "traditional_secular": trad,
            "survival_selfexpression": surv,
            "k": len(near),
        },
    }


def load_ivs(folder: str | Path) -> dict[str, tuple[float, float]]:
    """Latest Inglehart-Welzel point per country from the IVS DDF folder: canonical name -> (trad, surv)."""
    from culturelens.countries import try_normalize_country
    from culturelens.errors import DatasetError

    root = Path(folder)
    names: dict[str, str] = {}
    ent = root / "ddf--entities--geo--country.csv"
    if not ent.exists():
        raise DatasetError(ent, "file not found")
    with ent.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            names[row.get("country") or row.get("geo") or ""] = row.get("name") or ""
    axes: dict[str, dict[str, tuple[int, float]]] = defaultdict(dict)
    for ind in ("tradagg", "survsagg"):
        path = root / f"ddf--datapoints--{ind}--by--geo--year.csv"
        if not path.exists():
            raise DatasetError(path, "file not found")
        with path.open(encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    year, value = int(row["year"]), float(row[ind])
                except (KeyError, ValueError) as exc:
                    raise DatasetError(path, "bad year or value", row=i, field=ind) from exc
                geo = row["geo"]
                if geo not in axes[ind] or axes[ind][geo][0] < year:
                    axes[ind][geo] = (year, value)
    out = {}
    for geo, (_, trad) in axes["tradagg"].items():
        if geo in axes["survsagg"]:
            c = try_normalize_country(names.get(geo) or geo.replace("_", " "))
            if c is not None and not c.subnational:
                out[c.name] = (trad, axes["survsagg"][geo][1])
    return out


def analyze_alignment(
    run_dir: str | Path,
    hofstede_file: str | Path | None = None,
    ivs_dir: str | Path | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Alignment of every survey task in a run; writes ``alignment.json`` when there is any.

    Tasks opt in by subclassing :class:`culturelens.tasks.base.SurveyTask` (``survey_kind``: "survey"
    or "vsm"). Their items are
    reloaded from the run's config (same data folder, options, limit and countries) for the human
    reference data, which ``samples.jsonl`` does not carry.
    """
    from culturelens.errors import DatasetError
    from culturelens.schema import Variant

    run = Path(run_dir)
    payload = json.loads((run / "config.json").read_text(encoding="utf-8"))
    cfg = payload.get("config", payload)
    n_boot, seed = int(cfg.get("n_boot", 1000)), int(cfg.get("seed", 0))
    variants = {v.id: v for v in (Variant.model_validate(x) for x in cfg.get("variants") or [{}])}
    out: dict[str, Any] = {"run": str(run), "tasks": {}}
    ivs = None
    ivs_dir = ivs_dir or os.environ.get("CULTURELENS_IVS")
    if ivs_dir:
        ivs = load_ivs(ivs_dir)
    for name in cfg.get("tasks", []):
        try:
            loaded = _task_items(name, cfg)
        except DatasetError as exc:
            out["tasks"][name] = {"error": str(exc)}
            continue
        if loaded is None:
            continue
        task, items = loaded
        hof = None
        path = hofstede_file or task.hofstede_path()
        if task.survey_kind == "vsm" and path:
            hof = load_hofstede(path)
        out["tasks"][name] = analyze_task(run, task, items, variants, n_boot, seed, hof, ivs)
        if task.survey_kind == "vsm":
            out["tasks"][name]["hofstede_file"] = str(path) if path else None
    out = _clean(out)
    if write and out["tasks"]:
        tmp = run / "alignment.json.tmp"
        tmp.write_text(json.dumps(out, indent=1, ensure_ascii=False, default=_json_default), encoding="utf-8")
        os.replace(tmp, run / "alignment.json")
    return out


def _clean(o: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN / inf to None."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    if isinstance(o, np.ndarray):
        return _clean(o.tolist())
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, float | np.floating):
        f = float(o)
        return f if math.isfinite(f) else None
    return o


def _json_default(o: Any) -> Any:
    if isinstance(o, np.floating | np.integer):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
