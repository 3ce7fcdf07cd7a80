"""Render a run's TRIPOD+AI report (HTML and PDF) from its results.json alone.

``render_report(run_dir)`` reads and validates ``run_dir/results.json``, draws the figures
into ``run_dir/report/figures/``, renders ``reports/templates/report.html.j2`` with Jinja2
into ``run_dir/report/report.html`` and prints it to ``run_dir/report.pdf`` with WeasyPrint.
Nothing else of the run is read, so ``studyrunner report RUN`` can re-render a finished run.

Section order and the checklist follow TRIPOD+AI (``tripod.py``); what each section shows is
shaped in ``views.py``. A radiomics-signature study (escc_ici_chemo: reproducibility filter,
six learners, stepwise Cox, time-dependent ROC, calibration, decision curves,
cross-validation) is recognised by its records (``views.signature_study``); its extra
sections are printed only then, each as "Not run" when its record is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError

from studyrunner.errors import InputError
from studyrunner.paths import repo_folder
from studyrunner.report.figures import draw_deep_figures, draw_figures
from studyrunner.report.formatting import FILTERS
from studyrunner.report.views import build_context
from studyrunner.results.models import Results

REPORTS_ENV_VAR = "STUDYRUNNER_REPORTS"
MAIN_TEMPLATE = "report.html.j2"
STYLESHEET = "style.css"


def reports_dir() -> Path:
    """The folder holding ``templates/`` and ``style.css``: <repo>/reports or $STUDYRUNNER_REPORTS."""
    return repo_folder("reports", REPORTS_ENV_VAR)


def load_results(path: Path) -> Results:
    """Read and validate results.json; errors name the file and, for a JSON syntax error, the
    line and column, for a record of the wrong shape, its key path (e.g. ``model.cutoff.value``)."""
    if not path.is_file():
        raise InputError(f"{path}: results file not found (is this a finished run folder?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from error
    if not isinstance(data, dict):
        raise InputError(f"{path}: top level must be a JSON object, found {type(data).__name__}")
    try:
        return Results.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()[:10])
        raise InputError(f"{path}: not a studyrunner results.json ({error.error_count()} problem(s)): "
                         f"{problems}") from error


def template_environment(templates_dir: Path, main_template: str = MAIN_TEMPLATE) -> Environment:
    """Jinja2 environment over ``templates_dir`` with the formatting filters registered."""
    if not (templates_dir / main_template).is_file():
        raise InputError(f"{templates_dir}: report template {main_template} not found "
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
    if results.deep:
        figures.update(draw_deep_figures(results, report_dir / "figures", run_dir))
    relative = {key: path.relative_to(report_dir).as_posix() for key, path in figures.items()}
    context = build_context(results, relative, css_path.read_text(encoding="utf-8"))
    html = environment.get_template(MAIN_TEMPLATE).render(**context)
    html_path = report_dir / "report.html"
    html_path.write_text(html, encoding="utf-8")
    pdf_path = run_dir / "report.pdf"
    HTML(string=html, base_url=str(report_dir)).write_pdf(str(pdf_path))
    return pdf_path
