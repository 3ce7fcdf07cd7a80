"""Table 1: counts checked by hand, summaries against numpy, p-values against scipy."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, fisher_exact, mannwhitneyu

from studyrunner.statistics.table_one import table_one

pytestmark = pytest.mark.needs_r


def cohort() -> pd.DataFrame:
    """30 training and 20 test patients with hand-countable categories.

    sex: training 18 M / 12 F, test 8 M / 12 F (all expected counts >= 5: chi-squared).
    response: training 2 yes / 28 no, test 5 yes / 15 no (expected 4.2 < 5: Fisher).
    smoking: training 10 current / 15 former / 5 missing, test 9 / 9 / 2 missing.
    """
    rng = np.random.default_rng(3)
    n_train, n_test = 30, 20
    age = np.concatenate([rng.normal(62, 8, n_train), rng.normal(58, 9, n_test)]).round(1)
    age[[4, 33]] = np.nan
    return pd.DataFrame({
        "cohort": ["training"] * n_train + ["test"] * n_test,
        "sex": ["M"] * 18 + ["F"] * 12 + ["M"] * 8 + ["F"] * 12,
        "response": ["yes"] * 2 + ["no"] * 28 + ["yes"] * 5 + ["no"] * 15,
        "smoking": (["current"] * 10 + ["former"] * 15 + [None] * 5
                    + ["current"] * 9 + ["former"] * 9 + [None] * 2),
        "age": age,
    }, index=[f"P{i:03d}" for i in range(n_train + n_test)])


@pytest.fixture(scope="module")
def result() -> dict:
    data = cohort()
    training_ids = data.index[data["cohort"] == "training"].tolist()
    return table_one(
        data,
        groups={"Total": pd.Series(True, index=data.index), "Training": training_ids,
                "Test": (data["cohort"] == "test").to_numpy()},
        comparisons=[("Training", "Test")],
        categorical={"sex": "Sex", "response": "Objective response", "smoking": "Smoking"},
        continuous={"age": "Age (years)"})


def variable(result: dict, column: str) -> dict:
    return next(v for v in result["variables"] if v["column"] == column)


def test_group_sizes_and_json(result: dict) -> None:
    assert result["groups"] == {"Total": {"n": 50}, "Training": {"n": 30}, "Test": {"n": 20}}
    assert result["comparisons"] == [["Training", "Test"]]
    json.dumps(result, allow_nan=False)


def test_categorical_counts_proportions_and_unknown_level(result: dict) -> None:
    smoking = variable(result, "smoking")
    assert smoking["label"] == "Smoking"
    assert [level["level"] for level in smoking["levels"]] == ["current", "former", "Unknown"]
    counts = {level["level"]: level["counts"] for level in smoking["levels"]}
    assert counts["Unknown"] == {"Total": {"n": 7, "proportion": 7 / 50},
                                 "Training": {"n": 5, "proportion": 5 / 30},
                                 "Test": {"n": 2, "proportion": 2 / 20}}
    assert counts["former"]["Training"] == {"n": 15, "proportion": 0.5}
    assert [level["level"] for level in variable(result, "sex")["levels"]] == ["F", "M"]


def test_chi_squared_without_continuity_correction_matches_scipy(result: dict) -> None:
    for column, table in (("sex", [[18, 8], [12, 12]]), ("smoking", [[10, 9], [15, 9]])):
        test = variable(result, column)["tests"][0]
        statistic, p, _, _ = chi2_contingency(np.array(table), correction=False)
        assert test["groups"] == ["Training", "Test"]
        assert test["test"] == "Pearson's chi-squared test"
        assert test["statistic"] == pytest.approx(statistic, rel=1e-10)
        assert test["p"] == pytest.approx(p, rel=1e-10)


def test_fisher_exact_when_an_expected_count_is_below_five(result: dict) -> None:
    test = variable(result, "response")["tests"][0]
    assert test["test"] == "Fisher's exact test"
    assert test["statistic"] is None
    # R's table() orders levels alphabetically: rows no, yes
    assert test["p"] == pytest.approx(fisher_exact([[28, 15], [2, 5]]).pvalue, rel=1e-9)


def test_continuous_summary_and_mann_whitney_match_numpy_and_scipy(result: dict) -> None:
    data = cohort()
    age = variable(result, "age")
    training = data.loc[data["cohort"] == "training", "age"].dropna().to_numpy()
    test = data.loc[data["cohort"] == "test", "age"].dropna().to_numpy()
    summary = age["summary"]["Training"]
    assert (summary["n"], summary["missing"]) == (29, 1)
    q1, median, q3 = np.percentile(training, [25, 50, 75])
    assert summary["median"] == pytest.approx(median)
    assert summary["q1"] == pytest.approx(q1)
    assert summary["q3"] == pytest.approx(q3)
    assert summary["mean"] == pytest.approx(training.mean())
    assert summary["sd"] == pytest.approx(training.std(ddof=1))
    reference = mannwhitneyu(training, test, use_continuity=True, method="asymptotic",
                             alternative="two-sided")
    row = age["tests"][0]
    assert row["test"] == "Mann-Whitney U test"
    assert row["statistic"] == pytest.approx(reference.statistic)  # U of the first group
    assert row["p"] == pytest.approx(reference.pvalue, rel=1e-10)


def test_overlapping_comparison_and_unknown_ids_are_refused() -> None:
    data = cohort()
    groups = {"A": data.index[:30].tolist(), "B": data.index[25:].tolist()}
    with pytest.raises(ValueError, match=r"overlap.*P025"):
        table_one(data, groups, [("A", "B")], {"sex": "Sex"}, {})
    with pytest.raises(KeyError, match="X999"):
        table_one(data, {"A": ["X999"]}, [], {"sex": "Sex"}, {})


# ----------------------------------------------------------------------------- time-to-event endpoints


def survival_cohort() -> pd.DataFrame:
    """120 patients in two arms, exponential event times (mean 20) censored uniformly in 10-80,
    times in tenths with no ties and no Kaplan-Meier step landing exactly on one half (where R takes
    the midpoint of the flat stretch and lifelines its start); one time missing."""
    rng = np.random.default_rng(11)
    n = 120
    event_time = rng.exponential(20, n).round(1) + 0.05
    censor_time = rng.uniform(10, 80, n).round(1) + 0.02
    data = pd.DataFrame({"time": np.minimum(event_time, censor_time),
                         "event": (event_time <= censor_time).astype(int),
                         "arm": np.where(np.arange(n) % 2 == 0, "A", "B")},
                        index=[f"S{i:03d}" for i in range(n)])
    data.loc["S000", "time"] = np.nan           # one missing time: left out and counted
    return data


def greenwood_log_median(time: np.ndarray, event: np.ndarray) -> tuple[float, float, float]:
    """Kaplan-Meier median with the CI of Brookmeyer & Crowley from the log-transformed Greenwood
    interval (survfit's conf.type "log"), by hand: the first time the curve, its upper and its lower
    limit fall to 0.5 or below (no ties in the data)."""
    order = np.argsort(time)
    t, d = time[order], event[order]
    at_risk = len(t) - np.arange(len(t))
    surv = np.cumprod(1 - d / at_risk)
    var_log = np.cumsum(d / (at_risk * (at_risk - d)))
    half = 1.959964 * np.sqrt(var_log)
    lower, upper = surv * np.exp(-half), np.minimum(surv * np.exp(half), 1)
    events = d == 1

    def first(curve: np.ndarray) -> float:
        below = t[events & (curve <= 0.5)]
        return float(below[0]) if below.size else float("nan")

    return first(surv), first(lower), first(upper)


@pytest.fixture(scope="module")
def survival() -> dict:
    data = survival_cohort()
    return table_one(data, groups={"Total": pd.Series(True, index=data.index), "A": data["arm"] == "A",
                                   "B": data["arm"] == "B"},
                     comparisons=[("A", "B")], categorical={}, continuous={},
                     time_to_event={"Progression-free survival (months)": ("time", "event")})


def test_time_to_event_median_and_reverse_km_follow_up_match_lifelines() -> None:
    """log-log intervals (lifelines' exponential Greenwood) against lifelines' KaplanMeierFitter: the
    median with its CI, and the median follow-up by reverse Kaplan-Meier (censorings as events)."""
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    from studyrunner.statistics.table_one import survival_rows

    data = survival_cohort()
    masks = {"A": data["arm"] == "A", "B": data["arm"] == "B"}
    row = survival_rows(data, masks, [], {"PFS": ("time", "event")}, conf_type="log-log")[0]
    known = data["time"].notna()
    for name, mask in masks.items():
        rows = data[mask & known]
        km = KaplanMeierFitter().fit(rows["time"], rows["event"])
        reverse = KaplanMeierFitter().fit(rows["time"], 1 - rows["event"])
        ours = row["survival"][name]
        assert ours["median"] == pytest.approx(km.median_survival_time_)
        assert [ours["lower"], ours["upper"]] == pytest.approx(
            median_survival_times(km.confidence_interval_).to_numpy().ravel().tolist())
        assert ours["followup_median"] == pytest.approx(reverse.median_survival_time_)
        lower, upper = median_survival_times(reverse.confidence_interval_).to_numpy().ravel().tolist()
        assert ours["followup_lower"] == pytest.approx(lower)
        # R leaves the upper limit NA (not reached) when only the last step, where the reverse curve
        # falls to 0 and has no interval, would reach one half; lifelines then gives that time or inf
        if np.isnan(ours["followup_upper"]):
            assert upper == np.inf or upper == pytest.approx(rows["time"].max())
        else:
            assert ours["followup_upper"] == pytest.approx(upper)
        assert (ours["n"], ours["events"]) == (len(rows), int(rows["event"].sum()))


def test_time_to_event_row_of_table_one(survival: dict) -> None:
    """The default (log) interval against the hand-computed Greenwood limits; the log-rank test
    against lifelines; counts and the missing time."""
    from lifelines.statistics import logrank_test

    data = survival_cohort()
    row = variable(survival, "time")
    assert (row["type"], row["event"], row["label"]) == ("time_to_event", "event", "Progression-free survival (months)")
    for name in ("A", "B"):
        rows = data[(data["arm"] == name) & data["time"].notna()]
        median, lower, upper = greenwood_log_median(rows["time"].to_numpy(), rows["event"].to_numpy())
        ours = row["survival"][name]
        assert [ours["median"], ours["lower"], ours["upper"]] == pytest.approx([median, lower, upper], nan_ok=True)
        reverse = greenwood_log_median(rows["time"].to_numpy(), 1 - rows["event"].to_numpy())
        assert [ours["followup_median"], ours["followup_lower"]] == pytest.approx(list(reverse[:2]))
    assert row["survival"]["A"]["missing"] == 1
    assert row["survival"]["B"]["missing"] == 0
    assert row["survival"]["Total"]["n"] == 119
    a, b = (data[(data["arm"] == g) & data["time"].notna()] for g in ("A", "B"))
    reference = logrank_test(a["time"], b["time"], a["event"], b["event"])
    test = row["tests"][0]
    assert test["test"] == "Log-rank test"
    assert test["statistic"] == pytest.approx(reference.test_statistic)
    assert test["p"] == pytest.approx(reference.p_value)
    json.dumps(survival)


@pytest.mark.skipif(__import__("shutil").which("pdftotext") is None, reason="poppler-utils not installed")
def test_time_to_event_row_in_the_report(tmp_path, survival: dict) -> None:
    """Table 1 of the report prints the Kaplan-Meier median and the reverse Kaplan-Meier follow-up per
    group (the nsclc fixture with this endpoint added), and no median (IQR) of the times."""
    from studyrunner.report import render_report
    from tests.test_report import FIXTURE, pdf_pages, write_run

    results = json.loads(FIXTURE.read_text(encoding="utf-8"))
    groups = list(results["table_one"]["groups"])
    row = variable(survival, "time")
    results["table_one"]["variables"].append(
        {**row, "survival": {g: row["survival"][name]
                             for g, name in zip(groups, ["Total", "A", "B"] * 3, strict=False)},
         "tests": [row["tests"][0]] * len(results["table_one"]["comparisons"])})
    text = " ".join(pdf_pages(render_report(write_run(tmp_path, results))))
    a = row["survival"]["Total"]

    def fmt(v: float) -> str:
        return f"{v:.1f}"

    assert "Progression-free survival (months), Kaplan–Meier" in text
    assert f"{fmt(a['median'])} ({fmt(a['lower'])}\u2013{fmt(a['upper'])})" in text
    assert f"{a['events']} / {a['n']}" in text                      # Events / patients
    follow_up = f"{fmt(a['followup_median'])} ({fmt(a['followup_lower'])}\u2013NR)"  # upper limit not reached
    assert "Median follow-up, reverse Kaplan–Meier (95% CI)" in text
    assert follow_up in text
    assert "Schemper" in text
