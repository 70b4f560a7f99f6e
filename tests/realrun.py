"""Runs shared by the ecosystem tests (frames, eee, tracking, push): one run of the real embedded model
made once per test session, and quick fake-backend runs."""

from __future__ import annotations

from pathlib import Path

import pytest

import culturelens as cl

REAL_LIMIT = 8


def fake_run(tmp_path: Path, name: str, **kw) -> Path:
    """A real run directory made by the fake backend (deterministic answers, real pipeline)."""
    kw.setdefault("limit", 20)
    done = cl.run(
        model="fake:hash",
        tasks=["starter"],
        out=str(tmp_path / name),
        cache=str(tmp_path / "cache.sqlite"),
        **kw,
    )
    return done.run_dir


def embedded_run(factory: pytest.TempPathFactory) -> Path:
    """The embedded SmolLM2-135M model (llama.cpp) on the starter suite, ``REAL_LIMIT`` items, made
    once per session and reused by every module that asks (a complete run is reused as it is)."""
    pytest.importorskip("llama_cpp")
    base = factory.getbasetemp()
    done = cl.run(
        tasks=["starter"],
        limit=REAL_LIMIT,
        out=str(base / "embedded-run"),
        cache=str(base / "embedded-cache.sqlite"),
    )
    assert done.log.complete
    return done.run_dir
