"""Template variables: what each report section shows, shaped from the typed results.

``build_context(results, figures, css)`` is everything the Jinja2 templates see. The records
of results.json are passed as the typed models of ``studyrunner.results.models`` (templates
read their attributes); the ``*_view`` functions add what a section derives from them
(exclusion counts, pass/fail counts, the learners' rows, per-time rows).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from studyrunner.protocol import ReportSection
from studyrunner.registry import LEARNERS, MAXSTAT_PMETHODS, learner_label, time_key
from studyrunner.report.calibration_view import (
    apparent_and_cross_validated,
    calibration_methods,
    decision_summary,
    first_bootstrap,
    risk_score_bootstrap,
)
from studyrunner.report.citations import METHOD_REFERENCES
from studyrunner.report.deep_view import deep_context
from studyrunner.report.figures import stage_label, uses_venn
from studyrunner.report.figures.calibration import calibration_group_rows
from studyrunner.report.figures.decision import threshold_range
from studyrunner.report.flag_view import flag_context
from studyrunner.report.formatting import AUC_DIGITS, ci_label, ci_words
from studyrunner.report.tripod import (
    SECTION_TITLES,
    TRIPOD_AI_REFERENCE,
    TRIPOD_TYPES,
    not_run_reason,
    tripod_context,
)
from studyrunner.results.models import (
    CohortEvaluation,
    CrossValidation,
    DecisionRow,
    Flow,
    ModelRecord,
    NotRun,
    Results,
    Selection,
    TableOne,
    TimeRoc,
    Validation,
)

OPTIONAL_SECTIONS = ("flow", "validation", "table_one", "radiomics", "model", "evaluation", "oracle",
                     "software", "timings", "reproducibility", "selection", "cross_validation")
# Records that only a radiomics-signature study (escc_ici_chemo) writes.
SIGNATURE_SECTIONS = ("reproducibility", "selection", "cross_validation")
# Per-cohort evaluation records of a signature study.
EVALUATION_PARTS = ("time_roc", "calibration", "decision_curves", "median_survival")
SCREENED_FEATURES_LISTED = 40  # the rest are in statistics/screening.csv of the run


def section(results: Results, key: str) -> Any:
    """A section of results.json, or None when it was not run or not recorded."""
    return None if not_run_reason(results, key) else getattr(results, key)


def flow_view(flow: Flow) -> dict[str, Any]:
    """Exclusion counts for the flow section.

    Keys: ``n_excluded``; ``n_by_stage`` (a Counter: stage -> n, 0 for stages without exclusions);
    ``by_stage`` (list of {"stage", "label", "n", "reasons": [{"reason", "n"}]});
    ``exclusions`` (records with "stage_label" added); ``training_n`` and ``test_n`` (partition
    sums); ``unaccounted`` (n_clinical − excluded − included; 0 when the counts agree).
    """
    stages: dict[str, Counter[str]] = {}
    for record in flow.exclusions:
        stages.setdefault(record.stage, Counter())[record.reason] += 1
    return {
        "n_excluded": len(flow.exclusions),
        "n_by_stage": Counter({stage: sum(counts.values()) for stage, counts in stages.items()}),
        "by_stage": [{"stage": stage, "label": stage_label(stage), "n": sum(counts.values()),
                      "reasons": [{"reason": r, "n": n} for r, n in counts.most_common()]}
                     for stage, counts in stages.items()],
        "exclusions": [{**record.model_dump(), "stage_label": stage_label(record.stage)} for record in flow.exclusions],
        "training_n": sum(flow.partitions.get(p, 0) for p in flow.training_partitions),
        "test_n": sum(flow.partitions.get(p, 0) for p in flow.test_partitions),
        "unaccounted": flow.n_clinical - len(flow.exclusions) - flow.n_included,
    }


def validation_view(validation: Validation) -> dict[str, Any]:
    """Expectations with a ``status`` of "pass", "fail" (error severity) or "warning", and counts.

    Keys: ``expectations`` (the records with "status" added), ``n_pass``, ``n_fail``, ``n_warning``.
    """
    expectations = []
    for record in validation.expectations:
        status = "pass" if record.success else "warning" if record.severity == "warning" else "fail"
        expectations.append({**record.model_dump(), "status": status})
    counts = Counter(e["status"] for e in expectations)
    return {"expectations": expectations, "n_pass": counts["pass"], "n_fail": counts["fail"],
            "n_warning": counts["warning"]}


def table_one_view(table_one: TableOne, endpoints: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Table 1 layout facts.

    Keys: ``wide`` (needs a landscape page: more than five value columns), ``tests`` (one
    {"type", "tests"} line per variable type for the footnote), ``missing`` (per variable with
    missing values in the first group: {"label", "n"}), ``time_digits`` (decimals of each
    time-to-event column's medians: none for an endpoint timed in days, else one).
    """
    groups = list(table_one.groups)
    tests: dict[str, set[str]] = {}
    missing = []
    for variable in table_one.variables:
        for result in variable.tests:
            if result and result.test:
                tests.setdefault(variable.type, set()).add(result.test)
        if variable.type == "continuous" and groups:
            first = variable.summary.get(groups[0])
            if first is not None and first.missing:
                missing.append({"label": variable.label or variable.column, "n": first.missing})
    return {"wide": len(groups) + len(table_one.comparisons) > 5,
            "tests": [{"type": t, "tests": ", ".join(sorted(names))} for t, names in sorted(tests.items())],
            "missing": missing,
            "time_digits": {getattr(e, "time", None): 0 if getattr(e, "unit", None) == "days" else 1
                            for e in (endpoints or {}).values() if getattr(e, "time", None)}}


