"""The radiomics model's frozen calibration (statistics/radiomics_model/stage.py with
statistics/frozen_calibration.py) and decision curves (rscripts/decision_curve.R) against
independent computations: Breslow's baseline, O/E, IPCW Brier and the calibration slope by
hand (numpy) and lifelines (Kaplan-Meier, Cox), the net benefit formula of Vickers et al.
2008, and the tolerance count of thresholds with float ties."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter

from studyrunner.protocol import StatisticsSection
from studyrunner.rbridge import RError
from studyrunner.registry import time_key
from studyrunner.statistics.baseline_survival import baseline_survival
from studyrunner.statistics.decision_curve import decision_curve, net_benefit_summary
from studyrunner.statistics.radiomics_model.stage import DECISION_THRESHOLDS, calibration_and_decision

pytestmark = pytest.mark.needs_r

Z975 = 1.959963984540054


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    """200 patients, continuous times (no ties), a score related to the hazard."""
    rng = np.random.default_rng(7)
    n = 200
    score = rng.normal(size=n)
    event_time = rng.exponential(2.5 * np.exp(-0.7 * score))
    censor_time = rng.uniform(0.5, 6.0, size=n)
    return pd.DataFrame({"time": np.minimum(event_time, censor_time),
                         "event": (event_time <= censor_time).astype(int),
                         "score": score})


def km_with_log_ci(time: np.ndarray, event: np.ndarray, t: float) -> tuple[float, float, float]:
    """Kaplan-Meier S(t) from lifelines, 95% log-scale Greenwood CI computed by hand."""
    km = KaplanMeierFitter().fit(time, event)
    surv = float(km.survival_function_at_times(t).iloc[0])
    table = km.event_table
    table = table[(table.index <= t) & (table["observed"] > 0)]
    d, r = table["observed"].to_numpy(float), table["at_risk"].to_numpy(float)
    half = Z975 * np.sqrt(np.sum(d / (r * (r - d))))
    return surv, surv * np.exp(-half), min(1.0, surv * np.exp(half))


def hand_net_benefit(df: pd.DataFrame, t: float, p: float) -> tuple[float, float, int]:
    n = len(df)
    treated = df[df["risk"] >= p]
    odds = p / (1 - p)
    s_all = float(KaplanMeierFitter().fit(df["time"], df["event"]).predict(t))
    treat_all = (1 - s_all) - s_all * odds
    if treated.empty:
        return 0.0, treat_all, 0
    s = float(KaplanMeierFitter().fit(treated["time"], treated["event"]).predict(t))
    k = len(treated)
    return (1 - s) * k / n - s * k / n * odds, treat_all, k


def test_decision_curve_matches_hand_computation_with_lifelines(cohort: pd.DataFrame) -> None:
    t = 2.0
    cox = CoxPHFitter().fit(cohort[["time", "event", "score"]], "time", "event")
    data = cohort.assign(risk=1 - cox.predict_survival_function(cohort, times=[t]).iloc[0]
                         .to_numpy())
    thresholds = [0.0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.99]
    curve = decision_curve(data, "time", "event", "risk", t, thresholds)
    assert [row["threshold"] for row in curve] == thresholds
    for row in curve:
        net_benefit, treat_all, n_treated = hand_net_benefit(data, t, row["threshold"])
        assert row["n_treated"] == n_treated
        assert row["net_benefit"] == pytest.approx(net_benefit, abs=1e-12)
        assert row["treat_all"] == pytest.approx(treat_all, abs=1e-12)
        assert row["treat_none"] == 0
    # threshold 0: everybody treated, the model's curve is the treat-all curve
    assert curve[0]["net_benefit"] == pytest.approx(curve[0]["treat_all"], abs=1e-12)
    assert curve[-1]["n_treated"] == 0
    assert curve[-1]["net_benefit"] == 0
    json.dumps(curve, allow_nan=False)


def test_decision_curve_edge_cases_and_bad_input() -> None:
    df = pd.DataFrame({"time": [1.0, 2, 3, 4, 5, 6], "event": [1, 0, 0, 1, 1, 0],
                       "risk": [0.9, 0.8, 0.2, 0.3, 0.1, 0.4]}, index=list("ABCDEF"))
    # the treated at p = 0.7 (A, B): B censored at time 2, the last follow-up: no KM at t = 3
    row = decision_curve(df, "time", "event", "risk", 3.0, [0.7])[0]
    assert row["n_treated"] == 2
    assert row["net_benefit"] is None
    with pytest.raises(RError, match=r"risk must lie in \[0, 1\] in row\(s\) C"):
        decision_curve(df.assign(risk=[0.9, 0.8, 1.2, 0.3, 0.1, 0.4]), "time", "event",
                       "risk", 3.0, [0.5])
    with pytest.raises(RError, match="thresholds"):
        decision_curve(df, "time", "event", "risk", 3.0, [1.0])


# ----------------------------------------------------------------- frozen calibration of the radiomics model

EVAL_PLAN = StatisticsSection.model_validate({
    "endpoint": "pfs",
    "evaluation": {"calibration_times": [1.0, 2.0], "calibration_groups": 4, "decision_curve_times": [1.0],
                   "decision_threshold_range": [0.1, 0.5]},
})


def simulated(n: int, seed: int) -> pd.DataFrame:
    """A cohort scored by a model's (uncentred) linear predictor; continuous times, no ties."""
    rng = np.random.default_rng(seed)
    lp = 0.9 * rng.normal(size=n) + 0.4
    event_time = rng.exponential(2.0 * np.exp(-lp))
    censor_time = rng.uniform(0.8, 5.0, size=n)
    return pd.DataFrame({"pfs_months": np.minimum(event_time, censor_time),
                         "pfs_event": (event_time <= censor_time).astype(int), "risk_score": lp})


