"""The `wider_face_split` annotation text (`wider_face_{train,val}_bbx_gt.txt`): boxes and attributes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebench.errors import InputError

ATTRIBUTE_COLUMNS = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")


@dataclass(frozen=True)
class SplitImage:
    """One image of the split file: `event/name.jpg`, boxes x y w h, and the six attribute columns."""

    path: str
    boxes: np.ndarray  # [N, 4] int64
    attributes: np.ndarray  # [N, 6] int64 (columns in ATTRIBUTE_COLUMNS order)

    @property
    def event(self) -> str:
        return self.path.split("/")[0]

    @property
    def name(self) -> str:
        return Path(self.path).stem


def read_split_txt(path: str | os.PathLike) -> list[SplitImage]:
    """Parse the split file; a count of 0 is followed by one all-zero placeholder row, as released."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror}") from None
    images: list[SplitImage] = []
    i = 0
    while i < len(lines):
        name = lines[i].strip()
        if not name:
            i += 1
            continue
        if not name.lower().endswith((".jpg", ".jpeg", ".png")):
            raise InputError(path, i + 1, f"expected an image path like 0--Parade/x.jpg, got {name[:60]!r}")
        if i + 1 >= len(lines):
            raise InputError(path, i + 2, f"missing face count for {name}")
        try:
            count = int(lines[i + 1].strip())
        except ValueError:
            raise InputError(path, i + 2, f"face count is not an integer: {lines[i + 1].strip()[:40]!r}") from None
        if count < 0:
            raise InputError(path, i + 2, f"negative face count {count}")
        rows = max(count, 1) if count == 0 and i + 2 < len(lines) and _is_zero_row(lines[i + 2]) else count
        block = lines[i + 2:i + 2 + rows]
        if len(block) < rows:
            raise InputError(path, i + 3 + len(block), f"{name}: count says {count} faces, file ends early")
        values = np.zeros((count, 10), dtype=np.int64)
        for k, text in enumerate(block[:count]):
            fields = text.split()
            if len(fields) < 10:
                raise InputError(path, i + 3 + k, f"expected 10 numbers (x y w h + 6 attributes), got {len(fields)}")
            try:
                values[k] = [int(float(f)) for f in fields[:10]]
            except ValueError:
                raise InputError(path, i + 3 + k, f"not a number in {text.strip()[:60]!r}") from None
        images.append(SplitImage(path=name, boxes=values[:, :4], attributes=values[:, 4:]))
        i += 2 + rows
    if not images:
        raise InputError(path, None, "no images in the split file")
    return images


def _is_zero_row(text: str) -> bool:
    fields = text.split()
    return len(fields) >= 4 and all(f.strip("0.") == "" for f in fields)
