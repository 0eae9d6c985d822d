"""WIDER FACE training data for HAMBox: readers, augmentation (spec §6), resumable loader, synthetic data."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np

from detectors.hambox.config_types import check_field_types
from facebench.errors import InputError

if TYPE_CHECKING:
    import PIL.Image
    import torch.utils.data

#: torchvision ImageNet mean as RGB 0-255: the padding colour of crops (spec §6 "pad with the mean colour").
IMAGENET_MEAN_RGB = (124, 116, 104)
#: PyramidBox's data-anchor-sampling scales s_i = 16 * 2**i, i = 0..5.
DAS_ANCHOR_SCALES = (16.0, 32.0, 64.0, 128.0, 256.0, 512.0)

# ------------------------------------------------------------------------------------------------
# Readers
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WiderRecord:
    """One WIDER FACE image: relative path, boxes as (x, y, w, h) pixels, the 6 attribute columns."""

    name: str
    boxes_xywh: np.ndarray  # float32 [N, 4]
    attributes: np.ndarray  # int32 [N, 6]: blur, expression, illumination, invalid, occlusion, pose
    source: str = ""  # "file:line" of the record in the annotation, for messages


def valid_boxes_xyxy(record: WiderRecord) -> np.ndarray:
    """The record's boxes as continuous (x1, y1, x2, y2), dropping non-positive widths/heights (spec §6)."""
    b = record.boxes_xywh.astype(np.float32)
    keep = (b[:, 2] > 0) & (b[:, 3] > 0)
    b = b[keep]
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:4]], axis=1).reshape(-1, 4)


def read_wider_txt(path: str | os.PathLike) -> list[WiderRecord]:
    """Parse wider_face_{train,val}_bbx_gt.txt (name line, count line, one row per box)."""
    from protocols.wider_face.split_txt import read_split_txt

    return [WiderRecord(name=img.path, boxes_xywh=img.boxes.astype(np.float32),
                        attributes=img.attributes.astype(np.int32), source=f"{path}:{img.line}")
            for img in read_split_txt(path)]


def _cell_text(value: Any) -> str:
    """Unwrap MATLAB cell/char nesting down to one string."""
    while isinstance(value, np.ndarray):
        if value.size == 0:
            return ""
        if value.dtype.kind in "US":
            return str(value.ravel()[0])
        value = value.ravel()[0]
    return str(value)


def _cell_list(value: Any) -> list[Any]:
    """A MATLAB cell column as a Python list of its elements."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        return list(value.ravel())
    return [value]


def read_wider_mat(path: str | os.PathLike) -> list[WiderRecord]:
    """Parse wider_face_{train,val}.mat (event_list, file_list, face_bbx_list, *_label_list)."""
    from facebench.io_mat import load_mat

    data = load_mat(path)
    for key in ("event_list", "file_list", "face_bbx_list"):
        if key not in data:
            raise InputError(path, None, f"variable '{key}' missing (not a wider_face_split .mat?)")
    label_keys = ("blur_label_list", "expression_label_list", "illumination_label_list",
                  "invalid_label_list", "occlusion_label_list", "pose_label_list")
    events = _cell_list(data["event_list"])
    files = _cell_list(data["file_list"])
    boxes = _cell_list(data["face_bbx_list"])
    labels = {k: _cell_list(data[k]) if k in data else None for k in label_keys}
    if not (len(events) == len(files) == len(boxes)):
        raise InputError(path, None, "event_list, file_list and face_bbx_list differ in length")
    records: list[WiderRecord] = []
    for e, event in enumerate(events):
        event_name = _cell_text(event)
        names = _cell_list(files[e])
        event_boxes = _cell_list(boxes[e])
        if len(names) != len(event_boxes):
            raise InputError(path, None, f"event '{event_name}': {len(names)} files but {len(event_boxes)} box lists")
        for f, file_cell in enumerate(names):
            b = np.asarray(event_boxes[f], dtype=np.float64)
            b = b.reshape(-1, 4) if b.size else np.zeros((0, 4))
            if not np.isfinite(b).all():  # a face silently dropped later would change every statistic
                bad = int(np.flatnonzero(~np.isfinite(b).all(axis=1))[0])
                raise InputError(path, None, f"face_bbx_list of {event_name}/{_cell_text(file_cell)} (file {f + 1}): "
                                             f"box {bad + 1} holds NaN or inf")
            attrs = np.zeros((len(b), 6), dtype=np.int32)
            for c, key in enumerate(label_keys):
                if labels[key] is not None:
                    column = np.asarray(_cell_list(labels[key][e])[f]).ravel()
                    if column.size == len(b):
                        attrs[:, c] = column.astype(np.int32)
            name = f"{event_name}/{_cell_text(file_cell)}.jpg"
            records.append(WiderRecord(name=name, boxes_xywh=b.astype(np.float32), attributes=attrs,
                                       source=f"{path}:{event_name}/{f + 1}"))
    return records


def read_wider_split(path: str | os.PathLike, split: str = "train") -> tuple[list[WiderRecord], Path]:
    """Read WIDER ground truth from a .txt, a .mat, or a wider_face_split folder (the .mat preferred).

    The .mat is preferred because the commonly circulated txt was edited (negative widths replaced by 0);
    both are dropped by `valid_boxes_xyxy`, so training sees the same boxes either way. Returns the
    records and the file actually read.
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / f"wider_face_{split}.mat", path / f"wider_face_{split}_bbx_gt.txt"]
        for candidate in candidates:
            if candidate.is_file():
                path = candidate
                break
        else:
            raise InputError(path, None, f"no wider_face_{split}.mat or wider_face_{split}_bbx_gt.txt in this folder")
    if not path.exists():
        raise InputError(path, None, "ground-truth file not found")
    if path.suffix.lower() == ".mat":
        return read_wider_mat(path), path
    return read_wider_txt(path), path


