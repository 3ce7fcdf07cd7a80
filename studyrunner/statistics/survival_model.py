"""Cox models and risk-score evaluation: typed Python entry points to ``rscripts/cox.R``
and ``rscripts/evaluation.R``.

The statistics are computed in R (``survival`` package); this module selects the columns
R needs, calls the R functions through :mod:`studyrunner.rbridge` and shapes the results
into plain, JSON-serialisable Python (NaN/NA -> ``None``).

Methods: Cox DR (1972), J R Stat Soc B 34:187-220, Efron ties (Efron B (1977), JASA
72:557-565); Harrell's C (Harrell FE et al. (1996), Stat Med 15:361-387); log-rank test
(Mantel N (1966), Cancer Chemother Rep 50:163-170); Kaplan-Meier (Kaplan EL, Meier P (1958),
JASA 53:457-481). See the R scripts for the details of each computation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.errors import InputError
from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function

GROUP_CURVE_COUNTS = ("risk_table.low", "risk_table.high")
"""Whole-number entries of a low/high-group result of evaluation.R (numbers at risk)."""

_univariate_cox_screen = r_function("cox", "univariate_cox_screen")
_fit_cox = r_function("cox", "fit_cox", counts=("n", "n_events"))
_cox_linear_predictor = r_function("cox", "cox_linear_predictor")
_evaluate_risk_score = r_function("evaluation", "evaluate_risk_score",
                                  counts=("n_events", "groups.n", "groups.n_events",
                                          *GROUP_CURVE_COUNTS))

KM_COLUMNS = ("time", "surv", "lower", "upper", "n_risk", "n_event", "n_censor")
"""Columns of each Kaplan-Meier step table in :func:`evaluate_risk_score`'s ``km``."""


def select_columns(df: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """The named columns of ``df`` (each once, in order); names the missing ones if any."""
    wanted = list(dict.fromkeys(columns))
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise KeyError(f"column(s) not found in data: {missing}")
    return df[wanted]


def input_columns(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """:func:`select_columns` for functions whose bad input is an InputError."""
    try:
        return select_columns(df, columns)
    except KeyError as error:
        raise InputError(error.args[0]) from error


def text_columns_for_r(frame: pd.DataFrame) -> pd.DataFrame:
    """Non-numeric columns as text with None for a missing value (rpy2 converts a column
    mixing str and NaN only through a warning and a fallback)."""
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            frame[column] = [None if pd.isna(v) else str(v) for v in values.astype(object)]
    return frame


def levels_for_r(levels: Mapping[str, Sequence[Any]] | None) -> dict[str, list[Any]] | None:
    """Categorical levels per column (reference first) as R's named list, or None."""
    if not levels:
        return None
    return {str(column): list(values) for column, values in levels.items()}


def as_list(value: Any) -> list[Any]:
    """R's length-one vectors come back as scalars and empty ones as None: always a list."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    return [value]


def screen_features(df: pd.DataFrame, time: str, event: str, features: Sequence[str],
                    p_threshold: float = 0.05) -> pd.DataFrame:
    """Univariate Cox screening, one model per feature (R ``univariate_cox_screen``).

    Returns a DataFrame with columns ``feature, coef, hr, hr_lower, hr_upper, p, kept,
    message``: Wald p-value and 95% CI, ``kept`` = p < ``p_threshold``; a constant or
    failing feature has p = NaN, kept = False and the reason in ``message``.
    """
    return _univariate_cox_screen(select_columns(df, [time, event, *features]), time, event,
                                  list(features), float(p_threshold))


def fit_cox(df: pd.DataFrame, time: str, event: str,
            covariates: Sequence[str]) -> dict[str, Any]:
    """Multivariable Cox model with Efron ties (R ``fit_cox``).

    Returns ``{"coefficients": [{"term", "coef", "se", "hr", "hr_lower", "hr_upper", "z",
    "p"}, ...], "concordance", "concordance_se", "loglik", "loglik_null", "aic", "n",
    "n_events"}``; ``loglik`` is the partial log-likelihood at the estimate, ``n`` the
    number of complete cases used.
    """
    return to_jsonable(_fit_cox(select_columns(df, [time, event, *covariates]), time, event,
                                list(covariates)))


def linear_predictor(coefs: Mapping[str, float], df: pd.DataFrame) -> np.ndarray:
    """Linear predictor sum_j coef_j * x_j of a frozen Cox model on ``df`` (uncentered).

    One value per row of ``df`` (NaN where a covariate is missing). Cut-offs must be set on
    this same scale (R ``cox_linear_predictor`` explains why).
    """
    values = _cox_linear_predictor(dict(coefs), select_columns(df, coefs.keys()))
    return np.atleast_1d(np.asarray(values, dtype=float))


def evaluate_risk_score(df: pd.DataFrame, time: str, event: str, score_col: str,
                        cutoff: float, km_times: Sequence[float]) -> dict[str, Any]:
    """Discrimination of a risk score and separation of its two risk groups
    (R ``evaluate_risk_score``); high-risk = score > ``cutoff``.

    Returns::

        {"n", "n_events", "cutoff",
         "c_index", "c_se", "c_lower", "c_upper",          # Harrell's C, 95% CI
         "groups": {"low": {"n", "n_events"}, "high": {...}},
         "hr", "hr_lower", "hr_upper", "hr_p", "hr_reason",  # Cox, high vs low
         "logrank_chisq", "logrank_p", "logrank_reason",
         "km": {"low": {"time": [...], "surv": [...], "lower", "upper", "n_risk",
                        "n_event", "n_censor"}, "high": {...}},
         "risk_table": {"times": [...], "low": [...], "high": [...]}}  # numbers at risk

    ``*_reason`` is None unless the value could not be estimated (empty group, no events).
    """
    result = _evaluate_risk_score(select_columns(df, [time, event, score_col]), time, event,
                                  score_col, float(cutoff), [float(t) for t in km_times])
    shaped = shape_group_curves(result)
    shaped["cutoff"] = float(cutoff)
    shaped["groups"] = {row.group: {"n": row.n, "n_events": row.n_events}
                        for row in result["groups"].itertuples()}
    return to_jsonable(shaped)


def shape_group_curves(result: dict[str, Any]) -> dict[str, Any]:
    """R's low/high-group result as plain Python: every scalar entry as is, the Kaplan-Meier
    step tables as lists per group and the numbers-at-risk table as {"times", "low", "high"}
    (the caller shapes ``groups``; the bridge made the numbers at risk int, see
    :data:`GROUP_CURVE_COUNTS`)."""
    risk_table = result["risk_table"]
    shaped = {key: value for key, value in result.items() if key not in ("groups", "km", "risk_table")}
    shaped["km"] = {group: {column: steps[column].tolist() for column in KM_COLUMNS}
                    for group, steps in result["km"].items()}
    shaped["risk_table"] = {"times": risk_table["time"].astype(float).tolist(),
                            **{group: risk_table[group].tolist() for group in ("low", "high")}}
    return shaped
