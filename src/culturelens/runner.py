"""The pipeline driver: tasks -> items -> prompts -> requests -> (cache | backend) -> scores -> outputs.

Resume is a property of the cache: every computed batch is committed before the next one starts,
and outputs are rewritten from scratch (atomically) from the cache on every run, so a re-run after
a crash produces exactly the files an uninterrupted run produces.

A finished run is recognised without rendering a prompt when its ``run.json`` holds a *reuse key*
(:func:`reuse_key`) equal to the one of the run asked for: a digest of the config, the model's
identity and formatting, the package versions, culturelens' own code and the content of every
task's data. Only runs whose every input is in that digest get one (built-in tasks reading local
files or shipped data, no judges, a backend that needs no weights to say who it is); any other run,
or any difference, takes the full check (every request's key), which also re-records the key.

Memory: items are loaded whole (a run validates everything before touching the model), but prompts,
requests and responses are streamed a block of items at a time; each block's samples go to disk as
soon as they are scored and only the compact scores stay for aggregation.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from culturelens import executors, rundir
from culturelens.aggregate import aggregate_task, baselines
from culturelens.backends.base import Backend
from culturelens.backends.registry import load_backend
from culturelens.cache import ResponseCache, model_label
from culturelens.errors import BackendError, PartialBatchError
from culturelens.judges import JudgeStage
from culturelens.redact import redact, redact_obj
from culturelens.runlog import RunConfig, RunLogWriter, item_groups, read_run
from culturelens.schema import Item, Message, Mode, Prompt, Request, Response, Score
from culturelens.tasks.base import Task, get_task

DEFAULT_CACHE = Path(
    os.environ.get("CULTURELENS_CACHE", Path.home() / ".cache" / "culturelens" / "responses.sqlite")
)


@dataclass
class Work:
    task: Task
    item: Item
    prompt: Prompt
    request: Request
    key: str
    response: Response | None = None
    score: Score | None = None
    task_index: int = 0  # position of the task in the run (a task may not be hashable)


@dataclass
class RunResult:
    run_dir: Path
    results: dict[str, Any]
    timing: dict[str, float] = field(default_factory=dict)
    lock: rundir.RunLock | None = None  # held when the runner was asked to keep it (see Runner)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


@dataclass
class RunState:
    """Where a run stands, for the message after an interrupt or a failure."""

    run_dir: Path | None = None
    cache: Path | None = None
    computed: int = 0  # responses computed and committed to the cache by this process
    todo: int = 0  # responses that had to be computed
    samples: int = 0


def check_response(req: Request, resp: Response) -> str | None:
    """Why ``resp`` is not an answer of the kind ``req`` asks for, or None when it is.

    The last guard before the cache: a malformed answer is never stored as if it were valid. A
    response with ``fallback`` set was deliberately produced another way and must carry text.
    """
    import math

    if resp.fallback:
        return None if isinstance(resp.text, str) else f"fallback ({resp.fallback}) without text"
    if req.kind == "generate":
        return None if isinstance(resp.text, str) else "no generated text"
    lps = resp.logprobs
    if lps is None:
        return "no log-probabilities"
    if len(lps) != len(req.targets):
        return f"{len(lps)} log-probabilities for {len(req.targets)} targets"
    for v in lps:
        if not isinstance(v, int | float) or math.isnan(v) or v > 1e-6:
            return f"invalid log-probability {v!r}"
    if req.kind == "continuations" and (resp.n_tokens is None or len(resp.n_tokens) != len(req.targets)):
        return "no token counts for the continuations"
    return None


ProgressFn = Callable[[str, int, int], None]


def build_request(prompt: Prompt, backend: Backend) -> Request:
    text = backend.format(prompt.messages, prompt.assistant_prefix)
    if prompt.mode is Mode.LETTER:
        return Request(kind="labels", text=text, targets=prompt.labels)
    if prompt.mode is Mode.CLOZE:
        sep = "" if (not text or text[-1].isspace()) else " "
        closed = prompt.close_turn
        targets = [
            closed_turn(prompt, backend, text, c) if i < len(closed) and closed[i] else sep + c
            for i, c in enumerate(prompt.continuations)
        ]
        return Request(kind="continuations", text=text, targets=targets)
    return Request(kind="generate", text=text, max_tokens=prompt.max_tokens)


def closed_turn(prompt: Prompt, backend: Backend, text: str, reply: str) -> str:
    """``reply`` as the assistant's whole turn: the closed conversation (:meth:`Backend.format_closed`)
    after the prompt ``text``, so the template's end-of-turn text is scored with the reply (Kalahi's
    official slice). Where the template is not visible, or the closed text does not extend the prompt,
    the bare reply."""
    full = backend.format_closed(
        [*prompt.messages, Message(role="assistant", content=prompt.assistant_prefix + reply)]
    )
    if full is None or not full.startswith(text) or len(full) == len(text):
        return ("" if (not text or text[-1].isspace()) else " ") + reply
    return full[len(text) :]


def cpu_summary() -> str:
    """CPU model and the SIMD features that decide which native kernels run (recorded per run)."""
    name, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                name = line.split(":", 1)[1].strip()
            elif line.startswith(("flags", "Features")) and ":" in line:
                flags = set(line.split(":", 1)[1].split())
            if name and flags:
                break
    keep = ("avx2", "avx512f", "amx_tile", "amx_int8", "amx_bf16", "fma", "f16c", "asimd", "sve")
    return f"{name} [{' '.join(f for f in keep if f in flags)}]"


def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform(), "cpu": cpu_summary()}
    for pkg in ("culturelens", "llama_cpp_python", "transformers", "torch", "httpx", "numpy", "pydantic"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg.replace("_", "-"))
    return out


def _sample_record(w: Work) -> dict[str, Any]:
    item, prompt, resp, score = w.item, w.prompt, w.response, w.score
    assert resp is not None and score is not None
    rec: dict[str, Any] = {
        "task": item.task,
        "item_id": item.id,
        "variant": prompt.variant.id,
        "mode": prompt.mode.value,
        **item_groups(item),
        "prompt": w.request.text,
        "targets": w.request.targets,
        "options": item.options,
        "order": prompt.order,
        "gold": item.correct if item.correct else [a.model_dump() for a in item.answers][:10],
        "response": resp.model_dump(exclude={"cached", "meta"}, exclude_none=True),
        "prediction": score.prediction,
        "probs": score.probs,
        "metrics": score.metrics,
        "valid": score.valid,
        "cache_key": w.key,
    }
    if resp.fallback:
        rec["fallback"] = resp.fallback
    return rec


# --- recognising a finished run without rendering a prompt ------------------------------------------
_REUSE_VERSION = 1
_DATA_LIMIT = 1 << 30  # data larger than this (bytes) are not hashed: the run takes the full check
_DATA_FILES = 20000


def _tree_digest(root: Path) -> str | None:
    """SHA-256 of a file, or of a folder's files (relative names, sizes and contents); None when it
    is missing or too large to hash quickly."""
    try:
        if root.is_file():
            files, base = [root], root.parent
        elif root.is_dir():
            files, base = [], root
            for p in root.rglob("*"):
                if p.is_file() and "__pycache__" not in p.parts:
                    files.append(p)
                    if len(files) > _DATA_FILES:
                        return None
            files.sort()
        else:
            return None
        if sum(p.stat().st_size for p in files) > _DATA_LIMIT:
            return None
        h = hashlib.sha256()
        for p in files:
            h.update(f"{p.relative_to(base).as_posix()}\0{p.stat().st_size}\0".encode())
            with p.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


@functools.cache
def _code_digest() -> str:
    """Every file of the installed culturelens package (code, templates, shipped data)."""
    return _tree_digest(Path(__file__).resolve().parent) or "unknown"


def reuse_key(cfg: RunConfig, backend: Backend, identity: dict) -> str | None:
    """A digest of everything that decides a run's results, computed without loading an item, or None
    when something that does cannot be digested cheaply (a plugin or spec task, data that are
    downloaded or too large, judges): such a run is always checked request by request."""
    from culturelens.judging import JudgedTask
    from culturelens.tasks.base import Task
    from culturelens.tasks.starter import Starter

    if cfg.judges or cfg.judge_options:
        return None
    try:
        tasks = []
        for name in cfg.tasks:
            task = get_task(name, data_dir=cfg.data_dir, **cfg.task_options.get(name, {}))
            cls = type(task)
            if not cls.__module__.startswith("culturelens.tasks.") or cls.fingerprint is not Task.fingerprint:
                return None
            if isinstance(task, JudgedTask):
                return None
            if task.data_dir is not None:
                data = _tree_digest(task.data_dir.expanduser().resolve())
            elif isinstance(task, Starter):
                data = "shipped"  # in the package: part of the code digest
            else:
                data = None  # downloaded or cached elsewhere: not digested
            if data is None:
                return None
            tasks.append(
                {
                    "name": task.name,
                    "class": f"{cls.__module__}.{cls.__qualname__}",
                    "data": data,
                    "info": task.info(),
                }
            )
        probe = [Message(role="system", content="s"), Message(role="user", content="u")]
        payload = {
            "v": _REUSE_VERSION,
            "config": cfg.model_dump(
                mode="json",
                exclude={"out", "runs_root", "cache", "command", "executor", "workers", "worker_gpus"},
            ),
            "identity": identity,
            "chat_template": backend.chat_template_source,
            "format": [
                backend.format(probe),
                backend.format(probe, "p"),
                backend.format_closed([*probe, Message(role="assistant", content="a")]),
            ],
            "versions": package_versions(),
            "code": _code_digest(),
            "tasks": tasks,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    except Exception:  # noqa: BLE001 - anything unusual: the full check decides (and reports errors)
        return None


def _weightless(spec: str, options: dict[str, Any]) -> bool:
    """Whether getting a backend for ``spec`` loads no weights: a remote or fake model, or a built-in
    backend whose saved card identifies it (:class:`~culturelens.backends.cards.LazyBackend`)."""
    from culturelens.backends.cards import load_card
    from culturelens.backends.registry import backend_info, normalize_spec

    try:
        prefix, _, rest = normalize_spec(spec).partition(":")
        if prefix in ("openai", "fake"):
            return True
        info = backend_info(prefix)
        if info is None or not info.builtin:
            return False
        cls = info.load()
        if getattr(cls.card_key, "__func__", None) is getattr(Backend.card_key, "__func__", None):
            return False
        key = cls.card_key(rest, **options)
        return key is not None and load_card(key) is not None
    except Exception:  # noqa: BLE001 - anything unusual: load it after the items, as always
        return False


class EmptyRunError(ValueError):
    """A run would score nothing; says which task and why."""


def resolve_spec_tasks(cfg: RunConfig) -> RunConfig:
    """``cfg`` with its spec-file task arguments (``mytask.yaml``) replaced by the names of the tasks
    they declare (:func:`~culturelens.tasks.registry.resolve_task`), their options moved along."""
    from culturelens.tasks.registry import resolve_task

    names = [resolve_task(t) for t in cfg.tasks]
    if names == cfg.tasks:
        return cfg
    for i, name in enumerate(names):
        if name in names[:i] and cfg.tasks[i] != cfg.tasks[names.index(name)]:
            raise ValueError(
                f"two tasks named {name!r} in this run ({cfg.tasks[names.index(name)]}, {cfg.tasks[i]}): "
                "give one spec another name"
            )
    renamed = dict(zip(cfg.tasks, names, strict=True))
    options = {renamed.get(k, k): v for k, v in cfg.task_options.items()}
    return cfg.model_copy(update={"tasks": names, "task_options": options})


def load_tasks(cfg: RunConfig) -> list[tuple[Task, list[Item]]]:
    """Every task's items, validated before the model is touched: a run never starts half-loaded."""
    if cfg.limit is not None and cfg.limit < 1:
        raise EmptyRunError(f"--limit {cfg.limit}: give a positive number of items (or leave it out)")
    if not cfg.tasks:
        raise EmptyRunError("no task given")
    from culturelens.personas import check_persona

    for v in cfg.variants:
        if v.persona:
            check_persona(v.persona)
    tasks: list[tuple[Task, list[Item]]] = []
    for name in cfg.tasks:
        task = get_task(name, data_dir=cfg.data_dir, **cfg.task_options.get(name, {}))
        items = task.items(limit=cfg.limit, countries=cfg.countries)
        if not items:
            why = "its data has no items"
            if cfg.countries:
                have = sorted({i.country.name for i in task.items() if i.country})
                why = (
                    f"none of its items is from {', '.join(cfg.countries)} "
                    f"(its countries: {', '.join(have[:12])}{'...' if len(have) > 12 else ''})"
                )
            raise EmptyRunError(f"task {name!r} has nothing to score: {why}")
        task.fewshot_pool()  # validated now too: a broken few-shot file never fails mid-run
        seen: dict[str, Item] = {}
        for it in items:
            if it.id in seen:
                first = seen[it.id].country
                raise EmptyRunError(
                    f"task {name!r}: item id {it.id!r} appears twice (countries "
                    f"{first.name if first else '-'} and "
                    f"{it.country.name if it.country else '-'}): ids must be unique"
                )
            seen[it.id] = it
        tasks.append((task, items))
    return tasks


