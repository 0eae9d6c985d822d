"""ResNet-50 backbone with torchvision's exact module names and layout (spec §1.1).

A torchvision `resnet50` state_dict loads into `ResNet` after dropping `fc.*` (and the
`num_batches_tracked` counters when BatchNorms are frozen): `conv1, bn1, layer1..layer4`, each
bottleneck `conv1/bn1/conv2/bn2/conv3/bn3/downsample.0/downsample.1`, stride on the 3x3 conv
("ResNet v1.5"); `stride_in_1x1=True` gives the v1 / Caffe-MSRA layout instead.

Public API:
- `FrozenBatchNorm2d(num_features, eps=1e-5)`: BN with fixed statistics and affine (buffers).
- `ResNet(layers=(3, 4, 6, 3), width=64, norm="frozen"|"batch", frozen_stages=1,
  stride_in_1x1=False)`; `frozen_stages` counts stem, layer1, ..., layer4 (1 = stem only); `forward(x) -> {"c1": stem (stride 2), "c2".."c5"}`;
  `out_channels = {"c1": width, "c2": 4w, "c3": 8w, "c4": 16w, "c5": 32w}`.
- `resnet50(**kw)`: the paper's backbone.
- `read_state_dict(path) -> dict` (a .pth state_dict or a checkpoint dict with `state_dict`/`model`).
- `load_torchvision_weights(backbone, source) -> None`: strict load, `fc.*` ignored; a missing
  key, unexpected key or shape mismatch raises `facebench.errors.InputError` naming the first
  offending key.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from facebench.errors import InputError


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d whose running statistics and affine parameters are fixed buffers."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # torchvision BN checkpoints carry a step counter that a frozen BN has no use for.
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1).to(x.dtype) + shift.view(1, -1, 1, 1).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def make_norm(kind: str, channels: int) -> nn.Module:
    """A frozen or a live BatchNorm layer."""
    if kind == "frozen":
        return FrozenBatchNorm2d(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"unknown backbone norm {kind!r}; expected 'frozen' or 'batch'")


class Bottleneck(nn.Module):
    """torchvision's ResNet bottleneck (expansion 4)."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, norm: str = "frozen",
                 stride_in_1x1: bool = False) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(in_channels, planes, 1, stride=stride_1x1, bias=False)
        self.bn1 = make_norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride_3x3, padding=1, bias=False)
        self.bn2 = make_norm(norm, planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = make_norm(norm, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            make_norm(norm, out_channels))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet trunk (no pooling head) returning the stem and C2..C5 feature maps."""

    def __init__(self, layers: tuple[int, int, int, int] = (3, 4, 6, 3), width: int = 64,
                 norm: str = "frozen", frozen_stages: int = 1, stride_in_1x1: bool = False) -> None:
        super().__init__()
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers must be four positive block counts, got {layers}")
        if not 0 <= frozen_stages <= 5:
            raise ValueError(f"frozen_stages must be in 0..5, got {frozen_stages}")
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = make_norm(norm, width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = width
        stages = []
        for index, (blocks, stride) in enumerate(zip(layers, (1, 2, 2, 2))):
            planes = width * 2 ** index
            stage = []
            for block in range(blocks):
                stage.append(Bottleneck(channels, planes, stride if block == 0 else 1, norm, stride_in_1x1))
                channels = planes * Bottleneck.expansion
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = {"c1": width, "c2": width * 4, "c3": width * 8, "c4": width * 16, "c5": width * 32}
        self.frozen_stages = frozen_stages
        self.norm = norm
        self._init_weights()
        self._freeze()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _stages(self) -> list[list[nn.Module]]:
        """Freezable stages in order: stem (conv1 + bn1), layer1, ..., layer4."""
        return [[self.conv1, self.bn1], [self.layer1], [self.layer2], [self.layer3], [self.layer4]]

    def _freeze(self) -> None:
        for stage in self._stages()[: self.frozen_stages]:
            for module in stage:
                for parameter in module.parameters():
                    parameter.requires_grad_(False)

    def train(self, mode: bool = True) -> "ResNet":
        super().train(mode)
        # live BNs inside frozen stages keep their statistics
        for stage in self._stages()[: self.frozen_stages]:
            for module in stage:
                for sub in module.modules():
                    if isinstance(sub, nn.BatchNorm2d):
                        sub.eval()
        return self

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        c1 = self.relu(self.bn1(self.conv1(x)))
        c2 = self.layer1(self.maxpool(c1))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "c5": c5}


def resnet50(**kwargs: Any) -> ResNet:
    """The paper's ResNet-50 trunk (torchvision layout)."""
    return ResNet(layers=(3, 4, 6, 3), width=64, **kwargs)


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Tensors of a .pth file: a plain state_dict or a dict holding one under `state_dict`/`model`."""
    if not os.path.isfile(path):
        raise InputError(path, None, "backbone weights file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for unreadable files
        from detectors.hambox.torch_files import load_failure

        raise InputError(path, None, f"cannot read backbone weights ({load_failure(path, exc)})") from None
    if isinstance(payload, Mapping):
        for key in ("state_dict", "model"):
            if key in payload and isinstance(payload[key], Mapping):
                payload = payload[key]
                break
    if not isinstance(payload, Mapping) or not all(isinstance(v, Tensor) for v in payload.values()):
        raise InputError(path, None, "not a state_dict of tensors")
    return dict(payload)


def load_torchvision_weights(backbone: ResNet, source: str | os.PathLike | Mapping[str, Tensor]) -> None:
    """Load a torchvision-layout ResNet state_dict strictly (fc.* dropped); InputError names the first bad key."""
    path = None if isinstance(source, Mapping) else os.fspath(source)
    state = dict(source) if isinstance(source, Mapping) else read_state_dict(source)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    if backbone.norm == "frozen":
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    expected = backbone.state_dict()
    for key, value in expected.items():
        if key not in state:
            raise InputError(path, None, f"backbone weights lack key '{key}'")
        if tuple(state[key].shape) != tuple(value.shape):
            raise InputError(path, None, f"backbone weights key '{key}' has shape {tuple(state[key].shape)}, expected {tuple(value.shape)}")
    for key in state:
        if key not in expected:
            raise InputError(path, None, f"backbone weights have unexpected key '{key}'")
    backbone.load_state_dict(state, strict=True)
