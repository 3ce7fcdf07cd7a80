"""A study on real CT (../shared/data/nsclc_lung1_real, CC BY-NC 3.0; never copied here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from lifelines.utils import concordance_index

from studyrunner.runner import RunOptions
from tests.conftest import REPO, SHARED_DATA

LUNG1 = SHARED_DATA / "nsclc_lung1_real"
pytestmark = [pytest.mark.shared_data, pytest.mark.slow, pytest.mark.needs_r,
              pytest.mark.skipif(not LUNG1.is_dir(), reason=f"{LUNG1} not present")]


def test_real_ct_is_read_and_features_match_numpy(real_run):
    run_dir, _ = real_run
    features = pd.read_csv(run_dir / "radiomics" / "features.csv", dtype={"patient_id": str}).set_index("patient_id")
    manifest = pd.read_csv(LUNG1 / "manifest.csv").set_index("patient_id")
    for pid in features.index[:3]:
        image = sitk.GetArrayFromImage(sitk.ReadImage(str(LUNG1 / manifest.loc[pid, "image"]))).astype(float)
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(LUNG1 / manifest.loc[pid, "mask"]))) == 1
        assert features.loc[pid, "original_firstorder_Mean"] == pytest.approx(image[mask].mean(), rel=1e-9)
        assert features.loc[pid, "original_shape_VoxelVolume"] == pytest.approx(mask.sum() * 1.0)  # 1 mm voxels
    assert np.isfinite(features.to_numpy()).all()


def test_real_cohort_exclusions_are_recorded_with_reasons(real_run):
    _, results = real_run
    reasons = {e["patient_id"]: e for e in results["flow"]["exclusions"]}
    clinical = pd.read_csv(LUNG1 / "clinical.csv", dtype={"patient_id": str})
    for pid in clinical.loc[clinical["age"].isna(), "patient_id"]:
        assert reasons[pid]["reason"] == "Age not recorded"
    assert reasons["P003"]["stage"] == "images"
    assert "no voxel equal to label 1" in reasons["P003"]["reason"]
    assert results["flow"]["n_included"] == len(clinical) - len(reasons)


def test_real_cohort_c_index_matches_lifelines(real_run):
    run_dir, results = real_run
    if not results["evaluation"]:
        pytest.skip("no feature passed screening on this cohort")
    scores = pd.read_csv(run_dir / "statistics" / "scores.csv", dtype={"patient_id": str})
    data = scores.merge(pd.read_csv(LUNG1 / "clinical.csv", dtype={"patient_id": str}), on="patient_id")
    test = data[data["partition"] == "test"]
    assert results["evaluation"]["test"]["c_index"] == pytest.approx(
        concordance_index(test["os_days"], -test["risk_score"], test["os_event"]), abs=1e-9)


def test_the_frozen_real_model_applied_to_real_ct_gives_back_its_scores(real_run, tmp_path):
    """The external path on real CT: the lung1 model, frozen, applied to the real cohort it was
    developed on (the only real cohort here, so a reproduction check, not an external
    validation), extracting only its own features, gives back the development scores."""
    from studyrunner.external.run import validate_externally
    from studyrunner.protocol import load_external_protocol

    run_dir, _ = real_run
    protocol = yaml.safe_load((REPO / "protocols" / "lung1_real.yaml").read_text())
    cohort = protocol["cohort"]
    data = {
        "study": {"name": "lung1_reproduction", "kind": "external_validation", "synthetic": False},
        "cohort": {**{k: cohort[k] for k in ("id_column", "manifest_columns", "value_mappings", "inclusion")},
                   "clinical_table": str(LUNG1 / "clinical.csv"), "image_manifest": str(LUNG1 / "manifest.csv"),
                   "validation": {"suite": str(REPO / "validation" / "clinical_table.yaml"), "age_column": "age"},
                   "split": {"method": "none", "training": ["development"]}},
        "endpoints": protocol["endpoints"],
        "preprocessing": {"mask_label": 1},
        "validation": {"endpoint": "os", "times": [365.5, 730.5], "bootstrap_replicates": 20},
        "report": {"title": "Lung1 model reproduction on real CT"},
    }
    path = tmp_path / "external.yaml"
    path.write_text(yaml.safe_dump(data))
    external = validate_externally(run_dir / "model", load_external_protocol(path),
                                   RunOptions(out_dir=tmp_path / "run"))
    scores = pd.read_csv(external / "scores" / "scores.csv", dtype={"patient_id": str}).set_index("patient_id")
    stored = pd.read_csv(run_dir / "statistics" / "scores.csv", dtype={"patient_id": str}).set_index("patient_id")
    assert set(scores.index) == set(stored.index)
    assert np.allclose(scores.loc[stored.index, "score"], stored["risk_score"], rtol=0, atol=1e-9)
    features = pd.read_csv(external / "radiomics" / "features.csv", dtype={"patient_id": str})
    assert features.shape[1] - 1 < 10  # only the model's features were extracted
