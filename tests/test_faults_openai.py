"""Fault injection over the CLI against the OpenAI-compatible backend (tests/faultserver.py).

Every case runs ``culturelens run --model openai:tiny@http://127.0.0.1:PORT/v1 --task starter
--limit 8`` in a subprocess and must end either in the right results (checked item by item against
what the server answered, with every deliberate fallback marked and counted) or in exit code 2 with
exactly one ``error:`` line and no traceback -- never exit 0 with silently wrong numbers -- and the
cache must hold exactly the answers that were completed.

``pytest tests/test_faults_openai.py -s`` prints the tally: per category, the CLI runs tried and
those that ended clearly (with every further check on that run holding too).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("httpx")

from faultserver import FaultServer, prompt_answer  # noqa: E402

from culturelens.backends.openai import (  # noqa: E402
    FALLBACK_NO_LOGPROBS,
    FALLBACK_NOT_IN_TOP,
    FALLBACK_OFF,
)

CLI = [sys.executable, "-m", "culturelens.cli"]
TALLY: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # category -> [tried, clear]
LIMIT = 8
FAST = ["backoff_base=0.01", "backoff_max=0.05", "max_retries=2", "malformed_retries=2", "timeout=5"]
KEY = "sk-faulttest-0123456789abcdef"
PASSWORD = "Hunter2-pa55word"


@pytest.fixture(scope="module", autouse=True)
def _print_tally() -> Iterator[None]:
    yield
    if TALLY:
        lines = ["", "openai fault suite: category            tried  clear"]
        for cat, (tried, clear) in sorted(TALLY.items()):
            lines.append(f"  {cat:<36} {tried:>5} {clear:>6}")
        total = [sum(t for t, _ in TALLY.values()), sum(c for _, c in TALLY.values())]
        lines.append(f"  {'total':<36} {total[0]:>5} {total[1]:>6}")
        print("\n".join(lines))


@pytest.fixture
def srv() -> Iterator[FaultServer]:
    server = FaultServer(max_requests=200)
    yield server
    server.close()


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, "CULTURELENS_NATIVE_PROBE": "0", **(env or {})},
    )


def run_args(
    url: str, tmp: Path, *extra: str, model: str = "tiny", out: str = "run", cache: str = "c.sqlite", opts=()
) -> list[str]:
    args = ["run", "--model", f"openai:{model}@{url}" if url else f"openai:{model}", "--task", "starter"]
    args += ["--limit", str(LIMIT), "--cache", str(tmp / cache), "--out", str(tmp / out), "--no-report", "-q"]
    for kv in [*FAST, *opts]:
        args += ["--model-opt", kv]
    return [*args, *extra]


def clear_error(proc: subprocess.CompletedProcess, *must_name: str) -> bool:
    """Exit 2, exactly one line on stderr starting ``error:`` that names what it must, no traceback."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return (
        proc.returncode == 2
        and len(lines) == 1
        and lines[0].startswith("error:")
        and "Traceback" not in proc.stderr + proc.stdout
        and all(s in lines[0] for s in must_name)
    )


def record(category: str, ok: bool, proc: subprocess.CompletedProcess | None = None, why: str = "") -> None:
    TALLY[category][0] += 1
    TALLY[category][1] += int(ok)
    detail = f"\nrc={proc.returncode}\nstderr={proc.stderr[-1500:]}" if proc is not None else ""
    assert ok, f"{category}: not a clear outcome {why}{detail}"


def cache_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return [json.loads(r) for (r,) in db.execute("SELECT response FROM responses")]


def also(category: str, ok: bool, why: str = "") -> None:
    """A further condition on the case just recorded: it stays clear only if this holds too."""
    if not ok:
        TALLY[category][1] -= 1
    assert ok, f"{category}: {why or 'a further check failed'}"


def expected_prediction(row: dict[str, Any]) -> int:
    """The option the server's answer to this sample's prompt picks (independent of the backend)."""
    try:
        key = json.dumps(json.loads(row["prompt"])["messages"], sort_keys=True)
    except ValueError:
        key = row["prompt"]  # api=completions: the plain prompt
    answer = prompt_answer(key)
    if row["targets"]:  # letter mode: the answer is one of the displayed targets
        return row["order"][[t.strip() for t in row["targets"]].index(answer)]
    if answer in "ABCD":  # generation, multiple choice: a displayed letter
        return row["order"]["ABCD".index(answer)]
    return [o.strip() for o in row["options"]].index(answer)  # generation, label word: the option itself


