"""Inference (spec §7): decode, score threshold, NMS, max detections; PyramidBox multi-scale test.

NMS follows torchvision's semantics (boxes visited by decreasing score, a box is dropped when
its IoU with a kept box is > the threshold, areas without +1, returned indices sorted by
decreasing score; ties in score keep input order) but is implemented here in torch: greedy
suppression resolved block by block, each block vectorised (no per-box Python loop).

Public API:
- `nms(boxes [N, 4], scores [N], iou_threshold) -> keep [K] int64`
- `batched_nms(boxes, scores, groups [N], iou_threshold) -> keep` (independent NMS per group)
- `postprocess(cls_logits [A], box_deltas [A, 4], anchors [A, 4], variances, score_threshold=0.01,
  pre_nms_top_k=5000, nms_threshold=0.3, max_detections=750) -> [N, 5] (x1, y1, x2, y2, score)`
- `box_vote(dets [N, 5] numpy, threshold=0.3, drop_singletons=True, max_detections=750) -> [M, 5]`
- `get_shrink(height, width, pixel_budget=678*1024*4) -> (shrink, max_shrink)`
- `ScalePass(scale, flip, keep)` and `multi_scale_plan(height, width, pixel_budget) -> list[ScalePass]`
- `filter_by_size(dets, keep) -> dets` ("all" | "big": longer side > 30 | "small": shorter side < 100;
  sides with +1 as in the reference)
- `multi_scale_detect(detect_at_scale, image_hw, pixel_budget, vote_threshold, drop_singletons,
  max_detections) -> [M, 5]` with `detect_at_scale(scale, flip) -> [N, 5]` in original pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from detectors.hambox.box_coding import DEFAULT_VARIANCES, decode

_BLOCK = 256


def _iou_rows_cols(rows: Tensor, cols: Tensor, plus_one: bool) -> Tensor:
    """IoU [R, C] between two box sets; `plus_one` uses the (x2 - x1 + 1) pixel convention."""
    off = 1.0 if plus_one else 0.0
    area_r = (rows[:, 2] - rows[:, 0] + off).clamp(min=0) * (rows[:, 3] - rows[:, 1] + off).clamp(min=0)
    area_c = (cols[:, 2] - cols[:, 0] + off).clamp(min=0) * (cols[:, 3] - cols[:, 1] + off).clamp(min=0)
    iw = (torch.minimum(rows[:, None, 2], cols[None, :, 2]) - torch.maximum(rows[:, None, 0], cols[None, :, 0]) + off).clamp(min=0)
    ih = (torch.minimum(rows[:, None, 3], cols[None, :, 3]) - torch.maximum(rows[:, None, 1], cols[None, :, 1]) + off).clamp(min=0)
    inter = iw * ih
    # 0/0 gives NaN, which never suppresses (as torchvision's kernel)
    return inter / (area_r[:, None] + area_c[None, :] - inter)


def _greedy_keep(boxes: Tensor, threshold: float, inclusive: bool, plus_one: bool) -> Tensor:
    """Greedy suppression over boxes already sorted by decreasing score -> keep mask [N]."""
    n = boxes.shape[0]
    keep = torch.zeros(n, dtype=torch.bool, device=boxes.device)
    for start in range(0, n, _BLOCK):
        stop = min(n, start + _BLOCK)
        block = boxes[start:stop]
        alive = torch.ones(stop - start, dtype=torch.bool, device=boxes.device)
        if start > 0:
            earlier = boxes[:start][keep[:start]]
            if earlier.shape[0]:
                iou = _iou_rows_cols(earlier, block, plus_one)
                hit = iou >= threshold if inclusive else iou > threshold
                alive = ~hit.any(dim=0)
        iou = _iou_rows_cols(block, block, plus_one)
        hit = (iou >= threshold) if inclusive else (iou > threshold)
        hit = torch.triu(hit, diagonal=1)  # only a higher-scoring box suppresses a lower one
        current = alive
        # fixed point of keep[i] = alive[i] and no kept j < i hits i: converges to the greedy result
        for _ in range(stop - start + 1):
            nxt = alive & ~(hit & current[:, None]).any(dim=0)
            if torch.equal(nxt, current):
                break
            current = nxt
        keep[start:stop] = current
    return keep


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices of the boxes kept by greedy NMS (IoU > threshold suppresses), by decreasing score."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    keep = _greedy_keep(boxes[order].float(), float(iou_threshold), inclusive=False, plus_one=False)
    return order[keep]


def batched_nms(boxes: Tensor, scores: Tensor, groups: Tensor, iou_threshold: float) -> Tensor:
    """NMS within each group id independently (coordinate-offset trick), by decreasing score."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    boxes = boxes.float()
    span = boxes.max() - boxes.min() + 1
    shifted = boxes + (groups.to(boxes.dtype) * span)[:, None]
    return nms(shifted, scores, iou_threshold)


