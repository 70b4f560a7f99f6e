"""Fault injection over the CLI: damaged caches and run directories, bad arguments, empty input,
signals, concurrent runs, repeated SIGKILLs. Every case must end either in the right results or in
exit code 2 with exactly one ``error:`` line and no traceback, and never lose cached work.

``pytest tests/test_faults.py -s`` prints the tally (tried / clear per category); ``make soak`` runs
the long kill/resume loop (``--soak``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import mini_starter

CLI = [sys.executable, "-m", "culturelens.cli"]
TALLY: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # category -> [tried, clear]


@pytest.fixture(scope="module", autouse=True)
def _print_tally():
    yield
    if TALLY:
        lines = ["", "fault suite: category  tried  clear"]
        for cat, (tried, clear) in sorted(TALLY.items()):
            lines.append(f"  {cat:<22} {tried:>5} {clear:>6}")
        lines.append(
            f"  {'total':<22} {sum(t for t, _ in TALLY.values()):>5} {sum(c for _, c in TALLY.values()):>6}"
        )
        print("\n".join(lines))


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "CULTURELENS_NATIVE_PROBE": "0", **(env or {})},
    )


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


def record(category: str, ok: bool, proc: subprocess.CompletedProcess | None = None) -> None:
    TALLY[category][0] += 1
    TALLY[category][1] += int(ok)
    detail = f"\nrc={proc.returncode}\nstderr={proc.stderr[-1500:]}" if proc is not None else ""
    assert ok, f"{category}: not a clear outcome{detail}"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return mini_starter(tmp_path / "data").parent


def base_args(data: Path, tmp: Path, out: str = "run", cache: str = "c.sqlite") -> list[str]:
    return [
        "run",
        "--model",
        "fake:hash",
        "--data-dir",
        str(data),
        "--cache",
        str(tmp / cache),
        "--out",
        str(tmp / out),
        "--no-report",
        "-q",
    ]


def cache_rows(path: Path) -> int:
    """Rows in the response cache; 0 while the run that creates it has not made its table yet."""
    try:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:  # the file exists a moment before its table does
        return 0


# --- run directories --------------------------------------------------------------------------------
def test_out_is_a_file_or_under_a_file(tmp_path: Path, data: Path):
    (tmp_path / "afile").write_text("x")
    for out, name in (("afile", "afile"), ("afile/sub", "afile")):
        proc = cli(*base_args(data, tmp_path, out=out))
        record("run directory", clear_error(proc, name), proc)


def test_out_not_writable(tmp_path: Path, data: Path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root ignores permission bits: use a read-only mount if allowed
        ro.chmod(0o755)
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True
        )
        if mounted.returncode != 0:
            pytest.skip("cannot make a read-only directory here (root without mount rights)")
    try:
        proc = cli(*base_args(data, tmp_path, out="ro/run"))
        record("run directory", clear_error(proc, "ro"), proc)
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)
        ro.chmod(0o755)


def test_run_dir_in_use_by_another_process(tmp_path: Path, data: Path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time;from pathlib import Path;from culturelens.rundir import RunLock;"
            "l=RunLock(Path(sys.argv[1])).acquire();print('locked',flush=True);time.sleep(60)",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        proc = cli(*base_args(data, tmp_path))
        record("run directory", clear_error(proc, "in use", str(holder.pid)), proc)
    finally:
        holder.kill()
        holder.wait()
    proc = cli(*base_args(data, tmp_path))  # the lock dies with its process
    record("run directory", proc.returncode == 0, proc)


def test_two_processes_same_out(tmp_path: Path, data: Path):
    args = [*base_args(data, tmp_path), "--model-opt", "delay=0.3", "--batch-size", "1"]
    procs = [
        subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [(p, *p.communicate(timeout=120)) for p in procs]
    codes = sorted(p.returncode for p, _, _ in outs)
    # either they did not overlap (both fine) or the second was told who holds the directory
    ok = codes == [0, 0] or (codes == [0, 2] and any("in use" in e for _, _, e in outs))
    assert not (tmp_path / "run" / "samples.jsonl.tmp").exists()
    samples = (tmp_path / "run" / "samples.jsonl").read_text().splitlines()
    record("concurrency", ok and len(samples) == 5)


def test_stale_analyses_never_survive_another_run(tmp_path: Path, data: Path):
    sweep = cli(*base_args(data, tmp_path), "--vary", "labels=letters,numbers")
    assert sweep.returncode == 0, sweep.stderr
    assert (tmp_path / "run" / "robustness.json").exists()
    single = cli(*base_args(data, tmp_path))
    ok = single.returncode == 0 and not (tmp_path / "run" / "robustness.json").exists()
    record("run directory", ok, single)


def test_cut_or_edited_outputs_are_recomputed(tmp_path: Path, data: Path):
    args = base_args(data, tmp_path)
    assert cli(*args).returncode == 0
    run = tmp_path / "run"
    ref_samples = (run / "samples.jsonl").read_text()
    ref_results = json.loads((run / "results.json").read_text())
    lines = ref_samples.splitlines(keepends=True)
    (run / "samples.jsonl").write_text("".join(lines[: len(lines) // 2]))
    proc = cli(*args)
    ok = proc.returncode == 0 and (run / "samples.jsonl").read_text() == ref_samples
    record("run directory", ok, proc)
    edited = dict(ref_results)
    edited["tasks"] = {"starter": {**ref_results["tasks"]["starter"], "n": 999}}
    (run / "results.json").write_text(json.dumps(edited))
    proc = cli(*args)
    ok = proc.returncode == 0 and json.loads((run / "results.json").read_text()) == ref_results
    record("run directory", ok, proc)


# --- caches -----------------------------------------------------------------------------------------
def test_cache_is_a_directory(tmp_path: Path, data: Path):
    (tmp_path / "cdir").mkdir()
    proc = cli(*base_args(data, tmp_path, cache="cdir"))
    record("cache", clear_error(proc, "cdir", "directory"), proc)
    assert not (tmp_path / "run").exists(), "a failed start must not leave an empty run directory"


def test_garbage_and_truncated_cache(tmp_path: Path, data: Path):
    (tmp_path / "junk.sqlite").write_bytes(os.urandom(5000))
    proc = cli(*base_args(data, tmp_path, cache="junk.sqlite"))
    record("cache", clear_error(proc, "junk.sqlite", "mv "), proc)
    # a real cache cut short
    good = tmp_path / "good.sqlite"
    assert cli(*base_args(data, tmp_path, out="ref", cache="good.sqlite")).returncode == 0
    ref = json.loads((tmp_path / "ref" / "results.json").read_text())
    raw = good.read_bytes()
    for i, cut in enumerate((len(raw) // 2, 100, len(raw) - 1)):
        bad = tmp_path / f"cut{i}.sqlite"
        bad.write_bytes(raw[:cut])
        proc = cli(*base_args(data, tmp_path, out=f"cut{i}", cache=bad.name))
        if proc.returncode == 0:  # sqlite may still read what is left: the numbers must then be right
            got = json.loads((tmp_path / f"cut{i}" / "results.json").read_text())
            ok = got["tasks"] == ref["tasks"]
        else:
            ok = clear_error(proc, bad.name)
        record("cache", ok, proc)


def test_cache_not_a_culturelens_cache(tmp_path: Path, data: Path):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE responses (a, b)")
    proc = cli(*base_args(data, tmp_path, cache="other.sqlite"))
    record("cache", clear_error(proc, "other.sqlite"), proc)


# --- arguments and input ------------------------------------------------------------------------------
BAD_ARGS = [
    (["--limit", "0"], "--limit"),
    (["--limit", "-1"], "--limit"),
    (["--batch-size", "0"], "--batch-size"),
    (["--countries", "Narnia"], "Narnia"),
    (["--countries", "Iceland"], "Iceland"),
    (["--model-opt", "dealy=1"], "dealy"),
    (["--vary", "colour=red"], "colour"),
    (["--task", "nosuchtask"], "nosuchtask"),
    (["--persona", "typical:Narnia"], "Narnia"),
    (["--model", "nosuch:thing"], "nosuch"),
    (["--model", "llamacpp:/no/such/model.gguf"], "/no/such/model.gguf"),
]


@pytest.mark.parametrize("extra,name", BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_arguments(tmp_path: Path, data: Path, extra: list[str], name: str):
    args = base_args(data, tmp_path)
    if "--task" in extra:
        args = [a for a in args if a != "--data-dir" and a != str(data)]
    proc = cli(*args, *extra)
    record("arguments", clear_error(proc, name), proc)
    assert not (tmp_path / "run").exists(), "a failed start must not leave an empty run directory"


def test_empty_and_duplicate_input(tmp_path: Path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "starter.jsonl").write_text("")
    proc = cli(*base_args(d, tmp_path))
    record("input", clear_error(proc, "starter"), proc)
    rows = [json.loads(x) for x in mini_starter(tmp_path / "m").read_text().splitlines()]
    rows[1]["id"] = rows[0]["id"]
    (d / "starter.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = cli(*base_args(d, tmp_path))
    record("input", clear_error(proc, rows[0]["id"]), proc)


# --- signals -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_says_what_was_kept_and_resumes(tmp_path: Path, data: Path, sig: int, code: int):
    ref = cli(*base_args(data, tmp_path, out="ref", cache="ref.sqlite"))
    assert ref.returncode == 0
    args = [*base_args(data, tmp_path), "--model-opt", "delay=0.4", "--batch-size", "1"]
    proc = subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CULTURELENS_NATIVE_PROBE": "0"},
    )
    cache = tmp_path / "c.sqlite"
    deadline = time.time() + 60
    while time.time() < deadline and (not cache.exists() or cache_rows(cache) < 2):
        time.sleep(0.05)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    kept = cache_rows(cache)
    ok = (
        proc.returncode == code
        and "interrupted" in stderr
        and "resume" in stderr
        and "Traceback" not in stderr
        and not (tmp_path / "run" / "samples.jsonl.tmp").exists()
        and 2 <= kept < 5
    )
    status = json.loads((tmp_path / "run" / "run.json").read_text())
    ok = ok and status["status"] == "interrupted"
    again = cli(*base_args(data, tmp_path))
    same = (
        json.loads((tmp_path / "run" / "results.json").read_text())["tasks"]
        == json.loads((tmp_path / "ref" / "results.json").read_text())["tasks"]
    )
    record("signals", ok and again.returncode == 0 and same and cache_rows(cache) == 5)


def test_sigkill_loop_resumes_to_identical_outputs(tmp_path: Path, request: pytest.FixtureRequest):
    """At least 20 SIGKILLs at random moments, then the uninterrupted run's exact outputs."""
    soak = request.config.getoption("--soak")
    kills_wanted = 200 if soak else 20
    rows = [json.loads(x) for x in mini_starter(tmp_path / "m").read_text().splitlines()]
    many = []
    for k in range(12):  # 60 items
        for r in rows:
            many.append({**r, "id": f"{r['id']}-{k}"})
    d = tmp_path / "d"
    d.mkdir()
    (d / "starter.jsonl").write_text("".join(json.dumps(r) + "\n" for r in many))
    ref = cli(*base_args(d, tmp_path, out="ref", cache="ref.sqlite"))
    assert ref.returncode == 0
    args = [*base_args(d, tmp_path), "--model-opt", "delay=0.02", "--batch-size", "2"]
    rng = random.Random(7)
    kills = 0
    cache = tmp_path / "c.sqlite"
    while kills < kills_wanted:
        # restart the loop when the run would finish: keep killing mid-run
        if cache.exists() and cache_rows(cache) >= len(many) - 4:
            cache.unlink()
            shutil.rmtree(tmp_path / "run", ignore_errors=True)
        proc = subprocess.Popen(
            [*CLI, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "CULTURELENS_NATIVE_PROBE": "0"},
        )
        time.sleep(rng.uniform(0.3, 1.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        if cache.exists():  # the cache is never damaged by a kill
            with sqlite3.connect(cache) as db:
                assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    final = cli(*args)
    assert final.returncode == 0, final.stderr
    same_samples = (tmp_path / "run" / "samples.jsonl").read_text() == (
        tmp_path / "ref" / "samples.jsonl"
    ).read_text()
    same_results = json.loads((tmp_path / "run" / "results.json").read_text()) == json.loads(
        (tmp_path / "ref" / "results.json").read_text()
    )
    TALLY["sigkill/resume"][0] += kills
    TALLY["sigkill/resume"][1] += kills if same_samples and same_results else 0
    assert same_samples and same_results


# --- reproduce and secrets --------------------------------------------------------------------------
def test_reproduce_command_recreates_the_run(tmp_path: Path, data: Path):
    args = [*base_args(data, tmp_path), "--vary", "labels=numbers", "--model-opt", "delay=0", "--seed", "3"]
    assert cli(*args).returncode == 0
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    import shlex

    cmd = shlex.split(cfg["command"])
    assert cmd[:2] == ["culturelens", "run"] and "--model-opt" in cmd and "labels=numbers" in cmd
    again = cli(*cmd[1:], "--out", str(tmp_path / "again"), "--cache", str(tmp_path / "c2.sqlite"), "-q")
    assert again.returncode == 0, again.stderr
    a = json.loads((tmp_path / "run" / "results.json").read_text())
    b = json.loads((tmp_path / "again" / "results.json").read_text())
    record("reproduce", a == b)
    from culturelens.report.data import _reproduce

    record("reproduce", _reproduce(cfg) == cfg["command"])


def test_credentials_never_written(tmp_path: Path, data: Path):
    from culturelens.backends.fake import FakeBackend
    from culturelens.runner import RunConfig, Runner

    cfg = RunConfig(
        model="openai:m@https://alice:s3cretpw@example.invalid/v1",
        data_dir=str(data),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
        command=["culturelens", "run", "--model", "openai:m@https://alice:s3cretpw@example.invalid/v1"],
    )
    Runner(cfg, backend=FakeBackend("hash")).run()
    leaked = [p.name for p in (tmp_path / "run").iterdir() if "s3cretpw" in p.read_text(errors="ignore")]
    record("secrets", not leaked)
    assert "***" in (tmp_path / "run" / "config.json").read_text()