def sample_size_view(results: Results) -> dict[str, Any] | None:
    """Events per candidate predictor and per model term in the training set (Riley et al., BMJ 2020).

    Keys: ``events``, ``n_candidates``, ``n_terms``, ``epp_candidates``, ``epp_terms`` (None when
    the divisor is missing or zero). None when the run has no training evaluation.
    """
    evaluation = section(results, "evaluation") or {}
    training = evaluation.get("training")
    if training is None or training.n_events is None:
        return None
    model = section(results, "model")
    n_candidates = model.screening.n_candidates if model else None
    n_terms = (len(model.coefficients) if model else 0) or None
    events = training.n_events
    return {"events": events, "n_candidates": n_candidates, "n_terms": n_terms,
            "epp_candidates": events / n_candidates if n_candidates else None,
            "epp_terms": events / n_terms if n_terms else None}


def signature_study(results: Results) -> bool:
    """True for a radiomics-signature study: results.json has one of its records (a result,
    or a "not_run" record saying why it is missing; null means the plan had none) or its model
    is a stepwise Cox model."""
    model = section(results, "model")
    return (any(getattr(results, key) is not None for key in SIGNATURE_SECTIONS)
            or (model is not None and model.method == "stepwise_cox"))


def part_reason(record: Any, cohort: str, key: str) -> str | None:
    """Why an evaluation record of one cohort cannot be shown, or None when it is there."""
    if isinstance(record, NotRun):
        return record.not_run
    if not record:
        return f"the {cohort} evaluation has no '{key}' record"
    return None


def learner_view(selection: Selection) -> dict[str, Any]:
    """The learners of the feature selection, for the methods text and the selection table.

    Keys: ``learners`` (rows in the registry's order: {"name", "label", "method", "package",
    "package_ran" (the implementation string names the package), "implementation", "error",
    "package_error" (the installed package stopped with it and the stand-in ran),
    "own_stand_in" (the implementation that ran is studyrunner's own, not another package's),
    "ran", "n_features", "features"}), ``n_ran``, ``failed`` (rows with an error),
    ``combined`` (rows {"feature", "votes"}: how many learners chose each combined feature),
    ``stand_ins`` (rows where another implementation replaced the named package), ``venn`` (the
    sets figure is a Venn diagram rather than an UpSet plot).
    """
    recorded = selection.learners
    names = [n for n in LEARNERS if n in recorded] + [n for n in recorded if n not in LEARNERS]
    rows: list[dict[str, Any]] = []
    for name in names:
        record = recorded[name]
        info = LEARNERS.get(name)
        package = info.package if info else None
        implementation = record.implementation
        rows.append({"name": name, "label": learner_label(name), "method": info.method if info else None,
                     "package": package, "implementation": implementation, "error": record.error,
                     "package_error": record.package_error,
                     "ran": not record.error, "n_features": len(record.features), "features": record.features,
                     "package_ran": bool(package and implementation
                                         and implementation.lower().startswith(package.lower())),
                     "own_stand_in": bool(implementation and implementation.lower().startswith("studyrunner"))})
    votes = Counter(f for row in rows if row["ran"] for f in row["features"])
    n_ran = sum(row["ran"] for row in rows)
    return {"learners": rows, "n_ran": n_ran, "venn": uses_venn(n_ran),
            "screened_shown": selection.screened[:SCREENED_FEATURES_LISTED],
            "screened_not_shown": max(0, len(selection.screened) - SCREENED_FEATURES_LISTED),
            "failed": [row for row in rows if not row["ran"]],
            "stand_ins": [row for row in rows if row["ran"] and row["package"] and not row["package_ran"]],
            "combined": [{"feature": f, "votes": votes[f]} for f in selection.combined]}


