"""Model cards and lazy loading: a fully cached re-run never loads the weights.

A backend that can save a card (identity, chat template, BOS/EOS) under a cheap
:meth:`~culturelens.backends.base.Backend.card_key` is returned as a :class:`LazyBackend` by
``load_backend(..., lazy=True)``; it loads the real backend only when something is not cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturelens.backends.base import Backend
from culturelens.backends.templates import plain_format, render_chat_template
from culturelens.errors import BackendError
from culturelens.schema import Message, Request, Response


def _cards_dir() -> Path:
    return Path(os.environ.get("CULTURELENS_HOME", Path.home() / ".cache" / "culturelens")) / "cards"


def _card_path(card_key: str) -> Path:
    return _cards_dir() / (hashlib.sha256(card_key.encode()).hexdigest()[:32] + ".json")


def save_card(card_key: str, card: dict[str, Any]) -> None:
    """Persist what identifies a model and formats its prompts (identity, chat template, BOS/EOS)."""
    try:
        path = _card_path(card_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(card))
        os.replace(tmp, path)
    except OSError:
        pass


def load_card(card_key: str) -> dict[str, Any] | None:
    try:
        return json.loads(_card_path(card_key).read_text())
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
            from culturelens.backends.registry import load_backend

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

    def format_closed(self, messages: Sequence[Message]) -> str | None:
        template = self.card.get("template")
        if not template:
            return None
        return render_chat_template(
            template,
            messages,
            self.card.get("bos", ""),
            self.card.get("eos", ""),
            add_generation_prompt=False,
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
