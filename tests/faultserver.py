"""A small scriptable OpenAI-compatible server for tests (stdlib only, 127.0.0.1, ephemeral port).

It answers ``/v1/chat/completions`` and ``/v1/completions`` the way vLLM does (top log-probs of the
first token, echoed prompt log-probs, generated text) and injects faults on request:

* ``faults``: one fault per incoming request, in arrival order (then ``default`` for the rest);
  an int ``N`` is ``"http:N"``.
* ``default``: the fault for every request once ``faults`` is used up (``"ok"``: a normal answer).
* ``fail_after``: answer that many requests normally, then ``fail_status`` for every later one.

Fault names (see :data:`FAULTS`): ``ok``, ``http:CODE`` or ``http:CODE:RETRY_AFTER`` (429 says
``Retry-After: 1`` unless told), ``delay:SECONDS`` (then a normal answer), ``reset`` (close the
connection without answering), ``no_logprobs`` / ``no_logprobs_key`` / ``empty_content`` (a
well-formed answer without log-probs), ``nan_logprobs``, ``positive_logprobs``, ``choices_empty``,
``choices_null``, ``list_body``, ``non_json``, ``empty_body``, ``content_string``
(``logprobs.content`` is a string), ``missing_message``, ``error_body`` (200 with an ``error``
object), ``no_labels_in_top``, ``partial_labels_in_top`` (one label that is not the top answer is
left out), ``echo_key`` (401 whose body echoes the Authorization header and the bare key), ``bad_echo`` (echoed
prompt log-probs that are positive).

Normal answers depend only on the prompt (a hash ranks the labels A-D and Yes/No/Neither), so any
two servers give the same answer to the same prompt and a faulted run can be compared item by item
with a clean one. The generated text is the prompt's top label, so a generation fallback picks the
same option as the log-probs do. Every server answers at most ``max_requests`` requests (then 503,
counted in ``over_limit``); delays end early when the server closes.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = (
    "ok",
    "http",
    "delay",
    "reset",
    "no_logprobs",
    "no_logprobs_key",
    "empty_content",
    "nan_logprobs",
    "positive_logprobs",
    "choices_empty",
    "choices_null",
    "list_body",
    "non_json",
    "empty_body",
    "content_string",
    "missing_message",
    "error_body",
    "no_labels_in_top",
    "partial_labels_in_top",
    "echo_key",
    "bad_echo",
)
MAX_DELAY = 10.0  # no scripted delay sleeps longer
LETTERS = ["A", "B", "C", "D"]
WORDS = ["Yes", "No", "Neither"]
FILLER = ["The", "**", "I", "Answer", "\n", "It"]


def token_lp(tok: str) -> float:
    """Deterministic per-token log-prob reported when echoing prompts."""
    return -0.25 * len(tok.strip()) - 0.5


def tokens(text: str) -> list[str]:
    """Whitespace-attached tokens: 'a bc d' -> ['a', ' bc', ' d']."""
    out: list[str] = []
    for i, part in enumerate(text.split(" ")):
        out.append(part if i == 0 else " " + part)
    return [t for t in out if t]


def _ranked(key: str, names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: hashlib.sha256(f"{key}\0{n}".encode()).hexdigest())


def prompt_top(key: str) -> list[tuple[str, float]]:
    """The prompt's top tokens, most likely first: labels ranked by a hash of the prompt, each as
    " X" (70%) and "X" (30%) of its probability; probabilities sum to less than 1."""
    order = [*_ranked(key, LETTERS), *_ranked(key, WORDS), *FILLER]
    out: list[tuple[str, float]] = []
    for r, name in enumerate(order):
        p = 0.45 * 0.5**r
        out += [(" " + name, math.log(0.7 * p)), (name, math.log(0.3 * p))]
    return sorted(out, key=lambda t: -t[1])


def prompt_answer(key: str) -> str:
    """The generated answer: the top label of the prompt's kind (a word for yes/no/neither items)."""
    pool = WORDS if "Neither" in key else LETTERS
    return _ranked(key, pool)[0]


