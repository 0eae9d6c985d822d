"""Pixel overlaps |A n D| / |A u D| of every touching (face, detection) pair on the official raster."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facebench.cache import cache_file, load_arrays, save_arrays
from protocols.fddb import raster
from protocols.fddb.detections import FddbDetections
from protocols.fddb.ground_truth import FddbGroundTruth
from protocols.fddb.image_sizes import ImageSizes


@dataclass(frozen=True, eq=False)
class PairOverlaps:
    """Every (face, detection) pair with a non-zero overlap, in the same image."""

    face: np.ndarray
    det: np.ndarray
    score: np.ndarray  # |A n D| / |A u D|
    face_area: np.ndarray  # per face (all faces)
    det_area: np.ndarray  # per detection (all detections)


def _region_extents(runs: raster.Runs) -> tuple[np.ndarray, ...]:
    """Bounding box (x1, y1, x2, y2) of each run region; empty regions get x1 > x2."""
    n = runs.count
    x1 = np.full(n, 1, dtype=np.int64)
    x2 = np.full(n, 0, dtype=np.int64)
    lengths = np.diff(runs.start)
    nonempty = lengths > 0
    if nonempty.any():
        owner = np.repeat(np.arange(n), lengths)
        x1_all = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        x2_all = np.full(n, -1, dtype=np.int64)
        np.minimum.at(x1_all, owner, runs.x1)
        np.maximum.at(x2_all, owner, runs.x2)
        x1[nonempty], x2[nonempty] = x1_all[nonempty], x2_all[nonempty]
    y1 = runs.row0
    y2 = runs.row0 + runs.nrows - 1
    return x1, y1, x2, y2


RASTER_CACHE_VERSION = "fddb-raster-1"
_RUNS_FIELDS = ("start", "row", "x1", "x2", "row0", "nrows", "band_base", "row_start")


def face_runs(gt: FddbGroundTruth, sizes: ImageSizes, convention: str, cache: bool = True,
              pi: float = math.pi) -> raster.Runs:
    """The annotated ellipses rasterised in their images, cached on disk by content (they never change)."""
    import hashlib

    face_image = np.repeat(np.arange(gt.n_images), gt.faces_per_image())
    width, height = sizes.width[face_image], sizes.height[face_image]
    digest = hashlib.sha256()
    for part in (RASTER_CACHE_VERSION.encode(), convention.encode(), repr(float(pi)).encode(),
                 np.ascontiguousarray(gt.ellipses, np.float64),
                 np.ascontiguousarray(width, np.int64), np.ascontiguousarray(height, np.int64)):
        digest.update(part if isinstance(part, bytes) else part.tobytes())
    path = cache_file(f"fddb_faces_{digest.hexdigest()[:32]}.npz") if cache else None
    stored = load_arrays(path)
    if stored is not None and all(name in stored for name in _RUNS_FIELDS):
        return raster.Runs(**{name: stored[name].astype(np.int64) for name in _RUNS_FIELDS})
    e = gt.ellipses
    runs = raster.rasterise_ellipses(e[:, 0], e[:, 1], e[:, 2], e[:, 3], e[:, 4], width, height, convention, pi)
    save_arrays(path, {name: getattr(runs, name).astype(np.int32) for name in _RUNS_FIELDS})
    return runs


def pair_overlaps(gt: FddbGroundTruth, dets: FddbDetections, sizes: ImageSizes, convention: str = "opencv21",
                  cache: bool = True, pi: float = math.pi) -> PairOverlaps:
    """Overlaps of all touching (face, detection) pairs on the official pixel raster, clipped to the image."""
    raster.check_convention(convention)
    det_image = np.repeat(np.arange(gt.n_images), np.diff(dets.det_start))
    faces = face_runs(gt, sizes, convention, cache=cache, pi=pi)
    face_area = faces.areas()
    fx1, fy1, fx2, fy2 = _region_extents(faces)
    r = dets.regions
    if dets.format == "rect":
        boxes = raster.rasterise_rectangles(r[:, 0], r[:, 1], r[:, 2], r[:, 3], sizes.width[det_image],
                                            sizes.height[det_image])
        det_area = boxes.areas()
        dx1, dy1, dx2, dy2 = boxes.x1, boxes.y1, boxes.x2, boxes.y2
        det_runs = None
    else:
        det_runs = raster.rasterise_ellipses(r[:, 0], r[:, 1], r[:, 2], r[:, 3], r[:, 4], sizes.width[det_image],
                                             sizes.height[det_image], convention, pi)
        det_area = det_runs.areas()
        dx1, dy1, dx2, dy2 = _region_extents(det_runs)
    # All (face, detection) pairs of each image, then only those whose pixel extents touch.
    na = gt.faces_per_image()
    nd = np.diff(dets.det_start)
    per_image = na * nd
    pair_img = np.repeat(np.arange(gt.n_images), per_image)
    local = np.arange(len(pair_img)) - (np.cumsum(per_image) - per_image)[pair_img]
    pf = gt.face_start[pair_img] + local // np.maximum(nd[pair_img], 1)
    pd = dets.det_start[pair_img] + local % np.maximum(nd[pair_img], 1)
    touch = ((np.maximum(fx1[pf], dx1[pd]) <= np.minimum(fx2[pf], dx2[pd]))
             & (np.maximum(fy1[pf], dy1[pd]) <= np.minimum(fy2[pf], dy2[pd])))
    pf, pd = pf[touch], pd[touch]
    if det_runs is None:
        inter = raster.runs_box_intersections(faces, pf, boxes, pd)
    else:
        inter = raster.runs_runs_intersections(faces, pf, det_runs, pd)
    keep = inter > 0
    pf, pd, inter = pf[keep], pd[keep], inter[keep]
    union = face_area[pf] + det_area[pd] - inter
    return PairOverlaps(face=pf, det=pd, score=inter / union, face_area=face_area, det_area=det_area)
