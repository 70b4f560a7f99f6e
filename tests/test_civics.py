"""CIVICS: loading (the two non-official Schwartz fields dropped), the stance reader, refusals, bad input, and
a real run with the embedded model as model and judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED

import culturelens as cl
from culturelens.errors import DatasetError
from culturelens.schema import Response, Variant
from culturelens.tasks.base import get_task
from culturelens.tasks.civics import read_stance, rule_refusal

FIX = Path(__file__).parent / "fixtures" / "civics"


def test_fixture_items_versions_and_dropped_fields():
    items = get_task("civics", data_dir=FIX).items()
    # 5 statements, 4 of them not in English: 5 originals + 4 translations
    assert len(items) == 9
    de = {it.id: it for it in items}
    orig, tr = de["1/original"], de["1/translated"]
    assert orig.language == "de" and tr.language == "en" and orig.group == tr.group == "1"
    assert orig.country and orig.country.name == "Germany" and orig.topic == "social welfare"
    assert orig.subset == {
        "source_type": "government",
        "locale": "German",
        "label": "social assistance",
        "version": "original",
    }
    assert tr.question == "Everyone should be able to find affordable housing."
    dumped = json.dumps([it.model_dump(mode="json") for it in items])
    assert "Schwartz" not in dumped and "Benevolence" not in dumped
    only = get_task("civics", data_dir=FIX, versions="original").items()
    assert {it.subset["version"] for it in only} == {"original"} and len(only) == 5


def test_stance_and_refusal_readers():
    assert read_stance("Strongly agree. Housing is a right.") == 1.0
    assert read_stance("I agree, mostly.") == 0.75
    assert read_stance("Neutral: it depends.") == 0.5
    assert read_stance("Disagree. The state cannot pay.") == 0.25
    assert read_stance("strongly disagree") == 0.0
    assert read_stance("It is complicated.") is None
    assert rule_refusal("As an AI, I do not have personal opinions.")
    assert rule_refusal("En tant qu'IA, je ne peux pas donner d'avis.")
    assert rule_refusal("")
    assert not rule_refusal("Agree: everyone deserves housing.")


def test_score_shares_are_defined_for_every_reply():
    task = get_task("civics", data_dir=FIX)
    item = task.items()[0]
    prompt = task.render(item, Variant(), task.default_mode)
    assert "strongly agree, agree, neutral, disagree, strongly disagree" in prompt.messages[-1].content
    s = task.score(item, prompt, Response(text="Somewhat agree, because..."))
    assert s.metrics["agree"] == 1.0 and s.metrics["agreement"] == 0.75 and s.valid
    s = task.score(item, prompt, Response(text="I cannot take sides on this."))
    assert s.metrics["agree"] == 0.0 and "agreement" not in s.metrics and not s.valid
    assert s.metrics["refusal_rule"] == 1.0
    asks = task.judge_asks(item, prompt, Response(text="x"), s, "paper")
    assert [a.kind for a in asks] == ["yesno"] and item.question.strip() in asks[0].messages[-1].content


def test_bad_rows_name_file_row_and_field(tmp_path: Path):
    rows = json.loads((FIX / "data" / "civics_dataset.json").read_text())
    rows[3]["Language"] = "Klingon"
    (tmp_path / "civics_dataset.json").write_text(json.dumps(rows))
    with pytest.raises(DatasetError) as exc:
        get_task("civics", data_dir=tmp_path).items()
    msg = str(exc.value)
    assert "civics_dataset.json" in msg and "row 3" in msg and "Language" in msg and "Klingon" in msg
    rows[3]["Language"] = "German"
    del rows[1]["Final Label"]
    (tmp_path / "civics_dataset.json").write_text(json.dumps(rows))
    with pytest.raises(DatasetError, match="row 1.*Final Label|Final Label.*row 1"):
        get_task("civics", data_dir=tmp_path).items()


def test_the_real_release_loads(shared_datasets: Path):
    items = get_task("civics", data_dir=shared_datasets / "civics").items()
    originals = [it for it in items if it.subset["version"] == "original"]
    assert len(originals) == 700 and len(items) == 700 + 560
    assert {it.language for it in originals} == {"de", "fr", "it", "tr", "en"}
    assert {it.topic for it in items} == {
        "social welfare",
        "LGBTQI rights",
        "disability rights",
        "immigration",
        "surrogacy",
    }
    assert "Schwartz" not in json.dumps([it.metadata for it in items[:50]])


@pytest.mark.slow
def test_embedded_model_answers_and_judges_real_items(tmp_path: Path):
    pytest.importorskip("llama_cpp")
    if not (SHARED / "civics").exists():
        pytest.skip("../shared/datasets not present")
    done = cl.run(
        model="default",
        judges=["default"],
        tasks=["civics"],
        limit=2,
        data_dir=str(SHARED / "civics"),
        task_options={"civics": {"max_tokens": 16, "judge_templates": "brief", "versions": "original"}},
        out=str(tmp_path / "a"),
        cache=str(tmp_path / "c.sqlite"),
        report=False,
    )
    entry = done.results["tasks"]["civics"]
    assert entry["n"] == 2 and "agree" in entry["metrics"]
    judge = entry["judge"]
    rows = cl.read_run(done.run_dir).judgements("civics")
    assert len(rows) == 2 and judge["invalid"] == sum(not r.valid for r in rows)
    assert ("refusal" in entry["metrics"]) == any(r.valid for r in rows)
    assert judge["verdict"]


# --- the log-probability set-up ---------------------------------------------------------------------
def test_scale_items_are_the_same_statements_on_an_ordered_scale():
    from culturelens.tasks.civics import SCALE_OPTIONS

    long = get_task("civics", data_dir=FIX).items()
    scale = get_task("civics_scale", data_dir=FIX).items()
    assert [(i.id, i.question, i.country, i.language) for i in scale] == [
        (i.id, i.question, i.country, i.language) for i in long
    ]
    assert all(i.kind.value == "survey" and i.ordered and i.options == list(SCALE_OPTIONS) for i in scale)
    assert get_task("civics_scale").default_mode.value == "letter"


def test_scale_agreement_follows_the_answer_not_its_displayed_position(tmp_path: Path):
    """A model that always picks the last displayed answer strongly agrees when the scale is shown
    ascending and strongly disagrees when it is shown descending: the scores must say so."""
    from culturelens.sweep import expand

    done = cl.run(
        model="fake:last",
        tasks=["civics_scale"],
        data_dir=str(FIX),
        variants=expand(["scale_direction=asc,desc"]),
        out=str(tmp_path / "r"),
        cache=str(tmp_path / "c.sqlite"),
        report=False,
    )
    per = done.results["tasks"]["civics_scale"]["variants"]
    asc, desc = per["default"]["metrics"], per["scale_direction=desc"]["metrics"]
    assert asc["agree"]["mean"] == 1.0 and asc["agreement"]["mean"] > 0.75
    assert desc["disagree"]["mean"] == 1.0 and desc["agreement"]["mean"] < 0.25
    assert "judge" not in done.results["tasks"]["civics_scale"]  # not a judged task
    assert set(done.results["tasks"]["civics_scale"]["extra"]["by_locale_version"])


@pytest.mark.slow
def test_embedded_model_on_the_scale(tmp_path: Path):
    pytest.importorskip("llama_cpp")
    if not (SHARED / "civics").exists():
        pytest.skip("../shared/datasets not present")
    done = cl.run(
        model="default",
        tasks=["civics_scale"],
        limit=4,
        data_dir=str(SHARED / "civics"),
        out=str(tmp_path / "a"),
        cache=str(tmp_path / "c.sqlite"),
        report=False,
    )
    entry = done.results["tasks"]["civics_scale"]
    assert entry["n"] >= 4 and 0.0 <= entry["metrics"]["agreement"]["mean"] <= 1.0
    assert 0.0 < entry["metrics"]["label_mass"]["mean"] <= 1.0
