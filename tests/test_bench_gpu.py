"""bench/gpu: argument handling, the comparison and tolerance helpers, the vLLM plumbing against a stand-in
``vllm`` module (no GPU here), and (slow) the CPU smoke run end to end on the real embedded model."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "bench" / "gpu"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_gpu_{name}", GPU / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # importing runs nothing: no subprocess, no torch
    return mod


@pytest.fixture(scope="module")
def bench():
    return _load("run")


def test_import_runs_nothing(bench) -> None:
    assert "torch" not in vars(bench) and callable(bench.main)
    assert bench.VLLM_PIN.startswith("vllm==") and bench.VLLM_PIN.count(".") == 2  # pinned


def test_parse_args_and_settings(bench) -> None:
    a = bench.parse_args([])
    assert (
        a.model == "hf:embedded"
        and not a.cpu_smoke
        and a.budget == bench.DEFAULT_BUDGET_S < bench.TARGET_WALL_S
    )
    gpu = bench.settings(a, cuda=True)
    assert (gpu["smoke"], gpu["dtype"], gpu["items"]) == (False, "bfloat16", bench.GPU_DEFAULTS["items"])
    assert gpu["batch_size"] >= 128  # large batches on the GPU
    cpu = bench.settings(a, cuda=False)  # no CUDA: the tiny CPU settings
    assert cpu["smoke"] and cpu["dtype"] == "float32" and cpu["items"] <= 8
    b = bench.parse_args(["--cpu-smoke", "--items", "3", "--batch-size", "2", "--dtype", "bfloat16"])
    s = bench.settings(b, cuda=True)  # --cpu-smoke wins over a GPU; explicit options win over defaults
    assert (s["smoke"], s["items"], s["batch_size"], s["dtype"]) == (True, 3, 2, "bfloat16")
    for bad in (["--items", "0"], ["--model", "llamacpp:x.gguf"], ["--tol", "-1"], ["--budget", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_budget(bench) -> None:
    now = [100.0]
    b = bench.Budget(60, clock=lambda: now[0])
    assert b.allows(60) and b.remaining() == 60
    now[0] = 150.0
    assert b.elapsed() == 50 and not b.allows(11) and b.allows(10)
    why = bench.run_step("x", [sys.executable, "-c", "1"], b, Path("."), need_s=30)
    assert why is not None and why.startswith("not measured (time budget")


def test_run_step(bench, tmp_path: Path) -> None:
    b = bench.Budget(60)
    assert bench.run_step("ok", [sys.executable, "-c", "print('hi')"], b, tmp_path) is None
    assert (tmp_path / "ok.log").read_text().strip() == "hi"
    why = bench.run_step("bad", [sys.executable, "-c", "raise SystemExit(3)"], b, tmp_path)
    assert why is not None and why.startswith("failed (exit 3")
    short = bench.Budget(1.5)
    why = bench.run_step(
        "slow", [sys.executable, "-c", "import time; time.sleep(30)"], short, tmp_path, need_s=0
    )
    assert why == "not measured (stopped at the time budget)"


def test_diff_stats_and_tolerance(bench) -> None:
    a = {"q1\t0": [-0.5, -1.0], "q1\t1": [-2.0]}
    same = bench.diff_stats(a, {"q1\t0": [-0.5, -1.0], "q1\t1": [-2.0]})
    assert same == {"tokens": 3, "missing": 0, "max_abs": 0.0, "mean_abs": 0.0}
    near = bench.diff_stats(a, {"q1\t0": [-0.52, -1.0], "q1\t1": [-2.01]})
    assert (
        near["max_abs"] == pytest.approx(0.02) and bench.within(near, 0.05) and not bench.within(near, 0.01)
    )
    # the prefix-caching trap: positions served from the cache come back without log-probs
    trap = bench.diff_stats(a, {"q1\t0": [None, -1.0], "q1\t1": [-2.0]})
    assert trap["missing"] == 1 and not bench.within(trap, 10.0)
    assert bench.diff_stats(a, {"q1\t0": [-0.5]})["missing"] == 3  # a short row and a missing row
    assert bench.diff_stats(a, {**a, "q1\t1": [float("-inf")]})["missing"] == 1
    assert not bench.within(bench.diff_stats({}, {}), 1.0)  # nothing compared is not a pass


def test_option_sums_and_choices(bench) -> None:
    sums = bench.option_sums({"a/1\t1": [-1.0, -1.0], "a/1\t0": [-0.5], "b\t0": [None], "b\t1": [-3.0]})
    assert sums == {"a/1": [-0.5, -2.0], "b": [None, -3.0]}
    ch = bench.choice_agreement({"a/1": [-0.4, -2.2], "c": [-1, -2]}, sums)
    assert ch["items"] == 1 and ch["agree"] == 1.0 and ch["max_abs"] == pytest.approx(0.2)
    ch = bench.choice_agreement({"a/1": [-3.0, -2.0]}, sums)
    assert ch["agree"] == 0.0
    assert bench.choice_agreement({}, {})["agree"] is None


def test_sequence_agreement(bench) -> None:
    t = bench.sequence_agreement(
        {"a": "B. yes", "b": "C", "x": "only here"}, {"a": "B. yes", "b": "D", "y": ""}
    )
    assert t["items"] == 2 and t["identical"] == 0.5 and t["prefix"] == pytest.approx(0.5)
    ids = bench.sequence_agreement({"a": [1, 2, 3, 4]}, {"a": [1, 2, 9]})
    assert ids["identical"] == 0.0 and ids["prefix"] == pytest.approx(0.5)
    assert bench.sequence_agreement({}, {"a": "x"})["identical"] is None


def test_verdict_rows_and_table(bench) -> None:
    assert bench.verdict(0.9, ">= 0.8") is True and bench.verdict(0.7, ">= 0.8") is False
    assert bench.verdict(100, "<= 480") is True and bench.verdict(None, ">= 1") is None
    assert bench.verdict(3.0, "") is None
    r = bench.row("x", None, ">= 0.8", missing=bench.NO_VLLM)
    assert r["measured"] == bench.NO_VLLM and r["met"] == "-" and r["target"] == ">= 0.8"
    assert bench.row("y", 0.5, ">= 0.8")["met"] == "NOT MET" and bench.row("z", 1.0, "")["met"] == "-"
    assert bench.row("w", float("inf"), "<= 0.05", fmt="{:.2e}")["met"] == "NOT MET"
    cfg = bench.settings(bench.parse_args(["--cpu-smoke"]), cuda=False)
    rows = bench.build_rows({"vllm": {"why": bench.NO_VLLM}, "wall_s": 42.0}, cfg)
    vllm_rows = [x for x in rows if x["what"].startswith("vLLM")]
    assert len(vllm_rows) == 5 and all(x["measured"] == bench.NO_VLLM for x in vllm_rows)
    assert any("prefix caching on" in x["what"] for x in vllm_rows)
    table = bench.render(rows)
    assert "not measured (no GPU / vLLM not installed)" in table and table.splitlines()[0].startswith(
        "figure"
    )


def test_find_vllm_without_gpu(bench) -> None:
    args = bench.parse_args([])
    assert bench.find_vllm(args, cuda=False) == (None, bench.NO_VLLM, 0.0)  # never installs without a GPU
    assert bench.find_vllm(bench.parse_args(["--skip-vllm"]), cuda=True)[0] is None
    py, why, _ = bench.find_vllm(bench.parse_args(["--vllm-python", sys.executable]), cuda=True)
    assert py is None and why.startswith(bench.NO_VLLM)  # vLLM is not installed here


def test_raw_chunks_match_the_hf_backend() -> None:
    raw = _load("raw_hf")
    costs = [(1, 5), (1, 50), (1, 7), (4, 20), (1, 6)]
    got = list(raw.chunks(costs, batch_size=2, max_batch_tokens=80))
    assert got == [[0, 4], [2], [3], [1]]  # sorted by length; 2 rows; rows x longest <= 80
    hf = pytest.importorskip("culturelens.backends.hf")
    be = object.__new__(hf.HFBackend)
    be.batch_size, be.max_batch_tokens = 2, 80
    assert list(be._chunks(costs)) == got


# --- the vLLM plumbing, against a stand-in vllm package -----------------------------------------------
FAKE_VLLM = """
import os
__version__ = "0.0-fake"

