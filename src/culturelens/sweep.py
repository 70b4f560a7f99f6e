"""Declarative variant sweeps: ``--vary option_order=rotate labels=letters,numbers template=all``.

Each factor expands to a list of levels; the design is their cartesian product (or a seeded sample
of it). Variants are pure data, so identical prompts from different variants share the cache.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

from culturelens import render
from culturelens.schema import ItemKind, Mode, Variant

FACTORS = (
    "option_order",
    "labels",
    "template",
    "scale_direction",
    "mode",
    "language",
    "persona",
    "system",
    "few_shot",
)


class SweepError(ValueError):
    pass


def _levels(factor: str, spec: str, n_options: int, kinds: Sequence[ItemKind]) -> list[Any]:
    values = [v.strip() for v in spec.split(",") if v.strip()]
    if factor == "option_order":
        out: list[Any] = []
        for v in values:
            if v == "rotate":
                out.extend(f"rotate:{k}" for k in range(n_options))
            elif v.startswith("perm") and v[4:].isdigit():  # perm5 -> five seeded permutations
                out.extend(f"perm:{k}" for k in range(int(v[4:])))
            elif v in ("identity", "reversed") or v.startswith(("rotate:", "perm:")):
                out.append(v)
            else:
                raise SweepError(f"option_order level {v!r}: use identity, reversed, rotate, rotate:K, permN, perm:SEED")
        return out
    if factor == "labels":
        for v in values:
            if v not in ("letters", "numbers", "lower", "none"):
                raise SweepError(f"labels level {v!r}: use letters, numbers, lower, none")
        return values
    if factor == "template":
        if values == ["all"]:
            names = sorted({n for k in kinds for n in render.templates_for(k)})
            common = [n for n in names if all(n in render.templates_for(k) for k in kinds)]
            return common or names
        return values
    if factor == "scale_direction":
        return [{"ascending": "asc", "descending": "desc"}.get(v, v) for v in values]
    if factor == "mode":
        try:
            return [Mode(v) for v in values]
        except ValueError as exc:
            raise SweepError(f"mode levels {values}: use letter, cloze, generate") from exc
    if factor in ("language", "persona", "system"):
        return [None if v in ("none", "local", "default") else v for v in values]
    if factor == "few_shot":
        return [int(v) for v in values]
    raise SweepError(f"unknown factor {factor!r}; factors: {', '.join(FACTORS)}")


def parse_vary(vary: Sequence[str]) -> list[tuple[str, str]]:
    pairs = []
    for token in vary:
        for part in token.split():
            factor, sep, spec = part.partition("=")
            if not sep or not spec:
                raise SweepError(f"--vary {part!r}: expected FACTOR=LEVEL[,LEVEL...]")
            if factor not in FACTORS:
                raise SweepError(f"unknown factor {factor!r}; factors: {', '.join(FACTORS)}")
            pairs.append((factor, spec))
    return pairs


def expand(
    vary: Sequence[str],
    base: Variant | None = None,
    n_options: int = 4,
    kinds: Sequence[ItemKind] = (ItemKind.MULTIPLE_CHOICE,),
    sample: int | None = None,
    seed: int = 0,
) -> list[Variant]:
    """The design's variants, base (default) variant first when it is part of the design."""
    base = base or Variant()
    pairs = parse_vary(vary)
    if not pairs:
        return [base]
    factors = [f for f, _ in pairs]
    levels = [_levels(f, s, n_options, kinds) for f, s in pairs]
    design = [base.model_copy(update=dict(zip(factors, combo, strict=True))) for combo in itertools.product(*levels)]
    seen: dict[str, Variant] = {}
    for v in design:
        seen.setdefault(v.id, v)
    variants = list(seen.values())
    if sample is not None and sample < len(variants):
        rng = random.Random(seed)
        variants = rng.sample(variants, sample)
    variants.sort(key=lambda v: (v.id != base.id,))
    return variants


def factor_values(variant: Variant, factors: Sequence[str]) -> dict[str, str]:
    """The level of each swept factor in a variant (as text), for effect decompositions."""
    out = {}
    for f in factors:
        v = getattr(variant, f)
        out[f] = "none" if v is None else (v.value if isinstance(v, Mode) else str(v))
    return out
