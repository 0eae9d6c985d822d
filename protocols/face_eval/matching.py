"""Vectorised face-eval matching: size filter, +1-convention IoU, greedy score-order matching (§3.3–3.4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def size_filter_mask(boxes: np.ndarray, min_pixels: int) -> np.ndarray:
    """The toolbox's `filterdet`: keep a box if its width OR its height exceeds `min_pixels` (no +1)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    with np.errstate(over="ignore"):  # a width beyond float range is inf, and kept
        return ((boxes[:, 2] - boxes[:, 0]) > min_pixels) | ((boxes[:, 3] - boxes[:, 1]) > min_pixels)


def pairwise_overlap(det: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of paired rows (x1 y1 x2 y2) with the +1 area convention and a strict overlap test."""
    dx1, dy1, dx2, dy2 = (det[:, i] for i in range(4))
    gx1, gy1, gx2, gy2 = (gt[:, i] for i in range(4))
    # Huge coordinates overflow to inf (IoU 0 or NaN, never a match) as the toolbox's Python floats do.
    with np.errstate(over="ignore", invalid="ignore"):
        # Same operation order as the toolbox, so ties between GT boxes resolve bit-identically.
        area_det = (np.abs(dx1 - dx2) + 1) * (np.abs(dy1 - dy2) + 1)
        area_gt = (np.abs(gx1 - gx2) + 1) * (np.abs(gy1 - gy2) + 1)
        strict = (dy2 > gy1) & (gy2 > dy1) & (dx2 > gx1) & (gx2 > dx1)  # touching boxes do not intersect
        inter_w = np.minimum(dx2, gx2) - np.maximum(dx1, gx1) + 1
        inter_h = np.minimum(dy2, gy2) - np.maximum(dy1, gy1) + 1
        inter = np.where(strict, inter_w * inter_h, 0.0)
        return inter / (area_det + area_gt - inter)


@dataclass(frozen=True)
class MatchOutcome:
    """Per detection (in the order given): TP, FP, or dropped (best GT is an ignored one); best GT index."""

    tp: np.ndarray  # bool
    fp: np.ndarray  # bool
    dropped: np.ndarray  # bool
    gt_index: np.ndarray  # int64, global GT row of the best overlap above the threshold, -1 otherwise


def match_detections(det_image: np.ndarray, det_boxes: np.ndarray, gt_boxes: np.ndarray, gt_ignored: np.ndarray,
                     gt_offsets: np.ndarray, overlap_threshold: float = 0.5) -> MatchOutcome:
    """Match detections already sorted by descending score: the toolbox's VOCprRecordOptim, without loops.
    A negative image index (an id not in the ground truth) has no GT boxes: always a FP."""
    det_image = np.asarray(det_image, dtype=np.int64)
    n = len(det_image)
    known = det_image >= 0
    det_image = np.where(known, det_image, 0)
    counts = np.where(known, np.diff(gt_offsets)[det_image], 0)
    n_pairs = int(counts.sum())
    pair_det = np.repeat(np.arange(n), counts)
    first_pair = np.cumsum(counts) - counts  # position of each detection's first pair
    pair_gt = np.arange(n_pairs) - np.repeat(first_pair, counts) + np.repeat(gt_offsets[:-1][det_image], counts)
    overlap = pairwise_overlap(det_boxes[pair_det], gt_boxes[pair_gt])
    # NaN overlaps (NaN boxes after a failed correction) never win: the toolbox's ">=" is False for NaN.
    overlap = np.where(np.isnan(overlap), -np.inf, overlap)

    has_pairs = counts > 0
    starts = first_pair[has_pairs]
    best = np.full(n, -np.inf)
    best_pair = np.full(n, -1, dtype=np.int64)
    if n_pairs:
        best[has_pairs] = np.maximum.reduceat(overlap, starts)
        # Among equal best overlaps the LAST GT wins (the toolbox scans with ">=").
        is_best = overlap == best[pair_det]
        best_pair[has_pairs] = np.maximum.reduceat(np.where(is_best, np.arange(n_pairs), -1), starts)
    hit = best > overlap_threshold  # strict
    gt_index = np.where(hit, pair_gt[np.maximum(best_pair, 0)] if n_pairs else -1, -1)

    dropped = hit & gt_ignored[np.maximum(gt_index, 0)] if len(gt_ignored) else np.zeros(n, dtype=bool)
    candidates = np.flatnonzero(hit & ~dropped)
    tp = np.zeros(n, dtype=bool)
    if candidates.size:
        # Greedy in score order without fallback: the first claimant of a GT is the TP, later ones are FP.
        _, first = np.unique(gt_index[candidates], return_index=True)
        tp[candidates[first]] = True
    fp = ~tp & ~dropped
    return MatchOutcome(tp=tp, fp=fp, dropped=dropped, gt_index=gt_index)


def match_detections_reference(det_image: np.ndarray, det_boxes: np.ndarray, gt_boxes: np.ndarray,
                               gt_ignored: np.ndarray, gt_offsets: np.ndarray,
                               overlap_threshold: float = 0.5) -> MatchOutcome:
    """The same matching as a plain per-detection loop (the spec read literally), for tests and benchmarks."""
    n = len(det_image)
    tp = np.zeros(n, dtype=bool)
    fp = np.zeros(n, dtype=bool)
    dropped = np.zeros(n, dtype=bool)
    gt_index = np.full(n, -1, dtype=np.int64)
    taken = np.zeros(len(gt_boxes), dtype=bool)
    for d in range(n):
        image = int(det_image[d])
        if image < 0:  # unknown image id
            fp[d] = True
            continue
        x1, y1, x2, y2 = (float(v) for v in det_boxes[d])
        best, best_g = 0.0, -1
        for g in range(int(gt_offsets[image]), int(gt_offsets[image + 1])):
            a1, b1, a2, b2 = (float(v) for v in gt_boxes[g])
            area_d = (abs(x1 - x2) + 1) * (abs(y1 - y2) + 1)
            area_g = (abs(a1 - a2) + 1) * (abs(b1 - b2) + 1)
            inter = 0.0
            if y2 > b1 and b2 > y1 and x2 > a1 and a2 > x1:
                inter = (min(x2, a2) - max(x1, a1) + 1) * (min(y2, b2) - max(y1, b1) + 1)
            union = area_d + area_g - inter
            value = inter / union if union != 0 else float("nan")
            if value >= best:
                best, best_g = value, g
        if best > overlap_threshold:
            gt_index[d] = best_g
            if gt_ignored[best_g]:
                dropped[d] = True
            elif not taken[best_g]:
                tp[d] = True
                taken[best_g] = True
            else:
                fp[d] = True
        else:
            fp[d] = True
    return MatchOutcome(tp=tp, fp=fp, dropped=dropped, gt_index=gt_index)
