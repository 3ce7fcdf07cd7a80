"""Radiomics feature extraction with PyRadiomics, cached per case.

PyRadiomics: van Griethuysen JJM, Fedorov A, Parmar C, et al. Computational Radiomics
System to Decode the Radiographic Phenotype. Cancer Res 2017;77(21):e104-e107.
doi:10.1158/0008-5472.CAN-17-0339. Feature definitions follow its documentation, which
in turn follows the IBSI (Zwanenburg et al., Radiology 2020;295:328-338).

A parameter dict built by :func:`radiomics_params` is the single description of an
extraction: it is written to the run as YAML (:func:`write_params_file`), it builds the
``RadiomicsFeatureExtractor``, and its hash (with the input files' SHA-256 and the
PyRadiomics version) names each case's cache file, so a case is recomputed only when its
inputs or the settings change.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import multiprocessing
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import radiomics
import SimpleITK as sitk
import yaml
from radiomics.featureextractor import RadiomicsFeatureExtractor

from studyrunner.imaging.io import read_image
from studyrunner.run_folder import sha256_file

logger = logging.getLogger(__name__)

Case = tuple[str, Path, Path]
Progress = Callable[[int, int], None]

# Settings set by radiomics_params' own arguments; extra_settings may not repeat them.
_EXPLICIT_SETTINGS = ("binWidth", "binCount", "resampledPixelSpacing", "interpolator", "label")
# shape2D needs force2D; "all" means every 3D feature class.
_TWO_D_ONLY_CLASSES = ("shape2D",)


def radiomics_params(
    image_types: Mapping[str, Mapping[str, Any] | None],
    feature_classes: Sequence[str] | Literal["all"],
    bin_width: float | None,
    bin_count: int | None,
    resampled_spacing: Sequence[float] | None,
    interpolator: str = "sitkBSpline",
    label: int = 1,
    extra_settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A PyRadiomics parameter dict (the structure of a PyRadiomics parameter file).

    - ``image_types``: input images features are computed on, each with its options, e.g.
      ``{"Original": {}, "LoG": {"sigma": [1.0, 3.0]}, "Wavelet": {}}``.
    - ``feature_classes``: ``"all"`` (every 3D class: firstorder, shape, glcm, glrlm,
      glszm, gldm, ngtdm) or a list of class names; each class is enabled with all its
      features.
    - ``bin_width`` / ``bin_count``: grey-level discretisation, exactly one of the two.
      A fixed bin width (e.g. 25 HU) keeps bins comparable across CT patients and is the
      PyRadiomics recommendation; a fixed bin count rescales each ROI's range.
    - ``resampled_spacing``: voxel size (mm, x y z) to resample image and mask to before
      extraction, or None to keep the native grid.
    - ``interpolator``: SimpleITK interpolator for the image when resampling (the mask is
      always resampled with nearest neighbour).
    - ``label``: the mask value that marks the tumour.
    - ``extra_settings``: further PyRadiomics settings (e.g. ``voxelArrayShift``,
      ``normalize``, ``resegmentRange``, ``geometryTolerance``); they may not repeat the
      settings above.

    ``additionalInfo`` (the ``diagnostics_*`` entries) is off: only feature values are
    kept. The dict is validated by building an extractor from it; a bad value raises
    ``ValueError`` with PyRadiomics' message.
    """
    if (bin_width is None) == (bin_count is None):
        raise ValueError(
            f"give exactly one of bin_width and bin_count (got bin_width={bin_width}, "
            f"bin_count={bin_count})"
        )
    extra = dict(extra_settings or {})
    repeated = sorted(set(extra) & set(_EXPLICIT_SETTINGS))
    if repeated:
        raise ValueError(f"extra_settings repeats settings given as arguments: {', '.join(repeated)}")
    settings: dict[str, Any] = {"additionalInfo": False, "label": int(label), "interpolator": interpolator}
    if bin_width is not None:
        settings["binWidth"] = float(bin_width)
    else:
        settings["binCount"] = int(bin_count)  # type: ignore[arg-type]
    if resampled_spacing is not None:
        settings["resampledPixelSpacing"] = [float(s) for s in resampled_spacing]
    settings.update(copy.deepcopy(extra))
    params = {
        "imageType": {
            name: dict(copy.deepcopy(options or {}))
            for name, options in _checked_image_types(image_types).items()
        },
        "featureClass": {name: [] for name in _checked_feature_classes(feature_classes)},
        "setting": settings,
    }
    try:
        _build_extractor(params)
    except Exception as error:  # pykwalify raises its own SchemaError
        raise ValueError(f"invalid PyRadiomics settings: {error}") from error
    return params


