"""The three shipped protocols, each on a small cohort, run once per test session (the
fixtures ``deep_run``, ``signature_run`` and ``real_run`` in conftest.py): the studies' own
tests and the report review (tests/test_report_review.py) read the same run folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO, SHARED_DATA, small_study

TINY_NETWORK = {"block_layers": [1, 1, 1, 1], "growth_rate": 4, "initial_features": 8, "hidden_units": 16,
                "dropout": 0.0}
TINY_CROP = {"size_voxels": [24, 24, 24], "spacing_mm": [3.5, 3.5, 3.5], "hu_window": [-1024, 1024]}
TINY_TRAINING = {"epochs": 2, "batch_size": 8, "learning_rate": 0.001, "weight_decay": 0.0, "patience": None,
                 "augment": True, "max_shift": 1}
N_PATIENTS = 64
COUNTS = {"modelling": 38, "validation": 10, "test": 16}
LUNG1 = SHARED_DATA / "nsclc_lung1_real"


def deep_protocol(tmp: Path) -> Path:
    """protocols/nsclc_ici.yaml as the small synthetic study (conftest.small_study) with the
    demo's CNN plan on a tiny network and the paper's modelling / validation / test split."""
    demo = yaml.safe_load((REPO / "protocols" / "nsclc_ici.yaml").read_text())
    deep = {**demo["predictors"]["deep_learning"], "crop": TINY_CROP, "network": TINY_NETWORK,
            "training": TINY_TRAINING, "cpu": None, "gradcam_patients": 2}
    risk_scores = {**demo["statistics"]["risk_scores"], "clinical_covariates": ["age", "sex", "histology"],
                   "multivariable_p": 0.5, "bootstrap_replicates": 20}
    split = {**demo["cohort"]["split"], "counts": COUNTS, "stratify_on": ["os_event"]}
    return small_study(tmp, n_patients=N_PATIENTS, **{
        "study.name": "deep_small", "cohort.split": split, "statistics.endpoint": "os",
        "statistics.screening.p_threshold": 0.5, "predictors.deep_learning": deep,
        "statistics.risk_scores": risk_scores})


def run_deep_study(tmp: Path) -> Path:
    from studyrunner.protocol import load_protocol
    from studyrunner.runner import RunOptions, run_study
    from studyrunner.synthetic import generate_nsclc_ici_cohort

    generate_nsclc_ici_cohort(tmp / "cohort", n_patients=N_PATIENTS, seed=20220415)
    # in-process: a subprocess would inherit the LD_LIBRARY_PATH that embedded R set in this one
    return run_study(load_protocol(deep_protocol(tmp)), RunOptions(out_dir=tmp / "run", device="cpu"))


def run_signature_study(work: Path) -> tuple[Path, dict[str, Any]]:
    """protocols/escc_ici_chemo.yaml on 45 generated patients with fewer filters and folds."""
    from studyrunner.protocol import load_protocol
    from studyrunner.runner import RunOptions, run_study

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
    stats["evaluation"] = {**stats["evaluation"], "time_roc_times": [12, 24, 36], "calibration_times": [12, 24],
                           "decision_curve_times": [12], "cross_validation": {"folds": 3, "repeats": 1},
                           "bootstrap_replicates": 20}
    protocol = work / "escc.yaml"
    protocol.write_text(yaml.safe_dump(data, sort_keys=False))
    run_dir = run_study(load_protocol(protocol), RunOptions(out_dir=work / "run"))
    return run_dir, json.loads((run_dir / "results.json").read_text())


def run_real_study(work: Path) -> tuple[Path, dict[str, Any]]:
    """protocols/lung1_real.yaml on the real Lung1 crops (first-order and shape features)."""
    from studyrunner.protocol import load_protocol
    from studyrunner.runner import RunOptions, run_study

    data = yaml.safe_load((REPO / "protocols" / "lung1_real.yaml").read_text())
    for key in ("clinical_table", "image_manifest"):
        data["cohort"][key] = str(LUNG1 / data["cohort"][key].rsplit("/", 1)[1])
    data["cohort"]["validation"]["suite"] = str(REPO / "validation" / "clinical_table.yaml")
    data["predictors"]["radiomics"]["feature_classes"] = ["firstorder", "shape"]
    data["statistics"]["evaluation"]["bootstrap_replicates"] = 20
    protocol = work / "lung1.yaml"
    protocol.write_text(yaml.safe_dump(data))
    run_dir = run_study(load_protocol(protocol), RunOptions(out_dir=work / "run", workers=2))
    return run_dir, json.loads((run_dir / "results.json").read_text())
