"""Log a finished run to an experiment tracker: ``culturelens run --log-to mlflow`` / ``--log-to wandb``.

What is logged, for both trackers:

* **metrics**: per task, every metric of the primary variant with its 95% interval and n
  (``starter/acc``, ``starter/acc_ci_low``, ``starter/acc_ci_high``, ``starter/acc_n``); per country
  and, in a sweep, per variant, the task's headline metric the same way
  (``starter/country/Japan/acc``..., ``starter/variant/labels_numbers/acc``...);
* **the config**: model and its identity, tasks, mode, limit, countries, variants, seed, options,
  the command, the culturelens version (MLflow params; the W&B run config);
* **artefacts**: ``report.html``, ``config.json``, ``results.json``, the analyses beside them
  (``robustness.json``, ``alignment.json``) and the tidy table of every group (``results_tidy.csv``,
  see :mod:`culturelens.frames`).

Where to: MLflow logs to ``$MLFLOW_TRACKING_URI`` when it is set, else to a local file store
``./mlruns`` (no server, no database, works offline; MLflow 3 keeps that store in maintenance mode, so
culturelens sets its opt-in ``MLFLOW_ALLOW_FILE_STORE=true`` for this default only), experiment
``$MLFLOW_EXPERIMENT_NAME`` or ``culturelens``.
W&B logs to project ``$WANDB_PROJECT`` or ``culturelens``; ``WANDB_MODE=offline`` writes the run
under ``./wandb`` for a later ``wandb sync``.

Both packages are optional (``pip install 'culturelens[tracking]'``); :func:`require` says which is
missing before a run starts, so no evaluation is computed only to fail at the logging step.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from culturelens.redact import redact, redact_obj
from culturelens.runlog import RunLog, read_run

#: target -> (module imported, the distribution that provides it)
TARGETS: dict[str, tuple[str, str]] = {"mlflow": ("mlflow", "mlflow-skinny"), "wandb": ("wandb", "wandb")}
INSTALL = "pip install 'culturelens[tracking]'"
#: side files logged as artefacts when the run has them
ARTEFACTS = ("report.html", "config.json", "results.json", "robustness.json", "alignment.json")
_MAX_PARAM = 6000  # MLflow's limit on a param value
_BAD_KEY = re.compile(r"[^\w\-. :/]")  # MLflow accepts word characters, - . space : and /


class TrackingError(ValueError):
    """A tracker cannot be used (unknown, not installed, or it refused the run). One line."""


def parse_targets(values: Iterable[str]) -> list[str]:
    """``--log-to`` values (repeatable, or comma-separated) -> known targets, in order, once each."""
    out: list[str] = []
    for value in values:
        for name in (v.strip().lower() for v in value.split(",")):
            if not name:
                continue
            if name not in TARGETS:
                raise TrackingError(f"--log-to {name!r}: use {' or '.join(TARGETS)}")
            if name not in out:
                out.append(name)
    return out


def require(targets: Iterable[str]) -> None:
    """Raise a one-line :class:`TrackingError` naming the first target whose package is missing."""
    for name in targets:
        module, dist = TARGETS[name]
        if importlib.util.find_spec(module) is None:
            raise TrackingError(f"--log-to {name}: the package {dist!r} is not installed; {INSTALL}")


def _key(*parts: str) -> str:
    return "/".join(_BAD_KEY.sub("_", p) for p in parts)[:250]


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _metric_values(prefix: tuple[str, ...], m: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    if _finite(m.get("mean")):
        out[_key(*prefix)] = float(m["mean"])
    # suffixes, not sub-keys: a file store cannot hold "acc" both as a value and as a folder
    *head, last = prefix
    ci = list(m.get("ci") or [])
    for name, v in zip(("ci_low", "ci_high"), ci, strict=False):
        if _finite(v):
            out[_key(*head, f"{last}_{name}")] = float(v)
    if _finite(m.get("n")):
        out[_key(*head, f"{last}_n")] = float(m["n"])
    return out


def run_metrics(log: RunLog) -> dict[str, float]:
    """The metrics logged for a run (see the module docstring), flat ``key -> value``."""
    out: dict[str, float] = {}
    for task in log.task_names:
        entry = log.task_results(task)
        headline = log.headline_metric(task)
        for metric, m in (entry.get("metrics") or {}).items():
            out.update(_metric_values((task, metric), m))
        if headline is None:
            continue
        for country, g in ((entry.get("by") or {}).get("country") or {}).items():
            if headline in (g.get("metrics") or {}):
                out.update(_metric_values((task, "country", country, headline), g["metrics"][headline]))
        variants = log.task_variants(task)
        if len(variants) > 1:
            for vid, agg in variants.items():
                if headline in (agg.get("metrics") or {}):
                    out.update(_metric_values((task, "variant", vid, headline), agg["metrics"][headline]))
    return out


def run_params(log: RunLog) -> dict[str, str]:
    """The run's config as flat text params (``model``, ``model.sha256``, ``tasks``, ``variants``...)."""
    cfg = log.config
    params: dict[str, Any] = {
        "run": log.dir.name,
        "model": cfg.model,
        "tasks": ",".join(cfg.tasks),
        "mode": cfg.mode.value if cfg.mode else "task default",
        "limit": cfg.limit,
        "countries": ",".join(cfg.countries) if cfg.countries else None,
        "variants": ";".join(v.id for v in log.variants),
        "seed": cfg.seed,
        "n_boot": cfg.n_boot,
        "task_options": json.dumps(cfg.task_options, sort_keys=True) if cfg.task_options else None,
        "backend_options": json.dumps(cfg.backend_options, sort_keys=True) if cfg.backend_options else None,
        "command": redact(log.header.command) if log.header.command else None,
        "culturelens_version": log.header.versions.get("culturelens"),
        "chat_template": log.results.get("chat_template"),
    }
    for k, v in redact_obj(log.identity).items():
        params[f"model.{k}"] = v
    out = {}
    for k, v in params.items():
        if v is None or v == "":
            continue
        text = v if isinstance(v, str) else json.dumps(v) if isinstance(v, dict | list) else str(v)
        out[_key(k)] = text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 1] + "…"
    return out