def outcome(
    proc: subprocess.CompletedProcess, tmp: Path, fallback: str | None = None, out: str = "run"
) -> tuple[bool, str]:
    """A correct result: exit 0, no traceback, every sample is the server's answer, fallbacks
    (if any) are marked on every sample, counted in results.json and warned about on stderr."""
    if proc.returncode != 0 or "Traceback" in proc.stderr + proc.stdout:
        return False, "exit code / traceback"
    run = tmp / out
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    results = json.loads((run / "results.json").read_text())["tasks"]["starter"]
    if len(rows) != LIMIT or results["n"] != LIMIT:
        return False, f"{len(rows)} samples"
    wrong = [r["item_id"] for r in rows if r["prediction"] != expected_prediction(r) or not r["valid"]]
    if wrong:
        return False, f"wrong predictions for {wrong}"
    acc = sum(r["metrics"]["acc"] for r in rows) / LIMIT
    if abs(results["metrics"]["acc"]["mean"] - acc) > 1e-9:
        return False, "acc does not match the samples"
    marks = {r.get("fallback") for r in rows}
    warnings = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    if fallback is None:
        ok = marks == {None} and "fallbacks" not in results and not warnings
        return ok, f"unexpected fallback marks {marks} / stderr {warnings}"
    ok = (
        marks == {fallback}
        and results.get("fallbacks") == {"n": LIMIT, "reasons": {fallback: LIMIT}}
        and len(warnings) == 1
        and warnings[0].startswith("warning:")
        and fallback in warnings[0]
    )
    return ok, f"fallback marks {marks}, results {results.get('fallbacks')}, stderr {warnings}"


def check(category: str, proc: subprocess.CompletedProcess, tmp: Path, **kw: Any) -> None:
    ok, why = outcome(proc, tmp, **kw)
    record(category, ok, proc, why)


# --- healthy server: the reference every other case is held to ---------------------------------------
@pytest.mark.parametrize(
    ("api", "mode"), [("chat", "letter"), ("completions", "letter"), ("chat", "generate")]
)
def test_healthy_server(srv: FaultServer, tmp_path: Path, api: str, mode: str):
    proc = cli(*run_args(srv.url, tmp_path, "--mode", mode, opts=[f"api={api}"]))
    check("healthy server", proc, tmp_path)
    also("healthy server", len(cache_rows(tmp_path / "c.sqlite")) == LIMIT)


def test_healthy_cloze_and_broken_echo(srv: FaultServer, tmp_path: Path):
    args = run_args(srv.url, tmp_path, "--mode", "cloze", opts=["api=completions"])
    ref = cli(*args)
    assert ref.returncode == 0, ref.stderr
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    record("healthy server", len(rows) == LIMIT and all(r["valid"] for r in rows), ref)
    srv.default = "bad_echo"
    proc = cli(
        *run_args(
            srv.url, tmp_path, "--mode", "cloze", out="bad", cache="bad.sqlite", opts=["api=completions"]
        )
    )
    record("cloze echo", clear_error(proc, "malformed", srv.url, "positive"), proc)
    also("cloze echo", cache_rows(tmp_path / "bad.sqlite") == [])
    srv.default, srv.echo = "ok", False
    proc = cli(
        *run_args(
            srv.url, tmp_path, "--mode", "cloze", out="noecho", cache="ne.sqlite", opts=["api=completions"]
        )
    )
    record("cloze echo", clear_error(proc, "echo"), proc)


# --- log-probs missing -----------------------------------------------------------------------------------
@pytest.mark.parametrize("api", ["chat", "completions"])
def test_server_without_logprobs_is_a_marked_fallback(srv: FaultServer, tmp_path: Path, api: str):
    srv.logprobs = False
    proc = cli(*run_args(srv.url, tmp_path, opts=[f"api={api}"]))
    check("no log-probs: whole server", proc, tmp_path, fallback=FALLBACK_NO_LOGPROBS)
    cached = cache_rows(tmp_path / "c.sqlite")
    also("no log-probs: whole server", len(cached) == LIMIT and all(r["fallback"] for r in cached))
    # decided once, before any concurrency: only the deciding request (and its confirmation) asked
    also("no log-probs: whole server", sum(bool(r["body"].get("logprobs")) for r in srv.requests) == 2)


