"""Secrets never leave the process: credentials in URLs and API keys are masked before anything is
written (config.json, the report, cache identities) or printed."""

from __future__ import annotations

import os
import re
from typing import Any

MASK = "***"
# scheme://user:password@host  or  scheme://token@host
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<cred>[^/@\s:]+(?::[^/@\s]*)?)@")
# bearer tokens and common API-key shapes (sk-..., hf_...)
_TOKENS = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}|\b(sk-[A-Za-z0-9_-]{6,}|hf_[A-Za-z0-9]{6,})\b")
#: environment variables whose values are secrets wherever they appear
SECRET_ENV = ("OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "WANDB_API_KEY", "CULTURELENS_API_KEY")


def redact(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """``text`` with URL credentials, bearer tokens, key-shaped strings and the given secrets masked
    (plus the values of :data:`SECRET_ENV` variables that are set)."""
    if not text:
        return text
    out = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    out = _TOKENS.sub(lambda m: (m.group(1) or "") + MASK, out)
    values = [*secrets, *(os.environ.get(name, "") for name in SECRET_ENV)]
    for value in sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True):
        out = out.replace(value, MASK)
    return out


def redact_obj(obj: Any) -> Any:
    """A copy of a JSON-like object with every string redacted."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact_obj(v) for v in obj]
    return obj
