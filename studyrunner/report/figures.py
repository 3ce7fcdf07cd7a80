"""Report figures drawn from results.json: participant flow, Kaplan–Meier curves, C-index plot.

All figures share one style (``STYLE``), are drawn with matplotlib's Agg backend at
``DPI`` and are sized in inches to the A4 text block, so the PDF shows them at 1:1.
Every number printed on a figure goes through ``studyrunner.report.formatting``.

Kaplan–Meier curves with pointwise 95% confidence bands and a numbers-at-risk table follow
the recommendations of Pocock, Clayton & Altman, "Survival plots of time-to-event outcomes
in clinical trials: good practice and pitfalls", Lancet 2002;359:1686–1689. The flow diagram
follows the CONSORT/TRIPOD participant-flow layout (TRIPOD+AI item 20a).

Figures of the radiomics-signature study (seed 001), drawn when results.json has their data:
the ICC histogram of the reproducibility filter (Koo & Li, J Chiropr Med 2016;15:155–163);
the learners' feature sets as an UpSet plot (Lex, Gehlenborg, Strobelt, Vuillemot & Pfister,
IEEE TVCG 2014;20:1983–1992) or a Venn diagram for up to three sets; time-dependent ROC
curves and AUC over time (Blanche, Dartigues & Jacqmin-Gadda, Stat Med 2013;32:5381–5397);
grouped calibration curves (Steyerberg, Clinical Prediction Models, 2nd ed. 2019, ch. 15);
decision curves (Vickers & Elkin, Med Decis Making 2006;26:565–574); and the distribution of
the cross-validated AUCs over the folds.
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
    AUC_DIGITS,
    ci_label,
    fmt_ci,
    fmt_hr,
    fmt_int,
    fmt_num,
    fmt_p_eq,
    fmt_survival_median,
    fmt_time,
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
    medians = evaluation.get("median_survival") or {}

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
            if medians and g in medians:
                reached = (medians[g] or {}).get("median") is not None
                label += f"\nmedian {fmt_survival_median(medians[g])}" + (f" {unit}" if reached else "")
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
        _median_lines(ax, evaluation.get("median_survival"))
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


def _median_lines(ax: Axes, medians: Mapping[str, Any] | None) -> None:
    """Dotted guides from S = 0.5 down to each group's median survival (groups whose median is reached)."""
    reached = {g: float(r["median"]) for g, r in (medians or {}).items() if r and r.get("median") is not None}
    if not reached:
        return
    ax.plot([0, max(reached.values())], [0.5, 0.5], color="#888888", lw=0.6, ls=":")
    for g, median in reached.items():
        ax.plot([median, median], [0, 0.5], color=GROUP_COLOURS.get(g, "#444444"), lw=0.8, ls=":")


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


# --------------------------------------------------------------------------- reproducibility


THRESHOLD_COLOUR = "#b03a2e"
NEUTRAL = "#5a6f80"
TIME_COLOURS = ("#1f5f8b", "#2e8b57", "#c98a00", "#b03a2e", "#6a3d9a", "#4d4d4d")
LEARNER_LABELS = {"elastic_net": "Elastic net", "lasso": "Lasso", "coxboost": "CoxBoost", "gbm": "GBM",
                  "rsf": "Random survival forest", "superpc": "SuperPC"}
MAX_UPSET_COLUMNS = 24


def time_colour(i: int) -> str:
    """The colour of the i-th time point, the same in every time-dependent figure."""
    return TIME_COLOURS[i % len(TIME_COLOURS)]


def learner_label(name: str) -> str:
    """Display name of a feature-selection learner (unknown names shown as recorded)."""
    return LEARNER_LABELS.get(name, name.replace("_", " ").capitalize())


