"""Apply a frozen CNN bundle (``model/cnn_bundle.json``) unchanged to patients' images.

The same crop, z-score statistics, weights and Cox coefficients as at freezing: the raw
interval scores of every survival network, OSRS/PFSRS (sum of output coefficients x
outputs), the fused score (MOSRS), and PRS/PDS (sigmoid of the dual-task heads). This is the
scoring half of an external validation (the nsclc_ici study's frozen model on another cohort).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from studyrunner.bundle import CNN_BUNDLE_FORMAT, load_bundle
from studyrunner.cluster import LOCAL, run_tasks
from studyrunner.deep.crops import cohort_crops
from studyrunner.deep.network import RESPONSE_HEADS, network_from_record
from studyrunner.deep.scoring import score_volumes
from studyrunner.deep.weights import load_weights
from studyrunner.devices import resolve_device
from studyrunner.errors import StudyError
from studyrunner.imaging.structure import STRUCTURE_COLUMN

# Cases per scoring task: a task crops its cases and runs every network over them as one batch.
# The local path scores the same batches, so where a batch ran never changes its numbers.
CASES_PER_BATCH = 16


def score_with_cnn_bundle(bundle_path: Path, patients: pd.DataFrame, *, mask_label: int = 1,
                          device: str = "cpu", cluster: str = LOCAL,
                          progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Scores of ``patients`` (columns patient_id, image, mask) under a frozen CNN bundle.

    The cases are cropped and scored in batches of :data:`CASES_PER_BATCH`, in this process
    or as tasks of the Dask cluster ``cluster`` (:mod:`studyrunner.cluster`), each worker
    loading the bundle once and scoring on ``device`` (``auto``: the worker's GPU when it
    has one); only the network outputs come back. The scores are composed here from them."""
    bundle_path = Path(bundle_path)
    bundle = load_bundle(bundle_path, CNN_BUNDLE_FORMAT)
    columns = ["patient_id", "image", "mask", *([STRUCTURE_COLUMN] if STRUCTURE_COLUMN in patients else [])]
    rows = patients[columns].reset_index(drop=True)  # the DICOM masks' structure selector travels with the case
    batches = [rows.iloc[start:start + CASES_PER_BATCH] for start in range(0, len(rows), CASES_PER_BATCH)]
    first_case = [Path(rows.at[0, "image"]), Path(rows.at[0, "mask"])] if len(rows) else []
    parts = run_tasks(batch_outputs, batches, str(bundle_path), device, mask_label, cluster=cluster,
                      progress=progress, on_lost=_lost_batch, worker_paths=[bundle_path, *first_case])
    outputs = {name: np.concatenate([part.outputs[name] for part in parts]) for name in bundle["networks"]}
    scores = compose_scores(bundle, rows[["patient_id"]].copy(), outputs)
    cases_per_device: Counter[str] = Counter()
    for part in parts:
        cases_per_device[part.device] += part.n_cases
    scores.attrs["devices"] = dict(cases_per_device)
    return scores


@dataclass(frozen=True)
class BatchOutputs:
    """What a scoring task sends back: each network's outputs, and the device that computed them."""

    outputs: dict[str, np.ndarray]
    device: str

    @property
    def n_cases(self) -> int:
        return len(next(iter(self.outputs.values()))) if self.outputs else 0


def _lost_batch(batch: pd.DataFrame, error: BaseException) -> BatchOutputs:
    raise StudyError(f"every Dask worker that scored the cases {', '.join(batch['patient_id'])} with the CNNs "
                     f"died (Dask's allowed-failures): {error}")


# Worker-process state: the bundles (hashes verified) and networks this process has scored with, by file.
_loaded: dict[tuple[str, int, int], tuple[dict[str, Any], dict[str, torch.nn.Module]]] = {}


def batch_outputs(bundle_path: str, device: str, mask_label: int, batch: pd.DataFrame) -> BatchOutputs:
    """Every network's outputs [cases, outputs] for one batch of cases (a task): the frozen
    crop and z-score; the bundle is loaded (its hashes checked) and its networks built once per
    process and bundle file version, not per batch."""
    path = Path(bundle_path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _loaded:
        bundle = load_bundle(path, CNN_BUNDLE_FORMAT)
        _loaded[key] = bundle, {name: load_weights(network_from_record(entry), path.parent / entry["weights"])
                                for name, entry in bundle["networks"].items()}
    bundle, networks = _loaded[key]
    volumes = cohort_crops(batch, bundle["crop"], bundle["zscore"], mask_label)
    target = resolve_device(device)
    return BatchOutputs({name: score_volumes(network, volumes, target, batch_size=len(batch))
                         for name, network in networks.items()}, target)


def compose_scores(bundle: Mapping[str, Any], out: pd.DataFrame, outputs: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The bundle's scores from its networks' outputs: each survival network's raw interval
    scores, OSRS/PFSRS (output coefficients x outputs), the fused MOSRS, PRS/PDS (sigmoid)."""
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
