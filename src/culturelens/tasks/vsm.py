"""Hofstede's Values Survey Module 2013: the 24 content items, asked as a respondent from each country.

Items are replicated per country (``item.country``), so ``--persona typical:@item`` asks each copy
as a respondent from that country and ``--countries`` picks the panel (default: ten countries with
all six published scores). Without a persona every copy is the same prompt (the cache answers
them once) and the analysis pools them into the unsteered model's answers.

Wording: culturelens ships its own paraphrase (``tasks/data/vsm2013_items.json``). The official
wording (or any other) can be supplied as a user file, via the ``items_file`` task option or
``--data-dir`` (a file, or a folder holding one): an ``.xlsx`` with columns ``question`` and
``options`` (a JSON list of the 5 answers) in item order 01..24, or a ``.json`` in the shipped
schema (``{"items": [{"number", "question", "options", "translations"?}]}``).

The analysis (:mod:`culturelens.alignment`) turns the answer distributions into item means on the
1-5 codes, computes the six indices with the VSM 2013 formulas (constants 0) and compares them
across countries with Hofstede's published scores (``hofstede_file`` option, the
``CULTURELENS_HOFSTEDE`` variable, or a ``6-dimensions*.csv`` under the data folder or in a
``hofstede/`` folder next to it).
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field

from culturelens.countries import Country, normalize_country
from culturelens.hofstede import load_hofstede
from culturelens.schema import Item, ItemKind
from culturelens.tasks.base import (
    DatasetError,
    DataSource,
    Headline,
    SurveyTask,
    TaskOptions,
    check_unique,
    no_items,
    read_json,
    register,
)
from culturelens.vsm_formulas import VSM_DIMENSIONS

N_ITEMS = 24
N_OPTIONS = 5
DEFAULT_PANEL = (
    "United States",
    "Germany",
    "Sweden",
    "Russia",
    "Turkey",
    "India",
    "China",
    "Japan",
    "Brazil",
    "Mexico",
)
DIMENSION_OF = {n: dim for dim, ns in VSM_DIMENSIONS.items() for n in ns}


def _options(raw: Any, path: Path, row: int) -> list[str]:
    if isinstance(raw, str):
        text = raw.strip()
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = [p.strip() for p in text.replace(";", "\n").splitlines() if p.strip()]
    else:
        value = raw
    if (
        not isinstance(value, list | tuple)
        or len(value) != N_OPTIONS
        or not all(str(v).strip() for v in value)
    ):
        raise DatasetError(
            path,
            f"expected a list of {N_OPTIONS} answer options (codes 1-5 in order)",
            row=row,
            field="options",
        )
    return [str(v).strip() for v in value]


def read_vsm_xlsx(path: Path) -> list[dict[str, Any]]:
    """Rows ``question``, ``options`` in item order 01..24 (header names matched case-insensitively)."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
        raise DatasetError(path, f"cannot read workbook ({exc})") from exc
    ws = wb.worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    wb.close()
    if not rows:
        raise DatasetError(path, "empty sheet")
    header = [str(c).strip().lower() if c is not None else "" for c in rows[0]]
    for col in ("question", "options"):
        if col not in header:
            raise DatasetError(path, "missing column", row=1, field=col)
    qi, oi = header.index("question"), header.index("options")
    out: list[dict[str, Any]] = []
    for r, row in enumerate(rows[1:], start=2):
        if row is None or all(c is None or str(c).strip() == "" for c in row):
            continue
        q = str(row[qi] or "").strip()
        if not q:
            raise DatasetError(path, "empty question", row=r, field="question")
        out.append({"number": len(out) + 1, "question": q, "options": _options(row[oi], path, r), "row": r})
    return out


def _item_where(keypath: Sequence[str | int]) -> tuple[int | str | None, str | None]:
    """Location in a VSM json file: the item's 1-based position is the row (as in the other errors)."""
    keys = list(keypath[1:]) if keypath and keypath[0] == "items" else list(keypath)
    if not keys or not isinstance(keys[0], int):
        return None, ".".join(str(k) for k in keypath) or None
    rest = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys[1:]).lstrip(".")
    return keys[0] + 1, rest or None


def read_vsm_json(path: Path) -> list[dict[str, Any]]:
    data = read_json(path, where=_item_where)
    rows = data.get("items") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise DatasetError(path, 'expected a list of items or {"items": [...]}', field="items")
    if not rows:
        raise no_items(path, "the list of items is empty")
    out = []
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise DatasetError(path, f"expected an object, got {type(row).__name__}", row=i)
        for field in ("question", "options"):
            if row.get(field) is None:
                raise DatasetError(path, "each item needs question and options", row=i, field=field)
        if not isinstance(row["question"], str) or not row["question"].strip():
            raise DatasetError(path, "expected the question text", row=i, field="question")
        number = row.get("number", i)
        if not isinstance(number, int) or isinstance(number, bool):
            raise DatasetError(path, f"item number {number!r} is not an integer", row=i, field="number")
        tr = row.get("translations") or {}
        if not isinstance(tr, dict):
            raise DatasetError(
                path, "translations must map language -> {question, options}", row=i, field="translations"
            )
        for lang, t in tr.items():
            if not isinstance(t, dict) or not isinstance(t.get("question"), str):
                raise DatasetError(
                    path, f"translation {lang!r} needs a question", row=i, field="translations"
                )
            if "options" in t:
                t["options"] = _options(t["options"], path, i)
        out.append(
            {
                "number": number,
                "question": str(row["question"]).strip(),
                "options": _options(row["options"], path, i),
                "translations": tr,
            }
        )
    return out


