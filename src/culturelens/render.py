"""Stage 2: item + variant -> rendered prompt.

All presentation choices (option order, label style, template wording, persona, language,
few-shot) are read from the :class:`Variant`; no other module builds prompt strings.
Templates are registered by id per item kind, so a benchmark with an official prompt
registers its own template in its own module.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from culturelens.errors import RenderError
from culturelens.personas import (  # noqa: F401 - the persona API, also reachable from here
    PersonaFn,
    check_persona,
    persona_text,
    register_persona,
)
from culturelens.schema import Item, ItemKind, Message, Mode, Prompt, Variant

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def option_order(item: Item, variant: Variant) -> list[int]:
    """Displayed position -> original option index."""
    n = len(item.options)
    base = list(range(n))
    if item.ordered and variant.scale_direction == "desc":
        base.reverse()
    spec = variant.option_order
    if spec == "identity":
        return base
    if spec == "reversed":
        return base[::-1]
    if spec.startswith("rotate:"):
        k = int(spec.split(":", 1)[1]) % max(n, 1)
        return base[k:] + base[:k]
    if spec.startswith("perm:"):
        seed = spec.split(":", 1)[1]
        digest = hashlib.sha256(f"{seed}:{item.id}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        perm = base[:]
        rng.shuffle(perm)
        return perm
    raise RenderError(f"unknown option_order {spec!r} (identity, reversed, rotate:K, perm:SEED)")


def label_set(style: str, n: int) -> list[str]:
    if style == "letters":
        return list(LETTERS[:n])
    if style == "lower":
        return list(LETTERS[:n].lower())
    if style == "numbers":
        return [str(i + 1) for i in range(n)]
    if style == "none":
        return []
    raise RenderError(f"unknown label style {style!r} (letters, numbers, lower, none)")


@dataclass(frozen=True)
class View:
    """What a template sees: the item in its displayed language, order and labels."""

    item: Item
    question: str
    context: str | None
    options: list[str]  # displayed order
    labels: list[str]  # displayed labels ([] when unlabelled)
    mode: Mode
    variant: Variant

    def option_lines(self, sep: str = ". ") -> str:
        if not self.labels:
            return "\n".join(f"- {o}" for o in self.options)
        return "\n".join(f"{lab}{sep}{opt}" for lab, opt in zip(self.labels, self.options, strict=True))

    def label_list(self) -> str:
        labs = self.labels or self.options
        return ", ".join(labs[:-1]) + f" or {labs[-1]}" if len(labs) > 1 else "".join(labs)


@dataclass(frozen=True)
class Rendered:
    user: str
    assistant_prefix: str = ""
    system: str | None = None


Template = Callable[[View], Rendered]
_TEMPLATES: dict[tuple[ItemKind, str], Template] = {}
_SPECIFIC: set[tuple[ItemKind, str]] = set()


def template(kind: ItemKind, name: str, *, generic: bool = True) -> Callable[[Template], Template]:
    """Register a wording for one item kind. Benchmark-specific wordings (``generic=False``)
    stay usable by name but are not part of the generic ``template=all`` sweep."""

    def deco(fn: Template) -> Template:
        _TEMPLATES[(kind, name)] = fn
        if not generic:
            _SPECIFIC.add((kind, name))
        return fn

    return deco


def templates_for(kind: ItemKind, *, generic_only: bool = False) -> list[str]:
    return sorted(
        name for k, name in _TEMPLATES if k == kind and not (generic_only and (k, name) in _SPECIFIC)
    )


def template_slot(kind: ItemKind, name: str) -> str:
    """Resolve a wording slot ``#K`` (sweep ``template=all`` over mixed item kinds) to the kind's
    K-th template, ``default`` first; any other name is returned unchanged."""
    if name.startswith("#") and name[1:].isdigit():
        names = sorted(templates_for(kind, generic_only=True), key=lambda n: (n != "default", n))
        if int(name[1:]) < len(names):
            return names[int(name[1:])]
    return name


def _ctx(v: View) -> str:
    return f"{v.context}\n\n" if v.context else ""


# --- multiple choice and survey items: three wordings each -------------------------------------
def _mc_default(v: View) -> Rendered:
    if v.mode is Mode.CLOZE:
        return Rendered(f"{_ctx(v)}Question: {v.question}", "Answer:")
    if v.mode is Mode.GENERATE:
        return Rendered(
            f"{_ctx(v)}{v.question}\n\n{v.option_lines()}\n\n"
            f"Reply with only the {'label' if v.labels else 'text'} of the correct option ({v.label_list()})."
        )
    return Rendered(
        f"{_ctx(v)}{v.question}\n\n{v.option_lines()}\n\nAnswer with {v.label_list()}.", "Answer:"
    )


def _mc_plain(v: View) -> Rendered:
    if v.mode is Mode.CLOZE:
        return Rendered(f"{_ctx(v)}{v.question}", "")
    body = f"{_ctx(v)}Question: {v.question}\nOptions:\n{v.option_lines(sep=') ')}"
    if v.mode is Mode.GENERATE:
        return Rendered(body + "\nRespond with the option only.")
    return Rendered(body, "The answer is")


def _mc_exam(v: View) -> Rendered:
    if v.mode is Mode.CLOZE:
        return Rendered(f"Complete the following.\n{_ctx(v)}{v.question}", "")
    body = (
        f"The following is a multiple-choice question. Choose the single best option.\n\n"
        f"{_ctx(v)}{v.question}\n{v.option_lines()}"
    )
    if v.mode is Mode.GENERATE:
        return Rendered(body + "\nWrite only your choice.")
    return Rendered(body, "My choice:")


for _kind in (ItemKind.MULTIPLE_CHOICE, ItemKind.SURVEY):
    template(_kind, "default")(_mc_default)
    template(_kind, "plain")(_mc_plain)
    template(_kind, "exam")(_mc_exam)


# --- label judgements: the labels are the option words themselves -----------------------------
def _lab_default(v: View) -> Rendered:
    opts = " ".join(f"{i + 1}) {o}" for i, o in enumerate(v.options))
    return Rendered(f"{_ctx(v)}{v.question}\nOptions: {opts}\nAnswer ({v.label_list()}):", "")


def _lab_plain(v: View) -> Rendered:
    return Rendered(f"{_ctx(v)}{v.question}\nAnswer with one word: {v.label_list()}.", "Answer:")


def _lab_judge(v: View) -> Rendered:
    return Rendered(
        f"Read the situation and judge it.\n\n{_ctx(v)}{v.question}\n\nYour verdict ({v.label_list()})?",
        "Verdict:",
    )


template(ItemKind.LABEL, "default")(_lab_default)
template(ItemKind.LABEL, "plain")(_lab_plain)
template(ItemKind.LABEL, "judge")(_lab_judge)


# --- short answer and open generation ------------------------------------------------------------
def _sa_default(v: View) -> Rendered:
    return Rendered(f"{_ctx(v)}{v.question}\nAnswer briefly, without any explanation.")


def _sa_plain(v: View) -> Rendered:
    return Rendered(f"{_ctx(v)}Question: {v.question}\nGive one short answer.")


def _sa_direct(v: View) -> Rendered:
    return Rendered(f"{_ctx(v)}{v.question}", "")


for _kind in (ItemKind.SHORT_ANSWER, ItemKind.OPEN):
    template(_kind, "default")(_sa_default)
    template(_kind, "plain")(_sa_plain)
    template(_kind, "direct")(_sa_direct)


# --- system prompts and personas -------------------------------------------------------------------
SYSTEM_PROMPTS: dict[str, str] = {
    "assistant": "You are a helpful assistant.",
    "concise": "You are a knowledgeable assistant. Answer concisely.",
}


def system_text(variant: Variant, item: Item, rendered: Rendered) -> str | None:
    parts = []
    if variant.system:
        if variant.system not in SYSTEM_PROMPTS:
            raise RenderError(
                f"unknown system prompt {variant.system!r} (known: {', '.join(SYSTEM_PROMPTS)})"
            )
        parts.append(SYSTEM_PROMPTS[variant.system])
    if rendered.system:
        parts.append(rendered.system)
    if variant.persona:
        parts.append(persona_text(variant.persona, item))
    return "\n".join(parts) or None


def effective_mode(item: Item, variant: Variant, default: Mode) -> Mode:
    mode = variant.mode or default
    if item.kind in (ItemKind.SHORT_ANSWER, ItemKind.OPEN):
        return Mode.GENERATE
    if mode is Mode.LETTER and variant.labels == "none" and item.kind is not ItemKind.LABEL:
        return Mode.CLOZE  # no labels to score: fall back to option likelihood
    return mode


def make_view(item: Item, variant: Variant, mode: Mode) -> tuple[View, list[int]]:
    lang = variant.language
    question, options, context = item.question, item.options, item.context
    if lang and lang != item.language:
        tr = item.translations.get(lang)
        if tr is None:
            raise RenderError(f"item {item.id} has no translation into {lang!r}")
        question = tr.get("question", question)
        options = tr.get("options", options)
        context = tr.get("context", context)
    order = option_order(item, variant)
    shown = [options[i] for i in order]
    if item.kind is ItemKind.LABEL:
        labels: list[str] = []  # label words are the answers
    else:
        labels = label_set(variant.labels, len(shown)) if mode is not Mode.CLOZE else []
    return View(item, question, context, shown, labels, mode, variant), order


def render(item: Item, variant: Variant, default_mode: Mode, shots: list[Item] | None = None) -> Prompt:
    mode = effective_mode(item, variant, default_mode)
    fn = _TEMPLATES.get((item.kind, template_slot(item.kind, variant.template)))
    if fn is None:
        raise RenderError(
            f"no template {variant.template!r} for {item.kind.value} items (known: {', '.join(templates_for(item.kind))})"
        )
    view, order = make_view(item, variant, mode)
    rendered = fn(view)
    messages: list[Message] = []
    system = system_text(variant, item, rendered)
    if system:
        messages.append(Message(role="system", content=system))
    for shot in (shots or [])[: variant.few_shot]:
        sview, sorder = make_view(shot, variant, mode)
        srend = fn(sview)
        messages.append(Message(role="user", content=srend.user))
        messages.append(Message(role="assistant", content=_shot_answer(shot, sview, sorder, srend)))
    messages.append(Message(role="user", content=rendered.user))
    labels = view.labels if item.kind is not ItemKind.LABEL else view.options
    return Prompt(
        item_id=item.id,
        variant=variant,
        mode=mode,
        messages=messages,
        assistant_prefix=rendered.assistant_prefix,
        order=order,
        labels=labels,
        continuations=view.options if mode is Mode.CLOZE else [],
        options=view.options,
        max_tokens=item.metadata.get("max_tokens", 32 if item.kind not in (ItemKind.OPEN,) else 256),
    )


def _shot_answer(shot: Item, view: View, order: list[int], rend: Rendered) -> str:
    prefix = f"{rend.assistant_prefix} " if rend.assistant_prefix else ""
    if shot.correct:
        pos = order.index(shot.correct[0])
        if view.labels and view.mode is not Mode.CLOZE:
            return prefix + view.labels[pos]
        return prefix + view.options[pos]
    if shot.answers:
        first = shot.answers[0]
        return prefix + (first.texts or first.en_texts or [""])[0]
    return prefix.strip()
