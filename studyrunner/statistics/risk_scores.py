"""Survival statistics of deep-learning risk scores (seed 000: He et al. (2022), Transl Lung
Cancer Res 11:670-685): from a network's risk vector to OSRS/PFSRS, their fusion into MOSRS,
cut-offs, C-index comparison, Cox tables, the nomogram and subgroups.

Typed Python entry points to ``rscripts/risk_scores.R``; the statistics are computed in R
(survival, rms, maxstat) and returned as plain, JSON-serialisable Python (NaN/NA -> ``None``).
An error in the input (a missing column, a missing or non-numeric value, an unknown level)
raises :class:`studyrunner.errors.InputError` with R's message, which names the column and
the rows.

Methods (details and formulas in the R script):
    backward selection  Wald-p backward elimination in a Cox model (Cox DR (1972), J R Stat
                        Soc B 34:187-220; Efron ties; Hosmer, Lemeshow & May (2008), Applied
                        Survival Analysis, Section 5.3).
    fusion              Cox linear predictor of several scores; a score's share is
                        |coef| SD / sum |coef| SD.
    X-tile cut-off      maximal log-rank chi-square over all splits (Camp RL, Dolled-Filhart M,
                        Rimm DL (2004), Clin Cancer Res 10:7252-7259), with maxstat's Lau94
                        p-value corrected for the search (Lausen, Sauerbrei & Schumacher 1994).
    C-index comparison  Harrell's C (Harrell FE et al. (1996), Stat Med 15:361-387) and the
                        joint infinitesimal-jackknife variance of survival::concordance
                        (Therneau T, Atkinson E, "The concordance statistic", survival vignette).
    nomogram            rms::cph and rms::nomogram (Harrell FE (2015), Regression Modeling
                        Strategies, 2nd ed.).
    subgroups           Kaplan-Meier, log-rank and Cox hazard ratio per subgroup
                        (``evaluate_risk_score``).

A cohort other than the fitting one is scored with
:func:`studyrunner.statistics.survival_model.linear_predictor` and the ``lp_coefficients``
(or ``fused_coefficients``) of the fitting cohort.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.errors import InputError
from studyrunner.rbridge import RError, RFunction, json_ready, r_function
from studyrunner.statistics.score_performance import time_key
from studyrunner.statistics.survival_model import select_columns, shape_group_curves

_backward_cox_selection = r_function("risk_scores", "backward_cox_selection")
_fuse_scores = r_function("risk_scores", "fuse_scores")
_xtile_cutpoint = r_function("risk_scores", "xtile_cutpoint")
_compare_concordance = r_function("risk_scores", "compare_concordance")
_cox_table = r_function("risk_scores", "cox_table")
_nomogram_points = r_function("risk_scores", "nomogram_points")
_subgroup_hazard = r_function("risk_scores", "subgroup_hazard")

DEFAULT_FUN_AT = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
"""Survival probabilities marked on the nomogram's survival axes (those in range)."""


