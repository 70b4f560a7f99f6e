"""BLEnD (Myung et al., NeurIPS 2024 D&B): everyday cultural knowledge in 16 regions, 13 languages.

``blend`` is the short-answer format. One item per (region, question, language variant, prompt):
the question in the region's local language and in English (US and UK have only the English one,
marked ``local``), under the two prompts the paper's final evaluation used, ``inst-4`` and
``pers-3``. The prompt wording is read at run time from the release's
``data/prompts/{Region}_prompts.csv`` and only its ``{q}`` slot is filled; the persona prompt
already names the region. As in the official ``make_prompt`` (model_inference.py):

* the column is ``Translation`` for a local-language question and ``English`` for every English
  one, US and UK included (the UK file's Translation column is a British-English rewording that
  the official code never asks; task option ``british_prompts`` asks UK items in it instead);
* a prompt id listed twice keeps its **first** row (the release's Azerbaijan file has ``inst-4``
  and ``pers-3`` twice, with two translations; the official code takes ``.values[0]``).

Grading follows the authors' ``soft_exact_match`` (evaluation/exact_match.py):

* questions with ``no-answer + not-applicable >= 3`` or ``idk >= 5`` or no annotations are dropped
  at load time (counts in ``extra_metrics["skipped"]``);
* the response loses an echoed prompt and a leading ``word:`` prefix whose word occurs in the
  prompt ("Answer:", "답변:"), full-width CJK punctuation is mapped to ASCII, then it is
  lower-cased and stripped of leading/trailing periods;
* answer clusters are tried in order of vote count; within a cluster the local-language variants
  (lemmatised in the local language) come before the English ones (English lemmatiser). For the
  English prompts only English variants are tried, as in the official code, which passes the
  response language;
* a variant matches when it (or its hyphen/space swap) is a substring of the response, else when
  all its lemmatised tokens are among the response's (:mod:`culturelens.lemmatize`);
* ``binary`` = 1 if any cluster matched, ``weighted`` = count / max count of the matched cluster.
  As in the official code the answer side of the substring test is not lower-cased (an annotated
  "Kimchi" reaches the response "kimchi" through the token test instead).

Countries: Assam -> India, West Java -> Indonesia, Northern Nigeria -> Nigeria (``subnational``
set), so the ``country`` breakdown merges West Java with Indonesia; ``subset:region`` keeps the
16 BLEnD regions apart.

Deviations from the official scoring, and why:

* lemmatisers: Hausa, Indonesian, Arabic and Chinese use the official tools, called as the official
  code calls them, when installed (``make install`` does; ``extra.lemmatisers`` says which ran;
  agreement with the official ``lemma_check``: 600/600 stress pairs, tests/test_blend_official.py);
  the other languages and every English answer use stand-ins, see
  :data:`culturelens.lemmatize.MATCHING_DIFFERENCES` (their official tools need Java, model
  downloads or unpackaged repositories); the substring test is identical;
* the 7 empty annotation strings in the release are ignored; the official substring test
  (``'' in response``) would count any non-empty response as matching them;
* a question whose local-language text is blank (China ``New-en-04``) is asked in English only
  (counted as ``blank_local_question``);
* ``max_tokens`` defaults to 64 (task option ``max_tokens``); the authors used each API's default.

``blend_mc`` is the multiple-choice format (``mc_questions_file*.csv``: columns ``MCQID``,
``ID``, ``country``, ``prompt``, ``choices`` (JSON object letter -> option), ``choice_countries``,
``answer_idx`` (letter)). The prompt is rebuilt from the release prompt (the stem before the first
option line, then the options, then the trailing ``Answer:``), so the default variant reproduces
the released prompt exactly and option-order variants stay possible. In generate mode (default,
as in the paper) the answer is parsed as the authors do: the ``answer_choice`` field of a JSON
object, else the first capital letter of the response; accuracy against ``answer_idx``.
"""

from __future__ import annotations

