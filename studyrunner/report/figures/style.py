"""The look shared by every report figure: rc parameters, sizes, colours, saving, axis helpers.

All figures are drawn with matplotlib's Agg backend (chosen by the package's ``__init__``
before any family imports pyplot) at ``DPI`` and are sized in inches to the A4 text block, so
the PDF shows them at 1:1. Every number printed on a figure goes through ``studyrunner.report.formatting``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec
from matplotlib.legend import Legend
from matplotlib.ticker import FuncFormatter

from studyrunner.report.formatting import fmt_num
from studyrunner.results.models import NotRun

if TYPE_CHECKING:  # matplotlib.typing.RcKeyType is not in every matplotlib >= 3.8
    from matplotlib.typing import RcKeyType

R = TypeVar("R")

DPI = 200
TEXT_WIDTH_IN = 6.3  # A4 (210 mm) minus two 20 mm margins, rounded down
FONT_SIZE = 8.0

GROUP_COLOURS = {"low": "#1f5f8b", "high": "#b03a2e"}
GROUP_LABELS = {"low": "Low risk", "high": "High risk"}
OTHER_GROUP_COLOUR = "#444444"
ORACLE_COLOUR = "#6c6c6c"
BOX_EDGE = "#333333"
BOX_FILL = "#f4f6f8"
THRESHOLD_COLOUR = "#b03a2e"
NEUTRAL = "#5a6f80"
REFERENCE_LINE: dict[str, Any] = {"color": "#999999", "lw": 0.7, "ls": "--"}
TIME_COLOURS = ("#1f5f8b", "#2e8b57", "#c98a00", "#b03a2e", "#6a3d9a", "#4d4d4d")

STYLE: dict[RcKeyType, Any] = {
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


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` (PNG at ``DPI`` on white), close it and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    plt.close(fig)
    return path


def time_colour(i: int) -> str:
    """The colour of the i-th time point, the same in every time-dependent figure."""
    return TIME_COLOURS[i % len(TIME_COLOURS)]


def group_colour(group: str) -> str:
    """The colour of a risk group ("low", "high"; any other group is grey)."""
    return GROUP_COLOURS.get(group, OTHER_GROUP_COLOUR)


def recorded(record: R | NotRun | None) -> TypeGuard[R]:
    """True for a results record with data: not absent (None), not a ``NotRun`` and not empty
    (an empty dict or list)."""
    return record is not None and not isinstance(record, NotRun) and bool(record)


def as_float(value: Any) -> float:
    """A results.json number as a float; None (not estimable) becomes NaN, which matplotlib skips."""
    return math.nan if value is None else float(value)


def floats(values: Sequence[float | None]) -> list[float]:
    """A results.json list of numbers as floats (None becomes NaN, see ``as_float``)."""
    return [as_float(value) for value in values]


def tick_formatter(digits: int) -> FuncFormatter:
    """Axis tick labels through ``fmt_num`` with ``digits`` decimals."""
    return FuncFormatter(lambda v, _: fmt_num(v, digits))


def panels(n: int, height: float = 2.45) -> tuple[Figure, list[Axes]]:
    """A text-wide row of ``n`` panels (at least one)."""
    fig, axes = plt.subplots(1, max(n, 1), figsize=(TEXT_WIDTH_IN, height), squeeze=False)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.86, bottom=0.2, wspace=0.32)
    return fig, list(axes[0])


def roc_axes(ax: Axes, xlabel: str = "1 \u2212 specificity", ylabel: str = "Sensitivity") -> None:
    """The unit square of a ROC plot with its axis labels."""
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


LEGEND_GAP_PT = 4.0  # between the axes (with its tick and axis labels) and a legend outside it


def legend_outside(ax: Axes, side: str = "right", ncol: int | None = None, **kwargs: Any) -> Legend | None:
    """The legend of ``ax`` outside its plotting area, so that no curve runs through its text.

    ``side``: "right" (top-aligned beside the axes; leave room with ``subplots_adjust(right=...)``),
    "above" (left-aligned over the axes, entries in one row by default) or "below" (centred
    under the x-axis label, placed after a draw so it clears the tick and axis labels; leave
    room with ``subplots_adjust(bottom=...)``). ``kwargs`` go to ``Axes.legend`` (handles,
    labels, title, ...). Returns None when there is nothing to label."""
    handles, labels = (kwargs.pop("handles", None), kwargs.pop("labels", None))
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    elif labels is None:
        labels = [h.get_label() for h in handles]
    if not handles:
        return None
    fig = ax.get_figure()
    assert isinstance(fig, Figure)
    gap = LEGEND_GAP_PT / 72 * fig.dpi  # pixels
    if side == "right":
        place: dict[str, Any] = {"loc": "upper left", "bbox_to_anchor": (1.0 + gap / ax.bbox.width, 1.0),
                                 "ncol": ncol or 1}
    elif side == "above":
        place = {"loc": "lower left", "bbox_to_anchor": (0.0, 1.0 + gap / ax.bbox.height), "ncol": ncol or len(handles)}
    elif side == "below":
        fig.canvas.draw()
        below = ax.get_tightbbox()
        bottom = ax.bbox.y0 - (below.y0 if below is not None else ax.bbox.y0)
        place = {"loc": "upper center", "bbox_to_anchor": (0.5, -(bottom + gap) / ax.bbox.height),
                 "ncol": ncol or len(handles)}
    else:
        raise ValueError(f"legend side must be right, above or below, not {side!r}")
    legend = ax.legend(handles, labels, borderaxespad=0.0, **place, **kwargs)
    if side == "right":
        _make_room_right(ax, legend)
    return legend


def _make_room_right(ax: Axes, legend: Legend) -> None:
    """Narrow ``ax`` (through its grid, so later cells of the same grid follow) until the legend
    beside it ends inside the figure."""
    fig = ax.get_figure()
    assert isinstance(fig, Figure)
    fig.canvas.draw()
    overflow = legend.get_window_extent().x1 - (fig.bbox.x1 - LEGEND_GAP_PT / 72 * fig.dpi)
    if overflow <= 0:
        return
    right = (ax.bbox.x1 - overflow) / fig.bbox.width
    spec = ax.get_subplotspec()
    grid = spec.get_gridspec() if spec is not None else None
    if isinstance(grid, GridSpec):
        grid.update(right=right)
    else:
        box = ax.get_position()
        ax.set_position((box.x0, box.y0, right - box.x0, box.height))


def hide_spines(ax: Axes) -> None:
    """Remove every spine of ``ax`` (tables, matrices, image cells)."""
    for spine in ax.spines.values():
        spine.set_visible(False)
