"""The task registry: every benchmark of ``culturelens.tasks`` and of other packages, by name.

A built-in benchmark is one module of this package whose :class:`~culturelens.tasks.base.Task`
subclass is decorated with :func:`register`; discovery imports every module of the package. Another
package adds tasks through the entry-point group ``culturelens.tasks`` (see :mod:`culturelens.plugins`):
an entry point naming a module is imported (its ``@register`` classes register themselves), one
naming a Task class is registered. Discovery runs once, on the first lookup.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from culturelens.plugins import TASKS_GROUP, load_entry_points

if TYPE_CHECKING:
    from culturelens.tasks.base import Task

#: modules of this package that hold shared code, not benchmarks
SHARED_MODULES = frozenset({"base", "registry", "spec"})
#: a task argument ending in one of these names a spec file (:mod:`culturelens.tasks.spec`)
SPEC_SUFFIXES = (".yaml", ".yml", ".toml")

_REGISTRY: dict[str, type[Task]] = {}
#: tasks built from spec files in this process, by the name each spec gives (not listed by task_names)
_LOADED: dict[str, type[Task]] = {}
_discovered = False


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task available by its ``name``."""
    known = _REGISTRY.get(cls.name)
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(
            f"task name {cls.name!r} is already registered by {known.__module__}.{known.__qualname__}"
        )
    _REGISTRY[cls.name] = cls
    return cls


def discover() -> None:
    """Import the built-in benchmark modules and the ``culturelens.tasks`` entry points (once)."""
    global _discovered
    if _discovered:
        return
    import culturelens.tasks as pkg
    from culturelens.tasks.base import Task

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in SHARED_MODULES and not mod.name.startswith("_"):
            importlib.import_module(f"culturelens.tasks.{mod.name}")
    for ep, obj in load_entry_points(TASKS_GROUP):
        if isinstance(obj, type) and issubclass(obj, Task):
            try:
                register(obj)
            except ValueError as exc:
                sys.stderr.write(f"warning: entry point {ep.name} = {ep.value} ({TASKS_GROUP}): {exc}\n")
        elif not isinstance(obj, ModuleType):
            sys.stderr.write(
                f"warning: entry point {ep.name} = {ep.value} ({TASKS_GROUP}) is neither a module nor a Task class\n"
            )
    _discovered = True


def task_names() -> list[str]:
    discover()
    return sorted(_REGISTRY)


def resolve_task(arg: str) -> str:
    """The task name a task argument stands for: a spec file (``mytask.yaml``, ``.yml``, ``.toml``) is
    loaded and its task is known by the name the spec gives from then on; any other argument is a name."""
    if not arg.lower().endswith(SPEC_SUFFIXES):
        return arg
    from culturelens.tasks.spec import SpecError, load_spec

    cls = load_spec(arg)
    discover()
    known = _REGISTRY.get(cls.name)
    if known is not None:
        raise SpecError(
            arg,
            "name",
            f"{cls.name!r} is already a task ({known.__module__}.{known.__qualname__}); choose another",
        )
    _LOADED[cls.name] = cls
    return cls.name


def task_class(name: str) -> type[Task]:
    """The registered class of a task (its :meth:`Task.option_schema` says which ``--opt`` it takes);
    ``name`` may be a spec file (:func:`resolve_task`)."""
    name = resolve_task(name)
    discover()
    if name in _LOADED and name not in _REGISTRY:
        return _LOADED[name]
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise KeyError(f"unknown task {name!r}{hint}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def get_task(name: str, data_dir: str | Path | None = None, **options: Any) -> Task:
    return task_class(name)(data_dir=data_dir, **options)
