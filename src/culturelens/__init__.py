"""culturelens: how culturally competent a language model is, and how far that measurement can be trusted.

The public API (imported lazily, so ``import culturelens`` stays cheap)::

    import culturelens as cl
    done = cl.run(tasks=["starter"], model="default", limit=50)   # -> Finished (run dir, results, analyses)
    log = cl.read_run(done.run_dir)                              # the typed run log
    df = cl.load_runs([done.run_dir])                            # tidy pandas frame (log.results_df())
    cl.list_tasks(); cl.compare(run_a, run_b); cl.report([run_a, run_b], "report.html")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from culturelens.api import Finished, compare, finish, improve, list_tasks, report, run, steer
    from culturelens.frames import load_runs
    from culturelens.runlog import RunConfig, RunLog, read_run
    from culturelens.schema import Item, Variant

_EXPORTS = {
    "run": "culturelens.api",
    "steer": "culturelens.api",
    "finish": "culturelens.api",
    "Finished": "culturelens.api",
    "compare": "culturelens.api",
    "report": "culturelens.api",
    "list_tasks": "culturelens.api",
    "improve": "culturelens.api",
    "read_run": "culturelens.runlog",
    "load_runs": "culturelens.frames",
    "RunLog": "culturelens.runlog",
    "RunConfig": "culturelens.runlog",
    "Item": "culturelens.schema",
    "Variant": "culturelens.schema",
}
__all__ = [
    "Finished",
    "Item",
    "RunConfig",
    "RunLog",
    "Variant",
    "compare",
    "finish",
    "improve",
    "list_tasks",
    "load_runs",
    "read_run",
    "report",
    "run",
    "steer",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'culturelens' has no attribute {name!r}")
