"""face-eval protocol (AFW/PASCAL): matching rules, AP, box correction, readers and CLI on files built in code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest

from facebench.errors import InputError
from protocols.face_eval import (evaluate, load_ground_truth, match_detections, minimum_detection_size,
                                 read_detections, records_ap, size_filter_mask, voc_ap, voc_ap_11point)
from protocols.face_eval.curve import curve_outline, precision_recall
from protocols.face_eval.matching import match_detections_reference, pairwise_overlap



def write_struct_annotations(path: Path, images: Sequence[tuple[str, Sequence[Sequence[float]]]],
                             columns: int = 6) -> Path:
    """A v5 `Annotations` struct array (imgname, objects N x columns) like the face-eval annotation files."""
    import scipy.io

    records = np.zeros((len(images), 1), dtype=[("imgname", "O"), ("objects", "O"), ("flags", "O")])
    for i, (name, rows) in enumerate(images):
        records[i, 0]["imgname"] = name
        records[i, 0]["objects"] = np.array(rows, dtype=np.float64).reshape(-1, columns)
        records[i, 0]["flags"] = np.zeros((1, 1))
    scipy.io.savemat(path, {"Annotations": records})
    return path


def write_anno_cells(path: Path, images: Sequence[tuple[str, Sequence[Sequence[float]]]]) -> Path:
    """A v5 Zhu & Ramanan `anno` cell array: name, {[x1 y1; x2 y2], ...}, poses, landmarks."""
    import scipy.io

    anno = np.empty((len(images), 4), dtype=object)
    for i, (name, rows) in enumerate(images):
        faces = np.empty((1, len(rows)), dtype=object)
        for j, (x1, y1, x2, y2) in enumerate(rows):
            faces[0, j] = np.array([[x1, y1], [x2, y2]], dtype=np.float64)
        anno[i] = [name, faces, np.zeros((1, 1)), np.zeros((1, 1))]
    scipy.io.savemat(path, {"anno": anno})
    return path


class V73Writer:
    """The smallest MATLAB v7.3 writer the tests need: doubles, char, cells (object arrays), struct arrays."""

    def __init__(self, path: Path) -> None:
        import h5py

        self.h5py = h5py
        self.file = h5py.File(path, "w", userblock_size=512)
        self.refs = self.file.create_group("#refs#")
        self.count = 0

    def _store(self, group, name: str, value: Any):
        h5py = self.h5py
        if isinstance(value, str):
            data = np.array([ord(c) for c in value], dtype=np.uint16).reshape(-1, 1)
            node = group.create_dataset(name, data=data)
            node.attrs["MATLAB_class"] = np.bytes_("char")
        elif isinstance(value, np.ndarray) and value.dtype == object:
            refs = np.empty(value.shape[::-1], dtype=h5py.ref_dtype)
            for index in np.ndindex(value.shape):
                self.count += 1
                target = self._store(self.refs, f"r{self.count}", value[index])
                refs[index[::-1]] = target.ref
            node = group.create_dataset(name, data=refs, dtype=h5py.ref_dtype)
            node.attrs["MATLAB_class"] = np.bytes_("cell")
        elif isinstance(value, dict):  # struct array: every field an object array of the same shape
            node = group.create_group(name)
            node.attrs["MATLAB_class"] = np.bytes_("struct")
            for field, column in value.items():
                self._store(node, field, column)
        else:
            array = np.atleast_2d(np.asarray(value, dtype=np.float64))
            node = group.create_dataset(name, data=array.T)
            node.attrs["MATLAB_class"] = np.bytes_("double")
        return node

    def write(self, **variables: Any) -> None:
        """Store the variables and close the file."""
        for name, value in variables.items():
            self._store(self.file, name, value)
        self.file.close()


def column(values: Sequence[Any]) -> np.ndarray:
    """An N x 1 object array (a MATLAB cell column)."""
    cells = np.empty((len(values), 1), dtype=object)
    for i, value in enumerate(values):
        cells[i, 0] = value
    return cells


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    """A text file with one line per entry."""
    path.write_text("".join(line + "\n" for line in lines))
    return path
