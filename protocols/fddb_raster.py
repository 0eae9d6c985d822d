"""Pixel-exact rasterisation of FDDB regions, as the official `evaluate` paints them through OpenCV.

The official program fills every region into an image-sized 8-bit mask with OpenCV's line-type-8 drawing
and counts pixels, so the FDDB numbers depend on OpenCV's exact raster (spec protocols.md §2.3). This module
reproduces that raster in NumPy, vectorised over many regions, without depending on OpenCV:

* rectangles (`cvRectangle`, filled): corners rounded half-even from single precision, every pixel between
  them inclusive, clipped to the image;
* ellipses (`cvEllipse`, filled): OpenCV's `ellipse2Poly` polygon (16.16 fixed point, its 7-digit sine table,
  1-degree angles, 5/18/30/90-degree vertex steps), then `FillConvexPoly`: each edge drawn with the
  fixed-point line routine, then the scan-line fill.

Three ellipse conventions (`CONVENTIONS`), all validated pixel for pixel where a reference exists:

* ``opencv21``: the program as released, on OpenCV <= 2.1, whose `ellipse2Poly` turned the rotation the
  other way on screen (``y = cy - x sin a - y cos a``) and whose fixed-point line routine clipped edges to the
  image shrunk by 2 pixels (the scan fill still reaches the border);
* ``negated-angle``: the community's "180 - angle" patch (imistyrain/fddb) on OpenCV >= 2.2;
* ``opencv4``: the unmodified program on OpenCV >= 2.2 (checked against OpenCV 4.x).

Regions come out as row runs (`Runs`): per region, sorted (row, x1, x2) pixel intervals, so that the
intersection of two regions is a sum over shared rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONVENTIONS = ("opencv21", "negated-angle", "opencv4")
XY_SHIFT = 16
XY_ONE = 1 << XY_SHIFT
HALF = XY_ONE >> 1
# OpenCV's int32 16.16 drawing (and the C++ casts of the official reader) only make sense below this.
MAX_ELLIPSE_COORD = 32767.0


def _sine_table() -> np.ndarray:
    """OpenCV's SinTable: sin of 0..450 whole degrees, 7 decimals, single precision (as doubles)."""
    quarter = np.round(np.sin(np.deg2rad(np.arange(91))), 7)
    half = np.concatenate([quarter, quarter[-2::-1]])  # 0..180 degrees, mirrored exactly like the table
    full = np.concatenate([half, -half[1:]])  # 0..360 (index 360 is -0.0, as in the table)
    return np.concatenate([full, full[1:91]]).astype(np.float32).astype(np.float64)


SIN_TABLE = _sine_table()


def check_convention(convention: str) -> str:
    """The convention name, or ValueError naming the valid ones."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown ellipse convention {convention!r} (expected one of {', '.join(CONVENTIONS)})")
    return convention


def trunc_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """C integer division (truncates toward zero) of int64 arrays."""
    q = np.abs(num) // np.abs(den)
    return np.where((num < 0) != (den < 0), -q, q)


def round_half_even_f32(values: np.ndarray) -> np.ndarray:
    """`cvRound` of values first stored as single precision (cvPoint2D32f then cvPointFrom32f)."""
    return np.rint(np.asarray(values, dtype=np.float64).astype(np.float32)).astype(np.int64)


def drawing_angles(theta: np.ndarray, convention: str) -> np.ndarray:
    """The integer degrees cvEllipse rotates by: round((pi - theta) 180/pi), or of 180 minus it when negated."""
    check_convention(convention)
    degrees = (np.pi - np.asarray(theta, dtype=np.float64)) * 180.0 / np.pi  # the official reader's formula
    if convention == "negated-angle":
        degrees = 180.0 - degrees
    return np.rint(degrees).astype(np.int64)


@dataclass(frozen=True)
class EllipseParams:
    """What cvEllipse receives: integer centre, truncated semi-axes, integer drawing angle in [0, 360]."""

    cx: np.ndarray
    cy: np.ndarray
    a: np.ndarray
    b: np.ndarray
    angle: np.ndarray


def ellipse_params(ra: np.ndarray, rb: np.ndarray, theta: np.ndarray, cx: np.ndarray, cy: np.ndarray,
                   convention: str) -> EllipseParams:
    """FDDB ellipses (major radius, minor radius, angle in radians, centre) as cvEllipse arguments."""
    angle = drawing_angles(theta, convention)
    # ellipse2Poly brings the angle into [0, 360] by whole turns (a positive multiple of 360 stays 360).
    norm = np.mod(angle, 360)
    norm = np.where((norm == 0) & (angle > 0), 360, norm)
    return EllipseParams(cx=round_half_even_f32(cx), cy=round_half_even_f32(cy),
                         a=np.trunc(np.asarray(ra, dtype=np.float64)).astype(np.int64),
                         b=np.trunc(np.asarray(rb, dtype=np.float64)).astype(np.int64), angle=norm)


def vertex_step(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ellipse2Poly's angular step in degrees, from the larger integer semi-axis."""
    m = np.maximum(np.abs(a), np.abs(b))
    return np.where(m < 3, 90, np.where(m < 10, 30, np.where(m < 15, 18, 5)))


