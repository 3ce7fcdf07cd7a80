"""Calibration (rscripts/calibration.R) and decision curves (rscripts/decision_curve.R)
against lifelines (Cox predictions, Kaplan-Meier) and hand computation (Greenwood CI, net
benefit formula of Vickers et al. 2008)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter

from studyrunner.rbridge import RError
from studyrunner.statistics.calibration import calibration_at
from studyrunner.statistics.decision_curve import decision_curve

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


def equal_size_groups(values: np.ndarray, groups: int) -> np.ndarray:
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable") + 1
    return np.ceil(ranks * groups / len(values)).astype(int)


@pytest.mark.parametrize("groups", [3, 5])
def test_calibration_matches_lifelines_cox_and_kaplan_meier(cohort: pd.DataFrame,
                                                            groups: int) -> None:
    times = [1.0, 2.0, 3.0]
    table = calibration_at(cohort, "time", "event", "score", times, groups=groups)
    assert len(table) == len(times) * groups
    cox = CoxPHFitter().fit(cohort[["time", "event", "score"]], "time", "event")
    beta = float(cox.params_["score"])
    baseline = cox.baseline_cumulative_hazard_["baseline cumulative hazard"]  # at mean score
    for t in times:
        # 1 - exp(-H0(t) exp(beta * lp)) with lifelines' Breslow step function (its baseline
        # is at the mean score; predict_survival_function would interpolate between steps)
        h0_t = float(baseline[baseline.index <= t].iloc[-1])
        predicted = 1 - np.exp(-h0_t * np.exp(beta * (cohort["score"] - cohort["score"].mean())))
        group = equal_size_groups(predicted.to_numpy(), groups)
        rows = [row for row in table if row["time"] == t]
        for row in rows:
            members = cohort[group == row["group"]]
            assert row["n"] == len(members)
            assert row["n_events"] == int(((members["time"] <= t) & (members["event"] == 1)).sum())
            assert row["predicted"] == pytest.approx(predicted[group == row["group"]].mean(),
                                                     abs=1e-6)
            surv, lower, upper = km_with_log_ci(members["time"].to_numpy(),
                                                members["event"].to_numpy(), t)
            assert row["observed"] == pytest.approx(1 - surv, abs=1e-12)
            assert row["lower"] == pytest.approx(1 - upper, abs=1e-10)
            assert row["upper"] == pytest.approx(1 - lower, abs=1e-10)
        # groups run from lowest to highest predicted risk
        assert [r["predicted"] for r in rows] == sorted(r["predicted"] for r in rows)
    json.dumps(table, allow_nan=False)


def test_calibration_observed_is_missing_beyond_a_censored_last_follow_up() -> None:
    df = pd.DataFrame({"time": [1.0, 2, 3, 4, 5, 6], "event": [1, 1, 0, 1, 0, 0],
                       "lp": [3.0, 2, 1.5, 0.2, 0.5, 1]})
    table = calibration_at(df, "time", "event", "lp", [5.5], groups=2)
    high, low = table[1], table[0]
    assert high["observed"] is None          # last follow-up 3, censored
    assert high["n"] == 3
    # low-risk group: times 4 (event), 5, 6 (censored): KM risk at 5.5 = 1/3
    assert low["observed"] == pytest.approx(1 / 3, abs=1e-12)
    assert low["n"] == 3
    with pytest.raises(RError, match="groups must be"):
        calibration_at(df, "time", "event", "lp", [2.0], groups=1)


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


def test_predicted_risk_is_the_per_patient_prediction_behind_calibration():
    from lifelines import CoxPHFitter

    from studyrunner.statistics.calibration import predicted_risk

    rng = np.random.default_rng(3)
    n = 60
    lp = rng.normal(size=n)
    t_event = rng.exponential(1 / np.exp(0.8 * lp))
    t_cens = rng.uniform(0, 2.5, size=n)
    df = pd.DataFrame({"time": np.minimum(t_event, t_cens), "event": (t_event <= t_cens).astype(int), "lp": lp})
    risk = predicted_risk(df, "time", "event", "lp", 0.7)
    cph = CoxPHFitter().fit(df, "time", "event")  # Breslow baseline at the mean score (no ties here)
    baseline = cph.baseline_cumulative_hazard_["baseline cumulative hazard"]
    h_mean = float(baseline[baseline.index <= 0.7].iloc[-1])  # the step function at t, not interpolated
    beta = float(cph.params_["lp"])
    expected = 1 - np.exp(-h_mean * np.exp(beta * (lp - lp.mean())))
    np.testing.assert_allclose(risk, expected, rtol=5e-4)  # the two fits converge to ~1e-5 in beta
