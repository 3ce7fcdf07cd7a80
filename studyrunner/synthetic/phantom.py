"""CT-like, tumour-centred lung crops with a lesion and two readers' masks (SYNTHETIC).

One case is a small chest-CT crop centred on a solid lung lesion:

- lung parenchyma at about -850 HU with a smooth low-frequency density variation and
  slightly correlated quantum noise (standard deviation drawn per case, 20-40 HU);
- a few vessel-like tubes (+40 HU, radius 1-2 mm, soft partial-volume edge) along random
  smooth 3D curves, one of them running into the lesion;
- a soft-tissue lesion (mean about +30 HU) whose size, internal heterogeneity and margin
  irregularity are set by :class:`LesionParams`.

The lesion is star-shaped: its boundary is the radial function
``R(u) = r0 * (1 + p_low(u) + p_spic(u))`` of the direction ``u``, where ``p_low`` is a
smooth random field on the sphere (a sum of von Mises-Fisher bumps, a low-order
spherical-harmonic-like lobulation) and ``p_spic`` a few narrow vMF bumps (spiculae). Both
amplitudes grow with ``margin_irregularity`` and are bounded, so the lesion's extent is
bounded by :func:`lesion_extent_factor` times ``r0`` and :func:`max_volume_ml` tells which
volume fits a crop. Reader 2 outlines the same boundary scaled by a case-level factor and a
small smooth perturbation, and includes the spiculae only partly, as a second radiologist
would (Dice about 0.85-0.95 with reader 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import SimpleITK as sitk

LUNG_HU = -850.0
LUNG_DENSITY_SD_HU = 25.0
LUNG_DENSITY_SIGMA_MM = 4.0
NOISE_SD_RANGE_HU = (20.0, 40.0)
NOISE_SIGMA_VOXELS = 0.6
VESSEL_HU = 40.0
VESSEL_RADIUS_RANGE_MM = (1.0, 2.0)
VESSEL_COUNT_RANGE = (3, 6)
LESION_MEAN_HU = 30.0
LESION_MEAN_SD_HU = 8.0
LESION_TEXTURE_SIGMA_MM = 1.5
LESION_TEXTURE_SD_RANGE_HU = (10.0, 80.0)
PARTIAL_VOLUME_MM = 0.25
HU_RANGE = (-1024, 3071)


@dataclass(frozen=True)
class Scanner:
    """The acquisition of a site: quantum noise (standard deviation drawn per case from
    ``noise_sd_range_hu``) and its correlation length (``noise_sigma_voxels``: a smoother
    reconstruction kernel correlates the noise over more voxels, a sharper one less)."""

    noise_sd_range_hu: tuple[float, float] = NOISE_SD_RANGE_HU
    noise_sigma_voxels: float = NOISE_SIGMA_VOXELS


DEFAULT_SCANNER = Scanner()

LOBULATION_MAX = 0.30
SPICULA_MAX = 0.50
SPICULA_COUNT_MAX = 8
READER2_SCALE_RANGE = (0.03, 0.06)
READER2_WOBBLE_MAX = 0.02
CENTRE_OFFSET_MAX_MM = 1.0
CROP_MARGIN_MM = 1.5

_LOBULATION_NORMALISATION_POINTS = 2000
_VOLUME_QUADRATURE_POINTS = 20000  # resolves the narrowest spicula (angular sd 5 degrees)


@dataclass(frozen=True)
class LesionParams:
    """What the lesion looks like: the ground-truth imaging phenotype of one case.

    ``volume_ml``: volume of reader 1's lesion in millilitres (before voxelisation);
    ``heterogeneity`` in [0, 1]: maps linearly to the standard deviation of the smooth
    internal texture, 10-80 HU; ``margin_irregularity`` in [0, 1]: scales the lobulation
    and the number and length of spiculae (0 is a sphere).
    """

    volume_ml: float
    heterogeneity: float
    margin_irregularity: float

    def __post_init__(self) -> None:
        if not (self.volume_ml > 0 and math.isfinite(self.volume_ml)):
            raise ValueError(f"LesionParams.volume_ml must be a positive number, got {self.volume_ml!r}")
        for name in ("heterogeneity", "margin_irregularity"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"LesionParams.{name} must lie in [0, 1], got {value!r}")


def sphere_radius_mm(volume_ml: float) -> float:
    """Radius of the sphere of the given volume (1 ml = 1000 mm^3)."""
    return (3.0 * volume_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)


def sphere_volume_ml(radius: float) -> float:
    """Volume in ml of the sphere of the given radius in mm."""
    return 4.0 / 3.0 * math.pi * radius**3 / 1000.0


def lesion_extent_factor(margin_irregularity: float) -> float:
    """Upper bound of (largest distance from the lesion centre to either reader's boundary) / r0."""
    shape = 1.0 + (LOBULATION_MAX + SPICULA_MAX) * margin_irregularity
    return shape * (1.0 + READER2_SCALE_RANGE[1] + READER2_WOBBLE_MAX)


def max_volume_ml(
    margin_irregularity: float,
    shape: tuple[int, int, int] = (64, 64, 48),
    spacing: tuple[float, float, float] = (0.75, 0.75, 1.0),
) -> float:
    """Largest ``volume_ml`` for which both readers' lesions stay inside the crop with a margin.

    The crop's half-width along each axis (voxel centres), less the largest centre offset and
    :data:`CROP_MARGIN_MM`, must exceed ``r0 * lesion_extent_factor``.
    """
    half_width = min((n - 1) / 2.0 * sp for n, sp in zip(shape, spacing, strict=True))
    room = half_width - CENTRE_OFFSET_MAX_MM - CROP_MARGIN_MM
    if room <= 0:
        raise ValueError(f"crop of shape {shape} and spacing {spacing} mm is too small for a lesion")
    return sphere_volume_ml(room / lesion_extent_factor(margin_irregularity))


def _unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.normal(size=(count, 3))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@lru_cache(maxsize=4)
def _fibonacci_sphere(count: int) -> np.ndarray:
    """Nearly uniform directions on the unit sphere (golden-angle spiral), read-only."""
    k = np.arange(count) + 0.5
    polar = np.arccos(1.0 - 2.0 * k / count)
    azimuth = math.pi * (1.0 + 5.0**0.5) * k
    directions = np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], axis=1)
    directions.flags.writeable = False
    return directions