def ellipse_vertices(p: EllipseParams, step: int, convention: str) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point polygon vertices (n, 360/step + 1) for ellipses that all use the same angular step."""
    alphas = np.arange(0, 361, step)
    cos_v = SIN_TABLE[450 - alphas][None, :]
    sin_v = SIN_TABLE[alphas][None, :]
    ca = SIN_TABLE[450 - p.angle][:, None]  # cos and sin of the drawing angle, from the same table
    sa = SIN_TABLE[p.angle][:, None]
    cx = (p.cx * XY_ONE).astype(np.float64)[:, None]
    cy = (p.cy * XY_ONE).astype(np.float64)[:, None]
    x = (p.a * XY_ONE).astype(np.float64)[:, None] * cos_v
    y = (p.b * XY_ONE).astype(np.float64)[:, None] * sin_v
    px = cx + x * ca - y * sa
    if convention == "opencv21":
        py = cy - x * sa - y * ca  # OpenCV <= 2.1 turned the other way on screen
    else:
        py = cy + x * sa + y * ca
    return np.rint(px).astype(np.int64), np.rint(py).astype(np.int64)


def clip_segments(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, right: np.ndarray,
                  bottom: np.ndarray, exact_int: bool) -> tuple[np.ndarray, ...]:
    """OpenCV's clipLine to [0, right] x [0, bottom]: clipped endpoints and a visibility flag.

    `exact_int` selects the old integer arithmetic (OpenCV 2.x) over the newer double arithmetic (3.x/4.x);
    both truncate toward zero.
    """
    x1, y1, x2, y2 = (np.array(v, dtype=np.int64) for v in (x1, y1, x2, y2))

    def codes(x, y):
        return ((x < 0).astype(np.int64) + (x > right) * 2 + (y < 0) * 4 + (y > bottom) * 8)

    def step(delta_a, span_b, span_a):
        with np.errstate(divide="ignore", invalid="ignore"):
            if exact_int:
                safe = np.where(span_a == 0, 1, span_a)
                return trunc_div(delta_a * span_b, safe)
            return np.trunc(delta_a.astype(np.float64) * span_b / span_a).astype(np.int64)

    c1, c2 = codes(x1, y1), codes(x2, y2)
    need = ((c1 & c2) == 0) & ((c1 | c2) != 0)
    sel = need & ((c1 & 12) != 0)
    if sel.any():
        a = np.where(c1 < 8, 0, bottom)
        x1 = np.where(sel, x1 + step(a - y1, x2 - x1, y2 - y1), x1)
        y1 = np.where(sel, a, y1)
        c1 = np.where(sel, (x1 < 0).astype(np.int64) + (x1 > right) * 2, c1)
    sel = need & ((c2 & 12) != 0)
    if sel.any():
        a = np.where(c2 < 8, 0, bottom)
        x2 = np.where(sel, x2 + step(a - y2, x2 - x1, y2 - y1), x2)
        y2 = np.where(sel, a, y2)
        c2 = np.where(sel, (x2 < 0).astype(np.int64) + (x2 > right) * 2, c2)
    need2 = need & ((c1 & c2) == 0) & ((c1 | c2) != 0)
    sel = need2 & (c1 != 0)
    if sel.any():
        a = np.where(c1 == 1, 0, right)
        y1 = np.where(sel, y1 + step(a - x1, y2 - y1, x2 - x1), y1)
        x1 = np.where(sel, a, x1)
        c1 = np.where(sel, 0, c1)
    sel = need2 & (c2 != 0)
    if sel.any():
        a = np.where(c2 == 1, 0, right)
        y2 = np.where(sel, y2 + step(a - x2, y2 - y1, x2 - x1), y2)
        x2 = np.where(sel, a, x2)
        c2 = np.where(sel, 0, c2)
    return x1, y1, x2, y2, (c1 | c2) == 0


def fixed_point_line_pixels(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, width: np.ndarray,
                            height: np.ndarray, convention: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels OpenCV's 16.16 fixed-point 8-connected line routine paints: (segment index, x, y).

    Modern OpenCV clips to the image and checks every pixel; OpenCV <= 2.x clipped to the image shrunk by
    2 pixels on each side (so edges never touch the 2-pixel border band).
    """
    x1, y1, x2, y2 = (np.asarray(v, dtype=np.int64) for v in (x1, y1, x2, y2))
    width = np.broadcast_to(np.asarray(width, dtype=np.int64), x1.shape)
    height = np.broadcast_to(np.asarray(height, dtype=np.int64), x1.shape)
    old = convention == "opencv21"
    if old:
        offset = 2
        x1, y1, x2, y2 = x1 - 2 * XY_ONE, y1 - 2 * XY_ONE, x2 - 2 * XY_ONE, y2 - 2 * XY_ONE
        right = (width - 5) * XY_ONE  # size ((w - 5) << 16) + 1, minus one
        bottom = (height - 5) * XY_ONE
        usable = (right >= 0) & (bottom >= 0)
    else:
        offset = 0
        right = width * XY_ONE - 1
        bottom = height * XY_ONE - 1
        usable = (width > 0) & (height > 0)
    x1, y1, x2, y2, visible = clip_segments(x1, y1, x2, y2, right, bottom, exact_int=old)
    visible &= usable
    seg = np.nonzero(visible)[0]
    x1, y1, x2, y2 = x1[seg], y1[seg], x2[seg], y2[seg]
    dx, dy = x2 - x1, y2 - y1
    xmajor = np.abs(dx) > np.abs(dy)
    swap = np.where(xmajor, dx < 0, dy < 0)
    x1, x2 = np.where(swap, x2, x1), np.where(swap, x1, x2)
    y1, y2 = np.where(swap, y2, y1), np.where(swap, y1, y2)
    dx, dy = x2 - x1, y2 - y1
    major_len = np.where(xmajor, dx, dy)
    minor_delta = np.where(xmajor, dy, dx)
    slope = trunc_div(minor_delta * XY_ONE, major_len | 1)
    ecount = np.where(xmajor, dx, dy) >> XY_SHIFT
    # ecount + 1 stepped pixels, plus the explicitly painted (rounded) second endpoint.
    counts = ecount + 2
    owner = np.repeat(np.arange(len(seg)), counts)
    first = np.cumsum(counts) - counts
    t = np.arange(len(owner)) - first[owner]
    is_end = t == (counts - 1)[owner]
    major0 = np.where(xmajor, (x1 + HALF) >> XY_SHIFT, (y1 + HALF) >> XY_SHIFT)[owner] + t
    minor_fp = np.where(xmajor, y1, x1)[owner] + HALF + t * slope[owner]
    minor = minor_fp >> XY_SHIFT
    xm = xmajor[owner]
    px = np.where(xm, major0, minor)
    py = np.where(xm, minor, major0)
    px = np.where(is_end, ((x2 + HALF) >> XY_SHIFT)[owner], px) + offset
    py = np.where(is_end, ((y2 + HALF) >> XY_SHIFT)[owner], py) + offset
    w_o, h_o = width[seg][owner], height[seg][owner]
    inside = (px >= 0) & (px < w_o) & (py >= 0) & (py < h_o)
    return seg[owner][inside], px[inside], py[inside]


