"""Reading and writing WIDER FACE prediction folders (`<event>/<image>.txt`: name, count, x y w h score)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facebench.errors import InputError, read_input_bytes, warn
from facebench.number_table import compiled_parser, number_rows
from facebench.parallel import map_ranges
from protocols.wider_face.ground_truth import WiderGroundTruth

SEMANTICS = ("official", "python-port")


@dataclass(frozen=True, eq=False)
class WiderPredictions:
    """Every image's boxes (x, y, w, h, score) in evaluation order, image by image in GT order."""

    boxes: np.ndarray  # [n_boxes, 5] float64
    offsets: np.ndarray  # [n_images + 1]
    semantics: str
    source: str
    missing: tuple[str, ...] = ()  # "event/image" without a file (no detections)
    dropped: tuple[str, ...] = ()  # files the official reader rejects ("Invalid format")
    notes: tuple[str, ...] = field(default=())

    def image_boxes(self, index: int) -> np.ndarray:
        """The boxes of one image (GT order index)."""
        return self.boxes[self.offsets[index]:self.offsets[index + 1]]


def _split_lines(data: bytes) -> bytes:
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data


# One number as MATLAB's str2num reads it (ASCII digits only: no '1_0', no other scripts' digits).
_NUMBER = re.compile(rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:nan|inf|infinity))")
# Bytes a plain table of decimal numbers is made of; anything else on a box line needs a closer look.
_TABLE_BYTES = b"0123456789eE.+- \t,\n"


def _shown_count(count: int) -> str:
    return str(count) if count.bit_length() < 128 else "a number of more than 38 digits"


def _parse_count(text: bytes) -> int | None:
    """The count line as str2num reads it: an integer, also written as a float ('3.0'); else None."""
    if not _NUMBER.fullmatch(text):
        return None
    if text.lstrip(b"+-").isdigit():
        # int() refuses > 4300 digits; such a count is 'larger than the file' all the same
        if len(text) <= 40:
            return int(text)
        return -(10 ** 40) if text.startswith(b"-") else 10 ** 40
    value = float(text)
    return int(value) if np.isfinite(value) and value == np.floor(value) else None


def _first_non_number(body: bytes, first_line: int) -> tuple[int, str] | None:
    """The first box line holding a token that is not a number (str2num fails on the whole line), if any."""
    for k, line in enumerate(body.split(b"\n")):
        for token in line.replace(b",", b" ").split():
            if not _NUMBER.fullmatch(token):
                return first_line + k, f"not a number: {token[:40].decode('latin-1')!r}"
    return None


def _matrix_lines(body: bytes, first_line: int) -> tuple[bytes, tuple[int, str] | None]:
    """Box lines with ';' rewritten as the official reader takes them: str2num makes a matrix of the rows
    between semicolons (empty rows dropped) and raw_info(1..5) reads it in column-major order; rows of
    different lengths make str2num fail, which drops the file."""
    lines = body.split(b"\n")
    for k, line in enumerate(lines):
        if b";" not in line:
            continue
        rows = [row.replace(b",", b" ").split() for row in line.split(b";")]
        rows = [row for row in rows if row]
        if len({len(row) for row in rows}) > 1:
            return body, (first_line + k, "rows of different lengths between ';' (str2num cannot read the line)")
        lines[k] = b" ".join(token for column in zip(*rows) for token in column)
    return b"\n".join(lines), None


def _first_bad_line(body: bytes, first_line: int, need: int) -> tuple[int, str]:
    """Locate the first line of `body` that is not `need` or more numbers (slow path, errors only)."""
    for k, line in enumerate(body.split(b"\n")):
        tokens = line.replace(b",", b" ").split()
        if len(tokens) < need:
            return first_line + k, f"expected at least {need} numbers (x y w h score), got {len(tokens)}"
        for token in tokens[:need]:
            try:
                float(token)
            except ValueError:
                return first_line + k, f"not a number: {token.decode('latin-1')!r}"
    return first_line, "unparsable box lines"


