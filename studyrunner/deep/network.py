"""3D DenseNet backbone and the two networks of the nsclc_ici study (survival, dual-task PR/PD).

The nsclc_ici study (Transl Lung Cancer Res 2022;11(4):670-685, Methods): "The convolutional module
was a dense-like network (the number of convolutional layers included in each dense block
was 6, 12, 12, and 6) ... The classification network was a fully connected network. A
total of 508 deep learning features extracted by the convolutional module reached a hidden
layer containing 256 nodes"; the survival network outputs "a risk vector with 3 scores";
the dual-task network "had similar components" and "directly predicted the PR and PD".

The backbone is DenseNet-BC (Huang et al., "Densely Connected Convolutional Networks",
CVPR 2017) in 3D:

* stem: Conv3d(1 -> initial_features, kernel ``stem_kernel``, stride 2) + BN + ReLU +
  MaxPool3d(3, stride 2, padding 1);
* dense block of L layers, each BN-ReLU-Conv1x1x1 (to bottleneck_width * growth_rate
  channels) -> BN-ReLU-Conv3x3x3 (to growth_rate channels), its output concatenated to
  its input (channels grow by growth_rate per layer);
* transition between blocks: BN-ReLU-Conv1x1x1 to floor(compression * channels), then
  AvgPool3d(2, stride 2, ceil_mode=True) (ceil mode keeps the last row of odd sizes:
  82 x 82 x 78 voxels -> 21 x 21 x 20 after the stem -> 11 -> 6 -> 3 in the last block;
  every axis must still be >= 2 voxels at each transition, e.g. >= 17 voxels of input with
  4 blocks);
* after the last block: BN + ReLU (``gradcam_layer``: its output [B, C, d, h, w] is the
  activation Grad-CAM weights), global average pooling -> C deep features.

Defaults: ``growth_rate=32, initial_features=32, compression=0.5`` with blocks
(6, 12, 12, 6) give exactly the paper's 508 deep features
(32 + 6*32 = 224 -> 112; 112 + 12*32 = 496 -> 248; 248 + 12*32 = 632 -> 316;
316 + 6*32 = 508). The paper does not give the growth rate, stem or widths; this is the
DenseNet-BC layout (bottleneck 4k, compression 0.5) with the smallest round widths that
reproduce its feature count. ``dropout`` (default 0) acts between the hidden layer and the
output.

Only Conv3d, BatchNorm3d, ReLU, pooling, concatenation along channels and Linear are
used, so the network runs in ``torch.channels_last_3d`` and under bf16 autocast; forward
has no data-dependent control flow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from studyrunner.errors import InputError


@dataclass(frozen=True)
class NetworkConfig:
    """Widths of the 3D DenseNet and its fully connected head (defaults: 508 deep features)."""

    block_layers: tuple[int, ...] = (6, 12, 12, 6)
    growth_rate: int = 32
    initial_features: int = 32
    bottleneck_width: int = 4
    compression: float = 0.5
    hidden_units: int = 256
    dropout: float = 0.0
    stem_kernel: int = 7
    in_channels: int = 1

    def __post_init__(self):
        layers = tuple(int(v) for v in self.block_layers)
        if not layers or any(v < 1 for v in layers):
            raise InputError(f"block_layers is {self.block_layers!r}; need one or more positive counts")
        object.__setattr__(self, "block_layers", layers)
        for name in ("growth_rate", "initial_features", "bottleneck_width", "hidden_units", "in_channels"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise InputError(f"{name} is {v!r}; need a positive integer")
        if not 0 < self.compression <= 1:
            raise InputError(f"compression is {self.compression!r}; need 0 < compression <= 1")
        if not 0 <= self.dropout < 1:
            raise InputError(f"dropout is {self.dropout!r}; need 0 <= dropout < 1")
        if self.stem_kernel < 1 or self.stem_kernel % 2 == 0:
            raise InputError(f"stem_kernel is {self.stem_kernel!r}; need an odd positive integer")

    def channel_plan(self) -> list[tuple[int, int]]:
        """(channels into, channels out of) each dense block; the last out is the feature count."""
        plan = []
        channels = self.initial_features
        for i, n in enumerate(self.block_layers):
            out = channels + n * self.growth_rate
            plan.append((channels, out))
            channels = out
            if i < len(self.block_layers) - 1:
                channels = math.floor(self.compression * channels)
                if channels < 1:
                    raise InputError(f"compression {self.compression} leaves no channel after block {i + 1}")
        return plan

    @property
    def n_deep_features(self) -> int:
        return self.channel_plan()[-1][1]


def _bn_relu(channels: int, inplace: bool = True) -> list[nn.Module]:
    return [nn.BatchNorm3d(channels), nn.ReLU(inplace=inplace)]


class DenseLayer(nn.Module):
    """BN-ReLU-Conv1 (bottleneck) -> BN-ReLU-Conv3; returns the input with the new maps appended."""

    def __init__(self, in_channels: int, growth_rate: int, bottleneck_width: int):
        super().__init__()
        mid = bottleneck_width * growth_rate
        self.body = nn.Sequential(
            *_bn_relu(in_channels),
            nn.Conv3d(in_channels, mid, kernel_size=1, bias=False),
            *_bn_relu(mid),
            nn.Conv3d(mid, growth_rate, kernel_size=3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


class Transition(nn.Sequential):
    """BN-ReLU-Conv1x1x1 (compression) + AvgPool3d(2, stride 2, ceil_mode)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            *_bn_relu(in_channels),
            nn.Conv3d(in_channels, out_channels, kernel_size=1, bias=False),
            nn.AvgPool3d(kernel_size=2, stride=2, ceil_mode=True),
        )


