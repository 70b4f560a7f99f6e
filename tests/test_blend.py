"""BLEnD short-answer and multiple-choice tasks: loading, the paper's scoring rules, download errors."""

from __future__ import annotations

import csv
import json
import shutil
import sys
import types
from pathlib import Path

import pytest

from culturelens import download, lemmatize
from culturelens.backends.fake import FakeBackend
from culturelens.runner import RunConfig, Runner
from culturelens.schema import GoldAnswer, Mode, Response, Variant
from culturelens.tasks import blend as blend_mod
from culturelens.tasks.base import DatasetError, get_task
from culturelens.tasks.blend import clean_response, match_answers, parse_mc_answer

FIX = Path(__file__).parent / "fixtures" / "blend"


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "blend"
    shutil.copytree(FIX, dst)
    return dst


def _score(task, item, text: str, variant: Variant | None = None):
    prompt = task.render(item, variant or Variant(), task.default_mode)
    return task.score(item, prompt, Response(text=text))


# --- loading the fixture ---------------------------------------------------------------------------
def test_fixture_items_prompts_and_skip_rule_boundaries():
    task = get_task("blend", data_dir=FIX)
    items = {it.id: it for it in task.items()}
    # US: us-02 (no-answer + n/a = 2) and us-04 (idk = 4) are kept; us-03 (= 3), us-05 (idk = 5),
    # us-06 (no annotations) are skipped. US has only the English ("local") version.
    us_q = sorted({it.metadata["question_id"] for it in items.values() if it.metadata["region"] == "US"})
    assert us_q == ["us-01", "us-02", "us-04"]
    assert task.skipped["US"] == {
        "questions": 6, "valid": 3, "skipped": 3, "skipped_no_answer_or_not_applicable": 1,
        "skipped_idk": 1, "skipped_no_annotations": 1,
    }  # fmt: skip
    assert len(items) == 3 * 2 + 2 * 2 * 2
    kr = items["South_Korea/kr-01/local/inst-4"]
    assert kr.language == "ko" and kr.country.name == "South Korea" and kr.topic == "Food"
    assert kr.subset == {"language_variant": "local", "prompt": "inst-4", "region": "South Korea"}
    assert kr.group == "South_Korea/kr-01"
    assert [a.count for a in kr.answers] == [3, 2]
    en = items["South_Korea/kr-01/en/pers-3"]
    assert en.language == "en" and en.question == "What food is commonly eaten in winter in South Korea?"
    # the prompt text comes from the release file, only {q} is filled
    rows = {
        r["id"]: r
        for r in csv.DictReader((FIX / "data/prompts/South_Korea_prompts.csv").open(encoding="utf-8"))
    }
    p_local = task.render(kr, Variant(), Mode.GENERATE)
    assert p_local.messages[-1].content == rows["inst-4"]["Translation"].replace("{q}", kr.question)
    assert p_local.variant == Variant() and p_local.mode is Mode.GENERATE
    p_en = task.render(en, Variant(), Mode.GENERATE)
    assert p_en.messages[-1].content == rows["pers-3"]["English"].replace("{q}", en.question)


def test_extra_metrics_report_skips_and_paper_table(tmp_path: Path):
    cfg = RunConfig(
        model="fake:first",
        tasks=["blend"],
        data_dir=str(FIX),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
    )
    backend = FakeBackend("first", generate_text="Answer: Fruit.")
    res = Runner(cfg, backend=backend).run()
    t = res.results["tasks"]["blend"]
    assert t["extra"]["skipped"]["US"]["skipped"] == 3
    us = t["extra"]["by_region_language_prompt"]["US"]
    # "fruit" is the top cluster of us-01 only: 1 of the 3 valid US questions per prompt
    assert us["local/inst-4"]["binary"] == pytest.approx(1 / 3)
    assert us["local/inst-4"]["weighted"] == pytest.approx(1 / 3)
    assert set(t["by"]["country"]) == {"United States", "South Korea"}
    assert set(t["by"]["subset:language_variant"]) == {"local", "en"}