def hand_breslow_s0(df: pd.DataFrame, t: float) -> float:
    """Breslow's baseline survival at lp = 0 with the coefficients frozen: exp(-sum d / sum exp(lp))."""
    time, event, risk = df["pfs_months"].to_numpy(), df["pfs_event"].to_numpy(), np.exp(df["risk_score"].to_numpy())
    hazard = sum(1.0 / risk[time >= s].sum() for s in time[(event == 1) & (time <= t)])
    return float(np.exp(-hazard))


def hand_ipcw_brier(df: pd.DataFrame, risk: np.ndarray, t: float) -> float:
    """Graf et al. (1999) with the censoring Kaplan-Meier of lifelines (no ties: G(T-) = G(T))."""
    time, event = df["pfs_months"].to_numpy(), df["pfs_event"].to_numpy()
    censoring = KaplanMeierFitter().fit(time, 1 - event)
    case, alive = (event == 1) & (time <= t), time > t
    weights = np.zeros(len(time))
    weights[case] = 1 / censoring.predict(time[case]).to_numpy()
    weights[alive] = 1 / float(censoring.predict(t))
    return float(np.mean(weights * (case.astype(float) - risk) ** 2))


@pytest.fixture(scope="module")
def frozen_cohorts() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    training, test = simulated(160, 21), simulated(110, 22)
    return training, test, baseline_survival(training, "pfs_months", "pfs_event", "risk_score")


@pytest.mark.parametrize("cohort_name", ["training", "test"])
def test_radiomics_model_calibration_is_that_of_the_frozen_training_baseline(frozen_cohorts, cohort_name) -> None:
    training, test, baseline = frozen_cohorts
    rows = training if cohort_name == "training" else test
    result = calibration_and_decision(rows, "pfs_months", "pfs_event", baseline, EVAL_PLAN)
    calibration = result["calibration"]
    lp = rows["risk_score"].to_numpy()
    for t in (1.0, 2.0):
        at = calibration["at"][time_key(t)]
        risk = 1 - hand_breslow_s0(training, t) ** np.exp(lp)  # the TRAINING baseline, also on test
        surv, lower, upper = km_with_log_ci(rows["pfs_months"].to_numpy(), rows["pfs_event"].to_numpy(), t)
        assert at["predicted"] == pytest.approx(risk.mean(), rel=1e-10)
        assert at["observed"]["estimate"] == pytest.approx(1 - surv, abs=1e-12)
        assert (at["observed"]["lower"], at["observed"]["upper"]) == pytest.approx((1 - upper, 1 - lower), abs=1e-10)
        assert at["oe"]["estimate"] == pytest.approx((1 - surv) / risk.mean(), rel=1e-10)
        assert at["brier"]["model"] == pytest.approx(hand_ipcw_brier(rows, risk, t), rel=1e-10)
        null = hand_ipcw_brier(rows, np.full(len(rows), 1 - surv), t)
        assert at["brier"]["ipa"] == pytest.approx(1 - at["brier"]["model"] / null, rel=1e-9)
        assert at["n_events"] == int(((rows["pfs_months"] <= t) & (rows["pfs_event"] == 1)).sum())
        # four equal-size groups by increasing predicted risk, each with its Kaplan-Meier risk
        group = np.ceil((np.argsort(np.argsort(risk)) + 1) * 4 / len(risk)).astype(int)
        for g in at["groups"]:
            members = rows[group == g["group"]]
            assert g["predicted"] == pytest.approx(risk[group == g["group"]].mean(), rel=1e-10)
            last = members.loc[members["pfs_months"].idxmax()]
            if t > last["pfs_months"] and last["pfs_event"] == 0:  # KM not defined at t in this group
                assert g["observed"] is None
                continue
            s, lo, hi = km_with_log_ci(members["pfs_months"].to_numpy(), members["pfs_event"].to_numpy(), t)
            assert g["observed"] == pytest.approx(1 - s, abs=1e-12)
            if s > 0:  # a group with every patient's event by t has no log-scale interval
                assert (g["lower"], g["upper"]) == pytest.approx((1 - hi, 1 - lo), abs=1e-10)
    cox = CoxPHFitter().fit(rows[["pfs_months", "pfs_event", "risk_score"]], "pfs_months", "pfs_event")
    assert calibration["slope"]["slope"] == pytest.approx(float(cox.params_["risk_score"]), abs=1e-4)
    assert calibration["slope"]["se"] == pytest.approx(float(cox.standard_errors_["risk_score"]), rel=1e-3)


