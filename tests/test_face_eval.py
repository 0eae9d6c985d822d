"""face-eval protocol (AFW/PASCAL): matching rules, AP, box correction, readers and CLI on files built in code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest

from facebench.errors import InputError
from tests.conftest import run_cli
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


# ----------------------------------------------------------------------------------------------------------------
# A small ground truth: img1 has two counted faces, one too narrow (ignored by size) and one flagged;
# img2 has one face; img3 has none.
GT_IMAGES = [
    ("img1.jpg", [[100, 100, 199, 199, 0, 0], [300, 100, 399, 199, 0, 0], [500, 100, 520, 199, 0, 0],
                  [600, 100, 699, 199, 0, 1]]),
    ("img2.jpg", [[10, 10, 109, 109, 0, 0]]),
    ("img3.jpg", []),
]


@pytest.fixture()
def small_gt(tmp_path):
    return load_ground_truth("afw", write_struct_annotations(tmp_path / "gt.mat", GT_IMAGES))


def det_file(tmp_path: Path, rows: Sequence[str], name: str = "dets.txt") -> Path:
    return write_lines(tmp_path / name, rows)


def test_ground_truth_counts_and_size_rule(small_gt):
    assert small_gt.style == "mathias2014"
    assert small_gt.image_keys == ("img1", "img2", "img3")
    assert small_gt.counts.tolist() == [4, 1, 0]
    assert small_gt.flagged.tolist() == [False, False, False, True, False]
    assert small_gt.ignored.tolist() == [False, False, True, True, False]
    assert small_gt.n_positives == 3
    assert small_gt.positives_per_image.tolist() == [2, 1, 0]


def test_size_rule_has_no_plus_one(tmp_path):
    # |x2 - x1| = 30 counts, 29 is ignored; the same for heights.
    gt = load_ground_truth("pascal", write_struct_annotations(tmp_path / "g.mat", [
        ("a.jpg", [[0, 0, 30, 30, 0, 0], [0, 0, 29, 50, 0, 0], [0, 0, 50, 29, 0, 0]])]))
    assert gt.ignored.tolist() == [False, True, True]
    gt = load_ground_truth("pascal", tmp_path / "g.mat", min_width=10, min_height=10)
    assert gt.ignored.tolist() == [False, False, False]
    assert minimum_detection_size() == 21 and minimum_detection_size(10, 10) == 7


def test_four_column_objects_are_original_style_with_flag_zero(tmp_path):
    gt = load_ground_truth("pascal", write_struct_annotations(
        tmp_path / "old.mat", [("2008_1.jpg", [[0, 0, 40, 40], [5, 5, 20, 20]])], columns=4))
    assert gt.style == "original"
    assert gt.flagged.tolist() == [False, False] and gt.ignored.tolist() == [False, True]


def test_anno_cells_and_v73_struct_give_the_same_boxes(tmp_path):
    rows = [[100, 100, 199, 199], [300, 100, 320, 199]]
    old = load_ground_truth("afw", write_anno_cells(tmp_path / "anno2.mat", [("1.jpg", rows), ("2.jpg", [])]))
    assert old.style == "original" and old.boxes.tolist() == rows and old.counts.tolist() == [2, 0]
    assert old.ignored.tolist() == [False, True]
    # The same annotations as a MATLAB v7.3 (HDF5) struct array, read through h5py.
    names = column(["1.jpg", "2.jpg"])
    objects = column([np.array([r + [0, 0] for r in rows], dtype=float), np.zeros((0, 0))])
    V73Writer(tmp_path / "v73.mat").write(Annotations={"imgname": names, "objects": objects})
    new = load_ground_truth("afw", tmp_path / "v73.mat")
    assert new.image_keys == ("1", "2") and new.boxes.tolist() == rows and new.counts.tolist() == [2, 0]


def test_bad_annotation_files(tmp_path):
    import scipy.io

    scipy.io.savemat(tmp_path / "x.mat", {"something": np.zeros(3)})
    with pytest.raises(InputError, match="not an AFW/PASCAL annotation file"):
        load_ground_truth("afw", tmp_path / "x.mat")
    write_struct_annotations(tmp_path / "dup.mat", [("a.jpg", []), ("a.png", [])])
    with pytest.raises(InputError, match="share the key 'a'"):
        load_ground_truth("afw", tmp_path / "dup.mat")
    with pytest.raises(InputError, match="not found"):
        load_ground_truth("afw", tmp_path / "missing.mat")
    with pytest.raises(ValueError):
        load_ground_truth("fddb", tmp_path / "dup.mat")


# ----------------------------------------------------------------------------------------------------------------
def test_overlap_plus_one_convention_and_strict_touching():
    det = np.array([[0, 0, 9, 9], [0, 0, 9, 9], [10, 0, 19, 9], [5, 0, 14, 9]], dtype=float)
    gt = np.array([[0, 0, 9, 9], [0, 0, 19, 9], [0, 0, 10, 9], [0, 0, 9, 9]], dtype=float)
    ovr = pairwise_overlap(det, gt)
    assert ovr[0] == 1.0
    assert ovr[1] == 0.5  # 100 / (100 + 200 - 100)
    assert ovr[2] == 0.0  # x2 of the GT (10) is not > x1 of the detection (10): no intersection at all
    assert ovr[3] == pytest.approx(50 / 150)


def test_threshold_is_strict(tmp_path, small_gt):
    # IoU exactly 0.5 with GT A: a FP; just above: a TP.
    res = evaluate(small_gt, read_detections(det_file(tmp_path, ["img1 0.9 100 100 299 199"])), iterations=1)
    assert res.tp.tolist() == [False] and res.fp.tolist() == [True]
    res = evaluate(small_gt, read_detections(det_file(tmp_path, ["img1 0.9 100 100 298 199"])), iterations=1)
    assert res.tp.tolist() == [True]
    res = evaluate(small_gt, read_detections(det_file(tmp_path, ["img1 0.9 100 100 298 199"])), iterations=1,
                   overlap_threshold=0.9)
    assert res.fp.tolist() == [True]


def test_last_gt_wins_ties_and_ignored_best_gt_drops(tmp_path):
    # Two identical GT boxes: the LAST one is the match. When it is ignored the detection is dropped,
    # even though the first (counted) one overlaps just as well.
    gt = load_ground_truth("afw", write_struct_annotations(tmp_path / "g.mat", [
        ("a.jpg", [[0, 0, 99, 99, 0, 0], [0, 0, 99, 99, 0, 1]]),
        ("b.jpg", [[0, 0, 99, 99, 0, 1], [0, 0, 99, 99, 0, 0]])]))
    res = evaluate(gt, read_detections(det_file(tmp_path, ["a 0.9 0 0 99 99", "b 0.8 0 0 99 99"])), iterations=1)
    assert res.dropped.tolist() == [True, False]
    assert res.tp.tolist() == [False, True]
    assert res.fp.tolist() == [False, False]
    assert res.n_positives == 2 and res.ap == 0.5


def test_no_fallback_to_another_gt(tmp_path):
    # Both detections' best GT is G1; the second overlaps G2 by > 0.5 too but stays a FP.
    gt = load_ground_truth("afw", write_struct_annotations(tmp_path / "g.mat", [
        ("a.jpg", [[0, 0, 99, 99, 0, 0], [10, 0, 109, 99, 0, 0]])]))
    rows = ["a 0.9 0 0 99 99", "a 0.8 4 0 103 99"]
    res = evaluate(gt, read_detections(det_file(tmp_path, rows)), iterations=1)
    assert res.tp.tolist() == [True, False] and res.fp.tolist() == [False, True]


def test_unmatched_duplicate_and_empty_image_are_fp(tmp_path, small_gt):
    rows = ["img1 0.9 100 100 199 199", "img1 0.8 100 100 199 199", "img3 0.7 0 0 50 50", "img2 0.6 500 500 600 600"]
    res = evaluate(small_gt, read_detections(det_file(tmp_path, rows)), iterations=1)
    assert res.tp.tolist() == [True, False, False, False]
    assert res.fp.tolist() == [False, True, True, True]


def test_ties_in_score_keep_file_order(tmp_path, small_gt):
    rows = ["img1 0.5 300 100 399 199", "img1 0.5 301 100 399 199", "img1 0.9 100 100 199 199"]
    res = evaluate(small_gt, read_detections(det_file(tmp_path, rows)), iterations=1)
    # Sorted: the 0.9 one, then the two 0.5 ones in file order; the first of them takes GT B.
    assert res.scores.tolist() == [0.9, 0.5, 0.5]
    assert res.tp.tolist() == [True, True, False]
    rows[0], rows[1] = rows[1], rows[0]
    res2 = evaluate(small_gt, read_detections(det_file(tmp_path, rows, "swapped.txt")), iterations=1)
    assert res2.tp.tolist() == [True, True, False]


def test_detection_size_filter_is_strict_or(tmp_path, small_gt):
    boxes = np.array([[0, 0, 21, 21], [0, 0, 22, 0], [0, 0, 0, 22], [0, 0, 21.5, 21]], dtype=float)
    assert size_filter_mask(boxes, 21).tolist() == [False, True, True, True]
    rows = ["img1 0.9 100 100 199 199", "img1 0.95 0 0 21 21", "img2 0.1 0 0 21 21"]
    res = evaluate(small_gt, read_detections(det_file(tmp_path, rows)), iterations=1)
    assert res.n_detections_read == 3 and res.n_detections_filtered == 2 and res.n_detections == 1
    assert res.tp.tolist() == [True]


def test_all_detections_below_the_size_filter(tmp_path, small_gt):
    res = evaluate(small_gt, read_detections(det_file(tmp_path, ["img1 0.9 0 0 10 10", "img2 0.8 5 5 20 20"])))
    assert res.n_detections == 0 and res.ap == 0.0 and np.isnan(res.corrections[0].sx)
    doc = res.to_document()
    assert doc["metrics"]["n_detections_filtered"] == 2 and doc["metrics"]["precision_at_last_detection"] is None


def test_leading_dropped_detections_do_not_change_ap(tmp_path, small_gt):
    rows = ["img1 0.99 600 100 699 199", "img1 0.9 100 100 199 199", "img2 0.8 10 10 109 109",
            "img1 0.7 300 100 399 199"]
    res = evaluate(small_gt, read_detections(det_file(tmp_path, rows)), iterations=1)
    assert res.dropped.tolist() == [True, False, False, False]
    assert np.isnan(res.precision[0]) and res.ap == 1.0
    doc = res.to_document()
    assert doc["metrics"]["ap"] == 1.0 and doc["metrics"]["n_dropped"] == 1
    assert None not in doc["curves"]["pr"]["precision"]


def test_voc_ap_small_cases():
    recall, precision = precision_recall(np.array([1, 0, 1]), np.array([0, 1, 0]), 2)
    assert recall.tolist() == [0.5, 0.5, 1.0]
    assert voc_ap(recall, precision) == pytest.approx(0.5 + 0.5 * 2 / 3, abs=1e-15)
    assert voc_ap(np.array([]), np.array([])) == 0.0
    assert voc_ap(*precision_recall(np.array([0, 1]), np.array([1, 0]), 1)) == 0.5
    assert voc_ap_11point(np.array([0.5, 1.0]), np.array([1.0, 0.5])) == pytest.approx(6 / 11 + 5 * 0.5 / 11)
    # No counted face at all: recall is 0/0 and the AP NaN, as in the toolbox.
    assert np.isnan(voc_ap(*precision_recall(np.array([0]), np.array([1]), 0)))


def test_curve_outline_draws_the_same_polyline():
    recall = np.array([0.1, 0.2, 0.2, 0.2, 0.2, 0.3, 0.3])
    precision = np.array([1.0, 1.0, 1.0, 0.8, 0.6, 0.7, 0.7])
    r, p = curve_outline(recall, precision)
    # The end points are always kept (the last is the operating point at the lowest score).
    assert r.tolist() == [0.1, 0.2, 0.2, 0.3, 0.3] and p.tolist() == [1.0, 1.0, 0.6, 0.7, 0.7]


def test_vectorised_matching_equals_the_reference_loop():
    rng = np.random.default_rng(7)
    n_images, counts = 40, rng.integers(0, 6, 40)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    xy = rng.integers(0, 200, (offsets[-1], 2)).astype(float)
    gt_boxes = np.hstack([xy, xy + rng.integers(20, 80, (offsets[-1], 2))])
    twins = offsets[:-1][counts >= 2]
    gt_boxes[twins + 1] = gt_boxes[twins]  # identical GT pairs: exact overlap ties
    ignored = rng.random(offsets[-1]) < 0.2
    n_det = 3000
    det_image = rng.integers(0, n_images, n_det)
    has_gt = counts[det_image] > 0
    pick = offsets[det_image] + (rng.integers(0, 100, n_det) % np.maximum(counts[det_image], 1))
    base = np.where(has_gt[:, None], gt_boxes[np.minimum(pick, len(gt_boxes) - 1)], 50.0)
    det_boxes = base + np.round(rng.normal(0, 8, (n_det, 4)), 1)
    det_boxes[:, 2:] = np.maximum(det_boxes[:, 2:], det_boxes[:, :2])
    det_boxes[::50] = np.nan  # NaN boxes (after a failed correction) are FPs
    fast = match_detections(det_image, det_boxes, gt_boxes, ignored, offsets)
    slow = match_detections_reference(det_image, det_boxes, gt_boxes, ignored, offsets)
    for name in ("tp", "fp", "dropped", "gt_index"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
    assert fast.tp.sum() > 50 and fast.dropped.sum() > 10 and fast.fp.sum() > 100
    assert np.isin(fast.gt_index, twins + 1).sum() > 20 and not np.isin(fast.gt_index, twins).any()


# ----------------------------------------------------------------------------------------------------------------
def style_mismatch_case(tmp_path: Path) -> tuple[Any, Path]:
    """Face boxes drawn 1.2x (low scores) or 2.2x (high scores) too wide: only the 1.2x ones pass IoU 0.5."""
    faces = [(f"im{i}.jpg", [[50 * j, 100, 50 * j + 40, 140, 0, 0] for j in range(1 + i % 3)]) for i in range(12)]
    gt = load_ground_truth("afw", write_struct_annotations(tmp_path / "g.mat", faces))
    rows = []
    for name, boxes in faces:
        for x1, y1, x2, y2, _, _ in boxes:
            wide = len(rows) % 2 == 0
            grow = (x2 - x1) * (0.6 if wide else 0.1)
            score = (2.0 if wide else 1.0) - 0.01 * len(rows)
            rows.append(f"{name} {score:.4f} {x1 - grow:.2f} {y1:.2f} {x2 + grow:.2f} {y2:.2f}")
    return gt, det_file(tmp_path, rows)


def test_box_correction_maps_the_detector_style(tmp_path):
    gt, path = style_mismatch_case(tmp_path)
    dets = read_detections(path)
    plain = evaluate(gt, dets, iterations=1)
    assert plain.corrections == () and 0 < plain.tp.sum() < gt.n_positives and plain.ap < 0.5
    fitted = evaluate(gt, dets, iterations=2)
    (c,) = fitted.corrections
    assert c.n_tp == plain.tp.sum()
    assert c.sx == pytest.approx(1 / 1.2, abs=1e-12) and c.sy == 1.0 and c.tx == 0.0 and c.ty == 0.0
    assert fitted.ap == pytest.approx(1.0, abs=1e-12) and fitted.tp.all()
    assert evaluate(gt, dets, iterations=5).ap == pytest.approx(1.0, abs=1e-12)
    # No TP in the first round (threshold too high): NaN fit, NaN boxes, every detection a FP.
    nan_run = evaluate(gt, dets, iterations=3, overlap_threshold=0.99)
    assert np.isnan(nan_run.corrections[0].sx) and nan_run.tp.sum() == 0 and nan_run.ap == 0.0


def test_iterations_must_be_positive(tmp_path, small_gt):
    dets = read_detections(det_file(tmp_path, ["img1 0.9 100 100 199 199"]))
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="iterations"):
            evaluate(small_gt, dets, iterations=bad)
    assert evaluate(small_gt, dets, iterations=1).corrections == ()


# ----------------------------------------------------------------------------------------------------------------
def test_text_reader(tmp_path):
    path = det_file(tmp_path, ["img1.jpg 0.5 1 2 30.5 40", "", "  img2   1e-3  0 0 50 50  ", "img3.x.y -2 0 0 0 0"])
    dets = read_detections(path)
    assert dets.keys.tolist() == ["img1", "img2", "img3"]
    assert dets.scores.tolist() == [0.5, 0.001, -2.0]
    assert dets.boxes[0].tolist() == [1, 2, 30.5, 40]
    assert dets.origins.tolist() == [1, 3, 4]


@pytest.mark.parametrize("rows, line, message", [
    (["img1 0.9 10 2 5 4"], 1, "coordinates out of order"),
    (["img1 0.9 1 20 5 4"], 1, "coordinates out of order"),
    (["img1 0.9 1 2 3 4", "img1 abc 1 2 3 4"], 2, "score 'abc' is not a number"),
    (["img1 nan 1 2 3 4"], 1, "not a finite number"),
    (["img1 0.9 1 2 x 4"], 1, "x2 'x' is not a number"),
    (["img1 0.9 1 2 3"], 1, "expected 6 fields"),
    (["img1 0.9 1 2 3 4 5"], 1, "expected 6 fields"),
])
def test_text_reader_bad_lines(tmp_path, small_gt, rows, line, message):
    path = det_file(tmp_path, rows)
    with pytest.raises(InputError, match=message) as info:
        evaluate(small_gt, read_detections(path))
    assert info.value.path == str(path) and info.value.line == line
    assert "\n" not in str(info.value)


def test_empty_files(tmp_path):
    for content in ("", "\n\n  \n"):
        (tmp_path / "e.txt").write_text(content)
        with pytest.raises(InputError, match="empty detection file"):
            read_detections(tmp_path / "e.txt")
    with pytest.raises(InputError, match="not found"):
        read_detections(tmp_path / "missing.txt")


def test_legacy_mat_layouts(tmp_path, small_gt):
    import scipy.io

    ids = column(["img1.jpg", "elsewhere.jpg", "img2.jpg"])
    bb = np.array([[100, 0, 10], [100, 0, 10], [199, 9, 109], [199, 9, 109]], dtype=np.uint16)
    scipy.io.savemat(tmp_path / "m.mat", {"ids": ids, "BB": bb, "confidence": np.array([[0.2], [0.9], [0.7]]),
                                          "del": np.array([[0.0], [1.0], [0.0]])})
    dets = read_detections(tmp_path / "m.mat")
    assert dets.format == "mat" and dets.keys.tolist() == ["img1", "img2"] and dets.scores.tolist() == [0.2, 0.7]
    assert dets.origins.tolist() == [1, 3]
    assert evaluate(small_gt, dets, iterations=1).tp.tolist() == [True, True]
    scipy.io.savemat(tmp_path / "r.ramananmat", {"ids": column(["img1.jpg", "img2.jpg"]), "BB": bb[:, [0, 2]]})
    ram = read_detections(tmp_path / "r.ramananmat")
    assert ram.format == "ramananmat" and ram.scores.tolist() == [1.0, 1.0]
    # v7.3 (HDF5) version of the .mat layout.
    V73Writer(tmp_path / "h.mat").write(ids=column(["img2.jpg"]), BB=np.array([[10], [10], [109], [109]]),
                                         confidence=np.array([[3.5]]))
    v73 = read_detections(tmp_path / "h.mat")
    assert v73.keys.tolist() == ["img2"] and v73.boxes.tolist() == [[10, 10, 109, 109]] and v73.scores[0] == 3.5
    scipy.io.savemat(tmp_path / "bad.mat", {"ids": ids, "BB": bb})
    with pytest.raises(InputError, match="missing variable 'confidence'"):
        read_detections(tmp_path / "bad.mat")
    scipy.io.savemat(tmp_path / "bad2.mat", {"ids": ids, "BB": bb[:, :2], "confidence": np.ones((3, 1))})
    with pytest.raises(InputError, match="BB must be 4 x 3"):
        read_detections(tmp_path / "bad2.mat")
    scipy.io.savemat(tmp_path / "bad3.mat", {"ids": ids, "BB": bb[[2, 1, 0, 3]], "confidence": np.ones((3, 1))})
    with pytest.raises(InputError, match="entry 1: coordinates out of order"):
        read_detections(tmp_path / "bad3.mat")


def test_shen_and_picasa_layouts(tmp_path, small_gt):
    import scipy.io

    results = np.empty((2, 1), dtype=object)
    for i, (name, faces) in enumerate([("database\\AFW\\img1.jpg", [[100, 100, 99, 99, 5.0], [300, 100, 99, 99, 7.0]]),
                                       ("database\\AFW\\img3.jpg", np.zeros((0, 5)))]):
        record = np.zeros((1, 1), dtype=[("filename", "O"), ("faces", "O")])
        record[0, 0]["filename"] = name
        record[0, 0]["faces"] = np.array(faces, dtype=float)
        results[i, 0] = record
    scipy.io.savemat(tmp_path / "s.shenmat", {"DetectionResults": results})
    shen = read_detections(tmp_path / "s.shenmat")
    assert shen.keys.tolist() == ["img1", "img1"] and shen.boxes[1].tolist() == [300, 100, 399, 199]
    assert evaluate(small_gt, shen, iterations=1).tp.tolist() == [True, True]
    header = "person;prefix;filename;original;transformed;width;height;face x;face y;face width;face height"
    write_lines(tmp_path / "Picasa.csv", [header, "p;none;img2.jpg;C:\\a;C:/a;500;400;10;10;99;99",
                                          "p;none;img1.jpg;C:\\a;C:/a;500;400;100;100;99;99"])
    picasa = read_detections(tmp_path / "Picasa.csv")
    assert picasa.format == "picasa-csv" and picasa.origins.tolist() == [2, 3]
    assert picasa.boxes.tolist() == [[10, 10, 109, 109], [100, 100, 199, 199]] and picasa.scores.tolist() == [1, 1]
    write_lines(tmp_path / "bad.csv", [header, "p;none;img2.jpg;C:\\a;C:/a;500;400;10;ten;99;99"])
    with pytest.raises(InputError, match="must be integers") as info:
        read_detections(tmp_path / "bad.csv")
    assert info.value.line == 2
    write_lines(tmp_path / "bad.csv", [header, "p;none;" + "x" * 200_000 + ";a;b;5;4;1;1;9;9"])  # past csv's limit
    with pytest.raises(InputError, match="not a Picasa CSV line") as info:
        read_detections(tmp_path / "bad.csv")
    assert info.value.line == 2


def test_a_symlink_loop_is_a_one_line_error(tmp_path, capsys):
    from tests.conftest import run_cli

    (tmp_path / "loop.txt").symlink_to(tmp_path / "loop.txt")
    annotations = write_struct_annotations(tmp_path / "gt.mat", GT_IMAGES)
    code, _, err = run_cli(["eval", "afw", str(tmp_path / "loop.txt"), "--annotations", str(annotations)], capsys)
    assert code == 2 and err.count("\n") == 1 and "loop.txt" in err


# ----------------------------------------------------------------------------------------------------------------
def test_result_document_and_records(tmp_path, small_gt):
    from facebench.results import read_document, write_document

    rows = ["img1 0.9 100 100 199 199", "img2 0.8 10 10 109 109", "img1 0.7 0 0 50 50", "img1 0.6 300 100 399 199"]
    res = evaluate(small_gt, read_detections(det_file(tmp_path, rows)))
    with pytest.raises(Exception):
        res.ap = 0.0  # frozen
    doc = res.to_document()
    for key in ("schema", "benchmark", "protocol", "settings", "metrics", "curves", "ground_truth_sha256",
                "facebench_version", "git_commit", "created", "detections_sha256", "box_correction"):
        assert key in doc
    assert doc["benchmark"] == "afw" and doc["protocol"]["name"] == "face-eval"
    assert doc["metrics"]["ap"] == res.ap and doc["settings"]["iterations"] == 5
    assert len(doc["box_correction"]) == 4
    write_document(doc, tmp_path / "r.json")
    assert read_document(tmp_path / "r.json")["metrics"]["n_tp"] == 3
    res.save_records(tmp_path / "r.records.npz")
    rec = np.load(tmp_path / "r.records.npz")
    assert rec["tp"].tolist() == res.tp.tolist() and rec["positives_per_image"].tolist() == [2, 1, 0]
    assert records_ap(rec["tp"], rec["fp"], int(rec["positives_per_image"].sum())) == res.ap
    assert rec["image_keys"][rec["image_index"]].tolist() == ["img1", "img2", "img1", "img1"]


# ----------------------------------------------------------------------------------------------------------------
def test_cli_end_to_end(tmp_path, capsys, small_gt):
    dets = det_file(tmp_path, ["img1 0.9 100 100 199 199", "img2.jpg 0.8 10 10 109 109", "img1 0.7 0 0 50 50"])
    baseline = det_file(tmp_path, ["img1 1.0 300 100 399 199"], "Face++.txt")
    code, out, err = run_cli(["eval", "afw", str(dets), "--annotations", small_gt.path, "--out",
                              str(tmp_path / "res.json"), "--plot", str(tmp_path / "pr.png"), "--overlay",
                              str(baseline), "--overlay", str(dets)], capsys)
    assert code == 0, err
    assert "AP" in out
    doc = json.loads((tmp_path / "res.json").read_text())
    assert doc["metrics"]["n_tp"] == 2 and doc["metrics"]["n_positives"] == 3
    assert (tmp_path / "res.records.npz").is_file() and (tmp_path / "pr.png").stat().st_size > 1000
    # A result JSON overlays too.
    code, _, err = run_cli(["eval", "afw", str(dets), "--annotations", small_gt.path, "--plot",
                            str(tmp_path / "pr2.png"), "--overlay", str(tmp_path / "res.json")], capsys)
    assert code == 0, err


def test_cli_without_annotations_found(tmp_path, capsys, monkeypatch):
    from facebench.commands import eval_face_eval

    monkeypatch.setattr(eval_face_eval, "shared_annotation_dirs", lambda dataset: [tmp_path / "nowhere"])
    dets = det_file(tmp_path, ["img1 0.9 1 2 3 4"])
    code, _, err = run_cli(["eval", "pascal", str(dets)], capsys)
    assert code == 2 and "pass --annotations" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("rows, extra, expected", [
    (["ghost 0.9 1 2 3 4"], ["--strict-ids"], "dets.txt:1: unknown image id 'ghost'"),
    (["img1 0.9 5 2 3 4"], [], "dets.txt:1: coordinates out of order"),
    ([], [], "dets.txt: empty detection file"),
    (["img1 x 1 2 3 4"], [], "dets.txt:1: score 'x' is not a number"),
    (["img1 0.9 1 2 3 4"], ["--iterations", "0"], "--iterations"),
    (["img1 0.9 1 2 3 4"], ["--overlay", "nothing.txt"], "--overlay needs --plot"),
    (["img1 0.9 1 2 3 4"], ["--old-annotations"], "--old-annotations given"),
])
def test_cli_bad_input_is_one_line(tmp_path, capsys, small_gt, rows, extra, expected):
    dets = det_file(tmp_path, rows)
    code, _, err = run_cli(["eval", "afw", str(dets), "--annotations", small_gt.path] + extra, capsys)
    assert code == 2
    assert expected in err
    if "--iterations" not in extra:
        assert len(err.strip().splitlines()) == 1


def test_cli_ci_adds_intervals_to_the_json_and_the_output(tmp_path, capsys, small_gt):
    from facebench.bootstrap import intervals_for_file

    dets = det_file(tmp_path, ["img1 0.9 100 100 199 199", "img2 0.8 10 10 109 109", "img1 0.7 0 0 50 50",
                               "img3 0.6 5 5 60 60", "img1 0.5 300 100 399 199"])
    for dataset, title in (("afw", "AFW"), ("pascal", "PASCAL Face")):
        out_json = tmp_path / f"{dataset}.json"
        code, out, err = run_cli(["eval", dataset, str(dets), "--annotations", small_gt.path, "--ci",
                                  "--out", str(out_json)], capsys)
        assert code == 0, err
        doc = json.loads(out_json.read_text())
        low, high = doc["ci95"]["ap"]
        assert low <= doc["metrics"]["ap"] <= high and low < high
        assert f"{title}: AP 95% interval [{100 * low:.2f}, {100 * high:.2f}] (image-level bootstrap, 1000 " \
               "resamples of 3 images)" in out
        assert intervals_for_file(out_json)["ap"] == pytest.approx((low, high), abs=1e-15)  # the records agree
    code, out, _ = run_cli(["eval", "afw", str(dets), "--annotations", small_gt.path, "--out",
                            str(tmp_path / "plain.json")], capsys)
    assert code == 0 and "95% interval" not in out and "ci95" not in json.loads((tmp_path / "plain.json").read_text())


# ---------------------------------------------------------------------------------------------------------------- audit fixes
@pytest.mark.parametrize("extra, option", [
    (["--min-width", "-5"], "--min-width"), (["--min-height", "-1"], "--min-height"),
    (["--min-width", "-5", "--min-height", "-5"], "--min-width"), (["--min-width", str(10 ** 400)], "--min-width"),
    (["--overlap", "-1"], "--overlap"), (["--overlap", "nan"], "--overlap"), (["--overlap", "1.5"], "--overlap"),
    (["--overlap", "0"], "--overlap"), (["--overlap", "1"], "--overlap"), (["--overlap", "inf"], "--overlap"),
    (["--iterations", "0"], "--iterations"), (["--iterations", "1001"], "--iterations"),
])
def test_cli_rejects_bad_numbers_up_front(tmp_path, capsys, small_gt, extra, option):
    dets = det_file(tmp_path, ["img1 0.9 100 100 199 199"])
    code, out, err = run_cli(["eval", "afw", str(dets), "--annotations", small_gt.path] + extra, capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {option}: ") and len(err.strip().splitlines()) == 1


def test_api_rejects_bad_sizes_and_overlaps(tmp_path, small_gt):
    with pytest.raises(ValueError, match="min_width"):
        load_ground_truth("afw", small_gt.path, min_width=-5)
    with pytest.raises(ValueError, match="min_height"):
        minimum_detection_size(30, float("nan"))
    dets = read_detections(det_file(tmp_path, ["img1 0.9 100 100 199 199"]))
    for bad in (-1.0, 0.0, 1.0, 1.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="overlap"):
            evaluate(small_gt, dets, overlap_threshold=bad)
    assert minimum_detection_size(0, 0) == 0


@pytest.mark.parametrize("images, extra", [
    ([("a.jpg", [[0, 0, 99, 99, 0, 1]])], []),  # every face flagged
    ([("a.jpg", []), ("b.jpg", [])], []),  # no faces at all
    (GT_IMAGES, ["--min-width", "100000"]),  # the size rule leaves none
])
def test_no_countable_faces_is_an_error(tmp_path, capsys, images, extra):
    gt_path = write_struct_annotations(tmp_path / "g.mat", images)
    dets = det_file(tmp_path, ["a 0.9 0 0 99 99"])
    code, out, err = run_cli(["eval", "afw", str(dets), "--annotations", str(gt_path)] + extra, capsys)
    assert code == 2 and "AP" not in out
    assert err.startswith(f"error: {gt_path}: no faces left to count") and len(err.strip().splitlines()) == 1
    with pytest.raises(InputError, match="no faces left to count"):
        evaluate(load_ground_truth("afw", gt_path, min_width=100000), read_detections(dets))


@pytest.mark.parametrize("separator", ["\x0c", "\x0b", "\x85", "\u2028", "\u2029", "\x1c"])
def test_line_numbers_count_only_lf_crlf_cr(tmp_path, small_gt, separator):
    good = "img1 0.9 100 100 199 199"
    path = tmp_path / "d.txt"
    path.write_text(f"{good}{separator}\r\n{good}\rimg1{separator}0.8 1 2 3 4\n{good}\nimg1 0.5 1 2\n",
                    encoding="utf-8", newline="")
    with pytest.raises(InputError, match="expected 6 fields") as info:
        read_detections(path)
    assert info.value.line == 5
    header = "person;prefix;filename;original;transformed;width;height;face x;face y;face width;face height"
    csv_path = tmp_path / "p.csv"
    csv_path.write_text(f"{header}\np;n{separator}x;img1.jpg;a;a;5;4;1;1;9;9\r\np;n;img1.jpg;a;a;5;4;1;one;9;9\n",
                        encoding="utf-8", newline="")
    with pytest.raises(InputError, match="must be integers") as info:
        read_detections(csv_path)
    assert info.value.line == 3


def test_picasa_csv_must_be_utf8(tmp_path, capsys, small_gt):
    header = "person;prefix;filename;original;transformed;width;height;face x;face y;face width;face height"
    path = tmp_path / "p.csv"
    path.write_bytes((header + "\np;n;img1.jpg;a;a;5;4;100;100;99;99\np;n;caf\xe9.jpg;a;a;5;4;1;1;9;9\n")
                     .encode("latin-1"))
    with pytest.raises(InputError, match=r"not UTF-8 text \(byte 0xe9\)") as info:
        read_detections(path)
    assert info.value.line == 3
    code, _, err = run_cli(["eval", "afw", str(path), "--annotations", small_gt.path], capsys)
    assert code == 2 and f"{path}:3: detection file is not UTF-8 text (byte 0xe9)" in err


def test_anno_cells_reject_non_finite_coordinates(tmp_path, capsys):
    path = write_anno_cells(tmp_path / "anno2.mat", [("1.jpg", [[0, 0, 99, float("nan")]]), ("2.jpg", [])])
    with pytest.raises(InputError, match=r"anno\{1,2\} holds non-finite coordinates"):
        load_ground_truth("afw", path)
    write_anno_cells(tmp_path / "inf.mat", [("1.jpg", [[0, 0, 99, 99]]), ("2.jpg", [[0, float("inf"), 9, 9]])])
    with pytest.raises(InputError, match=r"anno\{2,2\} holds non-finite"):
        load_ground_truth("afw", tmp_path / "inf.mat")


def test_huge_coordinates_compute_without_warnings(tmp_path, capsys, small_gt):
    import warnings

    rows = ["img1 0.9 100 100 199 199", "img1 0.5 1 1 1e200 1e200", "img2 0.4 -1e308 -1e308 1e308 1e308"]
    path = det_file(tmp_path, rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = evaluate(small_gt, read_detections(path))
    # The toolbox's Python floats overflow the same way: the huge boxes are FPs.
    assert res.tp.tolist() == [True, False, False] and res.fp.tolist() == [False, True, True]
    assert res.ap == pytest.approx(1 / 3, abs=1e-15)
    code, out, err = run_cli(["eval", "afw", str(path), "--annotations", small_gt.path], capsys)
    assert code == 0 and err == "" and "AP 33.33" in out


def test_output_paths_are_checked_before_evaluating(tmp_path, capsys, small_gt):
    dets = det_file(tmp_path, ["img1 0.9 100 100 199 199"])
    base = ["eval", "afw", str(dets), "--annotations", small_gt.path]
    code, out, err = run_cli(base + ["--plot", str(tmp_path / "p.xyz")], capsys)
    assert code == 2 and out == "" and "--plot: cannot write a '.xyz' figure" in err
    code, out, err = run_cli(base + ["--plot", str(dets / "p.png")], capsys)
    assert code == 2 and out == "" and "is a file, not a folder" in err
    code, out, err = run_cli(base + ["--out", str(dets)], capsys)
    assert code == 2 and out == "" and "--out: refusing to overwrite an input file" in err
    assert dets.read_text().startswith("img1 0.9")
    code, out, err = run_cli(base + ["--out", str(tmp_path / "r.png"), "--plot", str(tmp_path / "r.png")], capsys)
    assert code == 2 and "same file as --out" in err
    code, out, err = run_cli(base + ["--plot", str(tmp_path / "new" / "sub" / "p.png")], capsys)
    assert code == 0, err
    assert (tmp_path / "new" / "sub" / "p.png").is_file()


def test_help_text_is_formatted_and_names_both_size_options(capsys):
    for dataset in ("afw", "pascal"):
        code, out, _ = run_cli(["eval", dataset, "--help"], capsys)
        text = " ".join(out.split())
        assert code == 0 and "{dataset}" not in text and f"(default: {dataset}/annotations/ under" in text
        min_height = text[text.index("--min-height INTEGER"):text.index("--overlap FLOAT")]
        assert "detection size filter" in min_height and "--strict-ids" in text


def test_ids_with_a_folder_part_match_no_image_as_in_the_toolbox(tmp_path, capsys, small_gt):
    # The toolbox keys a .txt line on name.split('.')[0]: a folder part stays, so the id is unknown (an FP).
    path = det_file(tmp_path, ["afw/images/img1.jpg 0.9 100 100 199 199", "img1.jpg 0.8 100 100 199 199"])
    res = evaluate(small_gt, read_detections(path), iterations=1)
    assert res.tp.tolist() == [False, True] and res.n_detections_unknown_image == 1
    err = capsys.readouterr().err
    assert "'afw/images/img1'" in err and "ids keep a folder part" in err


def test_unknown_image_ids_are_false_positives_with_one_warning(tmp_path, capsys, small_gt):
    from facebench.bootstrap import intervals_for_file

    rows = ["img1 0.9 100 100 199 199", "ghost.jpg 0.85 100 100 199 199", "img2 0.8 10 10 109 109",
            "ghost 0.7 0 0 50 50", "other 0.6 0 0 50 50", "img1 0.5 300 100 399 199"]
    path = det_file(tmp_path, rows)
    res = evaluate(small_gt, read_detections(path), iterations=1)
    assert capsys.readouterr().err.count("warning:") == 1
    assert res.tp.tolist() == [True, False, True, False, False, True]
    assert res.fp.tolist() == [False, True, False, True, True, False]
    assert res.ap == pytest.approx(1 / 3 + 1 / 3 * 2 / 3 + 1 / 3 * 3 / 6, abs=1e-15)
    assert res.n_detections_unknown_image == 3 and res.to_document()["metrics"]["n_detections_unknown_image"] == 3
    # Records: each unknown id is an extra image without faces, so the bootstrap resamples its FPs.
    assert res.image_keys == ("img1", "img2", "img3", "ghost", "other")
    assert res.positives_per_image.tolist() == [2, 1, 0, 0, 0]
    assert [res.image_keys[i] for i in res.image_index] == ["img1", "ghost", "img2", "ghost", "other", "img1"]
    with pytest.raises(InputError, match="unknown image id 'ghost'") as info:
        evaluate(small_gt, read_detections(path), strict_ids=True)
    assert info.value.line == 2
    out_json = tmp_path / "r.json"
    code, out, err = run_cli(["eval", "afw", str(path), "--annotations", small_gt.path, "--out", str(out_json),
                              "--ci"], capsys)
    assert code == 0, err
    assert err.strip().splitlines() == [f"warning: {path}:2: 3 detection(s) with image ids not in gt.mat counted "
                                        "as false positives (first: 'ghost'; --strict-ids makes this an error)"]
    doc = json.loads(out_json.read_text())
    assert doc["metrics"]["n_detections_unknown_image"] == 3 and doc["metrics"]["n_fp"] == 3
    low, high = intervals_for_file(out_json)["ap"]
    assert low <= doc["metrics"]["ap"] <= high
    code, _, err = run_cli(["eval", "afw", str(path), "--annotations", small_gt.path, "--strict-ids"], capsys)
    assert code == 2 and err.strip() == (f"error: {path}:2: unknown image id 'ghost': not in gt.mat "
                                         "(3 detections with unknown ids in all)")


def test_11point_ap_is_nan_like_the_toolbox(tmp_path, small_gt):
    # A leading dropped detection gives a NaN precision; the toolbox's max over recall >= 0 keeps it: NaN.
    rows = ["img1 0.99 600 100 699 199", "img1 0.9 100 100 199 199"]
    res = evaluate(small_gt, read_detections(det_file(tmp_path, rows)), iterations=1)
    assert res.ap == pytest.approx(1 / 3) and np.isnan(res.ap_11point)
    assert res.to_document()["metrics"]["ap_11point"] is None
    assert np.isnan(voc_ap_11point(np.array([0.0, 0.5]), np.array([np.nan, 1.0])))
    assert voc_ap_11point(np.array([]), np.array([])) == 0.0


def test_a_run_that_found_nothing_scores_zero_ap(tmp_path):
    import json

    from facebench.datasets import AFW
    from facebench.results import write_document

    annotations = write_struct_annotations(tmp_path / "gt.mat", GT_IMAGES)
    bench = AFW(annotations=annotations, images_dir=tmp_path)
    empty = bench.write_predictions(tmp_path / "pred", {})
    assert empty.read_text() == ""
    scored = bench.evaluate(empty)
    assert scored.metrics == {"ap": 0.0} and "0 detections" in scored.table()
    write_document(scored.document({}), tmp_path / "r.json")  # NaN-free, valid result JSON
    assert json.loads((tmp_path / "r.json").read_text())["metrics"]["ap"] == 0.0


def test_a_mat_file_that_crashes_the_reader_is_a_one_line_error(tmp_path, monkeypatch):
    import os
    import signal

    from facebench import io_mat

    if not hasattr(os, "fork"):
        pytest.skip("the reader runs in a forked child only where fork exists")
    path = write_struct_annotations(tmp_path / "gt.mat", GT_IMAGES)
    assert io_mat.load_mat(path)  # a normal file reads in the child and comes back
    monkeypatch.setattr(io_mat, "_load_v5", lambda p: os.kill(os.getpid(), signal.SIGSEGV))  # as scipy can
    with pytest.raises(InputError, match="the reader crashed .signal 11") as info:
        io_mat.load_mat(path)
    assert info.value.path == str(path)


@pytest.mark.parametrize("ignored", [False, True])
def test_zero_height_boxes_that_only_touch_do_not_intersect(ignored):
    """The toolbox's intersection test is strict in y as in x: a zero-height detection on a zero-height face is
    no hit (so it is not dropped as a hit on an ignored face either)."""
    box = np.array([[0.0, 5.0, 40.0, 5.0]])
    out = match_detections(np.array([0]), box, box.copy(), np.array([ignored]), np.array([0, 1]))
    assert out.tp.tolist() == [False] and out.fp.tolist() == [True] and out.dropped.tolist() == [False]


def test_box_correction_uses_widths_without_plus_one():
    from protocols.face_eval.evaluate import fit_correction

    fit = fit_correction(np.array([[0.0, 0, 10, 10]]), np.array([[2.0, 1, 12, 13]]))
    assert (fit.tx, fit.ty, fit.sx, fit.sy, fit.n_tp) == pytest.approx((0.2, 0.2, 1.0, 1.2, 1))
