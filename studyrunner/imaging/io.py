"""Read one CT volume or mask into a SimpleITK image.

Supported inputs: NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), MetaImage
(``.mha``, ``.mhd``) and a folder holding a DICOM series (read with GDCM through
``SimpleITK.ImageSeriesReader``). Every failure is raised as :class:`ImageReadError`,
which names the path and the reason, so the caller can record why a case was excluded.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

IMAGE_IO_BY_SUFFIX: dict[str, str] = {
    ".nii.gz": "NiftiImageIO",
    ".nii": "NiftiImageIO",
    ".nrrd": "NrrdImageIO",
    ".nhdr": "NrrdImageIO",
    ".mha": "MetaImageIO",
    ".mhd": "MetaImageIO",
}

# DICOM tags of the first slice copied into the returned image's metadata (reported later).
DICOM_TAGS_KEPT: dict[str, str] = {
    "0008|0060": "Modality",
    "0008|0070": "Manufacturer",
    "0018|0050": "SliceThickness",
    "0018|0060": "KVP",
    "0018|1210": "ConvolutionKernel",
    "0020|000e": "SeriesInstanceUID",
}
IMAGE_POSITION_TAG = "0020|0032"

# Gaps between consecutive DICOM slice positions may differ by this much (mm) before the
# series is refused as non-uniform (missing or duplicated slices).
SLICE_GAP_TOLERANCE_MM = 0.01

_ITK_ERROR_PREFIX = re.compile(r"(?:itk::)?ERROR:\s*\w+\(0x[0-9a-fA-F]+\):\s*")


class ImageReadError(Exception):
    """An image could not be read; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")


def read_image(path: Path, series_uid: str | None = None) -> sitk.Image:
    """Read an image file, or the DICOM series in a folder.

    ``series_uid`` selects one series when a DICOM folder holds several; it is an error
    to leave it out in that case (the message lists the series found).
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "no such file or folder")
    if path.is_dir():
        return _read_dicom_series(path, series_uid)
    if series_uid is not None:
        raise ImageReadError(path, "a series UID applies only to a DICOM series folder")
    reader = sitk.ImageFileReader()
    reader.SetImageIO(_image_io_for(path))
    reader.SetFileName(str(path))
    try:
        return reader.Execute()
    except RuntimeError as error:
        raise ImageReadError(path, _itk_reason(error)) from error


def _image_io_for(path: Path) -> str:
    name = path.name.lower()
    for suffix, image_io in IMAGE_IO_BY_SUFFIX.items():
        if name.endswith(suffix):
            return image_io
    supported = ", ".join(IMAGE_IO_BY_SUFFIX)
    raise ImageReadError(
        path, f"unsupported file type; expected one of {supported} or a DICOM series folder"
    )


def _itk_reason(error: RuntimeError) -> str:
    """The informative part of an ITK exception message, on one line."""
    message = _ITK_ERROR_PREFIX.split(str(error))[-1]
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return "; ".join(lines)


def _read_dicom_series(folder: Path, series_uid: str | None) -> sitk.Image:
    series_ids = list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))
    if not series_ids:
        raise ImageReadError(folder, "no DICOM series found in the folder")
    if series_uid is None:
        if len(series_ids) > 1:
            raise ImageReadError(
                folder,
                f"the folder holds {len(series_ids)} DICOM series ({', '.join(series_ids)}); "
                "give the series UID to read",
            )
        series_uid = series_ids[0]
    elif series_uid not in series_ids:
        raise ImageReadError(
            folder, f"series {series_uid} not found; the folder holds {', '.join(series_ids)}"
        )
    file_names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_uid)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(file_names)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise ImageReadError(folder, _itk_reason(error)) from error
    _check_uniform_slices(folder, reader, len(file_names), image)
    for tag in DICOM_TAGS_KEPT:
        if reader.HasMetaDataKey(0, tag):
            image.SetMetaData(tag, reader.GetMetaData(0, tag).strip())
    return image


def _check_uniform_slices(
    folder: Path, reader: sitk.ImageSeriesReader, n_slices: int, image: sitk.Image
) -> None:
    """Refuse a series whose slice positions are not evenly spaced (missing slices)."""
    if n_slices < 3 or not all(
        reader.HasMetaDataKey(i, IMAGE_POSITION_TAG) for i in range(n_slices)
    ):
        return
    positions = np.array(
        [
            [float(v) for v in reader.GetMetaData(i, IMAGE_POSITION_TAG).split("\\")]
            for i in range(n_slices)
        ]
    )
    normal = np.array(image.GetDirection()).reshape(3, 3)[:, 2]
    gaps = np.diff(np.sort(positions @ normal))
    if gaps.max() - gaps.min() > SLICE_GAP_TOLERANCE_MM:
        raise ImageReadError(
            folder,
            f"slice spacing is not uniform: gaps between consecutive slices range from "
            f"{gaps.min():.4g} to {gaps.max():.4g} mm (missing or duplicated slices?)",
        )
