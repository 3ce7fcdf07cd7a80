"""Report figures drawn from results.json: participant flow, Kaplan–Meier curves, C-index plot.

All figures share one style (``STYLE``), are drawn with matplotlib's Agg backend at
``DPI`` and are sized in inches to the A4 text block, so the PDF shows them at 1:1.
Every number printed on a figure goes through ``studyrunner.report.formatting``.

Kaplan–Meier curves with pointwise 95% confidence bands and a numbers-at-risk table follow
the recommendations of Pocock, Clayton & Altman, "Survival plots of time-to-event outcomes
in clinical trials: good practice and pitfalls", Lancet 2002;359:1686–1689. The flow diagram
follows the CONSORT/TRIPOD participant-flow layout (TRIPOD+AI item 20a).
"""

from __future__ import annotations

import math

import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from studyrunner.report.formatting import (  # noqa: E402
    ci_label,
    fmt_ci,
    fmt_hr,
    fmt_int,
    fmt_num,
    fmt_p_eq,
)

DPI = 200
TEXT_WIDTH_IN = 6.3  # A4 (210 mm) minus two 20 mm margins, rounded down
FONT_SIZE = 8.0
GROUP_COLOURS = {"low": "#1f5f8b", "high": "#b03a2e"}
GROUP_LABELS = {"low": "Low risk", "high": "High risk"}
ORACLE_COLOUR = "#6c6c6c"
BOX_EDGE = "#333333"
BOX_FILL = "#f4f6f8"

STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": FONT_SIZE,
    "axes.titlesize": FONT_SIZE + 1,
    "axes.labelsize": FONT_SIZE,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.labelsize": FONT_SIZE - 0.5,
    "ytick.labelsize": FONT_SIZE - 0.5,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "legend.fontsize": FONT_SIZE - 0.5,
    "legend.frameon": False,
    "lines.linewidth": 1.4,
    "savefig.dpi": DPI,
    "figure.dpi": DPI,
}

STAGE_LABELS = {
    "eligibility": "Eligibility criteria",
    "clinical_validation": "Clinical-table validation",
    "images": "Images",
    "radiomics": "Radiomics extraction",
}
MAX_REASONS_PER_STAGE = 4
REASON_WRAP = 48
LINE_HEIGHT_IN = FONT_SIZE * 1.45 / 72
BOX_PAD_IN = 0.07


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- flow diagram


def stage_label(stage: str) -> str:
    """Human-readable name of an exclusion stage (unknown stages are shown as recorded)."""
    return STAGE_LABELS.get(stage, stage.replace("_", " ").capitalize())


def exclusion_lines(exclusions: Sequence[Mapping[str, Any]]) -> list[tuple[str, bool]]:
    """Lines of the flow diagram's exclusion box as (text, is_heading) pairs.

    Exclusions are grouped by stage (in the pipeline's order, then any other stage), each
    stage listing its distinct reasons with counts, most frequent first; beyond
    ``MAX_REASONS_PER_STAGE`` reasons the remainder is summarised as "other reasons".
    """
    by_stage: dict[str, Counter[str]] = {}
    for record in exclusions:
        by_stage.setdefault(str(record.get("stage", "unknown")), Counter())[str(record.get("reason", ""))] += 1
    order = [s for s in STAGE_LABELS if s in by_stage] + [s for s in by_stage if s not in STAGE_LABELS]
    lines: list[tuple[str, bool]] = [(f"Excluded (n = {fmt_int(len(exclusions))})", True)]
    for stage in order:
        reasons = by_stage[stage]
        lines.append((f"{stage_label(stage)} (n = {fmt_int(sum(reasons.values()))})", True))
        ranked = reasons.most_common()
        shown, rest = ranked[:MAX_REASONS_PER_STAGE], ranked[MAX_REASONS_PER_STAGE:]
        for reason, count in shown:
            wrapped = textwrap.wrap(f"{reason} (n = {fmt_int(count)})", REASON_WRAP) or [""]
            lines.append((f"\u2022 {wrapped[0]}", False))
            lines.extend((f"   {part}", False) for part in wrapped[1:])
        if rest:
            lines.append((f"\u2022 other reasons (n = {fmt_int(sum(c for _, c in rest))})", False))
    return lines


def box_height(n_lines: int) -> float:
    """Height in inches of a flow-diagram box holding ``n_lines`` lines of text."""
    return n_lines * LINE_HEIGHT_IN + 2 * BOX_PAD_IN


