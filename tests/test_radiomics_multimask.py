"""Several masks (readers) per image: the image is prepared once and every mask's features
equal those of a plain PyRadiomics ``RadiomicsFeatureExtractor.execute`` with the same
settings (van Griethuysen et al., Cancer Res 2017), the reference these tests compare to;
cohort tables per mask, failures per case and mask, cache, parallel workers.

The image: 40 x 40 x 12 voxels at 0.8 x 0.8 x 5 mm (thick-slice CT), resampled to 1 mm
with B-spline; Original + Wavelet (8 sub-bands) + LoG (sigma 1 and 2 mm), all 3D classes:
107 + 8 x 93 + 2 x 93 = 1,037 features per mask.
"""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from radiomics import imageoperations
from radiomics.featureextractor import RadiomicsFeatureExtractor
from scipy import ndimage

from studyrunner.paths import REPO_DIR
from studyrunner.radiomics import extract_cohort, extract_masks, radiomics_params
from studyrunner.radiomics.binning import bin_edges_from_extremes

SHARED_DATA = REPO_DIR.parent / "shared" / "data"
THICK = (0.8, 0.8, 5.0)
IMAGE_TYPES = {"Original": {}, "Wavelet": {}, "LoG": {"sigma": [1.0, 2.0]}}
N_FEATURES = 107 + 8 * 93 + 2 * 93


def seed_params(resampled=(1.0, 1.0, 1.0), image_types=IMAGE_TYPES, **extra) -> dict:
    return radiomics_params(image_types, "all", 25.0, None, resampled, extra_settings=extra or None)


def lesion_case(seed=0, centre=(19.5, 21.0, 5.5)) -> tuple[sitk.Image, sitk.Image]:
    """Smooth noise with a brighter ellipsoid lesion (semi-axes 9, 7, 16 mm) and its mask."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:12, :40, :40]
    inside = (((x - centre[0]) * 0.8 / 9) ** 2 + ((y - centre[1]) * 0.8 / 7) ** 2
              + ((z - centre[2]) * 5 / 16) ** 2 <= 1)
    values = rng.normal(20, 40, (12, 40, 40)) + 80 * inside
    image = sitk.GetImageFromArray(ndimage.gaussian_filter(values, 1).astype(np.int16))
    image.SetSpacing(THICK)
    image.SetOrigin((-10.0, 5.0, -30.0))
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.CopyInformation(image)
    return image, mask


def second_reader(mask: sitk.Image) -> sitk.Image:
    """A second segmentation: the first one dilated by one voxel in-plane."""
    return sitk.BinaryDilate(mask, [1, 1, 0])


def plain(image: sitk.Image, mask: sitk.Image, params: dict) -> dict[str, float]:
    result = RadiomicsFeatureExtractor(json.loads(json.dumps(params))).execute(image, mask)
    return {name: float(value) for name, value in result.items() if not name.startswith("diagnostics_")}


def assert_same_features(ours: dict[str, float], reference: dict[str, float]) -> int:
    """Same names in the same order, values within 1e-6 relative; returns how many are
    bit-identical."""
    assert list(ours) == list(reference)
    a, b = np.array(list(reference.values())), np.array(list(ours.values()))
    np.testing.assert_allclose(b, a, rtol=1e-6, atol=0, equal_nan=True)
    return int(np.sum((a == b) | (np.isnan(a) & np.isnan(b))))


def test_two_readers_of_one_image_equal_plain_pyradiomics() -> None:
    image, reader1 = lesion_case()
    reader2 = second_reader(reader1)
    params = seed_params()
    features, failures = extract_masks(image, {"reader1": reader1, "reader2": reader2}, params)
    assert failures == {}
    assert list(features) == ["reader1", "reader2"]
    for name, mask in (("reader1", reader1), ("reader2", reader2)):
        reference = plain(image, mask, params)
        assert len(reference) == N_FEATURES
        assert assert_same_features(features[name], reference) == N_FEATURES  # all bit-identical
    # The readers differ, so the comparison is not vacuous.
    assert features["reader2"]["original_shape_VoxelVolume"] > features["reader1"]["original_shape_VoxelVolume"]
    assert sum(features["reader1"][k] != features["reader2"][k] for k in features["reader1"]) > 900


def test_unresampled_single_slice_and_normalised_masks_equal_plain_pyradiomics() -> None:
    """The other loading paths: no resampling (one shared whole image), a one-slice ROI
    (PyRadiomics keeps its z spacing: resampled on its own grid), normalisation."""
    image, lesion = lesion_case()
    flat = sitk.GetArrayFromImage(lesion) * 0
    flat[6, 15:26, 14:24] = 1
    one_slice = sitk.GetImageFromArray(flat)
    one_slice.CopyInformation(image)
    small = {"Original": {}, "LoG": {"sigma": [1.0]}}
    for params in (seed_params(None, small), seed_params((1.0, 1.0, 1.0), small),
                   seed_params((1.0, 1.0, 1.0), small, normalize=True, normalizeScale=100)):
        features, failures = extract_masks(image, {"lesion": lesion, "slice": one_slice}, params)
        assert failures == {}
        for name, mask in (("lesion", lesion), ("slice", one_slice)):
            reference = plain(image, mask, params)
            assert assert_same_features(features[name], reference) == len(reference)


def test_fixed_bin_count_equals_plain_pyradiomics_and_bin_edges_are_restored() -> None:
    """Bin edges from (min, max) only (studyrunner.radiomics.binning) give PyRadiomics'
    edges for a fixed bin count too; PyRadiomics' own function is back afterwards."""
    image, lesion = lesion_case()
    original = imageoperations.getBinEdges
    params = radiomics_params({"Original": {}, "LoG": {"sigma": [1.0]}}, "all", None, 16, (1.0, 1.0, 1.0))
    features, _ = extract_masks(image, {"lesion": lesion}, params)
    assert imageoperations.getBinEdges is original
    reference = plain(image, lesion, params)
    assert assert_same_features(features["lesion"], reference) == len(reference) == 107 + 93


