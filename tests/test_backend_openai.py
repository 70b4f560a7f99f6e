"""The OpenAI-compatible backend against the scriptable server of tests/faultserver.py (127.0.0.1)."""

from __future__ import annotations

import base64
import inspect
import json
import math
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("httpx")

from faultserver import FaultServer, prompt_answer, token_lp, tokens  # noqa: E402

from culturelens.backends.base import BackendError, PartialBatchError, load_backend  # noqa: E402
from culturelens.backends.openai import (  # noqa: E402
    FALLBACK_NO_LOGPROBS,
    FALLBACK_NOT_IN_TOP,
    FALLBACK_OFF,
    OpenAIBackend,
    match_targets,
    parse_spec,
)
from culturelens.runner import RunConfig, Runner  # noqa: E402
from culturelens.schema import Message, Request  # noqa: E402

SECRET = "sk-test-0123456789-do-not-leak"

# the top-K list the fake server reports for the first generated token
TOP = [(" C", -0.4), ("C", -1.9), (" B", -2.3), ("D", -3.1), ("Hello", -4.0)]


@pytest.fixture()
def server():
    srv = FaultServer(top=TOP, text="B")
    yield srv
    srv.close()


@pytest.fixture()
def hashed():
    """A server whose answers depend on the prompt (see tests/faultserver.py)."""
    srv = FaultServer()
    yield srv
    srv.close()


def _backend(server: FaultServer, **opts: Any) -> OpenAIBackend:
    opts.setdefault("backoff_base", 0.01)
    opts.setdefault("backoff_max", 0.05)
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
    # a label outside the top K is at most the smallest returned log-prob (just below it, so a
    # returned label always ranks first)
    floor = min(v for _, v in TOP)
    assert values[0] < floor and values[0] == pytest.approx(floor, abs=1e-9)
    assert values[2] == pytest.approx(math.log(math.exp(-0.4) + math.exp(-1.9)))
    assert values[1] == pytest.approx(-2.3) and values[3] == pytest.approx(-3.1)
    assert missing == ["A"] and max(range(4), key=values.__getitem__) == 2
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
    assert all(r.fallback == FALLBACK_NO_LOGPROBS for r in resps)
    assert b.logprobs_supported is False
    # decided once: the first request and one confirmation asked for log-probs, nothing else did
    assert sum(bool(r["body"].get("logprobs")) for r in server.requests) == 2
    # once known, later requests go straight to generation (one call each, max_tokens of the request)
    n = len(server.requests)
    b.label_logprobs(reqs[:1])
    assert len(server.requests) == n + 1
    assert "logprobs" not in server.requests[-1]["body"] and server.requests[-1]["body"]["max_tokens"] == 7


def _starter_run(b: OpenAIBackend, tmp_path: Path, name: str, limit: int = 6, **cfg: Any):
    return Runner(
        RunConfig(
            model="x",
            tasks=["starter"],
            limit=limit,
            mode="letter",
            out=str(tmp_path / name),
            cache=str(tmp_path / f"{name}.sqlite"),
            n_boot=20,
            **cfg,
        ),
        backend=b,
    ).run()


def _rows(res) -> list[dict]:
    return [json.loads(line) for line in (res.run_dir / "samples.jsonl").read_text().splitlines()]


def test_run_with_text_only_server_scores_as_generation(hashed, tmp_path):
    """End to end: letter mode against a server without log-probs parses the text answer, marks
    every sample as a fallback and counts them; the choices are the server's (same as with log-probs)."""
    ref = {r["item_id"]: r["prediction"] for r in _rows(_starter_run(_backend(hashed), tmp_path, "ref"))}
    hashed.logprobs = False
    res = _starter_run(_backend(hashed), tmp_path, "text")
    rows = _rows(res)
    assert len(rows) == 6
    for row in rows:
        assert row["mode"] == "letter" and row["valid"] is True
        assert row["fallback"] == FALLBACK_NO_LOGPROBS
        assert row["prediction"] == ref[row["item_id"]]
        assert row["probs"][row["prediction"]] == 1.0
    assert res.results["tasks"]["starter"]["fallbacks"] == {"n": 6, "reasons": {FALLBACK_NO_LOGPROBS: 6}}


