"""A risk score's performance within subgroups, the test of its heterogeneity, and the median
follow-up of a cohort: typed entry points to ``rscripts/subgroups.R``.

Methods (details in the R script): Harrell's C per subgroup (Harrell FE et al. (1996), Stat
Med 15:361-387) with the variance of survival::concordance; the likelihood-ratio test of a
score x subgroup interaction in a Cox model (Riley RD et al. (2019), Stat Med 38:1276-1296);
the reverse Kaplan-Meier median follow-up (Schemper M, Smith TL (1996), Control Clin Trials
17:343-346). TRIPOD+AI items 12d, 14, 20a and 23b report them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.statistics.r_inputs import input_columns, text_columns_for_r

_subgroup_concordance = r_function("subgroups", "subgroup_concordance", input_errors=True,
                                   counts=("n", "n_events"))
_subgroup_interaction = r_function("subgroups", "subgroup_interaction", input_errors=True, counts=("n", "df"))
_survival_summary = r_function("table_one", "survival_summary", input_errors=True, counts=("n", "events"))
"""The one reverse Kaplan-Meier implementation, shared with Table 1 (rscripts/table_one.R)."""

GROUP_COLUMN = ".subgroup"


def interval_names(cuts: Sequence[float]) -> list[str]:
    """The names of the intervals that ``cuts`` make, in order: [65, 75] -> "< 65",
    "65 to < 75", "≥ 75"."""
    edges = sorted(float(c) for c in cuts)
    middle = [f"{a:g} to < {b:g}" for a, b in itertools.pairwise(edges)]
    return [f"< {edges[0]:g}", *middle, f"≥ {edges[-1]:g}"]


def group_labels(values: pd.Series, cuts: Sequence[float] | None = None) -> pd.Series:
    """Each patient's subgroup as text: the value itself, or with ``cuts`` the interval of a
    numeric value (:func:`interval_names`); missing values stay missing."""
    if not cuts:
        return values.astype("string")
    names = interval_names(cuts)
    index = np.searchsorted(sorted(float(c) for c in cuts), values.to_numpy(dtype=float), side="right")
    return pd.Series([names[i] for i in index], index=values.index, dtype="string").mask(values.isna())


def level_order(labels: pd.Series, cuts: Sequence[float] | None = None) -> list[str]:
    """The subgroups present: in interval order with ``cuts``, else sorted."""
    present = set(labels.dropna().tolist())
    if cuts:
        return [name for name in interval_names(cuts) if name in present]
    return sorted(present)


def subgroup_performance(df: pd.DataFrame, time: str, event: str, score: str, groups: pd.Series,
                         levels: Sequence[str]) -> dict[str, Any]:
    """Harrell's C of ``score`` in each subgroup and the interaction test (R).

    ``groups`` holds each row's subgroup (text, aligned with ``df``; missing: left out).
    Returns::

        {"groups": [{"group", "n", "n_events", "c_index", "c_se", "c_lower", "c_upper", "reason"}],
         "interaction": {"statistic", "df", "p", "loglik_main", "loglik_interaction", "n", "reason"}}
    """
    data = input_columns(df, [time, event, score]).assign(**{GROUP_COLUMN: groups.astype(object)})
    data = text_columns_for_r(data)
    rows = _subgroup_concordance(data, time, event, score, GROUP_COLUMN, list(levels))
    interaction = _subgroup_interaction(data, time, event, score, GROUP_COLUMN)
    return {"groups": to_jsonable(rows.to_dict("records")), "interaction": to_jsonable(interaction)}


def median_follow_up(df: pd.DataFrame, time: str, event: str) -> dict[str, Any]:
    """The reverse Kaplan-Meier median follow-up with its 95% CI (R ``survival_summary`` of
    rscripts/table_one.R, as in Table 1): {"median", "lower", "upper", "n", "n_events", "reason"};
    the median is None with a reason when fewer than half of the patients were censored."""
    row = _survival_summary(input_columns(df, [time, event]), time, event).iloc[0]
    median = to_jsonable(row["followup_median"])
    return {"median": median, "lower": to_jsonable(row["followup_lower"]),
            "upper": to_jsonable(row["followup_upper"]), "n": int(row["n"]), "n_events": int(row["events"]),
            "reason": None if median is not None else "not reached: fewer than half of the patients were censored"}
