"""Tests of the TRIPOD+AI report: formatting filters, figures, and the rendered PDF's text.

The PDF tests render tests/fixtures/results_example.json (a hand-assembled, synthetic
results.json; see tests/fixtures/README.md) and read the PDF back with poppler's pdftotext, so they
check what a reader sees, against values worked out by hand from the fixture.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from studyrunner.errors import InputError
from studyrunner.report import render_report
from studyrunner.report.figures import DPI, TEXT_WIDTH_IN, exclusion_lines
from studyrunner.report.formatting import (
    fmt_auc,
    fmt_ci,
    fmt_datetime,
    fmt_hr,
    fmt_int,
    fmt_median_iqr,
    fmt_median_range,
    fmt_n_pct,
    fmt_num,
    fmt_p,
    fmt_p_eq,
    fmt_range,
    fmt_seconds,
    fmt_survival_median,
    fmt_text,
    fmt_time,
    fmt_value,
    lower_first,
)
from studyrunner.report.render import load_results, reports_dir
from studyrunner.report.views import flow_view, sample_size_view, table_one_view
from studyrunner.results.models import Exclusion, Flow, Results

FIXTURE = Path(__file__).parent / "fixtures" / "results_example.json"
EM = "\u2014"
EN = "\u2013"

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")


def pdf_pages(pdf: Path) -> list[str]:
    """The text of each PDF page, whitespace collapsed (line breaks become spaces)."""
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], check=True, capture_output=True,
                          text=True, encoding="utf-8").stdout
    pages = text.split("\f")
    if pages and not pages[-1].strip():
        pages = pages[:-1]
    return [re.sub(r"\s+", " ", page).strip() for page in pages]


def write_run(tmp: Path, results: dict[str, Any]) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return tmp


@pytest.fixture(scope="module")
def fixture_results() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory, fixture_results: dict[str, Any]) -> tuple[Path, Path]:
    run_dir = write_run(tmp_path_factory.mktemp("full_run"), fixture_results)
    return run_dir, render_report(run_dir)


# ----------------------------------------------------------------------------- formatting


def test_fmt_p_hand_cases() -> None:
    assert fmt_p(0.0004) == "<0.001"
    assert fmt_p(0.00099) == "<0.001"
    assert fmt_p(0.001) == "0.001"
    assert fmt_p(0.0496) == "0.050"
    assert fmt_p(0.3652) == "0.365"
    assert fmt_p(1.0) == "1.000"
    assert fmt_p(None) == EM
    assert fmt_p(math.nan) == EM
    assert fmt_p(None, "not estimable") == f"{EM} (not estimable)"
    assert fmt_p_eq(1.02e-05) == "p < 0.001"
    assert fmt_p_eq(0.0123) == "p = 0.012"


def test_fmt_ci_hr_and_counts_hand_cases() -> None:
    assert fmt_ci(0.712, 0.651, 0.774) == f"0.71 (0.65{EN}0.77)"
    assert fmt_ci(0.7237, 0.6553, 0.7904) == f"0.72 (0.66{EN}0.79)"
    assert fmt_ci(0.71, None, 0.77) == f"0.71 ({EM})"
    assert fmt_ci(None, 0.6, 0.8, reason="too few events") == f"{EM} (too few events)"
    assert fmt_hr(2.0529, 1.6433, 2.5645) == f"2.05 (1.64{EN}2.56)"
    assert fmt_hr(0.6845, 0.5482, 0.8549) == f"0.68 (0.55{EN}0.85)"
    assert fmt_n_pct(40, 17.2) == "40 (17%)"
    assert fmt_n_pct(1, 0.4) == "1 (<1%)"
    assert fmt_n_pct(0, 0.0) == "0 (0%)"
    assert fmt_n_pct(None) == EM
    assert fmt_median_iqr({"median": 63.0, "q1": 57.0, "q3": 70.0}) == f"63.0 (57.0{EN}70.0)"
    assert fmt_median_iqr(None) == EM


def test_signature_filters_hand_cases() -> None:
    assert fmt_auc(0.8439, 0.7558, 0.932) == f"0.844 (0.756{EN}0.932)"
    assert fmt_auc(0.9007, 0.7715, 1) == f"0.901 (0.771{EN}1.000)"
    assert fmt_auc(0.8439) == "0.844"
    assert fmt_auc(None, None, None, "no controls at 60 months") == f"{EM} (no controls at 60 months)"
    assert fmt_range(0.7313, 0.8955) == f"0.731{EN}0.895"
    assert fmt_range(None, 0.8) == EM
    assert fmt_median_range({"median": 0.6097, "min": 0.3991, "max": 0.7372, "n": 30}) == f"0.610 (0.399{EN}0.737)"
    assert fmt_median_range(None) == EM
    assert fmt_survival_median({"median": 10.2, "lower": 5.2, "upper": 13.1}) == f"10.2 (5.2{EN}13.1)"
    assert fmt_survival_median({"median": 42.7, "lower": 36.1, "upper": None}) == f"42.7 (36.1{EN}NR)"
    assert fmt_survival_median({"median": None, "lower": 36.1, "upper": None}) == "not reached"
    assert fmt_survival_median(None, reason="not estimated") == f"{EM} (not estimated)"
    assert (fmt_time(12), fmt_time(1.5), fmt_time(60.0)) == ("12", "1.5", "60")


def test_other_filters_hand_cases() -> None:
    assert fmt_num(-0.3314, 4) == "\u22120.3314"  # typographic minus
    assert fmt_num(24.5, 1) == "24.5"
    assert fmt_int(12345) == "12,345"
    assert fmt_seconds(1.84) == "1.8 s"
    assert fmt_seconds(388.2) == "6 min 28 s"
    assert fmt_seconds(3725) == "1 h 02 min"
    assert fmt_datetime("2025-01-14T09:30:15Z") == "14 January 2025, 09:30 UTC"
    assert fmt_value([1, 1, 1]) == "1, 1, 1"
    assert fmt_value(False) == "no"
    assert fmt_value(None, "missing") == f"{EM} (missing)"
    assert fmt_text("", "not stated") == f"{EM} (not stated)"
    assert lower_first("Overall survival") == "overall survival"
    assert lower_first("PD-L1 TPS is recorded") == "PD-L1 TPS is recorded"


# ----------------------------------------------------------------------------- views


def test_flow_view_counts_by_stage_and_flags_unaccounted() -> None:
    flow = {"n_clinical": 10, "n_included": 7, "partitions": {"modelling": 4, "validation": 1, "test": 2},
            "training_partitions": ["modelling", "validation"], "test_partitions": ["test"],
            "exclusions": [{"patient_id": "P1", "stage": "images", "reason": "Mask is empty"},
                           {"patient_id": "P2", "stage": "images", "reason": "Mask is empty"}]}
    view = flow_view(Flow.model_validate(flow))
    assert view["n_excluded"] == 2
    assert view["n_by_stage"]["images"] == 2
    assert view["n_by_stage"]["eligibility"] == 0
    assert view["by_stage"] == [{"stage": "images", "label": "Images", "n": 2,
                                 "reasons": [{"reason": "Mask is empty", "n": 2}]}]
    assert (view["training_n"], view["test_n"]) == (5, 2)
    assert view["unaccounted"] == 10 - 2 - 7


def test_exclusion_box_summarises_reasons_beyond_four() -> None:
    records = [Exclusion(patient_id=f"P{i}", stage="images", reason=f"reason {i % 5}") for i in range(7)]
    lines = [text for text, _ in exclusion_lines(records)]
    assert lines[0] == "Excluded (n = 7)"
    assert lines[1] == "Images (n = 7)"
    # reasons 0 and 1 occur twice (i = 0, 5 and 1, 6), reasons 2-4 once: four shown, one left over
    assert lines[2:4] == ["\u2022 reason 0 (n = 2)", "\u2022 reason 1 (n = 2)"]
    assert lines[-1] == "\u2022 other reasons (n = 1)"


def test_views_on_fixture(fixture_results: dict[str, Any]) -> None:
    results = Results.model_validate(fixture_results)
    size = sample_size_view(results)
    assert size is not None
    assert (size["events"], size["n_candidates"], size["n_terms"]) == (98, 107, 4)
    assert size["epp_terms"] == pytest.approx(24.5)
    t1 = table_one_view(results.table_one)
    assert t1["wide"] is True  # 5 groups + 2 comparisons do not fit a portrait page
    assert t1["missing"] == [{"label": "PD-L1 TPS, %", "n": 5}]


# ----------------------------------------------------------------------------- rendered report


@needs_poppler
def test_full_report_pdf_text(full_report: tuple[Path, Path], fixture_results: dict[str, Any]) -> None:
    run_dir, pdf = full_report
    assert pdf == run_dir / "report.pdf"
    assert (run_dir / "report" / "report.html").is_file()
    pages = pdf_pages(pdf)
    text = " ".join(pages)

    test = fixture_results["evaluation"]["test"]
    assert (test["c_index"], test["c_lower"], test["c_upper"]) == (0.7237, 0.6553, 0.7904)
    assert f"0.72 (0.66{EN}0.79)" in text                       # test C-index, rounded by hand
    assert f"3.57 (1.96{EN}6.51)" in text                       # test HR 3.574 (1.9609-6.5143)
    assert "log-rank p < 0.001" in text                        # test log-rank p 1.02e-05 (summary)

    assert len(fixture_results["flow"]["exclusions"]) == 9
    assert "Excluded patients (n = 9)" in text
    assert sum(text.count(r["patient_id"]) >= 1 for r in fixture_results["flow"]["exclusions"]) == 9

    assert "0.365" in text                                     # age p-value 0.3652 in Table 1
    assert "0.189" in text                                     # age p-value 0.1894 in Table 1
    assert "0.005" in text                                     # screening p 0.005095
    assert "77 (33%)" in text                                  # 77 women of 231, 33.3%
    assert "24.5 events per term" in text                      # 98 events / 4 model terms
    assert "6 min 28 s" in text                                # radiomics 388.2 s

    assert pages[0].count("SYNTHETIC DATA") >= 2              # banner and the title-page notice
    assert all("SYNTHETIC DATA" in page for page in pages)
    assert fixture_results["study"]["protocol_sha256"] in pages[0]
    assert all(f"Page {i} of {len(pages)}" in page for i, page in enumerate(pages, start=1))
    assert all(fixture_results["study"]["name"] in page for page in pages[1:])


@needs_poppler
def test_seed_000_report_has_no_signature_sections(full_report: tuple[Path, Path]) -> None:
    """A study without the radiomics-signature records renders exactly the seed-000 sections."""
    _, pdf = full_report
    text = " ".join(pdf_pages(pdf))
    for title in ("Feature reproducibility", "Feature selection", "Time-dependent ROC", "Calibration",
                  "Decision curves", "Internal validation: cross-validation"):
        assert title not in text
    assert "Not run" not in text


def test_full_report_figures(full_report: tuple[Path, Path]) -> None:
    run_dir, _ = full_report
    figures = run_dir / "report" / "figures"
    assert sorted(p.name for p in figures.glob("*.png")) == ["discrimination.png", "flow.png", "km_test.png",
                                                           "km_training.png", "workflow.png"]
    with Image.open(figures / "km_test.png") as image:
        assert image.width == round(TEXT_WIDTH_IN * DPI)
        assert tuple(round(d) for d in image.info["dpi"]) == (DPI, DPI)
    html = (run_dir / "report" / "report.html").read_text(encoding="utf-8")
    assert 'src="figures/km_test.png"' in html


@needs_poppler
def test_report_without_optional_sections(tmp_path: Path, fixture_results: dict[str, Any]) -> None:
    results = {key: copy.deepcopy(fixture_results[key]) for key in ("study", "endpoints", "primary_endpoint", "flow")}
    results["study"]["synthetic"] = False
    del results["flow"]["n_with_images"]
    results["report_meta"] = {"title": "Minimal run", "authors": ["A. Researcher"]}
    del results["endpoints"]["best_response"]
    results["model"] = {"not_run": "R is not installed on this machine"}
    test = copy.deepcopy(fixture_results["evaluation"]["test"])
    del test["km"], test["risk_table"]
    test.update(hr=None, hr_lower=None, hr_upper=None, hr_reason="not estimable: no events in one group")
    results["evaluation"] = {"test": test}

    pdf = render_report(write_run(tmp_path, results))
    text = " ".join(pdf_pages(pdf))
    assert "SYNTHETIC DATA" not in text
    assert "Not run: results.json has no 'radiomics' record" in text
    assert "Not run: R is not installed on this machine" in text
    assert f"{EM} (not estimable: no events in one group)" in text
    assert f"0.72 (0.66{EN}0.79)" in text
    assert f"Registration {EM} (not registered or not stated)" in text
    assert sorted(p.name for p in (tmp_path / "report" / "figures").glob("*.png")) == ["discrimination.png",
                                                                                      "flow.png", "workflow.png"]


def test_templates_type_no_numbers() -> None:
    """The project rule: every number comes from results.json, so template text holds no digits
    (the only exceptions: the hash name "SHA-256" and the partials' file names)."""
    offenders = []
    for template in sorted((reports_dir() / "templates").glob("*.html.j2")):
        source = re.sub(r"\{#.*?#\}", "", template.read_text(encoding="utf-8"), flags=re.S)
        code = re.findall(r"\{\{.*?\}\}|\{%.*?%\}", source, flags=re.S)
        literals = [lit for block in code for lit in re.findall(r"\"[^\"]*\"|'[^']*'", block)]
        text = re.sub(r"<[^>]*>", "", re.sub(r"\{\{.*?\}\}|\{%.*?%\}", "", source, flags=re.S))
        words = re.findall(r"\S*\d\S*", text) + [lit for lit in literals if re.search(r"\d", lit)]
        offenders += [f"{template.name}: {w}" for w in words if "SHA-256" not in w and not w.endswith('.html.j2"')]
    assert offenders == []


def test_reports_folder_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDYRUNNER_REPORTS", str(tmp_path))
    assert reports_dir() == tmp_path
    write_run(tmp_path / "run", {"study": {"name": "x", "synthetic": True}})
    with pytest.raises(InputError, match=r"report template report\.html\.j2 not found"):
        render_report(tmp_path / "run")


def test_bad_results_files_name_the_problem(tmp_path: Path) -> None:
    broken = tmp_path / "results.json"
    broken.write_text('{"study": {"name": "x",\n "synthetic": tru}}', encoding="utf-8")
    with pytest.raises(InputError, match=r"results\.json: not valid JSON at line 2, column 15"):
        load_results(broken)
    broken.write_text('{"study": {"name": "x"}}', encoding="utf-8")
    with pytest.raises(InputError, match=r"study\.synthetic"):
        load_results(broken)
    with pytest.raises(InputError, match="results file not found"):
        render_report(tmp_path / "no_such_run")


@needs_poppler
def test_summary_is_a_structured_abstract_followed_by_the_flags(full_report: tuple[Path, Path],
                                                                fixture_results: dict[str, Any]) -> None:
    """Background, Methods, Results, Conclusion; the headline box names its model; the Flags
    box lists results.json's flags with a mark at the flagged place; the oracle's C-index is
    printed with its interval and is not called a ceiling."""
    _, pdf = full_report
    pages = pdf_pages(pdf)
    text = " ".join(pages)
    for heading in ("Background.", "Methods.", "Results.", "Conclusion."):
        assert heading in pages[1]
    assert re.search(r"RADIOMICS COX MODEL, TEST C.?INDEX \(95% CI\)", text)  # key-number labels in capitals
    # test C 0.7237 (0.6553-0.7904): the interval lies above one half
    assert "the interval lies above chance discrimination" in text
    assert "Flags: results that mislead if read at face value" in text
    (flag,) = fixture_results["flags"]
    assert flag["message"].replace(" ", "") in text.replace(" ", "")  # a line may break after the CI's dash
    oracle = fixture_results["oracle"]["test"]
    assert (oracle["c_index"], oracle["c_lower"], oracle["c_upper"]) == (0.7173, 0.6393, 0.7953)
    assert f"0.717 (0.639{EN}0.795)" in text                  # the oracle with its CI, 3 decimals
    assert "not a ceiling" in text
    assert "ceiling of" not in text
    html = (full_report[0] / "report" / "report.html").read_text(encoding="utf-8")
    assert html.count('href="#flag-1"') >= 2                    # the discrimination heading and the oracle cell


@needs_poppler
def test_flagged_results_are_listed_and_marked(tmp_path: Path, fixture_results: dict[str, Any]) -> None:
    """A test HR on one low-risk event and an "Unknown" category: both flagged (computed as
    assemble computes them), listed in the Flags box, marked where they are printed, and the
    missing-data methods give the category's percentage (104 of 231 = 45%)."""
    from studyrunner.results.flags import compute_flags

    results = copy.deepcopy(fixture_results)
    results["evaluation"]["test"]["groups"] = {"low": {"n": 19, "n_events": 1}, "high": {"n": 50, "n_events": 44}}
    ecog = next(v for v in results["table_one"]["variables"] if v["column"] == "ecog")
    ecog["levels"].append({"level": "Unknown", "counts": {"Total": {"n": 104, "proportion": 104 / 231}}})
    typed = Results.model_validate({**results, "flags": []})
    results["flags"] = [f.model_dump(mode="json") for f in compute_flags(typed)]
    assert [f["code"] for f in results["flags"]] == ["few_events", "unknown_category", "oracle_exceeded"]
    pdf = render_report(write_run(tmp_path, results))
    text = " ".join(pdf_pages(pdf))
    assert "rests on 1 event among 19 low-risk patients" in text
    assert "1/19 · 44/50" in text                               # events / patients in the discrimination table
    assert "1 event among 19 low-risk patients and 44 events among 50 high-risk patients" in text  # KM caption
    assert "modelled as a category of their own" in text
    assert "ECOG performance status (45%, n = 104)" in text
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    for number in (1, 3):
        assert html.count(f'href="#flag-{number}"') >= 2, number  # its section heading and its place
    assert html.count('href="#flag-2"') >= 1                    # the missing-data paragraph


def test_km_legend_and_tests_text() -> None:
    """Each group's patients and events in the legend; a searched cut-off's adjusted p first,
    the log-rank p labelled unadjusted."""
    from studyrunner.report.figures.km import group_text, km_annotation
    from studyrunner.results.models import GroupEvents, HypothesisTest, Stratification

    assert group_text(GroupEvents(n=19, n_events=1)) == " (n = 19, 1 event)"
    assert group_text(GroupEvents(n=29, n_events=12)) == " (n = 29, 12 events)"
    assert group_text(None, 40) == " (n = 40)"
    ev = Stratification(logrank_chisq=18.96, logrank_p=1.3e-5, hr=3.35, hr_lower=1.89, hr_upper=5.96)
    text = km_annotation(ev, HypothesisTest(statistic=18.96, p=0.0053, method="Lau94"), width=200)
    assert text.splitlines() == ["Cut-off search p = 0.005 (Lau94-adjusted)",
                                 "Log-rank \u03c7\u00b2 = 18.96, p < 0.001 (unadjusted)",
                                 f"HR (high vs low): 3.35 (1.89{EN}5.96)"]
