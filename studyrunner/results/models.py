"""The typed contract of ``results.json``: every number the report shows.

Stages write their records; ``results.assemble`` builds a :class:`Results` from them, the
report reads its attributes, and the test fixtures are validated against these models. The
JSON Schema (``protocols/results.schema.json``, ``studyrunner schema --results``) is
generated from them and committed, like the protocol's.

Conventions: every record forbids unknown keys (a renamed key fails loudly instead of
printing nothing); a value that could not be estimated is ``None`` with a ``*_reason`` or
``reason`` saying why; per-time records are keyed by ``registry.time_key``; a section a
stage skipped is a :class:`NotRun` record with the reason.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from studyrunner.protocol import (
    CropSettings,
    EligibilityRule,
    Endpoint,
    NetworkSettings,
    ReportSection,
    TrainingPlan,
)
from studyrunner.registry import CutoffMethod


class Record(BaseModel):
    """A results.json record: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


class OpenRecord(BaseModel):
    """A record whose keys are data (package names, settings of another library)."""

    model_config = ConfigDict(extra="allow")


class NotRun(Record):
    """In place of a section or part that was not computed: the reason, for the report."""

    not_run: str


Number = float | None
Counts = list[int | None]
Numbers = list[float | None]


class Estimate(BaseModel):
    """An estimate with its 95% confidence interval, standard error and the p-value of its
    test, or the reason it could not be estimated: the one shape in which a reader gets a
    hazard ratio, a C-index or an AUC, however the record names its keys (as lifelines'
    ``StatisticalResult`` is one type for every test)."""

    model_config = ConfigDict(frozen=True)

    estimate: Number = None
    lower: Number = None
    upper: Number = None
    se: Number = None
    p: Number = None
    reason: str | None = None


class HypothesisTest(BaseModel):
    """A test statistic with its p-value and how the p-value was computed, or the reason
    there is none."""

    model_config = ConfigDict(frozen=True)

    statistic: Number = None
    p: Number = None
    method: str | None = None
    reason: str | None = None


# --------------------------------------------------------------------------- study and cohort


class StudyRecord(Record):
    name: str
    kind: Literal["development", "external_validation"] = "development"
    description: str | None = None
    synthetic: bool
    seed: int | None = None
    tripod_type: str | None = None
    protocol_file: str | None = None
    protocol_sha256: str | None = None
    run_id: str | None = None
    created_utc: str | None = None
    studyrunner_version: str | None = None


class Exclusion(Record):
    patient_id: str
    stage: str
    reason: str


class Flow(Record):
    """Participant flow: counts and every exclusion with its stage and reason."""

    n_clinical: int
    n_with_images: int | None = None
    predictors_without_clinical: list[str] = Field(
        default_factory=list,
        description="ids in the image manifest (or feature table) with no clinical row: not analysed")
    n_eligible: int | None = None
    exclusions: list[Exclusion] = Field(default_factory=list)
    n_included: int
    partitions: dict[str, int] = Field(default_factory=dict)
    training_partitions: list[str] = Field(default_factory=list)
    test_partitions: list[str] = Field(default_factory=list)
    split_method: str | None = None
    inclusion: list[EligibilityRule] = Field(default_factory=list, description="the protocol's inclusion rules")
    exclusion: list[EligibilityRule] = Field(default_factory=list, description="the protocol's exclusion rules")


class FailingRow(Record):
    patient_id: str | None = None
    column: str | None = None
    value: Any = None


class ExpectationResult(Record):
    name: str
    expectation_type: str
    column: str | None = None
    severity: Literal["error", "warning"]
    success: bool
    unexpected_count: int | None = None
    failing_rows: list[FailingRow] = Field(default_factory=list)


class Validation(Record):
    """The Great Expectations suite run on the clinical table."""

    suite: str
    n_rows: int
    success: bool
    expectations: list[ExpectationResult]


class GroupCount(Record):
    n: int | None = None
    proportion: Number = None


class ContinuousSummary(Record):
    n: int | None = None
    missing: int | None = None
    mean: Number = None
    sd: Number = None
    median: Number = None
    q1: Number = None
    q3: Number = None


class LevelCounts(Record):
    level: str
    counts: dict[str, GroupCount]


class GroupTest(Record):
    groups: list[str]
    test: str | None = None
    statistic: Number = None
    p: Number = None
    message: str | None = None


class SurvivalSummary(Record):
    """A time-to-event endpoint in one group of Table 1: the Kaplan-Meier median with its 95% CI
    and the median follow-up by reverse Kaplan-Meier (Schemper & Smith 1996); None where a
    curve or limit does not reach one half."""

    n: int | None = None
    events: int | None = None
    missing: int | None = None
    median: Number = None
    lower: Number = None
    upper: Number = None
    followup_median: Number = None
    followup_lower: Number = None
    followup_upper: Number = None

    @property
    def km_median(self) -> MedianSurvival:
        return MedianSurvival(median=self.median, lower=self.lower, upper=self.upper)

    @property
    def followup(self) -> MedianSurvival:
        return MedianSurvival(median=self.followup_median, lower=self.followup_lower, upper=self.followup_upper)


class TableOneVariable(Record):
    column: str
    label: str | None = None
    type: Literal["categorical", "continuous", "time_to_event"]
    event: str | None = Field(None, description="time_to_event: the event column (column is the time)")
    levels: list[LevelCounts] = Field(default_factory=list)
    summary: dict[str, ContinuousSummary] = Field(default_factory=dict)
    survival: dict[str, SurvivalSummary] = Field(default_factory=dict)
    tests: list[GroupTest | None] = Field(default_factory=list)


class GroupSize(Record):
    n: int


class TableOne(Record):
    """Table 1: characteristics per cohort with the tests between cohorts."""

    groups: dict[str, GroupSize]
    comparisons: list[list[str]] = Field(default_factory=list)
    variables: list[TableOneVariable]


# --------------------------------------------------------------------------- predictors


