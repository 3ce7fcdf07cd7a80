"""The distribution of the cross-validated time-dependent AUCs over the folds, training folds
beside validation folds: a box from the lower to the upper quartile with the median, whiskers
to the minimum and maximum (the range the table prints), and every fold's value as a dot."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from studyrunner.registry import time_key
from studyrunner.report.figures.style import FONT_SIZE, REFERENCE_LINE, STYLE, TEXT_WIDTH_IN, as_float, floats, save
from studyrunner.report.formatting import AUC_DIGITS, fmt_num, fmt_time
from studyrunner.results.models import CrossValidation, FoldSummary

FoldSummaries = Mapping[str, FoldSummary | None]
"""A part's fold AUC summaries keyed by ``registry.time_key``."""

PART_STYLES = (("Training folds", "#1f5f8b"), ("Validation folds", "#c98a00"))
WITHHELD_ALPHA = 0.35  # a withheld time's boxes are drawn faint and without their medians


def fold_parts(cv: CrossValidation) -> list[tuple[FoldSummaries, str, str]]:
    """(summaries, legend label, colour) of the training folds, then of the validation folds."""
    return [(summaries, label, colour)
            for summaries, (label, colour) in zip((cv.training, cv.validation), PART_STYLES, strict=True)]


def fold_summary(summaries: FoldSummaries, t: float) -> FoldSummary | None:
    """The fold AUC summary at time ``t`` (None when not recorded)."""
    return summaries.get(time_key(t))


def draw_cross_validation(cv: CrossValidation, path: Path, withheld: Collection[str] = ()) -> Path:
    """Fold AUCs per time, training folds beside validation folds: with the individual fold values
    recorded ("values") a box (quartiles, median) with whiskers over the whole range and the values
    as dots; else the median (dot) and the range (line). ``withheld``: the time keys where the
    training cohort's AUC rests on too few cases or controls (``TimeRoc.withheld``); their folds
    are drawn faint, without printed medians, under a "withheld" tick label."""
    unit = cv.time_unit or ""
    parts = fold_parts(cv)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, 2.5))
        fig.subplots_adjust(left=0.1, right=0.98, top=0.88, bottom=0.17)
        ax.axhline(0.5, **REFERENCE_LINE)
        for i, t in enumerate(cv.times):
            for j, (summaries, _, colour) in enumerate(parts):
                summary = fold_summary(summaries, t)
                if summary is not None and summary.median is not None:
                    _fold_aucs(ax, i + (j - 0.5) * 0.36, summary, colour, time_key(t) in withheld)
        for _, label, colour in parts:
            ax.plot([], [], "o-", color=colour, label=label, ms=4)
        ax.set_xticks(range(len(cv.times)))
        ax.set_xticklabels([f"{fmt_time(t)} {unit}" + ("\n(withheld)" if time_key(t) in withheld else "")
                            for t in cv.times])
        ax.set_xlim(-0.6, len(cv.times) - 0.4)
        lows = [summary.min for summaries, _, _ in parts for summary in summaries.values()
                if summary is not None and summary.min is not None]
        ax.set_ylim(min([0.4] + [v - 0.05 for v in lows]), 1.02)
        ax.set_ylabel("Time-dependent AUC")
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, borderaxespad=0.2)
        return save(fig, path)


def _fold_aucs(ax: Axes, x: float, summary: FoldSummary, colour: str, withheld: bool = False) -> None:
    """One part at one time: a box with the fold values when recorded, else the range and the
    median; the median printed beside it unless the time is withheld (then all is drawn faint)."""
    values = floats(summary.values)
    median = as_float(summary.median)
    alpha = WITHHELD_ALPHA if withheld else 1.0
    if values:
        ax.boxplot([values], positions=[x], widths=0.22, whis=(0, 100), showfliers=False, patch_artist=True,
                   medianprops={"color": colour, "lw": 1.4, "alpha": alpha},
                   whiskerprops={"color": colour, "alpha": alpha}, capprops={"color": colour, "alpha": alpha},
                   boxprops={"facecolor": "white", "edgecolor": colour, "alpha": alpha})
        offsets = [((k * 0.618) % 1 - 0.5) * 0.16 for k in range(len(values))]
        ax.scatter([x + o for o in offsets], values, s=5, color=colour, alpha=0.6 * alpha, zorder=3, lw=0)
    else:
        ends = [as_float(summary.min), as_float(summary.max)]
        ax.plot([x, x], ends, color=colour, lw=1.4, alpha=alpha)
        for end in ends:
            ax.plot([x - 0.05, x + 0.05], [end, end], color=colour, lw=1.0, alpha=alpha)
        ax.plot([x], [median], "o", color=colour, ms=5, alpha=alpha)
    if withheld:
        return
    ax.text(x + (0.12 if values else 0.05), median, f" {fmt_num(median, AUC_DIGITS)}",
            ha="left", va="center", fontsize=FONT_SIZE - 1.5)
