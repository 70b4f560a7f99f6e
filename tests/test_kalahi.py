"""Kalahi: loading, MC1/MC2 from byte-normalised continuation log-probs, malformed rows."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import pytest

from culturelens.backends.fake import FakeBackend
from culturelens.runner import RunConfig, Runner
from culturelens.schema import Item, ItemKind, Mode, Response, Variant
from culturelens.tasks.base import DatasetError, get_task
from culturelens.tasks.kalahi import Kalahi, mc_scores

FIX = Path(__file__).parent / "fixtures" / "kalahi"


def test_fixture_items():
    items = get_task("kalahi", data_dir=FIX).items()
    assert [it.id for it in items] == ["0101000100", "0101000101", "0201000100"]
    it = items[0]
    assert it.country.name == "Philippines" and it.language == "fil" and it.topic == "social etiquette"
    assert it.subset == {"category": "ethics"} and it.group == "01010001"
    # the best answer is listed again as the first relevant one in the release; it appears once
    assert it.options[0] == "Magdala ng kaunting pagkain at magpakilala sa mga kapitbahay."
    assert len(it.options) == 6 and it.options.count(it.options[0]) == 1
    assert it.metadata["relevant"] == [0, 1, 2] and it.metadata["irrelevant"] == [3, 4, 5]
    assert it.correct == [0, 1, 2]
    task = Kalahi(data_dir=FIX)
    p = task.render(it, Variant(), task.default_mode)
    assert p.mode is Mode.CLOZE and p.continuations == it.options
    assert p.messages[-1].content == it.question and p.assistant_prefix == ""


def _item(options: list[str], n_rel: int) -> Item:
    rel = list(range(n_rel))
    irr = list(range(n_rel, len(options)))
    return Item(
        id="x",
        task="kalahi",
        kind=ItemKind.MULTIPLE_CHOICE,
        question="Q?",
        options=options,
        correct=rel,
        metadata={"best": 0, "relevant": rel, "irrelevant": irr},
    )


def test_mc1_mc2_byte_normalised_with_reversed_order():
    task = Kalahi(data_dir=FIX)
    # best: 10 bytes, other relevant: 4 bytes, irrelevant: 1 and 8 bytes
    item = _item(["aaaaaaaaaa", "bbbb", "c", "dddddddd"], n_rel=2)
    raw = [-5.0, -4.0, -1.0, -16.0]  # per original option: normalised -0.5, -1.0, -1.0, -2.0
    prompt = task.render(item, Variant(option_order="reversed"), Mode.CLOZE)
    assert prompt.order == [3, 2, 1, 0]
    displayed = [raw[i] for i in prompt.order]
    s = task.score(item, prompt, Response(logprobs=displayed, n_tokens=[1, 1, 1, 1]))
    assert s.metrics["mc1"] == 1.0  # -0.5 > max(-1.0, -2.0)
    rel = math.exp(-0.5) + math.exp(-1.0)
    assert s.metrics["mc2"] == pytest.approx(rel / (rel + math.exp(-1.0) + math.exp(-2.0)))
    # TruthfulQA-style sums: the short irrelevant answer wins
    assert s.metrics["mc1_sum"] == 0.0
    rel_sum = math.exp(-5) + math.exp(-4)
    assert s.metrics["mc2_sum"] == pytest.approx(rel_sum / (rel_sum + math.exp(-1) + math.exp(-16)))
    assert s.prediction == 0 and sum(s.probs) == pytest.approx(1.0)


def test_mc1_tie_is_not_a_win_and_mc2_bounds():
    assert mc_scores(0, [0, 1], [2], [-1.0, -3.0, -1.0]) == (
        0.0,
        pytest.approx((math.exp(-1) + math.exp(-3)) / (2 * math.exp(-1) + math.exp(-3))),
    )
    mc1, mc2 = mc_scores(0, [0], [1, 2], [0.0, -math.inf, -math.inf])
    assert mc1 == 1.0 and mc2 == 1.0


def test_best_answer_below_another_relevant_still_counts_for_mc1_only_against_irrelevant():
    # MC1 compares the best answer with the irrelevant ones only, as the README defines it
    assert mc_scores(0, [0, 1], [2], [-2.0, -0.1, -3.0])[0] == 1.0
    assert mc_scores(0, [0, 1], [2], [-2.0, -0.1, -1.0])[0] == 0.0


def test_run_with_fake_backend(tmp_path: Path):
    cfg = RunConfig(
        model="fake:hash",
        tasks=["kalahi"],
        data_dir=str(FIX),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
    )
    res = Runner(cfg, backend=FakeBackend("hash")).run()
    t = res.results["tasks"]["kalahi"]
    assert t["n"] == 3 and t["modes"] == ["cloze"]
    for m in ("mc1", "mc2"):
        assert 0.0 <= t["metrics"][m]["mean"] <= 1.0
    assert t["metrics"]["mc1"]["clusters"] == 2  # the two persona variants of one prompt share a cluster
    assert set(t["by"]["subset:category"]) == {"ethics", "shared knowledge"}


def test_letter_mode_falls_back_to_accuracy():
    task = Kalahi(data_dir=FIX)
    item = task.items()[2]
    p = task.render(item, Variant(), Mode.LETTER)
    lps = [-5.0] * len(item.options)
    lps[p.order.index(4)] = -0.1  # an irrelevant option
    s = task.score(item, p, Response(logprobs=lps))
    assert s.metrics["acc"] == 0.0 and "mc1" not in s.metrics


def _rewrite(path: Path, row_index: int, field: str, value: str) -> None:
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    fields = list(rows[0])
    rows[row_index][field] = value
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


@pytest.mark.parametrize(
    ("row_index", "field", "value", "row"),
    [
        (1, "best_answer", "", 3),
        (2, "irrelevant_answers", " ; ", 4),
        (0, "irrelevant_answers", "Lechon.;Sushi.", 2),
    ],
)
def test_malformed_rows_name_file_row_field(tmp_path: Path, row_index, field, value, row):
    dst = tmp_path / "kalahi"
    shutil.copytree(FIX, dst)
    path = dst / "data" / "filipino.csv"
    if value == "Lechon.;Sushi.":  # an answer listed both as relevant and irrelevant
        _rewrite(path, row_index, "relevant_answers", "Magdala ng kaunting pagkain.;Lechon.")
    _rewrite(path, row_index, field, value)
    with pytest.raises(DatasetError) as exc:
        get_task("kalahi", data_dir=dst).items()
    assert exc.value.file.endswith("filipino.csv") and exc.value.row == row and exc.value.field == field


def test_offline_message(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("CULTURELENS_KALAHI_DIR", raising=False)
    monkeypatch.setenv("CULTURELENS_DATA_CACHE", str(tmp_path))
    monkeypatch.setenv("CULTURELENS_OFFLINE", "1")
    with pytest.raises(DatasetError, match="--data-dir"):
        get_task("kalahi").items()


def test_real_release(shared_datasets: Path):
    items = get_task("kalahi", data_dir=shared_datasets / "kalahi").items()
    assert len(items) == 150
    assert len({it.group for it in items}) == 86
    cats = [it.subset["category"] for it in items]
    assert cats.count("ethics") == 109 and cats.count("shared knowledge") == 41
    assert len({it.topic for it in items}) == 11
    assert all(len(it.metadata["irrelevant"]) >= 3 and it.metadata["relevant"][0] == 0 for it in items)
    unen = get_task("kalahi", data_dir=shared_datasets / "kalahi", prompts="unenriched").items()
    assert len(unen) == 85


@pytest.mark.slow
def test_real_model_small_slice(shared_datasets: Path, tmp_path: Path):
    pytest.importorskip("llama_cpp")
    cfg = RunConfig(
        tasks=["kalahi"],
        data_dir=str(shared_datasets / "kalahi"),
        limit=6,
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=100,
    )
    t = Runner(cfg).run().results["tasks"]["kalahi"]
    assert t["n"] == 6 and t["modes"] == ["cloze"]
    for m in ("mc1", "mc2", "mc1_sum", "mc2_sum"):
        assert 0.0 <= t["metrics"][m]["mean"] <= 1.0
    assert "Philippines" in t["by"]["country"]
