"""Layers that hold: imports follow the data flow, never against it.

Data flow one way: dataset rows -> items -> rendered prompts (variants) -> requests -> cached
responses -> scores -> run log -> analyses -> report. Every module of ``src/culturelens`` has a
layer (:data:`LAYERS`); a module may import modules of its own layer or lower ones, never higher.
Every import counts, also those inside functions and under ``if TYPE_CHECKING``. On top of that:

* analyses and presentation read the run log: they import neither tasks nor backends;
* backends and tasks do not import each other;
* a benchmark module (one that registers a task) imports no other benchmark module; tasks share
  code through ``tasks/base.py`` and other non-benchmark modules of ``tasks/``.

``python tests/test_layers.py`` prints every violation and the allow-listed ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "culturelens"

#: module (or package: the entry covers its submodules) -> layer
LAYERS: dict[str, int] = {
    # 0: foundations: errors, data types, countries, statistics, text helpers, plugin discovery
    "culturelens.errors": 0,
    "culturelens.schema": 0,
    "culturelens.countries": 0,
    "culturelens.redact": 0,
    "culturelens.stats": 0,
    "culturelens.lemmatize": 0,
    "culturelens.variants": 0,
    "culturelens.plugins": 0,
    "culturelens.distributions": 0,
    "culturelens.vsm_formulas": 0,
    "culturelens.jsonsafe": 0,
    "culturelens.agreement": 0,  # agreement between raters (judges): Krippendorff's alpha, kappa
    # 1: items -> prompts and scores: rendering, personas, grading, dataset downloads
    "culturelens.render": 1,
    "culturelens.personas": 1,
    "culturelens.scoring": 1,
    "culturelens.download": 1,
    "culturelens.hofstede": 1,  # published reference scores, read by tasks and analyses
    "culturelens.judging": 1,  # what a judge is asked (prompts) and how its verdict is read
    # 2: components: benchmarks (rows -> items) and backends (requests -> responses)
    "culturelens.tasks": 2,
    "culturelens.tasks.spec": 2,  # tasks declared in YAML / TOML spec files (shared code, no benchmark)
    "culturelens.backends": 2,
    # 3: drivers: run a design, cache responses, score, aggregate, write the run log
    "culturelens.cache": 3,
    "culturelens.rundir": 3,
    "culturelens.runlog": 3,
    "culturelens.aggregate": 3,  # results.json is aggregated while the run is written
    "culturelens.runner": 3,
    "culturelens.executors": 3,  # where requests are computed: this process or Ray workers
    "culturelens.judges": 3,  # the judge stage: verdicts through the cache, reliability
    "culturelens.sweep": 3,
    "culturelens.steering": 3,
    # foreign logs (lm-eval samples, inspect logs) re-scored into a run: drivers, as the runner is
    "culturelens.interop.rescore": 3,
    "culturelens.interop.lmeval": 3,
    "culturelens.interop.inspect_import": 3,
    "culturelens.frames": 3,  # pandas frames of a run log; RunLog.results_df() imports it lazily
    # culturelens improve: fine-tuning the hf backend's model and scoring the control set drive a backend
    "culturelens.improve.train": 3,
    "culturelens.improve.control": 3,
    # 4: analyses of a run log
    "culturelens.alignment": 4,
    "culturelens.robustness": 4,
    "culturelens.compare": 4,
    "culturelens.crosslingual": 4,  # BLEnD local vs English answers of a run log
    "culturelens.improve.data": 4,  # preference pairs and the leak-free split, from a run log
    "culturelens.improve.analysis": 4,  # before / after comparison of two run logs
    # 5: presentation and entry points
    "culturelens.report": 5,
    "culturelens.console": 5,
    "culturelens.modelinfo": 5,
    "culturelens.export": 5,
    "culturelens.eee": 5,  # Every Eval Ever records
    "culturelens.interop": 5,  # inspect_ai .eval logs of a run (inspect_log); the package
    "culturelens.tracking": 5,  # --log-to mlflow / wandb
    "culturelens.hub": 5,  # culturelens push (Hugging Face Hub dataset)
    "culturelens.improve": 5,  # culturelens improve: the loop (runs, data, training, analysis)
    "culturelens.api": 5,
    "culturelens.cli": 5,
    "culturelens": 5,  # the package: the public API
}

#: layers 4 and 5 read the run log; only these entry points (which start runs or list the
#: installed models) may reach into tasks and backends from there
ENTRY_POINTS = {"culturelens", "culturelens.api", "culturelens.cli", "culturelens.modelinfo"}
COMPONENTS = ("culturelens.tasks", "culturelens.backends")

#: known violations, (importer or its package, imported) -> why it is still there; empty this as they go
ALLOWED: dict[tuple[str, str], str] = {}


def allowed(importer: str, imported: str) -> str | None:
    """Why an import against the layers is still allowed (None: it is not)."""
    for (who, what), why in ALLOWED.items():
        if what == imported and _in(importer, who):
            return why
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def layer_of(module: str) -> int | None:
    """The layer of the longest entry of :data:`LAYERS` that is the module or a package above it
    (the top package ``culturelens`` covers only its ``__init__``)."""
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        key = ".".join(parts[:n])
        if key in LAYERS:
            return LAYERS[key]
    return LAYERS.get(module)


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The culturelens modules ``module`` imports anywhere in its source (``from a import b``
    counts as ``a.b`` when ``a.b`` is a module)."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if sub in known else target)
    return {m for m in out if m == "culturelens" or m.startswith("culturelens.")}


def registers_task(path: Path) -> bool:
    """A benchmark module: a top-level class decorated with ``@register``."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef):
            for dec in node.decorator_list:
                name = dec.id if isinstance(dec, ast.Name) else getattr(dec, "attr", None)
                if name == "register":
                    return True
    return False


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations() -> list[tuple[str, str, str]]:
    """(importer, imported, rule broken) for every import against the layers."""
    mods = modules()
    known = set(mods)
    benchmarks = {m for m, p in mods.items() if _in(m, "culturelens.tasks") and registers_task(p)}
    found = []
    for mod, path in mods.items():
        mine = layer_of(mod)
        if mine is None:
            found.append((mod, "-", "module has no layer: add it to LAYERS in tests/test_layers.py"))
            continue
        for target in sorted(imports(mod, path, known)):
            theirs = layer_of(target)
            if theirs is None:
                continue  # reported as a module without a layer, if it exists
            if theirs > mine:
                found.append((mod, target, f"layer {mine} imports layer {theirs}"))
            elif mine >= 4 and mod not in ENTRY_POINTS and any(_in(target, c) for c in COMPONENTS):
                found.append(
                    (mod, target, "an analysis or report imports a task or backend (read the run log)")
                )
            elif _in(mod, "culturelens.backends") and _in(target, "culturelens.tasks"):
                found.append((mod, target, "a backend imports a task"))
            elif _in(mod, "culturelens.tasks") and _in(target, "culturelens.backends"):
                found.append((mod, target, "a task imports a backend"))
            elif mod in benchmarks and target in benchmarks and target != mod:
                found.append(
                    (mod, target, "a benchmark imports another benchmark (share code via tasks/base.py)")
                )
    return found