def _columns(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The named columns of ``df`` (each once); InputError naming the missing ones."""
    try:
        return select_columns(df, columns)
    except KeyError as error:
        raise InputError(error.args[0]) from error


def _text_columns_for_r(frame: pd.DataFrame) -> pd.DataFrame:
    """Non-numeric columns as text with None for a missing value (rpy2 converts a column
    mixing str and NaN only through a warning and a fallback)."""
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            frame[column] = [None if pd.isna(v) else str(v) for v in values.astype(object)]
    return frame


def _call(function: RFunction, *args: Any, **kwargs: Any) -> Any:
    """Call R; an R error (bad input: R names the column and rows) becomes InputError."""
    try:
        return function(*args, **kwargs)
    except RError as exc:
        raise InputError(f"{function.name}: {exc.r_message}") from exc


def _as_list(value: Any) -> list[Any]:
    """R's length-one vectors come back as scalars and empty ones as None: always a list."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    return [value]


def _named(value: Any) -> dict[str, float]:
    """A named R numeric vector (dict) as {name: float}."""
    return {str(k): float(v) for k, v in dict(value).items()}


def _counts(result: dict[str, Any], keys: Sequence[str]) -> None:
    for key in keys:
        if result.get(key) is not None:
            result[key] = int(result[key])


def _levels_to_r(levels: Mapping[str, Sequence[Any]] | None) -> dict[str, list[Any]] | None:
    if not levels:
        return None
    return {str(column): list(values) for column, values in levels.items()}


def backward_cox_selection(df: pd.DataFrame, time: str, event: str, candidates: Sequence[str],
                           p_threshold: float = 0.05) -> dict[str, Any]:
    """Backward elimination of risk-vector scores in a Cox model by Wald p-value
    (R ``backward_cox_selection``): from the full model, drop the term with the largest p
    while p > ``p_threshold``; at least one term is kept (``note`` says when its p is above
    the threshold).

    Returns::

        {"kept": [terms],
         "coefficients": [{"term", "coef", "se", "hr", "hr_lower", "hr_upper", "z", "p"}],
         "steps": [{"step", "dropped", "p", "n_terms"}],   # p in the model dropped from
         "lp_coefficients": {term: coef},                   # combined score = sum coef*score
         "score": [combined score of each row],             # uncentred, e.g. OSRS
         "note", "concordance", "n", "n_events", "p_threshold"}
    """
    result = _call(_backward_cox_selection, _columns(df, [time, event, *candidates]), time,
                   event, list(candidates), float(p_threshold))
    result["kept"] = _as_list(result["kept"])
    result["lp_coefficients"] = _named(result["lp_coefficients"])
    result["score"] = np.atleast_1d(np.asarray(result["score"], dtype=float))
    _counts(result, ("n", "n_events"))
    result["steps"] = result["steps"].astype({"step": int, "n_terms": int})
    return json_ready(result)


def fuse_scores(df: pd.DataFrame, time: str, event: str, scores: Sequence[str]) -> dict[str, Any]:
    """Cox fusion of scores, e.g. MOSRS = linear predictor of ``Surv(os) ~ OSRS + PFSRS``
    fitted on the training cohort (R ``fuse_scores``).

    Returns::

        {"coefficients": [{"term", "coef", "se", "hr", "hr_lower", "hr_upper", "z", "p"}],
         "fused_coefficients": {term: coef},
         "shares": [{"term", "coef", "sd", "contribution", "share"}],
         "score": [fused score of each row], "concordance", "n", "n_events"}

    ``share`` = |coef| SD(score) / sum over the scores of |coef| SD (SD over these rows):
    each score's part of the fused score's spread, the seed's "proportion of PFSRS in
    MOSRS". The seed's check of OSRS in a PFS model is this function on the PFS outcome
    (the p-value of OSRS in ``coefficients``).
    """
    result = _call(_fuse_scores, _columns(df, [time, event, *scores]), time, event,
                   list(scores))
    result["fused_coefficients"] = _named(result["fused_coefficients"])
    result["score"] = np.atleast_1d(np.asarray(result["score"], dtype=float))
    _counts(result, ("n", "n_events"))
    return json_ready(result)


def xtile_cutpoint(df: pd.DataFrame, time: str, event: str, marker: str,
                   min_prop: float = 0.1) -> dict[str, Any]:
    """X-tile-style cut-off: the split (low: marker <= cutpoint, high: marker > cutpoint)
    with the largest log-rank chi-square among all distinct marker values leaving at least
    ceil(``min_prop`` n) patients in each group (R ``xtile_cutpoint``; Camp et al. 2004).

    Returns::

        {"cutpoint", "chisq", "p_naive", "n_cutoffs", "n_low", "n_high", "min_group_size",
         "scan": [{"cutpoint", "n_low", "n_high", "chisq", "p_naive"}],  # every candidate
         "p_corrected", "corrected_method", "maxstat_cutpoint", "maxstat_statistic",
         "corrected_reason", "n", "n_events"}

    ``p_naive`` ignores the search over ``n_cutoffs`` splits and is optimistic;
    ``p_corrected`` is maxstat's Lau94 p-value of the maximally selected standardised
    log-rank statistic over the min_prop..1-min_prop quantiles (not X-tile's Monte-Carlo
    p); maxstat's own best cut-off is reported beside it and may differ.
    """
    result = _call(_xtile_cutpoint, _columns(df, [time, event, marker]), time, event, marker,
                   float(min_prop))
    _counts(result, ("n_cutoffs", "n_low", "n_high", "min_group_size", "n", "n_events"))
    result["scan"] = result["scan"].astype({"n_low": int, "n_high": int})
    return json_ready(result)


def compare_concordance(df: pd.DataFrame, time: str, event: str, score_a: str,
                        score_b: str) -> dict[str, Any]:
    """Harrell's C of two scores on the same patients and the z-test of their difference
    with the joint variance of survival::concordance (R ``compare_concordance``).

    Returns::

        {"c_a", "c_b", "se_a", "se_b", "cov_ab", "diff", "se_diff", "z", "p", "test_reason",
         "comparable_pairs", "misordered_a", "misordered_b",
         "counts": [{"score", "concordant", "discordant", "tied_x", "tied_y", "tied_xy"}],
         "per_patient": [{"row", "misordered_a", "misordered_b", "comparable"}],
         "n", "n_events"}

    A comparable pair is an event at t_i and a patient followed beyond t_i (or censored at
    t_i); it is mis-ordered when the earlier-event patient has the lower score, and counts
    1/2 when the scores tie, so C = 1 - misordered / comparable_pairs. ``per_patient``
    counts, for each patient (``row`` = index label), the mis-ordered comparable pairs they
    belong to (seed Figure 3C, "patient sorting errors"); each pair counts for both members.
    """
    result = _call(_compare_concordance, _columns(df, [time, event, score_a, score_b]), time,
                   event, score_a, score_b)
    _counts(result, ("n", "n_events", "comparable_pairs"))
    return json_ready(result)


def cox_table(df: pd.DataFrame, time: str, event: str, covariates: Sequence[str],
              categorical_levels: Mapping[str, Sequence[Any]] | None = None,
              p_enter: float = 0.05, force: Sequence[str] = ()) -> dict[str, Any]:
    """Univariate Cox model of each covariate, and a multivariable model of those with
    univariate p < ``p_enter`` plus those in ``force`` (R ``cox_table``).

    ``categorical_levels`` maps a column to its levels, reference first; such a covariate
    gives one row per non-reference level (its entry p is the likelihood-ratio test over its
    levels when it has more than two). Each univariate model uses the rows where the
    covariate is known; the multivariable model the complete cases.

    Returns::

        {"univariate": [{"covariate", "level", "reference", "n_level", "n", "n_events",
                         "coef", "se", "hr", "hr_lower", "hr_upper", "p", "p_overall",
                         "p_overall_test", "entered", "message"}],
         "multivariable": [{"covariate", "level", "reference", "coef", "se", "hr",
                            "hr_lower", "hr_upper", "p", "message"}],
         "entered": [covariates], "n", "n_events", "n_excluded", "p_enter", "note"}

    ``level``/``reference`` are None for a numeric covariate (HR per unit).
    """
    frame = _text_columns_for_r(_columns(df, [time, event, *covariates]))
    result = _call(_cox_table, frame, time, event, list(covariates),
                   _levels_to_r(categorical_levels), float(p_enter), list(force) or None)
    result["entered"] = _as_list(result["entered"])
    _counts(result, ("n", "n_events", "n_excluded"))
    return json_ready(result)


def nomogram_points(df: pd.DataFrame, time: str, event: str, covariates: Sequence[str],
                    times: Sequence[float],
                    categorical_levels: Mapping[str, Sequence[Any]] | None = None,
                    funlabels: Sequence[str] | None = None,
                    fun_at: Sequence[float] = DEFAULT_FUN_AT,
                    grid_size: int = 201) -> dict[str, Any]:
    """A Cox nomogram (rms::cph + rms::nomogram) with survival-probability axes at
    ``times``, as the numbers needed to draw it (R ``nomogram_points``).

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
    ``time_key`` is :func:`studyrunner.statistics.score_performance.time_key`.
    """
    values = [float(t) for t in times]
    if not values:
        raise InputError("nomogram_points: at least one time is needed")
    labels = None if funlabels is None else [str(label) for label in funlabels]
    frame = _text_columns_for_r(_columns(df, [time, event, *covariates]))
    result = _call(_nomogram_points, frame, time, event, list(covariates), values,
                   _levels_to_r(categorical_levels), labels, [float(p) for p in fun_at],
                   int(grid_size))
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
    per_row = {row: {time_key(t): s for t, s in zip(part["time"], part["survival"])}
               for row, part in survival.groupby("row", sort=False)}
    patients = [{"row": row.row, "lp": row.lp, "total_points": row.total_points,
                 "survival": per_row[row.row]}
                for row in result["patients"].itertuples(index=False)]
    coefficients = result["coefficients"]
    shaped = {"predictors": predictors,
              "total_points": _as_list(result["total_points"]),
              "lp_axis": {"lp": result["lp_axis"]["lp"].tolist(),
                          "total_points": result["lp_axis"]["total_points"].tolist()},
              "survival_axes": axes, "survival_grid": grid,
              "points_scale": result["points_scale"],
              "points_intercept": result["points_intercept"],
              "coefficients": dict(zip(coefficients["term"], coefficients["coef"])),
              "center": result["center"], "patients": patients,
              "n": int(result["n"]), "n_events": int(result["n_events"]),
              "n_excluded": int(result["n_excluded"])}
    return json_ready(shaped)


def subgroup_hazard(df: pd.DataFrame, time: str, event: str, score: str, cutoff: float,
                    subgroup: str, km_times: Sequence[float] = ()) -> dict[str, Any]:
    """High (score > ``cutoff``) versus low risk within each level of ``subgroup``
    (R ``subgroup_hazard``, ``evaluate_risk_score`` per level).

    Returns::

        {"subgroup", "n_missing",              # rows without a subgroup label, left out
         "levels": [{"level", "n", "n_events",
                     "groups": {"low": {"n", "n_events"}, "high": {...}},
                     "hr", "hr_lower", "hr_upper", "hr_p", "hr_reason",
                     "logrank_chisq", "logrank_p", "logrank_reason", "c_index",
                     "reason",                 # why the level could not be evaluated
                     "km": {"low": {...}, "high": {...}} or None,
                     "risk_table": {"times", "low", "high"} or None}]}

    For the seed's tumour-size subgroups build the label column first, e.g. with
    :func:`median_groups`.
    """
    frame = _text_columns_for_r(_columns(df, [time, event, score, subgroup]))
    result = _call(_subgroup_hazard, frame, time, event, score, float(cutoff), subgroup,
                   [float(t) for t in km_times])
    details = result["results"] or {}
    levels = []
    for row in result["table"].to_dict(orient="records"):
        level = str(row["level"])
        entry = {"level": level, "n": int(row["n"]), "n_events": int(row["n_events"])}
        evaluated = details.get(level)
        if evaluated is None:
            entry["groups"] = None
        else:
            entry["groups"] = {"low": {"n": int(row["n_low"]), "n_events": int(row["events_low"])},
                               "high": {"n": int(row["n_high"]),
                                        "n_events": int(row["events_high"])}}
        for key in ("hr", "hr_lower", "hr_upper", "hr_p", "hr_reason", "logrank_chisq",
                    "logrank_p", "logrank_reason", "c_index", "reason"):
            entry[key] = row[key]
        if evaluated is None:
            entry["km"] = entry["risk_table"] = None
        else:
            curves = shape_group_curves(evaluated)
            entry["km"] = curves["km"]
            entry["risk_table"] = curves["risk_table"]
        levels.append(entry)
    return json_ready({"subgroup": subgroup, "n_missing": int(result["n_missing"]),
                       "levels": levels})


def median_groups(values: pd.Series, labels: tuple[str, str] = ("<= median", "> median")
                  ) -> pd.Series:
    """Labels of a split at the median of ``values`` (values equal to the median go low;
    missing values stay missing), e.g. the seed's tumour-size subgroups by the median 3D
    maximum diameter."""
    numbers = pd.to_numeric(values, errors="raise").astype(float)
    median = numbers.median()
    labelled = np.where(numbers > median, labels[1], labels[0]).astype(object)
    labelled[numbers.isna().to_numpy()] = None
    return pd.Series(labelled, index=values.index, name=values.name)
