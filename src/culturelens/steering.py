"""Steering a model toward a country: the steering sweep over persona styles.

Styles (``Variant.persona = "style:Country"``; ``@item`` = the item's own country; the persona
texts live in :mod:`culturelens.personas`):

* none: unsteered;
* ``typical``: "answer as a typical person from X";
* ``anthropological``: an anthropologist answering as one informant from X, with demographic
  detail. A fixed default profile (the same for every country, so only the country changes), or
  your own: ``anthropological:Japan|age=34|sex=woman|education=university degree|area=city|class=middle``;
* ``language``: ask in X's main language. The variant's ``language`` carries the translation; the
  persona only names the target country and adds no text. Used only where every item has a
  translation into that language.

:func:`steering_variants` builds the design (presentation variants for debiasing x steering
conditions) and :func:`steering_config` the run; :func:`culturelens.api.steer` runs and analyses it:
the alignment analysis's ``steering`` section has gain and specificity per style and target country.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from culturelens.countries import normalize_country
from culturelens.personas import (  # noqa: F401 - re-exported: the persona texts moved to personas
    DEFAULT_PROFILE,
    anthropological_persona,
    language_persona,
    parse_profile,
)
from culturelens.schema import Item, Variant

STYLES = ("typical", "anthropological", "alkhamissi", "language")

#: main language of a country, for the ``language`` style (BCP-47 primary subtags)
COUNTRY_LANGUAGE = {
    "Argentina": "es",
    "Australia": "en",
    "Austria": "de",
    "Bangladesh": "bn",
    "Belgium": "nl",
    "Brazil": "pt",
    "Canada": "en",
    "Chile": "es",
    "China": "zh",
    "Colombia": "es",
    "Czechia": "cs",
    "Denmark": "da",
    "Egypt": "ar",
    "Ethiopia": "am",
    "Finland": "fi",
    "France": "fr",
    "Germany": "de",
    "Ghana": "en",
    "Greece": "el",
    "Hong Kong": "zh",
    "Hungary": "hu",
    "India": "hi",
    "Indonesia": "id",
    "Iran": "fa",
    "Iraq": "ar",
    "Israel": "he",
    "Italy": "it",
    "Japan": "ja",
    "Jordan": "ar",
    "Kenya": "sw",
    "Lebanon": "ar",
    "Malaysia": "ms",
    "Mexico": "es",
    "Morocco": "ar",
    "Netherlands": "nl",
    "New Zealand": "en",
    "Nigeria": "en",
    "Norway": "no",
    "Pakistan": "ur",
    "Peru": "es",
    "Philippines": "fil",
    "Poland": "pl",
    "Portugal": "pt",
    "Romania": "ro",
    "Russia": "ru",
    "Saudi Arabia": "ar",
    "Singapore": "en",
    "South Africa": "en",
    "South Korea": "ko",
    "Spain": "es",
    "Sweden": "sv",
    "Switzerland": "de",
    "Taiwan": "zh",
    "Thailand": "th",
    "Tunisia": "ar",
    "Turkey": "tr",
    "Ukraine": "uk",
    "United Kingdom": "en",
    "United States": "en",
    "Venezuela": "es",
    "Vietnam": "vi",
}


def country_language(country: str) -> str | None:
    return COUNTRY_LANGUAGE.get(normalize_country(country).name)


@dataclass
class SteeringDesign:
    variants: list[Variant]
    countries: list[str]
    styles: list[str]
    per_country_items: bool
    skipped: dict[str, str] = field(default_factory=dict)  # "style:country" -> why


def steering_variants(
    countries: Sequence[str],
    styles: Sequence[str] = ("typical",),
    presentation: Sequence[Variant] | None = None,
    per_country_items: bool = False,
    items: Sequence[Item] | None = None,
) -> SteeringDesign:
    """Presentation variants x (unsteered + each style toward each country).

    ``per_country_items``: the task replicates items per country (``vsm``), so one ``style:@item``
    variant steers every copy toward its own country; otherwise one variant per (style, country).
    ``items`` lets the ``language`` style check translations: a country whose language some item
    lacks is skipped (and reported) instead of failing the run.
    """
    unknown = [s for s in styles if s not in STYLES]
    if unknown:
        raise ValueError(f"unknown steering style(s) {unknown} (known: {', '.join(STYLES)})")
    names = [normalize_country(c).name for c in countries]
    pres = list(presentation or [Variant()])
    conditions: list[dict[str, Any]] = [{}]
    skipped: dict[str, str] = {}
    for style in styles:
        if style == "language":
            for c in names:
                lang = COUNTRY_LANGUAGE.get(c)
                if lang is None:
                    skipped[f"language:{c}"] = "no main language known"
                    continue
                if items is not None and not all(
                    lang == it.language or lang in it.translations for it in items
                ):
                    skipped[f"language:{c}"] = f"not every item has a {lang!r} translation"
                    continue
                conditions.append({"persona": f"language:{c}", "language": lang})
        elif per_country_items:
            conditions.append({"persona": f"{style}:@item"})
        else:
            conditions.extend({"persona": f"{style}:{c}"} for c in names)
    variants: list[Variant] = []
    seen = set()
    for cond in conditions:
        for p in pres:
            v = p.model_copy(update=cond)
            if v.id not in seen:
                seen.add(v.id)
                variants.append(v)
    return SteeringDesign(variants, names, list(styles), per_country_items, skipped)


def steering_config(
    task: str,
    countries: Sequence[str],
    styles: Sequence[str] = ("typical",),
    vary: Sequence[str] = ("option_order=identity,reversed",),
    model: str = "default",
    data_dir: str | None = None,
    limit: int | None = None,
    out: str | None = None,
    cache: str | None = None,
    task_options: dict[str, Any] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
) -> tuple[Any, SteeringDesign]:
    """The run config of the steering sweep on one task, and its design (run it with
    :func:`culturelens.api.steer`, which also analyses it like any other run)."""
    from culturelens.runlog import RunConfig
    from culturelens.sweep import expand
    from culturelens.tasks.base import SurveyTask, get_task

    t = get_task(task, data_dir=data_dir, **(task_options or {}))
    per_country = isinstance(t, SurveyTask) and t.per_country_items
    items = t.items(limit=limit, countries=countries if per_country else None)
    design = steering_variants(countries, styles, expand(list(vary)), per_country, items)
    cfg = RunConfig(
        model=model,
        tasks=[task],
        limit=limit,
        countries=design.countries if per_country else None,
        variants=design.variants,
        data_dir=data_dir,
        out=out,
        cache=cache,
        seed=seed,
        n_boot=n_boot,
        task_options={task: task_options or {}},
    )
    return cfg, design
