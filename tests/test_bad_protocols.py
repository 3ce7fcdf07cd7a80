"""Catalogue of bad inputs, group "protocol": each malformed protocol is refused when it is
loaded (so by `studyrunner validate` as by `run`), with a message that names the file, the
line and the YAML path, and the CLI exits 2. README "Bad inputs" lists the groups.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from studyrunner.cli import app
from studyrunner.protocol import ProtocolError, load_protocol
from studyrunner.strict_yaml import MAX_EXPANDED_NODES
from tests.conftest import REPO

DEMO = REPO / "protocols" / "nsclc_ici.yaml"
runner = CliRunner()


def _set(dotted: str, value: Any) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[leaf] = value
    return change


def _delete(dotted: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        del node[leaf]
    return change


# (case, change to the demo protocol, YAML path the message must name, words it must contain)
VALUE_CASES: list[tuple[str, Callable[[dict], None], str, str]] = [
    ("negative bin width", _set("predictors.radiomics.bin_width", -25), "predictors.radiomics.bin_width",
     "greater than 0"),
    ("zero bin count", _set("predictors.radiomics.bin_count", 0), "predictors.radiomics.bin_count",
     "greater than 0"),
    ("non-positive resampling", _set("preprocessing.resample_spacing", [0, -1, 1]),
     "preprocessing.resample_spacing.0", "greater than 0"),
    ("two-value resampling", _set("preprocessing.resample_spacing", [1, 1]), "preprocessing.resample_spacing",
     "at least 3"),
    ("negative split count", _set("cohort.split.counts", {"modelling": -4, "validation": 24, "test": 48}),
     "cohort.split.counts.modelling", "greater than or equal to 0"),
    ("fractions summing to 1.4", _set("cohort.split", {
        "method": "stratified", "fractions": {"training": 0.9, "test": 0.5}, "training": ["training"],
        "test": ["test"]}), "cohort.split", "sum to 1"),
    ("negative fraction", _set("cohort.split", {
        "method": "stratified", "fractions": {"training": 1.2, "test": -0.2}, "training": ["training"],
        "test": ["test"]}), "cohort.split.fractions.test", "greater than or equal to 0"),
    ("zero-size crop", _set("predictors.deep_learning.crop.size_voxels", [0, 82, 78]),
     "predictors.deep_learning.crop.size_voxels.0", "greater than 0"),
    ("negative crop spacing", _set("predictors.deep_learning.crop.spacing_mm", [1, -1, 1]),
     "predictors.deep_learning.crop.spacing_mm.1", "greater than 0"),
    ("zero epochs", _set("predictors.deep_learning.training.epochs", 0),
     "predictors.deep_learning.training.epochs", "greater than or equal to 1"),
    ("zero learning rate", _set("predictors.deep_learning.training.learning_rate", 0),
     "predictors.deep_learning.training.learning_rate", "greater than 0"),
    ("dropout of one", _set("predictors.deep_learning.network.dropout", 1.0),
     "predictors.deep_learning.network.dropout", "less than 1"),
    ("p threshold above one", _set("statistics.screening.p_threshold", 1.5), "statistics.screening.p_threshold",
     "less than or equal to 1"),
    ("negative calibration time", _set("statistics.risk_scores.calibration_times", [-180, 365]),
     "statistics.risk_scores.calibration_times.0", "greater than 0"),
    ("negative km time", _set("statistics.km_times", [-1, 200]), "statistics.km_times.0",
     "greater than or equal to 0"),
    ("unknown endpoint unit", _set("endpoints.os.unit", "weeks"), "endpoints.os.unit", "'days'"),
    ("misspelt key", _set("statistics.screening.p_treshold", 0.1), "statistics.screening.p_treshold",
     "unknown key"),
    ("text for a number", _set("study.seed", "twelve"), "study.seed", "valid integer"),
    ("missing endpoint time", _delete("endpoints.os.time"), "endpoints.os.time", "field required"),
    ("missing split", _delete("cohort.split"), "cohort.split", "field required"),
    ("statistics on a categorical endpoint", _set("statistics.endpoint", "best_response"), "statistics.endpoint",
     "time_to_event"),
    ("test partition not defined", _set("cohort.split.test", ["holdout"]), "cohort.split", "'holdout'"),
    ("partition both training and test", _set("cohort.split.test", ["modelling"]), "cohort.split",
     "both training and test"),
    ("both bin width and bin count", _set("predictors.radiomics.bin_count", 16), "predictors.radiomics",
     "exactly one"),
    ("unknown interpolator", _set("preprocessing.interpolator", "cubic"), "preprocessing.interpolator",
     "sitkBSpline"),
]


@pytest.fixture
def demo_data() -> dict:
    return yaml.safe_load(DEMO.read_text())


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _refusal(path: Path) -> str:
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    return str(info.value)


@pytest.mark.parametrize("case, change, where, words", VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_a_bad_value_is_refused_naming_file_line_and_yaml_path(tmp_path, demo_data, case, change, where, words):
    change(demo_data)
    path = _write(tmp_path, copy.deepcopy(demo_data))
    message = _refusal(path)
    line = next(line for line in message.splitlines() if f": {where}:" in line)
    assert line.startswith(f"{path}:"), line
    assert line.split(":")[1].isdigit(), f"no line number in {line!r}"
    assert words in line, line


def test_a_key_written_twice_is_refused_with_both_lines(tmp_path):
    text = DEMO.read_text().replace("  seed: 20220415\n", "  seed: 20220415\n  seed: 7\n", 1)
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    first = next(i for i, line in enumerate(text.splitlines(), 1) if line == "  seed: 20220415")
    message = _refusal(path)
    assert f"{path}:{first + 1}: key 'seed' is written twice (lines {first} and {first + 1})" in message


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    lines = ['lol: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert len(path.read_bytes()) < 600  # 9**10 values once expanded
    assert f"expand to more than {MAX_EXPANDED_NODES:,} values" in _refusal(path)


def test_a_self_referencing_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("study: &s [1, *s]\n")
    assert "expand to more than" in _refusal(path)


def test_aliases_that_stay_small_are_allowed(tmp_path, demo_data):
    text = DEMO.read_text().replace("  km_times: [0, 200, 400, 600, 800, 1000]",
                                    "  km_times: &times [0, 200, 400, 600, 800, 1000]", 1)
    text = text.replace("    nomogram_times: [180, 365]", "    nomogram_times: [180, 365]  # aliases are fine", 1)
    path = tmp_path / "alias.yaml"
    path.write_text(text)
    assert load_protocol(path).protocol.statistics.km_times == [0, 200, 400, 600, 800, 1000]


def test_a_protocol_that_is_not_utf8_names_the_line_and_byte(tmp_path):
    raw = DEMO.read_bytes().replace(b"name: nsclc_ici", b"name: nsclc_ici_\xe9t\xe9", 1)
    path = tmp_path / "latin1.yaml"
    path.write_bytes(raw)
    line = raw[:raw.index(b"\xe9")].count(b"\n") + 1
    assert f"{path}:{line}: not UTF-8 text (byte 0xe9" in _refusal(path)


def test_an_empty_file_and_a_list_are_not_protocols(tmp_path):
    for name, text in (("empty.yaml", ""), ("list.yaml", "- study\n- cohort\n")):
        path = tmp_path / name
        path.write_text(text)
        assert "a protocol is a YAML mapping" in _refusal(path)


def test_the_cli_exits_2_with_the_message_and_no_traceback(tmp_path, demo_data):
    demo_data["predictors"]["radiomics"]["bin_width"] = -25
    result = runner.invoke(app, ["validate", str(_write(tmp_path, demo_data))])
    assert result.exit_code == 2
    assert "predictors.radiomics.bin_width" in result.output
    assert "Traceback" not in result.output
