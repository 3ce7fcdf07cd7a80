r"""3D Grad-CAM maps of a network's output (the nsclc_ici study, "Visual analysis").

The nsclc_ici study (Transl Lung Cancer Res 2022;11(4):670-685) shows what its OS and PFS survival
networks and its dual-task (PR/PD) network look at with "gradient-weighted class
activation mapping (Grad-Cam)", and compares the OSRS and PFSRS maps by SSIM
(:mod:`studyrunner.deep.similarity`).

Method: Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV 2017, eq. (1)-(2), in 3D. For a target score y of one
sample and the activations A (channels k, voxels v) of a chosen layer::

    alpha_k = mean_v  dy / dA_k[v]            (global average of the gradient)
    L       = ReLU( sum_k alpha_k A_k )        (the map at the layer's resolution)

L is then upsampled trilinearly (``align_corners=False``) to the input's D, H, W and, by
default, divided by its maximum so that each sample's map lies in [0, 1]. A map that is
zero everywhere (no voxel with positive evidence) has no maximum to divide by and is
returned as zeros.

Conventions:

* The target is ``outputs[:, output]`` for an integer ``output``, or ``output(outputs)``
  for a callable that returns one scalar per sample (shape [B] or [B, 1]), e.g. OSRS as a
  Cox combination of the 3 interval scores, ``lambda s: s @ beta``. Gradients of the sum
  of the targets are taken; the samples must not interact in eval mode (true for
  convolution, pooling and eval-mode batch norm), so each sample's gradient is that of
  its own target.
* The model runs in eval mode (dropout off, batch norm on running statistics) with
  gradients enabled, also when called under ``torch.no_grad()``/``inference_mode``;
  every submodule's ``training`` flag is restored afterwards.
* Gradients are taken with ``torch.autograd.grad`` with respect to the captured
  activation only, so no parameter's ``.grad`` is created or changed.
* The layer gets a forward hook (removed afterwards, also on error) that captures its
  output and passes a copy on, so that an in-place operation after the layer (e.g.
  ``ReLU(inplace=True)``) cannot change the captured activation. If the layer's output
  does not require gradients (frozen parameters), it is detached into a leaf that does.
  The layer must run exactly once per forward pass and return a tensor [B, C, d, h, w].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from studyrunner.errors import InputError

__all__ = ["grad_cam_3d"]


def _prepare_volumes(model: torch.nn.Module, volumes) -> torch.Tensor:
    x = torch.as_tensor(volumes)
    if x.dim() != 5:
        raise InputError(f"volumes has shape {tuple(x.shape)}; need [batch, channels, D, H, W]")
    if x.shape[0] == 0:
        raise InputError("volumes has no samples (batch size 0)")
    param = next(iter(model.parameters()), None)
    if param is not None:
        dtype = param.dtype if param.dtype.is_floating_point else x.dtype
        x = x.to(device=param.device, dtype=dtype)
    elif not x.dtype.is_floating_point:
        x = x.to(torch.get_default_dtype())
    x = x.detach()
    if x.is_inference():
        x = x.clone()
    return x


def _target(outputs, output, batch: int) -> torch.Tensor:
    if callable(output):
        y = output(outputs)
        if not isinstance(y, torch.Tensor):
            raise InputError(f"output(...) returned {type(y).__name__}; need a tensor of one score per sample")
        if y.dim() == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if tuple(y.shape) != (batch,):
            raise InputError(f"output(...) returned shape {tuple(y.shape)}; need [{batch}] (one score per sample)")
        return y
    if isinstance(output, bool) or not isinstance(output, (int, np.integer)):
        raise InputError(f"output is {output!r}; need an output column index or a callable")
    if not isinstance(outputs, torch.Tensor) or outputs.dim() != 2:
        shape = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs).__name__
        raise InputError(f"model output is {shape}; an integer output needs [batch, outputs] (else pass a callable)")
    k = outputs.shape[1]
    if not -k <= int(output) < k:
        raise InputError(f"output is {output}; the model has {k} outputs")
    return outputs[:, int(output)]


def _capture_hook(captured: list[torch.Tensor]):
    """Forward hook that keeps the layer's output in ``captured`` and passes a copy on."""

    def hook(module, inputs, out):
        if captured:
            raise InputError(
                f"layer {module.__class__.__name__} ran more than once in one forward pass; pick a layer used once"
            )
        if not isinstance(out, torch.Tensor) or out.dim() != 5:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise InputError(f"layer {module.__class__.__name__} returned {shape}; need a tensor [B, C, d, h, w]")
        a = out if out.requires_grad else out.detach().requires_grad_(True)
        captured.append(a)
        return a.clone()

    return hook


