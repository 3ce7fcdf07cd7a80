"""Assemble ``results.json``: every number the report shows, read from the stage outputs.

The report is rendered from this file alone, so ``studyrunner report RUN`` reproduces it and
no number is ever typed in a template. The assembled record is validated against
``results.models.Results`` here, so a stage that writes a record of another shape fails the
run at this point, naming the record and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from studyrunner import __version__
from studyrunner.paths import shareable_path, shareable_text
from studyrunner.protocol import AnyLoaded, LoadedProtocol, Protocol, SplitSection, StatisticsSection
from studyrunner.results.flags import compute_flags
from studyrunner.results.models import Results
from studyrunner.results.published import published_features
from studyrunner.run_folder import read_json

SCREENING_ROWS_SHOWN = 15
# The sections the statistics stage writes, recorded as not run when the runner skipped it.
STATISTICS_SECTIONS = ("table_one", "model", "evaluation", "oracle", "tripod")


def _maybe(path: Path) -> Any:
    return read_json(path) if path.exists() else None


def software_section(environment: dict[str, Any]) -> dict[str, Any]:
    """Python, R and every package's version, and which CRAN-only packages were replaced."""
    return {
        "python": environment["python"],
        "platform": environment["platform"],
        "packages": environment["python_packages"],
        "r": environment["r"],
        "r_packages": environment["r_packages"],
        "cran_fallbacks": [{"package": c["package"], "status": c["status"], "implementation": c["implementation"]}
                           for c in environment["cran_only"]],
    }


def flow_section(loaded: AnyLoaded, run_dir: Path) -> dict[str, Any]:
    """Participant flow: counts and every exclusion with its stage and reason."""
    summary = read_json(run_dir / "cohort" / "summary.json")
    exclusions = [e for stage in ("cohort", "images", "radiomics")
                  for e in (_maybe(run_dir / stage / "exclusions.json") or [])]
    excluded_late = {e["patient_id"] for e in exclusions if e["stage"] in ("images", "radiomics")}
    clinical = pd.read_csv(run_dir / "cohort" / "clinical.csv", dtype={"patient_id": str})
    analysed = clinical[~clinical["patient_id"].isin(excluded_late)]
    split = loaded.protocol.cohort.split
    return {
        "n_clinical": summary["n_clinical"],
        "n_with_images": summary["n_with_images"],
        "predictors_without_clinical": summary.get("predictors_without_clinical", []),
        "n_eligible": summary["n_eligible"],
        "exclusions": [{**e, "reason": shareable_text(str(e["reason"]), loaded.path.parent)} for e in exclusions],
        "n_included": len(analysed),
        "partitions": analysed["partition"].value_counts().reindex(split.partitions, fill_value=0).to_dict(),
        "training_partitions": split.training,
        "test_partitions": split.test,
        "split_method": split_description(split),
        "inclusion": [rule.model_dump(mode="json") for rule in loaded.protocol.cohort.inclusion],
        "exclusion": [rule.model_dump(mode="json") for rule in loaded.protocol.cohort.exclusion],
    }


def split_description(split: SplitSection) -> str:
    if split.method == "stratified":
        return f"stratified randomisation on {', '.join(split.stratify_on)}" if split.stratify_on else "randomisation"
    if split.method == "site":
        return f"by site ({split.site_column})"
    return "none: one development cohort, validated internally (cross-validation)"


def model_section(run_dir: Path, plan: StatisticsSection, r_packages: dict[str, str | None]) -> dict[str, Any] | None:
    model = _maybe(run_dir / "statistics" / "model.json")
    if model is None:
        return None
    screening = pd.read_csv(run_dir / "statistics" / "screening.csv")
    top = screening.sort_values("p", na_position="last").head(SCREENING_ROWS_SHOWN)
    fit = model.get("fit") or {}
    return {
        "endpoint": model["endpoint"],
        "method": plan.model,
        "note": model.get("note"),
        "notes": model.get("notes", []),
        "screening": {"p_threshold": plan.screening.p_threshold, "n_candidates": model["n_candidates"],
                      "correlation_threshold": plan.screening.correlation_threshold,
                      "max_features": plan.screening.max_features,
                      "n_features_extracted": model["n_features_extracted"],
                      "n_kept": len(model["screened"]), "selected_after_pruning": model["selected"],
                      "top": top[["feature", "hr", "hr_lower", "hr_upper", "p", "kept"]].to_dict("records")},
        "coefficients": fit.get("coefficients", []),
        "aic": fit.get("aic"),
        "fit": {k: fit.get(k) for k in ("concordance", "loglik", "aic", "n", "n_events")} if fit else None,
        "cutoff": model.get("cutoff"),
        "normalisation": "z-score with the training mean and SD",
        "implementation": {"cox": f"R survival {r_packages.get('survival')} (coxph, Efron ties)"
                                  + (f"; MASS {r_packages.get('MASS')} stepAIC"
                                     if plan.model == "stepwise_cox" else "")},
    }


