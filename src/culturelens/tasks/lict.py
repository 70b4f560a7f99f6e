"""Lost in Cultural Translation (Karim et al., 2025): GSM8K with its cultural entities swapped.

The release (``akarim23131/Lost_in_Cultural_Translation``) gives, for 1,100 GSM8K test problems,
``Symbolic_dataset/Batch_*.json`` (the question with its cultural entities replaced by ``{Type}``
placeholders, ``gsm_symbolic``) and ``mapping_rules/Batch_*.json`` (per placeholder, in text order,
the original entity). The paper's six cultural variants are not public, so culturelens builds its
own: per-country entity sets written for this project (``tasks/data/lict_entities.json``: Haiti,
Moldova, Pakistan, Solomon Islands, Somalia and Suriname, the paper's six countries) fill the
placeholders. Gold answers are GSM8K's (``gsm8k/grade_school_math/data/test.jsonl``, problem *n* =
row *n*, the number after ``####``).

Items: per problem, the original GSM8K question (``subset:culture = original``, no country) and one
copy per culture (``country`` = the culture, so the country breakdown and its intervals are the
per-culture accuracies); ``group`` = the problem, so a limit keeps a problem's copies together.

**The swap** (deterministic: a seeded generator per (seed, culture, problem)):

* occurrences of one original entity get one replacement, distinct entities distinct ones
  (as the paper's mapping rules do); a replacement never already occurs in the question;
* person names keep the gender of the pronouns that follow them (he/his/him, she/her), else any;
* currency signs become the country's sign, ``dollars``/``pesos`` its major unit and ``cents``
  its minor unit (every currency here has 100 minor units, like the dollar: checked at load);
* a placeholder keeps its original entity (``metadata.kept`` says why) when its type has no set
  for the country (family members, animals, jobs...), when the entity holds a number (``Widgeteer
  3000``, ``4th of July``, ``quarters``), names a coin with a value (nickel, dime...) or generic
  money, when the problem mixes currencies (an exchange rate) or counts coins (a dime is 10 cents:
  then all its money is kept), when the entity is a country or
  continent (the answer may rest on facts about it: "the number of states in the USA"), when the
  rest of the question still refers to it ("Scottish Highlands" ... "the Scottish unicorns"), when
  a "person name" is a lower-case common word (``robe``), or when the set runs out of distinct
  entries.

**Arithmetic stays valid by construction, checked on every item**: no set entry contains a digit
or a number word (checked when the sets are read), and the sequence of numbers in each culture's
question (digits and number words) must equal the original GSM8K question's. The two problems
whose symbolic template itself changed a number (927, 890 in the release) are left out of every
condition (``extra.excluded``).

**Scoring as the paper**: the model is asked to solve step by step and end with the tag
``"Answer": "final numerical value"``; the first such tag followed by a number (digits, commas,
periods; commas dropped) is the answer, compared exactly with the integer gold (``acc``; "18.00"
equals 18; no tag or no number: invalid and wrong; a minus sign is not read, as in the paper's
rule, so GSM8K's one negative gold is never matched). ``acc_lenient`` (not the paper's) also reads a
signed number after any "answer" and, without one, the reply's last number. The instruction is
culturelens's own wording of the paper's request. ``max_tokens`` defaults to 512 (the paper used
each API's default).

``extra.paired``: per culture, accuracy on the original and on the culture for the same problems,
the difference, the discordant counts and McNemar's test (exact binomial below 25 discordant
pairs), with Holm-adjusted p-values over the cultures; ``extra.swaps``: how many placeholders each
culture swapped or kept, by reason.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field

from culturelens.countries import UnknownCountryError, normalize_country
from culturelens.render import Rendered, View, template
from culturelens.schema import GoldAnswer, Item, ItemKind, Mode, Prompt, Response, Score
from culturelens.stats import holm, mcnemar
from culturelens.tasks.base import (
    DatasetError,
    DataSource,
    Headline,
    Task,
    TaskOptions,
    no_items,
    parse_json,
    read_json,
    read_text,
    register,
)

ORIGINAL = "original"
ENTITIES_FILE = Path(str(resources.files("culturelens.tasks") / "data" / "lict_entities.json"))
GSM8K_FILES = ("gsm8k/grade_school_math/data/test.jsonl", "gsm8k/test.jsonl", "test.jsonl")

# --- numbers: what the swap must never change ------------------------------------------------------
_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
    "hundreds thousand thousands million millions billion dozen dozens half halves twice thrice once "
    "double triple quadruple pair pairs couple quarter quarters third thirds fourth fifth sixth seventh "
    "eighth ninth tenth"
)
NUMBER_WORDS = frozenset(_NUMBER_WORDS.split())
_VULGAR = {"¼": "1/4", "½": "1/2", "¾": "3/4", "⅓": "1/3", "⅔": "2/3", "⅕": "1/5", "⅛": "1/8"}
_NUMERIC = re.compile(r"\d+(?:[.,/]\d+)*|\.\d+|[A-Za-z]+")


def number_tokens(text: str) -> list[str]:
    """The numbers of ``text`` in order: digit groups (``1,000``, ``2.5``, ``3/4``, vulgar fractions
    spelled out) and number words (``four``, ``dozen``, ``half``...), lower-cased."""
    for ch, spelled in _VULGAR.items():
        text = text.replace(ch, spelled)
    out = []
    for tok in _NUMERIC.findall(text):
        if tok[0].isalpha():
            if tok.lower() in NUMBER_WORDS:
                out.append(tok.lower())
        else:
            out.append(tok)
    return out


def holds_number(text: str) -> bool:
    return bool(number_tokens(text))


# --- answer extraction ---------------------------------------------------------------------------------
#: the paper's rule: the first ``"Answer":`` tag, an optional opening quote, then a number that starts
#: with a digit and goes on with digits, commas and periods
_TAGGED = re.compile(r'"Answer":\s*"?([0-9][0-9.,]*)')
_SIGNED = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_ANSWER_WORD = re.compile(r"answer", re.IGNORECASE)


def _as_number(raw: str) -> float | None:
    raw = raw.replace(",", "")
    if raw.endswith("."):
        raw = raw[:-1]
    try:
        return float(raw)
    except ValueError:
        return None


def paper_answer(reply: str) -> float | None:
    """The number the paper's extraction reads from a reply (None: no tag with a number, or a number
    such as ``1.2.3`` that does not parse)."""
    m = _TAGGED.search(reply)
    return _as_number(m.group(1)) if m else None


def lenient_answer(reply: str) -> float | None:
    """culturelens's lenient reading (not the paper's): the first signed number after the last
    "answer" in the reply, else the reply's last number."""
    hits = list(_ANSWER_WORD.finditer(reply))
    if hits:
        m = _SIGNED.search(reply, hits[-1].end())
        if m:
            return _as_number(m.group())
    found = _SIGNED.findall(reply)
    return _as_number(found[-1]) if found else None


