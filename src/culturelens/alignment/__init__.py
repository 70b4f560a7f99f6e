"""Whose values do a model's answers resemble? Survey alignment, Hofstede dimensions, steerability.

A model's answer to a survey item is a distribution over the answer scale (``Score.probs``, in
original option order). The distribution is *debiased* by averaging it over the presentation
variants of a run (option order, scale direction, label style, template): each variant's
position and label preferences pull in different directions, and the average is what remains.
The bias that was removed is reported (distance of each variant from the average, excess mass on
the first / last displayed position).

Metrics against one country's human data are similarities in [0, 1] (:mod:`culturelens.distributions`:
``jsd``, ``w1``, ``mae``). Each comes with a uniform baseline, a majority baseline (all mass on the
option most chosen across the reference countries), a leave-one-out pooled baseline (the average of
the other countries) and a normalised score ``(model - uniform) / (1 - uniform)``.

Run-level entry point: :func:`analyze_alignment` reads a run only through its log
(:func:`culturelens.runlog.read_run`: item snapshot, recorded references, samples) and writes
``alignment.json``: per country similarity with bootstrap CIs over questions, nearest countries,
baselines, removed bias, steerability and specificity when persona variants were run, and the
VSM 2013 indices compared with Hofstede's published scores for the ``vsm`` task.

Modules, by concern: :mod:`.samples` (samples, conditions, debiasing, bias report),
:mod:`.reference` (human reference data, similarities, baselines), :mod:`.tables` (country
tables and bootstrap summaries), :mod:`.steerability`, :mod:`.vsm` (VSM indices vs Hofstede),
:mod:`.ivs` (Inglehart-Welzel map) and :mod:`.analysis` (the run-level driver).
"""

from __future__ import annotations

from culturelens.alignment.analysis import Survey, analyze_alignment, analyze_task, survey_of
from culturelens.alignment.ivs import load_ivs
from culturelens.alignment.reference import Reference, primary_metric, reference_of
from culturelens.alignment.samples import Condition, bias_report, condition_of, debias, presentation_id
from culturelens.alignment.steerability import steering_report
from culturelens.alignment.tables import country_table, matrix_mean_ci
from culturelens.alignment.vsm import compare_with_hofstede, extrapolability, vsm_report
from culturelens.distributions import (
    METRIC_NAMES,
    METRICS,
    as_distribution,
    expected_position,
    js_distance,
    normalised,
    onehot,
    scale_positions,
    similarity,
    uniform,
    wasserstein1,
)
from culturelens.hofstede import HOFSTEDE_COLUMNS, load_hofstede
from culturelens.schema import PRESENTATION_FIELDS
from culturelens.vsm_formulas import VSM_DIMENSIONS, VSM_FORMULAS, vsm_indices

__all__ = [
    "HOFSTEDE_COLUMNS",
    "METRICS",
    "METRIC_NAMES",
    "PRESENTATION_FIELDS",
    "VSM_DIMENSIONS",
    "VSM_FORMULAS",
    "Condition",
    "Reference",
    "Survey",
    "analyze_alignment",
    "analyze_task",
    "as_distribution",
    "bias_report",
    "compare_with_hofstede",
    "condition_of",
    "country_table",
    "debias",
    "expected_position",
    "extrapolability",
    "js_distance",
    "load_hofstede",
    "load_ivs",
    "matrix_mean_ci",
    "normalised",
    "onehot",
    "presentation_id",
    "primary_metric",
    "reference_of",
    "scale_positions",
    "similarity",
    "steering_report",
    "survey_of",
    "uniform",
    "vsm_indices",
    "vsm_report",
    "wasserstein1",
]
