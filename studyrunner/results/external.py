"""``results.json`` of an external validation (``studyrunner external``): typed like a
development run's, with the ``external`` record in place of the model-building records.

Stable keys (README): ``external.models.<score>.c_index {estimate, lower, upper}``,
``.uno_c``, ``.auc_t.<t>``, ``.calibration.slope``, ``.calibration.at.<t> {observed,
predicted, oe, brier, groups}``, ``.risk_groups`` (hr, hr_lower, hr_upper, logrank_p,
groups.<low|high>.n and n_events, few_events), ``.n``, ``.n_events``; ``external.case_mix``;
``external.bundle {path, content_sha256, format}``. Per-time keys are ``registry.time_key``
of the protocol's times, in the protocol's unit.

With a CNN bundle (``model/cnn_bundle.json``): ``external.models.<score>`` for each survival
score (osrs, pfsrs, mosrs; with ``source: cnn``, the endpoint, cut-off and development
summary), ``external.response.<score>`` (prs, pds: ``auc {estimate, lower, upper, se}``,
``youden_cutoff``, ``at_frozen_cutoff`` with sensitivity, specificity, ppv, npv), the scores
not validated with their reason in ``external.skipped``, the bundle in
``external.cnn_bundle``. ``external.bundle`` and ``external.case_mix`` describe the radiomics
bundle and are null without one.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import Field

from studyrunner import __version__
from studyrunner.bundle import CnnBundle, RadiomicsBundle, baseline_survival_at
from studyrunner.environment import package_versions
from studyrunner.errors import InputError
from studyrunner.paths import shareable_path
from studyrunner.protocol import Endpoint, LoadedExternal, ReportSection
from studyrunner.registry import time_key, unit_factor
from studyrunner.results.assemble import flow_section, software_section
from studyrunner.results.models import (
    CalibrationAt,
    CaseMixRow,
    CutoffApplied,
    Flow,
    FrozenCalibration,
    Interval,
    LpDistribution,
    Number,
    Record,
    ResultsFile,
    Software,
    Stratification,
    StudyRecord,
    Validation,
)
from studyrunner.run_folder import read_json


class ExternalRiskGroups(Stratification):
    """The frozen cut-off's groups; ``few_events`` names a group with fewer events than the plan's minimum."""

    few_events: list[str] = Field(default_factory=list)


class DevelopmentC(Interval):
    """Harrell's C of a frozen score in one development cohort (from the bundle)."""

    n: int | None = None


class ModelValidation(Record):
    """Every statistic of one frozen score on the external cohort (a CNN score also carries its
    label, endpoint, cut-off and development summary)."""

    n: int
    n_events: int
    c_index: Interval
    uno_c: Interval
    tau_key: str
    auc_t: dict[str, Interval]
    auc_implementation: str | None = None
    calibration: FrozenCalibration
    risk_groups: ExternalRiskGroups
    lp: LpDistribution
    source: str = "radiomics"
    label: str | None = None
    endpoint: str | None = None
    cutoff: Number = None
    lp_development: LpDistribution | None = None
    development_performance: dict[str, DevelopmentC] = Field(default_factory=dict)
    updated: dict[str, UpdatedModel] = Field(default_factory=dict)


class AucInterval(Interval):
    """An AUC with its DeLong 95% CI."""

    method: str | None = None


class ResponseValidation(Record):
    """A frozen response score (PRS, PDS) on the external cohort: its AUC for the outcome and
    the frozen Youden cut-off's classification."""

    label: str
    outcome: str
    endpoint: str
    n: int
    n_positive: int
    n_negative: int
    n_missing_outcome: int
    youden_cutoff: Number = None
    auc: AucInterval | None = None
    at_frozen_cutoff: CutoffApplied | None = None
    reason: str | None = None


class UpdatedModel(Record):
    """A model updated on the external cohort (reported beside the frozen one, never replacing it)."""

    method: str
    description: str
    slope: float
    baseline_survival: dict[str, Any]
    calibration: dict[str, CalibrationAt]
    bundle_path: str | None = Field(None, description="the updated model's bundle, which names its parent's hash "
                                                      "(relative to the run folder)")
    bundle_sha256: str | None = None


