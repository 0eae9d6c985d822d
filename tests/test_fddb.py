"""FDDB protocol: the spec §6.2 mini cases, matching, merging, output format, readers and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facebench.errors import InputError
from protocols import fddb
from protocols.fddb import matching, reference
from protocols.fddb.raster import CONVENTIONS

# spec §6.2, rebuilt: images (sizes), annotations, rectangle and ellipse detections
MINI_LIST = "a/imgA\nb/imgB\nc/imgC\n"
MINI_ELLIPSES = ("a/imgA\n2\n20 15 1.570796 40 50 1\n10 8 0.3 80 20 1\n"
                 "b/imgB\n1\n30 20 -1.4 50 40 1\nc/imgC\n1\n10 10 0 25 25 1\n")
MINI_SIZES = "image\twidth\theight\na/imgA\t100\t100\nb/imgB\t60\t80\nc/imgC\t50\t50\n"
MINI_RECTS = ("a/imgA\n4\n25 30 30 40 0.9\n70.5 12.5 20 16 0.8\n5 5 10 10 0.95\n30 35 20 30 0.5\n"
              "b/imgB\n1\n30 10 40 60 0.7\nc/imgC\n0\n")
MINI_ELLIPSE_DETS = ("a/imgA\n2\n19.5 14.5 1.55 40.4 50.5 0.9\n6 4 0.3 80 20 0.6\n"
                     "b/imgB\n1\n28 21 -1.3 49.5 40.5 0.7\nc/imgC\n0\n")
SPEC_RECT_DISC = "0.75 2 0.5\n0.75 1 0.7\n0.5 1 0.8\n0.25 1 0.9\n0 1 0.95\n0 0 1.79769e+308\n"
SPEC_RECT_CONT = "0.594452 2\n0.594452 1\n0.385708 1\n0.194532 1\n0 1\n0 0\n"
SPEC_ELL_DISC = "0.5 1 0.6\n0.5 0 0.7\n0.25 0 0.9\n0 0 1.79769e+308\n"
SPEC_ELL_CONT = "0.532455 1\n0.452784 0\n0.223711 0\n0 0\n"


def write_mini_case(root: Path, newline: str = "\n") -> dict[str, Path]:
    """The §6.2 inputs as files under `root` (fold 01 only), with the given line ends."""
    folds = root / "folds"
    folds.mkdir(parents=True, exist_ok=True)
    files = {"folds": folds, "list": folds / "FDDB-fold-01.txt", "ellipses": folds / "FDDB-fold-01-ellipseList.txt",
             "sizes": root / "sizes.tsv", "rects": root / "rects.txt", "ellipse_dets": root / "ellipse_dets.txt"}
    texts = {"list": MINI_LIST, "ellipses": MINI_ELLIPSES, "sizes": MINI_SIZES, "rects": MINI_RECTS,
             "ellipse_dets": MINI_ELLIPSE_DETS}
    for key, text in texts.items():
        files[key].write_bytes(text.replace("\n", newline).encode())
    return files


@pytest.fixture()
def mini(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))
    return write_mini_case(tmp_path)


def load(files, fmt="rect"):
    """Ground truth (fold 01), sizes and detections of a written mini case."""
    gt = fddb.load_folds(files["folds"], ["01"])
    sizes = fddb.read_size_table(files["sizes"], gt)
    dets = fddb.read_detections(files["rects" if fmt == "rect" else "ellipse_dets"], gt, fmt)
    return gt, sizes, dets


# -- spec §6.2 ------------------------------------------------------------------------------------------------


def test_mini_case_rectangles_official(mini):
    gt, sizes, dets = load(mini, "rect")
    result = fddb.evaluate(gt, dets, sizes, "opencv4")
    assert fddb.disc_roc_text(result.curve) == SPEC_RECT_DISC
    assert fddb.cont_roc_text(result.curve) == SPEC_RECT_CONT


def test_mini_case_ellipses_official(mini):
    gt, sizes, dets = load(mini, "ellipse")
    result = fddb.evaluate(gt, dets, sizes, "opencv4")
    assert fddb.disc_roc_text(result.curve) == SPEC_ELL_DISC
    assert fddb.cont_roc_text(result.curve) == SPEC_ELL_CONT


def test_mini_case_mask_facts(mini):
    gt, sizes, dets = load(mini, "rect")
    ov = fddb.pair_overlaps(gt, dets, sizes, "opencv4")
    assert ov.face_area.tolist() == [989, 273, 1528, 347]  # E3 clipped by the image
    assert ov.det_area.tolist() == [1271, 357, 121, 651, 1830]
    pairs = {(int(f), int(d)): round(float(s), 6) for f, d, s in zip(ov.face, ov.det, ov.score)}
    assert pairs == {(0, 0): 0.778127, (0, 3): 0.658241, (1, 1): 0.764706, (2, 4): 0.834973}
    gt, sizes, dets = load(mini, "ellipse")
    ov = fddb.pair_overlaps(gt, dets, sizes, "opencv4")
    pairs = {(int(f), int(d)): round(float(s), 6) for f, d, s in zip(ov.face, ov.det, ov.score)}
    assert pairs == {(0, 0): 0.894843, (1, 1): 0.318681, (2, 2): 0.916294}


def test_mini_case_rectangles_negated_angle_same_as_official(mini):
    """E3's mirror image has the same overlap with the rectangle symmetric about its centre column."""
    gt, sizes, dets = load(mini, "rect")
    result = fddb.evaluate(gt, dets, sizes, "negated-angle")
    assert fddb.disc_roc_text(result.curve) == SPEC_RECT_DISC
    assert fddb.cont_roc_text(result.curve) == SPEC_RECT_CONT


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("fmt", ["rect", "ellipse"])
def test_mini_case_equals_straightforward_reference(mini, convention, fmt):
    gt, sizes, dets = load(mini, fmt)
    result = fddb.evaluate(gt, dets, sizes, convention)
    reference = fddb.evaluate_reference(gt, dets, sizes, convention)
    assert fddb.disc_roc_text(result.curve) == fddb.disc_roc_text(reference)
    assert fddb.cont_roc_text(result.curve) == fddb.cont_roc_text(reference)
    # every convention keeps the discrete curve of the mini cases
    assert fddb.disc_roc_text(result.curve) == (SPEC_RECT_DISC if fmt == "rect" else SPEC_ELL_DISC)