def test_bin_edges_from_extremes_only_inside_the_context_and_its_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside the context (this thread) getBinEdges receives (min, max); another thread,
    and any call after the last (nested) context exits, gets the values unchanged; the
    function that was there before is back afterwards."""
    received: list[list[float]] = []

    def recording(values, **kwargs):
        received.append(np.asarray(values).tolist())
        return np.array([0.0, 1.0])

    monkeypatch.setattr(imageoperations, "getBinEdges", recording)
    roi = np.array([40.0, -3.5, 80.0, 12.0])
    other_thread = threading.Thread(target=lambda: imageoperations.getBinEdges(roi, binWidth=25))
    with bin_edges_from_extremes():
        with bin_edges_from_extremes():
            imageoperations.getBinEdges(roi, binWidth=25)
        imageoperations.getBinEdges(roi, binWidth=25)  # the outer context is still open
        other_thread.start()
        other_thread.join()
        imageoperations.getBinEdges(np.array([]), binWidth=25)  # empty ROI: unchanged
        imageoperations.getBinEdges(np.array([1.0, np.nan]), binWidth=25)  # non-finite: unchanged
    assert imageoperations.getBinEdges is recording
    imageoperations.getBinEdges(roi, binWidth=25)
    assert received[:3] == [[-3.5, 80.0], [-3.5, 80.0], roi.tolist()]
    assert received[3] == []
    assert np.isnan(received[4][1])
    assert received[5] == roi.tolist()


def test_masks_with_the_same_box_share_one_filtering(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two masks whose padded boxes coincide (the second is the first minus its core) are
    filtered once; a mask with another box is filtered again."""
    calls: list[tuple[int, ...]] = []
    real = imageoperations.getWaveletImage

    def counting(image, mask, **kwargs):
        calls.append(image.GetSize())
        yield from real(image, mask, **kwargs)

    monkeypatch.setattr(imageoperations, "getWaveletImage", counting)
    image, outer = lesion_case()
    array = sitk.GetArrayFromImage(outer)
    shell = array - ndimage.binary_erosion(array, iterations=2)  # same bounding box
    ring = sitk.GetImageFromArray(shell.astype(np.uint8))
    ring.CopyInformation(image)
    params = seed_params(image_types={"Original": {}, "Wavelet": {}})
    features, _ = extract_masks(image, {"outer": outer, "ring": ring, "dilated": second_reader(outer)}, params)
    assert len(calls) == 2
    for name, mask in (("outer", outer), ("ring", ring)):
        assert assert_same_features(features[name], plain(image, mask, params)) == 107 + 8 * 93


