"""Global-MMLU and Global-MMLU-Lite (Singh et al., 2024): MMLU in 42 / 15 languages with
culturally-sensitive (CS) and culturally-agnostic (CA) annotations.

Releases: HF ``CohereLabs/Global-MMLU`` and ``CohereLabs/Global-MMLU-Lite`` (Apache 2.0), one
folder per language with ``test-*.parquet`` and ``dev-*.parquet``. A local ``--data-dir`` may hold
that layout or CSV exports (``<lang>/test.csv``, ``<lang>/dev.csv``); parquet needs ``pyarrow``.

Each row is a 4-option item in its language (``item.language``), scored with the standard MMLU
prompt (template ``mmlu``: question, ``A. ...`` to ``D. ...``, ``Answer:``). The point of the paper
is to report accuracy separately on the CS and CA subsets (subset ``cultural_sensitivity``:
CS / CA / unlabelled), because model rankings differ between them: ``extra_metrics`` gives the
CS - CA gap per language and :func:`subset_rank_agreement` compares the rankings of several runs.
Task option ``lang`` ("en,fr" or a list) picks languages; default: every language available.
"""

from __future__ import annotations

import ast
import json
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from culturelens.countries import Country, try_normalize_country
from culturelens.render import Rendered, RenderError, View, template
from culturelens.schema import Item, ItemKind, Mode, Prompt, Score, Variant
from culturelens.tasks.base import (
    CSV_FIRST_ROW,
    DatasetError,
    DataSource,
    Headline,
    Task,
    TaskOptions,
    check_unique,
    read_csv_rows,
    register,
)

LETTERS = "ABCD"
CS_KEY = "cultural_sensitivity"
_REQUIRED = (
    "sample_id",
    "subject",
    "subject_category",
    "question",
    "option_a",
    "option_b",
    "option_c",
    "option_d",
    "answer",
)
_EMPTY = {"", "-", "none", "nan", "null", "[]"}

FULL_LANGS: tuple[str, ...] = (
    "am",
    "ar",
    "bn",
    "cs",
    "de",
    "el",
    "en",
    "es",
    "fa",
    "fil",
    "fr",
    "ha",
    "he",
    "hi",
    "id",
    "ig",
    "it",
    "ja",
    "ko",
    "ky",
    "lt",
    "mg",
    "ms",
    "ne",
    "nl",
    "ny",
    "pl",
    "pt",
    "ro",
    "ru",
    "si",
    "sn",
    "so",
    "sr",
    "sv",
    "sw",
    "te",
    "tr",
    "uk",
    "vi",
    "yo",
    "zh",
)
LITE_LANGS: tuple[str, ...] = (
    "ar",
    "bn",
    "de",
    "en",
    "es",
    "fr",
    "hi",
    "id",
    "it",
    "ja",
    "ko",
    "pt",
    "sw",
    "yo",
    "zh",
)


@template(ItemKind.MULTIPLE_CHOICE, "mmlu", generic=False)
def _mmlu_template(v: View) -> Rendered:
    """The standard MMLU prompt (lm-evaluation-harness ``global_mmlu``): question, lettered options, Answer:."""
    if v.mode is Mode.CLOZE:
        return Rendered(v.question.strip(), "Answer:")
    return Rendered(f"{v.question.strip()}\n{v.option_lines()}", "Answer:")


# --- reading the release ------------------------------------------------------------------------------
def _read_table(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DatasetError(path, "file not found")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise DatasetError(
                path,
                "reading parquet needs pyarrow (pip install pyarrow), or give CSV exports "
                "<lang>/test.csv in --data-dir",
            ) from exc
        try:
            return pq.read_table(path).to_pylist()
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise DatasetError(path, f"unreadable parquet ({type(exc).__name__}: {str(exc)[:120]})") from exc
    return [row for _, row in read_csv_rows(path, (), first_row=CSV_FIRST_ROW)]


def _split_files(lang_dir: Path, split: str) -> list[Path]:
    """The split's files in a language folder: HF layout first, then CSV exports."""
    for pattern in (
        f"{split}-*.parquet",
        f"{split}/*.parquet",
        f"{split}.parquet",
        f"{split}.csv",
        f"{split}-*.csv",
    ):
        found = sorted(lang_dir.glob(pattern))
        if found:
            return found
    return []


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def _as_list(raw: str) -> list[str]:
    """Annotation fields come as a string, a list, or a stringified list (one entry per annotator)."""
    raw = raw.strip()
    if raw.startswith("[") and raw.endswith("]"):
        try:
            parsed = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, list | tuple):
            return [str(x).strip() for x in parsed if str(x).strip()]
    return [p.strip() for p in raw.split(",")] if raw else []


