"""The seed-000 clinical Cox models as a forest plot and the rms nomogram (Harrell, Regression
Modeling Strategies, 2nd ed. 2015, section 10.5; He et al., Transl Lung Cancer Res
2022;11(4):670-685, Figure 4A,B)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import blended_transform_factory

from studyrunner.report.figures.labels import covariate_label
from studyrunner.report.figures.style import (
    FONT_SIZE,
    GROUP_COLOURS,
    NEUTRAL,
    REFERENCE_LINE,
    STYLE,
    TEXT_WIDTH_IN,
    floats,
    save,
)
from studyrunner.report.formatting import ci_label, fmt_hr, fmt_int, fmt_p_eq, fmt_value
from studyrunner.results.models import ClinicalCox, Nomogram, RiskScores

FOREST_CLIP = (0.001, 1000.0)


# --------------------------------------------------------------------------- forest plot


def forest_rows(risk: RiskScores | None, clinical_cox: ClinicalCox | None) -> list[dict[str, Any]]:
    """Rows of the forest plot, univariate block then multivariable block: {"model", "label",
    "indent", "hr", "lower", "upper", "p"}; a heading row per block and per categorical
    covariate ("Histology (vs reference)") has no HR, its levels are indented below it.
    A numeric covariate with a per-SD hazard ratio is drawn per SD ("Age, per SD"), as in the
    table; a term fixed by construction has no HR, only the ``note`` "by construction"."""
    rows: list[dict[str, Any]] = []
    if clinical_cox is None:
        return rows
    for model, heading, entries in (("univariate", "Univariate Cox models", clinical_cox.univariate),
                                    ("multivariable", "Multivariable Cox model", clinical_cox.multivariable)):
        if entries:
            rows.append({"model": model, "label": heading, "indent": 0, "hr": None})
        previous = None
        for r in entries:
            label = covariate_label(risk, r.covariate)
            if r.level is not None:
                if r.covariate != previous:
                    rows.append({"model": model, "label": f"{label} (vs {r.reference})", "indent": 1, "hr": None})
                label = str(r.level)
            previous = r.covariate
            indent = 2 if r.level is not None else 1
            if r.by_construction:
                rows.append({"model": model, "label": label, "indent": indent, "hr": None,
                             "note": "by construction, not a finding"})
            elif r.hr_per_sd is not None:
                rows.append({"model": model, "label": f"{label}, per SD", "indent": indent, "hr": r.hr_per_sd,
                             "lower": r.hr_per_sd_lower, "upper": r.hr_per_sd_upper, "p": r.p})
            else:
                rows.append({"model": model, "label": label, "indent": indent,
                             "hr": r.hr, "lower": r.hr_lower, "upper": r.hr_upper, "p": r.p})
    return rows


def forest_limits(rows: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """Whole decades around every HR and limit, within ``FOREST_CLIP``."""
    values = [float(r[k]) for r in rows if r.get("hr") is not None for k in ("hr", "lower", "upper")
              if r.get(k) is not None and float(r[k]) > 0]
    lo = 10 ** math.floor(math.log10(min([*values, 1.0])) + 1e-9)
    hi = 10 ** math.ceil(math.log10(max([*values, 1.0])) - 1e-9)
    return max(lo, FOREST_CLIP[0]), min(max(hi, 10 * lo), FOREST_CLIP[1])


def draw_forest(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Cox hazard ratios with their CI on a log axis; CIs beyond the axis end in an arrow."""
    lo_clip, hi_clip = forest_limits(rows)
    fig_h = 0.5 + 0.2 * len(rows) + 0.45
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, fig_h))
        fig.subplots_adjust(left=0.44, right=0.7, top=1 - 0.45 / fig_h, bottom=0.45 / fig_h)
        labels = blended_transform_factory(fig.transFigure, ax.transData)
        ax.axvline(1.0, **REFERENCE_LINE)
        for i, row in enumerate(rows):
            ax.text(0.01 + 0.02 * row["indent"], i, row["label"], transform=labels, ha="left", va="center",
                    fontweight="bold" if row["indent"] == 0 else "normal")
            if row["hr"] is None:
                if row.get("note"):
                    ax.text(0.715, i, row["note"], transform=labels, ha="left", va="center", style="italic",
                            color="#555555")
                continue
            hr, lo, hi = (min(max(float(v), lo_clip), hi_clip) for v in (row["hr"], row["lower"], row["upper"]))
            ax.plot([lo, hi], [i, i], color=NEUTRAL, lw=1.2)
            for end, raw, marker in ((lo, row["lower"], "<"), (hi, row["upper"], ">")):
                if raw is not None and not lo_clip <= raw <= hi_clip:
                    ax.plot([end], [i], marker, color=NEUTRAL, ms=4)
            ax.plot([hr], [i], "s", color=GROUP_COLOURS["low"], ms=4)
            ax.text(0.715, i, fmt_hr(row["hr"], row["lower"], row["upper"]), transform=labels, ha="left", va="center")
            ax.text(0.99, i, fmt_p_eq(row["p"]), transform=labels, ha="right", va="center")
        ax.set_xscale("log")
        ax.set_xlim(lo_clip, hi_clip)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_value(float(v))))
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xlabel(f"Hazard ratio ({ci_label()}), log scale")
        ax.text(0.715, -0.9, f"HR ({ci_label()})", transform=labels, ha="left", va="bottom", fontweight="bold")
        return save(fig, path)


