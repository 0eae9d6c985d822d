"""Viola-Jones Haar cascade (OpenCV's haarcascade_frontalface_default.xml from opencv-python-headless 4.x)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from detectors.third_party._common import C_INT_MAX, Bounds, ThirdPartyDetector
from facebench.errors import InputError
from facebench.results import sha256_files


def cascade_file(cascade: str, bundled: Path) -> Path:
    """A cascade given as a file path, or by name among the cascades OpenCV ships; else an InputError."""
    for candidate in (Path(cascade), bundled / cascade):
        if cascade and candidate.is_file():
            return candidate
    shipped = sorted(p.name for p in bundled.glob("haarcascade_*.xml"))
    raise InputError(None, None, f"detector 'haar': option cascade={cascade!r} is neither a file nor one of "
                                 f"OpenCV's cascades ({', '.join(shipped[:4])}, ...)")


class HaarCascadeDetector(ThirdPartyDetector):
    """OpenCV's frontal-face Haar cascade; the score is the last stage's weight (outputRejectLevels), so a
    precision-recall curve exists (the plain detector only says yes or no)."""

    name = "haar"
    input_policy = "multi_scale:sliding window, scale_factor steps from min_size"
    # min_size below the cascade's own window (24 px for frontalface_default) is that window: the default says so
    defaults = {"cascade": "haarcascade_frontalface_default.xml", "scale_factor": 1.1, "min_neighbors": 3,
                "min_size": 24}
    # OpenCV asserts scaleFactor > 1 and takes minNeighbors and the window side as C ints
    bounds = {"scale_factor": Bounds(1.0, low_open=True), "min_neighbors": Bounds(0, C_INT_MAX),
              "min_size": Bounds(1, C_INT_MAX)}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        import cv2

        data = getattr(cv2, "data", None)
        if data is None:
            raise InputError(None, None, "this OpenCV ships no Haar cascades (OpenCV 5 removed them): "
                                         "pip install opencv-python-headless==4.14.0.94")
        path = cascade_file(self.options["cascade"], Path(data.haarcascades))
        try:
            self.cascade = cv2.CascadeClassifier(str(path))
            loaded = not self.cascade.empty()
        except (cv2.error, SystemError):  # OpenCV throws from the constructor on XML it cannot parse
            loaded = False
        if not loaded:
            raise InputError(path, None, "cannot load the Haar cascade (not an OpenCV cascade XML file)")
        if self.threads:
            cv2.setNumThreads(self.threads)
        self._cv2 = cv2
        self._sha = sha256_files([path])

    def weights_sha256(self) -> str:
        return self._sha

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return self._cv2.cvtColor(np.ascontiguousarray(image), self._cv2.COLOR_RGB2GRAY)

    def forward(self, prepared: np.ndarray) -> Any:
        side = self.options["min_size"]
        return self.cascade.detectMultiScale3(prepared, scaleFactor=self.options["scale_factor"],
                                              minNeighbors=self.options["min_neighbors"],
                                              minSize=(side, side), outputRejectLevels=True)

    def postprocess(self, raw: Any, image_hw: tuple[int, int]) -> np.ndarray:
        rects, _levels, weights = raw
        if len(rects) == 0:
            return np.zeros((0, 5), np.float32)
        r = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        score = np.asarray(weights, dtype=np.float64).reshape(-1)
        return np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3], score], axis=1)