class _QuietServer(ThreadingHTTPServer):
    """A client that gave up (timeout) and closed its end is expected here, not an error to print."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FaultServer:
    """See the module docstring. ``top`` / ``text`` fix the answer for every prompt instead."""

    def __init__(
        self,
        *,
        top: list[tuple[str, float]] | None = None,
        text: str | None = None,
        max_requests: int = 400,
    ) -> None:
        self.faults: list[str | int] = []
        self.default: str = "ok"
        self.fail_after: int | None = None
        self.fail_status = 500
        self.logprobs = True  # False: every answer without log-probs (as "no_logprobs")
        self.echo = True  # False: /completions ignores echo
        self.top = top
        self.text = text
        self.max_requests = max_requests
        self.requests: list[dict[str, Any]] = []
        self.answered = 0  # normal answers sent
        self.over_limit = 0
        self.lock = threading.Lock()
        self._closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms stalls)

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._send(400, {"error": {"message": "body is not JSON"}})
                    return
                with server.lock:
                    server.requests.append(
                        {
                            "path": self.path,
                            "body": body,
                            "auth": self.headers.get("Authorization"),
                            "t": time.monotonic(),
                        }
                    )
                    fault = server._next_fault()
                server._serve(self, fault, body)

            def _send(
                self,
                status: int,
                payload: Any = None,
                raw: bytes | None = None,
                retry_after: str | None = None,
            ) -> None:
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if retry_after:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    # --- scripting ---------------------------------------------------------------------------------------
    def _next_fault(self) -> str:
        """Called under the lock, once per request."""
        if len(self.requests) > self.max_requests:
            self.over_limit += 1
            return "http:503:0"
        if self.fail_after is not None and self.answered >= self.fail_after:
            return f"http:{self.fail_status}:0"
        fault = self.faults.pop(0) if self.faults else self.default
        if isinstance(fault, int):
            fault = f"http:{fault}"
        name = str(fault).split(":")[0]
        if name not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        if name in ("ok", "delay", "partial_labels_in_top"):
            self.answered += 1
        return str(fault)

    def _serve(self, h: Any, fault: str, body: dict[str, Any]) -> None:
        name, _, arg = fault.partition(":")
        if name == "http":
            code, _, retry = arg.partition(":")
            status = int(code)
            if not retry and status == 429:
                retry = "1"
            h._send(
                status,
                {"error": {"message": f"scripted {status}"}},
                retry_after=retry if retry != "0" else None,
            )
            return
        if name == "delay":
            self._closing.wait(min(float(arg), MAX_DELAY))
            fault = "ok"
        if name == "reset":
            h.close_connection = True
            return
        if name == "echo_key":
            auth = h.headers.get("Authorization") or ""
            bare = auth.split(" ", 1)[-1]
            h._send(401, {"error": {"message": f"invalid credentials {auth!r} (key {bare})"}})
            return
        if name == "list_body":
            h._send(200, [self.answer(h.path, body)])
            return
        if name == "non_json":
            h._send(200, raw=b"<html><body>502 Bad Gateway</body></html>")
            return
        if name == "empty_body":
            h._send(200, raw=b"")
            return
        if name == "error_body":
            h._send(200, {"error": {"message": "model overloaded", "type": "server_error"}})
            return
        if name == "choices_empty":
            h._send(200, {"choices": [], "usage": {"completion_tokens": 0}})
            return
        if name == "choices_null":
            h._send(200, {"choices": [None]})
            return
        h._send(200, self.answer(h.path, body, fault))

    # --- normal answers --------------------------------------------------------------------------------
    def answer(self, path: str, body: dict[str, Any], fault: str = "ok") -> dict[str, Any]:
        usage = {"completion_tokens": 1}
        if path.endswith("/chat/completions"):
            key = json.dumps(body.get("messages"), sort_keys=True)
            top = self.top if self.top is not None else prompt_top(key)
            text = self.text if self.text is not None else prompt_answer(key)
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}}
            choice["finish_reason"] = "stop"
            if fault == "missing_message":
                return {"choices": [{"index": 0}], "usage": usage}
            if self.logprobs and body.get("logprobs") and fault not in ("no_logprobs", "no_logprobs_key"):
                k = int(body.get("top_logprobs") or 0)
                top = self._faulted_top(top, key, fault)
                entries = [{"token": t, "logprob": v} for t, v in top[:k]]
                content: Any = [{"token": top[0][0], "logprob": top[0][1], "top_logprobs": entries}]
                if fault == "content_string":
                    content = "A B C"
                elif fault == "empty_content":
                    content = []
                choice["logprobs"] = {"content": content}
            elif fault != "no_logprobs_key":
                choice["logprobs"] = None
            return {"choices": [choice], "usage": usage}
        # legacy completions
        prompts = body.get("prompt")
        prompts = prompts if isinstance(prompts, list) else [prompts]
        choices = []
        for i, prompt in enumerate(prompts):
            key = str(prompt)
            top = self.top if self.top is not None else prompt_top(key)
            text = self.text if self.text is not None else prompt_answer(key)
            choice = {"index": i, "text": text, "logprobs": None, "finish_reason": "length"}
            if fault == "missing_message":
                choice = {"index": i}
            elif body.get("echo") and self.echo:
                toks = [*tokens(key), " X"]  # the prompt, then one generated token
                offsets, pos = [], 0
                for t in toks:
                    offsets.append(pos)
                    pos += len(t)
                lps: list[float | None] = [(0.5 if fault == "bad_echo" else token_lp(t)) for t in toks]
                lps[0] = None
                choice["logprobs"] = {
                    "tokens": toks,
                    "token_logprobs": lps,
                    "text_offset": offsets,
                    "top_logprobs": None,
                }
            elif self.logprobs and body.get("logprobs") and fault not in ("no_logprobs", "no_logprobs_key"):
                k = int(body["logprobs"])
                top = self._faulted_top(top, key, fault)
                choice["logprobs"] = {
                    "tokens": [top[0][0]],
                    "token_logprobs": [top[0][1]],
                    "top_logprobs": "A B C" if fault == "content_string" else [dict(top[:k])],
                    "text_offset": [len(key)],
                }
            if fault == "no_logprobs_key":
                choice.pop("logprobs", None)
            choices.append(choice)
        # a list prompt gets its choices back out of order, as some servers do
        return {"choices": choices[::-1], "usage": usage}

    def _faulted_top(self, top: list[tuple[str, float]], key: str, fault: str) -> list[tuple[str, float]]:
        if fault == "nan_logprobs":
            return [(t, math.nan) for t, _ in top]
        if fault == "positive_logprobs":
            return [(t, abs(v) + 0.5) for t, v in top]
        if fault == "no_labels_in_top":
            return [(t, v) for t, v in top if t.strip() not in (*LETTERS, *WORDS)] or [("The", -0.1)]
        if fault == "partial_labels_in_top":  # leave out the least likely label of the prompt's kind
            drop = _ranked(key, WORDS if "Neither" in key else LETTERS)[-1]
            return [(t, v) for t, v in top if t.strip() != drop]
        return top

    # --- lifetime --------------------------------------------------------------------------------------
    def close(self) -> None:
        self._closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def running(**kwargs: Any) -> Iterator[FaultServer]:
    """A started server that is always shut down afterwards."""
    srv = FaultServer(**kwargs)
    try:
        yield srv
    finally:
        srv.close()