def test_crlf_and_bare_cr_files_read_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBENCH_CACHE", "")
    texts = []
    for i, newline in enumerate(["\n", "\r\n", "\r"]):
        files = write_mini_case(tmp_path / str(i), newline)
        gt, sizes, dets = load(files, "rect")
        texts.append(fddb.disc_roc_text(fddb.evaluate(gt, dets, sizes, "opencv4").curve))
    assert texts == [SPEC_RECT_DISC] * 3


def test_roc_files_written_in_official_format(mini, tmp_path):
    gt, sizes, dets = load(mini, "rect")
    result = fddb.evaluate(gt, dets, sizes, "opencv4")
    disc, cont = result.write_roc(tmp_path / "out" / "temp")
    assert disc.name == "tempDiscROC.txt" and cont.name == "tempContROC.txt"
    assert disc.read_bytes() == SPEC_RECT_DISC.encode()
    assert cont.read_bytes() == SPEC_RECT_CONT.encode()


# -- matching (spec §2.4) -------------------------------------------------------------------------------------


def _synthetic(faces_per_image, scores_per_image, edges):
    """Ground truth / detections / overlaps built directly (edges: (image, face, det, overlap) local)."""
    n = len(faces_per_image)
    face_start = np.concatenate([[0], np.cumsum(faces_per_image)]).astype(np.int64)
    counts = [len(s) for s in scores_per_image]
    det_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    gt = fddb.FddbGroundTruth(images=tuple(f"img{i}" for i in range(n)), face_start=face_start,
                              ellipses=np.ones((int(face_start[-1]), 5)), origin_file=np.zeros(n, dtype=np.int64),
                              origin_line=np.ones(n, dtype=np.int64), files=("x",), source="synthetic")
    scores = np.array([s for ss in scores_per_image for s in ss], dtype=np.float64)
    dets = fddb.FddbDetections(format="rect", det_start=det_start, regions=np.zeros((len(scores), 4)),
                               scores=scores, files=("y",))
    face = np.array([face_start[i] + f for i, f, _, _ in edges], dtype=np.int64)
    det = np.array([det_start[i] + d for i, _, d, _ in edges], dtype=np.int64)
    score = np.array([v for *_, v in edges], dtype=np.float64)
    ov = fddb.PairOverlaps(face=face, det=det, score=score, face_area=np.ones(len(face_start) - 1),
                           det_area=np.ones(len(scores)))
    return gt, dets, ov


def _brute_entries(gt, dets, ov):
    """Per image, per unique score: Hungarian on the filtered dense matrix (the official recipe)."""
    out = []
    for img in range(gt.n_images):
        f0, f1 = gt.face_start[img], gt.face_start[img + 1]
        d0, d1 = dets.det_start[img], dets.det_start[img + 1]
        dense = np.zeros((f1 - f0, d1 - d0))
        sel = (ov.face >= f0) & (ov.face < f1)
        dense[ov.face[sel] - f0, ov.det[sel] - d0] = ov.score[sel]
        scores = dets.scores[d0:d1]
        if d1 == d0:
            out.append((img, fddb.DBL_MAX, 0, 0.0, 0, 0))
        for s in sorted(set(scores.tolist())):
            valid = scores >= s
            total, disc = matching.hungarian_counts(matching.filtered_matrix(dense, valid))
            out.append((img, s, int(valid.sum()), total, disc, int(valid.sum()) - disc))
    return out


