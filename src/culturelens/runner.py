"""The pipeline driver: tasks -> items -> prompts -> requests -> (cache | backend) -> scores -> outputs.

Resume is a property of the cache: every computed batch is committed before the next one starts,
and outputs are rewritten from scratch (atomically) from the cache on every run, so a re-run after
a crash produces exactly the files an uninterrupted run produces.

Memory: items are loaded whole (a run validates everything before touching the model), but prompts,
requests and responses are streamed a block of items at a time; each block's samples go to disk as
soon as they are scored and only the compact scores stay for aggregation.
"""

from __future__ import annotations

import contextlib
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
from typing import Any

from pydantic import BaseModel, Field

from culturelens.aggregate import aggregate_task
from culturelens.backends.base import Backend, load_backend
from culturelens.cache import ResponseCache, model_label
from culturelens.schema import Item, Mode, Prompt, Request, Response, Score, Variant
from culturelens.tasks.base import Task, get_task

DEFAULT_CACHE = Path(
    os.environ.get("CULTURELENS_CACHE", Path.home() / ".cache" / "culturelens" / "responses.sqlite")
)


class RunConfig(BaseModel):
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
    seed: int = 0
    n_boot: int = 1000
    backend_options: dict[str, Any] = Field(default_factory=dict)
    task_options: dict[str, Any] = Field(default_factory=dict)

    def run_id(self, identity: dict[str, Any]) -> str:
        payload = self.model_dump(
            mode="json", exclude={"out", "runs_root", "cache", "batch_size", "block_size"}
        )
        payload["identity"] = identity
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]
        model = str(identity.get("model", "model")).split("/")[-1].replace(".gguf", "")
        model = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in model)[:40]
        return f"{model}__{'+'.join(self.tasks)[:40]}__{digest}"


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


ProgressFn = Callable[[str, int, int], None]


def build_request(prompt: Prompt, backend: Backend) -> Request:
    text = backend.format(prompt.messages, prompt.assistant_prefix)
    if prompt.mode is Mode.LETTER:
        return Request(kind="labels", text=text, targets=prompt.labels)
    if prompt.mode is Mode.CLOZE:
        sep = "" if (not text or text[-1].isspace()) else " "
        return Request(kind="continuations", text=text, targets=[sep + c for c in prompt.continuations])
    return Request(kind="generate", text=text, max_tokens=prompt.max_tokens)


def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("culturelens", "llama_cpp_python", "transformers", "torch", "httpx", "numpy", "pydantic"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg.replace("_", "-"))
    return out


