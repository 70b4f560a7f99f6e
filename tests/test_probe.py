"""The native probe: a llama.cpp build that crashes on this CPU never takes a run down without a word.

The crash is real: the probe's child process is made to segfault (``CULTURELENS_PROBE_CRASH``), as a
build whose kernels the CPU cannot run does in its first decode.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

from culturelens.backends import probe  # noqa: E402
from culturelens.backends.base import embedded_model_path  # noqa: E402

CLI = [sys.executable, "-m", "culturelens.cli"]


@pytest.fixture
def verdicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "probe.json"
    monkeypatch.setenv("CULTURELENS_PROBE_FILE", str(path))
    monkeypatch.delenv("CULTURELENS_NATIVE_PROBE", raising=False)
    return path


@pytest.mark.slow
def test_probe_passes_and_is_remembered(verdicts: Path):
    model = embedded_model_path()
    v = probe.check(model)
    assert v.ok and v.use_extra_bufts and v.fresh
    again = probe.check(model)
    assert again.ok and not again.fresh  # from the remembered verdicts: no second child process
    assert probe.probe_key(model) in json.loads(verdicts.read_text())


@pytest.mark.slow
def test_crash_only_with_extra_buffer_types_runs_without_them(verdicts: Path, monkeypatch, capfd):
    monkeypatch.setenv("CULTURELENS_PROBE_CRASH", "extra_bufts")
    model = embedded_model_path()
    v = probe.check(model)
    assert v.ok and not v.use_extra_bufts and "SIGSEGV" in v.detail
    from culturelens.backends.llamacpp import LlamaCppBackend
    from culturelens.schema import Request

    b = LlamaCppBackend("embedded")
    err = capfd.readouterr().err
    assert b.use_extra_bufts is False and err.count("warning:") == 1 and "make install" in err
    (resp,) = b.label_logprobs([Request(kind="labels", text="Hello", targets=["A", "B"])])
    assert resp.logprobs and all(x < 0 for x in resp.logprobs)
    assert b.describe()["native"]["use_extra_bufts"] is False
    b.close()


def _run(tmp_path: Path, model: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            *CLI,
            "run",
            "--model",
            model,
            "--limit",
            "3",
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--out",
            str(tmp_path / "run"),
            "--no-report",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


@pytest.mark.slow
def test_embedded_model_falls_back_to_transformers_on_a_crash(tmp_path: Path, verdicts: Path):
    pytest.importorskip("transformers")
    proc = _run(
        tmp_path, "default", {"CULTURELENS_PROBE_CRASH": "all", "CULTURELENS_PROBE_FILE": str(verdicts)}
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "SIGSEGV" in warnings[0] and "hf:embedded" in warnings[0]
    assert "Traceback" not in proc.stderr
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["backend"]["identity"]["backend"] == "hf"
    assert len((tmp_path / "run" / "samples.jsonl").read_text().splitlines()) == 3


@pytest.mark.slow
def test_other_model_stops_with_one_line_and_exit_2(tmp_path: Path, verdicts: Path):
    copy = tmp_path / "model.gguf"
    shutil.copy(embedded_model_path(), copy)
    proc = _run(
        tmp_path,
        f"llamacpp:{copy}",
        {"CULTURELENS_PROBE_CRASH": "all", "CULTURELENS_PROBE_FILE": str(verdicts)},
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:") and "model.gguf" in lines[0] and "SIGSEGV" in lines[0]
    assert "make install" in lines[0]
    assert not (tmp_path / "run").exists()
