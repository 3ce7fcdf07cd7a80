"""The R bridge: conversions both ways, declared result shapes, errors, warnings, seeding,
versions; and the one JSON cleaner.

References are independent of the bridge: values written as R literals, numpy on the same
data, and a separate ``Rscript`` process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyrunner import rbridge
from studyrunner.errors import InputError
from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import RError, RWarning, r_function, to_python

pytestmark = pytest.mark.needs_r

REPO = Path(__file__).resolve().parent.parent


def rscript(expression: str) -> str:
    """Output of ``Rscript -e expression`` in a separate R process."""
    return subprocess.run(["Rscript", "-e", expression], check=True, capture_output=True,
                          text=True, encoding="utf-8").stdout.strip()


@pytest.fixture
def scripts_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch R scripts folder selected through $STUDYRUNNER_RSCRIPTS."""
    (tmp_path / "probe.R").write_text(textwrap.dedent("""
        column_means <- function(df) colMeans(df, na.rm = TRUE)
        column_classes <- function(df) vapply(df, function(x) class(x)[1], character(1))
        echo <- function(x) x
        describe <- function(x) list(names = names(x), class = class(x), total = sum(x))
        draw <- function(n) runif(n)
        careful <- function() { warning("careful: small sample"); 1 }
        counted <- function() list(n = 12, share = 0.5, missing = NA_real_,
                                   groups = data.frame(group = c("a", "b"), n = c(3, NA),
                                                       mean = c(1.5, 2)),
                                   settings = list(nfolds = 5, alpha = 0.5, rule = "x"),
                                   nested = list(a = list(k = 2), b = NULL))
        refuse <- function() stop("column 'x': missing value in row(s) p1")
        """))
    (tmp_path / "helpers.R").write_text("double_it <- function(x) 2 * x\n")
    (tmp_path / "uses_helpers.R").write_text(
        "# requires: helpers.R\nquadruple <- function(x) double_it(double_it(x))\n")
    monkeypatch.setenv(rbridge.RSCRIPTS_ENV_VAR, str(tmp_path))
    return tmp_path


def test_importing_the_package_does_not_start_r() -> None:
    code = ("import sys, studyrunner.rbridge, studyrunner.statistics.cox, "
            "studyrunner.statistics.table_one; print('rpy2.robjects' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True,
                         capture_output=True, text=True, encoding="utf-8").stdout.strip()
    assert out == "False"


def test_nested_named_list_becomes_nested_dict() -> None:
    robj = rbridge._r().ro.r(
        "list(a = list(b = c(x = 1.5, y = NA), c = NA_character_, d = c(TRUE, NA)),"
        " e = factor(c('u', NA, 'v')), m = matrix(1:6, nrow = 2), s = 3L, n = NULL,"
        " u = list(1, 'two'))")
    assert to_python(robj) == {
        "a": {"b": {"x": 1.5, "y": None}, "c": None, "d": [True, None]},
        "e": ["u", None, "v"], "m": [[1, 3, 5], [2, 4, 6]], "s": 3, "n": None,
        "u": [1.0, "two"]}


def test_r_data_frame_becomes_pandas_with_missing_values() -> None:
    robj = rbridge._r().ro.r(
        "data.frame(i = c(1L, NA, 3L), r = c(0.5, NA, 2), s = c('a', NA, 'c'),"
        " l = c(TRUE, NA, FALSE), f = factor(c('lo', 'hi', NA)), row.names = c('p1', 'p2', 'p3'))")
    frame = to_python(robj)
    assert list(frame.index) == ["p1", "p2", "p3"]
    assert frame["i"].tolist()[0] == 1.0
    assert np.isnan(frame["i"].tolist()[1])
    assert frame["r"].tolist()[2] == 2.0
    assert np.isnan(frame["r"].tolist()[1])
    assert frame["s"].tolist() == ["a", None, "c"]
    assert frame["l"].tolist() == [True, None, False]
    assert frame["f"].tolist() == ["lo", "hi", None]


def test_wide_frame_reaches_r_intact(scripts_dir: Path) -> None:
    # its speed (250 x 100 to R and the means back) is measured in benchmarks/README.md, "R bridge"
    rng = np.random.default_rng(7)
    values = rng.normal(size=(250, 100))
    values[rng.random(values.shape) < 0.05] = np.nan
    frame = pd.DataFrame(values, columns=[f"feature {i}" for i in range(100)])
    means = r_function("probe", "column_means")(frame)
    assert list(means) == list(frame.columns)
    np.testing.assert_allclose(list(means.values()), np.nanmean(values, axis=0), rtol=1e-12)


def test_python_types_reach_r_as_the_matching_r_types(scripts_dir: Path) -> None:
    frame = pd.DataFrame({"real": [1.5, np.nan], "int": [1, 2], "text": ["a", None],
                          "flag": [True, False], "cat": pd.Categorical(["x", "y"])})
    assert r_function("probe", "column_classes")(frame) == {
        "real": "numeric", "int": "integer", "text": "character", "flag": "logical",
        "cat": "factor"}
    described = r_function("probe", "describe")({"age": 0.5, "sex": -2})
    assert described == {"names": ["age", "sex"], "class": "numeric", "total": -1.5}
    echo = r_function("probe", "echo")
    assert echo(["a", None, "c"]) == ["a", None, "c"]
    assert echo([1, 2, 3]) == [1, 2, 3]
    assert echo([1.5, None]) == [1.5, None]
    assert echo(np.array([0.25, 0.5])) == [0.25, 0.5]
    assert echo(None) is None


