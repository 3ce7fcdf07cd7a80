"""Tests for studyrunner.cohort.expectations: role-based suites run with Great Expectations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyrunner.cohort.clinical_table import ClinicalTableError
from studyrunner.cohort.expectations import ClinicalRoles, SuiteError, build_suite, validate_clinical_table

SUITE = Path(__file__).resolve().parents[1] / "validation" / "clinical_table.yaml"
IDS = [f"P{i:03d}" for i in range(1, 11)]


def _table() -> pd.DataFrame:
    """Ten synthetic patients that pass every expectation of the suite."""
    return pd.DataFrame({
        "patient_id": IDS,
        "os_days": [400, 380, 900, 120, 640, 75, 300, 1000, 220, 510],
        "os_event": [1, 0, 1, 1, 0, 1, 0, 0, 1, 1],
        "pfs_days": [200, 380, 450, 60, 600, 75, 100, 800, 110, 500.0],
        "pfs_event": [1, 0, 1, 1, 1, 1, 1, 0, 1, 1],
        "age": [61.5, 55, 70, 48, 66, 80, 59, 73, 62, 67],
        "histology": ["Adenocarcinoma", "Squamous"] * 5,
    })


def _roles(**changes: object) -> ClinicalRoles:
    roles: dict[str, object] = {
        "id": "patient_id", "endpoints": {"os": ("os_days", "os_event"), "pfs": ("pfs_days", "pfs_event")},
        "paired_endpoints": [("pfs", "os")], "age": "age",
        "categorical": {"histology": ["Adenocarcinoma", "Squamous"]}, "manifest_ids": IDS,
    }
    return ClinicalRoles(**{**roles, **changes})


def _outcome(result: dict, name: str) -> dict:
    return next(item for item in result["expectations"] if item["name"] == name)


def test_build_suite_expands_roles_and_leaves_out_absent_ones() -> None:
    names = [item.name for item in build_suite(SUITE, _roles(age=None, manifest_ids=None))]
    assert names == [
        "patient id is unique", "patient id is present",
        "os time is not missing", "pfs time is not missing",
        "os time is positive", "pfs time is positive",
        "os event is not missing", "pfs event is not missing",
        "os event is 0 or 1", "pfs event is 0 or 1",
        "pfs time is not after os time", "histology has an allowed value"]
    pair = build_suite(SUITE, _roles())[10].expectation
    assert (pair.column_A, pair.column_B, pair.or_equal) == ("os_days", "pfs_days", True)


def test_clean_table_passes() -> None:
    result = validate_clinical_table(_table(), SUITE, _roles())
    assert result.success
    assert result.to_dict()["n_rows"] == 10
    assert len(result.expectations) == 14
    assert all(item.unexpected_count == 0 for item in result.expectations)


def test_failing_rows_name_patient_column_and_value() -> None:
    table = _table()
    table.loc[6, "os_days"] = -5          # P007
    table.loc[2, "os_event"] = 2          # P003
    table.loc[4, "pfs_days"] = 700        # P005: PFS 700 > OS 640
    table.loc[8, "pfs_days"] = np.nan     # P009
    table.loc[3, "age"] = 15              # P004
    table.loc[9, "histology"] = "nos"     # P010
    table.loc[1, "patient_id"] = "P001"   # P001 twice
    result = validate_clinical_table(table, SUITE, _roles(manifest_ids=IDS[:-1])).to_dict()
    assert result["success"] is False
    assert set(result) == {"suite", "success", "n_rows", "expectations"}
    assert set(result["expectations"][0]) == {"name", "expectation_type", "column", "severity", "success",
                                              "unexpected_count", "failing_rows"}
    positive = _outcome(result, "os time is positive")
    assert (positive["success"], positive["unexpected_count"], positive["column"]) == (False, 1, "os_days")
    assert positive["failing_rows"] == [{"patient_id": "P007", "column": "os_days", "value": -5}]
    assert _outcome(result, "os event is 0 or 1")["failing_rows"] == [
        {"patient_id": "P003", "column": "os_event", "value": 2}]
    # P007 fails the pair too: PFS 100 > OS -5; the pair lists both cells of each row
    assert _outcome(result, "pfs time is not after os time")["failing_rows"] == [
        {"patient_id": "P005", "column": "pfs_days", "value": 700.0},
        {"patient_id": "P005", "column": "os_days", "value": 640},
        {"patient_id": "P007", "column": "pfs_days", "value": 100.0},
        {"patient_id": "P007", "column": "os_days", "value": -5}]
    assert _outcome(result, "pfs time is not missing")["failing_rows"] == [
        {"patient_id": "P009", "column": "pfs_days", "value": None}]
    assert _outcome(result, "age is between 18 and 110 years")["failing_rows"] == [
        {"patient_id": "P004", "column": "age", "value": 15.0}]
    assert _outcome(result, "histology has an allowed value")["failing_rows"] == [
        {"patient_id": "P010", "column": "histology", "value": "nos"}]
    unique = _outcome(result, "patient id is unique")
    assert unique["unexpected_count"] == 2
    assert [row["patient_id"] for row in unique["failing_rows"]] == ["P001", "P001"]
    manifest = _outcome(result, "patient has images in the manifest")
    assert (manifest["severity"], manifest["failing_rows"]) == (
        "warning", [{"patient_id": "P010", "column": "patient_id", "value": "P010"}])
    json.dumps(result, allow_nan=False)


def test_warning_severity_keeps_success() -> None:
    table = _table()
    table.loc[6, "age"] = 112
    result = validate_clinical_table(table, SUITE, _roles(),
                                     severities={"age is between 18 and 110 years": "warning"})
    age = next(item for item in result.expectations if item.name == "age is between 18 and 110 years")
    assert (age.success, age.severity, result.success) == (False, "warning", True)
    assert age.failing_rows == [{"patient_id": "P007", "column": "age", "value": 112.0}]
    assert validate_clinical_table(table, SUITE, _roles()).success is False


def test_severity_by_entry_name_covers_every_endpoint() -> None:
    planned = build_suite(SUITE, _roles(), {"{endpoint.name} time is positive": "warning"})
    severities = {item.name: item.severity for item in planned}
    assert severities["os time is positive"] == severities["pfs time is positive"] == "warning"
    assert severities["os event is 0 or 1"] == "error"


def test_severity_for_an_entry_left_out_is_accepted() -> None:
    planned = build_suite(SUITE, _roles(age=None), {"age is between 18 and 110 years": "warning"})
    assert "age is between 18 and 110 years" not in [item.name for item in planned]


def test_unknown_severity_name_is_refused() -> None:
    with pytest.raises(SuiteError, match=r"severities name no expectation .*\['age in range'\]"):
        build_suite(SUITE, _roles(), {"age in range": "warning"})


def test_to_dict_caps_failing_rows_but_keeps_them_all() -> None:
    n = 30
    table = pd.DataFrame({"patient_id": [f"Q{i:02d}" for i in range(n)], "os_days": [-1.0] * n,
                          "os_event": [0] * n})
    result = validate_clinical_table(table, SUITE, ClinicalRoles(id="patient_id",
                                                                 endpoints={"os": ("os_days", "os_event")}))
    positive = next(item for item in result.expectations if item.name == "os time is positive")
    assert positive.unexpected_count == 30
    assert len(positive.failing_rows) == 30
    assert len(_outcome(result.to_dict(), "os time is positive")["failing_rows"]) == 20


def test_failure_table_lists_each_failing_cell() -> None:
    table = _table()
    table.loc[6, "os_days"] = -5
    lines = validate_clinical_table(table, SUITE, _roles()).failure_table().splitlines()
    assert lines[0].split() == ["patient_id", "column", "value", "expectation", "severity"]
    assert lines[2].split() == ["P007", "os_days", "-5", "os", "time", "is", "positive", "error"]
    assert lines[3].split()[:3] == ["P007", "pfs_days", "100"]
    assert lines[4].split()[:3] == ["P007", "os_days", "-5"]
    assert len(lines) == 5


def test_missing_column_names_the_expectation() -> None:
    with pytest.raises(ClinicalTableError, match=r"no column\(s\) \['pfs_days'\], needed by expectation "
                                                 r"'pfs time is not missing'"):
        validate_clinical_table(_table().drop(columns="pfs_days"), SUITE, _roles())


def test_text_in_a_numeric_column_is_reported_not_crashed() -> None:
    table = _table().astype({"os_days": object})
    table.loc[0, "os_days"] = "12 months"
    with pytest.raises(ClinicalTableError, match="'os time is positive' on column"):
        validate_clinical_table(table, SUITE, _roles())


@pytest.mark.parametrize("entry, expected", [
    ('{name: "t", expectation: expect_column_values_to_not_be_null, column: "{endpoint.time}"}',
     r"unknown placeholder '\{endpoint.time\}' \(it needs 'for_each: time_to_event_endpoint'\)"),
    ('{name: "t", expectation: expect_column_values_to_not_be_null, column: "{id}", for_each: time_to_event_endpoint}',
     r"the name 't' repeats"),
    ('{name: "t", expectation: expect_column_values_to_be_blue, column: "{id}"}',
     r"no expectation 'expect_column_values_to_be_blue'"),
    ('{name: "t", expectation: expect_column_values_to_be_unique, colum: "{id}"}',
     r"unknown keys \['colum'\]"),
])
def test_suite_file_errors_name_the_entry(tmp_path: Path, entry: str, expected: str) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"suite: bad\nexpectations:\n  - {entry}\n", encoding="utf-8")
    with pytest.raises(SuiteError, match=r"suite\.yaml: expectation 1 .*" + expected):
        build_suite(suite, _roles())
