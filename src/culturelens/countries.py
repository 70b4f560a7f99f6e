"""Country normalisation: map the many ways datasets name a country to one `Country`.

Lookups accept canonical names, ISO 3166-1 alpha-2/alpha-3 codes, pycountry's
official and common names, and an alias table covering the names used by
BLEnD, Hofstede, the WVS/IVS entities and GlobalOpinionQA. Matching ignores
case, accents, punctuation, underscores and a leading "the". Languages and
multi-country aggregates (e.g. "Arab countries") are rejected.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from functools import lru_cache

import pycountry
from pydantic import BaseModel, ConfigDict


class Country(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    iso2: str
    iso3: str
    region: str
    subregion: str
    subnational: str | None = None


class UnknownCountryError(ValueError):
    """Raised when a name cannot be mapped to a single country."""


REGIONS: tuple[str, ...] = ("Africa", "Americas", "Asia", "Europe", "Oceania")
ANTARCTICA = "Antarctica"  # region and sub-region of AQ, the only code outside REGIONS

# fmt: off
# UN M49 region -> intermediate sub-region -> ISO alpha-2 codes. Taiwan (not
# listed by M49) is placed in Eastern Asia; Channel Islands in Northern Europe.
_M49: dict[str, dict[str, str]] = {
    "Africa": {
        "Northern Africa": "DZ EG EH LY MA SD TN",
        "Eastern Africa": "BI DJ ER ET IO KE KM MG MU MW MZ RE RW SC SO SS TF TZ UG YT ZM ZW",
        "Middle Africa": "AO CD CF CG CM GA GQ ST TD",
        "Southern Africa": "BW LS NA SZ ZA",
        "Western Africa": "BF BJ CI CV GH GM GN GW LR ML MR NE NG SH SL SN TG",
    },
    "Americas": {
        "Caribbean": "AG AI AW BB BL BQ BS CU CW DM DO GD GP HT JM KN KY LC MF MQ MS PR SX TC TT VC VG VI",
        "Central America": "BZ CR GT HN MX NI PA SV",
        "South America": "AR BO BR BV CL CO EC FK GF GS GY PE PY SR UY VE",
        "Northern America": "BM CA GL PM US",
    },
    "Asia": {
        "Central Asia": "KG KZ TJ TM UZ",
        "Eastern Asia": "CN HK JP KP KR MN MO TW",
        "South-eastern Asia": "BN ID KH LA MM MY PH SG TH TL VN",
        "Southern Asia": "AF BD BT IN IR LK MV NP PK",
        "Western Asia": "AE AM AZ BH CY GE IL IQ JO KW LB OM PS QA SA SY TR YE",
    },
    "Europe": {
        "Eastern Europe": "BG BY CZ HU MD PL RO RU SK UA",
        "Northern Europe": "AX DK EE FI FO GB GG IE IM IS JE LT LV NO SE SJ",
        "Southern Europe": "AD AL BA ES GI GR HR IT ME MK MT PT RS SI SM VA XK",
        "Western Europe": "AT BE CH DE FR LI LU MC NL",
    },
    "Oceania": {
        "Australia and New Zealand": "AU CC CX HM NF NZ",
        "Melanesia": "FJ NC PG SB VU",
        "Micronesia": "FM GU KI MH MP NR PW UM",
        "Polynesia": "AS CK NU PF PN TK TO TV WF WS",
    },
    ANTARCTICA: {ANTARCTICA: "AQ"},
}

# Canonical short names where pycountry's `common_name`/`name` is not the usual English one.
_CANONICAL: dict[str, str] = {
    "BN": "Brunei", "BO": "Bolivia", "CD": "Democratic Republic of the Congo",
    "CG": "Republic of the Congo", "FK": "Falkland Islands", "FM": "Micronesia",
    "GB": "United Kingdom", "IR": "Iran", "KP": "North Korea", "KR": "South Korea",
    "LA": "Laos", "MD": "Moldova", "MF": "Saint Martin", "NL": "Netherlands",
    "PS": "Palestine", "RU": "Russia", "SX": "Sint Maarten", "SY": "Syria",
    "TR": "Turkey", "TW": "Taiwan", "TZ": "Tanzania", "US": "United States",
    "VA": "Vatican City", "VE": "Venezuela", "VG": "British Virgin Islands",
    "VI": "U.S. Virgin Islands", "VN": "Vietnam", "CZ": "Czechia", "MK": "North Macedonia",
    "SZ": "Eswatini", "CV": "Cabo Verde", "CI": "Côte d'Ivoire", "HK": "Hong Kong",
    "MO": "Macao",
}

# Entities without an ISO 3166-1 code: (name, iso2, iso3) using the common user-assigned codes.
_EXTRA: tuple[tuple[str, str, str], ...] = (("Kosovo", "XK", "XKX"),)

# alias -> (alpha-2, subnational label or None). Keys go through `_key`.
_ALIASES: dict[str, tuple[str, str | None]] = {
    # United States / United Kingdom
    "usa": ("US", None), "us": ("US", None), "u.s.": ("US", None), "u.s.a.": ("US", None),
    "united states of america": ("US", None), "america": ("US", None),
    "uk": ("GB", None), "u.k.": ("GB", None), "britain": ("GB", None), "great britain": ("GB", None),
    "england": ("GB", "England"), "scotland": ("GB", "Scotland"), "wales": ("GB", "Wales"),
    "northern ireland": ("GB", "Northern Ireland"),
    # Koreas, Chinas
    "korea": ("KR", None), "s. korea": ("KR", None), "korea south": ("KR", None),
    "south korea": ("KR", None), "republic of korea": ("KR", None), "rok": ("KR", None),
    "n. korea": ("KP", None), "korea north": ("KP", None), "dprk": ("KP", None),
    "prc": ("CN", None), "mainland china": ("CN", None), "people's republic of china": ("CN", None),
    "taiwan roc": ("TW", None), "chinese taipei": ("TW", None),
    "hong kong sar": ("HK", None), "macao sar": ("MO", None), "macau": ("MO", None),
    # Europe
    "holland": ("NL", None), "the netherlands": ("NL", None), "czech republic": ("CZ", None),
    "czech rep": ("CZ", None), "slovak rep": ("SK", None), "slovak republic": ("SK", None),
    "turkey": ("TR", None), "turkiye": ("TR", None), "russia": ("RU", None),
    "macedonia": ("MK", None), "macedonia rep": ("MK", None), "republic of macedonia": ("MK", None),
    "republic of north macedonia": ("MK", None), "fyrom": ("MK", None),
    "bosnia": ("BA", None), "bosnia herzegovina": ("BA", None), "bosnia-herzegovina": ("BA", None),
    "moldova rep of": ("MD", None), "montenegro rep of": ("ME", None),
    "vatican": ("VA", None), "holy see": ("VA", None),
    # Sub-national rows (Hofstede, WVS)
    "belgium french": ("BE", "Belgium French"), "belgium netherl": ("BE", "Belgium Netherl"),
    "belgium flemish": ("BE", "Belgium Netherl"), "belgium dutch": ("BE", "Belgium Netherl"),
    "canada french": ("CA", "Canada French"), "quebec": ("CA", "Canada French"),
    "germany east": ("DE", "Germany East"), "east germany": ("DE", "Germany East"),
    "germany west": ("DE", "Germany West"), "west germany": ("DE", "Germany West"),
    "switzerland french": ("CH", "Switzerland French"),
    "switzerland german": ("CH", "Switzerland German"),
    "south africa white": ("ZA", "South Africa white"),
    "northern cyprus": ("CY", "Northern Cyprus"),
    # BLEnD sub-national regions
    "assam": ("IN", "Assam"), "west java": ("ID", "West Java"),
    "northern nigeria": ("NG", "Northern Nigeria"),
    # Asia / Middle East
    "iran": ("IR", None), "persia": ("IR", None), "syria": ("SY", None), "laos": ("LA", None),
    "vietnam": ("VN", None), "brunei": ("BN", None), "burma": ("MM", None),
    "burma (myanmar)": ("MM", None), "east timor": ("TL", None), "kyrgyz rep": ("KG", None),
    "uae": ("AE", None), "palestine": ("PS", None), "palestinian territories": ("PS", None),
    "palestinian territory": ("PS", None), "occupied palestinian territory": ("PS", None),
    "west bank and gaza": ("PS", None), "state of palestine": ("PS", None),
    # Africa
    "ivory coast": ("CI", None), "cote d'ivoire": ("CI", None), "cape verde": ("CV", None),
    "swaziland": ("SZ", None), "burkina": ("BF", None), "tanzania": ("TZ", None),
    "dr congo": ("CD", None), "drc": ("CD", None), "congo-kinshasa": ("CD", None),
    "democratic republic of the congo": ("CD", None), "congo democratic republic of": ("CD", None),
    "congo dem rep": ("CD", None), "republic of the congo": ("CG", None),
    "congo-brazzaville": ("CG", None), "congo rep": ("CG", None), "the gambia": ("GM", None),
    # Americas
    "bolivia": ("BO", None), "venezuela": ("VE", None), "dominican rep": ("DO", None),
    "trinidad": ("TT", None), "st. lucia": ("LC", None), "st. kitts and nevis": ("KN", None),
    "st. vincent and the grenadines": ("VC", None), "the bahamas": ("BS", None),
    "falkland islands": ("FK", None), "micronesia": ("FM", None),
    "kosovo": ("XK", None),
}

# Names that denote several countries (or defunct unions): rejected with a clear message.
_AGGREGATES: frozenset[str] = frozenset({
    "africa east", "africa west", "east africa", "west africa", "arab countries", "arab world",
    "latin america", "latin america and the caribbean", "europe", "asia", "africa", "oceania",
    "americas", "middle east", "scandinavia", "serbia and montenegro", "yugoslavia",
    "soviet union", "ussr", "czechoslovakia", "world",
})

# Hofstede's own 3-letter codes (2015-08-16 table) -> the row's label.
# They are not ISO codes (CHI = China, MAC = Macedonia, BEN = Belgium Netherl), hence a separate lookup.
_HOFSTEDE: dict[str, str] = {
    "AFE": "Africa East", "AFW": "Africa West", "ALB": "Albania", "ALG": "Algeria", "AND": "Andorra",
    "ARA": "Arab countries", "ARG": "Argentina", "ARM": "Armenia", "AUL": "Australia", "AUT": "Austria",
    "AZE": "Azerbaijan", "BAN": "Bangladesh", "BLR": "Belarus", "BEL": "Belgium", "BEF": "Belgium French",
    "BEN": "Belgium Netherl", "BOS": "Bosnia", "BRA": "Brazil", "BUL": "Bulgaria", "BUF": "Burkina Faso",
    "CAN": "Canada", "CAF": "Canada French", "CHL": "Chile", "CHI": "China", "COL": "Colombia",
    "COS": "Costa Rica", "CRO": "Croatia", "CYP": "Cyprus", "CZE": "Czech Rep", "DEN": "Denmark",
    "ECA": "Ecuador", "EGY": "Egypt", "ETH": "Ethiopia", "SAL": "El Salvador", "EST": "Estonia",
    "FIN": "Finland", "FRA": "France", "GEO": "Georgia", "GER": "Germany", "GEE": "Germany East",
    "GHA": "Ghana", "GBR": "Great Britain", "GRE": "Greece", "GUA": "Guatemala", "HOK": "Hong Kong",
    "HUN": "Hungary", "ICE": "Iceland", "IND": "India", "IDO": "Indonesia", "IRA": "Iran", "IRQ": "Iraq",
    "IRE": "Ireland", "ISR": "Israel", "ITA": "Italy", "JAM": "Jamaica", "JPN": "Japan", "JOR": "Jordan",
    "KOR": "Korea South", "KYR": "Kyrgyz Rep", "LAT": "Latvia", "LIT": "Lithuania", "LUX": "Luxembourg",
    "MAC": "Macedonia Rep", "MAL": "Malaysia", "MLI": "Mali", "MLT": "Malta", "MEX": "Mexico",
    "MOL": "Moldova", "MNG": "Montenegro", "MOR": "Morocco", "NET": "Netherlands", "NZL": "New Zealand",
    "NIG": "Nigeria", "NOR": "Norway", "PAK": "Pakistan", "PAN": "Panama", "PER": "Peru",
    "PHI": "Philippines", "POL": "Poland", "POR": "Portugal", "PUE": "Puerto Rico", "ROM": "Romania",
    "RUS": "Russia", "RWA": "Rwanda", "SAU": "Saudi Arabia", "SER": "Serbia", "SIN": "Singapore",
    "SLK": "Slovak Rep", "SLV": "Slovenia", "SAF": "South Africa", "SAW": "South Africa white",
    "SPA": "Spain", "SUR": "Suriname", "SWE": "Sweden", "SWI": "Switzerland", "SWF": "Switzerland French",
    "SWG": "Switzerland German", "TAI": "Taiwan", "TAN": "Tanzania", "THA": "Thailand",
    "TRI": "Trinidad and Tobago", "TUR": "Turkey", "USA": "U.S.A.", "UGA": "Uganda", "UKR": "Ukraine",
    "URU": "Uruguay", "VEN": "Venezuela", "VIE": "Vietnam", "ZAM": "Zambia", "ZIM": "Zimbabwe",
}
# fmt: on

_REGION_OF: dict[str, tuple[str, str]] = {
    code: (region, sub)
    for region, subs in _M49.items()
    for sub, codes in subs.items()
    for code in codes.split()
}

SUBREGIONS: tuple[str, ...] = tuple(sub for region in REGIONS for sub in _M49[region])


def _key(text: str) -> str:
    """Matching key: no accents, casefolded, '&' -> 'and', punctuation dropped, 'rep'/'st' expanded."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("&", " and ").replace(".", "").replace("'", "").replace("\u2019", "")
    words = re.sub(r"[^0-9a-z]+", " ", text).split()
    if words and words[0] == "the" and len(words) > 1:
        words = words[1:]
    expand = {"rep": "republic", "st": "saint"}
    return " ".join(expand.get(w, w) for w in words)


