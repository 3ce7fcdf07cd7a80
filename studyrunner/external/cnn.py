"""External validation of the frozen CNN scores (``model/cnn_bundle.json``, format
``studyrunner.cnn-scores/2``; the nsclc_ici study, Transl Lung Cancer Res 2022;11(4):670-685).

Nothing is refitted. ``cnn_scores`` (a stage on the run's device) scores every usable case
with the frozen crop, z-score, weights and Cox coefficients (:func:`deep.frozen.score_with_cnn_bundle`).
The validation stage then gives:

- each survival score (OSRS, PFSRS, the fused MOSRS) the statistics of the radiomics score
  (:func:`external.statistics.validate_score`): the score is the frozen linear predictor,
  its predicted risk by t is 1 - S0(t)^exp(score) with the Breslow baseline survival frozen
  in the bundle (Breslow NE (1972), J R Stat Soc B 34:216-217), its groups are cut at the
  frozen cut-off. The score's endpoint is this protocol's endpoint of the same name; a score
  whose endpoint the protocol lacks is skipped with the reason recorded;
- each response score (PRS, PDS), when ``validation.response_endpoint`` names the best
  overall response: the ROC AUC with its DeLong CI (DeLong ER et al. (1988), Biometrics
  44:837-845) and the frozen Youden cut-off's (Youden WJ (1950), Cancer 3:32-35)
  sensitivity, specificity, PPV and NPV with exact CIs (Clopper CJ, Pearson ES (1934),
  Biometrika 26:404-413), through ``statistics.roc``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.bundle import CnnBundle, CnnSurvivalScore
from studyrunner.cluster import LOCAL
from studyrunner.deep.frozen import score_with_cnn_bundle
from studyrunner.external.statistics import validate_score
from studyrunner.protocol import CategoricalEndpoint, ExternalValidationProtocol, TimeToEventEndpoint
from studyrunner.registry import unit_factor
from studyrunner.run_folder import write_json
from studyrunner.statistics.bootstrap_calibration import BootstrapPlan
from studyrunner.statistics.cnn_scores.response import RESPONSE_SCORES
from studyrunner.statistics.roc import apply_cutoff, response_indicators, roc_analysis

MIN_PER_CLASS = 2  # roc_analysis needs at least two patients with and two without the outcome


def score_cases(bundle: CnnBundle, usable: pd.DataFrame, mask_label: int, device: str, stage_dir: Path,
                cluster: str = LOCAL, progress: Callable[[int, int], None] | None = None) -> None:
    """The cnn_scores stage: every usable case's network outputs and scores under the frozen
    bundle, and each survival score's risk group at its frozen cut-off (``scores.csv``); the
    cases are scored in batches here or on the Dask cluster ``cluster``, and the devices
    that scored them are counted (``scoring.json``)."""
    scores = score_with_cnn_bundle(bundle.source, usable, mask_label=mask_label, device=device, cluster=cluster,
                                   progress=progress)
    write_json(stage_dir / "scoring.json", {"cluster": cluster, "device_requested": device,
                                            "cases_per_device": scores.attrs.get("devices", {})})
    for name, score in bundle.scores.items():
        scores[f"{name}_group"] = np.where(scores[name] > score.cutoff, "high", "low")
    scores.to_csv(stage_dir / "scores.csv", index=False, float_format="%.12g")


def score_endpoints(bundle: CnnBundle, protocol: ExternalValidationProtocol
                    ) -> tuple[dict[str, TimeToEventEndpoint], dict[str, str]]:
    """Each survival score's endpoint in this protocol, found by the bundle's endpoint name,
    and the scores that have none, with the reason."""
    mapped: dict[str, TimeToEventEndpoint] = {}
    skipped: dict[str, str] = {}
    for name, score in bundle.scores.items():
        wanted = score.endpoint.name
        endpoint = protocol.endpoints.get(wanted)
        if isinstance(endpoint, TimeToEventEndpoint):
            mapped[name] = endpoint
        elif endpoint is None:
            skipped[name] = (f"the score predicts endpoint {wanted!r}, which this protocol does not define "
                             f"(endpoints: {sorted(protocol.endpoints)})")
        else:
            skipped[name] = f"the score predicts endpoint {wanted!r}, which this protocol defines as {endpoint.type}"
    return mapped, skipped


def survival_rows(scores: pd.DataFrame, clinical: pd.DataFrame, name: str, endpoint: TimeToEventEndpoint,
                  factor: float) -> pd.DataFrame:
    """Per patient: the outcome (times multiplied by ``factor``, into the bundle's unit) and the
    frozen score as ``lp``; patients without the outcome are left out."""
    rows = clinical[["patient_id", endpoint.time, endpoint.event]].merge(
        scores[["patient_id", name]], on="patient_id", how="inner")
    rows = rows.rename(columns={endpoint.time: "time", endpoint.event: "event", name: "lp"})
    rows = rows.dropna(subset=["time", "event", "lp"])
    rows["time"] = rows["time"].astype(float) * factor
    rows["event"] = rows["event"].astype(int)
    return rows.reset_index(drop=True)


def frozen_record(score: CnnSurvivalScore) -> dict[str, Any]:
    """What ``validate_score`` needs of a frozen score: its baseline survival and cut-off."""
    baseline = score.baseline_survival
    return {"baseline_survival": {"time": list(baseline.time), "survival": list(baseline.survival)},
            "cutoff": score.cutoff}


def development_summary(name: str, score: CnnSurvivalScore, endpoint: str) -> dict[str, Any]:
    """The frozen score's description beside its statistics: label, endpoint, cut-off and the
    development cohort's linear predictor and C-index per cohort."""
    development = score.development
    return {"source": "cnn", "label": score.label or name.upper(), "endpoint": endpoint, "cutoff": score.cutoff,
            "lp_development": development.linear_predictor.model_dump(mode="json"),
            "development_performance": {cohort: {"n": perf.n, "estimate": perf.c_index, "lower": perf.c_lower,
                                                 "upper": perf.c_upper, "se": perf.c_se}
                                        for cohort, perf in development.performance.items()}}


def validate_survival_scores(bundle: CnnBundle, scores: pd.DataFrame, clinical: pd.DataFrame,
                             protocol: ExternalValidationProtocol, cluster: str = LOCAL
                             ) -> tuple[dict[str, Any], dict[str, str], pd.DataFrame]:
    """Every statistic of each survival score whose endpoint this protocol has (keyed by the
    score's name), the skipped scores with their reason, and the rows each was computed on
    (long format: patient_id, score, time, event, lp; times in the bundle's unit). The
    calibration measures' bootstrap replicates run where ``cluster`` says."""

    plan = protocol.validation
    primary_unit = protocol.primary_endpoint().unit
    mapped, skipped = score_endpoints(bundle, protocol)
    models: dict[str, Any] = {}
    used: list[pd.DataFrame] = []
    for name, endpoint in mapped.items():
        frozen = bundle.scores[name]
        rows = survival_rows(scores, clinical, name, endpoint, unit_factor(endpoint.unit, frozen.endpoint.unit))
        times = [t * unit_factor(primary_unit, frozen.endpoint.unit) for t in plan.times]
        bootstrap = BootstrapPlan(plan.bootstrap_replicates, protocol.study.seed, cluster)
        models[name] = {**validate_score(rows, frozen_record(frozen), plan, times, bootstrap),
                        **development_summary(name, frozen, frozen.endpoint.name)}
        used.append(rows.assign(score=name)[["patient_id", "score", "time", "event", "lp"]])
    long = pd.concat(used, ignore_index=True) if used else pd.DataFrame(
        columns=["patient_id", "score", "time", "event", "lp"])
    return models, skipped, long


def response_rows(scores: pd.DataFrame, clinical: pd.DataFrame, response: CategoricalEndpoint) -> pd.DataFrame:
    """Per patient: the response scores and the binary outcomes ``pr`` and ``pd`` from the best
    overall response (missing where the response is)."""
    rows = scores.merge(clinical[["patient_id", response.column]], on="patient_id", how="inner")
    return rows.join(response_indicators(rows[response.column], response.levels))


def validate_response_score(rows: pd.DataFrame, name: str, youden_cutoff: float | None,
                            endpoint: str) -> dict[str, Any]:
    """ROC AUC (DeLong CI) of one response score and its frozen Youden cut-off's
    classification on ``rows`` (a higher score means the outcome: direction ``<``)."""
    outcome, label, meaning = RESPONSE_SCORES[name]
    known = rows.dropna(subset=[outcome])
    n_positive = int((known[outcome] == 1).sum())
    record: dict[str, Any] = {"label": label, "outcome": meaning, "endpoint": endpoint, "n": len(known),
                              "n_positive": n_positive, "n_negative": len(known) - n_positive,
                              "n_missing_outcome": len(rows) - len(known), "youden_cutoff": youden_cutoff,
                              "auc": None, "at_frozen_cutoff": None, "reason": None}
    if min(n_positive, len(known) - n_positive) < MIN_PER_CLASS:
        record["reason"] = (f"{n_positive} patient(s) with and {len(known) - n_positive} without {meaning}: "
                            f"the AUC needs at least {MIN_PER_CLASS} of each")
        return record
    roc = roc_analysis(known, outcome, name)
    record["auc"] = {"estimate": roc["auc"], "lower": roc["auc_lower"], "upper": roc["auc_upper"], "se": roc["auc_se"],
                     "method": roc["ci_method"]}
    if youden_cutoff is None:
        record["reason"] = "the bundle has no Youden cut-off for this score (none on the training cohort)"
    else:
        record["at_frozen_cutoff"] = apply_cutoff(known, outcome, name, youden_cutoff)
    return record


def validate_response_scores(bundle: CnnBundle, scores: pd.DataFrame, clinical: pd.DataFrame,
                             protocol: ExternalValidationProtocol) -> tuple[dict[str, Any], dict[str, str]]:
    """Each response score's validation (keyed by its name), or the reason none was made."""
    name = protocol.validation.response_endpoint
    if not bundle.response_scores:
        return {}, {}
    if name is None:
        return {}, dict.fromkeys(bundle.response_scores, "the protocol names no validation.response_endpoint")
    response = protocol.endpoints[name]
    assert isinstance(response, CategoricalEndpoint)  # checked by the protocol validator
    rows = response_rows(scores, clinical, response)
    return {score: validate_response_score(rows, score, frozen.youden_cutoff, name)
            for score, frozen in bundle.response_scores.items() if score in rows}, {}


def validate_cnn_bundle(bundle: CnnBundle, scores: pd.DataFrame, clinical: pd.DataFrame,
                        protocol: ExternalValidationProtocol, cluster: str = LOCAL
                        ) -> tuple[dict[str, Any], pd.DataFrame]:
    """The CNN part of validation/external.json (``models``, ``response``, ``skipped``) and the
    survival scores' rows."""
    models, skipped, rows = validate_survival_scores(bundle, scores, clinical, protocol, cluster)
    response, not_validated = validate_response_scores(bundle, scores, clinical, protocol)
    return {"models": models, "response": response, "skipped": {**skipped, **not_validated}}, rows
