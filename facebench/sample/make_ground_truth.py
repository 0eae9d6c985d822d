"""Write the sample benchmark's WIDER FACE ground truth (the four eval_tools .mat files) from its definition.

Run `python -m facebench.sample.make_ground_truth` after changing facebench/sample/__init__.py; the files
land in facebench/sample/ground_truth/ in the official layout: event_list, file_list, face_bbx_list
(int32 x y w h) and the six attribute label lists in wider_face_val.mat; the same lists plus gt_list
(1-based keep indices) in wider_{easy,medium,hard}_val.mat.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.io

from facebench.sample import (EASY_MIN_HEIGHT, GROUND_TRUTH_DIR, IMAGES, MEDIUM_MIN_HEIGHT, face_boxes,
                              keep_indices)

ATTRIBUTE_LISTS = ("blur_label_list", "expression_label_list", "illumination_label_list",
                   "invalid_label_list", "occlusion_label_list", "pose_label_list")
# scipy writes the creation time into the 116-byte text header; a fixed header keeps rebuilt files identical
HEADER = b"MATLAB 5.0 MAT-file, written by facebench/sample/make_ground_truth.py".ljust(116)
MIN_HEIGHT = {"easy": EASY_MIN_HEIGHT, "medium": MEDIUM_MIN_HEIGHT, "hard": 0}


def _cell(items: list) -> np.ndarray:
    """A MATLAB n x 1 cell array."""
    cell = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        cell[i, 0] = item
    return cell


def build() -> dict[str, dict[str, np.ndarray]]:
    """The variables of each of the four files."""
    events = list(dict.fromkeys(image.event for image in IMAGES))
    per_event = [[image for image in IMAGES if image.event == event] for event in events]
    base = {
        "event_list": _cell(events),
        "file_list": _cell([_cell([image.name for image in group]) for group in per_event]),
        "face_bbx_list": _cell([_cell([face_boxes(image) for image in group]) for group in per_event]),
    }
    # every sample face is a clear, typical, unoccluded, valid face: all attribute labels 0
    for key in ATTRIBUTE_LISTS:
        base[key] = _cell([_cell([np.zeros((len(face_boxes(image)), 1), dtype=np.int32) for image in group])
                           for group in per_event])
    files = {"wider_face_val.mat": base}
    for setting, min_height in MIN_HEIGHT.items():
        gt_list = _cell([_cell([keep_indices(image, min_height).reshape(-1, 1) for image in group])
                         for group in per_event])
        files[f"wider_{setting}_val.mat"] = {**base, "gt_list": gt_list}
    return files


def main(out_dir: Path = GROUND_TRUTH_DIR) -> None:
    """Write the four files and print what they hold."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, variables in build().items():
        path = out_dir / name
        scipy.io.savemat(path, variables, do_compression=True, oned_as="column")
        data = path.read_bytes()
        path.write_bytes(HEADER + data[len(HEADER):])
    faces = sum(len(face_boxes(image)) for image in IMAGES)
    kept = {s: int(sum(len(keep_indices(i, h)) for i in IMAGES)) for s, h in MIN_HEIGHT.items()}
    print(f"wrote {out_dir}: {len(IMAGES)} images, {faces} faces, kept {kept}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else GROUND_TRUTH_DIR)
