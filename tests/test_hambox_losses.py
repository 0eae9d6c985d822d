"""Losses on hand-made cases (spec §5), including the RAL ignore rule and its normalisers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from detectors.hambox.losses import plain_detection_loss, ral_detection_loss, sigmoid_focal_loss, smooth_l1

LN3 = math.log(3.0)
FL_POS_HALF = 0.25 * 0.25 * math.log(2.0)     # p = 0.5, y = 1
FL_NEG_HALF = 0.75 * 0.25 * math.log(2.0)     # p = 0.5, y = 0
FL_NEG_075 = 0.75 * 0.75 ** 2 * math.log(4.0)  # p = 0.75, y = 0


def test_focal_loss_values():
    logits = torch.tensor([0.0, 0.0, LN3, LN3])
    targets = torch.tensor([1.0, 0.0, 1.0, 0.0])
    expected = [FL_POS_HALF, FL_NEG_HALF, 0.25 * 0.25 ** 2 * -math.log(0.75), FL_NEG_075]
    assert sigmoid_focal_loss(logits, targets).tolist() == pytest.approx(expected, rel=1e-5)
    # gamma = 0, alpha = 0.5 is half the binary cross-entropy
    assert sigmoid_focal_loss(torch.tensor([0.0]), torch.tensor([1.0]), alpha=0.5, gamma=0.0).item() == pytest.approx(0.5 * math.log(2.0))


def test_focal_loss_is_stable_for_large_logits():
    out = sigmoid_focal_loss(torch.tensor([100.0, -100.0]), torch.tensor([0.0, 1.0]))
    assert torch.isfinite(out).all() and out.tolist() == pytest.approx([0.75 * 100, 0.25 * 100], rel=1e-4)


def test_smooth_l1_sums_coordinates():
    pred = torch.tensor([[0.5, -2.0, 0.0, 1.0]])
    assert smooth_l1(pred, torch.zeros(1, 4)).tolist() == [pytest.approx(0.125 + 1.5 + 0.0 + 0.5)]
    assert smooth_l1(pred, torch.zeros(1, 4), beta=0.0).tolist() == [pytest.approx(3.5)]


def test_smooth_l1_transition_scales_with_beta():
    # spec 5: Huber with transition beta, 0.5 d^2 / beta below beta and d - 0.5 beta above (continuous at d = beta)
    pred = torch.tensor([[0.25, 2.0, -0.5, 0.0]])
    assert smooth_l1(pred, torch.zeros(1, 4), beta=0.5).tolist() == [pytest.approx(0.0625 + 1.75 + 0.25 + 0.0)]
    assert smooth_l1(torch.tensor([[1.0, 3.0, 0.0, 0.0]]), torch.zeros(1, 4), beta=2.0).tolist() == [pytest.approx(0.25 + 2.0)]


def test_smooth_l1_with_zero_beta_is_l1_with_finite_gradients():
    # beta -> 0 is plain L1: d|x|/dx = sign(x), never NaN
    pred = torch.tensor([[0.5, -2.0, 0.25, 1.0]], requires_grad=True)
    smooth_l1(pred, torch.zeros(1, 4), beta=0.0).sum().backward()
    assert pred.grad.tolist() == [[1.0, -1.0, 1.0, 1.0]]


def test_plain_loss_normalised_by_positives():
    logits = torch.tensor([[0.0, LN3, 0.0], [0.0, 0.0, 0.0]])
    deltas = torch.zeros(2, 3, 4)
    targets = torch.zeros(2, 3, 4)
    targets[0, 0, 0] = 2.0
    targets[1, 2, 3] = 0.5
    targets[0, 1] = 9.0  # a negative's target is never read
    positive = torch.tensor([[True, False, False], [False, False, True]])
    out = plain_detection_loss(logits, deltas, positive, targets)
    cls = (FL_POS_HALF + FL_NEG_075 + FL_NEG_HALF + 2 * FL_NEG_HALF + FL_POS_HALF) / 2
    assert out["cls"].item() == pytest.approx(cls, rel=1e-5)
    assert out["loc"].item() == pytest.approx((1.5 + 0.125) / 2)
    assert out["num_pos"].item() == 2
    # no positives: the normaliser clamps to 1
    none = plain_detection_loss(torch.zeros(1, 2), torch.zeros(1, 2, 4), torch.zeros(1, 2, dtype=torch.bool), torch.zeros(1, 2, 4))
    assert none["cls"].item() == pytest.approx(2 * FL_NEG_HALF) and none["loc"].item() == 0.0


def test_plain_loss_skips_anchors_outside_the_valid_mask():
    # focal loss over the valid anchors only: the invalid third anchor adds no background term
    positive = torch.tensor([[True, False, False]])
    valid = torch.tensor([[True, True, False]])
    out = plain_detection_loss(torch.zeros(1, 3), torch.zeros(1, 3, 4), positive, torch.zeros(1, 3, 4), valid=valid)
    assert out["cls"].item() == pytest.approx(FL_POS_HALF + FL_NEG_HALF, rel=1e-5)
    assert out["num_pos"].item() == 1


def _two_process_worker(rank: int, init_method: str, result_path: str) -> None:
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=2)
    try:
        positive = torch.zeros(1, 4, dtype=torch.bool)
        positive[0, : 1 if rank == 0 else 3] = True   # N_pos = 1 on rank 0, 3 on rank 1
        out = plain_detection_loss(torch.zeros(1, 4), torch.zeros(1, 4, 4), positive, torch.zeros(1, 4, 4),
                                   across_gpus=True)
        torch.save({"num_pos": out["num_pos"].item(), "cls": out["cls"].item()}, f"{result_path}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not built")
def test_across_gpu_normaliser_is_the_mean_over_processes(tmp_path):
    # spec 5.4: the all-reduced normaliser is the mean over GPUs (N_pos 1 and 3 -> 2 on both), not the sum
    mp.spawn(_two_process_worker, args=(f"file://{tmp_path}/store", str(tmp_path / "out")), nprocs=2)
    results = [torch.load(tmp_path / f"out.{rank}") for rank in (0, 1)]
    assert [r["num_pos"] for r in results] == [2.0, 2.0]
    assert results[0]["cls"] == pytest.approx((FL_POS_HALF + 3 * FL_NEG_HALF) / 2, rel=1e-5)
    assert results[1]["cls"] == pytest.approx((3 * FL_POS_HALF + FL_NEG_HALF) / 2, rel=1e-5)


def _ral_fixture(last_quality: float = 0.50):
    """The spec's OAM fixture: a0 first-step positive, a1/a2 compensated, a3/a4 high-quality negatives."""
    first = torch.tensor([[True, False, False, False, False]])
    compensated = torch.tensor([[False, True, True, False, False]])
    quality = torch.tensor([[0.90, 0.85, 0.82, 0.81, last_quality]])
    targets = torch.zeros(1, 5, 4)
    targets[0, 0, 0] = 1.0
    targets[0, 1, 0] = 2.0
    targets[0, 2, 3] = 0.5
    targets[0, 3] = 3.0  # an ignored anchor's target is never read
    return torch.zeros(1, 5), torch.zeros(1, 5, 4), first, compensated, quality, targets


