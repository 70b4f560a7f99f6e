"""The run log: one typed, versioned record of a run, one writer (:class:`RunLogWriter`) and one
reader (:func:`read_run`). Every analysis, the report, ``compare`` and the finished-run check read a
run only through :class:`RunLog`.

A run directory holds (format 2)::

    config.json    RunHeader: the config, the backend and its identity, per-task declarations, versions
    run.json       RunStatus: started | complete | failed | interrupted, hashes of the whole files
    items.jsonl    the item snapshot: every scored item as the task built it (gold, groups, references)
    references.json  per-task data the analyses need besides the items (survey references, Hofstede)
    samples.jsonl  one Sample per (item, variant): the prompt, the response and its score
    results.json   the aggregates (dict: its shape is the aggregate module's)
    timing.json    where the time went

The item travels with its result (as in HELM's ``RequestState`` and inspect_ai's ``EvalLog``), so an
old run is analysed on another machine without its dataset. A format-1 run (no snapshot) is read too;
its items are rebuilt from the dataset named in its config, and :attr:`RunLog.notes` says so.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from culturelens.schema import Item, Mode, Score, Variant

FORMAT_VERSION = 2
CONFIG_FILE = "config.json"
STATUS_FILE = "run.json"
ITEMS_FILE = "items.jsonl"
REFERENCES_FILE = "references.json"
SAMPLES_FILE = "samples.jsonl"
RESULTS_FILE = "results.json"
TIMING_FILE = "timing.json"
#: every judge verdict of a judged run (culturelens.judges): judge, wording, prompt, reply, verdict
JUDGEMENTS_FILE = "judgements.jsonl"
#: files whose SHA-256 the status record keeps: a run is reused only while they are whole
HASHED = (SAMPLES_FILE, RESULTS_FILE, ITEMS_FILE)


class RunLogError(ValueError):
    """A run directory cannot be read as a run. One line naming the file and what is wrong."""


class RunConfig(BaseModel):
    """Everything that decides what a run computes (and a few knobs that do not: ``out``, ``cache``...)."""

    model: str = "default"
    tasks: list[str] = Field(default_factory=lambda: ["starter"])
    mode: Mode | None = None  # None: each task's default
    limit: int | None = None
    countries: list[str] | None = None
    variants: list[Variant] = Field(default_factory=lambda: [Variant()])
    data_dir: str | None = None
    out: str | None = None  # run directory; default runs/<run-id>
    runs_root: str = "runs"
    cache: str | None = None
    batch_size: int = 16
    block_size: int = 4096  # requests held in memory at once (prompts, responses)
    #: where requests are computed: local | ray | ray:ADDRESS (see culturelens.executors); the
    #: results do not depend on it, so it is in neither the run id nor the reuse key
    executor: str = "local"
    workers: int = 1  # backend replicas (Ray workers)
    worker_gpus: float = 0.0  # GPUs per Ray worker
    seed: int = 0
    n_boot: int = 1000
    backend_options: dict[str, Any] = Field(default_factory=dict)
    task_options: dict[str, Any] = Field(default_factory=dict)
    #: judge panel for judged tasks (backend specs; empty: the default judge, the embedded model)
    judges: list[str] = Field(default_factory=list)
    judge_options: dict[str, Any] = Field(default_factory=dict)  # backend options of the judges
    #: the command line that re-creates this run (set by the CLI; secrets redacted)
    command: list[str] | None = None

    def run_id(self, identity: Mapping[str, Any]) -> str:
        payload = self.model_dump(
            mode="json",
            exclude={
                "out",
                "runs_root",
                "cache",
                "batch_size",
                "block_size",
                "command",
                "executor",
                "workers",
                "worker_gpus",
            },
        )
        for key in ("judges", "judge_options"):  # left out unset, so runs without judges keep their ids
            if not payload.get(key):
                payload.pop(key, None)
        # the model is named by its identity, not by how it was spelled: `default`, `embedded` and
        # `llamacpp:embedded` are one model and share one run directory
        del payload["model"]
        payload["identity"] = dict(identity)
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]
        model = str(identity.get("model", "model")).split("/")[-1].replace(".gguf", "")
        backend = str(identity.get("backend", ""))
        model = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in model)[:40]
        name = f"{model}-{backend}" if backend else model
        return f"{name}__{'+'.join(self.tasks)[:40]}__{digest}"


class Status(StrEnum):
    STARTED = "started"
    COMPLETE = "complete"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class RunStatus(BaseModel):
    """``run.json``: where the run stands and, once complete, the hashes of its whole files."""

    model_config = ConfigDict(extra="allow")
    format: int = FORMAT_VERSION
    status: Status
    started: float | None = None
    ended: float | None = None
    requests_digest: str | None = None
    pid: int | None = None
    files: dict[str, str | None] = Field(default_factory=dict)
    error: str | None = None


class RunHeader(BaseModel):
    """``config.json``: what was asked and of which model, written before anything is computed."""

    model_config = ConfigDict(extra="allow")
    format: int = 1
    config: RunConfig = Field(default_factory=RunConfig)
    backend: dict[str, Any] = Field(default_factory=dict)  # describe(): identity, chat template...
    tasks: dict[str, dict[str, Any]] = Field(default_factory=dict)  # name -> task info + item count
    versions: dict[str, str] = Field(default_factory=dict)
    command: str | None = None

    @property
    def identity(self) -> dict[str, Any]:
        return dict(self.backend.get("identity") or {})


class Sample(BaseModel):
    """One line of ``samples.jsonl``: one item under one variant, with its prompt, answer and score."""

    model_config = ConfigDict(extra="allow")
    task: str
    item_id: str
    variant: str
    mode: Mode
    country: str | None = None
    iso2: str | None = None
    region: str | None = None
    language: str | None = None
    topic: str | None = None
    subset: dict[str, str] = Field(default_factory=dict)
    group: str | None = None
    prompt: str = ""
    targets: list[str] = Field(default_factory=list)
    options: list[str] = Field(default_factory=list)
    order: list[int] = Field(default_factory=list)
    gold: Any = None
    response: dict[str, Any] = Field(default_factory=dict)
    prediction: int | str | None = None
    probs: list[float] | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    valid: bool = True
    cache_key: str | None = None
    fallback: str | None = None

    @property
    def cluster(self) -> str:
        return self.group or self.item_id

    def to_score(self) -> Score:
        return Score(
            item_id=self.item_id,
            task=self.task,
            variant=self.variant,
            mode=self.mode,
            metrics=self.metrics,
            prediction=self.prediction,
            probs=self.probs,
            valid=self.valid,
            fallback=self.fallback,
        )


class Judgement(BaseModel):
    """One line of ``judgements.jsonl``: one judge's verdict on one sample, under one wording (and, for a
    pairwise question, one order). ``verdict`` is None when the reply could not be read (invalid)."""

    model_config = ConfigDict(extra="allow")
    task: str
    item_id: str
    variant: str
    ask: str
    kind: str
    judge: int
    judge_model: str = ""
    wording: str
    order: str = "-"
    prompt: str = ""
    reply: str | None = None
    verdict: float | None = None
    valid: bool = False
    cache_key: str | None = None


def item_groups(item: Item) -> dict[str, Any]:
    """The grouping fields a sample record carries for its item (country, region, language, topic...),
    in the order ``samples.jsonl`` writes them; shared by every writer of samples."""
    c = item.country
    return {
        "country": c.name if c else None,
        "iso2": c.iso2 if c else None,
        "region": c.region if c else None,
        "language": item.language,
        "topic": item.topic,
        "subset": item.subset,
        "group": item.group,
    }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunLogError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise RunLogError(f"{path}: not valid JSON ({exc})") from None


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield lineno, json.loads(line)
                except ValueError as exc:
                    raise RunLogError(f"{path}, line {lineno}: not valid JSON ({exc})") from None


def _where(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"field {'.'.join(str(p) for p in err['loc']) or '-'}: {err['msg']}"


class RunLog:
    """A run directory, read. Cheap to open: samples and items are read when first asked for.

    ``results`` is the aggregates dict exactly as ``results.json`` holds it; everything else is typed.
    """

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        if not self.dir.exists():
            raise RunLogError(f"{self.dir}: not found (give a culturelens run directory)")
        if not self.dir.is_dir():
            raise RunLogError(f"{self.dir}: not a directory (give a culturelens run directory)")
        res = self.dir / RESULTS_FILE
        if not res.exists():
            raise RunLogError(f"{res}: not found (is {self.dir} a culturelens run directory?)")
        self.results: dict[str, Any] = _read_json(res)
        if not isinstance(self.results, dict) or not isinstance(self.results.get("tasks"), dict):
            raise RunLogError(f"{res}: no 'tasks' object; not a culturelens results file")
        #: things a reader should know (an unreadable optional file, a rebuilt item snapshot)
        self.notes: list[str] = []
        self.header = self._header()
        self.status = self._status()
        tpath = self.dir / TIMING_FILE
        self.timing: dict[str, Any] = {}
        if tpath.exists():
            try:
                self.timing = _read_json(tpath)
            except RunLogError as exc:
                self.notes.append(str(exc))
        self.mtime = res.stat().st_mtime

    # --- the header and status -------------------------------------------------------------------
    def _header(self) -> RunHeader:
        path = self.dir / CONFIG_FILE
        if not path.exists():
            self.notes.append(f"{CONFIG_FILE} not found: the run's config is unknown")
            return RunHeader()
        try:
            raw = _read_json(path)
            return RunHeader.model_validate(raw if "config" in raw else {"config": raw})
        except RunLogError as exc:
            self.notes.append(str(exc))
        except ValidationError as exc:
            self.notes.append(f"{path}: {_where(exc)}")
        return RunHeader()

    def _status(self) -> RunStatus | None:
        path = self.dir / STATUS_FILE
        if not path.exists():
            return None
        try:
            return RunStatus.model_validate(_read_json(path))
        except (RunLogError, ValidationError) as exc:
            self.notes.append(f"{path}: unreadable status ({exc})")
            return None

    @property
    def format(self) -> int:
        return max(self.header.format, self.status.format if self.status else 1)

    @property
    def config(self) -> RunConfig:
        return self.header.config

    @property
    def identity(self) -> dict[str, Any]:
        return dict(self.results.get("model") or self.header.identity)

    @property
    def label(self) -> str:
        """A short model label: the model file / id without path and extension."""
        model = self.identity
        name = str(model.get("model") or model.get("name") or self.dir.name)
        return name.replace("\\", "/").split("/")[-1].removesuffix(".gguf")

    @property
    def complete(self) -> bool:
        return self.status is not None and self.status.status is Status.COMPLETE

    def is_whole(self, digest: str | None = None) -> bool:
        """Complete (for exactly these requests, when ``digest`` is given) with every hashed file as
        it was recorded: a truncated or hand-edited file makes the run not whole."""
        return is_complete(self.dir, digest)

    # --- variants and results --------------------------------------------------------------------
    @property
    def variants(self) -> list[Variant]:
        return list(self.config.variants) or [Variant()]

    @property
    def primary_variant(self) -> Variant:
        return self.variants[0]

    @property
    def task_names(self) -> list[str]:
        return list(self.results["tasks"])

    def task_results(self, name: str) -> dict[str, Any]:
        try:
            return self.results["tasks"][name]
        except KeyError:
            raise RunLogError(f"{self.dir / RESULTS_FILE}: no task {name!r}") from None

    def task_variants(self, name: str) -> dict[str, dict[str, Any]]:
        """Variant id -> aggregate (with its ``variant`` spec); a one-variant run yields its primary one."""
        entry = self.task_results(name)
        if entry.get("variants"):
            return entry["variants"]
        return {self.primary_variant.id: {**entry, "variant": {}}}

    def headline_metric(self, name: str) -> str | None:
        """The metric the task's results lead with: as the task declared it when the run was made
        (``config.json``), else as it is registered now, else the fallback list."""
        from culturelens.aggregate import headline_metric

        recorded = self.task_info(name).get("headline")
        if isinstance(recorded, dict) and recorded.get("metric") in (
            self.task_results(name).get("metrics") or {}
        ):
            return str(recorded["metric"])
        return headline_metric(self.task_results(name), name)

    def task_info(self, name: str) -> dict[str, Any]:
        """What the task declared when the run was made (description, headline, options...)."""
        return dict(self.header.tasks.get(name) or {})

    # --- samples ---------------------------------------------------------------------------------
    def iter_samples(self, task: str | None = None) -> Iterator[Sample]:
        path = self.dir / SAMPLES_FILE
        if not path.exists():
            raise RunLogError(f"{path}: not found (is {self.dir} a culturelens run directory?)")
        for lineno, rec in _jsonl(path):
            if task is not None and rec.get("task") != task:
                continue
            try:
                yield Sample.model_validate(rec)
            except ValidationError as exc:
                raise RunLogError(f"{path}, line {lineno}: {_where(exc)}") from None

    @cached_property
    def samples(self) -> list[Sample]:
        return list(self.iter_samples())

    def raw_samples(self, skip_bad: bool = False) -> list[dict[str, Any]]:
        """``samples.jsonl`` as dicts (the report embeds them as they are). With ``skip_bad`` a line
        that is not JSON is left out and noted instead of failing the read."""
        path = self.dir / SAMPLES_FILE
        if not path.exists():
            raise RunLogError(f"{path}: not found (is {self.dir} a culturelens run directory?)")
        if not skip_bad:
            return [rec for _, rec in _jsonl(path)]
        out = []
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.strip():
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        self.notes.append(f"{SAMPLES_FILE} line {lineno} is not valid JSON (skipped)")
        return out

    # --- the item snapshot -----------------------------------------------------------------------
    @cached_property
    def _items(self) -> dict[str, dict[str, Item]]:
        path = self.dir / ITEMS_FILE
        out: dict[str, dict[str, Item]] = {}
        if not path.exists():
            return out
        for lineno, rec in _jsonl(path):
            try:
                item = Item.model_validate(rec)
            except ValidationError as exc:
                raise RunLogError(f"{path}, line {lineno}: {_where(exc)}") from None
            out.setdefault(item.task, {})[item.id] = item
        return out

    def items(self, task: str) -> dict[str, Item]:
        """The items of ``task`` this run scored, by id: from the snapshot, or (format 1) rebuilt from
        the dataset its config names, with a note. Raises :class:`RunLogError` when neither works."""
        if (self.dir / ITEMS_FILE).exists():
            return dict(self._items.get(task, {}))
        return self._rebuilt(task)[0]

    def references(self, task: str) -> dict[str, Any]:
        """Data the task's analyses need besides its items (see ``Task.reference_data``)."""
        path = self.dir / REFERENCES_FILE
        if (self.dir / ITEMS_FILE).exists():
            return dict((_read_json(path) if path.exists() else {}).get(task) or {})
        return self._rebuilt(task)[1]

    @cached_property
    def _legacy(self) -> dict[str, tuple[dict[str, Item], dict[str, Any]]]:
        return {}

    def _rebuilt(self, task: str) -> tuple[dict[str, Item], dict[str, Any]]:
        if task not in self._legacy:
            cfg = self.config
            try:
                t = self.task(task)
                items = t.items(limit=cfg.limit, countries=cfg.countries)
                refs = t.reference_data()
            except Exception as exc:  # noqa: BLE001 - any failure: the analysis cannot be made, say why
                raise RunLogError(
                    f"{self.dir}: a format-{self.format} run has no item snapshot and its items could not "
                    f"be rebuilt from the dataset ({str(exc)[:200]}); re-run it (the response cache makes "
                    "that quick) to get a self-contained run"
                ) from None
            self.notes.append(
                f"{task}: items rebuilt from the dataset (format-{self.format} run, no snapshot)"
            )
            self._legacy[task] = ({it.id: it for it in items}, refs)
        return self._legacy[task]

    def task(self, name: str) -> Any:
        """The task as the run configured it (its options; no data is loaded by constructing it)."""
        from culturelens.tasks.base import get_task

        cfg = self.config
        options = (cfg.task_options or {}).get(name, {})
        recorded = self.task_info(name).get("spec")
        if isinstance(recorded, dict):  # declared in a spec file: rebuilt from the spec the run recorded
            from culturelens.tasks.spec import task_from_record

            return task_from_record(recorded, data_dir=cfg.data_dir, **options)
        return get_task(name, data_dir=cfg.data_dir, **options)

    def scores(self, task: str) -> dict[str, list[Score]]:
        """Variant id -> the task's scores, in sample order."""
        out: dict[str, list[Score]] = {}
        for s in self.iter_samples(task):
            out.setdefault(s.variant, []).append(s.to_score())
        return out

    def unit_scores(self, task: str) -> dict[str, list[tuple[Item, Score]]] | None:
        """Variant id -> (unit, score) at the unit the task counts (``Task.unit_scores``), regrouped
        with the item snapshot; None when the task counts single items."""
        from culturelens.tasks.base import Task

        t = self.task(task)
        if type(t).unit_scores is Task.unit_scores:
            return None
        items = self.items(task)
        return {vid: t.unit_scores(items, scores) for vid, scores in self.scores(task).items()}

    # --- judge verdicts (judged tasks) --------------------------------------------------------------
    def judgements(self, task: str | None = None) -> list[Judgement]:
        """Every judge verdict of the run (``judgements.jsonl``), in the order they were judged; empty
        when no task of the run was judged."""
        path = self.dir / JUDGEMENTS_FILE
        if not path.exists():
            return []
        out = []
        for lineno, rec in _jsonl(path):
            if task is not None and rec.get("task") != task:
                continue
            try:
                out.append(Judgement.model_validate(rec))
            except ValidationError as exc:
                raise RunLogError(f"{path}, line {lineno}: {_where(exc)}") from None
        return out

    # --- DataFrames (pandas is imported only when these are called) -----------------------------
    def results_df(self) -> Any:
        """The aggregates as one tidy long pandas frame (see :func:`culturelens.frames.load_runs`)."""
        from culturelens.frames import results_df

        return results_df(self)

    def samples_df(self) -> Any:
        """One pandas row per scored prompt (see :func:`culturelens.frames.samples_df`)."""
        from culturelens.frames import samples_df

        return samples_df(self)

    # --- side files ------------------------------------------------------------------------------
    def side_file(self, name: str, max_bytes: int | None = None) -> Any:
        """An analysis file (``robustness.json``...): its content, or None (and a note when it exists
        but cannot be used)."""
        path = self.dir / name
        if not path.exists():
            return None
        if max_bytes is not None and path.stat().st_size > max_bytes:
            self.notes.append(f"{name} is larger than {max_bytes // 1_000_000} MB and is not embedded")
            return None
        try:
            return _read_json(path)
        except RunLogError as exc:
            self.notes.append(f"{name} could not be read: {exc}")
            return None


