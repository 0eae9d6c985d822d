"""Box geometry and the SSD/PaddlePaddle variance box coding (spec §3).

Boxes are continuous (x1, y1, x2, y2) with width = x2 - x1 (no +1) everywhere in training,
matching and single-pass inference.

Public API:
- `box_area(boxes) -> [...]`
- `pairwise_iou(a [..., N, 4], b [..., M, 4]) -> [..., N, M]` (broadcasts leading dims)
- `to_cxcywh(boxes)`, `to_xyxy(boxes)`
- `encode(anchors [..., 4], boxes [..., 4], variances) -> deltas [..., 4]`
- `decode(anchors [..., 4], deltas [..., 4], variances) -> boxes [..., 4]` (exact inverse of
  `encode` while the size deltas stay below `MAX_LOG_SCALE`, where they are clamped)
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

DEFAULT_VARIANCES: tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)
# exp() of a raw size delta is clamped here so a wild prediction cannot overflow fp16/fp32.
MAX_LOG_SCALE: float = math.log(1000.0 / 16.0)


def box_area(boxes: Tensor) -> Tensor:
    """Area of (x1, y1, x2, y2) boxes, width = x2 - x1; degenerate boxes give <= 0 sides clamped to 0."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def pairwise_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of every box in `a` [..., N, 4] with every box in `b` [..., M, 4] -> [..., N, M] (0 where union is 0)."""
    # one coordinate at a time keeps the intermediates at [..., N, M] (no [..., N, M, 2] temporaries)
    ax1, ay1, ax2, ay2 = (a[..., :, None, i] for i in range(4))
    bx1, by1, bx2, by2 = (b[..., None, :, i] for i in range(4))
    inter = (torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)).clamp_(min=0)
    inter = inter * (torch.minimum(ay2, by2) - torch.maximum(ay1, by1)).clamp_(min=0)
    union = (box_area(a)[..., :, None] + box_area(b)[..., None, :]) - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), torch.zeros_like(inter))


def to_cxcywh(boxes: Tensor) -> Tensor:
    """(x1, y1, x2, y2) -> (cx, cy, w, h)."""
    wh = boxes[..., 2:] - boxes[..., :2]
    return torch.cat([boxes[..., :2] + 0.5 * wh, wh], dim=-1)


def to_xyxy(boxes: Tensor) -> Tensor:
    """(cx, cy, w, h) -> (x1, y1, x2, y2)."""
    half = 0.5 * boxes[..., 2:]
    return torch.cat([boxes[..., :2] - half, boxes[..., :2] + half], dim=-1)


def encode(anchors: Tensor, boxes: Tensor, variances: Sequence[float] = DEFAULT_VARIANCES) -> Tensor:
    """Regression targets of `boxes` relative to `anchors` (both xyxy, broadcastable): t = (dx/0.1w, dy/0.1h, ln(w)/0.2, ln(h)/0.2)."""
    a = to_cxcywh(anchors)
    g = to_cxcywh(boxes)
    var = torch.as_tensor(variances, dtype=a.dtype, device=a.device)
    tiny = torch.finfo(g.dtype).tiny
    t_xy = (g[..., :2] - a[..., :2]) / (var[:2] * a[..., 2:])
    t_wh = torch.log(g[..., 2:].clamp(min=tiny) / a[..., 2:]) / var[2:]
    return torch.cat([t_xy, t_wh], dim=-1)


def decode(anchors: Tensor, deltas: Tensor, variances: Sequence[float] = DEFAULT_VARIANCES) -> Tensor:
    """Boxes (xyxy) from `deltas` relative to `anchors`; the inverse of `encode`."""
    a = to_cxcywh(anchors.to(deltas.dtype))
    var = torch.as_tensor(variances, dtype=deltas.dtype, device=deltas.device)
    centre = a[..., :2] + deltas[..., :2] * var[:2] * a[..., 2:]
    size = a[..., 2:] * torch.exp((deltas[..., 2:] * var[2:]).clamp(max=MAX_LOG_SCALE))
    return to_xyxy(torch.cat([centre, size], dim=-1))
