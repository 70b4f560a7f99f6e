"""wvb's paper protocol agrees with the official WorldValuesBench code (Demon702/WorldValuesBench @
635db74) on every one of the 8,280 probe rows of the real release.

The raw WVS answers are not redistributable, so :mod:`tests.wvb_synthetic` writes a synthetic raw
file for the real probe design. Outside the repository the official, unmodified
``data_preparation.py`` built its ``full_value_qa.tsv`` from that file and ``evaluate.py`` scored a
SCORE column scripted by the same module (in scale, out of scale, decimals, exponents, blanks, words,
non-ASCII digits). The fixture holds the official outputs: the score ``process_csv`` read from every
SCORE string and the W1 ``evaluate`` returned per question.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from culturelens.schema import Mode, Response, Variant
from culturelens.tasks.base import get_task
from culturelens.tasks.wvb import parse_score
from tests import wvb_synthetic as ws

FIXTURE = Path(__file__).parent / "fixtures" / "official" / "wvb_evaluate.json"


@pytest.fixture(scope="module")
def official():
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    from tests.conftest import SHARED

    root = SHARED / "worldvaluesbench"
    if not (root / "WorldValuesBench").exists():
        pytest.skip("shared WorldValuesBench data not available")
    raw = tmp_path_factory.mktemp("wvb") / "WVS_Cross-National_Wave_7_synthetic.csv"
    return root, raw, ws.write_raw(root, raw)


def _reply(said: str) -> str:
    return json.dumps({"thoughtful explanation": "Considering the answers above.", "answer as a score": said})


def test_inputs_are_the_fixtures_inputs(release, official):
    root, _, digest = release
    assert digest == official["raw_sha256"]
    assert hashlib.sha256(json.dumps(ws.scores(root)).encode()).hexdigest() == official["scores_sha256"]


def test_score_read_from_every_reply_equals_process_csv(release, official):
    root, _, _ = release
    rows = ws.scores(root)
    got = [parse_score(_reply(said)) for _, _, said in rows]
    diff = [(r, g, w) for r, g, w in zip(rows, got, official["valid_score"], strict=True) if g != w]
    assert not diff, f"{len(diff)}/{len(rows)} scores differ, e.g. {diff[:3]}"
    assert sum(g is None for g in got) == sum(w is None for w in official["valid_score"]) > 0


def test_per_question_w1_equals_evaluate(release, official):
    root, raw, _ = release
    task = get_task("wvb", data_dir=str(root), wvs_file=str(raw))
    items = {it.id: it for it in task.items()}
    said = {f"wvb-{q}-{p}": s for q, p, s in ws.scores(root)}
    assert set(items) == set(said) and len(items) == 8280  # every probe row is an item
    scores = []
    for iid, item in items.items():
        prompt = task.render(item, Variant(), Mode.GENERATE)
        scores.append(task.score(item, prompt, Response(text=_reply(said[iid]))))
    units = {u.group: s.metrics["w1"] for u, s in task.unit_scores(items, scores)}
    want = official["w1"]
    assert set(units) == set(want) and len(want) == 36
    diff = {q: (units[q], want[q]) for q in want if units[q] != pytest.approx(want[q], rel=1e-12, abs=1e-12)}
    assert not diff, f"{len(diff)}/36 questions differ: {diff}"
