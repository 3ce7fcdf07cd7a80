"""A study run on hospital-style DICOM: CT series with RTSTRUCT or SEG tumour contours.

Thirteen real Lung1 crops (../shared/data) written as DICOM at test time (tests/dicom_cases.py):
good cases with ROI names that differ (GTV-1, GTVp, gtv: synonyms of cohort.mask_structure; one
named by the manifest's structure column),
a SEG, an image folder holding two series, and five bad cases (an RTSTRUCT referencing another
series, a missing ROI, an empty ROI, a SEG with two segments and none named, a contour outside
the image), each excluded with its reason while the study goes on. Every DICOM object
carries a patient name, id, birth date and accession number: none of them may appear in
any output of the run (results.json, the report's text, the frozen bundle, logs, stage files).
"""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml
from typer.testing import CliRunner

from studyrunner.paths import uid_pseudonym
from tests.conftest import REPO, SHARED_DATA
from tests.dicom_cases import IDENTIFYING, mask_contours, write_ct_series, write_rtstruct, write_seg

LUNG1 = SHARED_DATA / "nsclc_lung1_real"
OTHER_SERIES = "1.2.826.0.1.3680043.2.1125.7"  # the series P024's RTSTRUCT references, absent from its folder
GOOD_RTSTRUCT = {"P002": "GTV-1", "P007": "GTVp", "P008": "gtv", "P014": "GTV-1", "P015": "GTV-1",
                 "P016": "GTV-1", "P017": "GTV-1", "P026": "Tumour-primary"}
# Per-case structure cells of the manifest (cohort.manifest_columns.structure): they replace cohort.mask_structure.
STRUCTURE_CELLS = {"P026": "gross tumour|tumour-PRIMARY"}
BAD_REASONS = {
    "P024": f"references series {OTHER_SERIES}, which this folder does not hold",
    "P020": "no ROI named any of ['GTV-1', 'GTVp', 'gtv'] (ROIs present: 'Heart')",
    "P003": "RTSTRUCT ROI 'GTV-1' is empty",
    "P021": "SEG holds 2 segments (1 'GTV', 2 'Lung') and none is named",
    "P022": "point(s) outside the image",
}


def _write_case(out: Path, patient: str) -> tuple[str, str]:
    """The case's image folder and mask file (relative to ``out``), bad or good as listed."""
    ct = sitk.ReadImage(str(LUNG1 / "images" / f"{patient}_ct.nii.gz"))
    mask = sitk.ReadImage(str(LUNG1 / "images" / f"{patient}_gtv.nii.gz"))
    folder = out / patient / "ct"
    if patient == "P005":  # two series in the folder: a second reconstruction, 100 HU brighter
        write_ct_series(sitk.Cast(ct, sitk.sitkInt16) + 100, folder, series_number=2)
    series = write_ct_series(ct, folder)
    contours = mask_contours(mask)
    rs = out / patient / "rs.dcm"
    if patient in ("P004", "P005", "P021"):
        array = sitk.GetArrayFromImage(mask)
        segments = {"GTV": array, "Lung": np.roll(array, 20, axis=2)} if patient == "P021" else {"GTV": array}
        return f"{patient}/ct", str(write_seg(out / patient / "seg.dcm", series, segments).relative_to(out))
    if patient == "P024":
        write_rtstruct(rs, series, {"GTV-1": contours}, referenced_series_uid=OTHER_SERIES)
    elif patient == "P020":
        write_rtstruct(rs, series, {"Heart": contours})
    elif patient == "P022":
        write_rtstruct(rs, series, {"GTV-1": [*contours[:-1], contours[-1] + np.array([60.0, 0.0, 0.0])]})
    else:
        write_rtstruct(rs, series, {"Lung": contours[:1], GOOD_RTSTRUCT.get(patient, "GTV-1"): contours})
    return f"{patient}/ct", f"{patient}/rs.dcm"