def draw_icc_histogram(reproducibility: Mapping[str, Any], path: Path) -> Path:
    """Histogram of the per-feature ICCs with the keep threshold (features above it are kept)."""
    icc = [float(v) for v in reproducibility.get("icc") or [] if v is not None and not math.isnan(float(v))]
    threshold = reproducibility.get("threshold")
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, 2.3))
        fig.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.19)
        low = min([0.0] + icc)
        width = 0.025
        edges = [1.0 - width * k for k in range(int(math.ceil((1.0 - low) / width)) + 1)][::-1]
        kept = [v for v in icc if threshold is None or v > threshold]
        dropped = [v for v in icc if threshold is not None and v <= threshold]
        ax.hist([dropped, kept], bins=edges, stacked=True, color=["#c9c9c9", GROUP_COLOURS["low"]],
                label=[f"Removed (n = {fmt_int(len(dropped))})", f"Kept (n = {fmt_int(len(kept))})"],
                edgecolor="white", linewidth=0.3)
        if threshold is not None:
            ax.axvline(float(threshold), color=THRESHOLD_COLOUR, lw=1.0, ls="--")
            ax.text(float(threshold), 1.0, f" threshold {fmt_num(threshold, 2)}", transform=ax.get_xaxis_transform(),
                    ha="right", va="bottom", color=THRESHOLD_COLOUR, fontsize=FONT_SIZE - 0.5)
        ax.set_xlim(edges[0], 1.0)
        ax.set_xlabel("Intraclass correlation coefficient between the two segmentations")
        ax.set_ylabel("Features")
        ax.legend(loc="upper left")
        return _save(fig, path)


# --------------------------------------------------------------------------- learners' feature sets


def learner_sets(selection: Mapping[str, Any]) -> dict[str, list[str]]:
    """The feature sets of the learners that ran (a learner with an error is left out), in recorded order."""
    return {name: list(record.get("features") or []) for name, record in (selection.get("learners") or {}).items()
            if record and not record.get("error")}


def set_intersections(sets: Mapping[str, Sequence[str]]) -> list[tuple[tuple[str, ...], list[str]]]:
    """Exclusive intersections for an UpSet plot: each feature counted once, under exactly the
    learners that chose it. Returns [(learners, features)], largest first (ties: more learners
    first, then the learners' order)."""
    order = list(sets)
    members: dict[str, list[str]] = {}
    for name in order:
        for feature in sets[name]:
            members.setdefault(feature, [])
            if name not in members[feature]:
                members[feature].append(name)
    groups: dict[tuple[str, ...], list[str]] = {}
    for feature, names in members.items():
        groups.setdefault(tuple(n for n in order if n in names), []).append(feature)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), -len(kv[0]), [order.index(n) for n in kv[0]]))


def uses_venn(n_sets: int) -> bool:
    """Two or three sets are drawn as a Venn diagram, other numbers as an UpSet plot."""
    return 2 <= n_sets <= len(_VENN_CENTRES) + 1


def draw_learner_sets(selection: Mapping[str, Any], path: Path) -> Path:
    """The learners' selected feature sets: a Venn diagram for two or three sets, an UpSet plot otherwise.

    Features in ``combined`` (the combination rule's result) are highlighted in red."""
    sets = learner_sets(selection)
    combined = set(selection.get("combined") or [])
    with plt.rc_context(STYLE):
        fig = _venn(sets, combined) if uses_venn(len(sets)) else _upset(sets, combined)
        return _save(fig, path)