def _shown(value: float | None) -> str | None:
    if value is None:
        return None
    return str(int(value)) if value.is_integer() else repr(value)


# --- entity sets ----------------------------------------------------------------------------------------
#: placeholder type (lower-cased, spaces collapsed) -> entity-set category; other types keep their entity
CATEGORIES: dict[str, str] = {
    "person name": "names",
    "person": "names",
    "name": "names",
    "currency sign": "sign",
    "currency sig": "sign",
    "currency": "currency",
    "food items": "food",
    "tfood items": "food",
    "types of pastries/local food/local deserts": "sweets",
    "types of beverages": "drinks",
    "city name": "city",
    "types of commercial establishments/shops/stores": "market",
    "types of commercial establishment/shops/stores": "market",
    "ttypes of commercial establishments/shops/stores": "market",
    "clothing items": "clothing",
    "common type of sport": "sport",
    "holiday": "festival",
    "cultural event": "festival",
}
LIST_CATEGORIES = ("food", "sweets", "drinks", "city", "market", "clothing", "sport", "festival")
MAJOR_UNITS = {"dollar", "dollars", "peso", "pesos", "euro", "euros"}
MINOR_UNITS = {"cent", "cents"}
SIGNS = {"$", "€", "£"}
#: coins whose name carries a value (a nickel is 5 cents): never swapped
COINS = {"penny", "pennies", "nickel", "nickels", "dime", "dimes"}
CONTINENTS = {"africa", "asia", "europe", "north america", "south america", "oceania", "antarctica"}
_FEMALE = {"she", "her", "hers", "herself"}
_MALE = {"he", "him", "his", "himself"}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class Culture:
    """One country's entity sets (see ``tasks/data/lict_entities.json``)."""

    name: str
    female: tuple[str, ...]
    male: tuple[str, ...]
    sign: str
    spaced: bool
    major: tuple[str, str]
    minor: tuple[str, str]
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _entries(path: Path, row: str, value: Any, where: str, unique: bool = True) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise DatasetError(path, "must be a non-empty list of strings", row=row, field=where)
    for k, v in enumerate(value):
        if not isinstance(v, str) or not v.strip():
            raise DatasetError(path, "must be a non-empty string", row=row, field=f"{where}[{k}]")
        if holds_number(v):
            raise DatasetError(
                path,
                f"{v!r} holds a number (a swap must not add one)",
                row=row,
                field=f"{where}[{k}]",
            )
    if unique and len({v.lower() for v in value}) != len(value):
        raise DatasetError(path, "duplicate entry", row=row, field=where)
    return tuple(value)


