"""WIDER FACE validation ground truth from the official eval_tools .mat files."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facebench.cache import cache_file, load_arrays, save_arrays
from facebench.errors import InputError, warn
from facebench.io_mat import load_mat
from facebench.results import sha256_files

SETTINGS = ("easy", "medium", "hard")
ATTRIBUTES = ("blur", "expression", "illumination", "occlusion", "pose", "invalid")
ATTRIBUTE_VALUES = {
    "blur": {0: "clear", 1: "normal", 2: "heavy"},
    "expression": {0: "typical", 1: "exaggerate"},
    "illumination": {0: "normal", 1: "extreme"},
    "occlusion": {0: "no", 1: "partial", 2: "heavy"},
    "pose": {0: "typical", 1: "atypical"},
    "invalid": {0: "false", 1: "true"},
}
GT_FILES = ("wider_face_val.mat", "wider_easy_val.mat", "wider_medium_val.mat", "wider_hard_val.mat")


@dataclass(frozen=True, eq=False)
class WiderGroundTruth:
    """All val faces in official order, with per-setting keep masks and per-face attributes."""

    events: tuple[str, ...]
    images: tuple[tuple[str, str], ...]  # (event, image name) in official order
    image_event: np.ndarray  # [n_images] event index
    face_offsets: np.ndarray  # [n_images + 1] slice of `boxes` per image
    boxes: np.ndarray  # [n_faces, 4] x, y, w, h; int32 (2017) or float64 (2016), as stored
    keep: dict[str, np.ndarray]  # setting -> bool [n_faces]
    attributes: dict[str, np.ndarray]  # attribute -> int [n_faces] (-1 where absent)
    sha256: str
    version: str
    source: str
    image_index: dict[tuple[str, str], int] = field(repr=False, default_factory=dict)

    @property
    def integer_boxes(self) -> bool:
        """True when boxes are int32 (the official tool then uses MATLAB int32 arithmetic)."""
        return self.boxes.dtype.kind in "iu"

    @property
    def n_images(self) -> int:
        return len(self.images)


def _cell_strings(cell: np.ndarray) -> list[str]:
    out = []
    for item in np.asarray(cell).ravel():
        value = np.asarray(item).ravel()
        out.append(str(value[0]) if value.size else "")
    return out


def _cells(cell: np.ndarray) -> list[np.ndarray]:
    return [np.asarray(item) for item in np.asarray(cell).ravel()]


def load_ground_truth(gt_dir: str | os.PathLike, version: str | None = None) -> WiderGroundTruth:
    """Read the four official .mat files of a ground-truth folder (current 2017 or old 2016)."""
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise InputError(gt_dir, None, "WIDER FACE ground-truth folder not found")
    paths = [gt_dir / name for name in GT_FILES]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise InputError(gt_dir, None, f"not a WIDER FACE ground-truth folder: missing {', '.join(missing)}")
    digest = sha256_files(paths)
    cached = _load_cache(digest, gt_dir, version)
    if cached is not None:
        warn_unnested_settings(cached, paths[1:])
        return cached
    face = load_mat(paths[0])
    for key in ("event_list", "file_list", "face_bbx_list"):
        if key not in face:
            raise InputError(paths[0], None, f"missing variable '{key}'")
    events = _cell_strings(face["event_list"])
    file_lists = [_cell_strings(c) for c in _cells(face["file_list"])]
    box_lists = [_cells(c) for c in _cells(face["face_bbx_list"])]
    if not (len(events) == len(file_lists) == len(box_lists)):
        raise InputError(paths[0], None, "event_list, file_list and face_bbx_list differ in length")

    images: list[tuple[str, str]] = []
    image_event: list[int] = []
    counts: list[int] = []
    blocks: list[np.ndarray] = []
    dtype = None
    for e, (event, names, boxes) in enumerate(zip(events, file_lists, box_lists)):
        if len(names) != len(boxes):
            raise InputError(paths[0], None, f"event {event}: {len(names)} images but {len(boxes)} box lists")
        for name, box in zip(names, boxes):
            box = np.asarray(box)
            if box.size == 0:
                box = np.zeros((0, 4), dtype=box.dtype if box.dtype.kind in "iuf" else np.int32)
            if box.dtype.kind not in "iuf":
                raise InputError(paths[0], None, f"{event}/{name}: face boxes must be numbers, got {box.dtype}")
            if box.ndim != 2 or box.shape[1] != 4:
                raise InputError(paths[0], None, f"{event}/{name}: face boxes must be N x 4, got {box.shape}")
            dtype = box.dtype if dtype is None else np.promote_types(dtype, box.dtype)
            images.append((event, name))
            image_event.append(e)
            counts.append(box.shape[0])
            blocks.append(box)
    dtype = np.int32 if dtype is None or dtype.kind in "iu" else np.float64
    boxes_all = np.concatenate(blocks).astype(dtype) if blocks else np.zeros((0, 4), dtype)
    offsets = np.zeros(len(images) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])

    attributes = {}
    for attr in ATTRIBUTES:
        key = f"{attr}_label_list"
        if key not in face:
            continue
        values = np.full(len(boxes_all), -1, dtype=np.int16)
        flat = [np.asarray(v).ravel() for c in _cells(face[key]) for v in _cells(c)]
        if any(f.dtype.kind not in "iufb" or (f.dtype.kind == "f" and not np.isfinite(f).all()) for f in flat):
            raise InputError(paths[0], None, f"variable '{key}' must hold numeric labels")
        if len(flat) == len(images) and all(f.size == n for f, n in zip(flat, counts)):
            values = np.concatenate(flat).astype(np.int16) if flat else values
        attributes[attr] = values

    keep = {}
    for setting, path in zip(SETTINGS, paths[1:]):
        data = load_mat(path)
        if "gt_list" not in data:
            raise InputError(path, None, "missing variable 'gt_list'")
        lists = [_cells(c) for c in _cells(data["gt_list"])]
        if [len(x) for x in lists] != [len(x) for x in file_lists]:
            raise InputError(path, None, "gt_list does not match the image lists of wider_face_val.mat")
        mask = np.zeros(len(boxes_all), dtype=bool)
        i = 0
        for per_event in lists:
            for idx in per_event:
                idx = np.asarray(idx).ravel()
                if idx.dtype.kind not in "iuf" or (idx.dtype.kind == "f" and not
                                                    (np.isfinite(idx) & (idx == np.round(idx))).all()):
                    event, name = images[i]
                    raise InputError(path, None, f"{event}/{name}: keep indices must be integers, got {idx[:3]}")
                idx = idx.astype(np.int64)
                if idx.size and (idx.min() < 1 or idx.max() > counts[i]):
                    event, name = images[i]
                    raise InputError(path, None, f"{event}/{name}: keep index out of range 1..{counts[i]}")
                mask[offsets[i] + idx - 1] = True
                i += 1
        keep[setting] = mask

    if version is None:
        version = "2017" if dtype == np.int32 else "2016"
    gt = WiderGroundTruth(
        events=tuple(events), images=tuple(images), image_event=np.asarray(image_event, dtype=np.int32),
        face_offsets=offsets, boxes=boxes_all, keep=keep, attributes=attributes,
        sha256=digest, version=version, source=str(Path(gt_dir).absolute()),
        image_index={key: i for i, key in enumerate(images)},
    )
    _save_cache(gt)
    warn_unnested_settings(gt, paths[1:])
    return gt


def warn_unnested_settings(gt: WiderGroundTruth, keep_files: list[Path]) -> None:
    """Warn when easy is not within medium or medium not within hard, as in every official release."""
    # Scoring is still defined for any keep lists, so this is a warning: it catches swapped or
    # mislabelled files (a hard list copied from easy scores "hard" as easy without any error).
    for (inner, outer), path in zip((("easy", "medium"), ("medium", "hard")), keep_files[1:]):
        stray = gt.keep[inner] & ~gt.keep[outer]
        if stray.any():
            first = int(np.flatnonzero(stray)[0])
            image = int(np.searchsorted(gt.face_offsets, first, side="right") - 1)
            event, name = gt.images[image]
            warn(f"{path}: {int(stray.sum())} faces kept in {inner} are not kept in {outer} (first: {event}/{name} "
                 f"face {first - int(gt.face_offsets[image]) + 1}); official {outer} lists contain all {inner} faces, "
                 "check that the files are not swapped")


def _cache_path(digest: str) -> Path | None:
    return cache_file(f"wider_gt_{digest[:32]}.npz")


def _save_cache(gt: WiderGroundTruth) -> None:
    """Keep the parsed ground truth keyed by the files' sha256 (loadmat of the cells is the slow part)."""
    arrays = {"events": np.array(gt.events), "image_event": gt.image_event,
              "image_names": np.array([n for _, n in gt.images]), "face_offsets": gt.face_offsets,
              "boxes": gt.boxes, "version": np.array(gt.version)}
    arrays.update({f"keep_{k}": v for k, v in gt.keep.items()})
    arrays.update({f"attr_{k}": v for k, v in gt.attributes.items()})
    save_arrays(_cache_path(gt.sha256), arrays)