def _entries_list(e: fddb.ImageEntries):
    return [(int(i), float(t), int(v), float(c), int(d), int(f))
            for i, t, v, c, d, f in zip(e.image, e.threshold, e.valid, e.tp_cont, e.tp_disc, e.fp)]


def test_hungarian_maximises_the_overlap_sum_not_greedy():
    # D1 (0.9) overlaps A 0.6 and B 0.55; D2 (0.8) overlaps A 0.58 only.
    gt, dets, ov = _synthetic([2], [[0.9, 0.8]], [(0, 0, 0, 0.6), (0, 1, 0, 0.55), (0, 0, 1, 0.58)])
    got = _entries_list(fddb.image_entries(gt, dets, ov))
    assert got[0][:3] == (0, 0.8, 2) and got[0][4:] == (2, 0) and got[0][3] == pytest.approx(1.13)
    assert got[1][:3] == (0, 0.9, 1) and got[1][4:] == (1, 0) and got[1][3] == pytest.approx(0.6)


def test_matched_pair_at_or_below_half_counts_in_cont_but_is_a_false_positive():
    gt, dets, ov = _synthetic([1], [[0.7]], [(0, 0, 0, 0.5)])
    (entry,) = _entries_list(fddb.image_entries(gt, dets, ov))
    assert entry == (0, 0.7, 1, 0.5, 0, 1)


def test_image_without_detections_gets_the_dbl_max_entry():
    gt, dets, ov = _synthetic([2, 1], [[], [0.3]], [(1, 0, 0, 0.9)])
    got = _entries_list(fddb.image_entries(gt, dets, ov))
    assert got == [(0, fddb.DBL_MAX, 0, 0.0, 0, 0), (1, 0.3, 1, 0.9, 1, 0)]
    curve = fddb.merge_entries(fddb.image_entries(gt, dets, ov))
    assert fddb.disc_roc_text(curve) == f"{1/3:.6g} 0 0.3\n0 0 1.79769e+308\n"


def test_star_shortcut_equals_hungarian_on_random_graphs():
    """The vectorised matching (stars in closed form, the rest by scipy) equals per-threshold Hungarian."""
    rng = np.random.default_rng(0)
    faces, scores, edges = [], [], []
    for img in range(400):
        nf = int(rng.integers(0, 5))
        nd = int(rng.integers(0, 9))
        faces.append(nf)
        # few distinct scores so that thresholds group several detections
        scores.append(rng.choice([0.1, 0.2, 0.5, 0.55, 0.9, 0.95], nd).tolist())
        for f in range(nf):
            for d in range(nd):
                if rng.random() < 0.35:
                    edges.append((img, f, d, float(rng.choice([rng.uniform(0.01, 1.0), 0.5, 0.75]))))
    gt, dets, ov = _synthetic(faces, scores, edges)
    got = _entries_list(fddb.image_entries(gt, dets, ov))
    want = _brute_entries(gt, dets, ov)
    assert [g[:3] + g[4:] for g in got] == [w[:3] + w[4:] for w in want]
    assert np.allclose([g[3] for g in got], [w[3] for w in want], rtol=0, atol=1e-12)
    # small chunks exercise the chunked path
    small = _entries_list(fddb.image_entries(gt, dets, ov, chunk_instances=50))
    assert small == got


def test_merge_equals_the_official_list_merge():
    rng = np.random.default_rng(4)
    faces, scores, edges = [], [], []
    for img in range(120):
        nf, nd = int(rng.integers(0, 4)), int(rng.integers(0, 6))
        faces.append(nf)
        scores.append(np.round(rng.uniform(0, 1, nd), 2).tolist())
        edges += [(img, f, d, float(rng.uniform(0.05, 1))) for f in range(nf) for d in range(nd) if rng.random() < 0.4]
    gt, dets, ov = _synthetic(faces, scores, edges)
    entries = fddb.image_entries(gt, dets, ov)
    curve = fddb.merge_entries(entries)
    cumulative: list = []
    for img in range(gt.n_images):
        s, t = entries.start[img], entries.start[img + 1]
        rows = [(float(entries.threshold[k]), int(entries.faces[img]), float(entries.tp_cont[k]),
                 float(entries.tp_disc[k]), float(entries.fp[k])) for k in range(s, t)]
        cumulative = reference.official_merge(cumulative, rows)
    assert curve.threshold.tolist() == [r[0] for r in cumulative]
    assert curve.n_faces == cumulative[0][1]
    assert curve.tp_disc.tolist() == [r[3] for r in cumulative]
    assert curve.fp.tolist() == [r[4] for r in cumulative]
    assert np.allclose(curve.tp_cont, [r[2] for r in cumulative], rtol=0, atol=1e-11)


