"""PyRadiomics parameters: the one description of an extraction, and the extractor it builds.

PyRadiomics: van Griethuysen JJM, Fedorov A, Parmar C, et al. Computational Radiomics
System to Decode the Radiographic Phenotype. Cancer Res 2017;77(21):e104-e107.
doi:10.1158/0008-5472.CAN-17-0339. Feature definitions follow its documentation, which
in turn follows the IBSI (Zwanenburg et al., Radiology 2020;295:328-338).

A parameter dict built by :func:`radiomics_params` has the structure of a PyRadiomics
parameter file: it is written to the run as YAML (:func:`write_params_file`), it builds
the ``RadiomicsFeatureExtractor`` (:func:`build_extractor`), and its hash names each
case's cache file (:mod:`studyrunner.radiomics.cache`).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import radiomics
import yaml
from radiomics.featureextractor import RadiomicsFeatureExtractor

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
        build_extractor(params)
    except Exception as error:  # pykwalify raises its own SchemaError
        raise ValueError(f"invalid PyRadiomics settings: {error}") from error
    return params


def write_params_file(params: Mapping[str, Any], path: Path) -> None:
    """Write ``params`` as a PyRadiomics YAML parameter file (loadable by PyRadiomics)."""
    Path(path).write_text(yaml.safe_dump(dict(params), sort_keys=True, default_flow_style=False))


def build_extractor(params: Mapping[str, Any]) -> RadiomicsFeatureExtractor:
    """A ``RadiomicsFeatureExtractor`` from (a deep copy of) ``params``, PyRadiomics quiet."""
    _quiet_pyradiomics()
    return RadiomicsFeatureExtractor(copy.deepcopy(dict(params)))


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
