"""Check that an image and its tumour mask share one grid, and describe the tumour.

:func:`check_geometry` lists every problem as a sentence with the numbers in it;
:func:`load_case` reads one case, checks it and measures the tumour (voxel count,
volume, maximum 3D diameter, slice thickness). Neither raises for a problem of the case
itself: the runner excludes the case and records the sentences as the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist

from studyrunner.imaging.io import ImageReadError
from studyrunner.imaging.masks import read_case_image, read_mask, structure_used
from studyrunner.imaging.structure import StructureSelector

SLICE_THICKNESS_TAG = "0018|0050"
_MAX_VALUES_LISTED = 10


@dataclass
class CaseLoadResult:
    """One case as read: the images (None where unreadable), its problems and measures.

    ``info`` keys (present once image and mask were read as 3D images): ``size`` (voxels,
    x, y, z), ``spacing_mm``, ``slice_thickness_mm``, ``mask_voxel_count``,
    ``tumour_volume_ml`` and ``max_diameter_mm``.
    """

    patient_id: str
    image: sitk.Image | None
    mask: sitk.Image | None
    mask2: sitk.Image | None
    problems: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    mask2_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the case has no problem and can be analysed (a bad second mask only
        leaves the case out of the reproducibility analysis: see ``mask2_problems``)."""
        return not self.problems


def check_geometry(
    image: sitk.Image,
    mask: sitk.Image,
    tolerance: float = 1e-3,
    label: int = 1,
    mask_name: str = "mask",
) -> list[str]:
    """Problems that keep ``mask`` from being used with ``image``, as sentences.

    Checked: both 3D with one value per voxel; same size; spacing, origin (mm) and
    direction cosines equal within ``tolerance`` (absolute); the mask holds voxels equal
    to ``label`` and no value other than 0 and ``label``. ``mask_name`` names the mask in
    the sentences (e.g. ``mask2``).
    """
    problems = []
    for name, img in (("image", image), (mask_name, mask)):
        if img.GetDimension() != 3:
            problems.append(f"{name} is {img.GetDimension()}D; a 3D volume is required")
        if img.GetNumberOfComponentsPerPixel() != 1:
            problems.append(
                f"{name} has {img.GetNumberOfComponentsPerPixel()} components per voxel; "
                "a scalar volume is required"
            )
    if problems:
        return problems
    if mask.GetSize() != image.GetSize():
        problems.append(
            f"{mask_name} size {mask.GetSize()} differs from image size {image.GetSize()}"
        )
    for what, getter in (
        ("spacing", sitk.Image.GetSpacing),
        ("origin", sitk.Image.GetOrigin),
        ("direction", sitk.Image.GetDirection),
    ):
        mask_values, image_values = np.array(getter(mask)), np.array(getter(image))
        if np.max(np.abs(mask_values - image_values)) > tolerance:
            problems.append(
                f"{mask_name} {what} {_rounded(mask_values)} differs from image {what} "
                f"{_rounded(image_values)} by more than {tolerance:g}"
            )
    problems.extend(_label_problems(mask, label, mask_name))
    return problems


def load_case(
    patient_id: str,
    image_path: Path,
    mask_path: Path,
    mask2_path: Path | None = None,
    label: int = 1,
    tolerance: float = 1e-3,
    structure: StructureSelector | None = None,
) -> CaseLoadResult:
    """Read and check one case; a per-case problem is recorded, never raised.

    ``mask2_path`` is an optional second segmentation of the same tumour (e.g. a second
    reader's), checked against the image like the first; its problems are recorded apart
    (``mask2_problems``) because they exclude the case from the reproducibility analysis only.
    A mask may be a DICOM RTSTRUCT or SEG (:mod:`studyrunner.imaging.masks`): ``structure``
    selects its ROI or segment, the image folder's series is the one it references, and the
    structure used is recorded in ``info["mask_structure"]``.
    """
    problems: list[str] = []
    mask2_problems: list[str] = []
    image = _read_or_record(image_path, "image", problems, mask_path)
    mask = _read_mask_or_record(mask_path, image, structure, "mask", problems)
    mask2 = None if mask2_path is None else _read_mask_or_record(mask2_path, image, structure, "mask2",
                                                                  mask2_problems)
    info: dict[str, Any] = {}
    if image is not None and mask is not None:
        geometry = check_geometry(image, mask, tolerance, label)
        problems.extend(geometry)
        if not geometry:
            problems.extend(non_finite_problems(image, mask, label))
        if image.GetDimension() == 3 and mask.GetDimension() == 3:
            info = _case_info(image, mask, label)
        if structure_used(mask):
            info["mask_structure"] = structure_used(mask)
    if image is not None and mask2 is not None:
        mask2_problems.extend(check_geometry(image, mask2, tolerance, label, mask_name="mask2"))
    return CaseLoadResult(patient_id, image, mask, mask2, problems, info, mask2_problems)


