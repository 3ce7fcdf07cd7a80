"""Time-dependent AUC (rscripts/timeroc.R) against hand computation (Mann-Whitney
proportion of concordant case-control pairs) and riskRegression::Score, an independent
implementation of the same IPCW estimator and of its influence-function standard error."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from studyrunner import rbridge
from studyrunner.rbridge import RError
from studyrunner.registry import time_key
from studyrunner.results.models import TimeRoc
from studyrunner.statistics.timeroc import time_dependent_auc, time_roc_record, withheld_reason

pytestmark = pytest.mark.needs_r

Z975 = 1.959963984540054

_SCORE_AUC_R = """
function(df, times) {
  suppressMessages({library(survival); library(riskRegression); library(prodlim)})
  # Score() expects a predicted risk per time (higher = event): the ranks of the marker
  # rescaled into (0, 1), a monotone transform that leaves the AUC unchanged.
  risk <- rank(df$marker) / (nrow(df) + 1)
  risk <- matrix(risk, nrow(df), length(times))
  s <- riskRegression::Score(list(marker = risk), formula = Hist(time, event) ~ 1,
                             data = df, times = times, metrics = "auc", cens.model = "km",
                             se.fit = TRUE, null.model = FALSE)
  as.data.frame(s$AUC$score[, c("times", "AUC", "se")])
}
"""


def score_auc(df: pd.DataFrame, times: list[float]) -> pd.DataFrame:
    """riskRegression::Score's AUC and its standard error at ``times``."""
    session = rbridge._r()
    function = session.ro.r(_SCORE_AUC_R)
    return rbridge.to_python(function(rbridge.to_r(df[["time", "event", "marker"]]),
                                      rbridge.to_r(times)))


