"""CaLMQA: loading, the answer-language and repetition checks, the pairwise judge against the human answer,
the specific vs agnostic gap, and a real run with the embedded model as model and judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED

import culturelens as cl
from culturelens.errors import DatasetError
from culturelens.schema import Response, Score, Variant
from culturelens.tasks.base import get_task
from culturelens.tasks.calmqa import repetition

FIX = Path(__file__).parent / "fixtures" / "calmqa"


def test_fixture_items_and_human_answers():
    items = {it.id: it for it in get_task("calmqa", data_dir=FIX).items()}
    assert len(items) == 6
    assert items["german:0"].language == "de" and items["german:0"].subset["type"] == "specific"
    assert items["non_cultural:0"].subset["type"] == "agnostic"
    assert items["german:1"].metadata["human_answer"] is None
    assert items["german:0"].metadata["human_answer"].startswith("Weil jede Region")


def test_repetition_counts_repeated_4grams():
    assert repetition("a b c d e f", "en") == 0.0
    # 8 tokens -> 5 four-grams, of which "a b c d" repeats twice more: 2/5
    assert repetition("a b c d a b c d", "en") == pytest.approx(1 / 5)
    assert repetition("一二三四一二三四", "zh") == pytest.approx(1 / 5)  # characters for Chinese
    assert repetition("", "en") == 0.0


def test_language_check_and_pairwise_asks():
    pytest.importorskip("langid")
    task = get_task("calmqa", data_dir=FIX)
    items = {it.id: it for it in task.items()}
    item = items["german:0"]
    prompt = task.render(item, Variant(), task.default_mode)
    assert prompt.messages[-1].content == item.question
    de = task.score(
        item,
        prompt,
        Response(text="Das Brot in Deutschland ist vielfältig, weil jede Region eigene Rezepte hat."),
    )
    en = task.score(
        item, prompt, Response(text="Bread in Germany is varied because every region has its own recipes.")
    )
    assert de.metrics["lang_match"] == 1.0 and en.metrics["lang_match"] == 0.0
    asks = task.judge_asks(item, prompt, Response(text="OURS"), de, "paper")
    assert len(asks) == 1 and asks[0].kind == "pairwise"
    first, swapped = asks[0].messages[-1].content, asks[0].swapped[-1].content
    assert first.index("OURS") < first.index("Weil jede Region") and swapped.index("OURS") > swapped.index(
        "Weil jede Region"
    )
    assert (
        task.judge_asks(items["german:1"], prompt, Response(text="x"), de, "paper") == []
    )  # no human answer


def test_specific_vs_agnostic_gap():
    task = get_task("calmqa", data_dir=FIX)
    items = {it.id: it for it in task.items()}

    def s(i: str, rep: float) -> Score:
        return Score(
            item_id=i, task="calmqa", variant="default", mode=task.default_mode, metrics={"repetition": rep}
        )

    extra = task.extra_metrics(
        items, [s("english:0", 0.4), s("non_cultural:0", 0.1), s("non_cultural:1", 0.3), s("german:0", 0.0)]
    )
    gap = extra["specific_vs_agnostic"]
    assert list(gap) == ["en"]  # German has no agnostic questions here
    assert gap["en"]["repetition"]["gap"] == pytest.approx(0.4 - 0.2)
    assert gap["en"]["repetition"]["n"] == [1, 2]


def test_bad_rows_name_file_row_and_field(tmp_path: Path):
    d = tmp_path / "data" / "datasets"
    d.mkdir(parents=True)
    data = json.loads((FIX / "data" / "datasets" / "dataset-specific-german.json").read_text())
    data["entries"][1]["question"]["language"] = "Elvish"
    (d / "dataset-specific-german.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError) as exc:
        get_task("calmqa", data_dir=tmp_path).items()
    msg = str(exc.value)
    assert "dataset-specific-german.json" in msg and "entries[1]" in msg and "question.language" in msg


def test_the_real_release_loads(shared_datasets: Path):
    items = get_task("calmqa", data_dir=shared_datasets / "calmqa").items()
    assert len(items) == 880
    assert sum(it.subset["type"] == "agnostic" for it in items) == 38
    assert len({it.language for it in items}) == 19


def _shortest_real_entries(tmp_path: Path, n: int = 2) -> Path:
    """A data folder with the ``n`` real English-specific questions whose human answers are shortest (the
    embedded judge reads both answers in both orders: long human answers make a slow test)."""
    data = json.loads((SHARED / "calmqa" / "data" / "datasets" / "dataset-specific-english.json").read_text())

    def human_len(e: dict) -> int:
        hs = [a for a in e["answers"] if a["prompting_state"]["model_name"] == "Human"]
        return len(hs[0]["translations"]["English"]["text"]) if hs else 10**9

    folder = tmp_path / "calmqa" / "data" / "datasets"
    folder.mkdir(parents=True)
    picked = sorted(data["entries"], key=human_len)[:n]
    (folder / "dataset-specific-english.json").write_text(json.dumps({"entries": picked}))
    return tmp_path / "calmqa"


@pytest.mark.slow
def test_embedded_model_answers_and_judges_real_items(tmp_path: Path):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("langid")
    if not (SHARED / "calmqa").exists():
        pytest.skip("../shared/datasets not present")
    done = cl.run(
        model="default",
        judges=["default"],
        tasks=["calmqa"],
        data_dir=str(_shortest_real_entries(tmp_path)),
        task_options={"calmqa": {"max_tokens": 16, "judge_templates": "brief"}},
        out=str(tmp_path / "a"),
        cache=str(tmp_path / "c.sqlite"),
        report=False,
    )
    entry = done.results["tasks"]["calmqa"]
    assert entry["n"] == 2 and "lang_match" in entry["metrics"] and "repetition" in entry["metrics"]
    rows = cl.read_run(done.run_dir).judgements("calmqa")
    assert len(rows) == 4 and sorted(r.order for r in rows) == ["AB", "AB", "BA", "BA"]
    ask = entry["judge"]["asks"]["vs_human"]
    assert ask["invalid"] == sum(not r.valid for r in rows)
    both = {r.item_id for r in rows if r.valid and r.order == "AB"} & {
        r.item_id for r in rows if r.valid and r.order == "BA"
    }
    assert ask["swap_pairs"] == len(both)
