"""Calibration of a frozen Cox score: its predicted risk by t is 1 - S0(t)^exp(score), with
S0 the Breslow baseline survival of the cohort it was developed on; nothing is refitted
except the one-coefficient model of the calibration slope. Shared by the development
statistics (a score's calibration in its training cohort, apparent, and its test cohort) and
the external validation. Methods in ``statistics.validation``: Kaplan-Meier observed risk and
O/E (Debray TPA et al. (2017), BMJ 356:i6460), IPCW Brier score (Graf E et al. (1999), Stat Med
18:2529-2545), smoothed calibration and ICI (Austin PC et al. (2020), Stat Med 39:2714-2742),
calibration slope (van Houwelingen HC (2000), Stat Med 19:3401-3415). With a ``BootstrapPlan``, each
time also gets bootstrap percentile intervals of the Brier score, IPA, ICI, E50 and E90
(``statistics.bootstrap_calibration``; the O/E keeps its analytic interval).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from studyrunner.statistics.bootstrap_calibration import BootstrapPlan, bootstrap_calibration
from studyrunner.statistics.validation import (
    calibration_at,
    calibration_slope,
    predicted_risk_from_baseline,
    smoothed_calibration,
)


def frozen_calibration(rows: pd.DataFrame, baseline: dict[str, list[float]], times: list[float], keys: list[str],
                groups: int, bootstrap: BootstrapPlan | None = None) -> dict[str, Any]:
    """Calibration of the frozen predicted risk at each time, and the calibration slope; with
    ``bootstrap`` (and replicates > 0) each time's ``bootstrap`` record of percentile intervals."""
    slope = calibration_slope(rows, "time", "event", "lp")
    by_time: dict[str, Any] = {}
    for key, t in zip(keys, times, strict=True):
        risk = predicted_risk_from_baseline(baseline["time"], baseline["survival"], rows["lp"].to_numpy(), t)
        scored = rows.assign(risk=risk)
        by_time[key] = {**calibration_at(scored, "time", "event", "risk", t, groups),
                        "smoothed": smoothed_calibration(scored, "time", "event", "risk", t)}
    if bootstrap is not None and bootstrap.replicates > 0:
        for key, record in bootstrap_calibration(rows, baseline, times, keys, bootstrap).items():
            by_time[key]["bootstrap"] = record
    return {"slope": slope, "at": by_time}
