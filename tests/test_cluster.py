"""--cluster: the radiomics stage on a Dask cluster gives the files of the local process pool,
byte for byte, even when a worker is killed mid-extraction; bad SPECs and unseen inputs stop
the run with a message naming them (issue 12)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from studyrunner.cli import app
from studyrunner.cluster import ClusterSpec, ClusterSpecError, cluster_session, parse_cluster
from studyrunner.errors import InputError
from studyrunner.imaging.io import read_image
from studyrunner.radiomics import extract_case, extract_cohort, radiomics_params
from studyrunner.radiomics.stage import extract_with_params
from tests.conftest import small_study

N_CASES = 16
BROKEN = "SYN0003"  # its CT file is replaced by bytes that are no image
STAGE_FILES = ("params.yaml", "features.csv", "features_reader2.csv", "exclusions.json",
               "reader2_failures.json", "summary.json")


def params() -> dict:
    return radiomics_params({"Original": {}}, ["firstorder", "shape", "glcm"], bin_width=25, bin_count=None,
                            resampled_spacing=None)


@pytest.fixture(scope="module")
def cases(small_cohort_dir: Path, tmp_path_factory) -> pd.DataFrame:
    """The first cases of the small synthetic cohort, two readers each, one with a broken CT."""
    cohort = small_cohort_dir / "cohort"
    table = pd.read_csv(cohort / "manifest.csv", dtype=str).head(N_CASES)
    for column in ("image", "mask", "mask_reader2"):
        table[column] = [str(cohort / p) for p in table[column]]
    broken = tmp_path_factory.mktemp("broken") / f"{BROKEN}_ct.nii.gz"
    broken.write_bytes(b"not an image")
    table.loc[table["patient_id"] == BROKEN, "image"] = str(broken)
    return table


def stage(cases: pd.DataFrame, folder: Path, cluster: str, workers: int = 1) -> Path:
    folder.mkdir(parents=True)
    extract_with_params(params(), cases, folder, folder / "cache", workers, second_reader=True, cluster=cluster)
    return folder


def local_features(folder: Path) -> pd.DataFrame:
    """features.csv read back exactly (pandas' default float parser may move the last digit)."""
    table = pd.read_csv(folder / "features.csv", dtype={"patient_id": str}, float_precision="round_trip")
    return table.set_index("patient_id")


@pytest.fixture(scope="module")
def local_stage(cases: pd.DataFrame, tmp_path_factory) -> Path:
    return stage(cases, tmp_path_factory.mktemp("local") / "radiomics", "local")


def test_dask_cluster_gives_the_stage_files_of_the_local_pool(cases, local_stage, tmp_path) -> None:
    dask_stage = stage(cases, tmp_path / "radiomics", "dask:2")  # started and stopped by the stage
    for name in STAGE_FILES:
        assert (dask_stage / name).read_bytes() == (local_stage / name).read_bytes(), name
    features = local_features(local_stage)
    assert len(features) == N_CASES - 1
    assert BROKEN not in features.index
    exclusions = pd.read_json(local_stage / "exclusions.json")
    assert exclusions["patient_id"].tolist() == [BROKEN]
    assert exclusions["reason"][0].startswith(f"ImageReadError: cannot read image {cases['image'][2]}")
    # independent reference: a plain PyRadiomics execute of one case, read from its files
    first = cases.iloc[0]
    plain = extract_case(read_image(Path(first["image"])), read_image(Path(first["mask"])), params())
    assert features.loc[first["patient_id"]].to_dict() == plain


def test_a_worker_killed_mid_extraction_changes_nothing(cases, local_stage, tmp_path) -> None:
    items = [(row.patient_id, Path(row.image), {"reader1": Path(row.mask), "reader2": Path(row.mask_reader2)})
             for row in cases.itertuples(index=False)]
    killed: list[tuple[int, int]] = []
    with cluster_session("dask:2") as executor:
        assert executor is not None
        pids = sorted(executor.client.run(os.getpid).values())

        def kill_one_worker(done: int, total: int) -> None:
            if not killed:
                os.kill(pids[0], signal.SIGKILL)
                killed.append((done, total))

        tables, failures = extract_cohort(items, params(), tmp_path / "cache", progress=kill_one_worker,
                                          cluster="dask:2")
        after = sorted(executor.client.run(os.getpid).values())
    assert killed
    assert killed[0][0] < killed[0][1] - 2  # killed while cases were still to compute
    assert pids[0] not in after  # the killed worker's process is gone (its nanny started another)
    reference = local_features(local_stage)
    reference.columns.name = None
    pd.testing.assert_frame_equal(tables["reader1"], reference, check_exact=True, check_index_type=False)
    assert [f["patient_id"] for f in failures] == [BROKEN, BROKEN]


def test_a_worker_that_cannot_see_the_inputs_stops_the_run(tmp_path) -> None:
    with cluster_session("dask:1") as executor:
        assert executor is not None
        with pytest.raises(InputError, match=r"Dask worker tcp://\S+ cannot see the input .*absent\.nii\.gz"):
            executor.check_paths([tmp_path / "absent.nii.gz"])


def crash_on(bad: str, item: str) -> str:
    """A task that kills its worker process (every time) for ``bad``."""
    if item == bad:
        os._exit(1)
    return item.upper()


def test_a_case_that_kills_every_worker_it_runs_on_is_excluded_with_the_reason() -> None:
    with cluster_session("dask:1") as executor:
        assert executor is not None
        done = list(executor.map_unordered(crash_on, ["a", "b", "c"], "b",
                                           on_lost=lambda item, error: f"{item}: {type(error).__name__}"))
    assert sorted(done) == ["A", "C", "b: KilledWorker"]


def test_an_existing_scheduler_gives_the_same_features(cases, local_stage, tmp_path) -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        items = [(row.patient_id, Path(row.image), Path(row.mask)) for row in cases.head(4).itertuples(index=False)]
        tables, failures = extract_cohort(items, params(), tmp_path / "cache", cluster=cluster.scheduler_address)
    reference = local_features(local_stage).loc[tables["mask"].index]
    reference.columns.name = None
    pd.testing.assert_frame_equal(tables["mask"], reference, check_exact=True, check_index_type=False)
    assert [f["patient_id"] for f in failures] == [BROKEN]


def test_a_scheduler_without_workers_is_refused(monkeypatch) -> None:
    from distributed import LocalCluster

    monkeypatch.setattr("studyrunner.cluster.WORKER_WAIT_SECONDS", 1)
    with LocalCluster(n_workers=0, dashboard_address=":0") as cluster, pytest.raises(
            InputError, match="the scheduler has no worker"), cluster_session(cluster.scheduler_address):
        pass


@pytest.mark.parametrize("text, expected", [
    ("local", ClusterSpec("local")),
    (" dask:3 ", ClusterSpec("dask:3", n_workers=3)),
    ("tcp://10.0.0.5:8786", ClusterSpec("tcp://10.0.0.5:8786", address="tcp://10.0.0.5:8786")),
])
def test_cluster_specs(text: str, expected: ClusterSpec) -> None:
    assert parse_cluster(text) == expected


@pytest.mark.parametrize("text", ["dask:0", "dask:two", "dask", "tcp://host", "slurm", ""])
def test_bad_cluster_specs_are_refused(text: str) -> None:
    with pytest.raises(ClusterSpecError, match=re.escape("is not a cluster: use local | dask:N")):
        parse_cluster(text)


def test_bad_cluster_spec_exits_2_naming_it(small_cohort_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(small_cohort_dir / "cohort", tmp_path / "cohort")
    result = CliRunner().invoke(app, ["run", str(small_study(tmp_path)), "--cluster", "dask:zero",
                                      "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "'dask:zero' is not a cluster" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_whole_study_on_dask_gives_the_results_of_the_local_run(small_cohort_dir: Path, tmp_path: Path) -> None:
    """local, dask:2, and dask:2 whose driver was killed (kill -9) mid-extraction then rerun:
    the same radiomics files and results.json (timings, date and run name aside)."""
    shutil.copytree(small_cohort_dir / "cohort", tmp_path / "cohort")
    protocol = str(small_study(tmp_path))
    runs = {"local": tmp_path / "local", "dask:2": tmp_path / "dask2", "killed": tmp_path / "killed"}
    n_cached_at_kill = kill_driver_mid_extraction(protocol, runs["killed"])
    assert 0 < n_cached_at_kill < 40
    for spec, folder in runs.items():
        arguments = ["run", protocol, "--cluster", "local" if spec == "local" else "dask:2", "--out", str(folder)]
        result = CliRunner().invoke(app, arguments)
        assert result.exit_code == 0, result.output
        if spec == "dask:2":
            assert "Dask cluster dask:2: scheduler tcp://" in result.output  # and the dashboard, or why none
    names = sorted(p.name for p in (runs["local"] / "radiomics").iterdir() if p.name != "stage.json")  # timing
    assert "features.csv" in names
    results = {}
    for spec, folder in runs.items():
        for name in names:
            assert (folder / "radiomics" / name).read_bytes() == (runs["local"] / "radiomics" / name).read_bytes()
        results[spec] = json.loads((folder / "results.json").read_text())
        del results[spec]["timings"], results[spec]["study"]["created_utc"], results[spec]["study"]["run_id"]
    assert results["dask:2"] == results["local"]
    assert results["killed"] == results["local"]


def kill_driver_mid_extraction(protocol: str, folder: Path) -> int:
    """Start ``studyrunner run --cluster dask:2``, kill -9 its driver once five cases are in the
    per-case cache, then its orphaned workers; the number of cached cases at the kill."""
    command = [str(Path(sys.executable).parent / "studyrunner"), "run", protocol, "--cluster", "dask:2",
               "--out", str(folder)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    cache = folder / "cache" / "radiomics"
    deadline = time.monotonic() + 180
    try:
        while len(list(cache.glob("*.json"))) < 5:
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return len(list(cache.glob("*.json")))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
