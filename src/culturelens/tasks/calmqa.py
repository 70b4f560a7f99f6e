"""CaLMQA (Arora et al., 2024): culturally specific long-form questions in many languages, written by
native speakers or collected from local forums, plus culturally agnostic ELI5 questions.

Protocol (the paper's automatic checks, and a judge): the model answers the bare question in its
language (greedy generation). Then

* ``lang_match``: the answer is written in the question's language, by language identification
  (``langid``, ``pip install 'culturelens[judge]'``; the paper used polyglot / langid). Languages that
  langid does not know (Afar, Balochi, Fijian, Hiligaynon, Papiamento, Samoan, Tongan, Tswana, Wolof;
  Kirundi is scored as langid's Kinyarwanda, a close relative) get no ``lang_match``; ``extra.lang_id``
  lists them. Checkable answers in those languages are counted in ``n`` only where checkable;
* ``repetition``: the share of repeated token 4-grams in the answer (whitespace tokens; characters for
  Chinese and Japanese). The paper counted repeated n-grams with the o200k tokenizer; ours needs no
  tokenizer download, so its values are comparable within culturelens, not with the paper's table;
* ``vs_human``: a pairwise judge preference of the model's answer over the human answer where the
  release has one (1 better, 0.5 tie, 0 worse; asked in both orders, position-swap consistency in the
  ``judge`` block). The paper's human quality evaluation is not in the release.

Specific vs agnostic: ``subset:type`` breaks every metric down by question type, and
``extra.specific_vs_agnostic`` gives the gap per language where both exist. The copy in
``../shared/datasets/calmqa`` has the agnostic questions in English only (the 22 translated agnostic
files were left out), so the gap is English-only there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from culturelens.judging import JudgeAsk, pairwise_ask
from culturelens.render import Rendered, View, template
from culturelens.schema import Item, ItemKind, Mode, Prompt, Response, Score
from culturelens.tasks.base import (
    DatasetError,
    DataSource,
    Headline,
    check_unique,
    no_items,
    read_json,
    register,
)
from culturelens.tasks.judged import JudgedBase, JudgedOptions

#: the release's language names -> BCP-47
LANGUAGES: dict[str, str] = {
    "Afar": "aa",
    "Arabic": "ar",
    "Balochi": "bal",
    "Chinese": "zh",
    "English": "en",
    "Faroese": "fo",
    "Fijian": "fj",
    "German": "de",
    "Hebrew": "he",
    "Hiligaynon": "hil",
    "Hindi": "hi",
    "Hungarian": "hu",
    "Japanese": "ja",
    "Kirundi": "rn",
    "Korean": "ko",
    "Papiamento": "pap",
    "Pashto": "ps",
    "Russian": "ru",
    "Samoan": "sm",
    "Spanish": "es",
    "Tongan": "to",
    "Tswana": "tn",
    "Wolof": "wo",
}
#: langid codes for languages it knows only through a close relative
LANGID_ALIASES = {"rn": "rw"}
NGRAM = 4
_CHAR_TOKENS = ("zh", "ja")
CRITERIA = (
    "Judge which answer better answers the question for someone from the culture it is about: factually "
    "right, complete, specific to that culture, and written in the question's language."
)


def langid_codes() -> set[str] | None:
    """The languages langid knows, or None when langid is not installed."""
    try:
        from langid.langid import LanguageIdentifier, model
    except ImportError:
        return None
    return set(LanguageIdentifier.from_modelstring(model, norm_probs=False).nb_classes)


_IDENTIFIER: Any = None


def identify(text: str) -> str:
    """langid's language code for ``text`` (its model loads once)."""
    global _IDENTIFIER
    if _IDENTIFIER is None:
        from langid.langid import LanguageIdentifier, model

        _IDENTIFIER = LanguageIdentifier.from_modelstring(model, norm_probs=False)
    return str(_IDENTIFIER.classify(text)[0])


def repetition(text: str, lang: str) -> float:
    """Share of the answer's token 4-grams that repeat an earlier one (0 for fewer than 4 tokens)."""
    tokens = (
        [c for c in text if not c.isspace()] if lang in _CHAR_TOKENS else re.findall(r"\w+|[^\w\s]", text)
    )
    grams = [tuple(tokens[i : i + NGRAM]) for i in range(len(tokens) - NGRAM + 1)]
    return (len(grams) - len(set(grams))) / len(grams) if grams else 0.0


