"""Matching strategies: the spec's §4.7 hand-checked fixtures, tie rules, batching, edge cases."""

from __future__ import annotations

import pytest
import torch

from detectors.hambox import matching as m

T = torch.tensor


def _sequential_reference(score, eligible, need, free):
    """Per-face Python loop: the definition sequential_compensation must equal."""
    g, a = score.shape
    out = [-1] * a
    free = [bool(v) for v in free]
    for j in range(g):
        candidates = [i for i in range(a) if bool(eligible[j, i]) and free[i]]
        candidates.sort(key=lambda i: (-float(score[j, i]), i))
        for i in candidates[: int(need[j])]:
            out[i] = j
            free[i] = False
    return torch.tensor(out)


# -- spec §4.7 fixtures -----------------------------------------------------------------------

def test_oam_fixture():
    iou = T([[0.50, 0.10, 0.10, 0.10, 0.10]])
    pred = T([[0.90, 0.85, 0.82, 0.81, 0.50]])
    assigned, compensated, quality = m.oam(iou, pred, k=3, t=0.8)
    assert assigned.tolist() == [0, 0, 0, -1, -1]
    assert compensated.tolist() == [False, True, True, False, False]
    assert torch.allclose(quality, pred[0])
    result = m.match("oam", iou, pred_iou=pred, oam_k=3, oam_t=0.8)
    assert result.first_step.tolist() == [0, -1, -1, -1, -1]
    assert result.num_matched.tolist() == [1]
    assert int((result.first_step >= 0).sum()) == 1      # N_norm
    assert int(result.compensated.sum()) == 2            # N_com
    # a3 (F = 0.81) and a4 (F = 0.50) are high-quality first-step negatives, not compensated
    ignored = (result.first_step < 0) & ~result.compensated & (result.quality >= 0.5)
    assert ignored.tolist() == [False, False, False, True, True]


def test_nams_fixture():
    iou = T([[0.40, 0.30, 0.20, 0.15, 0.05]])
    assert m.nams(iou, n=3).tolist() == [0, 0, 0, -1, -1]


def test_zcc_sms_dms_fixture():
    iou = T([[0.30, 0.25, 0.20, 0.15, 0.10, 0.05]])
    assert m.zcc(iou, threshold=0.35, n=5).tolist() == [0, 0, 0, 0, 0, -1]
    assert m.sms(iou).tolist() == [-1] * 6
    assert m.dms(iou).tolist() == [0, -1, -1, -1, -1, -1]


# -- rules ------------------------------------------------------------------------------------

def test_sms_threshold_is_inclusive_and_ties_go_to_lowest_face():
    iou = T([[0.35, 0.34, 0.6], [0.35, 0.1, 0.6]])
    assert m.sms(iou).tolist() == [0, -1, 0]


def test_sms_picks_highest_iou_face():
    iou = T([[0.4, 0.9], [0.8, 0.5]])
    assert m.sms(iou).tolist() == [1, 0]


def test_dms_forced_match_overrides_and_tie_rule():
    # face 0 matches anchor 0 in step one; faces 1 and 2 are unmatched and both prefer anchor 1
    iou = T([[0.9, 0.0, 0.0, 0.0],
             [0.0, 0.3, 0.2, 0.0],
             [0.0, 0.3, 0.1, 0.25]])
    # face 1 (earlier) takes anchor 1; face 2 takes its best anchor not already forced (anchor 3)
    assert m.dms(iou).tolist() == [0, 1, -1, 2]


def test_dms_forced_match_may_override_a_first_step_positive():
    iou = T([[0.50, 0.40], [0.45, 0.0]])  # face 1 never wins step one; its best anchor is 0
    assert m.sms(iou).tolist() == [0, 0]
    assert m.dms(iou).tolist() == [1, 0]


def test_dms_min_iou_and_zero_overlap():
    iou = T([[0.15, 0.05], [0.0, 0.0]])
    assert m.dms(iou).tolist() == [0, -1]
    assert m.dms(iou, min_iou=0.2).tolist() == [-1, -1]


def test_nams_only_takes_background_above_candidate_iou():
    iou = T([[0.50, 0.12, 0.10, 0.30, 0.0],
             [0.00, 0.11, 0.00, 0.60, 0.0]])
    # step one: a0 -> face 0, a3 -> face 1 (0.60 > 0.30); face 0 needs 2 more: a1 (0.12), a2 is not > 0.1
    assert m.nams(iou, n=3).tolist() == [0, 0, -1, 1, -1]


def test_zcc_never_takes_other_faces_positives():
    iou = T([[0.9, 0.3, 0.2, 0.0], [0.30, 0.25, 0.0, 0.1]])
    assert m.zcc(iou, n=5).tolist() == [0, 1, -1, 1]


