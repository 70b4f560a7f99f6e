"""lm-evaluation-harness logs -> a culturelens run: re-score ``samples_<task>_<date>.jsonl`` files.

``lm_eval --log_samples`` writes, per task, one JSON line per document: ``doc_id``, the dataset row
(``doc``), ``target``, ``arguments`` (per request: the context and the continuation scored, as
``{"gen_args_0": {"arg_0": context, "arg_1": continuation}, ...}``; older versions wrote lists),
``resps`` / ``filtered_resps`` (per continuation ``[log-likelihood, is_greedy]``, written as strings;
for ``generate_until`` the generated text), the metric values (``acc``...) and SHA-256 hashes of the
doc, prompt and target. :func:`read_lmeval` matches each line to the culturelens item it answers
and :func:`import_lmeval` writes the culturelens run (:func:`culturelens.interop.rescore.write_foreign_run`).

**What is recovered**

* Per-choice log-likelihoods: the whole answer distribution of a ``multiple_choice`` task, so
  culturelens's own scoring runs on it: ``acc``, ``p_correct`` and ``label_mass`` (letter
  continuations such as ``" A"``: letter mode), or raw and byte-normalised accuracy (option texts:
  cloze mode), with every breakdown (country, region, language, topic, subsets) and its interval,
  the baselines, partial pooling, and, when several files of the same culturelens task are given
  (several prompts or option orders: one variant each), the robustness analysis.
* The gold and the item's country etc. come from culturelens's copy of the dataset (``--data-dir``),
  matched by id where the task has one (CulturalBench ``question_idx``, Global-MMLU ``sample_id``) or
  by content (the question and every option text among the doc's strings); lm-eval's own target is
  checked against it (``gold_disagrees``) and its own per-doc ``acc`` against culturelens's
  (``acc_agreement`` in the task's ``foreign`` summary).
* The prompt (``arguments``' context): kept as each sample's prompt, and used to find options that
  were scored but never shown (``scored_not_shown``).
* ``generate_until`` tasks: the (filtered) completion, parsed as culturelens parses a generation.

**What cannot be recovered**: token counts of continuations (``n_tokens``; lm-eval does not log
them, so nothing per-token), log-probabilities of anything lm-eval did not score (an option it left
out gets ``-inf`` and is named under ``unscored``), the chat template and system prompt as separate
parts (only the flat context), which option order or wording a prompt used unless several files
are given, the model's identity beyond the name in ``results_<date>.json`` (no file hash), the
response cache (nothing is recomputable), and, for generations, any distribution over options.

**The CLIcK trap.** lm-eval's merged ``click`` task (``click_cul_*``, ``click_lang_*``) lists only
options A-D in its prompt but scores ``A``-``E`` on the 256 CSAT items that have five options, 49 of
whose golds are the unseen ``E``. The prompt in the log shows it: those answers carry
``scored_not_shown`` and the task's ``foreign`` summary counts them (and how many golds were
unseen), so the number is not read as if the model had seen the options it was scored on.
culturelens's own ``click`` task shows and scores all five.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from culturelens.interop.rescore import (
    ForeignAnswer,
    ForeignLogError,
    ItemMatcher,
    displayed_order,
    is_label_set,
    shown_options,
    task_items,
    write_foreign_run,
)
from culturelens.runner import RunResult
from culturelens.schema import Item, Mode, Response, Variant

LETTERS = "ABCDEFGHIJ"
_SAMPLES_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-.]+)\.jsonl(?:\.gz)?$")

#: lm-eval task names (by prefix) -> the culturelens task they run
LMEVAL_TASKS: tuple[tuple[str, str], ...] = (
    ("click", "click"),
    ("global_mmlu_full_", "global_mmlu"),
    ("global_mmlu_", "global_mmlu_lite"),
    ("culturalbench", "culturalbench_easy"),
)


def lmeval_task_name(path: Path) -> str:
    """The lm-eval task of a ``samples_<task>_<date>.jsonl`` file (the stem when not so named)."""
    m = _SAMPLES_NAME.match(path.name)
    return m.group("task") if m else path.name.removesuffix(".gz").removesuffix(".jsonl")


def culturelens_task(lmeval_task: str) -> str | None:
    """The culturelens task an lm-eval task runs, when known."""
    for prefix, task in LMEVAL_TASKS:
        if lmeval_task.startswith(prefix):
            return task
    return None


def _id_candidates(task: str, lmeval_task: str, doc: dict[str, Any]) -> list[str]:
    """Culturelens item ids a doc names through the dataset's own id field."""
    if task == "culturalbench_easy" and doc.get("question_idx") is not None:
        raw = str(doc["question_idx"])
        return [f"cb-easy:{raw[:-2] if raw.endswith('.0') else raw}"]
    if task in ("global_mmlu", "global_mmlu_lite") and doc.get("sample_id") is not None:
        rest = lmeval_task.removeprefix("global_mmlu_full_").removeprefix("global_mmlu_")
        lang = rest.split("_")[0]
        return [f"{task}:{lang}:test:{doc['sample_id']}"]
    return []


