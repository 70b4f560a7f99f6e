"""Every performance target of the bench in one table: measured value, target, met / NOT MET.

    .venv/bin/python bench/targets.py            # after the bench scripts (``make bench`` runs them all)
    .venv/bin/python bench/targets.py --markdown # the same table as Markdown (the README's section)

Runs nothing: it reads what the bench scripts wrote under ``runs/bench/`` in their last run
(``bench.json``: letter / cloze / sweeps / re-run, ``generate.json``: generate mode, ``harness.json``:
the openai client and the Ray executor, ``scale.json``: large runs, ``gpu.json``: ``make bench-gpu``)
and says which file and when each figure comes from. A file that is missing is a row saying so; a
figure is never carried over from anywhere else.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "runs" / "bench"


def _load(work: Path, name: str) -> tuple[dict[str, Any] | None, str]:
    path = work / name
    if not path.exists():
        return None, f"{name}: not run"
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    return json.loads(path.read_text()), f"{name} {stamp}"


def _ratio(data: dict[str, Any] | None, what: str) -> dict[str, Any] | None:
    for r in (data or {}).get("ratios", []):
        if r["what"] == what:
            return r
    return None


def _row(group: str, target: str, measured: str, threshold: str, met: bool | None, source: str) -> dict:
    return {
        "group": group,
        "target": target,
        "measured": measured,
        "threshold": threshold,
        "met": "-" if met is None else ("met" if met else "NOT MET"),
        "source": source,
    }


def rows(work: Path = WORK) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    bench, src_b = _load(work, "bench.json")
    gen, src_g = _load(work, "generate.json")
    harness, src_h = _load(work, "harness.json")
    scale, src_s = _load(work, "scale.json")
    gpu, src_gpu = _load(work, "gpu.json")

    # 1. generation
    g = "1 generation"
    if gen is None:
        out.append(_row(g, "generate mode vs lm-eval generate_until", "not run", ">= 3x", None, src_g))
    else:
        r = _ratio(gen, "lm-eval wall / culturelens wall")
        if r:
            out.append(
                _row(
                    g,
                    f"hf generate: lm-eval wall / culturelens wall, {gen.get('n_prompts')} prompts",
                    f"{r['value']:.2f}x ({r['note']})",
                    ">= 3x",
                    r["value"] >= 3,
                    src_g,
                )
            )
        r = _ratio(gen, "identical outputs (share of prompts)")
        if r:
            out.append(
                _row(
                    g,
                    "identical outputs to lm-eval",
                    f"{r['value']:.3f} ({r['note']})",
                    ">= 0.99",
                    r["value"] >= 0.99,
                    src_g,
                )
            )
        for r in gen.get("ratios", []):
            if r["what"].startswith("llama.cpp generate"):
                out.append(
                    _row(g, r["what"], f"{r['value']:.2f} ({r['note']})", r["target"] or "-", None, src_g)
                )

    # 2. letter mode, 3. sweeps, re-run (bench.json)
    for mode, eng, want in (
        ("letter", "hf", 3.0),
        ("letter", "llamacpp", 2.5),
        ("cloze", "hf", None),
        ("cloze", "llamacpp", None),
    ):
        r = _ratio(bench, f"{mode}: lm-eval wall / culturelens({eng}) wall")
        group = "2 letter mode" if mode == "letter" else "2 cloze (no target)"
        if r is None:
            out.append(
                _row(
                    group, f"{mode} {eng} vs lm-eval", "not run", f">= {want}x" if want else "-", None, src_b
                )
            )
            continue
        out.append(
            _row(
                group,
                f"{mode}: lm-eval wall / culturelens({eng}) wall, {bench.get('items') if bench else '?'} items",
                f"{r['value']:.2f}x ({r['note']})",
                f">= {want}x" if want else "-",
                r["value"] >= want if want else None,
                src_b,
            )
        )
    sweep = _ratio(
        bench,
        next(
            (
                x["what"]
                for x in (bench or {}).get("ratios", [])
                if x["what"].startswith("sweep of 8 variants (")
            ),
            "",
        ),
    )
    floor = _ratio(bench, "sweep of 8 variants: tokens to evaluate / single pass (floor)")
    if sweep and floor:
        at = sweep["value"] / floor["value"]
        out.append(
            _row(
                "3 sweeps",
                "sweep of 8 variants: scoring time ratio / token-floor ratio",
                f"{at:.2f} ({sweep['value']:.2f}x time for {floor['value']:.2f}x tokens)",
                "<= 1.1",
                at <= 1.1,
                src_b,
            )
        )
    else:
        out.append(_row("3 sweeps", "sweep at the token floor", "not run", "<= 1.1", None, src_b))
    r = _ratio(bench, "re-run of a finished run: first wall / re-run wall")
    if r:
        out.append(
            _row(
                "3 sweeps",
                "re-run of a finished run: first wall / re-run wall",
                f"{r['value']:.0f}x ({r['note']})",
                ">= 50x",
                r["value"] >= 50,
                src_b,
            )
        )

    # 4. harness overhead, 6. Ray (harness.json)
    if harness is None:
        out.append(_row("4 harness at scale", "openai client vs local servers", "not run", "", None, src_h))
    for r in (harness or {}).get("rows", []):
        group = "6 scale-out (Ray)" if r["target"].startswith("ray") else "4 harness at scale"
        met = {True: True, False: False}.get(r["met"])
        out.append(_row(group, r["target"], r["measured"], r["ratio"], met, src_h))

    # 5. large runs (scale.json)
    if scale is None:
        out.append(_row("5 large runs", "50,000-item run", "not run", "", None, src_s))
    for r in (scale or {}).get("rows", []):
        out.append(_row("5 large runs", r["target"], r["measured"], r["ratio"], r["met"], src_s))

    # 7. GPU (gpu.json, make bench-gpu)
    if gpu is None or not gpu.get("gpu_measured"):
        device = (gpu or {}).get("device") or {}
        why = "no GPU run on record" if gpu is None else f"CPU smoke only, cuda {device.get('cuda')}"
        out.append(
            _row(
                "7 GPU",
                "bench/gpu on an H100/H200 in < 8 min",
                f"not measured: {why}",
                "< 480 s",
                None,
                src_gpu,
            )
        )
    else:
        wall = gpu.get("wall_s")
        out.append(
            _row(
                "7 GPU",
                "bench/gpu in one command",
                f"{wall:.0f} s",
                "< 480 s",
                wall is not None and wall < 480,
                src_gpu,
            )
        )
        for r in gpu.get("rows", []):
            met = {"met": True, "NOT MET": False}.get(str(r.get("met")))
            out.append(_row("7 GPU", r["what"], str(r.get("measured")), str(r.get("target")), met, src_gpu))
    return out


def machine() -> str:
    from culturelens.runner import cpu_summary

    return f"{cpu_summary()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    table = rows()
    (WORK / "targets.json").parent.mkdir(parents=True, exist_ok=True)
    (WORK / "targets.json").write_text(json.dumps({"machine": machine(), "rows": table}, indent=1))
    cols = ("group", "target", "measured", "threshold", "met")
    if args.markdown:
        print(f"Machine: {machine()}\n")
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for r in table:
            print("| " + " | ".join(str(r[c]).replace("|", "/") for c in cols) + " |")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=escape(f"performance targets (issue 18), {machine()}"))
    for c in (*cols, "source"):
        t.add_column(c)
    for r in table:
        style = {"met": "green", "NOT MET": "red"}.get(r["met"])
        t.add_row(*(escape(str(r[c])) for c in (*cols, "source")), style=style)
    Console(width=200).print(t)
    n_met = sum(r["met"] == "met" for r in table)
    n_not = sum(r["met"] == "NOT MET" for r in table)
    print(f"{n_met} met, {n_not} not met, {len(table) - n_met - n_not} without a threshold or not measured")


if __name__ == "__main__":
    main()
