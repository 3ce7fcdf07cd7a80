"""The study protocol: a strict, clinician-readable YAML schema.

The protocol is the single source of truth of a study. Every section is validated by
pydantic with unknown keys forbidden, so a typo is an error rather than a silently ignored
setting. Errors name the YAML path (``endpoints.os.time: field required``), the file and,
where the key exists in the file, its line.

Paths inside a protocol are relative to the protocol file.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from studyrunner.registry import (
    LEARNER_NAMES,
    CutoffMethod,
    LearnerName,
    MaxstatPmethod,
    SignatureCutoffMethod,
)
from studyrunner.strict_yaml import YamlInputError, decode_utf8, load_yaml_text


class ProtocolError(Exception):
    """A protocol that cannot be used; the message names the file and each bad YAML path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- study ---------------------------------------------------------------------------

class StudyIdentity(_Strict):
    """Who and what: the study's identity and reproducibility seed."""

    name: str
    description: str = ""
    synthetic: bool = Field(
        False, description="True when the cohort is generated; every output is then labelled SYNTHETIC DATA.")
    seed: int = Field(20220415, description="Seed for every random step (splits, synthetic data, R).")


class StudySection(StudyIdentity):
    """A development study (``studyrunner run``)."""

    kind: Literal["development"] = Field(
        "development", description="development (this schema) or external_validation (studyrunner external)")
    tripod_type: Literal["1a", "1b", "2a", "2b", "3", "4"] = Field(
        "2a", description="TRIPOD study type (Collins et al., BMJ 2015): 2a/2b = development with random/non-random "
                          "split validation, 3 = external validation.")


# --- cohort --------------------------------------------------------------------------

class SyntheticSource(_Strict):
    """Materialise the cohort with studyrunner's generator when the files are absent."""

    generator: Literal["nsclc_ici", "escc_ici_chemo"]
    n_patients: int = Field(236, ge=8)
    seed: int = 20220415
    site: Literal["development", "external"] = Field(
        "development", description="nsclc_ici only: 'external' makes another hospital's cohort (older, more "
                                   "stage IV, thicker slices, another scanner's noise and kernel)")

    @model_validator(mode="after")
    def _site_of_generator(self) -> SyntheticSource:
        if self.site != "development" and self.generator != "nsclc_ici":
            raise ValueError(f"site {self.site!r} is available for the nsclc_ici generator only")
        return self


class ManifestColumns(_Strict):
    id: str = "patient_id"
    image: str = "image"
    mask: str = "mask"
    second_reader_mask: str | None = None
    structure: str | None = Field(
        None, description="column naming each case's tumour structure in a DICOM mask: RTSTRUCT ROI names "
                          "separated by '|' (first match, case-insensitive) or a DICOM-SEG segment number or "
                          "label; an empty cell takes cohort.mask_structure")


class MaskStructure(_Strict):
    """Which structure of a DICOM mask is the tumour (RTSTRUCT ROI or DICOM-SEG segment)."""

    roi_names: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="RTSTRUCT ROI names and synonyms, tried in order, case-insensitive "
                                          "(e.g. ['GTV-1', 'GTVp', 'gtv']); the name that matched is recorded")
    segment: Annotated[int, Field(ge=1)] | Annotated[str, Field(min_length=1)] | None = Field(
        None, description="DICOM-SEG segment: its SegmentNumber or its SegmentLabel (case-insensitive)")


NO_SPLIT_PARTITION = "development"

Operator = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in", "missing", "not_missing"]


class EligibilityRule(_Strict):
    """One inclusion or exclusion criterion, e.g. ``{column: age, op: '>=', value: 18, reason: adult}``."""

    column: str
    op: Operator
    value: Any = None
    reason: str

    @model_validator(mode="after")
    def _value_needed(self) -> EligibilityRule:
        if self.op not in ("missing", "not_missing") and self.value is None:
            raise ValueError(f"operator {self.op!r} needs a value")
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"operator {self.op!r} needs a list value")
        return self


class SplitSection(_Strict):
    """How patients are allocated to partitions (seed 000: modelling/validation/test).

    ``method: none`` keeps every patient in one ``development`` partition: the study is
    validated internally by cross-validation (seed 001).
    """

    method: Literal["stratified", "site", "none"] = "stratified"
    counts: dict[str, NonNegativeInt] | None = None
    fractions: dict[str, Annotated[float, Field(ge=0, le=1)]] | None = None
    stratify_on: list[str] = Field(default_factory=list)
    site_column: str | None = None
    sites: dict[str, str] | None = Field(None, description="site value -> partition (method: site)")
    training: list[str] = Field(description="partitions that form the training cohort")
    test: list[str] = Field(default_factory=list, description="partitions touched only at evaluation")

    @model_validator(mode="after")
    def _consistent(self) -> SplitSection:
        if self.method == "none":
            if self.counts or self.fractions or self.sites:
                raise ValueError("split method 'none' takes no counts, fractions or sites")
            names = {NO_SPLIT_PARTITION}
        elif self.method == "stratified":
            if (self.counts is None) == (self.fractions is None):
                raise ValueError("a stratified split needs exactly one of 'counts' or 'fractions'")
            if self.fractions is not None and abs(sum(self.fractions.values()) - 1) > 1e-6:
                raise ValueError(f"split fractions must sum to 1 (they sum to {sum(self.fractions.values()):g})")
            names = set(self.counts or self.fractions or {})
        else:
            if not self.site_column or not self.sites:
                raise ValueError("a site split needs 'site_column' and 'sites'")
            names = set(self.sites.values())
        unknown = [p for p in self.training + self.test if p not in names]
        if unknown:
            raise ValueError(f"training/test name partitions that the split does not define: {unknown}")
        if set(self.training) & set(self.test):
            raise ValueError("a partition cannot be both training and test")
        return self

    @property
    def partitions(self) -> list[str]:
        if self.method == "none":
            return [NO_SPLIT_PARTITION]
        if self.method == "site":
            return list(dict.fromkeys((self.sites or {}).values()))
        return list(self.counts or self.fractions or {})


