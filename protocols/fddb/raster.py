"""Pixel-exact rasterisation of FDDB regions, as the official `evaluate` paints them through OpenCV.

The official program fills every region into an image-sized 8-bit mask with OpenCV's line-type-8 drawing
and counts pixels, so the FDDB numbers depend on OpenCV's exact raster (spec protocols.md §2.3). This module
reproduces that raster in NumPy, vectorised over many regions, without depending on OpenCV:

* rectangles (`cvRectangle`, filled): corners rounded half-even from single precision, every pixel between
  them inclusive, clipped to the image;
* ellipses (`cvEllipse`, filled): OpenCV's `ellipse2Poly` polygon (16.16 fixed point, its 7-digit sine table,
  1-degree angles, 5/18/30/90-degree vertex steps), then `FillConvexPoly`: each edge drawn with the
  fixed-point line routine, then the scan-line fill.

Three ellipse conventions (`CONVENTIONS`):

* ``opencv21``: the program as released, on OpenCV <= 2.1, whose `ellipse2Poly` turned the rotation the
  other way on screen (``y = cy - x sin a - y cos a``), whose edge walk is the older loop, and whose
  fixed-point line routine clipped edges to the image shrunk by 2 pixels (the scan fill still reaches the
  border). Written from the OpenCV 1.x / 2.x drawing code; no OpenCV 2.1 binary was run. Away from that
  border band it equals ``negated-angle`` pixel for pixel (same vertices in reverse order, same fill);
* ``negated-angle``: the community's "180 - angle" patch (imistyrain/fddb) on OpenCV >= 2.2; pixel-exact
  against OpenCV 4.x, and it reproduces imistyrain's published ROC files byte for byte;
* ``opencv4``: the unmodified program on OpenCV >= 2.2; pixel-exact against OpenCV 4.x, and it reproduces the
  official program's figures of spec §6.2 / §6.3 (the spec's oracle ran on OpenCV 4.6 and 2.4.11).

The scalar functions at the end (`ellipse_mask_reference`, ...) write OpenCV's loops out literally; the tests
check the vectorised closed forms against them for every convention.

Regions come out as row runs (`Runs`): per region, sorted (row, x1, x2) pixel intervals, so that the
intersection of two regions is a sum over shared rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONVENTIONS = ("opencv21", "negated-angle", "opencv4")
MSVC_PI = 3.14156  # the official reader's M_PI fallback where the compiler lacks it (MSVC builds)
XY_SHIFT = 16
XY_ONE = 1 << XY_SHIFT
HALF = XY_ONE >> 1
# OpenCV's int32 16.16 drawing (and the C++ casts of the official reader) only make sense below this.
MAX_ELLIPSE_COORD = 32767.0
# cvEllipse rounds the drawing angle (degrees, up to 180 more under "negated-angle") to a C int; beyond this
# many radians (with the smaller MSVC pi) that int overflows and the official program is undefined.
MAX_ELLIPSE_ANGLE = (2 ** 31 - 1 - 360) * 3.14156 / 180.0


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


def drawing_angles(theta: np.ndarray, convention: str, pi: float = math.pi) -> np.ndarray:
    """The integer degrees cvEllipse rotates by: round((pi - theta) 180/pi), or of 180 minus it when negated.

    `pi` is the reader's M_PI (MSVC_PI for Windows builds of the official program).
    """
    check_convention(convention)
    degrees = (pi - np.asarray(theta, dtype=np.float64)) * 180.0 / pi  # the official reader's formula
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
                   convention: str, pi: float = math.pi) -> EllipseParams:
    """FDDB ellipses (major radius, minor radius, angle in radians, centre) as cvEllipse arguments."""
    angle = drawing_angles(theta, convention, pi)
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
    right = np.broadcast_to(right, x1.shape)
    bottom = np.broadcast_to(bottom, x1.shape)

    def codes(x, y, r, b):
        return (x < 0).astype(np.int64) + (x > r) * 2 + (y < 0) * 4 + (y > b) * 8

    c1, c2 = codes(x1, y1, right, bottom), codes(x2, y2, right, bottom)
    visible = (c1 | c2) == 0
    todo = np.nonzero(((c1 & c2) == 0) & ~visible)[0]
    if len(todo):
        # Only segments crossing the border are clipped; done on that subset, in OpenCV's order.
        a1, b1, a2, b2 = x1[todo], y1[todo], x2[todo], y2[todo]
        r, bt = right[todo], bottom[todo]
        k1, k2 = c1[todo], c2[todo]

        def step(delta_a, span_b, span_a):
            with np.errstate(divide="ignore", invalid="ignore"):
                if exact_int:
                    return trunc_div(delta_a * span_b, np.where(span_a == 0, 1, span_a))
                return np.trunc(delta_a.astype(np.float64) * span_b / span_a).astype(np.int64)

        sel = (k1 & 12) != 0
        if sel.any():
            a = np.where(k1 < 8, 0, bt)
            a1 = np.where(sel, a1 + step(a - b1, a2 - a1, b2 - b1), a1)
            b1 = np.where(sel, a, b1)
            k1 = np.where(sel, (a1 < 0).astype(np.int64) + (a1 > r) * 2, k1)
        sel = (k2 & 12) != 0
        if sel.any():
            a = np.where(k2 < 8, 0, bt)
            a2 = np.where(sel, a2 + step(a - b2, a2 - a1, b2 - b1), a2)
            b2 = np.where(sel, a, b2)
            k2 = np.where(sel, (a2 < 0).astype(np.int64) + (a2 > r) * 2, k2)
        again = ((k1 & k2) == 0) & ((k1 | k2) != 0)
        sel = again & (k1 != 0)
        if sel.any():
            a = np.where(k1 == 1, 0, r)
            b1 = np.where(sel, b1 + step(a - a1, b2 - b1, a2 - a1), b1)
            a1 = np.where(sel, a, a1)
            k1 = np.where(sel, 0, k1)
        sel = again & (k2 != 0)
        if sel.any():
            a = np.where(k2 == 1, 0, r)
            b2 = np.where(sel, b2 + step(a - a2, b2 - b1, a2 - a1), b2)
            a2 = np.where(sel, a, a2)
            k2 = np.where(sel, 0, k2)
        x1[todo], y1[todo], x2[todo], y2[todo] = a1, b1, a2, b2
        visible[todo] = (k1 | k2) == 0
    return x1, y1, x2, y2, visible


def _segment_steps(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., counts[k] - 1 for every segment k, concatenated (int64)."""
    total = int(counts.sum())
    first = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(first, counts)


