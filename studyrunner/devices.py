"""Which torch device a run (or a Dask worker scoring CNN batches) computes on."""

from __future__ import annotations

from studyrunner.errors import InputError


def resolve_device(requested: str) -> str:
    """``auto`` picks CUDA when a GPU is visible; ``cuda`` without one is an error."""
    import torch

    if requested == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if requested == "cuda":
        raise InputError("--device cuda was asked for, but no CUDA GPU is visible (see `studyrunner doctor`)")
    return "cpu"
