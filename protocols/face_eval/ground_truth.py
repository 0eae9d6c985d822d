"""AFW and PASCAL Face ground truth as the face-eval toolbox reads it (protocols.md §3.1)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from facebench.cache import cache_file, decode_strings, encode_strings, load_arrays, save_arrays
from facebench.errors import InputError
from facebench.io_mat import load_mat
from facebench.results import sha256_files

DATASETS = ("afw", "pascal")
# File names inside an annotations folder: (Mathias et al. 2014 re-annotation, original annotation).
ANNOTATION_FILES: dict[str, tuple[str, str]] = {
    "afw": ("new_annotations_AFW.mat", "anno2.mat"),
    "pascal": ("Annotations_Face_PASCALLayout_large_fixed.mat", "Annotations_Face_PASCALLayout_large.mat"),
}
DEFAULT_MIN_WIDTH = 30
DEFAULT_MIN_HEIGHT = 30


@dataclass(frozen=True)
class FaceEvalGroundTruth:
    """All GT boxes of one dataset, concatenated image after image (file order)."""

    dataset: str
    style: str  # "mathias2014" (flags column present) or "original" (no flags)
    path: str
    sha256: str
    image_names: tuple[str, ...]
    image_keys: tuple[str, ...]
    boxes: np.ndarray  # (G, 4) float64, x1 y1 x2 y2 as stored
    flagged: np.ndarray  # (G,) bool, ignore flag from the file
    ignored: np.ndarray  # (G,) bool, flagged or smaller than min_width/min_height
    offsets: np.ndarray  # (n_images + 1,) int64, boxes of image i are offsets[i]:offsets[i+1]
    min_width: int
    min_height: int

    @property
    def n_images(self) -> int:
        """Number of images in the annotation file."""
        return len(self.image_keys)

    @property
    def counts(self) -> np.ndarray:
        """GT boxes per image."""
        return np.diff(self.offsets)

    @property
    def image_index(self) -> np.ndarray:
        """Image of each GT box."""
        return np.repeat(np.arange(self.n_images), self.counts)

    @property
    def positives_per_image(self) -> np.ndarray:
        """Non-ignored GT boxes per image (what recall is a fraction of)."""
        return np.bincount(self.image_index, weights=~self.ignored, minlength=self.n_images).astype(np.int64)

    @property
    def n_positives(self) -> int:
        """The toolbox's `tot`: non-ignored GT boxes over all images."""
        return int((~self.ignored).sum())

    @cached_property
    def key_to_index(self) -> dict[str, int]:
        """Image key (file name up to the first '.') -> image position."""
        return {key: i for i, key in enumerate(self.image_keys)}


def image_key(name: str) -> str:
    """The toolbox's image key: base name (either slash) up to its first '.'."""
    base = name.replace("\\", "/").split("/")[-1]
    return base.split(".")[0]


def check_min_size(name: str, value: float) -> None:
    """A GT size threshold must be a finite number >= 0 within float range (ValueError otherwise)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = float("nan")
    if isinstance(value, bool) or not np.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def minimum_detection_size(min_width: int = DEFAULT_MIN_WIDTH, min_height: int = DEFAULT_MIN_HEIGHT) -> int:
    """The detection size filter's `minpix` = int(sqrt(0.5 * minw * minh)) (21 for the defaults)."""
    check_min_size("min_width", min_width)
    check_min_size("min_height", min_height)
    return int(np.sqrt(0.5 * float(min_width) * float(min_height)))


def require_countable_faces(gt: FaceEvalGroundTruth) -> None:
    """Stop when no GT face is counted: recall would be 0/0 and the AP meaningless."""
    if gt.n_positives > 0:
        return
    n_boxes = len(gt.boxes)
    if n_boxes == 0:
        reason = f"the file has no face boxes in its {gt.n_images} images"
    else:
        n_flagged = int(gt.flagged.sum())
        reason = (f"all {n_boxes} face boxes are ignored ({n_flagged} flagged in the file, {n_boxes - n_flagged} "
                  f"narrower than {gt.min_width} or shorter than {gt.min_height} px; see --min-width/--min-height)")
    raise InputError(gt.path, None, f"no faces left to count: {reason}")


