"""Cross-lingual consistency on BLEnD: does the model give the same answer to a question asked in the
region's language and in English, and where is it more often right in the local language?

An analysis of a finished run (``culturelens crosslingual RUN``): it reads the run only through
:func:`culturelens.runlog.read_run` (the samples' cleaned replies and scores, the item snapshot's
answer clusters), so it needs neither the dataset nor the model. A ``blend`` run already asks every
question of the 14 non-English regions in both languages under each prompt (US and UK have only
English and are left out); the two replies to one (question, prompt) form a pair.

**Agreement rule** (BLEnD's soft match, :func:`culturelens.lemmatize.lemma_match`: an answer
matches a reply when it is a substring of it, or all its lemmatised tokens are among the reply's):

1. each reply is matched against the question's annotator answer clusters as the ``blend`` task
   grades it (the local reply tries each cluster's local-language variants in the local language,
   then its English variants; the English reply tries English variants); when **both** replies match
   some cluster, they agree if they match a **common cluster** (the clusters bridge the languages:
   "injera" and its Amharic spelling are one cluster);
2. otherwise (one or both match no cluster) they agree if one reply soft-matches the other, in the
   local language's lemmatiser or in English's, either way round (e.g. both replies name the same
   dish in Latin script);
3. an empty reply agrees with nothing.

Rule 2 cannot see that two different-script replies outside the annotations translate each other,
so agreement is a lower bound where replies miss the gold; ``decided_by`` counts which rule decided.

Per region (BLEnD's 16 regions; West Java and Assam keep their own local language rather than
pooling with Indonesia and India) and overall: accuracy in the local language and in English and
the agreement rate, each with the project's interval (:func:`culturelens.stats.metric_interval`:
Wilson, Kish-corrected when the two prompts make two pairs per question), and the paired test of
local vs English correctness (:func:`culturelens.compare.compare_group`: McNemar with one pair per
question, e.g. ``--opt prompts=inst-4``, else the clustered sign-flip permutation test; Holm and
Benjamini-Hochberg adjusted over regions). ``local_better`` / ``english_better`` list the regions
whose Holm-adjusted p is below 0.05.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from culturelens.compare import ALPHA, compare_group
from culturelens.lemmatize import lemma_match
from culturelens.runlog import RunLog, RunLogError, Sample, read_run
from culturelens.schema import GoldAnswer, Item
from culturelens.stats import adjust_pvalues, metric_interval

AGREEMENT_RULE = (
    "both replies match an annotator answer cluster: agree iff they match a common cluster; otherwise "
    "agree iff one reply soft-matches the other (BLEnD lemma_match, local or English lemmatiser, either "
    "way round); an empty reply agrees with nothing"
)


def cluster_matches(reply: str, answers: Sequence[GoldAnswer], lang: str) -> set[int]:
    """Indices of every answer cluster a cleaned reply matches, as the ``blend`` task grades it:
    a local-language reply tries the local variants (``lang``) then the English ones, an English
    reply the English ones only."""
    if not reply:
        return set()
    local = lang.split("-")[0].lower() != "en"
    found = set()
    for idx, ans in enumerate(answers):
        tries = [(t, lang) for t in ans.texts] if local else []
        tries += [(t, "en") for t in ans.en_texts]
        if any(text.strip() and lemma_match(text, reply, tl) for text, tl in tries):
            found.add(idx)
    return found


def replies_agree(local: str, english: str, lang: str) -> bool:
    """Rule 2: one reply soft-matches the other, in the local lemmatiser or English's, either way round."""
    if not local or not english:
        return False
    langs = dict.fromkeys((lang, "en"))
    return any(lemma_match(a, b, lg) for lg in langs for a, b in ((english, local), (local, english)))


