"""Calibration of a Cox score at fixed times: typed entry points to ``rscripts/calibration.R``.

Predicted risk 1 - exp(-H0(t) exp(beta lp)) from a Cox model of the outcome on the score,
against the Kaplan-Meier risk per quantile group (Harrell FE (2015), Regression Modeling
Strategies, Section 20.12)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.statistics.r_inputs import checked_times, select_columns

_calibration_at = r_function("calibration", "calibration_at")


_predicted_risk = r_function("calibration", "predicted_risk")


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
                            checked_times(times), int(groups))
    return to_jsonable(frame)


def predicted_risk(df: pd.DataFrame, time: str, event: str, lp: str, t: float) -> np.ndarray:
    """Each patient's predicted event probability by ``t`` from ``coxph(Surv ~ lp)`` fitted
    on ``df`` (R ``predicted_risk``; the same prediction as :func:`calibration_at`)."""
    values = _predicted_risk(select_columns(df, [time, event, lp]), time, event, lp, float(t))
    return np.atleast_1d(np.asarray(values, dtype=float))

