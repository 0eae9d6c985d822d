"""Anchor layout and box coding (spec §3)."""

from __future__ import annotations

import math

import pytest
import torch

from detectors.hambox.anchors import (anchor_count, anchor_sizes, anchors_per_location, feature_shape,
                                      generate_anchors, level_numbers, level_ranges)
from detectors.hambox.box_coding import box_area, decode, encode, pairwise_iou, to_cxcywh, to_xyxy


def test_anchor_counts_at_640():
    assert anchor_count((640, 640)) == 34_125
    assert anchor_count((640, 640), "P2-P6") == 34_100
    # ZCC shifted anchors on P2 add 3 x 160^2
    assert anchor_count((640, 640), "P2-P7", shifted_levels=(2,)) == 34_125 + 3 * 160 * 160


def test_feature_shapes_use_ceil_division():
    assert feature_shape((641, 500), 128) == (6, 4)
    assert anchor_count((1, 1)) == 6


def test_anchor_sizes():
    assert anchor_sizes(0.68, level_numbers("P2-P7")) == pytest.approx((10.88, 21.76, 43.52, 87.04, 174.08, 348.16))
    assert anchor_sizes(1.0, level_numbers("P2-P6")) == (16.0, 32.0, 64.0, 128.0, 256.0)
    with pytest.raises(ValueError, match="unknown pyramid levels"):
        level_numbers("P3-P7")


def test_anchor_positions_and_order():
    anchors = generate_anchors([(2, 3), (1, 2)], [4, 8], [16.0, 32.0])
    assert anchors.shape == (8, 4)
    centres = to_cxcywh(anchors)
    # level-major, row-major (y, x)
    assert centres[:6, :2].tolist() == [[2, 2], [6, 2], [10, 2], [2, 6], [6, 6], [10, 6]]
    assert centres[6:, :2].tolist() == [[4, 4], [12, 4]]
    assert centres[:6, 2:].unique().tolist() == [16.0]
    assert level_ranges([(2, 3), (1, 2)], [1, 1]) == [(0, 6), (6, 8)]


def test_shifted_anchors():
    assert anchors_per_location(2, (2,)) == 4 and anchors_per_location(3, (2,)) == 1
    anchors = generate_anchors([(1, 2)], [4], [10.0], per_location=[4])
    centres = to_cxcywh(anchors)[:, :2].tolist()
    # anchor within location after (y, x): offsets (0,0), (s/2,0), (0,s/2), (s/2,s/2)
    assert centres == [[2, 2], [4, 2], [2, 4], [4, 4], [6, 2], [8, 2], [6, 4], [8, 4]]


def test_encode_decode_round_trip():
    g = torch.Generator().manual_seed(1)
    anchors = to_xyxy(torch.cat([torch.rand(500, 2, generator=g) * 600, torch.rand(500, 2, generator=g) * 300 + 5], 1))
    boxes = to_xyxy(torch.cat([torch.rand(500, 2, generator=g) * 600, torch.rand(500, 2, generator=g) * 300 + 2], 1))
    deltas = encode(anchors, boxes)
    assert torch.allclose(decode(anchors, deltas), boxes, atol=1e-3)
    d = torch.randn(500, 4, generator=g)
    assert torch.allclose(encode(anchors, decode(anchors, d)), d, atol=1e-4)


def test_encode_values():
    anchor = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    box = torch.tensor([[1.0, 2.0, 21.0, 7.0]])  # centre (11, 4.5), size (20, 5)
    t = encode(anchor, box)[0].tolist()
    assert t == pytest.approx([6 / 1.0, -0.5 / 1.0, math.log(2.0) / 0.2, math.log(0.5) / 0.2])


def test_decode_clamps_huge_size_deltas():
    boxes = decode(torch.tensor([[0.0, 0.0, 16.0, 16.0]]), torch.tensor([[0.0, 0.0, 1e4, 1e4]]))
    assert torch.isfinite(boxes).all() and (boxes[0, 2] - boxes[0, 0]).item() == pytest.approx(1000.0, rel=1e-4)


def test_encode_keeps_a_zero_width_target_finite():
    # ln(0) has no finite value; a degenerate box (spec 6 drops them, but one may slip through) must not put
    # -inf into the regression targets; its size delta is just far below any real box's
    anchor = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    t = encode(anchor, torch.tensor([[5.0, 0.0, 5.0, 10.0]]))[0]
    assert torch.isfinite(t).all()
    assert t[:2].tolist() == [0.0, 0.0] and t[3].item() == pytest.approx(0.0, abs=1e-6)
    assert t[2].item() < math.log(1e-30 / 10.0) / 0.2


def test_pairwise_iou():
    a = torch.tensor([[0.0, 0, 10, 10], [5, 5, 15, 15]])
    b = torch.tensor([[0.0, 0, 10, 10], [0, 0, 5, 5], [20, 20, 20, 30]])
    assert torch.allclose(pairwise_iou(a, b), torch.tensor([[1.0, 0.25, 0.0], [25 / 175, 0.0, 0.0]]))
    assert pairwise_iou(a[None].expand(3, 2, 4), b[None]).shape == (3, 2, 3)
    assert pairwise_iou(torch.zeros(0, 4), b).shape == (0, 3)


def test_iou_of_boxes_apart_along_one_axis_is_zero():
    # the intersection is empty as soon as either axis has no overlap, whatever the other axis does
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[20.0, 0, 30, 10], [0, 20, 10, 30], [10, 2, 14, 8]])  # x-apart, y-apart, touching
    assert pairwise_iou(a, b).tolist() == [[0.0, 0.0, 0.0]]


def test_box_area_of_an_inverted_box_is_zero():
    # spec 3: width = x2 - x1, height = y2 - y1; a box with a negative side is empty
    boxes = torch.tensor([[0.0, 0, 4, 5], [10, 0, 0, 10], [0, 10, 10, 0], [10, 10, 0, 0]])
    assert box_area(boxes).tolist() == [20.0, 0.0, 0.0, 0.0]
