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

A case may have several masks (readers, for the reproducibility filter): its image is read,
normalised and resampled once (:mod:`studyrunner.radiomics.preprocessing`) and every mask
reuses it; the filtered images (wavelet, LoG) are computed once per distinct PyRadiomics
box (bounding box + ``padDistance``), because PyRadiomics filters that padded box and its
filters' values near the box faces depend on where the faces are. Each mask's features
are those of a plain ``RadiomicsFeatureExtractor.execute`` with the same settings, bit for
bit (tests and ``benchmarks/radiomics_extraction.py`` compare them).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import radiomics
import SimpleITK as sitk
import yaml
from radiomics import imageoperations
from radiomics.featureextractor import RadiomicsFeatureExtractor

from studyrunner.imaging.io import read_image
from studyrunner.radiomics.preprocessing import LatticeBox, crop, prepare_image, pyradiomics_crop_box, resample_mask
from studyrunner.run_folder import sha256_file

logger = logging.getLogger(__name__)

Case = tuple[str, Path, Path]
MultiMaskCase = tuple[str, Path, Mapping[str, Path]]
Progress = Callable[[int, int], None]

# The mask name single-mask cases are filed under (in the cache files).
SINGLE_MASK = "mask"
# Salt of the cache keys: changed when the cache file's layout changes.
CACHE_FORMAT = "studyrunner-radiomics-2: features per mask"

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
    """Feature values of one case, in PyRadiomics' order (``<imagetype>_<class>_<feature>``),
    from a plain ``RadiomicsFeatureExtractor.execute``."""
    return _extract_features(_build_extractor(params), image, mask)


