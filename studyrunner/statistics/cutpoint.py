"""Cut-offs of a continuous marker and the two risk groups they define: typed Python entry
points to ``rscripts/cutpoint.R`` (computed in R, returned as plain JSON-ready Python).

Methods (details and formulas in the R script):
    maxstat   maximally selected log-rank statistic (Lausen B, Schumacher M (1992),
              Biometrics 48:73-85; maxstat), with the p-value corrected for the search.
    X-tile    maximal log-rank chi-square over all splits (Camp RL, Dolled-Filhart M,
              Rimm DL (2004), Clin Cancer Res 10:7252-7259), with maxstat's Lau94 p-value
              corrected for the search (Lausen, Sauerbrei & Schumacher 1994).
    groups    Kaplan-Meier medians (Brookmeyer R, Crowley J (1982), Biometrics 38:29-41),
              log-rank test and Cox hazard ratio of the low and high groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.registry import MAXSTAT_PMETHODS
from studyrunner.statistics.evaluation import GROUP_CURVE_COUNTS, shape_group_curves
from studyrunner.statistics.r_inputs import input_columns, select_columns

_maxstat_cutpoint = r_function("cutpoint", "maxstat_cutpoint", counts=("n", "n_events"))
_groups_by_cutpoint = r_function("cutpoint", "groups_by_cutpoint",
                                 counts=("groups.n", "groups.n_events", *GROUP_CURVE_COUNTS))
_xtile_cutpoint = r_function("cutpoint", "xtile_cutpoint", input_errors=True,
                             counts=("n_cutoffs", "n_low", "n_high", "min_group_size", "n",
                                     "n_events", "scan.n_low", "scan.n_high"))


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
    return to_jsonable(_maxstat_cutpoint(select_columns(df, [time, event, marker]), time,
                                         event, marker, pmethod, r_seed=seed))


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
    shaped = shape_group_curves(result)
    shaped["groups"] = {row.pop("group"): row for row in result["groups"].to_dict(orient="records")}
    return to_jsonable(shaped)


def xtile_cutpoint(df: pd.DataFrame, time: str, event: str, marker: str,
                   min_prop: float = 0.1) -> dict[str, Any]:
    """X-tile-style cut-off: the split (low: marker <= cutpoint, high: marker > cutpoint)
    with the largest log-rank chi-square among all distinct marker values leaving at least
    ceil(``min_prop`` n) patients in each group (R ``xtile_cutpoint``; Camp et al. 2004).

    Returns::

        {"cutpoint", "chisq", "p_naive", "n_cutoffs", "n_low", "n_high", "min_group_size",
         "scan": [{"cutpoint", "n_low", "n_high", "chisq", "p_naive"}],  # every candidate
         "p_corrected", "corrected_method", "maxstat_cutpoint", "maxstat_statistic",
         "corrected_reason", "n", "n_events"}

    ``p_naive`` ignores the search over ``n_cutoffs`` splits and is optimistic;
    ``p_corrected`` is maxstat's Lau94 p-value of the maximally selected standardised
    log-rank statistic over the min_prop..1-min_prop quantiles (not X-tile's Monte-Carlo
    p); maxstat's own best cut-off is reported beside it and may differ. Bad input raises
    InputError naming the column and rows.
    """
    return to_jsonable(_xtile_cutpoint(input_columns(df, [time, event, marker]), time, event,
                                       marker, float(min_prop)))
