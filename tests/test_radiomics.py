"""PyRadiomics extraction: settings, feature values against hand computation, cache, failures,
parallel workers, and real CT (shared_data).

Hand references follow the feature definitions in the PyRadiomics documentation
(van Griethuysen et al., Cancer Res 2017): first-order features on the raw masked
intensities (voxelArrayShift 0), Entropy/Uniformity on fixed-bin-width grey levels
floor(x / binWidth), VoxelVolume = N * voxel volume, axis lengths = 4 sqrt(eigenvalue)
of the population covariance of the voxel centres' physical coordinates.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from radiomics import imageoperations
from radiomics.featureextractor import RadiomicsFeatureExtractor
from scipy import ndimage, stats

from studyrunner.paths import REPO_DIR
from studyrunner.radiomics import extract_case, extract_cohort, radiomics_params, write_params_file
from studyrunner.radiomics.preprocessing import (
    LatticeBox,
    crop,
    full_lattice,
    prepare_image,
    prepare_mask,
    pyradiomics_crop_box,
)

SHARED_DATA = REPO_DIR.parent / "shared" / "data"
SPACING = (1.0, 0.8, 1.5)  # x, y, z (mm)
BIN_WIDTH = 25.0
FAST_CLASSES = ["firstorder", "shape"]


def ellipsoid_case(semi_axes=(8, 6, 4), seed=0) -> tuple[sitk.Image, sitk.Image]:
    """A 20^3 image of random integer HU-like values and an ellipsoid mask (semi-axes in
    voxels along x, y, z) centred in the volume."""
    rng = np.random.default_rng(seed)
    intensities = rng.integers(-90, 240, size=(20, 20, 20)).astype(np.int16)
    z, y, x = np.mgrid[:20, :20, :20] - 9.5
    a, b, c = semi_axes
    inside = (x / a) ** 2 + (y / b) ** 2 + (z / c) ** 2 <= 1.0
    image, mask = sitk.GetImageFromArray(intensities), sitk.GetImageFromArray(inside.astype(np.uint8))
    for img in (image, mask):
        img.SetSpacing(SPACING)
        img.SetOrigin((-3.0, 4.0, 10.0))
    return image, mask


def params(classes=FAST_CLASSES, bin_width=BIN_WIDTH) -> dict:
    return radiomics_params({"Original": {}}, classes, bin_width, None, None)


def write_case(folder: Path, patient_id: str, image: sitk.Image, mask: sitk.Image) -> tuple:
    image_path, mask_path = folder / f"{patient_id}_ct.nrrd", folder / f"{patient_id}_gtv.nii.gz"
    sitk.WriteImage(image, str(image_path))
    sitk.WriteImage(mask, str(mask_path))
    return patient_id, image_path, mask_path


@pytest.fixture
def cohort(tmp_path: Path) -> list[tuple]:
    """Three good cases, one single-voxel mask (PyRadiomics refuses it), one missing file."""
    cases = [write_case(tmp_path, f"P{i}", *ellipsoid_case((8 - i, 6, 4 + i), seed=i)) for i in range(3)]
    image, mask = ellipsoid_case()
    single = np.zeros((20, 20, 20), dtype=np.uint8)
    single[10, 10, 10] = 1
    one_voxel = sitk.GetImageFromArray(single)
    one_voxel.CopyInformation(mask)
    cases.insert(1, write_case(tmp_path, "TINY", image, one_voxel))
    cases.append(("GONE", tmp_path / "gone_ct.nrrd", tmp_path / "gone_gtv.nrrd"))
    return cases


def test_params_dict_has_the_pyradiomics_structure() -> None:
    built = radiomics_params(
        {"Original": None, "LoG": {"sigma": [1.0, 2.0]}}, "all", None, 32, [1, 1, 2],
        interpolator="sitkLinear", label=2, extra_settings={"voxelArrayShift": 1000},
    )
    assert built == {
        "imageType": {"Original": {}, "LoG": {"sigma": [1.0, 2.0]}},
        "featureClass": {name: [] for name in
                         ["firstorder", "glcm", "gldm", "glrlm", "glszm", "ngtdm", "shape"]},
        "setting": {"additionalInfo": False, "label": 2, "interpolator": "sitkLinear",
                    "binCount": 32, "resampledPixelSpacing": [1.0, 1.0, 2.0], "voxelArrayShift": 1000},
    }


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"bin_width": 25, "bin_count": 32}, "exactly one of bin_width and bin_count"),
        ({"bin_width": None, "bin_count": None}, "exactly one of bin_width and bin_count"),
        ({"feature_classes": ["firstorder", "texture"]}, r"unknown or no feature classes \['texture'\]"),
        ({"image_types": {"Sobel": {}}}, r"unknown or no image types \['Sobel'\]"),
        ({"extra_settings": {"binWidth": 10}}, "extra_settings repeats settings given as arguments: binWidth"),
        ({"bin_width": -5}, "invalid PyRadiomics settings"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(kwargs: dict, message: str) -> None:
    arguments = {"image_types": {"Original": {}}, "feature_classes": "all", "bin_width": 25,
                 "bin_count": None, "resampled_spacing": None, **kwargs}
    with pytest.raises(ValueError, match=message):
        radiomics_params(**arguments)


def test_features_equal_hand_computed_values() -> None:
    image, mask = ellipsoid_case()
    features = extract_case(image, mask, params())
    inside = sitk.GetArrayFromImage(mask) == 1
    x = sitk.GetArrayFromImage(image)[inside].astype(float)
    voxel_volume = math.prod(SPACING)
    _, counts = np.unique(np.floor(x / BIN_WIDTH), return_counts=True)
    p = counts / counts.sum()
    expected_first_order = {
        "Mean": x.mean(), "Minimum": x.min(), "Maximum": x.max(), "Median": np.median(x),
        "Range": x.max() - x.min(), "10Percentile": np.percentile(x, 10),
        "90Percentile": np.percentile(x, 90),
        "InterquartileRange": np.percentile(x, 75) - np.percentile(x, 25),
        "Energy": np.sum(x**2), "TotalEnergy": voxel_volume * np.sum(x**2),
        "RootMeanSquared": math.sqrt(np.mean(x**2)), "Variance": x.var(),
        "MeanAbsoluteDeviation": np.mean(np.abs(x - x.mean())),
        "Skewness": stats.skew(x), "Kurtosis": stats.kurtosis(x, fisher=False),
        "Entropy": -np.sum(p * np.log2(p)), "Uniformity": np.sum(p**2),
    }
    for name, value in expected_first_order.items():
        assert features[f"original_firstorder_{name}"] == pytest.approx(value, rel=1e-9), name

    centres = np.argwhere(inside)[:, ::-1] * np.array(SPACING)  # physical x, y, z of voxel centres
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(centres.T, bias=True)))
    assert features["original_shape_VoxelVolume"] == inside.sum() * voxel_volume
    assert features["original_shape_MajorAxisLength"] == pytest.approx(4 * math.sqrt(eigenvalues[2]))
    assert features["original_shape_MinorAxisLength"] == pytest.approx(4 * math.sqrt(eigenvalues[1]))
    assert features["original_shape_LeastAxisLength"] == pytest.approx(4 * math.sqrt(eigenvalues[0]))
    # The marching-cubes mesh approximates the continuous ellipsoid (semi-axes 8, 4.8, 6 mm).
    analytic_volume = 4 / 3 * math.pi * (8 * 1.0) * (6 * 0.8) * (4 * 1.5)
    assert features["original_shape_MeshVolume"] == pytest.approx(analytic_volume, rel=0.03)
    assert not any(name.startswith("diagnostics_") for name in features)
    assert all(isinstance(value, float) for value in features.values())


def test_params_file_reloads_in_pyradiomics_with_the_same_features(tmp_path: Path) -> None:
    settings = params(classes="all")
    write_params_file(settings, tmp_path / "params.yaml")
    assert yaml.safe_load((tmp_path / "params.yaml").read_text()) == settings
    image, mask = ellipsoid_case()
    from_file = RadiomicsFeatureExtractor(str(tmp_path / "params.yaml")).execute(image, mask)
    ours = extract_case(image, mask, settings)
    assert ours == {k: float(v) for k, v in from_file.items() if not k.startswith("diagnostics_")}
    assert len(ours) == 107  # PyRadiomics 3.0.1: 14 shape + 18 first-order + 75 texture


def test_cohort_records_failures_and_keeps_the_other_cases(tmp_path: Path, cohort: list) -> None:
    calls: list[tuple[int, int]] = []
    tables, failures = extract_cohort(cohort, params(), tmp_path / "cache",
                                      progress=lambda done, total: calls.append((done, total)))
    assert list(tables) == ["mask"]  # single-mask cases: one table, under the name "mask"
    features = tables["mask"]
    assert list(features.index) == ["P0", "P1", "P2"]
    assert features.index.name == "patient_id"
    assert [f["patient_id"] for f in failures] == ["TINY", "GONE"]
    assert all(f["stage"] == "radiomics" and f["mask"] == "mask" for f in failures)
    assert "single voxel" in failures[0]["reason"]
    assert failures[1]["reason"] == f"cannot read image {cohort[4][1]}: No such file or directory"
    assert calls == [(i, 5) for i in range(1, 6)]
    for patient_id, image_path, mask_path in cohort[:1]:
        direct = extract_case(sitk.ReadImage(str(image_path)), sitk.ReadImage(str(mask_path)), params())
        assert features.loc[patient_id].to_dict() == direct
        assert list(features.columns) == list(direct)
    nothing, _ = extract_cohort(cohort[1:2], params(), tmp_path / "cache")
    assert nothing["mask"].shape == (0, 0)
    assert nothing["mask"].index.name == "patient_id"


def test_cached_cases_are_not_recomputed(tmp_path: Path, cohort: list) -> None:
    """(How much faster a cached rerun is: benchmarks/radiomics_extraction.py.)"""
    good = [cohort[0], cohort[2], cohort[3]]
    first = extract_cohort(good, params(), tmp_path / "cache")[0]["mask"]
    cache_files = sorted((tmp_path / "cache").glob("*.json"))
    assert [f.name.split("-")[0] for f in cache_files] == ["P0", "P1", "P2"]

    second, failures = extract_cohort(good, params(), tmp_path / "cache")
    second = second["mask"]
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert failures == []

    # A sentinel written into P0's cache file comes back: the case was read, not recomputed.
    record = json.loads(cache_files[0].read_text())
    record["features"]["mask"]["original_firstorder_Mean"] = 12345.0  # single-mask cases: "mask"
    cache_files[0].write_text(json.dumps(record))
    third = extract_cohort(good, params(), tmp_path / "cache")[0]["mask"]
    assert third.loc["P0", "original_firstorder_Mean"] == 12345.0
    # Other settings make another key, so the case is computed afresh.
    rebinned = extract_cohort(good, params(bin_width=10.0), tmp_path / "cache")[0]["mask"]
    assert rebinned.loc["P0", "original_firstorder_Mean"] == first.loc["P0", "original_firstorder_Mean"]
    assert len(list((tmp_path / "cache").glob("*.json"))) == 6


def test_changed_detached_image_data_invalidates_the_cache(tmp_path: Path) -> None:
    image, mask = ellipsoid_case()
    sitk.WriteImage(mask, str(tmp_path / "gtv.nrrd"))
    sitk.WriteImage(image, str(tmp_path / "ct.mhd"), useCompression=False)  # header + ct.raw
    case = [("P0", tmp_path / "ct.mhd", tmp_path / "gtv.nrrd")]
    before = extract_cohort(case, params(), tmp_path / "cache")[0]["mask"]
    header = (tmp_path / "ct.mhd").read_bytes()
    sitk.WriteImage(image + 100, str(tmp_path / "ct.mhd"), useCompression=False)
    assert (tmp_path / "ct.mhd").read_bytes() == header  # only ct.raw changed
    after = extract_cohort(case, params(), tmp_path / "cache")[0]["mask"]
    mean_shift = after.loc["P0", "original_firstorder_Mean"] - before.loc["P0", "original_firstorder_Mean"]
    assert mean_shift == pytest.approx(100.0)
    assert len(list((tmp_path / "cache").glob("P0-*.json"))) == 2


def test_two_workers_give_the_values_of_one(tmp_path: Path, cohort: list) -> None:
    settings = params(classes="all")
    serial, serial_failures = extract_cohort(cohort, settings, tmp_path / "serial", workers=1)
    parallel, parallel_failures = extract_cohort(cohort, settings, tmp_path / "parallel", workers=2)
    assert list(serial) == list(parallel) == ["mask"]
    pd.testing.assert_frame_equal(serial["mask"], parallel["mask"], check_exact=True)
    assert serial_failures == parallel_failures
    assert serial["mask"].shape == (3, 107)


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared data folder {SHARED_DATA} is absent")
def test_real_lung1_crops_give_finite_features(tmp_path: Path) -> None:
    folder = SHARED_DATA / "nsclc_lung1_real"
    with open(folder / "manifest.csv", newline="") as manifest:
        rows = {row["patient_id"]: row for row in csv.DictReader(manifest)}
    chosen = ("P024", "P063", "P079")  # the smallest tumours, to keep the test fast
    cases = [(p, folder / rows[p]["image"], folder / rows[p]["mask"]) for p in chosen]
    tables, failures = extract_cohort(cases, params(classes="all"), tmp_path / "cache")
    features = tables["mask"]
    assert failures == []
    assert features.shape[1] > 100
    assert np.isfinite(features.to_numpy()).all()
    for patient_id, _, mask_path in cases:
        voxels = int((sitk.GetArrayFromImage(sitk.ReadImage(str(mask_path))) == 1).sum())
        assert features.loc[patient_id, "original_shape_VoxelVolume"] == voxels  # 1 mm^3 voxels


# --- preprocessing (studyrunner.radiomics.preprocessing) ------------------------------------

THICK = (0.8, 0.8, 5.0)  # x, y, z (mm): an arterial-phase CT with 5 mm slices


def thick_slice_case(seed=0, dtype=np.int16) -> tuple[sitk.Image, sitk.Image]:
    """A 40 x 40 x 12 image at 0.8 x 0.8 x 5 mm, smooth noise plus a brighter ellipsoid
    lesion (semi-axes 9, 7, 16 mm) and its mask."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:12, :40, :40]
    inside = ((x - 19.5) * 0.8 / 9) ** 2 + ((y - 21) * 0.8 / 7) ** 2 + ((z - 5.5) * 5 / 16) ** 2 <= 1
    values = rng.normal(20, 40, (12, 40, 40)) + 80 * inside
    image = sitk.GetImageFromArray(ndimage.gaussian_filter(values, 1).astype(dtype))
    image.SetSpacing(THICK)
    image.SetOrigin((-10.0, 5.0, -30.0))
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.CopyInformation(image)
    return image, mask


