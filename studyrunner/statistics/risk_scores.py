"""Survival statistics of deep-learning risk scores (seed 000: He et al. (2022), Transl Lung
Cancer Res 11:670-685): from a network's risk vector to OSRS/PFSRS, their fusion into MOSRS,
and subgroup hazard ratios.

Typed Python entry points to ``rscripts/risk_scores.R``; the statistics are computed in R
(survival) and returned as plain, JSON-serialisable Python (NaN/NA -> ``None``). An error in
the input (a missing column, a missing or non-numeric value, an unknown level) raises
:class:`studyrunner.errors.InputError` with R's message, which names the column and the rows.

Methods (details and formulas in the R script):
    backward selection  Wald-p backward elimination in a Cox model (Cox DR (1972), J R Stat
                        Soc B 34:187-220; Efron ties; Hosmer, Lemeshow & May (2008), Applied
                        Survival Analysis, Section 5.3).
    fusion              Cox linear predictor of several scores; a score's share is
                        |coef| SD / sum |coef| SD.
    subgroups           Kaplan-Meier, log-rank and Cox hazard ratio per subgroup
                        (``evaluate_risk_score``).

The other statistics of the risk scores have the modules of their R files: the X-tile
cut-off :mod:`~studyrunner.statistics.cutpoint`, the C-index comparison
:mod:`~studyrunner.statistics.concordance`, the Cox tables
:mod:`~studyrunner.statistics.cox_table` and the nomogram
:mod:`~studyrunner.statistics.nomogram`; they are also importable from here.

A cohort other than the fitting one is scored with
:func:`studyrunner.statistics.cox.linear_predictor` and the ``lp_coefficients``
(or ``fused_coefficients``) of the fitting cohort.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.statistics.evaluation import GROUP_CURVE_COUNTS, shape_group_curves
from studyrunner.statistics.r_inputs import as_list, input_columns, text_columns_for_r

_backward_cox_selection = r_function("risk_scores", "backward_cox_selection", input_errors=True,
                                     counts=("n", "n_events", "steps.step", "steps.n_terms"))
_fuse_scores = r_function("risk_scores", "fuse_scores", input_errors=True,
                          counts=("n", "n_events"))
_subgroup_hazard = r_function(
    "risk_scores", "subgroup_hazard", input_errors=True,
    counts=("n_missing", *(f"table.{c}" for c in ("n", "n_events", "n_low", "n_high",
                                                  "events_low", "events_high")),
            *(f"results.*.{c}" for c in GROUP_CURVE_COUNTS)))


def _named(value: Any) -> dict[str, float]:
    """A named R numeric vector (dict) as {name: float}."""
    return {str(k): float(v) for k, v in dict(value).items()}


def _scores(value: Any) -> np.ndarray:
    """R's score vector (a scalar for one row) as a float array."""
    return np.atleast_1d(np.asarray(value, dtype=float))


def backward_cox_selection(df: pd.DataFrame, time: str, event: str, candidates: Sequence[str],
                           p_threshold: float = 0.05) -> dict[str, Any]:
    """Backward elimination of risk-vector scores in a Cox model by Wald p-value
    (R ``backward_cox_selection``): from the full model, drop the term with the largest p
    while p > ``p_threshold``; at least one term is kept (``note`` says when its p is above
    the threshold).

    Returns::

        {"kept": [terms],
         "coefficients": [{"term", "coef", "se", "hr", "hr_lower", "hr_upper", "z", "p"}],
         "steps": [{"step", "dropped", "p", "n_terms"}],   # p in the model dropped from
         "lp_coefficients": {term: coef},                   # combined score = sum coef*score
         "score": [combined score of each row],             # uncentred, e.g. OSRS
         "note", "concordance", "n", "n_events", "p_threshold"}
    """
    result = _backward_cox_selection(input_columns(df, [time, event, *candidates]), time, event,
                                     list(candidates), float(p_threshold))
    result["kept"] = as_list(result["kept"])
    result["lp_coefficients"] = _named(result["lp_coefficients"])
    result["score"] = _scores(result["score"])
    return to_jsonable(result)