# -- output format and summary figures -------------------------------------------------------------------------


@pytest.mark.parametrize("value, text", [(0.8963450009669309, "0.896345"), (249.0, "249"),
                                         (fddb.DBL_MAX, "1.79769e+308"), (0.0, "0"), (1234567.0, "1.23457e+06"),
                                         (0.5, "0.5"), (1e-5, "1e-05")])
def test_cpp_stream_number_format(value, text):
    assert fddb.format_number(value) == text


def test_no_faces_prints_zero_rates():
    curve = fddb.RocCurve(threshold=np.array([0.5, fddb.DBL_MAX]), n_faces=0, tp_disc=np.array([0, 0]),
                          tp_cont=np.zeros(2), fp=np.array([3, 0]))
    assert fddb.disc_roc_text(curve) == "0 0 0.5\n0 0 1.79769e+308\n"
    assert fddb.cont_roc_text(curve) == "0 0\n0 0\n"


def test_tpr_at_fp_rules():
    fp = np.array([1200, 1000, 999, 400, 0])
    tpr = np.array([0.95, 0.93, 0.90, 0.94, 0.50])  # not monotone: re-optimised matching
    assert fddb.tpr_at_fp(tpr, fp, 1000, "max") == 0.94
    # face-eval: columns sorted on their own; first row with FP < 1000 is row 2 -> third largest TPR
    assert fddb.tpr_at_fp(tpr, fp, 1000, "strict") == 0.93
    assert fddb.tpr_at_fp(tpr, fp + 5000, 1000, "max") is None
    assert fddb.tpr_at_fp(tpr, fp + 5000, 1000, "strict") is None
    with pytest.raises(ValueError):
        fddb.tpr_at_fp(tpr, fp, 10, "mean")


def test_result_document_and_records(mini, tmp_path):
    gt, sizes, dets = load(mini, "rect")
    result = fddb.evaluate(gt, dets, sizes, "negated-angle")
    doc = result.to_document(extra={"evaluation_seconds": 0.1})
    for key in ("schema", "benchmark", "protocol", "settings", "metrics", "curves", "ground_truth_sha256",
                "facebench_version", "git_commit", "created", "counts"):
        assert key in doc
    assert doc["protocol"] == {"name": "fddb", "version": fddb.PROTOCOL_VERSION}
    assert doc["settings"]["ellipse_convention"] == "negated-angle"
    assert doc["metrics"]["disc_tpr_at_1000fp"] == 0.75
    assert doc["metrics"]["cont_tpr_at_1000fp"] == pytest.approx(0.594452, abs=1e-6)
    for kind in ("disc", "cont"):
        for k in fddb.SUMMARY_FP:
            assert f"{kind}_tpr_at_{k}fp" in doc["metrics"] and f"{kind}_tpr_at_{k}fp_strict" in doc["metrics"]
    assert doc["curves"]["disc"]["fp"] == [2, 1, 1, 1, 1, 0]
    assert doc["curves"]["disc"]["threshold"][-1] == fddb.DBL_MAX
    json.dumps(doc, allow_nan=False)
    path = tmp_path / "r.records.npz"
    result.save_records(path)
    with np.load(path) as rec:
        assert set(rec.files) >= {"image_ids", "faces", "entry_start", "entry_threshold", "entry_valid",
                                  "entry_tp_cont", "entry_tp_disc", "entry_fp", "meta"}
        entries = fddb.ImageEntries(start=rec["entry_start"], threshold=rec["entry_threshold"],
                                    valid=rec["entry_valid"], tp_cont=rec["entry_tp_cont"],
                                    tp_disc=rec["entry_tp_disc"], faces=rec["faces"])
        assert rec["image_ids"].tolist() == ["a/imgA", "b/imgB", "c/imgC"]
    assert fddb.disc_roc_text(fddb.merge_entries(entries)) == SPEC_RECT_DISC


# -- readers and bad input -------------------------------------------------------------------------------------


def _error(excinfo) -> str:
    return str(excinfo.value)


def test_annotation_file_names_the_images(mini, tmp_path):
    path = tmp_path / "all.txt"
    path.write_text(MINI_ELLIPSES)
    gt = fddb.load_annotations(path)
    assert gt.images == ("a/imgA", "b/imgB", "c/imgC") and gt.n_faces == 4 and gt.folds == ()
    assert gt.where(1) == (str(path), 5)