def time_roc_rows(time_roc: TimeRoc) -> list[dict[str, Any]]:
    """One row per time: {"time", "auc", "se", "lower", "upper", "reason", "cases", "controls",
    "withheld"} (reason: why the AUC is missing; withheld: the AUC kept back for too few cases or
    controls, a WithheldAuc, else None)."""
    def count(values: list[int | None], i: int) -> int | None:
        return values[i] if i < len(values) else None

    return [{"time": t, "auc": time_roc.auc[i], "se": time_roc.se[i], "lower": time_roc.lower[i],
             "upper": time_roc.upper[i], "reason": time_roc.reasons.get(time_key(t)),
             "cases": count(time_roc.cases, i), "controls": count(time_roc.controls, i),
             "withheld": time_roc.withheld.get(time_key(t))}
            for i, t in enumerate(time_roc.times)]


def evaluation_parts(evaluation: dict[str, CohortEvaluation]) -> dict[str, dict[str, Any]]:
    """The signature-study records of each evaluated cohort, ready for the templates.

    Per cohort: the records themselves under ``time_roc``, ``calibration``, ``decision_curves``,
    ``median_survival`` (None when not run), ``time_roc_rows``, ``calibration_groups`` (the frozen
    calibration's risk groups of every time), ``decision_summary`` (the recorded counts per time),
    ``decision_range`` (the protocol's clinically sensible thresholds, or None),
    ``group_n`` (patients per risk group, from the numbers at risk at time 0)
    and ``not_run`` {record: reason}."""
    parts: dict[str, dict[str, Any]] = {}
    for name, ev in evaluation.items():
        reasons = {key: part_reason(getattr(ev, key), ev.cohort_label.lower(), key) for key in EVALUATION_PARTS}
        view: dict[str, Any] = {key: None if reasons[key] else getattr(ev, key) for key in EVALUATION_PARTS}
        view["not_run"] = reasons
        view["time_roc_rows"] = time_roc_rows(view["time_roc"]) if view["time_roc"] else []
        view["calibration_groups"] = calibration_group_rows(view["calibration"]) if view["calibration"] else []
        view["decision_summary"] = decision_summary(ev.decision_summary) if view["decision_curves"] else []
        view["decision_range"] = threshold_range(ev.decision_summary)
        risk = ev.risk_table
        starts_at_zero = risk is not None and bool(risk.times) and risk.times[0] == 0
        view["group_n"] = {g: getattr(risk, g)[0] for g in ("low", "high") if starts_at_zero and getattr(risk, g)}
        parts[name] = view
    return parts


def signature_methods(evaluation: dict[str, CohortEvaluation]) -> dict[str, Any]:
    """What the methods text says about the evaluation, from the first cohort that recorded each part.

    Keys: ``time_roc`` (the record or None), ``calibration_times``, ``calibration_groups`` (number of
    risk groups), ``decision_times``, ``threshold_min``, ``threshold_max`` (of the decision curves) and
    ``not_run`` {part: why the first cohort lacks it}."""
    def first(key: str) -> Any:
        return next((getattr(ev, key) for ev in evaluation.values()
                     if part_reason(getattr(ev, key), "", key) is None), None)

    curves: dict[str, list[DecisionRow]] = first("decision_curves") or {}
    thresholds = [row.threshold for rows in curves.values() for row in rows]
    return {"time_roc": first("time_roc"),
            **calibration_methods(evaluation),
            "decision_times": list(curves),
            "threshold_min": min(thresholds) if thresholds else None,
            "threshold_max": max(thresholds) if thresholds else None,
            "not_run": {key: next((part_reason(getattr(ev, key), ev.cohort_label.lower(), key)
                                   for ev in evaluation.values()), "no cohort was evaluated")
                        for key in EVALUATION_PARTS}}