class Runner:
    """Runs a :class:`RunConfig`. With ``hold_lock`` the run directory stays locked after
    :meth:`run` returns, until ``RunResult.release()`` (the CLI keeps it while it writes analyses)."""

    def __init__(
        self,
        config: RunConfig,
        backend: Backend | None = None,
        progress: ProgressFn | None = None,
        hold_lock: bool = False,
    ):
        self.config = resolve_spec_tasks(config)
        self.backend = backend
        self.progress = progress
        self.hold_lock = hold_lock
        self.state = RunState()
        self._writer: RunLogWriter | None = None
        self._judges: JudgeStage | None = None  # the judge stage, when a task of the run is judged

    def run(self) -> RunResult:
        cfg = self.config
        executors.check(cfg.executor, cfg.workers, cfg.worker_gpus)  # before any work
        t0 = time.perf_counter()
        backend: Backend | None = None
        if self.backend is not None or _weightless(
            cfg.model, cfg.backend_options
        ):  # a finished run: recognised at once
            backend = self.backend or load_backend(cfg.model, lazy=True, **cfg.backend_options)
            try:
                quick = self._reuse_finished(cfg, backend, t0)
            except BaseException:
                if self.backend is None:
                    backend.close()
                raise
            if quick is not None:
                if self.backend is None:
                    backend.close()
                return quick
        self._reuse_before = self._key_now(cfg, backend)
        tasks = load_tasks(cfg)
        t_data = time.perf_counter()
        backend = backend or load_backend(cfg.model, lazy=True, **cfg.backend_options)
        pool: Backend | None = None
        try:
            if cfg.executor != "local":  # the same run, its backend calls spread over replicas
                pool = executors.wrap(
                    backend,
                    cfg.executor,
                    cfg.model,
                    cfg.backend_options,
                    cfg.workers,
                    cfg.batch_size,
                    cfg.worker_gpus,
                )
            self._judges = JudgeStage.for_run(cfg, tasks, pool or backend)
            return self._run(cfg, tasks, pool or backend, t0, t_data)
        finally:
            if self._judges is not None:
                self._judges.close()
            if pool is not None:
                pool.close()
            if self.backend is None:
                backend.close()

    _reuse_before: str | None = None  # the reuse key before the items were loaded

    @staticmethod
    def _key_now(cfg: RunConfig, backend: Backend | None) -> str | None:
        if backend is None:  # a backend with weights is loaded after the items are validated
            return None
        return reuse_key(cfg, backend, backend.identity())

    def _run_dir(self, identity: dict) -> Path:
        cfg = self.config
        return Path(cfg.out) if cfg.out else Path(cfg.runs_root) / cfg.run_id(identity)

    def _reuse_finished(self, cfg: RunConfig, backend: Backend, t0: float) -> RunResult | None:
        """The earlier complete run in the run directory when its reuse key is this run's (see the
        module docstring) and its files are whole; None otherwise (the full check decides)."""
        identity = backend.identity()
        run_dir = self._run_dir(identity)
        status = rundir.read_status(run_dir)
        if not status or status.get("status") != "complete" or not status.get("reuse_key"):
            return None
        if (status.get("files") or {}).get("judgements.jsonl"):
            return None
        key = reuse_key(cfg, backend, identity)
        if key is None or key != status["reuse_key"]:
            return None
        lock = rundir.RunLock(run_dir)
        lock.acquire()  # another process running into the directory: the same one-line error as ever
        try:
            finished = self._finished(run_dir, status.get("requests_digest") or "")
            if finished is None or rundir.read_status(run_dir) != status:
                lock.release()
                return None
        except BaseException:
            lock.release()
            raise
        self.state = RunState(run_dir=run_dir, cache=Path(cfg.cache) if cfg.cache else DEFAULT_CACHE)
        timing = {
            **finished[1],
            "reused": True,
            "reused_by_key": True,
            "wall_s": time.perf_counter() - t0,
            "first_wall_s": finished[1].get("wall_s"),
            "computed": 0,
            "cache_hits": 0,
            "model_load_s": 0.0,
            "scoring_s": 0.0,
            "model_loaded": float(getattr(backend, "loaded", True)),
        }
        result = RunResult(run_dir, finished[0], timing)
        if self.hold_lock:
            result.lock = lock
        else:
            lock.release()
        return result

    def _run(self, cfg: RunConfig, tasks, backend: Backend, t0: float, t_data: float) -> RunResult:
        t_load = time.perf_counter()
        identity = backend.identity()
        run_dir = self._run_dir(identity)
        cache_path = Path(cfg.cache) if cfg.cache else DEFAULT_CACHE
        self.state = RunState(run_dir=run_dir, cache=cache_path)
        created = not run_dir.exists()
        rundir.prepare(run_dir)
        lock = rundir.RunLock(run_dir)
        try:
            lock.acquire()
            cache = ResponseCache(cache_path)
        except BaseException:
            # a failed start leaves no empty run directory behind - but only one this process holds:
            # when the lock is another process's, both may have seen the directory missing, and
            # removing its lock file and directory would pull them out from under the run that owns them
            if created and lock.acquired:
                with contextlib.suppress(OSError):
                    (run_dir / rundir.LOCK_FILE).unlink()
                    run_dir.rmdir()
            lock.release()
            raise
        try:
            result = self._locked(cfg, tasks, backend, identity, run_dir, cache, t0, t_data, t_load)
        except BaseException as exc:
            status: Literal["failed", "interrupted"] = (
                "failed" if isinstance(exc, Exception) else "interrupted"
            )
            with contextlib.suppress(OSError):
                (self._writer or RunLogWriter(run_dir)).fail(
                    status, redact(str(exc))[:500] or type(exc).__name__, ended=time.time()
                )
            if (
                created and status == "failed" and self.state.samples == 0
            ):  # nothing to keep: the cache has it all (removed while still locked)
                import shutil

                shutil.rmtree(run_dir, ignore_errors=True)
            lock.release()
            raise
        finally:
            cache.close()
        if self.hold_lock:
            result.lock = lock
        else:
            lock.release()
        return result

    def _locked(self, cfg, tasks, backend, identity, run_dir, cache, t0, t_data, t_load) -> RunResult:
        # pass 1: every request's key only (prompts are rendered again, a block at a time, in pass 2)
        keys = [w.key for block in self._blocks(tasks, backend, identity) for w in block]
        judged = "\n" + self._judges.fingerprint() if self._judges is not None else ""
        # what else decides the results (a spec task: its spec and data files) joins the digest
        declared = "".join(f"\ntask {t.name} {fp}" for t, _ in tasks if (fp := t.fingerprint()))
        # and the items themselves: a changed gold answer or group changes no request but the scores
        items = hashlib.sha256()
        for _, its in tasks:
            for it in its:
                items.update(it.model_dump_json().encode())
        declared += f"\nitems {items.hexdigest()}"
        digest = hashlib.sha256(("\n".join(keys) + judged + declared).encode()).hexdigest()
        finished = self._finished(run_dir, digest)
        if finished is not None:  # the same requests were all scored and aggregated before: nothing to do
            key = self._reuse_after(cfg, backend, identity)
            if key is not None:  # recognised at once next time
                with contextlib.suppress(OSError):
                    rundir.write_status(run_dir, reuse_key=key)
            t_end = time.perf_counter()
            timing = {
                **finished[1],
                "reused": True,
                "wall_s": t_end - t0,
                "first_wall_s": finished[1].get("wall_s"),
                "computed": 0,
                "cache_hits": 0,
                "model_load_s": t_load - t_data,
                "scoring_s": 0.0,
                "model_loaded": float(getattr(backend, "loaded", True)),
            }
            return RunResult(run_dir, finished[0], timing)
        # anything else in the directory belongs to another (or an unfinished) run: never mix two
        rundir.clear(run_dir)
        writer = self._writer = RunLogWriter(run_dir)
        writer.start(
            self._header(backend, tasks),
            started=time.time(),
            requests_digest=digest,
            pid=os.getpid(),
            reuse_key=None,
        )
        # the item snapshot: analyses read gold, groups and references from the run, not the dataset
        writer.write_items(
            [it for _, items in tasks for it in items], {t.name: t.reference_data() for t, _ in tasks}
        )
        n_unique = len(set(keys))
        todo_total = len(cache.missing(list(dict.fromkeys(keys))))
        self.state.todo = todo_total
        del keys

        # pass 2: compute, score and write one block at a time; keep only the scores
        scores: dict[tuple[int, str], list[Score]] = {}
        # (item, displayed order) per task x variant, for the answer-without-looking baselines
        orders: dict[tuple[int, str], list[tuple[Item, list[int]]]] = {}
        n_samples = done = 0
        t_score = 0.0
        if self.progress:
            self.progress("compute", 0, todo_total)
        writer.open_samples()
        if self._judges is not None:
            writer.open_judgements()
        for block in self._blocks(tasks, backend, identity):
            t_b = time.perf_counter()
            done = self._compute(block, backend, cache, identity, done, todo_total)
            t_score += time.perf_counter() - t_b
            for w in block:
                assert w.response is not None
                w.score = w.task.score(w.item, w.prompt, w.response)
                if w.response.fallback:
                    w.score.fallback = w.response.fallback
                scores.setdefault((w.task_index, w.prompt.variant.id), []).append(w.score)
                orders.setdefault((w.task_index, w.prompt.variant.id), []).append((w.item, w.prompt.order))
            if self._judges is not None:  # judged tasks: verdicts join the scores before they are written
                self._judges.judge_block(block, cache, writer, self.progress)
            for w in block:
                writer.add_sample(_sample_record(w))
            n_samples += len(block)
            self.state.samples = n_samples
        t_compute = time.perf_counter()
        results = self.aggregate(tasks, scores, identity, backend.chat_template_source, orders)
        t_end = time.perf_counter()
        stats = cache.stats()
        # a lazy backend loads its weights inside the first batch: count that as load, not scoring
        lazy_load = getattr(backend, "load_s", 0.0)
        timing = {
            "wall_s": t_end - t0,
            "data_s": t_data - t0,
            "model_load_s": t_load - t_data + lazy_load,
            "scoring_s": t_score - lazy_load,
            "post_s": t_end - t_compute,
            "samples": n_samples,
            "unique_requests": n_unique,
            "computed": stats["misses"],
            "cache_hits": stats["hits"],
            "samples_per_s": n_samples / max(t_score - lazy_load, 1e-9),
            "model_loaded": float(getattr(backend, "loaded", True)),
            "requests_digest": digest,
            **(self._judges.timing() if self._judges is not None else {}),
        }
        writer.finish(results, timing, ended=time.time(), reuse_key=self._reuse_after(cfg, backend, identity))
        return RunResult(run_dir, results, timing)

    def _reuse_after(self, cfg: RunConfig, backend: Backend, identity: dict) -> str | None:
        """The reuse key to record: only when nothing it digests changed while the run read its
        data (the key before the items were loaded is the key now)."""
        if self._judges is not None or self._reuse_before is None:
            return None
        key = reuse_key(cfg, backend, identity)
        return key if key == self._reuse_before else None

    def _blocks(self, tasks, backend: Backend, identity: dict) -> Iterator[list[Work]]:
        """Every (task, variant, item) as a rendered request, in blocks of whole items: a block holds
        all variants of its items (so a sweep's variants of one question share a batch and its prefix)
        and at most about ``block_size`` requests. Within a block the order is variant-major."""
        cfg = self.config
        per_block = max(1, cfg.block_size // max(1, len(cfg.variants)))
        for ti, (task, items) in enumerate(tasks):
            pool = task.fewshot_pool()
            mode = cfg.mode or task.default_mode
            for start in range(0, len(items), per_block):
                block: list[Work] = []
                for variant in cfg.variants:
                    for item in items[start : start + per_block]:
                        shots = [s for s in pool if s.id != item.id] if variant.few_shot else None
                        prompt = task.render(item, variant, mode, shots)
                        req = build_request(prompt, backend)
                        block.append(Work(task, item, prompt, req, req.key(identity), task_index=ti))
                yield block

    @staticmethod
    def _finished(run_dir: Path, digest: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(results, timing) of an earlier complete run with exactly these requests, else None.

        Only a ``complete`` status record for the same requests whose files still hash to what it
        recorded counts (see :mod:`culturelens.rundir`): a cut or edited file is recomputed.
        """
        if not rundir.is_complete(run_dir, digest):
            return None
        try:
            log = read_run(run_dir)
        except ValueError:
            return None
        return log.results, log.timing

    def _compute(
        self,
        works: Sequence[Work],
        backend: Backend,
        cache: ResponseCache,
        identity: dict,
        done: int = 0,
        total: int | None = None,
    ) -> int:
        """Fill every work's response from the cache or the backend; returns the running count of
        computed requests (``done`` plus this call's) for the progress bar."""
        by_key: dict[str, list[Work]] = {}
        for w in works:
            by_key.setdefault(w.key, []).append(w)
        keys = list(by_key)
        found = cache.get_many(keys)
        todo = [k for k in keys if k not in found]
        for k, resp in found.items():
            for w in by_key[k]:
                w.response = resp
        label = model_label(identity)
        # group by kind and sort by length so batches are homogeneous (prefix sharing, padding)
        todo.sort(key=lambda k: (by_key[k][0].request.kind, by_key[k][0].request.text))
        # a backend that answers many requests at once (an HTTP server) asks for batches of at least
        # ``min_batch``: its answers do not depend on how they are batched
        bs = max(1, self.config.batch_size, int(getattr(backend, "min_batch", 0) or 0))
        total = len(todo) if total is None else total
        for start in range(0, len(todo), bs):
            chunk = todo[start : start + bs]
            reqs = [by_key[k][0].request for k in chunk]
            try:
                resps = backend.run(reqs)
            except PartialBatchError as exc:  # keep every answer that did come back, then stop
                good = {
                    i: r
                    for i, r in exc.completed.items()
                    if 0 <= i < len(chunk) and not check_response(reqs[i], r)
                }
                cache.put_many((chunk[i], label, reqs[i].kind, r) for i, r in good.items())
                self.state.computed += len(good)
                raise BackendError(f"{exc} ({len(good)} answers of the failed batch were kept)") from None
            if len(resps) != len(reqs):
                raise BackendError(f"backend returned {len(resps)} answers for {len(reqs)} requests")
            bad = [
                (i, why)
                for i, (q, r) in enumerate(zip(reqs, resps, strict=True))
                if (why := check_response(q, r))
            ]
            ok = [
                (k, q, r)
                for i, (k, q, r) in enumerate(zip(chunk, reqs, resps, strict=True))
                if not any(i == b for b, _ in bad)
            ]
            cache.put_many((k, label, q.kind, r) for k, q, r in ok)
            self.state.computed += len(ok)
            if bad:
                i, why = bad[0]
                raise BackendError(
                    f"model {redact(str(identity.get('model')))} gave a malformed answer to a {reqs[i].kind} "
                    f"request ({why}); {len(bad)} of {len(reqs)} answers in the batch were malformed and not "
                    f"cached, {len(ok)} were kept"
                )
            for k, resp in zip(chunk, resps, strict=True):
                for w in by_key[k]:
                    w.response = resp
            done += len(chunk)
            if self.progress:
                self.progress("compute", done, total)
        return done

    def aggregate(
        self,
        tasks,
        scores: dict[tuple[int, str], list[Score]],
        identity: dict,
        chat_template_source: str,
        orders: dict[tuple[int, str], list[tuple[Item, list[int]]]] | None = None,
    ) -> dict[str, Any]:
        """``results.json``'s content from scores per (task index, variant id): each task's metrics
        with intervals and breakdowns per variant, its baselines (from ``orders``, the displayed
        order of each scored item) and, for judged tasks, the judges' reliability. Used by the run
        and by re-scoring a foreign log (:mod:`culturelens.interop.rescore`)."""
        cfg = self.config
        out: dict[str, Any] = {"model": identity, "chat_template": chat_template_source, "tasks": {}}
        for ti, (task, items) in enumerate(tasks):
            by_id = {it.id: it for it in items}
            per_variant: dict[str, Any] = {}
            modes: set[str] = set()
            for variant in cfg.variants:
                vs = scores.get((ti, variant.id), [])
                modes.update(s.mode.value for s in vs)
                units = task.unit_scores(by_id, vs)
                agg = aggregate_task(units, n_boot=cfg.n_boot, seed=cfg.seed, bounds=task.metric_bounds)
                agg["extra"] = task.extra_metrics(by_id, vs)
                agg["baselines"] = baselines(
                    (orders or {}).get((ti, variant.id), []),
                    all_of_group=task.unit_all_of_group,
                )
                agg["variant"] = variant.model_dump(mode="json")
                per_variant[variant.id] = agg
            primary = per_variant[cfg.variants[0].id]
            entry = {k: v for k, v in primary.items() if k != "variant"}
            reasons: dict[str, int] = {}
            for vs in (scores.get((ti, v.id), []) for v in cfg.variants):
                for s_ in vs:
                    if s_.fallback:
                        reasons[s_.fallback] = reasons.get(s_.fallback, 0) + 1
            if reasons:  # answers produced another way than the mode asks: never silent
                entry["fallbacks"] = {"n": sum(reasons.values()), "reasons": reasons}
            entry.update({"modes": sorted(modes), "items": len(items), "description": task.description})
            judge = self._judges.summary(ti) if self._judges is not None else None
            if judge is not None:  # who judged and how far the judged score can be trusted
                entry["judge"] = judge
            if len(cfg.variants) > 1:
                entry["variants"] = per_variant
            out["tasks"][task.name] = entry
        return out

    def _header(self, backend: Backend, tasks) -> dict[str, Any]:
        cfg = self.config
        import shlex

        argv = cfg.command or (sys.argv if sys.argv and "culturelens" in sys.argv[0] else None)
        return redact_obj(
            {
                "config": cfg.model_dump(mode="json"),
                "backend": backend.describe(),
                **({"judges": self._judges.describe()} if self._judges is not None else {}),
                "tasks": {t.name: {**t.info(), "items": len(items)} for t, items in tasks},
                "versions": package_versions(),
                "command": shlex.join(argv) if argv else None,
            }
        )
