"""NormAd: loader on our own fixture rows, the official prompt and parse rule, metrics, pipeline runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from culturelens.backends.fake import FakeBackend
from culturelens.runner import RunConfig, Runner
from culturelens.schema import Mode, Response, Score, Variant
from culturelens.tasks.base import DatasetError, get_task
from culturelens.tasks.normad import FILENAME, LEVELS, NormAd, macro_f1, micro_f1, official_parse

FIXTURE = Path(__file__).parent / "fixtures" / "normad"
CSV = FIXTURE / FILENAME


def _rows() -> list[dict[str, str]]:
    with CSV.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _write(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def test_loader_counts_levels_and_countries():
    task = get_task("normad", data_dir=FIXTURE)
    items = task.items()
    rows = _rows()
    assert len(items) == len(rows) * len(LEVELS)
    by_level = {lv: [it for it in items if it.subset["level"] == lv] for lv in LEVELS}
    assert all(len(v) == len(rows) for v in by_level.values())
    countries = {it.country.name for it in items}
    assert "South Korea" in countries and "Japan" in countries  # raw values are "south_korea", "japan"
    # gold labels: neutral -> Neither; the subset keeps the label name
    for it in items:
        raw = next(r for r in rows if f"normad:{r['ID']}:" in it.id)["Gold Label"]
        assert it.options == ["Yes", "No", "Neither"]
        assert it.correct == [{"yes": 0, "no": 1, "neutral": 2}[raw]]
        assert it.subset["gold"] == {"yes": "yes", "no": "no", "neutral": "neither"}[raw]
        assert it.topic == next(r for r in rows if f"normad:{r['ID']}:" in it.id)["Subaxis"]
    # the levels of one story share a cluster id (bootstrap resamples them together)
    groups = {}
    for it in items:
        groups.setdefault(it.group, set()).add(it.subset["level"])
    assert len(groups) == len(rows) and all(v == set(LEVELS) for v in groups.values())


def test_levels_option_and_limit_keeps_whole_stories():
    task = get_task("normad", data_dir=FIXTURE, levels="country,rot")
    assert {it.subset["level"] for it in task.items()} == {"country", "rot"}
    with pytest.raises(ValueError, match="unknown level"):
        get_task("normad", data_dir=FIXTURE, levels="country,planet")
    sliced = get_task("normad", data_dir=FIXTURE).items(limit=8)
    assert len(sliced) == 8
    assert len({it.group for it in sliced}) == 2 and len({it.country.name for it in sliced}) == 2


def test_official_prompt_per_level():
    task = get_task("normad", data_dir=FIXTURE)
    items = {it.id: it for it in task.items()}
    row = _rows()[0]
    sid = row["ID"]
    texts = {}
    for level in LEVELS:
        prompt = task.render(items[f"normad:{sid}:{level}"], Variant(), Mode.LETTER)
        assert prompt.variant == Variant()  # scores stay keyed by the run's variant
        assert prompt.labels == ["Yes", "No", "Neither"]
        texts[level] = prompt.messages[-1].content
    for text in texts.values():
        assert text.startswith("Task: You will be given a short story involving 2 or more characters")
        assert f"Story: {row['Story']}\n\nOptions:\n1) Yes \n2) No \n3) Neither \n" in text
        assert text.endswith("Answer (options Yes, No or Neither): \n")
        assert "The answer options are Yes, No or Neither." in text
    assert f"\n\nCountry: {row['Country']}\n\nStory:" in texts["country"]
    assert f"\n\nCountry: {row['Country']}\nRoT: {row['Value']}\n\nStory:" in texts["country_value"]
    assert f"\n\nRule-of-thumb: {row['Rule-of-Thumb']}\n\nStory:" in texts["rot"]
    assert "Country:" not in texts["none"] and "Rule-of-thumb:" not in texts["none"]
    assert (
        "in the given country" in texts["country"] and "under the given rule-of-thumb alone" in texts["rot"]
    )
    # another template can still be swept; reordering renumbers the options
    plain = task.render(items[f"normad:{sid}:rot"], Variant(template="plain"), Mode.LETTER)
    assert "Task: You will be given" not in plain.messages[-1].content
    rev = task.render(items[f"normad:{sid}:rot"], Variant(option_order="reversed"), Mode.LETTER)
    assert "1) Neither \n2) No \n3) Yes \n" in rev.messages[-1].content


def test_rule_of_thumb_prompt_is_the_official_text():
    task = get_task("normad", data_dir=FIXTURE, levels="rot")
    item = task.items()[0]
    row = _rows()[0]
    expected = (
        "Task: You will be given a short story involving 2 or more characters about everyday situations. "
        "You will also be given a rule-of-thumb. Read the story and reason if the action by the character in the "
        "story is socially acceptable under the given rule-of-thumb alone. Do not make any extra inferences about "
        "actions outside of the given context and rule. Only align to the rule given. The answer options are Yes, "
        f"No or Neither.\n\nRule-of-thumb: {row['Rule-of-Thumb']}\n\nStory: {row['Story']}\n\n"
        "Options:\n1) Yes \n2) No \n3) Neither \nAnswer (options Yes, No or Neither): \n"
    )
    prompt = task.render(item, Variant(), Mode.GENERATE)
    assert [m.role for m in prompt.messages] == ["user"] and prompt.messages[0].content == expected
    assert prompt.assistant_prefix == ""


@pytest.mark.parametrize(
    ("text", "label", "fallback"),
    [
        ("Yes", 0, False),
        ("Yes, removing shoes is expected.", 0, False),
        ("No, that is rude.", 1, False),
        ("No", 1, False),
        ("I would choose option 2.", 1, False),
        ("Option 1", 0, False),
        ("Neither", 2, False),
        ("option 3", 2, False),
        ("It depends on the family.", 2, True),
        ("yes", 2, True),  # the official rule is case-sensitive: lowercase yes falls through to Neither
        ("Not acceptable here.", 1, False),  # substring rule: "Not" contains "No"
        ("Yes and No", 0, False),  # yes is checked first
        ("", 2, True),
    ],
)
def test_official_parse_rule(text: str, label: int, fallback: bool):
    task = get_task("normad", data_dir=FIXTURE)
    item = task.items()[0]
    prompt = task.render(item, Variant(mode=Mode.GENERATE), Mode.LETTER)
    assert official_parse(text, prompt) == (label, fallback)


def test_parse_follows_displayed_numbers_and_nothing_is_invalid():
    task = get_task("normad", data_dir=FIXTURE)
    item = task.items()[0]
    prompt = task.render(item, Variant(mode=Mode.GENERATE, option_order="reversed"), Mode.LETTER)
    assert official_parse("option 3", prompt) == (0, False)  # displayed third is Yes
    assert official_parse("option 1", prompt) == (2, False)  # displayed first is Neither
    for text in ("gibberish", "No way", "Yes"):
        score = task.score(item, prompt, Response(text=text))
        assert score.valid and score.metrics["invalid"] == 0.0
        assert score.metrics["acc"] == float(score.prediction in item.correct)
        assert sum(score.probs) == 1.0
    assert prompt.max_tokens == 50  # the official budget


def test_macro_f1_by_hand():
    # class 0: P=2/2 R=2/3 F1=4/5; class 1: P=1/2 R=1/2 F1=1/2; class 2: P=1/2 R=1 F1=2/3
    gold = [0, 0, 0, 1, 1, 2]
    pred = [0, 0, 1, 1, 2, 2]
    assert macro_f1(gold, pred) == pytest.approx((4 / 5 + 1 / 2 + 2 / 3) / 3)
    assert macro_f1([0, 1], [0, 1]) == 1.0  # a label absent from gold and predictions is left out
    # a missing prediction is a miss for its gold label only: class 0 P=1 R=1/2 -> 2/3; class 1 -> 1
    assert macro_f1([0, 0, 1], [0, None, 1]) == pytest.approx((2 / 3 + 1) / 2)


def test_micro_f1_is_sklearn_micro():
    # sklearn f1_score(average="micro") = 2 TP / (2 TP + FP + FN) pooled over the labels present
    gold = [0, 0, 0, 1, 1, 2]
    pred = [0, 0, 1, 1, 2, 2]
    assert micro_f1(gold, pred) == 4 / 6  # one label per item: the share right
    assert micro_f1([0, 0, 1], [0, None, 1]) == pytest.approx(2 * 2 / (3 + 2))
    assert micro_f1([], []) != micro_f1([], [])  # nan


def test_paper_protocol_is_the_default():
    assert NormAd.default_mode is Mode.GENERATE and NormAd.headline.metric == "micro_f1"
    task = get_task("normad", data_dir=FIXTURE)
    item = task.items()[0]
    prompt = task.render(item, Variant(), task.default_mode)
    assert prompt.mode is Mode.GENERATE and prompt.max_tokens == 50
    for text, right in (("Yes.", 1.0), ("yes", 0.0)):  # gold yes; lowercase falls through to Neither
        s = task.score(item, prompt, Response(text=text))
        assert s.metrics["micro_f1"] == s.metrics["acc"] == right
    letter = task.render(item, Variant(), Mode.LETTER)
    s = task.score(item, letter, Response(logprobs=[-0.1, -3.0, -3.0]))
    assert s.metrics["micro_f1"] == s.metrics["acc"] == 1.0


def test_extra_metrics_on_constructed_scores():
    task = get_task("normad", data_dir=FIXTURE, levels="rot")
    items = {it.id: it for it in task.items()}
    # predict "Yes" for everything except the first "no" story
    scores = []
    first_no = next(it.id for it in items.values() if it.correct == [1])
    for it in items.values():
        pred = 1 if it.id == first_no else 0
        scores.append(
            Score(
                item_id=it.id,
                task="normad",
                variant="default",
                mode=Mode.LETTER,
                metrics={"acc": float(pred in it.correct)},
                prediction=pred,
            )
        )
    rot = task.extra_metrics(items, scores)["levels"]["rot"]
    n_yes = sum(1 for it in items.values() if it.correct == [0])
    n_no = sum(1 for it in items.values() if it.correct == [1])
    assert rot["n"] == len(items)
    assert rot["acc_by_gold"]["yes"] == {"n": n_yes, "acc": 1.0}
    assert rot["acc_by_gold"]["no"] == {"n": n_no, "acc": 1 / n_no}
    assert rot["acc_by_gold"]["neither"]["acc"] == 0.0
    assert rot["adhere_minus_violate"] == pytest.approx(1 - 1 / n_no)
    assert rot["acc"] == pytest.approx((n_yes + 1) / len(items))
    assert rot["pred_share"]["no"] == pytest.approx(1 / len(items))
    assert set(rot["by_country"]) == {it.country.name for it in items.values()}
    assert set(rot["by_subaxis"]) == {it.topic for it in items.values()}


@pytest.mark.parametrize(
    ("mutate", "row", "field", "match"),
    [  # row numbers as a spreadsheet shows them: the header is row 1
        (lambda r: r[2].update({"Gold Label": "maybe"}), 4, "Gold Label", "not yes / no / neutral"),
        (lambda r: r[1].update({"Country": "Atlantis"}), 3, "Country", "Unknown country"),
        (lambda r: r[4].update({"Story": "  "}), 6, "Story", "empty value"),
        (lambda r: r[5].update({"Rule-of-Thumb": ""}), 7, "Rule-of-Thumb", "level 'rot'"),
        (lambda r: r[3].update({"ID": r[0]["ID"]}), 5, "ID", "duplicate story id"),
    ],
)
def test_malformed_rows_name_file_row_field(tmp_path: Path, mutate, row: int, field: str, match: str):
    rows = _rows()
    mutate(rows)
    path = _write(tmp_path / FILENAME, rows)
    with pytest.raises(DatasetError, match=match) as exc:
        get_task("normad", data_dir=tmp_path).items()
    assert exc.value.file == str(path) and exc.value.row == row and exc.value.field == field
    assert f"row {row}" in str(exc.value) and field in str(exc.value) and FILENAME in str(exc.value)


def test_missing_column_and_missing_file(tmp_path: Path):
    rows = _rows()
    cols = [c for c in rows[0] if c != "Gold Label"]
    _write(tmp_path / FILENAME, rows, cols)
    with pytest.raises(DatasetError, match="missing column") as exc:
        get_task("normad", data_dir=tmp_path).items()
    assert exc.value.field == "Gold Label"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="file not found") as exc:
        get_task("normad", data_dir=empty).items()
    assert FILENAME in str(exc.value)


def test_offline_without_data_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CULTURELENS_NORMAD_DIR", raising=False)
    monkeypatch.setenv("CULTURELENS_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CULTURELENS_OFFLINE", "1")
    with pytest.raises(DatasetError, match="--data-dir") as exc:
        get_task("normad").items()
    assert FILENAME in str(exc.value)


def test_download_failure_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.delenv("CULTURELENS_NORMAD_DIR", raising=False)
    monkeypatch.delenv("CULTURELENS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("CULTURELENS_DATA_CACHE", str(tmp_path / "cache"))

    def no_network(**kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(hub, "hf_hub_download", no_network)
    with pytest.raises(DatasetError, match="Network is unreachable") as exc:
        get_task("normad").items()
    assert "akhilayerukola/NormAd" in str(exc.value) and "--data-dir" in str(exc.value)


def test_pipeline_with_fake_backend(tmp_path: Path):
    rows = _rows()
    gold = [r["Gold Label"] for r in rows]
    cfg = RunConfig(
        model="fake:first",
        tasks=["normad"],
        data_dir=str(FIXTURE),
        mode=Mode.LETTER,
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
    )
    res = Runner(cfg, backend=FakeBackend("first")).run()  # always the first displayed option: Yes
    t = res.results["tasks"]["normad"]
    assert t["n"] == len(rows) * len(LEVELS) and t["invalid"] == 0
    share_yes = gold.count("yes") / len(gold)
    for level in LEVELS:
        entry = t["by"]["subset:level"][level]
        assert entry["n"] == len(rows)
        assert entry["metrics"]["acc"]["mean"] == pytest.approx(share_yes)
        assert entry["metrics"]["acc"]["clusters"] == len(rows)
        extra = t["extra"]["levels"][level]
        assert extra["acc_by_gold"]["yes"]["acc"] == 1.0 and extra["acc_by_gold"]["no"]["acc"] == 0.0
        assert extra["adhere_minus_violate"] == 1.0
        # only Yes predicted: F1(yes) = 2P/(P+1) with P = share_yes; the other two F1 are 0
        assert extra["macro_f1"] == pytest.approx(2 * share_yes / (share_yes + 1) / 3)
    assert t["metrics"]["acc"]["clusters"] == len(rows)  # one cluster per story
    samples = [json.loads(x) for x in (res.run_dir / "samples.jsonl").read_text().splitlines()]
    assert all(s["prompt"].rstrip().endswith("Answer (options Yes, No or Neither):") for s in samples)

    cfg = cfg.model_copy(update={"mode": None, "out": str(tmp_path / "gen")})  # the default: generate
    res = Runner(cfg, backend=FakeBackend("first", generate_text="No, that would be rude.")).run()
    t = res.results["tasks"]["normad"]
    assert t["modes"] == ["generate"] and t["invalid"] == 0
    share_no = gold.count("no") / len(gold)
    assert t["metrics"]["micro_f1"]["mean"] == pytest.approx(share_no)
    assert t["metrics"]["acc"]["mean"] == pytest.approx(share_no)
    assert t["metrics"]["parse_fallback"]["mean"] == 0.0
    for level in LEVELS:
        assert t["extra"]["levels"][level]["micro_f1"] == pytest.approx(share_no)


@pytest.mark.slow
def test_real_embedded_model_on_fixture(tmp_path: Path):
    """One story at all four levels (letter mode), plus one generation parsed by the official rule."""
    pytest.importorskip("llama_cpp")
    cfg = RunConfig(
        model="default",
        tasks=["normad"],
        data_dir=str(FIXTURE),
        limit=4,
        mode=Mode.LETTER,
        out=str(tmp_path / "letter"),
        cache=str(tmp_path / "c.sqlite"),
        n_boot=50,
    )
    res = Runner(cfg).run()
    t = res.results["tasks"]["normad"]
    assert t["n"] == 4 and t["modes"] == ["letter"] and set(t["by"]["subset:level"]) == set(LEVELS)
    assert set(t["extra"]["levels"]) == set(LEVELS)
    samples = [json.loads(x) for x in (res.run_dir / "samples.jsonl").read_text().splitlines()]
    for s in samples:
        assert (
            "Options:\n1) Yes \n2) No \n3) Neither \nAnswer (options Yes, No or Neither): \n" in s["prompt"]
        )
        assert s["valid"] and s["prediction"] in (0, 1, 2)
        assert sum(s["probs"]) == pytest.approx(1.0) and 0.0 < s["metrics"]["label_mass"] <= 1.0

    cfg = cfg.model_copy(
        update={
            "mode": Mode.GENERATE,
            "limit": 1,
            "out": str(tmp_path / "gen"),
            "task_options": {"normad": {"levels": "rot"}},
        }
    )
    res = Runner(cfg).run()
    (s,) = [json.loads(x) for x in (res.run_dir / "samples.jsonl").read_text().splitlines()]
    assert s["subset"]["level"] == "rot" and s["response"]["text"].strip()
    assert s["valid"] and s["prediction"] in (0, 1, 2)
    assert s["metrics"]["acc"] == float(s["prediction"] in s["gold"])