def cross_validation_rows(cv: CrossValidation, training_roc: TimeRoc | None = None) -> list[dict[str, Any]]:
    """One row per time: {"time", "training", "validation"} (each a FoldSummary or None) and
    "withheld": the reason the fold medians are not to be quoted at that time (the training
    cohort's AUC there rests on too few cases or controls, ``TimeRoc.withheld``; every fold has
    fewer still), else None."""
    def withheld(t: float) -> str | None:
        key = time_key(t)
        return training_roc.reasons.get(key) if training_roc is not None and key in training_roc.withheld else None

    return [{"time": t, "training": cv.training.get(time_key(t)), "validation": cv.validation.get(time_key(t)),
             "withheld": withheld(t)} for t in cv.times]


def signature_summary(evaluation: dict[str, CohortEvaluation], cv_rows: list[dict[str, Any]],
                      model: ModelRecord | None) -> dict[str, Any] | None:
    """What the structured summary of a signature study shows: the test cohort when there is one,
    else the training cohort, whose figures are then "apparent" (the data that chose the features).

    Keys: ``name``, ``cohort`` (the CohortEvaluation), ``apparent``, ``rows`` (per time of the
    time-dependent ROC: {"time", "auc" (a ``time_roc_rows`` row), "cv" (a ``cross_validation_rows``
    row or None)}), ``optimism`` (apparent AUC minus the validation folds' median, at the times
    where both are shown: {"time", "value"}), ``search`` (the cut-off search's test with its
    adjusted p when this cohort chose the cut-off, else None). None without an evaluated cohort."""
    name = "test" if "test" in evaluation else "training" if "training" in evaluation else None
    if name is None:
        return None
    cohort = evaluation[name]
    apparent = name == "training"
    time_roc = cohort.time_roc if isinstance(cohort.time_roc, TimeRoc) else None
    by_time = {time_key(row["time"]): row for row in cv_rows}
    rows = [{"time": row["time"], "auc": row, "cv": by_time.get(time_key(row["time"]))}
            for row in (time_roc_rows(time_roc) if time_roc else [])]
    optimism = []
    for row in rows:
        cv = row["cv"]
        validation = cv["validation"] if cv and not cv["withheld"] else None
        if apparent and row["auc"]["auc"] is not None and validation is not None and validation.median is not None:
            optimism.append({"time": row["time"], "value": row["auc"]["auc"] - validation.median})
    cutoff = model.cutoff if model else None
    search = cutoff.search_test if apparent and cutoff is not None and cutoff.p_value is not None else None
    return {"name": name, "cohort": cohort, "apparent": apparent, "rows": rows, "optimism": optimism,
            "search": search}


def results_value(results: Results, path: str) -> Any:
    """The value at a dotted path of results.json ("evaluation.training.time_roc.auc.0": dict keys
    and list indices; "count" after a list: its length; "key=value" after a list of records: the
    first record whose ``key`` is ``value``), or None where the path leads nowhere."""
    value: Any = results.model_dump(mode="json")
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part == "count":
            value = len(value)
        elif isinstance(value, list) and "=" in part:
            key, wanted = part.split("=", 1)
            value = next((item for item in value if isinstance(item, dict) and str(item.get(key)) == wanted), None)
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def missing_reason(results: Results, path: str) -> str:
    """Why results.json has no number at ``path``: a time-dependent AUC's recorded reason (withheld
    for too few cases or controls, or none estimable), "not reached" for a Kaplan-Meier median
    whose record is there, else "not available in this run"."""
    auc = re.fullmatch(r"(.+\.time_roc)\.(?:auc|lower|upper|se)\.(\d+)", path)
    if auc:
        record = results_value(results, auc.group(1))
        times = record.get("times", []) if isinstance(record, dict) else []
        index = int(auc.group(2))
        if index < len(times) and time_key(times[index]) in record.get("reasons", {}):
            reason = record["reasons"][time_key(times[index])]
            return f"withheld: {reason}" if time_key(times[index]) in record.get("withheld", {}) else reason
    parent, _, leaf = path.rpartition(".")
    if leaf in ("median", "followup_median") and isinstance(results_value(results, parent), dict):
        return "not reached"
    return "not available in this run"


