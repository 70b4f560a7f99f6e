"""Re-scoring another harness's answers: foreign answers -> a culturelens run directory.

The importers (:mod:`culturelens.interop.lmeval`, :mod:`culturelens.interop.inspect_import`) turn
each logged answer into a :class:`ForeignAnswer`: the culturelens item it answers (matched in the
task's own dataset, so gold, country, region, language and subsets are culturelens's), how its
options were shown, and the model's response as culturelens's :class:`~culturelens.schema.Response`
(per-option log-likelihoods, or the completion). :func:`write_foreign_run` then scores every answer
with the task's own scorer and writes a run directory through
:class:`~culturelens.runlog.RunLogWriter`, exactly as ``culturelens run`` does, so every analysis
(breakdowns with intervals, baselines, robustness over the foreign run's prompts, ``compare``,
``report``, ``export``) works on it unchanged.

Each sample keeps where it came from under ``foreign`` (harness, file, line, the harness's own ids
and metrics, and what did not match culturelens's presentation, such as options that were scored
but never shown), and each task's results carry a ``foreign`` summary (how many answers, the
harness's own score next to culturelens's, disagreements).
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturelens import rundir
from culturelens.runlog import RunConfig, RunLogWriter, item_groups
from culturelens.runner import Runner, RunResult, package_versions
from culturelens.schema import Item, Message, Mode, Prompt, Response, Score, Variant
from culturelens.tasks.base import Task, get_task

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class ForeignLogError(ValueError):
    """A foreign log cannot be re-scored: one line naming the file, row (line or sample) and field."""

    def __init__(
        self, path: str | Path, message: str, row: int | str | None = None, field: str | None = None
    ):
        where = str(path)
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field {field}"
        super().__init__(f"{where}: {message}")


@dataclass
class ForeignAnswer:
    """One answer of another harness to one culturelens item, as culturelens can score it.

    ``labels`` are the option labels in the order the foreign prompt listed them and ``order`` maps
    each displayed position to the item's original option index. ``targets`` are what the harness
    scored (continuations); ``response`` holds one log-likelihood per target (letter / cloze) or
    the completion (generate)."""

    item: Item
    mode: Mode
    response: Response
    labels: list[str]
    order: list[int]
    targets: list[str] = field(default_factory=list)
    variant: Variant = field(default_factory=Variant)
    prompt: str = ""
    source: dict[str, Any] = field(default_factory=dict)


# --- matching foreign records to culturelens items --------------------------------------------------
def norm(text: Any) -> str:
    """Text as compared across harnesses: NFKC, whitespace collapsed, case folded."""
    return " ".join(unicodedata.normalize("NFKC", str(text)).split()).casefold()


def _strings(obj: Any) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _strings(v)


def _nulls(obj: Any) -> int:
    if obj is None or (isinstance(obj, float) and math.isnan(obj)):
        return 1
    if isinstance(obj, dict):
        return sum(_nulls(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_nulls(v) for v in obj)
    return 0


class ItemMatcher:
    """A task's items, found by id, by a record's fields (question and every option among its
    strings) or by a prompt (the question inside it, and the same option texts)."""

    def __init__(self, items: Sequence[Item]):
        self.items = list(items)
        self.by_id = {it.id: it for it in self.items}
        self.by_question: dict[str, list[Item]] = {}
        self.by_options: dict[frozenset[str], list[Item]] = {}
        for it in self.items:
            self.by_question.setdefault(norm(it.question), []).append(it)
            self.by_options.setdefault(frozenset(norm(o) for o in it.options), []).append(it)

    def from_record(self, record: dict[str, Any]) -> list[Item]:
        """Items whose question is one of the record's strings and whose options all are; an option
        may stand for a null of the record (HF ``datasets`` reads a CSV cell ``None`` or ``NA`` as
        missing: CulturalBench-Easy question 221)."""
        strings = {norm(s) for s in _strings(record)}
        nulls = _nulls(record)
        found = []
        for s in strings:
            for it in self.by_question.get(s, []):
                if sum(norm(o) not in strings for o in it.options) <= nulls:
                    found.append(it)
        return list({it.id: it for it in found}.values())

    def from_prompt(self, prompt: str, choices: Sequence[str]) -> list[Item]:
        """Items with exactly these option texts whose question appears in the prompt."""
        cands = self.by_options.get(frozenset(norm(c) for c in choices), [])
        text = norm(prompt)
        return [it for it in cands if norm(it.question) in text]


def task_items(
    task: str, data_dir: str | None, options: dict[str, Any] | None = None
) -> tuple[Task, list[Item]]:
    """The culturelens task and all its items (from its local data, as ``culturelens run`` loads them)."""
    t = get_task(task, data_dir=data_dir, **(options or {}))
    return t, t.items()


def _labelled(item: Item, prompt: str, labels: Sequence[str]) -> dict[int, int] | None:
    """Options as the prompt lists them under their labels (``A. text``, ``A: text, B: text``,
    ``(A) text``): option index -> position; None when the labels' texts are not the item's options."""
    if not labels:
        return None
    text = unicodedata.normalize("NFKC", prompt)
    q = unicodedata.normalize("NFKC", item.question)
    at = text.find(q)
    body = text[at + len(q) :] if at >= 0 else text
    alt = "|".join(re.escape(lab) for lab in sorted(labels, key=len, reverse=True))
    marks = list(re.finditer(rf"(?:^|(?<=[\s,;(\[]))\(?({alt})\s*[.):：\]]\s*", body, flags=re.M))
    if not marks:
        return None
    free: dict[str, list[int]] = {}
    for k, o in enumerate(item.options):
        free.setdefault(norm(o), []).append(k)
    found: dict[int, int] = {}
    for j, m in enumerate(marks):
        stop = marks[j + 1].start() if j + 1 < len(marks) else len(body)
        seg = body[m.end() : stop].split("\n")[0].strip().rstrip(",;").strip()
        ks = free.get(norm(seg))
        if not ks:
            return None
        found[ks.pop(0)] = m.start()
    return found


def _option_spans(item: Item, prompt: str, labels: Sequence[str] = ()) -> dict[int, int]:
    """Where each option's text stands in the prompt after the question: option index -> position.
    Under its label when the prompt labels its options (:func:`_labelled`); else its text as a whole
    word, longer options first and no two sharing text, so an option that is part of another
    (``Yes`` in ``Yes, always``; ``ㄱ, ㄴ`` in ``ㄱ, ㄴ, ㄷ``) must stand on its own to count."""
    labelled = _labelled(item, prompt, labels)
    if labelled:
        return labelled
    text = norm(prompt)
    q = norm(item.question)
    at = text.find(q)
    start = at + len(q) if at >= 0 else 0
    taken: list[tuple[int, int]] = []
    found: dict[int, int] = {}
    for k in sorted(range(len(item.options)), key=lambda k: -len(norm(item.options[k]))):
        o = norm(item.options[k])
        if not o:
            continue
        pattern = re.compile(rf"(?<!\w){re.escape(o)}(?!\w)")
        m = pattern.search(text, start)
        while m is not None and any(a < m.end() and m.start() < b for a, b in taken):
            m = pattern.search(text, m.start() + 1)
        if m is not None:
            taken.append((m.start(), m.end()))
            found[k] = m.start()
    return found


def shown_options(
    item: Item, order: Sequence[int], prompt: str, labels: Sequence[str] = ()
) -> list[bool] | None:
    """Per displayed position: whether that option's text stands in the prompt the model saw (None
    when the log does not keep the prompt)."""
    if not prompt:
        return None
    found = _option_spans(item, prompt, labels)
    return [i in found for i in order]


def displayed_order(item: Item, prompt: str, labels: Sequence[str] = ()) -> list[int] | None:
    """The order the prompt lists the item's options in (displayed position -> original index); None
    when the prompt does not show every option (or there is no prompt)."""
    if not prompt:
        return None
    found = _option_spans(item, prompt, labels)
    if len(found) < len(item.options):
        return None
    return sorted(found, key=found.__getitem__)


def is_label_set(continuations: Sequence[str]) -> bool:
    """Continuations that are option labels (``" A"``, ``"(b)"``, ``" 3"``): letter mode."""
    stripped = [re.sub(r"^[\s(\[]+|[\s)\].:]+$", "", c) for c in continuations]
    return len(set(stripped)) == len(stripped) and all(0 < len(s) <= 2 and s.isalnum() for s in stripped)


# --- scoring and writing -----------------------------------------------------------------------------
def _prompt(a: ForeignAnswer) -> Prompt:
    options = [a.item.options[i] if 0 <= i < len(a.item.options) else "" for i in a.order]
    return Prompt(
        item_id=a.item.id,
        variant=a.variant,
        mode=a.mode,
        messages=[Message(role="user", content=a.prompt)],
        labels=list(a.labels),
        order=list(a.order),
        continuations=list(a.targets) if a.mode is Mode.CLOZE else [],
        options=options,
    )


def _complete(a: ForeignAnswer) -> ForeignAnswer:
    """Options the harness did not score at all get a log-likelihood of -inf (never chosen), so the
    distribution covers every option of the item; the sample names them under ``unscored``."""
    n = len(a.item.options)
    if a.mode is Mode.GENERATE or a.response.logprobs is None or len(a.order) >= n:
        return a
    missing = [i for i in range(n) if i not in a.order]
    lps = [*a.response.logprobs, *([-math.inf] * len(missing))]
    n_tok = [*(a.response.n_tokens or []), *([0] * len(missing))] if a.response.n_tokens else None
    labels = [*a.labels, *(LETTERS[len(a.labels) + k] for k in range(len(missing)))]
    targets = [*a.targets, *([""] * len(missing))] if a.targets else []
    a.source.setdefault("unscored", missing)
    return ForeignAnswer(
        a.item,
        a.mode,
        a.response.model_copy(update={"logprobs": lps, "n_tokens": n_tok}),
        labels,
        [*a.order, *missing],
        targets,
        a.variant,
        a.prompt,
        a.source,
    )


def _record(a: ForeignAnswer, score: Score) -> dict[str, Any]:
    item = a.item
    rec: dict[str, Any] = {
        "task": item.task,
        "item_id": item.id,
        "variant": a.variant.id,
        "mode": a.mode.value,
        **item_groups(item),
        "prompt": a.prompt,
        "targets": a.targets or a.labels,
        "options": item.options,
        "order": a.order,
        "gold": item.correct if item.correct else [x.model_dump() for x in item.answers][:10],
        "response": a.response.model_dump(exclude={"cached", "meta"}, exclude_none=True),
        "prediction": score.prediction,
        "probs": score.probs,
        "metrics": score.metrics,
        "valid": score.valid,
        "cache_key": None,
        "foreign": a.source,
    }
    return rec


def _summary(answers: list[ForeignAnswer], scores: list[Score], harness: str) -> dict[str, Any]:
    """What the harness said next to what culturelens computes from the same answers."""
    out: dict[str, Any] = {"harness": harness, "answers": len(answers)}
    theirs = [(a.source.get("metrics") or {}).get("acc") for a in answers]
    pairs = [
        (float(t), s.metrics["acc"])
        for t, s in zip(theirs, scores, strict=True)
        if isinstance(t, int | float) and "acc" in s.metrics
    ]
    if pairs:
        out["harness_acc"] = sum(t for t, _ in pairs) / len(pairs)
        out["acc_agreement"] = sum(t == c for t, c in pairs) / len(pairs)
        out["acc_disagreements"] = sum(t != c for t, c in pairs)
    hidden = [a for a in answers if a.source.get("scored_not_shown")]
    if hidden:
        gold_hidden = [
            a
            for a in hidden
            if any(a.order[p] in a.item.correct for p in a.source["scored_not_shown"] if p < len(a.order))
        ]
        out["scored_not_shown"] = {
            "answers": len(hidden),
            "gold_not_shown": len(gold_hidden),
            "note": f"{len(hidden)} answers scored options the prompt did not show; for {len(gold_hidden)} "
            "of them the gold was such an option, so no model could have chosen it knowingly",
        }
    unscored = [a for a in answers if a.source.get("unscored")]
    if unscored:
        out["unscored_options"] = len(unscored)
    unknown = sum(1 for a in answers if "shown" in a.source and a.source["shown"] is None)
    if unknown:
        out["prompt_not_logged"] = unknown
    gold_diff = sum(1 for a in answers if a.source.get("gold_disagrees"))
    if gold_diff:
        out["gold_disagrees"] = gold_diff
    return out


def write_foreign_run(
    out: str | Path,
    answers: Sequence[ForeignAnswer],
    *,
    harness: str,
    model: str,
    sources: Sequence[str],
    data_dir: str | None = None,
    task_options: dict[str, dict[str, Any]] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    command: list[str] | None = None,
    model_info: dict[str, Any] | None = None,
) -> RunResult:
    """Score ``answers`` with their tasks' own scorers and write them as a culturelens run in ``out``
    (an earlier run's files there are replaced). Returns the run as ``culturelens run`` does."""
    if not answers:
        raise ForeignLogError(sources[0] if sources else "<no file>", "no answers to re-score")
    t0 = time.perf_counter()
    run_dir = rundir.prepare(Path(out))
    names = list(dict.fromkeys(a.item.task for a in answers))
    variants = list(dict.fromkeys(a.variant for a in answers))
    seen: dict[tuple[str, str], Any] = {}
    for a in answers:
        key = (a.item.id, a.variant.id)
        if key in seen:
            raise ForeignLogError(
                a.source.get("file", "<log>"),
                f"item {a.item.id} answered twice under variant {a.variant.id} (also at row {seen[key]})",
                row=a.source.get("line"),
            )
        seen[key] = a.source.get("line")
    tasks: list[tuple[Task, list[Item]]] = []
    opts = task_options or {}
    for name in names:
        task = get_task(name, data_dir=data_dir, **opts.get(name, {}))
        of_task = {a.item.id: a.item for a in answers if a.item.task == name}
        tasks.append((task, list(of_task.values())))
    identity = {"backend": harness, "model": model}
    cfg = RunConfig(
        model=f"{harness}:{model}",
        tasks=names,
        mode=answers[0].mode if len({a.mode for a in answers}) == 1 else None,
        variants=variants,
        data_dir=data_dir,
        out=str(run_dir),
        n_boot=n_boot,
        seed=seed,
        task_options={k: v for k, v in opts.items() if v},
        command=command,
    )
    scores: dict[tuple[int, str], list[Score]] = {}
    orders: dict[tuple[int, str], list[tuple[Item, list[int]]]] = {}
    per_task: dict[int, tuple[list[ForeignAnswer], list[Score]]] = {}
    lock = rundir.RunLock(run_dir)
    lock.acquire()
    try:
        rundir.clear(run_dir)
        writer = RunLogWriter(run_dir)
        header = {
            "config": cfg.model_dump(mode="json"),
            "backend": {
                "identity": identity,
                "chat_template": "foreign",
                "foreign": {"harness": harness, "sources": [str(s) for s in sources], **(model_info or {})},
            },
            "tasks": {t.name: {**t.info(), "items": len(items)} for t, items in tasks},
            "versions": package_versions(),
            "command": " ".join(command) if command else None,
        }
        writer.start(header, started=time.time(), requests_digest=None, pid=None)
        writer.write_items(
            [it for _, items in tasks for it in items], {t.name: t.reference_data() for t, _ in tasks}
        )
        writer.open_samples()
        index = {name: i for i, name in enumerate(names)}
        for variant in variants:  # variant-major, items in the foreign log's order
            for a in answers:
                if a.variant != variant:
                    continue
                ti = index[a.item.task]
                task = tasks[ti][0]
                full = _complete(a)
                score = task.score(full.item, _prompt(full), full.response)
                scores.setdefault((ti, variant.id), []).append(score)
                orders.setdefault((ti, variant.id), []).append((full.item, full.order))
                mine, theirs = per_task.setdefault(ti, ([], []))
                mine.append(full)
                theirs.append(score)
                writer.add_sample(_record(full, score))
        runner = Runner(cfg)
        results = runner.aggregate(tasks, scores, identity, "foreign", orders)
        for ti, (mine, theirs) in per_task.items():
            results["tasks"][names[ti]]["foreign"] = _summary(mine, theirs, harness)
        timing: dict[str, float] = {
            "wall_s": time.perf_counter() - t0,
            "samples": len(answers),
            "computed": 0,
            "cache_hits": 0,
            "model_load_s": 0.0,
            "scoring_s": 0.0,
            "samples_per_s": 0.0,
        }
        writer.finish(results, timing, ended=time.time())
    except BaseException as exc:
        RunLogWriter(run_dir).fail("failed", str(exc)[:500], ended=time.time())
        raise
    finally:
        lock.release()
    return RunResult(run_dir, results, timing)
