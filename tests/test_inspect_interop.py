"""inspect_ai interop, both ways, with the real ``inspect-ai`` package (offline).

* a run -> ``.eval`` logs written with inspect's own ``EvalLog`` / ``write_eval_log``, read back by
  ``read_eval_log``, ``samples_df`` and ``evals_df``: every per-sample value equals the run's sample;
* such a log -> ``culturelens import`` -> the same samples and results (round trip);
* another harness's multiple-choice inspect log (built here with inspect's types, options shuffled,
  completions as text, two epochs) re-scored by culturelens, with robustness across the epochs.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import mini_starter
from typer.testing import CliRunner

pytest.importorskip("inspect_ai")

from inspect_ai.analysis import evals_df, samples_df  # noqa: E402
from inspect_ai.log import read_eval_log  # noqa: E402

from culturelens.backends.fake import FakeBackend  # noqa: E402
from culturelens.cli import app  # noqa: E402
from culturelens.interop.inspect_import import import_inspect  # noqa: E402
from culturelens.interop.inspect_log import write_inspect_logs  # noqa: E402
from culturelens.runlog import read_run  # noqa: E402
from culturelens.runner import RunConfig, Runner  # noqa: E402
from culturelens.sweep import expand  # noqa: E402
from culturelens.tasks.base import get_task  # noqa: E402


def _run(tmp_path: Path, backend, data: Path | None = None, **kw):
    cfg = RunConfig(
        data_dir=str(data) if data else None,
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=200,
        **kw,
    )
    return Runner(cfg, backend=backend).run()


def _check_log_matches_run(run_dir: Path, paths: list[Path]) -> None:
    """Every sample of the run is in the log with the same values, read by inspect's own readers."""
    log = read_run(run_dir)
    assert len(paths) == len(log.task_names)
    samples = log.samples
    several = len({s.variant for s in samples}) > 1
    ours = {(f"{s.item_id}@{s.variant}" if several else s.item_id): s for s in samples}
    for path, task in zip(paths, log.task_names, strict=True):
        elog = read_eval_log(str(path))
        assert elog.version == 2 and elog.status == "success"
        assert elog.eval.task == f"culturelens/{task}"
        assert elog.samples is not None and len(elog.samples) == sum(s.task == task for s in samples)
        for es in elog.samples:
            s = ours[str(es.id)]
            assert es.input == s.prompt
            assert es.metadata["country"] == s.country and es.metadata["language"] == s.language
            assert es.metadata["variant"] == s.variant and es.metadata["mode"] == s.mode.value
            assert es.metadata["region"] == s.region and es.metadata["topic"] == s.topic
            assert {k: v.value for k, v in (es.scores or {}).items()} == s.metrics
            assert es.choices == [s.options[i] for i in s.order]
            # the labels shown: letter mode scores them (A-D, or the words of a label item: Yes / No)
            labels = [t.strip() for t in s.targets] if s.mode.value == "letter" else list("ABCDEFGH")
            gold = [lab for lab, orig in zip(labels, s.order, strict=False) if orig in s.gold]
            assert es.target == gold and len(gold) == len(s.gold)
            if isinstance(s.prediction, int):  # letter scoring: the chosen option's label is the answer
                assert es.output.completion == labels[s.order.index(s.prediction)]
        # the headline with its interval, as results.json has it
        entry = log.task_results(task)
        head = next(sc for sc in elog.results.scores if sc.name == "acc")
        m = entry["metrics"]["acc"]
        assert head.metrics["mean"].value == pytest.approx(m["mean"])
        assert [head.metrics["ci_low"].value, head.metrics["ci_high"].value] == pytest.approx(m["ci"])
        assert head.metrics["n"].value == m["n"]
    # inspect's DataFrames
    df = samples_df([str(p) for p in paths])
    assert len(df) == len(samples)
    for _, row in df.iterrows():
        s = ours[str(row["id"])]
        assert row["metadata_country"] == s.country and row["metadata_item_id"] == s.item_id
        assert row["score_acc"] == s.metrics["acc"]
        for k, v in s.subset.items():
            assert row[f"metadata_subset_{k}"] == v
    ev = evals_df([str(p) for p in paths])
    assert len(ev) == len(paths)
    for task, (_, row) in zip(log.task_names, ev.iterrows(), strict=True):
        assert row["score_acc_mean"] == pytest.approx(log.task_results(task)["metrics"]["acc"]["mean"])
        assert row["score_headline_name"] == "acc"


