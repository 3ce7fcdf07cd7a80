"""The frozen model bundle: everything needed to apply the model at another site, as plain JSON.

A bundle never holds code or pickles, so loading one from another site cannot execute
anything; ``content_sha256`` lets a user check that a bundle was not altered.

The radiomics Cox bundle (``bundle.json``, format ``studyrunner.radiomics-cox/2``) records:

- the model: the selected PyRadiomics features, the training normalisation (mean, SD), the Cox
  coefficients (linear predictor lp = sum of coefficient x z-scored feature, uncentred) and
  the risk-group cut-off (high risk: lp > cut-off);
- ``endpoint``: name, time and event columns, label and time ``unit`` (the protocol's);
- ``baseline_survival``: Breslow's baseline survival S0(t) at lp = 0 on the development
  cohort (Breslow NE (1972), J R Stat Soc B 34:216-217), the whole step function, so that a
  patient's predicted survival is S0(t)^exp(lp) (Cox DR (1972), J R Stat Soc B 34:187-220);
- ``development``: the development cohort's size, events, the distribution of its lp (mean,
  SD, 5/25/50/75/95% quantiles), the development performance (C-index with CI and
  time-dependent AUCs, training and test) and its Table 1, for the case-mix comparison a
  validating site makes (Debray TPA et al. (2015), J Clin Epidemiol 68:279-289; TRIPOD,
  Collins GS et al. (2015), Ann Intern Med 162:55-63, items 15 and 17);
- ``extraction_params``: the PyRadiomics parameters restricted to the image types and
  feature classes/features the model uses (:func:`restrict_params`), beside the run's full
  parameter file (``radiomics_params_yaml``);
- ``versions`` of PyRadiomics, SimpleITK, numpy and studyrunner; the protocol hash.

:func:`load_radiomics_bundle` reads it into a typed :class:`RadiomicsBundle` (checking the
format and the hash); :func:`linear_predictor`, :func:`risk_group`,
:func:`predicted_survival` and :func:`extraction_params` apply it.

A study with CNNs (like nsclc_ici) also freezes ``cnn_bundle.json`` (format
``studyrunner.cnn-scores/2``) with the network weights as numpy ``.npz`` files beside it (no
pickle; each file's SHA-256 is in the bundle): the crop and z-score settings, each network's
architecture, the interval cut-offs, the Cox coefficients that turn the networks' outputs
into OSRS/PFSRS and MOSRS, every score's cut-off and the PRS/PDS Youden cut-offs (Youden WJ
(1950), Cancer 3:32-35). Each survival score also carries what the radiomics bundle carries
for its linear predictor: its endpoint (name, label, time, event, unit), Breslow's baseline
survival of the score used as a frozen linear predictor on the training cohort (the same
estimator and R function, ``statistics.baseline_survival``), and its development summary
(lp distribution, C-index with CI per cohort). ``versions`` records torch, SimpleITK, numpy
and studyrunner. :func:`load_cnn_bundle` reads it typed (:class:`CnnBundle`), checking the
content hash and every weights file's hash; a /1 CNN bundle is refused, naming what it lacks.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from studyrunner import __version__
from studyrunner.environment import package_versions
from studyrunner.errors import InputError
from studyrunner.jsonable import to_jsonable
from studyrunner.protocol import LoadedProtocol
from studyrunner.run_folder import read_json, sha256_file, sha256_json, write_json

BUNDLE_FORMAT = "studyrunner.radiomics-cox/2"
PREVIOUS_BUNDLE_FORMATS = ("studyrunner.radiomics-cox/1",)
CNN_BUNDLE_FORMAT = "studyrunner.cnn-scores/2"
PREVIOUS_CNN_BUNDLE_FORMATS = ("studyrunner.cnn-scores/1",)
BUNDLE_FILES = {BUNDLE_FORMAT: "bundle.json", CNN_BUNDLE_FORMAT: "cnn_bundle.json"}

# What /2 adds to /1 (top-level fields, and the endpoint's unit).
ADDED_IN_2 = ("baseline_survival", "development", "versions", "extraction_params")
LP_QUANTILES = (5, 25, 50, 75, 95)
# The packages whose versions a bundle records (a difference at another site is warned about).
VERSIONED_PACKAGES = ("pyradiomics", "SimpleITK", "numpy", "studyrunner")
CNN_VERSIONED_PACKAGES = ("torch", "SimpleITK", "numpy", "studyrunner")
# What a survival score of a CNN /2 bundle adds to /1's.
CNN_SCORE_ADDED_IN_2 = ("baseline_survival", "development", "endpoint.unit")
SCORE_DEFINITION = "sum of coefficient x z-scored feature (Cox linear predictor, uncentred)"


class BundleError(InputError):
    """A bundle that is missing, altered or of an unknown format (the CLI exits 2)."""


# --- the typed bundle -------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BundleEndpoint(_Frozen):
    name: str
    label: str | None = None
    time: str
    event: str
    unit: Literal["days", "months", "years"]


class FeatureNormalisation(_Frozen):
    mean: float
    sd: float


class BundleCutoff(_Frozen):
    value: float
    method: str
    high_risk: str


class BaselineSurvival(_Frozen):
    """S0(t) at lp = 0: a right-continuous step function, 1 before ``time[0]``, stepping to
    ``survival[i]`` at ``time[i]`` (the distinct event times of the development cohort)."""

    time: tuple[float, ...]
    survival: tuple[float, ...]
    cumulative_hazard: tuple[float, ...]
    n_risk: tuple[int, ...]
    n_event: tuple[int, ...]
    n: int
    n_events: int
    last_follow_up: float
    estimator: str

    @model_validator(mode="after")
    def _a_step_function(self) -> BaselineSurvival:
        columns = (self.time, self.survival, self.cumulative_hazard, self.n_risk, self.n_event)
        if len({len(c) for c in columns}) != 1 or not self.time:
            raise ValueError("baseline_survival: time, survival, cumulative_hazard, n_risk and n_event "
                             "must be non-empty and of the same length")
        if any(b <= a for a, b in zip(self.time, self.time[1:], strict=False)):
            raise ValueError("baseline_survival: times must increase")
        if any(b > a for a, b in zip(self.survival, self.survival[1:], strict=False)) or \
                not all(0.0 <= s <= 1.0 for s in self.survival):
            raise ValueError("baseline_survival: survival must be in [0, 1] and non-increasing")
        return self

    def value_at(self, t: float) -> float | None:
        """S0(t): 1 before the first event time, the step's value from each event time on
        (right-continuous); None for a t beyond the last follow-up or negative (not estimated)."""
        if not 0 <= t <= self.last_follow_up:
            return None
        step = int(np.searchsorted(np.asarray(self.time), t, side="right")) - 1
        return 1.0 if step < 0 else self.survival[step]


class LinearPredictorSummary(_Frozen):
    mean: float
    sd: float
    quantiles: dict[str, float]


class TimeAuc(_Frozen):
    time: float
    auc: float | None
    se: float | None
    lower: float | None
    upper: float | None


class CohortPerformance(_Frozen):
    n: int
    n_events: int
    c_index: float | None
    c_se: float | None
    c_lower: float | None
    c_upper: float | None
    time_auc: tuple[TimeAuc, ...] | None


class Development(_Frozen):
    partitions: tuple[str, ...]
    n: int
    n_events: int
    linear_predictor: LinearPredictorSummary
    performance: dict[str, CohortPerformance]
    table_one: dict[str, Any] | None


class RadiomicsBundle(_Frozen):
    """A ``studyrunner.radiomics-cox/2`` bundle as loaded by :func:`load_radiomics_bundle`
    (``source``: the file it was read from)."""

    format: Literal["studyrunner.radiomics-cox/2"]
    studyrunner_version: str
    study: str
    synthetic_training_data: bool
    protocol_sha256: str
    endpoint: BundleEndpoint
    radiomics_params_yaml: str | None
    extraction_params: dict[str, Any] | None
    features: tuple[str, ...]
    normalisation: dict[str, FeatureNormalisation]
    coefficients: dict[str, float]
    score: str
    cutoff: BundleCutoff
    baseline_survival: BaselineSurvival
    development: Development
    versions: dict[str, str | None]
    parent_sha256: str | None = None
    updating: dict[str, Any] | None = None
    content_sha256: str
    source: Path

    @model_validator(mode="after")
    def _one_entry_per_feature(self) -> RadiomicsBundle:
        for name, block in (("normalisation", self.normalisation), ("coefficients", self.coefficients)):
            if set(block) != set(self.features):
                raise ValueError(f"{name} must have one entry per feature of 'features'")
        zero = [f for f, n in self.normalisation.items() if not n.sd > 0]
        if zero:
            raise ValueError(f"normalisation: SD not positive for {zero}")
        return self


class CnnSurvivalScore(_Frozen):
    """One survival score of a CNN bundle: an endpoint network's outputs weighted by
    ``output_coefficients`` (OSRS, PFSRS), or a Cox fusion of such scores
    (``fused_coefficients``: MOSRS); high risk above ``cutoff``."""

    label: str | None = None
    endpoint: BundleEndpoint
    cutoff: float
    high_risk: str
    network: str | None = None
    output_coefficients: tuple[float, ...] | None = None
    fused_coefficients: dict[str, float] | None = None
    baseline_survival: BaselineSurvival
    development: Development


class CnnResponseScore(_Frozen):
    """PRS or PDS: the sigmoid of a dual-task head; positive at ``score >= youden_cutoff``."""

    head: int
    positive: str
    youden_cutoff: float | None


class CnnBundle(_Frozen):
    """A ``studyrunner.cnn-scores/2`` bundle as loaded by :func:`load_cnn_bundle` (``source``:
    the file; its weights were checked against their recorded SHA-256)."""

    format: Literal["studyrunner.cnn-scores/2"]
    studyrunner_version: str
    study: str
    synthetic_training_data: bool
    protocol_sha256: str
    crop: dict[str, Any]
    zscore: dict[str, Any]
    networks: dict[str, dict[str, Any]]
    scores: dict[str, CnnSurvivalScore]
    response_scores: dict[str, CnnResponseScore]
    score_definition: str
    versions: dict[str, str | None]
    content_sha256: str
    source: Path


_TypedBundle = TypeVar("_TypedBundle", RadiomicsBundle, CnnBundle)


# --- PyRadiomics parameters of the features the model uses ------------------------------

_FEATURE_NAME = re.compile(r"^(?P<image>[^_]+)_(?P<cls>[^_]+)_(?P<feature>.+)$")


def _image_type_key(image_name: str) -> str:
    """The lower-case imageType of a PyRadiomics input image name: ``original`` -> original,
    ``wavelet-LLH``/``wavelet2-LLH`` -> wavelet, ``log-sigma-2-0-mm-3D`` -> log,
    ``lbp-2D`` -> lbp2d, ``lbp-3D-m1``/``lbp-3D-k`` -> lbp3d, ``squareroot`` -> squareroot."""
    parts = image_name.split("-")
    if parts[0] == "lbp" and len(parts) > 1:
        return f"lbp{parts[1].lower()}"
    return re.sub(r"\d+$", "", parts[0]).lower()


def _log_sigma_name(sigma: Any) -> str:
    """PyRadiomics' name of a LoG image (``getLoGImage``: the sigma's str with '.' as '-')."""
    return f"log-sigma-{str(sigma).replace('.', '-')}-mm-3D"


def _restricted_image_options(image_type: str, options: Mapping[str, Any], image_names: set[str],
                              settings: Mapping[str, Any]) -> dict[str, Any]:
    """An image type's options keeping only what the used images need: a LoG keeps the sigmas
    whose images are used; the other filters produce all their images together and keep their
    options as they are."""
    kept = copy.deepcopy(dict(options))
    if image_type == "LoG":
        sigmas = kept.get("sigma", settings.get("sigma", []))
        kept["sigma"] = [s for s in sigmas if _log_sigma_name(s) in image_names]
        missing = sorted(image_names - {_log_sigma_name(s) for s in kept["sigma"]})
        if missing:
            raise ValueError(f"LoG images {missing} are not produced by the parameters' sigmas {sigmas}")
    return kept


def restrict_params(params: Mapping[str, Any], features: Sequence[str]) -> dict[str, Any]:
    """PyRadiomics parameters (a parameter-file dict) restricted to ``features``.

    PyRadiomics names a feature ``<input image>_<class>_<feature>`` (van Griethuysen JJM et
    al. (2017), Cancer Res 77:e104-e107): ``original_shape_Elongation``,
    ``wavelet-LLH_glszm_ZoneEntropy``, ``log-sigma-2-0-mm-3D_firstorder_Mean``. Each input
    image maps back to its ``imageType`` entry (with its options; a LoG keeps only the used
    sigmas) and each class to ``featureClass: {class: [feature names]}``; ``setting`` is
    kept unchanged, so the restricted extraction gives the same values for these features.
    A name that is not a PyRadiomics feature of ``params`` raises ValueError naming it.
    """
    configured = {name.lower(): name for name in params.get("imageType", {})}
    images: dict[str, set[str]] = {}
    classes: dict[str, list[str]] = {}
    for name in features:
        match = _FEATURE_NAME.match(name)
        image_type = configured.get(_image_type_key(match["image"])) if match else None
        if match is None or image_type is None:
            raise ValueError(f"feature {name!r} is not a PyRadiomics feature of the parameters' image types "
                             f"{sorted(configured.values())}")
        images.setdefault(image_type, set()).add(match["image"])
        listed = classes.setdefault(match["cls"], [])
        if match["feature"] not in listed:
            listed.append(match["feature"])
    unknown = sorted(set(classes) - set(params.get("featureClass", {})))
    if unknown:
        raise ValueError(f"feature classes {unknown} are not enabled in the parameters")
    settings = params.get("setting", {}) or {}
    image_options = {name: _restricted_image_options(name, params["imageType"][name] or {}, used, settings)
                     for name, used in images.items()}
    return {"imageType": image_options, "featureClass": classes, "setting": copy.deepcopy(dict(settings))}


def extraction_params(bundle: RadiomicsBundle) -> dict[str, Any]:
    """The PyRadiomics parameters (parameter-file dict) that extract exactly the bundle's
    features (:func:`restrict_params` applied when the bundle was frozen)."""
    if bundle.extraction_params is None:
        raise BundleError(f"{bundle.source}: the model was developed on an imported feature table; the bundle "
                          "has no PyRadiomics parameters to extract its features with")
    return copy.deepcopy(bundle.extraction_params)


# --- applying the bundle -----------------------------------------------------------------


def linear_predictor(bundle: RadiomicsBundle, features: pd.DataFrame) -> pd.Series:
    """The model's linear predictor lp = sum_j coef_j (x_j - mean_j) / sd_j of each row of
    ``features`` (raw PyRadiomics values; one column per bundle feature, other columns
    ignored), z-scored with the development cohort's mean and SD (Cox DR (1972), J R Stat
    Soc B 34:187-220). Uncentred, on the scale of the cut-off and of S0. A row with a missing
    value gets NaN; a missing or non-numeric column raises InputError naming it."""
    missing = [f for f in bundle.features if f not in features.columns]
    if missing:
        raise InputError(f"the feature table lacks the model's feature column(s) {missing} "
                         f"(bundle {bundle.source})")
    text = [f for f in bundle.features if not pd.api.types.is_numeric_dtype(features[f])]
    if text:
        raise InputError(f"feature column(s) {text} are not numeric")
    names = list(bundle.features)
    x = features[names].to_numpy(dtype=float)
    means = np.array([bundle.normalisation[f].mean for f in names])
    sds = np.array([bundle.normalisation[f].sd for f in names])
    coefs = np.array([bundle.coefficients[f] for f in names])
    return pd.Series(((x - means) / sds) @ coefs, index=features.index, name="linear_predictor")


def risk_group(bundle: RadiomicsBundle, lp: pd.Series) -> pd.Series:
    """``"high"`` where lp > the bundle's cut-off, ``"low"`` otherwise (missing lp: NA)."""
    groups = np.where(lp.to_numpy(dtype=float) > bundle.cutoff.value, "high", "low")
    return pd.Series(groups, index=lp.index, name="risk_group", dtype="string").mask(lp.isna())


