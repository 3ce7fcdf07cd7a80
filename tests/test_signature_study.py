"""The escc_ici_chemo study's whole pipeline on a small synthetic oesophageal cohort: second readers, ICC,
learners, stepwise Cox, maxstat, time-dependent ROC, calibration, decision curves, CV."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
import yaml
from lifelines.utils import concordance_index

from studyrunner.protocol import load_protocol
from studyrunner.report.formatting import fmt_auc
from studyrunner.runner import RunOptions, run_study
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.needs_r]


@pytest.fixture(scope="module")
def signature_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("escc")
    data = yaml.safe_load((REPO / "protocols" / "escc_ici_chemo.yaml").read_text())
    cohort = data["cohort"]
    cohort["clinical_table"] = str(work / "cohort" / "clinical.csv")
    cohort["image_manifest"] = str(work / "cohort" / "manifest.csv")
    cohort["synthetic_source"]["n_patients"] = 45
    cohort["validation"]["suite"] = str(REPO / "validation" / "clinical_table.yaml")
    data["predictors"]["radiomics"]["image_types"] = {"Original": {}, "LoG": {"sigma": [2.0]}}
    data["predictors"]["radiomics"]["feature_classes"] = ["firstorder", "shape", "glcm"]
    stats = data["statistics"]
    stats["screening"]["p_threshold"] = 0.2
    stats["selection"]["combine"] = "votes"
    stats["selection"]["min_votes"] = 3
    stats["selection"]["learner_settings"] = {"gbm": {"n_trees": 200}, "rsf": {"num_trees": 200}}
    stats["evaluation"] = {"time_roc_times": [12, 24, 36], "calibration_times": [12, 24],
                           "decision_curve_times": [12], "cross_validation": {"folds": 3, "repeats": 1}}
    protocol = work / "escc.yaml"
    protocol.write_text(yaml.safe_dump(data, sort_keys=False))
    loaded = load_protocol(protocol)
    run_dir = run_study(loaded, RunOptions(out_dir=work / "run"))
    return run_dir, json.loads((run_dir / "results.json").read_text())


def test_second_readers_feed_the_icc_filter(signature_run):
    run_dir, results = signature_run
    reader2 = pd.read_csv(run_dir / "radiomics" / "features_reader2.csv")
    manifest = pd.read_csv(run_dir.parent / "cohort" / "manifest.csv")
    assert len(reader2) == manifest["mask_reader2"].notna().sum() > 0
    icc = pd.read_csv(run_dir / "statistics" / "icc.csv")
    assert results["reproducibility"]["n_features"] == len(icc)
    assert results["reproducibility"]["n_kept"] == int((icc["icc"] > 0.8).sum())
    candidates = json.loads((run_dir / "statistics" / "normalisation.json").read_text())
    assert set(candidates) <= set(icc.loc[icc["kept"], "feature"])  # only reproducible features go on


def test_learners_ran_and_are_recorded_with_their_implementation(signature_run):
    _, results = signature_run
    learners = results["selection"]["learners"]
    assert set(learners) == {"elastic_net", "lasso", "coxboost", "gbm", "rsf", "superpc"}
    for name, entry in learners.items():
        assert entry["implementation"] or entry["error"], name
    votes = pd.Series([f for e in learners.values() for f in e["features"]]).value_counts()
    assert set(results["selection"]["combined"]) == set(votes[votes >= 3].index)


def test_radscore_evaluation_matches_independent_references(signature_run):
    run_dir, results = signature_run
    scores = pd.read_csv(run_dir / "statistics" / "scores.csv", dtype={"patient_id": str},
                         float_precision="round_trip")  # the cut-off is one of the scores: compare exactly
    clinical = pd.read_csv(run_dir / "cohort" / "clinical.csv", dtype={"patient_id": str})
    data = scores.merge(clinical[["patient_id", "pfs_months", "pfs_event"]], on="patient_id")
    block = results["evaluation"]["training"]
    assert block["c_index"] == pytest.approx(
        concordance_index(data["pfs_months"], -data["risk_score"], data["pfs_event"]), abs=1e-9)
    cutoff = results["model"]["cutoff"]
    assert cutoff["method"] == "maxstat"
    assert cutoff["pmethod"] == "Lau94"
    assert (data["risk_group"] == "high").sum() == (data["risk_score"] > cutoff["value"]).sum()
    assert len(block["time_roc"]["auc"]) == 3
    cv = results["cross_validation"]
    assert cv["n_fits"] == 3
    assert cv["folds"] == 3
    folds = pd.read_csv(run_dir / "statistics" / "folds.csv")
    for _, fold in folds.groupby(["repeat", "fold"]):
        assert not set(fold.loc[fold["role"] == "training", "patient_id"]) & \
               set(fold.loc[fold["role"] == "validation", "patient_id"])


def test_report_shows_the_time_dependent_aucs(signature_run):
    run_dir, results = signature_run
    text = subprocess.run(["pdftotext", "-layout", str(run_dir / "report.pdf"), "-"],
                          capture_output=True, text=True, encoding="utf-8", check=True).stdout
    roc = results["evaluation"]["training"]["time_roc"]
    for auc, lower, upper in zip(roc["auc"], roc["lower"], roc["upper"], strict=True):
        if auc is not None:
            assert fmt_auc(auc, lower, upper) in text
    assert "SYNTHETIC DATA" in text
