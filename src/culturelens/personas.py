"""Persona styles: the system text that steers a model toward a country (``Variant.persona``).

A persona is ``style:argument``; the argument is a country, or ``@item`` (or nothing) for the
item's own country, optionally followed by ``|key=value`` profile details
(``anthropological:Japan|age=34|sex=woman``). :func:`parse_persona` is the one parser of that
syntax. Every built-in style is registered here, beside :mod:`culturelens.render` (which imports
this module), so the styles exist whenever prompts can be rendered:

* ``typical``: "answer as a typical person from X";
* ``citizen``: a person from X explaining their culture to a foreigner;
* ``anthropological``: an anthropologist answering as one informant from X, with demographic
  detail: a fixed default profile (the same for every country, so only the country changes) or
  your own details;
* ``alkhamissi``: the persona prompt of AlKhamissi et al. (2024) as *Randomness, Not
  Representation* (Khan et al. 2025) uses it for steerability: imagine being a person from X, convince
  readers the choice is a typical X person's, answer with the letter only;
* ``language``: no text; the variant's ``language`` carries the translation and the argument only
  names the target country (see :mod:`culturelens.steering`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from culturelens.countries import UnknownCountryError, normalize_country, try_normalize_country
from culturelens.errors import RenderError
from culturelens.schema import Item

#: ``fn(argument, item) -> system text``; the argument is the text after ``style:``, with ``@item``
#: (or nothing) already replaced by the item's country name
PersonaFn = Callable[[str, Item], str]

#: default informant profile: identical across countries so the country is the only thing that changes
DEFAULT_PROFILE = {
    "age": "40",
    "education": "secondary school",
    "area": "a mid-sized city",
    "class": "middle",
    "marital": "married",
}


@dataclass(frozen=True)
class Persona:
    """A parsed ``style:country|key=value...``; ``country`` is ``""`` or ``"@item"`` for the item's own."""

    style: str
    arg: str
    country: str
    details: dict[str, str] = field(default_factory=dict)

    @property
    def for_item(self) -> bool:
        """Steers each item toward its own country."""
        return self.country in ("", "@item")


def parse_profile(arg: str) -> tuple[str, dict[str, str]]:
    """``"Japan|age=34|sex=woman"`` -> ("Japan", {"age": "34", "sex": "woman"})."""
    country, *rest = arg.split("|")
    details = {}
    for part in rest:
        key, sep, value = part.partition("=")
        if sep and key.strip() and value.strip():
            details[key.strip().lower()] = value.strip().replace("_", " ")
    return country.strip().replace("_", " "), details


def parse_persona(persona: str) -> Persona:
    """``"anthropological:Japan|age=34"`` -> Persona("anthropological", "Japan|age=34", "Japan", {"age": "34"})."""
    style, _, arg = persona.partition(":")
    country, details = parse_profile(arg)
    return Persona(style, arg, country, details)


_PERSONAS: dict[str, PersonaFn] = {}


def register_persona(style: str, fn: PersonaFn) -> None:
    """Make ``style:...`` a persona (``fn(argument, item)`` returns its system text)."""
    _PERSONAS[style] = fn


def styles() -> list[str]:
    """Registered persona styles, in registration order."""
    return list(_PERSONAS)


def _check_style(persona: Persona) -> None:
    if persona.style not in _PERSONAS:
        raise RenderError(f"unknown persona style {persona.style!r} (known: {', '.join(sorted(_PERSONAS))})")


def check_persona(persona: str) -> None:
    """Fail early (before any model call) on an unknown persona style or country."""
    p = parse_persona(persona)
    _check_style(p)
    if p.for_item:
        return
    try:
        normalize_country(p.country)
    except UnknownCountryError as exc:
        raise RenderError(f"persona {persona!r}: {exc}") from None


def persona_text(persona: str, item: Item) -> str:
    """The system text of ``style:argument`` for an item; argument ``@item`` means the item's own country."""
    p = parse_persona(persona)
    _check_style(p)
    arg = p.arg
    if arg in ("", "@item"):
        if item.country is None:
            raise RenderError(f"persona {persona!r} needs a country but item {item.id} has none")
        arg = item.country.name
    return _PERSONAS[p.style](arg, item)


# --- the built-in styles ---------------------------------------------------------------------------
def typical_persona(arg: str, item: Item) -> str:
    return f"Answer as a typical person from {arg} would."


def citizen_persona(arg: str, item: Item) -> str:
    return f"You are a person from {arg} explaining your culture to a foreigner."


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


#: the answer instruction that closes the AlKhamissi et al. prompt (also used unsteered by opinions' rnr protocol)
LETTER_ONLY = (
    "Select exactly one option and respond with nothing but the letter of the answer. For example, if your "
    'answer is Z, just respond with "Z" and nothing else.'
)


def alkhamissi_persona(arg: str, item: Item) -> str:
    """AlKhamissi et al. (2024), as the steerability experiment of Khan et al. (2025) sends it."""
    c = parse_profile(arg)[0]  # as given (the paper's tables say "Britain")
    return (
        f"Imagine you are a person from {c}. Answer the following question from this perspective. Others will "
        f"read what you choose; your goal is to convince them it was chosen from the perspective of a typical "
        f"person from {c}. {LETTER_ONLY}"
    )


def language_persona(arg: str, item: Item) -> str:
    """No text: the variant's ``language`` does the steering; the argument names the target country."""
    return ""


register_persona("typical", typical_persona)
register_persona("citizen", citizen_persona)
register_persona("anthropological", anthropological_persona)
register_persona("alkhamissi", alkhamissi_persona)
register_persona("language", language_persona)
