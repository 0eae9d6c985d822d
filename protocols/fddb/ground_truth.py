"""FDDB ground truth: the ten folds (or one ellipse list) as images in order and their ellipses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from facebench.errors import InputError, warn
from facebench.results import sha256_files
from protocols.fddb import raster
from protocols.fddb.blocks import Blocks, parse_blocks, read_text_lines


FOLD_IDS = tuple(f"{i:02d}" for i in range(1, 11))


@dataclass(frozen=True, eq=False)
class FddbGroundTruth:
    """The evaluated images in order and their ellipses (faces of image i: face_start[i]:face_start[i+1])."""

    images: tuple[str, ...]
    face_start: np.ndarray
    ellipses: np.ndarray  # (faces, 5): major radius, minor radius, angle (rad), centre x, centre y
    origin_file: np.ndarray  # per image: index into `files` where it is named
    origin_line: np.ndarray  # per image: 1-based line of its name
    files: tuple[str, ...]
    source: str
    folds: tuple[str, ...] = ()

    @property
    def n_images(self) -> int:
        """Number of images."""
        return len(self.images)

    @property
    def n_faces(self) -> int:
        """Number of annotated faces."""
        return int(self.face_start[-1])

    def faces_per_image(self) -> np.ndarray:
        """Annotated faces per image (int64)."""
        return np.diff(self.face_start)

    def where(self, index: int) -> tuple[str, int]:
        """(file, line) naming image `index`, for error messages."""
        return self.files[int(self.origin_file[index])], int(self.origin_line[index])

    def sha256(self) -> str:
        """sha256 over the ground-truth files, in reading order."""
        return sha256_files(self.files)


def check_ellipses(values: np.ndarray, lines: Sequence[int], path: Path) -> None:
    """Ellipses OpenCV can paint: semi-axes truncating to >= 0 (0 paints a point or a line), coordinates
    within its fixed-point range, and an angle whose degrees fit a C int."""
    bad = (np.trunc(values[:, 0]) < 0) | (np.trunc(values[:, 1]) < 0)
    if bad.any():
        k = int(np.argmax(bad))
        raise InputError(path, lines[k], f"ellipse axes must not be negative (got {values[k, 0]:g} "
                         f"{values[k, 1]:g}; they are truncated toward zero)")
    big = np.abs(values[:, [0, 1, 3, 4]]).max(axis=1) > raster.MAX_ELLIPSE_COORD
    if big.any():
        k = int(np.argmax(big))
        raise InputError(path, lines[k], f"ellipse beyond +-{raster.MAX_ELLIPSE_COORD:.0f} pixels (OpenCV's "
                         "fixed-point drawing cannot paint it)")
    turned = np.abs(values[:, 2]) > raster.MAX_ELLIPSE_ANGLE
    if turned.any():
        k = int(np.argmax(turned))
        raise InputError(path, lines[k], f"ellipse angle {values[k, 2]:g} rad is beyond "
                         f"+-{raster.MAX_ELLIPSE_ANGLE:.4g} (its degrees overflow OpenCV's int angle)")


def _ellipse_file(path: Path, expected: Sequence[str] | None) -> tuple[Blocks, np.ndarray]:
    lines = read_text_lines(path)
    blocks = parse_blocks(lines, path, expected, 0, "faces", 5, "major minor angle cx cy")
    trailing = [j for j in range(blocks.next_line, len(lines)) if lines[j].strip()]
    if trailing:
        raise InputError(path, trailing[0] + 1, "unexpected content after the last listed image")
    values = blocks.values(path, 5)
    check_ellipses(values, blocks.row_lines, path)
    return blocks, values


def _assemble_gt(parts: list[tuple[Path, Blocks, np.ndarray]], source: str, folds: tuple[str, ...],
                 extra_files: Sequence[Path] = ()) -> FddbGroundTruth:
    images: list[str] = []
    counts: list[int] = []
    origin_file: list[int] = []
    origin_line: list[int] = []
    for file_index, (_, blocks, _) in enumerate(parts):
        images.extend(blocks.names)
        counts.extend(blocks.counts)
        origin_file.extend([file_index] * len(blocks.names))
        origin_line.extend(blocks.name_lines)
    seen: dict[str, int] = {}
    for k, name in enumerate(images):
        if name in seen:
            path, _, _ = parts[origin_file[k]]
            raise InputError(path, origin_line[k], f"image {name!r} appears twice")
        seen[name] = k
    ellipses = np.concatenate([v for _, _, v in parts]) if parts else np.zeros((0, 5))
    files = tuple(str(p) for p, _, _ in parts) + tuple(str(p) for p in extra_files)
    return FddbGroundTruth(images=tuple(images), face_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                           ellipses=ellipses.reshape(-1, 5), origin_file=np.array(origin_file, dtype=np.int64),
                           origin_line=np.array(origin_line, dtype=np.int64), files=files, source=source,
                           folds=folds)


def load_annotations(path: str | os.PathLike) -> FddbGroundTruth:
    """One ellipse list (e.g. S3FD's corrected file, or the ten folds concatenated): images in its order."""
    path = Path(path)
    blocks, values = _ellipse_file(path, None)
    if not blocks.names:
        raise InputError(path, None, "no images in the annotation file")
    return _assemble_gt([(path, blocks, values)], source=str(Path(path).absolute()), folds=())


def fold_ids_present(folds_dir: str | os.PathLike) -> tuple[str, ...]:
    """Folds XX with an FDDB-fold-XX.txt image list in the folder."""
    folds_dir = Path(folds_dir)
    return tuple(f for f in FOLD_IDS if (folds_dir / f"FDDB-fold-{f}.txt").is_file())


def load_folds(folds_dir: str | os.PathLike, folds: Sequence[str] | None = None) -> FddbGroundTruth:
    """The official folds: FDDB-fold-XX.txt image lists with their FDDB-fold-XX-ellipseList.txt, in fold order."""
    folds_dir = Path(folds_dir)
    if not folds_dir.is_dir():
        raise InputError(folds_dir, None, "folds folder not found")
    present = fold_ids_present(folds_dir)
    for fold in FOLD_IDS:
        ellipse_list = folds_dir / f"FDDB-fold-{fold}-ellipseList.txt"
        if fold not in present and ellipse_list.is_file():
            raise InputError(ellipse_list, None, f"ellipse list without its image list FDDB-fold-{fold}.txt")
    chosen = tuple(folds) if folds else present
    if not chosen:
        raise InputError(folds_dir, None, "no FDDB-fold-XX.txt image lists in this folder")
    parts = []
    lists = []
    for fold in chosen:
        list_file = folds_dir / f"FDDB-fold-{fold}.txt"
        ellipse_list = folds_dir / f"FDDB-fold-{fold}-ellipseList.txt"
        if not list_file.is_file():
            raise InputError(list_file, None, "fold image list not found")
        if not ellipse_list.is_file():
            raise InputError(list_file, None, f"fold image list without its ellipse list {ellipse_list.name}")
        names = [tok for line in read_text_lines(list_file) for tok in line.split()]
        if not names:
            raise InputError(list_file, None, "empty image list")
        blocks, values = _ellipse_file(ellipse_list, names)
        if len(blocks.names) < len(names):
            raise InputError(ellipse_list, None, f"ends after {len(blocks.names)} of the {len(names)} images of "
                             f"{list_file.name} (next: {names[len(blocks.names)]!r})")
        parts.append((ellipse_list, blocks, values))
        lists.append(list_file)
    if len(chosen) < len(FOLD_IDS):
        warn(f"evaluating {len(chosen)} of the 10 FDDB folds ({', '.join(chosen)}); published numbers use all ten")
    return _assemble_gt(parts, source=str(Path(folds_dir).absolute()), folds=chosen, extra_files=lists)
