"""CulturalBench (Chiu et al., 2024): human-written cultural knowledge questions about 45 regions.

Two tasks share one question pool (HF ``kellycyy/CulturalBench``, CC BY 4.0):

* ``culturalbench_easy`` (``CulturalBench-Easy.csv``, 1,227 questions): one 4-option
  multiple-choice item per question, accuracy per question.
* ``culturalbench_hard`` (``CulturalBench-Hard.csv``): each question comes as 4 rows, one per
  candidate answer, each a True / False judgement. The paper counts a question as right only if
  all four judgements are right, so :meth:`CulturalBenchHard.unit_scores` folds the rows of a
  ``question_idx`` into one unit whose ``acc`` is the minimum over its rows (``row_acc`` keeps the
  per-judgement mean as a diagnostic).

They are two tasks, not one task with a subset, because their units differ (question vs. four
judgements) and a mixed headline accuracy would mean nothing.

Files: ``--data-dir`` may be the file itself, a folder holding it, or a folder holding a copy in the
layout of the ``jshnaaa/CultureDistill`` mirror (``Cul/data/CulturalBench-Easy.csv``, as
``../shared/datasets/culturalbench``); without one the file is downloaded from HF. The CSV is read as
text: an option that reads ``None`` (Easy question 221) stays the text "None", where a pandas-based
loader (HF ``datasets``) turns it into a missing value.

Breakdowns: countries are normalised (``UK`` -> United Kingdom); ``region`` is the UN M49
continent and the ``subregion`` subset the M49 sub-region. The ``continent`` subset is the paper's
own grouping of the 45 regions into 11 (the country-distribution table of the HF card: e.g.
Mexico in South America, Iran in Middle East/West Asia), which is how the paper reports results.

Protocol: the paper asks each question zero-shot with an instruction to pick exactly one of A-D
and output nothing else, the question, and the options as ``A. ...`` lines, then compares the
reply with the gold letter; Hard asks, per candidate answer, whether it is true or false for the
question. The ``culturalbench`` templates follow that structure in our words (the official code is
not in the release). Differences: the default mode is ``letter`` (the next-token distribution over
A-D after ``Answer:``), with ``--mode generate`` for the paper's generate-and-compare protocol, whose
reply parsing is more lenient than an exact letter match ("B." or "The answer is B" count as B).

The gold letters of Easy are skewed (A on 658 of 1,227 questions), so always answering A scores
53.6%: ``extra`` reports that baseline for the items run (``always_a_acc``) next to the share of each
predicted letter. Two Easy questions (314, 671) repeat an option text under two letters; only the
gold letter counts, as in the release.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from culturelens.countries import Country, UnknownCountryError, normalize_country
from culturelens.render import Rendered, View, template
from culturelens.schema import Item, ItemKind, Mode, Score
from culturelens.tasks.base import (
    DatasetError,
    DataSource,
    Headline,
    Task,
    check_unique,
    read_csv_rows,
    register,
)

REPO_ID = "kellycyy/CulturalBench"
EASY_FILE = "CulturalBench-Easy.csv"
HARD_FILE = "CulturalBench-Hard.csv"
LETTERS = "ABCD"
HARD_ROWS = 4  # candidate answers per question in the Hard file
_EASY_REQUIRED = (
    "question_idx",
    "prompt_question",
    "prompt_option_a",
    "prompt_option_b",
    "prompt_option_c",
    "prompt_option_d",
    "answer",
    "country",
)
_HARD_REQUIRED = ("question_idx", "prompt_question", "prompt_option", "answer", "country")
_TRUTH = {"true": 0, "false": 1, "1": 0, "0": 1, "1.0": 0, "0.0": 1}
#: the paper's 11 regions (HF card, "Country distribution"), by ISO 3166-1 alpha-2 code
CONTINENTS: dict[str, tuple[str, ...]] = {
    "North America": ("CA", "US"),
    "South America": ("AR", "BR", "CL", "MX", "PE"),
    "East Europe": ("CZ", "PL", "RO", "UA", "RU"),
    "South Europe": ("ES", "IT"),
    "West Europe": ("FR", "DE", "NL", "GB"),
    "Africa": ("EG", "MA", "NG", "ZA", "ZW"),
    "Middle East/West Asia": ("IR", "IL", "LB", "SA", "TR"),
    "South Asia": ("BD", "IN", "NP", "PK"),
    "Southeast Asia": ("ID", "MY", "PH", "SG", "TH", "VN"),
    "East Asia": ("CN", "HK", "JP", "KR", "TW"),
    "Oceania": ("AU", "NZ"),
}
_CONTINENT_OF = {iso2: name for name, codes in CONTINENTS.items() for iso2 in codes}


@template(ItemKind.MULTIPLE_CHOICE, "culturalbench", generic=False)
def _easy_template(v: View) -> Rendered:
    head = f"Answer the following multiple-choice question by choosing exactly one option ({v.label_list()}).\n\n"
    if v.mode is Mode.CLOZE:
        return Rendered(f"{v.question}", "Answer:")
    body = f"{head}{v.question}\n{v.option_lines()}"
    if v.mode is Mode.GENERATE:
        return Rendered(body + f"\n\nReply with {v.label_list()} only.", "Answer:")
    return Rendered(body, "Answer:")


@template(ItemKind.LABEL, "culturalbench", generic=False)
def _hard_template(v: View) -> Rendered:
    md = v.item.metadata
    question, candidate = md.get("question"), md.get("candidate")
    if question is None or candidate is None:  # not a CulturalBench-Hard row: show the question as is
        return Rendered(f"{v.question}\nAnswer with {v.label_list()}.")
    return Rendered(
        f"Question: {question}\nProposed answer: {candidate}\n\n"
        f"Is this answer true or false for this question? Reply with {v.label_list()}."
    )


def _country(path: Path, row: dict[str, str], i: int):
    raw = (row.get("country") or "").strip()
    if not raw:
        raise DatasetError(path, "empty value", row=i, field="country")
    try:
        return normalize_country(raw)
    except UnknownCountryError as exc:
        raise DatasetError(path, str(exc), row=i, field="country") from exc


def _subsets(country: Country) -> dict[str, str]:
    """M49 sub-region, and the paper's continent when the country is one of its 45 regions."""
    out = {"subregion": country.subregion}
    if country.iso2 in _CONTINENT_OF:
        out["continent"] = _CONTINENT_OF[country.iso2]
    return out