def baseline_survival_at(bundle: RadiomicsBundle, t: float) -> float:
    """S0(t): 1 before the first event time, the step's value from each event time on
    (right-continuous). A t beyond the development cohort's follow-up, or negative, raises
    InputError: S0 is not estimated there."""
    s0 = bundle.baseline_survival
    value = s0.value_at(t)
    if value is None:
        raise InputError(f"t = {t} {bundle.endpoint.unit} is outside the development follow-up "
                         f"[0, {s0.last_follow_up}] {bundle.endpoint.unit}: S0(t) is not estimated there")
    return value


def predicted_survival(bundle: RadiomicsBundle, lp: pd.Series, t: float) -> pd.Series:
    """S(t | lp) = S0(t)^exp(lp) of each patient (Cox 1972; S0: Breslow 1972, at lp = 0),
    ``t`` in the endpoint's unit (``bundle.endpoint.unit``)."""
    s0 = baseline_survival_at(bundle, t)
    return pd.Series(np.power(s0, np.exp(lp.to_numpy(dtype=float))), index=lp.index, name="survival")


# --- loading -------------------------------------------------------------------------------


def _bundle_file(path: Path, expected_format: str) -> Path:
    """The bundle file: ``path`` itself, or the format's file inside a model/ folder."""
    return path / BUNDLE_FILES.get(expected_format, "bundle.json") if path.is_dir() else path