def fuse_scores(df: pd.DataFrame, time: str, event: str, scores: Sequence[str]) -> dict[str, Any]:
    """Cox fusion of scores, e.g. MOSRS = linear predictor of ``Surv(os) ~ OSRS + PFSRS``
    fitted on the training cohort (R ``fuse_scores``).

    Returns::

        {"coefficients": [{"term", "coef", "se", "hr", "hr_lower", "hr_upper", "z", "p"}],
         "fused_coefficients": {term: coef},
         "shares": [{"term", "coef", "sd", "contribution", "share"}],
         "score": [fused score of each row], "concordance", "n", "n_events"}

    ``share`` = |coef| SD(score) / sum over the scores of |coef| SD (SD over these rows):
    each score's part of the fused score's spread, the seed's "proportion of PFSRS in
    MOSRS". The seed's check of OSRS in a PFS model is this function on the PFS outcome
    (the p-value of OSRS in ``coefficients``).
    """
    result = _fuse_scores(input_columns(df, [time, event, *scores]), time, event, list(scores))
    result["fused_coefficients"] = _named(result["fused_coefficients"])
    result["score"] = _scores(result["score"])
    return to_jsonable(result)


def subgroup_hazard(df: pd.DataFrame, time: str, event: str, score: str, cutoff: float,
                    subgroup: str, km_times: Sequence[float] = ()) -> dict[str, Any]:
    """High (score > ``cutoff``) versus low risk within each level of ``subgroup``
    (R ``subgroup_hazard``, ``evaluate_risk_score`` per level).

    Returns::

        {"subgroup", "n_missing",              # rows without a subgroup label, left out
         "levels": [{"level", "n", "n_events",
                     "groups": {"low": {"n", "n_events"}, "high": {...}},
                     "hr", "hr_lower", "hr_upper", "hr_p", "hr_reason",
                     "logrank_chisq", "logrank_p", "logrank_reason", "c_index",
                     "reason",                 # why the level could not be evaluated
                     "km": {"low": {...}, "high": {...}} or None,
                     "risk_table": {"times", "low", "high"} or None}]}

    For the seed's tumour-size subgroups build the label column first, e.g. with
    :func:`median_groups`.
    """
    frame = text_columns_for_r(input_columns(df, [time, event, score, subgroup]))
    result = _subgroup_hazard(frame, time, event, score, float(cutoff), subgroup,
                              [float(t) for t in km_times])
    details = result["results"] or {}
    levels = []
    for row in result["table"].to_dict(orient="records"):
        level = str(row["level"])
        entry = {"level": level, "n": row["n"], "n_events": row["n_events"]}
        evaluated = details.get(level)
        if evaluated is None:
            entry["groups"] = None
        else:
            entry["groups"] = {group: {"n": row[f"n_{group}"], "n_events": row[f"events_{group}"]}
                               for group in ("low", "high")}
        for key in ("hr", "hr_lower", "hr_upper", "hr_p", "hr_reason", "logrank_chisq",
                    "logrank_p", "logrank_reason", "c_index", "reason"):
            entry[key] = row[key]
        if evaluated is None:
            entry["km"] = entry["risk_table"] = None
        else:
            curves = shape_group_curves(evaluated)
            entry["km"] = curves["km"]
            entry["risk_table"] = curves["risk_table"]
        levels.append(entry)
    return to_jsonable({"subgroup": subgroup, "n_missing": result["n_missing"],
                        "levels": levels})


def median_groups(values: pd.Series, labels: tuple[str, str] = ("<= median", "> median")
                  ) -> pd.Series:
    """Labels of a split at the median of ``values`` (values equal to the median go low;
    missing values stay missing), e.g. the seed's tumour-size subgroups by the median 3D
    maximum diameter."""
    numbers = pd.to_numeric(values, errors="raise").astype(float)
    median = numbers.median()
    labelled = np.where(numbers > median, labels[1], labels[0]).astype(object)
    labelled[numbers.isna().to_numpy()] = None
    return pd.Series(labelled, index=values.index, name=values.name)