def mann_whitney(case_markers: np.ndarray, control_markers: np.ndarray) -> float:
    """Proportion of concordant case-control pairs, ties counting one half."""
    diff = case_markers[:, None] - control_markers[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    frame = rbridge.to_python(rbridge._r().ro.r("survival::lung"))
    frame["event"] = (frame["status"] == 2).astype(int)
    frame["marker"] = frame["age"] / 10 + frame["ph.ecog"].fillna(1)  # ties in the marker
    return frame[["time", "event", "marker"]]


@pytest.fixture(scope="module")
def censored_no_ties() -> pd.DataFrame:
    """150 patients, continuous event and censoring times (no tied times), marker related
    to the hazard."""
    rng = np.random.default_rng(20240501)
    n = 150
    marker = rng.normal(size=n)
    event_time = rng.exponential(3.0 * np.exp(-0.8 * marker))
    censor_time = rng.uniform(0.5, 8.0, size=n)
    return pd.DataFrame({"time": np.minimum(event_time, censor_time),
                         "event": (event_time <= censor_time).astype(int),
                         "marker": np.round(marker, 1)},  # rounded: ties in the marker
                        index=[f"P{i:03d}" for i in range(n)])


def test_auc_without_censoring_is_the_mann_whitney_proportion() -> None:
    df = pd.DataFrame({"time": [1.0, 2, 3, 4, 5, 6, 7, 8],
                       "event": [1, 1, 1, 1, 1, 1, 1, 1],
                       "marker": [5.0, 2, 4, 4, 3, 1, 0, 2]})
    result = time_dependent_auc(df, "time", "event", "marker", [3.5, 5.5])
    # t = 3.5: cases times 1-3 (markers 5, 2, 4), controls times 4-8 (4, 3, 1, 0, 2)
    # concordant pairs: 5 > all five (5); 2: > 1, 0, tie 2 (2.5); 4: tie 4, > 3, 1, 0, 2 (4.5)
    assert result["auc"]["3.5"] == pytest.approx(12 / 15, abs=1e-12)
    assert result["auc"]["3.5"] == pytest.approx(
        mann_whitney(np.array([5.0, 2, 4]), np.array([4.0, 3, 1, 0, 2])), abs=1e-12)
    assert result["auc"]["5.5"] == pytest.approx(
        mann_whitney(np.array([5.0, 2, 4, 4, 3]), np.array([1.0, 0, 2])), abs=1e-12)
    table = {row["time"]: row for row in result["table"]}
    assert (table[3.5]["cases"], table[3.5]["controls"], table[3.5]["censored_before_t"]) \
        == (3, 5, 0)
    # the ROC curve runs from (0, 0) to (1, 1) and its trapezoidal area is the AUC
    fp, tp = (np.array(result["roc"]["3.5"][k]) for k in ("fp", "tp"))
    assert (fp[0], tp[0], fp[-1], tp[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fp) >= 0)
    assert np.all(np.diff(tp) >= 0)
    assert np.trapezoid(tp, fp) == pytest.approx(result["auc"]["3.5"], abs=1e-12)
    assert result["implementation"] == "studyrunner" or result["implementation"].startswith(
        "timeROC")


@pytest.mark.parametrize("dataset", ["lung", "censored_no_ties"])
def test_auc_and_se_equal_riskregression_where_no_event_time_equals_t(
        dataset: str, request: pytest.FixtureRequest) -> None:
    df = request.getfixturevalue(dataset)
    # lung: 1 and 2 years in days (no event at 365.25 or 730.5); simulated: years 1-4
    times = [365.25, 730.5] if dataset == "lung" else [1.0, 2.0, 3.0, 4.0]
    assert not df.loc[df["event"] == 1, "time"].isin(times).any()
    result = time_dependent_auc(df, "time", "event", "marker", times)
    reference = score_auc(df, times)
    for t, auc, se in zip(reference["times"], reference["AUC"], reference["se"], strict=True):
        key = time_key(t)
        assert result["auc"][key] == pytest.approx(auc, abs=1e-6)
        # influence-function SE: riskRegression's implementation of Blanche et al. (2013);
        # identical without tied times, within 1e-5 relative with lung's tied times (the
        # censoring-martingale terms at tied event/censoring times are ordered differently)
        assert result["se"][key] == pytest.approx(se, rel=1e-9 if dataset != "lung" else 1e-4)
        assert result["lower"][key] == pytest.approx(max(0.0, auc - Z975 * result["se"][key]),
                                                     abs=1e-6)
        assert result["upper"][key] == pytest.approx(min(1.0, auc + Z975 * result["se"][key]),
                                                     abs=1e-6)
    json.dumps(result, allow_nan=False)


def test_ipcw_weights_match_a_hand_computation(censored_no_ties: pd.DataFrame) -> None:
    """AUC = sum over case-control pairs of concordance / G(T_i-), normalised, with G the
    Kaplan-Meier censoring survival computed here in numpy (no tied times)."""
    df = censored_no_ties.sort_values("time")
    t = 2.0
    time, event, marker = (df[c].to_numpy() for c in ("time", "event", "marker"))
    n = len(df)
    at_risk = n - np.arange(n)                       # #{T >= T_(k)}, no ties
    factors = np.where(event == 0, 1 - 1 / at_risk, 1.0)
    g_left = np.concatenate([[1.0], np.cumprod(factors)[:-1]])   # G(T_(k)-)
    case = (time < t) & (event == 1)
    control = time > t
    weights = 1 / g_left[case]
    diff = marker[case][:, None] - marker[control][None, :]
    concordant = (diff > 0) + 0.5 * (diff == 0)
    expected = float((weights[:, None] * concordant).sum() / (weights.sum() * control.sum()))
    result = time_dependent_auc(censored_no_ties, "time", "event", "marker", [t])
    assert result["auc"]["2"] == pytest.approx(expected, abs=1e-12)
    row = result["table"][0]
    assert (row["cases"], row["controls"]) == (int(case.sum()), int(control.sum()))
    assert row["censored_before_t"] == n - case.sum() - control.sum()


def test_an_event_at_t_is_a_case_for_riskregression_but_neither_here() -> None:
    """timeROC (and this estimator) take cases T < t and controls T > t: a patient with an
    event at exactly t is neither. riskRegression::Score takes cases T <= t. Without
    censoring both are plain Mann-Whitney proportions, of different case sets."""
    df = pd.DataFrame({"time": [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10],
                       "event": [1] * 10,
                       "marker": [3.0, 9, 5, 1, 0, 4, 2, 6, 7, 8]})
    t = 5.0
    ours = time_dependent_auc(df, "time", "event", "marker", [t])
    reference = score_auc(df, [t])
    marker = df["marker"].to_numpy()
    time = df["time"].to_numpy()
    strict = mann_whitney(marker[time < t], marker[time > t])     # 4 cases, 5 controls
    inclusive = mann_whitney(marker[time <= t], marker[time > t])  # 5 cases, 5 controls
    assert ours["auc"]["5"] == pytest.approx(strict, abs=1e-12)
    assert float(reference["AUC"].iloc[0]) == pytest.approx(inclusive, abs=1e-12)
    # controls (times 6-10) have markers 4, 2, 6, 7, 8; cases before t: 3 > 2; 9 > all
    # five; 5 > 4, 2; 1 > none: 8 of 20 pairs. The event at t (marker 0) adds 5 discordant.
    assert strict == pytest.approx(8 / 20)
    assert inclusive == pytest.approx(8 / 25)
    assert ours["table"][0]["cases"] == 4
    assert ours["table"][0]["censored_before_t"] == 1


def test_time_without_cases_or_controls_gives_no_auc_and_a_reason(
        censored_no_ties: pd.DataFrame) -> None:
    first_event = censored_no_ties.loc[censored_no_ties["event"] == 1, "time"].min()
    early = first_event / 2
    late = censored_no_ties["time"].max() + 1
    result = time_dependent_auc(censored_no_ties, "time", "event", "marker", [early, late])
    rows = result["table"]
    assert result["auc"][time_key(early)] is None
    assert result["auc"][time_key(late)] is None
    assert rows[0]["cases"] == 0
    assert "no case" in rows[0]["reason"]
    assert rows[1]["controls"] == 0
    assert "no control" in rows[1]["reason"]
    assert result["roc"][time_key(early)] == {"fp": [], "tp": []}


def test_bad_input_names_the_column_and_row() -> None:
    df = pd.DataFrame({"time": [1.0, 2, 3], "event": [1, 0, 1], "marker": [1.0, math.nan, 2]},
                      index=["A", "B", "C"])
    with pytest.raises(RError, match=r"column 'marker': marker is missing in row\(s\) B"):
        time_dependent_auc(df, "time", "event", "marker", [1.5])
    with pytest.raises(RError, match="positive"):
        time_dependent_auc(df.fillna(0), "time", "event", "marker", [-1.0])
    with pytest.raises(KeyError, match="score"):
        time_dependent_auc(df, "time", "event", "score", [1.5])


# ----------------------------------------------------------------------------- cases, controls, withheld AUCs


def test_cases_and_controls_counted_by_hand_and_thin_aucs_withheld() -> None:
    """Constructed data, counted by hand: 30 patients, event times 1..30 alternately event/censored
    (events at odd times). At t = 5.5 the cases are the events at 1, 3, 5 (3) and the controls the
    25 patients with T > 5.5 (6..30); at t = 20.5 cases 10 (1, 3, ..., 19), controls 10 (21..30);
    at t = 27.5, 14 cases (1..27 odd), 3 controls (28, 29, 30)."""
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"time": np.arange(1.0, 31.0), "event": np.arange(1, 31) % 2,
                       "marker": rng.normal(size=30)})
    times = [5.5, 20.5, 27.5]
    record = time_roc_record(df, "time", "event", "marker", times, min_cases_controls=10)
    assert record["cases"] == [3, 10, 14]
    assert record["controls"] == [25, 10, 3]
    full = time_dependent_auc(df, "time", "event", "marker", times)
    # 20.5: ten of each is enough; the AUC is the estimator's
    assert record["auc"][1] == pytest.approx(full["auc"]["20.5"])
    assert "20.5" not in record["withheld"]
    assert "20.5" not in record["reasons"]
    # 5.5 (3 cases) and 27.5 (3 controls): withheld, the estimate kept, the reason naming the counts
    for i, t in ((0, "5.5"), (2, "27.5")):
        assert record["auc"][i] is None
        assert record["lower"][i] is None
        assert record["se"][i] is None
        assert record["withheld"][t]["auc"] == pytest.approx(full["auc"][t])
        assert record["withheld"][t]["upper"] == pytest.approx(full["upper"][t])
    assert record["reasons"]["5.5"] == "3 cases and 25 controls: fewer than 10 cases"
    assert record["reasons"]["27.5"] == "14 cases and 3 controls: fewer than 10 controls"
    # the record is the results.json shape
    TimeRoc.model_validate({**record, "time_unit": "months"})
    # a lower minimum keeps them all
    assert time_roc_record(df, "time", "event", "marker", times, min_cases_controls=3)["withheld"] == {}


def test_withheld_reason_names_what_is_short() -> None:
    assert withheld_reason(55, 1, 10) == "55 cases and 1 control: fewer than 10 controls"
    assert withheld_reason(1, 4, 10) == "1 case and 4 controls: fewer than 10 cases and controls"
    assert withheld_reason(10, 10, 10) is None


def test_no_case_reason_is_kept_not_withheld(censored_no_ties: pd.DataFrame) -> None:
    early = censored_no_ties.loc[censored_no_ties["event"] == 1, "time"].min() / 2
    record = time_roc_record(censored_no_ties, "time", "event", "marker", [early])
    assert record["cases"] == [0]
    assert record["withheld"] == {}
    assert "no case" in record["reasons"][time_key(early)]
