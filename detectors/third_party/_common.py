"""Shared pieces of the third-party wrappers: option checking, NMS, ONNX Runtime sessions, timing."""

from __future__ import annotations

import hashlib
import importlib.util
import math
import operator
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from detectors.base import Detector, as_rgb8, empty_detections
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


@dataclass(frozen=True)
class Bounds:
    """The allowed values of a numeric option: an interval whose ends are inclusive or not (None: unbounded)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        """Whether `value` lies inside the interval."""
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    def describe(self) -> str:
        """The interval in words: 'in [0, 1]', 'in (0, 1)', '>= 1', '> 1', '<= 5'."""
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {left}{self.low:.12g}, {self.high:.12g}{right}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:.12g}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high:.12g}"
        return "any number"


C_INT_MAX = 2**31 - 1  # OpenCV takes sizes and counts as C ints
#: a probability or score cut
UNIT = Bounds(0.0, 1.0)
#: an IoU above which NMS suppresses a box (0 would keep only boxes that do not touch)
NMS_IOU = Bounds(0.0, 1.0, low_open=True)
#: a count (top-k, sizes in pixels) that must be at least 1
AT_LEAST_ONE = Bounds(1)
#: thread counts: at least one, and not so many that creating them would exhaust the machine
THREADS_BOUNDS = Bounds(1, 1024)


class ThirdPartyDetector(Detector):
    """A wrapped detector: declared defaults, rejected unknown options, per-call timing split."""

    #: every option the detector understands, with its default (all of them enter config_hash)
    defaults: Mapping[str, Any] = {}
    #: the allowed values of each numeric option (every numeric option has an entry)
    bounds: Mapping[str, Bounds] = {}
    #: the allowed values of each text option that is a choice
    choices: Mapping[str, tuple[str, ...]] = {}
    #: devices the wrapper can run on
    devices: tuple[str, ...] = ("cpu",)
    precision = "fp32"

    @classmethod
    def option_table(cls) -> list[tuple[str, Any, str]]:
        """Every option with its default and its bounds or choices, then the runtime option `threads`."""
        rows = []
        for key, default in cls.defaults.items():
            if key in cls.choices:
                allowed = "one of " + ", ".join(cls.choices[key])
            elif key in cls.bounds:
                allowed = cls.bounds[key].describe()
            else:
                allowed = type(default).__name__
            rows.append((key, default, allowed))
        return rows + [("threads", None, f"CPU threads, {THREADS_BOUNDS.describe()} (default: all; not in the "
                                         "config hash)")]

    def __init__(self, **options: Any) -> None:
        threads = options.pop("threads", None)
        self.threads: int | None = None if threads is None else checked_option(self.name, "threads", 1, threads,
                                                                                THREADS_BOUNDS)
        self.device = options.pop("device", "cpu") or "cpu"
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(set(self.defaults) | set(RUNTIME_OPTIONS))) or "none"
            raise InputError(None, None, f"detector '{self.name}' has no option '{unknown[0]}' (options: {known})")
        merged = dict(self.defaults)
        for key, value in options.items():
            merged[key] = checked_option(self.name, key, self.defaults[key], value, self.bounds.get(key))
            if key in self.choices and merged[key] not in self.choices[key]:
                raise InputError(None, None, f"detector '{self.name}': option {key}={value!r} must be one of "
                                             f"{', '.join(self.choices[key])}")
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
            image = as_rgb8(image)
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


def checked_option(detector: str, key: str, default: Any, value: Any, bounds: Bounds | None = None) -> Any:
    """A user's option value in the type of its default and inside its bounds; anything else is an InputError."""
    coerced = _coerce(detector, key, default, value)
    if bounds is not None and coerced is not None and not bounds.contains(coerced):
        raise InputError(None, None, f"detector '{detector}': option {key}={value} is out of range; "
                                     f"it must be {bounds.describe()}")
    return coerced


def _coerce(detector: str, key: str, default: Any, value: Any) -> Any:
    """An option value in the type of its default (1 -> 1.0 for a float option); bad values are InputError."""
    if default is None:
        return value
    kind = type(default)
    converter = _CONVERTERS.get(kind)
    if converter is None:
        return value
    converted = None if value is None else converter(value)
    if converted is None:
        raise InputError(None, None, f"detector '{detector}': option {key}={value!r} is not "
                                     f"{_KIND_NAMES[kind]}")
    return converted


def as_bool(value: Any) -> bool | None:
    """True / False from a bool or its usual spellings (1, yes, on, ...), else None."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    return None


def as_float(value: Any) -> float | None:
    """A finite float from a number or its text, else None (bools, NaN and infinities are refused)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def as_int(value: Any) -> int | None:
    """An int from an integer, a whole float or their text ('3', '3.0', '1e3'), else None (1.7 and bools too)."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        pass
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    number = as_float(value)
    return int(number) if number is not None and number.is_integer() else None


_CONVERTERS = {bool: as_bool, int: as_int, float: as_float, str: str}
_KIND_NAMES = {bool: "a bool (true/false)", int: "an integer", float: "a float (a finite number)", str: "a string"}


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
