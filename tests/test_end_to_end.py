"""A whole study on a small synthetic cohort: protocol -> PDF, checked against independent references."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from lifelines.utils import concordance_index

from studyrunner.bundle import load_bundle
from studyrunner.protocol import load_protocol
from studyrunner.report.formatting import fmt_ci
from studyrunner.runner import RunOptions, run_study
from tests.conftest import small_study

pytestmark = [pytest.mark.slow, pytest.mark.needs_r]

BROKEN_CASE = "SYN0007"


@pytest.fixture(scope="module")
def finished_run(small_cohort_dir, tmp_path_factory):
    """One run on a copy of the small cohort in which one mask is on the wrong grid."""
    work = tmp_path_factory.mktemp("e2e")
    shutil.copytree(small_cohort_dir / "cohort", work / "cohort")
    mask_path = work / "cohort" / "images" / f"{BROKEN_CASE}_mask.nii.gz"
    mask = sitk.ReadImage(str(mask_path))
    mask.SetSpacing([s * 2 for s in mask.GetSpacing()])
    sitk.WriteImage(mask, str(mask_path))
    loaded = load_protocol(small_study(work))
    run_dir = run_study(loaded, RunOptions(out_dir=work / "run"))
    return loaded, run_dir, json.loads((run_dir / "results.json").read_text())


def test_pdf_text_shows_the_c_index_of_results_json(finished_run):
    _, run_dir, results = finished_run
    text = subprocess.run(["pdftotext", "-layout", str(run_dir / "report.pdf"), "-"],
                          capture_output=True, text=True, encoding="utf-8", check=True).stdout
    test = results["evaluation"]["test"]
    assert fmt_ci(test["c_index"], test["c_lower"], test["c_upper"]) in text
    assert "SYNTHETIC DATA" in text.split("\f")[0]
    assert BROKEN_CASE in text  # listed among the excluded patients


def test_c_index_matches_lifelines_on_the_scores_the_run_wrote(finished_run):
    _, run_dir, results = finished_run
    scores = pd.read_csv(run_dir / "statistics" / "scores.csv", dtype={"patient_id": str})
    clinical = pd.read_csv(run_dir / "cohort" / "clinical.csv", dtype={"patient_id": str})
    data = scores.merge(clinical[["patient_id", "pfs_days", "pfs_event"]], on="patient_id")
    for cohort, partition in (("training", "training"), ("test", "test")):
        part = data[data["partition"] == partition]
        expected = concordance_index(part["pfs_days"], -part["risk_score"], part["pfs_event"])
        assert results["evaluation"][cohort]["c_index"] == pytest.approx(expected, abs=1e-9)
        assert results["evaluation"][cohort]["n"] == len(part)


def test_geometry_failure_excludes_the_case_with_its_reason_and_the_study_goes_on(finished_run):
    _, run_dir, results = finished_run
    excluded = {e["patient_id"]: e for e in results["flow"]["exclusions"]}
    assert excluded[BROKEN_CASE]["stage"] == "images"
    assert "spacing" in excluded[BROKEN_CASE]["reason"]
    assert results["flow"]["n_included"] == 39
    assert sum(results["flow"]["partitions"].values()) == 39
    assert BROKEN_CASE not in pd.read_csv(run_dir / "radiomics" / "features.csv")["patient_id"].tolist()


def test_frozen_bundle_reproduces_the_scores(finished_run):
    _, run_dir, _ = finished_run
    bundle = load_bundle(run_dir / "model" / "bundle.json")
    features = pd.read_csv(run_dir / "radiomics" / "features.csv", dtype={"patient_id": str}).set_index("patient_id")
    scores = pd.read_csv(run_dir / "statistics" / "scores.csv", dtype={"patient_id": str}).set_index("patient_id")
    z = np.column_stack([(features[f] - bundle["normalisation"][f]["mean"]) / bundle["normalisation"][f]["sd"]
                         for f in bundle["features"]])
    recomputed = z @ np.array([bundle["coefficients"][f] for f in bundle["features"]])
    np.testing.assert_allclose(recomputed, scores.loc[features.index, "risk_score"], rtol=1e-10)


def test_manifest_records_hashes_versions_and_timings(finished_run):
    loaded, run_dir, _ = finished_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["protocol"]["sha256"] == loaded.sha256
    assert manifest["seed"] == loaded.protocol.study.seed
    assert set(manifest["stages"]) == {"cohort", "images", "radiomics", "statistics", "model", "report"}
    assert manifest["environment"]["r_packages"]["survival"]
    assert all(len(h) == 64 for h in manifest["inputs"].values())


def test_rerun_reuses_every_unchanged_stage_and_gives_the_same_numbers(finished_run):
    loaded, run_dir, results = finished_run
    run_study(loaded, RunOptions(out_dir=run_dir))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    reused = {name for name, stage in manifest["stages"].items() if stage["reused"]}
    assert reused == set(manifest["stages"]), f"rerun: {sorted(set(manifest['stages']) - reused)}"
    again = json.loads((run_dir / "results.json").read_text())
    assert again == results  # the creation time included: nothing was recomputed


def test_a_study_can_start_from_a_feature_table_and_gives_the_same_numbers(finished_run, tmp_path):
    loaded, run_dir, results = finished_run
    data = loaded.protocol.model_dump(mode="json", exclude_none=True)
    data["cohort"].pop("image_manifest")
    data["cohort"].pop("synthetic_source")
    data["cohort"]["feature_table"] = str(run_dir / "radiomics" / "features.csv")
    # keep the image run's partitions (a site split on a column holding them), so the numbers must agree
    clinical = pd.read_csv(data["cohort"]["clinical_table"], dtype=str)
    partitions = pd.read_csv(run_dir / "cohort" / "clinical.csv", dtype=str).set_index("patient_id")["partition"]
    clinical["earlier_partition"] = clinical["patient_id"].map(partitions)
    clinical.to_csv(tmp_path / "clinical.csv", index=False)
    data["cohort"]["clinical_table"] = str(tmp_path / "clinical.csv")
    data["cohort"]["split"] = {"method": "site", "site_column": "earlier_partition",
                               "sites": {"training": "training", "test": "test"},
                               "training": ["training"], "test": ["test"]}
    protocol = tmp_path / "from_features.yaml"
    protocol.write_text(yaml.safe_dump(data))
    again = run_study(load_protocol(protocol), RunOptions(out_dir=tmp_path / "run"))
    new = json.loads((again / "results.json").read_text())
    assert not (again / "images").exists()
    for cohort in ("training", "test"):
        for key in ("n", "n_events", "c_index", "hr", "logrank_p"):
            assert new["evaluation"][cohort][key] == pytest.approx(results["evaluation"][cohort][key], rel=1e-9)


def test_feature_table_errors_name_file_line_and_column(tmp_path):
    from studyrunner.errors import InputError
    from studyrunner.radiomics.feature_table import read_feature_table

    path = tmp_path / "features.csv"
    path.write_text("patient_id,f1,f2\nA,1.5,2\nB,0.3,n/a\n")
    with pytest.raises(InputError, match=r"line 3, column 'f2': 'n/a' is not a number"):
        read_feature_table(path, "patient_id")


def test_shared_outputs_name_no_folder_of_the_machine_that_ran_the_study(finished_run):
    """results.json, manifest.json, the bundle and the report name inputs relative to the
    protocol's folder (issue 11); the exclusion reason still says which file."""
    loaded, run_dir, results = finished_run
    machine_folder = str(loaded.path.parent)
    text = subprocess.run(["pdftotext", str(run_dir / "report.pdf"), "-"], capture_output=True, text=True,
                          encoding="utf-8", check=True).stdout
    for name, content in (("results.json", (run_dir / "results.json").read_text()),
                          ("manifest.json", (run_dir / "manifest.json").read_text()),
                          ("model/bundle.json", (run_dir / "model" / "bundle.json").read_text()),
                          ("report.pdf", text)):
        assert machine_folder not in content, name
    assert results["study"]["protocol_file"] == loaded.path.name
    reason = next(e["reason"] for e in results["flow"]["exclusions"] if e["patient_id"] == BROKEN_CASE)
    assert reason.startswith("mask spacing")
