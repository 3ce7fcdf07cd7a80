"""Statistics of the CNN scores (the nsclc_ici study, Transl Lung Cancer Res
2022;11(4):670-685), as a sequence of named steps.

On the training cohort only: OSRS, PFSRS and MOSRS (``scores``); the high/low cut-off of
every score (``statistics.cutoffs``: X-tile, maxstat or the median). Then per cohort (the
test cohort first touched here): C-index with CI, HR and log-rank at the training cut-off,
Kaplan-Meier curves; the headline score with the clinical covariates, nomogram and subgroups
(``clinical``); the PR and PD scores (``response``); a synthetic cohort's oracle.

Outputs: risk_scores.json (every number above), risk_scores.csv (per patient: partition,
outcomes, the risk vectors, the scores, PRS/PDS, risk groups).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.protocol import CategoricalEndpoint, Protocol, RiskScorePlan, TimeToEventEndpoint
from studyrunner.registry import fused_name, score_name, time_key
from studyrunner.run_folder import read_json, write_json
from studyrunner.statistics.baseline_survival import baseline_survival
from studyrunner.statistics.bootstrap_calibration import BootstrapPlan
from studyrunner.statistics.cnn_scores.clinical import clinical_models, subgroups
from studyrunner.statistics.cnn_scores.response import RESPONSE_SCORES, response_statistics
from studyrunner.statistics.cnn_scores.scores import endpoint_scores, fused_score
from studyrunner.statistics.cohorts import cohort_masks
from studyrunner.statistics.cutoffs import choose_cutoff
from studyrunner.statistics.frozen_calibration import frozen_calibration
from studyrunner.statistics.stratification import oracle_c_index, stratify


def scored_patients(clinical: pd.DataFrame, deep_dir: Path, features: pd.DataFrame,
                    feature_columns: dict[str, str]) -> pd.DataFrame:
    """The clinical table joined with the CNN outputs (deep/scores.csv) and the radiomics
    features the protocol names as subgroup columns (``feature_columns``)."""
    scores = pd.read_csv(deep_dir / "scores.csv", dtype={"patient_id": str}).drop(columns="partition")
    data = clinical.merge(scores, on="patient_id", how="inner")
    available = {name: feature for name, feature in feature_columns.items() if feature in features}
    if available:
        taken = features[["patient_id", *available.values()]].rename(columns={f: n for n, f in available.items()})
        data = data.merge(taken, on="patient_id", how="left")
    return data


def cut_and_evaluate(data: pd.DataFrame, cohorts: dict[str, pd.Series], scores: dict[str, dict[str, Any]],
                     endpoints: dict[str, TimeToEventEndpoint], method: str, seed: int,
                     km_times: list[float]) -> None:
    """Each score's training cut-off, its evaluation in every cohort and its risk-group column."""
    training = cohorts["training"]
    for name, block in scores.items():
        endpoint = endpoints[block["endpoint"]]
        block["cutoff"] = choose_cutoff(data[training], endpoint.time, endpoint.event, name, method, seed=seed)
        cut = block["cutoff"]["value"]
        block["evaluation"] = {cohort: stratify(data[mask & data[endpoint.time].notna()], endpoint.time,
                                                endpoint.event, name, cut, km_times)
                               for cohort, mask in cohorts.items()}
        data[f"{name}_group"] = np.where(data[name] > cut, "high", "low")


def calibrate_scores(data: pd.DataFrame, cohorts: dict[str, pd.Series], scores: dict[str, dict[str, Any]],
                     endpoints: dict[str, TimeToEventEndpoint], plan: RiskScorePlan,
                     bootstrap: BootstrapPlan | None = None) -> None:
    """Each score's calibration at the plan's times (``frozen_calibration``): the predicted
    risk 1 - S0(t)^exp(score) with S0 the training cohort's Breslow baseline survival, in
    every cohort (apparent on training); with ``bootstrap``, the measures' bootstrap intervals."""
    if not plan.calibration_times:
        return
    keys = [time_key(t) for t in plan.calibration_times]
    for name, block in scores.items():
        endpoint = endpoints[block["endpoint"]]
        rows = data[["patient_id", endpoint.time, endpoint.event, name]].rename(
            columns={endpoint.time: "time", endpoint.event: "event", name: "lp"})
        rows = rows[rows["time"].notna()]
        baseline = baseline_survival(rows[cohorts["training"].loc[rows.index]], "time", "event", "lp")
        block["calibration"] = {cohort: frozen_calibration(rows[mask.loc[rows.index]], baseline,
                                                           list(plan.calibration_times), keys, plan.calibration_groups,
                                                           bootstrap)
                                for cohort, mask in cohorts.items()}


