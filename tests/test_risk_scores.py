"""Risk-score statistics of seed 000 (rscripts/risk_scores.R, cutpoint.R's X-tile scan,
concordance.R, cox_table.R, nomogram.R) against independent references:
lifelines Cox models, a hand-coded backward elimination, lifelines' concordance index, brute
force double loops over comparable pairs, a brute-force log-rank scan, a bootstrap of the
C-index difference, and the nomogram's own axes read back in numpy."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.statistics import logrank_test
from lifelines.utils import concordance_index
from scipy import stats

from studyrunner import rbridge
from studyrunner.errors import InputError
from studyrunner.protocol import SplitSection
from studyrunner.statistics.cnn_scores.clinical import mark_by_construction
from studyrunner.statistics.cnn_scores.scores import selection_overrides
from studyrunner.statistics.concordance import compare_concordance
from studyrunner.statistics.cox import linear_predictor
from studyrunner.statistics.cox_table import add_per_sd, cox_table
from studyrunner.statistics.cutpoint import xtile_cutpoint
from studyrunner.statistics.nomogram import nomogram_points
from studyrunner.statistics.risk_scores import (
    backward_cox_selection,
    fuse_scores,
    median_groups,
    subgroup_hazard,
)
from studyrunner.statistics.stratification import oracle_c_index

pytestmark = pytest.mark.needs_r


def simulate(n: int = 160, seed: int = 0) -> pd.DataFrame:
    """Risk vector (s1 noise, s2 weak, s3 strong), a second score, clinical covariates and
    exponential survival with uniform censoring; continuous times (no ties)."""
    rng = np.random.default_rng(seed)
    s1, s2, s3 = rng.normal(size=(3, n))
    histology = rng.choice(["adeno", "squamous", "other"], size=n, p=[0.5, 0.3, 0.2])
    ecog = rng.choice([0, 1, 2], size=n, p=[0.3, 0.5, 0.2])
    age = rng.normal(64, 8, size=n)
    lp = 0.5 * s2 + 1.0 * s3 + 0.4 * ecog + 0.3 * (histology == "squamous")
    t = rng.exponential(1.0, size=n) / np.exp(lp) * 300
    c = rng.uniform(50, 700, size=n)
    df = pd.DataFrame({"time": np.minimum(t, c), "event": (t <= c).astype(int),
                       "s1": s1, "s2": s2, "s3": s3, "age": age, "ecog": ecog,
                       "histology": histology, "other": s3 + rng.normal(0, 1.5, size=n)},
                      index=[f"P{i:03d}" for i in range(n)])
    return df


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate()


TIGHT = {"precision": 1e-12}  # lifelines' default stops ~1e-5 short of the maximum


def lifelines_cox(df: pd.DataFrame, covariates: list[str]) -> CoxPHFitter:
    frame = df[["time", "event", *covariates]].dropna().astype(float)
    return CoxPHFitter().fit(frame, "time", "event", fit_options=TIGHT)


def hand_backward(df: pd.DataFrame, candidates: list[str], threshold: float) -> list[str]:
    """Backward elimination by lifelines Wald p-values, written from the description."""
    terms = list(candidates)
    while True:
        p = lifelines_cox(df, terms).summary["p"]
        worst = p.idxmax()
        if len(terms) == 1 or p[worst] <= threshold:
            return terms
        terms.remove(worst)


# ------------------------------------------------------------------ backward selection


def test_backward_selection_matches_lifelines(data: pd.DataFrame) -> None:
    result = backward_cox_selection(data, "time", "event", ["s1", "s2", "s3"])
    assert result["kept"] == hand_backward(data, ["s1", "s2", "s3"], 0.05) == ["s2", "s3"]
    assert [s["dropped"] for s in result["steps"]] == ["s1"]
    full = lifelines_cox(data, ["s1", "s2", "s3"]).summary
    assert result["steps"][0]["p"] == pytest.approx(full.loc["s1", "p"], abs=1e-4)
    reference = lifelines_cox(data, ["s2", "s3"]).summary
    for row in result["coefficients"]:
        assert row["coef"] == pytest.approx(reference.loc[row["term"], "coef"], abs=1e-4)
        assert row["se"] == pytest.approx(reference.loc[row["term"], "se(coef)"], abs=1e-4)
        assert row["p"] == pytest.approx(reference.loc[row["term"], "p"], abs=1e-4)
        assert row["hr_lower"] == pytest.approx(
            reference.loc[row["term"], "exp(coef) lower 95%"], rel=1e-4)
    # the combined score (OSRS) = sum coef * score, here and on any other cohort
    coefs = result["lp_coefficients"]
    np.testing.assert_allclose(result["score"], data["s2"] * coefs["s2"] + data["s3"] * coefs["s3"],
                               rtol=1e-12)
    other = simulate(n=30, seed=5)
    np.testing.assert_allclose(linear_predictor(coefs, other),
                               other["s2"] * coefs["s2"] + other["s3"] * coefs["s3"], rtol=1e-12)
    assert result["note"] is None
    assert (result["n"], result["n_events"]) == (160, int(data["event"].sum()))
    json.dumps(result, allow_nan=False)


def test_backward_selection_keeps_one_term_when_none_passes(data: pd.DataFrame) -> None:
    result = backward_cox_selection(data, "time", "event", ["s1", "s2", "s3"], p_threshold=1e-30)
    assert result["kept"] == hand_backward(data, ["s1", "s2", "s3"], 1e-30) == ["s3"]
    assert [s["dropped"] for s in result["steps"]] == ["s1", "s2"]
    assert [s["n_terms"] for s in result["steps"]] == [3, 2]
    assert "no candidate reached" in result["note"]
    # p-value of s2 when dropped is its p in the two-term model
    assert result["steps"][1]["p"] == pytest.approx(
        lifelines_cox(data, ["s2", "s3"]).summary.loc["s2", "p"], abs=1e-4)


def test_backward_selection_rejects_missing_scores(data: pd.DataFrame) -> None:
    broken = data.assign(s2=data["s2"].where(data.index != "P007"))
    with pytest.raises(InputError, match=r"column 's2': score is missing .* row\(s\) P007"):
        backward_cox_selection(broken, "time", "event", ["s1", "s2"])
    with pytest.raises(InputError, match="not found"):
        backward_cox_selection(data, "time", "event", ["s1", "nope"])


# ------------------------------------------------------------------ fusion


def test_fusion_matches_lifelines_and_shares(data: pd.DataFrame) -> None:
    result = fuse_scores(data, "time", "event", ["s3", "other"])
    reference = lifelines_cox(data, ["s3", "other"]).summary
    for row in result["coefficients"]:
        assert row["coef"] == pytest.approx(reference.loc[row["term"], "coef"], abs=1e-4)
        assert row["p"] == pytest.approx(reference.loc[row["term"], "p"], abs=1e-4)
    coef = reference["coef"]
    contribution = {k: abs(coef[k]) * data[k].std(ddof=1) for k in ("s3", "other")}
    total = sum(contribution.values())
    for row in result["shares"]:
        assert row["share"] == pytest.approx(contribution[row["term"]] / total, abs=1e-5)
    assert sum(r["share"] for r in result["shares"]) == pytest.approx(1.0, abs=1e-12)
    fused = result["fused_coefficients"]
    np.testing.assert_allclose(result["score"], fused["s3"] * data["s3"] + fused["other"] * data["other"],
                               rtol=1e-12)
    json.dumps(result, allow_nan=False)


# ------------------------------------------------------------------ X-tile


def brute_force_xtile(df: pd.DataFrame, marker: str, min_prop: float) -> tuple[float, float, int]:
    m = df[marker].to_numpy()
    n = len(m)
    minimum = math.ceil(min_prop * n - 1e-9)
    best, count = (-1.0, None), 0
    for cut in np.unique(m):
        low = m <= cut
        if low.sum() < minimum or (~low).sum() < minimum:
            continue
        count += 1
        chisq = logrank_test(df["time"][low], df["time"][~low], df["event"][low],
                             df["event"][~low]).test_statistic
        if chisq > best[0]:
            best = (chisq, cut)
    return best[1], best[0], count


def test_xtile_cutoff_equals_brute_force_logrank_scan(data: pd.DataFrame) -> None:
    result = xtile_cutpoint(data, "time", "event", "other", min_prop=0.1)
    cut, chisq, count = brute_force_xtile(data, "other", 0.1)
    assert result["cutpoint"] == cut
    assert result["chisq"] == pytest.approx(chisq, rel=1e-8)
    assert result["n_cutoffs"] == count == len(result["scan"])
    assert result["p_naive"] == pytest.approx(stats.chi2.sf(chisq, 1), rel=1e-6)
    assert result["n_low"] == int((data["other"] <= cut).sum())
    assert result["n_low"] >= 16
    assert result["n_high"] >= 16
    # the corrected p is maxstat's Lau94 over the same quantile range; it is larger
    maxstat = rbridge.r_function("cutpoint", "maxstat_cutpoint")(
        data[["time", "event", "other"]], "time", "event", "other", "Lau94", 0.1, 0.9)
    assert result["p_corrected"] == pytest.approx(maxstat["p_value"], rel=1e-12)
    assert result["p_corrected"] > result["p_naive"]
    assert result["corrected_method"] == "Lau94 (maxstat)"
    json.dumps(result, allow_nan=False)


# ------------------------------------------------------------------ C-index comparison


def brute_force_pairs(time, event, score):
    """Comparable pairs (event i, j followed beyond t_i or censored at t_i) and mis-ordered
    ones (score_i < score_j; ties 1/2), in total and per patient."""
    n = len(time)
    per, comparable_per = np.zeros(n), np.zeros(n)
    comparable = wrong = 0.0
    for i in range(n):
        if not event[i]:
            continue
        for j in range(n):
            if time[j] > time[i] or (time[j] == time[i] and not event[j]):
                w = 1.0 if score[i] < score[j] else 0.5 if score[i] == score[j] else 0.0
                comparable += 1
                wrong += w
                per[i] += w
                per[j] += w
                comparable_per[i] += 1
                comparable_per[j] += 1
    return comparable, wrong, per, comparable_per


def test_concordance_matches_lifelines_and_brute_force(data: pd.DataFrame) -> None:
    result = compare_concordance(data, "time", "event", "s3", "other")
    for key, score in (("c_a", "s3"), ("c_b", "other")):
        assert result[key] == pytest.approx(
            concordance_index(data["time"], -data[score], data["event"]), abs=1e-12)
    comparable, wrong, per, _ = brute_force_pairs(data["time"].to_numpy(),
                                                  data["event"].to_numpy(), data["s3"].to_numpy())
    assert result["comparable_pairs"] == comparable
    assert result["misordered_a"] == wrong
    assert [p["row"] for p in result["per_patient"]] == list(data.index)
    np.testing.assert_array_equal([p["misordered_a"] for p in result["per_patient"]], per)
    json.dumps(result, allow_nan=False)


def test_misordered_counts_with_tied_times_and_scores() -> None:
    rng = np.random.default_rng(3)
    n = 60
    df = pd.DataFrame({"time": rng.integers(1, 15, n).astype(float),
                       "event": rng.integers(0, 2, n),
                       "a": rng.integers(0, 4, n).astype(float),
                       "b": rng.normal(size=n).round(1)},
                      index=[f"r{i}" for i in range(n)])
    result = compare_concordance(df, "time", "event", "a", "b")
    for key, score in (("a", "a"), ("b", "b")):
        comparable, wrong, per, comparable_per = brute_force_pairs(
            df["time"].to_numpy(), df["event"].to_numpy(), df[score].to_numpy())
        assert result["comparable_pairs"] == comparable
        assert result[f"misordered_{key}"] == wrong
        assert result[f"c_{key}"] == pytest.approx(1 - wrong / comparable, abs=1e-12)
        np.testing.assert_array_equal([p[f"misordered_{key}"] for p in result["per_patient"]], per)
        np.testing.assert_array_equal([p["comparable"] for p in result["per_patient"]],
                                      comparable_per)


def test_difference_test_against_bootstrap(data: pd.DataFrame) -> None:
    result = compare_concordance(data, "time", "event", "s3", "s1")
    assert result["diff"] == pytest.approx(result["c_a"] - result["c_b"], abs=1e-15)
    assert result["z"] == pytest.approx(result["diff"] / result["se_diff"], rel=1e-12)
    assert result["p"] == pytest.approx(2 * stats.norm.sf(abs(result["z"])), rel=1e-9)
    assert result["p"] < 0.001  # the true score against noise
    rng = np.random.default_rng(11)
    t, e = data["time"].to_numpy(), data["event"].to_numpy()
    a, b = data["s3"].to_numpy(), data["s1"].to_numpy()
    draws = []
    for _ in range(300):
        k = rng.integers(0, len(t), len(t))
        draws.append((concordance_index(t[k], -a[k], e[k]), concordance_index(t[k], -b[k], e[k])))
    draws = np.array(draws)
    assert result["se_diff"] == pytest.approx(np.std(draws[:, 0] - draws[:, 1], ddof=1), rel=0.25)
    assert result["se_a"] == pytest.approx(np.std(draws[:, 0], ddof=1), rel=0.25)
    assert result["cov_ab"] == pytest.approx(np.cov(draws.T)[0, 1],
                                             abs=0.5 * result["se_a"] * result["se_b"])


def test_same_ranking_has_no_difference(data: pd.DataFrame) -> None:
    # a monotone transform orders every pair alike; tiny noise on a continuous score too
    rng = np.random.default_rng(2)
    df = data.assign(twice=2 * data["s3"] + 1, jitter=data["s3"] + rng.normal(0, 1e-9, len(data)))
    for other in ("twice", "jitter"):
        result = compare_concordance(df, "time", "event", "s3", other)
        assert result["diff"] == pytest.approx(0, abs=1e-12)
        assert result["p"] is None
        assert "alike" in result["test_reason"]


# ------------------------------------------------------------------ Cox table


@pytest.mark.parametrize("p_enter", [0.05, 0.6])
def test_cox_table_matches_lifelines(data: pd.DataFrame, p_enter: float) -> None:
    df = data.copy()
    df.loc[df.index[:12], "s3"] = np.nan
    df.loc[df.index[-5:], "age"] = np.nan
    levels = {"histology": ["adeno", "squamous", "other"], "ecog": [0, 1, 2]}
    covariates = ["age", "histology", "ecog", "s3", "s1"]
    result = cox_table(df, "time", "event", covariates, levels, p_enter=p_enter, force=["s1"])
    design = df[["time", "event", "age", "s3", "s1"]].copy()
    for column, lv in levels.items():
        for level in lv[1:]:
            design[f"{column}={level}"] = (df[column] == level).astype(float)
    columns = {"age": ["age"], "s3": ["s3"], "s1": ["s1"], "histology": ["histology=squamous", "histology=other"],
               "ecog": ["ecog=1", "ecog=2"]}
    rows = {(r["covariate"], r["level"]): r for r in result["univariate"]}
    entered = []
    for covariate, cols in columns.items():
        fit = lifelines_cox(design, cols)
        summary = fit.summary
        for col in cols:
            level = col.split("=")[1] if "=" in col else None
            row = rows[(covariate, level)]
            assert row["hr"] == pytest.approx(math.exp(summary.loc[col, "coef"]), rel=1e-4)
            assert row["p"] == pytest.approx(summary.loc[col, "p"], abs=1e-4)
            assert row["n"] == len(design[["time", "event", *cols]].dropna())
        overall = (summary.loc[cols[0], "p"] if len(cols) == 1
                   else fit.log_likelihood_ratio_test().p_value)
        assert rows[(covariate, level)]["p_overall"] == pytest.approx(overall, abs=1e-5)
        if overall < p_enter or covariate == "s1":
            entered.append(covariate)
    assert result["entered"] == [c for c in covariates if c in entered]
    # 0.05: the score s3 and the forced s1; 0.6: also age and both categorical covariates
    assert entered == (["s3", "s1"] if p_enter == 0.05 else ["age", "s3", "s1", "histology", "ecog"])
    assert rows[("histology", "squamous")]["reference"] == "adeno"
    multi_cols = [c for cov in result["entered"] for c in columns[cov]]
    reference = lifelines_cox(design, multi_cols)
    assert result["n"] == len(design[["time", "event", *multi_cols]].dropna())
    assert result["n_excluded"] == len(df) - result["n"] == (12 if p_enter == 0.05 else 17)
    for row in result["multivariable"]:
        col = row["covariate"] if row["level"] is None else f"{row['covariate']}={row['level']}"
        assert row["coef"] == pytest.approx(reference.summary.loc[col, "coef"], abs=1e-4)
        assert row["p"] == pytest.approx(reference.summary.loc[col, "p"], abs=1e-4)
    json.dumps(result, allow_nan=False)


def test_cox_table_reports_bad_levels(data: pd.DataFrame) -> None:
    with pytest.raises(InputError, match=r"column 'histology': value not among the levels"):
        cox_table(data, "time", "event", ["histology"], {"histology": ["adeno", "squamous"]})
    with pytest.raises(InputError, match="not numeric"):
        cox_table(data, "time", "event", ["histology"])
    gaps = data.assign(histology=data["histology"].where(data.index >= "P005"))  # NaN
    rows = cox_table(gaps, "time", "event", ["histology"],
                     {"histology": ["adeno", "squamous", "other"]})["univariate"]
    assert [r["n"] for r in rows] == [155, 155]
    result = cox_table(data, "time", "event", ["s1"], p_enter=1e-12)
    assert result["entered"] == []
    assert result["multivariable"] == []
    assert "no covariate" in result["note"]


# ------------------------------------------------------------------ nomogram


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    frame = rbridge.to_python(rbridge._r().ro.r("survival::lung"))
    frame["event"] = (frame["status"] == 2).astype(int)
    frame["sex"] = np.where(frame["sex"] == 1, "male", "female")
    frame.index = [f"L{i}" for i in range(len(frame))]
    return frame[["time", "event", "age", "sex", "ph.ecog", "wt.loss"]]


def test_nomogram_points_are_the_linear_predictor(lung: pd.DataFrame) -> None:
    result = nomogram_points(lung, "time", "event", ["age", "sex", "ph.ecog", "wt.loss"],
                             [180, 365], {"sex": ["male", "female"]},
                             funlabels=["6-month OS probability", "1-year OS probability"])
    complete = lung.dropna()
    assert result["n"] == len(complete)
    assert result["n_excluded"] == len(lung) - len(complete)
    patients = pd.DataFrame(result["patients"]).set_index("row")
    assert list(patients.index) == list(complete.index)
    # total points read off the drawn axes, in numpy
    total = np.zeros(len(complete))
    for name, axis in result["predictors"].items():
        if name == "sex":
            lookup = dict(zip(axis["values"], axis["points"], strict=True))
            total += complete[name].map(lookup).to_numpy()
        else:
            x = complete[name].to_numpy(float)
            assert axis["value_numeric"][0] <= x.min()
            assert x.max() <= axis["value_numeric"][-1]
            total += np.interp(x, axis["value_numeric"], axis["points"])
    np.testing.assert_allclose(total, patients["total_points"], atol=1e-8)
    fit = stats.linregress(patients["lp"], total)
    assert fit.rvalue ** 2 == pytest.approx(1.0, abs=1e-12)
    assert fit.slope == pytest.approx(result["points_scale"], rel=1e-9)
    assert -fit.intercept / fit.slope == pytest.approx(result["points_intercept"], abs=1e-9)
    assert max(max(a["points"]) for a in result["predictors"].values()) == pytest.approx(100)
    # the survival axis at a patient's total points is rms::survest for that patient
    for t, label in ((180, "6-month OS probability"), (365, "1-year OS probability")):
        grid = result["survival_grid"][str(t)]
        read = np.interp(total, grid["total_points"], grid["survival"])
        survest = [s[str(t)] for s in patients["survival"]]
        np.testing.assert_allclose(read, survest, atol=1e-3)
        ticks = result["survival_axes"][label]
        assert ticks["time"] == t
        np.testing.assert_allclose(np.interp(ticks["total_points"], grid["total_points"],
                                             grid["survival"]), ticks["survival"], atol=1e-3)
    # the model is the Cox model of lifelines on the same rows
    design = complete.assign(**{"sex=female": (complete["sex"] == "female").astype(float)})
    reference = lifelines_cox(design, ["age", "sex=female", "ph.ecog", "wt.loss"]).params_
    for term, coef in result["coefficients"].items():
        assert coef == pytest.approx(reference[term], abs=1e-4)
    # datadist was only set while the function ran
    assert rbridge.to_python(rbridge._r().ro.r("is.null(getOption('datadist'))")) is True
    json.dumps(result, allow_nan=False)


# ------------------------------------------------------------------ subgroups


def test_subgroup_hazard_matches_lifelines(data: pd.DataFrame) -> None:
    df = data.assign(size=median_groups(data["age"]))
    df.loc[df.index[0], "size"] = None
    cutoff = float(df["s3"].median())
    result = subgroup_hazard(df, "time", "event", "s3", cutoff, "size", km_times=[0, 100])
    assert result["n_missing"] == 1
    assert [level["level"] for level in result["levels"]] == ["<= median", "> median"]
    for level in result["levels"]:
        members = df[df["size"] == level["level"]]
        high = members["s3"] > cutoff
        assert (level["n"], level["n_events"]) == (len(members), int(members["event"].sum()))
        assert level["groups"]["high"]["n"] == int(high.sum())
        cox = CoxPHFitter().fit(pd.DataFrame({"t": members["time"], "e": members["event"],
                                              "high": high.astype(float)}), "t", "e",
                          fit_options=TIGHT)
        assert level["hr"] == pytest.approx(math.exp(cox.params_["high"]), rel=1e-4)
        test = logrank_test(members["time"][~high], members["time"][high],
                            members["event"][~high], members["event"][high])
        assert level["logrank_p"] == pytest.approx(test.p_value, rel=1e-6)
        assert level["risk_table"]["low"][0] == int((~high).sum())
        assert len(level["km"]["high"]["surv"]) > 0
    json.dumps(result, allow_nan=False)


def test_subgroup_with_an_empty_risk_group(data: pd.DataFrame) -> None:
    df = data.assign(group=np.where(data["s3"] > 1.0, "top", "rest"))
    result = subgroup_hazard(df, "time", "event", "s3", 1.0, "group")
    top = next(level for level in result["levels"] if level["level"] == "top")
    assert top["hr"] is None
    assert "no patients in the low-risk group" in top["hr_reason"]
    assert top["groups"]["low"]["n"] == 0


def test_median_groups() -> None:
    labels = median_groups(pd.Series([1.0, 2.0, 3.0, np.nan, 4.0]))
    assert labels.tolist() == ["<= median", "<= median", "> median", None, "> median"]


# ------------------------------------------------------------------ layout


def test_nomogram_control_fills_in_the_defaults() -> None:
    control = rbridge.r_function("nomogram", "nomogram_control")
    defaults = control()
    assert defaults["funlabels"] is None
    assert defaults["grid_size"] == 201
    assert defaults["axis_ticks"] == 10
    assert defaults["q_display"] == [0.0, 1.0]
    np.testing.assert_allclose(defaults["fun_at"], [0.05, *np.arange(1, 10) / 10, 0.95])
    assert control(grid_size=11, funlabels=["a"])["funlabels"] == "a"
    axis = rbridge.r_function("nomogram", "numeric_axis")
    assert axis([3.0, 1.0, 2.0], 3) == [1.0, 2.0, 3.0]
    assert axis(list(np.linspace(0, 1, 7)), 3) == [0.0, 0.5, 1.0]


# ------------------------------------------------------------------ what the flags rest on (results.flags)


def test_selection_override_is_recorded_with_its_rule(data: pd.DataFrame) -> None:
    """A threshold no term reaches: the last term is kept anyway, recorded as an override with
    lifelines' p of that term in its own model."""
    strict = backward_cox_selection(data, "time", "event", ["s1", "s2", "s3"], p_threshold=1e-30)
    overrides = selection_overrides(strict)
    assert [o["term"] for o in overrides] == ["s3"]
    assert overrides[0]["p"] == pytest.approx(lifelines_cox(data, ["s3"]).summary.loc["s3", "p"], rel=1e-3)
    assert overrides[0]["p_threshold"] == 1e-30
    assert "no candidate reached" in overrides[0]["rule"]
    assert selection_overrides(backward_cox_selection(data, "time", "event", ["s1", "s2", "s3"])) == []