def test_logprobs_option(srv: FaultServer, tmp_path: Path):
    proc = cli(*run_args(srv.url, tmp_path, opts=["logprobs=off"]))
    check("no log-probs: logprobs option", proc, tmp_path, fallback=FALLBACK_OFF)
    srv.logprobs = False
    proc = cli(*run_args(srv.url, tmp_path, out="req", cache="req.sqlite", opts=["logprobs=require"]))
    record("no log-probs: logprobs option", clear_error(proc, "no log-probs", "logprobs=require"), proc)
    also("no log-probs: logprobs option", cache_rows(tmp_path / "req.sqlite") == [])
    proc = cli(*run_args(srv.url, tmp_path, out="bad", opts=["logprobs=maybe"]))
    record("no log-probs: logprobs option", clear_error(proc, "logprobs"), proc)


@pytest.mark.parametrize("faults", [["ok", "no_logprobs", "ok", "no_logprobs"], ["no_logprobs"]])
def test_one_answer_without_logprobs_changes_nothing(srv: FaultServer, tmp_path: Path, faults: list[str]):
    """One early answer without log-probs used to flip a shared flag and change the accuracy."""
    srv.faults = list(faults)
    proc = cli(*run_args(srv.url, tmp_path))
    check("no log-probs: one answer", proc, tmp_path)


# --- malformed bodies -------------------------------------------------------------------------------------
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
]


@pytest.mark.parametrize("fault", BAD_BODIES)
def test_malformed_body_every_time(srv: FaultServer, tmp_path: Path, fault: str):
    """`{"choices": []}` forever used to give 8/8 invalid, exit 0 and no warning."""
    srv.default = fault
    proc = cli(*run_args(srv.url, tmp_path))
    record("malformed body: always", clear_error(proc, "malformed", "tiny", srv.url), proc)
    also("malformed body: always", cache_rows(tmp_path / "c.sqlite") == [])
    also("malformed body: always", len(srv.requests) == 3)  # one request, asked 3 times


@pytest.mark.parametrize("mode", ["letter", "generate"])
def test_malformed_bodies_now_and_then(srv: FaultServer, tmp_path: Path, mode: str):
    srv.faults = ["choices_empty", "ok", "non_json", "list_body", "ok", "choices_null", "nan_logprobs"]
    srv.faults += ["positive_logprobs", "missing_message", "ok", "content_string", "error_body"]
    # 12 bad answers in all: with 13 attempts per request no request can run out, whatever the timing
    proc = cli(*run_args(srv.url, tmp_path, "--mode", mode, opts=["concurrency=3", "malformed_retries=12"]))
    check("malformed body: now and then", proc, tmp_path)


def test_top_k_without_the_labels(srv: FaultServer, tmp_path: Path):
    srv.default = "no_labels_in_top"
    proc = cli(*run_args(srv.url, tmp_path))
    check("top-K lacks labels", proc, tmp_path, fallback=FALLBACK_NOT_IN_TOP)
    srv.default = "partial_labels_in_top"
    proc = cli(*run_args(srv.url, tmp_path, out="partial", cache="p.sqlite"))
    check("top-K lacks labels", proc, tmp_path, out="partial")
    cached = cache_rows(tmp_path / "p.sqlite")
    also("top-K lacks labels", len(cached) == LIMIT and all(r["meta"].get("missing") for r in cached))


# --- paid answers before a failure ------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [16, 4])
def test_answers_before_a_failure_are_kept(srv: FaultServer, tmp_path: Path, batch_size: int):
    """A server answering N requests then 500 used to leave none of the N in the cache."""
    srv.fail_after = 5
    args = run_args(srv.url, tmp_path, "--batch-size", str(batch_size))
    proc = cli(*args)
    record("answer N then fail", clear_error(proc, "HTTP 500"), proc)
    also("answer N then fail", len(cache_rows(tmp_path / "c.sqlite")) == 5)
    srv.fail_after = None
    srv.requests.clear()
    proc = cli(*args)
    check("answer N then fail", proc, tmp_path)
    also("answer N then fail", len(srv.requests) == LIMIT - 5)  # only the missing answers were asked


# --- HTTP errors, timeouts, resets ---------------------------------------------------------------------------
def test_transient_http_errors_and_resets_are_retried(srv: FaultServer, tmp_path: Path):
    srv.faults = ["http:429:0.2", "http:500", "reset", "http:503", "ok", "http:502", "http:408"]
    # 6 failures in all: with 8 attempts per request none can run out, whatever the timing
    proc = cli(*run_args(srv.url, tmp_path, opts=["max_retries=7"]))
    check("http 429/5xx/reset: transient", proc, tmp_path)


