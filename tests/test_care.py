"""CARE: loading (fixture and the real release), the rubric chosen by culture type, bad input, and a real
run with the embedded model as model and judge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED

import culturelens as cl
from culturelens.errors import DatasetError
from culturelens.schema import Prompt, Response, Score, Variant
from culturelens.tasks.base import get_task
from culturelens.tasks.care import RUBRICS

FIX = Path(__file__).parent / "fixtures" / "care"


def _asks(task, item):
    prompt = task.render(item, Variant(), task.default_mode)
    resp = Response(text="An answer.")
    score = task.score(item, prompt, resp)
    return prompt, [a for w in ("paper", "brief") for a in task.judge_asks(item, prompt, resp, score, w)]


def test_fixture_items_and_the_rubric_by_culture_type():
    task = get_task("care", data_dir=FIX)
    items = {it.id: it for it in task.items()}
    assert len(items) == 7
    ja = items["Japanese/3"]
    assert ja.language == "ja" and ja.country and ja.country.name == "Japan"
    assert ja.topic == "Literacy" and ja.subset["scope"] == "Nationwide"
    assert (
        items["Arabic/0"].country is None and items["Arabic/0"].language == "ar"
    )  # a culture, not a country
    prompt, asks = _asks(task, ja)
    assert isinstance(prompt, Prompt) and prompt.messages[-1].content == ja.question  # the bare question
    for ask in asks:
        text = ask.messages[-1].content
        assert ask.kind == "reference" and ask.scale == (1, 10)
        assert ja.metadata["gold"] in text and "Rating: [[" in text + ask.prefix
        assert "textual evidence" in text  # the literary rubric for Literacy
    norms = _asks(task, items["Japanese/1"])[1][0].messages[-1].content
    assert "comprehensiveness" in norms and "textual evidence" not in norms
    entities = _asks(task, items["Japanese/2"])[1][0].messages[-1].content
    assert "depth" in entities and "comprehensiveness" not in entities
    assert set(RUBRICS) == {
        "Cultural commonsense",
        "Social norms",
        "Opinion",
        "Cultural entities",
        "Literacy",
    }


def test_judged_rating_becomes_the_metric():
    task = get_task("care", data_dir=FIX)
    item = task.items()[0]
    score = Score(item_id=item.id, task="care", variant="default", mode=task.default_mode, metrics={})
    assert task.judged_metrics(item, score, {"rating": 6.5}) == {"rating": 6.5}
    assert task.judged_metrics(item, score, {"rating": None}) == {}


def test_bad_rows_name_file_row_and_field(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    rows = json.loads((FIX / "data" / "Japanese-test.json").read_text())
    rows[2]["culture_type"] = "Cuisine"
    (data / "Japanese-test.json").write_text(json.dumps(rows, ensure_ascii=False))
    with pytest.raises(DatasetError) as exc:
        get_task("care", data_dir=tmp_path).items()
    msg = str(exc.value)
    assert "Japanese-test.json" in msg and "row 2" in msg and "culture_type" in msg and "Cuisine" in msg
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "culturelens.cli",
            "run",
            "--task",
            "care",
            "--data-dir",
            str(tmp_path),
            "--model",
            "fake:hash",
            "--out",
            str(tmp_path / "r"),
            "--cache",
            str(tmp_path / "c.sqlite"),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "culture_type" in lines[0], proc.stderr


def test_the_real_release_loads(shared_datasets: Path):
    items = get_task("care", data_dir=shared_datasets / "care").items()
    assert len(items) == 450
    by = {(it.language, it.topic) for it in items}
    assert len(by) == 15  # 3 languages x 5 culture types
    assert sum(it.topic == "Literacy" for it in items) == 90


@pytest.mark.slow
def test_embedded_model_answers_and_judges_real_items(tmp_path: Path):
    pytest.importorskip("llama_cpp")
    if not (SHARED / "care").exists():
        pytest.skip("../shared/datasets not present")
    kw = dict(
        model="default",
        judges=["default"],
        tasks=["care"],
        limit=2,
        data_dir=str(SHARED / "care"),
        task_options={"care": {"max_tokens": 16, "judge_templates": "brief"}},
        cache=str(tmp_path / "c.sqlite"),
        report=False,
    )
    done = cl.run(out=str(tmp_path / "a"), **kw)  # type: ignore[arg-type]
    entry = done.results["tasks"]["care"]
    judge = entry["judge"]
    assert judge["judges"][0]["identity"]["backend"] == "llamacpp" and judge["weak_judge"]
    assert judge["verdicts"] == entry["n"] == 2
    log = cl.read_run(done.run_dir)
    rows = log.judgements("care")
    assert len(rows) == 2 and all(r.prompt.endswith("Rating: [[") for r in rows)
    valid = [r for r in rows if r.valid]
    assert judge["invalid"] == 2 - len(valid)
    if valid:
        assert 1 <= entry["metrics"]["rating"]["mean"] <= 10
    assert done.timing["judge_computed"] == 2
    again = cl.run(out=str(tmp_path / "b"), **kw)  # type: ignore[arg-type]
    assert again.timing["judge_computed"] == 0 and again.timing["judge_cache_hits"] == 2
    assert again.results["tasks"]["care"]["metrics"] == entry["metrics"]
