"""Rich console output: progress bars and result tables."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from culturelens.aggregate import headline_metric

console = Console()


@contextlib.contextmanager
def progress(quiet: bool = False) -> Iterator[Any]:
    if quiet:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    ids: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in ids:
            ids[stage] = bar.add_task(stage, total=total)
        bar.update(ids[stage], completed=done, total=total)

    with bar:
        yield update


def _fmt(m: dict[str, Any] | None) -> str:
    if not m:
        return "-"
    lo, hi = m["ci"]
    return f"{m['mean']:.3f} [{lo:.2f}, {hi:.2f}]"


def print_results(results: dict[str, Any], timing: dict[str, float] | None = None) -> None:
    for name, task in results["tasks"].items():
        metric = headline_metric(task)
        head = task["metrics"].get(metric) if metric else None
        console.rule(f"[bold]{name}[/] · {metric or 'no metric'} {_fmt(head)} · n={task['n']} · modes {','.join(task['modes'])}")
        countries = task.get("by", {}).get("country", {})
        if countries and metric:
            table = Table(title=f"{name}: per country ({metric}, 95% CI)", show_lines=False)
            for col in ("country", "region", "n", metric):
                table.add_column(col, justify="right" if col in ("n", metric) else "left")
            for cname, entry in sorted(countries.items(), key=lambda kv: (kv[1]["region"], kv[0])):
                table.add_row(cname, entry["region"], str(entry["n"]), _fmt(entry["metrics"].get(metric)))
            console.print(table)
        for dim in ("region", "topic"):
            groups = task.get("by", {}).get(dim, {})
            if groups and metric and len(groups) > 1:
                parts = [f"{k} {g['metrics'][metric]['mean']:.2f} (n={g['n']})" for k, g in groups.items() if metric in g["metrics"]]
                console.print(f"[dim]{dim}:[/] " + " · ".join(parts))
        if task.get("invalid"):
            console.print(f"[yellow]{task['invalid']} unparseable answers counted as wrong[/]")
    if timing:
        console.print(
            f"[dim]{timing['samples']} samples, {timing['computed']} computed, {timing['cache_hits']} from cache · "
            f"model load {timing['model_load_s']:.1f}s · scoring {timing['scoring_s']:.1f}s "
            f"({timing['samples_per_s']:.1f} samples/s) · wall {timing['wall_s']:.1f}s[/]"
        )


def print_tasks(rows: list[dict[str, Any]]) -> None:
    table = Table(title="culturelens tasks")
    for col in ("task", "items", "countries", "description"):
        table.add_column(col)
    for r in rows:
        items = str(r["items"]) if r["items"] is not None else f"[dim]needs data ({r.get('note', '')[:60]})[/]"
        cs = r["countries"]
        table.add_row(r["task"], items, f"{len(cs)}: {', '.join(cs[:6])}{'…' if len(cs) > 6 else ''}", r["description"])
    console.print(table)


def print_robustness(rob: dict[str, Any]) -> None:
    for name, task in rob.get("tasks", {}).items():
        console.rule(f"[bold]robustness · {name}[/]")
        for line in task.get("verdicts", []):
            console.print(f"• {line}")


def print_comparison(res: dict[str, Any]) -> None:
    for name, task in res.get("tasks", {}).items():
        table = Table(title=f"{name}: {res.get('a')} vs {res.get('b')}")
        for col in ("group", "n", "A", "B", "diff [95% CI]", "p", "note"):
            table.add_column(col)
        for row in task.get("rows", []):
            table.add_row(
                row["group"], str(row["n"]), f"{row['a']:.3f}", f"{row['b']:.3f}",
                f"{row['diff']:+.3f} [{row['ci'][0]:+.3f}, {row['ci'][1]:+.3f}]", f"{row['p']:.3g}", row.get("note", ""),
            )
        console.print(table)