# ------------------------------------------------------------------------------------------------
# Augmentation: pure geometry first, pixels second
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation settings (spec §6); defaults are the HAMBox recipe."""

    crop_size: int = 640
    das_prob: float = 1.0  # probability of data-anchor-sampling; otherwise a square random crop
    das_scale_sampling: str = "uniform"  # "uniform" (PyramidBox Paddle) or "log_uniform" (PyTorch port)
    das_index_rule: str = "spec"  # highest anchor index: "spec" (argmin + 1) or "pyramidbox" (Paddle's size buckets)
    das_anchor_scales: tuple[float, ...] = DAS_ANCHOR_SCALES
    ssd_min_scale: float = 0.3  # square-crop side range, as a fraction of the shorter image side
    min_face_area: float = 64.0  # faces smaller than 8x8 px after resizing are dropped
    clip_boxes: bool = True  # clip kept boxes to the crop (the visible part of the face)
    color_distort: bool = True
    flip_prob: float = 0.5
    random_interpolation: bool = True  # PyramidBox draws one of 5 resampling filters per crop
    interpolation: str = "bilinear"  # the filter used when random_interpolation is off
    # ZCC face-shift jittering in the crop: (dx, dy) uniform in {0..shift_jitter-1}; 0 = off. The model's
    # zcc_shift_jitter does the same on the batch with {0..n}: n = shift_jitter - 1; use one, not both.
    shift_jitter: int = 0
    max_tries: int = 10  # augmentation attempts per image before another image is drawn
    pad_rgb: tuple[int, int, int] = IMAGENET_MEAN_RGB

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "AugmentConfig":
        """Build from a config section; unknown keys raise ValueError naming the key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown augmentation key '{unknown[0]}'")
        kwargs = dict(values)
        for key in ("das_anchor_scales", "pad_rgb"):
            if key in kwargs:
                if not isinstance(kwargs[key], (list, tuple)):
                    raise ValueError(f"{key} must be a list of numbers, got {kwargs[key]!r}")
                kwargs[key] = tuple(kwargs[key])
        config = cls(**kwargs)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ValueError for settings of the wrong type or out of range."""
        check_field_types(self)
        if self.crop_size < 16:
            raise ValueError("crop_size must be >= 16")
        if not 0.0 <= self.das_prob <= 1.0:
            raise ValueError("das_prob must lie in [0, 1]")
        if self.das_scale_sampling not in ("uniform", "log_uniform"):
            raise ValueError("das_scale_sampling must be 'uniform' or 'log_uniform'")
        if self.das_index_rule not in ("spec", "pyramidbox"):
            raise ValueError("das_index_rule must be 'spec' or 'pyramidbox'")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ValueError("flip_prob must lie in [0, 1]")
        if not 0.0 < self.ssd_min_scale <= 1.0:
            raise ValueError("ssd_min_scale must lie in (0, 1]")
        if self.shift_jitter < 0 or self.max_tries < 1:
            raise ValueError("shift_jitter must be >= 0 and max_tries >= 1")
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(_INTERPOLATIONS)}")
        scales = self.das_anchor_scales
        if not scales or scales[0] <= 0 or any(b <= a for a, b in zip(scales, scales[1:])):
            raise ValueError("das_anchor_scales must be increasing positive sizes")
        if len(self.pad_rgb) != 3:
            raise ValueError("pad_rgb needs 3 values")


@dataclass(frozen=True)
class CropGeometry:
    """Map from source pixels to the crop: p' = p * scale - offset, then x' = size - x' if flipped."""

    scale: float
    offset_x: int
    offset_y: int
    size: int
    flip: bool = False


