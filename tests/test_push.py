"""`culturelens push RUN --repo ...` against a stubbed Hub transport: this project has no network, so
``HfApi.create_repo`` / ``file_exists`` / ``upload_folder`` are replaced by recorders that keep a copy
of what would have been uploaded. What is checked is what culturelens hands to huggingface_hub (the
calls and the files); huggingface_hub's own upload is not exercised."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from realrun import embedded_run, fake_run
from typer.testing import CliRunner

import culturelens as cl
from culturelens.cli import app

pytest.importorskip("huggingface_hub")


class FakeHub:
    """Records the calls; ``upload_folder`` copies the folder into ``remote`` as a commit would."""

    def __init__(self, remote: Path):
        self.remote = remote
        self.calls: list[tuple[str, tuple, dict]] = []
        self.fail_upload: Exception | None = None

    def install(self, monkeypatch) -> None:
        from huggingface_hub import HfApi

        hub = self

        def create_repo(self, repo_id, **kw):
            hub.calls.append(("create_repo", (repo_id,), kw))
            return f"https://huggingface.co/datasets/{repo_id}"

        def file_exists(self, repo_id, filename, **kw):
            hub.calls.append(("file_exists", (repo_id, filename), kw))
            return (hub.remote / filename).exists()

        def upload_folder(self, **kw):
            hub.calls.append(("upload_folder", (), kw))
            if hub.fail_upload is not None:
                raise hub.fail_upload
            shutil.copytree(kw["folder_path"], hub.remote, dirs_exist_ok=True)
            return type(
                "CommitInfo", (), {"commit_url": f"https://huggingface.co/datasets/{kw['repo_id']}/commit/1"}
            )()

        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "file_exists", file_exists)
        monkeypatch.setattr(HfApi, "upload_folder", upload_folder)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch) -> FakeHub:
    fake = FakeHub(tmp_path / "remote")
    fake.install(monkeypatch)
    return fake


def _check_pushed(remote: Path, run: Path) -> None:
    folder = remote / "runs" / run.name
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "results.parquet"), cl.load_runs([run]))
    samples = pd.read_parquet(folder / "samples.parquet")
    expected = cl.read_run(run).samples_df()
    assert list(samples.columns) == list(expected.columns) and len(samples) == len(expected)
    assert samples.item_id.tolist() == expected.item_id.tolist()
    assert samples.acc.tolist() == expected.acc.tolist()
    assert (folder / "results.json").read_bytes() == (run / "results.json").read_bytes()


def test_push_uploads_results_and_samples_as_a_dataset(tmp_path: Path, hub: FakeHub):
    a = fake_run(tmp_path, "a", report=False)
    b = fake_run(tmp_path, "b", limit=10, report=False)
    res = CliRunner().invoke(app, ["push", str(a), str(b), "--repo", "me/culture-runs", "--private"])
    assert res.exit_code == 0, res.output
    assert "pushed 9 files" in res.output and "me/culture-runs/commit/1" in res.output
    names = [c[0] for c in hub.calls]
    assert names == ["create_repo", "file_exists", "upload_folder"]
    assert hub.calls[0][2] == {"repo_type": "dataset", "private": True, "exist_ok": True}
    assert hub.calls[2][2]["repo_type"] == "dataset" and hub.calls[2][2]["repo_id"] == "me/culture-runs"
    _check_pushed(hub.remote, a)
    _check_pushed(hub.remote, b)
    card = (hub.remote / "README.md").read_text()
    assert 'data_files: "runs/*/results.parquet"' in card and 'load_dataset("me/culture-runs"' in card
    # a second push adds its run and leaves the card alone
    (hub.remote / "README.md").write_text("my own card")
    c = fake_run(tmp_path, "c", limit=6, report=False)
    res = CliRunner().invoke(app, ["push", str(c), "--repo", "me/culture-runs"])
    assert res.exit_code == 0, res.output
    assert (hub.remote / "README.md").read_text() == "my own card"
    _check_pushed(hub.remote, c)


def test_push_failures_are_one_line_exit_2(tmp_path: Path, hub: FakeHub):
    from huggingface_hub.errors import HfHubHTTPError

    run = fake_run(tmp_path, "a", limit=4, report=False)
    import httpx2

    forbidden = httpx2.Response(403, request=httpx2.Request("POST", "https://huggingface.co/api/datasets"))
    message = "403 Forbidden: you cannot write to me/culture-runs\nmore detail"
    hub.fail_upload = HfHubHTTPError(message, response=forbidden)
    res = CliRunner().invoke(app, ["push", str(run), "--repo", "me/culture-runs"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "push to me/culture-runs: could not upload (HfHubHTTPError: 403 Forbidden" in res.output
    res = CliRunner().invoke(app, ["push", str(run), "--repo", "culture-runs"])
    assert res.exit_code == 2 and "give the dataset repository as OWNER/NAME" in res.output
    res = CliRunner().invoke(app, ["push", str(tmp_path / "nope"), "--repo", "me/x"])
    assert res.exit_code == 2 and "nope: not found" in res.output
    assert [c[0] for c in hub.calls] == ["create_repo", "file_exists", "upload_folder"]  # only the first


@pytest.mark.slow
def test_push_a_run_of_the_embedded_model(tmp_path_factory: pytest.TempPathFactory, hub: FakeHub):
    from culturelens.hub import push

    run = embedded_run(tmp_path_factory)
    done = push([run], "me/smollm2-starter")
    assert done["files"][-1] == "README.md" and len(done["files"]) == 5
    _check_pushed(hub.remote, run)
