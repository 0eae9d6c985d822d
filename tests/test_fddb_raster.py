"""FDDB rasterisation: OpenCV's filled rectangle / ellipse, pixel for pixel, in each ellipse convention."""

from __future__ import annotations

import numpy as np
import pytest

from protocols.fddb import raster as R

ALL = R.CONVENTIONS
MODERN = ("negated-angle", "opencv4")  # conventions that a current OpenCV draws directly


def random_ellipses(seed: int, n: int, max_axis: float = 110.0, max_image: int = 200):
    """Ellipses of all sizes (some degenerate), many crossing the image border, in images of random size."""
    rng = np.random.default_rng(seed)
    w = rng.integers(1, max_image, n)
    h = rng.integers(1, max_image, n)
    ra = rng.uniform(0, max_axis, n)
    rb = rng.uniform(0, max_axis, n)
    tiny = rng.random(n) < 0.15
    ra[tiny] = rng.uniform(0, 4, tiny.sum())
    rb[tiny] = rng.uniform(0, 4, tiny.sum())
    theta = rng.uniform(-4, 4, n)
    cx = rng.uniform(-0.3, 1.3, n) * w
    cy = rng.uniform(-0.3, 1.3, n) * h
    return ra, rb, theta, cx, cy, w, h


def masks_of(runs: R.Runs, w, h):
    return [runs.region_mask(i, int(w[i]), int(h[i])) for i in range(runs.count)]


# -- the raster facts of spec §2.3 -------------------------------------------------------------------------


def test_sine_table_is_opencvs():
    assert len(R.SIN_TABLE) == 451
    assert R.SIN_TABLE[1] == np.float32(0.0174524)
    assert R.SIN_TABLE[30] == 0.5 and R.SIN_TABLE[90] == 1.0 and R.SIN_TABLE[450] == 1.0
    assert R.SIN_TABLE[45] == np.float32(0.7071068)
    k = np.arange(91)
    assert np.array_equal(R.SIN_TABLE[90 + k], R.SIN_TABLE[90 - k])
    assert np.array_equal(R.SIN_TABLE[180 + k], -R.SIN_TABLE[k])
    assert np.array_equal(R.SIN_TABLE[360 + k], R.SIN_TABLE[k])


@pytest.mark.parametrize("x, column", [(10.5, 10), (11.5, 12), (12.5, 12), (10.6, 11)])
def test_rectangle_corner_rounding_half_even(x, column):
    boxes = R.rasterise_rectangles([x], [5.0], [3.0], [3.0], [100], [100])
    assert boxes.x1[0] == column


def test_rectangle_inclusive_corners_and_clipping():
    boxes = R.rasterise_rectangles([10, 10, 30, -5, 95, 200], [20, 20, 0, -5, 95, 0], [20, 0, -10, 10, 10, 5],
                                   [20, 0, 5, 10, 10, 5], [100] * 6, [100] * 6)
    # 21 x 21 inclusive; w = h = 0 is one pixel; negative width fills between the corners; clipped by the image
    assert boxes.areas().tolist() == [441, 1, 66, 36, 25, 0]


@pytest.mark.parametrize("convention", ALL)
def test_circle_radius_10_paints_347_pixels(convention):
    runs = R.rasterise_ellipses([10.9], [10.2], [0.0], [50.0], [50.0], [100], [100], convention)
    mask = runs.region_mask(0, 100, 100)
    ys, xs = np.nonzero(mask)
    assert mask.sum() == 347
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (40, 60, 40, 60)


def test_drawing_angle_is_quantised_to_whole_degrees():
    for convention in ALL:
        runs = R.rasterise_ellipses([20, 20], [10, 10], [0.5, 0.505], [50, 50], [50, 50], [100, 100], [100, 100],
                                    convention)
        assert np.array_equal(runs.region_mask(0, 100, 100), runs.region_mask(1, 100, 100))
    assert R.drawing_angles(np.array([0.0, np.pi / 2, -1.4]), "opencv4").tolist() == [180, 90, 260]
    assert R.drawing_angles(np.array([0.0, np.pi / 2, -1.4]), "negated-angle").tolist() == [0, 90, -80]