def transform_boxes(boxes: np.ndarray, geometry: CropGeometry) -> np.ndarray:
    """Apply a CropGeometry to (x1, y1, x2, y2) boxes (no filtering)."""
    out = boxes.astype(np.float64) * geometry.scale
    out[:, [0, 2]] -= geometry.offset_x
    out[:, [1, 3]] -= geometry.offset_y
    if geometry.flip:
        out[:, [0, 2]] = geometry.size - out[:, [2, 0]]
    return out.astype(np.float32).reshape(-1, 4)


def select_crop_boxes(boxes: np.ndarray, size: int, min_area: float) -> np.ndarray:
    """Indices of crop-frame boxes kept: centre inside the crop, border included, area >= min_area (spec 6.2:
    measured after resizing, on the whole face, so a face the crop border cuts stays when it is large enough)."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    # inclusive, as PyramidBox's meet_emit_constraint (xmin <= cx <= xmax): the spec only says "in the window"
    inside = (cx >= 0) & (cx <= size) & (cy >= 0) & (cy <= size)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    keep = inside & (w > 0) & (h > 0) & (w * h >= min_area)
    return np.nonzero(keep)[0]


def das_top_index(scales: np.ndarray, area: float, rule: str) -> int:
    """Highest anchor index data-anchor-sampling may draw for a face of this area (spec 6, step 2)."""
    if rule == "spec":
        return min(len(scales) - 1, int(np.argmin(np.abs(scales - math.sqrt(area)))) + 1)
    # PyramidBox's Paddle reader: the index of the first scale above the face, by strict area comparisons (a face
    # whose area equals a scale's square falls to 0), and at most len - 2. Every index below it is a scale smaller
    # than the face, so with the cap at the top index no face is enlarged more than 2x; the "spec" rule (argmin + 1)
    # lets a 4 px face reach 32 px through index 0.
    top = 0
    for i in range(len(scales) - 1):
        if scales[i] ** 2 < area < scales[i + 1] ** 2:
            top = i + 1
            break
    if len(scales) >= 2 and area > scales[-2] ** 2:
        top = len(scales) - 2
    return top


def sample_das_scale(boxes: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> tuple[int, float]:
    """Data-anchor-sampling: pick a face and the image scale that brings it near a chosen anchor size."""
    scales = np.asarray(config.das_anchor_scales, dtype=np.float64)
    face = int(rng.integers(len(boxes)))
    w = float(boxes[face, 2] - boxes[face, 0])
    h = float(boxes[face, 3] - boxes[face, 1])
    area = max(w * h, 1e-6)
    s_face = math.sqrt(area)
    top = das_top_index(scales, area, config.das_index_rule)
    i_target = int(rng.integers(top + 1))
    low, high = scales[i_target] / 2.0, 2.0 * scales[i_target]
    if i_target == top:
        # PyramidBox: at the highest allowed index a face is never enlarged more than 2x.
        high = min(high, 2.0 * s_face)
        low = min(low, high)
    if config.das_scale_sampling == "log_uniform":
        s_target = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        s_target = rng.uniform(low, high)
    return face, s_target / s_face


def sample_das_window(face_box: np.ndarray, scaled_size: tuple[float, float], crop: int,
                      rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner (integer, resized-image pixels) of a crop window containing the chosen face."""
    width, height = scaled_size
    x1, y1, x2, y2 = (float(v) for v in face_box)
    if crop < max(width, height):
        ox = _window_start(x1, x2 - x1, crop, rng)
        oy = _window_start(y1, y2 - y1, crop, rng)
    else:
        # The whole resized image fits: place it anywhere inside the window.
        ox = rng.uniform(width - crop, 0.0)
        oy = rng.uniform(height - crop, 0.0)
    return int(math.floor(ox)), int(math.floor(oy))