def _missing_fields(bundle: Mapping[str, Any]) -> list[str]:
    """What a /1 (or damaged) radiomics bundle lacks of /2."""
    missing = [name for name in ADDED_IN_2 if name not in bundle]
    if "unit" not in (bundle.get("endpoint") or {}):
        missing.insert(0, "endpoint.unit")
    return missing


def _missing_cnn_fields(bundle: Mapping[str, Any]) -> list[str]:
    """What a /1 (or damaged) CNN bundle lacks of /2: ``versions`` and, per survival score,
    the baseline survival, the development summary and the endpoint's unit."""
    missing = [] if "versions" in bundle else ["versions"]
    for name, score in (bundle.get("scores") or {}).items():
        endpoint = score.get("endpoint")
        present = {*score, *(f"endpoint.{key}" for key in endpoint)} if isinstance(endpoint, Mapping) else set(score)
        missing += [f"scores.{name}.{field}" for field in CNN_SCORE_ADDED_IN_2 if field not in present]
    return missing


def _check_format(path: Path, bundle: Mapping[str, Any], expected_format: str) -> None:
    found = bundle.get("format")
    if found == expected_format:
        return
    if expected_format == BUNDLE_FORMAT and found in PREVIOUS_BUNDLE_FORMATS:
        raise BundleError(f"{path}: a {found} bundle lacks {', '.join(_missing_fields(bundle))}; re-run the study "
                          f"with this studyrunner to freeze a /2 bundle ({BUNDLE_FORMAT})")
    if expected_format == CNN_BUNDLE_FORMAT and found in PREVIOUS_CNN_BUNDLE_FORMATS:
        raise BundleError(f"{path}: a {found} bundle lacks {', '.join(_missing_cnn_fields(bundle))}; re-run the "
                          f"study with this studyrunner to freeze a /2 CNN bundle ({CNN_BUNDLE_FORMAT})")
    raise BundleError(f"{path}: unknown bundle format {found!r} (expected {expected_format})")


