"""Before / after: is the gain of a fine-tuned model culture, or the presentation it was trained on?

Reads two runs of the same task (the base model and the fine-tuned one, same variants) only through
the run log and compares them on the items of one split (held-out items, held-out countries) with the
paired tests of :mod:`culturelens.compare` (:func:`~culturelens.compare.compare_group`: paired cluster
bootstrap CI, McNemar or the paired permutation test, Holm across countries):

* the gain over every variant pooled (the item is the resampling cluster), with its CI;
* the gain under each variant, and under the training presentation vs all the others;
* robust accuracy (an item counts only if right under every variant), before and after, paired;
* the gain per country, with intervals and Holm-adjusted p-values;
* one-line verdicts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from culturelens.compare import ALPHA, compare_group
from culturelens.robustness import Row, task_rows
from culturelens.runlog import RunLog
from culturelens.stats import adjust_pvalues, holm, proportion_interval


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)


def _level(rows: list[Row], metric: str) -> dict[str, Any]:
    vals = [r.metrics[metric] for r in rows]
    if not vals:
        return {"mean": None, "ci": [None, None], "n": 0}
    binary = all(v in (0.0, 1.0) for v in vals)
    if binary:
        iv = proportion_interval(vals, [r.cluster for r in rows])
        return {"mean": _r(iv.mean), "ci": [_r(iv.low), _r(iv.high)], "n": len({r.item_id for r in rows})}
    return {"mean": _r(sum(vals) / len(vals)), "ci": [None, None], "n": len({r.item_id for r in rows})}


def _paired(
    before: Iterable[Row], after: Iterable[Row], metric: str, ids: set[str] | None
) -> list[tuple[Row, Row]]:
    idx = {(r.item_id, r.variant): r for r in before if metric in r.metrics}
    return [
        (idx[(r.item_id, r.variant)], r)
        for r in after
        if metric in r.metrics and (r.item_id, r.variant) in idx and (ids is None or r.item_id in ids)
    ]


def _test(pairs: list[tuple[Row, Row]], metric: str, seed: int) -> dict[str, Any]:
    """after - before on paired rows (compare_group's A = after, B = before)."""
    if not pairs:
        return {"n": 0, "pairs": 0, "diff": None, "ci": [None, None], "p": None, "note": "no shared items"}
    row = compare_group(
        [a.metrics[metric] for _, a in pairs],
        [b.metrics[metric] for b, _ in pairs],
        [b.cluster for b, _ in pairs],
        n_items=len({b.item_id for b, _ in pairs}),
        seed=seed,
    )
    row["before"] = _level([b for b, _ in pairs], metric)
    row["after"] = _level([a for _, a in pairs], metric)
    for key in ("diff", "p", "a", "b"):
        row[key] = _r(row.get(key))
    row["ci"] = [_r(x) for x in row["ci"]]
    return row


def _direction(t: Mapping[str, Any]) -> str:
    lo, hi = t.get("ci") or [None, None]
    if lo is None or hi is None:
        return "not measured"
    if lo > 0:
        return "gain"
    if hi < 0:
        return "loss"
    return "no detectable change"


def robust_rows(rows: Iterable[Row], metric: str, variants: list[str]) -> dict[str, Row]:
    """Item -> one row whose metric is 1 only if the item is right under every variant (items missing
    a variant are left out)."""
    by: dict[str, dict[str, Row]] = defaultdict(dict)
    for r in rows:
        if metric in r.metrics:
            by[r.item_id][r.variant] = r
    out = {}
    for item_id, vs in by.items():
        if all(v in vs for v in variants):
            first = vs[variants[0]]
            ok = all(vs[v].metrics[metric] >= 1.0 for v in variants)
            out[item_id] = Row(
                item_id, first.cluster, first.country, "robust", {metric: float(ok)}, None, True
            )
    return out


def answer_positions(log: RunLog, task: str, ids: set[str] | None) -> dict[str, dict[str, Any]]:
    """Variant -> where the answers sit on screen: the share of predictions at each displayed position
    and the share of gold answers there (multiple-choice samples of ``ids``). A fine-tuned model that
    moved its answers to one position scores whatever share of gold sits there, without knowing more."""
    pred: dict[str, Counter[int]] = defaultdict(Counter)
    gold: dict[str, Counter[int]] = defaultdict(Counter)
    for s in log.iter_samples(task):
        if ids is not None and s.item_id not in ids:
            continue
        if not (isinstance(s.prediction, int) and isinstance(s.gold, list) and s.gold and s.order):
            continue
        if s.prediction not in s.order or s.gold[0] not in s.order:
            continue
        pred[s.variant][s.order.index(s.prediction)] += 1
        gold[s.variant][s.order.index(s.gold[0])] += 1
    out = {}
    for v, c in pred.items():
        n = sum(c.values())
        top, k = c.most_common(1)[0]
        out[v] = {
            "n": n,
            "predicted": {str(p): _r(c[p] / n) for p in sorted(c)},
            "gold": {str(p): _r(gold[v][p] / n) for p in sorted(gold[v])},
            "top_position": top,
            "top_share": _r(k / n),
            "gold_at_top": _r(gold[v][top] / n),
        }
    return out


def compare_split(
    before: RunLog,
    after: RunLog,
    task: str,
    ids: set[str] | None,
    train_variant: str | Sequence[str] | None,
    metric: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The before/after comparison of ``task`` on the items ``ids`` (None: every shared item);
    ``train_variant``: the presentation(s) the pairs were built from."""
    m = metric or before.headline_metric(task) or "acc"
    rows_b, rows_a = task_rows(before, task), task_rows(after, task)
    pairs = _paired(rows_b, rows_a, m, ids)
    variants = [v for v in before.task_variants(task) if v in after.task_variants(task)]
    out: dict[str, Any] = {
        "metric": m,
        "items": len({b.item_id for b, _ in pairs}),
        "variants": variants,
        "pooled": _test(pairs, m, seed),
    }
    out["pooled"]["verdict"] = _direction(out["pooled"])
    per_variant = {}
    for v in variants:
        t = _test([p for p in pairs if p[0].variant == v], m, seed)
        t["verdict"] = _direction(t)
        per_variant[v] = t
    out["per_variant"] = per_variant
    if len(variants) > 1:
        rb = robust_rows((b for b, _ in pairs), m, variants)
        ra = robust_rows((a for _, a in pairs), m, variants)
        rp = [(rb[i], ra[i]) for i in sorted(rb) if i in ra]
        out["robust"] = _test(rp, m, seed)
        out["robust"]["verdict"] = _direction(out["robust"])
    trained = [train_variant] if isinstance(train_variant, str) else list(train_variant or [])
    trained = [v for v in trained if v in variants]
    if trained and len(trained) < len(variants):
        others = [p for p in pairs if p[0].variant not in trained]
        if len(trained) == 1:
            gain_train = per_variant[trained[0]]
        else:
            gain_train = _test([p for p in pairs if p[0].variant in trained], m, seed)
            gain_train["verdict"] = _direction(gain_train)
        out["training_presentation"] = {
            "variant": ", ".join(trained),
            "variants": trained,
            "gain_train": gain_train,
            "gain_other": {**_test(others, m, seed), "variants": [v for v in variants if v not in trained]},
        }
        out["training_presentation"]["gain_other"]["verdict"] = _direction(
            out["training_presentation"]["gain_other"]
        )
    # per country: every variant pooled, the item the cluster; Holm and BH across countries
    groups: dict[str, list[tuple[Row, Row]]] = defaultdict(list)
    for b, a in pairs:
        groups[b.country or "(none)"].append((b, a))
    countries = []
    for c in sorted(groups):
        t = _test(groups[c], m, seed)
        t["country"] = c
        t["verdict"] = _direction(t)
        countries.append(t)
    ps = [t["p"] if t["p"] is not None else 1.0 for t in countries]
    for t, p, q in zip(countries, holm(ps), adjust_pvalues(ps, "bh"), strict=True):
        t["p_holm"], t["p_bh"] = _r(p), _r(q)
    out["countries"] = countries
    pos_b, pos_a = answer_positions(before, task, ids), answer_positions(after, task, ids)
    out["positions"] = {"before": pos_b, "after": pos_a}
    out["verdicts"] = verdicts(out)
    return out


def verdicts(s: Mapping[str, Any]) -> list[str]:
    """One-line conclusions of a split's comparison."""
    out = []
    p = s["pooled"]
    if p.get("diff") is None:
        return ["no paired items: nothing to conclude"]
    lo, hi = p["ci"]
    out.append(
        f"{s['metric']} {p['b']:.3f} -> {p['a']:.3f} over {len(s['variants'])} variant(s), "
        f"change {p['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}] on {p['n']} items: {p['verdict']}"
    )
    pv = s.get("per_variant") or {}
    if len(pv) > 1:
        ups = [v for v, t in pv.items() if t["diff"] is not None and t["diff"] > 0]
        sig = [v for v, t in pv.items() if t["verdict"] == "gain"]
        downs = [v for v, t in pv.items() if t["verdict"] == "loss"]
        out.append(
            f"under each variant: higher under {len(ups)}/{len(pv)}, a gain whose CI excludes 0 under "
            f"{len(sig)}/{len(pv)}" + (f", a loss under {', '.join(downs)}" if downs else "")
        )
    r = s.get("robust")
    if r and r.get("diff") is not None:
        out.append(
            f"robust accuracy (right under every variant) {r['b']:.3f} -> {r['a']:.3f}, change "
            f"{r['diff']:+.3f} [{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}]: "
            + ("the gain survives every variant" if r["verdict"] == "gain" else r["verdict"])
        )
    tp = s.get("training_presentation")
    if tp:
        gt, go = tp["gain_train"], tp["gain_other"]
        name = "training presentation" if len(tp.get("variants") or [1]) == 1 else "training presentations"
        if gt["verdict"] == "gain" and go["verdict"] != "gain":
            what = f"the gain is detectable only under the {name}"
        elif gt["verdict"] == "gain" and go["verdict"] == "gain":
            what = f"the gain holds beyond the {name}"
        elif go["verdict"] == "gain":
            what = f"a gain under the other presentations, none detectable under the {name}"
        else:
            what = f"no detectable gain under the {name} or the others"
        out.append(
            f"{name} ({tp['variant']}) {gt['diff']:+.3f} [{gt['ci'][0]:+.3f}, {gt['ci'][1]:+.3f}] "
            f"vs the other {len(go['variants'])} {go['diff']:+.3f} [{go['ci'][0]:+.3f}, {go['ci'][1]:+.3f}]: {what}"
        )
    pos = s.get("positions") or {}
    for v, a in (pos.get("after") or {}).items():
        b = (pos.get("before") or {}).get(v)
        if (
            b
            and a["top_share"] >= 0.6
            and a["top_share"] - (b["predicted"].get(str(a["top_position"])) or 0) >= 0.2
        ):
            out.append(
                f"position preference under {v}: after tuning {a['top_share']:.0%} of answers sit at displayed "
                f"position {a['top_position'] + 1} (before {b['predicted'].get(str(a['top_position'])) or 0:.0%}); "
                f"{a['gold_at_top']:.0%} of gold answers sit there, so accuracy there tracks position, not knowledge"
            )
    cs = s.get("countries") or []
    up = [c["country"] for c in cs if c.get("p_holm") is not None and c["p_holm"] < ALPHA and c["diff"] > 0]
    down = [c["country"] for c in cs if c.get("p_holm") is not None and c["p_holm"] < ALPHA and c["diff"] < 0]
    out.append(
        f"per country ({len(cs)}): significant after Holm: {len(up)} up"
        + (f" ({', '.join(up)})" if up else "")
        + f", {len(down)} down"
        + (f" ({', '.join(down)})" if down else "")
    )
    return out


def compare_control(
    before: Mapping[str, float], after: Mapping[str, float], seed: int = 0, higher_is_better: bool = True
) -> dict[str, Any]:
    """A paired per-unit comparison of a control score (e.g. log-likelihood per byte of general text)."""
    keys = sorted(k for k in before if k in after)
    if not keys:
        return {"n": 0, "note": "no shared units"}
    row = compare_group(
        [after[k] for k in keys], [before[k] for k in keys], keys, n_items=len(keys), seed=seed
    )
    row["diff"], row["a"], row["b"], row["p"] = _r(row["diff"]), _r(row["a"]), _r(row["b"]), _r(row["p"])
    row["ci"] = [_r(x) for x in row["ci"]]
    d = _direction(row)
    if not higher_is_better and d in ("gain", "loss"):
        d = "loss" if d == "gain" else "gain"
    row["verdict"] = {
        "gain": "better",
        "loss": "worse (a cost)",
        "no detectable change": "no detectable cost",
    }.get(d, d)
    return row
