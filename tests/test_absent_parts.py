"""Every optional part of a study may be absent, and a study where no model can be built is a result.

Cheap checks render the hand-made results (tests/fixtures/results_example.json, with the CNN
parts of tests/test_deep_figures.tiny_results) with one part removed: a second endpoint, the
response task, the fusion, the explanations, a second reader, a test split. Real runs on the
small synthetic cohort (slow, R): every case excluded, no feature passing screening, every
patient censored, and a CNN study with an OS network only. Each must end with results.json,
the report and the manifest, say why a part is missing, and exit 0.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from studyrunner.protocol import NO_SPLIT_PARTITION, SplitSection
from studyrunner.report import render_report
from studyrunner.report.formatting import fmt_auc
from studyrunner.results.assemble import split_description
from studyrunner.results.models import Results
from tests.conftest import small_study
from tests.test_deep_figures import tiny_results
from tests.test_report import needs_poppler, pdf_pages

FIXTURES = Path(__file__).parent / "fixtures"


def report_text(run_dir: Path, results: dict[str, Any]) -> str:
    """Validate ``results``, render its report in ``run_dir`` and return the PDF's text."""
    Results.model_validate(results)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return " ".join(pdf_pages(render_report(run_dir)))


def cnn_results(run_dir: Path) -> dict[str, Any]:
    """results_example.json (the radiomics Cox model) with every CNN part of the seed-000 study:
    OS and PFS networks, the response network, the fused MOSRS, Grad-CAM with SSIM."""
    results = json.loads((FIXTURES / "results_example.json").read_text(encoding="utf-8"))
    tiny = tiny_results(run_dir)  # writes the Grad-CAM overlays into run_dir/explanations
    results.update({key: tiny[key] for key in ("deep", "risk_scores", "explanations")})
    results["endpoints"]["pfs"] = tiny["endpoints"]["pfs"]
    return results


def drop_patient_columns(risk: dict[str, Any], *names: str) -> None:
    for name in names:
        risk["patients"].pop(name, None)


def without_fusion(results: dict[str, Any]) -> dict[str, Any]:
    """No fused score: OSRS is the headline and the clinical models' and nomogram's score."""
    out = copy.deepcopy(results)
    risk, explanations = out["risk_scores"], out["explanations"]
    del risk["scores"]["mosrs"]
    risk.update(headline_score="osrs", comparison={}, comparison_scores=[])
    for rows in risk["clinical_cox"].values():
        for row in rows:
            row["covariate"] = "osrs"
    risk["nomogram"]["predictors"] = {"osrs": risk["nomogram"]["predictors"].pop("mosrs")}
    drop_patient_columns(risk, "mosrs")
    explanations["selected"] = [{"patient_id": s["patient_id"], "ordered_by": "osrs", "osrs": s["mosrs"]}
                                for s in explanations["selected"]]
    explanations["spearman"] = [row for row in explanations["spearman"] if row["name"] != "mosrs"]
    return out


def without_second_endpoint(results: dict[str, Any]) -> dict[str, Any]:
    """OS only: no PFS endpoint, network or score, hence no fusion and no SSIM of two maps
    (the explanations stage then writes neither ``ssim`` nor ``spearman``)."""
    out = without_fusion(results)
    out["endpoints"].pop("pfs")
    for key in ("networks", "architectures"):
        out["deep"][key].pop("pfs")
    del out["risk_scores"]["scores"]["pfsrs"]
    drop_patient_columns(out["risk_scores"], "pfsrs", "pfs_days", "pfs_event",
                         *(f"pfs_score_{k}" for k in (1, 2, 3)))
    explanations = out["explanations"]
    explanations["scores_explained"] = [s for s in explanations["scores_explained"] if s != "pfsrs"]
    del explanations["ssim"], explanations["spearman"]
    return out


def without_response(results: dict[str, Any]) -> dict[str, Any]:
    """No response task: no dual-task network, no PRS or PDS."""
    out = copy.deepcopy(results)
    for key in ("networks", "architectures"):
        out["deep"][key].pop("response")
    out["risk_scores"]["response"] = None
    drop_patient_columns(out["risk_scores"], "prs", "pds")
    explanations = out["explanations"]
    explanations["scores_explained"] = [s for s in explanations["scores_explained"] if s not in ("prs", "pds")]
    return out


