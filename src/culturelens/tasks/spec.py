"""Tasks declared in a file instead of Python: a YAML or TOML *spec* over a CSV, TSV, JSON Lines, JSON
or parquet file (local, or one file of a Hugging Face dataset repo) of multiple-choice, label or
short-answer items that carry a country.

A spec names the data file (relative to the spec), which column holds what (id, question, options as
one list column or several columns, the answer as an index, 1-based index, letter or option text,
country, and optionally language, topic, context, group, subsets), the item kind, the prompt (a
built-in wording or a template with ``{question}``, ``{options}``, ``{labels}``...), the scorer (one
of the built-in ones) and the headline metric. :func:`load_spec` turns it into a real
:class:`~culturelens.tasks.base.Task` subclass, so the runner, variants, breakdowns, intervals,
robustness and the report treat it like any other task. A task argument ending in ``.yaml``,
``.yml`` or ``.toml`` is a spec (:func:`culturelens.tasks.registry.resolve_task`).

A run records the spec (its text, the validated spec, its SHA-256 and the data file's) in
``config.json`` through :meth:`SpecTask.info`; :func:`task_from_record` rebuilds the task from that
record, so a run is analysed after the spec file is gone. A finished run is reused only with the same
spec and data (:meth:`SpecTask.fingerprint`).

Errors in the spec are one line naming the file and the key (:class:`SpecError`); errors in the data
name the data file, row and field (:class:`~culturelens.errors.DatasetError`), rows numbered as the
other loaders do (a CSV's header is row 1, a JSON Lines file's lines from 1, a JSON array's records
from 0, a parquet file's records from 1).
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import re
import string
import tomllib
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from culturelens import scoring
from culturelens.countries import UnknownCountryError, normalize_country
from culturelens.lemmatize import lemma_match
from culturelens.render import LETTERS, Rendered, View, template, templates_for
from culturelens.schema import GoldAnswer, Item, ItemKind, Mode, Prompt, Response, Score
from culturelens.tasks.base import (
    CSV_FIRST_ROW,
    DatasetError,
    DataSource,
    Headline,
    Task,
    check_unique,
    parse_json,
    read_csv_rows,
    read_json,
    read_text,
)
from culturelens.tasks.registry import SPEC_SUFFIXES

DATA_FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
_SUFFIX_FORMAT = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

#: scorers per item kind; the first is the default
CHOICE_SCORERS = ("letter", "cloze", "generate")
TEXT_SCORERS = ("contains", "exact", "soft_match")
SCORER_HELP = {
    "letter": "one forward pass, the distribution over the option labels; the most probable label is the answer",
    "cloze": "log-likelihood of each option text (acc on the raw sum, acc_norm per byte)",
    "generate": "greedy generation; the label or option text read from the reply (unparseable: invalid, wrong)",
    "contains": "greedy generation; right when a gold answer occurs in the reply (case-insensitive)",
    "exact": "greedy generation; right when the reply's first line equals a gold answer (normalised)",
    "soft_match": "greedy generation; BLEnD's lemma match: a gold answer occurs in the reply, or all its "
    "lemmas are among the reply's",
}
#: the headline metrics each scorer produces, with their labels
METRICS: dict[str, dict[str, str]] = {
    "letter": {"acc": "accuracy (share correct)", "p_correct": "probability of the correct option"},
    "cloze": {
        "acc": "accuracy (share correct)",
        "acc_norm": "accuracy, option log-likelihood per byte",
        "p_correct": "probability of the correct option",
    },
    "generate": {"acc": "accuracy (share correct; unparseable replies count as wrong)"},
    "contains": {"acc": "accuracy (a gold answer occurs in the reply)"},
    "exact": {"acc": "exact match (share correct)"},
    "soft_match": {"acc": "accuracy (BLEnD-style lemma match)"},
}
_MODE = {"letter": Mode.LETTER, "cloze": Mode.CLOZE, "generate": Mode.GENERATE}
#: placeholders every template may use (plus the columns under ``columns.metadata``)
PLACEHOLDERS = ("question", "options", "labels", "context", "country", "language", "topic")
#: item metadata the spec task sets itself (the data row; the generation budget)
_RESERVED = ("row", "max_tokens")


class SpecError(ValueError):
    """A spec file is missing or wrong: one line naming the file and the key."""

    def __init__(self, file: str | Path, key: str | None, message: str):
        self.file, self.key = str(file), key
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")


# --- the spec, as pydantic models (unknown keys rejected) ------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Strict):
    """Where the rows are: ``path`` (relative to the spec file) or ``hf`` + ``file`` (one file of a
    Hugging Face dataset repo, downloaded once into the culturelens cache)."""

    path: str | None = None
    hf: str | None = None
    file: str | None = None
    revision: str | None = None
    format: Literal["csv", "tsv", "jsonl", "json", "parquet"] | None = None


class ColumnsSpec(_Strict):
    """Which column holds what. ``options`` is one column holding a list, or a list of columns."""

    id: str | None = None
    question: str
    options: str | list[str] | None = None
    answer: str
    country: str
    language: str | None = None
    topic: str | None = None
    context: str | None = None
    group: str | None = None
    subsets: dict[str, str] = Field(default_factory=dict)
    metadata: list[str] = Field(default_factory=list)


class PromptSpec(_Strict):
    """The prompt: a built-in wording (``builtin``) or a template of the user turn."""

    builtin: str | None = None
    template: str | None = None
    cloze: str | None = None
    generate: str | None = None
    answer_prefix: str | None = None
    system: str | None = None
    max_tokens: int = Field(default=32, ge=1, le=4096)


class TaskSpec(_Strict):
    """A declarative task (see the module docstring and the README's "Custom tasks without Python")."""

    name: str | None = None
    description: str = ""
    license: str = Field(default="", validation_alias=AliasChoices("license", "licence"))
    citation: str = ""
    data: DataSpec
    kind: Literal["multiple_choice", "label", "short_answer"]
    columns: ColumnsSpec
    labels: list[str] | None = None
    answer_format: Literal["index", "index1", "letter", "text"] | None = None
    answer_separator: str | None = None
    options_separator: str | None = None
    language: str = "en"
    prompt: PromptSpec = PromptSpec()
    scorer: str | None = None
    metric: str = "acc"

    @field_validator("data", mode="before")
    @classmethod
    def _data_path(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt_name(cls, value: Any) -> Any:
        return {"builtin": value} if isinstance(value, str) else value

    @property
    def item_kind(self) -> ItemKind:
        return ItemKind(self.kind)

    @property
    def scorer_name(self) -> str:
        return self.scorer or (TEXT_SCORERS if self.kind == "short_answer" else CHOICE_SCORERS)[0]


# --- reading and checking a spec ----------------------------------------------------------------------
def _yaml_loader() -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        """A safe loader that rejects a key given twice in one mapping."""

    def mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in out:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice", key_node.start_mark
                )
            out[key] = loader.construct_object(value_node, deep=deep)
        return out

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def parse_spec_text(text: str, file: str | Path, fmt: Literal["yaml", "toml"]) -> dict[str, Any]:
    """The spec file's content as a mapping (a syntax error is a :class:`SpecError` with its line)."""
    if fmt == "toml":
        try:
            raw: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(file, None, f"invalid TOML: {exc}") from None
    else:
        try:
            import yaml
        except ImportError:  # pragma: no cover - a core dependency
            raise SpecError(file, None, "reading YAML needs PyYAML (pip install pyyaml)") from None
        try:
            raw = yaml.load(text, Loader=_yaml_loader())  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SpecError(file, None, f"invalid YAML: {where}{what}") from None
    if raw is None:
        raise SpecError(file, None, "the spec is empty")
    if not isinstance(raw, dict):
        raise SpecError(file, None, f"expected a mapping of keys, got {type(raw).__name__}")
    return raw


def _annotation_model(annotation: Any) -> Any:
    """The pydantic model inside a field's annotation (``X | None``, ``list[X]``), or the annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _annotation_model(arg)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return annotation


def _keys_of(model: type[BaseModel]) -> list[str]:
    out: list[Any] = []
    for name, f in model.model_fields.items():
        alias = f.validation_alias
        out += list(alias.choices) if isinstance(alias, AliasChoices) else [name]
    return [k for k in out if isinstance(k, str)]


def _field_of(model: type[BaseModel], key: str) -> Any:
    for name, f in model.model_fields.items():
        alias = f.validation_alias
        if key == name or (isinstance(alias, AliasChoices) and key in alias.choices):
            return f
    return None


def _spec_error(file: str | Path, exc: ValidationError) -> SpecError:
    """The first pydantic error as one line: the key path, what is wrong, what was given."""
    err = exc.errors()[0]
    parts: list[str] = []
    current: Any = TaskSpec
    loc = list(err["loc"])
    for i, part in enumerate(loc):
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            f = _field_of(current, part)
            if f is not None:
                parts.append(part)
                current = _annotation_model(f.annotation)
            elif err["type"] == "extra_forbidden" and i == len(loc) - 1:
                parts.append(part)
                close = difflib.get_close_matches(part, _keys_of(current), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]}?)" if close else ""
                return SpecError(
                    file,
                    ".".join(parts),
                    f"unknown key{hint}; keys here: {', '.join(_keys_of(current))}",
                )
            # else: a union member's tag (str, list[str]...): not a key
        elif getattr(current, "__origin__", None) is dict:
            parts.append(part)  # a key of a mapping such as columns.subsets
            current = None
    key = ".".join(parts) or None
    if err["type"] == "missing":
        return SpecError(file, key, "required key missing")
    given = err.get("input")
    shown = repr(given)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    hint = " (YAML reads yes/no/on/off as true/false: quote the value)" if isinstance(given, bool) else ""
    msg = err["msg"].replace("Input should be", "expected")
    return SpecError(file, key, f"{msg}, got {shown}{hint}")


def _check(spec: TaskSpec, file: str | Path) -> None:
    """What pydantic's types cannot say: which keys go together, names, scorers, templates."""
    kind = spec.item_kind
    cols = spec.columns
    if spec.name is not None and not _NAME.match(spec.name):
        raise SpecError(
            file,
            "name",
            f"{spec.name!r}: use letters, digits, '_' and '-' (it names the task and its results)",
        )
    d = spec.data
    if (d.path is None) == (d.hf is None):
        raise SpecError(
            file, "data", "give either data.path (a file next to the spec) or data.hf + data.file"
        )
    if d.hf is not None and not d.file:
        raise SpecError(file, "data.file", "required with data.hf: the file inside the dataset repo")
    if d.path is not None and (d.file or d.revision):
        raise SpecError(file, "data.file" if d.file else "data.revision", "only with data.hf")
    data_name = d.path or d.file or ""
    if d.format is None and Path(data_name).suffix.lower() not in _SUFFIX_FORMAT:
        raise SpecError(
            file,
            "data.path" if d.path else "data.file",
            f"cannot tell the format of {data_name!r} from its suffix; set data.format ({', '.join(DATA_FORMATS)})",
        )
    if kind is ItemKind.SHORT_ANSWER:
        for key, value in (
            ("columns.options", cols.options),
            ("labels", spec.labels),
            ("answer_format", spec.answer_format),
            ("options_separator", spec.options_separator),
        ):
            if value is not None:
                raise SpecError(
                    file, key, "not used by short_answer items (the answer column holds the texts)"
                )
    else:
        if kind is ItemKind.LABEL and (cols.options is None) == (spec.labels is None):
            raise SpecError(
                file,
                "labels",
                "label items need either labels (one label set for every row) or columns.options",
            )
        if kind is ItemKind.MULTIPLE_CHOICE and spec.labels is not None:
            raise SpecError(
                file, "labels", "only for label items; multiple-choice items take columns.options"
            )
        if kind is ItemKind.MULTIPLE_CHOICE and cols.options is None:
            raise SpecError(
                file,
                "columns.options",
                "required for multiple_choice items: a list column or a list of columns",
            )
        if isinstance(cols.options, list) and len(cols.options) < 2:
            raise SpecError(file, "columns.options", "name at least two option columns (or one list column)")
        if isinstance(cols.options, list) and len(set(cols.options)) != len(cols.options):
            raise SpecError(file, "columns.options", "a column is named twice")
        if spec.labels is not None and (len(spec.labels) < 2 or len(set(spec.labels)) != len(spec.labels)):
            raise SpecError(file, "labels", "give at least two different labels")
        if spec.labels is not None and not all(lab.strip() for lab in spec.labels):
            raise SpecError(file, "labels", "a label is empty")
        if spec.answer_format is None:
            raise SpecError(
                file,
                "answer_format",
                "required for choice items: index (0-based), index1 (1-based), letter (A, B, ...) or text",
            )
        if spec.options_separator is not None and not isinstance(cols.options, str):
            raise SpecError(file, "options_separator", "only with one list column (columns.options: NAME)")
    allowed = TEXT_SCORERS if kind is ItemKind.SHORT_ANSWER else CHOICE_SCORERS
    if spec.scorer_name not in allowed:
        raise SpecError(file, "scorer", f"{spec.scorer!r}: for {spec.kind} items use {', '.join(allowed)}")
    metrics = METRICS[spec.scorer_name]
    if spec.metric not in metrics:
        raise SpecError(
            file, "metric", f"{spec.metric!r}: the {spec.scorer_name} scorer gives {', '.join(metrics)}"
        )
    for key in ("answer_separator", "options_separator"):
        if getattr(spec, key) == "":
            raise SpecError(file, key, "empty separator")
    clash = [c for c in cols.metadata if c in (*PLACEHOLDERS, *_RESERVED) or not c.isidentifier()]
    if clash:
        raise SpecError(
            file,
            "columns.metadata",
            f"{clash[0]!r} cannot be a template placeholder: metadata columns need identifier names "
            f"other than {', '.join((*PLACEHOLDERS, *_RESERVED))}",
        )
    for sub in cols.subsets:
        if not sub.strip():
            raise SpecError(file, "columns.subsets", "a subset name is empty")
    _check_prompt(spec, file)


def _check_prompt(spec: TaskSpec, file: str | Path) -> None:
    p = spec.prompt
    kind = spec.item_kind
    if p.builtin is not None:
        others = [k for k in ("template", "cloze", "generate", "answer_prefix", "system") if getattr(p, k)]
        if others:
            raise SpecError(
                file, f"prompt.{others[0]}", "not with prompt.builtin (a built-in wording is whole)"
            )
        known = templates_for(kind, generic_only=True)
        if p.builtin not in known:
            raise SpecError(
                file, "prompt.builtin", f"{p.builtin!r}: built-in {spec.kind} wordings are {', '.join(known)}"
            )
        return
    if p.template is None:
        if any(getattr(p, k) is not None for k in ("cloze", "generate", "answer_prefix", "system")):
            raise SpecError(file, "prompt.template", "required with the other prompt keys")
        return
    fields = set(PLACEHOLDERS) | set(spec.columns.metadata)
    for key in ("template", "cloze", "generate", "system"):
        text = getattr(p, key)
        if text is None:
            continue
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise SpecError(file, f"prompt.{key}", f"{exc} (write a literal brace as {{{{ or }}}})") from None
        for _, field, _, _ in parsed:
            if field is None:
                continue
            if field not in fields:
                close = difflib.get_close_matches(field, sorted(fields), n=1)
                hint = f" (did you mean {{{close[0]}}}?)" if close else ""
                raise SpecError(
                    file,
                    f"prompt.{key}",
                    f"unknown placeholder {{{field}}}{hint}; placeholders: "
                    + ", ".join(f"{{{f}}}" for f in sorted(fields)),
                )
            if kind is ItemKind.SHORT_ANSWER and field in ("options", "labels"):
                raise SpecError(file, f"prompt.{key}", f"{{{field}}}: short_answer items have no options")
    if spec.columns.context and "{context}" not in p.template:
        raise SpecError(file, "prompt.template", "columns.context is set but the template has no {context}")
    for key in ("template", "cloze", "generate"):
        text = getattr(p, key)
        if text is not None and "{question}" not in text:
            raise SpecError(file, f"prompt.{key}", "has no {question}")
    dropped = _drop_lines(p.template, ("options", "labels"))
    if kind is not ItemKind.SHORT_ANSWER and p.cloze is None and "{question}" not in dropped:
        raise SpecError(
            file,
            "prompt.cloze",
            "required here: cloze mode leaves out the template's lines with {options} or {labels}, "
            "and {question} is on one of them",
        )


def _default_name(file: Path | str) -> str:
    stem = Path(str(file)).stem
    return re.sub(r"[^A-Za-z0-9_-]", "_", stem).lstrip("_-") or "spec"


def validate_spec(raw: dict[str, Any], file: str | Path) -> TaskSpec:
    """The spec as a checked :class:`TaskSpec`, its name filled in (default: the file's stem)."""
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as exc:
        raise _spec_error(file, exc) from None
    _check(spec, file)
    return spec if spec.name else spec.model_copy(update={"name": _default_name(file)})


# --- reading the data ------------------------------------------------------------------------------------
Row = tuple[int, dict[str, Any]]


def _read_rows(path: Path, fmt: str) -> tuple[list[Row], list[str]]:
    """(row number, record) for every row, and the columns the file has."""
    if fmt in ("csv", "tsv"):
        rows = read_csv_rows(path, (), first_row=CSV_FIRST_ROW, delimiter="\t" if fmt == "tsv" else ",")
        header = list(rows[0][1]) if rows else []
        return list(rows), header
    if fmt == "jsonl":
        text = read_text(path)
        out: list[Row] = []
        for lineno, line in enumerate(text.split("\n"), start=1):  # not splitlines(): U+2028 in strings
            if not line.strip():
                continue
            rec = parse_json(path, line, row=lineno)
            if not isinstance(rec, dict):
                raise DatasetError(path, f"expected a JSON object, got {_kind(rec)}", row=lineno)
            out.append((lineno, rec))
        if not out:
            raise DatasetError(path, "no items: the file has no rows")
        return out, _union_keys(out)
    if fmt == "json":
        data = read_json(path)
        if isinstance(data, dict):  # {"data": [...]}, as some releases wrap their records
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise DatasetError(path, "expected a JSON array of objects (or an object holding one array)")
            data = lists[0]
        if not isinstance(data, list):
            raise DatasetError(path, f"expected a JSON array of objects, got {_kind(data)}")
        out = []
        for i, rec in enumerate(data):
            if not isinstance(rec, dict):
                raise DatasetError(path, f"expected a JSON object, got {_kind(rec)}", row=i)
            out.append((i, rec))
        if not out:
            raise DatasetError(path, "no items: the array is empty")
        return out, _union_keys(out)
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise DatasetError(
            path, "reading parquet needs pyarrow (pip install pyarrow), or export a CSV"
        ) from exc
    if not path.is_file():
        raise DatasetError(path, "file not found")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise DatasetError(path, f"unreadable parquet ({type(exc).__name__}: {str(exc)[:120]})") from exc
    records = table.to_pylist()
    if not records:
        raise DatasetError(path, "no items: the file has no rows")
    return list(enumerate(records, start=1)), list(table.column_names)


def _union_keys(rows: list[Row]) -> list[str]:
    seen: dict[str, None] = {}
    for _, rec in rows:
        seen.update(dict.fromkeys(rec))
    return list(seen)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _as_text(path: Path, row: int, field: str, value: Any) -> str:
    """A cell as text: strings as written, numbers as their digits (12.0 as 12)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DatasetError(path, f"expected text, got {_kind(value)}", row=row, field=field)
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _literal_list(text: str) -> list[Any] | None:
    """A list written as text (JSON, or a Python literal as pandas exports it), else None."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return list(parsed) if isinstance(parsed, list | tuple) else None


def _cell_list(path: Path, row: int, field: str, value: Any, sep: str | None) -> list[Any]:
    """A list cell: a list (JSON, parquet), or text holding a JSON / Python list, or text split on ``sep``."""
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        if sep is not None:
            return [p.strip() for p in value.split(sep)]
        parsed = _literal_list(value)
        if parsed is not None:
            return parsed
        raise DatasetError(
            path,
            'expected a list (a JSON list such as ["a", "b"], or set options_separator in the spec)',
            row=row,
            field=field,
        )
    raise DatasetError(path, f"expected a list, got {_kind(value)}", row=row, field=field)


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


# --- the task ----------------------------------------------------------------------------------------
class SpecTask(Task):
    """A task declared in a spec file; :func:`build_task_class` makes one subclass per spec."""

    spec: ClassVar[TaskSpec]
    #: the spec file as the user named it (errors), and where it was read from
    spec_file: ClassVar[str]
    spec_path: ClassVar[Path]
    spec_format: ClassVar[Literal["yaml", "toml"]]
    spec_text: ClassVar[str]
    spec_sha256: ClassVar[str]

    def __init__(self, data_dir: str | Path | None = None, **options: Any):
        super().__init__(None, **options)  # the spec names its data: --data-dir is for release tasks
        self.data_dir = self.local_data_file()
        self.data_from = f"data in {self.spec_file}"
        self._data_sha256: str | None = None
        self._data_used: Path | None = None

    @classmethod
    def local_data_file(cls) -> Path | None:
        """The data file next to the spec (None: the spec names a Hugging Face file)."""
        p = cls.spec.data.path
        return (cls.spec_path.parent / Path(p).expanduser()).resolve() if p is not None else None

    @classmethod
    def declaration(cls) -> dict[str, Any]:
        return {**super().declaration(), "spec": {"file": str(cls.spec_path), "sha256": cls.spec_sha256}}

    def data_file(self) -> Path:
        """The data file, downloaded once when the spec names a Hugging Face dataset file."""
        d = self.spec.data
        local = self.local_data_file()
        if local is not None:
            if not local.is_file():
                raise SpecError(self.spec_file, "data.path", f"file not found: {local}")
            return local
        from culturelens.download import fetch_hf_file

        assert d.hf is not None and d.file is not None
        return fetch_hf_file(d.hf, d.file, d.revision)

    def _format(self, path: Path) -> str:
        return self.spec.data.format or _SUFFIX_FORMAT.get(path.suffix.lower(), "csv")

    def load(self) -> Iterator[Item]:
        path = self.data_file()
        rows, header = _read_rows(path, self._format(path))
        self._data_used = path
        self._data_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        self._check_columns(path, header)
        items: list[Item] = []
        seen: dict[str, int] = {}
        for rowno, rec in rows:
            item = self._item(path, rowno, rec)
            check_unique(path, seen, item.id, rowno, self.spec.columns.id or "id", what="id")
            items.append(item)
        yield from items

    def _check_columns(self, path: Path, header: Sequence[str]) -> None:
        cols = self.spec.columns
        named: list[tuple[str, str | None]] = [
            (key, getattr(cols, key))
            for key in ("id", "question", "answer", "country", "language", "topic", "context", "group")
        ]
        if isinstance(cols.options, str):
            named.append(("options", cols.options))
        elif cols.options:
            named += [(f"options[{i}]", c) for i, c in enumerate(cols.options)]
        named += [(f"subsets.{k}", c) for k, c in cols.subsets.items()]
        named += [(f"metadata[{i}]", c) for i, c in enumerate(cols.metadata)]
        for key, col in named:
            if col is not None and col not in header:
                have = ", ".join(str(h) for h in header)
                have = have if len(have) <= 200 else have[:197] + "..."
                raise SpecError(
                    self.spec_file, f"columns.{key}", f"column {col!r} not in {path.name} (columns: {have})"
                )

    def _text(
        self, path: Path, rowno: int, rec: dict[str, Any], col: str, required: bool = True
    ) -> str | None:
        if col not in rec:
            raise DatasetError(path, "missing field", row=rowno, field=col)
        value = rec[col]
        if _is_blank(value):
            if required:
                raise DatasetError(path, "empty value", row=rowno, field=col)
            return None
        return _as_text(path, rowno, col, value).strip()

    def _options(self, path: Path, rowno: int, rec: dict[str, Any]) -> list[str]:
        spec, cols = self.spec, self.spec.columns
        if spec.labels is not None:
            return list(spec.labels)
        if isinstance(cols.options, str):
            col = cols.options
            if col not in rec:
                raise DatasetError(path, "missing field", row=rowno, field=col)
            values = _cell_list(path, rowno, col, rec[col], spec.options_separator)
            texts = []
            for v in values:
                if _is_blank(v):
                    raise DatasetError(path, "an option is empty", row=rowno, field=col)
                texts.append(_as_text(path, rowno, col, v).strip())
            where = col
        else:
            assert cols.options is not None
            cells = [(c, rec.get(c)) for c in cols.options]
            while cells and _is_blank(cells[-1][1]):  # fewer options in this row: trailing columns empty
                cells.pop()
            texts = []
            for c, v in cells:
                if _is_blank(v):
                    raise DatasetError(
                        path,
                        "empty option before a non-empty one (only trailing options may be empty)",
                        row=rowno,
                        field=c,
                    )
                texts.append(_as_text(path, rowno, c, v).strip())
            where = cols.options[0]
        if len(texts) < 2:
            raise DatasetError(path, f"needs at least two options, has {len(texts)}", row=rowno, field=where)
        if spec.answer_format == "letter" and len(texts) > len(LETTERS):
            raise DatasetError(path, f"{len(texts)} options: letters go up to Z", row=rowno, field=where)
        return texts

    def _answers(self, path: Path, rowno: int, rec: dict[str, Any], options: list[str]) -> list[int]:
        spec = self.spec
        col = spec.columns.answer
        if col not in rec:
            raise DatasetError(path, "missing field", row=rowno, field=col)
        value = rec[col]
        if _is_blank(value):
            raise DatasetError(path, "empty value", row=rowno, field=col)
        values = _answer_values(path, rowno, col, value, spec.answer_separator)
        out: list[int] = []
        for v in values:
            idx = _answer_index(v, spec.answer_format or "text", options)
            if idx is None:
                shown = options if len(", ".join(options)) <= 160 else [*options[:4], "..."]
                raise DatasetError(
                    path,
                    f"answer {v!r} is not {_FORMAT_WORDS[spec.answer_format or 'text']} of the "
                    f"{len(options)} options ({', '.join(shown)})",
                    row=rowno,
                    field=col,
                )
            if idx not in out:
                out.append(idx)
        return out

    def _item(self, path: Path, rowno: int, rec: dict[str, Any]) -> Item:
        spec, cols = self.spec, self.spec.columns
        assert spec.name is not None
        item_id = self._text(path, rowno, rec, cols.id) if cols.id else f"row-{rowno}"
        question = self._text(path, rowno, rec, cols.question)
        country_raw = self._text(path, rowno, rec, cols.country)
        assert item_id is not None and question is not None and country_raw is not None
        try:
            country = normalize_country(country_raw)
        except UnknownCountryError as exc:
            raise DatasetError(path, str(exc), row=rowno, field=cols.country) from exc
        language = spec.language
        if cols.language:
            language = self._text(path, rowno, rec, cols.language, required=False) or spec.language
        topic = self._text(path, rowno, rec, cols.topic, required=False) if cols.topic else None
        context = self._text(path, rowno, rec, cols.context, required=False) if cols.context else None
        group = self._text(path, rowno, rec, cols.group, required=False) if cols.group else None
        subset = {}
        for key, col in cols.subsets.items():
            value = self._text(path, rowno, rec, col, required=False)
            if value is not None:
                subset[key] = value
        metadata: dict[str, Any] = {"row": rowno}
        for col in cols.metadata:
            metadata[col] = self._text(path, rowno, rec, col, required=False) or ""
        if spec.prompt.max_tokens != 32:
            metadata["max_tokens"] = spec.prompt.max_tokens
        options: list[str] = []
        correct: list[int] = []
        answers: list[GoldAnswer] = []
        if spec.item_kind is ItemKind.SHORT_ANSWER:
            col = cols.answer
            if col not in rec:
                raise DatasetError(path, "missing field", row=rowno, field=col)
            if _is_blank(rec[col]):
                raise DatasetError(path, "empty value", row=rowno, field=col)
            texts = _answer_values(path, rowno, col, rec[col], spec.answer_separator)
            golds = [_as_text(path, rowno, col, t).strip() for t in texts if not _is_blank(t)]
            if not golds:
                raise DatasetError(path, "no answer text", row=rowno, field=col)
            answers = [GoldAnswer(texts=[g]) for g in dict.fromkeys(golds)]
        else:
            options = self._options(path, rowno, rec)
            correct = self._answers(path, rowno, rec, options)
        return Item(
            id=item_id,
            task=spec.name,
            kind=spec.item_kind,
            question=question,
            context=context,
            options=options,
            correct=correct,
            answers=answers,
            country=country,
            language=language,
            topic=topic,
            group=group,
            subset=subset,
            metadata=metadata,
        )

    def score(self, item: Item, prompt: Prompt, response: Response) -> Score:
        scorer = self.spec.scorer_name
        if item.kind is not ItemKind.SHORT_ANSWER or scorer == "contains":
            return scoring.score(item, prompt, response)
        reply = response.text or ""
        golds = [g for a in item.answers for g in (*a.texts, *a.en_texts)]
        if scorer == "exact":
            first = next((line for line in reply.splitlines() if line.strip()), "")
            got = _strip_answer(first)
            hit = bool(got) and any(got == _strip_answer(g) for g in golds)
            cleaned = first.strip()
        else:  # soft_match: BLEnD's lemma_check on the lower-cased reply
            cleaned = unicodedata.normalize("NFKC", reply).strip().strip(".").lower()
            hit = bool(cleaned) and any(
                lemma_match(unicodedata.normalize("NFKC", g).strip().lower(), cleaned, item.language)
                for g in golds
            )
        return Score(
            item_id=item.id,
            task=item.task,
            variant=prompt.variant.id,
            mode=prompt.mode,
            metrics={"acc": float(hit)},
            prediction=cleaned,
            valid=bool(cleaned),
        )

    def fingerprint(self) -> str:
        """The spec's and the data file's SHA-256: a finished run is reused only while both are the same."""
        if self._data_sha256 is None:
            with_data = self.local_data_file()
            if with_data is not None and with_data.is_file():
                self._data_sha256 = hashlib.sha256(with_data.read_bytes()).hexdigest()
        return f"spec:{self.spec_sha256} data:{self._data_sha256 or '-'}"

    def record(self) -> dict[str, Any]:
        """What ``config.json`` keeps of the spec: enough to rebuild the task (:func:`task_from_record`)."""
        d = self.spec.data
        data = str(self._data_used or self.local_data_file() or f"hf://datasets/{d.hf}/{d.file}")
        return {
            "file": str(self.spec_path),
            "format": self.spec_format,
            "sha256": self.spec_sha256,
            "text": self.spec_text,
            "spec": self.spec.model_dump(mode="json"),
            "data": {"file": data, "sha256": self._data_sha256},
        }

    def info(self) -> dict[str, Any]:
        return {**super().info(), "spec": self.record()}


_FORMAT_WORDS = {
    "index": "a 0-based index",
    "index1": "a 1-based index",
    "letter": "a letter",
    "text": "the text",
}


def _answer_values(path: Path, rowno: int, col: str, value: Any, sep: str | None) -> list[Any]:
    if isinstance(value, list | tuple):
        if not value:
            raise DatasetError(path, "empty list", row=rowno, field=col)
        return list(value)
    if isinstance(value, str) and sep is not None:
        return [p.strip() for p in value.split(sep) if p.strip()]
    listed = _literal_list(value) if isinstance(value, str) else None
    if listed is not None:  # several answers written as a list in a text cell
        if not listed:
            raise DatasetError(path, "empty list", row=rowno, field=col)
        return listed
    return [value]


def _answer_index(value: Any, fmt: str, options: list[str]) -> int | None:
    """The option an answer cell names, or None when it names none."""
    n = len(options)
    if fmt in ("index", "index1"):
        if isinstance(value, bool):
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str):
            text = value.strip()
            text = text[:-2] if text.endswith(".0") else text  # pandas writes ints as 2.0 after a NaN
            if not re.fullmatch(r"[+-]?\d+", text):
                return None
            value = int(text)
        if not isinstance(value, int):
            return None
        idx = value - (1 if fmt == "index1" else 0)
        return idx if 0 <= idx < n else None
    if not isinstance(value, str):
        if fmt == "text" and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        else:
            return None
    if fmt == "letter":
        m = re.fullmatch(r"\W*([A-Za-z])\W*", value.strip())
        if not m:
            return None
        idx = LETTERS.index(m.group(1).upper())
        return idx if idx < n else None
    exact = [i for i, o in enumerate(options) if o == value.strip()]
    if exact:
        return exact[0]
    loose = [i for i, o in enumerate(options) if _norm(o) == _norm(value)]
    return loose[0] if len(loose) == 1 else None


