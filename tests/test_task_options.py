"""Task options are declared (a typed ``Task.Options`` model), checked and typed; unknown ones are errors."""

from __future__ import annotations

import inspect
import re
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import SHARED, mini_starter
from typer.testing import CliRunner

import culturelens.tasks.base as base
from culturelens.cli import app
from culturelens.schema import Variant
from culturelens.tasks.base import (
    SurveyTask,
    Task,
    TaskOptionError,
    TaskOptions,
    UnknownTaskOption,
    coerce_option,
    get_task,
    task_names,
)

FIX = Path(__file__).parent / "fixtures"
SHIPPED_VSM = Path(base.__file__).parent / "data" / "vsm2013_items.json"
HOFSTEDE = SHARED / "hofstede" / "6-dimensions-for-website-2015-08-16.csv"


def _data(task: str, tmp_path: Path) -> Path | None:
    """A small valid input for each task (None: the task's shipped data)."""
    return {
        "starter": lambda: mini_starter(tmp_path / "starter").parent,
        "blend": lambda: FIX / "blend",
        "blend_mc": lambda: FIX / "blend",
        "normad": lambda: FIX / "normad",
        "culturalbench_easy": lambda: FIX / "culturalbench",
        "culturalbench_hard": lambda: FIX / "culturalbench",
        "global_mmlu": lambda: FIX / "global_mmlu",
        "global_mmlu_lite": lambda: FIX / "global_mmlu",
        "cdeval": lambda: FIX / "cdeval",
        "kalahi": lambda: FIX / "kalahi",
        "opinions": lambda: FIX / "opinions" / "rnr",
        "vsm": lambda: None,
        "wvb": lambda: FIX / "wvb",
        "click": lambda: FIX / "click",
        "care": lambda: FIX / "care",
        "civics": lambda: FIX / "civics",
        "civics_scale": lambda: FIX / "civics",
        "calmqa": lambda: FIX / "calmqa",
        "lict": lambda: FIX / "lict",
        "nationality": lambda: None,
    }[task]()


#: a valid value of every declared option, per task ("*": the options every task has)
VALUES: dict[str, dict[str, Any]] = {
    "*": {"limit_mode": "first", "limit_seed": "3"},
    "blend": {"prompts": "inst-4", "max_tokens": "16", "british_prompts": "true"},
    "normad": {"levels": "none,rot"},
    "global_mmlu": {"lang": "fr"},
    "care": {"judge_templates": "paper,brief", "max_tokens": "32"},
    "civics": {"judge_templates": "brief", "max_tokens": "32", "versions": "original"},
    "civics_scale": {"versions": "translated"},
    "calmqa": {"judge_templates": "brief", "max_tokens": "32"},
    "global_mmlu_lite": {"lang": "en,fr"},
    "cdeval": {"templates": "survey"},
    "kalahi": {"prompts": "full"},
    "opinions": {"source": "stability", "heldout": "false", "protocol": "distribution"},
    "vsm": {"items_file": str(SHIPPED_VSM), "hofstede_file": str(HOFSTEDE), "countries": "Japan,Kenya"},
    "wvb": {
        "wvs_file": str(FIX / "wvb" / "WVS_Cross-National_Wave_7_fixture.csv"),
        "demographics": "Q260,Q262",
    },
    "lict": {"cultures": "Pakistan,Somalia", "swap_seed": "2", "max_tokens": "64", "entities_file": ""},
    "nationality": {
        "judge_templates": "brief",
        "max_tokens": "32",
        "nationalities": "Japan,Kenya",
        "kinds": "recipe,name",
        "wordings": "2",
    },
}


class Recording:
    """Which options a task reads from its typed ``Options`` (an undeclared one is an AttributeError)."""

    reads: ClassVar[set[str]] = set()

    @staticmethod
    def wrap(opts: TaskOptions) -> TaskOptions:
        """The same options, as an instance that records every field the task reads."""

        class Recorded(type(opts)):  # type: ignore[misc, valid-type]
            def __getattribute__(self, key: str) -> Any:
                if not key.startswith(("_", "model_")):
                    Recording.reads.add(key)
                return super().__getattribute__(key)

        return Recorded.model_construct(**dict(opts))


