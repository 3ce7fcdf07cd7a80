"""Radiomics signature selection (seed 001, section 1.3.3-1.3.4): univariate Cox screening,
six feature-selection learners, their combination, and a stepwise-AIC Cox model.

:func:`select_signature` is the one entry point the pipeline, the cross-validation and
``studyrunner stats select`` call, on training data that is already reproducibility-filtered
and z-scored (the caller does both, so that cross-validation can redo them in every fold).

The statistics run in R (``rscripts/learners.R``, ``coxboost.R``, ``survival_forest.R``,
``superpc.R``, ``stepwise_cox.R``, ``cox.R``); see those files for the methods and papers.
A learner that fails (too few events, a single feature for glmnet, non-convergence) is
recorded with its error and the others go on; it is left out of the combination, and the
notes say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.registry import LEARNER_NAMES, LEARNERS
from studyrunner.statistics.survival_model import screen_features, select_columns

# A learner's settings come back as R doubles (5.0): every whole one is an int.
_run_learner = r_function("learners", "run_learner", counts=("settings.*",))
_stepwise_cox = r_function("stepwise_cox", "stepwise_cox", counts=("n", "n_events"))


@dataclass
class SignaturePlan:
    """What :func:`select_signature` does; the protocol's statistics section maps onto it.

    ``learner_settings`` holds each learner's settings, by name: arguments of R's
    ``<learner>_control`` in ``rscripts/learners.R`` (e.g. ``{"gbm": {"n_trees": 500},
    "superpc": {"n_top": 50}}``), the defaults there filling in the rest; ``nfolds`` (inner
    cross-validation folds) is added to every learner the registry marks ``inner_folds``
    (glmnet, CoxBoost, GBM, SuperPC) unless its own settings give one.
    """

    p_threshold: float = 0.05
    learners: Sequence[str] = LEARNER_NAMES
    combine: str = "intersection"
    min_votes: int | None = None
    nfolds: int | None = None
    learner_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    stepwise: bool = True

    def settings_for(self, learner: str) -> dict[str, Any]:
        """The arguments of one learner's ``<learner>_control``: its own settings plus the
        common ``nfolds``."""
        settings = dict(self.learner_settings.get(learner, {}))
        info = LEARNERS.get(learner)
        if self.nfolds is not None and info is not None and info.inner_folds:
            settings.setdefault("nfolds", int(self.nfolds))
        return settings


def run_learners(train: pd.DataFrame, time: str, event: str, features: Sequence[str],
                 learners: Sequence[str], seed: int,
                 settings: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Run each learner on ``train`` (R ``run_learner``, isolated: a failure is data) with
    ``settings[learner]``, the arguments of its R ``<learner>_control``.

    Returns ``{learner: {"features": [...selected, most important first], "importance":
    [{"feature", "importance"}, ...], "implementation": str | None, "settings": {...},
    "details": {...} | None, "error": str | None, "warnings": [...]}}`` in the order of
    ``learners``. Every learner runs under ``seed``.
    """
    settings = settings or {}
    data = select_columns(train, [time, event, *features])
    results: dict[str, dict[str, Any]] = {}
    for name in learners:
        raw = _run_learner(name, data, time, event, list(features), int(seed),
                           dict(settings.get(name, {})))
        results[name] = {
            "features": list(raw["features"] or []),
            "importance": to_jsonable(raw["importance"]) if raw["importance"] is not None else [],
            "implementation": raw["implementation"],
            "settings": to_jsonable(raw["settings"] or {}),
            "details": to_jsonable(raw["details"]) if raw["details"] is not None else None,
            "error": raw["error"],
            "warnings": list(raw["warnings"] or []),
        }
    return results


def combine_selections(selections: Mapping[str, Mapping[str, Any]], rule: str = "intersection",
                       min_votes: int | None = None) -> list[str]:
    """Features chosen by every learner ("intersection") or by at least ``min_votes``
    learners ("votes"), ordered by number of votes (most first), then by name.

    Learners with an ``error`` do not vote (and are left out of the intersection: see
    :func:`failed_learners`). No learner without an error -> no feature.
    """
    if rule not in ("intersection", "votes"):
        raise ValueError(f"combine rule must be 'intersection' or 'votes', got {rule!r}")
    ran = [s for s in selections.values() if not s.get("error")]
    if not ran:
        return []
    votes: dict[str, int] = {}
    for selection in ran:
        for feature in dict.fromkeys(selection["features"]):
            votes[feature] = votes.get(feature, 0) + 1
    if rule == "intersection":
        needed = len(ran)
    else:
        if min_votes is None or min_votes < 1:
            raise ValueError("combine rule 'votes' needs min_votes >= 1")
        needed = min_votes
    return sorted((f for f, v in votes.items() if v >= needed), key=lambda f: (-votes[f], f))


