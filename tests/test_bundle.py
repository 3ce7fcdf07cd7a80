"""The frozen radiomics Cox bundle (format /2): applied to its own development cohort it gives
back the run's numbers; its baseline survival is Breslow's, checked by hand and against R's
basehaz; an altered or older bundle is refused; the restricted PyRadiomics parameters extract
the same values as the full ones."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from lifelines.utils import concordance_index

from studyrunner.bundle import (
    BUNDLE_FORMAT,
    BundleError,
    RadiomicsBundle,
    baseline_survival_at,
    extraction_params,
    linear_predictor,
    load_bundle,
    load_radiomics_bundle,
    predicted_survival,
    restrict_params,
    risk_group,
)
from studyrunner.errors import InputError
from studyrunner.protocol import load_protocol
from studyrunner.radiomics import extract_case, radiomics_params
from studyrunner.run_folder import sha256_json
from studyrunner.runner import RunOptions, run_study
from tests.conftest import SHARED_DATA, small_study

# --- a frozen small study ------------------------------------------------------------------


@pytest.fixture(scope="module")
def frozen(small_cohort_dir, tmp_path_factory):
    """(run folder, bundle) of a small synthetic study."""
    work = tmp_path_factory.mktemp("bundle")
    shutil.copytree(small_cohort_dir / "cohort", work / "cohort")
    run_dir = run_study(load_protocol(small_study(work)), RunOptions(out_dir=work / "run"))
    return run_dir, load_radiomics_bundle(run_dir / "model")


def development_table(run_dir: Path, bundle: RadiomicsBundle) -> pd.DataFrame:
    """The run's features, scores, partitions and outcome, one row per scored patient."""
    features = pd.read_csv(run_dir / "radiomics" / "features.csv", dtype={"patient_id": str})
    scores = pd.read_csv(run_dir / "statistics" / "scores.csv", dtype={"patient_id": str})
    clinical = pd.read_csv(run_dir / "cohort" / "clinical.csv", dtype={"patient_id": str})
    outcome = clinical[["patient_id", bundle.endpoint.time, bundle.endpoint.event]]
    return scores.merge(features, on="patient_id").merge(outcome, on="patient_id").set_index("patient_id")


@pytest.mark.slow
@pytest.mark.needs_r
def test_applied_to_its_development_cohort_the_bundle_gives_the_run_s_scores_and_c_index(frozen):
    run_dir, bundle = frozen
    table = development_table(run_dir, bundle)
    lp = linear_predictor(bundle, table)
    np.testing.assert_allclose(lp, table["risk_score"], rtol=0, atol=1e-9)
    assert (risk_group(bundle, lp) == table["risk_group"]).all()
    endpoint = bundle.endpoint
    for cohort, block in bundle.development.performance.items():
        part = table[table["partition"] == cohort]
        expected = concordance_index(part[endpoint.time], -lp[part.index], part[endpoint.event])
        assert block.c_index == pytest.approx(expected, abs=1e-9)
        assert block.n == len(part)
    training = table[table["partition"].isin(bundle.development.partitions)]
    assert bundle.development.n == len(training) == bundle.baseline_survival.n
    assert bundle.development.n_events == int(training[endpoint.event].sum())
    summary = bundle.development.linear_predictor
    assert summary.mean == pytest.approx(training["risk_score"].mean(), abs=1e-12)
    assert summary.sd == pytest.approx(training["risk_score"].std(ddof=1), abs=1e-12)
    assert summary.quantiles["p50"] == pytest.approx(training["risk_score"].median(), abs=1e-12)
    table_one = json.loads((run_dir / "statistics" / "table_one.json").read_text())
    assert bundle.development.table_one == table_one


@pytest.mark.slow
@pytest.mark.needs_r
def test_bundle_records_unit_versions_and_the_needed_pyradiomics_parameters(frozen):
    _, bundle = frozen
    assert bundle.format == BUNDLE_FORMAT == "studyrunner.radiomics-cox/2"
    assert (bundle.endpoint.name, bundle.endpoint.unit) == ("pfs", "days")
    assert set(bundle.versions) == {"pyradiomics", "SimpleITK", "numpy", "studyrunner"}
    assert bundle.versions["pyradiomics"]
    assert bundle.versions["numpy"] == np.__version__
    params = extraction_params(bundle)
    assert list(params["imageType"]) == ["Original"]
    named = {f"original_{cls}_{name}" for cls, names in params["featureClass"].items() for name in names}
    assert named == set(bundle.features)


@pytest.mark.slow
@pytest.mark.needs_r
def test_restricted_parameters_reproduce_the_development_feature_values(frozen):
    run_dir, bundle = frozen
    clinical = pd.read_csv(run_dir / "cohort" / "clinical.csv", dtype={"patient_id": str}).set_index("patient_id")
    features = pd.read_csv(run_dir / "radiomics" / "features.csv", dtype={"patient_id": str}).set_index("patient_id")
    for patient_id in features.index[:2]:
        image, mask = (sitk.ReadImage(str(clinical.loc[patient_id, c])) for c in ("image", "mask"))
        values = extract_case(image, mask, extraction_params(bundle))
        assert set(values) == set(bundle.features)
        for name in bundle.features:
            assert values[name] == pytest.approx(features.loc[patient_id, name], rel=0, abs=1e-9)