def load_bundle(path: Path, expected_format: str = BUNDLE_FORMAT) -> dict[str, Any]:
    """Read a bundle (the file, or the model/ folder holding it) as a dict, and check its
    format and integrity (and, for a CNN bundle, its weights). Raises BundleError."""
    path = _bundle_file(Path(path), expected_format)
    try:
        bundle = read_json(path)
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: cannot read the model bundle: {exc}") from exc
    if not isinstance(bundle, dict):
        raise BundleError(f"{path}: not a model bundle (a JSON object was expected)")
    _check_format(path, bundle, expected_format)
    recorded = bundle.pop("content_sha256", None)
    computed = sha256_json(bundle)
    if recorded != computed:
        raise BundleError(f"{path}: content hash mismatch: the bundle records content_sha256 {recorded} but its "
                          f"content hashes to {computed}; it was modified after it was frozen")
    for name, network in (bundle.get("networks") or {}).items():
        _check_weights(path.parent / network["weights"], name, network["weights_sha256"])
    bundle["content_sha256"] = recorded
    return bundle


def _check_weights(weights: Path, network: str, recorded: str) -> None:
    """A network's weights file must exist and hash to the SHA-256 frozen in the bundle."""
    if not weights.is_file():
        raise BundleError(f"{weights}: weights of network {network!r} missing or altered after freezing: "
                          "the file is missing")
    computed = sha256_file(weights)
    if computed != recorded:
        raise BundleError(f"{weights}: weights of network {network!r} missing or altered after freezing: the bundle "
                          f"records sha256 {recorded} but the file hashes to {computed}")


