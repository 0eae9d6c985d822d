"""Network structure (spec §1-§3), config, torchvision weight layout, and the loss wiring."""

from __future__ import annotations

import pytest
import torch

from detectors.hambox.anchors import anchor_count
from detectors.hambox.backbone import FrozenBatchNorm2d, ResNet, load_torchvision_weights, resnet50
from detectors.hambox.box_coding import encode
from detectors.hambox.model import PRESETS, HAMBox, HAMBoxConfig, context_boxes, shift_jitter, with_normalization
from facebench.errors import InputError

M1_FACE = torch.tensor([[13.0, 22.0, 43.0, 34.0]])  # matches exactly one tiny-config anchor at 0.35


def test_full_default_model_forward_backward():
    torch.manual_seed(0)
    config = HAMBoxConfig()
    assert (config.matcher, config.ral, config.head, config.ssh, config.pyramid_anchors, config.anchor_ratio,
            config.levels, config.fusion, config.backbone_norm) == ("oam", True, "deep", True, True, 0.68,
                                                                     "P2-P7", "product", "frozen")
    model = HAMBox(config).train()
    images = torch.randn(1, 3, 64, 64)
    out = model.loss(images, [torch.tensor([[8.0, 10.0, 40.0, 44.0]])])
    assert out.match.assigned.shape == (1, anchor_count((64, 64)))
    assert torch.isfinite(out.total)
    out.total.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for _, p in trainable)
    assert any(n.startswith("head.context.head.") for n, _ in trainable)            # PA branch trained
    assert not model.backbone.conv1.weight.requires_grad                              # stem frozen
    assert model.backbone.layer1[0].conv1.weight.grad is not None                     # layer1 trained
    assert isinstance(model.backbone.bn1, FrozenBatchNorm2d)
    model.eval()
    with torch.no_grad():
        plain = model(images)
    assert plain.context == {} and plain.cls_logits.shape == (1, anchor_count((64, 64)))