def test_orientation_per_convention():
    """Positive theta tilts the major axis towards the upper right on a modern OpenCV (spec §2.3); the
    released program on OpenCV <= 2.1, like the "180 - angle" patch, tilts it the other way."""
    runs = {c: R.rasterise_ellipses([30], [5], [np.pi / 4], [50], [50], [100], [100], c).region_mask(0, 100, 100)
            for c in ALL}
    assert runs["opencv4"][35, 65] and not runs["opencv4"][65, 65]
    for c in ("opencv21", "negated-angle"):
        assert runs[c][65, 65] and not runs[c][35, 65]


def test_zero_axes_paint_the_centre_pixel():
    for convention in MODERN:
        runs = R.rasterise_ellipses([0.5, 0.5], [0.5, 0.5], [0, 0], [50, 0], [50, 0], [100, 100], [100, 100],
                                    convention)
        assert runs.areas().tolist() == [1, 1]
        assert runs.region_mask(0, 100, 100)[50, 50]
    # OpenCV <= 2.1 drew outlines 2 pixels inside the border: a point there paints nothing.
    runs = R.rasterise_ellipses([0.5, 0.5], [0.5, 0.5], [0, 0], [50, 1], [50, 1], [100, 100], [100, 100], "opencv21")
    assert runs.areas().tolist() == [1, 0]


def test_raster_table():
    """A fixed table of cases (centre, axes, angle, image) with areas and extents under each convention."""
    cases = [
        # ra, rb, theta, cx, cy, w, h
        (20, 15, 1.570796, 40, 50, 100, 100),
        (10, 8, 0.3, 80, 20, 100, 100),
        (30, 20, -1.4, 50, 40, 60, 80),  # clipped by the image
        (10, 10, 0, 25, 25, 50, 50),
        (2.9, 1.2, 0.7, 10.5, 10.5, 30, 30),  # 90-degree vertex step
        (14.9, 3, -0.2, 0, 0, 40, 40),  # 18-degree step, centre on the corner
    ]
    areas = {c: R.rasterise_ellipses(*[np.array(col, dtype=float) for col in zip(*cases)], convention=c).areas()
             for c in ALL}
    assert areas["opencv4"][:4].tolist() == [989, 273, 1528, 347]  # spec §6.2 mask facts
    assert areas["negated-angle"][:4].tolist() == [989, 273, 1528, 347]
    # OpenCV <= 2.1 loses the outline pixels in the 2-pixel border band: E3 touches the right border.
    assert areas["opencv21"][:4].tolist() == [989, 273, 1527, 347]
    for c in ALL:
        refs = [R.ellipse_mask_reference(*case[:5], case[5], case[6], c).sum() for case in cases]
        assert areas[c].tolist() == refs


# -- against the literal (scalar) port of OpenCV's loops, every convention ------------------------------------


@pytest.mark.parametrize("convention", ALL)
def test_vectorised_raster_equals_literal_loops(convention):
    ra, rb, theta, cx, cy, w, h = random_ellipses(1, 90)
    runs = R.rasterise_ellipses(ra, rb, theta, cx, cy, w, h, convention)
    for i, mask in enumerate(masks_of(runs, w, h)):
        ref = R.ellipse_mask_reference(ra[i], rb[i], theta[i], cx[i], cy[i], int(w[i]), int(h[i]), convention)
        assert np.array_equal(mask, ref), (convention, i)
    assert np.array_equal(runs.areas(), [m.sum() for m in masks_of(runs, w, h)])


