"""Statistics of the CNN scores (seed 000, Transl Lung Cancer Res 2022;11(4):670-685,
"Acquisition and verification of OSRS and PFSRS", "Immune efficacy prediction in
combination with OSRS and PFSRS", "Acquisition and verification of PRS and PDS").

On the training cohort only: backward Cox elimination over each endpoint's risk vector ->
OSRS, PFSRS (``<endpoint>rs``: the kept scores' linear predictor); Cox fusion of all
endpoint scores for ``fusion_endpoint`` -> MOSRS (``m<endpoint>rs``); the high/low cut-off
of every score (X-tile best split, maxstat, or the median); univariate and multivariable
Cox with the clinical covariates and MOSRS; the rms nomogram. Then per cohort (the test
cohort first touched here): C-index with CI, HR and log-rank at the training cut-off,
Kaplan-Meier curves; MOSRS against OSRS (C-index difference test, mis-ordered pairs); the
PR and PD scores' ROC/AUC (DeLong CI) with the training Youden cut-off applied to the test
cohort; subgroups (histology, tumour size at the training median 3D diameter, slice
thickness, voxel spacing) on all patients.

Outputs: risk_scores.json (every number above), risk_scores.csv (per patient: partition,
outcomes, the risk vectors, OSRS/PFSRS/MOSRS, PRS/PDS, risk groups).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from studyrunner.protocol import LoadedProtocol, Protocol, RiskScorePlan, TimeToEventEndpoint
from studyrunner.run_folder import read_json, write_json
from studyrunner.statistics.response_scores import apply_cutoff, roc_analysis, roc_subgroups
from studyrunner.statistics.risk_scores import (
    backward_cox_selection,
    compare_concordance,
    cox_table,
    fuse_scores,
    nomogram_points,
    subgroup_hazard,
    xtile_cutpoint,
)
from studyrunner.statistics.score_performance import groups_by_cutpoint, maxstat_cutpoint
from studyrunner.statistics.stage import oracle_c_index, stratify
from studyrunner.statistics.survival_model import fit_cox

TUMOUR_SIZE = "tumour_size"
DIAMETER_FEATURE = "original_shape_Maximum3DDiameter"
RESPONSE_SCORES = {"prs": ("pr", "PRS", "partial response"), "pds": ("pd", "PDS", "progressive disease")}
MIN_DISTINCT_FOR_MEDIAN_SPLIT = 5


def score_name(endpoint: str) -> str:
    return f"{endpoint}rs"


def fused_name(endpoint: str) -> str:
    return f"m{endpoint}rs"


def score_label(name: str) -> str:
    return name.upper()


def without_row_scores(model: dict) -> dict:
    """A fitted score model without its per-row scores: every patient's score is computed
    from the coefficients below and written once, to risk_scores.csv."""
    return {key: value for key, value in model.items() if key != "score"}


def bounded_p(p: float | None) -> float | None:
    """maxstat's Lau94 p is an upper bound that can exceed 1; a p-value is reported as at most 1."""
    return None if p is None else min(float(p), 1.0)


def choose_cutoff(train: pd.DataFrame, time: str, event: str, column: str, plan: RiskScorePlan, seed: int) -> dict:
    """The high/low cut-off of one score on the training cohort (high = score > cut-off)."""
    if plan.cutoff == "xtile":
        found = xtile_cutpoint(train, time, event, column)
        return {"value": found["cutpoint"], "method": "X-tile best split (maximal log-rank chi-square)",
                "chisq": found["chisq"], "p_naive": found["p_naive"], "p_corrected": bounded_p(found["p_corrected"]),
                "corrected_method": found["corrected_method"], "n_cutoffs": found["n_cutoffs"]}
    if plan.cutoff == "maxstat":
        found = maxstat_cutpoint(train, time, event, column, seed=seed)
        return {"value": found["cutpoint"], "method": "maxstat", "chisq": found["statistic"],
                "p_corrected": bounded_p(found["p_value"]), "corrected_method": found["pmethod"]}
    return {"value": float(np.median(train[column])), "method": "training median"}


def evaluate_by_cohort(data: pd.DataFrame, cohorts: dict[str, pd.Series], time: str, event: str, column: str,
                       cutoff: float, km_times: list[float]) -> dict:
    return {name: stratify(data[mask & data[time].notna()], time, event, column, cutoff, km_times)
            for name, mask in cohorts.items()}