# --- retries, errors, secrets --------------------------------------------------------------------------
def test_retries_429_then_500(server):
    server.faults = [429, 500]
    b = _backend(server, max_retries=3, backoff_max=2.0)
    t0 = time.monotonic()
    [resp] = b.generate([Request(kind="generate", text=b.format(LABEL_MSGS), max_tokens=5)])
    assert resp.text == server.text
    assert len(server.requests) == 3 and b.stats == {"http_requests": 3, "retries": 2, "malformed": 0}
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
    expected = [sum(token_lp(t) for t in tokens(c)) for c in targets]
    assert resp.logprobs == pytest.approx(expected)
    assert resp.n_tokens == [len(tokens(c)) for c in targets]
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


# --- regression tests for the fault issue ------------------------------------------------------------
def _label_reqs(b: OpenAIBackend, n: int, prefix: str = "q") -> list[Request]:
    return [
        Request(
            kind="labels",
            text=b.format([Message(role="user", content=f"{prefix}{i}: pick A, B, C or D")], "Answer:"),
            targets=list("ABCD"),
        )
        for i in range(n)
    ]


def _expected_choice(b: OpenAIBackend, req: Request) -> int:
    """The option the hashed server's answer picks for this request."""
    key = json.dumps(b._chat_payload(req.text)["messages"], sort_keys=True)
    return "ABCD".index(prompt_answer(key))


def _choice(resp) -> int:
    if resp.logprobs is not None:
        return max(range(len(resp.logprobs)), key=resp.logprobs.__getitem__)
    return "ABCD".index(resp.text.strip())


def test_init_lists_every_option_explicitly():
    params = inspect.signature(OpenAIBackend.__init__).parameters.values()
    assert not any(p.kind is p.VAR_KEYWORD for p in params)
    assert {"logprobs", "malformed_retries", "timeout", "max_retries"} <= {p.name for p in params}
    with pytest.raises(BackendError, match="no option 'logprob'"):
        load_backend("openai:m@http://127.0.0.1:9/v1", logprob="auto")
    for bad in ({"logprobs": "maybe"}, {"timeout": "soon"}, {"concurrency": 0}, {"max_retries": -1}):
        with pytest.raises(BackendError):
            load_backend("openai:m@http://127.0.0.1:9/v1", **bad)


@pytest.mark.parametrize("fault", ["choices_empty", "choices_null", "nan_logprobs", "positive_logprobs"])
def test_malformed_label_answer_is_retried_then_fails_never_cached_as_fallback(hashed, fault):
    """`{"choices": []}` forever used to give 20/20 invalid answers and exit 0."""
    hashed.default = fault
    b = _backend(hashed, malformed_retries=2)
    with pytest.raises(BackendError) as err:
        b.label_logprobs(_label_reqs(b, 5))
    msg = str(err.value)
    assert not isinstance(err.value, PartialBatchError)  # nothing came back, nothing to keep
    assert "tiny-model" in msg and hashed.url in msg and "malformed" in msg and "\n" not in msg
    assert len(hashed.requests) == 3  # the deciding request, asked 3 times; the others never sent
    assert b.logprobs_supported is None  # a broken answer decides nothing


