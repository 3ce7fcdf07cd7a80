"""`studyrunner stats` on CSV files, checked against published values and other packages."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from studyrunner import rbridge
from studyrunner.cli import app

pytestmark = pytest.mark.needs_r

runner = CliRunner()


@pytest.fixture(scope="module")
def lung_csv(tmp_path_factory):
    """survival::lung written to CSV (status 1/2 -> event 0/1), with R's NAs kept."""
    frame = rbridge.to_python(rbridge._r().ro.r("survival::lung"))
    frame["event"] = frame["status"] - 1
    path = tmp_path_factory.mktemp("lung") / "lung.csv"
    frame.to_csv(path, index=False)
    return path


def invoke(*args: str) -> dict:
    result = runner.invoke(app, ["stats", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_stats_cox_reproduces_the_published_lung_model(lung_csv):
    out = invoke("cox", str(lung_csv), "--time", "time", "--event", "event", "--covariates", "age,sex")
    assert out["coefficients"]["age"]["coef"] == pytest.approx(0.017045, abs=5e-7)
    assert out["coefficients"]["sex"]["coef"] == pytest.approx(-0.513219, abs=5e-7)
    assert out["concordance"] == pytest.approx(0.6029, abs=5e-5)
    assert (out["n"], out["n_events"], out["n_dropped"]) == (228, 165, 0)


def test_rows_missing_a_used_column_are_dropped_and_counted(lung_csv):
    lung = pd.read_csv(lung_csv)
    out = invoke("cox", str(lung_csv), "--time", "time", "--event", "event", "--covariates", "age,ph.ecog")
    assert out["n_dropped"] == int(lung["ph.ecog"].isna().sum()) == 1
    assert out["n"] == 227


def test_a_bad_cell_names_file_line_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("time,event,x\n10,1,0.5\n12,zero,0.7\n")
    result = runner.invoke(app, ["stats", "cox", str(path), "--time", "time", "--event", "event", "--covariates", "x"])
    assert result.exit_code == 2
    assert f"{path}:3: column 'event': 'zero' is not a number" in result.output


def test_stats_cutpoint_reproduces_maxstat_on_dlbcl(tmp_path):
    frame = rbridge.to_python(rbridge._r().ro.r("local({data(DLBCL, package = 'maxstat'); DLBCL})"))
    path = tmp_path / "dlbcl.csv"
    frame.to_csv(path, index=False)
    out = invoke("cutpoint", str(path), "--time", "time", "--event", "cens", "--marker", "MGE")
    assert out["cutpoint"] == pytest.approx(0.1860526, abs=1e-7)
    assert out["statistic"] == pytest.approx(3.1772, abs=1e-4)
    assert out["n_dropped"] == int(frame["time"].isna().sum()) == 2
    assert out["n"] == 40


def test_stats_timeroc_agrees_with_riskregression_score(lung_csv):
    out = invoke("timeroc", str(lung_csv), "--time", "time", "--event", "event", "--marker", "age",
                 "--times", "200.5,400.5")  # no event time equals t (timeROC's cases are T < t)
    reference = rbridge.to_python(rbridge._r().ro.r("""local({
        suppressPackageStartupMessages({library(survival); library(riskRegression)})
        d <- survival::lung; d$event <- d$status - 1
        s <- Score(list(age = d$age), formula = Hist(time, event) ~ 1, data = d,
                   times = c(200.5, 400.5), metrics = "auc", cens.model = "km", null.model = FALSE)
        s$AUC$score$AUC })"""))
    assert out["implementation"] in ("timeROC", "studyrunner")
    for key, expected in zip(("200.5", "400.5"), reference, strict=True):
        assert out["auc"][key] == pytest.approx(expected, abs=1e-6)
    assert out["n"] == 228


def test_stats_select_finds_the_true_features_and_counts_dropped_rows(tmp_path):
    import numpy as np

    rng = np.random.default_rng(4)
    n = 90
    x = rng.normal(size=(n, 10))
    t_event = rng.exponential(np.exp(-(1.0 * x[:, 0] - 0.9 * x[:, 1])))
    t_cens = rng.uniform(0.2, 3.0, size=n)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(10)])
    frame.insert(0, "pid", [f"P{i}" for i in range(n)])
    frame["time"] = np.minimum(t_event, t_cens)
    frame["event"] = (t_event <= t_cens).astype(int)
    frame.loc[5, "f7"] = np.nan
    path = tmp_path / "features.csv"
    frame.to_csv(path, index=False)
    out = invoke("select", str(path), "--time", "time", "--event", "event", "--id", "pid",
                 "--learners", "lasso,elastic_net,rsf")
    assert out["n_dropped"] == 1
    assert out["n"] == 89
    assert set(out["learners"]) == {"lasso", "elastic_net", "rsf"}
    assert {"f0", "f1"} <= set(out["screened"])
    assert {"f0", "f1"} <= set(out["combined"])
    assert set(out["final"]) >= {"f0", "f1"}
    assert out["final"]["f0"] > 0  # the true hazard directions
    assert out["final"]["f1"] < 0