def test_line_pixels_equal_literal_line_routine():
    rng = np.random.default_rng(3)
    n = 300
    pts = rng.integers(-20 * R.XY_ONE, 80 * R.XY_ONE, size=(n, 4))
    pts[:40, 2:] = pts[:40, :2]  # zero-length segments
    pts[40:80, 3] = pts[40:80, 1]  # horizontal
    w = rng.integers(3, 70, n)
    h = rng.integers(3, 70, n)
    for convention in ("opencv21", "opencv4"):
        seg, px, py = R.fixed_point_line_pixels(pts[:, 0], pts[:, 1], pts[:, 2], pts[:, 3], w, h, convention)
        for i in range(n):
            mask = np.zeros((h[i], w[i]), dtype=bool)
            R._line2_scalar(mask, (int(pts[i, 0]), int(pts[i, 1])), (int(pts[i, 2]), int(pts[i, 3])),
                            old=convention == "opencv21")
            mine = np.zeros_like(mask)
            mine[py[seg == i], px[seg == i]] = True
            assert np.array_equal(mine, mask), (convention, i)


def test_segments_crossing_the_right_border_clip_as_opencv():
    """clipLine's right edge is (w << 16) - 1: one pixel of this segment moves when the clip is off by one."""
    pts = [(1264567, 285365, 5180326, 2582443)]
    rng = np.random.default_rng(5)
    one = R.XY_ONE
    pts += list(zip(rng.integers(0, 40 * one, 3000).tolist(), rng.integers(0, 40 * one, 3000).tolist(),
                    rng.integers(40 * one, 80 * one, 3000).tolist(), rng.integers(-20 * one, 60 * one, 3000).tolist()))
    pts = np.array(pts, dtype=np.int64)
    n = len(pts)
    for convention in ("opencv21", "opencv4"):
        seg, px, py = R.fixed_point_line_pixels(pts[:, 0], pts[:, 1], pts[:, 2], pts[:, 3], np.full(n, 40),
                                                np.full(n, 40), convention)
        for i in range(n):
            mask = np.zeros((40, 40), dtype=bool)
            R._line2_scalar(mask, tuple(int(v) for v in pts[i, :2]), tuple(int(v) for v in pts[i, 2:]),
                            old=convention == "opencv21")
            mine = np.zeros_like(mask)
            mine[py[seg == i], px[seg == i]] = True
            assert np.array_equal(mine, mask), (convention, i)


def test_opencv21_equals_negated_angle_away_from_the_border():
    """Same vertices (the rotation flip is exactly the negated angle), same scan fill: the conventions only
    differ for ellipses reaching the band where OpenCV <= 2.1 clipped outlines (the image shrunk by 2 pixels;
    a clipped edge is re-stepped from its clipped end, so its pixels can move along its whole length)."""
    ra, rb, theta, cx, cy, w, h = random_ellipses(5, 400)
    old = R.rasterise_ellipses(ra, rb, theta, cx, cy, w, h, "opencv21")
    new = R.rasterise_ellipses(ra, rb, theta, cx, cy, w, h, "negated-angle")
    differ = 0
    for i, (a, b) in enumerate(zip(masks_of(old, w, h), masks_of(new, w, h))):
        ys, xs = np.nonzero(b)
        inside = len(xs) and xs.min() > 2 and ys.min() > 2 and xs.max() < w[i] - 3 and ys.max() < h[i] - 3
        if inside:
            assert np.array_equal(a, b), i
        differ += not np.array_equal(a, b)
    assert differ > 0  # the border band does matter for ellipses crossing the image border


# -- against OpenCV itself (tests only; the product never imports cv2) ---------------------------------------