class CaseMix(Record):
    """The linear predictor's distribution in the development and the external cohort, and each
    baseline characteristic beside the development cohort's."""

    table: list[CaseMixRow] = Field(default_factory=list)

    lp_mean_development: Number = None
    lp_sd_development: Number = None
    lp_quantiles_development: dict[str, float] = Field(default_factory=dict)
    lp_mean_external: Number = None
    lp_sd_external: Number = None
    lp_quantiles_external: dict[str, float] = Field(default_factory=dict)
    membership_c: Number = None
    membership_reason: str | None = None


class FrozenBundleRecord(Record):
    """Which frozen bundle was applied (its hash verified), and the package versions then and now."""

    path: str
    content_sha256: str
    format: str
    study: str
    synthetic_training_data: bool
    versions_then: dict[str, str | None]
    versions_now: dict[str, str | None]
    version_warnings: list[str] = Field(default_factory=list)


class BundleRecord(FrozenBundleRecord):
    """The radiomics bundle: its endpoint, features, cut-off and development summary."""

    endpoint: dict[str, str]
    features: list[str]
    coefficients: dict[str, float] = Field(default_factory=dict)
    normalisation: dict[str, dict[str, float]] = Field(default_factory=dict)
    cutoff: dict[str, Any]
    development: dict[str, Any]
    baseline_at: dict[str, float | None] = Field(default_factory=dict,
                                                 description="S0 at each evaluation time (the model's unit)")
    time_unit_conversion: str | None = None


class CnnScoreRecord(Record):
    """One survival score of the CNN bundle as frozen."""

    label: str | None = None
    endpoint: dict[str, str]
    cutoff: float
    kind: str


class CnnBundleRecord(FrozenBundleRecord):
    """The CNN bundle (its weights' hashes verified too): networks, scores and cut-offs."""

    networks: list[str]
    scores: dict[str, CnnScoreRecord]
    response_scores: dict[str, Number]
    time_unit_conversion: list[str] = Field(default_factory=list)


class External(Record):
    bundle: BundleRecord | None = None
    cnn_bundle: CnnBundleRecord | None = None
    time_unit: str
    times: list[float]
    models: dict[str, ModelValidation]
    response: dict[str, ResponseValidation] = Field(default_factory=dict)
    skipped: dict[str, str] = Field(default_factory=dict)
    case_mix: CaseMix | None = None


class ExternalResults(ResultsFile):
    """results.json of ``studyrunner external``."""

    study: StudyRecord
    report_meta: ReportSection | None = None
    endpoints: dict[str, Endpoint] = Field(default_factory=dict)
    primary_endpoint: str | None = None
    flow: Flow | None = None
    validation: Validation | None = None
    external: External
    software: Software | None = None
    timings: dict[str, float] | None = None


def frozen_versions(recorded: dict[str, str | None], what: str) -> dict[str, Any]:
    """The versions a bundle recorded, those installed here, and one warning line per package
    whose version differs (``what`` can then differ)."""
    now = package_versions(recorded)
    warnings = [f"{name} {now[name]} here, {then} when the model was frozen: {what} can differ"
                for name, then in recorded.items() if then != now[name]]
    return {"versions_then": dict(recorded), "versions_now": now, "version_warnings": warnings}


def baseline_at_times(bundle: RadiomicsBundle, loaded: LoadedExternal) -> dict[str, float | None]:
    """The frozen baseline survival S0 at each evaluation time (keyed in the protocol's unit)."""
    factor = unit_factor(loaded.protocol.primary_endpoint().unit, bundle.endpoint.unit)
    out: dict[str, float | None] = {}
    for t in loaded.protocol.validation.times:
        try:
            out[time_key(t)] = baseline_survival_at(bundle, t * factor)
        except InputError:
            out[time_key(t)] = None  # beyond the development follow-up
    return out