def load_cultures(path: Path = ENTITIES_FILE) -> dict[str, Culture]:
    """Every culture of the entity file, checked: each entry a non-empty string without a digit or
    a number word, no duplicates within a set, 100 minor units to the major one."""
    data = read_json(path)
    cultures = data.get("cultures") if isinstance(data, dict) else None
    if not isinstance(cultures, dict) or not cultures:
        raise DatasetError(path, "no cultures object", field="cultures")
    out: dict[str, Culture] = {}
    for name, spec in cultures.items():
        row = f"cultures.{name}"

        if not isinstance(spec, dict):
            raise DatasetError(path, "culture entry must be an object", row=row)
        try:
            normalize_country(name)
        except UnknownCountryError as exc:
            raise DatasetError(path, str(exc), row=row) from exc
        names = spec.get("names")
        if not isinstance(names, dict):
            raise DatasetError(path, "missing names object", row=row, field="names")
        cur = spec.get("currency")
        if not isinstance(cur, dict):
            raise DatasetError(path, "missing currency object", row=row, field="currency")
        if cur.get("minor_per_major") != 100:
            raise DatasetError(
                path,
                "must be 100 (dollars and cents are swapped for major and minor units)",
                row=row,
                field="currency.minor_per_major",
            )
        major, minor = (
            _entries(path, row, cur.get("major"), "currency.major", unique=False),
            _entries(path, row, cur.get("minor"), "currency.minor", unique=False),
        )
        for unit, where in ((major, "currency.major"), (minor, "currency.minor")):
            if len(unit) != 2:
                raise DatasetError(path, "give [singular, plural]", row=row, field=where)
        sign = cur.get("sign")
        if not isinstance(sign, str) or not sign.strip() or holds_number(sign):
            raise DatasetError(
                path, "must be a non-empty string without a number", row=row, field="currency.sign"
            )
        lists = {c: _entries(path, row, spec[c], c) for c in LIST_CATEGORIES if c in spec}
        out[name] = Culture(
            name=name,
            female=_entries(path, row, names.get("female"), "names.female"),
            male=_entries(path, row, names.get("male"), "names.male"),
            sign=sign,
            spaced=bool(cur.get("spaced", True)),
            major=(major[0], major[1]),
            minor=(minor[0], minor[1]),
            lists=lists,
        )
    return out


# --- the release ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    number: int
    question: str  # GSM8K's
    template: str  # gsm_symbolic, without a leading "Question:"
    entities: tuple[tuple[str, str], ...]  # per placeholder in text order: (type as written, entity)
    identified: tuple[str, ...]  # entities_identified
    gold: int


def _records(path: Path, required: dict[str, type | tuple[type, ...]]) -> list[dict[str, Any]]:
    data = read_json(path)
    if not isinstance(data, list):
        raise DatasetError(path, f"expected a JSON list of problems, got {type(data).__name__}")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise DatasetError(path, "problem entry must be an object", row=i)
        for key, kind in required.items():
            value = rec.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise DatasetError(
                    path, "missing or of the wrong type", row=rec.get("problem_number", i), field=key
                )
    return data


def read_gold(path: Path) -> list[tuple[str, int]]:
    """GSM8K test rows as (question, integer gold)."""
    out = []
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        rec = parse_json(path, line, row=lineno)
        if not isinstance(rec, dict) or not isinstance(rec.get("question"), str):
            raise DatasetError(path, "missing question text", row=lineno, field="question")
        answer = rec.get("answer")
        if not isinstance(answer, str) or "####" not in answer:
            raise DatasetError(path, "no '#### <number>' in the answer", row=lineno, field="answer")
        raw = answer.rsplit("####", 1)[1].strip().replace(",", "")
        if not re.fullmatch(r"-?\d+", raw):
            raise DatasetError(path, f"gold {raw!r} is not an integer", row=lineno, field="answer")
        out.append((rec["question"], int(raw)))
    if not out:
        raise DatasetError(path, "no items: the file has no rows")
    return out


