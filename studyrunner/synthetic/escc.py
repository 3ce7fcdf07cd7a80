"""A SYNTHETIC oesophageal squamous cell carcinoma (ESCC) cohort for the radiomics-signature
demo (the escc_ici_chemo study: 87 patients on first-line immune checkpoint inhibitor + chemotherapy,
arterial-phase contrast CT with 5 mm slices, PFS endpoint, a second segmentation for 30
random patients). Nothing here comes from a patient.

Image (:func:`make_escc_case`): a tumour-centred axial crop (default 80 x 80 x 12 voxels,
in-plane spacing FOV/512 for a 360-460 mm field of view, i.e. 0.70-0.90 mm, slices 5 mm) of
the posterior mediastinum in LPS orientation (+x patient left, +y posterior):

- mediastinal fat (about -100 HU) with smooth soft-tissue patches (about +40 HU);
- the descending aorta left-posterior of the oesophagus, a bright arterial-phase lumen
  (250-300 HU) running craniocaudally;
- the oesophagus along a slightly oblique axis: a collapsed wall (about +45 HU) with a small
  air lumen (-1000 HU) that narrows through the tumour;
- the tumour: a thickened, enhancing wall segment. In polar coordinates around the axis its
  outer boundary is ``R(theta, z) = r_normal + (wall_thickness - r_normal) * b(z) * a(theta)
  * (1 + l(theta, z))`` with ``b`` a flat-topped craniocaudal profile over ``tumour_length``,
  ``a`` an eccentric circumferential profile (max 1) and ``l`` a bounded smooth lobulation.
  Its attenuation is ``60 + 30 * enhancement`` HU plus a coarse (sigma 4 mm, 8 HU) and a FINE
  texture (sigma 0.8 mm, ``5 + 35 * heterogeneity`` HU) and CT noise (12-22 HU).

Reader 1's mask is the tumour (inside ``R`` in the slices where ``b >= 0.25``, lumen air
excluded). Reader 2 outlines ``R`` scaled by a case-level factor (+-5-10%) with a smooth
+-4% wobble and, in some cases, one slice more or fewer at a tumour end, as a second
radiologist would (Dice about 0.8-0.9). A generous reader 2 takes in the surrounding fat,
so first-order extremes and fine texture features are less reproducible than shape and mean
intensity.

Survival (:class:`EsccHazardModel`): Weibull proportional-hazards PFS (Bender, Augustin &
Blettner, Stat Med 2005;24:1713-23) whose linear predictor depends only on the image
phenotype: fine-scale heterogeneity and wall thickness raise the hazard, enhancement lowers
it. Censoring is administrative only (see :data:`FOLLOW_UP_NOTE`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from studyrunner.synthetic.common import (
    MANIFEST_COLUMNS,
    STANDARD_NORMAL,
    CohortFiles,
    allocate_labels,
    stratified_normals,
    stratified_uniforms,
    weibull_ph_times,
    write_cohort_tables,
    write_nifti,
)
from studyrunner.synthetic.phantom import as_xyz, gaussian_field, image_from_array, soft_step

GENERATOR_VERSION = "1.0.0"
DEFAULT_SEED = 20231001
DEFAULT_SHAPE = (80, 80, 14)  # 5 mm slices: 70 mm craniocaudal, room for a 40 mm tumour
SLICE_THICKNESS_MM = 5.0

# --- Table 1 of the escc_ici_chemo study (N = 87): exact counts / 87 -----------------------
N_PAPER_PATIENTS = 87
AGE_OVER_60 = {">60": 57 / 87, "<=60": 30 / 87}
AGE_MU, AGE_SD, AGE_RANGE = 62.0, 8.0, (45, 81)  # truncated normal per group; mean about 63
SEX = {"Male": 64 / 87, "Female": 23 / 87}
BMI_GROUP = {"Overweight": 20 / 87, "Normal": 67 / 87}
SMOKING = {"Yes": 49 / 87, "No": 38 / 87}
DRINKING = {"Yes": 26 / 87, "No": 61 / 87}
ECOG = {"0-1": 71 / 87, ">=2": 16 / 87}

# --- acquisition and lesion phenotype --------------------------------------------------------
FIELD_OF_VIEW_MM = (360, 380, 400, 420, 440, 460)  # reconstructed on a 512 matrix
MATRIX = 512
WALL_THICKNESS_MEAN, WALL_THICKNESS_SD, WALL_THICKNESS_RANGE = 14.0, 3.0, (8.0, 20.0)
TUMOUR_LENGTH_RANGE_MM = (20.0, 40.0)
TRAIT_BETA = 2.0  # heterogeneity and enhancement ~ Beta(2, 2): mean 0.5, sd sqrt(0.05)
TRAIT_MEAN, TRAIT_SD = 0.5, math.sqrt(1.0 / 20.0)

FAT_HU, FAT_SD_HU = -100.0, 10.0
SOFT_TISSUE_HU = 40.0
SOFT_TISSUE_SHARE_THRESHOLD = 0.6  # smooth field above this (in sd) is soft tissue: about 27%
AORTA_HU_RANGE = (250.0, 300.0)
AORTA_RADIUS_RANGE_MM = (10.0, 13.0)
AORTA_DIRECTION_DEG = (20.0, 70.0)  # from +x (patient left) towards +y (posterior)
FAT_PLANE_RANGE_MM = (1.5, 4.0)
NORMAL_WALL_HU = 45.0
NORMAL_WALL_RADIUS_RANGE_MM = (5.0, 6.5)
AIR_HU = -1000.0
AIR_RADIUS_RANGE_MM = (1.0, 2.5)
AIR_NARROWING = 0.5  # the lumen's radius shrinks by this share where the tumour is thickest
TUMOUR_MEAN_HU_RANGE = (60.0, 90.0)  # enhancement 0 -> 60 HU, 1 -> 90 HU
FINE_TEXTURE_SIGMA_MM = 0.8
FINE_TEXTURE_SD_RANGE_HU = (5.0, 40.0)  # heterogeneity 0 -> 5 HU, 1 -> 40 HU
COARSE_TEXTURE_SIGMA_MM, COARSE_TEXTURE_SD_HU = 4.0, 8.0
NOISE_SD_RANGE_HU = (12.0, 22.0)
NOISE_SIGMA_VOXELS = 0.6
ECCENTRICITY_MAX = 0.7
LOBULATION_MAX = 0.12
TUMOUR_SLICE_THRESHOLD = 0.25  # a slice belongs to the tumour where b(z) >= this
AXIS_OFFSET_MAX_MM = 1.0  # tumour centre from the crop centre, in-plane and along z (x 2.5)
AXIS_TILT_MAX_MM = 1.5  # in-plane drift of the oesophageal axis over the crop's z extent
READER2_SCALE_RANGE = (0.05, 0.10)
READER2_WOBBLE_MAX = 0.04
READER2_END_SLICE_PROBABILITY = 0.4
CROP_MARGIN_MM = 1.0
HU_RANGE = (-1024, 3071)


@dataclass(frozen=True)
class EsccHazardModel:
    """Weibull proportional hazards for PFS in months: h(t) = lambda k t^(k-1) exp(lp),

    lp = heterogeneity * z(heterogeneity) + wall_thickness * z(wall thickness)
       + enhancement * z(enhancement),
    with z() standardised by the generating distribution's mean and sd (not the sample's):
    heterogeneity, enhancement ~ Beta(2, 2) (0.5, sqrt(0.05)), wall thickness ~ Normal(14, 3) mm.
    """

    heterogeneity: float
    wall_thickness: float
    enhancement: float
    baseline_rate_per_month: float
    weibull_shape: float


PFS_HAZARD = EsccHazardModel(
    heterogeneity=0.70,
    wall_thickness=0.55,
    enhancement=-0.40,
    baseline_rate_per_month=0.0130,
    weibull_shape=1.2,
)

# Potential follow-up (administrative censoring), months from the start of treatment.
FOLLOW_UP_MAIN_RANGE = (34.0, 46.0)
FOLLOW_UP_MAIN_POWER = 2.5  # 34 + 12 U^2.5: most patients accrued late; median follow-up about 37
FOLLOW_UP_LONG_SHARE = 0.15
FOLLOW_UP_LONG_RANGE = (46.0, 64.0)
FOLLOW_UP_NOTE = """\
Follow-up. The paper reports a median follow-up of 37.2 months (range 33.8-46.0) and accrual
from October 2019 to March 2022. One data cut cannot give both: with a cut 46 months after
the first accrual, a patient accrued in March 2022 would have about 17 months. The generator
follows the reported follow-up. Potential follow-up (administrative censoring, independent
of everything else, no drop-out) is 34 + 12 U^2.5 months for 85% of patients (range 34-46)
and Uniform(46, 64) months for 15% (an early-accrual group), so the reverse Kaplan-Meier
median follow-up is about 37 months. The paper reports time-dependent AUC at 1-5 years; with
follow-up capped at 46 months no control would be at risk at 4 or 5 years. The long
follow-ups keep 1-4 years estimable (a few controls at 4 years) and 5 years only partly:
about one patient, sometimes none, is still at risk at 60 months, so the 5-year AUC is
unstable or undefined."""

CLINICAL_COLUMNS = (
    "patient_id", "age", "sex", "bmi_group", "smoking", "drinking", "ecog", "pfs_months", "pfs_event",
)  # fmt: skip
TRUTH_COLUMNS = (
    "patient_id", "true_lp_pfs", "heterogeneity", "fine_texture_sd_hu", "wall_thickness_mm", "enhancement",
    "tumour_mean_hu", "tumour_length_mm", "in_plane_spacing_mm",
)  # fmt: skip


@dataclass(frozen=True)
class EsccLesion:
    """The ground-truth imaging phenotype of one case.

    ``wall_thickness_mm``: largest outer radius of the thickened wall from the oesophageal
    axis before lobulation (the lumen is a small central air pocket, so this is the maximal
    wall thickness); ``tumour_length_mm``: craniocaudal extent of the thickening;
    ``heterogeneity`` in [0, 1]: fine-texture sd 5-40 HU; ``enhancement`` in [0, 1]: mean
    tumour attenuation 60-90 HU.
    """

    wall_thickness_mm: float
    tumour_length_mm: float
    heterogeneity: float
    enhancement: float

    def __post_init__(self) -> None:
        if not NORMAL_WALL_RADIUS_RANGE_MM[1] < self.wall_thickness_mm < 60.0:
            raise ValueError(
                f"EsccLesion.wall_thickness_mm must exceed the normal wall radius "
                f"{NORMAL_WALL_RADIUS_RANGE_MM[1]} mm (and be < 60), got {self.wall_thickness_mm!r}"
            )
        if not 5.0 <= self.tumour_length_mm <= 200.0:
            raise ValueError(f"EsccLesion.tumour_length_mm must lie in [5, 200], got {self.tumour_length_mm!r}")
        for name in ("heterogeneity", "enhancement"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"EsccLesion.{name} must lie in [0, 1], got {value!r}")

    @property
    def fine_texture_sd_hu(self) -> float:
        low, high = FINE_TEXTURE_SD_RANGE_HU
        return low + self.heterogeneity * (high - low)

    @property
    def tumour_mean_hu(self) -> float:
        low, high = TUMOUR_MEAN_HU_RANGE
        return low + self.enhancement * (high - low)


@dataclass(frozen=True)
class SimulatedEsccCohort:
    """The cohort's tables before any file is written: ``clinical`` and ``truth`` map each
    column of :data:`CLINICAL_COLUMNS` / :data:`TRUTH_COLUMNS` to a length-n array;
    ``lesions`` and ``spacings`` ((x, y, z) mm) describe each crop, rendered from
    ``image_seeds``; ``second_reader`` flags the patients with a second segmentation."""

    clinical: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]
    lesions: list[EsccLesion]
    spacings: list[tuple[float, float, float]]
    image_seeds: list[np.random.SeedSequence]
    second_reader: np.ndarray


# --- image ---------------------------------------------------------------------------------


def craniocaudal_profile(s: np.ndarray) -> np.ndarray:
    """Flat-topped thickening profile b(s) = max(0, 1 - s^4) of s = (z - centre) / half-length."""
    return np.maximum(0.0, 1.0 - np.asarray(s, dtype=float) ** 4)


def lesion_extent_mm(wall_thickness_mm: float) -> float:
    """Upper bound of the largest in-plane distance of either reader's boundary from the axis."""
    return wall_thickness_mm * (1.0 + LOBULATION_MAX) * (1.0 + READER2_SCALE_RANGE[1] + READER2_WOBBLE_MAX)