def extract_masks(
    image: sitk.Image, masks: Mapping[str, sitk.Image], params: Mapping[str, Any]
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Features of several masks (readers) of one image, the image prepared once.

    Returns ``({mask_name: features}, {mask_name: reason})``: each mask either has its
    features (the values, names and order of a plain ``RadiomicsFeatureExtractor.execute``
    with the same settings) or the reason PyRadiomics refused it.
    """
    return _extract_masks(_build_extractor(params), image, masks)


def extract_cohort(
    cases: Sequence[Case] | Sequence[MultiMaskCase],
    params: Mapping[str, Any],
    cache_dir: Path,
    workers: int = 1,
    progress: Progress | None = None,
) -> tuple[pd.DataFrame, list[dict[str, str]]] | tuple[dict[str, pd.DataFrame], list[dict[str, str]]]:
    """Features of every case, cached per case; the image of a case is prepared once.

    ``cases`` are either ``(patient_id, image_path, mask_path)`` or
    ``(patient_id, image_path, {mask_name: mask_path})`` (several readers), not mixed.

    Single-mask cases return the feature table (index ``patient_id`` in the order of
    ``cases``, columns in PyRadiomics' order) and one ``{"patient_id", "stage":
    "radiomics", "reason"}`` per case that could not be read or that PyRadiomics failed
    on. Multi-mask cases return ``{mask_name: table}`` (names in the order first met) and
    one ``{"patient_id", "mask", "stage": "radiomics", "reason"}`` per failed case and
    mask; the other masks of that case are still extracted. The other cases go on.

    A case whose cache file ``<patient_id>-<key>.json`` exists is not recomputed (the key
    covers the settings, the PyRadiomics version, the image and every mask file); a case
    with a failed mask is not cached. ``workers > 1`` runs whole cases in that many
    spawned processes (largest masks first). ``progress(done, total)`` is called once the
    cache has been looked up and after each computed case.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    multi, jobs = _normalised_cases(cases)
    patient_ids = [job.patient_id for job in jobs]
    results: dict[str, dict[str, dict[str, float]]] = {}
    failures: dict[str, dict[str, str]] = {}
    pending: list[_Job] = []
    for job in jobs:
        cached = _look_up_cache(job, params, cache_dir)
        if cached is not None:
            results[job.patient_id] = cached
        elif job.mask_paths:
            pending.append(job)
        else:
            failures[job.patient_id] = dict(job.unreadable)
    done = len(jobs) - len(pending)
    if progress and done:
        progress(done, len(jobs))
    by_id = {job.patient_id: job for job in pending}
    for patient_id, features, reasons in _run_pending(pending, params, workers):
        job = by_id[patient_id]
        reasons = {**job.unreadable, **reasons}
        reasons = {name: reasons[name] for name in job.mask_names if name in reasons}
        results[patient_id] = features
        if reasons:
            failures[patient_id] = reasons
            for name, reason in reasons.items():
                logger.warning("radiomics failed for %s (%s): %s", patient_id, name, reason)
        elif job.cache_file is not None:
            _write_cache(job.cache_file, patient_id, features)
        done += 1
        if progress:
            progress(done, len(jobs))
    mask_names = list(dict.fromkeys(name for job in jobs for name in job.mask_names))
    tables = {
        name: _feature_table(
            [p for p in patient_ids if name in results.get(p, {})],
            {p: results[p][name] for p in patient_ids if name in results.get(p, {})},
        )
        for name in mask_names
    }
    failed = [
        {"patient_id": p, "mask": name, "stage": "radiomics", "reason": reason}
        for p in patient_ids
        for name, reason in failures.get(p, {}).items()
    ]
    if multi:
        return tables, failed
    single = tables.get(SINGLE_MASK, _feature_table([], {}))
    return single, [{k: v for k, v in f.items() if k != "mask"} for f in failed]


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


# --- one image, several masks -------------------------------------------------------------

# Filters whose output depends on the mask: never shared between masks.
_MASK_DEPENDENT_IMAGE_TYPES = ("LBP3D",)


@dataclass
class _LoadedMask:
    """A mask after PyRadiomics' loadImage steps: its image and mask, and the key of the
    box they were cut from (masks with the same key share their filtered images)."""

    name: str
    image: sitk.Image
    mask: sitk.Image
    share_key: Any


def _extract_masks(
    extractor: RadiomicsFeatureExtractor, image: sitk.Image, masks: Mapping[str, sitk.Image | str]
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """``masks`` values are images, or a reason string for a mask that could not be read.

    Reproduces ``RadiomicsFeatureExtractor.execute`` (segment-based) for each mask with
    PyRadiomics' own functions, preparing the image once: normalisation and resampling
    once per case (:mod:`studyrunner.radiomics.preprocessing`), filters once per
    distinct box.
    """
    settings = extractor.settings.copy()
    features: dict[str, dict[str, float]] = {}
    reasons: dict[str, str] = {name: mask for name, mask in masks.items() if isinstance(mask, str)}
    with warnings.catch_warnings(record=True) as caught, _bin_edges_from_extremes():
        warnings.simplefilter("always")
        loaded = _load_masks(
            extractor, settings, image,
            {name: mask for name, mask in masks.items() if not isinstance(mask, str)}, reasons,
        )
        groups: dict[Any, list[_LoadedMask]] = {}
        for item in loaded:
            groups.setdefault(item.share_key, []).append(item)
        for group in groups.values():
            filtered: list[tuple[sitk.Image, str, dict[str, Any]]] | None = None
            for item in group:
                try:
                    if filtered is None or item.share_key is None:
                        filtered = _filtered_images(extractor, settings, item.image, item.mask)
                    features[item.name] = _mask_features(extractor, settings, item, filtered)
                except Exception as error:  # noqa: BLE001 - this mask only
                    reasons[item.name] = _reason(error)
    for warning in caught:
        logger.warning("PyRadiomics: %s", warning.message)
    order = list(masks)
    return (
        {name: features[name] for name in order if name in features},
        {name: reasons[name] for name in order if name in reasons},
    )


def _load_masks(
    extractor: RadiomicsFeatureExtractor,
    settings: dict[str, Any],
    image: sitk.Image,
    masks: Mapping[str, sitk.Image],
    reasons: dict[str, str],
) -> list[_LoadedMask]:
    """PyRadiomics' ``loadImage`` for every mask, the image normalised/resampled once."""
    labelled: dict[str, sitk.Image] = {}
    for name, mask in masks.items():
        try:
            labelled[name] = imageoperations.getMask(mask, **settings)
        except Exception as error:  # noqa: BLE001
            reasons[name] = _reason(error)
    if not labelled:
        return []
    if settings.get("normalize", False):
        image = imageoperations.normalizeImage(image, **settings)
    spacing = settings.get("resampledPixelSpacing")
    shared_filters = not any(t in _MASK_DEPENDENT_IMAGE_TYPES for t in extractor.enabledImagetypes)
    loaded: list[_LoadedMask] = []
    if settings.get("interpolator") is None or spacing is None:
        for name, mask in labelled.items():
            try:
                # PyRadiomics' own loadImage: the whole image, or a crop per mask (preCrop).
                image_m, mask_m = RadiomicsFeatureExtractor.loadImage(image, mask, None, **{**settings, "normalize": False})
            except Exception as error:  # noqa: BLE001
                reasons[name] = _reason(error)
                continue
            key = "whole" if shared_filters and image_m is image else None
            loaded.append(_LoadedMask(name, image_m, mask_m, key if key else ("own", name)))
        return loaded
    label = int(settings.get("label", 1))
    pad = int(settings.get("padDistance", 5))
    boxes: dict[str, LatticeBox | None] = {}
    for name, mask in labelled.items():
        try:
            boxes[name] = pyradiomics_crop_box(image, mask, spacing, label, pad)
        except Exception as error:  # noqa: BLE001
            reasons[name] = _reason(error)
    on_grid = [box for box in boxes.values() if box is not None]
    region = functools.reduce(LatticeBox.union, on_grid) if on_grid else None
    prepared = prepare_image(image, spacing, settings["interpolator"], region) if region else None
    for name, box in boxes.items():
        try:
            if box is None:  # another grid for this mask: PyRadiomics' resampling as is
                image_m, mask_m = imageoperations.resampleImage(image, labelled[name], **settings)
            else:
                image_m = crop(prepared, region, box, image, spacing)
                mask_m = resample_mask(labelled[name], image_m)
        except Exception as error:  # noqa: BLE001
            reasons[name] = _reason(error)
            continue
        key = box if shared_filters and box is not None else ("own", name)
        loaded.append(_LoadedMask(name, image_m, mask_m, key))
    return loaded


_PYRADIOMICS_GET_BIN_EDGES = imageoperations.getBinEdges


@contextlib.contextmanager
def _bin_edges_from_extremes() -> Iterator[None]:
    """Let PyRadiomics' ``getBinEdges`` see only the ROI's minimum and maximum.

    In PyRadiomics 3.0.1 the bin edges depend on the ROI values only through their
    minimum and maximum (fixed bin width: arange from the floored minimum past the
    maximum; fixed bin count: ``numpy.histogram``'s edges, which span min..max), but it
    finds them with Python's builtin ``min``/``max``, a loop over every voxel: about a
    tenth of the extraction time, repeated for every feature class and filtered image.
    Within this context ``getBinEdges`` is called with the two-element array (min, max),
    found by numpy (exact, nothing is rounded), so its own code gives the same edges; an
    empty ROI or a non-finite value goes to it unchanged. The original is restored on exit.
    """

    def from_extremes(parameterValues, **kwargs):  # noqa: N803 - PyRadiomics' argument name
        values = np.asarray(parameterValues)
        if values.size:
            low, high = values.min(), values.max()
            if np.isfinite(low) and np.isfinite(high):
                return _PYRADIOMICS_GET_BIN_EDGES(np.array([low, high], dtype=values.dtype), **kwargs)
        return _PYRADIOMICS_GET_BIN_EDGES(parameterValues, **kwargs)

    imageoperations.getBinEdges = from_extremes
    try:
        yield
    finally:
        imageoperations.getBinEdges = _PYRADIOMICS_GET_BIN_EDGES


def _filtered_images(
    extractor: RadiomicsFeatureExtractor, settings: dict[str, Any], image: sitk.Image, mask: sitk.Image
) -> list[tuple[sitk.Image, str, dict[str, Any]]]:
    """Every enabled input image (original, wavelet sub-bands, LoG sigmas, ...) from
    PyRadiomics' own generators, called with the keyword arguments ``execute`` passes."""
    images: list[tuple[sitk.Image, str, dict[str, Any]]] = []
    for image_type, custom in extractor.enabledImagetypes.items():
        arguments = settings.copy()
        arguments.update(custom)
        images.extend(getattr(imageoperations, f"get{image_type}Image")(image, mask, **arguments))
    return images


def _mask_features(
    extractor: RadiomicsFeatureExtractor,
    settings: dict[str, Any],
    item: _LoadedMask,
    filtered: list[tuple[sitk.Image, str, dict[str, Any]]],
) -> dict[str, float]:
    """Steps 2-6 of ``RadiomicsFeatureExtractor.execute`` for one mask (segment-based)."""
    image, mask = item.image, item.mask
    bounding_box, corrected = imageoperations.checkMask(image, mask, **settings)
    if corrected is not None:
        mask = corrected
    resegmented = None
    if settings.get("resegmentRange") is not None:
        resegmented = imageoperations.resegmentMask(image, mask, **settings)
        bounding_box, _ = imageoperations.checkMask(image, resegmented, **settings)
    resegment_shape = settings.get("resegmentShape", False)
    if resegment_shape and resegmented is not None:
        mask = resegmented
    vector: dict[str, Any] = dict(extractor.computeShape(image, mask, bounding_box, **settings))
    if not resegment_shape and resegmented is not None:
        mask = resegmented
    for filtered_image, image_type_name, arguments in filtered:
        image_crop, mask_crop = imageoperations.cropToTumorMask(filtered_image, mask, bounding_box, padDistance=0)
        vector.update(extractor.computeFeatures(image_crop, mask_crop, image_type_name, **arguments))
    return {name: float(value) for name, value in vector.items() if not name.startswith("diagnostics_")}


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".strip()


# --- cohort: cases, cache, workers ----------------------------------------------------------


@dataclass
class _Job:
    """One case to compute: readable mask files, unreadable ones with the reason, and the
    cache file (None when some file could not be read: such a case is not cached)."""

    patient_id: str
    image_path: Path
    mask_names: list[str]
    mask_paths: dict[str, Path]
    unreadable: dict[str, str]
    cache_file: Path | None = None


def _normalised_cases(cases: Sequence[Any]) -> tuple[bool, list[_Job]]:
    """(multi-mask?, one job per case); refuses duplicated ids, mixed or empty mask sets."""
    kinds = {isinstance(case[2], Mapping) for case in cases}
    if len(kinds) > 1:
        raise ValueError("cases mix (patient_id, image, mask) and (patient_id, image, {name: mask}) forms")
    multi = kinds == {True}
    patient_ids = [str(case[0]) for case in cases]
    duplicated = sorted({p for p in patient_ids if patient_ids.count(p) > 1})
    if duplicated:
        raise ValueError(f"duplicated patient_id in the cases: {', '.join(duplicated)}")
    jobs = []
    for patient_id, (_, image_path, masks) in zip(patient_ids, cases):
        mask_paths = {str(n): Path(m) for n, m in masks.items()} if multi else {SINGLE_MASK: Path(masks)}
        if not mask_paths:
            raise ValueError(f"case {patient_id} has no mask")
        jobs.append(_Job(patient_id, Path(image_path), list(mask_paths), mask_paths, {}))
    return multi, jobs


def _look_up_cache(job: _Job, params: Mapping[str, Any], cache_dir: Path) -> dict[str, dict[str, float]] | None:
    """The cached features of ``job``, or None; fills ``job.cache_file`` and records
    unreadable files in ``job.unreadable`` (then removed from ``job.mask_paths``)."""
    try:
        image_digest = _input_digest(job.image_path)
    except OSError as error:
        reason = f"cannot read image {error.filename}: {error.strerror}"
        job.unreadable = {name: reason for name in job.mask_names}
        job.mask_paths = {}
        return None
    mask_digests = {}
    for name, path in list(job.mask_paths.items()):
        try:
            mask_digests[name] = _input_digest(path)
        except OSError as error:
            job.unreadable[name] = f"cannot read image {error.filename}: {error.strerror}"
            del job.mask_paths[name]
    if job.unreadable:
        return None
    job.cache_file = cache_dir / f"{_safe_name(job.patient_id)}-{_cache_key(params, image_digest, mask_digests)}.json"
    if job.cache_file.exists():
        return json.loads(job.cache_file.read_text())["features"]
    return None


# Worker-process state: each worker builds its extractor once (see _init_worker).
_worker_extractor: RadiomicsFeatureExtractor | None = None


def _init_worker(params: Mapping[str, Any], threads: int) -> None:
    global _worker_extractor
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    _worker_extractor = _build_extractor(params)


def _extract_job(
    extractor: RadiomicsFeatureExtractor, job: _Job
) -> tuple[str, dict[str, dict[str, float]], dict[str, str]]:
    """(patient_id, {mask: features}, {mask: reason}); never raises."""
    try:
        image = read_image(job.image_path)
    except Exception as error:  # noqa: BLE001 - any failure excludes this case only
        return job.patient_id, {}, {name: _reason(error) for name in job.mask_paths}
    masks: dict[str, sitk.Image | str] = {}
    for name, path in job.mask_paths.items():
        try:
            masks[name] = read_image(path)
        except Exception as error:  # noqa: BLE001 - this mask only
            masks[name] = _reason(error)
    try:
        features, reasons = _extract_masks(extractor, image, masks)
    except Exception as error:  # noqa: BLE001
        return job.patient_id, {}, {name: _reason(error) for name in job.mask_paths}
    return job.patient_id, features, reasons


def _extract_in_worker(job: _Job) -> tuple[str, dict[str, dict[str, float]], dict[str, str]]:
    assert _worker_extractor is not None, "worker not initialised"
    return _extract_job(_worker_extractor, job)


def _run_pending(
    jobs: list[_Job], params: Mapping[str, Any], workers: int
) -> Iterator[tuple[str, dict[str, dict[str, float]], dict[str, str]]]:
    """Yield (patient_id, features, reasons) for each case, as cases finish."""
    if not jobs:
        return
    if workers <= 1 or len(jobs) == 1:
        extractor = _build_extractor(params)
        for job in jobs:
            yield _extract_job(extractor, job)
        return
    workers = min(workers, len(jobs))
    # Largest cases first (mask file bytes as the measure of work), so that no worker is
    # left with a large case at the end while the others are idle.
    ordered = sorted(jobs, key=_work_estimate, reverse=True)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(dict(params), max(1, (os.cpu_count() or 1) // workers)),
    ) as pool:
        futures = [pool.submit(_extract_in_worker, job) for job in ordered]
        for future in as_completed(futures):
            yield future.result()


def _work_estimate(job: _Job) -> int:
    total = 0
    for path in job.mask_paths.values():
        files = path.rglob("*") if path.is_dir() else [path]
        total += sum(f.stat().st_size for f in files if f.is_file())
    return total


def _feature_table(patient_ids: list[str], results: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Rows in case order; columns in the order first met (PyRadiomics' order)."""
    columns: dict[str, None] = {}
    for patient_id in patient_ids:
        columns.update(dict.fromkeys(results.get(patient_id, {})))
    rows = [patient_id for patient_id in patient_ids if patient_id in results]
    table = pd.DataFrame([results[p] for p in rows], columns=list(columns), dtype=float)
    table.index = pd.Index(rows, name="patient_id", dtype=object)
    return table


def _cache_key(params: Mapping[str, Any], image_digest: str, mask_digests: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    digest.update(CACHE_FORMAT.encode())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update(str(radiomics.__version__).encode())
    digest.update(image_digest.encode())
    for name in sorted(mask_digests):
        digest.update(json.dumps([name, mask_digests[name]]).encode())
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


def _write_cache(cache_file: Path, patient_id: str, features: dict[str, dict[str, float]]) -> None:
    """Write atomically, so an interrupted run never leaves a half-written cache file."""
    temporary = cache_file.with_suffix(f".tmp{os.getpid()}")
    temporary.write_text(json.dumps({"patient_id": patient_id, "features": features}, indent=1))
    os.replace(temporary, cache_file)