class RadiomicsRecord(Record):
    """PyRadiomics settings and counts of the feature extraction (or the imported tables)."""

    n_cases: int | None = None
    n_features: int | None = None
    n_second_reader: int | None = None
    image_types: list[str] = Field(default_factory=list)
    feature_classes: list[str] = Field(default_factory=list)
    pyradiomics_version: str | None = None
    params_file: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    source: str | None = Field(None, description="a study started from feature tables: where they came from")


# --------------------------------------------------------------------------- the radiomics model


class ScreeningRow(Record):
    """One candidate feature's univariable Cox model (HR per SD, Wald p)."""

    feature: str
    hr: Number = None
    hr_lower: Number = None
    hr_upper: Number = None
    p: Number = None
    kept: bool

    @property
    def hazard_ratio(self) -> Estimate:
        return Estimate(estimate=self.hr, lower=self.hr_lower, upper=self.hr_upper, p=self.p)


class Screening(Record):
    p_threshold: float
    correlation_threshold: Number = Field(None, description="|Spearman r| above which a screened feature was "
                                                            "pruned; None: no pruning")
    max_features: int | None = Field(None, description="cap on the features entering the model; None: no cap")
    n_candidates: int | None = None
    n_features_extracted: int | None = None
    n_kept: int
    selected_after_pruning: list[str] = Field(default_factory=list)
    top: list[ScreeningRow] = Field(default_factory=list)


class Coefficient(Record):
    """One term of a Cox model (R survival::coxph)."""

    term: str
    coef: Number = None
    se: Number = None
    z: Number = None
    p: Number = None
    hr: Number = None
    hr_lower: Number = None
    hr_upper: Number = None
    exp_coef: Number = None
    exp_neg_coef: Number = None
    lower: Number = None
    upper: Number = None
    sd: Number = Field(None, description="SD of the term over the training cohort (per-SD hazard ratio)")
    hr_per_sd: Number = None
    hr_per_sd_lower: Number = None
    hr_per_sd_upper: Number = None

    @property
    def hazard_ratio_per_sd(self) -> Estimate:
        """exp(coef * SD) with its Wald interval: the HR per training-cohort SD of the term."""
        return Estimate(estimate=self.hr_per_sd, lower=self.hr_per_sd_lower, upper=self.hr_per_sd_upper, p=self.p)

    @property
    def hazard_ratio(self) -> Estimate:
        """exp(coef) with its Wald interval: ``hr``/``hr_lower``/``hr_upper`` of survival::coxph's
        table, or ``exp_coef``/``lower``/``upper`` of the stepwise model's (the escc_ici_chemo
        paper's Table 2 layout)."""
        return Estimate(estimate=self.hr if self.hr is not None else self.exp_coef,
                        lower=self.hr_lower if self.hr_lower is not None else self.lower,
                        upper=self.hr_upper if self.hr_upper is not None else self.upper, p=self.p)


class CoxFit(Record):
    concordance: Number = None
    loglik: Number = None
    aic: Number = None
    n: int | None = None
    n_events: int | None = None


class Cutoff(Record):
    """The high/low cut-off of a score, chosen on the training cohort (``statistics.cutoffs``):
    ``method`` is the registry key, ``label`` its name in the report; ``statistic`` and
    ``p_value`` (corrected for the search over cut-offs by ``pmethod``) for an optimised
    cut-off, ``p_naive`` and ``n_cutoffs`` for the X-tile scan."""

    value: Number
    method: CutoffMethod
    label: str
    statistic: Number = None
    p_value: Number = None
    pmethod: str | None = None
    p_naive: Number = None
    n_cutoffs: int | None = None

    @property
    def search_test(self) -> HypothesisTest:
        """The maximal log-rank statistic of the search, its p-value corrected for the search."""
        return HypothesisTest(statistic=self.statistic, p=self.p_value, method=self.pmethod)


class ModelRecord(Record):
    """The radiomics Cox model: screening, coefficients, fit and cut-off."""

    endpoint: str
    method: str
    note: str | None = None
    notes: list[str] = Field(default_factory=list)
    screening: Screening
    coefficients: list[Coefficient] = Field(default_factory=list)
    aic: Number = None
    fit: CoxFit | None = None
    cutoff: Cutoff | None = None
    normalisation: str | None = None
    implementation: dict[str, str] = Field(default_factory=dict)


class IccRow(Record):
    feature: str
    icc: Number = None
    lower: Number = None
    upper: Number = None


class Reproducibility(Record):
    """Inter-reader ICC of every feature and the reproducibility filter."""

    form: str
    threshold: float
    n_patients: int
    n_features: int
    n_kept: int
    icc: Numbers = Field(default_factory=list)
    lowest: list[IccRow] = Field(default_factory=list)


class LearnerChoice(Record):
    features: list[str] = Field(default_factory=list)
    implementation: str | None = None
    error: str | None = None
    package_error: str | None = None
    """The CRAN package was installed but stopped with this error; the in-project
    implementation of the same method ran instead (``implementation``)."""


class Selection(Record):
    """What each learner chose and how the choices were combined."""

    p_threshold: float
    n_candidates: int | None = None
    screened: list[str] = Field(default_factory=list)
    learners: dict[str, LearnerChoice]
    combine: str
    min_votes: int | None = None
    combined: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class FoldSummary(Record):
    """The AUC at one time over the folds: median, range, how many folds estimated it, each value."""

    median: Number = None
    min: Number = None
    max: Number = None
    n: int | None = None
    values: Numbers = Field(default_factory=list)


class FoldFailure(Record):
    repeat: int
    fold: int
    reason: str


