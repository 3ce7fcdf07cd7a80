"""Template variables of the nsclc_ici deep-learning sections (CNN risk scores, clinical Cox
models and nomogram, PR/PD scores, Grad-CAM), shaped from results.json's typed ``deep``,
``risk_scores`` and ``explanations`` records. All None/empty when the run has no CNN.

No score, endpoint or network name is written here: they are the keys of the records
(``risk_scores.scores``, ``deep.networks``, ``risk_scores.response``), so renaming an
endpoint in the protocol renames every table row and sentence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

from studyrunner.protocol import Endpoint
from studyrunner.results.models import DeepRecord, Explanations, NotRun, Results, RiskScores

COHORTS = ("training", "test")
COHORT_LABELS = {"training": "Training", "test": "Test"}


def percent(fraction: float | None) -> float | None:
    """A proportion as a percentage (fmt_pct takes percentages)."""
    return None if fraction is None else 100.0 * fraction


def endpoint_label(endpoints: Mapping[str, Endpoint], name: str) -> str:
    """The protocol's label of an endpoint (its name when the run does not know it)."""
    endpoint = endpoints.get(name)
    return endpoint.label if endpoint is not None else name


def network_label(name: str, kind: str) -> str:
    """A network's name in the report: "Survival network (OS)", "Dual-task network (PR, PD)"."""
    return "Dual-task network (PR, PD)" if kind == "response" else f"Survival network ({name.upper()})"


def joined(words: Sequence[str]) -> str:
    """"A", "A and B", "A, B and C"."""
    return " and ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)


def network_rows(deep: DeepRecord) -> list[dict[str, Any]]:
    """One row per trained network: chosen epoch, epochs run, throughput, macro-accuracy."""
    rows = []
    for name, record in deep.networks.items():
        accuracy = record.macro_accuracy
        rows.append({"name": name, "label": network_label(name, record.kind), "best_epoch": record.best_epoch,
                     "epochs_run": record.epochs_run, "samples_per_second": record.train_samples_per_second,
                     "precision": record.precision, "cutoffs": record.cutoffs, "unit": record.unit,
                     "macro_accuracy": {c: percent(accuracy[c].macro_accuracy) if c in accuracy else None
                                        for c in COHORTS},
                     "kind": record.kind})
    return rows


def survival_networks(deep: DeepRecord) -> list[str]:
    """The survival networks (named by their endpoint), in training order."""
    return [name for name, record in deep.networks.items() if record.kind == "survival"]


def score_rows(risk: RiskScores, endpoints: Mapping[str, Endpoint]) -> list[dict[str, Any]]:
    """One row per score and cohort: C-index (95% CI) beside the oracle's, HR, log-rank."""
    rows = []
    for name, block in risk.scores.items():
        for cohort in COHORTS:
            ev = block.evaluation.get(cohort)
            if ev is None:
                continue
            rows.append({"score": block.label, "key": name, "cohort": COHORT_LABELS[cohort],
                         "endpoint": endpoint_label(endpoints, block.endpoint), "ev": ev,
                         "oracle": risk.oracle.get(block.endpoint, {}).get(cohort)})
    return rows


def selection_rows(risk: RiskScores) -> list[dict[str, Any]]:
    """The Cox terms of every score: backward-selected interval scores, then the fusion."""
    rows: list[dict[str, Any]] = []
    for block in risk.scores.values():
        model = block.selection or block.fusion
        how = "fusion" if block.fusion is not None else "backward elimination"
        rows.extend({"score": block.label, "how": how, **term.model_dump()}
                    for term in (model.coefficients if model is not None else []))
    return rows


def comparison_rows(risk: RiskScores, level: float = 0.95) -> list[dict[str, Any]]:
    """The C-index difference of the fused score and its component per cohort, with the Wald
    interval diff +/- z * se_diff (None when the difference has no standard error)."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    rows = []
    for cohort, cmp in risk.comparison.items():
        se, diff = cmp.se_diff, cmp.diff
        bounds = (diff - z * se, diff + z * se) if se and diff is not None else (None, None)
        rows.append({**cmp.model_dump(), "cohort": COHORT_LABELS.get(cohort, cohort), "diff_lower": bounds[0],
                     "diff_upper": bounds[1]})
    return rows


def fusion_shares(risk: RiskScores) -> list[dict[str, Any]]:
    """Each fused score's components with their share in percent."""
    return [{"label": block.label,
             "shares": [{"term": share.term, "percent": percent(share.share)} for share in block.fusion.shares]}
            for block in risk.scores.values() if block.fusion is not None]


