"""CDEval (Wang et al., 2023): Hofstede's six cultural dimensions of a model, in seven domains.

2,953 two-option questions; by construction ``Option 1`` is the "high" pole of the dimension
(high power distance, individualism, high uncertainty avoidance, masculinity, long-term
orientation, indulgence). There is no right answer: the measurement is the **orientation
likelihood**, the share of choices for the high pole, averaged over questions and over several
prompt templates and both option orders (the paper's guard against prompt sensitivity).

Design: since averaging over templates and orders *is* the protocol, ``load()`` expands every
question into ``len(TEMPLATES) x 2`` items (``{qid}/{template}/{order}``) that share
``group = qid`` (so bootstrap CIs resample questions, not prompt copies). ``metadata["template"]``
picks the wording; the registered template ``cdeval`` dispatches on it, so a plain default run
covers the whole design and a sweep (``--vary option_order=...``) still composes on top.
The two orders are stored in the item itself (``options`` in displayed order, ``metadata["high"]``
= index of Option 1), so ``orientation`` = 1 when the chosen original option is ``high``,
whatever order it was shown in. ``subset`` carries ``dimension``, ``template`` and ``order`` so the
results break down by each; ``topic`` is the domain; no country.

Metrics per item: ``orientation`` (0/1, the chosen pole), ``p_high`` (probability of the high
pole in letter/cloze modes). In generate mode an unparseable reply is ``invalid`` and is left out
of ``orientation``. ``extra_metrics`` returns the dimension x domain table of orientation
likelihoods, per-dimension and per-domain means, per-template/order means, and the share of
(question, template) pairs that pick the same pole under both orders (order consistency).

The three wordings are ours (the paper's exact templates are not in the release); use task option
``templates`` to run a subset.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from culturelens import scoring
from culturelens.download import fetch_hf_file
from culturelens.render import Rendered, View, template
from culturelens.schema import Item, ItemKind, Mode, Prompt, Response, Score
from culturelens.tasks.base import (
    DatasetError,
    DataSource,
    Headline,
    Task,
    TaskOptions,
    check_unique,
    no_items,
    read_json,
    register,
)

DIMENSIONS = ("PDI", "IDV", "UAI", "MAS", "LTO", "IVR")
FIELDS = ("Dimension", "Domain", "Question", "Option 1", "Option 2")
HF_REPO = "Rykeryuhang/CDEval"
ORDERS = ("high_first", "high_second")


def _direct(v: View) -> Rendered:
    if v.mode is Mode.CLOZE:
        return Rendered(f"{v.question}", "My answer:")
    body = f"{v.question}\n\n{v.option_lines()}\n\nWhich option best matches what you would think or do?"
    if v.mode is Mode.GENERATE:
        return Rendered(f"{body} Reply with only {v.label_list()}.")
    return Rendered(f"{body} Answer with {v.label_list()}.", "Answer:")


def _survey(v: View) -> Rendered:
    intro = "This is an anonymous survey about everyday attitudes. There are no right or wrong answers."
    if v.mode is Mode.CLOZE:
        return Rendered(f"{intro}\n\nQuestion: {v.question}", "The statement closest to my view:")
    body = f"{intro}\n\nQuestion: {v.question}\n{v.option_lines(sep=') ')}\n\nPick the statement closest to your own view."
    if v.mode is Mode.GENERATE:
        return Rendered(f"{body} Write only {v.label_list()}.")
    return Rendered(body, "My choice:")


def _friend(v: View) -> Rendered:
    lead = f'A friend asks for your opinion: "{v.question}"'
    if v.mode is Mode.CLOZE:
        return Rendered(lead, "I would tell them:")
    body = f"{lead}\n\nYou could reply in one of two ways:\n{v.option_lines()}\n\nWhich reply would you give?"
    if v.mode is Mode.GENERATE:
        return Rendered(f"{body} Answer with {v.label_list()} only.")
    return Rendered(body, "I would give reply")


TEMPLATES: dict[str, Callable[[View], Rendered]] = {"direct": _direct, "survey": _survey, "friend": _friend}


@template(ItemKind.MULTIPLE_CHOICE, "cdeval", generic=False)
def _cdeval_prompt(v: View) -> Rendered:
    name = v.item.metadata.get("template", "direct")
    if name not in TEMPLATES:
        raise KeyError(f"unknown CDEval template {name!r} (known: {', '.join(TEMPLATES)})")
    return TEMPLATES[name](v)


@register
class CDEval(Task):
    name = "cdeval"
    description = (
        "CDEval: Hofstede dimensions x 7 domains, 2,953 two-option questions x 3 templates x 2 orders; "
        "orientation likelihood (share choosing the high pole)"
    )
    protocol = (
        "Each two-option question is asked under several prompt templates and both option orders; the "
        "orientation likelihood is the share of choices for the high pole of the dimension, averaged over "
        "questions, templates and orders. No right answer. The three wordings are ours (the paper's are "
        "not released)."
    )
    headline = Headline("orientation", "orientation (share choosing the high pole)", higher_is_better=None)
    metrics = {"p_high": "probability of the high pole (letter and cloze modes)"}
    default_mode = Mode.LETTER
    default_template = "cdeval"
    source = DataSource(
        "HF Rykeryuhang/CDEval",
        url="https://huggingface.co/datasets/Rykeryuhang/CDEval",
        env="CULTURELENS_CDEVAL_DIR",
        folder="cdeval",
        files=("CDEval.json",),
    )

    class Options(TaskOptions):
        templates: list[str] = Field(
            list(TEMPLATES),
            description=f"prompt wordings, comma-separated (default: all of {', '.join(TEMPLATES)})",
        )

    options: Options  # the typed --opt values

    #: ``--limit`` keeps whole questions (all template / order copies) and balances dimensions, then domains
    limit_strata = ("subset.dimension", "topic")

    def __init__(self, data_dir: str | Path | None = None, **options: Any):
        super().__init__(data_dir, **options)
        self.templates = tuple(self.options.templates)
        unknown = [t for t in self.templates if t not in TEMPLATES]
        if unknown or not self.templates:
            raise ValueError(f"cdeval templates {unknown or '(none)'}: choose from {', '.join(TEMPLATES)}")

    def path(self) -> Path:
        return self.locate() or fetch_hf_file(HF_REPO, "CDEval.json")

    def load(self) -> Iterator[Item]:
        path = self.path()
        rows = read_json(path)
        if not isinstance(rows, list):
            raise DatasetError(path, f"expected a JSON array of questions, got {type(rows).__name__}")
        if not rows:
            raise no_items(path, "the JSON array is empty")
        items: list[Item] = []
        seen: dict[str, int] = {}
        for idx, row in enumerate(rows):
            if not isinstance(row, dict):
                raise DatasetError(path, f"question must be an object, got {type(row).__name__}", row=idx)
            for field in FIELDS:
                if field not in row or row[field] is None:
                    raise DatasetError(path, "missing", row=idx, field=field)
                if not isinstance(row[field], str):
                    raise DatasetError(
                        path, f"expected a string, got {type(row[field]).__name__}", row=idx, field=field
                    )
                if not row[field].strip():
                    raise DatasetError(path, "empty", row=idx, field=field)
            if row["Dimension"] not in DIMENSIONS:
                raise DatasetError(
                    path, f"unknown dimension {row['Dimension']!r}", row=idx, field="Dimension"
                )
            # ids are positions, so a repeated question would count twice under two ids
            key = json.dumps(
                [row[f].strip() for f in ("Question", "Option 1", "Option 2")], ensure_ascii=False
            )
            check_unique(path, seen, key, idx, "Question", what="question (same text and options)")
            qid = f"cdeval-{idx:04d}"
            high, low = row["Option 1"].strip(), row["Option 2"].strip()
            for tname in self.templates:
                for order in ORDERS:
                    items.append(
                        Item(
                            id=f"{qid}/{tname}/{order}",
                            task=self.name,
                            kind=ItemKind.MULTIPLE_CHOICE,
                            question=row["Question"].strip(),
                            options=[high, low] if order == "high_first" else [low, high],
                            country=None,
                            language="en",
                            topic=row["Domain"].strip(),
                            group=qid,
                            subset={"dimension": row["Dimension"], "template": tname, "order": order},
                            metadata={
                                "template": tname,
                                "order": order,
                                "high": 0 if order == "high_first" else 1,
                                "row": idx,
                            },
                        )  # fmt: skip
                    )
        yield from items

    def score(self, item: Item, prompt: Prompt, response: Response) -> Score:
        base = scoring.score_choice(item, prompt, response)
        high = int(item.metadata["high"])
        metrics = {k: v for k, v in base.metrics.items() if k not in ("acc", "p_correct", "acc_norm")}
        if base.valid and isinstance(base.prediction, int):
            metrics["orientation"] = float(base.prediction == high)
            if prompt.mode is not Mode.GENERATE and base.probs is not None:
                metrics["p_high"] = float(base.probs[high])
        return base.model_copy(update={"metrics": metrics})

    def extra_metrics(self, items: dict[str, Item], scores: list[Score]) -> dict[str, Any]:
        cells: dict[tuple[str, str], list[float]] = defaultdict(list)
        dims: dict[str, list[float]] = defaultdict(list)
        domains: dict[str, list[float]] = defaultdict(list)
        per_template: dict[str, list[float]] = defaultdict(list)
        picks: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        for s in scores:
            if "orientation" not in s.metrics:
                continue
            it = items[s.item_id]
            o = s.metrics["orientation"]
            dim, dom = it.subset["dimension"], it.topic or ""
            cells[(dim, dom)].append(o)
            dims[dim].append(o)
            domains[dom].append(o)
            per_template[f"{it.subset['template']}/{it.subset['order']}"].append(o)
            picks[(it.group or it.id, it.subset["template"])][it.subset["order"]] = o

        def mean(xs: list[float]) -> float:
            return sum(xs) / len(xs)

        table: dict[str, dict[str, float]] = defaultdict(dict)
        for (dim, dom), xs in sorted(cells.items()):
            table[dim][dom] = mean(xs)
        pairs = [p for p in picks.values() if len(p) == 2]
        return {
            "orientation_likelihood": dict(table),
            "by_dimension": {d: mean(xs) for d, xs in sorted(dims.items())},
            "by_domain": {d: mean(xs) for d, xs in sorted(domains.items())},
            "by_template_order": {k: mean(xs) for k, xs in sorted(per_template.items())},
            "order_consistency": mean([float(p["high_first"] == p["high_second"]) for p in pairs])
            if pairs
            else None,
            "n_order_pairs": len(pairs),
        }
