"""Baseline characteristics by group ("Table 1") with between-group p-values.

Descriptive statistics are computed here (counts and proportions; median [IQR] with R's
default type-7 quantiles, mean and SD with n - 1). P-values come from R
(``rscripts/table_one.R``): Pearson's chi-squared test without continuity correction, or
Fisher's exact test when an expected count is below 5, for categorical variables, and the
Mann-Whitney U test (normal approximation, continuity corrected) for continuous ones
(Mann HB, Whitney DR (1947), Ann Math Stat 18:50-60). Missing values are shown as an
"Unknown" level and are left out of the tests. A time-to-event endpoint is not a continuous
variable (its observed times mix events and censorings): it gets the Kaplan-Meier median with
its CI, the reverse Kaplan-Meier median follow-up (Schemper M, Smith TL (1996), Control Clin
Trials 17:343-346) and the log-rank test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function

UNKNOWN = "Unknown"
"""Level under which missing values of a categorical variable are counted."""

GROUP_COLUMN = ".table_one_group"
"""Column holding the group of each row in the data sent to R."""

_compare_groups = r_function("table_one", "compare_groups")
_survival_summary = r_function("table_one", "survival_summary", counts=("n", "events"))
_test_survival = r_function("table_one", "test_survival")

GroupSpec: TypeAlias = Sequence[Any] | pd.Series | np.ndarray


def table_one(df: pd.DataFrame, groups: Mapping[str, GroupSpec],
              comparisons: Sequence[tuple[str, str]], categorical: Mapping[str, str],
              continuous: Mapping[str, str],
              time_to_event: Mapping[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    """Table 1 of ``df`` for the named groups, with a p-value per comparison.

    Args:
        df: one row per patient; its index identifies the patients.
        groups: group name -> either a boolean mask (same length as ``df``, or a Series
            aligned on its index) or a list of index labels of ``df``. Groups may overlap
            (e.g. "Total" and "Training") but the two groups of a comparison may not.
        comparisons: pairs of group names to test against each other.
        categorical: column -> label of the categorical variables.
        continuous: column -> label of the numeric variables.
        time_to_event: label -> (time column, event column) of each time-to-event endpoint:
            the Kaplan-Meier median with its CI, the reverse Kaplan-Meier median follow-up
            and the log-rank test (:func:`survival_rows`).

    Returns (JSON-serialisable)::

        {"groups": {name: {"n": int}},
         "comparisons": [[a, b], ...],
         "variables": [
            {"column", "label", "type": "categorical",
             "levels": [{"level": str, "counts": {name: {"n": int, "proportion": float}}}],
             "tests": [{"groups": [a, b], "test", "statistic", "p", "message"}]},
            {"column", "label", "type": "continuous",
             "summary": {name: {"n", "missing", "median", "q1", "q3", "mean", "sd"}},
             "tests": [...]},
            {"column" (the time), "event", "label", "type": "time_to_event",
             "survival": {name: {"n", "events", "missing", "median", "lower", "upper",
                                 "followup_median", "followup_lower", "followup_upper"}},
             "tests": [...]}]}

    Proportions are out of the whole group (the "Unknown" level included); ``statistic`` is
    the chi-squared value (None for Fisher's test) or the Mann-Whitney U of the first group
    of the comparison.
    """
    if not groups:
        raise ValueError("table_one needs at least one group")
    columns = [*categorical, *continuous]
    missing_columns = [c for c in columns if c not in df.columns]
    if missing_columns:
        raise KeyError(f"column(s) not found in data: {missing_columns}")
    not_numeric = [c for c in continuous if not pd.api.types.is_numeric_dtype(df[c])]
    if not_numeric:
        raise TypeError(f"continuous variable(s) must be numeric: {not_numeric}")
    masks = {name: group_mask(df, name, spec) for name, spec in groups.items()}
    tests = {tuple(pair): compare(df, masks, pair, categorical, continuous)
             for pair in comparisons}

    variables: list[dict[str, Any]] = []
    for column, label in categorical.items():
        variables.append({"column": column, "label": label, "type": "categorical",
                          "levels": categorical_levels(df[column], masks),
                          "tests": tests_for(column, tests)})
    for column, label in continuous.items():
        variables.append({"column": column, "label": label, "type": "continuous",
                          "summary": {name: continuous_summary(df.loc[mask, column])
                                      for name, mask in masks.items()},
                          "tests": tests_for(column, tests)})
    variables.extend(survival_rows(df, masks, comparisons, time_to_event or {}))
    return to_jsonable({"groups": {name: {"n": int(mask.sum())} for name, mask in masks.items()},
                        "comparisons": [list(pair) for pair in comparisons],
                        "variables": variables})


def group_mask(df: pd.DataFrame, name: str, spec: GroupSpec) -> pd.Series:
    """Boolean Series over ``df.index`` for a group given as a mask or as index labels."""
    if isinstance(spec, pd.Series) and pd.api.types.is_bool_dtype(spec):
        if not spec.index.equals(df.index):
            raise ValueError(f"group '{name}': boolean mask is not aligned with the data's index")
        return spec.astype(bool)
    values = np.asarray(spec)
    if values.dtype == bool:
        if len(values) != len(df):
            raise ValueError(f"group '{name}': boolean mask has {len(values)} entries, "
                             f"the data has {len(df)} rows")
        return pd.Series(values, index=df.index)
    unknown = pd.Index(values).difference(df.index)
    if len(unknown) > 0:
        raise KeyError(f"group '{name}': id(s) not in the data: {unknown[:10].tolist()}")
    return pd.Series(df.index.isin(values), index=df.index)


def compare(df: pd.DataFrame, masks: Mapping[str, pd.Series], pair: Sequence[str],
            categorical: Mapping[str, str], continuous: Mapping[str, str]) -> pd.DataFrame:
    """R ``compare_groups`` on the rows of the two groups of ``pair``."""
    first, second = pair
    for name in pair:
        if name not in masks:
            raise KeyError(f"comparison {tuple(pair)}: no group named '{name}'")
    overlap = df.index[masks[first] & masks[second]]
    if len(overlap) > 0:
        raise ValueError(f"comparison {tuple(pair)}: groups overlap on id(s) "
                         f"{overlap[:10].tolist()}")
    rows = masks[first] | masks[second]
    data = df.loc[rows, [*categorical, *continuous]].copy()
    data[GROUP_COLUMN] = pd.Categorical(np.where(masks[first][rows], first, second),
                                        categories=[first, second])
    return _compare_groups(data, GROUP_COLUMN, list(categorical), list(continuous))


def tests_for(column: str, tests: Mapping[tuple[str, ...], pd.DataFrame]) -> list[dict[str, Any]]:
    """The test of ``column`` in each comparison."""
    out = []
    for pair, table in tests.items():
        row = table.loc[table["variable"] == column].iloc[0]
        out.append({"groups": list(pair), "test": row["test"], "statistic": row["statistic"],
                    "p": row["p"], "message": row["message"]})
    return out


def categorical_levels(values: pd.Series, masks: Mapping[str, pd.Series]) -> list[dict[str, Any]]:
    """Count and proportion of each level per group; missing values as level "Unknown".

    Levels follow the categories of a pandas Categorical, otherwise sorted order; "Unknown"
    comes last and only when a value is missing in one of the groups.
    """
    in_any_group = pd.concat(list(masks.values()), axis=1).any(axis=1)
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = list(values.cat.categories)
    else:
        levels = sorted(values[in_any_group].dropna().unique().tolist(), key=_sort_key)
    labelled = values.astype(object).where(values.notna(), UNKNOWN)
    if (values.isna() & in_any_group).any():
        levels.append(UNKNOWN)
    rows = []
    for level in levels:
        is_level = labelled == level
        counts = {}
        for name, mask in masks.items():
            size = int(mask.sum())
            n = int((is_level & mask).sum())
            counts[name] = {"n": n, "proportion": n / size if size else None}
        rows.append({"level": str(level), "counts": counts})
    return rows


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers before text, each in natural order."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return (0, float(value))
    return (1, str(value))


def continuous_summary(values: pd.Series) -> dict[str, Any]:
    """n, missing, median, quartiles (type 7), mean and SD (n - 1) of one group."""
    present = values.dropna().astype(float)
    n = len(present)
    return {"n": n, "missing": int(values.isna().sum()),
            "median": float(present.median()) if n else None,
            "q1": float(present.quantile(0.25)) if n else None,
            "q3": float(present.quantile(0.75)) if n else None,
            "mean": float(present.mean()) if n else None,
            "sd": float(present.std(ddof=1)) if n > 1 else None}


def survival_rows(df: pd.DataFrame, masks: Mapping[str, pd.Series], comparisons: Sequence[Sequence[str]],
                  time_to_event: Mapping[str, tuple[str, str]], conf_type: str = "log") -> list[dict[str, Any]]:
    """One Table 1 variable per time-to-event endpoint (label -> (time, event)): per group the
    Kaplan-Meier median with its 95% CI and the median follow-up by reverse Kaplan-Meier
    (Schemper M, Smith TL (1996), Control Clin Trials 17:343-346), in R (``survival_summary``
    of rscripts/table_one.R); per comparison the log-rank test. Rows missing the time or the
    event are left out and counted as ``missing``."""
    rows = []
    for label, (time, event) in time_to_event.items():
        missing_columns = [c for c in (time, event) if c not in df.columns]
        if missing_columns:
            raise KeyError(f"column(s) not found in data: {missing_columns}")
        known = df[time].notna() & df[event].notna()
        survival = {}
        for name, mask in masks.items():
            summary = _survival_summary(df.loc[mask & known, [time, event]], time, event, conf_type)
            record = {column: summary[column].iloc[0] for column in summary.columns}
            survival[name] = {**record, "n": int(record["n"]), "events": int(record["events"]),
                              "missing": int((mask & ~known).sum())}
        tests = []
        for first, second in comparisons:
            rows_pair = (masks[first] | masks[second]) & known
            data = df.loc[rows_pair, [time, event]].copy()
            data[GROUP_COLUMN] = pd.Categorical(np.where(masks[first][rows_pair], first, second),
                                                categories=[first, second])
            row = _test_survival(data, time, event, GROUP_COLUMN, time).iloc[0]
            tests.append({"groups": [first, second], "test": row["test"], "statistic": row["statistic"],
                          "p": row["p"], "message": row["message"]})
        rows.append({"column": time, "event": event, "label": label, "type": "time_to_event",
                     "survival": survival, "tests": tests})
    return rows