class CrossValidation(Record):
    """Repeated K-fold cross-validation of the whole development (AUC per time)."""

    description: str | None = None
    folds: int
    repeats: int
    times: list[float]
    time_unit: str | None = None
    training: dict[str, FoldSummary | None] = Field(default_factory=dict)
    validation: dict[str, FoldSummary | None] = Field(default_factory=dict)
    n_fits: int | None = None
    n_failed: int | None = None
    failures: list[FoldFailure] = Field(default_factory=list)
    feature_frequency: dict[str, int] = Field(default_factory=dict,
                                              description="the features chosen most often over the folds")
    n_no_features: int | None = Field(None, description="fits whose development selected no feature (among n_failed)")
    per_repeat: list[RepeatFailures] = Field(default_factory=list)
    selection_frequency: list[FeatureSelectionCount] = Field(
        default_factory=list, description="how often each feature of the final model was selected over the folds")
    calibration: CrossValidatedCalibration | NotRun | None = None


# --------------------------------------------------------------------------- evaluation


class KmCurve(Record):
    """Kaplan-Meier steps of one group (R survival::survfit); the counts per step are kept
    for readers of results.json (the report draws the curves and the numbers-at-risk table)."""

    time: Numbers
    surv: Numbers
    lower: Numbers
    upper: Numbers
    n_risk: Numbers = Field(default_factory=list)
    n_event: Numbers = Field(default_factory=list)
    n_censor: Numbers = Field(default_factory=list)


class RiskTable(Record):
    """Numbers at risk per group at the table's times."""

    times: Numbers
    low: Counts = Field(default_factory=list)
    high: Counts = Field(default_factory=list)


class GroupEvents(Record):
    n: int
    n_events: int


class MedianSurvival(Record):
    median: Number = None
    lower: Number = None
    upper: Number = None


class Stratification(Record):
    """One score in one cohort: Harrell's C with its CI, HR and log-rank of high vs low at
    the cut-off, Kaplan-Meier curves, numbers at risk and each group's median survival."""

    n: int | None = None
    n_events: int | None = None
    cutoff: Number = None
    c_index: Number = None
    c_se: Number = None
    c_lower: Number = None
    c_upper: Number = None
    groups: dict[str, GroupEvents] = Field(default_factory=dict)
    hr: Number = None
    hr_lower: Number = None
    hr_upper: Number = None
    hr_p: Number = None
    hr_reason: str | None = None
    logrank_chisq: Number = None
    logrank_p: Number = None
    logrank_reason: str | None = None
    km: dict[str, KmCurve] = Field(default_factory=dict)
    risk_table: RiskTable | None = None
    median_survival: dict[str, MedianSurvival] = Field(default_factory=dict)

    @property
    def concordance(self) -> Estimate:
        """Harrell's C with its CI."""
        return Estimate(estimate=self.c_index, lower=self.c_lower, upper=self.c_upper, se=self.c_se)

    @property
    def hazard_ratio(self) -> Estimate:
        """The Cox hazard ratio of the high- against the low-risk group."""
        return Estimate(estimate=self.hr, lower=self.hr_lower, upper=self.hr_upper, p=self.hr_p,
                        reason=self.hr_reason)

    @property
    def logrank(self) -> HypothesisTest:
        """The log-rank test of the two risk groups (chi-square, 1 df)."""
        return HypothesisTest(statistic=self.logrank_chisq, p=self.logrank_p, method="log-rank",
                             reason=self.logrank_reason)


class RocCurve(Record):
    fp: Numbers
    tp: Numbers


class WithheldAuc(Record):
    """An AUC computed but withheld from the report: too few cases or controls at its time."""

    auc: Number = None
    se: Number = None
    lower: Number = None
    upper: Number = None


class TimeRoc(Record):
    """Cumulative/dynamic time-dependent AUC per time (IPCW; timeROC or the in-project estimator),
    with the cases (event before t) and controls (event-free beyond t) it compares. An AUC on
    fewer than ``min_cases_controls`` cases or controls is None here, its reason in ``reasons``
    and its estimate under ``withheld`` (``statistics.timeroc.time_roc_record``)."""

    times: list[float]
    auc: Numbers
    se: Numbers
    lower: Numbers
    upper: Numbers
    cases: Counts = Field(default_factory=list)
    controls: Counts = Field(default_factory=list)
    min_cases_controls: int | None = None
    implementation: str | None = None
    se_method: str | None = None
    roc: dict[str, RocCurve] = Field(default_factory=dict)
    reasons: dict[str, str] = Field(default_factory=dict)
    withheld: dict[str, WithheldAuc] = Field(default_factory=dict)
    time_unit: str | None = None


class CalibrationRow(Record):
    time: float
    group: int
    n: int | None = None
    n_events: int | None = None
    predicted: Number = None
    observed: Number = None
    lower: Number = None
    upper: Number = None


class DecisionRow(Record):
    threshold: float
    n_treated: int | None = None
    net_benefit: Number = None
    treat_all: Number = None
    treat_none: Number = None


class DecisionSummary(Record):
    """Thresholds of one decision curve where the model's net benefit exceeds both treating all and
    treating none by more than ``tolerance``; within the protocol's threshold ``range`` too."""

    n_thresholds: int
    n_better: int
    lowest: Number = None
    highest: Number = None
    tolerance: float
    range: list[float] | None = None
    n_in_range: int | None = None
    n_better_in_range: int | None = None


class CohortEvaluation(Stratification):
    """The radiomics model's score in one cohort, with the signature study's parts."""

    cohort_label: str
    time_unit: str | None = None
    time_roc: TimeRoc | NotRun | None = None
    calibration: FrozenCalibration | NotRun | None = Field(
        None, description="the frozen predicted risk 1 - S0(t)^exp(lp), S0 the training cohort's Breslow baseline "
                          "(apparent on the training cohort)")
    decision_curves: dict[str, list[DecisionRow]] | NotRun | None = None
    decision_summary: dict[str, DecisionSummary] = Field(
        default_factory=dict, description="per time: thresholds where the model beats treating all and none")


class OracleCohort(Record):
    """The oracle's Harrell C in one cohort: a sample estimate with its 95% CI, not a ceiling
    (another model can exceed it in a finite cohort)."""

    c_index: Number = None
    c_se: Number = None
    c_lower: Number = None
    c_upper: Number = None


