"""Tumour crops on synthetic SimpleITK images with a known lesion, spacing and direction."""

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from studyrunner.deep.crops import apply_zscore, tumour_crop, zscore_statistics
from studyrunner.errors import InputError

SIZE = (40, 36, 20)  # x, y, z
SPACING = (0.7, 0.8, 2.5)
ORIGIN = (-10.0, 5.0, 30.0)
CUBE = (slice(8, 12), slice(20, 26), slice(10, 16))  # numpy [z, y, x]: x 10..15, y 20..25, z 8..11
CUBE_CENTRE_INDEX = np.array([12.5, 22.5, 9.5])  # x, y, z
BG, LESION = -500.0, 300.0


def _write(arr_zyx, path, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1), pixel=sitk.sitkInt16):
    img = sitk.Cast(sitk.GetImageFromArray(arr_zyx), pixel)
    img.SetSpacing(SPACING)
    img.SetOrigin(ORIGIN)
    img.SetDirection(direction)
    sitk.WriteImage(img, str(path))
    return path


def _case(tmp_path, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1), label=2, image=None):
    arr = np.full(SIZE[::-1], BG, dtype=np.float32)
    arr[CUBE] = LESION
    mask = np.zeros(SIZE[::-1], dtype=np.uint8)
    mask[CUBE] = label
    mask[0, 0, 0] = 1  # another label far away: must not move the box
    img = _write(arr if image is None else image, tmp_path / "image.nii.gz", direction)
    msk = _write(mask, tmp_path / "mask.nii.gz", direction, sitk.sitkUInt8)
    return img, msk


def _physical(index_xyz, direction):
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    return np.asarray(ORIGIN) + d @ (np.asarray(SPACING) * np.asarray(index_xyz, dtype=float))


FLIP_X = (-1, 0, 0, 0, 1, 0, 0, 0, 1)


@pytest.mark.parametrize("direction", [(1, 0, 0, 0, 1, 0, 0, 0, 1), FLIP_X])
def test_cube_is_centred_in_the_crop(tmp_path, direction):
    img, msk = _case(tmp_path, direction)
    size = (30, 28, 21)
    crop = tumour_crop(img, msk, mask_label=2, spacing_mm=(1.0, 1.0, 1.0), size_voxels=size)
    assert crop.shape == (21, 28, 30)
    assert crop.dtype == np.float32
    w = np.clip(crop - BG, 0, None).astype(np.float64)  # lesion signal; outside fill is below BG
    assert w.sum() > 0
    grid = np.indices(crop.shape)
    centroid_zyx = [(g * w).sum() / w.sum() for g in grid]
    np.testing.assert_allclose(centroid_zyx, [(s - 1) / 2 for s in size[::-1]], atol=1e-4)
    # nearest neighbour: the middle voxels are lesion, the corners background or air
    near = tumour_crop(img, msk, mask_label=2, size_voxels=size, interpolator="nearest")
    assert near[10, 13:15, 14:16].tolist() == [[LESION, LESION], [LESION, LESION]]


def test_values_follow_the_physical_grid(tmp_path):
    """A linear ramp in physical space is reproduced exactly by linear interpolation."""
    idx = np.indices(SIZE[::-1]).astype(float)  # z, y, x index grids
    px = ORIGIN[0] + SPACING[0] * idx[2]
    py = ORIGIN[1] + SPACING[1] * idx[1]
    pz = ORIGIN[2] + SPACING[2] * idx[0]
    ramp = (2.0 * px + 3.0 * py - 1.0 * pz).astype(np.float32)
    img, msk = _case(tmp_path, image=ramp)
    # write as float so the ramp is not rounded
    _write(ramp, img, pixel=sitk.sitkFloat32)
    size, spacing = (12, 10, 6), (1.5, 1.0, 2.0)
    crop = tumour_crop(img, msk, mask_label=2, spacing_mm=spacing, size_voxels=size, hu_window=(-1e6, 1e6))
    centre = _physical(CUBE_CENTRE_INDEX, (1, 0, 0, 0, 1, 0, 0, 0, 1))
    origin = centre - np.asarray(spacing) * (np.asarray(size) - 1) / 2
    gz, gy, gx = np.indices(crop.shape).astype(float)
    qx, qy, qz = origin[0] + spacing[0] * gx, origin[1] + spacing[1] * gy, origin[2] + spacing[2] * gz
    expected = 2.0 * qx + 3.0 * qy - 1.0 * qz
    np.testing.assert_allclose(crop, expected, atol=2e-3)


