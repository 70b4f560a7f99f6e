"""The real embedded model (SmolLM2-135M-Instruct GGUF via llama.cpp) through the whole pipeline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from culturelens.runner import RunConfig, Runner
from culturelens.schema import Mode

pytest.importorskip("llama_cpp")
pytestmark = pytest.mark.slow


def test_embedded_model_all_modes(tmp_path: Path):
    for mode in (Mode.LETTER, Mode.CLOZE, Mode.GENERATE):
        cfg = RunConfig(
            tasks=["starter"],
            limit=8,
            mode=mode,
            out=str(tmp_path / mode.value),
            cache=str(tmp_path / "c.sqlite"),
            n_boot=200,
        )
        res = Runner(cfg).run()
        t = res.results["tasks"]["starter"]
        assert t["n"] == 8 and t["modes"] == [mode.value]
        assert 0.0 <= t["metrics"]["acc"]["mean"] <= 1.0
        assert len(t["by"]["country"]) >= 4
        samples = [json.loads(x) for x in (res.run_dir / "samples.jsonl").read_text().splitlines()]
        if mode is Mode.GENERATE:
            assert all("text" in s["response"] for s in samples)
        else:
            assert all(abs(sum(s["probs"]) - 1) < 1e-6 for s in samples)
    # a fully cached re-run identifies and formats from the saved model card: no weights loaded
    again = Runner(
        RunConfig(
            tasks=["starter"],
            limit=8,
            mode=Mode.LETTER,
            out=str(tmp_path / "again"),
            cache=str(tmp_path / "c.sqlite"),
            n_boot=200,
        )
    ).run()
    assert again.timing["computed"] == 0 and again.timing["model_loaded"] == 0.0
    assert again.results == json.loads((tmp_path / "letter" / "results.json").read_text())
    cfg = json.loads((tmp_path / "letter" / "config.json").read_text())
    assert cfg["backend"]["chat_template"] == "gguf:tokenizer.chat_template"
    assert len(cfg["backend"]["identity"]["sha256"]) == 64


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "culturelens.cli", "run", "--quiet", "--no-report", *args]


def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path: Path):
    args = ["--limit", "60", "--batch-size", "4", "--mode", "cloze"]
    crash_cache = tmp_path / "crash.sqlite"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        _cli(*args, "--cache", str(crash_cache), "--out", str(tmp_path / "crash")), env=env
    )
    import sqlite3

    deadline = time.time() + 240
    killed = False
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if crash_cache.exists():
            try:
                n = (
                    sqlite3.connect(crash_cache, timeout=1)
                    .execute("SELECT COUNT(*) FROM responses")
                    .fetchone()[0]
                )
            except sqlite3.Error:
                continue
            if n >= 12:
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
    proc.wait(30)
    assert killed, "run finished before it could be killed; raise --limit"
    partial = sqlite3.connect(crash_cache).execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    assert 12 <= partial < 60
    subprocess.run(
        _cli(*args, "--cache", str(crash_cache), "--out", str(tmp_path / "crash")), env=env, check=True
    )
    subprocess.run(
        _cli(*args, "--cache", str(tmp_path / "clean.sqlite"), "--out", str(tmp_path / "clean")),
        env=env,
        check=True,
    )
    a = json.loads((tmp_path / "crash" / "results.json").read_text())
    b = json.loads((tmp_path / "clean" / "results.json").read_text())
    assert a == b
    rows = [json.loads(x) for x in (tmp_path / "crash" / "samples.jsonl").read_text().splitlines()]
    keys = [(r["item_id"], r["variant"]) for r in rows]
    assert len(keys) == len(set(keys)) == 60
