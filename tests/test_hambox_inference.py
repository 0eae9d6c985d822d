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
