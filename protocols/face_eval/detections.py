"""Detection files for AFW/PASCAL: the `image_id score x1 y1 x2 y2` text format and the toolbox's legacy layouts."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from facebench.errors import InputError, read_input_text, text_lines
from facebench.io_mat import load_mat

from protocols.face_eval.ground_truth import FaceEvalGroundTruth, image_key, mat_text

# Suffix -> format name; anything else is read as the text format.
FORMATS = {".txt": "text", ".mat": "mat", ".ramananmat": "ramananmat", ".shenmat": "shenmat", ".csv": "picasa-csv"}


@dataclass(frozen=True)
class Detections:
    """Detections in file order: image key, score and corner box per detection, plus where each came from."""

    path: str
    format: str
    keys: np.ndarray  # (D,) str, image key (name up to the first '.')
    scores: np.ndarray  # (D,) float64
    boxes: np.ndarray  # (D, 4) float64, x1 y1 x2 y2
    origins: np.ndarray  # (D,) int64, 1-based line (text, csv) or entry number (.mat layouts)
    origin_is_line: bool = True

    def __len__(self) -> int:
        return len(self.scores)

    def image_indices(self, gt: FaceEvalGroundTruth, strict: bool = True) -> np.ndarray:
        """Position of each detection's image in `gt`; an unknown image id is an InputError at its line, or
        -1 with strict=False."""
        lookup = gt.key_to_index
        index = np.fromiter((lookup.get(k, -1) for k in self.keys.tolist()), dtype=np.int64, count=len(self))
        unknown = np.flatnonzero(index < 0)
        if unknown.size and strict:
            first = int(unknown[0])
            more = f" ({unknown.size} detections with unknown ids in all)" if unknown.size > 1 else ""
            raise self.error(first, f"unknown image id {str(self.keys[first])!r}: not in "
                                    f"{os.path.basename(gt.path)}{more}")
        return index

    def location(self, position: int) -> str:
        """Where detection `position` (0-based) came from: 'file:line' or 'file: entry N'."""
        origin = int(self.origins[position])
        return f"{self.path}:{origin}" if self.origin_is_line else f"{self.path}: entry {origin}"

    def error(self, position: int, message: str) -> InputError:
        """An InputError located at detection `position` (0-based) of this file."""
        origin = int(self.origins[position])
        if self.origin_is_line:
            return InputError(self.path, origin, message)
        return InputError(self.path, None, f"entry {origin}: {message}")


def no_detections(path: str | os.PathLike) -> Detections:
    """An empty detection set (a detector that found nothing: AP 0), which read_detections refuses as a file."""
    return Detections(path=os.fspath(path), format="text", keys=np.zeros(0, dtype=str), scores=np.zeros(0),
                      boxes=np.zeros((0, 4)), origins=np.zeros(0, dtype=np.int64))


def read_detections(path: str | os.PathLike) -> Detections:
    """Read detections in the format given by the suffix (.txt and unknown suffixes: the text format)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(path, None, "detection file not found")
    suffix = os.path.splitext(path)[1].lower()
    reader = {"mat": read_mat_layout, "ramananmat": read_ramanan_mat, "shenmat": read_shen_mat,
              "picasa-csv": read_picasa_csv}.get(FORMATS.get(suffix, "text"), read_text)
    return reader(path)


def read_text(path: str | os.PathLike) -> Detections:
    """`image_name score x1 y1 x2 y2` per line (name may carry an extension; blank lines are skipped)."""
    path = os.fspath(path)
    lines = text_lines(read_input_text(path, "detection file"))
    keys, values, origins = [], [], []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6:
            raise InputError(path, number, f"expected 6 fields 'image_id score x1 y1 x2 y2', got {len(fields)}")
        row = []
        for what, text in zip(("score", "x1", "y1", "x2", "y2"), fields[1:]):
            row.append(_number(path, number, what, text))
        keys.append(fields[0].split(".")[0])  # the toolbox's key: a folder part stays (and matches no image)
        values.append(row)
        origins.append(number)
    if not values:
        raise InputError(path, None, "empty detection file (no detections)")
    array = np.array(values, dtype=np.float64)
    return _checked(path, "text", keys, array[:, 0], array[:, 1:], origins, True)


