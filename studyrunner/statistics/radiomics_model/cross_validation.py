"""Repeated K-fold cross-validation of the whole model development (seed 001).

Inside every training fold the development reruns from the start: reproducibility filter,
z-scoring, screening, learners, stepwise Cox (``develop_model``); the fold's validation
patients are scored with the frozen fold model only. So no validation patient ever reaches
a selection or estimation step (the "wrong way" of Hastie, Tibshirani & Friedman, The
Elements of Statistical Learning, 2nd ed., section 7.10.2, is avoided by construction).

Folds are stratified on the event indicator so each holds events; the time-dependent AUC
(``time_dependent_auc``) is computed on the fold's training and validation patients, and
the report gives the median and range over all fits, as seed 001 does.

Cross-validated calibration: each fold model's predicted risk 1 - S0(t)^exp(lp) of its
validation patients uses the Breslow baseline S0 of its own training fold; the out-of-fold
predictions of one repeat are pooled (every patient once) and their calibration slope (van
Houwelingen HC (2000), Stat Med 19:3401-3415) and O/E at each time (Debray TPA et al. (2017),
BMJ 356:i6460) computed, then summarised over the repeats (Steyerberg EW (2019), Clinical
Prediction Models, 2nd ed., Section 17.2: internal validation of calibration).

A fold whose development selected no feature has no model and no prediction: it is counted
(per repeat and in total) beside the fits that failed with an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from studyrunner.cluster import LOCAL, run_tasks
from studyrunner.errors import InputError
from studyrunner.protocol import StatisticsSection
from studyrunner.registry import time_key
from studyrunner.statistics.validation import calibration_at, calibration_slope, predicted_risk_from_baseline


class Developer(Protocol):
    """``develop(train_rows, reader2_rows, seed=...)``: a model with ``features`` and ``score(rows)``."""

    def __call__(self, train: pd.DataFrame, reader2: pd.DataFrame | None, *, seed: int) -> Any: ...


AucFunction = Callable[[pd.DataFrame, list[float]], dict[str, float | None]]
BaselineFunction = Callable[[pd.DataFrame], dict[str, Any]]  # scored training rows -> {"time", "survival"}

NO_FEATURES = "no feature was selected in this training fold"


def stratified_folds(events: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold number (0..folds-1) per patient; events and non-events are dealt out separately,
    each in a random order, so every fold gets a near-equal share of both."""
    assignment = np.empty(len(events), dtype=int)
    for value in (0, 1):
        members = np.flatnonzero(events == value)
        rng.shuffle(members)
        offset = int(rng.integers(folds))
        assignment[members] = (np.arange(len(members)) + offset) % folds
    return assignment


@dataclass
class FoldResult:
    repeat: int
    fold: int
    training_ids: list[str]
    validation_ids: list[str]
    features: list[str]
    auc_training: dict[str, float | None]
    auc_validation: dict[str, float | None]
    error: str | None = None
    validation_lp: list[float] | None = None
    validation_risk: dict[str, list[float]] | None = None  # time key -> risk by t, fold-training baseline
    calibration_error: str | None = None

    @property
    def no_features(self) -> bool:
        """The fold's development ran and selected no feature (no model, no prediction)."""
        return self.error == NO_FEATURES


@dataclass(frozen=True)
class FoldTask:
    """One fit: its repeat and fold, which development rows are its validation rows, its seed."""

    repeat: int
    fold: int
    validation: tuple[bool, ...]
    seed: int


@dataclass(frozen=True)
class FoldContext:
    """What every fit shares: the development rows, the second reader's rows and the functions
    (sent once to each worker of a cluster, not with every fold)."""

    data: pd.DataFrame
    reader2: pd.DataFrame | None
    times: list[float]
    develop: Developer
    auc: AucFunction
    calibration_times: list[float]
    baseline: BaselineFunction | None


