from __future__ import annotations

import json
from pathlib import Path

from conftest import mini_starter

from culturelens.backends.fake import FakeBackend
from culturelens.runner import RunConfig, Runner
from culturelens.schema import Mode, Variant


def _run(tmp_path: Path, backend, **kw):
    data = mini_starter(tmp_path / "data").parent
    cfg = RunConfig(
        data_dir=str(data), out=str(tmp_path / "run"), cache=str(tmp_path / "c.sqlite"), n_boot=200, **kw
    )
    return Runner(cfg, backend=backend).run()


def test_outputs_and_breakdowns(tmp_path: Path):
    res = _run(tmp_path, FakeBackend("first"))
    run = res.run_dir
    for name in ("config.json", "samples.jsonl", "results.json", "timing.json"):
        assert (run / name).exists()
    t = res.results["tasks"]["starter"]
    # always-first: right only where the gold is option 0 (Japan MCQ, Germany "Yes")
    assert t["metrics"]["acc"]["mean"] == 2 / 5 and t["n"] == 5
    assert t["by"]["country"]["Japan"]["metrics"]["acc"]["mean"] == 1.0
    assert t["by"]["country"]["France"]["metrics"]["acc"]["mean"] == 0.0
    assert t["by"]["country"]["Japan"]["iso2"] == "JP"
    assert set(t["by"]["region"]) == {"Asia", "Europe", "Americas"}
    assert set(t["by"]) >= {"country", "region", "language", "topic", "subset:format"}
    lo, hi = t["metrics"]["acc"]["ci"]
    assert 0 <= lo <= 0.4 <= hi <= 1
    samples = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 5 and all(s["mode"] == "letter" for s in samples)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["backend"]["identity"]["model"] == "fake-first" and "versions" in cfg


def test_rerun_uses_cache_and_gives_identical_results(tmp_path: Path):
    fb = FakeBackend("hash")
    first = _run(tmp_path, fb)
    calls = len(fb.calls)
    # a finished run with exactly the same requests is reused as it is
    second = _run(tmp_path, fb)
    assert len(fb.calls) == calls and second.timing["reused"] is True
    assert first.results == second.results
    # another run directory: every response comes from the cache, results identical
    data = tmp_path / "data"
    cfg = RunConfig(
        data_dir=str(data), out=str(tmp_path / "run2"), cache=str(tmp_path / "c.sqlite"), n_boot=200
    )
    third = Runner(cfg, backend=fb).run()
    assert len(fb.calls) == calls
    assert (
        third.timing["cache_hits"] == 5 and third.timing["computed"] == 0 and not third.timing.get("reused")
    )
    assert first.results == third.results


def test_changed_data_is_not_a_finished_run(tmp_path: Path):
    fb = FakeBackend("hash")
    _run(tmp_path, fb)
    path = tmp_path / "data" / "starter.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    rows[0]["question"] += " (edited)"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    calls = len(fb.calls)
    cfg = RunConfig(
        data_dir=str(path.parent), out=str(tmp_path / "run"), cache=str(tmp_path / "c.sqlite"), n_boot=200
    )
    again = Runner(cfg, backend=fb).run()
    assert not again.timing.get("reused")
    assert again.timing["computed"] == 1 and again.timing["cache_hits"] == 4 and len(fb.calls) == calls + 1


def test_identical_prompts_across_variants_cost_nothing(tmp_path: Path):
    fb = FakeBackend("hash")
    # rotate:0 is the identity order: same prompt as the default variant
    variants = [Variant(), Variant(option_order="rotate:0"), Variant(option_order="reversed")]
    res = _run(tmp_path, fb, variants=variants)
    assert res.timing["samples"] == 15
    assert res.timing["unique_requests"] < 15


def test_modes_are_named_in_every_result(tmp_path: Path):
    for mode in (Mode.CLOZE, Mode.GENERATE):
        res = _run(tmp_path / mode.value, FakeBackend("first"), mode=mode)
        t = res.results["tasks"]["starter"]
        assert t["modes"] == [mode.value]
        assert "acc" in t["metrics"]


def test_streaming_blocks_give_the_same_outputs(tmp_path: Path):
    """Requests are streamed a block of items at a time; any block size gives the same results and
    samples, computes each request once, and the progress bar ends at the number computed."""
    variants = [Variant(), Variant(option_order="reversed", labels="numbers")]
    whole = _run(tmp_path / "whole", FakeBackend("hash"), variants=variants)
    seen: list[tuple[int, int]] = []
    fb = FakeBackend("hash")
    data = mini_starter(tmp_path / "small" / "data").parent
    cfg = RunConfig(
        data_dir=str(data),
        out=str(tmp_path / "small" / "run"),
        cache=str(tmp_path / "small" / "c.sqlite"),
        n_boot=200,
        variants=variants,
        block_size=3,  # 2 variants: one item per block
    )
    small = Runner(cfg, backend=fb, progress=lambda stage, done, total: seen.append((done, total))).run()
    assert small.results == whole.results
    assert small.timing["computed"] == 10 and sum(fb.calls) == 10

    def rows(run: Path) -> list[tuple[str, str, object]]:
        recs = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
        return sorted((r["item_id"], r["variant"], r["prediction"]) for r in recs)

    assert rows(small.run_dir) == rows(whole.run_dir) and len(rows(small.run_dir)) == 10
    assert seen[0] == (0, 10) and seen[-1] == (10, 10) and len(seen) > 2
    assert not (small.run_dir / "samples.jsonl.tmp").exists()


