"""The feature-selection learners of a radiomics signature: typed entry point to
``rscripts/learners.R`` (which sources ``coxboost.R``, ``survival_forest.R``, ``superpc.R``).

Each learner (``studyrunner.registry.LEARNERS``: elastic net, lasso, CoxBoost, GBM, random
survival forest, SuperPC, with their papers) selects features on the training data; a learner
that fails is recorded with its error and the others go on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.statistics.r_inputs import select_columns

# A learner's settings come back as R doubles (5.0): every whole one is an int.
_run_learner = r_function("learners", "run_learner", counts=("settings.*", "details.steps"))


def run_learners(train: pd.DataFrame, time: str, event: str, features: Sequence[str],
                 learners: Sequence[str], seed: int,
                 settings: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Run each learner on ``train`` (R ``run_learner``, isolated: a failure is data) with
    ``settings[learner]``, the arguments of its R ``<learner>_control``.

    Returns ``{learner: {"features": [...selected, most important first], "importance":
    [{"feature", "importance"}, ...], "implementation": str | None, "settings": {...},
    "details": {...} | None, "package_error": str | None, "error": str | None, "warnings": [...]}}``
    in the order of ``learners``. Every learner runs under ``seed``. ``package_error``: the CRAN
    package (CoxBoost, randomForestSRC, superpc) was installed but stopped with this error, and
    the in-project implementation of the same method ran instead (``implementation`` says so).
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
            "package_error": raw["package_error"],
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

