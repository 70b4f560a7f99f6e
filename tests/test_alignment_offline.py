"""An old run analyses without its dataset: the alignment and robustness analyses read only the run
log (item snapshot, recorded references, samples), so deleting the data a run was made from changes
nothing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from culturelens.alignment import analyze_alignment
from culturelens.backends.fake import FakeBackend
from culturelens.robustness import analyze_run
from culturelens.runner import RunConfig, Runner
from culturelens.schema import Mode
from culturelens.sweep import expand

FIX = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
HOFSTEDE = SHARED / "hofstede" / "6-dimensions-for-website-2015-08-16.csv"


def _copy(src: Path, data: Path) -> Path:
    """``src`` (a file or folder) copied into ``data``; the copy's path."""
    data.mkdir(parents=True, exist_ok=True)
    dst = data / src.name
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy2(src, dst)
    return dst


def _run(tmp_path: Path, task: str, vary: list[str], data_dir: Path | None = None, **kw: Any) -> Path:
    cfg = RunConfig(
        model="fake:hash",
        tasks=[task],
        variants=expand(vary),
        data_dir=str(data_dir) if data_dir else None,
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=100,
        **kw,
    )
    return Runner(cfg, backend=FakeBackend("hash")).run().run_dir


def _same_without_data(run_dir: Path, data: Path) -> dict[str, Any]:
    before = analyze_alignment(run_dir, write=False)
    shutil.rmtree(data)
    after = analyze_alignment(run_dir, write=False)
    assert after == before
    return after


@pytest.mark.parametrize(
    ("name", "source", "vary"),
    [
        ("goqa", FIX / "opinions" / "global_opinions.csv", ["option_order=identity,reversed"]),
        ("rnr", FIX / "opinions" / "rnr", ["persona=typical:Japan,typical:United_Kingdom"]),
    ],
)
def test_opinions_run_analyses_without_its_dataset(tmp_path: Path, name: str, source: Path, vary: list[str]):
    data = tmp_path / "data"
    run_dir = _run(tmp_path, "opinions", vary, _copy(source, data))
    t = _same_without_data(run_dir, data)["tasks"]["opinions"]
    assert t["metric"] == ("jsd" if name == "goqa" else "mae")  # the metric the loaded data decided
    assert all(c["countries"][t["metric"]] for c in t["by_condition"].values()) and t["by_condition"]
    if name == "rnr":
        assert set(t["steering"]["styles"]["typical"]["targets"]) == {"Japan", "United Kingdom"}


def test_wvb_run_analyses_without_its_dataset(tmp_path: Path):
    data = tmp_path / "data"
    folder = _copy(FIX / "wvb", data)
    wvs = folder / "WVS_Cross-National_Wave_7_fixture.csv"
    opts = {"wvb": {"wvs_file": str(wvs)}}
    run_dir = _run(tmp_path, "wvb", [], folder, mode=Mode.LETTER, task_options=opts)  # distributions
    t = _same_without_data(run_dir, data)["tasks"]["wvb"]
    # the shared per-question references (from the raw WVS file) came from references.json
    assert t["metric"] == "w1" and t["by_condition"]["unsteered"]["countries"]["w1"]


@pytest.mark.skipif(not HOFSTEDE.exists(), reason="shared Hofstede data not available")
def test_vsm_run_compares_with_hofstede_without_the_file(tmp_path: Path):
    data = tmp_path / "data"
    hof = _copy(HOFSTEDE, data / "hofstede")
    run_dir = _run(
        tmp_path,
        "vsm",
        ["persona=typical:@item"],
        countries=["Japan", "Brazil", "Germany"],
        task_options={"vsm": {"hofstede_file": str(hof)}},
    )
    t = _same_without_data(run_dir, data)["tasks"]["vsm"]
    assert t["hofstede_file"] == str(hof)
    assert t["vsm"]["styles"]["typical"]["hofstede"]["dimensions"]["PDI"]["n"] == 3


def test_grouped_units_robustness_without_its_dataset(tmp_path: Path):
    """CulturalBench-Hard counts a question (its four true/false rows) as one unit: the regrouping
    reads the item snapshot, not the dataset."""
    data = tmp_path / "data"
    folder = _copy(FIX / "culturalbench", data)
    run_dir = _run(tmp_path, "culturalbench_hard", ["option_order=identity,reversed"], folder)
    before = analyze_run(run_dir)
    shutil.rmtree(data)
    after = analyze_run(run_dir)
    assert after == before and "notes" not in after
    items = [it for it in (run_dir / "items.jsonl").read_text().splitlines() if it]
    n_units = after["tasks"]["culturalbench_hard"]["items"]["n_items"]
    assert 0 < n_units < len(items)  # units are questions, not rows