def test_outside_the_image_is_air_and_values_are_clipped(tmp_path):
    arr = np.full(SIZE[::-1], BG, dtype=np.float32)
    arr[CUBE] = LESION
    arr[9, 22, 12] = 3000.0
    arr[10, 23, 13] = -3000.0
    img, msk = _case(tmp_path, image=arr)
    size = (60, 50, 40)  # larger than the image (28 x 28.8 x 50 mm)
    raw = tumour_crop(img, msk, mask_label=2, size_voxels=size, hu_window=(-1e6, 1e6))
    clipped = tumour_crop(img, msk, mask_label=2, size_voxels=size)
    narrow = tumour_crop(img, msk, mask_label=2, size_voxels=size, hu_window=(-200.0, 200.0))
    np.testing.assert_array_equal(clipped, np.clip(raw, -1024, 1024))
    np.testing.assert_array_equal(narrow, np.clip(raw, -200, 200))
    assert raw.max() > 1024
    assert raw.min() < -1024
    assert clipped.max() == 1024
    assert clipped.min() == -1024

    # crop voxels more than one image voxel outside the image: exactly -1024
    centre = _physical(CUBE_CENTRE_INDEX, (1, 0, 0, 0, 1, 0, 0, 0, 1))
    origin = centre - (np.asarray(size) - 1) / 2
    gz, gy, gx = np.indices(raw.shape).astype(float)
    cont = [(origin[a] + g - ORIGIN[a]) / SPACING[a] for a, g in enumerate((gx, gy, gz))]
    outside = np.zeros(raw.shape, bool)
    for a in range(3):
        outside |= (cont[a] < -1) | (cont[a] > SIZE[a])
    inside = np.ones(raw.shape, bool)
    for a in range(3):
        inside &= (cont[a] >= 0) & (cont[a] <= SIZE[a] - 1)
    assert outside.sum() > 1000
    assert inside.sum() > 1000
    assert np.all(raw[outside] == -1024.0)
    assert np.all((raw[inside] >= -3000.0) & (raw[inside] <= 3000.0))
    assert not np.any(raw[inside] == -1024.0)


def test_empty_mask_names_the_file(tmp_path):
    img, msk = _case(tmp_path)
    with pytest.raises(InputError, match=r"mask .*mask\.nii\.gz.*label 3"):
        tumour_crop(img, msk, mask_label=3)
    with pytest.raises(InputError, match=r"missing\.nii\.gz: file not found"):
        tumour_crop(tmp_path / "missing.nii.gz", msk)


def _write_dicom_series(image: sitk.Image, folder: Path) -> Path:
    """One CT DICOM file per z slice, with the tags a series reader orders and places
    slices by (SimpleITK's ImageSeriesWriter refuses DICOM, so slice by slice)."""
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    uid = "1.2.826.0.1.3680043.2.1125.1.42"
    direction = image.GetDirection()  # row-major 3 x 3: columns are the x, y, z axes
    for k in range(image.GetDepth()):
        plane = image[:, :, k]
        tags = {"0008|0060": "CT", "0020|000d": f"{uid}.1", "0020|000e": f"{uid}.2",
                "0008|0018": f"{uid}.3.{k + 1}", "0020|0013": str(k + 1),
                "0020|0037": "\\".join(f"{v:g}" for v in direction[0::3] + direction[1::3]),
                "0020|0032": "\\".join(f"{v:g}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))),
                "0018|0050": f"{image.GetSpacing()[2]:g}"}
        for tag, value in tags.items():
            plane.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(plane)
    return folder


def test_dicom_series_folder_gives_the_crop_of_the_same_volume_as_nifti(tmp_path):
    """The crop reads images with studyrunner.imaging.io.read_image, so a case given as a
    DICOM series folder gives exactly the crop of the same volume given as NIfTI
    (spacings and origin exact in both formats' headers)."""
    rng = np.random.default_rng(7)
    values = rng.integers(-900, 900, size=SIZE[::-1]).astype(np.int16)
    values[CUBE] += 600
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.75, 0.5, 2.5))
    image.SetOrigin(ORIGIN)
    mask = sitk.GetImageFromArray(np.zeros(SIZE[::-1], np.uint8))
    mask[10:16, 20:26, 8:12] = 1  # x, y, z: the cube
    mask.CopyInformation(image)
    sitk.WriteImage(image, str(tmp_path / "image.nii.gz"))
    sitk.WriteImage(mask, str(tmp_path / "mask.nii.gz"))
    series = _write_dicom_series(image, tmp_path / "series")
    arguments = {"spacing_mm": (1.0, 1.0, 1.0), "size_voxels": (16, 14, 12)}
    from_nifti = tumour_crop(tmp_path / "image.nii.gz", tmp_path / "mask.nii.gz", **arguments)
    from_dicom = tumour_crop(series, tmp_path / "mask.nii.gz", **arguments)
    np.testing.assert_array_equal(from_dicom, from_nifti)
    assert from_nifti.std() > 100  # the crop holds the random volume, not only fill values
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"image .*empty: no DICOM series found in the folder"):
        tumour_crop(tmp_path / "empty", tmp_path / "mask.nii.gz")


def test_zscore_statistics_by_hand():
    rng = np.random.default_rng(3)
    crops = rng.normal(-300, 250, size=(4, 5, 6, 7)).astype(np.float32)
    mean, sd = zscore_statistics(crops)
    vals = crops.astype(np.float64).ravel()
    hand_mean = sum(vals.tolist()) / vals.size
    hand_sd = (sum((v - hand_mean) ** 2 for v in vals.tolist()) / vals.size) ** 0.5
    assert mean == pytest.approx(hand_mean, rel=1e-12)
    assert sd == pytest.approx(hand_sd, rel=1e-12)
    z = apply_zscore(crops, mean, sd)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z, (vals.reshape(crops.shape) - hand_mean) / hand_sd, rtol=1e-5, atol=1e-5)
    assert float(z.astype(np.float64).mean()) == pytest.approx(0, abs=1e-6)
    with pytest.raises(InputError, match="sd = 0"):
        zscore_statistics(np.ones((2, 3, 3, 3), np.float32))
