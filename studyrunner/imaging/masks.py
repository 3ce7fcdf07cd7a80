"""One entry point for a case's image and tumour mask, whatever the mask's format.

A mask is a NIfTI/NRRD/MetaImage file (read as an image, :func:`read_image`) or a DICOM
file: an RT Structure Set (Modality RTSTRUCT, :mod:`studyrunner.imaging.rtstruct`) or a
Segmentation (Modality SEG, :mod:`studyrunner.imaging.dicom_seg`), both turned into a
mask on the CT grid and selected by a :class:`StructureSelector`. The file's kind is
read from its header alone (pydicom, ``stop_before_pixels``).

A DICOM mask names the series it was drawn on; when the case's image is a folder of
several DICOM series, that series is the one read (:func:`read_case_image`), and a mask
whose series the folder does not hold is refused (the case is excluded with that reason).
:func:`dicom_reference_problems` checks the same from headers only, for
``studyrunner validate``.

Nothing identifying is copied from a DICOM header: the messages name files, ROI names,
segment labels and series UIDs, never PatientName, PatientID, PatientBirthDate or
AccessionNumber, and the returned images carry only the tags of
:data:`studyrunner.imaging.io.DICOM_TAGS_KEPT`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from studyrunner.imaging import dicom_seg, rtstruct
from studyrunner.imaging.io import IMAGE_IO_BY_SUFFIX, ImageReadError, read_image
from studyrunner.imaging.structure import MaskReadError, StructureSelector

# Metadata key of a mask made from a DICOM object: which ROI or segment was used.
STRUCTURE_USED_KEY = "studyrunner|structure"
_DICOM_MASKS = ("RTSTRUCT", "SEG")


@dataclass(frozen=True)
class DicomMaskHeader:
    """What the header of a DICOM mask file says: its Modality and referenced series; and the
    dataset read without pixel data (an RTSTRUCT has none: it is the whole structure set)."""

    modality: str
    referenced_series: tuple[str, ...]
    dataset: Dataset = field(compare=False, repr=False)


def dicom_mask_header(path: Path) -> DicomMaskHeader | None:
    """The header of a DICOM RTSTRUCT/SEG file; None for a NIfTI/NRRD/MetaImage file or a
    folder. Raises :class:`MaskReadError` for a DICOM file of another Modality or one that
    names no referenced series."""
    path = Path(path)
    if path.is_dir() or not path.is_file() or path.name.lower().endswith(tuple(IMAGE_IO_BY_SUFFIX)):
        return None
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError):
        return None  # not DICOM: read_image names the unsupported file type
    modality = str(header.get("Modality", ""))
    if modality not in _DICOM_MASKS:
        raise MaskReadError(path, f"a DICOM mask must be an RTSTRUCT or a SEG; this file's Modality is "
                                  f"{modality or 'missing'} (0008,0060)")
    uids = (rtstruct.referenced_series_uids(header) if modality == "RTSTRUCT"
            else dicom_seg.referenced_series_uids(header))
    if not uids:
        where = ("ReferencedFrameOfReferenceSequence/RTReferencedStudySequence/RTReferencedSeriesSequence"
                 if modality == "RTSTRUCT" else "ReferencedSeriesSequence")
        raise MaskReadError(path, f"the {modality} names no referenced series ({where})")
    return DicomMaskHeader(modality, tuple(uids), header)


def series_in_folder(folder: Path) -> list[str]:
    """SeriesInstanceUIDs of the DICOM series in ``folder`` (GDCM reads headers only)."""
    return list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))


def image_series_uid(image_path: Path, mask_path: Path | None) -> str | None:
    """The series to read from an image folder: the one the DICOM mask references (None for
    a file image, a non-DICOM mask or no mask). Raises :class:`ImageReadError` when the
    folder holds none of the referenced series. Reads headers only."""
    if mask_path is None:
        return None
    header = dicom_mask_header(mask_path)
    if header is None or not Path(image_path).is_dir():
        return None
    present = series_in_folder(Path(image_path))
    for uid in header.referenced_series:
        if uid in present:
            return uid
    raise _series_missing(Path(image_path), Path(mask_path), header, present)


def _series_missing(folder: Path, mask_path: Path, header: DicomMaskHeader, present: list[str]) -> ImageReadError:
    return ImageReadError(folder, f"the mask {mask_path.name} ({header.modality}) references series "
                                  f"{', '.join(header.referenced_series)}, which this folder does not hold "
                                  f"(series present: {', '.join(present) or 'none'})")


def read_case_image(image_path: Path, mask_path: Path | None = None, verify: bool = False) -> sitk.Image:
    """The case's image; from a folder of DICOM series, the series the DICOM mask references
    (a mask naming one series costs no extra scan of the folder's headers)."""
    image_path = Path(image_path)
    try:
        header = dicom_mask_header(mask_path) if mask_path is not None else None
    except MaskReadError:
        header = None  # the mask's own problem is reported when the mask is read
    if mask_path is None or header is None or not image_path.is_dir():
        return read_image(image_path, verify=verify)
    if len(header.referenced_series) > 1:
        return read_image(image_path, image_series_uid(image_path, mask_path), verify=verify)
    uid = header.referenced_series[0]
    try:
        return read_image(image_path, uid, verify=verify)
    except ImageReadError:
        present = series_in_folder(image_path)
        if uid not in present:
            raise _series_missing(image_path, Path(mask_path), header, present) from None
        raise


def read_mask(path: Path, image: sitk.Image | None, structure: StructureSelector | None = None,
              verify: bool = False) -> sitk.Image:
    """The tumour mask of ``path`` on ``image``'s grid (a DICOM mask) or as stored (an image
    file, read with :func:`read_image`). A mask made from DICOM carries the ROI or segment
    used in its metadata (:data:`STRUCTURE_USED_KEY`). Raises :class:`ImageReadError`
    (:class:`MaskReadError` for a DICOM mask) naming the file and the reason."""
    path = Path(path)
    header = dicom_mask_header(path)
    if header is None:
        return read_image(path, verify=verify)
    if image is None:
        raise MaskReadError(path, f"not read: the {header.modality} is made on the image's grid, and the image "
                                  "could not be read")
    try:
        if header.modality == "RTSTRUCT":
            mask, used = rtstruct.rtstruct_mask(header.dataset, path, image, structure)  # not parsed again
        else:
            mask, used = dicom_seg.seg_mask(_read_seg(path), path, image, structure)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise MaskReadError(path, f"malformed {header.modality}: {type(error).__name__}: {error}") from error
    mask.SetMetaData(STRUCTURE_USED_KEY, used)
    return mask


def _read_seg(path: Path):
    import highdicom as hd

    return hd.seg.segread(path)


def structure_used(mask: sitk.Image) -> str | None:
    """The ROI or segment a DICOM mask was made from (None for a mask read from an image file)."""
    return mask.GetMetaData(STRUCTURE_USED_KEY) if mask.HasMetaDataKey(STRUCTURE_USED_KEY) else None


def dicom_reference_problems(image_path: Path, mask_paths: dict[str, Path]) -> list[str]:
    """Headers only: each DICOM mask (``{role: path}``) references a series its image folder
    holds. Returns one sentence per problem (an unreadable DICOM mask header, a referenced
    series missing from the folder); masks in image files are not checked here."""
    problems = []
    for role, mask_path in mask_paths.items():
        try:
            image_series_uid(image_path, mask_path)
        except ImageReadError as error:
            problems.append(f"{role}: {error}")
    return problems


def cohort_reference_problems(clinical: pd.DataFrame) -> list[str]:
    """:func:`dicom_reference_problems` of every case of a cohort table (columns patient_id,
    image, mask[, mask_reader2]), as ``"patient <id>: <problem>"`` sentences."""
    roles = {"mask": "mask", "mask_reader2": "mask2"}
    problems = []
    for row in clinical.to_dict("records"):
        masks = {role: Path(row[column]) for column, role in roles.items()
                 if isinstance(row.get(column), str) and row[column]}
        if isinstance(row.get("image"), str) and row["image"]:
            problems += [f"patient {row['patient_id']}: {problem}"
                         for problem in dicom_reference_problems(Path(row["image"]), masks)]
    return problems
