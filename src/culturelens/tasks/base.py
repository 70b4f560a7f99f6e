"""Stage 1: the task interface. A task turns dataset rows into items and says how to grade them.

A new benchmark is one module in ``culturelens.tasks`` that subclasses :class:`Task` and
decorates it with :func:`register`; discovery imports every module of the package.
"""

from __future__ import annotations

import csv
import importlib
import os
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from culturelens import render as render_mod
from culturelens import scoring
from culturelens.schema import Item, Mode, Prompt, Response, Score, Variant


class DatasetError(ValueError):
    """A dataset file is missing or malformed. Names the file, row and field."""

    def __init__(
        self, file: str | Path, message: str, row: int | str | None = None, field: str | None = None
    ):
        self.file, self.row, self.field = str(file), row, field
        where = str(file)
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


#: row number of a CSV's first data row in error messages: the header is row 1, as a spreadsheet shows it
CSV_FIRST_ROW = 2


def read_csv_rows(
    path: Path, required: Sequence[str], first_row: int = CSV_FIRST_ROW
) -> list[tuple[int, dict[str, str]]]:
    """Every row of a CSV with a header as (row number, row), the first data row numbered
    ``first_row``. Checks that the required columns exist and that no row has more cells than the
    header; any problem is a :class:`DatasetError` naming the file, row and column."""
    if not path.is_file():
        raise DatasetError(path, "file not found")
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            for col in required:
                if col not in header:
                    raise DatasetError(
                        path,
                        f"missing column (header has: {', '.join(header)[:200]})",
                        row=first_row - 1 if first_row > 1 else None,
                        field=col,
                    )
            rows = []
            for i, row in enumerate(reader, start=first_row):
                if None in row:
                    raise DatasetError(
                        path, f"{len(header) + len(row[None])} cells for {len(header)} columns", row=i
                    )
                rows.append((i, row))
            return rows
    except UnicodeDecodeError as exc:
        raise DatasetError(path, f"not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise DatasetError(path, f"malformed CSV ({exc})") from exc


class Task(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    default_mode: ClassVar[Mode] = Mode.LETTER
    #: environment variable that may point at the dataset folder
    data_env: ClassVar[str | None] = None
    #: the dataset's folder name under a datasets root (``$CULTURELENS_DATA/<data_folder>``)
    data_folder: ClassVar[str | None] = None
    #: variant fields the benchmark's protocol fixes (a sweep may not override them silently)
    default_variant: ClassVar[Variant] = Variant()

    def __init__(self, data_dir: str | Path | None = None, **options: Any):
        env = os.environ.get(self.data_env) if self.data_env else None
        self.data_dir = Path(data_dir) if data_dir else (Path(env) if env else None)
        root = os.environ.get("CULTURELENS_DATA")
        if self.data_dir is None and root and self.data_folder and (Path(root) / self.data_folder).exists():
            self.data_dir = (
                Path(root) / self.data_folder
            )  # one folder holding every release, as ../shared/datasets
        self.options = options

    @abstractmethod
    def load(self) -> Iterable[Item]:
        """Yield items; raise :class:`DatasetError` on a missing or malformed file."""

    def items(self, limit: int | None = None, countries: Sequence[str] | None = None) -> list[Item]:
        """Load and validate everything first, so a run never starts half-loaded."""
        wanted = None
        if countries:
            from culturelens.countries import normalize_country

            wanted = {normalize_country(c).name for c in countries}
        out: list[Item] = []
        for item in self.load():
            if wanted is not None and (item.country is None or item.country.name not in wanted):
                continue
            out.append(item)
        if limit is not None:
            out = _spread(out, limit)
        return out

    def fewshot_pool(self) -> list[Item]:
        return []

    def render(self, item: Item, variant: Variant, mode: Mode, shots: list[Item] | None = None) -> Prompt:
        return render_mod.render(item, variant, mode, shots)

    def score(self, item: Item, prompt: Prompt, response: Response) -> Score:
        return scoring.score(item, prompt, response)

    def unit_scores(self, items: dict[str, Item], scores: list[Score]) -> list[tuple[Item, Score]]:
        """Scores at the unit the paper counts (default: one per item). Override to group."""
        return [(items[s.item_id], s) for s in scores]

    def extra_metrics(self, items: dict[str, Item], scores: list[Score]) -> dict[str, Any]:
        """Task-level metrics that are not means of per-item values (macro-F1, orientation...)."""
        return {}

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "mode": self.default_mode.value}


def _spread(items: list[Item], limit: int) -> list[Item]:
    """Take ``limit`` items round-robin across countries so a small slice still covers them."""
    if limit >= len(items):
        return items
    buckets: dict[str, list[Item]] = {}
    for it in items:
        buckets.setdefault(it.country.name if it.country else "", []).append(it)
    queues = list(buckets.values())
    out: list[Item] = []
    i = 0
    while len(out) < limit:
        q = queues[i % len(queues)]
        idx = i // len(queues)
        if idx < len(q):
            out.append(q[idx])
        i += 1
        if i > len(items) * 2 + len(queues):
            break
    keep = {id(x) for x in out}
    return [it for it in items if id(it) in keep]  # keep dataset order


_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    _REGISTRY[cls.name] = cls
    return cls


def _discover() -> None:
    import culturelens.tasks as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name != "base" and not mod.name.startswith("_"):
            importlib.import_module(f"culturelens.tasks.{mod.name}")


def task_names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def get_task(name: str, data_dir: str | Path | None = None, **options: Any) -> Task:
    _discover()
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise KeyError(f"unknown task {name!r}{hint}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](data_dir=data_dir, **options)