def read_vsm(path: Path) -> list[dict[str, Any]]:
    """The 24 items from an xlsx or json file, checked: numbers 1..24, five options each."""
    if not path.exists():
        raise DatasetError(path, "file not found")
    rows = read_vsm_xlsx(path) if path.suffix.lower() in (".xlsx", ".xlsm") else read_vsm_json(path)
    if not rows:
        raise no_items(path, "no item rows")
    seen: dict[str, int] = {}
    for i, r in enumerate(rows, start=1):
        check_unique(path, seen, str(r["number"]), r.get("row", i), "number", what="item number")
    numbers = sorted(r["number"] for r in rows)
    if numbers != list(range(1, N_ITEMS + 1)):
        raise DatasetError(
            path,
            f"expected the {N_ITEMS} VSM 2013 content items numbered 1..{N_ITEMS}, got {len(rows)} "
            f"(numbers {numbers[:3]}...{numbers[-3:]})",
        )
    return sorted(rows, key=lambda r: r["number"])


def _find(folder: Path, patterns: Sequence[str]) -> Path | None:
    for pat in patterns:
        hits = sorted(folder.rglob(pat))
        if hits:
            return hits[0]
    return None


@register
class VSM(SurveyTask):
    name = "vsm"
    description = "Hofstede VSM 2013 items asked per country persona; six indices vs published scores"
    protocol = (
        "The 24 content items of Hofstede's Values Survey Module 2013, asked as a respondent from each "
        "country of the panel (--persona typical:@item); the answer distributions give item means on the "
        "1-5 codes and the six indices by the VSM 2013 formulas, compared across countries with Hofstede's "
        "published scores (the alignment analysis). The shipped wording is our paraphrase."
    )
    headline = Headline(
        "expected", "mean answer position (0 = first option, 1 = last)", higher_is_better=None
    )
    survey_kind = "vsm"
    per_country_items = True
    source = DataSource(
        "Hofstede's VSM 2013 (culturelens paraphrase shipped; the official wording as a user file)",
        env="CULTURELENS_VSM",
        files=("**/vsm*.json", "**/vsm*.xlsx", "**/*vsm*.xlsx", "**/*VSM*.xlsx"),
        missing="no VSM items file (vsm*.json or vsm*.xlsx) in this folder",
    )

    class Options(TaskOptions):
        items_file: str | None = Field(
            None,
            description="the items' wording: a VSM 2013 .xlsx or .json file (default: the shipped paraphrase)",
        )
        hofstede_file: str | None = Field(
            None, description="Hofstede's published country scores (6-dimensions*.csv)"
        )
        countries: list[str] | None = Field(
            None, description=f"the country panel, comma-separated (default: {', '.join(DEFAULT_PANEL)})"
        )

    options: Options  # the typed --opt values

    limit_strata = ("subset.dimension",)

    def items_file(self) -> Path | None:
        """User wording: ``items_file`` option, else a VSM xlsx/json in ``--data-dir``; None = shipped."""
        opt = self.options.items_file
        return Path(opt) if opt else self.locate()

    def hofstede_path(self) -> Path | None:
        opt = self.options.hofstede_file or os.environ.get("CULTURELENS_HOFSTEDE")
        if opt:
            return Path(opt)
        d = self.data_dir
        roots: list[Path] = []
        if d is not None:
            roots = [d] if d.is_dir() else [d.parent]
            roots.append(roots[0].parent / "hofstede")
        if os.environ.get("CULTURELENS_DATA"):  # a datasets root holding hofstede/ (as ../shared/datasets)
            roots.append(Path(os.environ["CULTURELENS_DATA"]) / "hofstede")
        for root in roots:
            if root.is_dir():
                hit = _find(root, ("6-dimensions*.csv",))
                if hit:
                    return hit
        return None

    def reference_data(self) -> dict[str, Any]:
        """Hofstede's published scores (when :meth:`hofstede_path` finds them), saved with the run so
        the analysis compares without the file."""
        path = self.hofstede_path()
        if path is None:
            return super().reference_data()
        return {**super().reference_data(), "hofstede": load_hofstede(path), "hofstede_file": str(path)}

    def rows(self) -> tuple[list[dict[str, Any]], str]:
        path = self.items_file()
        if path is None:
            shipped = Path(str(resources.files("culturelens.tasks") / "data" / "vsm2013_items.json"))
            return read_vsm(shipped), "culturelens paraphrase"
        return read_vsm(path), str(path)

    def panel(self, countries: Sequence[str] | None = None) -> list[Country]:
        names = countries or self.options.countries or DEFAULT_PANEL
        panel: dict[str, Country] = {}
        for n in names:
            c = normalize_country(n)
            if c.iso2 in panel:
                raise ValueError(f"vsm countries: {n!r} is {c.name}, already in the panel")
            panel[c.iso2] = c
        return list(panel.values())

    def load(self, countries: Sequence[str] | None = None) -> Iterator[Item]:
        rows, source = self.rows()
        for country in self.panel(countries):
            for row in rows:
                n = row["number"]
                yield Item(
                    id=f"vsm{n:02d}-{country.iso2}",
                    task=self.name,
                    kind=ItemKind.SURVEY,
                    question=row["question"],
                    options=row["options"],
                    ordered=True,
                    country=country,
                    topic=DIMENSION_OF[n],
                    group=f"vsm{n:02d}",
                    subset={"dimension": DIMENSION_OF[n]},
                    translations=row.get("translations") or {},
                    metadata={"number": n, "dimension": DIMENSION_OF[n], "wording": source},
                )

    def items(self, limit: int | None = None, countries: Sequence[str] | None = None) -> list[Item]:
        """All 24 items for each country of the panel (``countries`` replaces the default panel).
        ``limit`` keeps whole items across the panel (every country is asked the same ones), balanced
        over the six dimensions."""
        return self.apply_limit(list(self.load(countries)), limit)