# --------------------------------------------------------------------------- nomogram


def nomogram_rows(risk: RiskScores | None, nomogram: Nomogram) -> list[dict[str, Any]]:
    """The nomogram's axes top to bottom as {"label", "x", "ticks"}, x in the units of the
    Points axis: a predictor's ticks sit at their table points; the total-points, linear
    predictor and survival axes map total points linearly onto the Points range (the
    total-points span covers every tick of those axes). A survival axis's line ("span")
    covers its survival grid, so an axis with a single labelled tick still shows its range."""
    predictors = nomogram.predictors
    top = max([max(floats(p.points)) for p in predictors.values() if p.points] + [0.0]) or 100.0
    points = [float(v) for v in np.arange(0, top + 1e-9, 10.0)]
    rows: list[dict[str, Any]] = [{"label": "Points", "x": points, "ticks": [fmt_value(v) for v in points]}]
    for name, p in predictors.items():
        ticks = [fmt_value(float(v)) if v is not None else str(s)
                 for v, s in zip(p.value_numeric or [None] * len(p.values), p.values, strict=False)]
        rows.append({"label": covariate_label(risk, name), "x": floats(p.points), "ticks": ticks})
    totals = floats(nomogram.total_points)
    lp_axis = nomogram.lp_axis
    surv = nomogram.survival_axes
    survival_points = [v for a in surv.values() for v in floats(a.total_points)]
    span = totals + survival_points + (floats(lp_axis.total_points) if lp_axis is not None else [])
    lo, hi = min(span), max(span)

    def to_x(values: Sequence[float]) -> list[float]:
        return [(float(v) - lo) / (hi - lo) * top for v in values]

    rows.append({"label": "Total points", "x": to_x(totals), "ticks": [fmt_value(v) for v in totals]})
    if lp_axis is not None and lp_axis.lp:
        rows.append({"label": "Linear predictor", "x": to_x(floats(lp_axis.total_points)),
                     "ticks": [fmt_value(round(v, 6)) for v in floats(lp_axis.lp)]})
    unit = nomogram.time_unit or "days"
    for axis in surv.values():
        time = fmt_value(float(axis.time))
        grid = nomogram.survival_grid.get(time)
        inside = [v for v in floats(grid.total_points if grid is not None else []) if lo <= v <= hi]
        rows.append({"label": f"Survival at {time} {unit}", "x": to_x(floats(axis.total_points)),
                     "ticks": [fmt_value(round(s, 6)) for s in floats(axis.survival)],
                     "span": to_x([min(inside), max(inside)]) if inside else None})
    return rows


def draw_nomogram(rows: Sequence[Mapping[str, Any]], nomogram: Nomogram, path: Path) -> Path:
    """The nomogram: one scale per row, tick labels above (alternating above/below where crowded)."""
    top = max(max(r["x"]) for r in rows[:1])
    fig_h = 0.5 + 0.42 * len(rows)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, fig_h))
        fig.subplots_adjust(left=0.24, right=0.96, top=1 - 0.3 / fig_h, bottom=0.2 / fig_h)
        ax.axis("off")
        for i, row in enumerate(rows):
            y = -i
            xs = row["x"]
            ends = [*xs, *(row.get("span") or [])]
            ax.plot([min(ends), max(ends)], [y, y], color="#333333", lw=0.8)
            ranked = sorted(range(len(xs)), key=lambda k: xs[k])
            crowded = any(xs[b] - xs[a] < 0.06 * top for a, b in pairwise(ranked))
            for rank, k in enumerate(ranked):
                below = crowded and rank % 2 == 1
                ax.plot([xs[k], xs[k]], [y, y + (-0.1 if below else 0.1)], color="#333333", lw=0.7)
                ax.text(xs[k], y + (-0.14 if below else 0.14), row["ticks"][k], ha="center",
                        va="top" if below else "bottom", fontsize=FONT_SIZE - 1)
            ax.text(-0.02, y, row["label"], transform=ax.get_yaxis_transform(), ha="right", va="center",
                    fontweight="bold" if i == 0 else "normal")
        ax.set_xlim(-0.02 * top, 1.02 * top)
        ax.set_ylim(-len(rows) + 0.5, 0.6)
        fig.text(0.01, 1 - 0.05 / fig_h, f"Cox nomogram (n = {fmt_int(nomogram.n)}, "
                 f"events = {fmt_int(nomogram.n_events)})", ha="left", va="top", fontsize=FONT_SIZE - 0.5,
                 color="#444444")
        return save(fig, path)
