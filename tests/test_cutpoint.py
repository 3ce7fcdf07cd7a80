"""Maximally selected log-rank cut-off (rscripts/cutpoint.R) against the published DLBCL
example of maxstat (Hothorn & Lausen 2003; cut-off 0.1860526, M = 3.1772), a numpy
recomputation of the standardised log-rank statistic, and lifelines / hand computation for
the groups it defines."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test

from studyrunner import rbridge
from studyrunner.rbridge import RError
from studyrunner.statistics.cutpoint import groups_by_cutpoint, maxstat_cutpoint

pytestmark = pytest.mark.needs_r

Z975 = 1.959963984540054


@pytest.fixture(scope="module")
def dlbcl() -> pd.DataFrame:
    """maxstat's DLBCL data (time, cens = death, MGE), the 40 patients with a time."""
    frame = rbridge.to_python(rbridge._r().ro.r(
        'local({data(DLBCL, package = "maxstat", envir = environment()); DLBCL})'))
    return frame.loc[frame["time"].notna(), ["time", "cens", "MGE"]]


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    frame = rbridge.to_python(rbridge._r().ro.r("survival::lung"))
    frame["event"] = (frame["status"] == 2).astype(int)
    return frame[["time", "event", "sex", "age"]]


def logrank_scores(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Log-rank scores a_i = delta_i - sum_{j: g_j <= g_i} delta_j / (n - g_j + 1), with
    g_i = #{T_k <= T_i} (Lausen & Schumacher 1992; Hothorn & Lausen 2003)."""
    n = len(time)
    g = np.array([(time <= t).sum() for t in time])
    contribution = event / (n - g + 1)
    return np.array([event[i] - contribution[g <= g[i]].sum() for i in range(n)])


def max_standardised_statistic(time, event, marker, minprop=0.1, maxprop=0.9):
    """max over cut-offs c of |S(c) - E| / sqrt(V), S(c) = sum of scores with marker <= c,
    E and V its permutation mean and variance."""
    a = logrank_scores(time, event)
    n = len(a)
    lo, hi = np.quantile(marker, [minprop, maxprop])
    best = (-np.inf, None)
    for c in np.unique(marker):
        if c < lo or c >= hi:
            continue
        low = marker <= c
        m = low.sum()
        variance = m * (n - m) / (n * (n - 1)) * ((a - a.mean()) ** 2).sum()
        z = abs(a[low].sum() - m * a.mean()) / np.sqrt(variance)
        if z > best[0]:
            best = (z, c)
    return best


def test_maxstat_reproduces_the_published_dlbcl_cutoff(dlbcl: pd.DataFrame) -> None:
    result = maxstat_cutpoint(dlbcl, "time", "cens", "MGE", pmethod="Lau94")
    assert result["cutpoint"] == pytest.approx(0.1860526, abs=5e-8)
    assert result["statistic"] == pytest.approx(3.1772, abs=5e-5)
    assert (result["pmethod"], result["n"], result["n_events"]) == ("Lau94", 40, 22)
    statistic, cutpoint = max_standardised_statistic(*(dlbcl[c].to_numpy(float)
                                                       for c in ("time", "cens", "MGE")))
    assert result["statistic"] == pytest.approx(statistic, abs=1e-9)
    assert result["cutpoint"] == pytest.approx(cutpoint, abs=1e-12)
    # the Lau94 bound adjusts for the search over cut-offs: above the unadjusted two-sided
    # normal p-value of M (0.0015), and below 0.05 as in the published example
    assert math.erfc(result["statistic"] / math.sqrt(2)) < result["p_value"] < 0.05
    json.dumps(result, allow_nan=False)


@pytest.mark.filterwarnings("ignore:.*Completion with error")  # mvtnorm's exactGauss precision
def test_pmethod_changes_the_p_value_not_the_cutoff(dlbcl: pd.DataFrame) -> None:
    lau94 = maxstat_cutpoint(dlbcl, "time", "cens", "MGE", pmethod="Lau94")
    for pmethod in ("Lau92", "exactGauss"):
        other = maxstat_cutpoint(dlbcl, "time", "cens", "MGE", pmethod=pmethod)
        assert other["pmethod"] == pmethod
        assert (other["cutpoint"], other["statistic"]) == (lau94["cutpoint"], lau94["statistic"])
        assert other["p_value"] != lau94["p_value"]
    # HL's exact algorithm works on integer-valued scores: same cut-off, M within 0.01
    hl = maxstat_cutpoint(dlbcl, "time", "cens", "MGE", pmethod="HL")
    assert hl["cutpoint"] == lau94["cutpoint"]
    assert hl["statistic"] == pytest.approx(lau94["statistic"], abs=0.01)
    with pytest.raises(ValueError, match="pmethod"):
        maxstat_cutpoint(dlbcl, "time", "cens", "MGE", pmethod="bonferroni")


def first_time_at_or_below_half(times: np.ndarray, curve: np.ndarray) -> float:
    """First time a step curve is <= 0.5; where it equals 0.5 exactly, the midpoint with the
    next step (survfit's quantile rule); NaN if never."""
    below = np.flatnonzero(curve <= 0.5 + 1e-12)
    if below.size == 0:
        return np.nan
    k = below[0]
    if abs(curve[k] - 0.5) < 1e-12 and k + 1 < len(times):
        return float((times[k] + times[k + 1]) / 2)
    return float(times[k])


def median_with_ci(time: np.ndarray, event: np.ndarray) -> tuple[float, float, float]:
    """Kaplan-Meier median and 95% CI by hand: the first times where S and its lower /
    upper log-scale Greenwood limits fall to 0.5 (NaN if never)."""
    km = KaplanMeierFitter().fit(time, event)
    table = km.event_table
    table = table[table["observed"] > 0]
    d, r = table["observed"].to_numpy(float), table["at_risk"].to_numpy(float)
    steps = table.index.to_numpy(float)
    surv = np.cumprod(1 - d / r)
    half = Z975 * np.sqrt(np.cumsum(d / (r * (r - d))))
    lower, upper = surv * np.exp(-half), np.minimum(1, surv * np.exp(half))
    median = first_time_at_or_below_half(steps, surv)
    if not np.isclose(surv, 0.5).any():  # lifelines agrees when S never equals 0.5 exactly
        assert median == pytest.approx(km.median_survival_time_) or (
            np.isnan(median) and np.isinf(km.median_survival_time_))
    return (median, first_time_at_or_below_half(steps, lower),
            first_time_at_or_below_half(steps, upper))


@pytest.mark.parametrize("dataset", ["lung", "dlbcl"])
def test_groups_match_lifelines_and_hand_computation(dataset: str,
                                                     request: pytest.FixtureRequest) -> None:
    df = request.getfixturevalue(dataset)
    time, event, marker, cutpoint = (("time", "event", "sex", 1.5) if dataset == "lung"
                                      else ("time", "cens", "MGE", 0.1860526))
    result = groups_by_cutpoint(df, time, event, marker, cutpoint, km_times=[0, 12])
    high = df[marker] > cutpoint
    for name, members in (("low", df[~high]), ("high", df[high])):
        row = result["groups"][name]
        assert (row["n"], row["n_events"]) == (len(members), int(members[event].sum()))
        median, median_lower, median_upper = median_with_ci(members[time].to_numpy(),
                                                            members[event].to_numpy())
        for ours, reference in ((row["median"], median), (row["median_lower"], median_lower),
                                (row["median_upper"], median_upper)):
            if np.isfinite(reference):
                assert ours == pytest.approx(reference, abs=1e-9)
            else:
                assert ours is None  # the curve (or its CI limit) never reaches 0.5
        km = KaplanMeierFitter().fit(members[time], members[event])
        np.testing.assert_allclose(result["km"][name]["surv"],
                                   km.survival_function_at_times(result["km"][name]["time"]),
                                   atol=1e-12)
    reference = logrank_test(df.loc[~high, time], df.loc[high, time],
                             df.loc[~high, event], df.loc[high, event])
    assert result["logrank_chisq"] == pytest.approx(reference.test_statistic, rel=1e-8)
    assert result["logrank_p"] == pytest.approx(reference.p_value, rel=1e-6)
    cox = CoxPHFitter().fit(pd.DataFrame({"t": df[time], "e": df[event],
                                          "high": high.astype(float)}), "t", "e")
    assert result["hr"] == pytest.approx(float(np.exp(cox.params_["high"])), rel=1e-5)
    assert result["hr_lower"] == pytest.approx(
        float(cox.summary.loc["high", "exp(coef) lower 95%"]), rel=1e-4)
    assert result["risk_table"]["low"][0] == int((~high).sum())
    json.dumps(result, allow_nan=False)


def test_published_lung_medians_by_sex(lung: pd.DataFrame) -> None:
    # survfit(Surv(time, status) ~ sex, data = lung): 270 days (212-310) for men,
    # 426 days (348-550) for women
    groups = groups_by_cutpoint(lung, "time", "event", "sex", 1.5)["groups"]
    assert [groups["low"][k] for k in ("median", "median_lower", "median_upper")] == \
        [270, 212, 310]
    assert [groups["high"][k] for k in ("median", "median_lower", "median_upper")] == \
        [426, 348, 550]


def test_bad_marker_is_reported(lung: pd.DataFrame) -> None:
    with pytest.raises(RError, match="marker is constant"):
        maxstat_cutpoint(lung.assign(flat=1.0), "time", "event", "flat")
    row = lung.index[2]
    with pytest.raises(RError, match=rf"column 'age': marker is missing in row\(s\) {row}"):
        maxstat_cutpoint(lung.assign(age=lung["age"].where(lung.index != row)),
                         "time", "event", "age")