class _Canvas:
    """An axes whose data units are inches, for drawing boxes and arrows at fixed sizes."""

    def __init__(self, width: float, height: float) -> None:
        self.fig = plt.figure(figsize=(width, height))
        self.ax: Axes = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.axis("off")

    def box(self, x0: float, top: float, width: float, lines: Sequence[tuple[str, bool]],
            align: str = "center") -> float:
        """Draw a box whose top edge is at ``top``; return its bottom edge."""
        pad = BOX_PAD_IN
        height = box_height(len(lines))
        self.ax.add_patch(Rectangle((x0, top - height), width, height, facecolor=BOX_FILL,
                                    edgecolor=BOX_EDGE, linewidth=0.7))
        x_text = x0 + width / 2 if align == "center" else x0 + pad
        for i, (text, bold) in enumerate(lines):
            self.ax.text(x_text, top - pad - (i + 0.5) * LINE_HEIGHT_IN, text, ha=align, va="center",
                         fontweight="bold" if bold else "normal", fontsize=FONT_SIZE)
        return top - height

    def arrow(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        self.ax.annotate("", xy=end, xytext=start,
                         arrowprops={"arrowstyle": "-|>", "color": BOX_EDGE, "lw": 0.8,
                                     "shrinkA": 0, "shrinkB": 0, "mutation_scale": 8})

    def line(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        self.ax.plot(xs, ys, color=BOX_EDGE, lw=0.8)


def draw_flow_diagram(flow: Mapping[str, Any], path: Path) -> Path:
    """Participant flow: clinical table -> exclusions (by stage and reason) -> included -> partitions.

    ``flow`` is the results.json ``flow`` record; the partition boxes are bracketed into the
    training and test sets named by ``training_partitions`` and ``test_partitions``.
    """
    with plt.rc_context(STYLE):
        return _save(_flow_figure(flow), path)


def _flow_figure(flow: Mapping[str, Any]) -> Figure:
    exclusions = flow.get("exclusions") or []
    partitions: Mapping[str, int] = flow.get("partitions") or {}
    excl_lines = exclusion_lines(exclusions)
    width = TEXT_WIDTH_IN
    excl_height = box_height(len(excl_lines))
    gap = max(excl_height + 0.3, 0.55)
    main_h = part_h = box_height(2)
    height = 0.1 + main_h + gap + main_h + 0.45 + part_h + (0.45 if partitions else 0) + 0.1

    canvas = _Canvas(width, height)
    main_x0, main_w = 0.15, 2.55
    centre = main_x0 + main_w / 2
    top = height - 0.1
    first_lines = [("Patients in clinical table", True), (f"n = {fmt_int(flow.get('n_clinical'))}"
                   + (f"; with CT images: n = {fmt_int(flow['n_with_images'])}"
                      if flow.get("n_with_images") is not None else ""), False)]
    bottom = canvas.box(main_x0, top, main_w, first_lines)
    included_top = bottom - gap
    canvas.arrow((centre, bottom), (centre, included_top))
    if exclusions:
        excl_x0 = main_x0 + main_w + 0.35
        excl_top = bottom - (gap - excl_height) / 2
        canvas.box(excl_x0, excl_top, width - excl_x0 - 0.05, excl_lines, align="left")
        canvas.arrow((centre, bottom - gap / 2), (excl_x0, bottom - gap / 2))
    bottom = canvas.box(main_x0, included_top, main_w,
                        [("Included in the analysis", True), (f"n = {fmt_int(flow.get('n_included'))}", False)])
    if not partitions:
        return canvas.fig

    names = list(partitions)
    spacing = 0.2
    part_w = min(1.9, (width - 0.3 - spacing * (len(names) - 1)) / len(names))
    row_w = len(names) * part_w + (len(names) - 1) * spacing
    row_x0 = (width - row_w) / 2
    centres = [row_x0 + i * (part_w + spacing) + part_w / 2 for i in range(len(names))]
    part_top = bottom - 0.45
    bar_y = bottom - 0.2
    canvas.line([centre, centre], [bottom, bar_y])
    canvas.line([min(centres + [centre]), max(centres + [centre])], [bar_y, bar_y])
    for name, x in zip(names, centres):
        canvas.arrow((x, bar_y), (x, part_top))
        canvas.box(x - part_w / 2, part_top, part_w,
                   [(name.replace("_", " ").capitalize(), True), (f"n = {fmt_int(partitions[name])}", False)])
    bracket_y = part_top - part_h - 0.12
    for label, members in (("Training set", flow.get("training_partitions") or []),
                           ("Test set", flow.get("test_partitions") or [])):
        xs = [centres[names.index(m)] for m in members if m in names]
        if not xs:
            continue
        left, right = min(xs) - part_w / 2, max(xs) + part_w / 2
        canvas.line([left, left, right, right], [bracket_y + 0.06, bracket_y, bracket_y, bracket_y + 0.06])
        total = sum(int(partitions[m]) for m in members if m in names)
        canvas.ax.text((left + right) / 2, bracket_y - 0.05, f"{label} (n = {fmt_int(total)})",
                       ha="center", va="top", fontsize=FONT_SIZE, fontstyle="italic")
    return canvas.fig


# --------------------------------------------------------------------------- Kaplan–Meier


def _from_zero(times: Sequence[float], values: Sequence[float]) -> tuple[list[float], list[float]]:
    """Prepend (0, 1) when a survival curve (e.g. R's survfit) does not start at time 0.

    R leaves a confidence limit NA where it is undefined (survival 0); it becomes NaN, which
    matplotlib leaves out of the band."""
    t, v = [float(x) for x in times], [math.nan if x is None else float(x) for x in values]
    if not t or t[0] > 0:
        t, v = [0.0] + t, [1.0] + v
    return t, v


def draw_km(evaluation: Mapping[str, Any], endpoint_label: str, path: Path) -> Path:
    """Kaplan–Meier curves of the low- and high-risk groups of one cohort.

    Draws each group's step curve with its 95% confidence band, the log-rank test and the
    hazard ratio (high vs low) in the plot, and a numbers-at-risk table under the plot
    whose columns sit exactly under the x-axis ticks (the risk table's ``times``).
    """
    km = evaluation.get("km") or {}
    risk = evaluation.get("risk_table") or {}
    risk_times = [float(t) for t in risk.get("times") or []]
    unit = evaluation.get("time_unit") or "days"
    groups = [g for g in ("low", "high") if g in km] + [g for g in km if g not in ("low", "high")]
    rows = [g for g in groups if g in risk]

    with plt.rc_context(STYLE):
        plot_h, axis_h = 2.7, 0.5  # axis_h: room for the x tick labels and the axis label
        table_h = 0.2 + 0.17 * len(rows) if rows else 0.0
        fig_h = 0.35 + plot_h + axis_h + table_h + 0.05
        fig = plt.figure(figsize=(TEXT_WIDTH_IN, fig_h))
        grid = fig.add_gridspec(3, 1, height_ratios=[plot_h, axis_h, max(table_h, 0.01)], hspace=0.0,
                                left=0.15, right=0.97, top=1 - 0.35 / fig_h, bottom=0.05 / fig_h)
        ax = fig.add_subplot(grid[0])
        t_max = max([max(km[g]["time"]) for g in groups if km[g].get("time")] + risk_times + [1.0])
        for g in groups:
            colour = GROUP_COLOURS.get(g, "#444444")
            t, s = _from_zero(km[g]["time"], km[g]["surv"])
            n_at_start = risk[g][0] if g in risk and risk_times and risk_times[0] == 0 else None
            label = GROUP_LABELS.get(g, g) + (f" (n = {fmt_int(n_at_start)})" if n_at_start is not None else "")
            ax.step(t, s, where="post", color=colour, label=label)
            if km[g].get("lower") and km[g].get("upper"):
                _, lo = _from_zero(km[g]["time"], km[g]["lower"])
                _, hi = _from_zero(km[g]["time"], km[g]["upper"])
                ax.fill_between(t, lo, hi, step="post", color=colour, alpha=0.15, linewidth=0)
        ax.set_xlim(0, t_max * 1.02)
        ax.set_ylim(0, 1.03)
        ax.set_ylabel(f"{endpoint_label} probability")
        if risk_times:
            ax.set_xticks(risk_times)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: fmt_num(v, 0)))
        ax.set_xlabel(f"Time ({unit})")
        ax.legend(loc="upper right", title=f"{ci_label()} shaded", title_fontsize=FONT_SIZE - 1)
        ax.set_title(f"{evaluation.get('cohort_label', '')} (n = {fmt_int(evaluation.get('n'))}, "
                     f"events = {fmt_int(evaluation.get('n_events'))})", loc="left")
        ax.text(0.02, 0.04, km_annotation(evaluation), transform=ax.transAxes, ha="left", va="bottom",
                fontsize=FONT_SIZE - 0.5, bbox={"facecolor": "white", "edgecolor": "#bbbbbb",
                                                "linewidth": 0.5, "boxstyle": "round,pad=0.35"})
        if rows:
            table_ax = fig.add_subplot(grid[2])
            table_ax.set_xlim(ax.get_xlim())
            _risk_table(table_ax, risk, rows, risk_times)
        return _save(fig, path)


