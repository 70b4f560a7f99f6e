"""CLIcK (Kim et al., LREC-COLING 2024): Cultural and Linguistic Intelligence in Korean.

1,995 Korean multiple-choice questions from official exams and textbooks (KIIP, CSAT, Kedu, PSE,
TOPIK, KHB, PSAT), in two groups: **culture** (8 sub-categories: Korean Economy, Geography,
History, Law, Politics, Popular, Society, Tradition; 1,345 items) and **language** (Functional,
Grammar, Textual; 650 items). Release: GitHub ``rladmstn1714/CLIcK`` (``Dataset/<Culture|Language>/
<sub-category>/<Sub>_<EXAM>.json``, mirrored on HF as ``EunsuKim/CLIcK``; no licence stated). Each
record has ``id``, ``paragraph`` (context, often empty), ``question``, ``choices`` (4, or 5 on the
256 CSAT items) and ``answer``, the **text** of the correct choice.

Items: one per record, ``language="ko"``, country South Korea. The group and sub-category come from
the folder (not from ``id`` substrings, which misfile items), ``topic`` is the sub-category, and
``subset`` carries ``category`` (culture / language), ``subcategory``, ``source`` (the exam code of the
file name) and ``n_choices``. Ids are ``click:<file stem>:<record id>``: record ids repeat across
files (``Kedu_16_1`` is both a Functional and a Grammar item), never within one. Gold =
the position of ``answer`` in ``choices``; an answer that matches no choice, or several identical
ones, is a :class:`~culturelens.tasks.base.DatasetError` naming the file, record (row 1 = first
record of the array) and field.

Protocol (paper, Section 4; the official repository holds only the data, no evaluation code):
zero-shot, a Korean instruction to read the context (if any) and the question and to answer with a
single letter, then the context (``맥락:``), the question (``질문:``), the options (``보기:``) and the
answer cue ``정답:``; accuracy per sub-category and per group. Default mode ``letter``: the
next-token distribution over the option letters after ``정답:``, as for the paper's open models
(and lm-evaluation-harness's port); ``--mode generate`` parses a letter from a greedy reply, as for
its API models (a reply such as ``정답은 B입니다`` is understood too).

Differences, on purpose:

* **Every option is shown, and only shown options are scored.** The five-option items list
  ``A.``-``E.`` and the instruction names all five letters; lm-evaluation-harness's CLIcK task shows
  only A-D on them but scores A-E (49 of its golds are an unseen "E").
* The wording is ours (``click`` template); the options go one per line (``A. ...``) rather than
  on one comma-separated line, since many CSAT options contain commas.
* Headline ``acc`` is the item-level mean over whatever was run; ``extra`` gives each group's
  item-level accuracy (lm-evaluation-harness's size-weighted ``click_cul`` / ``click_lang``), the
  mean over its sub-categories, and the chance level of the items run (1/4 or 1/5 per item).
* ``--limit`` balances the 11 sub-categories (then the exams within each), since every item has
  the same country.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from culturelens import scoring
from culturelens.countries import normalize_country
from culturelens.render import Rendered, View, template
from culturelens.schema import Item, ItemKind, Mode, Prompt, Response, Score
from culturelens.tasks.base import DatasetError, DataSource, Headline, Task, no_items, read_json, register

GITHUB_REPO = "rladmstn1714/CLIcK"
GITHUB_COMMIT = "38373acdf73a11e9fbf3667747da61021439d7b7"
GITHUB_RAW = f"https://raw.githubusercontent.com/{GITHUB_REPO}/{GITHUB_COMMIT}"
#: group folder -> the ``category`` subset value
GROUPS = {"Culture": "culture", "Language": "language"}
#: the release's 26 files (relative to the repository root), for downloading it when no copy is given
RELEASE_FILES: tuple[str, ...] = (
    "Dataset/Culture/Korean Economy/Economy_KIIP.json",
    "Dataset/Culture/Korean Economy/Economy_Kedu.json",
    "Dataset/Culture/Korean Geography/Geography_CSAT.json",
    "Dataset/Culture/Korean Geography/Geography_KIIP.json",
    "Dataset/Culture/Korean Geography/Geography_Kedu.json",
    "Dataset/Culture/Korean History/History_KHB.json",
    "Dataset/Culture/Korean History/History_Kedu.json",
    "Dataset/Culture/Korean History/History_PSE.json",
    "Dataset/Culture/Korean Law/Law_KIIP.json",
    "Dataset/Culture/Korean Law/Law_PSAT.json",
    "Dataset/Culture/Korean Politics/Politics_KIIP.json",
    "Dataset/Culture/Korean Politics/Politics_Kedu.json",
    "Dataset/Culture/Korean Popular/Popular_KIIP.json",
    "Dataset/Culture/Korean Popular/Popular_Kedu.json",
    "Dataset/Culture/Korean Society/Society_KIIP.json",
    "Dataset/Culture/Korean Society/Society_Kedu.json",
    "Dataset/Culture/Korean Tradition/Tradition_KIIP.json",
    "Dataset/Culture/Korean Tradition/Tradition_Kedu.json",
    "Dataset/Language/Functional/Functional_CSAT.json",
    "Dataset/Language/Functional/Functional_Kedu.json",
    "Dataset/Language/Functional/Functional_PSE.json",
    "Dataset/Language/Grammar/Grammar_CSAT.json",
    "Dataset/Language/Grammar/Grammar_Kedu.json",
    "Dataset/Language/Grammar/Grammar_TOPIK.json",
    "Dataset/Language/Textual/Textual_CSAT.json",
    "Dataset/Language/Textual/Textual_TOPIK.json",
)
N_CHOICES = (4, 5)
_REQUIRED = ("id", "question", "choices", "answer")
#: a Korean answer cue before a letter: "정답: B", "정답은 (B)", "답은 B입니다"
_KO_CUE = re.compile(r"(?:정답|답)\s*(?:은|는|:|：)?\s*[\(\[]?\s*([A-Ea-e])(?![A-Za-z])")


# --- prompt -----------------------------------------------------------------------------------------
def _ko_list(labels: Sequence[str]) -> str:
    return ", ".join(labels)


@template(ItemKind.MULTIPLE_CHOICE, "click", generic=False)
def _click_template(v: View) -> Rendered:
    """Korean instruction, 맥락 / 질문 / 보기, answer cue 정답: (the paper's structure, our words)."""
    context = (v.context or "").strip()
    head = f"맥락: {context}\n" if context else ""
    if v.mode is Mode.CLOZE:
        return Rendered(f"{head}질문: {v.question}", "정답:")
    read = "다음 맥락과 질문을 주의 깊게 읽고" if context else "다음 질문을 주의 깊게 읽고"
    if v.labels:
        kind = "알파벳" if all(lab.isalpha() for lab in v.labels) else "번호"
        ask = f"{read}, 보기 {_ko_list(v.labels)} 가운데 가장 알맞은 답을 하나 골라 그 {kind}만 쓰시오."
    else:
        ask = f"{read}, 보기 가운데 가장 알맞은 답을 하나 골라 그대로 쓰시오."
    return Rendered(f"{ask}\n\n{head}질문: {v.question}\n보기:\n{v.option_lines()}", "정답:")


# --- reading the release -------------------------------------------------------------------------------
def _where(keypath: Sequence[str | int]) -> tuple[int | str | None, str | None]:
    """A fault's (row, field) in a release file: records are numbered from 1, the rest is the field."""
    if not keypath:
        return None, None
    first = keypath[0]
    rest = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keypath[1:]).lstrip(".")
    return (first + 1 if isinstance(first, int) else first), rest or None


