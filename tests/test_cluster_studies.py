"""Issue 12's identity test for each shipped protocol: the study run on a Dask LocalCluster
of two worker processes (radiomics per case, the cross-validation fits with R in each
worker, the external CNN scoring per batch of cases) gives the feature tables of the local
run byte for byte and its results.json (timings, date and run name aside).

The local runs are the session's study fixtures (tests/study_runs.py), so only the Dask runs
are extra; each starts from an empty run folder, so no stage is reused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from studyrunner.cluster import cluster_session

pytestmark = [pytest.mark.needs_r, pytest.mark.slow]

FEATURE_FILES = ("features.csv", "features_reader2.csv")


def rerun_on_dask(local_run: Path, protocol_name: str, workers: int = 1, device: str = "auto") -> Path:
    """The protocol of ``local_run`` run again on ``dask:2`` into a fresh folder beside it."""
    from studyrunner.protocol import load_protocol
    from studyrunner.runner import RunOptions, run_study

    out = local_run.parent / "run_dask2"
    with cluster_session("dask:2"):  # one cluster for the whole run, as the command line does
        return run_study(load_protocol(local_run.parent / protocol_name),
                         RunOptions(out_dir=out, workers=workers, device=device, cluster="dask:2"))


def comparable_results(run_dir: Path) -> dict[str, Any]:
    """results.json without its timings (the stages', each CNN epoch's), date and run name."""
    results = json.loads((run_dir / "results.json").read_text())
    del results["timings"], results["study"]["created_utc"], results["study"]["run_id"]
    for network in (results.get("deep") or {}).get("networks", {}).values():
        network.pop("train_samples_per_second", None)
        for epoch in network.get("history", []):
            del epoch["seconds"]
    return results


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """The paths at which two JSON values differ, with both values (a readable failure)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b), key=str)
        return [d for key in keys for d in differences(a.get(key), b.get(key), f"{path}.{key}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {str(a)[:80]} != {str(b)[:80]}"]


def assert_same_study(local_run: Path, dask_run: Path) -> None:
    compared = 0
    for name in FEATURE_FILES:
        local = local_run / "radiomics" / name
        if local.exists():
            assert (dask_run / "radiomics" / name).read_bytes() == local.read_bytes(), name
            compared += 1
    assert compared >= 1
    assert differences(comparable_results(dask_run), comparable_results(local_run)) == []
    manifest = json.loads((dask_run / "manifest.json").read_text())
    assert manifest["cluster"] == "dask:2"


def test_nsclc_ici_on_dask_gives_the_local_results(deep_run: Path) -> None:
    assert_same_study(deep_run, rerun_on_dask(deep_run, "study.yaml", device="cpu"))


def test_escc_on_dask_gives_the_local_results(signature_run) -> None:
    run_dir, results = signature_run
    assert results["cross_validation"]["n_fits"] == 3  # the fits that ran on the workers
    assert_same_study(run_dir, rerun_on_dask(run_dir, "escc.yaml"))


@pytest.mark.shared_data
def test_lung1_real_on_dask_gives_the_local_results(real_run) -> None:
    run_dir, _ = real_run
    assert_same_study(run_dir, rerun_on_dask(run_dir, "lung1.yaml", workers=2))