def load_radiomics_bundle(path: Path) -> RadiomicsBundle:
    """The radiomics Cox bundle at ``path`` (``bundle.json`` or the model/ folder holding it),
    typed. Reads JSON only; refuses a /1 bundle (naming what it lacks), an unknown format, a
    content hash that does not match (naming the file and both hashes) and a malformed field,
    each with BundleError."""
    return _load_typed(path, BUNDLE_FORMAT, RadiomicsBundle)


def _load_typed(path: Path, expected_format: str, model: type[_TypedBundle]) -> _TypedBundle:
    """:func:`load_bundle`'s content validated as ``model`` (with ``source``: the file read)."""
    file = _bundle_file(Path(path), expected_format)
    content = load_bundle(file, expected_format)
    try:
        return model.model_validate({**content, "source": file})
    except ValidationError as error:
        raise BundleError(f"{file}: malformed model bundle ({expected_format}): {error}") from error


def load_cnn_bundle(path: Path) -> CnnBundle:
    """The CNN bundle at ``path`` (``cnn_bundle.json`` or the model/ folder holding it),
    typed. Refuses (BundleError) a /1 bundle naming what it lacks, an unknown format, a content
    hash or a weights file's hash that does not match (naming the file and both hashes), and
    a malformed field."""
    return _load_typed(path, CNN_BUNDLE_FORMAT, CnnBundle)


