"""CARE (Guo et al., 2025, "Aligning Language Models for Regional Cultural Awareness"): native-language
questions about Arabic, Chinese and Japanese cultures, each with a gold answer written by a native
speaker, in five culture types (cultural commonsense, social norms, opinion, cultural entities,
literacy) and four geographic scopes.

Protocol, as the paper and its repository (Guochry/CARE) describe it: the model answers the bare
question in its language (greedy generation); an LLM judge rates the answer from 1 to 10, replying
``Rating: [[n]]``, against the gold answer, with a rubric chosen by ``culture_type``:

* cultural entities, opinion: accuracy, depth, relevance;
* social norms, cultural commonsense: accuracy against the gold answer, comprehensiveness (nuances
  and exceptions of the cultural context), relevance to that context;
* literacy: accuracy, interpretation of the work, textual evidence, relevance.

The repository's prompt files for the last two look swapped by name (``literacy.txt`` holds the
gold-answer rubric, ``norms_commonsense.txt`` the literary one; see the data README); this module
assigns the rubrics by what they say, as above. The rubric texts are culturelens's own wording of
those criteria and rating bands (the prompt files are not part of the data release); the ``paper``
judge wording keeps their structure (commentary first, then ``Rating: [[n]]``), ``brief`` asks for the
rating alone. Scores are averaged per language x culture type (``extra.by_language_culture_type``)
and broken down by language, culture type (``topic``) and geographic scope (``subset:scope``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from culturelens.countries import normalize_country
from culturelens.judging import JudgeAsk, rating_ask
from culturelens.render import Rendered, View, template
from culturelens.schema import Item, ItemKind, Mode, Prompt, Response, Score
from culturelens.tasks.base import DatasetError, DataSource, Headline, no_items, read_json, register
from culturelens.tasks.judged import JudgedBase, JudgedOptions

#: release file stem -> (BCP-47 language, country the culture is filed under)
LANGUAGES: dict[str, tuple[str, str | None]] = {
    "Arabic": ("ar", None),  # "Native (Arab)": a culture, not one country
    "Chinese": ("zh", "China"),
    "Japanese": ("ja", "Japan"),
}
CULTURE_TYPES = ("Cultural commonsense", "Social norms", "Opinion", "Cultural entities", "Literacy")
SCOPES = ("Nationwide", "Sub-nationwide", "Continent-wide", "Worldwide")
_BANDS = (
    "Use the whole scale: 1-2 poor (wrong, missing the point, or irrelevant), 3-4 below average (partly "
    "right, important gaps or errors), 5-6 average (mostly right but shallow or missing details), 7-8 good "
    "(right and detailed, small gaps), 9-10 excellent (right, thorough, fully relevant)."
)
#: rubric per culture type, by what the rubric asks (the upstream file names of two are swapped)
RUBRICS: dict[str, str] = {
    "Cultural entities": "Weigh: accuracy (is it factually right and current?), depth (does it show real "
    "understanding, with explanation and context?), relevance (does it keep to the question?). " + _BANDS,
    "Opinion": "Weigh: accuracy (is it factually right and current?), depth (does it show real understanding, "
    "with explanation and context?), relevance (does it keep to the question?). " + _BANDS,
    "Social norms": "Be strict. Weigh: accuracy (measured against the reference answer: is it right for the "
    "real cultural context?), comprehensiveness (does it explain clearly and note nuances or exceptions in that "
    "culture?), relevance (is it specific to that culture, without generalisations?). " + _BANDS,
    "Cultural commonsense": "Be strict. Weigh: accuracy (measured against the reference answer: is it right "
    "for the real cultural context?), comprehensiveness (does it explain clearly and note nuances or exceptions "
    "in that culture?), relevance (is it specific to that culture, without generalisations?). " + _BANDS,
    "Literacy": "Be strict. Weigh: accuracy (is it right and fitting?), interpretation (are its readings of "
    "the work or topic insightful and well supported?), textual evidence (does it cite and analyse the text "
    "where needed?), relevance (does it keep to the question?). " + _BANDS,
}


@template(ItemKind.OPEN, "care", generic=False)
def _care_prompt(v: View) -> Rendered:
    return Rendered(v.question.strip())


@register
class Care(JudgedBase):
    name = "care"
    description = (
        "CARE native-language cultural questions (Arabic, Chinese, Japanese; 5 culture types): 1-10 judge "
        "rating against native gold answers, rubric by culture type"
    )
    protocol = (
        "The bare native-language question, answered by greedy generation; a judge rates the answer 1-10 "
        "(Rating: [[n]]) against the native speaker's gold answer with the rubric of its culture type "
        "(entities/opinion: accuracy, depth, relevance; norms/commonsense: accuracy vs gold, "
        "comprehensiveness, cultural relevance; literacy: accuracy, interpretation, textual evidence, "
        "relevance). Mean rating per language x culture type and geographic scope."
    )
    headline = Headline("rating", "mean judge rating (1-10)")
    metric_bounds = {"rating": (1.0, 10.0)}
    metrics = {
        "rating": "judge rating 1-10 against the gold answer (mean over judges and wordings)",
        "judge_invalid": "share of the judge's verdicts on the answer that could not be read",
    }
    default_mode = Mode.GENERATE
    default_template = "care"
    source = DataSource(
        "Guochry/CARE (MIT), data/{Arabic,Chinese,Japanese}-test.json",
        url="https://github.com/Guochry/CARE",
        env="CULTURELENS_CARE_DIR",
        folder="care",
        files=("data", "."),
        missing="CARE folder not found (expected data/Arabic-test.json, Chinese-test.json, Japanese-test.json)",
    )
    limit_strata = ("language", "topic", "subset.scope")

    class Options(JudgedOptions):
        pass

    options: Options

    def load(self) -> Iterator[Item]:
        base = self.data_path()
        if base is None:
            raise DatasetError("care", "no local CARE copy: give --data-dir (Guochry/CARE, data/*-test.json)")
        folder = base if base.is_dir() else base.parent
        if (folder / "data").is_dir():
            folder = folder / "data"
        files = sorted(folder.glob("*-test.json")) if base.is_dir() else [base]
        if not files:
            raise DatasetError(
                folder,
                "no *-test.json files (expected Arabic-test.json, Chinese-test.json, Japanese-test.json)",
            )
        items: list[Item] = []
        for path in files:
            stem = path.name.removesuffix("-test.json")
            if stem not in LANGUAGES:
                raise DatasetError(path, f"unknown CARE language {stem!r} (known: {', '.join(LANGUAGES)})")
            items.extend(self._file_items(path, stem))
        yield from items

    def _file_items(self, path: Any, stem: str) -> list[Item]:
        lang, country_name = LANGUAGES[stem]
        country = normalize_country(country_name) if country_name else None
        rows = read_json(path)
        if not isinstance(rows, list):
            raise DatasetError(path, f"expected a JSON array of questions, got {type(rows).__name__}")
        if not rows:
            raise no_items(path, "the array is empty")
        out = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise DatasetError(path, "question must be an object", row=i)
            for field in ("question", "answer", "culture_type", "geographic_scope"):
                if not isinstance(row.get(field), str) or not row[field].strip():
                    raise DatasetError(path, "missing or empty text", row=i, field=field)
            ctype = row["culture_type"].strip()
            if ctype not in RUBRICS:
                raise DatasetError(
                    path,
                    f"unknown culture type {ctype!r} (known: {', '.join(CULTURE_TYPES)})",
                    row=i,
                    field="culture_type",
                )
            scope = row["geographic_scope"].strip()
            if scope not in SCOPES:
                raise DatasetError(
                    path,
                    f"unknown scope {scope!r} (known: {', '.join(SCOPES)})",
                    row=i,
                    field="geographic_scope",
                )
            out.append(
                Item(
                    id=f"{stem}/{i}",
                    task=self.name,
                    kind=ItemKind.OPEN,
                    question=row["question"].strip(),
                    country=country,
                    language=lang,
                    topic=ctype,
                    subset={"scope": scope, "culture": str(row.get("associated_culture") or stem)},
                    metadata={"gold": row["answer"].strip(), "max_tokens": self.options.max_tokens},
                )
            )
        return out

    def score(self, item: Item, prompt: Prompt, response: Response) -> Score:
        text = response.text or ""
        return Score(
            item_id=item.id,
            task=item.task,
            variant=prompt.variant.id,
            mode=prompt.mode,
            metrics={"answered": float(bool(text.strip()))},
            prediction=text,
            valid=bool(text.strip()),
        )

    def judge_asks(
        self, item: Item, prompt: Prompt, response: Response, score: Score, wording: str
    ) -> list[JudgeAsk]:
        return [
            rating_ask(
                "rating",
                wording,
                item.question,
                response.text or "",
                RUBRICS[item.topic or "Opinion"],
                reference=str(item.metadata.get("gold", "")),
                scale=(1, 10),
            )
        ]

    def extra_metrics(self, items: dict[str, Item], scores: list[Score]) -> dict[str, Any]:
        """The paper's table: mean rating per language x culture type (readable verdicts only)."""
        cells: dict[str, dict[str, list[float]]] = {}
        for s in scores:
            it = items[s.item_id]
            if "rating" in s.metrics:
                cells.setdefault(it.language, {}).setdefault(it.topic or "", []).append(s.metrics["rating"])
        return {
            "by_language_culture_type": {
                lang: {ct: {"mean": sum(v) / len(v), "n": len(v)} for ct, v in sorted(row.items())}
                for lang, row in sorted(cells.items())
            }
        }
