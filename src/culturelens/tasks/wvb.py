"""WorldValuesBench (Zhao, Mondal et al. 2024): predict a WVS Wave 7 respondent's answer to a value
question from their demographics.

The public release holds only the probe design (``WorldValuesBench/probe/samples.tsv``: question
id x respondent id ``D_INTERVIEW``), the codebook, question metadata, the 36 probe questions as
prompts and answer recodings. The answers are the user's own copy of the raw WVS Wave 7 file
("WVS Cross-National Wave 7 csv", worldvaluessurvey.org), given with the task option ``wvs_file``,
the ``CULTURELENS_WVS_FILE`` variable or placed in the data folder (``*WVS*Wave*7*.csv``).

Each probe row becomes one ``survey`` item: the respondent's demographic answers, the value question,
the answer scale (after the release's recodings) as options, the respondent's answer in
``metadata["answer"]``; ``group`` is the question id.

**Paper protocol (the default).** The prompt is the release README's example prompt: "Person X
provided the following demographic information in an interview:", the numbered demographic
questions and answers (by default the probe's three variables in the README's order: country,
urban / rural, education; ``demographics=all`` gives all 42), the value question, and the request
for a JSON object with a "thoughtful explanation" and an "answer as a score"; the answer is
generated (greedy). The score is the JSON value of "answer as a score" read as ``evaluate.py``
reads its ``SCORE`` column (``pandas.to_numeric``, unparseable = missing, then ``astype(int)``:
3.7 counts as 3, a score outside the scale is kept as said). The metric is ``evaluate.py``'s: per
question, ``scipy.stats.wasserstein_distance`` between the [0, 1]-normalised true answers of
*every* probed respondent of the question and the normalised valid model scores; the task's unit
is the question (``unit_scores``) and the headline ``w1`` their mean. ``w1_at_most_0_2`` is the
paper's summary (share of questions with W1 <= 0.2, its Figure 3 threshold), ``w1_uniform`` and
``w1_majority`` its baselines. Not released, so ours: the JSON is the first ``{...}`` object of
the answer that has the key (else the key's value is read by a regular expression); a question
whose answers are all invalid scores 1.0, the worst in-scale distance (``evaluate.py`` raises on
it); respondents without a valid true answer are left out at load time (``evaluate.py`` would
raise too).

**culturelens's measures** stay under their own names: ``acc`` (the respondent's own answer),
``w1_respondent`` (W1 of the answer distribution to the respondent's answer, the old headline),
``abs_err_mean`` (per question: means over its respondents), and in ``extra`` the
distribution-level W1 per question (``by_question.w1_dist``, ``w1_dist_greedy``, which with a
generated answer equals the paper's ``w1``) and the paper metric per demographic partition
(``by_partition``). With ``--mode letter`` the score is the most likely option. The alignment
analysis compares each question's pooled answers with every country's answer distribution in the
raw file (``Task.group_references``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from culturelens import render as render_mod
from culturelens import scoring
from culturelens.countries import Country, try_normalize_country
from culturelens.render import Rendered, View, template
from culturelens.schema import Item, ItemKind, Mode, Prompt, Response, Score, Variant
from culturelens.tasks.base import (
    DatasetError,
    DataSource,
    Headline,
    SurveyTask,
    TaskOptions,
    asks_default_template,
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

#: the demographic variables the prompt shows by default: the probe's three, in the order of the
#: release README's example prompt (country, urban / rural, education)
DEMOGRAPHICS = ("B_COUNTRY", "H_URBRURAL", "Q275")
#: ``demographics=all``: every demographic variable of the question metadata but the interview id
ALL_DEMOGRAPHICS = "all"
SCORE_KEY = "answer as a score"

# the README's example prompt (Person X, JSON answer); filled in by :func:`_paper_template`
_PERSON_X = (
    "Person X provided the following demographic information in an interview:\n{demographics}\n\n"
    "What would Person X answer to the following question and why?\nQuestion: {question}\n\n"
    "Your output should be in the following format:\n{{\n"
    '  "thoughtful explanation": "... upto 30 words (keep their demographics in mind) ...",\n'
    '  "answer as a score": "... score ..."\n}}'
)


@template(ItemKind.SURVEY, "wvb", generic=False)
def _paper_template(v: View) -> Rendered:
    """The paper's prompt: numbered demographic questions and answers, the value question, JSON format."""
    meta = v.item.metadata
    lines = "\n".join(
        f"{i}. Question: {q}\n Answer: {a}" for i, (q, a) in enumerate(meta.get("demographics", []), start=1)
    )
    return Rendered(_PERSON_X.format(demographics=lines, question=meta.get("value_question", v.question)))


