"""Reproducibility filter: intraclass correlation of each radiomics feature between two
segmentations (readers) of the same patients, computed in R (``rscripts/icc.R``).

Method: Shrout PE, Fleiss JL (1979), Psychol Bull 86:420-428; confidence intervals of
McGraw KO, Wong SP (1996), Psychol Methods 1:30-46; form naming of Koo TK, Li MY (2016),
J Chiropr Med 15:155-163. The values equal ``psych::ICC`` (tests/test_icc.py).

Forms (``form = (model, type, unit)``) and the ``psych::ICC`` row they give:

======================================  ======  =====================
form                                    psych   Shrout & Fleiss
======================================  ======  =====================
("twoway", "agreement", "single")       ICC2    ICC(2,1)  (default)
("twoway", "agreement", "average")      ICC2k   ICC(2,k)
("twoway", "consistency", "single")     ICC3    ICC(3,1)
("twoway", "consistency", "average")    ICC3k   ICC(3,k)
("oneway", "agreement", "single")       ICC1    ICC(1,1)
("oneway", "agreement", "average")      ICC1k   ICC(1,k)
======================================  ======  =====================
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from studyrunner.rbridge import r_function

_feature_icc = r_function("icc", "feature_icc")

ICC_COLUMNS = ("feature", "icc", "lower", "upper", "n", "kept", "reason", "form")
"""Columns of :func:`icc_filter`'s table."""


def icc_filter(reader1: pd.DataFrame, reader2: pd.DataFrame, threshold: float = 0.8,
               form: Sequence[str] = ("twoway", "agreement", "single"),
               features: Sequence[str] | None = None, id_column: str | None = None,
               alpha: float = 0.05) -> pd.DataFrame:
    """ICC of every feature between two readings of the same patients (R ``feature_icc``).

    Patients are matched on ``id_column`` when given, otherwise on the two tables' index;
    only patients in both tables count. ``features`` defaults to the numeric columns the
    two tables share (minus ``id_column``). Returns one row per feature with columns
    ``feature, icc, lower, upper, n, kept, reason, form``: ``lower``/``upper`` the
    ``1 - alpha`` confidence interval, ``n`` the patients with both values, ``kept`` =
    icc > ``threshold``; a constant feature has icc NaN, kept False and the reason.
    """
    model, kind, unit = form
    if features is None:
        features = [c for c in reader1.columns
                    if c in reader2.columns and c != id_column
                    and pd.api.types.is_numeric_dtype(reader1[c])
                    and pd.api.types.is_numeric_dtype(reader2[c])]
    columns = [*([id_column] if id_column else []), *features]
    for name, table in (("reader 1", reader1), ("reader 2", reader2)):
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise KeyError(f"{name} table: column(s) not found: {missing[:10]}")
    if not features:
        return pd.DataFrame({c: [] for c in ICC_COLUMNS})
    one, two = reader1[columns], reader2[columns]
    if id_column is None:
        one, two = one.set_axis(one.index.astype(str)), two.set_axis(two.index.astype(str))
    result = _feature_icc(one, two, list(features), model=model, type=kind, unit=unit,
                          threshold=float(threshold), id=id_column, alpha=float(alpha))
    result["kept"] = result["kept"].astype(bool)
    result["n"] = result["n"].astype(int)
    return result[list(ICC_COLUMNS)]
