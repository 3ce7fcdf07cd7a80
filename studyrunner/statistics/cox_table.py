"""Univariate and multivariable Cox tables of covariates: typed Python entry point to
``rscripts/cox_table.R``.

Method: Cox DR (1972), J R Stat Soc B 34:187-220, Efron ties; Wald tests, and the
likelihood-ratio test over the levels of a categorical covariate; details in the R script.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from statistics import NormalDist
from typing import Any

import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.statistics.r_inputs import as_list, input_columns, levels_for_r, text_columns_for_r

_cox_table = r_function("cox_table", "cox_table", input_errors=True,
                        counts=("n", "n_events", "n_excluded"))


def cox_table(df: pd.DataFrame, time: str, event: str, covariates: Sequence[str],
              categorical_levels: Mapping[str, Sequence[Any]] | None = None,
              p_enter: float = 0.05, force: Sequence[str] = ()) -> dict[str, Any]:
    """Univariate Cox model of each covariate, and a multivariable model of those with
    univariate p < ``p_enter`` plus those in ``force`` (R ``cox_table``).

    ``categorical_levels`` maps a column to its levels, reference first; such a covariate
    gives one row per non-reference level (its entry p is the likelihood-ratio test over its
    levels when it has more than two). Each univariate model uses the rows where the
    covariate is known; the multivariable model the complete cases.

    Returns::

        {"univariate": [{"covariate", "level", "reference", "n_level", "n", "n_events",
                         "coef", "se", "hr", "hr_lower", "hr_upper", "p", "p_overall",
                         "p_overall_test", "entered", "message"}],
         "multivariable": [{"covariate", "level", "reference", "coef", "se", "hr",
                            "hr_lower", "hr_upper", "p", "message"}],
         "entered": [covariates], "n", "n_events", "n_excluded", "p_enter", "note"}

    ``level``/``reference`` are None for a numeric covariate (HR per unit). Bad input
    raises InputError naming the column and rows.
    """
    frame = text_columns_for_r(input_columns(df, [time, event, *covariates]))
    result = _cox_table(frame, time, event, list(covariates), levels_for_r(categorical_levels),
                        float(p_enter), list(force) or None)
    result["entered"] = as_list(result["entered"])
    return to_jsonable(result)


def per_sd(coef: float | None, se: float | None, sd: float | None, level: float = 0.95) -> dict[str, float | None]:
    """The hazard ratio per SD of a numeric term: exp(coef * SD) with the Wald limits
    exp((coef -/+ z se) * SD), the same interval as the per-unit one rescaled (Harrell FE
    (2015), Regression Modeling Strategies, 2nd ed., Section 5.1: effects on a scale a reader
    can compare across predictors). None where the coefficient, its SE or the SD is missing."""
    keys = ("sd", "hr_per_sd", "hr_per_sd_lower", "hr_per_sd_upper")
    if coef is None or sd is None or not math.isfinite(sd):
        return dict.fromkeys(keys) | {"sd": sd}
    z = NormalDist().inv_cdf(0.5 + level / 2)
    limits = (None, None) if se is None else (math.exp((coef - z * se) * sd), math.exp((coef + z * se) * sd))
    return {"sd": sd, "hr_per_sd": math.exp(coef * sd), "hr_per_sd_lower": limits[0], "hr_per_sd_upper": limits[1]}


def add_per_sd(rows: Iterable[dict[str, Any]], training: pd.DataFrame, key: str = "term") -> None:
    """Add :func:`per_sd` to each row (a Cox term, a ``cox_table`` row) of a numeric column
    of ``training`` (named by ``row[key]``; a categorical level, ``row["level"]`` set, is left
    as it is); the SD is the sample SD of that column over the training cohort."""
    for row in rows:
        column = row.get(key)
        numeric = column in training and pd.api.types.is_numeric_dtype(training[column])
        if row.get("level") is not None or not numeric:
            continue
        sd = float(training[column].dropna().std(ddof=1))
        row.update(per_sd(row.get("coef"), row.get("se"), sd))