def _window_start(start: float, extent: float, crop: int, rng: np.random.Generator) -> float:
    if extent <= crop:
        return rng.uniform(start + extent - crop, start)
    return rng.uniform(start, start + extent - crop)


def sample_square_crop(boxes: np.ndarray, image_size: tuple[int, int], config: AugmentConfig,
                       rng: np.random.Generator) -> CropGeometry:
    """SSD-style alternative to DAS: a random square (side 0.3-1 of the shorter side) holding a face centre."""
    width, height = image_size
    short = min(width, height)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    for _ in range(50):
        side = rng.uniform(config.ssd_min_scale, 1.0) * short
        x0 = rng.uniform(0.0, width - side)
        y0 = rng.uniform(0.0, height - side)
        inside = ((centres[:, 0] > x0) & (centres[:, 0] < x0 + side)
                  & (centres[:, 1] > y0) & (centres[:, 1] < y0 + side))
        if inside.any():
            break
    else:
        side, x0, y0 = float(max(width, height)), 0.0, 0.0
    scale = config.crop_size / side
    return CropGeometry(scale=scale, offset_x=int(math.floor(x0 * scale)), offset_y=int(math.floor(y0 * scale)),
                        size=config.crop_size)


def sample_geometry(boxes: np.ndarray, image_size: tuple[int, int], config: AugmentConfig,
                    rng: np.random.Generator) -> CropGeometry:
    """Draw one crop geometry (DAS or square crop, then face-shift jitter and flip) for an image."""
    crop = config.crop_size
    if config.das_prob >= 1.0 or rng.uniform() < config.das_prob:
        face, scale = sample_das_scale(boxes, rng, config)
        scaled = (image_size[0] * scale, image_size[1] * scale)
        ox, oy = sample_das_window(boxes[face] * scale, scaled, crop, rng)
        geometry = CropGeometry(scale=scale, offset_x=ox, offset_y=oy, size=crop)
    else:
        geometry = sample_square_crop(boxes, image_size, config, rng)
    if config.shift_jitter > 0:
        dx, dy = (int(v) for v in rng.integers(config.shift_jitter, size=2))
        # Content moves right/down by (dx, dy).
        geometry = CropGeometry(geometry.scale, geometry.offset_x - dx, geometry.offset_y - dy, crop)
    flip = bool(rng.uniform() < config.flip_prob)
    return CropGeometry(geometry.scale, geometry.offset_x, geometry.offset_y, crop, flip)


_INTERPOLATIONS = ("bilinear", "hamming", "nearest", "bicubic", "lanczos")


def render_crop(image: "PIL.Image.Image", geometry: CropGeometry, fill: tuple[int, int, int],
                interpolation: str = "bilinear") -> "PIL.Image.Image":
    """Resample an RGB PIL image into the crop described by `geometry` (padding with `fill`)."""
    from PIL import Image

    resample = {"bilinear": Image.Resampling.BILINEAR, "hamming": Image.Resampling.HAMMING,
                "nearest": Image.Resampling.NEAREST, "bicubic": Image.Resampling.BICUBIC,
                "lanczos": Image.Resampling.LANCZOS}[interpolation]
    width, height = image.size
    s = geometry.scale
    size = geometry.size
    ox, oy = geometry.offset_x, geometry.offset_y
    # Output pixel u covers resized coordinates [ox + u, ox + u + 1); only whole source pixels are drawn,
    # so the source box below never leaves the image and box coordinates stay exact.
    u0, u1 = max(0, -ox), min(size, int(math.floor(width * s + 1e-9)) - ox)
    v0, v1 = max(0, -oy), min(size, int(math.floor(height * s + 1e-9)) - oy)
    canvas = Image.new("RGB", (size, size), tuple(int(c) for c in fill))
    if u1 > u0 and v1 > v0:
        box = (max(0.0, (ox + u0) / s), max(0.0, (oy + v0) / s),
               min(float(width), (ox + u1) / s), min(float(height), (oy + v1) / s))
        part = image.resize((u1 - u0, v1 - v0), resample=resample, box=box)
        canvas.paste(part, (u0, v0))
    if geometry.flip:
        canvas = canvas.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return canvas