def parse_country(raw: str) -> Country | None:
    """The single country an annotated row is about, or None (none, several, or not a country)."""
    found: dict[str, Country] = {}
    for entry in _as_list(raw):
        if entry.lower() in _EMPTY:
            continue
        name = re.sub(r"\s*\([^)]*\)\s*$", "", entry)  # "United States of America (USA)"
        ctr = try_normalize_country(name) or try_normalize_country(entry)
        if ctr is None:
            return None
        found[ctr.iso2] = ctr
    return next(iter(found.values())) if len(found) == 1 else None


def _sensitivity(path: Path, row: dict[str, Any], i: int) -> str:
    raw = _text(row.get("cultural_sensitivity_label")).strip()
    if raw.lower() in _EMPTY:
        return "unlabelled"
    if raw.upper() in ("CS", "CA"):
        return raw.upper()
    raise DatasetError(
        path, f"label {raw!r} is not CS / CA / empty", row=i, field="cultural_sensitivity_label"
    )


def rows_to_items(
    path: Path, rows: list[dict[str, Any]], task: str, lang: str, split: str = "test"
) -> list[Item]:
    """Validate every row of one file and turn it into items. Rows are numbered as a spreadsheet
    shows them: a CSV's header is row 1, a parquet file's first record is row 1."""
    first = 1 if path.suffix == ".parquet" else CSV_FIRST_ROW
    if rows:
        missing = [c for c in _REQUIRED if c not in rows[0]]
        if missing:
            raise DatasetError(path, "missing column", row=first - 1 if first > 1 else None, field=missing[0])
    items = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows, start=first):
        for field in _REQUIRED:
            if field not in row:
                raise DatasetError(path, "missing value", row=i, field=field)
        for field in ("sample_id", "question", "subject_category"):
            if not _text(row[field]).strip():
                raise DatasetError(path, "empty value", row=i, field=field)
        sid = _text(row["sample_id"]).strip()
        check_unique(path, seen, sid, i, "sample_id", what="sample_id")
        answer = _text(row["answer"]).strip().upper()
        if len(answer) != 1 or answer not in LETTERS:
            raise DatasetError(
                path, f"answer {row['answer']!r} is not one of A, B, C, D", row=i, field="answer"
            )
        label = _sensitivity(path, row, i)
        country_raw = _text(row.get("country"))
        items.append(
            Item(
                id=f"{task}:{lang}:{split}:{sid}",
                task=task,
                kind=ItemKind.MULTIPLE_CHOICE,
                question=_text(row["question"]),
                options=[_text(row[f"option_{c}"]) for c in "abcd"],
                correct=[LETTERS.index(answer)],
                country=parse_country(country_raw),
                language=lang,
                topic=_text(row["subject_category"]).strip(),
                group=sid,  # one MMLU question across its translations
                subset={CS_KEY: label},
                metadata={
                    "subject": _text(row["subject"]).strip(),
                    "sample_id": sid,
                    "is_annotated": _text(row.get("is_annotated")).strip().lower() in ("true", "1"),
                    "country_raw": country_raw,
                    "region_raw": _text(row.get("region")),
                },
            )
        )
    return items