def _load_cache(digest: str, gt_dir: Path, version: str | None) -> WiderGroundTruth | None:
    data = load_arrays(_cache_path(digest))
    if data is None:
        return None
    try:
        events = tuple(str(e) for e in data["events"])
        image_event = data["image_event"]
        images = tuple((events[e], str(n)) for e, n in zip(image_event, data["image_names"]))
        keep = {k[5:]: v for k, v in data.items() if k.startswith("keep_")}
        attributes = {k[5:]: v for k, v in data.items() if k.startswith("attr_")}
        return WiderGroundTruth(
            events=events, images=images, image_event=image_event, face_offsets=data["face_offsets"],
            boxes=data["boxes"], keep=keep, attributes=attributes, sha256=digest,
            version=version or str(data["version"]), source=str(Path(gt_dir).absolute()),
            image_index={key: i for i, key in enumerate(images)})
    except (KeyError, ValueError, IndexError):
        return None


def write_ground_truth(gt_dir: str | os.PathLike, events: list[tuple[str, list[dict]]]) -> Path:
    """Write the four .mat files in the official structure (for embedded samples and test fixtures).

    events: [(event_name, [{"name": str, "boxes": [[x, y, w, h], ...], "easy": [1-based indices],
    "medium": [...], "hard": [...], optional attribute lists "blur": [...], ...}, ...]), ...]
    """
    import scipy.io

    gt_dir = Path(gt_dir)
    gt_dir.mkdir(parents=True, exist_ok=True)

    def cell(items: list) -> np.ndarray:
        out = np.empty((len(items), 1), dtype=object)
        for i, item in enumerate(items):
            out[i, 0] = item
        return out

    base = {
        "event_list": cell([np.array([name]) for name, _ in events]),
        "file_list": cell([cell([np.array([img["name"]]) for img in imgs]) for _, imgs in events]),
        "face_bbx_list": cell([cell([np.asarray(img["boxes"], dtype=np.int32).reshape(-1, 4) for img in imgs])
                               for _, imgs in events]),
    }
    for attr in ATTRIBUTES:
        base[f"{attr}_label_list"] = cell([cell([
            np.asarray(img.get(attr, [0] * len(img["boxes"])), dtype=np.uint8).reshape(-1, 1) for img in imgs])
            for _, imgs in events])
    scipy.io.savemat(gt_dir / "wider_face_val.mat", base)
    for setting in SETTINGS:
        data = dict(base)
        data["gt_list"] = cell([cell([np.asarray(img.get(setting, []), dtype=np.uint16).reshape(-1, 1)
                                      for img in imgs]) for _, imgs in events])
        scipy.io.savemat(gt_dir / f"wider_{setting}_val.mat", data)
    return gt_dir


