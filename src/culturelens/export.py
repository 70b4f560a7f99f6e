"""Results tables for papers and READMEs: one row per (run, task[, group]) in Markdown or CSV.

Every row carries what the number needs to be read: its n and interval (and how it was computed),
the chance and majority baselines, and the verdict against chance; a sweep row also carries the
across-variant mean and range, because its headline is only the primary variant's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturelens.runlog import RunLog, read_run
from culturelens.stats import SMALL_N, vs_baseline

COLUMNS = [
    "model", "task", "group", "metric", "score", "ci_low", "ci_high", "n", "ci_method",
    "chance", "majority", "vs_chance", "variants", "variant_mean", "variant_min", "variant_max",
]  # fmt: skip


def _baseline(entry: dict[str, Any], kind: str, metric: str) -> float | None:
    b = (entry.get("baselines") or {}).get(kind) or {}
    return b.get("value") if metric in (b.get("applies_to") or []) else None


def _row(
    model: str, task: str, group: str, metric: str, m: dict[str, Any], task_entry: dict[str, Any]
) -> dict:
    lo, hi = (m.get("ci") or [None, None])[:2]
    chance = _baseline(task_entry, "chance", metric)
    return {
        "model": model,
        "task": task,
        "group": group,
        "metric": metric,
        "score": m.get("mean"),
        "ci_low": lo,
        "ci_high": hi,
        "n": m.get("n"),
        "ci_method": m.get("ci_method", "bootstrap"),
        "chance": chance,
        "majority": _baseline(task_entry, "majority_position", metric),
        "vs_chance": None if chance is None else vs_baseline(m.get("mean"), lo, hi, chance),
    }


def rows(logs: Sequence[RunLog], by: str | None = None) -> list[dict[str, Any]]:
    """The table's rows: per run and task (all items), then per ``by`` group (country, region...)."""
    out = []
    for log in logs:
        for task in log.task_names:
            entry = log.task_results(task)
            metric = log.headline_metric(task)
            if metric is None:
                continue
            row = _row(log.label, task, "all", metric, entry["metrics"][metric], entry)
            variants = log.task_variants(task)
            scores = [
                v["metrics"][metric]["mean"] for v in variants.values() if metric in (v.get("metrics") or {})
            ]
            row["variants"] = len(variants)
            if len(scores) > 1:
                row.update(
                    variant_mean=sum(scores) / len(scores), variant_min=min(scores), variant_max=max(scores)
                )
            out.append(row)
            if by:
                for group, g in sorted(((entry.get("by") or {}).get(by) or {}).items()):
                    if metric in (g.get("metrics") or {}):
                        out.append(
                            _row(log.label, task, f"{by}={group}", metric, g["metrics"][metric], entry)
                        )
    return out


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def to_csv(table: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in table:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS})
    return buf.getvalue()


def to_markdown(table: Sequence[dict[str, Any]]) -> str:
    """A GitHub-flavoured Markdown table with a legend line: score [95% CI] (n), baselines, verdict."""
    head = [
        "model",
        "task",
        "group",
        "metric",
        "score [95% CI]",
        "n",
        "chance",
        "majority",
        "vs chance",
        "sweep",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    small = False
    for r in table:
        n = r.get("n")
        flag = ""
        if isinstance(n, int | float) and n < SMALL_N:
            flag, small = " †", True
        sweep = ""
        if r.get("variant_min") is not None:
            sweep = (
                f"{r['variants']} variants: mean {_fmt(r['variant_mean'])}, "
                f"range {_fmt(r['variant_min'])}–{_fmt(r['variant_max'])}"
            )
        cells = [
            str(r["model"]),
            str(r["task"]),
            str(r["group"]),
            str(r["metric"]),
            f"{_fmt(r['score'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]",
            f"{_fmt(n)}{flag}",
            _fmt(r.get("chance")),
            _fmt(r.get("majority")),
            {"above": "above", "below": "below", "indistinguishable": "not above"}.get(
                r.get("vs_chance") or "", ""
            ),
            sweep,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    legend = (
        "\nScore: the primary variant's mean with its 95% interval (method per run: Wilson for proportions). "
        "vs chance: whether the whole interval lies above / below the chance baseline."
    )
    if small:
        legend += f" † fewer than {SMALL_N} scored units: the interval is wide, read the number as weak."
    return "\n".join(lines) + "\n" + legend + "\n"


def export(run_dirs: Sequence[str | Path], fmt: str = "md", by: str | None = None) -> str:
    """The results table of ``run_dirs`` as Markdown (``md``) or CSV (``csv``)."""
    if fmt not in ("md", "csv"):
        raise ValueError(f"--format {fmt!r}: use md or csv")
    table = rows([read_run(d) for d in run_dirs], by=by)
    return to_markdown(table) if fmt == "md" else to_csv(table)
