"""Stage 6: response -> score, for the three scoring modes.

Generic rules live here; a benchmark whose paper grades differently overrides ``Task.score``
and may reuse the helpers (``option_probs``, ``parse_choice``...).
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

from culturelens.schema import Item, ItemKind, Mode, Prompt, Response, Score


def softmax(logps: list[float]) -> list[float]:
    m = max(logps)
    if m == -math.inf:
        return [1.0 / len(logps)] * len(logps)
    ex = [math.exp(v - m) for v in logps]
    s = sum(ex)
    return [e / s for e in ex]


def to_original(prompt: Prompt, displayed: list[float]) -> list[float]:
    """Re-index a per-displayed-option vector into original option order."""
    out = [0.0] * len(prompt.order)
    for pos, orig in enumerate(prompt.order):
        out[orig] = displayed[pos]
    return out


def argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: values[i])


def option_probs(prompt: Prompt, resp: Response) -> tuple[list[float], dict[str, float]]:
    """Distribution over original options, plus extra per-sample metrics."""
    assert resp.logprobs is not None
    extra: dict[str, float] = {}
    if prompt.mode is Mode.CLOZE:
        raw = resp.logprobs
        nbytes = [max(len(c.encode("utf-8")), 1) for c in prompt.continuations]
        norm = [lp / nb for lp, nb in zip(raw, nbytes, strict=True)]
        extra["_pred_norm"] = float(prompt.order[argmax(norm)])
        return to_original(prompt, softmax(raw)), extra
    # letter: labels' share of the next-token mass is a useful health signal
    extra["label_mass"] = float(min(1.0, sum(math.exp(v) for v in resp.logprobs)))
    return to_original(prompt, softmax(resp.logprobs)), extra


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().lower()


def parse_choice(text: str, prompt: Prompt) -> int | None:
    """Parse a generated answer into a displayed position, or None if unparseable.

    Accepts a bare label ("B", "(B)", "B.", "b) ..."), "answer is B", a label word ("Yes"), or
    the option text itself. Ambiguous answers (two candidates at the same position) are invalid.
    """
    t = text.strip()
    if not t:
        return None
    labels = prompt.labels
    options = prompt.options or prompt.continuations
    is_code = bool(labels) and labels != options and all(len(lab) <= 2 for lab in labels)
    if is_code:
        alt = "|".join(re.escape(lab) for lab in sorted(labels, key=len, reverse=True))
        flags = re.IGNORECASE if all(lab.isalpha() for lab in labels) else 0
        lead = re.match(rf"^\W*(?:option\s+|answer\s*:?\s*)?({alt})(?:$|[\s\).:,\]])", t, flags)
        if lead:
            return _label_index(lead.group(1), labels)
        said = re.search(rf"(?:answer|choice|option)\s*(?:is|:)?\s*\(?({alt})\b", t, flags)
        if said:
            return _label_index(said.group(1), labels)
    # label words (yes / no / neither) or option texts: the earliest mention wins
    candidates = options
    if not candidates:
        return None
    low = _norm(t)
    hits = []
    for i, cand in enumerate(candidates):
        m = re.search(rf"(?<!\w){re.escape(_norm(cand))}(?!\w)", low)
        if m:
            hits.append((m.start(), i))
    if not hits:
        return None
    hits.sort()
    if len(hits) > 1 and hits[0][0] == hits[1][0]:
        return None
    return hits[0][1]


def _label_index(found: str, labels: list[str]) -> int:
    for i, lab in enumerate(labels):
        if lab.lower() == found.lower():
            return i
    raise ValueError(found)


def score_choice(item: Item, prompt: Prompt, resp: Response) -> Score:
    """Multiple-choice, label and survey items in any mode."""
    base: dict[str, Any] = {
        "item_id": item.id,
        "task": item.task,
        "variant": prompt.variant.id,
        "mode": prompt.mode,
    }
    # a letter/cloze request answered with text (an API without log-probs) is scored as a generation
    if prompt.mode is Mode.GENERATE or (resp.logprobs is None and resp.text is not None):
        pos = parse_choice(resp.text or "", prompt)
        if pos is None:
            bad = {"acc": 0.0, "invalid": 1.0} if item.correct else {"invalid": 1.0}
            return Score(**base, metrics=bad, prediction=None, valid=False)
        pred = prompt.order[pos]
        gen_metrics = {"invalid": 0.0}
        if item.correct:
            gen_metrics["acc"] = float(pred in item.correct)
        probs = [0.0] * len(item.options)
        probs[pred] = 1.0
        return Score(**base, metrics=gen_metrics, prediction=pred, probs=probs)
    probs, extra = option_probs(prompt, resp)
    pred = argmax(probs)
    metrics: dict[str, float] = {k: v for k, v in extra.items() if not k.startswith("_")}
    if item.correct:
        metrics["acc"] = float(pred in item.correct)
        metrics["p_correct"] = float(sum(probs[i] for i in item.correct))
        if "_pred_norm" in extra:
            metrics["acc_norm"] = float(int(extra["_pred_norm"]) in item.correct)
    if item.ordered and len(item.options) > 1:
        metrics["expected"] = sum(p * i for i, p in enumerate(probs)) / (len(item.options) - 1)
    return Score(**base, metrics=metrics, prediction=pred, probs=probs)


def score_text(item: Item, prompt: Prompt, resp: Response) -> Score:
    """Default short-answer grading: any gold string is a substring of the answer."""
    text = _norm(resp.text or "")
    base: dict[str, Any] = {
        "item_id": item.id,
        "task": item.task,
        "variant": prompt.variant.id,
        "mode": prompt.mode,
    }
    if item.kind is ItemKind.OPEN or not item.answers:
        return Score(**base, metrics={}, prediction=resp.text)
    hit = any(_norm(g) and _norm(g) in text for ans in item.answers for g in [*ans.texts, *ans.en_texts])
    return Score(**base, metrics={"acc": float(hit)}, prediction=resp.text, valid=bool(text))


def score(item: Item, prompt: Prompt, resp: Response) -> Score:
    if item.kind in (ItemKind.SHORT_ANSWER, ItemKind.OPEN):
        return score_text(item, prompt, resp)
    return score_choice(item, prompt, resp)