def _build() -> tuple[dict[str, Country], dict[str, Country], dict[str, str]]:
    """Return (countries by alpha-2, lookup index by key, canonical label by key for suggestions)."""
    by_iso2: dict[str, Country] = {}
    for c in pycountry.countries:
        name = _CANONICAL.get(c.alpha_2) or getattr(c, "common_name", None) or c.name
        region, sub = _REGION_OF[c.alpha_2]
        by_iso2[c.alpha_2] = Country(name=name, iso2=c.alpha_2, iso3=c.alpha_3, region=region, subregion=sub)
    extras: dict[str, Country] = {}
    for name, iso2, iso3 in _EXTRA:
        region, sub = _REGION_OF[iso2]
        extras[iso2] = Country(name=name, iso2=iso2, iso3=iso3, region=region, subregion=sub)

    index: dict[str, Country] = {}
    display: dict[str, str] = {}

    def add(label: str, country: Country) -> None:
        key = _key(label)
        if key and key not in index:
            index[key] = country
            display[key] = country.name

    for c in pycountry.countries:
        country = by_iso2[c.alpha_2]
        add(country.name, country)
        for attr in ("name", "official_name", "common_name"):
            if getattr(c, attr, None):
                add(getattr(c, attr), country)
    everything = {**by_iso2, **extras}
    for alias, (iso2, subnational) in _ALIASES.items():
        base = everything[iso2]
        country = base.model_copy(update={"subnational": subnational}) if subnational else base
        index[_key(alias)] = country  # aliases win over pycountry names
        display[_key(alias)] = country.subnational or country.name
    for extra in extras.values():
        add(extra.name, extra)
    return by_iso2, index, display


