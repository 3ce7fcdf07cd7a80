"""ROC analysis of binary response scores (rscripts/roc.R through
studyrunner.statistics.roc), checked against independent references:
scipy's Mann-Whitney U, DeLong's structural components written here in numpy, a
brute-force Youden scan, counts and exact binomial CIs by hand / scipy, and pROC's
worked example on its aSAH data (Robin X et al. (2011), BMC Bioinformatics 12:77)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from studyrunner.errors import InputError
from studyrunner.rbridge import RError, r_package_available, to_python
from studyrunner.statistics.roc import (
    apply_cutoff,
    compare_auc,
    response_indicators,
    roc_analysis,
    roc_subgroups,
)

pytestmark = [pytest.mark.needs_r,
              pytest.mark.skipif(not r_package_available("pROC"), reason="R package pROC not installed")]

Z975 = stats.norm.ppf(0.975)


# ----------------------------------------------------------------- independent references


def placements(cases: np.ndarray, controls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components: V10 (one per case) and V01 (one per control), with
    psi(x, y) = 1 if x > y, 1/2 if x == y, 0 otherwise (higher score = case)."""
    psi = (cases[:, None] > controls[None, :]) + 0.5 * (cases[:, None] == controls[None, :])
    return psi.mean(axis=1), psi.mean(axis=0)


def delong_auc_var(cases: np.ndarray, controls: np.ndarray) -> tuple[float, float]:
    v10, v01 = placements(cases, controls)
    var = v10.var(ddof=1) / len(cases) + v01.var(ddof=1) / len(controls)
    return float(v10.mean()), float(var)


def youden_scan(y: np.ndarray, s: np.ndarray, direction: str = "<") -> dict:
    """Brute force: every midpoint between consecutive distinct scores; positive when
    s >= t ('<') or s <= t ('>'); maximise J; ties -> the most sensitive one."""
    u = np.unique(s)
    best = None
    for t in (u[:-1] + u[1:]) / 2:
        called = s >= t if direction == "<" else s <= t
        sens = called[y == 1].mean()
        spec = (~called[y == 0]).mean()
        j = sens + spec - 1
        if best is None or j > best["j"] + 1e-10:
            best = {"t": [t], "j": j, "sens": [sens], "spec": [spec]}
        elif abs(j - best["j"]) <= 1e-10:
            best["t"].append(t)
            best["sens"].append(sens)
            best["spec"].append(spec)
    k = int(np.argmax(best["sens"]))  # most sensitive (ties in sens cannot occur: distinct t)
    return {"cutoff": best["t"][k], "sensitivity": best["sens"][k],
            "specificity": best["spec"][k], "j": best["j"], "ties": len(best["t"])}


def simulated(n: int = 70, seed: int = 7) -> pd.DataFrame:
    """Two correlated scores with ties (rounded to 0.1), a binary outcome and a subgroup."""
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.35, n)
    a = np.round(rng.normal(0.9 * y, 1.0), 1)
    b = np.round(0.6 * a + rng.normal(0.4 * y, 0.9), 1)
    return pd.DataFrame({"y": y, "a": a, "b": b,
                         "histology": rng.choice(["adeno", "squamous"], n)},
                        index=[f"P{i:03d}" for i in range(n)])


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulated()


@pytest.fixture(scope="module")
def result(data: pd.DataFrame) -> dict:
    return roc_analysis(data, "y", "a")


@pytest.fixture(scope="module")
def asah() -> pd.DataFrame:
    import rpy2.robjects as ro

    frame = to_python(ro.r("local({ data(aSAH, package = 'pROC'); "
                           "data.frame(outcome = as.character(aSAH$outcome), "
                           "s100b = aSAH$s100b, wfns = as.numeric(aSAH$wfns), "
                           "gender = as.character(aSAH$gender)) })"))
    frame.index = [f"a{i}" for i in range(len(frame))]
    return frame


# --------------------------------------------------------------------- response indicators


