"""Stage reuse: an unchanged stage is not recomputed; a changed input or setting reruns it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from studyrunner.run_folder import RunFolder, read_json, to_jsonable, write_json


def test_stage_is_reused_only_when_settings_upstream_and_inputs_are_unchanged(tmp_path):
    data = tmp_path / "input.csv"
    data.write_text("a\n1\n")
    calls = []

    def work(stage_dir):
        calls.append(stage_dir.name)
        (stage_dir / "out.txt").write_text(data.read_text())

    def run(settings):
        folder = RunFolder(tmp_path / "run")
        first = folder.run_stage("first", folder.fingerprint("first", settings, inputs=[data]), work)
        second = folder.run_stage("second", folder.fingerprint("second", {}, upstream=["first"]), work)
        return first.reused, second.reused

    assert run({"x": 1}) == (False, False)
    assert run({"x": 1}) == (True, True)
    assert run({"x": 2}) == (False, False)  # a new setting reruns the stage and everything downstream
    data.write_text("a\n2\n")
    assert run({"x": 2}) == (False, False)  # so does a changed input file
    assert calls == ["first", "second"] * 3
    assert (tmp_path / "run" / "first" / "out.txt").read_text() == "a\n2\n"


def test_a_stage_that_crashed_is_rerun(tmp_path):
    folder = RunFolder(tmp_path / "run")
    fingerprint = folder.fingerprint("s", {})

    def crash(stage_dir):
        (stage_dir / "partial.txt").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        folder.run_stage("s", fingerprint, crash)
    assert not (tmp_path / "run" / "s" / "stage.json").exists()
    record = folder.run_stage("s", fingerprint, lambda d: (d / "done.txt").write_text("ok"))
    assert not record.reused
    assert (tmp_path / "run" / "s" / "done.txt").exists()


def test_json_output_is_plain_json(tmp_path):
    payload = {"a": np.float64(0.5), "b": np.int64(3), "c": math.nan, "d": [np.inf, 1.0]}
    assert to_jsonable(payload) == {"a": 0.5, "b": 3, "c": None, "d": [None, 1.0]}
    write_json(tmp_path / "x.json", payload)
    assert read_json(tmp_path / "x.json") == json.loads('{"a": 0.5, "b": 3, "c": null, "d": [null, 1.0]}')


def test_each_stage_fingerprint_covers_the_code_it_runs() -> None:
    from studyrunner.runner import FEATURE_TABLES, STAGES
    from studyrunner.stages import stage_code

    assert list(STAGES) == ["cohort", "images", "radiomics", "deep", "statistics", "explanations", "model", "report"]
    package = Path(__file__).resolve().parents[1] / "studyrunner"
    for spec in [*STAGES.values(), FEATURE_TABLES]:
        files = set(stage_code(spec.entry))
        entry = package.joinpath(*spec.entry.split(".")[1:]).with_suffix(".py")
        assert entry in files, spec.name
        assert all(f.is_file() and f.suffix == ".py" and package in f.parents for f in files)
    # followed through imports, whatever the packages' layout
    statistics = set(stage_code(STAGES["statistics"].entry))
    assert {package / "rbridge.py", package / "statistics" / "cutoffs.py",
            package / "statistics" / "radiomics_model" / "development.py",
            package / "statistics" / "cnn_scores" / "response.py"} <= statistics  # the last imported lazily
    assert package / "imaging" / "io.py" in set(stage_code(STAGES["deep"].entry))
    assert set((package / "radiomics").glob("*.py")) - {package / "radiomics" / "feature_table.py"} <= set(
        stage_code(STAGES["radiomics"].entry))


def test_a_stage_reads_only_the_protocol_sections_it_declares() -> None:
    from studyrunner.protocol import load_protocol
    from studyrunner.stages import StageContractError, StageSpec, declared_protocol, section_values

    loaded = load_protocol(Path(__file__).resolve().parents[1] / "protocols" / "lung1_real.yaml")
    spec = StageSpec("images", ("preprocessing.mask_label", "study.seed"), (), "studyrunner.imaging.stage")
    view = declared_protocol(loaded, spec).protocol
    assert view.preprocessing.mask_label == loaded.protocol.preprocessing.mask_label
    assert view.study.seed == loaded.protocol.study.seed
    with pytest.raises(StageContractError, match=r"stage 'images' reads protocol section 'preprocessing\.resample_"):
        bool(view.preprocessing.resample_spacing)
    with pytest.raises(StageContractError, match=r"'statistics'"):
        _ = view.statistics.endpoint
    with pytest.raises(StageContractError, match=r"'study\.name'"):
        bool(view.study.name)
    assert section_values(loaded.protocol, spec.reads) == {
        "preprocessing.mask_label": loaded.protocol.preprocessing.mask_label, "study.seed": loaded.protocol.study.seed}
