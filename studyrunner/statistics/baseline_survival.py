"""The baseline survival S0(t) of a frozen Cox model: typed entry point to
``rscripts/baseline_survival.R``.

Breslow's estimator of the cumulative baseline hazard at linear predictor 0 (Breslow NE
(1972), J R Stat Soc B 34:216-217, in the discussion of Cox DR (1972), J R Stat Soc B
34:187-220), S0(t) = exp(-H0(t)), with the coefficients frozen (``coxph(... ~ offset(lp))``
then ``survfit(..., newdata = data.frame(lp = 0), ctype = 1)``); why Breslow's and not the
Efron-adjusted one is explained in the R script. A patient with linear predictor lp then has
S(t | lp) = S0(t)^exp(lp).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.statistics.r_inputs import input_columns

_baseline_survival = r_function("baseline_survival", "baseline_survival", input_errors=True,
                                counts=("n", "n_events", "table.n_risk", "table.n_event"))


def baseline_survival(df: pd.DataFrame, time: str, event: str, lp: str) -> dict[str, Any]:
    """Breslow's baseline survival at ``lp`` = 0 of the development cohort ``df`` (R
    ``baseline_survival``).

    ``lp`` names the column of the frozen model's (uncentred) linear predictor. Returns::

        {"time": [...], "survival": [...], "cumulative_hazard": [...], "n_risk": [...],
         "n_event": [...], "n", "n_events", "last_follow_up", "estimator"}

    one entry per distinct event time (the times where S0 steps down), increasing; S0 is 1
    before the first and constant after the last (it is not estimated beyond
    ``last_follow_up``). Bad input (a missing column or value) raises InputError naming it.
    """
    result = _baseline_survival(input_columns(df, [time, event, lp]), time, event, lp)
    table: pd.DataFrame = result["table"]
    steps = {column: [to_jsonable(v) for v in table[column].tolist()]
             for column in ("time", "survival", "cumulative_hazard", "n_risk", "n_event")}
    return {**steps, **{key: to_jsonable(result[key])
                        for key in ("n", "n_events", "last_follow_up", "estimator")}}
