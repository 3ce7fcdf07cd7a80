"""Decision curves for a survival outcome: typed entry point to ``rscripts/decision_curve.R``.

Net benefit with Kaplan-Meier risks: Vickers AJ, Cronin AM, Elkin EB, Gonen M (2008), BMC Med
Inform Decis Mak 8:53. Where the model's net benefit exceeds both treating all and treating none, counted
over the thresholds with a tolerance (two equal net benefits computed along different paths differ by
~1e-17; that is a tie, not a benefit), overall and within the clinically sensible threshold range that
the protocol states in advance (Vickers AJ, van Calster B, Steyerberg EW (2019), Diagn Progn Res 3:18:
"the range of threshold probabilities ... should be specified before the analysis")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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



NET_BENEFIT_TOLERANCE = 1e-9
"""A net benefit must exceed another by more than this to count as higher (float ties are ~1e-17)."""


def beats_both(row: Mapping[str, Any], tolerance: float = NET_BENEFIT_TOLERANCE) -> bool:
    """Whether the model's net benefit exceeds treating none and (where defined) treating all by
    more than ``tolerance``; an undefined model net benefit never does."""
    model, treat_all = row.get("net_benefit"), row.get("treat_all")
    if model is None:
        return False
    return model - (row.get("treat_none") or 0.0) > tolerance and (treat_all is None or model - treat_all > tolerance)


def net_benefit_summary(rows: Sequence[Mapping[str, Any]], threshold_range: Sequence[float] | None = None,
                        tolerance: float = NET_BENEFIT_TOLERANCE) -> dict[str, Any]:
    """Thresholds of one decision curve where the model beats both treating all and treating none.

    Returns ``{"n_thresholds", "n_better", "lowest", "highest", "tolerance", "range", "n_in_range",
    "n_better_in_range"}``: ``lowest``/``highest`` such threshold (None when
    there is none); ``range`` the protocol's [low, high] (inclusive; None when not stated, and
    then the two in-range counts are None).
    """
    better = [float(row["threshold"]) for row in rows if beats_both(row, tolerance)]
    summary: dict[str, Any] = {"n_thresholds": len(rows), "n_better": len(better),
                               "lowest": min(better) if better else None, "highest": max(better) if better else None,
                               "tolerance": tolerance, "range": None, "n_in_range": None, "n_better_in_range": None}
    if threshold_range is not None:
        low, high = float(threshold_range[0]), float(threshold_range[1])
        summary.update({"range": [low, high],
                        "n_in_range": sum(low <= float(row["threshold"]) <= high for row in rows),
                        "n_better_in_range": sum(low <= p <= high for p in better)})
    return summary
