"""`HAMBoxDetector`: the registered `hambox` detector (and `hambox-sms/-dms/-nams/-zcc`) over a checkpoint.

Options (strings from the CLI are parsed):
- `checkpoint=PATH` (required; else env FACEBENCH_HAMBOX_CHECKPOINT): a file from
  `detectors.hambox.checkpoint.save_checkpoint`; missing file or mismatched state dict -> one-line
  InputError naming the first bad key.
- `matcher=oam|sms|dms|nams|zcc` (optional): the training matcher the checkpoint must record
  (matching itself only runs in training; a different recorded matcher is an InputError).
- `device=cpu|cuda|cuda:N|auto` (default cpu), `fp16=false` (CUDA only).
- `test_mode=single_scale|multi_scale` (default single_scale: original size, no flip);
  multi_scale = spec §7 (PyramidBox passes + flip + box voting), with `pixel_budget`
  (678*1024*4), `vote_threshold` (0.3), `drop_singletons` (true).
- `score_threshold` (0.01), `pre_nms_top_k` (5000), `nms_threshold` (0.3), `max_detections` (750).

`detect(images)` takes RGB uint8 HxWx3 arrays and returns per image an [N, 5] float32 array
(x1, y1, x2, y2, score) in original pixels, boxes not clipped.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np
import torch

from detectors.base import Detector, as_rgb8, empty_detections
from detectors.hambox.checkpoint import build_model, load_checkpoint
from detectors.hambox.inference import multi_scale_detect, postprocess
from detectors.hambox.matching import STRATEGIES
from facebench.errors import InputError

_DEFAULTS: dict[str, Any] = {
    "checkpoint": None, "matcher": None, "device": "cpu", "fp16": False,
    "test_mode": "single_scale", "score_threshold": 0.01, "pre_nms_top_k": 5000,
    "nms_threshold": 0.3, "max_detections": 750, "pixel_budget": 678 * 1024 * 4,
    "vote_threshold": 0.3, "drop_singletons": True,
}
# Checkpoint `extra` fields written by `facebench train` (train._metadata) that results record.
_PROVENANCE = ("label", "comparable", "backbone_weights_sha256", "train_config_name", "max_iters", "global_batch")


def _as_bool(name: str, value: Any) -> bool:
    """Parse a boolean option (true/false/1/0/yes/no)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InputError(None, None, f"hambox option {name}={value!r} is not a boolean")