def test_refit_of_a_score_on_its_own_rows_is_one_by_construction(data: pd.DataFrame) -> None:
    """OSRS refitted on the rows and outcome it was fitted on: coefficient one in R and in
    lifelines, and the table row is marked; on other rows it is a finding and is not marked."""
    fitted = backward_cox_selection(data, "time", "event", ["s1", "s2", "s3"])
    scored = data.assign(osrs=fitted["score"])
    table = cox_table(scored, "time", "event", ["osrs", "age"], force=["osrs"])
    row = table["univariate"][0]
    assert row["coef"] == pytest.approx(1.0, abs=1e-6)
    assert lifelines_cox(scored, ["osrs"]).params_["osrs"] == pytest.approx(1.0, abs=1e-5)
    mark_by_construction(table, "osrs", "OSRS", fitted["n"])
    assert "by construction" in row["by_construction"]
    assert "160 patients" in row["by_construction"]
    other = table | {"univariate": [dict(r) for r in table["univariate"]]}
    for r in other["univariate"]:
        r.pop("by_construction", None)
    mark_by_construction(other, "osrs", "OSRS", fitted["n"] - 1)
    assert "by_construction" not in other["univariate"][0]


def test_cox_table_per_sd_matches_lifelines_on_standardised_covariates(data: pd.DataFrame) -> None:
    """HR per training SD = lifelines' HR of the covariate divided by its SD (same Wald interval)."""
    table = cox_table(data, "time", "event", ["age", "s3", "histology"], {"histology": ["adeno", "squamous", "other"]})
    add_per_sd(table["univariate"], data, key="covariate")
    for row in table["univariate"]:
        if row["level"] is not None:
            assert "hr_per_sd" not in row
            continue
        column = row["covariate"]
        standardised = data.assign(z=data[column] / data[column].std(ddof=1))
        reference = lifelines_cox(standardised, ["z"]).summary.loc["z"]
        assert row["sd"] == pytest.approx(data[column].std(ddof=1), rel=1e-12)
        assert row["hr_per_sd"] == pytest.approx(reference["exp(coef)"], rel=1e-4)
        assert row["hr_per_sd_lower"] == pytest.approx(reference["exp(coef) lower 95%"], rel=1e-4)
        assert row["hr_per_sd_upper"] == pytest.approx(reference["exp(coef) upper 95%"], rel=1e-4)