@pytest.mark.parametrize("fault", ["choices_empty", "nan_logprobs", "positive_logprobs", "no_logprobs"])
def test_one_bad_answer_among_concurrent_ones_is_asked_again(hashed, fault):
    """One early answer without (or with broken) log-probs used to turn its item -- and, through a
    shared flag, whichever items were in flight -- into generation fallbacks."""
    b = _backend(hashed, concurrency=6)
    reqs = _label_reqs(b, 18)
    hashed.faults = ["ok", "ok", fault, "ok", fault]
    resps = b.label_logprobs(reqs)
    assert all(r.fallback is None and r.logprobs is not None and r.text is None for r in resps)
    assert [_choice(r) for r in resps] == [_expected_choice(b, q) for q in reqs]
    assert b.stats["malformed"] == 2 and len(hashed.requests) == 20


def test_fallback_is_decided_once_and_is_the_same_at_any_concurrency(hashed):
    hashed.logprobs = False
    outcomes = []
    for concurrency in (1, 8, 8):
        hashed.requests.clear()
        b = _backend(hashed, concurrency=concurrency)
        reqs = _label_reqs(b, 16)
        resps = b.label_logprobs(reqs)
        asked = [r for r in hashed.requests if r["body"].get("logprobs")]
        assert len(asked) == 2 and len(hashed.requests) == 2 + 16  # decide (+ confirm), then generate
        assert all(r.fallback == FALLBACK_NO_LOGPROBS and r.logprobs is None for r in resps)
        outcomes.append([(r.text, r.fallback) for r in resps])
        assert [_choice(r) for r in resps] == [_expected_choice(b, q) for q in reqs]
    assert outcomes[0] == outcomes[1] == outcomes[2]


def test_a_glitch_on_the_deciding_answer_is_confirmed_before_deciding(hashed):
    hashed.faults = ["no_logprobs"]
    b = _backend(hashed, concurrency=4)
    resps = b.label_logprobs(_label_reqs(b, 6))
    assert b.logprobs_supported is True and all(r.fallback is None for r in resps)


def test_logprobs_option_require_and_off(hashed):
    hashed.logprobs = False
    b = _backend(hashed, logprobs="require")
    with pytest.raises(BackendError, match="no log-probs.*logprobs=require"):
        b.label_logprobs(_label_reqs(b, 3))
    hashed.logprobs = True
    hashed.requests.clear()
    b = _backend(hashed, logprobs="off")
    resps = b.label_logprobs(_label_reqs(b, 4))
    assert all(r.fallback == FALLBACK_OFF and isinstance(r.text, str) for r in resps)
    assert not any(r["body"].get("logprobs") for r in hashed.requests)


def test_server_that_stops_returning_logprobs_fails_and_keeps_what_came_back(hashed):
    hashed.faults = ["ok", "ok", "ok"]
    hashed.default = "no_logprobs"
    b = _backend(hashed, concurrency=1, malformed_retries=1)
    reqs = _label_reqs(b, 6)
    with pytest.raises(PartialBatchError) as err:
        b.label_logprobs(reqs)
    assert "returned them before" in str(err.value)
    assert sorted(err.value.completed) == [0, 1, 2]
    assert all(r.fallback is None and r.logprobs is not None for r in err.value.completed.values())


@pytest.mark.parametrize("kind", ["generate", "labels"])
def test_answers_before_a_failure_come_back_in_a_partial_batch_error(hashed, kind):
    """A server answering 10 requests and then 500 used to leave 0 of the 10 in the cache."""
    hashed.fail_after = 10
    b = _backend(hashed, concurrency=4, max_retries=1)
    reqs = _label_reqs(b, 16)
    if kind == "generate":
        reqs = [Request(kind="generate", text=r.text, max_tokens=4) for r in reqs]
    with pytest.raises(PartialBatchError) as err:
        b.run(reqs)
    done = err.value.completed
    assert len(done) == 10 and "HTTP 500" in str(err.value) and "\n" not in str(err.value)
    for i, resp in done.items():  # each answer sits at its own request's position
        assert _choice(resp) == _expected_choice(b, reqs[i])
    assert len(hashed.requests) <= 10 + 6 * 2  # requests not sent when the batch failed stay unsent


