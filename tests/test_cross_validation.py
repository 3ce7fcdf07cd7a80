"""Repeated K-fold cross-validation: balanced folds, no leakage, failures recorded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from studyrunner.protocol import StatisticsSection
from studyrunner.statistics.radiomics_model.cross_validation import (
    FoldResult,
    cross_validate,
    stratified_folds,
    summarise_folds,
)
from studyrunner.statistics.radiomics_model.development import develop_model
from studyrunner.statistics.timeroc import time_dependent_auc

pytestmark = pytest.mark.needs_r

PLAN = StatisticsSection.model_validate({
    "endpoint": "pfs",
    "screening": {"p_threshold": 0.2, "correlation_threshold": None, "max_features": 3},
    "model": "cox",
    "evaluation": {"time_roc_times": [1.0, 2.0], "cross_validation": {"folds": 3, "repeats": 2}},
})


def validation_auc(rows: pd.DataFrame, times: list[float]) -> dict:
    return time_dependent_auc(rows, "time", "event", "risk_score", times)["auc"]


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 60
    x = rng.normal(size=(n, 8))
    t_event = rng.exponential(np.exp(-(0.9 * x[:, 0] - 0.7 * x[:, 1])))
    t_cens = rng.uniform(0.5, 4.0, size=n)
    frame = pd.DataFrame(x * [1, 2, 3, 4, 5, 6, 7, 8] + 10, columns=[f"f{i}" for i in range(8)])
    frame.insert(0, "patient_id", [f"P{i:03d}" for i in range(n)])
    frame["time"] = np.minimum(t_event, t_cens)
    frame["event"] = (t_event <= t_cens).astype(int)
    return frame


def test_stratified_folds_share_events_evenly_and_are_seeded():
    events = np.array([1] * 17 + [0] * 40)
    folds = stratified_folds(events, 3, np.random.default_rng(5))
    per_fold = [int(events[folds == k].sum()) for k in range(3)]
    assert max(per_fold) - min(per_fold) <= 1
    assert sum(per_fold) == 17
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 2
    assert (folds == stratified_folds(events, 3, np.random.default_rng(5))).all()


def test_no_validation_patient_reaches_model_development(cohort):
    seen: list[tuple[set[str], object]] = []

    def develop(rows, reader2, seed):
        model = develop_model(rows, reader2, "time", "event", PLAN, seed)
        seen.append((set(rows["patient_id"]), model))
        return model

    results = cross_validate(cohort, None, "event", PLAN, seed=7, develop=develop, auc=validation_auc)
    assert len(results) == 6
    assert all(r.error is None for r in results)
    for result, (developed_on, model) in zip(results, seen, strict=True):
        assert developed_on == set(result.training_ids)
        assert not developed_on & set(result.validation_ids)
        assert developed_on | set(result.validation_ids) == set(cohort["patient_id"])
        # the fold model's z-scoring statistics are those of its training rows only
        train = cohort[cohort["patient_id"].isin(developed_on)]
        for feature, stats in model.normalisation.items():
            assert stats["mean"] == pytest.approx(train[feature].mean(), rel=1e-12)
            assert stats["sd"] == pytest.approx(train[feature].std(ddof=1), rel=1e-12)
    # every patient is validated exactly once per repeat
    for repeat in (0, 1):
        ids = [pid for r in results if r.repeat == repeat for pid in r.validation_ids]
        assert sorted(ids) == sorted(cohort["patient_id"])


def test_a_failing_fold_is_recorded_and_the_others_go_on(cohort):
    calls = []

    def develop(rows, reader2, seed):
        calls.append(seed)
        if len(calls) == 2:
            raise RuntimeError("glmnet did not converge")
        return develop_model(rows, reader2, "time", "event", PLAN, seed)

    results = cross_validate(cohort, None, "event", PLAN, seed=7, develop=develop, auc=validation_auc)
    summary = summarise_folds(results, PLAN, "years")
    assert summary["n_fits"] == 6
    assert summary["n_failed"] == 1
    assert summary["failures"] == [{"repeat": 1, "fold": 2, "reason": "RuntimeError: glmnet did not converge"}]
    assert summary["validation"]["1"]["n"] == 5


def test_summary_is_median_and_range_over_fits():
    folds = [FoldResult(0, k, [], [], ["f0"], {"1": a}, {"1": b})
             for k, (a, b) in enumerate([(0.8, 0.6), (0.9, 0.7), (0.7, None)])]
    summary = summarise_folds(folds, PLAN, "years")
    assert summary["training"]["1"] == {"median": 0.8, "min": 0.7, "max": 0.9, "n": 3, "values": [0.8, 0.9, 0.7]}
    assert summary["validation"]["1"] == {"median": pytest.approx(0.65), "min": 0.6, "max": 0.7, "n": 2,
                                          "values": [0.6, 0.7]}
    assert summary["training"]["2"] == {"median": None, "min": None, "max": None, "n": 0, "values": []}


def test_two_worker_processes_give_the_same_folds_and_aucs(cohort):
    import functools

    from studyrunner.statistics.radiomics_model.stage import fold_auc

    kwargs = {"develop": functools.partial(develop_model, time="time", event="event", plan=PLAN),
              "auc": functools.partial(fold_auc, time="time", event="event")}
    one = cross_validate(cohort, None, "event", PLAN, seed=3, workers=1, **kwargs)
    two = cross_validate(cohort, None, "event", PLAN, seed=3, workers=2, **kwargs)
    assert [(r.training_ids, r.features, r.auc_validation) for r in one] == \
           [(r.training_ids, r.features, r.auc_validation) for r in two]
