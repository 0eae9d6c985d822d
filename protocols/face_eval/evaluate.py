"""face-eval evaluation: size filter, iterative box-style correction, matching, PR and AP, as a frozen result."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from facebench.errors import warn
from facebench.results import make_document, sha256_files

from protocols.face_eval.curve import curve_outline, precision_recall, voc_ap, voc_ap_11point
from protocols.face_eval.detections import Detections
from protocols.face_eval.ground_truth import FaceEvalGroundTruth, minimum_detection_size, require_countable_faces
from protocols.face_eval.matching import match_detections, size_filter_mask

PROTOCOL = "face-eval"
# The toolbox revision the rules were read from (zzmcdc/face-eval, mirror of bitbucket marcopede/face-eval).
PROTOCOL_VERSION = "mathias2014-d5f4d0b"
DEFAULT_ITERATIONS = 5
DEFAULT_OVERLAP = 0.5
# Single-operating-point baselines (plotted as a point, AP shown as -1 by the toolbox) and Picasa's threshold.
POINT_BASELINES = ("Face++", "Picasa", "Face")
PICASA_OVERLAP = 0.1


@dataclass(frozen=True)
class BoxCorrection:
    """One iteration's fitted mean correction over its TP pairs (NaN when it had no TP)."""

    tx: float
    ty: float
    sx: float
    sy: float
    n_tp: int


@dataclass(frozen=True)
class FaceEvalResult:
    """AP and PR of one detection file on AFW or PASCAL Face, with the per-detection records behind them."""

    benchmark: str
    annotation_style: str
    ground_truth_path: str
    ground_truth_sha256: str
    detections_path: str
    detections_sha256: str | None
    detections_format: str
    iterations: int
    overlap_threshold: float
    min_width: int
    min_height: int
    min_pixels: int
    ap: float
    ap_11point: float
    recall: np.ndarray  # (D,) one point per kept detection, score order
    precision: np.ndarray
    # Records, per kept detection in score order (what the metrics are sums of).
    tp: np.ndarray
    fp: np.ndarray
    dropped: np.ndarray  # best overlap > threshold with an ignored GT: neither TP nor FP
    scores: np.ndarray
    image_index: np.ndarray
    image_keys: tuple[str, ...]  # the GT images, then unknown ids (no GT) that kept detections point to
    positives_per_image: np.ndarray
    n_positives: int
    n_gt_boxes: int
    n_gt_ignored: int
    n_gt_flagged: int
    n_detections_read: int
    n_detections_filtered: int
    n_detections_unknown_image: int  # read detections whose image id is not in the ground truth (all FP)
    corrections: tuple[BoxCorrection, ...]  # fits applied before the reported PR (iterations - 1 of them)

    @property
    def n_detections(self) -> int:
        """Detections evaluated (after the size filter)."""
        return int(len(self.tp))

    def metrics(self) -> dict[str, Any]:
        """The JSON `metrics` block."""
        n_tp = int(self.tp.sum())
        n_fp = int(self.fp.sum())
        return {
            "ap": self.ap,
            "ap_percent": self.ap * 100.0,
            "ap_11point": self.ap_11point,
            "recall_at_last_detection": float(self.recall[-1]) if len(self.recall) else 0.0,
            "precision_at_last_detection": float(self.precision[-1]) if len(self.precision) else None,
            "n_tp": n_tp,
            "n_fp": n_fp,
            "n_dropped": int(self.dropped.sum()),
            "n_detections": self.n_detections,
            "n_detections_read": self.n_detections_read,
            "n_detections_filtered": self.n_detections_filtered,
            "n_detections_unknown_image": self.n_detections_unknown_image,
            "n_positives": self.n_positives,
            "n_gt_boxes": self.n_gt_boxes,
            "n_gt_ignored": self.n_gt_ignored,
            "n_gt_flagged": self.n_gt_flagged,
        }

    def settings(self) -> dict[str, Any]:
        """The JSON `settings` block."""
        return {
            "annotations": os.path.basename(self.ground_truth_path),
            "annotation_style": self.annotation_style,
            "detections": self.detections_path,
            "detections_format": self.detections_format,
            "iterations": self.iterations,
            "overlap_threshold": self.overlap_threshold,
            "min_width": self.min_width,
            "min_height": self.min_height,
            "min_detection_pixels": self.min_pixels,
        }

    def to_document(self) -> dict[str, Any]:
        """The facebench result JSON (common envelope + PR outline + box-correction fits)."""
        recall, precision = curve_outline(self.recall, self.precision)
        return make_document(
            benchmark=self.benchmark, protocol=PROTOCOL, protocol_version=PROTOCOL_VERSION,
            settings=self.settings(), metrics=self.metrics(), ground_truth_sha256=self.ground_truth_sha256,
            curves={"pr": {"recall": recall, "precision": precision}},
            extra={"detections_sha256": self.detections_sha256,
                   "box_correction": [c.__dict__ for c in self.corrections]})

    def save_records(self, path: str | os.PathLike) -> None:
        """Write the per-detection and per-image records as a compressed .npz (input for bootstrap CIs)."""
        np.savez_compressed(
            os.fspath(path), tp=self.tp, fp=self.fp, dropped=self.dropped, scores=self.scores,
            image_index=self.image_index.astype(np.int32), image_keys=np.array(self.image_keys, dtype=str),
            positives_per_image=self.positives_per_image.astype(np.int32), ap=np.float64(self.ap),
            iterations=np.int32(self.iterations))


