"""Flags: results that would mislead a reader taken at face value, found by rules and stored
in ``results.json`` (``Results.flags``); the report lists them after the summary and marks
each flagged place.

A rule is a function ``Results -> list[Flag]``; :data:`RULES` is the list
:func:`compute_flags` runs, in order. To add one, write the function here (or in the module
of its section) and append it to :data:`RULES`. A flag names its report section (``section``,
an anchor of ``report.tripod.SECTION_TITLES``) and, where the report marks a table cell or
a figure, the exact place (``target``): ``evaluation:<cohort>`` (the radiomics model),
``score:<score>:<cohort>``, ``oracle:<score or model>:<cohort>``, ``network:<network>``,
``selection:<score>:<term>``, ``cox:<covariate>``, ``subgroup:<column>:<level>``,
``response:<score>:<endpoint>``, ``roc:<score>:<cohort>``, ``missing:unknown``.

Why each rule (the references are those of the rule's docstring): hazard ratios of groups
with a handful of events (Peduzzi et al. 1995), in-sample refits whose coefficient is one by
construction, classifiers no better than chance, elimination rules overridden, p-values of an
optimised cut-off (Altman et al. 1994), an oracle C-index read as a ceiling, missing values
modelled as a category (Groenwold et al. 2012).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from studyrunner.report.deep_view import network_label, unknown_categories
from studyrunner.report.formatting import fmt_auc, fmt_hr, fmt_int, fmt_p_eq, fmt_pct, fmt_value
from studyrunner.results.auc_flags import AUC_RULES
from studyrunner.results.calibration_flags import CALIBRATION_RULES
from studyrunner.results.models import (
    CohortEvaluation,
    Flag,
    GroupEvents,
    MacroAccuracy,
    NotRun,
    Oracle,
    OracleCohort,
    Results,
    SubgroupHazards,
)

MIN_GROUP_EVENTS = 5
"""A risk group with this many events or fewer makes its hazard ratio unstable (flag)."""

Rule = Callable[[Results], list[Flag]]


@dataclass(frozen=True)
class HazardSpot:
    """A place where the report prints a high- vs low-risk hazard ratio or Kaplan-Meier curves."""

    section: str
    target: str
    label: str
    groups: Mapping[str, GroupEvents]
    hr: float | None
    hr_lower: float | None
    hr_upper: float | None


def _evaluation(results: Results) -> dict[str, CohortEvaluation]:
    return results.evaluation if isinstance(results.evaluation, dict) else {}


def hazard_spots(results: Results) -> Iterator[HazardSpot]:
    """Every high- vs low-risk comparison results.json holds: the radiomics model per cohort,
    each CNN score per cohort, the headline score per subgroup level, each response score
    per survival endpoint."""
    for cohort, ev in _evaluation(results).items():
        yield HazardSpot("discrimination", f"evaluation:{cohort}", f"Radiomics Cox model, {ev.cohort_label.lower()}",
                         ev.groups, ev.hr, ev.hr_lower, ev.hr_upper)
    risk = results.risk_scores
    if risk is None:
        return
    for name, block in risk.scores.items():
        for cohort, strat in block.evaluation.items():
            yield HazardSpot("deep-scores", f"score:{name}:{cohort}", f"{block.label}, {cohort} cohort",
                             strat.groups, strat.hr, strat.hr_lower, strat.hr_upper)
    headline = risk.scores.get(risk.headline_score or "")
    for column, sub in risk.subgroups.items():
        if not isinstance(sub, SubgroupHazards):
            continue
        for level in sub.levels:
            yield HazardSpot("deep-clinical", f"subgroup:{column}:{level.level}",
                             f"{headline.label if headline else 'Headline score'} within {column} {level.level}",
                             level.groups or {}, level.hr, level.hr_lower, level.hr_upper)
    for name, response in (risk.response or {}).items():
        for endpoint, split in response.stratification.items():
            yield HazardSpot("deep-response", f"response:{name}:{endpoint}",
                             f"{response.label} at its training cut-off, {endpoint_label(results, endpoint)}",
                             split.groups, split.hr, split.hr_lower, split.hr_upper)


def endpoint_label(results: Results, name: str) -> str:
    """An endpoint's label in lower case ("overall survival"), its name when unknown."""
    endpoint = results.endpoints.get(name)
    return endpoint.label.lower() if endpoint is not None else name


def events(n: int) -> str:
    """"1 event", "4 events"."""
    return f"{fmt_int(n)} event" + ("" if n == 1 else "s")


