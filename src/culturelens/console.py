"""Rich console output: progress bars and result tables."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from culturelens.aggregate import headline_metric

console = Console()


@contextlib.contextmanager
def progress(quiet: bool = False, every_s: float | None = None) -> Iterator[Any]:
    """A live bar on a terminal; elsewhere (nohup, Slurm, CI logs) a plain line every ``every_s``
    seconds (default 30, ``CULTURELENS_PROGRESS_S``) and at the end of each stage."""
    if quiet:
        yield None
        return
    if not console.is_terminal:
        import os
        import sys
        import time

        interval = every_s if every_s is not None else float(os.environ.get("CULTURELENS_PROGRESS_S", "30"))
        t0 = time.monotonic()
        last: dict[str, float] = {}

        def plain(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            finished = done >= total
            if finished and last.get(stage) == -1.0:
                return
            if finished or now - last.get(stage, t0) >= interval or stage not in last:
                rate = done / max(now - t0, 1e-9)
                eta = f", eta {(total - done) / rate:.0f} s" if rate > 0 and not finished else ""
                pct = 100.0 * done / total if total else 100.0
                print(
                    f"[{time.strftime('%H:%M:%S')}] {stage}: {done}/{total} ({pct:.0f}%), "
                    f"{now - t0:.0f} s elapsed{eta}",
                    file=sys.stdout,
                    flush=True,
                )
                last[stage] = -1.0 if finished else now

        yield plain
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


_BASELINE_NAMES = {
    "chance": "chance",
    "chance_mc1": "chance (MC1)",
    "majority_position": "always {label}",
    "majority_label": "always '{label}'",
}


def baseline_line(task: dict[str, Any], metric: str | None, head: dict[str, Any] | None) -> str | None:
    """One line comparing the headline with every baseline that applies to it; the words come from
    one rule (is the baseline inside the interval?), so they cannot contradict the numbers."""
    from culturelens.aggregate import baselines_for
    from culturelens.stats import vs_baseline

    if not metric or not head or not head.get("ci"):
        return None
    base = baselines_for(task.get("baselines") or {}, metric)
    if not base:
        return None
    parts, below_chance = [], False
    for name, b in base.items():
        label = _BASELINE_NAMES.get(name, name).format(label=b.get("label", "?"))
        verdict = vs_baseline(head["mean"], head["ci"][0], head["ci"][1], b["value"])
        parts.append(f"{label} {b['value']:.3f}: {verdict}")
        below_chance |= name.startswith("chance") and verdict != "above"
    text = f"baselines for {metric}: " + " · ".join(parts)
    if below_chance:
        return f"[bold yellow]not above chance:[/] {text}"
    return f"[dim]{text}[/]"


def extra_verdicts(extra: dict[str, Any]) -> list[str]:
    """The one-line verdicts a task's own analyses carry in ``extra``: an entry with a ``verdict``,
    stated with its figures when the task wrote them as a ``summary`` line."""
    return [
        f"{key}: {entry.get('summary') or entry['verdict']}"
        for key, entry in extra.items()
        if isinstance(entry, dict) and isinstance(entry.get("verdict"), str)
    ]


def print_results(results: dict[str, Any], timing: dict[str, float] | None = None) -> None:
    for name, task in results["tasks"].items():
        metric = headline_metric(task, name)
        head = task["metrics"].get(metric) if metric else None
        console.rule(
            f"[bold]{name}[/] · {metric or 'no metric'} {_fmt(head)} · n={task['n']} · modes {','.join(task['modes'])}"
        )
        line = baseline_line(task, metric, head)
        if line:
            console.print(line)
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
                parts = [
                    f"{k} {g['metrics'][metric]['mean']:.2f} (n={g['n']})"
                    for k, g in groups.items()
                    if metric in g["metrics"]
                ]
                console.print(f"[dim]{dim}:[/] " + " · ".join(parts))
        if task.get("invalid"):
            console.print(f"[yellow]{task['invalid']} unparseable answers counted as wrong[/]")
        for line in extra_verdicts(task.get("extra") or {}):
            console.print(line)
    if timing and timing.get("reused"):
        console.print(
            f"[dim]finished run: {timing['samples']} samples reused as they were (first run took "
            f"{timing.get('first_wall_s') or 0:.1f}s) · wall {timing['wall_s']:.2f}s[/]"
        )
    elif timing:
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
        items = (
            str(r["items"]) if r["items"] is not None else f"[dim]needs data ({r.get('note', '')[:60]})[/]"
        )
        cs = r["countries"]
        table.add_row(
            r["task"], items, f"{len(cs)}: {', '.join(cs[:6])}{'…' if len(cs) > 6 else ''}", r["description"]
        )
    console.print(table)


def print_robustness(rob: dict[str, Any]) -> None:
    """Per task: per-variant scores, spread, item consistency, ranking stability, factor shares, verdicts."""
    for name, task in rob.get("tasks", {}).items():
        console.rule(f"[bold]robustness · {name}[/]")
        variants = task.get("variants") or []
        if variants:
            factors = task.get("factors") or []
            table = Table(title=f"{name}: {task['metric']} under each variant (95% CI)", show_lines=False)
            for col in (*factors, task["metric"], "n"):
                table.add_column(col, justify="right" if col in (task["metric"], "n") else "left")
            shown = variants if len(variants) <= 16 else sorted(variants, key=lambda v: v["score"])
            if len(variants) > 16:  # long sweeps: the 8 lowest and 8 highest
                shown = shown[:8] + shown[-8:]
            for v in shown:
                lo, hi = v["ci"]
                table.add_row(
                    *(v["levels"].get(f, "") for f in factors),
                    f"{v['score']:.3f} [{lo:.2f}, {hi:.2f}]",
                    str(v["n"]),
                )
            console.print(table)
            sp, items, rank = task["spread"], task.get("items") or {}, task.get("country_ranking") or {}
            parts = [
                f"spread {sp['min']:.3f}–{sp['max']:.3f} (SD {sp['sd']:.3f}, {sp['n_variants']} variants)"
            ]
            if items.get("n_items"):
                c, r = items["consistency"], items["robust"]
                parts.append(f"consistency {c['mean']:.2f} [{c['ci'][0]:.2f}, {c['ci'][1]:.2f}]")
                parts.append(
                    f"robust {r['mean']:.2f} [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}] (n={items['n_items']})"
                )
            if rank.get("tau_mean") is not None:
                parts.append(f"country tau mean {rank['tau_mean']:.2f} / min {rank['tau_min']:.2f}")
            if rank.get("flip_rate") is not None:
                parts.append(f"flip rate {rank['flip_rate']:.0%} of {rank['conclusions']} country pairs")
            console.print("[dim]" + " · ".join(parts) + "[/]")
            shares = (task.get("variance") or {}).get("factors") or {}
            if shares:
                txt = ", ".join(
                    f"{f} {d['share']:.0%}"
                    for f, d in sorted(shares.items(), key=lambda kv: -(kv[1]["share"] or 0))
                )
                inter = task["variance"].get("interaction_share")
                console.print(
                    f"[dim]variance explained: {txt}"
                    + (f", interaction {inter:.0%}" if inter is not None else "")
                    + "[/]"
                )
        for line in task.get("verdicts", []):
            console.print(f"• {line}", highlight=False)


def print_comparison(res: dict[str, Any]) -> None:
    for name, task in res.get("tasks", {}).items():
        title = f"{name}: {res.get('a')} (A) vs {res.get('b')} (B) · {task.get('metric', '')} · paired on {task.get('pairing', 'items')}"
        table = Table(title=title)
        for col in ("group", "n", "A", "B", "diff A-B [95% CI]", "p", "p (Holm)", "test", "note"):
            table.add_column(col, justify="right" if col in ("n", "A", "B", "p", "p (Holm)") else "left")
        for row in task.get("rows", []):
            table.add_row(
                row["group"],
                str(row["n"]),
                f"{row['a']:.3f}",
                f"{row['b']:.3f}",
                f"{row['diff']:+.3f} [{row['ci'][0]:+.3f}, {row['ci'][1]:+.3f}]",
                f"{row['p']:.3g}",
                f"{row['p_holm']:.3g}" if row.get("p_holm") is not None else "",
                row.get("test", ""),
                row.get("note", ""),
            )
        console.print(table)


def _ci_txt(m: dict[str, Any] | None, signed: bool = False, digits: int = 3, sep: str = ", ") -> str:
    if not m or m.get("mean") is None:
        return "-"
    lo, hi = m["ci"]
    f = f"{'+' if signed else ''}.{digits}f"
    return f"{m['mean']:{f}} [{lo:{f}}{sep}{hi:{f}}]"


def print_alignment(aln: dict[str, Any], top: int = 8) -> None:
    """Survey alignment: nearest countries (debiased), removed bias, steerability, VSM vs Hofstede."""
    for name, task in aln.get("tasks", {}).items():
        if "error" in task:
            console.print(f"[yellow]alignment · {name}: {task['error']}[/]", highlight=False)
            continue
        head = f"[bold]alignment · {name}[/]"
        if task.get("metric_name"):
            head += f" · {task['metric_name']}"
        console.rule(head + f" · {len(task.get('presentations', []))} presentation(s) averaged")
        for cond, b in task.get("bias_removed", {}).items():
            if cond != "unsteered" and "unsteered" in task.get("bias_removed", {}):
                continue
            parts = [f"mean TV of a single variant from the average {b['mean_tv']:.3f}"]
            if b.get("first_position_excess") is not None:
                parts.append(f"first-position excess {b['first_position_excess']:+.3f}")
                parts.append(f"last-position excess {b['last_position_excess']:+.3f}")
            if b.get("levels"):
                parts.append("by level: " + ", ".join(f"{k} {v:.3f}" for k, v in b["levels"].items()))
            console.print(f"[dim]bias removed ({cond}): " + " · ".join(parts) + "[/]", highlight=False)
        by = task.get("by_condition") or {}
        cond_id = "unsteered" if "unsteered" in by else next(iter(by), None)
        if cond_id is not None:
            entry = by[cond_id]
            rows = (entry["countries"].get(task["metric"]) or [])[:top]
            table = Table(
                title=f"{name}: nearest countries ({cond_id}, {entry['questions']} questions; baselines: "
                "uniform, majority, leave-one-out pooled; norm. = (sim - unif.) / (1 - unif.))"
            )
            for col in ("#", "country", "sim [95% CI]", "P(1st)", "unif/maj/pool", "norm.", "n"):
                table.add_column(
                    col,
                    justify="left" if col == "country" else "right",
                    no_wrap=col != "country",
                    min_width=12 if col == "country" else None,
                )
            for r in rows:
                base = "/".join(
                    f"{r[k]:.2f}" if r.get(k) is not None else "-" for k in ("uniform", "majority", "pooled")
                )
                table.add_row(
                    str(r["rank"]),
                    r["country"],
                    f"{r['sim']:.2f} [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]",
                    f"{r['p_nearest']:.2f}",
                    base,
                    f"{r['normalised']:+.2f}" if r.get("normalised") is not None else "-",
                    str(r["n"]),
                )
            console.print(table)
            est = (entry.get("map") or {}).get("estimate_from_nearest")
            if est:
                console.print(
                    f"[dim]Inglehart-Welzel map, mean of the {est['k']} nearest: traditional/secular "
                    f"{est['traditional_secular']:+.2f}, survival/self-expression {est['survival_selfexpression']:+.2f}[/]"
                )
        for style, s in (task.get("steering") or {}).get("styles", {}).items():
            table = Table(
                title=f"{name}: steering with '{style}' ({task['metric']}; gain = vs unsteered, "
                "spec. = vs steering toward the other targets; * held-out countries)"
            )
            for col in ("questions", "targets", "gain [95% CI]", "spec. [95% CI]", "top-1"):
                table.add_column(col, justify="left" if col in ("questions", "targets") else "right")
            short = {"all": "all", "main_countries": "main", "heldout_countries": "held*"}
            spreads = []
            for split, sp in s["splits"].items():
                if sp.get("spread_ratio") is not None:
                    spreads.append(f"{split} {sp['spread_ratio']:.2f}")
                for label, summ in sp["summary"].items():
                    table.add_row(
                        f"{split} {sp['questions']}q",
                        f"{short.get(label, label)} {summ['targets']}",
                        _ci_txt(summ.get("gain"), True, 2, ","),
                        _ci_txt(summ.get("specificity"), True, 2, ","),
                        f"{summ['top1']:.2f}" if summ.get("top1") is not None else "-",
                    )
            console.print(table)
            if spreads:
                console.print(
                    "[dim]spread ratio (steered answers' spread across targets / the countries' own): "
                    + ", ".join(spreads)
                    + "[/]",
                    highlight=False,
                )
            per = s["splits"].get("all", {}).get("targets", {})
            if per:
                console.print(
                    "[dim]per target (all questions): "
                    + " · ".join(
                        f"{x}{'*' if r.get('heldout_country') else ''} gain {_ci_txt(r.get('gain'), True)}, "
                        f"spec {_ci_txt(r.get('specificity'), True)}"
                        for x, r in per.items()
                    )
                    + "[/]",
                    highlight=False,
                )
        vsm = task.get("vsm")
        if vsm:
            dims = ("PDI", "IDV", "MAS", "UAI", "LTO", "IVR")
            table = Table(
                title=f"{name}: VSM 2013 indices (constants 0; only differences between countries mean anything)"
            )
            for col in ("condition", *dims):
                table.add_column(col, justify="left" if col == "condition" else "right")
            for cid, c in vsm["conditions"].items():
                table.add_row(cid, *(f"{c['indices'][d]:.1f}" for d in dims))
            console.print(table)
            for style, st in vsm.get("styles", {}).items():
                hof = st.get("hofstede")
                if not hof:
                    console.print(
                        f"[dim]{style}: no Hofstede file (task option hofstede_file, CULTURELENS_HOFSTEDE, or hofstede/ under CULTURELENS_DATA)[/]"
                    )
                    continue
                parts = []
                for d in dims:
                    e = hof["dimensions"][d]
                    rho = f"{e['spearman']:+.2f}" if e.get("spearman") is not None else "n/a"
                    pa = f", pairs {e['pair_agreement']:.0%}" if e.get("pair_agreement") is not None else ""
                    parts.append(f"{d} rho {rho} (n={e['n']}{pa})")
                ov = hof["overall"]
                ov_txt = f"{ov['pearson']:+.2f}" if ov.get("pearson") is not None else "n/a"
                console.print(
                    f"[bold]{style}[/] vs Hofstede across {len(st['countries'])} countries: "
                    + " · ".join(parts)
                    + f" · overall r {ov_txt} (n={ov['n']})",
                    highlight=False,
                )
                snr = st.get("country_sd_over_presentation_sd") or {}
                if any(v is not None for v in snr.values()):
                    console.print(
                        "[dim]spread across countries / spread across presentations: "
                        + ", ".join(f"{d} {v:.2f}" for d, v in snr.items() if v is not None)
                        + "[/]",
                        highlight=False,
                    )
                ex = st.get("extrapolability") or {}
                if ex.get("pairs"):
                    mr = f"{ex['mean_r']:+.2f}" if ex.get("mean_r") is not None else "n/a"
                    console.print(
                        f"[dim]extrapolability: {ex['pairs']} country pairs; mean r(agreement on 5 dims, "
                        f"on the held-out one) {mr}[/]",
                        highlight=False,
                    )
