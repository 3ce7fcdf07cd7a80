"""A SYNTHETIC NSCLC immunotherapy cohort with a known survival model (the demo cohort).

Shaped like Table 1 of the nsclc_ici study (236 first-line ICI patients, Transl Lung Cancer Res 2022): sex, age,
smoking, ECOG, stage, histology, mutation, best response, OS and PFS, slice thickness and
in-plane voxel spacing, plus one CT crop with two readers' tumour masks per patient
(:mod:`studyrunner.synthetic.phantom`). Because the hazard is known, a study run on this
cohort can be checked against the truth (``truth.csv``, the oracle).

Survival model (Bender, Augustin & Blettner, Stat Med 2005;24:1713-23, "Generating survival
times to simulate Cox proportional hazards models"): each patient's time to death and time
to progression are Weibull proportional-hazards times ``T = (-log U / (lambda * exp(lp)))^(1/k)``
whose uniforms U are coupled by a Gaussian copula (correlation :data:`OS_PFS_COPULA_RHO`).
PFS is the earlier of progression and death, so PFS <= OS always. Censoring is independent:
administrative (uniform entry over the accrual window, a common data cut-off) combined with
uniform drop-out. Best response is ranked on ``lp_pfs`` plus the progression copula variable
(early progressors are PD) and noise.

Categorical variables are allocated with exact counts (largest-remainder rounding of the
target proportions, then shuffled), so their proportions stay close to Table 1 at any n.
ECOG, stage and mutation are unknown in the same ~45% of patients (missing completely at
random); the hazard uses every patient's true value, recorded in ``truth.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from studyrunner.synthetic.common import (
    MANIFEST_COLUMNS,
    STANDARD_NORMAL,
    CohortFiles,
    allocate_labels,
    exact_counts,
    shuffled_labels,
    stratified_normals,
    stratified_uniforms,
    weibull_ph_times,
    write_cohort_tables,
    write_nifti,
)
from studyrunner.synthetic.phantom import DEFAULT_SCANNER, LesionParams, Scanner, make_case, max_volume_ml

GENERATOR_VERSION = "1.0.0"
DEFAULT_SEED = 20220415

SEX = {"Male": 0.83, "Female": 0.17}
AGE_MEDIAN, AGE_SD, AGE_RANGE = 64.0, 9.6, (35, 88)  # median 64, IQR about 57-70
UNKNOWN = "Unknown"
UNKNOWN_CLINICAL_SHARE = 0.45  # ECOG, stage and mutation unknown in the same patients
SMOKING_UNKNOWN_SHARE = 0.46
SMOKING_KNOWN = {"Never": 0.19, "Current or former": 0.35}
ECOG_KNOWN = {"0": 11 / 129, "1": 112 / 129, "2": 6 / 129}
STAGE_KNOWN = {"III": 13 / 129, "IV": 116 / 129}
MUTATION_KNOWN = {"No mutation": 104 / 129, "Mutation": 25 / 129}
HISTOLOGY = {"squamous": 0.30, "adenocarcinoma": 0.50, "other": 0.20}
HISTOLOGY_LABELS: dict[str, dict[str, float]] = {
    "squamous": {"Squamous cell carcinoma": 0.55, "squamous": 0.25, "SCC": 0.20},
    "adenocarcinoma": {"Adenocarcinoma": 0.55, "adenocarcinoma": 0.25, "ADC": 0.20},
    "other": {"Other": 0.50, "NOS": 0.30, "large cell": 0.20},
}
"""Messy real-world histology labels written to the clinical table, by true category."""
BEST_RESPONSE = {"PR": 0.23, "SD": 0.50, "PD": 0.27}

IN_PLANE_SPACING_MEAN, IN_PLANE_SPACING_SD, IN_PLANE_SPACING_RANGE = 0.75, 0.09, (0.60, 0.95)
SLICE_THICKNESS = {0.8: 0.70, 1.0: 0.20, 1.25: 0.10}

LOG_VOLUME_MEAN, LOG_VOLUME_SD = math.log(2.0), 0.5  # lesion volume (ml) is log-normal
TRAIT_BETA = 2.0  # heterogeneity and margin irregularity ~ Beta(2, 2): mean 0.5, sd 0.2236
TRAIT_MEAN, TRAIT_SD = 0.5, math.sqrt(1.0 / 20.0)

OS_PFS_COPULA_RHO = 0.5
ADMIN_CENSORING_DAYS = (30.0, 1130.0)  # time from start of treatment to data cut-off
DROPOUT_DAYS_MAX = 1500.0  # drop-out time ~ Uniform(0, DROPOUT_DAYS_MAX)
RESPONSE_PROGRESSION_WEIGHT, RESPONSE_NOISE_SD = 0.8, 0.6


@dataclass(frozen=True)
class HazardModel:
    """Weibull proportional-hazards model: h(t) = lambda k t^(k-1) exp(lp).

    lp = log_volume * z(log volume) + heterogeneity * z(heterogeneity)
       + margin_irregularity * z(margin irregularity) + age_per_10_years * (age - 64) / 10
       + ecog_0 [ECOG 0] + ecog_2 [ECOG 2] + stage_iv [stage IV] + mutation [mutation],
    with z() standardised by the generating distribution's mean and sd (not the sample's).
    """

    log_volume: float
    heterogeneity: float
    margin_irregularity: float
    age_per_10_years: float
    ecog_0: float
    ecog_2: float
    stage_iv: float
    mutation: float
    baseline_rate_per_day: float
    weibull_shape: float


OS_HAZARD = HazardModel(
    log_volume=0.60,
    heterogeneity=0.45,
    margin_irregularity=0.40,
    age_per_10_years=0.15,
    ecog_0=-0.40,
    ecog_2=1.00,
    stage_iv=0.40,
    mutation=0.20,
    baseline_rate_per_day=0.00040,
    weibull_shape=1.0,
)
PFS_HAZARD = HazardModel(
    log_volume=0.40,
    heterogeneity=0.45,
    margin_irregularity=0.30,
    age_per_10_years=0.05,
    ecog_0=-0.30,
    ecog_2=0.70,
    stage_iv=0.30,
    mutation=0.50,
    baseline_rate_per_day=0.0018,
    weibull_shape=1.0,
)

CLINICAL_COLUMNS = (
    "patient_id", "sex", "age", "smoking", "ecog", "stage", "histology", "mutation", "best_response",
    "os_days", "os_event", "pfs_days", "pfs_event", "slice_thickness_mm", "voxel_spacing_mm",
)  # fmt: skip
TRUTH_COLUMNS = (
    "patient_id", "true_lp_os", "true_lp_pfs", "volume_ml", "heterogeneity", "margin_irregularity",
    "ecog_true", "stage_true", "mutation_true",
)  # fmt: skip


@dataclass(frozen=True)
class Site:
    """A hospital contributing a cohort: its case mix (age, share of stage IV among known
    stages), its scanner (noise and reconstruction kernel, slice thicknesses) and the prefix of
    its patient ids. The true hazard models are the same at every site, so a model developed at
    one site transports to another up to case mix and acquisition (Debray TPA et al. (2015),
    J Clin Epidemiol 68:279-289)."""

    name: str
    id_prefix: str
    age_shift_years: float
    stage_known: dict[str, float]
    slice_thickness: dict[float, float]
    scanner: Scanner


SITES = {
    "development": Site("development", "SYN", 0.0, STAGE_KNOWN, SLICE_THICKNESS, DEFAULT_SCANNER),
    # another hospital: older patients, more stage IV, thicker slices, a noisier and sharper kernel
    "external": Site("external", "EXT", 6.0, {"III": 0.04, "IV": 0.96}, {1.25: 0.5, 1.5: 0.3, 2.0: 0.2},
                     Scanner(noise_sd_range_hu=(35.0, 60.0), noise_sigma_voxels=0.45)),
}


@dataclass(frozen=True)
class SimulatedCohort:
    """The cohort's tables before any file is written.

    ``clinical`` and ``truth`` map each column of :data:`CLINICAL_COLUMNS` /
    :data:`TRUTH_COLUMNS` to a length-n numpy array; ``lesions`` and ``spacings`` ((x, y, z)
    mm) describe each patient's CT crop, rendered from ``image_seeds``.
    """

    clinical: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]
    lesions: list[LesionParams]
    spacings: list[tuple[float, float, float]]
    image_seeds: list[np.random.SeedSequence]


def linear_predictor(
    model: HazardModel,
    lesions: Sequence[LesionParams],
    age: np.ndarray,
    ecog: np.ndarray,
    stage: np.ndarray,
    mutation: np.ndarray,
) -> np.ndarray:
    """The log relative hazard ``lp`` of :class:`HazardModel` for each patient (true categories)."""
    log_volume = np.log([lesion.volume_ml for lesion in lesions])
    heterogeneity = np.array([lesion.heterogeneity for lesion in lesions])
    irregularity = np.array([lesion.margin_irregularity for lesion in lesions])
    return (
        model.log_volume * (log_volume - LOG_VOLUME_MEAN) / LOG_VOLUME_SD
        + model.heterogeneity * (heterogeneity - TRAIT_MEAN) / TRAIT_SD
        + model.margin_irregularity * (irregularity - TRAIT_MEAN) / TRAIT_SD
        + model.age_per_10_years * (np.asarray(age, dtype=float) - AGE_MEDIAN) / 10.0
        + model.ecog_0 * (ecog == "0")
        + model.ecog_2 * (ecog == "2")
        + model.stage_iv * (stage == "IV")
        + model.mutation * (mutation == "Mutation")
    )


def _weibull_times(model: HazardModel, lp: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Inverse-cumulative-hazard times in days (Bender et al. 2005, Table II)."""
    return weibull_ph_times(lp, uniform, model.baseline_rate_per_day, model.weibull_shape)


