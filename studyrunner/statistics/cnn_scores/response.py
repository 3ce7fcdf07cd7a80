"""The PR and PD scores of the dual-task network (the nsclc_ici paper, "Acquisition and
verification of PRS and PDS"): ROC/AUC with DeLong CI per cohort (DeLong ER, DeLong DM,
Clarke-Pearson DL (1988), Biometrics 44:837-845), the training Youden cut-off (Youden WJ
(1950), Cancer 3:32-35) applied unchanged to the test cohort, subgroup ROC on all patients,
and the survival of each score's groups."""

from __future__ import annotations

from typing import Any

import pandas as pd

from studyrunner.protocol import CategoricalEndpoint, RiskScorePlan, TimeToEventEndpoint
from studyrunner.statistics.cnn_scores.clinical import subgroup_column
from studyrunner.statistics.cutpoint import groups_by_cutpoint
from studyrunner.statistics.roc import apply_cutoff, response_indicators, roc_analysis, roc_subgroups

# score column -> (indicator column, label, what a positive is)
RESPONSE_SCORES = {"prs": ("pr", "PRS", "partial response"), "pds": ("pd", "PDS", "progressive disease")}
# score column -> the survival risk of the patients above its cut-off: a partial response is
# the favourable outcome, progressive disease the unfavourable one (the figures colour by risk)
HIGH_SCORE_RISK = {"prs": "lower", "pds": "higher"}


def response_statistics(data: pd.DataFrame, cohorts: dict[str, pd.Series], response: CategoricalEndpoint,
                        survival: dict[str, TimeToEventEndpoint], plan: RiskScorePlan,
                        km_times: list[float]) -> dict[str, Any]:
    """ROC of PRS and PDS per cohort, the training Youden cut-off applied to every cohort,
    subgroup ROC on all patients, and log-rank stratification by each score for the
    ``survival`` endpoints."""
    data = data.join(response_indicators(data[response.column], response.levels))
    return {score: score_statistics(data, cohorts, score, survival, plan, km_times) for score in RESPONSE_SCORES}


def score_statistics(data: pd.DataFrame, cohorts: dict[str, pd.Series], score: str,
                     survival: dict[str, TimeToEventEndpoint], plan: RiskScorePlan,
                     km_times: list[float]) -> dict[str, Any]:
    """One response score's record (see :func:`response_statistics`)."""
    outcome, label, meaning = RESPONSE_SCORES[score]
    block: dict[str, Any] = {"label": label, "outcome": meaning, "high_score_risk": HIGH_SCORE_RISK[score],
                             "by_cohort": {cohort: roc_analysis(data[mask], outcome, score)
                                           for cohort, mask in cohorts.items()}}
    cutoff = block["by_cohort"]["training"].get("cutoff")
    if cutoff is not None:
        block["at_training_cutoff"] = {cohort: apply_cutoff(data[mask], outcome, score, cutoff)
                                       for cohort, mask in cohorts.items()}
        block["stratification"] = {
            name: groups_by_cutpoint(data[data[endpoint.time].notna()], endpoint.time, endpoint.event, score,
                                     cutoff, km_times)
            for name, endpoint in survival.items()}
    block["subgroups"] = {}
    for column in plan.response_subgroups:
        if column not in data:
            block["subgroups"][column] = {"reason": f"column {column!r} is not in the data"}
            continue
        labels, rule = subgroup_column(data, column, cohorts["training"])
        block["subgroups"][column] = {"rule": rule, "cohort": "all patients",
                                      **roc_subgroups(data.assign(_subgroup=labels), outcome, score, "_subgroup")}
    return block
