"""The statistics of a frozen score on an external cohort (the validation stage).

Nothing is refitted: the score is the bundle's linear predictor, its predicted risk by t is
1 - S0(t)^exp(lp) with the bundle's baseline survival, its risk groups are cut at the
bundle's cut-off. Per score, each with a 95% CI (R through ``statistics.validation`` and the
shared wrappers):

- discrimination: Harrell's C and Uno's C truncated at the last evaluation time (Uno H et al.
  (2011), Stat Med 30:1105-1117); the time-dependent AUC at each time (Blanche P et al.
  (2013), Stat Med 32:5381-5397);
- calibration at each time: the smoothed calibration curve and the integrated calibration
  index (Austin PC, Harrell FE, van Klaveren D (2020), Stat Med 39:2714-2742);
  observed (Kaplan-Meier) against mean predicted risk, the O/E
  ratio (Debray TPA et al. (2017), BMJ 356:i6460), the IPCW Brier score and the index of
  prediction accuracy (Graf E et al. (1999), Stat Med 18:2529-2545), a table by group of
  predicted risk; the calibration slope (van Houwelingen HC (2000), Stat Med 19:3401-3415);
  bootstrap percentile intervals of the Brier score, IPA, ICI, E50 and E90 (Efron B,
  Tibshirani RJ (1993), An Introduction to the Bootstrap, ch. 13; ``statistics.bootstrap_calibration``);
- risk groups at the frozen cut-off: Kaplan-Meier curves, numbers at risk, HR, log-rank and
  events per group (a group with fewer than ``min_events_per_group`` events is flagged);
- case mix (Debray TPA et al. (2015), J Clin Epidemiol 68:279-289): the linear predictor's
  mean, SD and quantiles in the development and the external cohort.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from studyrunner.bundle import lp_summary
from studyrunner.protocol import ExternalValidationPlan
from studyrunner.registry import time_key
from studyrunner.statistics.bootstrap_calibration import BootstrapPlan
from studyrunner.statistics.cohorts import default_km_times
from studyrunner.statistics.frozen_calibration import frozen_calibration
from studyrunner.statistics.stratification import stratify
from studyrunner.statistics.timeroc import time_dependent_auc
from studyrunner.statistics.validation import concordance_indices


def discrimination(rows: pd.DataFrame, times: list[float], keys: list[str]) -> dict[str, Any]:
    """Harrell's and Uno's C (truncated at the last time) and the AUC at each time."""
    concordance = concordance_indices(rows, "time", "event", "lp", max(times))
    auc = time_dependent_auc(rows, "time", "event", "lp", times)
    auc_by_time = {key: {"estimate": auc["auc"].get(time_key(t)), "lower": auc["lower"].get(time_key(t)),
                         "upper": auc["upper"].get(time_key(t))}
                   for key, t in zip(keys, times, strict=True)}
    return {"c_index": concordance["harrell"], "uno_c": concordance["uno"], "tau_key": keys[-1],
            "auc_t": auc_by_time, "auc_implementation": auc["implementation"]}


def risk_groups(rows: pd.DataFrame, cutoff: float, min_events: int) -> dict[str, Any]:
    """The frozen cut-off's groups: stratification record plus the groups with too few events."""
    record = stratify(rows, "time", "event", "lp", cutoff, default_km_times(rows["time"]))
    flagged = [group for group, counts in record["groups"].items() if counts["n_events"] < min_events]
    return {**record, "few_events": flagged}


def validate_score(rows: pd.DataFrame, bundle_record: dict[str, Any], plan: ExternalValidationPlan,
                   times: list[float], bootstrap: BootstrapPlan | None = None) -> dict[str, Any]:
    """Every statistic of one frozen score on ``rows`` (columns time, event, lp, in the
    bundle's time unit; ``times`` converted to it too; keys in this protocol's unit); with
    ``bootstrap``, the calibration measures' bootstrap intervals."""
    keys = [time_key(t) for t in plan.times]
    return {
        "n": len(rows), "n_events": int(rows["event"].sum()),
        **discrimination(rows, times, keys),
        "calibration": frozen_calibration(rows, bundle_record["baseline_survival"], times, keys,
                                          plan.calibration_groups, bootstrap),
        "risk_groups": risk_groups(rows, bundle_record["cutoff"], plan.min_events_per_group),
        "lp": lp_summary(rows["lp"]),
    }
