"""The report model: everything the HTML report shows, as one JSON-able dict built from run directories.

The page's JavaScript only lays this out; every number it shows is computed here, so it can be tested
without a browser. Samples are stored column-compressed (string tables for repeated values) and, for
large runs, prompts are shortened to a per-prompt cap that the page states.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import shlex
from collections import defaultdict
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from culturelens.aggregate import declared_headline, headline_metric
from culturelens.console import extra_verdicts
from culturelens.countries import try_normalize_country
from culturelens.runlog import RunLogError, read_run
from culturelens.schema import Headline
from culturelens.stats import SMALL_N

#: total characters of (distinct) prompt text embedded before prompts get shortened
PROMPT_BUDGET = 4_000_000
#: a shortened prompt keeps at least this many characters (head and tail)
MIN_PROMPT_CAP = 600
#: a generated response longer than this is shortened in the explorer
TEXT_CAP = 4000
#: side files written by other analyses; shown only when present (and smaller than this)
SIDE_FILE_MAX = 2_000_000

#: labels of metrics that are no task's declared headline (and of every headline, for old runs)
METRIC_LABELS = {
    "acc": "accuracy (share correct)",
    "acc_norm": "accuracy, length-normalised cloze",
    "binary": "accuracy (binary match)",
    "score": "score",
    "mc1": "MC1 accuracy",
    "alignment": "alignment with human answers",
    "orientation": "orientation",
    "f1": "F1",
    "em": "exact match",
}

SAMPLE_COLUMNS = [
    "run", "task", "item", "variant", "country", "topic", "mode", "prompt", "options", "labels",
    "order", "gold", "pred", "probs", "text", "score", "outcome", "human",
]  # fmt: skip


def _num(x: Any, nd: int = 4) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) or math.isinf(v) else round(v, nd)


def metric_label(name: str, headline: Headline | None = None) -> str:
    """The declared label when ``name`` is the task's headline, else the table's (or the name)."""
    if headline is not None and headline.metric == name:
        return headline.label
    return METRIC_LABELS.get(name, name.replace("_", " "))


def task_headline(name: str, config: dict[str, Any]) -> Headline | None:
    """The headline a task declared: as recorded in the run's ``config.json``, else as the task is
    registered now; None for an old run of a task that no longer exists."""
    recorded = ((config.get("tasks") or {}).get(name) or {}).get("headline")
    if isinstance(recorded, dict):
        try:
            return Headline(**recorded)
        except TypeError:
            pass
    return declared_headline(name)


def load_run(run_dir: Path) -> dict[str, Any]:
    """A run, read through the run log, as the dict the views below take: results (required),
    config, timing, samples and the analyses' side files (optional, each noted when unusable)."""
    log = read_run(run_dir)
    out: dict[str, Any] = {"dir": log.dir, "log": log, "results": log.results}
    config_path = log.dir / "config.json"
    out["config"] = log.header.model_dump(mode="json") if config_path.exists() else {}
    out["timing"] = log.timing
    try:
        out["samples"] = log.raw_samples(skip_bad=True)
    except RunLogError:
        out["samples"] = []
        log.notes.append("samples.jsonl not found: no per-sample explorer for this run")
    for side in ("robustness", "alignment", "crosslingual"):
        out[side] = log.side_file(f"{side}.json", max_bytes=SIDE_FILE_MAX)
    out["surveys"], out["survey_refs"] = _surveys(log)
    out["notes"] = log.notes
    out["mtime"] = log.mtime
    return out


def _surveys(log: Any) -> tuple[dict[str, str], dict[str, dict[str, dict[str, Any]]]]:
    """Which tasks of the run are surveys (their kind) and, per survey item, the human reference:
    distributions over the options per country and/or mean positions on a 0-1 scale."""
    from culturelens.alignment.analysis import survey_of

    kinds: dict[str, str] = {}
    refs: dict[str, dict[str, dict[str, Any]]] = {}
    for name in log.results.get("tasks") or {}:
        try:
            sv = survey_of(log, name)
        except Exception:  # noqa: BLE001 - a task no longer installed: shown as a plain task
            sv = None
        if sv is None:
            continue
        kinds[name] = sv.kind
        try:
            items = log.items(name)
        except RunLogError as exc:
            log.notes.append(f"{name}: no human reference in the explorer ({exc})")
            items = {}
        refs[name] = {
            iid: {"dist": dict(it.reference), "means": dict(it.reference_means)}
            for iid, it in items.items()
            if it.reference or it.reference_means
        }
    return kinds, refs


#: human reference rows shown per survey sample (nearest first)
HUMAN_ROWS = 12


def human_reference(s: dict[str, Any], ref: dict[str, Any] | None) -> dict[str, Any] | None:
    """The model's answer beside the human answers for one survey sample: each country's distribution
    (with the Jensen-Shannon distance to the model's) or mean position (with the absolute difference
    to the model's expected position). A persona sample is compared with its own country only."""
    from culturelens.distributions import expected_position, js_distance

    probs = s.get("probs")
    if not ref or not isinstance(probs, list) or not probs:
        return None
    country = s.get("country")
    rows: list[dict[str, Any]] = []
    dist, means = ref.get("dist") or {}, ref.get("means") or {}
    if dist:
        for c, q in dist.items():
            if len(q) == len(probs) and (country is None or c == country):
                rows.append(
                    {
                        "country": c,
                        "dist": [_num(x, 3) for x in q],
                        "distance": _num(js_distance(probs, q), 3),
                    }
                )
        kind = "dist"
    else:
        model_pos = expected_position(probs)
        for c, mu in means.items():
            if country is None or c == country:
                rows.append({"country": c, "mean": _num(mu, 3), "distance": _num(abs(model_pos - mu), 3)})
        kind = "means"
    if not rows:
        return None
    rows.sort(key=lambda r: (r["distance"] if r["distance"] is not None else 9, r["country"]))
    out = {"kind": kind, "of": len(rows), "rows": rows[:HUMAN_ROWS]}
    if kind == "means":
        out["model_mean"] = _num(expected_position(probs), 3)
    return out


