"""Anchor matching strategies (spec §4): SMS, DMS, NAMS, ZCC and HAMBox online anchor mining.

All functions are pure torch functions on IoU matrices; nothing here needs gradients (call
them on detached tensors). Shapes, batched or not:
- `iou`: [B, G, A] (or [G, A]) IoU of every face with every anchor;
- `pred_iou` (OAM): [B, G, A] IoU of every face with every anchor's decoded predicted box;
- `gt_valid`: [B, G] bool (or [G]); False marks padding rows (ignored faces). None = all valid.
Outputs `assigned`: [B, A] (or [A]) int64, the face an anchor is positive for, or -1.

Rules common to all (spec §4): thresholds are ">= 0.35"; no ignore band; an anchor is given to
its highest-IoU face (ties: lowest face index); M_j = anchors assigned to face j after the
first step. Compensation steps visit faces in index order; a face takes its candidates in
descending score (ties: lowest anchor index) and an anchor taken by an earlier face is no
longer available to a later one.

Public API:
- `sms(iou, gt_valid=None, threshold=0.35) -> assigned`
- `dms(iou, gt_valid=None, threshold=0.35, min_iou=0.0) -> assigned`
- `nams(iou, n, gt_valid=None, threshold=0.35, candidate_iou=0.1) -> assigned`
- `zcc(iou, gt_valid=None, threshold=0.35, n=5) -> assigned`
- `oam(iou, pred_iou, gt_valid=None, threshold=0.35, k=3, t=0.8) -> (assigned, compensated, quality)`
- `count_matches(assigned, num_faces) -> M [B, G]`
- `match(strategy, iou, gt_valid=None, pred_iou=None, **params) -> MatchResult`
  (the one entry point the model uses; carries first-step labels, compensated set, M, F)
- `mean_matches_per_face(gt_boxes, anchors, threshold) -> float` and
  `estimate_nams_n(gt_boxes, anchors, threshold) -> int` (NAMS N = round(mean stage-one M))
- `sequential_compensation(score, eligible, need, free) -> claimed [A]` (the shared kernel)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from detectors.hambox.box_coding import pairwise_iou

STRATEGIES = ("sms", "dms", "nams", "zcc", "oam")


@dataclass(frozen=True)
class MatchResult:
    """Outcome of matching one batch.

    assigned: [B, A] int64 final face index per anchor or -1.
    first_step: [B, A] int64 the first-step (SMS at the threshold) assignment.
    compensated: [B, A] bool anchors whose final assignment came from a later step (DMS forced,
        NAMS stage two, ZCC hard-face, OAM compensation) -- the set psi for OAM.
    num_matched: [B, G] int64 M_j after the first step.
    quality: [B, A] float F of spec §4.6 (OAM only, else None).
    """

    assigned: Tensor
    first_step: Tensor
    compensated: Tensor
    num_matched: Tensor
    quality: Tensor | None = None


def _batched(iou: Tensor, gt_valid: Tensor | None) -> tuple[Tensor, Tensor, bool]:
    """Add a batch dimension when missing and default gt_valid to all-True."""
    squeeze = iou.dim() == 2
    if squeeze:
        iou = iou.unsqueeze(0)
        gt_valid = None if gt_valid is None else gt_valid.unsqueeze(0)
    if iou.dim() != 3:
        raise ValueError(f"iou must be [G, A] or [B, G, A], got shape {tuple(iou.shape)}")
    if gt_valid is None:
        gt_valid = torch.ones(iou.shape[:2], dtype=torch.bool, device=iou.device)
    if gt_valid.shape != iou.shape[:2]:
        raise ValueError(f"gt_valid shape {tuple(gt_valid.shape)} does not match iou {tuple(iou.shape)}")
    return iou, gt_valid.to(torch.bool), squeeze


def _best_face(iou: Tensor, gt_valid: Tensor) -> tuple[Tensor, Tensor]:
    """Per anchor: highest IoU over valid faces ([B, A], -1 when none) and its face (lowest index on ties)."""
    b, g, a = iou.shape
    if g == 0:
        return (torch.full((b, a), -1.0, dtype=iou.dtype, device=iou.device),
                torch.full((b, a), -1, dtype=torch.long, device=iou.device))
    masked = iou if bool(gt_valid.all()) else torch.where(gt_valid[:, :, None], iou, torch.full_like(iou, -1.0))
    # torch.max over a dim returns the first maximal index: ties go to the lowest face index
    return masked.max(dim=1)


def _best_value(iou: Tensor, gt_valid: Tensor) -> Tensor:
    """Per anchor: highest IoU over valid faces [B, A], 0 when there is none."""
    b, g, a = iou.shape
    if g == 0:
        return torch.zeros((b, a), dtype=iou.dtype, device=iou.device)
    masked = iou if bool(gt_valid.all()) else torch.where(gt_valid[:, :, None], iou, torch.zeros_like(iou))
    return masked.amax(dim=1).clamp(min=0)


def count_matches(assigned: Tensor, num_faces: int) -> Tensor:
    """M_j: number of anchors assigned to each face; [B, A] -> [B, G] (or [A] -> [G])."""
    squeeze = assigned.dim() == 1
    a = assigned.unsqueeze(0) if squeeze else assigned
    counts = torch.zeros((a.shape[0], num_faces + 1), dtype=torch.long, device=a.device)
    counts.scatter_add_(1, a + 1, torch.ones_like(a))
    counts = counts[:, 1:]
    return counts[0] if squeeze else counts


def _sms(iou: Tensor, gt_valid: Tensor, threshold: float) -> Tensor:
    """Batched one-step matching on [B, G, A]."""
    best, face = _best_face(iou, gt_valid)
    return torch.where(best >= threshold, face, torch.full_like(face, -1))


def sms(iou: Tensor, gt_valid: Tensor | None = None, threshold: float = 0.35) -> Tensor:
    """Standard one-step matching: anchor -> its best face if that IoU >= threshold, else -1."""
    iou, gt_valid, squeeze = _batched(iou, gt_valid)
    out = _sms(iou, gt_valid, threshold)
    return out[0] if squeeze else out


def sequential_compensation(score: Tensor, eligible: Tensor, need: Tensor, free: Tensor) -> Tensor:
    """Faces in index order each claim up to need[j] free anchors with eligible[j, a], best score first.

    score, eligible: [G, A]; need: [G] int; free: [A] bool (anchors that may be claimed).
    Returns claimed [A] int64: the claiming face or -1. An anchor claimed by a face is not
    available to later faces. Equivalent to a per-face loop, resolved in vectorised rounds: a
    face's picks are final once no earlier unresolved face could still take one of them.
    """
    g, a = score.shape
    claimed = torch.full((a,), -1, dtype=torch.long, device=score.device)
    faces = torch.nonzero(need > 0).squeeze(1)
    if faces.numel() == 0 or a == 0:
        return claimed
    elig = eligible[faces] & free[None, :]
    cols = torch.nonzero(elig.any(dim=0)).squeeze(1)
    if cols.numel() == 0:
        return claimed
    # work on the few anchors any needing face could take
    s = score[faces][:, cols]
    e = elig[:, cols]
    k = need[faces].to(torch.long)
    available = torch.ones(cols.numel(), dtype=torch.bool, device=score.device)
    pending = torch.arange(faces.numel(), device=score.device)
    neg_inf = torch.tensor(float("-inf"), dtype=s.dtype, device=s.device)
    while pending.numel() > 0:
        ep = e[pending] & available[None, :]
        sp = torch.where(ep, s[pending], neg_inf)
        kp = k[pending]
        kmax = min(int(kp.max()), cols.numel())
        order = torch.sort(sp, dim=1, descending=True, stable=True).indices[:, :kmax]
        take = torch.gather(ep, 1, order) & (torch.arange(kmax, device=s.device)[None, :] < kp[:, None])
        claim = torch.zeros_like(ep)
        claim.scatter_(1, order, take)
        claim_i = claim.to(torch.int32)
        clash = (claim & ((claim_i.cumsum(0) - claim_i) > 0)).any(dim=1)
        ep_i = ep.to(torch.int32)
        safe = ~(claim & ((ep_i.cumsum(0) - ep_i) > 0)).any(dim=1)
        commit = safe.clone()
        first_clash = int(torch.nonzero(clash)[0]) if bool(clash.any()) else pending.numel()
        commit[:first_clash] = True
        rows, picked = torch.nonzero(claim & commit[:, None], as_tuple=True)
        claimed[cols[picked]] = faces[pending[rows]]
        available[picked] = False
        pending = pending[~commit]
    return claimed


def _forced_best_anchor(iou: Tensor, valid: Tensor, matched: Tensor, min_iou: float) -> Tensor:
    """DMS second step for one image: claimed [A] for faces with M_j = 0 (may override first-step positives)."""
    g, a = iou.shape
    if g == 0:
        return torch.full((a,), -1, dtype=torch.long, device=iou.device)
    best = iou.max(dim=1).values
    need = (valid & (matched == 0) & (best > 0) & (best >= min_iou)).to(torch.long)
    free = torch.ones(a, dtype=torch.bool, device=iou.device)
    return sequential_compensation(iou, iou > 0, need, free)


def _dms(iou: Tensor, gt_valid: Tensor, threshold: float, min_iou: float) -> tuple[Tensor, Tensor]:
    """Batched DMS; returns (assigned, first-step assignment)."""
    first = _sms(iou, gt_valid, threshold)
    matched = count_matches(first, iou.shape[1])
    out = first.clone()
    for i in range(iou.shape[0]):
        forced = _forced_best_anchor(iou[i], gt_valid[i], matched[i], min_iou)
        out[i] = torch.where(forced >= 0, forced, out[i])
    return out, first


def dms(iou: Tensor, gt_valid: Tensor | None = None, threshold: float = 0.35, min_iou: float = 0.0) -> Tensor:
    """Standard two-step matching: SMS, then each unmatched face (max IoU > 0, >= min_iou) forces its best anchor."""
    iou, gt_valid, squeeze = _batched(iou, gt_valid)
    out, _ = _dms(iou, gt_valid, threshold, min_iou)
    return out[0] if squeeze else out


def _compensate(first: Tensor, score: Tensor, candidate: Tensor, need: Tensor) -> Tensor:
    """Per image [B, G, A]: each face j claims up to need[j] free anchors (first < 0) among its candidates,
    in the order sequential_compensation defines; anchors already assigned keep their face."""
    out = first.clone()
    for i in range(score.shape[0]):
        claimed = sequential_compensation(score[i], candidate[i], need[i], first[i] < 0)
        out[i] = torch.where(claimed >= 0, claimed, out[i])
    return out


def _nams(iou: Tensor, gt_valid: Tensor, n: int, threshold: float, candidate_iou: float) -> tuple[Tensor, Tensor]:
    """Batched NAMS; returns (assigned, first-step assignment)."""
    stage_one, first = _dms(iou, gt_valid, threshold, 0.0)
    matched = count_matches(stage_one, iou.shape[1])
    need = torch.where(gt_valid, (n - matched).clamp(min=0), torch.zeros_like(matched))
    return _compensate(stage_one, iou, iou > candidate_iou, need), first


def nams(iou: Tensor, n: int, gt_valid: Tensor | None = None, threshold: float = 0.35,
         candidate_iou: float = 0.1) -> Tensor:
    """S3FD scale compensation: DMS, then faces with M_j < n add their best free anchors with IoU > 0.1 up to n."""
    if int(n) < 1:
        raise ValueError(f"NAMS N must be >= 1, got {n}")
    iou, gt_valid, squeeze = _batched(iou, gt_valid)
    out, _ = _nams(iou, gt_valid, int(n), threshold, candidate_iou)
    return out[0] if squeeze else out


def _zcc(iou: Tensor, gt_valid: Tensor, threshold: float, n: int) -> Tensor:
    """Batched ZCC hard-face compensation."""
    first = _sms(iou, gt_valid, threshold)
    matched = count_matches(first, iou.shape[1])
    need = torch.where(gt_valid & (matched == 0), torch.full_like(matched, n), torch.zeros_like(matched))
    return _compensate(first, iou, iou > 0, need)


def zcc(iou: Tensor, gt_valid: Tensor | None = None, threshold: float = 0.35, n: int = 5) -> Tensor:
    """ZCC: SMS, then faces with M_j = 0 take their top-n free anchors by IoU (IoU > 0)."""
    iou, gt_valid, squeeze = _batched(iou, gt_valid)
    out = _zcc(iou, gt_valid, threshold, int(n))
    return out[0] if squeeze else out


def _oam(iou: Tensor, pred_iou: Tensor, gt_valid: Tensor, threshold: float, k: int, t: float
         ) -> tuple[Tensor, Tensor, Tensor]:
    """Batched OAM on [B, G, A]."""
    first = _sms(iou, gt_valid, threshold)
    matched = count_matches(first, iou.shape[1])
    need = torch.where(gt_valid, (k - matched).clamp(min=0), torch.zeros_like(matched))
    out = _compensate(first, pred_iou, pred_iou > t, need)
    compensated = (out >= 0) & (first < 0)
    quality = _best_value(pred_iou, gt_valid)
    own = torch.gather(pred_iou, 1, out.clamp(min=0)[:, None, :]).squeeze(1) if iou.shape[1] else quality
    quality = torch.where(compensated, own, quality)
    return out, compensated, quality


def oam(iou: Tensor, pred_iou: Tensor, gt_valid: Tensor | None = None, threshold: float = 0.35,
        k: int = 3, t: float = 0.8) -> tuple[Tensor, Tensor, Tensor]:
    """HAMBox online anchor mining (Algorithm 1): SMS, then outer faces (M_j < k) take up to k - M_j
    free anchors whose decoded box has IoU > t with them, best first.

    Returns (assigned [B, A], compensated [B, A] bool, quality F [B, A]): F is the compensated
    anchor's predicted-box IoU with its face, else the max over faces of the predicted-box IoU
    (0 without faces).
    """
    iou, gt_valid, squeeze = _batched(iou, gt_valid)
    pred_iou = pred_iou.unsqueeze(0) if squeeze else pred_iou
    if pred_iou.shape != iou.shape:
        raise ValueError(f"pred_iou shape {tuple(pred_iou.shape)} does not match iou {tuple(iou.shape)}")
    out, compensated, quality = _oam(iou, pred_iou, gt_valid, threshold, int(k), float(t))
    if squeeze:
        return out[0], compensated[0], quality[0]
    return out, compensated, quality


def match(strategy: str, iou: Tensor, gt_valid: Tensor | None = None, pred_iou: Tensor | None = None,
          threshold: float = 0.35, dms_min_iou: float = 0.0, nams_n: int | None = None,
          nams_candidate_iou: float = 0.1, zcc_n: int = 5, oam_k: int = 3, oam_t: float = 0.8) -> MatchResult:
    """Run one strategy on a batch and return the full MatchResult (batched [B, ...] fields)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown matching strategy {strategy!r}; expected one of {STRATEGIES}")
    iou, gt_valid, squeeze = _batched(iou, gt_valid)
    if squeeze and pred_iou is not None:
        pred_iou = pred_iou.unsqueeze(0)
    first = _sms(iou, gt_valid, threshold)
    quality = None
    if strategy == "sms":
        assigned = first
    elif strategy == "dms":
        assigned, _ = _dms(iou, gt_valid, threshold, dms_min_iou)
    elif strategy == "nams":
        if nams_n is None or int(nams_n) < 1:
            raise ValueError("NAMS needs its N (mean stage-one matches per face); set nams_n, e.g. via estimate_nams_n")
        assigned, _ = _nams(iou, gt_valid, int(nams_n), threshold, nams_candidate_iou)
    elif strategy == "zcc":
        assigned = _zcc(iou, gt_valid, threshold, int(zcc_n))
    else:
        if pred_iou is None:
            raise ValueError("OAM needs pred_iou (IoU of faces with the decoded predictions)")
        assigned, _, quality = _oam(iou, pred_iou, gt_valid, threshold, int(oam_k), float(oam_t))
    compensated = (assigned >= 0) & (assigned != first)
    result = MatchResult(assigned=assigned, first_step=first, compensated=compensated,
                         num_matched=count_matches(first, iou.shape[1]), quality=quality)
    if squeeze:
        result = MatchResult(*(None if f is None else f[0] for f in
                               (result.assigned, result.first_step, result.compensated, result.num_matched, result.quality)))
    return result


def mean_matches_per_face(gt_boxes: Sequence[Tensor], anchors: Tensor, threshold: float = 0.35) -> float:
    """Mean over all faces of the NAMS stage-one (DMS) match count M_j; NaN without faces."""
    total, faces = 0, 0
    for boxes in gt_boxes:
        if boxes.numel() == 0:
            continue
        iou = pairwise_iou(boxes.to(anchors), anchors)
        assigned = dms(iou, threshold=threshold)
        total += int((assigned >= 0).sum())
        faces += boxes.shape[0]
    return float("nan") if faces == 0 else total / faces


def estimate_nams_n(gt_boxes: Sequence[Tensor], anchors: Tensor, threshold: float = 0.35) -> int:
    """NAMS N = round(mean stage-one matches per face), at least 1 (spec §4.3)."""
    mean = mean_matches_per_face(gt_boxes, anchors, threshold)
    if mean != mean:
        raise ValueError("cannot estimate NAMS N without any face")
    return max(1, int(math.floor(mean + 0.5)))
