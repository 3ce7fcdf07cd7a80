"""Small Kaplan–Meier panels in rows, for the subgroup and response-score figures.

Each panel keeps ``figures.km.draw_km``'s curves, 95% bands, log-rank p, hazard ratio and
numbers at risk (Pocock, Clayton & Altman, Lancet 2002;359:1686-1689) in a fraction of its size.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from studyrunner.protocol import TimeToEventEndpoint
from studyrunner.report.figures.km import from_zero, group_text, risk_counts, risk_table, risk_times
from studyrunner.report.figures.style import FONT_SIZE, GROUP_COLOURS, STYLE, TEXT_WIDTH_IN, save, tick_formatter
from studyrunner.report.formatting import ci_label, fmt_hr, fmt_int, fmt_p_eq
from studyrunner.results.models import CutpointGroups, Stratification, SubgroupLevel

PanelBlock = Stratification | SubgroupLevel | CutpointGroups
"""A risk-group split with Kaplan-Meier curves: a score in a cohort, in a subgroup level, or
at a response score's cut-off."""


class Panel(NamedTuple):
    """A small panel: its title, the block, the risk groups' labels and, where a group is not
    the risk group its key names (a response score: PRS above its cut-off is the lower-risk
    group), the risk each group stands for ({"high": "low"}), which sets its colour: the
    higher-risk group has the same colour in every figure."""

    title: str
    block: PanelBlock
    labels: Mapping[str, str]
    risk: Mapping[str, str] | None = None

    def colour(self, group: str) -> str:
        """The group's colour: that of the risk it stands for."""
        return GROUP_COLOURS[(self.risk or {}).get(group, group)]


def km_note(block: PanelBlock, width: int = 32) -> str:
    """The log-rank p and the hazard ratio (high vs low) of a small panel, wrapped to ``width``."""
    hr, reason = block.hr, block.hr_reason
    label = f"HR ({reason})" if reason and hr is not None else "HR (high vs low)"
    hr_text = fmt_hr(hr, block.hr_lower, block.hr_upper, reason=reason)
    return "\n".join([f"Log-rank {fmt_p_eq(block.logrank_p)}", *textwrap.wrap(f"{label} {hr_text}", width)])


