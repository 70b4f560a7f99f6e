"""The public API and the run log: one finish step for every entry point, and a typed log that reads
back what the runner wrote (also for an old format-1 run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import culturelens as cl
from culturelens.cli import app
from culturelens.runlog import ITEMS_FILE, RunLogError, Sample, Status, read_run
from culturelens.schema import Item

FIX = Path(__file__).parent / "fixtures"


def _files(run_dir: Path) -> set[str]:
    return {p.name for p in run_dir.iterdir() if not p.name.startswith(".")}


def _without_run(path: Path) -> dict:
    data = json.loads(path.read_text())
    data.pop("run", None)
    return data


@pytest.mark.parametrize(
    "args",
    [
        {"tasks": ["starter"], "limit": 12, "vary": ["option_order=identity,reversed"]},
        {"tasks": ["opinions"], "data_dir": str(FIX / "opinions" / "rnr"), "vary": []},
    ],
    ids=["sweep", "survey"],
)
def test_python_api_and_cli_make_the_same_run_directory(tmp_path: Path, args: dict):
    cli_args = [
        "run",
        "--model",
        "fake:hash",
        "--out",
        str(tmp_path / "cli"),
        "--cache",
        str(tmp_path / "c1"),
    ]
    for t in args["tasks"]:
        cli_args += ["--task", t]
    if args.get("limit"):
        cli_args += ["--limit", str(args["limit"])]
    if args.get("data_dir"):
        cli_args += ["--data-dir", args["data_dir"]]
    if args["vary"]:
        cli_args += ["--vary", *args["vary"]]
    res = CliRunner().invoke(app, cli_args)
    assert res.exit_code == 0, res.output

    from culturelens.sweep import expand

    done = cl.run(
        model="fake:hash",
        tasks=args["tasks"],
        limit=args.get("limit"),
        data_dir=args.get("data_dir"),
        variants=expand(args["vary"]),
        out=str(tmp_path / "api"),
        cache=str(tmp_path / "c2"),
    )
    assert isinstance(done, cl.Finished) and done.report is not None and done.report.exists()
    a, b = tmp_path / "cli", tmp_path / "api"
    assert _files(a) == _files(b)
    for name in ("results.json", "samples.jsonl", ITEMS_FILE):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for side in ("robustness.json", "alignment.json"):
        if (a / side).exists():
            assert _without_run(a / side) == _without_run(b / side), side
    expected = {"robustness.json"} if len(args["vary"]) else {"alignment.json"}
    assert expected <= _files(a)


def test_the_log_reads_back_what_the_runner_wrote(tmp_path: Path):
    done = cl.run(
        model="fake:hash", tasks=["starter"], limit=8, out=str(tmp_path / "r"), cache=str(tmp_path / "c")
    )
    log = cl.read_run(done.run_dir)
    assert (
        log.format == 2 and log.complete and log.status is not None and log.status.status is Status.COMPLETE
    )
    assert log.is_whole() and log.results == done.results
    assert log.config.limit == 8 and log.identity["backend"] == "fake" and log.label
    samples = log.samples
    assert len(samples) == 8 and all(isinstance(s, Sample) for s in samples)
    items = log.items("starter")
    assert set(items) == {s.item_id for s in samples} and all(isinstance(i, Item) for i in items.values())
    # the snapshot is the items as the task built them: gold travels with the run
    s0 = samples[0]
    assert items[s0.item_id].correct == s0.gold
    assert s0.to_score().metrics == s0.metrics
    # an edited file makes the run not whole (it is recomputed, never trusted)
    with (done.run_dir / ITEMS_FILE).open("a") as fh:
        fh.write("\n")
    assert not read_run(done.run_dir).is_whole()


def test_a_format_1_run_is_read_and_says_its_items_were_rebuilt(tmp_path: Path):
    done = cl.run(
        model="fake:hash", tasks=["starter"], limit=6, out=str(tmp_path / "r"), cache=str(tmp_path / "c")
    )
    run_dir = done.run_dir
    (run_dir / ITEMS_FILE).unlink()  # what a format-1 run directory looks like
    for name in ("config.json", "run.json"):
        data = json.loads((run_dir / name).read_text())
        data["format"] = 1
        (run_dir / name).write_text(json.dumps(data))
    log = read_run(run_dir)
    assert log.format == 1
    items = log.items("starter")
    assert len(items) == 6 and any("rebuilt from the dataset" in n for n in log.notes)


def test_a_broken_log_is_a_one_line_error_naming_file_and_line(tmp_path: Path):
    done = cl.run(
        model="fake:hash", tasks=["starter"], limit=4, out=str(tmp_path / "r"), cache=str(tmp_path / "c")
    )
    path = done.run_dir / "samples.jsonl"
    lines = path.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["mode"] = "telepathy"
    lines[1] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RunLogError, match=r"samples.jsonl, line 2: field mode"):
        _ = read_run(done.run_dir).samples
    with pytest.raises(RunLogError, match="not found"):
        read_run(tmp_path / "nope")
    shutil.rmtree(done.run_dir)
