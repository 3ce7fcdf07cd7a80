"""Comparison of two risk scores' C-indices on the same patients: typed Python entry point
to ``rscripts/concordance.R``.

Method: Harrell's C (Harrell FE, Lee KL, Mark DB (1996), Stat Med 15:361-387) and the joint
infinitesimal-jackknife variance of survival::concordance (Therneau T, Atkinson E, "The
concordance statistic", survival package vignette); details in the R script.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from studyrunner.jsonable import to_jsonable
from studyrunner.rbridge import r_function
from studyrunner.statistics.r_inputs import input_columns

_compare_concordance = r_function("concordance", "compare_concordance", input_errors=True,
                                  counts=("n", "n_events", "comparable_pairs"))


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
    Bad input raises InputError naming the column and rows.
    """
    return to_jsonable(_compare_concordance(input_columns(df, [time, event, score_a, score_b]),
                                            time, event, score_a, score_b))