def _bootstrap_gap(cs: list[float], ca: list[float], n_boot: int = 1000, seed: int = 0) -> list[float] | None:
    if len(cs) < 2 or len(ca) < 2:
        return None
    rng = np.random.default_rng(seed)
    a, b = np.asarray(cs), np.asarray(ca)
    boot = a[rng.integers(0, a.size, (n_boot, a.size))].mean(1) - b[
        rng.integers(0, b.size, (n_boot, b.size))
    ].mean(1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return [float(lo), float(hi)]


def cs_ca_gap(cs: list[float], ca: list[float]) -> dict[str, Any]:
    """CS and CA accuracy and their difference (CS - CA) with an independent-samples bootstrap CI."""
    m_cs = sum(cs) / len(cs) if cs else None
    m_ca = sum(ca) / len(ca) if ca else None
    gap = m_cs - m_ca if m_cs is not None and m_ca is not None else None
    return {
        "cs": m_cs,
        "ca": m_ca,
        "gap": gap,
        "ci": _bootstrap_gap(cs, ca),
        "n_cs": len(cs),
        "n_ca": len(ca),
    }


class _GlobalMMLU(Task):
    repo_id: str = ""
    languages: tuple[str, ...] = ()
    protocol = (
        "The standard MMLU prompt (question, A. ... to D. ..., Answer:) in each item's language, zero-shot "
        "by default (k-shot from the dev split of the same language); accuracy overall and separately on "
        "the culturally sensitive (CS) and agnostic (CA) subsets, with the CS - CA gap."
    )
    headline = Headline("acc", "accuracy (share correct)")
    default_mode = Mode.LETTER
    default_template = "mmlu"

    class Options(TaskOptions):
        lang: list[str] | None = Field(
            None, description="languages, comma-separated (default: every language available)"
        )

    options: Options  # the typed --opt values

    #: ``--limit`` balances languages, then the CS / CA / unlabelled subsets, then subject categories;
    #: a question's translations are separate items (not kept together)
    limit_strata = ("language", f"subset.{CS_KEY}", "topic")
    limit_groups = False

    def __init__(self, data_dir: str | Path | None = None, **options: Any):
        super().__init__(data_dir, **options)
        self.langs: list[str] | None = list(dict.fromkeys(self.options.lang or [])) or None

    # where the files are
    def _local_root(self) -> Path | None:
        return self.locate(kind="dir")

    def _wanted(self, root: Path | None) -> list[str]:
        if self.langs:
            return self.langs
        if root is None:
            return list(self.languages)
        found = sorted(d.name for d in root.iterdir() if d.is_dir() and _split_files(d, "test"))
        if not found:
            raise DatasetError(root, f"no <lang>/test-*.parquet or <lang>/test.csv files for {self.name}")
        return found

    def _files(self, split: str) -> list[tuple[str, list[Path]]]:
        from culturelens.download import fetch_hf_file

        root = self._local_root()
        out = []
        for lang in self._wanted(root):
            if root is not None:
                files = _split_files(root / lang, split)
                if not files:
                    raise DatasetError(
                        root / lang / f"{split}.csv",
                        f"no {split} file for language {lang!r} ({split}-*.parquet or {split}.csv)",
                    )
            else:
                if self.langs and lang not in self.languages:
                    raise DatasetError(
                        f"hf://datasets/{self.repo_id}",
                        f"unknown language {lang!r}; {self.name} has {', '.join(self.languages)}",
                    )
                files = [fetch_hf_file(self.repo_id, f"{lang}/{split}-00000-of-00001.parquet")]
            out.append((lang, files))
        return out

    def load(self) -> Iterator[Item]:
        items: list[Item] = []
        for lang, files in self._files("test"):
            seen: dict[str, str] = {}  # item id -> "row N of FILE": shards of one language share ids
            for path in files:
                batch = rows_to_items(path, _read_table(path), self.name, lang)
                first = 1 if path.suffix == ".parquet" else CSV_FIRST_ROW
                for row, it in enumerate(batch, start=first):  # one item per row, in row order
                    where = f"{row} of {path.name}"
                    if it.id in seen:
                        raise DatasetError(
                            path,
                            f"duplicate sample_id {it.metadata['sample_id']!r} (rows {seen[it.id]} and {where})",
                            row=row,
                            field="sample_id",
                        )
                    seen[it.id] = where
                items.extend(batch)
        yield from items

    def fewshot_pool(self) -> list[Item]:
        """The dev split (5 examples per subject), when it can be had; render() insists when shots are asked."""
        try:
            files = self._files("dev")
        except DatasetError:
            return []
        pool: list[Item] = []
        for lang, paths in files:
            for path in paths:
                pool.extend(rows_to_items(path, _read_table(path), self.name, lang, split="dev"))
        return pool

    def render(self, item: Item, variant: Variant, mode: Mode, shots: list[Item] | None = None) -> Prompt:
        """MMLU prompt by default; k-shot uses dev examples of the same language, same subject first."""
        if variant.few_shot:
            same = [s for s in shots or [] if s.language == item.language]
            same.sort(key=lambda s: s.metadata.get("subject") != item.metadata.get("subject"))
            if len(same) < variant.few_shot:
                raise RenderError(
                    f"{self.name}: {variant.few_shot}-shot needs the dev split of {item.language!r} "
                    f"(found {len(same)} examples)"
                )
            shots = same
        return super().render(item, variant, mode, shots)

    def extra_metrics(self, items: dict[str, Item], scores: list[Score]) -> dict[str, Any]:
        """CS and CA accuracy and CS - CA gap, overall and per language."""
        acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"CS": [], "CA": []})
        for s in scores:
            it = items[s.item_id]
            label = it.subset.get(CS_KEY)
            if label in ("CS", "CA") and "acc" in s.metrics:
                acc[it.language][label].append(s.metrics["acc"])
                acc["*"][label].append(s.metrics["acc"])
        overall = acc.pop("*", {"CS": [], "CA": []})
        return {
            "cs_ca": {
                "overall": cs_ca_gap(overall["CS"], overall["CA"]),
                "by_language": {lang: cs_ca_gap(v["CS"], v["CA"]) for lang, v in sorted(acc.items())},
            }
        }


