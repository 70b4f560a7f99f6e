"""The OpenAI-compatible backend against a small stdlib HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("httpx")

from culturelens.backends.base import BackendError, load_backend  # noqa: E402
from culturelens.backends.openai import OpenAIBackend, match_targets, parse_spec  # noqa: E402
from culturelens.runner import RunConfig, Runner  # noqa: E402
from culturelens.schema import Message, Request  # noqa: E402

SECRET = "sk-test-0123456789-do-not-leak"

# the top-K list the fake server reports for the first generated token
TOP = [(" C", -0.4), ("C", -1.9), (" B", -2.3), ("D", -3.1), ("Hello", -4.0)]


def _token_lp(tok: str) -> float:
    """Deterministic per-token log-prob the fake server reports when echoing prompts."""
    return -0.25 * len(tok.strip()) - 0.5


def _tokens(text: str) -> list[str]:
    """Whitespace-attached tokens: 'a bc d' -> ['a', ' bc', ' d']."""
    out: list[str] = []
    for i, part in enumerate(text.split(" ")):
        out.append(part if i == 0 else " " + part)
    return [t for t in out if t]


class FakeServer:
    """Scripted OpenAI-compatible server. ``faults`` is a queue of status codes answered before the
    normal reply; ``logprobs`` False answers without log-probs; ``echo`` False refuses echo."""

    def __init__(self) -> None:
        self.faults: list[int] = []
        self.logprobs = True
        self.echo = True
        self.text = "B"
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(
                        {
                            "path": self.path,
                            "body": body,
                            "auth": self.headers.get("Authorization"),
                            "t": time.monotonic(),
                        }
                    )
                    fault = server.faults.pop(0) if server.faults else None
                if fault is not None:
                    self._send(
                        fault,
                        {"error": {"message": f"scripted {fault}"}},
                        retry_after="1" if fault == 429 else None,
                    )
                    return
                self._send(200, server.answer(self.path, body))

            def _send(self, status: int, payload: dict, retry_after: str | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if retry_after:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def answer(self, path: str, body: dict) -> dict:
        usage = {"completion_tokens": 1}
        if path.endswith("/chat/completions"):
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": self.text}}
            if self.logprobs and body.get("logprobs"):
                k = body.get("top_logprobs", 0)
                choice["logprobs"] = {
                    "content": [
                        {
                            "token": TOP[0][0],
                            "logprob": TOP[0][1],
                            "top_logprobs": [{"token": t, "logprob": v} for t, v in TOP[:k]],
                        }
                    ]
                }
            else:
                choice["logprobs"] = None
            return {"choices": [choice], "usage": usage}
        # legacy completions
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        choices = []
        for i, prompt in enumerate(prompts):
            choice = {"index": i, "text": self.text, "logprobs": None}
            if body.get("echo") and self.echo:
                toks = [*_tokens(prompt), " X"]  # the prompt, then one generated token
                offsets, pos = [], 0
                for t in toks:
                    offsets.append(pos)
                    pos += len(t)
                lps: list[float | None] = [_token_lp(t) for t in toks]
                lps[0] = None
                choice["logprobs"] = {
                    "tokens": toks,
                    "token_logprobs": lps,
                    "text_offset": offsets,
                    "top_logprobs": None,
                }
            elif self.logprobs and body.get("logprobs"):
                k = body["logprobs"]
                choice["logprobs"] = {
                    "tokens": [TOP[0][0]],
                    "token_logprobs": [TOP[0][1]],
                    "top_logprobs": [dict(TOP[:k])],
                    "text_offset": [len(prompt)],
                }
            choices.append(choice)
        # a list prompt gets its choices back out of order, as some servers do
        return {"choices": choices[::-1], "usage": usage}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    srv = FakeServer()
    yield srv
    srv.close()


def _backend(server: FakeServer, **opts: Any) -> OpenAIBackend:
    opts.setdefault("backoff_base", 0.01)
    return load_backend(f"openai:tiny-model@{server.url}", **opts)  # type: ignore[return-value]


LABEL_MSGS = [Message(role="user", content="Which is right?\nA. one\nB. two\nC. three\nD. four")]


# --- pure helpers ------------------------------------------------------------------------------------
def test_parse_spec(monkeypatch):
    assert parse_spec("llama3@http://localhost:8000/v1/") == ("llama3", "http://localhost:8000/v1")
    assert parse_spec("org/m@x@https://h.example/v1") == ("org/m@x", "https://h.example/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env.example/v1")
    assert parse_spec("gpt-x") == ("gpt-x", "http://env.example/v1")
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert parse_spec("gpt-x") == ("gpt-x", "https://api.openai.com/v1")
    with pytest.raises(BackendError):
        parse_spec("@http://localhost:1/v1")


def test_match_targets_combines_forms_and_floors_missing():
    values, missing = match_targets(TOP, ["A", "B", "C", "D"])
    floor = min(v for _, v in TOP) - 1.0
    assert values[2] == pytest.approx(math.log(math.exp(-0.4) + math.exp(-1.9)))
    assert values[1] == pytest.approx(-2.3) and values[3] == pytest.approx(-3.1)
    assert values[0] == pytest.approx(floor) and missing == ["A"]
    # a unique prefix stands in for a multi-token label word; a shared prefix does not
    values, missing = match_targets([("Ye", -0.2), ("N", -1.0)], ["Yes", "No", "Neither"], floor=-50.0)
    assert values == [pytest.approx(-0.2), -50.0, -50.0] and missing == ["No", "Neither"]


# --- labels ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("api", ["chat", "completions"])
def test_labels_use_top_logprobs(server, api):
    b = _backend(server, api=api)
    text = b.format(LABEL_MSGS, "Answer:")
    [resp] = b.label_logprobs([Request(kind="labels", text=text, targets=["A", "B", "C", "D"])])
    expected, missing = match_targets(TOP, ["A", "B", "C", "D"])
    assert resp.logprobs == pytest.approx(expected)
    assert resp.meta["missing"] == missing == ["A"]
    assert resp.text is None
    body = server.requests[-1]["body"]
    assert body["max_tokens"] == 1
    if api == "chat":
        assert server.requests[-1]["path"] == "/v1/chat/completions"
        assert body["logprobs"] is True and body["top_logprobs"] == 20
        # the assistant prefix opens the assistant turn (vLLM's continue_final_message)
        assert body["messages"][-1] == {"role": "assistant", "content": "Answer:"}
        assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    else:
        assert server.requests[-1]["path"] == "/v1/completions"
        assert body["prompt"] == text and body["logprobs"] == 20


def test_format_prefix_modes(server):
    assert json.loads(_backend(server, prefix_mode="append").format(LABEL_MSGS, "Answer:")) == {
        "messages": [{"role": "user", "content": LABEL_MSGS[0].content + "\n\nAnswer:"}]
    }
    assert json.loads(_backend(server, prefix_mode="drop").format(LABEL_MSGS, "Answer:")) == {
        "messages": [{"role": "user", "content": LABEL_MSGS[0].content}]
    }


def test_labels_without_logprobs_fall_back_to_generation(server):
    server.logprobs = False
    server.text = "B) two"
    b = _backend(server)
    reqs = [
        Request(kind="labels", text=b.format(LABEL_MSGS, f"Q{i}"), targets=list("ABCD"), max_tokens=7)
        for i in range(3)
    ]
    resps = b.label_logprobs(reqs)
    assert all(r.logprobs is None and r.text == "B) two" for r in resps)
    assert all(r.meta["fallback"] == "generate" for r in resps)
    assert b.logprobs_supported is False
    # once known, later requests go straight to generation (one call each, max_tokens of the request)
    n = len(server.requests)
    b.label_logprobs(reqs[:1])
    assert len(server.requests) == n + 1
    assert "logprobs" not in server.requests[-1]["body"] and server.requests[-1]["body"]["max_tokens"] == 7


def test_run_with_text_only_server_scores_as_generation(server, tmp_path):
    """End to end: letter mode against a server without log-probs parses the text answer."""
    server.logprobs = False
    server.text = "B"
    b = _backend(server)
    res = Runner(
        RunConfig(
            model="x",
            tasks=["starter"],
            limit=4,
            mode="letter",
            out=str(tmp_path / "run"),
            cache=str(tmp_path / "c.sqlite"),
            n_boot=50,
        ),
        backend=b,
    ).run()
    rows = [json.loads(line) for line in (res.run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for row in rows:
        assert row["mode"] == "letter" and row["valid"] is True
        assert row["prediction"] == row["order"][1]  # "B" = second displayed option
        assert row["probs"][row["prediction"]] == 1.0


# --- retries, errors, secrets --------------------------------------------------------------------------
def test_retries_429_then_500(server):
    server.faults = [429, 500]
    b = _backend(server, max_retries=3)
    t0 = time.monotonic()
    [resp] = b.generate([Request(kind="generate", text=b.format(LABEL_MSGS), max_tokens=5)])
    assert resp.text == server.text
    assert len(server.requests) == 3 and b.stats == {"http_requests": 3, "retries": 2}
    # the 429 carried Retry-After: 1, which beats the (tiny) exponential backoff
    gap = server.requests[1]["t"] - server.requests[0]["t"]
    assert gap >= 0.9
    assert time.monotonic() - t0 < 10


def test_retries_exhausted_is_one_line_error(server):
    server.faults = [503, 503, 503]
    b = _backend(server, max_retries=2)
    with pytest.raises(BackendError) as err:
        b.generate([Request(kind="generate", text="hi", max_tokens=2)])
    assert len(server.requests) == 3
    msg = str(err.value)
    assert "503" in msg and server.url in msg and "\n" not in msg


def test_client_error_is_not_retried(server):
    server.faults = [400]
    b = _backend(server, max_retries=3)
    with pytest.raises(BackendError, match="HTTP 400"):
        b.generate([Request(kind="generate", text="hi", max_tokens=2)])
    assert len(server.requests) == 1


def test_unreachable_endpoint():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    b = load_backend(f"openai:m@{url}", max_retries=1, backoff_base=0.01, timeout=5)
    with pytest.raises(BackendError) as err:
        b.generate([Request(kind="generate", text="hi", max_tokens=2)])
    msg = str(err.value)
    assert url in msg and "cannot reach" in msg and "\n" not in msg
    assert b.stats["http_requests"] == 2


def test_concurrency_and_order(server):
    b = _backend(server, concurrency=3)
    reqs = [
        Request(kind="labels", text=b.format([Message(role="user", content=f"q{i}")]), targets=list("ABCD"))
        for i in range(10)
    ]
    resps = b.label_logprobs(reqs)
    assert len(resps) == 10 and len(server.requests) == 10
    sent = [json.loads(r.text)["messages"][0]["content"] for r in reqs]
    assert sorted(r["body"]["messages"][0]["content"] for r in server.requests) == sorted(sent)


def test_api_key_from_env_is_sent_but_never_stored(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    b = _backend(server)
    assert SECRET not in json.dumps(b.identity()) and SECRET not in json.dumps(b.describe())
    assert SECRET not in repr(vars(b))
    res = Runner(
        RunConfig(
            model="x",
            tasks=["starter"],
            limit=2,
            mode="letter",
            out=str(tmp_path / "run"),
            cache=str(tmp_path / "c.sqlite"),
            n_boot=20,
        ),
        backend=b,
    ).run()
    assert server.requests and all(r["auth"] == f"Bearer {SECRET}" for r in server.requests)
    for f in [*Path(res.run_dir).iterdir(), *tmp_path.glob("c.sqlite*")]:
        assert SECRET.encode() not in f.read_bytes(), f
    # a custom variable name works too, and no variable means no Authorization header
    monkeypatch.setenv("MY_KEY", "other-secret")
    _backend(server, api_key_env="MY_KEY").generate([Request(kind="generate", text="hi")])
    assert server.requests[-1]["auth"] == "Bearer other-secret"
    monkeypatch.delenv("OPENAI_API_KEY")
    _backend(server).generate([Request(kind="generate", text="hi")])
    assert server.requests[-1]["auth"] is None


# --- continuations -----------------------------------------------------------------------------------
def test_continuations_via_echo(server):
    b = _backend(server, api="completions")
    ctx = "Question: which city is the capital of Morocco?\nAnswer:"
    targets = [" Rabat", " Casa blanca city", " Fes"]
    [resp] = b.continuation_logprobs([Request(kind="continuations", text=ctx, targets=targets)])
    expected = [sum(_token_lp(t) for t in _tokens(c)) for c in targets]
    assert resp.logprobs == pytest.approx(expected)
    assert resp.n_tokens == [len(_tokens(c)) for c in targets]
    body = server.requests[-1]["body"]
    assert body["echo"] is True and body["prompt"] == [ctx + t for t in targets]


def test_continuations_need_completions_api_and_echo(server):
    with pytest.raises(BackendError, match="api=completions"):
        _backend(server).continuation_logprobs([Request(kind="continuations", text="x", targets=[" a"])])
    server.echo = False
    with pytest.raises(BackendError, match="echo"):
        _backend(server, api="completions").continuation_logprobs(
            [Request(kind="continuations", text="x", targets=[" a"])]
        )
    server.faults = [400]
    with pytest.raises(BackendError, match="echo"):
        _backend(server, api="completions").continuation_logprobs(
            [Request(kind="continuations", text="x", targets=[" a"])]
        )