def read_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every record of a JSON Lines file as (line number, record); a bad line is one error."""
    if not path.is_file():
        raise ForeignLogError(path, "file not found")
    opener = gzip.open if path.suffix == ".gz" else open  # a .jsonl.gz reads as its .jsonl
    with opener(path, "rt", encoding="utf-8", errors="surrogateescape") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ForeignLogError(path, f"not valid JSON ({exc.msg})", row=lineno) from None
            if not isinstance(rec, dict):
                raise ForeignLogError(path, f"expected a JSON object, got {type(rec).__name__}", row=lineno)
            yield lineno, rec


def _arguments(rec: dict[str, Any], path: Path, lineno: int) -> list[tuple[str | None, Any]]:
    """(context, continuation or generation kwargs) per request; the context may be left out."""
    args = rec.get("arguments")
    if args is None:
        return []
    out: list[tuple[str | None, Any]] = []
    if isinstance(args, dict):  # lm-eval >= 0.4.3: {"gen_args_0": {"arg_0": ctx, "arg_1": cont}}
        keys = sorted(args, key=lambda k: int(k.rsplit("_", 1)[-1]) if k.rsplit("_", 1)[-1].isdigit() else 0)
        for k in keys:
            a = args[k]
            if not isinstance(a, dict):
                raise ForeignLogError(path, "expected an object", row=lineno, field=f"arguments.{k}")
            out.append((a.get("arg_0"), a.get("arg_1")))
    elif isinstance(args, list):
        for i, a in enumerate(args):
            if not isinstance(a, list | tuple) or not a:
                raise ForeignLogError(
                    path, "expected [context, continuation]", row=lineno, field=f"arguments[{i}]"
                )
            out.append((a[0], a[1] if len(a) > 1 else None))
    else:
        raise ForeignLogError(
            path, f"expected an object or a list, got {type(args).__name__}", row=lineno, field="arguments"
        )
    return out


def _loglik(value: Any, path: Path, lineno: int, i: int) -> float:
    """One ``[log-likelihood, is_greedy]`` pair (lm-eval writes both as strings) -> the number."""
    first = value[0] if isinstance(value, list | tuple) and value else value
    try:
        lp = float(first)
    except (TypeError, ValueError):
        raise ForeignLogError(
            path,
            f"expected a log-likelihood, got {str(first)[:40]!r}",
            row=lineno,
            field=f"filtered_resps[{i}]",
        ) from None
    if lp != lp or lp > 1e-6:
        raise ForeignLogError(
            path, f"log-likelihood {lp} is not <= 0", row=lineno, field=f"filtered_resps[{i}]"
        )
    return lp


class AlreadyAnswered(ForeignLogError):
    """Every item a doc can be is answered already (by an earlier line or file of the same variant)."""


def _pick(cands: list[Item], used: set[str]) -> Item | None:
    free = [it for it in cands if it.id not in used]
    return free[0] if free else None


def read_lmeval(
    path: str | Path,
    task: str,
    matcher: ItemMatcher,
    variant: Variant | None = None,
    used: set[str] | None = None,
) -> list[ForeignAnswer]:
    """The answers of one lm-eval samples file as culturelens answers to ``task``'s items. ``used``:
    items already answered in this variant (identical docs go to identical items in turn)."""
    path = Path(path)
    lm_task = lmeval_task_name(path)
    variant = variant or Variant()
    out: list[ForeignAnswer] = []
    used = set() if used is None else used
    for lineno, rec in read_lines(path):
        for key in ("doc", "filtered_resps"):
            if key not in rec:
                raise ForeignLogError(
                    path, "missing field (is this an lm-eval samples file?)", row=lineno, field=key
                )
        doc = rec["doc"]
        if not isinstance(doc, dict):
            raise ForeignLogError(
                path, f"expected an object, got {type(doc).__name__}", row=lineno, field="doc"
            )
        ids = [i for i in _id_candidates(task, lm_task, doc) if i in matcher.by_id]
        cands = [matcher.by_id[i] for i in ids] or matcher.from_record(doc)
        item = _pick(cands, used)
        if item is None:
            if cands:
                raise AlreadyAnswered(
                    path,
                    f"doc {rec.get('doc_id')!r}: {cands[0].id} is answered already",
                    row=lineno,
                    field="doc",
                )
            raise ForeignLogError(
                path,
                f"doc {rec.get('doc_id')!r} of lm-eval task {lm_task}: no culturelens item of task {task} matches "
                "it (is --data-dir the same release?)",
                row=lineno,
                field="doc",
            )
        used.add(item.id)
        args = _arguments(rec, path, lineno)
        resps = rec["filtered_resps"]
        if not isinstance(resps, list) or not resps:
            raise ForeignLogError(path, "expected a non-empty list", row=lineno, field="filtered_resps")
        context = next((c for c, _ in args if isinstance(c, str)), None) or ""
        source: dict[str, Any] = {
            "harness": "lm-eval",
            "file": str(path),
            "line": lineno,
            "task": lm_task,
            "doc_id": rec.get("doc_id"),
            "target": rec.get("target"),
            "metrics": {m: rec[m] for m in rec.get("metrics") or [] if isinstance(rec.get(m), int | float)},
        }
        for h in ("doc_hash", "prompt_hash"):
            if rec.get(h):
                source[h] = rec[h]
        generated = all(isinstance(r, str) for r in resps) and not (args and isinstance(args[0][1], str))
        n = len(item.options)
        if generated:  # generate_until: the completion, parsed against the options shown in order
            text = resps[0] if isinstance(resps[0], str) else str(resps[0])
            order = list(range(n))
            answer = ForeignAnswer(
                item,
                Mode.GENERATE,
                Response(text=text),
                list(LETTERS[:n]),
                order,
                [],
                variant,
                context,
                source,
            )
        else:
            lps = [_loglik(r, path, lineno, i) for i, r in enumerate(resps)]
            conts = [c if isinstance(c, str) else "" for _, c in args] if args else []
            if conts and len(conts) != len(lps):
                raise ForeignLogError(
                    path,
                    f"{len(conts)} continuations for {len(lps)} log-likelihoods",
                    row=lineno,
                    field="arguments",
                )
            if len(lps) > n:
                raise ForeignLogError(
                    path,
                    f"{len(lps)} scored choices for an item with {n} options ({item.id})",
                    row=lineno,
                    field="filtered_resps",
                )
            if not conts or is_label_set(conts):  # letters: label k names the k-th option the prompt lists
                labels = [c.strip(" ([)].:") for c in conts] or list(LETTERS[: len(lps)])
                seen_order = displayed_order(item, context, labels)
                if seen_order is not None and len(seen_order) == len(lps):
                    order = seen_order
                    if order != sorted(order):
                        source["order_from_prompt"] = order
                else:  # no prompt, or not every option in it: the dataset's order
                    order = list(range(len(lps)))
                answer = ForeignAnswer(
                    item,
                    Mode.LETTER,
                    Response(logprobs=lps),
                    labels,
                    order,
                    list(conts),
                    variant,
                    context,
                    source,
                )
            else:  # option texts: cloze, each continuation matched to its option by text
                from culturelens.interop.rescore import norm

                index = {norm(o): k for k, o in enumerate(item.options)}
                order = []
                for i, c in enumerate(conts):
                    k = index.get(norm(c))
                    if k is None:
                        raise ForeignLogError(
                            path,
                            f"continuation {c[:40]!r} is none of {item.id}'s options",
                            row=lineno,
                            field=f"arguments.gen_args_{i}",
                        )
                    order.append(k)
                labels = list(LETTERS[: len(lps)])
                # lm-eval prefixes each continuation with its target delimiter (" "); the option is the rest
                answer = ForeignAnswer(
                    item,
                    Mode.CLOZE,
                    Response(logprobs=lps),
                    labels,
                    order,
                    [c[1:] if c.startswith(" ") else c for c in conts],
                    variant,
                    context,
                    source,
                )
        # lm-eval's gold: an index into its choices, or a choice's text (a label such as "C")
        target = str(rec.get("target", "")).strip()
        t = (
            int(target)
            if target.isdigit()
            else answer.labels.index(target)
            if target in answer.labels
            else None
        )
        if (
            t is not None
            and item.correct
            and not (0 <= t < len(answer.order) and answer.order[t] in item.correct)
        ):
            source["gold_disagrees"] = True
        shown = shown_options(
            item, answer.order, context, answer.labels if answer.mode is Mode.LETTER else ()
        )
        source["shown"] = shown
        if shown is not None and not all(shown):
            source["scored_not_shown"] = [p for p, s in enumerate(shown) if not s]
        out.append(answer)
    if not out:
        raise ForeignLogError(path, "no samples in the file")
    return out


def _model_info(paths: Sequence[Path]) -> tuple[str, dict[str, Any]]:
    """The model's name and lm-eval's run config, from a ``results_*.json`` beside the samples."""
    for p in paths:
        for res in sorted(p.parent.glob("results_*.json")):
            try:
                data = json.loads(res.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            cfg = data.get("config") or {}
            args = cfg.get("model_args")
            kv: dict[str, Any] = dict(args) if isinstance(args, dict) else {}
            if isinstance(args, str):
                kv = dict(a.split("=", 1) for a in args.split(",") if "=" in a)
            name = str(kv.get("pretrained") or data.get("model_name") or cfg.get("model") or "unknown")
            if kv.get("gguf_file"):  # as culturelens's hf backend names it: ID#file.gguf
                name = f"{name}#{kv['gguf_file']}"
            info = {
                "results_file": str(res),
                "lm_eval_config": {
                    k: cfg.get(k) for k in ("model", "model_args", "batch_size", "device") if k in cfg
                },
                "lm_eval_version": data.get("lm_eval_version"),
            }
            return str(name), info
    return "unknown", {}


def import_lmeval(
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
    """Re-score lm-eval samples files of one culturelens ``task`` into the run directory ``out``.

    Several files (the same task under several prompts or option orders) become one variant each,
    named ``template=<lm-eval task>``, so the robustness analysis compares them."""
    files = [Path(p) for p in paths]
    if not files:
        raise ForeignLogError("<none>", "no samples file given")
    names = [lmeval_task_name(p) for p in files]
    if task is None:
        known = {culturelens_task(n) for n in names}
        if len(known) != 1 or None in known:
            raise ForeignLogError(
                files[0], f"cannot tell which culturelens task lm-eval task {names[0]!r} runs: give --task"
            )
        task = known.pop()
    assert task is not None
    _, items = task_items(task, data_dir, task_options)
    matcher = ItemMatcher(items)
    # files that answer other items belong together (lm-eval writes one file per sub-task); a file
    # answering items already answered is another presentation of them: another variant
    slots: list[tuple[str, set[str], list[ForeignAnswer]]] = []
    for p, name in zip(files, names, strict=True):
        for _label, used, got in slots:
            try:
                mine = read_lmeval(p, task, matcher, used=set(used))
            except AlreadyAnswered:
                continue
            used.update(a.item.id for a in mine)
            got += mine
            break
        else:
            mine = read_lmeval(p, task, matcher)
            taken = {lab for lab, _, _ in slots}
            label = name if name not in taken else f"{name}#{len(slots)}"
            slots.append((label, {a.item.id for a in mine}, mine))
    answers: list[ForeignAnswer] = []
    for label, _, got in slots:
        variant = Variant() if len(slots) == 1 else Variant(template=label)
        for a in got:
            a.variant = variant
        answers += got
    name, info = _model_info(files)
    return write_foreign_run(
        out,
        answers,
        harness="lm-eval",
        model=model or name,
        sources=[str(p) for p in files],
        data_dir=data_dir,
        task_options={task: dict(task_options or {})},
        n_boot=n_boot,
        seed=seed,
        command=command,
        model_info=info,
    )