def test_every_module_has_a_layer():
    missing = [m for m in modules() if layer_of(m) is None]
    assert not missing, f"add these modules to LAYERS in tests/test_layers.py: {missing}"


def test_no_import_against_the_layers():
    bad = [v for v in violations() if not allowed(v[0], v[1])]
    assert not bad, "imports against the layers:\n" + "\n".join(f"  {a} -> {b}: {why}" for a, b, why in bad)


def test_allow_list_is_current():
    """An allowed violation that is gone must leave the list, so the list only shrinks."""
    current = violations()
    stale = [
        (who, what) for who, what in ALLOWED if not any(b == what and _in(a, who) for a, b, _ in current)
    ]
    assert not stale, f"fixed, remove from ALLOWED in tests/test_layers.py: {stale}"


def test_the_checker_sees_violations(tmp_path):
    """The walk resolves relative imports, ``from package import module`` and imports inside functions."""
    pkg = tmp_path / "culturelens"
    (pkg / "tasks").mkdir(parents=True)
    (pkg / "tasks" / "__init__.py").write_text("")
    (pkg / "tasks" / "a.py").write_text("def f():\n    from . import b\n")
    assert imports("culturelens.tasks.a", pkg / "tasks" / "a.py", {"culturelens.tasks.b"}) == {
        "culturelens.tasks.b"
    }
    (pkg / "render.py").write_text("def g():\n    from culturelens.tasks.base import get_task\n")
    assert imports("culturelens.render", pkg / "render.py", set()) == {"culturelens.tasks.base"}
    assert layer_of("culturelens.tasks.anything") == 2 and layer_of("culturelens.report.data") == 5
    assert layer_of("culturelens") == 5 and layer_of("culturelens.not_in_the_table") is None


if __name__ == "__main__":
    found = violations()
    for a, b, why in found:
        reason = allowed(a, b)
        print(f"{a} -> {b}: {why}" + (f"  [allowed: {reason}]" if reason else ""))
    open_ = [v for v in found if not allowed(v[0], v[1])]
    print(f"{len(open_)} violations, {len(found) - len(open_)} allow-listed")