def test_response_indicators_codes_pr_and_pd_and_counts_missing():
    br = pd.Series(["PR", "SD", " PD", None, np.nan, "", "PD"], name="best_response",
                   index=list("abcdefg"))
    out = response_indicators(br)
    assert list(out.index) == list("abcdefg")
    np.testing.assert_array_equal(out["pr"].to_numpy(), [1, 0, 0, np.nan, np.nan, np.nan, 0])
    np.testing.assert_array_equal(out["pd"].to_numpy(), [0, 0, 1, np.nan, np.nan, np.nan, 1])
    assert out.attrs["n_missing"] == 3


def test_response_indicators_unknown_value_names_row_and_value():
    br = pd.Series(["PR", "CR", "SD"], name="best_response", index=["p1", "p2", "p3"])
    with pytest.raises(InputError, match=r"'best_response'.*row 'p2'.*'CR'"):
        response_indicators(br)
    with_cr = response_indicators(br, levels=("CR", "PR", "SD", "PD"))
    assert with_cr["pr"].tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="PD"):
        response_indicators(br, levels=("PR", "SD"))


def test_missing_outcome_rows_are_left_out_and_counted(data):
    frame = data.copy()
    frame["y"] = frame["y"].astype(float)
    frame.iloc[[0, 5, 9], frame.columns.get_loc("y")] = np.nan
    out = roc_analysis(frame, "y", "a")
    ref = roc_analysis(frame.dropna(subset=["y"]), "y", "a")
    assert out["n_missing_outcome"] == 3
    assert out["n"] == len(frame) - 3
    assert out["auc"] == pytest.approx(ref["auc"], abs=1e-14)


# ---------------------------------------------------------------------------- AUC and CI


def test_auc_equals_mann_whitney_u(data, result):
    cases, controls = data.a[data.y == 1].to_numpy(), data.a[data.y == 0].to_numpy()
    u = stats.mannwhitneyu(cases, controls, alternative="two-sided").statistic
    assert result["n_positive"] == len(cases)
    assert result["n_negative"] == len(controls)
    assert result["auc"] == pytest.approx(u / (len(cases) * len(controls)), abs=1e-12)


def test_delong_se_and_ci_equal_structural_components(data, result):
    cases, controls = data.a[data.y == 1].to_numpy(), data.a[data.y == 0].to_numpy()
    auc, var = delong_auc_var(cases, controls)
    assert result["auc"] == pytest.approx(auc, abs=1e-12)
    assert result["auc_se"] == pytest.approx(math.sqrt(var), rel=1e-10)
    assert result["auc_lower"] == pytest.approx(max(0.0, auc - Z975 * math.sqrt(var)), abs=1e-10)
    assert result["auc_upper"] == pytest.approx(min(1.0, auc + Z975 * math.sqrt(var)), abs=1e-10)
    assert result["ci_method"] == "DeLong"


def test_fixed_direction_lets_a_wrong_way_score_fall_below_half(data, result):
    flipped = data.assign(a=-data.a)
    wrong = roc_analysis(flipped, "y", "a")  # direction "<" kept: no peeking at outcomes
    assert wrong["auc"] == pytest.approx(1 - result["auc"], abs=1e-12)
    assert wrong["auc"] < 0.5
    lower_is_positive = roc_analysis(flipped, "y", "a", direction=">")
    assert lower_is_positive["auc"] == pytest.approx(result["auc"], abs=1e-12)
    assert lower_is_positive["rule"] == "score <= cutoff"
    assert lower_is_positive["cutoff"] == pytest.approx(-result["cutoff"], abs=1e-12)


def test_roc_curve_points_match_counts_by_hand(data, result):
    curve = result["curve"]
    assert curve["threshold"][0] is None   # -Inf
    assert curve["threshold"][-1] is None  # +Inf
    assert (curve["fpr"][0], curve["tpr"][0]) == (1.0, 1.0)
    assert (curve["fpr"][-1], curve["tpr"][-1]) == (0.0, 0.0)
    u = np.unique(data.a)
    np.testing.assert_allclose(curve["threshold"][1:-1], (u[:-1] + u[1:]) / 2, atol=1e-12)
    y, s = data.y.to_numpy(), data.a.to_numpy()
    for t, fpr, tpr in zip(curve["threshold"][1:-1], curve["fpr"][1:-1], curve["tpr"][1:-1], strict=True):
        assert tpr == pytest.approx((s[y == 1] >= t).mean(), abs=1e-12)
        assert fpr == pytest.approx((s[y == 0] >= t).mean(), abs=1e-12)
    # trapezoids under the drawn curve give back the AUC
    fpr, tpr = np.array(curve["fpr"][::-1]), np.array(curve["tpr"][::-1])
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(result["auc"], abs=1e-12)
    json.dumps(result)


