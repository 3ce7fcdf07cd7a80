"""Template variables of the nsclc_ici deep-learning sections (CNN risk scores, clinical Cox
models and nomogram, PR/PD scores, Grad-CAM), shaped from results.json's ``deep``,
``risk_scores`` and ``explanations`` records. All None/empty when the run has no CNN."""

from __future__ import annotations

from collections.abc import Mapping
from statistics import NormalDist
from typing import Any

from studyrunner.protocol import Endpoint
from studyrunner.results.models import Results

COHORTS = ("training", "test")
COHORT_LABELS = {"training": "Training", "test": "Test"}
NETWORK_LABELS = {"os": "Survival network (OS)", "pfs": "Survival network (PFS)", "response": "Dual-task network (PR, PD)"}


def percent(fraction: float | None) -> float | None:
    """A proportion as a percentage (fmt_pct takes percentages)."""
    return None if fraction is None else 100.0 * fraction


def endpoint_label(endpoints: Mapping[str, Endpoint], name: str) -> str:
    """The protocol's label of an endpoint (its name when the run does not know it)."""
    endpoint = endpoints.get(name)
    return endpoint.label if endpoint is not None else name


def network_rows(deep: Mapping[str, Any], endpoints: Mapping[str, Endpoint]) -> list[dict[str, Any]]:
    """One row per trained network: chosen epoch, epochs run, throughput, macro-accuracy."""
    rows = []
    for name, record in (deep.get("networks") or {}).items():
        label = NETWORK_LABELS.get(name) or f"Survival network ({endpoint_label(endpoints, name)})"
        accuracy = record.get("macro_accuracy") or {}
        rows.append({"name": name, "label": label, "best_epoch": record.get("best_epoch"),
                     "epochs_run": record.get("epochs_run"), "samples_per_second": record.get("train_samples_per_second"),
                     "precision": record.get("precision"), "cutoffs": record.get("cutoffs"),
                     "unit": record.get("unit"),
                     "macro_accuracy": {c: percent((accuracy.get(c) or {}).get("macro_accuracy")) for c in COHORTS},
                     "kind": record.get("kind")})
    return rows


def score_rows(risk: Mapping[str, Any], endpoints: Mapping[str, Endpoint]) -> list[dict[str, Any]]:
    """One row per score and cohort: C-index (95% CI) beside the oracle's, HR, log-rank."""
    oracle = risk.get("oracle") or {}
    rows = []
    for name, block in (risk.get("scores") or {}).items():
        endpoint = block.get("endpoint")
        for cohort in COHORTS:
            ev = (block.get("evaluation") or {}).get(cohort)
            if not ev:
                continue
            rows.append({"score": block.get("label", name.upper()), "key": name, "cohort": COHORT_LABELS[cohort],
                         "endpoint": endpoint_label(endpoints, endpoint), "ev": ev,
                         "oracle": (oracle.get(endpoint) or {}).get(cohort)})
    return rows


def selection_rows(risk: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Cox terms of every score: backward-selected interval scores, then the fusion."""
    rows = []
    for name, block in (risk.get("scores") or {}).items():
        model = block.get("selection") or block.get("fusion") or {}
        for term in model.get("coefficients") or []:
            rows.append({"score": block.get("label", name.upper()), "how": "fusion" if "fusion" in block
                         else "backward elimination", **term})
    return rows


def comparison_rows(risk: Mapping[str, Any], level: float = 0.95) -> list[dict[str, Any]]:
    """The C-index difference of the fused score and its component per cohort, with the Wald
    interval diff +/- z * se_diff (None when the difference has no standard error)."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    rows = []
    for cohort, cmp in (risk.get("comparison") or {}).items():
        se = cmp.get("se_diff")
        diff = cmp.get("diff")
        bounds = (diff - z * se, diff + z * se) if se and diff is not None else (None, None)
        rows.append({**cmp, "cohort": COHORT_LABELS.get(cohort, cohort), "diff_lower": bounds[0],
                     "diff_upper": bounds[1]})
    return rows


def fusion_shares(risk: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each fused score's components with their share in percent."""
    return [{"label": block.get("label", name.upper()),
             "shares": [{**share, "percent": percent(share.get("share"))} for share in block["fusion"].get("shares") or []]}
            for name, block in (risk.get("scores") or {}).items() if block.get("fusion")]


def response_rows(risk: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, block in ((risk.get("response") or {}).items()):
        for cohort in COHORTS:
            roc = (block.get("by_cohort") or {}).get(cohort)
            if roc:
                at_cut = (block.get("at_training_cutoff") or {}).get(cohort) or {}
                at_cut = {**at_cut, "percent": {metric: percent((at_cut.get(metric) or {}).get("estimate"))
                                                for metric in ("sensitivity", "specificity", "ppv", "npv")}}
                rows.append({"score": block.get("label", name.upper()), "outcome": block.get("outcome"),
                             "cohort": COHORT_LABELS[cohort], "roc": roc, "at_cut": at_cut})
    return rows


def deep_context(results: Results) -> dict[str, Any]:
    """The template variables of the CNN sections."""
    deep, risk, explanations = results.deep, results.risk_scores, results.explanations
    endpoints = results.endpoints
    if not deep:
        return {"deep": None, "risk": None, "explanations": None, "network_rows": [], "score_rows": [],
                "risk_selection_rows": [], "response_rows": [], "comparison_rows": [], "fusion_shares": []}
    return {"deep": deep, "risk": risk, "explanations": explanations,
            "network_rows": network_rows(deep, endpoints),
            "score_rows": score_rows(risk, endpoints) if risk else [],
            "risk_selection_rows": selection_rows(risk) if risk else [],
            "response_rows": response_rows(risk) if risk else [],
            "comparison_rows": comparison_rows(risk) if risk else [],
            "fusion_shares": fusion_shares(risk) if risk else []}
