"""`--log-to mlflow` (local file store) and `--log-to wandb` (offline), for real with the packages
installed: what each tracker recorded is read back from its own store and compared with the run."""

from __future__ import annotations

import glob
import hashlib
import json
import struct
import sys
from pathlib import Path

import pytest
from realrun import embedded_run, fake_run
from typer.testing import CliRunner

import culturelens as cl
from culturelens.cli import app
from culturelens.frames import RESULT_COLUMNS
from culturelens.tracking import TrackingError, log_run, run_metrics


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mlflow_run(store: Path):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    exp = client.get_experiment_by_name("culturelens")
    [run] = client.search_runs([exp.experiment_id])
    return client, run


def _check_metrics(metrics: dict[str, float], run: Path) -> None:
    entry = cl.read_run(run).task_results("starter")
    acc = entry["metrics"]["acc"]
    assert metrics["starter/acc"] == pytest.approx(acc["mean"])
    assert [metrics["starter/acc_ci_low"], metrics["starter/acc_ci_high"]] == pytest.approx(acc["ci"])
    assert metrics["starter/acc_n"] == acc["n"]
    for country, g in entry["by"]["country"].items():
        key = "starter/country/" + country.replace("'", "_")
        assert metrics[f"{key}/acc"] == pytest.approx(g["metrics"]["acc"]["mean"])
        assert metrics[f"{key}/acc_ci_high"] == pytest.approx(g["metrics"]["acc"]["ci"][1])
        assert metrics[f"{key}/acc_n"] == g["metrics"]["acc"]["n"]


@pytest.fixture
def mlflow_home(tmp_path: Path, monkeypatch) -> Path:
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_run_log_to_mlflow_local_file_store(mlflow_home: Path):
    run = mlflow_home / "r"
    res = CliRunner().invoke(
        app,
        ["run", "--model", "fake:hash", "--limit", "20", "--out", str(run), "--cache", "c.sqlite", "-q"]
        + ["--vary", "option_order=identity,reversed", "--log-to", "mlflow"],
    )
    assert res.exit_code == 0, res.output
    assert "mlflow: mlflow run" in res.output
    client, logged = _mlflow_run(mlflow_home / "mlruns")
    assert logged.info.run_name == "r" and logged.info.status == "FINISHED"
    metrics = logged.data.metrics
    _check_metrics(metrics, run)
    # a sweep also logs its headline per variant
    variants = cl.read_run(run).task_variants("starter")
    assert metrics["starter/variant/option_order_reversed/acc"] == pytest.approx(
        variants["option_order=reversed"]["metrics"]["acc"]["mean"]
    )
    assert set(metrics) == set(run_metrics(cl.read_run(run)))
    params = logged.data.params
    assert params["model"] == "fake:hash" and params["tasks"] == "starter" and params["limit"] == "20"
    assert params["variants"] == "default;option_order=reversed" and params["model.backend"] == "fake"
    arts = {a.path: a for a in client.list_artifacts(logged.info.run_id)}
    assert {"report.html", "config.json", "results.json", "robustness.json", "results_tidy.csv"} <= set(arts)
    local = Path(client.download_artifacts(logged.info.run_id, "report.html", str(mlflow_home / "dl")))
    assert _sha(local) == _sha(run / "report.html")


def test_log_to_wandb_offline(tmp_path: Path, monkeypatch):
    pytest.importorskip("wandb")
    for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wb" / var.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.chdir(tmp_path)
    run = fake_run(tmp_path, "r")
    where = log_run(run, ["wandb"])["wandb"]
    assert "offline-run-" in where
    import wandb

    wandb.teardown()  # the W&B service writes the transaction log on its own time: let it finish
    [path] = glob.glob(str(tmp_path / "wb" / "**" / "offline-run-*" / "run-*.wandb"), recursive=True)
    records = list(_wandb_records(Path(path)))
    kinds = [r.WhichOneof("record_type") for r in records]
    assert kinds.count("run") == 1 and "exit" in kinds
    [run_rec] = [r.run for r in records if r.HasField("run")]
    assert run_rec.display_name == "r" and run_rec.project == "culturelens"
    config = {i.key: i.value_json for i in run_rec.config.update}
    assert '"fake:hash"' in config["model"] and '"starter"' in config["tasks"]

    history = {
        i.key or "/".join(i.nested_key): json.loads(i.value_json)
        for r in records
        if r.HasField("history")
        for i in r.history.item
    }
    _check_metrics({k: v for k, v in history.items() if isinstance(v, int | float)}, run)
    # the tidy table of every group, as a W&B table file
    assert history["results/_type"] == "table-file" and history["results/ncols"] == len(RESULT_COLUMNS)
    table = json.loads((Path(path).parent / "files" / history["results/path"]).read_text())
    tidy = cl.load_runs([run])
    assert table["columns"] == RESULT_COLUMNS and len(table["data"]) == len(tidy)
    assert [r[7] for r in table["data"]] == pytest.approx(tidy["mean"].tolist())
    [art] = [r.artifact for r in records if r.HasField("artifact") and r.artifact.type == "evaluation"]
    files = {e.path: e for e in art.manifest.contents}
    assert {"report.html", "config.json", "results.json", "results_tidy.csv"} <= set(files)
    assert files["report.html"].size == (run / "report.html").stat().st_size
    assert _sha(Path(files["report.html"].local_path)) == _sha(run / "report.html")


def _wandb_records(path: Path):
    """The records of a W&B transaction log (``run-*.wandb``): a ``:W&B`` header, then LevelDB-log
    framed protobuf records (7-byte chunk headers in 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # the tail of a block too short for a header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk
        if kind in (1, 4):  # a full record, or the last chunk of one
            rec = pb.Record()
            rec.ParseFromString(buf)
            yield rec


def test_missing_tracker_package_stops_before_the_run(tmp_path: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    out = tmp_path / "r"
    args = ["run", "--model", "fake:hash", "--limit", "4", "--out", str(out), "--cache", str(tmp_path / "c")]
    res = CliRunner().invoke(app, [*args, "--log-to", "mlflow"])
    assert res.exit_code == 2, res.output
    line = " ".join(res.output.split())
    assert "--log-to mlflow: the package 'mlflow-skinny' is not installed" in line
    assert "pip install 'culturelens[tracking]'" in line and len(res.output.strip().splitlines()) == 1
    assert not out.exists()  # nothing was computed
    res = CliRunner().invoke(app, [*args, "--log-to", "neptune"])
    assert res.exit_code == 2 and "--log-to 'neptune': use mlflow or wandb" in res.output


def test_a_tracker_that_refuses_is_one_line(tmp_path: Path, monkeypatch):
    pytest.importorskip("mlflow")
    run = fake_run(tmp_path, "r", limit=4, report=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "bogus-scheme://nowhere")
    with pytest.raises(
        TrackingError, match=r"--log-to mlflow: logging .* failed .*the run itself is complete"
    ):
        log_run(run, ["mlflow"])


@pytest.mark.slow
def test_mlflow_log_of_the_embedded_model(tmp_path_factory: pytest.TempPathFactory, mlflow_home: Path):
    run = embedded_run(tmp_path_factory)
    where = log_run(run, ["mlflow"])["mlflow"]
    assert where.endswith((mlflow_home / "mlruns").resolve().as_uri())
    _, logged = _mlflow_run(mlflow_home / "mlruns")
    _check_metrics(logged.data.metrics, run)
    assert logged.data.params["model.sha256"] == cl.read_run(run).identity["sha256"]
