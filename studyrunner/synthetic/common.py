"""Pieces every SYNTHETIC cohort generator shares: exact-count categorical allocation,
Latin-hypercube draws, Weibull proportional-hazards event times, Harrell's C of the true
linear predictor (the oracle), deterministic CSV and NIfTI writing.

Used by :mod:`studyrunner.synthetic.nsclc_ici` and :mod:`studyrunner.synthetic.escc`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np
import SimpleITK as sitk

STANDARD_NORMAL = NormalDist()

MANIFEST_COLUMNS = ("patient_id", "image", "mask", "mask_reader2")
"""Columns of a generated cohort's image manifest (CT, first and second reader's mask)."""


@dataclass(frozen=True)
class CohortFiles:
    """Where a generator wrote a cohort: the clinical table, the image manifest, the oracle
    (truth.csv), the NIfTI folder and the README that labels it SYNTHETIC."""

    clinical_csv: Path
    manifest_csv: Path
    truth_csv: Path
    images_dir: Path
    readme_txt: Path


def exact_counts(n: int, proportions: Sequence[float]) -> np.ndarray:
    """Counts summing to n closest to n * proportions (largest-remainder rounding)."""
    shares = np.asarray(proportions, dtype=float) / float(np.sum(proportions)) * n
    counts = np.floor(shares).astype(int)
    remainders = shares - counts
    counts[np.argsort(-remainders, kind="stable")[: n - counts.sum()]] += 1
    return counts


def shuffled_labels(
    rng: np.random.Generator, labels: Sequence[str], counts: Sequence[int] | np.ndarray
) -> np.ndarray:
    """Each label repeated its count times, in random order."""
    return rng.permutation(np.repeat(np.array(labels, dtype=object), counts))


def allocate_labels(rng: np.random.Generator, n: int, categories: dict[str, float]) -> np.ndarray:
    """n labels with exact-count proportions (:func:`exact_counts`), in random order."""
    return shuffled_labels(rng, list(categories), exact_counts(n, list(categories.values())))


def stratified_uniforms(rng: np.random.Generator, n: int) -> np.ndarray:
    """Latin-hypercube uniforms (McKay, Beckman & Conover, Technometrics 1979): one draw in each
    of n equal strata of (0, 1), in random order. Each value is still Uniform(0, 1), but the
    sample covers the range evenly, so event rates vary less between small cohorts."""
    return np.maximum((rng.permutation(n) + rng.uniform(size=n)) / n, 1e-300)  # inv_cdf needs u > 0


def stratified_normals(rng: np.random.Generator, n: int) -> np.ndarray:
    """Standard normals from :func:`stratified_uniforms` (inverse normal CDF)."""
    return np.array([STANDARD_NORMAL.inv_cdf(u) for u in stratified_uniforms(rng, n)])


def weibull_ph_times(lp: np.ndarray, uniform: np.ndarray, rate: float, shape: float) -> np.ndarray:
    """Event times of the Weibull proportional-hazards model h(t) = rate * shape * t^(shape-1) exp(lp)
    by inverting the cumulative hazard: T = (-log U / (rate exp(lp)))^(1/shape)
    (Bender, Augustin & Blettner, Stat Med 2005;24:1713-23, Table II). Times are in the unit
    of ``rate``."""
    return (-np.log(uniform) / (rate * np.exp(lp))) ** (1.0 / shape)


def oracle_concordance(truth_lp: Sequence[float], time: Sequence[float], event: Sequence[int]) -> float:
    """Harrell's C-index of a risk score (higher = earlier event) against right-censored times.

    Harrell, Califf, Pryor, Lee & Rosati, JAMA 1982;247:2543-6. A pair is comparable when the
    shorter time is an event; a censored time equal to an event time counts as longer (as in
    R's survival::concordance and lifelines). Concordant pairs count 1, ties in the score 0.5.
    """
    lp, t, e = (np.asarray(a, dtype=float) for a in (truth_lp, time, event))
    if not (lp.shape == t.shape == e.shape and lp.ndim == 1):
        raise ValueError(f"truth_lp, time and event must be 1-D of equal length, got {lp.shape}, {t.shape}, {e.shape}")
    if not (np.isfinite(lp).all() and np.isfinite(t).all() and np.isin(e, (0.0, 1.0)).all()):
        raise ValueError("truth_lp and time must be finite and event must be 0 or 1")
    concordant, comparable = 0.0, 0
    for i in np.flatnonzero(e == 1.0):
        later = (t > t[i]) | ((t == t[i]) & (e == 0.0))
        comparable += int(later.sum())
        concordant += float((lp[i] > lp[later]).sum()) + 0.5 * float((lp[i] == lp[later]).sum())
    if comparable == 0:
        raise ValueError("no comparable pair: the C-index is undefined (no event before another time)")
    return concordant / comparable


def write_csv(
    path: Path, columns: Sequence[str], table: dict[str, np.ndarray], format_value: Callable[[str, object], str]
) -> None:
    """Write ``table`` (column -> array) as UTF-8 CSV with ``\\n`` line ends; each cell is
    ``format_value(column, value)`` so that fixed decimals make re-runs byte-identical."""
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in range(len(table[columns[0]])):
            writer.writerow([format_value(column, table[column][row]) for column in columns])


def write_cohort_tables(out_dir: Path, tables: dict[str, tuple[Sequence[str], dict[str, np.ndarray]]],
                        readme: str, format_value: Callable[[str, object], str]) -> CohortFiles:
    """Write clinical.csv, truth.csv and manifest.csv (``tables[name] = (columns, table)``)
    and README.txt into ``out_dir``, where the images already are (``images/``)."""
    files = CohortFiles(clinical_csv=out_dir / "clinical.csv", manifest_csv=out_dir / "manifest.csv",
                        truth_csv=out_dir / "truth.csv", images_dir=out_dir / "images",
                        readme_txt=out_dir / "README.txt")
    paths = {"clinical": files.clinical_csv, "truth": files.truth_csv, "manifest": files.manifest_csv}
    for name, (columns, table) in tables.items():
        write_csv(paths[name], columns, table, format_value)
    files.readme_txt.write_text(readme, encoding="utf-8")
    return files


def write_nifti(image: sitk.Image, path: Path) -> None:
    """Write a compressed NIfTI (.nii.gz); same image, same bytes."""
    sitk.WriteImage(image, str(path), useCompression=True)
