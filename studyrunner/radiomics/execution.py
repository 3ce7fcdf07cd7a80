"""Features of one image and its masks: PyRadiomics' ``execute``, the image prepared once.

PyRadiomics (van Griethuysen et al., Cancer Res 2017;77:e104-e107) computes one
image/mask pair per ``RadiomicsFeatureExtractor.execute``: load (normalise, resample a box
around the mask), filter (wavelet, LoG, ...), then shape and the other feature classes on
every filtered image. A case may have several masks (readers, for the reproducibility
filter): :func:`extract_masks` runs those steps with PyRadiomics' own functions, its image
normalised and resampled once (:mod:`studyrunner.radiomics.preprocessing`), and the
filtered images computed once per distinct PyRadiomics box (bounding box +
``padDistance``), because PyRadiomics filters that padded box and its filters' values near
the box faces depend on where the faces are. Each mask's features are those of a plain
``execute`` with the same settings, bit for bit (tests and
``benchmarks/radiomics_extraction.py`` compare them); the grey-level bin edges are found
from the ROI's extremes (:mod:`studyrunner.radiomics.binning`), which gives the same edges.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import SimpleITK as sitk
from radiomics import imageoperations
from radiomics.featureextractor import RadiomicsFeatureExtractor

from studyrunner.radiomics.binning import bin_edges_from_extremes
from studyrunner.radiomics.parameters import build_extractor
from studyrunner.radiomics.preprocessing import LatticeBox, crop, prepare_image, pyradiomics_crop_box, resample_mask

logger = logging.getLogger(__name__)

FilteredImages = list[tuple[sitk.Image, str, dict[str, Any]]]

# Filters whose output depends on the mask: never shared between masks.
_MASK_DEPENDENT_IMAGE_TYPES = ("LBP3D",)


def extract_case(image: sitk.Image, mask: sitk.Image, params: Mapping[str, Any]) -> dict[str, float]:
    """Feature values of one case, in PyRadiomics' order (``<imagetype>_<class>_<feature>``),
    from a plain ``RadiomicsFeatureExtractor.execute``."""
    extractor = build_extractor(params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = extractor.execute(image, mask)
    _log_warnings(caught)
    return _feature_values(result)


def extract_masks(
    image: sitk.Image, masks: Mapping[str, sitk.Image], params: Mapping[str, Any]
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Features of several masks (readers) of one image, the image prepared once.

    Returns ``({mask_name: features}, {mask_name: reason})``: each mask either has its
    features (the values, names and order of a plain ``RadiomicsFeatureExtractor.execute``
    with the same settings) or the reason PyRadiomics refused it.
    """
    return extract_masks_with(build_extractor(params), image, masks)


