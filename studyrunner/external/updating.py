"""Model updating (TRIPOD+AI items 12f and 24), only when a validation protocol asks for it:
the frozen model stays as it is, and an updated one is reported beside it.

Two of the standard updating methods for a Cox model (Steyerberg EW, Clinical Prediction
Models, 2nd ed. 2019, ch. 20; Van Houwelingen HC (2000), Stat Med 19:3401-3415):

- ``baseline``: recalibration in the large: the frozen linear predictor (LP), with the
  baseline survival re-estimated on this cohort (Breslow, the LP as an offset);
- ``slope``: the LP multiplied by the calibration slope (the coefficient of the LP in a Cox
  model on this cohort), then the baseline survival re-estimated for the rescaled LP.

Each returns the updated model's slope and baseline survival; its calibration at the
protocol's times is computed like the frozen model's. On the cohort it was updated on, an
updated model is calibrated by construction (an apparent, optimistic assessment), which the
report says.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd

from studyrunner.statistics.baseline_survival import baseline_survival
from studyrunner.statistics.validation import calibration_at, calibration_slope, predicted_risk_from_baseline

UpdatingMethod = Literal["baseline", "slope"]
UPDATING_METHODS: dict[str, str] = {
    "baseline": "recalibration in the large (baseline survival re-estimated, LP unchanged)",
    "slope": "slope recalibration of the linear predictor (LP times the calibration slope, baseline re-estimated)",
}


def updated_model(rows: pd.DataFrame, method: UpdatingMethod) -> dict[str, Any]:
    """The updated model of ``rows`` (columns time, event, lp): {"method", "description",
    "slope", "baseline_survival"}; its LP is ``slope`` x the frozen LP."""
    slope = 1.0 if method == "baseline" else float(calibration_slope(rows, "time", "event", "lp")["slope"])
    baseline = baseline_survival(rows.assign(lp=slope * rows["lp"]), "time", "event", "lp")
    return {"method": method, "description": UPDATING_METHODS[method], "slope": slope, "baseline_survival": baseline}


def updated_calibration(rows: pd.DataFrame, model: dict[str, Any], times: list[float], keys: list[str],
                        groups: int) -> dict[str, Any]:
    """The updated model's calibration at each time (apparent: on the cohort it was updated on)."""
    lp = model["slope"] * rows["lp"].to_numpy()
    baseline = model["baseline_survival"]
    return {key: calibration_at(rows.assign(risk=predicted_risk_from_baseline(baseline["time"], baseline["survival"],
                                                                              lp, t)),
                                "time", "event", "risk", t, groups)
            for key, t in zip(keys, times, strict=True)}