def default_annotation_file(dataset: str, old: bool = False) -> str:
    """File name of the default (or, with old=True, the original) annotation of a dataset."""
    if dataset not in ANNOTATION_FILES:
        raise ValueError(f"unknown dataset {dataset!r} (expected one of {DATASETS})")
    return ANNOTATION_FILES[dataset][1 if old else 0]


def load_ground_truth(dataset: str, path: str | os.PathLike, *, min_width: int = DEFAULT_MIN_WIDTH,
                      min_height: int = DEFAULT_MIN_HEIGHT) -> FaceEvalGroundTruth:
    """Read an AFW/PASCAL annotation .mat (new or original layout, v5 or v7.3) and apply the size rule."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r} (expected one of {DATASETS})")
    check_min_size("min_width", min_width)
    check_min_size("min_height", min_height)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(path, None, "MATLAB file not found")
    sha256 = sha256_files([path])
    names, all_boxes, all_flags, offsets, style = _read_annotations(path, sha256)
    keys = tuple(image_key(n) for n in names)
    seen: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in seen:
            raise InputError(path, None, f"images {seen[key] + 1} and {i + 1} share the key {key!r}")
        seen[key] = i
    with np.errstate(over="ignore"):  # widths beyond float range are inf: counted, as in the toolbox
        width = np.abs(all_boxes[:, 2] - all_boxes[:, 0])
        height = np.abs(all_boxes[:, 3] - all_boxes[:, 1])
    # Size rule: no +1, strict "<" (a 30-pixel-wide face counts).
    too_small = (width < min_width) | (height < min_height)
    return FaceEvalGroundTruth(
        dataset=dataset, style=style, path=path, sha256=sha256, image_names=tuple(names),
        image_keys=keys, boxes=all_boxes.astype(np.float64), flagged=all_flags.astype(bool),
        ignored=all_flags.astype(bool) | too_small, offsets=offsets, min_width=int(min_width),
        min_height=int(min_height))


GT_CACHE_VERSION = "1"


def _read_annotations(path: str, sha256: str) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, str]:
    """(image names, boxes, flags, offsets, style) of an annotation file, parsed once and then read from the
    cache by the file's sha256 (MATLAB v7.3 files take seconds to walk)."""
    entry = cache_file(f"face_eval_gt_v{GT_CACHE_VERSION}_{sha256[:32]}.npz")
    stored = load_arrays(entry)
    if stored is not None:
        try:
            names = decode_strings(stored["name_bytes"], stored["name_offsets"])
            offsets = stored["offsets"].astype(np.int64)
            boxes, flags = stored["boxes"].astype(np.float64), stored["flags"].astype(bool)
            if len(offsets) == len(names) + 1 and offsets[-1] == len(boxes) == len(flags) and boxes.shape[1:] == (4,):
                return names, boxes, flags, offsets, str(stored["style"])
        except (KeyError, ValueError, UnicodeDecodeError):
            pass
    data = load_mat(path)
    if "Annotations" in data:
        records = _struct_records(path, data["Annotations"])
        names, boxes, flags, style = _read_struct_layout(path, records)
    elif "anno" in data:
        names, boxes, flags = _read_anno_cells(path, data["anno"])
        style = "original"
    else:
        raise InputError(path, None, "no 'Annotations' struct or 'anno' cell array: not an AFW/PASCAL annotation file")
    counts = np.array([len(b) for b in boxes], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    all_boxes = np.concatenate(boxes, axis=0).astype(np.float64) if counts.sum() else np.zeros((0, 4))
    all_flags = np.concatenate(flags).astype(bool) if counts.sum() else np.zeros(0, dtype=bool)
    name_bytes, name_offsets = encode_strings(names)
    save_arrays(entry, {"name_bytes": name_bytes, "name_offsets": name_offsets, "offsets": offsets,
                        "boxes": all_boxes, "flags": all_flags, "style": np.array(style)})
    return names, all_boxes, all_flags, offsets, style


def mat_text(value: Any) -> str | None:
    """A MATLAB char value (str, 1-element array or cell) as str; None when it is not text."""
    while isinstance(value, np.ndarray):
        if value.size != 1:
            if value.dtype.kind == "U" and value.ndim == 1:
                return "".join(value.tolist())
            return None
        value = value.ravel()[0]
    if isinstance(value, (str, np.str_)):
        return str(value)
    return None


def _struct_records(path: str, value: Any) -> list[dict[str, Any]]:
    """A MATLAB struct array as a list of {field: value} (scipy mat_struct array or h5py dict of fields)."""
    if isinstance(value, dict):  # v7.3: each field holds one cell per struct element (or the value itself)
        fields = list(value)
        columns = {}
        length = None
        for name in fields:
            column = value[name]
            if isinstance(column, np.ndarray) and column.dtype == object:
                column = list(column.ravel(order="F"))
            else:
                column = [column]
            if length is not None and len(column) != length:
                raise InputError(path, None, f"struct field '{name}' has {len(column)} entries, expected {length}")
            length = len(column)
            columns[name] = column
        return [{name: columns[name][i] for name in fields} for i in range(length or 0)]
    if isinstance(value, np.ndarray) and value.dtype == object:
        records = []
        for element in value.ravel(order="F"):
            if not hasattr(element, "_fieldnames"):
                raise InputError(path, None, "'Annotations' is not a struct array")
            records.append({name: getattr(element, name) for name in element._fieldnames})
        return records
    raise InputError(path, None, "'Annotations' is not a struct array")


def _read_struct_layout(path: str, records: list[dict[str, Any]]):
    """The `Annotations` struct layout (imgname, objects N x 4 or N x 6 with the ignore flag in column 6)."""
    names, boxes, flags = [], [], []
    widths = set()
    for i, record in enumerate(records):
        where = f"Annotations({i + 1})"
        if "imgname" not in record or "objects" not in record:
            raise InputError(path, None, f"{where} lacks the field 'imgname' or 'objects'")
        name = mat_text(record["imgname"])
        if name is None:
            raise InputError(path, None, f"{where}.imgname is not text")
        objects = np.asarray(record["objects"])
        if objects.size == 0:
            objects = np.zeros((0, 6))
        if objects.ndim != 2 or objects.shape[1] < 4:
            raise InputError(path, None, f"{where}.objects must be an N x 4 (or wider) matrix, got shape "
                                         f"{objects.shape}")
        values = objects.astype(np.float64)  # uint8/int16 files: the toolbox converts to float too
        if not np.all(np.isfinite(values[:, :4])):
            raise InputError(path, None, f"{where}.objects holds non-finite coordinates")
        names.append(name)
        boxes.append(values[:, :4])
        # A row with fewer than 6 values has flag 0; column 5 is unused.
        flags.append(values[:, 5] != 0 if values.shape[1] >= 6 else np.zeros(len(values), dtype=bool))
        if len(values):
            widths.add(values.shape[1] >= 6)
    style = "mathias2014" if widths == {True} else "original"
    return names, boxes, flags, style


def _read_anno_cells(path: str, anno: Any):
    """Zhu & Ramanan's `anno` cell array: {name, {2x2 [x1 y1; x2 y2] per face}, poses, landmarks} per image."""
    if not isinstance(anno, np.ndarray) or anno.ndim != 2 or anno.shape[1] < 2:
        raise InputError(path, None, "'anno' must be a cell array with at least 2 columns (name, boxes)")
    names, boxes, flags = [], [], []
    for i in range(anno.shape[0]):
        name = mat_text(anno[i, 0])
        if name is None:
            raise InputError(path, None, f"anno{{{i + 1},1}} is not an image name")
        faces = anno[i, 1]
        cells = list(faces.ravel(order="F")) if isinstance(faces, np.ndarray) and faces.dtype == object else [faces]
        rows = []
        for cell in cells:
            corners = np.asarray(cell, dtype=np.float64)
            if corners.size == 0:
                continue
            if corners.size != 4:
                raise InputError(path, None, f"anno{{{i + 1},2}}: a face box must have 4 values, got {corners.size}")
            if not np.all(np.isfinite(corners)):
                raise InputError(path, None, f"anno{{{i + 1},2}} holds non-finite coordinates")
            rows.append(corners.ravel())  # row-major [x1 y1; x2 y2] -> x1 y1 x2 y2
        names.append(name)
        boxes.append(np.array(rows, dtype=np.float64).reshape(-1, 4))
        flags.append(np.zeros(len(rows), dtype=bool))
    return names, boxes, flags
