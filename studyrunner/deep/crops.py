"""Fixed-size tumour crops for the seed-000 networks, and the cohort z-score.

Seed 000 (Transl Lung Cancer Res 2022;11(4):670-685, Methods, "Data collection"): "The
upper and lower bounds of HU values in CT images were set as 1,024 and -1,024,
respectively, and we used 3D tumor images for z-score normalization based on the
dataset"; Figure 1: "Resample size(82*82*78)".

Conventions (ours; the seed gives only the size and the HU bounds):

* Image and mask are read with the project's one reader
  (:func:`studyrunner.imaging.io.read_image`): NIfTI, NRRD, MetaImage files or a DICOM
  series folder, as for the image checks and radiomics; a DICOM RTSTRUCT or SEG mask is
  made on the image's grid (:mod:`studyrunner.imaging.masks`).
* One reference grid per case: identity direction, the given spacing (mm) and size, its
  physical centre on the physical centre of the bounding box of the mask's voxels equal to
  ``mask_label`` (the centre of the box of voxel centres, mapped by the mask's own origin,
  spacing and direction, so image and mask may lie on different grids). With an even size
  the centre falls between the two middle voxels.
* The image is resampled onto that grid with SimpleITK (linear interpolation by default);
  grid points outside the image's field of view get -1024 (air). Then the values are
  clipped to ``hu_window``.
* Sizes and spacings are given in SimpleITK order (x, y, z); the returned array is in
  numpy order [z, y, x].
* z-score: one mean and one standard deviation (population, ddof = 0) over every voxel of
  every TRAINING crop; the same two numbers are applied to all cohorts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from studyrunner.errors import InputError
from studyrunner.imaging.io import ImageReadError
from studyrunner.imaging.masks import read_case_image, read_mask
from studyrunner.imaging.structure import STRUCTURE_COLUMN, StructureSelector

_INTERPOLATORS = {
    "linear": sitk.sitkLinear,
    "nearest": sitk.sitkNearestNeighbor,
    "bspline": sitk.sitkBSpline,
}

AIR_HU = -1024.0


def _read_image(path, mask_path) -> sitk.Image:
    """The case's image (a DICOM mask at ``mask_path`` picks the series of an image folder)."""
    return _read_3d(path, "image", lambda p: read_case_image(p, Path(mask_path)))


def _read_mask(path, image: sitk.Image, structure: object) -> sitk.Image:
    """The mask on ``image``'s grid (a DICOM mask's ROI or segment: ``structure``, the cohort
    table's selector text)."""
    return _read_3d(path, "mask", lambda p: read_mask(p, image, StructureSelector.from_text(structure)))


def _read_3d(path, what: str, reader: Callable[[Path], sitk.Image]) -> sitk.Image:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p}: file not found")
    try:
        image = reader(p)
    except ImageReadError as exc:
        raise InputError(f"{what} {p}: {exc.reason}") from exc
    if image.GetDimension() != 3:
        raise InputError(f"{what} {p}: {image.GetDimension()}-D image; need 3-D")
    return image


def _triple(values, name: str, *, integer: bool) -> tuple:
    vals = tuple(values)
    if len(vals) != 3:
        raise InputError(f"{name} is {values!r}; need 3 values (x, y, z)")
    if integer:
        if any(int(v) != v or v < 1 for v in vals):
            raise InputError(f"{name} is {values!r}; need 3 positive integers (x, y, z)")
        return tuple(int(v) for v in vals)
    if not all(np.isfinite(v) and v > 0 for v in vals):
        raise InputError(f"{name} is {values!r}; need 3 positive spacings in mm (x, y, z)")
    return tuple(float(v) for v in vals)


def mask_box_centre(mask: sitk.Image, mask_label: int, mask_path) -> tuple[float, float, float]:
    """Physical point (x, y, z) of the centre of the bounding box of voxels == ``mask_label``."""
    arr = sitk.GetArrayViewFromImage(mask)  # [z, y, x]
    zyx = np.nonzero(arr == mask_label)
    if zyx[0].size == 0:
        raise InputError(f"mask {mask_path}: no voxel has label {mask_label}")
    centre_zyx = [(float(ax.min()) + float(ax.max())) / 2.0 for ax in zyx]
    centre_index_xyz = centre_zyx[::-1]
    return tuple(mask.TransformContinuousIndexToPhysicalPoint(centre_index_xyz))


