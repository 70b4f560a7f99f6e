"""Training data from a finished run: preference pairs, supervised examples and a leak-free split.

Everything here reads the run only through :func:`culturelens.runlog.read_run` (the samples hold the
exact prompt the model saw, the item snapshot holds the gold answers), so data is built from a run
made on another machine without its dataset.

* **Preference pairs** (DPO / ORPO): one per scored multiple-choice or label sample of the source
  variant. ``prompt`` is the formatted prompt the model was asked; ``chosen`` is the gold answer in
  the format that prompt asks for (letter mode: the label and the option text, ``" B. Tagine"``;
  generation: the label alone; cloze: the option text as the model continued it); ``rejected`` is the
  model's own answer when it was wrong, or its most probable wrong option when it was right (the
  successes keep the data balanced, ``success_ratio`` of them per failure). Short-answer samples give
  a pair when the model's reply was wrong: chosen = the first gold text, rejected = the reply.
* **Supervised examples** (SFT): the gold answer in the same format, followed by the item's rationale
  when the dataset gives one (``metadata.rationale``, the starter suite), or the native gold text of a
  short-answer item (BLEnD annotations).
* **Position balance**: pairs are built over several presentations of each item (by default every
  variant of the run that differs from the training variant only in its option order), and each item's
  pair is the presentation and wrong option that keep the displayed positions of the chosen and of the
  rejected answers closest to uniform (:func:`balance_pairs`). A model tuned on pairs built under one
  presentation learns where the gold answers sit (the base model's own wrong answers sit where its
  position bias puts them), not which answer is right. The histograms go into the card and
  ``positions.json``.
* **The split** is made on item groups (an item and every row sharing its ``group`` travel together),
  stratified by country, so no test item is ever trained on; with ``holdout_countries`` whole countries
  go to a second test set that no training row comes from.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturelens.render import label_set
from culturelens.runlog import RunLog, Sample
from culturelens.schema import Item

#: split names: training rows, held-out items of the training countries, held-out countries
TRAIN, TEST, HELDOUT = "train", "test", "heldout_country"
SPLITS = (TRAIN, TEST, HELDOUT)


class ImproveDataError(ValueError):
    """The run cannot give training data (one line: which run, task or field, and why)."""


@dataclass
class Split:
    """Which split every item of a task is in, and why (the rule is written into the dataset card)."""

    task: str
    assign: dict[str, str]  # item id -> split
    heldout_countries: list[str]
    test_fraction: float
    seed: int
    rule: str = ""
    country_of: dict[str, str] = field(default_factory=dict)  # item id -> country

    def ids(self, split: str) -> set[str]:
        return {i for i, s in self.assign.items() if s == split}

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "rule": self.rule,
            "test_fraction": self.test_fraction,
            "seed": self.seed,
            "heldout_countries": self.heldout_countries,
            "items": dict(sorted(self.assign.items())),
        }


@dataclass
class Dataset:
    """Pairs and supervised examples of one task, each tagged with its split."""

    task: str
    source_run: str
    variant: str
    split: Split
    pairs: list[dict[str, Any]] = field(default_factory=list)
    sft: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    presentations: list[str] = field(default_factory=list)  # the variants pairs were built from

    def rows(self, kind: str, split: str) -> list[dict[str, Any]]:
        return [r for r in (self.pairs if kind == "pairs" else self.sft) if r["split"] == split]

    def positions(self) -> dict[str, dict[str, dict[str, int]]]:
        """Split -> {chosen, rejected, sft} -> displayed position (1-based) -> rows."""
        return {sp: position_histograms(self.rows("pairs", sp), self.rows("sft", sp)) for sp in SPLITS}


def position_histograms(
    pairs: Iterable[Mapping[str, Any]], sft: Iterable[Mapping[str, Any]] = ()
) -> dict[str, dict[str, int]]:
    """Displayed positions (1-based) of the chosen and rejected answers of ``pairs`` and of the answers
    of ``sft`` (rows without a position, e.g. a free-text rejected reply, are left out)."""
    out: dict[str, Counter[int]] = {"chosen": Counter(), "rejected": Counter(), "sft": Counter()}
    for p in pairs:
        for key in ("chosen", "rejected"):
            pos = p.get(f"{key}_pos")
            if isinstance(pos, int):
                out[key][pos] += 1
    for r in sft:
        pos = r.get("chosen_pos")
        if isinstance(pos, int):
            out["sft"][pos] += 1
    return {k: {str(p + 1): c[p] for p in sorted(c)} for k, c in out.items()}


def imbalance(hist: Mapping[str, int], positions: int | None = None) -> float | None:
    """max / min count over displayed positions 1..``positions`` (default: the highest one seen);
    inf when a position is never used, None when the histogram is empty."""
    if not hist or not sum(hist.values()):
        return None
    k = positions or max(int(p) for p in hist)
    counts = [hist.get(str(p), 0) for p in range(1, k + 1)]
    return float("inf") if min(counts) == 0 else max(counts) / min(counts)


def _stable_key(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()


def _country(item: Item) -> str:
    return item.country.name if item.country else "(none)"


def make_split(
    task: str,
    items: Mapping[str, Item],
    test_fraction: float = 0.3,
    holdout_countries: int | Sequence[str] = 0,
    seed: int = 0,
) -> Split:
    """Assign every item to train / test / heldout_country, by item group and by country.

    ``holdout_countries``: a number of countries drawn with ``seed`` (among countries with at least two
    groups), or their names. Every group with an item in a held-out country goes to ``heldout_country``.
    The other groups are shuffled per country (seeded, stable under reordering of the items) and the
    first ``round(test_fraction * n)`` of each country go to ``test`` (at least one when the country has
    two groups or more, none when it has one)."""
    if not 0.0 < test_fraction < 1.0:
        raise ImproveDataError(f"test fraction {test_fraction}: give a number between 0 and 1")
    groups: dict[str, list[Item]] = defaultdict(list)
    for it in items.values():
        groups[it.group or it.id].append(it)
    countries_of = {g: sorted({_country(it) for it in its}) for g, its in groups.items()}
    per_country: dict[str, list[str]] = defaultdict(list)
    for g, cs in countries_of.items():
        per_country[cs[0]].append(g)
    present = sorted({c for cs in countries_of.values() for c in cs})
    if isinstance(holdout_countries, int):
        if holdout_countries < 0:
            raise ImproveDataError(f"holdout countries {holdout_countries}: give 0 or more")
        eligible = sorted(
            (c for c in present if c != "(none)" and len(per_country.get(c, [])) >= 2),
            key=lambda c: _stable_key(seed, "country:" + c),
        )
        if holdout_countries > max(0, len(eligible) - 1):
            raise ImproveDataError(
                f"holdout countries {holdout_countries}: task {task} has {len(eligible)} countries with two "
                "items or more; hold out fewer so some are left to train on"
            )
        held = sorted(eligible[:holdout_countries])
    else:
        from culturelens.countries import UnknownCountryError, normalize_country

        held = []
        for name in holdout_countries:
            try:
                canon = normalize_country(name).name
            except UnknownCountryError as exc:
                raise ImproveDataError(f"holdout country {name!r}: {exc}") from None
            if canon not in present:
                raise ImproveDataError(
                    f"holdout country {name!r}: task {task} has no item from it in this run"
                )
            held.append(canon)
        held = sorted(set(held))
    assign: dict[str, str] = {}
    held_set = set(held)
    for country in sorted(per_country):
        gs = sorted(per_country[country], key=lambda g: _stable_key(seed, "group:" + g))
        rest = [g for g in gs if not held_set.intersection(countries_of[g])]
        for g in gs:
            if held_set.intersection(countries_of[g]):
                for it in groups[g]:
                    assign[it.id] = HELDOUT
        k = round(test_fraction * len(rest))
        k = min(max(k, 1), len(rest) - 1) if len(rest) >= 2 else 0
        for i, g in enumerate(rest):
            for it in groups[g]:
                assign[it.id] = TEST if i < k else TRAIN
    rule = (
        f"items are grouped by their `group` (else their id); a group goes whole to one split. "
        f"Held-out countries ({', '.join(held) or 'none'}) go to `{HELDOUT}`. In every other country the "
        f"groups are ordered by SHA-256(seed={seed}, group) and the first round({test_fraction} x n) go to "
        f"`{TEST}` (at least 1 of n >= 2, none of n = 1), the rest to `{TRAIN}`."
    )
    country_of = {it.id: _country(it) for it in items.values()}
    return Split(task, assign, held, test_fraction, seed, rule, country_of)


def _labels(sample: Sample, log: RunLog) -> list[str]:
    """The labels the prompt showed, in displayed order ([] when the options were unlabelled)."""
    if sample.mode.value == "letter":
        return list(sample.targets)
    style = "letters"
    for v in log.variants:
        if v.id == sample.variant:
            style = v.labels
    try:
        return label_set(style, len(sample.order or sample.options))
    except ValueError:
        return []


def answer_text(sample: Sample, log: RunLog, original: int) -> str | None:
    """Option ``original`` (an index into the item's options) written as the prompt asks for it."""
    order = sample.order or list(range(len(sample.options)))
    if original not in order:
        return None
    pos = order.index(original)
    mode = sample.mode.value
    if mode == "cloze":
        return sample.targets[pos] if pos < len(sample.targets) else None
    labels = _labels(sample, log)
    text = sample.options[original] if original < len(sample.options) else ""
    if not labels:
        return f" {text}"
    if mode == "generate":
        return labels[pos]
    return f" {labels[pos]}. {text}" if text and text != labels[pos] else f" {labels[pos]}"


def _sft_completion(chosen: str, item: Item | None) -> str:
    rationale = (item.metadata or {}).get("rationale") if item is not None else None
    if isinstance(rationale, str) and rationale.strip():
        return f"{chosen}\n{rationale.strip()}"
    return chosen


#: which variants of the run pairs are built from (``presentations=``): ``orders``, the training
#: variant and every variant that differs from it only in option order; ``one``, the training variant
#: alone (no position balance across presentations); ``all``, every variant of the task
PRESENTATIONS = ("orders", "one", "all")
_KIND_RANK = {"failure": 0, "success": 1, "contrast": 2}


def presentation_ids(log: RunLog, task: str, variant: str, presentations: str | Sequence[str]) -> list[str]:
    """The variants of ``task`` that pairs are built from, the training ``variant`` first."""
    have = list(log.task_variants(task))
    if not isinstance(presentations, str):
        ids = list(dict.fromkeys(presentations))
        missing = [v for v in ids if v not in have]
        if missing or not ids:
            raise ImproveDataError(
                f"{log.dir}: task {task} has no variant {', '.join(missing) or '(none given)'} "
                f"(variants: {', '.join(have)})"
            )
        return ids
    if presentations == "one":
        return [variant]
    if presentations == "all":
        return [variant, *(v for v in have if v != variant)]
    if presentations != "orders":
        raise ImproveDataError(
            f"presentations {presentations!r}: choose from {', '.join(PRESENTATIONS)} or name variants"
        )
    by_id = {v.id: v for v in log.variants}
    base = by_id.get(variant)
    if base is None:
        return [variant]

    def shown(v: Any) -> Any:
        return v.model_copy(update={"option_order": "identity"})

    return [variant, *(v for v in have if v != variant and v in by_id and shown(by_id[v]) == shown(base))]


def build_dataset(
    log: RunLog,
    task: str | None = None,
    variant: str | None = None,
    test_fraction: float = 0.3,
    holdout_countries: int | Sequence[str] = 0,
    success_ratio: float = 1.0,
    seed: int = 0,
    presentations: str | Sequence[str] = "orders",
    pairs_per_item: int = 1,
    balance: bool = True,
) -> Dataset:
    """Pairs and supervised examples of ``task`` (default: the run's only task) built over the
    ``presentations`` of the training ``variant`` (default: the run's primary variant; see
    :data:`PRESENTATIONS`), position-balanced by :func:`balance_pairs`, split by :func:`make_split`.

    Every item the model got wrong under at least one presentation gives ``pairs_per_item`` pairs; of
    the items it got right under all of them, ``success_ratio`` per such failure item are kept (seeded).
    ``balance=False`` ignores positions: the model's own wrong answer, else its most probable wrong
    option, under the first presentation that has one (with ``presentations="one"``, the pairs of a
    single presentation as they were built before position balancing)."""
    if not log.complete:
        raise ImproveDataError(
            f"{log.dir}: the run is not complete (status: {log.status and log.status.status})"
        )
    names = log.task_names
    if task is None:
        if len(names) != 1:
            raise ImproveDataError(f"{log.dir}: the run has tasks {', '.join(names)}; name one with --task")
        task = names[0]
    if task not in names:
        raise ImproveDataError(f"{log.dir}: no task {task!r} in this run (tasks: {', '.join(names)})")
    vid = variant or log.primary_variant.id
    if vid not in log.task_variants(task):
        raise ImproveDataError(
            f"{log.dir}: task {task} has no variant {vid!r} (variants: {', '.join(log.task_variants(task))})"
        )
    if success_ratio < 0:
        raise ImproveDataError(f"success ratio {success_ratio}: give 0 or more")
    if pairs_per_item < 1:
        raise ImproveDataError(f"pairs per item {pairs_per_item}: give 1 or more")
    shown = presentation_ids(log, task, vid, presentations)
    items = log.items(task)
    if not items:
        raise ImproveDataError(f"{log.dir}: no item snapshot for task {task}")
    split = make_split(task, items, test_fraction, holdout_countries, seed)
    ds = Dataset(task=task, source_run=str(log.dir), variant=vid, split=split, presentations=shown)
    rank = {v: i for i, v in enumerate(shown)}
    cands: dict[str, list[dict[str, Any]]] = defaultdict(list)
    sfts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in log.iter_samples(task):
        if s.variant not in rank:
            continue
        item = items.get(s.item_id)
        row_split = split.assign.get(s.item_id)
        if item is None or row_split is None:
            ds.skipped["item not in the snapshot"] += 1
            continue
        base = {
            "task": task,
            "item_id": s.item_id,
            "group": s.group or s.item_id,
            "country": s.country or "(none)",
            "region": s.region,
            "topic": s.topic,
            "variant": s.variant,
            "mode": s.mode.value,
            "split": row_split,
            "prompt": s.prompt,
        }
        made = _candidates(s, item, log, base)
        if made is None:
            ds.skipped["no gold answer in a trainable form"] += 1
            continue
        pairs, sft = made
        if sft is not None:
            sfts[s.item_id].append(sft)
        cands[s.item_id].extend(pairs)
    rng = random.Random(seed)
    for name in SPLITS:
        ids = sorted(i for i in cands if split.assign[i] == name and cands[i])
        failed = [i for i in ids if any(c["kind"] == "failure" for c in cands[i])]
        right = [i for i in ids if i not in set(failed)]
        rng.shuffle(right)
        chosen_items = failed + right[: round(success_ratio * len(failed))]
        # the most constrained items first (fewest displayed positions their gold answer can take)
        chosen_items.sort(
            key=lambda i: (len({c.get("chosen_pos") for c in cands[i]}), _stable_key(seed, "item:" + i))
        )
        ds.pairs.extend(balance_pairs([cands[i] for i in chosen_items], rank, pairs_per_item, seed, balance))
        sft_ids = sorted(
            (i for i in sfts if split.assign[i] == name),
            key=lambda i: (len({c.get("chosen_pos") for c in sfts[i]}), _stable_key(seed, i)),
        )
        ds.sft.extend(balance_sft([sfts[i] for i in sft_ids], rank, pairs_per_item, seed, balance))
    order = {sp: i for i, sp in enumerate(SPLITS)}
    ds.pairs.sort(key=lambda p: (order[p["split"]], p["item_id"], rank[p["variant"]]))
    ds.sft.sort(key=lambda p: (order[p["split"]], p["item_id"], rank[p["variant"]]))
    if not any(p["split"] == TRAIN for p in ds.pairs) and not any(r["split"] == TRAIN for r in ds.sft):
        raise ImproveDataError(
            f"{log.dir}: task {task} gives no training example (multiple-choice, label or short-answer "
            "items with a gold answer are needed)"
        )
    return ds


def balance_pairs(
    per_item: Sequence[Sequence[dict[str, Any]]],
    rank: Mapping[str, int],
    k: int = 1,
    seed: int = 0,
    balance: bool = True,
) -> list[dict[str, Any]]:
    """``k`` pairs per item (each from another presentation), picked greedily, item after item (the
    caller puts the most constrained first): the
    candidate whose chosen position plus rejected position have been used least so far; ties go to the
    model's own wrong answer (``failure``), then a wrong option of a presentation it got right
    (``success``), then another wrong option (``contrast``); then the more probable wrong option, then
    the training presentation, then a seeded hash."""
    chosen: Counter[int] = Counter()
    rejected: Counter[int] = Counter()
    picked: list[dict[str, Any]] = []
    used: dict[int, set[str]] = defaultdict(set)
    for _ in range(k):
        for n, cands in enumerate(per_item):
            free = [c for c in cands if c["variant"] not in used[n]]
            if not free:
                continue
            mean_rej = sum(rejected.values()) / max(1, len(rejected))
            costs = [_pair_cost(c, chosen, rejected, mean_rej, rank, seed, balance) for c in free]
            best = free[costs.index(min(costs))]
            used[n].add(best["variant"])
            if isinstance(best.get("chosen_pos"), int):
                chosen[best["chosen_pos"]] += 1
            if isinstance(best.get("rejected_pos"), int):
                rejected[best["rejected_pos"]] += 1
            picked.append({k2: v for k2, v in best.items() if not k2.startswith("_")})
    return picked


def _pair_cost(
    c: Mapping[str, Any],
    chosen: Counter[int],
    rejected: Counter[int],
    mean_rej: float,
    rank: Mapping[str, int],
    seed: int,
    balance: bool = True,
) -> tuple[float, int, float, int, str]:
    cp, rp = c.get("chosen_pos"), c.get("rejected_pos")
    # squares: the histogram further from uniform weighs more, so neither drifts while the other fills
    load = (chosen[cp] if isinstance(cp, int) else 0) ** 2 + (
        rejected[rp] if isinstance(rp, int) else mean_rej
    ) ** 2
    if not balance:
        load = 0.0
    return (
        load,
        _KIND_RANK[c["kind"]],
        -float(c.get("_p_rejected") or 0.0),
        rank.get(c["variant"], 0),
        _stable_key(seed, f"{c['item_id']}|{c['variant']}|{c['rejected']}"),
    )


def balance_sft(
    per_item: Sequence[Sequence[dict[str, Any]]],
    rank: Mapping[str, int],
    k: int = 1,
    seed: int = 0,
    balance: bool = True,
) -> list[dict[str, Any]]:
    """``k`` supervised examples per item, each from the presentation whose gold position has been
    used least so far (ties: the training presentation, then a seeded hash)."""
    hist: Counter[int] = Counter()
    out: list[dict[str, Any]] = []
    used: dict[int, set[str]] = defaultdict(set)
    for _ in range(k):
        for n, cands in enumerate(per_item):
            free = [c for c in cands if c["variant"] not in used[n]]
            if not free:
                continue
            best = min(
                free,
                key=lambda c: (
                    hist[c["chosen_pos"]] if balance and isinstance(c.get("chosen_pos"), int) else 0,
                    rank.get(c["variant"], 0),
                    _stable_key(seed, f"{c['item_id']}|{c['variant']}"),
                ),
            )
            used[n].add(best["variant"])
            if isinstance(best.get("chosen_pos"), int):
                hist[best["chosen_pos"]] += 1
            out.append(best)
    return out


def _candidates(
    s: Sample, item: Item, log: RunLog, base: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None] | None:
    """Every pair one sample can give (the gold answer against each wrong option it shows) and its
    supervised example; None when the sample has no gold answer in a trainable form."""
    gold = s.gold
    if not (isinstance(gold, list) and gold and all(isinstance(g, int) for g in gold) and s.options):
        made = _from_sample(s, item, log, base)  # short answers: no displayed positions
        if made is None:
            return None
        pair, sft = made
        return ([pair] if pair is not None else []), sft
    gold_set = set(gold)
    chosen = answer_text(s, log, gold[0])
    if chosen is None:
        return None
    order = s.order or list(range(len(s.options)))
    cpos = order.index(gold[0])
    sft = {**base, "completion": _sft_completion(chosen, item), "answer": chosen, "chosen_pos": cpos}
    correct = bool(s.metrics.get("acc", 0.0)) and s.prediction in gold_set
    probs = s.probs or []
    out: list[dict[str, Any]] = []
    pred = s.prediction if isinstance(s.prediction, int) and s.prediction not in gold_set else None
    if not correct and pred is None:
        text = (s.response or {}).get("text")  # an unreadable generation: its reply is what it said
        if isinstance(text, str) and text.strip():
            out.append(
                {
                    **base,
                    "chosen": chosen,
                    "rejected": text,
                    "kind": "failure",
                    "chosen_pos": cpos,
                    "rejected_pos": None,
                }
            )
    for w in order:
        if w in gold_set:
            continue
        rejected = answer_text(s, log, w)
        if rejected is None or rejected == chosen:
            continue
        kind = "success" if correct else ("failure" if w == pred else "contrast")
        out.append(
            {
                **base,
                "chosen": chosen,
                "rejected": rejected,
                "kind": kind,
                "chosen_pos": cpos,
                "rejected_pos": order.index(w),
                "_p_rejected": probs[w] if w < len(probs) else 0.0,
            }
        )
    return out, sft


def _from_sample(
    s: Sample, item: Item, log: RunLog, base: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None] | None:
    """A short-answer sample: (pair when the reply was wrong, supervised example)."""
    # short answers: gold texts as the snapshot holds them
    texts = [t for a in item.answers for t in a.texts if t.strip()]
    if not texts:
        return None
    chosen = " " + texts[0] if s.mode.value != "generate" else texts[0]
    sft = {**base, "completion": chosen, "answer": chosen}
    reply = (s.response or {}).get("text")
    if s.metrics.get("acc") == 0.0 and isinstance(reply, str) and reply.strip():
        return {**base, "chosen": chosen, "rejected": reply.strip(), "kind": "failure"}, sft
    return None, sft


# --- writing ----------------------------------------------------------------------------------------
def _jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    return n


def counts(ds: Dataset) -> dict[str, Any]:
    """Rows per split and per country and split (pairs by kind, supervised examples, items)."""
    per: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for p in ds.pairs:
        per[p["country"]][p["split"]][f"pairs_{p['kind']}"] += 1
    for r in ds.sft:
        per[r["country"]][r["split"]]["sft"] += 1
    items_per: dict[str, Counter[str]] = defaultdict(Counter)
    for item_id, sp in ds.split.assign.items():
        items_per[ds.split.country_of.get(item_id, "(none)")][sp] += 1
    totals = {
        sp: {
            "items": len(ds.split.ids(sp)),
            "pairs": sum(1 for p in ds.pairs if p["split"] == sp),
            "pairs_failure": sum(1 for p in ds.pairs if p["split"] == sp and p["kind"] == "failure"),
            "sft": sum(1 for r in ds.sft if r["split"] == sp),
        }
        for sp in SPLITS
    }
    return {
        "totals": totals,
        "presentations": list(ds.presentations),
        "positions": ds.positions(),
        "kinds": {sp: dict(Counter(p["kind"] for p in ds.rows("pairs", sp))) for sp in SPLITS},
        "countries": {
            c: {sp: {"items": items_per[c][sp], **dict(per[c][sp])} for sp in SPLITS if items_per[c][sp]}
            for c in sorted(set(per) | set(items_per))
        },
    }


def write_dataset(ds: Dataset, out: Path) -> dict[str, Any]:
    """``pairs.jsonl``, ``sft.jsonl``, ``split.json`` and a dataset card ``README.md`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    _jsonl(out / "pairs.jsonl", ds.pairs)
    _jsonl(out / "sft.jsonl", ds.sft)
    (out / "split.json").write_text(json.dumps(ds.split.to_json(), indent=1), encoding="utf-8")
    c = counts(ds)
    (out / "positions.json").write_text(
        json.dumps({"presentations": c["presentations"], "splits": c["positions"]}, indent=1),
        encoding="utf-8",
    )
    (out / "README.md").write_text(dataset_card(ds, c), encoding="utf-8")
    return c


def dataset_card(ds: Dataset, c: Mapping[str, Any]) -> str:
    t = c["totals"]
    lines = [
        f"# culturelens improve data: {ds.task}",
        "",
        f"Built from the run `{ds.source_run}` (variant `{ds.variant}`) by `culturelens improve`.",
        "",
        "## Files",
        "",
        "- `pairs.jsonl`: preference pairs (`prompt`, `chosen`, `rejected`, `kind` = failure | success, "
        "`split`, `item_id`, `group`, `country`). `chosen` is the gold answer in the format the prompt asks "
        "for; `rejected` is the model's own wrong answer (failures) or its most probable wrong option "
        "(successes, kept for balance).",
        "- `sft.jsonl`: supervised examples (`prompt`, `completion` = the gold answer, then the item's "
        "rationale or native gold text when the dataset has one).",
        "- `split.json`: the split of every item and the rule below.",
        "- `positions.json`: the displayed positions of the chosen and rejected answers, per split.",
        "",
        "## Split rule",
        "",
        ds.split.rule,
        "",
        "Only `train` rows are trained on. `test` holds unseen items of the training countries, "
        f"`{HELDOUT}` unseen countries.",
        "",
        "| split | items | pairs | of which failures | sft |",
        "|---|---|---|---|---|",
    ]
    for sp in SPLITS:
        lines.append(
            f"| {sp} | {t[sp]['items']} | {t[sp]['pairs']} | {t[sp]['pairs_failure']} | {t[sp]['sft']} |"
        )
    lines += ["", "## Per country", "", "| country | split | items | failure pairs | success pairs | sft |"]
    lines.append("|---|---|---|---|---|---|")
    for country, splits in c["countries"].items():
        for sp, row in splits.items():
            lines.append(
                f"| {country} | {sp} | {row.get('items', 0)} | {row.get('pairs_failure', 0)} | "
                f"{row.get('pairs_success', 0)} | {row.get('sft', 0)} |"
            )
    lines += ["", "## Presentations and answer positions", ""]
    lines.append(
        f"Pairs are built over {len(ds.presentations)} presentation(s): "
        + ", ".join(f"`{v}`" for v in ds.presentations)
        + ". Each item's pair is the presentation and wrong option that keep the displayed positions of the "
        "chosen and rejected answers closest to uniform (ties: the model's own wrong answer first). Kinds: "
        "`failure` = the model's own wrong answer under that presentation, `success` = a wrong option of a "
        "presentation it got right, `contrast` = another wrong option of a presentation it got wrong."
    )
    pos = c["positions"]
    width = max((int(p) for sp in SPLITS for h in pos[sp].values() for p in h), default=0)
    if width:
        cols = [str(p) for p in range(1, width + 1)]
        lines += ["", "| split | answers | " + " | ".join(f"pos {p}" for p in cols) + " | max/min |"]
        lines.append("|---|---|" + "---|" * len(cols) + "---|")
        for sp in SPLITS:
            for key in ("chosen", "rejected", "sft"):
                h = pos[sp][key]
                if not h:
                    continue
                r = imbalance(h, width)
                ratio = "–" if r is None else ("∞" if r == float("inf") else f"{r:.2f}")
                lines.append(
                    f"| {sp} | {key} | " + " | ".join(str(h.get(p, 0)) for p in cols) + f" | {ratio} |"
                )
        kinds = c["kinds"][TRAIN]
        lines += [
            "",
            "Training pairs by kind: " + (", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"),
        ]
    if ds.skipped:
        lines += ["", "Samples left out: " + "; ".join(f"{why} ({n})" for why, n in ds.skipped.items())]
    lines += [
        "",
        "## Caveats",
        "",
        "The gold answers are the dataset's; for the starter suite they were written by the project, not "
        "validated by people from each country. A model trained on these pairs has seen the presentations "
        "above (option orders; the label style of the training variant); `improve.json` says whether its "
        "gain holds under the others. Items with fewer options cannot fill the last positions, so a "
        "histogram can be uneven there.",
        "",
    ]
    return "\n".join(lines)