def _read_json(path: Path) -> Any:
    """A release file's JSON (:func:`base.read_json`): unreadable text, bad syntax and a key given
    twice in one object are :class:`DatasetError`, and an empty file is ``no items``."""
    return read_json(path, _where)


def _text(path: Path, rec: dict[str, Any], row: int, field: str) -> str:
    value = rec[field]
    if not isinstance(value, str):
        raise DatasetError(path, f"expected text, got {type(value).__name__}", row=row, field=field)
    if not value.strip():
        raise DatasetError(path, "empty value", row=row, field=field)
    return value.strip()


def _gold(path: Path, choices: list[str], answer: str, row: int) -> int:
    hits = [k for k, c in enumerate(choices) if c == answer]
    if not hits:  # the release strips its answers; tolerate stray whitespace, nothing more
        hits = [k for k, c in enumerate(choices) if c.strip() == answer.strip()]
    if not hits:
        raise DatasetError(path, f"answer {answer[:60]!r} is not one of the choices", row=row, field="answer")
    if len(hits) > 1:
        labels = ", ".join("ABCDE"[k] for k in hits)
        raise DatasetError(
            path,
            f"answer {answer[:60]!r} matches several identical choices ({labels})",
            row=row,
            field="answer",
        )
    return hits[0]


def records_to_items(path: Path, relpath: str, records: Any, task: str) -> list[Item]:
    """Validate one release file (``relpath`` = ``Dataset/<group>/<sub-category>/<file>.json``) and
    turn its records into items. Records are numbered from 1 in error messages."""
    parts = Path(relpath).parts
    if len(parts) < 3 or parts[-3] not in GROUPS:
        raise DatasetError(
            path, f"not under Dataset/Culture/<category>/ or Dataset/Language/<category>/ ({relpath})"
        )
    group, subcategory, stem = GROUPS[parts[-3]], parts[-2], Path(relpath).stem
    source = stem.rsplit("_", 1)[-1] if "_" in stem else stem
    if not isinstance(records, list):
        raise DatasetError(path, f"expected a JSON array of questions, got {type(records).__name__}")
    if not records:
        raise no_items(path, "the file holds an empty array of questions")
    country = normalize_country("South Korea")
    items: list[Item] = []
    seen: dict[str, int] = {}
    for row, rec in enumerate(records, start=1):
        if not isinstance(rec, dict):
            raise DatasetError(path, f"expected a JSON object, got {type(rec).__name__}", row=row)
        for field in _REQUIRED:
            if field not in rec or rec[field] is None:
                raise DatasetError(path, "missing field", row=row, field=field)
        rid = _text(path, rec, row, "id")
        if rid in seen:
            raise DatasetError(path, f"duplicate id {rid!r} (first at row {seen[rid]})", row=row, field="id")
        seen[rid] = row
        question = _text(path, rec, row, "question")
        paragraph = rec.get("paragraph")
        if paragraph is not None and not isinstance(paragraph, str):
            raise DatasetError(
                path, f"expected text, got {type(paragraph).__name__}", row=row, field="paragraph"
            )
        choices = rec["choices"]
        if not isinstance(choices, list):
            raise DatasetError(
                path, f"expected a list of choices, got {type(choices).__name__}", row=row, field="choices"
            )
        if len(choices) not in N_CHOICES:
            raise DatasetError(path, f"{len(choices)} choices, expected 4 or 5", row=row, field="choices")
        for k, choice in enumerate(choices):
            if not isinstance(choice, str) or not choice.strip():
                raise DatasetError(path, f"choice {k + 1} is empty or not text", row=row, field="choices")
        if not isinstance(rec["answer"], str) or not rec["answer"].strip():
            raise DatasetError(path, "the answer must be the text of a choice", row=row, field="answer")
        gold = _gold(path, choices, rec["answer"], row)
        context = (paragraph or "").strip() or None
        items.append(
            Item(
                id=f"click:{stem}:{rid}",
                task=task,
                kind=ItemKind.MULTIPLE_CHOICE,
                question=question,
                context=context,
                options=[c.strip() for c in choices],
                correct=[gold],
                country=country,
                language="ko",
                topic=subcategory,
                subset={
                    "category": group,
                    "subcategory": subcategory,
                    "source": source,
                    "n_choices": str(len(choices)),
                },
                metadata={"file": relpath, "row": row, "click_id": rid},
            )
        )
    return items


