"""Tests for culturelens.countries."""

from __future__ import annotations

import csv
from pathlib import Path

import pycountry
import pytest

from culturelens.countries import (
    REGIONS,
    SUBREGIONS,
    Country,
    UnknownCountryError,
    all_countries,
    hofstede_code,
    is_aggregate,
    normalize_country,
    try_normalize_country,
)

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
HOFSTEDE_CSV = DATASETS / "hofstede" / "6-dimensions-for-website-2015-08-16.csv"
WVS_CSV = DATASETS / "wvs_country_level_ivs" / "ddf--entities--geo--country.csv"
BLEND_DIR = DATASETS / "blend" / "data" / "annotations"
GOQA_DIR = DATASETS / "randomness_not_representation" / "steerability" / "data"
WVB_CONTINENTS = (
    DATASETS
    / "worldvaluesbench"
    / "dataset_construction"
    / "probe_set_construction"
    / "country2continent.csv"
)

HOFSTEDE_AGGREGATES = {"Africa East", "Africa West", "Arab countries"}

BLEND = {
    "Algeria": ("DZ", None), "Assam": ("IN", "Assam"), "Azerbaijan": ("AZ", None), "China": ("CN", None),
    "Ethiopia": ("ET", None), "Greece": ("GR", None), "Indonesia": ("ID", None), "Iran": ("IR", None),
    "Mexico": ("MX", None), "North Korea": ("KP", None), "Northern Nigeria": ("NG", "Northern Nigeria"),
    "South Korea": ("KR", None), "Spain": ("ES", None), "UK": ("GB", None), "US": ("US", None),
    "West Java": ("ID", "West Java"),
}  # fmt: skip


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"dataset file not present: {path}")
    return path


@pytest.mark.parametrize(("name", "expected"), BLEND.items())
def test_blend_regions(name: str, expected: tuple[str, str | None]) -> None:
    c = normalize_country(name)
    assert (c.iso2, c.subnational) == expected
    assert normalize_country(name.replace(" ", "_")) == c  # file-name form


def test_blend_files_all_known() -> None:
    names = {
        p.name.removesuffix("_data.json").replace("_", " ") for p in _need(BLEND_DIR).glob("*_data.json")
    }
    assert names == set(BLEND)


def test_hofstede_rows() -> None:
    with _need(HOFSTEDE_CSV).open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    assert len(rows) == 110
    for row in rows:
        name, code = row["country"], row["ctr"]
        if name in HOFSTEDE_AGGREGATES:
            assert is_aggregate(name)
            with pytest.raises(UnknownCountryError, match="aggregate"):
                normalize_country(name)
            assert hofstede_code(code) is None
        else:
            c = normalize_country(name)
            assert hofstede_code(code) == c, (code, name)


@pytest.mark.parametrize(
    ("code", "iso2", "subnational"),
    [
        ("CHI", "CN", None), ("KOR", "KR", None), ("MAC", "MK", None), ("MNG", "ME", None),
        ("BEN", "BE", "Belgium Netherl"), ("BEF", "BE", "Belgium French"), ("CAF", "CA", "Canada French"),
        ("GEE", "DE", "Germany East"), ("SAW", "ZA", "South Africa white"), ("IRA", "IR", None),
        ("USA", "US", None), ("GBR", "GB", None), ("HOK", "HK", None), ("TAI", "TW", None),
        ("SWG", "CH", "Switzerland German"), ("kor", "KR", None),
    ],
)  # fmt: skip
def test_hofstede_codes(code: str, iso2: str, subnational: str | None) -> None:
    c = hofstede_code(code)
    assert c is not None
    assert (c.iso2, c.subnational) == (iso2, subnational)


def test_hofstede_unknown_code() -> None:
    assert hofstede_code("ARA") is None
    with pytest.raises(UnknownCountryError):
        hofstede_code("XYZ")


def test_wvs_entities() -> None:
    with _need(WVS_CSV).open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 118
    for row in rows:
        by_slug = normalize_country(row["country"])
        assert normalize_country(row["name"]) == by_slug, row


