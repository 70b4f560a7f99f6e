"""Kalahi's paper protocol agrees with the official scorer (aisingapore/kalahi @ 2beb3ef).

The fixture was made outside the repository by running the official, unmodified
``utilities.split_multi_answer`` / ``format_best`` on every row of the released ``filipino.csv`` and
``metrics.run_MC`` on synthetic summed log-probs of each period-closed answer (scores
``exp(sum / bytes)`` as ``models.calculate_logprobs`` stores them). It carries the inputs (the
log-prob of each answer in the official lists, their byte counts) and the official MC1 / MC2 per item.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturelens.schema import Mode, Response, Variant
from culturelens.tasks.base import get_task

FIXTURE = Path(__file__).parent / "fixtures" / "official" / "kalahi_run_mc.json"


@pytest.fixture(scope="module")
def kalahi():
    from tests.conftest import SHARED

    if not SHARED.exists():
        pytest.skip("../shared/datasets not present")
    return get_task("kalahi", data_dir=str(SHARED / "kalahi"))


def test_mc1_mc2_equal_the_official_run_mc_on_every_item(kalahi):
    fx = json.loads(FIXTURE.read_text(encoding="utf-8"))
    items = kalahi.items()
    official = {int(k): v for k, v in fx["items"].items()}  # pandas read the ids as numbers
    assert sorted(int(it.id) for it in items) == sorted(official)
    mc1_diff = mc2_diff = 0
    mc1, mc2 = [], []
    for item in items:
        off = official[int(item.id)]
        meta = item.metadata
        refs = meta["refs"]
        lps: list[float | None] = [None] * len(refs)
        for pos, lp in zip(meta["paper_relevant"] + meta["paper_irrelevant"],
                           off["relevant_lps"] + off["irrelevant_lps"], strict=True):  # fmt: skip
            assert lps[pos] in (None, lp)  # a repeated answer is the same text, so the same log-prob
            lps[pos] = lp
        assert [len(refs[p].encode("utf-8")) for p in meta["paper_relevant"]] == off["relevant_bytes"]
        assert [len(refs[p].encode("utf-8")) for p in meta["paper_irrelevant"]] == off["irrelevant_bytes"]
        assert meta["paper_relevant"][off["best_position"]] == meta["paper_best"]
        prompt = kalahi.render(item, Variant(), Mode.CLOZE)
        bare = [-10.0 - i for i in range(len(prompt.order))]
        score = kalahi.score(item, prompt, Response(logprobs=[*lps, *bare]))
        mc1_diff += score.metrics["mc1"] != off["MC1"]
        mc2_diff += abs(score.metrics["mc2"] - off["MC2"]) > 1e-12
        mc1.append(score.metrics["mc1"])
        mc2.append(score.metrics["mc2"])
    assert (mc1_diff, mc2_diff) == (0, 0)
    assert sum(mc1) / len(mc1) == pytest.approx(fx["MC1_mean"], abs=1e-12)
    assert sum(mc2) / len(mc2) == pytest.approx(fx["MC2_mean"], abs=1e-12)
