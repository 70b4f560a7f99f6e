"""Declarative variant sweeps: ``--vary option_order=rotate labels=letters,numbers template=all``.

Each factor expands to a list of levels; the design is their cartesian product (or a seeded sample
of it). Variants are pure data, so identical prompts from different variants share the cache.

Levels per factor::

    option_order     identity, reversed, rotate (every cyclic rotation), rotate:K, permN (N seeded
                     random permutations), perm:SEED
    labels           letters, numbers, lower, none (cloze)
    template         template names, or ``all`` (every wording of each item kind)
    scale_direction  asc|ascending, desc|descending (ordered scales only)
    mode             letter, cloze, generate
    language         local (the item's own), or a language code (e.g. en)
    persona          none, or style:arg (e.g. typical:@item)
    system           none, or a named system prompt
    few_shot         integers
    judge_template   judge wordings of judged tasks (paper, brief); the model's prompts are unchanged
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from culturelens import personas, render
from culturelens.errors import SweepError
from culturelens.schema import ItemKind, Mode, Variant
from culturelens.variants import FACTORS

__all__ = ["FACTORS", "SweepError", "expand", "factor_values", "parse_vary", "swept_factors"]

#: item kinds that have prompt templates; ``template=all`` must work for any of them
_TEMPLATED_KINDS = (
    ItemKind.MULTIPLE_CHOICE,
    ItemKind.SURVEY,
    ItemKind.LABEL,
    ItemKind.SHORT_ANSWER,
    ItemKind.OPEN,
)


def _option_order_levels(values: list[str], n_options: int) -> list[str]:
    out: list[str] = []
    for v in values:
        if v == "rotate":
            # rotation 0 is the identity order: name it so, so the default variant is part of the design
            out.extend(["identity", *(f"rotate:{k}" for k in range(1, n_options))])
        elif v.startswith("perm") and v[4:].isdigit():  # perm5 -> five seeded permutations
            out.extend(f"perm:{k}" for k in range(int(v[4:])))
        elif v in ("identity", "reversed"):
            out.append(v)
        elif v.startswith("rotate:") and v[7:].isdigit():
            out.append("identity" if int(v[7:]) == 0 else v)
        elif v.startswith("perm:") and v[5:]:
            out.append(v)
        else:
            raise SweepError(
                f"option_order level {v!r}: use identity, reversed, rotate, rotate:K, permN, perm:SEED"
            )
    return out


def _template_levels(values: list[str], kinds: Sequence[ItemKind] | None) -> list[str]:
    if values != ["all"]:
        if "all" in values:
            raise SweepError("template=all cannot be combined with named templates")
        return values
    use = [k for k in (kinds or _TEMPLATED_KINDS) if render.templates_for(k, generic_only=True)]
    if not use:
        raise SweepError("template=all: no templates are registered")
    sets = [render.templates_for(k, generic_only=True) for k in use]
    if all(s == sets[0] for s in sets):
        names = sorted(sets[0], key=lambda n: (n != "default", n))
        return names
    # kinds have different wordings: sweep wording slots (#K = K-th template of each item's kind)
    n = min(len(s) for s in sets)
    first_is_default = all("default" in s for s in sets)
    return [("default" if k == 0 and first_is_default else f"#{k}") for k in range(n)]


def _levels(factor: str, spec: str, n_options: int, kinds: Sequence[ItemKind] | None) -> list[Any]:
    values = [v.strip() for v in spec.split(",") if v.strip()]
    if not values:
        raise SweepError(f"--vary {factor}=: no levels given")
    if factor == "option_order":
        return _option_order_levels(values, n_options)
    if factor == "labels":
        for v in values:
            if v not in ("letters", "numbers", "lower", "none"):
                raise SweepError(f"labels level {v!r}: use letters, numbers, lower, none")
        return values
    if factor == "template":
        return _template_levels(values, kinds)
    if factor == "scale_direction":
        out = [{"ascending": "asc", "descending": "desc"}.get(v, v) for v in values]
        if any(v not in ("asc", "desc") for v in out):
            raise SweepError(f"scale_direction levels {values}: use asc, desc")
        return out
    if factor == "mode":
        try:
            return [Mode(v) for v in values]
        except ValueError as exc:
            raise SweepError(f"mode levels {values}: use letter, cloze, generate") from exc
    if factor == "language":
        return [None if v in ("local", "none", "default") else v for v in values]
    if factor == "persona":
        for v in values:
            if v not in ("none", "default") and personas.parse_persona(v).style not in personas.styles():
                raise SweepError(
                    f"persona level {v!r}: use none or style:arg, styles {', '.join(personas.styles())}"
                )
        return [None if v in ("none", "default") else v for v in values]
    if factor == "system":
        for v in values:
            if v not in ("none", "default") and v not in render.SYSTEM_PROMPTS:
                raise SweepError(f"system level {v!r}: use none or one of {', '.join(render.SYSTEM_PROMPTS)}")
        return [None if v in ("none", "default") else v for v in values]
    if factor == "few_shot":
        if not all(v.isdigit() for v in values):
            raise SweepError(f"few_shot levels {values}: use non-negative integers")
        return [int(v) for v in values]
    if factor == "judge_template":
        from culturelens.judging import WORDINGS

        for v in values:
            if v not in WORDINGS and v not in ("none", "default"):
                raise SweepError(f"judge_template level {v!r}: use {', '.join(WORDINGS)}")
        return [None if v in ("none", "default") else v for v in values]
    raise SweepError(f"unknown factor {factor!r}; factors: {', '.join(FACTORS)}")


def parse_vary(vary: Sequence[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for token in vary:
        for part in token.split():
            factor, sep, spec = part.partition("=")
            if not sep or not spec:
                raise SweepError(f"--vary {part!r}: expected FACTOR=LEVEL[,LEVEL...]")
            if factor not in FACTORS:
                raise SweepError(f"unknown factor {factor!r}; factors: {', '.join(FACTORS)}")
            if any(f == factor for f, _ in pairs):
                raise SweepError(f"factor {factor!r} is given twice; list its levels once, comma-separated")
            pairs.append((factor, spec))
    return pairs


def expand(
    vary: Sequence[str],
    base: Variant | None = None,
    n_options: int = 4,
    kinds: Sequence[ItemKind] | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> list[Variant]:
    """The design's variants in design order, the base (default) variant first when it is part of it.

    ``rotate`` covers ``n_options`` rotations (``rotate:K`` is taken modulo each item's option count, so
    items with fewer options repeat orders, which the cache makes free). ``sample`` draws a seeded
    subset of the full design; the base variant is always kept when it belongs to the design, so the
    headline number of a sampled sweep is still the default presentation's.
    """
    base = base or Variant()
    pairs = parse_vary(vary)
    if not pairs:
        return [base]
    if n_options < 1:
        raise SweepError(f"n_options must be positive, got {n_options}")
    factors = [f for f, _ in pairs]
    levels = [_levels(f, s, n_options, kinds) for f, s in pairs]
    seen: dict[str, Variant] = {}
    for combo in itertools.product(*levels):
        data = {**base.model_dump(), **dict(zip(factors, combo, strict=True))}
        try:
            v = Variant.model_validate(data)
        except ValidationError as exc:
            raise SweepError(
                f"invalid variant {dict(zip(factors, combo, strict=True))}: {exc.errors()[0]['msg']}"
            ) from exc
        seen.setdefault(v.id, v)
    variants = list(seen.values())
    if sample is not None:
        if sample < 1:
            raise SweepError(f"--sample must be at least 1, got {sample}")
        if sample < len(variants):
            has_base = base.id in seen
            others = [i for i, v in enumerate(variants) if v.id != base.id]
            rng = random.Random(seed)
            keep = set(rng.sample(others, sample - 1 if has_base else sample))
            variants = [v for i, v in enumerate(variants) if i in keep or v.id == base.id]
    variants.sort(key=lambda v: v.id != base.id)  # stable: design order otherwise
    return variants


def swept_factors(variants: Sequence[Variant]) -> list[str]:
    """Variant fields that take more than one value across ``variants`` (in :data:`FACTORS` order)."""
    return [f for f in FACTORS if len({str(getattr(v, f)) for v in variants}) > 1]


def factor_values(variant: Variant, factors: Sequence[str]) -> dict[str, str]:
    """The level of each swept factor in a variant (as text), for effect decompositions."""
    out = {}
    for f in factors:
        v = getattr(variant, f)
        out[f] = "none" if v is None else (v.value if isinstance(v, Mode) else str(v))
    return out
