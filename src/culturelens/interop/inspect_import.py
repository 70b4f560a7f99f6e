"""inspect_ai logs -> a culturelens run: re-score ``.eval`` / ``.json`` logs of tasks culturelens knows.

Two kinds of log are read (``inspect_ai.log.read_eval_log``):

* **culturelens's own** (:mod:`culturelens.interop.inspect_log`): every sample carries its item
  snapshot, variant and raw response in its metadata, so the run comes back whole: the same
  samples, re-scored by the task's scorer from the logged log-probabilities or text, the same
  results (round trip; ``tests/test_inspect_interop.py``).
* **another harness's multiple-choice log** (inspect_evals, lighteval on inspect...): each sample's
  ``choices`` and ``input`` are matched to the culturelens task's items (the same option texts, the
  question inside the input; ``--data-dir`` for the task's data), the options' order is read from
  ``choices``, and the completion (``output.completion``) is parsed as culturelens parses a
  generation (``generate`` mode). Several epochs become one variant each (``template=epoch<k>``),
  so the robustness analysis tells how stable the answers are across samples; several logs of the
  same task become one variant each (``template=<log's task name>``).

**What is recovered** from a foreign log: the completion, the prompt, the shown options and their
order, the harness's own scores (kept per sample under ``foreign.metrics``). **What is not**: any
probability over options (inspect keeps the text, not log-probs, unless the model API returned
them), so no ``p_correct`` and no letter / cloze scoring; the item's gold, country and subsets
come from culturelens's dataset, not from the log. Samples without ``choices`` (short answer, open
generation) are not re-scored: the importer says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturelens.interop.rescore import (
    ForeignAnswer,
    ForeignLogError,
    ItemMatcher,
    norm,
    task_items,
    write_foreign_run,
)
from culturelens.runner import RunResult
from culturelens.schema import Item, Mode, Response, Variant

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _read(path: Path) -> Any:
    try:
        from inspect_ai.log import read_eval_log
    except ImportError as exc:
        raise ValueError(
            f"reading inspect logs needs inspect_ai: pip install 'culturelens[inspect]' ({exc})"
        ) from None
    if not path.is_file():
        raise ForeignLogError(path, "file not found")
    try:
        return read_eval_log(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad input file, said in one line
        raise ForeignLogError(path, f"not an inspect log ({' '.join(str(exc).split())[:160]})") from None


def _input_text(sample: Any) -> str:
    inp = sample.input
    if isinstance(inp, str):
        return inp
    return "\n\n".join(str(getattr(m, "text", "") or getattr(m, "content", "")) for m in inp)


def _own(sample: Any, path: Path, where: str) -> ForeignAnswer | None:
    """A sample of a culturelens-made log, back as the answer it was (None: not culturelens's)."""
    meta = sample.metadata or {}
    if not all(k in meta for k in ("item", "item_id", "task", "mode", "response")):
        return None
    try:
        item = Item.model_validate(meta["item"])
        variant = Variant.model_validate(meta.get("variant_spec") or {})
        response = Response.model_validate(meta["response"])
        mode = Mode(meta["mode"])
    except ValueError as exc:
        raise ForeignLogError(
            path,
            f"culturelens metadata unreadable ({str(exc).splitlines()[0][:120]})",
            row=where,
            field="metadata",
        ) from None
    order = [int(i) for i in meta.get("order") or range(len(item.options))]
    targets = [str(t) for t in meta.get("targets") or []]
    labels = [t.strip() for t in targets] if mode is Mode.LETTER else list(LETTERS[: len(order)])
    prompt = _input_text(sample)
    if mode is Mode.CLOZE:  # the runner scored " " + option after a prompt not ending in whitespace
        sep = "" if (not prompt or prompt[-1].isspace()) else " "
        targets = [t[len(sep) :] if sep and t.startswith(sep) else t for t in targets]
    source = {
        "harness": "culturelens-inspect",
        "file": str(path),
        "line": where,
        "sample_id": sample.id,
        "sample_index": meta.get("sample_index"),
    }
    return ForeignAnswer(item, mode, response, labels, order, targets, variant, prompt, source)


def _foreign(
    sample: Any, matcher: ItemMatcher, used: set[str], task: str, path: Path, where: str
) -> ForeignAnswer:
    choices = list(sample.choices or [])
    if not choices:
        raise ForeignLogError(
            path,
            "no choices: only multiple-choice samples can be re-scored from an inspect log",
            row=where,
            field="choices",
        )
    text = _input_text(sample)
    cands = [it for it in matcher.from_prompt(text, choices) if it.id not in used]
    if not cands:
        raise ForeignLogError(
            path,
            f"no culturelens item of task {task} has these choices and its question in the input (is --data-dir the same release?)",
            row=where,
            field="input",
        )
    item = cands[0]
    index = {norm(o): k for k, o in enumerate(item.options)}
    order = [index[norm(c)] for c in choices]
    completion = sample.output.completion if sample.output is not None else ""
    scores = {k: v.value for k, v in (sample.scores or {}).items()}
    source: dict[str, Any] = {
        "harness": "inspect",
        "file": str(path),
        "line": where,
        "sample_id": sample.id,
        "epoch": sample.epoch,
        "target": sample.target,
        "scores": {k: v for k, v in scores.items() if isinstance(v, int | float | str)},
    }
    # inspect's choice scorers give C / I; as a number, the harness's own per-sample accuracy
    acc = next((v for v in scores.values() if v in ("C", "I")), None)
    if acc is not None:
        source["metrics"] = {"acc": 1.0 if acc == "C" else 0.0}
    return ForeignAnswer(
        item,
        Mode.GENERATE,
        Response(text=completion or ""),
        list(LETTERS[: len(choices)]),
        order,
        [],
        Variant(),
        text,
        source,
    )


def read_inspect(
    path: str | Path,
    task: str | None,
    data_dir: str | None = None,
    task_options: dict[str, Any] | None = None,
) -> tuple[list[ForeignAnswer], dict[str, Any]]:
    """The answers of one inspect log (see the module docstring) and what the log says of its model."""
    path = Path(path)
    elog = _read(path)
    samples = list(elog.samples or [])
    if not samples:
        raise ForeignLogError(path, "the log holds no samples (was it written with log_samples off?)")
    info = {"model": elog.eval.model, "inspect_task": elog.eval.task, "created": elog.eval.created}
    first = _own(samples[0], path, f"sample {samples[0].id}")
    out: list[ForeignAnswer] = []
    if first is not None:  # culturelens's own log
        for s in samples:
            a = _own(s, path, f"sample {s.id}")
            if a is None:
                raise ForeignLogError(
                    path, "culturelens metadata missing", row=f"sample {s.id}", field="metadata"
                )
            if task is not None and a.item.task != task:
                raise ForeignLogError(
                    path,
                    f"sample is of task {a.item.task}, not {task}",
                    row=f"sample {s.id}",
                    field="metadata.task",
                )
            out.append(a)
        out.sort(key=lambda a: (a.source.get("sample_index") is None, a.source.get("sample_index") or 0))
        info["culturelens"] = (elog.eval.metadata or {}).get("culturelens") or {}
        return out, info
    if task is None:
        raise ForeignLogError(
            path, f"cannot tell which culturelens task inspect task {elog.eval.task!r} runs: give --task"
        )
    _, items = task_items(task, data_dir, task_options)
    matcher = ItemMatcher(items)
    epochs = sorted({s.epoch for s in samples})
    used: dict[int, set[str]] = {e: set() for e in epochs}
    for s in samples:
        a = _foreign(s, matcher, used[s.epoch], task, path, f"sample {s.id} epoch {s.epoch}")
        used[s.epoch].add(a.item.id)
        if len(epochs) > 1:
            a.variant = Variant(template=f"epoch{s.epoch}")
        out.append(a)
    return out, info


def import_inspect(
    paths: Sequence[str | Path],
    out: str | Path,
    task: str | None = None,
    data_dir: str | None = None,
    task_options: dict[str, Any] | None = None,
    model: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    command: list[str] | None = None,
) -> RunResult:
    """Re-score inspect logs into the run directory ``out`` (one variant per log when several)."""
    files = [Path(p) for p in paths]
    if not files:
        raise ForeignLogError("<none>", "no log given")
    answers: list[ForeignAnswer] = []
    infos: list[dict[str, Any]] = []
    for k, p in enumerate(files):
        got, info = read_inspect(p, task, data_dir, task_options)
        if len(files) > 1:
            label = str(info.get("inspect_task") or p.stem).split("/")[-1]
            for a in got:
                base = a.variant.template if a.variant.template != "default" else ""
                a.variant = a.variant.model_copy(
                    update={"template": f"{label}#{k}" + (f":{base}" if base else "")}
                )
        answers += got
        infos.append(info)
    own = infos[0].get("culturelens") if "culturelens" in infos[0] else None
    harness = (
        "inspect"
        if own is None
        else str((own.get("config") or {}).get("model", "culturelens")).split(":")[0] or "culturelens"
    )
    name = model or str(infos[0].get("model") or "unknown")
    if own is not None:  # a culturelens log: the model keeps the identity the run recorded
        harness, _, rest = name.partition("/")
        name = rest or name
    cfg = (own or {}).get("config") or {}
    return write_foreign_run(
        out,
        answers,
        harness=harness,
        model=name,
        sources=[str(p) for p in files],
        data_dir=data_dir if data_dir is not None else cfg.get("data_dir"),
        task_options=(cfg.get("task_options") or {})
        if own is not None
        else {t: dict(task_options or {}) for t in {a.item.task for a in answers}},
        n_boot=int(cfg.get("n_boot", n_boot)) if own is not None else n_boot,
        seed=int(cfg.get("seed", seed)) if own is not None else seed,
        command=command,
        model_info={"inspect": infos},
    )
