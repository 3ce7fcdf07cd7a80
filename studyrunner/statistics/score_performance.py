"""Performance of a prognostic score beyond the C-index: time-dependent ROC/AUC, calibration
and decision curves.

Typed Python entry points to ``rscripts/timeroc.R``, ``calibration.R`` and
``decision_curve.R``; the statistics are computed in R and returned as plain,
JSON-serialisable Python (NaN/NA -> ``None``). The maximally selected cut-off and its two
risk groups (``cutpoint.R``) are in :mod:`studyrunner.statistics.cutpoint`; they are also
importable from here.

Methods (details and formulas in the R scripts):
    time-dependent AUC  Blanche P, Dartigues JF, Jacqmin-Gadda H (2013), Stat Med
                        32:5381-5397: IPCW cumulative/dynamic AUC with Kaplan-Meier
                        censoring weights and its i.i.d.-representation standard error
                        (timeROC when installed, otherwise the same estimator in R).
    calibration         predicted risk 1 - exp(-H0(t) exp(beta lp)) from a Cox model of the
                        outcome on the score, against the Kaplan-Meier risk per quantile group
                        (Harrell FE (2015), Regression Modeling Strategies, Section 20.12).
    decision curves     Vickers AJ, Cronin AM, Elkin EB, Gonen M (2008), BMC Med Inform Decis
                        Mak 8:53: net benefit with Kaplan-Meier risks for a survival outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.registry import time_key
from studyrunner.statistics.cutpoint import groups_by_cutpoint, maxstat_cutpoint
from studyrunner.statistics.survival_model import select_columns

__all__ = ["calibration_at", "decision_curve", "groups_by_cutpoint", "maxstat_cutpoint",
           "predicted_risk", "time_dependent_auc", "time_key"]

_time_dependent_auc = r_function("timeroc", "time_dependent_auc")
_calibration_at = r_function("calibration", "calibration_at")
_predicted_risk = r_function("calibration", "predicted_risk")
_decision_curve = r_function("decision_curve", "decision_curve")


def _times(times: Sequence[float]) -> list[float]:
    values = [float(t) for t in times]
    if not values:
        raise ValueError("at least one time is needed")
    return values


def time_dependent_auc(df: pd.DataFrame, time: str, event: str, marker: str,
                       times: Sequence[float]) -> dict[str, Any]:
    """Cumulative/dynamic time-dependent AUC of ``marker`` (higher = higher risk) at each
    time, IPCW with Kaplan-Meier censoring weights (R ``time_dependent_auc``).

    Returns::

        {"auc": {t: value}, "se": {t: value}, "lower": {t: value}, "upper": {t: value},
         "implementation": "timeROC <version>" or "studyrunner",
         "se_method": how the standard errors were computed,
         "roc": {t: {"fp": [...], "tp": [...]}},     # ROC points from (0,0) to (1,1)
         "table": [{"time", "auc", "se", "lower", "upper", "cases", "controls",
                    "censored_before_t", "implementation", "se_method", "reason"}, ...]}

    Keys ``t`` are :func:`time_key` strings. Cases: event before t (T < t); controls: T > t.
    ``lower``/``upper``: 95% normal interval clipped to [0, 1]. At a time without any case
    or control the AUC is None and ``reason`` in ``table`` says why.
    """
    values = _times(times)
    result = _time_dependent_auc(select_columns(df, [time, event, marker]), time, event,
                                 marker, values)
    table = result["table"]
    roc = result["roc"]
    keyed = {column: {time_key(t): v for t, v in zip(table["time"], table[column])}
             for column in ("auc", "se", "lower", "upper")}
    curves = {}
    for t in table["time"]:
        points = roc[roc["time"] == t]
        curves[time_key(t)] = {"fp": points["fp"].tolist(), "tp": points["tp"].tolist()}
    methods = [m for m in table["se_method"].tolist() if isinstance(m, str)]
    return to_jsonable({**keyed,
                        "implementation": str(table["implementation"].iloc[0]),
                        "se_method": methods[0] if methods else None,
                        "roc": curves,
                        "table": table})


def calibration_at(df: pd.DataFrame, time: str, event: str, lp: str,
                   times: Sequence[float], groups: int = 3) -> list[dict[str, Any]]:
    """Calibration at each time: mean predicted versus Kaplan-Meier observed event
    probability in ``groups`` equal-size groups of predicted risk (R ``calibration_at``).

    The prediction is 1 - exp(-H0(t) exp(beta * lp)) from ``coxph(Surv ~ lp)`` fitted on
    ``df``. Returns records ``{"time", "group", "n", "n_events", "predicted", "observed",
    "lower", "upper"}`` (group 1 = lowest risk; 95% CI of the observed probability;
    observed None where t is beyond the group's censored last follow-up).
    """
    frame = _calibration_at(select_columns(df, [time, event, lp]), time, event, lp,
                            _times(times), int(groups))
    return to_jsonable(frame)


def predicted_risk(df: pd.DataFrame, time: str, event: str, lp: str, t: float) -> np.ndarray:
    """Each patient's predicted event probability by ``t`` from ``coxph(Surv ~ lp)`` fitted
    on ``df`` (R ``predicted_risk``; the same prediction as :func:`calibration_at`)."""
    values = _predicted_risk(select_columns(df, [time, event, lp]), time, event, lp, float(t))
    return np.atleast_1d(np.asarray(values, dtype=float))


def decision_curve(df: pd.DataFrame, time: str, event: str, risk_at_t: str, t: float,
                   thresholds: Sequence[float]) -> list[dict[str, Any]]:
    """Net benefit at horizon ``t`` of treating patients with predicted risk >= threshold,
    against treat-all and treat-none (R ``decision_curve``).

    ``risk_at_t`` is the column of predicted event probabilities by ``t``. Returns records
    ``{"threshold", "net_benefit", "treat_all", "treat_none", "n_treated"}``.
    """
    frame = _decision_curve(select_columns(df, [time, event, risk_at_t]), time, event,
                            risk_at_t, float(t), [float(p) for p in thresholds])
    return to_jsonable(frame)