class Oracle(Record):
    """A synthetic cohort's true linear predictor, scored like the model."""

    description: str
    training: OracleCohort | None = None
    test: OracleCohort | None = None


# --------------------------------------------------------------------------- CNN risk scores (nsclc_ici)
# The three CNN sections of results.json (issue 8): ``deep`` (deep/training.json with
# crops.json and networks.json), ``risk_scores`` (statistics/risk_scores.json with the
# per-patient table of risk_scores.csv) and ``explanations`` (explanations/explanations.json).
# Score, endpoint, network and cohort names are keys (data): the report reads them from here.


class ZScore(Record):
    """The voxel statistics every crop is z-scored with, and the partition they come from."""

    mean: float
    sd: float
    computed_on: str


class CropExclusion(Record):
    patient_id: str
    reason: str


class Crops(Record):
    """The CNN input: crop settings, z-score statistics and the cases whose crop failed."""

    profile: str
    crop: CropSettings
    zscore: ZScore
    n_cropped: int
    excluded: list[CropExclusion] = Field(default_factory=list)


class NetworkConfigRecord(Record):
    """``deep.network.NetworkConfig`` as recorded: the widths of the 3D DenseNet and its head."""

    block_layers: list[int]
    growth_rate: int
    initial_features: int
    bottleneck_width: int
    compression: float
    hidden_units: int
    dropout: float
    stem_kernel: int
    in_channels: int


class Architecture(Record):
    """One network of deep/networks.json (rebuilt by ``deep.network.network_from_record``)."""

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True, validate_by_name=True)

    network_class: str = Field(alias="class")
    config: NetworkConfigRecord
    outputs: int
    weights: str


class TrainingEpoch(Record):
    epoch: int
    train_loss: Number = None
    val_loss: Number = None
    seconds: Number = None


class MacroAccuracy(Record):
    """Mean recall over the event-time intervals among the patients with every interval known."""

    macro_accuracy: Number = None
    recall_per_interval: Numbers = Field(default_factory=list)
    n_patients: int


class NetworkTraining(Record):
    """One trained network: the chosen epoch, the loss history and the throughput; a survival
    network's interval cut-offs, score columns and macro-accuracy per cohort, the response
    network's positive levels per score."""

    kind: Literal["survival", "response"]
    endpoint: str
    best_epoch: int
    epochs_run: int
    history: list[TrainingEpoch] = Field(default_factory=list)
    train_samples_per_second: Number = None
    precision: str
    cutoffs: list[float] = Field(default_factory=list)
    unit: str | None = None
    score_columns: list[str] = Field(default_factory=list)
    macro_accuracy: dict[str, MacroAccuracy] = Field(default_factory=dict)
    positive_levels: dict[str, str] = Field(default_factory=dict)
    n_without_response: int | None = None


class DeepRecord(Record):
    """The CNNs: the settings profile that ran, partitions and counts, each network's training."""

    device: str
    profile: str
    network: NetworkSettings
    training: TrainingPlan
    fit_partition: str
    model_choice_partition: str
    n: dict[str, int]
    networks: dict[str, NetworkTraining]
    crops: Crops
    architectures: dict[str, Architecture]


class SelectionStep(Record):
    step: int
    dropped: str
    p: Number = None
    n_terms: int


class SelectionOverride(Record):
    """A term kept although its p-value is above the elimination threshold, and the rule that kept it."""

    term: str
    p: Number = None
    p_threshold: float
    rule: str


class BackwardSelection(Record):
    """Backward Wald elimination over a network's interval scores (Cox, training cohort)."""

    kept: list[str]
    overrides: list[SelectionOverride] = Field(default_factory=list)
    coefficients: list[Coefficient]
    steps: list[SelectionStep] = Field(default_factory=list)
    lp_coefficients: dict[str, float]
    note: str | None = None
    concordance: Number = None
    n: int | None = None
    n_events: int | None = None
    p_threshold: float


class FusionShare(Record):
    """A component's share of the fused score: |coef| SD / sum of |coef| SD."""

    term: str
    coef: Number = None
    sd: Number = None
    contribution: Number = None
    share: Number = None


class Fusion(Record):
    """The Cox model fusing the endpoint scores (training cohort)."""

    coefficients: list[Coefficient]
    fused_coefficients: dict[str, float]
    shares: list[FusionShare] = Field(default_factory=list)
    concordance: Number = None
    n: int | None = None
    n_events: int | None = None


class RiskScore(Record):
    """One CNN survival score: an endpoint's (``selection``, from its network's outputs) or the
    fused one (``fusion``); its training cut-off and its evaluation per cohort."""

    label: str
    endpoint: str
    network: str | None = None
    selection: BackwardSelection | None = None
    output_coefficients: list[float] = Field(default_factory=list)
    fusion: Fusion | None = None
    cutoff: Cutoff
    evaluation: dict[str, Stratification] = Field(default_factory=dict)
    calibration: dict[str, FrozenCalibration] = Field(
        default_factory=dict,
        description="per cohort, the score's calibration at the plan's times (apparent on training)")


class ConcordanceCounts(Record):
    score: str
    concordant: float
    discordant: float
    tied_x: float
    tied_y: float
    tied_xy: float


class PatientPairs(Record):
    """A patient's mis-ordered comparable pairs under the two compared scores (row: table label)."""

    row: str
    misordered_a: float
    misordered_b: float
    comparable: float


class ConcordanceComparison(Record):
    """Harrell's C of two scores on the same patients and the test of their difference."""

    c_a: Number = None
    c_b: Number = None
    se_a: Number = None
    se_b: Number = None
    cov_ab: Number = None
    diff: Number = None
    se_diff: Number = None
    z: Number = None
    p: Number = None
    test_reason: str | None = None
    comparable_pairs: int | None = None
    misordered_a: Number = None
    misordered_b: Number = None
    counts: list[ConcordanceCounts] = Field(default_factory=list)
    per_patient: list[PatientPairs] = Field(default_factory=list)
    n: int | None = None
    n_events: int | None = None


