"""Any OpenAI-compatible HTTP server (vLLM, llama.cpp server, SGLang, TGI, OpenAI...).

Spec: ``openai:MODEL@BASE_URL`` (``openai:llama3@http://localhost:8000/v1``); without ``@URL`` the
base URL comes from ``$OPENAI_BASE_URL`` or defaults to ``https://api.openai.com/v1``. Several
endpoints serving one model (replicas) are given comma-separated, ``openai:MODEL@URL1,URL2``: the
requests in flight are spread over them (each endpoint gets an equal share of the ``concurrency``
slots, and a slot takes the next request as soon as its answer is in, so a faster endpoint answers
more). The identity then names every endpoint (sorted), so a cache entry never depends on which
replica answered; one endpoint keeps the identity it always had. The base URL
must be ``http(s)://HOST[:PORT][/PATH]`` (no query or fragment); anything after the last ``@`` that is
not such a URL is an error, so a model name containing ``@`` needs an explicit URL.

Secrets: the API key is read from the environment at request time (``$OPENAI_API_KEY`` or the
variable named by option ``api_key_env``) and is never stored. Credentials in the base URL
(``https://user:pass@host/v1``) are sent as HTTP basic auth (unless an API key is set) but never
appear in :meth:`OpenAIBackend.identity` (config.json, the report, the cache key: scheme, host, port
and path only, so another password gives the same identity), in an error message or in a repr.
Error bodies are redacted (the key, ``Bearer ...`` and ``sk-...`` tokens become ``***``) before
they reach a message. A hosted API (``api.openai.com`` and a few other known hosts) needs a key: if
the variable is unset, the first request that would be sent fails with ``OPENAI_API_KEY is not
set``; a local server needs none.

What ``Request.text`` holds (so the response cache key covers exactly what is sent):

* ``api="chat"`` (default): a JSON object ``{"messages": [...]}`` -- the chat messages after the
  assistant prefix was applied -- plus ``"continue_final_message": true`` when the prefix is sent as
  an open assistant turn. The server applies the model's chat template. ``prefix_mode`` decides
  what happens to an assistant prefix such as "Answer:": ``continue`` (default) sends it as a final
  assistant message with vLLM's ``continue_final_message`` / ``add_generation_prompt`` extension,
  ``append`` adds it as the last line of the user message (works with any server, OpenAI included),
  ``drop`` leaves it out.
* ``api="completions"``: plain text (``plain_format``), sent as ``prompt`` to ``/completions``.

Request kinds:

* labels -- one token with the top log-probs (``/completions`` with ``logprobs=K`` or
  ``/chat/completions`` with ``logprobs=true, top_logprobs=K``); see :func:`match_targets` for how
  targets are matched and what a target absent from the top K gets. Option ``logprobs`` says what
  happens when the server returns no log-probs:

  - ``auto`` (default): decided once per backend instance, before any concurrency, under a lock:
    the first label request of the first batch is sent alone. An answer with log-probs settles it
    (supported); a well-formed answer without log-probs is asked once more and, if it again has
    none, settles it the other way (unsupported). From then on every label request is treated the
    same way, whatever the timing: when supported, an answer without log-probs is malformed (retried,
    then an error); when unsupported, every label request is answered by generation (``max_tokens``
    of the request) and marked ``Response.fallback = "generate: server returned no log-probs"``
    (``scoring.score_choice`` parses the text; the runner counts the fallbacks).
  - ``require``: an answer without log-probs is malformed (retried, then an error).
  - ``off``: every label request is answered by generation, marked ``"generate: logprobs=off"``.

  If none of a request's targets is among the returned top K, the answer says nothing about the
  options: that request is answered by generation and marked
  ``"generate: no option label among the top-K log-probs"``.
* continuations -- ``/completions`` with ``echo=true, logprobs=0, max_tokens=1`` and one prompt per
  option (context + option); the option's tokens are found by ``text_offset``. Needs
  ``api="completions"`` (a chat endpoint cannot score raw text) and a server that echoes prompt
  log-probs (vLLM does); otherwise a BackendError says so.
* generate -- chat or completions, ``temperature`` from the request.

Malformed answers (a body that is not a JSON object, ``choices`` empty or ``[null]``, missing
fields, ``logprobs.content`` of the wrong type, NaN or positive log-probs, an ``error`` object in a
200 answer...) are never returned as if they were the kind asked: each is asked again (at most
``malformed_retries`` times, with backoff), then the batch fails with a one-line BackendError naming
the model, the URL and what was wrong.

HTTP: aiohttp when it is installed (about ten times less CPU per request than httpx, which matters
from a few hundred requests a second on), else httpx; option ``http_client`` picks one
(``auto`` | ``aiohttp`` | ``httpx``); answers do not depend on it. At most ``concurrency`` requests in flight (each batch runs ``concurrency``
workers that take the next request as one finishes; workers share a client per
:data:`_LANES_PER_CLIENT` of them, because httpx's pool scans every connection on every request and
one pool of hundreds of connections costs more CPU than the requests), ``timeout`` seconds per
request (a deadline on the whole answer, so a server trickling bytes cannot stall a run), retries on
408/429/5xx, transport errors and timeouts with exponential backoff and jitter (a ``Retry-After``
header wins, capped at ``backoff_max``), at most ``max_retries`` retries per request. When a request
fails for good the requests of its batch not yet sent are not sent, and the answers that did come
back are returned in a :class:`~culturelens.backends.base.PartialBatchError` so the runner caches them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import email.utils
import functools
import json
import math
import os
import random
import re
import ssl
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from culturelens.backends.base import Backend, BackendError, PartialBatchError, logsumexp
from culturelens.backends.registry import register_backend
from culturelens.backends.templates import plain_format
from culturelens.redact import redact
from culturelens.schema import Message, Request, Response

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_RETRY_STATUS = {408, 429}
#: hosted APIs that always need a key (suffix match on the host name)
_KEYED_HOSTS = (
    "api.openai.com",
    ".openai.azure.com",
    "api.groq.com",
    "api.together.xyz",
    "openrouter.ai",
    "api.mistral.ai",
    "api.deepseek.com",
    "api.fireworks.ai",
    "generativelanguage.googleapis.com",
)
FALLBACK_NO_LOGPROBS = "generate: server returned no log-probs"
FALLBACK_OFF = "generate: logprobs=off"
FALLBACK_NOT_IN_TOP = "generate: no option label among the top-K log-probs"
_LOGPROB_TOLERANCE = 1e-6  # rounding: a log-prob up to this far above 0 is read as 0
_T = TypeVar("_T")


class HTTPStatusError(BackendError):
    """The server answered with an error status that is not retried (or retries ran out)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class MalformedAnswer(Exception):
    """An answer that is not what was asked; the message says what is wrong (retried, then fatal)."""