def postprocess(cls_logits: Tensor, box_deltas: Tensor, anchors: Tensor,
                variances: Sequence[float] = DEFAULT_VARIANCES, score_threshold: float = 0.01,
                pre_nms_top_k: int = 5000, nms_threshold: float = 0.3, max_detections: int = 750) -> Tensor:
    """One image's detections [N, 5] (x1, y1, x2, y2, score) in network-input pixels."""
    scores = torch.sigmoid(cls_logits.float())
    candidates = torch.nonzero(scores >= score_threshold).squeeze(1)
    if candidates.numel() > pre_nms_top_k:
        top = torch.topk(scores[candidates], pre_nms_top_k).indices
        candidates = candidates[top]
    boxes = decode(anchors[candidates].float(), box_deltas[candidates].float(), variances)
    kept = nms(boxes, scores[candidates], nms_threshold)[:max_detections]
    return torch.cat([boxes[kept], scores[candidates][kept, None]], dim=1)


def box_vote(dets: np.ndarray, threshold: float = 0.3, drop_singletons: bool = True,
             max_detections: int = 750) -> np.ndarray:
    """PyramidBox box voting: clusters (IoU >= threshold with the best remaining box, +1 areas)
    become their score-weighted mean box with the cluster's max score.

    With `drop_singletons` (the reference's quirk) a one-box cluster is dropped unless it is the
    last cluster formed. Returns at most `max_detections` rows in decreasing cluster score.
    """
    dets = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
    if dets.shape[0] == 0:
        return np.zeros((0, 5), dtype=np.float32)
    t = torch.from_numpy(dets)
    order = torch.sort(t[:, 4], descending=True, stable=True).indices
    t = t[order]
    boxes = t[:, :4]
    leaders = torch.nonzero(_greedy_keep(boxes, float(threshold), inclusive=True, plus_one=True)).squeeze(1)
    # every box joins the first leader (in score order) it overlaps with; a leader joins itself
    owner = torch.full((t.shape[0],), -1, dtype=torch.long)
    for start in range(0, leaders.numel(), _BLOCK):
        chunk = leaders[start:start + _BLOCK]
        iou = _iou_rows_cols(boxes[chunk], boxes, plus_one=True)
        hit = (iou >= threshold) & (torch.arange(t.shape[0])[None, :] >= chunk[:, None])
        hit_any = hit.any(dim=0)
        first = torch.argmax(hit.to(torch.int8), dim=0) + start
        take = hit_any & (owner < 0)
        owner[take] = first[take]
    owner[leaders] = torch.arange(leaders.numel())
    n_clusters = leaders.numel()
    weights = t[:, 4]
    size = torch.zeros(n_clusters, dtype=torch.long).index_add_(0, owner, torch.ones_like(owner))
    wsum = torch.zeros(n_clusters, dtype=t.dtype).index_add_(0, owner, weights)
    bsum = torch.zeros((n_clusters, 4), dtype=t.dtype).index_add_(0, owner, boxes * weights[:, None])
    merged = torch.where(wsum[:, None] > 0, bsum / wsum.clamp(min=1e-300)[:, None], boxes[leaders])
    out = torch.cat([merged, t[leaders, 4:5]], dim=1)
    # the reference keeps a one-box cluster's box as is
    single = size == 1
    out[single, :4] = boxes[leaders[single]]
    if drop_singletons:
        keep = ~single
        keep[-1] = True  # the last cluster formed is kept even when it is a single box
        out = out[keep]
    return out[:max_detections].numpy().astype(np.float32)


