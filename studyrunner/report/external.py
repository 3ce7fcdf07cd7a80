"""Render the TRIPOD+AI report of an external validation (``studyrunner external``) from its
results.json alone: which frozen models (their hashes) were applied unchanged to which
cohort, the participant flow, the case mix beside the development cohort's, per survival score
(the radiomics score; the CNN scores OSRS, PFSRS, MOSRS) discrimination, calibration and the
frozen risk groups, the response scores' (PRS, PDS) AUC and frozen Youden cut-offs, and the
checklist of the validation items (Collins GS et al. (2024), BMJ 385:e078378; TRIPOD type 4).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from studyrunner.errors import InputError
from studyrunner.external.case_mix import IMBALANCE
from studyrunner.report.calibration_view import first_bootstrap
from studyrunner.report.citations import METHOD_REFERENCES
from studyrunner.report.figures.calibration import draw_calibration
from studyrunner.report.figures.flow import draw_flow_diagram
from studyrunner.report.figures.km import draw_km
from studyrunner.report.formatting import ci_label, ci_words, fmt_int, fmt_num
from studyrunner.report.render import STYLESHEET, reports_dir, template_environment
from studyrunner.report.tripod import TRIPOD_AI_ITEMS, TRIPOD_AI_REFERENCE, TRIPOD_TYPES, tripod_tags
from studyrunner.report.views import flow_view, validation_view
from studyrunner.results.external import External, ExternalResults, ModelValidation
from studyrunner.results.models import CalibrationRow, CalibrationSlope

MAIN_TEMPLATE = "external_report.html.j2"
CASE_MIX_REFERENCE = "Debray TPA et al., J Clin Epidemiol 2015;68:279-289"

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
    "response": "Response scores", "software": "Software and reproducibility", "declarations": "Declarations",
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
    updated = any(model.updated for model in results.external.models.values())
    rows: list[dict[str, Any]] = []
    for item, topic, _ in TRIPOD_AI_ITEMS:
        anchor = EXTERNAL_SECTIONS.get(item) or ("calibration" if updated and item in ("12f", "24") else None)
        rows.append({"item": item, "topic": topic, "anchor": anchor, "not_run": False, "also": [], "todo": None,
                     "section": SECTION_TITLES[anchor] if anchor else None})
    return rows


def calibration_rows(model: ModelValidation) -> list[CalibrationRow]:
    """The calibration groups of every time as the grouped calibration figure draws them."""
    return [CalibrationRow(time=at.t, group=g.group, n=g.n, n_events=g.n_events, predicted=g.predicted,
                           observed=g.observed, lower=g.lower, upper=g.upper)
            for at in model.calibration.at.values() for g in at.groups]


def model_endpoint(external: External, name: str, model: ModelValidation) -> dict[str, str]:
    """The endpoint (name, label, time, event, unit) a validated score predicts, as its bundle records it."""
    cnn = external.cnn_bundle
    if model.source == "cnn" and cnn is not None and name in cnn.scores:
        return cnn.scores[name].endpoint
    if external.bundle is not None:
        return external.bundle.endpoint
    return {"name": model.endpoint or name, "unit": external.time_unit}


def development_c(external: External, model: ModelValidation) -> list[dict[str, Any]]:
    """The score's Harrell's C in each development cohort (from its bundle)."""
    if model.source == "cnn":
        return [{"cohort": cohort, "n": c.n, "estimate": c.estimate, "lower": c.lower, "upper": c.upper}
                for cohort, c in model.development_performance.items()]
    performance = external.bundle.development.get("performance", {}) if external.bundle is not None else {}
    return [{"cohort": cohort, "n": p.get("n"), "estimate": p.get("c_index"), "lower": p.get("c_lower"),
             "upper": p.get("c_upper")} for cohort, p in performance.items()]


MIN_EVENTS_VALIDATION = 100  # Collins GS, Ogundimu EO, Altman DG (2016), Stat Med 35:214-226
MIN_EVENTS_GROUP = 5
MIN_EVENTS_AUC = 20


def slope_reading(slope: CalibrationSlope) -> str:
    """What the calibration slope says, from its estimate and its confidence interval."""
    if slope.slope is None or slope.lower is None or slope.upper is None:
        return "the calibration slope could not be estimated"
    if slope.lower <= 0 <= slope.upper:
        return ("its interval includes zero: on this cohort the score carries no clear prognostic information, "
                "and its calibration cannot be judged")
    if slope.lower <= 1 <= slope.upper:
        return ("its interval includes one: no clear evidence that the predictions are too extreme or too "
                "moderate for this cohort")
    if slope.upper < 1:
        return "below one with its whole interval: the frozen model's predictions are too extreme for this cohort"
    return "above one with its whole interval: the frozen model's predictions are too moderate for this cohort"


def spread_reading(development_sd: float | None, external_sd: float | None) -> str:
    """What the spread of the score in both cohorts implies for discrimination (Debray et al. 2015)."""
    if development_sd is None or external_sd is None:
        return "the spread of the score could not be compared"
    if external_sd < development_sd:
        return (f"the score spreads less here (SD {fmt_num(external_sd, 3)} against {fmt_num(development_sd, 3)}): "
                "a more homogeneous cohort, for which a lower C is expected even from a well-transported model")
    return (f"the score spreads more here (SD {fmt_num(external_sd, 3)} against {fmt_num(development_sd, 3)}): "
            "a more heterogeneous cohort, for which a higher C is expected")


def model_flags(model: ModelValidation, time_unit: str) -> list[str]:
    """What a reviewer must not read as a finding: too few events overall, in a calibration
    group or for an AUC at a time; a prediction no better than the Kaplan-Meier risk; risk
    groups in the wrong order."""
    flags = []
    if model.n_events < MIN_EVENTS_VALIDATION:
        flags.append(f"{fmt_int(model.n_events)} events, fewer than the {MIN_EVENTS_VALIDATION} recommended for an "
                     "external validation (Collins et al., Stat Med 2016): every interval here is wide")
    for key, at in model.calibration.at.items():
        few = [g.group for g in at.groups if g.n_events is not None and g.n_events < MIN_EVENTS_GROUP]
        if few:
            flags.append(f"At {key} {time_unit}, {fmt_int(len(few))} of the {fmt_int(len(at.groups))} calibration "
                         f"groups have fewer than {MIN_EVENTS_GROUP} events: their observed risks are imprecise")
        if at.n_events < MIN_EVENTS_AUC:
            flags.append(f"The AUC at {key} {time_unit} rests on {fmt_int(at.n_events)} events")
        if at.brier.ipa is not None and at.brier.ipa <= 0:
            flags.append(f"At {key} {time_unit} the model predicts no better than the Kaplan-Meier risk "
                         f"(index of prediction accuracy {fmt_num(at.brier.ipa, 3)})")
    if model.risk_groups.hr is not None and model.risk_groups.hr < 1:
        flags.append("The high-risk group fares better than the low-risk group: the frozen cut-off does not "
                     "separate this cohort in the intended direction")
    return flags


def model_views(external: External) -> dict[str, dict[str, Any]]:
    """Per validated score what its section prints besides the statistics: its label, its
    endpoint's label and unit, the development C-indices, and the readings and flags a
    reviewer needs (slope, spread, too few events, no better than Kaplan-Meier)."""
    views = {}
    for name, model in external.models.items():
        endpoint = model_endpoint(external, name, model)
        development_sd = (model.lp_development.sd if model.lp_development is not None
                          else external.case_mix.lp_sd_development if external.case_mix is not None else None)
        views[name] = {"label": model.label or name.replace("_", " ").capitalize(),
                       "endpoint_label": endpoint.get("label") or endpoint.get("name"), "unit": endpoint.get("unit"),
                       "development": development_c(external, model),
                       "slope_reading": slope_reading(model.calibration.slope),
                       "spread_reading": spread_reading(development_sd, model.lp.sd),
                       "flags": model_flags(model, external.time_unit)}
    return views


def draw_external_figures(results: ExternalResults, figures_dir: Path) -> dict[str, Path]:
    """Flow diagram, and per frozen score its risk groups' Kaplan-Meier curves and calibration plot."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Path] = {}
    if results.flow is not None:
        figures["flow"] = draw_flow_diagram(results.flow, figures_dir / "flow.png")
    for name, model in results.external.models.items():
        endpoint = model_endpoint(results.external, name, model)
        model_unit = endpoint["unit"]
        figures[f"km_{name}"] = draw_km(model.risk_groups, endpoint.get("label") or endpoint["name"],
                                        figures_dir / f"km_{name}.png", cohort_label="External cohort",
                                        time_unit=model_unit)
        rows = calibration_rows(model)
        if rows:
            curves = {at.t: (at.smoothed.curve.predicted, at.smoothed.curve.observed)
                      for at in model.calibration.at.values() if at.smoothed is not None}
            figures[f"calibration_{name}"] = draw_calibration(rows, model_unit, figures_dir / f"calibration_{name}.png",
                                                              curves)
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
        "model_views": model_views(results.external), "case_mix_reference": CASE_MIX_REFERENCE,
        "primary": results.endpoints.get(results.primary_endpoint or ""),
        "flow": results.flow, "flow_view": flow_view(results.flow) if results.flow else None,
        "validation": results.validation,
        "validation_view": validation_view(results.validation) if results.validation else None,
        "software": results.software, "timings": results.timings,
        "not_run": {"flow": "no flow recorded", "validation": "no validation recorded",
                    "software": "not recorded", "timings": "not recorded"},
        "figures": {key: path.relative_to(report_dir).as_posix() for key, path in figures.items()},
        "tripod_type_text": TRIPOD_TYPES.get(str(study.tripod_type)), "tripod_reference": TRIPOD_AI_REFERENCE,
        "checklist": checklist(results), "checklist_todo": None,
        "tripod_tags": tripod_tags(), "ci": ci_label(), "ci_words": ci_words(), "refs": METHOD_REFERENCES,
        "imbalance": IMBALANCE, "e90_label": "E90",
        "calibration_bootstrap": first_bootstrap(model.calibration for model in results.external.models.values()),
    }
    html = environment.get_template(MAIN_TEMPLATE).render(**context)
    (report_dir / "report.html").write_text(html, encoding="utf-8")
    pdf_path = run_dir / "report.pdf"
    HTML(string=html, base_url=str(report_dir)).write_pdf(str(pdf_path))
    return pdf_path
