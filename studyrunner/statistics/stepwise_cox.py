"""Cox model by stepwise AIC: typed entry point to ``rscripts/stepwise_cox.R``
(``MASS::stepAIC``, Venables WN, Ripley BD (2002), Modern Applied Statistics with S)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.statistics.r_inputs import select_columns

_stepwise_cox = r_function("stepwise_cox", "stepwise_cox", counts=("n", "n_events"))


def stepwise_cox(train: pd.DataFrame, time: str, event: str, features: Sequence[str],
                 direction: str = "both") -> dict[str, Any]:
    """Cox model by stepwise AIC, both directions, from the full model (R ``stepwise_cox``,
    ``MASS::stepAIC``); ``direction="none"`` fits the full model without a search.

    Returns ``{"features": [...kept], "coefficients": [{"term", "coef", "exp_coef",
    "exp_neg_coef", "lower", "upper", "se", "p"}, ...], "aic", "aic_full", "steps":
    [{"step", "df", "deviance", "resid_df", "resid_deviance", "aic"}, ...], "concordance",
    "n", "n_events"}``; ``lower``/``upper`` are the 95% Wald limits of exp(coef) (seed 001
    Table 2: Coef, Exp(coef), Exp(-coef), Lower.95, Upper.95).
    """
    result = _stepwise_cox(select_columns(train, [time, event, *features]), time, event,
                           list(features), direction=direction)
    result["features"] = list(result["features"] or [])
    return to_jsonable(result)