@dataclass
class _FileBoxes:
    index: int
    path: str
    body: bytes  # the box lines, '\n'-joined
    n_lines: int
    first_line: int  # 1-based line number of the first box line


def _scan(folder: str | os.PathLike) -> list[os.DirEntry]:
    """A folder's entries; an unreadable folder is an InputError naming it."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError as exc:
        raise InputError(folder, None, f"cannot list folder: {exc.strerror or exc}") from None


def _list_prediction_files(pred_dir: Path, gt: WiderGroundTruth, ignore_unknown: bool) -> dict[int, str]:
    """Map GT image index -> prediction file; unknown events/images are errors."""
    if not pred_dir.is_dir():
        raise InputError(pred_dir, None, "prediction folder not found")
    found: dict[int, str] = {}
    events = set(gt.events)
    unknown: list[Path] = []
    for entry in sorted(_scan(pred_dir), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            if entry.name.endswith(".txt"):
                raise InputError(entry.path, None, "prediction files must be inside event folders "
                                 "(<pred_dir>/<event>/<image>.txt)")
            continue
        if entry.name not in events:
            unknown.append(Path(entry.path))
            continue
        for item in _scan(entry.path):
            if item.name.startswith(".") or not item.name.endswith(".txt"):
                continue
            index = gt.image_index.get((entry.name, item.name[:-4]))
            if index is None:
                unknown.append(Path(item.path))
                continue
            found[index] = item.path
    if unknown and not ignore_unknown:
        what = "event folder" if unknown[0].is_dir() else "image"
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise InputError(unknown[0], None, f"unknown {what}: not in the WIDER FACE val ground truth{more}; "
                         "use --ignore-unknown to skip such entries")
    if unknown:
        warn(f"ignored {len(unknown)} prediction entries not in the ground truth (first: {unknown[0]})")
    if not found:
        why = f"; {len(unknown)} entries ignored as not in the ground truth, first: {unknown[0]}" if unknown else ""
        raise InputError(pred_dir, None, f"no prediction files found (expected <event>/<image>.txt){why}")
    return found


def _official_file(index: int, path: str, data: bytes, dropped: list[str]) -> _FileBoxes | None:
    """Apply the official reader's rules to one file: count line authoritative, n box lines."""
    data = _split_lines(data)
    first = data.find(b"\n")
    second = data.find(b"\n", first + 1) if first >= 0 else -1
    count_text = data[first + 1:second if second >= 0 else len(data)].strip() if first >= 0 else b""
    count = _parse_count(count_text)
    if count is None:
        dropped.append(f"{path}:2: count line is not an integer: {count_text[:40].decode('latin-1')!r}")
        return None
    if count < 0:
        # zeros(-1, 5) is empty: the official tool reads no boxes; say so rather than stay silent.
        dropped.append(f"{path}:2: negative count {count}: read as no boxes, as the official tool does")
        return None
    if count == 0:
        return None
    body = data[second + 1:] if second >= 0 else b""
    if count > body.count(b"\n") + 1:
        present = body.count(b"\n") + (0 if body.endswith(b"\n") or not body else 1)
        dropped.append(f"{path}:{3 + present}: file has {present} box lines but its count says {_shown_count(count)}")
        return None
    # Fast path: exactly `count` lines (with or without a final newline) need no splitting.
    trimmed = body[:-1] if body.endswith(b"\n") else body
    if trimmed and trimmed.count(b"\n") == count - 1:
        return _FileBoxes(index, path, trimmed, count, 3)
    lines = body.split(b"\n", count)
    if len(lines) < count or (len(lines) == count and lines[-1] == b"" and count > 0):
        present = len(lines) - (1 if lines and lines[-1] == b"" else 0)
        dropped.append(f"{path}:{3 + present}: file has {present} box lines but its count says {_shown_count(count)}")
        return None
    return _FileBoxes(index, path, b"\n".join(lines[:count]), count, 3)


