"""The frozen model bundle: everything needed to score a new cohort, as plain JSON.

A bundle never holds code or pickles, so loading one from another site cannot execute
anything. It records the radiomics parameter file, the training normalisation, the Cox
coefficients, the risk-group cut-off, the endpoint and the provenance (protocol hash,
versions); ``content_sha256`` lets a user check that a bundle was not altered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from studyrunner import __version__
from studyrunner.run_folder import read_json, sha256_json, write_json

BUNDLE_FORMAT = "studyrunner.radiomics-cox/1"


class BundleError(Exception):
    """A bundle that is missing, altered or of an unknown format."""


def freeze_model(out_dir: Path, *, model: dict[str, Any], normalisation: dict[str, dict[str, float]],
                 radiomics_params_text: str | None, protocol_sha256: str, study_name: str, synthetic: bool) -> Path:
    """Write ``bundle.json`` into ``out_dir`` and return its path."""
    selected = model["selected"]
    content = {
        "format": BUNDLE_FORMAT,
        "studyrunner_version": __version__,
        "study": study_name,
        "synthetic_training_data": synthetic,
        "protocol_sha256": protocol_sha256,
        "endpoint": {"name": model["endpoint"], "time": model["time"], "event": model["event"]},
        "radiomics_params_yaml": radiomics_params_text,  # None: features came from a feature table
        "features": selected,
        "normalisation": {name: normalisation[name] for name in selected},
        "coefficients": model["coefficients"],
        "score": "sum of coefficient x z-scored feature (Cox linear predictor, uncentred)",
        "cutoff": {"value": model["cutoff"], "method": model["cutoff_method"], "high_risk": "score > cutoff"},
    }
    path = out_dir / "bundle.json"
    write_json(path, {**content, "content_sha256": sha256_json(content)})
    return path


def load_bundle(path: Path) -> dict[str, Any]:
    """Read a bundle and check its format and integrity."""
    try:
        bundle = read_json(path)
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: cannot read the model bundle: {exc}") from exc
    if bundle.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path}: unknown bundle format {bundle.get('format')!r} (expected {BUNDLE_FORMAT})")
    recorded = bundle.pop("content_sha256", None)
    if recorded != sha256_json(bundle):
        raise BundleError(f"{path}: content hash mismatch: the bundle was modified after it was frozen")
    return bundle