@dataclass(frozen=True, eq=False)
class Runs:
    """Row runs of many regions: region r owns runs `start[r]:start[r+1]`, sorted by row then x.

    `row0`/`nrows` give each region's row band and `row_start` (a CSR over those bands, offset by
    `band_base`) the first run of every row, so rows can be sliced without searching.
    """

    start: np.ndarray
    row: np.ndarray
    x1: np.ndarray
    x2: np.ndarray
    row0: np.ndarray
    nrows: np.ndarray
    band_base: np.ndarray
    row_start: np.ndarray

    @property
    def count(self) -> int:
        """Number of regions."""
        return len(self.start) - 1

    def areas(self) -> np.ndarray:
        """Painted pixels per region (int64)."""
        lengths = (self.x2 - self.x1 + 1).astype(np.int64)
        owner = np.repeat(np.arange(self.count), np.diff(self.start))
        return np.bincount(owner, weights=lengths, minlength=self.count).astype(np.int64)

    def region_mask(self, index: int, width: int, height: int) -> np.ndarray:
        """One region as a full-size boolean image (for tests and plots)."""
        mask = np.zeros((height, width), dtype=bool)
        for k in range(self.start[index], self.start[index + 1]):
            mask[self.row[k], self.x1[k]:self.x2[k] + 1] = True
        return mask


