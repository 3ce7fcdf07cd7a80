"""Statistics stage: develop the model on the training cohort, evaluate it on every cohort.

Development (``development.develop_model``, training cohort only): reproducibility filter,
z-scoring, univariate Cox screening, the learners' selection or correlation pruning, Cox or
stepwise Cox -> risk score = linear predictor. Risk groups are cut at the training median or
at the maximally selected log-rank statistic of the training cohort (maxstat). Then, per
cohort (the test cohort is touched only here): Harrell's C-index with 95% CI, HR high vs low,
log-rank test, Kaplan-Meier with numbers at risk and median survival per group,
time-dependent ROC/AUC at the planned times; on the training cohort also calibration and
decision curves at the planned times, and repeated K-fold cross-validation that reruns the
whole development inside every training fold. A synthetic cohort's true linear predictor
gives the oracle C-index, computed the same way.

Outputs: normalisation.json, screening.csv, icc.csv, selection.json, model.json, scores.csv,
evaluation.json, cross_validation.json + folds.csv, oracle.json, table_one.json.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from studyrunner.protocol import LoadedProtocol, StatisticsSection
from studyrunner.run_folder import write_json
from studyrunner.statistics.cross_validation import cross_validate, summarise_folds
from studyrunner.statistics.development import DevelopedModel, develop_model
from studyrunner.statistics.score_performance import (
    calibration_at,
    decision_curve,
    groups_by_cutpoint,
    maxstat_cutpoint,
    predicted_risk,
    time_dependent_auc,
    time_key,
)
from studyrunner.statistics.survival_model import evaluate_risk_score
from studyrunner.statistics.table_one import table_one

TRAINING, TEST = "training", "test"
DECISION_THRESHOLDS = [round(x, 2) for x in np.arange(0.0, 0.96, 0.01)]
Progress = Callable[[int, int], None]


def default_km_times(times: pd.Series, steps: int = 6) -> list[float]:
    """Round, evenly spaced times covering the follow-up, for the numbers-at-risk table."""
    span = float(np.nanmax(times))
    raw = span / (steps - 1)
    magnitude = 10 ** np.floor(np.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    return [float(step * i) for i in range(steps) if step * i <= span] or [0.0]


def cohort_masks(loaded: LoadedProtocol, table: pd.DataFrame) -> dict[str, pd.Series]:
    split = loaded.protocol.cohort.split
    masks = {TRAINING: table["partition"].isin(split.training), TEST: table["partition"].isin(split.test)}
    return {name: mask for name, mask in masks.items() if mask.any()}


def risk_cutoff(train: pd.DataFrame, time: str, event: str, plan: StatisticsSection, seed: int) -> dict:
    """The risk-group cut-off on the training scores: their median, or maxstat's."""
    if plan.risk_groups.cutoff == "maxstat":
        result = maxstat_cutpoint(train, time, event, "risk_score", pmethod=plan.risk_groups.pmethod, seed=seed)
        return {"value": result["cutpoint"], "method": "maxstat", "statistic": result["statistic"],
                "p_value": result["p_value"], "pmethod": result["pmethod"]}
    return {"value": float(np.median(train["risk_score"])), "method": "training median"}


def stratify(rows: pd.DataFrame, time: str, event: str, score: str, cutoff: float, km_times: list[float]) -> dict:
    """C-index, HR and log-rank at ``cutoff``, Kaplan-Meier curves and each group's median
    survival of one score in one cohort."""
    block = evaluate_risk_score(rows, time, event, score, cutoff, km_times)
    groups = groups_by_cutpoint(rows, time, event, score, cutoff)["groups"]
    block["median_survival"] = {g: {"median": v["median"], "lower": v["median_lower"], "upper": v["median_upper"]}
                                for g, v in groups.items()}
    return block


def evaluate_cohort(rows: pd.DataFrame, time: str, event: str, cutoff: float, plan: StatisticsSection,
                    km_times: list[float]) -> dict:
    """Discrimination and stratification of the risk score in one cohort."""
    block = stratify(rows, time, event, "risk_score", cutoff, km_times)
    times = plan.evaluation.time_roc_times
    if times:
        auc = time_dependent_auc(rows, time, event, "risk_score", times)
        keys = list(auc["auc"])
        reasons = {r["time"]: r["reason"] for r in auc["table"] if r.get("reason")}
        block["time_roc"] = {"times": times, "auc": [auc["auc"][k] for k in keys],
                             "se": [auc["se"][k] for k in keys], "lower": [auc["lower"][k] for k in keys],
                             "upper": [auc["upper"][k] for k in keys], "implementation": auc["implementation"],
                             "se_method": auc["se_method"], "roc": auc["roc"],
                             "reasons": {time_key(k): v for k, v in reasons.items()}}
    return block


