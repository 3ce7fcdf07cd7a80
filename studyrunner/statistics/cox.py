"""Cox proportional-hazards models: typed entry points to ``rscripts/cox.R``.

Univariate Cox screening of candidate features, the multivariable fit (Efron ties) and the
linear predictor of a frozen model. Methods: Cox DR (1972), J R Stat Soc B 34:187-220;
Efron B (1977), JASA 72:557-565."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.statistics.r_inputs import select_columns

_univariate_cox_screen = r_function("cox", "univariate_cox_screen")


_fit_cox = r_function("cox", "fit_cox", counts=("n", "n_events"))


_cox_linear_predictor = r_function("cox", "cox_linear_predictor")


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

