"""Stage 1: the task interface. A task turns dataset rows into items and says how to grade them.

A new benchmark is one module in ``culturelens.tasks`` that subclasses :class:`Task` and
decorates it with :func:`register`; discovery imports every module of the package, and the
entry-point group ``culturelens.tasks`` adds other packages' tasks (:mod:`culturelens.tasks.registry`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo

from culturelens import render as render_mod
from culturelens import scoring
from culturelens.errors import DatasetError  # defined in the bottom layer; tasks import it from here
from culturelens.schema import Headline, Item, Mode, Prompt, Response, Score, Variant
from culturelens.tasks.registry import (  # noqa: F401 - the registry lives in tasks/registry.py
    get_task,
    register,
    task_class,
    task_names,
)

#: row number of a CSV's first data row in error messages: the header is row 1, as a spreadsheet shows it
CSV_FIRST_ROW = 2

# a lone surrogate is what ``errors="surrogateescape"`` makes of a byte that is not UTF-8
_UNDECODABLE = re.compile("[\udc80-\udcff]")
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # survey files hold long cells (GlobalOpinionQA)


def undecodable(text: str) -> str | None:
    """``"byte 0xff"`` when ``text`` (decoded with ``surrogateescape``) holds a byte that is not UTF-8."""
    m = _UNDECODABLE.search(text)
    return f"byte 0x{ord(m.group()) - 0xDC00:02x}" if m else None


def read_text(path: Path) -> str:
    """A file's text, UTF-8 with an optional BOM; bytes that are not UTF-8 survive as lone surrogates
    (see :func:`undecodable`) so the caller can say in which row and field they are."""
    if not path.is_file():
        raise DatasetError(path, "file not found")
    try:
        text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    except OSError as exc:
        raise DatasetError(path, f"cannot read ({exc.strerror or exc})") from exc
    return text[1:] if text.startswith("\ufeff") else text


def read_csv_records(path: Path, delimiter: str = ",") -> list[tuple[int, list[str]]]:
    """Every non-blank record of a CSV as (row number, cells), the header numbered 1. A cell that is not
    UTF-8 is a :class:`DatasetError` naming its row and column."""
    text = read_text(path)
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if r]
    except csv.Error as exc:
        raise DatasetError(path, f"malformed CSV ({exc})") from exc
    header = records[0] if records else []
    out = []
    for rowno, cells in enumerate(records, start=1):
        for j, cell in enumerate(cells):
            bad = undecodable(cell)
            if bad:
                name = header[j] if rowno > 1 and j < len(header) and not undecodable(header[j]) else None
                raise DatasetError(
                    path, f"not UTF-8 text ({bad})", row=rowno, field=name or f"column {j + 1}"
                )
        out.append((rowno, cells))
    return out


def read_csv_rows(
    path: Path,
    required: Sequence[str],
    first_row: int = CSV_FIRST_ROW,
    delimiter: str = ",",
    allow_empty: bool = False,
) -> list[tuple[int, dict[str, str]]]:
    """Every row of a CSV with a header as (row number, row), the first data row numbered
    ``first_row``. Checks that the required columns exist, that no row has more cells than the header
    (missing trailing cells read as empty) and, unless ``allow_empty``, that there is at least one data
    row; any problem is a :class:`DatasetError` naming the file, row and column."""
    records = read_csv_records(path, delimiter)
    if not records:
        raise DatasetError(path, "no items: the file is empty")
    header = records[0][1]
    header_row = first_row - 1 if first_row > 1 else None
    for col in required:
        if col not in header:
            raise DatasetError(
                path, f"missing column (header has: {', '.join(header)[:200]})", row=header_row, field=col
            )
    dup = next((h for i, h in enumerate(header) if h and h in header[:i]), None)
    if dup is not None:
        raise DatasetError(path, "column appears twice in the header", row=header_row, field=dup)
    rows = []
    for i, (_, cells) in enumerate(records[1:], start=first_row):
        if len(cells) > len(header):
            raise DatasetError(path, f"{len(cells)} cells for {len(header)} columns", row=i)
        rows.append((i, {h: (cells[k] if k < len(cells) else "") for k, h in enumerate(header)}))
    if not rows and not allow_empty:
        raise DatasetError(path, "no items: the file has a header but no data rows")
    return rows


def _json_where(keypath: Sequence[str | int]) -> tuple[int | str | None, str | None]:
    """Default location of a JSON fault: the top-level key or index is the row, the rest the field."""
    if not keypath:
        return None, None
    rest = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keypath[1:]).lstrip(".")
    return keypath[0], rest or None


def _first_undecodable(
    obj: Any, keypath: tuple[str | int, ...] = ()
) -> tuple[tuple[str | int, ...], str] | None:
    if isinstance(obj, str):
        bad = undecodable(obj)
        return (keypath, bad) if bad else None
    if isinstance(obj, dict):
        for k, v in obj.items():
            bad = undecodable(k)
            if bad:
                return (*keypath, k), bad
            hit = _first_undecodable(v, (*keypath, k))
            if hit:
                return hit
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            hit = _first_undecodable(v, (*keypath, i))
            if hit:
                return hit
    return None


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def parse_json(
    path: Path,
    text: str,
    where: Callable[[Sequence[str | int]], tuple[int | str | None, str | None]] = _json_where,
    row: int | None = None,
) -> Any:
    """Parse JSON text read with :func:`read_text`. Syntax errors, duplicate keys and bytes that are
    not UTF-8 are a :class:`DatasetError`; ``where`` maps a fault's key path to (row, field), and
    ``row`` (a JSON Lines line) overrides the row."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                lines = [
                    _line_of(text, m.start()) for m in re.finditer(re.escape(json.dumps(k)) + r"\s*:", text)
                ]
                at = f" (lines {lines[0]} and {lines[1]})" if len(lines) >= 2 and row is None else ""
                raise DatasetError(path, f"duplicate key {k!r}{at}", row=row, field=k)
            out[k] = v
        return out

    try:
        obj = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        at = f"line {exc.lineno}, column {exc.colno}" if row is None else f"column {exc.colno}"
        raise DatasetError(path, f"invalid JSON: {exc.msg} ({at})", row=row) from exc
    except RecursionError as exc:
        raise DatasetError(path, "invalid JSON: nested too deeply", row=row) from exc
    hit = _first_undecodable(obj)
    if hit:
        keypath, bad = hit
        if row is None:
            r, field = where(keypath)
        else:  # a JSON Lines record: the line is the row, the key path the field
            r, field = row, _json_where(["", *keypath])[1]
        m = _UNDECODABLE.search(text)
        at = f", line {_line_of(text, m.start())}" if m and row is None else ""
        raise DatasetError(
            path, f"not UTF-8 text ({bad}{at})", row=row if row is not None else r, field=field
        )
    return obj