def _upset(sets: Mapping[str, Sequence[str]], combined: set[str]) -> Figure:
    names = list(sets)
    columns = set_intersections(sets)
    hidden = columns[MAX_UPSET_COLUMNS:]
    columns = columns[:MAX_UPSET_COLUMNS]
    n_rows, n_cols = len(names), max(len(columns), 1)
    row_h = 0.19
    bars_h, matrix_h = 1.35, row_h * n_rows
    fig_h = 0.25 + bars_h + matrix_h + 0.45
    fig = plt.figure(figsize=(TEXT_WIDTH_IN, fig_h))
    left, sizes_w, label_w = 0.05, 0.85, 1.6
    x0 = (left + sizes_w + label_w) / TEXT_WIDTH_IN
    grid_bottom = 0.45 / fig_h
    matrix_top = grid_bottom + matrix_h / fig_h
    col_w = min(0.36, (TEXT_WIDTH_IN * (0.98 - x0)) / n_cols)
    width_frac = col_w * n_cols / TEXT_WIDTH_IN
    ax_bar = fig.add_axes((x0, matrix_top + 0.06 / fig_h, width_frac, bars_h / fig_h))
    ax_mat = fig.add_axes((x0, grid_bottom, width_frac, matrix_h / fig_h), sharex=ax_bar)
    ax_size = fig.add_axes((left / TEXT_WIDTH_IN, grid_bottom, sizes_w / TEXT_WIDTH_IN, matrix_h / fig_h),
                           sharey=ax_mat)
    sizes = [len(columns_f) for _, columns_f in columns]
    colours = [THRESHOLD_COLOUR if set(features) & combined else "#333333" for _, features in columns]
    ax_bar.bar(range(len(columns)), sizes, width=0.6, color=colours)
    for i, size in enumerate(sizes):
        ax_bar.text(i, size, fmt_int(size), ha="center", va="bottom", fontsize=FONT_SIZE - 1.5)
    ax_bar.set_ylabel("Features in\nintersection")
    ax_bar.tick_params(axis="x", bottom=False, labelbottom=False)
    ax_bar.spines["bottom"].set_visible(False)
    ax_bar.set_ylim(0, max(sizes + [1]) * 1.18)
    for r in range(n_rows):
        if r % 2 == 0:
            ax_mat.axhspan(r - 0.5, r + 0.5, color="#f1f3f5", lw=0)
    for i, (members, _) in enumerate(columns):
        rows = [names.index(n) for n in members]
        ax_mat.scatter([i] * n_rows, range(n_rows), s=14, color="#d5d9dd", zorder=2)
        ax_mat.scatter([i] * len(rows), rows, s=16, color=colours[i], zorder=3)
        if len(rows) > 1:
            ax_mat.plot([i, i], [min(rows), max(rows)], color=colours[i], lw=1.2, zorder=2)
    ax_mat.set_xlim(-0.6, n_cols - 0.4)
    ax_mat.set_ylim(n_rows - 0.5, -0.5)
    ax_mat.set_yticks(range(n_rows))
    ax_mat.set_yticklabels([learner_label(n) for n in names])
    ax_mat.tick_params(axis="y", left=False, pad=4)
    ax_mat.tick_params(axis="x", bottom=False, labelbottom=False)
    for spine in ax_mat.spines.values():
        spine.set_visible(False)
    ax_size.barh(range(n_rows), [len(sets[n]) for n in names], height=0.55, color=NEUTRAL)
    for r, n in enumerate(names):
        ax_size.text(len(sets[n]), r, f"{fmt_int(len(sets[n]))} ", ha="right", va="center", color="white",
                     fontsize=FONT_SIZE - 1.5)
    ax_size.invert_xaxis()
    ax_size.tick_params(axis="y", left=False, labelleft=False)
    ax_size.spines["left"].set_visible(False)
    ax_size.spines["right"].set_visible(True)
    ax_size.set_xlabel("Set size")
    notes = ["Red: contains the combined\nfeatures."] if combined else []
    if hidden:
        n_hidden = sum(len(features) for _, features in hidden)
        notes.append(f"Not shown: {fmt_int(len(hidden))} smaller\nintersections ({fmt_int(n_hidden)} features).")
    fig.text(left / TEXT_WIDTH_IN, 1 - 0.3 / fig_h, "\n".join(notes), ha="left", va="top", fontsize=FONT_SIZE - 1,
             color="#444444", linespacing=1.4)
    return fig


# centres and text positions of the two- and three-set Venn diagrams (unit circles)
_VENN_CENTRES = {2: ((-0.55, 0.0), (0.55, 0.0)), 3: ((-0.55, 0.35), (0.55, 0.35), (0.0, -0.6))}


