"""`culturelens export`: a results table (Markdown / CSV) whose rows carry n, CI, baselines and verdict."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from typer.testing import CliRunner

import culturelens as cl
from culturelens.cli import app
from culturelens.sweep import expand


def _run(tmp_path: Path, name: str, **kw) -> Path:
    done = cl.run(
        model="fake:hash",
        tasks=["starter"],
        out=str(tmp_path / name),
        cache=str(tmp_path / "c"),
        report=False,
        **kw,
    )
    return done.run_dir


def test_csv_rows_match_the_results_and_carry_baselines(tmp_path: Path):
    run = _run(tmp_path, "a", limit=30)
    res = CliRunner().invoke(app, ["export", str(run), "--format", "csv", "--by", "region"])
    assert res.exit_code == 0, res.output
    table = list(csv.DictReader(io.StringIO(res.stdout)))
    entry = cl.read_run(run).task_results("starter")
    head = table[0]
    assert head["group"] == "all" and head["metric"] == "acc"
    assert float(head["score"]) == entry["metrics"]["acc"]["mean"] and int(head["n"]) == 30
    assert float(head["chance"]) == entry["baselines"]["chance"]["value"]
    assert head["vs_chance"] in ("above", "below", "indistinguishable")
    regions = {r["group"] for r in table[1:]}
    assert regions == {f"region={g}" for g in entry["by"]["region"]}
    assert sum(int(r["n"]) for r in table[1:]) == 30


def test_markdown_flags_small_n_and_shows_the_sweep_range(tmp_path: Path):
    run = _run(tmp_path, "s", limit=12, variants=expand(["option_order=identity,reversed"]))
    out = tmp_path / "t.md"
    res = CliRunner().invoke(app, ["export", str(run), "--by", "country", "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "2 variants: mean" in text and "range" in text
    assert " †" in text and "fewer than 10 scored units" in text
    assert text.splitlines()[0].startswith("| model | task |")


def test_export_of_a_missing_run_is_one_line_exit_2(tmp_path: Path):
    res = CliRunner().invoke(app, ["export", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "nope: not found" in res.output
    res = CliRunner().invoke(app, ["export", str(_run(tmp_path, "b", limit=4)), "--format", "xlsx"])
    assert res.exit_code == 2 and "use md or csv" in res.output