class BaselineVariable(_Strict):
    """A clinical characteristic shown in Table 1."""

    column: str
    label: str
    type: Literal["categorical", "continuous"]
    levels: list[str] | None = Field(None, description="allowed levels after value mapping (categorical)")
    missing_label: str = "Unknown"


class ClinicalValidation(_Strict):
    suite: str = Field("../validation/clinical_table.yaml", description="Great Expectations suite (YAML, column roles)")
    severities: dict[str, Literal["error", "warning"]] = Field(
        default_factory=dict,
        description="expectation name -> severity; a warning is reported but does not stop the run")
    age_column: str | None = None


class CohortSection(_Strict):
    clinical_table: str
    id_column: str = "patient_id"
    image_manifest: str | None = Field(None, description="CSV of image and mask paths per patient")
    manifest_columns: ManifestColumns = ManifestColumns()
    mask_structure: MaskStructure | None = Field(
        None, description="the tumour's structure when masks are DICOM RTSTRUCT or SEG files (default for every "
                          "case; a manifest structure column overrides it per case)")
    feature_table: str | None = Field(
        None, description="start from this feature table (id column + one column per feature) instead of images")
    feature_table_second_reader: str | None = Field(
        None, description="features from the second segmentation (for the reproducibility filter)")
    synthetic_source: SyntheticSource | None = None
    value_mappings: dict[str, dict[str, str]] = Field(default_factory=dict)
    inclusion: list[EligibilityRule] = Field(default_factory=list)
    exclusion: list[EligibilityRule] = Field(default_factory=list)
    baseline_variables: list[BaselineVariable] = Field(default_factory=list)
    validation: ClinicalValidation = ClinicalValidation()
    split: SplitSection

    @model_validator(mode="after")
    def _one_source(self) -> CohortSection:
        if (self.image_manifest is None) == (self.feature_table is None):
            raise ValueError("give exactly one of 'image_manifest' (images) or 'feature_table' (precomputed features)")
        if self.feature_table_second_reader and not self.feature_table:
            raise ValueError("'feature_table_second_reader' goes with 'feature_table'")
        return self


# --- endpoints -----------------------------------------------------------------------

class TimeToEventEndpoint(_Strict):
    type: Literal["time_to_event"]
    label: str
    time: str
    event: str
    unit: Literal["days", "months", "years"] = "days"
    not_after: str | None = Field(None, description="another time-to-event endpoint this one cannot exceed (PFS <= OS)")


class CategoricalEndpoint(_Strict):
    type: Literal["categorical"]
    label: str
    column: str
    levels: list[str]


Endpoint = Annotated[TimeToEventEndpoint | CategoricalEndpoint, Field(discriminator="type")]


# --- preprocessing and predictors ----------------------------------------------------

class PreprocessingSection(_Strict):
    mask_label: int = 1
    geometry_tolerance: float = Field(1e-3, gt=0)
    resample_spacing: list[PositiveFloat] | None = Field(None, min_length=3, max_length=3,
                                                         description="voxel spacing (x, y, z) in mm, each > 0")
    interpolator: Literal["sitkBSpline", "sitkLinear", "sitkNearestNeighbor"] = "sitkBSpline"


def _original_image_only() -> dict[str, dict[str, Any]]:
    """PyRadiomics' default image types: the original image, no filters."""
    return {"Original": {}}


class RadiomicsPredictors(_Strict):
    """PyRadiomics settings (van Griethuysen et al., Cancer Res 2017)."""

    enabled: bool = True
    image_types: dict[str, dict[str, Any]] = Field(default_factory=_original_image_only)
    feature_classes: list[str] | Literal["all"] = "all"
    bin_width: PositiveFloat | None = 25.0
    bin_count: PositiveInt | None = None
    settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_discretisation(self) -> RadiomicsPredictors:
        if (self.bin_width is None) == (self.bin_count is None):
            raise ValueError("give exactly one of 'bin_width' or 'bin_count'")
        return self


class CropSettings(_Strict):
    """Tumour-centred crop fed to the CNNs (seed 000: 82x82x78 voxels, HU clipped to +-1024)."""

    size_voxels: list[PositiveInt] = Field(default_factory=lambda: [82, 82, 78], min_length=3, max_length=3,
                                   description="crop size (x, y, z) in voxels")
    spacing_mm: list[PositiveFloat] = Field(default_factory=lambda: [1.0, 1.0, 1.0], min_length=3, max_length=3,
                                    description="voxel spacing (x, y, z) of the crop")
    hu_window: list[float] = Field(default_factory=lambda: [-1024.0, 1024.0], min_length=2, max_length=2)


