"""Network weights as a numpy ``.npz`` archive (no pickle), loaded back strictly.

Each state_dict entry (parameters and buffers, e.g. BatchNorm running statistics and
``num_batches_tracked``) is one array named by its state_dict key. bfloat16 tensors,
which numpy lacks, are stored as float32 (exact) and cast back by ``load_state_dict``.
Loading uses ``allow_pickle=False`` and ``strict=True``: a missing or unexpected key or a
shape mismatch is an :class:`InputError` naming the file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studyrunner.errors import InputError


def _as_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().to("cpu")
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.contiguous().numpy()


def save_weights(model: torch.nn.Module, path) -> Path:
    """Write ``model.state_dict()`` to ``path`` (.npz, written to a temporary file then renamed)."""
    path = Path(path)
    # Any: numpy's stubs type savez's keywords as allow_pickle=bool, not as the arrays' names
    arrays: dict[str, Any] = {key: _as_numpy(value) for key, value in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_weights(model: torch.nn.Module, path) -> torch.nn.Module:
    """Load the arrays of ``path`` into ``model`` (strict: same keys and shapes); returns ``model``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"weights {path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            state = {key: torch.from_numpy(archive[key].copy()) for key in archive.files}
    except (ValueError, OSError) as exc:
        raise InputError(f"weights {path}: not a readable .npz archive ({exc})") from exc
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise InputError(
            f"weights {path}: keys do not match the model (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise InputError(
                f"weights {path}: {key} has shape {tuple(value.shape)}; the model has {tuple(expected[key].shape)}"
            )
    model.load_state_dict(state, strict=True)
    return model
