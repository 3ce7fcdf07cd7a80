"""Number formatting for the report: every number printed in the report passes through here.

The functions are registered as Jinja2 filters (see ``FILTERS``) and are used by the figure
code as well, so a value reads the same in a table, in the text and on a plot.

Conventions (journal style, as asked for by TRIPOD+AI item 23a, Collins et al., BMJ 2024):

- a missing value prints as an em dash, followed by the reason in brackets when one is known;
- p-values print with 3 decimals, and as "<0.001" below 0.001;
- estimates with a confidence interval print as "0.71 (0.65–0.77)" (en dash between limits),
  or as "0.016 (−0.013 to 0.044)" when a limit is negative; in the HTML the filters wrap them
  in a span that does not break across lines (``nowrap_interval``);
- negative numbers carry a typographic minus sign, and one that rounds to zero prints without
  a sign ("0.00", never "−0.00"); whole numbers recorded as floats print as integers ("1963");
- counts with a percentage print as "40 (17%)";
- time-dependent AUCs (and their cross-validation summaries) print with ``AUC_DIGITS`` (3)
  decimals, as the radiomics-signature literature reports them (e.g. the escc_ici_chemo source paper: "0.831");
- a median survival that the Kaplan–Meier curve never reaches prints as "not reached", a
  confidence limit that is not reached as "NR".
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from markupsafe import Markup

from studyrunner.registry import time_key

MISSING = "\u2014"  # em dash
RANGE_DASH = "\u2013"  # en dash
MINUS = "\u2212"  # typographic minus sign

P_FLOOR = 0.001
AUC_DIGITS = 3
NOT_REACHED = "not reached"
NOT_REACHED_SHORT = "NR"
CI_LEVEL = 0.95  # the level of every interval in results.json (rscripts/evaluation.R, survival defaults)


def ci_label(level: float = CI_LEVEL) -> str:
    """The short name of a confidence interval: "95% CI"."""
    return f"{level * 100:g}% CI"


def ci_words(level: float = CI_LEVEL) -> str:
    """The name of a confidence interval for running text: "95% confidence"."""
    return f"{level * 100:g}% confidence"


def is_missing(value: Any) -> bool:
    """True for None and for float NaN (R's NA arrives as NaN through rpy2)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_missing(reason: str | None = None) -> str:
    """The em dash used for a value that is not available, with the reason when one is given."""
    return f"{MISSING} ({reason})" if reason else MISSING


def _signed(text: str) -> str:
    """Replace a leading hyphen-minus by a typographic minus sign; a negative number that
    rounds to zero ("-0.00", "-0") loses its sign."""
    if not text.startswith("-"):
        return text
    if not any(ch in "123456789" for ch in text):
        return text[1:]
    return MINUS + text[1:]


def _plain(value: float) -> str:
    """A float as recorded, without trailing zeros; a whole number as an integer ("1963", never
    "1963.0" or "1.963e+03")."""
    return _signed(str(int(value)) if value.is_integer() else f"{value:g}")


def _limits(lower: str, upper: str) -> str:
    """Two formatted limits of an interval: "0.65–0.77", or "−0.05 to 0.02" when a limit is
    negative (an en dash beside a minus sign reads as a subtraction)."""
    if lower.startswith(MINUS) or upper.startswith(MINUS):
        return f"{lower} to {upper}"
    return f"{lower}{RANGE_DASH}{upper}"


def fmt_num(value: float | int | None, digits: int = 2, reason: str | None = None) -> str:
    """A number with a fixed number of decimals: ``fmt_num(0.7237) == "0.72"``."""
    if value is None or is_missing(value):
        return fmt_missing(reason)
    return _signed(f"{float(value):.{digits}f}")


def fmt_int(value: int | float | None, reason: str | None = None) -> str:
    """A count with thousands separators: ``fmt_int(12345) == "12,345"``."""
    if value is None or is_missing(value):
        return fmt_missing(reason)
    return _signed(f"{round(float(value)):,}")


def fmt_count(value: float | None, reason: str | None = None) -> str:
    """A count that may hold halves (mis-ordered pairs, where a tie counts one half): a whole
    value as an integer with thousands separators, ``fmt_count(2106.0) == "2,106"``, otherwise
    one decimal, ``fmt_count(2106.5) == "2,106.5"``."""
    if value is None or is_missing(value):
        return fmt_missing(reason)
    number = float(value)
    return fmt_int(number) if number.is_integer() else _signed(f"{number:,.1f}")


def fmt_quantity(value: int | float | None, noun: str, plural: str | None = None, reason: str | None = None) -> str:
    """A count with its noun, singular for one: ``fmt_quantity(1, "feature") == "1 feature"``,
    ``fmt_quantity(4, "feature") == "4 features"``, ``fmt_quantity(2, "analysis", "analyses")``."""
    if value is None or is_missing(value):
        return fmt_missing(reason)
    return f"{fmt_int(value)} {noun if round(float(value)) == 1 else plural or noun + 's'}"


def fmt_p(value: float | None, reason: str | None = None) -> str:
    """A p-value: "<0.001" below 0.001, otherwise 3 decimals (``0.0496 -> "0.050"``)."""
    if value is None or is_missing(value):
        return fmt_missing(reason)
    p = float(value)
    if p < P_FLOOR:
        return f"<{P_FLOOR:.3f}"
    return f"{p:.3f}"


def fmt_p_eq(value: float | None, reason: str | None = None) -> str:
    """A p-value for running text or a plot: "p < 0.001" or "p = 0.012"."""
    text = fmt_p(value, reason)
    if text.startswith("<"):
        return f"p < {text[1:]}"
    return f"p = {text}"


def fmt_ci(
    estimate: float | None,
    lower: float | None,
    upper: float | None,
    digits: int = 2,
    reason: str | None = None,
) -> str:
    """An estimate with its confidence interval: ``fmt_ci(0.712, 0.651, 0.774) == "0.71 (0.65–0.77)"``.

    A missing estimate prints as the em dash (with ``reason``); a missing limit prints the
    estimate followed by "(—)" so the reader sees that the interval, not the estimate, is absent.
    """
    if is_missing(estimate):
        return fmt_missing(reason)
    point = fmt_num(estimate, digits)
    if is_missing(lower) or is_missing(upper):
        return f"{point} ({MISSING})"
    return f"{point} ({_limits(fmt_num(lower, digits), fmt_num(upper, digits))})"


def fmt_hr(
    hr: float | None,
    lower: float | None,
    upper: float | None,
    reason: str | None = None,
) -> str:
    """A hazard ratio with its 95% CI, 2 decimals: ``fmt_hr(2.053, 1.643, 2.564) == "2.05 (1.64–2.56)"``."""
    return fmt_ci(hr, lower, upper, digits=2, reason=reason)


def fmt_estimate(estimate: Any, digits: int = 2, reason: str | None = None) -> str:
    """An ``Estimate`` record (estimate, lower, upper, reason) as ``fmt_ci`` prints it:
    ``"2.05 (1.64–2.56)"``; its own reason is shown when it could not be estimated."""
    return fmt_ci(field(estimate, "estimate"), field(estimate, "lower"), field(estimate, "upper"), digits,
                  field(estimate, "reason") or reason)


def fmt_bootstrap(estimate: float | None, bootstrap: Any, measure: str, digits: int = 3,
                  reason: str | None = None) -> str:
    """A calibration measure with its bootstrap percentile interval, the entry ``measure`` of a
    ``CalibrationBootstrap`` record: ``fmt_bootstrap(0.183, {"brier": {"lower": 0.152, "upper": 0.214}},
    "brier") == "0.183 (0.152–0.214)"``. Without a bootstrap record (none was asked for) the estimate
    alone; with one that has no interval (too few replicates), the estimate and "(—)"."""
    if bootstrap is None:
        return fmt_num(estimate, digits, reason)
    interval = field(bootstrap, measure)
    return fmt_ci(estimate, field(interval, "lower"), field(interval, "upper"), digits, reason)


def fmt_pct(value: float | None, reason: str | None = None) -> str:
    """A percentage rounded to a whole number; values in (0, 0.5) print as "<1%"."""
    if value is None or is_missing(value):
        return fmt_missing(reason)
    pct = float(value)
    if 0 < pct < 0.5:
        return "<1%"
    return f"{pct:.0f}%"


def fmt_n_pct(n: int | None, pct: float | None = None, reason: str | None = None) -> str:
    """A count with its percentage: ``fmt_n_pct(40, 17.2) == "40 (17%)"``."""
    if is_missing(n):
        return fmt_missing(reason)
    if is_missing(pct):
        return fmt_int(n)
    return f"{fmt_int(n)} ({fmt_pct(pct)})"


def field(record: Any, key: str) -> Any:
    """``key`` of a record: a results model's attribute or a mapping's item (None when absent).
    The filters format records of results.json both as typed models (the report) and as plain
    JSON (the figures)."""
    if record is None:
        return None
    if isinstance(record, Mapping):
        return record.get(key)
    return getattr(record, key, None)


def fmt_median_iqr(summary: Any, digits: int = 1, reason: str | None = None) -> str:
    """Median and interquartile range from a Table 1 summary: "63.0 (57.0–69.0)"."""
    if is_missing(field(summary, "median")):
        return fmt_missing(reason)
    return fmt_ci(field(summary, "median"), field(summary, "q1"), field(summary, "q3"), digits=digits)


def fmt_mean_sd(summary: Any, digits: int = 1, reason: str | None = None) -> str:
    """Mean and standard deviation from a Table 1 summary: "62.8 (8.4)"."""
    if is_missing(field(summary, "mean")):
        return fmt_missing(reason)
    return f"{fmt_num(field(summary, 'mean'), digits)} ({fmt_num(field(summary, 'sd'), digits)})"


def fmt_auc(
    auc: float | None,
    lower: float | None = None,
    upper: float | None = None,
    reason: str | None = None,
) -> str:
    """A time-dependent AUC with its CI, 3 decimals: ``fmt_auc(0.8148, 0.7231, 0.9066) == "0.815 (0.723–0.907)"``.

    Without limits (both None) only the estimate prints; a missing AUC prints the em dash
    with the reason (e.g. "no controls at 60 months")."""
    if lower is None and upper is None:
        return fmt_num(auc, AUC_DIGITS, reason)
    return fmt_ci(auc, lower, upper, digits=AUC_DIGITS, reason=reason)


def fmt_range(lower: float | None, upper: float | None, digits: int = AUC_DIGITS) -> str:
    """A range of values: ``fmt_range(0.7115, 0.8937) == "0.712–0.894"``."""
    if is_missing(lower) or is_missing(upper):
        return MISSING
    return _limits(fmt_num(lower, digits), fmt_num(upper, digits))


def fmt_median_range(summary: Any, digits: int = AUC_DIGITS, reason: str | None = None) -> str:
    """Median and range of a cross-validation summary {"median", "min", "max"}:
    ``"0.822 (0.712–0.894)"``."""
    if is_missing(field(summary, "median")):
        return fmt_missing(reason)
    return (f"{fmt_num(field(summary, 'median'), digits)} "
            f"({fmt_range(field(summary, 'min'), field(summary, 'max'), digits)})")


def fmt_survival_median(record: Any, digits: int = 1, reason: str | None = None) -> str:
    """Kaplan–Meier median survival with its CI: "8.9 (7.2–15.0)".

    A median of None means the curve never fell to 0.5 ("not reached"); a limit of None
    means that limit was not reached ("NR"); no record at all prints the em dash."""
    if record is None:
        return fmt_missing(reason)
    if is_missing(field(record, "median")):
        return NOT_REACHED
    lower, upper = field(record, "lower"), field(record, "upper")
    lo = NOT_REACHED_SHORT if is_missing(lower) else fmt_num(lower, digits)
    hi = NOT_REACHED_SHORT if is_missing(upper) else fmt_num(upper, digits)
    return f"{fmt_num(field(record, 'median'), digits)} ({lo}{RANGE_DASH}{hi})"


def fmt_time(value: float | None, reason: str | None = None) -> str:
    """A time point as recorded, without trailing zeros: 12 -> "12", 1.5 -> "1.5"."""
    if value is None or is_missing(value):
        return fmt_missing(reason)
    return _plain(float(value))


def fmt_seconds(value: float | None, reason: str | None = None) -> str:
    """A duration: "1.8 s" below a minute, "6 min 28 s" below an hour, else "1 h 02 min"."""
    if value is None or is_missing(value):
        return fmt_missing(reason)
    seconds = float(value)
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {(whole % 3600) // 60:02d} min"


def fmt_datetime(value: str | None, reason: str | None = None) -> str:
    """An ISO 8601 UTC timestamp as "14 January 2025, 09:30 UTC"."""
    if is_missing(value) or value == "":
        return fmt_missing(reason)
    stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return f"{stamp.day} {stamp:%B %Y, %H:%M} UTC"


def fmt_value(value: Any, reason: str | None = None) -> str:
    """A setting value of any JSON type, for the methods tables (lists joined, booleans as yes/no)."""
    if is_missing(value):
        return fmt_missing(reason)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _plain(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(fmt_value(item) for item in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{key}: {fmt_value(item)}" for key, item in value.items())
    return str(value)


def fmt_text(value: str | None, reason: str | None = None) -> str:
    """Free text from results.json, or the em dash (with reason) when it is absent or empty."""
    if is_missing(value) or str(value).strip() == "":
        return fmt_missing(reason)
    return str(value)


def lower_first(label: str | None) -> str:
    """A label for use inside a sentence: "Overall survival" -> "overall survival", while
    labels that start with an acronym ("PD-L1 TPS", "ECOG status") are left as they are."""
    text = fmt_text(label)
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


INTERVAL_CLASS = "ci"
"""The class of the span around an estimate with its interval in the report's HTML; the
stylesheet keeps it on one line (``white-space: nowrap``), so a CI never wraps inside a cell."""


def nowrap_interval(formatter: Callable[..., str]) -> Callable[..., str]:
    """The Jinja2 filter of ``formatter``: its text in ``<span class="ci">``; a missing value
    (the em dash with its reason) stays plain text, free to wrap."""

    @functools.wraps(formatter)
    def interval_filter(*args: Any, **kwargs: Any) -> str:
        text = formatter(*args, **kwargs)
        if text.startswith(MISSING):
            return text
        return Markup('<span class="{}">{}</span>').format(INTERVAL_CLASS, text)

    return interval_filter


FILTERS: dict[str, Callable[..., str]] = {
    "fmt_num": fmt_num,
    "fmt_int": fmt_int,
    "fmt_count": fmt_count,
    "fmt_quantity": fmt_quantity,
    "fmt_p": fmt_p,
    "fmt_p_eq": fmt_p_eq,
    "fmt_ci": nowrap_interval(fmt_ci),
    "fmt_hr": nowrap_interval(fmt_hr),
    "fmt_estimate": nowrap_interval(fmt_estimate),
    "fmt_bootstrap": nowrap_interval(fmt_bootstrap),
    "fmt_pct": fmt_pct,
    "fmt_n_pct": nowrap_interval(fmt_n_pct),
    "fmt_median_iqr": nowrap_interval(fmt_median_iqr),
    "fmt_auc": nowrap_interval(fmt_auc),
    "fmt_range": nowrap_interval(fmt_range),
    "fmt_median_range": nowrap_interval(fmt_median_range),
    "fmt_survival_median": nowrap_interval(fmt_survival_median),
    "fmt_time": fmt_time,
    "fmt_mean_sd": nowrap_interval(fmt_mean_sd),
    "fmt_seconds": fmt_seconds,
    "fmt_datetime": fmt_datetime,
    "fmt_value": fmt_value,
    "fmt_text": fmt_text,
    "fmt_missing": fmt_missing,
    "lower_first": lower_first,
    "time_key": time_key,
}
