"""The TRIPOD+AI report of a run, rendered from its results.json (HTML and PDF)."""

from studyrunner.report.render import render_report

__all__ = ["render_report"]
