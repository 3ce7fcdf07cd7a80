"""Grouped calibration curves at each time (Steyerberg, Clinical Prediction Models, 2nd ed.
2019, ch. 15): mean predicted event probability per risk group against the Kaplan–Meier
observed event probability, with the smoothed calibration curve where recorded (Austin PC,
Harrell FE, van Klaveren D (2020), Stat Med 39:2714-2742). The legend sits above the panels,
outside the plotting area."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt

from studyrunner.report.figures.style import REFERENCE_LINE, STYLE, as_float, panels, save, time_colour
from studyrunner.report.formatting import fmt_time
from studyrunner.results.models import CalibrationRow, FrozenCalibration


def rows_by_time(rows: Sequence[CalibrationRow]) -> dict[float, list[CalibrationRow]]:
    """Calibration rows grouped by their time, in recorded order."""
    by_time: dict[float, list[CalibrationRow]] = {}
    for row in rows:
        by_time.setdefault(row.time, []).append(row)
    return by_time


def calibration_group_rows(calibration: FrozenCalibration) -> list[CalibrationRow]:
    """The risk groups of every time of a frozen calibration, as rows (group 1 = lowest risk)."""
    return [CalibrationRow(time=at.t, group=g.group, n=g.n, n_events=g.n_events, predicted=g.predicted,
                           observed=g.observed, lower=g.lower, upper=g.upper)
            for at in calibration.at.values() for g in sorted(at.groups, key=lambda g: g.group)]


def draw_frozen_calibration(calibration: FrozenCalibration, time_unit: str, path: Path) -> Path:
    """A frozen score's calibration (``statistics.frozen_calibration``): its risk groups and smoothed
    curve at each time."""
    smoothed = {at.t: (at.smoothed.curve.predicted, at.smoothed.curve.observed)
                for at in calibration.at.values() if at.smoothed is not None}
    return draw_calibration(calibration_group_rows(calibration), time_unit, path, smoothed=smoothed)


def draw_calibration(calibration: Sequence[CalibrationRow], time_unit: str, path: Path,
                     smoothed: Mapping[float, tuple[Sequence[float], Sequence[float]]] | None = None) -> Path:
    """Calibration at each time: mean predicted event probability per risk group against the
    Kaplan–Meier observed event probability with its confidence interval; the diagonal is perfect
    calibration. ``smoothed`` adds each time's smoothed curve {t: (predicted, observed)}."""
    by_time = rows_by_time(calibration)
    with plt.rc_context(STYLE):
        fig, axes = panels(len(by_time))
        for i, (ax, (t, rows)) in enumerate(zip(axes, by_time.items(), strict=False)):
            rows = sorted(rows, key=lambda r: r.group)
            pred = [as_float(r.predicted) for r in rows]
            obs = [as_float(r.observed) for r in rows]
            err_lo = [o - as_float(r.lower) for o, r in zip(obs, rows, strict=True)]
            err_hi = [as_float(r.upper) - o for o, r in zip(obs, rows, strict=True)]
            ax.plot([0, 1], [0, 1], **REFERENCE_LINE)
            ax.errorbar(pred, obs, yerr=[err_lo, err_hi], fmt="o-", color=time_colour(0), ms=3.5, lw=1.0,
                        elinewidth=0.8, capsize=2, label="Groups (Kaplan\u2013Meier)")
            if smoothed and t in smoothed:
                ax.plot(*smoothed[t], color=time_colour(0), lw=1.4, alpha=0.6, label="Smoothed")
            ax.set_xlim(-0.02, 1.02)
            ax.set_ylim(-0.02, 1.02)
            ax.set_aspect("equal")
            ax.set_title(f"{fmt_time(t)} {time_unit}", loc="left")
            ax.set_xlabel("Predicted event probability")
            if i == 0:
                ax.set_ylabel("Observed (Kaplan\u2013Meier)")
        if axes:
            fig.subplots_adjust(top=0.8)
            fig.legend(*axes[0].get_legend_handles_labels(), loc="upper left", ncol=2, bbox_to_anchor=(0.07, 1.0))
        return save(fig, path)
