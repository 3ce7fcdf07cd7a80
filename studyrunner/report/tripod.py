"""The TRIPOD+AI checklist: its 52 sub-items, the place in the report answering each, and the
view the checklist page is rendered from.

Each item has a tag key (``Item.key``); the templates print ``m.tripod(tripod_tags.<key>)`` (a
small grey margin mark with the anchor ``tripod-<item>``) at the element that answers it, and the
checklist's page column is ``target-counter`` of that anchor. An item whose answer only the
authors can give names a field of the protocol's ``report`` section (``Item.field``); when that
field is empty the place shows "To be completed by the authors" and the checklist counts it.

Collins GS, Moons KGM, Dhiman P, et al. "TRIPOD+AI statement: updated guidance for reporting
clinical prediction models that use regression or machine learning methods", BMJ
2024;385:e078378.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Item:
    """One TRIPOD+AI sub-item and where the report answers it: ``key`` names its tag (the
    templates place ``m.tripod(tripod_tags.<key>)`` at the element that answers it; templates hold
    no digits, so they name items by key), ``section`` the report section holding that element
    and ``field`` the protocol's ``report`` field holding the authors' words (None: the run's
    data or settings answer it)."""

    item: str
    topic: str
    key: str
    section: str
    field: str | None = None


ITEMS: tuple[Item, ...] = (
    Item("1", "Title", "title", "title"),
    Item("2", "Abstract", "abstract", "summary"),
    Item("3a", "Healthcare context and rationale", "context", "introduction", "context"),
    Item("3b", "Target population and intended use", "intended_use", "introduction", "intended_use"),
    Item("3c", "Known health inequalities", "inequalities", "introduction", "health_inequalities"),
    Item("4", "Objectives", "objectives", "introduction"),
    Item("5a", "Sources of data", "data_source", "methods-data"),
    Item("5b", "Dates of data collection", "data_dates", "methods-data", "data_collection_dates"),
    Item("6a", "Setting and centres", "setting", "methods-data", "setting"),
    Item("6b", "Eligibility criteria", "eligibility", "methods-participants"),
    Item("6c", "Treatments received", "treatments", "methods-participants", "treatments"),
    Item("7", "Data preparation and quality checks", "data_preparation", "validation"),
    Item("8a", "Outcome definition", "outcome", "methods-outcome"),
    Item("8b", "Outcome assessors", "outcome_assessors", "methods-outcome", "outcome_assessment"),
    Item("8c", "Blinding of outcome assessment", "outcome_blinding", "methods-outcome", "outcome_blinding"),
    Item("9a", "Choice of initial predictors", "predictor_choice", "methods-predictors"),
    Item("9b", "Predictor definition and measurement", "predictor_definition", "methods-predictors"),
    Item("9c", "Predictor assessors and blinding", "predictor_assessors", "methods-predictors",
         "predictor_assessment"),
    Item("10", "Sample size", "sample_size", "methods-sample-size"),
    Item("11", "Missing data", "missing_data", "methods-missing"),
    Item("12a", "Use of the data (partitioning)", "partitioning", "methods-participants"),
    Item("12b", "Handling of predictors", "predictor_handling", "methods-analysis"),
    Item("12c", "Model type, building and internal validation", "model_building", "methods-analysis"),
    Item("12d", "Heterogeneity across clusters", "heterogeneity_methods", "methods-analysis"),
    Item("12e", "Performance measures", "performance_measures", "methods-analysis"),
    Item("12f", "Model updating", "updating_methods", "methods-analysis"),
    Item("12g", "How predictions were calculated for evaluation", "prediction_calculation", "methods-analysis"),
    Item("13", "Class imbalance", "class_imbalance", "methods-analysis"),
    Item("14", "Fairness", "fairness", "methods-analysis"),
    Item("15", "Model output", "model_output", "model"),
    Item("16", "Differences between development and evaluation data", "differences", "differences"),
    Item("17", "Ethical approval", "ethics", "declarations", "ethics"),
    Item("18a", "Funding", "funding", "declarations", "funding"),
    Item("18b", "Conflicts of interest", "conflicts", "declarations", "conflicts"),
    Item("18c", "Protocol", "protocol", "declarations"),
    Item("18d", "Registration", "registration", "declarations", "registration"),
    Item("18e", "Data sharing", "data_sharing", "declarations", "data_availability"),
    Item("18f", "Code sharing and software", "code", "software"),
    Item("19", "Patient and public involvement", "involvement", "declarations", "patient_involvement"),
    Item("20a", "Participant flow", "flow", "flow"),
    Item("20b", "Participant characteristics", "characteristics", "table-one"),
    Item("20c", "Development vs evaluation data", "case_mix", "differences"),
    Item("21", "Number of participants and outcome events", "events", "flow"),
    Item("22", "Full model specification", "specification", "specification"),
    Item("23a", "Model performance with confidence intervals", "performance", "discrimination"),
    Item("23b", "Heterogeneity of performance", "heterogeneity", "subgroups"),
    Item("24", "Model updating results", "updating", "specification"),
    Item("25", "Interpretation", "interpretation", "discussion", "interpretation"),
    Item("26", "Limitations", "limitations", "discussion", "limitations"),
    Item("27a", "Handling of poor-quality or unavailable input", "poor_input", "discussion"),
    Item("27b", "User interaction and expertise", "user_interaction", "discussion", "user_interaction"),
    Item("27c", "Applicability and future research", "applicability", "discussion", "applicability"),
)

# (item, topic, tag key): the items in the statement's order.
TRIPOD_AI_ITEMS: tuple[tuple[str, str, str], ...] = tuple((i.item, i.topic, i.key) for i in ITEMS)

# Tags of the CNN sections of a study with CNN scores (nsclc_ici): key -> (items, section). Each
# is a second place answering those items, listed in the checklist after the first.
DEEP_TAGS: dict[str, tuple[tuple[str, ...], str]] = {
    "deep_methods": (("9b", "12b", "12c", "12e", "12g"), "methods-deep"),
    "deep_scores": (("15", "22", "23a"), "deep-scores"),
    "deep_clinical": (("23b",), "deep-clinical"),
}
TAG_PREFIX = "TRIPOD+AI"
AUTHORS_TODO = "To be completed by the authors"

SECTION_TITLES = {
    "title": "Title page",
    "summary": "Summary",
    "introduction": "Introduction",
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
    "differences": "Development and evaluation data",
    "subgroups": "Performance in subgroups",
    "specification": "Full model specification",
    "discussion": "Discussion",
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
    "differences": "tripod",
    "subgroups": "tripod",
    "specification": "tripod",
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


def tag_anchor(item: str, key: str | None = None) -> str:
    """The id of the tag answering ``item``: ``tripod-<item>``, or ``tripod-<item>-<key>`` for a
    second place (a CNN section)."""
    return f"tripod-{item}" + (f"-{key.replace('_', '-')}" if key else "")


def tripod_tags() -> dict[str, dict[str, Any]]:
    """Every tag the templates can place, by key: {"ids": [anchors], "items": ["15"], "prefix":
    "TRIPOD+AI", "label": "TRIPOD+AI 15", "topic": the item's topic}."""
    topics = {i.item: i.topic for i in ITEMS}
    places = {i.key: ((i.item,), None) for i in ITEMS} | {key: (items, key) for key, (items, _) in DEEP_TAGS.items()}
    return {key: {"ids": [tag_anchor(item, second) for item in items], "items": list(items), "prefix": TAG_PREFIX,
                  "label": f"{TAG_PREFIX} {', '.join(items)}", "topic": "; ".join(topics[item] for item in items)}
            for key, (items, second) in places.items()}


def todo_reason(item: Item, results: Results) -> str | None:
    """Why the authors must still complete ``item`` (None: the report answers it): their words
    are missing from the protocol's ``report`` section, or the protocol names no groups for the
    fairness (14), cluster heterogeneity (12d: a centre or clinical subgroup) or subgroup
    performance (23b: any group) analyses."""
    meta = results.report_meta
    if item.field is not None:
        value = getattr(meta, item.field, None) if meta is not None else None
        return None if value and str(value).strip() else f"report.{item.field} is not given in the protocol"
    tripod = results.tripod if not isinstance(results.tripod, NotRun) else None
    subgroups = tripod.subgroups if tripod is not None else {}
    if item.item == "14" and not subgroups.get("fairness"):
        return "the protocol names no fairness groups (statistics.subgroups.fairness)"
    if item.item == "12d" and not (subgroups.get("centre") or subgroups.get("heterogeneity")):
        return "the protocol names no centre or clinical subgroup (statistics.subgroups)"
    if item.item == "23b" and not any(subgroups.get(kind) for kind in ("centre", "heterogeneity", "fairness")):
        return "the protocol names no centre or subgroup (statistics.subgroups)"
    return None


def deep_tags_placed(results: Results) -> set[str]:
    """The CNN tags the report prints: its CNN sections need ``deep``; the clinical-factors
    section also needs the clinical Cox models of the risk scores."""
    if not results.deep:
        return set()
    risk = results.risk_scores
    return {key for key in DEEP_TAGS if key != "deep_clinical" or (risk is not None and risk.clinical_cox)}


def checklist_view(results: Results) -> list[dict[str, Any]]:
    """The TRIPOD+AI items with the place in the report that answers each.

    Keys per row: ``item``, ``topic``, ``anchor`` (the id of the item's tag, whose page the
    checklist prints), ``section`` (title of the section holding it), ``todo`` (why the authors
    must complete it, None when answered), ``not_run`` (True when that section's results.json
    record is missing) and ``also`` (further places, [{"anchor", "section"}]: the CNN sections of
    an nsclc_ici run).
    """
    placed = deep_tags_placed(results)
    rows = []
    for item in ITEMS:
        also = [{"anchor": tag_anchor(item.item, key), "section": SECTION_TITLES[section]}
                for key, (items, section) in DEEP_TAGS.items() if key in placed and item.item in items]
        rows.append({"item": item.item, "topic": item.topic, "anchor": tag_anchor(item.item),
                     "section": SECTION_TITLES[item.section], "todo": todo_reason(item, results),
                     "not_run": (item.section in SECTION_SOURCES
                                 and not_run_reason(results, SECTION_SOURCES[item.section]) is not None),
                     "also": also})
    return rows


def tripod_context(results: Results) -> dict[str, Any]:
    """The template variables of the tags and the checklist: ``tripod_tags``, ``checklist``,
    ``checklist_todo`` (the number of items the authors must complete) and ``authors_todo``."""
    rows = checklist_view(results)
    return {"tripod_tags": tripod_tags(), "checklist": rows, "checklist_todo": sum(bool(r["todo"]) for r in rows),
            "authors_todo": AUTHORS_TODO, "tripod": None if not_run_reason(results, "tripod") else results.tripod,
            "tripod_not_run": not_run_reason(results, "tripod")}
