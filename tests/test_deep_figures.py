"""Seed-000 report figures (studyrunner.report.figures: deep, clinical_cox, response,
explanations, km_panels).

The pure functions that decide what is drawn are checked against hand computations and
numpy references; every figure is drawn from a small hand-made results dict, and from a
run folder built from it the way a finished run leaves it (results.json beside the Grad-CAM
overlays), and checked for its size."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from studyrunner.report.figures import DPI, TEXT_WIDTH_IN, draw_deep_figures
from studyrunner.report.figures.clinical_cox import forest_limits, forest_rows, nomogram_rows
from studyrunner.report.figures.deep import (
    cohort_rows,
    event_intervals,
    interval_names,
    risk_vector_points,
    scale_unit,
    score_ordering,
)
from studyrunner.report.figures.explanations import gradcam_cells, lung_window, spearman_rows
from studyrunner.report.figures.km_panels import km_note
from studyrunner.report.figures.labels import column_label
from studyrunner.report.figures.response import response_subgroup_rows, youden_point
from studyrunner.results.models import (
    ClinicalCox,
    CutpointGroups,
    Explanations,
    Nomogram,
    ResponseSubgroups,
    Results,
    RiskScores,
    RocAnalysis,
    SpearmanRow,
    SubgroupLevel,
)

COHORTS = {"training": ["modelling", "validation"], "test": ["test"]}


# --------------------------------------------------------------------------- pure functions


def test_event_intervals_equal_searchsorted_right() -> None:
    cutoffs = [100.0, 250.0]
    times = [5.0, 99.9, 100.0, 180.0, 250.0, 251.0, 900.0]
    expected = np.searchsorted(cutoffs, times, side="right")  # a time at a cut-off goes right
    assert event_intervals(times, cutoffs).tolist() == expected.tolist() == [0, 0, 1, 1, 2, 2, 2]
    assert interval_names(cutoffs, "days") == ["< 100 days", "100\u2013250 days", "\u2265 250 days"]


def test_risk_vector_points_keep_cohort_patients_with_the_event() -> None:
    patients = {
        "patient_id": ["a", "b", "c", "d", "e", "f"],
        "partition": ["modelling", "validation", "test", "test", "excluded", "modelling"],
        "os_days": [50, 300, 120, 40, 10, 260],
        "os_event": [1, 1, 0, 1, 1, 1],
        "s1": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        "s2": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "s3": [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0],
    }
    points = risk_vector_points(patients, ["s1", "s2", "s3"], "os_days", "os_event", [100.0, 250.0], COHORTS)
    # c is censored, e is in no cohort
    assert points["patient_id"] == ["a", "b", "d", "f"]
    assert points["cohort"] == ["training", "training", "test", "training"]
    np.testing.assert_allclose(points["xyz"], [[0.1, 1.0, -1.0], [0.2, 2.0, -2.0], [0.4, 4.0, -4.0],
                                               [0.6, 6.0, -6.0]])
    assert points["interval"].tolist() == np.searchsorted([100.0, 250.0], [50, 300, 40, 260], side="right").tolist()


def test_scale_unit_is_min_max() -> None:
    np.testing.assert_allclose(scale_unit([2.0, 6.0, 4.0, 3.0]), [0.0, 1.0, 0.5, 0.25])
    np.testing.assert_allclose(scale_unit([-3.0, -1.0]), [0.0, 1.0])
    np.testing.assert_allclose(scale_unit([7.0, 7.0]), [0.5, 0.5])


def _score_block(name: str, endpoint: str, fused: bool = False) -> dict[str, Any]:
    """A score record of risk_scores.scores without its evaluation (the ordering reads none)."""
    coefficient = {"term": "x", "coef": 0.5, "hr": 1.65, "hr_lower": 1.1, "hr_upper": 2.5, "p": 0.02}
    model = ({"fusion": {"coefficients": [coefficient], "fused_coefficients": {"x": 0.5},
                         "shares": [{"term": "x", "coef": 0.5, "sd": 1.0, "contribution": 0.5, "share": 1.0}]}}
             if fused else {"network": endpoint, "output_coefficients": [0.0, 0.5, 0.0],
                            "selection": {"kept": ["x"], "coefficients": [coefficient], "lp_coefficients": {"x": 0.5},
                                          "p_threshold": 0.05}})
    return {"label": name.upper(), "endpoint": endpoint, **model,
            "cutoff": {"value": 0.1, "method": "xtile", "label": "X-tile best split (maximal log-rank chi-square)"}}


def _ordering_input(local_rows: bool) -> RiskScores:
    partition = ["modelling", "test", "test", "validation", "test", "test"]
    test_rows = [1, 2, 4, 5]
    counts = {1: (3, 4), 2: (0, 1), 4: (2, 2), 5: (1, 5)}  # misordered_a (mosrs), misordered_b (osrs)
    per_patient = [{"row": str(k if local_rows else r), "misordered_a": counts[r][0], "misordered_b": counts[r][1],
                    "comparable": 5.0} for k, r in enumerate(test_rows)]
    scores = {"osrs": _score_block("osrs", "os"), "pfsrs": _score_block("pfsrs", "pfs"),
              "mosrs": _score_block("mosrs", "os", fused=True)}
    return RiskScores.model_validate({
        "cohorts": COHORTS, "scores": scores, "headline_score": "mosrs", "comparison_scores": ["mosrs", "osrs"],
        "comparison": {"test": {"per_patient": per_patient}},
        "patients": {"partition": partition,
                     "mosrs": [9.0, 0.4, -0.2, 8.0, 1.5, 0.1],
                     "osrs": [0.0, 2.0, 4.0, 0.0, 10.0, 6.0],
                     "pfsrs": [0.0, -1.0, -1.0, 0.0, -3.0, -5.0]}})


@pytest.mark.parametrize("local_rows", [False, True])
def test_score_ordering_sorts_by_mosrs_and_maps_pair_counts(local_rows: bool) -> None:
    data = score_ordering(_ordering_input(local_rows), "test")
    assert data is not None
    rows = np.array([1, 2, 4, 5])
    mosrs = np.array([0.4, -0.2, 1.5, 0.1])
    assert data["order"].tolist() == rows[np.argsort(mosrs)].tolist() == [2, 5, 1, 4]
    # OSRS of rows 2, 5, 1, 4 = 4, 6, 2, 10 over the cohort range 2..10
    np.testing.assert_allclose(data["scaled"]["osrs"], [0.25, 0.5, 0.0, 1.0])
    np.testing.assert_allclose(data["scaled"]["pfsrs"], [1.0, 0.0, 1.0, 0.5])  # -1, -5, -1, -3 over -5..-1
    np.testing.assert_allclose(data["scaled"]["mosrs"], [0.0, 0.3 / 1.7, 0.6 / 1.7, 1.0])
    assert data["misordered"]["mosrs"].tolist() == [0, 1, 3, 2]
    assert data["misordered"]["osrs"].tolist() == [1, 5, 4, 2]


def test_score_ordering_absent_cohort_or_score() -> None:
    risk = _ordering_input(False)
    assert score_ordering(risk.model_copy(update={"cohorts": {"test": ["nowhere"]}}), "test") is None
    assert score_ordering(risk.model_copy(update={"patients": {"partition": risk.patients["partition"]}}),
                          "test") is None
    assert cohort_rows(risk.patients, ["modelling", "validation"]).tolist() == [0, 3]


def test_forest_rows_group_categorical_levels() -> None:
    cox = {"univariate": [
        {"covariate": "age", "level": None, "reference": None, "hr": 1.02, "hr_lower": 0.98, "hr_upper": 1.06,
         "p": 0.3},
        {"covariate": "histology", "level": "Adeno", "reference": "Squamous", "hr": 0.5, "hr_lower": 0.2,
         "hr_upper": 1.3, "p": 0.15},
        {"covariate": "histology", "level": "Other", "reference": "Squamous", "hr": 2.0, "hr_lower": 0.04,
         "hr_upper": 230.0, "p": 0.6}],
        "multivariable": [{"covariate": "age", "level": None, "reference": None, "hr": 1.01, "hr_lower": 0.97,
                           "hr_upper": 1.05, "p": 0.5}]}
    rows = forest_rows(None, ClinicalCox.model_validate(cox))
    assert [(r["label"], r["indent"], r["hr"]) for r in rows] == [
        ("Univariate Cox models", 0, None), ("Age", 1, 1.02), ("Histology (vs Squamous)", 1, None),
        ("Adeno", 2, 0.5), ("Other", 2, 2.0), ("Multivariable Cox model", 0, None), ("Age", 1, 1.01)]
    # decades around 0.04 .. 230
    assert forest_limits(rows) == (0.01, 1000.0)
    assert forest_limits([{"hr": 1.5, "lower": 1.2, "upper": 1.9}]) == (1.0, 10.0)


def test_nomogram_rows_positions() -> None:
    nomogram = {
        "predictors": {"mosrs": {"values": ["-1", "0", "1"], "value_numeric": [-1.0, 0.0, 1.0],
                                 "points": [0.0, 50.0, 100.0]},
                       "sex": {"values": ["Female", "Male"], "value_numeric": None, "points": [0.0, 20.0]}},
        "total_points": [0.0, 40.0, 80.0, 120.0],
        "lp_axis": {"lp": [-0.5, 0.5], "total_points": [10.0, 110.0]},
        "survival_axes": {"S180": {"time": 180.0, "survival": [0.9, 0.5], "total_points": [20.0, 132.0]}},
        "survival_grid": {"180": {"total_points": [0.0, 60.0, 132.0]}},
        "time_unit": "days"}
    rows = {r["label"]: r for r in nomogram_rows(None, Nomogram.model_validate(nomogram))}
    assert rows["Points"]["x"] == [float(v) for v in range(0, 101, 10)]
    # a predictor's value sits at its table points
    assert rows["Mosrs"]["x"] == [0.0, 50.0, 100.0]
    assert rows["Mosrs"]["ticks"] == ["\u22121", "0", "1"]
    assert rows["Sex"]["x"] == [0.0, 20.0]
    assert rows["Sex"]["ticks"] == ["Female", "Male"]
    # total points 0..132 (the survival axis reaches 132) fill the 0..100 points range
    np.testing.assert_allclose(rows["Total points"]["x"], [0.0, 40 / 1.32, 80 / 1.32, 120 / 1.32])
    np.testing.assert_allclose(rows["Linear predictor"]["x"], [10 / 1.32, 110 / 1.32])
    survival = rows["Survival at 180 days"]
    np.testing.assert_allclose(survival["x"], [20 / 1.32, 100.0])
    assert survival["ticks"] == ["0.9", "0.5"]
    np.testing.assert_allclose(survival["span"], [0.0, 100.0])


def test_response_helpers() -> None:
    # Youden point = (1 - specificity, sensitivity)
    assert youden_point(RocAnalysis(sensitivity=0.75, specificity=0.6)) == pytest.approx((0.4, 0.75))
    assert youden_point(RocAnalysis(sensitivity=None, specificity=0.6)) is None
    rows = response_subgroup_rows({"voxel_spacing_mm": ResponseSubgroups.model_validate({"table": [
        {"subgroup": "<= 0.7", "n": 30, "auc": 0.6, "auc_lower": 0.4, "auc_upper": 0.8, "reason": None},
        {"subgroup": "> 0.7", "n": 9, "auc": None, "auc_lower": None, "auc_upper": None, "reason": "few"}]})})
    assert [(r["label"], r["heading"]) for r in rows] == [("Voxel spacing (mm)", True), ("\u2264 0.7", False),
                                                          ("> 0.7", False)]
    assert rows[1]["auc"] == 0.6
    assert rows[2]["reason"] == "few"
    assert column_label("tumour_size") == "Tumour size"
    explanations = Explanations.model_validate({"scores_explained": ["osrs", "prs", "pds"], "spearman": [
        {"name": "osrs", "rho": 0.2, "p": 0.1, "n": 9}, {"name": "prs", "rho": None, "p": None, "n": 9},
        {"name": "pds", "rho": math.nan, "p": None, "n": 9}]})
    assert spearman_rows(explanations) == [SpearmanRow(name="osrs", rho=0.2, p=0.1, n=9)]


def test_km_note_texts() -> None:
    block = CutpointGroups(logrank_p=0.0004, hr=2.053, hr_lower=1.643, hr_upper=2.564, hr_reason=None)
    assert km_note(block, width=100) == "Log-rank p < 0.001\nHR (high vs low) 2.05 (1.64\u20132.56)"
    level = SubgroupLevel(level="A", logrank_p=0.3, hr=None, hr_reason="no events in the high-risk group")
    note = km_note(level, width=200)
    assert note == "Log-rank p = 0.300\nHR (high vs low) \u2014 (no events in the high-risk group)"


def test_lung_window_maps_level_and_width() -> None:
    # level -600, width 1500: -1350 HU is black, 150 HU white, the level mid-grey
    np.testing.assert_allclose(lung_window(np.array([-2000.0, -1350.0, -600.0, 150.0, 400.0])),
                               [0.0, 0.0, 0.5, 1.0, 1.0])


def test_gradcam_cells_pick_axial_slices() -> None:
    ct = np.full((4, 4), -600.0)
    overlays = {"p1/ct/axial": ct, "p1/osrs/axial": np.eye(4), "p1/pds/axial": np.ones((4, 4)),
                "p1/osrs/coronal": np.zeros((4, 4)), "p2/osrs/axial": np.eye(4)}
    explanations = Explanations.model_validate({
        "scores_explained": ["osrs", "pfsrs", "prs", "pds"],
        "selected": [{"patient_id": "p1", "ordered_by": "mosrs", "mosrs": 1.0},
                     {"patient_id": "p2", "ordered_by": "mosrs", "mosrs": 2.0}]})
    cells = gradcam_cells(explanations, overlays)
    assert [c["patient_id"] for c in cells] == ["p1"]  # p2 has no CT slice
    assert list(cells[0]["maps"]) == ["osrs", "pds"]
    np.testing.assert_array_equal(cells[0]["maps"]["osrs"], np.eye(4))


# --------------------------------------------------------------------------- drawing


def _km_block(rng: np.random.Generator, n: int) -> dict[str, Any]:
    """A score's evaluation in a cohort (``Stratification``)."""
    def curve(m: int) -> dict[str, list[float]]:
        times = np.sort(rng.uniform(10, 700, m)).round().tolist()
        surv = np.cumprod(np.full(m, 0.93)).tolist()
        return {"time": times, "surv": surv, "lower": [max(s - 0.2, 0.0) for s in surv],
                "upper": [min(s + 0.1, 1.0) for s in surv]}
    return {"n": n, "n_events": n // 2, "hr": 2.1, "hr_lower": 1.1, "hr_upper": 4.0, "hr_reason": None,
            "logrank_chisq": 4.2, "logrank_p": 0.04, "c_index": 0.64,
            "groups": {"low": {"n": n // 2, "n_events": n // 4},
                       "high": {"n": n - n // 2, "n_events": n // 2 - n // 4}},
            "km": {"low": curve(n // 2), "high": curve(n - n // 2)},
            "risk_table": {"times": [0.0, 200.0, 400.0, 600.0], "low": [n // 2, 6, 3, 1],
                           "high": [n - n // 2, 4, 2, 0]},
            "median_survival": {"low": {"median": None}, "high": {"median": 300.0, "lower": 200.0, "upper": None}}}


def _level_block(rng: np.random.Generator, level: str, n: int) -> dict[str, Any]:
    """A subgroup level of the headline score (``SubgroupLevel``: no median survival)."""
    block = _km_block(rng, n)
    del block["median_survival"]
    return {"level": level, **block, "reason": None}


def _cutpoint_block(rng: np.random.Generator, n: int, cutpoint: float) -> dict[str, Any]:
    """A response score's groups at its cut-off (``CutpointGroups``: medians in the groups, no C-index)."""
    block = _km_block(rng, n)
    medians = block.pop("median_survival")
    for key in ("c_index", "n", "n_events"):
        del block[key]
    block["groups"] = {g: {**counts, "median": medians[g].get("median"), "median_lower": medians[g].get("lower"),
                           "median_upper": medians[g].get("upper")} for g, counts in block["groups"].items()}
    return {**block, "cutpoint": cutpoint}


def _deep_record(history: list[dict[str, Any]], networks: dict[str, Any]) -> dict[str, Any]:
    """results.json's ``deep`` section around the networks' training records."""
    config = {"block_layers": [1, 1], "growth_rate": 4, "initial_features": 4, "bottleneck_width": 4,
              "compression": 0.5, "hidden_units": 8, "dropout": 0.0, "stem_kernel": 3, "in_channels": 1}
    return {"device": "cpu", "profile": "cpu",
            "network": {"block_layers": [1, 1], "growth_rate": 4, "initial_features": 4, "hidden_units": 8,
                        "dropout": 0.0},
            "training": {"epochs": len(history), "batch_size": 4, "learning_rate": 0.001, "weight_decay": 0.0001,
                         "patience": None, "augment": True, "max_shift": 2},
            "fit_partition": "modelling", "model_choice_partition": "validation",
            "n": {"fit": 12, "model_choice": 4, "training": 16, "test": 8},
            "networks": networks,
            "crops": {"profile": "cpu", "crop": {"size_voxels": [16, 16, 16], "spacing_mm": [1.0, 1.0, 1.0],
                                                 "hu_window": [-1024.0, 1024.0]},
                      "zscore": {"mean": -500.0, "sd": 400.0, "computed_on": "modelling"}, "n_cropped": 24,
                      "excluded": []},
            "architectures": {name: {"class": "DualTaskNetwork" if name == "response" else "SurvivalNetwork",
                                     "config": config, "outputs": 2 if name == "response" else 3,
                                     "weights": f"weights/{name}.npz"} for name in networks}}


def tiny_results(run_dir: Path) -> dict[str, Any]:
    """A hand-made results dict with every piece the seed-000 figures draw from, in the shape
    of a real run's results.json (validated by ``Results``)."""
    rng = np.random.default_rng(7)
    n = 24
    partition = ["modelling"] * 12 + ["validation"] * 4 + ["test"] * 8
    patients: dict[str, list[Any]] = {"patient_id": [f"P{i:02d}" for i in range(n)], "partition": partition}
    for ep in ("os", "pfs"):
        patients[f"{ep}_days"] = rng.integers(20, 800, n).tolist()
        patients[f"{ep}_event"] = rng.integers(0, 2, n).tolist()
        for k in (1, 2, 3):
            patients[f"{ep}_score_{k}"] = rng.normal(size=n).tolist()
    for name in ("osrs", "pfsrs", "mosrs", "prs", "pds"):
        patients[name] = rng.normal(size=n).tolist()
    history = [{"epoch": e, "train_loss": 3.0 / e, "val_loss": 3.2 / e + 0.1 * e, "seconds": 1.0} for e in (1, 2, 3)]
    common = {"history": history, "epochs_run": 3, "train_samples_per_second": 10.0, "precision": "fp32"}
    accuracy = {c: {"macro_accuracy": 0.4, "recall_per_interval": [0.5, 0.2, None], "n_patients": 6}
                for c in ("training", "test")}
    networks = {ep: {"kind": "survival", "endpoint": ep, "cutoffs": cutoffs, "unit": "days",
                     "score_columns": [f"{ep}_score_{k}" for k in (1, 2, 3)], "best_epoch": best,
                     "macro_accuracy": accuracy, **common}
                for ep, cutoffs, best in (("os", [150.0, 400.0], 2), ("pfs", [100.0, 300.0], 3))}
    networks["response"] = {"kind": "response", "endpoint": "response", "best_epoch": 1, "n_without_response": 0,
                            "positive_levels": {"prs": "PR", "pds": "PD"}, **common}
    scores = {name: {**_score_block(name, ep, fused=name == "mosrs"),
                     "evaluation": {"training": _km_block(rng, 16), "test": _km_block(rng, 8)}}
              for name, ep in (("osrs", "os"), ("pfsrs", "pfs"), ("mosrs", "os"))}
    test_rows = [i for i, p in enumerate(partition) if p == "test"]
    comparison = {"test": {"per_patient": [{"row": str(r), "misordered_a": float(r % 3), "misordered_b": float(r % 5),
                                            "comparable": 6.0} for r in test_rows]}}
    roc = {"auc": 0.7, "auc_lower": 0.5, "auc_upper": 0.9, "cutoff": 0.45, "sensitivity": 0.8, "specificity": 0.6,
           "n": 16, "curve": {"fpr": [1.0, 0.6, 0.4, 0.0], "tpr": [1.0, 0.8, 0.5, 0.0],
                              "threshold": [None, 0.4, 0.45, 0.6]}}
    sub_table = [{"subgroup": "A", "n": 12, "auc": 0.66, "auc_lower": 0.4, "auc_upper": 0.9, "reason": None},
                 {"subgroup": "B", "n": 5, "auc": None, "auc_lower": None, "auc_upper": None, "reason": "few"}]
    response = {name: {"label": name.upper(), "outcome": outcome, "by_cohort": {"training": roc, "test": roc},
                       "stratification": {"os": _cutpoint_block(rng, 24, 0.45)},
                       "subgroups": {"histology": {"table": sub_table}}}
                for name, outcome in (("prs", "partial response"), ("pds", "progressive disease"))}
    nomogram = {"predictors": {"mosrs": {"values": ["-1", "0", "1"], "value_numeric": [-1.0, 0.0, 1.0],
                                         "points": [0.0, 50.0, 100.0]}},
                "total_points": [0.0, 50.0, 100.0], "lp_axis": {"lp": [-1.0, 1.0], "total_points": [0.0, 100.0]},
                "survival_axes": {"s": {"time": 365.0, "survival": [0.8, 0.5], "total_points": [20.0, 90.0]}},
                "n": 16, "n_events": 8, "time_unit": "days"}
    cox_row = {"covariate": "mosrs", "level": None, "reference": None, "hr": 2.7, "hr_lower": 0.9, "hr_upper": 8.0,
               "p": 0.07}
    subgroups = {"histology": {"levels": [_level_block(rng, "Adeno", 14),
                                          {"level": "Squamous", "n": 4, "n_events": 0, "km": None,
                                           "reason": "too few"}]}}
    selected = [{"patient_id": "P16", "ordered_by": "mosrs", "mosrs": -0.5},
                {"patient_id": "P20", "ordered_by": "mosrs", "mosrs": 0.7}]
    yy, xx = np.mgrid[:16, :16]
    overlays = {}
    for pid in ("P16", "P20"):
        overlays[f"{pid}/ct/axial"] = np.where((yy - 8) ** 2 + (xx - 8) ** 2 < 16, 40.0, -850.0)
        for name in ("osrs", "pfsrs", "prs", "pds"):
            overlays[f"{pid}/{name}/axial"] = np.exp(-((yy - 8) ** 2 + (xx - 7) ** 2) / 20.0)
    (run_dir / "explanations").mkdir(parents=True, exist_ok=True)
    np.savez_compressed(run_dir / "explanations" / "overlays.npz", **overlays)
    return {
        "study": {"name": "tiny_cnn", "synthetic": True},
        "endpoints": {"os": {"type": "time_to_event", "label": "Overall survival", "time": "os_days",
                             "event": "os_event", "unit": "days"},
                      "pfs": {"type": "time_to_event", "label": "Progression-free survival", "time": "pfs_days",
                              "event": "pfs_event", "unit": "days"}},
        "deep": _deep_record(history, networks),
        "risk_scores": {"cohorts": COHORTS, "scores": scores, "comparison": comparison,
                        "comparison_scores": ["mosrs", "osrs"], "headline_score": "mosrs",
                        "clinical_cox": {"univariate": [cox_row], "multivariable": [cox_row]},
                        "nomogram": nomogram, "subgroups": subgroups, "response": response, "patients": patients},
        "explanations": {"scores_explained": ["osrs", "pfsrs", "prs", "pds"], "selected": selected,
                         "overlays_file": "explanations/overlays.npz",
                         "ssim": {"pair": ["osrs", "pfsrs"], "by_cohort": {"training": {"n": 16, "median": 0.6,
                                                                                         "q1": 0.4, "q3": 0.8}}},
                         "spearman": [{"name": n, "rho": r, "p": p, "n": 24} for n, r, p in
                                      (("osrs", -0.4, 0.03), ("pfsrs", 0.1, 0.6), ("mosrs", -0.3, 0.15))]},
    }


EXPECTED_KEYS = {"deep_training", "risk_vectors_os", "risk_vectors_pfs", "score_ordering", "clinical_forest",
                 "nomogram", "subgroups_histology", "response_km_os", "response_roc", "response_subgroups", "gradcam",
                 "ssim_spearman"} | {f"km_{s}_{c}" for s in ("osrs", "pfsrs", "mosrs") for c in ("training", "test")}


def _check_pngs(figures: dict[str, Path]) -> None:
    for key, path in figures.items():
        assert path.is_file(), key
        with Image.open(path) as image:
            width, height = image.size
        assert width == round(TEXT_WIDTH_IN * DPI), (key, width)  # drawn at the text width, shown at 1:1
        assert 0.25 * DPI < height < 9.5 * DPI, (key, height)


def test_hand_made_results_are_a_valid_results_file(tmp_path: Path) -> None:
    results = tiny_results(tmp_path / "run")
    assert Results.model_validate(results).to_json() == results


def test_every_figure_from_hand_made_results(tmp_path: Path) -> None:
    results = Results.model_validate(tiny_results(tmp_path / "run"))
    figures = draw_deep_figures(results, tmp_path / "figures", tmp_path / "run")
    assert set(figures) == EXPECTED_KEYS
    _check_pngs(figures)


def test_absent_pieces_are_skipped(tmp_path: Path) -> None:
    results = tiny_results(tmp_path / "run")
    study = {"study": results["study"], "endpoints": results["endpoints"]}
    assert draw_deep_figures(Results.model_validate(study), tmp_path / "none", tmp_path / "run") == {}
    only_deep = draw_deep_figures(Results.model_validate({**study, "deep": results["deep"]}), tmp_path / "deep",
                                  tmp_path / "run")
    assert set(only_deep) == {"deep_training"}
    results["risk_scores"]["response"] = None
    results["risk_scores"]["nomogram"] = {"not_run": "no covariates"}
    results["explanations"]["overlays_file"] = "explanations/missing.npz"
    figures = draw_deep_figures(Results.model_validate(results), tmp_path / "some", tmp_path / "run")
    skipped = {"response_km_os", "response_km_pfs", "response_roc", "response_subgroups", "nomogram", "gradcam"}
    assert not skipped & set(figures)
    assert {"ssim_spearman", "score_ordering", "km_mosrs_test"} <= set(figures)


def finished_run(run_dir: Path) -> Path:
    """A run folder as a finished seed-000 run leaves it: results.json (read back through JSON,
    so row labels and time keys are strings) beside the Grad-CAM overlays. Unlike
    ``tiny_results`` the response scores are stratified for both endpoints and the subgroup
    columns are those of a real cohort: one with a unit and comparison levels, one not run."""
    results = tiny_results(run_dir)
    rng = np.random.default_rng(11)
    risk = results["risk_scores"]
    for block in risk["response"].values():
        block["stratification"]["pfs"] = _cutpoint_block(rng, 24, 0.52)
    risk["subgroups"] = {"age_years": {"levels": [_level_block(rng, "<= 65", 14), _level_block(rng, "> 65", 10)]},
                         "pd_l1": {"not_run": "fewer than two levels"}}
    (run_dir / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return run_dir


def test_every_figure_from_a_finished_run(tmp_path: Path) -> None:
    run_dir = finished_run(tmp_path / "run")
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    figures = draw_deep_figures(Results.model_validate(results), tmp_path / "figures", run_dir)
    subgroups = {f"subgroups_{c}" for c, record in results["risk_scores"]["subgroups"].items() if "levels" in record}
    stratified = {f"response_km_{e}" for block in results["risk_scores"]["response"].values()
                  for e in block.get("stratification") or {}}
    assert subgroups == {"subgroups_age_years"}
    assert stratified == {"response_km_os", "response_km_pfs"}
    assert set(figures) == (EXPECTED_KEYS - {"subgroups_histology", "response_km_os"}) | subgroups | stratified
    _check_pngs(figures)
