"""Checkpoint format and the registered HAMBoxDetector (loading errors, detect contract)."""

from __future__ import annotations

import hashlib
import importlib
import io

import numpy as np
import pytest
import torch

from detectors.base import Detector
from detectors.hambox.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from detectors.hambox.model import HAMBox, HAMBoxConfig
from facebench.errors import InputError


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = HAMBox(HAMBoxConfig.preset("tiny", matcher="sms")).eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    digest = save_checkpoint(path, model, extra={"iteration": 7, "rng": torch.get_rng_state()})
    return path, model, digest


def _image(h: int = 60, w: int = 80) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_checkpoint_round_trip(tiny_checkpoint):
    path, model, digest = tiny_checkpoint
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    ckpt = load_checkpoint(path)
    assert ckpt.config == model.config and ckpt.extra["iteration"] == 7
    assert ckpt.normalization["input_mean"] == [0.485, 0.456, 0.406]
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and raw["version"] == 1
    assert all(torch.equal(ckpt.state_dict[k], v) for k, v in model.state_dict().items())


def test_detector_is_importable_by_registry_path(tiny_checkpoint):
    module, attr = "detectors.hambox.detector:HAMBoxDetector".split(":")
    cls = getattr(importlib.import_module(module), attr)
    assert issubclass(cls, Detector) and cls.name == "hambox"
    det = cls(checkpoint=str(tiny_checkpoint[0]), matcher="sms")
    assert det.weights_sha256() == tiny_checkpoint[2]
    assert det.config()["options"]["matcher"] == "sms" and len(det.config_hash) == 16


def test_detect_contract_matches_model(tiny_checkpoint):
    path, model, _ = tiny_checkpoint
    from detectors.hambox.detector import HAMBoxDetector

    det = HAMBoxDetector(checkpoint=str(path), score_threshold="0.0", max_detections="50")
    images = [_image(), _image(37, 51)]
    out = det.detect(images)
    assert len(out) == 2
    assert all(o.dtype == np.float32 and o.ndim == 2 and o.shape[1] == 5 for o in out)
    assert out[0].shape[0] == 50
    x = model.normalize(torch.from_numpy(images[0]).permute(2, 0, 1)[None])
    expected = model.predict(x, score_threshold=0.0, max_detections=50)[0].numpy()
    assert np.allclose(out[0], expected, atol=1e-5)
    assert np.all(np.diff(out[0][:, 4]) <= 0)
    with pytest.raises(ValueError, match="RGB uint8"):
        det.detect([images[0].astype(np.float32)])


def test_half_precision_path_agrees_with_fp32(tiny_checkpoint):
    # fp16=true is a CUDA option; its code path (half model and input, fp32 anchors, decode, NMS) is forced
    # onto the CPU here so dtype mixing is exercised: the same faces come out, scores within fp16 rounding.
    path, _, _ = tiny_checkpoint
    from detectors.hambox.detector import HAMBoxDetector

    reference = HAMBoxDetector(checkpoint=str(path), score_threshold="0.0", max_detections="20")
    half = HAMBoxDetector(checkpoint=str(path), score_threshold="0.0", max_detections="20")
    half.fp16 = True
    half.model.half()
    image = _image(64, 64)
    a, b = reference.detect([image])[0], half.detect([image])[0]
    assert b.dtype == np.float32 and b.shape == a.shape and np.isfinite(b).all()
    # An untrained model scores all anchors nearly alike, so compare the raw outputs, not the ranking.
    x = reference.model.normalize(torch.from_numpy(image).permute(2, 0, 1)[None])
    with torch.no_grad():
        full, low = reference.model(x, with_context=False), half.model(x.half(), with_context=False)
    assert low.cls_logits.dtype == torch.float16
    assert (low.cls_logits.float() - full.cls_logits).abs().max() < 0.05
    assert (low.box_deltas.float() - full.box_deltas).abs().max() < 0.05


def test_multi_scale_mode(tiny_checkpoint):
    from detectors.hambox.detector import HAMBoxDetector

    det = HAMBoxDetector(checkpoint=str(tiny_checkpoint[0]), test_mode="multi_scale", pixel_budget=60 * 80 * 4,
                         score_threshold=0.0)
    assert det.input_policy.startswith("multi_scale")
    out = det.detect([_image()])[0]
    assert out.shape[1] == 5 and 0 < out.shape[0] <= 750 and np.isfinite(out).all()
    for h, w in ((40, 1), (1, 40), (1, 1)):  # flipped one-pixel-wide views have negative strides
        assert det.detect([_image(h, w)])[0].shape[1] == 5
    assert det.precision == "fp32"


