"""Data for the R functions: the columns each call needs (named when missing), text columns and
factor levels as R takes them, evaluation times checked. Shared by the wrappers of
``rscripts/*.R``; nothing here computes a statistic."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.errors import InputError


def select_columns(df: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """The named columns of ``df`` (each once, in order); names the missing ones if any."""
    wanted = list(dict.fromkeys(columns))
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise KeyError(f"column(s) not found in data: {missing}")
    return df[wanted]


def input_columns(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """:func:`select_columns` for functions whose bad input is an InputError."""
    try:
        return select_columns(df, columns)
    except KeyError as error:
        raise InputError(error.args[0]) from error


def text_columns_for_r(frame: pd.DataFrame) -> pd.DataFrame:
    """Non-numeric columns as text with None for a missing value (rpy2 converts a column
    mixing str and NaN only through a warning and a fallback)."""
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            frame[column] = [None if pd.isna(v) else str(v) for v in values.astype(object)]
    return frame


def levels_for_r(levels: Mapping[str, Sequence[Any]] | None) -> dict[str, list[Any]] | None:
    """Categorical levels per column (reference first) as R's named list, or None."""
    if not levels:
        return None
    return {str(column): list(values) for column, values in levels.items()}


def as_list(value: Any) -> list[Any]:
    """R's length-one vectors come back as scalars and empty ones as None: always a list."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    return [value]



def checked_times(times: Sequence[float]) -> list[float]:
    """Evaluation times as floats; at least one is needed."""
    values = [float(t) for t in times]
    if not values:
        raise ValueError("at least one time is needed")
    return values