@register
class GlobalMMLU(_GlobalMMLU):
    name = "global_mmlu"
    description = (
        "Global-MMLU: MMLU in 42 languages; accuracy overall and on culturally sensitive vs agnostic items"
    )
    source = DataSource(
        "HF CohereLabs/Global-MMLU (Apache 2.0)",
        url="https://huggingface.co/datasets/CohereLabs/Global-MMLU",
        env="CULTURELENS_GLOBAL_MMLU_DIR",
        folder="global_mmlu",
        files=("global_mmlu", "."),
    )
    repo_id = "CohereLabs/Global-MMLU"
    languages = FULL_LANGS


@register
class GlobalMMLULite(_GlobalMMLU):
    name = "global_mmlu_lite"
    description = "Global-MMLU-Lite: 200 culturally sensitive + 200 agnostic MMLU items in 15 human-translated languages"
    source = DataSource(
        "HF CohereLabs/Global-MMLU-Lite (Apache 2.0)",
        url="https://huggingface.co/datasets/CohereLabs/Global-MMLU-Lite",
        env="CULTURELENS_GLOBAL_MMLU_LITE_DIR",
        folder="global_mmlu_lite",
        files=("global_mmlu_lite", "."),
    )
    repo_id = "CohereLabs/Global-MMLU-Lite"
    languages = LITE_LANGS


# --- comparing runs ----------------------------------------------------------------------------------
def _load_results(entry: dict[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(entry, dict):
        return entry
    path = Path(entry)
    if path.is_dir():
        path = path / "results.json"
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _ranking(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda m: (-scores[m], m))


def _agreement(cs: dict[str, float], ca: dict[str, float]) -> dict[str, Any]:
    from scipy.stats import kendalltau

    models = sorted(cs)
    tau = p = None
    if len(models) >= 2:
        res = kendalltau([cs[m] for m in models], [ca[m] for m in models])
        if not np.isnan(res.statistic):
            tau, p = float(res.statistic), float(res.pvalue)
    rank_cs, rank_ca = _ranking(cs), _ranking(ca)
    return {
        "cs": cs,
        "ca": ca,
        "rank_cs": rank_cs,
        "rank_ca": rank_ca,
        "kendall_tau": tau,
        "p_value": p,
        "rankings_differ": rank_cs != rank_ca,
    }


def subset_rank_agreement(
    results_list: Sequence[dict[str, Any] | str | Path], task: str | None = None
) -> dict[str, Any]:
    """Rank the runs (models) by CS and by CA accuracy and say whether the rankings differ.

    ``results_list``: results.json dicts (or run folders / results.json paths) of several runs.
    Returns the rankings and Kendall's tau-b between CS and CA scores, overall and per language
    present in every run. ``task`` defaults to whichever of global_mmlu / global_mmlu_lite all runs have.
    """
    runs = [_load_results(r) for r in results_list]
    if len(runs) < 2:
        raise ValueError("subset_rank_agreement needs the results of at least two runs")
    if task is None:
        common = [
            t for t in ("global_mmlu", "global_mmlu_lite") if all(t in r.get("tasks", {}) for r in runs)
        ]
        if not common:
            raise ValueError("no run set has global_mmlu or global_mmlu_lite in every run")
        task = common[0]
    labels: list[str] = []
    per_run: list[dict[str, Any]] = []
    for k, r in enumerate(runs):
        entry = r.get("tasks", {}).get(task)
        if entry is None or "cs_ca" not in entry.get("extra", {}):
            raise ValueError(f"run {k} has no {task} CS/CA results")
        model = r.get("model", {})
        label = (
            str(model.get("model") or model.get("name") or f"run{k}")
            if isinstance(model, dict)
            else str(model)
        )
        labels.append(label if label not in labels else f"{label}#{k}")
        per_run.append(entry["extra"]["cs_ca"])

    def pick(block: list[dict[str, Any]]) -> dict[str, Any] | None:
        cs = {m: b["cs"] for m, b in zip(labels, block, strict=True)}
        ca = {m: b["ca"] for m, b in zip(labels, block, strict=True)}
        if any(v is None for v in (*cs.values(), *ca.values())):
            return None
        return _agreement(cs, ca)

    langs = sorted(set.intersection(*(set(x["by_language"]) for x in per_run)))
    by_language = {}
    for lang in langs:
        agreement = pick([x["by_language"][lang] for x in per_run])
        if agreement is not None:
            by_language[lang] = agreement
    return {
        "task": task,
        "models": labels,
        "overall": pick([x["overall"] for x in per_run]),
        "by_language": by_language,
    }
