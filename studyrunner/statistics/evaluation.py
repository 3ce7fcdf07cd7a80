"""Discrimination and stratification of one risk score: typed entry point to
``rscripts/evaluation.R``.

Harrell's C with its CI (Harrell FE et al. (1996), Stat Med 15:361-387), the Cox hazard ratio
of high vs low risk, the log-rank test (Mantel N (1966), Cancer Chemother Rep 50:163-170),
Kaplan-Meier curves (Kaplan EL, Meier P (1958), JASA 53:457-481) and numbers at risk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.statistics.r_inputs import select_columns

GROUP_CURVE_COUNTS = ("risk_table.low", "risk_table.high")
"""Whole-number entries of a low/high-group result of evaluation.R (numbers at risk)."""


_evaluate_risk_score = r_function("evaluation", "evaluate_risk_score",
                                  counts=("n_events", "groups.n", "groups.n_events",
                                          *GROUP_CURVE_COUNTS))


KM_COLUMNS = ("time", "surv", "lower", "upper", "n_risk", "n_event", "n_censor")
"""Columns of each Kaplan-Meier step table in :func:`evaluate_risk_score`'s ``km``."""


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

