"""Steering a model toward a country: persona styles and the steering sweep.

Styles (``Variant.persona = "style:Country"``; ``@item`` = the item's own country):

* none: unsteered;
* ``typical``: "answer as a typical person from X" (built into :mod:`culturelens.render`);
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

from culturelens.countries import normalize_country, try_normalize_country
from culturelens.render import register_persona
from culturelens.schema import Item, Variant

STYLES = ("typical", "anthropological", "language")

#: default informant profile: identical across countries so the country is the only thing that changes
DEFAULT_PROFILE = {
    "age": "40",
    "education": "secondary school",
    "area": "a mid-sized city",
    "class": "middle",
    "marital": "married",
}

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


def parse_profile(arg: str) -> tuple[str, dict[str, str]]:
    """``"Japan|age=34|sex=woman"`` -> ("Japan", {"age": "34", "sex": "woman"})."""
    country, *rest = arg.split("|")
    details = {}
    for part in rest:
        key, sep, value = part.partition("=")
        if sep and key.strip() and value.strip():
            details[key.strip().lower()] = value.strip().replace("_", " ")
    return country.strip().replace("_", " "), details


def _country_name(raw: str) -> str:
    c = try_normalize_country(raw)
    return c.name if c else raw


def anthropological_persona(arg: str, item: Item) -> str:
    """An anthropologist answering as one informant from the country, described demographically."""
    country, details = parse_profile(arg)
    if country in ("", "@item") and item.country is not None:
        country = item.country.name
    country = _country_name(country)
    p = {**DEFAULT_PROFILE, **details}
    who = p.get("sex") or "person"
    bits = [f"a {p['age']}-year-old {who}" if p.get("age") else f"a {who}"]
    if p.get("area"):
        bits.append(f"living in {p['area']} in {country}")
    else:
        bits.append(f"living in {country}")
    if p.get("marital"):
        bits.append(f"{p['marital']}")
    if p.get("education"):
        bits.append(f"whose highest education is {p['education']}")
    if p.get("class"):
        bits.append(f"who considers their household {p['class']} class")
    if p.get("religion"):
        bits.append(f"religion: {p['religion']}")
    if p.get("occupation"):
        bits.append(f"working as {p['occupation']}")
    profile = ", ".join(bits)
    return (
        f"You are an anthropologist who has done years of fieldwork in {country}. One of your informants is "
        f"{profile}. Drawing on what you know of {country}'s history, religion, economy, social norms and everyday "
        f"life, and of how people with this background there see things, answer each survey question exactly as "
        f"this informant would, not as yourself."
    )


def language_persona(arg: str, item: Item) -> str:
    """No text: the variant's ``language`` does the steering; the argument names the target country."""
    return ""


register_persona("anthropological", anthropological_persona)
register_persona("language", language_persona)


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
    from culturelens.tasks.base import get_task

    t = get_task(task, data_dir=data_dir, **(task_options or {}))
    per_country = bool(getattr(t, "per_country_items", False))
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