def published_view(results: Results) -> dict[str, Any] | None:
    """The "Published vs this run" section: None without ``report.published``.

    Keys: ``source`` (the PublishedSource), ``rows`` ({"result" (a PublishedResult), "run" (this
    run's value at its ``results_path``, None when there is none or it is not a number),
    "path_missing" (a path was given but leads to no number)}), ``features`` (the
    PublishedFeature ``record`` with its ``learner_labels``, or [])."""
    meta = results.report_meta
    source = meta.published if meta is not None else None
    if source is None:
        return None
    rows = []
    for result in source.results:
        value = results_value(results, result.results_path) if result.results_path else None
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        rows.append({"result": result, "run": number,
                     "path_missing": bool(result.results_path) and number is None,
                     "reason": missing_reason(results, result.results_path) if result.results_path else None})
    features = [{"record": f, "learner_labels": [learner_label(name) for name in f.learners]}
                for f in results.published_features or []]
    return {"source": source, "rows": rows, "features": features}


def build_context(results: Results, figures: dict[str, str], css: str) -> dict[str, Any]:
    """Everything the templates see. Records are typed models; a missing optional record is None,
    so that the templates run under StrictUndefined (a typo in a template fails loudly instead of
    printing nothing)."""
    study = results.study
    meta = results.report_meta
    evaluation = section(results, "evaluation") or {}
    endpoints = results.endpoints
    primary_key = results.primary_endpoint
    flow = section(results, "flow")
    validation = section(results, "validation")
    table_one = section(results, "table_one")
    return {
        "css": css,
        "study": study,
        "tripod_type_text": TRIPOD_TYPES.get(str(study.tripod_type).lower()),
        "meta": meta if meta is not None else ReportSection(title=study.name),
        "primary": endpoints.get(primary_key) if primary_key else None,
        "primary_key": primary_key,
        "secondary": {k: v for k, v in endpoints.items() if k != primary_key},
        "flow": flow,
        "flow_view": flow_view(flow) if flow else None,
        "validation": validation,
        "validation_view": validation_view(validation) if validation else None,
        "table_one": table_one,
        "table_one_view": table_one_view(table_one, endpoints) if table_one else None,
        "radiomics": section(results, "radiomics"),
        "model": section(results, "model"),
        "evaluation": evaluation,
        "oracle": section(results, "oracle"),
        "software": section(results, "software"),
        "timings": section(results, "timings"),
        "sample_size": sample_size_view(results),
        "not_run": {key: not_run_reason(results, key) for key in OPTIONAL_SECTIONS},
        "figures": dict(figures),
        "km_cohorts": [name for name in evaluation if f"km_{name}" in figures],
        **tripod_context(results),
        "tripod_reference": TRIPOD_AI_REFERENCE,
        "ci": ci_label(),
        "ci_words": ci_words(),
        "risk_bootstrap": risk_score_bootstrap(results.risk_scores),
        "section_titles": SECTION_TITLES,
        **signature_context(results, evaluation),
        "published": published_view(results),
        **deep_context(results),
        **flag_context(results),
    }


def model_aic(model: ModelRecord) -> float | None:
    """The final model's AIC: the stepwise search's, else the Cox fit's."""
    if model.aic is not None:
        return model.aic
    return model.fit.aic if model.fit else None


def signature_context(results: Results, evaluation: dict[str, CohortEvaluation]) -> dict[str, Any]:
    """The template variables of the radiomics-signature sections (all None/empty when the
    study is not one: ``signature`` is False)."""
    signature = signature_study(results)
    selection = section(results, "selection")
    cv = section(results, "cross_validation")
    model = section(results, "model")
    cutoff = model.cutoff if model else None
    training = evaluation.get("training")
    training_roc = training.time_roc if training is not None and isinstance(training.time_roc, TimeRoc) else None
    cv_rows = cross_validation_rows(cv, training_roc) if cv else []
    return {
        "signature": signature,
        "reproducibility": section(results, "reproducibility"),
        "selection": selection,
        "learner_view": learner_view(selection) if selection else None,
        "cross_validation": cv,
        "cv_rows": cv_rows,
        "cv_by_time": {time_key(row["time"]): row for row in cv_rows},
        "cv_calibration_rows": apparent_and_cross_validated(training, cv) if signature else [],
        "calibration_bootstrap": first_bootstrap(ev.calibration for ev in evaluation.values()),
        "eval_parts": evaluation_parts(evaluation) if evaluation else {},
        "maxstat_pmethod": MAXSTAT_PMETHODS.get(str(cutoff.pmethod), cutoff.pmethod) if cutoff else None,
        "model_aic": model_aic(model) if model else None,
        "auc_digits": AUC_DIGITS,
        "refs": METHOD_REFERENCES,
        "signature_methods": signature_methods(evaluation) if signature else None,
        "signature_summary": signature_summary(evaluation, cv_rows, model) if signature else None,
    }
