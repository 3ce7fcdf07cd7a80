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
from studyrunner.results.models import (
    Cutoff,
    DeepRecord,
    Explanations,
    NotRun,
    Oracle,
    Results,
    RiskScores,
    Stratification,
    TableOne,
)

COHORTS = ("training", "test")
COHORT_LABELS = {"training": "Training", "test": "Test"}


UNKNOWN_LEVELS = ("unknown", "missing", "not known", "not available", "n/a")
"""Category names that stand for a missing value (the category is then a missing indicator)."""


def unknown_categories(table_one: TableOne | NotRun | None) -> list[dict[str, Any]]:
    """The categorical variables whose missing values are a category of their own ("Unknown"):
    [{"label", "level", "n", "percent"}] over the first group of Table 1 (all included
    patients), in Table 1's order; empty without a Table 1."""
    if table_one is None or isinstance(table_one, NotRun) or not table_one.groups:
        return []
    first = next(iter(table_one.groups))
    rows = []
    for variable in table_one.variables:
        for level in variable.levels:
            count = level.counts.get(first)
            if level.level.strip().lower() in UNKNOWN_LEVELS and count is not None and count.n:
                rows.append({"label": variable.label or variable.column, "level": level.level, "n": count.n,
                             "percent": percent(count.proportion)})
    return rows


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


def logrank_shown(ev: Stratification, cutoff: Cutoff, cohort: str) -> dict[str, Any]:
    """The log-rank p a table or Kaplan-Meier plot prints: in the training cohort of a cut-off
    chosen there by a search (X-tile, maxstat), the p corrected for the search, with the
    unadjusted one labelled as such; elsewhere the log-rank p of the fixed cut-off.
    Keys: "p", "label" (None, or "corrected for the cut-off search"), "unadjusted" (or None)."""
    if cohort == "training" and cutoff.p_value is not None:
        return {"p": cutoff.p_value, "label": "corrected for the cut-off search", "unadjusted": ev.logrank_p}
    return {"p": ev.logrank_p, "label": None, "unadjusted": None}


def score_rows(risk: RiskScores, endpoints: Mapping[str, Endpoint]) -> list[dict[str, Any]]:
    """One row per score and cohort: C-index (95% CI) beside the oracle's (OracleCohort with
    its CI, or None), HR with the events per risk group, log-rank (``logrank_shown``)."""
    rows = []
    for name, block in risk.scores.items():
        for cohort in COHORTS:
            ev = block.evaluation.get(cohort)
            if ev is None:
                continue
            rows.append({"score": block.label, "key": name, "cohort_key": cohort, "cohort": COHORT_LABELS[cohort],
                         "endpoint": endpoint_label(endpoints, block.endpoint), "endpoint_key": block.endpoint,
                         "ev": ev,
                         "logrank": logrank_shown(ev, block.cutoff, cohort),
                         "oracle": risk.oracle.get(block.endpoint, {}).get(cohort)})
    return rows


def selection_rows(risk: RiskScores) -> list[dict[str, Any]]:
    """The Cox terms of every score: backward-selected interval scores, then the fusion; each
    term's record (per unit and per training SD) with "key" (the score) and "override" (the
    SelectionOverride that kept it above the threshold, or None)."""
    rows: list[dict[str, Any]] = []
    for key, block in risk.scores.items():
        model = block.selection or block.fusion
        how = "fusion" if block.fusion is not None else "backward elimination"
        overrides = {o.term: o for o in block.selection.overrides} if block.selection is not None else {}
        rows.extend({"score": block.label, "key": key, "how": how, **term.model_dump(),
                     "override": overrides.get(term.term)}
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
    for key, block in (risk.response or {}).items():
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
            rows.append({"score": block.label, "key": key, "cohort_key": cohort, "outcome": block.outcome,
                         "cohort": COHORT_LABELS[cohort], "roc": roc, "at_cut": at_cut})
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


def headline_view(results: Results) -> dict[str, Any] | None:
    """The summary's headline result: the test cohort's C-index of ``risk_scores.headline_score``
    (a CNN score) when the run has one, else of the radiomics Cox model. Keys: "label", "kind"
    (what the model is), "title" (the label with its kind: "MOSRS (CNN risk score)"),
    "endpoint", "ev" (the test Stratification), "oracle" (OracleCohort or None), "target" (its
    flag-mark key), "excludes_chance" (the C-index CI lies above one half)."""
    risk = results.risk_scores
    block = risk.scores.get(risk.headline_score or "") if risk is not None else None
    ev: Stratification
    if risk is not None and block is not None and "test" in block.evaluation:
        ev = block.evaluation["test"]
        label, kind, target = block.label, "CNN risk score", f"score:{risk.headline_score}:test"
        endpoint, oracle = block.endpoint, risk.oracle.get(block.endpoint, {}).get("test")
    else:
        evaluation = results.evaluation if isinstance(results.evaluation, dict) else {}
        if "test" not in evaluation:
            return None
        ev = evaluation["test"]
        label, kind, target = "Radiomics Cox model", "radiomics Cox model", "evaluation:test"
        endpoint = results.primary_endpoint or ""
        oracle = results.oracle.test if isinstance(results.oracle, Oracle) else None
    return {"label": label, "kind": kind, "target": target, "endpoint": endpoint_label(results.endpoints, endpoint),
            "oracle": oracle, "title": label if label.lower() == kind.lower() else f"{label} ({kind})", "ev": ev,
            "excludes_chance": ev.c_lower is not None and ev.c_lower > 0.5}


def deep_context(results: Results) -> dict[str, Any]:
    """The template variables of the CNN sections (and the summary's headline result)."""
    return {**cnn_context(results), "headline": headline_view(results),
            "unknown_categories": unknown_categories(results.table_one),
            "covariate_labels": covariate_labels(results)}


def covariate_labels(results: Results) -> dict[str, str]:
    """Display names of the clinical Cox covariates and subgroup columns: Table 1's label of
    the column where it has one ("ECOG performance status"), else the figures' label (a CNN
    score by its label, "tumour_size" -> "Tumour size"); the same names as in the figures."""
    from studyrunner.report.figures.labels import covariate_label  # here: the figures package imports this module

    risk = results.risk_scores
    columns: dict[str, None] = {}
    if risk is not None:
        if risk.clinical_cox is not None:
            columns.update(dict.fromkeys(r.covariate for r in risk.clinical_cox.univariate))
        columns.update(dict.fromkeys(risk.subgroups))
        for block in (risk.response or {}).values():
            columns.update(dict.fromkeys(block.subgroups))
    table_one = results.table_one
    known = ({v.column: v.label for v in table_one.variables if v.label}
             if table_one is not None and not isinstance(table_one, NotRun) else {})
    return {c: known.get(c) or covariate_label(risk, c) for c in columns}


def cnn_context(results: Results) -> dict[str, Any]:
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