@dataclass(frozen=True)
class Pair:
    """One question under one prompt, answered in the local language and in English."""

    question: str  # the BLEnD question (the cluster of the paired test)
    prompt: str
    region: str
    country: str
    lang: str
    local_reply: str
    english_reply: str
    local_correct: float
    english_correct: float
    agree: bool
    decided_by: str  # gold | text | empty
    inconsistent: bool  # the stored score and the cluster match disagree (another lemmatiser?)


def _reply(s: Sample) -> str:
    return s.prediction if isinstance(s.prediction, str) else ""


def pairs(log: RunLog, task: str = "blend", variant: str | None = None) -> tuple[list[Pair], str]:
    """The (local, English) pairs of one variant of a BLEnD run (default: its primary one)."""
    if task not in log.task_names:
        raise RunLogError(f"{log.dir}: no {task!r} task in this run (tasks: {', '.join(log.task_names)})")
    variants = list(log.task_variants(task))
    vid = variant or variants[0]
    if vid not in variants:
        raise RunLogError(
            f"{log.dir}: task {task!r} has no variant {vid!r} (variants: {', '.join(variants)})"
        )
    items: dict[str, Item] = log.items(task)
    halves: dict[tuple[str, str], dict[str, Sample]] = defaultdict(dict)
    for s in log.iter_samples(task):
        if s.variant != vid:
            continue
        lv, prompt = s.subset.get("language_variant"), s.subset.get("prompt", "")
        if lv not in ("local", "en") or (s.language == "en" and lv == "local"):
            continue  # US and UK: the local question is the English one
        halves[(s.cluster, prompt)][lv] = s
    out: list[Pair] = []
    for (question, prompt), two in sorted(halves.items()):
        if set(two) != {"local", "en"}:
            continue
        loc, eng = two["local"], two["en"]
        item = items.get(loc.item_id)
        if item is None:
            raise RunLogError(f"{log.dir}: item {loc.item_id!r} is not in the item snapshot")
        lang = item.language
        lr, er = _reply(loc), _reply(eng)
        cl, ce = cluster_matches(lr, item.answers, lang), cluster_matches(er, item.answers, "en")
        if not lr or not er:
            agree, how = False, "empty"
        elif cl and ce:
            agree, how = bool(cl & ce), "gold"
        else:
            agree, how = replies_agree(lr, er, lang), "text"
        lc, ec = float(loc.metrics.get("binary", 0.0)), float(eng.metrics.get("binary", 0.0))
        out.append(
            Pair(
                question=question,
                prompt=prompt,
                region=str(loc.subset.get("region") or loc.country or ""),
                country=loc.country or "",
                lang=lang,
                local_reply=lr,
                english_reply=er,
                local_correct=lc,
                english_correct=ec,
                agree=agree,
                decided_by=how,
                inconsistent=(bool(cl) != (lc > 0.5)) or (bool(ce) != (ec > 0.5)),
            )
        )
    return out, vid


def _interval(values: list[float], clusters: list[str]) -> dict[str, Any]:
    iv = metric_interval(values, clusters)
    out: dict[str, Any] = {"mean": iv.mean, "ci": [iv.low, iv.high], "ci_method": iv.method}
    if iv.n_eff is not None:
        out["n_eff"] = iv.n_eff
    return out


def summarize(ps: Sequence[Pair], seed: int = 0) -> dict[str, Any]:
    """Accuracy per language, agreement and the paired test for one group of pairs."""
    clusters = [p.question for p in ps]
    local = [p.local_correct for p in ps]
    english = [p.english_correct for p in ps]
    test = compare_group(local, english, clusters, n_items=len(set(clusters)), seed=seed)
    both = Counter(
        "both right"
        if p.local_correct and p.english_correct
        else "local only"
        if p.local_correct
        else "English only"
        if p.english_correct
        else "both wrong"
        for p in ps
    )
    return {
        "pairs": len(ps),
        "questions": len(set(clusters)),
        "language": ps[0].lang if len({p.lang for p in ps}) == 1 else "several",
        "local": _interval(local, clusters),
        "english": _interval(english, clusters),
        "agreement": _interval([float(p.agree) for p in ps], clusters),
        "diff": test["diff"],
        "diff_ci": test["ci"],
        "p": test["p"],
        "test": test["test"],
        "mde": test["mde"],
        "note": test["note"],
        "outcomes": {k: both.get(k, 0) for k in ("both right", "local only", "English only", "both wrong")},
        "decided_by": dict(Counter(p.decided_by for p in ps)),
    }