def _line_run_parts(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, tags: np.ndarray,
                    ) -> list[tuple[np.ndarray, ...]]:
    """Stepped runs of clipped segments already ordered the way the routine walks them: (tag, row, x1, x2)."""
    xmajor = np.abs(x2 - x1) > np.abs(y2 - y1)
    # The explicitly painted (rounded) second endpoint ...
    end_x = (x2 + HALF) >> XY_SHIFT
    out = [(tags, (y2 + HALF) >> XY_SHIFT, end_x, end_x)]
    # ... then ecount + 1 stepped pixels: one per row when the line is steep,
    ymaj = np.nonzero(~xmajor)[0]
    if len(ymaj):
        ax1, ay1, ax2, ay2 = x1[ymaj], y1[ymaj], x2[ymaj], y2[ymaj]
        slope = trunc_div((ax2 - ax1) * XY_ONE, (ay2 - ay1) | 1)
        counts = ((ay2 - ay1) >> XY_SHIFT) + 1
        t = _segment_steps(counts)
        row = np.repeat((ay1 + HALF) >> XY_SHIFT, counts) + t
        col = (np.repeat(ax1 + HALF, counts) + t * np.repeat(slope, counts)) >> XY_SHIFT
        out.append((np.repeat(tags[ymaj], counts), row, col, col))
    # ... and, when it is flat, runs of consecutive columns sharing a row.
    xmaj = np.nonzero(xmajor)[0]
    if len(xmaj):
        ax1, ay1, ax2, ay2 = x1[xmaj], y1[xmaj], x2[xmaj], y2[xmaj]
        slope = trunc_div((ay2 - ay1) * XY_ONE, (ax2 - ax1) | 1)
        ecount = (ax2 - ax1) >> XY_SHIFT
        base = ay1 + HALF
        r_first = base >> XY_SHIFT
        counts = np.abs(((base + ecount * slope) >> XY_SHIFT) - r_first) + 1
        q = _segment_steps(counts)
        s, b = np.repeat(slope, counts), np.repeat(base, counts)
        row = np.repeat(r_first, counts) + np.where(s < 0, -q, q)
        # First step t whose row (b + t s) >> 16 reaches `row` (ceil division; slope 0 means one row).
        with np.errstate(divide="ignore", invalid="ignore"):
            up = -((b - row * XY_ONE) // np.where(s > 0, s, 1))
            down = -((b + 1 - (row + 1) * XY_ONE) // np.where(s < 0, s, -1))
        t_begin = np.where(q == 0, 0, np.maximum(np.where(s > 0, up, down), 0))
        t_end = np.empty_like(t_begin)
        t_end[:-1] = t_begin[1:] - 1
        t_end[np.cumsum(counts) - 1] = ecount
        c0 = np.repeat((ax1 + HALF) >> XY_SHIFT, counts)
        out.append((np.repeat(tags[xmaj], counts), row, c0 + t_begin, c0 + t_end))
    return out


def fixed_point_line_runs(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, width: np.ndarray,
                          height: np.ndarray, convention: str, tag: np.ndarray | None = None,
                          as_parts: bool = False):
    """What OpenCV's 16.16 fixed-point 8-connected line routine paints, as (tag, row, x1, x2) runs.

    `tag` labels each segment's runs (default: the segment index); `as_parts` returns a list of such array
    tuples instead of one. Modern OpenCV clips to the image and checks every pixel; OpenCV <= 2.x clipped
    to the image shrunk by 2 pixels on each side (so edges never touch the 2-pixel border band). Runs may
    overlap.
    """
    x1, y1, x2, y2 = (np.asarray(v, dtype=np.int64) for v in (x1, y1, x2, y2))
    tag = np.arange(len(x1), dtype=np.int64) if tag is None else np.asarray(tag, dtype=np.int64)
    width = np.broadcast_to(np.asarray(width, dtype=np.int64), x1.shape)
    height = np.broadcast_to(np.asarray(height, dtype=np.int64), x1.shape)
    old = convention == "opencv21"
    if old:
        shift = 2 * XY_ONE
        x1, y1, x2, y2 = x1 - shift, y1 - shift, x2 - shift, y2 - shift
        right = (width - 5) * XY_ONE  # size ((w - 5) << 16) + 1, minus one
        bottom = (height - 5) * XY_ONE
        usable = (right >= 0) & (bottom >= 0)
    else:
        right = width * XY_ONE - 1
        bottom = height * XY_ONE - 1
        usable = (width > 0) & (height > 0)
    x1, y1, x2, y2, visible = clip_segments(x1, y1, x2, y2, right, bottom, exact_int=old)
    seg_all = np.nonzero(visible & usable)[0]
    x1, y1, x2, y2 = x1[seg_all], y1[seg_all], x2[seg_all], y2[seg_all]
    xmajor = np.abs(x2 - x1) > np.abs(y2 - y1)
    swap = np.where(xmajor, x2 < x1, y2 < y1)
    x1, x2 = np.where(swap, x2, x1), np.where(swap, x1, x2)
    y1, y2 = np.where(swap, y2, y1), np.where(swap, y1, y2)
    if old:
        parts = [(t, row + 2, a + 2, b + 2) for t, row, a, b in _line_run_parts(x1, y1, x2, y2, tag[seg_all])]
    else:
        # Rounding can reach one pixel past the clip rectangle: those segments get the per-pixel check.
        w, h = width[seg_all], height[seg_all]
        risky = ((np.maximum(x1, x2) + HALF) >> XY_SHIFT >= w) | ((np.maximum(y1, y2) + HALF) >> XY_SHIFT >= h)
        safe = np.nonzero(~risky)[0]
        parts = _line_run_parts(x1[safe], y1[safe], x2[safe], y2[safe], tag[seg_all[safe]])
        near = np.nonzero(risky)[0]
        if len(near):
            limits = np.stack([w[near], h[near]], axis=1)
            checked = _line_run_parts(x1[near], y1[near], x2[near], y2[near], np.arange(len(near)))
            for local, row, a, b in checked:
                lw, lh = limits[local, 0], limits[local, 1]
                b = np.minimum(b, lw - 1)
                keep = (row < lh) & (a <= b)
                parts.append((tag[seg_all[near]][local[keep]], row[keep], a[keep], b[keep]))
    if as_parts:
        return parts
    tag_out, row, a, b = (np.concatenate(p) for p in zip(*parts)) if parts else (np.zeros(0, np.int64),) * 4
    return tag_out, row, a, b


def fixed_point_line_pixels(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, width: np.ndarray,
                            height: np.ndarray, convention: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same as single pixels: (segment index, x, y), repeats removed."""
    seg, row, a, b = fixed_point_line_runs(x1, y1, x2, y2, width, height, convention)
    counts = b - a + 1
    px = np.repeat(a, counts) + _segment_steps(counts)
    seg, py = np.repeat(seg, counts), np.repeat(row, counts)
    key = np.unique(np.stack([seg, py, px], axis=1), axis=0)
    return key[:, 0], key[:, 2], key[:, 1]


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
        total = np.concatenate([[0], np.cumsum(self.x2 - self.x1 + 1, dtype=np.int64)])
        return total[self.start[1:]] - total[self.start[:-1]]

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

    Spans must be sorted by (region, row); spans and pixels must lie in their region's row band
    [row0, row0 + nrows).
    """
    band = _Band(n, row0, nrows)
    band.set_spans(span_region, span_row, span_x1, span_x2)
    pix_d = band.base[pix_region] - band.row0[pix_region] + pix_row
    return band.runs(pix_d, pix_x, pix_x)


class _Band:
    """Dense per-(region, row) span table used while a set of regions is assembled."""

    def __init__(self, n: int, row0: np.ndarray, nrows: np.ndarray) -> None:
        self.n = n
        self.row0 = np.asarray(row0, dtype=np.int64)
        self.nrows = np.maximum(np.asarray(nrows, dtype=np.int64), 0)
        self.base = np.concatenate([[0], np.cumsum(self.nrows)]).astype(np.int64)
        self.total = int(self.base[-1])
        self.lo = np.full(self.total, np.iinfo(np.int64).max // 4, dtype=np.int64)
        self.hi = np.full(self.total, -1, dtype=np.int64)
        self.span_d = np.zeros(0, dtype=np.int64)
        self.span_x1 = self.span_d
        self.span_x2 = self.span_d

    def set_spans(self, region: np.ndarray, row: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> None:
        d = self.base[region] - self.row0[region] + row
        if len(d) > 1 and not (np.diff(d) > 0).all():
            raise AssertionError("spans must be sorted by (region, row), one per row")
        self.span_d, self.span_x1, self.span_x2 = d, x1, x2
        self.lo[d], self.hi[d] = x1, x2

    def outside(self, d: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Which runs (dense row d, columns a..b) the spans do not already cover."""
        if len(d) and (d.min() < 0 or d.max() >= self.total):
            raise AssertionError("outline pixel outside its region's row band")
        return (a < self.lo[d]) | (b > self.hi[d])

    def runs(self, pix_d: np.ndarray, pix_a: np.ndarray, pix_b: np.ndarray) -> Runs:
        """Spans united with the given extra runs, merged per row."""
        if self.total == 0:
            return _empty_runs(self.n)
        keep = self.outside(pix_d, pix_a, pix_b)
        pix_d, pix_a, pix_b = pix_d[keep], pix_a[keep], pix_b[keep]
        width_key = int(max(int(pix_b.max(initial=0)), int(np.max(self.span_x2, initial=0)))) + 2
        pix_key = pix_d * width_key + pix_a
        order = np.argsort(pix_key, kind="stable")
        keys = np.concatenate([self.span_d * width_key + self.span_x1, pix_key[order]])
        ends = np.concatenate([self.span_d * width_key + self.span_x2, (pix_d * width_key + pix_b)[order]])
        # Two sorted runs: the stable sort only merges them.
        merged = np.argsort(keys, kind="stable")
        keys, ends = keys[merged], ends[merged]
        seg_d = keys // width_key
        # Merge touching or overlapping intervals within a row (keys carry the row, so rows never merge).
        reach = np.maximum.accumulate(ends)
        new_run = np.ones(len(keys), dtype=bool)
        new_run[1:] = keys[1:] > reach[:-1] + 1
        new_run[1:] |= seg_d[1:] != seg_d[:-1]
        starts = np.nonzero(new_run)[0]
        last = np.append(starts[1:], len(keys))[:len(starts)] - 1  # empty when nothing was painted at all
        run_d = seg_d[starts]
        run_x1 = keys[starts] - run_d * width_key
        run_x2 = reach[last] - run_d * width_key
        start = np.searchsorted(run_d, self.base, side="left").astype(np.int64)
        run_row = run_d + np.repeat(self.row0 - self.base[:-1], np.diff(start))
        row_start = np.concatenate([[0], np.cumsum(np.bincount(run_d, minlength=self.total))]).astype(np.int64)
        return Runs(start=start, row=run_row, x1=run_x1, x2=run_x2, row0=self.row0, nrows=self.nrows,
                    band_base=self.base, row_start=row_start)


def _scan_fill(vx: np.ndarray, vy: np.ndarray, width: np.ndarray, height: np.ndarray,
               polygon: np.ndarray) -> tuple[np.ndarray, ...]:
    """FillConvexPoly's scan-line spans for polygons of equal vertex count: (polygon id, row, x1, x2).

    Closed form of OpenCV's two-edge walk: each side follows the vertices whose rounded row sets a new
    maximum; an edge activated at row y0 ending at row y1 advances by ((xe-xs)*2 + (y1-y0)) / (2 (y1-y0))
    (C division) per row; the fill stops before the bottom row, which only the outline paints. Spans come
    out sorted by (polygon, row).
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
    y = None
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
        counts = np.maximum(np.minimum(ty, height[poly]) - lo, 0)
        if y is None:  # both sides cover the same rows of every polygon (checked below)
            y = _segment_steps(counts) + np.repeat(lo, counts)
        elif not np.array_equal(np.bincount(poly, counts, n), np.bincount(sides[0][0], sides[0][1], n)):
            raise AssertionError("scan-fill sides disagree on rows (please report this ellipse)")
        sides.append((poly, counts, np.repeat(xs - ys * dx, counts) + y * np.repeat(dx, counts)))
    (poly0, counts0, x0), (_, _, x1) = sides
    xx1 = (np.minimum(x0, x1) + HALF) >> XY_SHIFT
    xx2 = (np.maximum(x0, x1) + HALF) >> XY_SHIFT
    owner = np.repeat(polygon[poly0], counts0)
    if ((xmin_px < 0) | (xmax_px >= width)).any():  # clip spans of polygons crossing a side of the image
        w = np.repeat(width[poly0], counts0)
        keep = (xx2 >= 0) & (xx1 < w)
        xx1, xx2 = np.maximum(xx1, 0), np.minimum(xx2, w - 1)
        if not keep.all():
            owner, y, xx1, xx2 = owner[keep], y[keep], xx1[keep], xx2[keep]
    return owner, y, xx1, xx2


def rasterise_ellipses(ra: np.ndarray, rb: np.ndarray, theta: np.ndarray, cx: np.ndarray, cy: np.ndarray,
                       width: np.ndarray, height: np.ndarray, convention: str, pi: float = math.pi) -> Runs:
    """Filled ellipses (FDDB parameters, each in its own width x height image) as OpenCV paints them."""
    check_convention(convention)
    n = len(np.asarray(ra))
    if n == 0:
        return _empty_runs(0)
    width = np.broadcast_to(np.asarray(width, dtype=np.int64), (n,)).copy()
    height = np.broadcast_to(np.asarray(height, dtype=np.int64), (n,)).copy()
    p = ellipse_params(ra, rb, theta, cx, cy, convention, pi)
    steps = vertex_step(p.a, p.b)
    row_lo = np.zeros(n, dtype=np.int64)
    row_hi = np.full(n, -1, dtype=np.int64)
    groups = []
    for step in (5, 18, 30, 90):
        members = np.nonzero(steps == step)[0]
        if len(members) == 0:
            continue
        sub = EllipseParams(p.cx[members], p.cy[members], p.a[members], p.b[members], p.angle[members])
        vx, vy = ellipse_vertices(sub, step, convention)
        rows = (vy + HALF) >> XY_SHIFT
        row_lo[members] = np.maximum(rows.min(axis=1), 0)
        row_hi[members] = np.minimum(rows.max(axis=1), height[members] - 1)
        groups.append((members, vx, vy, _scan_fill(vx, vy, width[members], height[members], members)))
    band = _Band(n, row_lo, row_hi - row_lo + 1)
    spans = [g[3] for g in groups]
    span_region, span_row, span_x1, span_x2 = (np.concatenate(parts) for parts in zip(*spans))
    order = np.argsort(span_region, kind="stable")  # groups interleave regions; rows stay sorted within
    band.set_spans(span_region[order], span_row[order], span_x1[order], span_x2[order])
    pix_d, pix_a, pix_b = [], [], []
    for members, vx, vy, _ in groups:
        # The outline: FillConvexPoly draws (v[k-1], v[0]) first, then every (v[i-1], v[i]).
        k = vx.shape[1]
        owner = np.repeat(members, k)
        offset = np.repeat(band.base[members] - band.row0[members], k)  # dense row index = offset + row
        parts = fixed_point_line_runs(np.roll(vx, 1, axis=1).ravel(), np.roll(vy, 1, axis=1).ravel(), vx.ravel(),
                                      vy.ravel(), width[owner], height[owner], convention, tag=offset, as_parts=True)
        for off, row, a, b in parts:
            d = off + row
            keep = band.outside(d, a, b)
            pix_d.append(d[keep])
            pix_a.append(a[keep])
            pix_b.append(b[keep])
    return band.runs(np.concatenate(pix_d), np.concatenate(pix_a), np.concatenate(pix_b))


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
    width = np.asarray(width, dtype=np.int64)
    height = np.asarray(height, dtype=np.int64)
    with np.errstate(over="ignore"):  # x + w may overflow to +-inf: still beyond the image, clipped below
        x2, y2 = x + np.asarray(w, dtype=np.float64), y + np.asarray(h, dtype=np.float64)
    xa, xb = (round_half_even_f32(clip_to_span(v, width)) for v in (x, x2))
    ya, yb = (round_half_even_f32(clip_to_span(v, height)) for v in (y, y2))
    return Boxes(x1=np.maximum(np.minimum(xa, xb), 0), y1=np.maximum(np.minimum(ya, yb), 0),
                 x2=np.minimum(np.maximum(xa, xb), width - 1), y2=np.minimum(np.maximum(ya, yb), height - 1))


def clip_to_span(values: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Coordinates brought into [-1, size]: the same clipped pixels, but integers for any finite value."""
    # Every value beyond the image rounds to a column beyond it, so clipping first changes no painted pixel.
    return np.clip(np.asarray(values, dtype=np.float64), -1.0, np.asarray(size, dtype=np.float64))


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
    k = np.repeat(first, counts) + _segment_steps(counts)
    overlap = np.minimum(runs.x2[k], np.repeat(bx2, counts)) - np.maximum(runs.x1[k], np.repeat(bx1, counts)) + 1
    total = np.concatenate([[0], np.cumsum(np.maximum(overlap, 0))])
    ends = np.cumsum(counts)
    return total[ends] - total[ends - counts]


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
                           convention: str, pi: float = math.pi) -> np.ndarray:
    """One filled ellipse as a full-size boolean image, OpenCV's loops written out (slow, independent)."""
    check_convention(convention)
    p = ellipse_params(np.array([ra]), np.array([rb]), np.array([theta]), np.array([cx]), np.array([cy]),
                       convention, pi)
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

    def pixel(value: float, size: int) -> int:
        return int(np.rint(np.float32(min(max(value, -1.0), float(size)))))  # beyond the image stays beyond

    xa, ya, xb, yb = pixel(x, width), pixel(y, height), pixel(x + w, width), pixel(y + h, height)
    for row in range(max(min(ya, yb), 0), min(max(ya, yb), height - 1) + 1):
        _hline(mask, row, min(xa, xb), max(xa, xb))
    return mask