def read_release(root: Path, gold_path: Path) -> list[Problem]:
    """Every problem of the release with its gold answer, checked: placeholders and mappings agree."""
    sym_dir, map_dir = root / "Symbolic_dataset", root / "mapping_rules"
    sym_files = sorted(sym_dir.glob("Batch_*.json"))
    if not sym_files:
        raise DatasetError(sym_dir, "no Batch_*.json files (expected the release's Symbolic_dataset/)")
    gold = read_gold(gold_path)
    problems: list[Problem] = []
    seen: set[int] = set()
    for sym_path in sym_files:
        map_path = map_dir / sym_path.name
        syms = _records(
            sym_path,
            {"problem_number": int, "question": str, "gsm_symbolic": str, "entities_identified": (list, str)},
        )
        if not syms:
            raise no_items(sym_path, "the list of problems is empty")
        maps: dict[int, dict[str, Any]] = {}
        for r in _records(map_path, {"problem_number": int, "mappings": list}):
            if r["problem_number"] in maps:
                raise DatasetError(
                    map_path, "duplicate problem_number", row=r["problem_number"], field="problem_number"
                )
            maps[r["problem_number"]] = r
        for rec in syms:
            n = rec["problem_number"]
            if n in seen:
                raise DatasetError(sym_path, "duplicate problem_number", row=n, field="problem_number")
            seen.add(n)
            if not 1 <= n <= len(gold):
                raise DatasetError(
                    sym_path,
                    f"no GSM8K row {n} in {gold_path.name} ({len(gold)} rows)",
                    row=n,
                    field="problem_number",
                )
            if n not in maps:
                raise DatasetError(map_path, f"no mapping for problem {n}", row=n, field="problem_number")
            text = re.sub(r"^\s*Question:\s*", "", rec["gsm_symbolic"])
            types = _PLACEHOLDER.findall(text)
            mappings = maps[n]["mappings"]
            entities = []
            for k, m in enumerate(mappings):
                if (
                    not isinstance(m, dict)
                    or not isinstance(m.get("index"), int)
                    or not isinstance(m.get("entity"), str)
                ):
                    raise DatasetError(
                        map_path,
                        "mapping must have an integer index and an entity string",
                        row=n,
                        field=f"mappings[{k}]",
                    )
            ordered = sorted(mappings, key=lambda m: m["index"])
            if len(ordered) != len(types):
                raise DatasetError(
                    map_path,
                    f"{len(ordered)} mappings for {len(types)} placeholders in gsm_symbolic",
                    row=n,
                    field="mappings",
                )
            for ph_type, m in zip(types, ordered, strict=True):
                entity = m["entity"].strip()
                entities.append((ph_type, "" if entity == "<no token>" else entity))
            ident = rec["entities_identified"]  # a list, or "None" when nothing was found (problem 11)
            identified = tuple(e for e in (ident if isinstance(ident, list) else []) if isinstance(e, str))
            problems.append(Problem(n, gold[n - 1][0], text, tuple(entities), identified, gold[n - 1][1]))
    return sorted(problems, key=lambda p: p.number)  # Batch_10 sorts before Batch_2 by name


# --- the swap ------------------------------------------------------------------------------------------
@dataclass
class Swap:
    """One culture's question for one problem, with what was swapped and what was kept."""

    text: str
    swapped: list[tuple[str, str, str]]  # (category, original, replacement), one per distinct entity
    kept: list[tuple[str, str, str]]  # (placeholder type, original, reason)


def _category(ph_type: str) -> str | None:
    return CATEGORIES.get(" ".join(ph_type.lower().split()))


