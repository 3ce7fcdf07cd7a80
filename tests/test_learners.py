"""The six feature-selection learners (rscripts/learners.R and the in-project fallbacks)
against direct calls of glmnet, gbm, ranger and survival::coxph in a separate R process,
hand computations of the boosting update, and a simulation with known true features."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyrunner.rbridge import r_function
from studyrunner.registry import LEARNER_NAMES
from studyrunner.statistics.learners import run_learners

pytestmark = pytest.mark.needs_r

TRUE_FEATURES = ["f00", "f01", "f02"]


def simulate(n: int = 80, p: int = 30, seed: int = 2024, tie_decimals: int | None = None) -> pd.DataFrame:
    """Exponential survival with hazard 0.1 * exp(0.9 f00 - 0.8 f01 + 0.7 f02), uniform-ish
    censoring; 30 standard-normal features of which 3 are true."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, p))
    lp = 0.9 * x[:, 0] - 0.8 * x[:, 1] + 0.7 * x[:, 2]
    t = rng.exponential(1 / (0.1 * np.exp(lp)))
    c = rng.exponential(25, n)
    frame = pd.DataFrame(x, columns=[f"f{j:02d}" for j in range(p)],
                         index=[f"P{i:03d}" for i in range(n)])
    frame["time"] = np.minimum(t, c)
    if tie_decimals is not None:
        frame["time"] = frame["time"].round(tie_decimals) + 0.01
    frame["event"] = (t <= c).astype(int)
    return frame


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate()


FEATURES = [f"f{j:02d}" for j in range(30)]


def rscript(code: str, frame: pd.DataFrame, tmp_path: Path, **values) -> dict:
    """Run ``code`` in a separate Rscript with ``d`` = the CSV of ``frame`` and the JSON
    ``values`` as ``v``; the code's last value is returned as JSON."""
    csv = tmp_path / "data.csv"
    frame.to_csv(csv, index=False)
    (tmp_path / "values.json").write_text(json.dumps(values))
    script = (f"d <- read.csv('{csv}'); v <- jsonlite::fromJSON('{tmp_path / 'values.json'}');"
              "suppressPackageStartupMessages(library(survival));"
              f"out <- local({{ {code} }});"
              "cat(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE))")
    result = subprocess.run(["Rscript", "-e", script], capture_output=True, check=True, text=True,
                            encoding="utf-8")
    return json.loads(result.stdout.strip().splitlines()[-1])


def coefficients(result: dict) -> dict[str, float]:
    return {row["feature"]: row["importance"] for row in result["details"]["coefficients"]}


def test_glmnet_learners_equal_a_direct_cv_glmnet_call(data: pd.DataFrame, tmp_path: Path) -> None:
    foldid = (np.arange(len(data)) % 5 + 1)[np.random.default_rng(1).permutation(len(data))]
    settings = {name: {"foldid": foldid.tolist()} for name in ("lasso", "elastic_net")}
    ours = run_learners(data, "time", "event", FEATURES, ["lasso", "elastic_net"], seed=3,
                        settings=settings)
    reference = rscript(
        "x <- as.matrix(d[v$features]); y <- Surv(d$time, d$event);"
        "lapply(c(lasso = 1, elastic_net = 0.5), function(a) {"
        " cv <- glmnet::cv.glmnet(x, y, family = 'cox', alpha = a, foldid = v$foldid);"
        " b <- as.matrix(coef(cv, s = 'lambda.min'))[, 1];"
        " list(lambda = cv$lambda.min, coef = as.list(b), selected = names(b)[b != 0]) })",
        data, tmp_path, features=FEATURES, foldid=foldid.tolist())
    for name in ("lasso", "elastic_net"):
        result = ours[name]
        assert result["error"] is None
        assert result["implementation"].startswith("glmnet ")
        assert sorted(result["features"]) == sorted(reference[name]["selected"])
        assert result["details"]["lambda"] == pytest.approx(reference[name]["lambda"], rel=1e-10)
        for feature, value in coefficients(result).items():
            assert value == pytest.approx(reference[name]["coef"][feature], abs=1e-10)
        importance = {r["feature"]: r["importance"] for r in result["importance"]}
        assert [importance[f] for f in result["features"]] == sorted(
            (importance[f] for f in result["features"]), reverse=True)
    assert set(TRUE_FEATURES) <= set(ours["lasso"]["features"])


