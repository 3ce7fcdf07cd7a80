"""What the data can answer of the TRIPOD+AI items that the other statistics do not (Collins GS
et al. (2024), BMJ 385:e078378), written as ``statistics/tripod.json``:

- 20a, 21: per cohort, patients, outcome events and the median follow-up (reverse
  Kaplan-Meier, Schemper M, Smith TL (1996), Control Clin Trials 17:343-346);
- 13: the balance of every outcome per cohort (events of a time-to-event outcome, the levels of
  a categorical one) and the events per candidate predictor of the training cohort;
- 12d, 23b, 14: the model's Harrell's C per centre, per named subgroup and per fairness group,
  with the likelihood-ratio test of the score x group interaction (``statistics.subgroups``);
- 16, 20c: standardised differences between the training and the test cohort of the baseline
  variables and of the linear predictor (Austin PC (2009), Stat Med 28:3083-3107);
- 22: the selected features' z-score means and SDs and Breslow's baseline survival at the
  report times (Breslow NE (1972), J R Stat Soc B 34:216-217), S(t | lp) = S0(t)^exp(lp).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from studyrunner.bundle import BaselineSurvival, lp_summary
from studyrunner.external.case_mix import IMBALANCE, group_differences, standardised_difference
from studyrunner.protocol import CategoricalEndpoint, Protocol, StatisticsSection, SubgroupColumn
from studyrunner.run_folder import read_json
from studyrunner.statistics.baseline_survival import baseline_survival
from studyrunner.statistics.cohorts import TEST, TRAINING, cohort_masks
from studyrunner.statistics.subgroups import group_labels, level_order, median_follow_up, subgroup_performance

TABLE_ONE_GROUPS = {TRAINING: "Training", TEST: "Test"}
"""The Table 1 group of each cohort (``statistics.stage.baseline_table``)."""


def cohort_counts(protocol: Protocol, clinical: pd.DataFrame) -> dict[str, Any]:
    """Per cohort: {"n", "outcomes": {endpoint: {"label", "type", "unit", "n", "n_events", "percent",
    "follow_up"} or {"label", "type", "n", "levels": [{"level", "n", "percent"}], "missing"}}}
    (percentages of the patients whose outcome is known)."""
    masks = cohort_masks(protocol.cohort.split, clinical)
    out: dict[str, Any] = {}
    for name, mask in masks.items():
        rows = clinical[mask]
        outcomes = {key: (categorical_balance(rows, endpoint) if isinstance(endpoint, CategoricalEndpoint)
                          else event_balance(rows, endpoint.time, endpoint.event) | {"unit": endpoint.unit})
                      | {"label": endpoint.label, "type": endpoint.type}
                    for key, endpoint in protocol.endpoints.items()}
        out[name] = {"n": int(mask.sum()), "outcomes": outcomes}
    return out


def event_balance(rows: pd.DataFrame, time: str, event: str) -> dict[str, Any]:
    """Patients with a known outcome, events, their share and the reverse-KM median follow-up."""
    known = rows.dropna(subset=[time, event])
    events = int(known[event].sum())
    return {"n": len(known), "n_events": events, "percent": 100.0 * events / len(known) if len(known) else None,
            "follow_up": median_follow_up(known, time, event) if len(known) else None}


def categorical_balance(rows: pd.DataFrame, endpoint: CategoricalEndpoint) -> dict[str, Any]:
    """Patients per level of a categorical outcome (the share of those with a known level)."""
    values = rows[endpoint.column].astype("string")
    known = int(values.notna().sum())
    counts = {level: int((values == level).sum()) for level in endpoint.levels}
    return {"n": known, "missing": len(values) - known,
            "levels": [{"level": level, "n": n, "percent": 100.0 * n / known if known else None}
                       for level, n in counts.items()]}


def subgroup_records(plan: StatisticsSection, scored: pd.DataFrame, masks: dict[str, pd.Series], time: str,
                     event: str) -> dict[str, list[dict[str, Any]]]:
    """{"centre": [...], "heterogeneity": [...], "fairness": [...]}: per named column and cohort,
    the C-index per subgroup and the interaction test."""
    spec = plan.subgroups
    named = {"centre": [spec.centre] if spec.centre else [], "heterogeneity": spec.heterogeneity,
             "fairness": spec.fairness}
    return {kind: [subgroup_record(column, scored, masks, time, event) for column in columns]
            for kind, columns in named.items()}


def subgroup_record(column: SubgroupColumn, scored: pd.DataFrame, masks: dict[str, pd.Series], time: str,
                    event: str) -> dict[str, Any]:
    """One subgroup variable: {"column", "label", "cohorts": {cohort: subgroup_performance}}."""
    record: dict[str, Any] = {"column": column.column, "label": column.label, "cohorts": {}}
    if column.column not in scored.columns:
        record["reason"] = f"the clinical table has no column '{column.column}'"
        return record
    labels = group_labels(scored[column.column], column.cuts)
    for name, mask in masks.items():
        rows = scored[mask]
        record["cohorts"][name] = subgroup_performance(rows, time, event, "risk_score", labels[mask],
                                                       level_order(labels[mask], column.cuts))
    return record


def development_differences(table_one: dict[str, Any], scored: pd.DataFrame,
                            masks: dict[str, pd.Series]) -> dict[str, Any] | None:
    """Training vs test: standardised differences of the baseline variables (Table 1) and of
    the linear predictor; None without a test cohort."""
    if TEST not in masks:
        return None
    lp = {name: lp_summary(scored.loc[mask, "risk_score"]) for name, mask in masks.items()}
    train, test = lp[TRAINING], lp[TEST]
    return {"groups": [TABLE_ONE_GROUPS[TRAINING], TABLE_ONE_GROUPS[TEST]], "imbalance_threshold": IMBALANCE,
            "variables": group_differences(table_one, TABLE_ONE_GROUPS[TRAINING], table_one, TABLE_ONE_GROUPS[TEST]),
            "linear_predictor": {"training": train, "test": test,
                                 "smd": standardised_difference(test["mean"], train["mean"], test["sd"],
                                                                train["sd"])}}


def report_times(plan: StatisticsSection) -> list[float]:
    """The times at which the report gives S0(t): the planned calibration and ROC times, else the
    CNN nomogram's, else the numbers-at-risk table's (time 0 left out)."""
    evaluation = plan.evaluation
    times = [*evaluation.calibration_times, *evaluation.time_roc_times]
    if not times and plan.risk_scores is not None:
        times = list(plan.risk_scores.nomogram_times)
    if not times:
        times = list(plan.km_times or [])
    return sorted({float(t) for t in times if t > 0})


def model_specification(plan: StatisticsSection, stage_dir: Path, train: pd.DataFrame, time: str,
                        event: str) -> dict[str, Any] | None:
    """The selected features' z-score mean and SD, the linear predictor's summary and
    Breslow's S0 at :func:`report_times` on the training cohort (None without a model)."""
    model = read_json(stage_dir / "model.json")
    if not model.get("coefficients"):
        return None
    normalisation = read_json(stage_dir / "normalisation.json")
    baseline = baseline_survival(train, time, event, "risk_score")
    s0 = BaselineSurvival.model_validate(baseline)
    return {"features": [{"feature": f, "mean": normalisation[f]["mean"], "sd": normalisation[f]["sd"]}
                         for f in model["selected"] if f in normalisation],
            "linear_predictor": lp_summary(train["risk_score"]),
            "baseline_survival": [{"time": t, "survival": s0.value_at(t)} for t in report_times(plan)],
            "last_follow_up": s0.last_follow_up, "estimator": s0.estimator}


