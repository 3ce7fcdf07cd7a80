"""``results.json`` of an external validation (``studyrunner external``): typed like a
development run's, with the ``external`` record in place of the model-building records.

Stable keys (README): ``external.models.<score>.c_index {estimate, lower, upper}``,
``.uno_c``, ``.auc_t.<t>``, ``.calibration.slope``, ``.calibration.at.<t> {observed,
predicted, oe, brier, groups}``, ``.risk_groups`` (hr, hr_lower, hr_upper, logrank_p,
groups.<low|high>.n and n_events, few_events), ``.n``, ``.n_events``; ``external.case_mix``;
``external.bundle {path, content_sha256, format}``. Per-time keys are ``registry.time_key``
of the protocol's times, in the protocol's unit.
"""

from __future__ import annotations

import importlib.metadata
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import Field

from studyrunner import __version__
from studyrunner.bundle import RadiomicsBundle
from studyrunner.protocol import Endpoint, LoadedExternal, ReportSection
from studyrunner.results.assemble import flow_section, software_section
from studyrunner.results.models import (
    Flow,
    Number,
    Record,
    ResultsFile,
    Software,
    Stratification,
    StudyRecord,
    Validation,
)
from studyrunner.run_folder import read_json

VERSIONED_PACKAGES = ("pyradiomics", "SimpleITK", "numpy")


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


class CalibrationSlope(Record):
    """The coefficient of the frozen LP in a Cox model on this cohort (1 = well calibrated spread)."""

    slope: Number = None
    se: Number = None
    lower: Number = None
    upper: Number = None
    p_unity: Number = None
    n: int | None = None
    n_events: int | None = None


class ExternalCalibration(Record):
    slope: CalibrationSlope
    at: dict[str, CalibrationAt]


class ExternalRiskGroups(Stratification):
    """The frozen cut-off's groups; ``few_events`` names a group with fewer events than the plan's minimum."""

    few_events: list[str] = Field(default_factory=list)


class LpDistribution(Record):
    mean: Number = None
    sd: Number = None
    quantiles: dict[str, float] = Field(default_factory=dict)


class ModelValidation(Record):
    """Every statistic of one frozen score on the external cohort."""

    n: int
    n_events: int
    c_index: Interval
    uno_c: Interval
    tau_key: str
    auc_t: dict[str, Interval]
    auc_implementation: str | None = None
    calibration: ExternalCalibration
    risk_groups: ExternalRiskGroups
    lp: LpDistribution


class CaseMix(Record):
    """The linear predictor's distribution in the development and the external cohort."""

    lp_mean_development: Number = None
    lp_sd_development: Number = None
    lp_quantiles_development: dict[str, float] = Field(default_factory=dict)
    lp_mean_external: Number = None
    lp_sd_external: Number = None
    lp_quantiles_external: dict[str, float] = Field(default_factory=dict)
    membership_c: Number = None
    membership_reason: str | None = None


class BundleRecord(Record):
    """Which frozen model was applied, and what differs between then and now."""

    path: str
    content_sha256: str
    format: str
    study: str
    synthetic_training_data: bool
    endpoint: dict[str, str]
    features: list[str]
    cutoff: dict[str, Any]
    development: dict[str, Any]
    versions_then: dict[str, str | None]
    versions_now: dict[str, str | None]
    version_warnings: list[str] = Field(default_factory=list)
    time_unit_conversion: str | None = None


class External(Record):
    bundle: BundleRecord
    time_unit: str
    times: list[float]
    models: dict[str, ModelValidation]
    case_mix: CaseMix


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


def installed_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def version_warnings(then: dict[str, str | None], now: dict[str, str | None]) -> list[str]:
    """One line per package whose version differs from the one the model was frozen with."""
    return [f"{name} {now.get(name)} here, {then.get(name)} when the model was frozen: feature values can differ"
            for name in VERSIONED_PACKAGES if name in then and then.get(name) != now.get(name)]


def bundle_record(bundle: RadiomicsBundle, loaded: LoadedExternal) -> dict[str, Any]:
    now = installed_versions()
    then = {name: bundle.versions.get(name) for name in VERSIONED_PACKAGES}
    endpoint = loaded.protocol.primary_endpoint()
    conversion = (None if endpoint.unit == bundle.endpoint.unit else
                  f"times converted from {endpoint.unit} to the model's {bundle.endpoint.unit}")
    return {"path": str(bundle.source), "content_sha256": bundle.content_sha256, "format": bundle.format,
            "study": bundle.study, "synthetic_training_data": bundle.synthetic_training_data,
            "endpoint": bundle.endpoint.model_dump(mode="json", exclude_none=True), "features": list(bundle.features),
            "cutoff": bundle.cutoff.model_dump(mode="json"),
            "development": bundle.development.model_dump(mode="json", exclude={"table_one"}),
            "versions_then": then, "versions_now": now, "version_warnings": version_warnings(then, now),
            "time_unit_conversion": conversion}


def external_flow(flow: dict[str, Any]) -> dict[str, Any]:
    """The participant flow of a validation: every included patient is in the external cohort."""
    return {**flow, "partitions": {"external": flow["n_included"]}, "training_partitions": [],
            "test_partitions": ["external"], "split_method": "none: every included patient validates the frozen model"}


def assemble_external_results(loaded: LoadedExternal, bundle: RadiomicsBundle, run_dir: Path,
                              environment: dict[str, Any], timings: dict[str, float], run_id: str) -> ExternalResults:
    """The validation's results.json from the protocol, the bundle and the stage folders."""
    protocol = loaded.protocol
    external = read_json(run_dir / "validation" / "external.json")
    return ExternalResults.model_validate({
        "study": {**protocol.study.model_dump(mode="json"), "protocol_file": str(loaded.path),
                  "protocol_sha256": loaded.sha256, "run_id": run_id,
                  "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "studyrunner_version": __version__},
        "report_meta": protocol.report.model_dump(mode="json"),
        "endpoints": {name: e.model_dump(mode="json") for name, e in protocol.endpoints.items()},
        "primary_endpoint": protocol.validation.endpoint,
        "flow": external_flow(flow_section(loaded, run_dir)),
        "validation": read_json(run_dir / "cohort" / "validation.json"),
        "external": {"bundle": bundle_record(bundle, loaded), "time_unit": protocol.primary_endpoint().unit,
                     "times": protocol.validation.times, **external},
        "software": software_section(environment),
        "timings": timings,
    })
