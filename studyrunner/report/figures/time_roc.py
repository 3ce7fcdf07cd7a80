"""Time-dependent ROC curves and the AUC over time (Blanche, Dartigues & Jacqmin-Gadda, Stat
Med 2013;32:5381–5397)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from studyrunner.registry import time_key
from studyrunner.report.figures.style import (
    FONT_SIZE,
    REFERENCE_LINE,
    STYLE,
    TEXT_WIDTH_IN,
    as_float,
    floats,
    legend_outside,
    roc_axes,
    save,
    time_colour,
)
from studyrunner.report.formatting import AUC_DIGITS, ci_label, fmt_int, fmt_num, fmt_time
from studyrunner.results.models import TimeRoc

LEGEND_LINE_IN = 0.15  # height of one legend line at the legend's font size, with its spacing


def draw_time_roc(time_roc: TimeRoc, cohort_label: str, path: Path) -> Path:
    """Left: the cumulative/dynamic ROC curve at each time (AUC in the legend). Right: AUC
    against time with its confidence interval; times where the AUC is not estimable or withheld are
    marked. Each AUC carries the numbers of cases/controls it compares."""
    unit = time_roc.time_unit or ""
    with plt.rc_context(STYLE):
        shown = sum(1 for key in map(time_key, floats(time_roc.times)) if key in time_roc.roc)
        height = 3.0 + LEGEND_LINE_IN * (shown + 1)  # the legend (title and one line per curve) below the axes
        fig, (ax_roc, ax_auc) = plt.subplots(1, 2, figsize=(TEXT_WIDTH_IN, height),
                                             gridspec_kw={"width_ratios": [1, 1.15], "wspace": 0.32})
        fig.subplots_adjust(left=0.08, right=0.98, top=1 - 0.3 / height,
                            bottom=(0.5 + LEGEND_LINE_IN * (shown + 1)) / height)
        _roc_curves(ax_roc, time_roc, unit, cohort_label)
        _auc_over_time(ax_auc, time_roc, unit)
        legend_outside(ax_roc, "below", ncol=1, handlelength=1.6, title="AUC (cases/controls)",
                       title_fontsize=FONT_SIZE - 1)
        return save(fig, path)


def counts_label(time_roc: TimeRoc, i: int) -> str:
    """"cases/controls" at the i-th time ("" when the record has no counts)."""
    if i >= len(time_roc.cases) or i >= len(time_roc.controls):
        return ""
    return f"{fmt_int(time_roc.cases[i])}/{fmt_int(time_roc.controls[i])}"


def _roc_curves(ax: Axes, time_roc: TimeRoc, unit: str, cohort_label: str) -> None:
    """The ROC curve at each time with an estimable AUC (its curve keyed by ``time_key``), with
    the cases/controls it compares; a withheld AUC's curve dashed and labelled "withheld"."""
    ax.plot([0, 1], [0, 1], **REFERENCE_LINE)
    for i, (t, auc) in enumerate(zip(time_roc.times, time_roc.auc, strict=False)):
        key = time_key(as_float(t))
        withheld = time_roc.withheld.get(key)
        if (auc is None and withheld is None) or key not in time_roc.roc:
            continue
        curve = time_roc.roc[key]
        counts = counts_label(time_roc, i)
        counts = f" ({counts})" if counts else ""
        if withheld is not None:
            ax.plot(floats(curve.fp), floats(curve.tp), color=time_colour(i), lw=0.8, ls="--", alpha=0.6,
                    label=f"{fmt_time(t)} {unit}: withheld{counts}")
            continue
        ax.plot(floats(curve.fp), floats(curve.tp), color=time_colour(i), lw=1.1,
                label=f"{fmt_time(t)} {unit}: AUC {fmt_num(auc, AUC_DIGITS)}{counts}")
    roc_axes(ax, "1 \u2212 specificity (false-positive rate)", "Sensitivity (true-positive rate)")
    ax.set_title(cohort_label, loc="left")


def _auc_over_time(ax: Axes, time_roc: TimeRoc, unit: str) -> None:
    """The AUC with its interval at each time, joined by a grey line; "not estimable" where it is None."""
    times = [as_float(t) for t in time_roc.times]
    ax.axhline(0.5, **REFERENCE_LINE)
    for i, (t, auc, lower, upper) in enumerate(zip(times, time_roc.auc, time_roc.lower, time_roc.upper,
                                                   strict=False)):
        counts = counts_label(time_roc, i)
        withheld = time_roc.withheld.get(time_key(t))
        if auc is None:
            word = "withheld" if withheld is not None else "not\nestimable"
            ax.text(t, 0.52, f"{word}\n{counts}".strip(), ha="center", va="bottom", fontsize=FONT_SIZE - 1.5,
                    color="#777777")
            continue
        if lower is not None and upper is not None:
            ax.plot([t, t], [lower, upper], color=time_colour(i), lw=1.3)
        ax.plot([t], [auc], "o", color=time_colour(i), ms=4.5)
        ax.text(t, (upper if upper is not None else auc) + 0.015, f"{fmt_num(auc, AUC_DIGITS)}\n{counts}".strip(),
                ha="center", va="bottom", fontsize=FONT_SIZE - 1.5, linespacing=1.0)
    shown = [(t, a) for t, a in zip(times, time_roc.auc, strict=False) if a is not None]
    if len(shown) > 1:
        ax.plot([t for t, _ in shown], [a for _, a in shown], color="#888888", lw=0.7, zorder=0)
    _auc_axes(ax, times, [v for v in [*time_roc.lower, *time_roc.auc] if v is not None], unit)


def _auc_axes(ax: Axes, times: Sequence[float], limits: Sequence[float], unit: str) -> None:
    """Ticks at the times, a y range holding every lower limit and AUC, the axis labels."""
    if times:
        span = max(times) - min(times) or 1.0
        ax.set_xlim(min(times) - 0.12 * span, max(times) + 0.12 * span)
        ax.set_xticks(times)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_time(v)))
    ax.set_ylim(min([0.4] + [v - 0.05 for v in limits]), 1.05)
    ax.set_xlabel(f"Time ({unit})")
    ax.set_ylabel(f"Time-dependent AUC ({ci_label()})")
