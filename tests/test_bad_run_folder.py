"""Catalogue of bad inputs, group "run folder": one run per folder (a lock naming its holder,
a stale lock taken over), an --out that is a file, a folder that cannot be written and a
full disk give a clear message and exit code 4, and the stages already finished stay.
README "Bad inputs" lists the groups."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from studyrunner.cli import app
from studyrunner.errors import RunFolderError
from studyrunner.run_folder import LOCK_FILE, STAGE_FILE, RunFolder
from tests.conftest import small_study

runner = CliRunner()


def test_a_second_run_into_a_held_folder_is_refused_naming_the_holder(tmp_path):
    folder = RunFolder(tmp_path / "run")
    with folder.locked("study_a (a.yaml)"):
        with pytest.raises(RunFolderError) as info, RunFolder(tmp_path / "run").locked("study_b (b.yaml)"):
            pass
        message = str(info.value)
        assert f"process {os.getpid()} on {socket.gethostname()}, study_a (a.yaml)" in message
        assert info.value.exit_code == 4
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_a_stale_lock_of_a_killed_run_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    root = tmp_path / "run"
    root.mkdir()
    (root / LOCK_FILE).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(),
                                              "what": "killed", "started_utc": "2026-01-01T00:00:00+00:00"}))
    with RunFolder(root).locked("next"):
        assert json.loads((root / LOCK_FILE).read_text())["what"] == "next"


def test_a_lock_held_from_another_host_is_not_taken(tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    (root / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "other-node", "what": "cluster run",
                                              "started_utc": "2026-01-01T00:00:00+00:00"}))
    with pytest.raises(RunFolderError, match="process 1 on other-node, cluster run"), RunFolder(root).locked("x"):
        pass


def test_out_naming_a_file_exits_4(tmp_path, small_cohort_dir):
    target = tmp_path / "results.txt"
    target.write_text("not a folder")
    result = runner.invoke(app, ["run", str(small_study(small_cohort_dir)), "--out", str(target)])
    assert result.exit_code == 4, result.output
    assert "--out names a file, not a folder" in result.output
    assert "Traceback" not in result.output


def test_a_folder_that_cannot_be_written_is_refused(tmp_path, monkeypatch):
    root = tmp_path / "run"
    root.mkdir()

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(root / LOCK_FILE))

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(RunFolderError, match="not writable \\(Permission denied\\)"), RunFolder(root).locked("x"):
        pass


def test_a_full_disk_stops_the_stage_and_keeps_the_finished_ones(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.run_stage("cohort", "f1", lambda d: (d / "clinical.csv").write_text("patient_id\n"))

    def full(stage_dir: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(stage_dir / "features.csv"))

    with pytest.raises(RunFolderError) as info:
        folder.run_stage("radiomics", "f2", full)
    message = str(info.value)
    assert "No space left on device" in message
    assert "finished stages are kept (cohort)" in message
    assert (tmp_path / "run" / "cohort" / STAGE_FILE).is_file()
    assert not (tmp_path / "run" / "radiomics" / STAGE_FILE).exists()
    reopened = RunFolder(tmp_path / "run")
    assert reopened.run_stage("cohort", "f1", lambda d: None).reused


def test_an_error_reading_an_input_outside_the_folder_is_not_blamed_on_the_folder(tmp_path):
    folder = RunFolder(tmp_path / "run")

    def unreadable(stage_dir: Path) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", "/elsewhere/input.csv")

    with pytest.raises(PermissionError):
        folder.run_stage("cohort", "f", unreadable)
