"""Display names shared by the seed-000 figures: CNN scores, clinical columns and their
subgroup levels, Cox covariates and cohorts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COHORT_LABELS = {"training": "Training cohort", "test": "Test cohort"}
UNIT_WORDS = ("mm", "cm", "ml", "hu", "days", "months", "years")


def score_label(results: Mapping[str, Any], name: str) -> str:
    """Display name of a CNN score ("OSRS", "PRS", ...) as recorded in risk_scores."""
    section = results.get("risk_scores") or {}
    block = (section.get("scores") or {}).get(name) or (section.get("response") or {}).get(name) or {}
    return block.get("label") or name.upper()


def column_label(column: str) -> str:
    """A clinical column name for display: "slice_thickness_mm" -> "Slice thickness (mm)"."""
    words = column.split("_")
    unit = words.pop() if len(words) > 1 and words[-1].lower() in UNIT_WORDS else None
    text = " ".join(words).capitalize()
    return f"{text} ({unit})" if unit else text


def level_label(level: Any) -> str:
    """A subgroup level for display, with typographic comparison signs."""
    return str(level).replace("<=", "\u2264").replace(">=", "\u2265")


def covariate_label(results: Mapping[str, Any], name: str) -> str:
    """A Cox covariate for display: a CNN score by its label, other columns via ``column_label``."""
    scores = (results.get("risk_scores") or {}).get("scores") or {}
    return score_label(results, name) if name in scores else column_label(name)


def cohort_label(cohort: str) -> str:
    """A cohort for display ("training" -> "Training cohort"; other names as recorded)."""
    return COHORT_LABELS.get(cohort, cohort)