def _empty_runs(n: int) -> Runs:
    zeros = np.zeros(n, dtype=np.int64)
    return Runs(start=np.zeros(n + 1, dtype=np.int64), row=zeros[:0], x1=zeros[:0], x2=zeros[:0], row0=zeros,
                nrows=zeros.copy(), band_base=np.zeros(n + 1, dtype=np.int64), row_start=np.zeros(1, dtype=np.int64))


def build_runs(n: int, row0: np.ndarray, nrows: np.ndarray, span_region: np.ndarray, span_row: np.ndarray,
               span_x1: np.ndarray, span_x2: np.ndarray, pix_region: np.ndarray, pix_row: np.ndarray,
               pix_x: np.ndarray) -> Runs:
    """Union of at most one span per (region, row) and single pixels, as merged row runs.

    Every span and pixel must lie in its region's row band [row0, row0 + nrows).
    """
    nrows = np.maximum(np.asarray(nrows, dtype=np.int64), 0)
    band_base = np.concatenate([[0], np.cumsum(nrows)]).astype(np.int64)
    total = int(band_base[-1])
    if total == 0:
        return _empty_runs(n)
    big = np.iinfo(np.int64).max // 4
    lo = np.full(total, big, dtype=np.int64)
    hi = np.full(total, -1, dtype=np.int64)
    sd = band_base[span_region] + span_row - row0[span_region]
    lo[sd], hi[sd] = span_x1, span_x2
    pd = band_base[pix_region] + pix_row - row0[pix_region]
    outside = (pix_x < lo[pd]) | (pix_x > hi[pd])
    pd, px = pd[outside], pix_x[outside]
    width_key = int(max(int(px.max(initial=0)), int(np.max(span_x2, initial=0)))) + 2
    codes = np.unique(pd * width_key + px)
    pd, px = codes // width_key, codes % width_key
    seg_d = np.concatenate([sd, pd])
    seg_a = np.concatenate([span_x1, px])
    seg_b = np.concatenate([span_x2, px])
    order = np.argsort(seg_d * width_key + seg_a, kind="stable")
    seg_d, seg_a, seg_b = seg_d[order], seg_a[order], seg_b[order]
    # Merge touching or overlapping intervals within a row: a running maximum of the right ends,
    # offset by row so that it restarts at every row.
    keyed_b = seg_d * width_key + seg_b
    reach = np.maximum.accumulate(keyed_b)
    new_run = np.ones(len(seg_d), dtype=bool)
    new_run[1:] = (seg_d[1:] != seg_d[:-1]) | (seg_d[1:] * width_key + seg_a[1:] > reach[:-1] + 1)
    starts = np.nonzero(new_run)[0]
    ends = np.concatenate([starts[1:], [len(seg_d)]]) - 1
    run_d = seg_d[starts]
    run_x1 = seg_a[starts]
    run_x2 = reach[ends] - run_d * width_key
    region = np.searchsorted(band_base, run_d, side="right") - 1
    run_row = row0[region] + run_d - band_base[region]
    start = np.searchsorted(region, np.arange(n + 1), side="left").astype(np.int64)
    row_start = np.searchsorted(run_d, np.arange(total + 1), side="left").astype(np.int64)
    return Runs(start=start, row=run_row, x1=run_x1, x2=run_x2, row0=np.asarray(row0, dtype=np.int64),
                nrows=nrows, band_base=band_base, row_start=row_start)