def _nonempty(path: Path, row: dict[str, str], i: int, fields: Sequence[str]) -> None:
    for field in fields:
        if not (row.get(field) or "").strip():
            raise DatasetError(path, "empty value", row=i, field=field)


def _qid(path: Path, row: dict[str, str], i: int) -> str:
    raw = (row.get("question_idx") or "").strip()
    if not raw:
        raise DatasetError(path, "empty value", row=i, field="question_idx")
    return raw[:-2] if raw.endswith(".0") else raw  # pandas exports ints as 12.0 after a NaN


class _CulturalBench(Task):
    filename: str = ""
    default_mode = Mode.LETTER
    default_template = "culturalbench"
    source = DataSource(
        f"HF {REPO_ID} (CC BY 4.0)",
        url=f"https://huggingface.co/datasets/{REPO_ID}",
        env="CULTURELENS_CULTURALBENCH_DIR",
        folder="culturalbench",
        files=("{file}", "Cul/data/{file}", "culturalbench/{file}", "culturalbench/Cul/data/{file}"),
    )

    def _path(self) -> Path:
        from culturelens.download import fetch_hf_file

        found = self.locate(
            file=self.filename, missing=f"file not found (the {self.name} release file, from HF {REPO_ID})"
        )
        return found or fetch_hf_file(REPO_ID, self.filename)


