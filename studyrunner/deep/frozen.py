"""Apply a frozen CNN bundle (``model/cnn_bundle.json``) unchanged to patients' images.

The same crop, z-score statistics, weights and Cox coefficients as at freezing: the raw
interval scores of every survival network, OSRS/PFSRS (sum of output coefficients x
outputs), the fused score (MOSRS), and PRS/PDS (sigmoid of the dual-task heads). This is the
scoring half of an external validation (seed 000's frozen model on another cohort).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from studyrunner.bundle import CNN_BUNDLE_FORMAT, load_bundle
from studyrunner.deep.crops import apply_zscore, tumour_crop
from studyrunner.deep.network import DualTaskNetwork, NetworkConfig, SurvivalNetwork
from studyrunner.deep.scoring import score_volumes
from studyrunner.deep.weights import load_weights


def frozen_network(bundle_dir: Path, entry: dict):
    config = NetworkConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in entry["config"].items()})
    model = DualTaskNetwork(config) if entry["class"] == "DualTaskNetwork" else SurvivalNetwork(config, entry["outputs"])
    return load_weights(model, bundle_dir / entry["weights"])


def score_with_cnn_bundle(bundle_path: Path, patients: pd.DataFrame, *, mask_label: int = 1,
                          device: str = "cpu") -> pd.DataFrame:
    """Scores of ``patients`` (columns patient_id, image, mask) under a frozen CNN bundle."""
    bundle_path = Path(bundle_path)
    bundle = load_bundle(bundle_path, CNN_BUNDLE_FORMAT)
    crop = bundle["crop"]
    volumes = np.stack([tumour_crop(row.image, row.mask, mask_label=mask_label, spacing_mm=tuple(crop["spacing_mm"]),
                                    size_voxels=tuple(crop["size_voxels"]), hu_window=tuple(crop["hu_window"]))
                        for row in patients.itertuples(index=False)])[:, None].astype(np.float32)
    volumes = apply_zscore(volumes, bundle["zscore"]["mean"], bundle["zscore"]["sd"])
    out = patients[["patient_id"]].reset_index(drop=True).copy()
    outputs = {name: score_volumes(frozen_network(bundle_path.parent, entry), volumes, device)
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
    for name, response in (bundle.get("response_scores") or {}).items():
        out[name] = 1.0 / (1.0 + np.exp(-outputs["response"][:, response["head"]]))
    return out
