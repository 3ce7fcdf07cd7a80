"""Training loop of the nsclc_ici study's networks, the cohort held on the device.

The nsclc_ici study (Transl Lung Cancer Res 2022;11(4):670-685) trains its survival and dual-task
networks on the training cohort and reports the validation cohort as the one used for
model choice (its training details are in Appendix 2/3, which we do not have). Here:

* The whole training and validation cohorts are moved to ``device`` once (on CUDA, when
  they take at most half of the free GPU memory; otherwise they stay in pinned host memory
  and each batch is copied). Batches are sliced there by index: no DataLoader.
* ``torch.manual_seed(settings.seed)`` at the start (dropout); shuffling uses a
  ``torch.Generator`` on the device seeded with ``seed``, augmentation
  (:func:`studyrunner.deep.augmentation.augment_batch`) one seeded with ``seed + 1``. On
  CPU two runs with the same inputs, settings and thread count are bit-identical.
* Adam (``learning_rate``, ``weight_decay`` as Adam's L2 term). Forward and loss run under
  ``torch.autocast("cuda", dtype=torch.bfloat16)`` on CUDA, plain fp32 on CPU (the same
  code; ``precision`` in the result says which); the network's outputs are cast to fp32
  before ``loss_fn``. On CUDA runs are not bit-reproducible (cuDNN kernels).
* A trailing batch of a single sample is merged into the previous batch (BatchNorm needs
  more than one value per channel in training mode when the last feature maps are 1 voxel).
* After each epoch the validation loss is ``loss_fn`` on the outputs of the whole
  validation cohort (eval mode, no augmentation, ``torch.inference_mode``, outputs cast to
  fp32), computed once per epoch. The state_dict of the epoch with the lowest finite
  validation loss is kept (the first one on ties); the validation cohort only chooses the
  epoch and never reaches the optimiser. ``patience``: stop after that many epochs
  without improvement. At the end the best state is loaded into the model.
* ``train_loss`` of an epoch is the batch losses weighted by batch size and divided by the
  number of training samples (the epoch mean for a mean-reduced loss).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from studyrunner.deep.augmentation import augment_batch
from studyrunner.errors import InputError, StudyError

LossFn = Callable[[torch.Tensor, dict], torch.Tensor]


@dataclass
class TrainingSettings:
    """Optimisation settings; ``patience=None`` trains all ``epochs``."""

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.0
    patience: int | None = None
    augment: bool = True
    max_shift: int = 4
    seed: int = 0
    channels_last: bool = False  # torch.channels_last_3d for model and batches

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise InputError(f"training setting {name} is {v!r}; need a positive integer")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise InputError(f"training setting learning_rate is {self.learning_rate!r}; need > 0")
        if not self.weight_decay >= 0:
            raise InputError(f"training setting weight_decay is {self.weight_decay!r}; need >= 0")
        if self.patience is not None and (int(self.patience) != self.patience or self.patience < 1):
            raise InputError(f"training setting patience is {self.patience!r}; need a positive integer or None")
        if int(self.max_shift) != self.max_shift or self.max_shift < 0:
            raise InputError(f"training setting max_shift is {self.max_shift!r}; need an integer >= 0")


@dataclass
class TrainingResult:
    """``best_state``: state_dict (CPU tensors) of ``best_epoch`` (1-based); ``history``: one
    dict per epoch run (epoch, train_loss, val_loss, seconds = training seconds of that
    epoch, validation excluded); ``train_samples_per_second``: training samples processed /
    training seconds over all epochs; ``precision``: "bf16" or "fp32"."""

    best_state: dict
    best_epoch: int
    history: list = field(default_factory=list)
    train_samples_per_second: float = float("nan")
    device: str = "cpu"
    precision: str = "fp32"
    stopped_early: bool = False


def _check_cohort(x: np.ndarray, targets: dict, name: str) -> int:
    if not isinstance(x, (np.ndarray, torch.Tensor)) or x.ndim != 5:
        shape = getattr(x, "shape", None)
        raise InputError(f"{name}_x has shape {shape}; need [patients, channels, D, H, W]")
    n = int(x.shape[0])
    if n < 1:
        raise InputError(f"{name}_x holds no patient")
    if not targets:
        raise InputError(f"{name}_targets is empty; need at least one target array")
    for key, arr in targets.items():
        if int(np.shape(arr)[0]) != n:
            raise InputError(f"{name}_targets[{key!r}] has {np.shape(arr)[0]} rows; {name}_x has {n} patients")
    return n


def _fits_on_device(nbytes: int, device: torch.device) -> bool:
    if device.type != "cuda":
        return True
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= free // 2


def _x_tensor(x, device: torch.device, memory_format) -> tuple[torch.Tensor, bool]:
    """The cohort as a float32 tensor on ``device`` (or pinned on the host); (tensor, on_device)."""
    t = torch.as_tensor(x).to(torch.float32)
    if _fits_on_device(t.numel() * t.element_size(), device):
        return t.to(device).contiguous(memory_format=memory_format), True
    return t.contiguous().pin_memory(), False


def _targets_tensors(targets: dict, device: torch.device) -> dict:
    out = {}
    for key, arr in targets.items():
        t = torch.as_tensor(np.asarray(arr) if not isinstance(arr, torch.Tensor) else arr)
        if t.is_floating_point():
            t = t.to(torch.float32)
        out[key] = t.to(device)
    return out


def _batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2] = (bounds[-2][0], n)
        bounds.pop()
    return bounds


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _cpu_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def validation_loss(model, loss_fn: LossFn, x: torch.Tensor, targets: dict, device, batch_size: int,
                    memory_format=torch.contiguous_format) -> float:
    """``loss_fn`` on the model's fp32 outputs for the whole cohort (eval, inference_mode)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    outputs = []
    with torch.inference_mode():
        for s, e in _batch_bounds(int(x.shape[0]), batch_size):
            xb = x[s:e].to(device, non_blocking=True).contiguous(memory_format=memory_format)
            with _autocast(device):
                outputs.append(model(xb).float())
        out = torch.cat(outputs)
        value = float(loss_fn(out, targets))
    model.train(was_training)
    return value


