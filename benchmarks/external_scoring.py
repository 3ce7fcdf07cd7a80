"""External scoring: a frozen bundle's features extracted with only what they need vs a full extraction.

A radiomics bundle needs only its own features, so ``studyrunner external`` extracts with
``studyrunner.bundle.extraction_params(bundle)``: the image types and feature classes
(and, within a class, the features) the model uses. This script times, on a cohort:

(a) **restricted**: ``extract_cohort(cases, extraction_params(bundle), <empty cache>, workers)``;
(b) **full**: the same with the bundle's full parameter file (``radiomics_params_yaml``: every
    image type and feature class of the development study);

each arm ``--repeats`` times, alternating (a) and (b), every time in a fresh temporary cache
folder (no reuse). It then checks that every bundle feature of every case is the same in (a)
and (b) to ``--tolerance`` (absolute; exits 1 otherwise, and when the two arms fail on
different cases), and writes the median wall seconds, cases/s, the speed-up (b)/(a) and the
maximum absolute difference to ``--output``. Other processes' load on the machine is
measured from /proc/stat for every timed call (the ``Meter`` of radiomics_extraction.py).

Usage: .venv/bin/python benchmarks/external_scoring.py --bundle RUN/model \
    --manifest COHORT/manifest.csv [--limit N] [--workers 2] [--repeats 3]
The manifest is a CSV with patient_id, image, mask (paths relative to the manifest).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import statistics
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
# E402: the imports below need the two sys.path entries above (the repo, this folder).
from radiomics_extraction import Meter, machine  # noqa: E402

from studyrunner.bundle import RadiomicsBundle, extraction_params, load_radiomics_bundle  # noqa: E402
from studyrunner.radiomics import extract_cohort  # noqa: E402

ARMS = ("restricted", "full")


def read_cases(manifest: Path, limit: int | None) -> list[tuple[str, Path, Path]]:
    """(patient_id, image, mask) of the manifest's first ``limit`` rows, paths made absolute."""
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))[:limit]
    return [(row["patient_id"], manifest.parent / row["image"], manifest.parent / row["mask"]) for row in rows]


def full_params(bundle: RadiomicsBundle) -> dict[str, Any]:
    """The development study's whole parameter file, as frozen in the bundle."""
    if not bundle.radiomics_params_yaml:
        raise SystemExit(f"{bundle.source}: the bundle has no radiomics_params_yaml (imported feature table)")
    params: dict[str, Any] = yaml.safe_load(bundle.radiomics_params_yaml)
    return params


def timed_extraction(cases: list[tuple[str, Path, Path]], params: Mapping[str, Any], workers: int) -> dict:
    """One cold extraction (fresh cache folder): its table, failures and meter."""
    with tempfile.TemporaryDirectory(prefix="external-scoring-bench-") as temporary:
        meter = Meter()
        tables, failures = extract_cohort(cases, params, Path(temporary) / "cache", workers=workers)
        measured = meter.stop()
    table = tables.get("mask")
    return {"table": table, "failures": sorted((f["patient_id"], f["reason"]) for f in failures), **measured}


def compare(features: tuple[str, ...], restricted: Any, full: Any) -> dict:
    """Max |a - b| over every case and bundle feature; NaN only matches NaN."""
    missing = {arm: [f for f in features if f not in table.columns]
               for arm, table in (("restricted", restricted), ("full", full))}
    if any(missing.values()):
        raise SystemExit(f"bundle features missing from the tables: {missing}")
    if list(restricted.index) != list(full.index):
        raise SystemExit("the two arms extracted different cases")
    a = restricted[list(features)].to_numpy(dtype=float)
    b = full[list(features)].to_numpy(dtype=float)
    both_nan = np.isnan(a) & np.isnan(b)
    difference = np.where(both_nan, 0.0, np.abs(a - b))
    difference = np.where(np.isnan(difference), np.inf, difference)  # NaN on one side only
    worst = float(difference.max()) if difference.size else 0.0
    where = None
    if difference.size and worst > 0:
        row, column = np.unravel_index(int(difference.argmax()), difference.shape)
        where = f"{restricted.index[row]} {features[column]}"
    return {"max_abs_difference": worst, "worst_at": where, "n_values": int(a.size),
            "n_bit_identical": int(((a == b) | both_nan).sum())}


def summary(runs: list[dict], n_cases: int, workers: int, n_features: int) -> dict:
    walls = [run["wall_seconds"] for run in runs]
    median = statistics.median(walls)
    return {"workers": workers, "n_features_per_case": n_features, "median_seconds": median,
            "min_seconds": min(walls), "max_seconds": max(walls), "cases_per_second": n_cases / median,
            "runs": [{k: v for k, v in run.items() if k != "table"} for run in runs]}


