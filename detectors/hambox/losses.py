"""Losses (spec §5): sigmoid focal loss, the regression-aware focal loss (RAL, eq. 1), smooth-L1 (eq. 2).

Shapes: cls_logits [B, A]; box_deltas, box_targets [B, A, 4] (targets only read at positive or
compensated anchors); masks [B, A] bool; quality F [B, A] float (detached inside).

Public API:
- `sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0) -> elementwise [...]`
  FL(p, y) = -alpha_y (1 - p_y)^gamma ln p_y, alpha_1 = alpha, alpha_0 = 1 - alpha.
- `smooth_l1(pred, target, beta=1.0) -> [...]` summed over the last (4-coordinate) axis.
- `reduce_normaliser(value, across_gpus=False) -> Tensor` (mean over processes when asked and
  torch.distributed is initialised).
- `plain_detection_loss(...) -> dict(cls, loc, num_pos)` (spec §5.1; also OAM without RAL and PA)
- `ral_detection_loss(...) -> dict(cls, loc, num_norm, num_com, num_ignored)` (spec §5.2-5.3)
All loss terms are batch sums divided by batch-total normalisers (clamped as the spec says),
computed in fp32 whatever the input dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Elementwise sigmoid focal loss of logits against 0/1 targets."""
    targets = targets.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * (1 - p_t).pow(gamma) * ce


def smooth_l1(pred: Tensor, target: Tensor, beta: float = 1.0) -> Tensor:
    """Smooth-L1 (Huber with transition beta) summed over the last axis."""
    diff = (pred - target).abs()
    if beta > 0:
        per = torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)
    else:
        per = diff
    return per.sum(dim=-1)


def reduce_normaliser(value: Tensor, across_gpus: bool = False) -> Tensor:
    """A batch-total normaliser, optionally averaged over all processes (spec §5.4)."""
    value = value.detach().to(torch.float32)
    if across_gpus and torch.distributed.is_available() and torch.distributed.is_initialized():
        value = value.clone()
        torch.distributed.all_reduce(value)
        value = value / torch.distributed.get_world_size()
    return value


def plain_detection_loss(cls_logits: Tensor, box_deltas: Tensor, positive: Tensor, box_targets: Tensor,
                         alpha: float = 0.25, gamma: float = 2.0, beta: float = 1.0,
                         valid: Tensor | None = None, across_gpus: bool = False) -> dict[str, Tensor]:
    """Focal loss over all (valid) anchors and smooth-L1 over positives, both / max(1, N_pos)."""
    # fp32 sums: under autocast an fp16 sum over ~10^6 anchors can overflow
    cls_logits, box_deltas = cls_logits.float(), box_deltas.float()
    positive = positive.to(torch.bool)
    if valid is None:
        valid = torch.ones_like(positive)
    num_pos = reduce_normaliser(positive.sum(), across_gpus)
    norm = num_pos.clamp(min=1.0)
    focal = sigmoid_focal_loss(cls_logits, positive, alpha, gamma)
    cls = torch.where(valid, focal, torch.zeros_like(focal)).sum() / norm
    loc = smooth_l1(box_deltas[positive], box_targets[positive].to(box_deltas.dtype), beta).sum() / norm
    return {"cls": cls, "loc": loc, "num_pos": num_pos}


def ral_detection_loss(cls_logits: Tensor, box_deltas: Tensor, first_positive: Tensor, compensated: Tensor,
                       quality: Tensor, box_targets: Tensor, alpha: float = 0.25, gamma: float = 2.0,
                       beta: float = 1.0, high_quality: float = 0.5,
                       across_gpus: bool = False) -> dict[str, Tensor]:
    """Regression-aware focal loss (eq. 1) and its localisation term (eq. 2).

    psi = compensated anchors (weighted by F, / N_com); Omega = first-step positives and
    first-step negatives with F < high_quality (/ N_norm, N_norm = first-step positives, >= 1);
    first-step negatives with F >= high_quality outside psi are ignored.
    """
    cls_logits, box_deltas = cls_logits.float(), box_deltas.float()
    first_positive = first_positive.to(torch.bool)
    compensated = compensated.to(torch.bool) & ~first_positive
    quality = quality.detach().to(cls_logits.dtype)
    negative = ~first_positive & ~compensated
    omega_negative = negative & (quality < high_quality)
    ignored = negative & ~omega_negative
    num_norm = reduce_normaliser(first_positive.sum(), across_gpus)
    num_com = reduce_normaliser(compensated.sum(), across_gpus)
    norm = num_norm.clamp(min=1.0)
    com_norm = num_com.clamp(min=1.0)  # the psi sums are 0 when N_com = 0

    focal_pos = sigmoid_focal_loss(cls_logits, torch.ones_like(cls_logits), alpha, gamma)
    focal_neg = sigmoid_focal_loss(cls_logits, torch.zeros_like(cls_logits), alpha, gamma)
    zero = torch.zeros_like(focal_pos)
    cls_psi = torch.where(compensated, quality * focal_pos, zero).sum() / com_norm
    cls_omega = (torch.where(first_positive, focal_pos, zero).sum()
                 + torch.where(omega_negative, focal_neg, zero).sum()) / norm
    targets = box_targets.to(box_deltas.dtype)
    loc_psi = smooth_l1(box_deltas[compensated], targets[compensated], beta).sum() / com_norm
    loc_omega = smooth_l1(box_deltas[first_positive], targets[first_positive], beta).sum() / norm
    return {"cls": cls_psi + cls_omega, "loc": loc_psi + loc_omega, "num_norm": num_norm,
            "num_com": num_com, "num_ignored": ignored.sum().detach().to(torch.float32)}