@pytest.mark.parametrize(
    ("slug", "iso2", "subnational"),
    [
        ("united_states", "US", None), ("great_britain", "GB", None), ("taiwan_roc", "TW", None),
        ("hong_kong_sar", "HK", None), ("moldova_rep_of", "MD", None), ("slovak_republic", "SK", None),
        ("bosnia_herzegovina", "BA", None), ("northern_ireland", "GB", "Northern Ireland"),
        ("germany_west", "DE", "Germany West"), ("northern_cyprus", "CY", "Northern Cyprus"),
        ("kosovo", "XK", None), ("macedonia", "MK", None), ("palestine", "PS", None),
    ],
)  # fmt: skip
def test_wvs_slugs(slug: str, iso2: str, subnational: str | None) -> None:
    c = normalize_country(slug)
    assert (c.iso2, c.subnational) == (iso2, subnational)


def test_global_opinion_files() -> None:
    names: set[str] = set()
    for path in sorted(_need(GOQA_DIR).glob("*.csv")):
        with path.open(encoding="utf-8") as fh:
            reader = csv.reader(fh)
            next(reader)
            names |= {row[0] for row in reader if row}
    assert names
    for name in names:
        normalize_country(name)


def test_worldvaluesbench_countries() -> None:
    with _need(WVB_CONTINENTS).open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            normalize_country(row["Country"])


@pytest.mark.parametrize(
    ("name", "iso2", "canonical"),
    [
        ("USA", "US", "United States"), ("U.S.A.", "US", "United States"), ("us", "US", "United States"),
        ("United States of America", "US", "United States"), ("America", "US", "United States"),
        ("Britain", "GB", "United Kingdom"), ("Great Britain", "GB", "United Kingdom"),
        ("u.k.", "GB", "United Kingdom"), ("Russia", "RU", "Russia"),
        ("Russian Federation", "RU", "Russia"), ("S. Korea", "KR", "South Korea"),
        ("Korea", "KR", "South Korea"), ("Korea, Republic of", "KR", "South Korea"),
        ("Czech Rep.", "CZ", "Czechia"), ("Czech Republic", "CZ", "Czechia"),
        ("Palestinian territories", "PS", "Palestine"), ("Holland", "NL", "Netherlands"),
        ("Taiwan", "TW", "Taiwan"), ("Hong Kong", "HK", "Hong Kong"), ("Ivory Coast", "CI", "Côte d'Ivoire"),
        ("Cote d'Ivoire", "CI", "Côte d'Ivoire"), ("Czechia", "CZ", "Czechia"), ("Turkey", "TR", "Turkey"),
        ("Türkiye", "TR", "Turkey"), ("Vietnam", "VN", "Vietnam"), ("Viet Nam", "VN", "Vietnam"),
        ("Bolivia", "BO", "Bolivia"), ("Venezuela", "VE", "Venezuela"), ("Tanzania", "TZ", "Tanzania"),
        ("Syria", "SY", "Syria"), ("Laos", "LA", "Laos"), ("Moldova", "MD", "Moldova"),
        ("Macedonia", "MK", "North Macedonia"), ("North Macedonia", "MK", "North Macedonia"),
        ("Slovak Rep", "SK", "Slovakia"), ("Dominican Rep", "DO", "Dominican Republic"),
        ("Kyrgyz Rep", "KG", "Kyrgyzstan"), ("Trinidad and Tobago", "TT", "Trinidad and Tobago"),
        ("Trinidad & Tobago", "TT", "Trinidad and Tobago"), ("Bosnia", "BA", "Bosnia and Herzegovina"),
        ("DR Congo", "CD", "Democratic Republic of the Congo"), ("Eswatini", "SZ", "Eswatini"),
        ("Swaziland", "SZ", "Eswatini"), ("Cape Verde", "CV", "Cabo Verde"), ("Philippines", "PH", "Philippines"),
        ("Iran", "IR", "Iran"), ("Iran, Islamic Republic of", "IR", "Iran"), ("North Korea", "KP", "North Korea"),
        ("the Netherlands", "NL", "Netherlands"), ("  south   KOREA ", "KR", "South Korea"),
        ("DEU", "DE", "Germany"), ("fr", "FR", "France"), ("Burma", "MM", "Myanmar"), ("UAE", "AE", "United Arab Emirates"),
    ],
)  # fmt: skip
def test_aliases(name: str, iso2: str, canonical: str) -> None:
    c = normalize_country(name)
    assert (c.iso2, c.name, c.subnational) == (iso2, canonical, None)