def test_count_lines_read_their_leading_integer_and_blank_lines_between_images(mini):
    gt, sizes, _ = load(mini)
    text = "a/imgA\n4.0\n25 30 30 40 0.9\n70.5 12.5 20 16 0.8\n5 5 10 10 0.95\n30 35 20 30 0.5\n\n" \
           "b/imgB\n 1\n30 10 40 60 0.7\n\nc/imgC\n0\n\n"
    mini["rects"].write_text(text)
    dets = fddb.read_detections(mini["rects"], gt, "rect")
    assert np.diff(dets.det_start).tolist() == [4, 1, 0]
    assert fddb.disc_roc_text(fddb.evaluate(gt, dets, sizes, "opencv4").curve) == SPEC_RECT_DISC


@pytest.mark.parametrize("text, line, message", [
    ("a/imgA\n0\nb/imgX\n0\nc/imgC\n0\n", 3, "not in the image list"),
    ("a/imgA\n0\nc/imgC\n0\nb/imgB\n0\n", 3, "listed elsewhere"),
    ("a/imgA\n9\n25 30 30 40 0.9\n", 2, "announces 9 detections"),
    ("a/imgA\n2\n25 30 30 40 0.9\nb/imgB\n0\nc/imgC\n0\n", 4, "expected 5 numbers"),
    ("a/imgA\n1\n25 30 30 40\nb/imgB\n0\nc/imgC\n0\n", 3, "expected 5 numbers"),
    ("a/imgA\n1\n25 30 30 x 0.9\nb/imgB\n0\nc/imgC\n0\n", 3, "not a number"),
    ("a/imgA\n1\n25 30 30 40 nan\nb/imgB\n0\nc/imgC\n0\n", 3, "finite"),
    ("a/imgA\n-1\nb/imgB\n0\nc/imgC\n0\n", 2, "negative"),
    ("a/imgA\nmany\n", 2, "expected the number of detections"),
    ("a/imgA\n", 1, "no count line"),
    ("a/imgA\n" + "9" * 5000 + "\n", 2, "is too large"),  # past int()'s 4300-digit limit
])
def test_bad_detection_files_name_file_and_line(mini, text, line, message):
    gt, _, _ = load(mini)
    mini["rects"].write_text(text)
    with pytest.raises(InputError) as excinfo:
        fddb.read_detections(mini["rects"], gt, "rect")
    assert f"{mini['rects']}:{line}:" in _error(excinfo)
    assert message in _error(excinfo)


def test_detections_missing_trailing_images(mini):
    gt, _, _ = load(mini)
    mini["rects"].write_text("a/imgA\n0\nb/imgB\n0\n")
    with pytest.raises(InputError, match="end after 2 of 3 images"):
        fddb.read_detections(mini["rects"], gt, "rect")


@pytest.mark.parametrize("axes", ["0 0", "0.4 14.5", "-0.5 0", "19.5 -0.9"])
def test_ellipse_axes_truncating_to_zero_are_valid(mini, axes):
    """Spec §2.3: semi-axes are truncated toward zero and ra = rb = 0 paints the centre pixel."""
    gt, sizes, _ = load(mini)
    mini["ellipse_dets"].write_text(f"a/imgA\n1\n{axes} 1.55 40.4 50.5 0.9\nb/imgB\n0\nc/imgC\n0\n")
    dets = fddb.read_detections(mini["ellipse_dets"], gt, "ellipse")
    ov = fddb.pair_overlaps(gt, dets, sizes, "opencv4", cache=False)
    assert ov.det_area[0] >= 1  # at least the centre pixel
    mini["ellipses"].write_text(MINI_ELLIPSES.replace("10 8 0.3", f"{axes} 0.3"))
    assert fddb.load_folds(mini["folds"], ["01"]).ellipses[1, :2].tolist() == [float(v) for v in axes.split()]


@pytest.mark.parametrize("axes", ["-1 14.5", "19.5 -1.2"])
def test_ellipse_detections_with_negative_axes_are_rejected(mini, axes):
    gt, _, _ = load(mini)
    mini["ellipse_dets"].write_text(f"a/imgA\n1\n{axes} 1.55 40.4 50.5 0.9\nb/imgB\n0\nc/imgC\n0\n")
    with pytest.raises(InputError) as excinfo:
        fddb.read_detections(mini["ellipse_dets"], gt, "ellipse")
    assert f"{mini['ellipse_dets']}:3:" in _error(excinfo) and "negative" in _error(excinfo)


