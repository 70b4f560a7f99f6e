"""The built-in starter suite: original everyday-life items across world regions.

A smoke test and a demo so the default run works offline, not a benchmark.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from culturelens.countries import UnknownCountryError, normalize_country
from culturelens.schema import Item, ItemKind
from culturelens.tasks.base import DatasetError, Task, register

_REQUIRED = ("id", "kind", "country", "topic", "question", "options", "answer")


def read_jsonl_items(path: Path, task: str) -> Iterator[Item]:
    """Rows of the starter format: {id, kind, country, topic, question, options, answer, rationale}."""
    if not path.exists():
        raise DatasetError(path, "file not found")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(path, f"invalid JSON ({exc.msg})", row=lineno) from exc
            for field in _REQUIRED:
                if field not in row:
                    raise DatasetError(path, "missing field", row=lineno, field=field)
            try:
                kind = ItemKind(row["kind"])
            except ValueError as exc:
                raise DatasetError(path, f"unknown kind {row['kind']!r}", row=lineno, field="kind") from exc
            try:
                country = normalize_country(row["country"])
            except UnknownCountryError as exc:
                raise DatasetError(path, str(exc), row=lineno, field="country") from exc
            options = row["options"]
            answer = row["answer"]
            answers = answer if isinstance(answer, list) else [answer]
            if not isinstance(options, list) or len(options) < 2:
                raise DatasetError(path, "needs a list of at least two options", row=lineno, field="options")
            if not all(isinstance(a, int) and 0 <= a < len(options) for a in answers):
                raise DatasetError(
                    path, f"answer {answer!r} is not an option index", row=lineno, field="answer"
                )
            yield Item(
                id=row["id"],
                task=task,
                kind=kind,
                question=row["question"],
                options=options,
                correct=answers,
                country=country,
                language=row.get("language", "en"),
                topic=row["topic"],
                subset={"format": "norm" if kind is ItemKind.LABEL else "mcq"},
                metadata={"rationale": row.get("rationale", "")},
            )


@register
class Starter(Task):
    name = "starter"
    description = "Built-in smoke-test suite: everyday-life MCQs and norm judgements across world regions"

    def load(self) -> Iterator[Item]:
        if self.data_dir is not None:
            path = self.data_dir / "starter.jsonl" if self.data_dir.is_dir() else self.data_dir
        else:
            path = Path(str(resources.files("culturelens.tasks") / "data" / "starter.jsonl"))
        yield from read_jsonl_items(path, self.name)
