"""The TRIPOD+AI checklist: its items, the report section answering each, and the view the
checklist page is rendered from.

Collins GS, Moons KGM, Dhiman P, et al. "TRIPOD+AI statement: updated guidance for reporting
clinical prediction models that use regression or machine learning methods", BMJ
2024;385:e078378.
"""

from __future__ import annotations

from typing import Any

from studyrunner.results.models import NotRun, Results

TRIPOD_AI_REFERENCE = "Collins GS, Moons KGM, Dhiman P, et al. BMJ 2024;385:e078378"

TRIPOD_TYPES = {
    "1a": "development only, performance from the development data",
    "1b": "development with validation by resampling (bootstrap or cross-validation)",
    "2a": "development and validation on a random split of the data",
    "2b": "development and validation on a non-random split of the data",
    "3": "development on one data set and validation on separate data",
    "4": "validation of an existing model on separate data",
}

# (item, topic, report section anchor or None). None: the item needs the authors' words.
TRIPOD_AI_ITEMS: tuple[tuple[str, str, str | None], ...] = (
    ("1", "Title", "title"),
    ("2", "Abstract", "summary"),
    ("3a", "Healthcare context and rationale", None),
    ("3b", "Target population and intended use", None),
    ("3c", "Known health inequalities", None),
    ("4", "Objectives", "summary"),
    ("5a", "Sources of data", "methods-data"),
    ("5b", "Dates of data collection", None),
    ("6a", "Setting and centres", None),
    ("6b", "Eligibility criteria", "methods-participants"),
    ("6c", "Treatments received", None),
    ("7", "Data preparation and quality checks", "validation"),
    ("8a", "Outcome definition", "methods-outcome"),
    ("8b", "Outcome assessors", None),
    ("8c", "Blinding of outcome assessment", None),
    ("9a", "Choice of initial predictors", "methods-predictors"),
    ("9b", "Predictor definition and measurement", "methods-predictors"),
    ("9c", "Predictor assessors and blinding", None),
    ("10", "Sample size", "methods-sample-size"),
    ("11", "Missing data", "methods-missing"),
    ("12a", "Use of the data (partitioning)", "methods-analysis"),
    ("12b", "Handling of predictors", "methods-analysis"),
    ("12c", "Model type, building and internal validation", "methods-analysis"),
    ("12d", "Heterogeneity across clusters", None),
    ("12e", "Performance measures", "methods-analysis"),
    ("12f", "Model updating", None),
    ("12g", "How predictions were calculated for evaluation", "methods-analysis"),
    ("13", "Class imbalance", None),
    ("14", "Fairness", None),
    ("15", "Model output", "model"),
    ("16", "Differences between development and evaluation data", "table-one"),
    ("17", "Ethical approval", "declarations"),
    ("18a", "Funding", "declarations"),
    ("18b", "Conflicts of interest", "declarations"),
    ("18c", "Protocol", "title"),
    ("18d", "Registration", "declarations"),
    ("18e", "Data sharing", "declarations"),
    ("18f", "Code sharing and software", "software"),
    ("19", "Patient and public involvement", None),
    ("20a", "Participant flow", "flow"),
    ("20b", "Participant characteristics", "table-one"),
    ("20c", "Development vs evaluation data", "table-one"),
    ("21", "Number of participants and outcome events", "discrimination"),
    ("22", "Full model specification", "model"),
    ("23a", "Model performance with confidence intervals", "discrimination"),
    ("23b", "Heterogeneity of performance", None),
    ("24", "Model updating results", None),
    ("25", "Interpretation", None),
    ("26", "Limitations", None),
    ("27a", "Handling of poor-quality or unavailable input", "validation"),
    ("27b", "User interaction and expertise", None),
    ("27c", "Applicability and future research", None),
)

SECTION_TITLES = {
    "title": "Title page",
    "summary": "Summary",
    "methods-data": "Methods: source of data",
    "methods-participants": "Methods: participants",
    "methods-outcome": "Methods: outcome",
    "methods-predictors": "Methods: predictors",
    "methods-sample-size": "Methods: sample size",
    "methods-missing": "Methods: missing data",
    "methods-analysis": "Methods: statistical analysis",
    "flow": "Participant flow",
    "validation": "Clinical-table validation",
    "table-one": "Participant characteristics",
    "model": "Model",
    "stratification": "Risk stratification",
    "discrimination": "Discrimination",
    "software": "Software and reproducibility",
    "reproducibility": "Feature reproducibility",
    "selection": "Feature selection",
    "calibration": "Calibration",
    "decision-curves": "Decision curves",
    "cross-validation": "Internal validation: cross-validation",
    "methods-deep": "Methods: deep-learning risk scores",
    "deep-scores": "Deep-learning risk scores",
    "deep-clinical": "Risk score with clinical factors",
    "deep-response": "Response scores: PRS and PDS",
    "deep-explanations": "Explanations: Grad-CAM maps",
    "declarations": "Declarations",
    "checklist": "TRIPOD+AI checklist",
}

# The results.json record each report section is drawn from (for marking checklist rows "not run").
SECTION_SOURCES = {
    "methods-participants": "flow",
    "methods-predictors": "radiomics",
    "methods-analysis": "model",
    "flow": "flow",
    "validation": "validation",
    "table-one": "table_one",
    "model": "model",
    "discrimination": "evaluation",
    "software": "software",
}

# Where a study with CNN scores (nsclc_ici) also answers a TRIPOD+AI item.
DEEP_CHECKLIST_SECTIONS = {
    "9b": "methods-deep", "12b": "methods-deep", "12c": "methods-deep", "12e": "methods-deep",
    "12g": "methods-deep", "15": "deep-scores", "22": "deep-scores", "23a": "deep-scores",
    "23b": "deep-clinical",
}


def not_run_reason(results: Results, key: str) -> str | None:
    """Why an optional section of results.json cannot be shown, or None when it is there.

    A stage that was skipped records ``{"not_run": "<reason>"}`` in place of its section; a
    section that is absent, null or empty is reported as not recorded.
    """
    value = getattr(results, key)
    if isinstance(value, NotRun):
        return value.not_run
    if not value:
        return f"results.json has no '{key}' record"
    return None


def checklist_view(results: Results) -> list[dict[str, Any]]:
    """The TRIPOD+AI items with the report section where each is reported.

    Keys per row: ``item``, ``topic``, ``anchor`` (None: authors to complete), ``section``
    (its title), ``not_run`` (True when that section's results.json record is missing) and
    ``also`` (further sections, [{"anchor", "section"}]: the CNN sections of an nsclc_ici run).
    """
    deep = bool(results.deep)
    rows = []
    for item, topic, anchor in TRIPOD_AI_ITEMS:
        extra = DEEP_CHECKLIST_SECTIONS.get(item) if deep else None
        if anchor is None and extra is not None:
            anchor, extra = extra, None
        rows.append({"item": item, "topic": topic, "anchor": anchor,
                     "section": SECTION_TITLES[anchor] if anchor else None,
                     "not_run": (anchor in SECTION_SOURCES
                                 and not_run_reason(results, SECTION_SOURCES[anchor]) is not None),
                     "also": [{"anchor": extra, "section": SECTION_TITLES[extra]}] if extra else []})
    return rows
