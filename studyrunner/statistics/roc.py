"""ROC analysis of binary response scores (e.g. the partial-response score PRS and the
progressive-disease score PDS of a dual-task network): typed Python entry points to
``rscripts/roc.R``.

The binary outcomes are built here from the best overall response
(:func:`response_indicators`); the statistics are computed in R (pROC) and returned as
plain, JSON-serialisable Python (NaN/NA and +/-Inf -> ``None``).

Conventions (details in ``rscripts/roc.R``):
    direction   fixed in advance, never estimated: ``"<"`` = a higher score means positive
                and a patient is called positive when ``score >= cutoff``; ``">"`` = a lower
                score means positive, called positive when ``score <= cutoff``. pROC's
                ``"auto"`` would choose the direction from the outcomes of the cohort being
                evaluated (peeking), hiding a score that predicts the wrong way on the test
                cohort; with a fixed direction such a score gets AUC < 0.5.
    thresholds  pROC's: midpoints between consecutive distinct scores, plus -Inf and +Inf
                (``None`` once JSON-ready). The Youden cut-off is one of these midpoints, so
                on its own cohort ``>=`` and ``>`` classify alike; apply it to another cohort
                with :func:`apply_cutoff` (same ``>=`` rule).
    missing     rows with a missing outcome are left out and counted (``n_missing_outcome``);
                a missing score on a row with a known outcome is an error naming the rows.

Methods:
    AUC         empirical (Mann-Whitney U / (n1 n0)); Hanley JA, McNeil BJ (1982),
                Radiology 143:29-36.
    AUC CI and paired comparison   DeLong ER, DeLong DM, Clarke-Pearson DL (1988),
                Biometrics 44:837-845 (pROC::ci.auc / pROC::roc.test, method "delong").
    cut-off     Youden index J = sensitivity + specificity - 1; Youden WJ (1950), Cancer
                3:32-35.
    proportions exact Clopper-Pearson CI; Clopper CJ, Pearson ES (1934), Biometrika
                26:404-413.
    engine      pROC; Robin X et al. (2011), BMC Bioinformatics 12:77.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.errors import InputError
from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.statistics.r_inputs import select_columns

_COUNT_KEYS = ("n", "n_positive", "n_negative", "n_missing_outcome", "n_missing_subgroup",
               "youden_ties", "tp", "fp", "tn", "fn")
"""Whole-number entries of the results of roc.R (those a function returns)."""

_roc_analysis = r_function("roc", "roc_analysis", counts=_COUNT_KEYS)
_apply_cutoff = r_function("roc", "apply_cutoff",
                           counts=(*_COUNT_KEYS, "metrics.numerator", "metrics.denominator"))
_roc_subgroups = r_function("roc", "roc_subgroups",
                            counts=(*_COUNT_KEYS, "table.n", "table.n_positive",
                                    "table.n_negative"))
_compare_auc = r_function("roc", "compare_auc", counts=_COUNT_KEYS)

DIRECTIONS = ("<", ">")
"""``"<"``: higher score = positive (score >= cutoff); ``">"``: lower score = positive."""

RESPONSE_LEVELS = ("PR", "SD", "PD")
"""Best overall response categories (RECIST 1.1) of the seed study."""

METRICS = ("sensitivity", "specificity", "ppv", "npv", "accuracy")
"""The proportions reported by :func:`apply_cutoff`."""

def response_indicators(best_response: pd.Series,
                        levels: Sequence[str] = RESPONSE_LEVELS) -> pd.DataFrame:
    """Binary outcomes ``pr`` (PR vs not PR) and ``pd`` (PD vs not PD) from the best
    overall response.

    Returns a DataFrame with the index of ``best_response`` and float columns ``pr`` and
    ``pd`` holding 1.0 / 0.0, or NaN where the response is missing (None, NaN or a blank
    string; surrounding spaces are ignored). ``attrs["n_missing"]`` is the number of such
    rows; the ROC functions leave them out and report them as ``n_missing_outcome``.
    ``levels`` are the known categories and must include "PR" and "PD" (add "CR" where
    complete responses are recorded separately: they then count as "not PR").

    Raises InputError naming the row and the value when a non-missing response is not one
    of ``levels``.
    """
    levels = tuple(levels)
    for needed in ("PR", "PD"):
        if needed not in levels:
            raise ValueError(f"levels must include {needed!r}, got {list(levels)}")
    values = best_response.map(lambda v: v.strip() if isinstance(v, str) else v)
    missing = values.isna() | values.map(lambda v: isinstance(v, str) and v == "")
    unknown = ~missing & ~values.isin(levels)
    if unknown.any():
        row = values.index[unknown.to_numpy()][0]
        more = int(unknown.sum()) - 1
        extra = f" (and {more} more row(s))" if more else ""
        raise InputError(f"column {best_response.name!r}: row {row!r}: best response "
                         f"{best_response[row]!r} is not one of {list(levels)}{extra}")
    out = pd.DataFrame({"pr": np.where(values == "PR", 1.0, 0.0),
                        "pd": np.where(values == "PD", 1.0, 0.0)}, index=best_response.index)
    out.loc[missing.to_numpy(), ["pr", "pd"]] = np.nan
    out.attrs["n_missing"] = int(missing.sum())
    return out


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be '<' (higher score = positive) or '>' (lower "
                         f"score = positive), not {direction!r}")
    return direction


def _level(value: Any) -> Any:
    """The positive outcome level as a plain Python scalar for R."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"positive_level must be a number or a string, not {value!r}")
    return value


