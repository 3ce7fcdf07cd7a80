"""Render a run's TRIPOD+AI report (HTML and PDF) from its results.json alone.

``render_report(run_dir)`` reads ``run_dir/results.json``, draws the figures into
``run_dir/report/figures/``, renders ``reports/templates/report.html.j2`` with Jinja2 into
``run_dir/report/report.html`` and prints it to ``run_dir/report.pdf`` with WeasyPrint.
Nothing else of the run is read, so ``studyrunner report RUN`` can re-render a finished run.

Section order and the checklist follow TRIPOD+AI: Collins GS, Moons KGM, Dhiman P, et al.
"TRIPOD+AI statement: updated guidance for reporting clinical prediction models that use
regression or machine learning methods", BMJ 2024;385:e078378.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from studyrunner.errors import InputError
from studyrunner.paths import repo_folder
from studyrunner.report.figures import draw_figures, stage_label
from studyrunner.report.formatting import FILTERS, ci_label, ci_words

REPORTS_ENV_VAR = "STUDYRUNNER_REPORTS"
MAIN_TEMPLATE = "report.html.j2"
STYLESHEET = "style.css"

TRIPOD_TYPES = {
    "1a": "development only, performance from the development data",
    "1b": "development with validation by resampling (bootstrap or cross-validation)",
    "2a": "development and validation on a random split of the data",
    "2b": "development and validation on a non-random split of the data",
    "3": "development on one data set and validation on separate data",
    "4": "validation of an existing model on separate data",
}

TRIPOD_AI_REFERENCE = "Collins GS, Moons KGM, Dhiman P, et al. BMJ 2024;385:e078378"

# TRIPOD+AI checklist (Collins et al., BMJ 2024): (item, topic, report section anchor or None).
# None: the item needs the authors' words; the automated report cannot answer it.
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

OPTIONAL_SECTIONS = ("flow", "validation", "table_one", "radiomics", "model", "evaluation", "oracle",
                     "software", "timings")
META_FIELDS = ("funding", "ethics", "registration", "data_availability", "conflicts")


def reports_dir() -> Path:
    """The folder holding ``templates/`` and ``style.css``: <repo>/reports or $STUDYRUNNER_REPORTS."""
    return repo_folder("reports", REPORTS_ENV_VAR)


def load_results(path: Path) -> dict[str, Any]:
    """Read results.json; errors name the file (and the line and column of a JSON syntax error)."""
    if not path.is_file():
        raise InputError(f"{path}: results file not found (is this a finished run folder?)")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from error
    if not isinstance(results, dict):
        raise InputError(f"{path}: top level must be a JSON object, found {type(results).__name__}")
    study = results.get("study")
    if not isinstance(study, dict):
        raise InputError(f"{path}: required key 'study' is missing or not an object")
    missing = [key for key in ("name", "synthetic") if key not in study]
    if missing:
        raise InputError(f"{path}: required key(s) {', '.join('study.' + k for k in missing)} missing")
    return results


def not_run_reason(results: Mapping[str, Any], key: str) -> str | None:
    """Why an optional section cannot be shown, or None when results.json has it.

    A stage that was skipped records ``{"not_run": "<reason>"}`` in place of its section; a
    section that is absent or null is reported as not recorded.
    """
    value = results.get(key)
    if isinstance(value, Mapping) and "not_run" in value:
        return str(value["not_run"])
    if not value:
        return f"results.json has no '{key}' record"
    return None


def _section(results: Mapping[str, Any], key: str) -> Any:
    return None if not_run_reason(results, key) else results[key]


# Keys the schema marks optional (or that an older run may lack), with the value used when absent.
SECTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "flow": {"n_with_images": None, "exclusions": [], "partitions": {}, "training_partitions": [],
             "test_partitions": [], "split_method": None},
    "radiomics": {"image_types": [], "feature_classes": [], "settings": {}, "pyradiomics_version": None,
                  "params_file": None},
    "model": {"implementation": {}},
    "software": {"python": None, "platform": None, "packages": {}, "r": None, "r_packages": {},
                 "cran_fallbacks": []},
}


def _section_with_defaults(results: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """A section of results.json with its optional keys filled in, or None when it was not run."""
    record = _section(results, key)
    return None if record is None else {**SECTION_DEFAULTS.get(key, {}), **record}


def flow_view(flow: Mapping[str, Any]) -> dict[str, Any]:
    """Exclusion counts for the flow section.

    Keys: ``n_excluded``; ``n_by_stage`` (a Counter: stage -> n, 0 for stages without exclusions);
    ``by_stage`` (list of {"stage", "label", "n", "reasons": [{"reason", "n"}]});
    ``exclusions`` (records with "stage_label" added); ``training_n`` and ``test_n`` (partition
    sums); ``unaccounted`` (n_clinical − excluded − included; 0 when the counts agree).
    """
    exclusions = list(flow.get("exclusions") or [])
    stages: dict[str, Counter[str]] = {}
    for record in exclusions:
        stages.setdefault(str(record.get("stage")), Counter())[str(record.get("reason"))] += 1
    partitions = flow.get("partitions") or {}
    n_clinical, n_included = flow.get("n_clinical"), flow.get("n_included")
    return {
        "n_excluded": len(exclusions),
        "n_by_stage": Counter({stage: sum(counts.values()) for stage, counts in stages.items()}),
        "by_stage": [{"stage": stage, "label": stage_label(stage), "n": sum(counts.values()),
                      "reasons": [{"reason": r, "n": n} for r, n in counts.most_common()]}
                     for stage, counts in stages.items()],
        "exclusions": [{**record, "stage_label": stage_label(str(record.get("stage")))} for record in exclusions],
        "training_n": sum(int(partitions.get(p, 0)) for p in flow.get("training_partitions") or []),
        "test_n": sum(int(partitions.get(p, 0)) for p in flow.get("test_partitions") or []),
        "unaccounted": (n_clinical - len(exclusions) - n_included
                        if n_clinical is not None and n_included is not None else 0),
    }


def validation_view(validation: Mapping[str, Any]) -> dict[str, Any]:
    """Expectations with a ``status`` of "pass", "fail" (error severity) or "warning", and counts.

    Keys: ``expectations`` (the records with "status" added), ``n_pass``, ``n_fail``, ``n_warning``.
    """
    expectations = []
    for record in validation.get("expectations") or []:
        if record.get("success"):
            status = "pass"
        else:
            status = "warning" if record.get("severity") == "warning" else "fail"
        expectations.append({"column": None, "failing_rows": [], "unexpected_count": None, **record,
                             "status": status})
    counts = Counter(e["status"] for e in expectations)
    return {"expectations": expectations, "n_pass": counts["pass"], "n_fail": counts["fail"],
            "n_warning": counts["warning"]}


def table_one_view(table_one: Mapping[str, Any]) -> dict[str, Any]:
    """Table 1 layout facts.

    Keys: ``wide`` (needs a landscape page: more than five value columns), ``tests`` (one
    {"type", "tests"} line per variable type for the footnote), ``missing`` (per variable with
    missing values in the first group: {"label", "n"}).
    """
    groups = list(table_one.get("groups") or {})
    comparisons = list(table_one.get("comparisons") or [])
    tests: dict[str, set[str]] = {}
    missing = []
    for variable in table_one.get("variables") or []:
        for result in variable.get("tests") or []:
            if result and result.get("test"):
                tests.setdefault(variable["type"], set()).add(result["test"])
        if variable["type"] == "continuous" and groups:
            n_missing = ((variable.get("summary") or {}).get(groups[0]) or {}).get("missing")
            if n_missing:
                missing.append({"label": variable.get("label") or variable["column"], "n": n_missing})
    return {"wide": len(groups) + len(comparisons) > 5,
            "tests": [{"type": t, "tests": ", ".join(sorted(names))} for t, names in sorted(tests.items())],
            "missing": missing}


def sample_size_view(results: Mapping[str, Any]) -> dict[str, Any] | None:
    """Events per candidate predictor and per model term in the training set (Riley et al., BMJ 2020).

    Keys: ``events``, ``n_candidates``, ``n_terms``, ``epp_candidates``, ``epp_terms`` (None when
    the divisor is missing or zero). None when the run has no training evaluation.
    """
    evaluation = _section(results, "evaluation") or {}
    training = evaluation.get("training")
    if not training or training.get("n_events") is None:
        return None
    model = _section(results, "model") or {}
    n_candidates = (model.get("screening") or {}).get("n_candidates")
    n_terms = len(model.get("coefficients") or []) or None
    events = training["n_events"]
    return {"events": events, "n_candidates": n_candidates, "n_terms": n_terms,
            "epp_candidates": events / n_candidates if n_candidates else None,
            "epp_terms": events / n_terms if n_terms else None}


def checklist_view(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The TRIPOD+AI items with the report section where each is reported.

    Keys per row: ``item``, ``topic``, ``anchor`` (None: authors to complete), ``section``
    (its title) and ``not_run`` (True when that section's results.json record is missing).
    """
    return [{"item": item, "topic": topic, "anchor": anchor,
             "section": SECTION_TITLES[anchor] if anchor else None,
             "not_run": anchor in SECTION_SOURCES and not_run_reason(results, SECTION_SOURCES[anchor]) is not None}
            for item, topic, anchor in TRIPOD_AI_ITEMS]


