"""What a judge is asked and how its verdict is read: the judge's side of items -> prompts -> scores.

A task whose answers are judged (CARE, CaLMQA, CIVICS) implements :class:`JudgedTask`: for a scored
response and a judge *wording* it returns :class:`JudgeAsk` records (the judge's chat messages, the
verdict kind and scale). The judge stage (:mod:`culturelens.judges`, a driver) formats them with each
judge's chat template, sends them through the response cache and reads the replies back with
:func:`parse_verdict`. Nothing here calls a model.

Verdict kinds and their fixed output formats:

* ``rating``: a score on a scale, ``Rating: [[7]]`` (the MT-Bench / CARE format);
* ``reference``: the same, with a gold answer in the prompt (reference-guided rating);
* ``pairwise``: ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie); asked in both orders, A and B swapped;
* ``yesno``: ``Yes`` or ``No``.

An unparseable reply is an invalid verdict: kept in the run log and counted, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from culturelens.schema import Item, Message, Prompt, Response, Score

JudgeKind = Literal["rating", "reference", "pairwise", "yesno"]
JUDGE_KINDS: tuple[str, ...] = ("rating", "reference", "pairwise", "yesno")

#: the judge wordings every judged task offers: ``paper`` (the benchmark's own judge protocol: a short
#: explanation, then the verdict in its fixed format) and ``brief`` (the verdict alone, opened by the
#: assistant turn, which suits small judges); ``--opt judge_templates=paper,brief`` asks both and
#: reports the spread between them
WORDINGS: tuple[str, ...] = ("paper", "brief")


@dataclass(frozen=True)
class JudgeAsk:
    """One question to a judge about one response.

    ``name`` is what it measures and becomes the sample's metric (``rating``, ``refusal``...);
    ``messages`` the judge's chat (for ``pairwise``: the judged response as answer A) and ``swapped``
    the same with the two answers swapped (pairwise only). ``prefix`` opens the judge's turn."""

    name: str
    kind: JudgeKind
    messages: tuple[Message, ...]
    swapped: tuple[Message, ...] = ()
    scale: tuple[int, int] = (1, 10)
    prefix: str = ""
    max_tokens: int = 96
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def orders(self) -> list[tuple[str, tuple[Message, ...]]]:
        """(order name, messages) to ask: one, or both orders of a pairwise comparison."""
        if self.kind == "pairwise":
            if not self.swapped:
                raise ValueError(f"pairwise judge ask {self.name!r} has no swapped order")
            return [("AB", self.messages), ("BA", self.swapped)]
        return [("-", self.messages)]


@runtime_checkable
class JudgedTask(Protocol):
    """A task whose responses are judged. ``judge_wordings`` are the wordings asked (the first is the
    task's default: its paper's protocol); ``judge_asks`` what the judge is asked about one scored
    response under one wording (empty: nothing to judge for it); ``judged_metrics`` turns the judged
    values (ask name -> mean over judges and wordings, None when no verdict was valid) into the
    sample's metrics."""

    def judge_wordings(self) -> list[str]: ...

    def judge_asks(
        self, item: Item, prompt: Prompt, response: Response, score: Score, wording: str
    ) -> list[JudgeAsk]: ...

    def judged_metrics(
        self, item: Item, score: Score, values: dict[str, float | None]
    ) -> dict[str, float]: ...