def test_prepared_grid_is_pyradiomics_grid_by_hand() -> None:
    image, _ = thick_slice_case()
    prepared = prepare_image(image, [1, 1, 1], "sitkBSpline")
    assert prepared.GetSize() == (32, 32, 60)  # ceil(40 * 0.8), ceil(12 * 5)
    assert prepared.GetSpacing() == (1.0, 1.0, 1.0)
    # First new voxel centre: half a new voxel in from the first old voxel's corner.
    assert prepared.GetOrigin() == pytest.approx((-10.0 - 0.4 + 0.5, 5.0 - 0.4 + 0.5, -30.0 - 2.5 + 0.5))
    assert prepared.GetPixelID() == sitk.sitkInt16
    assert full_lattice(image, [1, 1, 0]).size == (32, 32, 12)  # 0 keeps the spacing


def test_linear_resampling_reproduces_a_linear_ramp() -> None:
    """Linear interpolation of f = 2x - 3y + 0.5z + 7 (physical mm) is exact inside the
    input grid: every new voxel centre inside it carries f at that point."""
    image = sitk.Image([10, 9, 6], sitk.sitkFloat64)
    image.SetSpacing(THICK)
    image.SetOrigin((3.0, -2.0, 1.0))
    z, y, x = np.mgrid[:6, :9, :10]
    ramp = lambda px, py, pz: 2 * px - 3 * py + 0.5 * pz + 7  # noqa: E731
    physical = [np.asarray(image.GetOrigin())[i] + THICK[i] * g for i, g in enumerate((x, y, z))]
    values = sitk.GetImageFromArray(ramp(*physical))
    values.CopyInformation(image)
    prepared = prepare_image(values, [1, 1, 1], "sitkLinear")
    result = sitk.GetArrayFromImage(prepared)
    checked = 0
    for k, j, i in np.ndindex(result.shape):
        point = prepared.TransformIndexToPhysicalPoint((i, j, k))
        index = np.asarray(values.TransformPhysicalPointToContinuousIndex(point))
        if np.all(index >= 0) and np.all(index <= np.asarray(values.GetSize()) - 1):
            assert result[k, j, i] == pytest.approx(ramp(*point), abs=1e-9)
            checked += 1
    assert checked > 0.6 * result.size


