"""HAMBox on CUDA (run in GPU sessions: benchmarks/gpu_session.sh): fp16 inference and an AMP training step.

Without a CUDA device every test here skips; the same code paths are exercised on CPU by
test_hambox_train.py (bf16 autocast, forced fp16 loss scaling) and test_hambox_detector.py (half inference).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detectors.hambox.model import HAMBox, HAMBoxConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (GPU sessions run these)")


def test_fp16_channels_last_forward_matches_fp32_cpu():
    torch.manual_seed(0)
    model = HAMBox(HAMBoxConfig.preset("hambox")).eval()
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        reference = model(x, with_context=False)
        gpu = model.cuda().to(memory_format=torch.channels_last).half()
        out = gpu(x.cuda().to(memory_format=torch.channels_last).half(), with_context=False)
    assert out.cls_logits.dtype == torch.float16 and torch.isfinite(out.cls_logits).all()
    scale = reference.cls_logits.abs().max().item() + 1
    assert (out.cls_logits.float().cpu() - reference.cls_logits).abs().max().item() < 0.02 * scale
    assert (out.box_deltas.float().cpu() - reference.box_deltas).abs().max().item() < 0.02 * (
        reference.box_deltas.abs().max().item() + 1)


def test_fp16_detector_on_cuda(tmp_path):
    from detectors.hambox.checkpoint import save_checkpoint
    from detectors.hambox.detector import HAMBoxDetector

    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, HAMBox(HAMBoxConfig.preset("tiny", matcher="sms")).eval())
    det = HAMBoxDetector(checkpoint=str(path), device="cuda", fp16="true", score_threshold="0.0",
                         max_detections="30")
    image = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    out = det.detect([image, image[:77, :101]])
    assert [o.shape[1] for o in out] == [5, 5] and all(o.dtype == np.float32 and np.isfinite(o).all() for o in out)
    assert out[0].shape[0] == 30


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_amp_training_steps_on_cuda(tmp_path, amp):
    from detectors.hambox.data import make_synthetic_wider
    from detectors.hambox.train import RunOptions, train
    from detectors.hambox.train_config import parse_train_config

    data = make_synthetic_wider(tmp_path / "data", n_images=4, image_size=(128, 128), face_sides=(16, 60), seed=0)
    config = parse_train_config({
        "schema": "facebench.hambox.train/1", "name": f"cuda_{amp}", "recipe": "smoke",
        "model": {"preset": "oam-ral", "ssh": True, "head": "deep", "pyramid_anchors": True},
        "data": {"crop_size": 128, "num_workers": 2},
        "optim": {"lr": 0.01, "warmup_iters": 0, "lr_steps": [100]},
        "train": {"max_iters": 4, "images_per_gpu": 4, "total_batch": 4, "log_every": 1, "checkpoint_every": 2,
                  "amp": amp, "nams_n_crops": 20}})
    result = train(RunOptions(config=config, out_dir=tmp_path / "run", gt=data.annotation, images=data.image_root,
                              from_scratch=True, device="cuda", echo=lambda _m: None))
    assert result.iteration == 4
    assert all(np.isfinite(r["loss"]["total"]) for r in result.records)
    assert all(r["max_memory_mib"] and r["max_memory_mib"] > 0 for r in result.records)
    if amp == "fp16":
        assert all(r["amp_scale"] is not None for r in result.records)