@dataclass(frozen=True)
class _SphereField:
    """A weighted sum of von Mises-Fisher bumps ``w_k exp(kappa_k (u . v_k - 1))`` on the sphere."""

    centres: np.ndarray  # (K, 3) unit vectors
    kappas: np.ndarray  # (K,)
    weights: np.ndarray  # (K,)
    offset: float = 0.0
    scale: float = 1.0

    def bumps(self, directions: np.ndarray) -> np.ndarray:
        """(N, K) weighted bump values at (N, 3) unit directions."""
        return self.weights * np.exp(self.kappas * (directions @ self.centres.T - 1.0))

    def __call__(self, directions: np.ndarray) -> np.ndarray:
        return (self.bumps(directions).sum(axis=1) - self.offset) * self.scale


def _smooth_sphere_field(rng: np.random.Generator, amplitude: float, count: int = 6) -> _SphereField:
    """Zero-mean lobulation field whose largest absolute value over the sphere is ``amplitude``."""
    raw = _SphereField(_unit_vectors(rng, count), rng.uniform(3.0, 8.0, count), rng.normal(size=count))
    values = raw(_fibonacci_sphere(_LOBULATION_NORMALISATION_POINTS))
    offset = float(values.mean())
    peak = float(np.abs(values - offset).max())
    return _SphereField(raw.centres, raw.kappas, raw.weights, offset, amplitude / peak if peak > 0 else 0.0)


def _spiculae(rng: np.random.Generator, irregularity: float) -> _SphereField:
    """Narrow positive bumps (angular sd 5-9 degrees: tapering spikes), length up to SPICULA_MAX * r0."""
    count = int(rng.binomial(SPICULA_COUNT_MAX, irregularity))
    lengths = SPICULA_MAX * irregularity * rng.uniform(0.4, 1.0, count)
    return _SphereField(_unit_vectors(rng, count), rng.uniform(40.0, 120.0, count), lengths)


def _spicula_profile(spiculae: _SphereField, directions: np.ndarray) -> np.ndarray:
    """Largest spicula at each direction (the maximum, not the sum, keeps the bound exact)."""
    if spiculae.weights.size == 0:
        return np.zeros(len(directions))
    return spiculae.bumps(directions).max(axis=1)


def gaussian_field(
    rng: np.random.Generator, shape_zyx: tuple[int, ...], spacing_zyx: np.ndarray, sigma_mm: float
) -> np.ndarray:
    """White noise smoothed by a Gaussian of ``sigma_mm`` (FFT, periodic), rescaled to unit sd."""
    noise = rng.standard_normal(size=shape_zyx, dtype=np.float32)
    axes = tuple(range(len(shape_zyx)))
    spectrum = np.fft.rfftn(noise, axes=axes)
    freqs = [np.fft.fftfreq(n, d=sp) for n, sp in zip(shape_zyx[:-1], spacing_zyx[:-1], strict=True)]
    freqs.append(np.fft.rfftfreq(shape_zyx[-1], d=spacing_zyx[-1]))
    squared = sum(f.reshape([-1 if i == axis else 1 for i in axes]) ** 2 for axis, f in enumerate(freqs))
    transfer = np.exp(-2.0 * (math.pi * sigma_mm) ** 2 * squared).astype(np.float32)
    field = np.fft.irfftn(spectrum * transfer, s=shape_zyx, axes=axes)
    return (field - field.mean()) / field.std()