def _venn(sets: Mapping[str, Sequence[str]], combined: set[str]) -> Figure:
    from matplotlib.patches import Circle

    names = list(sets)
    centres = _VENN_CENTRES[len(names)]
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, 2.9))
    ax.set_aspect("equal")
    ax.axis("off")
    for (x, y), colour in zip(centres, TIME_COLOURS):
        ax.add_patch(Circle((x, y), 1.0, facecolor=colour, alpha=0.18, edgecolor=colour, lw=1.0))
    for (members, features) in set_intersections(sets):
        inside = [centres[names.index(n)] for n in members]
        outside = [centres[i] for i, n in enumerate(names) if n not in members]
        cx = sum(c[0] for c in inside) / len(inside)
        cy = sum(c[1] for c in inside) / len(inside)
        for ox, oy in outside:  # push the label away from the circles it is not in
            cx, cy = cx + 0.45 * (cx - ox), cy + 0.45 * (cy - oy)
        colour = THRESHOLD_COLOUR if set(features) & combined else "#1a1a1a"
        ax.text(cx, cy, fmt_int(len(features)), ha="center", va="center", fontsize=FONT_SIZE + 1,
                fontweight="bold", color=colour)
    for (x, y), n in zip(centres, names):
        dy = 1.12 if y >= 0 else -1.12
        ax.text(x, y + dy, f"{learner_label(n)} (n = {fmt_int(len(sets[n]))})", ha="center",
                va="bottom" if dy > 0 else "top")
    ax.set_xlim(-2.4, 2.4)
    ax.set_ylim(-1.95, 1.7)
    return fig


# --------------------------------------------------------------------------- time-dependent ROC


def draw_time_roc(time_roc: Mapping[str, Any], cohort_label: str, path: Path) -> Path:
    """Left: the cumulative/dynamic ROC curve at each time (AUC in the legend). Right: AUC
    against time with its confidence interval; times where the AUC is not estimable are marked."""
    times = list(time_roc.get("times") or [])
    unit = time_roc.get("time_unit") or ""
    auc, lower, upper = (list(time_roc.get(k) or [None] * len(times)) for k in ("auc", "lower", "upper"))
    curves = time_roc.get("roc") or {}
    with plt.rc_context(STYLE):
        fig, (ax_roc, ax_auc) = plt.subplots(1, 2, figsize=(TEXT_WIDTH_IN, 3.0),
                                             gridspec_kw={"width_ratios": [1, 1.15], "wspace": 0.32})
        fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.15)
        ax_roc.plot([0, 1], [0, 1], color="#999999", lw=0.7, ls="--")
        for i, t in enumerate(times):
            curve = curves.get(fmt_time(t)) or curves.get(str(t))
            if not curve or auc[i] is None:
                continue
            ax_roc.plot(curve["fp"], curve["tp"], color=time_colour(i), lw=1.1,
                        label=f"{fmt_time(t)} {unit}: AUC {fmt_num(auc[i], AUC_DIGITS)}")
        roc_axes(ax_roc, "1 \u2212 specificity (false-positive rate)", "Sensitivity (true-positive rate)")
        ax_roc.legend(loc="lower right", handlelength=1.2)
        ax_roc.set_title(cohort_label, loc="left")

        ax_auc.axhline(0.5, color="#999999", lw=0.7, ls="--")
        for i, t in enumerate(times):
            if auc[i] is None:
                ax_auc.text(t, 0.52, "not\nestimable", ha="center", va="bottom", fontsize=FONT_SIZE - 1.5,
                            color="#777777")
                continue
            if lower[i] is not None and upper[i] is not None:
                ax_auc.plot([t, t], [lower[i], upper[i]], color=time_colour(i), lw=1.3)
            ax_auc.plot([t], [auc[i]], "o", color=time_colour(i), ms=4.5)
            ax_auc.text(t, (upper[i] if upper[i] is not None else auc[i]) + 0.015, fmt_num(auc[i], AUC_DIGITS),
                        ha="center", va="bottom", fontsize=FONT_SIZE - 1.5)
        shown = [(t, a) for t, a in zip(times, auc) if a is not None]
        if len(shown) > 1:
            ax_auc.plot([t for t, _ in shown], [a for _, a in shown], color="#888888", lw=0.7, zorder=0)
        if times:
            span = max(times) - min(times) or 1.0
            ax_auc.set_xlim(min(times) - 0.12 * span, max(times) + 0.12 * span)
            ax_auc.set_xticks(times)
        ax_auc.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: fmt_time(v)))
        limits = [v for v in lower + auc if v is not None]
        ax_auc.set_ylim(min([0.4] + [v - 0.05 for v in limits]), 1.05)
        ax_auc.set_xlabel(f"Time ({unit})")
        ax_auc.set_ylabel(f"Time-dependent AUC ({ci_label()})")
        return _save(fig, path)


# --------------------------------------------------------------------------- calibration and decision curves


