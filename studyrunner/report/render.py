"""Render a run's TRIPOD+AI report (HTML and PDF) from its results.json alone.

``render_report(run_dir)`` reads ``run_dir/results.json``, draws the figures into
``run_dir/report/figures/``, renders ``reports/templates/report.html.j2`` with Jinja2 into
``run_dir/report/report.html`` and prints it to ``run_dir/report.pdf`` with WeasyPrint.
Nothing else of the run is read, so ``studyrunner report RUN`` can re-render a finished run.

Section order and the checklist follow TRIPOD+AI: Collins GS, Moons KGM, Dhiman P, et al.
"TRIPOD+AI statement: updated guidance for reporting clinical prediction models that use
regression or machine learning methods", BMJ 2024;385:e078378.

A radiomics-signature study (seed 001: reproducibility filter, six learners, stepwise Cox,
time-dependent ROC, calibration, decision curves, cross-validation) is recognised by its
records (``signature_study``); its extra sections are printed only then, each as "Not run"
when its record is absent, so a study without them (seed 000) renders as before.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from studyrunner.errors import InputError
from studyrunner.paths import repo_folder
from studyrunner.report.deep_view import deep_context
from studyrunner.report.figures import draw_figures, learner_label, stage_label, uses_venn
from studyrunner.report.formatting import AUC_DIGITS, FILTERS, ci_label, ci_words

REPORTS_ENV_VAR = "STUDYRUNNER_REPORTS"
MAIN_TEMPLATE = "report.html.j2"
STYLESHEET = "style.css"

TRIPOD_TYPES = {
    "1a": "development only, performance from the development data",
    "1b": "development with validation by resampling (bootstrap or cross-validation)",
    "2a": "development and validation on a random split of the data",
    "2b": "development and validation on a non-random split of the data",
    "3": "development on one data set and validation on separate data",
    "4": "validation of an existing model on separate data",
}

TRIPOD_AI_REFERENCE = "Collins GS, Moons KGM, Dhiman P, et al. BMJ 2024;385:e078378"

# TRIPOD+AI checklist (Collins et al., BMJ 2024): (item, topic, report section anchor or None).
# None: the item needs the authors' words; the automated report cannot answer it.
TRIPOD_AI_ITEMS: tuple[tuple[str, str, str | None], ...] = (
    ("1", "Title", "title"),
    ("2", "Abstract", "summary"),
    ("3a", "Healthcare context and rationale", None),
    ("3b", "Target population and intended use", None),
    ("3c", "Known health inequalities", None),
    ("4", "Objectives", "summary"),
    ("5a", "Sources of data", "methods-data"),
    ("5b", "Dates of data collection", None),
    ("6a", "Setting and centres", None),
    ("6b", "Eligibility criteria", "methods-participants"),
    ("6c", "Treatments received", None),
    ("7", "Data preparation and quality checks", "validation"),
    ("8a", "Outcome definition", "methods-outcome"),
    ("8b", "Outcome assessors", None),
    ("8c", "Blinding of outcome assessment", None),
    ("9a", "Choice of initial predictors", "methods-predictors"),
    ("9b", "Predictor definition and measurement", "methods-predictors"),
    ("9c", "Predictor assessors and blinding", None),
    ("10", "Sample size", "methods-sample-size"),
    ("11", "Missing data", "methods-missing"),
    ("12a", "Use of the data (partitioning)", "methods-analysis"),
    ("12b", "Handling of predictors", "methods-analysis"),
    ("12c", "Model type, building and internal validation", "methods-analysis"),
    ("12d", "Heterogeneity across clusters", None),
    ("12e", "Performance measures", "methods-analysis"),
    ("12f", "Model updating", None),
    ("12g", "How predictions were calculated for evaluation", "methods-analysis"),
    ("13", "Class imbalance", None),
    ("14", "Fairness", None),
    ("15", "Model output", "model"),
    ("16", "Differences between development and evaluation data", "table-one"),
    ("17", "Ethical approval", "declarations"),
    ("18a", "Funding", "declarations"),
    ("18b", "Conflicts of interest", "declarations"),
    ("18c", "Protocol", "title"),
    ("18d", "Registration", "declarations"),
    ("18e", "Data sharing", "declarations"),
    ("18f", "Code sharing and software", "software"),
    ("19", "Patient and public involvement", None),
    ("20a", "Participant flow", "flow"),
    ("20b", "Participant characteristics", "table-one"),
    ("20c", "Development vs evaluation data", "table-one"),
    ("21", "Number of participants and outcome events", "discrimination"),
    ("22", "Full model specification", "model"),
    ("23a", "Model performance with confidence intervals", "discrimination"),
    ("23b", "Heterogeneity of performance", None),
    ("24", "Model updating results", None),
    ("25", "Interpretation", None),
    ("26", "Limitations", None),
    ("27a", "Handling of poor-quality or unavailable input", "validation"),
    ("27b", "User interaction and expertise", None),
    ("27c", "Applicability and future research", None),
)

SECTION_TITLES = {
    "title": "Title page",
    "summary": "Summary",
    "methods-data": "Methods: source of data",
    "methods-participants": "Methods: participants",
    "methods-outcome": "Methods: outcome",
    "methods-predictors": "Methods: predictors",
    "methods-sample-size": "Methods: sample size",
    "methods-missing": "Methods: missing data",
    "methods-analysis": "Methods: statistical analysis",
    "flow": "Participant flow",
    "validation": "Clinical-table validation",
    "table-one": "Participant characteristics",
    "model": "Model",
    "stratification": "Risk stratification",
    "discrimination": "Discrimination",
    "software": "Software and reproducibility",
    "reproducibility": "Feature reproducibility",
    "selection": "Feature selection",
    "calibration": "Calibration",
    "decision-curves": "Decision curves",
    "cross-validation": "Internal validation: cross-validation",
    "methods-deep": "Methods: deep-learning risk scores",
    "deep-scores": "Deep-learning risk scores",
    "deep-clinical": "Risk score with clinical factors",
    "deep-response": "Response scores: PRS and PDS",
    "deep-explanations": "Explanations: Grad-CAM maps",
    "declarations": "Declarations",
    "checklist": "TRIPOD+AI checklist",
}

# The results.json record each report section is drawn from (for marking checklist rows "not run").
SECTION_SOURCES = {
    "methods-participants": "flow",
    "methods-predictors": "radiomics",
    "methods-analysis": "model",
    "flow": "flow",
    "validation": "validation",
    "table-one": "table_one",
    "model": "model",
    "discrimination": "evaluation",
    "software": "software",
}

OPTIONAL_SECTIONS = ("flow", "validation", "table_one", "radiomics", "model", "evaluation", "oracle",
                     "software", "timings", "reproducibility", "selection", "cross_validation")

# Records that only a radiomics-signature study (seed 001) writes.
SIGNATURE_SECTIONS = ("reproducibility", "selection", "cross_validation")
# Per-cohort evaluation records of a signature study.
EVALUATION_PARTS = ("time_roc", "calibration", "decision_curves", "median_survival")
LEARNER_ORDER = ("elastic_net", "lasso", "coxboost", "gbm", "rsf", "superpc")
# The R package each learner is named after (CoxBoost, randomForestSRC and superpc are CRAN-only).
LEARNER_PACKAGES = {"elastic_net": "glmnet", "lasso": "glmnet", "coxboost": "CoxBoost", "gbm": "gbm",
                    "rsf": "randomForestSRC", "superpc": "superpc"}
LEARNER_METHODS = {
    "elastic_net": "elastic-net penalised Cox regression (Simon et al., J Stat Softw 2011)",
    "lasso": "lasso penalised Cox regression (Tibshirani, Stat Med 1997)",
    "coxboost": "likelihood-based componentwise boosting (Binder & Schumacher, BMC Bioinformatics 2008)",
    "gbm": "gradient boosting machine with the Cox partial likelihood (Ridgeway; Friedman, Ann Stat 2001)",
    "rsf": "random survival forest (Ishwaran et al., Ann Appl Stat 2008)",
    "superpc": "supervised principal components (Bair & Tibshirani, PLoS Biol 2004)",
}
# Citations printed in the signature methods text (templates hold no digits, so the years live here).
METHOD_REFERENCES = {
    "icc": "Shrout & Fleiss, Psychol Bull 1979; McGraw & Wong, Psychol Methods 1996",
    "stepwise": "Venables & Ripley, Modern Applied Statistics with S, 2002: MASS::stepAIC",
    "maxstat": "Lausen & Schumacher, Biometrics 1992; R package maxstat",
    "time_roc": "Blanche, Dartigues & Jacqmin-Gadda, Stat Med 2013",
    "decision_curves": "Vickers & Elkin, Med Decis Making 2006; censored outcomes as in Vickers et al., "
                       "BMC Med Inform Decis Mak 2008",
    "densenet": "Huang et al., CVPR 2017",
    "gradcam": "Selvaraju et al., ICCV 2017",
    "ssim": "Wang et al., IEEE Trans Image Process 2004",
    "delong": "DeLong, DeLong & Clarke-Pearson, Biometrics 1988",
    "youden": "Youden, Cancer 1950",
    "xtile": "Camp, Dolled-Filhart & Rimm, Clin Cancer Res 2004",
    "nomogram": "Harrell, Regression Modeling Strategies, 2015: rms::nomogram",
    "seed000": "Transl Lung Cancer Res 2022;11(4):670-685",
}
# maxstat's p-value approximations (maxstat::maxstat.test, argument pmethod).
MAXSTAT_PMETHODS = {
    "Lau94": "the improved Bonferroni inequality of Lausen, Sauerbrei & Schumacher (1994)",
    "Lau92": "the asymptotic Brownian-bridge approximation of Lausen & Schumacher (1992)",
    "HL": "the conditional approximation of Hothorn & Lausen (2003)",
    "exactGauss": "the exact Gaussian approximation of Hothorn & Lausen (2003)",
    "condMC": "conditional Monte-Carlo (Hothorn & Lausen 2003)",
}
META_FIELDS = ("funding", "ethics", "registration", "data_availability", "conflicts")


def reports_dir() -> Path:
    """The folder holding ``templates/`` and ``style.css``: <repo>/reports or $STUDYRUNNER_REPORTS."""
    return repo_folder("reports", REPORTS_ENV_VAR)


def load_results(path: Path) -> dict[str, Any]:
    """Read results.json; errors name the file (and the line and column of a JSON syntax error)."""
    if not path.is_file():
        raise InputError(f"{path}: results file not found (is this a finished run folder?)")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from error
    if not isinstance(results, dict):
        raise InputError(f"{path}: top level must be a JSON object, found {type(results).__name__}")
    study = results.get("study")
    if not isinstance(study, dict):
        raise InputError(f"{path}: required key 'study' is missing or not an object")
    missing = [key for key in ("name", "synthetic") if key not in study]
    if missing:
        raise InputError(f"{path}: required key(s) {', '.join('study.' + k for k in missing)} missing")
    return results


def not_run_reason(results: Mapping[str, Any], key: str) -> str | None:
    """Why an optional section cannot be shown, or None when results.json has it.

    A stage that was skipped records ``{"not_run": "<reason>"}`` in place of its section; a
    section that is absent or null is reported as not recorded.
    """
    value = results.get(key)
    if isinstance(value, Mapping) and "not_run" in value:
        return str(value["not_run"])
    if not value:
        return f"results.json has no '{key}' record"
    return None


def _section(results: Mapping[str, Any], key: str) -> Any:
    return None if not_run_reason(results, key) else results[key]


# Keys the schema marks optional (or that an older run may lack), with the value used when absent.
SECTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "flow": {"n_with_images": None, "exclusions": [], "partitions": {}, "training_partitions": [],
             "test_partitions": [], "split_method": None},
    "radiomics": {"image_types": [], "feature_classes": [], "settings": {}, "pyradiomics_version": None,
                  "params_file": None},
    "model": {"implementation": {}},
    "software": {"python": None, "platform": None, "packages": {}, "r": None, "r_packages": {},
                 "cran_fallbacks": []},
}


def _section_with_defaults(results: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """A section of results.json with its optional keys filled in, or None when it was not run."""
    record = _section(results, key)
    return None if record is None else {**SECTION_DEFAULTS.get(key, {}), **record}


def flow_view(flow: Mapping[str, Any]) -> dict[str, Any]:
    """Exclusion counts for the flow section.

    Keys: ``n_excluded``; ``n_by_stage`` (a Counter: stage -> n, 0 for stages without exclusions);
    ``by_stage`` (list of {"stage", "label", "n", "reasons": [{"reason", "n"}]});
    ``exclusions`` (records with "stage_label" added); ``training_n`` and ``test_n`` (partition
    sums); ``unaccounted`` (n_clinical − excluded − included; 0 when the counts agree).
    """
    exclusions = list(flow.get("exclusions") or [])
    stages: dict[str, Counter[str]] = {}
    for record in exclusions:
        stages.setdefault(str(record.get("stage")), Counter())[str(record.get("reason"))] += 1
    partitions = flow.get("partitions") or {}
    n_clinical, n_included = flow.get("n_clinical"), flow.get("n_included")
    return {
        "n_excluded": len(exclusions),
        "n_by_stage": Counter({stage: sum(counts.values()) for stage, counts in stages.items()}),
        "by_stage": [{"stage": stage, "label": stage_label(stage), "n": sum(counts.values()),
                      "reasons": [{"reason": r, "n": n} for r, n in counts.most_common()]}
                     for stage, counts in stages.items()],
        "exclusions": [{**record, "stage_label": stage_label(str(record.get("stage")))} for record in exclusions],
        "training_n": sum(int(partitions.get(p, 0)) for p in flow.get("training_partitions") or []),
        "test_n": sum(int(partitions.get(p, 0)) for p in flow.get("test_partitions") or []),
        "unaccounted": (n_clinical - len(exclusions) - n_included
                        if n_clinical is not None and n_included is not None else 0),
    }


def validation_view(validation: Mapping[str, Any]) -> dict[str, Any]:
    """Expectations with a ``status`` of "pass", "fail" (error severity) or "warning", and counts.

    Keys: ``expectations`` (the records with "status" added), ``n_pass``, ``n_fail``, ``n_warning``.
    """
    expectations = []
    for record in validation.get("expectations") or []:
        if record.get("success"):
            status = "pass"
        else:
            status = "warning" if record.get("severity") == "warning" else "fail"
        expectations.append({"column": None, "failing_rows": [], "unexpected_count": None, **record,
                             "status": status})
    counts = Counter(e["status"] for e in expectations)
    return {"expectations": expectations, "n_pass": counts["pass"], "n_fail": counts["fail"],
            "n_warning": counts["warning"]}


def table_one_view(table_one: Mapping[str, Any]) -> dict[str, Any]:
    """Table 1 layout facts.

    Keys: ``wide`` (needs a landscape page: more than five value columns), ``tests`` (one
    {"type", "tests"} line per variable type for the footnote), ``missing`` (per variable with
    missing values in the first group: {"label", "n"}).
    """
    groups = list(table_one.get("groups") or {})
    comparisons = list(table_one.get("comparisons") or [])
    tests: dict[str, set[str]] = {}
    missing = []
    for variable in table_one.get("variables") or []:
        for result in variable.get("tests") or []:
            if result and result.get("test"):
                tests.setdefault(variable["type"], set()).add(result["test"])
        if variable["type"] == "continuous" and groups:
            n_missing = ((variable.get("summary") or {}).get(groups[0]) or {}).get("missing")
            if n_missing:
                missing.append({"label": variable.get("label") or variable["column"], "n": n_missing})
    return {"wide": len(groups) + len(comparisons) > 5,
            "tests": [{"type": t, "tests": ", ".join(sorted(names))} for t, names in sorted(tests.items())],
            "missing": missing}


def sample_size_view(results: Mapping[str, Any]) -> dict[str, Any] | None:
    """Events per candidate predictor and per model term in the training set (Riley et al., BMJ 2020).

    Keys: ``events``, ``n_candidates``, ``n_terms``, ``epp_candidates``, ``epp_terms`` (None when
    the divisor is missing or zero). None when the run has no training evaluation.
    """
    evaluation = _section(results, "evaluation") or {}
    training = evaluation.get("training")
    if not training or training.get("n_events") is None:
        return None
    model = _section(results, "model") or {}
    n_candidates = (model.get("screening") or {}).get("n_candidates")
    n_terms = len(model.get("coefficients") or []) or None
    events = training["n_events"]
    return {"events": events, "n_candidates": n_candidates, "n_terms": n_terms,
            "epp_candidates": events / n_candidates if n_candidates else None,
            "epp_terms": events / n_terms if n_terms else None}


def signature_study(results: Mapping[str, Any]) -> bool:
    """True for a radiomics-signature study: results.json has one of its records (a result,
    or a "not_run" record saying why it is missing; null means the plan had none) or its model
    is a stepwise Cox model."""
    model = results.get("model")
    return (any(results.get(key) is not None for key in SIGNATURE_SECTIONS)
            or (isinstance(model, Mapping) and model.get("method") == "stepwise_cox"))


def _part_reason(record: Any, cohort: str, key: str) -> str | None:
    """Why an evaluation record of one cohort cannot be shown, or None when it is there."""
    if isinstance(record, Mapping) and "not_run" in record:
        return str(record["not_run"])
    if not record:
        return f"the {cohort} evaluation has no '{key}' record"
    return None


SCREENED_FEATURES_LISTED = 40  # the rest are in statistics/screening.csv of the run


def learner_view(selection: Mapping[str, Any]) -> dict[str, Any]:
    """The learners of the feature selection, for the methods text and the selection table.

    Keys: ``learners`` (rows in the protocol's order: {"name", "label", "method", "package",
    "package_ran" (the implementation string names the package), "implementation", "error",
    "ran", "n_features", "features"}), ``n_ran``, ``failed`` (rows with an error),
    ``combined`` (rows {"feature", "votes"}: how many learners chose each combined feature),
    ``stand_ins`` (rows where another implementation replaced the named package), ``venn`` (the
    sets figure is a Venn diagram rather than an UpSet plot).
    """
    recorded = selection.get("learners") or {}
    names = [n for n in LEARNER_ORDER if n in recorded] + [n for n in recorded if n not in LEARNER_ORDER]
    rows = []
    for name in names:
        record = recorded[name] or {}
        package = LEARNER_PACKAGES.get(name)
        implementation = record.get("implementation")
        features = list(record.get("features") or [])
        rows.append({"name": name, "label": learner_label(name), "method": LEARNER_METHODS.get(name),
                     "package": package, "implementation": implementation, "error": record.get("error"),
                     "ran": not record.get("error"), "n_features": len(features), "features": features,
                     "package_ran": bool(package and implementation
                                         and str(implementation).lower().startswith(package.lower()))})
    votes = Counter(f for row in rows if row["ran"] for f in row["features"])
    n_ran = sum(row["ran"] for row in rows)
    screened = list(selection.get("screened") or [])
    return {"learners": rows, "n_ran": n_ran, "venn": uses_venn(n_ran),
            "screened_shown": screened[:SCREENED_FEATURES_LISTED],
            "screened_not_shown": max(0, len(screened) - SCREENED_FEATURES_LISTED),
            "failed": [row for row in rows if not row["ran"]],
            "stand_ins": [row for row in rows if row["ran"] and row["package"] and not row["package_ran"]],
            "combined": [{"feature": f, "votes": votes[f]} for f in selection.get("combined") or []]}


def time_roc_rows(time_roc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per time: {"time", "auc", "se", "lower", "upper", "reason"} (reason: why the AUC is missing)."""
    times = list(time_roc.get("times") or [])
    columns = {key: list(time_roc.get(key) or [None] * len(times)) for key in ("auc", "se", "lower", "upper")}
    reasons = time_roc.get("reasons") or {}
    return [{"time": t, **{key: columns[key][i] for key in columns},
             "reason": reasons.get(FILTERS["fmt_time"](t)) or reasons.get(str(t))} for i, t in enumerate(times)]


