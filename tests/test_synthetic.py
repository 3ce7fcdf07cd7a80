"""Tests of the SYNTHETIC cohort generator: phantom geometry and lesion, clinical proportions
against Table 1 of the nsclc_ici study, the survival model against a Cox fit, Harrell's C against a hand
computation and lifelines, determinism of the written files."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from lifelines import CoxPHFitter
from lifelines.utils import concordance_index

from studyrunner.synthetic import (
    GENERATOR_VERSION,
    LesionParams,
    generate_nsclc_ici_cohort,
    make_case,
    max_volume_ml,
    oracle_concordance,
    simulate_nsclc_ici,
)
from studyrunner.synthetic.nsclc_ici import HISTOLOGY_LABELS, OS_HAZARD, exact_counts

N_NSCLC_ICI_STUDY = 236


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def _touches_border(mask: np.ndarray) -> bool:
    return any(mask.take(index, axis=axis).any() for axis in range(3) for index in (0, -1))


@pytest.fixture(scope="module")
def full_size_cohort():
    return simulate_nsclc_ici(N_NSCLC_ICI_STUDY)


# --- phantom -------------------------------------------------------------------------------


def test_case_geometry_types_and_determinism():
    shape, spacing = (64, 64, 48), (0.7, 0.7, 1.25)
    lesion = LesionParams(volume_ml=2.5, heterogeneity=0.5, margin_irregularity=0.5)
    image, mask1, mask2 = make_case(np.random.default_rng(7), lesion, shape, spacing)
    expected_origin = (-31.5 * 0.7, -31.5 * 0.7, -23.5 * 1.25)
    assert image.GetPixelID() == sitk.sitkInt16
    for volume in (image, mask1, mask2):
        assert volume.GetSize() == shape
        assert volume.GetSpacing() == pytest.approx(spacing, abs=1e-12)
        assert volume.GetOrigin() == pytest.approx(expected_origin, abs=1e-12)
        assert volume.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert mask1.GetPixelID() == mask2.GetPixelID() == sitk.sitkUInt8
    again = make_case(np.random.default_rng(7), lesion, shape, spacing)
    for first, second in zip((image, mask1, mask2), again, strict=True):
        np.testing.assert_array_equal(_array(first), _array(second))


@pytest.mark.parametrize("irregularity", [0.0, 0.5, 1.0])
def test_reader1_volume_equals_requested_volume(irregularity):
    """Reader 1's lesion is scaled so that its analytic volume (1/3 * integral of R^3 over the
    sphere) is the requested one; the voxel count must agree within voxelisation error."""
    spacing = (0.75, 0.75, 1.0)
    lesion = LesionParams(volume_ml=3.0, heterogeneity=0.3, margin_irregularity=irregularity)
    _, mask1, _ = make_case(np.random.default_rng(11), lesion, spacing=spacing)
    voxel_ml = 0.75 * 0.75 * 1.0 / 1000.0
    assert _array(mask1).sum() * voxel_ml == pytest.approx(3.0, rel=0.03)


@pytest.mark.parametrize("spacing", [(0.6, 0.6, 0.8), (0.75, 0.75, 1.0), (0.95, 0.95, 1.25)])
@pytest.mark.parametrize("irregularity", [0.0, 1.0])
def test_largest_lesion_stays_inside_crop(spacing, irregularity):
    lesion = LesionParams(max_volume_ml(irregularity, (64, 64, 48), spacing), 0.5, irregularity)
    for seed in range(3):
        _, mask1, mask2 = make_case(np.random.default_rng(seed), lesion, spacing=spacing)
        for mask in (_array(mask1), _array(mask2)):
            assert mask.sum() > 0
            assert not _touches_border(mask)


def test_too_large_lesion_is_refused():
    limit = max_volume_ml(1.0)
    with pytest.raises(ValueError, match="does not fit"):
        make_case(np.random.default_rng(0), LesionParams(limit * 1.01, 0.5, 1.0))
    with pytest.raises(ValueError, match="heterogeneity"):
        LesionParams(1.0, 1.5, 0.0)


def test_intensities_are_ct_like_and_heterogeneity_shows_inside_lesion():
    """Lung median near -850 HU; the lesion core (reader 1 mask eroded by 2 voxels, away from
    partial volume) near +30 HU; its sd grows with heterogeneity: sqrt(texture^2 + noise^2)
    with texture sd 10 HU at 0 and 80 HU at 1, noise 20-40 HU."""
    core_sd = {}
    for heterogeneity in (0.0, 1.0):
        lesion = LesionParams(volume_ml=4.0, heterogeneity=heterogeneity, margin_irregularity=0.0)
        image, mask1, _ = make_case(np.random.default_rng(3), lesion)
        hu = _array(image).astype(float)
        core = _array(sitk.BinaryErode(mask1, (2, 2, 2))).astype(bool)
        lung = ~_array(sitk.BinaryDilate(mask1, (3, 3, 3))).astype(bool)
        assert np.median(hu[lung]) == pytest.approx(-850.0, abs=25.0)
        assert hu[core].mean() == pytest.approx(30.0, abs=30.0)
        core_sd[heterogeneity] = hu[core].std()
    assert 15.0 < core_sd[0.0] < 50.0
    assert 60.0 < core_sd[1.0] < 100.0


def test_reader2_agreement_and_irregularity_lowers_roundness():
    dice, roundness = [], {0.0: [], 1.0: []}
    shape_statistics = sitk.LabelShapeStatisticsImageFilter()
    for seed in range(5):
        for irregularity in (0.0, 1.0):
            lesion = LesionParams(volume_ml=2.5, heterogeneity=0.5, margin_irregularity=irregularity)
            _, mask1, mask2 = make_case(np.random.default_rng(seed), lesion)
            dice.append(_dice(_array(mask1), _array(mask2)))
            shape_statistics.Execute(mask1)
            roundness[irregularity].append(shape_statistics.GetRoundness(1))
    assert 0.85 <= float(np.mean(dice)) <= 0.95
    assert min(dice) >= 0.80
    assert max(dice) <= 0.98
    assert np.mean(roundness[1.0]) < np.mean(roundness[0.0]) - 0.03


# --- Harrell's C ---------------------------------------------------------------------------


def test_oracle_concordance_hand_case():
    """time 1, 2, 2(censored), 4; events 1, 1, 0, 1; lp 0.8, 0.4, 0.6, 0.4.
    Comparable pairs: (1,2) (1,3) (1,4): all concordant = 3; (2,3): censored at the same time
    counts as longer, 0.4 < 0.6 discordant = 0; (2,4): tied lp = 0.5. C = 3.5 / 5 = 0.7."""
    time, event, lp = [1, 2, 2, 4], [1, 1, 0, 1], [0.8, 0.4, 0.6, 0.4]
    assert oracle_concordance(lp, time, event) == pytest.approx(0.7, abs=1e-12)
    assert concordance_index(time, -np.array(lp), event) == pytest.approx(0.7, abs=1e-12)


def test_oracle_concordance_matches_lifelines(full_size_cohort):
    clinical, truth = full_size_cohort.clinical, full_size_cohort.truth
    for lp, time, event in (
        (truth["true_lp_os"], clinical["os_days"], clinical["os_event"]),
        (truth["true_lp_pfs"], clinical["pfs_days"], clinical["pfs_event"]),
        (np.round(truth["true_lp_os"], 1), clinical["os_days"], clinical["os_event"]),  # ties in lp
    ):
        assert oracle_concordance(lp, time, event) == pytest.approx(concordance_index(time, -lp, event), abs=1e-12)


def test_oracle_concordance_rejects_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        oracle_concordance([0.1, 0.2], [1, 2, 3], [1, 0, 1])
    with pytest.raises(ValueError, match="no comparable pair"):
        oracle_concordance([0.1, 0.2], [1, 2], [0, 0])


# --- clinical table and survival model ------------------------------------------------------


def test_exact_counts_hand_case():
    # 10 x (0.19, 0.35, 0.46) = 1.9, 3.5, 4.6 -> floors 1, 3, 4; remainders 0.9, 0.5, 0.6 -> +1, 0, +1
    assert exact_counts(10, [0.19, 0.35, 0.46]).tolist() == [2, 3, 5]


def _shares(values: np.ndarray) -> dict[str, float]:
    labels, counts = np.unique(values.astype(str), return_counts=True)
    return {label: count / len(values) for label, count in zip(labels, counts, strict=True)}


# Table 1 of the nsclc_ici study (N = 236): counts / 236.
TABLE1 = {
    "sex": {"Male": 196, "Female": 40},
    "smoking": {"Never": 45, "Current or former": 83, "Unknown": 108},
    "ecog": {"0": 11, "1": 112, "2": 6, "Unknown": 107},
    "stage": {"III": 13, "IV": 116, "Unknown": 107},
    "mutation": {"No mutation": 104, "Mutation": 25, "Unknown": 107},
    "best_response": {"PD": 62, "SD": 119, "PR": 55},
}


@pytest.mark.parametrize("n_patients", [24, N_NSCLC_ICI_STUDY])
def test_categorical_proportions_follow_table1(n_patients):
    clinical = simulate_nsclc_ici(n_patients).clinical
    tolerance = 1.0 / n_patients + 0.01
    for column, counts in TABLE1.items():
        shares = _shares(clinical[column])
        for label, count in counts.items():
            assert shares.get(label, 0.0) == pytest.approx(count / 236, abs=tolerance), (column, label)
    unknown = clinical["ecog"] == "Unknown"
    np.testing.assert_array_equal(clinical["stage"] == "Unknown", unknown)
    np.testing.assert_array_equal(clinical["mutation"] == "Unknown", unknown)
    canonical = {label: group for group, labels in HISTOLOGY_LABELS.items() for label in labels}
    histology = _shares(np.array([canonical[label] for label in clinical["histology"]]))
    for group, share in {"squamous": 0.30, "adenocarcinoma": 0.50, "other": 0.20}.items():
        assert histology[group] == pytest.approx(share, abs=tolerance)


def test_full_size_cohort_outcomes_and_acquisition(full_size_cohort):
    clinical, truth = full_size_cohort.clinical, full_size_cohort.truth
    assert clinical["os_event"].mean() == pytest.approx(62 / 236, abs=0.04)
    assert clinical["pfs_event"].mean() == pytest.approx(142 / 236, abs=0.05)
    assert np.all(clinical["pfs_days"] <= clinical["os_days"])
    assert np.all(clinical["pfs_event"][clinical["os_event"] == 1] == 1)
    assert clinical["os_days"].min() >= 1
    assert clinical["os_days"].max() <= 1130
    assert np.median(clinical["age"]) == pytest.approx(64, abs=1)
    assert np.percentile(clinical["age"], 25) == pytest.approx(57, abs=2)
    assert np.percentile(clinical["age"], 75) == pytest.approx(70, abs=2)
    assert clinical["voxel_spacing_mm"].mean() == pytest.approx(0.75, abs=0.02)
    assert clinical["voxel_spacing_mm"].std() == pytest.approx(0.09, abs=0.02)
    assert set(clinical["slice_thickness_mm"]) <= {0.8, 1.0, 1.25}
    # Higher PFS risk -> more progressive disease.
    response_lp = {r: truth["true_lp_pfs"][clinical["best_response"] == r].mean() for r in ("PR", "SD", "PD")}
    assert response_lp["PR"] < response_lp["SD"] < response_lp["PD"]
    c_index = oracle_concordance(truth["true_lp_os"], clinical["os_days"], clinical["os_event"])
    assert 0.70 <= c_index <= 0.75


def test_population_oracle_c_index_in_target_range():
    cohort = simulate_nsclc_ici(4000, seed=5)
    clinical = cohort.clinical
    c_index = oracle_concordance(cohort.truth["true_lp_os"], clinical["os_days"], clinical["os_event"])
    assert 0.70 <= c_index <= 0.75
    assert clinical["os_event"].mean() == pytest.approx(0.26, abs=0.02)
    assert clinical["pfs_event"].mean() == pytest.approx(0.60, abs=0.02)


def test_cox_fit_recovers_true_os_coefficients():
    """A Cox model (lifelines) fitted to a large simulated cohort on the true covariates must
    recover the generating log-hazard ratios: an independent check of the time generation."""
    cohort = simulate_nsclc_ici(4000, seed=11)
    clinical, truth = cohort.clinical, cohort.truth
    frame = pd.DataFrame(
        {
            "log_volume": (np.log(truth["volume_ml"]) - math.log(2.0)) / 0.5,
            "heterogeneity": (truth["heterogeneity"] - 0.5) / math.sqrt(0.05),
            "margin_irregularity": (truth["margin_irregularity"] - 0.5) / math.sqrt(0.05),
            "age_per_10_years": (clinical["age"] - 64.0) / 10.0,
            "ecog_0": (truth["ecog_true"] == "0").astype(float),
            "ecog_2": (truth["ecog_true"] == "2").astype(float),
            "stage_iv": (truth["stage_true"] == "IV").astype(float),
            "mutation": (truth["mutation_true"] == "Mutation").astype(float),
            "time": clinical["os_days"],
            "event": clinical["os_event"],
        }
    )
    fitted = CoxPHFitter().fit(frame, duration_col="time", event_col="event")
    for name in ("log_volume", "heterogeneity", "margin_irregularity", "age_per_10_years", "stage_iv"):
        estimate, se = fitted.params_[name], fitted.standard_errors_[name]
        assert abs(estimate - getattr(OS_HAZARD, name)) < 3.5 * se, name
    fitted_lp = fitted.predict_log_partial_hazard(frame)
    np.testing.assert_allclose(fitted_lp - fitted_lp.mean(), truth["true_lp_os"] - truth["true_lp_os"].mean(), atol=0.5)


# --- written cohort --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def written_cohorts(tmp_path_factory):
    first = generate_nsclc_ici_cohort(tmp_path_factory.mktemp("first"), n_patients=24, seed=123)
    second = generate_nsclc_ici_cohort(tmp_path_factory.mktemp("second"), n_patients=24, seed=123)
    return first, second


def test_rerun_is_byte_identical(written_cohorts):
    first, second = written_cohorts
    for name in ("clinical_csv", "manifest_csv", "truth_csv", "readme_txt"):
        assert getattr(first, name).read_bytes() == getattr(second, name).read_bytes(), name
    names = sorted(path.name for path in first.images_dir.iterdir())
    assert names == sorted(path.name for path in second.images_dir.iterdir())
    assert len(names) == 3 * 24
    for name in names:
        assert (first.images_dir / name).read_bytes() == (second.images_dir / name).read_bytes(), name


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_written_files_agree_with_each_other(written_cohorts):
    files = written_cohorts[0]
    clinical, manifest, truth = _rows(files.clinical_csv), _rows(files.manifest_csv), _rows(files.truth_csv)
    ids = [r["patient_id"] for r in clinical]
    assert [r["patient_id"] for r in manifest] == ids
    assert [r["patient_id"] for r in truth] == ids
    assert clinical[0]["patient_id"] == "SYN0001"
    assert clinical[-1]["patient_id"] == "SYN0024"
    readme = files.readme_txt.read_text(encoding="utf-8")
    assert "SYNTHETIC DATA" in readme
    assert GENERATOR_VERSION in readme
    assert "seed 123" in readme
    dices = []
    for patient, row, oracle in zip(clinical, manifest, truth, strict=True):
        image, mask1, mask2 = (
            sitk.ReadImage(str(files.clinical_csv.parent / row[k])) for k in ("image", "mask", "mask_reader2")
        )
        spacing = (float(patient["voxel_spacing_mm"]),) * 2 + (float(patient["slice_thickness_mm"]),)
        for volume in (image, mask1, mask2):
            assert volume.GetSize() == (64, 64, 48)
            # NIfTI stores pixdim as float32: 0.715 reads back as 0.71499997.
            assert volume.GetSpacing() == pytest.approx(spacing, abs=1e-6)
            assert volume.GetOrigin() == pytest.approx(image.GetOrigin(), abs=1e-9)
        m1, m2 = _array(mask1), _array(mask2)
        assert m1.sum() > 0
        assert not _touches_border(m1)
        assert not _touches_border(m2)
        assert m1.sum() * np.prod(spacing) / 1000.0 == pytest.approx(float(oracle["volume_ml"]), rel=0.08)
        dices.append(_dice(m1, m2))
        # The oracle lp is reproducible from the written truth and clinical values.
        z = {
            "log_volume": (math.log(float(oracle["volume_ml"])) - math.log(2.0)) / 0.5,
            "heterogeneity": (float(oracle["heterogeneity"]) - 0.5) / math.sqrt(0.05),
            "margin_irregularity": (float(oracle["margin_irregularity"]) - 0.5) / math.sqrt(0.05),
            "age_per_10_years": (int(patient["age"]) - 64) / 10.0,
            "ecog_0": float(oracle["ecog_true"] == "0"),
            "ecog_2": float(oracle["ecog_true"] == "2"),
            "stage_iv": float(oracle["stage_true"] == "IV"),
            "mutation": float(oracle["mutation_true"] == "Mutation"),
        }
        lp = sum(getattr(OS_HAZARD, name) * value for name, value in z.items())
        assert float(oracle["true_lp_os"]) == pytest.approx(lp, abs=2e-6)
        assert int(patient["pfs_days"]) <= int(patient["os_days"])
        if patient["ecog"] != "Unknown":
            assert patient["ecog"] == oracle["ecog_true"]
    assert 0.85 <= float(np.mean(dices)) <= 0.95
