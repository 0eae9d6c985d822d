"""The `wider_face_split` annotation text (`wider_face_{train,val}_bbx_gt.txt`): boxes and attributes."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebench.errors import InputError, read_input_text, text_lines

ATTRIBUTE_COLUMNS = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")


@dataclass(frozen=True)
class SplitImage:
    """One image of the split file: `event/name.jpg`, boxes x y w h, the six attribute columns, its line."""

    path: str
    boxes: np.ndarray  # [N, 4] float64 (integers in the released files)
    attributes: np.ndarray  # [N, 6] int64 (columns in ATTRIBUTE_COLUMNS order; 0 where a row has only a box)
    line: int = 0  # 1-based line of the image name

    @property
    def event(self) -> str:
        return self.path.split("/")[0]

    @property
    def name(self) -> str:
        return Path(self.path).stem


def read_split_txt(path: str | os.PathLike) -> list[SplitImage]:
    """Parse the split file; a count of 0 is followed by one all-zero placeholder row, as released."""
    path = Path(path)
    lines = text_lines(read_input_text(path, "annotation file"))
    images: list[SplitImage] = []
    i, n = 0, len(lines)
    while i < n:
        name = lines[i].strip()
        if not name:
            i += 1
            continue
        if not name.lower().endswith((".jpg", ".jpeg", ".png")):
            raise InputError(path, i + 1, f"expected an image name like 0--Parade/x.jpg, got '{name[:60]}'")
        if i + 1 >= n:
            raise InputError(path, i + 1, f"image '{name}' has no box-count line")
        text = lines[i + 1].strip()
        if not (text.isascii() and text.lstrip("+-").isdigit() and len(text) < 40):
            raise InputError(path, i + 2, f"expected a box count, got '{text[:40]}'")
        count = int(text)
        if count < 0:
            raise InputError(path, i + 2, f"negative box count {count}")
        j = i + 2
        if j + count > n:  # checked before allocating: a huge count must not exhaust memory
            raise InputError(path, i + 2, f"image '{name}' announces {count} boxes but only {n - j} lines follow")
        rows = count if count > 0 else (1 if j < n and _is_number_row(lines[j]) else 0)
        values = np.zeros((rows, 10), dtype=np.float64)
        for k in range(rows):
            if j >= n:
                raise InputError(path, j, f"image '{name}': file ends before its {count} boxes")
            fields = lines[j].split()
            if len(fields) < 4:
                raise InputError(path, j + 1, f"a box row needs at least 4 numbers, got {len(fields)}")
            try:
                numbers = [float(f) for f in fields[:10]]
            except ValueError:
                raise InputError(path, j + 1, f"non-numeric value in box row '{lines[j].strip()[:60]}'") from None
            if not all(math.isfinite(v) and abs(v) < 2 ** 31 for v in numbers):
                raise InputError(path, j + 1, f"box row values must be finite and within int32 range, got "
                                              f"'{lines[j].strip()[:60]}'")
            values[k, :len(numbers)] = numbers
            j += 1
        values = values[:count]
        images.append(SplitImage(path=name, boxes=values[:, :4], attributes=values[:, 4:].astype(np.int64),
                                 line=i + 1))
        i = j
    if not images:
        raise InputError(path, None, "no images in the annotation file")
    return images


def _is_number_row(text: str) -> bool:
    fields = text.split()
    if len(fields) < 4:
        return False
    try:
        [float(f) for f in fields]
    except ValueError:
        return False
    return True