def test_oam_outer_faces_and_candidates():
    iou = T([[0.6, 0.5, 0.4, 0.0, 0.0, 0.0],    # M = 3 -> untouched
             [0.0, 0.0, 0.0, 0.36, 0.0, 0.0]])  # M = 1 -> up to 2 compensated
    pred = T([[0.9, 0.9, 0.9, 0.0, 0.95, 0.0],
              [0.0, 0.0, 0.0, 0.9, 0.85, 0.80]])
    assigned, compensated, quality = m.oam(iou, pred, k=3, t=0.8)
    # a4: face 0 does not compensate; face 1 takes a4 (0.85); a5 has 0.80, not > 0.8
    assert assigned.tolist() == [0, 0, 0, 1, 1, -1]
    assert compensated.tolist() == [False, False, False, False, True, False]
    assert quality[4].item() == pytest.approx(0.85)   # F of a compensated anchor: its own face
    assert quality[5].item() == pytest.approx(0.80)   # others: max over faces


def test_batched_with_padding_equals_per_image():
    g = torch.Generator().manual_seed(3)
    iou = torch.rand(3, 4, 40, generator=g) * 0.6
    pred = torch.rand(3, 4, 40, generator=g)
    valid = torch.tensor([[True, True, True, True], [True, True, False, False], [False] * 4])
    for name, kw in (("sms", {}), ("dms", {}), ("nams", {"nams_n": 3}), ("zcc", {}), ("oam", {"oam_t": 0.7})):
        batched = m.match(name, iou, valid, pred_iou=pred, **kw)
        for i in range(3):
            n = int(valid[i].sum())
            single = m.match(name, iou[i, :n], pred_iou=pred[i, :n], **kw)
            assert torch.equal(batched.assigned[i], single.assigned), name
            assert torch.equal(batched.compensated[i], single.compensated), name
        assert (batched.assigned[2] == -1).all()


def test_no_faces():
    iou = torch.zeros(0, 7)
    for name in m.STRATEGIES:
        result = m.match(name, iou, pred_iou=torch.zeros(0, 7), nams_n=2)
        assert result.assigned.tolist() == [-1] * 7
        assert result.num_matched.shape == (0,)
    _, _, quality = m.oam(iou, torch.zeros(0, 7))
    assert quality.tolist() == [0.0] * 7


def test_sequential_compensation_equals_face_loop():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        faces = int(torch.randint(1, 9, (1,), generator=g))
        anchors = int(torch.randint(1, 40, (1,), generator=g))
        score = torch.randint(0, 5, (faces, anchors), generator=g).float() / 4  # many ties
        eligible = torch.rand(faces, anchors, generator=g) < 0.6
        need = torch.randint(0, 4, (faces,), generator=g)
        free = torch.rand(anchors, generator=g) < 0.8
        got = m.sequential_compensation(score, eligible, need, free)
        assert torch.equal(got, _sequential_reference(score, eligible, need, free))