def read_json(
    path: Path, where: Callable[[Sequence[str | int]], tuple[int | str | None, str | None]] = _json_where
) -> Any:
    """A JSON file, checked as :func:`parse_json` does; an empty file is ``no items``."""
    text = read_text(path)
    if not text.strip():
        raise DatasetError(path, "no items: the file is empty")
    return parse_json(path, text, where)


def no_items(path: str | Path, what: str = "") -> DatasetError:
    """The error for a data file that yields nothing to evaluate."""
    return DatasetError(path, "no items" + (f": {what}" if what else ""))


def check_unique(
    path: str | Path, seen: dict[str, Any], key: str, row: int | str, field: str | None, what: str = "id"
) -> None:
    """Record ``key`` as seen at ``row``; a second occurrence is an error naming both rows."""
    if key in seen:
        first = seen[key]
        raise DatasetError(path, f"duplicate {what} {key!r} (rows {first} and {row})", row=row, field=field)
    seen[key] = row


# --- task options ------------------------------------------------------------------------------------
#: an option's declared type: ``list`` is a list of strings (a comma-separated string on the command line)
OptionType = type[str] | type[int] | type[float] | type[bool] | type[list]
#: name -> (type, one-line help): :meth:`Task.option_schema`, derived from the task's ``Options`` model
OptionsSchema = dict[str, tuple[OptionType, str]]
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list"}


class TaskOptionError(ValueError):
    """A task option has a bad value (one line naming the task, the option and what it expects)."""


