"""The distribution of the cross-validated time-dependent AUCs over the folds, training folds
beside validation folds."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from studyrunner.report.figures.style import FONT_SIZE, REFERENCE_LINE, STYLE, TEXT_WIDTH_IN, save
from studyrunner.report.formatting import AUC_DIGITS, fmt_num, fmt_time

PARTS = (("training", "Training folds", "#1f5f8b"), ("validation", "Validation folds", "#c98a00"))


def fold_summary(cv: Mapping[str, Any], part: str, t: float) -> Mapping[str, Any] | None:
    """The fold AUC summary of ``part`` ("training", "validation") at time ``t``."""
    by_time = cv.get(part) or {}
    return by_time.get(fmt_time(t)) or by_time.get(str(t))


def draw_cross_validation(cv: Mapping[str, Any], path: Path) -> Path:
    """Fold AUCs per time, training folds beside validation folds: the median (dot) and the range
    (line); when the individual fold values are recorded ("values") a box and the points are drawn."""
    times = list(cv.get("times") or [])
    unit = cv.get("time_unit") or ""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, 2.5))
        fig.subplots_adjust(left=0.1, right=0.98, top=0.88, bottom=0.17)
        ax.axhline(0.5, **REFERENCE_LINE)
        for i, t in enumerate(times):
            for j, (key, _, colour) in enumerate(PARTS):
                summary = fold_summary(cv, key, t)
                if summary and summary.get("median") is not None:
                    _fold_aucs(ax, i + (j - 0.5) * 0.36, summary, colour)
        for _, label, colour in PARTS:
            ax.plot([], [], "o-", color=colour, label=label, ms=4)
        ax.set_xticks(range(len(times)))
        ax.set_xticklabels([f"{fmt_time(t)} {unit}" for t in times])
        ax.set_xlim(-0.6, len(times) - 0.4)
        lows = [summary.get("min") for key, _, _ in PARTS for summary in (cv.get(key) or {}).values()
                if summary and summary.get("min") is not None]
        ax.set_ylim(min([0.4] + [v - 0.05 for v in lows]), 1.02)
        ax.set_ylabel("Time-dependent AUC")
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, borderaxespad=0.2)
        return save(fig, path)


def _fold_aucs(ax: Axes, x: float, summary: Mapping[str, Any], colour: str) -> None:
    """One part at one time: a box with the fold values when recorded, else the range and the
    median; the median printed beside it."""
    values = summary.get("values")
    if values:
        ax.boxplot([values], positions=[x], widths=0.22, showfliers=False, patch_artist=True,
                   medianprops={"color": colour, "lw": 1.4}, whiskerprops={"color": colour},
                   capprops={"color": colour}, boxprops={"facecolor": "white", "edgecolor": colour})
        offsets = [((k * 0.618) % 1 - 0.5) * 0.16 for k in range(len(values))]
        ax.scatter([x + o for o in offsets], values, s=5, color=colour, alpha=0.6, zorder=3, lw=0)
    else:
        ends: list[Any] = [summary.get("min"), summary.get("max")]
        ax.plot([x, x], ends, color=colour, lw=1.4)
        for end in ends:
            ax.plot([x - 0.05, x + 0.05], [end, end], color=colour, lw=1.0)
        ax.plot([x], [summary["median"]], "o", color=colour, ms=5)
    ax.text(x + (0.12 if values else 0.05), summary["median"], f" {fmt_num(summary['median'], AUC_DIGITS)}",
            ha="left", va="center", fontsize=FONT_SIZE - 1.5)
