"""The Cox nomogram as drawable numbers: typed Python entry point to ``rscripts/nomogram.R``.

Method: rms::cph and rms::nomogram (Harrell FE (2015), Regression Modeling Strategies, 2nd
ed., Springer, Sections 10.9 and 20.1); details in the R script.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from studyrunner.errors import InputError
from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.registry import time_key
from studyrunner.statistics.r_inputs import as_list, input_columns, levels_for_r, text_columns_for_r

_nomogram_points = r_function("nomogram", "nomogram_points", input_errors=True,
                              counts=("n", "n_events", "n_excluded"))

DEFAULT_FUN_AT = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
"""Survival probabilities marked on the nomogram's survival axes (those in range)."""


def nomogram_points(df: pd.DataFrame, time: str, event: str, covariates: Sequence[str],
                    times: Sequence[float],
                    categorical_levels: Mapping[str, Sequence[Any]] | None = None,
                    funlabels: Sequence[str] | None = None, **control: Any) -> dict[str, Any]:
    """A Cox nomogram (rms::cph + rms::nomogram) with survival-probability axes at
    ``times``, as the numbers needed to draw it (R ``nomogram_points``).

    ``funlabels``: one label per time (default "Survival probability at <t>"); ``control``:
    the other settings of R's ``nomogram_control`` (``fun_at`` = :data:`DEFAULT_FUN_AT`,
    ``grid_size`` = 201, ``axis_ticks`` = 10, ``q_display`` = (0, 1)).

    Returns::

        {"predictors": {covariate: {"values": [tick labels], "value_numeric": [... or None],
                                    "xbeta": [...], "points": [...]}},
         "total_points": [ticks of the total-points axis],
         "lp_axis": {"lp": [...], "total_points": [...]},
         "survival_axes": {label: {"time", "survival": [...], "total_points": [...]}},
         "survival_grid": {time_key: {"total_points": [...], "lp": [...], "survival": [...]}},
         "points_scale", "points_intercept",     # lp = total_points / scale + intercept
         "coefficients": {term: coef}, "center",
         "patients": [{"row", "lp", "total_points", "survival": {time_key: S(t)}}],
         "n", "n_events", "n_excluded"}

    ``lp`` is rms's centred linear predictor; a patient's survival is rms::survest.
    ``time_key`` is :func:`studyrunner.registry.time_key`.
    """
    values = [float(t) for t in times]
    if not values:
        raise InputError("nomogram_points: at least one time is needed")
    settings = {"funlabels": None if funlabels is None else [str(label) for label in funlabels],
                "fun_at": [float(p) for p in control.pop("fun_at", DEFAULT_FUN_AT)],
                "grid_size": int(control.pop("grid_size", 201)), **control}
    frame = text_columns_for_r(input_columns(df, [time, event, *covariates]))
    result = _nomogram_points(frame, time, event, list(covariates), values,
                              levels_for_r(categorical_levels), settings)
    return to_jsonable(_shape_nomogram(result))


def _shape_nomogram(result: dict[str, Any]) -> dict[str, Any]:
    """R's nomogram tables as nested dicts keyed by predictor, axis label, time and row."""
    predictors = {}
    for name, axis in result["predictors"].groupby("predictor", sort=False):
        predictors[name] = {"values": axis["value"].tolist(),
                            "value_numeric": axis["value_numeric"].tolist(),
                            "xbeta": axis["xbeta"].tolist(), "points": axis["points"].tolist()}
    axes = {label: {"time": float(axis["time"].iloc[0]), "survival": axis["survival"].tolist(),
                    "total_points": axis["total_points"].tolist()}
            for label, axis in result["survival_axes"].groupby("label", sort=False)}
    grid = {time_key(t): {column: part[column].tolist()
                          for column in ("total_points", "lp", "survival")}
            for t, part in result["survival_grid"].groupby("time", sort=False)}
    survival = result["patient_survival"]
    per_row = {row: {time_key(t): s for t, s in zip(part["time"], part["survival"], strict=True)}
               for row, part in survival.groupby("row", sort=False)}
    patients = [{"row": row.row, "lp": row.lp, "total_points": row.total_points,
                 "survival": per_row[row.row]}
                for row in result["patients"].itertuples(index=False)]
    coefficients = result["coefficients"]
    return {"predictors": predictors,
            "total_points": as_list(result["total_points"]),
            "lp_axis": {"lp": result["lp_axis"]["lp"].tolist(),
                        "total_points": result["lp_axis"]["total_points"].tolist()},
            "survival_axes": axes, "survival_grid": grid,
            "points_scale": result["points_scale"],
            "points_intercept": result["points_intercept"],
            "coefficients": dict(zip(coefficients["term"], coefficients["coef"], strict=True)),
            "center": result["center"], "patients": patients,
            "n": result["n"], "n_events": result["n_events"], "n_excluded": result["n_excluded"]}