def measure(cases: list[tuple[str, Path, Path]], params: dict[str, dict], workers: int, repeats: int) -> dict:
    """``repeats`` cold extractions per arm with ``workers`` processes, the arms alternating."""
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    for repeat in range(repeats):
        for arm in ARMS if repeat % 2 == 0 else ARMS[::-1]:
            print(f"workers={workers}, repeat {repeat + 1}/{repeats}: {arm}, {len(cases)} cases ...",
                  file=sys.stderr, flush=True)
            run = timed_extraction(cases, params[arm], workers)
            print(f"  {run['wall_seconds']:.2f} s, other processes {run['other_processes_mean_cores']:.2f} cores",
                  file=sys.stderr, flush=True)
            runs[arm].append(run)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, required=True, help="a run's model/ folder or its bundle.json")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None, help="first N cases of the manifest")
    parser.add_argument("--workers", type=int, nargs="+", default=[2], help="one configuration per value")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tolerance", type=float, default=1e-9)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "external_scoring.json")
    arguments = parser.parse_args()

    bundle = load_radiomics_bundle(arguments.bundle)
    params = {"restricted": extraction_params(bundle), "full": full_params(bundle)}
    cases = read_cases(arguments.manifest.resolve(), arguments.limit)
    n_cases = len(cases)
    started_at = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    configurations, reference, problems = [], None, []
    for workers in arguments.workers:
        runs = measure(cases, params, workers, arguments.repeats)
        reference = reference or runs["restricted"][0]
        difference = compare(bundle.features, runs["restricted"][0]["table"], runs["full"][0]["table"])
        same_failures = all(run["failures"] == reference["failures"] for arm in ARMS for run in runs[arm])
        repeatable = all(compare(bundle.features, reference["table"], run["table"])["max_abs_difference"] == 0
                         for arm in ARMS for run in runs[arm])
        arms = {arm: summary(runs[arm], n_cases, workers, runs[arm][0]["table"].shape[1]) for arm in ARMS}
        identical = difference["max_abs_difference"] <= arguments.tolerance and same_failures
        if not identical:
            problems.append(f"workers={workers}: max |a - b| {difference['max_abs_difference']:.3g} at "
                            f"{difference['worst_at']}; same failures: {same_failures}")
        configurations.append({
            "workers": workers, **arms,
            "speedup_full_over_restricted": arms["full"]["median_seconds"] / arms["restricted"]["median_seconds"],
            "same_failures": same_failures, "bundle_features_same_in_every_run": repeatable,
            "identical_within_tolerance": identical, **difference})
    result = {
        "date": started_at,
        "command": "cd /work/main && .venv/bin/python benchmarks/external_scoring.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "bundle": str(bundle.source), "bundle_content_sha256": bundle.content_sha256,
        "bundle_features": list(bundle.features),
        "manifest": str(arguments.manifest), "n_cases": n_cases, "repeats": arguments.repeats,
        "tolerance": arguments.tolerance, "failures": reference["failures"] if reference else [],
        "params": params,
        "configurations": configurations,
    }
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(result, indent=1, default=list))
    print_table(result)
    if problems:
        raise SystemExit("the bundle's features differ between the arms: " + "; ".join(problems))


def print_table(result: dict) -> None:
    print(f"| cases | workers | full s | restricted s | speed-up | identical to {result['tolerance']:g} |")
    print("|---|---|---|---|---|---|")
    for c in result["configurations"]:
        print(f"| {result['n_cases']} | {c['workers']} | {c['full']['median_seconds']:.2f} "
              f"| {c['restricted']['median_seconds']:.2f} | {c['speedup_full_over_restricted']:.2f}x "
              f"| {'yes' if c['identical_within_tolerance'] else 'NO'} (max {c['max_abs_difference']:.3g}) |")
    for c in result["configurations"]:
        print(f"workers={c['workers']}: features per case full {c['full']['n_features_per_case']}, restricted "
              f"{c['restricted']['n_features_per_case']}; cases/s full {c['full']['cases_per_second']:.1f}, "
              f"restricted {c['restricted']['cases_per_second']:.1f}; other processes' load (mean cores) full "
              f"{[round(r['other_processes_mean_cores'], 2) for r in c['full']['runs']]}, restricted "
              f"{[round(r['other_processes_mean_cores'], 2) for r in c['restricted']['runs']]}")


if __name__ == "__main__":
    main()
