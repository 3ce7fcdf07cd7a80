"""Which figures a run gets: every figure family that results.json has data for.

The survival-study figures (participant flow, Kaplan–Meier curves per cohort, C-index plot)
and those of the radiomics-signature study (seed 001): ICC histogram, the learners' feature
sets, time-dependent ROC, calibration and decision curves per cohort, cross-validated AUCs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from studyrunner.report.figures.calibration import draw_calibration
from studyrunner.report.figures.cross_validation import draw_cross_validation
from studyrunner.report.figures.decision import draw_decision_curves
from studyrunner.report.figures.discrimination import draw_discrimination
from studyrunner.report.figures.flow import draw_flow_diagram
from studyrunner.report.figures.km import draw_km
from studyrunner.report.figures.learner_sets import draw_learner_sets, learner_sets
from studyrunner.report.figures.reproducibility import draw_icc_histogram
from studyrunner.report.figures.style import recorded
from studyrunner.report.figures.time_roc import draw_time_roc


def draw_figures(results: Mapping[str, Any], figures_dir: Path) -> dict[str, Path]:
    """Draw every figure that results.json has data for; return {figure key: PNG path}.

    Keys: "flow", "km_<cohort>" for each cohort in ``evaluation`` that has curves, and
    "discrimination" when any cohort has a C-index, then those of ``draw_signature_figures``.
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


def draw_signature_figures(results: Mapping[str, Any], figures_dir: Path) -> dict[str, Path]:
    """The radiomics-signature figures that results.json has data for.

    Keys: "icc", "learner_sets", "cross_validation", and per evaluated cohort
    "time_roc_<cohort>", "calibration_<cohort>", "decision_<cohort>".
    """
    figures: dict[str, Path] = {}
    reproducibility = results.get("reproducibility")
    if recorded(reproducibility) and reproducibility.get("icc"):
        figures["icc"] = draw_icc_histogram(reproducibility, figures_dir / "icc.png")
    selection = results.get("selection")
    if recorded(selection) and learner_sets(selection):
        figures["learner_sets"] = draw_learner_sets(selection, figures_dir / "learner_sets.png")
    evaluation = results.get("evaluation") if recorded(results.get("evaluation")) else {}
    for name, ev in (evaluation or {}).items():
        if ev:
            figures.update(_cohort_signature_figures(name, ev, figures_dir))
    cv = results.get("cross_validation")
    if recorded(cv) and cv.get("times"):
        figures["cross_validation"] = draw_cross_validation(cv, figures_dir / "cross_validation.png")
    return figures


def _cohort_signature_figures(name: str, ev: Mapping[str, Any], figures_dir: Path) -> dict[str, Path]:
    """"time_roc_<cohort>", "calibration_<cohort>", "decision_<cohort>" of one evaluated cohort."""
    figures: dict[str, Path] = {}
    unit = ev.get("time_unit") or ""
    if recorded(ev.get("time_roc")):
        figures[f"time_roc_{name}"] = draw_time_roc(ev["time_roc"], ev.get("cohort_label", name),
                                                    figures_dir / f"time_roc_{name}.png")
    if recorded(ev.get("calibration")):
        figures[f"calibration_{name}"] = draw_calibration(ev["calibration"], unit,
                                                          figures_dir / f"calibration_{name}.png")
    if recorded(ev.get("decision_curves")):
        figures[f"decision_{name}"] = draw_decision_curves(ev["decision_curves"], unit,
                                                           figures_dir / f"decision_{name}.png")
    return figures
