"""Cox models and risk-score evaluation in R, checked against the published survival::lung
model, lifelines (an independent Python implementation) and hand computation."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import concordance_index

from studyrunner import rbridge
from studyrunner.rbridge import RError
from studyrunner.statistics.cox import fit_cox, linear_predictor, screen_features
from studyrunner.statistics.evaluation import KM_COLUMNS, evaluate_risk_score

pytestmark = pytest.mark.needs_r


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    """survival::lung as shipped with R's survival package; status 1/2 -> event 0/1."""
    frame = rbridge.to_python(rbridge._r().ro.r("survival::lung"))
    frame["event"] = (frame["status"] == 2).astype(int)
    return frame


@pytest.fixture(scope="module")
def lung_scored(lung: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """lung with the age + sex Cox linear predictor as score, cut at its median."""
    model = fit_cox(lung, "time", "event", ["age", "sex"])
    scored = lung.copy()
    scored["score"] = linear_predictor({r["term"]: r["coef"] for r in model["coefficients"]},
                                       lung)
    return scored, float(np.median(scored["score"]))


def lifelines_cox(df: pd.DataFrame, covariates: list[str]) -> CoxPHFitter:
    data = df[["time", "event", *covariates]].dropna()
    return CoxPHFitter(penalizer=0.0).fit(data, "time", "event")


def test_fit_cox_reproduces_the_published_lung_model(lung: pd.DataFrame) -> None:
    # survival package documentation: coxph(Surv(time, status) ~ age + sex, data = lung)
    fit = fit_cox(lung, "time", "event", ["age", "sex"])
    coefs = {row["term"]: row for row in fit["coefficients"]}
    assert coefs["age"]["coef"] == pytest.approx(0.017045, abs=5e-7)
    assert coefs["sex"]["coef"] == pytest.approx(-0.513219, abs=5e-7)
    assert fit["concordance"] == pytest.approx(0.6029, abs=5e-5)
    assert (fit["n"], fit["n_events"]) == (228, 165)
    json.dumps(fit, allow_nan=False)


def test_fit_cox_agrees_with_lifelines(lung: pd.DataFrame) -> None:
    covariates = ["age", "sex", "ph.ecog"]  # ph.ecog has one missing value
    fit = fit_cox(lung, "time", "event", covariates)
    reference = lifelines_cox(lung, covariates)
    rows = {row["term"]: row for row in fit["coefficients"]}
    for term in covariates:
        assert rows[term]["coef"] == pytest.approx(reference.params_[term], abs=1e-4)
        assert rows[term]["se"] == pytest.approx(reference.standard_errors_[term], abs=1e-4)
        assert rows[term]["p"] == pytest.approx(reference.summary.loc[term, "p"], abs=1e-4)
        assert rows[term]["hr_lower"] == pytest.approx(
            reference.summary.loc[term, "exp(coef) lower 95%"], rel=1e-4)
        assert rows[term]["hr_upper"] == pytest.approx(
            reference.summary.loc[term, "exp(coef) upper 95%"], rel=1e-4)
    assert fit["n"] == 227
    assert fit["loglik"] == pytest.approx(reference.log_likelihood_, abs=1e-6)
    assert fit["aic"] == pytest.approx(reference.AIC_partial_, abs=1e-6)
    assert fit["concordance"] == pytest.approx(reference.concordance_index_, abs=1e-9)


def test_screen_features_matches_one_lifelines_fit_per_feature(lung: pd.DataFrame) -> None:
    data = lung.assign(constant=1.0)
    features = ["age", "sex", "ph.ecog", "meal.cal", "constant"]
    screen = screen_features(data, "time", "event", features, p_threshold=0.05)
    assert screen.columns.tolist() == ["feature", "coef", "hr", "hr_lower", "hr_upper", "p",
                                       "kept", "message"]
    assert screen["feature"].tolist() == features
    for feature in features[:-1]:
        row = screen.set_index("feature").loc[feature]
        reference = lifelines_cox(data, [feature]).summary.loc[feature]
        assert row["coef"] == pytest.approx(reference["coef"], abs=1e-4)
        assert row["p"] == pytest.approx(reference["p"], abs=1e-4)
        assert row["hr_lower"] == pytest.approx(reference["exp(coef) lower 95%"], rel=1e-4)
        assert bool(row["kept"]) == (reference["p"] < 0.05)
    constant = screen.set_index("feature").loc["constant"]
    assert math.isnan(constant["p"])
    assert not constant["kept"]
    assert constant["message"] == "feature is constant"
    assert screen.set_index("feature")["kept"].to_dict() == {
        "age": True, "sex": True, "ph.ecog": True, "meal.cal": False, "constant": False}


def test_linear_predictor_is_the_uncentered_dot_product(lung: pd.DataFrame) -> None:
    coefs = {"age": 0.017045, "sex": -0.513219, "ph.ecog": 0.25}
    lp = linear_predictor(coefs, lung)
    expected = lung[list(coefs)].to_numpy() @ np.array(list(coefs.values()))
    np.testing.assert_allclose(lp, expected, rtol=1e-12)  # NaN where ph.ecog is missing
    assert np.isnan(lp).sum() == 1
    one_row = linear_predictor(coefs, lung.iloc[[0]])
    np.testing.assert_allclose(one_row, expected[:1], rtol=1e-12)


def test_evaluate_risk_score_agrees_with_lifelines(
        lung_scored: tuple[pd.DataFrame, float]) -> None:
    data, cutoff = lung_scored
    result = evaluate_risk_score(data, "time", "event", "score", cutoff, [0, 250, 500, 750])
    json.dumps(result, allow_nan=False)
    high = data["score"] > cutoff

    assert result["c_index"] == pytest.approx(
        concordance_index(data["time"], -data["score"], data["event"]), abs=1e-9)
    assert result["c_lower"] == pytest.approx(result["c_index"] - 1.959964 * result["c_se"],
                                              abs=1e-6)
    reference_lr = logrank_test(data["time"][high], data["time"][~high],
                                data["event"][high], data["event"][~high])
    assert result["logrank_chisq"] == pytest.approx(reference_lr.test_statistic, rel=1e-6)
    assert result["logrank_p"] == pytest.approx(reference_lr.p_value, rel=1e-6)

    reference_hr = lifelines_cox(data.assign(high=high.astype(int)), ["high"]).summary
    assert result["hr"] == pytest.approx(reference_hr.loc["high", "exp(coef)"], rel=1e-4)
    assert result["hr_lower"] == pytest.approx(reference_hr.loc["high", "exp(coef) lower 95%"],
                                               rel=1e-4)
    assert result["hr_p"] == pytest.approx(reference_hr.loc["high", "p"], abs=1e-5)
    assert result["hr_reason"] is None

    for group, mask in (("low", ~high), ("high", high)):
        assert result["groups"][group] == {"n": int(mask.sum()),
                                           "n_events": int(data["event"][mask].sum())}
        km = KaplanMeierFitter().fit(data["time"][mask], data["event"][mask])
        steps = pd.DataFrame(result["km"][group])
        for t in (100.0, 300.0, 600.0):
            r_surv = steps.loc[steps["time"] <= t, "surv"].iloc[-1]
            assert r_surv == pytest.approx(km.survival_function_at_times(t).iloc[0], abs=1e-12)
        assert result["risk_table"][group] == [int((data["time"][mask] >= t).sum())
                                              for t in (0, 250, 500, 750)]


def tiny_cohort() -> pd.DataFrame:
    """Eight patients; low group (score <= 0.5): times 2+, 3, 3, 7; high group: 1, 4+, 5, 9+."""
    return pd.DataFrame({
        "time": [3.0, 2.0, 7.0, 3.0, 1.0, 4.0, 5.0, 9.0],
        "event": [1, 0, 1, 1, 1, 0, 1, 0],
        "score": [0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.7, 0.6],
    }, index=[f"p{i}" for i in range(1, 9)])


def test_kaplan_meier_and_numbers_at_risk_by_hand() -> None:
    result = evaluate_risk_score(tiny_cohort(), "time", "event", "score", 0.5, [0, 3, 6])
    low = result["km"]["low"]
    # low: n=4; t=2 censored (S=1); t=3: 3 at risk, 2 events -> S=1/3; t=7: 1 at risk -> 0
    assert low["time"] == [2.0, 3.0, 7.0]
    assert low["n_risk"] == [4, 3, 1]
    assert low["n_event"] == [0, 2, 1]
    assert low["n_censor"] == [1, 0, 0]
    np.testing.assert_allclose(low["surv"], [1.0, 1 / 3, 0.0], atol=1e-12)
    # Greenwood, log scale, at t=3: var(log S) = 2 / (3 * 1)
    half_width = 1.959964 * math.sqrt(2 / 3)
    assert low["lower"][1] == pytest.approx(math.exp(math.log(1 / 3) - half_width), rel=1e-6)
    assert low["upper"][1] == pytest.approx(min(1.0, math.exp(math.log(1 / 3) + half_width)),
                                            rel=1e-6)
    high = result["km"]["high"]
    # high: 1 (event, 4 at risk) -> 3/4; 4 censored; 5 (event, 2 at risk) -> 3/8; 9 censored
    np.testing.assert_allclose(high["surv"], [0.75, 0.75, 0.375, 0.375], atol=1e-12)
    assert result["risk_table"] == {"times": [0.0, 3.0, 6.0], "low": [4, 3, 1],
                                    "high": [4, 3, 1]}
    assert result["groups"] == {"low": {"n": 4, "n_events": 3}, "high": {"n": 4, "n_events": 2}}
    # Harrell's C by hand: comparable pairs (earlier time has an event) and concordant ones
    # (the earlier event has the higher score); tied scores count 1/2, none here.
    data = tiny_cohort()
    concordant = comparable = 0
    for i in data.index:
        for j in data.index:
            if data.event[i] == 1 and data.time[i] < data.time[j]:
                comparable += 1
                concordant += data.score[i] > data.score[j]
    assert result["c_index"] == pytest.approx(concordant / comparable, abs=1e-12)


def test_empty_risk_group_gives_reasons_not_a_crash() -> None:
    result = evaluate_risk_score(tiny_cohort(), "time", "event", "score", 5.0, [0, 3])
    json.dumps(result, allow_nan=False)
    assert result["hr"] is None
    assert result["logrank_p"] is None
    assert result["hr_reason"] == "no patients in the high-risk group"
    assert result["logrank_reason"] == "no patients in the high-risk group"
    assert result["km"]["high"] == {column: [] for column in KM_COLUMNS}
    assert result["risk_table"]["high"] == [0, 0]
    assert result["groups"]["high"] == {"n": 0, "n_events": 0}


def test_group_without_events_has_no_hazard_ratio_but_a_logrank_test() -> None:
    data = tiny_cohort()
    data.loc[data["score"] > 0.5, "event"] = 0
    result = evaluate_risk_score(data, "time", "event", "score", 0.5, [0])
    assert result["hr"] is None
    assert result["hr_reason"] == "no events in the high-risk group: hazard ratio not estimable"
    high = data["score"] > 0.5
    reference = logrank_test(data["time"][high], data["time"][~high], data["event"][high],
                             data["event"][~high])
    assert result["logrank_p"] == pytest.approx(reference.p_value, rel=1e-6)


def test_bad_outcome_values_name_the_column_and_row() -> None:
    data = tiny_cohort()
    data.loc["p3", "time"] = np.nan
    with pytest.raises(RError, match=r"evaluate_risk_score.*'time'.*missing.*row\(s\) p3"):
        evaluate_risk_score(data, "time", "event", "score", 0.5, [0])
    data = tiny_cohort()
    data.loc["p5", "event"] = 2
    with pytest.raises(RError, match=r"fit_cox.*'event'.*0 \(censored\) or 1.*row\(s\) p5"):
        fit_cox(data, "time", "event", ["score"])
    with pytest.raises(KeyError, match="nope"):
        screen_features(data, "time", "event", ["nope"])