def breslow_by_hand(time: np.ndarray, event: np.ndarray, lp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Breslow (1972): H0(t) = sum over event times t_i <= t of d_i / sum_{t_j >= t_i} exp(lp_j)."""
    times = np.unique(time[event == 1])
    increments = [event[time == t].sum() / np.exp(lp[time >= t]).sum() for t in times]
    return times, np.exp(-np.cumsum(increments))


@pytest.mark.slow
@pytest.mark.needs_r
def test_baseline_survival_is_breslow_s_at_lp_zero_by_hand_and_by_r_basehaz(frozen):
    run_dir, bundle = frozen
    table = development_table(run_dir, bundle)
    training = table[table["partition"].isin(bundle.development.partitions)]
    time = training[bundle.endpoint.time].to_numpy(float)
    event = training[bundle.endpoint.event].to_numpy(int)
    lp = training["risk_score"].to_numpy(float)
    s0 = bundle.baseline_survival
    assert max(s0.n_event) > 1  # tied event times: Breslow and Efron would differ here
    times, survival = breslow_by_hand(time, event, lp)
    np.testing.assert_allclose(s0.time, times, rtol=0, atol=0)
    np.testing.assert_allclose(s0.survival, survival, rtol=0, atol=1e-6)

    import rpy2.robjects as ro

    r_basehaz = ro.r("""function(time, event, lp) {
        fit <- survival::coxph(survival::Surv(time, event) ~ offset(lp), ties = "breslow")
        bh <- survival::basehaz(fit, centered = FALSE)
        bh[bh$time %in% unique(time[event == 1]), ]
    }""")
    result = r_basehaz(ro.FloatVector(time), ro.IntVector(event), ro.FloatVector(lp))
    np.testing.assert_allclose(s0.time, list(result.rx2("time")), rtol=0, atol=0)
    np.testing.assert_allclose(s0.survival, np.exp(-np.asarray(result.rx2("hazard"))), rtol=0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.needs_r
def test_predicted_survival_is_the_baseline_to_the_power_exp_lp(frozen):
    _, bundle = frozen
    s0 = bundle.baseline_survival
    lp = pd.Series([-1.0, 0.0, 0.7], index=["a", "b", "c"])
    first, second = s0.time[0], s0.time[1]
    assert (predicted_survival(bundle, lp, first / 2) == 1.0).all()  # 1 before the first event time
    assert baseline_survival_at(bundle, first) == s0.survival[0]  # right-continuous
    assert baseline_survival_at(bundle, (first + second) / 2) == s0.survival[0]
    np.testing.assert_allclose(predicted_survival(bundle, lp, second),
                               s0.survival[1] ** np.exp(lp.to_numpy()), rtol=1e-15)
    assert predicted_survival(bundle, lp, 0).index.tolist() == ["a", "b", "c"]
    with pytest.raises(InputError, match="follow-up"):
        predicted_survival(bundle, lp, s0.last_follow_up + 1)


@pytest.mark.slow
@pytest.mark.needs_r
def test_a_missing_feature_column_is_named(frozen):
    run_dir, bundle = frozen
    table = development_table(run_dir, bundle).drop(columns=[bundle.features[0]])
    with pytest.raises(InputError, match=re.escape(bundle.features[0])):
        linear_predictor(bundle, table)


# --- refused bundles -----------------------------------------------------------------------


def copy_bundle(run_dir: Path, folder: Path) -> tuple[Path, dict]:
    target = folder / "bundle.json"
    shutil.copyfile(run_dir / "model" / "bundle.json", target)
    return target, json.loads(target.read_text())


def content_hash(document: dict) -> str:
    return sha256_json({k: v for k, v in document.items() if k != "content_sha256"})


@pytest.mark.slow
@pytest.mark.needs_r
def test_a_tampered_coefficient_is_refused_naming_the_file_and_both_hashes(frozen, tmp_path):
    run_dir, bundle = frozen
    path, document = copy_bundle(run_dir, tmp_path)
    document["coefficients"][bundle.features[0]] *= 1.01
    path.write_text(json.dumps(document, indent=2))
    with pytest.raises(BundleError) as refused:
        load_radiomics_bundle(path)
    message = str(refused.value)
    assert str(path) in message
    assert bundle.content_sha256 in message
    assert content_hash(document) in message
    assert isinstance(refused.value, InputError)
    assert refused.value.exit_code == 2


@pytest.mark.slow
@pytest.mark.needs_r
def test_a_tampered_byte_is_refused_naming_the_file_and_both_hashes(frozen, tmp_path):
    run_dir, bundle = frozen
    path, _ = copy_bundle(run_dir, tmp_path)
    raw = bytearray(path.read_bytes())
    at = raw.index(b'"survival": [') + len(b'"survival": [')
    at = next(i for i in range(at, len(raw)) if chr(raw[i]).isdigit() and chr(raw[i - 1]) != "-" and raw[i] != ord("0"))
    raw[at] = ord("1") if raw[at] != ord("1") else ord("2")
    path.write_bytes(bytes(raw))
    with pytest.raises(BundleError) as refused:
        load_radiomics_bundle(tmp_path)  # the model/ folder form
    message = str(refused.value)
    assert str(path) in message
    assert bundle.content_sha256 in message
    assert content_hash(json.loads(path.read_text())) in message


@pytest.mark.slow
@pytest.mark.needs_r
def test_a_format_1_bundle_is_refused_with_what_it_lacks(frozen, tmp_path):
    run_dir, _ = frozen
    path, document = copy_bundle(run_dir, tmp_path)
    for added in ("baseline_survival", "development", "versions", "extraction_params"):
        document.pop(added)
    document["endpoint"].pop("unit")
    document["endpoint"].pop("label")
    document["format"] = "studyrunner.radiomics-cox/1"
    document["content_sha256"] = content_hash(document)
    path.write_text(json.dumps(document, indent=2))
    expected = "endpoint.unit, baseline_survival, development, versions, extraction_params"
    for load in (load_radiomics_bundle, load_bundle):
        with pytest.raises(BundleError, match=re.escape(expected)) as refused:
            load(path)
        assert "re-run the study with this studyrunner to freeze a /2 bundle" in str(refused.value)
        assert str(path) in str(refused.value)


# --- the PyRadiomics parameters of the needed features only --------------------------------


def phantom(seed: int = 0) -> tuple[sitk.Image, sitk.Image]:
    """A 24^3 smooth random image (HU-like) and an ellipsoid mask, anisotropic voxels."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:24, :24, :24] - 11.5
    inside = (x / 8) ** 2 + (y / 6) ** 2 + (z / 5) ** 2 <= 1
    values = rng.normal(30, 60, (24, 24, 24)) + 90 * inside
    image = sitk.GetImageFromArray(values.astype(np.int16))
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    for item in (image, mask):
        item.SetSpacing((0.9, 0.8, 1.5))
    return image, mask


FULL = radiomics_params({"Original": {}, "LoG": {"sigma": [1.0, 2.0, 3.0]}, "Wavelet": {}},
                        ["firstorder", "shape", "glcm", "glszm"], 25.0, None, None)
NEEDED = ["original_shape_Elongation", "original_glcm_Contrast", "log-sigma-2-0-mm-3D_firstorder_Mean",
          "log-sigma-2-0-mm-3D_glszm_ZoneEntropy", "wavelet-LLH_glszm_SmallAreaEmphasis",
          "wavelet-HHL_firstorder_Kurtosis"]


def test_restricted_parameters_keep_the_used_image_types_sigmas_and_features():
    restricted = restrict_params(FULL, NEEDED)
    assert restricted["imageType"] == {"Original": {}, "LoG": {"sigma": [2.0]}, "Wavelet": {}}
    assert restricted["featureClass"] == {"shape": ["Elongation"], "glcm": ["Contrast"],
                                          "firstorder": ["Mean", "Kurtosis"],
                                          "glszm": ["ZoneEntropy", "SmallAreaEmphasis"]}
    assert restricted["setting"] == FULL["setting"]
    with pytest.raises(ValueError, match="log-sigma-4-0-mm-3D"):
        restrict_params(FULL, ["log-sigma-4-0-mm-3D_firstorder_Mean"])
    with pytest.raises(ValueError, match="square_firstorder_Mean"):
        restrict_params(FULL, ["square_firstorder_Mean"])
    with pytest.raises(ValueError, match="ngtdm"):
        restrict_params(FULL, ["original_ngtdm_Busyness"])


def assert_same_needed_values(image: sitk.Image, mask: sitk.Image, params: dict, needed: list[str]) -> None:
    full = extract_case(image, mask, params)
    restricted = extract_case(image, mask, restrict_params(params, needed))
    assert set(needed) <= set(restricted)
    assert len(restricted) < len(full)
    for name in needed:
        assert restricted[name] == pytest.approx(full[name], rel=0, abs=1e-9), name


def test_restricted_extraction_gives_the_full_extraction_s_values_on_a_phantom():
    assert_same_needed_values(*phantom(), FULL, NEEDED)


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared data folder {SHARED_DATA} is absent")
def test_restricted_extraction_gives_the_full_extraction_s_values_on_real_ct():
    folder = SHARED_DATA / "nsclc_lung1_real"
    with open(folder / "manifest.csv", newline="") as manifest:
        rows = {row["patient_id"]: row for row in csv.DictReader(manifest)}
    params = radiomics_params({"Original": {}, "LoG": {"sigma": [1.0, 3.0]}, "Wavelet": {}},
                              ["firstorder", "shape", "glcm", "glszm"], 25.0, None, None)
    needed = ["original_shape_Sphericity", "log-sigma-3-0-mm-3D_glcm_Idm", "wavelet-LHL_firstorder_Entropy",
              "original_glszm_ZonePercentage"]
    for patient_id in ("P024", "P063"):  # small tumours, to keep the test fast
        image, mask = (sitk.ReadImage(str(folder / rows[patient_id][c])) for c in ("image", "mask"))
        assert_same_needed_values(image, mask, params, needed)
