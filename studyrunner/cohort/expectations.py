"""Validate the clinical table with a Great Expectations suite written in column roles.

A suite file (``validation/*.yaml``) names columns by their role in the study, not by the
column names of one hospital's table::

    - name: "{endpoint.name} time is positive"
      expectation: expect_column_values_to_be_between
      for_each: time_to_event_endpoint
      column: "{endpoint.time}"
      kwargs: {min_value: 0, strict_min: true}

:func:`build_suite` expands the roles with a :class:`ClinicalRoles` (an entry whose role is
not given, e.g. ``{age}`` without an age column, is left out) and
:func:`validate_clinical_table` runs the expectations with Great Expectations 1.x (Great
Expectations team, https://greatexpectations.io) and lists every failing row by patient id.

Placeholders: ``{id}``, ``{age}``, ``{manifest_ids}``; with ``for_each:
time_to_event_endpoint``: ``{endpoint.name}``, ``{endpoint.time}``, ``{endpoint.event}``;
with ``for_each: categorical_column``: ``{categorical.column}``, ``{categorical.levels}``;
with ``for_each: endpoint_pair``: ``{pair.shorter}``, ``{pair.longer}`` (endpoint names),
``{pair.shorter.time}``, ``{pair.longer.time}``. A value that is exactly one placeholder
takes the role's value itself (a list stays a list).
"""

from __future__ import annotations

import datetime
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import yaml

from studyrunner.cohort.clinical_table import ClinicalTableError
from studyrunner.errors import InputError
from studyrunner.strict_yaml import YamlInputError, read_yaml

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

SEVERITIES = ("error", "warning")
FAILING_ROWS_IN_DICT = 20
ENTRY_KEYS = {"name", "expectation", "column", "column_A", "column_B", "kwargs", "severity", "for_each"}
COLUMN_KEYS = ("column", "column_B", "column_A")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.]*)\}")
GLOBAL_ROLES = ("id", "age", "manifest_ids")
FOR_EACH_ROLES = {
    "time_to_event_endpoint": ("endpoint.name", "endpoint.time", "endpoint.event"),
    "categorical_column": ("categorical.column", "categorical.levels"),
    "endpoint_pair": ("pair.shorter", "pair.longer", "pair.shorter.time", "pair.longer.time"),
}


class SuiteError(InputError):
    """A problem in a suite file or in the severities given for it; the message names which."""


@dataclass(frozen=True)
class ClinicalRoles:
    """The columns of one clinical table, by role.

    ``endpoints``: endpoint name -> (time column, event column), e.g. ``{"os": ("os_days",
    "os_event")}``; ``paired_endpoints``: (shorter, longer) endpoint names whose times satisfy
    shorter <= longer, e.g. ``[("pfs", "os")]``; ``categorical``: column -> allowed levels
    (after value mapping); ``manifest_ids``: patient ids that have images.
    """

    id: str
    endpoints: dict[str, tuple[str, str]] = field(default_factory=dict)
    paired_endpoints: list[tuple[str, str]] = field(default_factory=list)
    age: str | None = None
    categorical: dict[str, list[str]] = field(default_factory=dict)
    manifest_ids: list[str] | None = None

    def __post_init__(self) -> None:
        unknown = [name for pair in self.paired_endpoints for name in pair if name not in self.endpoints]
        if unknown:
            raise ValueError(f"paired endpoints name undefined endpoints {unknown}; "
                             f"the endpoints are {list(self.endpoints)}")

    def bindings(self, for_each: str | None) -> list[dict[str, Any]]:
        """One placeholder -> value mapping per expansion of an entry (none for an empty role)."""
        common = {"id": self.id, "age": self.age, "manifest_ids": self.manifest_ids}
        if for_each is None:
            return [common]
        if for_each == "time_to_event_endpoint":
            return [{**common, "endpoint.name": name, "endpoint.time": time, "endpoint.event": event}
                    for name, (time, event) in self.endpoints.items()]
        if for_each == "categorical_column":
            return [{**common, "categorical.column": column, "categorical.levels": list(levels)}
                    for column, levels in self.categorical.items()]
        return [{**common, "pair.shorter": shorter, "pair.longer": longer,
                 "pair.shorter.time": self.endpoints[shorter][0],
                 "pair.longer.time": self.endpoints[longer][0]}
                for shorter, longer in self.paired_endpoints]