# --- scoring rules ---------------------------------------------------------------------------------------
def test_lemmatised_low_count_answer_scores_binary_and_lower_weight():
    answers = [
        GoldAnswer(texts=["fruit"], en_texts=["fruit"], count=3),
        GoldAnswer(texts=["peanut butter sandwiches"], en_texts=["peanut butter sandwiches"], count=1),
    ]
    resp = clean_response("Answer: A peanut butter sandwich.", "Question: ...\nAnswer:")
    assert resp == "a peanut butter sandwich"
    assert not lemmatize.substring_match("peanut butter sandwiches", resp)  # only the lemma test can match
    binary, weighted, idx = match_answers(resp, answers, "en")
    assert (binary, weighted, idx) == (1.0, pytest.approx(1 / 3), 1)
    assert match_answers("rice", answers, "en")[:2] == (0.0, 0.0)


def test_clusters_are_tried_in_vote_order():
    answers = [
        GoldAnswer(texts=["coffee"], en_texts=["coffee"], count=2),
        GoldAnswer(texts=["orange juice"], en_texts=["orange juice"], count=1),
    ]
    # both mentioned: the higher-voted cluster wins, full weight
    assert match_answers("orange juice or coffee", answers, "en")[1:] == (1.0, 0)


def test_local_variants_tried_before_english_and_english_items_skip_local(monkeypatch):
    calls: list[tuple[str, str]] = []
    real = blend_mod.lemma_match

    def spy(answer, response, lang):
        calls.append((answer, lang))
        return real(answer, response, lang)

    monkeypatch.setattr(blend_mod, "lemma_match", spy)
    answers = [
        GoldAnswer(texts=["김치 찌개", "김치찌개"], en_texts=["kimchi stew"], count=3),
        GoldAnswer(texts=["떡국"], en_texts=["rice cake soup"], count=2),
    ]
    assert match_answers("떡국이요", answers, "ko")[:2] == (1.0, pytest.approx(2 / 3))
    assert calls == [("김치 찌개", "ko"), ("김치찌개", "ko"), ("kimchi stew", "en"), ("떡국", "ko")]
    calls.clear()
    # an English-prompt item tries English variants only (the official code passes the response language)
    assert match_answers("떡국", answers, "en")[0] == 0.0
    assert [lang for _, lang in calls] == ["en", "en"]
    # an English answer to a local-language prompt still counts through the English variants
    assert match_answers("kimchi stew", answers, "ko")[:2] == (1.0, 1.0)


def test_korean_particles_and_token_subset():
    # substring fails (different order, particles attached); token test after josa stripping matches
    assert lemmatize.lemma_match("김치 찌개", "찌개와 김치를 먹어요", "ko")
    assert not lemmatize.lemma_match("김치 찌개", "된장 찌개를 먹어요", "ko")


def test_hyphen_space_swaps_and_accents():
    assert lemmatize.substring_match("ice-cream", "we like ice cream")
    assert lemmatize.substring_match("fish and chips", "fish-and-chips")
    # NFD + combining acute removed on both sides of the token test
    assert lemmatize.lemma_match("maíz tostado", "tostado de maiz", "es")


def test_chinese_without_segmenter(monkeypatch):
    monkeypatch.setattr(lemmatize, "_jieba_cut", lambda text: None)
    lemmatize.analyse.cache_clear()
    try:
        assert not lemmatize.lemma_match("红烧肉", "红烧的肉", "zh", official=False)
        assert lemmatize.lemma_match(
            "红烧 肉", "我喜欢红烧的肉", "zh", official=False
        )  # each answer segment is a substring
    finally:
        lemmatize.analyse.cache_clear()


def test_chinese_with_jieba_installed(monkeypatch):
    fake = types.ModuleType("jieba")
    fake.cut = lambda s: [w for w in ("我", "喜欢", "红烧", "的", "肉") if w in s]  # toy segmenter
    monkeypatch.setitem(sys.modules, "jieba", fake)
    lemmatize.analyse.cache_clear()
    try:
        assert lemmatize.lemma_match(
            "红烧肉", "我喜欢红烧的肉", "zh", official=False
        )  # segments 红烧 + 肉 are response words
        assert not lemmatize.lemma_match("红烧肉", "我喜欢的", "zh", official=False)
    finally:
        lemmatize.analyse.cache_clear()


def test_clean_response_rules():
    prompt = "질문: 무엇?\n답변:"
    assert clean_response("답변: 김치。", prompt) == "김치"
    assert clean_response("Note: rice", "Question: x\nAnswer:") == "note: rice"  # word not in the prompt
    assert clean_response("答案： 饺子。", "问题: x\n答案：") == "饺子"  # full-width colon and period
    assert clean_response("答案：饺子", "问题: x\n答案：") == "答案:饺子"  # official regex needs a space
    assert clean_response("Q? Answer: Tea", "Q? Answer:") == "tea"  # echoed prompt removed
    assert clean_response("...Tea...", "x") == "tea"