def _port_file(index: int, path: str, data: bytes, dropped: list[str]) -> _FileBoxes | None:
    """The Python port's reader: count ignored, every non-empty line after line 2 is a box."""
    data = _split_lines(data)
    comma = data.find(b",", data.find(b"\n", data.find(b"\n") + 1) + 1) if b"," in data else -1
    if comma >= 0:  # the port splits on spaces only: float('0,9') stops it
        line = data.count(b"\n", 0, comma) + 1
        dropped.append(f"{path}:{line}: a comma in a box line, which the Python port cannot read")
        return None
    first = data.find(b"\n")
    second = data.find(b"\n", first + 1) if first >= 0 else -1
    body = data[second + 1:] if second >= 0 else b""
    body = body[:-1] if body.endswith(b"\n") else body
    if body and not body.startswith(b" ") and not body.endswith(b"\n") and b"\n\n" not in body \
            and b"\n " not in body:
        # Fast path: no empty or space-led line, so every line is a box.
        return _FileBoxes(index, path, body, body.count(b"\n") + 1, 3)
    lines = data.split(b"\n")[2:]
    keep = [line for line in lines if line[:1] not in (b"", b" ")]
    if not keep:
        return None
    return _FileBoxes(index, path, b"\n".join(keep), len(keep), 3)