def check_lesion_fits(lesion: EsccLesion, shape: Sequence[int], spacing: Sequence[float]) -> None:
    """Raise ``ValueError`` unless both readers' tumours stay inside the crop with a margin:
    in-plane the axis offset and tilt plus :func:`lesion_extent_mm`, along z the tumour
    slices plus one reader-2 slice and one free slice at each end."""
    half_in_plane = min((n - 1) / 2.0 * sp for n, sp in zip(shape[:2], spacing[:2], strict=True))
    needed = lesion_extent_mm(lesion.wall_thickness_mm) + AXIS_OFFSET_MAX_MM + AXIS_TILT_MAX_MM + CROP_MARGIN_MM
    half_z = (shape[2] - 1) / 2.0 * spacing[2]
    needed_z = lesion.tumour_length_mm / 2.0 + 2.5 * AXIS_OFFSET_MAX_MM + 2.0 * spacing[2]
    if needed > half_in_plane or needed_z > half_z:
        raise ValueError(
            f"tumour (wall thickness {lesion.wall_thickness_mm:.2f} mm, length {lesion.tumour_length_mm:.1f} mm) "
            f"does not fit a crop of shape {tuple(shape)} and spacing {tuple(spacing)} mm: needs half-widths "
            f"{needed:.1f} mm in-plane and {needed_z:.1f} mm along z, has {half_in_plane:.1f} and {half_z:.1f}"
        )


