"""face-eval on the real AFW / PASCAL Face files: the papers' and the toolbox's figures (protocols.md §3, §6.4)."""

from __future__ import annotations

import numpy as np
import pytest

from protocols.face_eval import (baseline_overlap, default_annotation_file, evaluate, load_ground_truth,
                                 read_detections)
from protocols.face_eval.matching import match_detections, match_detections_reference
from tests.conftest import require

# (dataset, file under <dataset>/results/, AP in percent as the paper/authors print it with 2 decimals)
PRINTED_AP = [
    ("afw", "S3FD_official/SFD_AFW_PR.txt", 99.85),
    ("pascal", "S3FD_official/SFD_PASCAL_PR.txt", 98.49),
    ("afw", "SmallHardFace_Zhang2018/Ours.txt", 99.60),
    ("pascal", "SmallHardFace_Zhang2018/Ours.txt", 99.00),
    # The baselines of Mathias et al. 2014, Figure 5 (the toolbox's own legends, §3.6).
    ("afw", "DPM_Mathias2014/DPM.txt", 97.21),
    ("afw", "HeadHunter_Mathias2014/Headhunter.txt", 97.14),
    ("afw", "SquaresChnFtrs-5_Mathias2014/Baseline.txt", 95.24),
    ("afw", "Structured_Models/Structured_models.mat", 95.19),
    ("afw", "Shen_et_al/Shen_et_al..shenmat", 89.03),
    ("afw", "TSM_Zhu2012/TSM.ramananmat", 87.99),
    ("pascal", "DPM_Mathias2014/DPM.txt", 90.29),
    ("pascal", "HeadHunter_Mathias2014/Headhunter.txt", 89.63),
    ("pascal", "SquaresChnFtrs-5_Mathias2014/Ours_Baseline.txt", 85.57),
    ("pascal", "Structured_models/Structured_models.mat", 83.87),
    ("pascal", "Sky_Biometry/Sky_Biometry.mat", 68.57),
    ("pascal", "OpenCV/OpenCV.mat", 61.09),
    ("pascal", "WS_Boosting/WS_Boosting.mat", 59.72),
]
# Toolbox output to 15 significant digits (§6.4).
EXACT_AP = [
    ("afw", "HeadHunter_Mathias2014/Headhunter.txt", 0.97141582276809),
    ("pascal", "HeadHunter_Mathias2014/Headhunter.txt", 0.896298888731004),
    ("pascal", "DPM_Mathias2014/DPM.txt", 0.902867567392861),
]
_GT_CACHE: dict = {}


def ground_truth(shared_data, dataset: str, old: bool = False):
    key = (dataset, old)
    if key not in _GT_CACHE:
        path = require(shared_data / dataset / "annotations" / default_annotation_file(dataset, old))
        _GT_CACHE[key] = load_ground_truth(dataset, path)
    return _GT_CACHE[key]


@pytest.mark.parametrize("dataset, name, printed", PRINTED_AP, ids=[f"{d}-{n}" for d, n, _ in PRINTED_AP])
def test_printed_ap(shared_data, dataset, name, printed):
    path = require(shared_data / dataset / "results" / name)
    result = evaluate(ground_truth(shared_data, dataset), read_detections(path),
                      overlap_threshold=baseline_overlap(path))
    assert round(result.ap * 100, 2) == printed


@pytest.mark.parametrize("dataset, name, expected", EXACT_AP, ids=[f"{d}-{n}" for d, n, _ in EXACT_AP])
def test_exact_ap(shared_data, dataset, name, expected):
    path = require(shared_data / dataset / "results" / name)
    assert evaluate(ground_truth(shared_data, dataset), read_detections(path)).ap == pytest.approx(expected, abs=1e-12)


def test_ground_truth_counts(shared_data):
    afw = ground_truth(shared_data, "afw")
    assert (afw.n_images, len(afw.boxes), int(afw.ignored.sum()), int(afw.flagged.sum()), afw.n_positives) == \
        (205, 545, 72, 71, 473)
    assert int((afw.ignored & ~afw.flagged).sum()) == 1
    pascal = ground_truth(shared_data, "pascal")
    assert (pascal.n_images, len(pascal.boxes), int(pascal.ignored.sum()), int(pascal.flagged.sum()),
            pascal.n_positives) == (851, 1635, 294, 55, 1341)
    assert afw.style == pascal.style == "mathias2014"


def test_original_annotations(shared_data):
    afw_old = ground_truth(shared_data, "afw", old=True)
    assert afw_old.style == "original" and (afw_old.n_images, len(afw_old.boxes)) == (205, 468)
    assert not afw_old.flagged.any()
    pascal_old = ground_truth(shared_data, "pascal", old=True)
    assert pascal_old.style == "original" and (pascal_old.n_images, len(pascal_old.boxes)) == (851, 1335)
    # anno.mat is the MATLAB v7.3 (HDF5) original of anno2.mat: same images, same boxes.
    v73 = load_ground_truth("afw", require(shared_data / "afw" / "annotations" / "anno.mat"))
    assert v73.image_keys == afw_old.image_keys
    assert np.array_equal(v73.boxes, afw_old.boxes) and np.array_equal(v73.offsets, afw_old.offsets)