def _lesions_and_spacings(
    rng: np.random.Generator, n: int, shape: tuple[int, int, int], slice_thickness: dict[float, float]
) -> tuple[list[LesionParams], list[tuple[float, float, float]]]:
    """Per-patient voxel spacing and lesion phenotype; the volume is capped so the lesion fits."""
    in_plane = np.round(np.clip(rng.normal(IN_PLANE_SPACING_MEAN, IN_PLANE_SPACING_SD, n), *IN_PLANE_SPACING_RANGE), 3)
    thickness = rng.choice(list(slice_thickness), size=n, p=list(slice_thickness.values()))
    volumes = np.exp(LOG_VOLUME_MEAN + LOG_VOLUME_SD * stratified_normals(rng, n))
    heterogeneity = np.round(rng.beta(TRAIT_BETA, TRAIT_BETA, n), 4)
    irregularity = np.round(rng.beta(TRAIT_BETA, TRAIT_BETA, n), 4)
    spacings = [(float(s), float(s), float(t)) for s, t in zip(in_plane, thickness, strict=True)]
    lesions = [
        LesionParams(
            volume_ml=math.floor(min(v, max_volume_ml(irr, shape, sp)) * 1e4) / 1e4,
            heterogeneity=float(het),
            margin_irregularity=float(irr),
        )
        for v, het, irr, sp in zip(volumes, heterogeneity, irregularity, spacings, strict=True)
    ]
    return lesions, spacings