def test_default_folds_are_seeded_and_stratified_by_event(data: pd.DataFrame) -> None:
    folds = r_function("learners", "stratified_folds")
    events = data["event"].to_numpy()
    first = np.asarray(folds(events.tolist(), 5, r_seed=9))
    assert np.array_equal(first, folds(events.tolist(), 5, r_seed=9))
    assert not np.array_equal(first, folds(events.tolist(), 5, r_seed=10))
    per_fold = [int(events[first == k].sum()) for k in range(1, 6)]
    sizes = [int((first == k).sum()) for k in range(1, 6)]
    assert max(per_fold) - min(per_fold) <= 1
    assert sum(per_fold) == events.sum()
    assert max(sizes) - min(sizes) <= 1


def hand_score_information(x: np.ndarray, time: np.ndarray, event: np.ndarray,
                           offset: np.ndarray, efron: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Score and information of each column at gamma = 0, patient by patient: Breslow, or
    Efron (the l-th of d events tied at t weighs the tied events 1 - l/d in its risk set;
    Efron 1977, as CoxBoost's efron.weightmat)."""
    score, info = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for i in np.flatnonzero(event == 1):
        risk = time >= time[i]
        w = np.exp(offset) * risk
        if efron:
            tied = np.flatnonzero((time == time[i]) & (event == 1))
            w[tied] *= 1 - np.flatnonzero(tied == i)[0] / len(tied)
        w = w[risk]
        for j in range(x.shape[1]):
            xr = x[risk, j]
            mean = np.sum(w * xr) / np.sum(w)
            score[j] += x[i, j] - mean
            info[j] += np.sum(w * xr**2) / np.sum(w) - mean**2
    return score, info


def test_boosting_score_information_and_first_step_by_hand() -> None:
    # 6 patients with a tied event time (3.0) and a censored patient tied with it.
    time = np.array([5.0, 3.0, 3.0, 8.0, 3.0, 1.0])
    event = np.array([1, 1, 1, 0, 0, 1])
    x = np.array([[0.5, -1.0], [1.5, 0.0], [-0.3, 2.0], [0.1, 0.4], [2.0, -0.5], [-1.2, 1.1]])
    offset = np.array([0.2, -0.1, 0.0, 0.3, -0.4, 0.1])
    got = r_function("coxboost", "cox_score_information")(
        pd.DataFrame(x, columns=["a", "b"]), time.tolist(), event.tolist(), offset.tolist())
    score, info = hand_score_information(x, time, event, offset)
    np.testing.assert_allclose(got["score"], score, rtol=1e-12)
    np.testing.assert_allclose(got["information"], info, rtol=1e-12)
    efron = r_function("coxboost", "cox_score_information")(
        pd.DataFrame(x, columns=["a", "b"]), time.tolist(), event.tolist(), offset.tolist(), ties="efron")
    score, info = hand_score_information(x, time, event, offset, efron=True)
    np.testing.assert_allclose(efron["score"], score, rtol=1e-12)
    np.testing.assert_allclose(efron["information"], info, rtol=1e-12)
    assert not np.allclose(efron["information"], got["information"])   # the tie matters

    # One boosting step: standardise (SD with n - 1), penalty = 9 * 4 events = 36, pick the
    # largest U^2 / (I + penalty), update by U / (I + penalty), back on the original scale;
    # Efron ties, as CoxBoost.
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    u, i = hand_score_information(z, time, event, np.zeros(6), efron=True)
    j = int(np.argmax(u**2 / (i + 36)))
    expected = np.zeros(2)
    expected[j] = u[j] / (i[j] + 36) / x[:, j].std(ddof=1)
    path = r_function("coxboost", "coxboost_path")(
        pd.DataFrame(x, columns=["a", "b"]), time.tolist(), event.tolist(), stepno=1)
    assert path["penalty"] == 36
    np.testing.assert_allclose(path["coefficients"][1], expected, rtol=1e-12)


def test_partial_loglik_equals_coxph_breslow(tmp_path: Path) -> None:
    frame = simulate(n=40, p=3, seed=8, tie_decimals=0)
    beta = [0.4, -0.2, 0.1]
    eta = frame[["f00", "f01", "f02"]].to_numpy() @ np.array(beta)
    ours = r_function("coxboost", "cox_partial_loglik")(eta.tolist(), frame["time"].tolist(),
                                                       frame["event"].tolist())
    reference = rscript("fit <- coxph(Surv(time, event) ~ f00 + f01 + f02, data = d,"
                        " ties = 'breslow', init = v$beta, control = coxph.control(iter.max = 0));"
                        " fit$loglik[2]", frame, tmp_path, beta=beta)
    assert ours == pytest.approx(reference, abs=1e-9)


def test_coxboost_fallback_recovers_the_three_true_features(data: pd.DataFrame) -> None:
    result = run_learners(data, "time", "event", FEATURES, ["coxboost"], seed=1,
                          settings={"coxboost": {"use_package": False}})["coxboost"]
    assert result["error"] is None
    assert result["implementation"] == ("studyrunner componentwise likelihood boosting "
                                        "(Binder & Schumacher 2008)")
    assert sorted(result["features"][:3]) == TRUE_FEATURES
    assert 0 < result["details"]["steps"] < 100
    signs = coefficients(result)
    assert signs["f00"] > 0
    assert signs["f01"] < 0
    assert signs["f02"] > 0
    assert set(result["features"]) == {f for f, c in signs.items() if c != 0}


def test_gbm_equals_a_direct_gbm_call(data: pd.DataFrame, tmp_path: Path) -> None:
    settings = {"n_trees": 200, "shrinkage": 0.05, "nfolds": 3}
    ours = run_learners(data, "time", "event", FEATURES, ["gbm"], seed=4,
                        settings={"gbm": settings})["gbm"]
    reference = rscript(
        "set.seed(4, kind = 'Mersenne-Twister', normal.kind = 'Inversion', sample.kind = 'Rejection');"
        "x <- d[v$features]; x$.time <- d$time; x$.event <- d$event;"
        "invisible(capture.output(fit <- gbm::gbm(Surv(.time, .event) ~ ., data = x,"
        " distribution = 'coxph', n.trees = 200, shrinkage = 0.05, interaction.depth = 3,"
        " n.minobsinnode = 10, bag.fraction = 0.5, cv.folds = 3, n.cores = 1)));"
        "best <- gbm::gbm.perf(fit, method = 'cv', plot.it = FALSE);"
        "list(best = best, influence = as.list(gbm::relative.influence(fit, n.trees = best)))",
        data, tmp_path, features=FEATURES)
    assert ours["details"]["best_iteration"] == reference["best"]
    importance = {r["feature"]: r["importance"] for r in ours["importance"]}
    for feature in FEATURES:
        assert importance[feature] == pytest.approx(reference["influence"][feature], abs=1e-9)
    assert set(ours["features"]) == {f for f in FEATURES if reference["influence"][f] > 0}
    assert ours["settings"]["rule"] == "relative influence > 0"
    top = run_learners(data, "time", "event", FEATURES, ["gbm"], seed=4,
                       settings={"gbm": {**settings, "top_k": 3}})["gbm"]
    assert top["features"] == sorted(ours["features"], key=lambda f: -importance[f])[:3]


def test_survival_forest_is_seeded_and_equals_a_direct_ranger_call(data: pd.DataFrame,
                                                                 tmp_path: Path) -> None:
    settings = {"rsf": {"num_trees": 200, "use_package": False}}
    first = run_learners(data, "time", "event", FEATURES, ["rsf"], seed=5, settings=settings)["rsf"]
    again = run_learners(data, "time", "event", FEATURES, ["rsf"], seed=5, settings=settings)["rsf"]
    other = run_learners(data, "time", "event", FEATURES, ["rsf"], seed=6, settings=settings)["rsf"]
    assert first["importance"] == again["importance"]
    assert first["importance"] != other["importance"]
    assert first["implementation"].startswith("ranger ")
    reference = rscript(
        "x <- d[v$features]; names(x) <- paste0('v', seq_along(v$features));"
        "x$.time <- d$time; x$.event <- d$event;"
        "fit <- ranger::ranger(dependent.variable.name = '.time', status.variable.name = '.event',"
        " data = x, num.trees = 200, splitrule = 'logrank', importance = 'permutation',"
        " min.node.size = 5, num.threads = 1, seed = 5, write.forest = FALSE);"
        "as.list(unname(ranger::importance(fit)))", data, tmp_path, features=FEATURES)
    importance = [r["importance"] for r in first["importance"]]
    np.testing.assert_allclose(importance, reference, atol=1e-12)
    assert set(first["features"]) == {f for f, v in zip(FEATURES, importance, strict=True) if v > 0}
    assert set(TRUE_FEATURES) <= set(first["features"])


def test_superpc_scores_equal_coxph_score_tests(tmp_path: Path) -> None:
    # superpc.train's score: U / (sqrt(I) + median sqrt(I)), U and I of coxph at beta = 0
    # (Breslow): U = the sum of the score residuals, I = 1 / var.
    frame = simulate(n=60, p=8, seed=12, tie_decimals=0)  # tied times: Breslow
    features = [f"f{j:02d}" for j in range(8)]
    scores = r_function("superpc", "superpc_regularised_scores")(
        frame[features], frame["time"].tolist(), frame["event"].tolist())
    reference = rscript(
        "sapply(v$features, function(f) { fit <- coxph(Surv(d$time, d$event) ~ d[[f]], ties = 'breslow',"
        " init = 0, control = coxph.control(iter.max = 0));"
        " c(sum(residuals(fit, type = 'score')), 1 / fit$var[1, 1]) }, simplify = FALSE)",
        frame, tmp_path, features=features)
    s0 = np.median([np.sqrt(reference[f][1]) for f in features])
    for feature in features:
        u, information = reference[feature]
        assert scores[feature] == pytest.approx(u / (np.sqrt(information) + s0), rel=1e-9)

    result = run_learners(frame, "time", "event", features, ["superpc"], seed=2,
                          settings={"superpc": {"n_top": 2, "use_package": False,
                                                "min_features": 2}})["superpc"]
    assert result["error"] is None
    threshold = result["details"]["threshold"]
    above = [f for f in features if abs(scores[f]) >= threshold]
    assert result["details"]["n_above_threshold"] == len(above)
    assert result["features"] == sorted(above, key=lambda f: -abs(scores[f]))[:2]


def test_superpc_top_50_rule(data: pd.DataFrame) -> None:
    wide = data.copy()
    rng = np.random.default_rng(0)
    extra = {f"n{j:02d}": wide["f00"] * 0.3 + rng.standard_normal(len(wide)) for j in range(40)}
    wide = pd.concat([wide, pd.DataFrame(extra, index=wide.index)], axis=1)
    features = FEATURES + list(extra)
    result = run_learners(wide, "time", "event", features, ["superpc"], seed=2,
                          settings={"superpc": {"use_package": False, "n_threshold": 5}})["superpc"]
    importance = {r["feature"]: r["importance"] for r in result["importance"]}
    n_above = result["details"]["n_above_threshold"]
    assert len(result["features"]) == min(50, n_above)
    ranked = sorted(features, key=lambda f: -importance[f])
    assert result["features"] == ranked[:len(result["features"])]


def test_a_failing_learner_is_recorded_and_the_others_go_on(data: pd.DataFrame) -> None:
    settings = {"gbm": {"n_trees": 50, "nfolds": 3}, "rsf": {"num_trees": 50},
                "coxboost": {"maxstepno": 20}}
    one = run_learners(data, "time", "event", ["f00"], list(LEARNER_NAMES), seed=1, settings=settings)
    for name in ("elastic_net", "lasso"):
        assert one[name]["error"] is not None
        assert "2 or more" in one[name]["error"]
        assert one[name]["features"] == []
    assert one["gbm"]["error"] == ("gbm cross-validation needs at least 2 features "
                                   "(use iteration = 'OOB' for one)")
    for name in ("coxboost", "rsf"):
        assert one[name]["error"] is None, (name, one[name]["error"])
    assert one["coxboost"]["features"] == ["f00"]
    assert one["superpc"]["error"] == ("superpc needs at least 2 features (its cross-validation keeps a "
                                       "threshold only where more than one feature passes it), got 1")

    single_event = data.assign(event=0)
    single_event.iloc[0, single_event.columns.get_loc("event")] = 1
    failed = run_learners(single_event, "time", "event", FEATURES, ["lasso", "rsf"], seed=1)
    assert all(r["error"] == "too few events: 1 (at least 2 needed)" for r in failed.values())

    bad = run_learners(data, "time", "event", FEATURES, ["lasso"], seed=1,
                       settings={"lasso": {"n_trees": 5}})["lasso"]
    assert bad["error"] == "unknown setting(s) for learner 'lasso': n_trees"

    holes = data.copy()
    holes.loc["P007", "f03"] = np.nan
    missing = run_learners(holes, "time", "event", FEATURES, ["superpc"], seed=1)["superpc"]
    assert missing["error"] == "column 'f03': missing or non-finite value in row(s) P007"


def test_each_learner_has_a_control_function_with_its_defaults() -> None:
    from studyrunner.registry import LEARNERS

    for name, info in LEARNERS.items():
        defaults = r_function("learners", f"{name}_control")()
        assert ("nfolds" in defaults) == info.inner_folds, name
    gbm = r_function("learners", "gbm_control")(n_trees=50)
    assert gbm == {"n_trees": 50, "shrinkage": 0.01, "interaction_depth": 3.0,
                   "n_minobsinnode": 10.0, "bag_fraction": 0.5, "iteration": "cv",
                   "nfolds": None, "top_k": None}
    assert r_function("learners", "lasso_control")()["alpha"] == 1.0
    assert r_function("learners", "elastic_net_control")()["alpha"] == 0.5
    assert r_function("learners", "superpc_control")()["n_top"] == 50.0


def test_a_package_that_stops_is_replaced_by_the_stand_in_and_its_error_kept() -> None:
    import rpy2.robjects as ro

    choose = r_function("learners", "package_or_stand_in")
    stops = ro.r("function() stop('step size went NA')")
    stand_in = ro.r("function() list(implementation = 'stand-in')")
    fell_back = choose("survival", True, stops, stand_in)
    assert fell_back["implementation"] == "stand-in"
    assert fell_back["package_error"].startswith("survival ")
    assert fell_back["package_error"].endswith(": step size went NA")
    ran = choose("survival", True, ro.r("function() list(implementation = 'package')"), stand_in)
    assert ran == {"implementation": "package", "package_error": None}
    assert choose("survival", False, stops, stand_in) == {"implementation": "stand-in", "package_error": None}
    assert choose("no.such.package", True, stops, stand_in)["package_error"] is None
