"""Tasks declare what they are: headline (metric, label, direction), protocol, default template, data
source and locator, typed options and, for survey tasks, the SurveyTask interface alignment uses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from test_task_contract import FAKE_VERDICT
from test_task_options import HOFSTEDE, _data
from typer.testing import CliRunner

import culturelens as cl
from culturelens.aggregate import headline_metric
from culturelens.cli import app
from culturelens.judging import JudgedTask
from culturelens.render import render as generic_render
from culturelens.report.data import metric_label, task_headline
from culturelens.schema import Item, Variant
from culturelens.tasks import registry
from culturelens.tasks.base import (
    DatasetError,
    Headline,
    SurveyTask,
    Task,
    TaskOptions,
    UnknownTaskOption,
    get_task,
    resolve_data_dir,
    task_class,
    task_names,
)
from culturelens.tasks.opinions import read_goqa

FIX = Path(__file__).parent / "fixtures"
WVS = FIX / "wvb" / "WVS_Cross-National_Wave_7_fixture.csv"


def _declared_by_task(cls: type[Task], attr: str) -> bool:
    """``attr`` is set by the task or a base class of its own, not inherited from :class:`Task`."""
    return any(attr in vars(k) for k in cls.__mro__ if k not in (Task, SurveyTask) and issubclass(k, Task))


@pytest.mark.parametrize("name", task_names())
def test_every_task_declares_what_it_is(name: str):
    cls = task_class(name)
    for attr in ("headline", "protocol", "source"):
        assert _declared_by_task(cls, attr), f"{name}: declare {attr}"
    h = cls.headline
    assert isinstance(h, Headline) and h.metric and h.label and h.higher_is_better in (True, False, None)
    assert cls.protocol.strip() and "\n" not in cls.protocol
    assert cls.source is not None and cls.source.release
    assert issubclass(cls.Options, TaskOptions) and cls.Options.model_config.get("extra") == "forbid"
    d = cls.declaration()
    assert d["headline"]["metric"] == h.metric and d["headline"]["direction"]
    assert [o["name"] for o in d["options"]] == list(cls.option_schema())
    json.dumps(d)  # JSON-able as declared


@pytest.mark.parametrize("name", task_names())
def test_declared_headline_is_in_the_aggregate_on_the_fixture(name: str, tmp_path: Path):
    data = _data(name, tmp_path)
    options: dict[str, object] = {}
    if name == "vsm":
        if not HOFSTEDE.exists():
            pytest.skip("../shared/datasets not present")
        options["hofstede_file"] = str(HOFSTEDE)
    if name == "wvb":
        options["wvs_file"] = str(WVS)
    # a judged task gets a fake judge with readable verdicts (the default judge is the embedded model)
    judged = (
        {"judges": ["fake:hash"], "judge_options": {"generate_text": FAKE_VERDICT}}
        if issubclass(task_class(name), JudgedTask)
        else {}
    )
    done = cl.run(
        model="fake:hash",
        tasks=[name],
        limit=6,
        data_dir=str(data) if data else None,
        task_options={name: options} if options else {},
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        report=False,
        **judged,
    )
    log = cl.read_run(done.run_dir)
    entry = log.task_results(name)
    head = task_class(name).headline
    assert head.metric in entry["metrics"], (
        f"{name}: headline {head.metric} not in {sorted(entry['metrics'])}"
    )
    assert headline_metric(entry, name) == head.metric
    ranks = entry.get("country_ranks")
    assert ranks is None or ranks["metric"] == head.metric
    # the run records the declaration; the report labels the headline with it
    assert log.task_info(name)["headline"] == head.as_dict()
    config = json.loads((done.run_dir / "config.json").read_text(encoding="utf-8"))
    assert task_headline(name, config) == head
    assert metric_label(head.metric, task_headline(name, config)) == head.label


def test_headline_fallbacks():
    summary = {"metrics": {"acc": {}, "mc1": {}, "mc2": {}}}
    assert headline_metric(summary, "kalahi") == "mc1"  # declared and present
    assert headline_metric({"metrics": {"acc": {}}}, "kalahi") == "acc"  # letter mode: no mc1
    assert headline_metric(summary, "no_such_task") == "acc"  # the fallback list
    assert headline_metric(summary, Headline("mc2", "MC2")) == "mc2"
    # an old run without a recorded headline: the registered declaration, else the table
    assert task_headline("kalahi", {}) == task_class("kalahi").headline
    assert task_headline("gone", {}) is None and metric_label("mc1", None) == "MC1 accuracy"
    recorded = {
        "tasks": {"gone": {"headline": {"metric": "f1", "label": "F1 score", "higher_is_better": True}}}
    }
    assert metric_label("f1", task_headline("gone", recorded)) == "F1 score"


def test_unknown_option_key_is_rejected_by_the_python_api():
    with pytest.raises(UnknownTaskOption) as exc:
        get_task("kalahi", promts="full")
    assert str(exc.value) == (
        "task 'kalahi' has no option 'promts' (did you mean prompts?); options: limit_mode, limit_seed, prompts"
    )
    with pytest.raises(UnknownTaskOption, match=r"task 'cdeval' has no option 'x'; options: limit_mode, "):
        get_task("cdeval", x=1)
    with pytest.raises(ValidationError, match="extra"):  # the model itself forbids unknown keys too
        task_class("kalahi").Options.model_validate({"promts": "full"})


def test_unknown_option_key_is_rejected_by_the_cli_with_exit_2():
    res = CliRunner().invoke(app, ["run", "--task", "kalahi", "--opt", "promts=full", "--quiet"])
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines == [
        "error: task 'kalahi' has no option 'promts' (did you mean prompts?); options: limit_mode, limit_seed, prompts"
    ]


def test_list_options_take_a_comma_separated_string():
    assert get_task("cdeval", templates="survey, direct").options.templates == ["survey", "direct"]
    assert get_task("cdeval", templates=["survey"]).options.templates == ["survey"]
    assert get_task("normad", levels="none,rot").levels == ("none", "rot")
    assert get_task("vsm", countries="Brazil,Kenya").options.countries == ["Brazil", "Kenya"]
    opts = task_class("blend").Options.model_validate({"prompts": "inst-4,pers-3"}, context={"task": "blend"})
    assert opts.prompts == ["inst-4", "pers-3"] and opts.max_tokens == 64
    # the defaults are typed values, not strings to parse
    assert get_task("cdeval").options.templates == ["direct", "survey", "friend"]


def test_default_template_is_the_papers_prompt():
    items = get_task("normad", data_dir=FIX / "normad").items(limit=2)
    task = get_task("normad")
    for v in (Variant(), Variant(option_order="reversed")):
        prompt = task.render(items[0], v, task.default_mode)
        paper = generic_render(items[0], v.model_copy(update={"template": "normad"}), task.default_mode)
        assert prompt.messages == paper.messages and prompt.variant == v  # keyed by the run's variant
    other = task.render(items[0], Variant(template="plain"), task.default_mode)
    assert other.messages == generic_render(items[0], Variant(template="plain"), task.default_mode).messages
    assert task_class("starter").default_template == "default"


def test_data_location_has_one_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    src = task_class("normad").source
    assert src is not None and src.env and src.folder
    root, own, given = tmp_path / "root", tmp_path / "own", tmp_path / "given"
    for d in (root / src.folder, own, given):
        d.mkdir(parents=True)
    monkeypatch.delenv(src.env, raising=False)
    monkeypatch.setenv("CULTURELENS_DATA", str(root))
    assert resolve_data_dir(src, None) == (root / src.folder, "CULTURELENS_DATA")
    monkeypatch.setenv(src.env, str(own))
    assert resolve_data_dir(src, None) == (own, src.env)
    assert resolve_data_dir(src, given) == (given, "--data-dir")
    monkeypatch.setenv(src.env, str(tmp_path / "missing"))
    with pytest.raises(DatasetError, match=f"normad: data folder given by {src.env} does not exist"):
        get_task("normad").items()
    monkeypatch.delenv(src.env)
    # the locator: the first candidate inside the copy, else an error naming where it was expected
    with pytest.raises(DatasetError, match="file not found") as exc:
        get_task("normad", data_dir=given).items()
    assert str(exc.value).startswith(str(given / "normad_etiquette_final_data.csv"))
    assert get_task("normad", data_dir=FIX).locate() == FIX / "normad" / "normad_etiquette_final_data.csv"


def test_tasks_details_lists_options_headline_data_and_protocol():
    runner = CliRunner()
    res = runner.invoke(app, ["tasks", "--details", "normad", "--data-dir", str(FIX / "normad")])
    assert res.exit_code == 0, res.output
    out = res.stdout
    for want in (
        "* micro_f1: micro-F1 (official analysis; = share of stories labelled right) (headline; higher is better)",
        "levels (list, default none,country,country_value,rot):",
        "limit_seed (int, default 0):",
        "level: country (6), country_value (6), none (6), rot (6)",
        "release: HF akhilayerukola/NormAd",
        "$CULTURELENS_NORMAD_DIR",
        "protocol: The official run_model_inference.py protocol",
    ):
        assert want in out, f"{want!r} not in:\n{out}"
    res = runner.invoke(app, ["tasks", "--details", "kalahi"], env={"CULTURELENS_KALAHI_DIR": ""})
    assert res.exit_code == 0, res.output
    assert "* mc1: MC1 (paper protocol) (headline; higher is better)" in res.stdout
    assert "prompts (str, default full):" in res.stdout and "mc2:" in res.stdout
    assert "shown when the data are available" in res.stdout  # no local copy: nothing downloaded
    res = runner.invoke(app, ["tasks", "--details", "cdeval", "--json"])
    d = json.loads(res.stdout)
    assert d["headline"] == {
        "metric": "orientation",
        "label": "orientation (share choosing the high pole)",
        "higher_is_better": None,
        "direction": "no better direction",
    }
    assert {o["name"]: o["default"] for o in d["options"]}["templates"] == ["direct", "survey", "friend"]


def test_tasks_details_unknown_task_is_one_line_exit_2():
    res = CliRunner().invoke(app, ["tasks", "--details", "normadd"])
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: unknown task 'normadd' (did you mean normad?)")


# --- survey capability ---------------------------------------------------------------------------------
GOQA = FIX / "opinions" / "global_opinions.csv"


class _GoqaItems:
    headline = Headline("label_mass", "label mass", higher_is_better=None)
    protocol = "test"

    def load(self) -> Iterator[Item]:
        yield from read_goqa(GOQA, self.name)  # type: ignore[attr-defined]


class NotASurvey(_GoqaItems, Task):
    name = "test_not_a_survey"
    alignment_kind = "survey"  # the old, undeclared opt-in: no longer a capability


class ASurvey(_GoqaItems, SurveyTask):
    name = "test_a_survey"


def test_survey_interface_is_what_alignment_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    registry.discover()
    for cls in (NotASurvey, ASurvey):
        monkeypatch.setitem(registry._REGISTRY, cls.name, cls)
    assert {n for n in task_names() if issubclass(task_class(n), SurveyTask)} >= {"opinions", "vsm", "wvb"}
    assert not issubclass(task_class("normad"), SurveyTask)
    done = cl.run(
        model="fake:hash",
        tasks=[NotASurvey.name, ASurvey.name],
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        report=False,
    )
    assert done.alignment is not None
    assert set(done.alignment["tasks"]) == {ASurvey.name}  # the one declaring the interface
    assert done.alignment["tasks"][ASurvey.name]["kind"] == "survey"