# ---------------------------------------------------------------------------- Youden cut-off


@pytest.mark.parametrize("seed", [7, 11])
def test_youden_cutoff_equals_brute_force_scan(seed):
    frame = simulated(seed=seed)
    out = roc_analysis(frame, "y", "a")
    ref = youden_scan(frame.y.to_numpy(), frame.a.to_numpy())
    assert out["cutoff"] == pytest.approx(ref["cutoff"], abs=1e-12)
    assert out["sensitivity"] == pytest.approx(ref["sensitivity"], abs=1e-12)
    assert out["specificity"] == pytest.approx(ref["specificity"], abs=1e-12)
    assert out["youden_index"] == pytest.approx(ref["j"], abs=1e-12)
    assert out["youden_ties"] == ref["ties"]
    assert out["rule"] == "score >= cutoff"


def test_youden_ties_take_the_most_sensitive_cutoff():
    # thresholds 1.5 (se 1, sp 0.5) and 3.5 (se 0.5, sp 1) both give J = 0.5
    frame = pd.DataFrame({"y": [0, 1, 0, 1], "s": [1.0, 2.0, 3.0, 4.0]}, index=list("abcd"))
    out = roc_analysis(frame, "y", "s")
    assert (out["cutoff"], out["sensitivity"], out["specificity"], out["youden_ties"]) == \
        (1.5, 1.0, 0.5, 2)
    assert youden_scan(frame.y.to_numpy(), frame.s.to_numpy())["cutoff"] == 1.5
    lower = roc_analysis(frame.assign(y=1 - frame.y), "y", "s", direction=">")
    assert (lower["cutoff"], lower["sensitivity"], lower["youden_ties"]) == (3.5, 1.0, 2)
    assert youden_scan(1 - frame.y.to_numpy(), frame.s.to_numpy(), ">")["cutoff"] == 3.5


def test_no_useful_cutoff_gives_none_with_reason():
    frame = pd.DataFrame({"y": [1, 1, 0, 0], "s": [1.0, 2.0, 3.0, 4.0]}, index=list("abcd"))
    out = roc_analysis(frame, "y", "s")
    assert out["auc"] == 0.0
    assert out["cutoff"] is None
    assert out["youden_index"] == 0.0
    assert "Youden J = 0" in out["cutoff_reason"]


# ---------------------------------------------------------------------------- apply_cutoff


def test_apply_cutoff_counts_and_exact_cis_by_hand(data, result):
    test = simulated(n=40, seed=99)
    # a score exactly on the cut-off is called positive (score >= cutoff)
    test.iloc[0, test.columns.get_loc("a")] = result["cutoff"]
    out = apply_cutoff(test, "y", "a", result["cutoff"])
    y, called = test.y.to_numpy() == 1, test.a.to_numpy() >= result["cutoff"]
    tp, fp = int(np.sum(called & y)), int(np.sum(called & ~y))
    tn, fn = int(np.sum(~called & ~y)), int(np.sum(~called & y))
    assert (out["tp"], out["fp"], out["tn"], out["fn"], out["n"]) == (tp, fp, tn, fn, 40)
    expected = {"sensitivity": (tp, tp + fn), "specificity": (tn, tn + fp),
                "ppv": (tp, tp + fp), "npv": (tn, tn + fn), "accuracy": (tp + tn, 40)}
    for metric, (k, n) in expected.items():
        ci = stats.binomtest(k, n).proportion_ci(method="exact")
        got = out[metric]
        assert (got["numerator"], got["denominator"]) == (k, n)
        assert got["estimate"] == pytest.approx(k / n, abs=1e-14)
        assert got["lower"] == pytest.approx(ci.low, abs=1e-8)
        assert got["upper"] == pytest.approx(ci.high, abs=1e-8)
    json.dumps(out)