def test_empty_annotation_string_never_matches():
    answers = [GoldAnswer(texts=[""], en_texts=[""], count=2)]
    assert match_answers("anything at all", answers, "es")[0] == 0.0


def test_task_score_end_to_end_on_one_item():
    task = get_task("blend", data_dir=FIX)
    items = {it.id: it for it in task.items()}
    item = items["US/us-01/local/inst-4"]
    s = _score(task, item, "Answer: Peanut butter sandwich")
    assert s.metrics == {"binary": 1.0, "weighted": pytest.approx(1 / 3)} and s.valid
    s = _score(task, item, "")
    assert s.metrics == {"binary": 0.0, "weighted": 0.0} and not s.valid
    kr = items["South_Korea/kr-02/en/inst-4"]
    assert _score(task, kr, "Answer: a cram school.").metrics["weighted"] == 1.0
    assert _score(task, kr, "Answer: the library").metrics["weighted"] == pytest.approx(1 / 5)


# --- malformed files --------------------------------------------------------------------------------------
def test_bad_count_names_file_row_and_field(fixture_copy: Path):
    path = fixture_copy / "data/annotations/US_data.json"
    data = json.loads(path.read_text())
    data["us-02"]["annotations"][0]["count"] = "four"
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError) as exc:
        get_task("blend", data_dir=fixture_copy).items()
    e = exc.value
    assert e.file.endswith("US_data.json") and e.row == "us-02" and e.field == "annotations[0].count"


def test_missing_idk_field(fixture_copy: Path):
    path = fixture_copy / "data/annotations/South_Korea_data.json"
    data = json.loads(path.read_text())
    del data["kr-02"]["idks"]["not-applicable"]
    path.write_text(json.dumps(data, ensure_ascii=False))
    with pytest.raises(DatasetError) as exc:
        get_task("blend", data_dir=fixture_copy).items()
    assert (exc.value.row, exc.value.field) == ("kr-02", "idks.not-applicable")


def test_prompt_without_slot_and_missing_topic(fixture_copy: Path):
    path = fixture_copy / "data/prompts/US_prompts.csv"
    path.write_text(
        path.read_text(encoding="utf-8").replace("Question: {q}\nAnswer:", "Question:\nAnswer:"),
        encoding="utf-8",
    )
    with pytest.raises(DatasetError) as exc:
        get_task("blend", data_dir=fixture_copy).items()
    assert exc.value.file.endswith("US_prompts.csv") and exc.value.row == 3 and exc.value.field == "English"
    shutil.copy(FIX / "data/prompts/US_prompts.csv", path)
    qpath = fixture_copy / "data/questions/US_questions.csv"
    rows = list(csv.reader(qpath.open(encoding="utf-8")))
    rows[2][2] = ""  # Topic of the second question (row 3 counting the header)
    with qpath.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(DatasetError) as exc:
        get_task("blend", data_dir=fixture_copy).items()
    assert exc.value.file.endswith("US_questions.csv") and exc.value.row == 3 and exc.value.field == "Topic"
    assert "US_questions.csv, row 3, field 'Topic'" in str(exc.value)


def test_missing_question_row_and_missing_column(fixture_copy: Path):
    qpath = fixture_copy / "data/questions/South_Korea_questions.csv"
    lines = qpath.read_text(encoding="utf-8").splitlines(keepends=True)
    qpath.write_text("".join(lines[:2]), encoding="utf-8")  # drop kr-02
    with pytest.raises(DatasetError, match="kr-02") as exc:
        get_task("blend", data_dir=fixture_copy).items()
    assert exc.value.field == "ID"
    qpath.write_text(lines[0].replace("Topic", "Theme") + "".join(lines[1:]), encoding="utf-8")
    with pytest.raises(DatasetError) as exc:
        get_task("blend", data_dir=fixture_copy).items()
    assert (exc.value.row, exc.value.field) == (1, "Topic")


