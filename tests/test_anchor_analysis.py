"""Figure-1 anchor analysis: hand-made cases, brute-force agreement, the CLI on tiny and real GT."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from detectors.hambox import anchor_analysis as aa
from tests.conftest import require


def _one_face(box, size=(64.0, 64.0)):
    return aa.FaceSet(np.array([box], dtype=np.float64), np.zeros(1, np.int64), np.array([size]))


def test_hand_made_face_on_an_anchor_centre():
    # ratio 1.0: P2 anchors are 16 px squares centred at (4i + 2, 4j + 2).
    # A 16x16 face centred at (18, 18) coincides with one P2 anchor (IoU 1); its neighbours shifted by 4 px
    # along one axis have IoU 12*16 / (2*256 - 192) = 0.6, diagonal ones 144 / 368 = 0.391, two cells away
    # 8*16 / 384 = 0.333 < 0.35. P3 anchors (32 px at 4 + 8i): the best (centre 20, 20) has 256 / 1024 = 0.25.
    cov = aa.face_coverage(_one_face([10, 10, 26, 26]), 1.0, threshold=0.35)
    assert cov.overlapping.tolist() == [9]
    assert cov.overlapping_per_level[0].tolist() == [9, 0, 0, 0, 0, 0]
    assert cov.assigned.tolist() == [9]
    assert cov.best_iou[0] == pytest.approx(1.0) and cov.best_level[0] == 0
    row = aa.summarize_coverage(cov)
    assert row["share_matchable"] == 1.0 and row["mean_matched_per_face"] == 9.0


def test_hand_made_small_face_cannot_match():
    # A 5x5 face against the smallest 0.68 anchor (10.88 px): at best 25 / 118.37 = 0.211.
    cov = aa.face_coverage(_one_face([20, 20, 25, 25]), 0.68)
    assert cov.overlapping.tolist() == [0] and cov.assigned.tolist() == [0]
    assert cov.best_iou[0] == pytest.approx(25 / (10.88 ** 2), rel=1e-9)
    assert aa.summarize_coverage(cov)["share_matchable"] == 0.0


def test_competing_faces_share_anchors_by_highest_iou():
    # Two identical faces: each overlaps the same anchors; the SMS step gives all of them to face 0.
    faces = aa.FaceSet(np.array([[10, 10, 26, 26], [10, 10, 26, 26]], float), np.zeros(2, np.int64),
                       np.array([[64.0, 64.0]]))
    cov = aa.face_coverage(faces, 1.0)
    assert cov.overlapping.tolist() == [9, 9] and cov.assigned.tolist() == [9, 0]


def test_frame_bound_removes_anchors_outside_the_image():
    # A 16 px face at (0, 0); ratio 1.0 P2 anchors (16 px) centred at 2, 6, 10, 14 along each axis overlap it
    # by 10, 14, 14, 10 px: IoU >= 0.35 for the 14x14 (0.620) and 14x10 (0.376) pairs -> 4 + 8 = 12 anchors.
    # An 8 px frame has only the cells at 2 and 6: (6, 6) -> 0.620, (2, 6), (6, 2) -> 0.376, (2, 2) -> 0.243.
    small = aa.face_coverage(_one_face([0, 0, 16, 16], size=(8.0, 8.0)), 1.0)
    unbounded = aa.face_coverage(_one_face([0, 0, 16, 16], size=(np.inf, np.inf)), 1.0)
    assert small.overlapping_per_level[0, 0] == 3
    assert unbounded.overlapping_per_level[0, 0] == 12


def _brute(faces, ratio, strides, threshold):
    over = np.zeros(faces.n_faces, int)
    assigned = np.zeros(faces.n_faces, int)
    for frame in np.unique(faces.frame_ids):
        width, height = faces.frame_sizes[frame]
        idx = np.nonzero(faces.frame_ids == frame)[0]
        b = faces.boxes[idx]
        anchors = []
        for s, a in zip(strides, aa.anchor_sides(ratio, strides)):
            cx, cy = np.meshgrid((np.arange(int(np.ceil(width / s))) + 0.5) * s,
                                 (np.arange(int(np.ceil(height / s))) + 0.5) * s)
            anchors.append(np.stack([cx.ravel() - a / 2, cy.ravel() - a / 2, cx.ravel() + a / 2, cy.ravel() + a / 2], 1))
        a = np.concatenate(anchors)
        ix = np.clip(np.minimum(b[:, None, 2], a[None, :, 2]) - np.maximum(b[:, None, 0], a[None, :, 0]), 0, None)
        iy = np.clip(np.minimum(b[:, None, 3], a[None, :, 3]) - np.maximum(b[:, None, 1], a[None, :, 1]), 0, None)
        inter = ix * iy
        iou = inter / (((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[:, None] + ((a[:, 2] - a[:, 0]) ** 2)[None] - inter)
        over[idx] = (iou >= threshold).sum(1)
        hit = iou.max(0) >= threshold
        assigned[idx] = np.bincount(iou.argmax(0)[hit], minlength=len(idx))
    return over, assigned


@pytest.mark.parametrize("ratio", [0.3, 0.68, 1.0, 1.4])
def test_windowed_counts_equal_brute_force_over_all_anchors(ratio):
    rng = np.random.default_rng(4)
    boxes, frames = [], []
    for frame in range(5):
        k = int(rng.integers(1, 12))
        xy = rng.uniform(-20, 280, (k, 2))
        wh = np.exp(rng.uniform(np.log(4), np.log(200), (k, 2)))
        boxes.append(np.concatenate([xy, xy + wh], 1))
        frames.append(np.full(k, frame))
    faces = aa.FaceSet(np.concatenate(boxes), np.concatenate(frames), np.array([[300.0, 260.0]] * 5))
    cov = aa.face_coverage(faces, ratio)
    over, assigned = _brute(faces, ratio, aa.STRIDES_P2_P7, 0.35)
    assert cov.overlapping.tolist() == over.tolist()
    assert cov.assigned.tolist() == assigned.tolist()


def test_parse_ratios():
    assert aa.parse_ratios("0.5:0.7:0.1") == [0.5, 0.6, 0.7]
    assert aa.parse_ratios("1.0,0.68, 0.5") == [0.5, 0.68, 1.0]
    for bad in ("0.5:0.1:0.1", "a,b", "0:1", "-1", "0.5:inf:0.1", "nan", "1:2:1e-9"):  # 1e-9: a billion ratios
        with pytest.raises(ValueError):
            aa.parse_ratios(bad)


def test_training_crops_are_seeded_and_inside_the_crop():
    rng = np.random.default_rng(0)
    boxes = [np.array([[x, 40, x + w, 40 + w]], float) for x, w in zip(rng.uniform(0, 500, 20), rng.uniform(5, 300, 20))]
    a = aa.faces_in_training_crops(boxes, [(1024, 768)] * 20, samples_per_image=2, seed=3)
    b = aa.faces_in_training_crops(boxes, [(1024, 768)] * 20, samples_per_image=2, seed=3)
    assert np.array_equal(a.boxes, b.boxes) and a.frame == "crop640"
    assert (a.boxes >= 0).all() and (a.boxes <= 640).all() and len(a.frame_sizes) == 40


def test_anchors_cli_writes_table_json_and_plot(tmp_path):
    from facebench.commands.anchors import anchors_command
    from facebench.results import read_document

    gt = tmp_path / "gt.txt"
    gt.write_text("0--a/a.jpg\n2\n10 10 16 16 0 0 0 0 0 0\n100 50 40 44 0 0 0 0 0 0\n"
                  "0--a/b.jpg\n1\n3 3 2 2 0 0 0 0 0 0\n")
    runner = CliRunner()
    out = runner.invoke(anchors_command, ["--gt", str(gt), "--frame", "original", "--ratios", "0.5,1.0",
                                          "--out", str(tmp_path / "t.csv"), "--plot", str(tmp_path / "f.png")])
    assert out.exit_code == 0, out.output
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[0].startswith("ratio,faces,share_matchable") and len(lines) == 3
    assert (tmp_path / "f.png").stat().st_size > 1000
    out = runner.invoke(anchors_command, ["--gt", str(gt), "--ratios", "0.68", "--out", str(tmp_path / "t.json")])
    assert out.exit_code == 0, out.output
    doc = read_document(tmp_path / "t.json")
    assert doc["protocol"]["name"] == "anchor-coverage" and doc["settings"]["frame"] == "crop640"
    assert doc["curves"]["coverage"][0]["ratio"] == 0.68
    bad = runner.invoke(anchors_command, ["--gt", str(gt), "--ratios", "x"])
    assert bad.exit_code == 2 and "--ratios" in bad.output


def test_anchors_cli_bad_inputs_are_one_line_errors_before_any_work(tmp_path):
    from facebench.commands.anchors import anchors_command
    from facebench.errors import InputError

    gt = tmp_path / "gt.txt"
    gt.write_text("0--a/a.jpg\n2\n10 10 16 16 0 0 0 0 0 0\n100 50 nan 44 0 0 0 0 0 0\n")

    def error(*args: str) -> InputError:
        with pytest.raises(InputError) as info:
            anchors_command.main(["--gt", str(gt), "--frame", "original", "--ratios", "0.68", *args],
                                 standalone_mode=False)
        assert "\n" not in str(info.value)
        return info.value

    nan = error()
    assert (nan.path, nan.line) == (str(gt), 4) and "must be finite" in nan.message  # the split-file reader
    gt.write_text("0--a/a.jpg\n1\n10 10 16 16 0 0 0 0 0 0\n")
    assert "--crop-size must be >= 16" in error("--crop-size", "0").message
    assert "--out must end in .csv or .json" in error("--out", str(tmp_path / "x.txt")).message
    assert "--plot: cannot write" in error("--plot", str(tmp_path / "x.gif")).message
    assert not (tmp_path / "x.txt").exists()
    gt.write_text("0--a/a.jpg\n1\n10 10 0 16 0 0 0 0 0 0\n")  # no face with positive size
    assert "no face with positive width and height" in error("--plot", str(tmp_path / "x.png")).message


def test_real_wider_train_ratio_068_matches_most_faces(shared_data):
    split = require(shared_data / "widerface" / "wider_face_split" / "wider_face_train.mat")
    from detectors.hambox.data import read_wider_split, valid_boxes_xyxy

    records, _ = read_wider_split(split)
    boxes = [valid_boxes_xyxy(r) for r in records[::8]]
    rows = aa.sweep_ratios(aa.faces_in_training_crops(boxes, seed=0), [0.3, 0.68, 1.5])
    share = {r["ratio"]: r["share_matchable"] for r in rows}
    # the paper: over 95% of faces can match at 0.68, and coverage falls outside [0.43, 0.70]
    assert share[0.68] > 0.95 and share[0.3] < share[0.68] and share[1.5] < share[0.68]
    means = [r["mean_matched_per_face"] for r in rows]
    assert means == sorted(means)
