"""FDDB (Jain & Learned-Miller 2010): the official `evaluate` program as a vectorised port (protocols.md §2).

Pipeline: readers (folds / one ellipse list, detections, image sizes) -> pixel-exact regions
(`protocols.fddb_raster`) -> overlaps |A n D| / |A u D| of every touching (face, detection) pair ->
maximum-overlap-sum matching per image at every unique score -> per-image entries -> the official merge
into one ROC -> `DiscROC.txt` / `ContROC.txt` text and the result JSON.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from facebench.errors import InputError, read_input_bytes, text_lines, warn
from facebench.results import make_document, sha256_files
from protocols import fddb_raster as raster

PROTOCOL_NAME = "fddb"
PROTOCOL_VERSION = "1"
BENCHMARK = "fddb"
DBL_MAX = sys.float_info.max
FOLD_IDS = tuple(f"{i:02d}" for i in range(1, 11))
SUMMARY_FP = (100, 500, 1000, 2000)
FORMAT_COLUMNS = {"rect": 5, "ellipse": 6}
FORMAT_FIELDS = {"rect": "left top width height score", "ellipse": "major minor angle cx cy score"}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", "")
# C++ `>>` into an int: C-locale white space, then ASCII digits (`3.0` and `3abc` read 3; `\u0663` is no digit).
_COUNT = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")
# A decimal number as C's strtod reads it (ASCII only: no `1_0`, no non-ASCII digits, which Python accepts).
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NOT_NUMBER_CHAR = re.compile(r"[^0-9eE.+-]")
_NON_FINITE = frozenset({"inf", "infinity", "nan"})


# ----------------------------------------------------------------------------------------------------------
# Readers


def read_text_lines(path: str | os.PathLike) -> list[str]:
    """A text file's lines; CRLF and bare-CR line ends read as LF (several published files have them)."""
    data = read_input_bytes(path)
    return text_lines(data.decode("utf-8", errors="surrogateescape").lstrip("\ufeff"))


def is_number(token: str) -> bool:
    """Whether a token is an ASCII decimal number (inf and nan included, for a clearer error later)."""
    return _NUMBER.fullmatch(token) is not None or token.lstrip("+-").lower() in _NON_FINITE


