"""Decision curves for a survival outcome: typed entry point to ``rscripts/decision_curve.R``.

Net benefit with Kaplan-Meier risks: Vickers AJ, Cronin AM, Elkin EB, Gonen M (2008), BMC Med
Inform Decis Mak 8:53."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.statistics.r_inputs import select_columns

_decision_curve = r_function("decision_curve", "decision_curve")


def decision_curve(df: pd.DataFrame, time: str, event: str, risk_at_t: str, t: float,
                   thresholds: Sequence[float]) -> list[dict[str, Any]]:
    """Net benefit at horizon ``t`` of treating patients with predicted risk >= threshold,
    against treat-all and treat-none (R ``decision_curve``).

    ``risk_at_t`` is the column of predicted event probabilities by ``t``. Returns records
    ``{"threshold", "net_benefit", "treat_all", "treat_none", "n_treated"}``.
    """
    frame = _decision_curve(select_columns(df, [time, event, risk_at_t]), time, event,
                            risk_at_t, float(t), [float(p) for p in thresholds])
    return to_jsonable(frame)

