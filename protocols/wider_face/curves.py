"""Score normalisation, the 1000-threshold sampling, per-image PR rows and VOC AP."""

from __future__ import annotations

import numpy as np

THRESH_NUM = 1000
FLOAT32_MIN_NORMAL = float(np.finfo(np.float32).tiny)
FLOAT32_MAX = float(np.finfo(np.float32).max)


def thresholds(thresh_num: int = THRESH_NUM) -> np.ndarray:
    """The official thresholds 1 - t/N for t = 1..N, in double, decreasing."""
    return 1.0 - np.arange(1, thresh_num + 1, dtype=np.float64) / thresh_num


def normalise_scores(scores: np.ndarray, semantics: str) -> np.ndarray:
    """Global min-max normalisation with the official (or the port's) initial bounds."""
    if semantics == "official":
        hi, lo = FLOAT32_MIN_NORMAL, FLOAT32_MAX
    else:
        hi, lo = 0.0, 1.0
    if scores.size:
        hi = max(hi, float(scores.max()))
        lo = min(lo, float(scores.min()))
    with np.errstate(divide="ignore", invalid="ignore"):
        return (scores - lo) / (hi - lo)


def entry_threshold(norm_scores: np.ndarray, thresh_num: int = THRESH_NUM) -> np.ndarray:
    """0-based index of the first threshold a score passes (score >= 1 - (t+1)/N); N when never."""
    ascending = thresholds(thresh_num)[::-1]
    passed = np.searchsorted(ascending, norm_scores, side="right")  # thresholds <= score
    entry = thresh_num - passed
    entry[np.isnan(norm_scores)] = thresh_num
    return entry


def counted_from(entry: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per prediction, the first threshold index at which image_pr_info counts it.

    image_pr_info counts the predictions up to the last one (in evaluation order) that passes, so a
    prediction is counted once any prediction at or after it in its image has passed: the reverse running
    minimum of `entry` within each image. For score-sorted images this is `entry` itself.
    """
    if entry.size == 0:
        return entry.copy()
    image = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    span = np.int64(entry.max()) + 1
    shifted = entry.astype(np.int64) + image * span
    # Reversed, image indices decrease, so each image's values lie below the previous ones: the running
    # minimum restarts at every image boundary.
    running = np.minimum.accumulate(shifted[::-1])[::-1]
    return running - image * span


def dataset_counts(counted: np.ndarray, flags: np.ndarray, thresh_num: int = THRESH_NUM) -> np.ndarray:
    """[N]: flagged predictions counted at each threshold, summed over images."""
    hist = np.bincount(counted[flags], minlength=thresh_num + 1)
    return np.cumsum(hist)[:thresh_num]


def image_counts(counted: np.ndarray, flags: np.ndarray, image: np.ndarray, n_images: int,
                 thresh_num: int = THRESH_NUM) -> np.ndarray:
    """[n_images, N]: flagged predictions counted at each threshold, per image (the per-image rows)."""
    hist = np.bincount(image[flags] * (thresh_num + 1) + counted[flags], minlength=n_images * (thresh_num + 1))
    return np.cumsum(hist.reshape(n_images, thresh_num + 1), axis=1)[:, :thresh_num].astype(np.int32)


def pr_curve(proposals: np.ndarray, true_positives: np.ndarray, n_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Dataset precision and recall per threshold (0/0 precision is NaN, as in the official tool)."""
    proposals = proposals.astype(np.float64)
    tp = true_positives.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = tp / proposals
        recall = tp / n_faces
    return precision, recall


def voc_ap(recall: np.ndarray, precision: np.ndarray, nan_skipping: bool = True) -> float:
    """All-point interpolated AP (VOCap); NaN precisions take their successor's value (MATLAB max)."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    if nan_skipping:
        # MATLAB max(a, b) ignores a NaN operand: a reversed running fmax is exactly that sweep.
        mpre = np.fmax.accumulate(mpre[::-1])[::-1]
    else:
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changed = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[changed] - mrec[changed - 1]) * mpre[changed]))
