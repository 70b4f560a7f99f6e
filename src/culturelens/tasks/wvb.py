"""WorldValuesBench (Zhao, Mondal et al. 2024): predict a WVS Wave 7 respondent's answer to a value
question from their demographics.

The public release holds only the probe design (``WorldValuesBench/probe/samples.tsv``: question
id x respondent id ``D_INTERVIEW``), the codebook, question metadata, the 36 probe questions as
prompts and answer recodings. The answers are the user's own copy of the raw WVS Wave 7 file
("WVS Cross-National Wave 7 csv", worldvaluessurvey.org), given with the task option ``wvs_file``,
the ``CULTURELENS_WVS_FILE`` variable or placed in the data folder (``*WVS*Wave*7*.csv``).

Each probe row becomes one ``survey`` item: the respondent's demographic answers as context, the
value question, the answer scale (after the release's recodings) as options, the respondent's
answer in ``metadata["answer"]``. ``group`` is the question id, so the alignment analysis averages
a question's answers over respondents and compares them with every country's answer distribution
in the raw file (``Task.group_references``) by Wasserstein-1 on the [0, 1]-scaled answer scale.
The paper's own metric (per question: Wasserstein-1 between the predicted and the true answer
distributions of the probed respondents) is in ``extra_metrics``.
"""

from __future__ import annotations

import csv
import os
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from culturelens import scoring
from culturelens.countries import Country, try_normalize_country
from culturelens.schema import Item, ItemKind, Prompt, Response, Score
from culturelens.tasks.base import (
    DatasetError,
    DataSource,
    Headline,
    SurveyTask,
    TaskOptions,
    check_unique,
    no_items,
    read_csv_rows,
    read_json,
    register,
)

PROBE = Path("WorldValuesBench/probe/samples.tsv")
CODEBOOK = Path("dataset_construction/codebook.json")
METADATA = Path("dataset_construction/question_metadata.json")
VALUE_QUESTIONS = Path("dataset_construction/probe_set_construction/value_questions.json")
ADJUSTMENT = Path("dataset_construction/answer_adjustment.json")

#: demographic variables shown to the model (those present in the raw file); ids and dates are left out
DEMOGRAPHICS = (
    "B_COUNTRY",
    "H_URBRURAL",
    "G_TOWNSIZE",
    "Q260",
    "Q262",
    "Q263",
    "Q266",
    "Q269",
    "Q270",
    "Q271",
    "Q272",
    "Q273",
    "Q274",
    "Q275",
    "Q279",
    "Q281",
    "Q284",
    "Q285",
    "Q286",
    "Q287",
    "Q288",
    "Q289",
    "Q290",
)


