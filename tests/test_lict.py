"""Lost in Cultural Translation (tasks/lict.py): the entity swap keeps every number, is deterministic
and follows its rules; answers are read as the paper reads them; the per-culture paired test is
McNemar's; bad input is one line naming file, row and field."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from culturelens.cli import app
from culturelens.errors import DatasetError
from culturelens.schema import Mode, Response, Score, Variant
from culturelens.tasks import lict
from culturelens.tasks.base import get_task

FIX = Path(__file__).parent / "fixtures" / "lict"


def _task(data: Path = FIX, **options: object) -> lict.LostInCulturalTranslation:
    t = get_task("lict", data_dir=str(data), **options)
    assert isinstance(t, lict.LostInCulturalTranslation)
    return t


def _entity_pool(c: lict.Culture) -> set[str]:
    pool = {*c.female, *c.male, c.sign, *c.major, *c.minor}
    for values in c.lists.values():
        pool |= set(values)
    return pool | {w[:1].upper() + w[1:] for w in pool}


# --- numbers and answers --------------------------------------------------------------------------------
def test_number_tokens_read_digits_fractions_and_number_words():
    assert lict.number_tokens("Janet's 16 eggs, three for breakfast, $2,000.50 and ¾ of a dozen") == [
        "16",
        "three",
        "2,000.50",
        "3/4",
        "dozen",
    ]
    assert lict.number_tokens("Twice as many as .5 of half") == ["twice", ".5", "half"]
    assert lict.number_tokens("Ahmed visits Karachi") == []


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ('Steps...\n"Answer": "18"', 18.0),
        ('"Answer": "1,234"', 1234.0),
        ('"Answer": 18.00', 18.0),
        ('"Answer":"7."', 7.0),
        ('"Answer": "0.75"', 0.75),
        ('End with "Answer": "<number>" ... so "Answer": "42"', 42.0),  # an echoed tag has no number
        ('"Answer": "12" and later "Answer": "13"', 12.0),  # the first tagged number
        ('"Answer": "$18"', None),  # the paper's rule reads no currency sign
        ('"Answer": "-10"', None),  # nor a minus sign
        ('"Answer": "1.2.3"', None),
        ('"answer": "5"', None),  # the tag is case-sensitive
        ("The answer is 18.", None),
        ("", None),
    ],
)
def test_paper_answer_extraction(reply: str, value: float | None):
    assert lict.paper_answer(reply) == value


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("so the answer is $1,250.50.", 1250.5),
        ("Answer: -10", -10.0),
        ("3 + 4 = 7", 7.0),
        ('"Answer": "Rs 2,000"', 2000.0),
        ("no number here", None),
    ],
)
def test_lenient_answer_extraction(reply: str, value: float | None):
    assert lict.lenient_answer(reply) == value


def test_score_is_exact_numeric_match_and_invalid_without_a_tag():
    t = _task()
    item = next(i for i in t.items() if i.id == "gsm8k-1/Pakistan")
    prompt = t.render(item, Variant(), Mode.GENERATE)
    assert (
        '"Answer": "<number>"' in prompt.messages[-1].content and item.question in prompt.messages[-1].content
    )

    def score(text: str) -> Score:
        return t.score(item, prompt, Response(text=text))

    right = score('6 x 3 = 18.\n"Answer": "18.00"')
    assert right.metrics == {"acc": 1.0, "acc_lenient": 1.0} and right.valid and right.prediction == "18"
    sign = score('"Answer": "Rs 18"')
    assert sign.metrics == {"acc": 0.0, "acc_lenient": 1.0} and not sign.valid
    wrong = score('"Answer": "1,800"')
    assert wrong.metrics["acc"] == 0.0 and wrong.valid and wrong.prediction == "1800"


# --- the swap on the fixture ------------------------------------------------------------------------------
def test_swap_keeps_every_number_and_uses_the_cultures_entities():
    t = _task()
    items = t.items()
    cultures = {c.name: c for c in t.cultures()}
    originals = {i.metadata["problem"]: i for i in items if i.subset["culture"] == "original"}
    assert sorted(originals) == [1, 2, 3, 5]
    assert t.excluded == {"template_numbers_differ": [4]}  # "buys 2 2 hats": the template changed a number
    for it in items:
        assert "{" not in it.question and "}" not in it.question
        assert lict.number_tokens(it.question) == lict.number_tokens(
            originals[it.metadata["problem"]].question
        )
        if it.subset["culture"] == "original":
            assert it.country is None
            continue
        assert it.country is not None and it.country.name == it.subset["culture"]
        pool = _entity_pool(cultures[it.subset["culture"]])
        for _, original, replacement in it.metadata["swapped"]:
            assert replacement in pool and replacement != original


def test_swap_rules_on_hand_made_problems():
    by = {i.id: i for i in _task().items()}
    pk = lict.load_cultures()["Pakistan"]
    first = by["gsm8k-1/Pakistan"]
    name = first.question.split("'")[0]
    assert name in pk.female  # "She" follows the name: a woman's name
    assert "Rs 2 each" in first.question and "How many rupees" in first.question
    second = by["gsm8k-2/Pakistan"].question
    tom = second.split(" and ")[0]
    assert second.count(tom) == 2  # one entity, one replacement everywhere
    assert "Springfield" not in second and "sandwiches" not in second
    # coins carry values in cents: the problem's money is kept whole
    coins = by["gsm8k-3/Pakistan"]
    assert "3 dimes and 25 cents" in coins.question
    assert {why for _, _, why in coins.metadata["kept"]} == {"coins with a value"}
    # dollars and pesos in one problem: an exchange rate, kept
    rate = by["gsm8k-5/Somalia"]
    assert rate.question == by["gsm8k-5/original"].question
    assert {why for _, _, why in rate.metadata["kept"]} == {"several currencies"}
    # the Solomon Islands sign is written without a space
    assert "SI$2 each" in by["gsm8k-1/Solomon Islands"].question


def test_article_follows_the_replacement():
    assert lict._article("returned by a ", "Iron Market") == "returned by an "
    assert lict._article("She buys an ", "samosa") == "She buys a "
    assert lict._article("Mia ", "Iron Market") == "Mia "  # not an article


def test_swap_is_deterministic_and_seeded():
    a = [(i.id, i.question) for i in _task().items()]
    b = [(i.id, i.question) for i in _task().items()]
    assert a == b
    others = [(i.id, i.question) for i in _task(swap_seed=1).items()]
    assert [x for x, _ in others] == [x for x, _ in a]
    assert others != a  # another seed draws other entities


def test_cultures_option_and_countries_keep_the_originals():
    t = _task(cultures="somalia,Haiti")
    assert {i.subset["culture"] for i in t.items()} == {"original", "Somalia", "Haiti"}
    kept = _task().items(countries=["Pakistan"])
    assert {i.subset["culture"] for i in kept} == {"original", "Pakistan"}
    with pytest.raises(ValueError, match="no culture 'Atlantis'"):
        _task(cultures="Atlantis").items()


# --- the paired test ----------------------------------------------------------------------------------------
def test_extra_metrics_mcnemar_per_culture_against_hand_computed_values():
    t = _task(cultures="Pakistan,Haiti")
    items = {i.id: i for i in t.items()}
    # 4 problems. Pakistan: right on the original, wrong on the culture for 3 problems (b=3, c=0);
    # Haiti: the same outcome as the original everywhere (b=c=0)
    orig = {1: 1.0, 2: 1.0, 3: 1.0, 5: 0.0}
    pk = {1: 0.0, 2: 0.0, 3: 0.0, 5: 0.0}
    scores = []
    for iid, it in items.items():
        n, c = it.metadata["problem"], it.subset["culture"]
        v = orig[n] if c in ("original", "Haiti") else pk[n]
        scores.append(
            Score(
                item_id=iid,
                task="lict",
                variant="default",
                mode=Mode.GENERATE,
                metrics={"acc": v, "acc_lenient": v},
            )
        )
    extra = t.extra_metrics(items, scores)
    row = extra["paired"]["acc"]["Pakistan"]
    assert (row["n"], row["original_only"], row["culture_only"]) == (4, 3, 0)
    assert row["original"] == 0.75 and row["culture"] == 0.0 and row["diff"] == -0.75
    assert math.isclose(row["p"], 2 * 0.5**3)  # exact two-sided binomial: 2 * P(X <= 0 | 3, 1/2)
    same = extra["paired"]["acc"]["Haiti"]
    assert same["p"] == 1.0 and same["diff"] == 0.0
    assert math.isclose(row["p_holm"], min(1.0, 2 * row["p"])) and same["p_holm"] == 1.0
    assert extra["excluded"] == {"template_numbers_differ": [4]}
    assert set(extra["swaps"]) == {"Pakistan", "Haiti"} and extra["swaps"]["Pakistan"]["swapped"] > 0


# --- bad input ---------------------------------------------------------------------------------------------
def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "lict"
    shutil.copytree(FIX, dst)
    return dst


def test_bad_mapping_is_one_line_with_file_row_field(tmp_path: Path):
    data = _copy(tmp_path)
    path = data / "mapping_rules" / "Batch_1.json"
    maps = json.loads(path.read_text())
    maps[1]["mappings"].pop()
    path.write_text(json.dumps(maps))
    with pytest.raises(DatasetError) as exc:
        _task(data).items()
    assert "Batch_1.json" in str(exc.value) and "row 2" in str(exc.value) and "mappings" in str(exc.value)
    res = CliRunner().invoke(app, ["run", "--task", "lict", "--data-dir", str(data), "--quiet"])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Batch_1.json" in lines[0] and "row 2" in lines[0], res.output


def test_bad_gold_and_bad_entity_file(tmp_path: Path):
    data = _copy(tmp_path)
    gold = data / "gsm8k" / "grade_school_math" / "data" / "test.jsonl"
    rows = gold.read_text().splitlines()
    rows[2] = json.dumps({"question": "q", "answer": "#### about 5"})
    gold.write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=r"test\.jsonl.*row 3.*answer"):
        _task(data).items()
    spec = json.loads(lict.ENTITIES_FILE.read_text(encoding="utf-8"))
    spec["cultures"]["Pakistan"]["drinks"].append("7UP")
    bad = tmp_path / "entities.json"
    bad.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(DatasetError, match=r"row cultures\.Pakistan, field 'drinks\[6\]'.*holds a number"):
        lict.load_cultures(bad)
    spec["cultures"]["Pakistan"]["drinks"].pop()
    spec["cultures"]["Pakistan"]["currency"]["minor_per_major"] = 1000
    bad.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(DatasetError, match=r"currency\.minor_per_major"):
        lict.load_cultures(bad)


def test_shipped_entity_sets_are_valid():
    cultures = lict.load_cultures()
    assert sorted(cultures) == ["Haiti", "Moldova", "Pakistan", "Solomon Islands", "Somalia", "Suriname"]
    regions = set()
    from culturelens.countries import normalize_country

    for c in cultures.values():
        regions.add(normalize_country(c.name).region)
        assert len(c.female) >= 10 and len(c.male) >= 10 and c.lists["food"] and c.lists["city"]
    assert len(regions) >= 4  # several world regions


# --- the real release -----------------------------------------------------------------------------------------
@pytest.fixture
def real_items(shared_datasets: Path) -> tuple[lict.LostInCulturalTranslation, list]:
    t = _task(shared_datasets / "lost_in_cultural_translation")
    return t, t.items()


def test_real_release_every_swap_keeps_the_numbers(real_items):
    t, items = real_items
    cultures = {c.name: c for c in t.cultures()}
    originals = {i.metadata["problem"]: i for i in items if i.subset["culture"] == "original"}
    assert len(originals) == 1100 - 6 and len(items) == len(originals) * 7
    assert t.excluded == {"template_numbers_differ": [557, 889, 890, 902, 925, 927]}
    swapped = 0
    for it in items:
        orig = originals[it.metadata["problem"]]
        assert lict.number_tokens(it.question) == lict.number_tokens(orig.question), it.id
        assert not re.search(r"\{[^{}]*\}", it.question), it.id
        if it.subset["culture"] != "original":
            pool = _entity_pool(cultures[it.subset["culture"]])
            for _, _, replacement in it.metadata["swapped"]:
                assert replacement in pool, (it.id, replacement)
            swapped += len(it.metadata["swapped"])
    assert swapped > 6 * 1500  # most problems change their names, money and food
    # gold answers are GSM8K's: problem 1 (Janet's ducks) is 18
    assert originals[1].metadata["gold"] == 18 and "Janet" in originals[1].question


def test_real_release_swap_is_deterministic(real_items, shared_datasets: Path):
    _, items = real_items
    again = _task(shared_datasets / "lost_in_cultural_translation").items()
    assert [(i.id, i.question) for i in items] == [(i.id, i.question) for i in again]


@pytest.mark.slow
def test_real_model_few_items(shared_datasets: Path, tmp_path: Path):
    pytest.importorskip("llama_cpp")
    import culturelens as cl

    done = cl.run(
        model="default",
        tasks=["lict"],
        limit=2,  # one problem: the original and its Pakistan copy
        data_dir=str(shared_datasets / "lost_in_cultural_translation"),
        task_options={"lict": {"cultures": "Pakistan", "max_tokens": 32}},
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        report=False,
    )
    entry = done.results["tasks"]["lict"]
    assert entry["n"] == 2 and entry["modes"] == ["generate"]
    assert set(entry["by"]["subset:culture"]) == {"original", "Pakistan"}
    assert set(entry["by"]["country"]) == {"Pakistan"}
    row = entry["extra"]["paired"]["acc"]["Pakistan"]
    assert row["n"] == 1 and 0.0 <= row["p"] <= 1.0
    samples = list(cl.read_run(done.run_dir).iter_samples("lict"))
    assert len(samples) == 2 and all(s.response.get("text") is not None for s in samples)
