"""The flags of results.json (studyrunner.results.flags): each rule on results constructed to
trip it (and on the same results just short of tripping it), the per-SD hazard ratio against
lifelines on a standardised covariate, the by-construction refit against lifelines, and the
flag view the report prints from."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from studyrunner.report.flag_view import flag_context
from studyrunner.results.flags import (
    RULES,
    by_construction,
    chance_classification,
    chance_response,
    compute_flags,
    few_events,
    optimised_cutoff,
    oracle_exceeded,
    selection_overrides,
    unknown_category,
)
from studyrunner.results.models import DeepRecord, Flag, MacroAccuracy, NetworkTraining, Results
from studyrunner.statistics.cox_table import per_sd

FIXTURE = Path(__file__).parent / "fixtures" / "results_example.json"


@pytest.fixture
def base() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def cutoff(p_value: float | None = None) -> dict[str, Any]:
    return {"value": 0.1, "method": "xtile", "label": "X-tile", "p_value": p_value, "p_naive": 1e-5,
            "pmethod": "Lau94", "n_cutoffs": 151} if p_value is not None else \
        {"value": 0.1, "method": "training_median", "label": "training median"}


def strat(low_events: int, high_events: int = 12, c_index: float = 0.7) -> dict[str, Any]:
    return {"n": 48, "n_events": low_events + high_events, "c_index": c_index, "hr": 11.85, "hr_lower": 1.52,
            "hr_upper": 92.24, "groups": {"low": {"n": 19, "n_events": low_events},
                                          "high": {"n": 29, "n_events": high_events}}}


def risk_scores(**parts: Any) -> dict[str, Any]:
    """A minimal risk_scores record: one score (MOSRS for OS) with ``parts`` replacing its defaults."""
    score = {"label": "MOSRS", "endpoint": "os", "cutoff": cutoff(), "evaluation": {"test": strat(6)}}
    score.update(parts.pop("score", {}))
    return {"cohorts": {"training": ["modelling"], "test": ["test"]}, "scores": {"mosrs": score},
            "headline_score": "mosrs", **parts}


def results(base: dict[str, Any], **changes: Any) -> Results:
    data = copy.deepcopy(base)
    data.pop("flags", None)
    data.update(changes)
    return Results.model_validate(data)


def test_fixture_flags_are_the_rules_output(base: dict[str, Any]) -> None:
    """results_example.json carries the flags the rules find in it (assemble computes them)."""
    fixture = Results.model_validate(base)
    assert fixture.flags == compute_flags(results(base))
    assert [f.code for f in fixture.flags] == ["oracle_exceeded"]  # test C 0.7237 > oracle 0.7173


def test_few_events_flags_a_group_with_five_events_or_fewer(base: dict[str, Any]) -> None:
    """The demo's headline: HR 11.85 resting on 1 event among 19 low-risk patients."""
    evaluation = copy.deepcopy(base["evaluation"])
    evaluation["test"]["groups"] = {"low": {"n": 19, "n_events": 1}, "high": {"n": 29, "n_events": 12}}
    flags = few_events(results(base, evaluation=evaluation))
    assert [(f.code, f.severity, f.section, f.target) for f in flags] == [
        ("few_events", "warning", "discrimination", "evaluation:test")]
    assert "1 event among 19 low-risk patients" in flags[0].message
    evaluation["test"]["groups"]["low"]["n_events"] = 6
    assert few_events(results(base, evaluation=evaluation)) == []
    found = few_events(results(base, risk_scores=risk_scores(score={"evaluation": {"test": strat(5)}})))
    assert [f.target for f in found] == ["score:mosrs:test"]
    assert "5 events among 19 low-risk patients" in found[0].message


def test_by_construction_flags_the_marked_row(base: dict[str, Any]) -> None:
    row = {"covariate": "mosrs", "n": 188, "coef": 1.0, "hr": math.e, "by_construction": "refit on its own rows"}
    record = risk_scores(clinical_cox={"univariate": [row, {"covariate": "age", "coef": 0.01}]})
    flags = by_construction(results(base, risk_scores=record))
    assert [(f.code, f.target, f.message) for f in flags] == [("by_construction", "cox:mosrs", "refit on its own rows")]