def response_rows(risk: RiskScores) -> list[dict[str, Any]]:
    rows = []
    for block in (risk.response or {}).values():
        for cohort in COHORTS:
            roc = block.by_cohort.get(cohort)
            if roc is None:
                continue
            applied = block.at_training_cutoff.get(cohort)
            at_cut: dict[str, Any] = {"percent": {
                metric: percent(getattr(applied, metric).estimate) if applied else None
                for metric in ("sensitivity", "specificity", "ppv", "npv")}}
            if applied is not None:
                at_cut["cutoff"] = applied.cutoff
            rows.append({"score": block.label, "outcome": block.outcome, "cohort": COHORT_LABELS[cohort],
                         "roc": roc, "at_cut": at_cut})
    return rows


def subgroup_tables(risk: RiskScores) -> list[dict[str, Any]]:
    """The headline score's subgroup columns: {"column", "reason" (why not evaluated, else
    None), "sub" (the record, None when not run)}."""
    tables: list[dict[str, Any]] = []
    for column, sub in risk.subgroups.items():
        if isinstance(sub, NotRun):
            tables.append({"column": column, "reason": sub.not_run, "sub": None})
        else:
            tables.append({"column": column, "reason": sub.reason, "sub": sub})
    return tables


def response_endpoints(risk: RiskScores) -> list[str]:
    """The endpoints the response scores are stratified for, in recorded order."""
    names: dict[str, None] = {}
    for block in (risk.response or {}).values():
        names.update(dict.fromkeys(block.stratification))
    return list(names)


def score_names(risk: RiskScores | None, explanations: Explanations | None,
                endpoints: Mapping[str, Endpoint]) -> dict[str, Any]:
    """How the sentences name the scores, from the records: {"endpoint" (the endpoint scores'
    labels joined: "OSRS and PFSRS"), "fused", "fused_endpoint" (its endpoint's label),
    "headline", "compared" ([a, b]), "ssim_pair", "response"}."""
    if risk is None:
        return {"endpoint": "", "fused": "", "fused_endpoint": "", "headline": "", "compared": [], "ssim_pair": "",
                "response": ""}
    fused = [block for block in risk.scores.values() if block.fusion is not None]
    labels = {name: block.label for name, block in risk.scores.items()}
    response = {name: block.label for name, block in (risk.response or {}).items()}
    pair = explanations.ssim.pair if explanations is not None and explanations.ssim is not None else []
    return {"endpoint": joined([block.label for block in risk.scores.values() if block.fusion is None]),
            "fused": joined([block.label for block in fused]),
            "fused_endpoint": joined([endpoint_label(endpoints, block.endpoint) for block in fused]),
            "headline": labels.get(risk.headline_score or "", (risk.headline_score or "").upper()),
            "compared": [labels.get(name, name.upper()) for name in risk.comparison_scores],
            "ssim_pair": joined([labels.get(name, name.upper()) for name in pair]),
            "response": joined(list(response.values()))}


def deep_context(results: Results) -> dict[str, Any]:
    """The template variables of the CNN sections."""
    deep, risk, explanations = results.deep, results.risk_scores, results.explanations
    endpoints = results.endpoints
    if deep is None:
        return {"deep": None, "risk": None, "explanations": None, "network_rows": [], "score_rows": [],
                "risk_selection_rows": [], "response_rows": [], "comparison_rows": [], "fusion_shares": [],
                "survival_networks": [], "subgroup_tables": [], "response_endpoints": [],
                "score_names": score_names(None, None, endpoints)}
    return {"deep": deep, "risk": risk, "explanations": explanations,
            "network_rows": network_rows(deep),
            "survival_networks": survival_networks(deep),
            "score_rows": score_rows(risk, endpoints) if risk else [],
            "risk_selection_rows": selection_rows(risk) if risk else [],
            "response_rows": response_rows(risk) if risk else [],
            "comparison_rows": comparison_rows(risk) if risk else [],
            "fusion_shares": fusion_shares(risk) if risk else [],
            "subgroup_tables": subgroup_tables(risk) if risk else [],
            "response_endpoints": response_endpoints(risk) if risk else [],
            "score_names": score_names(risk, explanations, endpoints)}