def cross_validate(data: pd.DataFrame, reader2: pd.DataFrame | None, event: str, plan: StatisticsSection,
                   seed: int, develop: Developer, auc: AucFunction, workers: int = 1,
                   progress: Callable[[int, int], None] | None = None,
                   baseline: BaselineFunction | None = None, cluster: str = LOCAL) -> list[FoldResult]:
    """Run ``plan.evaluation.cross_validation`` on ``data`` (the development cohort).

    ``develop(train_rows, reader2_rows, seed=...)`` returns a model with ``features`` and
    ``score(rows)``; ``auc(rows_with_score, times)`` returns {time: AUC}. A fold whose
    development or evaluation fails is recorded with its error; the others go on. The fits run
    where ``cluster`` says (:func:`studyrunner.cluster.run_tasks`: this process, ``workers``
    spawned processes, or a Dask cluster, R started once in each worker process); ``develop``,
    ``auc`` and ``baseline`` must then be picklable (``functools.partial`` of module functions).
    The folds and seeds are drawn here, before any fit, so the results do not depend on where
    the fits ran. With ``baseline(scored_training_rows)`` (the fold-training Breslow baseline
    {"time", "survival"} of the column ``risk_score``) each fold also keeps its validation
    patients' linear predictor and predicted risk at ``plan.evaluation.calibration_times``.
    """
    cv = plan.evaluation.cross_validation
    assert cv is not None
    rng = np.random.default_rng(seed)
    tasks: list[FoldTask] = []
    for repeat in range(cv.repeats):
        assignment = stratified_folds(data[event].to_numpy().astype(int), cv.folds, rng)
        tasks.extend(FoldTask(repeat, fold, tuple(bool(v) for v in assignment == fold),
                              seed + 1000 * (repeat + 1) + fold) for fold in range(cv.folds))
    context = FoldContext(data, reader2, plan.evaluation.time_roc_times, develop, auc,
                          plan.evaluation.calibration_times if baseline is not None else [], baseline)
    return run_tasks(_fit_fold, tasks, context, cluster=cluster, workers=workers, progress=progress,
                     on_lost=lambda task, error: _lost_fold(context, task))


LOST_FOLD = ("KilledWorker: every Dask worker that fitted this fold died (Dask's allowed-failures); "
             "the fit crashes the process")


def _split(context: FoldContext, task: FoldTask) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """The fold's training rows, validation rows and the second reader's training rows."""
    valid_mask = np.asarray(task.validation)
    train, valid = context.data[~valid_mask], context.data[valid_mask]
    reader2 = context.reader2
    fold_reader2 = None if reader2 is None else reader2[reader2["patient_id"].isin(train["patient_id"])]
    return train, valid, fold_reader2


def _lost_fold(context: FoldContext, task: FoldTask) -> FoldResult:
    """The record of a fit whose every worker died: a failed fold like any other."""
    train, valid, _ = _split(context, task)
    return FoldResult(task.repeat, task.fold, train["patient_id"].tolist(), valid["patient_id"].tolist(), [], {}, {},
                      error=LOST_FOLD)


def _fit_fold(context: FoldContext, task: FoldTask) -> FoldResult:
    """Develop on the fold's training rows, score both sides, compute their AUCs."""
    train, valid, reader2 = _split(context, task)
    times = context.times
    result = FoldResult(task.repeat, task.fold, train["patient_id"].tolist(), valid["patient_id"].tolist(), [], {}, {})
    try:
        model = context.develop(train, reader2, seed=task.seed)
        result.features = list(model.features)
        if not result.features:
            result.error = NO_FEATURES
        else:
            result.auc_training = context.auc(train.assign(risk_score=model.score(train)), times)
            result.auc_validation = context.auc(valid.assign(risk_score=model.score(valid)), times)
    except Exception as exc:  # noqa: BLE001 - one failing fold is recorded, not fatal
        result.error = f"{type(exc).__name__}: {exc}"
    if result.error is None and context.baseline is not None and context.calibration_times:
        _out_of_fold_risk(result, model, train, valid, context.baseline, context.calibration_times)
    return result


def _out_of_fold_risk(result: FoldResult, model: Any, train: pd.DataFrame, valid: pd.DataFrame,
                      baseline: BaselineFunction, times: list[float]) -> None:
    """The validation patients' linear predictor and predicted risk by each time, from the fold
    model and the Breslow baseline of its training fold (a failure is recorded on the fold)."""
    try:
        s0 = baseline(train.assign(risk_score=model.score(train)))
        lp = np.asarray(model.score(valid), dtype=float)
        result.validation_lp = lp.tolist()
        result.validation_risk = {time_key(t): predicted_risk_from_baseline(s0["time"], s0["survival"], lp, t).tolist()
                                  for t in times}
    except Exception as exc:  # noqa: BLE001 - the fold's AUCs stand; its calibration is recorded as failed
        result.calibration_error = f"{type(exc).__name__}: {exc}"


def spread(values: list[float]) -> dict[str, Any]:
    """Median, range, count and the values themselves (the FoldSummary shape)."""
    array = np.asarray(values, dtype=float)
    if not array.size:
        return {"median": None, "min": None, "max": None, "n": 0, "values": []}
    return {"median": float(np.median(array)), "min": float(array.min()), "max": float(array.max()),
            "n": int(array.size), "values": array.round(6).tolist()}


