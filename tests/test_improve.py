"""culturelens improve: pairs, leak-free splits, the before/after analysis, and (slow) real fine-tuning.

The data and analysis tests run on real run logs of the shipped starter suite, scored by the fake
backend (fast); the slow test fine-tunes the embedded SmolLM2 on a handful of pairs from a real run and
loads the result through culturelens's hf backend.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from culturelens.backends.fake import FakeBackend
from culturelens.cli import app
from culturelens.improve.analysis import compare_control, compare_split, robust_rows
from culturelens.improve.data import (
    HELDOUT,
    TEST,
    TRAIN,
    Dataset,
    ImproveDataError,
    build_dataset,
    imbalance,
    make_split,
    write_dataset,
)
from culturelens.runlog import RunLog, read_run, write_status
from culturelens.runner import RunConfig, Runner
from culturelens.schema import Request, Response
from culturelens.sweep import expand

SWEEP = ["option_order=identity,reversed", "labels=letters,numbers"]


def _run(
    tmp: Path, name: str, backend: FakeBackend, vary: Sequence[str] = SWEEP, mode: str | None = None
) -> Path:
    cfg = RunConfig(
        model=f"fake:{backend.policy}",
        tasks=["starter"],
        variants=expand(list(vary)),
        mode=mode,
        out=str(tmp / name),
        cache=str(tmp / f"{name}.sqlite"),
    )
    return Runner(cfg, backend=backend).run().run_dir


@pytest.fixture(scope="module")
def hash_run(tmp_path_factory: pytest.TempPathFactory) -> RunLog:
    """The whole shipped starter suite under 4 presentations, answered pseudo-randomly."""
    return read_run(_run(tmp_path_factory.mktemp("improve"), "hash", FakeBackend("hash")))


# --- the split ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("fraction", [0.2, 0.5])
@pytest.mark.parametrize("holdout", [0, 3, ["Japan", "kenya"]])
def test_split_is_leak_free(hash_run: RunLog, seed: int, fraction: float, holdout: int | list[str]):
    items = hash_run.items("starter")
    split = make_split("starter", items, test_fraction=fraction, holdout_countries=holdout, seed=seed)
    assert set(split.assign) == set(items)  # every item in exactly one split
    held = set(split.heldout_countries)
    assert len(held) == (holdout if isinstance(holdout, int) else 2)
    if not isinstance(holdout, int):
        assert held == {"Japan", "Kenya"}
    by_country: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for item_id, sp in split.assign.items():
        country = items[item_id].country
        assert country is not None
        by_country[country.name][sp] += 1
        # a held-out country has no item in train or test, every other country none in heldout
        assert (sp == HELDOUT) == (country.name in held)
    for country, sps in by_country.items():
        if country not in held:  # each training country keeps items on both sides
            assert sps[TRAIN] >= 1 and sps[TEST] >= 1, (country, dict(sps))
    n_test = len(split.ids(TEST))
    n_rest = sum(1 for sp in split.assign.values() if sp != HELDOUT)
    assert abs(n_test / n_rest - fraction) < 0.12


def test_split_keeps_groups_together_and_ignores_order(hash_run: RunLog):
    """Items sharing a group (one question under several prompts) never straddle the split."""
    base = list(hash_run.items("starter").values())
    items = {}
    for it in base:
        for k in range(3):
            copy = it.model_copy(update={"id": f"{it.id}/v{k}", "group": it.id})
            items[copy.id] = copy
    split = make_split("starter", items, test_fraction=0.3, holdout_countries=2, seed=1)
    groups: dict[str, set[str]] = defaultdict(set)
    for item_id, sp in split.assign.items():
        groups[items[item_id].group or item_id].add(sp)
    assert all(len(s) == 1 for s in groups.values())
    shuffled = list(items.items())
    random.Random(5).shuffle(shuffled)
    again = make_split("starter", dict(shuffled), test_fraction=0.3, holdout_countries=2, seed=1)
    assert again.assign == split.assign
    other = make_split("starter", items, test_fraction=0.3, holdout_countries=2, seed=2)
    assert other.assign != split.assign  # the seed matters


def test_split_rejects_bad_holdouts(hash_run: RunLog):
    items = hash_run.items("starter")
    with pytest.raises(ImproveDataError, match="hold out fewer"):
        make_split("starter", items, holdout_countries=len({i.country for i in items.values()}))
    with pytest.raises(ImproveDataError, match="Atlantis"):
        make_split("starter", items, holdout_countries=["Atlantis"])
    with pytest.raises(ImproveDataError, match="between 0 and 1"):
        make_split("starter", items, test_fraction=1.0)


def _shown(label: str, text: str) -> str:
    """An answer as a letter-mode prompt asks for it: ' B. Tagine', or the label word alone (' Yes')."""
    return f" {label}" if label == text else f" {label}. {text}"


# --- pairs ----------------------------------------------------------------------------------------------
def test_pairs_are_gold_vs_the_models_answer_in_the_prompts_format(hash_run: RunLog, tmp_path: Path):
    ds = build_dataset(hash_run, holdout_countries=2, seed=3)
    samples = {(s.item_id, s.variant): s for s in hash_run.iter_samples("starter")}
    items = hash_run.items("starter")
    assert ds.variant == hash_run.primary_variant.id
    # the option orders of the training label style: identity and reversed, letters
    assert ds.presentations == ["default", "option_order=reversed"]
    assert {p["variant"] for p in ds.pairs} == set(ds.presentations)
    failures = [p for p in ds.pairs if p["kind"] == "failure"]
    successes = [p for p in ds.pairs if p["kind"] == "success"]
    assert failures and successes
    assert len({p["item_id"] for p in ds.pairs}) == len(ds.pairs)  # one pair per item
    for p in ds.pairs:
        s = samples[(p["item_id"], p["variant"])]
        assert p["prompt"] == s.prompt and p["split"] == ds.split.assign[p["item_id"]]
        gold = items[p["item_id"]].correct[0]
        shown = s.order.index(gold)
        # letter mode: the label the prompt shows for the gold option, then its text
        assert p["chosen"] == _shown(s.targets[shown], s.options[gold]) and p["chosen_pos"] == shown
        assert p["rejected"] != p["chosen"]
        wrong = s.order[p["rejected_pos"]]
        assert wrong != gold and p["rejected"] == _shown(s.targets[p["rejected_pos"]], s.options[wrong])
        if p["kind"] == "failure":  # the model's own answer under that presentation
            assert s.metrics["acc"] == 0.0 and wrong == s.prediction
        elif p["kind"] == "success":
            assert s.metrics["acc"] == 1.0
        else:
            assert p["kind"] == "contrast" and s.metrics["acc"] == 0.0 and wrong != s.prediction
    # items right under every presentation only balance: never more than the items with a failure
    for sp in (TRAIN, TEST, HELDOUT):
        rows = [p for p in ds.pairs if p["split"] == sp]
        failed = {
            p["item_id"]
            for p in rows
            if any(samples[(p["item_id"], v)].metrics["acc"] == 0.0 for v in ds.presentations)
        }
        assert len(rows) - len(failed) <= len(failed)
    # no training row comes from a test item or a held-out country
    train_ids = {p["item_id"] for p in ds.rows("pairs", TRAIN)} | {
        r["item_id"] for r in ds.rows("sft", TRAIN)
    }
    assert train_ids and not train_ids & (ds.split.ids(TEST) | ds.split.ids(HELDOUT))
    assert not {p["country"] for p in ds.rows("pairs", TRAIN)} & set(ds.split.heldout_countries)
    # supervised examples: the gold answer and the item's rationale
    sft = ds.rows("sft", TRAIN)[0]
    assert (
        sft["completion"].startswith(sft["answer"])
        and items[sft["item_id"]].metadata["rationale"] in sft["completion"]
    )
    counts = write_dataset(ds, tmp_path / "data")
    written = [json.loads(x) for x in (tmp_path / "data" / "pairs.jsonl").read_text().splitlines()]
    assert written == ds.pairs
    card = (tmp_path / "data" / "README.md").read_text()
    assert ds.split.rule in card and f"| {TRAIN} | {counts['totals'][TRAIN]['items']} |" in card
    split_file = json.loads((tmp_path / "data" / "split.json").read_text())
    assert split_file["items"] == ds.split.assign
    assert sum(c.get(TEST, {}).get("items", 0) for c in counts["countries"].values()) == len(
        ds.split.ids(TEST)
    )


def _assert_no_leak(ds: Dataset) -> None:
    train_ids = {p["item_id"] for p in ds.rows("pairs", TRAIN)} | {
        r["item_id"] for r in ds.rows("sft", TRAIN)
    }
    assert train_ids and not train_ids & (ds.split.ids(TEST) | ds.split.ids(HELDOUT))
    assert not {p["country"] for p in ds.rows("pairs", TRAIN)} & set(ds.split.heldout_countries)


def test_pairs_are_position_balanced_over_the_option_orders(tmp_path: Path):
    """A model that always answers the first option shown: pairs of one presentation put every rejected
    answer at position 1 (what made the tuned model collapse onto one position); pairs balanced over
    the four rotations spread the chosen and the rejected answers over the four positions."""
    log = read_run(_run(tmp_path, "first", FakeBackend("first"), vary=["option_order=rotate"]))
    legacy = build_dataset(log, holdout_countries=3, presentations="one", balance=False)
    old = legacy.positions()[TRAIN]
    # (its few successes reject the next most probable option, position 2)
    assert set(old["rejected"]) == {"1", "2"} and old["rejected"]["1"] > 2 * old["rejected"]["2"]
    assert imbalance(old["rejected"], 4) == float("inf")
    ds = build_dataset(log, holdout_countries=3)
    assert ds.presentations == ["default"] + [f"option_order=rotate:{k}" for k in (1, 2, 3)]
    assert len(ds.rows("pairs", TRAIN)) == len(legacy.rows("pairs", TRAIN))  # same amount of data
    h = ds.positions()[TRAIN]
    n = len(ds.rows("pairs", TRAIN))
    assert sum(h["chosen"].values()) == n and sum(h["rejected"].values()) == n
    # the starter suite has 3-option items that cannot fill position 4: a little slack
    for key in ("chosen", "rejected", "sft"):
        ratio = imbalance(h[key], 4)
        assert ratio is not None and ratio <= 1.2, (key, h[key])
    # the model's own wrong answers are still used where balance allows
    assert sum(p["kind"] == "failure" for p in ds.rows("pairs", TRAIN)) >= n // 4
    _assert_no_leak(ds)
    # recorded in the dataset card, positions.json and the counts improve.json keeps
    counts = write_dataset(ds, tmp_path / "data")
    assert counts["positions"] == ds.positions() and counts["presentations"] == ds.presentations
    on_disk = json.loads((tmp_path / "data" / "positions.json").read_text())
    assert on_disk["splits"][TRAIN] == h
    card = (tmp_path / "data" / "README.md").read_text()
    row = f"| {TRAIN} | rejected | " + " | ".join(str(h["rejected"].get(str(p), 0)) for p in range(1, 5))
    assert "## Presentations and answer positions" in card and row in card
    # deterministic, and the seed changes the split
    again = build_dataset(log, holdout_countries=3)
    assert again.pairs == ds.pairs and again.sft == ds.sft
    with pytest.raises(ImproveDataError, match="presentations 'sideways'"):
        build_dataset(log, presentations="sideways")
    with pytest.raises(ImproveDataError, match="no variant labels=numbers"):
        build_dataset(log, presentations=["labels=numbers"])


def test_more_pairs_per_item_use_other_presentations(tmp_path: Path):
    log = read_run(_run(tmp_path, "hash4", FakeBackend("hash"), vary=["option_order=rotate"]))
    ds = build_dataset(log, holdout_countries=2, pairs_per_item=3, seed=1)
    per_item: dict[str, list[str]] = defaultdict(list)
    for p in ds.pairs:
        per_item[p["item_id"]].append(p["variant"])
    assert set(map(len, per_item.values())) == {3}
    assert all(len(set(v)) == 3 for v in per_item.values())
    assert imbalance(ds.positions()[TRAIN]["chosen"], 4) <= 1.2
    _assert_no_leak(ds)


@pytest.mark.slow
def test_real_model_pairs_are_position_balanced(tmp_path: Path):
    """The embedded SmolLM2 (llama.cpp) on 12 starter items under 4 rotations: its wrong answers sit
    where its position bias puts them; the balanced build spreads chosen and rejected positions."""
    cfg = RunConfig(
        model="default",
        tasks=["starter"],
        limit=12,
        variants=expand(["option_order=rotate"]),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "cache.sqlite"),
    )
    log = read_run(Runner(cfg).run().run_dir)
    legacy = build_dataset(log, holdout_countries=0, test_fraction=0.2, presentations="one", balance=False)
    ds = build_dataset(log, holdout_countries=0, test_fraction=0.2)
    old, new = legacy.positions()[TRAIN], ds.positions()[TRAIN]
    n = len(ds.rows("pairs", TRAIN))
    assert n >= 6
    top_old = max(old["rejected"].values()) / sum(old["rejected"].values())
    top_new = max(new["rejected"].values()) / n
    assert top_new <= top_old and top_new <= 0.25 + 1.5 / n, (old, new)
    assert max(new["chosen"].values()) - min(new["chosen"].get(str(p), 0) for p in range(1, 5)) <= 1
    _assert_no_leak(ds)


def test_generation_pairs_use_the_label_alone(tmp_path: Path):
    log = read_run(_run(tmp_path, "gen", FakeBackend("hash", generate_text="B"), vary=[], mode="generate"))
    ds = build_dataset(log, holdout_countries=0)
    labels = {"A", "B", "C", "D", "Yes", "No", "Neither"}
    assert ds.pairs and all(p["chosen"] in labels for p in ds.pairs)
    assert all(p["rejected"] == "B" for p in ds.pairs if p["kind"] == "failure")


def test_an_unfinished_run_gives_no_data(hash_run: RunLog, tmp_path: Path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(hash_run.dir, copy)
    write_status(copy, status="interrupted")
    with pytest.raises(ImproveDataError, match="not complete"):
        build_dataset(read_run(copy))
    with pytest.raises(ImproveDataError, match="no task 'blend'"):
        build_dataset(hash_run, task="blend")


# --- before / after --------------------------------------------------------------------------------------
class _LearnedOnePresentation(FakeBackend):
    """Answers the gold label under the prompts it was 'trained' on, pseudo-randomly elsewhere."""

    def __init__(self, gold_by_prompt: dict[str, int]):
        super().__init__("hash")
        self.gold_by_prompt = gold_by_prompt

    def identity(self) -> dict[str, str]:
        return {"backend": "fake", "model": "fake-tuned"}

    def label_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        out = []
        for r, resp in zip(batch, super().label_logprobs(batch), strict=True):
            gold = self.gold_by_prompt.get(r.text)
            if gold is None:
                out.append(resp)
            else:
                out.append(Response(logprobs=[-0.01 if i == gold else -6.0 for i in range(len(r.targets))]))
        return out


def test_a_gain_only_under_the_training_presentation_is_called_so(hash_run: RunLog, tmp_path: Path):
    train_variant = hash_run.primary_variant.id
    gold = {
        s.prompt: s.order.index(s.gold[0])
        for s in hash_run.iter_samples("starter")
        if s.variant == train_variant
    }
    after = read_run(_run(tmp_path, "after", _LearnedOnePresentation(gold)))
    ds = build_dataset(hash_run, holdout_countries=3)
    res = compare_split(hash_run, after, "starter", ds.split.ids(TEST), train_variant)
    tp = res["training_presentation"]
    assert tp["gain_train"]["verdict"] == "gain" and tp["gain_train"]["after"]["mean"] == 1.0
    # (label items read the same under both label styles: those prompts were 'trained' too)
    assert abs(tp["gain_other"]["diff"]) < 0.05 and tp["gain_other"]["verdict"] == "no detectable change"
    assert any("only under the training presentation" in v for v in res["verdicts"])
    # right under every variant needs the other presentations too: robust accuracy barely moves
    assert res["robust"]["diff"] < tp["gain_train"]["diff"] / 2
    assert {c["country"] for c in res["countries"]} <= {
        i.country.name for i in hash_run.items("starter").values() if i.country
    }
    assert all("p_holm" in c for c in res["countries"])
    # the per-variant rows: only the training one changed
    assert [v for v, t in res["per_variant"].items() if t["diff"] > 0.05] == [train_variant]
    assert res["items"] == len(ds.split.ids(TEST))
    # it learned answers, not a position: its answers sit where the gold answers sit
    after_pos = res["positions"]["after"][train_variant]
    assert after_pos["predicted"] == after_pos["gold"]
    assert not any(v.startswith("position preference") for v in res["verdicts"])


def test_robust_rows_need_every_variant(hash_run: RunLog):
    from culturelens.robustness import task_rows

    rows = task_rows(hash_run, "starter")
    variants = list(hash_run.task_variants("starter"))
    robust = robust_rows(rows, "acc", variants)
    by: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        by[r.item_id].append(r.metrics["acc"])
    for item_id, row in robust.items():
        assert row.metrics["acc"] == float(all(v == 1.0 for v in by[item_id]))


def test_control_comparison_direction():
    before = {f"p{i}": -1.0 - 0.01 * i for i in range(30)}
    worse = {k: v - 0.2 for k, v in before.items()}
    res = compare_control(before, worse)
    assert res["diff"] == pytest.approx(-0.2) and res["verdict"] == "worse (a cost)"
    assert compare_control(before, dict(before))["verdict"] == "no detectable cost"


def test_cli_refuses_a_model_it_cannot_train(tmp_path: Path):
    res = CliRunner().invoke(app, ["improve", "--model", "openai:gpt-4o-mini", "--out", str(tmp_path), "-q"])
    assert res.exit_code == 2
    assert (
        "improve fine-tunes through transformers" in res.output and len(res.output.strip().splitlines()) == 1
    )
    res = CliRunner().invoke(app, ["improve", "--method", "ppo", "--out", str(tmp_path), "-q"])
    assert res.exit_code == 2 and "method 'ppo'" in res.output


# --- the real model ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_dpo_lowers_the_loss_and_the_merged_model_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from culturelens.improve.train import TrainSettings, train

    cache = str(tmp_path / "cache.sqlite")
    cfg = RunConfig(
        model="hf:embedded", tasks=["starter"], limit=8, out=str(tmp_path / "before"), cache=cache
    )
    before = read_run(Runner(cfg).run().run_dir)
    ds = build_dataset(before, holdout_countries=0, test_fraction=0.25, success_ratio=1.0)
    rows = ds.rows("pairs", TRAIN)[:4]
    assert len(rows) >= 2
    settings = TrainSettings(
        method="dpo", steps=3, batch_size=len(rows), learning_rate=1e-3, seed=0, threads=2
    )
    result = train("hf:embedded", rows, tmp_path / "model", settings)
    assert len(result.losses) == 3
    assert result.losses[0] == pytest.approx(math.log(2), abs=1e-3)  # policy == reference at the start
    assert result.losses[-1] < result.losses[0] - 0.01
    assert (Path(result.adapter) / "adapter_config.json").exists()
    # the merged model loads through culturelens's hf backend and scores the same items
    after_cfg = RunConfig(
        model=f"hf:{result.merged}", tasks=["starter"], limit=8, out=str(tmp_path / "after"), cache=cache
    )
    after = read_run(Runner(after_cfg).run().run_dir)
    assert after.complete and after.identity.get("backend") == "hf"
    b = {s.item_id: s for s in before.iter_samples("starter")}
    a = {s.item_id: s for s in after.iter_samples("starter")}
    assert set(a) == set(b) and all(s.valid and "acc" in s.metrics for s in a.values())
    # the trained preference moved: the gold answer's probability rose on the training prompts
    trained = [r["item_id"] for r in rows]
    gain = sum(a[i].metrics["p_correct"] - b[i].metrics["p_correct"] for i in trained) / len(trained)
    assert gain > 0, gain
    # the adapter on the base model gives the merged model's predictions
    from peft import PeftModel

    from culturelens.improve.train import load_base

    base, tok, _ = load_base("hf:embedded", device="cpu")
    tuned = PeftModel.from_pretrained(base, result.adapter).eval()
    import torch

    first = rows[0]
    ids = tok(first["prompt"], return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        logp = torch.log_softmax(tuned(**ids).logits[0, -1].float(), -1)
    sample = a[first["item_id"]]
    for label, scored in zip(sample.targets, sample.response["logprobs"], strict=True):
        toks = {tok(form, add_special_tokens=False)["input_ids"][0] for form in (label, " " + label)}
        assert float(torch.logsumexp(logp[sorted(toks)], 0)) == pytest.approx(scored, abs=2e-3)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["orpo", "sft"])
def test_real_orpo_and_sft_train_save_and_score(method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """ORPO (pairs) and SFT (gold answer + rationale) on the embedded SmolLM2: a few steps on rows built
    from a run of the real starter prompts; finite, falling loss; the adapter saves; the merged model
    loads through ``hf:PATH`` and scores."""
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from culturelens.improve.train import MARKER, TrainSettings, train

    log = read_run(_run(tmp_path, "src", FakeBackend("hash"), vary=["option_order=rotate"]))
    ds = build_dataset(log, holdout_countries=0, test_fraction=0.25)
    rows = ds.rows("sft" if method == "sft" else "pairs", TRAIN)[:4]
    assert len(rows) == 4
    if method == "sft":
        assert all(r["completion"].startswith(r["answer"]) for r in rows)
    settings = TrainSettings(method=method, steps=4, batch_size=4, learning_rate=1e-3, seed=0, threads=2)
    result = train("hf:embedded", rows, tmp_path / "model", settings)
    assert len(result.losses) == 4 and all(math.isfinite(x) for x in result.losses)
    assert result.losses[-1] < result.losses[0], result.losses
    assert (Path(result.adapter) / "adapter_config.json").exists()
    assert json.loads((Path(result.merged) / MARKER).read_text())["method"] == method
    cfg = RunConfig(
        model=f"hf:{result.merged}",
        tasks=["starter"],
        limit=4,
        out=str(tmp_path / "after"),
        cache=str(tmp_path / "after.sqlite"),
    )
    after = read_run(Runner(cfg).run().run_dir)
    assert after.complete and after.identity.get("backend") == "hf"
    samples = list(after.iter_samples("starter"))
    assert len(samples) == 4 and all(s.valid and "acc" in s.metrics for s in samples)


def test_the_summary_reads_back_as_markdown(hash_run: RunLog, tmp_path: Path):
    """improve.md from a summary with every section (the loop's writer, on fake runs)."""
    from culturelens.compare import compare_runs
    from culturelens.improve.loop import _write

    other = read_run(_run(tmp_path, "first", FakeBackend("first")))
    ds = build_dataset(hash_run, holdout_countries=2)
    variant = hash_run.primary_variant.id
    summary = {
        "task": "starter",
        "base_model": "fake:hash",
        "after_model": "fake:first",
        "training_variant": variant,
        "data": {"totals": write_dataset(ds, tmp_path / "data")["totals"], "heldout_countries": ["X"]},
        "training": {
            "method": "dpo",
            "steps": 3,
            "examples": 10,
            "seconds": 1.0,
            "device": "cpu",
            "first_loss": 0.693,
            "last_loss": 0.5,
            "settings": {"lora_r": 16},
        },
        "splits": {
            TEST: compare_split(hash_run, other, "starter", ds.split.ids(TEST), variant),
            HELDOUT: compare_split(hash_run, other, "starter", ds.split.ids(HELDOUT), variant),
        },
        "transfer": {"task": "starter", "limit": 5, **compare_runs(other.dir, hash_run.dir)},
        "control": {"name": "ctl", **compare_control({"a": -1.0, "b": -2.0}, {"a": -1.1, "b": -2.1})},
    }
    md = _write(tmp_path, summary, {"total_s": 1.0}).read_text()
    assert json.loads((tmp_path / "improve.json").read_text())["complete"] is False
    for heading in ("## Held-out items", "## Held-out countries", "## Transfer: starter", "## Control: ctl"):
        assert heading in md
    pooled = summary["splits"][TEST]["pooled"]
    assert f"| all variants | {pooled['b']:.3f} | {pooled['a']:.3f} |" in md
    assert any(v.startswith("transfer to starter") for v in summary["verdicts"])
    # fake:first answers the first option shown, whatever it is: a position preference, said so
    first = summary["splits"][TEST]["positions"]["after"][variant]
    assert first["top_position"] == 0 and first["top_share"] == 1.0
    assert any(v.startswith("held-out items: position preference under") for v in summary["verdicts"])
