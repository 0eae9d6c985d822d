"""Detections in the official FDDB format, rectangles or ellipses, aligned with the ground truth's images."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from facebench.errors import InputError, warn
from protocols.fddb.blocks import Blocks, parse_blocks, read_text_lines
from protocols.fddb.ground_truth import check_ellipses, FddbGroundTruth, FOLD_IDS


FORMAT_COLUMNS = {"rect": 5, "ellipse": 6}
FORMAT_FIELDS = {"rect": "left top width height score", "ellipse": "major minor angle cx cy score"}


@dataclass(frozen=True, eq=False)
class FddbDetections:
    """Detections per image in ground-truth order (image i owns det_start[i]:det_start[i+1])."""

    format: str  # "rect" (left top width height) or "ellipse" (major minor angle cx cy)
    det_start: np.ndarray
    regions: np.ndarray  # (n, 4) or (n, 5)
    scores: np.ndarray
    files: tuple[str, ...]

    @property
    def count(self) -> int:
        """Number of detections."""
        return int(self.det_start[-1])


def detection_files(source: str | os.PathLike, folds: Sequence[str] = ()) -> list[Path]:
    """The file itself, or a folder's fold-XX-out.txt files in fold order (only `folds` when given)."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise InputError(source, None, "detections not found (expected a file or a folder of fold-XX-out.txt)")
    wanted = tuple(folds) or FOLD_IDS
    files = [source / f"fold-{f}-out.txt" for f in wanted if (source / f"fold-{f}-out.txt").is_file()]
    if not files:
        raise InputError(source, None, "no fold-XX-out.txt files in this folder")
    if folds:
        missing = [f for f in folds if not (source / f"fold-{f}-out.txt").is_file()]
        if missing:
            raise InputError(source / f"fold-{missing[0]}-out.txt", None, "detections of this fold not found")
    return files


def read_detections(source: str | os.PathLike, gt: FddbGroundTruth, fmt: str = "rect") -> FddbDetections:
    """FDDB detection output (one file, or fold files read as one), images in the ground truth's order."""
    if fmt not in FORMAT_COLUMNS:
        raise ValueError(f"unknown detection format {fmt!r} (rect or ellipse)")
    files = detection_files(source, gt.folds)
    ncols = FORMAT_COLUMNS[fmt]
    counts: list[int] = []
    chunks: list[np.ndarray] = []
    k = 0
    warned = False
    for path in files:
        lines = read_text_lines(path)
        if len(files) > 1 and not any(line.strip() for line in lines):
            # read as one concatenated file (runEvaluate.pl), so the next file's names would be blamed
            warn(f"{path}: empty fold file; the images of its fold are then expected in the next file")
        blocks = parse_blocks(lines, path, gt.images, k, "detections", ncols, FORMAT_FIELDS[fmt])
        values = blocks.values(path, ncols)
        if blocks.width > ncols and not warned:
            warn(_extra_fields_warning(path, blocks, fmt))
            warned = True
        if fmt == "ellipse":
            check_ellipses(values, blocks.row_lines, path)
        trailing = [j for j in range(blocks.next_line, len(lines)) if lines[j].strip()]
        if trailing and k + len(blocks.names) >= gt.n_images:
            warn(f"{path}:{trailing[0] + 1}: ignoring {len(trailing)} lines after the last listed image")
        counts.extend(blocks.counts)
        chunks.append(values)
        k += len(blocks.names)
    if k < gt.n_images:
        raise InputError(files[-1], None, f"detections end after {k} of {gt.n_images} images "
                         f"(missing {gt.images[k]!r} and later; every listed image needs a block, count 0 if none)")
    values = np.concatenate(chunks) if chunks else np.zeros((0, ncols))
    return FddbDetections(format=fmt, det_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                          regions=values[:, :ncols - 1], scores=values[:, ncols - 1], files=tuple(map(str, files)))


def _extra_fields_warning(path: Path, blocks: Blocks, fmt: str) -> str:
    """One line: the region lines have more numbers than `fmt` reads (as the official reader, it takes the first)."""
    ncols = FORMAT_COLUMNS[fmt]
    where = f"{path}:{blocks.width_line}: region lines have {blocks.width} numbers"
    if fmt == "rect" and blocks.width == FORMAT_COLUMNS["ellipse"]:
        return (f"{where}, as ellipses ({FORMAT_FIELDS['ellipse']}) do; reading the first {ncols} as "
                f"'{FORMAT_FIELDS[fmt]}' (pass --format ellipse if these are ellipses)")
    return f"{where}; --format {fmt} reads the first {ncols} ({FORMAT_FIELDS[fmt]}) and ignores the rest"