def test_annotations_need_non_negative_axes(mini):
    mini["ellipses"].write_text(MINI_ELLIPSES.replace("10 8 0.3", "10 -8 0.3"))
    with pytest.raises(InputError) as excinfo:
        fddb.load_folds(mini["folds"], ["01"])
    assert f"{mini['ellipses']}:4:" in _error(excinfo)


def test_fold_list_without_its_ellipse_list(mini):
    (mini["folds"] / "FDDB-fold-02.txt").write_text("z/imgZ\n")
    with pytest.raises(InputError) as excinfo:
        fddb.load_folds(mini["folds"])
    assert "FDDB-fold-02.txt" in _error(excinfo) and "without its ellipse list" in _error(excinfo)


def test_ellipse_list_must_follow_the_fold_list(mini):
    mini["list"].write_text("a/imgA\nc/imgC\nb/imgB\n")
    with pytest.raises(InputError) as excinfo:
        fddb.load_folds(mini["folds"], ["01"])
    assert f"{mini['ellipses']}:5:" in _error(excinfo)


def test_missing_size_entry_names_the_image_line(mini):
    gt = fddb.load_folds(mini["folds"], ["01"])
    mini["sizes"].write_text("a/imgA 100 100\nc/imgC 50 50\n")
    with pytest.raises(InputError) as excinfo:
        fddb.read_size_table(mini["sizes"], gt)
    assert f"{mini['ellipses']}:5:" in _error(excinfo) and "b/imgB" in _error(excinfo)


@pytest.mark.parametrize("text, line", [("a/imgA 100\n", 1), ("image width height\na/imgA 100 x\n", 2),
                                        ("a/imgA 100 0\n", 1), ("a/imgA 100 100\na/imgA 100 90\n", 2)])
def test_bad_size_tables(mini, text, line):
    gt = fddb.load_folds(mini["folds"], ["01"])
    mini["sizes"].write_text(text)
    with pytest.raises(InputError) as excinfo:
        fddb.read_size_table(mini["sizes"], gt)
    assert f"{mini['sizes']}:{line}:" in _error(excinfo)


def test_sizes_from_image_files(mini, tmp_path):
    from PIL import Image

    gt = fddb.load_folds(mini["folds"], ["01"])
    for name, (w, h) in {"a/imgA": (100, 100), "b/imgB": (60, 80), "c/imgC": (50, 50)}.items():
        path = tmp_path / "images" / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (w, h)).save(path)
    sizes = fddb.read_image_sizes(tmp_path / "images", gt)
    assert sizes.width.tolist() == [100, 60, 50] and sizes.height.tolist() == [100, 80, 50]
    (tmp_path / "images" / "c" / "imgC.jpg").unlink()
    with pytest.raises(InputError, match="c/imgC"):
        fddb.read_image_sizes(tmp_path / "images", gt)


def test_detection_folder_of_fold_files(mini, tmp_path):
    gt, sizes, _ = load(mini)
    folder = tmp_path / "dets"
    folder.mkdir()
    (folder / "fold-01-out.txt").write_text(MINI_RECTS)
    dets = fddb.read_detections(folder, gt, "rect")
    assert dets.count == 5
    with pytest.raises(InputError, match="no fold-XX-out.txt"):
        fddb.read_detections(mini["folds"], gt, "rect")


def test_an_empty_fold_file_is_named_before_the_next_file_is_blamed(mini, tmp_path, capsys):
    import dataclasses

    gt = dataclasses.replace(load(mini)[0], folds=())  # every fold file in the folder is read, as one file
    folder = tmp_path / "dets"
    folder.mkdir()
    (folder / "fold-01-out.txt").write_text("\n")
    (folder / "fold-02-out.txt").write_text(MINI_RECTS)
    assert fddb.read_detections(folder, gt, "rect").count == 5
    assert "fold-01-out.txt: empty fold file" in capsys.readouterr().err


def test_cache_gives_identical_results(mini, tmp_path, monkeypatch):
    gt, sizes, dets = load(mini, "rect")
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "c2"))
    first = fddb.evaluate(gt, dets, sizes, "opencv21")
    assert list((tmp_path / "c2").glob("fddb_faces_*.npz"))
    second = fddb.evaluate(gt, dets, sizes, "opencv21")
    uncached = fddb.evaluate(gt, dets, sizes, "opencv21", cache=False)
    texts = {fddb.cont_roc_text(r.curve) for r in (first, second, uncached)}
    assert len(texts) == 1


# -- regions that paint nothing, huge numbers, field counts, ASCII numbers, size tables ------------------------


