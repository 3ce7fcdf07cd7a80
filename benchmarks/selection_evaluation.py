"""Benchmark: the escc_ici_chemo study's selection and evaluation on a finished run's feature tables.

Times, on the development cohort of a run of protocols/escc_ici_chemo.yaml (87 patients x
~1,300 features, 30 second segmentations):
  1. model development: ICC filter, z-scoring, univariate Cox screening, six learners,
     combination, stepwise-AIC Cox (studyrunner.statistics.radiomics_model.development.develop_model);
  2. evaluation: maxstat cut-off, C-index/HR/log-rank/KM, time-dependent ROC at 1-5 years,
     calibration and decision curves at 1-3 years;
  3. one cross-validation fit (the development rerun on a 2/3 training fold).
Run from the repository root:

    .venv/bin/python benchmarks/selection_evaluation.py RUN_DIR [--repeats 3]

and paste the printed table into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import pandas as pd

from studyrunner.protocol import load_protocol
from studyrunner.statistics.baseline_survival import baseline_survival
from studyrunner.statistics.cutoffs import choose_cutoff
from studyrunner.statistics.radiomics_model.development import develop_model
from studyrunner.statistics.radiomics_model.stage import calibration_and_decision, evaluate_cohort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--protocol", type=Path, default=Path("protocols/escc_ici_chemo.yaml"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    loaded = load_protocol(args.protocol)
    plan, seed = loaded.protocol.statistics, loaded.protocol.study.seed
    endpoint = loaded.protocol.primary_endpoint()
    time_col, event = endpoint.time, endpoint.event
    clinical = pd.read_csv(args.run_dir / "cohort" / "clinical.csv", dtype={"patient_id": str})
    features = pd.read_csv(args.run_dir / "radiomics" / "features.csv", dtype={"patient_id": str})
    reader2 = pd.read_csv(args.run_dir / "radiomics" / "features_reader2.csv", dtype={"patient_id": str})
    data = clinical[["patient_id", "partition", time_col, event]].merge(features, on="patient_id")
    timings: dict[str, list[float]] = {"development": [], "evaluation": [], "one CV fit": []}
    for repeat in range(args.repeats):
        started = time.perf_counter()
        model = develop_model(data, reader2, time_col, event, plan, seed)
        timings["development"].append(time.perf_counter() - started)

        started = time.perf_counter()
        scored = data[["patient_id", time_col, event]].assign(risk_score=model.score(data))
        cutoff = choose_cutoff(scored, time_col, event, "risk_score", plan.risk_groups.cutoff,
                               pmethod=plan.risk_groups.pmethod, seed=seed)
        evaluate_cohort(scored, time_col, event, cutoff["value"], plan, plan.km_times or [0.0])
        baseline = baseline_survival(scored, time_col, event, "risk_score")
        calibration_and_decision(scored, time_col, event, baseline, plan)
        timings["evaluation"].append(time.perf_counter() - started)

        fold = data.sample(frac=2 / 3, random_state=repeat)
        started = time.perf_counter()
        develop_model(fold, reader2[reader2["patient_id"].isin(fold["patient_id"])], time_col, event, plan, seed + 1)
        timings["one CV fit"].append(time.perf_counter() - started)

    n_features = features.shape[1] - 1
    print(f"{len(data)} patients x {n_features} features, {len(reader2)} second segmentations; "
          f"{len(model.features)} features in the model; {platform.processor() or platform.machine()}")
    print("| step | median s | min s | max s |\n|---|---|---|---|")
    for step, values in timings.items():
        print(f"| {step} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |")
    total = [d + e for d, e in zip(timings["development"], timings["evaluation"], strict=True)]
    print(f"| development + evaluation | {statistics.median(total):.1f} | {min(total):.1f} | {max(total):.1f} |")
    out = Path(__file__).parent / "results" / "selection_evaluation.json"
    out.write_text(json.dumps({"n_patients": len(data), "n_features": n_features, "seconds": timings,
                               "selected": model.features, "learner_implementations": {
                                   k: v.get("implementation")
                                   for k, v in (model.selection or {}).get("learners", {}).items()},
                               "cv_fits_in_plan": (plan.evaluation.cross_validation.folds
                                                   * plan.evaluation.cross_validation.repeats
                                                   if plan.evaluation.cross_validation else 0)},
                              indent=2) + "\n")


if __name__ == "__main__":
    main()