def build_context(results: Mapping[str, Any], figures: Mapping[str, str], css: str) -> dict[str, Any]:
    """Everything the templates see. Optional keys are filled with None so that the templates
    run under StrictUndefined (a typo in a template fails loudly instead of printing nothing)."""
    study = {key: None for key in ("description", "seed", "tripod_type", "protocol_file", "protocol_sha256",
                                   "run_id", "created_utc", "studyrunner_version")} | dict(results["study"])
    meta = ({"title": study["name"], "authors": [], "affiliations": [], "keywords": []}
            | {key: None for key in META_FIELDS} | dict(results.get("report_meta") or {}))
    endpoints = results.get("endpoints") or {}
    primary_key = results.get("primary_endpoint")
    evaluation = _section(results, "evaluation") or {}
    evaluation = {name: {"hr_reason": None, "logrank_chisq": None, "cohort_label": name, **ev}
                  for name, ev in evaluation.items() if ev}
    model = _section_with_defaults(results, "model")
    flow = _section_with_defaults(results, "flow")
    validation = _section(results, "validation")
    table_one = _section(results, "table_one")
    return {
        "css": css,
        "study": study,
        "tripod_type_text": TRIPOD_TYPES.get(str(study["tripod_type"]).lower()),
        "meta": meta,
        "primary": endpoints.get(primary_key) if primary_key else None,
        "primary_key": primary_key,
        "secondary": {k: v for k, v in endpoints.items() if k != primary_key},
        "flow": flow,
        "flow_view": flow_view(flow) if flow else None,
        "validation": validation,
        "validation_view": validation_view(validation) if validation else None,
        "table_one": table_one,
        "table_one_view": table_one_view(table_one) if table_one else None,
        "radiomics": _section_with_defaults(results, "radiomics"),
        "model": model,
        "evaluation": evaluation,
        "oracle": _section(results, "oracle"),
        "software": _section_with_defaults(results, "software"),
        "timings": _section(results, "timings"),
        "sample_size": sample_size_view(results),
        "not_run": {key: not_run_reason(results, key) for key in OPTIONAL_SECTIONS},
        "figures": dict(figures),
        "km_cohorts": [name for name in evaluation if f"km_{name}" in figures],
        "checklist": checklist_view(results),
        "tripod_reference": TRIPOD_AI_REFERENCE,
        "ci": ci_label(),
        "ci_words": ci_words(),
        "section_titles": SECTION_TITLES,
    }