class PlannedExpectation(NamedTuple):
    """One expanded suite entry: its unique name, its severity and the GX expectation."""

    name: str
    severity: str
    expectation: Expectation


class _RoleNotGiven(Exception):
    """An entry uses a role the study does not have (e.g. no age column): leave it out."""


def _substitute(template: Any, bindings: dict[str, Any], where: str) -> Any:
    """Replace placeholders in a (nested) YAML value; raise _RoleNotGiven for an empty role."""
    if isinstance(template, list):
        return [_substitute(item, bindings, where) for item in template]
    if isinstance(template, dict):
        return {key: _substitute(value, bindings, where) for key, value in template.items()}
    if not isinstance(template, str):
        return template

    def value_of(name: str) -> Any:
        if name not in bindings:
            needs = [each for each, names in FOR_EACH_ROLES.items() if name in names]
            hint = f" (it needs 'for_each: {needs[0]}')" if needs else \
                f"; known: {list(GLOBAL_ROLES) + [n for names in FOR_EACH_ROLES.values() for n in names]}"
            raise SuiteError(f"{where}: unknown placeholder '{{{name}}}'{hint}")
        if bindings[name] is None:
            raise _RoleNotGiven(name)
        return bindings[name]

    whole = PLACEHOLDER.fullmatch(template)
    if whole:
        return value_of(whole.group(1))
    return PLACEHOLDER.sub(lambda match: str(value_of(match.group(1))), template)


def _expectation_class(expectation_type: str, where: str) -> type:
    """``expect_column_values_to_be_between`` -> ``gx.expectations.ExpectColumnValuesToBeBetween``."""
    import great_expectations as gx

    class_name = "".join(part.capitalize() for part in expectation_type.split("_"))
    expectation_class = getattr(gx.expectations, class_name, None)
    if expectation_class is None:
        raise SuiteError(f"{where}: Great Expectations has no expectation '{expectation_type}'")
    return expectation_class


