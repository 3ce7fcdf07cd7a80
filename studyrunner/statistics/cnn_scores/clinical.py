"""The headline CNN score beside the clinical factors and within subgroups (the nsclc_ici
paper, "Immune efficacy prediction in combination with OSRS and PFSRS", Figures 4-5).

Uni- and multivariable Cox models of the score with the protocol's clinical covariates and
the rms nomogram of the multivariable model (training cohort: Harrell FE (2015), Regression
Modeling Strategies); Kaplan-Meier and hazard ratios of the score's risk groups within each
subgroup (all patients). A numeric subgroup column with many values is split at its training
median; ``statistics.risk_scores.feature_columns`` names subgroup columns taken from a
radiomics feature (the paper's tumour size: the 3D maximum diameter).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from studyrunner.protocol import BaselineVariable, RiskScorePlan, TimeToEventEndpoint
from studyrunner.statistics.cox_table import add_per_sd, cox_table
from studyrunner.statistics.nomogram import nomogram_points
from studyrunner.statistics.risk_scores import subgroup_hazard

MIN_DISTINCT_FOR_MEDIAN_SPLIT = 5
BY_CONSTRUCTION = ("{score} is the linear predictor of a Cox model of this outcome fitted on these {n} patients: "
                   "its coefficient in a Cox model refitted on them is one (HR = e per unit) by construction, "
                   "not a finding")


def categorical_levels(variables: list[BaselineVariable], columns: list[str]) -> dict[str, list[str]]:
    """Levels (first = reference) of the categorical baseline variables among ``columns``."""
    declared = {v.column: v for v in variables}
    return {c: list(declared[c].levels or []) for c in columns
            if c in declared and declared[c].type == "categorical" and declared[c].levels}


def mark_by_construction(table: dict[str, Any], headline: str, label: str, fitted_n: int | None) -> None:
    """Mark the univariate row of ``headline`` when the score was fitted, as a Cox linear
    predictor of this outcome, on exactly the table's rows (``fitted_n`` patients; None when
    it was fitted for another outcome): its coefficient is then one by construction."""
    if fitted_n is None:
        return
    for row in table["univariate"]:
        if row["covariate"] == headline and row.get("n") == fitted_n:
            row["by_construction"] = BY_CONSTRUCTION.format(score=label, n=fitted_n)


def clinical_models(data: pd.DataFrame, training: pd.Series, endpoint: TimeToEventEndpoint, headline: str,
                    plan: RiskScorePlan, variables: list[BaselineVariable], label: str = "the score",
                    fitted_n: int | None = None) -> dict[str, Any]:
    """Uni- and multivariable Cox of the headline score with the clinical covariates (numeric
    terms also per training SD, ``cox_table.add_per_sd``; the headline's refit on its own
    fitting rows marked, :func:`mark_by_construction`), and the nomogram of the multivariable
    model's covariates (training cohort)."""
    if not plan.clinical_covariates:
        return {}
    levels = categorical_levels(variables, plan.clinical_covariates)
    covariates = [headline, *plan.clinical_covariates]
    table = cox_table(data[training], endpoint.time, endpoint.event, covariates, levels, plan.multivariable_p,
                      force=[headline])
    for part in ("univariate", "multivariable"):
        add_per_sd(table[part], data[training], key="covariate")
    mark_by_construction(table, headline, label, fitted_n)
    out: dict[str, Any] = {"clinical_cox": table}
    if plan.nomogram_times:
        entered = table["entered"] or [headline]
        out["nomogram"] = nomogram_points(data[training], endpoint.time, endpoint.event, entered,
                                          plan.nomogram_times, {k: v for k, v in levels.items() if k in entered})
        out["nomogram"]["time_unit"] = endpoint.unit
    return out


def subgroup_column(data: pd.DataFrame, column: str, training: pd.Series) -> tuple[pd.Series, str]:
    """Labels of a subgroup column: categories as they are; a numeric column with many values
    split at its training median."""
    values = data[column]
    numeric = pd.api.types.is_numeric_dtype(values)
    if numeric and values.nunique() >= MIN_DISTINCT_FOR_MEDIAN_SPLIT:
        median = float(np.median(values[training].dropna()))
        labels = pd.Series(np.where(values > median, f"> {median:.4g}", f"<= {median:.4g}"), index=data.index)
        return labels.where(values.notna()), f"split at the training median {median:.4g}"
    if numeric:
        return values.map(lambda v: None if pd.isna(v) else f"{v:g}"), "each value"
    return values.astype(object), "each category"


def subgroups(data: pd.DataFrame, training: pd.Series, endpoint: TimeToEventEndpoint, score: str, cutoff: float,
              columns: list[str], km_times: list[float]) -> dict[str, Any]:
    """Hazard ratio and Kaplan-Meier curves of the score's groups within each subgroup (all patients)."""
    out: dict[str, Any] = {}
    for column in columns:
        if column not in data:
            out[column] = {"reason": f"column {column!r} is not in the data"}
            continue
        labels, rule = subgroup_column(data, column, training)
        rows = data.assign(_subgroup=labels)
        found = subgroup_hazard(rows, endpoint.time, endpoint.event, score, cutoff, "_subgroup", km_times)
        out[column] = {"rule": rule, "cohort": "all patients", **found}
    return out
