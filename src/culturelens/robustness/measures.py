"""Stability measures over per-variant scores: spread, main effects, rank stability, item stability."""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from culturelens.robustness.rows import RANK_MAX_FLIP, RANK_MIN_TAU, Row
from culturelens.stats import cluster_bootstrap_ci, kendall_tau, sign_flips, variants_differ


# --- helpers ------------------------------------------------------------------------------------
def _r(x: float | None, nd: int = 4) -> float | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return round(float(x), nd)


def _spread(values: Sequence[float]) -> dict[str, Any]:
    v = np.asarray(values, dtype=float)
    return {
        "min": _r(v.min()),
        "max": _r(v.max()),
        "range": _r(v.max() - v.min()),
        "mean": _r(v.mean()),
        "sd": _r(v.std(ddof=1)) if v.size > 1 else 0.0,
        "n_variants": int(v.size),
    }


def _levels(spec: dict[str, Any], factors: Sequence[str]) -> dict[str, str]:
    return {f: ("none" if spec.get(f) is None else str(spec.get(f))) for f in factors}


def main_effects(
    scores: dict[str, float], levels: dict[str, dict[str, str]], factors: Sequence[str]
) -> dict[str, Any]:
    """Share of the variance of per-variant scores explained by each factor's main effect."""
    vids = list(scores)
    y = np.array([scores[v] for v in vids], dtype=float)
    grand = float(y.mean()) if y.size else float("nan")
    ss_total = float(np.sum((y - grand) ** 2))
    out: dict[str, Any] = {"factors": {}, "ss_total": _r(ss_total, 6)}
    explained = 0.0
    for f in factors:
        groups: dict[str, list[float]] = defaultdict(list)
        for v, s in zip(vids, y, strict=True):
            groups[levels[v][f]].append(float(s))
        ss = sum(len(g) * (float(np.mean(g)) - grand) ** 2 for g in groups.values())
        share = ss / ss_total if ss_total > 1e-15 else 0.0
        explained += share
        out["factors"][f] = {
            "share": _r(share),
            "level_means": {lvl: _r(float(np.mean(g))) for lvl, g in sorted(groups.items())},
            "level_range": _r(
                float(max(np.mean(g) for g in groups.values()) - min(np.mean(g) for g in groups.values()))
            ),
        }
    out["interaction_share"] = _r(max(0.0, 1.0 - explained)) if ss_total > 1e-15 else 0.0
    return out


def ranking_stability(scores: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Rank agreement of entities (countries, models) across variants.

    ``scores`` maps variant id -> entity -> score; only entities scored under every variant count.
    """
    vids = list(scores)
    if not vids:
        return {"entities": 0}
    ents = sorted(set.intersection(*(set(scores[v]) for v in vids)))
    out: dict[str, Any] = {"entities": len(ents), "variants": len(vids)}
    if len(ents) < 2 or len(vids) < 2:
        return out
    taus, flipped_total, decided_total = [], 0, 0
    pair_dirs: dict[tuple[str, str], set[int]] = defaultdict(set)
    for v in vids:
        for a, b in itertools.combinations(ents, 2):
            d = scores[v][a] - scores[v][b]
            if abs(d) > 1e-12:
                pair_dirs[(a, b)].add(1 if d > 0 else -1)
    for v1, v2 in itertools.combinations(vids, 2):
        x = [scores[v1][e] for e in ents]
        y = [scores[v2][e] for e in ents]
        taus.append(kendall_tau(x, y))
        f, d = sign_flips(x, y)
        flipped_total += f
        decided_total += d
    finite = [t for t in taus if not math.isnan(t)]
    conclusions = len(pair_dirs)
    flips = sum(1 for dirs in pair_dirs.values() if len(dirs) == 2)
    out.update(
        {
            "tau_mean": _r(float(np.mean(finite))) if finite else None,
            "tau_min": _r(float(np.min(finite))) if finite else None,
            "tau_pairs": len(finite),
            "tau_undefined_pairs": len(taus) - len(finite),
            "pairs": len(ents) * (len(ents) - 1) // 2,
            "conclusions": conclusions,
            "flipped": flips,
            "flip_rate": _r(flips / conclusions) if conclusions else None,
            "pairwise_flip_rate": _r(flipped_total / decided_total) if decided_total else None,
        }
    )
    return out


def _ranking_stable(rank: dict[str, Any]) -> bool | None:
    if rank.get("tau_min") is None or rank.get("flip_rate") is None:
        return None
    return rank["tau_min"] >= RANK_MIN_TAU and rank["flip_rate"] <= RANK_MAX_FLIP


def item_stability(rows: Sequence[Row], metric: str, vids: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """Consistency and robust score over units scored under every variant in ``vids``."""
    by_item: dict[str, dict[str, Row]] = defaultdict(dict)
    for r in rows:
        if r.variant in vids and metric in r.metrics:
            by_item[r.item_id][r.variant] = r
    full = {i: d for i, d in by_item.items() if len(d) == len(vids)}
    if not full:
        return {"n_items": 0}
    ids = sorted(full)
    mat = np.array([[full[i][v].metrics[metric] for v in vids] for i in ids], dtype=float)
    binary = bool(np.all(np.isin(mat, (0.0, 1.0))))
    clusters = [full[i][vids[0]].cluster for i in ids]
    consistent = [
        float(
            len({_hashable(full[i][v].prediction) for v in vids}) == 1
            and full[i][vids[0]].prediction is not None
        )
        for i in ids
    ]
    robust = mat.min(axis=1)
    out: dict[str, Any] = {"n_items": len(ids), "clusters": len(set(clusters)), "binary": binary}
    for name, vals in (
        ("consistency", consistent),
        ("robust", robust.tolist()),
        ("mean", mat.mean(axis=1).tolist()),
    ):
        m, lo, hi = cluster_bootstrap_ci(vals, clusters, seed=seed)
        out[name] = {"mean": _r(m), "ci": [_r(lo), _r(hi)]}
    if binary:
        out["ever_right"] = _r(float(np.mean(mat.max(axis=1))))
        out["sometimes_right"] = _r(float(np.mean((mat.max(axis=1) == 1) & (mat.min(axis=1) == 0))))
    test, p = variants_differ(mat, binary)
    out["variants_differ"] = {"test": test, "p": _r(p, 6)}
    return out


def _hashable(x: Any) -> Any:
    return json.dumps(x, sort_keys=True) if isinstance(x, (list, dict)) else x
