"""The high/low cut-off of a risk score, chosen on the training cohort: one rule and one
record for the radiomics model and for the CNN scores.

Methods (``studyrunner.registry.CUTOFF_METHODS``):
    xtile            the split with the largest log-rank chi-square over the training scores
                     (Camp RL, Dolled-Filhart M, Rimm DL (2004), Clin Cancer Res 10:7252-7259),
                     its p-value corrected for the search by maxstat's Lau94 bound;
    maxstat          maximally selected log-rank statistic (Lausen B, Schumacher M (1992),
                     Biometrics 48:73-85), p-value by the protocol's ``pmethod``;
    training_median  the median of the training scores.

High risk is score > cut-off. A corrected p-value is an upper bound that can exceed 1 (Lau94);
it is recorded as at most 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from studyrunner.registry import CUTOFF_LABELS
from studyrunner.statistics.cutpoint import maxstat_cutpoint, xtile_cutpoint


def bounded_p(p: float | None) -> float | None:
    """A p-value reported as at most 1 (maxstat's Lau94 p is an upper bound that can exceed 1)."""
    return None if p is None else min(float(p), 1.0)


def choose_cutoff(train: pd.DataFrame, time: str, event: str, score: str, method: str,
                  pmethod: str = "Lau94", seed: int | None = None) -> dict[str, Any]:
    """The cut-off of ``score`` on the training rows.

    Returns ``{"value", "method", "label", "statistic", "p_value", "pmethod", "p_naive",
    "n_cutoffs"}``: ``method`` is the registry key, ``label`` how the report names it;
    ``statistic`` the maximal log-rank chi-square (xtile) or standardised statistic (maxstat),
    ``p_value`` its p corrected for the search over cut-offs (by ``pmethod``), ``p_naive``
    the uncorrected p and ``n_cutoffs`` the number of candidate splits (xtile only); None
    where the method has no such number.
    """
    record: dict[str, Any] = {"value": None, "method": method, "label": CUTOFF_LABELS[method], "statistic": None,
                              "p_value": None, "pmethod": None, "p_naive": None, "n_cutoffs": None}
    if method == "xtile":
        found = xtile_cutpoint(train, time, event, score)
        record.update(value=found["cutpoint"], statistic=found["chisq"], p_value=bounded_p(found["p_corrected"]),
                      pmethod=found["corrected_method"], p_naive=found["p_naive"], n_cutoffs=found["n_cutoffs"])
    elif method == "maxstat":
        found = maxstat_cutpoint(train, time, event, score, pmethod=pmethod, seed=seed)
        record.update(value=found["cutpoint"], statistic=found["statistic"], p_value=bounded_p(found["p_value"]),
                      pmethod=found["pmethod"])
    elif method == "training_median":
        record["value"] = float(np.median(train[score]))
    else:
        raise ValueError(f"unknown cut-off method {method!r} (known: {sorted(CUTOFF_LABELS)})")
    return record
