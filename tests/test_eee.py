"""Every Eval Ever records (culturelens.eee): written in the EEE datastore layout, clean under the
package's own validator (its CLI, run as a separate process), and holding the run's numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from realrun import embedded_run, fake_run
from typer.testing import CliRunner

import culturelens as cl
from culturelens.cli import app
from culturelens.sweep import expand

pytest.importorskip("every_eval_ever")


def _validate_with_the_package_cli(root: Path, files: list[Path]) -> list[dict]:
    """``every_eval_ever.validator.cli`` (eee-validate) on the files, from the folder holding data/."""
    rel = [str(p.relative_to(root)) for p in files]
    proc = subprocess.run(
        [sys.executable, "-m", "every_eval_ever.validator.cli", *rel, "--format", "json"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    reports = json.loads(proc.stdout)
    assert proc.returncode == 0, reports
    return reports


def _check(run: Path, files: list[Path]) -> None:
    log = cl.read_run(run)
    [agg_path] = [p for p in files if p.suffix == ".json"]
    [rows_path] = [p for p in files if p.name.endswith("_samples.jsonl")]
    agg = json.loads(agg_path.read_text())
    rows = [json.loads(x) for x in rows_path.read_text().splitlines()]
    entry = log.task_results("starter")
    results = {r["evaluation_result_id"]: r for r in agg["evaluation_results"]}
    acc = results["acc"]
    assert acc["evaluation_name"] == "starter" and acc["metric_config"]["metric_id"] == "accuracy"
    assert acc["score_details"]["score"] == entry["metrics"]["acc"]["mean"]
    ci = acc["score_details"]["uncertainty"]["confidence_interval"]
    assert [ci["lower"], ci["upper"]] == entry["metrics"]["acc"]["ci"] and ci["method"] == "wilson"
    assert acc["score_details"]["uncertainty"]["num_samples"] == entry["n"]
    for country, g in entry["by"]["country"].items():
        r = results[f"acc|country={country}"]
        assert r["evaluation_name"] == f"starter/country={country}"
        assert r["score_details"]["score"] == g["metrics"]["acc"]["mean"]
    # one instance row per sample, scored as the sample was
    samples = log.samples
    assert len(rows) == len(samples) == agg["detailed_evaluation_results"]["total_rows"]
    for row, s in zip(rows, samples, strict=True):
        assert row["sample_id"] == s.item_id and row["model_id"] == agg["model_info"]["id"]
        assert row["evaluation"]["is_correct"] == (s.metrics["acc"] == 1.0)
        assert row["metadata"]["country"] == s.country and row["input"]["formatted"] == s.prompt
        assert row["input"]["reference"] == [s.options[i] for i in s.gold]


def test_eee_records_of_a_sweep_pass_the_package_validator(tmp_path: Path):
    run = fake_run(tmp_path, "sweep", limit=16, report=False, variants=expand(["labels=letters,numbers"]))
    out = tmp_path / "eee"
    res = CliRunner().invoke(app, ["export", str(run), "--format", "eee", "--out-dir", str(out)])
    assert res.exit_code == 0, res.output
    files = sorted(out.rglob("*.json*"))
    assert [p.relative_to(out).parts[:4] for p in files] == [("data", "starter", "fake", "fake-hash")] * 2
    reports = _validate_with_the_package_cli(out, files)
    assert [(r["valid"], r["errors"], r["warnings"]) for r in reports] == [(True, [], [])] * 2
    _check(run, files)
    agg = json.loads(next(p for p in files if p.suffix == ".json").read_text())
    results = {r["evaluation_result_id"]: r for r in agg["evaluation_results"]}
    numbers = cl.read_run(run).task_variants("starter")["labels=numbers"]
    assert (
        results["acc|variant=labels=numbers"]["score_details"]["score"] == numbers["metrics"]["acc"]["mean"]
    )
    for country, g in numbers["by"]["country"].items():
        r = results[f"acc|country={country}|variant=labels=numbers"]
        assert r["score_details"]["score"] == g["metrics"]["acc"]["mean"]
        assert r["metric_config"]["additional_details"]["primary_variant"] == "false"
    # a re-export overwrites the same files (the file UUID is derived from the run), never duplicates
    assert CliRunner().invoke(app, ["export", str(run), "--format", "eee", "-d", str(out)]).exit_code == 0
    assert sorted(out.rglob("*.json*")) == files


def test_a_record_the_validator_rejects_is_not_written(tmp_path: Path, monkeypatch):
    run = fake_run(tmp_path, "one", limit=6, report=False)
    import culturelens.eee as eee

    # the schema (the package's pydantic models) rejects an unknown deployment type ...
    monkeypatch.setattr(eee, "_deployment", lambda log: ("on_a_whim", "open_weights"))
    res = CliRunner().invoke(app, ["export", str(run), "--format", "eee", "-d", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert "every-eval-ever schema: data/starter/fake/fake-hash/" in res.output
    assert "field model_info" in res.output and "deployment_type" in res.output
    assert len(res.output.strip().splitlines()) == 1
    # ... and the datastore validator a model id whose folder is not the one the file sits in
    monkeypatch.undo()
    real = eee.records

    def misfiled(*a, **kw):
        out = real(*a, **kw)
        return [(path.replace("/fake/", "/elsewhere/"), rec, rows) for path, rec, rows in out]

    monkeypatch.setattr(eee, "records", misfiled)
    res = CliRunner().invoke(app, ["export", str(run), "--format", "eee", "-d", str(tmp_path / "out")])
    assert res.exit_code == 2 and "every-eval-ever validator: data/starter/elsewhere/" in res.output
    assert not list((tmp_path / "out").rglob("*.json*"))


def test_missing_package_is_one_line_exit_2(tmp_path: Path, monkeypatch):
    run = fake_run(tmp_path, "one", limit=4, report=False)
    for name in [m for m in sys.modules if m.startswith("every_eval_ever")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "every_eval_ever", None)
    res = CliRunner().invoke(app, ["export", str(run), "--format", "eee"])
    assert res.exit_code == 2 and "every-eval-ever" in res.output and "pip install" in res.output
    assert not (run / "eee").exists()


def test_model_ids_follow_the_hub_where_known(tmp_path: Path):
    from culturelens.eee import model_id

    run = fake_run(tmp_path, "one", limit=4, report=False)
    log = cl.read_run(run)
    assert model_id(log) == "fake/fake-hash"
    for identity, expected in [
        (
            {"backend": "llamacpp", "model": "SmolLM2-135M-Instruct.Q4_1.gguf"},
            "HuggingFaceTB/SmolLM2-135M-Instruct",
        ),
        ({"backend": "llamacpp", "model": "gemma-3-270m-q4_k_m.gguf"}, "google/gemma-3-270m"),
        ({"backend": "llamacpp", "model": "gemma-3-270m-it-Q8_0.gguf"}, "google/gemma-3-270m-it"),
        ({"backend": "hf", "model": "Qwen/Qwen2.5-0.5B-Instruct"}, "Qwen/Qwen2.5-0.5B-Instruct"),
        (
            {"backend": "openai", "model": "gpt-4o-mini", "base_url": "https://api.openai.com/v1"},
            "openai/gpt-4o-mini",
        ),
        (
            {"backend": "llamacpp", "model": "qwen2.5-7b-instruct-q4_k_m.gguf"},
            "llamacpp/qwen2.5-7b-instruct-q4_k_m",
        ),
    ]:
        log.results["model"] = identity
        assert model_id(log) == expected


@pytest.mark.slow
def test_eee_records_of_the_embedded_model(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path):
    from culturelens.eee import write_eee

    run = embedded_run(tmp_path_factory)
    files = write_eee(run, tmp_path / "eee")
    assert files[0].relative_to(tmp_path / "eee").parts[:4] == (
        "data",
        "starter",
        "HuggingFaceTB",
        "SmolLM2-135M-Instruct",
    )
    reports = _validate_with_the_package_cli(tmp_path / "eee", files)
    assert all(r["valid"] and not r["warnings"] for r in reports)
    _check(run, files)
    agg = json.loads(files[0].read_text())
    assert (
        agg["model_info"]["additional_details"]["culturelens.sha256"] == cl.read_run(run).identity["sha256"]
    )
