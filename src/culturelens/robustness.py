"""How stable is each number? Robustness analysis of a sweep run (several variants of the same items).

For every task of a run with more than one variant, :func:`analyze_run` reports

* the headline score under each variant, with its 95% CI and n, and the spread (min, max, SD);
* consistency: share of items whose prediction is the same under every variant, and robust accuracy:
  share of items right under every variant (for a non-binary metric: the mean over items of the
  worst score across variants), both with cluster-bootstrap CIs;
* an omnibus test of whether the variants' scores differ beyond chance (Cochran's Q on items x variants);
* rank stability of countries: Kendall's tau-b between the country rankings of every pair of variants,
  and the flip rate of pairwise conclusions ("country A scores higher than B");
* a main-effects decomposition of the variance of the per-variant scores: for each swept factor, the
  weighted sum of squares of its level means about the grand mean, as a share of the total sum of
  squares of the per-variant scores (an exact partition for a full, balanced design; what is left is
  interaction);
* one-line verdicts, stable or not, with the evidence.

:func:`analyze_runs` does the same for model rankings across several runs that share variants.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from culturelens.runlog import RunLog, RunLogError, read_run
from culturelens.stats import cluster_bootstrap_ci, kendall_tau, sign_flips, variants_differ
from culturelens.variants import FACTORS

#: a score is called stable when all variants agree within this absolute tolerance (or see CRITERIA)
STABLE_ABS_TOL = 0.02
#: a ranking is called stable when the smallest Kendall tau between two variants' rankings reaches
#: this and at most :data:`RANK_MAX_FLIP` of the pairwise conclusions flip
RANK_MIN_TAU = 0.8
RANK_MAX_FLIP = 0.10
#: a score whose items change answer under presentation this often is not called stable
MIN_CONSISTENCY = 0.5
ALPHA = 0.05

CRITERIA = {
    "score": f"stable if the range across variants is <= {STABLE_ABS_TOL}, or if every variant's score lies inside "
    f"the primary variant's 95% CI, the variants do not differ beyond chance (p >= {ALPHA}) and at least "
    f"{MIN_CONSISTENCY:.0%} of items are answered the same under every variant",
    "ranking": f"stable if min Kendall tau between variants >= {RANK_MIN_TAU} and flip rate <= {RANK_MAX_FLIP:.0%}",
    "flip_rate": "share of entity pairs ordered one way by some variant and strictly the other way by another, "
    "among pairs that at least one variant orders strictly (ties are no conclusion)",
    "variance": "main-effects decomposition of per-variant scores: sum over levels of n_level * (level mean - "
    "grand mean)^2 divided by the total sum of squares; exact for full balanced designs, the rest is interaction",
    "consistency": "share of items whose prediction (original option) is identical under every variant",
    "robust": "share of items right under every variant (non-binary metrics: mean over items of the minimum)",
}


@dataclass
class Row:
    """One scored unit (item or the benchmark's counting unit) under one variant."""

    item_id: str
    cluster: str
    country: str | None
    variant: str
    metrics: dict[str, float]
    prediction: Any
    valid: bool


# --- reading runs (only through the run log) ------------------------------------------------------
def _pred_key(pred: Any) -> Any:
    if isinstance(pred, str):
        return " ".join(pred.lower().split())
    return pred


def task_rows(log: RunLog, task_name: str) -> list[Row]:
    """The run's scored units of one task, one per (unit, variant).

    A task that counts another unit than the item (``Task.unit_scores``) is regrouped with the run's
    item snapshot; a format-1 run without one whose dataset is gone is counted per sample, with a note.
    """
    try:
        units = log.unit_scores(task_name)
    except RunLogError as exc:
        log.notes.append(f"{task_name}: counted per sample, not per the task's unit ({exc})")
        units = None
    if units is not None:
        return [
            Row(
                item.id,
                item.group or item.id,
                item.country.name if item.country else None,
                vid,
                score.metrics,
                _pred_key(score.prediction),
                score.valid,
            )
            for vid, pairs in units.items()
            for item, score in pairs
        ]
    samples = log.iter_samples(task_name)
    return [
        Row(s.item_id, s.cluster, s.country, s.variant, s.metrics, _pred_key(s.prediction), s.valid)
        for s in samples
    ]


# --- helpers ------------------------------------------------------------------------------------
def _r(x: float | None, nd: int = 4) -> float | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return round(float(x), nd)


def _spread(values: Sequence[float]) -> dict[str, Any]:
    v = np.asarray(values, dtype=float)
    return {
        "min": _r(v.min()),
        "max": _r(v.max()),
        "range": _r(v.max() - v.min()),
        "mean": _r(v.mean()),
        "sd": _r(v.std(ddof=1)) if v.size > 1 else 0.0,
        "n_variants": int(v.size),
    }


def _levels(spec: dict[str, Any], factors: Sequence[str]) -> dict[str, str]:
    return {f: ("none" if spec.get(f) is None else str(spec.get(f))) for f in factors}


def main_effects(
    scores: dict[str, float], levels: dict[str, dict[str, str]], factors: Sequence[str]
) -> dict[str, Any]:
    """Share of the variance of per-variant scores explained by each factor's main effect."""
    vids = list(scores)
    y = np.array([scores[v] for v in vids], dtype=float)
    grand = float(y.mean()) if y.size else float("nan")
    ss_total = float(np.sum((y - grand) ** 2))
    out: dict[str, Any] = {"factors": {}, "ss_total": _r(ss_total, 6)}
    explained = 0.0
    for f in factors:
        groups: dict[str, list[float]] = defaultdict(list)
        for v, s in zip(vids, y, strict=True):
            groups[levels[v][f]].append(float(s))
        ss = sum(len(g) * (float(np.mean(g)) - grand) ** 2 for g in groups.values())
        share = ss / ss_total if ss_total > 1e-15 else 0.0
        explained += share
        out["factors"][f] = {
            "share": _r(share),
            "level_means": {lvl: _r(float(np.mean(g))) for lvl, g in sorted(groups.items())},
            "level_range": _r(
                float(max(np.mean(g) for g in groups.values()) - min(np.mean(g) for g in groups.values()))
            ),
        }
    out["interaction_share"] = _r(max(0.0, 1.0 - explained)) if ss_total > 1e-15 else 0.0
    return out


def ranking_stability(scores: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Rank agreement of entities (countries, models) across variants.

    ``scores`` maps variant id -> entity -> score; only entities scored under every variant count.
    """
    vids = list(scores)
    if not vids:
        return {"entities": 0}
    ents = sorted(set.intersection(*(set(scores[v]) for v in vids)))
    out: dict[str, Any] = {"entities": len(ents), "variants": len(vids)}
    if len(ents) < 2 or len(vids) < 2:
        return out
    taus, flipped_total, decided_total = [], 0, 0
    pair_dirs: dict[tuple[str, str], set[int]] = defaultdict(set)
    for v in vids:
        for a, b in itertools.combinations(ents, 2):
            d = scores[v][a] - scores[v][b]
            if abs(d) > 1e-12:
                pair_dirs[(a, b)].add(1 if d > 0 else -1)
    for v1, v2 in itertools.combinations(vids, 2):
        x = [scores[v1][e] for e in ents]
        y = [scores[v2][e] for e in ents]
        taus.append(kendall_tau(x, y))
        f, d = sign_flips(x, y)
        flipped_total += f
        decided_total += d
    finite = [t for t in taus if not math.isnan(t)]
    conclusions = len(pair_dirs)
    flips = sum(1 for dirs in pair_dirs.values() if len(dirs) == 2)
    out.update(
        {
            "tau_mean": _r(float(np.mean(finite))) if finite else None,
            "tau_min": _r(float(np.min(finite))) if finite else None,
            "tau_pairs": len(finite),
            "tau_undefined_pairs": len(taus) - len(finite),
            "pairs": len(ents) * (len(ents) - 1) // 2,
            "conclusions": conclusions,
            "flipped": flips,
            "flip_rate": _r(flips / conclusions) if conclusions else None,
            "pairwise_flip_rate": _r(flipped_total / decided_total) if decided_total else None,
        }
    )
    return out


def _ranking_stable(rank: dict[str, Any]) -> bool | None:
    if rank.get("tau_min") is None or rank.get("flip_rate") is None:
        return None
    return rank["tau_min"] >= RANK_MIN_TAU and rank["flip_rate"] <= RANK_MAX_FLIP


def item_stability(rows: Sequence[Row], metric: str, vids: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """Consistency and robust score over units scored under every variant in ``vids``."""
    by_item: dict[str, dict[str, Row]] = defaultdict(dict)
    for r in rows:
        if r.variant in vids and metric in r.metrics:
            by_item[r.item_id][r.variant] = r
    full = {i: d for i, d in by_item.items() if len(d) == len(vids)}
    if not full:
        return {"n_items": 0}
    ids = sorted(full)
    mat = np.array([[full[i][v].metrics[metric] for v in vids] for i in ids], dtype=float)
    binary = bool(np.all(np.isin(mat, (0.0, 1.0))))
    clusters = [full[i][vids[0]].cluster for i in ids]
    consistent = [
        float(
            len({_hashable(full[i][v].prediction) for v in vids}) == 1
            and full[i][vids[0]].prediction is not None
        )
        for i in ids
    ]
    robust = mat.min(axis=1)
    out: dict[str, Any] = {"n_items": len(ids), "clusters": len(set(clusters)), "binary": binary}
    for name, vals in (
        ("consistency", consistent),
        ("robust", robust.tolist()),
        ("mean", mat.mean(axis=1).tolist()),
    ):
        m, lo, hi = cluster_bootstrap_ci(vals, clusters, seed=seed)
        out[name] = {"mean": _r(m), "ci": [_r(lo), _r(hi)]}
    if binary:
        out["ever_right"] = _r(float(np.mean(mat.max(axis=1))))
        out["sometimes_right"] = _r(float(np.mean((mat.max(axis=1) == 1) & (mat.min(axis=1) == 0))))
    test, p = variants_differ(mat, binary)
    out["variants_differ"] = {"test": test, "p": _r(p, 6)}
    return out


def _hashable(x: Any) -> Any:
    return json.dumps(x, sort_keys=True) if isinstance(x, (list, dict)) else x


# --- one task -------------------------------------------------------------------------------------
def analyze_task(log: RunLog, name: str, rows: Sequence[Row], seed: int = 0) -> dict[str, Any]:
    entry = log.task_results(name)
    metric = log.headline_metric(name)
    variants = log.task_variants(name)
    vids = list(variants)
    if metric is None:
        return {
            "metric": None,
            "n_variants": len(vids),
            "verdicts": [f"{name}: no per-item metric to analyse"],
        }
    if len(vids) < 2:
        return {
            "metric": metric,
            "n_variants": len(vids),
            "verdicts": [f"{name}: a single presentation was scored; run with --vary to measure stability"],
        }
    specs = {v: variants[v].get("variant") or {} for v in vids}
    factors = [f for f in FACTORS if len({json.dumps(specs[v].get(f)) for v in vids}) > 1]
    levels = {v: _levels(specs[v], factors) for v in vids}
    per_variant = []
    scores: dict[str, float] = {}
    for v in vids:
        m = variants[v].get("metrics", {}).get(metric)
        if m is None:
            continue
        scores[v] = m["mean"]
        per_variant.append(
            {
                "id": v,
                "levels": levels[v],
                "score": _r(m["mean"]),
                "ci": [_r(x) for x in m["ci"]],
                "n": m["n"],
            }
        )
    primary = vids[0]
    head = entry["metrics"][metric]
    out: dict[str, Any] = {
        "metric": metric,
        "primary": primary,
        "score": _r(head["mean"]),
        "ci": [_r(x) for x in head["ci"]],
        "n": head["n"],
        "n_variants": len(vids),
        "factors": factors,
        "variants": per_variant,
        "spread": _spread(list(scores.values())),
        "items": item_stability(rows, metric, vids, seed=seed),
        "variance": main_effects(scores, levels, factors),
    }
    # countries: per-variant scores from the aggregates, item stability from the rows
    country_scores: dict[str, dict[str, float]] = {}
    countries: dict[str, Any] = {}
    for v in vids:
        for cname, centry in variants[v].get("by", {}).get("country", {}).items():
            if metric in centry.get("metrics", {}):
                country_scores.setdefault(v, {})[cname] = centry["metrics"][metric]["mean"]
    all_c = sorted({c for d in country_scores.values() for c in d})
    for c in all_c:
        vals = [country_scores[v][c] for v in vids if c in country_scores.get(v, {})]
        crow = [r for r in rows if r.country == c]
        stab = item_stability(crow, metric, vids, seed=seed)
        countries[c] = {
            "spread": _spread(vals),
            "n_items": stab.get("n_items", 0),
            "consistency": (stab.get("consistency") or {}).get("mean"),
            "robust": (stab.get("robust") or {}).get("mean"),
        }
    out["countries"] = countries
    out["country_ranking"] = ranking_stability({v: country_scores.get(v, {}) for v in vids})
    out["verdicts"] = _verdicts(name, out, scores)
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _verdicts(name: str, res: dict[str, Any], scores: dict[str, float]) -> list[str]:
    metric, sp, items = res["metric"], res["spread"], res["items"]
    lo, hi = res["ci"]
    inside = all(lo is not None and hi is not None and lo - 1e-9 <= s <= hi + 1e-9 for s in scores.values())
    test = items.get("variants_differ") or {}
    differ = test.get("p") is not None and test["p"] < ALPHA
    consistency = (items.get("consistency") or {}).get("mean")
    fragile = consistency is not None and consistency < MIN_CONSISTENCY
    stable = (sp["range"] is not None and sp["range"] <= STABLE_ABS_TOL) or (
        inside and not differ and not fragile
    )
    res["stable"] = stable
    head = f"{name} {metric} {res['score']:.2f} [{lo:.2f}, {hi:.2f}] (n={res['n']})"
    parts = [
        f"{head} is {'stable' if stable else 'NOT stable'}: spread {sp['min']:.2f}–{sp['max']:.2f} across "
        f"{sp['n_variants']} variants (SD {sp['sd']:.2f}), {'inside' if inside else 'outside'} its 95% CI"
    ]
    if test.get("p") is not None:
        parts.append(
            f"variants {'differ' if differ else 'do not differ'} beyond chance ({test['test']} p={test['p']:.2g})"
        )
    factors = res["variance"]["factors"]
    if factors and res["variance"]["ss_total"]:
        top = max(factors, key=lambda f: factors[f]["share"] or 0)
        parts.append(f"{top} explains {_pct(factors[top]['share'])} of the variance across variants")
    if items.get("n_items"):
        word = "accuracy" if metric == "acc" else metric
        parts.append(
            f"{'only ' if fragile else ''}{_pct(consistency)} of {items['n_items']} items are answered the same under "
            f"every variant; robust {word} {items['robust']['mean']:.2f}"
        )
    lines = ["; ".join(parts) + "."]
    rank = res["country_ranking"]
    rs = _ranking_stable(rank)
    if rs is not None:
        lines.append(
            f"{name} country ranking ({rank['entities']} countries) is {'stable' if rs else 'NOT stable'}: Kendall tau "
            f"mean {rank['tau_mean']:.2f}, min {rank['tau_min']:.2f} over {rank['tau_pairs']} variant pairs; "
            f"{_pct(rank['flip_rate'])} of {rank['conclusions']} country-pair conclusions flip across variants."
        )
    elif rank.get("entities", 0) >= 2:
        lines.append(
            f"{name} country ranking: too few distinct scores to rank ({rank['entities']} countries)."
        )
    movers = sorted(res["countries"].items(), key=lambda kv: -(kv[1]["spread"]["range"] or 0))[:3]
    movers = [(c, d) for c, d in movers if (d["spread"]["range"] or 0) > STABLE_ABS_TOL]
    if movers:
        lines.append(
            f"{name} countries most sensitive to presentation: "
            + ", ".join(
                f"{c} {d['spread']['min']:.2f}–{d['spread']['max']:.2f} (n={d['n_items']})" for c, d in movers
            )
            + "."
        )
    return lines


# --- public entry points ------------------------------------------------------------------------------
def analyze_run(run_dir: Path, seed: int = 0) -> dict[str, Any]:
    """Robustness of every task of a run; writes ``run_dir/robustness.json`` and returns the dict."""
    run_dir = Path(run_dir)
    log = read_run(run_dir)
    out: dict[str, Any] = {"run": str(run_dir), "model": log.label, "criteria": CRITERIA, "tasks": {}}
    for name in log.task_names:
        out["tasks"][name] = analyze_task(log, name, task_rows(log, name), seed=seed)
    if log.notes:
        out["notes"] = list(log.notes)
    tmp = run_dir / "robustness.json.tmp"
    tmp.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(run_dir / "robustness.json")
    return out


def analyze_runs(run_dirs: Sequence[Path]) -> dict[str, Any]:
    """Model-ranking stability across runs (one model each) over the variants they share, per task."""
    runs: list[tuple[RunLog, dict[str, Any], str]] = []
    for run_dir in run_dirs:
        log = read_run(run_dir)
        runs.append((log, log.results, log.label))
    labels = [lab for _, _, lab in runs]
    for i, (d, _, lab) in enumerate(runs):  # duplicate labels: disambiguate with the run folder
        if labels.count(lab) > 1:
            labels[i] = f"{lab} ({d.dir.name})"
    out: dict[str, Any] = {
        "runs": [str(d.dir) for d, _, _ in runs],
        "labels": labels,
        "criteria": CRITERIA,
        "tasks": {},
    }
    names = sorted({t for _, res, _ in runs for t in res.get("tasks", {})})
    for name in names:
        have = [
            (lab, d, res["tasks"][name])
            for (d, res, _), lab in zip(runs, labels, strict=True)
            if name in res.get("tasks", {})
        ]
        if len(have) < 2:
            continue
        metric = have[0][1].headline_metric(name)
        per_run = {lab: d.task_variants(name) for lab, d, _ in have}
        shared = [v for v in per_run[have[0][0]] if all(v in pv for pv in per_run.values())]
        scores: dict[str, dict[str, float]] = {}
        for v in shared:
            row = {
                lab: pv[v]["metrics"][metric]["mean"]
                for lab, pv in per_run.items()
                if metric in pv[v].get("metrics", {})
            }
            if len(row) == len(per_run):
                scores[v] = row
        rank = ranking_stability(scores)
        entry: dict[str, Any] = {
            "metric": metric,
            "models": list(per_run),
            "shared_variants": list(scores),
            "scores": {v: {k: _r(s) for k, s in d.items()} for v, d in scores.items()},
            "model_ranking": rank,
        }
        rs = _ranking_stable(rank)
        if rs is not None:
            verdict = (
                f"{name} model ranking ({len(per_run)} models) is {'stable' if rs else 'NOT stable'} across "
                f"{len(scores)} shared variants: Kendall tau mean {rank['tau_mean']:.2f}, min {rank['tau_min']:.2f}; "
                f"{_pct(rank['flip_rate'])} of {rank['conclusions']} model-pair conclusions flip."
            )
        elif len(scores) < 2:
            verdict = f"{name}: the runs share {len(scores)} variant(s); sweep the same factors to compare model rankings."
        else:
            verdict = f"{name} model ranking: the models tie under every shared variant."
        entry["verdicts"] = [verdict]
        out["tasks"][name] = entry
    return out
