"""Aggregates: interval methods per entry, partial pooling beside raw country scores, ranks, and
the baselines every headline is read against (checked against hand-computed values)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from culturelens.aggregate import aggregate_task, baselines, baselines_for, country_ranks, summarize
from culturelens.countries import normalize_country
from culturelens.schema import Item, ItemKind, Score
from culturelens.stats import vs_baseline, wilson_interval


def _item(
    i: int | str,
    country: str | None = None,
    options: Sequence[str] = ("a", "b", "c", "d"),
    correct: Sequence[int] = (0,),
    kind: ItemKind = ItemKind.MULTIPLE_CHOICE,
    group: str | None = None,
    **kw: object,
) -> Item:
    return Item(
        id=str(i),
        task="t",
        kind=kind,
        question="q",
        options=list(options),
        correct=list(correct),
        country=normalize_country(country) if country else None,
        group=group,
        **kw,  # type: ignore[arg-type]
    )


def _unit(item: Item, **metrics: float) -> tuple[Item, Score]:
    return item, Score(item_id=item.id, task="t", variant="default", mode="letter", metrics=metrics)


# --- intervals in the entries ---------------------------------------------------------------------
def test_summary_entries_carry_their_interval_method() -> None:
    units = [_unit(_item(i), acc=float(i < 2), p_correct=0.2 + 0.1 * i) for i in range(5)]
    m = summarize(units)["metrics"]
    acc = m["acc"]
    assert acc["mean"] == 0.4 and acc["n"] == 5 and acc["clusters"] == 5
    assert acc["ci_method"] == "wilson" and acc["n_eff"] == 5.0
    assert acc["ci"] == pytest.approx(list(wilson_interval(2, 5)))
    assert m["p_correct"]["ci_method"] == "bootstrap-t-wilson" and "n_eff" not in m["p_correct"]
    # 0/6 is not [0, 0] any more
    zero = summarize([_unit(_item(i), acc=0.0) for i in range(6)])["metrics"]["acc"]
    assert zero["ci"][0] == 0.0 and zero["ci"][1] == pytest.approx(0.3903, abs=1e-4)
    # rows sharing a group are one cluster
    grouped = [_unit(_item(i, group=f"g{i // 2}"), acc=float(i % 2)) for i in range(6)]
    g = summarize(grouped)["metrics"]["acc"]
    assert g["ci_method"] == "wilson-kish" and g["clusters"] == 3


# --- partial pooling and ranks --------------------------------------------------------------------
COUNTRIES = {  # country: (right, asked); Europe has 3 countries, Asia 2 (pooled toward the global mean)
    "France": (1, 6),
    "Germany": (4, 6),
    "Italy": (9, 10),
    "Japan": (0, 6),
    "India": (30, 40),
}


def _country_units() -> list[tuple[Item, Score]]:
    units = []
    for name, (right, asked) in COUNTRIES.items():
        units += [_unit(_item(f"{name}{i}", name), acc=float(i < right)) for i in range(asked)]
    return units


def test_shrunk_estimates_sit_beside_the_raw_ones() -> None:
    res = aggregate_task(_country_units())
    by = res["by"]["country"]
    for name, (right, asked) in COUNTRIES.items():
        m = by[name]["metrics"]["acc"]
        assert m["mean"] == pytest.approx(right / asked)  # raw estimate unchanged
        assert m["ci"] == pytest.approx(list(wilson_interval(right, asked)))
        lo, hi = m["shrunk_ci"]
        assert 0.0 < lo < m["shrunk_mean"] < hi < 1.0
        info = m["shrinkage"]
        assert info["toward"] == ("region" if by[name]["region"] == "Europe" else "global")
        a, b = info["posterior"]
        assert m["shrunk_mean"] == pytest.approx(a / (a + b))
        # the estimate moves toward its prior mean, never past it
        raw, prior = right / asked, info["prior_mean"]
        assert min(raw, prior) <= m["shrunk_mean"] <= max(raw, prior)
    # Europe's prior is its own pooled rate, (1 + 4 + 9 + 1/2) / (22 + 1)
    assert by["France"]["metrics"]["acc"]["shrinkage"]["prior_mean"] == pytest.approx(14.5 / 23)
    assert by["Japan"]["metrics"]["acc"]["shrinkage"]["prior_mean"] == pytest.approx(44.5 / 69)
    # 0/6 is pulled up more than India's 30/40 moves
    jp, ind = by["Japan"]["metrics"]["acc"], by["India"]["metrics"]["acc"]
    assert jp["shrunk_mean"] - 0.0 > abs(ind["shrunk_mean"] - 0.75)
    # regions are not pooled, nor are metrics that are not proportions
    assert "shrunk_mean" not in res["by"]["region"]["Europe"]["metrics"]["acc"]


def test_no_pooling_for_fractional_metrics_or_few_countries() -> None:
    units = [
        _unit(_item(f"{c}{i}", c), score=0.1 * i) for c in ("France", "Japan", "Kenya") for i in range(4)
    ]
    by = aggregate_task(units)["by"]["country"]
    assert all("shrunk_mean" not in e["metrics"]["score"] for e in by.values())
    two = aggregate_task([u for u in _country_units() if u[0].country.name in ("France", "Japan")])
    assert all("shrunk_mean" not in e["metrics"]["acc"] for e in two["by"]["country"].values())
    assert "country_ranks" not in two


def test_country_ranks() -> None:
    res = aggregate_task(_country_units())
    ranks = res["country_ranks"]
    assert ranks["metric"] == "acc" and ranks["top_k"] == 1  # 5 countries: top 1
    c = ranks["countries"]
    assert set(c) == set(COUNTRIES)
    assert sum(r["p_top"] for r in c.values()) == pytest.approx(1.0)
    assert sum(r["p_bottom"] for r in c.values()) == pytest.approx(1.0)
    assert sum(r["rank_mean"] for r in c.values()) == pytest.approx(15.0)
    # Japan (0/6) is most likely last, Italy (9/10) most likely first
    assert max(c, key=lambda k: c[k]["p_bottom"]) == "Japan"
    assert max(c, key=lambda k: c[k]["p_top"]) == "Italy"
    for r in c.values():
        assert 1 <= r["rank_ci"][0] <= r["rank_mean"] <= r["rank_ci"][1] <= 5
    assert country_ranks(res["by"]["country"], "acc", top_k=2)["top_k"] == 2
    assert country_ranks(res["by"]["country"], "missing") is None


# --- baselines ------------------------------------------------------------------------------------
def test_majority_position_matches_the_issue_example() -> None:
    """Gold displayed first ("A") on 658 of 1,227 questions: majority_position = 658/1227."""
    rows = []
    for i in range(1227):
        gold_at = 0 if i < 658 else 1 + (i - 658) % 3  # the other 569 spread over B, C, D
        order = [1, 2, 3]
        order.insert(gold_at, 0)  # displayed position -> original index; the gold is original 0
        rows.append((_item(i), order))
    b = baselines(rows)
    mp = b["majority_position"]
    assert (mp["count"], mp["n"], mp["label"], mp["position"]) == (658, 1227, "A", 0)
    assert mp["value"] == pytest.approx(0.536, abs=5e-4)
    assert b["chance"] == {"value": 0.25, "n": 1227, "applies_to": ["acc", "acc_norm", "p_correct", "mc2"]}
    assert "majority_label" not in b  # multiple choice, not a label task


def test_chance_with_several_correct_options() -> None:
    rows = [
        (_item(0), []),  # 1 of 4, identity order (empty order = not shuffled)
        (_item(1, options="abc", correct=[0, 2]), [2, 1, 0]),  # 2 of 3 (MC2-style one-of-many)
        (_item(2, options="ab", correct=[1]), [0, 1]),  # 1 of 2
    ]
    b = baselines(rows)
    assert b["chance"]["value"] == pytest.approx((1 / 4 + 2 / 3 + 1 / 2) / 3)
    # always "A": item 0 right (original 0), item 1 right (original 2 is correct), item 2 wrong
    # always "B": item 0 wrong, item 1 wrong (original 1), item 2 right -> A wins with 2/3
    assert b["majority_position"]["label"] == "A" and b["majority_position"]["count"] == 2
    # "C" exists only in items with 3+ options; elsewhere it counts as wrong
    one = baselines(
        [(_item(0, options="ab", correct=[1]), [0, 1]), (_item(1, options="abc", correct=[2]), [])]
    )
    assert one["majority_position"]["label"] == "B" and one["majority_position"]["value"] == 0.5


def test_majority_label_for_label_tasks() -> None:
    opts = ("yes", "no", "neither")
    golds = [0, 1, 1, 2, 1, 0, 1]  # "no" 4 times of 7
    rows = [
        (_item(i, options=opts, correct=[g], kind=ItemKind.LABEL), [0, 1, 2]) for i, g in enumerate(golds)
    ]
    b = baselines(rows)
    ml = b["majority_label"]
    assert (ml["label"], ml["count"], ml["n"]) == ("no", 4, 7) and ml["value"] == pytest.approx(4 / 7)
    assert b["chance"]["value"] == pytest.approx(1 / 3)
    assert b["majority_position"]["label"] == "B" and b["majority_position"]["count"] == 4
    # labels are texts: a reversed display does not change which label is the majority
    rev = baselines([(it, [2, 1, 0]) for it, _ in rows])
    assert rev["majority_label"]["label"] == "no" and rev["majority_position"]["label"] == "B"


def test_baselines_are_left_out_where_undefined() -> None:
    survey = _item(0, options=("1", "2", "3"), correct=[], kind=ItemKind.SURVEY, ordered=True)
    short = _item(1, options=(), correct=[], kind=ItemKind.SHORT_ANSWER)
    assert baselines([(survey, [0, 1, 2])]) == {}
    assert baselines([(short, [])]) == {}
    assert baselines([]) == {}
    # one row without gold makes the whole set's baselines undefined (they must cover the headline)
    assert baselines([(_item(2), []), (survey, [])]) == {}


def test_baselines_over_all_of_a_group() -> None:
    """CulturalBench-Hard style: 4 true/false rows per question, right only if all 4 are."""
    rows = []
    for q in range(3):
        for r in range(4):
            gold = 0 if r == q else 1  # one "True" candidate per question
            it = _item(
                f"{q}:{r}", options=("True", "False"), correct=[gold], kind=ItemKind.LABEL, group=f"q{q}"
            )
            rows.append((it, [0, 1]))
    b = baselines(rows, all_of_group=True)
    assert b["chance"]["n"] == 3 and b["chance"]["value"] == pytest.approx(1 / 16)
    assert b["majority_label"]["value"] == 0.0  # always "False" misses every question's true row
    assert b["majority_position"]["count"] == 0
    flat = baselines(rows)
    assert flat["chance"]["n"] == 12 and flat["majority_label"]["label"] == "False"
    assert flat["majority_label"]["value"] == pytest.approx(9 / 12)


def test_chance_for_mc1() -> None:
    """Kalahi: MC1 = the best answer scored above every irrelevant one: by chance 1 / (1 + |irr|)."""
    a = _item(
        0, options="abcd", correct=[0, 1], metadata={"best": 0, "relevant": [0, 1], "irrelevant": [2, 3]}
    )
    b = _item(
        1, options="abcde", correct=[0], metadata={"best": 0, "relevant": [0], "irrelevant": [1, 2, 3, 4]}
    )
    base = baselines([(a, []), (b, [])])
    assert base["chance_mc1"]["value"] == pytest.approx((1 / 3 + 1 / 5) / 2)
    assert base["chance"]["value"] == pytest.approx((2 / 4 + 1 / 5) / 2)  # MC2 / acc
    assert set(baselines_for(base, "mc1")) == {"chance_mc1"}
    assert set(baselines_for(base, "mc2")) == {"chance"}
    assert set(baselines_for(base, "acc")) == {"chance", "majority_position"}
    assert baselines_for(base, "orientation") == {}


def test_headline_against_baselines() -> None:
    """What a console / report headline does with the two pieces."""
    rows = [(_item(i), [0, 1, 2, 3]) for i in range(40)]
    base = baselines(rows)  # chance 0.25; gold always first: majority position 1.0
    units = [_unit(it, acc=float(i % 2 == 0)) for i, (it, _) in enumerate(rows)]
    m = summarize(units)["metrics"]["acc"]
    verdict = {k: vs_baseline(m["mean"], *m["ci"], b["value"]) for k, b in baselines_for(base, "acc").items()}
    assert verdict == {"chance": "above", "majority_position": "below"}
