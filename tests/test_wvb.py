"""WorldValuesBench: probe loader with a user-supplied raw WVS file (own fixture rows), W1 metrics."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from culturelens import alignment as al
from culturelens.backends.fake import FakeBackend
from culturelens.runner import RunConfig, Runner
from culturelens.schema import Mode, Response
from culturelens.tasks.base import DatasetError, get_task
from culturelens.tasks.wvb import parse_score

FIX = Path(__file__).parent / "fixtures" / "wvb"
RAW = FIX / "WVS_Cross-National_Wave_7_fixture.csv"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "worldvaluesbench"


def test_fixture_probe_items():
    t = get_task("wvb", data_dir=FIX, wvs_file=str(RAW))
    items = {it.id: it for it in t.items()}
    # 11 probe rows: one respondent is missing from the raw file, one answered "don't know"
    assert len(items) == 9 and dict(t.skipped) == {"respondent not in the raw file": 1, "no valid answer": 1}
    it = items["wvb-Q119-276070001"]
    # raw code 0 ("hard to say") is recoded to 3 by answer_adjustment.json: index 2 of the 1..5 scale
    assert (
        it.metadata["answer"] == 2 and it.options[2] == "3 (Hard to say)" and it.options[3] == "4 (Disagree)"
    )
    assert items["wvb-Q119-276070002"].metadata["answer"] == 4  # raw 4 -> 5
    assert it.country.name == "Germany" and it.group == "Q119" and it.ordered
    assert it.subset == {"continent": "Europe", "urban_rural": "Urban", "education": "Tertiary"}
    # the probe's three demographics by default (country, urban / rural, education), all 42 on request
    assert "Bachelor" in it.context and "Germany" in it.context and "Urban" in it.context
    assert "What is your sex?" not in it.context
    every = {i.id: i for i in get_task("wvb", data_dir=FIX, wvs_file=str(RAW), demographics="all").items()}
    full = every["wvb-Q119-276070001"].context
    assert "What is your sex? Female" in full and "How old are you? 34" in full
    # Germany's distribution on Q1 over all its raw respondents (codes 1, 2, 1; -1 dropped)
    refs = t.group_references()
    assert refs["Q1"]["Germany"] == pytest.approx([2 / 3, 1 / 3, 0, 0])
    assert refs["Q119"]["Japan"] == pytest.approx([0, 0.5, 0, 0.5, 0])  # raw 3 -> 4, raw 2; -1 dropped
    assert it.reference == {"Germany": refs["Q119"]["Germany"]}


def test_raw_file_found_in_data_dir_and_missing_raw_file():
    assert len(get_task("wvb", data_dir=FIX).items()) == 9
    with pytest.raises(DatasetError, match="wvs_file"):
        get_task("wvb", data_dir=FIX, wvs_file=str(FIX / "nope.csv")).items()
    with pytest.raises(DatasetError, match="needs --data-dir"):
        get_task("wvb").items()


def test_raw_file_without_the_wvs_layout(tmp_path):
    bad = tmp_path / "raw.csv"
    bad.write_text("id,country,Q1\n1,276,1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="field 'D_INTERVIEW'"):
        get_task("wvb", data_dir=FIX, wvs_file=str(bad)).items()
    unmatched = tmp_path / "raw2.csv"
    unmatched.write_text("D_INTERVIEW,B_COUNTRY,Q1\n999,276,1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no probe respondent"):
        get_task("wvb", data_dir=FIX, wvs_file=str(unmatched)).items()


@pytest.mark.skipif(
    not (SHARED / "WorldValuesBench").exists(), reason="shared WorldValuesBench data not available"
)
def test_real_probe_design_with_a_user_raw_file():
    t = get_task("wvb", data_dir=SHARED, wvs_file=str(FIX / "wvs7_raw_for_shared_probe.csv"))
    items = t.items()
    assert {it.id for it in items} == {
        "wvb-Q1-156070594",
        "wvb-Q1-586070648",
        "wvb-Q1-410070706",
        "wvb-Q1-400070152",
    }
    by = {it.id: it for it in items}
    assert (
        by["wvb-Q1-410070706"].country.name == "South Korea"
        and by["wvb-Q1-410070706"].metadata["answer"] == 1
    )
    assert by["wvb-Q1-156070594"].options[0] == "1 (Very important)"
    assert "how important is family in your life" in by["wvb-Q1-156070594"].question
    # China has two respondents in the raw file (codes 1 and 2)
    assert t.group_references()["Q1"]["China"] == pytest.approx([0.5, 0.5, 0, 0])


class _Scores(FakeBackend):
    """Answers each prompt with the paper's JSON, its score picked from the prompt's hash (some invalid)."""

    def generate(self, batch):
        out = []
        for r in batch:
            h = int(hashlib.sha256(r.text.encode()).hexdigest(), 16)
            said = ["1", "2", "3.7", "5", "no idea", "4"][h % 6]
            out.append(
                Response(text=f'Sure. {{"thoughtful explanation": "x", "answer as a score": "{said}"}}')
            )
        return out


def test_paper_protocol_per_question_w1_equals_scipy(tmp_path):
    """The default (generate, JSON score): per question, W1 between the normalised true answers of every
    probed respondent and the normalised valid scores, as evaluate.py computes it with scipy."""
    from scipy.stats import wasserstein_distance

    cfg = RunConfig(
        model="fake:x",
        tasks=["wvb"],
        data_dir=str(FIX),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=100,
        task_options={"wvb": {"wvs_file": str(RAW)}},
    )
    res = Runner(cfg, backend=_Scores("x")).run()
    samples = [json.loads(x) for x in (res.run_dir / "samples.jsonl").read_text().splitlines()]
    items = {it.id: it for it in get_task("wvb", data_dir=FIX, wvs_file=str(RAW)).items()}
    assert {s["mode"] for s in samples} == {"generate"}
    by_q: dict[str, list[tuple[float, float | None]]] = {}
    for s in samples:
        it = items[s["item_id"]]
        lo, hi = it.metadata["scale"]
        said = parse_score(s["response"]["text"])
        assert s["metrics"]["invalid"] == (0.0 if said is not None else 1.0)
        by_q.setdefault(it.group, []).append(
            (it.metadata["answer"] / (hi - lo), None if said is None else (said - lo) / (hi - lo))
        )
    want = []
    for rows in by_q.values():
        truth = [t for t, _ in rows]
        pred = [p for _, p in rows if p is not None]
        want.append(wasserstein_distance(truth, pred) if pred else 1.0)
    got = res.results["tasks"]["wvb"]["metrics"]["w1"]
    assert got["n"] == len(by_q) == 3
    assert got["mean"] == pytest.approx(float(np.mean(want)), abs=1e-12)
    assert parse_score('{"answer as a score": "3.7"}') == 3 and parse_score('{"answer as a score": 9}') == 9
    assert parse_score('"answer as a score": "2",') == 2 and parse_score("no json") is None
    assert parse_score('{"answer as a score": "inf"}') is None


def test_letter_mode_scores_and_distribution_metric_by_hand(tmp_path):
    cfg = RunConfig(
        model="fake:first",
        tasks=["wvb"],
        data_dir=str(FIX),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=100,
        mode=Mode.LETTER,
        task_options={"wvb": {"wvs_file": str(RAW)}},
    )
    res = Runner(cfg, backend=FakeBackend("first")).run()
    recs = {
        json.loads(x)["item_id"]: json.loads(x)
        for x in (res.run_dir / "samples.jsonl").read_text().splitlines()
    }
    r = recs["wvb-Q119-276070001"]
    p = np.asarray(r["probs"])  # "first" puts most mass on option 1; the answer is option 3 (index 2)
    assert r["metrics"]["acc"] == 0.0
    assert r["metrics"]["w1_respondent"] == pytest.approx(
        np.sum(np.abs(np.cumsum(p - np.eye(5)[2])[:-1])) / 4
    )
    extra = res.results["tasks"]["wvb"]["extra"]["by_question"]
    # paper metric for Q57: predicted mean distribution vs true answers (all three answered 2)
    q57 = [np.asarray(recs[i]["probs"]) for i in recs if "-Q57-" in i]
    w_q57 = al.wasserstein1(np.mean(q57, axis=0), [0, 1])
    w_q1 = al.wasserstein1(
        np.mean([recs[i]["probs"] for i in recs if "-Q1-" in i], axis=0), [2 / 3, 1 / 3, 0, 0]
    )
    w_q119 = al.wasserstein1(
        np.mean([recs[i]["probs"] for i in recs if "-Q119-" in i], axis=0), [0, 0, 1 / 3, 1 / 3, 1 / 3]
    )
    assert extra["w1_dist"] == pytest.approx((w_q57 + w_q1 + w_q119) / 3)
    assert extra["groups"] == 3
    assert extra["w1_dist_uniform"] == pytest.approx(
        (
            al.wasserstein1([0.5, 0.5], [0, 1])
            + al.wasserstein1([0.25] * 4, [2 / 3, 1 / 3, 0, 0])
            + al.wasserstein1([0.2] * 5, [0, 0, 1 / 3, 1 / 3, 1 / 3])
        )
        / 3
    )
    # the alignment analysis compares each question's pooled answers with every country's distribution
    t = al.analyze_alignment(res.run_dir)["tasks"]["wvb"]
    assert t["metric"] == "w1"
    table = {r["country"]: r for r in t["by_condition"]["unsteered"]["countries"]["w1"]}
    assert set(table) == {"Germany", "Japan"} and table["Japan"]["n"] == 3
    g_q1 = 1 - al.wasserstein1(
        np.mean([recs[i]["probs"] for i in recs if "-Q1-" in i], axis=0), [2 / 3, 1 / 3, 0, 0]
    )
    g_q57 = 1 - al.wasserstein1(np.mean(q57, axis=0), [0.25, 0.75])
    g_q119 = 1 - al.wasserstein1(
        np.mean([recs[i]["probs"] for i in recs if "-Q119-" in i], axis=0), [0.25, 0.25, 0.25, 0, 0.25]
    )
    assert table["Germany"]["sim"] == pytest.approx((g_q1 + g_q57 + g_q119) / 3)