def _activation_and_gradients(
    model: torch.nn.Module,
    layer: torch.nn.Module,
    x: torch.Tensor,
    output: int | Callable[[torch.Tensor], torch.Tensor],
    captured: list[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass in eval mode; the layer's activation and the target's gradient there."""
    with torch.inference_mode(False), torch.enable_grad():
        model.eval()
        outputs = model(x)
        name = layer.__class__.__name__
        if not captured:
            raise InputError(f"layer {name} did not run in the model's forward pass")
        act = captured[0]
        if act.shape[0] != x.shape[0]:
            raise InputError(f"layer output has batch size {act.shape[0]}; the input has {x.shape[0]}")
        y = _target(outputs, output, x.shape[0])
        if not y.requires_grad:
            raise InputError(f"the target does not depend on layer {name}")
        (grads,) = torch.autograd.grad(y.sum(), act, allow_unused=True)
        if grads is None:
            raise InputError(f"the target does not depend on layer {name}")
    return act.detach(), grads


@torch.no_grad()
def _weighted_map(
    act: torch.Tensor, grads: torch.Tensor, size: tuple[int, ...] | None, normalise: bool
) -> np.ndarray:
    alpha = grads.mean(dim=(2, 3, 4), keepdim=True)  # [B, C, 1, 1, 1]
    cam = torch.relu((alpha * act).sum(dim=1, keepdim=True))  # [B, 1, d, h, w]
    if size is not None:
        cam = F.interpolate(cam, size=size, mode="trilinear", align_corners=False)
    cam = cam[:, 0].to(torch.float32)
    if normalise:
        peak = cam.amax(dim=(1, 2, 3), keepdim=True)
        cam = cam / torch.where(peak > 0, peak, torch.ones_like(peak))  # peak 0: map is all 0
    return cam.cpu().numpy()


def grad_cam_3d(
    model: torch.nn.Module,
    layer: torch.nn.Module,
    volumes: torch.Tensor,
    output: int | Callable[[torch.Tensor], torch.Tensor],
    *,
    normalise: bool = True,
    upsample: bool = True,
) -> np.ndarray:
    """Grad-CAM map of ``output`` at ``layer`` for each volume (Selvaraju et al., ICCV 2017).

    ``volumes``: [B, C, D, H, W] (C = 1 for the nsclc_ici study's CT crops), moved to the model's
    device and parameter dtype. ``output``: an output column index or a callable giving
    one scalar per sample from the model's output (see the module docstring).

    Returns float32 ``[B, D, H, W]``: ReLU(sum_k alpha_k A_k) upsampled trilinearly
    (``align_corners=False``) to the input's size; with ``normalise`` (default) each
    sample divided by its maximum (in [0, 1]; an all-zero map stays all zero), else the
    raw non-negative map. ``upsample=False`` returns the map at the layer's resolution
    [B, d, h, w] instead (normalised the same way).
    """
    if not isinstance(model, torch.nn.Module) or not isinstance(layer, torch.nn.Module):
        raise InputError("model and layer must be torch.nn.Module instances")
    if not any(m is layer for m in model.modules()):
        raise InputError(f"layer {layer.__class__.__name__} is not a submodule of the model")

    captured: list[torch.Tensor] = []
    training = {m: m.training for m in model.modules()}
    handle = layer.register_forward_hook(_capture_hook(captured))
    try:
        with torch.inference_mode(False):
            x = _prepare_volumes(model, volumes)
        act, grads = _activation_and_gradients(model, layer, x, output, captured)
        return _weighted_map(act, grads, tuple(x.shape[2:]) if upsample else None, normalise)
    finally:
        handle.remove()
        for m, flag in training.items():
            m.training = flag