import json
import re
import string
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from culturelens import render as render_mod
from culturelens.countries import UnknownCountryError, normalize_country
from culturelens.download import fetch_hf_file, fetch_url
from culturelens.lemmatize import OFFICIAL_TOOLS, lemma_match, official_tool_installed
from culturelens.render import Rendered, View, template
from culturelens.schema import GoldAnswer, Item, ItemKind, Mode, Prompt, Response, Score
from culturelens.tasks.base import (
    DatasetError,
    DataSource,
    Headline,
    Task,
    TaskOptions,
    asks_default_template,
    check_unique,
    no_items,
    read_csv_rows,
    read_json,
    register,
)

#: release file stem -> (region name used in results, BCP-47 code of the local language)
REGIONS: dict[str, tuple[str, str]] = {
    "Algeria": ("Algeria", "ar"),
    "Assam": ("Assam", "as"),
    "Azerbaijan": ("Azerbaijan", "az"),
    "China": ("China", "zh"),
    "Ethiopia": ("Ethiopia", "am"),
    "Greece": ("Greece", "el"),
    "Indonesia": ("Indonesia", "id"),
    "Iran": ("Iran", "fa"),
    "Mexico": ("Mexico", "es"),
    "North_Korea": ("North Korea", "ko"),
    "Northern_Nigeria": ("Northern Nigeria", "ha"),
    "South_Korea": ("South Korea", "ko"),
    "Spain": ("Spain", "es"),
    "UK": ("UK", "en"),
    "US": ("US", "en"),
    "West_Java": ("West Java", "su"),
}
PAPER_PROMPTS = ("inst-4", "pers-3")
GITHUB_COMMIT = "24e7d732c082c224b3bc9c7dc3b884fe83fb8cc8"
GITHUB_RAW = f"https://raw.githubusercontent.com/nlee0212/BLEnD/{GITHUB_COMMIT}"
HF_REPO = "nayeon212/BLEnD"
MC_FILES = ("evaluation/mc_data/mc_questions_file-1.csv", "evaluation/mc_data/mc_questions_file-2.csv")
_IDK_FIELDS = ("idk", "no-answer", "not-applicable")


# --- data location ---------------------------------------------------------------------------------
def _data_root(base: Path) -> Path:
    """Accept the release root (containing ``data/``) or the ``data`` folder itself."""
    if (base / "data" / "annotations").is_dir():
        return base / "data"
    if (base / "annotations").is_dir():
        return base
    raise DatasetError(
        base / "data" / "annotations", "BLEnD folder not found (expected data/annotations/*_data.json)"
    )


def download_release() -> Path:
    """Fetch the short-answer release (48 files) from GitHub at the pinned commit; returns ``data/``."""
    last: Path | None = None
    for stem in REGIONS:
        for sub, suffix in (
            ("annotations", "_data.json"),
            ("questions", "_questions.csv"),
            ("prompts", "_prompts.csv"),
        ):
            rel = f"data/{sub}/{stem}{suffix}"
            last = fetch_url(f"{GITHUB_RAW}/{rel}", f"blend/{GITHUB_COMMIT[:12]}/{rel}")
    assert last is not None
    return last.parent.parent