def _translation(obj: dict[str, Any], lang: str) -> Any:
    """``obj["translations"][lang]["text"]``, or None where a level is missing or not an object."""
    translations = obj.get("translations")
    entry = translations.get(lang) if isinstance(translations, dict) else None
    return entry.get("text") if isinstance(entry, dict) else None


def _entries_where(keypath: Sequence[str | int]) -> tuple[int | str | None, str | None]:
    """Location of a JSON fault inside ``entries``: the entry (``entries[i]``) is the row."""
    if len(keypath) >= 2 and keypath[0] == "entries" and isinstance(keypath[1], int):
        rest = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keypath[2:]).lstrip(".")
        return f"entries[{keypath[1]}]", rest or None
    return (keypath[0], None) if keypath else (None, None)


@template(ItemKind.OPEN, "calmqa", generic=False)
def _calmqa_prompt(v: View) -> Rendered:
    return Rendered(v.question.strip())


@register
class CaLMQA(JudgedBase):
    name = "calmqa"
    description = (
        "CaLMQA long-form culturally specific questions (19 languages) and agnostic ELI5 ones: answer "
        "language, repetition, judge preference vs the human answer; specific vs agnostic gap"
    )
    protocol = (
        "The bare question, answered by greedy generation in long form. Automatic checks: the answer is in "
        "the question's language (langid), the share of repeated 4-grams. Where the release has a human "
        "answer, a pairwise judge compares the model's answer with it in both orders. Broken down by language "
        "and by culturally specific vs agnostic questions."
    )
    headline = Headline("lang_match", "share of answers written in the question's language")
    metrics = {
        "repetition": "share of repeated token 4-grams in the answer (lower is better)",
        "vs_human": "judge: the answer preferred over the human answer (1 better, 0.5 tie, 0 worse)",
        "judge_invalid": "share of the judge's verdicts on the answer that could not be read",
    }
    default_mode = Mode.GENERATE
    default_template = "calmqa"
    source = DataSource(
        "2015aroras/CaLMQA (HF card: MIT), data/datasets/dataset-{specific,agnostic}-*.json",
        url="https://github.com/2015aroras/CaLMQA",
        env="CULTURELENS_CALMQA_DIR",
        folder="calmqa",
        files=("data/datasets", "datasets", "."),
        missing="CaLMQA folder not found (expected data/datasets/dataset-specific-*.json)",
    )
    limit_strata = ("language", "subset.type", "topic")

    class Options(JudgedOptions):
        pass

    options: Options

    def load(self) -> Iterator[Item]:
        base = self.data_path()
        if base is None:
            raise DatasetError("calmqa", "no local CaLMQA copy: give --data-dir (2015aroras/CaLMQA)")
        folder = base
        for sub in ("data/datasets", "datasets"):
            if (base / sub).is_dir():
                folder = base / sub
                break
        files = [base] if base.is_file() else sorted(folder.glob("dataset-*.json"))
        if not files:
            raise DatasetError(folder, "no dataset-specific-*.json / dataset-agnostic-*.json files")
        seen: dict[str, Any] = {}
        items: list[Item] = []
        for path in files:
            kind = "agnostic" if "agnostic" in path.name else "specific"
            items.extend(self._file_items(path, kind, seen))
        yield from items

    def _file_items(self, path: Path, kind: str, seen: dict[str, Any]) -> list[Item]:
        data = read_json(path, _entries_where)
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise DatasetError(path, 'expected an object {"entries": [...]}', field="entries")
        if not data["entries"]:
            raise no_items(path, "no entries")
        out = []
        for i, entry in enumerate(data["entries"]):
            row = f"entries[{i}]"
            q = entry.get("question") if isinstance(entry, dict) else None
            if not isinstance(q, dict):
                raise DatasetError(path, "missing question object", row=row, field="question")
            name, lang_name = q.get("name"), q.get("language")
            if not isinstance(name, str) or not name.strip():
                raise DatasetError(path, "missing question name", row=row, field="question.name")
            if not isinstance(lang_name, str) or lang_name not in LANGUAGES:
                raise DatasetError(
                    path, f"unknown language {lang_name!r}", row=row, field="question.language"
                )
            text = _translation(q, lang_name)
            if not isinstance(text, str) or not text.strip():
                raise DatasetError(
                    path,
                    f"no {lang_name} text for the question",
                    row=row,
                    field=f"question.translations.{lang_name}.text",
                )
            answers = entry.get("answers", [])
            if not isinstance(answers, list):
                raise DatasetError(path, "must be a list", row=row, field="answers")
            human = None
            for j, ans in enumerate(answers):
                state = ans.get("prompting_state") if isinstance(ans, dict) else None
                if isinstance(state, dict) and state.get("model_name") == "Human":
                    htext = _translation(ans, lang_name)
                    if not isinstance(htext, str):
                        raise DatasetError(
                            path,
                            f"human answer without {lang_name} text",
                            row=row,
                            field=f"answers[{j}].translations",
                        )
                    human = htext.strip() or None
                    break
            check_unique(path, seen, name, row, "question.name", what="question name")
            lang = LANGUAGES[lang_name]
            out.append(
                Item(
                    id=name,
                    task=self.name,
                    kind=ItemKind.OPEN,
                    question=text.strip(),
                    language=lang,
                    topic=str(q.get("category") or "") or None,
                    subset={"type": kind, "source": str(q.get("source") or "")},
                    metadata={
                        "human_answer": human,
                        "human_evaluated": bool(q.get("human_evaluated")),
                        "language_name": lang_name,
                        "max_tokens": self.options.max_tokens,
                    },
                )
            )
        return out

    def score(self, item: Item, prompt: Prompt, response: Response) -> Score:
        text = response.text or ""
        metrics = {"repetition": repetition(text, item.language)}
        codes = langid_codes()
        want = LANGID_ALIASES.get(item.language, item.language)
        if codes is not None and want in codes:
            metrics["lang_match"] = float(bool(text.strip()) and identify(text) == want)
        return Score(
            item_id=item.id,
            task=item.task,
            variant=prompt.variant.id,
            mode=prompt.mode,
            metrics=metrics,
            prediction=text,
            valid=bool(text.strip()),
        )

    def judge_asks(
        self, item: Item, prompt: Prompt, response: Response, score: Score, wording: str
    ) -> list[JudgeAsk]:
        human = item.metadata.get("human_answer")
        if not human:
            return []
        return [pairwise_ask("vs_human", wording, item.question, response.text or "", str(human), CRITERIA)]

    def extra_metrics(self, items: dict[str, Item], scores: list[Score]) -> dict[str, Any]:
        """Specific - agnostic gap per language (where both exist), and which languages langid checks."""
        cells: dict[str, dict[str, dict[str, list[float]]]] = {}
        for s in scores:
            it = items[s.item_id]
            for m, v in s.metrics.items():
                cells.setdefault(it.language, {}).setdefault(it.subset["type"], {}).setdefault(m, []).append(
                    v
                )
        gap: dict[str, Any] = {}
        for lang, by_type in sorted(cells.items()):
            if "specific" in by_type and "agnostic" in by_type:
                gap[lang] = {
                    m: {
                        "specific": sum(by_type["specific"][m]) / len(by_type["specific"][m]),
                        "agnostic": sum(by_type["agnostic"][m]) / len(by_type["agnostic"][m]),
                        "gap": sum(by_type["specific"][m]) / len(by_type["specific"][m])
                        - sum(by_type["agnostic"][m]) / len(by_type["agnostic"][m]),
                        "n": [len(by_type["specific"][m]), len(by_type["agnostic"][m])],
                    }
                    for m in sorted(set(by_type["specific"]) & set(by_type["agnostic"]))
                }
        codes = langid_codes()
        langs = sorted({it.language for it in items.values()})
        return {
            "specific_vs_agnostic": gap,
            "lang_id": {
                "tool": "langid" if codes is not None else "not installed (pip install 'culturelens[judge]')",
                "unchecked_languages": [
                    g for g in langs if codes is None or LANGID_ALIASES.get(g, g) not in codes
                ],
            },
        }
