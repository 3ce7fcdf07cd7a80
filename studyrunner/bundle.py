"""The frozen model bundle: everything needed to score a new cohort, as plain JSON.

A bundle never holds code or pickles, so loading one from another site cannot execute
anything. It records the radiomics parameter file, the training normalisation, the Cox
coefficients, the risk-group cut-off, the endpoint and the provenance (protocol hash,
versions); ``content_sha256`` lets a user check that a bundle was not altered.

A study with CNNs (like nsclc_ici) also freezes ``cnn_bundle.json`` with the network weights as
numpy ``.npz`` files beside it (no pickle; each file's SHA-256 is in the bundle): the crop
and z-score settings, each network's architecture, the interval cut-offs, the Cox
coefficients that turn the networks' outputs into OSRS/PFSRS and MOSRS, every score's
cut-off and the PRS/PDS Youden cut-offs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from studyrunner import __version__
from studyrunner.protocol import LoadedProtocol
from studyrunner.run_folder import read_json, sha256_file, sha256_json, write_json

BUNDLE_FORMAT = "studyrunner.radiomics-cox/1"
CNN_BUNDLE_FORMAT = "studyrunner.cnn-scores/1"


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
        "cutoff": {"value": model["cutoff"]["value"], "method": model["cutoff"]["method"],
                   "high_risk": "score > cutoff"},
    }
    path = out_dir / "bundle.json"
    write_json(path, {**content, "content_sha256": sha256_json(content)})
    return path


def freeze_cnn_model(out_dir: Path, run_dir: Path, *, protocol_sha256: str, study_name: str,
                     synthetic: bool) -> Path:
    """Write ``cnn_bundle.json`` and ``weights/*.npz`` into ``out_dir``; return the bundle path."""
    networks = read_json(run_dir / "deep" / "networks.json")
    training = read_json(run_dir / "deep" / "training.json")
    crops = read_json(run_dir / "deep" / "crops.json")
    risk = read_json(run_dir / "statistics" / "risk_scores.json")
    (out_dir / "weights").mkdir(parents=True, exist_ok=True)
    frozen_networks = {}
    for name, entry in networks.items():
        target = out_dir / entry["weights"]
        shutil.copyfile(run_dir / "deep" / entry["weights"], target)
        record = training["networks"].get(name, {})
        frozen_networks[name] = {**entry, "weights_sha256": sha256_file(target),
                                 "interval_cutoffs": record.get("cutoffs"), "endpoint": record.get("endpoint")}
    scores = {}
    for name, block in risk["scores"].items():
        scores[name] = {"endpoint": block["endpoint"], "cutoff": block["cutoff"]["value"],
                        "high_risk": "score > cutoff",
                        **({"network": block["network"], "output_coefficients": block["output_coefficients"]}
                           if "network" in block else {"fused_coefficients": block["fusion"]["fused_coefficients"]})}
    from studyrunner.deep.network import RESPONSE_HEADS

    response = {name: {"head": RESPONSE_HEADS[name], "positive": "score >= cutoff",
                       "youden_cutoff": (block["by_cohort"].get("training") or {}).get("cutoff")}
                for name, block in (risk.get("response") or {}).items()}
    content = {
        "format": CNN_BUNDLE_FORMAT,
        "studyrunner_version": __version__,
        "study": study_name,
        "synthetic_training_data": synthetic,
        "protocol_sha256": protocol_sha256,
        "crop": crops["crop"],
        "zscore": crops["zscore"],
        "networks": frozen_networks,
        "scores": scores,
        "response_scores": response,
        "score_definition": "network outputs (raw) -> score = sum of output_coefficients x outputs; "
                            "fused score = sum of fused_coefficients x component scores; "
                            "PRS/PDS = sigmoid of the heads",
    }
    path = out_dir / "cnn_bundle.json"
    write_json(path, {**content, "content_sha256": sha256_json(content)})
    return path


def load_bundle(path: Path, expected_format: str = BUNDLE_FORMAT) -> dict[str, Any]:
    """Read a bundle and check its format and integrity (and, for a CNN bundle, its weights)."""
    try:
        bundle = read_json(path)
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: cannot read the model bundle: {exc}") from exc
    if bundle.get("format") != expected_format:
        raise BundleError(f"{path}: unknown bundle format {bundle.get('format')!r} (expected {expected_format})")
    recorded = bundle.pop("content_sha256", None)
    if recorded != sha256_json(bundle):
        raise BundleError(f"{path}: content hash mismatch: the bundle was modified after it was frozen")
    for name, network in (bundle.get("networks") or {}).items():
        weights = path.parent / network["weights"]
        if not weights.is_file() or sha256_file(weights) != network["weights_sha256"]:
            raise BundleError(f"{weights}: weights of network {name!r} missing or altered after freezing")
    return bundle


def freeze_run(loaded: LoadedProtocol, run_dir: Path, stage_dir: Path) -> None:
    """The model stage: freeze the run's radiomics model (``bundle.json``) and, when it has
    them, its CNNs (``cnn_bundle.json`` with the weights); a run that fitted no radiomics model
    records why in ``not_frozen.json``."""
    study = loaded.protocol.study
    if (run_dir / "statistics" / "risk_scores.json").exists():
        freeze_cnn_model(stage_dir, run_dir, protocol_sha256=loaded.sha256, study_name=study.name,
                         synthetic=study.synthetic)
    model = read_json(run_dir / "statistics" / "model.json")
    if "coefficients" not in model:
        write_json(stage_dir / "not_frozen.json", {"reason": model.get("note", "no model was fitted")})
        return
    params = run_dir / "radiomics" / "params.yaml"
    freeze_model(stage_dir, model=model, normalisation=read_json(run_dir / "statistics" / "normalisation.json"),
                 radiomics_params_text=params.read_text() if params.exists() else None,
                 protocol_sha256=loaded.sha256, study_name=study.name, synthetic=study.synthetic)
