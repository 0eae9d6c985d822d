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
    (x1, y1, x2, y2, score) in original-image pixels, any order (`as_rgb8` brings gray and RGBA to RGB).
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

    @classmethod
    def option_table(cls) -> list[tuple[str, Any, str]]:
        """The `-o KEY=VALUE` options: (key, default, allowed values in words); empty when undeclared."""
        return []

    def provenance(self) -> dict[str, Any]:
        """Where the weights came from, for the results JSON (e.g. a trained checkpoint's recipe label)."""
        return {}

    @property
    def config_hash(self) -> str:
        """Stable 16-hex digest of config(), the cache key of a run."""
        text = json.dumps(self.config(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def as_rgb8(image: np.ndarray) -> np.ndarray:
    """An image as the contract's RGB uint8 (H, W, 3): grayscale (H, W) or (H, W, 1) is repeated, RGBA loses
    its alpha; any other dtype or shape is a ValueError (a float image in 0..1 would silently find nothing)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"detect() takes RGB uint8 images (0..255), got {image.dtype}; convert first "
                         "(e.g. (image * 255).round().astype(np.uint8) for floats in 0..1)")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or 0 in image.shape[:2]:
        raise ValueError(f"detect() takes (H, W, 3) RGB images (or (H, W) gray, (H, W, 4) RGBA), got shape "
                         f"{image.shape}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3] if image.shape[2] == 4 else image


def empty_detections() -> np.ndarray:
    """An empty [0, 5] float32 array."""
    return np.zeros((0, 5), dtype=np.float32)
