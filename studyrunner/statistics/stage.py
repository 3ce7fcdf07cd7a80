"""Statistics stage: radiomics Cox model on the training cohort, evaluated on training and test.

Steps (all estimation on the training cohort only; the test cohort is touched at evaluation):
1. z-score every feature with the training mean and SD (constant features are dropped);
2. univariate Cox screening (R ``survival::coxph``, Wald p < threshold);
3. greedy correlation pruning of the screened features, at most ``max_features``;
4. multivariable Cox model (Efron ties) -> risk score = linear predictor;
5. risk groups split at the training median of the score;
6. per cohort: Harrell's C-index with 95% CI, HR high vs low with CI, log-rank test,
   Kaplan-Meier estimates with numbers at risk (R ``survival``).
A synthetic cohort's true linear predictor gives the oracle C-index, computed the same way.

Outputs: normalisation.json, screening.csv, model.json, scores.csv, evaluation.json,
oracle.json (synthetic cohorts), table_one.json.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from studyrunner.protocol import LoadedProtocol
from studyrunner.rbridge import r_function
from studyrunner.run_folder import write_json
from studyrunner.statistics.survival_model import evaluate_risk_score, fit_cox, linear_predictor, screen_features
from studyrunner.statistics.table_one import table_one

TRAINING, TEST = "training", "test"


def training_normalisation(train: pd.DataFrame, features: list[str]) -> dict[str, dict[str, float]]:
    """Mean and SD of each non-constant, finite feature on the training cohort."""
    stats = {}
    for name in features:
        values = pd.to_numeric(train[name], errors="coerce")
        mean, sd = float(values.mean()), float(values.std(ddof=1))
        if np.isfinite(mean) and np.isfinite(sd) and sd > 0:
            stats[name] = {"mean": mean, "sd": sd}
    return stats


def apply_normalisation(df: pd.DataFrame, normalisation: dict[str, dict[str, float]]) -> pd.DataFrame:
    names = list(normalisation)
    means = np.array([normalisation[n]["mean"] for n in names])
    sds = np.array([normalisation[n]["sd"] for n in names])
    return pd.DataFrame((df[names].to_numpy(dtype=float) - means) / sds, columns=names, index=df.index)


def default_km_times(times: pd.Series, steps: int = 6) -> list[float]:
    """Round, evenly spaced times covering the follow-up, for the numbers-at-risk table."""
    span = float(np.nanmax(times))
    raw = span / (steps - 1)
    magnitude = 10 ** np.floor(np.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    return [float(step * i) for i in range(steps) if step * i <= span] or [0.0]


def cohort_masks(loaded: LoadedProtocol, table: pd.DataFrame) -> dict[str, pd.Series]:
    split = loaded.protocol.cohort.split
    return {TRAINING: table["partition"].isin(split.training), TEST: table["partition"].isin(split.test)}


def fit_and_evaluate(loaded: LoadedProtocol, clinical: pd.DataFrame, features: pd.DataFrame,
                     stage_dir: Path, truth: pd.DataFrame | None = None) -> None:
    """Run steps 1-6 (module docstring) and write the outputs into ``stage_dir``."""
    protocol = loaded.protocol
    plan = protocol.statistics
    endpoint = protocol.primary_endpoint()
    time, event = endpoint.time, endpoint.event
    feature_names = [c for c in features.columns if c != "patient_id"]

    data = clinical[["patient_id", "partition", time, event]].merge(features, on="patient_id", how="inner")
    data = data.dropna(subset=[time, event]).reset_index(drop=True)
    masks = cohort_masks(loaded, data)
    train = data[masks[TRAINING]]

    normalisation = training_normalisation(train, feature_names)
    write_json(stage_dir / "normalisation.json", normalisation)
    z = pd.concat([data[["patient_id", "partition", time, event]], apply_normalisation(data, normalisation)], axis=1)
    z_train = z[masks[TRAINING]]

    screening = screen_features(z_train, time, event, list(normalisation), plan.screening.p_threshold)
    screening.to_csv(stage_dir / "screening.csv", index=False)
    ranked = screening[screening["kept"].astype(bool)].sort_values("p")["feature"].tolist()
    selected = list(r_function("selection", "prune_correlated")(
        z_train[ranked], ranked, plan.screening.correlation_threshold, plan.screening.max_features)) if ranked else []

    model: dict = {"endpoint": plan.endpoint, "time": time, "event": event, "screened": ranked, "selected": selected,
                   "n_candidates": len(normalisation), "n_features_extracted": len(feature_names)}
    if not selected:
        model["note"] = (f"no feature passed univariate Cox screening at p < {plan.screening.p_threshold}; "
                         "no model was fitted")
        write_json(stage_dir / "model.json", model)
        write_json(stage_dir / "evaluation.json", {})
        return
    cox = fit_cox(z_train, time, event, selected)
    coefficients = {row["term"]: row["coef"] for row in cox["coefficients"]}
    z["risk_score"] = linear_predictor(coefficients, z)
    cutoff = float(np.median(z.loc[masks[TRAINING], "risk_score"]))
    z["risk_group"] = np.where(z["risk_score"] > cutoff, "high", "low")
    model.update({"cox": cox, "coefficients": coefficients, "cutoff": cutoff, "cutoff_method": "training median"})
    write_json(stage_dir / "model.json", model)
    z[["patient_id", "partition", "risk_score", "risk_group"]].to_csv(stage_dir / "scores.csv", index=False)

    km_times = plan.km_times or default_km_times(data[time])
    evaluation = {name: evaluate_risk_score(z[mask], time, event, "risk_score", cutoff, km_times)
                  for name, mask in masks.items() if mask.any()}
    write_json(stage_dir / "evaluation.json", evaluation)

    if truth is not None:
        oracle = data[["patient_id", "partition", time, event]].merge(truth, on="patient_id")
        oracle_masks = cohort_masks(loaded, oracle)
        lp_column = f"true_lp_{plan.endpoint}"
        write_json(stage_dir / "oracle.json", {
            "description": f"the synthetic generator's true linear predictor ({lp_column}), scored like the model",
            **{name: {"c_index": evaluate_risk_score(oracle[mask], time, event, lp_column,
                                                     float(np.median(oracle.loc[oracle_masks[TRAINING], lp_column])),
                                                     km_times)["c_index"]}
               for name, mask in oracle_masks.items() if mask.any()},
        })


def baseline_table(loaded: LoadedProtocol, clinical: pd.DataFrame, stage_dir: Path) -> None:
    """Table 1 by cohort with p-values (chi-square / Mann-Whitney, as in seed 000)."""
    protocol = loaded.protocol
    split = protocol.cohort.split
    groups: dict[str, pd.Series] = {"Total": pd.Series(True, index=clinical.index),
                                    "Training": clinical["partition"].isin(split.training)}
    if len(split.training) > 1:
        groups.update({p.capitalize(): clinical["partition"] == p for p in split.training})
    groups["Test"] = clinical["partition"].isin(split.test)
    comparisons = []
    if len(split.training) > 1:
        comparisons.append((split.training[0].capitalize(), split.training[1].capitalize()))
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
