"""`studyrunner external`: a frozen model applied unchanged to a cohort.

Applied to its own development cohort the frozen model gives back the run's linear predictor
to 1e-9; Harrell's C equals lifelines', the calibration slope lifelines' Cox coefficient and
the O/E ratio a hand computation from the Kaplan-Meier estimate and the bundle's baseline
survival. Times given in months give the same results as in days. A tampered bundle, a
development protocol given to `external` and an external protocol given to `run` are refused
with exit 2; a case with an empty mask is excluded with its reason.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.utils import concordance_index
from typer.testing import CliRunner

from studyrunner.bundle import linear_predictor, load_radiomics_bundle
from studyrunner.cli import app
from studyrunner.external.run import validate_externally
from studyrunner.protocol import load_external_protocol, load_protocol
from studyrunner.registry import unit_factor
from studyrunner.runner import RunOptions, run_study
from tests.conftest import REPO, small_study

pytestmark = [pytest.mark.needs_r, pytest.mark.slow]

TIMES_DAYS = [95.5, 200.5]  # between event days (outcomes are whole days)


@pytest.fixture(scope="module")
def development(small_cohort_dir, tmp_path_factory) -> Path:
    """The run folder of a small synthetic study, with its frozen model."""
    work = tmp_path_factory.mktemp("development")
    shutil.copytree(small_cohort_dir / "cohort", work / "cohort")
    return run_study(load_protocol(small_study(work)), RunOptions(out_dir=work / "run"))


def external_protocol(folder: Path, cohort: Path, *, time: str = "pfs_days", unit: str = "days",
                      times: list[float] = TIMES_DAYS, updating: list[str] | None = None) -> Path:
    """An external-validation protocol over ``cohort`` (clinical.csv + manifest.csv)."""
    data = {
        "study": {"name": "external_test", "kind": "external_validation", "synthetic": True,
                  "description": "the small study's frozen model on a cohort"},
        "cohort": {"clinical_table": str(cohort / "clinical.csv"), "image_manifest": str(cohort / "manifest.csv"),
                   "id_column": "patient_id", "manifest_columns": {"id": "patient_id", "image": "image",
                                                                   "mask": "mask"},
                   "validation": {"suite": str(REPO / "validation" / "clinical_table.yaml"), "age_column": "age"},
                   "split": {"method": "none", "training": ["development"]}},
        "endpoints": {"pfs": {"type": "time_to_event", "label": "Progression-free survival", "time": time,
                              "event": "pfs_event", "unit": unit}},
        "validation": {"endpoint": "pfs", "times": times, "calibration_groups": 3, "min_events_per_group": 5,
                       "updating": updating or [], "bootstrap_replicates": 20},
        "report": {"title": "External validation test"},
    }
    path = folder / "external.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def own_cohort(development, small_cohort_dir, tmp_path_factory) -> Path:
    """The frozen model validated on its own development cohort."""
    work = tmp_path_factory.mktemp("own")
    protocol = external_protocol(work, small_cohort_dir / "cohort", updating=["baseline", "slope"])
    return validate_externally(development / "model", load_external_protocol(protocol),
                               RunOptions(out_dir=work / "run"))


def outcomes(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "scores" / "outcomes.csv", dtype={"patient_id": str})


def test_the_frozen_model_gives_back_the_development_scores(own_cohort, development) -> None:
    scores = pd.read_csv(own_cohort / "scores" / "scores.csv", dtype={"patient_id": str}).set_index("patient_id")
    stored = pd.read_csv(development / "statistics" / "scores.csv", dtype={"patient_id": str}).set_index("patient_id")
    assert len(scores) == len(stored)
    assert np.allclose(scores.loc[stored.index, "score"], stored["risk_score"], rtol=0, atol=1e-9)
    assert (scores.loc[stored.index, "risk_group"] == stored["risk_group"]).all()


def test_discrimination_and_calibration_slope_match_lifelines(own_cohort) -> None:
    rows = outcomes(own_cohort)
    model = json.loads((own_cohort / "results.json").read_text())["external"]["models"]["radiomics_score"]
    assert model["c_index"]["estimate"] == pytest.approx(concordance_index(rows["time"], -rows["lp"], rows["event"]),
                                                         abs=1e-9)
    cox = CoxPHFitter().fit(rows[["time", "event", "lp"]], "time", "event")
    slope = model["calibration"]["slope"]
    assert slope["slope"] == pytest.approx(cox.params_["lp"], abs=1e-4)
    assert slope["lower"] == pytest.approx(cox.confidence_intervals_.loc["lp"].iloc[0], abs=1e-3)
    assert model["n"] == len(rows)
    assert model["n_events"] == int(rows["event"].sum())


def test_observed_over_expected_by_hand(own_cohort, development) -> None:
    rows = outcomes(own_cohort)
    bundle = load_radiomics_bundle(development / "model")
    model = json.loads((own_cohort / "results.json").read_text())["external"]["models"]["radiomics_score"]
    km = KaplanMeierFitter().fit(rows["time"], rows["event"])
    for t in TIMES_DAYS:
        steps = np.searchsorted(bundle.baseline_survival.time, t, side="right")
        s0 = 1.0 if steps == 0 else bundle.baseline_survival.survival[steps - 1]
        expected = float(np.mean(1.0 - s0 ** np.exp(rows["lp"])))
        observed = 1.0 - float(km.survival_function_at_times(t).iloc[0])
        at = model["calibration"]["at"][f"{t!r}"]
        assert at["predicted"] == pytest.approx(expected, abs=1e-9)
        assert at["observed"]["estimate"] == pytest.approx(observed, abs=1e-9)
        assert at["oe"]["estimate"] == pytest.approx(observed / expected, abs=1e-9)


def test_the_report_names_the_model_and_its_hash(own_cohort, development) -> None:
    bundle = load_radiomics_bundle(development / "model")
    html = (own_cohort / "report" / "report.html").read_text(encoding="utf-8")
    assert bundle.content_sha256 in html
    assert "applied unchanged" in html
    assert (own_cohort / "report.pdf").stat().st_size > 10_000


def test_times_in_months_give_the_same_results(development, small_cohort_dir, own_cohort, tmp_path) -> None:
    cohort = tmp_path / "cohort"
    shutil.copytree(small_cohort_dir / "cohort", cohort)
    clinical = pd.read_csv(cohort / "clinical.csv", dtype={"patient_id": str})
    factor = unit_factor("days", "months")
    clinical["pfs_months"] = clinical["pfs_days"] * factor
    clinical.to_csv(cohort / "clinical.csv", index=False)
    protocol = external_protocol(tmp_path, cohort, time="pfs_months", unit="months",
                                 times=[t * factor for t in TIMES_DAYS])
    run_dir = validate_externally(development / "model", load_external_protocol(protocol),
                                  RunOptions(out_dir=tmp_path / "run"))
    months = json.loads((run_dir / "results.json").read_text())["external"]
    days = json.loads((own_cohort / "results.json").read_text())["external"]
    assert months["bundle"]["time_unit_conversion"] == "times converted from months to the model's days"
    a, b = months["models"]["radiomics_score"], days["models"]["radiomics_score"]
    assert a["c_index"] == pytest.approx(b["c_index"], abs=1e-9)
    assert a["calibration"]["slope"]["slope"] == pytest.approx(b["calibration"]["slope"]["slope"], abs=1e-9)
    for at_months, at_days in zip(a["calibration"]["at"].values(), b["calibration"]["at"].values(), strict=True):
        assert at_months["oe"]["estimate"] == pytest.approx(at_days["oe"]["estimate"], abs=1e-9)


def test_a_case_with_an_empty_mask_is_excluded_with_its_reason(development, small_cohort_dir, tmp_path) -> None:
    cohort = tmp_path / "cohort"
    shutil.copytree(small_cohort_dir / "cohort", cohort)
    manifest = pd.read_csv(cohort / "manifest.csv", dtype={"patient_id": str})
    mask_path = cohort / manifest.loc[0, "mask"]
    mask = sitk.ReadImage(str(mask_path))
    sitk.WriteImage(mask * 0, str(mask_path))
    run_dir = validate_externally(development / "model",
                                  load_external_protocol(external_protocol(tmp_path, cohort)),
                                  RunOptions(out_dir=tmp_path / "run"))
    results = json.loads((run_dir / "results.json").read_text())
    excluded = {e["patient_id"]: e for e in results["flow"]["exclusions"]}
    assert manifest.loc[0, "patient_id"] in excluded
    assert results["external"]["models"]["radiomics_score"]["n"] == len(manifest) - 1


def test_refusals_exit_with_code_2(development, small_cohort_dir, tmp_path) -> None:
    runner = CliRunner()
    model = tmp_path / "model"
    shutil.copytree(development / "model", model)
    bundle = json.loads((model / "bundle.json").read_text())
    first = bundle["features"][0]
    bundle["coefficients"][first] *= 2
    (model / "bundle.json").write_text(json.dumps(bundle))
    protocol = external_protocol(tmp_path, small_cohort_dir / "cohort")
    tampered = runner.invoke(app, ["external", str(model), str(protocol), "--out", str(tmp_path / "run")])
    assert tampered.exit_code == 2
    assert "bundle.json" in tampered.output
    wrong_kind = runner.invoke(app, ["run", str(protocol)])
    assert wrong_kind.exit_code == 2
    assert "studyrunner external" in wrong_kind.output
    (tmp_path / "dev").mkdir()
    development_protocol = small_study(tmp_path / "dev")
    wrong_way = runner.invoke(app, ["external", str(development / "model"), str(development_protocol)])
    assert wrong_way.exit_code == 2
    assert "external_validation" in wrong_way.output


def test_a_clinical_table_without_the_endpoint_column_is_refused(development, small_cohort_dir, tmp_path) -> None:
    cohort = tmp_path / "cohort"
    shutil.copytree(small_cohort_dir / "cohort", cohort)
    clinical = pd.read_csv(cohort / "clinical.csv", dtype={"patient_id": str})
    clinical.drop(columns="pfs_days").to_csv(cohort / "clinical.csv", index=False)
    result = CliRunner().invoke(app, ["external", str(development / "model"),
                                      str(external_protocol(tmp_path, cohort)), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "pfs_days" in result.output


def test_updated_models_are_new_bundles_naming_their_parent(own_cohort, development) -> None:
    frozen = load_radiomics_bundle(development / "model")
    model = json.loads((own_cohort / "results.json").read_text())["external"]["models"]["radiomics_score"]
    rows = outcomes(own_cohort)
    features = pd.read_csv(development / "radiomics" / "features.csv", dtype={"patient_id": str})
    features = features.set_index("patient_id")
    for method in ("baseline", "slope"):
        updated = model["updated"][method]
        assert not Path(updated["bundle_path"]).is_absolute()  # no folder of the machine that ran it
        bundle = load_radiomics_bundle(own_cohort / updated["bundle_path"])  # its own hash verified
        assert bundle.parent_sha256 == frozen.content_sha256
        assert bundle.content_sha256 == updated["bundle_sha256"]
        lp = linear_predictor(bundle, features).loc[rows["patient_id"]].to_numpy()
        assert np.allclose(lp, updated["slope"] * rows["lp"].to_numpy(), rtol=0, atol=1e-9)
        assert bundle.cutoff.value == pytest.approx(updated["slope"] * frozen.cutoff.value)
        for at in updated["calibration"].values():  # apparent: updated where it is assessed
            assert at["oe"]["estimate"] == pytest.approx(1.0, abs=0.25)
    cox = CoxPHFitter().fit(rows[["time", "event", "lp"]], "time", "event")
    assert model["updated"]["slope"]["slope"] == pytest.approx(cox.params_["lp"], abs=1e-4)
    assert model["updated"]["baseline"]["slope"] == 1.0


def test_images_of_another_spacing_are_resampled_as_the_bundle_says(small_cohort_dir, tmp_path) -> None:
    """A model frozen with 1 mm resampling, applied to the same patients' images at another
    spacing: the extraction uses the bundle's parameters (resampling to 1 mm), and every case
    is scored. (The scores do not reproduce the development ones: interpolating a noisy CT to
    a coarser grid and back smooths it, and first-order and texture features move, which is
    what acquisition differences do to a radiomics model.)"""
    work = tmp_path / "dev"
    work.mkdir()
    shutil.copytree(small_cohort_dir / "cohort", work / "cohort")
    dev = run_study(load_protocol(small_study(work, **{"preprocessing.resample_spacing": [1.0, 1.0, 1.0]})),
                    RunOptions(out_dir=work / "run"))
    assert load_radiomics_bundle(dev / "model").extraction_params["setting"]["resampledPixelSpacing"] == [1.0] * 3
    cohort = tmp_path / "cohort"
    shutil.copytree(small_cohort_dir / "cohort", cohort)
    manifest = pd.read_csv(cohort / "manifest.csv", dtype={"patient_id": str})
    for column, interpolator in (("image", sitk.sitkLinear), ("mask", sitk.sitkNearestNeighbor)):
        for relative in manifest[column]:
            image = sitk.ReadImage(str(cohort / relative))
            spacing = (0.9, 0.9, 1.6)
            size = [round(n * s / t) for n, s, t in zip(image.GetSize(), image.GetSpacing(), spacing, strict=True)]
            resampled = sitk.Resample(image, size, sitk.Transform(), interpolator, image.GetOrigin(), spacing,
                                      image.GetDirection(), 0, image.GetPixelID())
            sitk.WriteImage(resampled, str(cohort / relative))
    run_dir = validate_externally(dev / "model", load_external_protocol(external_protocol(tmp_path, cohort)),
                                  RunOptions(out_dir=tmp_path / "run"))
    used = yaml.safe_load((run_dir / "radiomics" / "params.yaml").read_text())
    assert used["setting"]["resampledPixelSpacing"] == [1.0, 1.0, 1.0]
    assert used == load_radiomics_bundle(dev / "model").extraction_params
    scores = pd.read_csv(run_dir / "scores" / "scores.csv", dtype={"patient_id": str}).set_index("patient_id")
    stored = pd.read_csv(dev / "statistics" / "scores.csv", dtype={"patient_id": str}).set_index("patient_id")
    assert set(scores.index) == set(stored.index)
    assert np.isfinite(scores["score"]).all()


def test_shared_outputs_of_a_validation_name_no_folder_of_the_machine(own_cohort) -> None:
    """results.json and the report's text hold no absolute folder of the run (the updated bundles
    are named relative to the run folder, inputs relative to the protocol's)."""
    import subprocess

    machine_folder = str(own_cohort.parent)
    assert machine_folder not in (own_cohort / "results.json").read_text()
    pdf_text = subprocess.run(["pdftotext", str(own_cohort / "report.pdf"), "-"], capture_output=True, check=True)
    assert machine_folder not in pdf_text.stdout.decode()
