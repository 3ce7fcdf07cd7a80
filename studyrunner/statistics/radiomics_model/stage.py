"""The radiomics model: develop it on the training cohort, evaluate it on every cohort.

Development (``development.develop_model``, training cohort only): reproducibility filter,
z-scoring, univariate Cox screening, the learners' selection or correlation pruning, Cox or
stepwise Cox -> risk score = linear predictor. Risk groups are cut on the training scores
(``statistics.cutoffs``: the median or the maximally selected log-rank statistic). Then, per
cohort (the test cohort is touched only here): Harrell's C-index with 95% CI, HR high vs low,
log-rank test, Kaplan-Meier with numbers at risk and median survival per group,
time-dependent ROC/AUC at the planned times, and calibration and decision curves of the
frozen predicted risk 1 - S0(t)^exp(lp), S0 the training cohort's Breslow baseline
(``frozen_calibration``; apparent on the training cohort; nothing is refitted except the
one-coefficient model of the calibration slope). Repeated K-fold cross-validation reruns the
whole development inside every training fold (AUCs; calibration of the pooled out-of-fold
predictions). A synthetic cohort's true linear predictor gives the oracle C-index, computed
the same way.

Outputs: normalisation.json, screening.csv, icc.csv, selection.json, model.json, scores.csv,
evaluation.json, cross_validation.json + folds.csv, oracle.json.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.errors import InputError
from studyrunner.protocol import Protocol, StatisticsSection
from studyrunner.registry import time_key
from studyrunner.run_folder import write_json
from studyrunner.statistics.baseline_survival import baseline_survival
from studyrunner.statistics.bootstrap_calibration import BootstrapPlan
from studyrunner.statistics.cohorts import TRAINING, cohort_masks, default_km_times
from studyrunner.statistics.cutoffs import choose_cutoff
from studyrunner.statistics.decision_curve import decision_curve, net_benefit_summary
from studyrunner.statistics.frozen_calibration import frozen_calibration
from studyrunner.statistics.radiomics_model.cross_validation import (
    cross_validate,
    cross_validated_calibration,
    summarise_folds,
)
from studyrunner.statistics.radiomics_model.development import DevelopedModel, develop_model
from studyrunner.statistics.stratification import oracle_c_index, stratify
from studyrunner.statistics.timeroc import time_dependent_auc, time_roc_record
from studyrunner.statistics.validation import predicted_risk_from_baseline

DECISION_THRESHOLDS = [round(x, 2) for x in np.arange(0.0, 0.96, 0.01)]
Progress = Callable[[int, int], None]


def evaluate_cohort(rows: pd.DataFrame, time: str, event: str, cutoff: float, plan: StatisticsSection,
                    km_times: list[float]) -> dict[str, Any]:
    """Discrimination and stratification of the risk score in one cohort."""
    block = stratify(rows, time, event, "risk_score", cutoff, km_times)
    times = plan.evaluation.time_roc_times
    if times:
        block["time_roc"] = time_roc_record(rows, time, event, "risk_score", times,
                                            plan.evaluation.time_roc_min_cases_controls)
    return block


def calibration_and_decision(rows: pd.DataFrame, time: str, event: str, baseline: dict[str, Any],
                             plan: StatisticsSection, bootstrap: BootstrapPlan | None = None) -> dict[str, Any]:
    """Calibration and decision curves of the frozen predicted risk 1 - S0(t)^exp(risk_score) in
    one cohort, ``baseline`` the training cohort's Breslow S0 (``baseline_survival``); with
    ``bootstrap``, the calibration measures' bootstrap intervals."""
    out: dict[str, Any] = {}
    evaluation = plan.evaluation
    frame = pd.DataFrame({"time": rows[time].to_numpy(), "event": rows[event].to_numpy(),
                          "lp": rows["risk_score"].to_numpy()})
    if evaluation.calibration_times:
        times = list(evaluation.calibration_times)
        try:
            out["calibration"] = frozen_calibration(frame, baseline, times, [time_key(t) for t in times],
                                                    evaluation.calibration_groups, bootstrap)
        except InputError as exc:  # e.g. a time beyond this cohort's follow-up
            out["calibration"] = {"not_run": str(exc)}
    if evaluation.decision_curve_times:
        curves = {}
        for t in evaluation.decision_curve_times:
            risk = predicted_risk_from_baseline(baseline["time"], baseline["survival"], frame["lp"].to_numpy(), t)
            curves[time_key(t)] = decision_curve(frame.assign(risk=risk), "time", "event", "risk", t,
                                                 DECISION_THRESHOLDS)
        out["decision_curves"] = curves
        out["decision_summary"] = {key: net_benefit_summary(rows_t, evaluation.decision_threshold_range)
                                   for key, rows_t in curves.items()}
    return out


def development_record(model: DevelopedModel, stage_dir: Path, endpoint: str, n_extracted: int) -> dict[str, Any]:
    """Write the development's tables (normalisation, screening, ICC, selection) and return the
    record of model.json (without its cut-off)."""
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


