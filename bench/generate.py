"""Generate-mode benchmark: culturelens vs lm-evaluation-harness ``generate_until`` on BLEnD short answers.

    .venv/bin/python bench/generate.py --limit 80          # about 10 minutes on 2 busy cores

Both harnesses run through transformers on the same GGUF file (the embedded SmolLM2-135M-Instruct),
greedy, on the same prompt strings, with the same budget and stop rule:

* culturelens: ``culturelens run --task blend --model hf:embedded --mode generate`` (chat template
  applied by the backend, ``--opt max_tokens``); the prompts are read back from the run's samples;
* lm-eval: ``HFLM(pretrained=dir, gguf_file=name)`` and a generated ``generate_until`` task over those
  exact prompt strings (``bench/lmeval_gen_runner.py``, run in ``.venv-bench``), ``max_gen_toks`` =
  the task's ``max_tokens``, ``do_sample: false``.

Stop sequences: the BLEnD protocol has none. The official code takes the whole reply (API defaults),
and the task's soft exact match looks for the answer anywhere in the cleaned reply, so a stop
string such as "\\n" would change what is graded. Generation ends at the model's EOS token or at
``max_tokens`` (64 by default), so lm-eval gets ``until: []``, to which it adds the EOS text itself.

Rows decoded together: ``--batch-size`` for both (lm-eval ``batch_size``, culturelens
``--model-opt batch_size``). lm-eval sorts all its requests by length before it cuts batches, so
culturelens's runner hands the backend every request at once (``--batch-size`` of the run = N) and
the backend cuts the same length-sorted micro-batches of ``batch_size`` rows.

Each harness runs in a fresh process with a fresh response cache. Wall times include process start,
imports, data and model load (culturelens reads the dequantised weights it cached on the first hf
load, warmed here first; lm-eval dequantises the GGUF on every run). Generation times are
culturelens's ``scoring_s`` (computing every answer) and the time inside lm-eval's
``generate_until``. Outputs are compared prompt by prompt. Results: ``runs/bench/generate.json``.

llama.cpp part (``--skip-llamacpp`` leaves it out): ``culturelens run --model default`` (llama.cpp on the
same GGUF) in generate mode on the first ``--llamacpp-limit`` items, against a bare llama-cpp-python
greedy loop over the exact prompts it sent (``bench/raw_llamacpp_gen.py``, fresh process, the backend's
``Llama()`` options, tokenization and EOS-only stop; prompt eval plus token-by-token decode, timed
alone). Reported: culturelens's generated tok/s as a share of the raw loop's (the floor under any
"generation >= 2x" target: one sequence cannot decode faster than the engine) and identical outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORK = ROOT / "runs" / "bench"
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "blend"
TARGET = 3.0
IDENTICAL_TARGET = 0.99
sys.path.insert(0, str(ROOT / "bench"))

from run import ensure_bench_venv, timed, timed_run  # noqa: E402


def culturelens_run(
    data: Path, name: str, limit: int, max_tokens: int, batch_size: int, runner_batch: int
) -> dict[str, Any]:
    res = timed_run(
        name,
        [
            "--task", "blend", "--data-dir", str(data), "--model", "hf:embedded", "--mode", "generate",
            "--limit", str(limit), "--opt", f"max_tokens={max_tokens}",
            "--batch-size", str(runner_batch), "--model-opt", f"batch_size={batch_size}",
        ],
    )  # fmt: skip
    res["generate_s"] = res["scoring_s"]
    return res


def culturelens_llamacpp_run(data: Path, name: str, limit: int, max_tokens: int) -> dict[str, Any]:
    """``culturelens run --model default`` (the embedded GGUF through llama.cpp) in generate mode."""
    res = timed_run(
        name,
        [
            "--task", "blend", "--data-dir", str(data), "--model", "default", "--mode", "generate",
            "--limit", str(limit), "--opt", f"max_tokens={max_tokens}",
        ],
    )  # fmt: skip
    res["generate_s"] = res["scoring_s"]
    return res


def llamacpp_part(data: Path, gguf: Path, limit: int, max_tokens: int) -> dict[str, Any]:
    """culturelens's llama.cpp generate mode vs the raw llama-cpp-python greedy loop on the same prompts."""
    from culturelens.backends.probe import check

    culturelens_llamacpp_run(data, "gen_llamacpp_warm", 1, 2)  # native probe verdict, page cache
    print("culturelens llama.cpp generate run ...", flush=True)
    cl = culturelens_llamacpp_run(data, "gen_llamacpp", limit, max_tokens)
    rows = samples(cl["run_dir"])
    cl_tokens = sum(sum(r["response"].get("n_tokens") or [0]) for r in rows)
    cl.update(
        n_prompts=len(rows),
        tokens=cl_tokens,
        answers_per_s=len(rows) / cl["generate_s"],
        tok_per_s=cl_tokens / cl["generate_s"],
    )
    docs = WORK / "gen_llamacpp_docs.jsonl"
    docs.write_text(
        "".join(
            json.dumps({"id": r["item_id"], "query": r["prompt"]}, ensure_ascii=False) + "\n" for r in rows
        )
    )
    print("raw llama.cpp generation loop ...", flush=True)
    dest = WORK / "gen_llamacpp_raw.json"
    verdict = check(gguf)  # the buffer types the backend chose for this file on this machine
    raw = timed(
        [
            sys.executable,
            str(ROOT / "bench" / "raw_llamacpp_gen.py"),
            str(docs),
            str(dest),
            "--gguf",
            str(gguf),
            "--max-tokens",
            str(max_tokens),
            *([] if verdict.use_extra_bufts else ["--no-extra-bufts"]),
        ]
    )
    detail = json.loads(dest.read_text())
    raw.update({k: v for k, v in detail.items() if k not in ("texts", "n_tokens")})
    theirs = detail["texts"]
    same = sum(theirs.get(r["item_id"]) == r["response"]["text"] for r in rows)
    return {
        "culturelens": {k: v for k, v in cl.items() if k != "run_dir"},
        "raw": raw,
        "identical": same,
        "identical_share": same / max(len(rows), 1),
        "texts": {r["item_id"]: r["response"]["text"] for r in rows},
        "prompts": {r["item_id"]: r["prompt"] for r in rows},
        "diffs": [
            {"id": r["item_id"], "culturelens": r["response"]["text"], "raw": theirs.get(r["item_id"])}
            for r in rows
            if theirs.get(r["item_id"]) != r["response"]["text"]
        ],
    }