def tumour_crop(
    image_path,
    mask_path,
    *,
    mask_label: int = 1,
    spacing_mm=(1.0, 1.0, 1.0),
    size_voxels=(82, 82, 78),
    hu_window=(-1024.0, 1024.0),
    interpolator: str = "linear",
    structure: object = None,
) -> np.ndarray:
    """The image resampled onto a grid centred on the tumour, clipped to ``hu_window``.

    Returns a float32 array of shape ``(size_z, size_y, size_x)`` (numpy order [z, y, x];
    ``spacing_mm`` and ``size_voxels`` are (x, y, z)). See the module docstring for the grid.
    Raises :class:`InputError` naming the file when a file cannot be read or the mask has no
    voxel with ``mask_label``.
    """
    spacing = _triple(spacing_mm, "spacing_mm", integer=False)
    size = _triple(size_voxels, "size_voxels", integer=True)
    lo, hi = (float(v) for v in hu_window)
    if not lo < hi:
        raise InputError(f"hu_window is {hu_window!r}; need (lower, upper) with lower < upper")
    if interpolator not in _INTERPOLATORS:
        raise InputError(f"interpolator is {interpolator!r}; need one of {sorted(_INTERPOLATORS)}")

    image = _read_image(image_path, mask_path)
    mask = _read_mask(mask_path, image, structure)
    centre = np.asarray(mask_box_centre(mask, mask_label, mask_path))
    # identity direction: physical point of index i is origin + i * spacing
    origin = centre - np.asarray(spacing) * (np.asarray(size) - 1) / 2.0

    reference = sitk.Image(list(size), sitk.sitkFloat32)
    reference.SetSpacing(spacing)
    reference.SetOrigin(tuple(float(v) for v in origin))
    reference.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))

    resampled = sitk.Resample(
        sitk.Cast(image, sitk.sitkFloat32),
        reference,
        sitk.Transform(),
        _INTERPOLATORS[interpolator],
        AIR_HU,
        sitk.sitkFloat32,
    )
    crop = sitk.GetArrayFromImage(resampled).astype(np.float32, copy=False)
    np.clip(crop, lo, hi, out=crop)
    return crop


def zscore_statistics(crops: np.ndarray) -> tuple[float, float]:
    """``(mean, sd)`` over every voxel of the training crops (float64 sums, sd with ddof = 0).

    Two passes over the crops one at a time (first axis), so no float64 copy of the whole
    cohort is made.
    """
    arr = np.asarray(crops)
    if arr.size == 0:
        raise InputError("crops is empty; need at least one training crop")
    parts = arr.reshape(arr.shape[0] if arr.ndim > 1 else 1, -1)
    total = 0.0
    for i, part in enumerate(parts):
        if not np.all(np.isfinite(part)):
            raise InputError(f"crops: crop {i} holds non-finite values; cannot compute the z-score statistics")
        total += float(np.sum(part, dtype=np.float64))
    mean = total / arr.size
    squares = sum(float(np.sum(np.square(part.astype(np.float64) - mean))) for part in parts)
    sd = (squares / arr.size) ** 0.5
    if not sd > 0:
        raise InputError("crops: every voxel has the same value (sd = 0); cannot z-score")
    return mean, sd


def apply_zscore(crops: np.ndarray, mean: float, sd: float) -> np.ndarray:
    """``(crops - mean) / sd`` as a new float32 array (float32 arithmetic)."""
    if not (np.isfinite(mean) and np.isfinite(sd) and sd > 0):
        raise InputError(f"z-score mean {mean!r}, sd {sd!r}: need finite values and sd > 0")
    out = np.subtract(np.asarray(crops), np.float32(mean), dtype=np.float32)
    out /= np.float32(sd)
    return out


def crop_case(image_path, mask_path, crop: Mapping, mask_label: int = 1, structure: object = None) -> np.ndarray:
    """One case's crop under recorded crop settings (``size_voxels``, ``spacing_mm``,
    ``hu_window``: the protocol's crop section, deep/crops.json or a frozen bundle);
    ``structure``: the selector text of a DICOM mask (the cohort table's ``mask_structure``)."""
    return tumour_crop(image_path, mask_path, mask_label=mask_label, spacing_mm=tuple(crop["spacing_mm"]),
                       size_voxels=tuple(crop["size_voxels"]), hu_window=tuple(crop["hu_window"]),
                       structure=structure)


def cohort_crops(patients, crop: Mapping, zscore: Mapping, mask_label: int = 1) -> np.ndarray:
    """The z-scored crops [N, 1, z, y, x] of ``patients`` (rows with ``image`` and ``mask``),
    made exactly as the deep stage made them (``zscore``: its recorded mean and sd)."""
    volumes = np.stack([crop_case(row.image, row.mask, crop, mask_label, getattr(row, STRUCTURE_COLUMN, None))
                        for row in patients.itertuples(index=False)])[:, None]
    return apply_zscore(volumes, zscore["mean"], zscore["sd"])
