"""``results.json``: every number the report shows, typed (``models``) and assembled from the
stage outputs (``assemble``). The report is rendered from this file alone."""

from studyrunner.results.assemble import assemble_results
from studyrunner.results.models import Results, results_schema

__all__ = ["Results", "assemble_results", "results_schema"]