def bundle_record(bundle: RadiomicsBundle, loaded: LoadedExternal) -> dict[str, Any]:
    endpoint = loaded.protocol.primary_endpoint()
    conversion = (None if endpoint.unit == bundle.endpoint.unit else
                  f"times converted from {endpoint.unit} to the model's {bundle.endpoint.unit}")
    return {"path": str(bundle.source), "content_sha256": bundle.content_sha256, "format": bundle.format,
            "study": bundle.study, "synthetic_training_data": bundle.synthetic_training_data,
            "endpoint": bundle.endpoint.model_dump(mode="json", exclude_none=True), "features": list(bundle.features),
            "coefficients": dict(bundle.coefficients),
            "normalisation": {name: n.model_dump(mode="json") for name, n in bundle.normalisation.items()},
            "baseline_at": baseline_at_times(bundle, loaded),
            "cutoff": bundle.cutoff.model_dump(mode="json"),
            "development": bundle.development.model_dump(mode="json", exclude={"table_one"}),
            **frozen_versions(bundle.versions, "feature values"), "time_unit_conversion": conversion}


def cnn_bundle_record(cnn: CnnBundle, loaded: LoadedExternal) -> dict[str, Any]:
    """The CNN bundle as the report describes it: its scores, cut-offs and versions."""
    endpoints = loaded.protocol.time_to_event_endpoints()
    conversions = sorted({f"{e.name}: times converted from {endpoints[e.name].unit} to the model's {e.unit}"
                          for e in (s.endpoint for s in cnn.scores.values())
                          if e.name in endpoints and endpoints[e.name].unit != e.unit})
    return {"path": str(cnn.source), "content_sha256": cnn.content_sha256, "format": cnn.format, "study": cnn.study,
            "synthetic_training_data": cnn.synthetic_training_data, "networks": list(cnn.networks),
            "scores": {name: {"label": s.label, "endpoint": s.endpoint.model_dump(mode="json", exclude_none=True),
                              "cutoff": s.cutoff, "kind": "fused" if s.fused_coefficients else "network"}
                       for name, s in cnn.scores.items()},
            "response_scores": {name: r.youden_cutoff for name, r in cnn.response_scores.items()},
            **frozen_versions(cnn.versions, "the network outputs"), "time_unit_conversion": conversions}


def external_flow(flow: dict[str, Any]) -> dict[str, Any]:
    """The participant flow of a validation: every included patient is in the external cohort."""
    return {**flow, "partitions": {"external": flow["n_included"]}, "training_partitions": [],
            "test_partitions": ["external"], "split_method": "none: every included patient validates the frozen model"}


def assemble_external_results(loaded: LoadedExternal, bundle: RadiomicsBundle | None, run_dir: Path,
                              environment: dict[str, Any], timings: dict[str, float], run_id: str,
                              cnn: CnnBundle | None = None) -> ExternalResults:
    """The validation's results.json from the protocol, the bundles and the stage folders."""
    protocol = loaded.protocol
    external = read_json(run_dir / "validation" / "external.json")
    return ExternalResults.model_validate({
        "study": {**protocol.study.model_dump(mode="json"),
                  "protocol_file": shareable_path(loaded.path, loaded.path.parent),
                  "protocol_sha256": loaded.sha256, "run_id": run_id,
                  "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "studyrunner_version": __version__},
        "report_meta": protocol.report.model_dump(mode="json"),
        "endpoints": {name: e.model_dump(mode="json") for name, e in protocol.endpoints.items()},
        "primary_endpoint": protocol.validation.endpoint,
        "flow": external_flow(flow_section(loaded, run_dir)),
        "validation": read_json(run_dir / "cohort" / "validation.json"),
        "external": {"bundle": bundle_record(bundle, loaded) if bundle is not None else None,
                     "cnn_bundle": cnn_bundle_record(cnn, loaded) if cnn is not None else None,
                     "time_unit": protocol.primary_endpoint().unit, "times": protocol.validation.times, **external},
        "software": software_section(environment),
        "timings": timings,
    })
