"""Time-dependent ROC curves and the AUC over time (Blanche, Dartigues & Jacqmin-Gadda, Stat
Med 2013;32:5381–5397)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from studyrunner.report.figures.style import (
    FONT_SIZE,
    REFERENCE_LINE,
    STYLE,
    TEXT_WIDTH_IN,
    roc_axes,
    save,
    time_colour,
)
from studyrunner.report.formatting import AUC_DIGITS, ci_label, fmt_num, fmt_time


def draw_time_roc(time_roc: Mapping[str, Any], cohort_label: str, path: Path) -> Path:
    """Left: the cumulative/dynamic ROC curve at each time (AUC in the legend). Right: AUC
    against time with its confidence interval; times where the AUC is not estimable are marked."""
    times = list(time_roc.get("times") or [])
    auc, lower, upper = (list(time_roc.get(k) or [None] * len(times)) for k in ("auc", "lower", "upper"))
    with plt.rc_context(STYLE):
        fig, (ax_roc, ax_auc) = plt.subplots(1, 2, figsize=(TEXT_WIDTH_IN, 3.0),
                                             gridspec_kw={"width_ratios": [1, 1.15], "wspace": 0.32})
        fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.15)
        _roc_curves(ax_roc, time_roc, auc, cohort_label)
        _auc_over_time(ax_auc, times, auc, lower, upper, time_roc.get("time_unit") or "")
        return save(fig, path)


def _roc_curves(ax: Axes, time_roc: Mapping[str, Any], auc: Sequence[Any], cohort_label: str) -> None:
    """The ROC curve at each time with an estimable AUC."""
    unit = time_roc.get("time_unit") or ""
    curves = time_roc.get("roc") or {}
    ax.plot([0, 1], [0, 1], **REFERENCE_LINE)
    for i, t in enumerate(time_roc.get("times") or []):
        curve = curves.get(fmt_time(t)) or curves.get(str(t))
        if not curve or auc[i] is None:
            continue
        ax.plot(curve["fp"], curve["tp"], color=time_colour(i), lw=1.1,
                label=f"{fmt_time(t)} {unit}: AUC {fmt_num(auc[i], AUC_DIGITS)}")
    roc_axes(ax, "1 \u2212 specificity (false-positive rate)", "Sensitivity (true-positive rate)")
    ax.legend(loc="lower right", handlelength=1.2)
    ax.set_title(cohort_label, loc="left")


def _auc_over_time(ax: Axes, times: Sequence[float], auc: Sequence[Any], lower: Sequence[Any],
                   upper: Sequence[Any], unit: str) -> None:
    """The AUC with its interval at each time, joined by a grey line; "not estimable" where it is None."""
    ax.axhline(0.5, **REFERENCE_LINE)
    for i, t in enumerate(times):
        if auc[i] is None:
            ax.text(t, 0.52, "not\nestimable", ha="center", va="bottom", fontsize=FONT_SIZE - 1.5, color="#777777")
            continue
        if lower[i] is not None and upper[i] is not None:
            ax.plot([t, t], [lower[i], upper[i]], color=time_colour(i), lw=1.3)
        ax.plot([t], [auc[i]], "o", color=time_colour(i), ms=4.5)
        ax.text(t, (upper[i] if upper[i] is not None else auc[i]) + 0.015, fmt_num(auc[i], AUC_DIGITS),
                ha="center", va="bottom", fontsize=FONT_SIZE - 1.5)
    shown = [(t, a) for t, a in zip(times, auc, strict=False) if a is not None]
    if len(shown) > 1:
        ax.plot([t for t, _ in shown], [a for _, a in shown], color="#888888", lw=0.7, zorder=0)
    if times:
        span = max(times) - min(times) or 1.0
        ax.set_xlim(min(times) - 0.12 * span, max(times) + 0.12 * span)
        ax.set_xticks(times)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_time(v)))
    limits = [v for v in [*lower, *auc] if v is not None]
    ax.set_ylim(min([0.4] + [v - 0.05 for v in limits]), 1.05)
    ax.set_xlabel(f"Time ({unit})")
    ax.set_ylabel(f"Time-dependent AUC ({ci_label()})")
