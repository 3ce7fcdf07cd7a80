"""Tests of the SYNTHETIC oesophageal SCC cohort (the escc_ici_chemo study): Table 1 counts, PFS median and
reverse-Kaplan-Meier follow-up against lifelines, the oracle C-index against lifelines, the
survival model against a lifelines Cox fit, image geometry, tissue intensities, the two
readers' agreement, and byte-identical re-runs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.utils import concordance_index
from scipy.stats import spearmanr

from studyrunner.synthetic.common import oracle_concordance
from studyrunner.synthetic.escc import (
    GENERATOR_VERSION,
    PFS_HAZARD,
    EsccLesion,
    generate_escc_cohort,
    make_escc_case,
    simulate_escc,
)

# Table 1 of the escc_ici_chemo study (N = 87), counts.
TABLE1 = {
    "sex": {"Male": 64, "Female": 23},
    "bmi_group": {"Overweight": 20, "Normal": 67},
    "smoking": {"Yes": 49, "No": 38},
    "drinking": {"Yes": 26, "No": 61},
    "ecog": {"0-1": 71, ">=2": 16},
}
MEDIAN_PFS, MEDIAN_FOLLOW_UP = 25.5, 37.2  # months, the escc_ici_chemo paper's section 2.1


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _km_median(time: np.ndarray, event: np.ndarray) -> float:
    return float(KaplanMeierFitter().fit(time, event).median_survival_time_)


@pytest.fixture(scope="module")
def seed_cohort():
    return simulate_escc()


@pytest.fixture(scope="module")
def population():
    return simulate_escc(20000, n_second_segmentation=0, seed=7)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The default cohort (87 patients, 30 second segmentations, seed 20231001) on disk."""
    out = tmp_path_factory.mktemp("escc")
    files = generate_escc_cohort(out)
    return out, files


# --- clinical table -------------------------------------------------------------------------


def test_table1_counts_are_exact_at_87(seed_cohort):
    clinical = seed_cohort.clinical
    for column, counts in TABLE1.items():
        labels, observed = np.unique(clinical[column].astype(str), return_counts=True)
        assert dict(zip(labels, observed.tolist(), strict=True)) == counts, column
    age = clinical["age"]
    assert int((age > 60).sum()) == 57  # 65.5%
    assert age.mean() == pytest.approx(63.0, abs=1.0)
    assert age.min() >= 45
    assert age.max() <= 81
    assert age.max() - age.min() >= 25  # spread like the paper's 45-81


@pytest.mark.parametrize("n_patients", [20, 150])
def test_table1_proportions_at_other_sizes(n_patients):
    clinical = simulate_escc(n_patients, n_second_segmentation=5, seed=3).clinical
    tolerance = 1.0 / n_patients + 1e-9
    for column, counts in TABLE1.items():
        for label, count in counts.items():
            assert np.mean(clinical[column] == label) == pytest.approx(count / 87, abs=tolerance), (column, label)
    assert np.mean(clinical["age"] > 60) == pytest.approx(57 / 87, abs=tolerance)


# --- survival ---------------------------------------------------------------------------------


def test_seed_cohort_median_pfs_and_follow_up(seed_cohort):
    """Kaplan-Meier median PFS and reverse-KM median follow-up (lifelines) near the paper's
    25.5 and 37.2 months; enough events and patients at risk for time-dependent AUC at 1-4 years."""
    time, event = seed_cohort.clinical["pfs_months"], seed_cohort.clinical["pfs_event"]
    assert _km_median(time, event) == pytest.approx(MEDIAN_PFS, abs=2.5)
    assert _km_median(time, 1 - event) == pytest.approx(MEDIAN_FOLLOW_UP, abs=1.5)
    censored = time[event == 0]
    assert censored.min() >= 34.0
    assert time.max() <= 64.0
    assert np.mean(censored <= 46.0) >= 0.75  # the paper's range 33.8-46.0 for most patients
    assert int(((time < 12) & (event == 1)).sum()) >= 5
    assert int(((time > 36) & (time <= 48) & (event == 1)).sum()) >= 1
    assert int((time > 48).sum()) >= 3