def _json(path: Path) -> dict[str, Any]:
    """A release JSON file: an object keyed by question / variable id."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise DatasetError(path, f"expected a JSON object keyed by question id, got {type(data).__name__}")
    if not data:
        raise no_items(path, "the JSON object is empty")
    return data


def _entry(path: Path, data: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = data[key]
    if not isinstance(value, kind):
        raise DatasetError(path, f"expected {what}, got {type(value).__name__}", row=key)
    return value


def _int(text: Any) -> int | None:
    try:
        return int(float(str(text).strip()))
    except (TypeError, ValueError):
        return None


class Scale:
    """One value question's answer scale after the release's recodings."""

    def __init__(
        self, qid: str, meta: dict[str, Any], codebook: dict[str, Any], adjust: dict[str, str], path: Path
    ):
        lo, hi = _int(meta.get("answer_scale_min")), _int(meta.get("answer_scale_max"))
        if lo is None or hi is None or hi <= lo:
            raise DatasetError(path, f"{qid}: no usable answer scale", field="answer_scale_min")
        self.qid, self.lo, self.hi, self.adjust = qid, lo, hi, adjust
        choices = codebook.get("choices") or {}
        if not isinstance(choices, dict):
            raise DatasetError(path, "expected an object code -> answer text", row=qid, field="choices")
        names: dict[int, str] = {}
        for code, text in choices.items():
            value = self.recode(code)
            if value is not None and (value not in names or str(value) == str(code)):
                names[value] = str(text).strip()
        self.options = [
            f"{v} ({names[v]})" if v in names and names[v] != str(v) else str(v) for v in range(lo, hi + 1)
        ]

    def recode(self, raw: Any) -> int | None:
        """Raw WVS code -> scale value, or None (missing, not asked, dropped by the recoding)."""
        code = _int(raw)
        if code is None:
            return None
        mapped = self.adjust.get(str(code), str(code))
        value = _int(mapped) if mapped != "" else None
        if value is None or not self.lo <= value <= self.hi:
            return None
        return value

    def index(self, raw: Any) -> int | None:
        v = self.recode(raw)
        return None if v is None else v - self.lo


def _sniff(path: Path) -> str:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        head = fh.readline()
    counts = {d: head.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d])


def _country_of(code: Any, codebook: dict[str, Any]) -> Country | None:
    raw = str(_int(code)) if _int(code) is not None else str(code)
    name = (codebook.get("B_COUNTRY", {}).get("choices") or {}).get(raw)
    c = try_normalize_country(name) if name else None
    if c is None:
        import pycountry

        hit = pycountry.countries.get(numeric=raw.zfill(3))
        c = try_normalize_country(hit.alpha_2) if hit else None
    return c if c is None or not c.subnational else None


@register
class WorldValuesBench(SurveyTask):
    name = "wvb"
    description = (
        "WorldValuesBench probe: a WVS respondent's value answers from their demographics (needs raw WVS-7)"
    )
    protocol = (
        "Each probe row (value question x respondent) shows the respondent's demographic answers and asks "
        "how they would answer the value question on its (recoded) scale. The paper's metric: per question, "
        "Wasserstein-1 between the predicted and the true answer distributions of the probed respondents "
        "(in extra); the alignment analysis compares each question with every country's answers."
    )
    headline = Headline("acc", "accuracy (the respondent's own answer)")
    metrics = {
        "w1": "Wasserstein-1 between the predicted distribution and the respondent's answer (lower is better)",
        "abs_err_mean": "absolute error of the expected answer position (lower is better)",
    }
    alignment_metric = "w1"
    source = DataSource(
        "WorldValuesBench release (Zhao, Mondal et al. 2024: probe design, codebook, prompts) and the raw "
        "WVS Wave 7 file from worldvaluessurvey.org (not redistributed)",
        env="CULTURELENS_WVB",
        folder="worldvaluesbench",
        files=tuple(str(p) for p in (PROBE, CODEBOOK, METADATA, VALUE_QUESTIONS, ADJUSTMENT)),
    )

    class Options(TaskOptions):
        wvs_file: str | None = Field(None, description="the raw WVS Wave 7 CSV (or set CULTURELENS_WVS_FILE)")
        demographics: list[str] | None = Field(
            None,
            description="demographic variables shown to the model, comma-separated (default: the release's)",
        )

    #: ``--limit`` balances questions, then continents and countries; respondents are separate items
    limit_strata = ("group", "subset.continent", "country")
    limit_groups = False

    def __init__(self, data_dir: str | Path | None = None, **options: Any):
        super().__init__(data_dir, **options)
        self._refs: dict[str, dict[str, list[float]]] = {}
        self.skipped: Counter[str] = Counter()

    def _path(self, rel: Path) -> Path:
        """A release file: at its place in the repository folder, else the first of that name below it."""
        found = self.locate((str(rel), f"**/{rel.name}"), file_ok=False)
        if found is None:
            raise DatasetError("<no data>", "wvb needs --data-dir: the WorldValuesBench repository folder")
        return found

    def wvs_file(self) -> Path:
        opt = self.options.wvs_file or os.environ.get("CULTURELENS_WVS_FILE")
        if opt:
            p = Path(opt)
            if not p.exists():
                raise DatasetError(p, "raw WVS Wave 7 file not found (task option wvs_file)")
            return p
        if self.data_dir is not None:
            hits = sorted(self.data_dir.rglob("*WVS*Wave*7*.csv")) + sorted(
                self.data_dir.rglob("*WVS*7*.csv")
            )
            if hits:
                return hits[0]
        raise DatasetError(
            self.data_dir or "<no data>",
            "WorldValuesBench answers come from the raw WVS Wave 7 file, which is not redistributed: download "
            "'WVS Cross-National Wave 7 csv' from worldvaluessurvey.org and pass it as task option wvs_file "
            "(or set CULTURELENS_WVS_FILE)",
            field="wvs_file",
        )

    def load(self) -> Iterator[Item]:
        codebook_path, meta_path = self._path(CODEBOOK), self._path(METADATA)
        prompts_path, adjust_path = self._path(VALUE_QUESTIONS), self._path(ADJUSTMENT)
        codebook, meta = _json(codebook_path), _json(meta_path)
        prompts, adjust_all = _json(prompts_path), read_json(adjust_path)
        if not isinstance(adjust_all, dict):
            raise DatasetError(adjust_path, f"expected a JSON object, got {type(adjust_all).__name__}")
        probe_path = self._path(PROBE)
        probe = read_csv_rows(
            probe_path,
            ("Question", "Question Category", "Continent", "Urban / Rural", "Education", "D_INTERVIEW"),
            delimiter="\t",
        )
        scales: dict[str, Scale] = {}
        seen: dict[str, int] = {}
        for rownum, row in probe:
            q, rid = row["Question"].strip(), row["D_INTERVIEW"].strip()
            for field, value in (("Question", q), ("D_INTERVIEW", rid)):
                if not value:
                    raise DatasetError(probe_path, "empty value", row=rownum, field=field)
            check_unique(
                probe_path, seen, f"{q} x {rid}", rownum, "D_INTERVIEW", what="probe (question x respondent)"
            )
            if q not in scales:
                if q not in meta or q not in codebook or q not in prompts:
                    raise DatasetError(
                        probe_path,
                        f"question {q!r} is not in the metadata, codebook and prompts",
                        row=rownum,
                        field="Question",
                    )
                _entry(prompts_path, prompts, q, str, "the question text")
                adjust = adjust_all.get(q, {})
                if not isinstance(adjust, dict) or not all(isinstance(v, str | int) for v in adjust.values()):
                    raise DatasetError(adjust_path, "expected an object code -> recoded code", row=q)
                scales[q] = Scale(
                    q,
                    _entry(meta_path, meta, q, dict, "an object"),
                    _entry(codebook_path, codebook, q, dict, "an object"),
                    {str(k): str(v) for k, v in adjust.items()},
                    meta_path,
                )
        for f in self._demographic_fields():
            for path, data in ((codebook_path, codebook), (meta_path, meta)):
                if f in data and not isinstance(data[f], dict):
                    raise DatasetError(path, f"expected an object, got {type(data[f]).__name__}", row=f)
        wanted_ids = {row["D_INTERVIEW"].strip() for _, row in probe}
        respondents, counts = self._read_raw(self.wvs_file(), scales, wanted_ids, codebook)
        self._refs = {
            q: {c: (np.asarray(v) / sum(v)).tolist() for c, v in by_c.items() if sum(v) > 0}
            for q, by_c in counts.items()
        }
        fields = self._demographic_fields()
        n = 0
        self.skipped.clear()
        for rownum, row in probe:
            q, rid = row["Question"].strip(), row["D_INTERVIEW"].strip()
            resp = respondents.get(rid)
            if resp is None:
                self.skipped["respondent not in the raw file"] += 1
                continue
            scale = scales[q]
            answer = scale.index(resp.get(q))
            if answer is None:
                self.skipped["no valid answer"] += 1
                continue
            country = _country_of(resp.get("B_COUNTRY"), codebook)
            own = self._refs.get(q, {}).get(country.name) if country else None
            n += 1
            yield Item(
                id=f"wvb-{q}-{rid}",
                task=self.name,
                kind=ItemKind.SURVEY,
                question=f"How would this person answer the following question?\n{prompts[q].strip()}",
                context=self._describe(resp, meta, codebook, fields),
                options=scale.options,
                ordered=True,
                reference={country.name: own} if country and own else {},
                country=country,
                topic=row["Question Category"],
                group=q,
                subset={
                    "continent": row["Continent"],
                    "urban_rural": row["Urban / Rural"],
                    "education": row["Education"],
                },
                metadata={"answer": answer, "qid": q, "respondent": rid, "row": rownum},
            )
        if n == 0:
            raise DatasetError(
                self.wvs_file(),
                "no probe respondent (D_INTERVIEW) with a valid answer was found in the raw "
                f"WVS file ({dict(self.skipped)})",
                field="D_INTERVIEW",
            )

    def _demographic_fields(self) -> list[str]:
        opt = self.options.demographics
        return [f for f in opt if f] if opt else list(DEMOGRAPHICS)

    def _read_raw(
        self, path: Path, scales: dict[str, Scale], wanted: set[str], codebook: dict[str, Any]
    ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, list[float]]]]:
        """Stream the raw file once: every respondent's value answers (per-country distributions) and
        the probe respondents' full rows."""
        delim = _sniff(path)
        respondents: dict[str, dict[str, str]] = {}
        counts: dict[str, dict[str, list[float]]] = defaultdict(dict)
        country_cache: dict[str, Country | None] = {}
        with path.open(encoding="utf-8-sig", newline="", errors="replace") as fh:
            reader = csv.DictReader(fh, delimiter=delim)
            cols = set(reader.fieldnames or [])
            for col in ("D_INTERVIEW", "B_COUNTRY"):
                if col not in cols:
                    raise DatasetError(path, "missing column of the WVS Wave 7 layout", row=1, field=col)
            present = [q for q in scales if q in cols]
            if not present:
                raise DatasetError(
                    path,
                    f"none of the probe questions ({', '.join(list(scales)[:4])}...) is a column",
                    row=1,
                    field="Q1",
                )
            first_row: dict[str, int] = {}
            for rownum, row in enumerate(reader, start=2):
                rid = (row.get("D_INTERVIEW") or "").strip()
                if rid.endswith(".0"):
                    rid = rid[:-2]
                if rid in wanted:
                    check_unique(path, first_row, rid, rownum, "D_INTERVIEW", what="respondent")
                    respondents[rid] = row
                code = (row.get("B_COUNTRY") or "").strip()
                if code not in country_cache:
                    country_cache[code] = _country_of(code, codebook)
                country = country_cache[code]
                if country is None:
                    continue
                for q in present:
                    idx = scales[q].index(row.get(q))
                    if idx is None:
                        continue
                    dist = counts[q].setdefault(country.name, [0.0] * len(scales[q].options))
                    dist[idx] += 1.0
        return respondents, counts

    @staticmethod
    def _describe(
        resp: dict[str, str], meta: dict[str, Any], codebook: dict[str, Any], fields: Sequence[str]
    ) -> str:
        lines = []
        for f in fields:
            raw = (resp.get(f) or "").strip()
            code = _int(raw)
            if not raw or (code is not None and code < 0):
                continue
            choices = (codebook.get(f) or {}).get("choices") or {}
            answer = choices.get(str(code) if code is not None else raw, raw)
            question = (meta.get(f) or {}).get("question") or (codebook.get(f) or {}).get("question") or f
            lines.append(f"- {question} {answer}")
        return "A survey respondent gave these answers about themselves:\n" + "\n".join(lines)

    def group_references(self) -> dict[str, dict[str, list[float]]]:
        """Question id -> country -> answer distribution of all the raw file's respondents (unweighted)."""
        return self._refs

    def score(self, item: Item, prompt: Prompt, response: Response) -> Score:
        from culturelens.alignment import expected_position, onehot, scale_positions, wasserstein1

        s = scoring.score(item, prompt, response)
        answer = item.metadata.get("answer")
        if s.probs is not None and answer is not None:
            k = len(item.options)
            s.metrics["acc"] = float(int(np.argmax(s.probs)) == answer)
            s.metrics["w1"] = wasserstein1(s.probs, onehot(k, answer))
            s.metrics["abs_err_mean"] = abs(expected_position(s.probs) - float(scale_positions(k)[answer]))
        return s

    def extra_metrics(self, items: dict[str, Item], scores: list[Score]) -> dict[str, Any]:
        """The paper's metric: per question (and per question x continent), Wasserstein-1 between the
        predicted answer distribution over the probed respondents and their true answers; with a
        uniform baseline and the greedy (argmax) version of the prediction."""
        from culturelens.alignment import onehot, uniform, wasserstein1

        def per_groups(key) -> dict[str, float] | None:
            pred: dict[Any, list[np.ndarray]] = defaultdict(list)
            greedy: dict[Any, list[np.ndarray]] = defaultdict(list)
            truth: dict[Any, list[np.ndarray]] = defaultdict(list)
            for s in scores:
                it = items[s.item_id]
                if s.probs is None or "answer" not in it.metadata:
                    continue
                k = len(it.options)
                g = key(it)
                pred[g].append(np.asarray(s.probs))
                greedy[g].append(onehot(k, int(np.argmax(s.probs))))
                truth[g].append(onehot(k, it.metadata["answer"]))
            if not truth:
                return None
            w, wg, wu = [], [], []
            for g in truth:
                t = np.mean(truth[g], axis=0)
                w.append(wasserstein1(np.mean(pred[g], axis=0), t))
                wg.append(wasserstein1(np.mean(greedy[g], axis=0), t))
                wu.append(wasserstein1(uniform(t.size), t))
            return {
                "w1": float(np.mean(w)),
                "w1_greedy": float(np.mean(wg)),
                "w1_uniform": float(np.mean(wu)),
                "groups": len(w),
            }

        out: dict[str, Any] = {}
        by_q = per_groups(lambda it: it.group)
        if by_q:
            out["by_question"] = by_q
            out["by_question_continent"] = per_groups(lambda it: (it.group, it.subset.get("continent")))
        return out