def _strip_answer(text: str) -> str:
    """A reply or gold text for exact match: NFKC, case-folded, spaces collapsed, and surrounding
    quotes and end punctuation removed."""
    t = _norm(text)
    return t.strip(" \"'`“”‘’«».,;:!?。、").strip()


# --- templates from the spec ---------------------------------------------------------------------------
def _drop_lines(text: str, fields: Sequence[str]) -> str:
    """``text`` without its lines that hold one of the placeholders ``fields`` (blank runs squeezed)."""
    keep = [line for line in text.split("\n") if not any(f"{{{f}}}" in line for f in fields)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(keep)).strip("\n")


def _make_template(spec: TaskSpec) -> Any:
    p = spec.prompt
    assert p.template is not None
    main = p.template
    cloze = p.cloze if p.cloze is not None else _drop_lines(main, ("options", "labels"))
    short = spec.item_kind is ItemKind.SHORT_ANSWER
    prefix = p.answer_prefix if p.answer_prefix is not None else ("" if short else "Answer:")
    extra = tuple(spec.columns.metadata)

    def render(v: View) -> Rendered:
        """The spec's wording of ``v``, placeholders filled (surrounding blank space dropped)."""
        it = v.item
        fields = {
            "question": v.question,
            "options": v.option_lines() if v.options else "",
            "labels": v.label_list() if v.options else "",
            "context": v.context or "",
            "country": it.country.name if it.country else "",
            "language": it.language,
            "topic": it.topic or "",
            **{k: str(it.metadata.get(k, "")) for k in extra},
        }
        system = p.system.format_map(fields).strip() if p.system else None
        if v.mode is Mode.CLOZE:
            user, start = cloze, prefix
        elif v.mode is Mode.GENERATE and p.generate is not None:
            user, start = p.generate, ""
        elif v.mode is Mode.GENERATE and not short:
            what = "label" if v.labels else "text"
            tail = f"\n\nReply with only the {what} of the correct option ({{labels}})."
            user, start = _drop_lines(main, ("labels",)) + tail, ""
        else:  # letter mode, and short answers (always generated)
            user, start = main, prefix
        return Rendered(user.format_map(fields).strip(), start, system)

    return render


