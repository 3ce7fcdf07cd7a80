"""The participant-flow diagram (TRIPOD+AI item 20a), in the CONSORT/TRIPOD layout:
clinical table -> exclusions (by stage and reason) -> included -> partitions, bracketed
into the training and test sets."""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from studyrunner.report.figures.style import BOX_EDGE, BOX_FILL, FONT_SIZE, STYLE, TEXT_WIDTH_IN, save
from studyrunner.report.formatting import fmt_int
from studyrunner.results.models import Exclusion, Flow

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
MARGIN_IN = 0.1
MAIN_X0_IN, MAIN_WIDTH_IN = 0.15, 2.55
ARROW_GAP_IN = 0.45  # from a box to the row of boxes below it


def stage_label(stage: str) -> str:
    """Human-readable name of an exclusion stage (unknown stages are shown as recorded)."""
    return STAGE_LABELS.get(stage, stage.replace("_", " ").capitalize())


def exclusion_lines(exclusions: Sequence[Exclusion]) -> list[tuple[str, bool]]:
    """Lines of the flow diagram's exclusion box as (text, is_heading) pairs.

    Exclusions are grouped by stage (in the pipeline's order, then any other stage), each
    stage listing its distinct reasons with counts, most frequent first; beyond
    ``MAX_REASONS_PER_STAGE`` reasons the remainder is summarised as "other reasons".
    """
    by_stage: dict[str, Counter[str]] = {}
    for record in exclusions:
        by_stage.setdefault(record.stage, Counter())[record.reason] += 1
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


class Canvas:
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


def draw_flow_diagram(flow: Flow, path: Path) -> Path:
    """Participant flow: clinical table -> exclusions (by stage and reason) -> included -> partitions.

    ``flow`` is the results' ``flow`` record; the partition boxes are bracketed into the
    training and test sets named by ``training_partitions`` and ``test_partitions``.
    """
    with plt.rc_context(STYLE):
        return save(flow_figure(flow), path)


def flow_figure(flow: Flow) -> Figure:
    """The flow diagram: the main column with the exclusion box beside it, then the partitions."""
    partitions = flow.partitions
    excl_lines = exclusion_lines(flow.exclusions)
    gap = max(box_height(len(excl_lines)) + 0.3, 0.55)
    height = (MARGIN_IN + box_height(2) + gap + box_height(2) + ARROW_GAP_IN + box_height(2)
              + (ARROW_GAP_IN if partitions else 0) + MARGIN_IN)
    canvas = Canvas(TEXT_WIDTH_IN, height)
    bottom = _main_column(canvas, flow, excl_lines, gap, top=height - MARGIN_IN)
    if partitions:
        _partition_row(canvas, flow, partitions, bottom)
    return canvas.fig


def _main_column(canvas: Canvas, flow: Flow, excl_lines: Sequence[tuple[str, bool]],
                 gap: float, top: float) -> float:
    """The clinical-table box at ``top`` and the included box ``gap`` below it, the exclusion
    box between them on the right; returns the bottom edge of the included box."""
    centre = MAIN_X0_IN + MAIN_WIDTH_IN / 2
    with_images = flow.n_with_images
    first_lines = [("Patients in clinical table", True), (f"n = {fmt_int(flow.n_clinical)}"
                   + (f"; with CT images: n = {fmt_int(with_images)}" if with_images is not None else ""), False)]
    bottom = canvas.box(MAIN_X0_IN, top, MAIN_WIDTH_IN, first_lines)
    included_top = bottom - gap
    canvas.arrow((centre, bottom), (centre, included_top))
    if flow.exclusions:
        excl_x0 = MAIN_X0_IN + MAIN_WIDTH_IN + 0.35
        excl_top = bottom - (gap - box_height(len(excl_lines))) / 2
        canvas.box(excl_x0, excl_top, TEXT_WIDTH_IN - excl_x0 - 0.05, excl_lines, align="left")
        canvas.arrow((centre, bottom - gap / 2), (excl_x0, bottom - gap / 2))
    return canvas.box(MAIN_X0_IN, included_top, MAIN_WIDTH_IN,
                      [("Included in the analysis", True), (f"n = {fmt_int(flow.n_included)}", False)])


def _partition_row(canvas: Canvas, flow: Flow, partitions: Mapping[str, int], bottom: float) -> None:
    """One box per partition under the included box, bracketed into the training and test sets."""
    names = list(partitions)
    spacing = 0.2
    part_w = min(1.9, (TEXT_WIDTH_IN - 0.3 - spacing * (len(names) - 1)) / len(names))
    row_w = len(names) * part_w + (len(names) - 1) * spacing
    row_x0 = (TEXT_WIDTH_IN - row_w) / 2
    centres = [row_x0 + i * (part_w + spacing) + part_w / 2 for i in range(len(names))]
    centre = MAIN_X0_IN + MAIN_WIDTH_IN / 2
    part_top = bottom - ARROW_GAP_IN
    bar_y = bottom - 0.2
    canvas.line([centre, centre], [bottom, bar_y])
    canvas.line([min([*centres, centre]), max([*centres, centre])], [bar_y, bar_y])
    for name, x in zip(names, centres, strict=True):
        canvas.arrow((x, bar_y), (x, part_top))
        canvas.box(x - part_w / 2, part_top, part_w,
                   [(name.replace("_", " ").capitalize(), True), (f"n = {fmt_int(partitions[name])}", False)])
    bracket_y = part_top - box_height(2) - 0.12
    for label, members in (("Training set", flow.training_partitions), ("Test set", flow.test_partitions)):
        xs = [centres[names.index(m)] for m in members if m in names]
        if not xs:
            continue
        left, right = min(xs) - part_w / 2, max(xs) + part_w / 2
        canvas.line([left, left, right, right], [bracket_y + 0.06, bracket_y, bracket_y, bracket_y + 0.06])
        total = sum(int(partitions[m]) for m in members if m in names)
        canvas.ax.text((left + right) / 2, bracket_y - 0.05, f"{label} (n = {fmt_int(total)})",
                       ha="center", va="top", fontsize=FONT_SIZE, fontstyle="italic")
