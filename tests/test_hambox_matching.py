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
