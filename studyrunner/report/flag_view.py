"""Template variables of the flags (``results.flags``, found by ``results.flags``): the
numbered list of the "Flags" box after the summary and, per flagged place, the marks that
link back to it (the ``flag_mark`` macro of ``_macros.html.j2``)."""

from __future__ import annotations

from typing import Any

from studyrunner.report.tripod import SECTION_TITLES
from studyrunner.results.models import Results

SEVERITY_LABELS = {"warning": "Warning", "caution": "Caution", "note": "Note"}


def flag_context(results: Results) -> dict[str, Any]:
    """``flags``: [{"number", "anchor" (of its line in the box), "severity", "severity_label",
    "code", "section", "section_title", "target", "message"}] in the rules' order;
    ``flag_marks``: {target or "section:<anchor>": [{"number", "anchor", "severity"}]}, the
    marks a template prints at that place (every flag is also marked at its section)."""
    flags: list[dict[str, Any]] = []
    marks: dict[str, list[dict[str, Any]]] = {}
    for number, flag in enumerate(results.flags, start=1):
        row = {"number": number, "anchor": f"flag-{number}", "severity": flag.severity,
               "severity_label": SEVERITY_LABELS[flag.severity], "code": flag.code, "section": flag.section,
               "section_title": SECTION_TITLES.get(flag.section, flag.section), "target": flag.target,
               "message": flag.message}
        flags.append(row)
        mark = {"number": number, "anchor": row["anchor"], "severity": flag.severity}
        for key in {f"section:{flag.section}", flag.target} - {None}:
            marks.setdefault(str(key), []).append(mark)
    return {"flags": flags, "flag_marks": marks}
