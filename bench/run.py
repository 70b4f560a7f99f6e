"""Performance benchmark: culturelens vs lm-evaluation-harness vs the model's bare forward pass.

    make bench                       # 300 items, letter + cloze, sweep, re-run, memory at 1k items
    .venv/bin/python bench/run.py --items 300 --full   # also peak RSS on every BLEnD MCQ item

Everything runs on this machine, on the same GGUF file (the embedded SmolLM2-135M-Instruct), on the
same 4-option multiple-choice items built from the BLEnD annotations (``bench/blend_mc.py``), with the
same prompt text: the lm-eval task is fed the exact strings culturelens renders (chat template
applied) and the exact continuations it scores. Per-item choices are compared before speed is.
Each timed command runs in a fresh process with a fresh response cache; wall times include
process start-up and model load; scoring times exclude both. Results go to ``runs/bench/bench.json``.

lm-eval runs from ``.venv-bench`` (created on first use with pinned versions, :data:`BENCH_PINS`:
``lm-eval[hf]``, the main venv's transformers, the same CPU torch).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BENCH_VENV = ROOT / ".venv-bench"
WORK = ROOT / "runs" / "bench"
sys.path.insert(0, str(ROOT / "bench"))

import blend_mc  # noqa: E402

# a child that runs one command and reports its peak RSS (ru_maxrss of the only child it waited for)
_RSS_WRAPPER = (
    "import resource,subprocess,sys,json;r=subprocess.run(sys.argv[1:]);"
    "print(json.dumps({'rc':r.returncode,'rss_kb':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}),"
    "file=sys.stderr)"
)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` in a fresh process; wall seconds and peak RSS (MiB)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_WRAPPER, *cmd],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    wall = time.perf_counter() - t0
    info = json.loads(proc.stderr.strip().splitlines()[-1])
    if info["rc"] != 0:
        sys.exit(
            f"command failed ({info['rc']}): {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )
    return {"wall_s": wall, "peak_rss_mib": info["rss_kb"] / 1024}


def timed_run(name: str, args: list[str], fresh: bool = True) -> dict[str, Any]:
    """``culturelens run ARGS`` in a fresh process into ``WORK/name`` with its own response cache
    (emptied first unless ``fresh`` is False): wall time, peak RSS and the run's own timing."""
    out, cache = WORK / name, WORK / f"{name}.sqlite"
    if fresh:
        shutil.rmtree(out, ignore_errors=True)
        cache.unlink(missing_ok=True)
    cmd = [
        str(BIN / "culturelens"),
        "run",
        *args,
        "--cache",
        str(cache),
        "--out",
        str(out),
        "--no-report",
        "-q",
    ]
    res = timed(cmd)
    timing = json.loads((out / "timing.json").read_text())
    res.update(
        scoring_s=timing["scoring_s"],
        load_s=timing["model_load_s"],
        data_s=timing.get("data_s"),
        samples=timing["samples"],
        computed=timing["computed"],
        run_dir=str(out),
    )
    return res


def culturelens(
    items: Path, mode: str, model: str, name: str, extra: list[str] | None = None, fresh: bool = True
) -> dict[str, Any]:
    args = [
        "--task",
        "starter",
        "--data-dir",
        str(items),
        "--mode",
        mode,
        "--model",
        model,
        "--batch-size",
        "64",
    ]
    return timed_run(name, [*args, *(extra or [])], fresh)


def predictions(run_dir: str, raw_logprobs: bool = True) -> dict[str, int]:
    """item id -> chosen option (argmax of the response's per-option log-probs, original order)."""
    out = {}
    for line in Path(run_dir, "samples.jsonl").read_text().splitlines():
        s = json.loads(line)
        lps = s["response"]["logprobs"]
        shown = max(range(len(lps)), key=lps.__getitem__)
        out[s["item_id"]] = s["order"][shown] if s.get("order") else shown
    return out


