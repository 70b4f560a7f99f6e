from __future__ import annotations

import json
from pathlib import Path

from conftest import mini_starter, write_jsonl
from typer.testing import CliRunner

from culturelens.cli import app

runner = CliRunner()


def test_unknown_task_is_a_one_line_error():
    res = runner.invoke(app, ["run", "--task", "startr", "--quiet"])
    assert res.exit_code == 2
    assert "unknown task 'startr'" in res.output and "starter" in res.output


def test_unknown_model_prefix(tmp_path: Path):
    res = runner.invoke(app, ["run", "--model", "tpu:foo", "--cache", str(tmp_path / "c"), "--quiet"])
    assert res.exit_code == 2 and "unknown model spec" in res.output


def test_missing_model_file(tmp_path: Path):
    res = runner.invoke(
        app, ["run", "--model", f"llamacpp:{tmp_path}/nope.gguf", "--cache", str(tmp_path / "c"), "--quiet"]
    )
    assert res.exit_code == 2 and "model file not found" in res.output and "nope.gguf" in res.output


def test_malformed_row_names_file_row_field(tmp_path: Path):
    path = mini_starter(tmp_path / "d")
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    rows[2]["answer"] = 9
    write_jsonl(path, rows)
    res = runner.invoke(
        app,
        [
            "run",
            "--model",
            "fake:first",
            "--data-dir",
            str(path.parent),
            "--quiet",
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert res.exit_code == 2
    assert "starter.jsonl, row 3, field 'answer'" in res.output
    assert not (tmp_path / "r").exists()  # nothing started half-loaded


def test_bad_country_row(tmp_path: Path):
    path = mini_starter(tmp_path / "d")
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    rows[0]["country"] = "Atlantis"
    write_jsonl(path, rows)
    res = runner.invoke(
        app,
        [
            "run",
            "--model",
            "fake:first",
            "--data-dir",
            str(path.parent),
            "--quiet",
            "--cache",
            str(tmp_path / "c.sqlite"),
        ],
    )
    assert res.exit_code == 2 and "row 1, field 'country'" in res.output


def test_cached_work_survives_a_later_error(tmp_path: Path):
    from culturelens.cache import ResponseCache

    path = mini_starter(tmp_path / "d")
    cache = tmp_path / "c.sqlite"
    ok = runner.invoke(
        app,
        [
            "run",
            "--model",
            "fake:first",
            "--data-dir",
            str(path.parent),
            "--quiet",
            "--cache",
            str(cache),
            "--out",
            str(tmp_path / "r"),
            "--no-report",
        ],
    )
    assert ok.exit_code == 0, ok.output
    before = ResponseCache(cache).count()
    bad = runner.invoke(
        app, ["run", "--model", "fake:first", "--task", "nope", "--cache", str(cache), "--quiet"]
    )
    assert bad.exit_code == 2
    assert ResponseCache(cache).count() == before == 5


def test_tasks_lists_starter_with_counts():
    res = runner.invoke(app, ["tasks", "--json"])
    assert res.exit_code == 0
    rows = {r["task"]: r for r in json.loads(res.output)}
    assert rows["starter"]["items"] >= 150
    assert len(rows["starter"]["countries"]) >= 25


def test_run_fake_prints_country_table(tmp_path: Path):
    path = mini_starter(tmp_path / "d")
    res = runner.invoke(
        app,
        [
            "run",
            "--model",
            "fake:first",
            "--data-dir",
            str(path.parent),
            "--no-report",
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "Japan" in res.output and "per country" in res.output
    assert (tmp_path / "r" / "results.json").exists()


def test_task_options_reach_the_task_and_config(tmp_path: Path):
    res = runner.invoke(app, ["run", "--task", "cdeval", "--opt", "cdeval:templates=nope", "--quiet"])
    assert res.exit_code == 2 and "cdeval templates ['nope']" in res.output
    res = runner.invoke(app, ["run", "--task", "starter", "--opt", "normad:levels=none", "--quiet"])
    assert res.exit_code == 2 and "task 'normad' is not in this run" in res.output
    res = runner.invoke(app, ["run", "--opt", "novalue", "--quiet"])
    assert res.exit_code == 2 and "expected KEY=VALUE" in res.output
    path = mini_starter(tmp_path / "d")
    res = runner.invoke(
        app,
        [
            "run",
            "--model",
            "fake:first",
            "--data-dir",
            str(path.parent),
            "--quiet",
            "--no-report",
            "--model-opt",
            "delay=0.001",
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["config"]["backend_options"] == {"delay": 0.001}
    res = runner.invoke(app, ["run", "--model", "fake:first", "--model-opt", "seed=3", "--quiet"])
    assert res.exit_code == 2 and "has no option 'seed'" in res.output


def test_datasets_root_env_finds_each_release(monkeypatch, tmp_path: Path):
    from conftest import SHARED

    from culturelens.tasks.base import get_task

    (tmp_path / "kalahi").mkdir()
    monkeypatch.setenv("CULTURELENS_DATA", str(tmp_path))
    assert get_task("kalahi").data_dir == tmp_path / "kalahi"
    assert get_task("cdeval").data_dir is None  # no such folder under the root: download as usual
    monkeypatch.setenv("CULTURELENS_KALAHI_DIR", str(SHARED / "kalahi"))
    assert get_task("kalahi").data_dir == SHARED / "kalahi"  # the task's own variable wins
    res = runner.invoke(app, ["tasks", "--json"], env={"CULTURELENS_DATA": str(SHARED)})
    rows = {r["task"]: r for r in json.loads(res.output)}
    if (SHARED / "kalahi").exists():
        assert rows["kalahi"]["items"] and rows["kalahi"]["items"] > 0


def test_progress_lines_when_output_is_not_a_terminal(tmp_path: Path):
    """nohup / Slurm / CI: plain progress lines appear while the run goes, not only at the end."""
    import subprocess
    import sys

    path = mini_starter(tmp_path / "d")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "culturelens.cli",
            "run",
            "--model",
            "fake:hash",
            "--data-dir",
            str(path.parent),
            "--model-opt",
            "delay=0.3",
            "--batch-size",
            "1",
            "--no-report",
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "CULTURELENS_PROGRESS_S": "0.5", "CULTURELENS_NATIVE_PROBE": "0"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if "compute:" in ln]
    assert len(lines) >= 3 and lines[-1].split("compute: ")[1].startswith("5/5"), proc.stdout


def test_models_and_runs_listings(tmp_path: Path):
    res = runner.invoke(app, ["models", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert any(r["spec"].startswith("llamacpp:embedded") for r in rows)
    path = mini_starter(tmp_path / "d")
    args = [
        "run",
        "--model",
        "fake:first",
        "--data-dir",
        str(path.parent),
        "--quiet",
        "--no-report",
        "--cache",
        str(tmp_path / "c.sqlite"),
    ]
    for name in ("r1", "r2"):
        assert runner.invoke(app, [*args, "--out", str(tmp_path / "runs" / name)]).exit_code == 0
    res = runner.invoke(app, ["runs", str(tmp_path / "runs"), "--json"])
    listed = json.loads(res.output)
    assert {r["run"] for r in listed} == {"r1", "r2"}
    assert all(
        r["status"] == "complete" and r["headline"].startswith("acc 0.400") and r["n"] == 5 for r in listed
    )


def test_one_run_directory_per_model_identity(tmp_path: Path):
    from culturelens.backends.fake import FakeBackend
    from culturelens.runner import RunConfig

    ident = FakeBackend("hash").identity()
    names = {RunConfig(model=m).run_id(ident) for m in ("default", "embedded", "llamacpp:embedded")}
    assert len(names) == 1 and next(iter(names)).startswith("fake-hash-fake__starter__")


def test_limit_mode_flag_reaches_every_task(tmp_path: Path):
    path = mini_starter(tmp_path / "d")
    args = [
        "run",
        "--model",
        "fake:first",
        "--data-dir",
        str(path.parent),
        "--quiet",
        "--no-report",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--limit",
        "2",
    ]
    res = runner.invoke(app, [*args, "--limit-mode", "first", "--out", str(tmp_path / "f")])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "f" / "config.json").read_text())
    assert cfg["config"]["task_options"] == {"starter": {"limit_mode": "first"}}
    ids = [json.loads(x)["item_id"] for x in (tmp_path / "f" / "samples.jsonl").read_text().splitlines()]
    assert ids == ["m-jp-1", "m-fr-1"]  # file order
    res = runner.invoke(app, [*args, "--limit-mode", "random", "--out", str(tmp_path / "g")])
    assert res.exit_code == 2 and "--limit-mode" in res.output
