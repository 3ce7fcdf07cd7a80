"""External validation statistics (rscripts/validation.R, statistics/validation.py) against
independent references: lifelines (Harrell's C, Cox slope, Kaplan-Meier), survival and
riskRegression called directly, numpy implementations of Uno's C and of the IPCW Brier score,
and small datasets computed by hand."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.utils import concordance_index

from studyrunner.errors import InputError
from studyrunner.rbridge import to_python, to_r
from studyrunner.statistics.validation import (
    calibration_at,
    calibration_slope,
    concordance_indices,
    predicted_risk_from_baseline,
)

pytestmark = pytest.mark.needs_r

Z975 = 1.959963984540054


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    """150 patients, continuous times (no ties), a frozen lp and its predicted risk by t=1."""
    rng = np.random.default_rng(11)
    n = 150
    lp = rng.normal(scale=0.8, size=n)
    event_time = rng.exponential(1.5 * np.exp(-lp))
    censor_time = rng.uniform(0.2, 4.0, size=n)
    frame = pd.DataFrame({"time": np.minimum(event_time, censor_time),
                          "event": (event_time <= censor_time).astype(int), "lp": lp})
    frame["risk"] = 1 - np.exp(-0.5 * np.exp(0.9 * lp))  # deliberately a little off
    return frame


def r_value(code: str, **values: Any) -> Any:
    """Evaluate R ``code`` with ``values`` bound (through the bridge's converters)."""
    import rpy2.robjects as ro

    to_r(None)  # starts R through the bridge
    env = ro.r("new.env")()
    for name, value in values.items():
        env[name] = to_r(value)
    return to_python(ro.r("function(code, env) eval(parse(text = code), envir = env)")(code, env))


def km_step(time: np.ndarray, status: np.ndarray, at: np.ndarray, left: bool = False) -> np.ndarray:
    """Kaplan-Meier survival of ``status`` at ``at`` (S(at-) with ``left``), by hand."""
    jumps = np.unique(time[status == 1])
    surv = np.cumprod([1 - np.sum((time == u) & (status == 1)) / np.sum(time >= u) for u in jumps])
    steps = np.searchsorted(jumps, at, side="left" if left else "right")
    return np.concatenate([[1.0], surv])[steps]


def uno_c_numpy(time: np.ndarray, event: np.ndarray, lp: np.ndarray, tau: float) -> float:
    """Uno et al. (2011): sum over pairs (event i at T_i <= tau, T_j > T_i) of
    G(T_i-)^-2 [I(lp_i > lp_j) + I(lp_i = lp_j) / 2], over the sum of the weights."""
    g = km_step(time, 1 - event, time, left=True)
    i_case = (event == 1) & (time <= tau)
    pair = i_case[:, None] & (time[:, None] < time[None, :])
    weight = pair / g[:, None] ** 2
    order = (lp[:, None] > lp[None, :]) + 0.5 * (lp[:, None] == lp[None, :])
    return float(np.sum(weight * order) / np.sum(weight))


def brier_numpy(time: np.ndarray, event: np.ndarray, risk: np.ndarray, t: float) -> float:
    """Graf et al. (1999) IPCW Brier score at t with Kaplan-Meier censoring weights."""
    case = (event == 1) & (time <= t)
    alive = time > t
    w = np.zeros_like(time)
    w[case] = 1 / km_step(time, 1 - event, time[case], left=True)
    w[alive] = 1 / km_step(time, 1 - event, np.array([t]))[0]
    return float(np.mean(w * (case - risk) ** 2))


# ------------------------------------------------------------------------- concordance


def test_concordance_small_case_by_hand() -> None:
    # censoring at 2 (4 at risk): G = 3/4 after 2. Uno, tau = 3.5: event at 1 (weight 1)
    # beats all 4 later patients; event at 3 (weight 16/9) vs 4 discordant, vs 5 concordant;
    # the event at 4 is beyond tau. C = (4 + 16/9) / (4 + 2 * 16/9) = 13/17.
    # Harrell: 4 + 1 + 1 concordant of 7 comparable pairs = 6/7.
    df = pd.DataFrame({"time": [1.0, 2.0, 3.0, 4.0, 5.0], "event": [1, 0, 1, 1, 0],
                       "lp": [2.0, 0.5, 1.0, 1.5, -1.0]})
    result = concordance_indices(df, "time", "event", "lp", tau=3.5)
    assert result["uno"]["estimate"] == pytest.approx(13 / 17, abs=1e-12)
    assert result["harrell"]["estimate"] == pytest.approx(6 / 7, abs=1e-12)
    assert (result["n"], result["n_events"], result["n_events_tau"]) == (5, 3, 2)
    assert result["tau"] == 3.5


def test_harrell_matches_lifelines_and_survival(cohort: pd.DataFrame) -> None:
    result = concordance_indices(cohort, "time", "event", "lp", tau=2.0)
    json.dumps(result)
    harrell = result["harrell"]
    # lifelines takes a predicted survival time: a higher lp means a shorter time
    assert harrell["estimate"] == pytest.approx(
        concordance_index(cohort["time"], -cohort["lp"], cohort["event"]), abs=1e-12)
    direct = r_value("f <- survival::concordance(survival::Surv(d$time, d$event) ~ d$lp, "
                     "reverse = TRUE); c(unname(f$concordance), sqrt(f$var))", d=cohort)
    assert harrell["estimate"] == pytest.approx(direct[0], abs=1e-12)
    assert harrell["se"] == pytest.approx(direct[1], abs=1e-12)
    assert harrell["lower"] == pytest.approx(harrell["estimate"] - Z975 * harrell["se"], abs=1e-9)
    assert harrell["upper"] == pytest.approx(harrell["estimate"] + Z975 * harrell["se"], abs=1e-9)
    assert result["n"] == len(cohort)
    assert isinstance(result["n"], int)
    assert result["n_events"] == int(cohort["event"].sum())


@pytest.mark.parametrize("tau", [1.0, 2.5, 10.0])
def test_uno_matches_numpy_ipcw_estimator(cohort: pd.DataFrame, tau: float) -> None:
    uno = concordance_indices(cohort, "time", "event", "lp", tau=tau)["uno"]
    expected = uno_c_numpy(cohort["time"].to_numpy(), cohort["event"].to_numpy(),
                           cohort["lp"].to_numpy(), tau)
    assert uno["estimate"] == pytest.approx(expected, abs=1e-10)
    assert 0 < uno["se"] < 0.2
    assert uno["lower"] < uno["estimate"] < uno["upper"]


def test_uno_equals_harrell_without_censoring(cohort: pd.DataFrame) -> None:
    uncensored = cohort.assign(event=1)
    result = concordance_indices(uncensored, "time", "event", "lp",
                                 tau=float(uncensored["time"].max()))
    assert result["uno"]["estimate"] == pytest.approx(result["harrell"]["estimate"], abs=1e-12)
    assert result["uno"]["se"] == pytest.approx(result["harrell"]["se"], rel=1e-8)


# ------------------------------------------------------------------------- calibration


def test_calibration_small_case_by_hand() -> None:
    # censoring KM G: 4/5 after 2 (5 at risk), 8/15 after 4 (3 at risk). At t = 4.5: events
    # at 1 (weight 1/G(1-) = 1) and 3 (weight 5/4); alive at 5 and 6 (weight 1/G(4.5) = 15/8);
    # censored at 2 and 4 weight 0. KM S(4.5) = 5/6 * 3/4 = 5/8.
    risk = np.array([0.6, 0.1, 0.5, 0.2, 0.3, 0.4])
    df = pd.DataFrame({"time": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "event": [1, 0, 1, 0, 1, 0],
                       "risk": risk}, index=[f"p{i}" for i in range(6)])
    result = calibration_at(df, "time", "event", "risk", t=4.5, groups=2)
    json.dumps(result)
    brier = ((1 - risk[0]) ** 2 + (1 - risk[2]) ** 2 * 5 / 4
             + (risk[4] ** 2 + risk[5] ** 2) * 15 / 8) / 6
    null = ((5 / 8) ** 2 + (5 / 8) ** 2 * 5 / 4 + 2 * (3 / 8) ** 2 * 15 / 8) / 6
    assert result["brier"]["model"] == pytest.approx(brier, abs=1e-12)
    assert result["brier"]["null"] == pytest.approx(null, abs=1e-12)
    assert result["brier"]["ipa"] == pytest.approx(1 - brier / null, abs=1e-12)
    se_s = 5 / 8 * np.sqrt(1 / 30 + 1 / 12)  # Greenwood
    assert result["observed"]["estimate"] == pytest.approx(3 / 8, abs=1e-12)
    assert result["observed"]["se"] == pytest.approx(se_s, abs=1e-12)
    assert result["predicted"] == pytest.approx(risk.mean(), abs=1e-12)
    oe = (3 / 8) / risk.mean()
    assert result["oe"]["estimate"] == pytest.approx(oe, abs=1e-12)
    assert result["oe"]["lower"] == pytest.approx(oe * np.exp(-Z975 * se_s / (3 / 8)), abs=1e-9)
    assert result["oe"]["upper"] == pytest.approx(oe * np.exp(Z975 * se_s / (3 / 8)), abs=1e-9)
    assert (result["n"], result["n_events"], result["t"]) == (6, 2, 4.5)
    # groups of 3 by predicted risk: {0.1, 0.2, 0.3} (times 2, 4, 5: no event by 4.5) and
    # {0.4, 0.5, 0.6} (times 6, 3, 1: KM 1 - 2/3 * 1/2 = 2/3 by 4.5)
    low, high = result["groups"]
    assert (low["group"], low["n"], low["n_events"]) == (1, 3, 0)
    assert low["predicted"] == pytest.approx(0.2)
    assert low["observed"] == pytest.approx(0.0)
    assert (high["group"], high["n"], high["n_events"]) == (2, 3, 2)
    assert high["predicted"] == pytest.approx(0.5)
    assert high["observed"] == pytest.approx(2 / 3)


def test_calibration_matches_lifelines_kaplan_meier(cohort: pd.DataFrame) -> None:
    t = 1.0
    result = calibration_at(cohort, "time", "event", "risk", t=t, groups=5)
    km = KaplanMeierFitter().fit(cohort["time"], cohort["event"])
    surv = float(km.survival_function_at_times(t).iloc[0])
    table = km.event_table
    table = table[(table.index <= t) & (table["observed"] > 0)]
    d, r = table["observed"].to_numpy(float), table["at_risk"].to_numpy(float)
    greenwood = np.sum(d / (r * (r - d)))
    observed = result["observed"]
    assert observed["estimate"] == pytest.approx(1 - surv, abs=1e-12)
    assert observed["se"] == pytest.approx(surv * np.sqrt(greenwood), abs=1e-10)
    half = Z975 * np.sqrt(greenwood)  # survfit's log-scale CI of S
    assert observed["lower"] == pytest.approx(1 - min(1.0, surv * np.exp(half)), abs=1e-10)
    assert observed["upper"] == pytest.approx(1 - surv * np.exp(-half), abs=1e-10)
    groups = result["groups"]
    assert [g["group"] for g in groups] == [1, 2, 3, 4, 5]
    assert [g["n"] for g in groups] == [30] * 5
    ordered = cohort.sort_values("risk")
    for g, start in zip(groups, range(0, 150, 30), strict=True):
        members = ordered.iloc[start:start + 30]
        assert g["predicted"] == pytest.approx(members["risk"].mean(), abs=1e-12)
        assert g["n_events"] == int(((members["time"] <= t) & (members["event"] == 1)).sum())
        group_km = KaplanMeierFitter().fit(members["time"], members["event"])
        assert g["observed"] == pytest.approx(
            1 - float(group_km.survival_function_at_times(t).iloc[0]), abs=1e-12)
    assert sum(g["n_events"] for g in groups) == result["n_events"]


@pytest.mark.parametrize("t", [0.5, 1.0, 2.0])
def test_brier_matches_numpy_and_risk_regression_score(cohort: pd.DataFrame, t: float) -> None:
    brier = calibration_at(cohort, "time", "event", "risk", t=t)["brier"]
    time, event = cohort["time"].to_numpy(), cohort["event"].to_numpy()
    assert brier["model"] == pytest.approx(brier_numpy(time, event, cohort["risk"].to_numpy(), t),
                                           abs=1e-12)
    null_risk = 1 - km_step(time, event, np.array([t]))[0]
    assert brier["null"] == pytest.approx(brier_numpy(time, event, np.full(len(time), null_risk),
                                                      t), abs=1e-12)
    # riskRegression calls Surv() unqualified: survival is attached for the call only
    score = r_value(
        "attached <- 'package:survival' %in% search(); library(survival);"
        " s <- riskRegression::Score(list(frozen = matrix(d$risk, ncol = 1)),"
        " formula = Surv(time, event) ~ 1, data = d, times = t, metrics = 'brier',"
        " summary = 'ipa', null.model = TRUE, cens.model = 'km', se.fit = FALSE);"
        " if (!attached) detach('package:survival');"
        " as.data.frame(s$Brier$score)[, c('model', 'Brier', 'IPA')]",
        d=cohort[["time", "event", "risk"]], t=t)
    by_model = score.set_index("model")
    assert brier["model"] == pytest.approx(by_model.loc["frozen", "Brier"], abs=1e-10)
    assert brier["null"] == pytest.approx(by_model.loc["Null model", "Brier"], abs=1e-10)
    assert brier["ipa"] == pytest.approx(by_model.loc["frozen", "IPA"], abs=1e-10)


def test_calibration_group_beyond_follow_up_is_none() -> None:
    df = pd.DataFrame({"time": [1.0, 2.0, 3.0, 8.0, 9.0, 10.0], "event": [0, 1, 0, 1, 1, 1],
                       "risk": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})
    result = calibration_at(df, "time", "event", "risk", t=5.0, groups=2)
    assert result["groups"][0]["observed"] is None  # last follow-up (3) censored before 5
    assert result["groups"][1]["observed"] == pytest.approx(0.0)


# ------------------------------------------------------------------------- slope


def test_calibration_slope_matches_lifelines(cohort: pd.DataFrame) -> None:
    result = calibration_slope(cohort, "time", "event", "lp")
    json.dumps(result)
    cox = CoxPHFitter().fit(cohort[["time", "event", "lp"]], "time", "event")
    coef = float(cox.params_["lp"])
    se = float(cox.standard_errors_["lp"])
    ci = cox.confidence_intervals_.loc["lp"].to_numpy()
    assert result["slope"] == pytest.approx(coef, abs=1e-4)
    assert result["se"] == pytest.approx(se, abs=1e-4)
    assert result["lower"] == pytest.approx(ci[0], abs=1e-4)
    assert result["upper"] == pytest.approx(ci[1], abs=1e-4)
    from scipy.stats import norm

    assert result["p_unity"] == pytest.approx(2 * norm.sf(abs(coef - 1) / se), abs=1e-4)
    assert (result["n"], result["n_events"]) == (len(cohort), int(cohort["event"].sum()))


def test_calibration_slope_is_one_for_a_shift() -> None:
    """A constant added to lp changes nothing: the slope sees only its ordering and scale."""
    rng = np.random.default_rng(3)
    lp = rng.normal(size=120)
    time = rng.exponential(np.exp(-lp))
    df = pd.DataFrame({"time": time, "event": 1, "lp": lp, "shifted": lp + 5.0})
    a = calibration_slope(df, "time", "event", "lp")
    b = calibration_slope(df, "time", "event", "shifted")
    assert a["slope"] == pytest.approx(b["slope"], abs=1e-9)


# ------------------------------------------------------------------------- input errors


def test_bad_input_names_the_column(cohort: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="nope"):
        concordance_indices(cohort, "time", "event", "nope", tau=1.0)
    with pytest.raises(InputError, match=r"'lp'.*missing"):
        calibration_slope(cohort.assign(lp=[np.nan, *cohort["lp"].tolist()[1:]]),
                          "time", "event", "lp")
    with pytest.raises(InputError, match=r"'risk'.*\[0, 1\]"):
        calibration_at(cohort.assign(risk=cohort["risk"] + 1), "time", "event", "risk", t=1.0)
    with pytest.raises(InputError, match="'event'"):
        calibration_at(cohort.assign(event=2), "time", "event", "risk", t=1.0)
    with pytest.raises(InputError, match="beyond the follow-up"):
        calibration_at(cohort, "time", "event", "risk", t=100.0)
    with pytest.raises(InputError, match="no event"):
        concordance_indices(cohort, "time", "event", "lp", tau=1e-6)


# ------------------------------------------------------------------------- baseline risk


def test_predicted_risk_from_baseline_by_hand() -> None:
    times, surv = [1.0, 2.0, 4.0], [0.9, 0.8, 0.5]
    lp = np.array([0.0, np.log(2.0), -np.log(2.0)])
    np.testing.assert_allclose(predicted_risk_from_baseline(times, surv, lp, 0.5), [0, 0, 0])
    np.testing.assert_allclose(predicted_risk_from_baseline(times, surv, lp, 1.0),
                               [0.1, 1 - 0.81, 1 - np.sqrt(0.9)])
    np.testing.assert_allclose(predicted_risk_from_baseline(times, surv, lp, 3.9),
                               [0.2, 1 - 0.64, 1 - np.sqrt(0.8)])
    np.testing.assert_allclose(predicted_risk_from_baseline(times, surv, lp, 40.0),
                               [0.5, 0.75, 1 - np.sqrt(0.5)])
    single = predicted_risk_from_baseline(times, surv, 0.0, 2.0)
    assert single.shape == (1,)
    assert single[0] == pytest.approx(0.2)


@pytest.mark.parametrize("times, surv, lp, match", [
    ([1.0, 2.0], [0.9], 0.0, "same length"),
    ([2.0, 1.0], [0.9, 0.8], 0.0, "increasing"),
    ([1.0, 2.0], [0.8, 0.9], 0.0, "not increase"),
    ([1.0, 2.0], [0.9, 0.8], [0.0, np.nan], "lp"),
])
def test_predicted_risk_from_baseline_rejects_bad_input(times: list[float], surv: list[float],
                                                        lp: Any, match: str) -> None:
    with pytest.raises(InputError, match=match):
        predicted_risk_from_baseline(times, surv, lp, 1.0)


def test_smoothed_calibration_is_small_for_true_risks_and_sees_halved_risks() -> None:
    """Predictions equal to the true risk give an ICI near 0; halving them gives an ICI near
    the mean of the halved amount (Austin, Harrell & van Klaveren 2020)."""
    from studyrunner.statistics.validation import smoothed_calibration

    rng = np.random.default_rng(3)
    n, t = 2000, 12.0
    lp = rng.normal(0.0, 1.0, n)
    rate = 0.03 * np.exp(lp)
    event_time = rng.exponential(1.0 / rate)
    follow_up = rng.uniform(24.0, 36.0, n)
    frame = pd.DataFrame({"time": np.minimum(event_time, follow_up), "event": (event_time <= follow_up).astype(int),
                          "true": 1.0 - np.exp(-rate * t)})
    calibrated = smoothed_calibration(frame, "time", "event", "true", t)
    assert calibrated["ici"] < 0.02
    halved = smoothed_calibration(frame.assign(half=frame["true"] / 2), "time", "event", "half", t)
    assert halved["ici"] == pytest.approx(float(np.mean(frame["true"] / 2)), abs=0.02)
    assert halved["e90"] >= halved["e50"]
    curve = halved["curve"]
    assert len(curve["predicted"]) == len(curve["observed"]) > 10
    assert np.all(np.array(curve["observed"]) > np.array(curve["predicted"]))  # halved: observed above predicted
