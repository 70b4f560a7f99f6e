"""Kalahi: loading, the paper's MC1/MC2 (period-closed answers as closed turns, double exponent), the bare
single-exponent scores, malformed rows."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from culturelens.backends.fake import FakeBackend
from culturelens.backends.templates import render_chat_template
from culturelens.runner import RunConfig, Runner, build_request
from culturelens.schema import Item, ItemKind, Mode, Response, Variant
from culturelens.tasks.base import DatasetError, get_task
from culturelens.tasks.kalahi import Kalahi, mc_scores, paper_scores, with_period

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
    # the official lists: answers with their period (all end with one here), the best among the relevant
    assert it.metadata["refs"] == it.options
    assert it.metadata["paper_best"] == 0 and it.metadata["paper_relevant"] == [0, 1, 2]
    assert it.metadata["paper_irrelevant"] == [3, 4, 5] and it.metadata["option_ref"] == [0, 1, 2, 3, 4, 5]
    task = Kalahi(data_dir=FIX)
    p = task.render(it, Variant(), task.default_mode)
    # cloze: the official answers as closed assistant turns, then the bare options (displayed order)
    assert p.mode is Mode.CLOZE and p.continuations == it.metadata["refs"] + it.options
    assert p.close_turn == [True] * 6 + [False] * 6
    assert p.messages[-1].content == it.question and p.assistant_prefix == ""


def _item(options: list[str], n_rel: int) -> Item:
    rel = list(range(n_rel))
    irr = list(range(n_rel, len(options)))
    refs = list(dict.fromkeys(with_period(o) for o in options))
    return Item(
        id="x",
        task="kalahi",
        kind=ItemKind.MULTIPLE_CHOICE,
        question="Q?",
        options=options,
        correct=rel,
        metadata={
            "best": 0,
            "relevant": rel,
            "irrelevant": irr,
            "refs": refs,
            "paper_best": 0,
            "paper_relevant": [refs.index(with_period(options[i])) for i in rel],
            "paper_irrelevant": [refs.index(with_period(options[i])) for i in irr],
            "option_ref": [refs.index(with_period(o)) for o in options],
        },
    )


def test_paper_and_bare_scores_with_reversed_order():
    task = Kalahi(data_dir=FIX)
    # bare: best 10 bytes, other relevant 4 bytes, irrelevant 1 and 8 bytes; refs add a period
    item = _item(["aaaaaaaaaa", "bbbb", "c", "dddddddd"], n_rel=2)
    assert item.metadata["refs"] == ["aaaaaaaaaa.", "bbbb.", "c.", "dddddddd."]
    raw = [-5.0, -4.0, -1.0, -16.0]  # bare, per original option: normalised -0.5, -1.0, -1.0, -2.0
    ref_lps = [-11.0, -2.5, -8.0, -9.0]  # period-closed turns: per byte -1.0, -0.5, -4.0, -1.0
    prompt = task.render(item, Variant(option_order="reversed"), Mode.CLOZE)
    assert prompt.order == [3, 2, 1, 0]
    assert prompt.continuations == [*item.metadata["refs"], "dddddddd", "c", "bbbb", "aaaaaaaaaa"]
    displayed = [raw[i] for i in prompt.order]
    s = task.score(item, prompt, Response(logprobs=ref_lps + displayed, n_tokens=[1] * 8))
    # the paper: score = exp(lp / bytes with the period); MC1 on it, MC2 exponentiates it again
    sc = [math.exp(-1.0), math.exp(-0.5), math.exp(-4.0), math.exp(-1.0)]
    assert s.metrics["mc1"] == 0.0  # best exp(-1) is not strictly above irrelevant exp(-1)
    rel = math.exp(sc[0]) + math.exp(sc[1])
    assert s.metrics["mc2"] == pytest.approx(rel / (rel + math.exp(sc[2]) + math.exp(sc[3])))
    # culturelens's single exponent on the bare answers
    assert s.metrics["mc1_bare"] == 1.0  # -0.5 > max(-1.0, -2.0)
    rel = math.exp(-0.5) + math.exp(-1.0)
    assert s.metrics["mc2_bare"] == pytest.approx(rel / (rel + math.exp(-1.0) + math.exp(-2.0)))
    # TruthfulQA-style sums: the short irrelevant answer wins
    assert s.metrics["mc1_sum"] == 0.0
    rel_sum = math.exp(-5) + math.exp(-4)
    assert s.metrics["mc2_sum"] == pytest.approx(rel_sum / (rel_sum + math.exp(-1) + math.exp(-16)))
    # prediction and probs from the official per-answer scores
    assert s.prediction == 1 and s.probs == pytest.approx([v / sum(sc) for v in sc])


def test_paper_scores_double_exponent_and_repeats():
    lps, nbytes = [-2.0, -6.0, -3.0], [2, 3, 1]  # scores exp(-1), exp(-2), exp(-3)
    sc = [math.exp(-1.0), math.exp(-2.0), math.exp(-3.0)]
    # the relevant list repeats the best answer: it counts twice in MC2, as run_MC sums the list
    mc1, mc2 = paper_scores(0, [0, 0, 1], [2], lps, nbytes)
    rel = 2 * math.exp(sc[0]) + math.exp(sc[1])
    assert mc1 == 1.0 and mc2 == pytest.approx(rel / (rel + math.exp(sc[2])))
    # near 0.5 with equal counts: exp of a score in (0, 1] lies in (1, e]
    assert 0.4 < paper_scores(0, [0], [2], lps, nbytes)[1] < 0.6
    # the same arithmetic as numpy's exp over the list (bit for bit)
    p_rel, p_irr = np.exp([sc[0], sc[1]]), np.exp([sc[2]])
    assert paper_scores(0, [0, 1], [2], lps, nbytes)[1] == float(sum(p_rel / (sum(p_rel) + sum(p_irr))))
    assert with_period("Oo!") == "Oo!." and with_period(" Oo. ") == "Oo."


class _ChatML(FakeBackend):
    """The fake backend under SmolLM2's chat template (no weights): what a template backend renders."""

    TEMPLATE = (
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
        "+ '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )

    def format(self, messages, assistant_prefix=""):
        return render_chat_template(self.TEMPLATE, messages) + assistant_prefix

    def format_closed(self, messages):
        return render_chat_template(self.TEMPLATE, messages, add_generation_prompt=False)


def test_request_scores_each_answer_as_a_closed_turn():
    task = Kalahi(data_dir=FIX)
    item = task.items()[2]
    prompt = task.render(item, Variant(), Mode.CLOZE)
    req = build_request(prompt, _ChatML())
    assert req.text == f"<|im_start|>user\n{item.question}<|im_end|>\n<|im_start|>assistant\n"
    refs = item.metadata["refs"]
    assert req.targets == [f"{r}<|im_end|>\n" for r in refs] + item.options  # bare ones unclosed
    # no visible template (plain text): the answers as they are
    plain = build_request(prompt, FakeBackend("hash"))
    assert plain.targets == refs + item.options


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
    for m in ("mc1", "mc2", "mc1_bare", "mc2_bare", "mc1_sum", "mc2_sum"):
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
        (1, "relevant_answers", "Sumali sa mga gawain ng kabataan sa barangay.", 3),  # best not relevant
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
    for m in ("mc1", "mc2", "mc1_bare", "mc2_bare", "mc1_sum", "mc2_sum"):
        assert 0.0 <= t["metrics"][m]["mean"] <= 1.0
    assert "Philippines" in t["by"]["country"]
