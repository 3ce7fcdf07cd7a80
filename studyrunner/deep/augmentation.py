"""Multi-view augmentation of a batch of 3D crops, on the batch's own device.

The nsclc_ici study (Transl Lung Cancer Res 2022;11(4):670-685, Methods): "we performed multi-view
data augmentation in order to increase the number of samples and improve the
generalization ability of the network"; the details are in its Appendix 1 / Figure S1,
which we do not have. Our reading, drawn independently for every sample of the batch:

* a flip along each of the 3 spatial axes (D, H, W), each with probability 1/2;
* a rotation by k * 90 degrees in the axial (H, W) plane, k uniform in {0, 1, 2, 3}, the
  same rotation as ``torch.rot90(x, k, dims=(-2, -1))`` (only when H == W, so the shape
  is kept; otherwise k = 0);
* an integer shift along each axis, uniform in [-max_shift, max_shift] voxels; voxels
  moved in from outside get the sample's minimum (its background: air after the HU
  clipping and z-score), nothing wraps round.

The three are applied in that order: ``y = shift(rot90(flip(x)))``. The source index of
every output voxel is computed per axis and the batch is gathered twice (along D, then
along the flattened (H, W) plane) with broadcast indices: no loop over samples or voxels,
all on ``x.device``. The output is a new contiguous tensor (channels-last inputs come back
contiguous).

Random numbers: the ``torch.Generator`` passed in must live on the same device as ``x``
(``torch.Generator(device=x.device)``), so the draws happen there without a host round
trip; every call draws the same number of values (flips [B, 3], k [B], shifts [B, 3]) in
that order whatever the flags, so switching one operation off leaves the others' draws
unchanged. With a CPU generator the result is reproducible bit for bit from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from studyrunner.errors import InputError


@dataclass(frozen=True)
class AugmentationDraw:
    """Per-sample choices: ``flips`` bool [B, 3] (D, H, W), ``k`` long [B] (quarter turns in
    the (H, W) plane), ``shifts`` long [B, 3] (voxels along D, H, W; positive moves content
    towards higher indices)."""

    flips: torch.Tensor
    k: torch.Tensor
    shifts: torch.Tensor


def draw_augmentation(
    shape,
    generator: torch.Generator,
    *,
    max_shift: int,
    flips: bool = True,
    rotations: bool = True,
) -> AugmentationDraw:
    """Random choices for a batch of ``shape`` [B, C, D, H, W] on the generator's device."""
    if len(shape) != 5:
        raise InputError(f"batch has shape {tuple(shape)}; need [batch, channels, D, H, W]")
    if int(max_shift) != max_shift or max_shift < 0:
        raise InputError(f"max_shift is {max_shift!r}; need an integer >= 0")
    b, _, _, h, w = (int(v) for v in shape)
    device = generator.device
    flip_draw = torch.rand((b, 3), generator=generator, device=device) < 0.5
    k_draw = torch.randint(0, 4, (b,), generator=generator, device=device)
    shift_draw = torch.randint(-int(max_shift), int(max_shift) + 1, (b, 3), generator=generator, device=device)
    if not flips:
        flip_draw = torch.zeros_like(flip_draw)
    if not rotations or h != w:
        k_draw = torch.zeros_like(k_draw)
    return AugmentationDraw(flips=flip_draw, k=k_draw, shifts=shift_draw)


def _axis_source(n: int, flip: torch.Tensor, shift: torch.Tensor):
    """Source index [B, n] along one axis that is only flipped and shifted, and its validity."""
    pos = torch.arange(n, device=flip.device)
    q = pos[None, :] - shift[:, None]
    valid = (q >= 0) & (q < n)
    q = q.clamp(0, n - 1)
    src = torch.where(flip[:, None], n - 1 - q, q)
    return src, valid


def apply_augmentation(x: torch.Tensor, draw: AugmentationDraw) -> torch.Tensor:
    """``shift(rot90(flip(x)))`` per sample for the given choices (see the module docstring)."""
    if x.dim() != 5:
        raise InputError(f"batch has shape {tuple(x.shape)}; need [batch, channels, D, H, W]")
    b, c, d, h, w = x.shape
    dev = x.device
    flips, k, shifts = draw.flips.to(dev), draw.k.to(dev), draw.shifts.to(dev)
    if h != w and bool((k != 0).any()):
        raise InputError(f"rotation in the (H, W) plane needs H == W; batch has H = {h}, W = {w}")

    # D: flip and shift only
    src_d, valid_d = _axis_source(d, flips[:, 0], shifts[:, 0])  # [B, D]

    # (H, W): position after the shift -> position in the rotated image
    hh = torch.arange(h, device=dev)
    ww = torch.arange(w, device=dev)
    qh = hh[None, :, None] - shifts[:, 1, None, None]  # [B, H, 1]
    qw = ww[None, None, :] - shifts[:, 2, None, None]  # [B, 1, W]
    valid_hw = (qh >= 0) & (qh < h) & (qw >= 0) & (qw < w)  # [B, H, W]
    qh = qh.clamp(0, h - 1).expand(b, h, w)
    qw = qw.clamp(0, w - 1).expand(b, h, w)
    # rotated image y = rot90(f, k): y[i, j] = f[r(i, j)] with (N = H = W when k != 0)
    #   k=0: (i, j)   k=1: (j, N-1-i)   k=2: (N-1-i, N-1-j)   k=3: (N-1-j, i)
    kk = k[:, None, None]
    rh = torch.where(kk == 0, qh, torch.where(kk == 1, qw, torch.where(kk == 2, h - 1 - qh, w - 1 - qw)))
    rw = torch.where(kk == 0, qw, torch.where(kk == 1, w - 1 - qh, torch.where(kk == 2, w - 1 - qw, qh)))
    # flipped image f = flip(x): f[i, j] = x[i or H-1-i, j or W-1-j]
    src_h = torch.where(flips[:, 1, None, None], h - 1 - rh, rh)
    src_w = torch.where(flips[:, 2, None, None], w - 1 - rw, rw)

    # two gathers with broadcast (stride-0, not materialised) indices: along D, then along
    # the flattened (H, W) plane
    hw = h * w
    src_hw = (src_h * w + src_w).reshape(b, 1, 1, hw)
    v = x.reshape(b, c, d, hw)
    v = torch.gather(v, 2, src_d.view(b, 1, d, 1).expand(b, c, d, hw))
    v = torch.gather(v, 3, src_hw.expand(b, c, d, hw))
    valid = valid_d.view(b, 1, d, 1) & valid_hw.view(b, 1, 1, hw)
    fill = x.amin(dim=(1, 2, 3, 4)).view(b, 1, 1, 1)
    return torch.where(valid, v, fill).view(b, c, d, h, w)


def _same_device(a: torch.device, b: torch.device) -> bool:
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False
    if a.type != "cuda":
        return True
    current = torch.cuda.current_device()
    return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)


def augment_batch(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    max_shift: int,
    flips: bool = True,
    rotations: bool = True,
) -> torch.Tensor:
    """A randomly flipped, rotated and shifted copy of ``x`` [B, C, D, H, W], per sample.

    ``generator`` must be on ``x.device`` (e.g. ``torch.Generator(device=x.device)``).
    The input is not modified; the output has the same shape, dtype and device.
    """
    if not _same_device(generator.device, x.device):
        raise InputError(
            f"generator is on {generator.device} but the batch is on {x.device}; "
            "create it with torch.Generator(device=x.device)"
        )
    draw = draw_augmentation(x.shape, generator, max_shift=max_shift, flips=flips, rotations=rotations)
    return apply_augmentation(x, draw)