@pytest.fixture(scope="module")
def dicom_protocol(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("dicom_study")
    images = work / "dicom"
    patients = [*GOOD_RTSTRUCT, "P004", "P005", *BAD_REASONS]
    rows = ["patient_id,image,mask,structure"] + [",".join([p, *_write_case(images, p), STRUCTURE_CELLS.get(p, "")])
                                                  for p in patients]
    (images / "manifest.csv").write_text("\n".join(rows) + "\n")
    data = yaml.safe_load((REPO / "protocols" / "lung1_real.yaml").read_text())
    data["study"]["name"] = "lung1_dicom"
    data["cohort"]["clinical_table"] = str(LUNG1 / "clinical.csv")
    data["cohort"]["image_manifest"] = str(images / "manifest.csv")
    data["cohort"]["mask_structure"] = {"roi_names": ["GTV-1", "GTVp", "gtv"]}
    data["statistics"]["evaluation"]["bootstrap_replicates"] = 20  # the calibration intervals are not under test
    data["cohort"]["manifest_columns"]["structure"] = "structure"
    data["cohort"]["validation"]["suite"] = str(REPO / "validation" / "clinical_table.yaml")
    data["predictors"]["radiomics"]["feature_classes"] = ["firstorder", "shape"]
    protocol = work / "lung1_dicom.yaml"
    protocol.write_text(yaml.safe_dump(data, sort_keys=False))
    return protocol


@pytest.mark.shared_data
def test_validate_names_the_rtstruct_whose_series_is_missing(dicom_protocol: Path) -> None:
    from studyrunner.cli import app

    result = CliRunner().invoke(app, ["validate", str(dicom_protocol)])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "patient P024: mask: cannot read image dicom/P024/ct: the mask rs.dcm (RTSTRUCT) references series" in flat
    assert "P020" not in flat  # a missing ROI is found when the contours are read, not from the references
    assert not [value for value in IDENTIFYING.values() if value in result.output]


@pytest.mark.slow
@pytest.mark.shared_data
def test_dicom_study_excludes_bad_cases_and_leaks_no_identifier(dicom_protocol: Path) -> None:
    from studyrunner.protocol import load_protocol
    from studyrunner.runner import RunOptions, run_study

    run_dir = run_study(load_protocol(dicom_protocol), RunOptions(out_dir=dicom_protocol.parent / "run"))
    results = json.loads((run_dir / "results.json").read_text())
    excluded = {e["patient_id"]: e["reason"] for e in json.loads((run_dir / "images" / "exclusions.json").read_text())}
    assert set(excluded) == set(BAD_REASONS)
    for patient, reason in BAD_REASONS.items():
        assert reason in excluded[patient], excluded[patient]
    # results.json (and so the report) names the series by a pseudonym, never by its UID
    shared = {e["patient_id"]: e["reason"] for e in results["flow"]["exclusions"] if e["stage"] == "images"}
    assert f"references series {uid_pseudonym(OTHER_SERIES)}, which this folder does not hold" in shared["P024"]
    cases = {row["patient_id"]: row for row in _csv_rows(run_dir / "images" / "cases.csv")}
    assert cases["P007"]["mask_structure"] == "RTSTRUCT ROI 'GTVp'"
    assert cases["P008"]["mask_structure"] == "RTSTRUCT ROI 'gtv'"
    assert cases["P026"]["mask_structure"] == "RTSTRUCT ROI 'Tumour-primary'"
    assert cases["P005"]["mask_structure"] == "SEG segment 1 'GTV'"
    nifti = sitk.GetArrayFromImage(sitk.ReadImage(str(LUNG1 / "images" / "P002_gtv.nii.gz")))
    assert float(cases["P002"]["mask_voxel_count"]) == float(nifti.sum())
    features = _csv_rows(run_dir / "radiomics" / "features.csv")
    assert {row["patient_id"] for row in features} == set(GOOD_RTSTRUCT) | {"P004", "P005"} - _no_age()
    assert "flags" in results
    _assert_no_identifier(run_dir)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _no_age() -> set[str]:
    return {row["patient_id"] for row in _csv_rows(LUNG1 / "clinical.csv") if not row["age"]}


def _assert_no_identifier(run_dir: Path) -> None:
    """Grep every file of the run (the PDF through pdftotext, zip archives member by member)."""
    needles = [value.encode() for value in IDENTIFYING.values()] + [b"Zyxwvut", b"Qpalzm"]
    shared = [run_dir / "results.json", run_dir / "report.pdf", *run_dir.glob("model/*")]
    for path in shared:  # no DICOM UID at all in what is meant to be shared
        text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True).stdout.decode() \
            if path.suffix == ".pdf" else path.read_bytes().decode("utf-8", "replace")
        assert OTHER_SERIES not in text, path
        assert not re.search(r"(?<![\w.])1\.2\.826\.0\.1\.3680043\.", text), path
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".pdf" for p in files)
    assert any(p.name == "run.log" for p in files)
    for path in files:
        blobs = [path.read_bytes()]
        if path.suffix == ".pdf":
            blobs.append(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True).stdout)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                blobs += [archive.read(name) for name in archive.namelist()]
        leaked = [n.decode() for n in needles for blob in blobs if n in blob]
        assert not leaked, f"{path.relative_to(run_dir)} holds {leaked}"
