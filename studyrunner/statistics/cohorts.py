"""The cohorts every statistic is computed in: training (the partitions the model is fitted
on) and test (touched only at evaluation), and the times of a numbers-at-risk table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from studyrunner.protocol import SplitSection

TRAINING, TEST = "training", "test"


def cohort_masks(split: SplitSection, table: pd.DataFrame) -> dict[str, pd.Series]:
    """Row masks of the training and test cohorts of ``table`` (by its ``partition`` column);
    a cohort without rows is left out."""
    masks = {TRAINING: table["partition"].isin(split.training), TEST: table["partition"].isin(split.test)}
    return {name: mask for name, mask in masks.items() if mask.any()}


def default_km_times(times: pd.Series, steps: int = 6) -> list[float]:
    """Round, evenly spaced times covering the follow-up, for the numbers-at-risk table."""
    span = float(np.nanmax(times))
    raw = span / (steps - 1)
    magnitude = 10 ** np.floor(np.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    return [float(step * i) for i in range(steps) if step * i <= span] or [0.0]