def roc_axes(ax: Axes, xlabel: str = "1 \u2212 specificity", ylabel: str = "Sensitivity") -> None:
    """The unit square of a ROC plot with its axis labels."""
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def _rows_by_time(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    by_time: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_time.setdefault(fmt_time(row["time"]), []).append(row)
    return by_time


def _panels(n: int, height: float = 2.45) -> tuple[Figure, list[Axes]]:
    fig, axes = plt.subplots(1, max(n, 1), figsize=(TEXT_WIDTH_IN, height), squeeze=False)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.86, bottom=0.2, wspace=0.32)
    return fig, list(axes[0])


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def draw_calibration(calibration: Sequence[Mapping[str, Any]], time_unit: str, path: Path) -> Path:
    """Calibration at each time: mean predicted event probability per risk group against the
    Kaplan–Meier observed event probability with its confidence interval; the diagonal is perfect calibration."""
    by_time = _rows_by_time(calibration)
    with plt.rc_context(STYLE):
        fig, axes = _panels(len(by_time))
        for i, (ax, (t, rows)) in enumerate(zip(axes, by_time.items())):
            rows = sorted(rows, key=lambda r: r["group"])
            pred = [_nan(r.get("predicted")) for r in rows]
            obs = [_nan(r.get("observed")) for r in rows]
            err_lo = [o - _nan(r.get("lower")) for o, r in zip(obs, rows)]
            err_hi = [_nan(r.get("upper")) - o for o, r in zip(obs, rows)]
            ax.plot([0, 1], [0, 1], color="#999999", lw=0.7, ls="--")
            ax.errorbar(pred, obs, yerr=[err_lo, err_hi], fmt="o-", color=time_colour(i), ms=3.5, lw=1.0,
                        elinewidth=0.8, capsize=2)
            ax.set_xlim(-0.02, 1.02)
            ax.set_ylim(-0.02, 1.02)
            ax.set_aspect("equal")
            ax.set_title(f"{t} {time_unit}", loc="left")
            ax.set_xlabel("Predicted event probability")
            if i == 0:
                ax.set_ylabel("Observed (Kaplan\u2013Meier)")
        return _save(fig, path)


def draw_decision_curves(curves: Mapping[str, Sequence[Mapping[str, Any]]], time_unit: str, path: Path) -> Path:
    """Decision curves at each time: net benefit of the model against treating all and treating none."""
    with plt.rc_context(STYLE):
        fig, axes = _panels(len(curves))
        for i, (ax, (t, rows)) in enumerate(zip(axes, curves.items())):
            x = [float(r["threshold"]) for r in rows]
            model = [_nan(r.get("net_benefit")) for r in rows]
            treat_all = [_nan(r.get("treat_all")) for r in rows]
            treat_none = [_nan(r.get("treat_none")) for r in rows]
            ax.plot(x, treat_none, color="#1a1a1a", lw=0.8, label="Treat none")
            ax.plot(x, treat_all, color="#999999", lw=1.0, label="Treat all")
            ax.plot(x, model, color=time_colour(i), lw=1.3, label="Radiomics model")
            finite = [v for v in model + treat_all if not math.isnan(v)]
            top = max(finite + [0.05])
            ax.set_ylim(-0.1 * top - 0.02, top * 1.1)
            ax.set_xlim(0, max(x) if x else 1)
            ax.set_title(f"{fmt_time(t)} {time_unit}", loc="left")
            ax.set_xlabel("Threshold probability")
            if i == 0:
                ax.set_ylabel("Net benefit")
                ax.legend(loc="upper right")
        return _save(fig, path)


# --------------------------------------------------------------------------- cross-validation