_BY_ISO2, _INDEX, _DISPLAY = _build()
_BY_ISO3: dict[str, Country] = {c.iso3: c for c in _BY_ISO2.values()}


@lru_cache(maxsize=4096)
def _lookup(name: str) -> Country | None:
    raw = name.strip()
    key = _key(raw)
    if key in _INDEX:
        return _INDEX[key]
    code = raw.upper()
    if len(code) == 2 and code in _BY_ISO2:
        return _BY_ISO2[code]
    if len(code) == 3 and code in _BY_ISO3:
        return _BY_ISO3[code]
    return None


def normalize_country(name: str) -> Country:
    """Map a country name, alias or ISO code to a `Country`; raise `UnknownCountryError` if none fits."""
    if not isinstance(name, str):
        raise UnknownCountryError(f"Country name must be a string, got {type(name).__name__}: {name!r}")
    country = _lookup(name)
    if country is not None:
        return country
    key = _key(name)
    if key in _AGGREGATES:
        raise UnknownCountryError(f"{name!r} is a multi-country aggregate, not a single country")
    matches = difflib.get_close_matches(key, list(_DISPLAY), n=3, cutoff=0.75)
    hint = f"; did you mean: {', '.join(dict.fromkeys(_DISPLAY[m] for m in matches))}?" if matches else ""
    raise UnknownCountryError(f"Unknown country {name!r}{hint}")


def try_normalize_country(name: str) -> Country | None:
    """Like `normalize_country` but return None instead of raising."""
    return _lookup(name) if isinstance(name, str) else None


def is_aggregate(name: str) -> bool:
    """True for names of multi-country groups such as "Arab countries" or "Africa East"."""
    return _key(name) in _AGGREGATES


def hofstede_code(ctr: str) -> Country | None:
    """Map a Hofstede `ctr` code (e.g. "CHI", "KOR") to a Country; None for aggregate rows.

    Raises `UnknownCountryError` for codes that are not in Hofstede's table.
    """
    label = _HOFSTEDE.get(ctr.strip().upper())
    if label is None:
        raise UnknownCountryError(f"Unknown Hofstede country code {ctr!r}")
    return try_normalize_country(label)


def all_countries() -> list[Country]:
    """Every ISO 3166-1 country (no sub-national entries), sorted by name."""
    return sorted(_BY_ISO2.values(), key=lambda c: c.name)
