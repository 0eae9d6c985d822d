"""Shared pieces of the third-party wrappers: option checking, NMS, ONNX Runtime sessions, timing."""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from detectors.base import Detector, empty_detections
from facebench.errors import InputError

#: options that change speed, never the boxes: kept out of config() and so out of the cache key
RUNTIME_OPTIONS = ("threads",)


def package_file(module: str, relative: str) -> Path:
    """A data file inside an installed package, located without importing the package."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(None, None, f"Python package '{module}' is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise InputError(path, None, f"file missing from the installed package '{module}'")
    return path


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def available_threads() -> int:
    """CPU cores this process may use (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ThirdPartyDetector(Detector):
    """A wrapped detector: declared defaults, rejected unknown options, per-call timing split."""

    #: every option the detector understands, with its default (all of them enter config_hash)
    defaults: Mapping[str, Any] = {}
    #: devices the wrapper can run on
    devices: tuple[str, ...] = ("cpu",)
    precision = "fp32"

    def __init__(self, **options: Any) -> None:
        self.threads = options.pop("threads", None)
        if self.threads is not None:
            self.threads = int(self.threads)
            if self.threads < 1:
                raise InputError(None, None, f"detector '{self.name}': threads must be >= 1")
        self.device = options.pop("device", "cpu") or "cpu"
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(set(self.defaults) | set(RUNTIME_OPTIONS))) or "none"
            raise InputError(None, None, f"detector '{self.name}' has no option '{unknown[0]}' (options: {known})")
        merged = dict(self.defaults)
        for key, value in options.items():
            merged[key] = _coerce(self.name, key, self.defaults[key], value)
        if self.device.split(":")[0] not in self.devices:
            raise InputError(None, None, f"detector '{self.name}' runs on {'/'.join(self.devices)} only, "
                                         f"not '{self.device}'")
        super().__init__(**merged)
        self.last_timing: dict[str, float] = {}

    def detect(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Detect faces image by image, adding up the preprocess / forward / postprocess split."""
        totals = {"preprocess": 0.0, "forward": 0.0, "postprocess": 0.0}
        out = []
        for image in images:
            t0 = time.perf_counter()
            prepared = self.preprocess(image)
            t1 = time.perf_counter()
            raw = self.forward(prepared)
            t2 = time.perf_counter()
            boxes = self.postprocess(raw, image.shape[:2])
            t3 = time.perf_counter()
            totals["preprocess"] += t1 - t0
            totals["forward"] += t2 - t1
            totals["postprocess"] += t3 - t2
            out.append(_as_detections(boxes))
        self.last_timing = totals
        return out

    def preprocess(self, image: np.ndarray) -> Any:
        """RGB uint8 (H, W, 3) -> network input."""
        return image

    def forward(self, prepared: Any) -> Any:
        """Run the network / library."""
        raise NotImplementedError

    def postprocess(self, raw: Any, image_hw: tuple[int, int]) -> np.ndarray:
        """Network output -> [N, 5] (x1, y1, x2, y2, score) in original pixels."""
        return raw


def _coerce(detector: str, key: str, default: Any, value: Any) -> Any:
    """An option value in the type of its default (1 -> 1.0 for a float option); bad values are InputError."""
    if default is None or value is None:
        return value
    kind = type(default)
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
    elif kind in (int, float):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is not None and math.isfinite(number) and (kind is float or number.is_integer()):
            return kind(number)
    elif kind is str:
        return str(value)
    else:
        return value
    raise InputError(None, None, f"detector '{detector}': option {key}={value!r} is not a {kind.__name__}")


def _as_detections(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.size == 0:
        return empty_detections()
    return boxes.reshape(-1, 5)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression (continuous boxes, no +1); indices kept, by descending score."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    boxes = boxes.astype(np.float64)
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        union = areas[i] + areas[rest] - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, inter / union, 0.0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def onnx_session(model: bytes | str | os.PathLike, threads: int | None, device: str):
    """An ONNX Runtime session with explicit thread counts and the provider the device asks for."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # the bundled models trigger harmless initializer warnings
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or available_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise InputError(None, None, "onnxruntime has no CUDA provider here (install onnxruntime-gpu "
                                         "in place of onnxruntime)")
        index = int(device.split(":")[1]) if ":" in device else 0
        providers: list[Any] = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else model
    return ort.InferenceSession(source, opts, providers=providers)