def samples(run_dir: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in Path(run_dir, "samples.jsonl").read_text().splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=80, help="BLEnD items (culturelens --limit)")
    ap.add_argument("--batch-size", type=int, default=16, help="rows decoded together, both harnesses")
    ap.add_argument("--max-tokens", type=int, default=64, help="the blend task's max_tokens (default 64)")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("CULTURELENS_DATA", DEFAULT_DATA)))
    ap.add_argument("--skip-lmeval", action="store_true")
    ap.add_argument("--skip-llamacpp", action="store_true", help="leave out the llama.cpp part")
    ap.add_argument("--llamacpp-limit", type=int, default=24, help="BLEnD items in the llama.cpp part")
    args = ap.parse_args()
    data = args.data / "blend" if (args.data / "blend" / "data").is_dir() else args.data
    WORK.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CULTURELENS_HOME", str(WORK / "home"))  # model cards, dequantised cache
    from culturelens.backends.base import embedded_model_path

    gguf = Path(embedded_model_path("embedded"))
    out: dict[str, Any] = {
        "limit": args.limit,
        "batch_size": args.batch_size,
        "max_tokens": args.max_tokens,
        "stop_sequences": "none besides EOS (BLEnD grades the whole reply); lm-eval until=[] + its EOS text",
        "cpu_count": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
    }

    # the first hf load dequantises the GGUF and caches it; the timed run reads the cache
    culturelens_run(data, "gen_warm", 1, 2, args.batch_size, args.batch_size)
    print("culturelens generate run ...", flush=True)
    cl = culturelens_run(data, "gen_culturelens", args.limit, args.max_tokens, args.batch_size, 1 << 16)
    rows = samples(cl["run_dir"])
    out["culturelens"] = {k: v for k, v in cl.items() if k != "run_dir"}
    out["n_prompts"] = len(rows)
    docs = WORK / "gen_docs.jsonl"
    docs.write_text(
        "".join(
            json.dumps({"id": r["item_id"], "query": r["prompt"]}, ensure_ascii=False) + "\n" for r in rows
        )
    )

    ratios: list[tuple[str, float | None, str, str]] = []
    if not args.skip_lmeval:
        print("lm-eval generate_until run ...", flush=True)
        py = ensure_bench_venv()
        dest = WORK / "gen_lmeval.json"
        le = timed(
            [
                str(py),
                str(ROOT / "bench" / "lmeval_gen_runner.py"),
                str(docs),
                str(dest),
                "--gguf",
                str(gguf),
                "--max-gen-toks",
                str(args.max_tokens),
                "--batch-size",
                str(args.batch_size),
            ],
            env={"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
        )
        detail = json.loads(dest.read_text())
        le.update({k: detail[k] for k in ("import_s", "load_s", "eval_s", "generate_s", "version")})
        theirs = detail["texts"]
        same_prompt = sum(detail["contexts"].get(r["item_id"]) == r["prompt"] for r in rows)
        same = [r["item_id"] for r in rows if theirs.get(r["item_id"]) == r["response"]["text"]]
        diffs = [r for r in rows if theirs.get(r["item_id"]) != r["response"]["text"]]
        share = len(same) / max(len(rows), 1)
        le.update(identical=len(same), identical_share=share, contexts_identical=same_prompt)
        out["lm_eval"] = le
        out["diffs"] = [
            {"id": r["item_id"], "culturelens": r["response"]["text"], "lm_eval": theirs.get(r["item_id"])}
            for r in diffs
        ]
        ratios += [
            (
                "lm-eval wall / culturelens wall",
                le["wall_s"] / cl["wall_s"],
                f">= {TARGET:g}",
                f"{le['wall_s']:.1f} s vs {cl['wall_s']:.1f} s",
            ),
            (
                "lm-eval generation / culturelens generation",
                le["generate_s"] / cl["generate_s"],
                "",
                f"{le['generate_s']:.1f} s vs {cl['generate_s']:.1f} s",
            ),
            (
                "identical outputs (share of prompts)",
                share,
                f">= {IDENTICAL_TARGET:g}",
                f"{len(same)}/{len(rows)}; prompts as sent {same_prompt}/{len(rows)}",
            ),
        ]
    met_wall = bool(ratios) and ratios[0][1] is not None and ratios[0][1] >= TARGET
    met_same = bool(ratios) and ratios[2][1] is not None and ratios[2][1] >= IDENTICAL_TARGET
    out["target_met"] = met_wall and met_same

    if not args.skip_llamacpp:
        lc = llamacpp_part(data, gguf, args.llamacpp_limit, args.max_tokens)
        out["llamacpp"] = lc
        c, r = lc["culturelens"], lc["raw"]
        n = c["n_prompts"]
        ratios += [
            (
                "llama.cpp generate: culturelens generation tok/s / raw llama.cpp tok/s",
                c["tok_per_s"] / r["tok_per_s"] if r["tok_per_s"] else None,
                "",
                f"{c['tok_per_s']:.1f} vs {r['tok_per_s']:.1f} tok/s; the floor under the target "
                "'llama.cpp generation >= 2x its rate': one sequence decodes no faster than the engine",
            ),
            (
                "llama.cpp generate: identical outputs to the raw loop (share)",
                lc["identical_share"],
                "",
                f"{lc['identical']}/{n}; {c['tokens']} vs {r['tokens']} tokens generated",
            ),
            (
                "llama.cpp generate: culturelens answers/s",
                c["answers_per_s"],
                "",
                f"{c['tok_per_s']:.1f} tok/s; {n} answers in {c['generate_s']:.1f} s (wall {c['wall_s']:.1f} s)",
            ),
        ]
    out["loadavg_end"] = os.getloadavg()
    out["ratios"] = [{"what": w, "value": v, "target": t, "note": n} for w, v, t, n in ratios]
    (WORK / "generate.json").write_text(json.dumps(out, indent=1, ensure_ascii=False))

    from rich.console import Console
    from rich.table import Table

    con = Console()
    times = Table(
        title=f"generate mode, {len(rows)} BLEnD short-answer prompts, max {args.max_tokens} tokens"
    )
    for col in ("run", "wall s", "load s", "generation s", "peak RSS MiB"):
        times.add_column(col)
    times.add_row(
        "culturelens hf:embedded",
        f"{cl['wall_s']:.1f}",
        f"{cl['load_s']:.1f}",
        f"{cl['generate_s']:.1f}",
        f"{cl['peak_rss_mib']:.0f}",
    )
    if "lm_eval" in out:
        le = out["lm_eval"]
        times.add_row(
            "lm-eval hf generate_until",
            f"{le['wall_s']:.1f}",
            f"{le['load_s']:.1f}",
            f"{le['generate_s']:.1f}",
            f"{le['peak_rss_mib']:.0f}",
        )
    if "llamacpp" in out:
        c, r = out["llamacpp"]["culturelens"], out["llamacpp"]["raw"]
        times.add_row(
            f"culturelens default (llama.cpp), {c['n_prompts']} prompts",
            f"{c['wall_s']:.1f}",
            f"{c['load_s']:.1f}",
            f"{c['generate_s']:.1f}",
            f"{c['peak_rss_mib']:.0f}",
        )
        times.add_row(
            "raw llama-cpp-python greedy loop, same prompts",
            f"{r['wall_s']:.1f}",
            f"{r['load_s']:.1f}",
            f"{r['seconds']:.1f}",
            f"{r['peak_rss_mib']:.0f}",
        )
    table = Table(title="target 1: generate mode (measured in this run)")
    for col in ("ratio", "measured", "target", "met", "note"):
        table.add_column(col)
    for w, v, t, n in ratios:
        met = "" if not t else ("met" if v is not None and v >= float(t.split()[-1]) else "not met")
        table.add_row(w, f"{v:.2f}" if v is not None else "-", t, met, n)
    con.print(times)
    con.print(table)
    for d in out.get("diffs", [])[:3]:
        con.print(f"[bold]{d['id']}[/]\n  culturelens: {d['culturelens']!r}\n  lm-eval:     {d['lm_eval']!r}")
    for d in out.get("llamacpp", {}).get("diffs", [])[:3]:
        con.print(
            f"[bold]{d['id']}[/]\n  culturelens llama.cpp: {d['culturelens']!r}\n  raw loop:    {d['raw']!r}"
        )
    la = out["loadavg_start"], out["loadavg_end"]
    con.print(f"load average at start {la[0][0]:.2f}, at end {la[1][0]:.2f} ({os.cpu_count()} CPUs)")
    con.print(f"details: {WORK / 'generate.json'}")


if __name__ == "__main__":
    main()