def read_predictions(pred_dir: str | os.PathLike, gt: WiderGroundTruth, semantics: str = "official",
                     ignore_unknown: bool = False, quiet: bool = False) -> WiderPredictions:
    """Read a prediction folder as the official tool (or the Python port) does, with clear errors."""
    if semantics not in SEMANTICS:
        raise InputError(None, None, f"unknown semantics '{semantics}' (choose from {', '.join(SEMANTICS)})")
    pred_dir = Path(pred_dir)
    files = _list_prediction_files(pred_dir, gt, ignore_unknown)
    missing = tuple(f"{gt.images[i][0]}/{gt.images[i][1]}" for i in range(gt.n_images) if i not in files)
    indices = sorted(files)

    def read_chunk(start: int, stop: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        dropped_here: list[str] = []
        parsed: list[_FileBoxes] = []
        for index in indices[start:stop]:
            path = files[index]
            data = read_input_bytes(path, "prediction file")
            item = _official_file(index, path, data, dropped_here) if semantics == "official" \
                else _port_file(index, path, data, dropped_here)
            if item is not None:
                parsed.append(item)
        boxes_here, images_here = _parse_boxes(parsed, dropped_here, whole_line=semantics == "official")
        if semantics == "official" and not _sorted_by_score(boxes_here[:, 4], images_here):
            # Official read_pred: stable sort by score, descending, per image (chunks are image ranges).
            order = np.lexsort((-boxes_here[:, 4], images_here))
            boxes_here, images_here = boxes_here[order], images_here[order]
        return boxes_here, images_here, dropped_here

    # The compiled parser releases the GIL, so threads share the work without copying results between
    # processes; numpy's loadtxt holds it, so the pure fallback forks.
    chunks = map_ranges(read_chunk, len(indices), min_items=400, threads=compiled_parser(), chunk_items=400)
    boxes = np.concatenate([c[0] for c in chunks]) if len(chunks) > 1 else chunks[0][0]
    image_of_box = np.concatenate([c[1] for c in chunks]) if len(chunks) > 1 else chunks[0][1]
    dropped = [line for c in chunks for line in c[2]]
    offsets = np.zeros(gt.n_images + 1, dtype=np.int64)
    np.cumsum(np.bincount(image_of_box, minlength=gt.n_images), out=offsets[1:])

    notes = []
    if missing:
        notes.append(f"{len(missing)} of {gt.n_images} images have no prediction file (counted as no detections; "
                     f"first: {missing[0]})")
    if dropped:
        how = "as the official tool does" if semantics == "official" else "the Python port would stop on them"
        notes.append(f"{len(dropped)} files rejected, {how} (their image gets no detections); first: {dropped[0]}")
    negative = int(np.count_nonzero((boxes[:, 2] < 0) | (boxes[:, 3] < 0)))
    if negative:
        notes.append(f"{negative} boxes have negative width or height (kept, as the official tool does)")
    if not quiet:
        for note in notes:
            warn(note)
    return WiderPredictions(boxes=boxes, offsets=offsets, semantics=semantics, source=str(pred_dir.absolute()),
                            missing=missing, dropped=tuple(dropped), notes=tuple(notes))


def _sorted_by_score(scores: np.ndarray, image: np.ndarray) -> bool:
    """Whether every image's scores already descend (most writers sort): the stable sort would not move them."""
    return bool(np.all((scores[1:] <= scores[:-1]) | (image[1:] != image[:-1])))


def _parse_boxes(parsed: list[_FileBoxes], dropped: list[str], whole_line: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Parse every file's box lines in one pass; files with bad lines are dropped (official rule).

    `whole_line`: every token of a box line must be a number, as str2num parses the whole line (extra
    numbers are ignored, extra text drops the file); the Python port reads only the first five tokens.
    """
    if whole_line and any(item.body.translate(None, _TABLE_BYTES) for item in parsed):
        kept = []
        for item in parsed:
            bad = None
            if b";" in item.body:
                item.body, bad = _matrix_lines(item.body, item.first_line)
            if bad is None and item.body.translate(None, _TABLE_BYTES):
                bad = _first_non_number(item.body, item.first_line)
            if bad is None:
                kept.append(item)
            else:
                dropped.append(f"{item.path}:{bad[0]}: {bad[1]}")
        parsed = kept
    if not parsed:
        return np.zeros((0, 5)), np.zeros(0, dtype=np.int64)
    n_lines = np.array([item.n_lines for item in parsed], dtype=np.int64)
    boxes = number_rows(b"\n".join(item.body for item in parsed), int(n_lines.sum()))
    if boxes is None:
        # Something is malformed: find the files, report them, and parse the rest.
        good: list[_FileBoxes] = []
        for item in parsed:
            if number_rows(item.body, item.n_lines) is None:
                line, why = _first_bad_line(item.body, item.first_line, 5)
                dropped.append(f"{item.path}:{line}: {why}")
            else:
                good.append(item)
        return _parse_boxes(good, dropped, whole_line) if good else (np.zeros((0, 5)), np.zeros(0, dtype=np.int64))
    image_of_box = np.repeat(np.array([item.index for item in parsed], dtype=np.int64), n_lines)
    bad = ~np.isfinite(boxes).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        file_no = int(np.searchsorted(np.cumsum(n_lines), row, side="right"))
        item = parsed[file_no]
        offset = row - int(np.concatenate(([0], np.cumsum(n_lines)))[file_no])
        text = item.body.split(b"\n")[offset].strip()[:80].decode("utf-8", errors="replace")
        what = "score" if np.isfinite(boxes[row, :4]).all() else "coordinate"
        raise InputError(item.path, item.first_line + offset, f"non-finite {what} (NaN, inf or beyond float range) "
                                                              f"in '{text}'")
    return boxes, image_of_box


def format_score(score: float) -> str:
    """A score as the shortest text that reads back to its float32 (a fixed 6 decimals merged the distinct
    scores of weak detectors, and all of any detector scoring under 1e-6, into ties that change AP)."""
    return str(np.float32(score))


def format_prediction_file(image_name: str, detections: np.ndarray) -> str:
    """One official-format file from (x1, y1, x2, y2, score) rows, sorted by descending score."""
    detections = np.asarray(detections, dtype=np.float64).reshape(-1, 5)
    order = np.argsort(-detections[:, 4], kind="stable")
    lines = [image_name, str(len(detections))]
    for x1, y1, x2, y2, score in detections[order]:
        lines.append(f"{x1:.3f} {y1:.3f} {x2 - x1:.3f} {y2 - y1:.3f} {format_score(score)}")
    return "\n".join(lines) + "\n"


def write_prediction_file(path: str | os.PathLike, image_name: str, detections: np.ndarray) -> None:
    """Write one official-format prediction file (x y w h score) from (x1, y1, x2, y2, score) rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_prediction_file(image_name, detections))
