"""lm-evaluation-harness samples re-scored by culturelens.

The fixtures in ``tests/fixtures/lmeval/`` come from real ``lm_eval`` 0.4.13 runs of the embedded
SmolLM2-135M-Instruct GGUF (``--model hf``, ``gguf_file=``) on CulturalBench-Easy from
``../shared/datasets``, with two task YAMLs of our own wording (options in the release's order, all
1,227 questions; and in reverse order, the first 200). ``README.md`` there has the exact commands.
They keep only ids, the model's log-likelihoods, lm-eval's per-document ``acc`` and its hashes of
each doc, prompt and target (``strip.py``); the text comes back from the dataset in the tests.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from culturelens.cli import app
from culturelens.interop.lmeval import import_lmeval
from culturelens.interop.rescore import ForeignLogError
from culturelens.runlog import read_run
from culturelens.schema import Mode, Variant
from culturelens.tasks.base import get_task

FIX = Path(__file__).parent / "fixtures" / "lmeval"
FORWARD = next(iter(sorted(FIX.glob("samples_culturalbench_easy_local_2*.jsonl.gz"))), FIX / "missing.jsonl")
REVERSED = next(
    iter(sorted(FIX.glob("samples_culturalbench_easy_local_reversed_*.jsonl.gz"))), FIX / "missing.jsonl"
)
CLICK_REFERENCE = Path(__file__).parent / "fixtures" / "click" / "harness_reference.json"


def _lines(path: Path) -> list[dict[str, Any]]:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [json.loads(x) for x in raw.decode("utf-8").splitlines() if x.strip()]


def _cb_dir(shared: Path) -> str:
    return str(shared / "culturalbench")


def test_real_lmeval_run_rescored_with_per_country_intervals(shared_datasets: Path, tmp_path: Path):
    """The done-when of issue 17: a real lm-eval samples file, re-scored with per-country CIs."""
    res = import_lmeval(
        [FORWARD], tmp_path / "run", task="culturalbench_easy", data_dir=_cb_dir(shared_datasets)
    )
    theirs = _lines(FORWARD)
    entry = res.results["tasks"]["culturalbench_easy"]
    assert entry["n"] == len(theirs) == 1227
    # culturelens's scorer on lm-eval's log-likelihoods agrees with lm-eval document by document
    log = read_run(res.run_dir)
    by_doc = {r["doc_id"]: r for r in theirs}
    for s in log.samples:
        rec = by_doc[s.foreign["doc_id"]]
        assert s.item_id == f"cb-easy:{rec['doc']['question_idx']}"
        lls = [float(r[0]) for r in rec["filtered_resps"]]
        assert s.prediction == max(range(4), key=lls.__getitem__)
        assert s.metrics["acc"] == rec["acc"]
        assert s.mode is Mode.LETTER and s.response["logprobs"] == lls
    assert entry["foreign"]["acc_agreement"] == 1.0
    assert entry["metrics"]["acc"]["mean"] == pytest.approx(sum(r["acc"] for r in theirs) / len(theirs))
    # per-country intervals over the 45 regions, from culturelens's item snapshot
    countries = entry["by"]["country"]
    assert len(countries) == 45 and sum(c["n"] for c in countries.values()) == 1227
    for c in countries.values():
        m = c["metrics"]["acc"]
        assert (
            m["ci"][0] <= m["mean"] <= m["ci"][1]
            and m["ci"][0] < m["ci"][1]
            and m["ci_method"].startswith("wilson")
        )
    assert entry["baselines"]["majority_position"]["label"] == "A"  # the skewed golds
    assert "always_a_acc" in entry["extra"]
    header = json.loads((res.run_dir / "config.json").read_text(encoding="utf-8"))
    assert header["backend"]["identity"]["backend"] == "lm-eval"
    assert "SmolLM2" in header["backend"]["identity"]["model"]


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _full_records(shared: Path, stripped: Path, yaml_name: str) -> list[dict[str, Any]]:
    """The lm-eval samples as lm-eval wrote them: docs from the CSV as lm-eval loads it (HF
    ``datasets``), prompts rendered from our task YAML; both checked against lm-eval's own hashes."""
    datasets = pytest.importorskip("datasets")
    jinja2 = pytest.importorskip("jinja2")
    yaml = pytest.importorskip("yaml")
    csv = shared / "culturalbench" / "Cul" / "data" / "CulturalBench-Easy.csv"
    docs = datasets.load_dataset("csv", data_files={"test": str(csv)})["test"]
    spec = yaml.safe_load((FIX / yaml_name).read_text(encoding="utf-8"))
    text_t = jinja2.Template(spec["doc_to_text"])
    target_t = jinja2.Template(spec["doc_to_target"])
    out = []
    for rec in _lines(stripped):
        doc = docs[rec["doc_id"]]
        assert _hash(json.dumps(doc, indent=2, ensure_ascii=False, default=str)) == rec["doc_hash"]
        context = text_t.render(**doc)
        assert _hash(context) == rec["prompt_hash"]
        target = target_t.render(**doc)
        assert _hash(target) == rec["target_hash"]
        args = {k: {**v, "arg_0": context} for k, v in rec["arguments"].items()}
        out.append({**rec, "doc": dict(doc), "arguments": args, "target": target})
    return out


