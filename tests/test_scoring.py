from __future__ import annotations

import math

from culturelens.countries import normalize_country
from culturelens.render import render
from culturelens.schema import Item, ItemKind, Mode, Response, Variant
from culturelens.scoring import parse_choice, score


def mc() -> Item:
    return Item(
        id="q",
        task="t",
        kind=ItemKind.MULTIPLE_CHOICE,
        question="Q?",
        options=["w", "x", "y", "z"],
        correct=[2],
        country=normalize_country("Peru"),
    )


def test_letter_probs_are_in_original_order():
    p = render(mc(), Variant(option_order="reversed"), Mode.LETTER)  # displayed z y x w
    lp = [math.log(0.1), math.log(0.6), math.log(0.2), math.log(0.1)]  # displayed B = y
    s = score(mc(), p, Response(logprobs=lp))
    assert s.prediction == 2 and s.metrics["acc"] == 1.0
    assert abs(s.probs[2] - 0.6) < 1e-9 and abs(sum(s.probs) - 1) < 1e-9
    assert abs(s.metrics["p_correct"] - 0.6) < 1e-9


def test_cloze_raw_and_length_normalised_can_disagree():
    item = Item(
        id="q",
        task="t",
        kind=ItemKind.MULTIPLE_CHOICE,
        question="Q?",
        options=["a", "a much longer option"],
        correct=[1],
    )
    p = render(item, Variant(), Mode.CLOZE)
    s = score(item, p, Response(logprobs=[-2.0, -6.0], n_tokens=[1, 4]))
    assert s.metrics["acc"] == 0.0  # raw prefers the short option
    assert s.metrics["acc_norm"] == 1.0  # per byte prefers the long one


def test_unparseable_generation_is_invalid_not_dropped():
    p = render(mc(), Variant(), Mode.GENERATE)
    s = score(mc(), p, Response(text="I am not sure about this one."))
    assert not s.valid and s.metrics == {"acc": 0.0, "invalid": 1.0}


def test_parse_choice_forms():
    p = render(mc(), Variant(), Mode.GENERATE)
    cases = {"C": 2, "(c)": 2, "C. y": 2, "The answer is B": 1, "y": 2, "Answer: D": 3, "": None, "E": None}
    for text, want in cases.items():
        assert parse_choice(text, p) == want, text


def test_label_words_parse():
    item = Item(
        id="n", task="t", kind=ItemKind.LABEL, question="S?", options=["Yes", "No", "Neither"], correct=[1]
    )
    p = render(item, Variant(), Mode.GENERATE)
    assert parse_choice("No, that is rude.", p) == 1
    assert parse_choice("The answer is 1) Yes.", p) == 0
    assert parse_choice("Perhaps", p) is None
