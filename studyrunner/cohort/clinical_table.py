"""Read the clinical table, harmonise its labels, type its numeric columns, apply eligibility.

The DataFrame returned by :func:`read_clinical_table` is indexed by the line of the source
file each patient came from (header = line 1, first patient = line 2; the index is named
``source_line``), and ``df.attrs["source_file"]`` holds the file's path, so that every
later message can point the user at the exact cell to fix.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from studyrunner.errors import InputError

SOURCE_LINE = "source_line"
FIRST_DATA_LINE = 2
MAX_LISTED_CELLS = 20
TABULAR_SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": "\t"}
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "not_in", "missing", "not_missing")
ORDERED_OPERATORS = ("<", "<=", ">", ">=")


class ClinicalTableError(InputError):
    """A problem in the clinical table; the message names the file, line and column."""


def read_clinical_table(path: Path, id_column: str) -> pd.DataFrame:
    """Read a CSV (``,``), TSV (``.tsv``/``.tab``/``.txt``, tab) or Excel (``.xlsx``) table.

    Patient ids are kept as strings (``007`` stays ``007``) with surrounding spaces removed.
    Blank lines are dropped but keep their place in the line numbering. A cell that spans
    several lines (a quoted line break) shifts the numbering of later rows; clinical tables
    exported from spreadsheets do not have them.
    """
    path = Path(path)
    if not path.is_file():
        raise ClinicalTableError(f"{path}: clinical table not found")
    header = _read(path, id_column, header_only=True)
    if id_column not in header.columns:
        raise ClinicalTableError(_missing_id_message(path, id_column, list(header.columns)))
    table = _read(path, id_column, header_only=False)
    table.index = pd.RangeIndex(FIRST_DATA_LINE, FIRST_DATA_LINE + len(table), name=SOURCE_LINE)
    table = table.dropna(how="all")
    if table.empty:
        raise ClinicalTableError(f"{path}: the clinical table has a header but no patient rows")
    table[id_column] = table[id_column].str.strip()
    blank_ids = table.index[table[id_column].isna() | (table[id_column] == "")]
    if len(blank_ids):
        raise ClinicalTableError(
            f"{path}: column '{id_column}' is empty on line(s) {_join_lines(list(blank_ids))}; "
            "every patient row needs an id")
    table.attrs["source_file"] = str(path)
    return table


def _read(path: Path, id_column: str, header_only: bool) -> pd.DataFrame:
    """One pandas read of the table (header only, or all rows with the id column as text)."""
    suffix = path.suffix.lower()
    rows = 0 if header_only else None
    id_as_text: dict[str, type] = {id_column: str}
    try:
        if suffix in EXCEL_SUFFIXES:
            return _read_excel(path, rows, id_as_text)
        if suffix not in TABULAR_SEPARATORS:
            raise ClinicalTableError(
                f"{path}: unsupported clinical table format '{suffix}'; use .csv, .tsv or .xlsx")
        return pd.read_csv(path, sep=TABULAR_SEPARATORS[suffix], nrows=rows, dtype=id_as_text,
                           skip_blank_lines=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError as error:
        raise ClinicalTableError(f"{path}: the clinical table is empty") from error
    except pd.errors.ParserError as error:
        raise ClinicalTableError(f"{path}: cannot parse the table: {error}") from error
    except UnicodeDecodeError as error:
        raise ClinicalTableError(
            f"{path}: the file is not UTF-8 text (byte {error.start}); "
            "save it from the spreadsheet as 'CSV UTF-8'") from error


def _read_excel(path: Path, rows: int | None, id_as_text: dict[str, type]) -> pd.DataFrame:
    """First sheet of an Excel workbook; needs the optional ``openpyxl`` package."""
    if importlib.util.find_spec("openpyxl") is None:
        raise ClinicalTableError(
            f"{path}: reading .xlsx needs the 'openpyxl' package; install it or save the sheet as CSV")
    return pd.read_excel(path, sheet_name=0, nrows=rows, dtype=id_as_text, engine="openpyxl")


def _missing_id_message(path: Path, id_column: str, columns: list[str]) -> str:
    message = f"{path}: no column '{id_column}' (the patient id column); the columns are {columns}"
    if len(columns) == 1 and ";" in str(columns[0]):
        message += ". The file seems to use ';' as separator: save it as comma-separated CSV"
    return message


def _join_lines(lines: list[int]) -> str:
    shown = ", ".join(str(line) for line in lines[:MAX_LISTED_CELLS])
    more = len(lines) - MAX_LISTED_CELLS
    return shown + (f" and {more} more" if more > 0 else "")


def _source(df: pd.DataFrame) -> str:
    """The file the table came from, for messages about a table that is already in memory."""
    return str(df.attrs.get("source_file", "clinical table"))


def _place(df: pd.DataFrame, index: Any) -> str:
    """'line N' for a table read by read_clinical_table, otherwise the row label."""
    return f"line {index}" if df.index.name == SOURCE_LINE else f"row {index}"


def _require_columns(df: pd.DataFrame, columns: list[str], purpose: str) -> None:
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise ClinicalTableError(
            f"{_source(df)}: no column(s) {missing} ({purpose}); the columns are {list(df.columns)}")


# --- numeric columns ---------------------------------------------------------------------

def coerce_columns(df: pd.DataFrame, numeric: list[str], source_path: Path | str | None = None
                   ) -> pd.DataFrame:
    """Return a copy of ``df`` with the ``numeric`` columns converted to numbers.

    Empty cells become missing values. Any cell that is not a number stops the study with
    one message listing every such cell as file, line, column and value (so all can be fixed
    at once), rather than being turned silently into a missing value.
    """
    source = str(source_path) if source_path is not None else _source(df)
    _require_columns(df, numeric, "declared numeric")
    coerced = df.copy()
    problems: list[str] = []
    for column in numeric:
        raw = df[column]
        if pd.api.types.is_numeric_dtype(raw):
            continue
        text = raw.where(raw.isna(), raw.astype(str).str.strip())
        text = text.mask(text == "")
        numbers = pd.to_numeric(text, errors="coerce")
        for index in text.index[text.notna() & numbers.isna()]:
            value = text[index]
            hint = " (decimal comma? write 12.5, not 12,5)" if re.fullmatch(r"-?\d+,\d+", value) else ""
            problems.append(f"{_place(df, index)}, column '{column}': '{value}' is not a number{hint}")
        coerced[column] = numbers
    if problems:
        listed = "\n  ".join(problems[:MAX_LISTED_CELLS])
        more = len(problems) - MAX_LISTED_CELLS
        raise ClinicalTableError(
            f"{source}: {len(problems)} cell(s) must be numbers:\n  {listed}"
            + (f"\n  ... and {more} more" if more > 0 else ""))
    return coerced


# --- categorical labels ------------------------------------------------------------------

@dataclass
class ColumnMappingReport:
    """What value mapping did to one column."""

    column: str
    n_mapped: int = 0
    n_canonical: int = 0
    n_missing: int = 0
    unmapped: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"column", "n_mapped", "n_canonical", "n_missing", "unmapped": {label: count}}``."""
        return {"column": self.column, "n_mapped": self.n_mapped, "n_canonical": self.n_canonical,
                "n_missing": self.n_missing, "unmapped": dict(self.unmapped)}