# --- reading verdicts -------------------------------------------------------------------------------
_BRACKETED_NUMBER = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*(?:/\s*\d+\s*)?\]\]")
_SINGLE_BRACKETED = re.compile(r"\[\s*(\d+(?:\.\d+)?)\s*\]")  # MT-Bench's fallback: [n]
_RATING_WORD = re.compile(r"rating\s*[:：]?\s*\[?\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_BRACKETED_LETTER = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_LEADING_LETTER = re.compile(r"^\s*\(?([ABC])\)?(?:\W|$)")
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_BRACKETED_YES_NO = re.compile(r"\[\[\s*(yes|no)\s*\]\]", re.IGNORECASE)


def parse_rating(text: str, scale: tuple[int, int] = (1, 10)) -> float | None:
    """The rating in ``[[n]]``, else in ``[n]`` (MT-Bench's fallback), else after ``Rating:``; None when
    absent or outside ``scale``."""
    m = _BRACKETED_NUMBER.search(text) or _SINGLE_BRACKETED.search(text) or _RATING_WORD.search(text)
    if m is None:
        return None
    value = float(m.group(1))
    return value if scale[0] <= value <= scale[1] else None


def parse_preference(text: str) -> str | None:
    """``A``, ``B`` or ``C`` (tie) from ``[[A]]``...; else a reply that starts with the bare letter."""
    m = _BRACKETED_LETTER.search(text) or _LEADING_LETTER.search(text)
    return m.group(1) if m else None


def parse_yesno(text: str) -> bool | None:
    """``[[Yes]]`` / ``[[No]]``, else the first ``yes`` / ``no`` word of the reply; None when neither."""
    m = _BRACKETED_YES_NO.search(text) or _YES_NO.search(text)
    return None if m is None else m.group(1).lower() == "yes"


def parse_verdict(ask: JudgeAsk, order: str, text: str) -> float | None:
    """The verdict as a number, or None when the reply cannot be read (an invalid verdict).

    ``rating`` / ``reference``: the rating. ``yesno``: 1.0 for yes, 0.0 for no. ``pairwise``: how
    much the judged response (A in order ``AB``, B in order ``BA``) is preferred: 1.0, 0.5 for a tie,
    0.0."""
    if ask.kind in ("rating", "reference"):
        return parse_rating(text, ask.scale)
    if ask.kind == "yesno":
        yes = parse_yesno(text)
        return None if yes is None else float(yes)
    letter = parse_preference(text)
    if letter is None:
        return None
    if letter == "C":
        return 0.5
    ours = "A" if order == "AB" else "B"
    return 1.0 if letter == ours else 0.0


# --- wordings ----------------------------------------------------------------------------------------
def check_wordings(task: str, wordings: Sequence[str]) -> list[str]:
    """The wordings a ``judge_templates`` option names, checked (one line naming the bad one)."""
    out = [w.strip() for w in wordings if w.strip()]
    if not out:
        raise ValueError(f"task {task!r} option judge_templates: name at least one of {', '.join(WORDINGS)}")
    for w in out:
        if w not in WORDINGS:
            raise ValueError(f"task {task!r} option judge_templates={w!r}: choose from {', '.join(WORDINGS)}")
    return list(dict.fromkeys(out))


_JUDGE_ROLE = "You are an impartial judge of answers written by an AI assistant."


def rating_ask(
    name: str,
    wording: str,
    question: str,
    answer: str,
    criteria: str,
    reference: str | None = None,
    scale: tuple[int, int] = (1, 10),
) -> JudgeAsk:
    """A rubric rating (``reference`` given: reference-guided) on ``scale``, in culturelens's own words
    (the benchmarks' prompt files are not part of their data releases)."""
    lo, hi = scale
    ref = f"[Reference answer]\n{reference}\n[End of reference answer]\n\n" if reference is not None else ""
    guide = " Compare it with the reference answer." if reference is not None else ""
    if wording == "paper":
        body = (
            f"Judge the quality of the answer to the question below.{guide} {criteria} "
            f"First explain your judgement in a few sentences, then give a rating from {lo} to {hi} "
            f'in exactly this format: "Rating: [[n]]", for example "Rating: [[{(lo + hi) // 2}]]".\n\n'
            f"[Question]\n{question}\n\n{ref}[Answer]\n{answer}\n[End of answer]"
        )
        prefix = ""
    else:
        body = (
            f"Rate the answer below from {lo} (worst) to {hi} (best).{guide} {criteria} "
            f"Reply with the rating only: a whole number from {lo} to {hi} in double square brackets.\n\n"
            f"Question: {question}\n\n{ref}Answer: {answer}"
        )
        prefix = "Rating: [["
    return JudgeAsk(
        name=name,
        kind="reference" if reference is not None else "rating",
        messages=(Message(role="system", content=_JUDGE_ROLE), Message(role="user", content=body)),
        scale=scale,
        prefix=prefix,
        max_tokens=160 if wording == "paper" else 8,
    )


def pairwise_ask(name: str, wording: str, question: str, ours: str, other: str, criteria: str) -> JudgeAsk:
    """Which of two answers is better (``[[A]]`` / ``[[B]]`` / ``[[C]]`` tie), in both orders: the
    judged response ``ours`` is A in the first order and B in the swapped one."""

    def body(a: str, b: str) -> str:
        if wording == "paper":
            return (
                f"Compare the two answers to the question below. {criteria} Do not let the order of "
                "the answers or their length influence you. Explain briefly, then give your verdict in "
                'exactly this format: "[[A]]" if answer A is better, "[[B]]" if answer B is better, '
                '"[[C]]" for a tie.\n\n'
                f"[Question]\n{question}\n\n[Answer A]\n{a}\n[End of answer A]\n\n[Answer B]\n{b}\n"
                "[End of answer B]"
            )
        return (
            f"Which answer is better? {criteria} Reply [[A]], [[B]] or [[C]] (tie) only.\n\n"
            f"Question: {question}\n\nAnswer A: {a}\n\nAnswer B: {b}"
        )

    system = Message(role="system", content=_JUDGE_ROLE)
    return JudgeAsk(
        name=name,
        kind="pairwise",
        messages=(system, Message(role="user", content=body(ours, other))),
        swapped=(system, Message(role="user", content=body(other, ours))),
        prefix="" if wording == "paper" else "[[",
        max_tokens=160 if wording == "paper" else 4,
    )


def yesno_ask(name: str, wording: str, check: str, text: str, context: str | None = None) -> JudgeAsk:
    """A yes/no check on ``text`` (``check`` is the question, e.g. "Does the response refuse...?")."""
    ctx = f"[Context]\n{context}\n\n" if context else ""
    if wording == "paper":
        body = (
            f"{ctx}[Response]\n{text}\n[End of response]\n\n{check} Explain briefly, then give your "
            'verdict in exactly this format: "[[Yes]]" or "[[No]]".'
        )
        prefix = ""
    else:
        body = f"{ctx}Response: {text}\n\n{check} Answer Yes or No."
        prefix = "Answer:"
    return JudgeAsk(
        name=name,
        kind="yesno",
        messages=(Message(role="system", content=_JUDGE_ROLE), Message(role="user", content=body)),
        prefix=prefix,
        max_tokens=96 if wording == "paper" else 3,
    )
