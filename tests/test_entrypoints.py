"""Another package adds a task and a backend through entry points, without touching culturelens.

The package lives in a temporary folder with a ``*.dist-info`` (``METADATA`` + ``entry_points.txt``)
beside its modules; a subprocess with that folder on ``PYTHONPATH`` sees it through
``importlib.metadata`` exactly as if it were pip-installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

TASK_MODULE = """
from culturelens.countries import normalize_country
from culturelens.schema import Item, ItemKind
from culturelens.tasks.base import Task


class TinyTask(Task):  # not decorated: the entry point names the class, loading it registers it
    name = "tiny_plugin_task"
    description = "two questions from a plugin package"

    def load(self):
        for i, country in enumerate(("Japan", "Kenya")):
            yield Item(
                id=f"tiny-{i}",
                task=self.name,
                kind=ItemKind.MULTIPLE_CHOICE,
                question=f"Question {i}?",
                options=["right", "wrong", "other"],
                correct=[0],
                country=normalize_country(country),
            )
"""

BACKEND_MODULE = '''
from culturelens.backends.base import Backend
from culturelens.backends.registry import register_backend
from culturelens.backends.templates import plain_format
from culturelens.schema import Response


@register_backend("tinyb", usage="tinyb:ANYTHING")  # the entry point names this module
class FirstChoiceBackend(Backend):
    """Always prefers the first target."""

    chat_template_source = "plain"

    def __init__(self, spec: str = ""):
        self.spec = spec

    def identity(self):
        return {"backend": "tinyb", "model": self.spec}

    def format(self, messages, assistant_prefix=""):
        return plain_format(messages, assistant_prefix)

    def label_logprobs(self, batch):
        return [Response(logprobs=[-0.1] + [-5.0] * (len(r.targets) - 1)) for r in batch]

    def continuation_logprobs(self, batch):
        return [
            Response(logprobs=[-0.1] + [-5.0] * (len(r.targets) - 1), n_tokens=[1] * len(r.targets))
            for r in batch
        ]

    def generate(self, batch):
        return [Response(text="A") for _ in batch]
'''


def _plugin(root: Path) -> Path:
    """A pip-installed-looking package ``tinyplugin`` under ``root``."""
    root.mkdir()
    (root / "tinyplugin_tasks.py").write_text(TASK_MODULE, encoding="utf-8")
    (root / "tinyplugin_backend.py").write_text(BACKEND_MODULE, encoding="utf-8")
    info = root / "tinyplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tinyplugin\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [culturelens.tasks]
            tiny = tinyplugin_tasks:TinyTask

            [culturelens.backends]
            tinyb = tinyplugin_backend
            """
        ),
        encoding="utf-8",
    )
    return root


def _env(tmp_path: Path, plugin: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["CULTURELENS_HOME"] = str(tmp_path / "home")
    if plugin is not None:
        env["PYTHONPATH"] = str(plugin)
    return env


def _cli(tmp_path: Path, plugin: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "culturelens.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(tmp_path, plugin),
    )


def test_plugin_task_and_backend_run_through_the_cli(tmp_path: Path):
    plugin = _plugin(tmp_path / "site")
    out = tmp_path / "run"
    proc = _cli(
        tmp_path,
        plugin,
        "run",
        "--model",
        "tinyb:x",
        "--task",
        "tiny_plugin_task",
        "--no-report",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "warning" not in proc.stderr, proc.stderr
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    task = results["tasks"]["tiny_plugin_task"]
    assert task["n"] == 2 and task["metrics"]["acc"]["mean"] == 1.0
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {s["item_id"] for s in samples} == {"tiny-0", "tiny-1"}


def test_plugin_shows_in_help_and_task_list(tmp_path: Path):
    plugin = _plugin(tmp_path / "site")
    env = _env(tmp_path, plugin)
    code = (
        "from culturelens.backends.registry import model_help\n"
        "from culturelens.tasks.base import task_names\n"
        "print(model_help()); print(task_names())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    help_line, names = proc.stdout.splitlines()
    assert help_line.startswith("llamacpp:PATH | ") and "| tinyb:ANYTHING | default" in help_line
    assert "tiny_plugin_task" in names and "starter" in names


def test_without_the_entry_points_the_plugin_is_unknown(tmp_path: Path):
    """The same names fail when the package is not on the path: the entry points did the work."""
    proc = _cli(tmp_path, None, "run", "--model", "fake:first", "--task", "tiny_plugin_task")
    assert proc.returncode == 2 and "unknown task 'tiny_plugin_task'" in proc.stderr, proc.stderr
    proc = _cli(
        tmp_path, None, "run", "--model", "tinyb:x", "--task", "starter", "--out", str(tmp_path / "r")
    )
    assert proc.returncode == 2 and "unknown model spec 'tinyb:x'" in proc.stderr, proc.stderr


def test_a_broken_entry_point_is_a_warning(tmp_path: Path):
    plugin = _plugin(tmp_path / "site")
    (plugin / "tinyplugin_backend.py").write_text("raise ImportError('no such thing')\n", encoding="utf-8")
    code = "from culturelens.backends.registry import model_help\nprint(model_help())\n"
    env = _env(tmp_path, plugin)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "tinyb" not in proc.stdout and "warning: entry point tinyb = tinyplugin_backend" in proc.stderr
