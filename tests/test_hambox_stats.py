"""Spec §8 statistics on hand-made batches, and ZCC's EMO values."""

from __future__ import annotations

import math

import pytest
import torch

from detectors.hambox import matching
from detectors.hambox.stats import anchor_coverage, emo_score, regression_source_stats, training_step_stats


def test_emo_checked_values():
    assert emo_score(16, 4) == pytest.approx(0.787, abs=5e-4)
    assert emo_score(16, 8) == pytest.approx(0.629, abs=5e-4)
    assert emo_score(16, 16) == pytest.approx(0.409, abs=5e-4)
    assert emo_score(10.88, 4) == pytest.approx(0.707, abs=5e-4)


def test_training_step_stats_on_the_oam_fixture():
    iou = torch.tensor([[0.50, 0.10, 0.10, 0.10, 0.10]])
    pred = torch.tensor([[0.90, 0.85, 0.82, 0.81, 0.50]])
    result = matching.match("oam", iou, pred_iou=pred)
    empty = matching.match("oam", torch.zeros(0, 5), pred_iou=torch.zeros(0, 5))
    stats = training_step_stats([result, empty], [iou, torch.zeros(0, 5)], [pred, torch.zeros(0, 5)], ral=True)
    assert stats == {"num_faces": 1, "outer_faces": 1, "unmatched_faces": 0, "mean_matches": 1.0,
                     "num_first_positive": 1, "num_positive": 3, "num_compensated": 2,
                     "mean_compensated_quality": pytest.approx((0.85 + 0.82) / 2),
                     "high_quality_anchors": 5, "high_quality_unmatched_fraction": pytest.approx(4 / 5),
                     "ral_ignored": 2}


def test_training_step_stats_for_dms_second_step():
    iou = torch.tensor([[0.30, 0.20, 0.0]])
    pred = torch.tensor([[0.42, 0.60, 0.1]])
    result = matching.match("dms", iou, pred_iou=pred)
    stats = training_step_stats([result], [iou], [pred])
    assert stats["unmatched_faces"] == 1 and stats["num_compensated"] == 1
    assert stats["mean_compensated_quality"] == pytest.approx(0.42)   # the forced anchor's prediction
    assert stats["ral_ignored"] == 0
    assert math.isnan(training_step_stats([], [], [])["mean_matches"])


def test_regression_source_stats():
    anchors = torch.tensor([[0.0, 0, 10, 10], [30, 30, 40, 40], [60, 60, 70, 70]])
    face = torch.tensor([[0.0, 0, 10, 10]])
    # a0 matched and correct, a1 unmatched but regresses onto the face, a2 wrong
    preds = torch.tensor([[0.0, 0, 10, 10], [0.5, 0, 10, 10], [60, 60, 70, 70]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    out = regression_source_stats(anchors, [preds], [face], scores=[scores])
    assert out["correct_boxes"] == 2 and out["correct_from_matched"] == 1
    assert out["fraction_from_matched"] == pytest.approx(0.5)
    assert out["faces_with_matched_anchor"] == 1 and out["faces_with_correct_box_from_matched_anchor"] == 1
    assert out["faces_with_correct_box_from_matched_anchor_after_nms"] == 1
    assert out["anchor_iou_cdf"]["cdf"][0] == pytest.approx(0.5)  # one correct box's anchor has IoU 0
    floor = regression_source_stats(anchors, [preds], [face], scores=[scores], score_floor=0.85)
    assert floor["correct_boxes"] == 1


def test_anchor_coverage():
    anchors = torch.tensor([[0.0, 0, 10, 10], [5, 0, 15, 10], [50, 50, 52, 52]])
    out = anchor_coverage([torch.tensor([[0.0, 0, 12, 10], [100, 100, 120, 120]])], anchors)
    assert out == {"faces": 2, "mean_matched_per_face": pytest.approx(1.0), "fraction_matchable": pytest.approx(0.5)}


def test_outer_faces_are_those_with_fewer_than_k_first_step_matches():
    # spec §4.6/§8: outer face = M < K (K = 3); a face with exactly K matches is not outer
    iou = torch.tensor([[0.60, 0.50, 0.40, 0.00, 0.00, 0.00],
                        [0.00, 0.00, 0.00, 0.50, 0.40, 0.00]])
    result = matching.match("sms", iou)
    stats = training_step_stats([result], [iou], [None])
    assert stats["num_faces"] == 2 and stats["outer_faces"] == 1 and stats["unmatched_faces"] == 0
    assert stats["mean_matches"] == pytest.approx(5 / 2)


def test_compensated_quality_uses_the_face_the_anchor_was_forced_to():
    # spec §4.6/§8: F of a compensated anchor = IoU of its decoded box with the face it was
    # compensated to, even when the box overlaps another face more
    iou = torch.tensor([[0.30, 0.00], [0.00, 0.50]])
    pred = torch.tensor([[0.20, 0.00], [0.60, 0.90]])
    result = matching.match("dms", iou, pred_iou=pred)
    stats = training_step_stats([result], [iou], [pred])
    assert stats["num_compensated"] == 1
    assert stats["mean_compensated_quality"] == pytest.approx(0.20)


def test_regression_source_correct_is_strict_and_matched_is_inclusive():
    # spec §8: "correct" = decoded IoU > 0.5 (strict); "matched" = anchor IoU >= 0.35 (inclusive)
    face = torch.tensor([[0.0, 0, 20, 20]])
    anchors = torch.tensor([[0.0, 0, 20, 7], [60, 60, 80, 80]])      # a0: IoU 140/400 = 0.35
    preds = torch.tensor([[0.0, 0, 20, 20], [0, 0, 20, 10]])          # a1's box: IoU 200/400 = 0.5
    out = regression_source_stats(anchors, [preds], [face])
    assert out["correct_boxes"] == 1 and out["correct_from_matched"] == 1
    assert out["faces_with_matched_anchor"] == 1


def test_regression_source_matched_refers_to_the_face_the_box_is_correct_for():
    # spec §8: matched = anchor IoU >= 0.35 with *that* face; the anchor sits on face 0 but its
    # box lands on face 1, where the anchor's IoU is 0
    anchors = torch.tensor([[0.0, 0, 10, 10]])
    faces = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]])
    preds = torch.tensor([[20.0, 20, 30, 30]])
    out = regression_source_stats(anchors, [preds], [faces])
    assert out["correct_boxes"] == 1 and out["correct_from_matched"] == 0
    assert out["fraction_from_matched"] == 0.0
    assert out["faces_with_matched_anchor"] == 1 and out["faces_with_correct_box_from_matched_anchor"] == 0