@register
class CulturalBenchEasy(_CulturalBench):
    name = "culturalbench_easy"
    description = "CulturalBench-Easy: 4-option cultural knowledge questions about 45 regions; accuracy"
    protocol = (
        "Zero-shot: an instruction to pick exactly one of A-D, the question and the options as A. ... lines "
        "(the paper's structure, our words); the next-token distribution over A-D after Answer: (--mode "
        "generate for the paper's generate-and-compare). Accuracy per question; always-A scores 53.6%."
    )
    headline = Headline("acc", "accuracy (share correct)")
    filename = EASY_FILE

    def load(self) -> Iterator[Item]:
        path = self._path()
        items: list[Item] = []
        seen: dict[str, int] = {}
        for i, row in read_csv_rows(path, _EASY_REQUIRED):
            qid = _qid(path, row, i)
            check_unique(path, seen, qid, i, "question_idx", what="question_idx")
            _nonempty(path, row, i, ("prompt_question", *(f"prompt_option_{c}" for c in "abcd")))
            answer = (row.get("answer") or "").strip().upper()
            if len(answer) != 1 or answer not in LETTERS:
                raise DatasetError(
                    path, f"answer {row.get('answer')!r} is not one of A, B, C, D", row=i, field="answer"
                )
            country = _country(path, row, i)
            items.append(
                Item(
                    id=f"cb-easy:{qid}",
                    task=self.name,
                    kind=ItemKind.MULTIPLE_CHOICE,
                    question=row["prompt_question"].strip(),
                    options=[(row[f"prompt_option_{c}"] or "").strip() for c in "abcd"],
                    correct=[LETTERS.index(answer)],
                    country=country,
                    group=f"cb:{qid}",
                    subset=_subsets(country),
                    metadata={
                        "question_idx": qid,
                        "data_idx": row.get("data_idx", ""),
                        "country_raw": row["country"],
                    },
                )
            )
        yield from items

    def extra_metrics(self, items: dict[str, Item], scores: list[Score]) -> dict[str, Any]:
        """The always-A baseline of the items run, and how often each letter is gold / predicted
        (original option order)."""
        if not scores:
            return {}
        gold = [items[s.item_id].correct[0] for s in scores]
        preds = [s.prediction for s in scores if isinstance(s.prediction, int)]
        return {
            "always_a_acc": sum(1 for g in gold if g == 0) / len(gold),
            "gold_share": {c: sum(1 for g in gold if g == k) / len(gold) for k, c in enumerate(LETTERS)},
            "pred_share": (
                {c: sum(1 for p in preds if p == k) / len(preds) for k, c in enumerate(LETTERS)}
                if preds
                else None
            ),
        }


