"""Every evaluated image's width and height, from a size table or the images' headers (the raster clips to them)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from facebench.errors import InputError, warn
from protocols.fddb.blocks import is_number, NUMBER, read_text_lines
from protocols.fddb.ground_truth import FddbGroundTruth


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", "")


@dataclass(frozen=True)
class ImageSizes:
    """Width and height of every evaluated image, aligned with the ground truth."""

    width: np.ndarray
    height: np.ndarray
    source: str


MAX_IMAGE_SIDE = 2 ** 31 - 1  # OpenCV's Mat sizes are C ints


def _image_size(fields: list[str], path: Path, number: int) -> tuple[int, int]:
    """Width and height in whole pixels: integers, or integer-valued numbers such as `100.0` or `1e2`."""
    if not all(NUMBER.fullmatch(f) for f in fields):
        raise InputError(path, number, f"width and height must be integers, found {fields[0]!r} {fields[1]!r}")
    values = [float(f) for f in fields]
    if not all(math.isfinite(v) and v == int(v) for v in values):
        raise InputError(path, number, f"width and height must be whole pixels, found {fields[0]} {fields[1]}")
    w, h = (int(v) for v in values)
    if w <= 0 or h <= 0:
        raise InputError(path, number, f"image size must be positive, found {w}x{h}")
    if max(w, h) > MAX_IMAGE_SIDE:
        raise InputError(path, number, f"image size beyond {MAX_IMAGE_SIDE} pixels, found {w}x{h}")
    return w, h


def read_size_table(path: str | os.PathLike, gt: FddbGroundTruth) -> ImageSizes:
    """A table `image width height` (tab or space separated) for all evaluated images.

    Sizes are whole pixels; integer-valued numbers (`100.0`, `1e2`) are accepted, any other value is an
    error naming its line. The first line is a header only when neither size field is a number at all.
    """
    path = Path(path)
    table: dict[str, tuple[int, int, int]] = {}
    first = True
    for number, line in enumerate(read_text_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3:
            raise InputError(path, number, "expected 'image width height'")
        header = first and not any(is_number(f) for f in parts[1:3])
        first = False
        if header:
            continue
        w, h = _image_size(parts[1:3], path, number)
        if parts[0] in table and table[parts[0]][:2] != (w, h):
            raise InputError(path, number, f"second, different size for {parts[0]!r} (first at line "
                             f"{table[parts[0]][2]})")
        table[parts[0]] = (w, h, number)
    width = np.zeros(gt.n_images, dtype=np.int64)
    height = np.zeros(gt.n_images, dtype=np.int64)
    for k, name in enumerate(gt.images):
        entry = table.get(name)
        if entry is None:
            file, line = gt.where(k)
            raise InputError(file, line, f"no size for image {name!r} in {path}")
        width[k], height[k] = entry[0], entry[1]
    return ImageSizes(width=width, height=height, source=str(Path(path).absolute()))


def read_image_sizes(images_dir: str | os.PathLike, gt: FddbGroundTruth,
                     without_detections: Sequence[str] = ()) -> ImageSizes:
    """Sizes from the images' headers: <images_dir>/<name>.jpg (or another common extension).

    An image in `without_detections` whose header cannot be read (a run skipped it as unreadable) gets the
    smallest canvas holding its ellipses, with a warning: with no detection in it the size changes nothing."""
    from PIL import Image

    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise InputError(images_dir, None, "images folder not found")
    width = np.zeros(gt.n_images, dtype=np.int64)
    height = np.zeros(gt.n_images, dtype=np.int64)
    for k, name in enumerate(gt.images):
        for ext in IMAGE_EXTENSIONS:
            candidate = images_dir / (name + ext)
            if candidate.is_file():
                try:
                    with Image.open(candidate) as im:
                        width[k], height[k] = im.size
                except OSError as exc:
                    if name not in without_detections:
                        raise InputError(candidate, None, f"cannot read the image size: {exc}") from None
                    width[k], height[k] = ellipses_extent(gt.ellipses[gt.face_start[k]:gt.face_start[k + 1]])
                    warn(f"{candidate}: cannot read the image size; it has no detections, so its faces count "
                         f"as missed on a {width[k]}x{height[k]} canvas holding its ellipses")
                break
        else:
            file, line = gt.where(k)
            raise InputError(file, line, f"image {name!r} not found under {images_dir} (tried "
                             f"{', '.join(e or 'no extension' for e in IMAGE_EXTENSIONS)})")
    return ImageSizes(width=width, height=height, source=str(Path(images_dir).absolute()))


def ellipses_extent(ellipses: np.ndarray) -> tuple[int, int]:
    """Width and height of the smallest canvas from the origin holding every ellipse (major, minor, angle, x, y)."""
    if len(ellipses) == 0:
        return 1, 1
    a, b, angle, cx, cy = (ellipses[:, i] for i in range(5))
    half_w = np.sqrt((a * np.cos(angle)) ** 2 + (b * np.sin(angle)) ** 2)
    half_h = np.sqrt((a * np.sin(angle)) ** 2 + (b * np.cos(angle)) ** 2)
    return (max(1, int(np.ceil(np.max(cx + half_w)))) + 1, max(1, int(np.ceil(np.max(cy + half_h)))) + 1)