def write_reader_cohort(folder: Path) -> list[tuple]:
    """Three cases with reader1 and reader2: B's reader2 is a single voxel (PyRadiomics
    refuses it), C's reader2 file is missing."""
    cases = []
    for seed, patient_id in enumerate("ABC"):
        image, reader1 = lesion_case(seed, centre=(19.5 + seed, 21.0 - seed, 5.5))
        reader2 = second_reader(reader1)
        if patient_id == "B":
            voxel = sitk.GetArrayFromImage(reader1) * 0
            voxel[6, 20, 20] = 1
            reader2 = sitk.GetImageFromArray(voxel)
            reader2.CopyInformation(image)
        paths = {"reader1": folder / f"{patient_id}_r1.nrrd", "reader2": folder / f"{patient_id}_r2.nrrd"}
        sitk.WriteImage(image, str(folder / f"{patient_id}_ct.nrrd"))
        sitk.WriteImage(reader1, str(paths["reader1"]))
        if patient_id != "C":
            sitk.WriteImage(reader2, str(paths["reader2"]))
        cases.append((patient_id, folder / f"{patient_id}_ct.nrrd", paths))
    return cases


FAST = {"Original": {}, "Wavelet": {}}


def test_cohort_tables_per_reader_with_failures_per_mask(tmp_path: Path) -> None:
    cases = write_reader_cohort(tmp_path)
    params = seed_params(image_types=FAST)
    calls: list[tuple[int, int]] = []
    tables, failures = extract_cohort(cases, params, tmp_path / "cache",
                                      progress=lambda done, total: calls.append((done, total)))
    assert list(tables) == ["reader1", "reader2"]
    assert list(tables["reader1"].index) == ["A", "B", "C"]  # the other reader's failure costs nothing
    assert list(tables["reader2"].index) == ["A"]
    assert tables["reader1"].index.name == tables["reader2"].index.name == "patient_id"
    assert [(f["patient_id"], f["mask"], f["stage"]) for f in failures] == [
        ("B", "reader2", "radiomics"), ("C", "reader2", "radiomics")]
    assert "single voxel" in failures[0]["reason"]
    assert failures[1]["reason"] == f"cannot read image {cases[2][2]['reader2']}: No such file or directory"
    assert calls == [(1, 3), (2, 3), (3, 3)]
    for patient_id, image_path, paths in cases[:2]:
        image = sitk.ReadImage(str(image_path))
        reference = plain(image, sitk.ReadImage(str(paths["reader1"])), params)
        assert assert_same_features(tables["reader1"].loc[patient_id].to_dict(), reference) == 107 + 8 * 93
    reference = plain(sitk.ReadImage(str(cases[0][1])), sitk.ReadImage(str(cases[0][2]["reader2"])), params)
    assert assert_same_features(tables["reader2"].loc["A"].to_dict(), reference) == 107 + 8 * 93

    # Only the case with every mask extracted is cached; its key covers every mask file.
    cache_files = sorted((tmp_path / "cache").glob("*.json"))
    assert [f.name.split("-")[0] for f in cache_files] == ["A"]
    record = json.loads(cache_files[0].read_text())
    assert set(record["features"]) == {"reader1", "reader2"}
    record["features"]["reader2"]["original_firstorder_Mean"] = 12345.0
    cache_files[0].write_text(json.dumps(record))
    again, _ = extract_cohort(cases[:1], params, tmp_path / "cache")
    assert again["reader2"].loc["A", "original_firstorder_Mean"] == 12345.0  # read, not recomputed
    sitk.WriteImage(second_reader(sitk.ReadImage(str(cases[0][2]["reader2"]))), str(cases[0][2]["reader2"]))
    changed, _ = extract_cohort(cases[:1], params, tmp_path / "cache")
    volume = "original_shape_VoxelVolume"
    assert changed["reader2"].loc["A", volume] > tables["reader2"].loc["A", volume]
    assert changed["reader1"].loc["A"].equals(tables["reader1"].loc["A"])
    assert len(list((tmp_path / "cache").glob("A-*.json"))) == 2


