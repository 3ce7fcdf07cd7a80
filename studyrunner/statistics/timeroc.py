"""Time-dependent ROC and AUC: typed entry point to ``rscripts/timeroc.R``.

Cumulative/dynamic AUC with inverse-probability-of-censoring weights and its
i.i.d.-representation standard error: Blanche P, Dartigues JF, Jacqmin-Gadda H (2013), Stat
Med 32:5381-5397 (the timeROC package when installed, otherwise the same estimator in R)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.registry import time_key
from studyrunner.statistics.r_inputs import checked_times, select_columns

_time_dependent_auc = r_function("timeroc", "time_dependent_auc")


def time_dependent_auc(df: pd.DataFrame, time: str, event: str, marker: str,
                       times: Sequence[float]) -> dict[str, Any]:
    """Cumulative/dynamic time-dependent AUC of ``marker`` (higher = higher risk) at each
    time, IPCW with Kaplan-Meier censoring weights (R ``time_dependent_auc``).

    Returns::

        {"auc": {t: value}, "se": {t: value}, "lower": {t: value}, "upper": {t: value},
         "implementation": "timeROC <version>" or "studyrunner",
         "se_method": how the standard errors were computed,
         "roc": {t: {"fp": [...], "tp": [...]}},     # ROC points from (0,0) to (1,1)
         "table": [{"time", "auc", "se", "lower", "upper", "cases", "controls",
                    "censored_before_t", "implementation", "se_method", "reason"}, ...]}

    Keys ``t`` are :func:`time_key` strings. Cases: event before t (T < t); controls: T > t.
    ``lower``/``upper``: 95% normal interval clipped to [0, 1]. At a time without any case
    or control the AUC is None and ``reason`` in ``table`` says why.
    """
    values = checked_times(times)
    result = _time_dependent_auc(select_columns(df, [time, event, marker]), time, event,
                                 marker, values)
    table = result["table"]
    roc = result["roc"]
    keyed = {column: {time_key(t): v for t, v in zip(table["time"], table[column], strict=True)}
             for column in ("auc", "se", "lower", "upper")}
    curves = {}
    for t in table["time"]:
        points = roc[roc["time"] == t]
        curves[time_key(t)] = {"fp": points["fp"].tolist(), "tp": points["tp"].tolist()}
    methods = [m for m in table["se_method"].tolist() if isinstance(m, str)]
    return to_jsonable({**keyed,
                        "implementation": str(table["implementation"].iloc[0]),
                        "se_method": methods[0] if methods else None,
                        "roc": curves,
                        "table": table})



MIN_CASES_CONTROLS = 10
"""Default smallest number of cases and of controls at a time below which an AUC is withheld
(``statistics.evaluation.time_roc_min_cases_controls``)."""


def withheld_reason(cases: int, controls: int, minimum: int) -> str | None:
    """Why an AUC resting on too few cases or controls is withheld, naming the counts; None
    when both reach ``minimum``.

    An AUC compares every case with every control: with one control (or one case) it is the
    rank of a single patient among the others, and its interval (from the i.i.d.
    representation, Blanche et al. 2013) is not to be trusted. Cases: event before t;
    controls: event-free beyond t."""
    if cases >= minimum and controls >= minimum:
        return None
    short = " and ".join(name for name, n in (("cases", cases), ("controls", controls)) if n < minimum)
    return (f"{cases} case{'' if cases == 1 else 's'} and {controls} control{'' if controls == 1 else 's'}: "
            f"fewer than {minimum} {short}")


def time_roc_record(df: pd.DataFrame, time: str, event: str, marker: str, times: Sequence[float],
                    min_cases_controls: int = MIN_CASES_CONTROLS) -> dict[str, Any]:
    """The ``TimeRoc`` record of results.json: :func:`time_dependent_auc` with the number of
    cases and controls at each time, and the AUCs that rest on fewer than
    ``min_cases_controls`` cases or controls withheld.

    A withheld AUC is None in ``auc`` (and its ``se``/``lower``/``upper``), its reason in
    ``reasons`` names the counts, and the estimate itself is kept under ``withheld`` {time
    key: {"auc", "se", "lower", "upper"}}, so that nothing computed is lost.
    """
    result = time_dependent_auc(df, time, event, marker, times)
    record: dict[str, Any] = {"times": list(times), "auc": [], "se": [], "lower": [], "upper": [],
                              "cases": [], "controls": [], "min_cases_controls": min_cases_controls,
                              "implementation": result["implementation"], "se_method": result["se_method"],
                              "roc": result["roc"], "reasons": {}, "withheld": {}}
    for row in result["table"]:
        key = time_key(row["time"])
        cases, controls = int(row["cases"]), int(row["controls"])
        estimate = {column: row[column] for column in ("auc", "se", "lower", "upper")}
        reason = row.get("reason") or None
        if reason is None:
            reason = withheld_reason(cases, controls, min_cases_controls)
            if reason is not None:
                record["withheld"][key] = estimate
                estimate = dict.fromkeys(estimate)
        if reason is not None:
            record["reasons"][key] = reason
        for column, value in estimate.items():
            record[column].append(value)
        record["cases"].append(cases)
        record["controls"].append(controls)
    return to_jsonable(record)
