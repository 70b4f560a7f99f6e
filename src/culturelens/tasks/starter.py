"""The built-in starter suite: original everyday-life items across world regions.

A smoke test and a demo so the default run works offline, not a benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from culturelens.countries import UnknownCountryError, normalize_country
from culturelens.schema import Item, ItemKind
from culturelens.tasks.base import (
    DatasetError,
    DataSource,
    Headline,
    Task,
    check_unique,
    no_items,
    parse_json,
    read_text,
    register,
)

_REQUIRED = ("id", "kind", "country", "topic", "question", "options", "answer")


def _text_field(path: Path, row: dict[str, Any], lineno: int, field: str) -> str:
    value = row[field]
    if not isinstance(value, str):
        raise DatasetError(path, f"expected a string, got {_kind(value)}", row=lineno, field=field)
    if not value.strip():
        raise DatasetError(path, "empty value", row=lineno, field=field)
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def read_jsonl_items(path: Path, task: str) -> Iterator[Item]:
    """Rows of the starter format: {id, kind, country, topic, question, options, answer, rationale}.
    Every row is checked before the first item is yielded; ``row`` in errors is the line number."""
    text = read_text(path)
    items: list[Item] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(
        text.split("\n"), start=1
    ):  # not splitlines(): U+2028 is valid inside a JSON string
        if not line.strip():
            continue
        row = parse_json(path, line, row=lineno)
        if not isinstance(row, dict):
            raise DatasetError(path, f"expected a JSON object, got {_kind(row)}", row=lineno)
        for field in _REQUIRED:
            if field not in row or row[field] is None:
                raise DatasetError(path, "missing field", row=lineno, field=field)
        item_id = _text_field(path, row, lineno, "id").strip()
        check_unique(path, seen, item_id, lineno, "id")
        kind_raw = _text_field(path, row, lineno, "kind")
        try:
            kind = ItemKind(kind_raw)
        except ValueError as exc:
            raise DatasetError(path, f"unknown kind {kind_raw!r}", row=lineno, field="kind") from exc
        try:
            country = normalize_country(_text_field(path, row, lineno, "country"))
        except UnknownCountryError as exc:
            raise DatasetError(path, str(exc), row=lineno, field="country") from exc
        question = _text_field(path, row, lineno, "question")
        topic = _text_field(path, row, lineno, "topic")
        options = row["options"]
        if not isinstance(options, list) or len(options) < 2:
            raise DatasetError(path, "needs a list of at least two options", row=lineno, field="options")
        if not all(isinstance(o, str) and o.strip() for o in options):
            raise DatasetError(path, "options must be non-empty strings", row=lineno, field="options")
        answer = row["answer"]
        answers = answer if isinstance(answer, list) else [answer]
        if not answers or not all(
            isinstance(a, int) and not isinstance(a, bool) and 0 <= a < len(options) for a in answers
        ):
            raise DatasetError(path, f"answer {answer!r} is not an option index", row=lineno, field="answer")
        language = row.get("language", "en")
        if not isinstance(language, str) or not language.strip():
            raise DatasetError(
                path, f"expected a language code, got {language!r}", row=lineno, field="language"
            )
        rationale = row.get("rationale", "")
        if not isinstance(rationale, str | None):
            raise DatasetError(
                path, f"expected a string, got {_kind(rationale)}", row=lineno, field="rationale"
            )
        items.append(
            Item(
                id=item_id,
                task=task,
                kind=kind,
                question=question,
                options=options,
                correct=answers,
                country=country,
                language=language,
                topic=topic,
                subset={"format": "norm" if kind is ItemKind.LABEL else "mcq"},
                metadata={"rationale": rationale or ""},
            )
        )
    if not items:
        raise no_items(path, "the file has no rows" if not text.strip() else "the file has only blank lines")
    yield from items


@register
class Starter(Task):
    name = "starter"
    description = "Built-in smoke-test suite: everyday-life MCQs and norm judgements across world regions"
    protocol = (
        "Not a paper: original multiple-choice questions and norm judgements, asked zero-shot with the "
        "generic templates; accuracy against the written answer."
    )
    headline = Headline("acc", "accuracy (share correct)")
    source = DataSource(
        "culturelens starter suite (shipped: tasks/data/starter.jsonl); --data-dir replaces it",
        files=("starter.jsonl",),
    )
    limit_strata = ("country", "subset.format", "topic")

    def load(self) -> Iterator[Item]:
        path = self.locate() or Path(str(resources.files("culturelens.tasks") / "data" / "starter.jsonl"))
        yield from read_jsonl_items(path, self.name)
