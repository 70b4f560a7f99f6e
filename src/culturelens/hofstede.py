"""Hofstede's published 6-D country scores (the ``6-dimensions*.csv`` file): the ``vsm`` task records
them with its run (``Task.reference_data``), and the alignment analysis compares the model's VSM
indices with them."""

from __future__ import annotations

import csv
from pathlib import Path

from culturelens.countries import UnknownCountryError, hofstede_code, try_normalize_country
from culturelens.errors import DatasetError

#: Hofstede CSV column per dimension (LTO is Minkov's WVS-based re-estimate)
HOFSTEDE_COLUMNS = {"PDI": "pdi", "IDV": "idv", "MAS": "mas", "UAI": "uai", "LTO": "ltowvs", "IVR": "ivr"}


def load_hofstede(path: str | Path) -> dict[str, dict[str, float]]:
    """Published 6-D country scores: canonical country -> {PDI, IDV, ...}; regions and missing values dropped."""
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