def test_two_workers_give_the_values_of_one_for_readers(tmp_path: Path) -> None:
    cases = write_reader_cohort(tmp_path)
    params = seed_params(image_types=FAST)
    serial, serial_failures = extract_cohort(cases, params, tmp_path / "serial", workers=1)
    parallel, parallel_failures = extract_cohort(cases, params, tmp_path / "parallel", workers=2)
    assert list(serial) == list(parallel)
    for name in serial:
        pd.testing.assert_frame_equal(serial[name], parallel[name], check_exact=True)
    assert serial_failures == parallel_failures
    assert serial["reader1"].shape == (3, 107 + 8 * 93)


def test_case_forms_are_checked(tmp_path: Path) -> None:
    params = seed_params(image_types={"Original": {}})
    with pytest.raises(ValueError, match="cases mix"):
        extract_cohort([("A", tmp_path / "a.nrrd", tmp_path / "m.nrrd"),
                        ("B", tmp_path / "b.nrrd", {"r1": tmp_path / "m.nrrd"})], params, tmp_path)
    with pytest.raises(ValueError, match="case A has no mask"):
        extract_cohort([("A", tmp_path / "a.nrrd", {})], params, tmp_path)
    tables, failures = extract_cohort([("A", tmp_path / "a.nrrd", {"r1": tmp_path / "m.nrrd"})], params, tmp_path)
    assert tables["r1"].shape == (0, 0)
    assert failures == [{"patient_id": "A", "mask": "r1", "stage": "radiomics",
                         "reason": f"cannot read image {tmp_path / 'a.nrrd'}: No such file or directory"}]


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared data folder {SHARED_DATA} is absent")
def test_real_lung1_case_with_dilated_reader_equals_plain_pyradiomics() -> None:
    """P024 (the smallest tumour, 1 mm CT) with seed 001's filters: LoG sigma 1-5 mm."""
    folder = SHARED_DATA / "nsclc_lung1_real"
    with open(folder / "manifest.csv", newline="") as manifest:
        row = next(r for r in csv.DictReader(manifest) if r["patient_id"] == "P024")
    image, reader1 = (sitk.ReadImage(str(folder / row[k])) for k in ("image", "mask"))
    reader2 = sitk.BinaryDilate(reader1, [1, 1, 1])
    params = seed_params(image_types={"Original": {}, "Wavelet": {}, "LoG": {"sigma": [1.0, 2.0, 3.0, 4.0, 5.0]}})
    features, failures = extract_masks(image, {"reader1": reader1, "reader2": reader2}, params)
    assert failures == {}
    for name, mask in (("reader1", reader1), ("reader2", reader2)):
        reference = plain(image, mask, params)
        assert len(reference) == 1316
        assert assert_same_features(features[name], reference) == 1316
