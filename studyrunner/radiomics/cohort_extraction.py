"""Radiomics features of a cohort: one feature table per mask name, cached per case.

PyRadiomics (van Griethuysen et al., Cancer Res 2017;77:e104-e107) through
:mod:`studyrunner.radiomics.execution`; cases are looked up in the per-case cache
(:mod:`studyrunner.radiomics.cache`) and only the missing ones are computed
(:mod:`studyrunner.radiomics.workers`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from studyrunner.radiomics.cache import CaseFeatures, cache_file, input_digest, read_cache, write_cache
from studyrunner.radiomics.workers import CaseFiles, run_cases

logger = logging.getLogger(__name__)

Case = tuple[str, Path, Path]
MultiMaskCase = tuple[str, Path, Mapping[str, Path]]
Progress = Callable[[int, int], None]
# {mask_name: feature table} and one {"patient_id", "mask", "stage", "reason"} per failure.
CohortFeatures = tuple[dict[str, pd.DataFrame], list[dict[str, str]]]

# The mask name a (patient_id, image_path, mask_path) case is filed under.
SINGLE_MASK = "mask"


def extract_cohort(
    cases: Sequence[Case] | Sequence[MultiMaskCase],
    params: Mapping[str, Any],
    cache_dir: Path,
    workers: int = 1,
    progress: Progress | None = None,
    cluster: str = "local",
    structures: Mapping[str, str] | None = None,
) -> CohortFeatures:
    """Features of every case, cached per case; the image of a case is prepared once.

    ``cases`` are either ``(patient_id, image_path, {mask_name: mask_path})`` (several
    readers) or ``(patient_id, image_path, mask_path)``, which is the mask name
    :data:`SINGLE_MASK` (``"mask"``); the two forms may not be mixed.

    Returns ``({mask_name: table}, failures)`` whatever the form: one table per mask name
    (names in the order first met; index ``patient_id`` in the order of ``cases``, columns
    in PyRadiomics' order) and one ``{"patient_id", "mask", "stage": "radiomics",
    "reason"}`` per case and mask that could not be read or that PyRadiomics failed on;
    the other masks of that case are still extracted, and the other cases go on.

    A case whose cache file exists is not recomputed (its key covers the settings, the
    PyRadiomics version, the image and every mask file); a case with a failed mask is not
    cached. ``workers > 1`` runs whole cases in that many spawned processes (largest
    masks first); ``cluster`` (``dask:N``, a scheduler address) runs them as tasks of a
    Dask cluster instead (:mod:`studyrunner.cluster`), the cache still read and written
    here. ``progress(done, total)`` is called once the cache has been looked up and after
    each computed case. ``structures``: patient_id -> the text of the structure selector of
    the case's DICOM masks (:mod:`studyrunner.imaging.structure`; part of the cache key).
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cohort = _cohort_cases(cases, structures or {})
    results: dict[str, CaseFeatures] = {}
    failures: dict[str, dict[str, str]] = {}
    pending: list[_CohortCase] = []
    for case in cohort:
        cached = _look_up_cache(case, params, cache_dir)
        if cached is not None:
            results[case.patient_id] = cached
        elif case.mask_paths:
            pending.append(case)
        else:
            failures[case.patient_id] = dict(case.unreadable)
    done = len(cohort) - len(pending)
    if progress and done:
        progress(done, len(cohort))
    by_id = {case.patient_id: case for case in pending}
    files = [CaseFiles(case.patient_id, case.image_path, case.mask_paths, case.structure) for case in pending]
    for patient_id, features, reasons in run_cases(files, params, workers, cluster):
        case = by_id[patient_id]
        reasons = {**case.unreadable, **reasons}
        reasons = {name: reasons[name] for name in case.mask_names if name in reasons}
        results[patient_id] = features
        if reasons:
            failures[patient_id] = reasons
            for name, reason in reasons.items():
                logger.warning("radiomics failed for %s (%s): %s", patient_id, name, reason)
        elif case.cache_file is not None:
            write_cache(case.cache_file, patient_id, features)
        done += 1
        if progress:
            progress(done, len(cohort))
    return _tables(cohort, results), [
        {"patient_id": case.patient_id, "mask": name, "stage": "radiomics", "reason": reason}
        for case in cohort
        for name, reason in failures.get(case.patient_id, {}).items()
    ]


