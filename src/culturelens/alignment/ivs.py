"""The Inglehart-Welzel cultural map (IVS DDF folder, given at analysis time): where the model's
nearest countries sit on it."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from culturelens.errors import DatasetError

#: canonical country -> (traditional-secular, survival-self-expression)
MapPoints = Mapping[str, tuple[float, float]]


def load_ivs(folder: str | Path) -> dict[str, tuple[float, float]]:
    """Latest Inglehart-Welzel point per country from the IVS DDF folder: canonical name -> (trad, surv)."""
    from culturelens.countries import try_normalize_country

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


def iw_map(table: Sequence[Mapping[str, Any]], ivs: MapPoints, k: int = 3) -> dict[str, Any]:
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