def reproducibility_section(run_dir: Path, plan: StatisticsSection) -> dict[str, Any] | None:
    """ICC summary: the form, threshold, how many features were kept, the distribution."""
    if plan.reproducibility is None:
        return None
    path = run_dir / "statistics" / "icc.csv"
    if not path.exists():
        return {"not_run": "no second segmentation was available for the training patients"}
    icc = pd.read_csv(path)
    r = plan.reproducibility
    form_names = {("twoway", "agreement"): "two-way random effects, absolute agreement",
                  ("twoway", "consistency"): "two-way mixed effects, consistency",
                  ("oneway", "agreement"): "one-way random effects"}
    index = {"oneway": "1", "twoway": "2" if r.icc_type == "agreement" else "3"}[r.icc_model]
    raters = "1" if r.icc_unit == "single" else "k"
    return {
        "form": f"ICC({index},{raters}): {form_names.get((r.icc_model, r.icc_type), r.icc_model)}, "
                f"{r.icc_unit} rater",
        "threshold": r.threshold,
        "n_patients": int(icc["n"].max()) if len(icc) else 0,
        "n_features": len(icc),
        "n_kept": int(icc["kept"].astype(bool).sum()),
        "icc": icc["icc"].dropna().round(4).tolist(),
        "lowest": icc.dropna(subset=["icc"]).nsmallest(10, "icc")[["feature", "icc", "lower", "upper"]]
                     .to_dict("records"),
    }


def selection_section(run_dir: Path, plan: StatisticsSection, n_candidates: int | None) -> dict[str, Any] | None:
    """What each learner chose and how the choices were combined."""
    if plan.selection is None:
        return None
    selection = _maybe(run_dir / "statistics" / "selection.json")
    if selection is None:
        return {"not_run": "the statistics stage wrote no selection record"}
    return {
        "p_threshold": plan.screening.p_threshold,
        "n_candidates": n_candidates,
        "screened": selection["screened"],
        "learners": {name: {"features": entry.get("features") or [], "implementation": entry.get("implementation"),
                            "error": entry.get("error"), "package_error": entry.get("package_error")}
                     for name, entry in selection["learners"].items()},
        "combine": plan.selection.combine,
        "min_votes": plan.selection.min_votes,
        "combined": selection["combined"],
        "notes": selection["notes"],
    }


def assemble_results(loaded: LoadedProtocol, run_dir: Path, environment: dict, timings: dict[str, float],
                     run_id: str, skipped: Mapping[str, str] | None = None) -> Results:
    """The run's results, validated, with the flags of ``results.flags`` (see ``Results.to_json``
    for what is written). ``skipped``: the stages the runner did not run, with the reason; the
    sections of a skipped statistics stage are NotRun records carrying it."""
    record = results_record(loaded, run_dir, environment, timings, run_id)
    if skipped and "statistics" in skipped:
        record.update(skipped_statistics(loaded.protocol.statistics, skipped["statistics"]))
    results = Results.model_validate(record)
    return results.model_copy(update={"flags": compute_flags(results)})


def skipped_statistics(plan: StatisticsSection, reason: str) -> dict[str, Any]:
    """The statistics sections of a run whose statistics stage could not run, each ``{"not_run":
    reason}``; a signature study's own sections only when the plan has them (their presence is
    what marks a signature study, ``report.views.signature_study``)."""
    keys = [*STATISTICS_SECTIONS, *(["reproducibility"] if plan.reproducibility is not None else []),
            *(["selection", "cross_validation"] if plan.selection is not None else [])]
    return {key: {"not_run": reason} for key in keys}