def km_annotation(evaluation: Mapping[str, Any]) -> str:
    """The log-rank and hazard-ratio lines printed inside a Kaplan–Meier plot."""
    chisq = evaluation.get("logrank_chisq")
    logrank = "Log-rank " + (f"\u03c7\u00b2 = {fmt_num(chisq, 2)}, " if chisq is not None else "")
    logrank += fmt_p_eq(evaluation.get("logrank_p"))
    note = evaluation.get("hr_reason")
    hr = evaluation.get("hr")
    hr_text = fmt_hr(hr, evaluation.get("hr_lower"), evaluation.get("hr_upper"), reason=note)
    label = f"HR, {note}" if note and hr is not None else "HR (high vs low)"
    return f"{logrank}\n{label}: {hr_text}"


def _risk_table(ax: Axes, risk: Mapping[str, Any], rows: Sequence[str], times: Sequence[float]) -> None:
    """Numbers at risk, one row per group, each value centred under its x tick."""
    ax.set_ylim(len(rows) - 0.5, -1.1)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(axis="x", which="both", bottom=False, labelbottom=False)
    ax.tick_params(axis="y", which="both", left=False, pad=10)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([GROUP_LABELS.get(g, g) for g in rows])
    for label, g in zip(ax.get_yticklabels(), rows):
        label.set_color(GROUP_COLOURS.get(g, "#444444"))
    for i, g in enumerate(rows):
        for t, n in zip(times, risk[g]):
            ax.text(t, i, fmt_int(n), ha="center", va="center", fontsize=FONT_SIZE - 0.5,
                    color=GROUP_COLOURS.get(g, "#444444"))
    ax.text(0.0, -0.95, "Number at risk", transform=ax.get_yaxis_transform(), ha="left", va="center",
            fontsize=FONT_SIZE - 0.5, fontweight="bold")