def test_ral_fixture_values_and_ignore_rule():
    logits, deltas, first, compensated, quality, targets = _ral_fixture()
    out = ral_detection_loss(logits, deltas, first, compensated, quality, targets)
    psi = (0.85 + 0.82) * FL_POS_HALF / 2        # F-weighted, / N_com = 2
    omega = FL_POS_HALF / 1                      # a0 only: a3 (0.81) and a4 (0.50) ignored; / N_norm = 1
    assert out["cls"].item() == pytest.approx(psi + omega, rel=1e-5)
    assert out["loc"].item() == pytest.approx((1.5 + 0.125) / 2 + 0.5 / 1)
    assert (out["num_norm"].item(), out["num_com"].item(), out["num_ignored"].item()) == (1, 2, 2)


def test_ral_low_quality_negative_is_background():
    logits, deltas, first, compensated, quality, targets = _ral_fixture(last_quality=0.49)
    out = ral_detection_loss(logits, deltas, first, compensated, quality, targets)
    psi = (0.85 + 0.82) * FL_POS_HALF / 2
    assert out["cls"].item() == pytest.approx(psi + FL_POS_HALF + FL_NEG_HALF, rel=1e-5)
    assert out["num_ignored"].item() == 1


def test_ral_never_counts_a_first_step_positive_as_compensated():
    # spec 4.6/5.2: OAM only compensates anchors that are not first-step positives, so an anchor flagged both is
    # an Omega positive only: N_com = 0 (psi term 0), a1 (F = 0.1 < 0.5) is an Omega negative
    first = torch.tensor([[True, False]])
    targets = torch.zeros(1, 2, 4)
    targets[0, 0, 0] = 2.0
    out = ral_detection_loss(torch.zeros(1, 2), torch.zeros(1, 2, 4), first, first.clone(), torch.tensor([[0.9, 0.1]]),
                             targets)
    assert (out["num_norm"].item(), out["num_com"].item(), out["num_ignored"].item()) == (1, 0, 0)
    assert out["cls"].item() == pytest.approx(FL_POS_HALF + FL_NEG_HALF, rel=1e-5)
    assert out["loc"].item() == pytest.approx(1.5)


def test_ral_without_compensation_and_gradients():
    logits = torch.zeros(1, 3, requires_grad=True)
    deltas = torch.zeros(1, 3, 4, requires_grad=True)
    first = torch.tensor([[False, False, False]])
    none = torch.zeros(1, 3, dtype=torch.bool)
    quality = torch.tensor([[0.1, 0.7, 0.2]], requires_grad=True)
    out = ral_detection_loss(logits, deltas, first, none, quality, torch.zeros(1, 3, 4))
    assert out["cls"].item() == pytest.approx(2 * FL_NEG_HALF)   # N_norm clamps to 1; a1 ignored
    (out["cls"] + out["loc"]).backward()
    assert quality.grad is None                                  # F is detached
    assert logits.grad[0, 1].item() == 0.0 and logits.grad[0, 0].item() != 0.0
