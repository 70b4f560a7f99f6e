"""Sweep designs: expansion, validation, sampling, rendering of every level, cache sharing."""

from __future__ import annotations

from pathlib import Path

import pytest

from culturelens import render
from culturelens.backends.fake import FakeBackend
from culturelens.runner import RunConfig, Runner
from culturelens.schema import Item, ItemKind, Mode, Variant
from culturelens.sweep import SweepError, expand, factor_values, swept_factors

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def ids(variants: list[Variant]) -> list[str]:
    return [v.id for v in variants]


def test_rotate_by_labels_design() -> None:
    vs = expand(["option_order=rotate labels=letters,numbers"])
    assert len(vs) == 8
    assert vs[0] == Variant()  # rotation 0 is the identity: the default presentation leads the design
    assert {v.option_order for v in vs} == {"identity", "rotate:1", "rotate:2", "rotate:3"}
    assert {v.labels for v in vs} == {"letters", "numbers"}
    assert swept_factors(vs) == ["option_order", "labels"]
    assert factor_values(vs[1], ["option_order", "labels"]) == {
        "option_order": "identity",
        "labels": "numbers",
    }


def test_levels_of_every_factor() -> None:
    assert ids(expand(["option_order=identity,reversed,perm3"])) == [
        "default",
        "option_order=reversed",
        "option_order=perm:0",
        "option_order=perm:1",
        "option_order=perm:2",
    ]
    assert len(expand(["option_order=rotate"], n_options=5)) == 5
    assert ids(expand(["scale_direction=ascending,descending"])) == ["default", "scale_direction=desc"]
    assert [v.mode for v in expand(["mode=letter,cloze,generate"])] == [
        Mode.LETTER,
        Mode.CLOZE,
        Mode.GENERATE,
    ]
    assert [v.language for v in expand(["language=local,en"])] == [None, "en"]
    assert [v.persona for v in expand(["persona=none,typical:@item"])] == [None, "typical:@item"]
    assert [v.system for v in expand(["system=none,concise"])] == [None, "concise"]
    assert [v.few_shot for v in expand(["few_shot=0,3"])] == [0, 3]
    assert [v.labels for v in expand(["labels=letters,numbers,lower,none"])] == [
        "letters",
        "numbers",
        "lower",
        "none",
    ]


@pytest.mark.parametrize(
    "vary",
    [
        ["colour=red"],
        ["labels=roman"],
        ["option_order=shuffle"],
        ["scale_direction=up"],
        ["few_shot=two"],
        ["mode=chat"],
        ["system=pirate"],
        ["persona=wizard:x"],
        ["labels"],
        ["labels=letters", "labels=numbers"],
        ["template=all,plain"],
    ],
)
def test_bad_levels_fail_cleanly(vary: list[str]) -> None:
    with pytest.raises(SweepError):
        expand(vary)


def test_base_variant_is_kept_and_overridden() -> None:
    base = Variant(persona="typical:@item")
    vs = expand(["labels=letters,numbers"], base=base)
    assert vs[0] == base and all(v.persona == "typical:@item" for v in vs)
    assert expand([], base=base) == [base]


def test_seeded_sample_keeps_base() -> None:
    full = expand(["option_order=rotate", "labels=letters,numbers,lower"])
    assert len(full) == 12
    s1 = expand(["option_order=rotate", "labels=letters,numbers,lower"], sample=5, seed=7)
    s2 = expand(["option_order=rotate", "labels=letters,numbers,lower"], sample=5, seed=7)
    s3 = expand(["option_order=rotate", "labels=letters,numbers,lower"], sample=5, seed=8)
    assert ids(s1) == ids(s2) and len(s1) == 5 and s1[0] == Variant()
    assert set(ids(s1)) <= set(ids(full)) and ids(s1) != ids(s3)
    # sampled variants stay in design order after the base
    order = {v: i for i, v in enumerate(ids(full))}
    assert [order[v] for v in ids(s1)] == sorted(order[v] for v in ids(s1))
    assert len(expand(["labels=letters,numbers"], sample=10)) == 2
    with pytest.raises(SweepError):
        expand(["labels=letters,numbers"], sample=0)


def test_template_all_renders_three_wordings_for_every_kind() -> None:
    vs = expand(["template=all"])
    assert len(vs) >= 3 and vs[0].template == "default"
    mc = Item(
        id="m", task="t", kind=ItemKind.MULTIPLE_CHOICE, question="Q?", options=["a", "b", "c"], correct=[0]
    )
    lab = Item(
        id="l",
        task="t",
        kind=ItemKind.LABEL,
        question="Is it fine?",
        options=["yes", "no", "neither"],
        correct=[1],
    )
    sa = Item(id="s", task="t", kind=ItemKind.SHORT_ANSWER, question="Name one.")
    for item in (mc, lab, sa):
        texts = {str(render.render(item, v, Mode.LETTER).model_dump()) for v in vs}
        assert len(texts) == len(vs), f"{item.kind}: wordings are not distinct"
    # a single kind: plain template names
    assert [v.template for v in expand(["template=all"], kinds=[ItemKind.MULTIPLE_CHOICE])] == [
        "default",
        "exam",
        "plain",
    ]


def test_identical_prompts_share_the_cache(tmp_path: Path) -> None:
    """Label items show their option words, not labels: letters vs numbers renders them identically."""
    variants = expand(["labels=letters,numbers"])
    cfg = RunConfig(
        model="fake:first",
        tasks=["starter"],
        variants=variants,
        data_dir=str(FIXTURES / "sweep_mixed"),
        out=str(tmp_path / "r1"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
    )
    t1 = Runner(cfg, backend=FakeBackend("first")).run().timing
    assert t1["samples"] == 12  # 6 items x 2 variants
    assert t1["unique_requests"] == 10  # the 2 label items cost nothing the second time
    assert t1["computed"] == 10
    # the same design again: everything comes from the cache
    t2 = (
        Runner(cfg.model_copy(update={"out": str(tmp_path / "r2")}), backend=FakeBackend("first"))
        .run()
        .timing
    )
    assert t2["computed"] == 0 and t2["cache_hits"] == 10