def _exercise(task: Task) -> None:
    """Everything that reads options: loading (with a limit), rendering, and the survey hooks."""
    items = task.items(limit=3)
    assert items
    task.render(items[0], Variant(), task.default_mode)
    if isinstance(task, SurveyTask):
        task.hofstede_path()


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> type[Recording]:
    original = Task.check_options.__func__  # type: ignore[attr-defined]

    def wrapped(cls: type[Task], options: dict[str, Any]) -> TaskOptions:
        return Recording.wrap(original(cls, options))

    monkeypatch.setattr(Task, "check_options", classmethod(wrapped))
    Recording.reads = set()
    return Recording


def test_unknown_option_is_a_one_line_error_with_a_suggestion():
    with pytest.raises(UnknownTaskOption) as exc:
        get_task("normad", levls="none")
    assert str(exc.value) == (
        "task 'normad' has no option 'levls' (did you mean levels?); options: levels, limit_mode, limit_seed"
    )
    assert isinstance(exc.value, KeyError) and isinstance(exc.value, ValueError)
    with pytest.raises(
        UnknownTaskOption, match=r"task 'starter' has no option 'note'; options: limit_mode, limit_seed"
    ):
        get_task("starter", note="x")


def test_values_are_coerced_to_the_declared_type():
    blend = get_task("blend", prompts="inst-4, pers-3", max_tokens="32")
    assert blend.prompt_ids == ("inst-4", "pers-3") and blend.max_tokens == 32
    assert get_task("blend", max_tokens=24.0).max_tokens == 24
    assert get_task("opinions", heldout="false").options.heldout is False
    assert get_task("opinions", heldout=0).options.heldout is False
    assert get_task("global_mmlu", lang=["en", "fr"]).langs == ["en", "fr"]
    assert get_task("kalahi", prompts="full").options.prompts == "full"
    assert get_task("vsm", items_file=2024).options.items_file == "2024"  # `--opt x=2024` arrives as an int
    assert get_task("normad", limit_seed="7").options.limit_seed == 7
    assert get_task("normad", levels=None).levels == get_task("normad").levels  # None: unset


@pytest.mark.parametrize(
    ("task", "options", "message"),
    [
        ("blend", {"max_tokens": "many"}, "task 'blend' option max_tokens='many': expected an integer"),
        ("blend", {"max_tokens": True}, "expected an integer"),
        ("blend", {"max_tokens": 2.5}, "expected an integer"),
        ("blend", {"prompts": {"a": 1}}, "task 'blend' option prompts={'a': 1}: expected a list"),
        ("opinions", {"heldout": "maybe"}, "task 'opinions' option heldout='maybe': expected true or false"),
        ("opinions", {"heldout": 2}, "expected true or false"),
        ("kalahi", {"prompts": ["full"]}, "task 'kalahi' option prompts=['full']: expected a string"),
        ("normad", {"limit_seed": "x"}, "expected an integer"),
        ("normad", {"limit_mode": "random"}, "limit_mode='random': choose from stratified, first"),
    ],
)
def test_bad_values_are_one_line_errors(task: str, options: dict[str, Any], message: str):
    with pytest.raises(TaskOptionError) as exc:
        get_task(task, **options)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_coerce_option_lists_and_floats():
    assert coerce_option("t", "x", list, "a, b,,c ") == ["a", "b", "c"]
    assert coerce_option("t", "x", list, ("a", 1)) == ["a", "1"]
    assert coerce_option("t", "x", float, "0.5") == 0.5 and coerce_option("t", "x", float, 2) == 2.0
    with pytest.raises(TaskOptionError):
        coerce_option("t", "x", float, "half")
    with pytest.raises(TaskOptionError):
        coerce_option("t", "x", list, [["nested"]])