def _scan_fill(vx: np.ndarray, vy: np.ndarray, width: np.ndarray, height: np.ndarray,
               polygon: np.ndarray) -> tuple[np.ndarray, ...]:
    """FillConvexPoly's scan-line spans for polygons of equal vertex count: (polygon id, row, x1, x2).

    Closed form of OpenCV's two-edge walk: each side follows the vertices whose rounded row sets a new
    maximum; an edge activated at row y0 ending at row y1 advances by ((xe-xs)*2 + (y1-y0)) / (2 (y1-y0))
    (C division) per row; the fill stops before the bottom row, which only the outline paints.
    """
    n, k = vx.shape
    rows = (vy + HALF) >> XY_SHIFT
    imin = np.argmin(vy, axis=1)
    tmin = rows[np.arange(n), imin]
    tmax = rows.max(axis=1)
    xmin_px = (vx.min(axis=1) + HALF) >> XY_SHIFT
    xmax_px = (vx.max(axis=1) + HALF) >> XY_SHIFT
    fills = ~((xmax_px < 0) | (tmax < 0) | (xmin_px >= width) | (tmin >= height))
    steps = np.arange(k)
    sides = []
    for direction in (1, -1):
        idx = (imin[:, None] + direction * steps[None, :]) % k
        t_seq = np.take_along_axis(rows, idx, axis=1)
        x_seq = np.take_along_axis(vx, idx, axis=1)
        prior = np.maximum.accumulate(t_seq, axis=1)[:, :-1]
        success = (t_seq[:, 1:] > prior) & fills[:, None]
        poly, j = np.nonzero(success)
        ys = prior[poly, j]
        ty = t_seq[poly, j + 1]
        xs = x_seq[poly, j]
        xe = x_seq[poly, j + 1]
        dx = trunc_div((xe - xs) * 2 + (ty - ys), 2 * (ty - ys))
        lo = np.maximum(ys, 0)
        hi = np.minimum(ty, height[poly])
        counts = np.maximum(hi - lo, 0)
        owner = np.repeat(np.arange(len(poly)), counts)
        first = np.cumsum(counts) - counts
        y = lo[owner] + np.arange(len(owner)) - first[owner]
        x = xs[owner] + (y - ys[owner]) * dx[owner]
        sides.append((poly[owner], y, x))
    (p0, y0, x0), (p1, y1, x1) = sides
    if len(p0) != len(p1) or not (np.array_equal(p0, p1) and np.array_equal(y0, y1)):
        raise AssertionError("scan-fill sides disagree on rows (please report this ellipse)")
    xx1 = (np.minimum(x0, x1) + HALF) >> XY_SHIFT
    xx2 = (np.maximum(x0, x1) + HALF) >> XY_SHIFT
    w = width[p0]
    keep = (xx2 >= 0) & (xx1 < w)
    return (polygon[p0][keep], y0[keep], np.maximum(xx1[keep], 0), np.minimum(xx2[keep], w[keep] - 1))


def rasterise_ellipses(ra: np.ndarray, rb: np.ndarray, theta: np.ndarray, cx: np.ndarray, cy: np.ndarray,
                       width: np.ndarray, height: np.ndarray, convention: str) -> Runs:
    """Filled ellipses (FDDB parameters, each in its own width x height image) as OpenCV paints them."""
    check_convention(convention)
    n = len(np.asarray(ra))
    if n == 0:
        return _empty_runs(0)
    width = np.broadcast_to(np.asarray(width, dtype=np.int64), (n,)).copy()
    height = np.broadcast_to(np.asarray(height, dtype=np.int64), (n,)).copy()
    p = ellipse_params(ra, rb, theta, cx, cy, convention)
    steps = vertex_step(p.a, p.b)
    row_lo = np.zeros(n, dtype=np.int64)
    row_hi = np.full(n, -1, dtype=np.int64)
    spans, pixels = [], []
    for step in (5, 18, 30, 90):
        members = np.nonzero(steps == step)[0]
        if len(members) == 0:
            continue
        sub = EllipseParams(p.cx[members], p.cy[members], p.a[members], p.b[members], p.angle[members])
        vx, vy = ellipse_vertices(sub, step, convention)
        rows = (vy + HALF) >> XY_SHIFT
        row_lo[members] = np.maximum(rows.min(axis=1), 0)
        row_hi[members] = np.minimum(rows.max(axis=1), height[members] - 1)
        spans.append(_scan_fill(vx, vy, width[members], height[members], members))
        # The outline: FillConvexPoly draws (v[k-1], v[0]) first, then every (v[i-1], v[i]).
        prev_x, prev_y = np.roll(vx, 1, axis=1), np.roll(vy, 1, axis=1)
        owner = np.repeat(members, vx.shape[1])
        seg, px, py = fixed_point_line_pixels(prev_x.ravel(), prev_y.ravel(), vx.ravel(), vy.ravel(),
                                              width[owner], height[owner], convention)
        pixels.append((owner[seg], py, px))
    span_region, span_row, span_x1, span_x2 = (np.concatenate(parts) for parts in zip(*spans))
    pix_region, pix_row, pix_x = (np.concatenate(parts) for parts in zip(*pixels))
    return build_runs(n, row_lo, row_hi - row_lo + 1, span_region, span_row, span_x1, span_x2,
                      pix_region, pix_row, pix_x)