def distort_colors(image: "PIL.Image.Image", rng: np.random.Generator) -> "PIL.Image.Image":
    """PyramidBox colour distortion: brightness, contrast, saturation, hue, each with p=0.5, random order."""
    from PIL import ImageEnhance

    def brightness(img):
        return ImageEnhance.Brightness(img).enhance(1.0 + rng.uniform(-0.125, 0.125)) if rng.uniform() < 0.5 else img

    def contrast(img):
        return ImageEnhance.Contrast(img).enhance(1.0 + rng.uniform(-0.5, 0.5)) if rng.uniform() < 0.5 else img

    def saturation(img):
        return ImageEnhance.Color(img).enhance(1.0 + rng.uniform(-0.5, 0.5)) if rng.uniform() < 0.5 else img

    def hue(img):
        if rng.uniform() >= 0.5:
            return img
        from PIL import Image

        hsv = np.array(img.convert("HSV"), dtype=np.int16)
        hsv[..., 0] = (hsv[..., 0] + int(round(rng.uniform(-18, 18)))) % 256
        return Image.fromarray(hsv.astype(np.uint8), mode="HSV").convert("RGB")

    order = (brightness, contrast, saturation, hue) if rng.uniform() < 0.5 else (brightness, saturation, hue, contrast)
    for step in order:
        image = step(image)
    return image


@dataclass
class AugmentedSample:
    """An augmented crop: uint8 RGB image [S, S, 3], kept boxes [M, 4], their source indices, the geometry."""

    image: np.ndarray
    boxes: np.ndarray
    source_indices: np.ndarray
    geometry: CropGeometry
    interpolation: str


def sample_crop_boxes(boxes: np.ndarray, image_size: tuple[int, int], config: AugmentConfig,
                      rng: np.random.Generator) -> tuple[CropGeometry, np.ndarray, np.ndarray, str] | None:
    """Geometry-only augmentation: (geometry, kept crop-frame boxes, their source indices, interpolation).

    Tries up to `config.max_tries` geometries; None when none keeps a face.
    """
    if len(boxes) == 0:
        return None
    for _ in range(config.max_tries):
        geometry = sample_geometry(boxes, image_size, config, rng)
        interpolation = _INTERPOLATIONS[int(rng.integers(len(_INTERPOLATIONS)))] if config.random_interpolation \
            else config.interpolation
        moved = transform_boxes(boxes, geometry)
        keep = select_crop_boxes(moved, config.crop_size, config.min_face_area)
        if len(keep) == 0:
            continue
        kept = moved[keep]
        if config.clip_boxes:
            kept = np.clip(kept, 0, config.crop_size)
        return geometry, kept.astype(np.float32), keep, interpolation
    return None


def augment_sample(image: "PIL.Image.Image", boxes: np.ndarray, config: AugmentConfig,
                   rng: np.random.Generator) -> AugmentedSample | None:
    """Colour distortion, DAS crop, flip (spec §6); None when every try leaves the crop without a face."""
    if len(boxes) == 0:
        return None
    image = image.convert("RGB")
    if config.color_distort:
        image = distort_colors(image, rng)
    drawn = sample_crop_boxes(boxes, image.size, config, rng)
    if drawn is None:
        return None
    geometry, kept, keep, interpolation = drawn
    crop = render_crop(image, geometry, config.pad_rgb, interpolation)
    return AugmentedSample(np.asarray(crop, dtype=np.uint8), kept, keep, geometry, interpolation)


# ------------------------------------------------------------------------------------------------
# Dataset, sampler, collate, loader
# ------------------------------------------------------------------------------------------------


