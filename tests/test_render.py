from __future__ import annotations

import pytest

from culturelens.countries import normalize_country
from culturelens.render import RenderError, label_set, option_order, render
from culturelens.schema import Item, ItemKind, Mode, Variant


def mc(**kw) -> Item:
    base = dict(
        id="q1",
        task="t",
        kind=ItemKind.MULTIPLE_CHOICE,
        question="Which?",
        options=["w", "x", "y", "z"],
        correct=[2],
        country=normalize_country("Japan"),
    )
    base.update(kw)
    return Item(**base)


def test_option_orders():
    it = mc()
    assert option_order(it, Variant()) == [0, 1, 2, 3]
    assert option_order(it, Variant(option_order="reversed")) == [3, 2, 1, 0]
    assert option_order(it, Variant(option_order="rotate:1")) == [1, 2, 3, 0]
    p1 = option_order(it, Variant(option_order="perm:7"))
    assert sorted(p1) == [0, 1, 2, 3] and p1 == option_order(it, Variant(option_order="perm:7"))
    with pytest.raises(RenderError):
        option_order(it, Variant(option_order="sideways"))


def test_scale_direction_reverses_ordered_items_only():
    survey = mc(kind=ItemKind.SURVEY, ordered=True, correct=[])
    assert option_order(survey, Variant(scale_direction="desc")) == [3, 2, 1, 0]
    assert option_order(mc(), Variant(scale_direction="desc")) == [0, 1, 2, 3]


def test_label_styles():
    assert label_set("letters", 3) == ["A", "B", "C"]
    assert label_set("numbers", 3) == ["1", "2", "3"]
    assert label_set("lower", 2) == ["a", "b"]
    assert label_set("none", 4) == []


def test_render_letter_maps_displayed_to_original():
    p = render(mc(), Variant(option_order="rotate:2", labels="numbers"), Mode.LETTER)
    assert p.order == [2, 3, 0, 1]
    assert p.labels == ["1", "2", "3", "4"]
    user = p.messages[-1].content
    assert "1. y" in user and "4. x" in user
    assert p.mode is Mode.LETTER and p.assistant_prefix


def test_unlabelled_letter_falls_back_to_cloze():
    p = render(mc(), Variant(labels="none"), Mode.LETTER)
    assert p.mode is Mode.CLOZE and p.continuations == ["w", "x", "y", "z"]


def test_persona_and_system():
    p = render(mc(), Variant(persona="typical:@item", system="assistant"), Mode.LETTER)
    assert p.messages[0].role == "system"
    assert "Japan" in p.messages[0].content and "helpful" in p.messages[0].content
    with pytest.raises(RenderError):
        render(mc(), Variant(persona="nosuch:X"), Mode.LETTER)


def test_language_variant_needs_translation():
    it = mc(language="ja", translations={"en": {"question": "Which one?", "options": ["a", "b", "c", "d"]}})
    p = render(it, Variant(language="en"), Mode.LETTER)
    assert "Which one?" in p.messages[-1].content
    with pytest.raises(RenderError):
        render(it, Variant(language="fr"), Mode.LETTER)


def test_few_shot_adds_turns():
    shot = mc(id="s1", question="Shot?", correct=[1])
    p = render(mc(), Variant(few_shot=1), Mode.LETTER, shots=[shot])
    roles = [m.role for m in p.messages]
    assert roles == ["user", "assistant", "user"]
    assert p.messages[1].content.endswith("B")


def test_variant_id_is_stable_and_short():
    assert Variant().id == "default"
    assert Variant(option_order="reversed", labels="numbers").id == "option_order=reversed,labels=numbers"
