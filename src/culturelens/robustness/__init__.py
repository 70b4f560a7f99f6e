"""How stable is each number? Robustness analysis of a sweep run (several variants of the same items).

For every task of a run with more than one variant, :func:`analyze_run` reports

* the headline score under each variant, with its 95% CI and n, and the spread (min, max, SD);
* consistency: share of items whose prediction is the same under every variant, and robust accuracy:
  share of items right under every variant (for a non-binary metric: the mean over items of the
  worst score across variants), both with cluster-bootstrap CIs;
* an omnibus test of whether the variants' scores differ beyond chance (Cochran's Q on items x variants);
* rank stability of countries: Kendall's tau-b between the country rankings of every pair of variants,
  and the flip rate of pairwise conclusions ("country A scores higher than B");
* a main-effects decomposition of the variance of the per-variant scores: for each swept factor, the
  weighted sum of squares of its level means about the grand mean, as a share of the total sum of
  squares of the per-variant scores (an exact partition for a full, balanced design; what is left is
  interaction);
* one-line verdicts, stable or not, with the evidence.

:func:`analyze_runs` does the same for model rankings across several runs that share variants.
"""

from culturelens.robustness.analysis import analyze_run, analyze_runs, analyze_task
from culturelens.robustness.measures import item_stability, main_effects, ranking_stability
from culturelens.robustness.rows import (
    ALPHA,
    CRITERIA,
    MIN_CONSISTENCY,
    RANK_MAX_FLIP,
    RANK_MIN_TAU,
    STABLE_ABS_TOL,
    Row,
    task_rows,
)

__all__ = [
    "ALPHA",
    "CRITERIA",
    "MIN_CONSISTENCY",
    "RANK_MAX_FLIP",
    "RANK_MIN_TAU",
    "STABLE_ABS_TOL",
    "Row",
    "analyze_run",
    "analyze_runs",
    "analyze_task",
    "item_stability",
    "main_effects",
    "ranking_stability",
    "task_rows",
]
