"""The protocol schema: errors name the YAML path, the file and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from studyrunner.protocol import ProtocolError, json_schema, load_protocol

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "protocols" / "nsclc_ici.yaml"


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def demo_data() -> dict:
    return yaml.safe_load(DEMO.read_text())


def test_demo_protocol_is_valid_and_paths_resolve_against_the_protocol_file():
    loaded = load_protocol(DEMO)
    assert loaded.protocol.study.synthetic is True
    assert loaded.protocol.cohort.split.counts == {"modelling": 164, "validation": 24, "test": 48}
    assert loaded.resolve(loaded.protocol.cohort.clinical_table) == REPO / "data/synthetic/nsclc_ici/clinical.csv"


def test_missing_field_names_its_yaml_path_file_and_line(tmp_path, demo_data):
    del demo_data["endpoints"]["os"]["time"]
    path = _write(tmp_path, demo_data)
    with pytest.raises(ProtocolError) as err:
        load_protocol(path)
    message = str(err.value)
    assert "endpoints.os.time: field required" in message
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.strip() == "os:")
    assert f"{path}:{line}: endpoints.os.time" in message


def _error_message(path) -> str:
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    return str(info.value)


def test_unknown_key_and_wrong_type_are_errors(tmp_path, demo_data):
    demo_data["statistics"]["screening"]["p_treshold"] = 0.1
    demo_data["study"]["seed"] = "not a number"
    message = _error_message(_write(tmp_path, demo_data))
    assert "statistics.screening.p_treshold: unknown key" in message
    assert "study.seed: Input should be a valid integer" in message


def test_cross_references_are_checked(tmp_path, demo_data):
    demo_data["statistics"]["endpoint"] = "best_response"
    message = _error_message(_write(tmp_path, demo_data))
    assert "must name a time_to_event endpoint" in message

    demo_data["statistics"]["endpoint"] = "os"
    demo_data["cohort"]["split"]["test"] = ["holdout"]
    message = _error_message(_write(tmp_path, demo_data))
    assert "cohort.split" in message
    assert "'holdout'" in message


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ProtocolError, match="protocol file not found"):
        load_protocol(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: [unclosed\n")
    with pytest.raises(ProtocolError, match="not valid YAML"):
        load_protocol(bad)


def test_committed_json_schema_is_current():
    committed = json.loads((REPO / "protocols" / "schema.json").read_text())
    assert committed == json_schema(), "regenerate with: make schema"
    external = json.loads((REPO / "protocols" / "external.schema.json").read_text())
    assert external == json_schema(external=True), "regenerate with: make schema"


AUTHORS_FIELDS = ("context", "intended_use", "health_inequalities", "data_collection_dates", "setting", "treatments",
                  "outcome_assessment", "outcome_blinding", "predictor_assessment", "patient_involvement",
                  "interpretation", "limitations", "user_interaction", "applicability")


def test_report_section_has_the_tripod_authors_fields_with_their_item_in_the_schema():
    from studyrunner.protocol import ReportSection
    from studyrunner.report.tripod import ITEMS

    properties = json_schema()["$defs"]["ReportSection"]["properties"]
    fields = {item.field: item.item for item in ITEMS if item.field}
    for name in AUTHORS_FIELDS:
        assert ReportSection.model_fields[name].default is None
        assert properties[name]["description"].startswith(f"TRIPOD+AI {fields[name]}:"), name


@pytest.mark.parametrize("name", ["nsclc_ici.yaml", "escc_ici_chemo.yaml"])
def test_demo_protocols_answer_every_authors_item_and_name_fairness_groups(name):
    protocol = load_protocol(REPO / "protocols" / name).protocol
    report = protocol.report
    assert all(getattr(report, field) for field in AUTHORS_FIELDS)
    assert "synthetic" in report.setting.lower()
    assert "synthetic" in report.data_collection_dates.lower()
    fairness = {group.column: group.cuts for group in protocol.statistics.subgroups.fairness}
    assert set(fairness) == {"sex", "age"}
    assert fairness["age"] is not None


def test_subgroup_plan_is_checked(tmp_path, demo_data):
    demo_data["statistics"]["subgroups"] = {"fairness": [{"column": "age", "label": "Age", "cuts": []}]}
    assert "statistics.subgroups.fairness.0.cuts" in _error_message(_write(tmp_path, demo_data))
    demo_data["statistics"]["subgroups"] = {"centre": {"column": "site"}}
    assert "statistics.subgroups.centre.label: field required" in _error_message(_write(tmp_path, demo_data))