@dataclass
class _CohortCase:
    """One case: its mask names, the readable mask files, unreadable ones with the
    reason, and the cache file (None when some file could not be read: not cached)."""

    patient_id: str
    image_path: Path
    mask_names: list[str]
    mask_paths: dict[str, Path]
    unreadable: dict[str, str] = field(default_factory=dict)
    cache_file: Path | None = None
    structure: str = ""


def _cohort_cases(cases: Sequence[Any], structures: Mapping[str, str]) -> list[_CohortCase]:
    """One case per input, masks by name; refuses duplicated ids, mixed or empty mask sets."""
    kinds = {isinstance(case[2], Mapping) for case in cases}
    if len(kinds) > 1:
        raise ValueError("cases mix (patient_id, image, mask) and (patient_id, image, {name: mask}) forms")
    multi = kinds == {True}
    patient_ids = [str(case[0]) for case in cases]
    duplicated = sorted({p for p in patient_ids if patient_ids.count(p) > 1})
    if duplicated:
        raise ValueError(f"duplicated patient_id in the cases: {', '.join(duplicated)}")
    cohort = []
    for patient_id, (_, image_path, masks) in zip(patient_ids, cases, strict=True):
        mask_paths = {str(n): Path(m) for n, m in masks.items()} if multi else {SINGLE_MASK: Path(masks)}
        if not mask_paths:
            raise ValueError(f"case {patient_id} has no mask")
        cohort.append(_CohortCase(patient_id, Path(image_path), list(mask_paths), mask_paths,
                                  structure=structures.get(patient_id) or ""))
    return cohort


def _look_up_cache(case: _CohortCase, params: Mapping[str, Any], cache_dir: Path) -> CaseFeatures | None:
    """The cached features of ``case``, or None; fills ``case.cache_file`` and records
    unreadable files in ``case.unreadable`` (then removed from ``case.mask_paths``)."""
    try:
        image_digest = input_digest(case.image_path)
    except OSError as error:
        reason = f"cannot read image {error.filename}: {error.strerror}"
        case.unreadable = dict.fromkeys(case.mask_names, reason)
        case.mask_paths = {}
        return None
    mask_digests = {}
    for name, path in list(case.mask_paths.items()):
        try:
            mask_digests[name] = input_digest(path) + (f" {case.structure}" if case.structure else "")
        except OSError as error:
            case.unreadable[name] = f"cannot read image {error.filename}: {error.strerror}"
            del case.mask_paths[name]
    if case.unreadable:
        return None
    case.cache_file = cache_file(cache_dir, case.patient_id, params, image_digest, mask_digests)
    return read_cache(case.cache_file)


def _tables(cohort: list[_CohortCase], results: Mapping[str, CaseFeatures]) -> dict[str, pd.DataFrame]:
    """One table per mask name (in the order first met) of the cases that have it."""
    mask_names = list(dict.fromkeys(name for case in cohort for name in case.mask_names))
    patient_ids = [case.patient_id for case in cohort]
    return {
        name: _feature_table({p: results[p][name] for p in patient_ids if name in results.get(p, {})})
        for name in mask_names
    }


def _feature_table(rows: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Rows in the order given; columns in the order first met (PyRadiomics' order)."""
    columns: dict[str, None] = {}
    for features in rows.values():
        columns.update(dict.fromkeys(features))
    table = pd.DataFrame(list(rows.values()), columns=list(columns), dtype=float)
    table.index = pd.Index(list(rows), name="patient_id", dtype=object)
    return table