def test_population_median_pfs_and_follow_up(population):
    """With 20,000 patients the sample medians are within sampling error of the design."""
    time, event = population.clinical["pfs_months"], population.clinical["pfs_event"]
    assert _km_median(time, event) == pytest.approx(MEDIAN_PFS, abs=0.6)
    assert _km_median(time, 1 - event) == pytest.approx(MEDIAN_FOLLOW_UP, abs=0.6)
    for year in range(1, 6):  # events in every year of follow-up
        assert int(((time > 12 * (year - 1)) & (time <= 12 * year) & (event == 1)).sum()) >= 50, year
    assert int((time > 60).sum()) >= 50


def test_oracle_c_index_in_target_range_and_equals_lifelines(seed_cohort, population):
    for cohort in (seed_cohort, population):
        lp, time, event = cohort.truth["true_lp_pfs"], cohort.clinical["pfs_months"], cohort.clinical["pfs_event"]
        c_index = oracle_concordance(lp, time, event)
        assert c_index == pytest.approx(concordance_index(time, -lp, event), abs=1e-12)
        assert 0.70 <= c_index <= 0.75


def test_cox_fit_recovers_true_coefficients():
    """lifelines' Cox fit on the generating covariates of a large cohort recovers the log
    hazard ratios: an independent check of the Weibull time generation."""
    cohort = simulate_escc(4000, n_second_segmentation=0, seed=11)
    truth = cohort.truth
    frame = pd.DataFrame(
        {
            "heterogeneity": (truth["heterogeneity"] - 0.5) / math.sqrt(0.05),
            "wall_thickness": (truth["wall_thickness_mm"] - 14.0) / 3.0,
            "enhancement": (truth["enhancement"] - 0.5) / math.sqrt(0.05),
            "time": cohort.clinical["pfs_months"],
            "event": cohort.clinical["pfs_event"],
        }
    )
    fitted = CoxPHFitter().fit(frame, duration_col="time", event_col="event")
    for name in ("heterogeneity", "wall_thickness", "enhancement"):
        assert abs(fitted.params_[name] - getattr(PFS_HAZARD, name)) < 3.5 * fitted.standard_errors_[name], name
    lp = frame[["heterogeneity", "wall_thickness", "enhancement"]].to_numpy() @ [
        PFS_HAZARD.heterogeneity, PFS_HAZARD.wall_thickness, PFS_HAZARD.enhancement
    ]
    np.testing.assert_allclose(truth["true_lp_pfs"], lp, atol=1e-6)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="n_second_segmentation"):
        simulate_escc(10, n_second_segmentation=11)
    with pytest.raises(ValueError, match="does not fit"):
        make_escc_case(np.random.default_rng(0), EsccLesion(20.0, 40.0, 0.5, 0.5), (40, 40, 14), (0.8, 0.8, 5.0))
    with pytest.raises(ValueError, match="heterogeneity"):
        EsccLesion(14.0, 30.0, 1.2, 0.5)


# --- written cohort ---------------------------------------------------------------------------


def test_rerun_is_byte_identical(tmp_path):
    first = generate_escc_cohort(tmp_path / "a", n_patients=6, n_second_segmentation=3, seed=5)
    second = generate_escc_cohort(tmp_path / "b", n_patients=6, n_second_segmentation=3, seed=5)
    for name in ("clinical_csv", "manifest_csv", "truth_csv", "readme_txt"):
        assert getattr(first, name).read_bytes() == getattr(second, name).read_bytes(), name
    names = sorted(path.name for path in first.images_dir.iterdir())
    assert names == sorted(path.name for path in second.images_dir.iterdir())
    assert len(names) == 2 * 6 + 3
    for name in names:
        assert (first.images_dir / name).read_bytes() == (second.images_dir / name).read_bytes(), name


