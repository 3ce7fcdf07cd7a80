r"""Similarity of two explanation maps (3D SSIM) and its Spearman correlation with scores.

The nsclc_ici study (Transl Lung Cancer Res 2022;11(4):670-685) computes "the structural similarity"
between each patient's OSRS and PFSRS Grad-CAM maps and correlates that coefficient with
every risk score by Spearman's correlation (its Figure 6).

SSIM: Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from error visibility
to structural similarity", IEEE Trans Image Process 2004;13(4):600-612, eq. (13) with
local statistics under a normalised window w (their eq. (14)-(16))::

    mu_a = w * a,  sigma_a^2 = w * a^2 - mu_a^2,  sigma_ab = w * (a b) - mu_a mu_b
    SSIM(v) = (2 mu_a mu_b + C1)(2 sigma_ab + C2)
              / ((mu_a^2 + mu_b^2 + C1)(sigma_a^2 + sigma_b^2 + C2))
    C1 = (k1 L)^2,  C2 = (k2 L)^2,  L = data_range

and the mean of SSIM(v) over voxels v (their MSSIM). Here in 3D:

* Window: ``"gaussian"`` (default; separable, standard deviation ``sigma`` voxels, cut at
  ``truncate * sigma``, i.e. radius ``int(truncate * sigma + 0.5)``: sigma 1.5 and truncate
  3.5 give the paper's 11-wide window with sigma 1.5) or ``"uniform"`` (a cube of odd
  edge ``size``). Weighted (population) moments, no N/(N-1) correction.
* Border: ``border="reflect"`` (default) computes SSIM at every voxel, extending the
  volumes by half-sample symmetric reflection (``d c b a | a b c d | d c b a``, scipy's
  ``mode="reflect"``, numpy's ``pad(mode="symmetric")``); ``border="valid"`` averages only
  over voxels whose whole window lies inside the volume (the paper's convention; the
  volume must be at least one window wide in every axis).
* ``data_range`` defaults to ``max(a.max(), b.max()) - min(a.min(), b.min())``; pass 1.0
  for Grad-CAM maps in [0, 1] (two all-zero maps then have SSIM 1). With the default and
  two identical constant volumes the range is 0 and the result is defined as 1.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import ndimage, stats

from studyrunner.errors import InputError

__all__ = ["spearman_table", "ssim_3d"]


def _volume(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 3:
        raise InputError(f"{name} has shape {arr.shape}; need a 3D volume [D, H, W]")
    if arr.size == 0:
        raise InputError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} has NaN or infinite values")
    return arr


def _window(window: str, sigma: float, truncate: float, size: int) -> tuple[Callable[[np.ndarray], np.ndarray], int]:
    """The local-mean filter of ``window`` and its radius in voxels."""
    if window == "gaussian":
        if not sigma > 0 or not truncate > 0:
            raise InputError(f"sigma is {sigma!r} and truncate {truncate!r}; need both > 0")

        def gaussian(v: np.ndarray) -> np.ndarray:
            return ndimage.gaussian_filter(v, sigma=sigma, truncate=truncate, mode="reflect")

        return gaussian, int(truncate * sigma + 0.5)
    if window == "uniform":
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1 or size % 2 == 0:
            raise InputError(f"size is {size!r}; need an odd window edge >= 1")

        def uniform(v: np.ndarray) -> np.ndarray:
            return ndimage.uniform_filter(v, size=int(size), mode="reflect")

        return uniform, int(size) // 2
    raise InputError(f"window is {window!r}; need 'gaussian' or 'uniform'")


def ssim_3d(
    a: np.ndarray,
    b: np.ndarray,
    *,
    data_range: float | None = None,
    sigma: float = 1.5,
    truncate: float = 3.5,
    k1: float = 0.01,
    k2: float = 0.03,
    window: str = "gaussian",
    size: int = 7,
    border: str = "reflect",
) -> float:
    """Mean structural similarity of two 3D volumes (Wang et al., IEEE TIP 2004).

    ``window``: ``"gaussian"`` (``sigma``, ``truncate``) or ``"uniform"`` (odd ``size``);
    ``border``: ``"reflect"`` (all voxels) or ``"valid"`` (voxels with the whole window
    inside). Returns the mean SSIM, a float in [-1, 1].
    """
    x = _volume(a, "a")
    y = _volume(b, "b")
    if x.shape != y.shape:
        raise InputError(f"a has shape {x.shape} but b has {y.shape}")
    filt, radius = _window(window, sigma, truncate, size)
    if border not in ("reflect", "valid"):
        raise InputError(f"border is {border!r}; need 'reflect' or 'valid'")
    if border == "valid" and min(x.shape) < 2 * radius + 1:
        raise InputError(f"volumes of shape {x.shape} are smaller than the {2 * radius + 1}-voxel window")

    if data_range is None:
        data_range = max(x.max(), y.max()) - min(x.min(), y.min())
        if data_range == 0:  # both volumes the same constant
            return 1.0
    elif not (math.isfinite(data_range) and data_range > 0):
        raise InputError(f"data_range is {data_range!r}; need a finite value > 0")
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2

    mu_x, mu_y = filt(x), filt(y)
    var_x = filt(x * x) - mu_x * mu_x
    var_y = filt(y * y) - mu_y * mu_y
    cov = filt(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    smap = num / den
    if border == "valid" and radius:
        smap = smap[radius:-radius, radius:-radius, radius:-radius]
    return float(smap.mean())


def spearman_table(values: Mapping[str, Sequence[float]], against: Sequence[float]) -> list[dict]:
    """Spearman's rank correlation of ``against`` with each named series (scipy.stats.spearmanr).

    Pairs where either value is missing (None/NaN) are dropped. Returns one dict per name,
    in the mapping's order: ``name``, ``rho``, ``p`` (two-sided, t approximation with
    n - 2 df as in scipy) and ``n`` (pairs used); rho and p are NaN when n < 3 or either
    series is constant.
    """
    ref = np.asarray(against, dtype=float).reshape(-1)
    rows = []
    for name, seq in values.items():
        v = np.asarray(seq, dtype=float).reshape(-1)
        if v.shape != ref.shape:
            raise InputError(f"{name} has {v.size} values but the reference has {ref.size}")
        ok = np.isfinite(v) & np.isfinite(ref)
        n = int(ok.sum())
        rho = p = float("nan")
        if n >= 3 and np.ptp(v[ok]) > 0 and np.ptp(ref[ok]) > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = stats.spearmanr(v[ok], ref[ok])
            rho, p = float(res.statistic), float(res.pvalue)
        rows.append({"name": str(name), "rho": rho, "p": p, "n": n})
    return rows