class Logprob:
    def __init__(self, logprob):
        self.logprob = logprob

class SamplingParams:
    def __init__(self, temperature=1.0, max_tokens=16, prompt_logprobs=None, stop_token_ids=None, **kw):
        self.max_tokens, self.prompt_logprobs, self.stop = max_tokens, prompt_logprobs, stop_token_ids or []

class _Completion:
    def __init__(self, ids):
        self.token_ids, self.text = ids, " ".join(map(str, ids))

class _Out:
    def __init__(self, comp, plp):
        self.outputs, self.prompt_logprobs = [comp], plp

class LLM:
    def __init__(self, model, enable_prefix_caching=True, **kw):
        self.caching, self.seen = enable_prefix_caching, set()

    def generate(self, prompts, params, use_tqdm=True):
        params = params if isinstance(params, list) else [params] * len(prompts)
        outs = []
        for p, sp in zip(prompts, params):
            ids = p["prompt_token_ids"]
            gen = [(sum(ids) + i) % 50 + 3 for i in range(sp.max_tokens)] + sp.stop[:1]
            plp = None
            if sp.prompt_logprobs is not None and self.caching and os.environ.get("FAKE_VLLM_REFUSE"):
                raise ValueError("Prefix caching with prompt logprobs not yet supported")
            if sp.prompt_logprobs is not None:
                plp = [None] + [{t: Logprob(-((t * 7 + i) % 11) / 10)} for i, t in enumerate(ids[1:], 1)]
                key = tuple(ids[:4])
                if self.caching and os.environ.get("FAKE_VLLM_TRAP") and key in self.seen:
                    plp = [None] * len(ids)  # what the trap looks like: cached positions lose their log-probs
                self.seen.add(key)
            elif self.caching:
                self.seen.add(tuple(ids[:4]))
            outs.append(_Out(_Completion(gen), plp))
        return outs