def test_apply_cutoff_empty_denominator_gives_none(data):
    out = apply_cutoff(data, "y", "a", 1e6)  # nobody called positive
    assert out["tp"] == 0
    assert out["fp"] == 0
    assert out["ppv"]["estimate"] is None
    assert out["ppv"]["denominator"] == 0
    assert out["specificity"]["estimate"] == 1.0


# ------------------------------------------------------------------------------- subgroups


def test_subgroups_match_per_level_analysis_and_flag_small_levels(data):
    frame = data.copy()
    frame["histology"] = frame["histology"].astype(object)
    # a level with one positive only, and a row without a subgroup
    small = frame.index[frame.y == 1][:1].tolist() + frame.index[frame.y == 0][:3].tolist()
    frame.loc[small, "histology"] = "large cell"
    frame.loc[frame.index[-1], "histology"] = None
    out = roc_subgroups(frame, "y", "a", "histology")
    rows = {row["subgroup"]: row for row in out["table"]}
    assert list(rows) == ["adeno", "large cell", "squamous"]
    assert out["n_missing_subgroup"] == 1
    flagged = rows["large cell"]
    assert (flagged["n_positive"], flagged["n_negative"]) == (1, 3)
    assert flagged["auc"] is None
    assert flagged["auc_lower"] is None
    assert "fewer than 2 positives or 2 negatives" in flagged["reason"]
    assert "large cell" not in out["curves"]
    for level in ("adeno", "squamous"):
        sub = frame[frame.histology == level]
        cases, controls = sub.a[sub.y == 1].to_numpy(), sub.a[sub.y == 0].to_numpy()
        auc, var = delong_auc_var(cases, controls)
        assert rows[level]["n"] == len(sub)
        assert rows[level]["auc"] == pytest.approx(auc, abs=1e-12)
        assert rows[level]["auc_se"] == pytest.approx(math.sqrt(var), rel=1e-10)
        assert rows[level]["cutoff"] == pytest.approx(
            youden_scan(sub.y.to_numpy(), sub.a.to_numpy())["cutoff"], abs=1e-12)
        assert out["curves"][level]["tpr"][0] == 1.0
    json.dumps(out)


# ----------------------------------------------------------------------- paired comparison


def paired_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    va10, va01 = placements(a[y == 1], a[y == 0])
    vb10, vb01 = placements(b[y == 1], b[y == 0])
    m, n = int(np.sum(y == 1)), int(np.sum(y == 0))
    var_a = va10.var(ddof=1) / m + va01.var(ddof=1) / n
    var_b = vb10.var(ddof=1) / m + vb01.var(ddof=1) / n
    cov = np.cov(va10, vb10)[0, 1] / m + np.cov(va01, vb01)[0, 1] / n
    z = (va10.mean() - vb10.mean()) / math.sqrt(var_a + var_b - 2 * cov)
    return float(va10.mean()), float(vb10.mean()), float(z), float(2 * stats.norm.sf(abs(z)))


def test_compare_auc_equals_paired_delong_formula(data):
    out = compare_auc(data, "y", "a", "b")
    auc_a, auc_b, z, p = paired_delong(data.y.to_numpy(), data.a.to_numpy(), data.b.to_numpy())
    assert out["auc_a"] == pytest.approx(auc_a, abs=1e-12)
    assert out["auc_b"] == pytest.approx(auc_b, abs=1e-12)
    assert out["z"] == pytest.approx(z, rel=1e-9)
    assert out["p"] == pytest.approx(p, rel=1e-9)
    assert out["difference"] == pytest.approx(auc_a - auc_b, abs=1e-12)


# ------------------------------------------------------------------ pROC's worked example


