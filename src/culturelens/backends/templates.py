"""Chat templates: Hugging Face style Jinja templates, compiled once, and the plain-text fallback."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from culturelens.errors import BackendError
from culturelens.schema import Message


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


@functools.lru_cache(maxsize=16)
def _compiled_template(template: str) -> Any:
    """Compiling a chat template costs ~10 ms; every prompt of a run shares one compiled copy."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(msg: str) -> None:
        raise BackendError(f"chat template error: {msg}")

    env.globals["raise_exception"] = raise_exception
    return env.from_string(template)


def render_chat_template(
    template: str,
    messages: Sequence[Message],
    bos: str = "",
    eos: str = "",
    add_generation_prompt: bool = True,
) -> str:
    """Render a Hugging Face style Jinja chat template, by default with the generation prompt opened."""
    return _compiled_template(template).render(
        messages=[m.model_dump() for m in messages],
        add_generation_prompt=add_generation_prompt,
        bos_token=bos,
        eos_token=eos,
    )
