"""OSRS, PFSRS and MOSRS from the CNN risk vectors, on the training cohort (the nsclc_ici
paper, "Acquisition and verification of OSRS and PFSRS").

Each survival endpoint's interval scores are reduced by backward Cox elimination
(``risk_scores.R``); the kept scores' linear predictor is the endpoint's score
(``registry.score_name``). The endpoint scores are fused by a Cox model for the fusion
endpoint (``registry.fused_name``), compared with its component score (C-index difference,
mis-ordered pairs) and cross-checked against the other endpoints.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from studyrunner.protocol import TimeToEventEndpoint
from studyrunner.registry import fused_name, score_label, score_name
from studyrunner.statistics.concordance import compare_concordance
from studyrunner.statistics.cox import fit_cox
from studyrunner.statistics.cox_table import add_per_sd
from studyrunner.statistics.risk_scores import backward_cox_selection, fuse_scores


def without_row_scores(model: dict[str, Any]) -> dict[str, Any]:
    """A fitted score model without its per-row scores: every patient's score is computed
    from the coefficients below and written once, to risk_scores.csv."""
    return {key: value for key, value in model.items() if key != "score"}


def selection_overrides(selection: dict[str, Any]) -> list[dict[str, Any]]:
    """The kept terms whose Wald p is above the elimination threshold, with the rule that kept
    them: ``backward_cox_selection`` never drops the last term (its ``note`` says so), so a
    risk vector whose best output misses the threshold still gives a score."""
    threshold = selection["p_threshold"]
    rule = selection.get("note") or "kept by the backward elimination although above the threshold"
    return [{"term": row["term"], "p": row["p"], "p_threshold": threshold, "rule": rule}
            for row in selection["coefficients"] if row.get("p") is not None and row["p"] > threshold]


def endpoint_scores(data: pd.DataFrame, training: pd.Series, endpoints: dict[str, TimeToEventEndpoint],
                    networks: dict[str, Any], selection_p: float) -> dict[str, dict[str, Any]]:
    """Backward Cox selection over each endpoint's interval scores; adds each score's column
    to ``data`` and returns its record."""
    records: dict[str, dict[str, Any]] = {}
    for endpoint_name, record in networks.items():
        endpoint = endpoints[endpoint_name]
        name = score_name(endpoint_name)
        selection = without_row_scores(backward_cox_selection(data[training], endpoint.time, endpoint.event,
                                                              record["score_columns"], selection_p))
        selection["overrides"] = selection_overrides(selection)
        add_per_sd(selection["coefficients"], data[training])
        coefficients = selection["lp_coefficients"]
        data[name] = sum(coef * data[col] for col, coef in coefficients.items())
        records[name] = {"label": score_label(name), "endpoint": endpoint_name, "network": endpoint_name,
                         "selection": selection,
                         "output_coefficients": [float(coefficients.get(c, 0.0)) for c in record["score_columns"]]}
    return records


def fused_score(data: pd.DataFrame, cohorts: dict[str, pd.Series], endpoints: dict[str, TimeToEventEndpoint],
                survival_endpoints: list[str], fusion_endpoint: str) -> dict[str, Any]:
    """The Cox fusion of every endpoint score for ``fusion_endpoint`` (adds its column to
    ``data``), its comparison with the component score of the same endpoint in each cohort,
    and the component's Cox model for each other endpoint (training)."""
    endpoint = endpoints[fusion_endpoint]
    training = cohorts["training"]
    name = fused_name(fusion_endpoint)
    component = score_name(fusion_endpoint)
    fusion = without_row_scores(fuse_scores(data[training], endpoint.time, endpoint.event,
                                            [score_name(e) for e in survival_endpoints]))
    add_per_sd(fusion["coefficients"], data[training])
    data[name] = sum(coef * data[col] for col, coef in fusion["fused_coefficients"].items())
    cross_checks = []
    for other in survival_endpoints:
        if other != fusion_endpoint:
            model = fit_cox(data[training], endpoints[other].time, endpoints[other].event, [component])
            add_per_sd(model["coefficients"], data[training])
            cross_checks.append({"score": component, "endpoint": other, "model": model})
    return {
        "score": {"label": score_label(name), "endpoint": fusion_endpoint, "fusion": fusion},
        "comparison": {cohort: compare_concordance(data[mask], endpoint.time, endpoint.event, name, component)
                       for cohort, mask in cohorts.items()},
        "comparison_scores": [name, component],
        "cross_checks": cross_checks,
    }
