"""Kalahi (Montalan et al., 2024): culturally specific situations Filipinos face, in Filipino.

Paper protocol (the default), as the official ``kalahi/models.py`` + ``metrics.run_MC`` compute the
published MC1 / MC2 (forked from TruthfulQA), quirks included:

* every reference answer gets a period unless it ends with one (``format_best`` /
  ``split_multi_answer``) and is scored as the assistant's whole reply to the Filipino prompt (the
  user turn, no instruction added): the log-probability of everything the chat template renders
  after the opened assistant turn, so the template's end-of-turn tokens count with the answer
  (``Prompt.close_turn``; where the template is not visible, e.g. plain text, the bare answer);
* the per-answer score is ``exp(sum log-prob / UTF-8 bytes of the answer with its period)``;
* ``mc1`` = 1 if the best answer's score is strictly higher than every irrelevant answer's;
* ``mc2`` = ``sum(exp(score) for relevant) / sum(exp(score) for relevant + irrelevant)``: the score,
  already an exponential, is exponentiated a second time (hence MC2 near 0.5 for every model in
  the paper). The relevant list is the release's, best answer and any repeats included.

culturelens's corrected scores, on the bare answer texts (no period, no end-of-turn), each distinct
answer once: ``mc1_bare`` / ``mc2_bare`` with one exponent on the byte-normalised log-probs
(``mc2_bare`` is the relevant answers' share of the probability mass), and ``mc1_sum`` /
``mc2_sum`` on summed log-probs as TruthfulQA.

Each row becomes one multiple-choice item whose options are the distinct bare answers ``[best,
*other relevant, *irrelevant]``; ``metadata`` records which option indices are best / relevant /
irrelevant (``correct`` lists the relevant ones) and the official lists (``refs``, the distinct
answers with their period, and ``paper_best`` / ``paper_relevant`` / ``paper_irrelevant`` indexing
them). The default mode is cloze: the continuations are ``refs`` (closed turns) then the options in
displayed order. In letter/generate mode the generic scorer applies (``acc`` = a relevant option).

Task option ``prompts``: ``full`` (default, ``data/filipino.csv``), ``partially_enriched`` or
``unenriched``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from culturelens import scoring
from culturelens.countries import normalize_country
from culturelens.download import fetch_hf_file, fetch_url
from culturelens.render import Rendered, View, template
from culturelens.schema import Item, ItemKind, Mode, Prompt, Response, Score, Variant
from culturelens.tasks.base import (
    DatasetError,
    DataSource,
    Headline,
    Task,
    TaskOptions,
    check_unique,
    read_csv_rows,
    register,
)

FILES = {
    "full": "filipino.csv",
    "partially_enriched": "filipino_partially_enriched.csv",
    "unenriched": "filipino_unenriched.csv",
}
COLUMNS = ("prompt_variation_id", "prompt_id", "category", "topic", "prompt", "best_answer",
           "relevant_answers", "irrelevant_answers")  # fmt: skip
GITHUB_COMMIT = "2beb3ef4133a7ca432f5f4d19a4bf631ce5e6979"
GITHUB_RAW = f"https://raw.githubusercontent.com/aisingapore/kalahi/{GITHUB_COMMIT}"
HF_REPO = "aisingapore/kalahi"


def split_answers(text: str) -> list[str]:
    return [a.strip() for a in text.split(";") if a.strip()]


def with_period(answer: str) -> str:
    """The official answer formatting: stripped, a period added unless it already ends with one."""
    a = answer.strip()
    return a if a.endswith(".") else a + "."


def paper_scores(
    best: int, relevant: list[int], irrelevant: list[int], lps: list[float], nbytes: list[int]
) -> tuple[float, float]:
    """The official (MC1, MC2) from summed log-probs ``lps`` and byte counts of the period-closed
    answers; ``best`` / ``relevant`` / ``irrelevant`` index them (repeats counted as listed)."""
    score = [math.exp(lp / nb) for lp, nb in zip(lps, nbytes, strict=True)]
    s_rel = [score[i] for i in relevant]
    s_irr = [score[i] for i in irrelevant]
    mc1 = 1.0 if score[best] > max(s_irr) else 0.0
    p_rel = np.exp(s_rel)  # the second exponent, as run_MC
    p_irr = np.exp(s_irr)
    p_rel = p_rel / (sum(p_rel) + sum(p_irr))
    return mc1, float(sum(p_rel))


def _logsumexp(values: list[float]) -> float:
    m = max(values)
    if m == -math.inf:
        return m
    return m + math.log(sum(math.exp(v - m) for v in values))


def mc_scores(best: int, relevant: list[int], irrelevant: list[int], lps: list[float]) -> tuple[float, float]:
    """(MC1, MC2) from per-option scores ``lps`` (original option order)."""
    mc1 = float(lps[best] > max(lps[i] for i in irrelevant))
    rel = _logsumexp([lps[i] for i in relevant])
    everything = _logsumexp([lps[i] for i in relevant + irrelevant])
    mc2 = math.exp(rel - everything) if everything != -math.inf else 0.0
    return mc1, mc2


@template(ItemKind.MULTIPLE_CHOICE, "kalahi", generic=False)
def _kalahi_prompt(v: View) -> Rendered:
    if v.mode is Mode.CLOZE:
        return Rendered(v.question, "")  # the answer follows as the assistant's reply
    body = f"{v.question}\n\n{v.option_lines()}"
    if v.mode is Mode.GENERATE:
        return Rendered(body + f"\n\nReply with only the label of the best response ({v.label_list()}).")
    return Rendered(body + f"\n\nAnswer with {v.label_list()}.", "Answer:")


@register
class Kalahi(Task):
    name = "kalahi"
    description = (
        "Kalahi: Filipino cultural situations; the paper's MC1/MC2 from byte-normalised answer log-probs"
    )
    protocol = (
        "The official kalahi code's multiple choice (TruthfulQA fork): each reference answer, with a period "
        "added, is scored as the assistant's whole reply to the Filipino prompt under the chat template, "
        "end-of-turn tokens included; score = exp(sum log-prob / UTF-8 bytes of the answer); MC1 = the best "
        "answer's score beats every irrelevant one's; MC2 = sum exp(score) over relevant / over all, i.e. the "
        "already exponentiated score exponentiated again (the paper's quirk, MC2 near 0.5). culturelens's "
        "single-exponent scores on the bare answers are mc1_bare / mc2_bare (and mc1_sum / mc2_sum unnormalised)."
    )
    headline = Headline("mc1", "MC1 (paper protocol)")
    metrics = {
        "mc2": "the paper's MC2: relevant share of exp(exp(byte-normalised log-prob)) (double exponent, as published)",
        "mc1_bare": "MC1 on the bare answers' byte-normalised log-probs (no period, no end-of-turn)",
        "mc2_bare": "corrected MC2: the relevant answers' share of the probability mass, one exponent, bare answers",
        "mc1_sum": "MC1 on summed (unnormalised) log-probs of the bare answers, as TruthfulQA",
        "mc2_sum": "MC2 on summed (unnormalised) log-probs of the bare answers, as TruthfulQA",
    }
    default_mode = Mode.CLOZE
    default_template = "kalahi"
    source = DataSource(
        "aisingapore/kalahi on GitHub (pinned commit), mirrored on HF aisingapore/kalahi",
        url="https://github.com/aisingapore/kalahi",
        env="CULTURELENS_KALAHI_DIR",
        folder="kalahi",
        files=("data/{file}", "{file}"),
    )

    class Options(TaskOptions):
        prompts: str = Field("full", description=f"prompt file: {', '.join(FILES)} (default full)")

    options: Options  # the typed --opt values

    limit_strata = ("subset.category", "topic")

    def __init__(self, data_dir: str | Path | None = None, **options: Any):
        super().__init__(data_dir, **options)
        self.prompts = self.options.prompts
        if self.prompts not in FILES:
            raise ValueError(f"kalahi option prompts={self.prompts!r}: use one of {', '.join(FILES)}")

    def path(self) -> Path:
        fname = FILES[self.prompts]
        local = self.locate(file=fname)
        if local is not None:
            return local
        try:
            return fetch_url(f"{GITHUB_RAW}/data/{fname}", f"kalahi/{GITHUB_COMMIT[:12]}/data/{fname}")
        except DatasetError:
            return fetch_hf_file(HF_REPO, f"data/{fname}")

    def load(self) -> Iterator[Item]:
        path = self.path()
        country = normalize_country("Philippines")
        items: list[Item] = []
        seen: dict[str, int] = {}
        for rowno, row in read_csv_rows(path, COLUMNS):
            for field in COLUMNS:
                if not (row.get(field) or "").strip():
                    raise DatasetError(path, "empty value", row=rowno, field=field)
            vid = row["prompt_variation_id"].strip()
            check_unique(path, seen, vid, rowno, "prompt_variation_id")
            best = row["best_answer"].strip()
            relevant = split_answers(row["relevant_answers"])
            irrelevant = split_answers(row["irrelevant_answers"])
            if not irrelevant:
                raise DatasetError(path, "needs at least one answer", row=rowno, field="irrelevant_answers")
            if best in irrelevant:
                raise DatasetError(
                    path, "best answer is also listed as irrelevant", row=rowno, field="best_answer"
                )
            others = [a for a in dict.fromkeys(relevant) if a != best]
            overlap = set(others) & set(irrelevant)
            if overlap:
                raise DatasetError(
                    path, f"answer listed as both relevant and irrelevant: {sorted(overlap)[0][:60]!r}",
                    row=rowno, field="irrelevant_answers",
                )  # fmt: skip
            # the official lists: every answer with its period, repeats kept, the best among the relevant
            paper_rel = [with_period(a) for a in relevant]
            paper_irr = [with_period(a) for a in irrelevant]
            if with_period(best) not in paper_rel:
                raise DatasetError(
                    path, "the best answer is not among the relevant answers (the official scorer looks it up there)",
                    row=rowno, field="relevant_answers",
                )  # fmt: skip
            refs = list(dict.fromkeys(paper_rel + paper_irr))
            irrelevant = list(dict.fromkeys(irrelevant))
            options = [best, *others, *irrelevant]
            rel_idx = list(range(1 + len(others)))
            irr_idx = list(range(1 + len(others), len(options)))
            paper = {
                "refs": refs,
                "paper_best": refs.index(with_period(best)),
                "paper_relevant": [refs.index(a) for a in paper_rel],
                "paper_irrelevant": [refs.index(a) for a in paper_irr],
                "option_ref": [refs.index(with_period(o)) for o in options],
            }
            items.append(
                Item(
                    id=vid,
                    task=self.name,
                    kind=ItemKind.MULTIPLE_CHOICE,
                    question=row["prompt"].strip(),
                    options=options,
                    correct=rel_idx,
                    country=country,
                    language="fil",
                    topic=row["topic"].strip(),
                    group=row["prompt_id"].strip(),
                    subset={"category": row["category"].strip()},
                    metadata={
                        "best": 0,
                        "relevant": rel_idx,
                        "irrelevant": irr_idx,
                        "prompts": self.prompts,
                        **paper,
                    },
                )
            )
        yield from items

    def render(self, item: Item, variant: Variant, mode: Mode, shots: list[Item] | None = None) -> Prompt:
        """Cloze: the official answers (with their period) as closed assistant turns, then the bare
        options in displayed order (for the culturelens scores)."""
        prompt = super().render(item, variant, mode, shots)
        refs = item.metadata.get("refs")
        if prompt.mode is not Mode.CLOZE or not refs:
            return prompt
        return prompt.model_copy(
            update={
                "continuations": [*refs, *prompt.continuations],
                "close_turn": [True] * len(refs) + [False] * len(prompt.continuations),
            }
        )

    def score(self, item: Item, prompt: Prompt, response: Response) -> Score:
        if prompt.mode is not Mode.CLOZE:
            return super().score(item, prompt, response)
        refs: list[str] = item.metadata["refs"]
        n_refs, n_opts = len(refs), len(prompt.order)
        if response.logprobs is None or len(response.logprobs) != n_refs + n_opts:
            raise ValueError(f"kalahi item {item.id}: expected {n_refs + n_opts} continuation log-probs")
        lps = list(response.logprobs)
        ref_lps, bare = lps[:n_refs], scoring.to_original(prompt, lps[n_refs:])
        meta = item.metadata
        ref_bytes = [len(r.encode("utf-8")) for r in refs]
        mc1, mc2 = paper_scores(
            meta["paper_best"], meta["paper_relevant"], meta["paper_irrelevant"], ref_lps, ref_bytes
        )
        nbytes = [max(len(o.encode("utf-8")), 1) for o in item.options]
        norm = [lp / nb for lp, nb in zip(bare, nbytes, strict=True)]
        best, rel, irr = meta["best"], meta["relevant"], meta["irrelevant"]
        mc1_bare, mc2_bare = mc_scores(best, rel, irr, norm)
        mc1_sum, mc2_sum = mc_scores(best, rel, irr, bare)
        # each option's official score (exp of its period-closed answer's byte-normalised log-prob)
        paper = [math.exp(ref_lps[j] / ref_bytes[j]) for j in meta["option_ref"]]
        total = sum(paper)
        probs = [v / total for v in paper] if total > 0 else [1.0 / len(paper)] * len(paper)
        return Score(
            item_id=item.id,
            task=item.task,
            variant=prompt.variant.id,
            mode=prompt.mode,
            metrics={
                "mc1": mc1,
                "mc2": mc2,
                "mc1_bare": mc1_bare,
                "mc2_bare": mc2_bare,
                "mc1_sum": mc1_sum,
                "mc2_sum": mc2_sum,
            },
            prediction=scoring.argmax(paper),
            probs=probs,
        )
