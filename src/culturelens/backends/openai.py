"""Any OpenAI-compatible HTTP server (vLLM, llama.cpp server, SGLang, TGI, OpenAI...).

Spec: ``openai:MODEL@BASE_URL`` (``openai:llama3@http://localhost:8000/v1``); without ``@URL`` the
base URL comes from ``$OPENAI_BASE_URL`` or defaults to ``https://api.openai.com/v1``.

The API key is read from the environment at request time (``$OPENAI_API_KEY`` or the variable
named by option ``api_key_env``) and is never stored: the identity (cache key, config.json) is
the base URL and the model name only.

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
  ``/chat/completions`` with ``logprobs=true, top_logprobs=K``). A target matches a returned token
  whose text equals it after stripping whitespace ("A" and " A" are combined by log-sum-exp, as in
  the llama.cpp backend); a target absent from the top K gets a floor (option ``missing_logprob``;
  by default one nat below the smallest returned log-prob) and is listed in ``meta["missing"]``.
  When the server returns no log-probs at all the backend generates instead (``max_tokens`` of the
  request) and returns ``Response(text=...)``; ``scoring.score_choice`` parses such a response like
  a generation. ``meta["fallback"] == "generate"`` marks it.
* continuations -- ``/completions`` with ``echo=true, logprobs=0, max_tokens=1`` and one prompt per
  option (context + option); the option's tokens are found by ``text_offset``. Needs
  ``api="completions"`` (a chat endpoint cannot score raw text) and a server that echoes prompt
  log-probs (vLLM does); otherwise a BackendError says so.
* generate -- chat or completions, ``temperature`` from the request.

HTTP: httpx.AsyncClient, at most ``concurrency`` requests in flight, ``timeout`` seconds per
request, retries on 408/429/5xx and transport errors with exponential backoff and jitter (a
``Retry-After`` header wins), at most ``max_retries`` retries per request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import math
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx

from culturelens.backends.base import Backend, BackendError, logsumexp, plain_format, register
from culturelens.schema import Message, Request, Response

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_RETRY_STATUS = {408, 429}
_T = TypeVar("_T")


class HTTPStatusError(BackendError):
    """The server answered with an error status that is not retried (or retries ran out)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def parse_spec(spec: str) -> tuple[str, str]:
    """``MODEL@BASE_URL`` -> (model, base_url); the split is at the ``@`` before ``http(s)://``."""
    m = re.match(r"^(?P<model>.*?)@(?P<url>https?://.+)$", spec)
    if m:
        model, url = m.group("model"), m.group("url")
    else:
        model, url = spec, os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    if not model:
        raise BackendError(f"openai spec {spec!r} names no model: use openai:MODEL@BASE_URL")
    return model, url.rstrip("/")


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (a number or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
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
    match takes tokens that are a prefix of it and of no other target ("Ye" for "Yes"). Targets still
    missing get ``floor`` (default: one nat below the smallest returned log-prob) and are returned.
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
        out.append(logsumexp(vals) if vals else None)
    missing = [t for t, v in zip(targets, out, strict=True) if v is None]
    if missing and floor is None:
        floor = (min(lp for _, lp in top) - 1.0) if top else -100.0
    return [floor if v is None else v for v in out], missing  # type: ignore[misc]


@register
class OpenAIBackend(Backend):
    def __init__(
        self,
        spec: str = "",
        api: str = "chat",
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        api_key_env: str = "OPENAI_API_KEY",
        top_logprobs: int = 20,
        missing_logprob: float | None = None,
        prefix_mode: str = "continue",
        **_: Any,
    ):
        self.model, self.base_url = parse_spec(spec)
        if api not in ("chat", "completions"):
            raise BackendError(f"api must be 'chat' or 'completions', not {api!r}")
        if prefix_mode not in ("continue", "append", "drop"):
            raise BackendError(f"prefix_mode must be continue, append or drop, not {prefix_mode!r}")
        self.api = api
        self.prefix_mode = prefix_mode
        self.concurrency = max(1, int(concurrency))
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.api_key_env = api_key_env  # the variable's name, never its value
        self.top_logprobs = int(top_logprobs)
        self.missing_logprob = missing_logprob
        self.chat_template_source = "server" if api == "chat" else "plain"
        self.logprobs_supported: bool | None = None  # learnt from the first label answer
        self.stats = {"http_requests": 0, "retries": 0}

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

    # --- HTTP ------------------------------------------------------------------------------------------
    def _client(self) -> httpx.AsyncClient:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            limits=httpx.Limits(max_connections=self.concurrency),
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, 600.0)
        cap = min(self.backoff_max, self.backoff_base * 2**attempt)
        return cap / 2 + random.uniform(0, cap / 2)  # "equal jitter"

    async def _post(self, client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        attempt = 0
        while True:
            self.stats["http_requests"] += 1
            retry_after: float | None = None
            try:
                resp = await client.post(url, json=body)
            except httpx.TransportError as exc:  # connect / read errors and timeouts
                if attempt >= self.max_retries:
                    raise BackendError(
                        f"cannot reach {url}: {type(exc).__name__} {_one_line(str(exc), 120)}"
                        f" (after {attempt + 1} attempts)"
                    ) from None
            else:
                status = resp.status_code
                if status < 400:
                    try:
                        return resp.json()
                    except ValueError:
                        raise BackendError(f"{url} answered HTTP {status} with invalid JSON") from None
                detail = _one_line(resp.text)
                if status not in _RETRY_STATUS and status < 500:
                    raise HTTPStatusError(f"{url} answered HTTP {status}: {detail}", status)
                if attempt >= self.max_retries:
                    raise HTTPStatusError(
                        f"{url} answered HTTP {status} after {attempt + 1} attempts: {detail}", status
                    )
                retry_after = retry_after_seconds(resp.headers.get("retry-after"))
            self.stats["retries"] += 1
            await asyncio.sleep(self._delay(attempt, retry_after))
            attempt += 1

    def _gather(
        self, batch: Sequence[Request], fn: Callable[[httpx.AsyncClient, Request], Awaitable[_T]]
    ) -> list[_T]:
        async def main() -> list[_T]:
            sem = asyncio.Semaphore(self.concurrency)
            async with self._client() as client:

                async def one(req: Request) -> _T:
                    async with sem:
                        return await fn(client, req)

                return list(await asyncio.gather(*(one(r) for r in batch)))

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(main())
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from inside an event loop
            return pool.submit(asyncio.run, main()).result()

    # --- the three request kinds ---------------------------------------------------------------------
    def label_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        return self._gather(batch, self._labels_one)

    async def _labels_one(self, client: httpx.AsyncClient, req: Request) -> Response:
        if self.logprobs_supported is False:
            return await self._fallback(client, req)
        k = self.top_logprobs
        if self.api == "chat":
            body = {"model": self.model, **self._chat_payload(req.text), "max_tokens": 1, "temperature": 0}
            body.update(logprobs=True, top_logprobs=k)
            data = await self._post(client, "/chat/completions", body)
            top = _chat_top(data)
        else:
            body = {"model": self.model, "prompt": req.text, "max_tokens": 1, "temperature": 0, "logprobs": k}
            data = await self._post(client, "/completions", body)
            top = _completion_top(data)
        if not top:
            self.logprobs_supported = False
            return await self._fallback(client, req)
        self.logprobs_supported = True
        values, missing = match_targets(top, req.targets, self.missing_logprob)
        best = max(top, key=lambda p: p[1])
        meta: dict[str, Any] = {"top_token": best[0], "top_logprob": best[1], "logprob_source": self.api}
        if missing:
            meta["missing"] = missing
        return Response(logprobs=values, meta=meta)

    async def _fallback(self, client: httpx.AsyncClient, req: Request) -> Response:
        resp = await self._generate_one(client, req)
        resp.meta.update(fallback="generate", reason="server returned no log-probs")
        return resp

    def continuation_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        if self.api != "completions":
            raise BackendError(
                "cloze scoring needs raw-text log-probs: use the backend option api=completions "
                "with a server that supports echo + logprobs on /completions (e.g. vLLM)"
            )
        return self._gather(batch, self._continuations_one)

    async def _continuations_one(self, client: httpx.AsyncClient, req: Request) -> Response:
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
        hint = f"cloze needs a server with echo + logprobs on /completions; {self.base_url} "
        try:
            data = await self._post(client, "/completions", body)
        except HTTPStatusError as exc:
            if exc.status in (400, 404, 422, 501):
                raise BackendError(hint + f"refused it ({exc})") from None
            raise
        choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != len(prompts):
            raise BackendError(hint + f"returned {len(choices)} choices for {len(prompts)} prompts")
        lps, ns = [], []
        for prompt, choice in zip(prompts, choices, strict=True):
            lp = choice.get("logprobs") or {}
            tokens, token_lps = lp.get("tokens"), lp.get("token_logprobs")
            if not tokens or not token_lps:
                raise BackendError(hint + "returned no prompt log-probs")
            offsets = lp.get("text_offset")
            if not offsets or len(offsets) != len(tokens):
                offsets, pos = [], 0
                for tok in tokens:
                    offsets.append(pos)
                    pos += len(tok)
            ends = [*offsets[1:], offsets[-1] + len(tokens[-1])]
            start, stop = len(req.text), len(prompt)
            total, n = 0.0, 0
            for off, end, value in zip(offsets, ends, token_lps, strict=True):
                # continuation tokens (a token straddling the boundary counts as the option's)
                if off < stop and end > start and stop > start:
                    if value is None:
                        raise BackendError(hint + "returned a null log-prob inside the continuation")
                    total += float(value)
                    n += 1
            lps.append(total)
            ns.append(n)
        return Response(logprobs=lps, n_tokens=ns)

    def generate(self, batch: Sequence[Request]) -> list[Response]:
        return self._gather(batch, self._generate_one)

    async def _generate_one(self, client: httpx.AsyncClient, req: Request) -> Response:
        common = {"model": self.model, "max_tokens": req.max_tokens, "temperature": req.temperature}
        if self.api == "chat":
            data = await self._post(client, "/chat/completions", {**common, **self._chat_payload(req.text)})
            choice = (data.get("choices") or [{}])[0]
            text = (choice.get("message") or {}).get("content") or ""
        else:
            data = await self._post(client, "/completions", {**common, "prompt": req.text})
            choice = (data.get("choices") or [{}])[0]
            text = choice.get("text") or ""
        usage = data.get("usage") or {}
        n = usage.get("completion_tokens")
        return Response(text=text, n_tokens=[int(n)] if isinstance(n, int) else None)


def _finite(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _chat_top(data: dict[str, Any]) -> list[tuple[str, float]]:
    """Top log-probs of the first generated token of a chat completion ([] when absent)."""
    choice = (data.get("choices") or [{}])[0]
    content = (choice.get("logprobs") or {}).get("content") or []
    if not content:
        return []
    first = content[0]
    pairs = [(e.get("token", ""), _finite(e.get("logprob"))) for e in first.get("top_logprobs") or []]
    pairs.append((first.get("token", ""), _finite(first.get("logprob"))))
    return _dedupe(pairs)


def _completion_top(data: dict[str, Any]) -> list[tuple[str, float]]:
    """Top log-probs of the first generated token of a legacy completion ([] when absent)."""
    choice = (data.get("choices") or [{}])[0]
    lp = choice.get("logprobs") or {}
    tops = lp.get("top_logprobs") or []
    pairs: list[tuple[str, float | None]] = []
    if tops and isinstance(tops[0], dict):
        pairs.extend((tok, _finite(v)) for tok, v in tops[0].items())
    tokens, values = lp.get("tokens") or [], lp.get("token_logprobs") or []
    if tokens and values:
        pairs.append((tokens[0], _finite(values[0])))
    return _dedupe(pairs)


def _dedupe(pairs: Sequence[tuple[str, float | None]]) -> list[tuple[str, float]]:
    """The chosen token repeats inside the top list: keep each (text, log-prob) once. Two distinct
    tokens with the same text keep both entries (their log-probs differ) and are summed later."""
    out: list[tuple[str, float]] = []
    for tok, v in pairs:
        if v is not None and (tok, v) not in out:
            out.append((tok, v))
    return out
