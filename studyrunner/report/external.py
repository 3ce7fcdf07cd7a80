"""Render the TRIPOD+AI report of an external validation (``studyrunner external``) from its
results.json alone: which frozen model (its hash) was applied unchanged to which cohort, the
participant flow, the case mix beside the development cohort's, discrimination,
calibration, the frozen risk groups, and the checklist of the validation items (Collins GS
et al. (2024), BMJ 385:e078378; TRIPOD type 4).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from studyrunner.errors import InputError
from studyrunner.report.citations import METHOD_REFERENCES
from studyrunner.report.figures.calibration import draw_calibration
from studyrunner.report.figures.flow import draw_flow_diagram
from studyrunner.report.figures.km import draw_km
from studyrunner.report.formatting import ci_label, ci_words
from studyrunner.report.render import STYLESHEET, reports_dir, template_environment
from studyrunner.report.tripod import TRIPOD_AI_ITEMS, TRIPOD_AI_REFERENCE, TRIPOD_TYPES
from studyrunner.report.views import flow_view, validation_view
from studyrunner.results.external import ExternalResults, ModelValidation
from studyrunner.results.models import CalibrationRow

MAIN_TEMPLATE = "external_report.html.j2"

# The report section answering each TRIPOD+AI item in a validation study (None: the authors').
EXTERNAL_SECTIONS = {
    "1": "title", "2": "summary", "4": "summary", "5a": "methods-data", "6b": "methods-participants",
    "7": "validation", "8a": "methods-outcome", "9a": "methods-model", "9b": "methods-model",
    "12a": "methods-analysis", "12e": "methods-analysis", "12g": "methods-model", "15": "methods-model",
    "16": "case-mix", "18c": "title", "18f": "software", "17": "declarations", "18a": "declarations",
    "18b": "declarations", "18d": "declarations", "18e": "declarations", "20a": "flow", "20b": "case-mix",
    "20c": "case-mix", "21": "discrimination", "22": "methods-model", "23a": "discrimination",
    "27a": "validation",
}
SECTION_TITLES = {
    "title": "Title page", "summary": "Summary", "methods-data": "Methods: source of data",
    "methods-participants": "Methods: participants", "methods-outcome": "Methods: outcome",
    "methods-model": "Methods: the frozen model", "methods-analysis": "Methods: statistical analysis",
    "flow": "Participant flow", "validation": "Clinical-table validation", "case-mix": "Case mix",
    "discrimination": "Discrimination", "calibration": "Calibration", "risk-groups": "Risk groups",
    "software": "Software and reproducibility", "declarations": "Declarations",
}


def load_external_results(path: Path) -> ExternalResults:
    """Read and validate an external validation's results.json (errors name the file and key)."""
    if not path.is_file():
        raise InputError(f"{path}: results file not found (is this a finished external-validation folder?)")
    try:
        return ExternalResults.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValidationError) as error:
        raise InputError(f"{path}: not an external-validation results.json: {error}") from error


def checklist(results: ExternalResults) -> list[dict[str, Any]]:
    """The TRIPOD+AI items with the section of this report that answers each."""
    rows: list[dict[str, Any]] = []
    for item, topic, _ in TRIPOD_AI_ITEMS:
        anchor = EXTERNAL_SECTIONS.get(item)
        rows.append({"item": item, "topic": topic, "anchor": anchor, "not_run": False, "also": [],
                     "section": SECTION_TITLES[anchor] if anchor else None})
    return rows


def calibration_rows(model: ModelValidation) -> list[CalibrationRow]:
    """The calibration groups of every time as the grouped calibration figure draws them."""
    return [CalibrationRow(time=at.t, group=g.group, n=g.n, n_events=g.n_events, predicted=g.predicted,
                           observed=g.observed, lower=g.lower, upper=g.upper)
            for at in model.calibration.at.values() for g in at.groups]


def draw_external_figures(results: ExternalResults, figures_dir: Path) -> dict[str, Path]:
    """Flow diagram, and per frozen score its risk groups' Kaplan-Meier curves and calibration plot."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Path] = {}
    if results.flow is not None:
        figures["flow"] = draw_flow_diagram(results.flow, figures_dir / "flow.png")
    model_unit = results.external.bundle.endpoint["unit"]
    label = results.external.bundle.endpoint.get("label") or results.external.bundle.endpoint["name"]
    for name, model in results.external.models.items():
        figures[f"km_{name}"] = draw_km(model.risk_groups, label, figures_dir / f"km_{name}.png",
                                        cohort_label="External cohort", time_unit=model_unit)
        rows = calibration_rows(model)
        if rows:
            figures[f"calibration_{name}"] = draw_calibration(rows, model_unit, figures_dir / f"calibration_{name}.png")
    return figures


def render_external_report(run_dir: Path) -> Path:
    """Render ``run_dir/results.json`` of an external validation to ``run_dir/report.pdf``."""
    from weasyprint import HTML  # imported here: loading WeasyPrint (Pango) takes about a second

    run_dir = Path(run_dir)
    results = load_external_results(run_dir / "results.json")
    templates_dir = reports_dir() / "templates"
    environment = template_environment(templates_dir, MAIN_TEMPLATE)
    report_dir = run_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    figures = draw_external_figures(results, report_dir / "figures")
    study = results.study
    context = {
        "css": (templates_dir.parent / STYLESHEET).read_text(encoding="utf-8"),
        "study": study, "meta": results.report_meta, "results": results, "external": results.external,
        "primary": results.endpoints.get(results.primary_endpoint or ""),
        "flow": results.flow, "flow_view": flow_view(results.flow) if results.flow else None,
        "validation": results.validation,
        "validation_view": validation_view(results.validation) if results.validation else None,
        "software": results.software, "timings": results.timings,
        "not_run": {"flow": "no flow recorded", "validation": "no validation recorded",
                    "software": "not recorded", "timings": "not recorded"},
        "figures": {key: path.relative_to(report_dir).as_posix() for key, path in figures.items()},
        "tripod_type_text": TRIPOD_TYPES.get(str(study.tripod_type)), "tripod_reference": TRIPOD_AI_REFERENCE,
        "checklist": checklist(results), "ci": ci_label(), "ci_words": ci_words(), "refs": METHOD_REFERENCES,
    }
    html = environment.get_template(MAIN_TEMPLATE).render(**context)
    (report_dir / "report.html").write_text(html, encoding="utf-8")
    pdf_path = run_dir / "report.pdf"
    HTML(string=html, base_url=str(report_dir)).write_pdf(str(pdf_path))
    return pdf_path
