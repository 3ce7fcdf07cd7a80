"""Signature selection (studyrunner/statistics/selection.py): combination rules on hand
cases, stepwise-AIC Cox against MASS::stepAIC run in a separate R process, and the whole
screening -> learners -> combination -> stepwise chain on simulated data."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyrunner.statistics.cox import fit_cox, screen_features
from studyrunner.statistics.learners import combine_selections, failed_learners, run_learners
from studyrunner.statistics.radiomics_model.selection import SignaturePlan, select_signature
from studyrunner.statistics.stepwise_cox import stepwise_cox

pytestmark = pytest.mark.needs_r


def simulate(n: int = 80, p: int = 30, seed: int = 2024, effects=(0.9, -0.8, 0.7)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, p))
    lp = x[:, :len(effects)] @ np.array(effects)
    t = rng.exponential(1 / (0.1 * np.exp(lp)))
    c = rng.exponential(25, n)
    frame = pd.DataFrame(x, columns=[f"f{j:02d}" for j in range(p)],
                         index=[f"P{i:03d}" for i in range(n)])
    frame["time"] = np.minimum(t, c)
    frame["event"] = (t <= c).astype(int)
    return frame


FAST = {"gbm": {"n_trees": 150, "shrinkage": 0.05}, "rsf": {"num_trees": 150},
        "coxboost": {"maxstepno": 50}}


def selection(features, error=None):
    return {"features": features, "error": error}


def test_combination_rules_on_hand_cases() -> None:
    selections = {"a": selection(["x", "y", "z"]), "b": selection(["y", "x", "w"]),
                  "c": selection(["x", "y"]), "d": selection([], error="too few events")}
    # d failed: it is left out, so the intersection is over a, b, c.
    assert combine_selections(selections) == ["x", "y"]
    assert failed_learners(selections) == {"d": "too few events"}
    # votes: x 3, y 3, z 1, w 1 -> by votes, then by name
    assert combine_selections(selections, "votes", 1) == ["x", "y", "w", "z"]
    assert combine_selections(selections, "votes", 2) == ["x", "y"]
    assert combine_selections(selections, "votes", 4) == []
    with_empty = {**selections, "e": selection([])}
    assert combine_selections(with_empty) == []          # a learner that ran chose nothing
    assert combine_selections({"d": selection([], "boom")}) == []
    with pytest.raises(ValueError, match="min_votes"):
        combine_selections(selections, "votes")
    with pytest.raises(ValueError, match="combine rule"):
        combine_selections(selections, "union")


def stepaic_reference(frame: pd.DataFrame, features: list[str], tmp_path: Path) -> dict:
    """MASS::stepAIC(direction = "both") from the full coxph model, in a separate Rscript."""
    csv = tmp_path / "data.csv"
    frame.to_csv(csv, index=False)
    formula = "Surv(time, event) ~ " + " + ".join(features)
    code = (f"suppressPackageStartupMessages(library(survival)); d <- read.csv('{csv}');"
            f"full <- coxph({formula}, data = d);"
            "fit <- MASS::stepAIC(full, direction = 'both', trace = 0);"
            "s <- summary(fit);"
            "cat(jsonlite::toJSON(list(terms = attr(terms(fit), 'term.labels'),"
            " coef = as.list(coef(fit)), conf = as.list(as.data.frame(t(s$conf.int))),"
            " aic = extractAIC(fit)[2], steps = as.character(fit$anova$Step),"
            " step_aic = fit$anova$AIC), digits = NA, auto_unbox = TRUE))")
    out = subprocess.run(["Rscript", "-e", code], capture_output=True, check=True, text=True,
                         encoding="utf-8")
    return json.loads(out.stdout)


def test_stepwise_cox_equals_mass_stepaic(tmp_path: Path) -> None:
    frame = simulate(n=80, p=8, seed=31, effects=(0.8, -0.6, 0.3))
    features = [f"f{j:02d}" for j in range(8)]
    ours = stepwise_cox(frame, "time", "event", features)
    reference = stepaic_reference(frame, features, tmp_path)
    assert ours["features"] == reference["terms"]
    assert ours["aic"] == pytest.approx(reference["aic"], abs=1e-9)
    assert [s["step"] for s in ours["steps"]] == [s.strip() for s in reference["steps"]]
    assert [s["aic"] for s in ours["steps"]] == pytest.approx(reference["step_aic"], abs=1e-9)
    for row in ours["coefficients"]:
        term = row["term"]
        # summary(coxph)$conf.int columns: exp(coef), exp(-coef), lower .95, upper .95
        exp_coef, exp_neg, lower, upper = reference["conf"][term]
        assert row["coef"] == pytest.approx(reference["coef"][term], abs=1e-10)
        assert row["exp_coef"] == pytest.approx(exp_coef, rel=1e-10)
        assert row["exp_neg_coef"] == pytest.approx(exp_neg, rel=1e-10)
        assert row["lower"] == pytest.approx(lower, rel=1e-10)
        assert row["upper"] == pytest.approx(upper, rel=1e-10)
    assert ours["n"] == 80
    assert ours["n_events"] == int(frame["event"].sum())


def test_stepwise_cox_none_direction_is_the_full_cox_fit() -> None:
    frame = simulate(n=80, p=4, seed=5)
    features = ["f00", "f01", "f02", "f03"]
    ours = stepwise_cox(frame, "time", "event", features, direction="none")
    full = fit_cox(frame, "time", "event", features)
    assert ours["features"] == features
    assert ours["steps"] == []
    for mine, theirs in zip(ours["coefficients"], full["coefficients"], strict=True):
        assert mine["coef"] == pytest.approx(theirs["coef"], abs=1e-12)
    assert ours["aic"] == pytest.approx(full["aic"], abs=1e-9)


def test_select_signature_chains_the_steps_and_finds_the_true_features() -> None:
    frame = simulate()
    features = [f"f{j:02d}" for j in range(30)]
    plan = SignaturePlan(p_threshold=0.05, nfolds=5, learner_settings=FAST)
    result = select_signature(frame, "time", "event", features, plan, seed=7)
    screen = screen_features(frame, "time", "event", features, 0.05)
    assert sorted(result["screened"]) == sorted(screen.loc[screen["kept"], "feature"])
    assert list(result["learners"]) == list(plan.learners)
    assert result["failed_learners"] == {}
    assert result["notes"] == []
    for name, learner in result["learners"].items():
        assert set(learner["features"]) <= set(result["screened"]), name
        assert learner["implementation"]
    assert result["combined"] == combine_selections(result["learners"])
    assert {"f00", "f01", "f02"} <= set(result["combined"])
    again = stepwise_cox(frame, "time", "event", result["combined"])
    assert result["final"] == {row["term"]: row["coef"] for row in again["coefficients"]}
    assert set(result["final"]) == {"f00", "f01", "f02"}
    assert result["final"]["f01"] < 0 < result["final"]["f00"]
    # the same seed gives the same selection
    assert select_signature(frame, "time", "event", features, plan, seed=7)["learners"] == \
        result["learners"]


def test_select_signature_notes_when_a_step_leaves_nothing() -> None:
    noise = simulate(n=60, p=10, seed=3, effects=())
    features = [f"f{j:02d}" for j in range(10)]
    result = select_signature(noise, "time", "event", features,
                              SignaturePlan(p_threshold=1e-6), seed=1)
    assert result["screened"] == []
    assert result["final"] == {}
    assert result["learners"] == {}
    assert result["notes"] == ["no feature passed univariate Cox screening at p < 1e-06; "
                               "no learner was run and the signature is empty"]

    frame = simulate()
    one_feature = select_signature(frame, "time", "event", ["f00", "f05", "f06"],
                                   SignaturePlan(p_threshold=0.05, nfolds=5,
                                                 learners=["lasso", "coxboost", "rsf"],
                                                 learner_settings=FAST), seed=1)
    assert one_feature["screened"] == ["f00"]
    assert set(one_feature["failed_learners"]) == {"lasso"}
    assert one_feature["notes"][0].startswith("learner lasso failed and was left out of the "
                                              "combination: ")
    assert one_feature["combined"] == ["f00"]
    assert set(one_feature["final"]) == {"f00"}


def test_run_learners_passes_plan_settings() -> None:
    plan = SignaturePlan(nfolds=4, learner_settings={"rsf": {"num_trees": 10}, "lasso": {"nfolds": 3}})
    assert plan.settings_for("rsf") == {"num_trees": 10}
    assert plan.settings_for("lasso") == {"nfolds": 3}
    assert plan.settings_for("superpc") == {"nfolds": 4}
    frame = simulate(n=60, p=5, seed=9)
    out = run_learners(frame, "time", "event", ["f00", "f01", "f02"], ["superpc"], 1,
                       {"superpc": plan.settings_for("superpc")})
    assert out["superpc"]["settings"]["nfolds"] == 4