def _atomic_write(path: Path, writer: Callable[[Any], None]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        writer(fh)
    os.replace(tmp, path)


def _sample_record(w: Work) -> dict[str, Any]:
    item, prompt, resp, score = w.item, w.prompt, w.response, w.score
    assert resp is not None and score is not None
    rec: dict[str, Any] = {
        "task": item.task,
        "item_id": item.id,
        "variant": prompt.variant.id,
        "mode": prompt.mode.value,
        "country": item.country.name if item.country else None,
        "iso2": item.country.iso2 if item.country else None,
        "region": item.country.region if item.country else None,
        "language": item.language,
        "topic": item.topic,
        "subset": item.subset,
        "group": item.group,
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
    return rec


class Runner:
    def __init__(self, config: RunConfig, backend: Backend | None = None, progress: ProgressFn | None = None):
        self.config = config
        self.backend = backend
        self.progress = progress

    def run(self) -> RunResult:
        cfg = self.config
        t0 = time.perf_counter()
        # load and validate every task before touching the model: a run never starts half-loaded
        tasks: list[tuple[Task, list[Item]]] = []
        for name in cfg.tasks:
            task = get_task(name, data_dir=cfg.data_dir, **cfg.task_options.get(name, {}))
            tasks.append((task, task.items(limit=cfg.limit, countries=cfg.countries)))
        t_data = time.perf_counter()
        backend = self.backend or load_backend(cfg.model, lazy=True, **cfg.backend_options)
        t_load = time.perf_counter()
        identity = backend.identity()
        run_dir = Path(cfg.out) if cfg.out else Path(cfg.runs_root) / cfg.run_id(identity)
        run_dir.mkdir(parents=True, exist_ok=True)
        cache = ResponseCache(cfg.cache or DEFAULT_CACHE)
        self._write_config(run_dir, backend, tasks)

        # pass 1: every request's key only (prompts are rendered again, a block at a time, in pass 2)
        keys = [w.key for block in self._blocks(tasks, backend, identity) for w in block]
        digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()
        finished = self._finished(run_dir, digest)
        if finished is not None:  # the same requests were all scored and aggregated before: nothing to do
            cache.close()
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
            if self.backend is None:
                backend.close()
            return RunResult(run_dir, finished[0], timing)
        n_unique = len(set(keys))
        todo_total = len(cache.missing(list(dict.fromkeys(keys))))
        del keys

        # pass 2: compute, score and write one block at a time; keep only the scores
        scores: dict[tuple[int, str], list[Score]] = {}
        n_samples = done = 0
        t_score = 0.0
        samples_tmp = run_dir / "samples.jsonl.tmp"
        if self.progress:
            self.progress("compute", 0, todo_total)
        with samples_tmp.open("w", encoding="utf-8") as fh:
            for block in self._blocks(tasks, backend, identity):
                t_b = time.perf_counter()
                done = self._compute(block, backend, cache, identity, done, todo_total)
                t_score += time.perf_counter() - t_b
                for w in block:
                    assert w.response is not None
                    w.score = w.task.score(w.item, w.prompt, w.response)
                    scores.setdefault((w.task_index, w.prompt.variant.id), []).append(w.score)
                    fh.write(json.dumps(_sample_record(w), ensure_ascii=False) + "\n")
                n_samples += len(block)
        t_compute = time.perf_counter()
        results = self._aggregate(tasks, scores, identity, backend)
        os.replace(samples_tmp, run_dir / "samples.jsonl")
        _atomic_write(
            run_dir / "results.json", lambda fh: json.dump(results, fh, indent=1, ensure_ascii=False)
        )
        t_end = time.perf_counter()
        stats = cache.stats()
        cache.close()
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
        }
        _atomic_write(run_dir / "timing.json", lambda fh: json.dump(timing, fh, indent=1))
        if self.backend is None:
            backend.close()
        return RunResult(run_dir, results, timing)

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

        ``timing.json`` is written last, so its digest marks a run whose samples and results are whole.
        """
        try:
            timing = json.loads((run_dir / "timing.json").read_text())
            if timing.get("requests_digest") != digest or not (run_dir / "samples.jsonl").exists():
                return None
            return json.loads((run_dir / "results.json").read_text()), timing
        except (OSError, ValueError):
            return None

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
        bs = max(1, self.config.batch_size)
        total = len(todo) if total is None else total
        for start in range(0, len(todo), bs):
            chunk = todo[start : start + bs]
            reqs = [by_key[k][0].request for k in chunk]
            resps = backend.run(reqs)
            cache.put_many((k, label, r.kind, resp) for k, r, resp in zip(chunk, reqs, resps, strict=True))
            for k, resp in zip(chunk, resps, strict=True):
                for w in by_key[k]:
                    w.response = resp
            done += len(chunk)
            if self.progress:
                self.progress("compute", done, total)
        return done

    def _aggregate(
        self, tasks, scores: dict[tuple[int, str], list[Score]], identity: dict, backend: Backend
    ) -> dict[str, Any]:
        cfg = self.config
        out: dict[str, Any] = {"model": identity, "chat_template": backend.chat_template_source, "tasks": {}}
        for ti, (task, items) in enumerate(tasks):
            by_id = {it.id: it for it in items}
            per_variant: dict[str, Any] = {}
            modes = set()
            for variant in cfg.variants:
                vs = scores.get((ti, variant.id), [])
                modes.update(s.mode.value for s in vs)
                units = task.unit_scores(by_id, vs)
                agg = aggregate_task(units, n_boot=cfg.n_boot, seed=cfg.seed)
                agg["extra"] = task.extra_metrics(by_id, vs)
                agg["variant"] = variant.model_dump(mode="json")
                per_variant[variant.id] = agg
            primary = per_variant[cfg.variants[0].id]
            entry = {k: v for k, v in primary.items() if k != "variant"}
            entry.update({"modes": sorted(modes), "items": len(items), "description": task.description})
            if len(cfg.variants) > 1:
                entry["variants"] = per_variant
            out["tasks"][task.name] = entry
        return out

    def _write_config(self, run_dir: Path, backend: Backend, tasks) -> None:
        cfg = self.config
        payload = {
            "config": cfg.model_dump(mode="json"),
            "backend": backend.describe(),
            "tasks": {t.name: {**t.info(), "items": len(items)} for t, items in tasks},
            "versions": package_versions(),
            "command": " ".join(sys.argv) if sys.argv and "culturelens" in sys.argv[0] else None,
        }
        _atomic_write(run_dir / "config.json", lambda fh: json.dump(payload, fh, indent=1, default=str))


def run(config: RunConfig | None = None, backend: Backend | None = None, **kwargs: Any) -> RunResult:
    """Python API mirror of ``culturelens run``."""
    cfg = config or RunConfig(**kwargs)
    return Runner(cfg, backend=backend).run()
