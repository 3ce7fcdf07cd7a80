"""Image preprocessing for radiomics, done once per case and shared by all its masks.

PyRadiomics (van Griethuysen et al., Cancer Res 2017;77:e104-e107) resamples inside
``RadiomicsFeatureExtractor.execute`` for every image/mask pair: ``loadImage`` ->
(``normalizeImage``) -> ``resampleImage``, which resamples only a box around the mask
(the mask's bounding box plus ``padDistance`` voxels, default 5) onto a grid aligned to
the input's first voxel corner, B-spline (or the chosen interpolator) for the image and
nearest neighbour for the mask. The filters (wavelet, LoG, ...) then run on that padded
box, and the features on the box cropped to the mask.

To read and resample an image once when a case has several masks (readers), this module
builds the same grid once (:func:`prepare_image`, over a region covering every mask's
box) and cuts each mask's box out of it (:func:`pyradiomics_crop_box`, :func:`crop`).
Every grid point is interpolated from the whole input image exactly as PyRadiomics does,
so the crops have PyRadiomics' values voxel for voxel (checked by the tests against
``imageoperations.resampleImage``). The mask is resampled with nearest neighbour
(:func:`prepare_mask`), as PyRadiomics does: a linear interpolation of the binary mask
thresholded at 0.5 is smoother but would give other ROIs than a plain PyRadiomics run, so
it is not used.

The filtered images themselves depend on the box they are computed on (the stationary
wavelet pads periodically at the box faces, the recursive-Gaussian LoG has boundary
conditions there), so they are shared only between masks whose boxes are identical; see
:mod:`studyrunner.radiomics.execution`.

Grey-level discretisation (``binWidth`` or ``binCount``) is applied by PyRadiomics' feature
classes on the ROI, from the parameter dict (:func:`~studyrunner.radiomics.parameters.radiomics_params`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from radiomics import imageoperations


@dataclass(frozen=True)
class LatticeBox:
    """A box of grid indices (x, y, z order, as SimpleITK): first index and size."""

    index: tuple[int, ...]
    size: tuple[int, ...]

    def union(self, other: LatticeBox) -> LatticeBox:
        low = [min(a, b) for a, b in zip(self.index, other.index, strict=True)]
        high = [max(a + s, b + t) for a, s, b, t in zip(self.index, self.size, other.index, other.size, strict=True)]
        return LatticeBox(tuple(low), tuple(h - lo for h, lo in zip(high, low, strict=True)))


def interpolator_code(interpolator: str | int) -> int:
    """SimpleITK interpolator constant from its name (``"sitkBSpline"``) or the constant."""
    if isinstance(interpolator, str):
        code = getattr(sitk, interpolator, None)
        if not isinstance(code, int) or not interpolator.startswith("sitk"):
            raise ValueError(f"unknown SimpleITK interpolator {interpolator!r}")
        return code
    return int(interpolator)


def target_spacing(reference: sitk.Image, spacing: Sequence[float]) -> np.ndarray:
    """The output spacing (mm): a 0 keeps ``reference``'s spacing in that direction
    (PyRadiomics' rule for in-plane-only resampling)."""
    wanted = np.asarray(spacing, dtype=float)
    if wanted.size != reference.GetDimension():
        raise ValueError(
            f"resampled spacing {list(spacing)} has {wanted.size} values; the image is "
            f"{reference.GetDimension()}-D"
        )
    return np.where(wanted == 0, np.asarray(reference.GetSpacing()), wanted)


def full_lattice(image: sitk.Image, spacing: Sequence[float]) -> LatticeBox:
    """The whole resampled grid over ``image``: size ceil(size * old/new spacing)."""
    new = target_spacing(image, spacing)
    if _keeps_spacing(image, new):
        return LatticeBox((0,) * image.GetDimension(), tuple(image.GetSize()))
    ratio = np.asarray(image.GetSpacing()) / new
    size = np.ceil(np.asarray(image.GetSize()) * ratio).astype(int)
    return LatticeBox((0,) * image.GetDimension(), tuple(int(s) for s in size))


def prepare_image(
    image: sitk.Image,
    spacing: Sequence[float],
    interpolator: str | int = "sitkBSpline",
    region: LatticeBox | None = None,
) -> sitk.Image:
    """``image`` resampled to ``spacing`` (mm) on PyRadiomics' grid.

    The grid starts half a new voxel inside the first input voxel's corner (continuous
    index ``(new - old) / (2 old)``), as in ``radiomics.imageoperations.resampleImage``,
    keeps the pixel type (a CT stays integer) and the direction. ``region`` (indices of
    that grid, e.g. the union of the masks' boxes) limits the output to a part of the
    grid; the values are the same as in the whole grid because the B-spline coefficients
    always come from the whole input image. When the spacing already equals ``spacing``
    (numpy ``allclose``, PyRadiomics' test) the image is not interpolated, only cut to
    ``region``.
    """
    new = target_spacing(image, spacing)
    whole = full_lattice(image, spacing)
    region = region or whole
    if any(i < 0 or i + s > w for i, s, w in zip(region.index, region.size, whole.size, strict=True)):
        raise ValueError(f"region {region} lies outside the resampled grid of size {whole.size}")
    if _keeps_spacing(image, new):
        return sitk.RegionOfInterest(image, list(region.size), list(region.index))
    old = np.asarray(image.GetSpacing())
    ratio = old / new
    start = 0.5 * (new - old) / old + np.asarray(region.index) / ratio
    resampler = sitk.ResampleImageFilter()
    resampler.SetOutputSpacing(new.tolist())
    resampler.SetOutputDirection(image.GetDirection())
    resampler.SetSize([int(s) for s in region.size])
    resampler.SetOutputOrigin(image.TransformContinuousIndexToPhysicalPoint(start.tolist()))
    resampler.SetOutputPixelType(image.GetPixelID())
    resampler.SetInterpolator(interpolator_code(interpolator))
    return resampler.Execute(image)


def prepare_mask(mask: sitk.Image, reference_image: sitk.Image, label: int = 1,
                 label_channel: int = 0) -> sitk.Image:
    """``mask`` on ``reference_image``'s grid, by nearest neighbour, as UInt32.

    The label values are kept (the ROI is the voxels equal to ``label``). A segmentation
    stored as a vector image gives its channel ``label_channel``. Raises ``ValueError``
    when the mask holds no label or not ``label`` (PyRadiomics' ``getMask`` check).
    Nearest neighbour is PyRadiomics' choice and keeps the values identical to a plain
    PyRadiomics run (see the module docstring).
    """
    return resample_mask(imageoperations.getMask(mask, label=label, label_channel=label_channel), reference_image)


def resample_mask(labelled: sitk.Image, reference_image: sitk.Image) -> sitk.Image:
    """A scalar label map on ``reference_image``'s grid by nearest neighbour, pixel type kept."""
    resampler = sitk.ResampleImageFilter()
    resampler.SetReferenceImage(reference_image)
    resampler.SetInterpolator(sitk.sitkNearestNeighbor)
    resampler.SetOutputPixelType(labelled.GetPixelID())
    return resampler.Execute(labelled)


def same_grid(image: sitk.Image, mask: sitk.Image) -> bool:
    """Whether ``mask`` has exactly ``image``'s size, spacing, origin and direction."""
    return (
        image.GetSize() == mask.GetSize()
        and image.GetSpacing() == mask.GetSpacing()
        and image.GetOrigin() == mask.GetOrigin()
        and image.GetDirection() == mask.GetDirection()
    )


def roi_box(mask: sitk.Image, label: int) -> LatticeBox:
    """Bounding box of the voxels equal to ``label`` (``ValueError`` when there are none)."""
    statistics = sitk.LabelShapeStatisticsImageFilter()
    statistics.Execute(sitk.Cast(mask, sitk.sitkUInt32))
    if label not in statistics.GetLabels():
        raise ValueError(f"Label ({label}) not present in mask")
    box = statistics.GetBoundingBox(label)
    dimension = mask.GetDimension()
    return LatticeBox(tuple(box[:dimension]), tuple(box[dimension:]))


def pyradiomics_crop_box(
    image: sitk.Image, mask: sitk.Image, spacing: Sequence[float], label: int, pad_distance: int
) -> LatticeBox | None:
    """The box of the resampled grid that ``imageoperations.resampleImage`` returns for
    this mask, or None when PyRadiomics would use another grid for it.

    PyRadiomics takes the mask's bounding box, widens it to whole new voxels (floor of the
    lower and ceil of the upper face, in new-voxel units) plus ``pad_distance`` voxels and
    clips it to the grid. When the spacing is unchanged it pads the box by
    ``pad_distance`` voxels, clipped to the image. The grid differs (None) when the mask's
    geometry differs from the image's, or when the ROI spans a single slice in a
    direction that would be resampled (PyRadiomics keeps that direction's spacing).
    """
    if not same_grid(image, mask):
        return None
    box = roi_box(mask, label)
    old = np.asarray(mask.GetSpacing())
    new = target_spacing(mask, spacing)
    new = np.where(np.asarray(box.size) != 1, new, old)
    if not np.array_equal(new, target_spacing(mask, spacing)):
        return None
    lower_roi, size_roi = np.asarray(box.index), np.asarray(box.size)
    if _keeps_spacing(image, new):
        size = np.asarray(mask.GetSize())
        lower = np.maximum(lower_roi - pad_distance, 0)
        upper = np.minimum(lower_roi + size_roi - 1 + pad_distance, size - 1)
    else:
        ratio = old / new
        lower = np.floor((lower_roi - 0.5) * ratio - pad_distance)
        upper = np.ceil((lower_roi + size_roi - 0.5) * ratio + pad_distance)
        top = np.ceil(np.asarray(mask.GetSize()) * ratio) - 1
        lower = np.where(lower < 0, 0, lower)
        upper = np.where(upper > top, top, upper)
    return LatticeBox(tuple(int(v) for v in lower), tuple(int(v) for v in upper - lower + 1))


def crop(prepared: sitk.Image, region: LatticeBox, box: LatticeBox, original: sitk.Image,
         spacing: Sequence[float]) -> sitk.Image:
    """The part ``box`` of an image prepared over ``region`` (both in grid indices).

    The origin is set to the value PyRadiomics computes for this box (from the continuous
    index in ``original``'s grid), so the crop matches PyRadiomics' resampled image in its
    geometry as well as in its values.
    """
    offset = [b - r for b, r in zip(box.index, region.index, strict=True)]
    if any(o < 0 for o in offset) or any(
        o + s > r for o, s, r in zip(offset, box.size, region.size, strict=True)
    ):
        raise ValueError(f"box {box} is not inside the prepared region {region}")
    piece = sitk.RegionOfInterest(prepared, list(box.size), offset)
    new = target_spacing(original, spacing)
    if not _keeps_spacing(original, new):
        old = np.asarray(original.GetSpacing())
        start = 0.5 * (new - old) / old + np.asarray(box.index) / (old / new)
        piece.SetOrigin(original.TransformContinuousIndexToPhysicalPoint(start.tolist()))
    return piece


def _keeps_spacing(image: sitk.Image, new: np.ndarray) -> bool:
    """PyRadiomics' test for "no interpolation needed" (numpy allclose defaults)."""
    return bool(np.allclose(np.asarray(image.GetSpacing()), new))