def write_params_file(params: Mapping[str, Any], path: Path) -> None:
    """Write ``params`` as a PyRadiomics YAML parameter file (loadable by PyRadiomics)."""
    Path(path).write_text(yaml.safe_dump(dict(params), sort_keys=True, default_flow_style=False))


def extract_case(image: sitk.Image, mask: sitk.Image, params: Mapping[str, Any]) -> dict[str, float]:
    """Feature values of one case, in PyRadiomics' order (``<imagetype>_<class>_<feature>``)."""
    return _extract_features(_build_extractor(params), image, mask)


def extract_cohort(
    cases: Sequence[Case],
    params: Mapping[str, Any],
    cache_dir: Path,
    workers: int = 1,
    progress: Progress | None = None,
) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Features of every case (``(patient_id, image_path, mask_path)``), cached per case.

    Returns the feature table (index ``patient_id`` in the order of ``cases``, columns in
    PyRadiomics' order) and one ``{"patient_id", "stage": "radiomics", "reason"}`` per
    case that could not be read or that PyRadiomics failed on; the other cases go on.
    A case whose cache file ``<patient_id>-<key>.json`` exists is not recomputed; failures
    are not cached. ``workers > 1`` runs cases in that many spawned processes.
    ``progress(done, total)`` is called once the cache has been looked up and after each
    computed case.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    patient_ids = [str(case[0]) for case in cases]
    duplicated = sorted({p for p in patient_ids if patient_ids.count(p) > 1})
    if duplicated:
        raise ValueError(f"duplicated patient_id in the cases: {', '.join(duplicated)}")
    results: dict[str, dict[str, float]] = {}
    failures: dict[str, str] = {}
    pending: dict[str, tuple[Case, Path]] = {}
    for patient_id, image_path, mask_path in ((str(c[0]), Path(c[1]), Path(c[2])) for c in cases):
        try:
            cache_file = cache_dir / f"{_safe_name(patient_id)}-{_cache_key(params, image_path, mask_path)}.json"
        except OSError as error:
            failures[patient_id] = f"cannot read image {error.filename}: {error.strerror}"
            continue
        if cache_file.exists():
            results[patient_id] = json.loads(cache_file.read_text())["features"]
        else:
            pending[patient_id] = ((patient_id, image_path, mask_path), cache_file)
    done = len(results) + len(failures)
    if progress and done:
        progress(done, len(cases))
    for patient_id, features, reason in _run_pending([c for c, _ in pending.values()], params, workers):
        if reason is None:
            results[patient_id] = features
            _write_cache(pending[patient_id][1], patient_id, features)
        else:
            failures[patient_id] = reason
            logger.warning("radiomics failed for %s: %s", patient_id, reason)
        done += 1
        if progress:
            progress(done, len(cases))
    return _feature_table(patient_ids, results), [
        {"patient_id": p, "stage": "radiomics", "reason": failures[p]} for p in patient_ids if p in failures
    ]


def _checked_image_types(
    image_types: Mapping[str, Mapping[str, Any] | None],
) -> Mapping[str, Mapping[str, Any] | None]:
    known = radiomics.getImageTypes()
    unknown = [name for name in image_types if name not in known]
    if unknown or not image_types:
        raise ValueError(
            f"unknown or no image types {unknown}; PyRadiomics offers {', '.join(sorted(known))}"
        )
    return image_types


def _checked_feature_classes(feature_classes: Sequence[str] | Literal["all"]) -> list[str]:
    known = list(radiomics.getFeatureClasses())
    if feature_classes == "all":
        return [name for name in known if name not in _TWO_D_ONLY_CLASSES]
    unknown = [name for name in feature_classes if name not in known]
    if unknown or not feature_classes:
        raise ValueError(
            f"unknown or no feature classes {unknown}; PyRadiomics offers {', '.join(known)}"
        )
    return list(feature_classes)


def _quiet_pyradiomics() -> None:
    """Stop PyRadiomics printing to stderr; its warnings go on to Python logging.

    ``setVerbosity(60)`` mutes the stderr handler PyRadiomics installs; its logger (and
    that of pykwalify, which validates the settings) keeps WARNING and above, which
    propagate to the application's logging configuration.
    """
    radiomics.setVerbosity(60)
    for name in ("radiomics", "pykwalify"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _build_extractor(params: Mapping[str, Any]) -> RadiomicsFeatureExtractor:
    _quiet_pyradiomics()
    return RadiomicsFeatureExtractor(copy.deepcopy(dict(params)))


def _extract_features(
    extractor: RadiomicsFeatureExtractor, image: sitk.Image, mask: sitk.Image
) -> dict[str, float]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = extractor.execute(image, mask)
    for warning in caught:
        logger.warning("PyRadiomics: %s", warning.message)
    return {name: float(value) for name, value in result.items() if not name.startswith("diagnostics_")}


# Worker-process state: each worker builds its extractor once (see _init_worker).
_worker_extractor: RadiomicsFeatureExtractor | None = None


def _init_worker(params: Mapping[str, Any]) -> None:
    global _worker_extractor
    _worker_extractor = _build_extractor(params)


def _extract_paths(
    extractor: RadiomicsFeatureExtractor, case: Case
) -> tuple[str, dict[str, float], str | None]:
    """(patient_id, features, None) or (patient_id, {}, reason); never raises."""
    patient_id, image_path, mask_path = case
    try:
        features = _extract_features(extractor, read_image(image_path), read_image(mask_path))
    except Exception as error:  # noqa: BLE001 - any failure excludes this case only
        return patient_id, {}, f"{type(error).__name__}: {error}".strip()
    return patient_id, features, None


def _extract_in_worker(case: Case) -> tuple[str, dict[str, float], str | None]:
    assert _worker_extractor is not None, "worker not initialised"
    return _extract_paths(_worker_extractor, case)


def _run_pending(
    cases: list[Case], params: Mapping[str, Any], workers: int
) -> Iterator[tuple[str, dict[str, float], str | None]]:
    """Yield (patient_id, features, reason) for each case, as cases finish."""
    if not cases:
        return
    if workers <= 1 or len(cases) == 1:
        extractor = _build_extractor(params)
        for case in cases:
            yield _extract_paths(extractor, case)
        return
    with ProcessPoolExecutor(
        max_workers=min(workers, len(cases)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(dict(params),),
    ) as pool:
        futures = [pool.submit(_extract_in_worker, case) for case in cases]
        for future in as_completed(futures):
            yield future.result()


def _feature_table(patient_ids: list[str], results: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Rows in case order; columns in the order first met (PyRadiomics' order)."""
    columns: dict[str, None] = {}
    for patient_id in patient_ids:
        columns.update(dict.fromkeys(results.get(patient_id, {})))
    rows = [patient_id for patient_id in patient_ids if patient_id in results]
    table = pd.DataFrame([results[p] for p in rows], columns=list(columns), dtype=float)
    table.index = pd.Index(rows, name="patient_id", dtype=object)
    return table


def _cache_key(params: Mapping[str, Any], image_path: Path, mask_path: Path) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update(str(radiomics.__version__).encode())
    for path in (image_path, mask_path):
        digest.update(_input_digest(path).encode())
    return digest.hexdigest()[:16]


def _input_digest(path: Path) -> str:
    """SHA-256 of an image's bytes: the file, a detached header's data file(s), or every
    file of a DICOM series folder."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
    else:
        files = [path, *_detached_data_files(path)]
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def _detached_data_files(header: Path) -> list[Path]:
    """Data files named in a ``.mhd`` (ElementDataFile) or ``.nhdr`` (data file) header.

    A multi-file form (LIST or a pattern) counts every other file of the header's folder.
    """
    pattern = {".mhd": r"^\s*ElementDataFile\s*=\s*(.+?)\s*$", ".nhdr": r"^\s*data ?file\s*:\s*(.+?)\s*$"}
    regex = pattern.get(header.suffix.lower())
    if regex is None:
        return []
    match = re.search(regex, header.read_text(errors="replace"), flags=re.MULTILINE | re.IGNORECASE)
    if match is None or match.group(1) == "LOCAL":
        return []
    data_file = header.parent / match.group(1)
    if data_file.is_file():
        return [data_file]
    return sorted(p for p in header.parent.iterdir() if p.is_file() and p != header)


def _safe_name(patient_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", patient_id)


def _write_cache(cache_file: Path, patient_id: str, features: dict[str, float]) -> None:
    """Write atomically, so an interrupted run never leaves a half-written cache file."""
    temporary = cache_file.with_suffix(f".tmp{os.getpid()}")
    temporary.write_text(json.dumps({"patient_id": patient_id, "features": features}, indent=1))
    os.replace(temporary, cache_file)