def _read_suite(suite_file: Path) -> tuple[str, list[dict[str, Any]]]:
    """The suite's name and its entries, with the shape of each entry checked."""
    try:
        document = read_yaml(Path(suite_file))
    except FileNotFoundError as error:
        raise SuiteError(f"{suite_file}: suite file not found") from error
    except YamlInputError as error:
        raise SuiteError(str(error)) from error
    except yaml.YAMLError as error:
        raise SuiteError(f"{suite_file}: not valid YAML: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("expectations"), list):
        raise SuiteError(f"{suite_file}: a suite is a mapping with a list 'expectations'")
    for number, entry in enumerate(document["expectations"], start=1):
        where = f"{suite_file}: expectation {number}"
        if not isinstance(entry, dict) or not {"name", "expectation"} <= set(entry):
            raise SuiteError(f"{where}: each entry needs 'name' and 'expectation'")
        unknown = set(entry) - ENTRY_KEYS
        if unknown:
            raise SuiteError(f"{where} ('{entry['name']}'): unknown keys {sorted(unknown)}; "
                             f"allowed: {sorted(ENTRY_KEYS)}")
        if entry.get("severity", "error") not in SEVERITIES:
            raise SuiteError(f"{where} ('{entry['name']}'): severity must be one of {SEVERITIES}")
        if entry.get("for_each") not in (None, *FOR_EACH_ROLES):
            raise SuiteError(f"{where} ('{entry['name']}'): for_each must be one of {list(FOR_EACH_ROLES)}")
    return str(document.get("suite", Path(suite_file).stem)), document["expectations"]


def build_suite(suite_file: Path, roles: ClinicalRoles,
                severities: dict[str, str] | None = None) -> list[PlannedExpectation]:
    """Expand a role-based suite file into Great Expectations expectations.

    ``severities`` overrides an entry's severity (default ``error``), keyed by the expanded
    name (``"os time is positive"``) or by the entry's name as written in the file
    (``"{endpoint.name} time is positive"``, for all endpoints at once). A name matching
    neither is refused (a typo would otherwise leave the severity unchanged); the name of an
    entry left out because its role is not given is accepted.
    """
    return _plan(suite_file, roles, severities)[1]


def _plan(suite_file: Path, roles: ClinicalRoles, severities: dict[str, str] | None
          ) -> tuple[str, list[PlannedExpectation]]:
    """The suite's name and its expanded expectations (see build_suite)."""
    suite_name, entries = _read_suite(suite_file)
    overrides = dict(severities or {})
    bad = {name: level for name, level in overrides.items() if level not in SEVERITIES}
    if bad:
        raise SuiteError(f"severities must be one of {SEVERITIES}: {bad}")
    planned: list[PlannedExpectation] = []
    for number, entry in enumerate(entries, start=1):
        where = f"{suite_file}: expectation {number} ('{entry['name']}')"
        expectation_class = _expectation_class(entry["expectation"], where)
        for bindings in roles.bindings(entry.get("for_each")):
            try:
                name = _substitute(entry["name"], bindings, where)
                arguments = {key: _substitute(entry[key], bindings, where)
                             for key in COLUMN_KEYS if key in entry}
                arguments.update(_substitute(entry.get("kwargs", {}), bindings, where))
            except _RoleNotGiven:
                continue
            if any(item.name == name for item in planned):
                raise SuiteError(f"{where}: the name '{name}' repeats; put a placeholder such as "
                                 "{endpoint.name} in the name so that each expectation has its own")
            key = name if name in overrides else entry["name"]
            severity = overrides.get(key, entry.get("severity", "error"))
            try:
                expectation = expectation_class(**arguments, meta={"name": name})
            except Exception as error:  # pydantic's validation error, with GX's own wording
                raise SuiteError(f"{where}: invalid arguments {arguments}: {error}") from error
            planned.append(PlannedExpectation(name, severity, expectation))
    unused = sorted(set(overrides) - {item.name for item in planned} - {entry["name"] for entry in entries})
    if unused:
        raise SuiteError(f"severities name no expectation of {suite_file}: {unused}; "
                         f"the expectations are {[item.name for item in planned]}")
    return suite_name, planned


# --- results -------------------------------------------------------------------------------

def _json_value(value: Any) -> Any:
    """A cell value as JSON: numpy scalars to Python, NaN/NaT/NA to None, dates to ISO text."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _display(value: Any) -> str:
    """A JSON cell value for the terminal: ``(missing)``, ``-5`` rather than ``-5.0``."""
    if value is None:
        return "(missing)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class ExpectationOutcome:
    """The result of one expectation; ``failing_rows`` holds every failing cell."""

    name: str
    expectation_type: str
    column: str
    severity: str
    success: bool
    unexpected_count: int
    failing_rows: list[dict[str, Any]]

    def to_dict(self, max_failing_rows: int | None = FAILING_ROWS_IN_DICT) -> dict[str, Any]:
        """``{"name", "expectation_type", "column", "severity", "success", "unexpected_count",
        "failing_rows": [{"patient_id", "column", "value"}]}`` (the first ``max_failing_rows``)."""
        return {"name": self.name, "expectation_type": self.expectation_type, "column": self.column,
                "severity": self.severity, "success": self.success,
                "unexpected_count": self.unexpected_count,
                "failing_rows": [dict(row) for row in self.failing_rows[:max_failing_rows]]}


@dataclass
class ValidationResult:
    """All expectations of one suite run on one clinical table."""

    suite: str
    n_rows: int
    expectations: list[ExpectationOutcome]

    @property
    def success(self) -> bool:
        """False when any error-severity expectation failed; warnings do not count."""
        return all(item.success for item in self.expectations if item.severity == "error")

    def to_dict(self, max_failing_rows: int | None = FAILING_ROWS_IN_DICT) -> dict[str, Any]:
        """``{"suite", "success", "n_rows", "expectations": [ExpectationOutcome.to_dict()]}``."""
        return {"suite": self.suite, "success": self.success, "n_rows": self.n_rows,
                "expectations": [item.to_dict(max_failing_rows) for item in self.expectations]}

    def failure_table(self) -> str:
        """Plain-text table of every failing cell: patient id, column, value, expectation, severity."""
        rows = [(str(row["patient_id"]), row["column"], _display(row["value"]), item.name, item.severity)
                for item in self.expectations if not item.success for row in item.failing_rows]
        if not rows:
            return f"all {len(self.expectations)} expectations of suite '{self.suite}' passed"
        header = ("patient_id", "column", "value", "expectation", "severity")
        widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
        lines = [header, tuple("-" * width for width in widths), *rows]
        return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                         for line in lines)


def _columns_of(expectation: Expectation) -> list[str]:
    """The table columns an expectation looks at (pair expectations: B, then A)."""
    return [getattr(expectation, key) for key in COLUMN_KEYS if getattr(expectation, key, None)]


def _outcome(planned: PlannedExpectation, gx_result: Any, id_column: str, source: str) -> ExpectationOutcome:
    """Translate one GX result into an ExpectationOutcome with failing rows by patient id."""
    columns = _columns_of(planned.expectation)
    exception_info = gx_result.exception_info or {}
    raised = [info for info in [exception_info, *exception_info.values()]
              if isinstance(info, dict) and info.get("raised_exception") is True]
    if raised:
        raise ClinicalTableError(
            f"{source}: expectation '{planned.name}' on column(s) {columns} could not run: "
            f"{raised[0].get('exception_message')} (is a numeric column holding text?)")
    result = gx_result.result or {}
    failing_rows = [{"patient_id": str(row[id_column]), "column": column, "value": _json_value(row[column])}
                    for row in result.get("unexpected_index_list") or [] for column in columns]
    return ExpectationOutcome(
        name=planned.name, expectation_type=planned.expectation.expectation_type,
        column=", ".join(columns), severity=planned.severity, success=bool(gx_result.success),
        unexpected_count=int(result.get("unexpected_count") or 0), failing_rows=failing_rows)


def _run_great_expectations(df: pd.DataFrame, suite_name: str,
                            planned: list[PlannedExpectation], id_column: str) -> Any:
    """One ephemeral GX context (in memory, no analytics, no progress bars) and one validation."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False))
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch = (context.data_sources.add_pandas("clinical")
             .add_dataframe_asset("clinical_table")
             .add_batch_definition_whole_dataframe("whole table")
             # GX looks ids up in a named index instead of the columns: hand it a plain index.
             .get_batch(batch_parameters={"dataframe": df.reset_index(drop=True)}))
    suite = gx.ExpectationSuite(name=suite_name, expectations=[item.expectation for item in planned])
    return batch.validate(suite, result_format={"result_format": "COMPLETE",
                                                "unexpected_index_column_names": [id_column]})


def validate_clinical_table(df: pd.DataFrame, suite_file: Path, roles: ClinicalRoles,
                            severities: dict[str, str] | None = None) -> ValidationResult:
    """Run the suite on the table; every failing row is identified by its patient id.

    Columns named by the roles must exist in the table (a :class:`ClinicalTableError`
    otherwise, naming the column and the expectation that needs it). ``severities`` as in
    :func:`build_suite`; a failed ``warning`` expectation is reported but keeps ``success``.
    """
    suite_name, planned = _plan(suite_file, roles, severities)
    source = str(df.attrs.get("source_file", "clinical table"))
    for item in planned:
        missing = [column for column in _columns_of(item.expectation) if column not in df.columns]
        if missing:
            raise ClinicalTableError(f"{source}: no column(s) {missing}, needed by expectation "
                                     f"'{item.name}'; the columns are {list(df.columns)}")
    if roles.id not in df.columns:
        raise ClinicalTableError(f"{source}: no patient id column '{roles.id}'")
    gx_results = _run_great_expectations(df, suite_name, planned, roles.id)
    by_name = {result.expectation_config.meta["name"]: result for result in gx_results.results}
    outcomes = [_outcome(item, by_name[item.name], roles.id, source) for item in planned]
    return ValidationResult(suite=suite_name, n_rows=len(df), expectations=outcomes)