# --- readers -------------------------------------------------------------------------------------------
def read_prompts(path: Path, wanted: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """``{prompt id: {"English": text, "Translation": text}}`` for the wanted prompt ids."""
    out: dict[str, dict[str, str]] = {}
    # a repeated id is not an error: the release's Azerbaijan file lists inst-4 and pers-3 twice (with
    # two translations); the FIRST row wins, as in the official make_prompt (``.values[0]``)
    for rowno, row in read_csv_rows(path, ("id", "English", "Translation")):
        pid = (row.get("id") or "").strip()
        if pid not in wanted or pid in out:
            continue
        for col in ("English", "Translation"):
            text = row.get(col)
            if not text or "{q}" not in text:
                raise DatasetError(path, "prompt text must contain the {q} slot", row=rowno, field=col)
        out[pid] = {"English": row["English"], "Translation": row["Translation"]}
    for pid in wanted:
        if pid not in out:
            raise DatasetError(path, f"prompt {pid!r} not found", field="id")
    return out


def _check_str_list(value: Any, path: Path, row: str, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DatasetError(path, "must be a list of strings", row=row, field=field)
    return value


def parse_annotation(qid: str, entry: Any, path: Path) -> dict[str, Any]:
    """Validate one question of ``{Region}_data.json``."""
    if not isinstance(entry, dict):
        raise DatasetError(path, "question entry must be an object", row=qid)
    if not isinstance(entry.get("question"), str):  # may be blank: China New-en-04 in the release
        raise DatasetError(path, "missing question text", row=qid, field="question")
    if not isinstance(entry.get("en_question"), str) or not entry["en_question"].strip():
        raise DatasetError(path, "missing or empty question text", row=qid, field="en_question")
    idks = entry.get("idks")
    if not isinstance(idks, dict):
        raise DatasetError(path, "missing idks object", row=qid, field="idks")
    for key in _IDK_FIELDS:
        value = idks.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise DatasetError(path, "must be a non-negative integer", row=qid, field=f"idks.{key}")
    anns = entry.get("annotations")
    if not isinstance(anns, list):
        raise DatasetError(path, "must be a list of answer clusters", row=qid, field="annotations")
    clusters = []
    for k, ann in enumerate(anns):
        where = f"annotations[{k}]"
        if not isinstance(ann, dict):
            raise DatasetError(path, "answer cluster must be an object", row=qid, field=where)
        local = _check_str_list(ann.get("answers"), path, qid, f"{where}.answers")
        english = _check_str_list(ann.get("en_answers"), path, qid, f"{where}.en_answers")
        count = ann.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise DatasetError(path, "must be a positive integer", row=qid, field=f"{where}.count")
        clusters.append(GoldAnswer(texts=local, en_texts=english, count=count))
    clusters.sort(key=lambda c: -c.count)  # stable: release order within ties, as the official loop
    return {
        "question": entry["question"],
        "en_question": entry["en_question"],
        "idks": idks,
        "answers": clusters,
    }


def skip_reasons(idks: dict[str, int], answers: list[GoldAnswer]) -> list[str]:
    """The paper's exclusion rule; empty list = the question is scored."""
    reasons = []
    if idks["no-answer"] + idks["not-applicable"] >= 3:
        reasons.append("no_answer_or_not_applicable")
    if idks["idk"] >= 5:
        reasons.append("idk")
    if not answers:
        reasons.append("no_annotations")
    return reasons


# --- response cleaning and matching ----------------------------------------------------------------------
_CJK_PUNCT = str.maketrans({"：": ":", "、": ",", "，": ",", "。": "."})


def clean_response(text: str, prompt_text: str) -> str:
    """The official ``get_llm_response_by_id`` + ``delete_prompt_from_answer`` normalisation."""
    text = text.replace(prompt_text, "") if prompt_text else text
    text = text.translate(_CJK_PUNCT).lower()
    prompt_n = prompt_text.translate(_CJK_PUNCT).lower()
    found = re.findall(r"^(\w+:)\s", text)
    prefix = ""
    for m in found:
        if len(m) > len(prefix) and m.replace(":", "") in prompt_n:
            prefix = m
    text = text.replace(prefix, "").strip() if found and prefix else text.strip()
    return text.strip(".").lower()


def match_answers(response: str, answers: list[GoldAnswer], lang: str) -> tuple[float, float, int | None]:
    """(binary, weighted, index of the matched cluster) for a cleaned response.

    ``lang`` is the response language: local-language items try each cluster's local variants
    (``lang`` lemmatiser) before its English ones; English items try English variants only.
    """
    if not response or not answers:
        return 0.0, 0.0, None
    max_count = max(a.count for a in answers)
    local = lang.split("-")[0].lower() != "en"
    for idx, ans in enumerate(answers):
        tries = [(t, lang) for t in ans.texts] if local else []
        tries += [(t, "en") for t in ans.en_texts]
        for text, tlang in tries:
            if text.strip() and lemma_match(text, response, tlang):
                return 1.0, ans.count / max_count, idx
    return 0.0, 0.0, None


# --- templates -----------------------------------------------------------------------------------------------
@template(ItemKind.SHORT_ANSWER, "blend", generic=False)
def _blend_prompt(v: View) -> Rendered:
    """The release's prompt text (stored on the item at load time) with ``{q}`` filled."""
    text = v.item.metadata.get("prompt_text") or "{q}"
    country = v.item.metadata.get("region") or (v.item.country.name if v.item.country else "")
    return Rendered(text.replace("{q}", v.question).replace("{country}", country))


@template(ItemKind.MULTIPLE_CHOICE, "blend_mc", generic=False)
def _blend_mc_prompt(v: View) -> Rendered:
    """Release stem + options + trailer; with letters in the original order this is the released prompt."""
    stem = v.item.metadata.get("stem", f"{v.question}\n\n")
    trailer = v.item.metadata.get("trailer", "\nAnswer:")
    labels = v.labels or list(render_mod.LETTERS[: len(v.options)])
    lines = "".join(f"{lab}. {opt}\n" for lab, opt in zip(labels, v.options, strict=True))
    prefix = '{"answer_choice":"' if v.mode is Mode.LETTER else ""
    return Rendered(f"{stem}{lines}{trailer}", prefix)


BLEND_SOURCE = DataSource(
    "nlee0212/BLEnD on GitHub (pinned commit; short answer), HF nayeon212/BLEnD (multiple choice)",
    url="https://github.com/nlee0212/BLEnD",
    env="CULTURELENS_BLEND_DIR",
    folder="blend",
    files=("data/annotations", "annotations"),
    missing="BLEnD folder not found (expected data/annotations/*_data.json)",
)


# --- short answer task ------------------------------------------------------------------------------------
@register
class Blend(Task):
    name = "blend"
    description = (
        "BLEnD short-answer everyday cultural knowledge: 16 regions, local language + English, "
        "prompts inst-4/pers-3 from the release; soft exact match (binary, weighted)"
    )
    protocol = (
        "Each question in the region's language and in English under the release prompts inst-4 and "
        "pers-3, answered by greedy generation; graded with the authors' soft exact match (cleaned reply, "
        "answer clusters by votes, substring or lemma match): binary = any cluster matched, weighted = its "
        "vote share. Questions the annotators could not answer are dropped."
    )
    headline = Headline("binary", "accuracy (binary match)")
    metrics = {"weighted": "vote count of the matched answer cluster / the largest cluster's"}
    default_mode = Mode.GENERATE
    default_template = "blend"
    source = BLEND_SOURCE

    class Options(TaskOptions):
        prompts: list[str] = Field(
            list(PAPER_PROMPTS),
            description=f"release prompt ids, comma-separated (default: {','.join(PAPER_PROMPTS)})",
        )
        max_tokens: int = Field(64, description="generation budget per answer (default 64)")
        british_prompts: bool = Field(
            False,
            description="UK items use the prompt file's Translation column (its British-English "
            "rewording) instead of the English column the official code uses (default false)",
        )

    options: Options  # the typed --opt values

    #: ``--limit`` keeps a question's language / prompt copies together, balanced over regions, then topics
    limit_strata = ("subset.region", "topic")

    def __init__(self, data_dir: str | Path | None = None, **options: Any):
        super().__init__(data_dir, **options)
        self.prompt_ids: tuple[str, ...] = tuple(self.options.prompts)
        if not self.prompt_ids:
            raise ValueError("blend option prompts: give at least one prompt id (e.g. inst-4,pers-3)")
        self.max_tokens = self.options.max_tokens
        if self.max_tokens < 1:
            raise ValueError(f"blend option max_tokens={self.max_tokens}: give a positive number")
        self.skipped: dict[str, dict[str, int]] = {}

    def root(self) -> Path:
        """The release's ``data`` folder (the one holding ``annotations/``), downloaded when no copy is given."""
        annotations = self.locate(kind="dir", file_ok=False)
        return annotations.parent if annotations is not None else download_release()

    def load(self) -> Iterator[Item]:
        root = self.root()
        ann_files = sorted((root / "annotations").glob("*_data.json"))
        if not ann_files:
            raise DatasetError(root / "annotations", "no *_data.json files")
        batches: list[list[Item]] = []
        self.skipped = {}
        for path in ann_files:  # validate every file before yielding anything
            batches.append(self._load_region(root, path))
        for batch in batches:
            yield from batch

    def _load_region(self, root: Path, path: Path) -> list[Item]:
        stem = path.name[: -len("_data.json")]
        if stem not in REGIONS:
            raise DatasetError(path, f"unknown BLEnD region {stem!r} (known: {', '.join(REGIONS)})")
        region, lang = REGIONS[stem]
        try:
            country = normalize_country(region)
        except UnknownCountryError as exc:  # pragma: no cover - the table is fixed
            raise DatasetError(path, str(exc)) from exc
        data = read_json(path)
        if not isinstance(data, dict):
            raise DatasetError(
                path, f"expected a JSON object keyed by question id, got {type(data).__name__}"
            )
        if not data:
            raise no_items(path, "the JSON object is empty")
        q_path = root / "questions" / f"{stem}_questions.csv"
        topics: dict[str, str] = {}
        seen: dict[str, int] = {}
        for rowno, row in read_csv_rows(q_path, ("ID", "Topic")):
            qid, topic = (row.get("ID") or "").strip(), (row.get("Topic") or "").strip()
            if not qid:
                raise DatasetError(q_path, "empty question id", row=rowno, field="ID")
            if not topic:
                raise DatasetError(q_path, "empty topic", row=rowno, field="Topic")
            check_unique(q_path, seen, qid, rowno, "ID", what="question id")
            topics[qid] = topic
        prompts = read_prompts(root / "prompts" / f"{stem}_prompts.csv", self.prompt_ids)
        variants = ["local"] if lang == "en" else ["local", "en"]
        # the official make_prompt takes the English column whenever the language is English, so US
        # and UK items too; only the british_prompts option asks UK items in the Translation column
        british = self.options.british_prompts and stem == "UK"
        column = "Translation" if lang != "en" or british else "English"
        stats = {"questions": len(data), "valid": 0, "skipped": 0}
        items: list[Item] = []
        for qid, entry in data.items():
            parsed = parse_annotation(qid, entry, path)
            if qid not in topics:
                raise DatasetError(q_path, f"question {qid} of {path.name} has no row here", field="ID")
            reasons = skip_reasons(parsed["idks"], parsed["answers"])
            if reasons:
                stats["skipped"] += 1
                for r in reasons:
                    stats[f"skipped_{r}"] = stats.get(f"skipped_{r}", 0) + 1
                continue
            stats["valid"] += 1
            blank_local = not parsed["question"].strip()
            if blank_local:  # cannot be asked in the local language; English items are kept
                stats["blank_local_question"] = stats.get("blank_local_question", 0) + 1
            for lv in variants:
                if lv == "local" and blank_local:
                    continue
                for pid in self.prompt_ids:
                    items.append(
                        Item(
                            id=f"{stem}/{qid}/{lv}/{pid}",
                            task=self.name,
                            kind=ItemKind.SHORT_ANSWER,
                            question=parsed["question"] if lv == "local" else parsed["en_question"],
                            answers=parsed["answers"],
                            country=country,
                            language=lang if lv == "local" else "en",
                            topic=topics[qid],
                            group=f"{stem}/{qid}",
                            subset={"language_variant": lv, "prompt": pid, "region": region},
                            metadata={
                                "prompt_text": prompts[pid][column if lv == "local" else "English"],
                                "region": region,
                                "question_id": qid,
                                "local_language": lang,
                                "max_tokens": self.max_tokens,
                            },
                        )
                    )
        self.skipped[region] = stats
        return items

    def score(self, item: Item, prompt: Prompt, response: Response) -> Score:
        user = next((m.content for m in reversed(prompt.messages) if m.role == "user"), "")
        cleaned = clean_response(response.text or "", user)
        binary, weighted, _ = match_answers(cleaned, item.answers, item.language)
        return Score(
            item_id=item.id,
            task=item.task,
            variant=prompt.variant.id,
            mode=prompt.mode,
            metrics={"binary": binary, "weighted": weighted},
            prediction=cleaned,
            valid=bool(cleaned),
        )

    def extra_metrics(self, items: dict[str, Item], scores: list[Score]) -> dict[str, Any]:
        """Skip-rule counts per region, and the paper's table: region x language x prompt."""
        regions = {it.metadata.get("region") for it in items.values()}
        table: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
        cells: dict[tuple[str, str], list[Score]] = defaultdict(list)
        for s in scores:
            it = items[s.item_id]
            cells[(it.metadata["region"], f"{it.subset['language_variant']}/{it.subset['prompt']}")].append(s)
        for (region, key), ss in sorted(cells.items()):
            table[region][key] = {
                "binary": sum(s.metrics["binary"] for s in ss) / len(ss),
                "weighted": sum(s.metrics["weighted"] for s in ss) / len(ss),
                "n": float(len(ss)),
            }
        langs = sorted({lang for it in items.values() for lang in (it.language or "en", "en")})
        return {
            "skipped": {r: v for r, v in sorted(self.skipped.items()) if r in regions},
            "by_region_language_prompt": dict(table),
            "lemmatisers": {
                lang: (
                    f"official ({OFFICIAL_TOOLS[lang.split('-')[0]]})"
                    if official_tool_installed(lang)
                    else "stand-in"
                )
                for lang in langs
            },
        }


# --- multiple choice task ----------------------------------------------------------------------------
def _json_object(text: str) -> Any:
    """The last ``{...}`` of the response parsed as JSON, else the response itself (official helper)."""
    flat = text.replace("\n", "")
    if "{" not in flat:
        return text
    flat = flat.replace("```json", "").replace("`", "").replace(",}", "}")
    found = re.findall(r"{.+}", flat)
    try:
        return json.loads(found[-1])
    except (IndexError, ValueError):
        return text


def parse_mc_answer(response: str, prompt_text: str, labels: list[str], options: list[str]) -> str | None:
    """The authors' answer extraction; returns a displayed label or None when it yields no label."""
    by_text = dict(zip(options, labels, strict=True))
    obj = _json_object(response)
    if isinstance(obj, dict) and "answer_choice" in obj:
        choice = obj["answer_choice"]
        caps = re.findall(r"[A-Z]", str(choice))
        if caps and f"{caps[0]}." in prompt_text:
            return caps[0] if caps[0] in labels else None
        return by_text.get(choice) if isinstance(choice, str) else None
    if isinstance(obj, str):
        caps = re.findall(r"[A-Z]", obj)
        if caps:
            return caps[0] if caps[0] in labels else None
    return None


@register
class BlendMC(Task):
    name = "blend_mc"
    description = "BLEnD multiple-choice: one region's answer among other regions' answers; accuracy"
    protocol = (
        "The released multiple-choice prompts (one region's answer among other regions' answers), answered "
        "by greedy generation and parsed as the authors do (the answer_choice field of a JSON object, else "
        "the first capital letter); accuracy against answer_idx."
    )
    headline = Headline("acc", "accuracy (share correct)")
    default_mode = Mode.GENERATE
    default_template = "blend_mc"
    source = BLEND_SOURCE
    limit_strata = ("subset.region", "topic")

    def mc_files(self) -> tuple[list[Path], Path | None]:
        """(MC question files, BLEnD ``data`` folder or None)."""
        base = self.data_path()
        if base is not None:
            files = sorted(base.rglob("mc_questions_file*.csv")) if base.is_dir() else [base]
            if not files:
                raise DatasetError(
                    base,
                    "no mc_questions_file*.csv found (the MC file is on HF: nayeon212/BLEnD evaluation/mc_data/)",
                )
            try:
                root: Path | None = _data_root(base)
            except DatasetError:
                root = None
            return files, root
        return [fetch_hf_file(HF_REPO, f) for f in MC_FILES], None

    def _topics(self, root: Path | None) -> dict[str, str]:
        topics: dict[str, str] = {}
        if root is None:
            return topics
        for path in sorted((root / "questions").glob("*_questions.csv")):
            for _, row in read_csv_rows(path, ("ID", "Topic")):
                topics.setdefault((row.get("ID") or "").strip(), (row.get("Topic") or "").strip())
        return topics

    def load(self) -> Iterator[Item]:
        files, root = self.mc_files()
        topics = self._topics(root)
        items: list[Item] = []
        seen: dict[str, str] = {}
        for path in files:
            for rowno, row in read_csv_rows(
                path, ("MCQID", "ID", "country", "prompt", "choices", "answer_idx")
            ):
                item = self._row_item(path, rowno, row, topics)
                where = str(rowno) if len(files) == 1 else f"{rowno} of {path.name}"
                check_unique(path, seen, item.id, where, "MCQID", what="MCQID")
                items.append(item)
        yield from items

    def _row_item(self, path: Path, rowno: int, row: dict[str, str], topics: dict[str, str]) -> Item:
        for field in ("MCQID", "ID", "country", "prompt", "choices", "answer_idx"):
            if not (row.get(field) or "").strip():
                raise DatasetError(path, "empty value", row=rowno, field=field)
        try:
            choices = json.loads(row["choices"])
        except json.JSONDecodeError as exc:
            raise DatasetError(path, f"invalid JSON ({exc.msg})", row=rowno, field="choices") from exc
        if (
            not isinstance(choices, dict)
            or len(choices) < 2
            or not all(isinstance(k, str) and len(k) == 1 and k in string.ascii_uppercase for k in choices)
            or not all(isinstance(v, str) for v in choices.values())
        ):
            raise DatasetError(
                path, "must map letters to option texts (at least two)", row=rowno, field="choices"
            )
        letters = sorted(choices)
        if letters != list(string.ascii_uppercase[: len(letters)]):
            raise DatasetError(
                path, f"letters must be A, B, C... in sequence, got {letters}", row=rowno, field="choices"
            )
        answer = row["answer_idx"].strip()
        if answer not in choices:
            raise DatasetError(
                path, f"{answer!r} is not one of the choice letters", row=rowno, field="answer_idx"
            )
        prompt = row["prompt"]
        first = prompt.find(f"A. {choices['A']}\n")
        last_line = f"{letters[-1]}. {choices[letters[-1]]}\n"
        end = prompt.rfind(last_line)
        if first < 0 or end < first:
            raise DatasetError(path, "option lines not found in the prompt", row=rowno, field="prompt")
        stem, trailer = prompt[:first], prompt[end + len(last_line) :]
        region = row["country"].strip().replace("_", " ")
        try:
            country = normalize_country(region)
        except UnknownCountryError as exc:
            raise DatasetError(path, str(exc), row=rowno, field="country") from exc
        qid = row["ID"].strip()
        return Item(
            id=row["MCQID"].strip(),
            task=self.name,
            kind=ItemKind.MULTIPLE_CHOICE,
            question=stem.strip(),
            options=[choices[k] for k in letters],
            correct=[letters.index(answer)],
            country=country,
            language="en",
            topic=topics.get(qid) or None,
            group=f"{qid}/{region}",
            subset={"region": region},
            metadata={"stem": stem, "trailer": trailer, "question_id": qid, "region": region},
        )

    def score(self, item: Item, prompt: Prompt, response: Response) -> Score:
        if prompt.mode is not Mode.GENERATE or not asks_default_template(item, prompt.variant):
            return super().score(item, prompt, response)
        user = next((m.content for m in reversed(prompt.messages) if m.role == "user"), "")
        shown = [item.options[i] for i in prompt.order]
        labels = prompt.labels or list(render_mod.LETTERS[: len(shown)])
        label = parse_mc_answer(response.text or "", user, labels, shown)
        base: dict[str, Any] = {
            "item_id": item.id,
            "task": item.task,
            "variant": prompt.variant.id,
            "mode": prompt.mode,
        }
        if label is None:
            return Score(**base, metrics={"acc": 0.0, "invalid": 1.0}, prediction=None, valid=False)
        pred = prompt.order[labels.index(label)]
        probs = [0.0] * len(item.options)
        probs[pred] = 1.0
        return Score(
            **base, metrics={"acc": float(pred in item.correct), "invalid": 0.0}, prediction=pred, probs=probs
        )