def _angular_field(rng: np.random.Generator, amplitude: float, harmonics: int = 3) -> tuple[np.ndarray, ...]:
    """Coefficients of a smooth field l(theta, z) = sum_k c_k cos(k theta + phi_k + omega_k z),
    scaled so that |l| <= amplitude everywhere."""
    orders = np.arange(2, 2 + harmonics)
    weights = rng.uniform(0.3, 1.0, harmonics)
    weights *= amplitude / weights.sum()
    return orders, weights, rng.uniform(0.0, 2.0 * math.pi, harmonics), rng.uniform(-0.08, 0.08, harmonics)


def _evaluate_angular(field: tuple[np.ndarray, ...], theta: np.ndarray, z: np.ndarray) -> np.ndarray:
    orders, weights, phases, drifts = field
    return sum(w * np.cos(k * theta + p + d * z) for k, w, p, d in zip(orders, weights, phases, drifts, strict=True))


def make_escc_case(
    rng: np.random.Generator,
    lesion: EsccLesion,
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
    spacing: tuple[float, float, float] = (0.78, 0.78, SLICE_THICKNESS_MM),
) -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    """One synthetic arterial-phase CT crop: (image int16 HU, reader-1 mask uint8, reader-2 mask uint8).

    ``shape`` and ``spacing`` are (x, y, z); the crop is centred on the physical origin
    (origin = -(size - 1) / 2 * spacing, identity direction). Raises ``ValueError`` (see
    :func:`check_lesion_fits`) when the tumour does not fit.
    """
    spacing = as_xyz(spacing)
    check_lesion_fits(lesion, shape, spacing)
    shape_zyx = (int(shape[2]), int(shape[1]), int(shape[0]))
    spacing_zyx = np.array(spacing[::-1])
    origin_zyx = -(np.array(shape_zyx) - 1) / 2.0 * spacing_zyx
    axes = [o + np.arange(n) * s for o, n, s in zip(origin_zyx, shape_zyx, spacing_zyx, strict=True)]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    half_z = (shape_zyx[0] - 1) / 2.0 * spacing_zyx[0]

    # Oesophageal axis: a point near the centre and a slight tilt along z.
    centre = rng.uniform(-1.0, 1.0, 2) * AXIS_OFFSET_MAX_MM / math.sqrt(2.0)
    tilt = rng.uniform(-1.0, 1.0, 2) * AXIS_TILT_MAX_MM / math.sqrt(2.0) / max(half_z, 1e-9)
    z_centre = rng.uniform(-1.0, 1.0) * 2.5 * AXIS_OFFSET_MAX_MM
    dx, dy = x - (centre[0] + tilt[0] * z), y - (centre[1] + tilt[1] * z)
    rho, theta = np.hypot(dx, dy), np.arctan2(dy, dx)

    r_normal = rng.uniform(*NORMAL_WALL_RADIUS_RANGE_MM)
    eccentricity = rng.uniform(0.0, ECCENTRICITY_MAX)
    thickest_direction = rng.uniform(-math.pi, math.pi)
    lobulation = _angular_field(rng, LOBULATION_MAX)
    profile = craniocaudal_profile((z - z_centre) / (lesion.tumour_length_mm / 2.0))
    circumferential = 1.0 - eccentricity * 0.5 * (1.0 - np.cos(theta - thickest_direction))
    lobes = 1.0 + _evaluate_angular(lobulation, theta, z)
    thickening = (lesion.wall_thickness_mm - r_normal) * profile * circumferential * lobes
    boundary1 = r_normal + thickening
    air_radius = rng.uniform(*AIR_RADIUS_RANGE_MM) * (1.0 - AIR_NARROWING * profile)
    air = soft_step(air_radius - rho)
    tumour_slices = profile >= TUMOUR_SLICE_THRESHOLD  # constant within each slice

    reader2_scale = rng.choice([-1.0, 1.0]) * rng.uniform(*READER2_SCALE_RANGE)
    reader2_wobble = _angular_field(rng, READER2_WOBBLE_MAX, harmonics=2)
    boundary2 = boundary1 * (1.0 + reader2_scale + _evaluate_angular(reader2_wobble, theta, z))
    slice_index = np.flatnonzero(tumour_slices[:, 0, 0])
    reader2_slices = tumour_slices[:, 0, 0].copy()
    if rng.uniform() < READER2_END_SLICE_PROBABILITY:
        end = slice_index[0] if rng.uniform() < 0.5 else slice_index[-1]
        if reader2_scale > 0:  # a generous reader adds the neighbouring slice beyond that end
            reader2_slices[end - 1 if end == slice_index[0] else end + 1] = True
        elif slice_index.size >= 4:  # a tight reader leaves out that end slice
            reader2_slices[end] = False
    inside1 = (rho <= boundary1) & tumour_slices & (air < 0.5)
    inside2 = (rho <= boundary2) & reader2_slices[:, None, None] & (air < 0.5)

    # Descending aorta, left-posterior, separated from the tumour by a fat plane.
    fat_plane = rng.uniform(*FAT_PLANE_RANGE_MM)
    aorta_radius = rng.uniform(*AORTA_RADIUS_RANGE_MM)
    aorta_angle = math.radians(rng.uniform(*AORTA_DIRECTION_DEG))
    aorta_distance = lesion.wall_thickness_mm * (1.0 + LOBULATION_MAX) + fat_plane + aorta_radius
    aorta_rho = np.hypot(
        x - (centre[0] + aorta_distance * math.cos(aorta_angle) + tilt[0] * z),
        y - (centre[1] + aorta_distance * math.sin(aorta_angle) + tilt[1] * z),
    )
    aorta = soft_step(aorta_radius - aorta_rho)

    # Background: mediastinal fat with soft-tissue patches, fat planes around oesophagus and aorta.
    soft_tissue = soft_step((gaussian_field(rng, shape_zyx, spacing_zyx, 5.0) - SOFT_TISSUE_SHARE_THRESHOLD) * 3.0)
    soft_tissue *= (1.0 - soft_step(boundary1 + fat_plane - rho)) \
        * (1.0 - soft_step(aorta_radius + fat_plane - aorta_rho))
    hounsfield = FAT_HU + FAT_SD_HU * gaussian_field(rng, shape_zyx, spacing_zyx, 3.0)
    hounsfield = hounsfield * (1.0 - soft_tissue) + SOFT_TISSUE_HU * soft_tissue
    hounsfield = hounsfield * (1.0 - aorta) + rng.uniform(*AORTA_HU_RANGE) * aorta

    # Oesophageal wall and tumour, then the lumen air.
    wall = soft_step(boundary1 - rho)
    tumour_weight = np.clip(profile / TUMOUR_SLICE_THRESHOLD, 0.0, 1.0)
    tumour_hu = (
        lesion.tumour_mean_hu
        + COARSE_TEXTURE_SD_HU * gaussian_field(rng, shape_zyx, spacing_zyx, COARSE_TEXTURE_SIGMA_MM)
        + lesion.fine_texture_sd_hu * gaussian_field(rng, shape_zyx, spacing_zyx, FINE_TEXTURE_SIGMA_MM)
    )
    wall_hu = NORMAL_WALL_HU * (1.0 - tumour_weight) + tumour_hu * tumour_weight
    hounsfield = hounsfield * (1.0 - wall) + wall_hu * wall
    hounsfield = hounsfield * (1.0 - air) + AIR_HU * air
    noise = rng.uniform(*NOISE_SD_RANGE_HU) * gaussian_field(rng, shape_zyx, np.ones(3), NOISE_SIGMA_VOXELS)
    hounsfield = np.clip(np.rint(hounsfield + noise), *HU_RANGE).astype(np.int16)

    origin = as_xyz(origin_zyx[::-1])
    return (
        image_from_array(hounsfield, spacing, origin),
        image_from_array(inside1.astype(np.uint8), spacing, origin),
        image_from_array(inside2.astype(np.uint8), spacing, origin),
    )


