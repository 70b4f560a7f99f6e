"""The judge stage: scored responses -> judge verdicts (cached) -> judged metrics and their reliability.

Runs inside :class:`culturelens.runner.Runner`, a block of items at a time, after the task has scored
the block's responses and before its samples are written: for every response of a
:class:`~culturelens.judging.JudgedTask`, every judge of the panel (``--judge``, repeatable; default
the embedded model) and every judge wording the task asks (task option ``judge_templates``), it builds
the judge's requests (pairwise questions in both orders), formats them with that judge's chat
template and answers them from the response cache or the judge backend, a batch at a time, each batch
committed before the next (so a crashed run resumes and reuses every verdict it had). The cache key is
the judge's identity plus the whole formatted judge prompt, which holds the judged text and the
wording.

Every verdict, readable or not, goes to ``judgements.jsonl`` (through the run log writer); an
unreadable one counts as invalid (``judge_invalid`` per sample, ``invalid`` in the reliability block),
never dropped. The task turns the judged values (ask -> mean over judges and wordings) into the
sample's metrics, so judged scores get the same breakdowns and intervals as any other metric.

:meth:`JudgeStage.summary` is the ``judge`` block of a task in ``results.json``: who judged, and how far
the judged score can be trusted: agreement between judges (Krippendorff's alpha), the spread over
wordings, position-swap consistency for pairwise questions, correlation with human ratings where the
items carry them, and a one-line verdict when the judge is not reliable enough for the score.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from culturelens.agreement import (
    ALPHA_TENTATIVE,
    Level,
    alpha_backend,
    alpha_verdict,
    krippendorff_alpha,
    spearman,
    weighted_kappa,
)
from culturelens.backends.base import Backend
from culturelens.backends.registry import DEFAULT_SPEC, load_backend
from culturelens.cache import ResponseCache, model_label
from culturelens.errors import BackendError, PartialBatchError, SweepError
from culturelens.judging import JudgeAsk, JudgedTask, parse_verdict
from culturelens.redact import redact
from culturelens.schema import Request, Response

if TYPE_CHECKING:
    from culturelens.runlog import RunConfig, RunLogWriter
    from culturelens.tasks.base import Task

#: below this share of position-swap-consistent verdicts a pairwise preference depends on the order
SWAP_CONSISTENT = 0.8
#: above this share of unreadable verdicts the judge does not follow the verdict format
INVALID_TOO_MANY = 0.2
#: below this rank correlation with human ratings the judge does not track people
HUMAN_RHO_LOW = 0.5

_LEVELS: dict[str, Level] = {
    "rating": "interval",
    "reference": "interval",
    "yesno": "nominal",
    "pairwise": "ordinal",
}


def canonical_spec(spec: str) -> str:
    return DEFAULT_SPEC if spec.strip() in ("", "default", "embedded") else spec.strip()


def judge_specs(given: Sequence[str] | None) -> list[str]:
    """``--judge`` values (repeatable, or comma-separated) as a list; none given: the default judge."""
    out = [canonical_spec(p) for g in (given or []) for p in g.split(",") if p.strip()]
    return list(dict.fromkeys(out)) or [DEFAULT_SPEC]


@dataclass
class _Verdict:
    variant: str
    item_id: str
    ask: str
    kind: str
    judge: int
    wording: str
    order: str
    value: float | None


@dataclass
class _Judge:
    spec: str
    backend: Backend
    identity: dict[str, Any]
    label: str
    owned: bool  # loaded here (closed here), not the model's own backend


def _response_variant(variant_id: str) -> str:
    """A variant id without its judge wording: variants that differ only in ``judge_template`` share
    the model's response, which is the unit the judge reliability measures compare over."""
    parts = [p for p in variant_id.split(",") if not p.startswith("judge_template=")]
    return ",".join(parts) or "default"


