"""Repeated K-fold cross-validation: balanced folds, no leakage, failures recorded and counted
(per repeat, featureless fits), selection frequency, and the cross-validated calibration of the
pooled out-of-fold predictions against a hand-computed Breslow baseline and lifelines."""

from __future__ import annotations

import functools
import types

import numpy as np
import pandas as pd
import pytest

from studyrunner.protocol import StatisticsSection
from studyrunner.registry import time_key
from studyrunner.statistics.radiomics_model.cross_validation import (
    NO_FEATURES,
    FoldResult,
    cross_validate,
    cross_validated_calibration,
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


def test_folds_fitted_on_a_dask_cluster_equal_the_local_fits(cohort):
    """Issue 12: the 6 fits as tasks of a LocalCluster of two worker processes (R started in
    each through rpy2): every fold's patients, features, AUCs and out-of-fold risks are the
    ones fitted in this process, to the last bit, in the same order."""
    from studyrunner.statistics.radiomics_model.stage import fold_auc, fold_baseline

    kwargs = {"develop": functools.partial(develop_model, time="time", event="event", plan=PLAN_CAL),
              "auc": functools.partial(fold_auc, time="time", event="event"),
              "baseline": functools.partial(fold_baseline, time="time", event="event")}
    here = cross_validate(cohort, None, "event", PLAN_CAL, seed=3, workers=1, **kwargs)
    seen: list[tuple[int, int]] = []
    on_dask = cross_validate(cohort, None, "event", PLAN_CAL, seed=3, cluster="dask:2",
                             progress=lambda done, total: seen.append((done, total)), **kwargs)
    assert on_dask == here
    assert sum(r.error is None for r in here) >= 4
    assert all(r.validation_risk for r in here if r.error is None)
    assert seen == [(k, 6) for k in range(1, 7)]


# ----------------------------------------------------------------- failures and cross-validated calibration

PLAN_CAL = StatisticsSection.model_validate({
    **PLAN.model_dump(exclude_unset=True),
    "evaluation": {"time_roc_times": [1.0, 2.0], "calibration_times": [1.0, 1.5],
                   "cross_validation": {"folds": 3, "repeats": 2}},
})


def test_failed_and_featureless_fits_are_counted_per_repeat_with_selection_frequency():
    def fit(repeat, fold, features, error=None):
        return FoldResult(repeat, fold, [], [], features, {}, {}, error)

    results = [fit(0, 0, ["a", "b"]), fit(0, 1, [], NO_FEATURES), fit(0, 2, [], "RuntimeError: glmnet"),
               fit(1, 0, ["a"]), fit(1, 1, ["a", "c"]), fit(1, 2, ["b"])]
    summary = summarise_folds(results, PLAN, "years", final_features=["a", "b"])
    assert (summary["n_fits"], summary["n_failed"], summary["n_no_features"]) == (6, 2, 1)
    assert summary["per_repeat"] == [{"repeat": 1, "n_folds": 3, "n_failed": 2, "n_no_features": 1},
                                     {"repeat": 2, "n_folds": 3, "n_failed": 0, "n_no_features": 0}]
    # five fits developed to the end (the one that raised is left out): a in 3, b in 2
    assert summary["selection_frequency"] == [{"feature": "a", "n_selected": 3, "n_fits": 5, "percent": 60.0},
                                              {"feature": "b", "n_selected": 2, "n_fits": 5, "percent": 40.0}]


def test_a_fold_without_features_is_recorded_as_such(cohort):
    empty = types.SimpleNamespace(features=[])
    results = cross_validate(cohort, None, "event", PLAN, seed=7, develop=lambda rows, reader2, seed: empty,
                             auc=validation_auc)
    assert all(r.no_features and r.error == NO_FEATURES and r.validation_lp is None for r in results)
    assert summarise_folds(results, PLAN, "years")["n_no_features"] == 6


def breslow_s0(time: np.ndarray, event: np.ndarray, lp: np.ndarray, t: float) -> float:
    """Breslow's baseline survival at lp = 0, coefficients frozen, by hand."""
    risk = np.exp(lp)
    return float(np.exp(-sum(1.0 / risk[time >= s].sum() for s in time[(event == 1) & (time <= t)])))


def test_cross_validated_calibration_pools_out_of_fold_risks_of_the_fold_baselines(cohort):
    from lifelines import CoxPHFitter, KaplanMeierFitter

    from studyrunner.statistics.radiomics_model.stage import fold_auc, fold_baseline

    models = []

    def develop(rows, reader2, seed):
        models.append(develop_model(rows, reader2, "time", "event", PLAN_CAL, seed))
        return models[-1]

    results = cross_validate(cohort, None, "event", PLAN_CAL, seed=7, develop=develop,
                             auc=functools.partial(fold_auc, time="time", event="event"),
                             baseline=functools.partial(fold_baseline, time="time", event="event"))
    assert all(r.error is None and r.calibration_error is None for r in results)
    by_id = cohort.set_index("patient_id")
    for result, model in zip(results, models, strict=True):
        train, valid = by_id.loc[result.training_ids], by_id.loc[result.validation_ids]
        lp_train = np.asarray(model.score(train.reset_index()))
        lp_valid = np.asarray(model.score(valid.reset_index()))
        assert result.validation_lp == pytest.approx(lp_valid.tolist(), rel=1e-12)
        for t in (1.0, 1.5):
            s0 = breslow_s0(train["time"].to_numpy(), train["event"].to_numpy(), lp_train, t)  # fold-training S0
            assert result.validation_risk[time_key(t)] == pytest.approx((1 - s0 ** np.exp(lp_valid)).tolist(),
                                                                        rel=1e-9)
    summary = cross_validated_calibration(results, cohort, "time", "event", PLAN_CAL)
    slopes, oes = [], []
    for repeat in (0, 1):
        fits = [r for r in results if r.repeat == repeat]
        pooled = pd.DataFrame({"patient_id": [p for r in fits for p in r.validation_ids],
                               "lp": [v for r in fits for v in r.validation_lp],
                               "risk": [v for r in fits for v in r.validation_risk["1.5"]]})
        pooled = pooled.merge(cohort[["patient_id", "time", "event"]], on="patient_id")
        assert len(pooled) == len(cohort)  # every patient once per repeat
        record = summary["repeats"][repeat]
        cox = CoxPHFitter().fit(pooled[["time", "event", "lp"]], "time", "event")
        assert record["slope"]["slope"] == pytest.approx(float(cox.params_["lp"]), abs=1e-4)
        observed = 1 - float(KaplanMeierFitter().fit(pooled["time"], pooled["event"]).predict(1.5))
        assert record["oe"]["1.5"]["estimate"] == pytest.approx(observed / pooled["risk"].mean(), rel=1e-10)
        slopes.append(record["slope"]["slope"])
        oes.append(record["oe"]["1.5"]["estimate"])
    assert summary["slope"]["median"] == pytest.approx(np.median(slopes), rel=1e-12)
    assert (summary["oe"]["1.5"]["min"], summary["oe"]["1.5"]["max"]) == pytest.approx((min(oes), max(oes)))


def test_flags_of_cross_validation_and_calibration():
    import json
    from pathlib import Path

    from studyrunner.results.calibration_flags import CALIBRATION_RULES
    from studyrunner.results.flags import compute_flags
    from studyrunner.results.models import Results

    record = json.loads((Path(__file__).parent / "fixtures" / "results_signature.json").read_text(encoding="utf-8"))
    cv = record["cross_validation"]
    cv.update(n_failed=2, n_no_features=2)
    cv["calibration"]["slope"].update(median=0.41, min=0.26, max=0.55)
    test = json.loads(json.dumps(record["evaluation"]["training"]))
    test["cohort_label"] = "Test cohort"
    test["calibration"]["slope"].update(slope=0.52, lower=0.21, upper=0.83)
    record["evaluation"]["test"] = test
    flags = {flag.code: flag for flag in compute_flags(Results.model_validate(record), CALIBRATION_RULES)}
    assert flags["calibration_slope"].message == ("Test cohort: the radiomics model's calibration slope is "
                                                  "0.52 (0.21\u20130.83), its interval excludes one: the predicted "
                                                  "risks are too extreme in this cohort")
    assert "0.41 (0.26\u20130.55)" in flags["optimistic_calibration"].message
    assert flags["cross_validation_failures"].message.startswith(
        "2 of the 30 cross-validation fits failed, 2 because no feature was selected")
    # the fixture's selection counts: 27, 22, 19, 14, 11, 8, 5 of 30: the last four are below half
    assert flags["unstable_selection"].message.count(" of 30 (") == 4
    # the development cohort's apparent slope is never flagged
    assert [f.message.split(":")[0] for f in flags.values() if f.code == "calibration_slope"] == ["Test cohort"]