def calibration_and_decision(rows: pd.DataFrame, time: str, event: str, plan: StatisticsSection) -> dict:
    """Apparent calibration and decision curves on the development cohort."""
    out: dict = {}
    evaluation = plan.evaluation
    if evaluation.calibration_times:
        out["calibration"] = calibration_at(rows, time, event, "risk_score", evaluation.calibration_times)
    if evaluation.decision_curve_times:
        curves = {}
        for t in evaluation.decision_curve_times:
            scored = rows.assign(risk_at_t=predicted_risk(rows, time, event, "risk_score", t))
            curves[time_key(t)] = decision_curve(scored, time, event, "risk_at_t", t, DECISION_THRESHOLDS)
        out["decision_curves"] = curves
    return out


def write_development(model: DevelopedModel, stage_dir: Path, endpoint: str, n_extracted: int) -> dict:
    """The development record: normalisation, screening, ICC, selection, model.json."""
    write_json(stage_dir / "normalisation.json", model.normalisation)
    model.screening.to_csv(stage_dir / "screening.csv", index=False)
    if model.icc is not None:
        model.icc.to_csv(stage_dir / "icc.csv", index=False)
    if model.selection is not None:
        write_json(stage_dir / "selection.json", {k: v for k, v in model.selection.items() if k != "screening"})
    screened = model.screening[model.screening["kept"].astype(bool)].sort_values("p")["feature"].tolist()
    record = {"endpoint": endpoint, "time": model.time, "event": model.event, "screened": screened,
              "selected": model.features, "n_candidates": model.n_candidates,
              "n_features_extracted": n_extracted, "notes": model.notes}
    if model.features:
        record.update({"fit": model.fit, "coefficients": model.coefficients})
    else:
        record["note"] = "; ".join(model.notes) or "no feature was selected; no model was fitted"
    return record


def fit_and_evaluate(loaded: LoadedProtocol, clinical: pd.DataFrame, features: pd.DataFrame,
                     reader2: pd.DataFrame | None, stage_dir: Path, truth: pd.DataFrame | None = None,
                     workers: int = 1, progress: Progress | None = None) -> None:
    """Develop, score, cut, evaluate and cross-validate (module docstring) into ``stage_dir``."""
    protocol = loaded.protocol
    plan, seed = protocol.statistics, protocol.study.seed
    endpoint = protocol.primary_endpoint()
    time, event = endpoint.time, endpoint.event
    n_extracted = features.shape[1] - 1

    data = clinical[["patient_id", "partition", time, event]].merge(features, on="patient_id", how="inner")
    data = data.dropna(subset=[time, event]).reset_index(drop=True)
    masks = cohort_masks(loaded, data)
    train = data[masks[TRAINING]]

    model = develop_model(train, reader2, time, event, plan, seed)
    record = write_development(model, stage_dir, plan.endpoint, n_extracted)
    if not model.features:
        write_json(stage_dir / "model.json", record)
        write_json(stage_dir / "evaluation.json", {})
        return
    scored = data[["patient_id", "partition", time, event]].assign(risk_score=model.score(data))
    cutoff = risk_cutoff(scored[masks[TRAINING]], time, event, plan, seed)
    scored["risk_group"] = np.where(scored["risk_score"] > cutoff["value"], "high", "low")
    record.update({"cutoff": cutoff["value"], "cutoff_method": cutoff["method"], "cutoff_detail": cutoff})
    write_json(stage_dir / "model.json", record)
    scored[["patient_id", "partition", "risk_score", "risk_group"]].to_csv(stage_dir / "scores.csv", index=False)

    km_times = plan.km_times or default_km_times(data[time])
    evaluation = {name: evaluate_cohort(scored[mask], time, event, cutoff["value"], plan, km_times)
                  for name, mask in masks.items()}
    evaluation[TRAINING].update(calibration_and_decision(scored[masks[TRAINING]], time, event, plan))
    write_json(stage_dir / "evaluation.json", evaluation)

    if plan.evaluation.cross_validation is not None and plan.evaluation.time_roc_times:
        run_cross_validation(train, reader2, time, event, plan, seed, endpoint.unit, stage_dir, workers, progress)
    if truth is not None:
        write_oracle(loaded, data, truth, time, event, stage_dir)


