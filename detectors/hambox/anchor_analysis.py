"""Anchor-design analysis of the HAMBox paper's Figure 1: how many anchors each face can match, per ratio.

For ground-truth faces and one anchor scale ratio r, anchors are those of spec §3 (one square anchor of
side r * 4 * stride per cell, centres ((x + 0.5) s, (y + 0.5) s), not clipped). A face "can match" when
some anchor has IoU >= 0.35 with it. Two frames are supported:

- ``crop640``: faces as the detector sees them in training, i.e. in 640x640 data-anchor-sampling crops
  (spec §8, the default); anchors cover the crop.
- ``original``: faces at their annotated size and position in the source image; anchors cover the image
  when its size is known, else the quadrant x, y >= 0 without an upper bound.

The IoU of every face with every nearby anchor is computed exactly (grid windows, no sampling), then each
anchor is given to its highest-IoU face (ties: lowest face index), as the SMS first step does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from detectors.hambox.data import AugmentConfig

STRIDES_P2_P7 = (4, 8, 16, 32, 64, 128)
STRIDES_P2_P6 = (4, 8, 16, 32, 64)
FRAMES = ("crop640", "original")


@dataclass(frozen=True)
class FaceSet:
    """Faces in a set of frames: boxes (x1, y1, x2, y2) [F, 4], frame index [F], frame sizes [n, 2] (inf = unbounded)."""

    boxes: np.ndarray
    frame_ids: np.ndarray
    frame_sizes: np.ndarray
    frame: str = "original"

    @property
    def n_faces(self) -> int:
        """Number of faces."""
        return int(len(self.boxes))


@dataclass(frozen=True)
class FaceCoverage:
    """Per-face matching outcome for one ratio.

    overlapping: anchors with IoU >= threshold (no competition between faces);
    assigned: anchors whose highest-IoU face it is among those (the SMS first step, M_j);
    best_iou: the face's highest anchor IoU; best_level: the level of that anchor;
    overlapping_per_level: [F, L] counts of overlapping anchors per level.
    """

    ratio: float
    overlapping: np.ndarray
    assigned: np.ndarray
    best_iou: np.ndarray
    best_level: np.ndarray
    overlapping_per_level: np.ndarray


def anchor_sides(ratio: float, strides: Sequence[int] = STRIDES_P2_P7) -> np.ndarray:
    """Anchor side per level: ratio * 4 * stride (spec §3)."""
    return ratio * 4.0 * np.asarray(strides, dtype=np.float64)


def max_iou_same_centre(w: np.ndarray, h: np.ndarray, side: float) -> np.ndarray:
    """Upper bound of IoU between a w x h box and a side x side square (reached when centred)."""
    inter = np.minimum(w, side) * np.minimum(h, side)
    return inter / (w * h + side * side - inter)


def _axis_overlaps(lo: np.ndarray, hi: np.ndarray, start: np.ndarray, length: int, stride: float, side: float,
                   limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-D overlaps [F, length] of faces [lo, hi] with anchors of cells start .. start+length-1."""
    cells = start[:, None] + np.arange(length)[None, :]
    centres = (cells + 0.5) * stride
    overlap = np.minimum(hi[:, None], centres + side / 2) - np.maximum(lo[:, None], centres - side / 2)
    overlap = np.clip(overlap, 0.0, None)
    overlap[cells >= limit[:, None]] = 0.0
    return overlap, cells


def _nearest_cell(centre: np.ndarray, stride: float, limit: np.ndarray) -> np.ndarray:
    """Index of the anchor cell whose centre is nearest to `centre` (within 0 .. limit-1)."""
    cell = np.floor(centre / stride)
    return np.clip(cell, 0, np.where(np.isfinite(limit), limit - 1, np.inf))