def read_mat_layout(path: str | os.PathLike) -> Detections:
    """The toolbox's `.mat` layout: `ids` (N names), `BB` (4 x N corners), `confidence` (N), optional `del` mask."""
    path = os.fspath(path)
    data = load_mat(path)
    for name in ("ids", "BB", "confidence"):
        if name not in data:
            raise InputError(path, None, f"missing variable '{name}' (expected ids, BB, confidence[, del])")
    names = _names(path, data["ids"])
    boxes = _corner_matrix(path, data["BB"], len(names))
    scores = _vector(path, "confidence", data["confidence"], len(names))
    keep = np.ones(len(names), dtype=bool)
    if "del" in data:
        # Entries with del == 1 are not detections (the baselines mark images outside the set this way).
        keep = _vector(path, "del", data["del"], len(names)) != 1
    entries = np.flatnonzero(keep)
    return _checked(path, "mat", [image_key(names[i]) for i in entries], scores[keep], boxes[keep], entries + 1,
                    False)


def read_ramanan_mat(path: str | os.PathLike) -> Detections:
    """Zhu & Ramanan's `.ramananmat`: `ids`, `BB` (4 x N corners) and optional `sc` (score 1 when absent)."""
    path = os.fspath(path)
    data = load_mat(path)
    for name in ("ids", "BB"):
        if name not in data:
            raise InputError(path, None, f"missing variable '{name}' (expected ids, BB[, sc])")
    names = _names(path, data["ids"])
    boxes = _corner_matrix(path, data["BB"], len(names))
    scores = _vector(path, "sc", data["sc"], len(names)) if "sc" in data else np.ones(len(names))
    return _checked(path, "ramananmat", [image_key(n) for n in names], scores, boxes, np.arange(len(names)) + 1,
                    False)


def read_shen_mat(path: str | os.PathLike) -> Detections:
    """Shen et al.'s `.shenmat`: `DetectionResults`, one struct per image with `filename` and `faces` (x y w h s)."""
    path = os.fspath(path)
    data = load_mat(path)
    if "DetectionResults" not in data:
        raise InputError(path, None, "missing variable 'DetectionResults'")
    keys, rows = [], []
    for number, record in enumerate(_cell_structs(path, data["DetectionResults"]), start=1):
        name = mat_text(record.get("filename"))
        faces = np.asarray(record.get("faces", np.zeros((0, 5))), dtype=np.float64)
        if name is None:
            raise InputError(path, None, f"DetectionResults{{{number}}}.filename is not text")
        if faces.size == 0:
            continue
        if faces.ndim == 1:
            faces = faces.reshape(1, -1)
        if faces.shape[1] < 5:
            raise InputError(path, None, f"DetectionResults{{{number}}}.faces must be N x 5 (x y w h score)")
        for face in faces:
            keys.append(image_key(name))
            rows.append((face[4], face[0], face[1], face[0] + face[2], face[1] + face[3]))
    if not rows:
        raise InputError(path, None, "empty detection file (no detections)")
    array = np.array(rows, dtype=np.float64)
    return _checked(path, "shenmat", keys, array[:, 0], array[:, 1:], np.arange(len(rows)) + 1, False)


def read_picasa_csv(path: str | os.PathLike) -> Detections:
    """Picasa's `;`-separated export: header line, file name in column 3, integer x y w h in columns 8-11."""
    path = os.fspath(path)
    keys, rows, origins = [], [], []
    lines = text_lines(read_input_text(path, "detection file"))
    # One record per physical line (Picasa never quotes line breaks), so errors name the line an editor shows.
    for number, line in enumerate(lines, start=1):
        try:
            fields = next(csv.reader([line], delimiter=";"), [])
        except csv.Error as exc:  # e.g. a field past csv's size limit
            raise InputError(path, number, f"not a Picasa CSV line ({exc})") from None
        if number == 1 or not fields:
            continue
        if len(fields) < 11:
            raise InputError(path, number, f"expected at least 11 ';'-separated fields, got {len(fields)}")
        try:
            x, y, w, h = (int(v) for v in fields[7:11])
        except ValueError:
            raise InputError(path, number, "face x, y, width, height (columns 8-11) must be integers") from None
        keys.append(image_key(fields[2]))
        rows.append((1.0, x, y, x + w, y + h))
        origins.append(number)
    if not rows:
        raise InputError(path, None, "empty detection file (no detections)")
    array = np.array(rows, dtype=np.float64)
    return _checked(path, "picasa-csv", keys, array[:, 0], array[:, 1:], origins, True)


