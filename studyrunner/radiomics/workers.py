"""Run cases (one image, its masks) in this process or in a pool of spawned worker processes.

Each case is read with the project's one image reader (:func:`studyrunner.imaging.io.read_image`)
and extracted with :func:`studyrunner.radiomics.execution.extract_masks_with`; a failure
is returned as a reason per mask, never raised, so one case never stops the others.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import SimpleITK as sitk
from radiomics.featureextractor import RadiomicsFeatureExtractor

from studyrunner.cluster import LOCAL, cluster_session
from studyrunner.imaging.masks import read_case_image, read_mask
from studyrunner.imaging.structure import StructureSelector
from studyrunner.radiomics.execution import extract_masks_with, failure_reason
from studyrunner.radiomics.parameters import build_extractor

# (patient_id, {mask_name: features}, {mask_name: reason}) of one computed case.
CaseResult = tuple[str, dict[str, dict[str, float]], dict[str, str]]


@dataclass(frozen=True)
class CaseFiles:
    """The files of one case to compute: its image and its (readable) masks by name, and
    the text of the :class:`~studyrunner.imaging.structure.StructureSelector` of its DICOM
    masks (empty: none)."""

    patient_id: str
    image_path: Path
    mask_paths: Mapping[str, Path]
    structure: str = ""


def run_cases(cases: list[CaseFiles], params: Mapping[str, Any], workers: int,
              cluster: str = LOCAL) -> Iterator[CaseResult]:
    """Yield each case's result as it finishes.

    ``workers > 1`` (and more than one case) runs whole cases in that many spawned
    processes, each building its extractor once, the largest cases first; SimpleITK's
    threads are shared out between the workers. ``cluster`` other than ``local`` runs
    them as tasks of that Dask cluster instead (:mod:`studyrunner.cluster`; ``workers``
    is then the cluster's), the largest cases first too.
    """
    if not cases:
        return
    if cluster != LOCAL:
        yield from _run_on_cluster(cases, params, cluster)
        return
    if workers <= 1 or len(cases) == 1:
        extractor = build_extractor(params)
        for case in cases:
            yield extract_case_files(extractor, case)
        return
    workers = min(workers, len(cases))
    ordered = largest_first(cases)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(dict(params), max(1, (os.cpu_count() or 1) // workers)),
    ) as pool:
        futures = [pool.submit(_extract_in_worker, case) for case in ordered]
        for future in as_completed(futures):
            yield future.result()


def extract_case_files(extractor: RadiomicsFeatureExtractor, case: CaseFiles) -> CaseResult:
    """Read the case's image and masks and extract every mask; never raises."""
    try:
        image = read_case_image(case.image_path, next(iter(case.mask_paths.values()), None))
    except Exception as error:  # noqa: BLE001 - any failure excludes this case only
        return case.patient_id, {}, {name: failure_reason(error) for name in case.mask_paths}
    masks: dict[str, sitk.Image | str] = {}
    for name, path in case.mask_paths.items():
        try:
            masks[name] = read_mask(path, image, StructureSelector.from_text(case.structure))
        except Exception as error:  # noqa: BLE001 - this mask only
            masks[name] = failure_reason(error)
    try:
        features, reasons = extract_masks_with(extractor, image, masks)
    except Exception as error:  # noqa: BLE001
        return case.patient_id, {}, {name: failure_reason(error) for name in case.mask_paths}
    return case.patient_id, features, reasons


def largest_first(cases: list[CaseFiles]) -> list[CaseFiles]:
    """Largest cases first (mask file bytes as the measure of work), so that no worker is
    left with a large case at the end while the others are idle."""
    return sorted(cases, key=work_estimate, reverse=True)


# The reason of a case whose task killed every worker that ran it (Dask's KilledWorker, whose
# own message names the task's random key: not repeatable between runs).
LOST_CASE = ("KilledWorker: every Dask worker that computed this case died (Dask's allowed-failures); "
             "reading or extracting it crashes the process")


def _run_on_cluster(cases: list[CaseFiles], params: Mapping[str, Any], cluster: str) -> Iterator[CaseResult]:
    """The cases as tasks of a Dask cluster; each worker builds its extractor once. A case
    whose task kept killing its workers is a failure of that case, like any other."""
    with cluster_session(cluster) as executor:
        assert executor is not None  # cluster is not local
        first = cases[0]
        executor.check_paths([first.image_path, *first.mask_paths.values()])
        threads = executor.worker_threads()
        yield from executor.map_unordered(
            _extract_on_cluster_worker, largest_first(cases), dict(params), threads,
            on_lost=lambda case, error: (case.patient_id, {}, dict.fromkeys(case.mask_paths, LOST_CASE)))


def work_estimate(case: CaseFiles) -> int:
    """Bytes of the case's mask files (every file of a DICOM folder): a proxy for its work."""
    total = 0
    for path in case.mask_paths.values():
        files = path.rglob("*") if path.is_dir() else [path]
        total += sum(f.stat().st_size for f in files if f.is_file())
    return total


# Worker-process state: each worker builds its extractor once (see _init_worker).
_worker_extractor: RadiomicsFeatureExtractor | None = None


def _init_worker(params: Mapping[str, Any], threads: int) -> None:
    global _worker_extractor
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    _worker_extractor = build_extractor(params)


def _extract_in_worker(case: CaseFiles) -> CaseResult:
    assert _worker_extractor is not None, "worker not initialised"
    return extract_case_files(_worker_extractor, case)


# Dask worker state: one extractor per worker process and settings (see _extract_on_cluster_worker).
_cluster_extractors: dict[str, RadiomicsFeatureExtractor] = {}


def _extract_on_cluster_worker(params: dict[str, Any], threads: Mapping[str, int], case: CaseFiles) -> CaseResult:
    """A Dask task: the case with this worker's extractor, built on its first task (a
    restarted worker builds it again) with its share of the host's cores for SimpleITK."""
    key = json.dumps(params, sort_keys=True, default=str)
    if key not in _cluster_extractors:
        from distributed import get_worker

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads.get(get_worker().address, 1))
        _cluster_extractors[key] = build_extractor(params)
    return extract_case_files(_cluster_extractors[key], case)
