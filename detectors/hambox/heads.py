"""Prediction heads (spec §2): plain / deep head, SSH context modules, PA context branches.

Every branch predicts per anchor one sigmoid logit and 4 box deltas. Outputs are flattened
level-major, row-major (y, x), anchor-within-location: cls [B, A], box [B, A, 4].

- plain head: one 3x3 conv -> A*1 logits and one 3x3 conv -> A*4 deltas, shared across levels;
- deep head (DH): 4 x (3x3 conv + ReLU) towers per output before the predictors, shared;
- SSH: one (unshared) SSH module per level in front of the towers (P_l -> SSH_l -> towers);
- ZCC shifted levels (4 anchors per location): a level-specific final conv with 4x outputs,
  towers stay shared;
- PA: extra context branches ("head", optional "body") with their own towers and predictors,
  on levels from `context_min_level` up; training only.
Init (spec §1.4): N(0, 0.01) weights, zero bias; classification bias -log((1 - pi) / pi).

Public API: `SSH(channels)`, `PredictionBranch(channels, level_nums, per_location,
tower_convs, prior_prob)`, `HAMBoxHead(channels, level_nums, per_location, tower_convs, ssh,
context_branches, context_min_level, prior_prob)` with
`forward(features, with_context) -> (cls, box, {name: (cls, box)})`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    """3x3 same-padding conv with the head init."""
    conv = nn.Conv2d(cin, cout, 3, padding=1)
    nn.init.normal_(conv.weight, std=0.01)
    nn.init.zeros_(conv.bias)
    return conv


class SSH(nn.Module):
    """SSH context module: concat(3x3 -> C/2, "5x5" -> C/4, "7x7" -> C/4) -> ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels % 4:
            raise ValueError(f"SSH needs channels divisible by 4, got {channels}")
        quarter = channels // 4
        self.branch_a = _conv3x3(channels, channels // 2)
        self.context = _conv3x3(channels, quarter)
        self.branch_b = _conv3x3(quarter, quarter)
        self.branch_c1 = _conv3x3(quarter, quarter)
        self.branch_c2 = _conv3x3(quarter, quarter)

    def forward(self, x: Tensor) -> Tensor:
        stem = F.relu(self.context(x))
        c = self.branch_c2(F.relu(self.branch_c1(stem)))
        return F.relu(torch.cat([self.branch_a(x), self.branch_b(stem), c], dim=1))


def _tower(channels: int, convs: int) -> nn.Sequential:
    """`convs` x (3x3 conv + ReLU); empty for the plain head."""
    layers: list[nn.Module] = []
    for _ in range(convs):
        layers += [_conv3x3(channels, channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def _flatten(x: Tensor, per_location: int, values: int) -> Tensor:
    """[B, A*values, H, W] -> [B, H*W*A, values] in (y, x, anchor) order."""
    b, _, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w * per_location, values)


class PredictionBranch(nn.Module):
    """Classification and box towers plus predictors over all levels of one target type."""

    def __init__(self, channels: int, level_nums: Sequence[int], per_location: Sequence[int],
                 tower_convs: int = 0, prior_prob: float = 0.01) -> None:
        super().__init__()
        self.level_nums = tuple(level_nums)
        self.per_location = tuple(per_location)
        self.cls_tower = _tower(channels, tower_convs)
        self.box_tower = _tower(channels, tower_convs)
        bias = -math.log((1.0 - prior_prob) / prior_prob)
        self.cls_pred: nn.Conv2d | None = None
        self.box_pred: nn.Conv2d | None = None
        if any(count == 1 for count in self.per_location):
            self.cls_pred = _conv3x3(channels, 1)
            self.box_pred = _conv3x3(channels, 4)
            nn.init.constant_(self.cls_pred.bias, bias)
        self.cls_pred_level = nn.ModuleDict()
        self.box_pred_level = nn.ModuleDict()
        for level, count in zip(self.level_nums, self.per_location):
            if count != 1:
                self.cls_pred_level[f"P{level}"] = _conv3x3(channels, count)
                self.box_pred_level[f"P{level}"] = _conv3x3(channels, 4 * count)
                nn.init.constant_(self.cls_pred_level[f"P{level}"].bias, bias)

    def forward(self, features: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        cls_out, box_out = [], []
        for feature, level, count in zip(features, self.level_nums, self.per_location):
            cls_feat = self.cls_tower(feature)
            box_feat = self.box_tower(feature)
            if count == 1:
                cls_map, box_map = self.cls_pred(cls_feat), self.box_pred(box_feat)
            else:
                cls_map = self.cls_pred_level[f"P{level}"](cls_feat)
                box_map = self.box_pred_level[f"P{level}"](box_feat)
            cls_out.append(_flatten(cls_map, count, 1))
            box_out.append(_flatten(box_map, count, 4))
        return torch.cat(cls_out, dim=1).squeeze(-1), torch.cat(box_out, dim=1)


class HAMBoxHead(nn.Module):
    """Optional per-level SSH, the face branch, and the PA context branches."""

    def __init__(self, channels: int, level_nums: Sequence[int], per_location: Sequence[int],
                 tower_convs: int = 0, ssh: bool = False, context_branches: Sequence[str] = (),
                 context_min_level: int = 2, prior_prob: float = 0.01) -> None:
        super().__init__()
        self.level_nums = tuple(level_nums)
        self.ssh = nn.ModuleList(SSH(channels) for _ in self.level_nums) if ssh else None
        self.face = PredictionBranch(channels, self.level_nums, per_location, tower_convs, prior_prob)
        self.context_first = next((i for i, l in enumerate(self.level_nums) if l >= context_min_level), len(self.level_nums))
        context_levels = self.level_nums[self.context_first:]
        context_counts = tuple(per_location)[self.context_first:]
        self.context = nn.ModuleDict({name: PredictionBranch(channels, context_levels, context_counts, tower_convs, prior_prob)
                                      for name in context_branches})

    def forward(self, features: Sequence[Tensor], with_context: bool = False
                ) -> tuple[Tensor, Tensor, dict[str, tuple[Tensor, Tensor]]]:
        if self.ssh is not None:
            features = [module(feature) for module, feature in zip(self.ssh, features)]
        cls, box = self.face(features)
        context: dict[str, tuple[Tensor, Tensor]] = {}
        if with_context:
            for name, branch in self.context.items():
                context[name] = branch(features[self.context_first:])
        return cls, box, context