@pytest.mark.parametrize("name", task_names())
def test_default_construction_and_declared_help(name: str):
    task = get_task(name)  # no data needed to construct
    schema = type(task).option_schema()
    assert base.task_class(name).option_schema() == schema
    assert {"limit_mode", "limit_seed"} <= set(schema)
    for opt, (kind, help_text) in schema.items():
        assert kind in (str, int, float, bool, list), f"{name}.{opt}: unsupported type {kind!r}"
        assert help_text.strip() and "\n" not in help_text, f"{name}.{opt}: needs a one-line help"


#: tasks owned elsewhere that do not honour an option yet (strict: fails once they do, to be removed)
KNOWN: dict[str, str] = {}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN[n], strict=True)) if n in KNOWN else n
        for n in task_names()
    ],
)
def test_every_option_a_task_reads_is_declared(name: str, recording: type[Recording], tmp_path: Path):
    """Run each task on its fixture with each declared option set (and once with none): every
    option it looks up is declared (reading another is an AttributeError on the typed model), and
    every declared option is looked up when set."""
    schema = get_task(name).option_schema()
    values = {**VALUES["*"], **VALUES.get(name, {})}
    assert set(schema) <= set(values), f"{name}: give a test value for {sorted(set(schema) - set(values))}"
    if name == "vsm" and not HOFSTEDE.exists():
        pytest.skip("../shared/datasets not present")
    data = _data(name, tmp_path)
    for opt in [None, *schema]:
        recording.reads = set()
        task = get_task(name, data_dir=data, **({opt: values[opt]} if opt else {}))
        _exercise(task)
        undeclared = recording.reads - set(schema)
        assert not undeclared, f"{name} reads undeclared options {sorted(undeclared)}"
        if opt is not None:
            assert opt in recording.reads, f"{name}: declared option {opt!r} is never read"


_READ = re.compile(r"""\bself\.options\.([A-Za-z_]\w*)""")


@pytest.mark.parametrize("name", task_names())
def test_source_reads_only_declared_options(name: str):
    """A static guard for reads the fixtures do not reach (``self.options.x``)."""
    cls = type(get_task(name))
    source = "".join(
        inspect.getsource(k) for k in cls.__mro__ if k.__module__.startswith("culturelens.tasks")
    )
    read = set(_READ.findall(source))
    assert read <= set(cls.option_schema()), f"{name}: undeclared {sorted(read - set(cls.option_schema()))}"


def test_unknown_task_name():
    with pytest.raises(KeyError, match=r"unknown task 'normadd' \(did you mean normad\?\)"):
        base.task_class("normadd")


def test_cli_rejects_an_unknown_option_with_exit_2():
    res = CliRunner().invoke(app, ["run", "--task", "normad", "--opt", "levls=none", "--quiet"])
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines == [
        "error: task 'normad' has no option 'levls' (did you mean levels?); options: levels, limit_mode, limit_seed"
    ]


def test_cli_typed_value_error(tmp_path: Path):
    res = CliRunner().invoke(app, ["run", "--task", "blend", "--opt", "max_tokens=lots", "--quiet"])
    assert res.exit_code == 2 and "option max_tokens='lots': expected an integer" in res.stderr


# --- --limit: limit_mode / limit_seed --------------------------------------------------------------
def _synthetic() -> list[Any]:
    """Groups of 1-3 items: 8 from Japan, 3 from Kenya, 1 from Peru; levels vary inside a group."""
    from culturelens.countries import normalize_country
    from culturelens.schema import Item, ItemKind

    items = []
    for country, n in (("Japan", 8), ("Kenya", 3), ("Peru", 1)):
        for q in range(n):
            for level in range(1 + q % 3):
                items.append(
                    Item(
                        id=f"{country}-{q}-{level}",
                        task="t",
                        kind=ItemKind.LABEL,
                        question="q",
                        options=["Yes", "No"],
                        correct=[0],
                        country=normalize_country(country),
                        topic="food" if q % 2 else "sport",
                        group=f"{country}-{q}",
                        subset={"level": str(level)},
                    )
                )
    return items


