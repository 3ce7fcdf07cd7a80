"""What the calibration, decision-curve and cross-validation sections show of the radiomics model.

The calibration is that of the frozen predicted risk 1 - S0(t)^exp(lp) (S0 the training cohort's
Breslow baseline; ``statistics.frozen_calibration``), apparent on the training cohort, honest on the
test cohort, and cross-validated (pooled out-of-fold predictions; ``statistics.radiomics_model.
cross_validation``). Decision-curve counts are those the statistics stage recorded
(``statistics.decision_curve.net_benefit_summary``, with its tolerance for float ties).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from studyrunner.registry import time_key
from studyrunner.results.models import (
    CalibrationBootstrap,
    CohortEvaluation,
    CrossValidatedCalibration,
    CrossValidation,
    DecisionSummary,
    FrozenCalibration,
    RiskScores,
)


def frozen(record: Any) -> FrozenCalibration | None:
    """The record when it is a frozen calibration (not a NotRun or None)."""
    return record if isinstance(record, FrozenCalibration) else None


def first_bootstrap(records: Iterable[Any]) -> CalibrationBootstrap | None:
    """The first bootstrap record of these calibration records (the methods text's replicates and
    level: every calibration of a run draws the same number), or None when none has one."""
    for record in records:
        calibration = frozen(record)
        for at in calibration.at.values() if calibration is not None else ():
            if at.bootstrap is not None:
                return at.bootstrap
    return None


def risk_score_bootstrap(risk: RiskScores | None) -> CalibrationBootstrap | None:
    """The first bootstrap record of the CNN scores' calibrations (:func:`first_bootstrap`)."""
    if risk is None:
        return None
    return first_bootstrap(cal for block in risk.scores.values() for cal in block.calibration.values())


def decision_summary(summaries: dict[str, DecisionSummary]) -> list[dict[str, Any]]:
    """Per time (recorded order): {"time": key, "summary": DecisionSummary}."""
    return [{"time": key, "summary": summary} for key, summary in summaries.items()]


def cv_calibration(cv: CrossValidation | None) -> CrossValidatedCalibration | None:
    """The cross-validated calibration when it was recorded."""
    record = cv.calibration if cv is not None else None
    return record if isinstance(record, CrossValidatedCalibration) else None


def apparent_and_cross_validated(training: CohortEvaluation | None,
                                 cv: CrossValidation | None) -> list[dict[str, Any]]:
    """Rows of the apparent (training) beside the cross-validated calibration: first the slope, then
    the O/E at each time. Each row: {"measure", "time" (None for the slope), "apparent" (an Interval
    or CalibrationSlope-shaped Estimate, or None), "cross_validated" (FoldSummary or None)}."""
    apparent = frozen(training.calibration) if training is not None else None
    crossed = cv_calibration(cv)
    if apparent is None and crossed is None:
        return []
    slope = apparent.slope if apparent is not None else None
    rows: list[dict[str, Any]] = [{
        "measure": "slope", "time": None,
        "apparent": {"estimate": slope.slope, "lower": slope.lower, "upper": slope.upper} if slope else None,
        "cross_validated": crossed.slope if crossed is not None else None}]
    times = list(crossed.times) if crossed is not None else [at.t for at in apparent.at.values()] if apparent else []
    for t in times:
        key = time_key(t)
        at = apparent.at.get(key) if apparent is not None else None
        rows.append({"measure": "oe", "time": t, "apparent": at.oe if at is not None else None,
                     "cross_validated": crossed.oe.get(key) if crossed is not None else None})
    return rows


def calibration_methods(evaluation: dict[str, CohortEvaluation]) -> dict[str, Any]:
    """What the methods text says about the calibration: ``calibration_times`` and
    ``calibration_groups`` (of the first cohort with a frozen calibration; empty/None without) and
    ``calibration_bootstrap`` (:func:`first_bootstrap`)."""
    first = next((cal for ev in evaluation.values() if (cal := frozen(ev.calibration)) is not None), None)
    if first is None:
        return {"calibration_times": [], "calibration_groups": None, "calibration_bootstrap": None}
    ats = list(first.at.values())
    return {"calibration_times": [at.t for at in ats], "calibration_groups": len(ats[0].groups) if ats else None,
            "calibration_bootstrap": first_bootstrap(ev.calibration for ev in evaluation.values())}
