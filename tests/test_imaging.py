"""Image reading (NIfTI, NRRD, MetaImage, DICOM series), geometry checks and tumour measures.

References are computed by hand or with numpy from the arrays written here; the real-CT
tests read ../shared/data (marked shared_data).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.distance import pdist

from studyrunner.imaging import (
    ImageReadError,
    check_geometry,
    load_case,
    max_diameter_mm,
    read_image,
)
from studyrunner.paths import REPO_DIR

SHARED_DATA = REPO_DIR.parent / "shared" / "data"
SPACING = (0.7, 0.8, 2.5)
ORIGIN = (-10.0, 5.0, 100.0)
# A rotation of 30 degrees about z: direction cosines are the matrix's columns.
COS30, SIN30 = math.cos(math.pi / 6), math.sin(math.pi / 6)
ROTATED = (COS30, -SIN30, 0.0, SIN30, COS30, 0.0, 0.0, 0.0, 1.0)
SERIES_UID = "1.2.826.0.1.3680043.2.1125.1.1"


def make_image(array: np.ndarray, spacing=SPACING, origin=ORIGIN, direction=None) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    return image


def ramp(shape=(5, 6, 7)) -> np.ndarray:
    return (np.arange(np.prod(shape)).reshape(shape) - 50).astype(np.int16)


def box_mask(shape=(5, 6, 7), box=(slice(1, 3), slice(2, 5), slice(1, 5)), **geometry) -> sitk.Image:
    array = np.zeros(shape, dtype=np.uint8)
    array[box] = 1
    return make_image(array, **geometry)


def write_dicom_series(volume: sitk.Image, folder: Path, series_uid: str, thickness: str) -> None:
    """One DICOM file per slice, with the tags GDCM needs to sort and stack the series."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    direction = volume.GetDirection()
    orientation = "\\".join(str(v) for v in (*direction[0::3], *direction[1::3]))
    for k in range(volume.GetDepth()):
        slice_k = volume[:, :, k]
        position = volume.TransformIndexToPhysicalPoint((0, 0, k))
        tags = {
            "0008|0060": "CT",
            "0008|0018": f"{series_uid}.{k + 1}",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.9",
            "0020|000e": series_uid,
            "0020|0037": orientation,
            "0020|0032": "\\".join(str(v) for v in position),
            "0020|0013": str(k + 1),
            "0018|0050": thickness,
        }
        for tag, value in tags.items():
            slice_k.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{series_uid}_{k:03d}.dcm"))
        writer.Execute(slice_k)


@pytest.mark.parametrize("name", ["ct.nrrd", "ct.nii.gz", "ct.nii", "ct.mha", "ct.mhd"])
def test_file_formats_read_back_voxels_and_geometry(tmp_path: Path, name: str) -> None:
    array = ramp()
    sitk.WriteImage(make_image(array, direction=ROTATED), str(tmp_path / name))
    image = read_image(tmp_path / name)
    assert np.array_equal(sitk.GetArrayFromImage(image), array)
    assert image.GetSize() == (7, 6, 5)
    np.testing.assert_allclose(image.GetSpacing(), SPACING, atol=1e-6)
    np.testing.assert_allclose(image.GetOrigin(), ORIGIN, atol=1e-5)
    np.testing.assert_allclose(image.GetDirection(), ROTATED, atol=1e-6)


def test_dicom_series_folder_is_stacked_in_slice_order(tmp_path: Path) -> None:
    array = ramp()
    write_dicom_series(make_image(array, direction=ROTATED), tmp_path / "ct", SERIES_UID, "3.0")
    image = read_image(tmp_path / "ct")
    assert np.array_equal(sitk.GetArrayFromImage(image), array)
    np.testing.assert_allclose(image.GetSpacing(), SPACING, atol=1e-4)
    np.testing.assert_allclose(image.GetOrigin(), ORIGIN, atol=1e-4)
    np.testing.assert_allclose(image.GetDirection(), ROTATED, atol=1e-5)
    assert image.GetMetaData("0008|0060") == "CT"
    assert image.GetMetaData("0018|0050") == "3.0"


def test_dicom_folder_with_two_series_needs_a_series_uid(tmp_path: Path) -> None:
    other_uid = SERIES_UID + ".2"
    write_dicom_series(make_image(ramp()), tmp_path, SERIES_UID, "2.5")
    write_dicom_series(make_image(ramp() * 2), tmp_path, other_uid, "2.5")
    with pytest.raises(ImageReadError) as raised:
        read_image(tmp_path)
    assert "2 DICOM series" in str(raised.value)
    assert SERIES_UID in raised.value.reason
    assert other_uid in raised.value.reason
    second = read_image(tmp_path, series_uid=other_uid)
    assert np.array_equal(sitk.GetArrayFromImage(second), ramp() * 2)
    with pytest.raises(ImageReadError, match=r"series 9\.9 not found"):
        read_image(tmp_path, series_uid="9.9")


