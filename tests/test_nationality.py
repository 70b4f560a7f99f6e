"""Nationality perturbation: the lexical measures by hand, scripted models whose answers depend only on
the nationality or only on the wording (the verdicts must tell them apart), file errors, and a real run
with the embedded model as model and judge."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

import culturelens as cl
from culturelens.backends.fake import FakeBackend
from culturelens.runner import RunConfig, Runner
from culturelens.schema import Request, Response
from culturelens.tasks.base import DatasetError, TaskOptionError, get_task
from culturelens.tasks.nationality import SHIPPED, content_words, distance, variation_summary


def test_content_words_and_distance_by_hand():
    words = content_words("The Japanese person eats rice and fish in Japan.", ["Japanese", "Japan"])
    assert words == {"person", "eats", "rice", "fish"}
    assert distance(frozenset({"a", "b", "c"}), frozenset({"b", "c", "d"})) == pytest.approx(1 - 2 / 4)
    assert distance(frozenset(), frozenset()) == 0.0
    assert distance(frozenset({"x"}), frozenset()) == 1.0


def test_shipped_requests_every_wording_and_nationality_and_the_control():
    task = get_task("nationality")
    doc = json.loads(SHIPPED.read_text())
    items = task.items()
    n_nat, n_req = len(doc["nationalities"]), len(doc["prompts"])
    assert len(items) == n_req * 3 * (n_nat + 1)
    assert len({it.id for it in items}) == len(items)
    assert all("{" not in it.question for it in items)
    neutral = [it for it in items if it.country is None]
    assert len(neutral) == n_req * 3 and all("a person" in it.question.lower() for it in neutral)
    assert any("an Indian person" in it.question for it in items)
    # --countries picks nationalities and keeps the control; --limit counts requests
    some = task.items(limit=2, countries=["Japan", "Kenya"])
    assert {it.group for it in some} and len({it.group for it in some}) == 2
    assert {it.country.name if it.country else None for it in some} == {None, "Japan", "Kenya"}
    assert len(some) == 2 * 3 * 3
    two = get_task("nationality", wordings=2, nationalities="Brazil", kinds="recipe").items()
    assert len(two) == 2 * 2 * 2 and {it.topic for it in two} == {"recipe"}


def test_bad_options_and_files_name_the_field(tmp_path: Path):
    with pytest.raises(TaskOptionError, match="wordings=1"):
        get_task("nationality", wordings=1)
    with pytest.raises(TaskOptionError, match="not in the requests file"):
        get_task("nationality", nationalities="Iceland").items()
    doc = json.loads(SHIPPED.read_text())

    def bad(edit, *expect: str) -> None:
        d = json.loads(json.dumps(doc))
        edit(d)
        path = tmp_path / "nationality_prompts.json"
        path.write_text(json.dumps(d))
        with pytest.raises(DatasetError) as err:
            get_task("nationality", data_dir=str(path)).items()
        for e in expect:
            assert e in str(err.value), str(err.value)

    bad(
        lambda d: d["prompts"][1]["wordings"].__setitem__(0, "no slot here"),
        "row prompts[1]",
        "'wordings'",
        "slot",
    )
    bad(lambda d: d["prompts"][2].__setitem__("kind", "poem"), "row prompts[2]", "field 'kind'")
    bad(lambda d: d["prompts"][0].pop("id"), "row prompts[0]", "field 'id'")
    bad(lambda d: d["prompts"][3].__setitem__("id", d["prompts"][0]["id"]), "row prompts[3]", "duplicate")
    bad(lambda d: d["nationalities"][4].__setitem__("article", "the"), "row nationalities[4]", "'article'")
    bad(
        lambda d: d["nationalities"][5].__setitem__("country", "Atlantis"),
        "row nationalities[5]",
        "'country'",
    )
    bad(lambda d: d["nationalities"].append(dict(d["nationalities"][0])), "duplicate", "'country'")
    bad(lambda d: d.__setitem__("prompts", []), "no items")


class Scripted(FakeBackend):
    """Answers generation requests with ``answer(prompt text)``."""

    def __init__(self, name: str, answer):
        super().__init__("hash")
        self.name, self.answer = name, answer

    def identity(self):
        return {"backend": "fake", "model": f"scripted-{self.name}"}

    def generate(self, batch: Sequence[Request]) -> list[Response]:
        return [Response(text=self.answer(r.text)) for r in batch]


NATIONS = ["Japan", "Nigeria", "Brazil", "France"]
_DEMONYM = re.compile(r"\ban? (\w+(?: \w+)?) person", re.IGNORECASE)


def _nation_only(text: str) -> str:
    """The same answer under every wording; a different one for every nationality."""
    m = _DEMONYM.search(text.split("User:")[-1])
    who = m.group(1) if m else "person"
    if who == "person":
        return "Try something simple and kind."
    w = who.lower().replace(" ", "")
    return f"{who}-style breakfast with {w}bread and {w}tea near the {w}market"


def _wording_only(text: str) -> str:
    """Echoes the request without the nationality: the same answer for every nationality."""
    req = text.split("User:")[-1]
    return re.sub(r"\ba person\b", "someone", _DEMONYM.sub("someone", req), flags=re.IGNORECASE)


def _run(tmp_path: Path, backend, name: str):
    cfg = RunConfig(
        tasks=["nationality"],
        task_options={"nationality": {"nationalities": ",".join(NATIONS), "max_tokens": 16}},
        limit=8,
        out=str(tmp_path / name),
        cache=str(tmp_path / f"{name}.sqlite"),
        judges=["fake:hash"],
        judge_options={"generate_text": "[[No]]"},
        n_boot=200,
    )
    return Runner(cfg, backend=backend).run().results["tasks"]["nationality"]


def test_the_verdicts_tell_nationality_from_wording_sensitivity(tmp_path: Path):
    by_nation = _run(tmp_path, Scripted("nation", _nation_only), "nation")
    v = by_nation["extra"]["variation"]
    assert v["requests"] == 8 and v["wording_variation"] == 0.0 and v["nationality_variation"] > 0.5
    assert v["p_wilcoxon"] < 0.05
    assert v["ci"][0] > 0 and "nationality changes the answers more" in v["verdict"]
    assert by_nation["n"] == 8 * 3 * len(NATIONS)  # the control is the reference, not a unit
    for c in NATIONS:
        row = by_nation["by"]["country"][c]["metrics"]
        assert row["excess"]["mean"] > 0.5 and row["divergence"]["mean"] > 0.5
        assert row["stereotype"]["mean"] == 0.0
    by_wording = _run(tmp_path, Scripted("wording", _wording_only), "wording")
    w = by_wording["extra"]["variation"]
    assert w["nationality_variation"] == 0.0 and w["wording_variation"] > 0
    assert w["ci"][1] < 0 and "rewording the request changes the answers more" in w["verdict"]
    assert by_wording["metrics"]["excess"]["mean"] < 0
    assert by_wording["metrics"]["divergence"]["mean"] == 0.0


def test_variation_summary_needs_requests_before_a_verdict():
    one = {"r": {"nationality_variation": 0.9, "wording_variation": 0.1}}
    assert "too few requests" in variation_summary(one)["verdict"]
    # five requests all pointing one way: the interval excludes 0 but five pairs cannot carry a verdict
    five = {f"r{i}": {"nationality_variation": 0.9, "wording_variation": 0.1 + i / 100} for i in range(5)}
    s5 = variation_summary(five)
    assert s5["ci"][0] > 0 and "too few requests (5" in s5["verdict"]
    tied = {f"r{i}": {"nationality_variation": 0.5, "wording_variation": 0.5} for i in range(6)}
    s = variation_summary(tied)
    assert s["difference"] == 0.0 and s["p_wilcoxon"] is None and "not distinguishable" in s["verdict"]


@pytest.mark.slow
def test_embedded_model_as_model_and_judge(tmp_path: Path):
    pytest.importorskip("llama_cpp")
    done = cl.run(
        model="default",
        judges=["default"],
        tasks=["nationality"],
        limit=1,
        task_options={
            "nationality": {
                "nationalities": "Japan,Nigeria",
                "wordings": 2,
                "kinds": "recipe",
                "max_tokens": 24,
                "judge_templates": "brief",
            }
        },
        out=str(tmp_path / "a"),
        cache=str(tmp_path / "c.sqlite"),
        report=False,
    )
    entry = done.results["tasks"]["nationality"]
    assert entry["n"] == 4 and {"divergence", "excess", "mentions"} <= set(entry["metrics"])
    assert set(entry["by"]["country"]) == {"Japan", "Nigeria"}
    v = entry["extra"]["variation"]
    assert v["requests"] == 1 and 0 <= v["nationality_variation"] <= 1 and "too few requests" in v["verdict"]
    log = cl.read_run(done.run_dir)
    assert len(list(log.iter_samples("nationality"))) == 6  # 2 wordings x (2 nationalities + control)
    rows = log.judgements("nationality")
    assert len(rows) == 4 and entry["judge"]["invalid"] == sum(not r.valid for r in rows)


def test_the_console_states_the_variation_verdict_with_its_figures():
    from culturelens.console import extra_verdicts

    per = {f"r{i}": {"nationality_variation": 0.6 + i / 100, "wording_variation": 0.3} for i in range(6)}
    lines = extra_verdicts({"variation": variation_summary(per), "by_request": per})
    assert len(lines) == 1
    assert lines[0].startswith("variation: across nationalities 0.625 vs across rewordings 0.300")
    assert "over 6 requests: the nationality changes the answers more" in lines[0]