def subgroup_column(data: pd.DataFrame, column: str, training: pd.Series) -> tuple[pd.Series, str]:
    """Labels of a subgroup column: categories as they are; a numeric column with many values
    split at its training median (the seed's tumour size: 3D maximum diameter)."""
    source = DIAMETER_FEATURE if column == TUMOUR_SIZE else column
    values = data[source]
    numeric = pd.api.types.is_numeric_dtype(values)
    if numeric and values.nunique() >= MIN_DISTINCT_FOR_MEDIAN_SPLIT:
        median = float(np.median(values[training].dropna()))
        labels = pd.Series(np.where(values > median, f"> {median:.4g}", f"<= {median:.4g}"), index=data.index)
        return labels.where(values.notna()), f"split at the training median {median:.4g}"
    if numeric:
        return values.map(lambda v: None if pd.isna(v) else f"{v:g}"), "each value"
    return values.astype(object), "each category"


def evaluate_risk_scores(loaded: LoadedProtocol, clinical: pd.DataFrame, deep_dir: Path, features: pd.DataFrame,
                         stage_dir: Path, km_times: list[float], truth: pd.DataFrame | None) -> None:
    protocol = loaded.protocol
    plan = protocol.statistics.risk_scores
    assert plan is not None
    deep = protocol.predictors.deep_learning
    training_record = read_json(deep_dir / "training.json")["networks"]
    scores = pd.read_csv(deep_dir / "scores.csv", dtype={"patient_id": str}).drop(columns="partition")
    data = clinical.merge(scores, on="patient_id", how="inner")
    if DIAMETER_FEATURE in features:
        data = data.merge(features[["patient_id", DIAMETER_FEATURE]], on="patient_id", how="left")
    split = protocol.cohort.split
    cohorts = {"training": data["partition"].isin(split.training), "test": data["partition"].isin(split.test)}
    cohorts = {k: v for k, v in cohorts.items() if v.any()}
    training = cohorts["training"]
    train = data[training]
    result: dict = {"cohorts": {"training": split.training, "test": split.test}, "scores": {},
                    "n": {k: int(v.sum()) for k, v in cohorts.items()}}

    endpoints = protocol.time_to_event_endpoints()
    for endpoint_name in deep.survival_endpoints:
        endpoint = endpoints[endpoint_name]
        name = score_name(endpoint_name)
        record = training_record[endpoint_name]
        selection = without_row_scores(backward_cox_selection(train, endpoint.time, endpoint.event,
                                                              record["score_columns"], plan.selection_p))
        coefficients = selection["lp_coefficients"]
        data[name] = sum(coef * data[col] for col, coef in coefficients.items())
        result["scores"][name] = {
            "label": score_label(name), "endpoint": endpoint_name, "network": endpoint_name,
            "selection": selection, "output_coefficients": [float(coefficients.get(c, 0.0)) for c in record["score_columns"]]}

    if plan.fusion_endpoint is not None:
        endpoint = endpoints[plan.fusion_endpoint]
        components = [score_name(e) for e in deep.survival_endpoints]
        name = fused_name(plan.fusion_endpoint)
        fusion = without_row_scores(fuse_scores(data[training], endpoint.time, endpoint.event, components))
        data[name] = sum(coef * data[col] for col, coef in fusion["fused_coefficients"].items())
        result["scores"][name] = {"label": score_label(name), "endpoint": plan.fusion_endpoint, "fusion": fusion}
        result["comparison"] = {
            cohort: compare_concordance(data[mask], endpoint.time, endpoint.event, name, score_name(plan.fusion_endpoint))
            for cohort, mask in cohorts.items()}
        result["comparison_scores"] = [name, score_name(plan.fusion_endpoint)]
        others = [e for e in deep.survival_endpoints if e != plan.fusion_endpoint]
        result["cross_checks"] = [
            {"score": score_name(plan.fusion_endpoint), "endpoint": other,
             "model": fit_cox(data[training], endpoints[other].time, endpoints[other].event,
                              [score_name(plan.fusion_endpoint)])} for other in others]

    for name, block in result["scores"].items():
        endpoint = endpoints[block["endpoint"]]
        block["cutoff"] = choose_cutoff(data[training], endpoint.time, endpoint.event, name, plan, protocol.study.seed)
        block["evaluation"] = evaluate_by_cohort(data, cohorts, endpoint.time, endpoint.event, name,
                                                 block["cutoff"]["value"], km_times)
        data[f"{name}_group"] = np.where(data[name] > block["cutoff"]["value"], "high", "low")

    headline = fused_name(plan.fusion_endpoint) if plan.fusion_endpoint else score_name(deep.survival_endpoints[0]) \
        if deep.survival_endpoints else None
    if headline is not None:
        endpoint = endpoints[result["scores"][headline]["endpoint"]]
        result["headline_score"] = headline
        result.update(clinical_models(protocol, data, training, endpoint, headline, plan))
        result["subgroups"] = subgroups(data, training, endpoint, headline, result["scores"][headline]["cutoff"]["value"],
                                        plan.subgroups, km_times)
    if deep.response is not None:
        result["response"] = response_statistics(protocol, data, cohorts, plan, km_times)
    if truth is not None:
        result["oracle"] = {name: oracle_c_index(loaded, data, truth, name, endpoints[name].time, endpoints[name].event)
                            for name in deep.survival_endpoints if f"true_lp_{name}" in truth}

    keep = ["patient_id", "partition", *{c for e in deep.survival_endpoints for c in (endpoints[e].time, endpoints[e].event)},
            *[c for r in training_record.values() for c in r.get("score_columns", [])],
            *result["scores"], *[f"{n}_group" for n in result["scores"]],
            *[c for c in RESPONSE_SCORES if c in data]]
    data[keep].to_csv(stage_dir / "risk_scores.csv", index=False, float_format="%.10g")
    write_json(stage_dir / "risk_scores.json", result)


