"""CLIcK: loader on our own fixture rows, five-option prompts, scoring, malformed files, the real
release (counts, CLI run), agreement with lm-evaluation-harness's CLIcK functions on fixed predictions."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from culturelens.backends.fake import FakeBackend
from culturelens.cli import app
from culturelens.runner import RunConfig, Runner
from culturelens.schema import Item, Mode, Response, Variant
from culturelens.tasks.base import DatasetError, get_task
from culturelens.tasks.click import RELEASE_FILES

FIXTURE = Path(__file__).parent / "fixtures" / "click"
DATASET = FIXTURE / "Dataset"
REFERENCE = FIXTURE / "harness_reference.json"


def _fixture_records() -> list[tuple[str, int, dict[str, Any]]]:
    """(release-relative path, record number from 1, record) of every fixture record."""
    out = []
    for path in sorted(DATASET.glob("*/*/*.json")):
        rel = str(Path("Dataset") / path.relative_to(DATASET))
        for row, rec in enumerate(json.loads(path.read_text(encoding="utf-8")), start=1):
            out.append((rel, row, rec))
    return out


def _by_file_row(items: list[Item]) -> dict[tuple[str, int], Item]:
    return {(it.metadata["file"], it.metadata["row"]): it for it in items}


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "click"
    shutil.copytree(DATASET, dst / "Dataset")
    return dst


def test_loader_on_fixture():
    records = _fixture_records()
    items = get_task("click", data_dir=FIXTURE).items()
    assert len(items) == len(records)
    by = _by_file_row(items)
    for rel, row, rec in records:
        it = by[(rel, row)]
        _, group, sub, name = Path(rel).parts
        assert it.options == rec["choices"]
        assert it.correct == [rec["choices"].index(rec["answer"])]
        assert it.question == rec["question"] and it.context == (rec["paragraph"] or None)
        assert it.subset["category"] == group.lower() and it.subset["subcategory"] == sub == it.topic
        assert it.subset["source"] == name.removesuffix(".json").split("_")[-1]
        assert it.subset["n_choices"] == str(len(rec["choices"]))
        assert it.language == "ko" and it.country is not None and it.country.name == "South Korea"
        assert it.id == f"click:{Path(rel).stem}:{rec['id']}"
    # a record id may repeat in another file (as Kedu_16_1 does in the release): ids stay unique
    assert Counter(rec["id"] for _, _, rec in records)["Kedu_9_1"] == 2
    assert len({it.id for it in items}) == len(items)


def _five_option_items() -> list[Item]:
    return [it for it in get_task("click", data_dir=FIXTURE).items() if len(it.options) == 5]


@pytest.mark.parametrize("mode", [Mode.LETTER, Mode.GENERATE])
def test_five_option_items_show_and_score_all_five(mode: Mode):
    task = get_task("click", data_dir=FIXTURE)
    items = task.items()
    assert any(len(it.options) == 5 for it in items) and any(len(it.options) == 4 for it in items)
    for it in items:
        prompt = task.render(it, Variant(), mode)
        text = prompt.messages[-1].content
        n = len(it.options)
        letters = "ABCDE"[:n]
        assert prompt.labels == list(letters)  # every shown option is scored, and only those
        for k, letter in enumerate(letters):
            assert f"\n{letter}. {it.options[k]}" in text
        if n == 4:
            assert "\nE. " not in text
        assert f"보기 {', '.join(letters)} 가운데" in text
        assert prompt.assistant_prefix == "정답:" and prompt.variant == Variant()
        assert ("맥락: " in text) == (it.context is not None)
        if it.context:
            assert text.index("맥락: ") < text.index("질문: ") < text.index("보기:\n")


def test_gold_e_is_scored_on_the_fifth_letter():
    task = get_task("click", data_dir=FIXTURE)
    gold_e = [it for it in _five_option_items() if it.correct == [4]]
    assert gold_e
    for it in gold_e:
        prompt = task.render(it, Variant(), Mode.LETTER)
        for peak in range(5):
            lps = [-0.1 if k == peak else -5.0 for k in range(5)]
            s = task.score(it, prompt, Response(logprobs=lps))
            assert s.prediction == peak and s.metrics["acc"] == float(peak == 4)
        # a permuted display maps the letters back to the original options
        shown = task.render(it, Variant(option_order="reversed"), Mode.LETTER)
        assert shown.options[0] == it.options[4]
        s = task.score(it, shown, Response(logprobs=[-0.1, -5.0, -5.0, -5.0, -5.0]))
        assert s.prediction == 4 and s.metrics["acc"] == 1.0


@pytest.mark.parametrize(
    ("reply", "pred"),
    [("E", 4), (" B. 1444년", 1), ("정답은 E입니다.", 4), ("정답: (C)", 2), ("답은 d", 3), ("1446년", 4)],
)
def test_generated_replies(reply: str, pred: int):
    task = get_task("click", data_dir=FIXTURE)
    it = next(i for i in _five_option_items() if "1446년" in i.options)
    prompt = task.render(it, Variant(), Mode.GENERATE)
    s = task.score(it, prompt, Response(text=reply))
    assert s.valid and s.prediction == pred and s.metrics["acc"] == float(pred in it.correct)


@pytest.mark.parametrize("reply", ["모르겠습니다", "정답은 F입니다", ""])
def test_unparseable_replies_are_invalid_and_wrong(reply: str):
    task = get_task("click", data_dir=FIXTURE)
    it = _five_option_items()[0]
    s = task.score(it, task.render(it, Variant(), Mode.GENERATE), Response(text=reply))
    assert not s.valid and s.metrics == {"acc": 0.0, "invalid": 1.0}


def _write(root: Path, rel: str, payload: Any) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")
    return path


TRADITION = "Dataset/Culture/Korean Tradition/Tradition_KIIP.json"
TEXTUAL = "Dataset/Language/Textual/Textual_CSAT.json"


def _recs(rel: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURE / rel).read_text(encoding="utf-8"))


def _set(k: int, field: str, value: Any):
    def mutate(recs: list[dict[str, Any]]) -> None:
        recs[k][field] = value

    return mutate


def _dup_choice(recs: list[dict[str, Any]]) -> None:
    recs[2]["choices"][3] = recs[2]["answer"]


@pytest.mark.parametrize(
    ("rel", "mutate", "row", "field", "match"),
    [  # records are numbered from 1
        (TRADITION, _set(1, "answer", "열두 달"), 2, "answer", "not one of the choices"),
        (TRADITION, _dup_choice, 3, "answer", "several identical choices"),
        (TRADITION, _set(0, "choices", ["설날", "추석", "단오"]), 1, "choices", "3 choices, expected 4 or 5"),
        (TEXTUAL, _set(1, "choices", ["1", "2", "3", "4", "5", "1446년"]), 2, "choices", "6 choices"),
        (TRADITION, _set(2, "choices", "설날, 추석"), 3, "choices", "list of choices"),
        (TRADITION, _set(0, "choices", ["설날", "", "단오", "추석"]), 1, "choices", "choice 2 is empty"),
        (
            TRADITION,
            _set(0, "choices", ["설날", 15, "단오", "추석"]),
            1,
            "choices",
            "choice 2 is empty or not text",
        ),
        (TRADITION, _set(1, "question", "  "), 2, "question", "empty value"),
        (TRADITION, _set(2, "id", "KIIP_tradition_1"), 3, "id", "duplicate id"),
        (TRADITION, _set(0, "id", 7), 1, "id", "expected text"),
        (TRADITION, _set(1, "answer", 1), 2, "answer", "text of a choice"),
        (TEXTUAL, _set(0, "paragraph", ["민수는"]), 1, "paragraph", "expected text"),
        (TRADITION, lambda r: r[1].pop("answer"), 2, "answer", "missing field"),
        (TRADITION, lambda r: r.__setitem__(2, ["not", "an", "object"]), 3, None, "expected a JSON object"),
    ],
)
def test_malformed_records_name_file_row_field(tmp_path: Path, rel, mutate, row, field, match):
    root = _copy(tmp_path)
    recs = _recs(rel)
    mutate(recs)
    path = _write(root, rel, recs)
    with pytest.raises(DatasetError, match=match) as exc:
        get_task("click", data_dir=root).items()
    assert (exc.value.file, exc.value.row, exc.value.field) == (str(path), row, field)
    assert path.name in str(exc.value)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ('[{"id": "x", "question": "q"', "invalid JSON"),
        ('{"id": "x"}', "expected a JSON array"),
        (
            '[{"id": "a", "id": "b", "question": "q", "choices": ["1", "2", "3", "4"], "answer": "1"}]',
            "duplicate key 'id'",
        ),
        ("", "no items"),
        ("  \n", "no items"),
        ("[]", "no items"),
    ],
)
def test_unreadable_files(tmp_path: Path, payload: str, match: str):
    root = _copy(tmp_path)
    path = _write(root, TRADITION, payload)
    with pytest.raises(DatasetError, match=match) as exc:
        get_task("click", data_dir=root).items()
    assert exc.value.file == str(path)
    (root / TRADITION).write_bytes(b'[{"id": "\xff"}]')
    with pytest.raises(DatasetError, match="not UTF-8"):
        get_task("click", data_dir=root).items()


def test_layouts_and_missing_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    n = len(_fixture_records())
    root = _copy(tmp_path)
    for given in (
        root,
        root / "Dataset",
        tmp_path,
    ):  # the release root, its Dataset/, a folder holding click/
        assert len(get_task("click", data_dir=given).items()) == n
    monkeypatch.setenv("CULTURELENS_CLICK_DIR", str(root))
    assert len(get_task("click").items()) == n
    monkeypatch.delenv("CULTURELENS_CLICK_DIR")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="CLIcK release layout"):
        get_task("click", data_dir=empty).items()
    (empty / "Dataset" / "Culture").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no question files"):
        get_task("click", data_dir=empty).items()


def test_offline_without_data_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for var in ("CULTURELENS_CLICK_DIR", "CULTURELENS_DATA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CULTURELENS_OFFLINE", "1")
    monkeypatch.setenv("CULTURELENS_DATA_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DatasetError, match="--data-dir") as exc:
        get_task("click").items()
    assert "rladmstn1714/CLIcK" in str(exc.value) and "Economy_KIIP.json" in str(exc.value)
    assert len(RELEASE_FILES) == 26 and len(set(RELEASE_FILES)) == 26


def _samples(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines()]


def test_pipeline_with_fake_backend(tmp_path: Path):
    records = _fixture_records()
    cfg = RunConfig(
        model="fake:first",
        tasks=["click"],
        data_dir=str(FIXTURE),
        out=str(tmp_path / "first"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
    )
    t = Runner(cfg, backend=FakeBackend("first")).run().results["tasks"]["click"]  # always A
    gold_a = [rec["choices"].index(rec["answer"]) == 0 for _, _, rec in records]
    assert t["n"] == len(records) and t["metrics"]["acc"]["mean"] == pytest.approx(sum(gold_a) / len(gold_a))
    assert set(t["by"]["subset:category"]) == {"culture", "language"}
    assert set(t["by"]["subset:subcategory"]) == {Path(rel).parts[2] for rel, _, _ in records}
    assert set(t["by"]["language"]) == {"ko"} and set(t["by"]["country"]) == {"South Korea"}
    assert t["extra"]["chance_acc"] == pytest.approx(
        sum(1 / len(rec["choices"]) for _, _, rec in records) / len(records)
    )
    assert t["extra"]["five_choice_items"] == sum(len(rec["choices"]) == 5 for _, _, rec in records)

    cfg = cfg.model_copy(update={"out": str(tmp_path / "hash")})
    res = Runner(cfg, backend=FakeBackend("hash")).run()
    t = res.results["tasks"]["click"]
    samples = _samples(res.run_dir)
    per_group: dict[str, list[float]] = defaultdict(list)
    per_sub: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for s in samples:
        assert len(s["targets"]) == len(s["options"])  # five letters asked on five-option items
        per_group[s["subset"]["category"]].append(s["metrics"]["acc"])
        per_sub[s["subset"]["category"]][s["subset"]["subcategory"]].append(s["metrics"]["acc"])
    for group, accs in per_group.items():
        g = t["extra"]["groups"][group]
        assert g["acc"] == pytest.approx(sum(accs) / len(accs)) and g["n"] == len(accs)
        means = [sum(v) / len(v) for v in per_sub[group].values()]
        assert g["subcategory_mean"] == pytest.approx(sum(means) / len(means))
    assert t["extra"]["group_mean_acc"] == pytest.approx(
        sum(g["acc"] for g in t["extra"]["groups"].values()) / 2
    )


# --- the real release ------------------------------------------------------------------------------
SUBCATEGORY_COUNTS = {  # ../shared/datasets/README.md, CLIcK counts table
    "Korean Economy": 59, "Korean Geography": 131, "Korean History": 280, "Korean Law": 219,
    "Korean Politics": 84, "Korean Popular": 41, "Korean Society": 309, "Korean Tradition": 222,
    "Functional": 133, "Grammar": 232, "Textual": 285,
}  # fmt: skip


def test_real_release_counts(shared_datasets: Path):
    task = get_task("click", data_dir=shared_datasets / "click")
    items = task.items()
    assert len(items) == 1995
    assert Counter(it.subset["category"] for it in items) == {"culture": 1345, "language": 650}
    assert Counter(it.subset["subcategory"] for it in items) == SUBCATEGORY_COUNTS
    five = [it for it in items if len(it.options) == 5]
    assert len(five) == 256 and all(it.subset["source"] == "CSAT" for it in five)
    assert sum(it.correct == [4] for it in five) == 49  # golds lm-evaluation-harness never shows
    for it in five:
        text = task.render(it, Variant(), Mode.LETTER).messages[-1].content
        assert all(f"\n{c}. " in text for c in "ABCDE") and "보기 A, B, C, D, E 가운데" in text
    assert sum(it.context is not None for it in items) == 1995 - 1642


def test_real_release_through_datasets_root(shared_datasets: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CULTURELENS_CLICK_DIR", raising=False)
    monkeypatch.setenv("CULTURELENS_DATA", str(shared_datasets))
    assert len(get_task("click").items()) == 1995


def test_real_release_cli_run(shared_datasets: Path, tmp_path: Path):
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        ["run", "--task", "click", "--data-dir", str(shared_datasets / "click"), "--model", "fake:hash",
         "--limit", "40", "--cache", str(tmp_path / "c.sqlite"), "--out", str(out), "--no-report", "-q"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    t = json.loads((out / "results.json").read_text(encoding="utf-8"))["tasks"]["click"]
    assert t["n"] == 40 and len(t["by"]["subset:subcategory"]) == 11
    samples = _samples(out)
    five = [s for s in samples if len(s["options"]) == 5]
    assert five and all(s["targets"][-1].strip() == "E" and "\nE. " in s["prompt"] for s in five)
    assert all(
        "\nE. " not in s["prompt"] and len(s["targets"]) == 4 for s in samples if len(s["options"]) == 4
    )
    assert t["metrics"]["acc"]["mean"] == pytest.approx(sum(s["metrics"]["acc"] for s in samples) / 40)


# --- agreement with lm-evaluation-harness's CLIcK task on fixed predictions -------------------------------
def _fixed_prediction(key: str, n: int) -> int:
    """The prediction rule recorded in the reference fixture."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % n