def failed_learners(selections: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``{learner: error}`` of the learners that failed."""
    return {name: s["error"] for name, s in selections.items() if s.get("error")}


def stepwise_cox(train: pd.DataFrame, time: str, event: str, features: Sequence[str],
                 direction: str = "both") -> dict[str, Any]:
    """Cox model by stepwise AIC, both directions, from the full model (R ``stepwise_cox``,
    ``MASS::stepAIC``); ``direction="none"`` fits the full model without a search.

    Returns ``{"features": [...kept], "coefficients": [{"term", "coef", "exp_coef",
    "exp_neg_coef", "lower", "upper", "se", "p"}, ...], "aic", "aic_full", "steps":
    [{"step", "df", "deviance", "resid_df", "resid_deviance", "aic"}, ...], "concordance",
    "n", "n_events"}``; ``lower``/``upper`` are the 95% Wald limits of exp(coef) (seed 001
    Table 2: Coef, Exp(coef), Exp(-coef), Lower.95, Upper.95).
    """
    result = _stepwise_cox(select_columns(train, [time, event, *features]), time, event,
                           list(features), direction=direction)
    result["features"] = list(result["features"] or [])
    return to_jsonable(result)


def select_signature(train: pd.DataFrame, time: str, event: str, features: Sequence[str],
                     plan: SignaturePlan, seed: int) -> dict[str, Any]:
    """Screening -> learners -> combination -> stepwise Cox, on (z-scored) training data.

    Returns::

        {"screened": [...features with univariate Cox p < plan.p_threshold, by p],
         "screening": [{"feature", "coef", "hr", "hr_lower", "hr_upper", "p", "kept",
                        "message"}, ...],
         "learners": {name: run_learners' entry},
         "failed_learners": {name: error},
         "combined": [...combine_selections],
         "stepwise": stepwise_cox's dict, or None,
         "final": {feature: coef},            # the signature (radscore coefficients)
         "notes": [...]}                      # why a step left nothing, who failed

    Without ``plan.stepwise`` the final model is the Cox fit of all combined features
    (``stepwise`` then holds its coefficients, with ``steps`` empty).
    """
    notes: list[str] = []
    out: dict[str, Any] = {"screened": [], "screening": [], "learners": {},
                           "failed_learners": {}, "combined": [], "stepwise": None,
                           "final": {}, "notes": notes}
    screening = screen_features(train, time, event, list(features), plan.p_threshold)
    out["screening"] = to_jsonable(screening)
    kept = screening[screening["kept"].astype(bool)].sort_values(["p", "feature"])
    out["screened"] = kept["feature"].tolist()
    if not out["screened"]:
        notes.append(f"no feature passed univariate Cox screening at p < {plan.p_threshold}; "
                     "no learner was run and the signature is empty")
        return out

    learners = run_learners(train, time, event, out["screened"], list(plan.learners), seed,
                            {name: plan.settings_for(name) for name in plan.learners})
    out["learners"] = learners
    failed = failed_learners(learners)
    out["failed_learners"] = failed
    for name, error in failed.items():
        notes.append(f"learner {name} failed and was left out of the combination: {error}")
    if len(failed) == len(learners):
        notes.append("every learner failed; the signature is empty")
        return out

    out["combined"] = combine_selections(learners, plan.combine, plan.min_votes)
    ran = [name for name in learners if name not in failed]
    for name in ran:
        if not learners[name]["features"]:
            notes.append(f"learner {name} selected no feature")
    if not out["combined"]:
        rule = ("intersection" if plan.combine == "intersection"
                else f"at least {plan.min_votes} votes")
        notes.append(f"no feature was selected by the {rule} of the learners that ran "
                     f"({', '.join(ran)}); the signature is empty")
        return out

    model = stepwise_cox(train, time, event, out["combined"],
                         "both" if plan.stepwise else "none")
    if not model["features"]:
        notes.append("stepwise AIC removed every combined feature (the null model has the "
                     "lowest AIC); the signature is empty")
    out["stepwise"] = model
    out["final"] = {row["term"]: row["coef"] for row in model["coefficients"]}
    return out
