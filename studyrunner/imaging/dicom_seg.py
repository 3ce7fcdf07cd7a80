"""A DICOM Segmentation (DICOM-SEG) segment as a binary mask on the CT grid.

A SEG (DICOM PS3.3 A.51; Segmentation Image module C.8.20.2) is one multi-frame object:
each frame holds one segment (SegmentIdentificationSequence -> ReferencedSegmentNumber) on
one plane (PlanePositionSequence -> ImagePositionPatient, shared PlaneOrientationSequence and
PixelMeasuresSequence); the segments are described in SegmentSequence (SegmentNumber,
SegmentLabel). Empty frames are usually left out. The source series is named in
ReferencedSeriesSequence -> SeriesInstanceUID (Common Instance Reference module, C.12.2).

Read with highdicom (Herrmann et al., J Digit Imaging 2022;35:1719-1737), which decodes the
frames (BINARY: one bit per pixel) and stacks them into a volume by plane position
(``Segmentation.get_volume``). The volume is then put on the CT grid with highdicom's
``Volume.match_geometry``: axes permuted, flipped, padded and cropped, never resampled;
a SEG whose planes are not the CT's (another orientation, a spacing that differs, an
offset of a fraction of a voxel) is refused, as is a segment with voxels outside the CT
(``match_geometry`` would crop them silently) and a voxel spacing that differs from the
CT's (``match_geometry`` would subsample by a whole factor).
"""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import SimpleITK as sitk

from studyrunner.imaging.structure import MaskReadError, StructureSelector

# Direction cosines and offsets (in voxels) must agree this closely to match the CT grid.
GRID_TOLERANCE = 1e-3


def referenced_series_uids(segmentation: hd.seg.Segmentation | object) -> list[str]:
    """SeriesInstanceUIDs of the source series (ReferencedSeriesSequence), in file order."""
    sequence = getattr(segmentation, "ReferencedSeriesSequence", None) or []
    return list(dict.fromkeys(str(item.SeriesInstanceUID) for item in sequence if "SeriesInstanceUID" in item))


def select_segment(segmentation: hd.seg.Segmentation, path: Path,
                   selector: StructureSelector | None) -> tuple[int, str]:
    """(SegmentNumber, SegmentLabel) of the tumour: the selector's segment number, or the
    segment whose label matches (case-insensitive), or the only segment."""
    labels = {int(d.SegmentNumber): str(d.get("SegmentLabel", "")).strip() for d in segmentation.SegmentSequence}
    present = ", ".join(f"{n} {label!r}" for n, label in labels.items()) or "none"
    wanted = selector.segment if selector else None
    if wanted is None:
        if len(labels) != 1:
            raise MaskReadError(path, f"SEG holds {len(labels)} segments ({present}) and none is named; give the "
                                      "segment number or label (cohort.mask_structure.segment or the manifest's "
                                      "structure column)")
        return next(iter(labels.items()))
    if isinstance(wanted, int) or str(wanted).isdigit():
        number = int(wanted)
        if number in labels:
            return number, labels[number]
        raise MaskReadError(path, f"SEG has no segment number {number} (segments present: {present})")
    matches = [(n, label) for n, label in labels.items() if label.lower() == str(wanted).strip().lower()]
    if len(matches) != 1:
        found = "no segment" if not matches else f"{len(matches)} segments"
        raise MaskReadError(path, f"SEG has {found} labelled {wanted!r} (segments present: {present})")
    return matches[0]


def ct_geometry(image: sitk.Image) -> hd.VolumeGeometry:
    """The CT grid as a highdicom geometry: array axes (slice k, row j, column i) as in
    ``sitk.GetArrayFromImage``, affine columns = direction column x spacing (LPS, mm)."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = np.array(image.GetSpacing())
    affine = np.eye(4)
    affine[:3, 0] = direction[:, 2] * spacing[2]
    affine[:3, 1] = direction[:, 1] * spacing[1]
    affine[:3, 2] = direction[:, 0] * spacing[0]
    affine[:3, 3] = image.GetOrigin()
    return hd.VolumeGeometry(affine, tuple(image.GetSize())[::-1], "PATIENT")


def segment_on_grid(segmentation: hd.seg.Segmentation, path: Path, number: int, label: str,
                    image: sitk.Image) -> np.ndarray:
    """The segment's voxels as a [z, y, x] uint8 array on ``image``'s grid (module docstring)."""
    what = f"SEG segment {number} {label!r}"
    try:
        volume = segmentation.get_volume(segment_numbers=[number], combine_segments=True, relabel=True,
                                         dtype=np.uint8)
    except (RuntimeError, ValueError) as error:
        raise MaskReadError(path, f"{what}: its frames do not form a regular volume ({error})") from error
    n_voxels = int(np.count_nonzero(volume.array))
    if n_voxels == 0:
        raise MaskReadError(path, f"{what} is empty (no frame holds a voxel of it)")
    target = ct_geometry(image)
    _check_spacing(volume, target, path, what)
    try:
        matched = volume.match_geometry(target, tol=GRID_TOLERANCE)
    except RuntimeError as error:
        raise MaskReadError(path, f"{what}: its planes do not lie on the CT grid ({error})") from error
    array = np.asarray(matched.array, dtype=np.uint8)
    lost = n_voxels - int(np.count_nonzero(array))
    if lost:
        raise MaskReadError(path, f"{what} has {lost} of its {n_voxels} voxels outside the CT image")
    return array


def _check_spacing(volume: hd.Volume, target: hd.VolumeGeometry, path: Path, what: str) -> None:
    """Refuse a SEG whose voxel spacing along some CT axis differs from the CT's."""
    for unit, spacing in zip(target.unit_vectors(), target.spacing, strict=True):
        for other_unit, other_spacing in zip(volume.unit_vectors(), volume.spacing, strict=True):
            if abs(abs(float(unit @ other_unit)) - 1.0) < GRID_TOLERANCE:
                if abs(other_spacing - spacing) > GRID_TOLERANCE * spacing:
                    raise MaskReadError(path, f"{what}: voxel spacing {other_spacing:.4g} mm differs from the "
                                              f"CT's {spacing:.4g} mm along the same axis (resampling refused)")
                break


def seg_mask(segmentation: hd.seg.Segmentation, path: Path, image: sitk.Image,
             selector: StructureSelector | None) -> tuple[sitk.Image, str]:
    """The selected segment as a uint8 mask (1 inside) on ``image``'s grid, and a note naming
    the segment that was used."""
    number, label = select_segment(segmentation, path, selector)
    array = segment_on_grid(segmentation, path, number, label, image)
    result = sitk.GetImageFromArray(array)
    result.CopyInformation(image)
    return result, f"SEG segment {number} {label!r}"
