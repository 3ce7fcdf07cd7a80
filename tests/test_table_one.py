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
