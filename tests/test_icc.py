"""ICC reproducibility filter (rscripts/icc.R) against Shrout & Fleiss's published example,
a two-reader case computed by hand, and psych::ICC run in a separate R process."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from studyrunner.rbridge import RError, r_function
from studyrunner.statistics.icc import ICC_COLUMNS, icc_filter

pytestmark = pytest.mark.needs_r

FORMS = {  # (model, type, unit) -> psych::ICC row
    ("oneway", "agreement", "single"): "ICC1",
    ("twoway", "agreement", "single"): "ICC2",
    ("twoway", "consistency", "single"): "ICC3",
    ("oneway", "agreement", "average"): "ICC1k",
    ("twoway", "agreement", "average"): "ICC2k",
    ("twoway", "consistency", "average"): "ICC3k",
}


def psych_icc(reader1: np.ndarray, reader2: np.ndarray) -> list[dict]:
    """psych::ICC(lmer = FALSE) of each column pair, in a separate Rscript process."""
    payload = json.dumps({"a": reader1.T.tolist(), "b": reader2.T.tolist()})
    code = (
        "d <- jsonlite::fromJSON(file('stdin')); out <- lapply(seq_len(nrow(d$a)), function(j) {"
        " r <- suppressMessages(psych::ICC(cbind(d$a[j, ], d$b[j, ]), lmer = FALSE))$results;"
        " list(type = as.character(r$type), icc = r$ICC, lower = r[['lower bound']],"
        " upper = r[['upper bound']]) });"
        " cat(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE))")
    out = subprocess.run(["Rscript", "-e", code], input=payload, capture_output=True, check=True,
                         text=True, encoding="utf-8")
    return json.loads(out.stdout)


def test_shrout_fleiss_table_2_published_values() -> None:
    # Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; Table 4 gives
    # ICC(1,1) = .17, ICC(2,1) = .29, ICC(3,1) = .71, ICC(1,4) = .44, ICC(2,4) = .62,
    # ICC(3,4) = .91.
    ratings = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8],
                        [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float)
    judges = [pd.DataFrame({"x": ratings[:, j]}) for j in range(4)]
    forms = r_function("icc", "icc_all_forms")(judges).iloc[0]
    published = {"ICC1": 0.17, "ICC2": 0.29, "ICC3": 0.71,
                 "ICC1k": 0.44, "ICC2k": 0.62, "ICC3k": 0.91}
    for name, value in published.items():
        assert forms[name] == pytest.approx(value, abs=0.005), name


def test_two_readers_hand_computed_mean_squares() -> None:
    # 3 patients, reader 1 = (1, 2, 3), reader 2 = (2, 2, 4). Grand mean 7/3; patient means
    # 1.5, 2, 3.5; reader means 2, 8/3. SS_patients = 2 * 13/6 = 13/3 -> MSB = 13/6;
    # SS_readers = 3 * 2/9 = 2/3 -> MSJ = 2/3; SS_total = 16/3; SS_error = 1/3 -> MSE = 1/6;
    # MSW = (16/3 - 13/3) / 3 = 1/3.
    # ICC1 = (MSB - MSW)/(MSB + MSW) = 11/15; ICC2 = (MSB - MSE)/(MSB + MSE + 2(MSJ - MSE)/3)
    # = 3/4; ICC3 = (MSB - MSE)/(MSB + MSE) = 6/7; ICC1k = (MSB - MSW)/MSB = 11/13;
    # ICC2k = (MSB - MSE)/(MSB + (MSJ - MSE)/3) = 6/7; ICC3k = (MSB - MSE)/MSB = 12/13.
    one = pd.DataFrame({"f": [1.0, 2.0, 3.0]}, index=["a", "b", "c"])
    two = pd.DataFrame({"f": [4.0, 2.0, 2.0]}, index=["c", "b", "a"])  # matched by index
    expected = {"ICC1": 11 / 15, "ICC2": 3 / 4, "ICC3": 6 / 7,
                "ICC1k": 11 / 13, "ICC2k": 6 / 7, "ICC3k": 12 / 13}
    for form, name in FORMS.items():
        row = icc_filter(one, two, threshold=0.8, form=form).iloc[0]
        assert row["icc"] == pytest.approx(expected[name], abs=1e-12), name
        assert row["form"] == name
        assert bool(row["kept"]) == (expected[name] > 0.8)
        assert row["n"] == 3


def test_icc_filter_equals_psych_icc_for_every_form() -> None:
    rng = np.random.default_rng(11)
    n, p = 30, 12
    truth = rng.normal(size=(n, p)) * rng.uniform(0.5, 3, p)
    reader1 = truth + rng.normal(scale=rng.uniform(0.1, 2, p), size=(n, p))
    reader2 = truth + 0.3 + rng.normal(scale=rng.uniform(0.1, 2, p), size=(n, p))
    reference = psych_icc(reader1, reader2)
    names = [f"f{j}" for j in range(p)]
    ids = [f"P{i:02d}" for i in range(n)]
    one = pd.DataFrame(reader1, columns=names, index=ids)
    two = pd.DataFrame(reader2, columns=names, index=ids)
    for form, name in FORMS.items():
        table = icc_filter(one, two, threshold=0.8, form=form)
        assert table.columns.tolist() == list(ICC_COLUMNS)
        for j, ref in enumerate(reference):
            row_index = ref["type"].index(name)
            assert table["icc"][j] == pytest.approx(ref["icc"][row_index], abs=1e-10)
            assert table["lower"][j] == pytest.approx(ref["lower"][row_index], abs=1e-8)
            assert table["upper"][j] == pytest.approx(ref["upper"][row_index], abs=1e-8)
        assert table["kept"].tolist() == (table["icc"] > 0.8).tolist()


def test_only_patients_read_twice_count_and_constant_features_are_flagged() -> None:
    rng = np.random.default_rng(5)
    ids = [f"P{i:02d}" for i in range(40)]
    base = rng.normal(size=40)
    one = pd.DataFrame({"id": ids, "good": base + rng.normal(0, 0.1, 40), "flat": 2.0,
                        "gap": base + rng.normal(0, 0.5, 40)})
    one.loc[3, "gap"] = np.nan
    second = rng.choice(40, size=30, replace=False)  # 30 patients segmented twice
    two = pd.DataFrame({"id": [ids[i] for i in second],
                        "good": base[second] + rng.normal(0, 0.1, 30), "flat": 2.0,
                        "gap": base[second] + rng.normal(0, 0.5, 30)})
    table = icc_filter(one, two, id_column="id").set_index("feature")
    in_both = np.isin(np.arange(40), second)
    assert table.loc["good", "n"] == 30
    assert table.loc["gap", "n"] == (29 if 3 in second else 30)
    assert np.isnan(table.loc["flat", "icc"])
    assert not table.loc["flat", "kept"]
    assert "constant" in table.loc["flat", "reason"]
    # the reference on the matched complete pairs only
    order = [list(second).index(i) for i in np.flatnonzero(in_both)]
    a = one.loc[in_both, ["good", "gap"]].to_numpy()
    b = two.iloc[order][["good", "gap"]].to_numpy()
    complete = ~np.isnan(a[:, 1])
    ref_good = psych_icc(a[:, [0]], b[:, [0]])[0]
    ref_gap = psych_icc(a[complete][:, [1]], b[complete][:, [1]])[0]
    assert table.loc["good", "icc"] == pytest.approx(ref_good["icc"][1], abs=1e-10)
    assert table.loc["gap", "icc"] == pytest.approx(ref_gap["icc"][1], abs=1e-10)


def test_bad_input_names_the_table_and_column() -> None:
    one = pd.DataFrame({"f": [1.0, 2.0, 3.0], "g": ["a", "b", "c"]}, index=["a", "b", "c"])
    two = pd.DataFrame({"f": [1.0, 2.5, 3.0]}, index=["a", "b", "c"])
    with pytest.raises(KeyError, match=r"reader 2 table.*'g'"):
        icc_filter(one, two, features=["f", "g"])
    with pytest.raises(RError, match=r"reader 1 table: feature column\(s\) must be numeric: 'g'"):
        icc_filter(one, two.assign(g=[1.0, 2.0, 3.0]), features=["f", "g"])
    with pytest.raises(RError, match="one-way ICC model measures absolute agreement only"):
        icc_filter(one, two, features=["f"], form=("oneway", "consistency", "single"))
