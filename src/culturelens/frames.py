"""Runs as pandas DataFrames: one tidy long table of every aggregate, and one row per sample.

``load_runs(dirs)`` stacks the aggregates of many runs into one long frame with the columns
:data:`RESULT_COLUMNS` (one row per run × task × variant × breakdown group × metric), so a
per-country comparison is one ``query`` / ``pivot_table`` away::

    import culturelens as cl
    df = cl.load_runs(["runs/A", "runs/B"])
    df.query("breakdown == 'country' and metric == 'acc'").pivot_table("mean", "key", "model")

``breakdown`` is ``all`` (key ``all``: the whole task), ``country``, ``region``, ``language``,
``topic`` or ``subset:<name>`` (a benchmark's own subsets, e.g. ``subset:category``), exactly the
groups of ``results.json``. A one-variant run has one variant (its id, ``default`` for the default
presentation); a sweep has every variant, with ``primary`` true on the one its headline reports.

pandas (and pyarrow for parquet) is imported only here, so ``import culturelens`` never needs it.
This module reads the run log only (layer 3, beside :mod:`culturelens.runlog`, whose
``results_df`` / ``samples_df`` call it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from culturelens.runlog import RunLog, read_run

if TYPE_CHECKING:
    import pandas as pd

#: the tidy results table, in this order (the first eleven are the long format's key and values)
RESULT_COLUMNS = [
    "run", "model", "task", "variant", "breakdown", "key", "metric", "mean", "ci_low", "ci_high", "n",
    "ci_method", "headline", "primary",
]  # fmt: skip
#: the fixed columns of the samples table; then one column per subset (``subset:<name>``) and one per
#: metric (its name, or ``metric:<name>`` if that name is taken by a fixed column)
SAMPLE_COLUMNS = [
    "run", "model", "task", "item_id", "variant", "mode", "country", "iso2", "region", "language",
    "topic", "group", "gold", "prediction", "valid", "fallback", "prompt", "options", "probs", "response",
]  # fmt: skip
#: columns holding lists (written as JSON text in CSV)
LIST_COLUMNS = ("options", "probs")
Format = Literal["parquet", "csv"]


def _pandas() -> Any:
    try:
        import pandas
    except ModuleNotFoundError:  # pragma: no cover - pandas comes with the datasets extra
        raise ModuleNotFoundError("DataFrames need pandas: pip install 'culturelens[frames]'") from None
    return pandas


def _logs(runs: RunLog | str | Path | Iterable[RunLog | str | Path]) -> list[RunLog]:
    if isinstance(runs, RunLog | str | Path):
        runs = [runs]
    return [r if isinstance(r, RunLog) else read_run(r) for r in runs]


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def result_rows(log: RunLog) -> Iterator[dict[str, Any]]:
    """The tidy rows of one run (see :data:`RESULT_COLUMNS`), in results.json order."""
    primary_id = log.primary_variant.id
    for task in log.task_names:
        headline = log.headline_metric(task)
        variants = log.task_variants(task)
        for vid, agg in variants.items():
            groups: list[tuple[str, str, dict[str, Any]]] = [("all", "all", agg)]
            for dim, members in (agg.get("by") or {}).items():
                groups += [(dim, str(key), entry) for key, entry in members.items()]
            for dim, key, entry in groups:
                for metric, m in (entry.get("metrics") or {}).items():
                    lo, hi = (list(m.get("ci") or []) + [None, None])[:2]
                    n = m.get("n")
                    yield {
                        "run": log.dir.name,
                        "model": log.label,
                        "task": task,
                        "variant": vid,
                        "breakdown": dim,
                        "key": key,
                        "metric": metric,
                        "mean": _num(m.get("mean")),
                        "ci_low": _num(lo),
                        "ci_high": _num(hi),
                        "n": int(n) if isinstance(n, int | float) else None,
                        "ci_method": m.get("ci_method"),
                        "headline": metric == headline,
                        "primary": vid == primary_id,
                    }


def _text(v: Any) -> str | None:
    """gold / prediction as text: strings as they are, numbers and lists as JSON (``2``, ``[0, 1]``)."""
    if v is None:
        return None
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def sample_rows(log: RunLog) -> Iterator[dict[str, Any]]:
    """One row per line of ``samples.jsonl`` (see :data:`SAMPLE_COLUMNS`)."""
    for s in log.iter_samples():
        row: dict[str, Any] = {
            "run": log.dir.name,
            "model": log.label,
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
            "gold": _text(s.gold),
            "prediction": _text(s.prediction),
            "valid": s.valid,
            "fallback": s.fallback,
            "prompt": s.prompt,
            "options": list(s.options),
            "probs": list(s.probs) if s.probs is not None else None,
            "response": s.response.get("text") if isinstance(s.response.get("text"), str) else None,
        }
        for key, group in s.subset.items():
            row[f"subset:{key}"] = group
        for name, value in s.metrics.items():
            row[name if name not in SAMPLE_COLUMNS else f"metric:{name}"] = float(value)
        yield row


def load_runs(runs: RunLog | str | Path | Iterable[RunLog | str | Path]) -> pd.DataFrame:
    """One tidy long frame over the aggregates of ``runs`` (run dirs or logs): :data:`RESULT_COLUMNS`."""
    pd = _pandas()
    rows = [r for log in _logs(runs) for r in result_rows(log)]
    df = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    return df.astype({"mean": "float64", "ci_low": "float64", "ci_high": "float64", "n": "Int64"})


def results_df(log: RunLog) -> pd.DataFrame:
    """The tidy results of one run (what :func:`load_runs` gives for it alone)."""
    return load_runs([log])


def samples_df(runs: RunLog | str | Path | Iterable[RunLog | str | Path]) -> pd.DataFrame:
    """One row per scored prompt of ``runs``: :data:`SAMPLE_COLUMNS`, then ``subset:*`` and metric columns."""
    pd = _pandas()
    rows = [r for log in _logs(runs) for r in sample_rows(log)]
    extra = sorted({k for r in rows for k in r} - set(SAMPLE_COLUMNS))
    subsets = [c for c in extra if c.startswith("subset:")]
    metrics = [c for c in extra if not c.startswith("subset:")]
    df = pd.DataFrame(rows, columns=SAMPLE_COLUMNS + subsets + metrics)
    return df.astype({c: "float64" for c in metrics})


def write_tables(
    runs: Sequence[RunLog | str | Path], out_dir: str | Path, fmt: Format = "parquet"
) -> dict[str, Path]:
    """Write ``results.<fmt>`` (the tidy frame of :func:`load_runs`) and ``samples.<fmt>`` into
    ``out_dir``; CSV holds list cells (options, probs) as JSON text. Returns name -> path."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"--format {fmt!r}: tables are written as parquet or csv")
    logs = _logs(runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames = {"results": load_runs(logs), "samples": samples_df(logs)}
    paths = {}
    for name, df in frames.items():
        path = out / f"{name}.{fmt}"
        tmp = path.with_name(path.name + ".tmp")
        if fmt == "parquet":
            df.to_parquet(tmp, index=False)
        else:
            for col in LIST_COLUMNS:
                if col in df:
                    df[col] = [None if v is None else json.dumps(list(v)) for v in df[col]]
            df.to_csv(tmp, index=False)
        tmp.replace(path)
        paths[name] = path
    return paths