def test_radiomics_decision_curve_uses_the_frozen_risk_and_counts_with_the_range(frozen_cohorts) -> None:
    training, test, baseline = frozen_cohorts
    result = calibration_and_decision(test, "pfs_months", "pfs_event", baseline, EVAL_PLAN)
    curve = result["decision_curves"][time_key(1.0)]
    frozen = test.rename(columns={"pfs_months": "time", "pfs_event": "event"}).assign(
        risk=1 - hand_breslow_s0(training, 1.0) ** np.exp(test["risk_score"]))
    assert [row["threshold"] for row in curve] == DECISION_THRESHOLDS
    for row in curve[::7]:
        net_benefit, treat_all, n_treated = hand_net_benefit(frozen, 1.0, row["threshold"])
        assert row["n_treated"] == n_treated
        assert row["net_benefit"] == pytest.approx(net_benefit, abs=1e-12)
        assert row["treat_all"] == pytest.approx(treat_all, abs=1e-12)
    summary = next(iter(result["decision_summary"].values()))
    better = [row["threshold"] for row in curve
              if row["net_benefit"] is not None and row["net_benefit"] > 1e-9
              and row["net_benefit"] - row["treat_all"] > 1e-9]
    assert summary["n_better"] == len(better)
    assert summary["n_in_range"] == sum(0.1 <= p <= 0.5 for p in DECISION_THRESHOLDS) == 41
    assert summary["n_better_in_range"] == sum(0.1 <= p <= 0.5 for p in better)
    # threshold 0 treats everybody: the model's curve IS the treat-all curve, a tie, not a benefit
    assert curve[0]["n_treated"] == len(test)
    assert 0.0 not in better


def test_decision_count_treats_float_ties_as_ties() -> None:
    tie = 5.551115123125783e-17
    rows = [
        {"threshold": 0.0, "net_benefit": 0.30 + tie, "treat_all": 0.30, "treat_none": 0},   # tie with treat-all
        {"threshold": 0.1, "net_benefit": 0.25, "treat_all": 0.20, "treat_none": 0},         # better than both
        {"threshold": 0.2, "net_benefit": tie, "treat_all": -0.10, "treat_none": 0},         # tie with treat-none
        {"threshold": 0.3, "net_benefit": 0.05, "treat_all": None, "treat_none": 0},         # treat-all undefined
        {"threshold": 0.4, "net_benefit": None, "treat_all": -0.20, "treat_none": 0},        # model undefined
        {"threshold": 0.6, "net_benefit": 0.01, "treat_all": -0.40, "treat_none": 0},        # better, above range
    ]
    summary = net_benefit_summary(rows, (0.05, 0.5))
    assert summary == {"n_thresholds": 6, "n_better": 3, "lowest": 0.1, "highest": 0.6, "tolerance": 1e-9,
                       "range": [0.05, 0.5], "n_in_range": 4, "n_better_in_range": 2}
    # without the tolerance the two float ties would have counted (the old count)
    assert net_benefit_summary(rows, tolerance=0.0)["n_better"] == 5
    assert net_benefit_summary(rows)["n_in_range"] is None
