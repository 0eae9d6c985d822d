"""FDDB on real data (spec §6.3): the official program's figures and published ROC files, byte for byte."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.conftest import require
from facebench.plots.roc import read_published_roc
from protocols import fddb
from protocols.fddb.raster import MSVC_PI


@pytest.fixture(scope="session")
def fddb_data(shared_data, tmp_path_factory):
    """Official folds, the size table, and a private raster cache for the session."""
    root = require(shared_data / "fddb")
    previous = os.environ.get("FACEBENCH_CACHE")
    os.environ["FACEBENCH_CACHE"] = str(tmp_path_factory.mktemp("fddb_cache"))
    gt = fddb.load_folds(require(root / "FDDB-folds"))
    sizes = fddb.read_size_table(require(root / "image_sizes.tsv"), gt)
    yield root, gt, sizes
    if previous is None:
        os.environ.pop("FACEBENCH_CACHE", None)
    else:
        os.environ["FACEBENCH_CACHE"] = previous


def _texts(result):
    return fddb.disc_roc_text(result.curve), fddb.cont_roc_text(result.curve)


def _published(path):
    return require(path).read_bytes().decode().replace("\r\n", "\n")


def test_ground_truth_counts(fddb_data):
    _, gt, sizes = fddb_data
    assert (gt.n_images, gt.n_faces) == (2845, 5171)
    assert gt.folds == fddb.FOLD_IDS
    assert sizes.width.min() > 0


@pytest.mark.parametrize("name, boxes", [("MTCNN", 4884), ("jfda", 4745)])
def test_imistyrain_roc_files_byte_for_byte_with_negated_angle(fddb_data, name, boxes):
    root, gt, sizes = fddb_data
    folder = require(root / "results" / f"{name}_imistyrain")
    dets = fddb.read_detections(folder, gt, "rect")
    assert dets.count == boxes
    disc, cont = _texts(fddb.evaluate(gt, dets, sizes, "negated-angle"))
    assert disc == _published(folder / f"{name}DiscROC.txt")
    assert cont == _published(folder / f"{name}ContROC.txt")


@pytest.mark.parametrize("name, points, disc_first, cont_first", [
    ("MTCNN", 1774, "0.896345 249 0.505806", "0.6741 249"),
    ("jfda", 612, "0.898279 100 0.401795", "0.675864 100"),
])
def test_official_program_figures_are_the_opencv4_convention(fddb_data, name, points, disc_first, cont_first):
    """§6.3's official tool ran on OpenCV 4.6 / 2.4.11 (§5.2): the unmodified program on a modern OpenCV."""
    root, gt, sizes = fddb_data
    dets = fddb.read_detections(require(root / "results" / f"{name}_imistyrain"), gt, "rect")
    disc, cont = _texts(fddb.evaluate(gt, dets, sizes, "opencv4"))
    disc_lines, cont_lines = disc.splitlines(), cont.splitlines()
    assert len(disc_lines) == len(cont_lines) == points
    assert disc_lines[0] == disc_first and cont_lines[0] == cont_first
    if name == "MTCNN":
        assert next(line for line in disc_lines if float(line.split()[1]) <= 50) == "0.859215 50 0.955061"


@pytest.mark.parametrize("name, points", [("MTCNN", 1774), ("jfda", 612)])
def test_opencv21_shares_the_orientation_of_the_negated_angle_patch(fddb_data, name, points):
    """Same rotation as the patch; only faces reaching the 2-pixel border band change by a few pixels."""
    root, gt, sizes = fddb_data
    dets = fddb.read_detections(require(root / "results" / f"{name}_imistyrain"), gt, "rect")
    old = fddb.evaluate(gt, dets, sizes, "opencv21")
    patched = fddb.evaluate(gt, dets, sizes, "negated-angle")
    assert len(old.curve.threshold) == points
    assert np.array_equal(old.curve.tp_disc, patched.curve.tp_disc)
    assert np.abs(old.curve.cont_tpr - patched.curve.cont_tpr).max() < 1e-4
    assert not np.array_equal(old.curve.tp_cont, patched.curve.tp_cont)


def test_hualitlc_crlf_annotations_and_roc_byte_for_byte(fddb_data):
    root, gt, sizes = fddb_data
    folder = require(root / "results" / "MTCNN_hualitlc")
    own_gt = fddb.load_annotations(folder / "ellipseList.txt")  # the ten folds concatenated, CRLF
    assert own_gt.images == gt.images and np.array_equal(own_gt.ellipses, gt.ellipses)
    dets = fddb.read_detections(folder / "predict.txt", own_gt, "rect")
    disc, cont = _texts(fddb.evaluate(own_gt, dets, sizes, "negated-angle"))
    assert disc == _published(folder / "tempDiscROC.txt")
    assert cont == _published(folder / "tempContROC.txt")


def test_lippman1125_mtcnn_roc_byte_for_byte(fddb_data):
    root, gt, sizes = fddb_data
    folder = require(root / "results" / "mtcnn_lqy_lippman1125")
    dets = fddb.read_detections(folder / "fddb_mtcnn_lqy_result.txt", gt, "rect")
    disc, cont = _texts(fddb.evaluate(gt, dets, sizes, "negated-angle"))
    assert disc == _published(folder / "fddb_mtcnn_lqy_DiscROC.txt")
    assert cont == _published(folder / "fddb_mtcnn_lqy_ContROC.txt")