def test_offline_without_data_dir_is_one_clear_line(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("CULTURELENS_BLEND_DIR", raising=False)
    monkeypatch.setenv("CULTURELENS_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CULTURELENS_OFFLINE", "1")
    for name in ("blend", "blend_mc"):
        with pytest.raises(DatasetError) as exc:
            get_task(name).items()
        msg = str(exc.value)
        assert "--data-dir" in msg and "\n" not in msg


def test_env_var_and_bad_path(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("CULTURELENS_BLEND_DIR", str(FIX))
    assert len(get_task("blend").items()) == 14
    with pytest.raises(DatasetError, match="does not exist"):
        get_task("blend", data_dir=tmp_path / "nope").items()


def test_fetch_url_uses_cache_without_network(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("CULTURELENS_DATA_CACHE", str(tmp_path))
    monkeypatch.setenv("CULTURELENS_OFFLINE", "1")
    cached = tmp_path / "url" / "blend" / "x.csv"
    cached.parent.mkdir(parents=True)
    cached.write_text("a,b\n")
    assert download.fetch_url("https://example.invalid/x.csv", "blend/x.csv") == cached
    with pytest.raises(DatasetError, match="--data-dir"):
        download.fetch_url("https://example.invalid/y.csv", "blend/y.csv")


# --- multiple choice --------------------------------------------------------------------------------------
def test_mc_default_render_reproduces_release_prompt_and_scores():
    task = get_task("blend_mc", data_dir=FIX)
    items = task.items()
    assert [it.id for it in items] == ["us-01_US_0", "kr-02_South_Korea_0", "kr-02_South_Korea_1"]
    rows = list(csv.DictReader((FIX / "evaluation/mc_data/mc_questions_file-1.csv").open(encoding="utf-8")))
    for it, row in zip(items, rows, strict=True):
        p = task.render(it, Variant(), Mode.GENERATE)
        assert p.messages[-1].content == row["prompt"]
    kr = items[1]
    assert kr.country.name == "South Korea" and kr.correct == [2] and kr.topic == "Education"
    p = task.render(kr, Variant(), Mode.GENERATE)
    assert task.score(kr, p, Response(text='{"answer_choice": "C"}')).metrics["acc"] == 1.0
    assert task.score(kr, p, Response(text='{"answer_choice": "private academy"}')).metrics["acc"] == 1.0
    assert task.score(kr, p, Response(text="B")).metrics["acc"] == 0.0
    # the official fallback takes the first capital letter of a non-JSON reply
    assert task.score(kr, p, Response(text="C. private academy")).prediction == 2
    bad = task.score(kr, p, Response(text="no idea"))
    assert not bad.valid and bad.metrics["acc"] == 0.0
    # reversed order: the gold option is shown as B
    pr = task.render(kr, Variant(option_order="reversed"), Mode.GENERATE)
    assert "B. private academy\n" in pr.messages[-1].content
    assert task.score(kr, pr, Response(text='{"answer_choice":"B"}')).metrics["acc"] == 1.0


def test_parse_mc_answer_value_lookup():
    labels, opts = ["A", "B"], ["tea", "coffee"]
    assert parse_mc_answer('{"answer_choice":"coffee"}', "A. tea\nB. coffee\n", labels, opts) == "B"
    assert parse_mc_answer('```json\n{"answer_choice": "A"}\n```', "A. tea\nB. coffee\n", labels, opts) == "A"


def test_mc_letter_mode_runs_with_json_prefix(tmp_path: Path):
    cfg = RunConfig(
        model="fake:first",
        tasks=["blend_mc"],
        data_dir=str(FIX),
        mode=Mode.LETTER,
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
    )
    res = Runner(cfg, backend=FakeBackend("first")).run()
    t = res.results["tasks"]["blend_mc"]
    assert t["metrics"]["acc"]["mean"] == pytest.approx(1 / 3)  # "first" always picks A; only us-01 is A
    task = get_task("blend_mc", data_dir=FIX)
    assert task.render(task.items()[0], Variant(), Mode.LETTER).assistant_prefix == '{"answer_choice":"'


def test_mc_malformed_answer_and_choices(fixture_copy: Path):
    path = fixture_copy / "evaluation/mc_data/mc_questions_file-1.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    fields = list(rows[0])

    def write(rs):
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            w.writerows(rs)

    write([rows[0], {**rows[1], "answer_idx": "E"}, rows[2]])
    with pytest.raises(DatasetError) as exc:
        get_task("blend_mc", data_dir=fixture_copy).items()
    assert (exc.value.row, exc.value.field) == (3, "answer_idx") and exc.value.file.endswith(
        "mc_questions_file-1.csv"
    )
    write([rows[0], rows[1], {**rows[2], "choices": "[1, 2]"}])
    with pytest.raises(DatasetError) as exc:
        get_task("blend_mc", data_dir=fixture_copy).items()
    assert (exc.value.row, exc.value.field) == (4, "choices")


# --- the real release ---------------------------------------------------------------------------------------
def test_real_release_counts(shared_datasets: Path):
    root = shared_datasets / "blend"
    task = get_task("blend", data_dir=root)
    items = task.items()
    assert len(task.skipped) == 16
    expected_items = 0
    for path in sorted((root / "data/annotations").glob("*_data.json")):
        stem = path.name[: -len("_data.json")]
        region, lang = blend_mod.REGIONS[stem]
        raw = json.loads(path.read_text(encoding="utf-8"))
        assert len(raw) == 500 and task.skipped[region]["questions"] == 500
        skipped = sum(
            1 for v in raw.values()
            if v["idks"]["no-answer"] + v["idks"]["not-applicable"] >= 3 or v["idks"]["idk"] >= 5 or not v["annotations"]
        )  # fmt: skip
        assert task.skipped[region]["skipped"] == skipped
        valid = 500 - skipped
        expected_items += valid * 2 * (1 if lang == "en" else 2) - 2 * task.skipped[region].get(
            "blank_local_question", 0
        )
    assert len(items) == expected_items
    assert {it.country.name for it in items} >= {
        "India",
        "Indonesia",
        "Nigeria",
        "North Korea",
        "United Kingdom",
    }
    assam = next(it for it in items if it.metadata["region"] == "Assam")
    assert assam.country.subnational == "Assam" and assam.language == "as"
    assert {it.subset["prompt"] for it in items} == {"inst-4", "pers-3"}
    assert all(it.topic for it in items)


def _prompt_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_real_release_prompt_columns_as_the_official_make_prompt(shared_datasets: Path):
    """A repeated prompt id keeps its first row (Azerbaijan lists inst-4 and pers-3 twice, with other
    translations); English questions, UK's included, use the English column unless asked otherwise."""
    root = shared_datasets / "blend"
    prompts = root / "data" / "prompts"
    az = _prompt_rows(prompts / "Azerbaijan_prompts.csv")
    for pid in ("inst-4", "pers-3"):
        rows = [r for r in az if r["id"].strip() == pid]
        assert len(rows) == 2 and rows[0]["Translation"] != rows[1]["Translation"]
        got = blend_mod.read_prompts(prompts / "Azerbaijan_prompts.csv", (pid,))[pid]
        assert (
            got["Translation"] == rows[0]["Translation"].strip()
            or got["Translation"] == rows[0]["Translation"]
        )
    uk = {r["id"].strip(): r for r in _prompt_rows(prompts / "UK_prompts.csv")}
    assert any(uk[p]["English"] != uk[p]["Translation"] for p in ("inst-4", "pers-3"))
    for british, column in ((False, "English"), (True, "Translation")):
        task = get_task("blend", data_dir=root, british_prompts=british)
        items = [it for it in task.items() if it.metadata["region"] == "UK"][:40]
        assert items
        for it in items:
            want = uk[it.subset["prompt"]][column]
            assert it.metadata["prompt_text"].strip() == want.strip()


@pytest.mark.slow
def test_real_model_small_slice(shared_datasets: Path, tmp_path: Path):
    pytest.importorskip("llama_cpp")
    cfg = RunConfig(
        tasks=["blend"],
        data_dir=str(shared_datasets / "blend"),
        limit=8,
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=100,
        task_options={"blend": {"max_tokens": 24}},
    )
    t = Runner(cfg).run().results["tasks"]["blend"]
    assert t["n"] == 8 and t["modes"] == ["generate"]
    for m in ("binary", "weighted"):
        assert 0.0 <= t["metrics"][m]["mean"] <= 1.0
    assert len(t["by"]["country"]) == 2  # two whole questions (local + English x 2 prompts), two regions
    assert all(0.0 <= c["metrics"]["binary"]["mean"] <= 1.0 for c in t["by"]["country"].values())
    assert t["extra"]["skipped"] and t["extra"]["by_region_language_prompt"]
