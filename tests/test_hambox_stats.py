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
