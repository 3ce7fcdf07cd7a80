"""Forest plots of the headline CNN score (Lewis & Clarke, BMJ 2001;322:1479–1480): its hazard
ratio (high against low risk group, log scale) and C-index within each subgroup level, and the
difference of Harrell's C-indices of the fused score and its component per cohort (Wald
interval of the difference; Kang et al., Stat Med 2015;34:685–703)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import blended_transform_factory

from studyrunner.report.deep_view import comparison_rows
from studyrunner.report.figures.clinical_cox import forest_limits
from studyrunner.report.figures.labels import column_label, level_label, score_label
from studyrunner.report.figures.style import (
    FONT_SIZE,
    GROUP_COLOURS,
    NEUTRAL,
    REFERENCE_LINE,
    STYLE,
    TEXT_WIDTH_IN,
    save,
)
from studyrunner.report.formatting import ci_label, fmt_auc, fmt_hr, fmt_int, fmt_num, fmt_p_eq, fmt_value
from studyrunner.results.models import NotRun, RiskScores

ROW_H_IN, TOP_IN, BOTTOM_IN, NOTE_H_IN = 0.2, 0.32, 0.45, 0.16
LABEL_X_IN, INDENT_IN, GAP_IN, MIN_PLOT_IN = 0.05, 0.12, 0.15, 1.4
CHAR_W_IN = FONT_SIZE * 0.6 / 72  # a generous mean width of a DejaVu Sans character


@dataclass
class ForestRow:
    """One row: a heading (no estimate) or an estimate with its interval and its text columns."""

    label: str
    heading: bool = False
    estimate: float | None = None
    lower: float | None = None
    upper: float | None = None
    columns: list[str] = field(default_factory=list)
    note: str | None = None  # why the estimate is missing, printed under the plot


@dataclass
class Forest:
    """A forest plot: its rows, the headers of the text columns, the axis and its reference value."""

    rows: list[ForestRow]
    headers: list[str]
    xlabel: str
    log: bool
    reference: float


def subgroup_forest(risk: RiskScores) -> Forest | None:
    """The headline score's high- against low-risk hazard ratio in every evaluated subgroup
    level, with the level's patients (events) and C-index; None without any subgroup."""
    rows: list[ForestRow] = []
    for column, sub in risk.subgroups.items():
        if isinstance(sub, NotRun) or not sub.levels:
            continue
        rows.append(ForestRow(f"{column_label(column)} ({sub.cohort})" if sub.cohort else column_label(column),
                              heading=True))
        for level in sub.levels:
            reason = level.hr_reason or level.reason
            rows.append(ForestRow(level_label(level.level), estimate=level.hr, lower=level.hr_lower,
                                  upper=level.hr_upper,
                                  columns=[f"{fmt_int(level.n)} ({fmt_int(level.n_events)})",
                                           fmt_hr(level.hr, level.hr_lower, level.hr_upper), fmt_auc(level.c_index)],
                                  note=f"{column_label(column)} {level_label(level.level)}: HR not estimable ({reason})"
                                  if level.hr is None and reason else None))
    if not rows:
        return None
    headline = score_label(risk, risk.headline_score) if risk.headline_score else "score"
    return Forest(rows, ["n (events)", f"HR ({ci_label()})", "C-index"],
                  f"{headline}: hazard ratio, high vs low risk ({ci_label()}), log scale", log=True, reference=1.0)


def comparison_forest(risk: RiskScores) -> Forest | None:
    """Per cohort: C of the first comparison score minus C of the second, with its interval,
    both C-indices and the test of the difference; None without a comparison."""
    if not risk.comparison or len(risk.comparison_scores) != 2:
        return None
    a, b = (score_label(risk, name) for name in risk.comparison_scores)
    rows = [ForestRow(str(row["cohort"]), estimate=row["diff"], lower=row["diff_lower"], upper=row["diff_upper"],
                      columns=[fmt_auc(row["c_a"]), fmt_auc(row["c_b"]),
                               fmt_auc(row["diff"], row["diff_lower"], row["diff_upper"]),
                               fmt_p_eq(row["p"])],
                      note=f"{row['cohort']}: difference not tested ({row['test_reason']})"
                      if row["p"] is None and row.get("test_reason") else None)
            for row in comparison_rows(risk)]
    return Forest(rows, [f"C {a}", f"C {b}", f"Difference ({ci_label()})", "Test"],
                  f"Difference of Harrell's C-indices, {a} \u2212 {b}", log=False, reference=0.0)