class _Stopped(Exception):
    """Another request of the batch failed for good: this one ends without asking (again)."""


@dataclass(frozen=True)
class BaseURL:
    """A validated base URL. ``public`` has no credentials; they are kept out of every repr."""

    public: str  # scheme://host[:port][/path], lower-case scheme and host, no trailing slash
    host: str
    user: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)


#: workers (requests in flight) per HTTP client; see the module docstring
_LANES_PER_CLIENT = 16
#: event loops and HTTP clients a forked child inherited from its parent: kept alive, never touched
_INHERITED: list[Any] = []
#: backends with a running loop, closed at exit (while their loop's daemon thread can still run)
_LIVE: weakref.WeakSet[OpenAIBackend] = weakref.WeakSet()


@atexit.register
def _close_live() -> None:
    for backend in list(_LIVE):
        with contextlib.suppress(Exception):
            backend.close()


_NEXT_URL = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")


def split_urls(url: str) -> list[str]:
    """``URL1,URL2`` -> its URLs (split only before a ``scheme://``, so a comma inside one URL stays)."""
    return [u.strip() for u in _NEXT_URL.split(url)]


def _split_spec(spec: str) -> tuple[str, str, str]:
    """``MODEL@BASE_URL[,BASE_URL...]`` -> (model, raw url(s), where the url came from)."""
    m = re.match(r"^(?P<model>.*?)@(?P<url>[A-Za-z][A-Za-z0-9+.-]*://.*)$", spec, re.S)
    if m:
        model, url, source = m.group("model"), m.group("url"), "spec"
    elif "@" in spec:
        tail = spec.rpartition("@")[2]
        raise BackendError(
            f"openai spec: {redact(tail)!r} after '@' is not a base URL; use openai:MODEL@http(s)://HOST[:PORT]/v1"
            " (a model name containing '@' needs an explicit URL)"
        )
    elif os.environ.get("OPENAI_BASE_URL"):
        model, url, source = spec, os.environ["OPENAI_BASE_URL"], "OPENAI_BASE_URL"
    else:
        model, url, source = spec, DEFAULT_BASE_URL, "default"
    if not model.strip():
        raise BackendError("openai spec names no model: use openai:MODEL@BASE_URL")
    return model, url, source