def draw_km_panels(panels: Sequence[Panel], endpoint: TimeToEventEndpoint, heading: str, path: Path,
                   columns: int = 3) -> Path:
    """Small Kaplan-Meier panels in rows of ``columns``: (title, groups_by_cutpoint-shaped block, group labels)."""
    n_rows = math.ceil(len(panels) / columns)
    n_cols = min(columns, len(panels))
    fig_h = 0.35 + 3.3 * n_rows
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(TEXT_WIDTH_IN, fig_h))
        grid = fig.add_gridspec(n_rows, n_cols, left=0.13 if n_cols > 1 else 0.2, right=0.98,
                                top=1 - 0.5 / fig_h, bottom=0.1 / fig_h, hspace=0.35,
                                wspace=0.3 if all(p[2] == panels[0][2] for p in panels) else 0.55)
        unit = endpoint.unit
        for k, panel in enumerate(panels):
            first = k % n_cols == 0 or panel.labels != panels[k - 1].labels
            ax = km_panel(fig, grid[k // n_cols, k % n_cols], panel, unit, first,
                          wrap=int(0.8 * TEXT_WIDTH_IN / n_cols / 0.055))
            if k % n_cols == 0:
                ax.set_ylabel(f"{endpoint.label} probability", fontsize=FONT_SIZE - 1)
        fig.text(0.01, 1 - 0.06 / fig_h, heading, ha="left", va="top", fontweight="bold")
        fig.text(0.99, 1 - 0.06 / fig_h, f"{ci_label()} shaded", ha="right", va="top", fontsize=FONT_SIZE - 1,
                 color="#444444")
        return save(fig, path)


def km_panel(fig: Figure, spec: Any, panel: Panel, unit: str, first: bool, wrap: int) -> Axes:
    """A small Kaplan-Meier panel: curves with 95% bands; under them (outside the curves) the
    group sizes and events, log-rank p and HR, then the numbers at risk (row labels only when
    ``first``). Returns the curves' axes."""
    title, block = panel.title, panel.block
    inner = spec.subgridspec(3, 1, height_ratios=[3.2, 1.3, 1.0], hspace=0.4)
    ax = fig.add_subplot(inner[0])
    ax.set_title(title, loc="left", fontsize=FONT_SIZE - 0.5)
    if not block.km:
        ax.axis("off")
        reason = getattr(block, "reason", None)
        ax.text(0.0, 0.85, "\n".join(["Not evaluated:", *textwrap.wrap(reason or "no curves", wrap)]),
                ha="left", va="top", transform=ax.transAxes, fontsize=FONT_SIZE - 1, color="#444444")
        return ax
    _panel_curves(ax, panel, unit)
    note = fig.add_subplot(inner[1])
    note.axis("off")
    note.legend(*ax.get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(-0.03, 0.92),
                title=km_note(block, wrap), fontsize=FONT_SIZE - 1.5, title_fontsize=FONT_SIZE - 1.5,
                handlelength=1.2, alignment="left", labelspacing=0.2, borderpad=0.1)
    risk = block.risk_table
    rows = [g for g in ("low", "high") if g in risk_counts(risk)]
    if risk is not None and rows and risk.times:
        _panel_risk_table(fig.add_subplot(inner[2]), ax, panel, rows, first)
    return ax


def _panel_curves(ax: Axes, panel: Panel, unit: str) -> None:
    """The low and high groups' curves and bands (legend: patients and events), ticks at the
    risk table's times."""
    block, labels = panel.block, panel.labels
    km, groups = block.km or {}, block.groups or {}
    times = risk_times(block.risk_table)
    for g in [g for g in ("low", "high") if g in km]:
        curve = km[g]
        t, s = from_zero(curve.time, curve.surv)
        group = groups.get(g)
        count = group_text(group) or f" (n = {fmt_int(None)})"
        ax.step(t, s, where="post", color=panel.colour(g), lw=1.1, label=f"{labels[g]}{count}")
        if curve.lower and curve.upper:
            ax.fill_between(t, from_zero(curve.time, curve.lower)[1], from_zero(curve.time, curve.upper)[1],
                            step="post", color=panel.colour(g), alpha=0.13, linewidth=0)
    ax.set_ylim(0, 1.03)
    ax.set_xlim(0, max([*times, 1.0]) * 1.02)
    if times:
        ax.set_xticks(times)
    ax.xaxis.set_major_formatter(tick_formatter(0))
    ax.yaxis.set_major_formatter(tick_formatter(1))
    ax.tick_params(labelsize=FONT_SIZE - 1.5)
    ax.set_xlabel(f"Time ({unit})", fontsize=FONT_SIZE - 1)


def _panel_risk_table(table: Axes, curves: Axes, panel: Panel, rows: Sequence[str], first: bool) -> None:
    """``km.risk_table`` in the panel's smaller type, rows named by the panel's group labels
    and coloured by the risk each group stands for."""
    risk = panel.block.risk_table
    assert risk is not None  # km_panel draws a table only for a block with one
    table.set_xlim(curves.get_xlim())
    risk_table(table, risk, rows, risk_times(risk))
    table.set_yticklabels([panel.labels[g] for g in rows])
    for tick, g in zip(table.get_yticklabels(), rows, strict=False):
        tick.set_color(panel.colour(g))
    for text in table.texts:
        text.set_fontsize(FONT_SIZE - 2)
    for row, g in enumerate(rows):
        for text in table.texts:
            if text.get_position()[1] == row:
                text.set_color(panel.colour(g))
    table.tick_params(axis="y", labelleft=first, labelsize=FONT_SIZE - 2)