def clinical_models(protocol: Protocol, data: pd.DataFrame, training: pd.Series, endpoint: TimeToEventEndpoint,
                    headline: str, plan: RiskScorePlan) -> dict:
    """Uni- and multivariable Cox of the headline score with the clinical covariates, and the
    nomogram of the multivariable model's covariates (training cohort)."""
    if not plan.clinical_covariates:
        return {}
    levels = categorical_levels(protocol, plan.clinical_covariates)
    covariates = [headline, *plan.clinical_covariates]
    table = cox_table(data[training], endpoint.time, endpoint.event, covariates, levels, plan.multivariable_p,
                      force=[headline])
    out = {"clinical_cox": table}
    if plan.nomogram_times:
        entered = table["entered"] or [headline]
        out["nomogram"] = nomogram_points(data[training], endpoint.time, endpoint.event, entered,
                                          plan.nomogram_times, {k: v for k, v in levels.items() if k in entered})
        out["nomogram"]["time_unit"] = endpoint.unit
    return out


def categorical_levels(protocol: Protocol, columns: list[str]) -> dict[str, list[str]]:
    """Levels (first = reference) of the categorical baseline variables among ``columns``."""
    declared = {v.column: v for v in protocol.cohort.baseline_variables}
    return {c: list(declared[c].levels or []) for c in columns
            if c in declared and declared[c].type == "categorical" and declared[c].levels}


def subgroups(data: pd.DataFrame, training: pd.Series, endpoint: TimeToEventEndpoint, score: str, cutoff: float,
              columns: list[str], km_times: list[float]) -> dict:
    out = {}
    for column in columns:
        source = DIAMETER_FEATURE if column == TUMOUR_SIZE else column
        if source not in data:
            out[column] = {"reason": f"column {source!r} is not in the data"}
            continue
        labels, rule = subgroup_column(data, column, training)
        rows = data.assign(_subgroup=labels)
        found = subgroup_hazard(rows, endpoint.time, endpoint.event, score, cutoff, "_subgroup", km_times)
        out[column] = {"rule": rule, "cohort": "all patients", **found}
    return out


def response_statistics(protocol: Protocol, data: pd.DataFrame, cohorts: dict[str, pd.Series], plan: RiskScorePlan,
                        km_times: list[float]) -> dict:
    """ROC of PRS and PDS per cohort, the training Youden cut-off applied to the test cohort,
    subgroup ROC on all patients, and log-rank stratification by each score."""
    from studyrunner.statistics.response_scores import response_indicators

    task = protocol.predictors.deep_learning.response
    assert task is not None
    column = protocol.endpoints[task.endpoint].column  # type: ignore[union-attr]
    levels = protocol.endpoints[task.endpoint].levels  # type: ignore[union-attr]
    data = data.join(response_indicators(data[column], levels))
    training = cohorts["training"]
    out: dict = {}
    for score, (outcome, label, meaning) in RESPONSE_SCORES.items():
        block: dict = {"label": label, "outcome": meaning, "by_cohort": {}}
        for cohort, mask in cohorts.items():
            block["by_cohort"][cohort] = roc_analysis(data[mask], outcome, score)
        cutoff = block["by_cohort"]["training"].get("cutoff")
        if cutoff is not None:
            block["at_training_cutoff"] = {cohort: apply_cutoff(data[mask], outcome, score, cutoff)
                                           for cohort, mask in cohorts.items()}
            block["stratification"] = {}
            for name, endpoint in protocol.time_to_event_endpoints().items():
                if name in protocol.predictors.deep_learning.survival_endpoints:
                    rows = data[data[endpoint.time].notna()]
                    block["stratification"][name] = groups_by_cutpoint(rows, endpoint.time, endpoint.event, score,
                                                                       cutoff, km_times)
        block["subgroups"] = {}
        for sub in plan.response_subgroups:
            if sub not in data:
                block["subgroups"][sub] = {"reason": f"column {sub!r} is not in the data"}
                continue
            labels, rule = subgroup_column(data, sub, training)
            block["subgroups"][sub] = {"rule": rule, "cohort": "all patients",
                                       **roc_subgroups(data.assign(_subgroup=labels), outcome, score, "_subgroup")}
        out[score] = block
    return out