def test_files_second_segmentations_and_readme(written):
    _, files = written
    clinical, manifest, truth = _rows(files.clinical_csv), _rows(files.manifest_csv), _rows(files.truth_csv)
    ids = [f"ESCC{i:03d}" for i in range(1, 88)]
    assert [r["patient_id"] for r in clinical] == ids
    assert [r["patient_id"] for r in manifest] == ids
    assert [r["patient_id"] for r in truth] == ids
    assert list(clinical[0]) == [
        "patient_id", "age", "sex", "bmi_group", "smoking", "drinking", "ecog", "pfs_months", "pfs_event",
    ]
    assert list(manifest[0]) == ["patient_id", "image", "mask", "mask_reader2"]
    second = [r for r in manifest if r["mask_reader2"]]
    assert len(second) == 30
    assert sorted(p.name for p in files.images_dir.glob("*_mask_r2.nii.gz")) == sorted(
        f"{r['patient_id']}_mask_r2.nii.gz" for r in second
    )
    assert manifest[0]["image"] == "images/ESCC001_ct.nii.gz"
    assert manifest[0]["mask"] == "images/ESCC001_mask.nii.gz"
    readme = files.readme_txt.read_text(encoding="utf-8")
    assert "SYNTHETIC DATA" in readme
    assert f"version {GENERATOR_VERSION}" in readme
    assert "seed 20231001" in readme
    assert "5 years" in readme
    assert str(PFS_HAZARD.heterogeneity) in readme


def test_geometry_intensities_and_reader_agreement(written):
    """Masks share the image's grid; 5 mm slices, in-plane 0.70-0.90 mm; fat, aorta and air at
    their HU; the tumour core's mean and sd follow the truth (enhancement, fine texture);
    reader 2 agrees with reader 1 like a second radiologist (Dice about 0.8-0.95)."""
    out, files = written
    truth = {r["patient_id"]: r for r in _rows(files.truth_csv)}
    dices, core_sd, texture_sd, core_mean, tumour_mean, volume, thickness = [], [], [], [], [], [], []
    for row in _rows(files.manifest_csv):
        image, mask1 = sitk.ReadImage(str(out / row["image"])), sitk.ReadImage(str(out / row["mask"]))
        masks = [mask1] + ([sitk.ReadImage(str(out / row["mask_reader2"]))] if row["mask_reader2"] else [])
        oracle = truth[row["patient_id"]]
        assert image.GetSpacing()[2] == 5.0
        assert 0.70 <= image.GetSpacing()[0] == image.GetSpacing()[1] <= 0.90
        assert image.GetSpacing()[0] == pytest.approx(float(oracle["in_plane_spacing_mm"]), abs=1e-6)
        for mask in masks:
            assert mask.GetSize() == image.GetSize() == (80, 80, 14)
            assert mask.GetSpacing() == image.GetSpacing()
            assert mask.GetOrigin() == image.GetOrigin()
            assert mask.GetDirection() == image.GetDirection()
            m = _array(mask)
            assert set(np.unique(m)) == {0, 1}
            assert not any(m.take(i, axis=axis).any() for axis in range(3) for i in (0, -1))  # away from the border
        hu, m1 = _array(image).astype(float), _array(mask1).astype(bool)
        assert np.mean((hu > -140) & (hu < -60)) > 0.25  # mediastinal fat
        assert np.percentile(hu, 99.5) > 220  # contrast-enhanced aorta
        assert hu.min() < -850
        assert not (m1 & (hu < -850)).any()  # lumen air, never in the tumour mask
        core = _array(sitk.BinaryErode(mask1, (2, 2, 0))).astype(bool)
        core_mean.append(hu[core].mean())
        core_sd.append(hu[core].std())
        tumour_mean.append(float(oracle["tumour_mean_hu"]))
        texture_sd.append(float(oracle["fine_texture_sd_hu"]))
        volume.append(m1.sum() * np.prod(image.GetSpacing()) / 1000.0)
        thickness.append(float(oracle["wall_thickness_mm"]))
        if len(masks) == 2:
            dices.append(_dice(m1, _array(masks[1])))
    assert len(dices) == 30
    assert 0.85 <= float(np.mean(dices)) <= 0.93
    assert min(dices) >= 0.75
    assert max(dices) <= 0.97
    # The core mean is the enhancement plus zero-mean textures and noise; its sd grows with the
    # fine texture (the hazard's heterogeneity), so filtered features can pick it up.
    assert np.abs(np.array(core_mean) - np.array(tumour_mean)).mean() < 6.0
    assert spearmanr(core_mean, tumour_mean)[0] > 0.8
    assert spearmanr(core_sd, texture_sd)[0] > 0.8
    assert spearmanr(volume, thickness)[0] > 0.6
    assert 4.0 <= np.median(volume) <= 30.0