def load_rgb(path: str | os.PathLike) -> "PIL.Image.Image":
    """Open an image file as RGB (raises InputError naming the file when unreadable)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as handle:
            return handle.convert("RGB")
    except FileNotFoundError:
        raise InputError(path, None, "training image not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(path, None, f"cannot read image: {exc}") from None


class WiderTrainDataset:
    """Map-style dataset indexed by a global *draw id*: draw k is a deterministic function of (seed, k).

    Draw k reads image perm_e[k mod n] with e = k // n (perm_e a seeded permutation per epoch) and
    augments it with an RNG seeded by (seed, k), so the sample stream does not depend on the number of
    workers or on interruptions: resuming at iteration i re-creates exactly the draws of an unbroken run.
    """

    def __init__(self, records: Sequence[WiderRecord], image_root: str | os.PathLike,
                 config: AugmentConfig = AugmentConfig(), seed: int = 0) -> None:
        self.image_root = Path(image_root)
        self.config = config
        self.seed = int(seed)
        self.items: list[tuple[str, np.ndarray]] = []
        for record in records:
            boxes = valid_boxes_xyxy(record)
            if len(boxes):
                self.items.append((record.name, boxes))
        if not self.items:
            raise InputError(None, None, "no training image has a face with positive width and height")
        self._perm_epoch = -1
        self._perm: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.items)

    def image_index(self, draw: int) -> int:
        """Which image draw `draw` reads (seeded per-epoch permutation)."""
        epoch, position = divmod(int(draw), len(self.items))
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, 0x5EED, epoch]).permutation(len(self.items))
            self._perm_epoch = epoch
        return int(self._perm[position])

    def __getitem__(self, draw: int) -> dict[str, Any]:
        from torch.utils.data import get_worker_info

        if get_worker_info() is None:
            return self._sample(draw)
        try:
            return self._sample(draw)
        except InputError as exc:
            # A DataLoader worker re-raises as a multi-line RuntimeError; carry the error to the main process,
            # which raises it as the one-line InputError it is (collate_detection, raise_loader_error).
            return {"error": (exc.path, exc.line, exc.message), "draw": int(draw)}

    def _sample(self, draw: int) -> dict[str, Any]:
        import torch

        rng = np.random.default_rng([self.seed, int(draw)])
        index = self.image_index(draw)
        for _ in range(100):
            name, boxes = self.items[index]
            sample = augment_sample(load_rgb(self.image_root / name), boxes, self.config, rng)
            if sample is not None:
                return {"image": torch.from_numpy(np.ascontiguousarray(sample.image.transpose(2, 0, 1))),
                        "boxes": torch.from_numpy(sample.boxes), "name": name, "draw": int(draw)}
            # PyramidBox drops crops without faces; we redraw another image from the same stream.
            index = int(rng.integers(len(self.items)))
        raise InputError(self.image_root, None, "100 images in a row gave crops without faces; check the boxes")


class TrainBatchSampler:
    """Yields, per micro-batch, the draw ids of one rank: iteration-indexed, resumable, DDP-sharded.

    Iteration `it` consumes draws [it * B, (it + 1) * B) with B = per_rank * world_size * accumulation;
    micro-step m of rank r takes the slice starting at ((m * world_size) + r) * per_rank.
    """

    def __init__(self, per_rank: int, world_size: int = 1, rank: int = 0, accumulation: int = 1,
                 start_iteration: int = 0, max_iterations: int = 1) -> None:
        if per_rank < 1 or world_size < 1 or accumulation < 1 or not 0 <= rank < world_size:
            raise ValueError("bad batch sampler settings")
        self.per_rank = per_rank
        self.world_size = world_size
        self.rank = rank
        self.accumulation = accumulation
        self.start_iteration = start_iteration
        self.max_iterations = max_iterations

    @property
    def global_batch(self) -> int:
        """Images per optimiser step over all ranks and micro-steps."""
        return self.per_rank * self.world_size * self.accumulation

    def __len__(self) -> int:
        return max(0, self.max_iterations - self.start_iteration) * self.accumulation

    def __iter__(self) -> Iterator[list[int]]:
        for iteration in range(self.start_iteration, self.max_iterations):
            base = iteration * self.global_batch
            for micro in range(self.accumulation):
                first = base + (micro * self.world_size + self.rank) * self.per_rank
                yield list(range(first, first + self.per_rank))


def collate_detection(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack same-size uint8 images [B, 3, S, S]; keep boxes as a list (variable counts per image)."""
    import torch

    failed = [s["error"] for s in samples if "error" in s]
    if failed:
        return {"error": failed[0]}
    return {"images": torch.stack([s["image"] for s in samples]),
            "boxes": [s["boxes"] for s in samples],
            "names": [s["name"] for s in samples],
            "draws": torch.tensor([s["draw"] for s in samples], dtype=torch.int64)}


