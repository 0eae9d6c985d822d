"""A literal, per-prediction, per-threshold implementation of the official WIDER FACE evaluation.

Slow on purpose: it follows spec §1.4-1.6 statement by statement, so tests and the benchmark can check the
vectorised evaluation against it (parity on random inputs, and the speed ratio).
"""

from __future__ import annotations

import math

import numpy as np

from protocols.wider_face.curves import FLOAT32_MAX, FLOAT32_MIN_NORMAL, voc_ap

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1



def _sat(x: float) -> int:
    return max(INT32_MIN, min(INT32_MAX, x))


def _to_i32(x: float) -> int:
    if x >= 0:
        r = math.floor(x) + (1 if x - math.floor(x) >= 0.5 else 0)
    else:
        r = -(math.floor(-x) + (1 if -x - math.floor(-x) >= 0.5 else 0))
    return _sat(r)


def _overlap_int(g, p) -> int:
    gx1, gy1 = int(g[0]), int(g[1])
    gx2, gy2 = _sat(gx1 + int(g[2])), _sat(gy1 + int(g[3]))
    px1, py1, px2, py2 = p[0], p[1], p[0] + p[2], p[1] + p[3]
    x1, y1 = max(gx1, _to_i32(px1)), max(gy1, _to_i32(py1))
    x2, y2 = min(gx2, _to_i32(px2)), min(gy2, _to_i32(py2))
    w, h = _sat(_sat(x2 - x1) + 1), _sat(_sat(y2 - y1) + 1)
    if w <= 0 or h <= 0:
        return 0
    inter = _sat(w * h)
    gt_area = _sat(_sat(_sat(gx2 - gx1) + 1) * _sat(_sat(gy2 - gy1) + 1))
    union = _sat(_to_i32(gt_area + (px2 - px1 + 1) * (py2 - py1 + 1)) - inter)
    if union == 0:
        return INT32_MAX if inter > 0 else (0 if inter == 0 else INT32_MIN)
    return _to_i32(inter / union)


def _overlap_float(g, p) -> float:
    gx1, gy1, gx2, gy2 = float(g[0]), float(g[1]), float(g[0]) + float(g[2]), float(g[1]) + float(g[3])
    px1, py1, px2, py2 = p[0], p[1], p[0] + p[2], p[1] + p[3]
    iw = min(gx2, px2) - max(gx1, px1) + 1
    ih = min(gy2, py2) - max(gy1, py1) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((gx2 - gx1 + 1) * (gy2 - gy1 + 1) + (px2 - px1 + 1) * (py2 - py1 + 1) - inter)


def evaluate_reference(images: list[tuple[np.ndarray, list[np.ndarray], np.ndarray]], semantics: str = "official",
                       thresh_num: int = 1000) -> dict[str, float]:
    """AP per setting; images = [(gt_boxes [G,4], [keep_mask per setting], preds [P,5] file order)]."""
    int_gt = all(np.asarray(g).dtype.kind in "iu" for g, _, _ in images)
    preds = []
    for _, _, p in images:
        p = np.asarray(p, dtype=np.float64).reshape(-1, 5)
        if semantics == "official":
            p = p[np.argsort(-p[:, 4], kind="stable")]
        preds.append(p.copy())
    hi, lo = (FLOAT32_MIN_NORMAL, FLOAT32_MAX) if semantics == "official" else (0.0, 1.0)
    for p in preds:
        if len(p):
            hi, lo = max(hi, p[:, 4].max()), min(lo, p[:, 4].min())
    for p in preds:
        with np.errstate(divide="ignore", invalid="ignore"):
            p[:, 4] = (p[:, 4] - lo) / (hi - lo)
    n_settings = len(images[0][1]) if images else 0
    out = {}
    for s in range(n_settings):
        total = np.zeros((thresh_num, 2))
        count_face = 0
        for (gt, keeps, _), p in zip(images, preds):
            keep = keeps[s]
            count_face += int(np.sum(keep))
            if len(gt) == 0 or len(p) == 0:
                continue
            recall_list = np.zeros(len(gt))
            proposal = np.ones(len(p))
            pred_recall = np.zeros(len(p))
            for h in range(len(p)):
                if semantics == "official" and int_gt:
                    ov = [_overlap_int(g, p[h]) for g in gt]
                else:
                    ov = [_overlap_float(g, p[h]) for g in gt]
                idx = int(np.argmax(ov))
                if ov[idx] >= 0.5:
                    if not keep[idx]:
                        recall_list[idx] = -1
                        proposal[h] = -1
                    elif recall_list[idx] == 0:
                        recall_list[idx] = 1
                pred_recall[h] = np.sum(recall_list == 1)
            for t in range(thresh_num):
                thresh = 1 - (t + 1) / thresh_num
                passing = np.flatnonzero(p[:, 4] >= thresh)
                if len(passing):
                    r = passing[-1]
                    total[t, 0] += np.sum(proposal[:r + 1] == 1)
                    total[t, 1] += pred_recall[r]
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = total[:, 1] / total[:, 0]
            recall = total[:, 1] / count_face
        out[s] = voc_ap(recall, precision, nan_skipping=(semantics == "official"))
    return out
