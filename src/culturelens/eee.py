"""Every Eval Ever records of a run (``culturelens export RUN --format eee``).

The `Every Eval Ever <https://pypi.org/project/every-eval-ever/>`_ schema (EEE, schema 0.3) is a
shared format for evaluation results across harnesses. Each task of a run becomes one aggregate
record and its instance-level companion, laid out as the EEE datastore wants them::

    OUT/data/<task>/<developer>/<model>/<uuid>.json            EvaluationLog: every metric, 95% CI, n
    OUT/data/<task>/<developer>/<model>/<uuid>_samples.jsonl   one InstanceLevelEvaluationLog per sample

Both are built and checked with the ``every-eval-ever`` package itself: the records are validated
by its pydantic models, metric ids / bounds come from its converter helpers, and every written file
passes its validator (``eee-validate``'s checks: schema, datastore path, companion file, score
metadata, model deployment, model identity path). A file it rejects is not written.

What maps how:

* ``evaluation_results``: one entry per (variant, breakdown group, metric), the primary variant
  first; ``evaluation_name`` is the task (``starter``) or the task and group
  (``starter/country=Japan``); ``evaluation_result_id`` is ``metric|group|variant`` (e.g.
  ``acc|country=Japan``); the interval goes into ``uncertainty.confidence_interval`` (level 0.95,
  method as results.json names it) with ``num_samples`` = n. Metric bounds are [0, 1] for the
  proportions and [0, 1]-bounded scores (the interval methods say which) and unknown otherwise.
* instance rows: one per sample, joined to its variant's headline result; ``input.raw`` is the
  item's question, ``input.formatted`` the prompt as sent, ``reference`` the gold option texts (or
  answers), ``output.raw`` the generated text or, for log-prob scoring, the chosen option's text.
* what EEE has no place for (partially pooled country estimates, rank intervals, baselines,
  robustness) stays in the run directory; ``config.json`` is not copied.

The model id is the Hugging Face id where the run knows it (an ``hf:`` model, the bundled GGUF
models); otherwise ``<backend>/<model>``. Give ``model_id`` to name it.

The package declares Python >= 3.12 and pins an older ``huggingface_hub`` than culturelens uses; the
parts used here run on 3.11 and need only pydantic, so it is installed with
``pip install --no-deps --ignore-requires-python every-eval-ever==0.3.0``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from culturelens.redact import redact, redact_obj
from culturelens.runlog import RunLog, Sample, read_run

INSTALL = "pip install --no-deps --ignore-requires-python 'every-eval-ever==0.3.0'"
#: interval methods (results.json ``ci_method``) whose metric lies in [0, 1]
BOUNDED = ("wilson", "wilson-kish", "bootstrap-t-wilson", "wilson-bound")
#: GGUF files of models whose Hugging Face id is known (lower-cased file-name prefix -> id)
KNOWN_MODELS = {
    "smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M",
    "smollm2-360m-instruct": "HuggingFaceTB/SmolLM2-360M-Instruct",
    "smollm2-360m": "HuggingFaceTB/SmolLM2-360M",
    "gemma-3-270m-it": "google/gemma-3-270m-it",
    "gemma-3-270m": "google/gemma-3-270m",
}
ENGINES = {"llamacpp": "llama.cpp", "hf": "transformers", "openai": "openai-compatible API"}
ENGINE_PACKAGES = {"llamacpp": "llama_cpp_python", "hf": "transformers", "openai": "httpx"}


class EEEError(ValueError):
    """The package is missing or a record does not pass its validator. One line."""


def _eee() -> Any:
    try:
        import every_eval_ever.eval_types as types
    except ModuleNotFoundError:
        raise EEEError(f"--format eee needs the every-eval-ever package: {INSTALL}") from None
    return types


def model_id(log: RunLog) -> str:
    """``developer/model`` for the run's model (see the module docstring)."""
    ident = log.identity
    name = str(ident.get("model") or log.label)
    backend = str(ident.get("backend") or "local")
    if backend == "hf" and name.count("/") == 1 and not name.startswith((".", "/")):
        return name
    stem = name.replace("\\", "/").split("/")[-1].removesuffix(".gguf")
    for prefix in sorted(KNOWN_MODELS, key=len, reverse=True):  # the longest prefix names it
        if stem.lower().startswith(prefix):
            return KNOWN_MODELS[prefix]
    if backend == "openai" and "api.openai.com" in str(ident.get("base_url") or "api.openai.com"):
        return f"openai/{stem}"
    if "/" in name and backend == "openai":
        return name
    return f"{backend}/{stem}"