def level_matches(boxes: np.ndarray, frame_sizes: np.ndarray, stride: float, side: float, threshold: float,
                  chunk: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All (face, cell_x, cell_y, IoU) with IoU >= threshold on one level, plus each face's best IoU there.

    `frame_sizes` is per face [F, 2] (inf = unbounded). Returns face indices, cell x, cell y, IoUs and
    best IoU per face [F] (0 where no anchor overlaps).
    """
    n = len(boxes)
    empty = np.zeros(0, dtype=np.int64)
    if n == 0:
        return empty, empty, empty, np.zeros(0), np.zeros(0)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    limit_x = np.where(np.isfinite(frame_sizes[:, 0]), np.ceil(frame_sizes[:, 0] / stride), np.inf)
    limit_y = np.where(np.isfinite(frame_sizes[:, 1]), np.ceil(frame_sizes[:, 1] / stride), np.inf)
    # IoU falls monotonically with the centre offset along each axis, so the nearest anchor is the best one.
    near_x = (_nearest_cell((boxes[:, 0] + boxes[:, 2]) / 2, stride, limit_x) + 0.5) * stride
    near_y = (_nearest_cell((boxes[:, 1] + boxes[:, 3]) / 2, stride, limit_y) + 0.5) * stride
    ix = np.clip(np.minimum(boxes[:, 2], near_x + side / 2) - np.maximum(boxes[:, 0], near_x - side / 2), 0, None)
    iy = np.clip(np.minimum(boxes[:, 3], near_y + side / 2) - np.maximum(boxes[:, 1], near_y - side / 2), 0, None)
    best = ix * iy / (w * h + side * side - ix * iy)
    # Only faces whose best IoU reaches the threshold have anchors to enumerate.
    candidates = np.nonzero(best >= threshold)[0]
    if len(candidates) == 0:
        return empty, empty, empty, np.zeros(0), best
    start_x = np.maximum(0, np.floor((boxes[:, 0] - side / 2) / stride - 0.5)).astype(np.int64)
    start_y = np.maximum(0, np.floor((boxes[:, 1] - side / 2) / stride - 0.5)).astype(np.int64)
    len_x = (np.ceil((w + side) / stride) + 2).astype(np.int64)
    len_y = (np.ceil((h + side) / stride) + 2).astype(np.int64)
    order = candidates[np.argsort(np.maximum(len_x, len_y)[candidates], kind="stable")]
    out_f, out_x, out_y, out_iou = [], [], [], []
    for first in range(0, len(order), chunk):
        idx = order[first:first + chunk]
        lx, ly = int(len_x[idx].max()), int(len_y[idx].max())
        ox, cx = _axis_overlaps(boxes[idx, 0], boxes[idx, 2], start_x[idx], lx, stride, side, limit_x[idx])
        oy, cy = _axis_overlaps(boxes[idx, 1], boxes[idx, 3], start_y[idx], ly, stride, side, limit_y[idx])
        inter = ox[:, :, None] * oy[:, None, :]
        area = (w[idx] * h[idx])[:, None, None]
        iou = inter / (area + side * side - inter)
        f, jx, jy = np.nonzero(iou >= threshold)
        if len(f):
            out_f.append(idx[f])
            out_x.append(cx[f, jx])
            out_y.append(cy[f, jy])
            out_iou.append(iou[f, jx, jy])
    if not out_f:
        return empty, empty, empty, np.zeros(0), best
    return (np.concatenate(out_f), np.concatenate(out_x), np.concatenate(out_y), np.concatenate(out_iou), best)


def face_coverage(faces: FaceSet, ratio: float, strides: Sequence[int] = STRIDES_P2_P7,
                  threshold: float = 0.35) -> FaceCoverage:
    """Per-face anchor matches for one anchor ratio (exact IoU against every nearby anchor)."""
    n = faces.n_faces
    sizes = faces.frame_sizes[faces.frame_ids] if n else np.zeros((0, 2))
    sides = anchor_sides(ratio, strides)
    per_level = np.zeros((n, len(strides)), dtype=np.int64)
    best_iou = np.zeros(n)
    best_level = np.full(n, -1, dtype=np.int64)
    parts = []
    for level, (stride, side) in enumerate(zip(strides, sides)):
        f, x, y, iou, best = level_matches(faces.boxes, sizes, float(stride), float(side), threshold)
        better = best > best_iou
        best_iou = np.where(better, best, best_iou)
        best_level = np.where(better, level, best_level)
        per_level[:, level] = np.bincount(f, minlength=n)
        parts.append((f, np.full(len(f), level), x, y, iou))
    f = np.concatenate([p[0] for p in parts])
    lev = np.concatenate([p[1] for p in parts])
    x = np.concatenate([p[2] for p in parts])
    y = np.concatenate([p[3] for p in parts])
    iou = np.concatenate([p[4] for p in parts])
    assigned = np.zeros(n, dtype=np.int64)
    if len(f):
        frame = faces.frame_ids[f]
        # One anchor = (frame, level, y, x); it goes to its highest-IoU face, lowest face index on ties.
        order = np.lexsort((f, -iou, x, y, lev, frame))
        keys = np.stack([frame[order], lev[order], y[order], x[order]], axis=1)
        first = np.ones(len(order), dtype=bool)
        first[1:] = np.any(keys[1:] != keys[:-1], axis=1)
        assigned = np.bincount(f[order][first], minlength=n)
    return FaceCoverage(ratio=float(ratio), overlapping=per_level.sum(axis=1), assigned=assigned,
                        best_iou=best_iou, best_level=best_level, overlapping_per_level=per_level)


def summarize_coverage(coverage: FaceCoverage, outer_k: int = 3) -> dict[str, float]:
    """One table row: mean matched anchors per face, share of faces that can match, and details."""
    n = len(coverage.overlapping)
    if n == 0:
        return {"ratio": coverage.ratio, "faces": 0}
    matchable = coverage.overlapping > 0
    return {
        "ratio": coverage.ratio,
        "faces": n,
        "mean_matched_per_face": float(coverage.overlapping.mean()),
        "mean_assigned_per_face": float(coverage.assigned.mean()),
        "share_matchable": float(matchable.mean()),
        "share_assigned": float((coverage.assigned > 0).mean()),
        f"share_outer_k{outer_k}": float((coverage.assigned < outer_k).mean()),
        "share_matching_first_level": float((coverage.overlapping_per_level[:, 0] > 0).mean()),
        "mean_best_iou": float(coverage.best_iou.mean()),
    }


def sweep_ratios(faces: FaceSet, ratios: Sequence[float], strides: Sequence[int] = STRIDES_P2_P7,
                 threshold: float = 0.35, outer_k: int = 3) -> list[dict[str, float]]:
    """The Figure-1 table: one summary row per anchor ratio."""
    return [summarize_coverage(face_coverage(faces, r, strides, threshold), outer_k) for r in ratios]


MAX_RATIOS = 1000


def parse_ratios(text: str) -> list[float]:
    """'0.2:1.2:0.02' (inclusive range) or '0.5,0.68,1.0' (list) -> sorted unique ratios; ValueError if bad."""
    text = text.strip()
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError("a ratio range is START:STOP:STEP")
        start, stop, step = (float(p) for p in parts)
        if not all(math.isfinite(v) for v in (start, stop, step)):
            raise ValueError("a ratio range needs finite numbers")
        if step <= 0 or stop < start:
            raise ValueError("a ratio range needs STEP > 0 and STOP >= START")
        span = (stop - start) / step
        count = int(math.floor(span + 1e-9)) + 1 if math.isfinite(span) and span < MAX_RATIOS else MAX_RATIOS + 1
        if count > MAX_RATIOS:  # each ratio is a full pass over the faces
            raise ValueError(f"the range holds more than {MAX_RATIOS} ratios"
                             + (f" ({int(span) + 1})" if math.isfinite(span) else ""))
        values = [round(start + i * step, 10) for i in range(count)]
    else:
        values = [float(p) for p in text.split(",") if p.strip()]
    if not values or any(not math.isfinite(v) or v <= 0 for v in values):
        raise ValueError("ratios must be positive finite numbers")
    if len(values) > MAX_RATIOS:
        raise ValueError(f"{len(values)} ratios given; at most {MAX_RATIOS}")
    return sorted(set(values))


def faces_in_original_frames(boxes_per_image: Sequence[np.ndarray],
                             image_sizes: Sequence[tuple[float, float] | None] | None = None) -> FaceSet:
    """FaceSet of boxes in their source images; a missing size leaves the anchor grid unbounded."""
    boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes_per_image]
    sizes = np.full((len(boxes), 2), np.inf)
    if image_sizes is not None:
        for i, size in enumerate(image_sizes):
            if size is not None:
                sizes[i] = size
    frame_ids = np.concatenate([np.full(len(b), i, dtype=np.int64) for i, b in enumerate(boxes)]) if boxes \
        else np.zeros(0, dtype=np.int64)
    stacked = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    return FaceSet(boxes=stacked, frame_ids=frame_ids, frame_sizes=sizes, frame="original")


def faces_in_training_crops(boxes_per_image: Sequence[np.ndarray],
                            image_sizes: Sequence[tuple[float, float] | None] | None = None,
                            config: "AugmentConfig | None" = None, samples_per_image: int = 1,
                            seed: int = 0) -> FaceSet:
    """FaceSet of the faces kept in seeded data-anchor-sampling crops (geometry only, no pixels).

    An image of unknown size is taken to be the extent of its boxes (the window placement of DAS uses the
    size only when the resized image is smaller than the crop).
    """
    from detectors.hambox.data import AugmentConfig, sample_crop_boxes

    config = config or AugmentConfig(color_distort=False)
    crop = float(config.crop_size)
    boxes_out, frames = [], []
    frame = 0
    for i, raw in enumerate(boxes_per_image):
        raw = np.asarray(raw, dtype=np.float64).reshape(-1, 4)
        if len(raw) == 0:
            continue
        size = image_sizes[i] if image_sizes is not None else None
        if size is None:
            size = (max(1.0, float(np.ceil(raw[:, 2].max()))), max(1.0, float(np.ceil(raw[:, 3].max()))))
        for s in range(samples_per_image):
            rng = np.random.default_rng([seed, i, s])
            drawn = sample_crop_boxes(raw.astype(np.float32), (int(size[0]), int(size[1])), config, rng)
            if drawn is None:
                continue
            boxes_out.append(drawn[1].astype(np.float64))
            frames.append(np.full(len(drawn[1]), frame, dtype=np.int64))
            frame += 1
    stacked = np.concatenate(boxes_out) if boxes_out else np.zeros((0, 4))
    frame_ids = np.concatenate(frames) if frames else np.zeros(0, dtype=np.int64)
    sizes = np.full((frame, 2), crop)
    return FaceSet(boxes=stacked, frame_ids=frame_ids, frame_sizes=sizes, frame="crop640")


def read_image_sizes(path: str, names: Sequence[str]) -> list[tuple[float, float] | None]:
    """Image sizes from a TSV 'name<TAB>width<TAB>height' (name with or without extension)."""
    from facebench.errors import InputError, read_input_text, text_lines

    table: dict[str, tuple[float, float]] = {}
    for number, line in enumerate(text_lines(read_input_text(path, "image size table")), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 3:
            raise InputError(path, number, "expected 'name width height'")
        try:
            width, height = float(parts[1]), float(parts[2])
        except ValueError:
            raise InputError(path, number, "width and height must be numbers") from None
        if not (0 < width < math.inf and 0 < height < math.inf):
            raise InputError(path, number, "width and height must be positive finite numbers")
        table[parts[0]] = (width, height)
        table[parts[0].rsplit(".", 1)[0]] = (width, height)
    out: list[tuple[float, float] | None] = []
    for name in names:
        stem = name.rsplit(".", 1)[0]
        out.append(table.get(name) or table.get(stem) or table.get(stem.rsplit("/", 1)[-1]))
    return out


def plot_coverage(rows: Sequence[Mapping[str, float]], path: str, title: str = "",
                  highlight: Sequence[float] = (0.68,)) -> None:
    """Figure 1 style: share of matchable faces and mean matched anchors per face against the ratio."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ratios = np.array([r["ratio"] for r in rows])
    share = np.array([r["share_matchable"] for r in rows]) * 100
    mean = np.array([r["mean_matched_per_face"] for r in rows])
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(ratios, share, color="tab:blue", marker=".", label="faces with an anchor IoU >= 0.35 (%)")
    ax.set_xlabel("anchor scale ratio r (anchor side = r x 4 x stride)")
    ax.set_ylabel("matchable faces (%)", color="tab:blue")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.plot(ratios, mean, color="tab:orange", marker=".", label="mean matched anchors per face")
    twin.set_ylabel("mean matched anchors per face", color="tab:orange")
    for value in highlight:
        ax.axvline(value, color="grey", linestyle="--", linewidth=0.8)
        if len(ratios):
            k = int(np.argmin(np.abs(ratios - value)))
            ax.annotate(f"r={ratios[k]:.2f}: {share[k]:.1f}%", (ratios[k], share[k]), textcoords="offset points",
                        xytext=(6, -14), fontsize=8)
    lines = ax.get_lines()[:1] + twin.get_lines()[:1]
    ax.legend(lines, [line.get_label() for line in lines], loc="lower center", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