class CoxModelFit(CoxFit):
    """A Cox model with its terms (R survival::coxph via ``statistics.cox.fit_cox``)."""

    coefficients: list[Coefficient]
    concordance_se: Number = None
    loglik_null: Number = None


class CrossCheck(Record):
    """An endpoint score in a Cox model of another endpoint (training cohort)."""

    score: str
    endpoint: str
    model: CoxModelFit


class CoxTableRow(Record):
    """One term of the clinical Cox tables (a categorical covariate: one row per level)."""

    covariate: str
    level: str | None = None
    reference: str | None = None
    n_level: Number = None
    n: int | None = None
    n_events: Number = None
    coef: Number = None
    se: Number = None
    hr: Number = None
    hr_lower: Number = None
    hr_upper: Number = None
    p: Number = None
    p_overall: Number = None
    p_overall_test: str | None = None
    entered: bool | None = None
    message: str | None = None
    sd: Number = Field(None, description="a numeric covariate's SD over the model's rows (per-SD hazard ratio)")
    hr_per_sd: Number = None
    hr_per_sd_lower: Number = None
    hr_per_sd_upper: Number = None
    by_construction: str | None = Field(
        None, description="why the estimate is fixed by construction (not a finding), e.g. a score refitted on "
                          "the outcome and rows its coefficients were fitted on")


class ClinicalCox(Record):
    """Uni- and multivariable Cox models of the headline score with the clinical covariates."""

    univariate: list[CoxTableRow] = Field(default_factory=list)
    multivariable: list[CoxTableRow] = Field(default_factory=list)
    entered: list[str] = Field(default_factory=list)
    n: int | None = None
    n_events: int | None = None
    n_excluded: int | None = None
    p_enter: Number = None
    note: str | None = None


class NomogramPredictor(Record):
    values: list[str]
    value_numeric: Numbers | None = None
    xbeta: Numbers = Field(default_factory=list)
    points: Numbers


class NomogramLpAxis(Record):
    lp: Numbers
    total_points: Numbers


class NomogramSurvivalAxis(Record):
    time: float
    survival: Numbers
    total_points: Numbers


class NomogramGrid(Record):
    total_points: Numbers
    lp: Numbers = Field(default_factory=list)
    survival: Numbers = Field(default_factory=list)


class NomogramPatient(Record):
    row: str
    lp: Number = None
    total_points: Number = None
    survival: dict[str, Number] = Field(default_factory=dict)


class Nomogram(Record):
    """The rms nomogram of the multivariable model as drawable numbers (``statistics.nomogram``)."""

    predictors: dict[str, NomogramPredictor]
    total_points: Numbers
    lp_axis: NomogramLpAxis | None = None
    survival_axes: dict[str, NomogramSurvivalAxis] = Field(default_factory=dict)
    survival_grid: dict[str, NomogramGrid] = Field(default_factory=dict)
    points_scale: Number = None
    points_intercept: Number = None
    coefficients: dict[str, float] = Field(default_factory=dict)
    center: Number = None
    patients: list[NomogramPatient] = Field(default_factory=list)
    n: int | None = None
    n_events: int | None = None
    n_excluded: int | None = None
    time_unit: str | None = None


class SubgroupLevel(Record):
    """The headline score's risk groups within one subgroup level; ``reason`` says why a level
    was not evaluated (then its groups and curves are None)."""

    level: str
    n: int | None = None
    n_events: int | None = None
    groups: dict[str, GroupEvents] | None = None
    hr: Number = None
    hr_lower: Number = None
    hr_upper: Number = None
    hr_p: Number = None
    hr_reason: str | None = None
    logrank_chisq: Number = None
    logrank_p: Number = None
    logrank_reason: str | None = None
    c_index: Number = None
    reason: str | None = None
    km: dict[str, KmCurve] | None = None
    risk_table: RiskTable | None = None


class SubgroupHazards(Record):
    """The headline score within the levels of one subgroup column (``reason``: column absent)."""

    rule: str | None = None
    cohort: str | None = None
    subgroup: str | None = None
    n_missing: int | None = None
    levels: list[SubgroupLevel] = Field(default_factory=list)
    reason: str | None = None


class RocPoints(Record):
    """An ROC curve from (1, 1) to (0, 0); a threshold of None is -Inf or +Inf."""

    threshold: Numbers
    fpr: Numbers
    tpr: Numbers


class RocAnalysis(Record):
    """A response score's ROC in one cohort: AUC with DeLong CI and the Youden cut-off."""

    n: int | None = None
    n_positive: int | None = None
    n_negative: int | None = None
    n_missing_outcome: int | None = None
    positive_level: int | str | None = None
    direction: str | None = None
    rule: str | None = None
    auc: Number = None
    auc_se: Number = None
    auc_lower: Number = None
    auc_upper: Number = None
    ci_method: str | None = None
    cutoff: Number = None
    sensitivity: Number = None
    specificity: Number = None
    youden_index: Number = None
    youden_ties: int | None = None
    cutoff_reason: str | None = None
    curve: RocPoints | None = None


class Proportion(Record):
    """A proportion with its exact (Clopper-Pearson) CI; None where the denominator is 0."""

    estimate: Number = None
    numerator: int
    denominator: int
    lower: Number = None
    upper: Number = None


class CutoffApplied(Record):
    """The training Youden cut-off applied to one cohort."""

    cutoff: Number = None
    direction: str
    rule: str
    n: int
    n_missing_outcome: int | None = None
    tp: int
    fp: int
    tn: int
    fn: int
    sensitivity: Proportion
    specificity: Proportion
    ppv: Proportion
    npv: Proportion
    accuracy: Proportion


class SubgroupRoc(Record):
    subgroup: str
    n: int | None = None
    n_positive: int | None = None
    n_negative: int | None = None
    auc: Number = None
    auc_se: Number = None
    auc_lower: Number = None
    auc_upper: Number = None
    cutoff: Number = None
    sensitivity: Number = None
    specificity: Number = None
    youden_index: Number = None
    reason: str | None = None


