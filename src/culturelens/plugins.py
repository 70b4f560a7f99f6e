"""Entry points: how other installed packages add tasks and backends.

A package declares, in its ``pyproject.toml``::

    [project.entry-points."culturelens.tasks"]
    mytask = "mypkg.tasks"            # a module whose Task classes use @register, or a Task class

    [project.entry-points."culturelens.backends"]
    mybackend = "mypkg.backend"       # a module that uses @register_backend, or a Backend class

As in inspect_ai's ``_util/entrypoints.py``, the registries import every entry point of their
group when they first look something up (:func:`load_entry_points`); importing the module is what
registers its tasks or backends. An entry point that fails to load is skipped with a one-line
warning, so one broken plugin does not stop runs that do not use it.
"""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Any

TASKS_GROUP = "culturelens.tasks"
BACKENDS_GROUP = "culturelens.backends"


def load_entry_points(group: str) -> list[tuple[EntryPoint, Any]]:
    """Import every entry point of ``group``: (entry point, loaded module or object) in name order."""
    from culturelens.redact import redact

    loaded: list[tuple[EntryPoint, Any]] = []
    seen: set[tuple[str, str]] = set()
    for ep in sorted(entry_points(group=group), key=lambda e: (e.name, e.value)):
        if (ep.name, ep.value) in seen:  # the same distribution found twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not fatal
            msg = f"entry point {ep.name} = {ep.value} ({group}) failed to load: {type(exc).__name__}: {exc}"
            sys.stderr.write(f"warning: {' '.join(redact(msg).split())}\n")
            continue
        loaded.append((ep, obj))
    return loaded