def summarise_folds(results: list[FoldResult], plan: StatisticsSection, time_unit: str,
                    final_features: list[str] | None = None) -> dict:
    """Median and range of the fold AUCs per time, for training and validation folds; the failed
    fits (per repeat, and those that selected no feature) and how often each of the
    ``final_features`` (the model developed on the whole cohort) was selected over the folds."""
    cv = plan.evaluation.cross_validation
    assert cv is not None
    times = [time_key(t) for t in plan.evaluation.time_roc_times]

    def aucs(role: str) -> dict[str, dict]:
        return {t: spread([v for r in results if r.error is None
                           for v in [getattr(r, f"auc_{role}").get(t)] if v is not None]) for t in times}

    failures = [{"repeat": r.repeat + 1, "fold": r.fold + 1, "reason": r.error} for r in results if r.error]
    return {
        "folds": cv.folds, "repeats": cv.repeats, "times": plan.evaluation.time_roc_times, "time_unit": time_unit,
        "training": aucs("training"), "validation": aucs("validation"),
        "n_fits": len(results), "n_failed": len(failures), "failures": failures,
        "n_no_features": sum(r.no_features for r in results),
        "per_repeat": failures_per_repeat(results),
        "feature_frequency": pd.Series([f for r in results for f in r.features]).value_counts().head(20).to_dict(),
        "selection_frequency": selection_frequency(results, final_features or []),
        "description": (f"{cv.repeats} x {cv.folds}-fold cross-validation stratified on the event; reproducibility "
                        "filter, z-scoring, screening, learners and the Cox model rerun inside every training fold"),
    }


def failures_per_repeat(results: list[FoldResult]) -> list[dict[str, int]]:
    """Per repeat (1-based): its fits, how many failed, and how many of those selected no feature."""
    repeats = sorted({r.repeat for r in results})
    return [{"repeat": k + 1, "n_folds": sum(r.repeat == k for r in results),
             "n_failed": sum(r.repeat == k and r.error is not None for r in results),
             "n_no_features": sum(r.repeat == k and r.no_features for r in results)} for k in repeats]


def selection_frequency(results: list[FoldResult], features: list[str]) -> list[dict[str, Any]]:
    """How many fits selected each feature, out of the fits whose development ran to the end
    (those with a model and those that selected no feature; a fit that raised is left out)."""
    developed = [r for r in results if r.error is None or r.no_features]
    n = len(developed)
    return [{"feature": f, "n_selected": sum(f in r.features for r in developed), "n_fits": n,
             "percent": 100 * sum(f in r.features for r in developed) / n if n else None} for f in features]


def pooled_out_of_fold(results: list[FoldResult], data: pd.DataFrame, time: str, event: str,
                       repeat: int) -> pd.DataFrame:
    """One repeat's out-of-fold predictions, one row per predicted patient: ``time``, ``event``,
    ``lp`` and ``risk_<time key>`` columns (patients of failed folds are absent)."""
    frames = [pd.DataFrame({"patient_id": r.validation_ids, "lp": r.validation_lp,
                            **{f"risk_{k}": v for k, v in (r.validation_risk or {}).items()}})
              for r in results if r.repeat == repeat and r.validation_lp is not None]
    if not frames:
        return pd.DataFrame(columns=["patient_id", "time", "event", "lp"])
    outcome = data[["patient_id", time, event]].rename(columns={time: "time", event: "event"})
    return pd.concat(frames, ignore_index=True).merge(outcome, on="patient_id", how="left")


def repeat_calibration(pooled: pd.DataFrame, times: list[float], groups: int) -> dict[str, Any]:
    """Calibration slope and O/E at each time of one repeat's pooled out-of-fold predictions (R)."""
    if pooled.empty:
        return {"reason": "no fold of this repeat gave predictions"}
    try:
        slope = calibration_slope(pooled, "time", "event", "lp")
        oe = {time_key(t): calibration_at(pooled, "time", "event", f"risk_{time_key(t)}", t, groups)["oe"]
              for t in times}
    except InputError as exc:
        return {"n": len(pooled), "reason": str(exc)}
    return {"n": len(pooled), "n_events": int(pooled["event"].sum()), "slope": slope, "oe": oe}


def cross_validated_calibration(results: list[FoldResult], data: pd.DataFrame, time: str, event: str,
                                plan: StatisticsSection) -> dict[str, Any]:
    """Per repeat the calibration of the pooled out-of-fold predictions (``repeat_calibration``),
    and the median and range over the repeats of the slope and of the O/E at each time."""
    times = list(plan.evaluation.calibration_times)
    per_repeat = [{"repeat": k + 1, **repeat_calibration(pooled_out_of_fold(results, data, time, event, k), times,
                                                         plan.evaluation.calibration_groups)}
                  for k in sorted({r.repeat for r in results})]
    done = [r for r in per_repeat if "slope" in r]
    return {
        "description": "per repeat, the out-of-fold predicted risks (each fold model with the Breslow baseline of "
                       "its training fold) pooled over the folds; median and range over the repeats",
        "times": times,
        "slope": spread([r["slope"]["slope"] for r in done if r["slope"].get("slope") is not None]),
        "oe": {time_key(t): spread([r["oe"][time_key(t)]["estimate"] for r in done
                                    if r["oe"][time_key(t)].get("estimate") is not None]) for t in times},
        "repeats": per_repeat,
    }