_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_KEY_VALUE = re.compile(r'"answer as a score"\s*:\s*("(?:[^"\\]|\\.)*"|[^,}\n]*)')


def _numeric(value: Any) -> float | None:
    """A ``SCORE`` cell as ``pandas.to_numeric(errors="coerce")`` reads it (None: missing): a decimal or
    exponent literal in ASCII digits with surrounding blanks; anything else (non-ASCII digits such as
    "\u0663" too), and infinities, are missing."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    if not _NUMBER.fullmatch(text):
        return None
    x = float(text)
    return x if math.isfinite(x) else None


def parse_score(text: str) -> int | None:
    """The score of a generated answer: the value of "answer as a score" in the first JSON object of
    the text that has it (else the key's value found by a regular expression), read as
    ``evaluate.py`` reads ``SCORE`` (:func:`_numeric`, then truncated as ``astype(int)``); None when
    there is none."""
    decoder = json.JSONDecoder()
    raw: Any = None
    found = False
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(obj, dict) and SCORE_KEY in obj:
            raw, found = obj[SCORE_KEY], True
            break
    if not found:
        hit = _KEY_VALUE.search(text)
        if hit is None:
            return None
        raw = hit.group(1).strip()
        if raw.startswith('"'):
            try:
                raw = json.loads(raw)
            except ValueError:
                raw = raw.strip('"')
    if isinstance(raw, dict | list):
        return None
    x = _numeric(raw)
    return None if x is None else int(x)


def normalised(scores: Sequence[float], lo: int, hi: int) -> np.ndarray:
    """``evaluate.get_normalized_scores``: ``0 + (score - min) * 1 / (max - min)`` (out of scale stays out)."""
    return 0.0 + ((np.asarray(scores, dtype=float) - lo) * 1.0 / (hi - lo))


def sample_w1(u: Sequence[float] | np.ndarray, v: Sequence[float] | np.ndarray) -> float:
    """Wasserstein-1 between two samples with equal weights (``scipy.stats.wasserstein_distance``):
    the area between their empirical CDFs."""
    a, b = np.sort(np.asarray(u, dtype=float)), np.sort(np.asarray(v, dtype=float))
    allv = np.sort(np.concatenate([a, b]))
    deltas = np.diff(allv)
    ca = np.searchsorted(a, allv[:-1], "right") / a.size
    cb = np.searchsorted(b, allv[:-1], "right") / b.size
    return float(np.sum(np.multiply(np.abs(ca - cb), deltas)))


#: W1 of a question none of whose answers is valid: the largest in-scale distance
W1_NO_ANSWER = 1.0
#: the paper's summary threshold (Figure 3; its abstract: the share of questions under 0.2)
W1_THRESHOLD = 0.2


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
        "The release README's prompt per probe row (value question x respondent): 'Person X provided the "
        "following demographic information...' (country, urban/rural, education), the value question and "
        "a JSON answer with an 'answer as a score', generated greedily. The score is read as evaluate.py "
        "reads SCORE (to_numeric, invalid = missing, astype(int), out-of-scale kept); the unit is the "
        "question: evaluate.py's scipy wasserstein_distance between the normalised true answers of every "
        "probed respondent and the valid normalised scores (headline w1: the mean over questions). Ours: the "
        "JSON extraction; an all-invalid question scores 1.0 (evaluate.py raises)."
    )
    headline = Headline("w1", "Wasserstein-1 per question (evaluate.py)", higher_is_better=False)
    default_mode = Mode.GENERATE
    default_template = "wvb"
    metrics = {
        "w1": "per question: evaluate.py's Wasserstein-1 between true answers and model scores (lower is better)",
        "w1_at_most_0_2": "per question: 1 if its W1 is at most 0.2 (the paper's summary threshold)",
        "w1_uniform": "per question: W1 of the uniform baseline (every scale point once), as the paper's",
        "w1_majority": "per question: W1 of the majority baseline (the most common true answer), as the paper's",
        "invalid": "per question: share of answers without a valid score",
        "acc": "per question: share of respondents whose own answer the model gave (culturelens)",
        "w1_respondent": "per question: mean W1 of the answer distribution to the respondent's answer (culturelens)",
        "abs_err_mean": "per question: mean absolute error of the expected answer position (culturelens)",
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
            description="demographic variables shown to the model, comma-separated, or 'all' "
            "(default: the probe's three, B_COUNTRY,H_URBRURAL,Q275)",
        )

    options: Options  # the typed --opt values

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
        fields = self._demographic_fields(meta)
        for f in fields:
            for path, data in ((codebook_path, codebook), (meta_path, meta)):
                if f in data and not isinstance(data[f], dict):
                    raise DatasetError(path, f"expected an object, got {type(data[f]).__name__}", row=f)
        wanted_ids = {row["D_INTERVIEW"].strip() for _, row in probe}
        respondents, counts = self._read_raw(self.wvs_file(), scales, wanted_ids, codebook)
        self._refs = {
            q: {c: (np.asarray(v) / sum(v)).tolist() for c, v in by_c.items() if sum(v) > 0}
            for q, by_c in counts.items()
        }
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
            demographics = self._demographic_answers(resp, meta, codebook, fields)
            n += 1
            yield Item(
                id=f"wvb-{q}-{rid}",
                task=self.name,
                kind=ItemKind.SURVEY,
                question=f"How would this person answer the following question?\n{prompts[q].strip()}",
                context="A survey respondent gave these answers about themselves:\n"
                + "\n".join(f"- {dq} {da}" for dq, da in demographics),
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
                metadata={
                    "answer": answer,
                    "qid": q,
                    "respondent": rid,
                    "row": rownum,
                    "scale": [scale.lo, scale.hi],
                    "value_question": prompts[q].strip(),
                    "demographics": [list(d) for d in demographics],
                    "max_tokens": 128,
                },
            )
        if n == 0:
            raise DatasetError(
                self.wvs_file(),
                "no probe respondent (D_INTERVIEW) with a valid answer was found in the raw "
                f"WVS file ({dict(self.skipped)})",
                field="D_INTERVIEW",
            )

    def _demographic_fields(self, meta: dict[str, Any]) -> list[str]:
        opt = self.options.demographics
        if opt == [ALL_DEMOGRAPHICS]:
            return [
                k
                for k, v in meta.items()
                if isinstance(v, dict) and v.get("use_case") == "demographic" and k != "D_INTERVIEW"
            ]
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
    def _demographic_answers(
        resp: dict[str, str], meta: dict[str, Any], codebook: dict[str, Any], fields: Sequence[str]
    ) -> list[tuple[str, str]]:
        """(question, answer text) per demographic variable the respondent answered, as the release's
        ``data_preparation.py`` writes them (the codebook's answer text, else the number); missing
        and negative codes (no answer, not asked) are left out."""
        out = []
        for f in fields:
            raw = (resp.get(f) or "").strip()
            try:
                x = float(raw)
            except ValueError:
                x = None
            if not raw or (x is not None and x < 0):
                continue
            key = str(int(x)) if x is not None and x.is_integer() else raw
            choices = (codebook.get(f) or {}).get("choices") or {}
            answer = str(choices.get(key, key))
            question = (meta.get(f) or {}).get("question") or (codebook.get(f) or {}).get("question") or f
            out.append((str(question), answer))
        return out

    def group_references(self) -> dict[str, dict[str, list[float]]]:
        """Question id -> country -> answer distribution of all the raw file's respondents (unweighted)."""
        return self._refs

    def reference_data(self) -> dict[str, Any]:
        """The shared per-question references (:meth:`group_references`), saved with the run."""
        return {**super().reference_data(), "group_references": self.group_references()}

    def render(self, item: Item, variant: Variant, mode: Mode, shots: list[Item] | None = None) -> Prompt:
        """The paper's prompt asks for a generated JSON answer; scored by option likelihood (letter,
        cloze) the item is asked with the generic survey wording instead."""
        if render_mod.effective_mode(item, variant, mode) is not Mode.GENERATE and asks_default_template(
            item, variant
        ):
            return render_mod.render(item, variant, mode, shots)
        return super().render(item, variant, mode, shots)

    def score(self, item: Item, prompt: Prompt, response: Response) -> Score:
        """A generated answer: its JSON score (:func:`parse_score`), kept even outside the scale as
        ``answer_score``; with option probabilities: the most likely option's scale value. Beside it
        culturelens's per-respondent measures (``acc``, ``w1_respondent``, ``abs_err_mean``)."""
        from culturelens.distributions import expected_position, onehot, scale_positions, wasserstein1

        answer = item.metadata.get("answer")
        lo, hi = item.metadata.get("scale", [0, len(item.options) - 1])
        k = len(item.options)
        if prompt.mode is Mode.GENERATE:
            base: dict[str, Any] = {
                "item_id": item.id,
                "task": item.task,
                "variant": prompt.variant.id,
                "mode": prompt.mode,
            }
            value = parse_score(response.text or "")
            if value is None:
                metrics = {"invalid": 1.0} if answer is None else {"invalid": 1.0, "acc": 0.0}
                return Score(**base, metrics=metrics, prediction=None, valid=False)
            s = Score(**base, metrics={"invalid": 0.0, "answer_score": float(value)}, prediction=None)
            if lo <= value <= hi:
                s.prediction = value - lo
                s.probs = onehot(k, value - lo).tolist()
        else:
            s = scoring.score(item, prompt, response)
            if s.probs is not None:
                s.metrics["answer_score"] = float(lo + int(np.argmax(s.probs)))
                s.metrics["invalid"] = 0.0
        if answer is not None:
            s.metrics["acc"] = float(s.metrics.get("answer_score") == lo + answer)
            if s.probs is not None:
                s.metrics["w1_respondent"] = wasserstein1(s.probs, onehot(k, answer))
                s.metrics["abs_err_mean"] = abs(
                    expected_position(s.probs) - float(scale_positions(k)[answer])
                )
        return s

    def unit_scores(self, items: dict[str, Item], scores: list[Score]) -> list[tuple[Item, Score]]:
        """One unit per question, scored as ``evaluate.py`` scores it (:meth:`question_w1`), with the
        paper's baselines and the means of the per-respondent measures."""
        groups: dict[str, list[Score]] = {}
        for s in scores:
            groups.setdefault(items[s.item_id].group or s.item_id, []).append(s)
        units: list[tuple[Item, Score]] = []
        for q, ss in groups.items():
            first = items[ss[0].item_id]
            metrics = self.question_metrics([items[s.item_id] for s in ss], ss)
            if not metrics:
                continue
            for name in ("acc", "w1_respondent", "abs_err_mean"):
                vals = [s.metrics[name] for s in ss if name in s.metrics]
                if vals:
                    metrics[name] = float(np.mean(vals))
            unit_item = first.model_copy(
                update={
                    "id": f"wvb:{q}",
                    "question": first.metadata.get("value_question", first.question),
                    "country": None,
                    "context": None,
                    "subset": {},
                    "reference": {},
                }
            )
            unit = Score(
                item_id=unit_item.id,
                task=first.task,
                variant=ss[0].variant,
                mode=ss[0].mode,
                metrics=metrics,
                valid=any(s.valid for s in ss),
            )
            units.append((unit_item, unit))
        return units

    @staticmethod
    def question_metrics(its: Sequence[Item], ss: Sequence[Score]) -> dict[str, float]:
        """``evaluate.py`` on one question's rows: W1 between the normalised true answers of every row
        and the normalised valid model scores (:data:`W1_NO_ANSWER` when there is none), whether it is
        at most :data:`W1_THRESHOLD`, and the paper's uniform and majority baselines."""
        rows = [(it, s) for it, s in zip(its, ss, strict=True) if "answer" in it.metadata]
        if not rows:
            return {}
        lo, hi = rows[0][0].metadata.get("scale", [0, len(rows[0][0].options) - 1])
        truth = normalised([lo + it.metadata["answer"] for it, _ in rows], lo, hi).tolist()
        said = [s.metrics["answer_score"] for _, s in rows if s.valid and "answer_score" in s.metrics]
        w1 = sample_w1(truth, normalised(said, lo, hi)) if said else W1_NO_ANSWER
        majority = Counter(truth).most_common(1)[0][0]
        return {
            "w1": w1,
            "w1_at_most_0_2": float(w1 <= W1_THRESHOLD),
            "w1_uniform": sample_w1(truth, normalised(range(lo, hi + 1), lo, hi)),
            "w1_majority": sample_w1(truth, [majority]),
            "invalid": 1.0 - len(said) / len(rows),
        }

    def extra_metrics(self, items: dict[str, Item], scores: list[Score]) -> dict[str, Any]:
        """The paper's metric per demographic partition (``by_partition``: continent, urban / rural,
        education, country; per value, the mean over its questions), questions without a valid answer
        (``paper``); culturelens's distribution-level Wasserstein-1 per question (``by_question``,
        ``by_question_continent``): the predicted answer distribution averaged over the probed
        respondents vs their true answers, with a uniform baseline and the greedy (argmax) version."""
        from culturelens.distributions import onehot, uniform, wasserstein1

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
                "w1_dist": float(np.mean(w)),
                "w1_dist_greedy": float(np.mean(wg)),
                "w1_dist_uniform": float(np.mean(wu)),
                "groups": len(w),
            }

        out: dict[str, Any] = {}
        by_q = per_groups(lambda it: it.group)
        if by_q:
            out["by_question"] = by_q
            out["by_question_continent"] = per_groups(lambda it: (it.group, it.subset.get("continent")))
        partitions: dict[str, Any] = {}
        for name, key in (
            ("continent", lambda it: it.subset.get("continent")),
            ("urban_rural", lambda it: it.subset.get("urban_rural")),
            ("education", lambda it: it.subset.get("education")),
            ("country", lambda it: it.country.name if it.country else None),
        ):
            cells: dict[tuple[Any, str], list[Score]] = defaultdict(list)
            for s in scores:
                it = items[s.item_id]
                if key(it):
                    cells[(key(it), it.group or it.id)].append(s)
            per_value: dict[str, list[float]] = defaultdict(list)
            for (value, _q), ss in cells.items():
                m = self.question_metrics([items[s.item_id] for s in ss], ss)
                if m:
                    per_value[value].append(m["w1"])
            partitions[name] = {
                v: {"w1": float(np.mean(ws)), "questions": len(ws)} for v, ws in sorted(per_value.items())
            }
        out["by_partition"] = partitions
        groups: dict[str, list[Score]] = defaultdict(list)
        for s in scores:
            groups[items[s.item_id].group or s.item_id].append(s)
        out["paper"] = {
            "questions": len(groups),
            "no_valid_answer": sorted(g for g, ss in groups.items() if not any(x.valid for x in ss)),
            "w1_no_answer": W1_NO_ANSWER,
        }
        return out
