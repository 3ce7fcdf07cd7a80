"""Case mix: standardised differences (Austin, Stat Med 2009) of the external cohort against
the development cohort's Table 1, by hand and against numpy on a constructed cohort."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from studyrunner.external.case_mix import (
    case_mix_rows,
    external_table_one,
    proportion_difference,
    standardised_difference,
)
from studyrunner.protocol import BaselineVariable

pytestmark = pytest.mark.needs_r


def test_standardised_differences_by_hand() -> None:
    assert standardised_difference(66.0, 64.0, 9.0, 10.0) == pytest.approx(2.0 / math.sqrt((81 + 100) / 2))
    assert proportion_difference(0.96, 0.90) == pytest.approx(0.06 / math.sqrt((0.96 * 0.04 + 0.9 * 0.1) / 2))
    assert standardised_difference(1.0, 1.0, 0.0, 0.0) is None
    assert proportion_difference(None, 0.5) is None


def test_case_mix_rows_against_numpy() -> None:
    rng = np.random.default_rng(7)
    development = pd.DataFrame({"age": rng.normal(64, 9, 80).round(),
                                "stage": rng.choice(["III", "IV"], 80, p=[.2, .8])})
    external = pd.DataFrame({"age": rng.normal(70, 9, 60).round(),
                             "stage": rng.choice(["III", "IV"], 60, p=[.05, .95])})
    variables = [BaselineVariable(column="age", label="Age", type="continuous"),
                 BaselineVariable(column="stage", label="Stage", type="categorical", levels=["III", "IV"])]
    dev_table = external_table_one(development, variables)
    dev_table["groups"] = {"Training": dev_table["groups"].pop("External")}  # as the bundle records it
    for v in dev_table["variables"]:
        if v["type"] == "continuous":
            v["summary"] = {"Training": v["summary"]["External"]}
        for level in v.get("levels", []):
            level["counts"] = {"Training": level["counts"]["External"]}
    rows = {(r["column"], r["level"]): r for r in case_mix_rows(dev_table, external_table_one(external, variables))}
    age = rows[("age", None)]
    pooled = math.sqrt((external["age"].std(ddof=1) ** 2 + development["age"].std(ddof=1) ** 2) / 2)
    assert age["smd"] == pytest.approx((external["age"].mean() - development["age"].mean()) / pooled, rel=1e-9)
    assert age["imbalanced"] is True
    p_ext, p_dev = (external["stage"] == "IV").mean(), (development["stage"] == "IV").mean()
    assert rows[("stage", "IV")]["smd"] == pytest.approx(proportion_difference(p_ext, p_dev), rel=1e-9)
    assert rows[("stage", "IV")]["development"] == pytest.approx(p_dev)
