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
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from studyrunner.protocol import Endpoint, ReportSection
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


Number = Optional[float]
Counts = list[Optional[int]]
Numbers = list[Optional[float]]


# --------------------------------------------------------------------------- study and cohort


class StudyRecord(Record):
    name: str
    description: Optional[str] = None
    synthetic: bool
    seed: Optional[int] = None
    tripod_type: Optional[str] = None
    protocol_file: Optional[str] = None
    protocol_sha256: Optional[str] = None
    run_id: Optional[str] = None
    created_utc: Optional[str] = None
    studyrunner_version: Optional[str] = None


class Exclusion(Record):
    patient_id: str
    stage: str
    reason: str


class Flow(Record):
    """Participant flow: counts and every exclusion with its stage and reason."""

    n_clinical: int
    n_with_images: Optional[int] = None
    n_eligible: Optional[int] = None
    exclusions: list[Exclusion] = Field(default_factory=list)
    n_included: int
    partitions: dict[str, int] = Field(default_factory=dict)
    training_partitions: list[str] = Field(default_factory=list)
    test_partitions: list[str] = Field(default_factory=list)
    split_method: Optional[str] = None


class FailingRow(Record):
    patient_id: Optional[str] = None
    column: Optional[str] = None
    value: Any = None


class ExpectationResult(Record):
    name: str
    expectation_type: str
    column: Optional[str] = None
    severity: Literal["error", "warning"]
    success: bool
    unexpected_count: Optional[int] = None
    failing_rows: list[FailingRow] = Field(default_factory=list)


class Validation(Record):
    """The Great Expectations suite run on the clinical table."""

    suite: str
    n_rows: int
    success: bool
    expectations: list[ExpectationResult]


class GroupCount(Record):
    n: Optional[int] = None
    proportion: Number = None


class ContinuousSummary(Record):
    n: Optional[int] = None
    missing: Optional[int] = None
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
    test: Optional[str] = None
    statistic: Number = None
    p: Number = None
    message: Optional[str] = None


class TableOneVariable(Record):
    column: str
    label: Optional[str] = None
    type: Literal["categorical", "continuous"]
    levels: list[LevelCounts] = Field(default_factory=list)
    summary: dict[str, ContinuousSummary] = Field(default_factory=dict)
    tests: list[Optional[GroupTest]] = Field(default_factory=list)


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

    n_cases: Optional[int] = None
    n_features: Optional[int] = None
    n_second_reader: Optional[int] = None
    image_types: list[str] = Field(default_factory=list)
    feature_classes: list[str] = Field(default_factory=list)
    pyradiomics_version: Optional[str] = None
    params_file: Optional[str] = None
    settings: dict[str, Any] = Field(default_factory=dict)
    source: Optional[str] = Field(None, description="a study started from feature tables: where they came from")


# --------------------------------------------------------------------------- the radiomics model


class ScreeningRow(Record):
    feature: str
    hr: Number = None
    hr_lower: Number = None
    hr_upper: Number = None
    p: Number = None
    kept: bool


class Screening(Record):
    p_threshold: float
    n_candidates: Optional[int] = None
    n_features_extracted: Optional[int] = None
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


class CoxFit(Record):
    concordance: Number = None
    loglik: Number = None
    aic: Number = None
    n: Optional[int] = None
    n_events: Optional[int] = None


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
    pmethod: Optional[str] = None
    p_naive: Number = None
    n_cutoffs: Optional[int] = None


class ModelRecord(Record):
    """The radiomics Cox model: screening, coefficients, fit and cut-off."""

    endpoint: str
    method: str
    note: Optional[str] = None
    notes: list[str] = Field(default_factory=list)
    screening: Screening
    coefficients: list[Coefficient] = Field(default_factory=list)
    aic: Number = None
    fit: Optional[CoxFit] = None
    cutoff: Optional[Cutoff] = None
    normalisation: Optional[str] = None
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
    implementation: Optional[str] = None
    error: Optional[str] = None


class Selection(Record):
    """What each learner chose and how the choices were combined."""

    p_threshold: float
    n_candidates: Optional[int] = None
    screened: list[str] = Field(default_factory=list)
    learners: dict[str, LearnerChoice]
    combine: str
    min_votes: Optional[int] = None
    combined: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class FoldSummary(Record):
    """The AUC at one time over the folds: median, range, how many folds estimated it, each value."""

    median: Number = None
    min: Number = None
    max: Number = None
    n: Optional[int] = None
    values: Numbers = Field(default_factory=list)


class FoldFailure(Record):
    repeat: int
    fold: int
    reason: str


