"""Reading a case from DICOM (CT series + RTSTRUCT or SEG) against the same case from NIfTI.

For each Lung1 crop (``../shared/data/nsclc_lung1_real``, read in place, never copied) the CT
is written as a DICOM CT series and the GTV as an RTSTRUCT (contours traced with
``skimage.measure.find_contours``) and as a DICOM-SEG (highdicom), into a temporary folder
(tests/dicom_cases.py). Then, per case, the median of ``--repeats`` timed reads of:

- **NIfTI**: ``read_image(ct.nii.gz, verify=True)`` + ``read_image(gtv.nii.gz, verify=True)``,
  as the images stage reads a case (gzip CRC and non-finite check included);
- **RTSTRUCT**: ``read_case_image(series folder, rs.dcm, verify=True)`` + ``read_mask(rs.dcm,
  image, selector)`` (series selected by the RTSTRUCT's reference, contours rasterised);
- **SEG**: the same with the SEG file.

``--hospital-size`` pads every crop to 512 x 512 pixels in plane (air, -1024 HU), the matrix
of a clinical CT, to show how the ratio moves once per-file overhead is no longer dominant.
Agreement: Dice of each rasterised mask with the NIfTI mask, and the largest relative
difference of the PyRadiomics features (first order, shape, GLCM; bin width 25) between the
NIfTI case and each DICOM case; the RTSTRUCT is also written with contours simplified as a
planning system exports them (``skimage.measure.approximate_polygon``, tolerance 0.5 voxel),
whose voxels differ from the original mask.

    .venv/bin/python benchmarks/dicom_read.py [--cases 6] [--repeats 7] [--hospital-size] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from skimage.measure import approximate_polygon

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
LUNG1 = REPO.parent / "shared" / "data" / "nsclc_lung1_real"

from studyrunner.imaging.io import read_image  # noqa: E402 - after the repository is on the path
from studyrunner.imaging.masks import read_case_image, read_mask  # noqa: E402
from studyrunner.imaging.structure import StructureSelector  # noqa: E402
from tests.dicom_cases import mask_contours, write_ct_series, write_rtstruct, write_seg  # noqa: E402

SELECTOR = StructureSelector(("GTV-1",))


def padded(image: sitk.Image, value: float, size: int = 512) -> sitk.Image:
    """``image`` centred in a ``size`` x ``size`` matrix (same spacing, origin moved)."""
    pad_x, pad_y = size - image.GetSize()[0], size - image.GetSize()[1]
    return sitk.ConstantPad(image, [pad_x // 2, pad_y // 2, 0], [pad_x - pad_x // 2, pad_y - pad_y // 2, 0], value)


def simplified(contours: list[np.ndarray], image: sitk.Image) -> list[np.ndarray]:
    """Contours with points dropped while the polygon moves by at most half a voxel."""
    tolerance = 0.5 * min(image.GetSpacing()[:2])  # the crops are axial: z is constant along a contour
    kept = [approximate_polygon(np.vstack([c[:, :2], c[:1, :2]]), tolerance)[:-1] for c in contours]
    return [np.column_stack([xy, np.full(len(xy), c[0, 2])]) if len(xy) >= 3 else c  # a 1-voxel island kept whole
            for xy, c in zip(kept, contours, strict=True)]


def timed(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float(np.logical_and(a, b).sum()) / float(a.sum() + b.sum())


def feature_difference(extractor, reference: dict, image: sitk.Image, mask: sitk.Image) -> float:
    """Largest |DICOM - NIfTI| / max(|NIfTI|, 1e-12) over the features."""
    values = extractor.execute(image, mask)
    diffs = [abs(float(values[k]) - reference[k]) / max(abs(reference[k]), 1e-12) for k in reference]
    return max(diffs)


def write_case(patient: str, out: Path, hospital_size: bool) -> dict[str, Path]:
    ct = sitk.ReadImage(str(LUNG1 / "images" / f"{patient}_ct.nii.gz"))
    mask = sitk.ReadImage(str(LUNG1 / "images" / f"{patient}_gtv.nii.gz"))
    if hospital_size:
        ct, mask = padded(ct, -1024), padded(mask, 0)
    ct_nifti, mask_nifti = out / f"{patient}_ct.nii.gz", out / f"{patient}_gtv.nii.gz"
    sitk.WriteImage(ct, str(ct_nifti), True)
    sitk.WriteImage(mask, str(mask_nifti), True)
    series = write_ct_series(ct, out / patient / "ct")
    contours = mask_contours(mask)
    return {"ct_nifti": ct_nifti, "mask_nifti": mask_nifti, "series": series.folder,
            "rtstruct": write_rtstruct(out / patient / "rs.dcm", series, {"GTV-1": contours}),
            "rtstruct_simplified": write_rtstruct(out / patient / "rs_simple.dcm", series,
                                                  {"GTV-1": simplified(contours, ct)}),
            "seg": write_seg(out / patient / "seg.dcm", series, {"GTV": sitk.GetArrayFromImage(mask)})}


def measure_case(patient: str, files: dict[str, Path], repeats: int, extractor) -> dict:
    ct_path, mask_path = files["ct_nifti"], files["mask_nifti"]
    nifti = timed(lambda: (read_image(ct_path, verify=True), read_image(mask_path, verify=True)), repeats)
    row: dict = {"patient_id": patient, "nifti_s": nifti}
    image = read_image(ct_path)
    reference_mask = read_image(mask_path)
    original = sitk.GetArrayFromImage(reference_mask).astype(bool)
    reference = {k: float(v) for k, v in extractor.execute(image, reference_mask).items()
                 if not k.startswith("diagnostics")}
    for kind in ("rtstruct", "seg", "rtstruct_simplified"):
        path = files[kind]

        def read(path: Path = path) -> tuple[sitk.Image, sitk.Image]:
            dicom_image = read_case_image(files["series"], path, verify=True)
            return dicom_image, read_mask(path, dicom_image, SELECTOR)

        if kind != "rtstruct_simplified":
            row[f"{kind}_s"] = timed(read, repeats)
            row[f"{kind}_ratio"] = row[f"{kind}_s"] / nifti
        dicom_image, dicom_mask = read()
        row[f"{kind}_dice"] = dice(sitk.GetArrayFromImage(dicom_mask).astype(bool), original)
        row[f"{kind}_max_rel_feature_diff"] = feature_difference(extractor, reference, dicom_image, dicom_mask)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--hospital-size", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from studyrunner.radiomics.parameters import build_extractor, radiomics_params

    extractor = build_extractor(radiomics_params(
        image_types={"Original": {}}, feature_classes=["firstorder", "shape", "glcm"], bin_width=25, bin_count=None,
        resampled_spacing=None, label=1))
    manifest = [line.split(",")[0] for line in (LUNG1 / "manifest.csv").read_text().splitlines()[1:]]
    patients = [p for p in manifest
                if sitk.GetArrayFromImage(sitk.ReadImage(str(LUNG1 / "images" / f"{p}_gtv.nii.gz"))).any()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for patient in patients[:args.cases]:
            files = write_case(patient, Path(tmp), args.hospital_size)
            rows.append(measure_case(patient, files, args.repeats, extractor))
            print(json.dumps(rows[-1]), flush=True)
    print(table(rows, args))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "python": platform.python_version(),
                                         "hospital_size": args.hospital_size}, indent=1))


def table(rows: list[dict], args: argparse.Namespace) -> str:
    lines = ["| case | NIfTI (ms) | DICOM + RTSTRUCT (ms) | ratio | DICOM + SEG (ms) | ratio | Dice RTSTRUCT | "
             "Dice SEG | Dice simplified RTSTRUCT | max rel. feature diff RTSTRUCT / SEG / simplified |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    lines += [
        f"| {r['patient_id']} | {1e3 * r['nifti_s']:.1f} | {1e3 * r['rtstruct_s']:.1f} | "
        f"{r['rtstruct_ratio']:.2f} | {1e3 * r['seg_s']:.1f} | {r['seg_ratio']:.2f} | "
        f"{r['rtstruct_dice']:.4f} | {r['seg_dice']:.4f} | {r['rtstruct_simplified_dice']:.4f} | "
        f"{r['rtstruct_max_rel_feature_diff']:.2g} / {r['seg_max_rel_feature_diff']:.2g} / "
        f"{r['rtstruct_simplified_max_rel_feature_diff']:.2g} |" for r in rows]
    ratios = [r["rtstruct_ratio"] for r in rows]
    lines.append(f"\nmedian ratio DICOM + RTSTRUCT / NIfTI: {statistics.median(ratios):.2f} "
                 f"(hospital size: {args.hospital_size})")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
