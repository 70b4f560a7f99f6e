"""``culturelens compare RUN_A RUN_B``: paired comparison of two runs on the items they share.

Rows are paired on (item, variant) when the runs share variants (several shared variants are pooled
and the item is the resampling cluster), otherwise on the item under each run's primary variant, so
two presentations of one model can be compared as well as two models.

Per task, for all shared items and for each country: both scores, the difference A - B with a paired
(cluster) bootstrap 95% CI, and a p-value: McNemar (exact binomial below 25 discordant pairs) for 0/1
metrics with one row per cluster, otherwise the paired sign-flip permutation test over clusters.
Country rows also get Holm-adjusted p-values. A note flags rows where n is too small to detect the
observed difference (minimum detectable difference at 80% power, two-sided alpha 0.05).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from culturelens.robustness import Row, task_rows
from culturelens.runlog import RunLog, read_run
from culturelens.stats import (
    adjust_pvalues,
    holm,
    mcnemar,
    min_detectable_diff,
    paired_binary_se,
    paired_bootstrap,
    paired_permutation,
    paired_se,
)

ALPHA = 0.05
POWER = 0.8
MIN_N = 10


def _pairs(
    log_a: RunLog, log_b: RunLog, name: str, rows_a: list[Row], rows_b: list[Row]
) -> tuple[list[tuple[Row, Row]], str, list[str]]:
    va, vb = list(log_a.task_variants(name)), list(log_b.task_variants(name))
    shared_v = [v for v in va if v in vb]
    idx_b = {(r.item_id, r.variant): r for r in rows_b}
    if shared_v:
        pairs = [
            (r, idx_b[(r.item_id, r.variant)])
            for r in rows_a
            if r.variant in shared_v and (r.item_id, r.variant) in idx_b
        ]
        if pairs:
            return pairs, "item x shared variant" if len(shared_v) > 1 else "item", shared_v
    # no shared presentation: pair items under each run's primary variant
    pa = {r.item_id: r for r in rows_a if r.variant == va[0]}
    pb = {r.item_id: r for r in rows_b if r.variant == vb[0]}
    pairs = [(pa[i], pb[i]) for i in pa if i in pb]
    return pairs, f"item (A: {va[0]}, B: {vb[0]})", [va[0], vb[0]]


def compare_group(
    a: list[float], b: list[float], clusters: list[str], n_items: int, seed: int = 0
) -> dict[str, Any]:
    """Scores, difference, CI, p-value and power note for one group of paired rows."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff, lo, hi = paired_bootstrap(x, y, clusters, n_boot=2000, seed=seed)
    binary = bool(np.all(np.isin(x, (0.0, 1.0))) and np.all(np.isin(y, (0.0, 1.0))))
    one_per_cluster = len(set(clusters)) == len(clusters)
    if binary and one_per_cluster:
        mc = mcnemar(x, y)
        p, test = mc.p, f"McNemar {mc.method} (b={mc.b}, c={mc.c})"
        se = paired_binary_se(len(x), mc.b + mc.c)
    else:
        p = paired_permutation(x, y, clusters, seed=seed)
        test = "paired permutation" + (" (clustered)" if not one_per_cluster else "")
        se = paired_se(x, y, clusters)
    mde = min_detectable_diff(se, ALPHA, POWER, max_diff=1.0)
    notes = []
    if n_items < MIN_N:
        notes.append(f"n={n_items} is too small for a reliable test")
    if np.array_equal(x, y):
        notes.append("identical outcomes")
    elif p >= ALPHA and np.isfinite(mde) and abs(diff) < mde:
        notes.append(f"underpowered: only |diff| >= {mde:.2f} is detectable (80% power)")
    elif p >= ALPHA and not np.isfinite(mde):
        notes.append("underpowered: no difference within the metric's range is detectable (80% power)")
    return {
        "n": n_items,
        "pairs": len(x),
        "a": float(x.mean()),
        "b": float(y.mean()),
        "diff": diff,
        "ci": [lo, hi],
        "p": p,
        "test": test,
        "mde": None if not np.isfinite(mde) else round(mde, 4),
        "note": "; ".join(notes),
    }


def compare_runs(
    run_a: Path | str, run_b: Path | str, metric: str | None = None, seed: int = 0
) -> dict[str, Any]:
    """Paired comparison of two runs per shared task, overall and per country."""
    run_a, run_b = Path(run_a), Path(run_b)
    log_a, log_b = read_run(run_a), read_run(run_b)
    res_a, res_b = log_a.results, log_b.results
    la, lb = log_a.label, log_b.label
    if la == lb:
        la, lb = f"{la} ({run_a.name})", f"{lb} ({run_b.name})"
    shared_tasks = [t for t in res_a.get("tasks", {}) if t in res_b.get("tasks", {})]
    if not shared_tasks:
        raise ValueError(f"{run_a} and {run_b} share no task")
    out: dict[str, Any] = {"a": la, "b": lb, "run_a": str(run_a), "run_b": str(run_b), "tasks": {}}
    for name in shared_tasks:
        eb = res_b["tasks"][name]
        m = metric or log_a.headline_metric(name)
        if m is None or m not in eb.get("metrics", {}):
            continue
        pairs, pairing, variants = _pairs(log_a, log_b, name, task_rows(log_a, name), task_rows(log_b, name))
        pairs = [(ra, rb) for ra, rb in pairs if m in ra.metrics and m in rb.metrics]
        if not pairs:
            continue
        groups: dict[str, list[tuple[Row, Row]]] = defaultdict(list)
        for ra, rb in pairs:
            groups["all"].append((ra, rb))
            if ra.country:
                groups[ra.country].append((ra, rb))
        rows = []
        for g in ["all", *sorted(k for k in groups if k != "all")]:
            ps = groups[g]
            row = compare_group(
                [ra.metrics[m] for ra, _ in ps],
                [rb.metrics[m] for _, rb in ps],
                [ra.cluster for ra, _ in ps],
                n_items=len({ra.item_id for ra, _ in ps}),
                seed=seed,
            )
            rows.append({"group": g, **row})
        # per-group tests are many: Holm (no false flag) and Benjamini-Hochberg (screening), stated
        adj = holm([r["p"] for r in rows[1:]])
        bh = adjust_pvalues([r["p"] for r in rows[1:]], "bh")
        rows[0]["p_holm"] = rows[0]["p_bh"] = rows[0]["p"]
        for r, p, q in zip(rows[1:], adj, bh, strict=True):
            r["p_holm"] = p
            r["p_bh"] = q
        out["tasks"][name] = {"metric": m, "pairing": pairing, "variants": variants, "rows": rows}
    if not out["tasks"]:
        raise ValueError(f"{run_a} and {run_b} share no scored items")
    return out