def template_environment(templates_dir: Path) -> Environment:
    """Jinja2 environment over ``templates_dir`` with the formatting filters registered."""
    if not (templates_dir / MAIN_TEMPLATE).is_file():
        raise InputError(f"{templates_dir}: report template {MAIN_TEMPLATE} not found "
                         f"(set {REPORTS_ENV_VAR} to the folder holding templates/ and {STYLESHEET})")
    environment = Environment(loader=FileSystemLoader(str(templates_dir)), autoescape=select_autoescape(["j2", "html"]),
                              undefined=StrictUndefined)
    environment.filters.update(FILTERS)
    return environment


def render_report(run_dir: Path, templates_dir: Path | None = None) -> Path:
    """Render ``run_dir/results.json`` to ``run_dir/report/report.html`` and ``run_dir/report.pdf``.

    ``templates_dir`` defaults to ``<reports>/templates`` where <reports> is <repo>/reports or
    $STUDYRUNNER_REPORTS; the stylesheet is ``style.css`` in the folder above the templates.
    Returns the path of the PDF.
    """
    from weasyprint import HTML  # imported here: loading WeasyPrint (Pango) takes about a second

    run_dir = Path(run_dir)
    results = load_results(run_dir / "results.json")
    templates_dir = Path(templates_dir) if templates_dir else reports_dir() / "templates"
    environment = template_environment(templates_dir)
    css_path = templates_dir.parent / STYLESHEET
    if not css_path.is_file():
        raise InputError(f"{css_path}: report stylesheet not found")

    report_dir = run_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    figures = draw_figures(results, report_dir / "figures")
    relative = {key: path.relative_to(report_dir).as_posix() for key, path in figures.items()}
    context = build_context(results, relative, css_path.read_text(encoding="utf-8"))
    html = environment.get_template(MAIN_TEMPLATE).render(**context)
    html_path = report_dir / "report.html"
    html_path.write_text(html, encoding="utf-8")
    pdf_path = run_dir / "report.pdf"
    HTML(string=html, base_url=str(report_dir)).write_pdf(str(pdf_path))
    return pdf_path