def with_split_txt(gt: WiderGroundTruth, txt_path: str | os.PathLike) -> WiderGroundTruth:
    """Take boxes and attributes from a `wider_face_val_bbx_gt.txt`, keep lists from the .mat files.

    The text file must describe the same images with the same face counts (keep indices refer to them).
    """
    import dataclasses

    from protocols.wider_face.split_txt import ATTRIBUTE_COLUMNS, read_split_txt

    by_key = {(img.event, img.name): img for img in read_split_txt(txt_path)}
    missing = [key for key in gt.images if key not in by_key]
    if missing:
        raise InputError(txt_path, None, f"{len(missing)} ground-truth images absent, first {'/'.join(missing[0])}")
    boxes, attrs = [], []
    for i, key in enumerate(gt.images):
        img = by_key[key]
        expected = int(gt.face_offsets[i + 1] - gt.face_offsets[i])
        if len(img.boxes) != expected:
            raise InputError(txt_path, None, f"{img.path}: {len(img.boxes)} faces, the .mat has {expected}")
        boxes.append(img.boxes)
        attrs.append(img.attributes)
    box_array = np.concatenate(boxes).astype(gt.boxes.dtype)
    attr_array = np.concatenate(attrs)
    attributes = {name: attr_array[:, k].astype(np.int16) for k, name in enumerate(ATTRIBUTE_COLUMNS)}
    digest = sha256_files([*(Path(gt.source) / n for n in GT_FILES), txt_path])
    return dataclasses.replace(gt, boxes=box_array, attributes=attributes, sha256=digest,
                               source=f"{gt.source} + {txt_path}")
