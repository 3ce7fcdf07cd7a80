"""Bootstrap percentile 95% intervals of a frozen score's validation measures: the IPCW Brier
score of the model, the index of prediction accuracy (IPA) and the smoothed-calibration ICI,
E50 and E90 at each time.

The cohort's patients are resampled with replacement ``replicates`` times; in each resample
the measures are recomputed with the score and the baseline survival frozen (nothing is
refitted: the intervals are the sampling uncertainty of the validation measures, not of the
model's development) by R ``calibration_replicates``, which computes them as
``calibration_at`` and ``smoothed_calibration`` do on the whole cohort. The interval is the
2.5th and 97.5th percentiles of the replicates (the percentile interval, Efron B, Tibshirani RJ
(1993), An Introduction to the Bootstrap, Chapman & Hall, chapter 13; numpy's linear
interpolation, R's quantile type 7). Austin PC, Harrell FE, van Klaveren D (2020), Stat Med
39:2714-2742, bootstrap the ICI of a survival model the same way.

The resamples are drawn on the driver from ``numpy.random.default_rng(seed)`` (the study
seed), replicate after replicate, so they do not depend on where they are computed; chunks of
``chunk`` replicates are tasks of :func:`studyrunner.cluster.run_tasks` (one R call per chunk) on
the run's Dask cluster, or in this process with ``--cluster local``: a pool of local processes,
each starting its own R, took longer than this process alone (60 patients, 200 replicates at two
times: 10.4 s on two processes, 4.0 s here). A replicate that cannot be computed
at a time (no event by t in the resample, t beyond its follow-up, a spline fit that fails) is
counted with its reason and left out of the percentiles; with fewer than half of the replicates
usable no interval is given.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.cluster import LOCAL, run_tasks
from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.statistics.r_inputs import input_columns
from studyrunner.statistics.validation import predicted_risk_from_baseline

LEVEL = 0.95
MEASURES = ("brier", "ipa", "ici", "e50", "e90")
R_COLUMNS = {"brier": "brier_model", "ipa": "ipa", "ici": "ici", "e50": "e50", "e90": "e90"}
METHOD = "percentile"
LOST = "the task computing it was lost (its cluster workers died)"

_calibration_replicates = r_function("validation", "calibration_replicates", input_errors=True,
                                     counts=("replicate", "time_index"))


@dataclass(frozen=True)
class BootstrapPlan:
    """How many replicates, from which seed, and where they run (``studyrunner.cluster``)."""

    replicates: int
    seed: int
    cluster: str = LOCAL
    chunk: int = 25


@dataclass(frozen=True)
class ReplicateChunk:
    """One task: replicates ``first + 1`` .. ``first + len(positions)`` and their resamples'
    row positions (0-based, one row of ``positions`` per replicate)."""

    first: int
    positions: np.ndarray


def resample_positions(n: int, replicates: int, seed: int) -> np.ndarray:
    """The row positions of ``replicates`` resamples of ``n`` patients drawn with replacement
    (``replicates`` x ``n``, from ``numpy.random.default_rng(seed)``)."""
    return np.random.default_rng(seed).integers(0, n, size=(replicates, n))


def risk_frame(rows: pd.DataFrame, baseline: dict[str, list[float]], times: list[float]) -> pd.DataFrame:
    """Columns time, event and risk_1.. (the frozen predicted risk by each of ``times``)."""
    lp = rows["lp"].to_numpy()
    frame = pd.DataFrame({"time": rows["time"].to_numpy(dtype=float), "event": rows["event"].to_numpy(dtype=int)})
    for k, t in enumerate(times, start=1):
        frame[f"risk_{k}"] = predicted_risk_from_baseline(baseline["time"], baseline["survival"], lp, t)
    return frame


def chunk_measures(frame: pd.DataFrame, times: list[float], chunk: ReplicateChunk) -> pd.DataFrame:
    """One task: the measures of the chunk's replicates at every time (R ``calibration_replicates``),
    one row per replicate and time; ``replicate`` numbered from 1 over the whole bootstrap."""
    risks = [f"risk_{k}" for k in range(1, len(times) + 1)]
    table = _calibration_replicates(input_columns(frame, ["time", "event", *risks]), "time", "event", risks,
                                    [float(t) for t in times], (chunk.positions + 1).ravel().tolist())
    table["replicate"] += chunk.first
    return table


def lost_chunk(n_times: int, chunk: ReplicateChunk, error: BaseException) -> pd.DataFrame:
    """The rows of a chunk whose task was lost: every replicate failed, with the reason."""
    numbers = np.arange(chunk.first + 1, chunk.first + len(chunk.positions) + 1)
    return pd.DataFrame({"replicate": np.repeat(numbers, n_times),
                         "time_index": np.tile(np.arange(1, n_times + 1), len(numbers)),
                         **dict.fromkeys(R_COLUMNS.values(), np.nan), "failure": LOST})


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> dict[str, float]:
    """The bootstrap percentile interval (Efron & Tibshirani 1993, ch. 13)."""
    tail = 100 * (1 - level) / 2
    lower, upper = np.percentile(values, [tail, 100 - tail])
    return {"lower": float(lower), "upper": float(upper)}


def summarise_replicates(table: pd.DataFrame, replicates: int, seed: int) -> dict[str, Any]:
    """The bootstrap record of one time: counts, failures by reason and each measure's interval."""
    failure = table["failure"].where(table["failure"].notna(), None)
    used = table[failure.isna()]
    record: dict[str, Any] = {
        "method": METHOD, "level": LEVEL, "replicates": replicates, "seed": seed, "used": len(used),
        "failed": int(failure.notna().sum()), "failures": dict(Counter(failure.dropna()))}
    if len(used) < max(2, replicates / 2):
        record["reason"] = (f"only {len(used)} of {replicates} bootstrap replicates could be computed "
                            "(fewer than half): no interval")
        return record
    for measure, column in R_COLUMNS.items():
        record[measure] = percentile_interval(used[column].to_numpy(dtype=float))
    return record


def bootstrap_calibration(rows: pd.DataFrame, baseline: dict[str, list[float]], times: list[float],
                          keys: list[str], plan: BootstrapPlan) -> dict[str, dict[str, Any]]:
    """Per time key: the bootstrap record (:func:`summarise_replicates`) of the frozen score in
    ``rows`` (columns time, event, lp) with the ``baseline`` survival (module docstring)."""
    frame = risk_frame(rows, baseline, times)
    positions = resample_positions(len(frame), plan.replicates, plan.seed)
    chunks = [ReplicateChunk(first, positions[first:first + plan.chunk])
              for first in range(0, plan.replicates, plan.chunk)]
    tables = run_tasks(chunk_measures, chunks, frame, list(times), cluster=plan.cluster,
                       on_lost=functools.partial(lost_chunk, len(times)))
    table = pd.concat(tables, ignore_index=True)
    return {key: to_jsonable(summarise_replicates(table[table["time_index"] == k], plan.replicates, plan.seed))
            for k, key in enumerate(keys, start=1)}
