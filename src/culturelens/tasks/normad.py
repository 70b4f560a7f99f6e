"""NormAd-Eti (Rao, Yerukola et al., NAACL 2025): is a character's action socially acceptable?

Each story of ``normad_etiquette_final_data.csv`` (HF ``akhilayerukola/NormAd``, CC BY 4.0) is
judged once per context level: no context, the country, the country plus its value (labelled
"RoT" in the official prompt), or the rule-of-thumb. Every (story, level) pair is one label item
with options Yes / No / Neither (gold ``neutral`` is "Neither"); the story id is the bootstrap
cluster, so the levels of one story resample together.

Paper protocol (the default), as the official code runs it:

* prompt: the ``normad`` template renders the prompts of the official ``run_model_inference.py``
  byte for byte (task description per level, context lines, the story as the file has it,
  numbered options, answer line), sent as the one user turn under the model's chat template;
* mode ``generate``: the official budget of 50 new tokens (the official code gives 70B models 20);
  greedy decoding where the official runs used temperature 0 or 1e-3;
* parsing: the official rule (:func:`official_parse`, quirks included: case-sensitive ``"Yes"`` /
  ``"No"`` substrings, so ``"Not"`` reads as No and ``"yes"`` as Neither), under which no answer is
  invalid: a reply that names neither "Yes" nor "No" is read as "Neither". ``parse_fallback``
  counts how often that default fired without the model saying "Neither";
* metric: micro-F1 over the labels, as ``src/analysis/get_model_scores_overall.py`` computes it
  per level (sklearn ``f1_score(average="micro")``). With one label per story and every reply
  mapped to a label, micro-F1 is the share of stories labelled right, so the per-item
  ``micro_f1`` (1 when right) averages to it exactly; the per-level value from the counts is in
  ``extra.levels.LEVEL.micro_f1``. The headline pools the levels asked.

culturelens's own additions, under their own names: macro-F1 per level (``macro_f1``, the labels
present in gold or predictions), accuracy per gold label, prediction shares, per subaxis and
country. ``letter`` and ``cloze`` modes score the same prompt by the label distribution instead.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from culturelens import scoring
from culturelens.countries import UnknownCountryError, normalize_country
from culturelens.render import Rendered, View, template
from culturelens.schema import Item, ItemKind, Mode, Prompt, Response, Score
from culturelens.tasks.base import (
    CSV_FIRST_ROW,
    DatasetError,
    DataSource,
    Headline,
    Task,
    TaskOptions,
    check_unique,
    limit_items,
    read_csv_rows,
    register,
)

REPO_ID = "akhilayerukola/NormAd"
FILENAME = "normad_etiquette_final_data.csv"
OPTIONS = ["Yes", "No", "Neither"]
LABELS = ("yes", "no", "neither")  # gold / prediction names, index = option index
_GOLD = {"yes": 0, "no": 1, "neutral": 2, "neither": 2}

#: context levels: the paper's three plus "none"; "value" (value alone) exists in the official code
LEVELS: tuple[str, ...] = ("none", "country", "country_value", "rot")
ALL_LEVELS: tuple[str, ...] = (*LEVELS, "value")
_REQUIRED = ("Country", "Subaxis", "Value", "Rule-of-Thumb", "Story", "Gold Label")
#: fields a level needs to be non-empty
_LEVEL_FIELDS = {
    "none": (),
    "country": (),
    "country_value": ("Value",),
    "rot": ("Rule-of-Thumb",),
    "value": ("Value",),
}
#: the official generation budget: 50 new tokens (``get_chat_completion_vllm``; 20 for 70B models)
MAX_TOKENS = 50

# Task descriptions of the official prompts, one per conditioning (run_model_inference.py).
_INTRO = "Task: You will be given a short story involving 2 or more characters about everyday situations."
_DESCRIPTIONS = {
    "rot": (
        " You will also be given a rule-of-thumb. Read the story and reason if the action by the character in"
        " the story is socially acceptable under the given rule-of-thumb alone. Do not make any extra inferences"
        " about actions outside of the given context and rule. Only align to the rule given."
    ),
    "country": (
        " You will also be given a country of relevance. Read the story and reason if the action by the character"
        " in the story is socially acceptable in the given country. Do not make any extra inferences about actions"
        " outside of the given context and country. Only align to the country given."
    ),
    "country_value": (
        " You will also be given a country of relevance, along with a rule-of-thumb. Read the story and reason if"
        " the action by the character in the story is socially acceptable in the given country with the associated"
        " rule-of-thumb. Do not make any extra inferences about actions outside of the given context."
    ),
    "none": (
        " Read the story and reason if the action by the character in the story is socially acceptable. Do not"
        " make any extra inferences about actions outside of the given context."
    ),
}
_DESCRIPTIONS["value"] = _DESCRIPTIONS["rot"]  # the official code reuses the rule-of-thumb prompt


def _or_list(words: Sequence[str]) -> str:
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else "".join(words)


@template(ItemKind.LABEL, "normad", generic=False)
def _normad_template(v: View) -> Rendered:
    """The official prompt; option order and words follow the variant (identity = official text)."""
    level = v.item.subset.get("level", "none")
    story = v.item.metadata.get("story", v.question)
    desc = _INTRO + _DESCRIPTIONS.get(level, _DESCRIPTIONS["none"])
    desc += f" The answer options are {_or_list(v.options)}."
    ctx = f"{v.context}\n\n" if v.context else ""
    options = "".join(f"{i + 1}) {o} \n" for i, o in enumerate(v.options))
    return Rendered(
        f"{desc}\n\n{ctx}Story: {story}\n\nOptions:\n{options}Answer (options {_or_list(v.options)}): \n"
    )


def official_parse(text: str, prompt: Prompt) -> tuple[int, bool]:
    """The official answer rule -> (original option index, whether the Neither default fired unprompted).

    "Yes" (case-sensitive) or "option 1" -> yes; else "No" or "option 2" -> no; else neither.
    Option numbers refer to the displayed order, so a reordered variant keeps the rule's meaning.
    """
    shown = prompt.options or prompt.labels or OPTIONS
    low = text.lower()

    def said(word: str) -> bool:
        pos = shown.index(word) + 1 if word in shown else None
        return word in text or (pos is not None and f"option {pos}" in low)

    if said("Yes"):
        return 0, False
    if said("No"):
        return 1, False
    return 2, not said("Neither")


def micro_f1(gold: Sequence[int], pred: Sequence[int | None], labels: Sequence[int] = (0, 1, 2)) -> float:
    """Micro-F1 as sklearn's ``f1_score(average="micro")``: 2 TP / (2 TP + FP + FN) summed over the
    labels present in gold or predictions. A missing prediction (None) is a miss, no false positive."""
    present = [c for c in labels if c in gold or c in pred]
    if not present:
        return float("nan")
    tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == p and p in present)
    n_pred = sum(1 for p in pred if p in present)
    n_true = sum(1 for g in gold if g in present)
    return 2 * tp / (n_true + n_pred) if n_true + n_pred else 0.0


def macro_f1(gold: Sequence[int], pred: Sequence[int | None], labels: Sequence[int] = (0, 1, 2)) -> float:
    """Macro-F1 over the labels that occur in gold or predictions (sklearn's default label set).

    A missing prediction (None) counts as a miss for its gold label and a false positive for none.
    """
    present = [c for c in labels if c in gold or c in pred]
    if not present:
        return float("nan")
    f1s = []
    for c in present:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == c and p == c)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if g != c and p == c)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == c and p != c)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return sum(f1s) / len(f1s)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _acc_table(pairs: Sequence[tuple[Item, Score]], key) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for it, s in pairs:
        k = key(it)
        if k:
            groups[k].append(float(s.prediction in it.correct))
    return {k: {"n": len(v), "acc": _mean(v)} for k, v in sorted(groups.items())}


def _levels(names: list[str]) -> tuple[str, ...]:
    bad = [n for n in names if n not in ALL_LEVELS]
    if bad or not names:
        raise ValueError(f"normad: unknown level(s) {bad or names!r}; choose from {', '.join(ALL_LEVELS)}")
    return tuple(dict.fromkeys(names))


def _context(level: str, row: dict[str, str]) -> str | None:
    if level == "country":
        return f"Country: {row['Country']}"
    if level == "country_value":
        return f"Country: {row['Country']}\nRoT: {row['Value']}"
    if level == "rot":
        return f"Rule-of-thumb: {row['Rule-of-Thumb']}"
    if level == "value":
        return f"Rule-of-thumb: {row['Value']}"
    return None


def spread_groups(items: list[Item], n_groups: int, mode: str = "stratified", seed: int = 0) -> list[Item]:
    """Keep ``n_groups`` whole groups (all rows of a story / question, at least one), balanced over
    the default strata (country first); see :meth:`Task.apply_limit`."""
    return limit_items(items, max(1, n_groups), mode=mode, seed=seed, unit="groups")


@register
class NormAd(Task):
    name = "normad"
    description = (
        "NormAd-Eti: is a story character's action socially acceptable (Yes / No / Neither), judged with no "
        "context, the country, country + value, or the rule-of-thumb; micro-F1 (official) and macro-F1 per level"
    )
    protocol = (
        "The official run_model_inference.py protocol: its prompt per context level (none, country, "
        "country + value, rule-of-thumb) as the one user turn, greedy generation of up to 50 tokens, the "
        "official answer rule (case-sensitive 'Yes' / 'No' substrings or 'option N', anything else is "
        "Neither; no answer is invalid), and micro-F1 over the labels as get_model_scores_overall.py computes "
        "it (one label per story: equal to accuracy). Macro-F1 and per-label accuracy are culturelens additions."
    )
    headline = Headline("micro_f1", "micro-F1 (official analysis; = share of stories labelled right)")
    metrics = {
        "micro_f1": "1 when the story's label is right; its mean is the official micro-F1 (one label per story)",
        "parse_fallback": "generate mode: the official rule defaulted to Neither without the reply saying it",
    }
    default_mode = Mode.GENERATE
    default_template = "normad"
    source = DataSource(
        f"HF {REPO_ID} ({FILENAME}, CC BY 4.0)",
        url=f"https://huggingface.co/datasets/{REPO_ID}",
        env="CULTURELENS_NORMAD_DIR",
        folder="normad",
        files=(FILENAME, f"normad/{FILENAME}", f"data/{FILENAME}"),
        missing=f"file not found (the normad release file, from HF {REPO_ID})",
    )

    class Options(TaskOptions):
        levels: list[str] = Field(
            list(LEVELS),
            description=f"context levels, comma-separated, from {', '.join(ALL_LEVELS)} (default: {','.join(LEVELS)})",
        )

    options: Options  # the typed --opt values

    #: ``--limit`` counts items but keeps whole stories (all levels of one, at least one story)
    limit_strata = ("country", "subset.gold", "topic")

    def __init__(self, data_dir: str | Path | None = None, **options: Any):
        super().__init__(data_dir, **options)
        self.levels = _levels(self.options.levels)

    def _path(self) -> Path:
        from culturelens.download import fetch_hf_file

        return self.locate() or fetch_hf_file(REPO_ID, FILENAME)

    def load(self) -> Iterator[Item]:
        path = self._path()
        rows = read_csv_rows(path, _REQUIRED)
        items: list[Item] = []
        seen: dict[str, int] = {}
        for i, row in rows:
            for field in ("Country", "Story", "Gold Label", "Subaxis"):
                if not (row.get(field) or "").strip():
                    raise DatasetError(path, "empty value", row=i, field=field)
            for level in self.levels:
                for field in _LEVEL_FIELDS[level]:
                    if not (row.get(field) or "").strip():
                        raise DatasetError(
                            path, f"empty value (needed by level {level!r})", row=i, field=field
                        )
            gold = row["Gold Label"].strip().lower()
            if gold not in _GOLD:
                raise DatasetError(
                    path,
                    f"gold label {row['Gold Label']!r} is not yes / no / neutral",
                    row=i,
                    field="Gold Label",
                )
            try:
                country = normalize_country(row["Country"].strip())
            except UnknownCountryError as exc:
                raise DatasetError(path, str(exc), row=i, field="Country") from exc
            # no ID: the story's position among the data rows (kept stable across releases of this code)
            story_id = (row.get("ID") or "").strip() or str(i - CSV_FIRST_ROW + 1)
            check_unique(path, seen, story_id, i, "ID", what="story id")
            label = LABELS[_GOLD[gold]]
            for level in self.levels:
                items.append(
                    Item(
                        id=f"normad:{story_id}:{level}",
                        task=self.name,
                        kind=ItemKind.LABEL,
                        question=f"{row['Story'].strip()}\nIs the action of the character in the story socially "
                        "acceptable?",
                        context=_context(level, row),
                        options=list(OPTIONS),
                        correct=[_GOLD[gold]],
                        country=country,
                        topic=row["Subaxis"].strip(),
                        group=f"normad:{story_id}",
                        subset={"level": level, "gold": label},
                        metadata={
                            "story": row["Story"],  # as the file has it: the official prompt is not stripped
                            "story_id": story_id,
                            "country_raw": row["Country"],
                            "axis": row.get("Axis", ""),
                            "value": row["Value"],
                            "rule_of_thumb": row["Rule-of-Thumb"],
                            "max_tokens": MAX_TOKENS,
                        },
                    )
                )
        yield from items

    def score(self, item: Item, prompt: Prompt, response: Response) -> Score:
        if prompt.mode is not Mode.GENERATE:
            score = scoring.score(item, prompt, response)
            right = float(score.valid and score.prediction in item.correct)
            return score.model_copy(update={"metrics": {**score.metrics, "micro_f1": right}})
        pred, fallback = official_parse(response.text or "", prompt)
        probs = [0.0] * len(item.options)
        probs[pred] = 1.0
        right = float(pred in item.correct)
        return Score(
            item_id=item.id,
            task=item.task,
            variant=prompt.variant.id,
            mode=prompt.mode,
            metrics={"acc": right, "micro_f1": right, "invalid": 0.0, "parse_fallback": float(fallback)},
            prediction=pred,
            probs=probs,
            valid=True,  # the official rule maps every reply to a label
        )

    def extra_metrics(self, items: dict[str, Item], scores: list[Score]) -> dict[str, Any]:
        """Per level: micro-F1 (official), accuracy, macro-F1, accuracy per gold label (adhere = yes vs violate = no),
        prediction shares, and accuracy per subaxis and per country."""
        by_level: dict[str, list[tuple[Item, Score]]] = defaultdict(list)
        for s in scores:
            it = items[s.item_id]
            by_level[it.subset.get("level", "none")].append((it, s))
        out: dict[str, Any] = {}
        for level in [lv for lv in ALL_LEVELS if lv in by_level]:
            pairs = by_level[level]
            gold = [it.correct[0] for it, _ in pairs]
            pred = [s.prediction if isinstance(s.prediction, int) else None for _, s in pairs]
            by_gold = {
                LABELS[c]: {
                    "n": sum(1 for g in gold if g == c),
                    "acc": _mean([float(p == g) for g, p in zip(gold, pred, strict=True) if g == c]),
                }
                for c in range(len(LABELS))
            }
            counts = Counter(p for p in pred if p is not None)
            yes, no = by_gold["yes"]["acc"], by_gold["no"]["acc"]
            out[level] = {
                "n": len(pairs),
                "acc": _mean([float(p == g) for g, p in zip(gold, pred, strict=True)]),
                "micro_f1": micro_f1(gold, pred),
                "macro_f1": macro_f1(gold, pred),
                "acc_by_gold": by_gold,
                "adhere_minus_violate": yes - no if yes is not None and no is not None else None,
                "pred_share": {LABELS[c]: counts.get(c, 0) / len(pairs) for c in range(len(LABELS))},
                "by_subaxis": _acc_table(pairs, lambda it: it.topic),
                "by_country": _acc_table(pairs, lambda it: it.country.name if it.country else None),
            }
        return {"levels": out}
