"""CulturalBench Easy / Hard: loaders on our own fixture rows, the all-four-judgements rule, pipeline runs,
and Easy on the real release (counts, the always-A baseline, the paper's continents, a CLI run)."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from culturelens.backends.fake import FakeBackend
from culturelens.cli import app
from culturelens.runner import RunConfig, Runner
from culturelens.schema import Mode, Score, Variant
from culturelens.tasks.base import DatasetError, get_task
from culturelens.tasks.culturalbench import CONTINENTS, EASY_FILE, HARD_FILE

FIXTURE = Path(__file__).parent / "fixtures" / "culturalbench"


def _rows(name: str) -> list[dict[str, str]]:
    with (FIXTURE / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _write(folder: Path, name: str, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns or list(rows[0]), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def test_easy_loader():
    rows = _rows(EASY_FILE)
    items = get_task("culturalbench_easy", data_dir=FIXTURE).items()
    assert len(items) == len(rows)
    by_q = {it.metadata["question_idx"]: it for it in items}
    for r in rows:
        it = by_q[r["question_idx"]]
        assert it.options == [r[f"prompt_option_{c}"] for c in "abcd"]
        assert it.correct == ["ABCD".index(r["answer"])]
        assert it.subset["subregion"] == it.country.subregion
    names = {r["country"]: by_q[r["question_idx"]].country.name for r in rows}
    assert names["UK"] == "United Kingdom" and names["South Korea"] == "South Korea"
    assert names["Czech Republic"] == "Czechia" and names["Hong Kong"] == "Hong Kong"
    # the paper's continents for its 45 regions; none for a country outside them
    continent = {r["country"]: by_q[r["question_idx"]].subset.get("continent") for r in rows}
    assert continent["UK"] == "West Europe" and continent["Mexico"] == "South America"
    assert continent["Czech Republic"] == "East Europe" and continent["Hong Kong"] == "East Asia"
    assert continent["Iceland"] is None
    # an option that reads "None" is text, not a missing value
    assert any(r["prompt_option_b"] == "None" for r in rows)
    assert by_q[next(r["question_idx"] for r in rows if r["prompt_option_b"] == "None")].options[1] == "None"


def test_mirror_layout(tmp_path: Path):
    """The CultureDistill copy keeps the file at Cul/data/ (as ../shared/datasets/culturalbench)."""
    rows = _rows(EASY_FILE)
    _write(tmp_path / "Cul" / "data", EASY_FILE, rows)
    assert len(get_task("culturalbench_easy", data_dir=tmp_path).items()) == len(rows)
    _write(tmp_path / "root" / "culturalbench" / "Cul" / "data", EASY_FILE, rows)
    assert len(get_task("culturalbench_easy", data_dir=tmp_path / "root").items()) == len(rows)


def test_hard_loader_four_rows_per_question():
    rows = _rows(HARD_FILE)
    items = get_task("culturalbench_hard", data_dir=FIXTURE).items()
    assert len(items) == len(rows)
    groups = defaultdict(list)
    for it, r in zip(items, rows, strict=True):
        assert it.options == ["True", "False"]
        assert it.correct == [0 if r["answer"] == "True" else 1]
        assert it.metadata["candidate"] == r["prompt_option"]
        groups[it.group].append(it)
    assert len(groups) == len({r["question_idx"] for r in rows})
    assert all(len(g) == 4 and len({x.country for x in g}) == 1 for g in groups.values())
    # limit counts questions and keeps all four rows of each
    sliced = get_task("culturalbench_hard", data_dir=FIXTURE).items(limit=2)
    assert len(sliced) == 8 and len({it.group for it in sliced}) == 2
    assert len({it.country.name for it in sliced}) == 2


def test_hard_limit_honours_limit_options():
    """``--limit`` on Hard goes through Task.apply_limit (unit: questions), so limit_mode and
    limit_seed apply; the unit is all four rows of a question right."""
    from culturelens.tasks.culturalbench import CulturalBenchHard

    assert CulturalBenchHard.unit_all_of_group is True
    everything = get_task("culturalbench_hard", data_dir=FIXTURE).items()
    order = list(dict.fromkeys(it.group for it in everything))
    first = get_task("culturalbench_hard", data_dir=FIXTURE, limit_mode="first").items(limit=2)
    assert [it.id for it in first] == [it.id for it in everything if it.group in order[:2]]
    for seed in range(4):
        sliced = get_task("culturalbench_hard", data_dir=FIXTURE, limit_seed=seed).items(limit=2)
        assert len(sliced) == 8 and len({it.group for it in sliced}) == 2
        assert sliced == get_task("culturalbench_hard", data_dir=FIXTURE, limit_seed=seed).items(limit=2)


def test_easy_duplicate_question_names_both_rows(tmp_path: Path):
    rows = _rows(EASY_FILE)
    rows[4]["question_idx"] = rows[1]["question_idx"]
    _write(tmp_path, EASY_FILE, rows)
    with pytest.raises(DatasetError, match=r"duplicate question_idx .* \(rows 3 and 6\)"):
        get_task("culturalbench_easy", data_dir=tmp_path).items()


def test_templates():
    easy = get_task("culturalbench_easy", data_dir=FIXTURE)
    item = easy.items()[1]
    prompt = easy.render(item, Variant(), Mode.LETTER)
    text = prompt.messages[-1].content
    assert item.question in text and "\nA. Tortilla chips\nB. Scones with clotted cream\n" in text
    assert prompt.assistant_prefix == "Answer:" and prompt.labels == ["A", "B", "C", "D"]
    assert prompt.variant == Variant()
    hard = get_task("culturalbench_hard", data_dir=FIXTURE)
    item = hard.items()[0]
    prompt = hard.render(item, Variant(), Mode.LETTER)
    text = prompt.messages[-1].content
    assert f"Question: {item.metadata['question']}\nProposed answer: {item.metadata['candidate']}" in text
    assert "true or false" in text and prompt.labels == ["True", "False"]


def _score(item_id: str, acc: float) -> Score:
    return Score(
        item_id=item_id,
        task="culturalbench_hard",
        variant="default",
        mode=Mode.LETTER,
        metrics={"acc": acc},
        prediction=0,
    )


def test_hard_question_counts_only_if_all_four_right():
    task = get_task("culturalbench_hard", data_dir=FIXTURE)
    items = {it.id: it for it in task.items()}
    q0 = [it for it in items.values() if it.metadata["question_idx"] == "0"]
    q1 = [it for it in items.values() if it.metadata["question_idx"] == "1"]
    three_of_four = [_score(it.id, 0.0 if k == 2 else 1.0) for k, it in enumerate(q0)]
    four_of_four = [_score(it.id, 1.0) for it in q1]
    units = task.unit_scores(items, three_of_four + four_of_four)
    assert len(units) == 2
    by_q = {u_item.metadata["question_idx"]: (u_item, s) for u_item, s in units}
    assert by_q["0"][1].metrics["acc"] == 0.0 and by_q["0"][1].metrics["row_acc"] == 0.75
    assert by_q["1"][1].metrics["acc"] == 1.0 and by_q["1"][1].metrics["row_acc"] == 1.0
    unit_item = by_q["0"][0]
    assert (
        unit_item.id == "cb-hard:0" and unit_item.group == q0[0].group and unit_item.country == q0[0].country
    )
    with pytest.raises(ValueError, match="expected 4"):
        task.unit_scores(items, three_of_four[:3])


@pytest.mark.parametrize(
    ("name", "mutate", "row", "field", "match"),
    [  # row numbers as a spreadsheet shows them: the header is row 1
        (EASY_FILE, lambda r: r[2].update({"answer": "E"}), 4, "answer", "not one of A, B, C, D"),
        (EASY_FILE, lambda r: r[0].update({"country": "Atlantis"}), 2, "country", "Unknown country"),
        (EASY_FILE, lambda r: r[3].update({"prompt_option_c": " "}), 5, "prompt_option_c", "empty value"),
        (
            EASY_FILE,
            lambda r: r[4].update({"question_idx": r[1]["question_idx"]}),
            6,
            "question_idx",
            "duplicate",
        ),
        (HARD_FILE, lambda r: r[5].update({"answer": "Maybe"}), 7, "answer", "not True / False"),
        (HARD_FILE, lambda r: r[9].update({"prompt_option": ""}), 11, "prompt_option", "empty value"),
        (HARD_FILE, lambda r: r[7].update({"country": "Japan"}), 9, "country", "has rows for"),
        (HARD_FILE, lambda r: r.pop(6), 6, "question_idx", "has 3 rows, expected 4"),
    ],
)
def test_malformed_rows_name_file_row_field(tmp_path: Path, name, mutate, row, field, match):
    rows = _rows(name)
    mutate(rows)
    path = _write(tmp_path, name, rows)
    task = "culturalbench_easy" if name == EASY_FILE else "culturalbench_hard"
    with pytest.raises(DatasetError, match=match) as exc:
        get_task(task, data_dir=tmp_path).items()
    assert (exc.value.file, exc.value.row, exc.value.field) == (str(path), row, field)
    assert name in str(exc.value) and f"row {row}" in str(exc.value)


def test_missing_column_and_file(tmp_path: Path):
    rows = _rows(EASY_FILE)
    _write(tmp_path, EASY_FILE, rows, [c for c in rows[0] if c != "country"])
    with pytest.raises(DatasetError, match="missing column") as exc:
        get_task("culturalbench_easy", data_dir=tmp_path).items()
    assert exc.value.field == "country"
    with pytest.raises(DatasetError, match="file not found") as exc:
        get_task("culturalbench_hard", data_dir=tmp_path).items()
    assert HARD_FILE in str(exc.value)


def test_offline_without_data_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.delenv("CULTURELENS_CULTURALBENCH_DIR", raising=False)
    monkeypatch.delenv("CULTURELENS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("CULTURELENS_DATA_CACHE", str(tmp_path / "cache"))

    def no_network(**kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(hub, "hf_hub_download", no_network)
    for task, name in (("culturalbench_easy", EASY_FILE), ("culturalbench_hard", HARD_FILE)):
        with pytest.raises(DatasetError, match="--data-dir") as exc:
            get_task(task).items()
        assert name in str(exc.value) and "kellycyy/CulturalBench" in str(exc.value)


def _samples(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()]


def test_pipeline_with_fake_backend(tmp_path: Path):
    easy_rows, hard_rows = _rows(EASY_FILE), _rows(HARD_FILE)
    cfg = RunConfig(
        model="fake:first",
        tasks=["culturalbench_easy", "culturalbench_hard"],
        data_dir=str(FIXTURE),
        out=str(tmp_path / "first"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
    )
    res = Runner(cfg, backend=FakeBackend("first")).run()  # always A / always True
    easy, hard = res.results["tasks"]["culturalbench_easy"], res.results["tasks"]["culturalbench_hard"]
    assert easy["n"] == len(easy_rows)
    assert easy["metrics"]["acc"]["mean"] == pytest.approx(
        sum(r["answer"] == "A" for r in easy_rows) / len(easy_rows)
    )
    assert (
        set(easy["by"]["country"]) >= {"United Kingdom", "South Korea"} and "Europe" in easy["by"]["region"]
    )
    assert easy["by"]["subset:continent"]["West Europe"]["n"] == sum(r["country"] == "UK" for r in easy_rows)
    assert easy["extra"]["always_a_acc"] == easy["metrics"]["acc"]["mean"]
    assert easy["extra"]["pred_share"] == {"A": 1.0, "B": 0.0, "C": 0.0, "D": 0.0}
    n_q = len({r["question_idx"] for r in hard_rows})
    assert hard["n"] == n_q and hard["items"] == len(hard_rows)  # units are questions
    all_true = sum(
        all(r["answer"] == "True" for r in hard_rows if r["question_idx"] == q)
        for q in {r["question_idx"] for r in hard_rows}
    )
    assert hard["metrics"]["acc"]["mean"] == pytest.approx(all_true / n_q)
    true_share = sum(r["answer"] == "True" for r in hard_rows) / len(hard_rows)
    assert hard["metrics"]["row_acc"]["mean"] == pytest.approx(true_share)
    assert hard["extra"]["pred_true_share"] == 1.0 and hard["extra"]["gold_true_share"] == pytest.approx(
        true_share
    )
    assert sum(v["n"] for v in hard["by"]["country"].values()) == n_q

    # pseudo-random answers: the question score must be the minimum over its judgements
    cfg = cfg.model_copy(update={"tasks": ["culturalbench_hard"], "out": str(tmp_path / "hash")})
    res = Runner(cfg, backend=FakeBackend("hash")).run()
    per_q = defaultdict(list)
    for s in _samples(res.run_dir):
        per_q[s["item_id"].rsplit(":", 1)[0]].append(s["metrics"]["acc"])
    expected = sum(min(v) for v in per_q.values()) / len(per_q)
    assert res.results["tasks"]["culturalbench_hard"]["metrics"]["acc"]["mean"] == pytest.approx(expected)


@pytest.mark.slow
def test_real_embedded_model_on_fixture(tmp_path: Path):
    pytest.importorskip("llama_cpp")
    cfg = RunConfig(
        model="default",
        tasks=["culturalbench_easy", "culturalbench_hard"],
        data_dir=str(FIXTURE),
        limit=1,
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
    )
    res = Runner(cfg).run()
    easy, hard = res.results["tasks"]["culturalbench_easy"], res.results["tasks"]["culturalbench_hard"]
    assert easy["n"] == 1 and hard["n"] == 1 and hard["items"] == 4
    samples = _samples(res.run_dir)
    assert len(samples) == 5
    for s in samples:
        assert s["valid"] and sum(s["probs"]) == pytest.approx(1.0) and s["metrics"]["label_mass"] > 0.0
    hard_acc = [s["metrics"]["acc"] for s in samples if s["task"] == "culturalbench_hard"]
    assert hard["metrics"]["acc"]["mean"] == min(hard_acc)


# --- CulturalBench-Easy on the real release (../shared/datasets/culturalbench) ----------------------------
CARD_CONTINENTS = {  # HF card kellycyy/CulturalBench, "Country distribution": questions per continent
    "North America": 27, "South America": 150, "East Europe": 115, "South Europe": 76, "West Europe": 96,
    "Africa": 134, "Middle East/West Asia": 127,
}  # fmt: skip


def test_real_easy_release(shared_datasets: Path):
    items = get_task("culturalbench_easy", data_dir=shared_datasets / "culturalbench").items()
    assert len(items) == 1227 and len({it.id for it in items}) == 1227
    assert len({it.country.name for it in items}) == 45
    gold = [it.correct[0] for it in items]
    assert [gold.count(k) for k in range(4)] == [658, 254, 189, 126]
    assert round(100 * gold.count(0) / len(gold), 1) == 53.6  # always answering A
    assert all(len(it.options) == 4 and all(it.options) for it in items)
    by_q = {it.metadata["question_idx"]: it for it in items}
    assert by_q["221"].options[3] == "None" and by_q["221"].country.name == "Spain"
    # every region falls in one of the paper's 11 continents, with the card's counts
    per_continent = Counter(it.subset.get("continent") for it in items)
    assert set(per_continent) == set(CONTINENTS) and sum(per_continent.values()) == 1227
    assert {k: per_continent[k] for k in CARD_CONTINENTS} == CARD_CONTINENTS
    for name, codes in CONTINENTS.items():
        assert {it.country.iso2 for it in items if it.subset["continent"] == name} == set(codes)


def test_real_release_through_datasets_root(shared_datasets: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CULTURELENS_CULTURALBENCH_DIR", raising=False)
    monkeypatch.setenv("CULTURELENS_DATA", str(shared_datasets))
    assert len(get_task("culturalbench_easy").items()) == 1227
    with pytest.raises(DatasetError, match="file not found") as exc:  # Hard is not in the copy
        get_task("culturalbench_hard").items()
    assert HARD_FILE in str(exc.value)


def test_real_easy_always_a_baseline(shared_datasets: Path, tmp_path: Path):
    cfg = RunConfig(
        model="fake:first",
        tasks=["culturalbench_easy"],
        data_dir=str(shared_datasets / "culturalbench"),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
    )
    t = Runner(cfg, backend=FakeBackend("first")).run().results["tasks"]["culturalbench_easy"]
    assert t["n"] == 1227 and t["metrics"]["acc"]["mean"] == pytest.approx(658 / 1227)
    assert t["extra"]["always_a_acc"] == pytest.approx(658 / 1227)
    assert len(t["by"]["country"]) == 45 and set(t["by"]["subset:continent"]) == set(CONTINENTS)
    assert sum(v["n"] for v in t["by"]["subset:continent"].values()) == 1227


def test_real_easy_cli_run(shared_datasets: Path, tmp_path: Path):
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        ["run", "--task", "culturalbench_easy", "--data-dir", str(shared_datasets / "culturalbench"),
         "--model", "fake:hash", "--limit", "40", "--cache", str(tmp_path / "c.sqlite"), "--out", str(out),
         "--no-report", "-q"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    t = json.loads((out / "results.json").read_text(encoding="utf-8"))["tasks"]["culturalbench_easy"]
    samples = _samples(out)
    assert t["n"] == len(samples) == 40 and len(t["by"]["country"]) == 40  # spread across regions
    for s in samples:
        assert all(f"\n{c}. " in s["prompt"] for c in "ABCD") and len(s["targets"]) == 4
    assert t["metrics"]["acc"]["mean"] == pytest.approx(sum(s["metrics"]["acc"] for s in samples) / 40)


@pytest.mark.slow
def test_real_model_on_real_easy(shared_datasets: Path, tmp_path: Path):
    pytest.importorskip("llama_cpp")
    cfg = RunConfig(
        tasks=["culturalbench_easy"],
        data_dir=str(shared_datasets / "culturalbench"),
        limit=5,
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
    )
    res = Runner(cfg).run()
    t = res.results["tasks"]["culturalbench_easy"]
    assert t["n"] == 5 and len(t["by"]["country"]) == 5 and t["modes"] == ["letter"]
    for s in _samples(res.run_dir):
        assert s["valid"] and sum(s["probs"]) == pytest.approx(1.0) and s["metrics"]["label_mass"] > 0.0
