"""Per-task robustness, verdicts, and the entry points that write ``robustness.json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturelens.robustness.measures import (
    _levels,
    _r,
    _ranking_stable,
    _spread,
    item_stability,
    main_effects,
    ranking_stability,
)
from culturelens.robustness.rows import ALPHA, CRITERIA, MIN_CONSISTENCY, STABLE_ABS_TOL, Row, task_rows
from culturelens.runlog import RunLog, read_run
from culturelens.stats import SMALL_N
from culturelens.variants import FACTORS


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


def score_verdict(spread_range: float | None, inside: bool, differ: bool | None, fragile: bool) -> str:
    """The one rule every score verdict sentence is generated from (see ``CRITERIA['score']``).

    ``stable``: the variants agree within the tolerance, or every variant's score lies inside the
    primary's CI, the omnibus test finds no difference and most items keep their answer.
    ``unstable``: the test says the variants' scores differ (or, without a test, a score lies outside
    the CI). ``inconclusive``: neither; the scores spread, but not beyond what chance gives at this n.
    """
    if (spread_range is not None and spread_range <= STABLE_ABS_TOL) or (
        inside and not differ and not fragile
    ):
        return "stable"
    if differ or (differ is None and not inside):
        return "unstable"
    return "inconclusive"


def _verdicts(name: str, res: dict[str, Any], scores: dict[str, float]) -> list[str]:
    metric, sp, items = res["metric"], res["spread"], res["items"]
    lo, hi = res["ci"]
    inside = all(lo is not None and hi is not None and lo - 1e-9 <= s <= hi + 1e-9 for s in scores.values())
    test = items.get("variants_differ") or {}
    differ = None if test.get("p") is None else bool(test["p"] < ALPHA)
    consistency = (items.get("consistency") or {}).get("mean")
    fragile = consistency is not None and consistency < MIN_CONSISTENCY
    verdict = score_verdict(sp["range"], inside, differ, fragile)
    res["stable"] = verdict == "stable"
    res["verdict"] = verdict
    head = f"{name} {metric} {res['score']:.2f} [{lo:.2f}, {hi:.2f}] (n={res['n']})"
    spread = (
        f"spread {sp['min']:.2f}–{sp['max']:.2f} across {sp['n_variants']} variants (SD {sp['sd']:.2f}), "
        f"{'inside' if inside else 'outside'} its 95% CI"
    )
    tested = f"({test['test']} p={test['p']:.2g})" if differ is not None else ""
    if verdict == "stable":
        lead = f"{head} is stable: {spread}"
        parts = [lead] + ([f"variants do not differ beyond chance {tested}"] if tested else [])
    elif verdict == "unstable":
        lead = f"{head} is NOT stable: " + (
            f"the variants' scores differ beyond chance {tested}; {spread}" if differ else spread
        )
        parts = [lead]
    else:
        parts = [
            f"{head}: stability not established: {spread}, but the variants do not differ beyond chance "
            f"{tested}, so this sample cannot tell whether the score depends on the presentation"
        ]
    factors = res["variance"]["factors"]
    if factors and res["variance"]["ss_total"]:
        top = max(factors, key=lambda f: factors[f]["share"] or 0)
        parts.append(f"{top} explains {_pct(factors[top]['share'])} of the variance across variants")
    if items.get("n_items"):
        word = "accuracy" if metric == "acc" else metric
        parts.append(
            ("individual answers are NOT stable: only " if fragile else "")
            + f"{_pct(consistency)} of {items['n_items']} items are answered the same under "
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
    # a country scored on a handful of items moves by 1/n per flipped answer: only countries with at least
    # SMALL_N items are named as sensitive (with one item, any change reads as a 0-1 swing)
    moving = [(c, d) for c, d in res["countries"].items() if (d["spread"]["range"] or 0) > STABLE_ABS_TOL]
    movers = sorted(
        ((c, d) for c, d in moving if (d.get("n_items") or 0) >= SMALL_N),
        key=lambda kv: -(kv[1]["spread"]["range"] or 0),
    )[:3]
    if moving and not movers:
        lines.append(
            f"{name}: per-country sensitivity to presentation not assessed: no country whose score moves has "
            f"{SMALL_N} or more items."
        )
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