class DenseNet3d(nn.Module):
    """Convolutional module: volume [B, in_channels, D, H, W] -> deep features [B, C]."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        plan = config.channel_plan()
        k = config.stem_kernel
        layers: list[nn.Module] = [
            nn.Conv3d(config.in_channels, config.initial_features, kernel_size=k, stride=2, padding=k // 2, bias=False),
            *_bn_relu(config.initial_features),
            nn.MaxPool3d(kernel_size=3, stride=2, padding=1),
        ]
        for i, (c_in, c_out) in enumerate(plan):
            block = nn.Sequential(
                *(DenseLayer(c_in + j * config.growth_rate, config.growth_rate, config.bottleneck_width)
                  for j in range(config.block_layers[i]))
            )
            layers.append(block)
            if i < len(plan) - 1:
                layers.append(Transition(c_out, plan[i + 1][0]))
        self.body = nn.Sequential(*layers)
        self.n_features = plan[-1][1]
        # not in place, so forward/backward hooks on it see an unmodified activation
        self.final = nn.Sequential(*_bn_relu(self.n_features, inplace=False))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Activation [B, C, d, h, w] after the final BN-ReLU (what Grad-CAM uses)."""
        return self.final(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.feature_maps(x)), 1)


class _DenseHeadNetwork(nn.Module):
    """Backbone -> Linear(C, hidden) -> ReLU -> Dropout -> Linear(hidden, n_outputs)."""

    def __init__(self, config: NetworkConfig, n_outputs: int):
        super().__init__()
        if int(n_outputs) != n_outputs or n_outputs < 1:
            raise InputError(f"number of outputs is {n_outputs!r}; need a positive integer")
        self.config = config
        self.n_outputs = int(n_outputs)
        self.backbone = DenseNet3d(config)
        self.head = nn.Sequential(
            nn.Linear(self.backbone.n_features, config.hidden_units),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden_units, self.n_outputs),
        )

    @property
    def n_deep_features(self) -> int:
        """Length of the deep feature vector (508 with the default config, as in the paper)."""
        return self.backbone.n_features

    @property
    def gradcam_layer(self) -> nn.Module:
        """Module whose output [B, C, d, h, w] is the last activation before global pooling."""
        return self.backbone.final

    def gradcam_layer_for(self, input_shape: tuple[int, int, int], min_size: int = 4) -> tuple[str, nn.Module]:
        """(name, module) of the deepest dense block or final BN-ReLU whose output is at least
        ``min_size`` voxels along every axis for an input of ``input_shape`` (D, H, W).

        Grad-CAM of a map of one voxel per axis is a constant (or zero) after upsampling; a
        small crop through four transitions ends there (41 voxels -> 1), so the map is taken
        one or two blocks earlier. Falls back to the first dense block.
        """
        named = [(f"dense block {i}", m) for i, m in enumerate(
            (m for m in self.backbone.body if type(m) is nn.Sequential), start=1)]
        named.append(("final", self.backbone.final))
        sizes: dict[str, tuple[int, ...]] = {}
        hooks = [m.register_forward_hook(lambda mod, inp, out, n=name: sizes.__setitem__(n, tuple(out.shape[2:])))
                 for name, m in named]
        was_training = self.training
        try:
            self.eval()
            parameter = next(self.parameters())
            with torch.no_grad():
                self(torch.zeros(1, self.config.in_channels, *input_shape,
                                 device=parameter.device, dtype=parameter.dtype))
        finally:
            for hook in hooks:
                hook.remove()
            self.train(was_training)
        large = [(name, m) for name, m in named if min(sizes[name]) >= min_size]
        return large[-1] if large else named[0]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Deep features [B, n_deep_features] (global average of ``gradcam_layer``'s output)."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class SurvivalNetwork(_DenseHeadNetwork):
    """Survival network of the nsclc_ici study: volume -> raw risk-vector scores [B, n_intervals]."""

    def __init__(self, config: NetworkConfig = NetworkConfig(), n_intervals: int = 3):
        super().__init__(config, n_intervals)


class DualTaskNetwork(_DenseHeadNetwork):
    """Dual-task network of the nsclc_ici study: volume -> logits [B, 2]; column 0 = PR, column 1 = PD."""

    PR, PD = 0, 1

    def __init__(self, config: NetworkConfig = NetworkConfig()):
        super().__init__(config, 2)


RESPONSE_HEADS = {"prs": DualTaskNetwork.PR, "pds": DualTaskNetwork.PD}
"""Score name -> output column of the dual-task network (its sigmoid is the score)."""


def network_from_record(entry: dict) -> nn.Module:
    """An untrained network rebuilt from its record in deep/networks.json or a frozen bundle
    (``class``, ``config``, ``outputs``); load its weights with ``weights.load_weights``."""
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in entry["config"].items()}
    config = NetworkConfig(**fields)
    if entry["class"] == "DualTaskNetwork":
        return DualTaskNetwork(config)
    return SurvivalNetwork(config, n_intervals=entry["outputs"])
