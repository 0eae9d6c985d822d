"""Straightforward reference: full-image masks, per-threshold Hungarian, the official list merge.

Slow and independent of the vectorised modules; used by the tests and as the benchmark's reference."""

from __future__ import annotations

import math

import numpy as np

from protocols.fddb import raster
from protocols.fddb.detections import FddbDetections
from protocols.fddb.ground_truth import FddbGroundTruth
from protocols.fddb.image_sizes import ImageSizes
from protocols.fddb.matching import DBL_MAX, filtered_matrix, hungarian_counts
from protocols.fddb.roc import RocCurve


def evaluate_reference(gt: FddbGroundTruth, dets: FddbDetections, sizes: ImageSizes,
                       convention: str = "opencv21", pi: float = math.pi) -> RocCurve:
    """The same ROC computed one image, one region, one threshold at a time."""
    cumulative: list[tuple[float, int, float, float, float]] = []  # (threshold, N, tp_cont, tp_disc, fp)
    for img in range(gt.n_images):
        w, h = int(sizes.width[img]), int(sizes.height[img])
        face_rows = gt.ellipses[gt.face_start[img]:gt.face_start[img + 1]]
        det_rows = dets.regions[dets.det_start[img]:dets.det_start[img + 1]]
        det_scores = dets.scores[dets.det_start[img]:dets.det_start[img + 1]]
        n_faces = len(face_rows)
        face_masks = [raster.ellipse_mask_reference(*row, w, h, convention, pi) for row in face_rows]
        if dets.format == "rect":
            det_masks = [raster.rectangle_mask_reference(*row, w, h) for row in det_rows]
        else:
            det_masks = [raster.ellipse_mask_reference(*row, w, h, convention, pi) for row in det_rows]
        matrix = np.zeros((n_faces, len(det_rows)))
        for i, fm in enumerate(face_masks):
            for j, dm in enumerate(det_masks):
                union = int(np.count_nonzero(fm | dm))
                matrix[i, j] = np.count_nonzero(fm & dm) / union if union else 0.0
        image_results = []
        if len(det_rows) == 0:
            image_results.append((DBL_MAX, n_faces, 0.0, 0.0, 0.0))
        for threshold in sorted(set(det_scores.tolist())):
            valid = det_scores >= threshold
            total, disc = hungarian_counts(filtered_matrix(matrix, valid))
            image_results.append((threshold, n_faces, total, float(disc), float(valid.sum() - disc)))
        cumulative = official_merge(cumulative, image_results)
    thresholds = np.array([r[0] for r in cumulative])
    n_total = cumulative[0][1] if cumulative else 0
    return RocCurve(threshold=thresholds, n_faces=int(n_total),
                    tp_disc=np.array([r[3] for r in cumulative]).astype(np.int64),
                    tp_cont=np.array([r[2] for r in cumulative]),
                    fp=np.array([r[4] for r in cumulative]).astype(np.int64))


def official_merge(cum: list, img: list) -> list:
    """Merge two ascending result lists as Results::merge does (sums, min threshold, N of the missing side)."""
    if not cum:
        return list(img)
    out = []
    n_cum, n_img = cum[0][1], img[0][1]
    i = j = 0
    while i < len(cum):
        if j < len(img):
            a, b = cum[i], img[j]
            out.append((min(a[0], b[0]), a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4]))
            if a[0] < b[0]:
                i += 1
            elif a[0] == b[0]:
                i += 1
                j += 1
            else:
                j += 1
        else:
            for a in cum[i:]:
                out.append((a[0], a[1] + n_img, a[2], a[3], a[4]))
            i = len(cum)
    for b in img[j:]:
        out.append((b[0], b[1] + n_cum, b[2], b[3], b[4]))
    return out
