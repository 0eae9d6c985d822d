"""YuNet (libfacedetection, Wu et al. 2023) through the yuface package: a compiled CNN with its weights built in."""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from detectors.third_party._common import UNIT, ThirdPartyDetector, package_file
from facebench.results import sha256_files


def _import_detect(threads: int | None):
    """The compiled detect function (the pybind module, without yuface's >960 px warning).

    The library runs on its own OpenMP runtime, which reads its settings once, when it is loaded: the
    thread count comes from `threads` and the wait policy is made passive (spinning OpenMP threads slow
    down badly when other processes share the cores) unless the user set them in the environment.
    """
    if "yuface.yuface" not in sys.modules:
        saved = {key: os.environ.get(key) for key in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
        if threads:
            os.environ["OMP_NUM_THREADS"] = str(threads)
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import yuface.yuface  # noqa: F401
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    elif threads:
        from facebench.errors import warn

        warn("yunet: the library is already loaded in this process; its thread count cannot change now")
    return sys.modules["yuface.yuface"].detect


class YuNetDetector(ThirdPartyDetector):
    """libfacedetection's YuNet at the original image size; the library's confidence 0-100 becomes 0-1.

    The compiled library applies its own confidence cut and NMS before returning (no confidence under 0.20
    came back on the real sample images), so `score_threshold` can only raise that cut; it keeps what yuface's
    `detect(conf=t)` keeps (confidence > 100 t). Boxes and scores come back as integers (scores in steps of 0.01).
    """

    name = "yunet"
    input_policy = "original"
    defaults = {"score_threshold": 0.0}
    bounds = {"score_threshold": UNIT}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._detect = _import_detect(self.threads)
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
        return out[raw[:, 0] > self.options["score_threshold"] * 100.0]  # yuface's own cut: confs > conf * 100