def draw_forest_figure(forest: Forest, path: Path) -> Path:
    """Draw ``forest``: labels on the left, estimates with their intervals in the middle (an
    interval beyond the axis is clipped to it), the text columns on the right."""
    n = len(forest.rows)
    notes = [row.note for row in forest.rows if row.note]
    bottom_in = BOTTOM_IN + NOTE_H_IN * len(notes)
    fig_h = TOP_IN + ROW_H_IN * max(n, 1) + bottom_in
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, fig_h))
        left, starts = _layout(forest)
        fig.subplots_adjust(left=left, right=starts[0] - GAP_IN / TEXT_WIDTH_IN if starts else 0.98,
                            top=1 - TOP_IN / fig_h, bottom=bottom_in / fig_h)
        text = blended_transform_factory(fig.transFigure, ax.transData)
        lo_lim, hi_lim = _limits(forest)
        for x, header in zip(starts, forest.headers, strict=True):
            ax.text(x, -0.9, header, transform=text, ha="left", va="bottom", fontweight="bold")
        ax.axvline(forest.reference, **REFERENCE_LINE)
        for i, row in enumerate(forest.rows):
            x = (LABEL_X_IN + (0 if row.heading else INDENT_IN)) / TEXT_WIDTH_IN
            ax.text(x, i, row.label, transform=text, ha="left", va="center",
                    fontweight="bold" if row.heading else "normal")
            for x, value in zip(starts, row.columns, strict=False):
                ax.text(x, i, value, transform=text, ha="left", va="center")
            if row.estimate is None:
                continue
            if row.lower is not None and row.upper is not None:
                ax.plot([max(row.lower, lo_lim), min(row.upper, hi_lim)], [i, i], color=NEUTRAL, lw=1.2)
            ax.plot([row.estimate], [i], "s", color=GROUP_COLOURS["low"], ms=4)
        if forest.log:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_value(float(v))))
        else:
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_num(v, 2)))
        ax.set_xlim(lo_lim, hi_lim)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlabel(forest.xlabel)
        for k, note in enumerate(notes):
            fig.text(LABEL_X_IN / TEXT_WIDTH_IN, (NOTE_H_IN * (len(notes) - k) - 0.04) / fig_h, note, ha="left",
                     va="top", fontsize=FONT_SIZE - 0.5, fontstyle="italic", color=NEUTRAL)
        return save(fig, path)


def _limits(forest: Forest) -> tuple[float, float]:
    """Whole decades around the estimates on a log axis; on a linear axis the estimates and
    limits with the reference, padded by a tenth of their span."""
    if forest.log:
        return forest_limits([{"hr": r.estimate, "lower": r.lower, "upper": r.upper} for r in forest.rows])
    values = [v for r in forest.rows for v in (r.estimate, r.lower, r.upper) if v is not None] + [forest.reference]
    pad = 0.1 * ((max(values) - min(values)) or 1.0)
    return min(values) - pad, max(values) + pad


def _layout(forest: Forest) -> tuple[float, list[float]]:
    """The plot's left edge and the left edges of the text columns (figure fractions), each
    column as wide as its longest text; the plot takes what is left (at least ``MIN_PLOT_IN``)."""
    label_in = LABEL_X_IN + INDENT_IN + CHAR_W_IN * max([len(r.label) for r in forest.rows if not r.heading] or [0])
    label_in += GAP_IN  # headings have no estimate: they may run on over the plot
    widths = [CHAR_W_IN * max([len(header)] + [len(r.columns[k]) for r in forest.rows if len(r.columns) > k]) + GAP_IN
              for k, header in enumerate(forest.headers)]
    first = max(TEXT_WIDTH_IN - 0.1 - sum(widths), label_in + MIN_PLOT_IN + GAP_IN)
    starts = [first + sum(widths[:k]) for k in range(len(widths))]
    return label_in / TEXT_WIDTH_IN, [x / TEXT_WIDTH_IN for x in starts]


def draw_forests(risk: RiskScores | None, figures_dir: Path) -> dict[str, Path]:
    """The forest plots that risk_scores has data for: "forest_subgroups", "forest_comparison"."""
    figures: dict[str, Path] = {}
    if risk is None:
        return figures
    forests: Mapping[str, Forest | None] = {"forest_subgroups": subgroup_forest(risk),
                                            "forest_comparison": comparison_forest(risk)}
    for key, forest in forests.items():
        if forest is not None and forest.rows:
            figures[key] = draw_forest_figure(forest, figures_dir / f"{key}.png")
    return figures