def test_by_construction_is_what_lifelines_gives() -> None:
    """Independent check of the claim: a Cox model refitted on its own linear predictor (same
    rows, same outcome) has coefficient one, whatever the data."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 2))
    time = rng.exponential(1.0, 120) / np.exp(x @ [0.7, -0.4])
    frame = pd.DataFrame({"time": time, "event": rng.uniform(size=120) < 0.7, "x1": x[:, 0], "x2": x[:, 1]})
    fit = CoxPHFitter().fit(frame, "time", "event", fit_options={"precision": 1e-12})
    lp = frame[["x1", "x2"]] @ fit.params_[["x1", "x2"]]
    refit = CoxPHFitter().fit(frame[["time", "event"]].assign(lp=lp), "time", "event",
                              fit_options={"precision": 1e-12})
    assert refit.params_["lp"] == pytest.approx(1.0, abs=1e-6)


def network(accuracy: float, recalls: list[float]) -> NetworkTraining:
    return NetworkTraining.model_construct(kind="survival", endpoint="os", macro_accuracy={
        "test": MacroAccuracy(macro_accuracy=accuracy, recall_per_interval=recalls, n_patients=13)})


def test_chance_classification(base: dict[str, Any]) -> None:
    """Macro-accuracy 33% with recall [0, 0, 1] over three intervals: chance, and two intervals never hit."""
    def flags_for(accuracy: float, recalls: list[float]) -> list[Flag]:
        deep = DeepRecord.model_construct(networks={"os": network(accuracy, recalls)})
        return chance_classification(results(base).model_copy(update={"deep": deep}))

    flags = flags_for(1 / 3, [0.0, 0.0, 1.0])
    assert [(f.code, f.severity, f.target) for f in flags] == [("chance_classification", "warning", "network:os")]
    assert "not above chance (33% for 3 intervals)" in flags[0].message
    assert "an interval never predicted" in flags[0].message
    assert "never" in flags_for(0.6, [0.0, 0.8, 1.0])[0].message         # better than chance, one recall 0
    assert "not above chance" in flags_for(0.3, [0.2, 0.3, 0.4])[0].message
    assert flags_for(0.5, [0.4, 0.5, 0.6]) == []


def test_chance_response(base: dict[str, Any]) -> None:
    def roc(lower: float) -> dict[str, Any]:
        return {"n": 48, "auc": 0.62, "auc_lower": lower, "auc_upper": 0.8}

    response = {"prs": {"label": "PRS", "outcome": "partial response",
                        "by_cohort": {"training": roc(0.55), "test": roc(0.45)}}}
    flags = chance_response(results(base, risk_scores=risk_scores(response=response)))
    assert [(f.code, f.target) for f in flags] == [("chance_response", "roc:prs:test")]


def test_selection_override(base: dict[str, Any]) -> None:
    selection = {"kept": ["pfs_score_3"], "coefficients": [{"term": "pfs_score_3", "coef": -1.2, "p": 0.054}],
                 "lp_coefficients": {"pfs_score_3": -1.2}, "p_threshold": 0.05,
                 "overrides": [{"term": "pfs_score_3", "p": 0.054, "p_threshold": 0.05,
                                "rule": "no candidate reached p <= 0.05; kept the last term"}]}
    record = risk_scores(score={"label": "PFSRS", "endpoint": "pfs", "selection": selection})
    flags = selection_overrides(results(base, risk_scores=record))
    assert [(f.code, f.target) for f in flags] == [("selection_override", "selection:mosrs:pfs_score_3")]
    assert "p = 0.054 above the elimination threshold 0.05" in flags[0].message


def test_optimised_cutoff_names_the_corrected_p(base: dict[str, Any]) -> None:
    record = risk_scores(score={"cutoff": cutoff(0.0057)})
    flags = optimised_cutoff(results(base, risk_scores=record))
    assert [(f.target, f.severity) for f in flags] == [("score:mosrs:training", "note")]
    assert "p = 0.006 (unadjusted p < 0.001)" in flags[0].message
    assert "151 cut-offs" in flags[0].message
    assert optimised_cutoff(results(base, risk_scores=risk_scores())) == []  # a training-median cut-off


def test_oracle_exceeded_gives_the_oracle_interval(base: dict[str, Any]) -> None:
    oracle = {"os": {"test": {"c_index": 0.655, "c_lower": 0.52, "c_upper": 0.79}}}
    record = risk_scores(score={"evaluation": {"test": strat(6, c_index=0.712)}}, oracle=oracle)
    flags = [f for f in oracle_exceeded(results(base, risk_scores=record)) if f.target == "oracle:mosrs:test"]
    assert len(flags) == 1
    assert "0.655 (0.520\u20130.790)" in flags[0].message
    assert "not a ceiling" in flags[0].message
    below = risk_scores(score={"evaluation": {"test": strat(6, c_index=0.6)}}, oracle=oracle)
    assert [f.target for f in oracle_exceeded(results(base, risk_scores=below))] == ["oracle:model:test"]


def test_unknown_category_gives_percentages(base: dict[str, Any]) -> None:
    table = copy.deepcopy(base["table_one"])
    ecog = next(v for v in table["variables"] if v["column"] == "ecog")
    ecog["levels"].append({"level": "Unknown", "counts": {"Total": {"n": 104, "proportion": 0.45}}})
    flags = unknown_category(results(base, table_one=table))
    assert [(f.code, f.section, f.target) for f in flags] == [("unknown_category", "methods-missing",
                                                              "missing:unknown")]
    assert "ECOG performance status 45%" in flags[0].message
    assert unknown_category(results(base)) == []


def test_rules_are_a_plain_list_and_severity_orders_them(base: dict[str, Any]) -> None:
    def always(_: Results) -> list[Flag]:
        return [Flag(code="custom", severity="note", section="summary", message="a note")]

    evaluation = copy.deepcopy(base["evaluation"])
    evaluation["test"]["groups"] = {"low": {"n": 19, "n_events": 1}, "high": {"n": 29, "n_events": 12}}
    found = compute_flags(results(base, evaluation=evaluation), [always, *RULES])
    assert [f.code for f in found] == ["few_events", "custom", "oracle_exceeded"]


def test_flag_view_numbers_and_marks(base: dict[str, Any]) -> None:
    evaluation = copy.deepcopy(base["evaluation"])
    evaluation["test"]["groups"] = {"low": {"n": 19, "n_events": 1}, "high": {"n": 29, "n_events": 12}}
    found = results(base, evaluation=evaluation)
    view = flag_context(found.model_copy(update={"flags": compute_flags(found)}))
    assert [(f["number"], f["anchor"], f["section_title"]) for f in view["flags"]] == [
        (1, "flag-1", "Discrimination"), (2, "flag-2", "Discrimination")]
    assert [m["number"] for m in view["flag_marks"]["evaluation:test"]] == [1]
    assert [m["number"] for m in view["flag_marks"]["section:discrimination"]] == [1, 2]


def test_per_sd_is_lifelines_on_the_standardised_covariate() -> None:
    """exp(coef * SD) and its interval equal lifelines' HR of the covariate divided by its SD."""
    rng = np.random.default_rng(7)
    age = rng.normal(64, 9, 150)
    time = rng.exponential(1.0, 150) / np.exp(0.04 * (age - 64))
    frame = pd.DataFrame({"time": time, "event": rng.uniform(size=150) < 0.8, "age": age})
    options = {"precision": 1e-12}
    unit = CoxPHFitter().fit(frame, "time", "event", fit_options=options).summary.loc["age"]
    sd = float(frame["age"].std(ddof=1))
    scaled = CoxPHFitter().fit(frame.assign(age=frame["age"] / sd), "time", "event",
                               fit_options=options).summary.loc["age"]
    got = per_sd(unit["coef"], unit["se(coef)"], sd)
    assert got["sd"] == sd
    assert got["hr_per_sd"] == pytest.approx(scaled["exp(coef)"], rel=1e-6)
    assert got["hr_per_sd_lower"] == pytest.approx(scaled["exp(coef) lower 95%"], rel=1e-6)
    assert got["hr_per_sd_upper"] == pytest.approx(scaled["exp(coef) upper 95%"], rel=1e-6)
    assert per_sd(None, None, sd) == {"sd": sd, "hr_per_sd": None, "hr_per_sd_lower": None, "hr_per_sd_upper": None}
