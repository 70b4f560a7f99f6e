"""A survey task's samples, read from the run log, grouped by steering condition and debiased by
averaging over presentation variants; what the averaging removed (:func:`bias_report`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from culturelens.distributions import as_distribution, expected_position
from culturelens.runlog import RunLog
from culturelens.schema import PRESENTATION_FIELDS, Item, Variant


@dataclass(frozen=True)
class Condition:
    """A steering condition: persona style (or ``language``) and target country; (None, None) = unsteered."""

    style: str | None
    target: str | None

    @property
    def id(self) -> str:
        if self.style is None:
            return "unsteered"
        return f"{self.style}:{self.target}" if self.target else self.style


#: condition -> question group -> debiased distribution
Debiased = dict[Condition, dict[str, np.ndarray]]
#: condition -> presentation id -> question group -> distribution under that presentation
PerPresentation = dict[Condition, dict[str, dict[str, np.ndarray]]]


def condition_of(variant: Variant, item: Item) -> Condition:
    """Steering condition of one sample: the persona (``style:arg``; ``@item`` = the item's country)."""
    from culturelens.countries import try_normalize_country

    extra = f"+system={variant.system}" if variant.system else ""
    if variant.persona:
        style, _, arg = variant.persona.partition(":")
        arg = arg.split("|", 1)[0].strip()
        if arg in ("", "@item"):
            target = item.country.name if item.country else None
        else:
            c = try_normalize_country(arg.replace("_", " "))
            target = c.name if c else arg
        return Condition(style + extra, target)
    if variant.language and variant.language != item.language:
        return Condition(f"language={variant.language}{extra}", None)
    return Condition(("system=" + variant.system) if variant.system else None, None)


def presentation_id(variant: Variant) -> str:
    """Id of how the variant presents the item (its id without the steering fields)."""
    return variant.presentation().id


def mean_dist(dists: Sequence[np.ndarray]) -> np.ndarray:
    return as_distribution(np.mean(np.stack(dists), axis=0))


def _tv(a: np.ndarray, b: np.ndarray) -> float:
    return float(0.5 * np.abs(a - b).sum())


@dataclass
class SurveySample:
    """One valid answer distribution of a survey item under one variant."""

    item_id: str
    group: str
    condition: Condition
    presentation: str
    variant: Variant
    probs: np.ndarray
    order: list[int]


def load_samples(
    log: RunLog, task: str, items: Mapping[str, Item], variants: Mapping[str, Variant]
) -> tuple[list[SurveySample], int]:
    """The task's samples with a usable distribution, and how many were invalid."""
    out: list[SurveySample] = []
    invalid = 0
    for rec in log.iter_samples(task):
        item = items.get(rec.item_id)
        variant = variants.get(rec.variant)
        if item is None or variant is None:
            continue
        probs = rec.probs
        if not probs or not rec.valid or len(probs) != len(item.options) or sum(probs) <= 0:
            invalid += 1
            continue
        out.append(
            SurveySample(
                rec.item_id,
                item.group or item.id,
                condition_of(variant, item),
                presentation_id(variant),
                variant,
                as_distribution(probs),
                list(rec.order or range(len(probs))),
            )
        )
    return out, invalid


def debias(samples: Sequence[SurveySample]) -> tuple[Debiased, PerPresentation]:
    """Per condition: per question group, the distribution averaged over presentation variants
    (and over the group's items), and the same per presentation variant."""
    by: dict[Condition, dict[str, dict[str, dict[str, list[np.ndarray]]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    )
    for s in samples:
        by[s.condition][s.group][s.presentation][s.item_id].append(s.probs)
    debiased: Debiased = {}
    per_pres: PerPresentation = {}
    for cond, groups in by.items():
        debiased[cond] = {}
        per_pres[cond] = defaultdict(dict)
        for g, pres in groups.items():
            pres_means = {}
            for p, items in pres.items():
                pres_means[p] = mean_dist([mean_dist(v) for v in items.values()])
                per_pres[cond][p][g] = pres_means[p]
            debiased[cond][g] = mean_dist(list(pres_means.values()))
    return debiased, per_pres


def bias_report(
    samples: Sequence[SurveySample],
    debiased: Mapping[str, np.ndarray],
    per_pres: Mapping[str, Mapping[str, np.ndarray]],
) -> dict[str, Any]:
    """What averaging over presentations removed, for one condition.

    * per presentation variant: mean total-variation distance of its distribution from the average
      (and the shift of the mean answer on the 0-1 scale);
    * per factor level (e.g. ``labels=numbers``): the same for the level's own average;
    * position bias: excess probability on the option shown first / last over its debiased probability.
    """
    variants = {}
    for p, groups in per_pres.items():
        tvs = [_tv(d, debiased[g]) for g, d in groups.items()]
        shifts = [expected_position(d) - expected_position(debiased[g]) for g, d in groups.items()]
        variants[p] = {"tv": float(np.mean(tvs)), "mean_shift": float(np.mean(shifts)), "n": len(tvs)}
    levels: dict[str, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    first, last = [], []
    for s in samples:
        for name in PRESENTATION_FIELDS:
            value = getattr(s.variant, name)
            levels[f"{name}={getattr(value, 'value', value)}"][s.group].append(s.probs)
        ref = debiased.get(s.group)
        if ref is not None and s.order:
            first.append(s.probs[s.order[0]] - ref[s.order[0]])
            last.append(s.probs[s.order[-1]] - ref[s.order[-1]])
    by_level = {}
    for lvl, by_group in levels.items():
        tvs = [_tv(mean_dist(v), debiased[g]) for g, v in by_group.items() if g in debiased]
        if tvs:
            by_level[lvl] = float(np.mean(tvs))
    n_levels = Counter(k.split("=")[0] for k in by_level)
    by_level = {k: v for k, v in by_level.items() if n_levels[k.split("=")[0]] > 1}  # factors that varied
    return {
        "variants": variants,
        "levels": by_level,
        "first_position_excess": float(np.mean(first)) if first else None,
        "last_position_excess": float(np.mean(last)) if last else None,
        "mean_tv": float(np.mean([v["tv"] for v in variants.values()])) if variants else 0.0,
    }
