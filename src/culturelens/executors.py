"""Where a run's requests are computed: in this process (``local``, the default) or spread over the
workers of a Ray cluster (``ray``, ``ray:ADDRESS``).

With ``--executor ray --workers N`` the run is the same run: the runner renders, keys, caches, scores
and writes exactly as in one process, and only the backend calls move. Each worker is a Ray actor
holding its own replica of the backend (one per GPU with ``--worker-gpus 1``), loaded from the run's
model spec; a batch of missing requests is cut into one contiguous slice per worker (the runner sorts
requests by kind and text, so a slice stays homogeneous) and the answers come back in order. So:

* results are identical to a single-process run (same requests, same cache keys, same scorer);
* the cache is the driver's: a worker never writes it, a cached request never reaches a worker, and a
  run started under Ray can be finished locally or the other way round;
* a replica must identify as the driver's model (same identity: file hash, revision...), or the run
  stops before anything is computed: a worker on a node with another file is an error, not a mix;
* a worker that fails part-way hands back the answers it has; every answer that came back from any
  worker is cached before the run stops (as a :class:`PartialBatchError` does in one process).

A pool of OpenAI-compatible endpoints (``openai:MODEL@URL1,URL2,...``) is shared out: worker i talks
to endpoints i, i+N, ... (every worker to one each when there are fewer endpoints than workers),
while the cache keys keep naming every endpoint, as they do in one process.

Ray is an optional dependency (``pip install 'culturelens[ray]'``). Without an address a local Ray
cluster is started for the run and stopped after it; ``ray:auto`` joins the cluster started with
``ray start``, ``ray:ray://HOST:10001`` a remote one (culturelens must be installed on its nodes).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from typing import Any

from culturelens.backends.base import Backend
from culturelens.errors import BackendError, PartialBatchError
from culturelens.schema import Message, Request, Response

__all__ = ["RayPool", "check", "parse_executor", "replica_specs", "wrap"]


def parse_executor(spec: str) -> tuple[str, str | None]:
    """``local`` | ``ray`` | ``ray:ADDRESS`` -> (kind, address); ValueError naming the accepted forms."""
    kind, sep, address = (spec or "local").partition(":")
    kind = kind.strip().lower()
    if kind == "local" and not sep:
        return "local", None
    if kind == "ray":
        address = address.strip()
        if sep and not address:
            raise ValueError(f"--executor {spec!r}: give a Ray address after 'ray:' (auto, ray://HOST:PORT)")
        return "ray", address or None
    raise ValueError(f"--executor {spec!r}: use local, ray or ray:ADDRESS (e.g. ray:auto)")


def check(executor: str, workers: int, worker_gpus: float) -> None:
    """ValueError (one line, naming the option) for an executor set-up that cannot run."""
    kind, _ = parse_executor(executor)
    if workers < 1:
        raise ValueError(f"--workers {workers}: give a positive number")
    if worker_gpus < 0:
        raise ValueError(f"--worker-gpus {worker_gpus}: give a number >= 0")
    if kind == "local" and (workers != 1 or worker_gpus):
        raise ValueError(f"--workers {workers} / --worker-gpus need --executor ray (not {executor!r})")


def replica_specs(spec: str, n: int) -> list[str]:
    """The model spec each of ``n`` workers loads: the run's spec, except what the backend shares out
    (:meth:`~culturelens.backends.base.Backend.replica_specs`: an openai endpoint pool is dealt out)."""
    from culturelens.backends.registry import backend_info, normalize_spec

    spec = normalize_spec(spec)
    prefix, _, rest = spec.partition(":")
    info = backend_info(prefix)
    if info is None:
        return [spec] * n
    return [f"{prefix}:{r}" for r in info.load().replica_specs(rest, n)]


def _comparable(identity: dict[str, Any], shared: bool) -> dict[str, Any]:
    """The identity a replica must match: all of it, less the endpoint list when endpoints are shared."""
    return {k: v for k, v in identity.items() if not (shared and k == "base_url")}


class _Replica:
    """One worker: a backend replica, loaded once, answering slices of batches (a Ray actor)."""

    def __init__(self, spec: str, options: dict[str, Any], batch_size: int) -> None:
        from culturelens.backends.registry import load_backend

        self.backend = load_backend(spec, lazy=False, **options)
        self.batch_size = max(1, batch_size, int(getattr(self.backend, "min_batch", 0) or 0))

    def identity(self) -> dict[str, Any]:
        return self.backend.identity()

    def run(self, reqs: list[Request]) -> tuple[list[Response], str | None, str | None]:
        """(answers in order, error message, error type): on an error the answers are those of the
        requests before the failure (a prefix), so the driver can cache them."""
        out: list[Response] = []
        for start in range(0, len(reqs), self.batch_size):
            chunk = reqs[start : start + self.batch_size]
            try:
                resps = self.backend.run(chunk)
            except PartialBatchError as exc:
                done = exc.completed
                k = 0
                while k in done:  # the answered prefix: positions after a gap are recomputed later
                    out.append(done[k])
                    k += 1
                return out, str(exc), type(exc).__name__
            except Exception as exc:  # noqa: BLE001 - reported to the driver with what is done
                return out, str(exc), type(exc).__name__
            out.extend(resps)
        return out, None, None

    def close(self) -> None:
        self.backend.close()


class RayPool(Backend):
    """A backend that answers through ``workers`` replicas on a Ray cluster; it identifies and
    formats as the driver's backend (``inner``), whose weights are never used to compute."""

    def __init__(
        self,
        inner: Backend,
        spec: str,
        options: dict[str, Any],
        workers: int,
        batch_size: int,
        address: str | None = None,
        worker_gpus: float = 0.0,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise BackendError(
                "--executor ray: Ray is not installed (pip install 'culturelens[ray]')"
            ) from None
        if workers < 1:
            raise BackendError(f"--workers {workers}: give a positive number of workers")
        self.inner = inner
        self.name = inner.name
        self.chat_template_source = inner.chat_template_source
        self.workers = workers
        self.batch_size = max(1, batch_size)
        self._ray = ray
        self._started = False  # this pool started the Ray runtime (and stops it)
        self._actors: list[Any] = []
        self.load_s = 0.0  # seconds spent starting Ray and loading the replicas
        self._setup = (spec, dict(options), address, float(worker_gpus))

    def _ensure(self) -> None:
        """Start the workers on the first computation (a run whose answers are all cached starts none)."""
        if self._actors:
            return
        t0 = time.perf_counter()
        try:
            self._start()
        finally:
            self.load_s = time.perf_counter() - t0  # counted as model load by the runner, not scoring

    def _start(self) -> None:
        ray = self._ray
        spec, options, address, worker_gpus = self._setup
        if not ray.is_initialized():
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                logging_level="ERROR",
            )
            self._started = True
        specs = replica_specs(spec, self.workers)
        shared = len(set(specs)) > 1
        actor = ray.remote(num_cpus=0 if worker_gpus else 1, num_gpus=worker_gpus or 0)(_Replica)
        self._actors = [actor.remote(s, options, self.batch_size) for s in specs]
        try:
            identities = ray.get([a.identity.remote() for a in self._actors])
        except Exception as exc:  # noqa: BLE001 - a replica that cannot load stops the run
            self.close()
            raise BackendError(f"--executor ray: a worker could not load the model: {_cause(exc)}") from None
        want = _comparable(self.inner.identity(), shared)
        for i, got in enumerate(identities):
            if _comparable(got, shared) != want:
                self.close()
                raise BackendError(
                    f"--executor ray: worker {i} loaded another model than this process "
                    f"(identity {got} != {self.inner.identity()}): every node must hold the same model"
                )

    @property
    def min_batch(self) -> int:
        """Enough requests per call for a few batches on every worker."""
        per = max(self.batch_size, int(getattr(self.inner, "min_batch", 0) or 0))
        return self.workers * per * 4

    @property
    def loaded(self) -> bool:
        return True

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def format(self, messages: Sequence[Message], assistant_prefix: str = "") -> str:
        return self.inner.format(messages, assistant_prefix)

    def format_closed(self, messages: Sequence[Message]) -> str | None:
        return self.inner.format_closed(messages)

    def __getattr__(self, name: str) -> Any:  # tokenizer, endpoints...: the driver's backend
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def label_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        return self.run(batch)

    def continuation_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        return self.run(batch)

    def generate(self, batch: Sequence[Request]) -> list[Response]:
        return self.run(batch)

    def run(self, batch: Sequence[Request]) -> list[Response]:
        """One contiguous slice per worker; answers in input order. When a worker fails, every answer
        that came back (from any worker) is handed to the runner in a :class:`PartialBatchError`."""
        n = len(batch)
        if not n:
            return []
        self._ensure()
        ray = self._ray
        per = math.ceil(n / self.workers)
        bounds = [(s, min(n, s + per)) for s in range(0, n, per)]
        futures = [self._actors[i].run.remote(list(batch[s:e])) for i, (s, e) in enumerate(bounds)]
        out: dict[int, Response] = {}
        errors: list[str] = []
        for (s, _e), fut in zip(bounds, futures, strict=True):
            try:
                resps, message, kind = ray.get(fut)
            except Exception as exc:  # noqa: BLE001 - a worker died: the others' answers are kept
                errors.append(f"a Ray worker failed: {_cause(exc)}")
                continue
            out.update({s + j: r for j, r in enumerate(resps)})
            if message is not None:
                errors.append(
                    f"{kind}: {message}" if kind not in ("BackendError", "PartialBatchError") else message
                )
        if errors:
            raise PartialBatchError(errors[0], out)
        return [out[i] for i in range(n)]

    def close(self) -> None:
        ray = self._ray
        for a in getattr(self, "_actors", []):  # a dead worker has nothing to release
            with contextlib.suppress(Exception):
                ray.get(a.close.remote(), timeout=30)
            with contextlib.suppress(Exception):
                ray.kill(a)
        self._actors = []
        if self._started:
            ray.shutdown()
            self._started = False


def _cause(exc: BaseException) -> str:
    """The message of the exception a Ray error wraps (one line)."""
    inner = getattr(exc, "cause", None) or exc
    text = str(inner).strip().splitlines()
    return text[-1] if text else type(inner).__name__


def wrap(
    backend: Backend,
    executor: str,
    spec: str,
    options: dict[str, Any],
    workers: int,
    batch_size: int,
    worker_gpus: float = 0.0,
) -> Backend:
    """``backend`` itself for the local executor; a :class:`RayPool` of ``workers`` replicas for Ray."""
    kind, address = parse_executor(executor)
    if kind == "local":
        return backend
    return RayPool(backend, spec, options, workers, batch_size, address, worker_gpus)
