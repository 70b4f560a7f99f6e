"""Stage 7: scores -> aggregates, broken down by country, region, language, topic and subsets.

Every number carries its n and a 95% confidence interval, ``"ci": [low, high]``, with the method in
``"ci_method"`` (see :func:`culturelens.stats.metric_interval`): Wilson score intervals for
proportions (``wilson``; ``wilson-kish`` when rows are clustered, with the effective n in
``"n_eff"``), a bootstrap / t / Wilson union for other [0, 1] metrics (``bootstrap-t-wilson``;
``wilson-bound`` without observed spread) and bootstrap / t for unbounded ones (``bootstrap-t``). Per-country proportions also get a partially pooled estimate
beside the raw one (``shrunk_mean``, ``shrunk_ci``, ``shrinkage``), and the task its countries'
ranks with uncertainty (``country_ranks``). :func:`baselines` gives the chance / majority scores a
headline should be read against, :func:`culturelens.stats.vs_baseline` the verdict.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from culturelens.schema import Item, ItemKind, Score
from culturelens.stats import (
    PROPORTION_METHODS,
    metric_interval,
    posterior_ranks,
    shrink_proportions,
)

if TYPE_CHECKING:
    from culturelens.schema import Headline

Unit = tuple[Item, Score]

BREAKDOWNS: dict[str, Callable[[Item], str | None]] = {
    "country": lambda it: it.country.name if it.country else None,
    "region": lambda it: it.country.region if it.country else None,
    "language": lambda it: it.language,
    "topic": lambda it: it.topic,
}

SHRINKAGE_METHOD = "empirical Bayes beta-binomial (marginal ML), prior mean: region or global"
RANK_METHOD = "simulation from the partially pooled (beta) posteriors"
RANK_SIMULATIONS = 4000


def summarize(
    units: Sequence[Unit],
    n_boot: int = 1000,
    seed: int = 0,
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """Mean, CI (and its method), n and clusters for every metric present in the units; ``bounds``:
    the scale a task declares for a metric that is not on [0, 1] (``Task.metric_bounds``)."""
    by_metric: dict[str, tuple[list[float], list[str]]] = defaultdict(lambda: ([], []))
    for item, score in units:
        for name, value in score.metrics.items():
            vals, clus = by_metric[name]
            vals.append(value)
            clus.append(item.group or item.id)
    metrics = {}
    for name, (vals, clus) in sorted(by_metric.items()):
        iv = metric_interval(vals, clus, n_boot=n_boot, seed=seed, bounds=(bounds or {}).get(name))
        entry: dict[str, Any] = {
            "mean": iv.mean,
            "ci": [iv.low, iv.high],
            "n": len(vals),
            "clusters": len(set(clus)),
            "ci_method": iv.method,
        }
        if iv.n_eff is not None:
            entry["n_eff"] = iv.n_eff
        metrics[name] = entry
    invalid = sum(1 for _, s in units if not s.valid)
    return {"n": len(units), "invalid": invalid, "metrics": metrics}


def add_shrinkage(by_country: dict[str, dict[str, Any]], alpha: float = 0.05) -> list[str]:
    """Add partially pooled estimates to the per-country entries, in place; returns the metrics.

    Only for metrics that are proportions in every country (``ci_method`` wilson / wilson-kish)
    and present in at least 3 countries. Counts are effective ones (mean * n_eff), so clustered
    countries weigh what their information is worth. The raw ``mean`` / ``ci`` are untouched; the
    pooled values go beside them: ``shrunk_mean``, ``shrunk_ci`` and ``shrinkage`` (method, toward
    "region" or "global", prior_mean, prior_n = prior strength in pseudo-items, posterior [a, b]).
    """
    names = sorted({m for e in by_country.values() for m in e.get("metrics", {})})
    done = []
    for name in names:
        keys = [k for k, e in by_country.items() if name in e.get("metrics", {})]
        ms = [by_country[k]["metrics"][name] for k in keys]
        if len(ms) < 3 or any(m.get("ci_method") not in PROPORTION_METHODS for m in ms):
            continue
        n_eff = [float(m["n_eff"]) for m in ms]
        successes = [float(m["mean"]) * ne for m, ne in zip(ms, n_eff, strict=True)]
        regions = [by_country[k].get("region") for k in keys]
        shrunk = shrink_proportions(successes, n_eff, regions, alpha=alpha)
        if not shrunk:
            continue
        for m, s in zip(ms, shrunk, strict=True):
            m["shrunk_mean"] = s.mean
            m["shrunk_ci"] = [s.low, s.high]
            m["shrinkage"] = {
                "method": SHRINKAGE_METHOD,
                "toward": s.toward,
                "prior_mean": s.prior_mean,
                "prior_n": s.prior_n,
                "posterior": [s.a, s.b],
            }
        done.append(name)
    return done


def country_ranks(
    by_country: dict[str, dict[str, Any]], metric: str, top_k: int | None = None, seed: int = 0
) -> dict[str, Any] | None:
    """Rank of each country on ``metric`` with uncertainty, from its partially pooled posterior.

    Needs :func:`add_shrinkage` to have run (None otherwise, or with fewer than 3 countries).
    ``top_k`` defaults to min(3, countries // 3), at least 1, so "top k" never means everyone.
    Per country: ``rank_mean``, ``rank_ci`` (95%), ``p_top`` / ``p_bottom`` (among the k highest /
    lowest); rank 1 is the highest.
    """
    keys = [k for k, e in by_country.items() if "shrinkage" in e.get("metrics", {}).get(metric, {})]
    if len(keys) < 3:
        return None
    post = [by_country[k]["metrics"][metric]["shrinkage"]["posterior"] for k in keys]
    k = top_k if top_k is not None else max(1, min(3, len(keys) // 3))
    r = posterior_ranks(
        [p[0] for p in post], [p[1] for p in post], top_k=k, n_sim=RANK_SIMULATIONS, seed=seed
    )
    return {
        "metric": metric,
        "top_k": k,
        "method": RANK_METHOD,
        "n_sim": RANK_SIMULATIONS,
        "countries": {
            key: {
                "rank_mean": r["rank_mean"][i],
                "rank_ci": [r["rank_low"][i], r["rank_high"][i]],
                "p_top": r["p_top"][i],
                "p_bottom": r["p_bottom"][i],
            }
            for i, key in enumerate(keys)
        },
    }


def breakdown(
    units: Sequence[Unit],
    n_boot: int = 1000,
    seed: int = 0,
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per country / region / language / topic and per benchmark subset key."""
    groups: dict[str, dict[str, list[Unit]]] = defaultdict(lambda: defaultdict(list))
    for unit in units:
        item = unit[0]
        for dim, key_fn in BREAKDOWNS.items():
            key = key_fn(item)
            if key:
                groups[dim][key].append(unit)
        for sub_key, sub_val in item.subset.items():
            groups[f"subset:{sub_key}"][sub_val].append(unit)
    out: dict[str, dict[str, Any]] = {}
    for dim, members in groups.items():
        out[dim] = {}
        for key, us in sorted(members.items()):
            entry = summarize(us, n_boot=n_boot, seed=seed, bounds=bounds)
            if dim == "country":
                c = us[0][0].country
                assert c is not None
                entry.update({"iso2": c.iso2, "iso3": c.iso3, "region": c.region})
            out[dim][key] = entry
    if "country" in out:
        add_shrinkage(out["country"])
    return out


def aggregate_task(
    units: Sequence[Unit],
    n_boot: int = 1000,
    seed: int = 0,
    task: str | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """Summary, breakdowns and country ranks on the headline metric that ``task`` (default: the units'
    task) declares (see :func:`headline_metric`); ``bounds`` as in :func:`summarize`."""
    result = summarize(units, n_boot=n_boot, seed=seed, bounds=bounds)
    result["by"] = breakdown(units, n_boot=n_boot, seed=seed, bounds=bounds)
    metric = headline_metric(result, task=task or (units[0][0].task if units else None))
    ranks = country_ranks(result["by"].get("country", {}), metric, seed=seed) if metric else None
    if ranks is not None:
        result["country_ranks"] = ranks
    return result


#: the headline of a summary whose task declares none that it has (an unknown task, another mode's
#: metrics): the first of these present, else the first metric
FALLBACK_HEADLINES = ("acc", "score", "binary", "mc1", "alignment", "orientation")


def declared_headline(task: str) -> Headline | None:
    """The :class:`~culturelens.tasks.base.Headline` a registered task declares (None: no such task)."""
    from culturelens.tasks.base import task_class

    try:
        return task_class(task).headline
    except KeyError:
        return None


def headline_metric(summary: dict[str, Any], task: str | Headline | None = None) -> str | None:
    """The metric a task's results lead with: the one ``task`` (a registered task's name, or a
    declaration) declares when the summary has it, else :data:`FALLBACK_HEADLINES`."""
    metrics = summary.get("metrics", {})
    declared = declared_headline(task) if isinstance(task, str) else task
    if declared is not None and declared.metric in metrics:
        return declared.metric
    for name in FALLBACK_HEADLINES:
        if name in metrics:
            return name
    return next(iter(metrics), None)


# --- baselines ------------------------------------------------------------------------------------
#: metrics whose uniform-guessing expectation is |correct| / |options| (one-of-many correct: MC2 is
#: the probability mass on the correct options, p_correct likewise)
CHANCE_METRICS = ["acc", "acc_norm", "p_correct", "mc2"]
#: metrics scored by which option is chosen, so "always answer X" strategies apply
CHOICE_METRICS = ["acc", "acc_norm"]

BaselineRow = tuple[Item, Sequence[int]]


def _position_label(pos: int) -> str:
    return chr(ord("A") + pos) if pos < 26 else str(pos + 1)


def baselines(rows: Iterable[BaselineRow], all_of_group: bool = False) -> dict[str, dict[str, Any]]:
    """Scores of answering without looking, for the rows of one task x variant.

    Each row is ``(item, order)``, ``order`` mapping displayed position -> original option index
    (``Prompt.order``; empty means identity). Returned entries (each left out where undefined,
    i.e. unless every row has options and gold ``correct``; survey and short-answer rows have none):

    * ``chance``: expected score of uniform random guessing, the mean of |correct| / |options|
      (applies to acc and to MC2-style scores: with several correct options a uniform guess hits
      one of them with that probability, and a uniform distribution puts that mass on them);
    * ``chance_mc1``: for items that name a ``best`` and ``irrelevant`` options in their metadata
      (Kalahi), MC1 = the best option scored above every irrelevant one, by chance 1 / (1 + |irr|);
    * ``majority_position``: accuracy of always answering the one displayed position that holds a
      gold option most often (``position`` 0-based, ``label`` "A", "B", ...; positions beyond an
      item's options count as wrong);
    * ``majority_label``: for label tasks (every row of kind label, e.g. yes / no / neither):
      accuracy of always answering the most frequent gold label (``label`` is its text).

    Each has ``value``, ``n`` (units), ``count`` (units right, where whole) and ``applies_to`` (the
    metrics it is a baseline for). With ``all_of_group`` rows sharing ``item.group`` form one unit
    that is right only when all its rows are (CulturalBench-Hard): chance multiplies over the
    rows, a fixed answer must be right in every row of the unit.
    """
    units: dict[str, list[tuple[Item, list[int]]]] = {}
    for i, (item, order) in enumerate(rows):
        key = (item.group or item.id) if all_of_group else f"{i}"
        units.setdefault(key, []).append((item, list(order) or list(range(len(item.options)))))
    flat = [r for u in units.values() for r in u]
    if not flat or any(not it.options or not it.correct for it, _ in flat):
        return {}
    n = len(units)
    out: dict[str, dict[str, Any]] = {}

    chance = 0.0
    for u in units.values():
        p = 1.0
        for it, _ in u:
            p *= len(set(it.correct)) / len(it.options)
        chance += p
    out["chance"] = {"value": chance / n, "n": n, "applies_to": CHANCE_METRICS}

    if all("best" in it.metadata and it.metadata.get("irrelevant") for it, _ in flat):
        mc1 = 0.0
        for u in units.values():
            p = 1.0
            for it, _ in u:
                p *= 1.0 / (1 + len(it.metadata["irrelevant"]))
            mc1 += p
        out["chance_mc1"] = {"value": mc1 / n, "n": n, "applies_to": ["mc1"]}

    width = max(len(order) for _, order in flat)
    hits = [
        sum(all(pos < len(order) and order[pos] in it.correct for it, order in u) for u in units.values())
        for pos in range(width)
    ]
    best = max(range(width), key=lambda pos: (hits[pos], -pos))
    out["majority_position"] = {
        "value": hits[best] / n,
        "n": n,
        "count": hits[best],
        "position": best,
        "label": _position_label(best),
        "applies_to": CHOICE_METRICS,
    }

    if all(it.kind is ItemKind.LABEL for it, _ in flat):
        labels = list(dict.fromkeys(it.options[c] for it, _ in flat for c in it.correct))
        right = Counter(
            {
                lab: sum(
                    all(lab in {it.options[c] for c in it.correct} for it, _ in u) for u in units.values()
                )
                for lab in labels
            }
        )
        lab, count = max(right.items(), key=lambda kv: (kv[1], -labels.index(kv[0])))
        out["majority_label"] = {
            "value": count / n,
            "n": n,
            "count": count,
            "label": lab,
            "applies_to": CHOICE_METRICS,
        }
    return out


def baselines_for(base: dict[str, dict[str, Any]], metric: str) -> dict[str, dict[str, Any]]:
    """The entries of a :func:`baselines` result that are baselines for ``metric``."""
    return {name: b for name, b in base.items() if metric in b.get("applies_to", ())}