def test_dicom_series_with_a_missing_slice_is_refused(tmp_path: Path) -> None:
    write_dicom_series(make_image(ramp()), tmp_path, SERIES_UID, "2.5")
    (tmp_path / f"{SERIES_UID}_002.dcm").unlink()
    with pytest.raises(ImageReadError, match=r"gaps between consecutive slices range from 2\.5 to 5 mm"):
        read_image(tmp_path)


def test_read_errors_name_the_path_and_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "absent.nrrd"
    with pytest.raises(ImageReadError) as raised:
        read_image(missing)
    assert raised.value.path == missing
    assert str(raised.value) == f"cannot read image {missing}: no such file or folder"

    corrupt = tmp_path / "corrupt.nrrd"
    corrupt.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 4 4 4\nencoding: raw\n\nabc")
    with pytest.raises(ImageReadError, match=r"corrupt\.nrrd: .*require endian info"):
        read_image(corrupt)

    other = tmp_path / "scan.png"
    other.write_bytes(b"png")
    with pytest.raises(ImageReadError, match="unsupported file type"):
        read_image(other)
    with pytest.raises(ImageReadError, match="no DICOM series found"):
        read_image(tmp_path)


def test_matching_grid_has_no_problem() -> None:
    assert check_geometry(make_image(ramp()), box_mask()) == []


def test_shifted_origin_is_reported_with_both_origins() -> None:
    mask = box_mask(origin=(-10.0, 5.0, 102.5))
    assert check_geometry(make_image(ramp()), mask) == [
        "mask origin (-10.0, 5.0, 102.5) differs from image origin (-10.0, 5.0, 100.0) "
        "by more than 0.001"
    ]
    # Within the tolerance an offset is accepted.
    assert check_geometry(make_image(ramp()), box_mask(origin=(-10.0, 5.0, 100.0005))) == []


def test_spacing_size_and_direction_mismatches_are_reported() -> None:
    image = make_image(ramp(), spacing=(1.0, 1.0, 1.0))
    mask = box_mask(shape=(4, 6, 7), spacing=(1.0, 1.0, 2.0), direction=ROTATED)
    assert check_geometry(image, mask) == [
        "mask size (7, 6, 4) differs from image size (7, 6, 5)",
        "mask spacing (1.0, 1.0, 2.0) differs from image spacing (1.0, 1.0, 1.0) by more than 0.001",
        f"mask direction {tuple(round(v, 6) for v in ROTATED)} differs from image direction "
        "(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0) by more than 0.001",
    ]


def test_empty_non_binary_and_two_dimensional_masks_are_reported() -> None:
    image = make_image(ramp())
    empty = make_image(np.zeros((5, 6, 7), dtype=np.uint8))
    assert check_geometry(image, empty) == ["mask has no voxel equal to label 1 (values present: 0)"]
    multi = sitk.GetArrayFromImage(box_mask())
    multi[0, 0, 0] = 2
    assert check_geometry(image, make_image(multi)) == [
        "mask is not binary: values present 0, 1, 2; expected only 0 and 1"
    ]
    assert check_geometry(image, make_image(multi), label=2) == [
        "mask is not binary: values present 0, 1, 2; expected only 0 and 2"
    ]
    flat = sitk.GetImageFromArray(np.ones((6, 7), dtype=np.uint8))
    assert check_geometry(image, flat) == ["mask is 2D; a 3D volume is required"]
    rgb = sitk.GetImageFromArray(np.zeros((5, 6, 7, 3), dtype=np.uint8), isVector=True)
    assert check_geometry(rgb, box_mask()) == [
        "image has 3 components per voxel; a scalar volume is required"
    ]


def test_box_diameter_is_the_space_diagonal_between_outer_voxel_centres() -> None:
    # Box of 4 (x) x 3 (y) x 2 (z) voxels: outer centres are 3, 2 and 1 voxels apart.
    box = (slice(1, 3), slice(2, 5), slice(1, 5))
    expected = math.sqrt((3 * 0.7) ** 2 + (2 * 0.8) ** 2 + (1 * 2.5) ** 2)
    assert max_diameter_mm(box_mask(box=box)) == pytest.approx(expected, rel=1e-12)
    # Rotating the grid moves the voxels in space but keeps their distances.
    assert max_diameter_mm(box_mask(box=box, direction=ROTATED)) == pytest.approx(expected, rel=1e-12)
    # A flat (single-slice) rectangle takes the joggled-hull path: 4 x 3 voxels.
    flat_box = (slice(2, 3), slice(1, 4), slice(0, 4))
    assert max_diameter_mm(box_mask(box=flat_box)) == pytest.approx(math.hypot(3 * 0.7, 2 * 0.8))
    single = (slice(2, 3), slice(2, 3), slice(2, 3))
    assert max_diameter_mm(box_mask(box=single)) == 0.0
    assert math.isnan(max_diameter_mm(make_image(np.zeros((5, 6, 7), dtype=np.uint8))))


