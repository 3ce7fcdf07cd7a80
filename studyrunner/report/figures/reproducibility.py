"""Histogram of the per-feature ICCs of the reproducibility filter with its keep threshold
(Koo & Li, J Chiropr Med 2016;15:155–163)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt

from studyrunner.report.figures.style import (
    FONT_SIZE,
    GROUP_COLOURS,
    STYLE,
    TEXT_WIDTH_IN,
    THRESHOLD_COLOUR,
    legend_outside,
    save,
)
from studyrunner.report.formatting import fmt_int, fmt_num
from studyrunner.results.models import Reproducibility

BIN_WIDTH = 0.025


def icc_bin_edges(icc: list[float]) -> list[float]:
    """Bins of ``BIN_WIDTH`` ending at 1.0 and reaching down to the lowest ICC (at least to 0)."""
    low = min([0.0, *icc])
    return [1.0 - BIN_WIDTH * k for k in range(math.ceil((1.0 - low) / BIN_WIDTH) + 1)][::-1]


def draw_icc_histogram(reproducibility: Reproducibility, path: Path) -> Path:
    """Histogram of the per-feature ICCs with the keep threshold (features above it are kept)."""
    icc = [float(v) for v in reproducibility.icc if v is not None and not math.isnan(float(v))]
    threshold = reproducibility.threshold
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, 2.3))
        fig.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.19)
        edges = icc_bin_edges(icc)
        kept = [v for v in icc if v > threshold]
        dropped = [v for v in icc if v <= threshold]
        ax.hist([dropped, kept], bins=edges, stacked=True, color=["#c9c9c9", GROUP_COLOURS["low"]],
                label=[f"Removed (n = {fmt_int(len(dropped))})", f"Kept (n = {fmt_int(len(kept))})"],
                edgecolor="white", linewidth=0.3)
        ax.axvline(threshold, color=THRESHOLD_COLOUR, lw=1.0, ls="--")
        ax.text(threshold, 1.0, f" threshold {fmt_num(threshold, 2)}", transform=ax.get_xaxis_transform(),
                ha="right", va="bottom", color=THRESHOLD_COLOUR, fontsize=FONT_SIZE - 0.5)
        ax.set_xlim(edges[0], 1.0)
        ax.set_xlabel("Intraclass correlation coefficient between the two segmentations")
        ax.set_ylabel("Features")
        legend_outside(ax, "right")
        return save(fig, path)