def test_export_is_read_by_inspect(tmp_path: Path):
    data = mini_starter(tmp_path / "data").parent
    res = _run(tmp_path, FakeBackend("hash"), data, variants=expand(["option_order=identity,reversed"]))
    paths = write_inspect_logs(res.run_dir)
    assert [p.parent for p in paths] == [res.run_dir / "inspect"] and all(p.suffix == ".eval" for p in paths)
    _check_log_matches_run(res.run_dir, paths)
    # inspect's own CLI lists the log as `inspect view --log-dir` does
    cli = Path(sys.executable).parent / "inspect"
    if cli.exists():
        proc = subprocess.run(
            [str(cli), "log", "list", "--log-dir", str(paths[0].parent), "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        listed = json.loads(proc.stdout)
        assert [Path(e["name"]).name for e in listed] == [paths[0].name]
        assert listed[0]["task"].endswith("starter")


def test_round_trip_gives_the_same_run(tmp_path: Path):
    res = _run(tmp_path, FakeBackend("hash"), limit=40, variants=expand(["option_order=identity,reversed"]))
    paths = write_inspect_logs(res.run_dir, tmp_path / "logs")
    back = import_inspect(paths, tmp_path / "back")
    a, b = res.results["tasks"]["starter"], back.results["tasks"]["starter"]
    for key in ("n", "metrics", "by", "country_ranks", "baselines", "extra", "variants", "items"):
        assert a[key] == b[key], key
    strip = ("cache_key", "foreign", "prompt")
    sa = sorted(
        json.dumps({k: v for k, v in s.items() if k not in strip}, sort_keys=True)
        for s in read_run(res.run_dir).raw_samples()
    )
    sb = sorted(
        json.dumps({k: v for k, v in s.items() if k not in strip}, sort_keys=True)
        for s in read_run(back.run_dir).raw_samples()
    )
    assert sa == sb
    assert read_run(back.run_dir).items("starter") == read_run(res.run_dir).items("starter")
    assert (back.run_dir / "robustness.json").exists() is False  # analyses are the CLI's finish step


def test_cli_export_and_import(tmp_path: Path):
    data = mini_starter(tmp_path / "data").parent
    res = _run(tmp_path, FakeBackend("first"), data)
    cli = CliRunner()
    r = cli.invoke(
        app, ["export", str(res.run_dir), "--format", "inspect", "--out-dir", str(tmp_path / "logs")]
    )
    assert r.exit_code == 0, r.output
    logs = sorted((tmp_path / "logs").glob("*.eval"))
    assert len(logs) == 1 and "inspect log:" in r.output
    r = cli.invoke(app, ["import", str(logs[0]), "--out", str(tmp_path / "back"), "--no-report", "-q"])
    assert r.exit_code == 0, r.output
    back = read_run(tmp_path / "back")
    assert back.results["tasks"]["starter"]["metrics"] == res.results["tasks"]["starter"]["metrics"]
    # bad input: one line naming the file, exit 2
    bad = tmp_path / "not-a-log.eval"
    bad.write_text("hello", encoding="utf-8")
    r = cli.invoke(app, ["import", str(bad), "--task", "starter", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and str(bad) in r.output and "not an inspect log" in r.output
    assert len(r.output.strip().splitlines()) == 1
    r = cli.invoke(app, ["export", str(tmp_path / "nowhere"), "--format", "inspect"])
    assert r.exit_code == 2 and "nowhere" in r.output


def _foreign_log(tmp_path: Path, epochs: int = 2) -> tuple[Path, dict[tuple[str, int], bool]]:
    """An inspect log as a multiple-choice harness writes it: the starter items' options shuffled,
    the prompt in its own words, a completion ``ANSWER: X``, inspect's choice scorer's C / I. Returns
    the log and, per (sample id, epoch), whether the answer is right."""
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalSample, EvalSpec, write_eval_log
    from inspect_ai.model import ModelOutput
    from inspect_ai.scorer import Score

    items = [it for it in get_task("starter").items() if it.kind.value == "multiple_choice"][:30]
    rng = random.Random(7)
    samples, right = [], {}
    for epoch in range(1, epochs + 1):
        for k, it in enumerate(items):
            perm = list(range(len(it.options)))
            rng.shuffle(perm)
            choices = [it.options[i] for i in perm]
            listed = "\n".join(f"{'ABCD'[p]}) {c}" for p, c in enumerate(choices))
            text = f"Answer the following multiple choice question.\n\n{it.question}\n\n{listed}"
            pick = rng.randrange(len(choices))
            ok = perm[pick] in it.correct
            right[(f"q{k}", epoch)] = ok
            samples.append(
                EvalSample(
                    id=f"q{k}",
                    epoch=epoch,
                    input=text,
                    choices=choices,
                    target="ABCD"[perm.index(it.correct[0])],
                    output=ModelOutput.from_content(model="m", content=f"ANSWER: {'ABCD'[pick]}"),
                    scores={"choice": Score(value="C" if ok else "I", answer="ABCD"[pick])},
                )
            )
    elog = EvalLog(
        eval=EvalSpec(
            created="2026-01-01T00:00:00+00:00",
            task="inspect_evals/some_mc",
            dataset=EvalDataset(name="x", samples=len(items)),
            model="openai/some-model",
            config=EvalConfig(epochs=epochs),
        ),
        status="success",
        samples=samples,
    )
    path = tmp_path / "foreign.eval"
    write_eval_log(elog, str(path))
    return path, right


def test_foreign_inspect_log_is_rescored(tmp_path: Path):
    path, right = _foreign_log(tmp_path)
    r = CliRunner().invoke(
        app, ["import", str(path), "--task", "starter", "--out", str(tmp_path / "run"), "--no-report", "-q"]
    )
    assert r.exit_code == 0, r.output
    log = read_run(tmp_path / "run")
    samples = log.samples
    assert len(samples) == len(right)
    for s in samples:
        key = (s.foreign["sample_id"], s.foreign["epoch"])
        assert s.mode.value == "generate" and s.metrics["acc"] == float(right[key])
        assert s.foreign["metrics"]["acc"] == float(right[key])  # inspect's own C / I agrees
        assert s.variant == f"template=epoch{key[1]}"
    entry = log.task_results("starter")
    assert entry["foreign"]["acc_agreement"] == 1.0 and entry["foreign"]["harness"] == "inspect"
    assert set(entry["variants"]) == {"template=epoch1", "template=epoch2"}
    assert entry["by"]["country"] and all(
        "ci" in c["metrics"]["acc"] for c in entry["by"]["country"].values()
    )
    rob = json.loads((tmp_path / "run" / "robustness.json").read_text(encoding="utf-8"))
    st = rob["tasks"]["starter"]
    assert st["n_variants"] == 2 and st["factors"] == ["template"]
    assert st["items"]["n_items"] == 30


def test_foreign_log_without_a_task_or_with_other_items(tmp_path: Path):
    path, _ = _foreign_log(tmp_path, epochs=1)
    cli = CliRunner()
    r = cli.invoke(app, ["import", str(path), "--out", str(tmp_path / "a")])
    assert r.exit_code == 2 and "give --task" in r.output
    click = Path(__file__).parent / "fixtures" / "click"  # the project's own CLIcK-format rows
    r = cli.invoke(
        app, ["import", str(path), "--task", "click", "--data-dir", str(click), "--out", str(tmp_path / "b")]
    )
    assert r.exit_code == 2 and "no culturelens item of task click" in r.output


@pytest.mark.slow
def test_embedded_model_run_in_inspect(tmp_path: Path):
    """The real embedded model on the starter suite (a slice), exported and read back by inspect."""
    cfg = RunConfig(out=str(tmp_path / "run"), cache=str(tmp_path / "c.sqlite"), limit=30, n_boot=200)
    res = Runner(cfg).run()
    paths = write_inspect_logs(res.run_dir)
    _check_log_matches_run(res.run_dir, paths)
    back = import_inspect(paths, tmp_path / "back")
    assert back.results["tasks"]["starter"]["metrics"] == res.results["tasks"]["starter"]["metrics"]
