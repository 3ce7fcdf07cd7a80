"""Deep-learning stage: the nsclc_ici study's CNNs, trained and scored (Transl Lung Cancer Res
2022;11(4):670-685, "Acquisition and verification of OSRS and PFSRS" and "of PRS and PDS").

For every patient whose images passed their checks: a tumour-centred crop
(:func:`studyrunner.deep.crops.tumour_crop`), z-scored with the fitting partition's
statistics. Then

* one survival network per time-to-event endpoint: interval cut-offs at the quantiles of
  the training cohort's event times, interval labels, the interval margin loss
  (:class:`studyrunner.deep.survival_loss.SurvivalIntervalLoss`) -> a risk vector of K
  scores per patient;
* one dual-task network for the best overall response: a partial-response (PR) and a
  progressive-disease (PD) head trained with binary cross-entropy -> PRS and PDS, the
  heads' probabilities.

Every network is fitted on ``fit_partition``; its epoch is chosen on
``model_choice_partition`` (lowest validation loss); the test cohort is only scored. The
settings that ran (the protocol's main ones, or its ``cpu`` profile on a CPU) are recorded.

Outputs: crops.json (crop settings, z-score statistics, excluded cases), scores.csv (one row
per scored patient: partition, ``<endpoint>_score_<k>``, ``prs``, ``pds``), training.json
(per network: cut-offs, history, chosen epoch, throughput, macro-accuracy per cohort),
weights/<network>.npz and networks.json (each network's configuration).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from studyrunner.deep.crops import apply_zscore, crop_case, zscore_statistics
from studyrunner.deep.intervals import interval_cutoffs, interval_labels
from studyrunner.deep.network import RESPONSE_HEADS, DualTaskNetwork, NetworkConfig, SurvivalNetwork
from studyrunner.deep.scoring import macro_accuracy, score_volumes
from studyrunner.deep.survival_loss import SurvivalIntervalLoss
from studyrunner.deep.training import TrainingResult, TrainingSettings, train_network
from studyrunner.deep.weights import save_weights
from studyrunner.errors import InputError, StudyError
from studyrunner.imaging.structure import STRUCTURE_COLUMN
from studyrunner.protocol import (
    CategoricalEndpoint,
    CropSettings,
    DeepLearningPredictors,
    LoadedProtocol,
    NetworkSettings,
    ResponseTask,
    SplitSection,
    TimeToEventEndpoint,
    TrainingPlan,
)
from studyrunner.run_folder import write_json

log = logging.getLogger("studyrunner")

Progress = Callable[[int, int], None]


def score_columns(endpoint: str, n_intervals: int) -> list[str]:
    """Names of one endpoint's risk-vector columns in scores.csv."""
    return [f"{endpoint}_score_{k}" for k in range(1, n_intervals + 1)]


def network_config(settings: NetworkSettings) -> NetworkConfig:
    return NetworkConfig(block_layers=tuple(settings.block_layers), growth_rate=settings.growth_rate,
                         initial_features=settings.initial_features, hidden_units=settings.hidden_units,
                         dropout=settings.dropout)


def training_settings(plan: TrainingPlan, seed: int) -> TrainingSettings:
    return TrainingSettings(epochs=plan.epochs, batch_size=plan.batch_size, learning_rate=plan.learning_rate,
                            weight_decay=plan.weight_decay, patience=plan.patience, augment=plan.augment,
                            max_shift=plan.max_shift, seed=seed)


def load_crops(patients: pd.DataFrame, crop: CropSettings, mask_label: int,
               progress: Progress) -> tuple[list[str], np.ndarray, list[dict]]:
    """Crops of every patient; a case whose crop fails is left out with its reason."""
    ids, volumes, excluded = [], [], []
    for done, row in enumerate(patients.itertuples(index=False), start=1):
        try:
            volumes.append(crop_case(row.image, row.mask, crop.model_dump(), mask_label,
                                     getattr(row, STRUCTURE_COLUMN, None)))
            ids.append(row.patient_id)
        except (InputError, RuntimeError) as error:  # SimpleITK raises RuntimeError
            excluded.append({"patient_id": row.patient_id, "reason": f"CNN crop failed: {error}"})
            log.warning("patient %s left out of the CNNs: %s", row.patient_id, error)
        progress(done, len(patients))
    if not volumes:
        raise StudyError("no patient has a usable crop for the CNNs (see deep/crops.json)")
    return ids, np.stack(volumes)[:, None].astype(np.float32), excluded


