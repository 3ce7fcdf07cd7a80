"""Which figures a run gets: every figure family that results.json has data for.

The survival-study figures (participant flow, Kaplan–Meier curves per cohort, C-index plot)
and those of the radiomics-signature study (seed 001): ICC histogram, the learners' feature
sets, time-dependent ROC, calibration and decision curves per cohort, cross-validated AUCs.
"""

from __future__ import annotations

from pathlib import Path

from studyrunner.report.figures.calibration import draw_frozen_calibration
from studyrunner.report.figures.cross_validation import draw_cross_validation
from studyrunner.report.figures.decision import draw_decision_curves
from studyrunner.report.figures.discrimination import draw_discrimination
from studyrunner.report.figures.flow import draw_flow_diagram
from studyrunner.report.figures.forest import draw_forests
from studyrunner.report.figures.km import draw_km
from studyrunner.report.figures.learner_sets import draw_learner_sets, learner_sets
from studyrunner.report.figures.reproducibility import draw_icc_histogram
from studyrunner.report.figures.style import recorded
from studyrunner.report.figures.time_roc import draw_time_roc
from studyrunner.report.figures.workflow import draw_workflow
from studyrunner.results.models import CohortEvaluation, HypothesisTest, Results


def evaluated_cohorts(results: Results) -> dict[str, CohortEvaluation]:
    """The evaluated cohorts by name (none when the evaluation was not run)."""
    return results.evaluation if recorded(results.evaluation) else {}


def cutoff_search(results: Results) -> HypothesisTest | None:
    """The radiomics model's cut-off search test (maxstat, X-tile) on the training cohort, its p
    adjusted for the search over cut-offs; None for a fixed cut-off (training median)."""
    model = results.model if recorded(results.model) else None
    cutoff = getattr(model, "cutoff", None)
    return cutoff.search_test if cutoff is not None and cutoff.p_value is not None else None


def primary_endpoint_label(results: Results) -> str:
    """The label of the primary endpoint ("Survival" when none is recorded)."""
    key = results.primary_endpoint
    return results.endpoints[key].label if key is not None and key in results.endpoints else "Survival"


def draw_figures(results: Results, figures_dir: Path) -> dict[str, Path]:
    """Draw every figure that the results have data for; return {figure key: PNG path}.

    Keys: "flow" and "workflow" (``workflow.draw_workflow``), "forest_subgroups" and
    "forest_comparison" of the CNN scores (``forest.draw_forests``), "km_<cohort>" for each
    cohort in ``evaluation`` that has curves, and
    "discrimination" when any cohort has a C-index, then those of ``draw_signature_figures``.
    """
    figures: dict[str, Path] = {}
    if recorded(results.flow):
        figures["flow"] = draw_flow_diagram(results.flow, figures_dir / "flow.png")
        figures["workflow"] = draw_workflow(results, figures_dir / "workflow.png")
    figures.update(draw_forests(results.risk_scores, figures_dir))
    evaluation = evaluated_cohorts(results)
    endpoint_label = primary_endpoint_label(results)
    for name, ev in evaluation.items():
        if ev.km:
            figures[f"km_{name}"] = draw_km(ev, endpoint_label, figures_dir / f"km_{name}.png",
                                            cohort_label=ev.cohort_label, time_unit=ev.time_unit,
                                            search=cutoff_search(results) if name == "training" else None)
    with_c = {name: ev for name, ev in evaluation.items() if ev.c_index is not None}
    if with_c:
        oracle = results.oracle if recorded(results.oracle) else None
        figures["discrimination"] = draw_discrimination(with_c, oracle, figures_dir / "discrimination.png")
    figures.update(draw_signature_figures(results, figures_dir))
    return figures


def draw_signature_figures(results: Results, figures_dir: Path) -> dict[str, Path]:
    """The radiomics-signature figures that the results have data for.

    Keys: "icc", "learner_sets", "cross_validation", and per evaluated cohort
    "time_roc_<cohort>", "calibration_<cohort>", "decision_<cohort>".
    """
    figures: dict[str, Path] = {}
    reproducibility = results.reproducibility
    if recorded(reproducibility) and reproducibility.icc:
        figures["icc"] = draw_icc_histogram(reproducibility, figures_dir / "icc.png")
    selection = results.selection
    if recorded(selection) and learner_sets(selection):
        figures["learner_sets"] = draw_learner_sets(selection, figures_dir / "learner_sets.png")
    cohorts = evaluated_cohorts(results)
    for name, ev in cohorts.items():
        figures.update(_cohort_signature_figures(name, ev, figures_dir))
    cv = results.cross_validation
    if recorded(cv) and cv.times:
        training = cohorts.get("training")
        training_roc = training.time_roc if training is not None and recorded(training.time_roc) else None
        withheld = set(training_roc.withheld) if training_roc is not None else set()
        figures["cross_validation"] = draw_cross_validation(cv, figures_dir / "cross_validation.png", withheld)
    return figures


def _cohort_signature_figures(name: str, ev: CohortEvaluation, figures_dir: Path) -> dict[str, Path]:
    """"time_roc_<cohort>", "calibration_<cohort>", "decision_<cohort>" of one evaluated cohort."""
    figures: dict[str, Path] = {}
    unit = ev.time_unit or ""
    if recorded(ev.time_roc):
        figures[f"time_roc_{name}"] = draw_time_roc(ev.time_roc, ev.cohort_label, figures_dir / f"time_roc_{name}.png")
    if recorded(ev.calibration):
        figures[f"calibration_{name}"] = draw_frozen_calibration(ev.calibration, unit,
                                                                 figures_dir / f"calibration_{name}.png")
    if recorded(ev.decision_curves):
        figures[f"decision_{name}"] = draw_decision_curves(ev.decision_curves, unit,
                                                           figures_dir / f"decision_{name}.png", ev.decision_summary)
    return figures
