"""LFPN feature fusion (PyramidBox's low-level FPN, spec §1.2-1.3).

Six levels (default, `levels="P2-P7"`, strides 4..128): top-down path starts at C5,
P5 = 1x1 conv(C5); P_l = fuse(up2(P_{l+1}), C_l) for l = 4, 3, 2; P6 = 3x3 s2 conv(C5);
P7 = 3x3 s2 conv(ReLU(P6)); P6/P7 are not propagated downward.
Five levels (`levels="P2-P6"`, strides 4..64): top-down starts at C4 (P4 = 1x1 conv(C4)) and
fuses P3, P2; P5 = 1x1 conv(C5) and P6 = 3x3 s2 conv(C5) are prediction-only.

Fusion (`fusion=`):
- "product" (default, PyramidBox): up2(ReLU(1x1(P_{l+1}))) * ReLU(1x1(C_l));
- "sum" (FPN): inner_l = 1x1(C_l) + up2(inner_{l+1}); P_l = 3x3(inner_l).
up2 = bilinear resize to the lateral's exact size (align_corners=False).

Option `upsample_p2` (ZCC stride reduction): P2 := up2(P2) + 1x1(stem output), stride 2.

Public API: `LFPN(in_channels: dict, channels=256, levels="P2-P7", fusion="product",
upsample_p2=False)`; `forward(feats: dict c1..c5) -> list[Tensor]` (finest first);
attribute `strides: tuple[int, ...]`.
"""

from __future__ import annotations

from typing import Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from detectors.hambox.anchors import level_numbers, nominal_stride


def _upsample_to(x: Tensor, like: Tensor) -> Tensor:
    """Bilinear resize of x to like's spatial size."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class LFPN(nn.Module):
    """Low-level FPN over C2..C5 with extra P6 (and P7) levels."""

    def __init__(self, in_channels: Mapping[str, int], channels: int = 256, levels: str = "P2-P7",
                 fusion: str = "product", upsample_p2: bool = False) -> None:
        super().__init__()
        if fusion not in ("product", "sum"):
            raise ValueError(f"unknown LFPN fusion {fusion!r}; expected 'product' or 'sum'")
        self.level_nums = level_numbers(levels)
        self.six_levels = len(self.level_nums) == 6
        self.fusion = fusion
        self.upsample_p2 = upsample_p2
        top = 5 if self.six_levels else 4
        self.top_level = top
        # fused levels below the top, from the top down: (4, 3, 2) or (3, 2)
        self.fused_levels = tuple(range(top - 1, 1, -1))
        self.top = nn.Conv2d(in_channels[f"c{top}"], channels, 1)
        self.lateral = nn.ModuleList(nn.Conv2d(in_channels[f"c{l}"], channels, 1) for l in self.fused_levels)
        if fusion == "product":
            self.topdown = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in self.fused_levels)
        else:
            self.smooth = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in self.fused_levels)
        if self.six_levels:
            self.p6 = nn.Conv2d(in_channels["c5"], channels, 3, stride=2, padding=1)
            self.p7 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        else:
            self.p5 = nn.Conv2d(in_channels["c5"], channels, 1)
            self.p6 = nn.Conv2d(in_channels["c5"], channels, 3, stride=2, padding=1)
        if upsample_p2:
            self.stem_skip = nn.Conv2d(in_channels["c1"], channels, 1)
        strides = [nominal_stride(l) for l in self.level_nums]
        if upsample_p2:
            strides[0] = strides[0] // 2
        self.strides = tuple(strides)
        self.out_channels = channels
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=1)
                nn.init.zeros_(module.bias)

    def forward(self, feats: Mapping[str, Tensor]) -> list[Tensor]:
        top = self.top(feats[f"c{self.top_level}"])
        fused = {self.top_level: top}
        upper = top
        for i, level in enumerate(self.fused_levels):
            lateral = self.lateral[i](feats[f"c{level}"])
            if self.fusion == "product":
                upper = _upsample_to(F.relu(self.topdown[i](upper)), lateral) * F.relu(lateral)
                fused[level] = upper
            else:
                upper = lateral + _upsample_to(upper, lateral)
                fused[level] = self.smooth[i](upper)
        c5 = feats["c5"]
        if self.six_levels:
            p6 = self.p6(c5)
            fused[6] = p6
            fused[7] = self.p7(F.relu(p6))
        else:
            fused[5] = self.p5(c5)
            fused[6] = self.p6(c5)
        outputs = [fused[l] for l in self.level_nums]
        if self.upsample_p2:
            skip = self.stem_skip(feats["c1"])
            outputs[0] = _upsample_to(outputs[0], skip) + skip
        return outputs
