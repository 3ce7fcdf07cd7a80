"""DICOM RTSTRUCT and DICOM-SEG masks on a DICOM CT series (studyrunner.imaging.masks).

The references are the arrays the test data were written from (tests/dicom_cases.py):
shapes drawn by hand in index space (a square with a hole, two squares on one slice),
masks on rotated, flipped, coronal and anisotropic grids, and the real Lung1 crops
(../shared/data, marked shared_data) whose GTV masks are traced into RTSTRUCT contours and
written as SEG segments, then read back and compared voxel by voxel (Dice) and through
PyRadiomics (the features of the NIfTI files).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from skimage.draw import polygon

from studyrunner.imaging.geometry import load_case
from studyrunner.imaging.io import ImageReadError
from studyrunner.imaging.masks import (
    dicom_reference_problems,
    read_case_image,
    read_mask,
    structure_used,
)
from studyrunner.imaging.polygon_fill import fill_polygon
from studyrunner.imaging.structure import MaskReadError, StructureSelector
from tests.conftest import SHARED_DATA
from tests.dicom_cases import geometry_image, mask_contours, write_ct_series, write_rtstruct, write_seg

SPACING = (0.8, 0.6, 2.5)
ORIGIN = (-12.3, 40.1, -300.0)
SHAPE_ZYX = (6, 12, 16)
COS30, SIN30 = math.cos(math.pi / 6), math.sin(math.pi / 6)
# Rotated 30 degrees about z and flipped in x and y (a right-handed frame, as DICOM's slice normal is row x column).
ROTATED_FLIPPED = (-COS30, SIN30, 0.0, -SIN30, -COS30, 0.0, 0.0, 0.0, 1.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0)
LUNG1 = SHARED_DATA / "nsclc_lung1_real"


def ct_image(shape=SHAPE_ZYX, spacing=SPACING, origin=ORIGIN, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)) -> sitk.Image:
    values = (np.arange(np.prod(shape)).reshape(shape) % 997 - 500).astype(np.int16)
    return geometry_image(values, spacing, origin, direction)


def physical(image: sitk.Image, index_points) -> np.ndarray:
    """Continuous (i, j, k) indices -> physical points (mm) of ``image``."""
    return np.array([image.TransformContinuousIndexToPhysicalPoint([float(v) for v in p]) for p in index_points])


def square(image: sitk.Image, k: float, i0: float, j0: float, i1: float, j1: float) -> np.ndarray:
    return physical(image, [(i0, j0, k), (i1, j0, k), (i1, j1, k), (i0, j1, k)])


@pytest.fixture
def ct(tmp_path: Path):
    image = ct_image()
    return image, write_ct_series(image, tmp_path / "ct")


def rasterised(tmp_path: Path, image: sitk.Image, series, contours, selector=None, name="GTV-1") -> np.ndarray:
    path = write_rtstruct(tmp_path / "rs.dcm", series, {name: contours})
    read = read_case_image(series.folder, path)
    return sitk.GetArrayFromImage(read_mask(path, read, selector))


# --- the polygon fill --------------------------------------------------------------------

def test_scan_line_fill_equals_scikit_image_on_random_polygons() -> None:
    """Star-shaped (simple) polygons with real and half-integer vertices: the same pixels as
    skimage.draw.polygon, boundary centres included."""
    rng = np.random.default_rng(20260101)
    for trial in range(600):
        shape = (int(rng.integers(5, 30)), int(rng.integers(5, 30)))
        n = int(rng.integers(3, 20))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(1, 12, n)
        x = rng.uniform(0, shape[1]) + radii * np.cos(angles)
        y = rng.uniform(0, shape[0]) + radii * np.sin(angles)
        if trial % 3 == 0:
            x, y = np.round(x * 2) / 2, np.round(y * 2) / 2
        expected = np.zeros(shape, dtype=bool)
        rows, cols = polygon(y, x, shape)
        expected[rows, cols] = True
        np.testing.assert_array_equal(fill_polygon(x, y, shape), expected, err_msg=f"trial {trial}")


def test_vertices_on_voxel_centres_include_the_boundary_voxels() -> None:
    filled = fill_polygon(np.array([2, 5, 5, 2]), np.array([1, 1, 4, 4]), (7, 8))
    expected = np.zeros((7, 8), dtype=bool)
    expected[1:5, 2:6] = True
    np.testing.assert_array_equal(filled, expected)


# --- RTSTRUCT rasterisation on hand-made shapes -------------------------------------------

def test_square_with_a_hole_fills_the_ring_only(tmp_path: Path, ct) -> None:
    image, series = ct
    outer = square(image, 2, 1.5, 1.5, 11.5, 9.5)  # voxels i 2..11, j 2..9
    inner = square(image, 2, 4.5, 4.5, 7.5, 6.5)  # hole: i 5..7, j 5..6
    mask = rasterised(tmp_path, image, series, [outer, inner])
    expected = np.zeros(SHAPE_ZYX, dtype=np.uint8)
    expected[2, 2:10, 2:12] = 1
    expected[2, 5:7, 5:8] = 0
    np.testing.assert_array_equal(mask, expected)
    assert int(mask.sum()) == 8 * 10 - 2 * 3


def test_two_contours_on_one_slice_are_two_islands(tmp_path: Path, ct) -> None:
    image, series = ct
    left, right = square(image, 3, 0.5, 0.5, 3.5, 2.5), square(image, 3, 8.5, 6.5, 14.5, 10.5)
    below = square(image, 4, 2.5, 2.5, 4.5, 4.5)
    mask = rasterised(tmp_path, image, series, [left, right, below])
    expected = np.zeros(SHAPE_ZYX, dtype=np.uint8)
    expected[3, 1:3, 1:4] = 1
    expected[3, 7:11, 9:15] = 1
    expected[4, 3:5, 3:5] = 1
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("direction", [ROTATED_FLIPPED, CORONAL], ids=["rotated-flipped", "coronal"])
def test_traced_mask_comes_back_exactly_on_oblique_and_anisotropic_grids(tmp_path: Path, direction) -> None:
    """A blob with a hole on a grid that is rotated and flipped (or coronal), spacing
    0.7 x 0.9 x 3 mm: contours traced in physical space, rasterised back voxel for voxel;
    the SEG of the same blob too."""
    image = ct_image(shape=(7, 20, 18), spacing=(0.7, 0.9, 3.0), origin=(101.2, -33.3, 7.7), direction=direction)
    k, j, i = np.mgrid[0:7, 0:20, 0:18]
    blob = (((i - 8.3) / 6.2) ** 2 + ((j - 10.1) / 7.4) ** 2 + ((k - 3) / 2.6) ** 2 <= 1).astype(np.uint8)
    blob[3, 9:12, 7:10] = 0  # a hole
    mask_image = geometry_image(blob, image.GetSpacing(), image.GetOrigin(), image.GetDirection())
    series = write_ct_series(image, tmp_path / "ct")
    read = read_case_image(series.folder)
    np.testing.assert_allclose(read.GetDirection(), direction, atol=1e-6)
    rs = write_rtstruct(tmp_path / "rs.dcm", series, {"GTV": mask_contours(mask_image)})
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_mask(rs, read)), blob)
    seg = write_seg(tmp_path / "seg.dcm", series, {"Tumour": blob})
    from_seg = read_mask(seg, read)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(from_seg), blob)
    assert from_seg.GetDirection() == read.GetDirection()
    assert from_seg.GetOrigin() == read.GetOrigin()


def test_roi_synonyms_take_the_first_name_that_matches_case_insensitively(tmp_path: Path, ct) -> None:
    image, series = ct
    path = write_rtstruct(tmp_path / "rs.dcm", series, {"Lung-Left": [square(image, 1, 0.5, 0.5, 5.5, 5.5)],
                                                         "GTV-1": [square(image, 2, 1.5, 1.5, 3.5, 3.5)]})
    mask = read_mask(path, read_case_image(series.folder, path), StructureSelector(("GTVp", "gtv-1", "lung-left")))
    assert structure_used(mask) == "RTSTRUCT ROI 'GTV-1'"
    assert int(sitk.GetArrayFromImage(mask)[2].sum()) == 4


def test_image_folder_with_two_series_reads_the_one_the_rtstruct_references(tmp_path: Path) -> None:
    first, second = ct_image(), ct_image()
    second = sitk.Cast(second, sitk.sitkInt16) + 1000
    folder = tmp_path / "study"
    write_ct_series(first, folder, series_number=1)
    series = write_ct_series(second, folder, series_number=2)
    path = write_rtstruct(tmp_path / "rs.dcm", series, {"GTV": [square(second, 2, 1.5, 1.5, 4.5, 4.5)]})
    read = read_case_image(folder, path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read), sitk.GetArrayFromImage(second))
    case = load_case("P1", folder, path, structure=None)
    assert case.ok, case.problems
    assert case.info["mask_structure"] == "RTSTRUCT ROI 'GTV'"
    assert case.info["mask_voxel_count"] == 9


def test_manifest_cells_and_the_cohort_table_text_give_the_same_selector() -> None:
    synonyms = StructureSelector.from_manifest_cell(" GTV-1 | gtvp ")
    assert synonyms == StructureSelector(("GTV-1", "gtvp"), "GTV-1")
    assert StructureSelector.from_manifest_cell("2") == StructureSelector(("2",), 2)
    assert StructureSelector.from_manifest_cell(" ") is None
    assert StructureSelector.from_text(synonyms.to_text()) == synonyms
    assert StructureSelector.from_text(float("nan")) is None  # an empty CSV cell, as pandas reads it


# --- bad RTSTRUCTs and SEGs: refused with their reason -----------------------------------

def refusal(tmp_path: Path, ct, rois, selector=None) -> str:
    _image, series = ct
    path = write_rtstruct(tmp_path / "rs.dcm", series, rois)
    with pytest.raises(MaskReadError) as caught:
        read_mask(path, read_case_image(series.folder, path), selector)
    return str(caught.value)


def test_contour_between_two_slices_is_refused(tmp_path: Path, ct) -> None:
    message = refusal(tmp_path, ct, {"GTV": [square(ct[0], 2.5, 1.5, 1.5, 4.5, 4.5)]})
    assert "does not lie in a CT slice plane" in message
    assert "1.25 mm from slice" in message


def test_contour_on_a_slice_the_ct_lacks_is_refused(tmp_path: Path, ct) -> None:
    message = refusal(tmp_path, ct, {"GTV": [square(ct[0], 8, 1.5, 1.5, 4.5, 4.5)]})
    assert "lies on a slice the CT does not have (slice index 8; the CT has slices 0 to 5)" in message


def test_contour_outside_the_image_is_refused(tmp_path: Path, ct) -> None:
    message = refusal(tmp_path, ct, {"GTV": [square(ct[0], 2, 10.5, 1.5, 19.5, 4.5)]})
    assert "GTV" in message
    assert "2 point(s) outside the image" in message


def test_missing_roi_names_the_rois_present(tmp_path: Path, ct) -> None:
    message = refusal(tmp_path, ct, {"Heart": [square(ct[0], 2, 1.5, 1.5, 4.5, 4.5)], "Lung-Left": []},
                      StructureSelector(("GTV-1", "gtv")))
    assert "no ROI named any of ['GTV-1', 'gtv'] (ROIs present: 'Heart', 'Lung-Left')" in message


def test_empty_roi_is_refused(tmp_path: Path, ct) -> None:
    message = refusal(tmp_path, ct, {"GTV-1": []}, StructureSelector(("gtv-1",)))
    assert "ROI 'GTV-1' is empty" in message


def test_several_rois_and_no_name_is_refused(tmp_path: Path, ct) -> None:
    one = [square(ct[0], 2, 1.5, 1.5, 4.5, 4.5)]
    message = refusal(tmp_path, ct, {"GTV": one, "CTV": one})
    assert "holds 2 ROIs ('GTV', 'CTV'); name the tumour's ROI" in message


def test_rtstruct_referencing_another_series_is_refused_from_headers(tmp_path: Path, ct) -> None:
    image, series = ct
    path = write_rtstruct(tmp_path / "rs.dcm", series, {"GTV": [square(image, 2, 1.5, 1.5, 4.5, 4.5)]},
                          referenced_series_uid="1.2.826.0.1.3680043.2.1125.99")
    with pytest.raises(ImageReadError, match=r"references series 1\.2\.826\.0\.1\.3680043\.2\.1125\.99, which "
                                             rf"this folder does not hold \(series present: {series.series_uid}\)"):
        read_case_image(series.folder, path)
    problems = dicom_reference_problems(series.folder, {"mask": path})
    assert len(problems) == 1
    assert problems[0].startswith("mask: cannot read image")
    assert "references series" in problems[0]
    case = load_case("P1", series.folder, path)
    assert not case.ok
    assert "references series" in case.problems[0]


def test_seg_selects_a_segment_by_number_or_label_and_refuses_two_unnamed(tmp_path: Path, ct) -> None:
    _image, series = ct
    tumour, lung = np.zeros(SHAPE_ZYX, np.uint8), np.zeros(SHAPE_ZYX, np.uint8)
    tumour[2:4, 3:6, 4:9] = 1
    lung[1:5, 0:3, 0:4] = 1
    path = write_seg(tmp_path / "seg.dcm", series, {"Tumour": tumour, "Lung": lung})
    read = read_case_image(series.folder, path)
    by_label = read_mask(path, read, StructureSelector(segment="lung"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(by_label), lung)
    assert structure_used(by_label) == "SEG segment 2 'Lung'"
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_mask(path, read, StructureSelector(segment=1))), tumour)
    with pytest.raises(MaskReadError, match=r"SEG holds 2 segments \(1 'Tumour', 2 'Lung'\) and none is named"):
        read_mask(path, read, None)
    with pytest.raises(MaskReadError, match=r"no segment number 3"):
        read_mask(path, read, StructureSelector(segment=3))


def test_seg_on_a_grid_with_another_spacing_is_refused(tmp_path: Path, ct) -> None:
    _image, series = ct
    tumour = np.zeros(SHAPE_ZYX, np.uint8)
    tumour[2:4, 3:6, 4:9] = 1
    path = write_seg(tmp_path / "seg.dcm", series, {"Tumour": tumour})
    finer = ct_image(spacing=(0.4, 0.6, 2.5))
    with pytest.raises(MaskReadError, match=r"voxel spacing 0\.8 mm differs from the CT's 0\.4 mm"):
        read_mask(path, finer, None)


def test_a_ct_slice_is_not_a_mask(tmp_path: Path, ct) -> None:
    _, series = ct
    with pytest.raises(MaskReadError, match=r"Modality is CT \(0008,0060\)"):
        read_mask(sorted(series.folder.iterdir())[0], ct[0], None)


# --- real Lung1 crops: round trip through DICOM -------------------------------------------

ROUND_TRIP_CASES = ("P005", "P014", "P021")


@pytest.fixture(scope="module")
def lung1_dicom(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """Three Lung1 crops as CT series with an RTSTRUCT (traced contours) and a SEG each."""
    out = tmp_path_factory.mktemp("lung1_dicom")
    cases = {}
    for patient in ROUND_TRIP_CASES:
        ct_path, mask_path = LUNG1 / "images" / f"{patient}_ct.nii.gz", LUNG1 / "images" / f"{patient}_gtv.nii.gz"
        mask = sitk.ReadImage(str(mask_path))
        series = write_ct_series(sitk.ReadImage(str(ct_path)), out / patient / "ct")
        cases[patient] = {
            "ct_nifti": ct_path, "mask_nifti": mask_path, "series": series.folder,
            "rtstruct": write_rtstruct(out / patient / "rs.dcm", series, {"GTV-1": mask_contours(mask)}),
            "seg": write_seg(out / patient / "seg.dcm", series, {"GTV": sitk.GetArrayFromImage(mask)}),
        }
    return cases


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float(np.logical_and(a, b).sum()) / float(a.sum() + b.sum())


@pytest.mark.shared_data
@pytest.mark.parametrize("patient", ROUND_TRIP_CASES)
def test_lung1_rtstruct_and_seg_round_trip_the_gtv(lung1_dicom, patient: str) -> None:
    """Dice >= 0.97 for the rasterised RTSTRUCT (the traced contours run half-way between
    voxel centres, so the fill gives the voxels back: Dice 1 here), identical voxels for SEG."""
    case = lung1_dicom[patient]
    original = sitk.GetArrayFromImage(sitk.ReadImage(str(case["mask_nifti"])))
    image = read_case_image(case["series"], case["rtstruct"])
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image),
                                  sitk.GetArrayFromImage(sitk.ReadImage(str(case["ct_nifti"]))))
    from_rtstruct = sitk.GetArrayFromImage(read_mask(case["rtstruct"], image, StructureSelector(("gtv-1",))))
    assert dice(from_rtstruct, original) >= 0.97
    assert dice(from_rtstruct, original) == 1.0
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_mask(case["seg"], image)), original)


@pytest.mark.shared_data
def test_lung1_radiomics_features_from_dicom_equal_the_nifti_features(lung1_dicom) -> None:
    """PyRadiomics (first order, shape, GLCM) through the radiomics worker: the DICOM series
    + SEG and the DICOM series + RTSTRUCT give the NIfTI case's features (identical voxels)."""
    from studyrunner.radiomics.parameters import build_extractor, radiomics_params
    from studyrunner.radiomics.workers import CaseFiles, extract_case_files

    params = radiomics_params(image_types={"Original": {}}, feature_classes=["firstorder", "shape", "glcm"],
                              bin_width=25, bin_count=None, resampled_spacing=None, interpolator="sitkBSpline",
                              label=1, extra_settings={})
    extractor = build_extractor(params)
    selector = StructureSelector(("GTV-1",)).to_text()
    for patient in ROUND_TRIP_CASES[:2]:
        case = lung1_dicom[patient]
        _, nifti, failed = extract_case_files(extractor, CaseFiles(patient, case["ct_nifti"],
                                                                   {"m": case["mask_nifti"]}))
        _, dicom, failed_dicom = extract_case_files(extractor, CaseFiles(
            patient, case["series"], {"rtstruct": case["rtstruct"], "seg": case["seg"]}, selector))
        assert not failed
        assert not failed_dicom
        assert len(nifti["m"]) == 18 + 14 + 24  # first order, shape, GLCM
        assert dicom["seg"] == nifti["m"]
        assert dicom["rtstruct"] == nifti["m"]


def test_shared_text_replaces_dicom_uids_and_keeps_versions_and_paths_readable(tmp_path) -> None:
    """A UID becomes uid:<first 12 hex digits of its SHA-256> (hashlib, by hand here); version
    numbers (fewer than five components) stay; paths become relative; validate keeps UIDs."""
    import hashlib

    from studyrunner.paths import shareable_text

    uid = "1.3.12.2.1107.5.1.4.54023.30000019031212345678900000123"
    text = f"{tmp_path}/rs.dcm references series {uid} (R 4.2.2, pyradiomics 3.0.1, dicom 1.2.3.4)"
    expected = "uid:" + hashlib.sha256(uid.encode()).hexdigest()[:12]
    assert shareable_text(text, tmp_path) == (f"rs.dcm references series {expected} "
                                              "(R 4.2.2, pyradiomics 3.0.1, dicom 1.2.3.4)")
    assert shareable_text(text, tmp_path, pseudonymise_uids=False) == text.replace(f"{tmp_path}/", "")