def read_run(run_dir: str | Path) -> RunLog:
    """Open a run directory (see :class:`RunLog`); a one-line :class:`RunLogError` when it is not one."""
    return RunLog(run_dir)


# --- writing ---------------------------------------------------------------------------------------
def atomic_write(path: Path, writer: Callable[[IO[str]], None]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        writer(fh)
    os.replace(tmp, path)


def write_json(path: Path, obj: Any, **kwargs: Any) -> None:
    atomic_write(path, lambda fh: json.dump(obj, fh, indent=1, ensure_ascii=False, **kwargs))


def file_digest(path: Path) -> str | None:
    try:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:
        return None


def read_status(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / STATUS_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def write_status(run_dir: Path, **fields: Any) -> dict[str, Any]:
    record = {**(read_status(run_dir) or {}), **fields, "format": FORMAT_VERSION}
    tmp = run_dir / (STATUS_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(tmp, run_dir / STATUS_FILE)
    return record


def is_complete(run_dir: Path, digest: str | None = None) -> bool:
    """A complete run (of exactly these requests, when ``digest`` is given) whose files are whole."""
    status = read_status(run_dir)
    if not status or status.get("status") != Status.COMPLETE.value:
        return False
    if digest is not None and status.get("requests_digest") != digest:
        return False
    hashes = status.get("files") or {}
    names = [n for n in HASHED if n in hashes or n != ITEMS_FILE]  # format 1 did not hash items
    names += [JUDGEMENTS_FILE] if hashes.get(JUDGEMENTS_FILE) else []  # judged runs only
    return all(hashes.get(n) and file_digest(run_dir / n) == hashes[n] for n in names)


class RunLogWriter:
    """The one writer of a run directory. The runner calls, in order: :meth:`start` (header and
    status ``started``), :meth:`write_items`, :meth:`open_samples` / :meth:`add_sample` per block,
    then :meth:`finish` (results, timing, status ``complete`` with hashes) or :meth:`fail`."""

    def __init__(self, run_dir: Path):
        self.dir = run_dir
        self._samples: IO[str] | None = None
        self._judgements: IO[str] | None = None

    def start(self, header: Mapping[str, Any], **status: Any) -> None:
        write_json(self.dir / CONFIG_FILE, {**header, "format": FORMAT_VERSION}, default=str)
        write_status(self.dir, status=Status.STARTED.value, files={}, error=None, **status)

    def write_items(self, items: Sequence[Item], references: Mapping[str, Mapping[str, Any]]) -> None:
        def dump(fh: IO[str]) -> None:
            for it in items:
                fh.write(json.dumps(it.model_dump(mode="json", exclude_defaults=True), ensure_ascii=False))
                fh.write("\n")

        atomic_write(self.dir / ITEMS_FILE, dump)
        refs = {k: dict(v) for k, v in references.items() if v}
        if refs:
            write_json(self.dir / REFERENCES_FILE, refs)

    def open_judgements(self) -> None:
        self._judgements = (self.dir / (JUDGEMENTS_FILE + ".tmp")).open("w", encoding="utf-8")

    def add_judgement(self, record: Mapping[str, Any]) -> None:
        assert self._judgements is not None, "open_judgements() first"
        self._judgements.write(json.dumps(record, ensure_ascii=False) + "\n")

    def open_samples(self) -> None:
        self._samples = (self.dir / (SAMPLES_FILE + ".tmp")).open("w", encoding="utf-8")

    def add_sample(self, record: Mapping[str, Any]) -> None:
        assert self._samples is not None, "open_samples() first"
        self._samples.write(json.dumps(record, ensure_ascii=False) + "\n")

    def finish(
        self, results: Mapping[str, Any], timing: Mapping[str, Any], ended: float, **status: Any
    ) -> None:
        """Close the files and record the run ``complete`` with their hashes (and ``status`` fields)."""
        judged: tuple[str, ...] = ()
        if self._judgements is not None:
            self._judgements.close()
            self._judgements = None
            os.replace(self.dir / (JUDGEMENTS_FILE + ".tmp"), self.dir / JUDGEMENTS_FILE)
            judged = (JUDGEMENTS_FILE,)
        if self._samples is not None:
            self._samples.close()
            self._samples = None
            os.replace(self.dir / (SAMPLES_FILE + ".tmp"), self.dir / SAMPLES_FILE)
        write_json(self.dir / RESULTS_FILE, results)
        atomic_write(self.dir / TIMING_FILE, lambda fh: json.dump(timing, fh, indent=1))
        write_status(
            self.dir,
            status=Status.COMPLETE.value,
            ended=ended,
            files={n: file_digest(self.dir / n) for n in (*HASHED, *judged)},
            **status,
        )

    def fail(self, status: Literal["failed", "interrupted"], error: str, ended: float) -> None:
        if self._samples is not None:
            self._samples.close()
            self._samples = None
        (self.dir / (SAMPLES_FILE + ".tmp")).unlink(missing_ok=True)
        if self._judgements is not None:
            self._judgements.close()
            self._judgements = None
        (self.dir / (JUDGEMENTS_FILE + ".tmp")).unlink(missing_ok=True)
        write_status(self.dir, status=status, ended=ended, error=error)
