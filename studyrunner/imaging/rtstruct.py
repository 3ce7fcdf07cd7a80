"""A DICOM RT Structure Set ROI as a binary mask on the CT grid.

The structure set (DICOM PS3.3 A.19) gives each ROI (Structure Set ROI Sequence
(3006,0020): ROINumber, ROIName) a list of contours (ROI Contour Sequence (3006,0039) ->
Contour Sequence (3006,0040)); a contour is a polygon of points in the patient coordinate
system, mm (ContourData (3006,0050), x\\y\\z triplets, LPS, the frame of reference of the
CT: PS3.3 C.8.8.6). Only CLOSED_PLANAR contours enclose a region (ContourGeometricType
(3006,0042)); the series they were drawn on is named in Referenced Frame of Reference
Sequence -> RT Referenced Study -> RT Referenced Series -> SeriesInstanceUID (C.8.8.5).

Rasterisation (:func:`rasterise_contours`), in the CT's own index space:

1. every point is mapped to a continuous CT index with the inverse of the image's
   geometry (index = D^-1 (p - origin) / spacing, D the direction cosines), so any
   orientation (flipped, permuted, oblique) and anisotropic spacing is handled exactly as
   SimpleITK's ``TransformPhysicalPointToContinuousIndex`` would;
2. a contour must lie in one CT slice plane: its slice index must be within
   :data:`SLICE_TOLERANCE` (a fraction of the slice gap) of a whole number for every point;
   a contour between slices, tilted across them or on a slice the CT does not have is
   refused, as is a point outside the image's in-plane extent (more than half a voxel
   beyond the first or last voxel centre);
3. each contour is filled on its slice (:func:`studyrunner.imaging.polygon_fill.fill_polygon`:
   voxels whose centre lies inside the polygon or on its boundary, the rule of
   ``skimage.draw.polygon``, which the tests compare it with), and the contours of one slice are combined
   by exclusive or: a contour inside another is a hole, several disjoint contours on one
   slice are several islands (the even-odd rule; PS3.3 C.8.8.6.3 lets inner contours
   describe holes either this way or by a keyhole, which the fill handles as one polygon).
   A contour of one or two points encloses no area: it marks only the voxel centres that
   lie on it (none, as a rule) and is not refused (rt-utils issue #87 shows such contours
   in exported structure sets).

Why our own fill and not rt-utils: rt-utils (qurit/rt-utils) reads the CT series itself
with pydicom and builds the mask in its own slice order, needs OpenCV for ``fillPoly``,
fills each contour separately (holes were over-subtracted until PR #53; ``fillPoly``
raises on 2-point contours, issue #87) and does not refuse contours that fall off the CT's
slices. Here the mask must land on the grid SimpleITK read, with every inconsistency
refused and named; the XOR rule is the one platipy (PR #271) and dcmrtstruct2nii (PR #37)
adopted for holes. The fill is a scan-line fill of our own rather than
``skimage.draw.polygon`` only for speed (see :mod:`studyrunner.imaging.polygon_fill`); the
tests hold it to scikit-image's voxels.

ContourData is parsed from the element's raw bytes with NumPy (one float conversion per
contour): pydicom's DS values build one Python object per number, 0.3 s for the 70,000
numbers of one lung tumour's ROI.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset

from studyrunner.imaging.polygon_fill import fill_polygon
from studyrunner.imaging.structure import MaskReadError, StructureSelector

CONTOUR_DATA_TAG = 0x30060050
# A contour's plane may differ from a CT slice centre by this fraction of the slice gap
# (DS rounding of ContourData); a contour half-way between two slices is refused.
SLICE_TOLERANCE = 0.1
# In-plane points may lie this many voxels beyond the outermost voxel centres (a contour
# around an edge voxel runs half a voxel outside its centre).
EDGE_TOLERANCE_VOXELS = 0.5 + 1e-3


def referenced_series_uids(dataset: Dataset) -> list[str]:
    """SeriesInstanceUIDs the structure set was drawn on (PS3.3 C.8.8.5), in file order."""
    uids = [str(series.SeriesInstanceUID)
            for frame in dataset.get("ReferencedFrameOfReferenceSequence", [])
            for study in frame.get("RTReferencedStudySequence", [])
            for series in study.get("RTReferencedSeriesSequence", [])
            if "SeriesInstanceUID" in series]
    return list(dict.fromkeys(uids))


def roi_names(dataset: Dataset) -> dict[int, str]:
    """ROINumber -> ROIName of every ROI in the structure set."""
    return {int(roi.ROINumber): str(roi.get("ROIName", "")).strip()
            for roi in dataset.get("StructureSetROISequence", [])}


def select_roi(dataset: Dataset, path: Path, selector: StructureSelector | None) -> tuple[int, str]:
    """(ROINumber, ROIName) of the tumour: the first of the selector's names that some ROI
    carries (case-insensitive), or the only ROI when no name is given."""
    names = roi_names(dataset)
    present = ", ".join(repr(n) for n in names.values()) or "none"
    if not names:
        raise MaskReadError(path, "RTSTRUCT has no ROI (StructureSetROISequence is empty)")
    wanted = selector.roi_names if selector else ()
    if not wanted:
        if len(names) > 1:
            raise MaskReadError(path, f"RTSTRUCT holds {len(names)} ROIs ({present}); name the tumour's ROI "
                                      "(cohort.mask_structure.roi_names or the manifest's structure column)")
        return next(iter(names.items()))
    for name in wanted:
        matches = [(number, roi) for number, roi in names.items() if roi.lower() == name.strip().lower()]
        if len(matches) > 1:
            raise MaskReadError(path, f"RTSTRUCT has {len(matches)} ROIs named {name!r} "
                                      f"(ROINumbers {[m[0] for m in matches]}); the name is ambiguous")
        if matches:
            return matches[0]
    raise MaskReadError(path, f"RTSTRUCT has no ROI named any of {list(wanted)} (ROIs present: {present})")


def roi_contours(dataset: Dataset, path: Path, number: int, name: str) -> list[np.ndarray]:
    """The ROI's CLOSED_PLANAR contours as (n, 3) arrays of points (mm); an ROI without
    contours, or with another contour type, is refused."""
    items = [item for item in dataset.get("ROIContourSequence", []) if int(item.ReferencedROINumber) == number]
    contours = [c for item in items for c in item.get("ContourSequence", [])]
    if not contours:
        raise MaskReadError(path, f"RTSTRUCT ROI {name!r} is empty: it has no contour (ContourSequence)")
    arrays = []
    for n, contour in enumerate(contours, start=1):
        kind = str(contour.get("ContourGeometricType", ""))
        if kind != "CLOSED_PLANAR":
            raise MaskReadError(path, f"RTSTRUCT ROI {name!r} contour {n} is {kind or 'of no type'}; only "
                                      "CLOSED_PLANAR contours enclose a region (ContourGeometricType)")
        points = _contour_data(contour)
        if points.size == 0 or points.size % 3:
            raise MaskReadError(path, f"RTSTRUCT ROI {name!r} contour {n} has {points.size} ContourData values; "
                                      "expected x, y, z triplets")
        arrays.append(points.reshape(-1, 3))
    return arrays


def _contour_data(contour: Dataset) -> np.ndarray:
    """ContourData (3006,0050) as floats: from the raw bytes when pydicom has not converted
    the element yet (decimal strings separated by backslashes), else from its values."""
    element = contour.get_item(CONTOUR_DATA_TAG)
    if element is None:
        return np.zeros(0)
    raw = element.value
    if isinstance(raw, bytes):
        text = raw.decode("ascii").strip(" \0")
        return np.array(text.split("\\"), dtype=float) if text else np.zeros(0)
    return np.asarray([float(v) for v in contour.ContourData], dtype=float)


def rasterise_contours(contours: Sequence[np.ndarray], image: sitk.Image, path: Path, name: str) -> np.ndarray:
    """A [z, y, x] uint8 mask on ``image``'s grid filled from ``contours`` (module docstring)."""
    size = np.array(image.GetSize())
    spacing = np.array(image.GetSpacing())
    inverse = np.linalg.inv(np.array(image.GetDirection()).reshape(3, 3))
    origin = np.array(image.GetOrigin())
    mask = np.zeros(size[::-1], dtype=bool)
    for n, points in enumerate(contours, start=1):
        index = ((points - origin) @ inverse.T) / spacing  # continuous (i, j, k)
        k = _slice_of(index[:, 2], size[2], spacing[2], path, f"RTSTRUCT ROI {name!r} contour {n}")
        outside = (index[:, :2] < -EDGE_TOLERANCE_VOXELS) | (index[:, :2] > size[:2] - 1 + EDGE_TOLERANCE_VOXELS)
        if outside.any():
            first = points[np.flatnonzero(outside.any(axis=1))[0]]
            raise MaskReadError(path, f"RTSTRUCT ROI {name!r} contour {n} has {int(outside.any(axis=1).sum())} "
                                      f"point(s) outside the image (e.g. ({first[0]:.2f}, {first[1]:.2f}, "
                                      f"{first[2]:.2f}) mm; image {size[0]} x {size[1]} voxels in plane)")
        mask[k] ^= fill_polygon(index[:, 0], index[:, 1], (int(size[1]), int(size[0])))
    return mask.astype(np.uint8)