@pytest.mark.parametrize(
    ("name", "iso2", "subnational"),
    [
        ("England", "GB", "England"), ("Scotland", "GB", "Scotland"), ("Canada French", "CA", "Canada French"),
        ("Belgium French", "BE", "Belgium French"), ("Germany East", "DE", "Germany East"),
    ],
)  # fmt: skip
def test_subnational(name: str, iso2: str, subnational: str) -> None:
    c = normalize_country(name)
    parent = normalize_country(iso2)
    assert (c.iso2, c.subnational) == (iso2, subnational)
    assert (c.name, c.iso3, c.region, c.subregion) == (
        parent.name,
        parent.iso3,
        parent.region,
        parent.subregion,
    )
    assert parent.subnational is None


def test_country_fields_and_frozen() -> None:
    c = normalize_country("United States")
    assert c == Country(
        name="United States", iso2="US", iso3="USA", region="Americas", subregion="Northern America"
    )
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen models
        c.name = "x"  # type: ignore[misc]
    assert hash(c) == hash(normalize_country("usa"))


@pytest.mark.parametrize(
    ("name", "region", "subregion"),
    [
        ("Japan", "Asia", "Eastern Asia"), ("Nigeria", "Africa", "Western Africa"),
        ("Kenya", "Africa", "Eastern Africa"), ("Egypt", "Africa", "Northern Africa"),
        ("Brazil", "Americas", "South America"), ("Mexico", "Americas", "Central America"),
        ("Jamaica", "Americas", "Caribbean"), ("Canada", "Americas", "Northern America"),
        ("Indonesia", "Asia", "South-eastern Asia"), ("India", "Asia", "Southern Asia"),
        ("Turkey", "Asia", "Western Asia"), ("Kazakhstan", "Asia", "Central Asia"),
        ("Russia", "Europe", "Eastern Europe"), ("Sweden", "Europe", "Northern Europe"),
        ("Spain", "Europe", "Southern Europe"), ("Germany", "Europe", "Western Europe"),
        ("Australia", "Oceania", "Australia and New Zealand"), ("Fiji", "Oceania", "Melanesia"),
        ("Guam", "Oceania", "Micronesia"), ("Samoa", "Oceania", "Polynesia"),
        ("Cameroon", "Africa", "Middle Africa"), ("South Africa", "Africa", "Southern Africa"),
    ],
)  # fmt: skip
def test_m49_sample(name: str, region: str, subregion: str) -> None:
    c = normalize_country(name)
    assert (c.region, c.subregion) == (region, subregion)


def test_region_table_covers_pycountry() -> None:
    countries = all_countries()
    assert len(countries) == len(pycountry.countries)
    assert {c.iso2 for c in countries} == {c.alpha_2 for c in pycountry.countries}
    for c in countries:
        if c.iso2 == "AQ":
            assert (c.region, c.subregion) == ("Antarctica", "Antarctica")
        else:
            assert c.region in REGIONS
            assert c.subregion in SUBREGIONS
        assert c.subnational is None
    assert len({c.name for c in countries}) == len(countries)
    assert REGIONS == ("Africa", "Americas", "Asia", "Europe", "Oceania")


def test_every_country_round_trips() -> None:
    for c in all_countries():
        assert normalize_country(c.name) == c
        assert normalize_country(c.iso2) == c
        assert normalize_country(c.iso3.lower()) == c
    for pc in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            if getattr(pc, attr, None):
                assert normalize_country(getattr(pc, attr)).iso2 == pc.alpha_2, (pc, attr)


def test_unknown_suggests() -> None:
    with pytest.raises(UnknownCountryError, match=r"'Frnace'.*France"):
        normalize_country("Frnace")
    with pytest.raises(UnknownCountryError, match="Germany"):
        normalize_country("Germny")
    with pytest.raises(UnknownCountryError, match="Atlantis"):
        normalize_country("Atlantis")
    assert issubclass(UnknownCountryError, ValueError)


@pytest.mark.parametrize(
    "name",
    [
        "Filipino",
        "English",
        "Korean",
        "Hausa",
        "Persian",
        "",
        "   ",
        "Latin America",
        "Arab countries",
        "Europe",
        "XX",
    ],
)
def test_rejected(name: str) -> None:
    assert try_normalize_country(name) is None
    with pytest.raises(UnknownCountryError):
        normalize_country(name)


def test_try_normalize() -> None:
    assert try_normalize_country("Germany") == normalize_country("DE")
    assert try_normalize_country("Nowhere") is None
    assert try_normalize_country(None) is None  # type: ignore[arg-type]
