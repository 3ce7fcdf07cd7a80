"""Radiomics signature selection (escc_ici_chemo, section 1.3.3-1.3.4): univariate Cox
screening, six feature-selection learners, their combination, and a stepwise-AIC Cox model.

:func:`select_signature` is the one entry point the pipeline, the cross-validation and
``studyrunner stats select`` call, on training data that is already reproducibility-filtered
and z-scored (the caller does both, so that cross-validation can redo them in every fold).
A learner that fails (too few events, a single feature for glmnet, non-convergence) is
recorded with its error and the others go on; it is left out of the combination, and the
notes say so."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.registry import LEARNER_NAMES, LEARNERS
from studyrunner.statistics.cox import screen_features
from studyrunner.statistics.learners import combine_selections, failed_learners, run_learners
from studyrunner.statistics.stepwise_cox import stepwise_cox


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
    notes.extend(f"learner {name} selected no feature" for name in ran if not learners[name]["features"])
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