def test_prepared_mask_is_the_nearest_input_voxel() -> None:
    _, mask = thick_slice_case()
    reference = prepare_image(mask, [1, 1, 1], "sitkLinear")
    prepared = prepare_mask(mask, reference, label=1)
    assert prepared.GetPixelID() == sitk.sitkUInt32
    source, result = sitk.GetArrayFromImage(mask), sitk.GetArrayFromImage(prepared)
    for k, j, i in np.ndindex(result.shape):
        point = prepared.TransformIndexToPhysicalPoint((i, j, k))
        nearest = np.rint(mask.TransformPhysicalPointToContinuousIndex(point)).astype(int)
        nearest = np.clip(nearest, 0, np.asarray(mask.GetSize()) - 1)
        assert result[k, j, i] == source[nearest[2], nearest[1], nearest[0]]
    with pytest.raises(ValueError, match=r"Label \(2\) not present in mask"):
        prepare_mask(mask, reference, label=2)


@pytest.mark.parametrize("spacing", [(1, 1, 1), (0.8, 0.8, 5.0), (0.5, 0.5, 2.0)])
def test_crop_of_the_prepared_image_is_pyradiomics_resampled_image(spacing: tuple) -> None:
    """Prepared once over the grid and cut per mask = PyRadiomics' resampleImage for that
    mask, voxel for voxel and in geometry (also when nothing is interpolated)."""
    image, mask = thick_slice_case()
    edge = sitk.GetArrayFromImage(mask) * 0
    edge[3:6, 0:8, 30:40] = 1  # a second ROI at the image's border: its box is clipped
    masks = [imageoperations.getMask(mask), imageoperations.getMask(sitk.GetImageFromArray(edge))]
    masks[1].CopyInformation(image)
    boxes = [pyradiomics_crop_box(image, m, spacing, 1, 5) for m in masks]
    region = boxes[0].union(boxes[1])
    prepared = prepare_image(image, spacing, "sitkBSpline", region)
    for roi, box in zip(masks, boxes, strict=True):
        expected_image, expected_mask = imageoperations.resampleImage(
            image, roi, resampledPixelSpacing=list(spacing), interpolator="sitkBSpline", padDistance=5)
        ours = crop(prepared, region, box, image, spacing)
        ours_mask = prepare_mask(roi, ours, 1)
        for expected, got in ((expected_image, ours), (expected_mask, ours_mask)):
            assert got.GetSize() == expected.GetSize()
            assert got.GetOrigin() == expected.GetOrigin()
            assert got.GetSpacing() == expected.GetSpacing()
            assert got.GetPixelID() == expected.GetPixelID()
            np.testing.assert_array_equal(sitk.GetArrayFromImage(got), sitk.GetArrayFromImage(expected))


def test_masks_on_another_grid_are_left_to_pyradiomics() -> None:
    image, mask = thick_slice_case()
    one_slice = sitk.GetArrayFromImage(mask) * 0
    one_slice[6, 15:25, 15:25] = 1  # one 5 mm slice: PyRadiomics keeps z at 5 mm for it
    flat = sitk.GetImageFromArray(one_slice)
    flat.CopyInformation(image)
    assert pyradiomics_crop_box(image, flat, [1, 1, 1], 1, 5) is None
    moved = sitk.Image(mask)
    moved.SetOrigin((-9.9, 5.0, -30.0))
    assert pyradiomics_crop_box(image, moved, [1, 1, 1], 1, 5) is None
    # Native spacing: the ROI box plus 5 voxels, clipped to the image.
    box = pyradiomics_crop_box(image, mask, THICK, 1, 5)
    bounds = np.argwhere(sitk.GetArrayFromImage(mask))[:, ::-1]
    low, high = np.maximum(bounds.min(0) - 5, 0), np.minimum(bounds.max(0) + 5, [39, 39, 11])
    assert box == LatticeBox(tuple(low), tuple(high - low + 1))