def test_loading_errors(tiny_checkpoint, tmp_path):
    from detectors.hambox.detector import HAMBoxDetector

    path, model, _ = tiny_checkpoint
    with pytest.raises(InputError, match="checkpoint file not found") as missing:
        HAMBoxDetector(checkpoint=str(tmp_path / "nope.pt"))
    assert "\n" not in str(missing.value) and "nope.pt" in str(missing.value)
    raw = torch.load(path, weights_only=True)
    first_key = next(iter(model.state_dict()))
    del raw["state_dict"][first_key]
    broken = tmp_path / "broken.pt"
    torch.save(raw, broken)
    with pytest.raises(InputError, match=f"missing key '{first_key}'"):
        HAMBoxDetector(checkpoint=str(broken))
    raw = torch.load(path, weights_only=True)
    raw["state_dict"]["head.face.cls_pred.weight"] = torch.zeros(1, 3, 3, 3)
    torch.save(raw, broken)
    with pytest.raises(InputError, match="'head.face.cls_pred.weight' has shape"):
        HAMBoxDetector(checkpoint=str(broken))
    raw = torch.load(path, weights_only=True)
    raw["state_dict"]["extra.weight"] = torch.zeros(1)
    torch.save(raw, broken)
    with pytest.raises(InputError, match="unexpected key 'extra.weight'"):
        HAMBoxDetector(checkpoint=str(broken))
    broken.write_bytes(b"not a checkpoint")
    # torch's own message advised weights_only=False, for junk too
    with pytest.raises(InputError, match=r"cannot read checkpoint \(not a PyTorch file") as info:
        HAMBoxDetector(checkpoint=str(broken))
    assert "weights_only" not in str(info.value)
    torch.save({"format": "x", "stream": io.BytesIO}, broken)  # a class: refused by the safe loader
    with pytest.raises(InputError, match="holds Python objects besides tensors"):
        HAMBoxDetector(checkpoint=str(broken))
    from detectors.hambox.backbone import read_state_dict

    broken.write_bytes(b"")
    with pytest.raises(InputError, match=r"cannot read backbone weights \(not a PyTorch file"):
        read_state_dict(broken)
    torch.save({"state_dict": {}}, broken)
    with pytest.raises(InputError, match="not a HAMBox checkpoint"):
        HAMBoxDetector(checkpoint=str(broken))
    # A config that passes the type checks but cannot build a model, and an odd version: named, one line.
    for field, value, message in [("backbone_layers", [0, 1, 1, 1], "backbone_layers must be four positive"),
                                  ("frozen_stages", 9, "frozen_stages must be in 0..5"),
                                  ("pa_min_level", 8, "pa_min_level=8 is not a level")]:
        raw = torch.load(path, weights_only=True)
        raw["config"][field] = value
        torch.save(raw, broken)
        with pytest.raises(InputError, match=f"bad checkpoint config: {message}") as bad:
            HAMBoxDetector(checkpoint=str(broken))
        assert "broken.pt" in str(bad.value)
    raw = torch.load(path, weights_only=True)
    raw["version"] = "1.0"
    torch.save(raw, broken)
    with pytest.raises(InputError, match="checkpoint version must be an integer"):
        HAMBoxDetector(checkpoint=str(broken))
    with pytest.raises(InputError, match="trained with matcher 'sms', not 'oam'"):
        HAMBoxDetector(checkpoint=str(path), matcher="oam")
    with pytest.raises(InputError, match="unknown hambox option 'thresh'"):
        HAMBoxDetector(checkpoint=str(path), thresh=0.5)
    with pytest.raises(InputError, match="not a number"):
        HAMBoxDetector(checkpoint=str(path), score_threshold="high")


@pytest.mark.parametrize("change, message", [
    (lambda raw: raw["state_dict"]["head.face.cls_pred.bias"].fill_(float("nan")),
     "key 'head.face.cls_pred.bias' holds NaN or infinite weights"),
    (lambda raw: raw["state_dict"].update({"head.face.cls_pred.weight": raw["state_dict"][
        "head.face.cls_pred.weight"].to(torch.complex64)}), "'head.face.cls_pred.weight' has dtype torch.complex64"),
    (lambda raw: raw["state_dict"].update({"head.face.cls_pred.weight": raw["state_dict"][
        "head.face.cls_pred.weight"].to(torch.int64)}), "'head.face.cls_pred.weight' has dtype torch.int64"),
    (lambda raw: raw.update(normalization=[1, 2]), "checkpoint 'normalization' must be a mapping, got list"),
    (lambda raw: raw.update(extra="notes"), "checkpoint 'extra' must be a mapping, got str"),
])
def test_unusable_weights_and_sections_are_one_line_errors(tiny_checkpoint, tmp_path, change, message):
    from detectors.hambox.detector import HAMBoxDetector

    path, _, _ = tiny_checkpoint
    raw = torch.load(path, weights_only=True)
    change(raw)
    broken = tmp_path / "broken.pt"
    torch.save(raw, broken)
    with pytest.raises(InputError, match=message) as info:
        HAMBoxDetector(checkpoint=str(broken))
    assert info.value.path == str(broken) and "\n" not in str(info.value)
    raw = torch.load(path, weights_only=True)
    raw["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in raw["state_dict"].items()}
    torch.save(raw, broken)  # fp16 weights (a half-precision export) still load
    HAMBoxDetector(checkpoint=str(broken))


def test_checkpoint_option_is_required(monkeypatch):
    from detectors.hambox.detector import HAMBoxDetector

    monkeypatch.delenv("FACEBENCH_HAMBOX_CHECKPOINT", raising=False)
    with pytest.raises(InputError, match="needs checkpoint=PATH"):
        HAMBoxDetector()