def test_asah_worked_example(asah):
    # pROC documentation / Robin et al. 2011: roc(aSAH$outcome, aSAH$s100b) prints
    # "Area under the curve: 0.7314" and "95% CI: 0.6301-0.8326 (DeLong)".
    out = roc_analysis(asah, "outcome", "s100b", positive_level="Poor")
    assert (out["n_positive"], out["n_negative"]) == (41, 72)
    assert round(out["auc"], 4) == 0.7314
    assert (round(out["auc_lower"], 4), round(out["auc_upper"], 4)) == (0.6301, 0.8326)
    # Youden cut-off: pROC's coords(roc1, "best") on the same curve gives 0.205
    assert out["cutoff"] == pytest.approx(0.205, abs=1e-12)
    assert out["sensitivity"] == pytest.approx(26 / 41)
    assert out["specificity"] == pytest.approx(58 / 72)
    ref = youden_scan((asah.outcome == "Poor").to_numpy().astype(int), asah.s100b.to_numpy())
    assert out["cutoff"] == pytest.approx(ref["cutoff"], abs=1e-12)
    # s100b vs WFNS, paired DeLong: R prints Z = -2.209, p-value = 0.02718
    cmp = compare_auc(asah, "outcome", "s100b", "wfns", positive_level="Poor")
    y = (asah.outcome == "Poor").to_numpy().astype(int)
    _, _, z, p = paired_delong(y, asah.s100b.to_numpy(), asah.wfns.to_numpy())
    assert (round(cmp["z"], 3), round(cmp["p"], 5)) == (-2.209, 0.02718)
    assert cmp["z"] == pytest.approx(z, rel=1e-9)
    assert cmp["p"] == pytest.approx(p, rel=1e-9)


# ------------------------------------------------------------------------------ bad input


def test_bad_input_is_reported_with_column_and_rows(data):
    frame = data.copy()
    frame.loc["P004", "a"] = np.nan
    with pytest.raises(RError, match=r"column 'a': score is missing in row\(s\) P004"):
        roc_analysis(frame, "y", "a")
    with pytest.raises(RError, match=r"column 'y': a binary outcome may hold two values"):
        roc_analysis(data.assign(y=np.arange(len(data)) % 3), "y", "a")
    with pytest.raises(RError, match="at least 2 positives"):
        roc_analysis(data.assign(y=[1] + [0] * (len(data) - 1)), "y", "a")
    with pytest.raises(ValueError, match="direction"):
        roc_analysis(data, "y", "a", direction="auto")
    with pytest.raises(KeyError, match="nope"):
        roc_analysis(data, "y", "nope")


def test_response_km_colours_follow_the_risk_not_the_score():
    """PRS above its cut-off is the lower-risk group (partial response is favourable): its curve
    gets the low-risk colour of every other figure; PDS above its cut-off keeps the high-risk colour."""
    from studyrunner.report.figures.response import response_km_panels
    from studyrunner.report.figures.style import GROUP_COLOURS
    from studyrunner.results.models import ResponseScore
    from studyrunner.statistics.cnn_scores.response import HIGH_SCORE_RISK, RESPONSE_SCORES

    assert HIGH_SCORE_RISK == {"prs": "lower", "pds": "higher"}
    assert set(HIGH_SCORE_RISK) == set(RESPONSE_SCORES)
    curve = {"time": [0.0, 10.0], "surv": [1.0, 0.5], "lower": [1.0, 0.3], "upper": [1.0, 0.7]}
    strat = {"cutpoint": 0.3, "groups": {"low": {"n": 10, "n_events": 4}, "high": {"n": 12, "n_events": 2}},
             "km": {"low": curve, "high": curve}}
    response = {name: ResponseScore.model_validate({"label": name.upper(), "outcome": outcome,
                                                   "high_score_risk": HIGH_SCORE_RISK[name],
                                                   "stratification": {"os": strat}})
                for name, (_, _, outcome) in RESPONSE_SCORES.items()}
    prs, pds = response_km_panels(response, "os")
    assert (prs.colour("high"), prs.colour("low")) == (GROUP_COLOURS["low"], GROUP_COLOURS["high"])
    assert (pds.colour("high"), pds.colour("low")) == (GROUP_COLOURS["high"], GROUP_COLOURS["low"])
