"""The report a reviewer reads, for each of the three shipped protocols (issue 10, "Done when"):
rendered from a real run of the protocol on a small cohort (tests/study_runs.py), its text
(pdftotext) must

- answer each of the 52 TRIPOD+AI sub-items on the page the checklist names, or list it as
  "to be completed by the authors" (the checklist reading and the tag finding of
  tests/test_tripod.py);
- show every number of a list of at least 20 results.json fields, formatted as the report's
  filters format it (studyrunner/report/formatting.py), so a number that is dropped, renamed or
  printed differently from results.json fails here.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from studyrunner.report.formatting import (
    fmt_auc,
    fmt_bootstrap,
    fmt_ci,
    fmt_estimate,
    fmt_int,
    fmt_median_range,
    fmt_num,
    fmt_p,
    fmt_survival_median,
)
from studyrunner.report.tripod import TRIPOD_AI_ITEMS
from studyrunner.report.views import table_one_view
from studyrunner.results.models import Results
from tests.test_tripod import checklist_rows, pdf_pages, tag_pages

pytestmark = [pytest.mark.slow, pytest.mark.needs_r]

Expectation = tuple[str, str]  # (results.json field, the text the report prints for it)


def radiomics_model_numbers(r: Results) -> Iterator[Expectation]:
    """The radiomics model's numbers, common to the three studies."""
    assert r.flow is not None
    assert r.model is not None
    assert isinstance(r.evaluation, dict)
    yield "flow.n_clinical", fmt_int(r.flow.n_clinical)
    yield "flow.n_included", fmt_int(r.flow.n_included)
    for coefficient in r.model.coefficients:
        yield f"model.coefficients[{coefficient.term}].coef", fmt_num(coefficient.coef, 4)
    yield "model.cutoff.value", fmt_num(r.model.cutoff.value, 4)
    for name, ev in r.evaluation.items():
        yield f"evaluation.{name}.c_index", fmt_estimate(ev.concordance)
        yield f"evaluation.{name}.hr", fmt_estimate(ev.hazard_ratio)
        calibration = ev.calibration
        if calibration is not None and hasattr(calibration, "slope"):
            slope = calibration.slope
            yield f"evaluation.{name}.calibration.slope", fmt_ci(slope.slope, slope.lower, slope.upper)
            for key, at in calibration.at.items():
                yield f"evaluation.{name}.calibration.at.{key}.predicted", fmt_num(at.predicted, 3)
                yield f"evaluation.{name}.calibration.at.{key}.observed", fmt_estimate(at.observed, 3)
                yield f"evaluation.{name}.calibration.at.{key}.oe", fmt_estimate(at.oe)
                prefix = f"evaluation.{name}.calibration.at.{key}"
                yield f"{prefix}.brier", fmt_bootstrap(at.brier.model, at.bootstrap, "brier")
                yield f"{prefix}.ipa", fmt_bootstrap(at.brier.ipa, at.bootstrap, "ipa")
    assert r.table_one is not None
    digits = table_one_view(r.table_one, r.endpoints)["time_digits"]
    for variable in r.table_one.variables:
        for group, survival in (variable.survival or {}).items():
            yield (f"table_one.{variable.label}.{group}.km_median",
                   fmt_survival_median(survival.km_median, digits.get(variable.column, 1)))


def signature_numbers(r: Results) -> Iterator[Expectation]:
    """The signature study's time-dependent AUCs, cross-validation and cut-off test."""
    assert isinstance(r.evaluation, dict)
    assert r.model is not None
    yield "model.cutoff.p_value (Lau94)", fmt_p(r.model.cutoff.p_value)
    for name, ev in r.evaluation.items():
        roc = ev.time_roc
        if roc is None or not hasattr(roc, "auc"):
            continue
        for i, t in enumerate(roc.times):
            if roc.auc[i] is not None:
                yield f"evaluation.{name}.time_roc.auc[{t:g}]", fmt_auc(roc.auc[i], roc.lower[i], roc.upper[i])
            yield f"evaluation.{name}.time_roc.controls[{t:g}]", fmt_int(roc.controls[i])
    cv = r.cross_validation
    if cv is not None and hasattr(cv, "training"):
        for key, summary in cv.training.items():
            if summary is not None:
                yield f"cross_validation.training.{key}", fmt_median_range(summary)


def cnn_numbers(r: Results) -> Iterator[Expectation]:
    """Each CNN score's C-index, HR and calibration in each cohort."""
    assert r.risk_scores is not None
    for name, score in r.risk_scores.scores.items():
        for cohort, ev in score.evaluation.items():
            yield f"risk_scores.{name}.{cohort}.c_index", fmt_auc(ev.c_index, ev.c_lower, ev.c_upper)
            yield f"risk_scores.{name}.{cohort}.hr", fmt_estimate(ev.hazard_ratio)
        for cohort, calibration in score.calibration.items():
            for key, at in calibration.at.items():
                yield (f"risk_scores.{name}.calibration.{cohort}.{key}.brier",
                       fmt_bootstrap(at.brier.model, at.bootstrap, "brier"))


STUDIES: dict[str, tuple[str, list[Callable[[Results], Iterator[Expectation]]]]] = {
    "nsclc_ici": ("deep_run", [radiomics_model_numbers, cnn_numbers]),
    "escc_ici_chemo": ("signature_run", [radiomics_model_numbers, signature_numbers]),
    "lung1_real": ("real_run", [radiomics_model_numbers]),
}


def _run_dir(request: pytest.FixtureRequest, study: str) -> Path:
    value = request.getfixturevalue(STUDIES[study][0])
    return value[0] if isinstance(value, tuple) else value


def _readable(text: str) -> str:
    """PDF text as a reader sees it: whitespace collapsed, words broken at a line end joined."""
    text = re.sub(r"\s+", " ", text)
    return re.sub(r"(\w)[\u2010\u00ad-] (\w)", r"\1\2", text)


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_every_tripod_item_is_answered_on_the_page_the_checklist_names(request, study: str) -> None:
    pdf = _run_dir(request, study) / "report.pdf"
    rows = checklist_rows(pdf_pages(pdf, layout=True))
    assert sorted(rows) == sorted(item for item, _, _ in TRIPOD_AI_ITEMS)
    found = tag_pages(pdf)
    pages = pdf_pages(pdf)
    for item, row in rows.items():
        assert found.get(item) == set(row["pages"]), f"{study} item {item}: tag on {found.get(item)}, " \
                                                     f"checklist {row['pages']}"
        if row["todo"]:
            assert "To be completed by the authors" in _readable(pages[row["pages"][0] - 1]), (study, item)


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_the_numbers_of_results_json_are_printed_as_the_report_formats_them(request, study: str) -> None:
    run_dir = _run_dir(request, study)
    results = Results.model_validate_json((run_dir / "results.json").read_text(encoding="utf-8"))
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(run_dir / "report.pdf"), "-"], check=True,
                          capture_output=True, text=True, encoding="utf-8").stdout
    readable = _readable(text)
    expected: list[Expectation] = [e for numbers in STUDIES[study][1] for e in numbers(results)]
    assert len(expected) >= 20, f"{study}: only {len(expected)} fields checked"
    missing: list[Any] = [(field, shown) for field, shown in expected if shown not in readable]
    assert not missing, f"{study}: not in the PDF as formatted: {missing}"