class UnknownTaskOption(TaskOptionError, KeyError):
    """A task was given an option it does not declare."""

    def __str__(self) -> str:  # a KeyError would show its message quoted
        return str(self.args[0])


def coerce_option(task: str, name: str, kind: OptionType, value: Any) -> Any:
    """``value`` as ``kind``: strings from the command line are converted; typed values are checked."""

    def bad() -> TaskOptionError:
        return TaskOptionError(
            f"task {task!r} option {name}={value!r}: expected {_TYPE_WORDS.get(kind, kind.__name__)}"
        )

    if kind is list:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
            return [str(v).strip() for v in value]
        raise bad()
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise bad()
    if kind is int:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise bad() from None
        raise bad()
    if kind is float:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise bad() from None
        raise bad()
    if kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float | Path) and not isinstance(
            value, bool
        ):  # `--opt x=2024` arrives as int
            return str(value)
        raise bad()
    raise TypeError(f"task {task!r} option {name}: unsupported option type {kind!r}")  # pragma: no cover


LIMIT_MODES = ("stratified", "first")


def option_kind(field: FieldInfo) -> OptionType:
    """The option type of a field of a :class:`TaskOptions` model (``X | None`` is ``X``)."""
    kind: Any = field.annotation
    if get_origin(kind) in (Union, type(int | None)):
        args = [a for a in get_args(kind) if a is not type(None)]
        kind = args[0] if len(args) == 1 else kind
    if get_origin(kind) is list:
        return list
    if kind in (str, int, float, bool):
        return kind
    raise TypeError(f"unsupported option type {field.annotation!r}: str, int, float, bool or list[str]")