def parse_base_url(url: str, source: str = "spec") -> BaseURL:
    """Validate ``url`` (``http(s)://HOST[:PORT][/PATH]``) and split off its credentials."""
    where = "$OPENAI_BASE_URL" if source == "OPENAI_BASE_URL" else "base URL"
    shown = redact(url.strip())

    def bad(why: str) -> BackendError:
        return BackendError(
            f"{where} {shown!r} {why}; expected http(s)://HOST[:PORT][/PATH], e.g. http://localhost:8000/v1"
        )

    url = url.strip()
    if any(ch.isspace() for ch in url):
        raise bad("contains whitespace")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise bad(f"is malformed ({redact(str(exc))})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise bad(f"has scheme {scheme + '://' if scheme else 'none'}, not http:// or https://")
    if not host:
        raise bad("names no host")
    if parts.query or parts.fragment:
        raise bad("has a query or fragment")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    public = f"{scheme}://{netloc}{parts.path.rstrip('/')}"
    return BaseURL(public=public, host=host, user=parts.username or None, password=parts.password or None)


def parse_base_urls(url: str, source: str = "spec") -> list[BaseURL]:
    """One or more comma-separated base URLs (:func:`parse_base_url` each); a URL listed twice is an error."""
    urls = [parse_base_url(u, source) for u in split_urls(url)]
    seen: set[str] = set()
    for u in urls:
        if u.public in seen:
            raise BackendError(f"base URL {u.public} is listed twice: give each endpoint once")
        seen.add(u.public)
    return urls


def endpoints_label(urls: Sequence[BaseURL]) -> str:
    """The identity's ``base_url``: the one URL, or every endpoint sorted and comma-joined."""
    return urls[0].public if len(urls) == 1 else ",".join(sorted(u.public for u in urls))


def parse_spec(spec: str) -> tuple[str, str]:
    """``MODEL@BASE_URL`` -> (model, public base URL(s) without credentials); BackendError if malformed."""
    model, url, source = _split_spec(spec)
    return model, endpoints_label(parse_base_urls(url, source))


def needs_key(host: str) -> bool:
    """Whether ``host`` is a hosted API that always needs an API key."""
    host = host.lower().rstrip(".")
    return any(host == h.lstrip(".") or (h.startswith(".") and host.endswith(h)) for h in _KEYED_HOSTS)


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (a number or an HTTP date), or None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def match_targets(
    top: Sequence[tuple[str, float]], targets: Sequence[str], floor: float | None = None
) -> tuple[list[float], list[str]]:
    """Map a top-K list of (token text, log-prob) to per-target log-probs.

    Exact matches after stripping whitespace are combined by log-sum-exp. A target with no exact
    match takes tokens that are a prefix of it and of no other target ("Ye" for "Yes").

    A target still missing is not in the top K, so its log-prob is unknown but bounded: the list
    holds the K most likely tokens, so the target's is at most the smallest returned value. Missing
    targets get that upper bound (one float step below it, so a returned target always ranks above a
    missing one and the chosen option is exact whenever one target was returned), or ``floor`` when
    the caller gives one (option ``missing_logprob``); they are returned so the caller records them.
    When no target at all was returned the values say nothing about the options (the backend then
    answers that request by generation instead, marked as a fallback).
    """
    out: list[float | None] = []
    for t in targets:
        key = t.strip()
        vals = [lp for tok, lp in top if tok.strip() == key]
        if not vals:
            vals = [
                lp
                for tok, lp in top
                if tok.strip()
                and key.startswith(tok.strip())
                and not any(o.strip().startswith(tok.strip()) for o in targets if o.strip() != key)
            ]
        out.append(min(0.0, logsumexp(vals)) if vals else None)
    missing = [t for t, v in zip(targets, out, strict=True) if v is None]
    if missing and floor is None:
        floor = missing_bound(top)
    return [floor if v is None else v for v in out], missing  # type: ignore[misc]


def missing_bound(top: Sequence[tuple[str, float]]) -> float:
    """Upper bound on the log-prob of a token outside ``top`` (see :func:`match_targets`)."""
    if not top:
        return -100.0
    return math.nextafter(min(lp for _, lp in top), -math.inf)


# --- answer parsing: every function raises MalformedAnswer on anything unexpected ------------------
def _logprob(value: Any, where: str) -> float:
    """A log-prob from an answer: a finite number <= 0 (rounding tolerated); -inf is returned as is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedAnswer(f"{where} is {_one_line(json.dumps(value), 40)}, not a number")
    v = float(value)
    if math.isnan(v):
        raise MalformedAnswer(f"{where} is NaN")
    if v > _LOGPROB_TOLERANCE:
        raise MalformedAnswer(f"{where} is {v:g} (a log-probability cannot be positive)")
    return min(v, 0.0)


def _first_choice(data: Any) -> dict[str, Any]:
    if isinstance(data, list):
        raise MalformedAnswer("the body is a JSON list, not an object")
    if not isinstance(data, dict):
        raise MalformedAnswer(f"the body is a JSON {type(data).__name__}, not an object")
    if data.get("error") is not None:
        raise MalformedAnswer(f"the body carries an error: {_one_line(json.dumps(data['error']), 160)}")
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise MalformedAnswer(
            "no 'choices' list" if choices is None else f"'choices' is a {type(choices).__name__}"
        )
    if not choices:
        raise MalformedAnswer("'choices' is empty")
    first = min(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
    if not isinstance(first, dict):
        raise MalformedAnswer(f"choices[0] is {_one_line(json.dumps(first), 40)}, not an object")
    return first


def _top_pairs(entries: Any, where: str) -> list[tuple[str, float]]:
    """(token, log-prob) pairs from a chat ``top_logprobs`` list."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise MalformedAnswer(f"{where} is a {type(entries).__name__}, not a list")
    out = []
    for j, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("token"), str):
            raise MalformedAnswer(f"{where}[{j}] has no token")
        out.append((e["token"], _logprob(e.get("logprob"), f"{where}[{j}].logprob")))
    return out


def chat_top(data: Any) -> list[tuple[str, float]] | None:
    """Top log-probs of the first generated token of a chat completion; None when the (otherwise
    well-formed) answer carries no log-probs."""
    choice = _first_choice(data)
    lp = choice.get("logprobs")
    if lp is None or (isinstance(lp, dict) and lp.get("content") is None) or lp == {}:
        _chat_message_text(choice)  # a well-formed answer without log-probs still has a message
        return None
    if not isinstance(lp, dict):
        raise MalformedAnswer(f"'logprobs' is a {type(lp).__name__}, not an object")
    content = lp.get("content")
    if not isinstance(content, list):
        raise MalformedAnswer(f"'logprobs.content' is a {type(content).__name__}, not a list")
    if not content:
        _chat_message_text(choice)
        return None
    first = content[0]
    if not isinstance(first, dict) or not isinstance(first.get("token"), str):
        raise MalformedAnswer("'logprobs.content[0]' has no token")
    pairs = _top_pairs(first.get("top_logprobs"), "logprobs.content[0].top_logprobs")
    pairs.append((first["token"], _logprob(first.get("logprob"), "logprobs.content[0].logprob")))
    return _usable(pairs)


def completion_top(data: Any) -> list[tuple[str, float]] | None:
    """Top log-probs of the first generated token of a legacy completion; None when absent."""
    choice = _first_choice(data)
    lp = choice.get("logprobs")
    if lp is None or lp == {}:
        _completion_text(choice)
        return None
    if not isinstance(lp, dict):
        raise MalformedAnswer(f"'logprobs' is a {type(lp).__name__}, not an object")
    tops, tokens, values = lp.get("top_logprobs"), lp.get("tokens"), lp.get("token_logprobs")
    if tops is None and tokens is None and values is None:
        _completion_text(choice)
        return None
    pairs: list[tuple[str, float]] = []
    if tops is not None:
        if not isinstance(tops, list) or (tops and not isinstance(tops[0], dict | None)):
            raise MalformedAnswer("'logprobs.top_logprobs' is not a list of objects")
        if tops and tops[0]:
            for tok, v in tops[0].items():
                pairs.append((str(tok), _logprob(v, f"logprobs.top_logprobs[0][{tok!r}]")))
    if tokens is not None or values is not None:
        if not isinstance(tokens, list) or not isinstance(values, list) or len(tokens) != len(values):
            raise MalformedAnswer(
                "'logprobs.tokens' and 'logprobs.token_logprobs' are not lists of one length"
            )
        if tokens:
            if not isinstance(tokens[0], str):
                raise MalformedAnswer("'logprobs.tokens[0]' is not a string")
            pairs.append((tokens[0], _logprob(values[0], "logprobs.token_logprobs[0]")))
    if not pairs:
        _completion_text(choice)
        return None
    return _usable(pairs)