# --- building the task -------------------------------------------------------------------------------
def build_task_class(
    spec: TaskSpec, spec_file: str | Path, spec_path: Path, text: str, fmt: Literal["yaml", "toml"]
) -> type[SpecTask]:
    """A :class:`SpecTask` subclass for a checked spec (its own template registered for rendering)."""
    assert spec.name is not None
    sha = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    kind = spec.item_kind
    if spec.prompt.builtin is not None:
        default_template = spec.prompt.builtin
    elif spec.prompt.template is not None:
        default_template = f"spec:{spec.name}@{sha[:12]}"
        template(kind, default_template, generic=False)(_make_template(spec))
    else:
        default_template = "default"
    scorer = spec.scorer_name
    d = spec.data
    data_name = d.path if d.path is not None else f"hf://datasets/{d.hf}/{d.file}"
    release = f"{data_name} (declared in {Path(spec_file).name})"
    release += f"; licence: {spec.license}" if spec.license else ""
    release += f"; cite: {spec.citation}" if spec.citation else ""
    shown_kind = spec.kind.replace("_", "-")
    prompt_words = (
        f"the built-in {default_template!r} wording"
        if spec.prompt.template is None
        else "the spec's own template"
    )
    protocol = (
        f"Declared in {Path(spec_file).name} (SHA-256 {sha[:12]}): {shown_kind} items from {data_name}, asked "
        f"with {prompt_words}; scorer {scorer}: {SCORER_HELP[scorer]}."
    )
    ns: dict[str, Any] = {
        "name": spec.name,
        "description": spec.description or f"{shown_kind} items declared in {Path(spec_file).name}",
        "protocol": protocol,
        "headline": Headline(spec.metric, METRICS[scorer][spec.metric]),
        "metrics": {m: label for m, label in METRICS[scorer].items() if m != spec.metric},
        "default_mode": _MODE.get(scorer, Mode.GENERATE),
        "default_template": default_template,
        "source": DataSource(release, url=f"https://huggingface.co/datasets/{d.hf}" if d.hf else ""),
        "spec": spec,
        "spec_file": str(spec_file),
        "spec_path": spec_path,
        "spec_format": fmt,
        "spec_text": text,
        "spec_sha256": sha,
        "__module__": __name__,
        "__qualname__": f"SpecTask[{spec.name}]",
        "__doc__": spec.description or protocol,
    }
    return type(f"SpecTask_{spec.name}", (SpecTask,), ns)


