"""PR curve and VOC average precision as the face-eval toolbox computes them (§3.4)."""

from __future__ import annotations

import numpy as np


def precision_recall(tp: np.ndarray, fp: np.ndarray, n_positives: int) -> tuple[np.ndarray, np.ndarray]:
    """One (recall, precision) point per detection in score order; dropped detections repeat the last point."""
    tp_cum = np.cumsum(np.asarray(tp, dtype=np.float64))
    fp_cum = np.cumsum(np.asarray(fp, dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp_cum / n_positives
        # Leading dropped detections give 0/0 = NaN precision, as in the toolbox.
        precision = tp_cum / (fp_cum + tp_cum)
    return recall, precision


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP (the toolbox's VOCap): area under the precision envelope at recall steps."""
    mrec = np.concatenate(([0.0], np.asarray(recall, dtype=np.float64), [1.0]))
    mpre = np.concatenate(([0.0], np.asarray(precision, dtype=np.float64), [0.0]))
    # Envelope from the right, never touching the first sentinel. NaN precisions only occur as a prefix
    # (before the first TP/FP); the toolbox's builtin max keeps them NaN and they sit at recall 0, off the sum.
    body = mpre[1:]
    envelope = np.fmax.accumulate(body[::-1])[::-1]
    mpre[1:] = np.where(np.isnan(body), np.nan, envelope)
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))


def voc_ap_11point(recall: np.ndarray, precision: np.ndarray) -> float:
    """The 11-point AP the toolbox computes but does not show; NaN when a NaN precision reaches a maximum."""
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    total = 0.0
    for threshold in np.linspace(0, 1, 11):
        values = precision[recall >= threshold]
        # np.max propagates NaN like the toolbox's max: leading dropped detections make the whole sum NaN.
        total = total + (float(np.max(values)) if values.size else 0.0) / 11.0
    return total


def curve_outline(recall: np.ndarray, precision: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The PR polyline's corner points only (drops repeated and collinear same-recall points): same drawing."""
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    finite = np.isfinite(recall) & np.isfinite(precision)
    recall, precision = recall[finite], precision[finite]
    n = len(recall)
    if n <= 2:
        return recall, precision
    keep = np.ones(n, dtype=bool)
    # An interior point is redundant when it shares its recall with both neighbours (a vertical run of FPs),
    # or repeats its predecessor exactly (a dropped detection).
    same_prev = recall[1:-1] == recall[:-2]
    same_next = recall[1:-1] == recall[2:]
    repeat = same_prev & (precision[1:-1] == precision[:-2])
    keep[1:-1] = ~((same_prev & same_next) | repeat)
    return recall[keep], precision[keep]