def test_duplicated_row_index_is_refused(scripts_dir: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0]}, index=["p1", "p1"])
    with pytest.raises(ValueError, match="p1"):
        r_function("probe", "column_means")(frame)


def test_r_error_names_the_function_and_carries_r_message() -> None:
    frame = pd.DataFrame({"time": [1.0, 2.0], "event": [1, 0], "age": [50.0, 60.0]})
    with pytest.raises(RError, match=r"cox\.R::fit_cox.*'not_a_column'") as info:
        r_function("cox", "fit_cox")(frame, "time", "event", ["not_a_column"])
    assert info.value.function == "cox.R::fit_cox"
    with pytest.raises(RError, match=r"no function 'nonexistent' in cox\.R"):
        r_function("cox", "nonexistent")()


def test_r_warning_becomes_python_warning(scripts_dir: Path) -> None:
    with pytest.warns(RWarning, match=r"probe\.R::careful: careful: small sample"):
        assert r_function("probe", "careful")() == 1.0


def test_seed_from_python_reproduces_a_separate_r_process(scripts_dir: Path) -> None:
    draw = r_function("probe", "draw")
    reference = [float(v) for v in rscript("set.seed(42); cat(format(runif(3), digits = 17))").split()]
    first = draw(3, r_seed=42)
    np.testing.assert_allclose(first, reference, rtol=0, atol=1e-15)
    assert draw(3, r_seed=42) == first


def test_required_script_is_sourced_first(scripts_dir: Path) -> None:
    assert r_function("uses_helpers", "quadruple")(2.5) == 10.0


def test_versions_match_a_separate_r_process() -> None:
    versions = rbridge.r_versions(["survival", "surely.not.a.package"])
    assert versions["r"] == rscript("cat(R.version$major, R.version$minor, sep = '.')")
    assert versions["r_version_string"] == rscript("cat(R.version.string)")
    assert versions["packages"] == {
        "survival": rscript("cat(packageDescription('survival')$Version)"),  # as the package spells it (3.5-3)
        "surely.not.a.package": None}
    assert rbridge.r_package_available("survival") is True
    assert rbridge.r_package_available("surely.not.a.package") is False


def test_to_jsonable_makes_strict_json() -> None:
    frame = pd.DataFrame({"a": [1.0, np.nan], "b": ["x", None]})
    value = {"frame": frame, "inf": float("inf"), "np": np.float64(0.25), "arr": np.array([1, 2]),
             "int": np.int64(3), "flag": np.bool_(True), "na": pd.NA, "path": Path("a/b"),
             "tuple": (1, float("nan")), 4: "key"}
    ready = to_jsonable(value)
    assert ready == {"frame": [{"a": 1.0, "b": "x"}, {"a": None, "b": None}], "inf": None,
                     "np": 0.25, "arr": [1, 2], "int": 3, "flag": True, "na": None,
                     "path": "a/b", "tuple": [1, None], "4": "key"}
    assert type(ready["int"]) is int
    assert type(ready["flag"]) is bool
    json.dumps(ready, allow_nan=False)
    with pytest.raises(TypeError, match="object"):
        to_jsonable(object())


def test_declared_counts_become_int_and_nothing_else_changes(scripts_dir: Path) -> None:
    plain = r_function("probe", "counted")()
    assert plain["n"] == 12.0
    assert type(plain["n"]) is float
    shaped = r_function("probe", "counted", counts=("n", "share", "missing", "groups.n",
                                                   "groups.absent", "settings.*", "nested.a.k",
                                                   "nested.b.k", "absent"))()
    assert type(shaped["n"]) is int
    assert shaped["n"] == 12
    assert shaped["share"] == 0.5
    assert shaped["missing"] is None
    assert shaped["groups"]["n"].tolist() == [3, None]
    assert shaped["groups"]["mean"].tolist() == [1.5, 2.0]
    assert shaped["settings"] == {"nfolds": 5, "alpha": 0.5, "rule": "x"}
    assert type(shaped["settings"]["nfolds"]) is int
    assert shaped["nested"] == {"a": {"k": 2}, "b": None}
    assert type(shaped["nested"]["a"]["k"]) is int


def test_declared_input_errors_become_input_error(scripts_dir: Path) -> None:
    with pytest.raises(RError, match=r"probe\.R::refuse failed: column 'x'"):
        r_function("probe", "refuse")()
    with pytest.raises(InputError, match=r"^refuse: column 'x': missing value in row\(s\) p1$"):
        r_function("probe", "refuse", input_errors=True)()


def test_every_required_script_exists_and_sources() -> None:
    scripts = sorted((REPO / "rscripts").glob("*.R"))
    for path in scripts:
        for name in rbridge.required_scripts(path):
            assert (path.parent / f"{name}.R").is_file(), (path.name, name)
    for script, function in (("risk_scores", "subgroup_hazard"), ("cutpoint", "xtile_cutpoint"),
                             ("concordance", "compare_concordance"), ("cox_table", "cox_table"),
                             ("nomogram", "nomogram_points"), ("learners", "gbm_control")):
        assert rbridge._r().find(script, function) is not None