def soft_step(signed_distance_mm: np.ndarray) -> np.ndarray:
    """Partial-volume occupancy: 0.5 on the boundary, logistic over PARTIAL_VOLUME_MM."""
    return 0.5 * (1.0 + np.tanh(signed_distance_mm / (2.0 * PARTIAL_VOLUME_MM)))


def _vessel_occupancy(
    rng: np.random.Generator,
    shape_zyx: tuple[int, int, int],
    spacing_zyx: np.ndarray,
    origin_zyx: np.ndarray,
    lesion_centre_zyx: np.ndarray,
    lesion_radius: float,
) -> np.ndarray:
    """Tubes around random quadratic Bezier curves crossing the crop, the first one passing next
    to the lesion (a feeding vessel). The calibre varies smoothly in space between
    VESSEL_RADIUS_RANGE_MM, so vessels taper and differ; one distance map serves all of them."""
    extent = (np.array(shape_zyx) - 1) * spacing_zyx
    diagonal = float(np.linalg.norm(extent))
    t = np.linspace(0.0, 1.0, int(4 * diagonal / spacing_zyx.min()))[:, None]
    count = int(rng.integers(VESSEL_COUNT_RANGE[0], VESSEL_COUNT_RANGE[1] + 1))
    centreline = np.zeros(shape_zyx, dtype=np.uint8)
    for index in range(count):
        if index == 0:
            through = lesion_centre_zyx + _unit_vectors(rng, 1)[0] * (lesion_radius + rng.uniform(0.0, 2.0))
        else:
            through = origin_zyx + rng.uniform(0.0, 1.0, 3) * extent
        direction = _unit_vectors(rng, 1)[0]
        start, end = through - diagonal * direction, through + diagonal * direction
        control = through + rng.normal(scale=8.0, size=3)
        points = (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end
        index_zyx = np.rint((points - origin_zyx) / spacing_zyx).astype(int)
        inside = np.all((index_zyx >= 0) & (index_zyx < np.array(shape_zyx)), axis=1)
        centreline[tuple(index_zyx[inside].T)] = 1
    centreline_image = sitk.GetImageFromArray(centreline)
    centreline_image.SetSpacing(tuple(float(s) for s in spacing_zyx[::-1]))
    distance = sitk.GetArrayFromImage(
        sitk.SignedMaurerDistanceMap(
            centreline_image, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
        )
    )
    low, high = VESSEL_RADIUS_RANGE_MM
    calibre = gaussian_field(rng, shape_zyx, spacing_zyx, 8.0)
    radius = np.clip((low + high) / 2.0 + (high - low) / 4.0 * calibre, low, high)
    return soft_step(radius - np.maximum(distance, 0.0))


def as_xyz(values) -> tuple[float, float, float]:
    """Three coordinates as plain floats (a 3-sequence or array in, a typed triple out)."""
    x, y, z = values
    return float(x), float(y), float(z)


def image_from_array(
    array_zyx: np.ndarray, spacing: tuple[float, float, float], origin: tuple[float, float, float]
) -> sitk.Image:
    """A SimpleITK image of a (z, y, x) array with (x, y, z) ``spacing`` and ``origin``, identity direction."""
    image = sitk.GetImageFromArray(array_zyx)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return image


def make_case(
    rng: np.random.Generator,
    lesion: LesionParams,
    shape: tuple[int, int, int] = (64, 64, 48),
    spacing: tuple[float, float, float] = (0.75, 0.75, 1.0),
    scanner: Scanner = DEFAULT_SCANNER,
) -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    """One synthetic CT crop: (image int16 HU, reader-1 mask uint8, reader-2 mask uint8).

    ``shape`` and ``spacing`` are in SimpleITK's (x, y, z) order. The crop is centred on the
    physical origin (origin = -(size - 1) / 2 * spacing, identity direction) and the lesion on
    a point within :data:`CENTRE_OFFSET_MAX_MM` of it. Raises ``ValueError`` when
    ``lesion.volume_ml`` exceeds :func:`max_volume_ml` for this crop.
    """
    spacing = as_xyz(spacing)
    limit = max_volume_ml(lesion.margin_irregularity, shape, spacing)
    if lesion.volume_ml > limit:
        raise ValueError(
            f"lesion volume {lesion.volume_ml:.3f} ml does not fit a crop of shape {shape} and spacing "
            f"{spacing} mm at margin irregularity {lesion.margin_irregularity:.3f} (at most {limit:.3f} ml)"
        )
    shape_zyx = (int(shape[2]), int(shape[1]), int(shape[0]))
    spacing_zyx = np.array(spacing[::-1])
    origin_zyx = -(np.array(shape_zyx) - 1) / 2.0 * spacing_zyx
    axes = [o + np.arange(n) * s for o, n, s in zip(origin_zyx, shape_zyx, spacing_zyx, strict=True)]

    irregularity = lesion.margin_irregularity
    r0 = sphere_radius_mm(lesion.volume_ml)
    centre = rng.uniform(-1.0, 1.0, 3) * CENTRE_OFFSET_MAX_MM / math.sqrt(3.0)
    lobulation = _smooth_sphere_field(rng, LOBULATION_MAX * irregularity)
    spiculae = _spiculae(rng, irregularity)
    reader2_scale = rng.choice([-1.0, 1.0]) * rng.uniform(*READER2_SCALE_RANGE)
    reader2_wobble = _smooth_sphere_field(rng, READER2_WOBBLE_MAX)
    reader2_spicula_share = rng.uniform(0.3, 1.0)

    def relative_boundary(directions: np.ndarray, spicula_share: float = 1.0) -> np.ndarray:
        lobes = np.clip(lobulation(directions), -LOBULATION_MAX * irregularity, LOBULATION_MAX * irregularity)
        return 1.0 + lobes + spicula_share * _spicula_profile(spiculae, directions)

    # Star-shaped body volume = (1/3) * integral of R(u)^3 over the sphere: scale r0 so that
    # reader 1's lesion has lesion.volume_ml. The lobulation is zero-mean and the spiculae
    # positive, so mean_cube >= 1 up to quadrature error; never enlarging keeps the bound exact.
    mean_cube = float(np.mean(relative_boundary(_fibonacci_sphere(_VOLUME_QUADRATURE_POINTS)) ** 3))
    r_scaled = r0 / max(mean_cube, 1.0) ** (1.0 / 3.0)

    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    rho_all = np.linalg.norm(grid - centre, axis=1)
    # Beyond the bound plus a partial-volume tail of 8 widths the lesion is absent (occupancy < 4e-4).
    near = np.flatnonzero(rho_all <= r_scaled * lesion_extent_factor(irregularity) + 8.0 * PARTIAL_VOLUME_MM)
    rho = rho_all[near]
    directions = (grid[near] - centre) / np.maximum(rho, 1e-9)[:, None]
    wobble = np.clip(reader2_wobble(directions), -READER2_WOBBLE_MAX, READER2_WOBBLE_MAX)
    boundary1 = r_scaled * relative_boundary(directions)
    boundary2 = r_scaled * relative_boundary(directions, reader2_spicula_share) * (1.0 + reader2_scale + wobble)
    inside1: np.ndarray
    inside2: np.ndarray
    lesion_occupancy: np.ndarray
    inside1, inside2, lesion_occupancy = (np.zeros(grid.shape[0], dtype=dtype) for dtype in (np.uint8, np.uint8, float))
    inside1[near] = rho <= boundary1
    inside2[near] = rho <= boundary2
    lesion_occupancy[near] = soft_step(boundary1 - rho)
    inside1, inside2, lesion_occupancy = (a.reshape(shape_zyx) for a in (inside1, inside2, lesion_occupancy))

    background = LUNG_HU + LUNG_DENSITY_SD_HU * gaussian_field(rng, shape_zyx, spacing_zyx, LUNG_DENSITY_SIGMA_MM)
    vessels = _vessel_occupancy(rng, shape_zyx, spacing_zyx, origin_zyx, centre, r0)
    background = background * (1.0 - vessels) + VESSEL_HU * vessels
    texture_sd = LESION_TEXTURE_SD_RANGE_HU[0] + lesion.heterogeneity * np.diff(LESION_TEXTURE_SD_RANGE_HU)[0]
    lesion_hu = (
        rng.normal(LESION_MEAN_HU, LESION_MEAN_SD_HU)
        + texture_sd * gaussian_field(rng, shape_zyx, spacing_zyx, LESION_TEXTURE_SIGMA_MM)
    )
    noise_sd = rng.uniform(*scanner.noise_sd_range_hu)
    noise = noise_sd * gaussian_field(rng, shape_zyx, np.ones(3), scanner.noise_sigma_voxels)
    hounsfield = background * (1.0 - lesion_occupancy) + lesion_hu * lesion_occupancy + noise
    hounsfield = np.clip(np.rint(hounsfield), *HU_RANGE).astype(np.int16)

    origin = as_xyz(origin_zyx[::-1])
    return (
        image_from_array(hounsfield, spacing, origin),
        image_from_array(inside1, spacing, origin),
        image_from_array(inside2, spacing, origin),
    )
