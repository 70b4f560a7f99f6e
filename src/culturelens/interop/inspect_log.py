"""A culturelens run as inspect_ai logs: one ``.eval`` file (EvalLog schema version 2) per task.

Written with inspect_ai's own types and writer (``inspect_ai.log.EvalLog``, ``write_eval_log``;
``pip install 'culturelens[inspect]'``), so ``inspect view --log-dir RUN/inspect`` shows the run and
``inspect_ai.analysis.samples_df`` / ``evals_df`` read it. ``culturelens export RUN --format inspect``
calls :func:`write_inspect_logs`.

Per sample (one per item x variant): ``input`` is the prompt the model was sent (chat template
applied), ``choices`` the options in the order shown, ``target`` the gold label(s) as shown (the gold
answers' texts for short-answer items), ``output`` / ``messages`` the model's reply (generated text;
for letter and cloze scoring, the chosen option's label, since no text was generated), ``scores``
one inspect ``Score`` per culturelens metric (``acc``, ``p_correct``...; ``samples_df`` columns
``score_acc``...), and ``metadata`` culturelens's fields, flat for ``samples_df`` (``metadata_country``,
``metadata_region``, ``metadata_language``, ``metadata_topic``, ``metadata_variant``, ``metadata_mode``,
``metadata_subset_<name>``...), plus what a re-import needs: the item snapshot (``item``), the
variant spec and the raw response (per-option log-probs or text).

Per log: the headline and every other metric of the primary variant with its 95% interval and n
(``results.scores``: metrics ``mean``, ``ci_low``, ``ci_high``, ``n``), the per-country breakdown in
the score's metadata, and the run's config in ``eval.metadata``.

**Round trip**: :func:`culturelens.interop.inspect_import.import_inspect` turns such a log back into a
run with the same samples and results (re-scored from the logged responses). What inspect's format
does not hold is kept only in ``eval.metadata`` / sample metadata: the response cache key, run
timing, the robustness / alignment analyses (recomputed on import), and the report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from culturelens.runlog import RunLog, Sample, read_run
from culturelens.schema import Variant

#: where ``culturelens export RUN --format inspect`` writes, inside the run directory
INSPECT_DIR = "inspect"


def _iso(ts: float | None) -> str:
    return datetime.fromtimestamp(ts or 0.0, tz=UTC).isoformat(timespec="seconds")


def _labels(s: Sample) -> list[str]:
    """The labels the options were shown under (letter mode: the scored targets)."""
    n = len(s.order) or len(s.options)
    if s.mode.value == "letter" and len(s.targets) == n:
        return [t.strip() for t in s.targets]
    return [chr(ord("A") + k) for k in range(n)]


def _gold_labels(s: Sample) -> list[str]:
    labels = _labels(s)
    if isinstance(s.gold, list) and all(isinstance(g, int) for g in s.gold) and s.order:
        return [labels[p] for p, orig in enumerate(s.order) if orig in s.gold and p < len(labels)]
    if isinstance(s.gold, list):  # short answer: gold answer clusters
        return [
            t for g in s.gold if isinstance(g, dict) for t in (g.get("texts") or g.get("en_texts") or [])
        ][:10]
    return [] if s.gold is None else [str(s.gold)]


def _completion(s: Sample) -> str:
    text = s.response.get("text")
    if isinstance(text, str):
        return text
    if isinstance(s.prediction, int) and s.order and s.prediction in s.order:
        return _labels(s)[s.order.index(s.prediction)]
    return "" if s.prediction is None else str(s.prediction)


def _metadata(s: Sample, item: dict[str, Any] | None, variant: Variant | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "task": s.task,
        "item_id": s.item_id,
        "variant": s.variant,
        "mode": s.mode.value,
        "country": s.country,
        "iso2": s.iso2,
        "region": s.region,
        "language": s.language,
        "topic": s.topic,
        "group": s.group,
        **{f"subset_{k}": v for k, v in sorted(s.subset.items())},
        "prediction": s.prediction,
        "valid": s.valid,
        "probs": s.probs,
        "order": s.order,
        "targets": s.targets,
        "gold": s.gold,
        "response": s.response,
        "variant_spec": variant.model_dump(mode="json", exclude_defaults=True) if variant else {},
    }
    if s.fallback:
        meta["fallback"] = s.fallback
    if item is not None:
        meta["item"] = item
    return meta


def eval_log(log: RunLog, task: str) -> Any:
    """The inspect ``EvalLog`` of one task of a run (inspect_ai must be installed)."""
    from inspect_ai.log import (
        EvalConfig,
        EvalDataset,
        EvalLog,
        EvalMetric,
        EvalResults,
        EvalSample,
        EvalScore,
        EvalSpec,
        EvalStats,
    )
    from inspect_ai.model import ChatMessageAssistant, ChatMessageUser, ModelOutput
    from inspect_ai.scorer import Score

    ident = log.identity
    model = f"{ident.get('backend') or 'culturelens'}/{log.label}"
    status = log.status
    started, ended = (status.started, status.ended) if status else (None, None)
    variants = {v.id: v for v in log.variants}
    items = {iid: it.model_dump(mode="json", exclude_defaults=True) for iid, it in log.items(task).items()}
    samples = list(log.iter_samples(task))
    several = len({s.variant for s in samples}) > 1
    out_samples = []
    for index, s in enumerate(samples):
        completion = _completion(s)
        labels = _labels(s)
        choices = [s.options[i] for i in s.order if 0 <= i < len(s.options)] if s.order else None
        out_samples.append(
            EvalSample(
                id=f"{s.item_id}@{s.variant}" if several else s.item_id,
                epoch=1,
                input=s.prompt,
                choices=choices or None,
                target=_gold_labels(s),
                messages=[
                    ChatMessageUser(content=s.prompt),
                    ChatMessageAssistant(content=completion, model=model),
                ],
                output=ModelOutput.from_content(model=model, content=completion),
                scores={
                    name: Score(
                        value=value,
                        answer=completion,
                        explanation=f"culturelens {s.mode.value} scoring; labels {', '.join(labels)}",
                    )
                    for name, value in s.metrics.items()
                },
                metadata={
                    **_metadata(s, items.get(s.item_id), variants.get(s.variant)),
                    "sample_index": index,  # its line in samples.jsonl: inspect sorts samples by id
                },
            )
        )
    entry = log.task_results(task)
    headline = log.headline_metric(task)
    scores = []
    for name, m in sorted((entry.get("metrics") or {}).items(), key=lambda kv: kv[0] != headline):
        lo, hi = (m.get("ci") or [None, None])[:2]
        by_country = {
            c: {
                "mean": g["metrics"][name]["mean"],
                "ci": g["metrics"][name].get("ci"),
                "n": g["metrics"][name].get("n"),
            }
            for c, g in sorted(((entry.get("by") or {}).get("country") or {}).items())
            if name in (g.get("metrics") or {})
        }
        metrics = {"mean": EvalMetric(name="mean", value=float(m["mean"]))}
        for key, val in (("ci_low", lo), ("ci_high", hi), ("n", m.get("n"))):
            if isinstance(val, int | float):
                metrics[key] = EvalMetric(name=key, value=val)
        scores.append(
            EvalScore(
                name=name,
                scorer=name,
                scored_samples=m.get("n"),
                metrics=metrics,
                metadata={"ci_method": m.get("ci_method"), "by_country": by_country},
            )
        )
    digest = hashlib.sha256(f"{log.dir.resolve()}|{task}".encode()).hexdigest()[:22]
    cfg = log.config
    spec = EvalSpec(
        eval_id=digest,
        run_id=log.dir.name,
        created=_iso(started),
        task=f"culturelens/{task}",
        task_id=digest,
        task_version=log.format,
        task_description=str(log.task_info(task).get("description") or ""),
        task_args=dict((cfg.task_options or {}).get(task) or {}),
        dataset=EvalDataset(name=task, samples=len(items), sample_ids=sorted(items) or None),
        model=model,
        model_base_url=ident.get("base_url"),
        model_args={k: v for k, v in ident.items() if k not in ("backend", "base_url")},
        config=EvalConfig(),
        packages={k: v for k, v in log.header.versions.items() if k == "culturelens"},
        metadata={
            "culturelens": {
                "run_dir": str(log.dir),
                "config": cfg.model_dump(mode="json"),
                "headline": headline,
                "variants": [v.model_dump(mode="json", exclude_defaults=True) for v in log.variants],
                "baselines": entry.get("baselines"),
                "command": log.header.command,
            }
        },
    )
    return EvalLog(
        version=2,
        status="success"
        if log.complete
        else ("cancelled" if status and status.status == "interrupted" else "error"),
        eval=spec,
        results=EvalResults(total_samples=len(samples), completed_samples=len(samples), scores=scores),
        stats=EvalStats(started_at=_iso(started), completed_at=_iso(ended or started)),
        samples=out_samples,
    )


def write_inspect_logs(
    run_dir: str | Path, out_dir: str | Path | None = None, tasks: Sequence[str] | None = None
) -> list[Path]:
    """Write one inspect ``.eval`` log per task of the run into ``out_dir`` (default ``RUN/inspect``);
    returns the files. Names follow inspect's ``<created>_<task>_<id>.eval``."""
    try:
        from inspect_ai.log import write_eval_log
    except ImportError as exc:
        raise ValueError(
            f"the inspect format needs inspect_ai: pip install 'culturelens[inspect]' ({exc})"
        ) from None
    log = read_run(run_dir)
    out = Path(out_dir) if out_dir is not None else log.dir / INSPECT_DIR
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for task in tasks or log.task_names:
        elog = eval_log(log, task)
        stamp = elog.eval.created.replace(":", "-")
        path = out / f"{stamp}_{task.replace('_', '-')}_{elog.eval.eval_id}.eval"
        write_eval_log(elog, str(path))
        written.append(path)
    return written