class TaskOptions(BaseModel):
    """A task's ``--opt KEY=VALUE`` options, typed. Each task declares a subclass as ``Task.Options``;
    every field has a default and a one-line ``description``. Values are converted once, here, as
    :func:`coerce_option` does (a ``list[str]`` field takes ``"a,b"``); unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit_mode: str = Field(
        "stratified",
        description="how --limit picks items: stratified (default; across strata) or first (file order)",
    )
    limit_seed: int = Field(0, description="seed of the stratified --limit order (default 0)")

    @field_validator("*", mode="before")
    @classmethod
    def _coerce(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.field_name or ""
        return coerce_option(_option_task(info), name, option_kind(cls.model_fields[name]), value)

    @field_validator("limit_mode")
    @classmethod
    def _limit_mode(cls, value: str, info: ValidationInfo) -> str:
        if value not in LIMIT_MODES:
            raise TaskOptionError(
                f"task {_option_task(info)!r} option limit_mode={value!r}: choose from {', '.join(LIMIT_MODES)}"
            )
        return value


def _option_task(info: ValidationInfo) -> str:
    """The task named in error messages (passed as validation context by :meth:`Task.check_options`)."""
    return str((info.context or {}).get("task", "?"))


# --- what a task declares ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataSource:
    """Where a task's data come from, and where :meth:`Task.locate` looks for a local copy of them.

    ``release`` names the release for people (repository, licence), ``url`` is where to get it;
    ``env`` is the environment variable that may point at a local copy and ``folder`` the copy's
    folder name under a datasets root (``$CULTURELENS_DATA/<folder>``); ``files`` are where the data
    sit inside a copy, tried in order (relative paths or glob patterns such as ``**/vsm*.json``, with
    ``{fields}`` the task fills in), and ``missing`` is the error when none is there."""

    release: str
    url: str = ""
    env: str | None = None
    folder: str | None = None
    files: tuple[str, ...] = ()
    missing: str = "file not found"


def resolve_data_dir(source: DataSource | None, data_dir: str | Path | None) -> tuple[Path | None, str]:
    """The one rule for where a task's local data are, and what named them: ``data_dir``
    (``--data-dir``), else the source's environment variable, else ``$CULTURELENS_DATA/<folder>`` when
    that exists (one folder holding every release, as ../shared/datasets), else None (the task downloads
    its release or uses shipped data)."""
    if data_dir:
        return Path(data_dir).expanduser(), "--data-dir"
    env = os.environ.get(source.env) if source and source.env else None
    if env and source and source.env:
        return Path(env).expanduser(), source.env
    root = os.environ.get("CULTURELENS_DATA")
    if root and source and source.folder and (Path(root) / source.folder).exists():
        return Path(root) / source.folder, "CULTURELENS_DATA"
    return None, ""


_GLOB = re.compile(r"[*?\[]")


def asks_default_template(item: Item, variant: Variant) -> bool:
    """True when the variant asks for the default wording (directly or as sweep slot ``#0``)."""
    return render_mod.template_slot(item.kind, variant.template) == "default"


class Task(ABC):
    """A benchmark: how its rows become items, how they are asked and graded, and what it declares
    about itself (shown by ``culturelens tasks --details``): :attr:`headline`, :attr:`protocol`,
    :attr:`default_template`, :attr:`source`, its typed ``Options`` and, for survey tasks,
    :class:`SurveyTask`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: the paper's protocol in a few sentences (what is asked, how it is scored, our differences)
    protocol: ClassVar[str] = ""
    #: the metric the results lead with, its label and direction (each task declares its own)
    headline: ClassVar[Headline] = Headline("acc", "accuracy (share correct)")
    #: the scale of a metric that is not on [0, 1] (e.g. a judge rating 1-10): its interval is bounded by
    #: it (:func:`culturelens.stats.metric_interval`); metrics not named here are on [0, 1] or unbounded
    metric_bounds: ClassVar[dict[str, tuple[float, float]]] = {}
    #: the task's other per-unit metrics beside the generic scorer's: name -> one-line meaning
    metrics: ClassVar[dict[str, str]] = {}
    default_mode: ClassVar[Mode] = Mode.LETTER
    #: the wording a variant asking for ``default`` gets: the benchmark's own registered template
    default_template: ClassVar[str] = "default"
    #: where the data come from and where a local copy is looked for (None: shipped or built in)
    source: ClassVar[DataSource | None] = None
    #: the ``--opt KEY=VALUE`` options, a :class:`TaskOptions` model (subclass it to add options)
    Options: ClassVar[type[TaskOptions]] = TaskOptions
    #: what ``--limit`` balances, in priority order: ``country``, ``language``, ``topic``, ``group``,
    #: ``subset`` (every subset key, sorted) or ``subset.KEY``. Keys whose value differs between the
    #: items of one group (the template copies of a question) are left out automatically.
    limit_strata: ClassVar[tuple[str, ...]] = ("country", "language", "subset", "topic")
    #: ``--limit`` keeps the items of a group (one underlying question) together
    limit_groups: ClassVar[bool] = True
    #: the scored unit is a group, right only if all its rows are (CulturalBench-Hard; for baselines)
    unit_all_of_group: ClassVar[bool] = False

    def __init__(self, data_dir: str | Path | None = None, **options: Any):
        self.data_dir, self.data_from = resolve_data_dir(self.source, data_dir)
        self.options = self.check_options(options)

    @classmethod
    def option_schema(cls) -> OptionsSchema:
        """Every option the task accepts: name -> (type, one-line help), from its ``Options`` model."""
        return {n: (option_kind(f), f.description or "") for n, f in cls.Options.model_fields.items()}

    @classmethod
    def declaration(cls) -> dict[str, Any]:
        """Everything the task declares, JSON-able (``culturelens tasks --details``)."""
        options = []
        for name, f in cls.Options.model_fields.items():
            default = f.get_default(call_default_factory=True)
            options.append(
                {
                    "name": name,
                    "type": option_kind(f).__name__,
                    "default": default,
                    "help": f.description or "",
                }
            )
        survey = None
        if issubclass(cls, SurveyTask):
            survey = {
                "kind": cls.survey_kind,
                "per_country_items": cls.per_country_items,
                "alignment_metric": cls.alignment_metric,
            }
        return {
            "name": cls.name,
            "description": cls.description,
            "protocol": cls.protocol,
            "mode": cls.default_mode.value,
            "default_template": cls.default_template,
            "headline": {**cls.headline.as_dict(), "direction": cls.headline.direction},
            "metrics": dict(cls.metrics),
            "options": options,
            "source": asdict(cls.source) if cls.source else None,
            "survey": survey,
            "limit_strata": list(cls.limit_strata),
        }

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> TaskOptions:
        """``options`` as the task's typed ``Options`` (a value of None means unset: the default).
        An unknown name is :class:`UnknownTaskOption` (a ``KeyError``), a bad value
        :class:`TaskOptionError` (a ``ValueError``); both are one line."""
        schema = cls.option_schema()
        for key in options:
            if key not in schema:
                import difflib

                close = difflib.get_close_matches(key, list(schema), n=2)
                hint = f" (did you mean {' or '.join(close)}?)" if close else ""
                raise UnknownTaskOption(
                    f"task {cls.name!r} has no option {key!r}{hint}; options: {', '.join(sorted(schema))}"
                )
        given = {k: v for k, v in options.items() if v is not None}
        try:
            return cls.Options.model_validate(given, context={"task": cls.name})
        except ValidationError as exc:
            first = exc.errors()[0]
            cause = (first.get("ctx") or {}).get("error")
            if isinstance(cause, TaskOptionError):
                raise cause from None
            key = ".".join(str(k) for k in first["loc"])
            raise TaskOptionError(
                f"task {cls.name!r} option {key}={first.get('input')!r}: {first['msg']}"
            ) from None

    def data_path(self) -> Path | None:
        """The local data folder (or file) of :func:`resolve_data_dir`, which must exist; None when
        there is none (download the release, or use shipped data)."""
        if self.data_dir is not None and not self.data_dir.exists():
            raise DatasetError(
                self.data_dir, f"{self.name}: data folder given by {self.data_from} does not exist"
            )
        return self.data_dir

    def locate(
        self,
        files: Sequence[str] | None = None,
        kind: Literal["file", "dir"] = "file",
        file_ok: bool = True,
        missing: str | None = None,
        **fields: str,
    ) -> Path | None:
        """The task's data in its local copy, or None when there is no copy (then download or use
        shipped data). A copy that is itself a file is the data (with ``file_ok``); otherwise the
        first of ``files`` (default: :attr:`DataSource.files`, ``{fields}`` filled in) that is a
        ``kind`` inside it, else a :class:`DatasetError` naming where it was expected."""
        base = self.data_path()
        if base is None:
            return None
        if file_ok and base.is_file():
            return base
        src = self.source
        wanted = [f.format(**fields) for f in (files if files is not None else src.files if src else ())]
        for pattern in wanted:
            for path in sorted(base.glob(pattern)) if _GLOB.search(pattern) else [base / pattern]:
                if path.is_dir() if kind == "dir" else path.is_file():
                    return path
        where = base / wanted[0] if wanted and not _GLOB.search(wanted[0]) else base
        raise DatasetError(where, missing or (src.missing if src else "file not found"))

    @abstractmethod
    def load(self) -> Iterable[Item]:
        """Yield items; raise :class:`DatasetError` on a missing or malformed file."""

    def items(self, limit: int | None = None, countries: Sequence[str] | None = None) -> list[Item]:
        """Load and validate everything first, so a run never starts half-loaded."""
        wanted = None
        if countries:
            from culturelens.countries import normalize_country

            wanted = {normalize_country(c).name for c in countries}
        loaded = list(self.load())
        if not loaded:
            raise no_items(self.data_dir or "<no data>", f"task {self.name!r} found nothing to evaluate")
        seen: dict[str, Item] = {}
        for item in loaded:
            if item.id in seen:  # the loaders name the rows; this guards any that does not
                raise DatasetError(self.data_dir or "<no data>", f"duplicate item id {item.id!r}")
            seen[item.id] = item
        out = [
            it for it in loaded if wanted is None or (it.country is not None and it.country.name in wanted)
        ]
        return self.apply_limit(out, limit)

    def apply_limit(
        self, items: list[Item], limit: int | None, mode: str | None = None, unit: str = "items"
    ) -> list[Item]:
        """At most ``limit`` items (``unit="groups"``: at most ``limit`` groups), in dataset order.

        ``mode`` (default: the ``limit_mode`` option, else ``stratified``): ``stratified`` takes the
        first ones of a fixed, seeded order that balances the task's :attr:`limit_strata` (see
        :func:`stratified_order`), so a larger limit only adds items; ``first`` takes them in file
        order. With :attr:`limit_groups` the items of a group are kept or dropped together, and at
        least one group is kept."""
        if limit is None:
            return items
        return limit_items(
            items,
            limit,
            mode=mode or self.options.limit_mode,
            seed=self.options.limit_seed,
            strata=self.limit_strata,
            by_group=self.limit_groups,
            unit=unit,
        )

    def fewshot_pool(self) -> list[Item]:
        return []

    def render(self, item: Item, variant: Variant, mode: Mode, shots: list[Item] | None = None) -> Prompt:
        """The prompt; a variant asking for the ``default`` wording gets :attr:`default_template`, and
        the prompt keeps the run's variant so results group under it."""
        if self.default_template == "default" or not asks_default_template(item, variant):
            return render_mod.render(item, variant, mode, shots)
        shown = variant.model_copy(update={"template": self.default_template})
        return render_mod.render(item, shown, mode, shots).model_copy(update={"variant": variant})

    def score(self, item: Item, prompt: Prompt, response: Response) -> Score:
        return scoring.score(item, prompt, response)

    def unit_scores(self, items: dict[str, Item], scores: list[Score]) -> list[tuple[Item, Score]]:
        """Scores at the unit the paper counts (default: one per item). Override to group."""
        return [(items[s.item_id], s) for s in scores]

    def extra_metrics(self, items: dict[str, Item], scores: list[Score]) -> dict[str, Any]:
        """Task-level metrics that are not means of per-item values (macro-F1, orientation...)."""
        return {}

    def reference_data(self) -> dict[str, Any]:
        """Data the task's analyses need besides its items (shared survey references, a country
        table), JSON-able. Saved with the run (``references.json``) so a run analyses without its
        dataset; read back with :meth:`culturelens.runlog.RunLog.references`."""
        return {}

    def fingerprint(self) -> str | None:
        """What decides the results besides the requests (a spec task: the spec's and data's SHA-256),
        or None; a finished run is reused only when it is the same. Called after :meth:`items`."""
        return None

    def info(self) -> dict[str, Any]:
        """What the task declares, as recorded in a run's ``config.json``."""
        return {
            "name": self.name,
            "description": self.description,
            "mode": self.default_mode.value,
            "headline": self.headline.as_dict(),
            "protocol": self.protocol,
        }


