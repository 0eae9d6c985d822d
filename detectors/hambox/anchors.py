"""Anchor layout of the HAMBox family (spec §3): one 1:1 anchor per location, ZCC shifted copies.

Pyramid levels are named by their number: 2 = P2 (stride 4) ... 7 = P7 (stride 128).
The anchor side on level l is `ratio * 4 * 2**l` (ratio x {16, 32, 64, 128, 256, 512}),
centred at ((x + 0.5) * s, (y + 0.5) * s) for feature cell (x, y); anchors are not clipped.
On a "shifted" level (ZCC) every location carries 4 anchors, offset by (0, 0), (s/2, 0),
(0, s/2), (s/2, s/2) in that order.

Anchor order = head output order: level-major, then row-major (y, x), then anchor within the
location.

Public API:
- `LEVELS`: {"P2-P7": (2..7), "P2-P6": (2..6)}
- `level_numbers(levels) -> tuple[int, ...]`
- `anchor_sizes(ratio, level_nums) -> tuple[float, ...]`
- `feature_shape(image_hw, stride) -> (h, w)` (ceil division, as the network computes)
- `anchors_per_location(level_num, shifted_levels) -> int`
- `generate_anchors(feature_shapes, strides, sizes, shifted=..., device, dtype) -> [A, 4]`
- `level_ranges(feature_shapes, per_location) -> [(start, stop)]` anchor index range per level
- `anchor_count(image_hw, levels, shifted_levels) -> int`
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
from torch import Tensor

LEVELS: dict[str, tuple[int, ...]] = {"P2-P7": (2, 3, 4, 5, 6, 7), "P2-P6": (2, 3, 4, 5, 6)}
# offsets of the ZCC extra anchors, in units of the level stride
SHIFT_OFFSETS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5))


def level_numbers(levels: str) -> tuple[int, ...]:
    """Pyramid level numbers for a level-set name ("P2-P7" or "P2-P6")."""
    if levels not in LEVELS:
        raise ValueError(f"unknown pyramid levels {levels!r}; expected one of {sorted(LEVELS)}")
    return LEVELS[levels]


def nominal_stride(level_num: int) -> int:
    """Stride 2**l of pyramid level l."""
    return 2 ** level_num


def anchor_sizes(ratio: float, level_nums: Iterable[int]) -> tuple[float, ...]:
    """Anchor side per level: ratio * 4 * 2**l."""
    return tuple(float(ratio) * 4.0 * nominal_stride(l) for l in level_nums)


def feature_shape(image_hw: Sequence[int], stride: int) -> tuple[int, int]:
    """Feature-map size of a stride-`stride` level for an image (ceil division, as the convs give)."""
    return (math.ceil(int(image_hw[0]) / stride), math.ceil(int(image_hw[1]) / stride))


def anchors_per_location(level_num: int, shifted_levels: Iterable[int] = ()) -> int:
    """4 on a ZCC shifted level, else 1."""
    return len(SHIFT_OFFSETS) if level_num in set(shifted_levels) else 1


def generate_anchors(feature_shapes: Sequence[Sequence[int]], strides: Sequence[float],
                     sizes: Sequence[float], per_location: Sequence[int] | None = None,
                     device: torch.device | str | None = None,
                     dtype: torch.dtype = torch.float32) -> Tensor:
    """All anchors [A, 4] (xyxy) for the given per-level feature shapes, strides and sizes.

    `per_location[i]` is 1 (one centred anchor) or 4 (ZCC shifted copies) for level i.
    """
    if per_location is None:
        per_location = [1] * len(feature_shapes)
    if not (len(feature_shapes) == len(strides) == len(sizes) == len(per_location)):
        raise ValueError("feature_shapes, strides, sizes and per_location must have one entry per level")
    chunks = []
    for (h, w), stride, size, count in zip(feature_shapes, strides, sizes, per_location):
        if count not in (1, len(SHIFT_OFFSETS)):
            raise ValueError(f"anchors per location must be 1 or {len(SHIFT_OFFSETS)}, got {count}")
        ys = (torch.arange(int(h), device=device, dtype=torch.float64) + 0.5) * stride
        xs = (torch.arange(int(w), device=device, dtype=torch.float64) + 0.5) * stride
        cy, cx = torch.meshgrid(ys, xs, indexing="ij")
        centres = torch.stack([cx.reshape(-1), cy.reshape(-1)], dim=-1)  # [h*w, 2], row-major
        offsets = torch.tensor(SHIFT_OFFSETS[:count], device=device, dtype=torch.float64) * stride
        centres = (centres[:, None, :] + offsets[None, :, :]).reshape(-1, 2)
        half = 0.5 * float(size)
        chunks.append(torch.cat([centres - half, centres + half], dim=-1))
    if not chunks:
        return torch.zeros((0, 4), device=device, dtype=dtype)
    return torch.cat(chunks, dim=0).to(dtype)


def level_ranges(feature_shapes: Sequence[Sequence[int]], per_location: Sequence[int]) -> list[tuple[int, int]]:
    """[start, stop) anchor-index range of each level in the flattened order."""
    ranges, start = [], 0
    for (h, w), count in zip(feature_shapes, per_location):
        stop = start + int(h) * int(w) * int(count)
        ranges.append((start, stop))
        start = stop
    return ranges


def anchor_count(image_hw: Sequence[int], levels: str = "P2-P7", shifted_levels: Iterable[int] = ()) -> int:
    """Number of anchors the network tiles on an image of size (h, w)."""
    shifted = set(shifted_levels)
    total = 0
    for level in level_numbers(levels):
        h, w = feature_shape(image_hw, nominal_stride(level))
        total += h * w * anchors_per_location(level, shifted)
    return total
