"""Catalogue of bad inputs, group "images": each damaged image or mask is recorded as the
case's problem (the case is excluded with that reason; the study goes on), never read as if
it were whole. README "Bad inputs" lists the groups."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from studyrunner.imaging.geometry import load_case
from studyrunner.run_folder import RunFolder, sha256_path

SHAPE_ZYX = (24, 28, 32)


def _image(tmp: Path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    ct = rng.normal(40, 80, SHAPE_ZYX).astype(np.float32)
    mask = np.zeros(SHAPE_ZYX, np.uint8)
    mask[8:16, 10:18, 12:20] = 1
    return ct, mask


def _write(array: np.ndarray, path: Path, compress: bool = True) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.8, 0.8, 2.5))
    sitk.WriteImage(image, str(path), compress)
    return path


def _truncated_gzip(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _flipped_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[int(len(raw) * 0.8)] ^= 0x5A
    path.write_bytes(bytes(raw))


def _truncated_raw(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 1000])


def _nan_in_tumour(ct: np.ndarray, mask: np.ndarray) -> None:
    ct[10, 12, 14] = np.nan


def _inf_in_tumour(ct: np.ndarray, mask: np.ndarray) -> None:
    ct[9, 11, 13] = np.inf


def _nan_outside(ct: np.ndarray, mask: np.ndarray) -> None:
    ct[0, 0, 0] = np.nan


def _empty_mask(ct: np.ndarray, mask: np.ndarray) -> None:
    mask[:] = 0


def _multi_label(ct: np.ndarray, mask: np.ndarray) -> None:
    mask[1:3, 1:3, 1:3] = 2


# (case, file suffix, change to the arrays before writing, change to the image file after, reason words)
CASES: list[tuple[str, str, Callable | None, Callable | None, str]] = [
    ("truncated .nii.gz", ".nii.gz", None, _truncated_gzip, "truncated"),
    ("corrupted .nii.gz", ".nii.gz", None, _flipped_byte, "image:"),
    ("truncated .nii", ".nii", None, _truncated_raw, "fewer than the"),
    ("truncated .nrrd", ".nrrd", None, _truncated_raw, "fewer than the"),
    ("truncated .mha", ".mha", None, _truncated_raw, "fewer than the"),
    ("NaN inside the tumour", ".nrrd", _nan_in_tumour, None, "1 NaN, 0 infinite; 1 of them inside the tumour"),
    ("Inf inside the tumour", ".mha", _inf_in_tumour, None, "0 NaN, 1 infinite; 1 of them inside the tumour"),
    ("NaN outside the tumour", ".nrrd", _nan_outside, None, "none inside the tumour mask"),
    ("NaN in a .nii.gz (ITK reads it as 0)", ".nii.gz", _nan_in_tumour, None, "1 NaN, 0 infinite"),
    ("Inf in a .nii (ITK reads it as 0)", ".nii", _inf_in_tumour, None, "0 NaN, 1 infinite"),
    ("empty mask", ".nii.gz", _empty_mask, None, "no voxel equal to label 1"),
    ("mask with a second label", ".nii.gz", _multi_label, None, "not binary"),
]


@pytest.mark.parametrize("case, suffix, before, after, words", CASES, ids=[c[0] for c in CASES])
def test_a_damaged_case_is_excluded_with_its_reason(tmp_path, case, suffix, before, after, words):
    ct, mask = _image(tmp_path)
    if before is not None:
        before(ct, mask)
    image_path = _write(ct, tmp_path / f"image{suffix}", compress=suffix.endswith(".gz"))
    mask_path = _write(mask, tmp_path / "mask.nii.gz")
    if after is not None:
        after(image_path)
    result = load_case("P1", image_path, mask_path)
    assert not result.ok
    assert words in "; ".join(result.problems), result.problems


def test_a_whole_case_reads_without_problems(tmp_path):
    ct, mask = _image(tmp_path)
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha"):
        image_path = _write(ct, tmp_path / f"image{suffix}", compress=suffix == ".nii.gz")
        result = load_case("P1", image_path, _write(mask, tmp_path / "mask.nii.gz"))
        assert result.ok, (suffix, result.problems)
        assert result.info["mask_voxel_count"] == 8 * 8 * 8


def test_a_missing_file_is_a_problem_of_its_case(tmp_path):
    _, mask = _image(tmp_path)
    result = load_case("P1", tmp_path / "absent.nii.gz", _write(mask, tmp_path / "mask.nii.gz"))
    assert result.problems == [f"image: cannot read image {tmp_path / 'absent.nii.gz'}: no such file or folder"]


def test_fingerprints_hash_what_exists_a_folder_by_its_files_and_mark_the_missing(tmp_path):
    series = tmp_path / "series"
    series.mkdir()
    (series / "1.dcm").write_bytes(b"one")
    (series / "2.dcm").write_bytes(b"two")
    folder = RunFolder(tmp_path / "run")
    first = folder.fingerprint("images", {}, inputs=[series, tmp_path / "absent.nii.gz"])
    assert sha256_path(tmp_path / "absent.nii.gz") == "missing"
    (series / "2.dcm").write_bytes(b"changed")
    assert folder.fingerprint("images", {}, inputs=[series, tmp_path / "absent.nii.gz"]) != first