def few_events(results: Results) -> list[Flag]:
    """A hazard ratio or Kaplan-Meier comparison with a risk group of at most
    :data:`MIN_GROUP_EVENTS` events: the HR and its interval rest on a handful of events and
    move a lot with one more or one fewer (Peduzzi P et al. (1995), J Clin Epidemiol
    48:1503-1510: Cox estimates are unreliable with few events)."""
    flags = []
    for spot in hazard_spots(results):
        few = [(group, counts) for group, counts in spot.groups.items() if counts.n_events <= MIN_GROUP_EVENTS]
        if not few:
            continue
        groups = "; ".join(f"{events(c.n_events)} among {fmt_int(c.n)} {g}-risk patients" if c.n
                           else f"no {g}-risk patient" for g, c in few)
        empty = any(not c.n for _, c in few)
        if empty:
            message = (f"{spot.label}: the risk groups cannot be compared ({groups}); no hazard ratio or "
                       "log-rank test is estimable")
        else:
            what = (f"the hazard ratio {fmt_hr(spot.hr, spot.hr_lower, spot.hr_upper)}" if spot.hr is not None
                    else "the comparison of the risk groups")
            message = (f"{spot.label}: {what} rests on {groups}; "
                       "with so few events the estimate and its interval are unstable")
        flags.append(Flag(code="few_events", severity="warning", section=spot.section, target=spot.target,
                          message=message))
    return flags


def by_construction(results: Results) -> list[Flag]:
    """A Cox model refitted on the rows and outcome its score was fitted on: the score is
    that model's linear predictor, so its coefficient is one (HR = e per unit) whatever the
    data; the report prints "by construction" instead of the HR (``CoxTableRow.by_construction``)."""
    risk = results.risk_scores
    if risk is None or risk.clinical_cox is None:
        return []
    return [Flag(code="by_construction", severity="caution", section="deep-clinical", target=f"cox:{row.covariate}",
                 message=row.by_construction)
            for row in risk.clinical_cox.univariate if row.by_construction]


def chance_classification(results: Results) -> list[Flag]:
    """A survival network's interval classifier whose macro-accuracy is not above chance
    (1/k for k intervals) or that never predicts one of the intervals (a recall of 0)."""
    if results.deep is None:
        return []
    flags = []
    for name, network in results.deep.networks.items():
        found = [(cohort, text) for cohort, record in network.macro_accuracy.items()
                 if (text := chance_text(record)) is not None]
        if found:
            flags.append(Flag(code="chance_classification", severity="warning", section="deep-scores",
                              target=f"network:{name}",
                              message=f"{network_label(name, network.kind)}: the interval classifier is no better "
                                      "than chance: " + "; ".join(f"{cohort} cohort {text}" for cohort, text in found)))
    return flags


def chance_text(record: MacroAccuracy) -> str | None:
    """What is wrong with one cohort's macro-accuracy ("33% (recall per interval 0%, 0%, 100%),
    not above chance (33% for 3 intervals), an interval never predicted"), None when nothing is."""
    recalls = [r for r in record.recall_per_interval if r is not None]
    if record.macro_accuracy is None or not recalls:
        return None
    k = len(record.recall_per_interval)
    problems = []
    if record.macro_accuracy <= 1 / k:
        problems.append(f"not above chance ({fmt_pct(100 / k)} for {fmt_int(k)} intervals)")
    if min(recalls) == 0:
        problems.append("an interval never predicted")
    if not problems:
        return None
    recall = ", ".join(fmt_pct(100 * r) for r in recalls)
    return f"macro-accuracy {fmt_pct(100 * record.macro_accuracy)} (recall per interval {recall}), " + \
        ", ".join(problems)


def chance_response(results: Results) -> list[Flag]:
    """A response score whose AUC's 95% CI reaches 0.5: in that cohort it is not shown to
    classify better than chance (DeLong interval)."""
    risk = results.risk_scores
    flags = []
    for name, block in ((risk.response if risk is not None else None) or {}).items():
        for cohort, roc in block.by_cohort.items():
            if roc.auc_lower is not None and roc.auc_lower <= 0.5:
                flags.append(Flag(code="chance_response", severity="caution", section="deep-response",
                                  target=f"roc:{name}:{cohort}",
                                  message=f"{block.label} ({block.outcome}), {cohort} cohort: AUC "
                                          f"{fmt_auc(roc.auc, roc.auc_lower, roc.auc_upper)}; the interval includes "
                                          "chance (one half)"))
    return flags


def selection_overrides(results: Results) -> list[Flag]:
    """A term kept by the backward elimination although its p-value is above the threshold
    (the elimination never drops the last term: ``BackwardSelection.overrides``)."""
    risk = results.risk_scores
    if risk is None:
        return []
    return [Flag(code="selection_override", severity="caution", section="deep-scores",
                 target=f"selection:{name}:{override.term}",
                 message=f"{block.label}: {override.term} kept with {fmt_p_eq(override.p)} above the elimination "
                         f"threshold {fmt_value(override.p_threshold)}: {override.rule}")
            for name, block in risk.scores.items() if block.selection is not None
            for override in block.selection.overrides]


