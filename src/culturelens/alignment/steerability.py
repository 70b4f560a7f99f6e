"""Steerability: how far a persona moves the model's answers toward each target country's, and how
specifically (against steering toward the other targets)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from culturelens.alignment.reference import Reference, sim_matrix
from culturelens.alignment.samples import Condition
from culturelens.alignment.tables import matrix_ci, mean_ci, nanmean, quiet
from culturelens.distributions import expected_position


def steering_report(
    debiased: Mapping[Condition, Mapping[str, np.ndarray]],
    refs: Mapping[str, Reference],
    metric: str,
    splits: Mapping[str, Sequence[str]],
    heldout_countries: Sequence[str],
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Gain and specificity of steering toward each target country X, per style and question split.

    * gain(X) = alignment with X when steered toward X - alignment with X unsteered;
    * specificity(X) = alignment with X when steered toward X - mean alignment with X when steered
      toward each other target country (same style).
    Both are means over questions of per-question differences, with bootstrap CIs over questions.
    """
    unsteered = debiased.get(Condition(None, None))
    styles: dict[str, dict[str, Mapping[str, np.ndarray]]] = defaultdict(dict)
    for cond, d in debiased.items():
        if cond.style is not None and cond.target is not None:
            styles[cond.style][cond.target] = d
    out: dict[str, Any] = {"metric": metric, "styles": {}, "heldout_countries": list(heldout_countries)}
    for style, by_target in sorted(styles.items()):
        targets = sorted(by_target)
        s_entry: dict[str, Any] = {"targets": targets, "splits": {}}
        for split, groups in splits.items():
            groups = list(groups)
            if not groups:
                continue
            # alignment matrix A[steer Y][reference c], per question: (G, Y, C)
            sims = np.stack(
                [sim_matrix(by_target[y], refs, groups, targets, metric) for y in targets], axis=1
            )
            diag = np.stack([sims[:, i, i] for i in range(len(targets))], axis=1)  # (G, X)
            base = sim_matrix(unsteered, refs, groups, targets, metric) if unsteered else None
            gain = diag - base if base is not None else None
            if len(targets) > 1:
                with quiet():
                    off = np.stack(
                        [
                            np.nanmean(np.delete(sims[:, :, i], i, axis=1), axis=1)
                            for i in range(len(targets))
                        ],
                        axis=1,
                    )
                spec = diag - off
            else:
                spec = None
            per_target = {}
            for i, x in enumerate(targets):
                row: dict[str, Any] = {"aligned": mean_ci(diag[:, i], n_boot, seed)}
                if gain is not None and base is not None:
                    row["gain"] = mean_ci(gain[:, i], n_boot, seed)
                    row["unsteered"] = mean_ci(base[:, i], n_boot, seed)
                if spec is not None:
                    row["specificity"] = mean_ci(spec[:, i], n_boot, seed)
                    with quiet():
                        col = np.nanmean(sims[:, :, i], axis=0)  # alignment with x under each steer
                    row["best_steer"] = targets[int(np.nanargmax(col))] if np.any(np.isfinite(col)) else None
                row["heldout_country"] = x in heldout_countries
                per_target[x] = row
            with quiet():
                matrix = {
                    y: {c: nanmean(sims[:, iy, ic]) for ic, c in enumerate(targets)}
                    for iy, y in enumerate(targets)
                }
            summary: dict[str, Any] = {}
            for label, cols in (
                ("all", list(range(len(targets)))),
                ("main_countries", [i for i, x in enumerate(targets) if x not in heldout_countries]),
                ("heldout_countries", [i for i, x in enumerate(targets) if x in heldout_countries]),
            ):
                if not cols or (label != "all" and not heldout_countries):
                    continue
                entry: dict[str, Any] = {"targets": len(cols)}
                if gain is not None:
                    entry["gain"] = matrix_ci(gain[:, cols], n_boot, seed)
                if spec is not None:
                    entry["specificity"] = matrix_ci(spec[:, cols], n_boot, seed)
                    hits = [per_target[targets[i]].get("best_steer") == targets[i] for i in cols]
                    entry["top1"] = float(np.mean(hits))
                summary[label] = entry
            spread = spread_ratio(by_target, refs, groups, targets) if metric == "mae" else None
            s_entry["splits"][split] = {
                "questions": len(groups),
                "targets": per_target,
                "summary": summary,
                "matrix": matrix,
                "spread_ratio": spread,
            }
        out["styles"][style] = s_entry
    return out


def spread_ratio(
    by_target: Mapping[str, Mapping[str, np.ndarray]],
    refs: Mapping[str, Reference],
    groups: Sequence[str],
    targets: Sequence[str],
) -> float | None:
    """The paper's statistic: mean pairwise distance between the steered answer vectors (one per
    target country, mean answers on 0-1) over the same mean distance between the countries' human
    answers. Near 0: steering barely moves answers; near 1: as different as the countries are."""
    if len(targets) < 2:
        return None
    keep = [
        g
        for g in groups
        if g in refs and all(refs[g].mean_of(t) is not None and g in by_target[t] for t in targets)
    ]
    if len(keep) < 2:
        return None
    model = np.array([[expected_position(by_target[t][g]) for g in keep] for t in targets])
    human = np.array([[refs[g].mean_of(t) for g in keep] for t in targets], dtype=float)

    def mpd(x: np.ndarray) -> float:
        d = [np.linalg.norm(x[i] - x[j]) for i, j in itertools.combinations(range(len(x)), 2)]
        return float(np.mean(d))

    h = mpd(human)
    return mpd(model) / h if h > 0 else None