def _label_key(value: Any, case_insensitive: bool) -> str:
    """Normal form used to match a raw label: text, integral floats as integers, single spaces."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    key = " ".join(str(value).split())
    return key.casefold() if case_insensitive else key


def _lookup(column: str, mapping: dict[Any, str], case_insensitive: bool) -> dict[str, str]:
    """Raw-label key -> canonical label; each canonical label also maps to itself."""
    lookup: dict[str, str] = {}
    pairs = [(canonical, canonical) for canonical in mapping.values()] + list(mapping.items())
    for raw, canonical in pairs:
        key = _label_key(raw, case_insensitive)
        if lookup.get(key, canonical) != canonical:
            raise ClinicalTableError(
                f"value mapping for column '{column}': label '{raw}' maps to both "
                f"'{lookup[key]}' and '{canonical}'")
        lookup[key] = canonical
    return lookup


def apply_value_mappings(df: pd.DataFrame, mappings: dict[str, dict[Any, str]],
                         case_insensitive: bool = True
                         ) -> tuple[pd.DataFrame, dict[str, ColumnMappingReport]]:
    """Map messy categorical labels to canonical ones, e.g. ``ADC`` -> ``Adenocarcinoma``.

    Matching ignores surrounding and repeated spaces, and letter case unless
    ``case_insensitive`` is False; a canonical label written differently (``adenocarcinoma``)
    is mapped to its canonical spelling too. Blank cells become missing. Labels with no
    mapping are kept (without surrounding spaces) and reported, so that the suite's
    allowed-values expectation lists the patients carrying them.
    Returns the mapped copy and, per column, a :class:`ColumnMappingReport`.
    """
    _require_columns(df, list(mappings), "named in the value mappings")
    mapped = df.copy()
    reports: dict[str, ColumnMappingReport] = {}
    for column, mapping in mappings.items():
        lookup = _lookup(column, mapping, case_insensitive)
        report = ColumnMappingReport(column)
        values: list[Any] = []
        for value in df[column]:
            text = value.strip() if isinstance(value, str) else value
            if pd.isna(text) or text == "":
                report.n_missing += 1
                values.append(None)
                continue
            canonical = lookup.get(_label_key(text, case_insensitive))
            if canonical is None:
                report.unmapped[str(text)] = report.unmapped.get(str(text), 0) + 1
                values.append(text)
            elif canonical == value:
                report.n_canonical += 1
                values.append(canonical)
            else:
                report.n_mapped += 1
                values.append(canonical)
        mapped[column] = pd.Series(values, index=df.index, dtype=object)
        reports[column] = report
    return mapped, reports


# --- eligibility -------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """One eligibility criterion, e.g. ``Rule("age", ">=", 18, "younger than 18")``.

    ``reason`` is what the flow diagram shows for the patients this rule removes. A
    comparison (``==`` ... ``not_in``) with a missing value is never satisfied: a patient
    with unknown age fails the inclusion rule ``age >= 18`` and is not caught by the
    exclusion rule ``ecog > 2``; use ``missing``/``not_missing`` to say otherwise.
    """

    column: str
    op: str
    value: Any = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"rule on '{self.column}': unknown operator {self.op!r}; use one of {OPERATORS}")
        if self.op in ("in", "not_in") and not isinstance(self.value, (list, tuple, set)):
            raise ValueError(f"rule on '{self.column}': operator {self.op!r} needs a list value")
        if self.op not in ("missing", "not_missing", "in", "not_in") and self.value is None:
            raise ValueError(f"rule on '{self.column}': operator {self.op!r} needs a value")
        if not self.reason:
            raise ValueError(f"rule on '{self.column}': a reason is required (it is shown in the flow diagram)")

    def holds(self, df: pd.DataFrame) -> pd.Series:
        """Boolean Series: does each row satisfy the rule?"""
        values = df[self.column]
        present = values.notna()
        if self.op == "missing":
            return ~present
        if self.op == "not_missing":
            return present
        values, target = self._comparable(df, values)
        if self.op in ("in", "not_in"):
            member = values.isin(target)
            return present & (member if self.op == "in" else ~member)
        compare = {"==": values.eq, "!=": values.ne, "<": values.lt, "<=": values.le,
                   ">": values.gt, ">=": values.ge}[self.op]
        return present & compare(target).fillna(False).astype(bool)

    def _comparable(self, df: pd.DataFrame, values: pd.Series) -> tuple[pd.Series, Any]:
        """Column and rule value in a common type: numbers for numeric columns, else text."""
        targets = list(self.value) if self.op in ("in", "not_in") else [self.value]
        if pd.api.types.is_numeric_dtype(values):
            try:
                numbers = [float(target) for target in targets]
            except (TypeError, ValueError) as error:
                raise ClinicalTableError(
                    f"{_source(df)}: rule '{self.reason}' compares numeric column '{self.column}' "
                    f"with {self.value!r}, which is not a number") from error
            return values, numbers if self.op in ("in", "not_in") else numbers[0]
        if self.op in ORDERED_OPERATORS:
            raise ClinicalTableError(
                f"{_source(df)}: rule '{self.reason}' uses '{self.op}' on column '{self.column}', "
                "which is not numeric; declare it numeric or use '==', 'in'")
        text = values.where(values.isna(), values.astype(str).str.strip())
        labels = [str(target).strip() for target in targets]
        return text, labels if self.op in ("in", "not_in") else labels[0]


def apply_eligibility(df: pd.DataFrame, inclusion: list[Rule], exclusion: list[Rule],
                      id_column: str) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Keep patients meeting every inclusion rule and no exclusion rule.

    Rules are checked in order, inclusion first; a removed patient is recorded once, with
    the reason of the first rule that removed them:
    ``{"patient_id": ..., "stage": "eligibility", "reason": ...}``, in table order.
    """
    rules = list(inclusion) + list(exclusion)
    _require_columns(df, [id_column] + [rule.column for rule in rules], "used by the eligibility rules")
    removes = [~rule.holds(df) for rule in inclusion] + [rule.holds(df) for rule in exclusion]
    reasons = pd.Series(None, index=df.index, dtype=object)
    for rule, removed in zip(rules, removes, strict=True):
        reasons = reasons.where(reasons.notna() | ~removed, rule.reason)
    excluded = [{"patient_id": str(patient), "stage": "eligibility", "reason": str(reason)}
                for patient, reason in zip(df[id_column], reasons, strict=True) if pd.notna(reason)]
    return df[reasons.isna()].copy(), excluded