def run_cross_validation(train: pd.DataFrame, reader2: pd.DataFrame | None, time: str, event: str,
                         plan: StatisticsSection, seed: int, unit: str, stage_dir: Path,
                         workers: int = 1, progress: Progress | None = None) -> None:
    results = cross_validate(
        train, reader2, event, plan, seed,
        develop=functools.partial(develop_model, time=time, event=event, plan=plan),
        auc=functools.partial(fold_auc, time=time, event=event), workers=workers, progress=progress)
    write_json(stage_dir / "cross_validation.json", summarise_folds(results, plan, unit))
    pd.DataFrame([{"repeat": r.repeat + 1, "fold": r.fold + 1, "role": role, "patient_id": pid}
                  for r in results for role, ids in (("training", r.training_ids), ("validation", r.validation_ids))
                  for pid in ids]).to_csv(stage_dir / "folds.csv", index=False)


def fold_auc(rows: pd.DataFrame, times: list[float], time: str, event: str) -> dict:
    """{time: AUC} of the scored rows of one fold."""
    return time_dependent_auc(rows, time, event, "risk_score", times)["auc"]


def oracle_c_index(loaded: LoadedProtocol, data: pd.DataFrame, truth: pd.DataFrame, endpoint: str, time: str,
                   event: str) -> dict[str, float | None]:
    """Harrell's C per cohort of the synthetic generator's true linear predictor
    (``true_lp_<endpoint>`` of truth.csv), computed like a model's score."""
    lp_column = f"true_lp_{endpoint}"
    oracle = data[["patient_id", "partition", time, event]].merge(truth[["patient_id", lp_column]], on="patient_id")
    masks = cohort_masks(loaded, oracle)
    cut = float(np.median(oracle.loc[masks[TRAINING], lp_column]))
    return {name: evaluate_risk_score(oracle[mask], time, event, lp_column, cut, [])["c_index"]
            for name, mask in masks.items()}


def write_oracle(loaded: LoadedProtocol, data: pd.DataFrame, truth: pd.DataFrame, time: str, event: str,
                 stage_dir: Path) -> None:
    """C-index of the synthetic generator's true linear predictor, scored like the model."""
    endpoint = loaded.protocol.statistics.endpoint
    write_json(stage_dir / "oracle.json", {
        "description": f"the synthetic generator's true linear predictor (true_lp_{endpoint}), scored like the model",
        **{name: {"c_index": c} for name, c in oracle_c_index(loaded, data, truth, endpoint, time, event).items()},
    })


def baseline_table(loaded: LoadedProtocol, clinical: pd.DataFrame, stage_dir: Path) -> None:
    """Table 1 by cohort with p-values (chi-square / Mann-Whitney, as in seed 000)."""
    protocol = loaded.protocol
    split = protocol.cohort.split
    groups: dict[str, pd.Series] = {"Total": pd.Series(True, index=clinical.index)}
    comparisons = []
    if split.test:
        groups["Training"] = clinical["partition"].isin(split.training)
        if len(split.training) > 1:
            groups.update({p.capitalize(): clinical["partition"] == p for p in split.training})
            comparisons.append((split.training[0].capitalize(), split.training[1].capitalize()))
        groups["Test"] = clinical["partition"].isin(split.test)
        comparisons.append(("Training", "Test"))
    variables = protocol.cohort.baseline_variables
    table = clinical.copy()
    for v in variables:  # show levels in the protocol's order
        if v.type == "categorical" and v.levels:
            table[v.column] = pd.Categorical(table[v.column].astype("string"), categories=v.levels)
    result = table_one(
        table, groups=groups, comparisons=comparisons,
        categorical={v.column: v.label for v in variables if v.type == "categorical"},
        continuous={v.column: v.label for v in variables if v.type == "continuous"},
    )
    write_json(stage_dir / "table_one.json", result)