def _truncate2(x: float) -> float:
    """Truncate to 2 decimals on the decimal representation (the reference's string cut)."""
    return float(Decimal(repr(float(x))).quantize(Decimal("0.01"), rounding=ROUND_DOWN))


def get_shrink(height: int, width: int, pixel_budget: float = 678 * 1024 * 4) -> tuple[float, float]:
    """(shrink, max_shrink) of the PyramidBox test: memory-driven largest scale and the base scale."""
    pixels = float(height) * float(width)
    cap = min((0x7FFFFFFF / 577.0 / pixels) ** 0.5, (pixel_budget / pixels) ** 0.5)
    max_shrink = _truncate2(cap) - 0.3
    if max_shrink <= 0:
        # huge images: some copies of the reference undo the -0.3 rather than go negative
        max_shrink += 0.3
    for low, high, minus in ((1.5, 2, 0.1), (2, 3, 0.2), (3, 4, 0.3), (4, 5, 0.4), (5, float("inf"), 0.5)):
        if low <= max_shrink < high:
            max_shrink -= minus
            break
    return min(max_shrink, 1.0), max_shrink


@dataclass(frozen=True)
class ScalePass:
    """One forward pass of the multi-scale test: scale, horizontal flip, size filter."""

    scale: float
    flip: bool = False
    keep: str = "all"  # "all" | "big" (longer side > 30) | "small" (shorter side < 100)


def multi_scale_plan(height: int, width: int, pixel_budget: float = 678 * 1024 * 4) -> list[ScalePass]:
    """The passes of spec §7 for an image of the given size, in the reference's order."""
    shrink, max_shrink = get_shrink(height, width, pixel_budget)
    passes = [ScalePass(shrink), ScalePass(shrink, flip=True)]
    st = 0.5 if max_shrink >= 0.75 else 0.5 * max_shrink
    passes.append(ScalePass(st, keep="big"))
    enlarged = []
    bt = min(2.0, max_shrink) if max_shrink > 1 else (st + max_shrink) / 2
    enlarged.append(bt)
    if max_shrink > 2:
        bt *= 2
        while bt < max_shrink:
            enlarged.append(bt)
            bt *= 2
        enlarged.append(max_shrink)
    keep = "small" if bt > 1 else "big"
    passes += [ScalePass(scale, keep=keep) for scale in enlarged]
    passes.append(ScalePass(0.25, keep="big"))
    for scale in (0.75, 1.25, 1.5, 1.75):
        if scale <= max_shrink:
            passes.append(ScalePass(scale, keep="small" if scale > 1 else "big"))
    return passes


def filter_by_size(dets: np.ndarray, keep: str) -> np.ndarray:
    """Apply a pass's size filter (sides measured with +1, as the reference)."""
    if keep == "all" or dets.shape[0] == 0:
        return dets
    w = dets[:, 2] - dets[:, 0] + 1
    h = dets[:, 3] - dets[:, 1] + 1
    if keep == "big":
        return dets[np.maximum(w, h) > 30]
    if keep == "small":
        return dets[np.minimum(w, h) < 100]
    raise ValueError(f"unknown size filter {keep!r}")


def multi_scale_detect(detect_at_scale: Callable[[float, bool], np.ndarray], image_hw: Sequence[int],
                       pixel_budget: float = 678 * 1024 * 4, vote_threshold: float = 0.3,
                       drop_singletons: bool = True, max_detections: int = 750) -> np.ndarray:
    """Run every pass of the plan, filter, concatenate and box-vote; boxes in original pixels."""
    outputs = []
    for test_pass in multi_scale_plan(int(image_hw[0]), int(image_hw[1]), pixel_budget):
        dets = np.asarray(detect_at_scale(test_pass.scale, test_pass.flip), dtype=np.float64).reshape(-1, 5)
        outputs.append(filter_by_size(dets, test_pass.keep))
    return box_vote(np.concatenate(outputs, axis=0), vote_threshold, drop_singletons, max_detections)