class SurveyTask(Task):
    """A task whose answers are compared with human survey answers (:mod:`culturelens.alignment`
    analyses exactly the tasks that subclass this). Items carry their reference answers, or the task
    gives them per group (:meth:`group_references`)."""

    #: ``survey``: answer distributions vs each country's; ``vsm``: Hofstede's indices vs published scores
    survey_kind: ClassVar[Literal["survey", "vsm"]] = "survey"
    #: items are replicated per country, so a persona ``@item`` asks each copy as its country (vsm)
    per_country_items: ClassVar[bool] = False
    #: the alignment metric to report when the reference data allow it (None: the first available);
    #: a task may set it per instance once it knows its data
    alignment_metric: str | None = None

    def group_references(self) -> dict[str, dict[str, list[float]]]:
        """Group (question) id -> country -> answer distribution, for items that do not carry their own."""
        return {}

    def reference_data(self) -> dict[str, Any]:
        """The :attr:`alignment_metric` as the loaded data set it, for the analysis of the run."""
        return {"alignment_metric": self.alignment_metric} if self.alignment_metric else {}

    def hofstede_path(self) -> Path | None:
        """Hofstede's published country scores to compare a ``vsm`` task's indices with (None: none)."""
        return None


# --- representative --limit ------------------------------------------------------------------------
def limit_items(
    items: list[Item],
    limit: int | None,
    mode: str = "stratified",
    seed: int = 0,
    strata: Sequence[str] = Task.limit_strata,
    by_group: bool = True,
    unit: str = "items",
) -> list[Item]:
    """The items :meth:`Task.apply_limit` keeps (see there), for callers without a task."""
    if limit is None:
        return items
    if mode not in LIMIT_MODES:
        raise TaskOptionError(f"limit mode {mode!r}: choose from {', '.join(LIMIT_MODES)}")
    if unit not in ("items", "groups"):
        raise ValueError(f"limit unit {unit!r}: items or groups")

    def unit_of(it: Item) -> str:
        return (it.group or it.id) if by_group else it.id

    units: dict[str, list[Item]] = {}
    for it in items:
        units.setdefault(unit_of(it), []).append(it)
    if limit >= (len(items) if unit == "items" else len(units)):
        return items
    order: Iterable[str] = list(units) if mode == "first" else stratified_order(units, strata, seed=seed)
    keep: set[str] = set()
    used = 0
    for key in order:
        size = len(units[key]) if unit == "items" else 1
        if keep and used + size > limit:
            break  # a prefix of one fixed order: a larger limit only adds items
        keep.add(key)
        used += size
    return [it for it in items if unit_of(it) in keep]