def test_oracle_c_index_has_its_confidence_interval(data: pd.DataFrame) -> None:
    """The oracle's C per cohort is lifelines' concordance of the true LP, with the Wald 95%
    interval c -/+ 1.96 se, and the se close to a bootstrap's."""
    rows = data.reset_index(names="patient_id").assign(
        partition=lambda d: np.where(np.arange(len(d)) % 4 == 0, "test", "modelling"))
    truth = rows[["patient_id"]].assign(true_lp_os=0.5 * rows["s2"] + 1.0 * rows["s3"] + 0.4 * rows["ecog"])
    split = SplitSection(method="stratified", counts={"modelling": 120, "test": 40}, training=["modelling"],
                         test=["test"])
    oracle = oracle_c_index(split, rows, truth, "os", "time", "event")
    rng = np.random.default_rng(1)
    for cohort, partition in (("training", "modelling"), ("test", "test")):
        part = rows[rows["partition"] == partition].merge(truth, on="patient_id")
        c = concordance_index(part["time"], -part["true_lp_os"], part["event"])
        block = oracle[cohort]
        assert block["c_index"] == pytest.approx(c, abs=1e-9)
        z = stats.norm.ppf(0.975)
        assert block["c_lower"] == pytest.approx(c - z * block["c_se"], abs=1e-9)
        assert block["c_upper"] == pytest.approx(min(1.0, c + z * block["c_se"]), abs=1e-9)
        boot = [concordance_index(*(part.iloc[idx][k] for k in ("time", "true_lp_os", "event")))
                for idx in (rng.integers(0, len(part), len(part)) for _ in range(200))]
        assert block["c_se"] == pytest.approx(np.std(boot, ddof=1), rel=0.35)
