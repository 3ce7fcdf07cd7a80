"""results.json is typed: the committed JSON Schema is current, the report's fixtures are
valid results, and a results file of the wrong shape is refused naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studyrunner.errors import InputError
from studyrunner.report.render import load_results
from studyrunner.results import Results, results_schema

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


def test_committed_results_schema_is_current() -> None:
    committed = json.loads((REPO / "protocols" / "results.schema.json").read_text(encoding="utf-8"))
    assert committed == results_schema(), "regenerate with: make schema"


@pytest.mark.parametrize("name", ["results_example.json", "results_signature.json"])
def test_fixtures_are_valid_results(name: str) -> None:
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    results = Results.model_validate(data)
    assert results.to_json() == data  # nothing recorded is lost or renamed


def test_unknown_key_is_refused_with_its_path(tmp_path: Path) -> None:
    data = json.loads((FIXTURES / "results_example.json").read_text(encoding="utf-8"))
    data["model"]["cutoff"]["valeu"] = data["model"]["cutoff"].pop("value")
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as error:
        load_results(path)
    message = str(error.value)
    assert str(path) in message
    assert "model" in message
    assert "valeu" in message


def test_not_run_record_replaces_a_section() -> None:
    data = json.loads((FIXTURES / "results_example.json").read_text(encoding="utf-8"))
    data["table_one"] = {"not_run": "no baseline variables in the protocol"}
    results = Results.model_validate(data)
    assert results.table_one is not None
    assert results.table_one.model_dump() == data["table_one"]