def develop_and_evaluate(protocol: Protocol, clinical: pd.DataFrame, features: pd.DataFrame,
                         reader2: pd.DataFrame | None, stage_dir: Path, truth: pd.DataFrame | None = None,
                         workers: int = 1, progress: Progress | None = None, cluster: str = "local") -> None:
    """Develop, score, cut, evaluate and cross-validate (module docstring) into ``stage_dir``."""
    plan, seed = protocol.statistics, protocol.study.seed
    endpoint = protocol.primary_endpoint()
    time, event = endpoint.time, endpoint.event

    data = clinical[["patient_id", "partition", time, event]].merge(features, on="patient_id", how="inner")
    data = data.dropna(subset=[time, event]).reset_index(drop=True)
    masks = cohort_masks(protocol.cohort.split, data)
    train = data[masks[TRAINING]]

    model = develop_model(train, reader2, time, event, plan, seed)
    record = development_record(model, stage_dir, plan.endpoint, features.shape[1] - 1)
    if not model.features:
        write_json(stage_dir / "model.json", record)
        write_json(stage_dir / "evaluation.json", {})
        return
    scored = data[["patient_id", "partition", time, event]].assign(risk_score=model.score(data))
    cutoff = choose_cutoff(scored[masks[TRAINING]], time, event, "risk_score", plan.risk_groups.cutoff,
                           pmethod=plan.risk_groups.pmethod, seed=seed)
    scored["risk_group"] = np.where(scored["risk_score"] > cutoff["value"], "high", "low")
    write_json(stage_dir / "model.json", {**record, "cutoff": cutoff})
    scored[["patient_id", "partition", "risk_score", "risk_group"]].to_csv(stage_dir / "scores.csv", index=False)

    km_times = plan.km_times or default_km_times(data[time])
    evaluation = {name: evaluate_cohort(scored[mask], time, event, cutoff["value"], plan, km_times)
                  for name, mask in masks.items()}
    if plan.evaluation.calibration_times or plan.evaluation.decision_curve_times:
        baseline = baseline_survival(scored[masks[TRAINING]], time, event, "risk_score")
        bootstrap = BootstrapPlan(plan.evaluation.bootstrap_replicates, seed, cluster)
        for name, mask in masks.items():
            evaluation[name].update(calibration_and_decision(scored[mask], time, event, baseline, plan, bootstrap))
    write_json(stage_dir / "evaluation.json", evaluation)

    if plan.evaluation.cross_validation is not None and plan.evaluation.time_roc_times:
        run_cross_validation(train, reader2, time, event, plan, seed, endpoint.unit, stage_dir, workers, progress,
                             final_features=model.features, cluster=cluster)
    if truth is not None:
        write_json(stage_dir / "oracle.json", {
            "description": f"the synthetic generator's true linear predictor (true_lp_{plan.endpoint}), "
                           "scored like the model",
            **oracle_c_index(protocol.cohort.split, data, truth, plan.endpoint, time, event),
        })


def run_cross_validation(train: pd.DataFrame, reader2: pd.DataFrame | None, time: str, event: str,
                         plan: StatisticsSection, seed: int, unit: str, stage_dir: Path,
                         workers: int = 1, progress: Progress | None = None,
                         final_features: list[str] | None = None, cluster: str = "local") -> None:
    """Repeated K-fold cross-validation of the whole development: the fold AUCs' summary, the
    failed fits, the final features' selection frequency and the cross-validated calibration
    (cross_validation.json), and which patient was where (folds.csv)."""
    calibrate = bool(plan.evaluation.calibration_times)
    results = cross_validate(
        train, reader2, event, plan, seed,
        develop=functools.partial(develop_model, time=time, event=event, plan=plan),
        auc=functools.partial(fold_auc, time=time, event=event), workers=workers, progress=progress,
        baseline=functools.partial(fold_baseline, time=time, event=event) if calibrate else None, cluster=cluster)
    summary = summarise_folds(results, plan, unit, final_features)
    if calibrate:
        summary["calibration"] = cross_validated_calibration(results, train, time, event, plan)
    write_json(stage_dir / "cross_validation.json", summary)
    pd.DataFrame([{"repeat": r.repeat + 1, "fold": r.fold + 1, "role": role, "patient_id": pid}
                  for r in results for role, ids in (("training", r.training_ids), ("validation", r.validation_ids))
                  for pid in ids]).to_csv(stage_dir / "folds.csv", index=False)


def fold_baseline(rows: pd.DataFrame, time: str, event: str) -> dict[str, Any]:
    """Breslow baseline survival of a training fold's scored rows (column ``risk_score``)."""
    return baseline_survival(rows, time, event, "risk_score")


def fold_auc(rows: pd.DataFrame, times: list[float], time: str, event: str) -> dict[str, float | None]:
    """{time: AUC} of the scored rows of one fold."""
    auc: dict[str, float | None] = time_dependent_auc(rows, time, event, "risk_score", times)["auc"]
    return auc
