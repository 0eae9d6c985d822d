"""The WIDER FACE evaluation: match once, then score every setting (easy/medium/hard, attributes)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from facebench.parallel import map_ranges
from protocols.wider_face import curves
from protocols.wider_face.ground_truth import ATTRIBUTE_VALUES, WiderGroundTruth
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
    per_image: bool = False  # whether the per-image rows are kept (headline settings)
    matching: "Matching | None" = None
    ignored: np.ndarray | None = None  # predictions hitting a face this setting ignores
    tp: np.ndarray | None = None  # predictions that recall a face

    # The per-image rows are [n_images, 1000] each: built only when records or a bootstrap ask for them.
    @cached_property
    def image_proposals(self) -> np.ndarray | None:
        """[n_images, 1000] proposals counted per image and threshold (headline settings only)."""
        if not self.per_image:
            return None
        return self.matching.evaluated_image_counts - _image_counts(self.matching, self.ignored)

    @cached_property
    def image_true_positives(self) -> np.ndarray | None:
        """[n_images, 1000] true positives counted per image and threshold (headline settings only)."""
        return _image_counts(self.matching, self.tp) if self.per_image else None


@dataclass(frozen=True, eq=False)
class Matching:
    """Setting-independent part of an evaluation: the face each prediction hits, and when it is counted."""

    choice: np.ndarray  # [n_boxes] global face index or -1
    counted: np.ndarray  # [n_boxes] first threshold index at which the prediction is counted
    image: np.ndarray  # [n_boxes] image index
    n_images: int
    hits: np.ndarray  # indices of evaluated predictions that hit a face (overlap >= 0.5)
    evaluated: np.ndarray  # [n_boxes] bool: the image has faces (others contribute nothing)
    evaluated_counts: np.ndarray  # [1000] evaluated predictions counted per threshold

    @cached_property
    def evaluated_image_counts(self) -> np.ndarray:
        """[n_images, 1000] evaluated predictions counted per image and threshold."""
        return curves.image_counts(self.counted, self.evaluated, self.image, self.n_images)


def match(gt: WiderGroundTruth, predictions: WiderPredictions) -> Matching:
    """Normalise scores, find each prediction's face and the threshold from which it is counted."""
    semantics = predictions.semantics
    boxes = predictions.boxes
    offsets = predictions.offsets
    norm = curves.normalise_scores(boxes[:, 4], semantics)
    mode = "first-int" if semantics == "official" and gt.integer_boxes else "first-float"
    face_offsets = gt.face_offsets

    def match_images(i0: int, i1: int) -> np.ndarray:
        p0, f0 = offsets[i0], face_offsets[i0]
        local = match_predictions(boxes[p0:offsets[i1]], offsets[i0:i1 + 1] - p0, gt.boxes[f0:face_offsets[i1]],
                                  face_offsets[i0:i1 + 1] - f0, mode)
        return np.where(local >= 0, local + f0, -1)

    # Matching is independent per image: split the images over the cores when the set is large.
    # Threads, since numpy releases the GIL in the heavy calls; chunks of ~64 k predictions stay in cache.
    min_images = 400 if len(boxes) >= 200_000 else gt.n_images + 1
    chunk_images = -(-gt.n_images // max(1, -(-len(boxes) // 65_536)))
    choice = np.concatenate(map_ranges(match_images, gt.n_images, min_items=min_images, threads=True,
                                       chunk_items=chunk_images))
    entry = curves.entry_threshold(norm)
    has_faces = np.diff(gt.face_offsets) > 0
    evaluated = np.repeat(has_faces, np.diff(offsets))
    # An image without GT (or without predictions) contributes nothing to the curve.
    entry = np.where(evaluated, entry, curves.THRESH_NUM)
    counted = curves.counted_from(entry, offsets)
    image = np.repeat(np.arange(gt.n_images), np.diff(offsets))
    return Matching(choice=choice, counted=counted, image=image, n_images=gt.n_images,
                    hits=np.flatnonzero((choice >= 0) & evaluated),
                    evaluated=evaluated, evaluated_counts=curves.dataset_counts(counted, evaluated))


def score_setting(name: str, keep: np.ndarray, m: Matching, per_image: bool = False) -> SettingCurve:
    """PR curve and AP of one setting, given which faces count (all others are ignored)."""
    faces = m.choice[m.hits]
    counts = keep[faces]
    ignored = m.hits[~counts]
    candidates = m.hits[counts]
    # A face is recalled by the first prediction (evaluation order) that hits it; later hits are FPs.
    _, first = np.unique(faces[counts], return_index=True)
    tp = candidates[first]
    proposals = m.evaluated_counts - _counts(m, ignored)
    tps = _counts(m, tp)
    n_faces = int(keep.sum())
    precision, recall = curves.pr_curve(proposals, tps, n_faces)
    ap = curves.voc_ap(recall, precision) if n_faces > 0 else None
    return SettingCurve(name=name, n_faces=n_faces, ap=ap, precision=precision, recall=recall,
                        proposals=proposals, true_positives=tps, per_image=per_image, matching=m if per_image else None,
                        ignored=ignored if per_image else None, tp=tp if per_image else None)


def _counts(m: Matching, index: np.ndarray) -> np.ndarray:
    return np.cumsum(np.bincount(m.counted[index], minlength=curves.THRESH_NUM + 1))[:curves.THRESH_NUM]


def image_rows(counted: np.ndarray, image: np.ndarray, index: np.ndarray, n_images: int) -> np.ndarray:
    """[n_images, 1000]: the predictions `index` counted per image and threshold (a per-image row block)."""
    every = np.ones(len(index), dtype=bool)
    return curves.image_counts(counted[index], every, image[index], n_images)


def _image_counts(m: Matching, index: np.ndarray) -> np.ndarray:
    return image_rows(m.counted, m.image, index, m.n_images)


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
