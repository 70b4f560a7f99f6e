"""The Python API: the same steps as the command line, producing the same run directory.

``run`` and ``steer`` compute a run (:class:`culturelens.runner.Runner`) and then :func:`finish` it:
the robustness analysis of a sweep, the alignment analysis of survey tasks, and the report. The CLI
calls the same :func:`finish`, so a run made from Python and one made from a shell are the same
files. Everything else reads a finished run through :func:`culturelens.runlog.read_run`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturelens.runlog import RunConfig, RunLog, read_run
from culturelens.runner import ProgressFn, Runner, RunResult

__all__ = ["Finished", "compare", "finish", "improve", "list_tasks", "read_run", "report", "run", "steer"]


@dataclass
class Finished:
    """A finished run: its directory, results and timing, and the analyses written beside them."""

    run_dir: Path
    results: dict[str, Any]
    timing: dict[str, Any]
    robustness: dict[str, Any] | None = None  # robustness.json (sweeps: more than one variant)
    alignment: dict[str, Any] | None = None  # alignment.json (runs with survey tasks)
    report: Path | None = None  # report.html
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def log(self) -> RunLog:
        return read_run(self.run_dir)


def finish(
    result: RunResult,
    report: bool = True,
    ivs_dir: str | Path | None = None,
    alignment_extra: dict[str, Any] | None = None,
) -> Finished:
    """The analyses and report of a computed run, written into its directory (one step for every
    entry point). A reused run (nothing recomputed) keeps the analyses it already has."""
    from culturelens.alignment import analyze_alignment
    from culturelens.robustness import analyze_run

    run_dir = Path(result.run_dir)
    log = read_run(run_dir)
    reused = bool(result.timing.get("reused")) and not alignment_extra and ivs_dir is None
    done = Finished(run_dir, result.results, result.timing)

    def saved(name: str) -> Any:
        path = run_dir / name
        return json.loads(path.read_text(encoding="utf-8")) if reused and path.exists() else None

    if len(log.variants) > 1:
        done.robustness = saved("robustness.json") or analyze_run(run_dir)
    aln = saved("alignment.json")
    if aln is None:
        aln = analyze_alignment(run_dir, ivs_dir=ivs_dir, write=False)
        if alignment_extra:
            aln.update(alignment_extra)
        if aln.get("tasks"):
            from culturelens.runlog import write_json

            write_json(run_dir / "alignment.json", aln)
    done.alignment = aln if aln.get("tasks") else None
    if report:
        path = run_dir / "report.html"
        fresh = (
            reused and path.exists() and path.stat().st_mtime >= (run_dir / "results.json").stat().st_mtime
        )
        if not fresh:
            from culturelens.report import build_report

            path = build_report([run_dir], path)
        done.report = path
    return done


def run(
    config: RunConfig | None = None,
    backend: Any = None,
    report: bool = True,
    progress: ProgressFn | None = None,
    **kwargs: Any,
) -> Finished:
    """Evaluate a model: the Python mirror of ``culturelens run`` (``kwargs`` are RunConfig fields)."""
    cfg = config or RunConfig(**kwargs)
    result = Runner(cfg, backend=backend, progress=progress, hold_lock=True).run()
    try:
        return finish(result, report=report)
    finally:
        result.release()


def steer(
    task: str,
    countries: Sequence[str],
    styles: Sequence[str] = ("typical",),
    vary: Sequence[str] = ("option_order=identity,reversed",),
    backend: Any = None,
    progress: ProgressFn | None = None,
    ivs_dir: str | None = None,
    report: bool = True,
    **kwargs: Any,
) -> tuple[Finished, Any]:
    """The steering sweep on one task (``culturelens steer``): (finished run, design). The alignment
    analysis (``finished.alignment``) has the gain and specificity per style and target country."""
    from culturelens.steering import steering_config

    cfg, design = steering_config(task, countries, styles, vary, **kwargs)
    result = Runner(cfg, backend=backend, progress=progress, hold_lock=True).run()
    try:
        extra = {"skipped_conditions": design.skipped} if design.skipped else None
        return finish(result, report=report, ivs_dir=ivs_dir, alignment_extra=extra), design
    finally:
        result.release()


def list_tasks() -> list[str]:
    """Names of every registered task (built-in and from entry points)."""
    from culturelens.tasks.base import task_names

    return list(task_names())


def compare(run_a: str | Path, run_b: str | Path, metric: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Paired comparison of two runs on their shared items (``culturelens compare``)."""
    from culturelens.compare import compare_runs

    return compare_runs(run_a, run_b, metric=metric, seed=seed)


def improve(progress: ProgressFn | None = None, **kwargs: Any) -> Any:
    """Close the loop (``culturelens improve``): pairs from a run's failures, LoRA fine-tuning, and the
    before/after proof; ``kwargs`` are :class:`culturelens.improve.loop.ImproveConfig` fields (``task``,
    ``method``, ``steps``, ``out``...). Returns :class:`culturelens.improve.loop.Improved`."""
    from culturelens.improve.loop import improve as run_improve

    return run_improve(progress=progress, **kwargs)


def report(runs: Sequence[str | Path], output: str | Path = "report.html") -> Path:
    """One self-contained HTML report for one run or a side-by-side comparison (``culturelens report``)."""
    from culturelens.report import build_report

    return Path(build_report([Path(r) for r in runs], Path(output)))
