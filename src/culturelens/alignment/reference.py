"""The survey model: one question's human answers per country (:class:`Reference`), the similarity
of model answers to them, and the uniform / majority / leave-one-out baselines."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from culturelens.distributions import METRICS, as_distribution, expected_position, onehot, similarity, uniform
from culturelens.schema import Item


@dataclass
class Reference:
    """One question's human data: per-country distributions and/or 0-1 means."""

    k: int
    ordered: bool
    dists: dict[str, np.ndarray] = field(default_factory=dict)
    means: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> list[str]:
        """The similarity metrics these data allow."""
        out = []
        if self.dists:
            out.append("jsd")
            if self.ordered:
                out.append("w1")
        if self.ordered and (self.dists or self.means):
            out.append("mae")
        return out

    def countries(self) -> list[str]:
        return sorted(set(self.dists) | set(self.means))

    def mean_of(self, c: str) -> float | None:
        """Country ``c``'s mean answer on the 0-1 scale (None: no data)."""
        if c in self.means:
            return self.means[c]
        if c in self.dists:
            return expected_position(self.dists[c])
        return None

    def sim(self, metric: str, model: np.ndarray, c: str) -> float:
        """Similarity of a model distribution to country ``c`` (NaN: no data for ``c``)."""
        if metric in ("jsd", "w1"):
            if c not in self.dists:
                return float("nan")
            return similarity(metric, model, self.dists[c])
        m = self.mean_of(c)
        return float("nan") if m is None else similarity("mae", model, ref_mean=m)

    def baselines(self, metric: str, c: str) -> dict[str, float]:
        """Uniform, majority and leave-one-out pooled baselines for country ``c``."""
        out = {"uniform": self.sim(metric, uniform(self.k), c)}
        others = [o for o in self.countries() if o != c]
        if metric in ("jsd", "w1"):
            if c not in self.dists:
                return {"uniform": float("nan"), "majority": float("nan"), "pooled": float("nan")}
            pooled_all = np.mean([self.dists[o] for o in self.dists], axis=0)
            out["majority"] = self.sim(metric, onehot(self.k, int(np.argmax(pooled_all))), c)
            rest = [self.dists[o] for o in others if o in self.dists]
            out["pooled"] = self.sim(metric, np.mean(rest, axis=0), c) if rest else float("nan")
            return out
        ref = self.mean_of(c)
        all_means = [m for m in (self.mean_of(o) for o in self.countries()) if m is not None]
        if ref is None or not all_means:
            return {"uniform": float("nan"), "majority": float("nan"), "pooled": float("nan")}
        point = round(float(np.mean(all_means)) * (self.k - 1)) / max(self.k - 1, 1)
        out["majority"] = 1.0 - abs(point - ref)
        rest_m = [m for m in (self.mean_of(o) for o in others) if m is not None]
        out["pooled"] = 1.0 - abs(float(np.mean(rest_m)) - ref) if rest_m else float("nan")
        return out


def reference_of(item: Item) -> Reference | None:
    """Build a :class:`Reference` from an Item's ``reference`` / ``reference_means``."""
    k = len(item.options)
    if k < 2 or not (item.reference or item.reference_means):
        return None
    dists = {}
    for c, d in item.reference.items():
        if len(d) == k and sum(d) > 0:
            dists[c] = as_distribution(d)
    means = {c: float(m) for c, m in item.reference_means.items() if m is not None and math.isfinite(m)}
    return Reference(k=k, ordered=bool(item.ordered), dists=dists, means=means)


def sim_matrix(
    dists: Mapping[str, np.ndarray],
    refs: Mapping[str, Reference],
    groups: Sequence[str],
    countries: Sequence[str],
    metric: str,
) -> np.ndarray:
    """Questions x countries similarity of the model's distributions (NaN where there is no data)."""
    mat = np.full((len(groups), len(countries)), np.nan)
    for i, g in enumerate(groups):
        d = dists.get(g)
        ref = refs.get(g)
        if d is None or ref is None or metric not in ref.metrics():
            continue
        for j, c in enumerate(countries):
            mat[i, j] = ref.sim(metric, d, c)
    return mat


def baseline_matrices(
    refs: Mapping[str, Reference], groups: Sequence[str], countries: Sequence[str], metric: str
) -> dict[str, np.ndarray]:
    """Questions x countries matrices of the uniform, majority and pooled baselines."""
    out = {k: np.full((len(groups), len(countries)), np.nan) for k in ("uniform", "majority", "pooled")}
    for i, g in enumerate(groups):
        ref = refs.get(g)
        if ref is None or metric not in ref.metrics():
            continue
        for j, c in enumerate(countries):
            if c in ref.dists or c in ref.means:
                for k, v in ref.baselines(metric, c).items():
                    out[k][i, j] = v
    return out


def primary_metric(declared: str | None, refs: Mapping[str, Reference]) -> str | None:
    """The task's declared metric when the reference data allow it, else the first they allow."""
    avail = {m for r in refs.values() for m in r.metrics()}
    if declared in avail:
        return declared
    for m in METRICS:
        if m in avail:
            return m
    return None