def extract_masks_with(
    extractor: RadiomicsFeatureExtractor, image: sitk.Image, masks: Mapping[str, sitk.Image | str]
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """:func:`extract_masks` with a built extractor; ``masks`` values are images, or a
    reason string for a mask that could not be read.

    Reproduces ``RadiomicsFeatureExtractor.execute`` (segment-based) for each mask with
    PyRadiomics' own functions, preparing the image once: normalisation and resampling
    once per case (:mod:`studyrunner.radiomics.preprocessing`), filters once per
    distinct box.
    """
    settings = extractor.settings.copy()
    features: dict[str, dict[str, float]] = {}
    reasons: dict[str, str] = {name: mask for name, mask in masks.items() if isinstance(mask, str)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = _load_masks(
            extractor, settings, image,
            {name: mask for name, mask in masks.items() if not isinstance(mask, str)}, reasons,
        )
        groups: dict[Any, list[LoadedMask]] = {}
        for item in loaded:
            groups.setdefault(item.share_key, []).append(item)
        for group in groups.values():
            filtered: FilteredImages | None = None
            for item in group:
                try:
                    if filtered is None or item.share_key is None:
                        filtered = filtered_images(extractor, settings, item.image, item.mask)
                    features[item.name] = mask_features(extractor, settings, item, filtered)
                except Exception as error:  # noqa: BLE001 - this mask only
                    reasons[item.name] = failure_reason(error)
    _log_warnings(caught)
    order = list(masks)
    return (
        {name: features[name] for name in order if name in features},
        {name: reasons[name] for name in order if name in reasons},
    )


@dataclass
class LoadedMask:
    """A mask after PyRadiomics' loadImage steps: its image and mask, and the key of the
    box they were cut from (masks with the same key share their filtered images)."""

    name: str
    image: sitk.Image
    mask: sitk.Image
    share_key: Any


def filtered_images(
    extractor: RadiomicsFeatureExtractor, settings: dict[str, Any], image: sitk.Image, mask: sitk.Image
) -> FilteredImages:
    """Every enabled input image (original, wavelet sub-bands, LoG sigmas, ...) from
    PyRadiomics' own generators, called with the keyword arguments ``execute`` passes."""
    images: FilteredImages = []
    for image_type, custom in extractor.enabledImagetypes.items():
        arguments = settings.copy()
        arguments.update(custom)
        images.extend(getattr(imageoperations, f"get{image_type}Image")(image, mask, **arguments))
    return images


def mask_features(
    extractor: RadiomicsFeatureExtractor,
    settings: dict[str, Any],
    item: LoadedMask,
    filtered: FilteredImages,
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
    with bin_edges_from_extremes():  # the feature classes bin the ROI; shape does not
        for filtered_image, image_type_name, arguments in filtered:
            image_crop, mask_crop = imageoperations.cropToTumorMask(filtered_image, mask, bounding_box, padDistance=0)
            vector.update(extractor.computeFeatures(image_crop, mask_crop, image_type_name, **arguments))
    return _feature_values(vector)


def failure_reason(error: BaseException) -> str:
    """One line naming the exception type and its message (recorded per failed mask)."""
    return f"{type(error).__name__}: {error}".strip()


def _load_masks(
    extractor: RadiomicsFeatureExtractor,
    settings: dict[str, Any],
    image: sitk.Image,
    masks: Mapping[str, sitk.Image],
    reasons: dict[str, str],
) -> list[LoadedMask]:
    """PyRadiomics' ``loadImage`` for every mask, the image normalised/resampled once."""
    labelled: dict[str, sitk.Image] = {}
    for name, mask in masks.items():
        try:
            labelled[name] = imageoperations.getMask(mask, **settings)
        except Exception as error:  # noqa: BLE001
            reasons[name] = failure_reason(error)
    if not labelled:
        return []
    if settings.get("normalize", False):
        image = imageoperations.normalizeImage(image, **settings)
    if settings.get("interpolator") is None or settings.get("resampledPixelSpacing") is None:
        loaded = _load_on_native_grid(image, labelled, settings, reasons)
    else:
        loaded = _load_resampled(image, labelled, settings, reasons)
    shared_filters = not any(t in _MASK_DEPENDENT_IMAGE_TYPES for t in extractor.enabledImagetypes)
    for item in loaded:
        if not shared_filters or item.share_key is None:
            item.share_key = ("own", item.name)
    return loaded


def _load_on_native_grid(
    image: sitk.Image, labelled: Mapping[str, sitk.Image], settings: dict[str, Any], reasons: dict[str, str]
) -> list[LoadedMask]:
    """No resampling: PyRadiomics' own ``loadImage`` per mask. Share key ``"whole"``
    when it returns the whole image, None for a crop of its own (``preCrop``)."""
    loaded: list[LoadedMask] = []
    for name, mask in labelled.items():
        try:
            image_m, mask_m = RadiomicsFeatureExtractor.loadImage(
                image, mask, None, **{**settings, "normalize": False})
        except Exception as error:  # noqa: BLE001
            reasons[name] = failure_reason(error)
            continue
        loaded.append(LoadedMask(name, image_m, mask_m, "whole" if image_m is image else None))
    return loaded


def _load_resampled(
    image: sitk.Image, labelled: Mapping[str, sitk.Image], settings: dict[str, Any], reasons: dict[str, str]
) -> list[LoadedMask]:
    """Resampling: the image resampled once over the union of the masks' PyRadiomics
    boxes and cut per mask (share key: the box); a mask on another grid is left to
    PyRadiomics' own resampling (share key None)."""
    spacing = settings["resampledPixelSpacing"]
    label = int(settings.get("label", 1))
    pad = int(settings.get("padDistance", 5))
    boxes: dict[str, LatticeBox | None] = {}
    for name, mask in labelled.items():
        try:
            boxes[name] = pyradiomics_crop_box(image, mask, spacing, label, pad)
        except Exception as error:  # noqa: BLE001
            reasons[name] = failure_reason(error)
    on_grid = [box for box in boxes.values() if box is not None]
    region = functools.reduce(LatticeBox.union, on_grid) if on_grid else None
    prepared = prepare_image(image, spacing, settings["interpolator"], region) if region else None
    loaded: list[LoadedMask] = []
    for name, box in boxes.items():
        try:
            if box is None:  # another grid for this mask: PyRadiomics' resampling as is
                image_m, mask_m = imageoperations.resampleImage(image, labelled[name], **settings)
            else:
                # a box on the grid means on_grid was not empty: region and prepared exist
                assert region is not None
                assert prepared is not None
                image_m = crop(prepared, region, box, image, spacing)
                mask_m = resample_mask(labelled[name], image_m)
        except Exception as error:  # noqa: BLE001
            reasons[name] = failure_reason(error)
            continue
        loaded.append(LoadedMask(name, image_m, mask_m, box))
    return loaded


def _feature_values(result: Mapping[str, Any]) -> dict[str, float]:
    """PyRadiomics' result as floats, its ``diagnostics_*`` entries left out."""
    return {name: float(value) for name, value in result.items() if not name.startswith("diagnostics_")}


def _log_warnings(caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        logger.warning("PyRadiomics: %s", warning.message)
