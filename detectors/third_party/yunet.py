"""YuNet (libfacedetection, Wu et al. 2023) through the yuface package: a compiled CNN with its weights built in."""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.third_party._common import ThirdPartyDetector, package_file
from facebench.results import sha256_files


class YuNetDetector(ThirdPartyDetector):
    """libfacedetection's YuNet at the original image size; the library's confidence 0-100 becomes 0-1.

    The compiled library applies its own confidence cut and NMS before returning; `score_threshold`
    can only raise that cut. Boxes and scores come back as integers (scores in steps of 0.01).
    """

    name = "yunet"
    input_policy = "original"
    defaults = {"score_threshold": 0.0}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        from yuface.yuface import detect as c_detect  # the pybind module, without yuface's >960 px warning

        self._detect = c_detect
        self._sha = sha256_files([package_file("yuface", "libfacedetection.so")])

    def weights_sha256(self) -> str:
        # the weights are compiled into the library, so its digest identifies them
        return self._sha

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image[:, :, ::-1])  # the library reads BGR

    def forward(self, prepared: np.ndarray) -> np.ndarray:
        return np.asarray(self._detect(prepared))

    def postprocess(self, raw: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
        if raw.size == 0:
            return np.zeros((0, 5), np.float32)
        raw = raw.astype(np.float64)
        score = raw[:, 0] / 100.0
        x, y, w, h = raw[:, 1], raw[:, 2], raw[:, 3], raw[:, 4]
        out = np.stack([x, y, x + w, y + h, score], axis=1)
        return out[score >= self.options["score_threshold"]]
