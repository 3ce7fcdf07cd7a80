"""Explanations stage: 3D Grad-CAM of every CNN score and the similarity of the two endpoint
scores' maps (OSRS and PFSRS in seed 000, Transl Lung Cancer Res 2022;11(4):670-685, "Immune efficacy
prediction in combination with OSRS and PFSRS" and Figure 6).

Grad-CAM (Selvaraju et al., ICCV 2017) of a score that is a linear combination of a
network's outputs (OSRS = sum_k b_k * score_k, the backward-Cox coefficients of the
statistics stage) uses that combination as the target, so the map explains the score the
study reports, not a single output. PRS and PDS are the dual-task network's two heads.

Per patient: SSIM (Wang et al., IEEE TIP 2004) between its maps of the first two endpoint
scores (OSRS and PFSRS); then the
Spearman correlation of that SSIM with every risk score, as the seed does. A map that is zero
everywhere (no voxel raises the score: Grad-CAM's ReLU removes everything) has no structure
to compare, so such a patient gets no SSIM and is counted instead. For
``gradcam_patients`` test patients (the lowest, middle and highest headline score of the
statistics stage: the fused score, or the first survival score when there is no fusion) the
axial, coronal and sagittal mid-slices of the crop and of every map are kept for the report's
overlays.

Outputs: ssim.csv, explanations.json (SSIM summary per cohort, Spearman table, the
selected patients), overlays.npz (mid-slices, read by the report's figures).

Score names are those of statistics/risk_scores.json (``registry.score_name`` and
``fused_name`` of the protocol's endpoints) and ``deep.network.RESPONSE_HEADS``; none is
written here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from studyrunner.deep.crops import cohort_crops
from studyrunner.deep.gradcam import grad_cam_3d
from studyrunner.deep.network import RESPONSE_HEADS, DualTaskNetwork, SurvivalNetwork, network_from_record
from studyrunner.deep.similarity import spearman_table, ssim_3d
from studyrunner.deep.weights import load_weights
from studyrunner.protocol import LoadedProtocol
from studyrunner.run_folder import read_json, write_json

GRADCAM_BATCH = 8
GRADCAM_MIN_SIZE = 4  # voxels per axis of the explained feature map

Target = Callable[[torch.Tensor], torch.Tensor]


def load_network(run_dir: Path, entry: dict, device: str) -> SurvivalNetwork | DualTaskNetwork:
    network = load_weights(network_from_record(entry), run_dir / "deep" / entry["weights"]).to(device).eval()
    assert isinstance(network, SurvivalNetwork | DualTaskNetwork)  # the two classes networks.json records
    return network


def linear_target(weights: torch.Tensor) -> Target:
    """The score sum_k w_k * output_k of a survival network (OSRS from the backward-Cox coefficients)."""
    def target(out: torch.Tensor) -> torch.Tensor:
        return out.float() @ weights
    return target


def head_target(head: int) -> Target:
    """One output column of the dual-task network (PRS, PDS)."""
    def target(out: torch.Tensor) -> torch.Tensor:
        return out[:, head].float()
    return target


def map_targets(run_dir: Path, scores: dict[str, Any], device: str
                ) -> dict[str, tuple[SurvivalNetwork | DualTaskNetwork, Target]]:
    """Each explained score (in the order of risk_scores.json, then the response heads) ->
    (network, function of its outputs giving the score)."""
    networks = read_json(run_dir / "deep" / "networks.json")
    targets: dict[str, tuple[SurvivalNetwork | DualTaskNetwork, Target]] = {}
    for name, score in scores.items():
        coefficients = score.get("output_coefficients")
        if not coefficients or score["network"] not in networks:
            continue  # a fused score (MOSRS) has no single network
        model = load_network(run_dir, networks[score["network"]], device)
        weights = torch.tensor(coefficients, dtype=torch.float32, device=device)
        targets[name] = (model, linear_target(weights))
    if "response" in networks:
        model = load_network(run_dir, networks["response"], device)
        for name, head in RESPONSE_HEADS.items():
            targets[name] = (model, head_target(head))
    return targets


def mid_slices(volume: np.ndarray) -> dict[str, np.ndarray]:
    """Axial, coronal and sagittal slices through the centre of a [z, y, x] volume."""
    z, y, x = (s // 2 for s in volume.shape)
    return {"axial": volume[z], "coronal": volume[:, y, :], "sagittal": volume[:, :, x]}


def selected_patients(scores: pd.DataFrame, column: str, test: pd.Series, count: int) -> list[str]:
    """``count`` test patients spread over the range of ``column`` (lowest ... highest)."""
    rows = scores[test].sort_values(column, kind="stable")
    if rows.empty or count == 0:
        return []
    positions = np.unique(np.round(np.linspace(0, len(rows) - 1, min(count, len(rows)))).astype(int))
    return rows["patient_id"].iloc[positions].tolist()


def explain_scores(loaded: LoadedProtocol, run_dir: Path, patients: pd.DataFrame, stage_dir: Path, device: str,
                   progress: Callable[[int, int], None]) -> None:
    protocol = loaded.protocol
    scored = pd.read_csv(run_dir / "statistics" / "risk_scores.csv", dtype={"patient_id": str})
    rows = patients.set_index("patient_id").loc[scored["patient_id"]].reset_index()
    record = read_json(run_dir / "deep" / "crops.json")
    volumes = cohort_crops(rows, record["crop"], record["zscore"], protocol.preprocessing.mask_label)
    risk = read_json(run_dir / "statistics" / "risk_scores.json")
    targets = map_targets(run_dir, risk["scores"], device)
    maps: dict[str, np.ndarray] = {}
    layers: dict[str, str] = {}
    for done, (name, (model, target)) in enumerate(targets.items(), start=1):
        layers[name], layer = model.gradcam_layer_for(volumes.shape[2:], GRADCAM_MIN_SIZE)
        parts = [grad_cam_3d(model, layer, torch.from_numpy(volumes[i:i + GRADCAM_BATCH]).to(device), target)
                 for i in range(0, len(volumes), GRADCAM_BATCH)]
        maps[name] = np.concatenate(parts)
        progress(done, len(targets))

    summary: dict = {"scores_explained": list(maps), "device": device, "layers": layers,
                     "layer_rule": f"the deepest dense block (or the final activation) whose map is at least "
                                   f"{GRADCAM_MIN_SIZE} voxels along every axis"}
    endpoint_scores = [name for name, score in risk["scores"].items() if score.get("output_coefficients")]
    pair = [name for name in endpoint_scores if name in maps][:2]
    all_scores = [c for c in (*risk["scores"], *RESPONSE_HEADS) if c in scored]
    table = scored[["patient_id", "partition"]].copy()
    for name, volume_maps in maps.items():
        table[f"{name}_map_empty"] = volume_maps.reshape(len(volume_maps), -1).max(axis=1) <= 0
    if len(pair) == 2:
        # an all-zero map (no voxel raises the score) has no structure to compare: no SSIM
        comparable = ~(table[f"{pair[0]}_map_empty"] | table[f"{pair[1]}_map_empty"])
        table["ssim"] = [ssim_3d(a, b, data_range=1.0) if ok else None
                         for a, b, ok in zip(maps[pair[0]], maps[pair[1]], comparable, strict=True)]
        summary["ssim"] = {"pair": pair, "by_cohort": ssim_summary(table, protocol.cohort.split),
                           "n_without_ssim": int((~comparable).sum()),
                           "why_without": "the Grad-CAM map of one of the two scores is zero everywhere"}
        summary["spearman"] = spearman_table({c: scored[c].tolist() for c in all_scores}, table["ssim"].tolist())
    summary["empty_maps"] = {name: int(table[f"{name}_map_empty"].sum()) for name in maps}
    table.to_csv(stage_dir / "ssim.csv", index=False, float_format="%.6g")

    test = scored["partition"].isin(protocol.cohort.split.test)
    order_by = risk.get("headline_score") or next(iter(maps), None)
    chosen = selected_patients(scored, order_by, test, loaded.protocol.predictors.deep_learning.gradcam_patients) \
        if order_by is not None and order_by in scored else []
    arrays = overlay_slices(scored, chosen, volumes, record["zscore"], maps)
    # numpy's stub types **kwds as if one could be allow_pickle; every key here is "<id>/<map>/<plane>"
    np.savez_compressed(stage_dir / "overlays.npz", **arrays)  # type: ignore[arg-type]
    summary["selected"] = [{"patient_id": pid, "ordered_by": order_by,
                            **{c: float(scored.loc[scored["patient_id"] == pid, c].iloc[0])
                               for c in all_scores}}
                           for pid in chosen]
    summary["overlays_file"] = "explanations/overlays.npz"
    summary["planes"] = ["axial", "coronal", "sagittal"]
    write_json(stage_dir / "explanations.json", summary)


def overlay_slices(scored: pd.DataFrame, chosen: list[str], volumes: np.ndarray, zscore: dict[str, float],
                   maps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The mid-slices of the chosen patients' crops (in HU) and maps: {"<id>/<ct|score>/<plane>": slice}."""
    arrays: dict[str, np.ndarray] = {}
    for pid in chosen:
        i = int(np.flatnonzero(scored["patient_id"] == pid)[0])
        hu = volumes[i, 0] * zscore["sd"] + zscore["mean"]
        for plane, image in mid_slices(hu).items():
            arrays[f"{pid}/ct/{plane}"] = image
        for name, volume_maps in maps.items():
            for plane, image in mid_slices(volume_maps[i]).items():
                arrays[f"{pid}/{name}/{plane}"] = image
    return arrays


def ssim_summary(table: pd.DataFrame, split) -> dict:
    out = {}
    for cohort, partitions in (("training", split.training), ("test", split.test)):
        values = table.loc[table["partition"].isin(partitions), "ssim"].dropna().to_numpy(float)
        if values.size:
            q1, median, q3 = np.percentile(values, [25, 50, 75])
            out[cohort] = {"n": int(values.size), "median": float(median), "q1": float(q1), "q3": float(q3)}
    return out
