"""VSM 2013 task: shipped wording, user wording files, per-country items, indices from a run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from culturelens import alignment as al
from culturelens.backends.fake import FakeBackend
from culturelens.runner import RunConfig, Runner
from culturelens.schema import Mode, Variant
from culturelens.sweep import expand
from culturelens.tasks.base import DatasetError, get_task
from culturelens.tasks.vsm import DEFAULT_PANEL, read_vsm

FIX = Path(__file__).parent / "fixtures" / "vsm"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
XLSX = SHARED / "randomness_not_representation" / "extrapolability" / "data" / "vsm_2013_survey.xlsx"
HOFSTEDE = SHARED / "hofstede" / "6-dimensions-for-website-2015-08-16.csv"
needs_xlsx = pytest.mark.skipif(not XLSX.exists(), reason="shared VSM xlsx not available")


def test_shipped_items():
    t = get_task("vsm")
    rows, source = t.rows()
    assert source == "culturelens paraphrase"
    assert [r["number"] for r in rows] == list(range(1, 25))
    assert all(len(r["options"]) == 5 for r in rows)
    items = t.items()
    assert len(items) == 24 * len(DEFAULT_PANEL)
    it = next(i for i in items if i.id == "vsm07-JP")
    assert it.group == "vsm07" and it.country.name == "Japan" and it.metadata["dimension"] == "PDI"
    assert it.ordered and it.topic == "PDI"


@needs_xlsx
def test_shipped_wording_is_not_the_papers():
    ours = {r["question"].lower() for r in get_task("vsm").rows()[0]}
    theirs = {r["question"].lower() for r in read_vsm(XLSX)}
    assert not ours & theirs


@needs_xlsx
def test_user_xlsx_via_option_and_data_dir():
    import openpyxl

    ws = openpyxl.load_workbook(XLSX, read_only=True).worksheets[0]
    cells = [row for row in ws.iter_rows(values_only=True)][1:]
    for t in (get_task("vsm", items_file=str(XLSX)), get_task("vsm", data_dir=XLSX.parents[2])):
        rows, source = t.rows()
        assert source == str(XLSX)
        assert [r["question"] for r in rows] == [str(c[0]).strip() for c in cells]
        assert rows[14]["options"] == json.loads(cells[14][1])
        items = t.items(countries=["Japan"])
        assert len(items) == 24 and items[0].question == str(cells[0][0]).strip()


def test_user_json_with_translations(tmp_path):
    rows = [
        {"number": n, "question": f"Item {n}?", "options": ["a", "b", "c", "d", "e"]} for n in range(1, 25)
    ]
    rows[0]["translations"] = {"ja": {"question": "項目1?", "options": ["あ", "い", "う", "え", "お"]}}
    path = tmp_path / "vsm_items.json"
    path.write_text(json.dumps({"items": rows}, ensure_ascii=False), encoding="utf-8")
    t = get_task("vsm", data_dir=tmp_path)
    items = t.items(countries=["Japan", "Germany"])
    assert len(items) == 48 and items[0].translations["ja"]["question"] == "項目1?"
    p = t.render(items[0], Variant(language="ja"), Mode.LETTER)
    assert "項目1?" in p.messages[-1].content and "あ" in p.messages[-1].content


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda rows: rows.pop(), "24 VSM 2013 content items"),
        (lambda rows: rows[3].update(options=["a", "b", "c", "d"]), r"row 4, field 'options'"),
        (lambda rows: rows[5].update(number="six"), r"row 6, field 'number'"),
    ],
)
def test_bad_user_files_are_rejected(tmp_path, mutate, message):
    rows = [
        {"number": n, "question": f"Item {n}?", "options": ["a", "b", "c", "d", "e"]} for n in range(1, 25)
    ]
    mutate(rows)
    path = tmp_path / "vsm.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(DatasetError, match=message):
        read_vsm(path)


def test_bad_xlsx_missing_column(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["question", "answers"])
    wb.active.append(["Q?", "[1, 2, 3, 4, 5]"])
    wb.save(tmp_path / "vsm.xlsx")
    with pytest.raises(DatasetError, match="field 'options'"):
        read_vsm(tmp_path / "vsm.xlsx")


def test_panel_from_countries_and_option():
    assert [c.name for c in get_task("vsm", countries="Brazil,Kenya").panel()] == ["Brazil", "Kenya"]
    items = get_task("vsm").items(countries=["Kenya"])
    assert {i.country.name for i in items} == {"Kenya"} and len(items) == 24


def _vsm_run(tmp_path: Path, vary: list[str], persona: str | None) -> Path:
    base = Variant(persona=persona)
    cfg = RunConfig(
        model="fake:hash",
        tasks=["vsm"],
        countries=["Japan", "United States", "Brazil", "Germany"],
        variants=expand(vary, base=base),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=200,
        task_options={"vsm": {"hofstede_file": str(HOFSTEDE)}} if HOFSTEDE.exists() else {},
    )
    return Runner(cfg, backend=FakeBackend("hash")).run().run_dir


@pytest.mark.skipif(not HOFSTEDE.exists(), reason="shared Hofstede data not available")
def test_vsm_indices_from_a_run_match_hand_computation(tmp_path):
    run_dir = _vsm_run(tmp_path, ["option_order=identity,reversed"], "typical:@item")
    res = al.analyze_alignment(run_dir)["tasks"]["vsm"]
    vsm = res["vsm"]
    assert set(vsm["conditions"]) == {
        "typical:Japan",
        "typical:United States",
        "typical:Brazil",
        "typical:Germany",
    }
    # recompute Japan's PDI from samples.jsonl: mean code per item averaged over the two orders
    recs = [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()]
    means = {}
    for n in (2, 7, 20, 23):
        probs = [np.asarray(r["probs"]) for r in recs if r["item_id"] == f"vsm{n:02d}-JP"]
        assert len(probs) == 2
        means[n] = float(np.mean(probs, axis=0) @ np.arange(1, 6))
    pdi = 35 * (means[7] - means[2]) + 25 * (means[20] - means[23])
    assert vsm["conditions"]["typical:Japan"]["indices"]["PDI"] == pytest.approx(pdi)
    assert vsm["conditions"]["typical:Japan"]["presentation_sd"]["PDI"] >= 0
    hof = vsm["styles"]["typical"]["hofstede"]
    assert hof["dimensions"]["PDI"]["n"] == 4
    assert set(hof["dimensions"]["PDI"]["countries"]) == {"Japan", "United States", "Brazil", "Germany"}
    assert -1 <= hof["dimensions"]["PDI"]["spearman"] <= 1
    assert vsm["styles"]["typical"]["extrapolability"]["pairs"] == 6
    assert "typical:Japan" in res["bias_removed"]


def test_unsteered_vsm_pools_the_country_copies(tmp_path):
    run_dir = _vsm_run(tmp_path, [], None)
    vsm = al.analyze_alignment(run_dir, hofstede_file=HOFSTEDE if HOFSTEDE.exists() else None)["tasks"][
        "vsm"
    ]["vsm"]
    assert list(vsm["conditions"]) == ["unsteered"]
    assert vsm["styles"] == {}


@needs_xlsx
@pytest.mark.skipif(not HOFSTEDE.exists(), reason="shared Hofstede data not available")
@pytest.mark.slow
def test_embedded_model_answers_the_vsm_as_three_countries(tmp_path):
    cfg = RunConfig(
        model="default",
        tasks=["vsm"],
        countries=["Japan", "United States", "Brazil"],
        variants=[Variant(persona="typical:@item")],
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=200,
        task_options={"vsm": {"hofstede_file": str(HOFSTEDE)}} if HOFSTEDE.exists() else {},
    )
    run_dir = Runner(cfg).run().run_dir
    vsm = al.analyze_alignment(run_dir)["tasks"]["vsm"]["vsm"]
    assert len(vsm["conditions"]) == 3
    for c in vsm["conditions"].values():
        assert all(np.isfinite(v) for v in c["indices"].values())
        assert all(1 <= m <= 5 for m in c["item_means"].values())
    hof = vsm["styles"]["typical"]["hofstede"]
    assert all(hof["dimensions"][d]["n"] == 3 for d in al.VSM_FORMULAS)
