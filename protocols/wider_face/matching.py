"""Which GT face each prediction hits: the official int32 overlap rules, or float IoU (port, 2016 GT)."""

from __future__ import annotations

import numpy as np

INT32_MIN = np.int64(-(2 ** 31))
INT32_MAX = np.int64(2 ** 31 - 1)
IOU_THRESHOLD = 0.5


def round_half_away(x: np.ndarray) -> np.ndarray:
    """MATLAB's round: ties away from zero (exact, no x + 0.5 error)."""
    r = np.round(x)
    tie = np.abs(x - np.trunc(x)) == 0.5
    return np.where(tie, np.trunc(x) + np.sign(x), r)


def to_int32(x: np.ndarray) -> np.ndarray:
    """MATLAB double -> int32 conversion: round half away, saturate (as int64 values)."""
    return np.clip(round_half_away(x), INT32_MIN, INT32_MAX).astype(np.int64)


def sat(x: np.ndarray) -> np.ndarray:
    """Saturate int64 values to the int32 range (MATLAB integer arithmetic)."""
    return np.clip(x, INT32_MIN, INT32_MAX)


def int32_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """MATLAB int32 ./ int32: rounded half away, x/0 saturates to intmax/intmin, 0/0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = num.astype(np.float64) / den.astype(np.float64)
    q = np.where(den == 0, np.sign(num) * np.float64(INT32_MAX + (num < 0)), q)
    return to_int32(q)


def official_int_overlap(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """boxoverlap under MATLAB int32 rules for pairs: gt int [K,4] x,y,w,h and pred float [K,4] x,y,w,h."""
    g = gt.astype(np.int64)
    gx1, gy1 = g[:, 0], g[:, 1]
    gx2, gy2 = sat(gx1 + g[:, 2]), sat(gy1 + g[:, 3])
    px1, py1 = pred[:, 0], pred[:, 1]
    px2, py2 = px1 + pred[:, 2], py1 + pred[:, 3]
    x1 = np.maximum(gx1, to_int32(px1))
    y1 = np.maximum(gy1, to_int32(py1))
    x2 = np.minimum(gx2, to_int32(px2))
    y2 = np.minimum(gy2, to_int32(py2))
    w = sat(sat(x2 - x1) + 1)
    h = sat(sat(y2 - y1) + 1)
    inter = sat(w * h)
    gt_area = sat(sat(sat(gx2 - gx1) + 1) * sat(sat(gy2 - gy1) + 1))
    pred_area = (px2 - px1 + 1) * (py2 - py1 + 1)
    union = sat(to_int32(gt_area.astype(np.float64) + pred_area) - inter)
    overlap = int32_divide(inter, union)
    overlap[(w <= 0) | (h <= 0)] = 0
    return overlap.astype(np.float64)


def float_overlap(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """boxoverlap in double (+1 convention) for pairs of x,y,w,h boxes: the port and the 2016 GT."""
    g = gt.astype(np.float64)
    gx2, gy2 = g[:, 0] + g[:, 2], g[:, 1] + g[:, 3]
    px2, py2 = pred[:, 0] + pred[:, 2], pred[:, 1] + pred[:, 3]
    iw = np.minimum(gx2, px2) - np.maximum(g[:, 0], pred[:, 0]) + 1
    ih = np.minimum(gy2, py2) - np.maximum(g[:, 1], pred[:, 1]) + 1
    inter = iw * ih
    union = (gx2 - g[:, 0] + 1) * (gy2 - g[:, 1] + 1) + (px2 - pred[:, 0] + 1) * (py2 - pred[:, 1] + 1) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        overlap = inter / union
    overlap[(iw <= 0) | (ih <= 0)] = 0.0
    return overlap


COORD_LIMIT = 5e6  # predictions beyond this (or with negative sizes) take the exhaustive path
KEY_CLIP = 1e7
KEY_SPAN = 4e7


def _may_reach_half(face: dict, pred: dict, pair_face: np.ndarray, pair_pred: np.ndarray) -> np.ndarray:
    """Cheap float bound: False only where the overlap is surely < 0.5 under both rules.

    Rounding the prediction's corners widens the intersection by at most 1 px per axis and moves the rounded
    union by at most 0.5, so with I = (iw + 1)(ih + 1) and S = gt_area + pred_area - 0.5 a hit needs 3 I >= S.
    """
    iw = np.minimum(face["x2"][pair_face], pred["x2"][pair_pred]) - \
        np.maximum(face["x1"][pair_face], pred["x1"][pair_pred]) + 2.0
    ih = np.minimum(face["y2"][pair_face], pred["y2"][pair_pred]) - \
        np.maximum(face["y1"][pair_face], pred["y1"][pair_pred]) + 2.0
    inter_hi = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    total = face["area"][pair_face] + pred["area"][pair_pred] - 0.5
    return (iw > 0) & (ih > 0) & ((3.0 * inter_hi >= total * (1 - 1e-9)) | (total - inter_hi <= 0))


def _columns(boxes: np.ndarray) -> dict:
    """x1, y1, x2, y2 and the +1 area of x, y, w, h boxes, as contiguous float64 columns."""
    x1, y1, w, h = (np.ascontiguousarray(boxes[:, k], dtype=np.float64) for k in range(4))
    return {"x1": x1, "y1": y1, "x2": x1 + w, "y2": y1 + h, "w": w, "h": h, "area": (w + 1) * (h + 1)}


def _window_pairs(pred: dict, pred_image, face: dict, face_image, n_images, regular):
    """Candidate (prediction, face) pairs by a sorted sweep over face x1, per image.

    With overlap >= 0.5 a face is at most 3 (w + 2) + 0.5 wide (int rounding included) and no wider than the
    image's widest face, and it must start within [x1 - 0.5 - its width, x2 + 0.5] of the prediction.
    """
    gx1 = np.clip(face["x1"], -KEY_CLIP, KEY_CLIP)
    order = np.lexsort((gx1, face_image))
    keys = face_image[order] * KEY_SPAN + gx1[order]
    widest = np.full(n_images, -np.inf)
    np.maximum.at(widest, face_image, face["w"])
    preds = np.flatnonzero(regular & np.isfinite(widest[pred_image]))
    x1, w, image = pred["x1"][preds], pred["w"][preds], pred_image[preds]
    lo = x1 - 1.5 - np.minimum(3.0 * (w + 2.0) + 0.5, widest[image])
    hi = x1 + w + 1.0
    base = image * KEY_SPAN
    left = np.searchsorted(keys, base + np.clip(lo, -KEY_CLIP, KEY_CLIP), side="left")
    right = np.searchsorted(keys, base + np.clip(hi, -KEY_CLIP, KEY_CLIP), side="right")
    n = np.maximum(right - left, 0)
    pair_pred = np.repeat(preds, n)
    first = np.cumsum(n) - n
    slot = np.arange(pair_pred.size) - np.repeat(first - left, n)
    return pair_pred, order[slot]


def _all_pairs(preds, pred_image, face_offsets):
    """Every face of the image for each of the given predictions (the exhaustive path)."""
    starts = face_offsets[pred_image[preds]]
    n = face_offsets[pred_image[preds] + 1] - starts
    pair_pred = np.repeat(preds, n)
    first = np.concatenate(([0], np.cumsum(n)[:-1])) if len(n) else np.zeros(0, np.int64)
    pair_face = np.arange(pair_pred.size) - np.repeat(first, n) + np.repeat(starts, n)
    return pair_pred, pair_face


def match_predictions(pred_boxes: np.ndarray, pred_offsets: np.ndarray, gt_boxes: np.ndarray,
                      face_offsets: np.ndarray, mode: str) -> np.ndarray:
    """Per prediction: the global index of the face it hits (overlap >= 0.5), else -1.

    mode "first-int": the official tool with int32 GT (first face with the largest rounded overlap);
    mode "first-float": first face with the largest double overlap (official tool with float GT, and the
    Python port, whose argmax also takes the first maximum).
    """
    overlap_fn = official_int_overlap if mode == "first-int" else float_overlap
    n_boxes = len(pred_boxes)
    choice = np.full(n_boxes, -1, dtype=np.int64)
    if n_boxes == 0 or len(gt_boxes) == 0:
        return choice
    pred_image = np.repeat(np.arange(len(pred_offsets) - 1), np.diff(pred_offsets))
    gt_image = np.repeat(np.arange(len(face_offsets) - 1), np.diff(face_offsets))
    pred, face = _columns(pred_boxes), _columns(gt_boxes)
    # With w, h >= 0 every corner lies within COORD_LIMIT iff x1, y1 >= -limit and x2, y2 <= limit.
    regular = (pred["w"] >= 0) & (pred["h"] >= 0) & (pred["x1"] >= -COORD_LIMIT) & (pred["y1"] >= -COORD_LIMIT) \
        & (pred["x2"] <= COORD_LIMIT) & (pred["y2"] <= COORD_LIMIT)
    pair_pred, pair_face = _window_pairs(pred, pred_image, face, gt_image, len(face_offsets) - 1, regular)
    if not regular.all():
        extra_pred, extra_face = _all_pairs(np.flatnonzero(~regular), pred_image, face_offsets)
        pair_pred = np.concatenate((pair_pred, extra_pred))
        pair_face = np.concatenate((pair_face, extra_face))
    keep = _may_reach_half(face, pred, pair_face, pair_pred) | ~regular[pair_pred]
    pair_pred, pair_face = pair_pred[keep], pair_face[keep]
    if pair_pred.size == 0:
        return choice
    overlap = overlap_fn(gt_boxes[pair_face], pred_boxes[pair_pred, :4])
    strong = overlap >= IOU_THRESHOLD
    pair_pred, pair_face, overlap = pair_pred[strong], pair_face[strong], overlap[strong]
    if pair_pred.size == 0:
        return choice
    # Largest overlap first, then the first face in annotation order (MATLAB max / numpy argmax).
    order = np.lexsort((pair_face, -overlap, pair_pred))
    first = np.concatenate(([True], pair_pred[order][1:] != pair_pred[order][:-1]))
    best = order[first]
    choice[pair_pred[best]] = pair_face[best]
    return choice