@pytest.mark.parametrize("convention", MODERN)
def test_ellipses_pixel_exact_against_opencv(convention):
    cv2 = pytest.importorskip("cv2")
    ra, rb, theta, cx, cy, w, h = random_ellipses(7, 700, max_axis=150, max_image=260)
    runs = R.rasterise_ellipses(ra, rb, theta, cx, cy, w, h, convention)
    p = R.ellipse_params(ra, rb, theta, cx, cy, convention)
    for i in range(len(ra)):
        img = np.zeros((h[i], w[i]), np.uint8)
        cv2.ellipse(img, (int(p.cx[i]), int(p.cy[i])), (int(p.a[i]), int(p.b[i])), int(p.angle[i]), 0, 360, 10, -1)
        assert np.array_equal(runs.region_mask(i, int(w[i]), int(h[i])), img > 0), (convention, i)


def test_official_angle_is_passed_unrounded_like_cvellipse():
    """cvEllipse rounds the double angle itself: our integer angle is what OpenCV uses."""
    cv2 = pytest.importorskip("cv2")
    theta = np.array([0.3, -1.4, 1.2345])
    for convention in MODERN:
        p = R.ellipse_params(np.full(3, 30.0), np.full(3, 12.0), theta, np.full(3, 50.0), np.full(3, 50.0), convention)
        t = (np.pi - theta) * 180 / np.pi
        raw = 180 - t if convention == "negated-angle" else t
        for i in range(3):
            a = np.zeros((100, 100), np.uint8)
            b = np.zeros((100, 100), np.uint8)
            cv2.ellipse(a, (50, 50), (30, 12), float(raw[i]), 0, 360, 10, -1)
            cv2.ellipse(b, (50, 50), (30, 12), int(p.angle[i]), 0, 360, 10, -1)
            assert np.array_equal(a, b)


def test_rectangles_pixel_exact_against_opencv():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(11)
    n = 600
    x, y = rng.uniform(-50, 300, n), rng.uniform(-50, 300, n)
    w, h = rng.uniform(-60, 200, n), rng.uniform(-60, 200, n)
    x[:100] = np.round(x[:100]) + 0.5  # exact halves: half-even rounding
    W, H = rng.integers(1, 260, n), rng.integers(1, 260, n)
    boxes = R.rasterise_rectangles(x, y, w, h, W, H)
    for i in range(n):
        img = np.zeros((H[i], W[i]), np.uint8)
        p1 = (int(np.rint(np.float32(x[i]))), int(np.rint(np.float32(y[i]))))
        p2 = (int(np.rint(np.float32(x[i] + w[i]))), int(np.rint(np.float32(y[i] + h[i]))))
        cv2.rectangle(img, p1, p2, 10, -1)
        mine = np.zeros((H[i], W[i]), dtype=bool)
        if boxes.x1[i] <= boxes.x2[i] and boxes.y1[i] <= boxes.y2[i]:
            mine[boxes.y1[i]:boxes.y2[i] + 1, boxes.x1[i]:boxes.x2[i] + 1] = True
        assert np.array_equal(mine, img > 0), i
        assert np.array_equal(mine, R.rectangle_mask_reference(x[i], y[i], w[i], h[i], int(W[i]), int(H[i])))


# -- intersections on runs ------------------------------------------------------------------------------------


def test_run_intersections_equal_mask_counts():
    ra, rb, theta, cx, cy, _, _ = random_ellipses(9, 60, max_axis=60)
    w = np.full(60, 150)
    h = np.full(60, 150)
    cx, cy = cx % 150, cy % 150
    a = R.rasterise_ellipses(ra, rb, theta, cx, cy, w, h, "opencv4")
    b = R.rasterise_ellipses(rb, ra, -theta, cy, cx, w, h, "opencv21")
    rng = np.random.default_rng(2)
    bx, by = rng.uniform(-20, 150, 60), rng.uniform(-20, 150, 60)
    boxes = R.rasterise_rectangles(bx, by, rng.uniform(0, 90, 60), rng.uniform(0, 90, 60), w, h)
    ia, ib = np.repeat(np.arange(60), 60), np.tile(np.arange(60), 60)
    got_box = R.runs_box_intersections(a, ia, boxes, ib)
    got_runs = R.runs_runs_intersections(a, ia, b, ib)
    ma, mb = masks_of(a, w, h), masks_of(b, w, h)
    for k, (i, j) in enumerate(zip(ia, ib)):
        box = np.zeros((150, 150), dtype=bool)
        if boxes.x1[j] <= boxes.x2[j] and boxes.y1[j] <= boxes.y2[j]:
            box[boxes.y1[j]:boxes.y2[j] + 1, boxes.x1[j]:boxes.x2[j] + 1] = True
        assert got_box[k] == (ma[i] & box).sum()
        assert got_runs[k] == (ma[i] & mb[j]).sum()