_BUILT: dict[tuple[str, str], type[SpecTask]] = {}


def load_spec(arg: str | Path) -> type[SpecTask]:
    """The task class a spec file declares (built once per file content)."""
    file = str(arg)
    path = Path(file).expanduser()
    suffix = path.suffix.lower()
    if suffix not in SPEC_SUFFIXES:
        raise SpecError(file, None, f"a spec file ends in {', '.join(SPEC_SUFFIXES)}")
    if not path.is_file():
        raise SpecError(file, None, "spec file not found" + ("" if path.exists() else f" ({path.resolve()})"))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError(file, None, f"cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError(file, None, f"not UTF-8 text (byte 0x{data[exc.start]:02x}, line {line})") from None
    text = text[1:] if text.startswith("\ufeff") else text
    key = (str(path.resolve()), hashlib.sha256(data).hexdigest())
    if key in _BUILT:
        return _BUILT[key]
    fmt: Literal["yaml", "toml"] = "toml" if suffix == ".toml" else "yaml"
    spec = validate_spec(parse_spec_text(text, file, fmt), file)
    if spec.data.path is not None:
        local = (path.resolve().parent / Path(spec.data.path).expanduser()).resolve()
        if not local.is_file():
            raise SpecError(file, "data.path", f"file not found: {local}")
    cls = build_task_class(spec, file, path.resolve(), text, fmt)
    _BUILT[key] = cls
    return cls


def task_from_record(record: dict[str, Any], data_dir: str | Path | None = None, **options: Any) -> SpecTask:
    """The task a run's ``config.json`` recorded (:meth:`SpecTask.record`), without its spec file."""
    file = str(record.get("file") or "<recorded spec>")
    raw = record.get("spec")
    fmt = record.get("format") if record.get("format") in ("yaml", "toml") else "yaml"
    if not isinstance(raw, dict):
        raise SpecError(file, None, "the run's record of the spec has no spec")
    spec = validate_spec(raw, file)
    cls = build_task_class(spec, file, Path(file), str(record.get("text") or ""), fmt)  # type: ignore[arg-type]
    cls.spec_sha256 = str(record.get("sha256") or cls.spec_sha256)
    return cls(data_dir=data_dir, **options)