def test_windows_build_roc_byte_for_byte_with_msvc_pi(fddb_data):
    """imistyrain's pyface ROC (CRLF) came from an MSVC build, whose M_PI fallback is 3.14156."""
    root, gt, sizes = fddb_data
    folder = require(root / "results" / "pyface_imistyrain")
    dets = fddb.read_detections(folder / "Dets.txt", gt, "rect")
    disc, cont = _texts(fddb.evaluate(gt, dets, sizes, "negated-angle", pi=MSVC_PI))
    assert disc == _published(folder / "pyfaceDiscROC.txt")
    assert cont == _published(folder / "pyfaceContROC.txt")


def test_s3fd_corrected_annotations_as_ground_truth(fddb_data):
    root, gt, sizes = fddb_data
    s3fd = fddb.load_annotations(require(root / "annotations_s3fd_corrected" / "FDDB_annotation_ellipseList_new.txt"))
    assert (s3fd.n_images, s3fd.n_faces) == (2845, 5409)
    sizes2 = fddb.read_size_table(root / "image_sizes.tsv", s3fd)
    dets = fddb.read_detections(require(root / "results" / "retinaface-mobilenet0.25_thflgg133" / "FDDB_dets.txt"),
                                s3fd, "rect")  # counts written as "1.0"
    result = fddb.evaluate(s3fd, dets, sizes2, "opencv4")
    assert result.curve.n_faces == 5409
    assert 0.9 < result.metrics["disc_tpr_at_1000fp"] <= 1.0


def test_size_table_matches_the_sample_images(fddb_data, tmp_path):
    root, gt, _ = fddb_data
    images = require(root / "images_sample" / "originalPics")
    names = sorted(str(p.relative_to(images).with_suffix("")) for p in images.rglob("*.jpg"))
    index = {name: k for k, name in enumerate(gt.images)}
    blocks = []
    for name in names:
        k = index[name]
        rows = gt.ellipses[gt.face_start[k]:gt.face_start[k + 1]]
        blocks.append(f"{name}\n{len(rows)}\n" + "".join(" ".join(repr(float(v)) for v in r) + " 1\n" for r in rows))
    path = tmp_path / "sample.txt"
    path.write_text("".join(blocks))
    sample = fddb.load_annotations(path)
    from_images = fddb.read_image_sizes(images, sample)
    from_table = fddb.read_size_table(root / "image_sizes.tsv", sample)
    assert len(names) == 7
    assert np.array_equal(from_images.width, from_table.width) and np.array_equal(from_images.height, from_table.height)


@pytest.mark.parametrize("file, expected", [
    ("HeadHunterDiscROC.txt", 0.8706), ("DPMDiscROC.txt", 0.8644), ("Structured ModelsDiscROC.txt", 0.8463),
    ("Face++DiscROC.txt", 0.8387), ("SURF Cascade multiviewDiscROC.txt", 0.8372), ("PEP-AdaptDiscROC.txt", 0.8093),
    ("Jain et al.DiscROC.txt", 0.6774), ("Viola JonesDiscROC.txt", 0.5968),
])
def test_published_face_eval_figures(shared_data, file, expected):
    roc = read_published_roc(require(shared_data / "fddb" / "results" / "face-eval_discroc" / file))
    assert round(fddb.tpr_at_fp(roc.tpr, roc.fp, 1000, "max"), 4) == expected


def test_illuxtech_strict_and_max_rules_differ(shared_data):
    roc = read_published_roc(require(shared_data / "fddb" / "results" / "face-eval_discroc" / "IlluxtechDiscROC.txt"))
    assert round(fddb.tpr_at_fp(roc.tpr, roc.fp, 1000, "strict"), 4) == 0.7178
    assert round(fddb.tpr_at_fp(roc.tpr, roc.fp, 1000, "max"), 4) == 0.7180


def test_all_official_roc_curves_read(shared_data):
    folder = require(shared_data / "fddb" / "results" / "official_roc_curves")
    kinds = {}
    for path in sorted(folder.glob("*.txt")):
        roc = read_published_roc(path)
        kinds.setdefault(roc.kind, 0)
        kinds[roc.kind] += 1
        assert len(roc.tpr) == len(roc.fp) > 0 and roc.tpr.max() <= 1.0
    assert kinds["disc"] >= 35 and kinds["cont"] >= 35


@pytest.mark.parametrize("name", ["MTCNN_imistyrain", "jfda_imistyrain", "MTCNN_hualitlc/predict.txt",
                                  "retinaface-mobilenet0.25_thflgg133/FDDB_dets.txt",
                                  "faceboxes_lippman1125/fddb_faceboxes_result.txt"])
def test_published_detection_files_read_without_field_warnings(fddb_data, capsys, name):
    root, gt, _ = fddb_data
    capsys.readouterr()
    dets = fddb.read_detections(require(root / "results" / name), gt, "rect")
    assert dets.count > 0 and "numbers" not in capsys.readouterr().err


def test_plot_with_all_official_overlays_lists_the_evaluated_method_first(fddb_data, tmp_path):
    from facebench.commands.eval_fddb import overlay_series
    from facebench.plots.roc import RocSeries, legend_order, plot_roc_panels

    root, gt, sizes = fddb_data
    result = fddb.evaluate(gt, fddb.read_detections(require(root / "results" / "jfda_imistyrain"), gt), sizes,
                           "opencv4")
    panels = overlay_series([require(root / "results" / "official_roc_curves")])
    assert len(panels["discrete"]) >= 35
    panels["discrete"].insert(len(panels["discrete"]) // 2, RocSeries("jfda", result.curve.fp,
                                                                      result.curve.disc_tpr))
    assert legend_order(panels["discrete"], 1000)[0].label == "jfda"
    plot_roc_panels(panels, tmp_path / "roc.png")
    assert (tmp_path / "roc.png").stat().st_size > 50_000