def survival_targets(rows: pd.DataFrame, time: str, event: str, cutoffs: tuple[float, ...]) -> dict[str, np.ndarray]:
    targets, known = interval_labels(rows[time].to_numpy(float), rows[event].to_numpy(int), cutoffs)
    return {"targets": targets.astype(np.float32), "known": known}


def response_targets(rows: pd.DataFrame, column: str, pr: str, pd_level: str) -> dict[str, np.ndarray]:
    """Targets of the dual-task heads, in the column order of ``RESPONSE_HEADS``."""
    values = rows[column]
    levels = {"prs": pr, "pds": pd_level}
    labels = np.zeros((len(rows), len(RESPONSE_HEADS)), np.float32)
    for score, head in RESPONSE_HEADS.items():
        labels[:, head] = (values == levels[score]).to_numpy(np.float32)
    return {"labels": labels}


@dataclass
class CropCohort:
    """The cropped, z-scored cohort and its partitions (boolean masks over ``table``'s rows)."""

    table: pd.DataFrame
    volumes: np.ndarray
    fit: np.ndarray
    choose: np.ndarray
    cohorts: dict[str, np.ndarray]


def crop_cohort(patients: pd.DataFrame, deep: DeepLearningPredictors, crop: CropSettings, split: SplitSection,
                mask_label: int, stage_dir: Path, profile: str, progress: Progress) -> CropCohort:
    """Crop every patient, z-score with the fitting partition's statistics, write crops.json."""
    ids, volumes, excluded = load_crops(patients, crop, mask_label, progress)
    table = patients.set_index("patient_id").loc[ids].reset_index()
    fit = (table["partition"] == deep.fit_partition).to_numpy()
    choose = (table["partition"] == deep.model_choice_partition).to_numpy()
    for name, mask in ((deep.fit_partition, fit), (deep.model_choice_partition, choose)):
        if not mask.any():
            raise StudyError(f"partition {name!r} has no patient with a usable crop; the CNNs cannot be trained")
    mean, sd = zscore_statistics(volumes[fit])
    zscore = {"mean": mean, "sd": sd, "computed_on": deep.fit_partition}
    write_json(stage_dir / "crops.json", {"profile": profile, "crop": crop.model_dump(), "zscore": zscore,
                                          "n_cropped": len(ids), "excluded": excluded})
    cohorts = {"training": table["partition"].isin(split.training).to_numpy(),
               "test": table["partition"].isin(split.test).to_numpy()}
    return CropCohort(table, apply_zscore(volumes, mean, sd), fit, choose, cohorts)


@dataclass
class NetworkTrainer:
    """Fits networks on the fitting partition, chooses their epoch on the model-choice
    partition, saves their weights and scores every cropped patient."""

    cohort: CropCohort
    plan: TrainingPlan
    config: NetworkConfig
    seed: int
    device: str
    weights_dir: Path
    model_choice_partition: str
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def train(self, name: str, model: torch.nn.Module, loss_fn: Callable[..., torch.Tensor],
              targets: dict[str, np.ndarray], usable: np.ndarray, offset: int) -> tuple[TrainingResult, np.ndarray]:
        """Fit ``model`` (seed ``seed + offset``) on the usable fitting rows; return the
        training result and the outputs for every patient."""
        c = self.cohort
        fit, choose = c.fit & usable, c.choose & usable
        result = train_network(model, loss_fn, c.volumes[fit], {k: v[fit] for k, v in targets.items()},
                               c.volumes[choose], {k: v[choose] for k, v in targets.items()},
                               training_settings(self.plan, self.seed + offset), self.device)
        save_weights(model, self.weights_dir / f"{name}.npz")
        self.networks[name] = {"class": type(model).__name__, "config": asdict(self.config),
                               "outputs": model.n_outputs, "weights": f"weights/{name}.npz"}
        log.info("%s network: epoch %d of %d chosen on %s", name, result.best_epoch, len(result.history),
                 self.model_choice_partition)
        return result, score_volumes(model, c.volumes, self.device)


