"""Performance of a prognostic score beyond the C-index: time-dependent ROC/AUC, calibration,
decision curves, and the maximally selected cut-off with its two risk groups.

Typed Python entry points to ``rscripts/timeroc.R``, ``calibration.R``, ``decision_curve.R``
and ``cutpoint.R``; the statistics are computed in R and returned as plain,
JSON-serialisable Python (NaN/NA -> ``None``).

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
    cut-off             maximally selected log-rank statistic (Lausen B, Schumacher M (1992),
                        Biometrics 48:73-85; maxstat), groups compared by Kaplan-Meier medians
                        (Brookmeyer R, Crowley J (1982), Biometrics 38:29-41), log-rank test
                        and Cox hazard ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.rbridge import json_ready, r_function
from studyrunner.statistics.survival_model import select_columns, shape_group_curves

_time_dependent_auc = r_function("timeroc", "time_dependent_auc")
_calibration_at = r_function("calibration", "calibration_at")
_predicted_risk = r_function("calibration", "predicted_risk")
_decision_curve = r_function("decision_curve", "decision_curve")
_maxstat_cutpoint = r_function("cutpoint", "maxstat_cutpoint")
_groups_by_cutpoint = r_function("cutpoint", "groups_by_cutpoint")

MAXSTAT_PMETHODS = ("Lau94", "Lau92", "HL", "exactGauss", "condMC")
"""p-value approximations of :func:`maxstat_cutpoint` (``condMC`` is Monte-Carlo)."""


def time_key(t: float) -> str:
    """The key of time ``t`` in the result dicts: ``"1"`` for 1.0, ``"365.25"`` otherwise."""
    t = float(t)
    return str(int(t)) if t.is_integer() else repr(t)


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
    return json_ready({**keyed,
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
    return json_ready(frame)


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
    return json_ready(frame)


def maxstat_cutpoint(df: pd.DataFrame, time: str, event: str, marker: str,
                     pmethod: str = "Lau94", seed: int | None = None) -> dict[str, Any]:
    """Cut-off of ``marker`` by the maximally selected log-rank statistic
    (R ``maxstat_cutpoint``, maxstat::maxstat.test).

    Returns ``{"cutpoint", "statistic", "p_value", "pmethod", "n", "n_events"}``; the high
    group is marker > cutpoint. ``seed`` seeds R for the Monte-Carlo ``condMC`` p-value.
    """
    if pmethod not in MAXSTAT_PMETHODS:
        raise ValueError(f"pmethod must be one of {', '.join(MAXSTAT_PMETHODS)}, "
                         f"not {pmethod!r}")
    result = _maxstat_cutpoint(select_columns(df, [time, event, marker]), time, event,
                               marker, pmethod, r_seed=seed)
    result["n"] = int(result["n"])
    result["n_events"] = int(result["n_events"])
    return json_ready(result)


def groups_by_cutpoint(df: pd.DataFrame, time: str, event: str, marker: str,
                       cutpoint: float, km_times: Sequence[float] = ()) -> dict[str, Any]:
    """Survival of the low (marker <= cutpoint) and high (marker > cutpoint) groups
    (R ``groups_by_cutpoint``).

    Returns::

        {"cutpoint",
         "groups": {"low": {"n", "n_events", "median", "median_lower", "median_upper"},
                    "high": {...}},                  # KM median and its 95% CI
         "hr", "hr_lower", "hr_upper", "hr_p", "hr_reason",   # Cox, high vs low
         "logrank_chisq", "logrank_p", "logrank_reason",
         "km": {"low": {"time": [...], "surv", "lower", "upper", "n_risk", "n_event",
                        "n_censor"}, "high": {...}},
         "risk_table": {"times": [...], "low": [...], "high": [...]}}

    A median (or CI bound) the Kaplan-Meier curve does not reach is None.
    """
    result = _groups_by_cutpoint(select_columns(df, [time, event, marker]), time, event,
                                 marker, float(cutpoint), [float(t) for t in km_times])
    groups = result["groups"]
    shaped = shape_group_curves(result)
    shaped["groups"] = {
        row["group"]: {"n": int(row["n"]), "n_events": int(row["n_events"]),
                       "median": row["median"], "median_lower": row["median_lower"],
                       "median_upper": row["median_upper"]}
        for row in groups.to_dict(orient="records")}
    return json_ready(shaped)