def _numbers(tokens: list[str], line_numbers: Sequence[int], path: Path, ncols: int) -> np.ndarray:
    """Tokens (ncols per row) as an (n, ncols) float array; a bad token names its line."""
    values = None
    if _NOT_NUMBER_CHAR.search("".join(tokens)) is None:  # fast path: only digits, signs, points, exponents
        try:
            values = np.array(tokens, dtype=np.float64).reshape(-1, ncols)
        except ValueError:
            pass
    if values is None:
        for k, token in enumerate(tokens):
            if not is_number(token):
                raise InputError(path, line_numbers[k // ncols], f"not a number: {token!r}")
        values = np.array(tokens, dtype=np.float64).reshape(-1, ncols)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        k = int(np.argmax(bad))
        raise InputError(path, line_numbers[k], "numbers must be finite")
    return values


@dataclass
class _Blocks:
    """Parsed `name / count / count region lines` blocks of one file (region rows as number tokens)."""

    names: list[str] = field(default_factory=list)
    name_lines: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # all fields of every region line
    row_lines: list[int] = field(default_factory=list)
    width: int = 0  # fields per region line, set by the first one
    width_line: int = 0
    next_line: int = 0

    def values(self, path: Path, ncols: int) -> np.ndarray:
        """The region lines' first `ncols` numbers (every field must be a number)."""
        if not self.row_lines:
            return np.zeros((0, ncols))
        return _numbers(self.tokens, self.row_lines, path, self.width)[:, :ncols]


def _parse_blocks(lines: list[str], path: Path, expected: Sequence[str] | None, start_image: int,
                  what: str, ncols: int, fields: str) -> _Blocks:
    """Read blocks from `lines`; with `expected`, names must follow it from `start_image` on. Region lines
    need at least `ncols` fields, and all of them as many as the first (else an error naming the line)."""
    out = _Blocks()
    i, n = 0, len(lines)
    k = start_image
    while True:
        while i < n and not lines[i].strip():
            i += 1
        if i >= n or (expected is not None and k >= len(expected)):
            break
        name, name_line = lines[i].strip(), i + 1
        if expected is not None and name != expected[k]:
            known = name in set(expected)
            detail = "is listed elsewhere (images must follow the list order)" if known else "is not in the image list"
            raise InputError(path, name_line, f"expected image {expected[k]!r} (list entry {k + 1}), "
                             f"found {name!r}, which {detail}")
        i += 1
        if i >= n:
            raise InputError(path, name_line, f"image {name!r} has no count line")
        match = _COUNT.match(lines[i])
        if match is None:
            raise InputError(path, i + 1, f"expected the number of {what} of {name!r}, found {lines[i].strip()!r}")
        if len(match.group(1).lstrip("+-")) > 18:  # beyond int64 (and int()'s 4300-digit limit): no file has that
            raise InputError(path, i + 1, f"the number of {what} of {name!r} is too large ({match.group(1)[:20]}...)")
        count = int(match.group(1))
        if count < 0:
            raise InputError(path, i + 1, f"negative number of {what} ({count})")
        i += 1
        if i + count > n:
            raise InputError(path, i, f"image {name!r} announces {count} {what} but only {n - i} lines follow")
        out.names.append(name)
        out.name_lines.append(name_line)
        out.counts.append(count)
        for j in range(i, i + count):
            parts = lines[j].split()
            if len(parts) < ncols:
                found = repr(lines[j].strip()) if lines[j].strip() else "an empty line"
                raise InputError(path, j + 1, f"expected {ncols} numbers ({fields}), found {found} "
                                 f"(image {name!r} announces {count} {what} at line {name_line + 1})")
            junk = [token for token in parts[ncols:] if not is_number(token)]
            if junk:  # named here, before any field-count mismatch it also causes
                raise InputError(path, j + 1, f"not a number: {junk[0]!r} (after the {ncols} numbers {fields})")
            if not out.width:
                out.width, out.width_line = len(parts), j + 1
            elif len(parts) != out.width:
                raise InputError(path, j + 1, f"{len(parts)} fields where the first region line (line "
                                 f"{out.width_line}) has {out.width}: every region line of a file needs the "
                                 f"same fields ({fields}, then any extra numbers)")
            out.tokens.extend(parts)
        out.row_lines.extend(range(i + 1, i + count + 1))
        i += count
        k += 1
    out.next_line = i
    return out


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


def _check_ellipses(values: np.ndarray, lines: Sequence[int], path: Path) -> None:
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


def _ellipse_file(path: Path, expected: Sequence[str] | None) -> tuple[_Blocks, np.ndarray]:
    lines = read_text_lines(path)
    blocks = _parse_blocks(lines, path, expected, 0, "faces", 5, "major minor angle cx cy")
    trailing = [j for j in range(blocks.next_line, len(lines)) if lines[j].strip()]
    if trailing:
        raise InputError(path, trailing[0] + 1, "unexpected content after the last listed image")
    values = blocks.values(path, 5)
    _check_ellipses(values, blocks.row_lines, path)
    return blocks, values


def _assemble_gt(parts: list[tuple[Path, _Blocks, np.ndarray]], source: str, folds: tuple[str, ...],
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
        blocks = _parse_blocks(lines, path, gt.images, k, "detections", ncols, FORMAT_FIELDS[fmt])
        values = blocks.values(path, ncols)
        if blocks.width > ncols and not warned:
            warn(_extra_fields_warning(path, blocks, fmt))
            warned = True
        if fmt == "ellipse":
            _check_ellipses(values, blocks.row_lines, path)
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


def _extra_fields_warning(path: Path, blocks: _Blocks, fmt: str) -> str:
    """One line: the region lines have more numbers than `fmt` reads (as the official reader, it takes the first)."""
    ncols = FORMAT_COLUMNS[fmt]
    where = f"{path}:{blocks.width_line}: region lines have {blocks.width} numbers"
    if fmt == "rect" and blocks.width == FORMAT_COLUMNS["ellipse"]:
        return (f"{where}, as ellipses ({FORMAT_FIELDS['ellipse']}) do; reading the first {ncols} as "
                f"'{FORMAT_FIELDS[fmt]}' (pass --format ellipse if these are ellipses)")
    return f"{where}; --format {fmt} reads the first {ncols} ({FORMAT_FIELDS[fmt]}) and ignores the rest"


@dataclass(frozen=True)
class ImageSizes:
    """Width and height of every evaluated image, aligned with the ground truth."""

    width: np.ndarray
    height: np.ndarray
    source: str


MAX_IMAGE_SIDE = 2 ** 31 - 1  # OpenCV's Mat sizes are C ints


def _image_size(fields: list[str], path: Path, number: int) -> tuple[int, int]:
    """Width and height in whole pixels: integers, or integer-valued numbers such as `100.0` or `1e2`."""
    if not all(_NUMBER.fullmatch(f) for f in fields):
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
                    width[k], height[k] = _ellipses_extent(gt.ellipses[gt.face_start[k]:gt.face_start[k + 1]])
                    warn(f"{candidate}: cannot read the image size; it has no detections, so its faces count "
                         f"as missed on a {width[k]}x{height[k]} canvas holding its ellipses")
                break
        else:
            file, line = gt.where(k)
            raise InputError(file, line, f"image {name!r} not found under {images_dir} (tried "
                             f"{', '.join(e or 'no extension' for e in IMAGE_EXTENSIONS)})")
    return ImageSizes(width=width, height=height, source=str(Path(images_dir).absolute()))


def _ellipses_extent(ellipses: np.ndarray) -> tuple[int, int]:
    """Width and height of the smallest canvas from the origin holding every ellipse (major, minor, angle, x, y)."""
    if len(ellipses) == 0:
        return 1, 1
    a, b, angle, cx, cy = (ellipses[:, i] for i in range(5))
    half_w = np.sqrt((a * np.cos(angle)) ** 2 + (b * np.sin(angle)) ** 2)
    half_h = np.sqrt((a * np.sin(angle)) ** 2 + (b * np.cos(angle)) ** 2)
    return (max(1, int(np.ceil(np.max(cx + half_w)))) + 1, max(1, int(np.ceil(np.max(cy + half_h)))) + 1)


# ----------------------------------------------------------------------------------------------------------
# Overlaps


@dataclass(frozen=True, eq=False)
class PairOverlaps:
    """Every (face, detection) pair with a non-zero overlap, in the same image."""

    face: np.ndarray
    det: np.ndarray
    score: np.ndarray  # |A n D| / |A u D|
    face_area: np.ndarray  # per face (all faces)
    det_area: np.ndarray  # per detection (all detections)


def _region_extents(runs: raster.Runs) -> tuple[np.ndarray, ...]:
    """Bounding box (x1, y1, x2, y2) of each run region; empty regions get x1 > x2."""
    n = runs.count
    x1 = np.full(n, 1, dtype=np.int64)
    x2 = np.full(n, 0, dtype=np.int64)
    lengths = np.diff(runs.start)
    nonempty = lengths > 0
    if nonempty.any():
        owner = np.repeat(np.arange(n), lengths)
        x1_all = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        x2_all = np.full(n, -1, dtype=np.int64)
        np.minimum.at(x1_all, owner, runs.x1)
        np.maximum.at(x2_all, owner, runs.x2)
        x1[nonempty], x2[nonempty] = x1_all[nonempty], x2_all[nonempty]
    y1 = runs.row0
    y2 = runs.row0 + runs.nrows - 1
    return x1, y1, x2, y2


RASTER_CACHE_VERSION = "fddb-raster-1"
_RUNS_FIELDS = ("start", "row", "x1", "x2", "row0", "nrows", "band_base", "row_start")


def _cache_dir() -> Path | None:
    """FACEBENCH_CACHE (empty disables caching), else ~/.cache/facebench."""
    root = os.environ.get("FACEBENCH_CACHE")
    if root is not None and not root.strip():
        return None
    return Path(root) if root else Path.home() / ".cache" / "facebench"


def face_runs(gt: FddbGroundTruth, sizes: ImageSizes, convention: str, cache: bool = True,
              pi: float = math.pi) -> raster.Runs:
    """The annotated ellipses rasterised in their images, cached on disk by content (they never change)."""
    import hashlib

    face_image = np.repeat(np.arange(gt.n_images), gt.faces_per_image())
    width, height = sizes.width[face_image], sizes.height[face_image]
    digest = hashlib.sha256()
    for part in (RASTER_CACHE_VERSION.encode(), convention.encode(), repr(float(pi)).encode(),
                 np.ascontiguousarray(gt.ellipses, np.float64),
                 np.ascontiguousarray(width, np.int64), np.ascontiguousarray(height, np.int64)):
        digest.update(part if isinstance(part, bytes) else part.tobytes())
    root = _cache_dir() if cache else None
    path = None if root is None else root / f"fddb_faces_{digest.hexdigest()[:32]}.npz"
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return raster.Runs(**{name: data[name].astype(np.int64) for name in _RUNS_FIELDS})
        except (OSError, KeyError, ValueError):
            pass
    e = gt.ellipses
    runs = raster.rasterise_ellipses(e[:, 0], e[:, 1], e[:, 2], e[:, 3], e[:, 4], width, height, convention, pi)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **{name: getattr(runs, name).astype(np.int32) for name in _RUNS_FIELDS})
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only home only costs speed
    return runs


def pair_overlaps(gt: FddbGroundTruth, dets: FddbDetections, sizes: ImageSizes, convention: str = "opencv21",
                  cache: bool = True, pi: float = math.pi) -> PairOverlaps:
    """Overlaps of all touching (face, detection) pairs on the official pixel raster, clipped to the image."""
    raster.check_convention(convention)
    det_image = np.repeat(np.arange(gt.n_images), np.diff(dets.det_start))
    faces = face_runs(gt, sizes, convention, cache=cache, pi=pi)
    face_area = faces.areas()
    fx1, fy1, fx2, fy2 = _region_extents(faces)
    r = dets.regions
    if dets.format == "rect":
        boxes = raster.rasterise_rectangles(r[:, 0], r[:, 1], r[:, 2], r[:, 3], sizes.width[det_image],
                                            sizes.height[det_image])
        det_area = boxes.areas()
        dx1, dy1, dx2, dy2 = boxes.x1, boxes.y1, boxes.x2, boxes.y2
        det_runs = None
    else:
        det_runs = raster.rasterise_ellipses(r[:, 0], r[:, 1], r[:, 2], r[:, 3], r[:, 4], sizes.width[det_image],
                                             sizes.height[det_image], convention, pi)
        det_area = det_runs.areas()
        dx1, dy1, dx2, dy2 = _region_extents(det_runs)
    # All (face, detection) pairs of each image, then only those whose pixel extents touch.
    na = gt.faces_per_image()
    nd = np.diff(dets.det_start)
    per_image = na * nd
    pair_img = np.repeat(np.arange(gt.n_images), per_image)
    local = np.arange(len(pair_img)) - (np.cumsum(per_image) - per_image)[pair_img]
    pf = gt.face_start[pair_img] + local // np.maximum(nd[pair_img], 1)
    pd = dets.det_start[pair_img] + local % np.maximum(nd[pair_img], 1)
    touch = ((np.maximum(fx1[pf], dx1[pd]) <= np.minimum(fx2[pf], dx2[pd]))
             & (np.maximum(fy1[pf], dy1[pd]) <= np.minimum(fy2[pf], dy2[pd])))
    pf, pd = pf[touch], pd[touch]
    if det_runs is None:
        inter = raster.runs_box_intersections(faces, pf, boxes, pd)
    else:
        inter = raster.runs_runs_intersections(faces, pf, det_runs, pd)
    keep = inter > 0
    pf, pd, inter = pf[keep], pd[keep], inter[keep]
    union = face_area[pf] + det_area[pd] - inter
    return PairOverlaps(face=pf, det=pd, score=inter / union, face_area=face_area, det_area=det_area)


# ----------------------------------------------------------------------------------------------------------
# Matching and per-image results


@dataclass(frozen=True, eq=False)
class ImageEntries:
    """The per-image results (§2.5): image i owns entries start[i]:start[i+1], thresholds ascending."""

    start: np.ndarray
    threshold: np.ndarray
    valid: np.ndarray  # detections with score >= threshold
    tp_cont: np.ndarray
    tp_disc: np.ndarray
    faces: np.ndarray  # per image: N

    @property
    def fp(self) -> np.ndarray:
        """False positives per entry: valid detections minus discrete true positives."""
        return self.valid - self.tp_disc

    @property
    def image(self) -> np.ndarray:
        """Image index of every entry."""
        return np.repeat(np.arange(len(self.start) - 1), np.diff(self.start))


def _hungarian_counts(matrix: np.ndarray) -> tuple[float, int]:
    """(sum of matched overlaps, matched pairs above 0.5) of the maximum-sum assignment, official orientation."""
    from scipy.optimize import linear_sum_assignment

    if matrix.size == 0:
        return 0.0, 0
    if matrix.shape[0] > matrix.shape[1]:  # the official solver needs rows <= columns
        matrix = matrix.T
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    total, above = 0.0, 0
    for value in matrix[rows, cols].tolist():  # row order, as the official sums its match pairs
        if value > 0:
            total += value
            above += value > 0.5
    return total, above


def _conflict_entries(faces: list[int], ranks: list[int], det_ids: list[int], values: list[float],
                      valid_counts: list[int]) -> list[tuple[float, int]]:
    """(TP_cont, TP_disc) of one image at the given numbers of valid detections (ascending), by adding
    detections in rank order and re-solving only the connected component each one joins.

    The maximum-sum assignment of the filtered matrix is the union of its components' optima (entries across
    components are 0). A component with one face or one detection takes its largest overlap; larger ones go
    to scipy's Hungarian method (faces as rows unless they outnumber the detections, columns in file order).
    """
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def find(node):
        root = node
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(node, node) != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    members: dict[tuple[str, int], list[tuple[int, int, float]]] = {}  # root -> edges (face, det id, value)
    solved: dict[tuple[str, int], tuple[float, int]] = {}
    total_cont, total_disc = 0.0, 0
    out: list[tuple[float, int]] = []
    if any(b < a for a, b in zip(valid_counts, valid_counts[1:])):
        raise ValueError("valid counts must ascend")
    targets = iter(valid_counts)
    target = next(targets, None)
    k, n_edges = 0, len(ranks)
    rank = 0
    while target is not None:
        # add detection `rank` with all its edges
        det_node = ("d", rank)
        edges = []
        while k < n_edges and ranks[k] == rank:
            edges.append((faces[k], det_ids[k], values[k]))
            k += 1
        if edges:
            roots = {find(("f", f)) for f, _, _ in edges}
            merged = list(edges)
            for root in roots:
                merged.extend(members.pop(root, ()))
                old = solved.pop(root, None)
                if old is not None:
                    total_cont -= old[0]
                    total_disc -= old[1]
            for root in roots:
                parent[root] = det_node
            members[det_node] = merged
            value = _component_optimum(merged)
            solved[det_node] = value
            total_cont += value[0]
            total_disc += value[1]
        rank += 1
        while target is not None and rank == target:
            out.append((total_cont, total_disc))
            target = next(targets, None)
    return out


def _component_optimum(edges: list[tuple[int, int, float]]) -> tuple[float, int]:
    """(sum of matched overlaps, pairs above 0.5) of one connected component's maximum-sum assignment."""
    face_ids = sorted({f for f, _, _ in edges})
    det_ids = sorted({d for _, d, _ in edges})
    if len(face_ids) == 1 or len(det_ids) == 1:  # a star: its largest overlap (ties give equal counts)
        best = max(v for _, _, v in edges)
        return best, int(best > 0.5)
    fi = {f: i for i, f in enumerate(face_ids)}
    di = {d: j for j, d in enumerate(det_ids)}
    dense = np.zeros((len(face_ids), len(det_ids)))
    for f, d, v in edges:
        dense[fi[f], di[d]] = v
    return _hungarian_counts(dense)


def _filtered_matrix(dense: np.ndarray, valid_cols: np.ndarray) -> np.ndarray:
    """The official Hungarian input: faces and valid detections with a non-zero overlap sum."""
    sub = dense[:, valid_cols]
    rows = sub.sum(axis=1) != 0
    cols = sub.sum(axis=0) != 0
    return sub[rows][:, cols]


def image_entries(gt: FddbGroundTruth, dets: FddbDetections, overlaps: PairOverlaps,
                  chunk_instances: int = 4_000_000) -> ImageEntries:
    """Every image's result at each of its unique scores (ascending), matching re-solved per threshold.

    Vectorised: a threshold's valid detections are a prefix of the image's detections by descending score,
    so its overlap graph is a prefix of the image's edges sorted by that rank. Where every connected
    component of that graph is a star (one face or one detection at the centre), the maximum-sum assignment
    takes each star's largest overlap (ties cannot change the counts). Thresholds with a larger component
    are solved per image by adding detections in score order and re-solving only the component each one
    joins, with scipy's Hungarian method. (Like the official libhungarian, any exact tie between optimal
    assignments is broken by the solver; only ties that change the count of pairs above 0.5 could matter.)
    """
    n_img = gt.n_images
    nd = np.diff(dets.det_start)
    det_image = np.repeat(np.arange(n_img), nd)
    scores = dets.scores
    # Detections by image, then descending score (stable); rank = position within the image.
    order = np.lexsort((np.arange(dets.count), -scores, det_image))
    rank = np.empty(dets.count, dtype=np.int64)
    rank[order] = np.arange(dets.count) - dets.det_start[det_image[order]]
    sorted_scores = scores[order]
    # Thresholds: the distinct scores; valid count = last position of that score in descending order + 1.
    last_of_group = np.ones(dets.count, dtype=bool)
    same_next = (det_image[order][1:] == det_image[order][:-1]) & (sorted_scores[1:] == sorted_scores[:-1])
    last_of_group[:-1] = ~same_next
    g_pos = np.nonzero(last_of_group)[0]
    g_img = det_image[order][g_pos]
    g_valid = g_pos - dets.det_start[g_img] + 1
    g_thr = sorted_scores[g_pos]
    # Entries ascending threshold within each image = descending valid count; images without detections
    # get the single DBL_MAX entry.
    empty = np.nonzero(nd == 0)[0]
    e_img = np.concatenate([g_img, empty])
    e_valid = np.concatenate([g_valid, np.zeros(len(empty), dtype=np.int64)])
    e_thr = np.concatenate([g_thr, np.full(len(empty), DBL_MAX)])
    final = np.lexsort((-e_valid, e_img))
    e_img, e_valid, e_thr = e_img[final], e_valid[final], e_thr[final]
    n_entries = len(e_img)
    tp_cont = np.zeros(n_entries)
    tp_disc = np.zeros(n_entries, dtype=np.int64)

    # Edges of each image sorted by detection rank.
    face_local = overlaps.face - gt.face_start[det_image[overlaps.det]]
    e_rank = rank[overlaps.det]
    edge_img = det_image[overlaps.det]
    eo = np.lexsort((face_local, e_rank, edge_img))
    ed_img, ed_face, ed_det, ed_rank, ed_val = (edge_img[eo], face_local[eo], overlaps.det[eo], e_rank[eo],
                                                overlaps.score[eo])
    n_edges = len(eo)
    edge_start = np.searchsorted(ed_img, np.arange(n_img + 1), side="left")
    det_degree = np.bincount(ed_det, minlength=dets.count)
    det_max = np.zeros(dets.count)
    np.maximum.at(det_max, ed_det, ed_val)
    det_first = np.ones(n_edges, dtype=bool)
    if n_edges:
        det_first[1:] = ed_det[1:] != ed_det[:-1]
    # Per edge, over the same face's edges up to it (rank order): count, running max, next edge's index.
    fo = np.lexsort((np.arange(n_edges), ed_face, ed_img))
    key = ed_img[fo] * (int(ed_face.max(initial=0)) + 1) + ed_face[fo]
    new_face = np.ones(n_edges, dtype=bool)
    new_face[1:] = key[1:] != key[:-1]
    seg_start = np.maximum.accumulate(np.where(new_face, np.arange(n_edges), 0))
    face_deg = np.empty(n_edges, dtype=np.int64)
    face_deg[fo] = np.arange(n_edges) - seg_start + 1
    # Running maximum per face, exact: on integer value ranks offset by face key.
    levels = np.unique(ed_val)
    level = np.searchsorted(levels, ed_val[fo])
    running = np.maximum.accumulate(key * (len(levels) + 1) + level) - key * (len(levels) + 1)
    face_max = np.empty(n_edges)
    face_max[fo] = levels[running] if n_edges else running
    next_same = np.full(n_edges, np.iinfo(np.int64).max, dtype=np.int64)
    if n_edges:
        cont = ~new_face[1:]
        next_same[fo[:-1][cont]] = fo[1:][cont]

    # Edges in each entry's graph: those of rank < valid, a prefix of the image's edges.
    prefix = np.zeros(n_entries, dtype=np.int64)
    for_img = edge_start[e_img]
    if n_edges:
        # number of the image's edges with rank < valid
        keyed = ed_img * (int(nd.max(initial=0)) + 2) + ed_rank
        prefix = np.searchsorted(keyed, e_img * (int(nd.max(initial=0)) + 2) + e_valid, side="left") - for_img
    fallback: list[int] = []
    done = 0
    while done < n_entries:
        sizes = np.cumsum(prefix[done:])
        stop = done + max(1, int(np.searchsorted(sizes, chunk_instances, side="right")))
        stop = min(stop, n_entries)
        idx = np.arange(done, stop)
        counts = prefix[idx]
        inst_entry = np.repeat(idx, counts)
        inst_edge = for_img[inst_entry] + np.arange(len(inst_entry)) - (np.cumsum(counts) - counts)[inst_entry - done]
        limit = for_img[inst_entry] + prefix[inst_entry]
        face_grows = next_same[inst_edge] < limit  # the face has a later edge inside this graph
        face_multi = (face_deg[inst_edge] >= 2) | face_grows
        det_multi = det_degree[ed_det[inst_edge]] >= 2
        conflict = np.zeros(n_entries, dtype=bool)
        conflict[inst_entry[det_multi & face_multi]] = True
        face_side = ~face_grows & ((face_deg[inst_edge] >= 2) | ~det_multi)
        det_side = det_first[inst_edge] & det_multi
        value = np.where(face_side, face_max[inst_edge], np.where(det_side, det_max[ed_det[inst_edge]], 0.0))
        counted = face_side | det_side
        tp_cont[idx] = np.bincount(inst_entry[counted] - done, weights=value[counted], minlength=len(idx))
        tp_disc[idx] = np.bincount(inst_entry[counted] - done, weights=value[counted] > 0.5, minlength=len(idx))
        fallback.extend(np.nonzero(conflict[idx])[0] + done)
        done = stop
    if fallback:
        fallback_arr = np.array(fallback, dtype=np.int64)
        for img in np.unique(e_img[fallback_arr]).tolist():
            mine = fallback_arr[e_img[fallback_arr] == img]
            mine = mine[np.argsort(e_valid[mine], kind="stable")]  # ascending valid counts
            s, t = int(edge_start[img]), int(edge_start[img + 1])
            solved = _conflict_entries(ed_face[s:t].tolist(), ed_rank[s:t].tolist(), ed_det[s:t].tolist(),
                                       ed_val[s:t].tolist(), e_valid[mine].tolist())
            for entry, (total, disc) in zip(mine.tolist(), solved):
                tp_cont[entry], tp_disc[entry] = total, disc
    start = np.searchsorted(e_img, np.arange(n_img + 1), side="left").astype(np.int64)
    return ImageEntries(start=start, threshold=e_thr, valid=e_valid, tp_cont=tp_cont, tp_disc=tp_disc,
                        faces=gt.faces_per_image())


# ----------------------------------------------------------------------------------------------------------
# The dataset ROC


@dataclass(frozen=True, eq=False)
class RocCurve:
    """The official ROC points, ascending threshold (so FP decreases down the list)."""

    threshold: np.ndarray
    n_faces: int
    tp_disc: np.ndarray
    tp_cont: np.ndarray
    fp: np.ndarray

    @property
    def disc_tpr(self) -> np.ndarray:
        """Discrete true-positive rate per point (0 when there are no faces)."""
        return self.tp_disc / self.n_faces if self.n_faces else np.zeros(len(self.threshold))

    @property
    def cont_tpr(self) -> np.ndarray:
        """Continuous (mean overlap) true-positive rate per point."""
        return self.tp_cont / self.n_faces if self.n_faces else np.zeros(len(self.threshold))


def merge_entries(entries: ImageEntries) -> RocCurve:
    """The official merge: at each distinct threshold s, every image adds its entry for its smallest
    threshold >= s (all-zero with its N when it has none)."""
    thresholds = np.unique(entries.threshold)
    first = np.zeros(len(entries.threshold), dtype=bool)
    first[entries.start[:-1][np.diff(entries.start) > 0]] = True
    previous = np.where(first, -np.inf, np.concatenate([[-np.inf], entries.threshold[:-1]]))
    lo = np.searchsorted(thresholds, previous, side="right")
    hi = np.searchsorted(thresholds, entries.threshold, side="right")

    def spread(values: np.ndarray) -> np.ndarray:
        acc = np.zeros(len(thresholds) + 1, dtype=values.dtype)
        np.add.at(acc, lo, values)
        np.add.at(acc, hi, -values)
        return np.cumsum(acc[:-1])

    return RocCurve(threshold=thresholds, n_faces=int(entries.faces.sum()),
                    tp_disc=spread(entries.tp_disc.astype(np.int64)),
                    tp_cont=_exact_spread(entries.tp_cont, lo, hi, len(thresholds)),
                    fp=spread(entries.fp.astype(np.int64)))


def _exact_spread(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    """Sum of `values[k]` over k with lo[k] <= j < hi[k], for every j, exactly rounded to double.

    A floating difference array would leave residues like 5.6e-17 where the true sum is 0; the doubles are
    instead summed as exact integers (in units of the smallest binary place present) and rounded once.
    """
    values = np.asarray(values, dtype=np.float64)
    nonzero = values != 0
    if not nonzero.any():
        return np.zeros(n)
    mantissa, exponent = np.frexp(values[nonzero])
    ints = (mantissa * 2.0 ** 53).astype(np.int64)  # exact: value = ints * 2**(exponent - 53)
    scale = int(53 - exponent.min())
    scaled = ints.astype(object) * (2 ** (exponent - exponent.min()).astype(object))
    acc = [0] * (n + 1)
    for value, a, b in zip(scaled.tolist(), lo[nonzero].tolist(), hi[nonzero].tolist()):
        acc[a] += value
        acc[b] -= value
    denominator = 2 ** scale
    return np.array([value / denominator for value in itertools.accumulate(acc[:-1])], dtype=np.float64)


def format_number(value: float) -> str:
    """C++ default stream formatting of a double: 6 significant digits (e.g. 0.896345, 249, 1.79769e+308)."""
    return f"{float(value):.6g}"


def disc_roc_text(curve: RocCurve) -> str:
    """The official DiscROC.txt: `TPR FP threshold` per point."""
    if curve.n_faces:
        tpr = curve.tp_disc / curve.n_faces
        lines = [f"{format_number(t)} {format_number(f)} {format_number(s)}"
                 for t, f, s in zip(tpr.tolist(), curve.fp.tolist(), curve.threshold.tolist())]
    else:
        lines = [f"0 0 {format_number(s)}" for s in curve.threshold.tolist()]
    return "".join(line + "\n" for line in lines)


def cont_roc_text(curve: RocCurve) -> str:
    """The official ContROC.txt: `TPR FP` per point (TPR = mean overlap of the matched faces)."""
    if curve.n_faces:
        tpr = curve.tp_cont / curve.n_faces
        lines = [f"{format_number(t)} {format_number(f)}" for t, f in zip(tpr.tolist(), curve.fp.tolist())]
    else:
        lines = ["0 0"] * len(curve.threshold)
    return "".join(line + "\n" for line in lines)


def write_roc_files(prefix: str | os.PathLike, curve: RocCurve) -> tuple[Path, Path]:
    """Write <prefix>DiscROC.txt and <prefix>ContROC.txt as the official program does."""
    prefix = os.fspath(prefix)
    disc, cont = Path(prefix + "DiscROC.txt"), Path(prefix + "ContROC.txt")
    disc.parent.mkdir(parents=True, exist_ok=True)
    disc.write_text(disc_roc_text(curve))
    cont.write_text(cont_roc_text(curve))
    return disc, cont


def tpr_at_fp(tpr: np.ndarray, fp: np.ndarray, limit: float, rule: str = "max") -> float | None:
    """TPR at `limit` false positives: "max" = largest TPR over points with FP <= limit (facebench's figure);
    "strict" = face-eval's legend rule (each column sorted descending on its own, TPR of the first row with
    FP < limit). None when no point qualifies."""
    tpr = np.asarray(tpr, dtype=np.float64)
    fp = np.asarray(fp, dtype=np.float64)
    if rule == "max":
        ok = fp <= limit
        return float(tpr[ok].max()) if ok.any() else None
    if rule == "strict":
        position = int(np.count_nonzero(fp >= limit))
        if position >= len(tpr):
            return None
        return float(np.sort(tpr)[::-1][position])
    raise ValueError(f"unknown rule {rule!r} (max or strict)")


def summary_metrics(curve: RocCurve, limits: Sequence[int] = SUMMARY_FP) -> dict[str, float | None]:
    """TPR at the quoted false-positive counts, discrete and continuous, by both rules."""
    metrics: dict[str, float | None] = {}
    for kind, tpr in (("disc", curve.disc_tpr), ("cont", curve.cont_tpr)):
        for limit in limits:
            metrics[f"{kind}_tpr_at_{limit}fp"] = tpr_at_fp(tpr, curve.fp, limit, "max")
        for limit in limits:
            metrics[f"{kind}_tpr_at_{limit}fp_strict"] = tpr_at_fp(tpr, curve.fp, limit, "strict")
    return metrics


# ----------------------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True, eq=False)
class FddbResult:
    """An FDDB evaluation: the ROC, the per-image entries it sums, and what determined the numbers."""

    curve: RocCurve
    entries: ImageEntries
    image_ids: tuple[str, ...]
    convention: str
    detection_format: str
    ground_truth_source: str
    ground_truth_sha256: str
    detections_source: str
    sizes_source: str
    folds: tuple[str, ...]
    n_detections: int
    n_pairs: int
    pi: float = math.pi

    @property
    def metrics(self) -> dict[str, Any]:
        """Summary TPRs (fractions) plus the number of ROC points."""
        return {**summary_metrics(self.curve), "roc_points": int(len(self.curve.threshold))}

    def protocol_settings(self) -> dict[str, Any]:
        """Everything that determines the numbers."""
        return {"ellipse_convention": self.convention, "pi": self.pi, "detection_format": self.detection_format,
                "overlap": "pixel IoU on the OpenCV raster, clipped to the image", "matching": "hungarian-max-sum",
                "discrete_threshold": "> 0.5", "tpr_at_fp_rule": "max TPR over points with FP <= k ('_strict': "
                "face-eval, first row with FP < k after sorting each column)",
                "ground_truth": self.ground_truth_source, "folds": list(self.folds),
                "detections": self.detections_source, "image_sizes": self.sizes_source}

    def to_document(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The self-describing result JSON."""
        c = self.curve
        curves = {"disc": {"tpr": c.disc_tpr, "fp": c.fp, "threshold": c.threshold},
                  "cont": {"tpr": c.cont_tpr, "fp": c.fp, "threshold": c.threshold}}
        doc_extra: dict[str, Any] = {
            "counts": {"images": len(self.image_ids), "faces": c.n_faces, "detections": self.n_detections,
                       "overlapping_pairs": self.n_pairs, "roc_points": int(len(c.threshold))},
        }
        if extra:
            doc_extra.update(extra)
        return make_document(benchmark=BENCHMARK, protocol=PROTOCOL_NAME, protocol_version=PROTOCOL_VERSION,
                             settings=self.protocol_settings(), metrics=self.metrics,
                             ground_truth_sha256=self.ground_truth_sha256, curves=curves, extra=doc_extra)

    def save_records(self, path: str | os.PathLike) -> None:
        """Per-image entries (what the ROC sums) as a compressed .npz.

        Keys: image_ids, faces (N per image), entry_start (image i owns entries entry_start[i]:[i+1]),
        entry_threshold, entry_valid, entry_tp_cont, entry_tp_disc, entry_fp, meta.
        """
        e = self.entries
        np.savez_compressed(os.fspath(path), image_ids=np.array(self.image_ids), faces=e.faces,
                            entry_start=e.start, entry_threshold=e.threshold, entry_valid=e.valid,
                            entry_tp_cont=e.tp_cont, entry_tp_disc=e.tp_disc, entry_fp=e.fp,
                            meta=np.array([PROTOCOL_NAME, PROTOCOL_VERSION, self.convention,
                                           self.ground_truth_sha256]))

    def write_roc(self, prefix: str | os.PathLike) -> tuple[Path, Path]:
        """<prefix>DiscROC.txt and <prefix>ContROC.txt, official format."""
        return write_roc_files(prefix, self.curve)

    def table(self) -> str:
        """The short table the CLI prints: TPR at the quoted FP counts."""
        m = summary_metrics(self.curve)
        rows = [f"{'FP':>6} {'disc TPR':>9} {'cont TPR':>9}"]
        for limit in SUMMARY_FP:
            d, c = m[f"disc_tpr_at_{limit}fp"], m[f"cont_tpr_at_{limit}fp"]
            rows.append(f"{limit:>6} {'n/a' if d is None else f'{d:.4f}':>9} {'n/a' if c is None else f'{c:.4f}':>9}")
        return "\n".join(rows)


def evaluate(gt: FddbGroundTruth, dets: FddbDetections, sizes: ImageSizes, convention: str = "opencv21",
             cache: bool = True, pi: float = math.pi) -> FddbResult:
    """The official FDDB evaluation of `dets` on `gt` (images of the given sizes).

    `pi` is the program's M_PI (raster.MSVC_PI reproduces Windows builds); `cache` keeps the annotation
    rasters on disk (see `face_runs`); results never depend on it.
    """
    overlaps = pair_overlaps(gt, dets, sizes, convention, cache=cache, pi=pi)
    entries = image_entries(gt, dets, overlaps)
    curve = merge_entries(entries)
    return FddbResult(curve=curve, entries=entries, image_ids=gt.images, convention=convention,
                      detection_format=dets.format, ground_truth_source=gt.source,
                      ground_truth_sha256=gt.sha256(), detections_source=", ".join(dets.files),
                      sizes_source=sizes.source, folds=gt.folds, n_detections=dets.count,
                      n_pairs=int(len(overlaps.face)), pi=pi)


# ----------------------------------------------------------------------------------------------------------
# Straightforward reference: full-image masks, per-threshold Hungarian, the official list merge. Slow and
# independent of the vectorised code above; used by the tests and as the benchmark's reference.


def evaluate_reference(gt: FddbGroundTruth, dets: FddbDetections, sizes: ImageSizes,
                       convention: str = "opencv21", pi: float = math.pi) -> RocCurve:
    """The same ROC computed one image, one region, one threshold at a time."""
    cumulative: list[tuple[float, int, float, float, float]] = []  # (threshold, N, tp_cont, tp_disc, fp)
    for img in range(gt.n_images):
        w, h = int(sizes.width[img]), int(sizes.height[img])
        face_rows = gt.ellipses[gt.face_start[img]:gt.face_start[img + 1]]
        det_rows = dets.regions[dets.det_start[img]:dets.det_start[img + 1]]
        det_scores = dets.scores[dets.det_start[img]:dets.det_start[img + 1]]
        n_faces = len(face_rows)
        face_masks = [raster.ellipse_mask_reference(*row, w, h, convention, pi) for row in face_rows]
        if dets.format == "rect":
            det_masks = [raster.rectangle_mask_reference(*row, w, h) for row in det_rows]
        else:
            det_masks = [raster.ellipse_mask_reference(*row, w, h, convention, pi) for row in det_rows]
        matrix = np.zeros((n_faces, len(det_rows)))
        for i, fm in enumerate(face_masks):
            for j, dm in enumerate(det_masks):
                union = int(np.count_nonzero(fm | dm))
                matrix[i, j] = np.count_nonzero(fm & dm) / union if union else 0.0
        image_results = []
        if len(det_rows) == 0:
            image_results.append((DBL_MAX, n_faces, 0.0, 0.0, 0.0))
        for threshold in sorted(set(det_scores.tolist())):
            valid = det_scores >= threshold
            total, disc = _hungarian_counts(_filtered_matrix(matrix, valid))
            image_results.append((threshold, n_faces, total, float(disc), float(valid.sum() - disc)))
        cumulative = _official_merge(cumulative, image_results)
    thresholds = np.array([r[0] for r in cumulative])
    n_total = cumulative[0][1] if cumulative else 0
    return RocCurve(threshold=thresholds, n_faces=int(n_total),
                    tp_disc=np.array([r[3] for r in cumulative]).astype(np.int64),
                    tp_cont=np.array([r[2] for r in cumulative]),
                    fp=np.array([r[4] for r in cumulative]).astype(np.int64))


def _official_merge(cum: list, img: list) -> list:
    """Merge two ascending result lists as Results::merge does (sums, min threshold, N of the missing side)."""
    if not cum:
        return list(img)
    out = []
    n_cum, n_img = cum[0][1], img[0][1]
    i = j = 0
    while i < len(cum):
        if j < len(img):
            a, b = cum[i], img[j]
            out.append((min(a[0], b[0]), a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4]))
            if a[0] < b[0]:
                i += 1
            elif a[0] == b[0]:
                i += 1
                j += 1
            else:
                j += 1
        else:
            for a in cum[i:]:
                out.append((a[0], a[1] + n_img, a[2], a[3], a[4]))
            i = len(cum)
    for b in img[j:]:
        out.append((b[0], b[1] + n_cum, b[2], b[3], b[4]))
    return out