# --- freezing ----------------------------------------------------------------------------------


def lp_summary(lp: pd.Series) -> dict[str, Any]:
    """Mean, SD (n - 1) and the 5/25/50/75/95% quantiles (linear interpolation, Hyndman-Fan
    type 7) of the development cohort's linear predictor."""
    values = lp.to_numpy(dtype=float)
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else None,
            "quantiles": {f"p{q}": float(np.quantile(values, q / 100)) for q in LP_QUANTILES}}


def cohort_performance(block: Mapping[str, Any]) -> dict[str, Any]:
    """The development performance of one cohort from evaluation.json: C-index with its 95%
    CI and the time-dependent AUCs (when the protocol planned them)."""
    roc = block.get("time_roc")
    time_auc = None if not roc else [
        {"time": t, "auc": roc["auc"][i], "se": roc["se"][i], "lower": roc["lower"][i], "upper": roc["upper"][i]}
        for i, t in enumerate(roc["times"])]
    return {**{key: block.get(key) for key in ("n", "n_events", "c_index", "c_se", "c_lower", "c_upper")},
            "time_auc": time_auc}


def development_rows(run_dir: Path, time: str, event: str, training: Sequence[str]) -> pd.DataFrame:
    """The development (training) cohort: statistics/scores.csv's risk_score of the training
    partitions joined with cohort/clinical.csv's time and event, indexed by patient_id."""
    scores = pd.read_csv(run_dir / "statistics" / "scores.csv", dtype={"patient_id": str})
    clinical = pd.read_csv(run_dir / "cohort" / "clinical.csv", dtype={"patient_id": str})
    rows = scores[scores["partition"].isin(training)].merge(
        clinical[["patient_id", time, event]], on="patient_id", how="inner", validate="one_to_one")
    return rows.dropna(subset=["risk_score", time, event]).set_index("patient_id")


def development_record(run_dir: Path, rows: pd.DataFrame, event: str, training: Sequence[str]) -> dict[str, Any]:
    """The bundle's ``development`` block."""
    statistics = run_dir / "statistics"
    evaluation = read_json(statistics / "evaluation.json")
    table_one = statistics / "table_one.json"
    return {"partitions": list(training), "n": len(rows), "n_events": int(rows[event].sum()),
            "linear_predictor": lp_summary(rows["risk_score"]),
            "performance": {name: cohort_performance(block) for name, block in evaluation.items()},
            "table_one": read_json(table_one) if table_one.exists() else None}