class ResponseSubgroups(Record):
    """A response score's ROC within the levels of one subgroup column (``reason``: column absent)."""

    rule: str | None = None
    cohort: str | None = None
    table: list[SubgroupRoc] = Field(default_factory=list)
    curves: dict[str, RocPoints] = Field(default_factory=dict)
    n_missing_outcome: int | None = None
    n_missing_subgroup: int | None = None
    reason: str | None = None


class GroupSurvival(GroupEvents):
    """A risk group's size, events and Kaplan-Meier median with its 95% CI."""

    median: Number = None
    median_lower: Number = None
    median_upper: Number = None


class CutpointGroups(Record):
    """Survival of the groups split at a fixed cut-off (``statistics.cutpoint.groups_by_cutpoint``)."""

    cutpoint: Number = None
    groups: dict[str, GroupSurvival] = Field(default_factory=dict)
    hr: Number = None
    hr_lower: Number = None
    hr_upper: Number = None
    hr_p: Number = None
    hr_reason: str | None = None
    logrank_chisq: Number = None
    logrank_p: Number = None
    logrank_reason: str | None = None
    km: dict[str, KmCurve] = Field(default_factory=dict)
    risk_table: RiskTable | None = None


class ResponseScore(Record):
    """A response score of the dual-task network (PRS, PDS): ROC per cohort, the training
    cut-off applied to each cohort, survival of its groups per endpoint, subgroup ROC."""

    label: str
    outcome: str
    high_score_risk: Literal["higher", "lower"] | None = Field(
        None, description="whether a score above the cut-off marks the group at higher or lower risk of the "
                          "survival endpoints (PRS: lower, PDS: higher); the figures colour the groups by risk")
    by_cohort: dict[str, RocAnalysis] = Field(default_factory=dict)
    at_training_cutoff: dict[str, CutoffApplied] = Field(default_factory=dict)
    stratification: dict[str, CutpointGroups] = Field(default_factory=dict)
    subgroups: dict[str, ResponseSubgroups] = Field(default_factory=dict)


PatientColumn = list[int | float | str | None]


class RiskScores(Record):
    """Statistics of the CNN scores (keys of ``scores``: ``registry.score_name`` of each
    survival endpoint and ``registry.fused_name`` of the fusion endpoint) and the per-patient
    table (column name -> values) the figures draw from."""

    cohorts: dict[str, list[str]]
    n: dict[str, int] = Field(default_factory=dict)
    scores: dict[str, RiskScore]
    comparison: dict[str, ConcordanceComparison] = Field(default_factory=dict)
    comparison_scores: list[str] = Field(default_factory=list)
    cross_checks: list[CrossCheck] = Field(default_factory=list)
    headline_score: str | None = None
    clinical_cox: ClinicalCox | None = None
    nomogram: Nomogram | NotRun | None = None
    subgroups: dict[str, SubgroupHazards | NotRun] = Field(default_factory=dict)
    response: dict[str, ResponseScore] | None = None
    oracle: dict[str, dict[str, OracleCohort]] = Field(default_factory=dict)
    patients: dict[str, PatientColumn] = Field(default_factory=dict)

    @field_validator("oracle", mode="before")
    @classmethod
    def _oracle_numbers(cls, value: Any) -> Any:
        """An older results.json recorded the oracle's C-index alone (a number per cohort)."""
        if not isinstance(value, dict):
            return value
        return {endpoint: {cohort: {"c_index": c} if c is None or isinstance(c, int | float) else c
                           for cohort, c in cohorts.items()} if isinstance(cohorts, dict) else cohorts
                for endpoint, cohorts in value.items()}


class SsimSummary(Record):
    n: int
    median: float
    q1: float
    q3: float


class Ssim(Record):
    """SSIM of each patient's Grad-CAM maps of the two endpoint scores in ``pair``."""

    pair: list[str]
    by_cohort: dict[str, SsimSummary] = Field(default_factory=dict)
    n_without_ssim: int | None = None
    why_without: str | None = None


class SpearmanRow(Record):
    name: str
    rho: Number = None
    p: Number = None
    n: int


class SelectedPatient(OpenRecord):
    """A test patient whose Grad-CAM slices are kept; the other keys are its score values by score name."""

    __pydantic_extra__: dict[str, float] = Field(init=False)

    patient_id: str
    ordered_by: str

    def score(self, name: str) -> float | None:
        """The patient's value of score ``name`` (None when it was not recorded)."""
        return (self.model_extra or {}).get(name)


class Explanations(Record):
    """Grad-CAM of every CNN score: layers, empty maps, SSIM with its Spearman correlations,
    the selected patients of the overlay figure."""

    scores_explained: list[str]
    device: str | None = None
    layers: dict[str, str] = Field(default_factory=dict)
    layer_rule: str | None = None
    ssim: Ssim | None = None
    spearman: list[SpearmanRow] = Field(default_factory=list)
    empty_maps: dict[str, int] = Field(default_factory=dict)
    selected: list[SelectedPatient] = Field(default_factory=list)
    overlays_file: str | None = None
    planes: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------- end of the CNN block


# --------------------------------------------------------------------------- calibration of a frozen score


class Interval(Record):
    """An estimate with its 95% CI (and standard error when recorded)."""

    estimate: Number = None
    lower: Number = None
    upper: Number = None
    se: Number = None


class Brier(Record):
    """IPCW Brier score of the model and of the null (Kaplan-Meier) model; ipa = 1 - model/null."""

    model: Number = None
    null: Number = None
    ipa: Number = None


class CalibrationGroup(Record):
    group: int
    n: int
    n_events: int | None = None
    predicted: Number = None
    observed: Number = None
    lower: Number = None
    upper: Number = None


class CalibrationCurve(Record):
    predicted: list[float]
    observed: list[float]


