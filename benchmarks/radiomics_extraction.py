"""Benchmark: radiomics extraction with two readers per case, studyrunner vs plain PyRadiomics.

Data: ``../shared/data/nsclc_lung1_real`` (manifest.csv: patient_id,image,mask; 1 mm CT
crops). A second reader is made from each mask by a 1-voxel binary erosion (even rows of
the manifest) or dilation (odd rows), SimpleITK ball radius 1, written to a temporary
folder. Settings of seed 001: resampling to 1 x 1 x 1 mm (B-spline), bin width 25,
Original + Wavelet (8 sub-bands) + LoG (sigma 1-5 mm), all 3D feature classes
(1,316 features per mask).

In the same run:
  (a) plain PyRadiomics: one ``RadiomicsFeatureExtractor`` in this process, ``execute``
      on each case x mask (file paths, so it reads the files itself);
  (b) ``studyrunner.radiomics.extract_cohort`` with ``--workers`` processes and an empty
      cache (each case read, resampled and filtered once for its two masks);
  (c) the same ``extract_cohort`` call again, every case now read from the per-case cache
      (it must return (b)'s tables exactly, and faster than (b));
then the maximum relative difference |a - b| / |a| over every case, mask and feature.
``--union-box-cases N`` also measures, on N cases, how far the values move when both
readers share filters computed once on the union of their boxes (not what studyrunner
does; reported to document why it does not).

Usage: .venv/bin/python benchmarks/radiomics_extraction.py [--limit N] [--workers 2]
Writes benchmarks/results/radiomics_extraction.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import json
import math
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import radiomics
import SimpleITK as sitk
from radiomics import imageoperations
from radiomics.featureextractor import RadiomicsFeatureExtractor

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from studyrunner.radiomics import extract_cohort, radiomics_params  # noqa: E402
from studyrunner.radiomics.execution import LoadedMask, filtered_images, mask_features  # noqa: E402
from studyrunner.radiomics.parameters import build_extractor  # noqa: E402
from studyrunner.radiomics.preprocessing import (  # noqa: E402
    crop,
    prepare_image,
    prepare_mask,
    pyradiomics_crop_box,
)

DEFAULT_DATA = REPO.parent / "shared" / "data" / "nsclc_lung1_real"
READERS = ("reader1", "reader2")


def seed_001_params() -> dict:
    return radiomics_params(
        {"Original": {}, "Wavelet": {}, "LoG": {"sigma": [1.0, 2.0, 3.0, 4.0, 5.0]}},
        "all", bin_width=25.0, bin_count=None, resampled_spacing=[1.0, 1.0, 1.0],
    )


def make_cases(data: Path, folder: Path, limit: int | None) -> list[tuple[str, Path, dict[str, Path]]]:
    """(patient_id, image, {reader1: mask, reader2: eroded or dilated mask})."""
    with open(data / "manifest.csv", newline="") as manifest:
        rows = list(csv.DictReader(manifest))[:limit]
    cases = []
    for number, row in enumerate(rows):
        mask_path = data / row["mask"]
        mask = sitk.ReadImage(str(mask_path))
        change = sitk.BinaryErode if number % 2 == 0 else sitk.BinaryDilate
        second = change(sitk.Cast(mask, sitk.sitkUInt8), [1, 1, 1])
        second_path = folder / f"{row['patient_id']}_reader2.nii.gz"
        sitk.WriteImage(second, str(second_path))
        cases.append((row["patient_id"], data / row["image"], {"reader1": mask_path, "reader2": second_path}))
    return cases


def run_plain(cases, params) -> tuple[dict, dict, dict]:
    """(features[pid][reader], seconds[pid], failures[pid][reader]) with one plain extractor."""
    radiomics.setVerbosity(60)
    extractor = RadiomicsFeatureExtractor(json.loads(json.dumps(params)))
    features, seconds, failures = {}, {}, {}
    for patient_id, image_path, masks in cases:
        started = time.perf_counter()
        for reader, mask_path in masks.items():
            try:
                result = extractor.execute(str(image_path), str(mask_path))
            except Exception as error:  # noqa: BLE001 - recorded, like a failing case in a study
                failures.setdefault(patient_id, {})[reader] = f"{type(error).__name__}: {error}"
                continue
            features.setdefault(patient_id, {})[reader] = {
                k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}
        seconds[patient_id] = time.perf_counter() - started
        print(f"  plain {patient_id}: {seconds[patient_id]:.2f} s", file=sys.stderr, flush=True)
    return features, seconds, failures


def compare(plain: dict, ours: dict) -> dict:
    """Maximum relative difference over case x reader x feature, and where it is."""
    worst, where, n_values, n_identical, n_pairs = 0.0, None, 0, 0, 0
    for patient_id, readers in plain.items():
        for reader, reference in readers.items():
            got = ours.get(patient_id, {}).get(reader)
            if got is None:
                continue
            n_pairs += 1
            if list(got) != list(reference):
                raise SystemExit(f"feature names differ for {patient_id} {reader}")
            a, b = np.array(list(reference.values())), np.array(list(got.values()))
            same = (a == b) | (np.isnan(a) & np.isnan(b))
            n_values += a.size
            n_identical += int(same.sum())
            with np.errstate(divide="ignore", invalid="ignore"):
                relative = np.where(same, 0.0, np.abs(a - b) / np.abs(a))
            if relative.size and np.nanmax(relative) > worst:
                index = int(np.nanargmax(relative))
                worst, where = float(relative[index]), f"{patient_id} {reader} {list(reference)[index]}"
    return {"max_relative_difference": worst, "worst_at": where, "n_values": n_values,
            "n_bit_identical": n_identical, "n_case_masks_compared": n_pairs}


def union_box_features(image_path: Path, masks: dict[str, Path], params: dict) -> dict[str, dict[str, float]]:
    """Both readers' features with the filters computed once on the union of their boxes
    (PyRadiomics' own functions otherwise): the alternative studyrunner does not take."""
    extractor = build_extractor(params)
    settings = extractor.settings.copy()
    image = sitk.ReadImage(str(image_path))
    spacing = settings["resampledPixelSpacing"]
    labelled = {name: imageoperations.getMask(sitk.ReadImage(str(p)), **settings) for name, p in masks.items()}
    boxes = [pyradiomics_crop_box(image, m, spacing, 1, settings["padDistance"]) for m in labelled.values()]
    region = functools.reduce(lambda a, b: a.union(b), boxes)
    prepared = prepare_image(image, spacing, settings["interpolator"], region)
    shared = crop(prepared, region, region, image, spacing)
    filtered = None
    result = {}
    for name, mask in labelled.items():
        item = LoadedMask(name, shared, prepare_mask(mask, shared, 1), "union")
        filtered = filtered or filtered_images(extractor, settings, item.image, item.mask)
        result[name] = mask_features(extractor, settings, item, filtered)
    return result


def union_box_check(cases, plain: dict, params: dict, n_cases: int) -> dict:
    """Max relative difference per image type between union-box filtering and plain."""
    by_type: dict[str, float] = {}
    checked = []
    for patient_id, image_path, masks in cases:
        if len(checked) == n_cases:
            break
        if set(plain.get(patient_id, {})) != set(READERS):
            continue
        ours = union_box_features(image_path, masks, params)
        checked.append(patient_id)
        for reader in READERS:
            for name, reference in plain[patient_id][reader].items():
                value = ours[reader][name]
                image_type = name.split("_")[0]
                difference = 0.0 if value == reference else abs(value - reference) / abs(reference)
                by_type[image_type] = max(by_type.get(image_type, 0.0), difference)
    return {"cases": checked, "max_relative_difference_by_image_type": by_type}


class Meter:
    """Wall seconds, this process's and its children's CPU seconds, and the CPU seconds the
    whole machine spent meanwhile (from /proc/stat), so that other users' load shows."""

    def __init__(self) -> None:
        self.wall, self.own, self.machine = time.perf_counter(), _own_cpu(), _machine_cpu()

    def stop(self) -> dict:
        wall, own, total = time.perf_counter() - self.wall, _own_cpu() - self.own, _machine_cpu() - self.machine
        return {"wall_seconds": wall, "cpu_seconds": own, "machine_cpu_seconds": total,
                "other_processes_cpu_seconds": max(total - own, 0.0),
                "other_processes_mean_cores": max(total - own, 0.0) / wall}


def _own_cpu() -> float:
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def _machine_cpu() -> float:
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def machine() -> dict:
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo
                      if line.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
            "python": platform.python_version(), "pyradiomics": str(radiomics.__version__),
            "simpleitk": sitk.Version_VersionString()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None, help="first N cases of the manifest")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--union-box-cases", type=int, default=0)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "radiomics_extraction.json")
    arguments = parser.parse_args()
    params = seed_001_params()
    started_at = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="radiomics-bench-") as temporary:
        folder = Path(temporary)
        cases = make_cases(arguments.data, folder, arguments.limit)
        print(f"{len(cases)} cases x 2 readers; plain PyRadiomics ...", file=sys.stderr, flush=True)
        meter = Meter()
        plain, plain_seconds, plain_failures = run_plain(cases, params)
        plain_meter = meter.stop()
        plain_total = plain_meter["wall_seconds"]

        print(f"studyrunner extract_cohort, workers={arguments.workers} ...", file=sys.stderr, flush=True)
        meter = Meter()
        tables, failures = extract_cohort(cases, params, folder / "cache", workers=arguments.workers)
        ours_meter = meter.stop()
        ours_total = ours_meter["wall_seconds"]

        print("studyrunner extract_cohort again, from the cache ...", file=sys.stderr, flush=True)
        meter = Meter()
        cached_tables, cached_failures = extract_cohort(cases, params, folder / "cache", workers=arguments.workers)
        cached_meter = meter.stop()
        load_after = os.getloadavg()
        same_from_cache = list(cached_tables) == list(tables) and all(
            cached_tables[reader].equals(tables[reader]) for reader in tables)
        # A failed case is not cached, so it is computed again on the rerun.
        same_from_cache = same_from_cache and cached_failures == failures

        ours = {}
        for reader, table in tables.items():
            for patient_id, row in table.iterrows():
                ours.setdefault(patient_id, {})[reader] = {k: float(v) for k, v in row.items()}
        difference = compare(plain, ours)
        plain_failed = sorted((p, r) for p, readers in plain_failures.items() for r in readers)
        ours_failed = sorted((f["patient_id"], f["mask"]) for f in failures)
        union = union_box_check(cases, plain, params, arguments.union_box_cases) if arguments.union_box_cases else None

    n_features = len(next(iter(next(iter(plain.values())).values())))
    result = {
        "date": started_at,
        "command": "cd /work/main && .venv/bin/python benchmarks/radiomics_extraction.py "
                   + " ".join(sys.argv[1:]),
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "data": str(arguments.data),
        "n_cases": len(cases),
        "readers": list(READERS),
        "n_features_per_mask": n_features,
        "settings": params,
        "plain_pyradiomics": {"total_seconds": plain_total, "seconds_per_case": plain_total / len(cases),
                              "case_seconds": plain_seconds, "failures": plain_failed, **plain_meter},
        "studyrunner": {"workers": arguments.workers, "total_seconds": ours_total,
                        "seconds_per_case": ours_total / len(cases), "failures": ours_failed, **ours_meter},
        "speedup": plain_total / ours_total,
        "studyrunner_cached_rerun": {"total_seconds": cached_meter["wall_seconds"],
                                     "seconds_per_case": cached_meter["wall_seconds"] / len(cases),
                                     "speedup_vs_first_run": ours_total / cached_meter["wall_seconds"],
                                     "same_tables_and_failures": same_from_cache, **cached_meter},
        "same_failures": plain_failed == [tuple(f) for f in ours_failed],
        **difference,
        "union_box_check": union,
    }
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(result, indent=1, default=list))
    print(f"| | plain PyRadiomics (1 process) | studyrunner (workers={arguments.workers}) |")
    print("|---|---|---|")
    print(f"| total seconds ({len(cases)} cases x 2 readers) | {plain_total:.1f} | {ours_total:.1f} |")
    print(f"| seconds per case | {plain_total / len(cases):.2f} | {ours_total / len(cases):.2f} |")
    print(f"| CPU seconds (process + workers) | {plain_meter['cpu_seconds']:.1f} | {ours_meter['cpu_seconds']:.1f} |")
    print(f"| other processes' load (mean cores busy) | {plain_meter['other_processes_mean_cores']:.2f} "
          f"| {ours_meter['other_processes_mean_cores']:.2f} |")
    print(f"| failed case x reader | {len(plain_failed)} | {len(ours_failed)} |")
    print(f"\nrerun from the cache: {cached_meter['wall_seconds']:.2f} s "
          f"({ours_total / cached_meter['wall_seconds']:.1f}x faster than the first run); "
          f"same tables and failures: {same_from_cache}")
    print(f"\nspeed-up {plain_total / ours_total:.2f}x; max relative difference "
          f"{difference['max_relative_difference']:.3g} ({difference['n_bit_identical']} of "
          f"{difference['n_values']} values bit-identical); same failures: {result['same_failures']}")
    if union:
        print(f"union-box filtering on {union['cases']}: "
              f"{json.dumps(union['max_relative_difference_by_image_type'])}")
    if not math.isfinite(result["speedup"]):
        raise SystemExit("no timing")
    if not same_from_cache or cached_meter["wall_seconds"] >= ours_total:
        raise SystemExit("the rerun from the cache must give the same tables, faster than the first run")


if __name__ == "__main__":
    main()