def test_unknown_convention_is_rejected():
    with pytest.raises(ValueError, match="opencv21"):
        R.check_convention("opencv3")


# -- regions that paint nothing, zero axes, coordinates far beyond the image ----------------------------------


@pytest.mark.parametrize("convention", ALL)
def test_ellipses_beside_the_image_paint_nothing(convention):
    """Within the image's rows but left / right of it: area 0, not an IndexError (every vertex step)."""
    ra, rb, cx = [10, 5, 2, 12], [5, 4, 1, 12], [-20, 80, -5, 90]
    for keep in ([0], [0, 1], [0, 1, 2, 3]):
        args = [np.array(v, dtype=float)[keep] for v in (ra, rb, [0, 0.3, 1, -1], cx, [15, 15, 25, 25])]
        runs = R.rasterise_ellipses(*args, [50] * len(keep), [50] * len(keep), convention)
        assert runs.areas().tolist() == [0] * len(keep)
        assert all(not m.any() for m in masks_of(runs, [50] * len(keep), [50] * len(keep)))
    mixed = R.rasterise_ellipses([10, 10], [5, 5], [0, 0], [-20, 25], [15, 25], [50, 50], [50, 50], convention)
    ref = R.ellipse_mask_reference(10, 5, 0, 25, 25, 50, 50, convention)
    assert mixed.areas().tolist() == [0, int(ref.sum())]


@pytest.mark.parametrize("convention", ALL)
def test_zero_and_fractional_axes_equal_literal_loops(convention):
    cases = [(0, 0), (0.4, 0), (-0.5, 0.9), (0, 12), (20, 0), (0.99, 7.5), (-0.2, 30)]
    ra, rb = (np.array(col, dtype=float) for col in zip(*cases))
    n = len(cases)
    theta, cx, cy = np.linspace(-2, 2, n), np.full(n, 30.5), np.full(n, 29.0)
    runs = R.rasterise_ellipses(ra, rb, theta, cx, cy, np.full(n, 60), np.full(n, 60), convention)
    for i, mask in enumerate(masks_of(runs, [60] * n, [60] * n)):
        ref = R.ellipse_mask_reference(ra[i], rb[i], theta[i], cx[i], cy[i], 60, 60, convention)
        assert np.array_equal(mask, ref) and mask.any(), (convention, cases[i])


def test_rectangles_far_beyond_the_image_are_clipped_without_warnings():
    import warnings

    boxes = [(-1e20, -1e20, 2e20, 2e20), (-1e300, 5, 1e308, 10), (1e308, 0, 1e308, 5), (0, 0, 1e308, 1e308),
             (-3e9, 10, 3e9 + 20, 1), (60, 0, 1e20, 10), (-1e20, 0, 1e20 - 1e4, 10)]
    x, y, w, h = (np.array(col) for col in zip(*boxes))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = R.rasterise_rectangles(x, y, w, h, np.full(len(boxes), 50), np.full(len(boxes), 40))
    assert got.areas().tolist() == [2000, 50 * 11, 0, 2000, 21 * 2, 0, 0]
    for k, box in enumerate(boxes):
        assert R.rectangle_mask_reference(*box, 50, 40).sum() == got.areas()[k]