@dataclass
class _DeviceCohort:
    """A cohort's volumes and targets where training reads them: on the device, or pinned on
    the host when they do not fit (then each batch is copied over)."""

    x: torch.Tensor
    targets: dict
    on_device: bool
    memory_format: torch.memory_format

    def batch(self, idx: torch.Tensor, dev: torch.device) -> tuple[torch.Tensor, dict]:
        xb = self.x.index_select(0, idx.to(dev if self.on_device else torch.device("cpu")))
        if not self.on_device:
            xb = xb.to(dev, non_blocking=True)
        return xb.contiguous(memory_format=self.memory_format), {k: v.index_select(0, idx)
                                                                 for k, v in self.targets.items()}


@dataclass
class _BestEpoch:
    """The epoch with the lowest finite validation loss so far, and how long ago it was."""

    state: dict | None = None
    epoch: int = 0
    loss: float = math.inf
    since: int = 0

    def update(self, model: torch.nn.Module, epoch: int, val_loss: float) -> None:
        if math.isfinite(val_loss) and val_loss < self.loss:
            self.state, self.epoch, self.loss, self.since = _cpu_state(model), epoch, val_loss, 0
        else:
            self.since += 1

    def patience_exhausted(self, patience: int | None) -> bool:
        return patience is not None and self.since >= patience and self.state is not None


def _train_epoch(model: torch.nn.Module, loss_fn: LossFn, optimizer: torch.optim.Optimizer, data: _DeviceCohort,
                 bounds: list[tuple[int, int]], settings: TrainingSettings, dev: torch.device,
                 shuffle_gen: torch.Generator, augment_gen: torch.Generator) -> tuple[float, float]:
    """One pass over the shuffled training cohort; returns (mean training loss, seconds)."""
    n_train = bounds[-1][1]
    model.train()
    _sync(dev)
    t0 = time.perf_counter()
    perm = torch.randperm(n_train, generator=shuffle_gen, device=dev)
    loss_sum = torch.zeros((), device=dev)
    for s, e in bounds:
        xb, tb = data.batch(perm[s:e], dev)
        if settings.augment:
            xb = augment_batch(xb, augment_gen, max_shift=settings.max_shift).contiguous(
                memory_format=data.memory_format)
        with _autocast(dev):
            loss = loss_fn(model(xb).float(), tb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach().float() * (e - s)
    train_loss = float(loss_sum) / n_train  # one host sync per epoch
    _sync(dev)
    return train_loss, time.perf_counter() - t0


def train_network(
    model: torch.nn.Module,
    loss_fn: LossFn,
    train_x: np.ndarray,
    train_targets: dict,
    val_x: np.ndarray,
    val_targets: dict,
    settings: TrainingSettings,
    device: str,
) -> TrainingResult:
    """Train ``model`` with Adam; keep and load the epoch with the lowest validation loss.

    ``loss_fn(outputs [B, K], targets_batch)`` returns a scalar tensor; ``targets_batch``
    holds each entry of ``train_targets`` sliced to the batch (tensors on ``device``;
    floating arrays as float32). See the module docstring for the protocol.
    """
    dev = torch.device(device)
    n_train = _check_cohort(train_x, train_targets, "train")
    _check_cohort(val_x, val_targets, "val")
    if tuple(train_x.shape[1:]) != tuple(val_x.shape[1:]):
        raise InputError(f"val_x has volumes {tuple(val_x.shape[1:])}; train_x has {tuple(train_x.shape[1:])}")
    memory_format = torch.channels_last_3d if settings.channels_last else torch.contiguous_format

    torch.manual_seed(settings.seed)
    shuffle_gen = torch.Generator(device=dev).manual_seed(settings.seed)
    augment_gen = torch.Generator(device=dev).manual_seed(settings.seed + 1)

    # torch's stubs leave memory_format out of Module.to's overloads; torch documents and accepts it
    model.to(dev, memory_format=memory_format)  # type: ignore[call-overload]
    xt, x_on_device = _x_tensor(train_x, dev, memory_format)
    data = _DeviceCohort(xt, _targets_tensors(train_targets, dev), x_on_device, memory_format)
    xv, _ = _x_tensor(val_x, dev, memory_format)
    yv = _targets_tensors(val_targets, dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    bounds = _batch_bounds(n_train, settings.batch_size)

    history: list[dict] = []
    best = _BestEpoch()
    train_seconds = 0.0
    stopped_early = False
    for epoch in range(1, settings.epochs + 1):
        train_loss, seconds = _train_epoch(model, loss_fn, optimizer, data, bounds, settings, dev, shuffle_gen,
                                           augment_gen)
        train_seconds += seconds
        val_loss = validation_loss(model, loss_fn, xv, yv, dev, settings.batch_size, memory_format)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "seconds": seconds})
        best.update(model, epoch, val_loss)
        if best.patience_exhausted(settings.patience):
            stopped_early = epoch < settings.epochs
            break

    if best.state is None:
        raise StudyError(f"training: the validation loss was never finite in {len(history)} epochs")
    model.load_state_dict(best.state)
    return TrainingResult(
        best_state=best.state,
        best_epoch=best.epoch,
        history=history,
        train_samples_per_second=n_train * len(history) / train_seconds if train_seconds > 0 else float("nan"),
        device=str(dev),
        precision="bf16" if dev.type == "cuda" else "fp32",
        stopped_early=stopped_early,
    )