# --- cohort --------------------------------------------------------------------------------


def _truncated_normal_integers(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    """n Latin-hypercube draws of Normal(AGE_MU, AGE_SD) truncated to [low, high), rounded."""
    lower, upper = (STANDARD_NORMAL.cdf((b - AGE_MU) / AGE_SD) for b in (low, high))
    quantiles = lower + (upper - lower) * stratified_uniforms(rng, n)
    return np.rint([AGE_MU + AGE_SD * STANDARD_NORMAL.inv_cdf(min(q, 1 - 1e-16)) for q in quantiles]).astype(int)


def _ages(rng: np.random.Generator, n: int) -> np.ndarray:
    """Exactly the paper's share over 60, each group from the truncated normal (45-81 years)."""
    group = allocate_labels(rng, n, AGE_OVER_60)
    age = np.empty(n, dtype=int)
    over = group == ">60"
    age[over] = _truncated_normal_integers(rng, int(over.sum()), 60.5, AGE_RANGE[1] + 0.5)
    age[~over] = _truncated_normal_integers(rng, int((~over).sum()), AGE_RANGE[0] - 0.5 + 1e-9, 60.5)
    return age


def _lesions_and_spacings(
    rng: np.random.Generator, n: int, shape: tuple[int, int, int]
) -> tuple[list[EsccLesion], list[tuple[float, float, float]]]:
    """Per-patient in-plane spacing and tumour phenotype; thickness and length capped to fit the crop."""
    field_of_view = rng.choice(FIELD_OF_VIEW_MM, size=n)
    in_plane = np.round(field_of_view / MATRIX, 4)
    thickness = np.clip(WALL_THICKNESS_MEAN + WALL_THICKNESS_SD * stratified_normals(rng, n), *WALL_THICKNESS_RANGE)
    length = rng.uniform(*TUMOUR_LENGTH_RANGE_MM, n)
    heterogeneity = np.round(rng.beta(TRAIT_BETA, TRAIT_BETA, n), 4)
    enhancement = np.round(rng.beta(TRAIT_BETA, TRAIT_BETA, n), 4)
    lesions, spacings = [], []
    for s, wall, tumour_length, het, enh in zip(in_plane, thickness, length, heterogeneity, enhancement, strict=True):
        spacing = (float(s), float(s), SLICE_THICKNESS_MM)
        half_in_plane = min((k - 1) / 2.0 * float(s) for k in shape[:2])
        wall_room = (half_in_plane - AXIS_OFFSET_MAX_MM - AXIS_TILT_MAX_MM - CROP_MARGIN_MM) / lesion_extent_mm(1.0)
        half_extent = (shape[2] - 1) / 2.0 * SLICE_THICKNESS_MM
        length_room = 2.0 * (half_extent - 2.5 * AXIS_OFFSET_MAX_MM - 2.0 * SLICE_THICKNESS_MM)
        lesion = EsccLesion(
            wall_thickness_mm=math.floor(min(wall, wall_room) * 100) / 100,
            tumour_length_mm=math.floor(min(tumour_length, length_room) * 10) / 10,
            heterogeneity=float(het),
            enhancement=float(enh),
        )
        check_lesion_fits(lesion, shape, spacing)
        lesions.append(lesion)
        spacings.append(spacing)
    return lesions, spacings


def linear_predictor(model: EsccHazardModel, lesions: Sequence[EsccLesion]) -> np.ndarray:
    """The log relative hazard ``lp`` of :class:`EsccHazardModel` for each patient."""
    heterogeneity = np.array([lesion.heterogeneity for lesion in lesions])
    thickness = np.array([lesion.wall_thickness_mm for lesion in lesions])
    enhancement = np.array([lesion.enhancement for lesion in lesions])
    return (
        model.heterogeneity * (heterogeneity - TRAIT_MEAN) / TRAIT_SD
        + model.wall_thickness * (thickness - WALL_THICKNESS_MEAN) / WALL_THICKNESS_SD
        + model.enhancement * (enhancement - TRAIT_MEAN) / TRAIT_SD
    )


def potential_follow_up_months(rng: np.random.Generator, n: int) -> np.ndarray:
    """Administrative censoring times (see :data:`FOLLOW_UP_NOTE`): exact-count groups,
    Latin-hypercube uniforms within each."""
    long_group = allocate_labels(rng, n, {"long": FOLLOW_UP_LONG_SHARE, "main": 1.0 - FOLLOW_UP_LONG_SHARE}) == "long"
    follow_up = np.empty(n)
    low, high = FOLLOW_UP_MAIN_RANGE
    main_draws = stratified_uniforms(rng, int((~long_group).sum()))
    follow_up[~long_group] = low + (high - low) * main_draws**FOLLOW_UP_MAIN_POWER
    low, high = FOLLOW_UP_LONG_RANGE
    follow_up[long_group] = low + (high - low) * stratified_uniforms(rng, int(long_group.sum()))
    return follow_up


def simulate_escc(
    n_patients: int = N_PAPER_PATIENTS,
    n_second_segmentation: int = 30,
    seed: int = DEFAULT_SEED,
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
) -> SimulatedEsccCohort:
    """Draw the clinical table, the truth table, each patient's tumour and who has a second
    segmentation (no file written)."""
    if n_patients < 1:
        raise ValueError(f"n_patients must be at least 1, got {n_patients}")
    if not 0 <= n_second_segmentation <= n_patients:
        raise ValueError(f"n_second_segmentation must lie in [0, n_patients={n_patients}], got {n_second_segmentation}")
    streams = np.random.SeedSequence(seed).spawn(5)
    clinical_rng, lesion_rng, outcome_rng, reader_rng = (np.random.default_rng(s) for s in streams[:4])
    n = n_patients

    clinical_columns = {
        "age": _ages(clinical_rng, n),
        "sex": allocate_labels(clinical_rng, n, SEX),
        "bmi_group": allocate_labels(clinical_rng, n, BMI_GROUP),
        "smoking": allocate_labels(clinical_rng, n, SMOKING),
        "drinking": allocate_labels(clinical_rng, n, DRINKING),
        "ecog": allocate_labels(clinical_rng, n, ECOG),
    }
    lesions, spacings = _lesions_and_spacings(lesion_rng, n, shape)
    image_seeds = streams[4].spawn(n)
    second_reader = np.zeros(n, dtype=bool)
    second_reader[reader_rng.choice(n, size=n_second_segmentation, replace=False)] = True

    lp = np.round(linear_predictor(PFS_HAZARD, lesions), 6)
    progression = weibull_ph_times(
        lp, stratified_uniforms(outcome_rng, n), PFS_HAZARD.baseline_rate_per_month, PFS_HAZARD.weibull_shape
    )
    censoring = potential_follow_up_months(outcome_rng, n)
    pfs_months = np.maximum(np.round(np.minimum(progression, censoring), 2), 0.1)
    pfs_event = (progression <= censoring).astype(int)

    patient_id = np.array([f"ESCC{i:03d}" for i in range(1, n + 1)], dtype=object)
    clinical = {"patient_id": patient_id, **clinical_columns, "pfs_months": pfs_months, "pfs_event": pfs_event}
    truth = {
        "patient_id": patient_id,
        "true_lp_pfs": lp,
        "heterogeneity": np.array([lesion.heterogeneity for lesion in lesions]),
        "fine_texture_sd_hu": np.array([lesion.fine_texture_sd_hu for lesion in lesions]),
        "wall_thickness_mm": np.array([lesion.wall_thickness_mm for lesion in lesions]),
        "enhancement": np.array([lesion.enhancement for lesion in lesions]),
        "tumour_mean_hu": np.array([lesion.tumour_mean_hu for lesion in lesions]),
        "tumour_length_mm": np.array([lesion.tumour_length_mm for lesion in lesions]),
        "in_plane_spacing_mm": np.array([sp[0] for sp in spacings]),
    }
    return SimulatedEsccCohort(clinical, truth, lesions, spacings, image_seeds, second_reader)


_DECIMALS = {
    "true_lp_pfs": 6, "heterogeneity": 4, "enhancement": 4, "in_plane_spacing_mm": 4, "fine_texture_sd_hu": 3,
    "tumour_mean_hu": 3, "wall_thickness_mm": 2, "pfs_months": 2, "tumour_length_mm": 1,
}  # fmt: skip


def _format(column: str, value: object) -> str:
    """CSV text of one value: fixed decimals so re-runs are byte-identical."""
    if column in _DECIMALS:
        return f"{value:.{_DECIMALS[column]}f}"
    return str(value)


def _readme(n_patients: int, n_second: int, seed: int, shape: tuple[int, int, int]) -> str:
    coefficients = ", ".join(f"{f.name}={getattr(PFS_HAZARD, f.name)}" for f in fields(PFS_HAZARD))
    return f"""SYNTHETIC DATA - not from any patient.
Generated by studyrunner.synthetic.escc, generator version {GENERATOR_VERSION}, seed {seed},
{n_patients} patients ({n_second} with a second segmentation), arterial-phase CT crops of
{shape[0]}x{shape[1]}x{shape[2]} voxels (x, y, z), in-plane spacing FOV/512 (0.70-0.90 mm),
{SLICE_THICKNESS_MM:g} mm slices. Shaped like the oesophageal SCC radiomics study (escc_ici_chemo, 87 patients
on first-line immune checkpoint inhibitor + chemotherapy).

Files: clinical.csv (the clinical table, proportions as in the paper's Table 1, exact counts),
manifest.csv (image, reader-1 mask and, for the second-segmentation patients only,
reader-2 mask paths relative to this folder), images/ (NIfTI), truth.csv (THE ORACLE: the
true linear predictor and tumour phenotype; never an input to a study).

Images: mediastinal fat (-100 HU) with soft-tissue patches (+40 HU), the descending aorta
({AORTA_HU_RANGE[0]:g}-{AORTA_HU_RANGE[1]:g} HU, arterial phase), the oesophagus with a small lumen of air (-1000 HU),
and the tumour as a thickened enhancing wall segment: mean 60 + 30 x enhancement HU, a coarse
texture (sigma {COARSE_TEXTURE_SIGMA_MM:g} mm, {COARSE_TEXTURE_SD_HU:g} HU) and a fine texture
(sigma {FINE_TEXTURE_SIGMA_MM:g} mm, 5 + 35 x heterogeneity HU), CT noise
{NOISE_SD_RANGE_HU[0]:g}-{NOISE_SD_RANGE_HU[1]:g} HU. Reader 2 outlines the same tumour scaled
by +-5-10% with a smooth +-4% wobble and sometimes one slice more or fewer.

Hazard model. PFS (months) is a Weibull proportional-hazards time
T = (-log U / (lambda exp(lp)))^(1/k) (Bender, Augustin & Blettner, Stat Med 2005) with
lp = b_het z(heterogeneity) + b_wall z(wall thickness) + b_enh z(enhancement), where z()
standardises by the generating distribution (heterogeneity, enhancement ~ Beta(2, 2): mean
0.5, sd sqrt(0.05); wall thickness ~ Normal({WALL_THICKNESS_MEAN:g}, {WALL_THICKNESS_SD:g}) mm clipped to
{WALL_THICKNESS_RANGE[0]:g}-{WALL_THICKNESS_RANGE[1]:g} mm). Clinical variables do not enter the hazard.
True coefficients: {coefficients}. Target: median PFS about 25.5 months, oracle
C-index about 0.70-0.75.

{FOLLOW_UP_NOTE}

Event-time and censoring uniforms, ages and wall thicknesses are Latin-hypercube stratified
(each still has its stated marginal distribution); categorical variables have exact counts.
"""


def generate_escc_cohort(
    out_dir: Path,
    n_patients: int = N_PAPER_PATIENTS,
    n_second_segmentation: int = 30,
    seed: int = DEFAULT_SEED,
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
) -> CohortFiles:
    """Write the SYNTHETIC ESCC cohort into ``out_dir``: clinical.csv, manifest.csv, truth.csv,
    README.txt and images/ESCC001_ct.nii.gz, _mask.nii.gz (and _mask_r2.nii.gz for the
    ``n_second_segmentation`` patients with a second segmentation).

    The same arguments give byte-identical files.
    """
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    cohort = simulate_escc(n_patients, n_second_segmentation, seed, shape)
    manifest: dict[str, list[str]] = {column: [] for column in MANIFEST_COLUMNS}
    for patient_id, lesion, spacing, image_seed, has_second in zip(
        cohort.clinical["patient_id"], cohort.lesions, cohort.spacings, cohort.image_seeds, cohort.second_reader,
        strict=True,
    ):
        image, mask1, mask2 = make_escc_case(np.random.default_rng(image_seed), lesion, shape, spacing)
        names = [f"images/{patient_id}_{suffix}.nii.gz" for suffix in ("ct", "mask", "mask_r2")]
        write_nifti(image, out_dir / names[0])
        write_nifti(mask1, out_dir / names[1])
        if has_second:
            write_nifti(mask2, out_dir / names[2])
        row = [patient_id, names[0], names[1], names[2] if has_second else ""]
        for column, value in zip(MANIFEST_COLUMNS, row, strict=True):
            manifest[column].append(value)

    manifest_table = {k: np.array(v, dtype=object) for k, v in manifest.items()}
    return write_cohort_tables(out_dir, {"clinical": (CLINICAL_COLUMNS, cohort.clinical),
                                         "truth": (TRUTH_COLUMNS, cohort.truth),
                                         "manifest": (MANIFEST_COLUMNS, manifest_table)},
                               _readme(n_patients, n_second_segmentation, seed, shape), _format)