def test_agreement_with_lm_eval_harness_click(shared_datasets: Path):
    """``harness_reference.json`` was made outside this repository by running lm-evaluation-harness's
    CLIcK task functions (gold letter, scored letters, sub-task filters, size-weighted groups) on the
    release with the fixed predictions of :func:`_fixed_prediction`; culturelens must agree item by item."""
    ref = json.loads(REFERENCE.read_text(encoding="utf-8"))
    task = get_task("click", data_dir=shared_datasets / "click")
    items = task.items()
    assert ref["n_docs"] == len(items)
    ours: dict[str, int] = {}
    scores = []
    for it in items:
        key = f"{Path(it.metadata['file']).stem}:{it.metadata['row']}"
        prompt = task.render(it, Variant(), Mode.LETTER)
        pred = _fixed_prediction(key, len(prompt.labels))
        s = task.score(
            it, prompt, Response(logprobs=[0.0 if k == pred else -30.0 for k in range(len(prompt.labels))])
        )
        assert s.prediction == pred
        ours[key] = int(s.metrics["acc"])
        scores.append(s)
    assert ours == ref["per_item_correct"]
    extra = task.extra_metrics({it.id: it for it in items}, scores)
    overall = sum(ours.values()) / len(ours)
    assert overall == pytest.approx(ref["groups"]["click"]["acc"])
    for group, name in (("culture", "click_cul"), ("language", "click_lang")):
        assert extra["groups"][group]["acc"] == pytest.approx(ref["groups"][name]["acc"])
        assert extra["groups"][group]["n"] == ref["groups"][name]["n"]
    # sub-categories: the harness picks them by id pattern; all agree with the folders but one
    # Functional_CSAT record (id CSAT_korean_13_11, which Grammar_CSAT also uses) filed under grammar
    harness_name = {
        "Korean Economy": "click_cul_economy", "Korean Geography": "click_cul_geography",
        "Korean History": "click_cul_history", "Korean Law": "click_cul_law",
        "Korean Politics": "click_cul_politics", "Korean Popular": "click_cul_kpop",
        "Korean Society": "click_cul_society", "Korean Tradition": "click_cul_tradition",
        "Functional": "click_lang_function", "Grammar": "click_lang_grammar", "Textual": "click_lang_text",
    }  # fmt: skip
    misfiled = [
        it
        for it in items
        if it.metadata["file"].endswith("Functional_CSAT.json")
        and it.metadata["click_id"] == "CSAT_korean_13_11"
    ]
    assert len(misfiled) == 1
    moved = f"{Path(misfiled[0].metadata['file']).stem}:{misfiled[0].metadata['row']}"
    per_sub: dict[str, list[int]] = defaultdict(list)
    for it in items:
        key = f"{Path(it.metadata['file']).stem}:{it.metadata['row']}"
        sub = "Grammar" if key == moved else it.subset["subcategory"]
        per_sub[harness_name[sub]].append(ours[key])
    for name, accs in per_sub.items():
        assert (len(accs), sum(accs)) == (ref["subtasks"][name]["n"], ref["subtasks"][name]["correct"]), name


@pytest.mark.slow
def test_real_model_small_slice(shared_datasets: Path, tmp_path: Path):
    pytest.importorskip("llama_cpp")
    cfg = RunConfig(
        tasks=["click"],
        data_dir=str(shared_datasets / "click"),
        limit=5,
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
    )
    res = Runner(cfg).run()
    t = res.results["tasks"]["click"]
    assert t["n"] == 5 and t["modes"] == ["letter"] and len(t["by"]["subset:subcategory"]) == 5
    for s in _samples(res.run_dir):
        assert s["valid"] and sum(s["probs"]) == pytest.approx(1.0) and s["metrics"]["label_mass"] > 0.0
        assert len(s["probs"]) == len(s["options"]) == len(s["targets"])
        assert s["prompt"].rstrip().endswith("정답:")