def _one_image(tmp_path, faces: str, dets: str, size: str = "50 50"):
    """Ground truth, sizes and detections of one image x/img written under tmp_path."""
    (tmp_path / "ann.txt").write_text(f"x/img\n{faces}")
    (tmp_path / "sizes.tsv").write_text(f"x/img {size}\n")
    (tmp_path / "det.txt").write_text(f"x/img\n{dets}")
    gt = fddb.load_annotations(tmp_path / "ann.txt")
    return gt, fddb.read_size_table(tmp_path / "sizes.tsv", gt), tmp_path / "det.txt"


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_faces_beside_the_image_have_area_zero_and_still_count(tmp_path, monkeypatch, convention):
    """Regions within the image's rows but left or right of it paint 0 pixels (was an IndexError)."""
    monkeypatch.setenv("FACEBENCH_CACHE", "")
    gt, sizes, path = _one_image(tmp_path, "2\n10 5 0 -20 15 1\n5 4 0 80 15 1\n", "1\n0 0 10 10 0.9\n")
    dets = fddb.read_detections(path, gt, "rect")
    result = fddb.evaluate(gt, dets, sizes, convention)
    assert fddb.pair_overlaps(gt, dets, sizes, convention).face_area.tolist() == [0, 0]
    assert fddb.disc_roc_text(result.curve) == "0 1 0.9\n" and result.curve.n_faces == 2
    ellipse_path = tmp_path / "edet.txt"
    ellipse_path.write_text("x/img\n1\n10 5 0 -20 15 0.9\n")
    edets = fddb.read_detections(ellipse_path, gt, "ellipse")
    assert fddb.disc_roc_text(fddb.evaluate(gt, edets, sizes, convention).curve) == "0 1 0.9\n"


def test_huge_rectangle_covers_the_whole_image_without_warnings(tmp_path, monkeypatch):
    import warnings

    monkeypatch.setenv("FACEBENCH_CACHE", "")
    texts = set()
    for box in ("-1000 -1000 2000 2000", "-1e20 -1e20 2e20 2e20", "-1e300 -1e300 1e308 1e308", "0 0 1e308 1e308"):
        gt, sizes, path = _one_image(tmp_path, "1\n10 10 0 25 25 1\n", f"1\n{box} 0.9\n")
        dets = fddb.read_detections(path, gt, "rect")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = fddb.evaluate(gt, dets, sizes, "opencv4")
        assert fddb.pair_overlaps(gt, dets, sizes, "opencv4").det_area.tolist() == [2500]
        texts.add(fddb.cont_roc_text(result.curve))
    assert texts == {"0.1388 1\n"}  # 347 / 2500


@pytest.mark.parametrize("angle", ["1e300", "-4e7"])
def test_huge_ellipse_angle_is_an_input_error(tmp_path, angle):
    (tmp_path / "ann.txt").write_text(f"x/img\n1\n20 5 {angle} 25 25 1\n")
    with pytest.raises(InputError) as excinfo:
        fddb.load_annotations(tmp_path / "ann.txt")
    assert f"{tmp_path / 'ann.txt'}:3:" in _error(excinfo) and "angle" in _error(excinfo)
    gt, _, path = _one_image(tmp_path, "1\n10 10 0 25 25 1\n", f"1\n20 5 {angle} 25 25 0.9\n")
    with pytest.raises(InputError, match=f"{path}:3: ellipse angle"):
        fddb.read_detections(path, gt, "ellipse")


@pytest.mark.parametrize("text, line, message", [
    # an ellipse line among rectangles: the count of the first region line decides
    ("a/imgA\n2\n25 30 30 40 0.9\n19.5 14.5 1.55 40.4 50.5 0.9\nb/imgB\n0\nc/imgC\n0\n", 4, "6 fields"),
    ("a/imgA\n0\nb/imgB\n1\n30 10 40 60 0.7 1\nc/imgC\n1\n1 1 5 5 0.1\n", 8, "first region line (line 5) has 6"),
    ("a/imgA\n1\n25 30 30 40 0.9 7 junk\nb/imgB\n1\n30 10 40 60 0.7\nc/imgC\n0\n", 3, "not a number: 'junk'"),
    ("a/imgA\n1\n25 30 30 40 0.9 x\nb/imgB\n0\nc/imgC\n0\n", 3, "not a number: 'x'"),
    ("a/imgA\n1\n1_0 30 30 40 0.9\nb/imgB\n0\nc/imgC\n0\n", 3, "not a number: '1_0'"),
    ("a/imgA\n1\n\u0661\u0662 30 30 40 0.9\nb/imgB\n0\nc/imgC\n0\n", 3, "not a number"),
    ("a/imgA\n\u0661\nb/imgB\n0\nc/imgC\n0\n", 2, "expected the number of detections"),
])
def test_region_fields_must_be_consistent_ascii_numbers(mini, text, line, message):
    gt, _, _ = load(mini)
    mini["rects"].write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        fddb.read_detections(mini["rects"], gt, "rect")
    assert f"{mini['rects']}:{line}:" in _error(excinfo) and message in _error(excinfo)


