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