class NetworkSettings(_Strict):
    """Dense-like 3D CNN (Huang et al., CVPR 2017); seed 000: dense blocks of 6, 12, 12, 6 layers,
    508 deep features (growth 32 from 32 initial features with compression 0.5) and a
    256-unit hidden layer."""

    block_layers: list[PositiveInt] = Field(default_factory=lambda: [6, 12, 12, 6], min_length=1)
    growth_rate: int = Field(32, ge=1)
    initial_features: int = Field(32, ge=1)
    hidden_units: int = Field(256, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)


class TrainingPlan(_Strict):
    epochs: int = Field(60, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int | None = Field(15, ge=1, description="stop after this many epochs without a better validation loss")
    augment: bool = Field(True, description="multi-view augmentation: flips, 90-degree axial rotations, shifts")
    max_shift: int = Field(4, ge=0, description="largest shift of the augmentation, voxels")


class SurvivalLossSettings(_Strict):
    """Scale gamma, margin m and threshold score s0 of the seed-000 interval loss (equations
    [1]/[2]); the seed does not print their values, so the protocol must."""

    gamma: float = Field(gt=0)
    margin: float
    threshold: float


class ResponseTask(_Strict):
    """Dual-task network (seed 000: PR and PD heads on the survival network's backbone)."""

    endpoint: str = Field(description="the categorical endpoint with the best overall response")
    partial_response: str = "PR"
    progressive_disease: str = "PD"


class DeviceProfile(_Strict):
    """Settings that replace the main ones when the run's device is the CPU; a section given
    here replaces the whole section."""

    crop: CropSettings | None = None
    network: NetworkSettings | None = None
    training: TrainingPlan | None = None


class DeepLearningPredictors(_Strict):
    """CNN risk vectors and scores (seed 000)."""

    enabled: bool = False
    survival_endpoints: list[str] = Field(
        default_factory=list, description="one survival network per time-to-event endpoint")
    n_intervals: int = Field(
        3, ge=2, description="risk-vector length: cut-offs at the quantiles of training event times")
    survival_loss: SurvivalLossSettings | None = None
    response: ResponseTask | None = None
    fit_partition: str = Field("modelling", description="partition the networks are fitted on")
    model_choice_partition: str = Field("validation", description="partition for early stopping and model choice")
    crop: CropSettings = CropSettings()
    network: NetworkSettings = NetworkSettings()
    training: TrainingPlan = TrainingPlan()
    cpu: DeviceProfile | None = Field(None, description="settings used instead when the run's device is the CPU")
    gradcam_patients: int = Field(3, ge=0, description="patients per score whose Grad-CAM overlays the report shows")

    def profile(self, device: str) -> tuple[CropSettings, NetworkSettings, TrainingPlan, str]:
        """The crop, network and training settings that run on ``device`` and the profile's name."""
        if device == "cpu" and self.cpu is not None:
            return (self.cpu.crop or self.crop, self.cpu.network or self.network,
                    self.cpu.training or self.training, "cpu")
        return self.crop, self.network, self.training, "main"


class PredictorsSection(_Strict):
    radiomics: RadiomicsPredictors = RadiomicsPredictors()
    deep_learning: DeepLearningPredictors = DeepLearningPredictors()


# --- statistics ----------------------------------------------------------------------

class ReproducibilityPlan(_Strict):
    """Keep features reproducible between two segmentations: ICC above a threshold.

    The ICC form follows Shrout & Fleiss (Psychol Bull 1979) and Koo & Li (J Chiropr Med
    2016); the default, two-way random effects, absolute agreement, single rater, is ICC(2,1).
    Computed on the training patients that have a second segmentation.
    """

    icc_model: Literal["oneway", "twoway"] = "twoway"
    icc_type: Literal["consistency", "agreement"] = "agreement"
    icc_unit: Literal["single", "average"] = "single"
    threshold: float = Field(0.8, gt=0, lt=1)


class ScreeningPlan(_Strict):
    method: Literal["univariate_cox"] = "univariate_cox"
    p_threshold: float = Field(0.05, gt=0, le=1)
    correlation_threshold: float | None = Field(
        0.9, gt=0, le=1, description="without 'selection': drop a feature whose |Pearson r| with a better-ranked kept "
                                     "feature exceeds this")
    max_features: int | None = Field(
        5, ge=1, description="without 'selection': at most this many features enter the multivariable model")


Learner = LearnerName
ALL_LEARNERS: tuple[str, ...] = LEARNER_NAMES


def _all_learners() -> list[Learner]:
    """Every learner, in the registry's order (registry asserts LearnerName lists LEARNER_NAMES)."""
    return list(get_args(LearnerName))


class SelectionPlan(_Strict):
    """Machine-learning feature selection on the screened features (seed 001: six learners)."""

    learners: list[Learner] = Field(default_factory=_all_learners, min_length=1)
    combine: Literal["intersection", "votes"] = "intersection"
    min_votes: int | None = Field(
        None, ge=1, description="with combine: votes, features chosen by at least this many learners")
    superpc_top: int = Field(50, ge=1, description="SuperPC keeps the top-N feature scores")
    inner_folds: int = Field(5, ge=2, description="cross-validation folds inside glmnet, CoxBoost, GBM and SuperPC")
    learner_settings: dict[Learner, dict[str, Any]] = Field(
        default_factory=dict, description="extra arguments per learner, e.g. {gbm: {n_trees: 500}}")

    @model_validator(mode="after")
    def _votes(self) -> SelectionPlan:
        if (self.combine == "votes") != (self.min_votes is not None):
            raise ValueError("'min_votes' is needed with combine: votes, and only then")
        if self.min_votes is not None and self.min_votes > len(self.learners):
            raise ValueError(f"min_votes {self.min_votes} exceeds the {len(self.learners)} learners")
        return self


class RiskGroups(_Strict):
    cutoff: SignatureCutoffMethod = "training_median"
    pmethod: MaxstatPmethod = Field(
        "Lau94", description="maxstat p-value approximation (Lausen & Schumacher 1992, Hothorn & Lausen 2003)")


class CrossValidationPlan(_Strict):
    """Repeated K-fold cross-validation rerunning reproducibility, scaling, screening,
    selection and the model inside each training fold (no leakage)."""

    folds: int = Field(3, ge=2)
    repeats: int = Field(10, ge=1)


def bootstrap_replicates_field() -> Any:
    """The number of bootstrap replicates behind the calibration measures' intervals (one definition for
    the radiomics model, the CNN scores and the external validation)."""
    return Field(200, ge=0, le=10000,
                 description="bootstrap percentile 95% intervals of the Brier score, IPA, ICI, E50 and E90 at each "
                             "calibration time from this many resamples of the cohort's patients, score and baseline "
                             "frozen (seeded by study.seed); 0: none")


class EvaluationPlan(_Strict):
    """Times are in the primary endpoint's unit."""

    time_roc_times: list[PositiveFloat] = Field(default_factory=list,
                                                description="time-dependent ROC/AUC at these times")
    time_roc_min_cases_controls: int = Field(
        10, ge=1, description="an AUC at a time with fewer cases (event before t) or fewer controls (event-free "
                              "beyond t) than this is withheld from the report's tables and summary (kept in "
                              "results.json under time_roc.withheld); the cross-validated AUC at that time likewise, "
                              "by the training cohort's counts")
    calibration_times: list[PositiveFloat] = Field(
        default_factory=list,
        description="calibration of the radiomics model at these times: its frozen predicted risk 1 - S0(t)^exp(lp), "
                    "S0 the training cohort's Breslow baseline, in every cohort (apparent on training) and "
                    "cross-validated (out-of-fold predictions with each fold's baseline)")
    calibration_groups: int = Field(3, ge=2, le=10, description="groups of predicted risk in the calibration tables")
    bootstrap_replicates: int = bootstrap_replicates_field()
    decision_curve_times: list[PositiveFloat] = Field(
        default_factory=list, description="decision curves of the frozen predicted risk at these times")
    decision_threshold_range: tuple[float, float] | None = Field(
        None,
        description="the clinically sensible range [low, high] of threshold probabilities (decided before the "
                    "analysis from the decision the model informs); the report counts the thresholds within it where "
                    "the model's net benefit exceeds both treating all and treating none")
    cross_validation: CrossValidationPlan | None = None

    @model_validator(mode="after")
    def _threshold_range_is_ordered(self) -> EvaluationPlan:
        """A threshold range is two probabilities in [0, 1), low below high."""
        bounds = self.decision_threshold_range
        if bounds is not None and not 0 <= bounds[0] < bounds[1] < 1:
            raise ValueError(f"decision_threshold_range: need 0 <= low < high < 1, got {list(bounds)}")
        return self


class RiskScorePlan(_Strict):
    """Statistics of the CNN risk vectors (seed 000): backward Cox selection over each
    endpoint's interval scores (-> OSRS, PFSRS), Cox fusion into a multi-endpoint score for
    ``fusion_endpoint`` (-> MOSRS), cut-offs, clinical Cox models, nomogram, subgroups."""

    selection_p: float = Field(0.05, gt=0, le=1, description="backward elimination drops terms with Wald p above this")
    cutoff: CutoffMethod = Field(
        "xtile", description="high/low cut-off chosen on the training cohort")
    fusion_endpoint: str | None = Field(None, description="endpoint of the fused score (seed: OS -> MOSRS)")
    clinical_covariates: list[str] = Field(
        default_factory=list, description="baseline columns for the Cox tables and nomogram")
    multivariable_p: float = Field(
        0.05, gt=0, le=1, description="univariate p below which a covariate enters the multivariable model")
    nomogram_times: list[PositiveFloat] = Field(
        default_factory=list, description="survival probabilities drawn on the nomogram")
    calibration_times: list[PositiveFloat] = Field(
        default_factory=list,
        description="calibration of every score at these times: its predicted risk from the training cohort's "
                    "Breslow baseline survival, on training (apparent) and test")
    calibration_groups: int = Field(4, ge=2, le=10, description="groups of predicted risk in the calibration tables")
    bootstrap_replicates: int = bootstrap_replicates_field()
    subgroups: list[str] = Field(default_factory=list, description="columns for subgroup KM/HR (clinical columns or "
                                 "names given in feature_columns); a numeric column is split at its training median")
    feature_columns: dict[str, str] = Field(
        default_factory=dict,
        description="subgroup columns taken from a radiomics feature of the same patient, e.g. "
                    "{tumour_size: original_shape_Maximum3DDiameter} (the nsclc_ici paper's tumour size, the 3D "
                    "maximum diameter in mm)")
    response_subgroups: list[str] = Field(
        default_factory=list, description="columns for subgroup ROC of the response scores")


class SubgroupColumn(_Strict):
    """A clinical-table column whose levels (or, with ``cuts``, intervals) form subgroups."""

    column: str
    label: str = Field(description="the subgroup variable's name in the report, e.g. Sex or Age group")
    cuts: list[float] | None = Field(
        None, min_length=1, description="a numeric column is grouped at these values: [65] -> < 65 and >= 65")


class SubgroupPlan(_Strict):
    """Performance of the model's risk score within subgroups: Harrell's C with its CI per
    subgroup and the likelihood-ratio test of a score x subgroup interaction in a Cox model,
    in each cohort."""

    centre: SubgroupColumn | None = Field(
        None, description="the column naming each patient's centre or hospital (heterogeneity across clusters, "
                          "TRIPOD+AI 12d and 23b); none: the data hold one centre or do not record it")
    heterogeneity: list[SubgroupColumn] = Field(
        default_factory=list, description="clinical subgroups across which heterogeneity is examined (23b)")
    fairness: list[SubgroupColumn] = Field(
        default_factory=list, description="groups in which performance is compared for fairness, e.g. sex and age "
                                          "group (TRIPOD+AI 14)")


class StatisticsSection(_Strict):
    endpoint: str = Field(description="the time-to-event endpoint the model predicts")
    reproducibility: ReproducibilityPlan | None = None
    screening: ScreeningPlan = ScreeningPlan()
    selection: SelectionPlan | None = None
    model: Literal["cox", "stepwise_cox"] = Field(
        "cox", description="cox: all selected features; stepwise_cox: MASS::stepAIC in both directions (minimum AIC)")
    risk_groups: RiskGroups = RiskGroups()
    evaluation: EvaluationPlan = EvaluationPlan()
    km_times: list[NonNegativeFloat] | None = Field(
        None, description="times for the numbers-at-risk table; default: 6 even steps")
    risk_scores: RiskScorePlan | None = Field(
        None, description="statistics of the CNN risk scores (needs predictors.deep_learning)")
    subgroups: SubgroupPlan = Field(
        SubgroupPlan(), description="the model's C-index per centre and per subgroup (TRIPOD+AI 12d, 14, 23b)")


# --- report --------------------------------------------------------------------------

class PublishedResult(_Strict):
    """One result as the source paper states it, and where this run holds the same quantity."""

    name: str = Field(description="what the number is, e.g. 'Time-dependent AUC at 12 months, training cohort'")
    value: float | None = Field(None, description="the number as the paper states it")
    stated: str | None = Field(None, description="the paper's words when they are not one number, e.g. 'P<0.001'")
    digits: int | None = Field(None, ge=0, le=6, description="decimals of the paper's number; this run's value "
                                                             "is printed with as many")
    results_path: str | None = Field(
        None, description="dotted path of the same quantity in results.json (dict keys, list indices, 'count' "
                          "for a list's length), e.g. 'cross_validation.validation.12.median'; none when this run "
                          "has no counterpart")
    note: str | None = Field(None, description="where in the paper, or how the two differ")
    format: Literal["number", "p"] = Field("number", description="p: both values print as p-values")

    @model_validator(mode="after")
    def _stated(self) -> PublishedResult:
        if self.value is None and self.stated is None:
            raise ValueError(f"published result {self.name!r}: give its 'value' or its 'stated' words")
        return self


class PublishedSource(_Strict):
    """The source paper of a study: its citation, the results it reports and the features of its
    final model, for the report's "Published vs this run" comparison."""

    citation: str = Field(description="the paper as it is cited; only what the paper itself states")
    results: list[PublishedResult] = Field(default_factory=list)
    features: list[str] = Field(default_factory=list, description="the features of the paper's final model, as "
                                                                  "the paper names them (matched ignoring case "
                                                                  "and punctuation)")


class ReportSection(_Strict):
    title: str
    authors: list[str] = Field(default_factory=list)
    affiliations: list[str] = Field(default_factory=list)
    funding: str | None = None
    ethics: str | None = None
    registration: str | None = None
    data_availability: str | None = None
    conflicts: str | None = None
    keywords: list[str] = Field(default_factory=list)
    # The authors' words for the TRIPOD+AI items a run cannot answer (Collins GS et al., BMJ
    # 2024;385:e078378); a missing one is printed as "To be completed by the authors".
    context: str | None = Field(None, description="TRIPOD+AI 3a: the healthcare context and the rationale for "
                                                  "developing or evaluating the model")
    intended_use: str | None = Field(None, description="TRIPOD+AI 3b: the target population and the model's "
                                                       "intended purpose, users and place in the care pathway")
    health_inequalities: str | None = Field(None, description="TRIPOD+AI 3c: known health inequalities between "
                                                              "sociodemographic groups")
    data_collection_dates: str | None = Field(None, description="TRIPOD+AI 5b: start and end of participant "
                                                                "accrual and the end of follow-up")
    setting: str | None = Field(None, description="TRIPOD+AI 6a: the setting (e.g. tertiary hospital), "
                                                  "locations and number of centres")
    treatments: str | None = Field(None, description="TRIPOD+AI 6c: treatments the participants received and how "
                                                     "they were handled in the model")
    outcome_assessment: str | None = Field(None, description="TRIPOD+AI 8b: who assessed the outcome, how and "
                                                             "when (e.g. RECIST 1.1 by radiologists)")
    outcome_blinding: str | None = Field(None, description="TRIPOD+AI 8c: whether outcome assessors knew the "
                                                           "predictors")
    predictor_assessment: str | None = Field(None, description="TRIPOD+AI 9c: who measured the predictors "
                                                               "(e.g. who segmented the tumours) and whether they "
                                                               "knew the outcome")
    patient_involvement: str | None = Field(None, description="TRIPOD+AI 19: patient and public involvement")
    interpretation: str | None = Field(None, description="TRIPOD+AI 25: overall interpretation of the results, "
                                                         "fairness included")
    limitations: str | None = Field(None, description="TRIPOD+AI 26: limitations (non-representative sample, "
                                                      "sample size, overfitting, missing data)")
    user_interaction: str | None = Field(None, description="TRIPOD+AI 27b: whether users interact with the inputs "
                                                           "and what expertise they need")
    applicability: str | None = Field(None, description="TRIPOD+AI 27c: applicability and future research")
    published: PublishedSource | None = Field(None, description="the source paper's results and final features, "
                                                                "set beside this run's in the report")


# --- execution -----------------------------------------------------------------------

# local | dask:N | a Dask scheduler address (studyrunner.cluster parses it).
CLUSTER_SPEC_PATTERN = r"^(local|dask:[1-9][0-9]*|(tcp|tls|ucx)://[^\s:/]+:[0-9]+)$"


class ExecutionSection(_Strict):
    """Where per-case work runs by default; ``--cluster`` on the command line wins. The
    numbers do not depend on it, so no stage's fingerprint covers it."""

    cluster: str = Field("local", pattern=CLUSTER_SPEC_PATTERN, description=(
        "local (this machine's process pool, --workers), dask:N (a Dask LocalCluster of N worker "
        "processes) or tcp://host:port (an existing Dask scheduler; the inputs on a shared filesystem)"))


# --- the protocol --------------------------------------------------------------------

class Protocol(_Strict):
    """A whole study protocol."""

    study: StudySection
    cohort: CohortSection
    endpoints: dict[str, Endpoint]
    preprocessing: PreprocessingSection = PreprocessingSection()
    predictors: PredictorsSection = PredictorsSection()
    statistics: StatisticsSection
    report: ReportSection
    execution: ExecutionSection = ExecutionSection()

    @model_validator(mode="after")
    def _cross_references(self) -> Protocol:
        primary = self.endpoints.get(self.statistics.endpoint)
        if not isinstance(primary, TimeToEventEndpoint):
            raise ValueError(f"statistics.endpoint {self.statistics.endpoint!r} must name a time_to_event endpoint "
                             f"(defined: {sorted(self.endpoints)})")
        if self.statistics.reproducibility and not (self.cohort.manifest_columns.second_reader_mask
                                                    or self.cohort.feature_table_second_reader):
            raise ValueError("statistics.reproducibility needs a second segmentation: "
                             "cohort.manifest_columns.second_reader_mask or cohort.feature_table_second_reader")
        self._check_deep_learning()
        for name, endpoint in self.endpoints.items():
            if (isinstance(endpoint, TimeToEventEndpoint) and endpoint.not_after is not None
                    and not isinstance(self.endpoints.get(endpoint.not_after), TimeToEventEndpoint)):
                raise ValueError(f"endpoints.{name}.not_after names {endpoint.not_after!r}, "
                                 "which is not a time_to_event endpoint")
        return self

    def _check_deep_learning(self) -> None:
        deep = self.predictors.deep_learning
        plan = self.statistics.risk_scores
        if plan is not None and not deep.enabled:
            raise ValueError("statistics.risk_scores needs predictors.deep_learning.enabled: true")
        if not deep.enabled:
            return
        if not self.cohort.image_manifest:
            raise ValueError("predictors.deep_learning needs images: cohort.image_manifest")
        if not deep.survival_endpoints and deep.response is None:
            raise ValueError("predictors.deep_learning: give survival_endpoints, a response task, or both")
        self._check_deep_survival(deep)
        self._check_deep_response(deep)
        self._check_deep_partitions(deep)
        if (plan is not None and plan.fusion_endpoint is not None
                and plan.fusion_endpoint not in deep.survival_endpoints):
            raise ValueError(f"statistics.risk_scores.fusion_endpoint {plan.fusion_endpoint!r} must be one of "
                             f"predictors.deep_learning.survival_endpoints {deep.survival_endpoints}")

    def _check_deep_survival(self, deep: DeepLearningPredictors) -> None:
        """Each survival network names a time-to-event endpoint and has a loss."""
        for name in deep.survival_endpoints:
            if not isinstance(self.endpoints.get(name), TimeToEventEndpoint):
                raise ValueError(f"predictors.deep_learning.survival_endpoints names {name!r}, "
                                 f"which is not a time_to_event endpoint (defined: {sorted(self.endpoints)})")
        if deep.survival_endpoints and deep.survival_loss is None:
            raise ValueError("predictors.deep_learning.survival_loss (gamma, margin, threshold) is needed "
                             "with survival_endpoints")

    def _check_deep_response(self, deep: DeepLearningPredictors) -> None:
        """The response task names a categorical endpoint and two of its levels."""
        if deep.response is None:
            return
        response = self.endpoints.get(deep.response.endpoint)
        if not isinstance(response, CategoricalEndpoint):
            raise ValueError(f"predictors.deep_learning.response.endpoint {deep.response.endpoint!r} "
                             "must name a categorical endpoint")
        for level in (deep.response.partial_response, deep.response.progressive_disease):
            if level not in response.levels:
                raise ValueError(f"predictors.deep_learning.response: level {level!r} is not one of "
                                 f"endpoints.{deep.response.endpoint}.levels {response.levels}")

    def _check_deep_partitions(self, deep: DeepLearningPredictors) -> None:
        """Fitting and model choice use two different training partitions."""
        partitions = set(self.cohort.split.training)
        for key in ("fit_partition", "model_choice_partition"):
            if getattr(deep, key) not in partitions:
                raise ValueError(f"predictors.deep_learning.{key} {getattr(deep, key)!r} must be one of the "
                                 f"training partitions {sorted(partitions)}")
        if deep.fit_partition == deep.model_choice_partition:
            raise ValueError("predictors.deep_learning: fit_partition and model_choice_partition must differ")

    def primary_endpoint(self) -> TimeToEventEndpoint:
        """The time-to-event endpoint the statistics plan models."""
        endpoint = self.endpoints[self.statistics.endpoint]
        assert isinstance(endpoint, TimeToEventEndpoint)  # checked by _cross_references
        return endpoint

    def time_to_event_endpoints(self) -> dict[str, TimeToEventEndpoint]:
        return {k: v for k, v in self.endpoints.items() if isinstance(v, TimeToEventEndpoint)}

    def section_digest(self, *sections: str) -> str:
        """SHA-256 of the named sections, used to decide whether a stage must rerun."""
        payload = {s: self.model_dump(mode="json")[s] for s in sections}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class ExternalStudySection(StudyIdentity):
    """An external-validation study: a frozen model applied unchanged to another cohort."""

    kind: Literal["external_validation"]
    tripod_type: Literal["1a", "1b", "2a", "2b", "3", "4"] = Field(
        "4", description="TRIPOD type 4: validation of an existing model on separate data.")


class ExternalValidationPlan(_Strict):
    """How the frozen model is evaluated on the external cohort (nothing is refitted)."""

    endpoint: str = Field(description="this protocol's time-to-event endpoint the model predicts")
    model_endpoint: str | None = Field(
        None, description="the bundle's name of that endpoint when it differs (default: the same name)")
    times: list[PositiveFloat] = Field(min_length=1, description="evaluation times, in this protocol's endpoint unit")
    calibration_groups: int = Field(5, ge=2, le=10, description="groups of predicted risk in the calibration table")
    bootstrap_replicates: int = bootstrap_replicates_field()
    min_events_per_group: int = Field(5, ge=1, description="a risk group with fewer events is flagged in the report")
    updating: list[Literal["baseline", "slope"]] = Field(
        default_factory=list, description="model updating reported beside the frozen model (the radiomics score): "
                                          "baseline = recalibration in the large, slope = slope recalibration")
    response_endpoint: str | None = Field(
        None, description="a categorical endpoint with PR and PD levels (the best overall response): the CNN "
                          "bundle's response scores (PRS, PDS) are validated on it; none: they are not")


class ExternalValidationProtocol(_Strict):
    """A validation protocol: the external cohort, its endpoints, the evaluation plan and the
    report; no model-building section (``studyrunner external MODEL PROTOCOL``)."""

    study: ExternalStudySection
    cohort: CohortSection
    endpoints: dict[str, Endpoint]
    preprocessing: PreprocessingSection = PreprocessingSection()
    validation: ExternalValidationPlan
    report: ReportSection
    execution: ExecutionSection = ExecutionSection()

    @model_validator(mode="after")
    def _endpoint(self) -> ExternalValidationProtocol:
        if not isinstance(self.endpoints.get(self.validation.endpoint), TimeToEventEndpoint):
            raise ValueError(f"validation.endpoint {self.validation.endpoint!r} must name a time_to_event endpoint "
                             f"(defined: {sorted(self.endpoints)})")
        response = self.validation.response_endpoint
        if response is not None:
            endpoint = self.endpoints.get(response)
            if not isinstance(endpoint, CategoricalEndpoint):
                raise ValueError(f"validation.response_endpoint {response!r} must name a categorical endpoint "
                                 f"(defined: {sorted(self.endpoints)})")
            missing = [level for level in ("PR", "PD") if level not in endpoint.levels]
            if missing:
                raise ValueError(f"validation.response_endpoint {response!r}: levels {endpoint.levels} lack {missing}")
        return self

    def primary_endpoint(self) -> TimeToEventEndpoint:
        endpoint = self.endpoints[self.validation.endpoint]
        assert isinstance(endpoint, TimeToEventEndpoint)  # checked by _endpoint
        return endpoint

    def time_to_event_endpoints(self) -> dict[str, TimeToEventEndpoint]:
        return {k: v for k, v in self.endpoints.items() if isinstance(v, TimeToEventEndpoint)}


P = TypeVar("P", Protocol, ExternalValidationProtocol)


class LoadedFile(Generic[P]):
    """A validated protocol together with the file it came from (paths resolve against it)."""

    def __init__(self, protocol: P, path: Path, text: str):
        self.protocol: P = protocol
        self.path = path
        self.text = text

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def resolve(self, relative: str | Path) -> Path:
        """A path written in the protocol, resolved against the protocol's folder."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.path.parent / p).resolve()


LoadedProtocol = LoadedFile[Protocol]
LoadedExternal = LoadedFile[ExternalValidationProtocol]
AnyLoaded = LoadedFile[Protocol] | LoadedFile[ExternalValidationProtocol]
"""A loaded protocol of either kind (the cohort and image stages serve both)."""


def _yaml_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each mapping key's YAML path to its 1-based line, for error messages."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, prefix: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                path = (*prefix, str(key.value))
                lines[path] = key.start_mark.line + 1
                walk(value, path)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*prefix, str(i))] = item.start_mark.line + 1
                walk(item, (*prefix, str(i)))

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


_DISCRIMINATOR_TAGS = {"time_to_event", "categorical"}


def format_validation_error(error: ValidationError, path: Path, text: str) -> str:
    """One line per problem: ``FILE:LINE: yaml.path: message``."""
    lines = _yaml_lines(text)
    out = []
    for err in error.errors():
        loc = [str(p) for p in err["loc"] if str(p) not in _DISCRIMINATOR_TAGS]
        where = ".".join(loc) or "(top level)"
        message = err["msg"]
        if err["type"] == "missing":
            message = "field required"
        elif err["type"] == "extra_forbidden":
            message = "unknown key (not part of the protocol schema; check the spelling)"
        message = message.removeprefix("Value error, ")
        named = re.match(r"([a-z_]+(?:\.[A-Za-z_0-9]+)+)[ :]", message) if not loc else None
        if named and tuple(named.group(1).split(".")) in lines:  # a cross-section check names its path
            loc, where = named.group(1).split("."), named.group(1)
            message = message[named.end():].lstrip(": ")
        line = None
        for cut in range(len(loc), 0, -1):
            line = lines.get(tuple(loc[:cut]))
            if line:
                break
        location = f"{path}:{line}" if line else str(path)
        out.append(f"{location}: {where}: {message}")
    return "\n".join(out)


def _load(path: str | Path, model: type[P], kind: str, wrong_kind: str) -> LoadedFile[P]:
    """Read a protocol file of ``kind`` and validate it as ``model``; ``wrong_kind`` says what
    to do with a protocol of the other kind. Errors name the file (and line and YAML path)."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ProtocolError(f"{path}: protocol file not found")
    try:
        text = decode_utf8(path.read_bytes(), path)
        data = load_yaml_text(text, path)
    except YamlInputError as exc:
        raise ProtocolError(str(exc)) from exc
    except yaml.YAMLError as exc:
        raise ProtocolError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError(f"{path}: a protocol is a YAML mapping with sections study, cohort, endpoints, ...")
    study = data.get("study")
    if (study.get("kind", "development") if isinstance(study, dict) else "development") != kind:
        raise ProtocolError(f"{path}: {wrong_kind.format(name=path.name)}")
    try:
        protocol = model.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(format_validation_error(exc, path, text)) from exc
    return LoadedFile(protocol, path, text)


def load_protocol(path: str | Path) -> LoadedProtocol:
    """Read and validate a development protocol; raise ProtocolError naming the file and YAML paths."""
    return _load(path, Protocol, "development", "study.kind is external_validation: validate a frozen model "
                                                "with `studyrunner external MODEL {name}`")


def load_external_protocol(path: str | Path) -> LoadedExternal:
    """Read and validate an external-validation protocol (``study.kind: external_validation``)."""
    return _load(path, ExternalValidationProtocol, "external_validation",
                 "study.kind must be external_validation for `studyrunner external` (a development "
                 "protocol runs with `studyrunner run {name}`)")


def json_schema(external: bool = False) -> dict[str, Any]:
    """The protocol's JSON Schema, exported to protocols/schema.json for editors (with
    ``external``, the external-validation protocol's: protocols/external.schema.json)."""
    schema = (ExternalValidationProtocol if external else Protocol).model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "studyrunner protocol"
    return schema