def without_explanations(results: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(results)
    out["explanations"] = None
    return out


def without_test_split(results: dict[str, Any]) -> dict[str, Any]:
    """Split method none: one development cohort (results_example.json's training cohort), no
    test set."""
    out = copy.deepcopy(results)
    flow = out["flow"]
    n_training = sum(flow["partitions"][p] for p in flow["training_partitions"])
    flow.update(test_partitions=[], n_included=n_training, partitions={NO_SPLIT_PARTITION: n_training},
                training_partitions=[NO_SPLIT_PARTITION],
                split_method=split_description(SplitSection(method="none", training=[NO_SPLIT_PARTITION])))
    del out["evaluation"]["test"], out["oracle"]["test"]
    out["tripod"].pop("differences")
    out["tripod"]["cohorts"].pop("test", None)
    out["flags"] = [f for f in out["flags"] if not f.get("target", "").endswith(":test")]
    return out


# ----------------------------------------------------------------------------- rendered without a part


@pytest.fixture(scope="module")
def cnn_base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("cnn_base")
    return folder, cnn_results(folder)


def run_folder_like(base: Path, tmp_path: Path) -> Path:
    """A fresh run folder holding the Grad-CAM overlays of ``base``."""
    shutil.copytree(base / "explanations", tmp_path / "run" / "explanations")
    return tmp_path / "run"


@needs_poppler
def test_every_cnn_part_renders_when_present(cnn_base, tmp_path):
    base, results = cnn_base
    text = report_text(run_folder_like(base, tmp_path), results)
    for name in ("OSRS", "PFSRS", "MOSRS", "PRS", "PDS", "Dual-task network"):
        assert name in text
    assert "Structural similarity of each patient's OSRS and PFSRS maps" in text
    assert "map similarity (SSIM)" not in text


@needs_poppler
def test_report_without_a_second_endpoint(cnn_base, tmp_path):
    base, results = cnn_base
    absent = without_second_endpoint(results)
    text = report_text(run_folder_like(base, tmp_path), absent)
    for name in ("PFSRS", "MOSRS", "Progression-free", "Survival network (PFS)"):
        assert name not in text
    assert "Survival network (OS)" in text
    assert "Not run: map similarity (SSIM): it compares the Grad-CAM maps of two endpoint scores, and this run " \
           "has only OSRS." in text
    assert "Spearman correlation of the SSIM" not in text
    # what is left keeps its numbers: the OSRS test cohort's C-index of the hand-made record
    osrs_test = absent["risk_scores"]["scores"]["osrs"]["evaluation"]["test"]
    assert fmt_auc(osrs_test["c_index"]) in text


@needs_poppler
def test_report_without_the_response_task(cnn_base, tmp_path):
    base, results = cnn_base
    text = report_text(run_folder_like(base, tmp_path), without_response(results))
    for words in ("Dual-task network", "PRS", "PDS", "partial-response head", "DeLong"):
        assert words not in text
    assert "Survival network (PFS)" in text


@needs_poppler
def test_report_without_fusion(cnn_base, tmp_path):
    base, results = cnn_base
    text = report_text(run_folder_like(base, tmp_path), without_fusion(results))
    assert "MOSRS" not in text
    assert "fuses them" not in text
    assert "difference of their C-indices" not in text  # the comparison is the fused score's with a component
    assert "OSRS (CNN risk score)" in text  # the headline is the remaining score


@needs_poppler
def test_report_without_explanations(cnn_base, tmp_path):
    base, results = cnn_base
    text = report_text(run_folder_like(base, tmp_path), without_explanations(results))
    assert "Explanations: Grad-CAM maps" not in text
    assert "Grad-CAM maps (" not in text  # nor in the methods
    assert "MOSRS" in text


@needs_poppler
def test_report_without_a_second_reader(tmp_path):
    """A signature study whose reproducibility filter had no second segmentation (the record
    results.assemble writes then)."""
    results = json.loads((FIXTURES / "results_signature.json").read_text(encoding="utf-8"))
    reason = "no second segmentation was available for the training patients"
    results["reproducibility"] = {"not_run": reason}
    text = report_text(tmp_path / "run", results)
    assert f"Not run: {reason}." in text
    assert "ICC(" not in text


@needs_poppler
def test_report_without_a_test_split(tmp_path):
    results = without_test_split(json.loads((FIXTURES / "results_example.json").read_text(encoding="utf-8")))
    text = report_text(tmp_path / "run", results)
    assert "none: one development cohort, validated internally (cross-validation)" in text
    assert "There is no separate evaluation cohort" in text
    training = results["evaluation"]["training"]
    assert f"{training['n']:,}" in text


# ----------------------------------------------------------------------------- real runs where no model is built


def excluded_cohort(small_cohort_dir: Path, work: Path) -> Path:
    shutil.copytree(small_cohort_dir / "cohort", work / "cohort")
    return small_study(work, **{"preprocessing.mask_label": 7})  # no mask has label 7: every case excluded


@pytest.mark.slow
@pytest.mark.needs_r
@needs_poppler
def test_every_case_excluded_is_a_result_with_exit_code_0(small_cohort_dir, tmp_path):
    from typer.testing import CliRunner

    from studyrunner.cli import app

    protocol = excluded_cohort(small_cohort_dir, tmp_path)
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(protocol), "--out", str(run_dir), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "statistics  not run: no patient is left to analyse" in result.output
    assert "note: no model was fitted: no patient is left to analyse" in result.output

    clinical = pd.read_csv(tmp_path / "cohort" / "clinical.csv", dtype={"patient_id": str})
    results = json.loads((run_dir / "results.json").read_text())
    exclusions = results["flow"]["exclusions"]
    assert sorted(e["patient_id"] for e in exclusions) == sorted(clinical["patient_id"])
    assert {e["stage"] for e in exclusions} == {"images"}
    reason = (f"no patient is left to analyse: of {len(clinical)} eligible patients, {len(clinical)} were excluded "
              f"({len(clinical)} at the images stage) and none has radiomics features; the participant flow lists "
              "each exclusion with its reason")
    for section in ("table_one", "model", "evaluation", "oracle", "tripod"):
        assert results[section] == {"not_run": reason}, section
    assert results["flow"]["n_included"] == 0

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["not_run"] == {"statistics": reason, "model": reason}
    for stage in ("cohort", "images", "radiomics", "report"):
        assert json.loads((run_dir / stage / "stage.json").read_text())["status"] == "complete"
    assert not (run_dir / "statistics").exists()
    assert not (run_dir / "model").exists()

    text = " ".join(pdf_pages(run_dir / "report.pdf"))
    assert f"Not run: {reason}." in text
    assert all(pid in text for pid in clinical["patient_id"])  # the participant flow lists every exclusion
    assert "mask has no voxel equal to label 7" in text


@pytest.mark.slow
@pytest.mark.needs_r
def test_a_stale_statistics_folder_is_removed_when_the_stage_cannot_run(small_cohort_dir, tmp_path):
    """A rerun into a folder whose earlier statistics no longer apply does not report them."""
    from studyrunner.protocol import load_protocol
    from studyrunner.runner import RunOptions, run_study

    protocol = excluded_cohort(small_cohort_dir, tmp_path)
    stale = tmp_path / "run" / "statistics"
    stale.mkdir(parents=True)
    (stale / "model.json").write_text(json.dumps({"endpoint": "pfs", "coefficients": {"x": 1.0}}))
    run_dir = run_study(load_protocol(protocol), RunOptions(out_dir=tmp_path / "run", device="cpu"))
    assert not stale.exists()
    assert "not_run" in json.loads((run_dir / "results.json").read_text())["model"]


def lifelines_screening_p(run_dir: Path, feature: str, time: str, event: str) -> float:
    """The univariable Cox Wald p of one z-scored feature in the training cohort, by lifelines."""
    from lifelines import CoxPHFitter

    clinical = pd.read_csv(run_dir / "cohort" / "clinical.csv", dtype={"patient_id": str})
    features = pd.read_csv(run_dir / "radiomics" / "features.csv", dtype={"patient_id": str})
    data = clinical[clinical["partition"] == "training"].merge(features, on="patient_id")
    x = data[feature]
    frame = pd.DataFrame({"x": (x - x.mean()) / x.std(), "t": data[time], "e": data[event]})
    return float(CoxPHFitter().fit(frame, "t", "e").summary.loc["x", "p"])


@pytest.mark.slow
@pytest.mark.needs_r
@needs_poppler
def test_no_feature_passing_screening_is_reported_not_crashed(small_cohort_dir, tmp_path):
    from studyrunner.protocol import load_protocol
    from studyrunner.runner import RunOptions, run_study

    shutil.copytree(small_cohort_dir / "cohort", tmp_path / "cohort")
    protocol = small_study(tmp_path, **{"statistics.screening.p_threshold": 1e-12})
    run_dir = run_study(load_protocol(protocol), RunOptions(out_dir=tmp_path / "run", device="cpu"))
    results = json.loads((run_dir / "results.json").read_text())
    note = "no feature passed univariate Cox screening at p < 1e-12"
    assert results["model"]["note"] == note
    assert "coefficients" not in results["model"] or not results["model"]["coefficients"]
    assert results["evaluation"] == {"not_run": f"no model was fitted ({note})"}
    best = results["model"]["screening"]["top"][0]
    assert best["p"] == pytest.approx(lifelines_screening_p(run_dir, best["feature"], "pfs_days", "pfs_event"),
                                      rel=1e-4)
    assert best["p"] > 1e-12
    assert (run_dir / "manifest.json").is_file()
    assert json.loads((run_dir / "model" / "not_frozen.json").read_text())["reason"] == note
    text = " ".join(pdf_pages(run_dir / "report.pdf"))
    assert f"No multivariable model was fitted: {note}." in text
    assert f"Not run: no model was fitted ({note})." in text


@pytest.mark.slow
@pytest.mark.needs_r
@needs_poppler
def test_every_patient_censored_is_reported_not_crashed(small_cohort_dir, tmp_path):
    from studyrunner.protocol import load_protocol
    from studyrunner.runner import RunOptions, run_study

    shutil.copytree(small_cohort_dir / "cohort", tmp_path / "cohort")
    table = pd.read_csv(tmp_path / "cohort" / "clinical.csv", dtype=str)
    table[["os_event", "pfs_event"]] = "0"
    table.to_csv(tmp_path / "cohort" / "clinical.csv", index=False)
    run_dir = run_study(load_protocol(small_study(tmp_path)), RunOptions(out_dir=tmp_path / "run", device="cpu"))
    clinical = pd.read_csv(run_dir / "cohort" / "clinical.csv")
    n_training = int((clinical["partition"] == "training").sum())
    results = json.loads((run_dir / "results.json").read_text())
    why = f"the training set has no event (pfs_event is 0 for all {n_training} patients)"
    assert results["model"]["note"].startswith(why)
    assert "not_run" in results["evaluation"]
    assert (run_dir / "manifest.json").is_file()
    text = " ".join(pdf_pages(run_dir / "report.pdf"))
    assert f"No multivariable model was fitted: {why}" in text


# ----------------------------------------------------------------------------- a CNN study with an OS network only


def os_only_protocol(tmp: Path) -> Path:
    """tests/study_runs.deep_protocol with one survival network (OS), no response task, no
    fusion and no PFS endpoint."""
    from tests.study_runs import deep_protocol

    path = deep_protocol(tmp)
    data = yaml.safe_load(path.read_text())
    deep = data["predictors"]["deep_learning"]
    deep["survival_endpoints"] = ["os"]
    deep["response"] = None
    data["statistics"]["risk_scores"]["fusion_endpoint"] = None
    data["statistics"]["risk_scores"]["response_subgroups"] = []
    del data["endpoints"]["pfs"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.slow
@pytest.mark.needs_r
@needs_poppler
def test_an_os_only_cnn_study_runs_to_its_report(tmp_path):
    from lifelines.utils import concordance_index

    from studyrunner.protocol import load_protocol
    from studyrunner.runner import RunOptions, run_study
    from studyrunner.synthetic import generate_nsclc_ici_cohort
    from tests.study_runs import N_PATIENTS

    generate_nsclc_ici_cohort(tmp_path / "cohort", n_patients=N_PATIENTS, seed=20220415)
    run_dir = run_study(load_protocol(os_only_protocol(tmp_path)), RunOptions(out_dir=tmp_path / "run", device="cpu"))
    results = json.loads((run_dir / "results.json").read_text())
    assert list(results["deep"]["networks"]) == ["os"]
    risk = results["risk_scores"]
    assert list(risk["scores"]) == ["osrs"]
    assert risk["headline_score"] == "osrs"
    assert not risk.get("response")
    assert "ssim" not in results["explanations"]
    # the OSRS C-index of the test cohort against lifelines on the written scores
    scores = pd.read_csv(run_dir / "statistics" / "risk_scores.csv", dtype={"patient_id": str})
    test = scores[scores["partition"].isin(risk["cohorts"]["test"])]
    reference = concordance_index(test["os_days"], -test["osrs"], test["os_event"])
    c_index = risk["scores"]["osrs"]["evaluation"]["test"]["c_index"]
    assert c_index == pytest.approx(reference, abs=1e-6)
    assert np.isfinite(c_index)

    text = " ".join(pdf_pages(run_dir / "report.pdf"))
    deep_methods = text.split("Methods: deep-learning risk scores", 2)[-1].split("Study workflow", 1)[0]
    assert "Dual-task network" not in deep_methods
    assert "PRS" not in deep_methods
    assert "has only OSRS" in text
    assert (run_dir / "manifest.json").is_file()


@needs_poppler
def test_signature_report_when_the_statistics_stage_was_skipped(tmp_path):
    """results_signature.json as results.assemble writes it when no patient was left to analyse:
    every statistics section, the signature study's own included, a NotRun record."""
    from studyrunner.protocol import StatisticsSection
    from studyrunner.results.assemble import skipped_statistics

    results = json.loads((FIXTURES / "results_signature.json").read_text(encoding="utf-8"))
    reason = "no patient is left to analyse: of forty eligible patients, forty were excluded"
    plan = StatisticsSection.model_validate({"endpoint": "pfs", "reproducibility": {}, "selection": {}})
    skipped = skipped_statistics(plan, reason)
    assert set(skipped) == {"table_one", "model", "evaluation", "oracle", "tripod", "reproducibility", "selection",
                            "cross_validation"}
    results.update(skipped)
    text = report_text(tmp_path / "run", results)
    assert text.count(f"Not run: {reason}.") >= len(skipped)  # each section says why, some more than once
    assert "results.json has no 'model'" not in text


def test_nothing_to_analyse_names_the_missing_patients(tmp_path):
    """The runner's decision, on hand-made stage files: no features at all, features of test
    patients only, and a cohort that can be analysed."""
    from studyrunner.run_folder import write_json
    from studyrunner.statistics.stage import nothing_to_analyse

    (tmp_path / "cohort").mkdir()
    (tmp_path / "radiomics").mkdir()
    (tmp_path / "images").mkdir()
    write_json(tmp_path / "cohort" / "summary.json", {"n_eligible": 3})
    write_json(tmp_path / "images" / "exclusions.json",
               [{"patient_id": p, "stage": "images", "reason": "empty mask"} for p in ("A", "B")])
    write_json(tmp_path / "radiomics" / "exclusions.json", [{"patient_id": "C", "stage": "radiomics", "reason": "x"}])
    pd.DataFrame({"patient_id": ["A", "B", "C"], "partition": ["training", "training", "test"]}).to_csv(
        tmp_path / "cohort" / "clinical.csv", index=False)
    assert nothing_to_analyse(tmp_path, ["training"]) == (
        "no patient is left to analyse: of 3 eligible patients, 3 were excluded (2 at the images stage, 1 at the "
        "radiomics stage) and none has radiomics features; the participant flow lists each exclusion with its reason")
    pd.DataFrame({"patient_id": ["C"], "f": [1.0]}).to_csv(tmp_path / "radiomics" / "features.csv", index=False)
    assert nothing_to_analyse(tmp_path, ["training"]) == (
        "no patient left to analyse is in the training partitions (training): no model can be developed")
    pd.DataFrame({"patient_id": ["A", "C"], "f": [1.0, 2.0]}).to_csv(tmp_path / "radiomics" / "features.csv",
                                                                    index=False)
    assert nothing_to_analyse(tmp_path, ["training"]) is None
