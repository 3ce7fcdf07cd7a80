"""Bootstrap percentile intervals of a frozen score's Brier score, IPA, ICI, E50 and E90
(studyrunner/statistics/bootstrap_calibration.py, R ``calibration_replicates``), checked against a
numpy IPCW Brier score with a hand Kaplan-Meier censoring distribution on the same resamples,
R's own survfit curves for the ICI, the failed replicates counted by hand, and a Dask cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from studyrunner.report.formatting import fmt_bootstrap
from studyrunner.statistics.bootstrap_calibration import (
    BootstrapPlan,
    ReplicateChunk,
    bootstrap_calibration,
    chunk_measures,
    risk_frame,
)
from studyrunner.statistics.frozen_calibration import frozen_calibration
from tests.test_validation_statistics import brier_numpy, km_step, r_value

pytestmark = pytest.mark.needs_r

TIMES = [1.0, 2.0]
KEYS = ["1", "2"]
SEED = 20240611


@pytest.fixture(scope="module")
def cohort() -> tuple[pd.DataFrame, dict[str, list[float]]]:
    """80 patients with a frozen lp (a little off the truth) and a baseline survival S0(t) = exp(-0.4 t)."""
    rng = np.random.default_rng(5)
    n = 80
    true_lp = rng.normal(scale=0.8, size=n)
    event_time = rng.exponential(2.5 * np.exp(-true_lp))
    censor_time = rng.uniform(0.5, 4.0, size=n)
    rows = pd.DataFrame({"time": np.minimum(event_time, censor_time),
                         "event": (event_time <= censor_time).astype(int), "lp": 0.8 * true_lp + 0.1})
    grid = np.linspace(0.05, 4.0, 80)
    return rows, {"time": list(grid), "survival": list(np.exp(-0.4 * grid))}


def reference_replicates(rows: pd.DataFrame, t: float, replicates: int, seed: int) -> pd.DataFrame:
    """Brier (model, null) and IPA of each resample in numpy: the resamples drawn as documented
    (``default_rng(seed).integers(0, n, (replicates, n))``), the risk 1 - exp(-0.4 t)^exp(lp)."""
    positions = np.random.default_rng(seed).integers(0, len(rows), size=(replicates, len(rows)))
    time, event = rows["time"].to_numpy(), rows["event"].to_numpy()
    risk = 1 - np.exp(-0.4 * t) ** np.exp(rows["lp"].to_numpy())
    out = []
    for rows_b in positions:
        tb, eb = time[rows_b], event[rows_b]
        null = 1 - km_step(tb, eb, np.array([t]))[0]
        model = brier_numpy(tb, eb, risk[rows_b], t)
        baseline = brier_numpy(tb, eb, np.full(len(tb), null), t)
        out.append({"brier": model, "ipa": 1 - model / baseline})
    return pd.DataFrame(out)


def test_percentile_intervals_match_a_numpy_reference_on_the_same_resamples(cohort) -> None:
    rows, baseline = cohort
    records = bootstrap_calibration(rows, baseline, TIMES, KEYS, BootstrapPlan(60, SEED, chunk=25))
    for key, t in zip(KEYS, TIMES, strict=True):
        reference = reference_replicates(rows, t, 60, SEED)
        record = records[key]
        assert (record["replicates"], record["used"], record["failed"], record["failures"]) == (60, 60, 0, {})
        for measure in ("brier", "ipa"):
            lower, upper = np.percentile(reference[measure], [2.5, 97.5])
            assert record[measure]["lower"] == pytest.approx(lower, abs=1e-12)
            assert record[measure]["upper"] == pytest.approx(upper, abs=1e-12)
        assert 0 < record["ici"]["lower"] < record["ici"]["upper"] < 0.5
        assert record["e50"]["lower"] <= record["e90"]["upper"]


def test_a_replicate_ici_equals_the_survfit_curves_of_its_resample(cohort) -> None:
    """The replicate's ICI/E90 (one survfit curve scaled by exp(lp)) against R's survfit on every
    row of the resample (the per-row curves the smoothed calibration was first computed with)."""
    rows, baseline = cohort
    frame = risk_frame(rows, baseline, TIMES)
    positions = np.random.default_rng(1).integers(0, len(rows), size=(2, len(rows)))
    table = chunk_measures(frame, TIMES, ReplicateChunk(0, positions))
    for b in range(2):
        resample = frame.iloc[positions[b]].reset_index(drop=True)
        errors = r_value(
            "r <- d$risk_2; cl <- pmin(pmax(r, 1e-8), 1 - 1e-8); x <- data.frame(cll = log(-log(1 - cl)));"
            "fit <- survival::coxph(survival::Surv(d$time, d$event) ~ splines::ns(cll, df = 3), data = x);"
            "s <- summary(survival::survfit(fit, newdata = x), times = 2, extend = TRUE)$surv;"
            "e <- abs(1 - as.numeric(s) - r); c(ici = mean(e), e90 = unname(quantile(e, 0.9)))", d=resample)
        row = table[(table["replicate"] == b + 1) & (table["time_index"] == 2)].iloc[0]
        assert row["ici"] == pytest.approx(errors["ici"], abs=1e-12)
        assert row["e90"] == pytest.approx(errors["e90"], abs=1e-12)


def test_the_intervals_are_deterministic_for_a_seed(cohort) -> None:
    rows, baseline = cohort
    first = bootstrap_calibration(rows, baseline, TIMES, KEYS, BootstrapPlan(20, SEED, chunk=7))
    again = bootstrap_calibration(rows, baseline, TIMES, KEYS, BootstrapPlan(20, SEED, chunk=20))
    other = bootstrap_calibration(rows, baseline, TIMES, KEYS, BootstrapPlan(20, SEED + 1))
    assert first == again  # the chunking (the tasks) does not change the replicates
    assert first["1"]["brier"] != other["1"]["brier"]


def test_a_dask_cluster_gives_the_local_intervals(cohort) -> None:
    rows, baseline = cohort
    here = bootstrap_calibration(rows, baseline, TIMES, KEYS, BootstrapPlan(20, SEED, chunk=10))
    on_dask = bootstrap_calibration(rows, baseline, TIMES, KEYS, BootstrapPlan(20, SEED, cluster="dask:2", chunk=10))
    assert on_dask == here


def test_failed_replicates_are_counted_not_fatal() -> None:
    """One patient has the only event by t = 1: the resamples without him have no event by t
    and fail; their number is counted by hand from the same resamples."""
    n = 24
    time = np.concatenate([[0.5], np.linspace(1.5, 4.0, n - 1)])
    event = np.array([1] + [1, 0] * ((n - 1) // 2) + [1])
    rows = pd.DataFrame({"time": time, "event": event, "lp": np.linspace(-1, 1, n)})
    baseline = {"time": [0.5, 2.0, 4.0], "survival": [0.9, 0.6, 0.3]}
    replicates = 40
    record = bootstrap_calibration(rows, baseline, [1.0], ["1"], BootstrapPlan(replicates, 3))["1"]
    positions = np.random.default_rng(3).integers(0, n, size=(replicates, n))
    without_early_event = int(np.sum(~np.any(positions == 0, axis=1)))
    assert without_early_event > 0
    assert record["failed"] == without_early_event
    assert record["failures"] == {"no event by t in the resample": without_early_event}
    assert record["used"] == replicates - without_early_event
    if record["used"] >= replicates / 2:
        assert record["brier"]["lower"] <= record["brier"]["upper"]
    # no event by t in the cohort itself: every replicate fails, and no interval is given
    none = bootstrap_calibration(rows.assign(event=0).iloc[1:].assign(event=lambda d: (d.time > 3.9).astype(int)),
                                 baseline, [1.0], ["1"], BootstrapPlan(10, 3))["1"]
    assert (none["used"], none["failed"]) == (0, 10)
    assert "no interval" in none["reason"]
    assert "brier" not in none


def test_frozen_calibration_records_the_bootstrap_beside_its_point_estimates(cohort) -> None:
    rows, baseline = cohort
    record = frozen_calibration(rows, baseline, TIMES, KEYS, 3, BootstrapPlan(20, SEED))
    plain = frozen_calibration(rows, baseline, TIMES, KEYS, 3)
    for key in KEYS:
        at = record["at"][key]
        assert {k: v for k, v in at.items() if k != "bootstrap"} == plain["at"][key]
        assert at["bootstrap"]["replicates"] == 20
        assert "bootstrap" not in plain["at"][key]
    assert frozen_calibration(rows, baseline, TIMES, KEYS, 3, BootstrapPlan(0, SEED)) == plain


def test_fmt_bootstrap_prints_the_interval_beside_the_estimate() -> None:
    boot = {"brier": {"lower": 0.1523, "upper": 0.2141}, "reason": None}
    assert fmt_bootstrap(0.1834, boot, "brier") == "0.183 (0.152–0.214)"
    assert fmt_bootstrap(0.1834, None, "brier") == "0.183"  # no bootstrap asked for
    assert fmt_bootstrap(0.1834, {"reason": "too few"}, "ici") == "0.183 (—)"