@dataclass(frozen=True)
class Boxes:
    """Filled rectangles clipped to their images: inclusive pixel bounds; empty where x1 > x2 or y1 > y2."""

    x1: np.ndarray
    y1: np.ndarray
    x2: np.ndarray
    y2: np.ndarray

    def areas(self) -> np.ndarray:
        """Painted pixels per rectangle (int64)."""
        w = np.maximum(self.x2 - self.x1 + 1, 0)
        h = np.maximum(self.y2 - self.y1 + 1, 0)
        return (w * h).astype(np.int64)


def rasterise_rectangles(x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray, width: np.ndarray,
                         height: np.ndarray) -> Boxes:
    """FDDB rectangles (left, top, width, height) as cvRectangle fills them, clipped to the image."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xa, ya = round_half_even_f32(x), round_half_even_f32(y)
    xb, yb = round_half_even_f32(x + np.asarray(w, dtype=np.float64)), round_half_even_f32(
        y + np.asarray(h, dtype=np.float64))
    width = np.asarray(width, dtype=np.int64)
    height = np.asarray(height, dtype=np.int64)
    return Boxes(x1=np.maximum(np.minimum(xa, xb), 0), y1=np.maximum(np.minimum(ya, yb), 0),
                 x2=np.minimum(np.maximum(xa, xb), width - 1), y2=np.minimum(np.maximum(ya, yb), height - 1))


def runs_box_intersections(runs: Runs, region: np.ndarray, boxes: Boxes, box: np.ndarray) -> np.ndarray:
    """Pixels shared by run region `region[i]` and box `box[i]`, for every pair i (int64)."""
    region = np.asarray(region, dtype=np.int64)
    box = np.asarray(box, dtype=np.int64)
    n = len(region)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    bx1, by1, bx2, by2 = boxes.x1[box], boxes.y1[box], boxes.x2[box], boxes.y2[box]
    r0 = runs.row0[region]
    lo_row = np.maximum(by1, r0)
    hi_row = np.minimum(by2, r0 + runs.nrows[region] - 1)
    ok = (lo_row <= hi_row) & (bx1 <= bx2)
    base = runs.band_base[region]
    first = np.where(ok, runs.row_start[np.where(ok, base + lo_row - r0, 0)], 0)
    last = np.where(ok, runs.row_start[np.where(ok, base + hi_row - r0 + 1, 0)], 0)
    counts = np.maximum(last - first, 0)
    owner = np.repeat(np.arange(n), counts)
    k = first[owner] + np.arange(len(owner)) - (np.cumsum(counts) - counts)[owner]
    overlap = np.minimum(runs.x2[k], bx2[owner]) - np.maximum(runs.x1[k], bx1[owner]) + 1
    return np.bincount(owner, weights=np.maximum(overlap, 0), minlength=n).astype(np.int64)


def runs_runs_intersections(a: Runs, ia: np.ndarray, b: Runs, ib: np.ndarray) -> np.ndarray:
    """Pixels shared by region `ia[i]` of `a` and region `ib[i]` of `b`, for every pair i (int64)."""
    ia = np.asarray(ia, dtype=np.int64)
    ib = np.asarray(ib, dtype=np.int64)
    n = len(ia)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    lo_row = np.maximum(a.row0[ia], b.row0[ib])
    hi_row = np.minimum(a.row0[ia] + a.nrows[ia], b.row0[ib] + b.nrows[ib]) - 1
    counts = np.maximum(hi_row - lo_row + 1, 0)
    pair = np.repeat(np.arange(n), counts)
    row = lo_row[pair] + np.arange(len(pair)) - (np.cumsum(counts) - counts)[pair]
    da = a.band_base[ia[pair]] + row - a.row0[ia[pair]]
    db = b.band_base[ib[pair]] + row - b.row0[ib[pair]]
    fa, na = a.row_start[da], a.row_start[da + 1] - a.row_start[da]
    fb, nb = b.row_start[db], b.row_start[db + 1] - b.row_start[db]
    combos = na * nb  # runs in a row are disjoint, so summing all run pairs counts each pixel once
    entry = np.repeat(np.arange(len(pair)), combos)
    local = np.arange(len(entry)) - (np.cumsum(combos) - combos)[entry]
    ka = fa[entry] + local // nb[entry]
    kb = fb[entry] + local % nb[entry]
    overlap = np.minimum(a.x2[ka], b.x2[kb]) - np.maximum(a.x1[ka], b.x1[kb]) + 1
    return np.bincount(pair[entry], weights=np.maximum(overlap, 0), minlength=n).astype(np.int64)


# ----------------------------------------------------------------------------------------------------------
# Straightforward scalar version: one region at a time, OpenCV's loops written out literally. It is the
# independent check of the vectorised closed forms above (tests) and the benchmark's reference.


def _c_div(num: int, den: int) -> int:
    q = abs(num) // abs(den)
    return -q if (num < 0) != (den < 0) else q


def _clip_line_scalar(w: int, h: int, x1: int, y1: int, x2: int, y2: int, exact_int: bool):
    if w <= 0 or h <= 0:
        return None
    right, bottom = w - 1, h - 1

    def code(x, y):
        return (x < 0) + (x > right) * 2 + (y < 0) * 4 + (y > bottom) * 8

    def step(da, sb, sa):
        return _c_div(da * sb, sa) if exact_int else int(float(da) * sb / sa)

    c1, c2 = code(x1, y1), code(x2, y2)
    if (c1 & c2) == 0 and (c1 | c2) != 0:
        if c1 & 12:
            a = 0 if c1 < 8 else bottom
            x1 += step(a - y1, x2 - x1, y2 - y1)
            y1 = a
            c1 = (x1 < 0) + (x1 > right) * 2
        if c2 & 12:
            a = 0 if c2 < 8 else bottom
            x2 += step(a - y2, x2 - x1, y2 - y1)
            y2 = a
            c2 = (x2 < 0) + (x2 > right) * 2
        if (c1 & c2) == 0 and (c1 | c2) != 0:
            if c1:
                a = 0 if c1 == 1 else right
                y1 += step(a - x1, y2 - y1, x2 - x1)
                x1 = a
                c1 = 0
            if c2:
                a = 0 if c2 == 1 else right
                y2 += step(a - x2, y2 - y1, x2 - x1)
                x2 = a
                c2 = 0
    return (x1, y1, x2, y2) if (c1 | c2) == 0 else None


def _line2_scalar(mask: np.ndarray, p1: tuple[int, int], p2: tuple[int, int], old: bool) -> None:
    h, w = mask.shape
    (x1, y1), (x2, y2) = p1, p2
    off = 0
    if old:
        off = 2
        x1, y1, x2, y2 = x1 - 2 * XY_ONE, y1 - 2 * XY_ONE, x2 - 2 * XY_ONE, y2 - 2 * XY_ONE
        clipped = _clip_line_scalar(((w - 5) << XY_SHIFT) + 1, ((h - 5) << XY_SHIFT) + 1, x1, y1, x2, y2, True)
    else:
        clipped = _clip_line_scalar(w << XY_SHIFT, h << XY_SHIFT, x1, y1, x2, y2, False)
    if clipped is None:
        return
    x1, y1, x2, y2 = clipped

    def put(x, y):
        x, y = x + off, y + off
        if 0 <= x < w and 0 <= y < h:
            mask[y, x] = True

    dx, dy = x2 - x1, y2 - y1
    if abs(dx) > abs(dy):
        if dx < 0:
            x1, y1, x2, y2 = x2, y2, x1, y1
        y_step = _c_div((y2 - y1) << XY_SHIFT, abs(dx) | 1)
        ecount = (x2 - x1) >> XY_SHIFT
        put((x2 + HALF) >> XY_SHIFT, (y2 + HALF) >> XY_SHIFT)
        col, yy = (x1 + HALF) >> XY_SHIFT, y1 + HALF
        for _ in range(ecount + 1):
            put(col, yy >> XY_SHIFT)
            col += 1
            yy += y_step
    else:
        if dy < 0:
            x1, y1, x2, y2 = x2, y2, x1, y1
        x_step = _c_div((x2 - x1) << XY_SHIFT, abs(dy) | 1)
        ecount = (y2 - y1) >> XY_SHIFT
        put((x2 + HALF) >> XY_SHIFT, (y2 + HALF) >> XY_SHIFT)
        row, xx = (y1 + HALF) >> XY_SHIFT, x1 + HALF
        for _ in range(ecount + 1):
            put(xx >> XY_SHIFT, row)
            row += 1
            xx += x_step


def _hline(mask: np.ndarray, y: int, xl: int, xr: int) -> None:
    h, w = mask.shape
    if 0 <= y < h and xr >= 0 and xl < w:
        mask[y, max(xl, 0):min(xr, w - 1) + 1] = True


def _fill_convex_scalar(mask: np.ndarray, v: list[tuple[int, int]], old: bool) -> None:
    """FillConvexPoly with shift 16 and line type 8, edge loop of OpenCV <= 2.x (`old`) or >= 3.x."""
    h, w = mask.shape
    npts = len(v)
    p0 = v[-1]
    for p in v:
        _line2_scalar(mask, p0, p, old)
        p0 = p
    imin = min(range(npts), key=lambda i: (v[i][1], i))
    xs_all, ys_all = [p[0] for p in v], [p[1] for p in v]
    xmin, xmax = (min(xs_all) + HALF) >> XY_SHIFT, (max(xs_all) + HALF) >> XY_SHIFT
    ymin, ymax = (min(ys_all) + HALF) >> XY_SHIFT, (max(ys_all) + HALF) >> XY_SHIFT
    if npts < 3 or xmax < 0 or ymax < 0 or xmin >= w or ymin >= h:
        return
    ymax = min(ymax, h - 1)
    edges = npts
    edge = [{"idx": imin, "di": 1, "ye": ymin, "x": -XY_ONE, "dx": 0},
            {"idx": imin, "di": npts - 1, "ye": ymin, "x": -XY_ONE, "dx": 0}]
    y = ymin
    left, right = 0, 1
    while True:
        for e in edge:
            if y < e["ye"]:
                continue
            if old:
                idx, xs, ty = e["idx"], 0, 0
                while True:
                    ty = (v[idx][1] + HALF) >> XY_SHIFT
                    if ty > y or edges == 0:
                        break
                    xs = v[idx][0]
                    idx = (idx + e["di"]) % npts
                    edges -= 1
                if y >= ty:
                    return
                e.update(ye=ty, x=xs, idx=idx, dx=_c_div((v[idx][0] - xs) * 2 + (ty - y), 2 * (ty - y)))
            else:
                idx0 = e["idx"]
                idx = (idx0 + e["di"]) % npts
                while True:
                    edges -= 1
                    if edges < 0:
                        break
                    ty = (v[idx][1] + HALF) >> XY_SHIFT
                    if ty > y:
                        xs, xe = v[idx0][0], v[idx][0]
                        e.update(ye=ty, x=xs, idx=idx, dx=_c_div((xe - xs) * 2 + (ty - y), 2 * (ty - y)))
                        break
                    idx0 = idx
                    idx = (idx + e["di"]) % npts
        if not old and edges < 0:
            return
        if old:
            if edge[left]["x"] > edge[right]["x"]:
                left, right = right, left
            lo, hi = edge[left]["x"], edge[right]["x"]
        else:
            lo, hi = sorted((edge[0]["x"], edge[1]["x"]))
        _hline(mask, y, (lo + HALF) >> XY_SHIFT, (hi + HALF) >> XY_SHIFT)
        for e in edge:
            e["x"] += e["dx"]
        y += 1
        if y > ymax:
            return


def ellipse_mask_reference(ra: float, rb: float, theta: float, cx: float, cy: float, width: int, height: int,
                           convention: str) -> np.ndarray:
    """One filled ellipse as a full-size boolean image, OpenCV's loops written out (slow, independent)."""
    check_convention(convention)
    p = ellipse_params(np.array([ra]), np.array([rb]), np.array([theta]), np.array([cx]), np.array([cy]),
                       convention)
    step = int(vertex_step(p.a, p.b)[0])
    vx, vy = ellipse_vertices(p, step, convention)
    v = list(zip(vx[0].tolist(), vy[0].tolist()))
    if convention != "opencv21":  # EllipseEx (>= 3.x) drops consecutive repeats; one point becomes two
        kept = [v[0]] + [q for prev, q in zip(v, v[1:]) if q != prev]
        v = kept if len(kept) > 1 else [kept[0], kept[0]]
    mask = np.zeros((height, width), dtype=bool)
    _fill_convex_scalar(mask, v, old=convention == "opencv21")
    return mask


def rectangle_mask_reference(x: float, y: float, w: float, h: float, width: int, height: int) -> np.ndarray:
    """One filled rectangle as a full-size boolean image (slow, independent)."""
    mask = np.zeros((height, width), dtype=bool)
    xa, ya = int(np.rint(np.float32(x))), int(np.rint(np.float32(y)))
    xb, yb = int(np.rint(np.float32(x + w))), int(np.rint(np.float32(y + h)))
    for row in range(min(ya, yb), max(ya, yb) + 1):
        _hline(mask, row, min(xa, xb), max(xa, xb))
    return mask
