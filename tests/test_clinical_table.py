"""Tests for studyrunner.cohort.clinical_table: reading, numeric coercion, labels, eligibility."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyrunner.cohort.clinical_table import (
    ClinicalTableError,
    Rule,
    apply_eligibility,
    apply_value_mappings,
    coerce_columns,
    read_clinical_table,
)

CSV = "patient_id,age,os_days,os_event\n007,61,420,1\nP008,55,380,0\n\nP009,70,12 months,1\n"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_keeps_ids_as_text_and_indexes_rows_by_file_line(tmp_path: Path) -> None:
    table = read_clinical_table(_write(tmp_path, "clinical.csv", CSV), "patient_id")
    assert table["patient_id"].tolist() == ["007", "P008", "P009"]
    # header = line 1; line 4 is blank, so P009 is on line 5
    assert table.index.tolist() == [2, 3, 5]
    assert table["age"].tolist() == [61, 55, 70]


def test_read_tsv(tmp_path: Path) -> None:
    path = _write(tmp_path, "clinical.tsv", "patient_id\tos_days\n 01 \t10.5\n02\t3\n")
    table = read_clinical_table(path, "patient_id")
    assert table["patient_id"].tolist() == ["01", "02"]
    assert table["os_days"].tolist() == [10.5, 3.0]


def test_read_xlsx_when_openpyxl_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("openpyxl")
    path = tmp_path / "clinical.xlsx"
    pd.DataFrame({"patient_id": ["007", "P008"], "os_days": [420, 380]}).to_excel(path, index=False)
    table = read_clinical_table(path, "patient_id")
    assert table["patient_id"].tolist() == ["007", "P008"]
    assert table.index.tolist() == [2, 3]


@pytest.mark.parametrize("name, text, expected", [
    ("absent.csv", None, r"absent\.csv: clinical table not found"),
    ("empty.csv", "", r"empty\.csv: the clinical table is empty"),
    ("header.csv", "patient_id,os_days\n", r"header\.csv: the clinical table has a header but no patient rows"),
    ("noid.csv", "id,os_days\nP1,3\n", r"noid\.csv: no column 'patient_id'"),
    ("semicolon.csv", "patient_id;os_days\nP1;3\n", r"semicolon\.csv: .*seems to use ';' as separator"),
    ("blankid.csv", "patient_id,os_days\nP1,3\n,4\n", r"blankid\.csv: column 'patient_id' is empty on line\(s\) 3"),
])
def test_read_errors_name_the_file(tmp_path: Path, name: str, text: str | None, expected: str) -> None:
    path = tmp_path / name if text is None else _write(tmp_path, name, text)
    with pytest.raises(ClinicalTableError, match=expected):
        read_clinical_table(path, "patient_id")


def test_non_numeric_time_names_file_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "clinical.csv", CSV)
    table = read_clinical_table(path, "patient_id")
    with pytest.raises(ClinicalTableError) as raised:
        coerce_columns(table, ["os_days", "os_event"], path)
    message = str(raised.value)
    assert "clinical.csv: 1 cell(s) must be numbers" in message
    assert "line 5, column 'os_days': '12 months' is not a number" in message


def test_coerce_lists_every_bad_cell_and_hints_at_decimal_commas(tmp_path: Path) -> None:
    # a decimal comma needs a tab-separated file (in a CSV it would split the cell)
    path = _write(tmp_path, "t.tsv", "patient_id\tos_days\tage\nP1\t12,5\tx\nP2\t\t61\nP3\t7\t \n")
    table = read_clinical_table(path, "patient_id")
    with pytest.raises(ClinicalTableError) as raised:
        coerce_columns(table, ["os_days", "age"])
    message = str(raised.value)
    assert "t.tsv: 2 cell(s) must be numbers" in message
    assert "line 2, column 'os_days': '12,5' is not a number (decimal comma?" in message
    assert "line 2, column 'age': 'x' is not a number" in message


def test_coerce_turns_blank_cells_into_missing_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.tsv", "patient_id\tos_days\nP1\t 12 \nP2\t \nP3\t7.5\n")
    table = coerce_columns(read_clinical_table(path, "patient_id"), ["os_days"])
    assert table["os_days"].tolist()[0] == 12.0
    assert np.isnan(table["os_days"].tolist()[1])
    assert table["os_days"].tolist()[2] == 7.5


HISTOLOGY = {"ADC": "Adenocarcinoma", "adenocarcinoma": "Adenocarcinoma",
             "squamous cell carcinoma": "Squamous cell carcinoma", "SCC": "Squamous cell carcinoma"}


def test_value_mapping_harmonises_messy_labels() -> None:
    table = pd.DataFrame({"histology": ["adenocarcinoma", "ADC", "Adenocarcinoma ", "Adenocarcinoma",
                                        "squamous  cell carcinoma", "scc", "nos", None, "  ", "NOS"]})
    mapped, report = apply_value_mappings(table, {"histology": HISTOLOGY})
    assert mapped["histology"].tolist() == [
        "Adenocarcinoma", "Adenocarcinoma", "Adenocarcinoma", "Adenocarcinoma",
        "Squamous cell carcinoma", "Squamous cell carcinoma", "nos", None, None, "NOS"]
    assert report["histology"].to_dict() == {
        "column": "histology", "n_mapped": 5, "n_canonical": 1, "n_missing": 2,
        "unmapped": {"nos": 1, "NOS": 1}}


def test_value_mapping_can_respect_case_and_maps_numeric_codes() -> None:
    table = pd.DataFrame({"histology": ["adc", "ADC"], "sex": [1.0, 2.0]})
    mapped, report = apply_value_mappings(
        table, {"histology": HISTOLOGY, "sex": {1: "Male", 2: "Female"}}, case_insensitive=False)
    assert mapped["histology"].tolist() == ["adc", "Adenocarcinoma"]
    assert report["histology"].unmapped == {"adc": 1}
    assert mapped["sex"].tolist() == ["Male", "Female"]
    assert report["sex"].n_mapped == 2


def test_value_mapping_refuses_a_label_with_two_meanings() -> None:
    table = pd.DataFrame({"histology": ["adc"]})
    with pytest.raises(ClinicalTableError, match="label 'adc' maps to both 'Adenocarcinoma' and 'Other'"):
        apply_value_mappings(table, {"histology": {"ADC": "Adenocarcinoma", "adc": "Other"}})


def _eligibility_table() -> pd.DataFrame:
    return pd.DataFrame({"patient_id": ["P1", "P2", "P3", "P4", "P5", "P6"],
                         "age": [65, 17, np.nan, 70, 16, 58],
                         "ecog": [1, 0, 1, 3, 4, np.nan],
                         "histology": ["Adeno", "Adeno", "SCC", "SCC", "Adeno", "Other"]})


def test_eligibility_records_the_first_failing_rule() -> None:
    inclusion = [Rule("age", ">=", 18, "younger than 18 or age unknown"),
                 Rule("histology", "in", ["Adeno", "SCC"], "not NSCLC adeno/squamous")]
    exclusion = [Rule("ecog", ">", 2, "ECOG performance status above 2")]
    kept, excluded = apply_eligibility(_eligibility_table(), inclusion, exclusion, "patient_id")
    assert kept["patient_id"].tolist() == ["P1"]
    assert excluded == [
        {"patient_id": "P2", "stage": "eligibility", "reason": "younger than 18 or age unknown"},
        {"patient_id": "P3", "stage": "eligibility", "reason": "younger than 18 or age unknown"},
        {"patient_id": "P4", "stage": "eligibility", "reason": "ECOG performance status above 2"},
        # P5 fails the age rule and the ECOG rule: the first rule names the reason
        {"patient_id": "P5", "stage": "eligibility", "reason": "younger than 18 or age unknown"},
        {"patient_id": "P6", "stage": "eligibility", "reason": "not NSCLC adeno/squamous"},
    ]


def test_missing_values_need_explicit_rules() -> None:
    table = _eligibility_table()
    # unknown ECOG is not "> 2": P6 stays unless the missing rule asks for it
    kept, _ = apply_eligibility(table, [], [Rule("ecog", ">", 2, "ECOG above 2")], "patient_id")
    assert kept["patient_id"].tolist() == ["P1", "P2", "P3", "P6"]
    kept, excluded = apply_eligibility(table, [], [Rule("ecog", "missing", None, "ECOG unknown")], "patient_id")
    assert [row["patient_id"] for row in excluded] == ["P6"]


@pytest.mark.parametrize("rule, expected", [
    (Rule("age", ">=", "adult", "adult"), "numeric column 'age' with 'adult', which is not a number"),
    (Rule("histology", "<", 3, "odd"), "uses '<' on column 'histology', which is not numeric"),
    (Rule("stage", "==", "IV", "stage IV"), r"no column\(s\) \['stage'\]"),
])
def test_eligibility_errors_name_the_column(rule: Rule, expected: str) -> None:
    with pytest.raises(ClinicalTableError, match=expected):
        apply_eligibility(_eligibility_table(), [rule], [], "patient_id")
