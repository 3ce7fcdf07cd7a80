"""Apply a frozen CNN bundle (``model/cnn_bundle.json``) unchanged to patients' images.

The same crop, z-score statistics, weights and Cox coefficients as at freezing: the raw
interval scores of every survival network, OSRS/PFSRS (sum of output coefficients x
outputs), the fused score (MOSRS), and PRS/PDS (sigmoid of the dual-task heads). This is the
scoring half of an external validation (the nsclc_ici study's frozen model on another cohort).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from studyrunner.bundle import CNN_BUNDLE_FORMAT, load_bundle
from studyrunner.deep.crops import cohort_crops
from studyrunner.deep.network import RESPONSE_HEADS, network_from_record
from studyrunner.deep.scoring import score_volumes
from studyrunner.deep.weights import load_weights


def score_with_cnn_bundle(bundle_path: Path, patients: pd.DataFrame, *, mask_label: int = 1,
                          device: str = "cpu") -> pd.DataFrame:
    """Scores of ``patients`` (columns patient_id, image, mask) under a frozen CNN bundle."""
    bundle_path = Path(bundle_path)
    bundle = load_bundle(bundle_path, CNN_BUNDLE_FORMAT)
    volumes = cohort_crops(patients, bundle["crop"], bundle["zscore"], mask_label)
    out = patients[["patient_id"]].reset_index(drop=True).copy()
    outputs = {name: score_volumes(load_weights(network_from_record(entry), bundle_path.parent / entry["weights"]),
                                   volumes, device)
               for name, entry in bundle["networks"].items()}
    for name, entry in bundle["networks"].items():
        if entry["class"] == "SurvivalNetwork":
            for k in range(outputs[name].shape[1]):
                out[f"{name}_score_{k + 1}"] = outputs[name][:, k]
    for name, score in bundle["scores"].items():
        if "network" in score:
            out[name] = outputs[score["network"]] @ np.asarray(score["output_coefficients"], dtype=float)
    for name, score in bundle["scores"].items():
        if "fused_coefficients" in score:
            out[name] = sum(coef * out[component] for component, coef in score["fused_coefficients"].items())
    for name in bundle.get("response_scores") or {}:
        out[name] = 1.0 / (1.0 + np.exp(-outputs["response"][:, RESPONSE_HEADS[name]]))
    return out