def freeze_model(out_dir: Path, *, model: dict[str, Any], normalisation: dict[str, dict[str, float]],
                 radiomics_params_text: str | None, endpoint: Mapping[str, Any], baseline: Mapping[str, Any],
                 development: Mapping[str, Any], protocol_sha256: str, study_name: str, synthetic: bool) -> Path:
    """Write ``bundle.json`` (format /2) into ``out_dir`` and return its path. ``endpoint``:
    label and unit of the model's endpoint; ``baseline``: :func:`baseline_survival`'s result;
    ``development``: :func:`development_record`."""
    selected = model["selected"]
    params = yaml.safe_load(radiomics_params_text) if radiomics_params_text else None
    content = to_jsonable({
        "format": BUNDLE_FORMAT,
        "studyrunner_version": __version__,
        "study": study_name,
        "synthetic_training_data": synthetic,
        "protocol_sha256": protocol_sha256,
        "endpoint": {"name": model["endpoint"], "label": endpoint.get("label"), "time": model["time"],
                     "event": model["event"], "unit": endpoint["unit"]},
        "radiomics_params_yaml": radiomics_params_text,  # None: features came from a feature table
        "extraction_params": restrict_params(params, selected) if params else None,
        "features": selected,
        "normalisation": {name: normalisation[name] for name in selected},
        "coefficients": model["coefficients"],
        "score": SCORE_DEFINITION,
        "cutoff": {"value": model["cutoff"]["value"], "method": model["cutoff"]["method"],
                   "high_risk": "score > cutoff"},
        "baseline_survival": dict(baseline),
        "development": dict(development),
        "versions": package_versions(VERSIONED_PACKAGES),
    })
    path = out_dir / "bundle.json"
    write_json(path, {**content, "content_sha256": sha256_json(content)})
    return path


def cnn_score_rows(run_dir: Path, score: str, time: str, event: str, training: Sequence[str]) -> pd.DataFrame:
    """The training cohort's rows of one CNN score: statistics/risk_scores.csv's score column
    with the endpoint's time and event, rows with any of them missing left out."""
    table = pd.read_csv(run_dir / "statistics" / "risk_scores.csv", dtype={"patient_id": str})
    rows = table[table["partition"].isin(training)][["patient_id", score, time, event]]
    return rows.dropna(subset=[score, time, event]).set_index("patient_id")


def cnn_score_record(run_dir: Path, name: str, block: Mapping[str, Any], endpoint: Mapping[str, Any],
                     training: Sequence[str], table_one: Any) -> dict[str, Any]:
    """One survival score of the CNN bundle: the model (coefficients, cut-off), its endpoint,
    Breslow's baseline survival of the score as a frozen linear predictor on the training
    cohort, and its development summary (statistics/risk_scores.json)."""
    from studyrunner.statistics.baseline_survival import baseline_survival

    rows = cnn_score_rows(run_dir, name, endpoint["time"], endpoint["event"], training)
    model = ({"network": block["network"], "output_coefficients": block["output_coefficients"]}
             if "network" in block else {"fused_coefficients": block["fusion"]["fused_coefficients"]})
    return {"label": block.get("label"), "endpoint": dict(endpoint), "cutoff": block["cutoff"]["value"],
            "high_risk": "score > cutoff", **model,
            "baseline_survival": baseline_survival(rows, endpoint["time"], endpoint["event"], name),
            "development": {"partitions": list(training), "n": len(rows),
                            "n_events": int(rows[endpoint["event"]].sum()), "linear_predictor": lp_summary(rows[name]),
                            "performance": {cohort: cohort_performance(evaluation)
                                            for cohort, evaluation in block["evaluation"].items()},
                            "table_one": table_one}}


def freeze_cnn_model(out_dir: Path, run_dir: Path, *, endpoints: Mapping[str, Mapping[str, Any]],
                     training: Sequence[str], protocol_sha256: str, study_name: str, synthetic: bool) -> Path:
    """Write ``cnn_bundle.json`` (format /2) and ``weights/*.npz`` into ``out_dir``; return the
    bundle path. ``endpoints``: name -> {name, label, time, event, unit} of every survival
    endpoint; ``training``: the development (training) partitions."""
    networks = read_json(run_dir / "deep" / "networks.json")
    training_record = read_json(run_dir / "deep" / "training.json")
    crops = read_json(run_dir / "deep" / "crops.json")
    risk = read_json(run_dir / "statistics" / "risk_scores.json")
    table_one_file = run_dir / "statistics" / "table_one.json"
    table_one = read_json(table_one_file) if table_one_file.exists() else None
    (out_dir / "weights").mkdir(parents=True, exist_ok=True)
    frozen_networks = {}
    for name, entry in networks.items():
        target = out_dir / entry["weights"]
        shutil.copyfile(run_dir / "deep" / entry["weights"], target)
        record = training_record["networks"].get(name, {})
        frozen_networks[name] = {**entry, "weights_sha256": sha256_file(target),
                                 "interval_cutoffs": record.get("cutoffs"), "endpoint": record.get("endpoint")}
    scores = {name: cnn_score_record(run_dir, name, block, endpoints[block["endpoint"]], training, table_one)
              for name, block in risk["scores"].items()}
    from studyrunner.deep.network import RESPONSE_HEADS

    response = {name: {"head": RESPONSE_HEADS[name], "positive": "score >= cutoff",
                       "youden_cutoff": (block["by_cohort"].get("training") or {}).get("cutoff")}
                for name, block in (risk.get("response") or {}).items()}
    content = to_jsonable({
        "format": CNN_BUNDLE_FORMAT,
        "studyrunner_version": __version__,
        "study": study_name,
        "synthetic_training_data": synthetic,
        "protocol_sha256": protocol_sha256,
        "crop": crops["crop"],
        "zscore": crops["zscore"],
        "networks": frozen_networks,
        "scores": scores,
        "response_scores": response,
        "score_definition": "network outputs (raw) -> score = sum of output_coefficients x outputs; "
                            "fused score = sum of fused_coefficients x component scores; "
                            "PRS/PDS = sigmoid of the heads",
        "versions": package_versions(CNN_VERSIONED_PACKAGES),
    })
    path = out_dir / "cnn_bundle.json"
    write_json(path, {**content, "content_sha256": sha256_json(content)})
    return path