def _deployment(log: RunLog) -> tuple[str, str]:
    ident = log.identity
    backend = ident.get("backend")
    if backend in ("llamacpp", "hf", "fake"):
        return "self_deployed", "open_weights"
    if backend == "openai":
        base = str(ident.get("base_url") or "")
        if "api.openai.com" in base or not base:
            return "externally_managed", "closed_weights"
        local = any(h in base for h in ("localhost", "127.0.0.1", "0.0.0.0"))
        return ("self_deployed" if local else "unknown"), "unknown"
    return "unknown", "unknown"


def _uuid4(*parts: str) -> str:
    """A version-4-shaped UUID derived from the run and task: a re-export overwrites, never duplicates."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _strs(d: dict[str, Any]) -> dict[str, str]:
    return {
        k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        for k, v in d.items()
        if v is not None
    }


def _result_id(metric: str, dim: str, key: str, vid: str, primary: bool) -> str:
    parts = [metric] + ([f"{dim}={key}"] if dim != "all" else []) + ([] if primary else [f"variant={vid}"])
    return "|".join(parts)


def _groups(agg: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    yield "all", "all", agg
    for dim, members in (agg.get("by") or {}).items():
        for key, entry in members.items():
            yield dim, str(key), entry


def _results(log: RunLog, task: str, when: str | None) -> list[dict[str, Any]]:
    from every_eval_ever.converters.common.metrics import metric_config_fields

    primary_id = log.primary_variant.id
    headline = log.headline_metric(task)
    declared = (log.task_info(task).get("headline") or {}).get("higher_is_better", True)
    source = {
        "dataset_name": task,
        "source_type": "other",
        "additional_details": _strs(
            {"items": log.task_info(task).get("items"), "description": log.task_info(task).get("description")}
        ),
    }
    variants = log.task_variants(task)
    order = sorted(variants, key=lambda v: v != primary_id)
    out = []
    for vid in order:
        agg = variants[vid]
        mode = ",".join(log.task_results(task).get("modes") or []) or None
        for dim, key, entry in _groups(agg):
            for metric, m in (entry.get("metrics") or {}).items():
                if not isinstance(m.get("mean"), int | float):
                    continue
                method = str(m.get("ci_method") or "")
                bounds = {metric: (0.0, 1.0)} if method in BOUNDED else {}
                fields = metric_config_fields(metric, harness="culturelens", bounds_table=bounds or None)
                details = dict(fields.pop("additional_details") or {})
                if metric == headline:
                    if declared is None:
                        details["polarity"] = "not_applicable"
                    else:
                        fields["lower_is_better"] = not declared
                        details.pop("polarity", None)
                details.update(
                    breakdown=dim,
                    group=key,
                    variant=vid,
                    primary_variant=str(vid == primary_id).lower(),
                    headline=str(metric == headline).lower(),
                )
                lo, hi = (list(m.get("ci") or []) + [None, None])[:2]
                uncertainty: dict[str, Any] = {"num_samples": int(m.get("n") or 0)}
                if isinstance(lo, int | float) and isinstance(hi, int | float):
                    uncertainty["confidence_interval"] = {
                        "lower": float(lo),
                        "upper": float(hi),
                        "confidence_level": 0.95,
                        "method": method or "unknown",
                    }
                if "bootstrap" in method:
                    uncertainty["num_bootstrap_samples"] = log.config.n_boot
                out.append(
                    {
                        "evaluation_result_id": _result_id(metric, dim, key, vid, vid == primary_id),
                        "evaluation_name": task if dim == "all" else f"{task}/{dim}={key}",
                        "source_data": source,
                        "evaluation_timestamp": when,
                        "metric_config": {
                            "evaluation_description": f"{metric} on {task}"
                            + ("" if dim == "all" else f", {dim} {key}")
                            + ("" if vid == primary_id else f", variant {vid}"),
                            "metric_name": metric,
                            **fields,
                            "additional_details": _strs(details),
                        },
                        "score_details": {"score": float(m["mean"]), "uncertainty": uncertainty},
                        "generation_config": {
                            "generation_args": {
                                "temperature": 0.0,
                                "execution_command": redact(log.header.command)
                                if log.header.command
                                else None,
                            },
                            "additional_details": _strs({"mode": mode, "variant": vid}),
                        },
                    }
                )
    return out


def _texts(options: Sequence[str], value: Any) -> list[str]:
    """Gold / prediction as texts: option indices become their option's text."""
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(options):
            out.append(options[v])
        elif v is not None:
            out.append(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
    return out


def _instance(
    s: Sample, question: str, evaluation_id: str, mid: str, result_id: str, headline: str | None
) -> dict[str, Any]:
    reference = _texts(s.options, s.gold)
    text = s.response.get("text")
    chosen = _texts(s.options, s.prediction)
    generated = isinstance(text, str)
    output = [text] if generated else chosen or [""]
    score = s.metrics.get(headline or "", next(iter(s.metrics.values()), 0.0))
    meta = {
        "task": s.task,
        "variant": s.variant,
        "mode": s.mode.value,
        "country": s.country,
        "iso2": s.iso2,
        "region": s.region,
        "language": s.language,
        "topic": s.topic,
        "valid": str(s.valid).lower(),
        "fallback": s.fallback,
        "probs": s.probs,
        "metrics": s.metrics,
        **{f"subset:{k}": v for k, v in s.subset.items()},
    }
    return {
        "schema_version": None,  # set by the caller
        "evaluation_id": evaluation_id,
        "model_id": mid,
        "evaluation_name": s.task,
        "evaluation_result_id": result_id,
        "sample_id": s.item_id,
        "sample_hash": hashlib.sha256((question + "\x1f".join(reference)).encode()).hexdigest(),
        "interaction_type": "single_turn",
        "input": {
            "raw": question,
            "formatted": s.prompt,
            "reference": reference,
            "choices": list(s.options) or None,
        },
        "output": {"raw": output},
        "answer_attribution": [
            {
                "turn_idx": 0,
                "source": "output.raw",
                "extracted_value": chosen[0] if chosen else "",
                "extraction_method": "parse generated text"
                if generated
                else f"argmax of {s.mode.value} log-probs",
                "is_terminal": True,
            }
        ],
        "evaluation": {"score": float(score), "is_correct": float(score) == 1.0 and s.valid},
        "metadata": _strs(meta),
    }


def records(
    log: RunLog,
    model: str | None = None,
    organization: str = "unspecified",
    relationship: str = "third_party",
) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(datastore path of the aggregate, aggregate record, instance records) per task, validated by
    the package's models (``EvaluationLog``, ``InstanceLevelEvaluationLog``)."""
    types = _eee()
    from every_eval_ever.helpers.io import datastore_repo_file_path
    from every_eval_ever.instance_level_types import InstanceLevelEvaluationLog
    from every_eval_ever.schema import get_schema_version

    version = get_schema_version()
    mid = model or model_id(log)
    developer = mid.split("/")[0]
    deployment, availability = _deployment(log)
    backend = str(log.identity.get("backend") or "")
    engine_version = log.header.versions.get(ENGINE_PACKAGES.get(backend, ""), None)
    started = log.status.started if log.status else None
    when = str(int(started)) if started else None
    retrieved = str(int(time.time()))
    model_info = {
        "name": log.label,
        "id": mid,
        "developer": developer,
        "inference_platform": "local" if deployment == "self_deployed" else backend or None,
        "inference_engine": {"name": ENGINES.get(backend, backend or "unknown"), "version": engine_version},
        "additional_details": _strs(
            {
                "deployment_type": deployment,
                "model_availability": availability,
                **{f"culturelens.{k}": v for k, v in redact_obj(log.identity).items()},
            }
        ),
    }
    out = []
    for task in log.task_names:
        uid = _uuid4(log.dir.resolve().as_posix(), task, mid)
        path = datastore_repo_file_path(task, mid, developer, f"{uid}.json")
        samples_path = path.removesuffix(".json") + "_samples.jsonl"
        evaluation_id = f"{task}/{mid}/{retrieved}"
        headline = log.headline_metric(task)
        items = log.items(task)
        primary_id = log.primary_variant.id
        rows: list[dict[str, Any]] = []
        for s in log.iter_samples(task):
            it = items.get(s.item_id)
            question = it.question if it is not None else s.prompt
            rid = _result_id(
                headline or next(iter(s.metrics), "score"), "all", "all", s.variant, s.variant == primary_id
            )
            row = _instance(s, question, evaluation_id, mid, rid, headline)
            row["schema_version"] = version
            rows.append(_valid(InstanceLevelEvaluationLog, row, f"{samples_path}, line {len(rows) + 1}"))
        aggregate = {
            "schema_version": version,
            "evaluation_id": evaluation_id,
            "evaluation_timestamp": when,
            "retrieved_timestamp": retrieved,
            "source_metadata": {
                "source_name": "culturelens",
                "source_type": "evaluation_run",
                "source_organization_name": organization,
                "evaluator_relationship": relationship,
                "additional_details": _strs(
                    {"run": log.dir.name, "status": log.status.status.value if log.status else None}
                ),
            },
            "eval_library": {
                "name": "culturelens",
                "version": log.header.versions.get("culturelens") or "unknown",
                "additional_details": _strs({"run_format": log.format, "seed": log.config.seed}),
            },
            "model_info": model_info,
            "evaluation_results": _results(log, task, when),
            "detailed_evaluation_results": {
                "format": "jsonl",
                "file_path": samples_path,
                "hash_algorithm": "sha256",
                "checksum": hashlib.sha256(_jsonl(rows).encode()).hexdigest(),
                "total_rows": len(rows),
            },
        }
        record = _valid(types.EvaluationLog, aggregate, path)
        out.append((path, record, rows))
    return out


def _valid(model: Any, record: dict[str, Any], where: str) -> dict[str, Any]:
    """The record as the package's pydantic model dumps it; a rejection is one line naming the field."""
    from pydantic import ValidationError

    try:
        dumped: dict[str, Any] = model.model_validate(record).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "-"
        raise EEEError(f"every-eval-ever schema: {where}: field {loc}: {err['msg']}") from None
    return dumped


def _jsonl(rows: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows)


def validate(root: str | Path, paths: Sequence[str | Path]) -> list[str]:
    """The package's validator on written files (``root`` holds ``data/``): errors and warnings,
    one line each, ``[]`` when every file is clean."""
    _eee()
    from every_eval_ever.validator.validation_core import format_error, format_warning, validate_file

    base = Path(root)
    rels = {Path(p).resolve().relative_to(base.resolve()).as_posix(): Path(p) for p in paths}

    def read(rel: str) -> str:
        return (base / rel).read_text(encoding="utf-8")

    problems = []
    for rel, p in rels.items():
        report = validate_file(
            p, repo_path=rel, available_files=set(rels), read_repo_file=read, run_semantic_checks=True
        )
        problems += [f"{rel}: {format_error(e)}" for e in report.errors]
        problems += [f"{rel}: warning: {format_warning(w)}" for w in report.warnings]
    return problems


def write_eee(
    run_dir: str | Path | RunLog,
    out_dir: str | Path,
    model: str | None = None,
    organization: str = "unspecified",
) -> list[Path]:
    """Write the run's EEE records under ``out_dir/data/...`` and validate them with the package's
    validator; raises :class:`EEEError` naming the file and field when it rejects one."""
    log = run_dir if isinstance(run_dir, RunLog) else read_run(run_dir)
    built = records(log, model=model, organization=organization)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    # written and validated in a staging folder first: a file the validator rejects never lands
    with tempfile.TemporaryDirectory(dir=root, prefix=".eee-") as tmp:
        staged: list[Path] = []
        for rel, record, rows in built:
            agg = Path(tmp) / rel
            agg.parent.mkdir(parents=True, exist_ok=True)
            samples = agg.with_name(agg.stem + "_samples.jsonl")
            samples.write_text(_jsonl(rows), encoding="utf-8")
            text = json.dumps(record, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
            agg.write_text(text, encoding="utf-8")
            staged += [agg, samples]
        problems = validate(tmp, staged)
        if problems:
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            raise EEEError(f"every-eval-ever validator: {problems[0]}{more}")
        written = []
        for path in staged:
            dest = root / path.relative_to(tmp)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
            written.append(dest)
    return written