def test_stratified_limit_balances_countries_and_keeps_groups_whole():
    items = _synthetic()
    size = Counter(it.group for it in items)
    previous: set[str] = set()
    for n in range(1, len(items) + 1):
        kept = base.limit_items(items, n)
        groups = {it.group for it in kept}
        assert all(sum(1 for it in kept if it.group == g) == size[g] for g in groups)  # whole groups
        assert len(kept) <= n or len(groups) == 1  # at most n items (at least one group)
        assert [it for it in items if it.group in groups] == kept  # dataset order
        assert previous <= groups  # a larger limit only adds
        previous = groups
        per = Counter(g.split("-")[0] for g in groups)
        live = [c for c, total in (("Japan", 8), ("Kenya", 3), ("Peru", 1)) if per[c] < total]
        # a country still holding groups never trails another by more than one group
        assert all(per[c] >= max(per.values()) - 1 for c in live)
    assert base.limit_items(items, 4, seed=0) == base.limit_items(items, 4, seed=0)
    assert {it.country.name for it in base.limit_items(items, 3, unit="groups")} == {"Japan", "Kenya", "Peru"}


def test_first_mode_takes_whole_groups_in_file_order():
    items = _synthetic()
    kept = base.limit_items(items, 4, mode="first")
    assert [it.id for it in kept] == [
        "Japan-0-0",
        "Japan-1-0",
        "Japan-1-1",
    ]  # the next group (3) does not fit
    assert base.limit_items(items, 4, mode="first", by_group=False) == items[:4]
    assert len(base.limit_items(items, 2, unit="groups")) == len(
        base.limit_items(items, 2, unit="groups", seed=0)
    )
    with pytest.raises(TaskOptionError, match="limit mode 'random'"):
        base.limit_items(items, 2, mode="random")


def test_stratified_order_is_seeded_and_ignores_keys_that_vary_inside_a_group():
    items = _synthetic()
    units: dict[str, list[Any]] = {}
    for it in items:
        units.setdefault(it.group, []).append(it)
    a = list(base.stratified_order(units, ("country", "subset", "topic"), seed=0))
    assert sorted(a) == sorted(units) and a == list(
        base.stratified_order(units, ("country", "subset", "topic"))
    )
    assert a != list(base.stratified_order(units, ("country", "subset", "topic"), seed=5))
    # subset.level differs inside groups, so it cannot be balanced and is left out: only country, topic count
    assert a == list(base.stratified_order(units, ("country", "topic"), seed=0))


def test_limit_options_reach_the_tasks():
    normad = FIX / "normad"
    strat = get_task("normad", data_dir=normad).items(limit=8)
    first = get_task("normad", data_dir=normad, limit_mode="first").items(limit=8)
    all_items = get_task("normad", data_dir=normad).items()
    assert [it.id for it in first] == [it.id for it in all_items[:8]]
    assert len({it.country.name for it in strat}) == 2 and len(strat) == 8
    # blend and kalahi keep a question's copies together
    blend = get_task("blend", data_dir=FIX / "blend")
    whole = Counter(it.group for it in blend.items())
    sliced = blend.items(limit=10)
    assert len(sliced) <= 10 and all(n == whole[g] for g, n in Counter(it.group for it in sliced).items())
    assert {it.subset["region"] for it in sliced} == {"US", "South Korea"}
    kalahi = get_task("kalahi", data_dir=FIX / "kalahi")
    whole = Counter(it.group for it in kalahi.items())
    sliced = kalahi.items(limit=2)
    assert sliced and all(n == whole[g] for g, n in Counter(it.group for it in sliced).items())
    # opinions and vsm used to take the first N
    vsm = get_task("vsm").items(limit=30)
    assert len(vsm) == 30 and len({it.subset["dimension"] for it in vsm}) == 3  # 3 whole items x 10 countries
    rnr = get_task("opinions", data_dir=FIX / "opinions" / "rnr")
    assert len(rnr.items(limit=2)) == 2 and {it.subset["split"] for it in rnr.items(limit=2)} == {
        "steer",
        "heldout",
    }
