"""Report figures drawn from results.json, one module per figure family.

``style`` holds what every family shares (rc parameters, sizes, colours, ``save``, axis
helpers); ``study.draw_figures`` draws the survival-study and radiomics-signature figures a
run has data for, ``deep.draw_deep_figures`` those of a seed-000 CNN run. Families: ``flow``,
``km``, ``km_panels``, ``discrimination``, ``reproducibility``, ``learner_sets``,
``time_roc``, ``calibration``, ``decision``, ``cross_validation``, ``deep``,
``clinical_cox``, ``response``, ``explanations``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # before any family module imports pyplot

from studyrunner.registry import learner_label
from studyrunner.report.figures.deep import draw_deep_figures
from studyrunner.report.figures.flow import exclusion_lines, stage_label
from studyrunner.report.figures.learner_sets import draw_learner_sets, set_intersections, uses_venn
from studyrunner.report.figures.study import draw_figures, draw_signature_figures
from studyrunner.report.figures.style import DPI, TEXT_WIDTH_IN

__all__ = [
    "DPI",
    "TEXT_WIDTH_IN",
    "draw_deep_figures",
    "draw_figures",
    "draw_learner_sets",
    "draw_signature_figures",
    "exclusion_lines",
    "learner_label",
    "set_intersections",
    "stage_label",
    "uses_venn",
]