@register
class CulturalBenchHard(_CulturalBench):
    name = "culturalbench_hard"
    description = (
        "CulturalBench-Hard: each candidate answer judged True / False; a question counts only if all four "
        "judgements are right"
    )
    protocol = (
        "Each of a question's four candidate answers is judged True / False zero-shot; the question counts "
        "as right only if all four judgements are (row_acc keeps the per-judgement mean)."
    )
    headline = Headline("acc", "accuracy (all four judgements right)")
    metrics = {"row_acc": "share of a question's four judgements that are right"}
    filename = HARD_FILE
    #: the unit scored is a question, right only if all four of its rows are (for aggregate.baselines)
    unit_all_of_group = True

    def load(self) -> Iterator[Item]:
        path = self._path()
        items: list[Item] = []
        first_row: dict[str, int] = {}
        by_q: dict[str, list[Item]] = defaultdict(list)
        for i, row in read_csv_rows(path, _HARD_REQUIRED):
            qid = _qid(path, row, i)
            _nonempty(path, row, i, ("prompt_question", "prompt_option"))
            truth = (row.get("answer") or "").strip().lower()
            if truth not in _TRUTH:
                raise DatasetError(
                    path, f"answer {row.get('answer')!r} is not True / False", row=i, field="answer"
                )
            country = _country(path, row, i)
            if qid in first_row:
                ref = by_q[qid][0]
                if ref.country != country:
                    raise DatasetError(
                        path,
                        f"question {qid} has rows for {ref.country.name if ref.country else '?'} and {country.name}",
                        row=i,
                        field="country",
                    )
            else:
                first_row[qid] = i
            k = len(by_q[qid])
            question = row["prompt_question"].strip()
            candidate = row["prompt_option"].strip()
            item = Item(
                id=f"cb-hard:{qid}:{k}",
                task=self.name,
                kind=ItemKind.LABEL,
                question=f"Question: {question}\nProposed answer: {candidate}\nIs this answer true or false?",
                options=["True", "False"],
                correct=[_TRUTH[truth]],
                country=country,
                group=f"cb:{qid}",
                subset=_subsets(country),
                metadata={
                    "question_idx": qid,
                    "question": question,
                    "candidate": candidate,
                    "data_idx": row.get("data_idx", ""),
                    "country_raw": row["country"],
                },
            )
            by_q[qid].append(item)
            items.append(item)
        for qid, rows in by_q.items():
            if len(rows) != HARD_ROWS:
                raise DatasetError(
                    path,
                    f"question {qid} has {len(rows)} rows, expected {HARD_ROWS} (one per option)",
                    row=first_row[qid],
                    field="question_idx",
                )
        yield from items

    def items(self, limit: int | None = None, countries: Sequence[str] | None = None) -> list[Item]:
        """``limit`` counts questions (the unit scored), each with all four of its rows; the
        ``limit_mode`` / ``limit_seed`` options apply as in :meth:`Task.apply_limit`."""
        rows = super().items(limit=None, countries=countries)
        return self.apply_limit(rows, limit, unit="groups")

    def unit_scores(self, items: dict[str, Item], scores: list[Score]) -> list[tuple[Item, Score]]:
        """One unit per question: right only if every judgement of the question is right."""
        groups: dict[str, list[Score]] = {}
        for s in scores:
            groups.setdefault(items[s.item_id].group or s.item_id, []).append(s)
        units: list[tuple[Item, Score]] = []
        for group, ss in groups.items():
            first = items[ss[0].item_id]
            if len(ss) != HARD_ROWS:
                raise ValueError(
                    f"{self.name}: question {group} has {len(ss)} scored rows, expected {HARD_ROWS}"
                )
            row_acc = [s.metrics.get("acc", 0.0) for s in ss]
            metrics = {"acc": min(row_acc), "row_acc": sum(row_acc) / len(row_acc)}
            if any("invalid" in s.metrics for s in ss):
                metrics["invalid"] = max(s.metrics.get("invalid", 0.0) for s in ss)
            unit_item = first.model_copy(
                update={
                    "id": f"cb-hard:{first.metadata['question_idx']}",
                    "question": first.metadata["question"],
                }
            )
            units.append(
                (
                    unit_item,
                    Score(
                        item_id=unit_item.id,
                        task=first.task,
                        variant=ss[0].variant,
                        mode=ss[0].mode,
                        metrics=metrics,
                        prediction=None,
                        valid=all(s.valid for s in ss),
                    ),
                )
            )
        return units

    def extra_metrics(self, items: dict[str, Item], scores: list[Score]) -> dict[str, Any]:
        """Per-judgement accuracy and how often the model says True, against how often True is right."""
        if not scores:
            return {}
        preds = [s.prediction for s in scores if isinstance(s.prediction, int)]
        gold_true = sum(1 for s in scores if items[s.item_id].correct == [0])
        return {
            "judgements": len(scores),
            "questions": len({items[s.item_id].group for s in scores}),
            "judgement_acc": sum(s.metrics.get("acc", 0.0) for s in scores) / len(scores),
            "pred_true_share": sum(1 for p in preds if p == 0) / len(preds) if preds else None,
            "gold_true_share": gold_true / len(scores),
        }