def _as_number(name: str, value: Any, kind: type) -> Any:
    """Parse a numeric option."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(None, None, f"hambox option {name}={value!r} is not a number") from None
    if not math.isfinite(number) or (kind is int and not number.is_integer()):
        raise InputError(None, None, f"hambox option {name}={value!r} is not a finite {kind.__name__}")
    return kind(number)


_ALLOWED = {
    "checkpoint": "a checkpoint file (facebench train), or $FACEBENCH_HAMBOX_CHECKPOINT",
    "matcher": "the checkpoint's matcher, checked: " + ", ".join(STRATEGIES), "device": "set by --device",
    "fp16": "true/false (CUDA only)", "test_mode": "single_scale or multi_scale (flip, pyramid, box voting)",
    "score_threshold": "number", "pre_nms_top_k": "integer", "nms_threshold": "number",
    "max_detections": "integer", "pixel_budget": "number (multi_scale: largest scale's pixels)",
    "vote_threshold": "number (multi_scale box voting IoU)", "drop_singletons": "true/false (multi_scale)",
}


class HAMBoxDetector(Detector):
    """HAMBox (or one of its matching baselines) loaded from a facebench checkpoint."""

    name = "hambox"
    input_policy = "original"

    @classmethod
    def option_table(cls) -> list[tuple[str, Any, str]]:
        return [(key, default, _ALLOWED[key]) for key, default in _DEFAULTS.items() if key != "device"]

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(_DEFAULTS))
        if unknown:
            raise InputError(None, None, f"unknown hambox option '{unknown[0]}' (known: {', '.join(sorted(_DEFAULTS))})")
        super().__init__(**options)
        opts = {**_DEFAULTS, **options}
        path = opts["checkpoint"] or os.environ.get("FACEBENCH_HAMBOX_CHECKPOINT")
        if not path:
            raise InputError(None, None, "hambox needs checkpoint=PATH (a file written by detectors.hambox.checkpoint.save_checkpoint)")
        self.checkpoint_path = os.fspath(path)
        matcher = opts["matcher"]
        if matcher is not None and matcher not in STRATEGIES:
            raise InputError(None, None, f"hambox option matcher={matcher!r}; expected one of {', '.join(STRATEGIES)}")
        self.test_mode = str(opts["test_mode"])
        if self.test_mode not in ("single_scale", "multi_scale"):
            raise InputError(None, None, f"hambox option test_mode={self.test_mode!r}; expected single_scale or multi_scale")
        self.score_threshold = _as_number("score_threshold", opts["score_threshold"], float)
        self.pre_nms_top_k = _as_number("pre_nms_top_k", opts["pre_nms_top_k"], int)
        self.nms_threshold = _as_number("nms_threshold", opts["nms_threshold"], float)
        self.max_detections = _as_number("max_detections", opts["max_detections"], int)
        self.pixel_budget = _as_number("pixel_budget", opts["pixel_budget"], float)
        self.vote_threshold = _as_number("vote_threshold", opts["vote_threshold"], float)
        self.drop_singletons = _as_bool("drop_singletons", opts["drop_singletons"])
        device = str(opts["device"])
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(None, None, f"hambox option device={device}: CUDA is not available")
        self.device = torch.device(device)
        self.fp16 = _as_bool("fp16", opts["fp16"]) and self.device.type == "cuda"
        self.precision = "fp16" if self.fp16 else "fp32"

        checkpoint = load_checkpoint(self.checkpoint_path)
        if matcher is not None and checkpoint.config.matcher != matcher:
            raise InputError(self.checkpoint_path, None,
                             f"checkpoint was trained with matcher '{checkpoint.config.matcher}', not '{matcher}'")
        self._sha256 = checkpoint.sha256
        # What `facebench train` stored about the run; results must carry its "not comparable" label.
        self._provenance = {key: checkpoint.extra[key] for key in _PROVENANCE if key in checkpoint.extra}
        self.model = build_model(checkpoint, self.device)
        if self.fp16:
            self.model.half()
        if self.test_mode == "multi_scale":
            self.input_policy = "multi_scale:pyramidbox"

    def weights_sha256(self) -> str | None:
        """sha256 of the checkpoint file."""
        return self._sha256

    def provenance(self) -> dict[str, Any]:
        """The training run's label, comparability, backbone weights and config, as stored in the checkpoint."""
        return dict(self._provenance)

    @torch.no_grad()
    def _forward(self, image: np.ndarray) -> np.ndarray:
        """Single-pass detections [N, 5] of an RGB uint8 array, in its own pixels."""
        h, w = image.shape[:2]
        if h < 1 or w < 1:
            return empty_detections()
        # A flipped view of a one-pixel-wide image counts as contiguous but has a negative stride torch refuses.
        if not (image.flags.writeable and image.flags.c_contiguous) or min(image.strides) < 0:
            image = np.array(image)
        x = torch.from_numpy(image).to(self.device).permute(2, 0, 1)[None]
        x = self.model.normalize(x)
        if self.fp16:
            x = x.half()
        out = self.model(x, with_context=False)
        dets = postprocess(out.cls_logits[0], out.box_deltas[0], out.anchors, self.model.config.variances,
                           self.score_threshold, self.pre_nms_top_k, self.nms_threshold, self.max_detections)
        return dets.float().cpu().numpy()

    def _at_scale(self, image: np.ndarray, scale: float, flip: bool) -> np.ndarray:
        """Detections of one multi-scale pass, mapped back to the original image."""
        from PIL import Image

        h, w = image.shape[:2]
        view = image
        if scale != 1:
            size = (max(1, int(w * scale)), max(1, int(h * scale)))
            view = np.asarray(Image.fromarray(image).resize(size, Image.LANCZOS))
        if flip:
            view = view[:, ::-1]
        dets = self._forward(view).astype(np.float64)
        dets[:, :4] /= scale
        if flip:
            x1 = w - dets[:, 2]
            dets[:, 2] = w - dets[:, 0]
            dets[:, 0] = x1
        return dets

    def detect(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per image an [N, 5] float32 array (x1, y1, x2, y2, score) in original pixels."""
        results = []
        for image in images:
            image = as_rgb8(image)
            if self.test_mode == "single_scale":
                dets = self._forward(image)
            else:
                dets = multi_scale_detect(lambda s, f: self._at_scale(image, s, f), image.shape[:2],
                                          self.pixel_budget, self.vote_threshold, self.drop_singletons,
                                          self.max_detections)
            results.append(np.asarray(dets, dtype=np.float32).reshape(-1, 5))
        return results