@register
class CLIcK(Task):
    name = "click"
    description = (
        "CLIcK: 1,995 Korean exam questions on Korean culture (8 sub-categories) and language (3); "
        "accuracy per sub-category and group, 4- and 5-option items shown in full"
    )
    protocol = (
        "Zero-shot (paper, Section 4): a Korean instruction to read the context and question and answer with "
        "one letter, then 맥락 / 질문 / 보기 and the cue 정답:; the next-token distribution over the shown "
        "letters (--mode generate parses a reply). Every option is shown; the wording is ours. Accuracy per "
        "sub-category and group."
    )
    headline = Headline("acc", "accuracy (share correct)")
    default_mode = Mode.LETTER
    default_template = "click"
    source = DataSource(
        f"{GITHUB_REPO} on GitHub (pinned commit)",
        url=f"https://github.com/{GITHUB_REPO}",
        env="CULTURELENS_CLICK_DIR",
        folder="click",
        files=("Dataset", "click/Dataset"),
        missing=(
            "folder not found (the CLIcK release layout: Dataset/Culture/<category>/*.json and "
            f"Dataset/Language/<category>/*.json, from GitHub {GITHUB_REPO})"
        ),
    )
    #: ``--limit`` balances the sub-categories, then the exams within one (every item has one country)
    limit_strata = ("subset.subcategory", "subset.source")

    def files(self) -> list[tuple[str, Path]]:
        """(release-relative path, local path) of every release file, downloading when no copy is given."""
        from culturelens.download import fetch_url

        files = ("Dataset", "click/Dataset") + (
            (".",) if self.data_dir and self.data_dir.name == "Dataset" else ()
        )
        root = self.locate(files, kind="dir", file_ok=False)
        if root is None:
            return [
                (rel, fetch_url(f"{GITHUB_RAW}/{quote(rel)}", f"click/{GITHUB_COMMIT[:12]}/{rel}"))
                for rel in RELEASE_FILES
            ]
        found = [
            (str(Path("Dataset") / p.relative_to(root)), p)
            for group in GROUPS
            for p in sorted((root / group).glob("*/*.json"))
        ]
        if not found:
            raise DatasetError(root, "no question files under Culture/<category>/ or Language/<category>/")
        return found

    def load(self) -> Iterator[Item]:
        items: list[Item] = []
        for rel, path in self.files():
            items.extend(records_to_items(path, rel, _read_json(path), self.name))
        yield from items

    def score(self, item: Item, prompt: Prompt, response: Response) -> Score:
        """Generic scoring, plus Korean answer cues ("정답은 B입니다") in generated replies."""
        text = response.text
        if text is not None and (prompt.mode is Mode.GENERATE or response.logprobs is None):
            m = _KO_CUE.search(text)
            if m and scoring.parse_choice(text, prompt) is None and m.group(1).upper() in prompt.labels:
                response = response.model_copy(update={"text": m.group(1).upper()})
        return scoring.score(item, prompt, response)

    def extra_metrics(self, items: dict[str, Item], scores: list[Score]) -> dict[str, Any]:
        """Per group (culture / language): item-level accuracy and the mean over its sub-categories;
        the mean of the two groups; the chance level of the items scored."""
        scored = [(items[s.item_id], s) for s in scores if "acc" in s.metrics]
        if not scored:
            return {}
        by_group: dict[str, list[float]] = defaultdict(list)
        by_sub: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for it, s in scored:
            by_group[it.subset["category"]].append(s.metrics["acc"])
            by_sub[it.subset["category"]][it.subset["subcategory"]].append(s.metrics["acc"])
        groups: dict[str, Any] = {}
        for group, accs in sorted(by_group.items()):
            subs = {name: sum(v) / len(v) for name, v in sorted(by_sub[group].items())}
            groups[group] = {
                "acc": sum(accs) / len(accs),
                "n": len(accs),
                "subcategory_mean": sum(subs.values()) / len(subs),
                "subcategories": len(subs),
            }
        return {
            "groups": groups,
            "group_mean_acc": sum(g["acc"] for g in groups.values()) / len(groups),
            "chance_acc": sum(1.0 / len(it.options) for it, _ in scored) / len(scored),
            "five_choice_items": sum(1 for it, _ in scored if len(it.options) == 5),
        }