def non_finite_problems(image: sitk.Image, mask: sitk.Image, label: int = 1) -> list[str]:
    """NaN or infinite voxels of a floating-point image, as sentences: inside the mask they
    would enter every feature; outside it, resampling and the filters (LoG, wavelet) spread
    them into the tumour. Either excludes the case."""
    if image.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
        return []
    values = sitk.GetArrayViewFromImage(image)
    bad = ~np.isfinite(values)
    if not bad.any():
        return []
    inside = bad & (sitk.GetArrayViewFromImage(mask) == label)
    n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
    where = (f"{int(inside.sum())} of them inside the tumour mask" if inside.any()
             else "none inside the tumour mask, but resampling and filters would spread them into it")
    return [f"image has non-finite voxels ({n_nan} NaN, {n_inf} infinite; {where})"]


def max_diameter_mm(mask: sitk.Image, label: int = 1) -> float:
    """Largest distance (mm) between the centres of two voxels of the ROI (``== label``).

    Only surface voxels (ROI voxels with a 6-neighbour outside the ROI) can be farthest
    apart; their physical coordinates (origin, spacing and direction applied) are reduced
    to the vertices of their convex hull, among which the largest pairwise distance is
    taken. NaN for an empty ROI, 0 for a single voxel.
    """
    roi = sitk.GetArrayFromImage(mask) == label
    surface = roi & ~ndimage.binary_erosion(roi, structure=ndimage.generate_binary_structure(3, 1))
    indices_zyx = np.argwhere(surface)
    if len(indices_zyx) == 0:
        return float("nan")
    points = _physical_points(mask, indices_zyx[:, ::-1])
    if len(points) >= 4:
        points = points[_hull_vertices(points)]
    if len(points) == 1:
        return 0.0
    return float(pdist(points).max())


def _hull_vertices(points: np.ndarray) -> np.ndarray:
    """Indices of the convex-hull vertices; a flat or straight ROI is joggled (Qhull QJ)."""
    try:
        return ConvexHull(points).vertices
    except QhullError:
        return ConvexHull(points, qhull_options="QJ").vertices


def _physical_points(image: sitk.Image, indices_xyz: np.ndarray) -> np.ndarray:
    direction = np.array(image.GetDirection()).reshape(3, 3)
    scaled = indices_xyz * np.array(image.GetSpacing())
    return np.array(image.GetOrigin()) + scaled @ direction.T


def _case_info(image: sitk.Image, mask: sitk.Image, label: int) -> dict[str, Any]:
    spacing = image.GetSpacing()
    voxel_count = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask) == label))
    voxel_volume_mm3 = float(np.prod(mask.GetSpacing()))
    return {
        "size": tuple(int(n) for n in image.GetSize()),
        "spacing_mm": tuple(float(s) for s in spacing),
        "slice_thickness_mm": _slice_thickness_mm(image),
        "mask_voxel_count": voxel_count,
        "tumour_volume_ml": voxel_count * voxel_volume_mm3 / 1000.0,
        "max_diameter_mm": max_diameter_mm(mask, label),
    }


def _slice_thickness_mm(image: sitk.Image) -> float:
    """The DICOM SliceThickness when the image came from DICOM, else the z spacing."""
    if image.HasMetaDataKey(SLICE_THICKNESS_TAG):
        try:
            return float(image.GetMetaData(SLICE_THICKNESS_TAG))
        except ValueError:
            pass
    return float(image.GetSpacing()[2])


def _label_problems(mask: sitk.Image, label: int, mask_name: str) -> list[str]:
    values = np.unique(sitk.GetArrayFromImage(mask))
    listed = ", ".join(f"{v:g}" for v in values[:_MAX_VALUES_LISTED])
    if len(values) > _MAX_VALUES_LISTED:
        listed += f", ... ({len(values)} distinct values)"
    problems = []
    if label not in values:
        problems.append(
            f"{mask_name} has no voxel equal to label {label} (values present: {listed})"
        )
    if not set(values.tolist()) <= {0, label}:
        problems.append(
            f"{mask_name} is not binary: values present {listed}; expected only 0 and {label}"
        )
    return problems


def _rounded(values: np.ndarray) -> tuple[float, ...]:
    return tuple(round(float(v), 6) for v in values)


def _read_or_record(path: Path, role: str, problems: list[str], mask_path: Path | None = None) -> sitk.Image | None:
    """The image (from a DICOM folder, the series a DICOM mask at ``mask_path`` references)."""
    try:
        return read_case_image(Path(path), mask_path, verify=True)
    except ImageReadError as error:
        problems.append(f"{role}: {error}")
        return None


def _read_mask_or_record(path: Path, image: sitk.Image | None, structure: StructureSelector | None, role: str,
                         problems: list[str]) -> sitk.Image | None:
    """The mask (a DICOM mask on ``image``'s grid; without the image it cannot be made)."""
    try:
        return read_mask(Path(path), image, structure, verify=True)
    except ImageReadError as error:
        problems.append(f"{role}: {error}")
        return None