def draw_cross_validation(cv: Mapping[str, Any], path: Path) -> Path:
    """Fold AUCs per time, training folds beside validation folds: the median (dot) and the range
    (line); when the individual fold values are recorded ("values") a box and the points are drawn."""
    times = list(cv.get("times") or [])
    unit = cv.get("time_unit") or ""
    parts = (("training", "Training folds", "#1f5f8b"), ("validation", "Validation folds", "#c98a00"))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, 2.5))
        fig.subplots_adjust(left=0.1, right=0.98, top=0.88, bottom=0.17)
        ax.axhline(0.5, color="#999999", lw=0.7, ls="--")
        for i, t in enumerate(times):
            for j, (key, label, colour) in enumerate(parts):
                summary = (cv.get(key) or {}).get(fmt_time(t)) or (cv.get(key) or {}).get(str(t))
                if not summary or summary.get("median") is None:
                    continue
                x = i + (j - 0.5) * 0.36
                values = summary.get("values")
                if values:
                    ax.boxplot([values], positions=[x], widths=0.22, showfliers=False, patch_artist=True,
                                     medianprops={"color": colour, "lw": 1.4}, whiskerprops={"color": colour},
                                     capprops={"color": colour}, boxprops={"facecolor": "white", "edgecolor": colour})
                    offsets = [((k * 0.618) % 1 - 0.5) * 0.16 for k in range(len(values))]
                    ax.scatter([x + o for o in offsets], values, s=5, color=colour, alpha=0.6, zorder=3, lw=0)
                else:
                    ax.plot([x, x], [summary.get("min"), summary.get("max")], color=colour, lw=1.4)
                    for end in (summary.get("min"), summary.get("max")):
                        ax.plot([x - 0.05, x + 0.05], [end, end], color=colour, lw=1.0)
                    ax.plot([x], [summary["median"]], "o", color=colour, ms=5)
                ax.text(x + (0.12 if values else 0.05), summary["median"],
                        f" {fmt_num(summary['median'], AUC_DIGITS)}", ha="left",
                        va="center", fontsize=FONT_SIZE - 1.5)
        for key, label, colour in parts:
            ax.plot([], [], "o-", color=colour, label=label, ms=4)
        ax.set_xticks(range(len(times)))
        ax.set_xticklabels([f"{fmt_time(t)} {unit}" for t in times])
        ax.set_xlim(-0.6, len(times) - 0.4)
        lows = [summary.get("min") for key, _, _ in parts for summary in (cv.get(key) or {}).values()
                if summary and summary.get("min") is not None]
        ax.set_ylim(min([0.4] + [v - 0.05 for v in lows]), 1.02)
        ax.set_ylabel("Time-dependent AUC")
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
    figures.update(draw_signature_figures(results, figures_dir))
    return figures


def _recorded(record: Any) -> bool:
    """True for a results.json record with data (not absent, empty or {"not_run": ...})."""
    return bool(record) and not (isinstance(record, Mapping) and "not_run" in record)


def draw_signature_figures(results: Mapping[str, Any], figures_dir: Path) -> dict[str, Path]:
    """The radiomics-signature figures that results.json has data for.

    Keys: "icc", "learner_sets", "cross_validation", and per evaluated cohort
    "time_roc_<cohort>", "calibration_<cohort>", "decision_<cohort>".
    """
    figures: dict[str, Path] = {}
    reproducibility = results.get("reproducibility")
    if _recorded(reproducibility) and reproducibility.get("icc"):
        figures["icc"] = draw_icc_histogram(reproducibility, figures_dir / "icc.png")
    selection = results.get("selection")
    if _recorded(selection) and learner_sets(selection):
        figures["learner_sets"] = draw_learner_sets(selection, figures_dir / "learner_sets.png")
    evaluation = results.get("evaluation") if _recorded(results.get("evaluation")) else {}
    for name, ev in (evaluation or {}).items():
        if not ev:
            continue
        label = ev.get("cohort_label", name)
        unit = ev.get("time_unit") or ""
        if _recorded(ev.get("time_roc")):
            figures[f"time_roc_{name}"] = draw_time_roc(ev["time_roc"], label, figures_dir / f"time_roc_{name}.png")
        if _recorded(ev.get("calibration")):
            figures[f"calibration_{name}"] = draw_calibration(ev["calibration"], unit,
                                                              figures_dir / f"calibration_{name}.png")
        if _recorded(ev.get("decision_curves")):
            figures[f"decision_{name}"] = draw_decision_curves(ev["decision_curves"], unit,
                                                               figures_dir / f"decision_{name}.png")
    cv = results.get("cross_validation")
    if _recorded(cv) and cv.get("times"):
        figures["cross_validation"] = draw_cross_validation(cv, figures_dir / "cross_validation.png")
    return figures
