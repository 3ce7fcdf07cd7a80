"""Decision curves at each time (Vickers & Elkin, Med Decis Making 2006;26:565–574): the net
benefit of the model against treating all and treating none, with the protocol's clinically
sensible threshold range shaded (Vickers, van Calster & Steyerberg, Diagn Progn Res 2019;3:18).
The legend sits above the panels, outside the plotting area."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt

from studyrunner.report.figures.style import STYLE, as_float, panels, save, time_colour
from studyrunner.report.formatting import fmt_time
from studyrunner.results.models import DecisionRow, DecisionSummary

RANGE_COLOUR = "#dce9f2"


def threshold_range(summaries: Mapping[str, DecisionSummary] | None) -> list[float] | None:
    """The protocol's threshold range as recorded with the decision-curve summaries (None if not stated)."""
    return next((s.range for s in (summaries or {}).values() if s.range), None)


def draw_decision_curves(curves: Mapping[str, Sequence[DecisionRow]], time_unit: str, path: Path,
                         summaries: Mapping[str, DecisionSummary] | None = None) -> Path:
    """Decision curves at each time (``curves`` keyed by ``registry.time_key``): net benefit of the
    model against treating all and treating none; the threshold range of ``summaries`` shaded."""
    shade = threshold_range(summaries)
    with plt.rc_context(STYLE):
        fig, axes = panels(len(curves))
        for i, (ax, (key, rows)) in enumerate(zip(axes, curves.items(), strict=False)):
            x = [r.threshold for r in rows]
            model = [as_float(r.net_benefit) for r in rows]
            treat_all = [as_float(r.treat_all) for r in rows]
            treat_none = [as_float(r.treat_none) for r in rows]
            if shade:
                ax.axvspan(shade[0], shade[1], color=RANGE_COLOUR, zorder=0, lw=0,
                           label="Clinically sensible thresholds")
            ax.plot(x, treat_none, color="#1a1a1a", lw=0.8, label="Treat none")
            ax.plot(x, treat_all, color="#999999", lw=1.0, label="Treat all")
            ax.plot(x, model, color=time_colour(0), lw=1.3, label="Radiomics model")
            finite = [v for v in model + treat_all if not math.isnan(v)]
            top = max([*finite, 0.05])
            ax.set_ylim(-0.1 * top - 0.02, top * 1.1)
            ax.set_xlim(0, max(x) if x else 1)
            ax.set_title(f"{fmt_time(float(key))} {time_unit}", loc="left")
            ax.set_xlabel("Threshold probability")
            if i == 0:
                ax.set_ylabel("Net benefit")
        if axes:
            fig.subplots_adjust(top=0.8)
            fig.legend(*axes[0].get_legend_handles_labels(), loc="upper left", ncol=4, bbox_to_anchor=(0.07, 1.0))
        return save(fig, path)
