"""Kalahi (Montalan et al., 2024): culturally specific situations Filipinos face, in Filipino.

Multiple-choice protocol of the release README (forked from TruthfulQA): the log-probability of
each reference answer as the assistant's reply to the prompt under the chat template, divided by
the answer's length in UTF-8 bytes.

* ``mc1`` = 1 if the best answer's normalised log-prob is strictly higher than every irrelevant
  answer's (TruthfulQA ``MC_calcs``: ``scores_true[0] > max(scores_false)``).
* ``mc2`` = ``sum(exp(s) for relevant) / sum(exp(s) for relevant + irrelevant)`` with ``s`` the
  byte-normalised log-probs; the relevant set includes the best answer. TruthfulQA's MC2 is the
  same formula on *unnormalised* summed log-probs; Kalahi normalises by bytes (hence its
  near-0.5 MC2 for every model). We also report ``mc1_sum`` / ``mc2_sum`` on summed log-probs for
  comparison with TruthfulQA.

Each row becomes one multiple-choice item whose options are ``[best, *other relevant,
*irrelevant]`` (the release lists the best answer again as the first relevant one; it is kept
once); ``metadata`` records which option indices are best / relevant / irrelevant and ``correct``
lists the relevant ones. The default mode is cloze: each option is a continuation and
``response.logprobs`` come back in displayed order, mapped to options through ``prompt.order``.
In letter/generate mode the generic scorer applies (``acc`` = a relevant option was chosen).

Prompt: the ``prompt`` field is the whole user turn (no instruction is added), as the
release's prompts are complete requests for advice. Task option ``prompts``: ``full`` (default,
``data/filipino.csv``), ``partially_enriched`` or ``unenriched``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from culturelens import scoring
from culturelens.countries import normalize_country
from culturelens.download import fetch_hf_file, fetch_url
from culturelens.render import Rendered, View, template
from culturelens.schema import Item, ItemKind, Mode, Prompt, Response, Score
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
    description = "Kalahi: Filipino cultural situations; MC1/MC2 on byte-normalised answer log-probs"
    protocol = (
        "The release README's TruthfulQA-style multiple choice: the log-probability of each reference answer "
        "as the assistant's reply to the Filipino prompt (the whole user turn), divided by its length in "
        "UTF-8 bytes; MC1 = the best answer beats every irrelevant one, MC2 = the relevant answers' share "
        "of the probability mass."
    )
    headline = Headline("mc1", "MC1 accuracy")
    metrics = {
        "mc2": "the relevant answers' share of the probability mass (byte-normalised log-probs)",
        "mc1_sum": "MC1 on summed (unnormalised) log-probs, as TruthfulQA",
        "mc2_sum": "MC2 on summed (unnormalised) log-probs, as TruthfulQA",
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
            irrelevant = list(dict.fromkeys(irrelevant))
            options = [best, *others, *irrelevant]
            rel_idx = list(range(1 + len(others)))
            irr_idx = list(range(1 + len(others), len(options)))
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
                    metadata={"best": 0, "relevant": rel_idx, "irrelevant": irr_idx, "prompts": self.prompts},
                )
            )
        yield from items

    def score(self, item: Item, prompt: Prompt, response: Response) -> Score:
        if prompt.mode is not Mode.CLOZE:
            return super().score(item, prompt, response)
        if response.logprobs is None or len(response.logprobs) != len(prompt.order):
            raise ValueError(f"kalahi item {item.id}: expected {len(prompt.order)} continuation log-probs")
        raw = scoring.to_original(prompt, list(response.logprobs))
        nbytes = [max(len(o.encode("utf-8")), 1) for o in item.options]
        norm = [lp / nb for lp, nb in zip(raw, nbytes, strict=True)]
        best, rel, irr = item.metadata["best"], item.metadata["relevant"], item.metadata["irrelevant"]
        mc1, mc2 = mc_scores(best, rel, irr, norm)
        mc1_sum, mc2_sum = mc_scores(best, rel, irr, raw)
        probs = scoring.softmax(norm)
        return Score(
            item_id=item.id,
            task=item.task,
            variant=prompt.variant.id,
            mode=prompt.mode,
            metrics={"mc1": mc1, "mc2": mc2, "mc1_sum": mc1_sum, "mc2_sum": mc2_sum},
            prediction=scoring.argmax(norm),
            probs=probs,
        )
