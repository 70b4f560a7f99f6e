"""The benchmark's BLEnD multiple-choice item builder (bench/blend_mc.py) on the real BLEnD data."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from culturelens.tasks.starter import read_jsonl_items

ROOT = Path(__file__).resolve().parents[1]
BLEND = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "blend"


def _builder():
    spec = importlib.util.spec_from_file_location("blend_mc", ROOT / "bench" / "blend_mc.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def items_file(tmp_path_factory) -> Path:
    if not (BLEND / "data" / "annotations").is_dir():
        pytest.skip("BLEnD data not available")
    path = tmp_path_factory.mktemp("bench") / "items.jsonl"
    assert _builder().write_items(path, BLEND, limit=400) == 400
    return path


def test_items_are_valid_four_option_mcqs(items_file: Path) -> None:
    mod = _builder()
    regions = mod.load_regions(BLEND)
    rows = [json.loads(line) for line in items_file.read_text(encoding="utf-8").splitlines()]
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({r["country"] for r in rows}) == len(regions)  # round-robin covers every region
    for r in rows:
        opts = r["options"]
        assert len(opts) == 4 and all(isinstance(o, str) and o.strip() for o in opts)
        assert len({mod._norm(o) for o in opts}) == 4, r  # no duplicate options
        stem, qid = r["id"].split("/")
        entry = regions[stem][0][qid]
        assert opts[r["answer"]] == mod._top_answer(entry)  # gold = the region's top answer
        own = mod._all_answers(entry)
        # no distractor is an answer some annotator of this region gave
        assert all(mod._norm(o) not in own for i, o in enumerate(opts) if i != r["answer"]), r
    # the gold is not always at one position
    assert len({r["answer"] for r in rows}) == 4


def test_items_load_as_starter_items(items_file: Path) -> None:
    items = list(read_jsonl_items(items_file, "starter"))
    assert len(items) == 400
    assert all(len(it.options) == 4 and len(it.correct) == 1 and it.country is not None for it in items)


def _targets_module():
    spec = importlib.util.spec_from_file_location("bench_targets", ROOT / "bench" / "targets.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_targets_table_applies_the_issue_thresholds(tmp_path: Path) -> None:
    """bench/targets.py reads what the bench scripts wrote; it applies the targets, never a figure of its own."""
    targets = _targets_module()
    ratios = [
        {"what": "letter: lm-eval wall / culturelens(hf) wall", "value": 3.2, "target": "", "note": "a"},
        {
            "what": "letter: lm-eval wall / culturelens(llamacpp) wall",
            "value": 2.4,
            "target": "",
            "note": "b",
        },
        {
            "what": "sweep of 8 variants (100 items): scoring / single pass scoring",
            "value": 6.5,
            "target": "",
            "note": "",
        },
        {
            "what": "sweep of 8 variants: tokens to evaluate / single pass (floor)",
            "value": 6.0,
            "target": "",
            "note": "",
        },
    ]
    (tmp_path / "bench.json").write_text(json.dumps({"items": 300, "ratios": ratios}))
    scale = {"rows": [{"target": "peak RSS flat", "measured": "1 -> 3", "ratio": "3.0 <= 1.2", "met": False}]}
    (tmp_path / "scale.json").write_text(json.dumps(scale))
    rows = {r["target"]: r for r in targets.rows(tmp_path)}
    assert rows["letter: lm-eval wall / culturelens(hf) wall, 300 items"]["met"] == "met"
    assert rows["letter: lm-eval wall / culturelens(llamacpp) wall, 300 items"]["met"] == "NOT MET"  # < 2.5
    sweep = rows["sweep of 8 variants: scoring time ratio / token-floor ratio"]
    assert sweep["measured"].startswith("1.08") and sweep["met"] == "met"
    assert rows["peak RSS flat"]["met"] == "NOT MET"
    # scripts that did not run are rows that say so, not figures
    assert rows["generate mode vs lm-eval generate_until"]["measured"] == "not run"
    assert rows["bench/gpu on an H100/H200 in < 8 min"]["measured"].startswith("not measured")
