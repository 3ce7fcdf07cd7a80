"""External validation of a frozen Cox model: typed entry points to ``rscripts/validation.R``
and the frozen model's predicted risk.

The score is given (the bundle's linear predictor, or the risk computed from it with
:func:`predicted_risk_from_baseline`); nothing is refitted except the one-coefficient model
of the calibration slope. Methods (details and citations in the R script): Harrell's C
(Harrell et al. 1996) and Uno's IPCW C truncated at tau (Uno et al. 2011, Stat Med
30:1105-1117) by survival::concordance; Kaplan-Meier observed risk and the O/E ratio (Debray
et al. 2017, BMJ 356:i6460); IPCW Brier score (Graf et al. 1999, Stat Med 18:2529-2545) and
index of prediction accuracy (Kattan & Gerds 2018); calibration slope (van Houwelingen 2000).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.errors import InputError
from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.statistics.r_inputs import input_columns

_concordance_indices = r_function("validation", "concordance_indices", input_errors=True,
                                  counts=("n", "n_events", "n_events_tau"))
_calibration_at = r_function("validation", "calibration_at", input_errors=True,
                             counts=("n", "n_events", "groups.group", "groups.n",
                                     "groups.n_events"))
_smoothed_calibration = r_function("validation", "smoothed_calibration", input_errors=True)
_calibration_slope = r_function("validation", "calibration_slope", input_errors=True,
                                counts=("n", "n_events"))


def concordance_indices(df: pd.DataFrame, time: str, event: str, lp: str,
                        tau: float) -> dict[str, Any]:
    """Harrell's C and Uno's C truncated at ``tau`` of the frozen linear predictor ``lp``
    (higher = higher risk), R ``concordance_indices``.

    Returns ``{"harrell": {"estimate", "lower", "upper", "se"}, "uno": {...}, "tau", "n",
    "n_events", "n_events_tau"}`` (95% normal intervals; ``n_events_tau``: events at or
    before tau). Bad input raises InputError naming the column.
    """
    return to_jsonable(_concordance_indices(input_columns(df, [time, event, lp]), time, event,
                                            lp, float(tau)))


def calibration_at(df: pd.DataFrame, time: str, event: str, predicted_risk_column: str,
                   t: float, groups: int = 5) -> dict[str, Any]:
    """Calibration at ``t`` of frozen predicted event probabilities, overall and in
    ``groups`` quantile groups of predicted risk, and the IPCW Brier score of the
    predictions and of the null (Kaplan-Meier) model (R ``calibration_at``).

    Returns::

        {"t", "n", "n_events",                          # events at or before t
         "observed": {"estimate", "lower", "upper", "se"},  # 1 - KM(t), 95% CI, se of KM
         "predicted",                                   # mean predicted risk (expected)
         "oe": {"estimate", "lower", "upper"},          # observed / expected
         "brier": {"model", "null", "ipa"},             # ipa = 1 - model / null
         "groups": [{"group", "n", "n_events", "predicted", "observed", "lower",
                     "upper"}, ...]}                    # group 1 = lowest predicted risk

    A group's ``observed`` is None when its last follow-up is censored before t. Bad input
    (missing column or value, risk outside [0, 1], t beyond the follow-up) raises InputError.
    """
    columns = [time, event, predicted_risk_column]
    return to_jsonable(_calibration_at(input_columns(df, columns), time, event,
                                       predicted_risk_column, float(t), int(groups)))


def smoothed_calibration(df: pd.DataFrame, time: str, event: str, predicted_risk_column: str,
                         t: float, n_grid: int = 50) -> dict[str, Any]:
    """Smoothed calibration at ``t`` (Austin, Harrell & van Klaveren, Stat Med 2020): the
    observed risk by t as a spline function of the predicted risk (R ``smoothed_calibration``).

    Returns ``{"t", "ici", "e50", "e90", "emax", "curve": {"predicted": [...], "observed":
    [...]}}``: the integrated calibration index (mean absolute difference between smoothed
    observed and predicted risk), its median, 90th percentile and maximum, and the curve.
    """
    result = _smoothed_calibration(input_columns(df, [time, event, predicted_risk_column]), time, event,
                                   predicted_risk_column, float(t), int(n_grid))
    curve = result["curve"]
    return to_jsonable({**{k: result[k] for k in ("t", "ici", "e50", "e90", "emax")},
                        "curve": {"predicted": curve["predicted"].tolist(), "observed": curve["observed"].tolist()}})


def calibration_slope(df: pd.DataFrame, time: str, event: str, lp: str) -> dict[str, Any]:
    """Calibration slope: coefficient of the frozen ``lp`` in ``coxph(Surv ~ lp)`` on this
    cohort, its Wald 95% CI and the Wald test of slope = 1 (R ``calibration_slope``).

    Returns ``{"slope", "se", "lower", "upper", "p_unity", "n", "n_events"}``.
    """
    return to_jsonable(_calibration_slope(input_columns(df, [time, event, lp]), time, event,
                                          lp))


def predicted_risk_from_baseline(baseline_times: Sequence[float] | np.ndarray,
                                 baseline_survival: Sequence[float] | np.ndarray,
                                 lp: float | Sequence[float] | np.ndarray,
                                 t: float) -> np.ndarray:
    """Predicted event probability by ``t`` of a frozen Cox model: 1 - S0(t) ** exp(lp).

    S0 is the baseline survival of lp = 0 (the bundle's uncentred linear predictor), a
    right-continuous step function: its value at the last of ``baseline_times`` <= t, and
    1 before the first. Returns a 1-D array, one risk per value of ``lp``.
    """
    times = np.asarray(baseline_times, dtype=float)
    survival = np.asarray(baseline_survival, dtype=float)
    scores = np.atleast_1d(np.asarray(lp, dtype=float))
    _check_baseline(times, survival)
    if not np.all(np.isfinite(scores)):
        raise InputError("lp: every linear predictor must be a finite number")
    if not np.isfinite(t):
        raise InputError(f"t: must be a finite time, got {t}")
    steps = int(np.searchsorted(times, t, side="right"))
    s0 = 1.0 if steps == 0 else float(survival[steps - 1])
    return 1.0 - s0 ** np.exp(scores)


def _check_baseline(times: np.ndarray, survival: np.ndarray) -> None:
    """InputError unless the baseline is a non-empty, increasing step function in [0, 1]."""
    if times.ndim != 1 or times.shape != survival.shape or times.size == 0:
        raise InputError("baseline_times, baseline_survival: need two non-empty 1-D arrays "
                         f"of the same length, got shapes {times.shape} and {survival.shape}")
    if not (np.all(np.isfinite(times)) and np.all(np.diff(times) > 0)):
        raise InputError("baseline_times: must be finite and strictly increasing")
    if not (np.all((survival >= 0) & (survival <= 1)) and np.all(np.diff(survival) <= 0)):
        raise InputError("baseline_survival: must lie in [0, 1] and not increase")
