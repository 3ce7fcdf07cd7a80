"""The one JSON cleaner: any result (R's, numpy's, pandas') as strict JSON types.

Every JSON file of a run (``run_folder.write_json``), every statistics wrapper's result and
``studyrunner stats`` output go through :func:`to_jsonable`, so NaN, numpy scalars and data
frames are turned into JSON the same way everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd


def to_jsonable(value: Any) -> Any:
    """A copy of ``value`` made only of dict, list, str, int, float, bool and None.

    Mappings become dicts with str keys; tuples, lists, numpy arrays and Series become lists;
    a DataFrame becomes a list of records (one dict per row); numpy scalars (and any scalar
    with ``.item()``, e.g. a 0-d tensor) become Python numbers; non-finite floats (NaN, NA,
    +/-Inf) and ``pandas.NA`` become ``None``; paths become str. Anything else is a
    TypeError.
    """
    if isinstance(value, pd.DataFrame):
        return [to_jsonable(record) for record in value.to_dict(orient="records")]
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.ndarray, pd.Series)):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "item"):
        return to_jsonable(value.item())
    raise TypeError(f"cannot make {type(value).__name__} JSON-serialisable")