class SmoothedCalibration(Record):
    """The smoothed calibration curve at one time and its integrated calibration index (ICI),
    median (E50), 90th percentile (E90) and maximum (Emax) absolute error (Austin et al. 2020)."""

    t: float
    ici: Number = None
    e50: Number = None
    e90: Number = None
    emax: Number = None
    curve: CalibrationCurve


class BootstrapInterval(Record):
    lower: Number = None
    upper: Number = None


class CalibrationBootstrap(Record):
    """Bootstrap percentile intervals (Efron & Tibshirani 1993, ch. 13) of one time's Brier score
    (of the model), IPA, ICI, E50 and E90: ``replicates`` resamples of the cohort's patients from
    ``seed``, score and baseline frozen; ``used`` gave every measure, ``failed`` did not (``failures``:
    reason -> count); no interval, with ``reason``, when fewer than half were used."""

    method: Literal["percentile"]
    level: float
    replicates: int
    seed: int
    used: int
    failed: int
    failures: dict[str, int] = Field(default_factory=dict)
    brier: BootstrapInterval | None = None
    ipa: BootstrapInterval | None = None
    # Percentile intervals of absolute calibration errors: resampling noise only adds to an absolute
    # difference, so these can lie wholly above their estimate; kept for completeness, not printed.
    ici: BootstrapInterval | None = None
    e50: BootstrapInterval | None = None
    e90: BootstrapInterval | None = None
    reason: str | None = None


class CalibrationAt(Record):
    """Observed (1 - Kaplan-Meier) against mean predicted risk by one time."""

    t: float
    n: int
    n_events: int
    observed: Interval
    predicted: Number = None
    oe: Interval
    brier: Brier
    groups: list[CalibrationGroup] = Field(default_factory=list)
    smoothed: SmoothedCalibration | None = None
    bootstrap: CalibrationBootstrap | None = None


class CalibrationSlope(Record):
    """The coefficient of the frozen LP in a Cox model on this cohort (1 = well calibrated spread)."""

    slope: Number = None
    se: Number = None
    lower: Number = None
    upper: Number = None
    p_unity: Number = None
    n: int | None = None
    n_events: int | None = None


class FrozenCalibration(Record):
    slope: CalibrationSlope
    at: dict[str, CalibrationAt]


class RepeatFailures(Record):
    """The fits of one cross-validation repeat: how many failed, and how many of those selected no feature."""

    repeat: int
    n_folds: int
    n_failed: int
    n_no_features: int = 0


class FeatureSelectionCount(Record):
    """How many cross-validation fits selected a feature of the final model, of the fits that developed a model."""

    feature: str
    n_selected: int
    n_fits: int
    percent: Number = None


class RepeatCalibration(Record):
    """Calibration of one repeat's pooled out-of-fold predictions (each fold model's own Breslow baseline)."""

    repeat: int
    n: int | None = None
    n_events: int | None = None
    slope: CalibrationSlope | None = None
    oe: dict[str, Interval] = Field(default_factory=dict)
    reason: str | None = None


class CrossValidatedCalibration(Record):
    """Calibration slope and O/E of the pooled out-of-fold predictions, summarised over the repeats."""

    description: str | None = None
    times: list[float]
    slope: FoldSummary | None = None
    oe: dict[str, FoldSummary | None] = Field(default_factory=dict)
    repeats: list[RepeatCalibration] = Field(default_factory=list)



# --------------------------------------------------------------------------- software


class CranFallback(Record):
    package: str
    status: str
    implementation: str


class Software(Record):
    python: str | None = None
    platform: str | None = None
    packages: dict[str, str | None] = Field(default_factory=dict)
    r: str | None = None
    r_packages: dict[str, str | None] = Field(default_factory=dict)
    cran_fallbacks: list[CranFallback] = Field(default_factory=list)


# --------------------------------------------------------------------------- TRIPOD+AI items


class FollowUp(Record):
    """Median follow-up by the reverse Kaplan-Meier method (Schemper & Smith 1996) with its CI."""

    median: Number = None
    lower: Number = None
    upper: Number = None
    n: int | None = None
    n_events: int | None = None
    reason: str | None = None


class OutcomeLevel(Record):
    level: str
    n: int
    percent: Number = None


class OutcomeBalance(Record):
    """One outcome in one cohort: events of a time-to-event outcome (with the median follow-up),
    or the patients per level of a categorical one (TRIPOD+AI 13, 20a)."""

    label: str
    type: str
    unit: str | None = None
    n: int
    n_events: int | None = None
    percent: Number = Field(None, description="events, % of the patients with a known outcome")
    follow_up: FollowUp | None = None
    levels: list[OutcomeLevel] = Field(default_factory=list)
    missing: int | None = None


class CohortCounts(Record):
    n: int
    outcomes: dict[str, OutcomeBalance] = Field(default_factory=dict)


class SubgroupC(Record):
    """Harrell's C of the model's risk score within one subgroup."""

    group: str
    n: int
    n_events: int
    c_index: Number = None
    c_se: Number = None
    c_lower: Number = None
    c_upper: Number = None
    reason: str | None = None

    @property
    def concordance(self) -> Estimate:
        return Estimate(estimate=self.c_index, lower=self.c_lower, upper=self.c_upper, se=self.c_se,
                        reason=self.reason)


class InteractionTest(Record):
    """Likelihood-ratio test of the score x subgroup interaction in a Cox model."""

    statistic: Number = None
    df: int | None = None
    p: Number = None
    loglik_main: Number = None
    loglik_interaction: Number = None
    n: int | None = None
    reason: str | None = None

    @property
    def test(self) -> HypothesisTest:
        return HypothesisTest(statistic=self.statistic, p=self.p, method="likelihood ratio", reason=self.reason)


class SubgroupCohort(Record):
    groups: list[SubgroupC] = Field(default_factory=list)
    interaction: InteractionTest


class SubgroupVariable(Record):
    """The model's C-index per subgroup of one variable, per cohort (TRIPOD+AI 12d, 14, 23b)."""

    column: str
    label: str
    cohorts: dict[str, SubgroupCohort] = Field(default_factory=dict)
    reason: str | None = None