def simulate_nsclc_ici(
    n_patients: int = 236, seed: int = DEFAULT_SEED, shape: tuple[int, int, int] = (64, 64, 48),
    site: Site = SITES["development"],
) -> SimulatedCohort:
    """Draw the clinical table, the truth table and each patient's lesion (no file written) for
    the patients of ``site``."""
    if n_patients < 1:
        raise ValueError(f"n_patients must be at least 1, got {n_patients}")
    streams = np.random.SeedSequence(seed).spawn(4)
    clinical_rng, lesion_rng, outcome_rng = (np.random.default_rng(s) for s in streams[:3])
    n = n_patients

    sex = allocate_labels(clinical_rng, n, SEX)
    age = np.clip(np.rint(AGE_MEDIAN + site.age_shift_years + AGE_SD * stratified_normals(clinical_rng, n)),
                  *AGE_RANGE).astype(int)
    unknown = np.zeros(n, dtype=bool)
    n_unknown = exact_counts(n, [UNKNOWN_CLINICAL_SHARE, 1 - UNKNOWN_CLINICAL_SHARE])[0]
    unknown[clinical_rng.permutation(n)[:n_unknown]] = True
    n_unknown = int(unknown.sum())

    def true_and_recorded(categories: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        true = np.empty(n, dtype=object)
        true[~unknown] = allocate_labels(clinical_rng, n - n_unknown, categories)
        true[unknown] = allocate_labels(clinical_rng, n_unknown, categories)
        return true, np.where(unknown, UNKNOWN, true)

    ecog_true, ecog = true_and_recorded(ECOG_KNOWN)
    stage_true, stage = true_and_recorded(site.stage_known)
    mutation_true, mutation = true_and_recorded(MUTATION_KNOWN)
    # Smoking is unknown in the same patients, plus a few more to reach its own share.
    smoking = np.full(n, UNKNOWN, dtype=object)
    smoking_unknown = exact_counts(n, [SMOKING_UNKNOWN_SHARE, 1.0 - SMOKING_UNKNOWN_SHARE])[0]
    extra_unknown = min(max(0, smoking_unknown - n_unknown), n - n_unknown)
    known_counts = exact_counts(n - n_unknown - extra_unknown, list(SMOKING_KNOWN.values()))
    smoking[~unknown] = shuffled_labels(clinical_rng, [*SMOKING_KNOWN, UNKNOWN], [*known_counts, extra_unknown])
    histology_true = allocate_labels(clinical_rng, n, HISTOLOGY)
    histology = np.array(
        [clinical_rng.choice(list(HISTOLOGY_LABELS[h]), p=list(HISTOLOGY_LABELS[h].values())) for h in histology_true],
        dtype=object,
    )

    lesions, spacings = _lesions_and_spacings(lesion_rng, n, shape, site.slice_thickness)
    image_seeds = streams[3].spawn(n)

    lp_os = np.round(linear_predictor(OS_HAZARD, lesions, age, ecog_true, stage_true, mutation_true), 6)
    lp_pfs = np.round(linear_predictor(PFS_HAZARD, lesions, age, ecog_true, stage_true, mutation_true), 6)
    z_death = stratified_normals(outcome_rng, n)
    z_progression = (OS_PFS_COPULA_RHO * z_death
                     + math.sqrt(1 - OS_PFS_COPULA_RHO**2) * stratified_normals(outcome_rng, n))
    death = _weibull_times(OS_HAZARD, lp_os, np.array([STANDARD_NORMAL.cdf(z) for z in z_death]))
    progression = _weibull_times(PFS_HAZARD, lp_pfs, np.array([STANDARD_NORMAL.cdf(z) for z in z_progression]))
    admin_low, admin_high = ADMIN_CENSORING_DAYS
    administrative = admin_low + (admin_high - admin_low) * stratified_uniforms(outcome_rng, n)
    censoring = np.minimum(administrative, DROPOUT_DAYS_MAX * stratified_uniforms(outcome_rng, n))
    progression_or_death = np.minimum(progression, death)
    os_days = np.maximum(np.ceil(np.minimum(death, censoring)), 1).astype(int)
    pfs_days = np.maximum(np.ceil(np.minimum(progression_or_death, censoring)), 1).astype(int)
    os_event = (death <= censoring).astype(int)
    pfs_event = (progression_or_death <= censoring).astype(int)

    response_latent = (lp_pfs + RESPONSE_PROGRESSION_WEIGHT * z_progression
                       + outcome_rng.normal(0.0, RESPONSE_NOISE_SD, n))
    best_response = np.empty(n, dtype=object)
    best_response[np.argsort(response_latent, kind="stable")] = np.repeat(
        np.array(list(BEST_RESPONSE), dtype=object), exact_counts(n, list(BEST_RESPONSE.values()))
    )

    patient_id = np.array([f"{site.id_prefix}{i:04d}" for i in range(1, n + 1)], dtype=object)
    clinical = {
        "patient_id": patient_id,
        "sex": sex,
        "age": age,
        "smoking": smoking,
        "ecog": ecog,
        "stage": stage,
        "histology": histology,
        "mutation": mutation,
        "best_response": best_response,
        "os_days": os_days,
        "os_event": os_event,
        "pfs_days": pfs_days,
        "pfs_event": pfs_event,
        "slice_thickness_mm": np.array([sp[2] for sp in spacings]),
        "voxel_spacing_mm": np.array([sp[0] for sp in spacings]),
    }
    truth = {
        "patient_id": patient_id,
        "true_lp_os": lp_os,
        "true_lp_pfs": lp_pfs,
        "volume_ml": np.array([lesion.volume_ml for lesion in lesions]),
        "heterogeneity": np.array([lesion.heterogeneity for lesion in lesions]),
        "margin_irregularity": np.array([lesion.margin_irregularity for lesion in lesions]),
        "ecog_true": ecog_true,
        "stage_true": stage_true,
        "mutation_true": mutation_true,
    }
    return SimulatedCohort(clinical, truth, lesions, spacings, image_seeds)


def _format(column: str, value: object) -> str:
    """CSV text of one value: fixed decimals so re-runs are byte-identical."""
    if column in ("true_lp_os", "true_lp_pfs"):
        return f"{value:.6f}"
    if column in ("volume_ml", "heterogeneity", "margin_irregularity"):
        return f"{value:.4f}"
    if column == "slice_thickness_mm":
        return f"{value:.2f}"
    if column == "voxel_spacing_mm":
        return f"{value:.3f}"
    return str(value)


def _readme(n_patients: int, seed: int, shape: tuple[int, int, int], site: Site) -> str:
    def coefficients(model: HazardModel) -> str:
        return ", ".join(f"{f.name}={getattr(model, f.name)}" for f in fields(model))

    return f"""SYNTHETIC DATA - not from any patient.
Generated by studyrunner.synthetic.nsclc_ici, generator version {GENERATOR_VERSION}, seed {seed},
{n_patients} patients, CT crops of {shape[0]}x{shape[1]}x{shape[2]} voxels (x, y, z), site: {site.name}
(age shifted by {site.age_shift_years:g} years, stage IV share among known stages {site.stage_known["IV"]:.2f},
slice thicknesses {sorted(site.slice_thickness)} mm, noise {site.scanner.noise_sd_range_hu} HU).

Files: clinical.csv (the study's clinical table, shaped like Table 1 of the NSCLC
immunotherapy study (nsclc_ici), with deliberately messy histology labels), manifest.csv (image and
two readers' mask paths, relative to this folder), images/ (NIfTI), truth.csv (THE ORACLE:
the true linear predictors and lesion phenotype; never an input to a study).

Hazard model. Time to death and time to progression are Weibull proportional-hazards times
T = (-log U / (lambda exp(lp)))^(1/k) (Bender, Augustin & Blettner, Stat Med 2005) whose
uniforms are coupled by a Gaussian copula (rho = {OS_PFS_COPULA_RHO}); PFS is the earlier of
progression and death, so PFS <= OS. lp = b_volume z(log lesion volume) + b_het
z(heterogeneity) + b_irr z(margin irregularity) + b_age (age - 64)/10 + b_ecog0 [ECOG 0] +
b_ecog2 [ECOG 2] + b_stage [stage IV] + b_mut [mutation], where z() standardises by the
generating distribution (log volume ~ Normal(log 2 ml, {LOG_VOLUME_SD}) capped so the lesion fits the crop;
heterogeneity, margin irregularity ~ Beta(2, 2)) and the clinical terms use each patient's
true value even where the table says Unknown (missing completely at random). True
coefficients, OS: {coefficients(OS_HAZARD)}. PFS: {coefficients(PFS_HAZARD)}.
Censoring is independent: min(Uniform{ADMIN_CENSORING_DAYS} days administrative,
Uniform(0, {DROPOUT_DAYS_MAX}) days drop-out). Best response (PR/SD/PD) is allocated by rank of
lp_pfs + {RESPONSE_PROGRESSION_WEIGHT} x (progression copula normal) + Normal(0, {RESPONSE_NOISE_SD}) noise.
The event-time and censoring uniforms, ages and log volumes are Latin-hypercube stratified
(each still has its stated marginal distribution); categorical variables have exact counts.
"""


def generate_nsclc_ici_cohort(
    out_dir: Path, n_patients: int = 236, seed: int = DEFAULT_SEED, shape: tuple[int, int, int] = (64, 64, 48),
    site: str = "development",
) -> CohortFiles:
    """Write the SYNTHETIC cohort into ``out_dir``: clinical.csv, manifest.csv, truth.csv,
    README.txt and images/SYN0001_ct.nii.gz, _mask.nii.gz, _mask_r2.nii.gz per patient.

    The same (n_patients, seed, shape) give byte-identical CSV files and identical images.
    """
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    profile = SITES[site]
    cohort = simulate_nsclc_ici(n_patients, seed, shape, profile)
    manifest: dict[str, list[str]] = {column: [] for column in MANIFEST_COLUMNS}
    for patient_id, lesion, spacing, image_seed in zip(
        cohort.clinical["patient_id"], cohort.lesions, cohort.spacings, cohort.image_seeds, strict=True
    ):
        volumes = make_case(np.random.default_rng(image_seed), lesion, shape, spacing, profile.scanner)
        names = [f"images/{patient_id}_{suffix}.nii.gz" for suffix in ("ct", "mask", "mask_r2")]
        for volume, name in zip(volumes, names, strict=True):
            write_nifti(volume, out_dir / name)
        for column, value in zip(MANIFEST_COLUMNS, [patient_id, *names], strict=True):
            manifest[column].append(value)

    manifest_table = {k: np.array(v, dtype=object) for k, v in manifest.items()}
    return write_cohort_tables(out_dir, {"clinical": (CLINICAL_COLUMNS, cohort.clinical),
                                         "truth": (TRUTH_COLUMNS, cohort.truth),
                                         "manifest": (MANIFEST_COLUMNS, manifest_table)},
                               _readme(n_patients, seed, shape, profile), _format)
