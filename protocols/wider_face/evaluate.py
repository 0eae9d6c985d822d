"""The WIDER FACE evaluation: match once, then score every setting (easy/medium/hard, attributes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protocols.wider_face import curves
from protocols.wider_face.ground_truth import ATTRIBUTE_VALUES, SETTINGS, WiderGroundTruth
from protocols.wider_face.matching import match_predictions
from protocols.wider_face.predictions import WiderPredictions

HEIGHT_BINS = (0, 10, 20, 50, 100, 300)  # face-height bins (pixels) for the breakdown


@dataclass(frozen=True, eq=False)
class SettingCurve:
    """One setting's dataset curve and AP, plus the per-image rows it sums."""

    name: str
    n_faces: int
    ap: float | None
    precision: np.ndarray  # [1000]
    recall: np.ndarray  # [1000]
    proposals: np.ndarray  # [1000] dataset sums
    true_positives: np.ndarray  # [1000]
    image_proposals: np.ndarray | None = None  # [n_images, 1000] (headline settings only)
    image_true_positives: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Matching:
    """Setting-independent part of an evaluation: the face each prediction hits, and when it enters."""

    choice: np.ndarray  # [n_boxes] global face index or -1
    counted: np.ndarray  # [n_boxes] first threshold index at which the prediction is counted
    image: np.ndarray  # [n_boxes] image index
    n_images: int
    evaluated: np.ndarray  # [n_boxes] bool: image has GT (predictions of other images contribute nothing)


def match(gt: WiderGroundTruth, predictions: WiderPredictions) -> Matching:
    """Normalise scores, find each prediction's face and each image's per-threshold cut-off."""
    semantics = predictions.semantics
    boxes = predictions.boxes
    offsets = predictions.offsets
    norm = curves.normalise_scores(boxes[:, 4], semantics)
    if semantics == "official" and gt.integer_boxes:
        mode = "first-int"
    else:
        mode = "first-float"
    choice = match_predictions(boxes, offsets, gt.boxes, gt.face_offsets, mode)
    entry = curves.entry_threshold(norm)
    has_faces = np.diff(gt.face_offsets) > 0
    evaluated = np.repeat(has_faces, np.diff(offsets))
    # An image without GT contributes nothing: drop its predictions from the cut-offs.
    entry = np.where(evaluated, entry, curves.THRESH_NUM)
    counted = curves.counted_from(entry, offsets)
    image = np.repeat(np.arange(gt.n_images), np.diff(offsets))
    return Matching(choice=choice, counted=counted, image=image, n_images=gt.n_images, evaluated=evaluated)


def score_setting(name: str, keep: np.ndarray, m: Matching, per_image: bool = False) -> SettingCurve:
    """PR curve and AP of one setting, given which faces count (all others are ignored)."""
    hit = m.choice >= 0
    counts = np.zeros(len(m.choice), dtype=bool)
    counts[hit] = keep[m.choice[hit]]
    ignored = hit & ~counts
    proposal = m.evaluated & ~ignored
    tp = np.zeros(len(m.choice), dtype=bool)
    candidates = np.flatnonzero(counts & m.evaluated)
    # A face is recalled by the first prediction (evaluation order) that hits it; later hits are FPs.
    _, first = np.unique(m.choice[candidates], return_index=True)
    tp[candidates[first]] = True
    proposals = curves.dataset_counts(m.counted, proposal)
    tps = curves.dataset_counts(m.counted, tp)
    image_p = curves.image_counts(m.counted, proposal, m.image, m.n_images) if per_image else None
    image_tp = curves.image_counts(m.counted, tp, m.image, m.n_images) if per_image else None
    n_faces = int(keep.sum())
    precision, recall = curves.pr_curve(proposals, tps, n_faces)
    ap = curves.voc_ap(recall, precision) if n_faces > 0 else None
    return SettingCurve(name=name, n_faces=n_faces, ap=ap, precision=precision, recall=recall,
                        proposals=proposals, true_positives=tps,
                        image_proposals=image_p, image_true_positives=image_tp)


def breakdown_masks(gt: WiderGroundTruth, base: str = "hard") -> dict[str, np.ndarray]:
    """Faces of `base` split by attribute value and by face height (each split is its own setting)."""
    base_keep = gt.keep[base]
    masks: dict[str, np.ndarray] = {}
    for attr, names in ATTRIBUTE_VALUES.items():
        if attr == "invalid" or attr not in gt.attributes:
            continue
        values = gt.attributes[attr]
        for value, label in names.items():
            masks[f"{attr}={label}"] = base_keep & (values == value)
    heights = gt.boxes[:, 3].astype(np.float64)
    edges = list(HEIGHT_BINS) + [np.inf]
    for lo, hi in zip(edges[:-1], edges[1:]):
        label = f"height={lo}-{hi}" if np.isfinite(hi) else f"height>={lo}"
        masks[label] = base_keep & (heights >= lo) & (heights < hi)
    return masks


def image_face_counts(gt: WiderGroundTruth, keep: np.ndarray) -> np.ndarray:
    """Kept faces per image."""
    image = np.repeat(np.arange(gt.n_images), np.diff(gt.face_offsets))
    return np.bincount(image[keep], minlength=gt.n_images).astype(np.int32)
