"""Repeated K-fold cross-validation of the whole model development (seed 001).

Inside every training fold the development reruns from the start: reproducibility filter,
z-scoring, screening, learners, stepwise Cox (``develop_model``); the fold's validation
patients are scored with the frozen fold model only. So no validation patient ever reaches
a selection or estimation step (the "wrong way" of Hastie, Tibshirani & Friedman, The
Elements of Statistical Learning, 2nd ed., section 7.10.2, is avoided by construction).

Folds are stratified on the event indicator so each holds events; the time-dependent AUC
(``time_dependent_auc``) is computed on the fold's training and validation patients, and
the report gives the median and range over all fits, as seed 001 does.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.protocol import StatisticsSection
from studyrunner.registry import time_key

Developer = Callable[[pd.DataFrame, pd.DataFrame | None, int], Any]  # -> model with .features, .score(rows)
AucFunction = Callable[[pd.DataFrame, list[float]], dict[str, float | None]]


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


def cross_validate(data: pd.DataFrame, reader2: pd.DataFrame | None, event: str, plan: StatisticsSection,
                   seed: int, develop: Developer, auc: AucFunction, workers: int = 1,
                   progress: Callable[[int, int], None] | None = None) -> list[FoldResult]:
    """Run ``plan.evaluation.cross_validation`` on ``data`` (the development cohort).

    ``develop(train_rows, reader2_rows, seed=...)`` returns a model with ``features`` and
    ``score(rows)``; ``auc(rows_with_score, times)`` returns {time: AUC}. A fold whose
    development or evaluation fails is recorded with its error; the others go on. With
    ``workers > 1`` the fits run in that many processes (``develop`` and ``auc`` must then
    be picklable, e.g. ``functools.partial`` of module functions); the folds and seeds are
    the same, so are the results.
    """
    cv = plan.evaluation.cross_validation
    assert cv is not None
    rng = np.random.default_rng(seed)
    tasks = []
    for repeat in range(cv.repeats):
        assignment = stratified_folds(data[event].to_numpy().astype(int), cv.folds, rng)
        for fold in range(cv.folds):
            train, valid = data[assignment != fold], data[assignment == fold]
            fold_reader2 = None if reader2 is None else reader2[reader2["patient_id"].isin(train["patient_id"])]
            tasks.append((repeat, fold, train, valid, fold_reader2, seed + 1000 * (repeat + 1) + fold,
                          plan.evaluation.time_roc_times, develop, auc))
    if workers <= 1:
        results = []
        for task in tasks:
            results.append(_fit_fold(task))
            if progress:
                progress(len(results), len(tasks))
        return results
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        results = []
        for result in pool.map(_fit_fold, tasks):
            results.append(result)
            if progress:
                progress(len(results), len(tasks))
    return results


def _fit_fold(task: tuple) -> FoldResult:
    """Develop on the fold's training rows, score both sides, compute their AUCs."""
    repeat, fold, train, valid, reader2, fold_seed, times, develop, auc = task
    result = FoldResult(repeat, fold, train["patient_id"].tolist(), valid["patient_id"].tolist(), [], {}, {})
    try:
        model = develop(train, reader2, seed=fold_seed)
        result.features = list(model.features)
        if not result.features:
            result.error = "no feature was selected in this training fold"
        else:
            result.auc_training = auc(train.assign(risk_score=model.score(train)), times)
            result.auc_validation = auc(valid.assign(risk_score=model.score(valid)), times)
    except Exception as exc:  # noqa: BLE001 - one failing fold is recorded, not fatal
        result.error = f"{type(exc).__name__}: {exc}"
    return result


def summarise_folds(results: list[FoldResult], plan: StatisticsSection, time_unit: str) -> dict:
    """Median and range of the fold AUCs per time, for training and validation folds."""
    cv = plan.evaluation.cross_validation
    assert cv is not None
    times = [time_key(t) for t in plan.evaluation.time_roc_times]

    def spread(role: str) -> dict[str, dict]:
        out = {}
        for t in times:
            values = np.array([v for r in results if r.error is None
                               for v in [getattr(r, f"auc_{role}").get(t)] if v is not None], dtype=float)
            out[t] = ({"median": float(np.median(values)), "min": float(values.min()), "max": float(values.max()),
                       "n": int(values.size), "values": values.round(6).tolist()}
                      if values.size else {"median": None, "min": None, "max": None, "n": 0, "values": []})
        return out

    failures = [{"repeat": r.repeat + 1, "fold": r.fold + 1, "reason": r.error} for r in results if r.error]
    return {
        "folds": cv.folds, "repeats": cv.repeats, "times": plan.evaluation.time_roc_times, "time_unit": time_unit,
        "training": spread("training"), "validation": spread("validation"),
        "n_fits": len(results), "n_failed": len(failures), "failures": failures,
        "feature_frequency": pd.Series([f for r in results for f in r.features]).value_counts().head(20).to_dict(),
        "description": (f"{cv.repeats} x {cv.folds}-fold cross-validation stratified on the event; reproducibility "
                        "filter, z-scoring, screening, learners and the Cox model rerun inside every training fold"),
    }
