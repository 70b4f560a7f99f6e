"""Constants, criteria and the scored rows a robustness analysis reads from the run log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from culturelens.runlog import RunLog, RunLogError

#: a score is called stable when all variants agree within this absolute tolerance (or see CRITERIA)
STABLE_ABS_TOL = 0.02
#: a ranking is called stable when the smallest Kendall tau between two variants' rankings reaches
#: this and at most :data:`RANK_MAX_FLIP` of the pairwise conclusions flip
RANK_MIN_TAU = 0.8
RANK_MAX_FLIP = 0.10
#: a score whose items change answer under presentation this often is not called stable
MIN_CONSISTENCY = 0.5
ALPHA = 0.05

CRITERIA = {
    "score": f"stable if the range across variants is <= {STABLE_ABS_TOL}, or if every variant's score lies inside "
    f"the primary variant's 95% CI, the variants do not differ beyond chance (p >= {ALPHA}) and at least "
    f"{MIN_CONSISTENCY:.0%} of items are answered the same under every variant; NOT stable if the variants differ "
    "beyond chance (or, without a test, a score lies outside the CI); otherwise not established (the scores spread, "
    "but no more than chance gives at this n)",
    "ranking": f"stable if min Kendall tau between variants >= {RANK_MIN_TAU} and flip rate <= {RANK_MAX_FLIP:.0%}",
    "flip_rate": "share of entity pairs ordered one way by some variant and strictly the other way by another, "
    "among pairs that at least one variant orders strictly (ties are no conclusion)",
    "variance": "main-effects decomposition of per-variant scores: sum over levels of n_level * (level mean - "
    "grand mean)^2 divided by the total sum of squares; exact for full balanced designs, the rest is interaction",
    "consistency": "share of items whose prediction (original option) is identical under every variant",
    "robust": "share of items right under every variant (non-binary metrics: mean over items of the minimum)",
}


@dataclass
class Row:
    """One scored unit (item or the benchmark's counting unit) under one variant."""

    item_id: str
    cluster: str
    country: str | None
    variant: str
    metrics: dict[str, float]
    prediction: Any
    valid: bool


# --- reading runs (only through the run log) ------------------------------------------------------
def _pred_key(pred: Any) -> Any:
    if isinstance(pred, str):
        return " ".join(pred.lower().split())
    return pred


def task_rows(log: RunLog, task_name: str) -> list[Row]:
    """The run's scored units of one task, one per (unit, variant).

    A task that counts another unit than the item (``Task.unit_scores``) is regrouped with the run's
    item snapshot; a format-1 run without one whose dataset is gone is counted per sample, with a note.
    """
    try:
        units = log.unit_scores(task_name)
    except RunLogError as exc:
        log.notes.append(f"{task_name}: counted per sample, not per the task's unit ({exc})")
        units = None
    if units is not None:
        return [
            Row(
                item.id,
                item.group or item.id,
                item.country.name if item.country else None,
                vid,
                score.metrics,
                _pred_key(score.prediction),
                score.valid,
            )
            for vid, pairs in units.items()
            for item, score in pairs
        ]
    samples = log.iter_samples(task_name)
    return [
        Row(s.item_id, s.cluster, s.country, s.variant, s.metrics, _pred_key(s.prediction), s.valid)
        for s in samples
    ]
