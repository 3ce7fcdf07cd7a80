"""Hospital-style DICOM test data written at test time: a CT series, an RTSTRUCT, a DICOM-SEG.

Everything is made from numpy arrays and a SimpleITK geometry (origin, spacing, direction),
so a test knows the exact voxels a reader must give back:

* :func:`write_ct_series` writes one CT Image Storage file per slice (DICOM PS3.3 A.3: Image
  Plane module C.7.6.2 with ImagePositionPatient of each slice, ImageOrientationPatient from
  the direction's first two columns, PixelSpacing as row spacing \\ column spacing);
* :func:`write_rtstruct` writes an RT Structure Set (PS3.3 A.19; ROI Contour module
  C.8.8.6, CLOSED_PLANAR contours in patient coordinates, mm) from contours given in
  physical points; :func:`mask_contours` traces them from a binary mask slice by slice with
  ``skimage.measure.find_contours`` (level 0.5, so each contour runs half-way between
  voxel centres inside and outside);
* :func:`write_seg` writes a DICOM Segmentation (PS3.3 A.51) with highdicom from binary
  masks on the CT grid.

Every object carries the identifying attributes of :data:`IDENTIFYING` (PatientName,
PatientID, PatientBirthDate, AccessionNumber): tests grep every output of a run for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from skimage import measure

# Distinctive strings that must never reach an output of a run.
IDENTIFYING = {
    "PatientName": "Zyxwvut^Qpalzm",
    "PatientID": "PIDX93817465",
    "PatientBirthDate": "19230517",
    "AccessionNumber": "ACCX5550192",
}

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


@dataclass
class CtSeries:
    """A written CT series: its folder, UIDs and the datasets (slice order = image k)."""

    folder: Path
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    datasets: list[Dataset]


def _file_dataset(path: Path, sop_class: str, sop_instance: str) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    for keyword, value in IDENTIFYING.items():
        setattr(ds, keyword, value)
    ds.PatientSex = "O"
    ds.StudyDate = "20200101"
    ds.StudyTime = "120000"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    return ds


def write_ct_series(image: sitk.Image, folder: Path, series_uid: str | None = None, study_uid: str | None = None,
                    frame_of_reference_uid: str | None = None, series_number: int = 1) -> CtSeries:
    """Write ``image`` (integer HU) as a CT series of ``image.GetSize()[2]`` files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_uid = frame_of_reference_uid or generate_uid()
    array = sitk.GetArrayFromImage(image).astype(np.int16)  # [z, y, x]
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = image.GetSpacing()
    orientation = [*direction[:, 0], *direction[:, 1]]
    datasets = []
    for k in range(array.shape[0]):
        uid = generate_uid()
        ds = _file_dataset(folder / f"ct_{series_number}_{k:04d}.dcm", CT_IMAGE_STORAGE, uid)
        ds.Modality = "CT"
        ds.Manufacturer = "studyrunner-tests"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.SeriesNumber, ds.InstanceNumber = series_number, k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in orientation]
        ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]
        ds.SliceThickness = f"{spacing[2]:.6f}"
        ds.KVP = "120"
        ds.Rows, ds.Columns = array.shape[1], array.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "HU"
        ds.PixelData = np.ascontiguousarray(array[k]).tobytes()
        ds.save_as(folder / f"ct_{series_number}_{k:04d}.dcm", enforce_file_format=True)
        datasets.append(ds)
    return CtSeries(folder, study_uid, series_uid, frame_uid, datasets)


def mask_contours(mask: sitk.Image, label: int = 1) -> list[np.ndarray]:
    """Closed planar contours (each an (n, 3) array of physical points, mm) around the
    voxels equal to ``label``, one or more per slice; a hole gives an inner contour."""
    array = sitk.GetArrayFromImage(mask) == label
    direction = np.array(mask.GetDirection()).reshape(3, 3)
    origin, spacing = np.array(mask.GetOrigin()), np.array(mask.GetSpacing())
    contours = []
    for k in np.flatnonzero(array.any(axis=(1, 2))):
        padded = np.pad(array[k].astype(float), 1)
        for rows_cols in measure.find_contours(padded, 0.5):
            ij = rows_cols[:-1, ::-1] - 1.0  # (column i, row j) of the unpadded slice; last point repeats the first
            index = np.column_stack([ij, np.full(len(ij), float(k))])
            contours.append(origin + (index * spacing) @ direction.T)
    return contours