@pytest.mark.parametrize(
    ("fault", "names"), [("http:500:0", "HTTP 500"), ("http:429", "HTTP 429"), ("reset", "cannot reach")]
)
def test_persistent_http_errors_fail_clearly(srv: FaultServer, tmp_path: Path, fault: str, names: str):
    srv.default = fault
    proc = cli(*run_args(srv.url, tmp_path))
    record("http 429/5xx/reset: persistent", clear_error(proc, names, "3 attempts"), proc)
    also("http 429/5xx/reset: persistent", len(srv.requests) == 3)  # bounded: 1 + max_retries


def test_timeouts_and_slow_answers(srv: FaultServer, tmp_path: Path):
    srv.faults = ["delay:2", "ok", "delay:2"]
    proc = cli(*run_args(srv.url, tmp_path, opts=["timeout=0.5"]))
    check("timeouts and slow answers", proc, tmp_path)
    srv.faults, srv.default = [], "delay:0.15"
    proc = cli(*run_args(srv.url, tmp_path, out="slow", cache="slow.sqlite"))
    check("timeouts and slow answers", proc, tmp_path, out="slow")
    srv.default = "delay:3"
    proc = cli(
        *run_args(srv.url, tmp_path, out="hang", cache="hang.sqlite", opts=["timeout=0.5", "max_retries=1"])
    )
    record("timeouts and slow answers", clear_error(proc, "no answer within 0.5 s"), proc)


# --- base URLs, secrets, keys -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [
        "tiny@notaurl",
        "tiny@http://",
        "tiny@ftp://x",
        "tiny@http://127.0.0.1:99999/v1",
        f"tiny@http://u:{PASSWORD}@/v1",
    ],
)
def test_malformed_base_url(tmp_path: Path, spec: str):
    proc = cli(*run_args("", tmp_path, model=spec))
    record("malformed base URL", clear_error(proc) and PASSWORD not in proc.stderr, proc)


def test_url_credentials_never_leave_the_process(srv: FaultServer, tmp_path: Path):
    url = srv.url.replace("http://", f"http://alice:{PASSWORD}@")
    proc = cli(*run_args(url, tmp_path))
    check("secrets", proc, tmp_path)
    also("secrets", all(r["auth"] and r["auth"].startswith("Basic ") for r in srv.requests))
    files = [*(tmp_path / "run").iterdir(), *tmp_path.glob("c.sqlite*")]
    leaked = [f.name for f in files if f.is_file() and PASSWORD.encode() in f.read_bytes()]
    also("secrets", not leaked and PASSWORD not in proc.stdout + proc.stderr, why=f"leaked into {leaked}")
    # same server, another password: the same identity, so every answer comes from the cache
    srv.requests.clear()
    proc = cli(*run_args(url.replace(PASSWORD, "other-pass"), tmp_path, out="again"))
    check("secrets", proc, tmp_path, out="again")
    also("secrets", srv.requests == [])
    srv.default = "http:500:0"  # an error message never shows the credentials either
    proc = cli(*run_args(url, tmp_path, out="err", cache="err.sqlite"))
    record(
        "secrets",
        clear_error(proc, "HTTP 500") and PASSWORD not in proc.stderr and "alice" not in proc.stderr,
        proc,
    )


@pytest.mark.parametrize(("env", "key"), [("OPENAI_API_KEY", KEY), ("MY_KEY", "plainlookingsecretvalue42")])
def test_error_body_echoing_the_key_is_redacted(srv: FaultServer, tmp_path: Path, env: str, key: str):
    srv.default = "echo_key"
    proc = cli(*run_args(srv.url, tmp_path, opts=[f"api_key_env={env}"]), env={env: key})
    record("secrets", clear_error(proc, "HTTP 401", "***") and key not in proc.stderr + proc.stdout, proc)


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4o-mini@https://api.openai.com/v1"])
def test_hosted_api_without_key(tmp_path: Path, model: str):
    proc = cli(*run_args("", tmp_path, model=model))
    record("missing API key", clear_error(proc, "OPENAI_API_KEY is not set", "export OPENAI_API_KEY"), proc)
    also("missing API key", "cannot reach" not in proc.stderr)


def test_unknown_backend_option(srv: FaultServer, tmp_path: Path):
    proc = cli(*run_args(srv.url, tmp_path, opts=["max_retrys=3"]))
    record("bad backend option", clear_error(proc, "max_retrys", "max_retries"), proc)
    also("bad backend option", srv.requests == [])