def _slice_of(k_values: np.ndarray, n_slices: int, gap_mm: float, path: Path, what: str) -> int:
    """The CT slice a contour lies on; refused when off the slice planes or off the CT."""
    k = int(np.round(np.median(k_values)))
    off = np.abs(k_values - k).max()
    if off > SLICE_TOLERANCE:
        raise MaskReadError(path, f"{what} does not lie in a CT slice plane: its points are up to {off * gap_mm:.3g} "
                                  f"mm from slice {k} (tolerance {SLICE_TOLERANCE * gap_mm:.3g} mm); is the contour "
                                  "between slices, or tilted across them?")
    if not 0 <= k < n_slices:
        raise MaskReadError(path, f"{what} lies on a slice the CT does not have (slice index {k}; the CT has "
                                  f"slices 0 to {n_slices - 1})")
    return k


def rtstruct_mask(dataset: Dataset, path: Path, image: sitk.Image,
                  selector: StructureSelector | None) -> tuple[sitk.Image, str]:
    """The selected ROI of the structure set ``dataset`` (read from ``path``) as a uint8 mask
    (1 inside) on ``image``'s grid, and a note naming the ROI that was used."""
    number, name = select_roi(dataset, path, selector)
    mask = rasterise_contours(roi_contours(dataset, path, number, name), image, path, name)
    if not mask.any():
        raise MaskReadError(path, f"RTSTRUCT ROI {name!r} covers no voxel centre of the image")
    result = sitk.GetImageFromArray(mask)
    result.CopyInformation(image)
    return result, f"RTSTRUCT ROI {name!r}"