def test_baselines_in_results_and_console(tmp_path: Path):
    from culturelens.console import baseline_line

    res = _run(tmp_path, FakeBackend("first"))
    t = res.results["tasks"]["starter"]
    base = t["baselines"]
    # four 4-option items and one 3-label item: uniform guessing scores (4 * 1/4 + 1/3) / 5
    assert abs(base["chance"]["value"] - (1 + 1 / 3) / 5) < 1e-9 and base["chance"]["n"] == 5
    # gold is displayed first on 2 of 5 items (Japan, Germany): always-A scores 0.4, as the model does
    assert base["majority_position"]["label"] == "A" and base["majority_position"]["value"] == 0.4
    line = baseline_line(t, "acc", t["metrics"]["acc"])
    assert line is not None and "not above chance" in line and "always A 0.400: indistinguishable" in line
    lo, hi = t["metrics"]["acc"]["ci"]
    assert hi - lo > 0.3  # 2/5 is not a precise estimate


def test_losing_the_lock_race_leaves_the_winners_directory(tmp_path: Path, monkeypatch):
    """Two processes both see ``--out`` missing; the one that loses the lock must not remove the
    directory and lock file of the one that won (CI once lost a whole run's samples.jsonl to this)."""
    import subprocess
    import sys

    import pytest

    from culturelens import rundir

    holder: list[subprocess.Popen] = []
    real_prepare = rundir.prepare

    def prepare_then_lose_the_race(run_dir: Path) -> Path:
        real_prepare(run_dir)  # this process "created" it; another takes the lock before we do
        code = (
            "import sys,time;from pathlib import Path;from culturelens.rundir import RunLock;"
            "RunLock(Path(sys.argv[1])).acquire();print('locked',flush=True);time.sleep(60)"
        )
        p = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True)
        holder.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "locked"
        return run_dir

    monkeypatch.setattr(rundir, "prepare", prepare_then_lose_the_race)
    try:
        with pytest.raises(rundir.RunDirError, match="in use"):
            _run(tmp_path, FakeBackend("first"))
        assert (tmp_path / "run" / rundir.LOCK_FILE).exists()
        # the winner still holds a lock a third process sees
        with pytest.raises(rundir.RunDirError, match="in use"):
            rundir.RunLock(tmp_path / "run").acquire()
    finally:
        for p in holder:
            p.kill()
            p.wait()


# --- a finished run recognised by its reuse key (no prompt rendered) ----------------------------------
def _render_fails(monkeypatch) -> None:
    from culturelens.tasks.base import Task

    def boom(*a, **k):
        raise AssertionError("a prompt was rendered")

    monkeypatch.setattr(Task, "render", boom)


def test_finished_run_is_recognised_without_rendering(tmp_path: Path, monkeypatch):
    fb = FakeBackend("hash")
    first = _run(tmp_path, fb)
    status = json.loads((first.run_dir / "run.json").read_text())
    assert status["reuse_key"]
    with monkeypatch.context() as m:
        _render_fails(m)
        again = _run(tmp_path, fb)
    assert again.timing["reused"] and again.timing["reused_by_key"]
    assert again.results == first.results
    # held lock as asked
    cfg = RunConfig(
        data_dir=str(tmp_path / "data"),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=200,
    )
    held = Runner(cfg, backend=fb, hold_lock=True).run()
    assert held.timing["reused_by_key"] and held.lock is not None and held.lock.acquired
    held.release()


def test_a_changed_input_is_never_reused_by_key(tmp_path: Path, monkeypatch):
    import os

    import culturelens.runner as runner_mod

    fb = FakeBackend("hash")
    data = mini_starter(tmp_path / "data")

    def run(**kw):
        cfg = {
            "data_dir": str(data.parent),
            "out": str(tmp_path / "run"),
            "cache": str(tmp_path / "c.sqlite"),
        }
        return Runner(RunConfig(**{**cfg, "n_boot": 200, **kw}), backend=fb).run()

    first = run()
    assert run().timing.get("reused_by_key")
    # the same size and modification time, another gold answer: the content decides
    text, st = data.read_text(), data.stat()
    data.write_text(text.replace('"answer": 0', '"answer": 1', 1))
    assert data.stat().st_size == st.st_size and data.read_text() != text
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed = run()
    assert not changed.timing.get("reused") and changed.results != first.results
    assert run().timing.get("reused_by_key")  # and recognised at once from then on
    # an option that decides the results: the full check (which renders every prompt)
    with monkeypatch.context() as m:
        _render_fails(m)
        try:
            run(n_boot=300)
            rendered = False
        except AssertionError:
            rendered = True
    assert rendered
    # changed code (the package digest): the full check, which finds the same requests and reuses
    run()
    monkeypatch.setattr(runner_mod, "_code_digest", lambda: "edited")
    edited = run()
    assert edited.timing.get("reused") and not edited.timing.get("reused_by_key")
    assert run().timing.get("reused_by_key")  # the full check recorded the new key


def test_no_reuse_key_for_a_task_whose_data_cannot_be_digested(tmp_path: Path):
    from culturelens.backends.fake import FakeBackend as FB
    from culturelens.runner import reuse_key

    fb = FB("hash")
    cfg = RunConfig(tasks=["starter"], data_dir=str(tmp_path / "missing"))
    assert reuse_key(cfg, fb, fb.identity()) is None
    cfg = RunConfig(tasks=["starter"], judges=["fake:first"])
    assert reuse_key(cfg, fb, fb.identity()) is None
    shipped = RunConfig(tasks=["starter"])
    assert reuse_key(shipped, fb, fb.identity()) == reuse_key(shipped, fb, fb.identity())
    assert reuse_key(shipped, fb, fb.identity()) != reuse_key(shipped, FB("first"), FB("first").identity())
