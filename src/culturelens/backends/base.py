"""Stage 4: the backend interface. A backend turns formatted requests into responses.

A new backend is one module in ``culturelens.backends`` that defines a :class:`Backend`
subclass and registers it under a prefix with
:func:`~culturelens.backends.registry.register_backend` (``llamacpp``, ``hf``, ``openai``...);
``--model PREFIX:SPEC`` selects it. The package by job:

* ``base``: this interface, its errors and small helpers for implementations;
* ``registry``: prefixes, discovery (built-ins and entry points), :func:`load_backend`;
* ``templates``: chat templates; ``files``: model file hashes; ``embedded``: the bundled models;
* ``cards``: saved model cards and :class:`LazyBackend` (a cached re-run loads no weights).

Names that lived here before the split are still importable from this module.
"""

from __future__ import annotations

import importlib
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from culturelens.errors import BackendError, NativeCrashError, PartialBatchError
from culturelens.schema import Message, Request, Response

__all__ = ["Backend", "BackendError", "NativeCrashError", "PartialBatchError", "logsumexp", "warn"]

#: names moved to the modules of this package by job: still importable from here
_MOVED = {
    "load_backend": "registry",
    "check_options": "registry",
    "register_backend": "registry",
    "file_sha256": "files",
    "EMBEDDED_MODELS": "embedded",
    "embedded_model_path": "embedded",
    "plain_format": "templates",
    "render_chat_template": "templates",
    "save_card": "cards",
    "load_card": "cards",
    "LazyBackend": "cards",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(f"culturelens.backends.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

    def format_closed(self, messages: Sequence[Message]) -> str | None:
        """The conversation under the chat template with no turn opened after it (its last message
        closed as the template closes a turn), or None where the template is not visible here (plain
        text, a chat server). Cloze continuations marked ``Prompt.close_turn`` are scored from it."""
        return None

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
    def replica_specs(cls, spec: str, n: int) -> list[str]:
        """The spec (after the prefix) each of ``n`` replicas loads (:mod:`culturelens.executors`):
        the same model everywhere, unless the backend shares something out (an endpoint pool)."""
        return [spec] * n

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