def tripod_record(protocol: Protocol, clinical: pd.DataFrame, analysed: pd.Series, stage_dir: Path) -> dict[str, Any]:
    """statistics/tripod.json (module docstring) of the patients of ``clinical`` whose id is in
    ``analysed`` (those with features), from the stage's model.json, scores.csv and
    table_one.json; the model's parts are left out when no model was fitted."""
    clinical = clinical[clinical["patient_id"].isin(analysed)].reset_index(drop=True)
    plan = protocol.statistics
    endpoint = protocol.primary_endpoint()
    time, event = endpoint.time, endpoint.event
    record: dict[str, Any] = {"cohorts": cohort_counts(protocol, clinical)}
    model = read_json(stage_dir / "model.json")
    record["n_candidates"] = model.get("n_candidates")
    scores_path = stage_dir / "scores.csv"
    if not scores_path.is_file():
        return record
    scores = pd.read_csv(scores_path, dtype={"patient_id": str})
    scored = scores.merge(clinical.drop(columns=["partition"]), on="patient_id", how="inner")
    scored = scored.dropna(subset=[time, event]).reset_index(drop=True)
    masks = cohort_masks(protocol.cohort.split, scored)
    record["subgroups"] = subgroup_records(plan, scored, masks, time, event)
    record["differences"] = development_differences(read_json(stage_dir / "table_one.json"), scored, masks)
    record["specification"] = model_specification(plan, stage_dir, scored[masks[TRAINING]], time, event)
    return record
