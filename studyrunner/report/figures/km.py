"""Kaplan–Meier curves of the low- and high-risk groups of one cohort.

Curves with pointwise 95% confidence bands and a numbers-at-risk table follow Pocock, Clayton
& Altman, "Survival plots of time-to-event outcomes in clinical trials: good practice and
pitfalls", Lancet 2002;359:1686–1689. ``from_zero`` and ``risk_table`` also serve the small
panels of ``figures.km_panels``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from studyrunner.report.figures.style import (
    FONT_SIZE,
    GROUP_LABELS,
    STYLE,
    TEXT_WIDTH_IN,
    floats,
    group_colour,
    hide_spines,
    legend_outside,
    save,
    tick_formatter,
)
from studyrunner.report.formatting import ci_label, fmt_hr, fmt_int, fmt_num, fmt_p_eq, fmt_survival_median
from studyrunner.results.models import (
    Counts,
    GroupEvents,
    HypothesisTest,
    KmCurve,
    MedianSurvival,
    RiskTable,
    Stratification,
)

PLOT_H_IN, AXIS_H_IN = 2.7, 0.5  # AXIS_H_IN: room for the x tick labels and the axis label
PLOT_RIGHT = 0.64  # the plot's right edge (figure fraction): the legend and the tests sit right of it


def from_zero(times: Sequence[float | None], values: Sequence[float | None]) -> tuple[list[float], list[float]]:
    """Prepend (0, 1) when a survival curve (e.g. R's survfit) does not start at time 0.

    R leaves a confidence limit NA where it is undefined (survival 0); it becomes NaN, which
    matplotlib leaves out of the band."""
    t, v = floats(times), floats(values)
    if not t or t[0] > 0:
        t, v = [0.0, *t], [1.0, *v]
    return t, v


def risk_counts(risk: RiskTable | None) -> dict[str, Counts]:
    """The numbers at risk by group ("low", "high"), for the groups the table has counts for."""
    if risk is None:
        return {}
    return {group: counts for group, counts in (("low", risk.low), ("high", risk.high)) if counts}


def risk_times(risk: RiskTable | None) -> list[float]:
    """The times of the numbers-at-risk table (none without a table)."""
    return floats(risk.times) if risk is not None else []


def km_groups(evaluation: Stratification) -> list[str]:
    """The groups with a curve: low and high risk first, then any other group in recorded order."""
    return [g for g in ("low", "high") if g in evaluation.km] + [g for g in evaluation.km if g not in ("low", "high")]


def draw_km(evaluation: Stratification, endpoint_label: str, path: Path, *, cohort_label: str,
            time_unit: str | None, search: HypothesisTest | None = None) -> Path:
    """Kaplan–Meier curves of the low- and high-risk groups of one cohort (``cohort_label`` in
    the title; time in ``time_unit``, days when None).

    Draws each group's step curve with its 95% confidence band, the log-rank test and the
    hazard ratio (high vs low) in the plot, and a numbers-at-risk table under the plot
    whose columns sit exactly under the x-axis ticks (the risk table's ``times``).
    """
    groups = km_groups(evaluation)
    counts = risk_counts(evaluation.risk_table)
    rows = [g for g in groups if g in counts]
    unit = time_unit or "days"
    with plt.rc_context(STYLE):
        fig, ax, table_spec = _km_layout(len(rows))
        _km_curves(ax, evaluation, groups, unit)
        _km_axes(ax, evaluation, endpoint_label, groups, unit)
        ax.set_title(f"{cohort_label} (n = {fmt_int(evaluation.n)}, events = {fmt_int(evaluation.n_events)})",
                     loc="left")
        median_lines(ax, evaluation.median_survival)
        annotation_below_legend(fig, ax, km_annotation(evaluation, search))
        if evaluation.risk_table is not None and rows:
            table_ax = fig.add_subplot(table_spec)
            table_ax.set_xlim(ax.get_xlim())
            risk_table(table_ax, evaluation.risk_table, rows, risk_times(evaluation.risk_table))
        return save(fig, path)


def _km_layout(n_rows: int) -> tuple[Figure, Axes, Any]:
    """The figure, the plot's axes and the grid cell of a risk table of ``n_rows`` groups."""
    table_h = 0.2 + 0.17 * n_rows if n_rows else 0.0
    fig_h = 0.35 + PLOT_H_IN + AXIS_H_IN + table_h + 0.05
    fig = plt.figure(figsize=(TEXT_WIDTH_IN, fig_h))
    grid = fig.add_gridspec(3, 1, height_ratios=[PLOT_H_IN, AXIS_H_IN, max(table_h, 0.01)], hspace=0.0,
                            left=0.13, right=PLOT_RIGHT, top=1 - 0.35 / fig_h, bottom=0.05 / fig_h)
    return fig, fig.add_subplot(grid[0]), grid[2]


def _km_curves(ax: Axes, evaluation: Stratification, groups: Sequence[str], unit: str) -> None:
    """Each group's step curve and 95% band; the legend label has the group's patients and
    events (``group_text``) and the median survival."""
    counts = risk_counts(evaluation.risk_table)
    times = risk_times(evaluation.risk_table)
    medians = evaluation.median_survival
    for g in groups:
        colour = group_colour(g)
        curve: KmCurve = evaluation.km[g]
        t, s = from_zero(curve.time, curve.surv)
        n_at_start = counts[g][0] if g in counts and times and times[0] == 0 else None
        label = GROUP_LABELS.get(g, g) + group_text(evaluation.groups.get(g), n_at_start)
        if g in medians:
            reached = medians[g].median is not None
            digits = 0 if unit == "days" else 1  # days are whole: "579 (250–NR) days"
            label += f"\nmedian {fmt_survival_median(medians[g], digits)}" + (f" {unit}" if reached else "")
        ax.step(t, s, where="post", color=colour, label=label)
        if curve.lower and curve.upper:
            _, lo = from_zero(curve.time, curve.lower)
            _, hi = from_zero(curve.time, curve.upper)
            ax.fill_between(t, lo, hi, step="post", color=colour, alpha=0.15, linewidth=0)


def _km_axes(ax: Axes, evaluation: Stratification, endpoint_label: str, groups: Sequence[str], unit: str) -> None:
    """Limits, ticks at the risk table's times, labels and legend."""
    times = risk_times(evaluation.risk_table)
    ends = [max(t for t in curve.time if t is not None) for curve in (evaluation.km[g] for g in groups)
            if any(t is not None for t in curve.time)]
    ax.set_xlim(0, max([*ends, *times, 1.0]) * 1.02)
    ax.set_ylim(0, 1.03)
    ax.set_ylabel(f"{endpoint_label} probability")
    if times:
        ax.set_xticks(times)
    ax.xaxis.set_major_formatter(tick_formatter(0))
    ax.set_xlabel(f"Time ({unit})")
    legend_outside(ax, "right", title=f"{ci_label()} shaded", title_fontsize=FONT_SIZE - 1)


def group_text(group: GroupEvents | None, n_at_start: int | None = None) -> str:
    """A risk group's size and events for a legend: " (n = 19, 1 event)"; the number at risk
    at time 0 when the group's counts were not recorded; "" when neither is known."""
    if group is not None:
        return f" (n = {fmt_int(group.n)}, {fmt_int(group.n_events)} event{'' if group.n_events == 1 else 's'})"
    return f" (n = {fmt_int(n_at_start)})" if n_at_start is not None else ""


def annotation_below_legend(fig: Figure, ax: Axes, text: str) -> None:
    """``text`` (the tests) right of the plot under its legend, outside the plotting area."""
    legend = ax.get_legend()
    fig.canvas.draw()
    box = (legend.get_window_extent() if legend is not None else ax.get_window_extent())
    corner = fig.transFigure.inverted().transform((box.x0, box.y0 if legend is not None else box.y1))
    fig.text(corner[0] + 0.005, corner[1] - 0.03, text, ha="left", va="top", fontsize=FONT_SIZE - 0.5)


def km_annotation(evaluation: Stratification, search: HypothesisTest | None = None, width: int = 40) -> str:
    """The log-rank and hazard-ratio lines printed beside a Kaplan–Meier plot, wrapped to
    ``width`` characters. ``search``: the cut-off search's test when this cohort chose the
    cut-off (maxstat, X-tile): its p-value, adjusted for the search, comes first and the plain
    log-rank p is labelled "unadjusted"."""
    chisq = evaluation.logrank_chisq
    logrank = "Log-rank " + (f"\u03c7\u00b2 = {fmt_num(chisq, 2)}, " if chisq is not None else "")
    logrank += fmt_p_eq(evaluation.logrank_p)
    lines = [logrank]
    if search is not None and search.p is not None:
        lines = [f"Cut-off search {fmt_p_eq(search.p)} ({search.method}-adjusted)", f"{logrank} (unadjusted)"]
    note = evaluation.hr_reason
    hr = evaluation.hr
    hr_text = fmt_hr(hr, evaluation.hr_lower, evaluation.hr_upper, reason=note)
    label = f"HR, {note}" if note and hr is not None else "HR (high vs low)"
    lines.append(f"{label}: {hr_text}")
    return "\n".join(wrapped for line in lines for wrapped in textwrap.wrap(line, width, subsequent_indent="  "))


def median_lines(ax: Axes, medians: Mapping[str, MedianSurvival]) -> None:
    """Dotted guides from S = 0.5 down to each group's median survival (groups whose median is reached)."""
    reached = {g: float(record.median) for g, record in medians.items() if record.median is not None}
    if not reached:
        return
    ax.plot([0, max(reached.values())], [0.5, 0.5], color="#888888", lw=0.6, ls=":")
    for g, median in reached.items():
        ax.plot([median, median], [0, 0.5], color=group_colour(g), lw=0.8, ls=":")


def risk_table(ax: Axes, risk: RiskTable, rows: Sequence[str], times: Sequence[float]) -> None:
    """Numbers at risk, one row per group of ``rows`` (groups with counts in ``risk``), each
    value centred under its x tick."""
    counts = risk_counts(risk)
    ax.set_ylim(len(rows) - 0.5, -1.1)
    hide_spines(ax)
    ax.tick_params(axis="x", which="both", bottom=False, labelbottom=False)
    ax.tick_params(axis="y", which="both", left=False, pad=10)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([GROUP_LABELS.get(g, g) for g in rows])
    for label, g in zip(ax.get_yticklabels(), rows, strict=False):
        label.set_color(group_colour(g))
    for i, g in enumerate(rows):
        for t, n in zip(times, counts[g], strict=False):
            ax.text(t, i, fmt_int(n), ha="center", va="center", fontsize=FONT_SIZE - 0.5,
                    color=group_colour(g))
    ax.text(0.0, -0.95, "Number at risk", transform=ax.get_yaxis_transform(), ha="left", va="center",
            fontsize=FONT_SIZE - 0.5, fontweight="bold")