@pytest.mark.parametrize(
    ("which", "yaml_name", "order"),
    [("forward", "culturalbench_easy_local.yaml", [0, 1, 2, 3]),
     ("reversed", "culturalbench_easy_local_reversed.yaml", [3, 2, 1, 0])],
)  # fmt: skip
def test_full_lmeval_records_by_content_and_by_prompt_order(
    shared_datasets: Path, tmp_path: Path, which: str, yaml_name: str, order: list[int]
):
    """With the docs and prompts lm-eval logged (rebuilt here, hashes equal to lm-eval's): items are
    found by content when no id is given, and each prompt's option order is read from it."""
    fixture = FORWARD if which == "forward" else REVERSED
    full = _full_records(shared_datasets, fixture, yaml_name)
    for rec in full:  # no id fields: only the question and option texts can find the item
        rec["doc"] = {k: v for k, v in rec["doc"].items() if k not in ("question_idx", "data_idx")}
    path = tmp_path / fixture.name.removesuffix(".gz")
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in full), encoding="utf-8")
    res = import_lmeval(
        [path], tmp_path / "run", task="culturalbench_easy", data_dir=_cb_dir(shared_datasets)
    )
    entry = res.results["tasks"]["culturalbench_easy"]
    assert entry["n"] == len(full) and entry["foreign"]["acc_agreement"] == 1.0
    assert "gold_disagrees" not in entry["foreign"] and "prompt_not_logged" not in entry["foreign"]
    samples = read_run(res.run_dir).samples
    idx = {r["doc_id"]: r for r in _lines(fixture)}
    items = {it.id: it for it in get_task("culturalbench_easy", data_dir=_cb_dir(shared_datasets)).items()}
    for s in samples:
        rec = idx[s.foreign["doc_id"]]
        assert s.item_id == f"cb-easy:{rec['doc']['question_idx']}"
        it = items[s.item_id]
        if len(set(it.options)) == 4:  # distinct options: their order in the prompt is unambiguous
            assert s.order == order
        assert s.metrics["acc"] == rec["acc"]
        assert s.foreign["shown"] == [True] * 4