def optimised_cutoff(results: Results) -> list[Flag]:
    """A cut-off chosen on the training cohort to maximise the log-rank statistic: there, the
    log-rank p is not a test (only the p corrected for the search is; Altman DG et al. (1994),
    J Natl Cancer Inst 86:829-835) and the hazard ratio is optimistic."""
    flags = []
    model = results.model
    cutoffs = []
    naive: dict[str, float | None] = {}  # target: the training log-rank p when the cut-off record has none
    if model is not None and not isinstance(model, NotRun) and model.cutoff is not None:
        cutoffs.append(("discrimination", "evaluation:training", "Radiomics Cox model", model.cutoff))
        training = results.evaluation.get("training") if isinstance(results.evaluation, dict) else None
        naive["evaluation:training"] = training.logrank_p if training is not None else None
    if results.risk_scores is not None:
        cutoffs.extend(("deep-scores", f"score:{name}:training", block.label, block.cutoff)
                       for name, block in results.risk_scores.scores.items())
    for section, target, label, cutoff in cutoffs:
        if cutoff.p_value is None:
            continue
        searched = f" over {fmt_int(cutoff.n_cutoffs)} cut-offs" if cutoff.n_cutoffs else ""
        p_naive = cutoff.p_naive if cutoff.p_naive is not None else naive.get(target)
        unadjusted = f" (unadjusted {fmt_p_eq(p_naive)})" if p_naive is not None else ""
        flags.append(Flag(code="optimised_cutoff", severity="note", section=section, target=target,
                          message=f"{label}, training cohort: the cut-off was chosen on these patients to maximise "
                                  f"the separation; the log-rank p corrected for the search{searched} is "
                                  f"{fmt_p_eq(cutoff.p_value)}{unadjusted}, and the "
                                  "training hazard ratio is optimistic"))
    return flags


def _oracle_flag(section: str, target: str, label: str, c_index: float | None, oracle: OracleCohort | None,
                 cohort: str) -> Flag | None:
    if c_index is None or oracle is None or oracle.c_index is None or c_index <= oracle.c_index:
        return None
    return Flag(code="oracle_exceeded", severity="note", section=section, target=target,
                message=f"{label}, {cohort} cohort: C-index {fmt_auc(c_index)} above the oracle's "
                        f"{fmt_auc(oracle.c_index, oracle.c_lower, oracle.c_upper)}: the oracle (the generator's "
                        "true risk) is itself estimated on these patients, a reference with an interval, "
                        "not a ceiling")


def oracle_exceeded(results: Results) -> list[Flag]:
    """A model's C-index above the oracle's in the same cohort: the oracle's C is a sample
    estimate (Harrell's C of the true risk in a finite cohort), so this happens by chance and
    must not be read as "better than the truth"."""
    found: list[Flag | None] = []
    oracle = results.oracle if isinstance(results.oracle, Oracle) else None
    if oracle is not None:
        found.extend(_oracle_flag("discrimination", f"oracle:model:{cohort}", "Radiomics Cox model", ev.c_index,
                                  getattr(oracle, cohort, None), cohort)
                     for cohort, ev in _evaluation(results).items())
    risk = results.risk_scores
    if risk is not None:
        found.extend(_oracle_flag("deep-scores", f"oracle:{name}:{cohort}", block.label, strat.c_index,
                                  risk.oracle.get(block.endpoint, {}).get(cohort), cohort)
                     for name, block in risk.scores.items() for cohort, strat in block.evaluation.items())
    return [flag for flag in found if flag is not None]


def unknown_category(results: Results) -> list[Flag]:
    """Missing values modelled as a category of their own ("Unknown"): a missing-indicator
    analysis, biased in general (Groenwold RHH et al. (2012), CMAJ 184:1265-1269); its HR
    describes a mix of patients, not a clinical group."""
    rows = unknown_categories(results.table_one)
    if not rows:
        return []
    listed = ", ".join(f"{row['label']} {fmt_pct(row['percent'])}" for row in rows)
    return [Flag(code="unknown_category", severity="caution", section="methods-missing", target="missing:unknown",
                 message=f"Missing values are modelled as an \u201cUnknown\u201d category ({listed} of the included "
                         "patients): the models compare that mix of patients with the known levels (a "
                         "missing-indicator analysis), so its hazard ratios are not clinical findings")]


RULES: list[Rule] = [few_events, by_construction, chance_classification, chance_response, selection_overrides,
                     optimised_cutoff, oracle_exceeded, unknown_category, *CALIBRATION_RULES, *AUC_RULES]
"""The rules :func:`compute_flags` runs, in this order; append a rule to add it."""


SEVERITY_ORDER = ("warning", "caution", "note")


def compute_flags(results: Results, rules: list[Rule] | None = None) -> list[Flag]:
    """Every flag the rules (default :data:`RULES`) find in ``results``: warnings first, then
    cautions, then notes, each in the rules' order."""
    found = [flag for rule in (RULES if rules is None else rules) for flag in rule(results)]
    return sorted(found, key=lambda flag: SEVERITY_ORDER.index(flag.severity))
