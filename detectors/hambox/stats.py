"""The paper's measurements as functions of one batch (spec §8).

Definitions: "correct" = decoded box IoU > 0.5 with a face; "matched" = anchor IoU >= 0.35 with
that face; "high-quality anchor" = decoded box IoU >= 0.5 with some face.

Public API:
- `training_step_stats(matches, ious, pred_ious, k=3, threshold=0.35, high_quality=0.5, ral=False)
  -> dict` per training step, from per-image `MatchResult`s (unbatched) and the per-image IoU
  [G, A] of faces with anchors and with decoded predictions (pred_ious entries may be None):
  num_faces, outer_faces (M < K), unmatched_faces (M = 0), mean_matches (mean M),
  num_first_positive (= N_norm), num_positive, num_compensated (= N_com),
  mean_compensated_quality (mean F of the compensated / second-step anchors),
  high_quality_anchors, high_quality_unmatched_fraction (share of high-quality anchors that
  are first-step negatives), ral_ignored (anchors RAL ignores; 0 unless `ral`).
- `regression_source_stats(anchors, pred_boxes, gt_boxes, scores=None, score_floor=None,
  nms_threshold=0.3, ...) -> dict` over a batch (lists, one entry per image): correct boxes,
  fraction regressed from matched anchors, CDF of their anchors' IoU, and the Fig. 2(d)
  per-face counts (before and after NMS when scores are given).
- `anchor_coverage(gt_boxes, anchors, threshold=0.35) -> dict`: Fig. 1's mean matched anchors
  per face (one-step matching) and share of faces with an anchor IoU >= threshold.
- `emo_score(face_size, anchor_stride, points=48) -> float`: ZCC's expected max overlap.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from detectors.hambox import matching
from detectors.hambox.box_coding import pairwise_iou
from detectors.hambox.inference import nms

CDF_EDGES: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(21))


def _nan_mean(total: float, count: int) -> float:
    """total / count, NaN for an empty set."""
    return total / count if count else float("nan")


def training_step_stats(matches: Sequence[matching.MatchResult], ious: Sequence[Tensor],
                        pred_ious: Sequence[Tensor | None], k: int = 3, threshold: float = 0.35,
                        high_quality: float = 0.5, ral: bool = False) -> dict[str, float]:
    """Per-step matching statistics summed over the images of one batch."""
    faces = outer = unmatched = 0
    m_total = first_pos = positives = compensated = 0
    quality_sum = 0.0
    quality_n = 0
    hq = hq_negative = ignored = 0
    for result, iou, pred_iou in zip(matches, ious, pred_ious):
        m = result.num_matched
        faces += int(m.numel())
        outer += int((m < k).sum())
        unmatched += int((m == 0).sum())
        m_total += int(m.sum())
        first = result.first_step >= 0
        first_pos += int(first.sum())
        positives += int((result.assigned >= 0).sum())
        comp = result.compensated
        compensated += int(comp.sum())
        if pred_iou is None or pred_iou.shape[0] == 0:
            continue
        best_pred = pred_iou.max(dim=0).values
        if bool(comp.any()):
            own = pred_iou[result.assigned[comp], torch.nonzero(comp).squeeze(1)]
            quality_sum += float(own.sum())
            quality_n += int(own.numel())
        high = best_pred >= high_quality
        hq += int(high.sum())
        hq_negative += int((high & ~first).sum())
        if ral:
            ignored += int((high & ~first & ~comp).sum())
    return {"num_faces": float(faces), "outer_faces": float(outer), "unmatched_faces": float(unmatched),
            "mean_matches": _nan_mean(m_total, faces), "num_first_positive": float(first_pos),
            "num_positive": float(positives), "num_compensated": float(compensated),
            "mean_compensated_quality": _nan_mean(quality_sum, quality_n),
            "high_quality_anchors": float(hq),
            "high_quality_unmatched_fraction": _nan_mean(hq_negative, hq),
            "ral_ignored": float(ignored)}


def regression_source_stats(anchors: Tensor, pred_boxes: Sequence[Tensor], gt_boxes: Sequence[Tensor],
                            scores: Sequence[Tensor] | None = None, score_floor: float | None = None,
                            nms_threshold: float = 0.3, matched_iou: float = 0.35,
                            correct_iou: float = 0.5) -> dict:
    """Where correct boxes come from (Fig. 2(a), 2(d)), over all anchors of a batch of images."""
    correct = from_matched = 0
    anchor_ious = []
    faces = faces_matched = faces_correct_matched = faces_correct_matched_nms = 0
    for i, (boxes, gt) in enumerate(zip(pred_boxes, gt_boxes)):
        gt = gt.to(anchors).reshape(-1, 4)
        faces += gt.shape[0]
        if gt.shape[0] == 0:
            continue
        keep = torch.ones(boxes.shape[0], dtype=torch.bool, device=boxes.device)
        if scores is not None and score_floor is not None:
            keep = scores[i] >= score_floor
        box_iou = pairwise_iou(gt, boxes.to(anchors))            # [G, A]
        anchor_iou = pairwise_iou(gt, anchors)                   # [G, A]
        best, face = box_iou.max(dim=0)
        is_correct = (best > correct_iou) & keep
        own_anchor_iou = anchor_iou.gather(0, face[None]).squeeze(0)
        is_matched = own_anchor_iou >= matched_iou
        correct += int(is_correct.sum())
        from_matched += int((is_correct & is_matched).sum())
        anchor_ious.append(own_anchor_iou[is_correct].cpu())
        faces_matched += int((anchor_iou.max(dim=1).values >= matched_iou).sum())
        good = is_correct & is_matched
        faces_correct_matched += int(torch.unique(face[good]).numel())
        if scores is not None:
            candidates = torch.nonzero(keep).squeeze(1)
            kept = candidates[nms(boxes[candidates].float(), scores[i][candidates].float(), nms_threshold)]
            faces_correct_matched_nms += int(torch.unique(face[kept][good[kept]]).numel())
    values = torch.cat(anchor_ious).numpy() if anchor_ious else np.zeros(0)
    cdf = [float((values <= edge).mean()) if values.size else float("nan") for edge in CDF_EDGES]
    out = {"correct_boxes": correct, "correct_from_matched": from_matched,
           "fraction_from_matched": _nan_mean(from_matched, correct),
           "anchor_iou_cdf": {"edges": list(CDF_EDGES), "cdf": cdf},
           "faces": faces, "faces_with_matched_anchor": faces_matched,
           "faces_with_correct_box_from_matched_anchor": faces_correct_matched}
    if scores is not None:
        out["faces_with_correct_box_from_matched_anchor_after_nms"] = faces_correct_matched_nms
    return out


def anchor_coverage(gt_boxes: Sequence[Tensor], anchors: Tensor, threshold: float = 0.35) -> dict[str, float]:
    """Fig. 1: mean one-step matches per face and share of faces with some anchor IoU >= threshold."""
    faces = matched_total = coverable = 0
    for gt in gt_boxes:
        gt = gt.to(anchors).reshape(-1, 4)
        if gt.shape[0] == 0:
            continue
        iou = pairwise_iou(gt, anchors)
        matched_total += int((matching.sms(iou, threshold=threshold) >= 0).sum())
        coverable += int((iou.max(dim=1).values >= threshold).sum())
        faces += gt.shape[0]
    return {"faces": float(faces), "mean_matched_per_face": _nan_mean(matched_total, faces),
            "fraction_matchable": _nan_mean(coverable, faces)}


def emo_score(face_size: float, anchor_stride: float, points: int = 48) -> float:
    """Expected max IoU of a face of side l with same-size anchors at stride s (uniform centre)."""
    l, s = float(face_size), float(anchor_stride)
    nodes, weights = np.polynomial.legendre.leggauss(points)
    half = s / 2.0
    x = (nodes + 1.0) * half / 2.0   # map [-1, 1] -> [0, s/2]
    w = weights * half / 2.0
    ox, oy = np.clip(l - x[:, None], 0, None), np.clip(l - x[None, :], 0, None)
    inter = ox * oy
    iou = inter / (2 * l * l - inter)
    return float((2.0 / s) ** 2 * (w[:, None] * w[None, :] * iou).sum())