def _config(log: RunLog) -> dict[str, Any]:
    """The nested config W&B shows (config.json's ``config`` with the model identity)."""
    return {
        **log.config.model_dump(mode="json", exclude={"out", "cache", "runs_root"}),
        "run": log.dir.name,
        "identity": redact_obj(log.identity),
        "culturelens_version": log.header.versions.get("culturelens"),
    }


def _artefacts(log: RunLog, scratch: Path) -> list[Path]:
    files = [log.dir / name for name in ARTEFACTS if (log.dir / name).is_file()]
    from culturelens.frames import load_runs

    tidy = scratch / "results_tidy.csv"
    load_runs([log]).to_csv(tidy, index=False)
    return [*files, tidy]


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def log_mlflow(log: RunLog, tracking_uri: str | None = None, experiment: str | None = None) -> str:
    """One MLflow run per culturelens run; returns where it went (``run ID in URI``)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri is None:
        # the default local store: a folder, no server, no database. MLflow 3 keeps its file store in
        # maintenance mode and asks for this opt-in; a tracking URI the user sets is used as it is
        uri = Path("mlruns").resolve().as_uri()
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "culturelens"
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(name)
    exp_id = found.experiment_id if found is not None else client.create_experiment(name)
    tags = {"culturelens.run_dir": str(log.dir.resolve()), "culturelens.model": log.label}
    if log.status is not None:
        tags["culturelens.status"] = log.status.status.value
    run = client.create_run(exp_id, run_name=log.dir.name, tags=tags)
    rid = run.info.run_id
    try:
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in run_metrics(log).items()]
        params = [Param(k, v) for k, v in run_params(log).items()]
        for chunk in _batches(params, 100):
            client.log_batch(rid, params=chunk)
        for chunk in _batches(metrics, 1000):
            client.log_batch(rid, metrics=chunk)
        with tempfile.TemporaryDirectory() as tmp:
            for path in _artefacts(log, Path(tmp)):
                client.log_artifact(rid, str(path))
    except BaseException:
        client.set_terminated(rid, status="FAILED")
        raise
    client.set_terminated(rid)
    return f"mlflow run {rid} in {uri}"


def log_wandb(log: RunLog, project: str | None = None, directory: str | Path | None = None) -> str:
    """One W&B run per culturelens run (offline with ``WANDB_MODE=offline``); returns where it went."""
    import wandb

    from culturelens.frames import RESULT_COLUMNS, load_runs

    tidy = load_runs([log])
    with wandb.init(
        project=project or os.environ.get("WANDB_PROJECT") or "culturelens",
        name=log.dir.name,
        job_type="eval",
        config=_config(log),
        dir=str(directory) if directory is not None else None,
        tags=["culturelens", *log.task_names],
    ) as run:
        run.log(run_metrics(log))
        rows = tidy[RESULT_COLUMNS].astype(object).where(tidy[RESULT_COLUMNS].notna(), None)
        columns: list[str | int] = list(RESULT_COLUMNS)
        run.log({"results": wandb.Table(columns=columns, data=rows.values.tolist())})
        art = wandb.Artifact(re.sub(r"[^\w.-]", "_", f"culturelens-{log.dir.name}")[:120], type="evaluation")
        with tempfile.TemporaryDirectory() as tmp:
            for path in _artefacts(log, Path(tmp)):
                art.add_file(str(path), name=path.name)
            run.log_artifact(art)
        where = run.url or str(Path(run.dir).parent)
    return f"wandb run {where}"


def log_run(run_dir: str | Path | RunLog, targets: Iterable[str]) -> dict[str, str]:
    """Log a run to each target (``mlflow``, ``wandb``); target -> where it went. Raises
    :class:`TrackingError` (one line) when a package is missing or a tracker refuses the run."""
    names = parse_targets(targets)
    require(names)
    log = run_dir if isinstance(run_dir, RunLog) else read_run(run_dir)
    out = {}
    for name in names:
        try:
            out[name] = log_mlflow(log) if name == "mlflow" else log_wandb(log)
        except TrackingError:
            raise
        except Exception as exc:  # noqa: BLE001 - any tracker failure: one line, the run itself is kept
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise TrackingError(
                f"--log-to {name}: logging {log.dir} failed ({type(exc).__name__}: {first[:300]}); "
                "the run itself is complete"
            ) from None
    return out
