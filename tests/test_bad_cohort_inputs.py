"""Catalogue of bad inputs, group "manifest": a manifest row naming a missing file or a
folder that holds no DICOM series excludes that case at the images stage with its reason
(the stage fingerprint hashes what exists), and a patient with images but no clinical row is
recorded in the flow. README "Bad inputs" lists the groups."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from studyrunner.protocol import load_protocol
from studyrunner.results.assemble import flow_section
from studyrunner.runner import DevelopmentRun, RunOptions, SilentSink
from tests.conftest import small_study

pytestmark = [pytest.mark.needs_r]


@pytest.fixture(scope="module")
def damaged_cohort(small_cohort_dir, tmp_path_factory):
    """The small cohort with SYN0003's image deleted, SYN0004's image a folder without
    DICOM files, and an extra manifest row for a patient absent from the clinical table;
    the cohort and images stages run on it."""
    work = tmp_path_factory.mktemp("damaged")
    shutil.copytree(small_cohort_dir / "cohort", work / "cohort")
    manifest = pd.read_csv(work / "cohort" / "manifest.csv", dtype=str)
    (work / "cohort" / "images" / "SYN0003_ct.nii.gz").unlink()
    (work / "cohort" / "images" / "series_SYN0004").mkdir()
    (work / "cohort" / "images" / "series_SYN0004" / "notes.txt").write_text("no DICOM here")
    manifest.loc[manifest["patient_id"] == "SYN0004", "image"] = "images/series_SYN0004"
    extra = manifest[manifest["patient_id"] == "SYN0005"].assign(patient_id="SYN9999")
    pd.concat([manifest, extra]).to_csv(work / "cohort" / "manifest.csv", index=False)
    loaded = load_protocol(small_study(work))
    run = DevelopmentRun(loaded, RunOptions(out_dir=work / "run"), SilentSink())
    with run.logged():
        clinical = run.cohort()
        usable = run.images(clinical)
    return run, clinical, usable


def test_a_missing_image_file_excludes_its_case_and_the_rest_go_on(damaged_cohort):
    run, clinical, usable = damaged_cohort
    cases = pd.read_csv(run.run_dir / "images" / "cases.csv", dtype={"patient_id": str}).set_index("patient_id")
    assert not cases.loc["SYN0003", "ok"]
    assert "SYN0003_ct.nii.gz: no such file or folder" in cases.loc["SYN0003", "problems"]
    assert len(usable) == len(clinical) - 2


def test_a_folder_without_a_dicom_series_excludes_its_case(damaged_cohort):
    run, _, usable = damaged_cohort
    cases = pd.read_csv(run.run_dir / "images" / "cases.csv", dtype={"patient_id": str}).set_index("patient_id")
    assert not cases.loc["SYN0004", "ok"]
    assert "series_SYN0004" in cases.loc["SYN0004", "problems"]
    assert "SYN0004" not in set(usable["patient_id"])


def test_images_without_a_clinical_row_are_recorded_in_the_flow(damaged_cohort):
    run, _, _ = damaged_cohort
    flow = flow_section(run.loaded, run.run_dir)
    assert flow["predictors_without_clinical"] == ["SYN9999"]


def test_exclusion_reasons_in_the_results_name_files_relative_to_the_protocol(damaged_cohort):
    run, _, _ = damaged_cohort
    flow = flow_section(run.loaded, run.run_dir)
    reason = next(e["reason"] for e in flow["exclusions"] if e["patient_id"] == "SYN0003")
    assert "cannot read image cohort/images/SYN0003_ct.nii.gz: no such file or folder" in reason
    assert str(run.loaded.path.parent) not in reason