def records_ap(tp: np.ndarray, fp: np.ndarray, n_positives: int) -> float:
    """AP from score-ordered TP/FP flags (e.g. of a bootstrap resample of images)."""
    recall, precision = precision_recall(tp, fp, n_positives)
    return voc_ap(recall, precision)


def correct_boxes(boxes: np.ndarray, correction: BoxCorrection) -> np.ndarray:
    """Apply a mean translation (in box units) and scale about the box centre: the toolbox's transf_dets."""
    x1, y1, x2, y2 = boxes.T
    # Boxes near float range may overflow to inf/NaN (then FPs), as with the toolbox's Python floats.
    with np.errstate(over="ignore", invalid="ignore"):
        half_w = (x2 - x1) / 2.0
        half_h = (y2 - y1) / 2.0
        cx = (x2 + x1) / 2.0 + correction.tx * half_w * 2
        cy = (y2 + y1) / 2.0 + correction.ty * half_h * 2
        return np.stack([cx - half_w * correction.sx, cy - half_h * correction.sy,
                         cx + half_w * correction.sx, cy + half_h * correction.sy], axis=1)


def fit_correction(det_boxes: np.ndarray, gt_boxes: np.ndarray) -> BoxCorrection:
    """Mean centre offset (relative to detection size) and size ratio over TP pairs given in score order."""
    n = len(det_boxes)
    if n == 0:
        return BoxCorrection(np.nan, np.nan, np.nan, np.nan, 0)
    dx1, dy1, dx2, dy2 = det_boxes.T
    gx1, gy1, gx2, gy2 = gt_boxes.T
    det_w, det_h = dx2 - dx1, dy2 - dy1
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tx = ((gx2 + gx1) / 2.0 - (dx2 + dx1) / 2.0) / det_w
        ty = ((gy2 + gy1) / 2.0 - (dy2 + dy1) / 2.0) / det_h
        sx = (gx2 - gx1) / det_w
        sy = (gy2 - gy1) / det_h
    # np.mean in TP (score) order reproduces the toolbox's numpy.mean of its lists bit for bit.
    return BoxCorrection(float(np.mean(tx)), float(np.mean(ty)), float(np.mean(sx)), float(np.mean(sy)), n)


def check_overlap_threshold(value: float) -> None:
    """The IoU threshold must be a finite number strictly between 0 and 1 (ValueError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0.0 < float(value) < 1.0:
        raise ValueError(f"overlap threshold must be a number in (0, 1), got {value!r}")


def unknown_id_warning(detections: Detections, unknown: np.ndarray, gt: FaceEvalGroundTruth) -> str:
    """The one-line warning for detections whose image id is not in the ground truth."""
    first = int(unknown[0])
    return (f"{detections.location(first)}: {unknown.size} detection(s) with image ids not in "
            f"{os.path.basename(gt.path)} counted as false positives (first: {str(detections.keys[first])!r}; "
            + ("ids keep a folder part, as in the toolbox: write bare image names; "
               if any(sep in str(detections.keys[first]) for sep in "/\\") else "")
            + "--strict-ids makes this an error)")


def records_images(gt: FaceEvalGroundTruth, keys: np.ndarray, det_image: np.ndarray) \
        -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Image index, image keys and positives per image for the records: each unknown id becomes an extra image
    without GT after the real ones, so that an image-level bootstrap resamples its FPs like any other image's."""
    unknown = det_image < 0
    extra = tuple(dict.fromkeys(keys[unknown].tolist()))
    if not extra:
        return det_image, gt.image_keys, gt.positives_per_image
    lookup = {key: gt.n_images + i for i, key in enumerate(extra)}
    index = det_image.copy()
    index[unknown] = [lookup[k] for k in keys[unknown].tolist()]
    positives = np.concatenate((gt.positives_per_image, np.zeros(len(extra), dtype=np.int64)))
    return index, gt.image_keys + extra, positives


