"""Scripted inputs for the report's improve, lict and cross-lingual sections (fake backends, no model)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturelens.backends.fake import FakeBackend
from culturelens.runlog import read_run
from culturelens.runner import RunConfig, Runner
from culturelens.schema import Request, Response
from culturelens.sweep import expand

SWEEP = ["option_order=identity,reversed", "labels=letters,numbers"]
LICT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "lost_in_cultural_translation"


def _run(out: Path, backend: FakeBackend, vary: Sequence[str] = SWEEP, **kw: Any) -> Path:
    cfg = RunConfig(
        model=f"fake:{backend.policy}",
        tasks=["starter"],
        variants=expand(list(vary)),
        out=str(out),
        cache=str(out.parent / f"{out.name}.sqlite"),
        n_boot=200,
        **kw,
    )
    return Runner(cfg, backend=backend).run().run_dir


def fake_improve(out: Path) -> dict[str, Any]:
    """An improve output folder without training: before = the hash policy, after = a model that always
    answers the first option shown (a position collapse); the summary is written by the loop's writer."""
    from culturelens.compare import compare_runs
    from culturelens.improve.analysis import compare_control, compare_split
    from culturelens.improve.data import HELDOUT, TEST, build_dataset, write_dataset
    from culturelens.improve.loop import _write

    before_dir = _run(out / "runs" / "before", FakeBackend("hash"))
    after_dir = _run(out / "runs" / "after", FakeBackend("first"))
    before, after = read_run(before_dir), read_run(after_dir)
    ds = build_dataset(before, holdout_countries=3)
    counts = write_dataset(ds, out / "data")
    train = ds.presentations
    summary: dict[str, Any] = {
        "task": "starter",
        "base_model": "fake:hash",
        "after_model": "fake:first",
        "runs": {"before": str(before_dir), "after": str(after_dir)},
        "training_variant": ds.variant,
        "training_variants": train,
        "data": {**counts, "heldout_countries": ds.split.heldout_countries},
        "training": {
            "method": "dpo",
            "steps": 3,
            "examples": len(ds.rows("pairs", "train")),
            "seconds": 1.0,
            "device": "cpu",
            "first_loss": 0.693,
            "last_loss": 0.5,
            "settings": {"lora_r": 16},
        },
        "splits": {
            TEST: compare_split(before, after, "starter", ds.split.ids(TEST), train),
            HELDOUT: compare_split(before, after, "starter", ds.split.ids(HELDOUT), train),
        },
        "transfer": {"task": "starter", "limit": 5, **compare_runs(after_dir, before_dir)},
        "control": {
            "name": "ctl",
            "metric": "loglik_per_byte (higher is better)",
            **compare_control(
                {f"p{i}": -1.0 - 0.01 * i for i in range(20)}, {f"p{i}": -1.05 - 0.01 * i for i in range(20)}
            ),
        },
        "complete": True,
    }
    _write(out, summary, {"total_s": 1.0})
    return json.loads((out / "improve.json").read_text(encoding="utf-8"))


class _Scripted(FakeBackend):
    """Answers by prompt from a table (lict: the gold number, or a wrong one), else a fixed reply."""

    def __init__(self, replies: dict[str, str]):
        super().__init__("hash")
        self.replies = replies

    def identity(self) -> dict[str, str]:
        return {"backend": "fake", "model": "scripted"}

    def generate(self, batch: Sequence[Request]) -> list[Response]:
        return [Response(text=self.replies.get(r.text, '"Answer": "-1"')) for r in batch]


def lict_run(out: Path, limit: int = 40) -> Path:
    """A lict run on the real release whose scripted model solves every original problem and, per
    culture, a known share of the culture's versions (Pakistan: all, Haiti: none, Somalia: odd ones)."""
    opts = {"lict": {"cultures": "Pakistan,Haiti,Somalia"}}

    def cfg(name: str) -> RunConfig:
        return RunConfig(
            model="fake:scripted",
            tasks=["lict"],
            limit=limit,
            data_dir=str(LICT_DATA),
            task_options=opts,
            out=str(out.parent / name),
            cache=str(out.parent / f"{name}.sqlite"),
            n_boot=100,
        )

    probe = read_run(Runner(cfg(out.name + "-probe"), backend=FakeBackend("hash")).run().run_dir)
    items = probe.items("lict")
    replies = {}
    for s in probe.iter_samples("lict"):
        it = items[s.item_id]
        culture, problem = it.subset["culture"], int(it.metadata["problem"])
        right = culture in ("original", "Pakistan") or (culture == "Somalia" and problem % 2 == 1)
        gold = int(float(it.answers[0].texts[0]))
        replies[s.prompt] = f'"Answer": "{gold if right else gold + 1}"'
    c = cfg(out.name)
    return Runner(c, backend=_Scripted(replies)).run().run_dir
