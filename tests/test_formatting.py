"""Journal number formats (studyrunner.report.formatting): negative zero, whole numbers, intervals
with negative limits, counts with halves, and the no-wrap span the report's filters put around an
interval. Every expected string is written out by hand."""

from __future__ import annotations

from studyrunner.report.formatting import (
    FILTERS,
    fmt_auc,
    fmt_ci,
    fmt_count,
    fmt_hr,
    fmt_median_iqr,
    fmt_num,
    fmt_range,
    fmt_time,
    fmt_value,
)
from studyrunner.report.render import STYLESHEET, reports_dir, template_environment

MINUS, EN, EM = "\u2212", "\u2013", "\u2014"


def test_negative_zero_prints_without_sign() -> None:
    assert fmt_num(-0.001, 2) == "0.00"
    assert fmt_num(-0.0049, 2) == "0.00"
    assert fmt_num(-0.0, 3) == "0.000"
    assert fmt_num(-0.006, 2) == f"{MINUS}0.01"  # a real negative keeps its minus sign
    assert fmt_time(-0.0) == "0"
    assert fmt_value(-0.0) == "0"
    assert fmt_ci(-0.001, -0.2, 0.3) == f"0.00 ({MINUS}0.20 to 0.30)"


def test_whole_numbers_print_as_integers() -> None:
    assert fmt_value(1963.0) == "1963"
    assert fmt_value(1234567.0) == "1234567"  # not "1.23457e+06"
    assert fmt_time(1963.0) == "1963"
    assert fmt_time(365.0) == "365"
    assert fmt_value(0.8) == "0.8"
    assert fmt_value(-12.0) == f"{MINUS}12"
    assert fmt_count(2106.0) == "2,106"
    assert fmt_count(133.0) == "133"
    assert fmt_count(2106.5) == "2,106.5"
    assert fmt_count(None, "no pairs") == f"{EM} (no pairs)"


def test_intervals_with_a_negative_limit_use_to() -> None:
    assert fmt_ci(-0.0158, -0.049, 0.021, 3) == f"{MINUS}0.016 ({MINUS}0.049 to 0.021)"
    assert fmt_auc(0.0159, -0.0126, 0.0444) == f"0.016 ({MINUS}0.013 to 0.044)"
    assert fmt_ci(-0.5, -0.9, -0.1) == f"{MINUS}0.50 ({MINUS}0.90 to {MINUS}0.10)"
    assert fmt_range(-0.2, 0.3, 2) == f"{MINUS}0.20 to 0.30"
    # positive limits keep the en dash
    assert fmt_ci(0.712, 0.651, 0.774) == f"0.71 (0.65{EN}0.77)"
    assert fmt_hr(2.0529, 1.6433, 2.5645) == f"2.05 (1.64{EN}2.56)"
    assert fmt_median_iqr({"median": 63.0, "q1": 57.0, "q3": 70.0}) == f"63.0 (57.0{EN}70.0)"


def test_interval_filters_wrap_in_a_nowrap_span() -> None:
    assert FILTERS["fmt_hr"](2.0529, 1.6433, 2.5645) == f'<span class="ci">2.05 (1.64{EN}2.56)</span>'
    assert FILTERS["fmt_auc"](0.0159, -0.0126, 0.0444) == f'<span class="ci">0.016 ({MINUS}0.013 to 0.044)</span>'
    # a missing value stays plain text, so that its reason can wrap
    assert FILTERS["fmt_ci"](None, 0.1, 0.2, reason="too few events") == f"{EM} (too few events)"
    assert FILTERS["fmt_num"](0.5) == "0.50"  # a plain number gets no span
    environment = template_environment(reports_dir() / "templates")
    html = environment.from_string('{{ "HR " ~ (x | fmt_hr(lo, hi)) }} & {{ x | fmt_hr(lo, hi) | striptags }}').render(
        x=2.0529, lo=1.6433, hi=2.5645)
    assert html == f'HR <span class="ci">2.05 (1.64{EN}2.56)</span> & 2.05 (1.64{EN}2.56)'
    css = (reports_dir() / STYLESHEET).read_text(encoding="utf-8")
    assert "span.ci { white-space: nowrap; }" in css


def test_stylesheet_numbers_figures_and_tables() -> None:
    css = (reports_dir() / STYLESHEET).read_text(encoding="utf-8")
    assert 'content: "Figure " counter(figure)' in css
    assert 'content: "Table " counter(table)' in css
    assert "counter-reset: section figure table" in css