def _curve(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {"threshold": frame["threshold"].tolist(), "fpr": frame["fpr"].tolist(),
            "tpr": frame["tpr"].tolist()}


def roc_analysis(df: pd.DataFrame, outcome: str, score: str, positive_level: Any = 1,
                 direction: str = "<", conf_level: float = 0.95) -> dict[str, Any]:
    """ROC analysis of one score for a binary outcome (R ``roc_analysis``).

    Returns::

        {"n", "n_positive", "n_negative", "n_missing_outcome", "positive_level",
         "direction", "rule",                     # "score >= cutoff" for direction "<"
         "auc", "auc_se", "auc_lower", "auc_upper", "ci_method",   # DeLong 95% CI
         "cutoff", "sensitivity", "specificity", "youden_index",   # Youden cut-off
         "youden_ties", "cutoff_reason",
         "curve": {"threshold": [...], "fpr": [...], "tpr": [...]}}

    The CI is auc +/- 1.96 DeLong SE clipped to [0, 1]. ``cutoff`` maximises J; on ties
    (``youden_ties`` > 1) the most sensitive one; None with ``cutoff_reason`` when J is 0
    at best. ``curve`` runs from (1, 1) (threshold None = -Inf) to (0, 0) (None = +Inf).
    Needs at least 2 positives and 2 negatives (R error otherwise).
    """
    result = _roc_analysis(select_columns(df, [outcome, score]), outcome, score,
                           _level(positive_level), _check_direction(direction),
                           float(conf_level))
    result["curve"] = _curve(result["curve"])
    return to_jsonable(result)


def apply_cutoff(df: pd.DataFrame, outcome: str, score: str, cutoff: float,
                 positive_level: Any = 1, direction: str = "<",
                 conf_level: float = 0.95) -> dict[str, Any]:
    """A fixed cut-off (e.g. the training cohort's Youden cut-off) applied to a cohort
    (R ``apply_cutoff``); called positive when ``score >= cutoff`` (direction "<") or
    ``score <= cutoff`` (">").

    Returns::

        {"cutoff", "direction", "rule", "n", "n_missing_outcome", "tp", "fp", "tn", "fn",
         "sensitivity": {"estimate", "numerator", "denominator", "lower", "upper"},
         "specificity": {...}, "ppv": {...}, "npv": {...}, "accuracy": {...}}

    with exact (Clopper-Pearson) CIs; estimate and CI are None where the denominator is 0.
    """
    result = _apply_cutoff(select_columns(df, [outcome, score]), outcome, score,
                           float(cutoff), _level(positive_level),
                           _check_direction(direction), float(conf_level))
    metrics = result.pop("metrics")
    for row in metrics.to_dict(orient="records"):
        result[row["metric"]] = {"estimate": row["estimate"],
                                 "numerator": row["numerator"],
                                 "denominator": row["denominator"],
                                 "lower": row["lower"], "upper": row["upper"]}
    return to_jsonable(result)


def roc_subgroups(df: pd.DataFrame, outcome: str, score: str, subgroup: str,
                  positive_level: Any = 1, direction: str = "<",
                  conf_level: float = 0.95) -> dict[str, Any]:
    """ROC analysis within each level of ``subgroup`` (R ``roc_subgroups``), e.g. tumour
    histologic type, or slice thickness / voxel spacing binned beforehand (every distinct
    value is a level).

    Returns::

        {"table": [{"subgroup", "n", "n_positive", "n_negative", "auc", "auc_se",
                    "auc_lower", "auc_upper", "cutoff", "sensitivity", "specificity",
                    "youden_index", "reason"}, ...],        # one per level, sorted
         "curves": {level: {"threshold": [...], "fpr": [...], "tpr": [...]}},
         "n_missing_outcome", "n_missing_subgroup"}

    ``subgroup`` values are text. A level with fewer than 2 positives or 2 negatives has
    None statistics, no curve, and the reason in ``reason``.
    """
    result = _roc_subgroups(select_columns(df, [outcome, score, subgroup]), outcome, score,
                            subgroup, _level(positive_level), _check_direction(direction),
                            float(conf_level))
    table = result["table"]
    records = [] if table is None else table.to_dict(orient="records")
    curves = result["curves"]
    result["curves"] = {level: _curve(curves[curves["subgroup"] == level])
                        for level in dict.fromkeys(curves["subgroup"].tolist())}
    result["table"] = records
    return to_jsonable(result)


def compare_auc(df: pd.DataFrame, outcome: str, score_a: str, score_b: str,
                positive_level: Any = 1, direction: str = "<",
                conf_level: float = 0.95) -> dict[str, Any]:
    """Paired DeLong test of two scores' AUCs on the same patients (R ``compare_auc``,
    pROC::roc.test(method = "delong", paired = TRUE)).

    Returns ``{"n", "n_positive", "n_negative", "n_missing_outcome", "auc_a", "auc_b",
    "difference", "difference_lower", "difference_upper", "z", "p", "method"}``:
    z = (auc_a - auc_b) / sqrt(var_a + var_b - 2 cov_ab), p two-sided, 95% CI of the
    difference.
    """
    result = _compare_auc(select_columns(df, [outcome, score_a, score_b]), outcome, score_a,
                          score_b, _level(positive_level), _check_direction(direction),
                          float(conf_level))
    return to_jsonable(result)
