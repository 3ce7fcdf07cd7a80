"""Shared fixtures: a small synthetic study protocol derived from the demo protocol."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def small_study(tmp: Path, n_patients: int = 40, **overrides) -> Path:
    """Write a protocol for a small synthetic cohort (generated on first use) into ``tmp``.

    Derived from protocols/nsclc_ici.yaml: PFS endpoint (more events in a small cohort),
    a 70/30 split, first-order and shape features at native spacing, for speed.
    """
    data = yaml.safe_load((REPO / "protocols" / "nsclc_ici.yaml").read_text())
    data["study"]["name"] = "small_synthetic"
    cohort = data["cohort"]
    cohort["clinical_table"] = str(tmp / "cohort" / "clinical.csv")
    cohort["image_manifest"] = str(tmp / "cohort" / "manifest.csv")
    cohort["synthetic_source"]["n_patients"] = n_patients
    cohort["validation"]["suite"] = str(REPO / "validation" / "clinical_table.yaml")
    cohort["split"] = {"method": "stratified", "fractions": {"training": 0.7, "test": 0.3},
                       "stratify_on": ["pfs_event"], "training": ["training"], "test": ["test"]}
    data["preprocessing"]["resample_spacing"] = None
    data["predictors"]["radiomics"]["feature_classes"] = ["firstorder", "shape"]
    data["statistics"]["endpoint"] = "pfs"
    data["statistics"]["screening"]["p_threshold"] = 0.2
    data["statistics"]["km_times"] = None
    data["predictors"]["deep_learning"]["enabled"] = False  # the CNN tests build their own protocol
    data["statistics"].pop("risk_scores", None)
    data["statistics"]["evaluation"]["bootstrap_replicates"] = 20  # the calibration's CIs, few for speed
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = tmp / "study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def small_cohort_dir(tmp_path_factory) -> Path:
    """A folder with a generated 40-patient cohort, shared by the tests of a session."""
    from studyrunner.synthetic import generate_nsclc_ici_cohort

    folder = tmp_path_factory.mktemp("small")
    generate_nsclc_ici_cohort(folder / "cohort", n_patients=40, seed=20220415)
    return folder


@pytest.fixture(scope="session")
def deep_run(tmp_path_factory) -> Path:
    """protocols/nsclc_ici.yaml with a tiny CNN on 64 generated patients (tests/study_runs.py)."""
    from tests.study_runs import run_deep_study

    return run_deep_study(tmp_path_factory.mktemp("deep"))


@pytest.fixture(scope="session")
def signature_run(tmp_path_factory):
    """protocols/escc_ici_chemo.yaml on 45 generated patients: (run folder, results.json)."""
    from tests.study_runs import run_signature_study

    return run_signature_study(tmp_path_factory.mktemp("escc"))


@pytest.fixture(scope="session")
def real_run(tmp_path_factory):
    """protocols/lung1_real.yaml on the real Lung1 crops: (run folder, results.json)."""
    from tests.study_runs import LUNG1, run_real_study

    if not LUNG1.is_dir():
        pytest.skip(f"{LUNG1} not present")
    return run_real_study(tmp_path_factory.mktemp("lung1"))
