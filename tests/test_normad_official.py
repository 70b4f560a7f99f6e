"""normad's paper protocol agrees with the official NormAd code (Akhila-Yerukola/NormAd @ 9ede851).

The release CSV is not in ``../shared`` (too large for the snapshot store), so the rows are synthetic,
written for this test with the quirks a real file can have (trailing blanks, line breaks inside a
field, CRLF, braces, quotes, tabs, non-Latin text, emoji). Outside the repository the official,
unmodified ``run_model_inference.py`` ran every conditioning on them with its chat client replaced
by one that answered each prompt with a scripted reply, and ``get_model_scores_overall.py`` scored
its output files. The fixture holds the reply patterns and the official outputs: a digest of every
prompt, which reply it got, the generation budget, the label read from every reply, and accuracy and
micro-F1 per conditioning.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from culturelens.schema import Mode, Response, Variant
from culturelens.tasks.base import get_task
from culturelens.tasks.normad import ALL_LEVELS, LABELS

HERE = Path(__file__).parent / "fixtures" / "official"
#: official --conditioning -> culturelens level
LEVEL = {"none": "none", "country": "country", "cval": "country_value", "value": "value", "rot": "rot"}
_OFFICIAL_LABEL = {"yes": "yes", "no": "no", "neutral": "neither"}


@pytest.fixture(scope="module")
def official():
    return json.loads((HERE / "normad_official.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def scored(official):
    """Per official conditioning: (prompt digests, max_tokens, predicted labels, extra metrics, mean micro_f1)."""
    task = get_task("normad", data_dir=str(HERE / "normad"), levels=",".join(ALL_LEVELS))
    items = task.items()
    by_id = {it.id: it for it in items}
    out = {}
    for cond, level in LEVEL.items():
        rows = sorted(
            (it for it in items if it.subset["level"] == level), key=lambda it: int(it.metadata["story_id"])
        )
        want = official["levels"][cond]
        assert len(rows) == len(want["reply"]) == 45
        digests, budgets, labels, scores = [], set(), [], []
        for it, k in zip(rows, want["reply"], strict=True):
            prompt = task.render(it, Variant(), task.default_mode)
            assert prompt.mode is Mode.GENERATE and [m.role for m in prompt.messages] == ["user"]
            digests.append(hashlib.sha256(prompt.messages[0].content.encode()).hexdigest())
            budgets.add(prompt.max_tokens)
            s = task.score(it, prompt, Response(text=official["patterns"][k]))
            labels.append(LABELS[s.prediction])
            scores.append(s)
        extra = task.extra_metrics(by_id, scores)["levels"][level]
        mean = sum(s.metrics["micro_f1"] for s in scores) / len(scores)
        out[cond] = (digests, sorted(budgets), labels, extra, mean)
    return out


@pytest.mark.parametrize("cond", list(LEVEL))
def test_prompts_are_the_official_prompts(official, scored, cond):
    digests, budgets, *_ = scored[cond]
    want = official["levels"][cond]
    diff = [i for i, (a, b) in enumerate(zip(digests, want["prompt_sha256"], strict=True)) if a != b]
    assert not diff, f"{cond}: prompts of rows {diff} differ from the official ones"
    assert budgets == want["max_tokens"] == [50]


@pytest.mark.parametrize("cond", list(LEVEL))
def test_labels_and_micro_f1_equal_the_official_analysis(official, scored, cond):
    _, _, labels, extra, mean = scored[cond]
    want = official["levels"][cond]
    expected = [_OFFICIAL_LABEL[p] for p in want["prediction"]]
    diff = [(i, a, b) for i, (a, b) in enumerate(zip(labels, expected, strict=True)) if a != b]
    assert not diff, f"{cond}: labels differ at {diff}"
    assert extra["micro_f1"] == pytest.approx(want["micro_f1"], abs=1e-12)
    assert extra["acc"] == pytest.approx(want["accuracy"], abs=1e-12)
    assert mean == pytest.approx(want["micro_f1"], abs=1e-12)  # the per-item headline averages to it


def test_the_replies_exercise_every_branch_of_the_rule(official):
    preds = {p for lv in official["levels"].values() for p in lv["prediction"]}
    used = {k for lv in official["levels"].values() for k in lv["reply"]}
    assert preds == {"yes", "no", "neutral"} and len(used) >= 20