def _usable(pairs: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Drop impossible tokens (-inf) and repeats; an answer whose tokens are all impossible is malformed."""
    out = _dedupe([(t, v) for t, v in pairs if v != -math.inf])
    if not out:
        raise MalformedAnswer("every returned log-prob is -inf")
    return out


def _chat_message_text(choice: dict[str, Any]) -> str:
    msg = choice.get("message")
    if not isinstance(msg, dict):
        raise MalformedAnswer("choices[0] has no 'message' object")
    content = msg.get("content")
    if content is None and isinstance(choice.get("finish_reason"), str):
        return ""  # a complete answer with no text (e.g. every token spent on reasoning)
    if not isinstance(content, str):
        raise MalformedAnswer("choices[0].message has no 'content' string")
    return content


def _completion_text(choice: dict[str, Any]) -> str:
    text = choice.get("text")
    if not isinstance(text, str):
        raise MalformedAnswer("choices[0] has no 'text' string")
    return text


def chat_text(data: Any) -> str:
    return _chat_message_text(_first_choice(data))


def completion_text(data: Any) -> str:
    return _completion_text(_first_choice(data))


def completion_tokens(data: Any) -> list[int] | None:
    usage = data.get("usage") if isinstance(data, dict) else None
    n = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return [n] if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else None


def echo_logprobs(data: Any, text: str, prompts: Sequence[str]) -> tuple[list[float], list[int]]:
    """Summed log-prob and token count of each continuation from an ``echo`` answer."""
    _first_choice(data)  # the body's shape (raises with the right words)
    choices = data["choices"]
    if len(choices) != len(prompts):
        raise MalformedAnswer(f"{len(choices)} choices for {len(prompts)} prompts")
    if not all(isinstance(c, dict) for c in choices):
        raise MalformedAnswer("a choice is not an object")
    indices = [c.get("index", i) for i, c in enumerate(choices)]
    if sorted(indices) != list(range(len(prompts))):
        raise MalformedAnswer(f"choice indices {indices} are not 0..{len(prompts) - 1}")
    lps, ns = [], []
    for i, prompt in enumerate(prompts):
        choice = choices[indices.index(i)]
        lp = choice.get("logprobs")
        if not isinstance(lp, dict) or not lp.get("tokens") or not lp.get("token_logprobs"):
            raise MalformedAnswer("no prompt log-probs (the server does not echo them)")
        tokens, values = lp["tokens"], lp["token_logprobs"]
        if (
            not isinstance(tokens, list)
            or not isinstance(values, list)
            or len(tokens) != len(values)
            or not all(isinstance(t, str) for t in tokens)
        ):
            raise MalformedAnswer("'tokens' and 'token_logprobs' are not lists of one length")
        offsets = lp.get("text_offset")
        if (
            not isinstance(offsets, list)
            or len(offsets) != len(tokens)
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            offsets, pos = [], 0
            for tok in tokens:
                offsets.append(pos)
                pos += len(tok)
        ends = [*offsets[1:], offsets[-1] + len(tokens[-1])]
        start, stop = len(text), len(prompt)
        total, n = 0.0, 0
        for j, (off, end, value) in enumerate(zip(offsets, ends, values, strict=True)):
            # continuation tokens (a token straddling the boundary counts as the option's)
            if off < stop and end > start and stop > start:
                if value is None:
                    raise MalformedAnswer(f"a null log-prob inside continuation {i}")
                v = _logprob(value, f"token_logprobs[{j}] of continuation {i}")
                if v == -math.inf:
                    raise MalformedAnswer(f"token_logprobs[{j}] of continuation {i} is -inf")
                total += v
                n += 1
        if stop > start and n == 0:
            raise MalformedAnswer(f"no token of continuation {i} in the echoed prompt (offsets do not match)")
        lps.append(total)
        ns.append(n)
    return lps, ns


def _guard(parse: Callable[[Any], _T]) -> Callable[[Any], _T]:
    """``parse`` with any type surprise in the answer reported as a malformed answer."""

    def safe(data: Any) -> _T:
        try:
            return parse(data)
        except MalformedAnswer:
            raise
        except (TypeError, KeyError, IndexError, AttributeError, ValueError) as exc:
            raise MalformedAnswer(
                f"unexpected shape ({type(exc).__name__}: {_one_line(str(exc), 80)})"
            ) from None

    return safe


class _NoAnswer(Exception):
    """The request got no answer (refused, reset, a truncated body...): retried. The message names
    the client library's exception."""


class _ClientFailure(Exception):
    """The client library failed in another way (decoding, protocol...): not retried."""


@dataclass
class _Answer:
    status: int
    headers: Any  # case-insensitive mapping
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def _body(payload: dict[str, Any]) -> bytes:
    """The JSON request body (as httpx's ``json=`` writes it)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


class _HttpxClient:
    def __init__(self, headers: dict[str, str], timeout: float, n: int):
        self.timeout = timeout
        self.client = httpx.AsyncClient(
            headers=headers,
            verify=_ssl_context(),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            # every connection is kept alive between requests (httpx keeps 20 by default: more
            # requests in flight than that would each open a new connection)
            limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
            follow_redirects=False,
        )

    async def post(self, url: str, data: bytes) -> _Answer:
        try:  # a deadline on the whole answer (httpx's timeouts are per read)
            r = await asyncio.wait_for(self.client.post(url, content=data), self.timeout)
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.TransportError as exc:  # connect / read errors
            raise _NoAnswer(f"{type(exc).__name__} {exc}") from None
        except httpx.HTTPError as exc:  # anything else httpx raises (decoding, protocol...)
            raise _ClientFailure(f"{type(exc).__name__} {exc}") from None
        return _Answer(r.status_code, r.headers, r.content)

    async def aclose(self) -> None:
        await self.client.aclose()


class _AiohttpClient:
    def __init__(self, headers: dict[str, str], timeout: float, n: int, url: str = ""):
        import aiohttp

        self._aiohttp = aiohttp
        # the proxy from the environment ($HTTPS_PROXY, $NO_PROXY...), as httpx reads it - looked up
        # once here: aiohttp's trust_env looks it up in a thread for every request
        self.proxy = _env_proxy(url)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=n, limit_per_host=n, ssl=_ssl_context()),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 10.0)),
        )

    async def post(self, url: str, data: bytes) -> _Answer:
        """(aiohttp's ``total`` timeout is a deadline on the whole answer, body included)"""
        aiohttp = self._aiohttp
        try:
            async with self.session.post(url, data=data, allow_redirects=False, proxy=self.proxy) as r:
                return _Answer(r.status, r.headers, await r.read())
        except TimeoutError:
            raise
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise _NoAnswer(f"{type(exc).__name__} {exc}") from None
        except aiohttp.ClientError as exc:
            raise _ClientFailure(f"{type(exc).__name__} {exc}") from None

    async def aclose(self) -> None:
        await self.session.close()


def _env_proxy(url: str) -> str | None:
    import urllib.request

    parts = urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _aiohttp_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("aiohttp") is not None


@dataclass
class _Session:
    """One worker of a batch: its HTTP client, its endpoint, and the batch's flag that stops the other
    requests after a failure."""

    client: _HttpxClient | _AiohttpClient
    stop: asyncio.Event
    base_url: str = ""  # the endpoint this worker sends to (public form, no credentials)


def _option(name: str, value: Any, conv: Callable[[Any], _T], check: Callable[[_T], bool], want: str) -> _T:
    try:
        out = conv(value)
    except (TypeError, ValueError):
        out = None
    if out is None or not check(out):
        raise BackendError(f"openai option {name}={value!r}: expected {want}")
    return out


@register_backend("openai", usage="openai:MODEL@BASE_URL", extra="openai")
class OpenAIBackend(Backend):
    def __init__(
        self,
        spec: str = "",
        api: str = "chat",
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 5,
        malformed_retries: int = 2,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        api_key_env: str = "OPENAI_API_KEY",
        top_logprobs: int = 20,
        missing_logprob: float | None = None,
        prefix_mode: str = "continue",
        logprobs: str = "auto",
        http_client: str = "auto",
    ):
        model, url, source = _split_spec(spec)
        self.model = model
        self._urls = parse_base_urls(url, source)
        self._url = self._urls[0]
        self.base_url = endpoints_label(self._urls)  # never holds credentials
        if api not in ("chat", "completions"):
            raise BackendError(f"api must be 'chat' or 'completions', not {api!r}")
        if prefix_mode not in ("continue", "append", "drop"):
            raise BackendError(f"prefix_mode must be continue, append or drop, not {prefix_mode!r}")
        if logprobs not in ("auto", "require", "off"):
            raise BackendError(f"logprobs must be auto, require or off, not {logprobs!r}")
        if http_client not in ("auto", "aiohttp", "httpx"):
            raise BackendError(f"http_client must be auto, aiohttp or httpx, not {http_client!r}")
        if http_client == "aiohttp" and not _aiohttp_installed():
            raise BackendError("http_client=aiohttp: aiohttp is not installed (pip install aiohttp)")
        if http_client == "auto":
            http_client = "aiohttp" if _aiohttp_installed() else "httpx"
        self.http_client = http_client
        if not isinstance(api_key_env, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", api_key_env):
            raise BackendError(f"api_key_env must name an environment variable, not {api_key_env!r}")
        positive = "a positive number"
        self.api = api
        self.prefix_mode = prefix_mode
        self.logprobs = logprobs
        self.concurrency = _option("concurrency", concurrency, int, lambda v: v >= 1, "an integer >= 1")
        self.timeout = _option("timeout", timeout, float, lambda v: 0 < v < math.inf, positive)
        self.max_retries = _option("max_retries", max_retries, int, lambda v: 0 <= v <= 50, "0..50")
        self.malformed_retries = _option(
            "malformed_retries", malformed_retries, int, lambda v: 0 <= v <= 20, "0..20"
        )
        self.backoff_base = _option(
            "backoff_base", backoff_base, float, lambda v: 0 <= v < math.inf, positive
        )
        self.backoff_max = _option(
            "backoff_max", backoff_max, float, lambda v: 0 <= v <= 600, "0..600 seconds"
        )
        self.api_key_env = api_key_env  # the variable's name, never its value
        self.top_logprobs = _option("top_logprobs", top_logprobs, int, lambda v: 0 <= v <= 100, "0..100")
        self.missing_logprob = (
            None
            if missing_logprob is None
            else _option(
                "missing_logprob", missing_logprob, float, lambda v: -math.inf < v <= 0, "a number <= 0"
            )
        )
        self.chat_template_source = "server" if api == "chat" else "plain"
        #: whether the server returns log-probs (decided once, see the module docstring)
        self._lp_supported: bool | None = {"require": True, "off": False}.get(logprobs)
        self._decide_lock = threading.Lock()
        self.stats = {"http_requests": 0, "retries": 0, "malformed": 0}
        # one event loop in a thread of its own for the backend's life, and HTTP clients kept on it
        # across batches: connections stay open from one batch to the next (see _run_async)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_pid = 0  # the process that started the loop (a forked child starts its own)
        self._clients: dict[tuple[str, int, str, float, str], _HttpxClient | _AiohttpClient] = {}
        self._loop_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r}, api={self.api!r})"

    @property
    def logprobs_supported(self) -> bool | None:
        """True / False once decided (``logprobs`` option or the first label answer), else None."""
        return self._lp_supported

    # --- identity and formatting ---------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        return {"backend": "openai", "model": self.model, "base_url": self.base_url}

    def format(self, messages: Sequence[Message], assistant_prefix: str = "") -> str:
        if self.api == "completions":
            return plain_format(messages, assistant_prefix)
        msgs = [m.model_dump() for m in messages]
        payload: dict[str, Any] = {"messages": msgs}
        if assistant_prefix and self.prefix_mode == "continue":
            msgs.append({"role": "assistant", "content": assistant_prefix})
            payload["continue_final_message"] = True
        elif assistant_prefix and self.prefix_mode == "append":
            last = next((m for m in reversed(msgs) if m["role"] == "user"), None)
            if last is None:
                msgs.append({"role": "user", "content": assistant_prefix})
            else:
                last["content"] = f"{last['content']}\n\n{assistant_prefix}"
        return json.dumps(payload, ensure_ascii=False, sort_keys=True)

    def _chat_payload(self, text: str) -> dict[str, Any]:
        """The chat body fields carried by ``Request.text`` (plain text is sent as one user message)."""
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
            return {"messages": [{"role": "user", "content": text}]}
        body: dict[str, Any] = {"messages": payload["messages"]}
        if payload.get("continue_final_message"):
            body.update(continue_final_message=True, add_generation_prompt=False)
        return body

    # --- secrets -------------------------------------------------------------------------------------
    def _key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def _clean(self, text: str, limit: int = 200) -> str:
        """One line, with the key, URL credentials and token-shaped strings masked."""
        candidates = [self._key()] + [s for u in self._urls for s in (u.password, u.user)]
        secrets = [s for s in candidates if s]
        return _one_line(redact(str(text), secrets), limit)

    def _key_hint(self) -> str:
        return (
            f"{self.api_key_env} is not set: export {self.api_key_env}=YOUR_KEY"
            f" (or --model-opt api_key_env=NAME to read the key from another variable)"
        )

    def _require_key(self) -> None:
        if any(needs_key(u.host) for u in self._urls) and not self._key():
            raise BackendError(f"{self._key_hint()}; {self.base_url} needs an API key (model {self.model!r})")

    # --- HTTP ------------------------------------------------------------------------------------------
    def _client(
        self, url: BaseURL | None = None, connections: int | None = None
    ) -> _HttpxClient | _AiohttpClient:
        """A client for endpoint ``url`` (the first by default) with a pool of ``connections``."""
        url = url or self._url
        n = connections or self.concurrency
        headers = {"Content-Type": "application/json"}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        elif url.user or url.password:  # HTTP basic auth, as httpx.BasicAuth writes it
            import base64

            pair = f"{url.user or ''}:{url.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        if self.http_client == "aiohttp":
            return _AiohttpClient(headers, self.timeout, n, url.public)
        return _HttpxClient(headers, self.timeout, n)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max)
        cap = min(self.backoff_max, self.backoff_base * 2**attempt)
        return cap / 2 + random.uniform(0, cap / 2)  # "equal jitter"

    async def _pause(self, sess: _Session, attempt: int, retry_after: float | None = None) -> None:
        """Sleep before retry ``attempt + 1``; ends early (``_Stopped``) when the batch has failed."""
        if sess.stop.is_set():
            raise _Stopped
        self.stats["retries"] += 1
        try:
            await asyncio.wait_for(sess.stop.wait(), self._delay(attempt, retry_after))
        except TimeoutError:
            return
        raise _Stopped

    async def _post(self, sess: _Session, path: str, body: dict[str, Any]) -> Any:
        """POST with retries on transport errors, timeouts, 408/429/5xx; returns the decoded JSON
        (raises MalformedAnswer for a 2xx body that is not JSON)."""
        url = f"{sess.base_url or self._url.public}{path}"
        data = _body(body)
        attempt = 0
        while True:
            if sess.stop.is_set():
                raise _Stopped
            self.stats["http_requests"] += 1
            retry_after: float | None = None
            try:
                resp = await sess.client.post(url, data)
            except (TimeoutError, _NoAnswer) as exc:  # connect / read errors, timeouts
                if attempt >= self.max_retries:
                    what = (
                        f"no answer within {self.timeout:g} s"
                        if isinstance(exc, TimeoutError)
                        else self._clean(str(exc), 120)
                    )
                    raise BackendError(
                        f"cannot reach {url} (model {self.model!r}): {what} (after {attempt + 1} attempts)"
                    ) from None
            except _ClientFailure as exc:
                raise BackendError(f"{url} (model {self.model!r}): {self._clean(str(exc), 120)}") from None
            else:
                status = resp.status
                if 200 <= status < 300:
                    try:
                        return json.loads(resp.content)
                    except (ValueError, UnicodeDecodeError):
                        raise MalformedAnswer(
                            f"HTTP {status} with a body that is not JSON: {self._clean(resp.text, 80) or '(empty)'}"
                        ) from None
                detail = self._clean(resp.text)
                if 300 <= status < 400 or status < 200:
                    where = self._clean(resp.headers.get("location", ""), 120)
                    raise HTTPStatusError(
                        f"{url} answered HTTP {status}{f' (redirect to {where})' if where else ''}: "
                        "give the server's final base URL",
                        status,
                    )
                if status in (401, 403):
                    hint = f"; {self._key_hint()}" if not self._key() else f" (check {self.api_key_env})"
                    raise HTTPStatusError(f"{url} answered HTTP {status}: {detail}{hint}", status)
                if status not in _RETRY_STATUS and status < 500:
                    raise HTTPStatusError(
                        f"{url} answered HTTP {status} (model {self.model!r}): {detail}", status
                    )
                if attempt >= self.max_retries:
                    raise HTTPStatusError(
                        f"{url} answered HTTP {status} after {attempt + 1} attempts (model {self.model!r}): {detail}",
                        status,
                    )
                retry_after = retry_after_seconds(resp.headers.get("retry-after"))
            await self._pause(sess, attempt, retry_after)
            attempt += 1

    async def _ask(
        self, sess: _Session, path: str, body: dict[str, Any], parse: Callable[[Any], _T], kind: str
    ) -> _T:
        """POST and parse; a malformed answer is asked again (``malformed_retries``), then fatal."""
        parse = _guard(parse)
        attempts = self.malformed_retries + 1
        why = ""
        for attempt in range(attempts):
            try:
                return parse(await self._post(sess, path, body))
            except MalformedAnswer as exc:
                why = self._clean(str(exc))
            self.stats["malformed"] += 1
            if attempt + 1 < attempts:
                await self._pause(sess, attempt)
        raise BackendError(
            f"model {self.model!r} at {sess.base_url or self.base_url} gave a malformed answer to a {kind} request "
            f"({attempts} attempt{'s' if attempts > 1 else ''}): {why}"
        )

    def _gather(
        self, batch: Sequence[Request], fn: Callable[[_Session, Request], Awaitable[Response]]
    ) -> list[Response]:
        """Run ``fn`` over the batch, at most ``concurrency`` at a time. When a request fails for good
        the others stop (no new request is sent) and the answers that came back are raised in a
        :class:`PartialBatchError` (positions as in ``batch``)."""
        if not batch:
            return []
        self._require_key()
        done: dict[int, Response] = {}
        errors: list[BaseException] = []

        async def main() -> None:
            stop = asyncio.Event()
            sessions = self._sessions(min(self.concurrency, len(batch)), stop)
            todo = iter(enumerate(batch))  # shared by the workers: each takes the next request

            async def worker(sess: _Session) -> None:
                for i, req in todo:
                    if stop.is_set():
                        return
                    try:
                        done[i] = await fn(sess, req)
                    except _Stopped:
                        pass
                    except BackendError as exc:
                        errors.append(exc)
                        stop.set()
                    except Exception as exc:  # noqa: BLE001 - never a traceback for a bad answer
                        errors.append(
                            BackendError(
                                f"model {self.model!r} at {sess.base_url}: {type(exc).__name__} "
                                f"{self._clean(str(exc), 160)}"
                            )
                        )
                        stop.set()

            await asyncio.gather(*(worker(s) for s in sessions))

        self._run_async(main())
        if errors:
            if done:
                raise PartialBatchError(str(errors[0]), dict(done))
            raise errors[0]
        return [done[i] for i in range(len(batch))]

    def _sessions(self, workers: int, stop: asyncio.Event) -> list[_Session]:
        """``workers`` workers, dealt round-robin over the endpoints; the workers of one endpoint
        share a client per :data:`_LANES_PER_CLIENT` (its pool holds exactly their connections)."""
        per_url: list[list[int]] = [list(range(e, workers, len(self._urls))) for e in range(len(self._urls))]
        lanes: dict[int, _Session] = {}
        for e, ws in enumerate(per_url):
            url = self._urls[e]
            for start in range(0, len(ws), _LANES_PER_CLIENT):
                group = ws[start : start + _LANES_PER_CLIENT]
                client = self._kept_client(url, start // _LANES_PER_CLIENT)
                for w in group:
                    lanes[w] = _Session(client, stop, url.public)
        return [lanes[w] for w in range(workers)]

    def _kept_client(self, url: BaseURL, slot: int) -> _HttpxClient | _AiohttpClient:
        """The client of lane group ``slot`` of endpoint ``url``, made once (on the backend's loop) and
        kept with its open connections; a changed API key, timeout or client kind gets new clients."""
        key = (url.public, slot, self._key() or "", self.timeout, self.http_client)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._client(url, _LANES_PER_CLIENT)
        return client

    def _run_async(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` on the backend's own event loop (started on first use, in a daemon thread) and
        wait for it; an interrupt cancels it. Works from inside a running event loop too."""
        if self._loop is not None and self._loop_pid != os.getpid():
            self._forget_loop()  # a forked child: the loop's thread did not come along
        with self._loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="culturelens-openai", daemon=True)
                thread.start()
                self._loop, self._loop_thread, self._loop_pid = loop, thread, os.getpid()
                _LIVE.add(self)
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            fut.result()
        except BaseException:
            fut.cancel()
            raise

    def _forget_loop(self) -> None:
        """Set the parent's loop and clients aside in a forked child; the child gets its own on its next
        batch. They are kept referenced, never collected: the child shares the parent's epoll instance,
        and closing a connection from the child would unregister the parent's socket from it (the
        parent's next answer would then never arrive)."""
        _INHERITED.append((self._loop, self._loop_thread, self._clients))
        self._loop, self._loop_thread, self._clients = None, None, {}
        self._loop_lock = threading.Lock()

    def __del__(self) -> None:
        if sys.is_finalizing():  # the loop's daemon thread cannot run any more: never wait for it
            return
        with contextlib.suppress(Exception):
            self.close()

    def close(self) -> None:
        """Close the kept HTTP clients and stop the backend's event loop (a later batch starts anew)."""
        if getattr(self, "_loop", None) is not None and self._loop_pid != os.getpid():
            self._forget_loop()  # a forked child never closes its parent's clients
            return
        if threading.current_thread() is getattr(self, "_loop_thread", None):  # collected on its own loop
            loop = self._loop
            if loop is not None:
                loop.call_soon(loop.stop)
            return
        with self._loop_lock:
            loop, thread, clients = self._loop, self._loop_thread, list(self._clients.values())
            self._loop, self._loop_thread, self._clients = None, None, {}
        if loop is None:
            return

        async def shut() -> None:
            for c in clients:
                with contextlib.suppress(Exception):
                    await c.aclose()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shut(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=30)
        if not loop.is_running():
            loop.close()

    @property
    def min_batch(self) -> int:
        """The runner hands this backend at least this many requests at a time: a batch ends when its
        slowest answer is in, so it holds several waves of ``concurrency`` requests."""
        return 8 * self.concurrency

    @classmethod
    def replica_specs(cls, spec: str, n: int) -> list[str]:
        """An endpoint pool is dealt out: replica i gets endpoints i, i+n, ... (one each, cycling, when
        there are fewer endpoints than replicas); credentials in the URLs stay with their endpoint."""
        model, url, _ = _split_spec(spec)
        urls = split_urls(url)
        if len(urls) < 2:
            return [spec] * n
        if len(urls) <= n:
            return [f"{model}@{urls[i % len(urls)]}" for i in range(n)]
        return [f"{model}@{','.join(urls[i::n])}" for i in range(n)]

    @property
    def endpoints(self) -> list[str]:
        """The endpoints requests are spread over (public form, in the order given)."""
        return [u.public for u in self._urls]

    # --- the three request kinds ---------------------------------------------------------------------
    def label_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        if not batch:
            return []
        first: list[Response] = []
        with self._decide_lock:
            if self._lp_supported is None:  # undecided: the first request decides, alone
                first = self._gather(batch[:1], self._labels_one)
                batch = batch[1:]
        if not first:
            return self._gather(batch, self._labels_one)
        try:
            return first + self._gather(batch, self._labels_one)
        except PartialBatchError as exc:
            raise PartialBatchError(
                str(exc), {0: first[0], **{i + 1: r for i, r in exc.completed.items()}}
            ) from None
        except BackendError as exc:
            raise PartialBatchError(str(exc), {0: first[0]}) from None

    def _labels_request(self, req: Request) -> tuple[str, dict[str, Any], Callable[[Any], Any]]:
        k = self.top_logprobs
        if self.api == "chat":
            body = {"model": self.model, **self._chat_payload(req.text), "max_tokens": 1, "temperature": 0}
            body.update(logprobs=True, top_logprobs=k)
            return "/chat/completions", body, chat_top
        body = {"model": self.model, "prompt": req.text, "max_tokens": 1, "temperature": 0, "logprobs": k}
        return "/completions", body, completion_top

    async def _labels_one(self, sess: _Session, req: Request) -> Response:
        if self._lp_supported is False:
            reason = FALLBACK_OFF if self.logprobs == "off" else FALLBACK_NO_LOGPROBS
            return await self._generated(sess, req, reason)
        path, body, parse = self._labels_request(req)
        if self._lp_supported is None:  # the deciding request (sent alone, under the decision lock)
            top = await self._ask(sess, path, body, parse, "labels")
            if top is None:  # one answer without log-probs could be a glitch: ask once more
                top = await self._ask(sess, path, body, parse, "labels")
            self._lp_supported = top is not None
            if top is None:
                return await self._generated(sess, req, FALLBACK_NO_LOGPROBS)
        else:
            why = "logprobs=require" if self.logprobs == "require" else "this server returned them before"

            def strict(data: Any) -> list[tuple[str, float]]:
                got = parse(data)
                if got is None:
                    raise MalformedAnswer(f"no log-probs in the answer ({why})")
                return got

            top = await self._ask(sess, path, body, strict, "labels")
        values, missing = match_targets(top, req.targets, self.missing_logprob)
        if req.targets and len(missing) == len(req.targets):
            return await self._generated(sess, req, FALLBACK_NOT_IN_TOP)
        best = max(top, key=lambda p: p[1])
        meta: dict[str, Any] = {"top_token": best[0], "top_logprob": best[1], "logprob_source": self.api}
        if missing:
            meta["missing"] = missing
            meta["missing_rule"] = (
                "missing_logprob option"
                if self.missing_logprob is not None
                else "upper bound: smallest top-K log-prob"
            )
        return Response(logprobs=values, meta=meta)

    async def _generated(self, sess: _Session, req: Request, reason: str) -> Response:
        """A label request answered by generation: a deliberate fallback, marked as such."""
        resp = await self._generate_one(sess, req)
        resp.fallback = reason
        resp.meta.update(fallback="generate", reason=reason)
        return resp

    def continuation_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        if self.api != "completions":
            raise BackendError(
                "cloze scoring needs raw-text log-probs: use the backend option api=completions "
                "with a server that supports echo + logprobs on /completions (e.g. vLLM)"
            )
        return self._gather(batch, self._continuations_one)

    async def _continuations_one(self, sess: _Session, req: Request) -> Response:
        if not req.targets:
            return Response(logprobs=[], n_tokens=[])
        prompts = [req.text + t for t in req.targets]
        body = {
            "model": self.model,
            "prompt": prompts,
            "max_tokens": 1,  # some servers reject 0; the generated token is dropped by offset below
            "temperature": 0,
            "echo": True,
            "logprobs": 0,
        }
        hint = f"cloze needs a server with echo + logprobs on /completions; {sess.base_url or self.base_url} "
        try:
            lps, ns = await self._ask(
                sess, "/completions", body, lambda d: echo_logprobs(d, req.text, prompts), "continuations"
            )
        except HTTPStatusError as exc:
            if exc.status in (400, 404, 422, 501):
                raise BackendError(hint + f"refused it ({exc})") from None
            raise
        except BackendError as exc:
            if "echo" in str(exc):
                raise BackendError(f"{exc}; {hint}does not seem to") from None
            raise
        return Response(logprobs=lps, n_tokens=ns)

    def generate(self, batch: Sequence[Request]) -> list[Response]:
        return self._gather(batch, self._generate_one)

    async def _generate_one(self, sess: _Session, req: Request) -> Response:
        common = {"model": self.model, "max_tokens": req.max_tokens, "temperature": req.temperature}
        if self.api == "chat":
            body = {**common, **self._chat_payload(req.text)}
            path, parse = "/chat/completions", chat_text
        else:
            body = {**common, "prompt": req.text}
            path, parse = "/completions", completion_text
        text, n = await self._ask(sess, path, body, lambda d: (parse(d), completion_tokens(d)), "generate")
        return Response(text=text, n_tokens=n)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context for every client (building one costs about 0.1 s, once per batch otherwise)."""
    return httpx.create_ssl_context()


def _dedupe(pairs: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """The chosen token repeats inside the top list: keep each (text, log-prob) once. Two distinct
    tokens with the same text keep both entries (their log-probs differ) and are summed later."""
    out: list[tuple[str, float]] = []
    for tok, v in pairs:
        if (tok, v) not in out:
            out.append((tok, v))
    return out