def test_runner_keeps_the_answers_of_a_failed_batch(hashed, tmp_path):
    hashed.fail_after = 10
    b = _backend(hashed, concurrency=4, max_retries=1)
    with pytest.raises(BackendError, match="HTTP 500"):
        _starter_run(b, tmp_path, "part", limit=16, batch_size=16)
    with sqlite3.connect(tmp_path / "part.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 10
    # the re-run asks only for the 6 missing answers and ends as an uninterrupted run does
    hashed.fail_after = None
    hashed.requests.clear()
    res = _starter_run(_backend(hashed), tmp_path, "part", limit=16, batch_size=16)
    assert len(hashed.requests) == 6 and len(_rows(res)) == 16
    ref = _starter_run(_backend(hashed), tmp_path, "ref", limit=16, batch_size=16)
    assert res.results["tasks"]["starter"]["metrics"] == ref.results["tasks"]["starter"]["metrics"]


BAD_BODIES = [
    "choices_empty",
    "choices_null",
    "list_body",
    "non_json",
    "empty_body",
    "content_string",
    "missing_message",
    "error_body",
    "nan_logprobs",
    "positive_logprobs",
    "empty_content",
]


@pytest.mark.parametrize("api", ["chat", "completions"])
@pytest.mark.parametrize("kind", ["labels", "generate"])
def test_malformed_bodies_are_one_line_errors(hashed, api, kind):
    for fault in BAD_BODIES:
        hashed.requests.clear()
        hashed.default = fault
        b = _backend(hashed, api=api, malformed_retries=1, logprobs="require")
        req = Request(kind=kind, text=b.format(LABEL_MSGS, "Answer:"), targets=list("ABCD"))
        if api == "completions" and fault == "empty_content":
            continue  # a chat-only shape
        if kind == "generate" and fault in (
            "nan_logprobs",
            "positive_logprobs",
            "content_string",
            "empty_content",
        ):
            [resp] = b.run([req])  # generation asks no log-probs: these answers are fine for it
            assert isinstance(resp.text, str)
            continue
        with pytest.raises(BackendError) as err:
            b.run([req])
        msg = str(err.value)
        assert "malformed" in msg and hashed.url in msg and "\n" not in msg, (fault, msg)
        assert len(hashed.requests) == 2, fault
        # the same fault once is asked again and answered
        hashed.default, hashed.faults = "ok", [fault]
        [resp] = _backend(hashed, api=api, logprobs="require").run([req])
        assert resp.fallback is None and (resp.logprobs if kind == "labels" else resp.text) is not None


@pytest.mark.parametrize(
    "spec",
    [
        "m@notaurl",
        "m@http://",
        "m@ftp://x",
        "m@http://127.0.0.1:99999/v1",
        "m@http://host:port/v1",
        "m@http://a b/v1",
        "m@http://h/v1?key=1",
        "@http://localhost:1/v1",
        "m@https://user:pw-9876@:80/v1",
    ],
)
def test_malformed_base_url_is_a_one_line_error(spec):
    with pytest.raises(BackendError) as err:
        load_backend(f"openai:{spec}")
    assert "\n" not in str(err.value) and "pw-9876" not in str(err.value)


def test_bad_base_url_from_the_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "localhost:8000/v1")
    with pytest.raises(BackendError, match="OPENAI_BASE_URL"):
        load_backend("openai:m")


def test_label_outside_top_k_is_bounded_and_marked(hashed):
    b = _backend(hashed)
    reqs = _label_reqs(b, 8)
    hashed.default = "partial_labels_in_top"
    resps = b.label_logprobs(reqs)
    for req, resp in zip(reqs, resps, strict=True):
        assert resp.fallback is None and len(resp.meta["missing"]) == 1
        assert resp.meta["missing_rule"].startswith("upper bound")
        i = "ABCD".index(resp.meta["missing"][0])
        others = [v for j, v in enumerate(resp.logprobs) if j != i]
        assert resp.logprobs[i] < min(others) and resp.logprobs[i] <= 0  # below every returned label
        assert _choice(resp) == _expected_choice(b, req)  # the choice itself is exact


