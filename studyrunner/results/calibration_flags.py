"""Flag rules (``results.flags``) of the radiomics model's calibration and cross-validation.

Why: a calibration slope whose interval excludes one means predictions too extreme or too
modest (van Houwelingen HC (2000), Stat Med 19:3401-3415); apparent calibration on the
development cohort is optimistic, and cross-validated slopes all below one show it
(Steyerberg EW (2019), Clinical Prediction Models, 2nd ed., Section 17.2); fits that failed or
selected no feature leave patients without an out-of-fold prediction; a final-model feature
that the development rerun in the folds seldom selects marks an unstable selection (Sauerbrei
W, Schumacher M (1992), Stat Med 11:2093-2109, on bootstrap inclusion frequencies).
"""

from __future__ import annotations

from studyrunner.report.formatting import fmt_ci, fmt_int, fmt_median_range, fmt_pct
from studyrunner.results.models import CrossValidatedCalibration, CrossValidation, Flag, FrozenCalibration, Results

UNSTABLE_SELECTION_PERCENT = 50.0
"""A final-model feature selected in fewer than this share of the cross-validation fits is flagged."""


def _cross_validation(results: Results) -> CrossValidation | None:
    return results.cross_validation if isinstance(results.cross_validation, CrossValidation) else None


def slope_excludes_one(results: Results) -> list[Flag]:
    """A cohort other than the development one (where the slope is apparent) whose calibration
    slope's confidence interval excludes one."""
    evaluation = results.evaluation if isinstance(results.evaluation, dict) else {}
    flags = []
    for name, ev in evaluation.items():
        cal = ev.calibration
        if name == "training" or not isinstance(cal, FrozenCalibration):
            continue
        slope = cal.slope
        if slope.lower is not None and slope.upper is not None and not slope.lower <= 1 <= slope.upper:
            kind = "too extreme" if slope.upper < 1 else "too modest"
            flags.append(Flag(code="calibration_slope", severity="warning", section="calibration",
                              message=f"{ev.cohort_label}: the radiomics model's calibration slope is "
                                      f"{fmt_ci(slope.slope, slope.lower, slope.upper)}, its interval excludes "
                                      f"one: the predicted risks are {kind} in this cohort"))
    return flags


def optimistic_calibration(results: Results) -> list[Flag]:
    """Every repeat's cross-validated calibration slope below one: the apparent calibration
    on the development cohort is optimistic (the model is overfitted)."""
    cv = _cross_validation(results)
    calibration = cv.calibration if cv is not None else None
    if not isinstance(calibration, CrossValidatedCalibration) or calibration.slope is None:
        return []
    summary = calibration.slope
    if summary.max is None or summary.max >= 1:
        return []
    return [Flag(code="optimistic_calibration", severity="warning", section="calibration",
                 message=f"The cross-validated calibration slope is {fmt_median_range(summary, 2)} (median and range "
                         "over the repeats), below one in every repeat: out of sample the radiomics model's "
                         "predictions are too extreme, and its apparent calibration on the development cohort "
                         "is optimistic")]


def cross_validation_failures(results: Results) -> list[Flag]:
    """Cross-validation fits that failed (among them those whose development selected no feature)."""
    cv = _cross_validation(results)
    if cv is None or not cv.n_failed:
        return []
    no_features = (f", {fmt_int(cv.n_no_features)} because no feature was selected"
                   if cv.n_no_features else "")
    return [Flag(code="cross_validation_failures", severity="caution", section="cross-validation",
                 message=f"{fmt_int(cv.n_failed)} of the {fmt_int(cv.n_fits)} cross-validation fits failed"
                         f"{no_features}: their validation patients have no out-of-fold prediction, so the "
                         "cross-validated figures leave them out")]


def unstable_selection(results: Results) -> list[Flag]:
    """Final-model features that the development rerun in the cross-validation folds seldom selected."""
    cv = _cross_validation(results)
    if cv is None:
        return []
    rare = [f for f in cv.selection_frequency if f.percent is not None and f.percent < UNSTABLE_SELECTION_PERCENT]
    if not rare:
        return []
    listed = "; ".join(f"{f.feature} in {fmt_int(f.n_selected)} of {fmt_int(f.n_fits)} ({fmt_pct(f.percent)})"
                       for f in rare)
    return [Flag(code="unstable_selection", severity="caution", section="cross-validation",
                 message=f"Features of the final model that the development rerun in the cross-validation folds "
                         f"selected in fewer than half of the fits: {listed}; the selection is unstable")]


CALIBRATION_RULES = [slope_excludes_one, optimistic_calibration, cross_validation_failures, unstable_selection]
"""Appended to ``results.flags.RULES``."""
