"""One score in one cohort: discrimination and the separation of its risk groups, shared by
the radiomics model and the CNN scores, and the same numbers for a synthetic cohort's true
risk (the oracle). The oracle's C-index is itself a sample estimate in a finite cohort (Harrell's
C with its CI, Harrell FE et al. (1996), Stat Med 15:361-387): a fitted model can exceed it by
chance, so it is a reference with an interval, not a ceiling."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from studyrunner.protocol import SplitSection
from studyrunner.statistics.cohorts import TRAINING, cohort_masks
from studyrunner.statistics.cutpoint import groups_by_cutpoint
from studyrunner.statistics.evaluation import evaluate_risk_score


def stratify(rows: pd.DataFrame, time: str, event: str, score: str, cutoff: float,
             km_times: list[float]) -> dict[str, Any]:
    """C-index, HR and log-rank at ``cutoff``, Kaplan-Meier curves and each group's median
    survival of one score in one cohort."""
    block = evaluate_risk_score(rows, time, event, score, cutoff, km_times)
    groups = groups_by_cutpoint(rows, time, event, score, cutoff)["groups"]
    block["median_survival"] = {g: {"median": v["median"], "lower": v["median_lower"], "upper": v["median_upper"]}
                                for g, v in groups.items()}
    return block


def oracle_c_index(split: SplitSection, data: pd.DataFrame, truth: pd.DataFrame, endpoint: str, time: str,
                   event: str) -> dict[str, dict[str, float | None]]:
    """Harrell's C per cohort of the synthetic generator's true linear predictor
    (``true_lp_<endpoint>`` of truth.csv), computed like a model's score:
    ``{cohort: {"c_index", "c_se", "c_lower", "c_upper"}}`` (the 95% CI of R's
    ``evaluate_risk_score``)."""
    lp_column = f"true_lp_{endpoint}"
    oracle = data[["patient_id", "partition", time, event]].merge(truth[["patient_id", lp_column]], on="patient_id")
    masks = cohort_masks(split, oracle)
    cut = float(np.median(oracle.loc[masks[TRAINING], lp_column]))
    out: dict[str, dict[str, float | None]] = {}
    for name, mask in masks.items():
        block = evaluate_risk_score(oracle[mask], time, event, lp_column, cut, [])
        out[name] = {key: block[key] for key in ORACLE_KEYS}
    return out


ORACLE_KEYS = ("c_index", "c_se", "c_lower", "c_upper")
"""The keys of an oracle cohort record (``results.models.OracleCohort``)."""
