"""Read one CT volume or mask into a SimpleITK image.

Supported inputs: NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), MetaImage
(``.mha``, ``.mhd``) and a folder holding a DICOM series (read with GDCM through
``SimpleITK.ImageSeriesReader``). Every failure is raised as :class:`ImageReadError`,
which names the path and the reason, so the caller can record why a case was excluded.

ITK reads a truncated or partly corrupted file without an error and fills what is missing
with zeros, so a damaged file would bend the features without a word: before the images
stage reads a file (``verify``), a gzip-compressed file (``.nii.gz``) is decompressed in
full (the gzip CRC and length checked) and a raw file must hold at least the bytes its
header declares (:func:`check_file_integrity`).
"""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path
from typing import ClassVar

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


def read_image(path: Path, series_uid: str | None = None, verify: bool = False) -> sitk.Image:
    """Read an image file, or the DICOM series in a folder.

    ``series_uid`` selects one series when a DICOM folder holds several; it is an error
    to leave it out in that case (the message lists the series found). ``verify`` first
    checks the file's integrity (:func:`check_file_integrity`): the images stage reads every
    case so, and the later stages read only files it passed (their hashes are in the later
    stages' fingerprints), without paying for the check again.
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
        if verify:
            reader.ReadImageInformation()
            check_file_integrity(path, _declared_bytes(reader))
        return reader.Execute()
    except RuntimeError as error:
        raise ImageReadError(path, _itk_reason(error)) from error


def _declared_bytes(reader: sitk.ImageFileReader) -> int:
    """Bytes of voxel data the header declares (size x components x bytes per value; 0 when
    the pixel type has no plain NumPy equivalent, and the check is then skipped)."""
    try:
        probe = sitk.Image([1] * reader.GetDimension(), reader.GetPixelID())
        bytes_per_value = sitk.GetArrayViewFromImage(probe).dtype.itemsize
    except RuntimeError:
        return 0
    return int(np.prod(reader.GetSize())) * reader.GetNumberOfComponents() * bytes_per_value


def check_file_integrity(path: Path, declared_bytes: int) -> None:
    """Raise :class:`ImageReadError` for a damaged file: a gzip stream that is truncated,
    corrupted (CRC) or shorter than the declared voxel data; an uncompressed NIfTI, or a
    NRRD/MetaImage with raw data in the file, shorter than its declared voxel data; a
    floating-point NIfTI holding NaN or infinite voxels (ITK's NIfTI reader silently turns
    them into 0, so they are counted here, in the file's bytes)."""
    name = path.name.lower()
    nifti = name.endswith((".nii", ".nii.gz"))
    if name.endswith(".gz"):
        counter = _NonFiniteCounter() if nifti else None
        length = 0
        try:
            with gzip.open(path, "rb") as stream:
                while block := stream.read(1 << 22):
                    length += len(block)
                    if counter is not None:
                        counter.feed(block)
        except (EOFError, OSError, zlib.error) as error:
            raise ImageReadError(path, f"damaged gzip data ({error}); the file is truncated or corrupted") from error
        if length < declared_bytes:
            raise ImageReadError(path, f"holds {length:,} bytes once decompressed, fewer than the "
                                       f"{declared_bytes:,} bytes of voxel data its header declares")
        _refuse_non_finite(path, counter)
        return
    if nifti or (name.endswith((".nrrd", ".mha")) and _raw_inline(path)):
        size = path.stat().st_size
        if size < declared_bytes:
            raise ImageReadError(path, f"is {size:,} bytes, fewer than the {declared_bytes:,} bytes of voxel "
                                       "data its header declares; the file is truncated")
    if nifti:
        counter = _NonFiniteCounter()
        with open(path, "rb") as handle:
            while block := handle.read(1 << 22):
                counter.feed(block)
        _refuse_non_finite(path, counter)


class _NonFiniteCounter:
    """Counts NaN and infinite values in the voxel data of a NIfTI-1 file fed as a byte
    stream (header: sizeof_hdr 348, datatype at byte 70, vox_offset at byte 108; only
    float32/float64 data are counted)."""

    FLOAT_TYPES: ClassVar[dict[int, str]] = {16: "f4", 64: "f8"}
    HEADER_BYTES = 348

    def __init__(self) -> None:
        self.pending = b""
        self.parsed = False
        self.dtype: np.dtype | None = None
        self.offset = 0
        self.consumed = 0
        self.carry = b""
        self.nan = 0
        self.inf = 0

    def feed(self, block: bytes) -> None:
        if not self.parsed:
            self.pending += block
            if len(self.pending) < self.HEADER_BYTES:
                return
            self._parse_header(self.pending)
            block, self.pending = self.pending, b""
        if self.dtype is None:
            return
        if self.consumed < self.offset:
            skip = min(len(block), self.offset - self.consumed)
            self.consumed += skip
            block = block[skip:]
        self.consumed += len(block)
        data = self.carry + block
        whole = len(data) // self.dtype.itemsize * self.dtype.itemsize
        values = np.frombuffer(data[:whole], dtype=self.dtype)
        self.nan += int(np.isnan(values).sum())
        self.inf += int(np.isinf(values).sum())
        self.carry = data[whole:]

    def _parse_header(self, header: bytes) -> None:
        self.parsed = True
        for order in ("<", ">"):
            if int(np.frombuffer(header[:4], dtype=f"{order}i4")[0]) == self.HEADER_BYTES:
                code = self.FLOAT_TYPES.get(int(np.frombuffer(header[70:72], dtype=f"{order}i2")[0]))
                self.dtype = np.dtype(order + code) if code else None
                self.offset = int(np.frombuffer(header[108:112], dtype=f"{order}f4")[0])
                return


def _refuse_non_finite(path: Path, counter: _NonFiniteCounter | None) -> None:
    if counter is not None and (counter.nan or counter.inf):
        raise ImageReadError(path, f"holds non-finite voxels ({counter.nan} NaN, {counter.inf} infinite), which "
                                   "the NIfTI reader would silently turn into 0")


def _raw_inline(path: Path) -> bool:
    """Whether a NRRD or MetaImage file holds uncompressed voxel data after its header."""
    with open(path, "rb") as handle:
        header = handle.read(4096).decode("latin-1").lower()
    if path.name.lower().endswith(".nrrd"):
        return re.search(r"^encoding:\s*raw\b", header, re.M) is not None and "data file:" not in header
    return "elementdatafile = local" in header and "compresseddata = true" not in header


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
    # A named series present in the folder needs one header scan (the file names), not two.
    file_names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_uid) if series_uid else ()
    series_ids = [str(series_uid)] if file_names else list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))
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
    if not file_names:
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
