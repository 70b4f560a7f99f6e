"""DataFrames of runs (culturelens.frames): the tidy results frame and the samples frame hold exactly
what results.json and samples.jsonl hold, and `culturelens export --format parquet | csv` writes them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from realrun import embedded_run, fake_run
from typer.testing import CliRunner

import culturelens as cl
from culturelens.cli import app
from culturelens.frames import RESULT_COLUMNS
from culturelens.sweep import expand


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("frames")
    one = fake_run(tmp, "one", report=False)
    sweep = fake_run(
        tmp, "sweep", limit=16, report=False, variants=expand(["option_order=identity,reversed"])
    )
    return one, sweep


def _check_against_results(df: pd.DataFrame, run: Path) -> int:
    """Every row of the tidy frame equals the number results.json holds for it; returns rows checked."""
    log = cl.read_run(run)
    checked = 0
    for row in df[df.run == run.name].itertuples():
        agg = log.task_variants(row.task)[row.variant]
        entry = agg if row.breakdown == "all" else agg["by"][row.breakdown][row.key]
        m = entry["metrics"][row.metric]
        assert row.mean == m["mean"] and [row.ci_low, row.ci_high] == m["ci"] and row.n == m["n"]
        assert row.ci_method == m["ci_method"]
        checked += 1
    # and nothing in results.json is missing from the frame
    expected = 0
    for task in log.task_names:
        for agg in log.task_variants(task).values():
            expected += len(agg["metrics"])
            expected += sum(len(g["metrics"]) for dim in agg["by"].values() for g in dim.values())
    assert checked == expected
    return checked


def test_load_runs_is_one_tidy_frame_of_every_aggregate(runs):
    one, sweep = runs
    df = cl.load_runs([one, sweep])
    assert list(df.columns) == RESULT_COLUMNS
    assert set(df.run) == {"one", "sweep"} and set(df.model) == {"fake-hash"}
    assert _check_against_results(df, one) > 50 and _check_against_results(df, sweep) > 50
    assert set(df.breakdown) >= {"all", "country", "region", "language", "topic", "subset:format"}
    # the sweep keeps both variants; the primary one is flagged, and the headline metric too
    s = df[(df.run == "sweep") & (df.breakdown == "all") & (df.metric == "acc")]
    assert sorted(s.variant) == ["default", "option_order=reversed"]
    assert s.set_index("variant").primary.to_dict() == {"default": True, "option_order=reversed": False}
    assert df[df.metric == "acc"].headline.all() and not df[df.metric == "label_mass"].headline.any()
    # the per-country frame in one line
    countries = df.query("run == 'one' and breakdown == 'country' and metric == 'acc'").set_index("key")
    by_country = cl.read_run(one).task_results("starter")["by"]["country"]
    assert set(countries.index) == set(by_country)
    assert countries.n.sum() == 20


def test_run_log_methods_give_the_same_frames(runs):
    one, _ = runs
    log = cl.read_run(one)
    pd.testing.assert_frame_equal(log.results_df(), cl.load_runs([one]))
    samples = log.samples_df()
    lines = [json.loads(x) for x in (one / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == len(lines) == 20
    assert list(samples.item_id) == [x["item_id"] for x in lines]
    assert samples.acc.mean() == pytest.approx(log.task_results("starter")["metrics"]["acc"]["mean"])
    assert samples.country.value_counts().to_dict() == {
        c: e["n"] for c, e in log.task_results("starter")["by"]["country"].items()
    }
    first = samples.iloc[0]
    assert first.options == lines[0]["options"] and list(first.probs) == lines[0]["probs"]
    assert (
        first.prediction == str(lines[0]["prediction"])
        and first["subset:format"] == lines[0]["subset"]["format"]
    )


def test_export_writes_parquet_and_csv_tables(runs, tmp_path: Path):
    one, sweep = runs
    res = CliRunner().invoke(app, ["export", str(one), "--format", "parquet"])
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(pd.read_parquet(one / "results.parquet"), cl.load_runs([one]))
    back = pd.read_parquet(one / "samples.parquet")
    assert len(back) == 20 and list(back.options.iloc[0]) == cl.read_run(one).samples[0].options

    res = CliRunner().invoke(
        app, ["export", str(one), str(sweep), "-f", "csv", "--out-dir", str(tmp_path / "t")]
    )
    assert res.exit_code == 0, res.output
    csv = pd.read_csv(tmp_path / "t" / "results.csv")
    tidy = cl.load_runs([one, sweep])
    assert len(csv) == len(tidy) and list(csv.columns) == RESULT_COLUMNS
    assert csv["mean"].tolist() == pytest.approx(tidy["mean"].tolist())
    samples = pd.read_csv(tmp_path / "t" / "samples.csv")
    assert len(samples) == 20 + 2 * 16
    assert json.loads(samples.options.iloc[0]) == cl.read_run(one).samples[0].options


def test_export_bad_input_is_one_line_exit_2(runs, tmp_path: Path):
    one, sweep = runs
    res = CliRunner().invoke(app, ["export", str(one), str(sweep), "--format", "parquet"])
    assert res.exit_code == 2 and "give the folder to write with --out-dir" in res.output
    res = CliRunner().invoke(app, ["export", str(tmp_path / "nope"), "--format", "parquet"])
    assert (
        res.exit_code == 2 and "nope: not found" in res.output and len(res.output.strip().splitlines()) == 1
    )
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in one.iterdir():
        if f.is_file():
            (broken / f.name).write_bytes(f.read_bytes())
    lines = (broken / "samples.jsonl").read_text().splitlines()
    lines[2] = lines[2].replace('"mode": "letter"', '"mode": "bogus"')
    (broken / "samples.jsonl").write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(
        app, ["export", str(broken), "--format", "csv", "--out-dir", str(tmp_path / "x")]
    )
    assert res.exit_code == 2 and "samples.jsonl, line 3" in res.output and "mode" in res.output


def test_pandas_is_imported_only_when_a_frame_is_asked_for(runs):
    one, _ = runs
    code = (
        "import sys, culturelens as cl\n"
        f"log = cl.read_run({str(one)!r}); log.results; log.samples\n"
        "print('pandas' in sys.modules)\n"
        "log.results_df()\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


@pytest.mark.slow
def test_frames_of_a_run_of_the_embedded_model(tmp_path_factory: pytest.TempPathFactory):
    run = embedded_run(tmp_path_factory)
    log = cl.read_run(run)
    df = cl.load_runs([run])
    assert _check_against_results(df, run) > 20
    assert df.model.iloc[0].startswith("SmolLM2-135M-Instruct")
    per_country = df.query("breakdown == 'country' and metric == 'acc'")
    assert per_country.n.sum() == log.task_results("starter")["n"]
    samples = log.samples_df()
    assert len(samples) == log.task_results("starter")["n"]
    assert samples.probs.map(sum).tolist() == pytest.approx([1.0] * len(samples))