"""


def _fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "fake" / "vllm"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_VLLM)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "fake"))


def _tokens(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    gen = [{"id": f"g{i}", "ids": [1, 2, 3, i], "max_tokens": 3} for i in range(3)]
    for g in gen:  # what the fake model generates, so the hf side "agrees" on two of three
        g["hf_ids"] = [(sum(g["ids"]) + k) % 50 + 3 for k in range(3)]
        g["hf_text"] = " ".join(map(str, g["hf_ids"]))
    gen[2]["hf_ids"] = [0]
    cloze = [
        {
            "id": f"c{i}",
            "ctx": [1, 5, 9, 2, i],
            "conts": [[4, 5], [6], [7, 8, 9]],
            "hf_logprobs": [-1, -2, -3],
        }
        for i in range(3)
    ]
    (work / "tokens.json").write_text(
        json.dumps({"eos_ids": [2], "model_path": "/m", "generate": gen, "cloze": cloze})
    )


def test_vllm_worker_and_comparisons(bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_vllm(tmp_path, monkeypatch)
    work = tmp_path / "w"
    _tokens(work)
    args = bench.parse_args(["--work", str(work)])
    cfg = bench.settings(args, cuda=True)
    assert bench.vllm_version(sys.executable) == "0.0-fake"
    out = bench.run_vllm(sys.executable, "0.0-fake", cfg, args, work, work, bench.Budget(120))
    assert "why" not in out, out
    assert out["generate"]["tokens"] == 9 and "texts" not in out["generate"]  # the stop token is not counted
    assert out["token_agreement"]["identical"] == pytest.approx(2 / 3)
    assert out["cache_cold"]["missing"] == 0 and out["cache_cold"]["tokens"] == 18
    assert out["prefix_caching_equal"] is True
    on = json.loads((work / "vllm_on.json").read_text())
    assert on["prefix_caching"] == "on" and len(on["logprobs"]) == 2 and "warm_cache_s" in on
    res = {"vllm": out, "culturelens": {"generate": {"scoring_s": 1.0, "generated_tokens": 9}}, "wall_s": 10}
    rows = {r["what"]: r for r in bench.build_rows(res, cfg)}
    cache_rows = [r for w, r in rows.items() if "prefix caching on" in w]
    assert [r["met"] for r in cache_rows] == ["met", "met"]
    assert rows["vLLM greedy tokens = culturelens hf greedy tokens (share)"]["measured"] == "0.67"


def test_vllm_prefix_caching_trap_is_caught(bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_vllm(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_VLLM_TRAP", "1")
    work = tmp_path / "w"
    _tokens(work)
    args = bench.parse_args(["--work", str(work)])
    cfg = bench.settings(args, cuda=True)
    out = bench.run_vllm(sys.executable, "0.0-fake", cfg, args, work, work, bench.Budget(120))
    assert out["cache_cold"]["missing"] > 0 and out["prefix_caching_equal"] is False
    rows = [r for r in bench.build_rows({"vllm": out}, cfg) if "prefix caching on" in r["what"]]
    assert [r["met"] for r in rows] == ["NOT MET", "NOT MET"]


# --- end to end on the CPU ------------------------------------------------------------------------------
@pytest.mark.slow
def test_cpu_smoke_end_to_end(tmp_path: Path) -> None:
    """--cpu-smoke: the three culturelens runs and the raw baseline on 3 items of the real embedded model;
    the JSON marks every vLLM figure not measured. (About 40 s on an idle 2-core machine.)"""
    out = tmp_path / "gpu.json"
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            str(GPU / "run.py"),
            "--cpu-smoke",
            "--items",
            "3",
            "--work",
            str(tmp_path / "w"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert time.monotonic() - t0 < 600
    res = json.loads(out.read_text())
    assert res["gpu_measured"] is False and res["settings"]["smoke"] and res["settings"]["device"] == "cpu"
    for mode in ("letter", "cloze", "generate"):
        assert res["culturelens"][mode]["samples"] == 3
        assert res["raw"][mode]["tokens"] > 0 and res["raw"][mode]["seconds"] > 0
    assert res["raw"]["cloze"]["max_abs_diff_vs_culturelens"] < 1e-3  # fp32: the same log-probs
    assert res["raw"]["generate"]["identical_to_culturelens"] == 1.0
    assert res["vllm"] == {"why": "not measured (no GPU / vLLM not installed)"}
    rows = {r["what"]: r for r in res["rows"]}
    assert all(
        r["measured"] == "not measured (no GPU / vLLM not installed)"
        for w, r in rows.items()
        if w.startswith("vLLM")
    )
    assert all(r["value"] is not None for w, r in rows.items() if not w.startswith("vLLM"))
    assert "GPU figures: still to be measured" in proc.stdout


def test_vllm_refusing_prompt_logprobs_with_caching(
    bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vLLM that refuses prompt_logprobs with prefix caching on: the generation figures still come
    through, the caching rows say why they are missing, the off engine still gives the cloze choices."""
    _fake_vllm(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_VLLM_REFUSE", "1")
    work = tmp_path / "w"
    _tokens(work)
    args = bench.parse_args(["--work", str(work)])
    cfg = bench.settings(args, cuda=True)
    out = bench.run_vllm(sys.executable, "0.0-fake", cfg, args, work, work, bench.Budget(120))
    assert "why" not in out and "prefix_caching_equal" not in out and out["generate"]["tokens"] == 9
    assert out["cloze_vs_culturelens"]["items"] == 3
    rows = [r for r in bench.build_rows({"vllm": out}, cfg) if "prefix caching on" in r["what"]]
    assert all("not yet supported" in r["measured"] and r["met"] == "-" for r in rows)
