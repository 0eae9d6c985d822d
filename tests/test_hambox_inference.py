"""Inference: NMS semantics, post-processing, box voting, the multi-scale test plan (spec §7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detectors.hambox.box_coding import encode
from detectors.hambox.inference import (ScalePass, batched_nms, box_vote, filter_by_size, get_shrink,
                                        multi_scale_detect, multi_scale_plan, nms, postprocess)


def reference_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """Box-by-box greedy NMS (torchvision semantics: IoU > thr suppresses, no +1)."""
    order = np.argsort(-scores, kind="stable")
    alive = np.ones(len(order), dtype=bool)
    b = boxes[order]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    keep = []
    for pos in range(len(order)):
        if not alive[pos]:
            continue
        keep.append(int(order[pos]))
        iw = np.clip(np.minimum(b[pos, 2], b[:, 2]) - np.maximum(b[pos, 0], b[:, 0]), 0, None)
        ih = np.clip(np.minimum(b[pos, 3], b[:, 3]) - np.maximum(b[pos, 1], b[:, 1]), 0, None)
        inter = iw * ih
        union = area[pos] + area - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            hit = inter / union > thr
        hit[: pos + 1] = False
        alive &= ~hit
    return keep


def reference_vote(dets: np.ndarray, thr: float = 0.3, drop_singletons: bool = True, top: int = 750) -> np.ndarray:
    """Per-cluster box voting as spec §7 describes it (+1 areas, weighted mean, singleton quirk)."""
    order = sorted(range(len(dets)), key=lambda i: -dets[i, 4])
    rest = [dets[i].astype(np.float64) for i in order]
    out = []
    while rest:
        lead = rest[0]
        cluster, remaining = [], []
        for d in rest:
            iw = max(0.0, min(lead[2], d[2]) - max(lead[0], d[0]) + 1)
            ih = max(0.0, min(lead[3], d[3]) - max(lead[1], d[1]) + 1)
            inter = iw * ih
            union = (lead[2] - lead[0] + 1) * (lead[3] - lead[1] + 1) + (d[2] - d[0] + 1) * (d[3] - d[1] + 1) - inter
            (cluster if inter / union >= thr else remaining).append(d)
        rest = remaining
        if len(cluster) == 1:
            if not drop_singletons or not rest:
                out.append(cluster[0])
            continue
        c = np.stack(cluster)
        w = c[:, 4:5]
        out.append(np.concatenate([(c[:, :4] * w).sum(0) / w.sum(), [c[:, 4].max()]]))
    return np.array(out[:top]).reshape(-1, 5)


def _random_boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 40 + 1
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g)


def test_nms_matches_reference():
    for seed, n in ((0, 50), (1, 300), (2, 700)):  # 700 > one block: exercises the cross-block path
        boxes, scores = _random_boxes(n, seed)
        for thr in (0.3, 0.5):
            got = nms(boxes, scores, thr).tolist()
            assert got == reference_nms(boxes.numpy().astype(np.float64), scores.numpy(), thr)


def test_nms_edge_cases():
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.3).tolist() == []
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 5], [20, 20, 20, 20]])
    scores = torch.tensor([0.5, 0.9, 0.8, 0.7])
    # IoU exactly 0.5 is not > 0.5: box 2 survives at threshold 0.5; the degenerate box is kept
    assert nms(boxes, scores, 0.5).tolist() == [1, 2, 3]
    assert nms(boxes, scores, 0.49).tolist() == [1, 3]


def test_batched_nms_is_per_group():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.3).tolist() == [0, 1]


def test_postprocess_threshold_topk_and_decode():
    anchors = torch.tensor([[0.0, 0, 16, 16], [4, 0, 20, 16], [100, 100, 116, 116], [200, 200, 216, 216]])
    face = torch.tensor([[1.0, 1, 17, 17]])
    deltas = encode(anchors, face.expand(4, 4))
    deltas[3] = 0.0  # anchor 3 predicts itself
    logits = torch.tensor([2.0, 1.0, -10.0, 0.5])
    dets = postprocess(logits, deltas, anchors, score_threshold=0.01, nms_threshold=0.3)
    assert dets.shape == (2, 5)  # anchor 1 duplicates anchor 0; anchor 2 is below the threshold
    assert torch.allclose(dets[0, :4], face[0], atol=1e-4)
    assert dets[0, 4].item() == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item())
    assert postprocess(logits, deltas, anchors, pre_nms_top_k=1).shape == (1, 5)
    assert postprocess(logits, deltas, anchors, max_detections=1).shape == (1, 5)


def test_box_vote_matches_reference():
    g = np.random.default_rng(0)
    for n in (1, 2, 40, 400):
        xy = g.random((n, 2)) * 200
        dets = np.concatenate([xy, xy + g.random((n, 2)) * 60 + 5, g.random((n, 1))], 1)
        for drop in (True, False):
            got = box_vote(dets, 0.3, drop)
            assert np.allclose(got, reference_vote(dets, 0.3, drop), atol=1e-4)
    assert box_vote(np.zeros((0, 5))).shape == (0, 5)


def test_box_vote_hand_case():
    dets = np.array([[0, 0, 10, 10, 0.9], [0, 0, 12, 12, 0.6], [50, 50, 60, 60, 0.8], [80, 80, 90, 90, 0.1]])
    out = box_vote(dets)
    # cluster 1 merges boxes 0 and 1; box 2 is a dropped singleton; box 3 is the last cluster: kept
    expected_box = (np.array([0, 0, 10, 10]) * 0.9 + np.array([0, 0, 12, 12]) * 0.6) / 1.5
    assert out.shape == (2, 5)
    assert np.allclose(out[0], [*expected_box, 0.9]) and np.allclose(out[1], [80, 80, 90, 90, 0.1])
    assert box_vote(dets, drop_singletons=False).shape == (3, 5)


def test_get_shrink_values():
    # 1024 x 768: min(2.1755, 1.8792) -> 1.87 - 0.3 = 1.57 -> [1.5, 2): -0.1 -> 1.47
    shrink, max_shrink = get_shrink(768, 1024)
    assert shrink == 1.0 and max_shrink == pytest.approx(1.47)
    # 300 x 200: v2 = sqrt(2777088 / 60000) = 6.803 -> 6.8 - 0.3 = 6.5 -> >= 5: -0.5 -> 6.0
    assert get_shrink(200, 300) == pytest.approx((1.0, 6.0))
    # 4000 x 3000: 0.4811 -> 0.48 - 0.3 = 0.18
    assert get_shrink(3000, 4000) == pytest.approx((0.18, 0.18))


def test_multi_scale_plan():
    plan = multi_scale_plan(768, 1024)
    assert plan == [ScalePass(1.0), ScalePass(1.0, True), ScalePass(0.5, keep="big"),
                    ScalePass(pytest.approx(1.47), keep="small"), ScalePass(0.25, keep="big"),
                    ScalePass(0.75, keep="big"), ScalePass(1.25, keep="small")]
    scales = [p.scale for p in multi_scale_plan(200, 300)]  # max_shrink 6.0: 2, 4, then 6
    assert scales[3:6] == pytest.approx([2.0, 4.0, 6.0])
    small = multi_scale_plan(3000, 4000)  # max_shrink 0.18 < 0.75: st = 0.09, bt = 0.135
    assert [p.scale for p in small[:4]] == pytest.approx([0.18, 0.18, 0.09, 0.135])
    assert small[3].keep == "big"


def test_filter_by_size_and_multi_scale_detect():
    dets = np.array([[0, 0, 29, 10, 0.5], [0, 0, 30, 10, 0.5], [0, 0, 120, 99, 0.5]])
    assert filter_by_size(dets, "big").shape[0] == 2      # longer side (+1) > 30
    assert filter_by_size(dets, "small").shape[0] == 2    # shorter side (+1) < 100
    calls = []

    def fake(scale: float, flip: bool) -> np.ndarray:
        calls.append((scale, flip))
        return np.array([[10, 10, 50, 50, 0.9], [11, 11, 51, 51, 0.8]])

    out = multi_scale_detect(fake, (768, 1024))
    assert len(calls) == 7 and out.shape[1] == 5 and out[0, 4] == pytest.approx(0.9)


# -- boundaries of §7 (NMS ties, score threshold, top-k, voting clusters, the scale plan) --------------------

def test_nms_equal_scores_keep_input_order():
    # module contract (torchvision / Paddle's stable score sort): ties are visited in input order, so of
    # identical equal-score boxes the first one survives, and disjoint equal-score boxes come back in order
    same = torch.tensor([[0.0, 0, 10, 10]]).repeat(40, 1)
    assert nms(same, torch.full((40,), 0.5), 0.3).tolist() == [0]
    xs = torch.arange(40, dtype=torch.float32)[:, None] * 20
    apart = torch.cat([xs, torch.zeros(40, 1), xs + 10, torch.full((40, 1), 10.0)], 1)
    assert nms(apart, torch.full((40,), 0.5), 0.3).tolist() == list(range(40))


def _three_apart() -> tuple[torch.Tensor, torch.Tensor]:
    anchors = torch.tensor([[0.0, 0, 16, 16], [100, 0, 116, 16], [200, 0, 216, 16]])
    return anchors, torch.zeros(3, 4)  # zero deltas decode to the anchor itself; no overlaps


def test_postprocess_score_threshold_is_inclusive():
    # spec 7: keep score >= threshold; sigmoid(0) = 0.5 exactly
    anchors, deltas = _three_apart()
    dets = postprocess(torch.tensor([0.0]), deltas[:1], anchors[:1], score_threshold=0.5)
    assert dets.shape == (1, 5) and dets[0, 4].item() == 0.5


def test_postprocess_top_k_and_max_detections_keep_the_highest_scores():
    # spec 7: top 5,000 BY SCORE before NMS, keep the top 750 after it (here k = 1 or 2)
    anchors, deltas = _three_apart()
    logits = torch.tensor([1.0, 2.0, 0.5])
    s = torch.sigmoid(logits)
    for kwargs in ({"pre_nms_top_k": 1}, {"max_detections": 1}):
        dets = postprocess(logits, deltas, anchors, **kwargs)
        assert torch.allclose(dets, torch.tensor([[100.0, 0, 116, 16, s[1]]]))
    dets = postprocess(logits, deltas, anchors, pre_nms_top_k=2)
    assert torch.allclose(dets[:, 4], s[[1, 0]]) and torch.allclose(dets[:, 0], torch.tensor([100.0, 0.0]))
    dets = postprocess(logits, deltas, anchors, max_detections=2)
    assert torch.allclose(dets[:, 4], s[[1, 0]])


def test_box_vote_iou_exactly_threshold_joins_the_cluster():
    # spec 7: gather boxes with IoU >= 0.3 (+1 areas). [0,0,9,2] vs [0,0,9,9]: 30 / (100 + 30 - 30) = 0.3
    dets = np.array([[0, 0, 9, 9, 0.9], [0, 0, 9, 2, 0.6]])
    # one cluster: weighted mean y2 = (9 * 0.9 + 2 * 0.6) / 1.5 = 6.2, max score 0.9
    assert np.allclose(box_vote(dets), [[0, 0, 9, 6.2, 0.9]])
    # the same when the leader and the joining box are more than one 256-box block apart
    rows = [[0, 0, 9, 9, 1.0]] + [[100 + 20 * i, 0, 109 + 20 * i, 9, 0.99 - 1e-4 * i] for i in range(256)]
    rows.append([0, 0, 9, 2, 0.01])
    out = box_vote(np.array(rows), drop_singletons=False)
    assert out.shape == (257, 5)  # 256 disjoint singletons + the merged pair
    assert np.allclose(out[0], [0, 0, 9, (9 * 1.0 + 2 * 0.01) / 1.01, 1.0], atol=1e-5)


def test_get_shrink_boundaries():
    # spec 7: truncate(min(v1, v2), 2) - 0.3, then -0.1 on [1.5, 2) (closed at 1.5)
    # 1591 x 535: v2 = sqrt(2777088 / 851185) = 1.806 -> 1.80 - 0.3 = 1.5 -> -0.1 -> 1.4
    assert get_shrink(535, 1591) == pytest.approx((1.0, 1.4))
    # 1024 x 768 with budget 8e6: v1 = sqrt(2147483647 / 577 / 786432) = 2.175 < v2 = 3.189
    # -> 2.17 - 0.3 = 1.87 -> -0.1 -> 1.77 (the 2^31 / 577 cap binds)
    assert get_shrink(768, 1024, pixel_budget=8e6) == pytest.approx((1.0, 1.77))


def _plan(h: int, w: int) -> list[tuple[float, bool, str]]:
    return [(pytest.approx(p.scale), p.flip, p.keep) for p in multi_scale_plan(h, w)]


def test_multi_scale_plan_boundaries():
    # spec 7 passes: shrink, flip, st (0.5 unless max_shrink < 0.75), bt..., 0.25, pyramid (<= max_shrink)
    # 2719 x 912: v2 = 1.058 -> 1.05 - 0.3 = 0.75: st = 0.5, bt = (0.5 + 0.75) / 2 = 0.625 (<= 1: big);
    # pyramid 0.75 <= 0.75 is run
    assert _plan(912, 2719) == [(0.75, False, "all"), (0.75, True, "all"), (0.5, False, "big"),
                                (0.625, False, "big"), (0.25, False, "big"), (0.75, False, "big")]
    # 2206 x 737: v2 = 1.307 -> 1.30 - 0.3 = 1.0: not > 1, so bt = (0.5 + 1) / 2 = 0.75 (big)
    assert _plan(737, 2206) == [(1.0, False, "all"), (1.0, True, "all"), (0.5, False, "big"),
                                (0.75, False, "big"), (0.25, False, "big"), (0.75, False, "big")]
    # 1853 x 618: v2 = 1.557 -> 1.55 - 0.3 = 1.25: bt = 1.25 (small); pyramid 0.75, and 1.25 <= 1.25
    assert _plan(618, 1853) == [(1.0, False, "all"), (1.0, True, "all"), (0.5, False, "big"),
                                (1.25, False, "small"), (0.25, False, "big"), (0.75, False, "big"),
                                (1.25, False, "small")]
    pyramid = [(0.25, False, "big"), (0.75, False, "big"), (1.25, False, "small"), (1.5, False, "small"),
               (1.75, False, "small")]
    head = [(1.0, False, "all"), (1.0, True, "all"), (0.5, False, "big")]
    # 1141 x 387: v2 = 2.508 -> 2.50 - 0.3 = 2.2 -> [2, 3): -0.2 -> 2.0: bt = 2, no further passes (not > 2)
    assert _plan(387, 1141) == head + [(2.0, False, "small")] + pyramid
    # 507 x 247: v2 = 4.709 -> 4.70 - 0.3 = 4.4 -> [4, 5): -0.4 -> 4.0: bt = 2; 2 * bt = 4 is not below
    # 4.0, so only the pass at max_shrink follows
    assert _plan(247, 507) == head + [(2.0, False, "small"), (4.0, False, "small")] + pyramid
    # 300 x 200: max_shrink 6.0: 2, 4, then 6; the pyramid includes 1.75
    assert _plan(200, 300) == head + [(2.0, False, "small"), (4.0, False, "small"), (6.0, False, "small")] + pyramid


def test_multi_scale_detect_runs_the_flip_pass_and_filters_each_pass():
    # spec 7: pass 2 is the horizontal flip; each pass keeps only its size band before the concatenation
    calls = []

    def fake(scale: float, flip: bool) -> np.ndarray:
        calls.append((scale, flip))
        rows = [[10, 10, 50, 50, 0.5]]            # 41 px: passes every filter
        if scale < 1:
            rows.append([300, 0, 309, 9, 0.9])     # 10 px: only ever seen by "big" passes -> dropped
        if scale > 1:
            rows.append([500, 0, 699, 199, 0.8])   # 200 px: only ever seen by "small" passes -> dropped
        return np.array(rows, dtype=np.float64)

    out = multi_scale_detect(fake, (768, 1024), drop_singletons=False)
    assert calls == [(p.scale, p.flip) for p in multi_scale_plan(768, 1024)]
    assert [flip for _, flip in calls] == [False, True, False, False, False, False, False]
    assert np.allclose(out, [[10, 10, 50, 50, 0.5]])


def test_multi_scale_detect_passes_drop_singletons_to_the_vote():
    # spec 7: one-box clusters are discarded (except the last one formed) by default, switchable
    def fake(scale: float, flip: bool) -> np.ndarray:
        rows = [[10, 10, 50, 50, 0.5]]
        if scale == 1.0 and not flip:
            rows.append([200, 200, 240, 240, 0.9])  # a one-box cluster, formed first
        return np.array(rows, dtype=np.float64)

    assert np.allclose(multi_scale_detect(fake, (768, 1024)), [[10, 10, 50, 50, 0.5]])
    kept = multi_scale_detect(fake, (768, 1024), drop_singletons=False)
    assert np.allclose(kept, [[200, 200, 240, 240, 0.9], [10, 10, 50, 50, 0.5]])