def _stratum_value(item: Item, key: str) -> str:
    if key == "country":
        return item.country.name if item.country else ""
    if key == "language":
        return item.language
    if key == "topic":
        return item.topic or ""
    if key == "group":
        return item.group or item.id
    if key.startswith("subset."):
        return item.subset.get(key[len("subset.") :], "")
    raise ValueError(f"unknown --limit stratum {key!r}")


def _rank(seed: int, *parts: str) -> bytes:
    """A machine-independent pseudo-random sort key (Python's own hash() is salted per process)."""
    return hashlib.blake2b(
        "\x1f".join((str(seed), *parts)).encode("utf-8", "surrogatepass"), digest_size=8
    ).digest()


def stratified_order(units: dict[str, list[Item]], strata: Sequence[str], seed: int = 0) -> Iterator[str]:
    """Every unit key (a group or an item), lazily, in an order whose every prefix is balanced over
    ``strata``.

    Strata are used in priority order: the next unit always comes from a least-filled value of the
    first key (so its counts differ by at most one unit while no value is exhausted), then, among
    those, from a least-filled value of the second key, and so on; ties and the order within a
    stratum follow a seeded hash of the names, so the order is the same on every machine and a larger
    ``--limit`` only appends to a smaller one. A key whose value differs inside a unit (the template
    copies of one question), or that has a single value, is ignored."""
    keys: list[str] = []
    for key in strata:
        if key == "subset":
            names = [
                f"subset.{k}" for k in sorted({k for us in units.values() for it in us for k in it.subset})
            ]
        else:
            names = [key]
        keys += [k for k in names if k not in keys]
    usable: list[dict[str, str]] = []  # per usable key: unit -> its value
    for key in keys:
        per_unit: dict[str, str] = {}
        for u, its in units.items():
            vals = {_stratum_value(it, key) for it in its}
            if len(vals) > 1:
                break
            per_unit[u] = vals.pop()
        else:
            if len(set(per_unit.values())) > 1:
                usable.append(per_unit)
    levels = max(len(usable), 1)
    # the strata as a tree: a node maps a value to a child; a leaf lists its units in seeded order
    tree: dict[str, Any] = {}
    for u in units:
        path = [vals[u] for vals in usable] or [""]
        node = tree
        for v in path[:-1]:
            node = node.setdefault(v, {})
        node.setdefault(path[-1], []).append(u)
    remaining: dict[int, int] = {}

    def prepare(node: Any) -> int:
        if isinstance(node, list):
            node.sort(key=lambda u: _rank(seed, "unit", u))
            n = len(node)
        else:
            n = sum(prepare(c) for c in node.values())
        remaining[id(node)] = n
        return n

    prepare(tree)
    counts: list[dict[str, int]] = [{} for _ in range(levels)]
    ranks: list[dict[str, bytes]] = [{} for _ in range(levels)]
    cursor: dict[int, int] = {}
    for _ in range(len(units)):
        cur: Any = tree
        trail: list[Any] = [tree]
        for level in range(levels):
            best = None
            for v, child in cur.items():
                if remaining[id(child)] <= 0:
                    continue
                r = ranks[level].get(v)
                if r is None:
                    r = ranks[level][v] = _rank(seed, str(level), v)
                k = (counts[level].get(v, 0), r)
                if best is None or k < best[0]:
                    best = (k, v, child)
            assert best is not None
            _, v, cur = best
            counts[level][v] = counts[level].get(v, 0) + 1
            trail.append(cur)
        pos = cursor.get(id(cur), 0)
        cursor[id(cur)] = pos + 1
        for n in trail:
            remaining[id(n)] -= 1
        yield cur[pos]
