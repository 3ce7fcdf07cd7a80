"""The statistics stage: everything estimated from the cohort, in R.

Reads the cohort (cohort/clinical.csv), the radiomics features (radiomics/features.csv and
the second reader's, when there is one) and, with CNN predictors, deep/. Writes Table 1
(``table_one.json``), the radiomics model (``radiomics_model``) and the CNN scores
(``cnn_scores``) into the stage folder. A synthetic cohort's true linear predictors
(truth.csv beside its generated clinical table) give the oracle C-index beside each model's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from studyrunner.protocol import LoadedProtocol, TimeToEventEndpoint
from studyrunner.run_folder import read_json, write_json
from studyrunner.statistics.cohorts import default_km_times
from studyrunner.statistics.radiomics_model.stage import develop_and_evaluate
from studyrunner.statistics.table_one import table_one
from studyrunner.statistics.tripod_items import tripod_record

Progress = Callable[[int, int], None]



def truth_file(loaded: LoadedProtocol) -> Path | None:
    """The synthetic generator's truth.csv beside the clinical table (None for real data)."""
    protocol = loaded.protocol
    if not protocol.study.synthetic:
        return None
    path = loaded.resolve(protocol.cohort.clinical_table).parent / "truth.csv"
    return path if path.is_file() else None


def read_table(path: Path) -> pd.DataFrame | None:
    """A per-patient CSV of an earlier stage, or None when the stage did not write it."""
    return pd.read_csv(path, dtype={"patient_id": str}) if path.is_file() else None


def nothing_to_analyse(run_dir: Path, training: Sequence[str]) -> str | None:
    """Why the statistics stage cannot run on the run in ``run_dir``, or None when it can: no
    patient has radiomics features (each excluded case is in the participant flow with its
    reason), or none of those who have them is in the training partitions."""
    features = read_table(run_dir / "radiomics" / "features.csv")
    if features is None or features.empty:
        summary = read_json(run_dir / "cohort" / "summary.json")
        excluded = Counter(e["stage"] for stage in ("images", "radiomics")
                           for e in (read_table_json(run_dir / stage / "exclusions.json")))
        by_stage = ", ".join(f"{n} at the {stage} stage" for stage, n in excluded.items())
        return (f"no patient is left to analyse: of {summary['n_eligible']} eligible patients, "
                f"{sum(excluded.values())} were excluded ({by_stage or 'none listed'}) and none has "
                "radiomics features; the participant flow lists each exclusion with its reason")
    clinical = pd.read_csv(run_dir / "cohort" / "clinical.csv", dtype={"patient_id": str})
    kept = clinical[clinical["patient_id"].isin(features["patient_id"])]
    if not kept["partition"].isin(training).any():
        return (f"no patient left to analyse is in the training partitions ({', '.join(training)}): "
                "no model can be developed")
    return None


def read_table_json(path: Path) -> list:
    """A JSON list an earlier stage wrote (exclusions), empty when the stage did not write it."""
    return read_json(path) if path.is_file() else []


def run_statistics(loaded: LoadedProtocol, run_dir: Path, stage_dir: Path, workers: int = 1,
                   progress: Progress | None = None, cluster: str = "local") -> None:
    """Table 1, the radiomics model and the CNN scores of the run in ``run_dir`` into ``stage_dir``;
    the cross-validation fits and the calibration's bootstrap replicates run where ``cluster`` says
    (:mod:`studyrunner.cluster`)."""
    protocol = loaded.protocol
    clinical = pd.read_csv(run_dir / "cohort" / "clinical.csv", dtype={"patient_id": str})
    features = pd.read_csv(run_dir / "radiomics" / "features.csv", dtype={"patient_id": str})
    reader2 = read_table(run_dir / "radiomics" / "features_reader2.csv")
    truth_path = truth_file(loaded)
    truth = read_table(truth_path) if truth_path is not None else None

    develop_and_evaluate(protocol, clinical, features, reader2, stage_dir, truth, workers, progress, cluster)
    write_json(stage_dir / "table_one.json", baseline_table(loaded, clinical))
    write_json(stage_dir / "tripod.json", tripod_record(protocol, clinical, features["patient_id"], stage_dir))
    if protocol.statistics.risk_scores is not None:
        from studyrunner.statistics.cnn_scores.stage import evaluate_cnn_scores

        km_times = protocol.statistics.km_times or default_km_times(clinical[protocol.primary_endpoint().time])
        evaluate_cnn_scores(protocol, clinical, run_dir / "deep", features, stage_dir, km_times, truth,
                            cluster=cluster)


def baseline_table(loaded: LoadedProtocol, clinical: pd.DataFrame) -> dict:
    """Table 1 by cohort with p-values (chi-square or Fisher; Mann-Whitney), as in the nsclc_ici paper;
    each time-to-event endpoint as its Kaplan-Meier median and reverse Kaplan-Meier median follow-up
    (log-rank test) in place of a median (IQR) of its observed times."""
    protocol = loaded.protocol
    split = protocol.cohort.split
    groups: dict[str, pd.Series] = {"Total": pd.Series(True, index=clinical.index)}
    comparisons = []
    if split.test:
        groups["Training"] = clinical["partition"].isin(split.training)
        if len(split.training) > 1:
            groups.update({p.capitalize(): clinical["partition"] == p for p in split.training})
            comparisons.append((split.training[0].capitalize(), split.training[1].capitalize()))
        groups["Test"] = clinical["partition"].isin(split.test)
        comparisons.append(("Training", "Test"))
    variables = protocol.cohort.baseline_variables
    table = clinical.copy()
    for v in variables:  # show levels in the protocol's order
        if v.type == "categorical" and v.levels:
            table[v.column] = pd.Categorical(table[v.column].astype("string"), categories=v.levels)
    survival = {f"{e.label} ({e.unit})": (e.time, e.event) for e in protocol.endpoints.values()
                if isinstance(e, TimeToEventEndpoint)}
    times = {time for time, _ in survival.values()}  # summarised by Kaplan-Meier, not median (IQR)
    return table_one(
        table, groups=groups, comparisons=comparisons,
        categorical={v.column: v.label for v in variables if v.type == "categorical"},
        continuous={v.column: v.label for v in variables if v.type == "continuous" and v.column not in times},
        time_to_event=survival,
    )
