"""Benchmark: the cross-validation fits of seed 001 (escc) on this machine's process pool vs
a Dask cluster (issue 12).

Input: a finished run folder of ``protocols/escc_ici_chemo.yaml`` (its cohort/clinical.csv
and radiomics/features*.csv; make one with ``studyrunner run protocols/escc_ici_chemo.yaml
--out DIR``). The protocol's own plan: 10 x 3-fold cross-validation stratified on the
event, each fit rerunning the reproducibility filter, z-scoring, screening, the six learners
(elastic net, lasso, CoxBoost, GBM, random survival forest, superpc) and the stepwise Cox
model in R (rpy2), then the fold AUCs and out-of-fold risks.

Arms: ``local`` with 1 and 2 processes, ``dask:1`` and ``dask:2`` (R started once in each
worker process; the cluster's start and stop timed apart). Every arm must give the same
fold results as the first (the script stops otherwise). Measured: wall and CPU seconds, the
seconds per fit (the one-process arm) and Dask's overhead per fit ((dask:1 - local 1) / fits).

Usage: .venv/bin/python benchmarks/dask_folds.py RUN_DIR [--repeats N]
Writes benchmarks/results/dask_folds.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import resource
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.radiomics_extraction import Meter, machine  # noqa: E402
from studyrunner.cluster import cluster_session  # noqa: E402
from studyrunner.protocol import load_protocol  # noqa: E402
from studyrunner.statistics.cohorts import TRAINING, cohort_masks  # noqa: E402
from studyrunner.statistics.radiomics_model.cross_validation import cross_validate  # noqa: E402
from studyrunner.statistics.radiomics_model.development import develop_model  # noqa: E402
from studyrunner.statistics.radiomics_model.stage import fold_auc, fold_baseline  # noqa: E402

ARMS = (("local", 1), ("local", 2), ("dask:1", 1), ("dask:2", 2))


def development_rows(run_dir: Path, protocol) -> tuple[pd.DataFrame, pd.DataFrame | None, str, str]:
    """The development cohort's rows (time, event, features) and the second reader's features."""
    endpoint = protocol.primary_endpoint()
    clinical = pd.read_csv(run_dir / "cohort" / "clinical.csv", dtype={"patient_id": str})
    features = pd.read_csv(run_dir / "radiomics" / "features.csv", dtype={"patient_id": str})
    second = run_dir / "radiomics" / "features_reader2.csv"
    reader2 = pd.read_csv(second, dtype={"patient_id": str}) if second.exists() else None
    data = clinical[["patient_id", "partition", endpoint.time, endpoint.event]].merge(features, on="patient_id")
    data = data.dropna(subset=[endpoint.time, endpoint.event]).reset_index(drop=True)
    return data[cohort_masks(protocol.cohort.split, data)[TRAINING]], reader2, endpoint.time, endpoint.event


def run_arm(rows, reader2, time_column: str, event: str, plan, seed: int, cluster: str, workers: int) -> dict:
    develop = functools.partial(develop_model, time=time_column, event=event, plan=plan)
    kwargs = {"develop": develop, "auc": functools.partial(fold_auc, time=time_column, event=event),
              "baseline": functools.partial(fold_baseline, time=time_column, event=event)}
    start = Meter()
    with cluster_session(cluster, note=lambda text: print(f"  {text}", file=sys.stderr)) as executor:
        started = start.stop()["wall_seconds"]
        before = worker_cpu(executor)
        fits = Meter()
        results = cross_validate(rows, reader2, event, plan, seed, workers=workers, cluster=cluster, **kwargs)
        fitted = fits.stop()
        per_worker = {w: cpu - before.get(w, 0.0) for w, cpu in worker_cpu(executor).items()}
    if per_worker:  # Dask workers are not this process's reaped children: their CPU is asked for
        fitted["cpu_seconds"] += sum(per_worker.values())
        fitted["other_processes_cpu_seconds"] = max(fitted["other_processes_cpu_seconds"] - sum(per_worker.values()), 0)
        fitted["other_processes_mean_cores"] = fitted["other_processes_cpu_seconds"] / fitted["wall_seconds"]
    return {"cluster": cluster, "workers": workers, "start_seconds": started, "fits": fitted,
            "worker_cpu_seconds": sorted(per_worker.values()), "results": results}


def worker_cpu(executor) -> dict[str, float]:
    """CPU seconds of each Dask worker process so far (none for the local pool)."""
    if executor is None:
        return {}
    return executor.client.run(_process_cpu)


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--protocol", type=Path, default=REPO / "protocols" / "escc_ici_chemo.yaml")
    parser.add_argument("--repeats", type=int, default=None, help="fewer repeats than the protocol's")
    arguments = parser.parse_args()
    protocol = load_protocol(arguments.protocol).protocol
    plan = protocol.statistics
    if arguments.repeats:
        cv = plan.evaluation.cross_validation.model_copy(update={"repeats": arguments.repeats})
        plan = plan.model_copy(update={"evaluation": plan.evaluation.model_copy(update={"cross_validation": cv})})
    rows, reader2, time_column, event = development_rows(arguments.run_dir, protocol)
    arms = []
    for cluster, workers in ARMS:
        print(f"arm {cluster} workers={workers}", file=sys.stderr)
        arm = run_arm(rows, reader2, time_column, event, plan, protocol.study.seed, cluster, workers)
        if arms and arm["results"] != arms[0]["results"]:
            raise SystemExit(f"arm {cluster}/{workers}: the fold results differ from the first arm's")
        arms.append(arm)
    n_fits = len(arms[0]["results"])
    record = {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
        "patients": len(rows), "features": rows.shape[1] - 4, "fits": n_fits,
        "failed_fits": sum(r.error is not None for r in arms[0]["results"]),
        "arms": [{k: v for k, v in arm.items() if k != "results"} for arm in arms],
        "seconds_per_fit": arms[0]["fits"]["wall_seconds"] / n_fits,
        "dask_overhead_per_fit_seconds": (arms[2]["fits"]["wall_seconds"] - arms[0]["fits"]["wall_seconds"]) / n_fits,
    }
    out = REPO / "benchmarks" / "results" / "dask_folds.json"
    out.write_text(json.dumps(record, indent=2))
    print(f"{len(rows)} development patients, {record['features']} features, {n_fits} fits "
          f"({record['failed_fits']} failed)\n")
    print("| arm | wall s (fits) | cluster start s | CPU s | CPU s per worker | other processes (mean cores) |\n"
          "|---|---|---|---|---|---|")
    for arm in record["arms"]:
        fits = arm["fits"]
        per_worker = " / ".join(f"{cpu:.1f}" for cpu in arm["worker_cpu_seconds"]) or "-"
        print(f"| `{arm['cluster']}` x{arm['workers']} | {fits['wall_seconds']:.1f} | {arm['start_seconds']:.1f} | "
              f"{fits['cpu_seconds']:.1f} | {per_worker} | {fits['other_processes_mean_cores']:.2f} |")
    print(f"\nper fit {record['seconds_per_fit']:.2f} s; Dask overhead per fit "
          f"{1000 * record['dask_overhead_per_fit_seconds']:.0f} ms")


if __name__ == "__main__":
    main()