def survival_network(trainer: NetworkTrainer, name: str, endpoint: TimeToEventEndpoint,
                     deep: DeepLearningPredictors, offset: int, scores: pd.DataFrame) -> dict[str, Any]:
    """One endpoint's survival network: interval cut-offs on the training cohort, the margin
    loss, the risk vector of every patient (into ``scores``); returns its training record."""
    assert deep.survival_loss is not None  # checked by the protocol's validator
    table, training = trainer.cohort.table, trainer.cohort.cohorts["training"]
    cutoffs = interval_cutoffs(table.loc[training, endpoint.time], table.loc[training, endpoint.event],
                               deep.n_intervals)
    targets = survival_targets(table, endpoint.time, endpoint.event, cutoffs)
    loss = SurvivalIntervalLoss(**deep.survival_loss.model_dump())
    model = SurvivalNetwork(trainer.config, n_intervals=deep.n_intervals)
    result, out = trainer.train(name, model, lambda o, t: loss(o, t["targets"], t["known"]), targets,
                                np.ones(len(table), bool), offset)
    columns = score_columns(name, deep.n_intervals)
    scores[columns] = out
    return {"kind": "survival", "endpoint": name, "cutoffs": list(cutoffs), "unit": endpoint.unit,
            "score_columns": columns, **training_record(result),
            "macro_accuracy": {cohort: macro_accuracy(out[mask], targets["targets"][mask], targets["known"][mask])
                               for cohort, mask in trainer.cohort.cohorts.items() if mask.any()}}


def response_network(trainer: NetworkTrainer, task: ResponseTask, endpoint: CategoricalEndpoint, offset: int,
                     scores: pd.DataFrame) -> dict[str, Any]:
    """The dual-task PR/PD network on the patients with a recorded response; PRS and PDS (the
    heads' probabilities) of every patient into ``scores``; returns its training record."""
    table = trainer.cohort.table
    known = table[endpoint.column].notna().to_numpy()
    targets = response_targets(table, endpoint.column, task.partial_response, task.progressive_disease)
    bce = torch.nn.BCEWithLogitsLoss()
    result, out = trainer.train("response", DualTaskNetwork(trainer.config), lambda o, t: bce(o, t["labels"]),
                                targets, known, offset)
    for score, head in RESPONSE_HEADS.items():
        scores[score] = 1.0 / (1.0 + np.exp(-out[:, head]))
    return {"kind": "response", "endpoint": task.endpoint,
            "positive_levels": {"prs": task.partial_response, "pds": task.progressive_disease},
            "n_without_response": int((~known).sum()), **training_record(result)}


def build_deep_predictors(loaded: LoadedProtocol, patients: pd.DataFrame, stage_dir: Path, device: str,
                          progress: Progress) -> None:
    """Train and score the protocol's CNNs on ``patients`` (clinical rows with image, mask
    and partition, already restricted to cases whose images passed their checks)."""
    protocol = loaded.protocol
    deep = protocol.predictors.deep_learning
    crop, net_settings, plan, profile = deep.profile(device)
    torch.manual_seed(protocol.study.seed)
    cohort = crop_cohort(patients, deep, crop, protocol.cohort.split, protocol.preprocessing.mask_label, stage_dir,
                         profile, progress)
    (stage_dir / "weights").mkdir(exist_ok=True)
    trainer = NetworkTrainer(cohort, plan, network_config(net_settings), protocol.study.seed, device,
                             stage_dir / "weights", deep.model_choice_partition)
    scores = cohort.table[["patient_id", "partition"]].copy()
    records: dict[str, dict[str, Any]] = {}
    for offset, name in enumerate(deep.survival_endpoints, start=1):
        endpoint = protocol.endpoints[name]
        assert isinstance(endpoint, TimeToEventEndpoint)  # checked by the protocol's validator
        records[name] = survival_network(trainer, name, endpoint, deep, offset, scores)
    if deep.response is not None:
        endpoint = protocol.endpoints[deep.response.endpoint]
        assert isinstance(endpoint, CategoricalEndpoint)  # checked by the protocol's validator
        records["response"] = response_network(trainer, deep.response, endpoint, len(deep.survival_endpoints) + 1,
                                               scores)

    scores.to_csv(stage_dir / "scores.csv", index=False, float_format="%.10g")
    write_json(stage_dir / "networks.json", trainer.networks)
    write_json(stage_dir / "training.json", {
        "device": device, "profile": profile, "network": net_settings.model_dump(), "training": plan.model_dump(),
        "fit_partition": deep.fit_partition, "model_choice_partition": deep.model_choice_partition,
        "n": {name: int(mask.sum()) for name, mask in
              {"fit": cohort.fit, "model_choice": cohort.choose, **cohort.cohorts}.items()},
        "networks": records})


def training_record(result: TrainingResult) -> dict:
    return {"best_epoch": result.best_epoch, "epochs_run": len(result.history), "history": result.history,
            "train_samples_per_second": result.train_samples_per_second, "precision": result.precision}