def synthetic_style_mismatch(shared_data, tmp_path):
    """§6.4: every AFW face drawn in one of two wrong box styles, plus one 40 x 40 false positive per image."""
    from facebench.io_mat import load_mat

    annotations = load_mat(require(shared_data / "afw" / "annotations" / "new_annotations_AFW.mat"))["Annotations"]
    lines, g = [], 0
    for entry in annotations.ravel():
        name = str(entry.imgname.ravel()[0])
        for x1, y1, x2, y2 in np.asarray(entry.objects, dtype=float)[:, :4]:
            w, h = x2 - x1, y2 - y1
            if g % 2 == 0:
                box = (x1 - 0.05 * w, y1 - 0.10 * h, x2 + 0.05 * w, y2 + 0.20 * h)
            else:
                box = (x1 - 0.15 * w, y1 - 0.30 * h, x2 + 0.15 * w, y2 + 0.25 * h)
            lines.append(f"{name} {1 - 0.001 * g:.6f} " + " ".join(f"{v:.2f}" for v in box))
            g += 1
        lines.append(f"{name} 0.010000 0.00 0.00 40.00 40.00")
    path = tmp_path / "style_mismatch.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, len(lines)


def test_synthetic_box_style_case(shared_data, tmp_path):
    path, n_lines = synthetic_style_mismatch(shared_data, tmp_path)
    assert n_lines == 750
    gt, dets = ground_truth(shared_data, "afw"), read_detections(path)
    assert evaluate(gt, dets, iterations=1).ap == pytest.approx(0.261961443376294, abs=1e-12)
    assert evaluate(gt, dets, iterations=2).ap == 1.0
    assert evaluate(gt, dets, iterations=5).ap == 1.0


def test_point_baselines_and_picasa_overlap(shared_data):
    gt = ground_truth(shared_data, "afw")
    path = require(shared_data / "afw" / "results" / "Picasa" / "Picasa.csv")
    assert baseline_overlap(path) == 0.1
    picasa = evaluate(gt, read_detections(path), overlap_threshold=0.1)
    assert picasa.n_detections_read == 421 and 0.8 < picasa.recall[-1] < 0.9 and picasa.precision[-1] > 0.98


def test_vectorised_matching_equals_reference_on_real_files(shared_data):
    from protocols.face_eval import size_filter_mask

    for dataset, name in [("afw", "HeadHunter_Mathias2014/Headhunter.txt"),
                          ("pascal", "S3FD_official/SFD_PASCAL_PR.txt")]:
        gt = ground_truth(shared_data, dataset)
        dets = read_detections(require(shared_data / dataset / "results" / name))
        keep = size_filter_mask(dets.boxes, 21)
        order = np.flatnonzero(keep)[np.argsort(-dets.scores[keep], kind="stable")]
        args = (dets.image_indices(gt)[order], dets.boxes[order], gt.boxes, gt.ignored, gt.offsets)
        fast, slow = match_detections(*args), match_detections_reference(*args)
        for field in ("tp", "fp", "dropped", "gt_index"):
            assert np.array_equal(getattr(fast, field), getattr(slow, field)), (name, field)


def test_cli_on_real_files(shared_data, tmp_path, capsys):
    import json

    from facebench.cli import main

    results = require(shared_data / "afw" / "results")
    out = tmp_path / "s3fd.json"
    with pytest.raises(SystemExit) as info:
        main(["eval", "afw", str(results / "S3FD_official" / "SFD_AFW_PR.txt"), "--annotations",
              str(shared_data / "afw" / "annotations"), "--out", str(out), "--plot", str(tmp_path / "afw.png"),
              "--overlay", str(results / "Face++"), "--overlay", str(results / "HeadHunter_Mathias2014")])
        raise SystemExit(0)
    assert info.value.code == 0, capsys.readouterr().err
    assert "AP 99.85" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert round(doc["metrics"]["ap"] * 100, 2) == 99.85 and doc["settings"]["annotation_style"] == "mathias2014"
    assert (tmp_path / "s3fd.records.npz").is_file() and (tmp_path / "afw.png").is_file()


def test_cli_data_root_finds_the_annotations(shared_data, capsys):
    from tests.conftest import run_cli

    dets = shared_data / "afw" / "results" / "S3FD_official" / "SFD_AFW_PR.txt"
    code, out, err = run_cli(["eval", "afw", str(dets), "--data-root", str(shared_data)], capsys)
    assert code == 0, err
    assert "AP 99.85" in out


def test_unknown_image_id_counts_as_a_false_positive(shared_data, tmp_path, capsys):
    # HeadHunter's AFW file plus one detection of an image not in AFW: the toolbox (and the audit's independent
    # re-implementation) count it as a FP; the AP drops from 0.97141582276809 to 0.968882281200446.
    source = require(shared_data / "afw" / "results" / "HeadHunter_Mathias2014" / "Headhunter.txt")
    path = tmp_path / "unknown_id.txt"
    path.write_text(source.read_text() + "9999999999 0.99 10 10 100 100\n")
    result = evaluate(ground_truth(shared_data, "afw"), read_detections(path))
    assert result.ap == pytest.approx(0.968882281200446, abs=1e-12)
    assert result.n_detections_unknown_image == 1 and int(result.tp.sum()) == 462
    assert "9999999999" in capsys.readouterr().err
