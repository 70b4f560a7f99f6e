"""One contract over every registered task (as lm-eval's tests/test_tasks.py): it loads its fixture,
renders every template and a presentation sweep, is scored on fake answers, and its run log
round-trips: the item snapshot equals the task's items, every sample re-scores to what was stored,
and the declared headline metric is in the results."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_task_options import HOFSTEDE, _data

import culturelens as cl
from culturelens.judging import JudgedTask
from culturelens.sweep import expand
from culturelens.tasks.base import get_task, task_names

LIMIT = 6
#: every judge kind reads this: a rating, a pairwise preference and a yes/no verdict
FAKE_VERDICT = "Rating: [[7]] [[A]] [[Yes]]"
#: tasks declared in spec files (culturelens.tasks.spec: multiple choice, label, short answer) keep it too
SPECS = sorted((Path(__file__).parent / "fixtures" / "spec").glob("*.[yt]*ml"))


@pytest.mark.parametrize("name", [*task_names(), *(pytest.param(str(s), id=f"spec:{s.name}") for s in SPECS)])
def test_task_contract(name: str, tmp_path: Path):
    data = None if name.endswith((".yaml", ".yml", ".toml")) else _data(name, tmp_path)
    options: dict[str, object] = {}
    if name == "vsm":
        if not HOFSTEDE.exists():
            pytest.skip("../shared/datasets not present")
        options["hofstede_file"] = str(HOFSTEDE)
    if name == "wvb":
        options["wvs_file"] = str(
            Path(__file__).parent / "fixtures" / "wvb" / "WVS_Cross-National_Wave_7_fixture.csv"
        )
    task = get_task(name, data_dir=str(data) if data else None, **options)
    name = task.name  # a spec file's task goes by the name its spec gives
    items = task.items(limit=LIMIT)
    assert items, f"{name}: no items on its fixture"
    variants = expand(
        ["template=all", "option_order=identity,reversed"], kinds=sorted({i.kind for i in items})
    )
    # a judged task is judged by a fake judge with fixed, readable verdicts (culturelens.judging)
    judged = isinstance(task, JudgedTask)
    judging: dict[str, object] = (
        {"judges": ["fake:hash"], "judge_options": {"generate_text": FAKE_VERDICT}} if judged else {}
    )
    done = cl.run(
        model="fake:hash",
        tasks=[name],
        limit=LIMIT,
        **judging,
        data_dir=str(data) if data else None,
        task_options={name: options} if options else {},
        variants=variants,
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        report=False,
    )
    log = cl.read_run(done.run_dir)
    assert log.complete and log.is_whole()
    snapshot = log.items(name)
    assert [snapshot[i.id] for i in items] == items, (
        f"{name}: the item snapshot differs from the task's items"
    )
    samples = list(log.iter_samples(name))
    assert len(samples) == len(items) * len(variants)
    assert {s.variant for s in samples} == {v.id for v in variants}
    # every sample re-scores to what the log holds (same task, same item, same prompt, same answer)
    by_vid = {v.id: v for v in variants}
    mode = task.default_mode
    for s in samples[:: max(1, len(samples) // 12)]:
        item = snapshot[s.item_id]
        prompt = task.render(item, by_vid[s.variant], s.mode or mode, None)
        from culturelens.schema import Response

        resp = Response.model_validate(s.response)
        score = task.score(item, prompt, resp)
        stored = s.metrics
        # the judge stage adds declared, judged metrics; the rest re-scores from the response alone
        if judged:
            added = set(stored) - set(score.metrics)
            assert added <= {*type(task).metrics, type(task).headline.metric}, f"{name}: undeclared {added}"
            assert stored.get("judge_invalid", 0.0) == 0.0, f"{name}: the fake judge's verdicts are readable"
            stored = {k: v for k, v in stored.items() if k in score.metrics}
        assert score.metrics == stored and score.valid == s.valid, f"{name}: {s.item_id} {s.variant}"
    head = type(task).headline.metric if hasattr(type(task), "headline") else None
    entry = log.task_results(name)
    if head is not None:
        assert head in entry["metrics"] or head in (entry.get("extra") or {}), (
            f"{name}: headline {head} missing"
        )
    assert len(log.task_variants(name)) == len(variants)