class CaseMixRow(Record):
    """One baseline characteristic (a continuous variable, or one category's share) in the
    development and the external cohort with its standardised difference (Austin 2009); in a
    development run's ``tripod.differences``, "development" is the training and "external" the
    test cohort."""

    column: str
    label: str
    level: str | None = None
    development: Number = None
    external: Number = None
    development_sd: Number = None
    external_sd: Number = None
    smd: Number = None
    imbalanced: bool = False


class LpDistribution(Record):
    mean: Number = None
    sd: Number = None
    quantiles: dict[str, float] = Field(default_factory=dict)


class LpDifference(Record):
    training: LpDistribution
    test: LpDistribution
    smd: Number = None


class DevelopmentDifferences(Record):
    """Training vs test cohort: baseline variables and the linear predictor (TRIPOD+AI 16, 20c)."""

    groups: list[str] = Field(default_factory=list)
    imbalance_threshold: Number = Field(None, description="|standardised difference| above which a row is flagged")
    variables: list[CaseMixRow] = Field(default_factory=list)
    linear_predictor: LpDifference


class FeatureScaling(Record):
    feature: str
    mean: float
    sd: float


class BaselineAt(Record):
    time: float
    survival: Number = Field(None, description="S0(t); None beyond the training cohort's last follow-up")


class ModelSpecification(Record):
    """What a reader needs to compute a new patient's prediction (TRIPOD+AI 22): each selected
    feature's training mean and SD (z = (x - mean) / SD), the linear predictor's distribution
    and Breslow's baseline survival S0(t) at the report times; S(t | lp) = S0(t)^exp(lp)."""

    features: list[FeatureScaling] = Field(default_factory=list)
    linear_predictor: LpDistribution
    baseline_survival: list[BaselineAt] = Field(default_factory=list)
    last_follow_up: Number = None
    estimator: str | None = None


class TripodRecord(Record):
    """``statistics/tripod.json``: what the data answer of TRIPOD+AI 12d, 13, 14, 16, 20a, 20c,
    21, 22 and 23b (``statistics.tripod_items``)."""

    cohorts: dict[str, CohortCounts] = Field(default_factory=dict)
    n_candidates: int | None = None
    subgroups: dict[str, list[SubgroupVariable]] = Field(default_factory=dict)
    differences: DevelopmentDifferences | None = None
    specification: ModelSpecification | None = None


# --------------------------------------------------------------------------- the whole file


class Flag(Record):
    """A result that would mislead a reader if taken at face value (``results.flags``): the
    rule's code, its severity, the report section (anchor) it concerns, the exact place
    (``target``, which the report marks) and the message."""

    code: str
    severity: Literal["warning", "caution", "note"]
    section: str
    target: str | None = None
    message: str


class PublishedFeature(Record):
    """One feature of the source paper's final model, followed through this run
    (``results.published``): extracted, reproducible, screened, chosen, in the model."""

    name: str = Field(description="as the paper names it")
    feature: str | None = Field(None, description="this run's name of it; None when it was not extracted")
    extracted: bool
    icc: Number = None
    reproducible: bool | None = Field(None, description="passed the ICC filter; None without one")
    screened: bool | None = Field(None, description="passed univariable screening; None without a screening table")
    screening_p: Number = None
    learners: list[str] = Field(default_factory=list, description="the learners that chose it")
    combined: bool | None = Field(None, description="kept by the combination of the learners' choices")
    in_model: bool | None = Field(None, description="a term of the final model")


class ResultsFile(Record):
    """A results.json file: written with exactly the recorded keys, hashed without its date."""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types with exactly the keys that were recorded (defaults filled in by
        the models for older or partial records are not written back)."""
        return self.model_dump(mode="json", exclude_unset=True)

    def content_digest(self) -> str:
        """SHA-256 of every recorded number and setting except the creation time: equal for a
        rerun that changed nothing, so the report stage is then reused."""
        content = self.to_json()
        content["study"].pop("created_utc", None)
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class Results(ResultsFile):
    """results.json."""

    def dated_as(self, previous: dict[str, Any] | None) -> Results:
        """These results with the creation time of ``previous`` (an earlier results.json of the
        same run folder) when nothing else differs: a rerun that reuses every stage leaves
        results.json, and the date its report prints, unchanged."""
        if previous is None:
            return self
        try:
            earlier = Results.model_validate(previous)
        except ValueError:
            return self
        if earlier.content_digest() != self.content_digest():
            return self
        study = self.study.model_copy(update={"created_utc": earlier.study.created_utc})
        return self.model_copy(update={"study": study})

    study: StudyRecord
    report_meta: ReportSection | None = None
    endpoints: dict[str, Endpoint] = Field(default_factory=dict)
    primary_endpoint: str | None = None
    flow: Flow | NotRun | None = None
    validation: Validation | NotRun | None = None
    table_one: TableOne | NotRun | None = None
    radiomics: RadiomicsRecord | NotRun | None = None
    model: ModelRecord | NotRun | None = None
    reproducibility: Reproducibility | NotRun | None = None
    selection: Selection | NotRun | None = None
    cross_validation: CrossValidation | NotRun | None = None
    evaluation: dict[str, CohortEvaluation] | NotRun | None = None
    oracle: Oracle | NotRun | None = None
    deep: DeepRecord | None = None
    risk_scores: RiskScores | None = None
    explanations: Explanations | None = None
    published_features: list[PublishedFeature] | None = Field(
        None, description="each feature of the source paper's final model (report.published.features) in this run")
    software: Software | NotRun | None = None
    timings: dict[str, float] | None = None
    tripod: TripodRecord | NotRun | None = None
    flags: list[Flag] = Field(default_factory=list)


def results_schema() -> dict[str, Any]:
    """The JSON Schema of results.json (committed as ``protocols/results.schema.json``)."""
    schema = Results.model_json_schema()
    schema["title"] = "studyrunner results.json"
    return schema