def _rng(seed: int, culture: str, problem: int) -> random.Random:
    digest = hashlib.blake2b(f"{seed}\x1f{culture}\x1f{problem}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _genders(template: str, keys: list[str | None]) -> dict[str, str]:
    """Per person key, "female" / "male" from the pronouns after its mentions, else absent."""
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    current: str | None = None
    k = 0
    for tok in re.findall(r"\{[^{}]*\}|[A-Za-z]+", template):
        if tok.startswith("{"):
            key = keys[k]
            k += 1
            current = key if key is not None else current
            continue
        low = tok.lower()
        if current is not None and (low in _FEMALE or low in _MALE):
            votes[current]["female" if low in _FEMALE else "male"] += 1
    out = {}
    for key, c in votes.items():
        if c["female"] != c["male"]:
            out[key] = "female" if c["female"] > c["male"] else "male"
    return out


def _is_place_with_facts(entity: str) -> bool:
    if entity.lower() in CONTINENTS:
        return True
    try:
        normalize_country(entity)
    except (UnknownCountryError, ValueError):
        return False
    return True


def _still_referred(entity: str, outside: str) -> bool:
    """True when the text outside the placeholders still mentions the entity (a word of it or a
    derived word: "Scottish Highlands" ... "Scottish unicorns")."""
    words = outside.lower()
    return any(
        re.search(rf"\b{re.escape(w[:5])}", words)
        for w in re.findall(r"[A-Za-z]+", entity.lower())
        if len(w) >= 4
    )


def _fallback_entity(problem: Problem, ph_type: str) -> str | None:
    """The original entity of a placeholder whose mapping lost it, from ``entities_identified``."""
    want = " ".join(ph_type.lower().split())
    for line in problem.identified:
        kind, _, value = line.partition(":")
        if " ".join(kind.lower().split()) == want and value.strip():
            return value.split(",")[0].strip()
    if _category(ph_type) == "sign":
        return "$"
    return None


def build_swap(problem: Problem, culture: Culture, seed: int = 0) -> Swap:
    """The culture's question for ``problem`` (see the module docstring for the rules)."""
    rng = _rng(seed, culture.name, problem.number)
    outside = _PLACEHOLDER.sub(" ", problem.template)
    taken = {w.lower() for w in re.findall(r"\w+", outside)}
    money_entities = [
        e or _fallback_entity(problem, t) or ""
        for t, e in problem.entities
        if _category(t) in ("sign", "currency")
    ]
    currencies = {_currency_of(e) for e in money_entities if e in SIGNS or e.lower() in MAJOR_UNITS}
    coins = any(
        _category(t) == "currency" and e.lower() in COINS | {"quarter", "quarters"}
        for t, e in problem.entities
    ) or bool(taken & COINS)  # "5 nickels" outside any placeholder counts too
    # money is kept whole when swapping part of it would break an implied rate (dollars to pesos, a
    # dime's 10 cents)
    money = "several currencies" if len(currencies) > 1 else "coins with a value" if coins else None
    capital_names = {e.lower() for t, e in problem.entities if _category(t) == "names" and e[:1].isupper()}
    # one key per distinct original entity (case-insensitive); an entity the mapping lost is its own key
    keys: list[str | None] = []
    for k, (t, e) in enumerate(problem.entities):
        cat = _category(t)
        keys.append(None if cat != "names" else (e.lower() if e else f"\x00{k}"))
    genders = _genders(problem.template, keys)
    used: dict[str, set[str]] = defaultdict(set)
    chosen: dict[tuple[str, str], str] = {}
    recorded: set[tuple[str, str]] = set()
    out_parts: list[str] = []
    swapped: list[tuple[str, str, str]] = []
    kept: list[tuple[str, str, str]] = []
    pos = 0
    for k, m in enumerate(_PLACEHOLDER.finditer(problem.template)):
        ph_type, entity = problem.entities[k]
        before = problem.template[pos : m.start()]
        out_parts.append(before)
        pos = m.end()
        cat = _category(ph_type)
        reason = _keep_reason(cat, entity, culture, money, capital_names, outside)
        if reason is None:
            replacement = _replacement(cat, entity, culture, keys[k], genders, rng, used, chosen, taken)
            if replacement is None:
                reason = "set exhausted"
        if reason is not None:
            original = entity or _fallback_entity(problem, ph_type)
            if original is None:
                raise DatasetError(
                    "mapping_rules",
                    "the mapping lost this entity and it cannot be kept",
                    row=problem.number,
                    field=ph_type,
                )
            kept.append((ph_type, original, reason))
            out_parts.append(original)
            continue
        assert replacement is not None and cat is not None
        ident = (cat, keys[k] or entity.lower())
        if ident not in recorded:
            recorded.add(ident)
            swapped.append((cat, entity or _fallback_entity(problem, ph_type) or "", replacement))
        text = replacement
        if cat == "sign" or (cat == "currency" and entity in SIGNS):
            text = _sign_text(culture, problem.template, m.start(), m.end())
        else:
            if re.search(r"(^|[.!?]\s+|\n)\s*$", "".join(out_parts)):
                text = text[:1].upper() + text[1:]
            out_parts[-1] = _article(out_parts[-1], text)
        out_parts.append(text)
    out_parts.append(problem.template[pos:])
    return Swap("".join(out_parts).strip(), swapped, kept)


def _article(before: str, word: str) -> str:
    """``before`` with a trailing "a"/"an" made to fit ``word`` ("a Iron Market" -> "an Iron Market")."""
    m = re.search(r"\b([Aa])(n?)(\s+)$", before)
    if not m:
        return before
    article = m.group(1) + ("n" if word[:1].lower() in "aeiou" else "")
    return before[: m.start()] + article + m.group(3)


def _currency_of(entity: str) -> str:
    """The currency an entity names ("$" and "dollars" are one): a problem with two mixes currencies."""
    return {"$": "dollar", "€": "euro", "£": "pound"}.get(entity) or entity.lower().removesuffix("s")


def restore(problem: Problem) -> str:
    """The symbolic template filled with its original entities (what every swap starts from)."""
    parts = iter(problem.entities)

    def fill(m: re.Match[str]) -> str:
        ph_type, entity = next(parts)
        return entity or _fallback_entity(problem, ph_type) or ""

    return _PLACEHOLDER.sub(fill, problem.template)


def _keep_reason(
    cat: str | None, entity: str, culture: Culture, money: str | None, capital_names: set[str], outside: str
) -> str | None:
    """Why a placeholder keeps its original entity (None: it is swapped)."""
    if cat is None:
        return "type not swapped"
    if cat in LIST_CATEGORIES and cat not in culture.lists:
        return "no set for this country"
    if entity and holds_number(entity):
        return "holds a number"
    if cat in ("sign", "currency"):
        low = entity.lower()
        if money is not None:
            return money
        if cat == "currency" and low not in MAJOR_UNITS | MINOR_UNITS and entity not in SIGNS:
            return "generic money word"
        return None
    if cat == "names" and entity[:1].islower() and len(entity) > 1 and entity.lower() not in capital_names:
        return "not a person name"
    if cat == "city" and entity and _is_place_with_facts(entity):
        return "country or continent"
    if entity and _still_referred(entity, outside):
        return "still referred to in the question"
    return None


def _replacement(
    cat: str | None,
    entity: str,
    culture: Culture,
    key: str | None,
    genders: dict[str, str],
    rng: random.Random,
    used: dict[str, set[str]],
    chosen: dict[tuple[str, str], str],
    taken: set[str],
) -> str | None:
    assert cat is not None
    if cat == "sign" or entity in SIGNS:
        return culture.sign
    if cat == "currency":
        low = entity.lower()
        unit = culture.major if low in MAJOR_UNITS else culture.minor
        word = unit[1] if low.endswith("s") else unit[0]
        return word[:1].upper() + word[1:] if entity[:1].isupper() else word
    ident = (cat, key or entity.lower())
    if ident in chosen:
        return chosen[ident]
    if cat == "names":
        gender = genders.get(key or "")
        pool = {"female": culture.female, "male": culture.male}.get(
            gender or "", culture.female + culture.male
        )
    else:
        pool = culture.lists[cat]
    fresh = [
        p
        for p in pool
        if p not in used[cat] and not any(w.lower() in taken for w in re.findall(r"\w+", p) if len(w) > 3)
    ]
    if not fresh:
        return None
    pick = fresh[rng.randrange(len(fresh))]
    used[cat].add(pick)
    chosen[ident] = pick
    return pick


def _sign_text(culture: Culture, template_text: str, start: int, end: int) -> str:
    """The country's sign where ``$`` stood: before an amount ("Rs 2", "SI$2"), or after one ("15 Rs")."""
    after = template_text[end : end + 1]
    before = template_text[start - 1 : start] if start else ""
    if before.isdigit():
        return f" {culture.sign}"
    if after and (after.isdigit() or after == ".") and culture.spaced:
        return f"{culture.sign} "
    return culture.sign


# --- prompt and task -----------------------------------------------------------------------------------
@template(ItemKind.SHORT_ANSWER, "lict", generic=False)
def _lict_prompt(v: View) -> Rendered:
    """culturelens's wording of the paper's request: reason step by step, end with the answer tag."""
    return Rendered(
        "Work out the answer to the math problem below, showing your steps. Finish with the final "
        "number alone in this exact form:\n\n"
        '"Answer": "<number>"\n\n'
        f"Problem:\n\n{v.question}"
    )


LICT_SOURCE = DataSource(
    "akarim23131/Lost_in_Cultural_Translation @ 8ee8c0c (no licence file) + GSM8K test (openai/grade-school-math, MIT)",
    url="https://github.com/akarim23131/Lost_in_Cultural_Translation",
    env="CULTURELENS_LICT_DIR",
    folder="lost_in_cultural_translation",
    files=("Symbolic_dataset",),
    missing="Lost in Cultural Translation folder not found (expected Symbolic_dataset/, mapping_rules/ and "
    "gsm8k/grade_school_math/data/test.jsonl)",
)


@register
class LostInCulturalTranslation(Task):
    name = "lict"
    description = (
        "Lost in Cultural Translation: GSM8K problems with their cultural entities swapped for six "
        "countries' (names, currency, food, places...); exact numeric match, original vs each culture"
    )
    protocol = (
        "Each GSM8K test problem as written and with its marked cultural entities replaced by one "
        "country's (culturelens's own entity sets for the paper's six countries; numbers never change), "
        'solved by greedy generation ending with the tag "Answer": "<number>"; the first tagged number '
        "is compared exactly with GSM8K's integer answer, as the paper does. Accuracy per culture, with "
        "McNemar's test against the original on the same problems."
    )
    headline = Headline("acc", "accuracy (exact numeric match)")
    metrics = {
        "acc_lenient": "accuracy with a lenient reading, not the paper's: a signed number after the last "
        "'answer', else the reply's last number"
    }
    default_mode = Mode.GENERATE
    default_template = "lict"
    source = LICT_SOURCE
    limit_strata = ("group",)

    class Options(TaskOptions):
        cultures: list[str] = Field(
            [], description="cultures to build, comma-separated (default: every culture of the entity file)"
        )
        swap_seed: int = Field(0, description="seed of the entity swap (default 0)")
        max_tokens: int = Field(512, description="generation budget per answer (default 512)")
        entities_file: str = Field("", description="entity sets JSON (default: culturelens's own)")

    options: Options

    def __init__(self, data_dir: str | Path | None = None, **options: Any):
        super().__init__(data_dir, **options)
        if self.options.max_tokens < 1:
            raise ValueError(f"lict option max_tokens={self.options.max_tokens}: give a positive number")
        self.excluded: dict[str, list[int]] = {}

    def cultures(self) -> list[Culture]:
        path = Path(self.options.entities_file).expanduser() if self.options.entities_file else ENTITIES_FILE
        known = load_cultures(path)
        if not self.options.cultures:
            return list(known.values())
        out = []
        for want in self.options.cultures:
            match = next((c for c in known.values() if c.name.lower() == want.lower()), None)
            if match is None:
                raise ValueError(f"lict option cultures: no culture {want!r} (known: {', '.join(known)})")
            out.append(match)
        return out

    def release_paths(self) -> tuple[Path, Path]:
        sym = self.locate(kind="dir", file_ok=False)
        if sym is None:
            raise DatasetError(
                "<no data>",
                "lict needs a local copy of the release: --data-dir, $CULTURELENS_LICT_DIR or "
                "$CULTURELENS_DATA/lost_in_cultural_translation (" + LICT_SOURCE.url + ")",
            )
        root = sym.parent
        for rel in GSM8K_FILES:
            if (root / rel).is_file():
                return root, root / rel
        raise DatasetError(root / GSM8K_FILES[0], "GSM8K test file not found (gold answers)")

    def load(self) -> Iterator[Item]:
        root, gold_path = self.release_paths()
        problems = read_release(root, gold_path)
        cultures = self.cultures()
        self.excluded = {}
        items: list[Item] = []
        for p in problems:
            want = number_tokens(p.question)
            if number_tokens(restore(p)) != want:
                # the symbolic template itself changed a number: the gold no longer applies to its copies
                self.excluded.setdefault("template_numbers_differ", []).append(p.number)
                continue
            swaps = {c.name: build_swap(p, c, self.options.swap_seed) for c in cultures}
            for cname, sw in swaps.items():
                if number_tokens(sw.text) != want:  # cannot happen by construction: a bug if it does
                    raise AssertionError(f"lict: the {cname} swap of problem {p.number} changed its numbers")
            items.append(self._item(p, ORIGINAL, p.question, None))
            for c in cultures:
                items.append(self._item(p, c.name, swaps[c.name].text, swaps[c.name]))
        yield from items

    def _item(self, p: Problem, culture: str, text: str, swap: Swap | None) -> Item:
        meta: dict[str, Any] = {"problem": p.number, "gold": p.gold, "max_tokens": self.options.max_tokens}
        if swap is not None:
            meta["swapped"] = [list(s) for s in swap.swapped]
            meta["kept"] = [list(k) for k in swap.kept]
        return Item(
            id=f"gsm8k-{p.number}/{culture}",
            task=self.name,
            kind=ItemKind.SHORT_ANSWER,
            question=text,
            answers=[GoldAnswer(texts=[str(p.gold)], en_texts=[str(p.gold)])],
            country=normalize_country(culture) if culture != ORIGINAL else None,
            language="en",
            group=f"gsm8k-{p.number}",
            subset={"culture": culture},
            metadata=meta,
        )

    def items(self, limit: int | None = None, countries: Sequence[str] | None = None) -> list[Item]:
        """As :meth:`Task.items`, but ``countries`` keeps the original questions beside the cultures
        asked for (they are what each culture is compared with)."""
        loaded = super().items(limit=None, countries=None)
        if countries:
            wanted = {normalize_country(c).name for c in countries}
            loaded = [it for it in loaded if it.country is None or it.country.name in wanted]
        return self.apply_limit(loaded, limit)

    def score(self, item: Item, prompt: Prompt, response: Response) -> Score:
        reply = response.text or ""
        gold = float(item.metadata["gold"])
        strict, lenient = paper_answer(reply), lenient_answer(reply)
        return Score(
            item_id=item.id,
            task=item.task,
            variant=prompt.variant.id,
            mode=prompt.mode,
            metrics={
                "acc": float(strict is not None and strict == gold),
                "acc_lenient": float(lenient is not None and lenient == gold),
            },
            prediction=_shown(strict),
            valid=strict is not None,
        )

    def extra_metrics(self, items: dict[str, Item], scores: list[Score]) -> dict[str, Any]:
        """Per culture: McNemar against the original on the same problems; swap counts; exclusions."""
        by_problem: dict[int, dict[str, Score]] = defaultdict(dict)
        for s in scores:
            it = items[s.item_id]
            by_problem[it.metadata["problem"]][it.subset["culture"]] = s
        cultures = sorted({it.subset["culture"] for it in items.values()} - {ORIGINAL})
        paired: dict[str, Any] = {}
        for metric in ("acc", "acc_lenient"):
            rows: dict[str, dict[str, Any]] = {}
            for c in cultures:
                pairs = [(d[ORIGINAL], d[c]) for d in by_problem.values() if ORIGINAL in d and c in d]
                if not pairs:
                    continue
                a = [o.metrics[metric] for o, _ in pairs]
                b = [x.metrics[metric] for _, x in pairs]
                mc = mcnemar(a, b)
                rows[c] = {
                    "n": len(pairs),
                    "original": sum(a) / len(a),
                    "culture": sum(b) / len(b),
                    "diff": (sum(b) - sum(a)) / len(a),
                    "original_only": mc.b,
                    "culture_only": mc.c,
                    "p": mc.p,
                    "test": f"McNemar {mc.method}",
                }
            for row, p_adj in zip(rows.values(), holm([r["p"] for r in rows.values()]), strict=True):
                row["p_holm"] = p_adj
            paired[metric] = rows
        swaps: dict[str, dict[str, Any]] = {}
        for it in items.values():
            c = it.subset["culture"]
            if c == ORIGINAL:
                continue
            entry = swaps.setdefault(c, {"swapped": 0, "kept": Counter()})
            entry["swapped"] += len(it.metadata.get("swapped", []))
            for _, _, why in it.metadata.get("kept", []):
                entry["kept"][why] += 1
        tagged = sum(1 for s in scores if s.valid)
        return {
            "paired": paired,
            "swaps": {
                c: {"swapped": e["swapped"], "kept": dict(e["kept"])} for c, e in sorted(swaps.items())
            },
            "excluded": {k: sorted(v) for k, v in self.excluded.items()},
            "answer_tag_rate": tagged / len(scores) if scores else None,
        }
