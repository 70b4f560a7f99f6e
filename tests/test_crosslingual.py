"""Cross-lingual consistency on BLEnD (culturelens.crosslingual): the agreement rule on hand-made
replies, the per-region numbers and paired test against hand-computed values on a scripted run, the
CLI, and the pairing on the real release."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from culturelens import crosslingual as xl
from culturelens.backends.fake import FakeBackend
from culturelens.cli import app
from culturelens.runlog import RunLogError
from culturelens.runner import RunConfig, Runner
from culturelens.schema import GoldAnswer, Request, Response
from culturelens.stats import wilson_interval

N = 10


def _write_region(
    root: Path, stem: str, questions: list[tuple[str, str, str]], clusters: list[list[GoldAnswer]]
) -> None:
    """A BLEnD-format region: annotations, questions and the inst-4 prompt."""
    for sub in ("annotations", "questions", "prompts"):
        (root / "data" / sub).mkdir(parents=True, exist_ok=True)
    data = {
        qid: {
            "question": local,
            "en_question": english,
            "annotations": [{"answers": a.texts, "en_answers": a.en_texts, "count": a.count} for a in cl],
            "idks": {"idk": 0, "no-answer": 0, "not-applicable": 0},
        }
        for (qid, local, english), cl in zip(questions, clusters, strict=True)
    }
    (root / "data" / "annotations" / f"{stem}_data.json").write_text(
        json.dumps(data, ensure_ascii=False), encoding="utf-8"
    )
    with (root / "data" / "questions" / f"{stem}_questions.csv").open(
        "w", newline="", encoding="utf-8"
    ) as fh:
        w = csv.writer(fh)
        w.writerow(["ID", "Topic"])
        w.writerows([q[0], "Food"] for q in questions)
    with (root / "data" / "prompts" / f"{stem}_prompts.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "English", "Translation"])
        w.writerow(
            [
                "inst-4",
                "Answer briefly.\nQuestion: {q}\nAnswer:",
                "Responde brevemente.\nPregunta: {q}\nRespuesta:",
            ]
        )


#: question k: (local reply, English reply); the expected outcome is in the comment
REPLIES = {
    0: ("respuesta0", "answer0"),  # both right, same cluster: agree (gold)
    1: ("respuesta1", "answer1"),
    2: ("respuesta2", "answer2"),
    3: ("respuesta3", "answer3"),
    4: ("respuesta4", "nothing"),  # local only: disagree (text)
    5: ("respuesta5", "nothing"),
    6: ("respuesta6", "nothing"),
    7: ("otra7", "answer7"),  # both right, different clusters: disagree (gold)
    8: ("pizza", "Pizza"),  # both wrong, same words: agree (text)
    9: ("", "answer9"),  # English only; an empty reply agrees with nothing
}


class Scripted(FakeBackend):
    """Replies by the question in the prompt (``pregunta K`` / ``question K``)."""

    def identity(self) -> dict[str, object]:
        return {"backend": "fake", "model": "scripted"}

    def generate(self, batch: Sequence[Request]) -> list[Response]:
        out = []
        for r in batch:
            k = next(k for k in range(N) if f"pregunta {k}?" in r.text or f"question {k}?" in r.text)
            local = f"pregunta {k}?" in r.text
            out.append(Response(text=REPLIES[k][0 if local else 1]))
        return out


@pytest.fixture
def scripted_run(tmp_path: Path) -> Path:
    return build_scripted_run(tmp_path)


def build_scripted_run(tmp_path: Path) -> Path:
    """A blend run of one scripted Spanish region (and an English-only US question) under ``tmp_path``."""
    data = tmp_path / "blend"
    qs = [(f"es-{k:02d}", f"pregunta {k}?", f"question {k}?") for k in range(N)]
    cl = [
        [
            GoldAnswer(texts=[f"respuesta{k}"], en_texts=[f"answer{k}"], count=3),
            GoldAnswer(texts=[f"otra{k}"], en_texts=[f"other{k}"], count=1),
        ]
        for k in range(N)
    ]
    _write_region(data, "Spain", qs, cl)
    _write_region(data, "US", [("us-01", "question 0?", "question 0?")], [cl[0]])  # English only: no pair
    cfg = RunConfig(
        tasks=["blend"],
        data_dir=str(data),
        task_options={"blend": {"prompts": "inst-4"}},
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=100,
    )
    Runner(cfg, backend=Scripted()).run()
    return tmp_path / "run"


# --- the agreement rule ------------------------------------------------------------------------------------
def test_cluster_matches_follow_blends_grading():
    answers = [
        GoldAnswer(texts=["김치찌개"], en_texts=["kimchi stew"], count=3),
        GoldAnswer(texts=["떡국"], en_texts=["rice cake soup"]),
    ]
    assert xl.cluster_matches("김치찌개", answers, "ko") == {0}
    assert xl.cluster_matches("kimchi stew", answers, "ko") == {0}  # a local reply may use English
    assert xl.cluster_matches("kimchi stew and rice cake soup", answers, "en") == {0, 1}
    assert xl.cluster_matches("김치찌개", answers, "en") == set()  # English replies: English variants only
    assert xl.cluster_matches("", answers, "ko") == set()


def test_replies_agree_by_soft_match_either_way():
    assert xl.replies_agree("pizza", "Pizza", "es")  # the English lemmatiser lower-cases both
    assert xl.replies_agree("tacos al pastor", "I think tacos al pastor", "es")
    assert xl.replies_agree("the tortillas", "tortilla", "es")  # lemmas: tortillas -> tortilla
    assert not xl.replies_agree("paella", "gazpacho", "es")
    assert not xl.replies_agree("", "paella", "es")


# --- a scripted run: every number by hand ---------------------------------------------------------------
def test_scripted_run_per_region_against_hand_computed_values(scripted_run: Path):
    res = xl.analyze(scripted_run)
    assert list(res["regions"]) == ["Spain"]  # the US asks only English: no pair
    es = res["regions"]["Spain"]
    assert (es["pairs"], es["questions"], es["language"]) == (N, N, "es")
    assert es["local"]["mean"] == 0.8 and es["english"]["mean"] == 0.6
    assert es["outcomes"] == {"both right": 5, "local only": 3, "English only": 1, "both wrong": 1}
    assert es["agreement"]["mean"] == 0.5
    assert es["decided_by"] == {"gold": 5, "text": 4, "empty": 1}
    lo, hi = wilson_interval(5, 10)
    assert es["agreement"]["ci"] == pytest.approx([lo, hi]) and es["agreement"]["ci_method"] == "wilson"
    # McNemar, exact: b = 3 (local only), c = 1; p = 2 * P(X <= 1 | 4, 1/2) = 2 * 5/16
    assert es["test"] == "McNemar exact (b=3, c=1)" and math.isclose(es["p"], 0.625)
    assert math.isclose(es["diff"], 0.2)
    assert res["local_better"] == [] and res["english_better"] == []
    assert res["all"]["pairs"] == N and not res["notes"]


def test_two_prompts_make_clustered_pairs(scripted_run: Path):
    # the same pairs under one prompt only: filtering by prompt keeps them; an unknown prompt keeps none
    assert xl.analyze(scripted_run, prompts=["inst-4"])["all"]["pairs"] == N
    with pytest.raises(RunLogError, match="no question"):
        xl.analyze(scripted_run, prompts=["pers-3"])


def test_cli_prints_the_table_and_writes_json(scripted_run: Path, tmp_path: Path):
    out = tmp_path / "x.json"
    res = CliRunner().invoke(app, ["crosslingual", str(scripted_run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Spain" in res.output and "agreement rule:" in res.output and "0.50 [" in res.output
    assert json.loads(out.read_text())["regions"]["Spain"]["pairs"] == N
    # also beside the run, where the report reads it, and equal to the --out copy
    assert (scripted_run / "crosslingual.json").read_text() == out.read_text()


def test_cli_bad_run_is_one_line_exit_2(tmp_path: Path, scripted_run: Path):
    res = CliRunner().invoke(app, ["crosslingual", str(tmp_path / "nope")])
    assert res.exit_code == 2 and len([x for x in res.output.splitlines() if x.strip()]) == 1
    res = CliRunner().invoke(app, ["crosslingual", str(scripted_run), "--variant", "labels=numbers"])
    assert res.exit_code == 2 and "no variant" in res.output


def test_a_run_without_blend_is_refused(tmp_path: Path):
    from conftest import mini_starter

    mini_starter(tmp_path / "s")
    cfg = RunConfig(
        tasks=["starter"],
        data_dir=str(tmp_path / "s"),
        out=str(tmp_path / "r"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
    )
    Runner(cfg, backend=FakeBackend("first")).run()
    with pytest.raises(RunLogError, match="no 'blend' task"):
        xl.analyze(tmp_path / "r")


# --- the real release -----------------------------------------------------------------------------------
def test_real_release_pairs_every_local_question_with_its_english_one(shared_datasets: Path):
    from culturelens.tasks.base import get_task

    items = get_task("blend", data_dir=str(shared_datasets / "blend")).items()
    halves: dict[tuple[str, str], dict[str, object]] = {}
    for it in items:
        halves.setdefault((it.group or "", it.subset["prompt"]), {})[it.subset["language_variant"]] = it
    regions_with_pairs = set()
    for (group, _), two in halves.items():
        region = group.split("/")[0]
        if region in ("US", "UK"):
            assert set(two) == {"local"}
            continue
        if set(two) == {"en"}:
            assert group == "China/New-en-04"  # the one blank local question
            continue
        assert set(two) == {"local", "en"}
        loc, en = two["local"], two["en"]
        assert loc.answers == en.answers and loc.language != "en" and en.language == "en"  # type: ignore[attr-defined]
        regions_with_pairs.add(region)
    assert len(regions_with_pairs) == 14


@pytest.mark.slow
def test_real_model_small_slice(shared_datasets: Path, tmp_path: Path):
    pytest.importorskip("llama_cpp")
    cfg = RunConfig(
        tasks=["blend"],
        data_dir=str(shared_datasets / "blend"),
        limit=6,  # three questions, each in the local language and English under inst-4
        countries=["Mexico", "Greece", "Iran"],
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=100,
        task_options={"blend": {"max_tokens": 16, "prompts": "inst-4"}},
    )
    Runner(cfg).run()
    res = xl.analyze(tmp_path / "run")
    assert res["all"]["pairs"] == 3 and set(res["regions"]) <= {"Mexico", "Greece", "Iran"}
    for r in res["regions"].values():
        for k in ("local", "english", "agreement"):
            lo, hi = r[k]["ci"]
            assert 0.0 <= lo <= r[k]["mean"] <= hi <= 1.0
        assert 0.0 <= r["p"] <= 1.0 and sum(r["decided_by"].values()) == r["pairs"]