# --- aggregates ---------------------------------------------------------------------------------
def _metrics(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, m in (entry.get("metrics") or {}).items():
        if not isinstance(m, dict):
            continue
        ci = m.get("ci") or [None, None]
        row = {"mean": _num(m.get("mean")), "lo": _num(ci[0]), "hi": _num(ci[1]), "n": m.get("n")}
        # a zero-width interval from n > 0 values is no certainty: every value was equal (shown as such)
        if row["lo"] is not None and row["lo"] == row["hi"] and (m.get("n") or 0) > 0:
            row["flat"] = True
        out[name] = row
    return out


def _small(n: Any) -> bool:
    """Fewer scored units than :data:`culturelens.stats.SMALL_N`: shown faded / hatched and marked †."""
    return isinstance(n, int | float) and n < SMALL_N


def _group_rows(groups: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": str(name),
            "n": g.get("n"),
            "small": _small(g.get("n")),
            "invalid": g.get("invalid", 0),
            "metrics": _metrics(g),
        }
        for name, g in groups.items()
        if isinstance(g, dict)
    ]


def country_rows(by_country: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-country entries with ISO codes, region and whether the entry is sub-national (e.g. Assam)."""
    rows = []
    for key, entry in by_country.items():
        if not isinstance(entry, dict):
            continue
        ctry = try_normalize_country(str(key))
        iso2 = entry.get("iso2") or (ctry.iso2 if ctry else None)
        base = try_normalize_country(iso2) if iso2 else None
        sub = entry.get("subnational") or (ctry.subnational if ctry else None)
        rows.append(
            {
                "key": str(key),
                "name": str(key),
                "country": base.name if base else str(key),
                "iso2": iso2,
                "iso3": entry.get("iso3") or (base.iso3 if base else None),
                "region": entry.get("region") or (base.region if base else "Other"),
                "subregion": base.subregion if base else None,
                "subnational": sub,
                "n": entry.get("n"),
                "small": _small(entry.get("n")),
                "invalid": entry.get("invalid", 0),
                "metrics": _metrics(entry),
            }
        )
    return rows


def map_assignment(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """ISO alpha-2 -> which country row colours that country on the map.

    A national entry always wins; a sub-national entry (e.g. Assam) stands in for its country only
    when the country itself has no entry (the largest one if several), and is marked as such.
    """
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["iso2"] and not r["subnational"]:
            out[r["iso2"]] = {"key": r["key"], "via": None}
    subs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["iso2"] and r["subnational"] and r["iso2"] not in out:
            subs[r["iso2"]].append(r)
    for iso2, cands in subs.items():
        best = max(cands, key=lambda r: (r["n"] or 0, r["key"]))
        out[iso2] = {"key": best["key"], "via": best["subnational"]}
    return out


def region_gap(
    regions: Sequence[dict[str, Any]], metric: str, vs_chance: str | None = None
) -> dict[str, Any] | None:
    """Best and worst region on a metric, the gap, whether their 95% CIs are disjoint, and the one
    sentence the report says about it (:func:`region_gap_claim`)."""
    scored = [r for r in regions if (r["metrics"].get(metric) or {}).get("mean") is not None]
    if len(scored) < 2:
        return None
    # sorted (stable), so that tied regions still give two different names
    ordered = sorted(scored, key=lambda r: r["metrics"][metric]["mean"])
    best, worst = ordered[-1], ordered[0]
    b, w = best["metrics"][metric], worst["metrics"][metric]
    disjoint = None
    if None not in (b["lo"], w["hi"]):
        disjoint = bool(b["lo"] > w["hi"])
    return {
        "metric": metric,
        "best": best["name"],
        "best_mean": b["mean"],
        "best_n": best["n"],
        "worst": worst["name"],
        "worst_mean": w["mean"],
        "worst_n": worst["n"],
        "gap": _num(b["mean"] - w["mean"]),
        "ci_disjoint": disjoint,
        **region_gap_claim(
            best["name"], worst["name"], disjoint, min(best["n"] or 0, worst["n"] or 0), vs_chance
        ),
    }


def region_gap_claim(
    best: str, worst: str, disjoint: bool | None, min_n: int, vs_chance: str | None
) -> dict[str, Any]:
    """What the data say about regions, from one rule: a difference only when the best and the worst
    region's 95% CIs are disjoint (a conservative check), never from the point estimates alone."""
    cautions = []
    if min_n < SMALL_N:
        cautions.append(f"fewer than {SMALL_N} scored units in one of these regions")
    if vs_chance is not None and vs_chance != "above":
        cautions.append(
            "the overall score is not above chance, so differences between regions may reflect answer "
            "bias rather than knowledge"
        )
    if disjoint is None:
        claim, text = "unknown", "No interval for one of the regions: no claim about a region difference."
    elif disjoint:
        claim, text = "difference", f"{best} scores higher than {worst}: their 95% CIs do not overlap."
    else:
        claim = "no_difference"
        text = (
            f"The 95% CIs of the highest and the lowest region ({best} vs {worst}) overlap, so the gap "
            "between their point estimates may be noise (an overlap is not evidence that regions are equal)."
        )
    return {"claim": claim, "statement": text, "cautions": cautions}


def _breakdowns(by: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for dim, groups in by.items():
        if dim in ("country", "region") or not isinstance(groups, dict) or not groups:
            continue
        if dim == "language" and len(groups) < 2:
            continue
        label = dim.split(":", 1)[1] if dim.startswith("subset:") else dim
        out.append({"dim": dim, "label": label.replace("_", " ").capitalize(), "rows": _group_rows(groups)})
    order = {"topic": 0, "language": 2}
    return sorted(out, key=lambda b: (order.get(b["dim"], 1), b["dim"]))


def _variant_levels(specs: dict[str, dict[str, Any]]) -> tuple[list[str], dict[str, dict[str, str]]]:
    fields = sorted({f for s in specs.values() for f in s})
    factors = [f for f in fields if len({json.dumps(s.get(f)) for s in specs.values()}) > 1]
    levels = {
        v: {f: "none" if s.get(f) is None else str(s.get(f)) for f in factors} for v, s in specs.items()
    }
    return factors, levels


def sweep_view(
    entry: dict[str, Any], metric: str | None, samples: Sequence[dict[str, Any]]
) -> dict[str, Any] | None:
    """Per-variant scores, factor level means, flip rate and a variant x country matrix of one task."""
    variants = entry.get("variants")
    if not isinstance(variants, dict) or len(variants) < 2 or metric is None:
        return None
    vids = list(variants)
    specs = {v: (variants[v].get("variant") or {}) for v in vids}
    factors, levels = _variant_levels(specs)
    rows = []
    for v in vids:
        m = _metrics(variants[v]).get(metric)
        rows.append(
            {"name": v, "n": variants[v].get("n"), "levels": levels[v], "metrics": {metric: m} if m else {}}
        )
    effects = []
    for f in factors:
        by_level: dict[str, list[float]] = defaultdict(list)
        for r in rows:
            if r["metrics"]:
                by_level[r["levels"][f]].append(r["metrics"][metric]["mean"])
        means = {lvl: sum(vs) / len(vs) for lvl, vs in by_level.items() if vs}
        ref = levels[vids[0]][f]
        effects.append(
            {
                "factor": f,
                "reference": ref,
                "levels": [
                    {
                        "level": lvl,
                        "mean": _num(mu),
                        "delta": _num(mu - means[ref]) if ref in means else None,
                        "variants": len(by_level[lvl]),
                    }
                    for lvl, mu in sorted(means.items())
                ],
                "range": _num(max(means.values()) - min(means.values())) if means else None,
            }
        )
    # flip rate: share of items whose parsed prediction is not the same under every variant
    preds: dict[str, dict[str, str]] = defaultdict(dict)
    for s in samples:
        preds[s.get("item_id", "")][s.get("variant", "")] = json.dumps(s.get("prediction"), sort_keys=True)
    full = [p for p in preds.values() if len(p) == len(vids)]
    flipped = sum(1 for p in full if len(set(p.values())) > 1)
    countries = sorted({c for v in vids for c in (variants[v].get("by") or {}).get("country", {})})
    matrix = []
    for v in vids:
        by_c = (variants[v].get("by") or {}).get("country", {})
        matrix.append(
            [_num(((by_c.get(c) or {}).get("metrics") or {}).get(metric, {}).get("mean")) for c in countries]
        )
    return {
        "metric": metric,
        "factors": factors,
        "variants": rows,
        "effects": effects,
        "flip": {"items": len(full), "flipped": flipped, "rate": _num(flipped / len(full)) if full else None},
        "heatmap": {"variants": vids, "countries": countries, "values": matrix},
    }


def reference_lines(entry: dict[str, Any], metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    """metric -> {"chance": v, "majority": v} where the task has such a baseline for that metric."""
    from culturelens.aggregate import baselines_for

    out: dict[str, dict[str, float]] = {}
    for m in metrics:
        lines: dict[str, float] = {}
        for bname, b in baselines_for(entry.get("baselines") or {}, m).items():
            v = _num(b.get("value"))
            if v is None:
                continue
            key = (
                "chance"
                if bname.startswith("chance")
                else "majority"
                if bname.startswith("majority")
                else None
            )
            if key and key not in lines:
                lines[key] = v
        if lines:
            out[m] = lines
    return out


def across_variants(sweep: dict[str, Any] | None) -> dict[str, Any] | None:
    """The headline of a sweep: the mean of the variants' scores with their range; the primary
    (first) variant's own score is shown beside it, labelled."""
    if not sweep:
        return None
    metric = sweep["metric"]
    vals = [(r["name"], r["metrics"][metric]) for r in sweep["variants"] if r["metrics"].get(metric)]
    vals = [(v, m) for v, m in vals if m.get("mean") is not None]
    if not vals:
        return None
    means = [m["mean"] for _, m in vals]
    return {
        "metric": metric,
        "mean": _num(sum(means) / len(means)),
        "min": _num(min(means)),
        "max": _num(max(means)),
        "n_variants": len(vals),
        "primary": vals[0][0],
        "primary_score": vals[0][1],
    }


def answer_distribution(samples: Sequence[dict[str, Any]], survey: bool) -> dict[str, Any] | None:
    """How often each shown label was picked, beside how often it was the right answer (letter bias).

    Counted by the label as shown (after any option shuffling), over valid letter-mode samples, one
    table per label set (``A-D`` and ``Yes/No/Neither`` items are not pooled: a preference for "A"
    would be diluted by the other set's labels)."""
    sets: dict[tuple[str, ...], dict[str, Any]] = {}
    for s in samples:
        if s.get("mode") != "letter" or not s.get("valid", True) or not isinstance(s.get("prediction"), int):
            continue
        labels = [str(t).strip() for t in (s.get("targets") or [])]
        order = s.get("order") or list(range(len(labels)))
        if not labels or len(order) != len(labels):
            continue
        pos = {orig: i for i, orig in enumerate(order)}
        p = pos.get(s["prediction"])
        if p is None:
            continue
        st = sets.setdefault(tuple(labels), {"n": 0, "picked": defaultdict(int), "gold": defaultdict(float)})
        st["n"] += 1
        st["picked"][labels[p]] += 1
        gold = s.get("gold")
        golds: list[Any] = gold if isinstance(gold, list) else [gold]
        for g in golds:
            if isinstance(g, int) and g in pos:
                st["gold"][labels[pos[g]]] += 1 / max(1, len(golds))
    if not sets:
        return None
    out = []
    for shown, st in sorted(sets.items(), key=lambda kv: -kv[1]["n"]):
        rows = [
            {
                "label": lab,
                "picked": st["picked"].get(lab, 0),
                "gold": None if survey else _num(st["gold"].get(lab, 0.0), 2),
            }
            for lab in shown
        ]
        top = max(rows, key=lambda r: r["picked"])
        k = len(shown)
        share = top["picked"] / st["n"]
        out.append(
            {
                "labels": list(shown),
                "n": st["n"],
                "rows": rows,
                "top": top["label"],
                "top_share": _num(share, 3),
                "top_gold": None if survey else _num(st["gold"].get(top["label"], 0.0) / st["n"], 3),
                # one label taken far more often than an even spread (1/k) would give, on enough answers
                "strong": k > 1 and st["n"] >= SMALL_N and share > min(0.95, 1.5 / k),
            }
        )
    return {"n": sum(x["n"] for x in out), "sets": out, "survey": survey}


def country_blind(samples: Sequence[dict[str, Any]]) -> bool:
    """True when two or more countries were asked exactly the same prompts (no persona, no country in
    the text): per-country scores then differ only by chance, and the report says so."""
    per: dict[str, list[str]] = defaultdict(list)
    for s in samples:
        if s.get("country") and isinstance(s.get("prompt"), str):
            per[str(s["country"])].append(hashlib.sha1(s["prompt"].encode()).hexdigest())
    if len(per) < 2:
        return False
    return len({tuple(sorted(v)) for v in per.values()}) == 1


def task_view(
    name: str,
    entry: dict[str, Any],
    samples: Sequence[dict[str, Any]],
    headline: Headline | None = None,
    survey: str | None = None,
) -> dict[str, Any]:
    by = entry.get("by") or {}
    metric = headline_metric(entry, headline)
    countries = country_rows(by.get("country") or {})
    regions = _group_rows(by.get("region") or {})
    metrics = _metrics(entry)
    baselines = baseline_view(entry, metric)
    chance_verdict = next((b["verdict"] for b in baselines if b["name"].startswith("chance")), None)
    sweep = sweep_view(entry, metric, samples)
    return {
        "name": name,
        "description": entry.get("description", ""),
        "items": entry.get("items"),
        "n": entry.get("n"),
        "invalid": entry.get("invalid", 0),
        "modes": entry.get("modes", []),
        "metric": metric,
        "metrics": metrics,
        "metric_labels": {m: metric_label(m, headline) for m in metrics},
        "countries": countries,
        "map": map_assignment(countries),
        "regions": regions,
        "region_gap": {m: region_gap(regions, m, chance_verdict if m == metric else None) for m in metrics},
        "breakdowns": _breakdowns(by),
        "extra": entry.get("extra") or {},
        "extra_verdicts": extra_verdicts(entry.get("extra") or {}),
        "sweep": sweep,
        "across": across_variants(sweep),
        "baselines": baselines,
        "vs_chance": chance_verdict,
        "lines": reference_lines(entry, list(metrics)),
        "survey": survey,
        "higher_is_better": None if headline is None else headline.higher_is_better,
        "answers": answer_distribution(samples, survey is not None),
        "country_blind": country_blind(samples),
        "judge": judge_view(entry.get("judge")),
        "lict": lict_view(entry) if name == "lict" or name.startswith("lict") else None,
    }


def judge_view(judge: Any) -> dict[str, Any] | None:
    """Who judged a judged task and how far its verdicts can be trusted, per question asked
    (``results.json`` ``tasks.<t>.judge``, written by :mod:`culturelens.judges`)."""
    if not isinstance(judge, dict):
        return None
    asks = []
    for name, a in (judge.get("asks") or {}).items():
        if not isinstance(a, dict):
            continue
        human: dict[str, Any] = a["human"] if isinstance(a.get("human"), dict) else {}
        asks.append(
            {
                "name": name,
                "kind": a.get("kind"),
                "verdicts": a.get("n_verdicts"),
                "invalid_rate": _num(a.get("invalid_rate"), 3),
                "judge_alpha": _num(a.get("judge_alpha"), 3),
                "weighted_kappa": _num(a.get("judge_weighted_kappa"), 3),
                "wording_spread": _num(a.get("wording_spread"), 3),
                "wording_alpha": _num(a.get("wording_alpha"), 3),
                "swap_consistency": _num(a.get("swap_consistency"), 3),
                "first_position_rate": _num(a.get("first_position_rate"), 3),
                "human_spearman": _num(human.get("spearman"), 3),
                "human_n": human.get("n"),
                "unreliable": bool(a.get("unreliable")),
                "problems": [str(x) for x in a.get("problems") or []],
            }
        )
    judges = [
        str(j.get("spec") or (j.get("identity") or {}).get("model") or "?")
        for j in judge.get("judges") or []
        if isinstance(j, dict)
    ]
    return {
        "judges": judges,
        "wordings": [str(w) for w in judge.get("wordings") or []],
        "verdicts": judge.get("verdicts"),
        "invalid_rate": _num(judge.get("invalid_rate"), 3),
        "alpha_method": judge.get("alpha_method"),
        "verdict": judge.get("verdict"),
        "weak_judge": bool(judge.get("weak_judge")),
        "notes": [str(x) for x in judge.get("notes") or []],
        "asks": asks,
    }


def baseline_view(entry: dict[str, Any], metric: str | None) -> list[dict[str, Any]]:
    """The headline metric against each baseline that applies to it, with one verdict rule
    (:func:`culturelens.stats.vs_baseline`: is the whole interval above / below the baseline?)."""
    from culturelens.aggregate import baselines_for
    from culturelens.stats import vs_baseline

    m = (entry.get("metrics") or {}).get(metric) if metric else None
    if not m or not m.get("ci"):
        return []
    out = []
    for name, b in baselines_for(entry.get("baselines") or {}, metric or "").items():
        label = {"chance": "chance", "chance_mc1": "chance (MC1)"}.get(name) or (
            f"always {b.get('label', '?')}"
            if name == "majority_position"
            else f"always '{b.get('label', '?')}'"
        )
        out.append(
            {
                "name": name,
                "label": label,
                "value": _num(b["value"]),
                "verdict": vs_baseline(m["mean"], m["ci"][0], m["ci"][1], b["value"]),
            }
        )
    return out


# --- run summary ---------------------------------------------------------------------------------
def _reproduce(config: dict[str, Any]) -> str:
    """A command that re-creates the run: the one the CLI recorded, else rebuilt from config.json."""
    if config.get("command"):
        return str(config["command"])
    cfg = config.get("config") or {}
    parts = ["culturelens", "run", "--model", str(cfg.get("model", "default"))]
    for t in cfg.get("tasks") or []:
        parts += ["--task", str(t)]
    if cfg.get("mode"):
        parts += ["--mode", str(cfg["mode"])]
    if cfg.get("limit") is not None:
        parts += ["--limit", str(cfg["limit"])]
    if cfg.get("countries"):
        parts += ["--countries", ",".join(cfg["countries"])]
    if cfg.get("data_dir"):
        parts += ["--data-dir", str(cfg["data_dir"])]
    variants = [v for v in cfg.get("variants") or [] if isinstance(v, dict)]
    if len(variants) > 1:
        factors, levels = _variant_levels({str(i): v for i, v in enumerate(variants)})
        design = 1
        for f in factors:
            vals = list(dict.fromkeys(levels[str(i)][f] for i in range(len(variants))))
            design *= len(vals)
            parts += ["--vary", f"{f}={','.join(vals)}"]
        if design != len(variants):
            parts += ["--sample", str(len(variants))]
    elif len(variants) == 1 and variants[0].get("persona"):
        parts += ["--persona", str(variants[0]["persona"])]
    if cfg.get("seed"):
        parts += ["--seed", str(cfg["seed"])]
    return " ".join(shlex.quote(p) for p in parts)


def run_view(run: dict[str, Any], index: int) -> dict[str, Any]:
    results, config = run["results"], run["config"]
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in run["samples"]:
        by_task[s.get("task", "")].append(s)
    tasks = {
        name: task_view(
            name,
            entry,
            by_task.get(name, []),
            task_headline(name, config),
            (run.get("surveys") or {}).get(name),
        )
        for name, entry in results["tasks"].items()
    }
    cfg = config.get("config") or {}
    variants = cfg.get("variants") or []
    return {
        "index": index,
        "label": run["log"].label,
        "dir": str(run["dir"]),
        "model": results.get("model") or {},
        "chat_template": results.get("chat_template"),
        "backend": config.get("backend") or {},
        "date": dt.datetime.fromtimestamp(run["mtime"], tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": config.get("command"),
        "reproduce": _reproduce(config) if config else None,
        "config": {
            k: cfg.get(k)
            for k in ("model", "tasks", "mode", "limit", "countries", "seed", "n_boot")
            if k in cfg
        },
        "n_variants": len(variants) or 1,
        "versions": config.get("versions") or {},
        "timing": {k: _num(v, 3) for k, v in (run["timing"] or {}).items()},
        "n_samples": len(run["samples"]),
        "tasks": tasks,
        "robustness": run["robustness"],
        "alignment": run["alignment"],
        "crosslingual": crosslingual_view(run.get("crosslingual")),
        "notes": run["notes"],
    }


# --- samples -------------------------------------------------------------------------------------
class _Table:
    """A string table: repeated values are stored once and referenced by index."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.index: dict[str, int] = {}

    def add(self, value: Any) -> int | None:
        if value is None:
            return None
        key = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
        if key not in self.index:
            self.index[key] = len(self.values)
            self.values.append(value)
        return self.index[key]


def shorten(text: str, cap: int) -> str:
    """Keep the head and the (more informative) tail of a long prompt, saying how much was cut."""
    if len(text) <= cap:
        return text
    head = cap // 4
    tail = cap - head
    return f"{text[:head]}\n[… {len(text) - cap} characters not embedded in this report …]\n{text[-tail:]}"


def _gold(gold: Any) -> Any:
    if isinstance(gold, list) and gold and isinstance(gold[0], dict):  # short-answer clusters
        out = []
        for g in gold:
            texts = list(dict.fromkeys([*(g.get("en_texts") or []), *(g.get("texts") or [])]))
            out.append(
                " / ".join(str(t) for t in texts[:4]) + (f" (×{g['count']})" if g.get("count", 1) > 1 else "")
            )
        return out
    return gold


def _outcome(s: dict[str, Any], metric: str | None) -> tuple[float | None, int | None]:
    """(headline score, outcome): 1 correct (score >= 0.5), 0 incorrect, -1 invalid, None unscored."""
    if not s.get("valid", True):
        return _num((s.get("metrics") or {}).get(metric)) if metric else None, -1
    score = _num((s.get("metrics") or {}).get(metric)) if metric else None
    if score is None:
        return None, None
    return score, 1 if score >= 0.5 else 0


def pack_samples(runs: Sequence[dict[str, Any]], prompt_budget: int = PROMPT_BUDGET) -> dict[str, Any]:
    """All runs' samples as compact rows (see SAMPLE_COLUMNS) plus string tables."""
    tables = {
        c: _Table() for c in ("task", "variant", "country", "topic", "mode", "prompt", "options", "labels")
    }
    distinct: dict[str, None] = {}
    for run in runs:
        for s in run["samples"]:
            distinct.setdefault(s.get("prompt") or "", None)
    total_chars = sum(len(p) for p in distinct)
    cap = None
    if total_chars > prompt_budget:
        cap = max(MIN_PROMPT_CAP, prompt_budget // max(1, len(distinct)))
    shortened = 0
    rows = []
    for ri, run in enumerate(runs):
        metrics = {
            name: headline_metric(t, task_headline(name, run.get("config") or {}))
            for name, t in run["results"]["tasks"].items()
        }
        for s in run["samples"]:
            task = s.get("task", "")
            prompt = s.get("prompt") or ""
            if cap is not None and len(prompt) > cap:
                prompt = shorten(prompt, cap)
                shortened += 1
            resp = s.get("response") or {}
            text = resp.get("text")
            if isinstance(text, str) and len(text) > TEXT_CAP:
                text = text[:TEXT_CAP] + f" [… {len(text) - TEXT_CAP} more characters]"
            labels = None
            if s.get("mode") == "letter" and s.get("targets"):
                labels = [str(t).strip() for t in s["targets"]]
            score, outcome = _outcome(s, metrics.get(task))
            human = None
            if task in (run.get("surveys") or {}):  # a survey answer has no right or wrong
                outcome = None if outcome != -1 else -1
                human = human_reference(
                    s, ((run.get("survey_refs") or {}).get(task) or {}).get(s.get("item_id"))
                )
            probs = s.get("probs")
            rows.append(
                [
                    ri,
                    tables["task"].add(task),
                    str(s.get("item_id", "")),
                    tables["variant"].add(s.get("variant") or "default"),
                    tables["country"].add(s.get("country")),
                    tables["topic"].add(s.get("topic")),
                    tables["mode"].add(s.get("mode")),
                    tables["prompt"].add(prompt),
                    tables["options"].add(s.get("options") or None),
                    tables["labels"].add(labels),
                    s.get("order") or None,
                    _gold(s.get("gold")),
                    s.get("prediction"),
                    [_num(p, 4) for p in probs] if isinstance(probs, list) else None,
                    text,
                    score,
                    outcome,
                    human,
                ]
            )
    return {
        "columns": SAMPLE_COLUMNS,
        "rows": rows,
        "tables": {k: t.values for k, t in tables.items()},
        "total": len(rows),
        "prompt_cap": cap,
        "prompts_shortened": shortened,
        "prompt_chars": total_chars,
    }


# --- comparison ----------------------------------------------------------------------------------
def comparisons(run_dirs: Sequence[Path]) -> list[dict[str, Any]]:
    """Paired comparisons of every later run against the first (``culturelens.compare``)."""
    if len(run_dirs) < 2:
        return []
    try:
        from culturelens.compare import compare_runs
    except ImportError:
        return [
            {"a": 0, "b": j, "result": None, "error": "paired comparison unavailable in this build"}
            for j in range(1, len(run_dirs))
        ]
    out = []
    for j in range(1, len(run_dirs)):
        try:
            res = compare_runs(run_dirs[0], run_dirs[j])
            out.append({"a": 0, "b": j, "result": res, "error": None})
        except (FileNotFoundError, ValueError, KeyError) as exc:
            out.append({"a": 0, "b": j, "result": None, "error": str(exc)})
    return out


def build_model(run_dirs: Sequence[Path], prompt_budget: int = PROMPT_BUDGET) -> dict[str, Any]:
    """The complete report model for one run or a side-by-side comparison of several."""
    if not run_dirs:
        raise ValueError("no run directory given")
    run_dirs, improved = expand_improve([Path(d) for d in run_dirs])
    runs = [load_run(Path(d)) for d in run_dirs]
    views = [run_view(r, i) for i, r in enumerate(runs)]
    labels = [v["label"] for v in views]
    for v in views:  # same model twice: tell the runs apart by their folder
        if labels.count(v["label"]) > 1:
            v["label"] = f"{v['label']} ({Path(v['dir']).name})"
    task_names: list[str] = []
    for v in views:
        task_names.extend(t for t in v["tasks"] if t not in task_names)
    try:
        version = metadata.version("culturelens")
    except metadata.PackageNotFoundError:
        version = "unknown"
    comps = comparisons([Path(d) for d in run_dirs])
    for c in comps:
        c["item_sets"] = item_sets(views[c["a"]], views[c["b"]], c["result"])
    return {
        "schema": 1,
        "generated": dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "culturelens": version,
        "small_n": SMALL_N,
        "runs": views,
        "tasks": task_names,
        "comparisons": comps,
        "improve": [improve_view(d, s) for d, s in improved],
        "samples": pack_samples(runs, prompt_budget=prompt_budget),
    }


def item_sets(a: dict[str, Any], b: dict[str, Any], result: dict[str, Any] | None) -> dict[str, Any]:
    """Per shared task: how many items each run scored and how many the paired comparison shares;
    ``same`` is False when the runs scored different item sets (full-set scores are then not comparable)."""
    out: dict[str, Any] = {}
    for name, t in ((result or {}).get("tasks") or {}).items():
        rows = t.get("rows") or []
        shared = rows[0]["n"] if rows and rows[0].get("group") == "all" else None
        ia = (a["tasks"].get(name) or {}).get("items")
        ib = (b["tasks"].get(name) or {}).get("items")
        out[name] = {"a": ia, "b": ib, "shared": shared, "same": shared is not None and ia == ib == shared}
    return out


# --- improve: before / after of a fine-tuned model --------------------------------------------------
IMPROVE_SPLITS = {"test": "held-out items", "heldout_country": "held-out countries"}


def is_improve_dir(path: Path) -> bool:
    """An output folder of ``culturelens improve`` (``improve.json``; not itself a run)."""
    return (path / "improve.json").is_file() and not (path / "results.json").exists()


def _improve_run(out: Path, recorded: Any, name: str) -> Path | None:
    """A before / after run of an improve folder: under the folder, else where ``improve.json`` says."""
    for cand in (out / "runs" / name, Path(str(recorded)) if recorded else None):
        if cand is not None and (cand / "results.json").is_file():
            return cand
    return None


def expand_improve(run_dirs: Sequence[Path]) -> tuple[list[Path], list[tuple[Path, dict[str, Any]]]]:
    """Run folders for the report: an improve folder stands for its before and after runs (in that
    order, so the comparison reads after − before) and its summary is kept for the improve section."""
    dirs: list[Path] = []
    found: list[tuple[Path, dict[str, Any]]] = []
    for d in map(Path, run_dirs):
        if not is_improve_dir(d):
            dirs.append(d)
            continue
        summary = json.loads((d / "improve.json").read_text(encoding="utf-8"))
        runs = summary.get("runs") or {}
        before, after = (
            _improve_run(d, runs.get("before"), "before"),
            _improve_run(d, runs.get("after"), "after"),
        )
        if before is None or after is None:
            raise RunLogError(
                f"{d}: improve.json found, but not its before and after runs (runs/before, runs/after)"
            )
        dirs += [after, before]
        found.append((d, summary))
    return dirs, found


def _change(t: dict[str, Any] | None) -> dict[str, Any] | None:
    """A paired before/after row (analysis._test) as the page shows it: levels, change, CI, p, n."""
    if not t or t.get("diff") is None:
        return None
    ci = t.get("ci") or [None, None]
    return {
        "b": _num(t.get("b")),
        "a": _num(t.get("a")),
        "diff": _num(t.get("diff")),
        "lo": _num(ci[0]),
        "hi": _num(ci[1]),
        "p": _num(t.get("p"), 6),
        "p_holm": _num(t.get("p_holm"), 6),
        "test": t.get("test"),
        "n": t.get("n"),
        "small": _small(t.get("n")),
        "note": t.get("note") or "",
        "verdict": t.get("verdict"),
        "before": t.get("before"),
        "after": t.get("after"),
    }


def _positions_view(pos: dict[str, Any], variants: Sequence[str]) -> list[dict[str, Any]]:
    """Per variant: the share of answers at each displayed position before and after, and the gold's."""
    rows = []
    for v in variants:
        b, a = (pos.get("before") or {}).get(v), (pos.get("after") or {}).get(v)
        if not a and not b:
            continue
        width = 1 + max(
            (int(p) for d in (a, b) if d for key in ("predicted", "gold") for p in (d.get(key) or {})),
            default=-1,
        )
        share = [str(p) for p in range(width)]
        rows.append(
            {
                "variant": v,
                "n": (a or b or {}).get("n"),
                "before": [_num((b or {}).get("predicted", {}).get(p, 0.0)) for p in share] if b else None,
                "after": [_num((a or {}).get("predicted", {}).get(p, 0.0)) for p in share] if a else None,
                "gold": [_num((a or b or {}).get("gold", {}).get(p, 0.0)) for p in share],
                "top_position": (a or {}).get("top_position"),
                "top_share": _num((a or {}).get("top_share")),
            }
        )
    return rows


def improve_split_view(sp: dict[str, Any], training: Sequence[str]) -> dict[str, Any]:
    """One split of ``improve.json`` (held-out items or countries) for the page."""
    countries = []
    for c in sp.get("countries") or []:
        row = _change(c)
        if row is None:
            continue
        ctry = try_normalize_country(str(c.get("country")))
        row.update(
            key=str(c.get("country")),
            name=str(c.get("country")),
            iso2=ctry.iso2 if ctry else None,
            region=ctry.region if ctry else None,
        )
        countries.append(row)
    tp = sp.get("training_presentation") or {}
    variants = list(sp.get("variants") or [])
    return {
        "metric": sp.get("metric"),
        "items": sp.get("items"),
        "variants": variants,
        "pooled": _change(sp.get("pooled")),
        "robust": _change(sp.get("robust")),
        "training": {
            "variants": list(tp.get("variants") or ([tp["variant"]] if tp.get("variant") else [])),
            "train": _change(tp.get("gain_train")),
            "other": _change(tp.get("gain_other")),
            "other_variants": list((tp.get("gain_other") or {}).get("variants") or []),
        }
        if tp
        else None,
        "per_variant": [
            {"variant": v, "training": v in training, **(_change(t) or {"diff": None})}
            for v, t in (sp.get("per_variant") or {}).items()
        ],
        "countries": countries,
        "positions": _positions_view(sp.get("positions") or {}, variants),
        "verdicts": list(sp.get("verdicts") or []),
        "note": sp.get("note"),
    }


def improve_view(out: Path, s: dict[str, Any]) -> dict[str, Any]:
    """``improve.json`` as the page's before/after section: every number comes from the summary."""
    training = list(
        s.get("training_variants") or ([s["training_variant"]] if s.get("training_variant") else [])
    )
    tr = s.get("training") or {}
    data = s.get("data") or {}
    splits = {
        key: {"label": label, **improve_split_view(s["splits"][key], training)}
        for key, label in IMPROVE_SPLITS.items()
        if (s.get("splits") or {}).get(key)
    }
    transfer: dict[str, Any] | None = None
    t = s.get("transfer")
    if t:
        transfer = {"task": t.get("task"), "limit": t.get("limit"), "skipped": t.get("skipped"), "tasks": []}
        for name, tt in (t.get("tasks") or {}).items():
            rows = [{"group": r.get("group"), **(_change(r) or {})} for r in tt.get("rows") or []]
            transfer["tasks"].append({"name": name, "metric": tt.get("metric"), "rows": rows})
    c = s.get("control")
    control = None
    if c:
        control = {"name": c.get("name"), "metric": c.get("metric"), "skipped": c.get("skipped")}
        if c.get("n"):
            control.update({**(_change(c) or {}), "verdict": c.get("verdict")})
    return {
        "dir": str(out),
        "task": s.get("task"),
        "complete": bool(s.get("complete")),
        "base_model": s.get("base_model"),
        "after_model": s.get("after_model"),
        "method": tr.get("method"),
        "steps": tr.get("steps"),
        "examples": tr.get("examples"),
        "loss": [_num(tr.get("first_loss")), _num(tr.get("last_loss"))],
        "device": tr.get("device"),
        "training_variants": training,
        "heldout_countries": list(data.get("heldout_countries") or []),
        "totals": data.get("totals") or {},
        "data_positions": (data.get("positions") or {}).get("train"),
        "presentations": data.get("presentations"),
        "verdicts": list(s.get("verdicts") or []),
        "splits": splits,
        "transfer": transfer,
        "control": control,
        "timing": s.get("timing") or {},
    }


# --- Lost in Cultural Translation and cross-lingual consistency ---------------------------------------
def _wilson(p: Any, n: Any) -> dict[str, Any]:
    from culturelens.stats import wilson_interval

    if not isinstance(n, int) or n <= 0 or p is None:
        return {"mean": None, "lo": None, "hi": None, "n": n}
    lo, hi = wilson_interval(round(float(p) * n), n)
    return {"mean": _num(p), "lo": _num(lo), "hi": _num(hi), "n": n}


def lict_view(entry: dict[str, Any]) -> dict[str, Any] | None:
    """A ``lict`` run's paired rows (``extra.paired``, computed by the task): per culture and metric,
    accuracy on the original problems and on the culture's version of the same problems (Wilson 95%
    intervals), the change with a Wald interval from the discordant counts, McNemar p and Holm p."""
    paired = (entry.get("extra") or {}).get("paired")
    if not isinstance(paired, dict) or not paired:
        return None
    out: dict[str, Any] = {}
    for metric, rows in paired.items():
        if not isinstance(rows, dict):
            continue
        view = []
        for culture, r in rows.items():
            n = r.get("n")
            if not isinstance(n, int) or n <= 0:
                continue
            b, c = int(r.get("original_only") or 0), int(r.get("culture_only") or 0)
            diff = (c - b) / n
            se = math.sqrt(max(0.0, b + c - (b - c) ** 2 / n)) / n
            view.append(
                {
                    "culture": culture,
                    "n": n,
                    "small": _small(n),
                    "original": _wilson(r.get("original"), n),
                    "culture_acc": _wilson(r.get("culture"), n),
                    "diff": {
                        "mean": _num(diff),
                        "lo": _num(max(-1.0, diff - 1.96 * se)),
                        "hi": _num(min(1.0, diff + 1.96 * se)),
                        "n": n,
                        **({"flat": True} if se == 0 else {}),
                    },
                    "original_only": b,
                    "culture_only": c,
                    "p": _num(r.get("p"), 6),
                    "p_holm": _num(r.get("p_holm"), 6),
                    "test": r.get("test"),
                }
            )
        out[metric] = view
    extra = entry.get("extra") or {}
    return {
        "paired": out,
        "excluded": extra.get("excluded"),
        "answer_tag_rate": _num(extra.get("answer_tag_rate")),
    }


def _ci_row(e: dict[str, Any] | None, n: Any) -> dict[str, Any] | None:
    if not isinstance(e, dict):
        return None
    ci = e.get("ci") or [None, None]
    return {"mean": _num(e.get("mean")), "lo": _num(ci[0]), "hi": _num(ci[1]), "n": n}


def crosslingual_view(res: Any) -> dict[str, Any] | None:
    """``crosslingual.json`` (``culturelens crosslingual RUN --out RUN/crosslingual.json``) for the page:
    per region and overall, local-language and English accuracy, agreement (with CIs), the paired
    change local − English with its CI, p and Holm p."""
    if not isinstance(res, dict) or not isinstance(res.get("regions"), dict):
        return None

    def row(name: str, r: dict[str, Any]) -> dict[str, Any]:
        n = r.get("questions")
        ci = r.get("diff_ci") or [None, None]
        ctry = try_normalize_country(str(r.get("country") or name))
        return {
            "name": name,
            "country": r.get("country"),
            "iso2": ctry.iso2 if ctry else None,
            "language": r.get("language"),
            "pairs": r.get("pairs"),
            "n": n,
            "small": _small(n),
            "local": _ci_row(r.get("local"), n),
            "english": _ci_row(r.get("english"), n),
            "agreement": _ci_row(r.get("agreement"), n),
            "diff": {"mean": _num(r.get("diff")), "lo": _num(ci[0]), "hi": _num(ci[1]), "n": n},
            "p": _num(r.get("p"), 6),
            "p_holm": _num(r.get("p_holm"), 6),
            "test": r.get("test"),
            "note": r.get("note") or "",
        }

    return {
        "task": res.get("task"),
        "variant": res.get("variant"),
        "prompts": res.get("prompts") or [],
        "rule": res.get("rule"),
        "all": row("all", res["all"]) if isinstance(res.get("all"), dict) else None,
        "regions": [row(k, v) for k, v in res["regions"].items() if isinstance(v, dict)],
        "local_better": list(res.get("local_better") or []),
        "english_better": list(res.get("english_better") or []),
        "notes": list(res.get("notes") or []),
    }