def raise_loader_error(batch: Mapping[str, Any]) -> None:
    """Raise the InputError a DataLoader worker met while making `batch` (see WiderTrainDataset.__getitem__)."""
    if "error" in batch:
        raise InputError(*batch["error"])


def make_train_loader(dataset: WiderTrainDataset, sampler: TrainBatchSampler, num_workers: int = 4,
                      pin_memory: bool = False, prefetch_factor: int = 2) -> "torch.utils.data.DataLoader":
    """A multi-worker DataLoader over `sampler`'s micro-batches (order preserved)."""
    import torch
    from torch.utils.data import DataLoader

    # A private generator: creating the iterator must not draw from the global torch RNG, whose state a
    # resumed run restores from its checkpoint (samples themselves are seeded by their draw id).
    kwargs: dict[str, Any] = {"generator": torch.Generator().manual_seed(0)}
    if num_workers > 0:
        kwargs.update(prefetch_factor=prefetch_factor, persistent_workers=False)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate_detection,
                      pin_memory=pin_memory, **kwargs)


# ------------------------------------------------------------------------------------------------
# Synthetic WIDER-layout data for tests and smoke runs
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticWider:
    """Where a generated dataset was written: image root and a wider_face_split-style txt."""

    image_root: Path
    annotation: Path
    records: list[WiderRecord] = field(default_factory=list)


def make_synthetic_wider(root: str | os.PathLike, n_images: int = 8, image_size: tuple[int, int] = (160, 120),
                         faces_per_image: tuple[int, int] = (1, 3), face_sides: tuple[float, float] = (14.0, 48.0),
                         seed: int = 0) -> SyntheticWider:
    """Write `n_images` PNGs of face-like ellipses on noise plus their GT txt (WIDER layout)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    root = Path(root)
    image_root = root / "images"
    (image_root / "0--Synthetic").mkdir(parents=True, exist_ok=True)
    width, height = image_size
    lines: list[str] = []
    records: list[WiderRecord] = []
    for i in range(n_images):
        background = rng.integers(0, 90, size=(height, width, 3), dtype=np.uint8)
        image = Image.fromarray(background, mode="RGB")
        draw = ImageDraw.Draw(image)
        count = int(rng.integers(faces_per_image[0], faces_per_image[1] + 1))
        boxes: list[list[int]] = []
        for _ in range(50):
            if len(boxes) == count:
                break
            side = rng.uniform(*face_sides)
            w = int(round(side * rng.uniform(0.8, 1.0)))
            h = int(round(side))
            if w >= width or h >= height:
                continue
            x = int(rng.integers(0, width - w))
            y = int(rng.integers(0, height - h))
            if any(x < bx + bw and bx < x + w and y < by + bh and by < y + h for bx, by, bw, bh in boxes):
                continue
            boxes.append([x, y, w, h])
            skin = tuple(int(v) for v in rng.integers([200, 150, 110], [256, 200, 160]))
            draw.ellipse([x, y, x + w - 1, y + h - 1], fill=skin)
            eye = max(1, w // 8)
            for ex in (x + w * 0.3, x + w * 0.7):
                ey = y + h * 0.4
                draw.ellipse([ex - eye, ey - eye, ex + eye, ey + eye], fill=(20, 20, 20))
        name = f"0--Synthetic/0_Synthetic_{i:04d}.png"
        image.save(image_root / name)
        lines.append(name)
        lines.append(str(len(boxes)))
        lines.extend(f"{x} {y} {w} {h} 0 0 0 0 0 0 " for x, y, w, h in boxes)
        table = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        records.append(WiderRecord(name=name, boxes_xywh=table, attributes=np.zeros((len(table), 6), np.int32)))
    annotation = root / "wider_face_train_bbx_gt.txt"
    annotation.write_text("\n".join(lines) + "\n")
    return SyntheticWider(image_root=image_root, annotation=annotation, records=records)