def calibration_by_time(rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Calibration rows grouped by time: [{"time", "rows" (ordered by risk group)}] in recorded order."""
    times: dict[Any, list[Mapping[str, Any]]] = {}
    for row in rows:
        times.setdefault(row["time"], []).append({"n_events": None, **row})
    return [{"time": t, "rows": sorted(group, key=lambda r: r["group"])} for t, group in times.items()]


def decision_summary(curves: Mapping[str, list[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Per time, the threshold range where the model's net benefit exceeds both treating all and
    treating none: [{"time", "from", "to", "n_better", "n_thresholds"}] ("from"/"to": the lowest and
    highest such threshold, None when there is none; ``n_better`` of the ``n_thresholds`` qualify)."""
    def beats_both(row: Mapping[str, Any]) -> bool:
        model, treat_all = row.get("net_benefit"), row.get("treat_all")
        return model is not None and model > (row.get("treat_none") or 0.0) and (treat_all is None or model > treat_all)

    summary = []
    for t, rows in curves.items():
        better = [float(r["threshold"]) for r in rows if beats_both(r)]
        summary.append({"time": t, "from": min(better) if better else None, "to": max(better) if better else None,
                        "n_better": len(better), "n_thresholds": len(rows)})
    return summary


def evaluation_parts(evaluation: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The signature-study records of each evaluated cohort, ready for the templates.

    Per cohort: the records themselves under ``time_roc``, ``calibration``, ``decision_curves``,
    ``median_survival`` (None when not run), ``time_roc_rows``, ``calibration_by_time``,
    ``decision_summary``, ``group_n`` (patients per risk group, from the numbers at risk at time 0)
    and ``not_run`` {record: reason}."""
    parts: dict[str, dict[str, Any]] = {}
    for name, ev in evaluation.items():
        reasons = {key: _part_reason(ev.get(key), str(ev.get("cohort_label", name)).lower(), key)
                   for key in EVALUATION_PARTS}
        view: dict[str, Any] = {key: None if reasons[key] else ev[key] for key in EVALUATION_PARTS}
        view["not_run"] = reasons
        view["time_roc_rows"] = time_roc_rows(view["time_roc"]) if view["time_roc"] else []
        view["calibration_by_time"] = calibration_by_time(view["calibration"]) if view["calibration"] else []
        view["decision_summary"] = decision_summary(view["decision_curves"]) if view["decision_curves"] else []
        risk = ev.get("risk_table") or {}
        starts_at_zero = bool(risk.get("times")) and float(risk["times"][0]) == 0
        view["group_n"] = {g: risk[g][0] for g in ("low", "high") if starts_at_zero and risk.get(g)}
        parts[name] = view
    return parts


def signature_methods(evaluation: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What the methods text says about the evaluation, from the first cohort that recorded each part.

    Keys: ``time_roc`` (the record or None), ``calibration_times``, ``calibration_groups`` (number of
    risk groups), ``decision_times``, ``threshold_min``, ``threshold_max`` (of the decision curves) and
    ``not_run`` {part: why the first cohort lacks it}."""
    def first(key: str) -> Any:
        return next((ev[key] for ev in evaluation.values() if _part_reason(ev.get(key), "", key) is None), None)

    calibration = first("calibration") or []
    curves = first("decision_curves") or {}
    thresholds = [float(r["threshold"]) for rows in curves.values() for r in rows]
    return {"time_roc": first("time_roc"),
            "calibration_times": list(dict.fromkeys(r["time"] for r in calibration)),
            "calibration_groups": len({r["group"] for r in calibration}) or None,
            "decision_times": list(curves),
            "threshold_min": min(thresholds) if thresholds else None,
            "threshold_max": max(thresholds) if thresholds else None,
            "not_run": {key: next((_part_reason(ev.get(key), str(ev.get("cohort_label", name)).lower(), key)
                                   for name, ev in evaluation.items()), "no cohort was evaluated")
                        for key in EVALUATION_PARTS}}


def cross_validation_rows(cv: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per time: {"time", "training", "validation"} (each {"median", "min", "max", "n"} or None)."""
    fmt_time = FILTERS["fmt_time"]
    return [{"time": t, **{key: (cv.get(key) or {}).get(fmt_time(t)) or (cv.get(key) or {}).get(str(t))
                           for key in ("training", "validation")}} for t in cv.get("times") or []]


# Where a study with CNN scores (seed 000) also answers a TRIPOD+AI item.
DEEP_CHECKLIST_SECTIONS = {
    "9b": "methods-deep", "12b": "methods-deep", "12c": "methods-deep", "12e": "methods-deep",
    "12g": "methods-deep", "15": "deep-scores", "22": "deep-scores", "23a": "deep-scores",
    "23b": "deep-clinical",
}


def checklist_view(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The TRIPOD+AI items with the report section where each is reported.

    Keys per row: ``item``, ``topic``, ``anchor`` (None: authors to complete), ``section``
    (its title), ``not_run`` (True when that section's results.json record is missing) and
    ``also`` (further sections, [{"anchor", "section"}]: the CNN sections of a seed-000 run).
    """
    deep = bool(results.get("deep"))
    rows = []
    for item, topic, anchor in TRIPOD_AI_ITEMS:
        extra = DEEP_CHECKLIST_SECTIONS.get(item) if deep else None
        if anchor is None and extra is not None:
            anchor, extra = extra, None
        rows.append({"item": item, "topic": topic, "anchor": anchor,
                     "section": SECTION_TITLES[anchor] if anchor else None,
                     "not_run": anchor in SECTION_SOURCES and not_run_reason(results, SECTION_SOURCES[anchor]) is not None,
                     "also": [{"anchor": extra, "section": SECTION_TITLES[extra]}] if extra else []})
    return rows


def build_context(results: Mapping[str, Any], figures: Mapping[str, str], css: str) -> dict[str, Any]:
    """Everything the templates see. Optional keys are filled with None so that the templates
    run under StrictUndefined (a typo in a template fails loudly instead of printing nothing)."""
    study = {key: None for key in ("description", "seed", "tripod_type", "protocol_file", "protocol_sha256",
                                   "run_id", "created_utc", "studyrunner_version")} | dict(results["study"])
    meta = ({"title": study["name"], "authors": [], "affiliations": [], "keywords": []}
            | {key: None for key in META_FIELDS} | dict(results.get("report_meta") or {}))
    endpoints = results.get("endpoints") or {}
    primary_key = results.get("primary_endpoint")
    evaluation = _section(results, "evaluation") or {}
    evaluation = {name: {"hr_reason": None, "logrank_chisq": None, "cohort_label": name, **ev}
                  for name, ev in evaluation.items() if ev}
    model = _section_with_defaults(results, "model")
    flow = _section_with_defaults(results, "flow")
    validation = _section(results, "validation")
    table_one = _section(results, "table_one")
    return {
        "css": css,
        "study": study,
        "tripod_type_text": TRIPOD_TYPES.get(str(study["tripod_type"]).lower()),
        "meta": meta,
        "primary": endpoints.get(primary_key) if primary_key else None,
        "primary_key": primary_key,
        "secondary": {k: v for k, v in endpoints.items() if k != primary_key},
        "flow": flow,
        "flow_view": flow_view(flow) if flow else None,
        "validation": validation,
        "validation_view": validation_view(validation) if validation else None,
        "table_one": table_one,
        "table_one_view": table_one_view(table_one) if table_one else None,
        "radiomics": _section_with_defaults(results, "radiomics"),
        "model": model,
        "evaluation": evaluation,
        "oracle": _section(results, "oracle"),
        "software": _section_with_defaults(results, "software"),
        "timings": _section(results, "timings"),
        "sample_size": sample_size_view(results),
        "not_run": {key: not_run_reason(results, key) for key in OPTIONAL_SECTIONS},
        "figures": dict(figures),
        "km_cohorts": [name for name in evaluation if f"km_{name}" in figures],
        "checklist": checklist_view(results),
        "tripod_reference": TRIPOD_AI_REFERENCE,
        "ci": ci_label(),
        "ci_words": ci_words(),
        "section_titles": SECTION_TITLES,
        **signature_context(results, evaluation),
        **deep_context(results),
    }


def signature_context(results: Mapping[str, Any], evaluation: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The template variables of the radiomics-signature sections (all None/empty when the
    study is not one: ``signature`` is False)."""
    signature = signature_study(results)
    selection = _section(results, "selection")
    cv = _section(results, "cross_validation")
    model = _section(results, "model") or {}
    cutoff = model.get("cutoff") or {}
    return {
        "signature": signature,
        "reproducibility": _section(results, "reproducibility"),
        "selection": ({"min_votes": None, "notes": [], "screened": [], **selection} if selection else None),
        "learner_view": learner_view(selection) if selection else None,
        "cross_validation": ({"failures": [], "n_failed": None, "n_fits": None, "description": None, **cv}
                             if cv else None),
        "cv_rows": cross_validation_rows(cv) if cv else [],
        "cv_by_time": {FILTERS["fmt_time"](row["time"]): row for row in (cross_validation_rows(cv) if cv else [])},
        "eval_parts": evaluation_parts(evaluation) if signature else {},
        "maxstat_pmethod": MAXSTAT_PMETHODS.get(str(cutoff.get("pmethod")), cutoff.get("pmethod")),
        "model_aic": model.get("aic", (model.get("fit") or {}).get("aic")),
        "auc_digits": AUC_DIGITS,
        "refs": METHOD_REFERENCES,
        "signature_methods": signature_methods(evaluation) if signature else None,
    }


def template_environment(templates_dir: Path) -> Environment:
    """Jinja2 environment over ``templates_dir`` with the formatting filters registered."""
    if not (templates_dir / MAIN_TEMPLATE).is_file():
        raise InputError(f"{templates_dir}: report template {MAIN_TEMPLATE} not found "
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
    if results.get("deep"):
        from studyrunner.report.deep_figures import draw_deep_figures

        figures.update(draw_deep_figures(results, report_dir / "figures", run_dir))
    relative = {key: path.relative_to(report_dir).as_posix() for key, path in figures.items()}
    context = build_context(results, relative, css_path.read_text(encoding="utf-8"))
    html = environment.get_template(MAIN_TEMPLATE).render(**context)
    html_path = report_dir / "report.html"
    html_path.write_text(html, encoding="utf-8")
    pdf_path = run_dir / "report.pdf"
    HTML(string=html, base_url=str(report_dir)).write_pdf(str(pdf_path))
    return pdf_path
