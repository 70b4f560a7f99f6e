"""Run-level alignment analysis: every survey task of a run, read only from the run log."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from culturelens.alignment.ivs import MapPoints, iw_map, load_ivs
from culturelens.alignment.reference import (
    Reference,
    baseline_matrices,
    primary_metric,
    reference_of,
    sim_matrix,
)
from culturelens.alignment.samples import bias_report, debias, load_samples
from culturelens.alignment.steerability import steering_report
from culturelens.alignment.tables import country_table
from culturelens.alignment.vsm import Scores, vsm_report
from culturelens.distributions import METRIC_NAMES, METRICS
from culturelens.errors import DatasetError
from culturelens.hofstede import load_hofstede
from culturelens.jsonsafe import json_safe
from culturelens.runlog import RunLog, RunLogError, read_run, write_json
from culturelens.schema import Item


@dataclass(frozen=True)
class Survey:
    """What a survey task declares for its analysis (the ``survey`` entry of ``Task.declaration()``)."""

    name: str
    kind: str  # "survey": distributions vs each country's; "vsm": Hofstede's indices
    metric: str | None  # the metric to report when the data allow it (None: the first available)


def survey_of(log: RunLog, name: str) -> Survey | None:
    """The survey declaration of a task of the run; None when it is no survey (or is not installed)."""
    try:
        task = log.task(name)
    except KeyError:
        return None
    decl = task.declaration().get("survey")
    return Survey(name, decl["kind"], decl["alignment_metric"]) if decl else None


def analyze_task(
    log: RunLog,
    task: Survey,
    items: Mapping[str, Item],
    references: Mapping[str, Any],
    n_boot: int = 1000,
    seed: int = 0,
    hofstede: Scores | None = None,
    ivs: MapPoints | None = None,
) -> dict[str, Any]:
    """Alignment analysis of one survey task's samples in a run (see :func:`analyze_alignment`).

    ``items`` is the run's item snapshot of the task and ``references`` what the task recorded
    besides (``Task.reference_data``: shared per-question references, the alignment metric)."""
    variants = {v.id: v for v in log.variants}
    samples, invalid = load_samples(log, task.name, items, variants)
    debiased, per_pres = debias(samples)
    entry: dict[str, Any] = {
        "kind": task.kind,
        "samples": len(samples),
        "invalid": invalid,
        "presentations": sorted({s.presentation for s in samples}),
        "conditions": sorted(c.id for c in debiased),
    }
    entry["bias_removed"] = {
        cond.id: bias_report([s for s in samples if s.condition == cond], debiased[cond], per_pres[cond])
        for cond in debiased
        if len(per_pres[cond]) > 1
    }
    if task.kind == "vsm":
        numbers = {
            it.group or it.id: int(it.metadata["number"]) for it in items.values() if "number" in it.metadata
        }
        entry["vsm"] = vsm_report(debiased, per_pres, numbers, hofstede, n_boot, seed)
        return entry

    refs: dict[str, Reference] = {}
    split_of: dict[str, str] = {}
    heldout: set[str] = set()
    shared: Mapping[str, dict[str, list[float]]] = references.get("group_references") or {}
    for it in items.values():
        g = it.group or it.id
        if g not in refs:
            ref = reference_of(it.model_copy(update={"reference": shared[g]}) if g in shared else it)
            if ref is not None:
                refs[g] = ref
        if "split" in it.subset:
            split_of[g] = it.subset["split"]
        heldout.update(it.metadata.get("heldout_countries", []))
    metric = primary_metric(references.get("alignment_metric", task.metric), refs)
    entry["metric"] = metric
    entry["metric_name"] = METRIC_NAMES.get(metric or "")
    if metric is None:
        entry["note"] = "no reference data with a usable metric"
        return entry
    countries = sorted({c for r in refs.values() for c in r.countries()})
    entry["heldout_countries"] = sorted(heldout)
    entry["by_condition"] = {}
    for cond, dists in sorted(debiased.items(), key=lambda kv: (kv[0].style is not None, kv[0].id)):
        groups = [g for g in dists if g in refs]
        if not groups:
            continue
        tables = {}
        for m in METRICS:
            if not any(m in refs[g].metrics() for g in groups):
                continue
            if cond.style is not None and m != metric:
                continue  # steered conditions: the primary metric only
            sims = sim_matrix(dists, refs, groups, countries, m)
            base = baseline_matrices(refs, groups, countries, m)
            tables[m] = country_table(sims, countries, base, n_boot=n_boot, seed=seed)
        cond_entry: dict[str, Any] = {"questions": len(groups), "countries": tables}
        head = tables.get(metric) or []
        cond_entry["nearest"] = [r["country"] for r in head[:5]]
        if ivs and head:
            cond_entry["map"] = iw_map(head, ivs)
        entry["by_condition"][cond.id] = cond_entry
    if any(c.style is not None and c.target is not None for c in debiased):
        all_groups = sorted(refs)
        splits: dict[str, list[str]] = {"all": all_groups}
        for g in all_groups:
            if g in split_of:
                splits.setdefault(split_of[g], []).append(g)
        entry["steering"] = steering_report(debiased, refs, metric, splits, sorted(heldout), n_boot, seed)
    return entry


def analyze_alignment(
    run_dir: str | Path,
    hofstede_file: str | Path | None = None,
    ivs_dir: str | Path | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Alignment of every survey task in a run; writes ``alignment.json`` when there is any.

    Tasks opt in by subclassing ``culturelens.tasks.base.SurveyTask`` (their declaration's ``survey``
    entry: ``kind`` "survey" or "vsm", ``alignment_metric``). Everything is read from the run log
    (:func:`culturelens.runlog.read_run`): the item snapshot, what the task recorded besides (shared
    references, the Hofstede table, the metric its data decided) and the samples, so a run analyses
    without its dataset. ``hofstede_file`` replaces the Hofstede table the run recorded; ``ivs_dir``
    (or ``$CULTURELENS_IVS``) adds Inglehart-Welzel map positions.
    """
    log = read_run(run_dir)
    cfg = log.config
    out: dict[str, Any] = {"run": str(log.dir), "tasks": {}}
    ivs = None
    ivs_dir = ivs_dir or os.environ.get("CULTURELENS_IVS")
    if ivs_dir:
        ivs = load_ivs(ivs_dir)
    for name in cfg.tasks:
        task = survey_of(log, name)
        if task is None:
            continue
        try:
            items, refs = log.items(name), log.references(name)
        except (DatasetError, RunLogError) as exc:
            out["tasks"][name] = {"error": str(exc)}
            continue
        hof: Scores | None = None
        path: str | None = None
        if task.kind == "vsm":
            if hofstede_file:
                path, hof = str(hofstede_file), load_hofstede(hofstede_file)
            else:
                path, hof = refs.get("hofstede_file"), refs.get("hofstede")
        out["tasks"][name] = analyze_task(log, task, items, refs, cfg.n_boot, cfg.seed, hof, ivs)
        if task.kind == "vsm":
            out["tasks"][name]["hofstede_file"] = path
    out = json_safe(out)
    if write and out["tasks"]:
        write_json(log.dir / "alignment.json", out)
    return out
