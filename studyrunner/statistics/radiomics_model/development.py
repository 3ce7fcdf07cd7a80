"""Model development on training rows: everything estimated from data, in one function.

``develop_model`` runs, on the training rows only:
1. the reproducibility filter (ICC between two segmentations, when planned);
2. z-scoring with the training mean and SD (constant features dropped);
3. univariate Cox screening;
4. either the learners' selection and its combination (seed 001), or greedy correlation
   pruning to at most ``max_features`` (seed 000's simple plan);
5. the Cox model on the selected features, or stepwise Cox by AIC (``model: stepwise_cox``).

The pipeline calls it once on the training cohort; cross-validation calls it inside every
training fold. The returned model scores any rows with the frozen normalisation and
coefficients, so the same code scores training, test, validation folds and external cohorts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.protocol import StatisticsSection
from studyrunner.rbridge import r_function
from studyrunner.statistics.cox import fit_cox, linear_predictor, screen_features
from studyrunner.statistics.icc import icc_filter
from studyrunner.statistics.radiomics_model.selection import SignaturePlan, select_signature
from studyrunner.statistics.stepwise_cox import stepwise_cox

_prune_correlated = r_function("selection", "prune_correlated")


def training_normalisation(train: pd.DataFrame, features: list[str]) -> dict[str, dict[str, float]]:
    """Mean and SD of each non-constant, finite feature on the training rows."""
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


@dataclass
class DevelopedModel:
    """A fitted model and the record of how it was developed."""

    time: str
    event: str
    n_training: int
    n_candidates: int
    normalisation: dict[str, dict[str, float]]
    screening: pd.DataFrame
    features: list[str] = field(default_factory=list)
    coefficients: dict[str, float] = field(default_factory=dict)
    fit: dict[str, Any] | None = None
    icc: pd.DataFrame | None = None
    selection: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def score(self, rows: pd.DataFrame) -> np.ndarray:
        """Cox linear predictor of ``rows`` (raw features), with the frozen normalisation."""
        z = apply_normalisation(rows, {f: self.normalisation[f] for f in self.features})
        return linear_predictor(self.coefficients, z)


def develop_model(train: pd.DataFrame, reader2: pd.DataFrame | None, time: str, event: str,
                  plan: StatisticsSection, seed: int) -> DevelopedModel:
    """Steps 1-5 of the module docstring on ``train`` (patient_id, time, event, features).

    ``reader2`` holds the second segmentation's features (patient_id + features) of the
    patients that have one; only its rows for training patients are used.
    """
    features = [c for c in train.columns if c not in ("patient_id", "partition", time, event)]
    icc: pd.DataFrame | None = None
    if plan.reproducibility is not None and reader2 is not None:
        both = reader2[reader2["patient_id"].isin(train["patient_id"])]
        r = plan.reproducibility
        icc = icc_filter(train[["patient_id", *features]], both, threshold=r.threshold,
                         form=(r.icc_model, r.icc_type, r.icc_unit), features=features, id_column="patient_id")
        features = icc.loc[icc["kept"].astype(bool), "feature"].tolist()
    normalisation = training_normalisation(train, features)
    z = pd.concat([train[[time, event]], apply_normalisation(train, normalisation)], axis=1)
    if plan.selection is not None:
        signature = select_signature(z, time, event, list(normalisation), signature_plan(plan), seed)
        model = DevelopedModel(time, event, len(train), len(normalisation), normalisation,
                               pd.DataFrame(signature["screening"]), icc=icc, selection=signature,
                               notes=list(signature["notes"]))
        if signature["final"]:
            model.fit, model.coefficients = signature["stepwise"], dict(signature["final"])
    else:
        model = _screened_cox(z, time, event, plan, normalisation, icc)
    model.features = list(model.coefficients)
    if not train[event].astype(bool).any():  # the screening's Cox fits have nothing to estimate
        model.notes.insert(0, f"the training set has no event ({event} is 0 for all {len(train)} patients)")
    return model


def _screened_cox(z: pd.DataFrame, time: str, event: str, plan: StatisticsSection,
                  normalisation: dict[str, dict[str, float]], icc: pd.DataFrame | None) -> DevelopedModel:
    """Screening, correlation pruning to at most ``max_features``, then Cox (seed 000's plan)."""
    screening_plan = plan.screening
    screening = screen_features(z, time, event, list(normalisation), screening_plan.p_threshold)
    model = DevelopedModel(time, event, len(z), len(normalisation), normalisation, screening, icc=icc)
    ranked = screening[screening["kept"].astype(bool)].sort_values("p")["feature"].tolist()
    if not ranked:
        model.notes.append(f"no feature passed univariate Cox screening at p < {screening_plan.p_threshold}")
        return model
    if screening_plan.correlation_threshold is None:
        selected = ranked[: screening_plan.max_features]
    else:
        selected = list(_prune_correlated(
            z[ranked], ranked, screening_plan.correlation_threshold, screening_plan.max_features or len(ranked)))
    model.fit = (stepwise_cox(z, time, event, selected) if plan.model == "stepwise_cox"
                 else fit_cox(z, time, event, selected))
    model.coefficients = {row["term"]: row["coef"] for row in model.fit["coefficients"]}
    if not model.coefficients:
        model.notes.append("stepwise AIC removed every feature")
    return model


def signature_plan(plan: StatisticsSection) -> SignaturePlan:
    """The protocol's selection plan in the terms of :func:`select_signature`.

    ``learner_settings[learner]`` are the arguments of R's ``<learner>_control``
    (``rscripts/learners.R``); ``superpc_top`` is SuperPC's ``n_top`` unless its settings
    give one, and ``inner_folds`` every cross-validating learner's ``nfolds``
    (:meth:`SignaturePlan.settings_for`).
    """
    selection = plan.selection
    assert selection is not None
    settings: dict[str, dict[str, Any]] = {name: dict(values) for name, values in selection.learner_settings.items()}
    settings.setdefault("superpc", {}).setdefault("n_top", selection.superpc_top)
    return SignaturePlan(p_threshold=plan.screening.p_threshold, learners=list(selection.learners),
                         combine=selection.combine, min_votes=selection.min_votes, nfolds=selection.inner_folds,
                         learner_settings=settings, stepwise=plan.model == "stepwise_cox")