def fitted_rows(score: dict[str, Any]) -> int | None:
    """How many training patients the score's Cox model (backward selection or fusion) was fitted on."""
    model = score.get("selection") or score.get("fusion") or {}
    return model.get("n")


def headline_score(plan: RiskScorePlan, survival_endpoints: list[str]) -> str | None:
    """The score the clinical models and subgroups are about: the fused score, else the first endpoint's."""
    if plan.fusion_endpoint:
        return fused_name(plan.fusion_endpoint)
    return score_name(survival_endpoints[0]) if survival_endpoints else None


def evaluate_cnn_scores(protocol: Protocol, clinical: pd.DataFrame, deep_dir: Path, features: pd.DataFrame,
                        stage_dir: Path, km_times: list[float], truth: pd.DataFrame | None,
                        cluster: str = "local") -> None:
    """Every statistic of the CNN scores into ``stage_dir`` (module docstring); the calibration's
    bootstrap replicates run where ``cluster`` says (:mod:`studyrunner.cluster`)."""
    plan = protocol.statistics.risk_scores
    assert plan is not None  # the statistics stage calls this only with a risk-score plan
    deep = protocol.predictors.deep_learning
    split = protocol.cohort.split
    networks = read_json(deep_dir / "training.json")["networks"]
    endpoints = protocol.time_to_event_endpoints()
    data = scored_patients(clinical, deep_dir, features, plan.feature_columns)
    cohorts = cohort_masks(split, data)
    training = cohorts["training"]
    result: dict[str, Any] = {"cohorts": {"training": split.training, "test": split.test}, "scores": {},
                              "n": {k: int(v.sum()) for k, v in cohorts.items()}}

    survival_networks = {name: networks[name] for name in deep.survival_endpoints}
    result["scores"] = endpoint_scores(data, training, endpoints, survival_networks, plan.selection_p)
    if plan.fusion_endpoint is not None:
        fused = fused_score(data, cohorts, endpoints, deep.survival_endpoints, plan.fusion_endpoint)
        result["scores"][fused_name(plan.fusion_endpoint)] = fused.pop("score")
        result.update(fused)
    cut_and_evaluate(data, cohorts, result["scores"], endpoints, plan.cutoff, protocol.study.seed, km_times)
    calibrate_scores(data, cohorts, result["scores"], endpoints, plan,
                     BootstrapPlan(plan.bootstrap_replicates, protocol.study.seed, cluster))

    headline = headline_score(plan, deep.survival_endpoints)
    if headline is not None:
        endpoint = endpoints[result["scores"][headline]["endpoint"]]
        result["headline_score"] = headline
        result.update(clinical_models(data, training, endpoint, headline, plan, protocol.cohort.baseline_variables,
                                      label=result["scores"][headline]["label"],
                                      fitted_n=fitted_rows(result["scores"][headline])))
        result["subgroups"] = subgroups(data, training, endpoint, headline,
                                        result["scores"][headline]["cutoff"]["value"], plan.subgroups, km_times)
    if deep.response is not None:
        response = protocol.endpoints[deep.response.endpoint]
        assert isinstance(response, CategoricalEndpoint)  # checked by the protocol validator
        survival = {name: e for name, e in endpoints.items() if name in deep.survival_endpoints}
        result["response"] = response_statistics(data, cohorts, response, survival, plan, km_times)
    if truth is not None:
        result["oracle"] = {name: oracle_c_index(split, data, truth, name, endpoints[name].time, endpoints[name].event)
                            for name in deep.survival_endpoints if f"true_lp_{name}" in truth}
    write_patient_table(data, endpoints, deep.survival_endpoints, networks, result["scores"], stage_dir)
    write_json(stage_dir / "risk_scores.json", result)


def write_patient_table(data: pd.DataFrame, endpoints: dict[str, TimeToEventEndpoint], survival_endpoints: list[str],
                        networks: dict[str, Any], scores: dict[str, Any], stage_dir: Path) -> None:
    """risk_scores.csv: per patient the outcomes, the CNN outputs, the scores and their groups."""
    keep = ["patient_id", "partition",
            *{c for e in survival_endpoints for c in (endpoints[e].time, endpoints[e].event)},
            *[c for r in networks.values() for c in r.get("score_columns", [])],
            *scores, *[f"{n}_group" for n in scores],
            *[c for c in RESPONSE_SCORES if c in data]]
    data[keep].to_csv(stage_dir / "risk_scores.csv", index=False, float_format="%.10g")