def test_no_label_in_top_k_is_answered_by_generation_and_marked(hashed):
    b = _backend(hashed)
    reqs = _label_reqs(b, 5)
    hashed.default = "no_labels_in_top"
    resps = b.label_logprobs(reqs)
    assert all(r.fallback == FALLBACK_NOT_IN_TOP and r.logprobs is None for r in resps)
    assert [_choice(r) for r in resps] == [_expected_choice(b, q) for q in reqs]


PASSWORD = "hunter2-Passw0rd"


def test_url_credentials_are_sent_but_never_shown(hashed):
    url = hashed.url.replace("http://", f"http://alice:{PASSWORD}@")
    b = load_backend(f"openai:tiny-model@{url}", backoff_base=0.01, max_retries=1)
    other = load_backend(f"openai:tiny-model@{url.replace(PASSWORD, 'another-one')}")
    assert (
        b.identity()
        == other.identity()
        == {"backend": "openai", "model": "tiny-model", "base_url": hashed.url}
    )
    for text in (json.dumps(b.identity()), json.dumps(b.describe()), repr(b), repr(vars(b)), str(vars(b))):
        assert PASSWORD not in text and "alice" not in text
    b.generate([Request(kind="generate", text="hi")])
    assert hashed.requests[-1]["auth"] == "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    hashed.default = "http:500:0"
    with pytest.raises(BackendError) as err:
        b.generate([Request(kind="generate", text="hi")])
    assert PASSWORD not in str(err.value) and "alice" not in str(err.value)


def test_error_body_echoing_the_key_is_redacted(hashed, monkeypatch):
    hashed.default = "echo_key"
    for env, key in (("OPENAI_API_KEY", SECRET), ("MY_KEY", "plain-looking-secret-value")):
        monkeypatch.setenv(env, key)
        b = _backend(hashed, api_key_env=env)
        with pytest.raises(BackendError) as err:
            b.generate([Request(kind="generate", text="hi")])
        msg = str(err.value)
        assert "HTTP 401" in msg and key not in msg and "***" in msg and "\n" not in msg


