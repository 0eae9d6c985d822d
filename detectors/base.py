"""The detector contract: construct from keyword options, detect(images) -> [N, 5] arrays."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

import numpy as np


class Detector(ABC):
    """A face detector; subclasses set `name`, `input_policy` and implement `detect`.

    `detect` takes RGB uint8 images (H, W, 3) and returns, per image, a float array [N, 5] of
    (x1, y1, x2, y2, score) in original-image pixels, any order.
    """

    name: ClassVar[str] = "detector"
    #: "original" (full resolution), "longer_side:<px>" or "multi_scale:<description>"
    input_policy: ClassVar[str] = "original"

    def __init__(self, **options: Any) -> None:
        self.options = dict(options)

    @abstractmethod
    def detect(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Detect faces in each image: list of float arrays [N, 5] (x1, y1, x2, y2, score)."""

    def config(self) -> dict[str, Any]:
        """Everything that changes the output: name, options, input policy, weights digest."""
        return {"name": self.name, "input_policy": self.input_policy, "options": self.options,
                "weights_sha256": self.weights_sha256()}

    def weights_sha256(self) -> str | None:
        """sha256 of the weights file(s), when the detector has any."""
        return None

    def provenance(self) -> dict[str, Any]:
        """Where the weights came from, for the results JSON (e.g. a trained checkpoint's recipe label)."""
        return {}

    @property
    def config_hash(self) -> str:
        """Stable 16-hex digest of config(), the cache key of a run."""
        text = json.dumps(self.config(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def empty_detections() -> np.ndarray:
    """An empty [0, 5] float32 array."""
    return np.zeros((0, 5), dtype=np.float32)
