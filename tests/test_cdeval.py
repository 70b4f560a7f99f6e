"""CDEval: template x order expansion, orientation mapped back to Option 1, the dimension x domain table."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from culturelens.backends.fake import FakeBackend
from culturelens.runner import RunConfig, Runner
from culturelens.schema import Mode, Response, Score, Variant
from culturelens.tasks.base import DatasetError, get_task
from culturelens.tasks.cdeval import TEMPLATES

FIX = Path(__file__).parent / "fixtures" / "cdeval"


def test_expansion_over_templates_and_orders():
    task = get_task("cdeval", data_dir=FIX)
    items = task.items()
    assert len(items) == 4 * len(TEMPLATES) * 2 and len(TEMPLATES) >= 3
    first = [it for it in items if it.group == "cdeval-0000"]
    assert {(it.metadata["template"], it.metadata["order"]) for it in first} == {
        (t, o) for t in TEMPLATES for o in ("high_first", "high_second")
    }
    hi = next(it for it in first if it.metadata["order"] == "high_first")
    lo = next(it for it in first if it.metadata["order"] == "high_second")
    assert hi.options == lo.options[::-1] and hi.metadata["high"] == 0 and lo.metadata["high"] == 1
    assert hi.country is None and hi.topic == "Work" and hi.subset["dimension"] == "PDI"
    # each template has its own wording; all show both options
    texts = {
        task.render(it, Variant(), Mode.LETTER).messages[-1].content
        for it in first
        if it.metadata["order"] == "high_first"
    }
    assert len(texts) == len(TEMPLATES)
    assert all(hi.options[0] in t and hi.options[1] in t for t in texts)


def _letter_response(prompt, displayed_pos: int) -> Response:
    lps = [-3.0] * len(prompt.labels)
    lps[displayed_pos] = -0.2
    return Response(logprobs=lps)


def test_orientation_maps_back_to_option_1_under_reversed_display():
    task = get_task("cdeval", data_dir=FIX)
    items = {it.id: it for it in task.items()}
    lo = items["cdeval-0000/direct/high_second"]  # stored [Option 2, Option 1]
    p = task.render(lo, Variant(option_order="reversed"), Mode.LETTER)
    assert p.order == [1, 0]
    assert "A. Wait for the manager" in p.messages[-1].content  # Option 1 is displayed first
    s = task.score(lo, p, _letter_response(p, 0))
    assert s.metrics["orientation"] == 1.0 and s.metrics["p_high"] > 0.5 and s.prediction == 1
    hi = items["cdeval-0000/direct/high_first"]
    p = task.render(hi, Variant(option_order="reversed"), Mode.LETTER)
    s = task.score(hi, p, _letter_response(p, 0))  # first displayed is now Option 2
    assert s.metrics["orientation"] == 0.0 and "acc" not in s.metrics


def test_generate_mode_invalid_reply_is_left_out_of_orientation():
    task = get_task("cdeval", data_dir=FIX)
    it = task.items()[0]
    p = task.render(it, Variant(), Mode.GENERATE)
    s = task.score(it, p, Response(text="It depends."))
    assert not s.valid and "orientation" not in s.metrics and s.metrics["invalid"] == 1.0
    s = task.score(it, p, Response(text="B"))
    assert s.metrics["orientation"] == float(it.metadata["high"] == 1)


def test_extra_metrics_table_and_order_consistency():
    task = get_task("cdeval", data_dir=FIX)
    items = {it.id: it for it in task.items()}

    def sc(item_id: str, o: float) -> Score:
        return Score(
            item_id=item_id, task="cdeval", variant="default", mode=Mode.LETTER, metrics={"orientation": o}
        )

    scores = [
        sc("cdeval-0000/direct/high_first", 1.0), sc("cdeval-0000/direct/high_second", 1.0),
        sc("cdeval-0000/survey/high_first", 1.0), sc("cdeval-0000/survey/high_second", 0.0),
        sc("cdeval-0003/direct/high_first", 0.0), sc("cdeval-0003/direct/high_second", 0.0),
    ]  # fmt: skip
    extra = task.extra_metrics(items, scores)
    assert extra["orientation_likelihood"] == {"PDI": {"Work": 0.75, "Education": 0.0}}
    assert extra["by_dimension"] == {"PDI": 0.5}
    assert extra["by_template_order"]["survey/high_second"] == 0.0
    assert extra["order_consistency"] == pytest.approx(2 / 3) and extra["n_order_pairs"] == 3


def test_run_with_fake_backend_first_position_bias_cancels(tmp_path: Path):
    cfg = RunConfig(
        model="fake:first",
        tasks=["cdeval"],
        data_dir=str(FIX),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
    )
    res = Runner(cfg, backend=FakeBackend("first")).run()
    t = res.results["tasks"]["cdeval"]
    # always choosing the first displayed option = high pole in exactly half of the rows
    assert t["metrics"]["orientation"]["mean"] == 0.5 and t["metrics"]["orientation"]["clusters"] == 4
    assert t["extra"]["order_consistency"] == 0.0
    assert set(t["by"]["subset:order"]) == {"high_first", "high_second"}
    assert t["by"]["subset:order"]["high_first"]["metrics"]["orientation"]["mean"] == 1.0


def test_template_option(tmp_path: Path):
    assert len(get_task("cdeval", data_dir=FIX, templates="direct").items()) == 8
    with pytest.raises(ValueError):
        get_task("cdeval", data_dir=FIX, templates="nope")


@pytest.mark.parametrize(("edit", "row", "field"), [
    (lambda rows: rows[2].pop("Option 2"), 2, "Option 2"),
    (lambda rows: rows[1].update({"Dimension": "XYZ"}), 1, "Dimension"),
])  # fmt: skip
def test_malformed_rows(tmp_path: Path, edit, row, field):
    dst = tmp_path / "cd"
    shutil.copytree(FIX, dst)
    rows = json.loads((dst / "CDEval.json").read_text())
    edit(rows)
    (dst / "CDEval.json").write_text(json.dumps(rows))
    with pytest.raises(DatasetError) as exc:
        get_task("cdeval", data_dir=dst).items()
    assert exc.value.file.endswith("CDEval.json") and exc.value.row == row and exc.value.field == field


def test_offline_message(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("CULTURELENS_CDEVAL_DIR", raising=False)
    monkeypatch.setenv("CULTURELENS_DATA_CACHE", str(tmp_path))
    monkeypatch.setenv("CULTURELENS_OFFLINE", "1")
    with pytest.raises(DatasetError, match="--data-dir"):
        get_task("cdeval").items()


def test_real_release(shared_datasets: Path):
    items = get_task("cdeval", data_dir=shared_datasets / "cdeval").items()
    assert len(items) == 2953 * len(TEMPLATES) * 2
    one = [it for it in items if it.metadata["template"] == "direct" and it.metadata["order"] == "high_first"]
    assert len(one) == 2953
    assert Counter(it.subset["dimension"] for it in one) == {
        "UAI": 530,
        "PDI": 512,
        "IVR": 502,
        "LTO": 485,
        "IDV": 472,
        "MAS": 452,
    }
    assert Counter(it.topic for it in one) == {
        "Education": 447,
        "Lifestyle": 428,
        "Scientific": 422,
        "Family": 417,
        "Wellness": 415,
        "Arts": 415,
        "Work": 409,
    }


@pytest.mark.slow
def test_real_model_small_slice(shared_datasets: Path, tmp_path: Path):
    pytest.importorskip("llama_cpp")
    cfg = RunConfig(
        tasks=["cdeval"],
        data_dir=str(shared_datasets / "cdeval"),
        limit=12,  # two whole questions: --limit keeps a question's 6 template/order copies together
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=100,
    )
    t = Runner(cfg).run().results["tasks"]["cdeval"]
    assert t["n"] == 12 and t["modes"] == ["letter"]
    assert 0.0 <= t["metrics"]["orientation"]["mean"] <= 1.0
    assert 0.0 <= t["metrics"]["p_high"]["mean"] <= 1.0
    table = t["extra"]["orientation_likelihood"]
    assert table and all(0.0 <= v <= 1.0 for row in table.values() for v in row.values())
    assert t["extra"]["n_order_pairs"] == 6  # 2 questions x 3 templates, both orders of each


def _groups_per(items, key) -> Counter:
    return Counter(key(next(it for it in items if it.group == g)) for g in {it.group for it in items})


def test_limit_is_representative_on_the_real_release(shared_datasets: Path, tmp_path: Path):
    """The release's first 120 rows are all one dimension; ``--limit 120`` must cover all six,
    as whole questions (6 template/order copies each), balanced, the same every time."""
    data = shared_datasets / "cdeval"
    first = get_task("cdeval", data_dir=data, limit_mode="first").items(limit=120)
    assert {it.subset["dimension"] for it in first} == {"IDV"}  # the old behaviour, still available
    items = get_task("cdeval", data_dir=data).items(limit=120)
    assert len(items) == 120 and all(n == 6 for n in Counter(it.group for it in items).values())
    per_dim = _groups_per(items, lambda it: it.subset["dimension"])
    assert set(per_dim) == {"PDI", "IDV", "UAI", "MAS", "LTO", "IVR"}
    assert max(per_dim.values()) - min(per_dim.values()) <= 1  # 20 questions over 6 dimensions
    per_domain = _groups_per(items, lambda it: it.topic)
    assert len(per_domain) == 7 and max(per_domain.values()) - min(per_domain.values()) <= 1
    # deterministic, and a larger limit only adds questions
    assert [it.id for it in get_task("cdeval", data_dir=data).items(limit=120)] == [it.id for it in items]
    assert {it.id for it in get_task("cdeval", data_dir=data).items(limit=60)} < {it.id for it in items}
    other = get_task("cdeval", data_dir=data, limit_seed=1).items(limit=120)
    assert {it.group for it in other} != {it.group for it in items}  # the seed draws another sample
    # the same selection through the CLI, in a fresh process (its own hash salt)
    import subprocess
    import sys

    out = tmp_path / "run"
    cmd = [
        str(Path(sys.executable).parent / "culturelens"),
        "run",
        "--task",
        "cdeval",
        "--data-dir",
        str(data),
    ]
    cmd += [
        "--limit",
        "120",
        "--model",
        "fake:hash",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--out",
        str(out),
    ]
    proc = subprocess.run([*cmd, "--no-report", "-q"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with (out / "samples.jsonl").open() as fh:
        ran = {json.loads(line)["item_id"] for line in fh}
    assert ran == {it.id for it in items}