def export_docs(items: Path, dest: Path) -> None:
    """Write the exact culturelens prompts as lm-eval docs, one file per mode."""
    from culturelens.backends.base import load_backend
    from culturelens.runner import build_request
    from culturelens.schema import Mode, Variant
    from culturelens.tasks.base import get_task

    task = get_task("starter", data_dir=str(items))
    backend = load_backend("default", lazy=True)
    for mode in (Mode.LETTER, Mode.CLOZE):
        rows = []
        for item in task.items():
            req = build_request(task.render(item, Variant(), mode), backend)
            choices = [" " + t for t in req.targets] if mode is Mode.LETTER else list(req.targets)
            rows.append({"id": item.id, "query": req.text, "choices": choices, "gold": item.correct[0]})
        (dest / f"{mode.value}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        )


def raw_llamacpp(docs: Path) -> dict[str, Any]:
    """Bare llama.cpp forward pass over each letter prompt from an empty KV cache, logits at the end only."""
    from culturelens.backends.base import load_backend

    be = load_backend("llamacpp:embedded")
    rows = [json.loads(x) for x in docs.read_text().splitlines()]
    toks = [be.tokenize(r["query"]) for r in rows]
    t0 = time.perf_counter()
    for t in toks:
        be.llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        be.llm.n_tokens = 0
        be._decode(t, [len(t) - 1])
    dt = time.perf_counter() - t0
    be.close()
    n = sum(map(len, toks))
    return {"tokens": n, "seconds": dt, "tok_per_s": n / dt}


def raw_hf(docs: Path, batch_size: int) -> dict[str, Any]:
    """Bare transformers forward pass (length-sorted batches, last-position logits only)."""
    import torch

    from culturelens.backends.base import load_backend

    be = load_backend("hf:embedded")
    model, tok = be.model, be.tok
    rows = [json.loads(x) for x in docs.read_text().splitlines()]
    ids = sorted((tok(r["query"], add_special_tokens=False)["input_ids"] for r in rows), key=len)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(ids), batch_size):
            chunk = ids[i : i + batch_size]
            width = max(map(len, chunk))
            x = torch.tensor([c + [pad] * (width - len(c)) for c in chunk])
            mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in chunk])
            model(input_ids=x, attention_mask=mask, logits_to_keep=1)
    dt = time.perf_counter() - t0
    n = sum(map(len, ids))
    return {"tokens": n, "seconds": dt, "tok_per_s": n / dt}


def tokens_to_process(run_dirs: list[str]) -> list[int]:
    """Tokens llama.cpp must evaluate per run with KV prefix reuse over the sorted unique prompts
    (what the runner does): the floor on any sweep's cost, whatever the implementation."""
    from culturelens.backends.base import load_backend

    be = load_backend("llamacpp:embedded")
    out = []
    for d in run_dirs:
        prompts = sorted({json.loads(x)["prompt"] for x in Path(d, "samples.jsonl").read_text().splitlines()})
        prev: list[int] = []
        total = 0
        for text in prompts:
            toks = be.tokenize(text)
            common = 0
            for a, b in zip(prev, toks[:-2], strict=False):
                if a != b:
                    break
                common += 1
            total += len(toks) - common
            prev = toks
        out.append(total)
    be.close()
    return out


#: the peer harness, pinned: lm-eval's ``hf`` extra (lm-eval alone no longer pulls transformers), the
#: transformers / accelerate / gguf the main venv uses, and the same CPU torch, installed the way the
#: Makefile installs the main venv's (pinned by constraints.txt: an unpinned torch would pull a
#: multi-GB CUDA build). Bump together, then delete .venv-bench.
BENCH_TORCH = "torch==2.13.0"
BENCH_PINS = (
    "lm-eval[hf]==0.4.13",
    "transformers==5.24.0",
    "accelerate==1.15.0",
    "gguf==0.19.0",
    "peft==0.21.2",
)
_BENCH_STAMP = BENCH_VENV / ".pins"


def ensure_bench_venv() -> Path:
    """``.venv-bench`` with :data:`BENCH_PINS` (re-installed when the pins change); fails with the
    import that is missing instead of later, inside lm-eval."""
    py = BENCH_VENV / "bin" / "python"
    want = "\n".join([BENCH_TORCH, *BENCH_PINS])
    if not py.exists() or not _BENCH_STAMP.exists() or _BENCH_STAMP.read_text() != want:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        pip = [str(py), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "-c", str(ROOT / "constraints.txt"), BENCH_TORCH], check=True)
        # the main lock pins every shared dependency (numpy, datasets, tokenizers...) as tested
        subprocess.run([*pip, "-c", str(ROOT / "constraints.txt"), BENCH_TORCH, *BENCH_PINS], check=True)
        _BENCH_STAMP.write_text(want)
    check = "import lm_eval, transformers, torch, accelerate, gguf"
    if subprocess.run([str(py), "-c", check], capture_output=True).returncode != 0:
        sys.exit(f"{BENCH_VENV} is missing a package ({check}): delete it and re-run to rebuild it")
    return py


