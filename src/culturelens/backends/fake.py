"""A deterministic fake backend for tests and dry runs (``fake:first``, ``fake:hash``, ``fake:last``)."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from typing import Any

from culturelens.backends.base import Backend, BackendError
from culturelens.backends.registry import register_backend
from culturelens.backends.templates import plain_format
from culturelens.schema import Message, Request, Response


def _u(*parts: str) -> float:
    h = hashlib.sha256("\x00".join(parts).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


@register_backend("fake", usage="fake:first|last|hash", hidden=True)
class FakeBackend(Backend):
    """Policies: ``first`` prefers the first target, ``last`` the last, ``hash`` is pseudo-random per prompt."""

    chat_template_source = "plain"

    def __init__(
        self,
        spec: str = "hash",
        generate_text: str | None = None,
        delay: float = 0.0,
        fail_on: str | None = None,
    ):
        """``delay``: seconds to wait per batch (to test interrupts and kills mid-run); ``fail_on``: a
        batch holding a request whose text contains this string fails whole (to test lost work)."""
        self.policy = spec or "hash"
        self.generate_text = generate_text
        self.delay = float(delay)
        self.fail_on = fail_on
        self.calls: list[int] = []  # batch sizes, for tests

    def _check(self, batch: Sequence[Request]) -> None:
        self.calls.append(len(batch))
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on is not None and any(self.fail_on in r.text for r in batch):
            raise BackendError(f"fake backend told to fail on {self.fail_on!r}")

    def identity(self) -> dict[str, Any]:
        return {"backend": "fake", "model": f"fake-{self.policy}"}

    def format(self, messages: Sequence[Message], assistant_prefix: str = "") -> str:
        return plain_format(messages, assistant_prefix)

    def _scores(self, req: Request) -> list[float]:
        n = len(req.targets)
        if self.policy == "first":
            raw = [2.0 if i == 0 else -1.0 - 0.1 * i for i in range(n)]
        elif self.policy == "last":
            raw = [2.0 if i == n - 1 else -1.0 - 0.1 * i for i in range(n)]
        else:
            raw = [3 * _u(req.text, t) for t in req.targets]
        z = math.log(sum(math.exp(r) for r in raw) + 1.0)  # leave some mass off the labels
        return [r - z for r in raw]

    def label_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        self._check(batch)
        return [Response(logprobs=self._scores(r)) for r in batch]

    def continuation_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        self._check(batch)
        out = []
        for r in batch:
            lps = [s * max(1, len(t) // 4) for s, t in zip(self._scores(r), r.targets, strict=True)]
            out.append(Response(logprobs=lps, n_tokens=[max(1, len(t) // 4) for t in r.targets]))
        return out

    def generate(self, batch: Sequence[Request]) -> list[Response]:
        self._check(batch)
        if self.generate_text is not None:
            return [Response(text=self.generate_text) for _ in batch]
        text = {"first": "A", "last": "D"}.get(self.policy)
        return [Response(text=text or "ABCD"[int(_u(r.text) * 4)]) for r in batch]
