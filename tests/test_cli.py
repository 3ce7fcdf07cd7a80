"""The command line as a user meets it: exit codes and messages that name file, row and column."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from studyrunner.cli import app
from tests.conftest import REPO, small_study

runner = CliRunner()


def test_validate_passes_on_the_small_synthetic_cohort(small_cohort_dir):
    result = runner.invoke(app, ["validate", str(small_study(small_cohort_dir))])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    assert "40 rows" in result.output


def test_failed_expectation_exits_3_and_lists_the_failing_rows(small_cohort_dir, tmp_path):
    shutil.copytree(small_cohort_dir / "cohort", tmp_path / "cohort")
    table = pd.read_csv(tmp_path / "cohort" / "clinical.csv", dtype=str)
    table.loc[table["patient_id"] == "SYN0005", "pfs_days"] = "-12"
    table.to_csv(tmp_path / "cohort" / "clinical.csv", index=False)
    result = runner.invoke(app, ["validate", str(small_study(tmp_path))])
    assert result.exit_code == 3
    row = next(line for line in result.output.splitlines() if "SYN0005" in line and "pfs_days" in line)
    assert "-12" in row
    assert "clinical.csv" in result.output


def test_non_numeric_cell_exits_2_naming_file_line_and_column(small_cohort_dir, tmp_path):
    shutil.copytree(small_cohort_dir / "cohort", tmp_path / "cohort")
    table = pd.read_csv(tmp_path / "cohort" / "clinical.csv", dtype=str)
    table.loc[3, "os_days"] = "12 months"
    table.to_csv(tmp_path / "cohort" / "clinical.csv", index=False)
    result = runner.invoke(app, ["run", str(small_study(tmp_path)), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "clinical.csv" in text
    assert "line 5" in text
    assert "os_days" in text
    assert "12 months" in text


def test_protocol_error_exits_2_with_the_yaml_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "protocols" / "nsclc_ici.yaml").read_text().replace("time: os_days, ", ""))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "endpoints.os.time: field required" in " ".join(result.output.split())


@pytest.mark.needs_r
def test_doctor_json_reports_r_packages_and_cran_stand_ins():
    # `make test` installs everything required first, so doctor must find nothing missing.
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert report["missing"] == []
    assert report["fix"] is None
    assert report["r"].startswith("4.")
    assert report["r_required_missing"] == []
    assert all(version is not None for version in report["python_packages"].values())
    assert report["python_packages"]["torch"] == torch.__version__
    assert report["r_packages"]["survival"]
    assert {c["package"] for c in report["cran_only"]} == {"timeROC", "randomForestSRC", "CoxBoost", "superpc"}
    for cran in report["cran_only"]:  # a missing CRAN package is replaced by its named stand-in
        installed = report["r_packages"][cran["package"]] is not None
        assert cran["status"] == ("installed" if installed else "missing"), cran
        if not installed:
            assert cran["implementation"] == f"{cran['stand_in']} (rscripts/{cran['rscript']})"
    assert report["gpu"]["cuda_available"] == torch.cuda.is_available()
    assert report["gpu"]["torch"] == torch.__version__


def test_doctor_exits_1_and_names_what_is_missing(monkeypatch):
    from studyrunner import environment

    def without_r_and_poppler() -> dict:
        return {"python": "3.11", "platform": "test", "python_packages": {"numpy": "2.0", "rpy2": None},
                "r": None, "r_packages": {"survival": None}, "r_required_missing": ["survival"],
                "cran_only": [], "gpu": {"cuda_available": False, "devices": [], "torch": "x"},
                "pdftotext": False}

    monkeypatch.setattr(environment, "environment_report", without_r_and_poppler)
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False
    assert report["missing"] == ["rpy2", "survival", "R", "poppler-utils"]
    assert report["fix"] == environment.INSTALL_HINT
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "missing: rpy2, survival, R, poppler-utils" in " ".join(result.output.split())


def test_schema_command_prints_the_committed_schema():
    result = runner.invoke(app, ["schema"])
    assert json.loads(result.output) == json.loads((REPO / "protocols" / "schema.json").read_text())
