"""Errors that cross layers: raised low in the pipeline, caught by the drivers (runner, CLI).

This module sits at the bottom of the layer order (see ``tests/test_layers.py``) and imports no
other culturelens module at run time, so any layer may raise or catch these. The modules that
defined them before re-export them (``culturelens.tasks.base.DatasetError``,
``culturelens.backends.base.BackendError``, ``culturelens.render.RenderError``,
``culturelens.sweep.SweepError``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from culturelens.schema import Response


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


class RenderError(ValueError):
    """An item cannot be rendered under a variant (unknown template, persona, translation...)."""


class SweepError(ValueError):
    """A ``--vary`` design cannot be expanded (unknown factor or level)."""


class BackendError(RuntimeError):
    """A model could not be loaded or reached. The message names the model and the cause."""


class NativeCrashError(BackendError):
    """A native backend crashed in its test decode on this machine (see backends/probe.py)."""


class PartialBatchError(BackendError):
    """A batch failed part-way: ``completed`` maps request positions (in the batch as passed to
    :meth:`~culturelens.backends.base.Backend.run`) to the responses that did come back, so the
    runner can cache them (paid answers are never thrown away) before stopping with the cause."""

    def __init__(self, message: str, completed: dict[int, Response]):
        super().__init__(message)
        self.completed = completed