def write_rtstruct(path: Path, ct: CtSeries, rois: Mapping[str, Sequence[np.ndarray]],
                   referenced_series_uid: str | None = None) -> Path:
    """An RTSTRUCT on ``ct`` with one ROI per name: its closed planar contours (physical
    points, mm). ``referenced_series_uid`` overrides the series the structure set names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = _file_dataset(path, RT_STRUCTURE_SET_STORAGE, generate_uid())
    ds.Modality = "RTSTRUCT"
    ds.Manufacturer = "studyrunner-tests"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = ct.study_uid, generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = 99, 1
    ds.FrameOfReferenceUID = ct.frame_of_reference_uid
    ds.StructureSetLabel = "test"
    ds.StructureSetDate, ds.StructureSetTime = "20200101", "120000"
    series = Dataset()
    series.SeriesInstanceUID = referenced_series_uid or ct.series_uid
    series.ContourImageSequence = DicomSequence([_image_ref(d) for d in ct.datasets])
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study.ReferencedSOPInstanceUID = ct.study_uid
    study.RTReferencedSeriesSequence = DicomSequence([series])
    frame = Dataset()
    frame.FrameOfReferenceUID = ct.frame_of_reference_uid
    frame.RTReferencedStudySequence = DicomSequence([study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame])
    ds.StructureSetROISequence = DicomSequence()
    ds.ROIContourSequence = DicomSequence()
    ds.RTROIObservationsSequence = DicomSequence()
    for number, (name, contours) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID = number, ct.frame_of_reference_uid
        roi.ROIName, roi.ROIGenerationAlgorithm = name, "MANUAL"
        ds.StructureSetROISequence.append(roi)
        roi_contour = Dataset()
        roi_contour.ReferencedROINumber = number
        roi_contour.ROIDisplayColor = [255, 0, 0]
        roi_contour.ContourSequence = DicomSequence()
        for points in contours:
            contour = Dataset()
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = len(points)
            contour.ContourData = [f"{v:.4f}" for v in np.asarray(points, float).ravel()]
            roi_contour.ContourSequence.append(contour)
        ds.ROIContourSequence.append(roi_contour)
        observation = Dataset()
        observation.ObservationNumber, observation.ReferencedROINumber = number, number
        observation.RTROIInterpretedType, observation.ROIInterpreter = "GTV", ""
        ds.RTROIObservationsSequence.append(observation)
    ds.save_as(path, enforce_file_format=True)
    return path


def _image_ref(ct_slice: Dataset) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID = ct_slice.SOPClassUID
    ref.ReferencedSOPInstanceUID = ct_slice.SOPInstanceUID
    return ref


def write_seg(path: Path, ct: CtSeries, segments: Mapping[str, np.ndarray]) -> Path:
    """A BINARY DICOM-SEG on ``ct`` (highdicom), one segment per label, numbered from 1 in
    the given order; each mask is a [z, y, x] array on the CT grid (slice k = ``ct.datasets[k]``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stacked = np.stack([np.asarray(m, bool) for m in segments.values()], axis=-1).astype(np.uint8)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number, segment_label=label,
            segmented_property_category=hd.sr.CodedConcept("49755003", "SCT", "Morphologically Altered Structure"),
            segmented_property_type=hd.sr.CodedConcept("108369006", "SCT", "Neoplasm"),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for number, label in enumerate(segments, start=1)]
    seg = hd.seg.Segmentation(
        source_images=ct.datasets, pixel_array=stacked, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=generate_uid(), series_number=98,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="studyrunner-tests",
        manufacturer_model_name="tests", software_versions="1", device_serial_number="1")
    seg.save_as(path)
    return path


def geometry_image(array_zyx: np.ndarray, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0),
                   direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)) -> sitk.Image:
    """A SimpleITK image of ``array_zyx`` on the given grid."""
    image = sitk.GetImageFromArray(array_zyx)
    image.SetSpacing([float(v) for v in spacing])
    image.SetOrigin([float(v) for v in origin])
    image.SetDirection([float(v) for v in direction])
    return image
