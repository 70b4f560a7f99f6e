"""Typed records that flow one way through the pipeline.

dataset rows -> :class:`Item` -> :class:`Prompt` (an item rendered under a :class:`Variant`)
-> :class:`Request` -> :class:`Response` (cached) -> :class:`Score` -> aggregates.

Every stage takes and returns these records only, so a new benchmark (rows -> items) or a new
backend (requests -> responses) is one new module.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from culturelens.countries import Country


class ItemKind(StrEnum):
    MULTIPLE_CHOICE = "multiple_choice"  # one or several correct options
    LABEL = "label"  # fixed label set (yes / no / neither, true / false)
    SHORT_ANSWER = "short_answer"  # free text graded against annotator answers
    SURVEY = "survey"  # ordered answer scale, human reference distributions
    OPEN = "open"  # open generation, judged later


class Mode(StrEnum):
    LETTER = "letter"  # one forward pass: distribution over option labels
    CLOZE = "cloze"  # log-likelihood of each option text
    GENERATE = "generate"  # greedy generation + parsing


class GoldAnswer(BaseModel):
    """One annotator answer cluster of a short-answer item."""

    model_config = ConfigDict(frozen=True)
    texts: list[str] = Field(default_factory=list)  # local-language variants
    en_texts: list[str] = Field(default_factory=list)  # English variants
    count: int = 1  # annotators who gave this answer


class Item(BaseModel):
    """One question as the benchmark defines it, independent of how it is presented."""

    id: str
    task: str
    kind: ItemKind
    question: str
    context: str | None = None  # passage / story / background shown before the question
    options: list[str] = Field(default_factory=list)  # MC options, label set or ordered scale
    correct: list[int] = Field(default_factory=list)  # indices into options (MC / label)
    answers: list[GoldAnswer] = Field(default_factory=list)  # short answer gold clusters
    ordered: bool = False  # options form an ordinal scale (survey items)
    reference: dict[str, list[float]] = Field(default_factory=dict)  # country -> distribution over options
    reference_means: dict[str, float] = Field(default_factory=dict)  # country -> mean on a 0-1 scale
    country: Country | None = None
    language: str = "en"  # BCP-47
    topic: str | None = None
    group: str | None = None  # cluster id: rows sharing one underlying question (bootstrap, grouping)
    subset: dict[str, str] = Field(default_factory=dict)  # benchmark-specific subsets (level, CS/CA...)
    translations: dict[str, dict[str, Any]] = Field(default_factory=dict)  # lang -> {question, options}
    metadata: dict[str, Any] = Field(default_factory=dict)


LabelStyle = Literal["letters", "numbers", "lower", "none"]


class Variant(BaseModel):
    """How an item is presented. Pure data: rendering reads it, nothing else builds strings."""

    model_config = ConfigDict(frozen=True)
    template: str = "default"
    option_order: str = "identity"  # identity | reversed | rotate:K | perm:SEED
    labels: LabelStyle = "letters"
    scale_direction: Literal["asc", "desc"] = "asc"  # for ordered scales
    mode: Mode | None = None  # None: the task's default
    system: str | None = None  # named system prompt
    persona: str | None = None  # persona style id, e.g. "typical:Japan"
    language: str | None = None  # None: the item's own language
    few_shot: int = 0
    #: judged tasks: the judge's wording for this variant (None: every wording of the task's
    #: ``judge_templates``); ``--vary judge_template=paper,brief`` sweeps the judge like the model
    judge_template: str | None = None

    @property
    def id(self) -> str:
        """Short, stable, human-readable id; default fields are left out."""
        parts = []
        for name, field in Variant.model_fields.items():
            value = getattr(self, name)
            if value != field.default:
                parts.append(f"{name}={value.value if isinstance(value, StrEnum) else value}")
        return ",".join(parts) or "default"

    def presentation(self) -> Variant:
        """The variant without what steers the answer (:data:`STEERING_FIELDS`): only how the item is
        shown (template, option order, labels, scale direction, mode, few-shot). Its :attr:`id` names
        the presentation; variants that differ only in steering share it."""
        return self.model_copy(update=dict.fromkeys(STEERING_FIELDS))


#: the :class:`Variant` fields that steer the answer (who is asked, in which language) rather than
#: present the item; :meth:`Variant.presentation` clears them
STEERING_FIELDS = ("system", "persona", "language")
#: the :class:`Variant` fields that present the item, in id order
PRESENTATION_FIELDS = tuple(n for n in Variant.model_fields if n not in STEERING_FIELDS)


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)
    role: Literal["system", "user", "assistant"]
    content: str


class Prompt(BaseModel):
    """An item rendered under a variant: chat messages plus how displayed options map back."""

    item_id: str
    variant: Variant
    mode: Mode
    messages: list[Message]
    assistant_prefix: str = ""  # text the assistant turn starts with (e.g. "Answer:")
    order: list[int] = Field(default_factory=list)  # displayed position -> original option index
    labels: list[str] = Field(default_factory=list)  # displayed labels, e.g. ["A", "B", "C", "D"]
    continuations: list[str] = Field(default_factory=list)  # cloze: displayed option texts
    #: cloze: per continuation, True when it is the whole assistant reply, scored together with the
    #: chat template's end-of-turn text that closes it (Backend.format_closed); empty: none is
    close_turn: list[bool] = Field(default_factory=list)
    options: list[str] = Field(default_factory=list)  # displayed option texts (any mode)
    max_tokens: int = 32


RequestKind = Literal["labels", "continuations", "generate"]


class Request(BaseModel):
    """What a backend is asked. ``text`` is the fully formatted prompt (chat template applied)."""

    model_config = ConfigDict(frozen=True)
    kind: RequestKind
    text: str
    targets: list[str] = Field(default_factory=list)  # label surface forms / continuations
    max_tokens: int = 32
    temperature: float = 0.0

    def key(self, model_identity: dict[str, Any]) -> str:
        payload = json.dumps(
            {"model": model_identity, "request": self.model_dump(mode="json")},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class Response(BaseModel):
    """What a backend answered. Which fields are set depends on the request kind."""

    logprobs: list[float] | None = None  # per target: next-token log-prob, or summed continuation log-prob
    n_tokens: list[int] | None = None  # per continuation: tokens scored
    text: str | None = None  # generated text
    #: set when the backend deliberately answered in another way than asked (e.g. generated text
    #: because the server returns no log-probs): says how and why; recorded in every sample it affects
    fallback: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    cached: bool = False


class Score(BaseModel):
    """One item under one variant, scored."""

    item_id: str
    task: str
    variant: str
    mode: Mode
    metrics: dict[str, float] = Field(default_factory=dict)  # e.g. {"acc": 1.0}
    prediction: int | str | None = None  # chosen original option index, or parsed text
    probs: list[float] | None = None  # distribution over original options (letter / cloze)
    valid: bool = True  # False: unparseable generation (counted, never dropped)
    fallback: str | None = None  # the response was a deliberate fallback (see Response.fallback)


@dataclass(frozen=True)
class Headline:
    """The number a task's results lead with: a per-unit metric of its aggregate, how to say it, and which
    way is better (``None``: neither, e.g. an orientation or a survey answer)."""

    metric: str
    label: str
    higher_is_better: bool | None = True

    @property
    def direction(self) -> str:
        return {True: "higher is better", False: "lower is better", None: "no better direction"}[
            self.higher_is_better
        ]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