def test_torchvision_layout_keys_and_loading():
    live = ResNet(norm="batch")
    keys = list(live.state_dict())
    assert len(keys) + 2 == 320  # torchvision resnet50 state_dict: 320 entries with fc.weight/fc.bias
    shapes = {k: tuple(v.shape) for k, v in live.state_dict().items()}
    assert shapes["layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    assert shapes["layer2.0.conv2.weight"] == (128, 128, 3, 3)
    assert shapes["layer4.2.bn3.running_var"] == (2048,)
    assert live.layer2[0].conv2.stride == (2, 2) and live.layer2[0].conv1.stride == (1, 1)  # v1.5
    state = {k: torch.randn_like(v.float()) if v.is_floating_point() else v for k, v in live.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    frozen = resnet50()
    load_torchvision_weights(frozen, state)  # fc.* and num_batches_tracked dropped
    assert torch.equal(frozen.layer3[5].bn2.running_mean, state["layer3.5.bn2.running_mean"])
    missing = {k: v for k, v in state.items() if k != "layer2.1.bn1.weight"}
    with pytest.raises(InputError, match="lack key 'layer2.1.bn1.weight'"):
        load_torchvision_weights(frozen, missing)
    bad = dict(state, **{"layer1.0.conv1.weight": torch.zeros(64, 64, 3, 3)})
    with pytest.raises(InputError, match="'layer1.0.conv1.weight' has shape"):
        load_torchvision_weights(frozen, bad)
    with pytest.raises(InputError, match="not found"):
        load_torchvision_weights(frozen, "/nonexistent/resnet50.pth")


def test_v1_layout_puts_stride_in_1x1():
    net = ResNet((1, 1, 1, 1), width=8, stride_in_1x1=True)
    assert net.layer2[0].conv1.stride == (2, 2) and net.layer2[0].conv2.stride == (1, 1)


@pytest.mark.parametrize("overrides", [
    {"levels": "P2-P6", "fusion": "sum"},
    {"levels": "P2-P7", "fusion": "sum", "head": "plain", "ssh": False},
    {"levels": "P2-P6", "shifted_anchor_levels": (2, 3), "pa_min_level": 3},
    {"zcc_upsample_p2": True, "shifted_anchor_levels": (2,)},
])
def test_variants_produce_one_output_per_anchor(overrides):
    model = HAMBox(HAMBoxConfig.preset("tiny", **overrides)).train()
    images = torch.randn(2, 3, 70, 45)
    out = model(images)
    anchors = model.anchors_for((70, 45))
    assert out.anchors.shape == anchors.shape and torch.equal(out.anchors, anchors)
    if not overrides.get("zcc_upsample_p2"):
        assert anchors.shape[0] == anchor_count((70, 45), overrides["levels"] if "levels" in overrides else "P2-P7",
                                                overrides.get("shifted_anchor_levels", ()))
    else:
        assert out.strides[0] == 2 and out.feature_shapes[0] == (35, 23)
    assert out.cls_logits.shape == (2, anchors.shape[0]) and out.box_deltas.shape == (2, anchors.shape[0], 4)
    for cls, box in out.context.values():
        assert cls.shape == (2, anchors.shape[0] - out.context_first_anchor)
    loss = model.loss(images, [torch.tensor([[5.0, 5, 30, 30]]), torch.zeros(0, 4)])
    loss.total.backward()
    assert torch.isfinite(loss.total)


def test_config_round_trip_presets_and_validation():
    config = HAMBoxConfig.preset("zcc", nams_n=4)
    assert config.matcher == "zcc" and config.anchor_ratio == 1.0 and config.shifted_anchor_levels == (2,)
    assert HAMBoxConfig.from_dict(config.to_dict()) == config
    assert HAMBoxConfig.preset("zcc+tiny").backbone_width == 8
    assert set(PRESETS) >= {"hambox", "baseline", "sms", "dms", "nams", "zcc", "oam", "oam-ral", "tiny"}
    with pytest.raises(ValueError, match="matcher"):
        HAMBoxConfig(matcher="best")
    with pytest.raises(ValueError, match="unknown HAMBox config key 'foo'"):
        HAMBoxConfig.from_dict({"foo": 1})
    with pytest.raises(ValueError, match="P8"):
        HAMBoxConfig(shifted_anchor_levels=(8,))
    caffe = with_normalization(HAMBoxConfig.preset("tiny"), "caffe")
    x = torch.full((1, 3, 2, 2), 100.0)
    x[:, 2] = 200.0  # blue channel
    y = HAMBox(caffe).normalize(x)
    assert y[0, 0, 0, 0].item() == pytest.approx(200.0 - 102.9801)  # BGR: channel 0 is blue
    t = HAMBox(HAMBoxConfig.preset("tiny")).normalize(torch.full((1, 3, 1, 1), 255.0))
    assert t[0, :, 0, 0].tolist() == pytest.approx([(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225])


def test_default_config_uses_the_paper_hyper_parameters():
    # spec 4.6/6: OAM K = 3, T = 0.8 at matching threshold 0.35; spec 5: alpha 0.25, gamma 2, beta 1, lambda 1,
    # RAL high quality at F >= 0.5; spec 2.3: PA at 0.35 with weight 1; spec 3: variances (0.1, 0.1, 0.2, 0.2)
    config = HAMBoxConfig()
    assert (config.oam_k, config.oam_t, config.match_threshold, config.ral_high_quality) == (3, 0.8, 0.35, 0.5)
    assert (config.focal_alpha, config.focal_gamma, config.smooth_l1_beta, config.loc_weight) == (0.25, 2.0, 1.0, 1.0)
    assert (config.pa_threshold, config.pa_weight, config.variances) == (0.35, 1.0, (0.1, 0.1, 0.2, 0.2))


def test_zcc_shift_jitter_draws_both_zero_and_one():
    # spec 4.5: with s_A = 4 (max_shift 1) each image moves by (dx, dy) drawn from {0, 1}^2
    images = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(32, 1, 1, 1)
    box = torch.tensor([[1.0, 1.0, 2.0, 2.0]])
    moved, targets = shift_jitter(images, [box] * 32, 1, generator=torch.Generator().manual_seed(0))
    shifts = [(int(t[0, 0]) - 1, int(t[0, 1]) - 1) for t in targets]
    assert {dx for dx, _ in shifts} == {0, 1} and {dy for _, dy in shifts} == {0, 1}
    for i, (dx, dy) in enumerate(shifts):
        assert torch.equal(moved[i, 0, dy:, dx:], images[i, 0, : 4 - dy, : 4 - dx])


def test_context_boxes_and_shift_jitter():
    boxes = torch.tensor([[10.0, 10.0, 20.0, 30.0]])
    assert context_boxes(boxes, 2.0, (100, 100)).tolist() == [[5.0, 0.0, 25.0, 40.0]]
    assert context_boxes(boxes, 2.0, (35, 22)).tolist() == [[5.0, 0.0, 22.0, 35.0]]
    images = torch.arange(16.0).reshape(1, 1, 4, 4)
    torch.manual_seed(0)
    moved, targets = shift_jitter(images, [torch.tensor([[0.0, 0.0, 2.0, 2.0]])], 1)
    dx, dy = int(targets[0][0, 0]), int(targets[0][0, 1])
    assert torch.equal(moved[0, 0, dy:, dx:], images[0, 0, : 4 - dy, : 4 - dx])
    assert shift_jitter(images, [boxes], 0)[0] is images


def _force_predictions(model: HAMBox, boxes: torch.Tensor, branch: str = "face") -> None:
    """Make every anchor's decoded box of `branch` ("face" or a PA branch) equal `boxes` (keeping the graph)."""
    face_branch = model.head.face if branch == "face" else model.head.context[branch]
    original = face_branch.forward

    def patched(features):
        cls, box = original(features)
        anchors = model._anchors([tuple(f.shape[-2:]) for f in features], box.device)
        return cls, box * 0 + encode(anchors, boxes.expand(anchors.shape[0], 4))[None]

    face_branch.forward = patched


def test_oam_ral_wiring_in_model_loss():
    torch.manual_seed(0)
    model = HAMBox(HAMBoxConfig.preset("tiny", pyramid_anchors=False)).train()
    _force_predictions(model, M1_FACE)
    out = model.loss(torch.randn(1, 3, 64, 64), [M1_FACE], with_stats=True)
    a = out.match.assigned.shape[1]
    assert out.match.num_matched.tolist() == [[1]]
    assert int(out.match.compensated.sum()) == 2                      # K - M = 2
    assert out.match.quality[out.match.compensated].min().item() > 0.999
    assert out.parts["num_norm"].item() == 1 and out.parts["num_com"].item() == 2
    assert out.parts["num_ignored"].item() == a - 3                   # every other anchor is high quality
    stats = out.stats
    assert (stats["num_faces"], stats["outer_faces"], stats["unmatched_faces"], stats["num_compensated"]) == (1, 1, 0, 2)
    assert stats["mean_compensated_quality"] == pytest.approx(1.0, abs=1e-3)
    assert stats["high_quality_unmatched_fraction"] == pytest.approx((a - 1) / a)
    assert stats["ral_ignored"] == a - 3
    out.total.backward()
    # OAM without RAL: compensated anchors are plain positives, nothing is ignored
    plain = HAMBox(HAMBoxConfig.preset("tiny", pyramid_anchors=False, ral=False))
    _force_predictions(plain, M1_FACE)
    res = plain.loss(torch.randn(1, 3, 64, 64), [M1_FACE])
    assert res.parts["num_pos"].item() == 3 and "num_ignored" not in res.parts


def test_loss_rejects_mismatched_targets():
    model = HAMBox(HAMBoxConfig.preset("tiny"))
    with pytest.raises(ValueError, match="target tensors"):
        model.loss(torch.randn(2, 3, 32, 32), [torch.zeros(0, 4)])
    with pytest.raises(ValueError, match="NAMS needs"):
        HAMBox(HAMBoxConfig.preset("tiny", matcher="nams")).loss(torch.randn(1, 3, 64, 64), [M1_FACE])


@pytest.mark.parametrize("ral", [True, False])
def test_oam_regression_targets_are_relative_to_the_anchor(ral):
    # spec 4.6: target = encode(anchor, face), not relative to the prediction, so predictions that already decode
    # to the face leave no localisation loss
    torch.manual_seed(0)
    model = HAMBox(HAMBoxConfig.preset("tiny", pyramid_anchors=False, ral=ral)).train()
    _force_predictions(model, M1_FACE)
    out = model.loss(torch.randn(1, 3, 64, 64), [M1_FACE])
    assert out.parts["num_norm" if ral else "num_pos"].item() >= 1
    assert out.parts["loc"].item() == pytest.approx(0.0, abs=1e-6)


def test_pa_head_targets_are_the_face_grown_twice():
    # spec 2.3: head box = face (13, 22, 43, 34) grown by half its width/height on each side -> (-2, 16, 58, 40),
    # clipped to the 64 x 64 image -> (0, 16, 58, 40); head predictions equal to it leave no PA loc loss
    head_box = torch.tensor([[0.0, 16.0, 58.0, 40.0]])
    images = torch.randn(1, 3, 64, 64)
    losses = {}
    for name, forced in (("head", head_box), ("face", M1_FACE)):
        torch.manual_seed(0)
        model = HAMBox(HAMBoxConfig.preset("tiny")).train()
        _force_predictions(model, forced, branch="head")
        losses[name] = model.loss(images, [M1_FACE]).parts["pa_head_loc"].item()
    assert losses["head"] == pytest.approx(0.0, abs=1e-6)
    assert losses["face"] > 0.1   # the head branch does have positives, regressed to the head box
