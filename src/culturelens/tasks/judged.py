"""What the judged tasks (CARE, CaLMQA, CIVICS) share: the judge options and the default mapping from
judged values to metrics. Not a benchmark itself; see :mod:`culturelens.judging` for the protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from culturelens.judging import WORDINGS, check_wordings
from culturelens.schema import Item, Score
from culturelens.tasks.base import Task, TaskOptionError, TaskOptions


class JudgedOptions(TaskOptions):
    judge_templates: list[str] = Field(
        ["paper"],
        description=f"judge wordings to ask, comma-separated ({', '.join(WORDINGS)}; default paper); "
        "two or more give the spread over wordings",
    )
    max_tokens: int = Field(256, description="generation budget of the model's answer (default 256)")


class JudgedBase(Task):
    """A generation task whose answers a judge scores (implements :class:`~culturelens.judging.JudgedTask`
    with the subclass's ``judge_asks``)."""

    options: JudgedOptions

    def __init__(self, data_dir: str | Path | None = None, **options: Any):
        super().__init__(data_dir, **options)
        try:
            self._wordings = check_wordings(self.name, self.options.judge_templates)
        except ValueError as exc:
            raise TaskOptionError(str(exc)) from None
        if self.options.max_tokens < 1:
            raise TaskOptionError(
                f"task {self.name!r} option max_tokens={self.options.max_tokens}: give a positive number"
            )

    def judge_wordings(self) -> list[str]:
        return list(self._wordings)

    def judged_metrics(self, item: Item, score: Score, values: dict[str, float | None]) -> dict[str, float]:
        """Each judged value as the metric of its name (none when no verdict was readable)."""
        return {k: v for k, v in values.items() if v is not None}
