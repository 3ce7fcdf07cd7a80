"""Radiomics stage: PyRadiomics features for every case that passed the image checks.

Outputs: ``params.yaml`` (the exact PyRadiomics parameter file used), ``features.csv``
(patient_id + one column per feature), ``exclusions.json`` (cases PyRadiomics failed on)
and ``summary.json``. Per-case results are cached outside the stage folder (the run's
``cache/radiomics``), so a rerun recomputes only what changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from studyrunner.protocol import Protocol
from studyrunner.radiomics.extraction import extract_cohort, radiomics_params, write_params_file
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
                     workers: int, progress: Callable[[int, int], None] | None = None) -> None:
    """Extract features for ``cases`` (columns patient_id, image, mask)."""
    params = params_from_protocol(protocol)
    write_params_file(params, stage_dir / "params.yaml")
    items = [(c.patient_id, Path(c.image), Path(c.mask)) for c in cases.itertuples(index=False)]
    features, failures = extract_cohort(items, params, cache_dir, workers=workers, progress=progress)
    features.index.name = "patient_id"
    features.reset_index().to_csv(stage_dir / "features.csv", index=False)
    write_json(stage_dir / "exclusions.json", failures)
    import radiomics

    write_json(stage_dir / "summary.json", {
        "n_cases": len(features),
        "n_features": features.shape[1],
        "image_types": list(params.get("imageType", {})),
        "feature_classes": sorted({c.split("_")[1] for c in features.columns if c.count("_") >= 2}),
        "pyradiomics_version": str(radiomics.__version__),
    })
