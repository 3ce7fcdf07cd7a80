"""Grouped calibration curves at each time (Steyerberg, Clinical Prediction Models, 2nd ed.
2019, ch. 15): mean predicted event probability per risk group against the Kaplan–Meier
observed event probability."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt

from studyrunner.report.figures.style import REFERENCE_LINE, STYLE, as_float, panels, save, time_colour
from studyrunner.report.formatting import fmt_time
from studyrunner.results.models import CalibrationRow


def rows_by_time(rows: Sequence[CalibrationRow]) -> dict[float, list[CalibrationRow]]:
    """Calibration rows grouped by their time, in recorded order."""
    by_time: dict[float, list[CalibrationRow]] = {}
    for row in rows:
        by_time.setdefault(row.time, []).append(row)
    return by_time


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
            ax.errorbar(pred, obs, yerr=[err_lo, err_hi], fmt="o-", color=time_colour(i), ms=3.5, lw=1.0,
                        elinewidth=0.8, capsize=2, label="Groups (Kaplan\u2013Meier)")
            if smoothed and t in smoothed:
                ax.plot(*smoothed[t], color=time_colour(i), lw=1.4, alpha=0.6, label="Smoothed")
                ax.legend(loc="upper left", fontsize="small", frameon=False)
            ax.set_xlim(-0.02, 1.02)
            ax.set_ylim(-0.02, 1.02)
            ax.set_aspect("equal")
            ax.set_title(f"{fmt_time(t)} {time_unit}", loc="left")
            ax.set_xlabel("Predicted event probability")
            if i == 0:
                ax.set_ylabel("Observed (Kaplan\u2013Meier)")
        return save(fig, path)
