"""The escc_ici_chemo study's whole pipeline on a small synthetic oesophageal cohort: second readers, ICC,
learners, stepwise Cox, maxstat, time-dependent ROC, calibration, decision curves, CV."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
from lifelines.utils import concordance_index

from studyrunner.report.formatting import fmt_auc

pytestmark = [pytest.mark.slow, pytest.mark.needs_r]


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
