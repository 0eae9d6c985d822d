"""The embedded `sample` benchmark: one real photo that matplotlib ships, at six sizes, in WIDER FACE format.

The photo is matplotlib's `sample_data/grace_hopper.jpg` (512 x 600, US Navy portrait of Grace Hopper,
public domain), found inside the installed matplotlib; nothing is downloaded and no image is stored in
facebench. Its one face was boxed by hand for facebench (`FACE_XYWH`). The benchmark's six images are
the photo itself, its mirror image and four mosaics of scaled copies (2x2 ... 16x16 tiles, mirrored in a
checkerboard), so faces run from 187 px down to 11 px high; their boxes follow from the hand-drawn box by
the same geometry (`face_boxes`). `make_ground_truth.py` beside this file writes the four WIDER .mat
files in `ground_truth/` from these definitions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebench.errors import InputError

SOURCE_NAME = "grace_hopper.jpg"
SOURCE_SHA256 = "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"
SOURCE_SIZE = (512, 600)  # width, height
#: the face in the photo, x y w h: cheek to cheek at eye level, cap brim to chin (drawn for facebench)
FACE_XYWH = (180.0, 146.0, 182.0, 187.0)
GROUND_TRUTH_DIR = Path(__file__).resolve().parent / "ground_truth"
#: difficulty by face height in pixels (WIDER's own split comes from detector hit rates; faces shrink here)
EASY_MIN_HEIGHT = 40
MEDIUM_MIN_HEIGHT = 20


@dataclass(frozen=True)
class SampleImage:
    """One image of the sample: a k x k mosaic of the photo (k = 1 is the photo itself)."""

    event: str
    name: str
    tiles: int
    mirrored: bool  # k = 1: the whole photo; k > 1: tiles with odd row + column are mirrored

    @property
    def id(self) -> str:
        return f"{self.event}/{self.name}"

    @property
    def tile_size(self) -> tuple[int, int]:
        return SOURCE_SIZE[0] // self.tiles, SOURCE_SIZE[1] // self.tiles

    def tile_mirrored(self, row: int, col: int) -> bool:
        return self.mirrored if self.tiles == 1 else (row + col) % 2 == 1


IMAGES: tuple[SampleImage, ...] = (
    SampleImage("0--Portrait", "hopper", 1, False),
    SampleImage("0--Portrait", "hopper_mirror", 1, True),
    SampleImage("1--Mosaic", "hopper_mosaic_2x2", 2, False),
    SampleImage("1--Mosaic", "hopper_mosaic_4x4", 4, False),
    SampleImage("1--Mosaic", "hopper_mosaic_8x8", 8, False),
    SampleImage("1--Mosaic", "hopper_mosaic_16x16", 16, False),
)


def _round_half_up(values: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(values, dtype=np.float64) + 0.5).astype(np.int64)


def face_boxes(image: SampleImage) -> np.ndarray:
    """The int32 x y w h boxes of every face in `image`, row-major over tiles."""
    x, y, w, h = FACE_XYWH
    tw, th = image.tile_size
    sx, sy = tw / SOURCE_SIZE[0], th / SOURCE_SIZE[1]
    rows = []
    for row in range(image.tiles):
        for col in range(image.tiles):
            fx = SOURCE_SIZE[0] - (x + w) if image.tile_mirrored(row, col) else x
            x1, y1 = col * tw + fx * sx, row * th + y * sy
            corners = _round_half_up([x1, y1, x1 + w * sx, y1 + h * sy])
            rows.append([corners[0], corners[1], corners[2] - corners[0], corners[3] - corners[1]])
    return np.asarray(rows, dtype=np.int32)


def source_path() -> Path:
    """The photo inside the installed matplotlib, checked byte for byte against the annotated one."""
    try:
        import matplotlib.cbook

        path = Path(matplotlib.cbook.get_sample_data(SOURCE_NAME, asfileobj=False))
    except (ImportError, OSError, ValueError) as exc:
        raise InputError(None, None, f"sample benchmark: matplotlib's sample photo '{SOURCE_NAME}' is not "
                                     f"available ({exc}); reinstall matplotlib") from None
    if not path.is_file():
        raise InputError(path, None, "sample benchmark: matplotlib's sample photo is missing")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise InputError(path, None, f"sample benchmark: this photo differs from the annotated one "
                                     f"(sha256 {digest[:12]}..., expected {SOURCE_SHA256[:12]}...)")
    return path


def _resample():
    from PIL import Image

    return getattr(Image, "Resampling", Image).LANCZOS


def render(image: SampleImage, photo: np.ndarray | None = None) -> np.ndarray:
    """The RGB uint8 pixels of one sample image, built from the photo."""
    from PIL import Image

    if photo is None:
        with Image.open(source_path()) as handle:
            photo = np.asarray(handle.convert("RGB"))
    if image.tiles == 1:
        return np.ascontiguousarray(photo[:, ::-1] if image.mirrored else photo)
    tw, th = image.tile_size
    small = np.asarray(Image.fromarray(photo).resize((tw, th), _resample()))
    canvas = np.zeros((th * image.tiles, tw * image.tiles, 3), dtype=np.uint8)
    for row in range(image.tiles):
        for col in range(image.tiles):
            tile = small[:, ::-1] if image.tile_mirrored(row, col) else small
            canvas[row * th:(row + 1) * th, col * tw:(col + 1) * tw] = tile
    return canvas


def keep_indices(image: SampleImage, min_height: int) -> np.ndarray:
    """1-based indices of the faces at least `min_height` pixels high (a WIDER keep list)."""
    heights = face_boxes(image)[:, 3]
    return (np.nonzero(heights >= min_height)[0] + 1).astype(np.uint16)