# --------------------------------------------------------------------------- discrimination


def draw_discrimination(evaluation: Mapping[str, Mapping[str, Any]], oracle: Mapping[str, Any] | None,
                        path: Path) -> Path:
    """Harrell's C-index with its confidence interval per cohort; the synthetic generator's oracle C-index beside it."""
    cohorts = list(evaluation)
    with plt.rc_context(STYLE):
        rows_h, top_h, bottom_h = 0.4 * len(cohorts), 0.4, 0.45
        fig_h = rows_h + top_h + bottom_h
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, fig_h))
        fig.subplots_adjust(left=0.3, right=0.72, top=1 - top_h / fig_h, bottom=bottom_h / fig_h)
        ax.axvline(0.5, color="#999999", lw=0.7, ls="--")
        ax.text(1.03, -0.6, f"C-index ({ci_label()})", transform=ax.get_yaxis_transform(), ha="left",
                va="center", fontweight="bold")
        for i, name in enumerate(cohorts):
            ev = evaluation[name]
            c, lo, hi = ev.get("c_index"), ev.get("c_lower"), ev.get("c_upper")
            if lo is not None and hi is not None:
                ax.plot([lo, hi], [i, i], color=GROUP_COLOURS["low"], lw=1.4)
            ax.plot([c], [i], "o", color=GROUP_COLOURS["low"], ms=5, label="Model" if i == 0 else None)
            label = fmt_ci(c, lo, hi)
            oracle_c = ((oracle or {}).get(name) or {}).get("c_index")
            if oracle_c is not None:
                ax.plot([oracle_c], [i], "D", mfc="white", mec=ORACLE_COLOUR, ms=5,
                        label="Oracle (true risk)" if i == 0 else None)
                label += f"; oracle {fmt_num(oracle_c, 2)}"
            ax.text(1.03, i, label, transform=ax.get_yaxis_transform(), ha="left", va="center")
        ax.set_yticks(range(len(cohorts)))
        ax.set_yticklabels([evaluation[n].get("cohort_label", n) for n in cohorts])
        ax.set_ylim(len(cohorts) - 0.5, -0.5)
        ax.set_xlim(0.4, 1.0)
        ax.set_xlabel("Harrell's C-index")
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, borderaxespad=0.2)
        return _save(fig, path)


def draw_figures(results: Mapping[str, Any], figures_dir: Path) -> dict[str, Path]:
    """Draw every figure that results.json has data for; return {figure key: PNG path}.

    Keys: "flow", "km_<cohort>" for each cohort in ``evaluation`` that has curves, and
    "discrimination" when any cohort has a C-index.
    """
    figures: dict[str, Path] = {}
    flow = results.get("flow")
    if flow:
        figures["flow"] = draw_flow_diagram(flow, figures_dir / "flow.png")
    evaluation = results.get("evaluation") or {}
    endpoint = (results.get("endpoints") or {}).get(results.get("primary_endpoint") or "", {})
    endpoint_label = endpoint.get("label", "Survival")
    for name, ev in evaluation.items():
        if ev and ev.get("km"):
            figures[f"km_{name}"] = draw_km(ev, endpoint_label, figures_dir / f"km_{name}.png")
    with_c = {name: ev for name, ev in evaluation.items() if ev and ev.get("c_index") is not None}
    if with_c:
        figures["discrimination"] = draw_discrimination(with_c, results.get("oracle"),
                                                        figures_dir / "discrimination.png")
    return figures