def test_count_matches_and_nams_n():
    assigned = T([[0, 0, 1, -1], [-1, -1, -1, 2]])
    assert m.count_matches(assigned, 3).tolist() == [[2, 1, 0], [0, 0, 1]]
    anchors = T([[0.0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    faces = [T([[0.0, 0, 12, 10]]), T([[20.0, 20, 30, 30]])]
    # face 1 matches a0 and a1 (IoU 0.83, 0.5), face 2 matches a2 -> mean 1.5 -> N = 2
    assert m.mean_matches_per_face(faces, anchors) == pytest.approx(1.5)
    assert m.estimate_nams_n(faces, anchors) == 2


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown matching strategy"):
        m.match("xyz", torch.zeros(1, 3))
    with pytest.raises(ValueError, match="NAMS needs"):
        m.match("nams", torch.zeros(1, 3))
    with pytest.raises(ValueError, match="OAM needs"):
        m.match("oam", torch.zeros(1, 3))
    with pytest.raises(ValueError, match="iou must be"):
        m.sms(torch.zeros(3))


# -- rules pinned against surviving mutants ---------------------------------------------------

def test_dms_forces_only_faces_with_no_first_step_match():
    # spec 4.2: the forced best anchor is for faces with M_j = 0 only; here both faces have M = 1
    iou = T([[0.6, 0.4], [0.7, 0.0]])
    assert m.sms(iou).tolist() == [1, 0]
    assert m.dms(iou).tolist() == [1, 0]


def test_dms_min_iou_is_inclusive():
    # spec 4.2: the forced match is skipped only when the best IoU is < dms_min_iou
    iou = T([[0.25, 0.125]])
    assert m.dms(iou, min_iou=0.25).tolist() == [0, -1]
    assert m.dms(iou, min_iou=0.375).tolist() == [-1, -1]


def test_dms_never_forces_an_anchor_that_does_not_overlap_the_face():
    # spec 4.2: both faces are unmatched and want a0; face 0 takes it, and face 1's "best anchor not
    # already forced" must still overlap it (forced matches need IoU > 0), so face 1 gets nothing
    iou = T([[0.3, 0.0], [0.3, 0.0]])
    assert m.dms(iou).tolist() == [0, -1]


def test_nams_stage_one_is_dms_and_its_matches_count_toward_n():
    # spec 4.3: stage one is DMS, so a face below 0.1 everywhere still keeps its forced best anchor
    assert m.nams(T([[0.08, 0.05]]), n=3).tolist() == [0, -1]
    # the forced anchor counts toward N: M = 1 after stage one -> add the best N - M = 2, not 3
    assert m.nams(T([[0.30, 0.25, 0.20, 0.15]]), n=3).tolist() == [0, 0, 0, -1]


def test_oam_takes_candidates_by_predicted_box_iou():
    # spec 4.6: candidates are taken in descending pred_iou (a2: 0.85 before a1: 0.82), not anchor IoU
    iou = T([[0.5, 0.2, 0.1]])
    pred = T([[0.9, 0.82, 0.85]])
    assigned, compensated, _ = m.oam(iou, pred, k=2, t=0.8)
    assert assigned.tolist() == [0, -1, 0]
    assert compensated.tolist() == [False, False, True]


def test_oam_quality_max_is_over_real_faces_only():
    # spec 4.6: F of a non-compensated anchor = max over faces of its predicted-box IoU, 0 without
    # faces; padding rows are not faces, whatever their pred_iou
    iou = T([[[0.5, 0.1], [0.0, 0.0]],
             [[0.0, 0.0], [0.0, 0.0]]])
    pred = T([[[0.3, 0.2], [0.9, 0.9]],
              [[0.6, 0.7], [0.9, 0.9]]])
    valid = T([[True, False], [False, False]])
    assigned, compensated, quality = m.oam(iou, pred, valid, k=3, t=0.8)
    assert assigned.tolist() == [[0, -1], [-1, -1]]
    assert not compensated.any()
    assert torch.allclose(quality, T([[0.3, 0.2], [0.0, 0.0]]))


def test_match_marks_dms_override_of_another_faces_positive_as_compensated():
    # spec 4.2 / 8: a0 is face 0's first-step positive, then face 1's forced (second-step) anchor
    result = m.match("dms", T([[0.50, 0.40], [0.45, 0.0]]))
    assert result.first_step.tolist() == [0, 0]
    assert result.assigned.tolist() == [1, 0]
    assert result.compensated.tolist() == [True, False]


def test_mean_matches_per_face_counts_forced_matches_and_divides_by_faces():
    # spec 4.3: mean over faces of the stage-one (DMS) M_j
    anchors = T([[0.0, 0, 10, 10], [100, 100, 110, 110], [101, 100, 111, 110]])
    # one image, two faces: face 0 has IoU 0.3 with a0 (M = 1 only via the forced match); face 1 has
    # IoU 1.0 with a1 and 90/110 with a2 (M = 2); the empty image adds no face -> (1 + 2) / 2
    images = [T([[0.0, 0, 10, 3], [100.0, 100, 110, 110]]), torch.zeros(0, 4)]
    assert m.mean_matches_per_face(images, anchors) == pytest.approx(1.5)


def test_estimate_nams_n_rounds_half_up():
    # spec 4.3: N = round(mean M_j); mean 2.5 rounds to 3 (ordinary rounding, not round-half-even)
    anchors = T([[0.0, 0, 10, 10], [1, 0, 11, 10], [2, 0, 12, 10],        # IoU 1, 0.82, 0.67 with face 0
                 [100, 100, 110, 110], [101, 100, 111, 110]])             # IoU 1, 0.82 with face 1
    images = [T([[0.0, 0, 10, 10], [100.0, 100, 110, 110]])]
    assert m.mean_matches_per_face(images, anchors) == pytest.approx(2.5)
    assert m.estimate_nams_n(images, anchors) == 3


def test_default_parameters_follow_the_spec():
    # spec 4.6: OAM K = 3, T = 0.8 -> M = 1, only a1 (0.85) is a candidate; a2 (0.75) is not > 0.8
    iou = T([[0.5, 0.1, 0.1, 0.1]])
    pred = T([[0.9, 0.85, 0.75, 0.3]])
    assigned, compensated, _ = m.oam(iou, pred)
    assert assigned.tolist() == [0, 0, -1, -1]
    assert compensated.tolist() == [False, True, False, False]
    result = m.match("oam", iou, pred_iou=pred)
    assert result.assigned.tolist() == [0, 0, -1, -1]
    assert result.compensated.tolist() == [False, True, False, False]
    # spec 4.5 / 4.7: ZCC hard-face compensation takes the top N = 5 anchors
    zcc_iou = T([[0.30, 0.25, 0.20, 0.15, 0.10, 0.05]])
    assert m.zcc(zcc_iou).tolist() == [0, 0, 0, 0, 0, -1]
    assert m.match("zcc", zcc_iou).assigned.tolist() == [0, 0, 0, 0, 0, -1]
