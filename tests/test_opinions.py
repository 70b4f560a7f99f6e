"""Opinions task: GlobalOpinionQA loader (own fixture rows), Randomness-not-Representation files (real)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from culturelens.alignment import analyze_alignment
from culturelens.schema import ItemKind, Mode, Variant
from culturelens.tasks.base import DatasetError, get_task
from culturelens.tasks.opinions import parse_selections, read_goqa, split_header

FIX = Path(__file__).parent / "fixtures" / "opinions"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RNR = SHARED / "randomness_not_representation"
needs_rnr = pytest.mark.skipif(
    not (RNR / "steerability").exists(), reason="shared randomness_not_representation data not available"
)


def test_goqa_fixture_rows():
    items = list(read_goqa(FIX / "global_opinions.csv"))
    assert len(items) == 6
    first = items[0]
    assert first.kind is ItemKind.SURVEY and first.id == "goqa-0000"
    assert first.options == ["A great deal", "Somewhat", "Not at all"]
    assert set(first.reference) == {"United Kingdom", "Brazil", "Japan", "Kenya"}  # "Britain" normalised
    assert first.reference["Brazil"] == pytest.approx([0.2, 0.5, 0.3])
    assert first.subset == {"source": "GAS"} and items[2].subset == {"source": "WVS"}
    # Kenya's shares in the last row sum to 0.99: rescaled to a distribution
    assert sum(items[5].reference["Kenya"]) == pytest.approx(1.0)
    assert items[5].reference["Kenya"][0] == pytest.approx(0.5 / 0.99)
    assert "Japan" not in items[4].reference  # a country that did not answer a question has no entry


def test_parse_selections_defaultdict_and_errors(tmp_path):
    text = "defaultdict(<class 'list'>, {'S. Korea': [0.25, 0.75], 'Russia': [1.0, 0.0]})"
    out = parse_selections(text, 2, tmp_path / "x.csv", 5)
    assert out == {"South Korea": [0.25, 0.75], "Russia": [1.0, 0.0]}
    with pytest.raises(DatasetError, match=r"row 5, field 'selections'.*3 shares for 2 options"):
        parse_selections("defaultdict(<class 'list'>, {'Russia': [0.2, 0.3, 0.5]})", 2, tmp_path / "x.csv", 5)
    with pytest.raises(DatasetError, match="field 'selections'"):
        parse_selections("defaultdict(<class 'list'>, {'Russia': [0.2, 0.3", 2, tmp_path / "x.csv", 5)


def test_goqa_bad_files_name_row_and_field(tmp_path):
    bad = tmp_path / "global_opinions.csv"
    bad.write_text("question,options,source\n\"Q?\",\"['a', 'b']\",GAS\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="field 'selections'"):
        list(read_goqa(bad))
    bad.write_text(
        "question,selections,options\n"
        "\"Q?\",\"defaultdict(<class 'list'>, {'Japan': [0.5, 0.5]})\",\"['only one']\"\n",
        encoding="utf-8",
    )
    with pytest.raises(DatasetError, match=r"row 2, field 'options'"):
        list(read_goqa(bad))
    with pytest.raises(DatasetError, match="file not found"):
        list(read_goqa(tmp_path / "missing.csv"))


def test_task_autodetects_sources():
    assert get_task("opinions", data_dir=FIX / "global_opinions.csv").resolve()[0] == "goqa"
    assert get_task("opinions", data_dir=FIX / "rnr").resolve()[0] == "steerability"
    t = get_task("opinions", data_dir=FIX / "rnr", source="stability")
    assert t.resolve()[0] == "stability"
    with pytest.raises(DatasetError, match="needs --data-dir"):
        get_task("opinions").items()
    with pytest.raises(DatasetError, match="unknown source"):
        get_task("opinions", data_dir=FIX / "rnr", source="nope").items()


def test_wide_fixture_tables():
    t = get_task("opinions", data_dir=FIX / "rnr")
    items = t.items()
    assert t.alignment_metric == "mae" and len(items) == 4
    q0, q1, _, q3 = items
    assert q0.question == "How much do you enjoy public holidays?" and q0.options == [
        "Very much",
        "Somewhat",
        "Not at all",
    ]
    assert q0.reference_means == {"Brazil": 0.2, "Japan": 0.6, "United States": 0.4, "United Kingdom": 0.3}
    assert "United States" not in q1.reference_means  # empty cell
    assert q0.metadata["heldout_countries"] == ["United Kingdom"]
    assert (
        q0.subset["scale"] == "ordinal"
        and q1.subset["scale"] == "nominal"
        and q3.subset["scale"] == "unknown"
    )
    assert q3.options[:2] == ["0", "1"] and len(q3.options) == 11  # "0.0" shown as "0"
    assert {it.subset["split"] for it in items} == {"steer", "heldout"}
    only = get_task("opinions", data_dir=FIX / "rnr", heldout=False).items()
    assert "United Kingdom" not in only[0].reference_means


def test_split_header_rejects_a_header_without_options(tmp_path):
    with pytest.raises(DatasetError, match="column 3"):
        split_header("Just a question without options", tmp_path / "t.csv", 3)
    assert split_header("Q?\nA. yes\nB. no\n", tmp_path / "t.csv", 1) == ("Q?", ["yes", "no"])


def test_countries_filter_keeps_reference_data_not_items():
    t = get_task("opinions", data_dir=FIX / "global_opinions.csv")
    items = t.items(countries=["Japan"])
    assert len(items) == 5  # question 5 has no Japanese data
    assert all(set(it.reference) == {"Japan"} for it in items)
    assert len(t.items(limit=2)) == 2


def test_default_template_is_the_globalopinionqa_prompt():
    t = get_task("opinions", data_dir=FIX / "global_opinions.csv")
    item = t.items()[0]
    v = Variant(labels="numbers", persona="typical:Japan")
    p = t.render(item, v, Mode.LETTER)
    assert p.variant == v  # the run groups scores by the variant it asked for
    assert p.assistant_prefix.endswith("my answer would be (")
    user = p.messages[-1].content
    assert "Here are the options:\n(1) A great deal\n(2) Somewhat\n(3) Not at all" in user
    assert p.messages[0].role == "system" and "Japan" in p.messages[0].content
    plain = t.render(item, Variant(template="plain"), Mode.LETTER)
    assert "Here are the options" not in plain.messages[-1].content


# --- real shared files -------------------------------------------------------------------------------------
@needs_rnr
def test_real_steerability_tables():
    t = get_task("opinions", data_dir=RNR)
    items = t.items()
    assert (
        t.data_kind == "steerability"
        and t.source.folder == "randomness_not_representation"
        and len(items) == 180
    )
    assert items[0].metadata["heldout_countries"] == ["China", "Kenya", "United Kingdom"]
    assert sum(it.subset["split"] == "steer" for it in items) == 90
    countries = {c for it in items for c in it.reference_means}
    assert len(countries) == 17 and {"Brazil", "United States", "Kenya"} <= countries
    # cell values are read as they are in the file (checked against an independent csv read)
    with (RNR / "steerability/data/global_opinion_data.csv").open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    brazil = next(r for r in rows if r[0] == "Brazil")
    for j in (0, 57, 179):
        assert items[j].reference_means["Brazil"] == pytest.approx(float(brazil[j + 1]))
        assert rows[0][j + 1].strip().startswith(items[j].question[:40])
    # the paper's split: NumPy's legacy RandomState(42) permutation, first half steers
    perm = np.random.RandomState(42).permutation(180)
    assert {it.id for it in items if it.subset["split"] == "steer"} == {f"rnr-q{j:03d}" for j in perm[:90]}


@needs_rnr
def test_real_stability_file_agrees_with_the_wide_table():
    stab = get_task("opinions", data_dir=RNR, source="stability").items()
    wide = {it.question: it for it in get_task("opinions", data_dir=RNR).items()}
    assert len(stab) == 77
    checked = 0
    for it in stab:
        other = wide.get(it.question)
        assert other is not None, it.question
        for country, mean in it.reference_means.items():
            if country not in other.reference_means:
                continue
            if other.options == it.options:
                assert other.reference_means[country] == pytest.approx(mean, abs=1e-6)
            elif other.options == it.options[::-1]:  # ascending order is the original reversed
                assert other.reference_means[country] == pytest.approx(1 - mean, abs=1e-6)
            else:
                continue
            checked += 1
    assert checked > 500


@needs_rnr
@pytest.mark.slow
def test_embedded_model_on_a_slice_of_opinions(tmp_path):
    from culturelens.runner import RunConfig, Runner
    from culturelens.sweep import expand

    cfg = RunConfig(
        model="default",
        tasks=["opinions"],
        limit=6,
        data_dir=str(RNR),
        n_boot=200,
        variants=expand(["option_order=identity,reversed"]),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
    )
    run_dir = Runner(cfg).run().run_dir
    t = analyze_alignment(run_dir)["tasks"]["opinions"]
    table = t["by_condition"]["unsteered"]["countries"]["mae"]
    assert len(table) == 17 and t["by_condition"]["unsteered"]["questions"] == 6
    assert all(0 <= r["sim"] <= 1 and r["ci"][0] <= r["sim"] <= r["ci"][1] for r in table)
    assert sum(r["p_nearest"] for r in table) == pytest.approx(1.0)
    bias = t["bias_removed"]["unsteered"]
    assert bias["first_position_excess"] is not None and bias["mean_tv"] >= 0
