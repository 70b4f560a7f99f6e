"""Global-MMLU (-Lite): loader on our own fixture rows (CSV and parquet), CS/CA split and gap,
rank agreement between runs, pipeline runs."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from culturelens.backends.fake import FakeBackend
from culturelens.render import RenderError
from culturelens.runner import RunConfig, Runner
from culturelens.schema import Mode, Score, Variant
from culturelens.tasks.base import DatasetError, get_task
from culturelens.tasks.global_mmlu import CS_KEY, parse_country, subset_rank_agreement

FIXTURE = Path(__file__).parent / "fixtures" / "global_mmlu"


def _rows(lang: str, split: str = "test") -> list[dict[str, str]]:
    with (FIXTURE / lang / f"{split}.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _label(raw: str) -> str:
    return raw if raw in ("CS", "CA") else "unlabelled"


def test_loader_languages_subsets_countries():
    items = get_task("global_mmlu", data_dir=FIXTURE).items()
    en, fr = _rows("en"), _rows("fr")
    assert len(items) == len(en) + len(fr)
    assert {it.language for it in items} == {"en", "fr"}
    for lang, rows in (("en", en), ("fr", fr)):
        got = [it for it in items if it.language == lang]
        for it, r in zip(got, rows, strict=True):
            assert it.question == r["question"] and it.options == [r[f"option_{c}"] for c in "abcd"]
            assert it.correct == ["ABCD".index(r["answer"])]
            assert it.subset == {CS_KEY: _label(r["cultural_sensitivity_label"])}
            assert it.topic == r["subject_category"] and it.group == r["sample_id"]
            assert it.metadata["subject"] == r["subject"]
    countries = {it.metadata["sample_id"]: it.country for it in items if it.language == "en"}
    assert countries["high_school_geography/test/1"].name == "Japan"
    assert countries["us_foreign_policy/test/2"].name == "United States"  # "United States of America (USA)"
    assert countries["prehistory/test/3"].name == "France"  # two annotators, one country
    assert countries["elementary_mathematics/test/4"] is None


def test_parse_country():
    assert parse_country("['France', 'Germany']") is None  # several countries: not one
    assert parse_country("Japan").name == "Japan"
    assert parse_country("") is None and parse_country("[]") is None and parse_country("-") is None
    assert parse_country("['Atlantis']") is None
    assert parse_country("['United Kingdom (UK)', 'UK']").name == "United Kingdom"


def test_lang_option_and_lite(tmp_path: Path):
    fr = get_task("global_mmlu", data_dir=FIXTURE, lang="fr").items()
    assert {it.language for it in fr} == {"fr"} and len(fr) == len(_rows("fr"))
    both = get_task("global_mmlu_lite", data_dir=FIXTURE, lang=["en", "fr"]).items()
    assert len(both) == len(_rows("en")) + len(_rows("fr")) and both[0].task == "global_mmlu_lite"
    with pytest.raises(DatasetError, match="no test file for language 'de'"):
        get_task("global_mmlu", data_dir=FIXTURE, lang="en,de").items()
    # a shared data root with one folder per release
    shutil.copytree(FIXTURE / "fr", tmp_path / "global_mmlu_lite" / "fr")
    lite = get_task("global_mmlu_lite", data_dir=tmp_path).items()
    assert {it.language for it in lite} == {"fr"}


def test_limit_spreads_over_languages_and_subsets():
    items = get_task("global_mmlu", data_dir=FIXTURE).items(limit=6)
    assert len(items) == 6
    assert {(it.language, it.subset[CS_KEY]) for it in items} == {
        (lang, lab) for lang in ("en", "fr") for lab in ("CS", "CA", "unlabelled")
    }


def test_parquet_release_layout(tmp_path: Path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    for lang in ("en", "fr"):
        for split in ("test", "dev"):
            rows = _rows(lang, split)
            for r in rows:
                r["is_annotated"] = r["is_annotated"] == "True"  # a real bool column, as on HF
                r["country"] = r["country"] or None
            (tmp_path / lang).mkdir(exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows), tmp_path / lang / f"{split}-00000-of-00001.parquet")
    from_parquet = get_task("global_mmlu", data_dir=tmp_path).items()
    from_csv = get_task("global_mmlu", data_dir=FIXTURE).items()
    assert [it.model_dump() for it in from_parquet] == [it.model_dump() for it in from_csv]
    assert len(get_task("global_mmlu", data_dir=tmp_path).fewshot_pool()) == len(_rows("en", "dev")) * 2


def _write(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns or list(rows[0]), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.mark.parametrize(
    ("mutate", "row", "field", "match"),
    [  # row numbers as a spreadsheet shows them: the header is row 1
        (lambda r: r[2].update({"answer": "E"}), 4, "answer", "not one of A, B, C, D"),
        (
            lambda r: r[4].update({"cultural_sensitivity_label": "XX"}),
            6,
            "cultural_sensitivity_label",
            "CS / CA",
        ),
        (lambda r: r[1].update({"question": ""}), 3, "question", "empty value"),
        (lambda r: r[6].update({"sample_id": r[0]["sample_id"]}), 8, "sample_id", "duplicate"),
    ],
)
def test_malformed_rows_name_file_row_field(tmp_path: Path, mutate, row, field, match):
    rows = _rows("fr")
    mutate(rows)
    shutil.copytree(FIXTURE / "en", tmp_path / "en")
    path = _write(tmp_path / "fr" / "test.csv", rows)
    with pytest.raises(DatasetError, match=match) as exc:
        get_task("global_mmlu", data_dir=tmp_path).items()
    assert (exc.value.file, exc.value.row, exc.value.field) == (str(path), row, field)
    assert "test.csv" in str(exc.value) and f"row {row}" in str(exc.value)


def test_missing_column_and_empty_folder(tmp_path: Path):
    rows = _rows("en")
    _write(tmp_path / "en" / "test.csv", rows, [c for c in rows[0] if c != "answer"])
    with pytest.raises(DatasetError, match="missing column") as exc:
        get_task("global_mmlu", data_dir=tmp_path).items()
    assert exc.value.field == "answer"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no <lang>/test"):
        get_task("global_mmlu", data_dir=empty).items()


def test_offline_without_data_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    hub = pytest.importorskip("huggingface_hub")
    for var in ("CULTURELENS_GLOBAL_MMLU_LITE_DIR", "CULTURELENS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CULTURELENS_DATA_CACHE", str(tmp_path / "cache"))

    def no_network(**kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(hub, "hf_hub_download", no_network)
    with pytest.raises(DatasetError, match="--data-dir") as exc:
        get_task("global_mmlu_lite", lang="sw").items()
    assert "sw/test-00000-of-00001.parquet" in str(exc.value) and "Global-MMLU-Lite" in str(exc.value)
    with pytest.raises(DatasetError, match="unknown language 'xx'"):
        get_task("global_mmlu_lite", lang="xx").items()


def test_mmlu_prompt_and_few_shot():
    task = get_task("global_mmlu", data_dir=FIXTURE)
    items = task.items()
    item = next(it for it in items if it.language == "fr" and it.metadata["subject"] == "marketing")
    prompt = task.render(item, Variant(), Mode.LETTER)
    o = item.options
    assert prompt.messages[-1].content == f"{item.question}\nA. {o[0]}\nB. {o[1]}\nC. {o[2]}\nD. {o[3]}"
    assert prompt.assistant_prefix == "Answer:" and prompt.variant == Variant()
    pool = task.fewshot_pool()
    shot = task.render(item, Variant(few_shot=1), Mode.LETTER, pool)
    # one French dev example of the same subject, answered with its letter
    dev = next(r for r in _rows("fr", "dev") if r["subject"] == "marketing")
    assert (
        shot.messages[0].content.startswith(dev["question"])
        and shot.messages[1].content == f"Answer: {dev['answer']}"
    )
    with pytest.raises(RenderError, match="dev split"):
        task.render(item, Variant(few_shot=5), Mode.LETTER, pool)


def _fake_scores(items, acc_of) -> list[Score]:
    return [
        Score(
            item_id=it.id,
            task=it.task,
            variant="default",
            mode=Mode.LETTER,
            metrics={"acc": acc_of(it)},
            prediction=0,
        )
        for it in items
    ]


def test_cs_ca_split_and_gap():
    task = get_task("global_mmlu", data_dir=FIXTURE)
    items = task.items()
    en_cs = [it.id for it in items if it.language == "en" and it.subset[CS_KEY] == "CS"]
    en_ca = [it.id for it in items if it.language == "en" and it.subset[CS_KEY] == "CA"]
    assert len(en_cs) == 3 and len(en_ca) == 3

    # en: CS 2/3 right, CA 1/3 right; fr: everything right
    def acc(it):
        if it.language == "fr":
            return 1.0
        if it.id in en_cs:
            return 0.0 if it.id == en_cs[0] else 1.0
        if it.id in en_ca:
            return 1.0 if it.id == en_ca[0] else 0.0
        return 1.0

    extra = task.extra_metrics({it.id: it for it in items}, _fake_scores(items, acc))["cs_ca"]
    en = extra["by_language"]["en"]
    assert (en["cs"], en["ca"], en["n_cs"], en["n_ca"]) == (pytest.approx(2 / 3), pytest.approx(1 / 3), 3, 3)
    assert en["gap"] == pytest.approx(1 / 3) and en["ci"][0] <= en["gap"] <= en["ci"][1]
    assert extra["by_language"]["fr"]["gap"] == 0.0
    assert extra["overall"]["cs"] == pytest.approx(5 / 6) and extra["overall"]["gap"] == pytest.approx(1 / 6)


def _results(model: str, cs: float, ca: float, by_lang: dict[str, tuple[float, float]] | None = None) -> dict:
    by_lang = by_lang or {"en": (cs, ca)}
    return {
        "model": {"backend": "fake", "model": model},
        "tasks": {
            "global_mmlu_lite": {
                "extra": {
                    "cs_ca": {
                        "overall": {"cs": cs, "ca": ca},
                        "by_language": {lang: {"cs": a, "ca": b} for lang, (a, b) in by_lang.items()},
                    }
                }
            }
        },
    }


def test_subset_rank_agreement_constructed():
    runs = [_results("A", 0.8, 0.5), _results("B", 0.6, 0.7), _results("C", 0.4, 0.6)]
    out = subset_rank_agreement(runs)
    ov = out["overall"]
    assert out["task"] == "global_mmlu_lite" and out["models"] == ["A", "B", "C"]
    assert ov["rank_cs"] == ["A", "B", "C"] and ov["rank_ca"] == ["B", "C", "A"] and ov["rankings_differ"]
    # pairs: (A,B) discordant, (A,C) discordant, (B,C) concordant -> tau = (1 - 2) / 3
    assert ov["kendall_tau"] == pytest.approx(-1 / 3)
    same = subset_rank_agreement([_results("A", 0.8, 0.7), _results("B", 0.6, 0.5)])
    assert same["overall"]["kendall_tau"] == pytest.approx(1.0) and not same["overall"]["rankings_differ"]
    with pytest.raises(ValueError, match="at least two"):
        subset_rank_agreement(runs[:1])


def test_pipeline_with_fake_backends_and_rank_agreement(tmp_path: Path):
    rows = _rows("en") + _rows("fr")
    results = []
    for policy in ("first", "last"):
        cfg = RunConfig(
            model=f"fake:{policy}",
            tasks=["global_mmlu"],
            data_dir=str(FIXTURE),
            out=str(tmp_path / policy),
            cache=str(tmp_path / "c.sqlite"),
            n_boot=50,
        )
        res = Runner(cfg, backend=FakeBackend(policy)).run()
        t = res.results["tasks"]["global_mmlu"]
        letter = "A" if policy == "first" else "D"
        assert t["n"] == len(rows) and set(t["by"]["language"]) == {"en", "fr"}
        for lab in ("CS", "CA", "unlabelled"):
            sub = [r for r in rows if _label(r["cultural_sensitivity_label"]) == lab]
            got = t["by"][f"subset:{CS_KEY}"][lab]["metrics"]["acc"]["mean"]
            assert got == pytest.approx(sum(r["answer"] == letter for r in sub) / len(sub))
        assert t["metrics"]["acc"]["clusters"] == len(
            _rows("en")
        )  # a question and its translation resample together
        results.append(res.run_dir)
    out = subset_rank_agreement(results)  # run folders work too
    assert out["task"] == "global_mmlu" and out["models"] == ["fake-first", "fake-last"]
    first = json.loads((results[0] / "results.json").read_text())["tasks"]["global_mmlu"]["extra"]["cs_ca"]
    assert out["overall"]["cs"]["fake-first"] == first["overall"]["cs"]
    assert set(out["by_language"]) == {"en", "fr"}


@pytest.mark.slow
def test_real_embedded_model_on_fixture(tmp_path: Path):
    pytest.importorskip("llama_cpp")
    cfg = RunConfig(
        model="default",
        tasks=["global_mmlu"],
        data_dir=str(FIXTURE),
        limit=6,
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
    )
    res = Runner(cfg).run()
    t = res.results["tasks"]["global_mmlu"]
    assert t["n"] == 6 and set(t["by"]["language"]) == {"en", "fr"}
    assert set(t["by"][f"subset:{CS_KEY}"]) == {"CS", "CA", "unlabelled"}
    samples = [json.loads(x) for x in (res.run_dir / "samples.jsonl").read_text().splitlines()]
    for s in samples:
        assert "\nA. " in s["prompt"] and "\nD. " in s["prompt"] and s["prompt"].rstrip().endswith("Answer:")
        assert s["valid"] and sum(s["probs"]) == pytest.approx(1.0) and s["metrics"]["label_mass"] > 0.0
    assert set(t["extra"]["cs_ca"]["by_language"]) == {"en", "fr"}