def analyze(
    run_dir: str | Path,
    task: str = "blend",
    variant: str | None = None,
    prompts: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Cross-lingual consistency of a BLEnD run: per region and overall (see the module docstring)."""
    log = read_run(run_dir)
    ps, vid = pairs(log, task, variant)
    if prompts:
        ps = [p for p in ps if p.prompt in set(prompts)]
    if not ps:
        raise RunLogError(
            f"{log.dir}: no question of {task!r} was answered in both the local language and English"
            + (f" under prompts {', '.join(prompts)}" if prompts else "")
        )
    by_region: dict[str, list[Pair]] = defaultdict(list)
    for p in ps:
        by_region[p.region].append(p)
    regions = {r: {"country": rs[0].country, **summarize(rs, seed)} for r, rs in sorted(by_region.items())}
    names = list(regions)
    for method in ("holm", "bh"):
        adj = adjust_pvalues([regions[r]["p"] for r in names], method)
        for r, q in zip(names, adj, strict=True):
            regions[r][f"p_{method}"] = q
    local_better = [r for r in names if regions[r]["p_holm"] < ALPHA and regions[r]["diff"] > 0]
    english_better = [r for r in names if regions[r]["p_holm"] < ALPHA and regions[r]["diff"] < 0]
    notes = []
    bad = sum(p.inconsistent for p in ps)
    if bad:
        notes.append(
            f"{bad} of {len(ps)} pairs: a cluster match here differs from the run's stored score (the "
            "run was graded with other lemmatisers); correctness is the run's, agreement uses the ones here"
        )
    return {
        "run": str(log.dir),
        "model": log.label,
        "task": task,
        "variant": vid,
        "prompts": sorted({p.prompt for p in ps}),
        "rule": AGREEMENT_RULE,
        "all": summarize(ps, seed),
        "regions": regions,
        "local_better": local_better,
        "english_better": english_better,
        "notes": notes + list(log.notes),
    }


def format_table(result: dict[str, Any]) -> str:
    """The analysis as plain text: one line per region, then the overall line and the verdicts."""

    def pct(entry: dict[str, Any]) -> str:
        lo, hi = entry["ci"]
        return f"{entry['mean']:5.2f} [{lo:.2f}, {hi:.2f}]"

    head = (
        f"{'region':<17} {'lang':<4} {'n':>4}  {'local':<17} {'English':<17} {'agreement':<17} "
        f"{'local-En':>8}  {'p (Holm)':>8}"
    )
    lines = [
        f"cross-lingual consistency: {result['model']} · {result['task']} · variant {result['variant']} "
        f"· prompts {', '.join(result['prompts'])}",
        head,
        "-" * len(head),
    ]
    rows = [*result["regions"].items(), ("all", result["all"])]
    for name, r in rows:
        p = r.get("p_holm", r["p"])
        lines.append(
            f"{name:<17} {r['language']:<4} {r['pairs']:>4}  {pct(r['local']):<17} {pct(r['english']):<17} "
            f"{pct(r['agreement']):<17} {r['diff']:>+8.2f}  {p:>8.3f}"
        )
    lines.append("")
    lines.append("local better: " + (", ".join(result["local_better"]) or "none (Holm p < 0.05)"))
    lines.append("English better: " + (", ".join(result["english_better"]) or "none (Holm p < 0.05)"))
    lines.append(f"agreement rule: {result['rule']}")
    lines += [f"note: {n}" for n in result["notes"]]
    return "\n".join(lines)