def test_fig2d_counts_faces_not_anchors_or_boxes():
    # spec §8 Fig. 2(d): per-face counts; two matched anchors with correct boxes on one face -> 1
    anchors = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10]])        # IoUs 1 and 90/110 with the face
    face = torch.tensor([[0.0, 0, 10, 10]])
    preds = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10]])
    out = regression_source_stats(anchors, [preds], [face])
    assert out["correct_boxes"] == 2 and out["correct_from_matched"] == 2
    assert out["faces"] == 1 and out["faces_with_matched_anchor"] == 1
    assert out["faces_with_correct_box_from_matched_anchor"] == 1


def test_fig2d_after_nms_counts_only_surviving_boxes():
    # spec §8 Fig. 2(d) "after NMS" (NMS 0.3, spec §7): the matched anchor's correct box is
    # suppressed by an unmatched anchor's higher-scoring box (IoU 0.9), so 0 faces remain
    anchors = torch.tensor([[0.0, 0, 10, 10], [40, 40, 50, 50]])
    face = torch.tensor([[0.0, 0, 10, 10]])
    preds = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 9]])
    out = regression_source_stats(anchors, [preds], [face], scores=[torch.tensor([0.5, 0.9])])
    assert out["faces_with_correct_box_from_matched_anchor"] == 1
    assert out["faces_with_correct_box_from_matched_anchor_after_nms"] == 0


def test_regression_source_score_floor_is_inclusive():
    # spec §7/§8: the score floor keeps score >= floor, so a box scored exactly at it counts
    anchors = torch.tensor([[0.0, 0, 10, 10]])
    face = torch.tensor([[0.0, 0, 10, 10]])
    out = regression_source_stats(anchors, [anchors.clone()], [face], scores=[torch.tensor([0.5])],
                                  score_floor=0.5)
    assert out["correct_boxes"] == 1


def test_anchor_coverage_counts_only_first_step_matches():
    # spec §8 Fig. 1: matched = anchor IoU >= 0.35; a face whose best anchor IoU is 0.3 has none
    # (no forced DMS anchor)
    anchors = torch.tensor([[0.0, 0, 10, 10]])
    out = anchor_coverage([torch.tensor([[0.0, 0, 10, 3]])], anchors)
    assert out == {"faces": 1, "mean_matched_per_face": 0.0, "fraction_matchable": 0.0}


def test_emo_is_zero_overlap_beyond_the_face_side():
    # spec §4.5: EMO integrates the IoU of the face with its nearest anchor; for s/2 > l the offset
    # can exceed l, where the overlap is 0 (not (l-x)(l-y) of negative sides). With l = 4, s = 16,
    # substituting u = (l-x)/l: EMO = 1/4 * int_0^1 int_0^1 uv / (2 - uv) = (2 Li2(1/2) - 1) / 4,
    # Li2(1/2) = pi^2/12 - ln(2)^2/2
    expected = (2 * (math.pi ** 2 / 12 - math.log(2) ** 2 / 2) - 1) / 4
    assert emo_score(4, 16) == pytest.approx(expected, abs=5e-4)
