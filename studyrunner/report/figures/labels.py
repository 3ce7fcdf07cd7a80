"""Display names shared by the seed-000 figures: CNN scores, clinical columns and their
subgroup levels, Cox covariates and cohorts; the colour of each CNN score by its role."""

from __future__ import annotations

from typing import Any

from studyrunner.results.models import RiskScores

COHORT_LABELS = {"training": "Training cohort", "test": "Test cohort"}
UNIT_WORDS = ("mm", "cm", "ml", "hu", "days", "months", "years")
ENDPOINT_SCORE_COLOURS = ("#b03a2e", "#c98a00", "#6a3d9a", "#1f5f8b")
"""The endpoint scores' colours, by their position in ``risk_scores.scores``."""
FUSED_SCORE_COLOUR = "#2e8b57"
OTHER_SCORE_COLOUR = "#5a6f80"


def score_label(risk: RiskScores | None, name: str) -> str:
    """Display name of a CNN score ("OSRS", "PRS", ...) as recorded in risk_scores."""
    if risk is not None:
        block = risk.scores.get(name) or (risk.response or {}).get(name)
        if block is not None:
            return block.label
    return name.upper()


def score_colours(risk: RiskScores) -> dict[str, str]:
    """The colour of every survival score by its role: the endpoint scores by position, a
    fused score in the fused colour (the same names get the same colours in every figure)."""
    colours: dict[str, str] = {}
    endpoint_scores = [name for name, block in risk.scores.items() if block.fusion is None]
    for k, name in enumerate(endpoint_scores):
        colours[name] = ENDPOINT_SCORE_COLOURS[k % len(ENDPOINT_SCORE_COLOURS)]
    colours.update({name: FUSED_SCORE_COLOUR for name, block in risk.scores.items() if block.fusion is not None})
    return colours


def column_label(column: str) -> str:
    """A clinical column name for display: "slice_thickness_mm" -> "Slice thickness (mm)"."""
    words = column.split("_")
    unit = words.pop() if len(words) > 1 and words[-1].lower() in UNIT_WORDS else None
    text = " ".join(words).capitalize()
    return f"{text} ({unit})" if unit else text


def level_label(level: Any) -> str:
    """A subgroup level for display, with typographic comparison signs."""
    return str(level).replace("<=", "\u2264").replace(">=", "\u2265")


def covariate_label(risk: RiskScores | None, name: str) -> str:
    """A Cox covariate for display: a CNN score by its label, other columns via ``column_label``."""
    return score_label(risk, name) if risk is not None and name in risk.scores else column_label(name)


def cohort_label(cohort: str) -> str:
    """A cohort for display ("training" -> "Training cohort"; other names as recorded)."""
    return COHORT_LABELS.get(cohort, cohort)
