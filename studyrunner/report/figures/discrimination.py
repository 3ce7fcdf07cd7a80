"""Harrell's C-index with its confidence interval per cohort, as a forest plot; the synthetic
generator's oracle C-index (the true risk) beside it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt

from studyrunner.report.figures.style import (
    GROUP_COLOURS,
    ORACLE_COLOUR,
    REFERENCE_LINE,
    STYLE,
    TEXT_WIDTH_IN,
    as_float,
    legend_outside,
    save,
)
from studyrunner.report.formatting import ci_label, fmt_ci, fmt_num
from studyrunner.results.models import CohortEvaluation, Oracle, OracleCohort


def oracle_c_index(oracle: Oracle | None, cohort: str) -> float | None:
    """The oracle's C-index in ``cohort`` ("training", "test"); None when not recorded."""
    record: OracleCohort | None = None
    if oracle is not None and cohort == "training":
        record = oracle.training
    elif oracle is not None and cohort == "test":
        record = oracle.test
    return record.c_index if record is not None else None


def draw_discrimination(evaluation: Mapping[str, CohortEvaluation], oracle: Oracle | None, path: Path) -> Path:
    """Harrell's C-index with its confidence interval per cohort; the synthetic generator's oracle C-index beside it."""
    cohorts = list(evaluation)
    with plt.rc_context(STYLE):
        rows_h, top_h, bottom_h = 0.4 * len(cohorts), 0.4, 0.45
        fig_h = rows_h + top_h + bottom_h
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, fig_h))
        fig.subplots_adjust(left=0.3, right=0.72, top=1 - top_h / fig_h, bottom=bottom_h / fig_h)
        ax.axvline(0.5, **REFERENCE_LINE)
        ax.text(1.03, -0.6, f"C-index ({ci_label()})", transform=ax.get_yaxis_transform(), ha="left",
                va="center", fontweight="bold")
        for i, name in enumerate(cohorts):
            ev = evaluation[name]
            c, lo, hi = ev.c_index, ev.c_lower, ev.c_upper
            if lo is not None and hi is not None:
                ax.plot([lo, hi], [i, i], color=GROUP_COLOURS["low"], lw=1.4)
            ax.plot([as_float(c)], [i], "o", color=GROUP_COLOURS["low"], ms=5, label="Model" if i == 0 else None)
            label = fmt_ci(c, lo, hi)
            oracle_c = oracle_c_index(oracle, name)
            if oracle_c is not None:
                ax.plot([oracle_c], [i], "D", mfc="white", mec=ORACLE_COLOUR, ms=5,
                        label="Oracle (true risk)" if i == 0 else None)
                label += f"; oracle {fmt_num(oracle_c, 2)}"
            ax.text(1.03, i, label, transform=ax.get_yaxis_transform(), ha="left", va="center")
        ax.set_yticks(range(len(cohorts)))
        ax.set_yticklabels([evaluation[n].cohort_label for n in cohorts])
        ax.set_ylim(len(cohorts) - 0.5, -0.5)
        ax.set_xlim(0.4, 1.0)
        ax.set_xlabel("Harrell's C-index")
        legend_outside(ax, "above")
        return save(fig, path)
