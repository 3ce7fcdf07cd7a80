"""Flag rule (``results.flags``) of the time-dependent AUC: an AUC withheld for too few cases or
controls at its time (``TimeRoc.withheld``, ``statistics.timeroc.time_roc_record``).

Why: the cumulative/dynamic AUC at t compares the cases (event before t) with the controls
(event-free beyond t); with one control it is that patient's rank among the cases, and neither
the estimate nor its interval (Blanche P, Dartigues JF, Jacqmin-Gadda H (2013), Stat Med
32:5381-5397) can be trusted. The report leaves such an AUC out of its tables and summary; the
flag says so and names the counts, so that a reader comparing with a paper that printed it knows why.
"""

from __future__ import annotations

from studyrunner.report.formatting import fmt_auc, fmt_time
from studyrunner.results.models import Flag, Results, TimeRoc


def withheld_auc(results: Results) -> list[Flag]:
    """One flag per cohort with withheld AUCs, marked at that cohort's time-dependent ROC table."""
    evaluation = results.evaluation if isinstance(results.evaluation, dict) else {}
    flags = []
    for name, ev in evaluation.items():
        roc = ev.time_roc
        if not isinstance(roc, TimeRoc) or not roc.withheld:
            continue
        unit = roc.time_unit or ""
        times = {f"{t:g}": t for t in roc.times}
        parts = [f"at {fmt_time(times.get(key, float(key)))} {unit}, {fmt_auc(kept.auc, kept.lower, kept.upper)} "
                 f"({roc.reasons.get(key, 'too few cases or controls')})" for key, kept in roc.withheld.items()]
        flags.append(Flag(code="auc_withheld", severity="caution", section="discrimination",
                          target=f"time_roc:{name}",
                          message=f"{ev.cohort_label}: time-dependent AUC withheld {'; '.join(parts)}; with so "
                                  "few cases or controls the AUC and its interval are not interpretable"))
    return flags


AUC_RULES = [withheld_auc]
"""The time-dependent AUC's rules, appended to ``results.flags.RULES``."""