@pytest.mark.parametrize("spec", ["gpt-4o-mini", "gpt-4o-mini@https://api.openai.com/v1"])
def test_hosted_api_without_key_says_so(spec, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    b = load_backend(f"openai:{spec}")
    assert b.identity()["base_url"] == "https://api.openai.com/v1"
    with pytest.raises(BackendError) as err:
        b.generate([Request(kind="generate", text="hi")])
    msg = str(err.value)
    assert msg.startswith("OPENAI_API_KEY is not set") and "export OPENAI_API_KEY" in msg
    assert "cannot reach" not in msg and b.stats["http_requests"] == 0
    assert b.generate([]) == []  # nothing to ask: no key needed (a fully cached run)


def test_local_server_needs_no_key_but_a_401_says_the_key_is_missing(hashed, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    b = _backend(hashed)
    assert b.generate([Request(kind="generate", text="hi")])[0].text
    hashed.default = "http:401"
    with pytest.raises(BackendError, match="HTTP 401.*OPENAI_API_KEY is not set"):
        b.generate([Request(kind="generate", text="hi")])


def test_retry_after_is_capped_and_retries_are_bounded(hashed):
    hashed.faults = ["http:429:100"]  # a 100 s Retry-After waits at most backoff_max
    b = _backend(hashed, backoff_max=0.2, max_retries=2)
    t0 = time.monotonic()
    assert b.generate([Request(kind="generate", text="hi")])[0].text
    assert time.monotonic() - t0 < 3
    hashed.requests.clear()
    hashed.default = "http:503:0"
    with pytest.raises(BackendError, match="HTTP 503 after 3 attempts"):
        b.generate([Request(kind="generate", text="hi")])
    assert len(hashed.requests) == 3


def test_timeouts_and_resets_are_retried_then_fail_clearly(hashed):
    b = _backend(hashed, timeout=0.4, max_retries=2)
    hashed.faults = ["delay:1.5", "reset"]
    [resp] = b.generate([Request(kind="generate", text="hi")])
    assert resp.text and len(hashed.requests) == 3
    hashed.faults, hashed.default = [], "delay:1.5"
    t0 = time.monotonic()
    with pytest.raises(BackendError) as err:
        b.generate([Request(kind="generate", text="hi")])
    assert "no answer within 0.4 s" in str(err.value) and "after 3 attempts" in str(err.value)
    assert time.monotonic() - t0 < 4
    hashed.default = "delay:0.2"  # slow but within the timeout: fine
    assert b.generate([Request(kind="generate", text="hi")])[0].text


def test_malformed_echo_is_an_error_not_a_score(hashed):
    b = _backend(hashed, api="completions", malformed_retries=1)
    req = Request(kind="continuations", text="Capital of Morocco?\nAnswer:", targets=[" Rabat", " Fes"])
    hashed.default = "bad_echo"
    with pytest.raises(BackendError, match="cannot be positive"):
        b.continuation_logprobs([req])
    hashed.default = "choices_empty"
    with pytest.raises(BackendError, match="choices"):
        b.continuation_logprobs([req])


# --- several endpoints, the HTTP client, the runner's batch size ---------------------------------------
def _label_reqs(b: OpenAIBackend, n: int) -> list[Request]:
    return [
        Request(
            kind="labels",
            text=b.format([Message(role="user", content=f"question {i}")]),
            targets=list("ABCD"),
        )
        for i in range(n)
    ]


def test_several_endpoints_share_the_load_and_give_the_same_answers(hashed):
    with FaultServer() as other:
        both = load_backend(f"openai:tiny-model@{hashed.url},{other.url}", concurrency=4)
        assert both.endpoints == [hashed.url, other.url]
        # the identity names every endpoint, in a fixed order: the cache never depends on the replica
        swapped = load_backend(f"openai:tiny-model@{other.url}, {hashed.url}", concurrency=4)
        assert both.identity() == swapped.identity()
        assert both.identity()["base_url"] == ",".join(sorted([hashed.url, other.url]))
        reqs = _label_reqs(both, 40)
        spread = both.label_logprobs(reqs)
        assert len(hashed.requests) > 5 and len(other.requests) > 5
        assert len(hashed.requests) + len(other.requests) == 40
        hashed.requests.clear()
        single = _backend(hashed, concurrency=4).label_logprobs(reqs)
        assert [r.model_dump() for r in spread] == [r.model_dump() for r in single]


def test_several_endpoints_in_a_run_score_as_one(hashed, tmp_path):
    with FaultServer() as other:
        spread = _starter_run(load_backend(f"openai:tiny-model@{hashed.url},{other.url}"), tmp_path, "two")
        assert hashed.requests and other.requests
        one = _starter_run(_backend(hashed), tmp_path, "one")
    assert [(r["item_id"], r["prediction"], r["probs"]) for r in _rows(spread)] == [
        (r["item_id"], r["prediction"], r["probs"]) for r in _rows(one)
    ]
    assert spread.results["tasks"]["starter"]["metrics"] == one.results["tasks"]["starter"]["metrics"]


def test_an_endpoint_listed_twice_or_malformed_is_an_error(hashed):
    with pytest.raises(BackendError, match="listed twice"):
        load_backend(f"openai:m@{hashed.url},{hashed.url}/")
    with pytest.raises(BackendError, match="base URL"):
        load_backend(f"openai:m@{hashed.url},http://")
    assert parse_spec(f"m@{hashed.url}")[1] == hashed.url  # one endpoint: the identity it always had


def test_a_failing_endpoint_names_itself(hashed):
    b = _backend(hashed, max_retries=0)
    b2 = load_backend(f"openai:tiny-model@{hashed.url},http://127.0.0.1:9/v1", max_retries=0, concurrency=2)
    assert b.label_logprobs(_label_reqs(b, 1))
    with pytest.raises(BackendError, match="127.0.0.1:9/v1"):
        b2.label_logprobs(_label_reqs(b2, 4))


@pytest.mark.parametrize("client", ["httpx", "aiohttp"])
def test_both_http_clients_answer_alike(hashed, client):
    if client == "aiohttp":
        pytest.importorskip("aiohttp")
    b = _backend(hashed, http_client=client, concurrency=3, max_retries=2)
    reqs = _label_reqs(b, 6)
    assert [_choice(r) for r in b.label_logprobs(reqs)] == [_expected_choice(b, r) for r in reqs]
    hashed.faults = ["reset", "http:500:0"]  # both retried
    assert len(b.generate([Request(kind="generate", text="hi")])) == 1
    hashed.default = "delay:1.5"
    b.timeout, b.max_retries = 0.3, 0
    with pytest.raises(BackendError, match="no answer within 0.3 s"):
        b.generate([Request(kind="generate", text="hi")])
    with pytest.raises(BackendError, match="http_client"):
        load_backend(f"openai:m@{hashed.url}", http_client="curl")


def test_runner_hands_an_http_backend_batches_of_several_waves(hashed, tmp_path):
    b = _backend(hashed, concurrency=3)
    assert b.min_batch == 24
    sizes: list[int] = []
    run = b.run

    def counted(batch):
        sizes.append(len(batch))
        return run(batch)

    b.run = counted  # type: ignore[method-assign]
    _starter_run(b, tmp_path, "waves", limit=30, batch_size=2)
    assert sizes and max(sizes) == 24  # not the configured 2: answers do not depend on batching


def test_clients_and_connections_are_kept_across_batches_until_close(hashed):
    b = _backend(hashed, concurrency=4)
    reqs = _label_reqs(b, 8)
    first = b.label_logprobs(reqs)
    kept = dict(b._clients)
    assert kept and b._loop_thread is not None and b._loop_thread.is_alive()
    assert [r.model_dump() for r in b.label_logprobs(reqs)] == [r.model_dump() for r in first]
    assert b._clients == kept  # the same clients (and their open connections) served the second batch
    b.timeout = 5.0  # a changed timeout is a new client: the old one would keep the old deadline
    b.label_logprobs(reqs[:1])
    assert len(b._clients) == len(kept) + 1
    thread = b._loop_thread
    b.close()
    assert not thread.is_alive() and not b._clients
    assert len(b.label_logprobs(reqs)) == 8  # usable again after close: a new loop and clients
    b.close()


def test_a_forked_child_gets_its_own_loop(hashed):
    """After fork the loop's thread is gone in the child: the child must start its own, never hang."""
    import multiprocessing

    b = _backend(hashed, concurrency=2, timeout=5, max_retries=0)
    reqs = _label_reqs(b, 4)
    want = [r.model_dump() for r in b.label_logprobs(reqs)]  # the parent's loop and clients exist now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()

    def child() -> None:
        queue.put([r.model_dump() for r in b.label_logprobs(reqs)])
        b.close()

    proc = ctx.Process(target=child)
    proc.start()
    got = queue.get(timeout=60)
    proc.join(60)
    assert proc.exitcode == 0 and got == want
    # the parent's loop still serves, at once: the child left the parent's connections alone (closing
    # them from the child unregisters them from the shared epoll, and the answer never arrives)
    t0 = time.perf_counter()
    assert [r.model_dump() for r in b.label_logprobs(reqs)] == want
    assert time.perf_counter() - t0 < 5
    b.close()