def evaluate(gt: FaceEvalGroundTruth, detections: Detections, *, iterations: int = DEFAULT_ITERATIONS,
             overlap_threshold: float = DEFAULT_OVERLAP, min_pixels: int | None = None,
             strict_ids: bool = False) -> FaceEvalResult:
    """The toolbox's evaluate_optim: PR/AP of the iteration `iterations` (after iterations - 1 corrections).
    Detections of image ids not in the ground truth are FPs (one warning), or an InputError with strict_ids."""
    if int(iterations) != iterations or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1 (1 = no box correction), got {iterations!r}")
    iterations = int(iterations)
    check_overlap_threshold(overlap_threshold)
    require_countable_faces(gt)
    if min_pixels is None:
        min_pixels = minimum_detection_size(gt.min_width, gt.min_height)
    image_index = detections.image_indices(gt, strict=strict_ids)
    unknown = np.flatnonzero(image_index < 0)
    if unknown.size:
        warn(unknown_id_warning(detections, unknown, gt))
    keep = size_filter_mask(detections.boxes, min_pixels)
    # Stable descending sort of file order = the toolbox's stable sorts on load and in every iteration.
    order = np.flatnonzero(keep)[np.argsort(-detections.scores[keep], kind="stable")]
    boxes = detections.boxes[order]
    det_image = image_index[order]

    corrections: list[BoxCorrection] = []
    for iteration in range(iterations):
        outcome = match_detections(det_image, boxes, gt.boxes, gt.ignored, gt.offsets, overlap_threshold)
        if iteration == iterations - 1:
            break  # the reported PR is this one; the toolbox's last fit is never used
        hits = np.flatnonzero(outcome.tp)
        correction = fit_correction(boxes[hits], gt.boxes[outcome.gt_index[hits]])
        corrections.append(correction)
        boxes = correct_boxes(boxes, correction)

    recall, precision = precision_recall(outcome.tp, outcome.fp, gt.n_positives)
    record_index, record_keys, positives = records_images(gt, detections.keys[order], det_image)
    try:
        det_sha = sha256_files([detections.path])
    except OSError:
        det_sha = None
    return FaceEvalResult(
        benchmark=gt.dataset, annotation_style=gt.style, ground_truth_path=gt.path, ground_truth_sha256=gt.sha256,
        detections_path=detections.path, detections_sha256=det_sha, detections_format=detections.format,
        iterations=iterations, overlap_threshold=float(overlap_threshold), min_width=gt.min_width,
        min_height=gt.min_height, min_pixels=int(min_pixels), ap=voc_ap(recall, precision),
        ap_11point=voc_ap_11point(recall, precision), recall=recall, precision=precision, tp=outcome.tp,
        fp=outcome.fp, dropped=outcome.dropped, scores=detections.scores[order], image_index=record_index,
        image_keys=record_keys, positives_per_image=positives, n_positives=gt.n_positives,
        n_gt_boxes=int(len(gt.boxes)), n_gt_ignored=int(gt.ignored.sum()), n_gt_flagged=int(gt.flagged.sum()),
        n_detections_read=len(detections), n_detections_filtered=int((~keep).sum()),
        n_detections_unknown_image=int(unknown.size),
        corrections=tuple(corrections))


def is_point_baseline(path: str | os.PathLike) -> bool:
    """The toolbox's rule: files named Face++.*, Picasa.* or Face.* (Face.com) are single operating points."""
    return os.path.basename(os.fspath(path)).split(".")[0] in POINT_BASELINES


def baseline_overlap(path: str | os.PathLike) -> float:
    """Picasa's hand-checked boxes are matched at overlap 0.1; every other file at 0.5."""
    return PICASA_OVERLAP if os.path.basename(os.fspath(path)).split(".")[0] == "Picasa" else DEFAULT_OVERLAP
