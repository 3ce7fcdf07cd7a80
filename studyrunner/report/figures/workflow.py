"""The study's workflow at a glance (TRIPOD+AI items 5–12, 20a; Collins et al., BMJ
2024;385:e078378): one lane per strand of the study — patients (clinical table, exclusions,
inclusion, training and test sets), radiomics (features extracted, reproducible, screened,
selected, in the final model) and, when the run trained them, the CNN scores — all joining in
the evaluation with each cohort's patients and events. Every count is read from results.json.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from studyrunner.report.figures.flow import ARROW_GAP_IN, Canvas, box_height, exclusion_lines
from studyrunner.report.figures.labels import score_label
from studyrunner.report.figures.style import FONT_SIZE, STYLE, TEXT_WIDTH_IN, recorded, save
from studyrunner.report.formatting import fmt_int, fmt_value
from studyrunner.results.models import Results

Box = list[tuple[str, bool]]
LANE_GAP_IN, MARGIN_IN, TITLE_H_IN = 0.25, 0.08, 0.25
NO_BREAK_EQUALS = "\u00a0=\u00a0"  # "n = 42" never breaks across lines
CHAR_W_IN = FONT_SIZE * 0.56 / 72  # mean width of a DejaVu Sans character at the figure's font size


@dataclass
class Lane:
    """One strand of the workflow: its title and its boxes top to bottom (a box: lines, bold or not)."""

    title: str
    boxes: list[Box] = field(default_factory=list)


def box(heading: str, *details: str) -> Box:
    """A box with a bold heading line and plain detail lines."""
    return [(heading, True), *((d, False) for d in details)]


def patient_lane(results: Results) -> Lane:
    """Clinical table -> excluded (by stage) -> included -> training and test sets."""
    flow = results.flow
    lane = Lane("Patients")
    if not recorded(flow):
        return lane
    lane.boxes.append(box("Clinical table", f"n = {fmt_int(flow.n_clinical)}"))
    stages = [text for text, heading in exclusion_lines(flow.exclusions)[1:] if heading]
    lane.boxes.append(box(f"Excluded (n = {fmt_int(len(flow.exclusions))})", *stages))
    lane.boxes.append(box("Included", f"n = {fmt_int(flow.n_included)}"))
    sets = []
    for label, members in (("Training set", flow.training_partitions), ("Test set", flow.test_partitions)):
        if members:
            total = sum(flow.partitions.get(m, 0) for m in members)
            sets.append(f"{label}: n = {fmt_int(total)}")
    if sets:
        lane.boxes.append(box("Split", *sets))
    return lane


def radiomics_lane(results: Results) -> Lane:
    """Features extracted -> reproducible (ICC filter) -> screened -> selected -> final model."""
    lane = Lane("Radiomics")
    radiomics, model = results.radiomics, results.model
    if recorded(radiomics) and radiomics.n_features is not None:
        lane.boxes.append(box("Features extracted", f"n = {fmt_int(radiomics.n_features)} per patient",
                              f"{fmt_int(radiomics.n_cases)} CT studies"))
    reproducibility = results.reproducibility
    if recorded(reproducibility):
        lane.boxes.append(box("Reproducible", f"ICC > {fmt_value(reproducibility.threshold)}",
                              f"n = {fmt_int(reproducibility.n_kept)}"))
    if recorded(model):
        screening = model.screening
        lane.boxes.append(box("Screened", f"univariable Cox, p < {fmt_value(screening.p_threshold)}",
                              f"n = {fmt_int(screening.n_kept)}"))
    selection = results.selection
    if recorded(selection):
        ran = sum(1 for choice in selection.learners.values() if not choice.error)
        lane.boxes.append(box("Selected", f"by {fmt_int(ran)} learners, combined",
                              f"n = {fmt_int(len(selection.combined))}"))
    if recorded(model):
        cutoff = f"cut-off: {model.cutoff.label}" if model.cutoff is not None else "no cut-off"
        lane.boxes.append(box("Final model", f"n = {fmt_int(len(model.coefficients))} features", cutoff))
    return lane


def cnn_lane(results: Results) -> Lane:
    """The CNN scores (when the run trained networks): crops, networks, scores, headline score."""
    lane = Lane("Deep learning")
    deep, risk = results.deep, results.risk_scores
    if deep is None or risk is None:
        return lane
    lane.boxes.append(box("CT crops", f"n = {fmt_int(deep.crops.n_cropped)}"))
    lane.boxes.append(box("Networks", f"n = {fmt_int(len(deep.networks))}"))
    labels = [score_label(risk, name) for name in risk.scores]
    lane.boxes.append(box("Risk scores", ", ".join(labels)))
    if risk.headline_score is not None:
        lane.boxes.append(box("Headline score", score_label(risk, risk.headline_score)))
    return lane


def evaluation_box(results: Results) -> Box:
    """Each evaluated cohort with its patients and events."""
    evaluation = results.evaluation if recorded(results.evaluation) else {}
    lines = [f"{ev.cohort_label}: n = {fmt_int(ev.n)}, events = {fmt_int(ev.n_events)}" for ev in evaluation.values()]
    return box("Evaluation", *lines) if lines else []


def workflow_lanes(results: Results) -> list[Lane]:
    """The lanes that results.json has data for, left to right."""
    return [lane for lane in (patient_lane(results), radiomics_lane(results), cnn_lane(results)) if lane.boxes]


def draw_workflow(results: Results, path: Path) -> Path:
    """The workflow figure (see the module docstring) as a PNG at ``path``."""
    with plt.rc_context(STYLE):
        return save(workflow_figure(workflow_lanes(results), evaluation_box(results)), path)


def _wrapped(lines: Box, width_in: float) -> Box:
    """Lines wrapped to a box ``width_in`` wide (continuations keep the line's weight)."""
    chars = max(int((width_in - 0.14) / CHAR_W_IN), 12)
    return [(part, bold) for text, bold in lines
            for part in (textwrap.wrap(text.replace(" = ", NO_BREAK_EQUALS), chars) or [""])]


def _lane_height(boxes: Sequence[Box]) -> float:
    return sum(box_height(len(b)) for b in boxes) + ARROW_GAP_IN * max(len(boxes) - 1, 0)


def workflow_figure(lanes: Sequence[Lane], final: Box) -> Figure:
    """Lanes side by side (boxes joined by arrows), each ending in an arrow to the ``final`` box."""
    lane_w = (TEXT_WIDTH_IN - 2 * MARGIN_IN - LANE_GAP_IN * (len(lanes) - 1)) / max(len(lanes), 1)
    boxes = [[_wrapped(b, lane_w) for b in lane.boxes] for lane in lanes]
    final = _wrapped(final, TEXT_WIDTH_IN - 2 * MARGIN_IN)
    lanes_h = max([_lane_height(b) for b in boxes] or [0.0])
    height = MARGIN_IN + TITLE_H_IN + lanes_h + (ARROW_GAP_IN + box_height(len(final)) if final else 0) + MARGIN_IN
    canvas = Canvas(TEXT_WIDTH_IN, height)
    top = height - MARGIN_IN - TITLE_H_IN
    final_top = top - lanes_h - ARROW_GAP_IN
    for k, (lane, lane_boxes) in enumerate(zip(lanes, boxes, strict=True)):
        x0 = MARGIN_IN + k * (lane_w + LANE_GAP_IN)
        centre = x0 + lane_w / 2
        canvas.ax.text(centre, top + TITLE_H_IN / 2, lane.title, ha="center", va="center", fontweight="bold",
                       fontsize=FONT_SIZE + 0.5, color="#14324a")
        y = top
        for i, lines in enumerate(lane_boxes):
            if i:
                canvas.arrow((centre, y + ARROW_GAP_IN), (centre, y))
            y = canvas.box(x0, y, lane_w, lines) - ARROW_GAP_IN
        if final:
            canvas.arrow((centre, y + ARROW_GAP_IN), (centre, final_top))
    if final:
        canvas.box(MARGIN_IN, final_top, TEXT_WIDTH_IN - 2 * MARGIN_IN, final)
    return canvas.fig