class CrossValidation(Record):
    """Repeated K-fold cross-validation of the whole development (AUC per time)."""

    description: Optional[str] = None
    folds: int
    repeats: int
    times: list[float]
    time_unit: Optional[str] = None
    training: dict[str, Optional[FoldSummary]] = Field(default_factory=dict)
    validation: dict[str, Optional[FoldSummary]] = Field(default_factory=dict)
    n_fits: Optional[int] = None
    n_failed: Optional[int] = None
    failures: list[FoldFailure] = Field(default_factory=list)
    feature_frequency: dict[str, int] = Field(default_factory=dict, description="the features chosen most often over the folds")


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

    n: Optional[int] = None
    n_events: Optional[int] = None
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
    hr_reason: Optional[str] = None
    logrank_chisq: Number = None
    logrank_p: Number = None
    logrank_reason: Optional[str] = None
    km: dict[str, KmCurve] = Field(default_factory=dict)
    risk_table: Optional[RiskTable] = None
    median_survival: dict[str, MedianSurvival] = Field(default_factory=dict)


class RocCurve(Record):
    fp: Numbers
    tp: Numbers


class TimeRoc(Record):
    """Cumulative/dynamic time-dependent AUC per time (IPCW; timeROC or the in-project estimator)."""

    times: Numbers
    auc: Numbers
    se: Numbers
    lower: Numbers
    upper: Numbers
    implementation: Optional[str] = None
    se_method: Optional[str] = None
    roc: dict[str, RocCurve] = Field(default_factory=dict)
    reasons: dict[str, str] = Field(default_factory=dict)
    time_unit: Optional[str] = None


class CalibrationRow(Record):
    time: float
    group: int
    n: Optional[int] = None
    n_events: Optional[int] = None
    predicted: Number = None
    observed: Number = None
    lower: Number = None
    upper: Number = None


class DecisionRow(Record):
    threshold: float
    n_treated: Optional[int] = None
    net_benefit: Number = None
    treat_all: Number = None
    treat_none: Number = None


class CohortEvaluation(Stratification):
    """The radiomics model's score in one cohort, with the signature study's parts."""

    cohort_label: str
    time_unit: Optional[str] = None
    time_roc: Union[TimeRoc, NotRun, None] = None
    calibration: Union[list[CalibrationRow], NotRun, None] = None
    decision_curves: Union[dict[str, list[DecisionRow]], NotRun, None] = None


class OracleCohort(Record):
    c_index: Number = None


class Oracle(Record):
    """A synthetic cohort's true linear predictor, scored like the model."""

    description: str
    training: Optional[OracleCohort] = None
    test: Optional[OracleCohort] = None


# --------------------------------------------------------------------------- software


class CranFallback(Record):
    package: str
    status: str
    implementation: str


class Software(Record):
    python: Optional[str] = None
    platform: Optional[str] = None
    packages: dict[str, Optional[str]] = Field(default_factory=dict)
    r: Optional[str] = None
    r_packages: dict[str, Optional[str]] = Field(default_factory=dict)
    cran_fallbacks: list[CranFallback] = Field(default_factory=list)


# --------------------------------------------------------------------------- the whole file


class Results(Record):
    """results.json."""

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

    def dated_as(self, previous: dict[str, Any] | None) -> "Results":
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
        return self.model_copy(update={"study": self.study.model_copy(update={"created_utc": earlier.study.created_utc})})

    study: StudyRecord
    report_meta: Optional[ReportSection] = None
    endpoints: dict[str, Endpoint] = Field(default_factory=dict)
    primary_endpoint: Optional[str] = None
    flow: Union[Flow, NotRun, None] = None
    validation: Union[Validation, NotRun, None] = None
    table_one: Union[TableOne, NotRun, None] = None
    radiomics: Union[RadiomicsRecord, NotRun, None] = None
    model: Union[ModelRecord, NotRun, None] = None
    reproducibility: Union[Reproducibility, NotRun, None] = None
    selection: Union[Selection, NotRun, None] = None
    cross_validation: Union[CrossValidation, NotRun, None] = None
    evaluation: Union[dict[str, CohortEvaluation], NotRun, None] = None
    oracle: Union[Oracle, NotRun, None] = None
    deep: Optional[dict[str, Any]] = None
    risk_scores: Optional[dict[str, Any]] = None
    explanations: Optional[dict[str, Any]] = None
    software: Union[Software, NotRun, None] = None
    timings: Optional[dict[str, float]] = None


def results_schema() -> dict[str, Any]:
    """The JSON Schema of results.json (committed as ``protocols/results.schema.json``)."""
    schema = Results.model_json_schema()
    schema["title"] = "studyrunner results.json"
    return schema