def test_hull_diameter_equals_brute_force_over_all_voxels_of_an_irregular_blob() -> None:
    rng = np.random.default_rng(7)
    z, y, x = np.mgrid[:14, :16, :18]
    radius = 5 + rng.uniform(-1.5, 1.5, size=z.shape)
    blob = ((z - 7) ** 2 + (y - 8) ** 2 + (x - 9) ** 2 < radius**2).astype(np.uint8)
    mask = make_image(blob, direction=ROTATED)
    points = np.array([mask.TransformIndexToPhysicalPoint(tuple(int(i) for i in idx[::-1]))
                       for idx in np.argwhere(blob)])
    assert max_diameter_mm(mask) == pytest.approx(pdist(points).max(), rel=1e-12)


def test_load_case_measures_the_tumour(tmp_path: Path) -> None:
    sitk.WriteImage(make_image(ramp()), str(tmp_path / "ct.nrrd"))
    sitk.WriteImage(box_mask(), str(tmp_path / "gtv.nrrd"))
    case = load_case("P1", tmp_path / "ct.nrrd", tmp_path / "gtv.nrrd")
    assert case.ok
    assert case.problems == []
    voxels = 2 * 3 * 4
    assert case.info == {
        "size": (7, 6, 5),
        "spacing_mm": SPACING,
        "slice_thickness_mm": 2.5,
        "mask_voxel_count": voxels,
        "tumour_volume_ml": pytest.approx(voxels * 0.7 * 0.8 * 2.5 / 1000),
        "max_diameter_mm": pytest.approx(math.sqrt((3 * 0.7) ** 2 + (2 * 0.8) ** 2 + 2.5**2)),
    }


def test_load_case_takes_slice_thickness_from_dicom(tmp_path: Path) -> None:
    write_dicom_series(make_image(ramp()), tmp_path / "ct", SERIES_UID, "3.0")
    sitk.WriteImage(box_mask(), str(tmp_path / "gtv.nii.gz"))
    case = load_case("P1", tmp_path / "ct", tmp_path / "gtv.nii.gz")
    assert case.ok, case.problems
    assert case.info["slice_thickness_mm"] == 3.0
    assert case.info["spacing_mm"] == pytest.approx(SPACING)


def test_load_case_records_unreadable_files_and_bad_second_mask(tmp_path: Path) -> None:
    sitk.WriteImage(make_image(ramp()), str(tmp_path / "ct.nrrd"))
    sitk.WriteImage(box_mask(spacing=(1.0, 1.0, 1.0)), str(tmp_path / "gtv2.nrrd"))
    case = load_case("P9", tmp_path / "ct.nrrd", tmp_path / "missing.nrrd", tmp_path / "gtv2.nrrd")
    assert not case.ok
    assert case.mask is None
    assert case.info == {}
    assert case.problems == [f"mask: cannot read image {tmp_path / 'missing.nrrd'}: no such file or folder"]
    assert case.mask2_problems == [
        "mask2 spacing (1.0, 1.0, 1.0) differs from image spacing (0.7, 0.8, 2.5) by more than 0.001"]
    sitk.WriteImage(box_mask(), str(tmp_path / "gtv.nrrd"))
    second_only = load_case("P11", tmp_path / "ct.nrrd", tmp_path / "gtv.nrrd", tmp_path / "gtv2.nrrd")
    assert second_only.ok
    assert len(second_only.mask2_problems) == 1  # only the reproducibility analysis loses it
    neither = load_case("P10", tmp_path / "no_ct.nii.gz", tmp_path / "no_gtv.nii.gz")
    assert [p.split(":")[0] for p in neither.problems] == ["image", "mask"]


shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"shared data folder {SHARED_DATA} is absent"
)


@pytest.mark.shared_data
@shared_data
def test_real_lung1_crops_load_with_their_voxel_counts() -> None:
    folder = SHARED_DATA / "nsclc_lung1_real"
    with (folder / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        rows = {row["patient_id"]: row for row in csv.DictReader(handle)}
    for patient_id in ("P024", "P063", "P079"):
        row = rows[patient_id]
        case = load_case(patient_id, folder / row["image"], folder / row["mask"])
        assert case.ok, case.problems
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / row["mask"])))
        assert case.info["size"] == (92, 92, 92)
        assert case.info["mask_voxel_count"] == int((mask == 1).sum())
        assert case.info["tumour_volume_ml"] == pytest.approx((mask == 1).sum() / 1000)  # 1 mm^3 voxels
    # P003's mask in this collection is empty: the case is reported, not raised.
    empty = load_case("P003", folder / rows["P003"]["image"], folder / rows["P003"]["mask"])
    assert empty.problems == ["mask has no voxel equal to label 1 (values present: 0)"]


@pytest.mark.shared_data
@shared_data
def test_real_full_field_ct_loads_with_matching_geometry() -> None:
    folder = SHARED_DATA / "ct"
    case = load_case("lung1", folder / "lung1_image.nrrd", folder / "lung1_label.nrrd")
    assert case.ok, case.problems
    assert case.info["size"] == (512, 512, 48)
    assert case.info["spacing_mm"] == pytest.approx((0.5703125, 0.5703125, 5.0))
    mask = sitk.GetArrayFromImage(case.mask)
    assert case.info["tumour_volume_ml"] == pytest.approx((mask == 1).sum() * 0.5703125**2 * 5.0 / 1000)
