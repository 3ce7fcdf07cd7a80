"""Radiomics stage: PyRadiomics features for every case that passed the image checks.

Outputs: ``params.yaml`` (the exact PyRadiomics parameter file used), ``features.csv``
(patient_id + one column per feature), ``exclusions.json`` (cases PyRadiomics failed on)
and ``summary.json``. Per-case results are cached outside the stage folder (the run's
``cache/radiomics``), so a rerun recomputes only what changed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from studyrunner.imaging.structure import STRUCTURE_COLUMN
from studyrunner.protocol import Protocol
from studyrunner.radiomics.cohort_extraction import extract_cohort
from studyrunner.radiomics.parameters import radiomics_params, write_params_file
from studyrunner.run_folder import write_json


def params_from_protocol(protocol: Protocol) -> dict:
    settings = protocol.predictors.radiomics
    pre = protocol.preprocessing
    return radiomics_params(
        image_types=settings.image_types,
        feature_classes=settings.feature_classes,
        bin_width=settings.bin_width,
        bin_count=settings.bin_count,
        resampled_spacing=pre.resample_spacing,
        interpolator=pre.interpolator,
        label=pre.mask_label,
        extra_settings=settings.settings,
    )


def extract_features(protocol: Protocol, cases: pd.DataFrame, stage_dir: Path, cache_dir: Path,
                     workers: int, progress: Callable[[int, int], None] | None = None, cluster: str = "local") -> None:
    """Extract features for ``cases`` (columns patient_id, image, mask[, mask_reader2]).

    The second reader's mask is extracted only when the statistics plan has a
    reproducibility filter; the image of a case is then prepared once for both masks.
    A first-reader failure excludes the patient; a second-reader failure only leaves the
    patient out of the ICC, and is recorded in ``reader2_failures.json``. ``cluster``: where
    the cases are computed (:mod:`studyrunner.cluster`); the outputs do not depend on it.
    """
    second = protocol.statistics.reproducibility is not None
    extract_with_params(params_from_protocol(protocol), cases, stage_dir, cache_dir, workers, progress, second,
                        cluster)


def extract_with_params(params: dict, cases: pd.DataFrame, stage_dir: Path, cache_dir: Path, workers: int,
                        progress: Callable[[int, int], None] | None = None, second_reader: bool = False,
                        cluster: str = "local") -> None:
    """The radiomics stage's outputs (module docstring) for ``cases`` under ``params``; the
    second reader's masks are extracted when ``second_reader`` and the cases have them."""
    write_params_file(params, stage_dir / "params.yaml")
    second = second_reader and "mask_reader2" in cases.columns
    items = []
    for case in cases.itertuples(index=False):
        masks = {"reader1": Path(case.mask)}
        if second and isinstance(case.mask_reader2, str) and case.mask_reader2:
            masks["reader2"] = Path(case.mask_reader2)
        items.append((case.patient_id, Path(case.image), masks))
    structures = (dict(zip(cases["patient_id"], cases[STRUCTURE_COLUMN].fillna(""), strict=True))
                  if STRUCTURE_COLUMN in cases.columns else None)
    tables, failures = extract_cohort(items, params, cache_dir, workers=workers, progress=progress,
                                     cluster=cluster, structures=structures)
    for reader, table in tables.items():
        table.index.name = "patient_id"
        name = "features.csv" if reader == "reader1" else f"features_{reader}.csv"
        table.reset_index().to_csv(stage_dir / name, index=False)
    write_json(stage_dir / "exclusions.json", [{k: v for k, v in f.items() if k != "mask"}
                                              for f in failures if f["mask"] == "reader1"])
    write_json(stage_dir / "reader2_failures.json", [f for f in failures if f["mask"] != "reader1"])
    import radiomics

    features = tables.get("reader1", pd.DataFrame())
    write_json(stage_dir / "summary.json", {
        "n_cases": len(features),
        "n_features": features.shape[1],
        "n_second_reader": len(tables.get("reader2", [])),
        "image_types": list(params.get("imageType", {})),
        "feature_classes": sorted({c.split("_")[1] for c in features.columns if c.count("_") >= 2}),
        "pyradiomics_version": str(radiomics.__version__),
    })