def test_ellipse_file_read_as_rectangles_warns_once_and_evaluates(mini, capsys):
    gt, _, _ = load(mini)
    capsys.readouterr()
    dets = fddb.read_detections(mini["ellipse_dets"], gt, "rect")  # 6 numbers per line
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{mini['ellipse_dets']}:3:" in err[0] and "--format ellipse" in err[0]
    assert dets.regions[0].tolist() == [19.5, 14.5, 1.55, 40.4] and dets.scores[0] == 50.5  # first 5, as official
    fddb.read_detections(mini["rects"], gt, "rect")
    assert capsys.readouterr().err == ""


def test_count_lines_read_ascii_digits_like_cpp(mini):
    gt, _, _ = load(mini)
    mini["rects"].write_text("a/imgA\n1_0\n25 30 30 40 0.9\nb/imgB\n3abc\n1 1 2 2 0.1\n1 1 2 2 0.2\n1 1 2 2 0.3\n"
                             "c/imgC\n1e0\n1 1 2 2 0.4\n")
    assert np.diff(fddb.read_detections(mini["rects"], gt, "rect").det_start).tolist() == [1, 3, 1]


@pytest.mark.parametrize("first", ["a/imgA 100.0 100.0", "a/imgA 1e2 100", "image width height",
                                   "image\twidth\theight"])
def test_size_table_integer_valued_sizes_and_header(mini, first):
    gt = fddb.load_folds(mini["folds"], ["01"])
    mini["sizes"].write_text(f"{first}\na/imgA 100 100\nb/imgB 60 80\nc/imgC 50 50\n")
    sizes = fddb.read_size_table(mini["sizes"], gt)
    assert sizes.width.tolist() == [100, 60, 50] and sizes.height.tolist() == [100, 80, 50]


@pytest.mark.parametrize("text, line, message", [
    ("a/imgA 100.5 100\nb/imgB 60 80\nc/imgC 50 50\n", 1, "whole pixels"),
    ("b/imgB 60 80\na/imgA 100 99.9\nc/imgC 50 50\n", 2, "whole pixels"),
    ("a/imgA 1_00 100\nb/imgB 60 80\nc/imgC 50 50\n", 1, "integers"),
    ("a/imgA width 100\nb/imgB 60 80\nc/imgC 50 50\n", 1, "integers"),
    ("a/imgA \u0661\u0660 100\nb/imgB 60 80\nc/imgC 50 50\n", 1, "integers"),
    ("a/imgA 1e400 100\nb/imgB 60 80\nc/imgC 50 50\n", 1, "whole pixels"),
    ("a/imgA 1e10 100\nb/imgB 60 80\nc/imgC 50 50\n", 1, "beyond"),
])
def test_size_table_rejects_non_integer_sizes(mini, text, line, message):
    gt = fddb.load_folds(mini["folds"], ["01"])
    mini["sizes"].write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        fddb.read_size_table(mini["sizes"], gt)
    assert f"{mini['sizes']}:{line}:" in _error(excinfo) and message in _error(excinfo)


def test_tpr_at_k_includes_a_point_at_exactly_k_false_positives():
    assert fddb.tpr_at_fp(np.array([0.95, 0.5]), np.array([1000, 0]), 1000, "max") == 0.95
    assert fddb.tpr_at_fp(np.array([0.95, 0.5]), np.array([1001, 0]), 1000, "max") == 0.5


def test_a_detection_touching_only_the_last_row_of_a_face_still_overlaps(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBENCH_CACHE", "")
    (tmp_path / "folds").mkdir()
    (tmp_path / "folds" / "FDDB-fold-01.txt").write_text("c/imgC\n")
    (tmp_path / "folds" / "FDDB-fold-01-ellipseList.txt").write_text("c/imgC\n1\n10 10 0 25 25 1\n")
    (tmp_path / "sizes.tsv").write_text("image\twidth\theight\nc/imgC\t50\t50\n")
    gt = fddb.load_folds(tmp_path / "folds", ["01"])
    sizes = fddb.read_size_table(tmp_path / "sizes.tsv", gt)
    runs = fddb.face_runs(gt, sizes, "opencv21", cache=False)
    first, last = int(runs.row.min()), int(runs.row.max())
    for row in (first, last):
        (tmp_path / "dets.txt").write_text(f"c/imgC\n1\n15 {row} 20 0 0.9\n")  # a 21x1 box on that row
        overlaps = fddb.pair_overlaps(gt, fddb.read_detections(tmp_path / "dets.txt", gt, "rect"), sizes,
                                      cache=False)
        assert len(overlaps.face) == 1 and overlaps.score[0] > 0, row