def agreement(a: dict[str, int], b: dict[str, int]) -> float:
    shared = a.keys() & b.keys()
    return sum(a[k] == b[k] for k in shared) / max(len(shared), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=16, help="hf backend and lm-eval batch size")
    ap.add_argument("--skip-lmeval", action="store_true")
    ap.add_argument("--skip-hf", action="store_true")
    ap.add_argument(
        "--sweep-items", type=int, default=100, help="items in the 8-variant sweep and its baseline"
    )
    ap.add_argument("--raw-items", type=int, default=100, help="prompts timed for the raw forward-pass limit")
    ap.add_argument(
        "--full", action="store_true", help="also the real model's peak RSS on 1k and all (~7k) items"
    )
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CULTURELENS_HOME", str(WORK / "home"))  # model cards, dequantised cache
    out: dict[str, Any] = {"items": args.items, "batch_size": args.batch_size, "cpu_count": os.cpu_count()}

    items = WORK / f"blend_mc_{args.items}.jsonl"
    blend_mc.write_items(items, limit=args.items)
    docs = WORK / "docs"
    docs.mkdir(exist_ok=True)
    export_docs(items, docs)
    gguf = Path(__import__("culturelens.backends.base", fromlist=["x"]).embedded_model_path("embedded"))
    hf_opts = ["--model-opt", f"batch_size={args.batch_size}"]
    if not args.skip_hf:  # the first hf load dequantises the GGUF and caches it; later loads read the cache
        culturelens(items, "letter", "hf:embedded", "warm_hf", ["--limit", "4", *hf_opts])

    print("culturelens runs ...", flush=True)
    cl: dict[str, Any] = {}
    for mode in ("letter", "cloze"):
        cl[f"llamacpp/{mode}"] = culturelens(items, mode, "default", f"llamacpp_{mode}")
        if not args.skip_hf:
            cl[f"hf/{mode}"] = culturelens(items, mode, "hf:embedded", f"hf_{mode}", hf_opts)
    out["culturelens"] = cl

    if not args.skip_lmeval:
        print("lm-eval runs ...", flush=True)
        py = ensure_bench_venv()
        lm: dict[str, Any] = {}
        for mode in ("letter", "cloze"):
            dest = WORK / f"lmeval_{mode}.json"
            res = timed(
                [
                    str(py),
                    str(ROOT / "bench" / "lmeval_runner.py"),
                    str(docs / f"{mode}.jsonl"),
                    mode,
                    str(dest),
                    "--gguf",
                    str(gguf),
                    "--batch-size",
                    str(args.batch_size),
                ],
                env={"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
            )
            detail = json.loads(dest.read_text())
            res.update(load_s=detail["load_s"], scoring_s=detail["eval_s"], import_s=detail["import_s"])
            preds = {k: max(range(len(v)), key=v.__getitem__) for k, v in detail["loglikelihoods"].items()}
            res["agreement_llamacpp"] = agreement(preds, predictions(cl[f"llamacpp/{mode}"]["run_dir"]))
            if not args.skip_hf:
                res["agreement_hf"] = agreement(preds, predictions(cl[f"hf/{mode}"]["run_dir"]))
            res["n"] = len(preds)
            lm[mode] = res
        out["lm_eval"] = lm

    print("raw forward pass ...", flush=True)
    raw_docs = docs / "letter_raw.jsonl"
    raw_docs.write_text(
        "".join((docs / "letter.jsonl").read_text().splitlines(keepends=True)[: args.raw_items])
    )
    out["raw"] = {"llamacpp": raw_llamacpp(raw_docs)}
    if not args.skip_hf:
        out["raw"]["hf"] = raw_hf(raw_docs, args.batch_size)

    print("sweep, re-run, memory ...", flush=True)
    sweep_items = WORK / f"blend_mc_{args.sweep_items}.jsonl"
    blend_mc.write_items(sweep_items, limit=args.sweep_items)
    single = culturelens(sweep_items, "letter", "default", "single_for_sweep")
    sweep = culturelens(
        sweep_items,
        "letter",
        "default",
        "sweep8",
        ["--vary", "option_order=identity,reversed,rotate:1,rotate:2", "labels=letters,numbers"],
    )
    out["sweep8"], out["single_for_sweep"] = sweep, single
    first = cl["llamacpp/letter"]
    rerun = culturelens(items, "letter", "default", "llamacpp_letter", fresh=False)
    out["rerun"] = rerun
    mem = {}
    for n in [1000, None] if args.full else []:
        f = WORK / f"blend_mc_{n or 'all'}.jsonl"
        count = blend_mc.write_items(f, limit=n)
        r = culturelens(f, "letter", "default", f"mem_{n or 'all'}")
        mem[str(count)] = {"peak_rss_mib": r["peak_rss_mib"], "wall_s": r["wall_s"], "samples": r["samples"]}
    out["memory"] = mem
    # the harness alone (fake backend: no weights) on 1k and on every BLEnD MCQ item
    harness = {}
    for n in (1000, None):
        f = WORK / f"blend_mc_{n or 'all'}.jsonl"
        count = blend_mc.write_items(f, limit=n)
        r = culturelens(f, "letter", "fake:hash", f"memfake_{n or 'all'}")
        harness[str(count)] = {
            "peak_rss_mib": r["peak_rss_mib"],
            "wall_s": r["wall_s"],
            "samples": r["samples"],
        }
    out["memory_harness"] = harness

    # ratios
    ratios: list[tuple[str, float | None, str, str]] = []
    for mode, target in (("letter", 3.0), ("cloze", 2.0)):
        if "lm_eval" in out:
            le = out["lm_eval"][mode]
            for eng in ("llamacpp", "hf"):
                if f"{eng}/{mode}" in cl:
                    c = cl[f"{eng}/{mode}"]
                    ratios.append(
                        (
                            f"{mode}: lm-eval wall / culturelens({eng}) wall",
                            le["wall_s"] / c["wall_s"],
                            # issue 18: letter >= 3x with hf, >= 2.5x with llama.cpp; cloze has none
                            (f">= {2.5 if eng == 'llamacpp' else target}" if mode == "letter" else ""),
                            f"agreement {le[f'agreement_{eng}']:.3f}",
                        )
                    )
                    ratios.append(
                        (
                            f"{mode}: lm-eval scoring / culturelens({eng}) scoring",
                            le["scoring_s"] / c["scoring_s"],
                            "",
                            "",
                        )
                    )
    letter_tokens = out["raw"]["llamacpp"]["tokens"] * args.items / min(args.raw_items, args.items)
    for eng in ("llamacpp", "hf"):
        if eng in out["raw"] and f"{eng}/letter" in cl:
            # useful tokens: every prompt token of every item (estimated from the raw subset's mean length)
            useful = letter_tokens / cl[f"{eng}/letter"]["scoring_s"]
            ratios.append(
                (
                    f"letter: culturelens({eng}) useful tok/s / raw forward tok/s",
                    useful / out["raw"][eng]["tok_per_s"],
                    ">= 0.8",
                    f"raw {out['raw'][eng]['tok_per_s']:.0f} tok/s",
                )
            )
    single_tok, sweep_tok = tokens_to_process([single["run_dir"], sweep["run_dir"]])
    out["sweep8"]["tokens_to_process"], single["tokens_to_process"] = sweep_tok, single_tok
    ratios.append(
        (
            f"sweep of 8 variants ({args.sweep_items} items): scoring / single pass scoring",
            sweep["scoring_s"] / single["scoring_s"],
            f"<= {1.1 * sweep_tok / single_tok:.2f} (1.1x the token floor)",
            f"wall {sweep['wall_s'] / single['wall_s']:.2f}x",
        )
    )
    ratios.append(
        (
            "sweep of 8 variants: tokens to evaluate / single pass (floor)",
            sweep_tok / single_tok,
            "",
            f"{sweep_tok} vs {single_tok} tokens",
        )
    )
    ratios.append(
        (
            "re-run of a finished run: first wall / re-run wall",
            first["wall_s"] / rerun["wall_s"],
            ">= 50",
            f"{first['wall_s']:.1f}s -> {rerun['wall_s']:.2f}s",
        )
    )
    for n, m in mem.items():
        ratios.append(
            (f"peak RSS, {n} items (MiB)", m["peak_rss_mib"], "flat", f"first run {m['wall_s']:.0f}s")
        )
    for n, m in harness.items():
        ratios.append(
            (
                f"peak RSS, harness only (fake model), {n} items (MiB)",
                m["peak_rss_mib"],
                "flat",
                f"wall {m['wall_s']:.1f}s",
            )
        )
    out["ratios"] = [{"what": w, "value": v, "target": t, "note": n} for w, v, t, n in ratios]
    (WORK / "bench.json").write_text(json.dumps(out, indent=1))

    from rich.console import Console
    from rich.table import Table

    times = Table(title=f"wall / load / scoring seconds, {args.items} BLEnD MCQ items")
    for col in ("run", "wall s", "load s", "scoring s", "peak RSS MiB"):
        times.add_column(col)
    for name, r in [
        *((f"culturelens {k}", v) for k, v in cl.items()),
        *((f"lm-eval hf/{k}", v) for k, v in out.get("lm_eval", {}).items()),
        (f"culturelens single pass, {args.sweep_items} items (llamacpp)", single),
        (f"culturelens sweep x8, {args.sweep_items} items (llamacpp)", sweep),
        ("culturelens re-run (llamacpp)", rerun),
    ]:
        reused = r is rerun  # a finished run is reused: nothing is loaded or scored
        times.add_row(
            name,
            f"{r['wall_s']:.2f}",
            "-" if reused else f"{r.get('load_s', 0):.2f}",
            "-" if reused else f"{r.get('scoring_s', 0):.2f}",
            f"{r['peak_rss_mib']:.0f}",
        )
    table = Table(title="ratios (measured in this run)")
    for col in ("ratio", "value", "target", "note"):
        table.add_column(col)
    for w, v, t, n in ratios:
        table.add_row(w, f"{v:.2f}" if v is not None else "-", t, n)
    con = Console()
    con.print(times)
    con.print(table)
    con.print(f"details: {WORK / 'bench.json'}")


if __name__ == "__main__":
    main()