def freeze_run(loaded: LoadedProtocol, run_dir: Path, stage_dir: Path) -> None:
    """The model stage: freeze the run's radiomics model (``bundle.json``) and, when it has
    them, its CNNs (``cnn_bundle.json`` with the weights); a run that fitted no radiomics model
    records why in ``not_frozen.json``."""
    protocol = loaded.protocol
    study = protocol.study
    if (run_dir / "statistics" / "risk_scores.json").exists():
        endpoints = {name: {"name": name, "label": e.label, "time": e.time, "event": e.event, "unit": e.unit}
                     for name, e in protocol.time_to_event_endpoints().items()}
        freeze_cnn_model(stage_dir, run_dir, endpoints=endpoints, training=protocol.cohort.split.training,
                         protocol_sha256=loaded.sha256, study_name=study.name, synthetic=study.synthetic)
    model = read_json(run_dir / "statistics" / "model.json")
    if "coefficients" not in model:
        write_json(stage_dir / "not_frozen.json", {"reason": model.get("note", "no model was fitted")})
        return
    from studyrunner.statistics.baseline_survival import baseline_survival

    endpoint = protocol.endpoints[model["endpoint"]]
    training = protocol.cohort.split.training
    rows = development_rows(run_dir, model["time"], model["event"], training)
    params = run_dir / "radiomics" / "params.yaml"
    freeze_model(stage_dir, model=model, normalisation=read_json(run_dir / "statistics" / "normalisation.json"),
                 radiomics_params_text=params.read_text() if params.exists() else None,
                 endpoint={"label": endpoint.label, "unit": getattr(endpoint, "unit", None)},
                 baseline=baseline_survival(rows, model["time"], model["event"], "risk_score"),
                 development=development_record(run_dir, rows, model["event"], training),
                 protocol_sha256=loaded.sha256, study_name=study.name, synthetic=study.synthetic)


def write_updated_bundle(parent: RadiomicsBundle, out_dir: Path, *, method: str, description: str, slope: float,
                         baseline_survival: Mapping[str, Any], cohort: str) -> Path:
    """Write the model updated on an external cohort as a new bundle beside, never over, its
    parent: the parent's content with the coefficients and cut-off multiplied by ``slope``
    (the updated LP is slope x the frozen LP, so the risk groups stay the same patients), the
    re-estimated Breslow baseline survival, ``parent_sha256`` (the frozen model's hash) and
    ``updating`` (method, slope, the cohort it was updated on). Returns its path."""
    content = load_bundle(parent.source, BUNDLE_FORMAT)
    parent_sha256 = content.pop("content_sha256")
    content["coefficients"] = {name: slope * coef for name, coef in content["coefficients"].items()}
    content["cutoff"] = {**content["cutoff"], "value": slope * content["cutoff"]["value"]}
    content["baseline_survival"] = dict(baseline_survival)
    content["parent_sha256"] = parent_sha256
    content["updating"] = {"method": method, "description": description, "slope": slope, "cohort": cohort}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "bundle.json"
    write_json(path, {**content, "content_sha256": sha256_json(content)})
    return path