def test_two_prompts_are_two_variants_with_robustness(shared_datasets: Path, tmp_path: Path):
    """The forward and the reversed run (prompts as lm-eval logged them): one variant each, option
    orders read from the prompts, and the robustness analysis on the questions both answered,
    through the CLI, with the report. The model answers "A" whatever A is, so the reversed prompt
    flips its answers: the analysis must say the score is not stable."""
    files = []
    for fixture, yaml_name in (
        (FORWARD, "culturalbench_easy_local.yaml"),
        (REVERSED, "culturalbench_easy_local_reversed.yaml"),
    ):
        full = _full_records(shared_datasets, fixture, yaml_name)
        path = tmp_path / fixture.name.removesuffix(".gz")
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in full), encoding="utf-8")
        files.append(path)
    r = CliRunner().invoke(
        app,
        ["import", *map(str, files), "--task", "culturalbench_easy", "--data-dir", _cb_dir(shared_datasets),
         "--out", str(tmp_path / "run"), "-q"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    log = read_run(tmp_path / "run")
    variants = log.task_variants("culturalbench_easy")
    fwd, rev = (f"template={p.name.split('_2')[0].removeprefix('samples_')}" for p in (FORWARD, REVERSED))
    assert list(variants) == [fwd, rev]
    forward, reversed_ = _lines(FORWARD), _lines(REVERSED)
    assert variants[fwd]["n"] == len(forward) and variants[rev]["n"] == len(reversed_)
    # each variant's accuracy is lm-eval's own for that prompt
    for vid, recs in ((fwd, forward), (rev, reversed_)):
        assert variants[vid]["metrics"]["acc"]["mean"] == pytest.approx(
            sum(x["acc"] for x in recs) / len(recs)
        )
    assert log.task_results("culturalbench_easy")["foreign"]["acc_agreement"] == 1.0
    rob = json.loads((tmp_path / "run" / "robustness.json").read_text(encoding="utf-8"))
    rob = rob["tasks"]["culturalbench_easy"]
    assert rob["n_variants"] == 2 and rob["factors"] == ["template"]
    assert rob["items"]["n_items"] == len(reversed_)  # the questions answered under both prompts
    # consistency from lm-eval's numbers alone: the same option (by position in the release) chosen
    # under both prompts; the reversed prompt's letter k is the release's option 3 - k
    items = {it.id: it for it in get_task("culturalbench_easy", data_dir=_cb_dir(shared_datasets)).items()}
    first = {x["doc_id"]: x for x in forward}
    same = n = 0
    for x in reversed_:
        it = items[f"cb-easy:{x['doc']['question_idx']}"]
        if len(set(it.options)) < 4:
            continue  # a repeated option text: which copy the prompt meant is not recoverable
        f = [float(v[0]) for v in first[x["doc_id"]]["filtered_resps"]]
        b = [float(v[0]) for v in x["filtered_resps"]]
        same += max(range(4), key=f.__getitem__) == 3 - max(range(4), key=b.__getitem__)
        n += 1
    assert n >= len(reversed_) - 2
    assert rob["items"]["consistency"]["mean"] == pytest.approx(same / n, abs=2 / n)
    assert rob["verdict"] == "unstable"
    assert (tmp_path / "run" / "report.html").exists()


def test_fixture_without_prompts_says_so(shared_datasets: Path, tmp_path: Path):
    res = import_lmeval(
        [REVERSED], tmp_path / "run", task="culturalbench_easy", data_dir=_cb_dir(shared_datasets)
    )
    entry = res.results["tasks"]["culturalbench_easy"]
    # without the prompt the options are taken in the dataset's order, which is wrong for this run:
    # culturelens's acc then disagrees with lm-eval's, and the summary shows it
    assert entry["foreign"]["prompt_not_logged"] == len(_lines(REVERSED))
    assert entry["foreign"]["acc_agreement"] < 1.0


# --- the CLIcK trap: lm-eval's merged CLIcK task shows four options and scores five -----------------------
def _fixed_prediction(key: str, n: int) -> int:
    """The prediction rule of ``tests/fixtures/click/harness_reference.json`` (see test_click.py)."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % n


def test_click_trap_is_shown(shared_datasets: Path, tmp_path: Path):
    """lm-eval-format records of the CLIcK release as lm-eval's click task makes them: choices A-E on
    the five-option (CSAT) items, A-D otherwise, a prompt listing only the first four options (our
    words; the layout is lm-eval's), log-likelihoods from the reference's fixed predictions. The
    import flags every five-option answer, counts the 49 unseen golds, and agrees with lm-eval's own
    per-document accuracy from ``harness_reference.json`` (made by lm-eval's CLIcK functions)."""
    ref = json.loads(CLICK_REFERENCE.read_text(encoding="utf-8"))["per_item_correct"]
    items = get_task("click", data_dir=shared_datasets / "click").items()
    path = tmp_path / "samples_click_cul_economy_2026-01-01T00-00-00.000000.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for it in items:
            key = f"{Path(it.metadata['file']).stem}:{it.metadata['row']}"
            n = len(it.options)  # lm-eval: five choices on CSAT items, four otherwise
            shown = "\n".join(f"{'ABCD'[k]}: {o}" for k, o in enumerate(it.options[:4]))
            context = f"{it.context or ''}\n{it.question}\n{shown}\n정답:"
            pred = _fixed_prediction(key, n)
            rec = {
                "doc_id": key,
                "doc": {"id": it.metadata["click_id"], "paragraph": it.context or "", "question": it.question,
                        "choices": it.options, "answer": it.options[it.correct[0]]},
                "target": str(it.correct[0]),
                "arguments": {f"gen_args_{k}": {"arg_0": context, "arg_1": f" {'ABCDE'[k]}"} for k in range(n)},
                "filtered_resps": [[str(0.0 if k == pred else -30.0), "False"] for k in range(n)],
                "metrics": ["acc"],
                "acc": float(ref[key]),
            }  # fmt: skip
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    r = CliRunner().invoke(
        app,
        ["import", str(path), "--data-dir", str(shared_datasets / "click"), "--out", str(tmp_path / "run"),
         "--no-report", "-q"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "256 answers scored options the prompt did not show" in r.output
    assert "for 49 of them the gold was such an option" in r.output
    log = read_run(tmp_path / "run")
    entry = log.task_results("click")
    assert entry["n"] == 1995 and entry["foreign"]["acc_agreement"] == 1.0
    assert entry["foreign"]["scored_not_shown"]["answers"] == 256
    assert entry["foreign"]["scored_not_shown"]["gold_not_shown"] == 49
    hidden = [s for s in log.samples if s.foreign.get("scored_not_shown")]
    assert all(s.foreign["scored_not_shown"] == [4] and len(s.options) == 5 for s in hidden)
    for s in log.samples:
        assert s.metrics["acc"] == ref[s.foreign["doc_id"]]


# --- bad input: one line naming the file, row and field -------------------------------------------------
@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ("not json", "row 1: not valid JSON"),
        ('{"doc_id": 0, "filtered_resps": []}', "row 1, field doc: missing field"),
        ('{"doc_id": 0, "doc": {"question_idx": 0}}', "row 1, field filtered_resps: missing field"),
        ('{"doc_id": 0, "doc": {"question_idx": 0}, "filtered_resps": [["x", "False"]]}',
         "row 1, field filtered_resps[0]: expected a log-likelihood"),
        ('{"doc_id": 0, "doc": {"question_idx": 0}, "filtered_resps": [["0.5", "False"]]}',
         "row 1, field filtered_resps[0]: log-likelihood 0.5 is not <= 0"),
        ('{"doc_id": 0, "doc": {"question_idx": 999999}, "filtered_resps": [["-1", "False"]]}',
         "row 1, field doc: doc 0 of lm-eval task"),
    ],
)  # fmt: skip
def test_bad_lines_are_named(shared_datasets: Path, tmp_path: Path, line: str, expect: str):
    path = tmp_path / "samples_culturalbench_easy_local_2026-01-01T00-00-00.000000.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ForeignLogError, match=expect.replace("[", r"\[").replace("]", r"\]")) as exc:
        import_lmeval([path], tmp_path / "run", data_dir=_cb_dir(shared_datasets))
    assert str(exc.value).startswith(str(path))
    r = CliRunner().invoke(
        app, ["import", str(path), "--data-dir", _cb_dir(shared_datasets), "--out", str(tmp_path / "r")]
    )
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and path.name in r.output


def test_task_is_inferred_or_asked_for(tmp_path: Path):
    path = tmp_path / "samples_hellaswag_2026-01-01T00-00-00.000000.jsonl"
    path.write_text('{"doc_id": 0}\n', encoding="utf-8")
    r = CliRunner().invoke(app, ["import", str(path), "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "give --task" in r.output and path.name in r.output
    r = CliRunner().invoke(app, ["import", str(path), str(tmp_path / "x.eval"), "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "not both" in r.output


def test_global_mmlu_docs_map_by_sample_id(tmp_path: Path):
    """lm-eval's ``global_mmlu_full_<lang>_*`` docs name Global-MMLU's ``sample_id``: the item is
    found by it (the project's own Global-MMLU-format fixture rows), its options as lm-eval lists them."""
    data = Path(__file__).parent / "fixtures" / "global_mmlu"
    task = get_task("global_mmlu", data_dir=data)
    items = [it for it in task.items() if it.language == "en"][:5]
    assert items
    path = tmp_path / "samples_global_mmlu_full_en_stem_2026-01-01T00-00-00.000000.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for k, it in enumerate(items):
            lps = [-1.0, -2.0, -3.0, -4.0]
            context = (
                f"{it.question}\n"
                + "\n".join(f"{'ABCD'[j]}. {o}" for j, o in enumerate(it.options))
                + "\nAnswer:"
            )
            rec = {"doc_id": k, "doc": {"sample_id": it.metadata["sample_id"]}, "target": str(it.correct[0]),
                   "arguments": {f"gen_args_{j}": {"arg_0": context, "arg_1": f" {'ABCD'[j]}"} for j in range(4)},
                   "filtered_resps": [[str(v), "False"] for v in lps], "metrics": ["acc"],
                   "acc": float(0 in it.correct)}  # fmt: skip
            fh.write(json.dumps(rec) + "\n")
    res = import_lmeval([path], tmp_path / "run", data_dir=str(data))
    entry = res.results["tasks"]["global_mmlu"]
    assert entry["n"] == len(items) and entry["foreign"]["acc_agreement"] == 1.0
    assert [s.item_id for s in read_run(res.run_dir).samples] == [it.id for it in items]
    assert all(s.variant == Variant().id for s in read_run(res.run_dir).samples)