class JudgeStage:
    """The judges of one run and what they said. Build with :meth:`for_run` (None when no task of the
    run is judged); the runner calls :meth:`judge_block` per block and :meth:`summary` per task."""

    def __init__(
        self,
        judges: list[_Judge],
        tasks: Sequence[tuple[Task, Any]],
        batch_size: int = 16,
        variant_wordings: Sequence[str | None] = (),
    ):
        self.judges = judges
        #: each variant's judge wording (``--vary judge_template=...``; None: the task's), design order;
        #: empty when no variant names one
        self.variant_wordings = list(dict.fromkeys(variant_wordings)) if any(variant_wordings) else []
        self.tasks = [t for t, _ in tasks]
        self.batch_size = max(1, batch_size)
        self.verdicts: dict[int, list[_Verdict]] = defaultdict(list)
        self.asks: dict[int, dict[str, JudgeAsk]] = defaultdict(dict)  # one example per ask name
        self.human: dict[int, dict[tuple[str, str], float]] = defaultdict(dict)  # (unit, ask) -> rating
        self.judged: dict[int, dict[tuple[str, str], float]] = defaultdict(dict)  # (unit, ask) -> value
        self.requests = self.computed = self.hits = 0
        self.seconds = 0.0

    @classmethod
    def for_run(cls, cfg: RunConfig, tasks: Sequence[tuple[Task, Any]], model: Backend) -> JudgeStage | None:
        """The run's judge panel (loaded lazily: a cached re-run loads no judge weights), or None when
        no task of the run is judged. A judge with the model's own spec and options is the model's
        backend itself, not a second copy of it."""
        swept = [v.judge_template for v in cfg.variants]
        if not any(isinstance(t, JudgedTask) for t, _ in tasks):
            if any(swept):
                raise SweepError(
                    "--vary judge_template sweeps the judge of a judged task (care, calmqa, civics, "
                    f"nationality); none of {', '.join(t.name for t, _ in tasks)} is judged"
                )
            return None
        judges: list[_Judge] = []
        try:
            for spec in judge_specs(cfg.judges):
                same = canonical_spec(spec) == canonical_spec(cfg.model) and (
                    dict(cfg.judge_options) == dict(cfg.backend_options)
                )
                backend = model if same else load_backend(spec, lazy=True, **dict(cfg.judge_options))
                identity = backend.identity()
                judges.append(_Judge(spec, backend, identity, model_label(identity)[:200], not same))
        except BaseException:
            for j in judges:
                if j.owned:
                    j.backend.close()
            raise
        return cls(judges, tasks, cfg.batch_size, swept)

    def close(self) -> None:
        for j in self.judges:
            if j.owned:
                j.backend.close()

    def fingerprint(self) -> str:
        """What decides the verdicts besides the responses: the judges and every task's wordings (a
        finished run is reused only for the same)."""
        wordings = {t.name: t.judge_wordings() for t in self.tasks if isinstance(t, JudgedTask)}
        out: dict[str, Any] = {"judges": [j.identity for j in self.judges], "wordings": wordings}
        if self.variant_wordings:
            out["variant_wordings"] = self.variant_wordings
        return json.dumps(out, sort_keys=True)

    def wordings_for(self, task: JudgedTask, variant: Any) -> list[str]:
        """The judge wordings asked about a response: the variant's swept one, else the task's."""
        return [variant.judge_template] if variant.judge_template else task.judge_wordings()

    def task_wordings(self, task: JudgedTask) -> list[str]:
        """Every wording a task's responses were judged with in this run."""
        if not self.variant_wordings:
            return task.judge_wordings()
        out: list[str] = []
        for w in self.variant_wordings:
            out.extend([w] if w else task.judge_wordings())
        return list(dict.fromkeys(out))

    def describe(self) -> list[dict[str, Any]]:
        return [{"spec": redact(j.spec), "identity": j.identity} for j in self.judges]

    # --- judging a block --------------------------------------------------------------------------
    def judge_block(
        self,
        works: Sequence[Any],
        cache: ResponseCache,
        writer: RunLogWriter | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Judge every scored work of a judged task (``work.score`` gains the judged metrics)."""
        t0 = time.perf_counter()
        # (work index, judge, wording, ask, order) -> request
        jobs: list[tuple[int, int, str, JudgeAsk, str, Request, str]] = []
        for wi, w in enumerate(works):
            task = w.task
            if not isinstance(task, JudgedTask) or w.score is None or w.response is None:
                continue
            for wording in self.wordings_for(task, w.prompt.variant):
                for ask in task.judge_asks(w.item, w.prompt, w.response, w.score, wording):
                    self.asks[w.task_index].setdefault(ask.name, ask)
                    for ji, judge in enumerate(self.judges):
                        for order, messages in ask.orders():
                            text = judge.backend.format(list(messages), ask.prefix)
                            req = Request(kind="generate", text=text, max_tokens=ask.max_tokens)
                            jobs.append((wi, ji, wording, ask, order, req, req.key(judge.identity)))
        if not jobs:
            return
        replies = self._answers(jobs, cache, progress)
        per_work: dict[int, list[tuple[int, str, JudgeAsk, str, float | None]]] = defaultdict(list)
        for wi, ji, wording, ask, order, req, key in jobs:
            w = works[wi]
            reply = replies[key]
            value = parse_verdict(ask, order, ask.prefix + (reply.text or ""))
            per_work[wi].append((ji, wording, ask, order, value))
            self.verdicts[w.task_index].append(
                _Verdict(w.prompt.variant.id, w.item.id, ask.name, ask.kind, ji, wording, order, value)
            )
            if writer is not None:
                writer.add_judgement(
                    {
                        "task": w.item.task,
                        "item_id": w.item.id,
                        "variant": w.prompt.variant.id,
                        "ask": ask.name,
                        "kind": ask.kind,
                        "judge": ji,
                        "judge_model": self.judges[ji].label,
                        "wording": wording,
                        "order": order,
                        "prompt": req.text,
                        "reply": reply.text,
                        "verdict": value,
                        "valid": value is not None,
                        "cache_key": key,
                        **({"fallback": reply.fallback} if reply.fallback else {}),
                    }
                )
        for wi, got in per_work.items():
            w = works[wi]
            values = self._values(got)
            unit = f"{w.prompt.variant.id}|{w.item.id}"
            for name, v in values.items():
                if v is not None:
                    self.judged[w.task_index][(unit, name)] = v
                human = (w.item.metadata.get("human_ratings") or {}).get(name)
                if isinstance(human, int | float):
                    self.human[w.task_index][(unit, name)] = float(human)
            metrics = w.task.judged_metrics(w.item, w.score, values)
            metrics["judge_invalid"] = sum(v is None for *_, v in got) / len(got)
            w.score.metrics.update(metrics)
        self.seconds += time.perf_counter() - t0

    @staticmethod
    def _values(got: list[tuple[int, str, JudgeAsk, str, float | None]]) -> dict[str, float | None]:
        """Ask name -> the mean, over judges and wordings, of each one's (order-averaged) verdict."""
        cells: dict[str, dict[tuple[int, str], list[float]]] = defaultdict(lambda: defaultdict(list))
        names: list[str] = []
        for ji, wording, ask, _order, value in got:
            if ask.name not in names:
                names.append(ask.name)
            if value is not None:
                cells[ask.name][(ji, wording)].append(value)
        out: dict[str, float | None] = {}
        for name in names:
            means = [sum(vs) / len(vs) for vs in cells[name].values() if vs]
            out[name] = sum(means) / len(means) if means else None
        return out

    def _answers(
        self,
        jobs: list[tuple[int, int, str, JudgeAsk, str, Request, str]],
        cache: ResponseCache,
        progress: Callable[[str, int, int], None] | None,
    ) -> dict[str, Response]:
        by_key: dict[str, tuple[int, Request]] = {}
        for _wi, ji, _w, _a, _o, req, key in jobs:
            by_key.setdefault(key, (ji, req))
        keys = list(by_key)
        found = cache.get_many(keys)
        self.requests += len(keys)
        self.hits += len(found)
        todo = sorted((k for k in keys if k not in found), key=lambda k: (by_key[k][0], by_key[k][1].text))
        done = 0
        for ji, judge in enumerate(self.judges):
            mine = [k for k in todo if by_key[k][0] == ji]
            label = model_label(judge.identity)
            for start in range(0, len(mine), self.batch_size):
                chunk = mine[start : start + self.batch_size]
                reqs = [by_key[k][1] for k in chunk]
                try:
                    resps = judge.backend.run(reqs)
                except PartialBatchError as exc:  # keep the verdicts that did come back, then stop
                    good = {
                        i: r
                        for i, r in exc.completed.items()
                        if 0 <= i < len(chunk) and isinstance(r.text, str)
                    }
                    cache.put_many((chunk[i], label, "generate", r) for i, r in good.items())
                    raise BackendError(
                        f"judge: {exc} ({len(good)} verdicts of the failed batch were kept)"
                    ) from None
                if len(resps) != len(reqs) or any(not isinstance(r.text, str) for r in resps):
                    raise BackendError(
                        f"judge {redact(judge.spec)} gave a malformed answer (no generated text, or "
                        f"{len(resps)} answers for {len(reqs)} requests); nothing of the batch was cached"
                    )
                cache.put_many((k, label, "generate", r) for k, r in zip(chunk, resps, strict=True))
                self.computed += len(chunk)
                found.update(zip(chunk, resps, strict=True))
                done += len(chunk)
                if progress:
                    progress("judge", done, len(todo))
        return found

    # --- reliability ---------------------------------------------------------------------------------
    def summary(self, task_index: int) -> dict[str, Any] | None:
        """The ``judge`` block of a task in results.json (None: the task is not judged)."""
        task = self.tasks[task_index]
        if not isinstance(task, JudgedTask):
            return None
        verdicts = self.verdicts.get(task_index, [])
        wordings = self.task_wordings(task)
        asks: dict[str, Any] = {}
        for name, example in self.asks.get(task_index, {}).items():
            asks[name] = self._ask_summary(
                task_index, name, example, [v for v in verdicts if v.ask == name], wordings
            )
        lines = [line for a in asks.values() for line in a["verdicts"]]
        bad = [line for a in asks.values() for line in a["problems"]]
        if not verdicts:
            overall = "nothing was judged: no judge question applies to these items"
        elif bad:
            overall = bad[0]
        elif (
            len(self.judges) < 2
            and len(wordings) < 2
            and not any(a["kind"] == "pairwise" for a in asks.values())
        ):
            overall = (
                "reliability not established: one judge and one wording (add --judge MODEL for a panel, "
                "--opt judge_templates=paper,brief for the wording spread)"
            )
        else:
            overall = "judge reliability sufficient for the score on the measures available"
        invalid = sum(v.value is None for v in verdicts)
        return {
            "judges": self.describe(),
            "wordings": wordings,
            "verdicts": len(verdicts),
            "invalid": invalid,
            "invalid_rate": invalid / len(verdicts) if verdicts else None,
            "alpha_method": alpha_backend(),
            "asks": asks,
            "notes": lines,
            "verdict": overall,
            "weak_judge": any(canonical_spec(j.spec) == DEFAULT_SPEC for j in self.judges),
        }

    def _ask_summary(
        self, ti: int, name: str, example: JudgeAsk, vs: list[_Verdict], wordings: list[str]
    ) -> dict[str, Any]:
        level = _LEVELS[example.kind]
        invalid = sum(v.value is None for v in vs)
        units = sorted({f"{_response_variant(v.variant)}|{v.item_id}" for v in vs})
        uindex = {u: i for i, u in enumerate(units)}

        def cell_means(key: Callable[[_Verdict], Any]) -> dict[Any, list[float | None]]:
            acc: dict[Any, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
            for v in vs:
                if v.value is not None:
                    acc[key(v)][uindex[f"{_response_variant(v.variant)}|{v.item_id}"]].append(v.value)
            return {
                k: [sum(d[u]) / len(d[u]) if d.get(u) else None for u in range(len(units))]
                for k, d in acc.items()
            }

        def mean_of(vals: list[float | None]) -> tuple[float | None, int]:
            got = [x for x in vals if x is not None]
            return (sum(got) / len(got) if got else None, len(got))

        out: dict[str, Any] = {"kind": example.kind, "level": level, "verdicts": [], "n_verdicts": len(vs)}
        if example.kind in ("rating", "reference"):
            out["scale"] = list(example.scale)
        out["invalid"] = invalid
        out["invalid_rate"] = invalid / len(vs) if vs else None
        problems: list[str] = []
        if vs and invalid / len(vs) > INVALID_TOO_MANY:
            problems.append(
                f"{name}: {invalid} of {len(vs)} verdicts unreadable ({100 * invalid / len(vs):.0f}%): the judge "
                "does not follow the verdict format, the score rests on the rest"
            )
        by_judge = cell_means(lambda v: v.judge)
        out["by_judge"] = {
            self.judges[j].label: {"mean": mean_of(vals)[0], "n": mean_of(vals)[1]}
            for j, vals in sorted(by_judge.items())
        }
        if len(self.judges) > 1:
            rows = [by_judge.get(j, [None] * len(units)) for j in range(len(self.judges))]
            alpha = krippendorff_alpha(rows, level)
            out["judge_alpha"] = alpha
            out["judge_alpha_units"] = sum(
                sum(r[u] is not None for r in rows) >= 2 for u in range(len(units))
            )
            if len(self.judges) == 2 and example.kind in ("rating", "reference"):
                rated = [
                    (a, b) for a, b in zip(rows[0], rows[1], strict=True) if a is not None and b is not None
                ]
                lo, hi = example.scale
                cats = [float(c) for c in range(lo, hi + 1)]
                out["judge_weighted_kappa"] = weighted_kappa(
                    [float(round(a)) for a, _ in rated], [float(round(b)) for _, b in rated], cats
                )
            line = alpha_verdict(alpha, f"{name}: agreement between judges")
            (problems if alpha is None or alpha < ALPHA_TENTATIVE else out["verdicts"]).append(line)
        else:
            out["judge_alpha"] = None
            out["verdicts"].append(f"{name}: one judge, agreement between judges not measured")
        by_wording = cell_means(lambda v: v.wording)
        out["by_wording"] = {
            w: {"mean": mean_of(by_wording.get(w, []))[0], "n": mean_of(by_wording.get(w, []))[1]}
            for w in wordings
        }
        if len(wordings) > 1:
            means = [m["mean"] for m in out["by_wording"].values() if m["mean"] is not None]
            out["wording_spread"] = max(means) - min(means) if len(means) > 1 else None
            alpha_w = krippendorff_alpha([by_wording.get(w, [None] * len(units)) for w in wordings], level)
            out["wording_alpha"] = alpha_w
            line = alpha_verdict(alpha_w, f"{name}: agreement across judge wordings")
            (problems if alpha_w is None or alpha_w < ALPHA_TENTATIVE else out["verdicts"]).append(line)
        else:
            out["wording_spread"] = None
            out["wording_alpha"] = None
        if example.kind == "pairwise":
            pairs: dict[tuple[int, str, int], dict[str, float | None]] = defaultdict(dict)
            for v in vs:
                pairs[(uindex[f"{_response_variant(v.variant)}|{v.item_id}"], v.wording, v.judge)][
                    v.order
                ] = v.value
            both = [
                (p["AB"], p["BA"])
                for p in pairs.values()
                if p.get("AB") is not None and p.get("BA") is not None
            ]
            consistent = sum(a == b for a, b in both)
            firsts = [v for v in vs if v.value is not None and v.value != 0.5]
            first_pos = sum((v.value == 1.0) == (v.order == "AB") for v in firsts)
            out["swap_pairs"] = len(both)
            out["swap_consistency"] = consistent / len(both) if both else None
            out["first_position_rate"] = first_pos / len(firsts) if firsts else None
            sc = out["swap_consistency"]
            if sc is None:
                problems.append(
                    f"{name}: position-swap consistency not measurable (no pair with both orders read)"
                )
            elif sc < SWAP_CONSISTENT:
                problems.append(
                    f"{name}: position-swap consistency {sc:.2f} < {SWAP_CONSISTENT}: the preference depends on the "
                    "order the answers are shown in"
                )
            else:
                out["verdicts"].append(f"{name}: position-swap consistency {sc:.2f}")
        human = self.human.get(ti, {})
        pairs_h = [(self.judged[ti][k], h) for k, h in human.items() if k[1] == name and k in self.judged[ti]]
        if pairs_h:
            rho = spearman([a for a, _ in pairs_h], [b for _, b in pairs_h])
            out["human"] = {"spearman": rho, "n": len(pairs_h)}
            if rho is None or rho < HUMAN_RHO_LOW:
                problems.append(
                    f"{name}: rank correlation with human ratings "
                    f"{'not measurable' if rho is None else f'{rho:.2f} < {HUMAN_RHO_LOW}'}: the judge does not track people"
                )
            else:
                out["verdicts"].append(
                    f"{name}: rank correlation with human ratings {rho:.2f} (n={len(pairs_h)})"
                )
        else:
            out["human"] = None
        out["problems"] = problems
        out["verdicts"] = problems + out["verdicts"]
        out["unreliable"] = bool(problems)
        return out

    def timing(self) -> dict[str, float]:
        return {
            "judge_requests": float(self.requests),
            "judge_computed": float(self.computed),
            "judge_cache_hits": float(self.hits),
            "judge_s": self.seconds,
            "judge_requests_per_s": self.computed / self.seconds if self.seconds and self.computed else 0.0,
        }
