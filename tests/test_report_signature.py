"""Tests of the radiomics-signature sections of the TRIPOD report (seed 001).

tests/fixtures/results_signature.json is a synthetic results.json computed from a simulated
cohort of 87 patients (see tests/fixtures/README.md). The tests first check that the fixture is
internally consistent against independent recomputation (exp of the coefficients, Wald
limits, trapezoidal area under the recorded ROC points, the Kaplan–Meier median read off
the recorded curve, the ICC count), then render the PDF and read it back with pdftotext,
comparing with values rounded by hand.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from studyrunner.report import render_report
from studyrunner.report.figures import DPI, TEXT_WIDTH_IN, draw_learner_sets, set_intersections, uses_venn
from studyrunner.report.views import (
    calibration_by_time,
    decision_summary,
    learner_view,
    signature_study,
    time_roc_rows,
)
from studyrunner.results.models import CalibrationRow, DecisionRow, Results, Selection, TimeRoc
from tests.test_report import pdf_pages, write_run

FIXTURE = Path(__file__).parent / "fixtures" / "results_signature.json"
EXAMPLE = Path(__file__).parent / "fixtures" / "results_example.json"
EM = "\u2014"
EN = "\u2013"
MINUS = "\u2212"

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")


def pdf_text(pdf: Path) -> list[str]:
    """Text of each page, whitespace collapsed and line-end hyphen breaks joined ("4.1- 6" -> "4.1-6")."""
    return [re.sub(r"-\s+", "-", page) for page in pdf_pages(pdf)]


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, results: dict[str, Any]) -> tuple[Path, list[str]]:
    run_dir = write_run(tmp_path_factory.mktemp("signature_run"), results)
    pdf = render_report(run_dir)
    return run_dir, pdf_text(pdf) if shutil.which("pdftotext") else []


# ----------------------------------------------------------------------------- the fixture itself


def test_fixture_is_internally_consistent(results: dict[str, Any]) -> None:
    assert results["study"]["synthetic"] is True
    for c in results["model"]["coefficients"]:
        assert c["exp_coef"] == pytest.approx(math.exp(c["coef"]), abs=2e-4)
        assert c["exp_neg_coef"] == pytest.approx(math.exp(-c["coef"]), abs=2e-4)
        assert c["lower"] == pytest.approx(math.exp(c["coef"] - 1.959964 * c["se"]), abs=1e-3)
        assert c["upper"] == pytest.approx(math.exp(c["coef"] + 1.959964 * c["se"]), abs=1e-3)
    rep = results["reproducibility"]
    assert len(rep["icc"]) == rep["n_features"] == 1316
    assert sum(v > rep["threshold"] for v in rep["icc"]) == rep["n_kept"] == results["selection"]["n_candidates"]
    assert [r["icc"] for r in rep["lowest"]] == sorted(rep["icc"])[:10]

    training = results["evaluation"]["training"]
    roc = training["time_roc"]
    for t, auc, se, lo, hi in zip(roc["times"], roc["auc"], roc["se"], roc["lower"], roc["upper"], strict=True):
        if auc is None:
            assert roc["reasons"][str(t)] == f"no controls at {t} months"
            continue
        fp, tp = roc["roc"][str(t)]["fp"], roc["roc"][str(t)]["tp"]
        area = sum((fp[i + 1] - fp[i]) * (tp[i + 1] + tp[i]) / 2 for i in range(len(fp) - 1))
        assert area == pytest.approx(auc, abs=2e-3)                     # trapezoid = AUC (rounded points)
        assert lo == pytest.approx(max(0.0, auc - 1.96 * se), abs=2e-4)
        assert hi == pytest.approx(min(1.0, auc + 1.96 * se), abs=2e-4)

    # Kaplan-Meier median = first time the recorded curve reaches 0.5 or below
    for group, km in training["km"].items():
        below = [t for t, s in zip(km["time"], km["surv"], strict=True) if s <= 0.5]
        assert training["median_survival"][group]["median"] == (below[0] if below else None)
    risk = training["risk_table"]
    assert risk["low"][0] + risk["high"][0] == training["n"] == 87
    for t in (12, 24, 36):
        assert sum(r["n"] for r in training["calibration"] if r["time"] == t) == 87
    combined = set(results["selection"]["combined"])
    assert all(combined <= set(learner["features"]) for learner in results["selection"]["learners"].values())
    assert {c["term"] for c in results["model"]["coefficients"]} <= combined


# ----------------------------------------------------------------------------- views


def test_set_intersections_hand_case() -> None:
    sets = {"lasso": ["a", "b", "c"], "gbm": ["b", "c", "d"], "rsf": ["c", "e"]}
    assert set_intersections(sets) == [(("lasso", "gbm", "rsf"), ["c"]), (("lasso", "gbm"), ["b"]),
                                       (("lasso",), ["a"]), (("gbm",), ["d"]), (("rsf",), ["e"])]
    assert [uses_venn(n) for n in (1, 2, 3, 4, 6)] == [False, True, True, False, False]


def test_learner_view_marks_stand_ins_and_failures(results: dict[str, Any]) -> None:
    selection = copy.deepcopy(results["selection"])
    selection["learners"]["gbm"] = {"features": [], "implementation": "gbm 2.1.8.1",
                                    "error": "gbm: all predictors constant"}
    view = learner_view(Selection.model_validate(selection))
    assert [row["name"] for row in view["learners"]] == ["elastic_net", "lasso", "coxboost", "gbm", "rsf", "superpc"]
    assert view["n_ran"] == 5
    assert [row["name"] for row in view["failed"]] == ["gbm"]
    assert [row["name"] for row in view["stand_ins"]] == ["coxboost", "rsf", "superpc"]
    assert view["combined"][0] == {"feature": selection["combined"][0], "votes": 5}


def test_time_roc_calibration_and_decision_views() -> None:
    rows = time_roc_rows(TimeRoc(times=[12, 60], auc=[0.8, None], se=[0.05, None], lower=[0.702, None],
                                 upper=[0.898, None], reasons={"60": "no controls at 60 months"}))
    assert rows[1] == {"time": 60, "auc": None, "se": None, "lower": None, "upper": None,
                       "reason": "no controls at 60 months"}
    grouped = calibration_by_time([CalibrationRow(time=12, group=2, n=5), CalibrationRow(time=12, group=1, n=4),
                                   CalibrationRow(time=24, group=1, n=9)])
    assert [(g["time"], [r.group for r in g["rows"]]) for g in grouped] == [(12, [1, 2]), (24, [1])]
    curves = {"12": [{"threshold": 0.1, "net_benefit": 0.30, "treat_all": 0.31, "treat_none": 0.0},
                     {"threshold": 0.2, "net_benefit": 0.25, "treat_all": 0.20, "treat_none": 0.0},
                     {"threshold": 0.3, "net_benefit": 0.12, "treat_all": -0.05, "treat_none": 0.0},
                     {"threshold": 0.4, "net_benefit": None, "treat_all": -0.2, "treat_none": 0.0}]}
    typed = {t: [DecisionRow.model_validate(row) for row in rows] for t, rows in curves.items()}
    assert decision_summary(typed) == [{"time": "12", "from": 0.2, "to": 0.3, "n_better": 2, "n_thresholds": 4}]


def test_signature_study_is_recognised(results: dict[str, Any]) -> None:
    assert signature_study(Results.model_validate(results))
    assert signature_study(Results.model_validate({"study": {"name": "x", "synthetic": True},
                                                   "cross_validation": {"not_run": "disabled in the protocol"}}))
    assert not signature_study(Results.model_validate_json(EXAMPLE.read_text(encoding="utf-8")))


def test_venn_for_three_learners(tmp_path: Path) -> None:
    selection = {"p_threshold": 0.05, "combine": "intersection",
                 "learners": {"lasso": {"features": ["a", "b"], "error": None},
                              "gbm": {"features": ["b", "c"], "error": None},
                              "rsf": {"features": ["b"], "error": None},
                              "coxboost": {"features": [], "error": "did not converge"}},
                 "combined": ["b"]}
    path = draw_learner_sets(Selection.model_validate(selection), tmp_path / "venn.png")
    with Image.open(path) as image:
        assert image.width == round(TEXT_WIDTH_IN * DPI)


# ----------------------------------------------------------------------------- rendered report


def test_signature_figures_written(report: tuple[Path, list[str]]) -> None:
    run_dir, _ = report
    figures = run_dir / "report" / "figures"
    assert sorted(p.name for p in figures.glob("*.png")) == [
        "calibration_training.png", "cross_validation.png", "decision_training.png", "discrimination.png",
        "flow.png", "icc.png", "km_training.png", "learner_sets.png", "time_roc_training.png"]
    for png in figures.glob("*.png"):
        with Image.open(png) as image:
            assert image.width == round(TEXT_WIDTH_IN * DPI)
    html = (run_dir / "report" / "report.html").read_text(encoding="utf-8")
    for name in ("icc", "learner_sets", "time_roc_training", "calibration_training", "decision_training",
                 "cross_validation"):
        assert f'src="figures/{name}.png"' in html


@needs_poppler
def test_signature_pdf_numbers(report: tuple[Path, list[str]], results: dict[str, Any]) -> None:
    _, pages = report
    text = " ".join(pages)
    assert all("SYNTHETIC DATA" in page for page in pages)

    # Table 2 (seed 001 layout): Coef, Exp(coef), Exp(-coef), Lower, Upper, p
    assert "Coef Exp(coef) Exp(\u2212coef) Lower 95% CI Upper 95% CI p" in text
    assert (f"wavelet-LLH_glszm_GrayLevelNonUniformityNormalized {MINUS}0.5651 0.5683 1.7595 0.4129 0.7823 <0.001"
            in text)
    assert "0.7318 2.0788 0.4810 1.5317 2.8214 <0.001" in text        # positive coefficient, 4 decimals
    assert "AIC of the final model 380.31" in text                  # aic 380.3141

    # time-dependent AUC with CI (auc 0.8439, 0.7558-0.9320), the missing 60-month AUC with its reason
    assert f"12 months 0.844 (0.756{EN}0.932) 0.045" in text
    assert f"48 months 0.901 (0.771{EN}1.000) 0.066" in text
    assert f"{EM} (no controls at 60 months)" in text
    # cross-validation median (range): training 12 m 0.8359 (0.7313-0.8955), validation 0.6097 (0.3991-0.7372)
    assert f"12 months 0.836 (0.731{EN}0.895) 30 0.610 (0.399{EN}0.737) 30" in text
    assert f"36 months 0.869 (0.812{EN}0.941) 30 0.632 (0.243{EN}0.875) 30" in text
    # summary box: AUC and CV medians side by side
    assert f"12 months 0.844 (0.756{EN}0.932) 0.836 (0.731{EN}0.895) 0.610 (0.399{EN}0.737)" in pages[1]

    # maxstat cut-off 0.485662, M 5.8637, p 1.761e-07 (Lau94); median PFS per group
    assert "Cut-off on the radscore: 0.4857" in text
    assert "M = 5.86, p < 0.001" in text
    assert "Lau94" in text
    assert f"Low risk 49 42.7 (36.1{EN}NR) High risk 38 10.2 (5.2{EN}13.1)" in text
    assert f"HR 5.60 (3.13{EN}10.03)" in text                      # hr 5.6003 (3.1269-10.0304)
    assert (f"median progression-free survival, months: high risk 10.2 (5.2{EN}13.1), low risk 42.7 (36.1{EN}NR)"
            in pages[1])

    # reproducibility and selection
    assert "Features with ICC > 0.80 were kept (961 of 1,316)" in text
    assert "original_glcm_Idmn" in text
    assert f"{MINUS}0.08 ({MINUS}0.44{EN}0.29)" in text  # lowest ICC -0.0775
    for learner in results["selection"]["learners"].values():
        assert learner["implementation"] in text
    for package in ("CoxBoost", "randomForestSRC", "superpc"):
        assert f"studyrunner stand-in: the CRAN package {package} did not run" in text
        assert f"This is not the CRAN package {package}" in text
    assert "glmnet did not run" not in text
    assert "gbm did not run" not in text
    assert "features chosen by every one of the 6 learners that ran were kept (7 features)" in text

    # calibration row: 12 months, group 1, predicted 0.0617, observed 0.1379 (0.0541-0.3269)
    assert f"1 29 4 0.062 0.138 (0.054{EN}0.327) 2 29 7 0.312 0.251 (0.128{EN}0.457)" in text
    # decision curves: counted from the fixture's rows
    rows = results["evaluation"]["training"]["decision_curves"]["12"]
    better = [r for r in rows if r["net_benefit"] is not None and r["net_benefit"] > max(r["treat_all"], 0.0)]
    assert f"at {len(better)} of {len(rows)} thresholds" in text
    # methods generated from the numbers
    assert "Discrimination at 12, 24, 36, 48, 60 months" in text
    assert "10 repeats of 3-fold cross-validation" in text
    assert "the improved Bonferroni inequality of Lausen, Sauerbrei & Schumacher (1994)" in text


@needs_poppler
def test_signature_sections_not_run(tmp_path: Path, results: dict[str, Any]) -> None:
    changed = copy.deepcopy(results)
    del changed["reproducibility"]
    changed["cross_validation"] = {"not_run": "cross-validation disabled in the protocol"}
    training = changed["evaluation"]["training"]
    del training["decision_curves"]
    training["calibration"] = {"not_run": "R package rms not installed"}
    training["median_survival"]["low"] = {"median": None, "lower": 36.1, "upper": None}
    changed["selection"]["learners"]["gbm"] = {"features": [], "implementation": "gbm 2.1.8.1",
                                               "error": "gbm: all predictors constant"}

    text = " ".join(pdf_text(render_report(write_run(tmp_path, changed))))
    assert "Not run: results.json has no 'reproducibility' record" in text
    assert "Not run: cross-validation disabled in the protocol" in text
    assert "Not run: R package rms not installed" in text
    assert "Not run: the development cohort (all patients) evaluation has no 'decision_curves' record" in text
    assert f"Low risk 49 not reached High risk 38 10.2 (5.2{EN}13.1)" in text
    assert "Failed: gbm: all predictors constant; the study went on without it" in text
    assert "features chosen by every one of the 5 learners that ran were kept" in text
    assert "Internal validation: not run (cross-validation disabled in the protocol)" in text
    figures = sorted(p.name for p in (tmp_path / "report" / "figures").glob("*.png"))
    assert "icc.png" not in figures
    assert "cross_validation.png" not in figures
    assert "decision_training.png" not in figures
    assert "calibration_training.png" not in figures


@needs_poppler
def test_signature_with_a_test_cohort(tmp_path: Path, results: dict[str, Any]) -> None:
    """With a test cohort the summary reports the test set, and every cohort gets its own time-dependent figures."""
    changed = copy.deepcopy(results)
    test = copy.deepcopy(changed["evaluation"]["training"])
    test.update(cohort_label="Test cohort", n=40, n_events=25, c_index=0.7012, c_lower=0.6101, c_upper=0.7923)
    test["time_roc"]["auc"][0] = 0.7125
    changed["evaluation"]["test"] = test
    pages = pdf_text(render_report(write_run(tmp_path, changed)))
    assert f"0.70 (0.61{EN}0.79)" in pages[1]  # C 0.7012 (0.6101-0.7923)
    assert "AUC (95% CI), test cohort" in pages[1]
    assert f"12 months 0.713 (0.756{EN}0.932)" in pages[1]       # the test cohort's AUC row in the summary
    figures = {p.name for p in (tmp_path / "report" / "figures").glob("*.png")}
    assert {"time_roc_test.png", "calibration_test.png", "decision_test.png", "km_test.png"} <= figures
