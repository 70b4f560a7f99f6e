"""Stage 7: scores -> aggregates, broken down by country, region, language, topic and subsets.

Every number carries its n and a cluster-bootstrap confidence interval.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from culturelens.schema import Item, Score
from culturelens.stats import cluster_bootstrap_ci

Unit = tuple[Item, Score]

BREAKDOWNS: dict[str, Callable[[Item], str | None]] = {
    "country": lambda it: it.country.name if it.country else None,
    "region": lambda it: it.country.region if it.country else None,
    "language": lambda it: it.language,
    "topic": lambda it: it.topic,
}


def summarize(units: Sequence[Unit], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Mean, CI and n for every metric present in the units."""
    by_metric: dict[str, tuple[list[float], list[str]]] = defaultdict(lambda: ([], []))
    for item, score in units:
        for name, value in score.metrics.items():
            vals, clus = by_metric[name]
            vals.append(value)
            clus.append(item.group or item.id)
    metrics = {}
    for name, (vals, clus) in sorted(by_metric.items()):
        mean, lo, hi = cluster_bootstrap_ci(vals, clus, n_boot=n_boot, seed=seed)
        metrics[name] = {"mean": mean, "ci": [lo, hi], "n": len(vals), "clusters": len(set(clus))}
    invalid = sum(1 for _, s in units if not s.valid)
    return {"n": len(units), "invalid": invalid, "metrics": metrics}


def breakdown(units: Sequence[Unit], n_boot: int = 1000, seed: int = 0) -> dict[str, dict[str, Any]]:
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
            entry = summarize(us, n_boot=n_boot, seed=seed)
            if dim == "country":
                c = us[0][0].country
                assert c is not None
                entry.update({"iso2": c.iso2, "iso3": c.iso3, "region": c.region})
            out[dim][key] = entry
    return out


def aggregate_task(units: Sequence[Unit], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    result = summarize(units, n_boot=n_boot, seed=seed)
    result["by"] = breakdown(units, n_boot=n_boot, seed=seed)
    return result


def headline_metric(summary: dict[str, Any]) -> str | None:
    metrics = summary.get("metrics", {})
    for name in ("acc", "score", "binary", "mc1", "alignment", "orientation"):
        if name in metrics:
            return name
    return next(iter(metrics), None)
