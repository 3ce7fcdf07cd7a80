"""Case mix of the external cohort beside the development cohort's (TRIPOD+AI items 16, 20b,
20c): each baseline characteristic in both, with its standardised difference.

The standardised difference of a continuous variable is (mean_ext - mean_dev) /
sqrt((sd_ext^2 + sd_dev^2) / 2); of a category's share, (p_ext - p_dev) /
sqrt((p_ext (1 - p_ext) + p_dev (1 - p_dev)) / 2) (Austin PC (2009), Stat Med 28:3083-3107).
An absolute value above 0.1 is commonly read as a meaningful imbalance. The development
side comes from the Table 1 the frozen bundle carries (its training cohort); the external
side is computed here with the same R function (``statistics.table_one``).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from studyrunner.protocol import BaselineVariable
from studyrunner.statistics.table_one import table_one

EXTERNAL_GROUP = "External"
DEVELOPMENT_GROUPS = ("Training", "Total")  # the development cohort's fitting group, else everyone
IMBALANCE = 0.1


def external_table_one(clinical: pd.DataFrame, variables: list[BaselineVariable]) -> dict[str, Any]:
    """Table 1 of the external cohort (one group, no tests), levels in the protocol's order."""
    table = clinical.copy()
    for v in variables:
        if v.type == "categorical" and v.levels:
            table[v.column] = pd.Categorical(table[v.column].astype("string"), categories=v.levels)
    return table_one(table, groups={EXTERNAL_GROUP: pd.Series(True, index=table.index)}, comparisons=[],
                     categorical={v.column: v.label for v in variables if v.type == "categorical"},
                     continuous={v.column: v.label for v in variables if v.type == "continuous"})


def standardised_difference(mean_ext: float | None, mean_dev: float | None, sd_ext: float | None,
                            sd_dev: float | None) -> float | None:
    """(mean_ext - mean_dev) / pooled SD; None when a term is missing or both SDs are 0."""
    if mean_ext is None or mean_dev is None or sd_ext is None or sd_dev is None:
        return None
    pooled = math.sqrt((sd_ext**2 + sd_dev**2) / 2.0)
    return None if pooled == 0 else (mean_ext - mean_dev) / pooled


def proportion_difference(p_ext: float | None, p_dev: float | None) -> float | None:
    """The standardised difference of two proportions."""
    if p_ext is None or p_dev is None:
        return None
    return standardised_difference(p_ext, p_dev, math.sqrt(p_ext * (1 - p_ext)), math.sqrt(p_dev * (1 - p_dev)))


def development_group(development: dict[str, Any]) -> str | None:
    """The development Table 1's group to compare with (its training cohort when it has one)."""
    return next((g for g in DEVELOPMENT_GROUPS if g in development.get("groups", {})), None)


def case_mix_rows(development: dict[str, Any], external: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per continuous variable and per category present in both tables:
    {"column", "label", "level" (None for a continuous variable), "development", "external"
    (mean or proportion), "development_sd", "external_sd" (continuous), "smd", "imbalanced"}."""
    group = development_group(development)
    if group is None:
        return []
    return group_differences(development, group, external, EXTERNAL_GROUP)


def group_differences(development: dict[str, Any], group: str, external: dict[str, Any],
                      external_group: str) -> list[dict[str, Any]]:
    """:func:`case_mix_rows` between any two Table 1 groups: ``group`` of the ``development``
    table against ``external_group`` of the ``external`` table (the same table for a
    training/test comparison)."""
    dev_variables = {v["column"]: v for v in development.get("variables", [])}
    rows: list[dict[str, Any]] = []
    for variable in external.get("variables", []):
        dev = dev_variables.get(variable["column"])
        if dev is None or dev["type"] != variable["type"]:
            continue
        if variable["type"] == "continuous":
            ext_s, dev_s = variable["summary"].get(external_group, {}), dev["summary"].get(group, {})
            smd = standardised_difference(ext_s.get("mean"), dev_s.get("mean"), ext_s.get("sd"), dev_s.get("sd"))
            rows.append({"column": variable["column"], "label": variable["label"], "level": None,
                         "development": dev_s.get("mean"), "external": ext_s.get("mean"),
                         "development_sd": dev_s.get("sd"), "external_sd": ext_s.get("sd"), "smd": smd})
            continue
        dev_levels = {lv["level"]: lv["counts"].get(group, {}) for lv in dev.get("levels", [])}
        for level in variable.get("levels", []):
            if level["level"] not in dev_levels:
                continue
            p_ext = level["counts"].get(external_group, {}).get("proportion")
            p_dev = dev_levels[level["level"]].get("proportion")
            rows.append({"column": variable["column"], "label": variable["label"], "level": level["level"],
                         "development": p_dev, "external": p_ext, "development_sd": None, "external_sd": None,
                         "smd": proportion_difference(p_ext, p_dev)})
    for row in rows:
        row["imbalanced"] = row["smd"] is not None and abs(row["smd"]) > IMBALANCE
    return rows
