"""Network scores for a cohort, and the macro-accuracy of survival risk vectors.

The nsclc_ici study (Transl Lung Cancer Res 2022;11(4):670-685): "we used the macro-accuracy that
could better evaluate each category to assess the risk vector" (OS 77.4 % training,
83.3 % test; PFS 81.6 % and 77.5 %), and plotted "the risk vectors of patients who had an
endpoint event". Our reading of macro-accuracy:

* only patients whose interval is fully known count: every entry of ``known`` True, which
  by :func:`studyrunner.deep.intervals.interval_labels` means the patients with the event
  (a censored patient's last interval is never known); their true interval is the one
  with target 1;
* the predicted interval is the argmax of the patient's scores (the first on ties);
* recall of interval k = share of the patients truly in k predicted as k;
  macro-accuracy = the mean of the recalls over the intervals that hold at least one such
  patient (balanced accuracy). Intervals with no patient have recall NaN and are left out
  of the mean; with no fully known patient the macro-accuracy is NaN.
"""

from __future__ import annotations

import numpy as np
import torch

from studyrunner.errors import InputError


def score_volumes(model: torch.nn.Module, x, device, batch_size: int = 64, bf16: bool | None = None) -> np.ndarray:
    """The model's outputs [N, outputs] as float64 for volumes ``x`` [N, C, D, H, W].

    The model is moved to ``device`` and run in eval mode under ``torch.inference_mode``
    (bf16 autocast on CUDA; ``bf16`` True/False forces it on/off on any device, so the GPU's
    precision can be checked on a CPU), ``batch_size`` volumes at a time; its train/eval mode
    is restored afterwards. ``x`` may be a numpy array or a tensor on any device.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise InputError(f"batch_size is {batch_size!r}; need a positive integer")
    if getattr(x, "ndim", None) != 5:
        raise InputError(f"volumes have shape {getattr(x, 'shape', None)}; need [patients, channels, D, H, W]")
    dev = torch.device(device)
    autocast = dev.type == "cuda" if bf16 is None else bool(bf16)
    xt = torch.as_tensor(x)
    model.to(dev)
    was_training = model.training
    model.eval()
    outputs = []
    try:
        with torch.inference_mode():
            for s in range(0, int(xt.shape[0]), int(batch_size)):
                xb = xt[s:s + int(batch_size)].to(dev, dtype=torch.float32, non_blocking=True)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
                    outputs.append(model(xb).float())
            out = torch.cat(outputs) if outputs else torch.empty((0, 0))
    finally:
        model.train(was_training)
    return out.to("cpu", torch.float64).numpy()


def macro_accuracy(scores, targets, known) -> dict:
    """Balanced accuracy of argmax(scores) over the patients with every interval known.

    Returns ``{"macro_accuracy": float, "recall_per_interval": [float per interval, NaN
    where no patient], "n_patients": int}``. See the module docstring for the definition.
    """
    s = np.asarray(scores, dtype=float)
    t = np.asarray(targets, dtype=float)
    k = np.asarray(known).astype(bool)
    if s.ndim != 2:
        raise InputError(f"scores has shape {s.shape}; need [patients, intervals]")
    for name, arr in (("targets", t), ("known", k)):
        if arr.shape != s.shape:
            raise InputError(f"{name} has shape {arr.shape}; scores has {s.shape}")
    full = k.all(axis=1)
    rows = np.flatnonzero(full)
    n_classes = s.shape[1]
    for r in rows:
        if not (np.isin(t[r], (0.0, 1.0)).all() and t[r].sum() == 1):
            raise InputError(f"targets: row {r} is fully known but not one-hot ({t[r].tolist()})")
        if not np.all(np.isfinite(s[r])):
            raise InputError(f"scores: row {r} has a non-finite score")
    truth = t[rows].argmax(axis=1)
    predicted = s[rows].argmax(axis=1)
    recall = []
    for c in range(n_classes):
        in_c = truth == c
        recall.append(float(np.mean(predicted[in_c] == c)) if in_c.any() else float("nan"))
    present = [r for r in recall if not np.isnan(r)]
    macro = float(np.mean(present)) if present else float("nan")
    return {"macro_accuracy": macro, "recall_per_interval": recall, "n_patients": int(rows.size)}