def _number(path: str, line: int, what: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(path, line, f"{what} {text!r} is not a number") from None
    if not np.isfinite(value):
        raise InputError(path, line, f"{what} {text!r} is not a finite number")
    return value


def _checked(path: str, fmt: str, keys: Sequence[str], scores: np.ndarray, boxes: np.ndarray,
             origins: Sequence[int] | np.ndarray, origin_is_line: bool) -> Detections:
    """Validate values (finite, corners in order) and build the Detections."""
    dets = Detections(path=path, format=fmt, keys=np.array(list(keys), dtype=str),
                      scores=np.asarray(scores, dtype=np.float64), boxes=np.asarray(boxes, dtype=np.float64),
                      origins=np.asarray(origins, dtype=np.int64), origin_is_line=origin_is_line)
    if len(dets) == 0:
        raise InputError(path, None, "empty detection file (no detections)")
    bad = np.flatnonzero(~np.isfinite(dets.scores))
    if bad.size:
        raise dets.error(int(bad[0]), f"score {dets.scores[bad[0]]} is not a finite number")
    bad = np.flatnonzero(~np.isfinite(dets.boxes).all(axis=1))
    if bad.size:
        raise dets.error(int(bad[0]), "box coordinates must be finite numbers")
    x1, y1, x2, y2 = dets.boxes.T
    bad = np.flatnonzero((x2 < x1) | (y2 < y1))
    if bad.size:
        b = dets.boxes[bad[0]]
        raise dets.error(int(bad[0]), f"coordinates out of order: need x1 <= x2 and y1 <= y2 "
                                      f"(got {b[0]:g} {b[1]:g} {b[2]:g} {b[3]:g})")
    return dets


def _names(path: str, ids: Any) -> list[str]:
    cells = list(ids.ravel(order="F")) if isinstance(ids, np.ndarray) else list(ids) if isinstance(ids, list) \
        else [ids]
    names = []
    for i, cell in enumerate(cells):
        name = mat_text(cell)
        if name is None:
            raise InputError(path, None, f"entry {i + 1}: ids must hold image names")
        names.append(name)
    return names


def _corner_matrix(path: str, value: Any, n: int) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind not in "iufb":
        raise InputError(path, None, "BB must be a numeric 4 x N matrix")
    array = array.astype(np.float64)
    if array.shape == (4, n):
        return array.T.copy()
    if n == 4 and array.shape == (4, 4):
        return array.T.copy()
    if array.shape == (n, 4):
        return array.copy()
    raise InputError(path, None, f"BB must be 4 x {n} (one corner column per id), got {array.shape}")


def _vector(path: str, name: str, value: Any, n: int) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind not in "iufb":
        raise InputError(path, None, f"{name} must be numeric")
    array = array.astype(np.float64).ravel()
    if array.size != n:
        raise InputError(path, None, f"{name} has {array.size} values, expected {n} (one per id)")
    return array


def _cell_structs(path: str, value: Any) -> list[dict[str, Any]]:
    """A cell/struct array of structs as a list of {field: value} (scipy or h5py form)."""
    if isinstance(value, dict):
        fields = list(value)
        columns = {k: (list(v.ravel(order="F")) if isinstance(v, np.ndarray) and v.dtype == object else [v])
                   for k, v in value.items()}
        length = len(columns[fields[0]]) if fields else 0
        return [{k: columns[k][i] for k in fields} for i in range(length)]
    if not isinstance(value, np.ndarray):
        raise InputError(path, None, "DetectionResults must be a cell or struct array")
    records = []
    for element in value.ravel(order="F"):
        while isinstance(element, np.ndarray) and element.dtype == object and element.size == 1:
            element = element.ravel()[0]
        if isinstance(element, dict):
            records.append(element)
        elif hasattr(element, "_fieldnames"):
            records.append({k: getattr(element, k) for k in element._fieldnames})
        else:
            raise InputError(path, None, "DetectionResults must hold structs with 'filename' and 'faces'")
    return records