def evaluation_section(run_dir: Path, protocol: Protocol, model: dict[str, Any] | None) -> dict[str, Any]:
    """The per-cohort evaluation of the radiomics model (statistics/evaluation.json), labelled;
    ``{"not_run": why}`` when no cohort was evaluated because no model was fitted."""
    evaluation = _maybe(run_dir / "statistics" / "evaluation.json") or {}
    if not evaluation and model is not None and not model["coefficients"]:
        return {"not_run": f"no model was fitted ({model.get('note') or 'no feature entered the model'})"}
    cohort_labels = {"training": "Training cohort", "test": "Test cohort"}
    for name, block in evaluation.items():
        block.setdefault("cohort_label", cohort_labels.get(name, name))
        block.setdefault("time_unit", protocol.primary_endpoint().unit)
        if "time_roc" in block:
            block["time_roc"].setdefault("time_unit", block["time_unit"])
    return evaluation


def results_record(loaded: LoadedProtocol, run_dir: Path, environment: dict, timings: dict[str, float],
                   run_id: str) -> dict[str, Any]:
    """results.json as plain JSON types, from the protocol and the stages' files."""
    protocol = loaded.protocol
    model = model_section(run_dir, protocol.statistics, environment["r_packages"])
    evaluation = evaluation_section(run_dir, protocol, model)
    radiomics = _maybe(run_dir / "radiomics" / "summary.json")
    if radiomics is not None and (run_dir / "radiomics" / "params.yaml").exists():
        import yaml

        radiomics["params_file"] = "radiomics/params.yaml"
        radiomics["settings"] = yaml.safe_load((run_dir / "radiomics" / "params.yaml").read_text())
    return {
        "study": {
            **protocol.study.model_dump(mode="json"),
            "protocol_file": shareable_path(loaded.path, loaded.path.parent),
            "protocol_sha256": loaded.sha256,
            "run_id": run_id,
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "studyrunner_version": __version__,
        },
        "report_meta": protocol.report.model_dump(mode="json"),
        "endpoints": {name: e.model_dump(mode="json") for name, e in protocol.endpoints.items()},
        "primary_endpoint": protocol.statistics.endpoint,
        "flow": flow_section(loaded, run_dir),
        "validation": read_json(run_dir / "cohort" / "validation.json"),
        "table_one": _maybe(run_dir / "statistics" / "table_one.json"),
        "radiomics": radiomics,
        "model": model,
        "reproducibility": reproducibility_section(run_dir, protocol.statistics),
        "selection": selection_section(run_dir, protocol.statistics,
                                       (model or {}).get("screening", {}).get("n_candidates")),
        "cross_validation": _maybe(run_dir / "statistics" / "cross_validation.json"),
        "evaluation": evaluation,
        "oracle": _maybe(run_dir / "statistics" / "oracle.json"),
        "deep": deep_section(run_dir),
        "risk_scores": risk_scores_section(run_dir),
        "explanations": _maybe(run_dir / "explanations" / "explanations.json"),
        "published_features": published_features(
            run_dir, protocol.report.published.features if protocol.report.published else []),
        "software": software_section(environment),
        "timings": timings,
        "tripod": _maybe(run_dir / "statistics" / "tripod.json"),
    }


def deep_section(run_dir: Path) -> dict[str, Any] | None:
    """The CNNs: crop settings, networks, training records (deep/*.json)."""
    training = _maybe(run_dir / "deep" / "training.json")
    if training is None:
        return None
    return {**training, "crops": read_json(run_dir / "deep" / "crops.json"),
            "architectures": read_json(run_dir / "deep" / "networks.json")}


def risk_scores_section(run_dir: Path) -> dict[str, Any] | None:
    """Statistics of the CNN scores plus the per-patient table the figures draw from."""
    section = _maybe(run_dir / "statistics" / "risk_scores.json")
    if section is None:
        return None
    table = pd.read_csv(run_dir / "statistics" / "risk_scores.csv", dtype={"patient_id": str})
    table = table.astype(object).where(table.notna(), None)
    section["patients"] = {column: table[column].tolist() for column in table.columns}
    return section
