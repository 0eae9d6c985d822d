"""COCO export of ground truth and predictions, checked by running pycocotools' COCOeval on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facebench import coco_export
from protocols.wider_face.ground_truth import write_ground_truth

pytest.importorskip("pycocotools")

# One event with three images: kept faces, a face outside easy, a degenerate box, an image without faces kept.
IMAGES = [
    {"name": "img_a", "boxes": [[10, 10, 40, 50], [100, 20, 30, 30], [200, 200, 60, 60]],
     "easy": [1, 3], "medium": [1, 2, 3], "hard": [1, 2, 3]},
    {"name": "img_b", "boxes": [[5, 5, 80, 90], [300, 40, 0, 12]], "easy": [1], "medium": [1], "hard": [1]},
    {"name": "img_c", "boxes": [[50, 60, 25, 25]], "easy": [], "medium": [], "hard": [1]},
]


@pytest.fixture()
def gt(tmp_path: Path):
    from protocols import wider_face

    events = [("0--Test", IMAGES)] + [(f"{i}--Empty", []) for i in range(1, 61)]
    return wider_face.load_ground_truth(write_ground_truth(tmp_path / "gt", events))


def predictions_for(gt, tmp_path: Path, faces: dict[str, list[int]], extra: dict | None = None):
    """A prediction folder with exact boxes for the given 0-based faces (descending scores) and extra boxes."""
    from protocols import wider_face

    folder = tmp_path / "pred" / "0--Test"
    folder.mkdir(parents=True, exist_ok=True)
    score = 0.99
    for image in IMAGES:
        rows = []
        for face in faces.get(image["name"], []):
            rows.append([*image["boxes"][face], score])
            score -= 0.01
        rows += (extra or {}).get(image["name"], [])
        lines = [image["name"], str(len(rows))] + [" ".join(str(v) for v in row) for row in rows]
        (folder / f"{image['name']}.txt").write_text("\n".join(lines) + "\n")
    return wider_face.read_predictions(tmp_path / "pred", gt, quiet=True)


def test_ground_truth_export_marks_ignored_faces_as_crowd(gt) -> None:
    data = coco_export.wider_ground_truth(gt, "easy")
    assert [im["file_name"] for im in data["images"]] == ["0--Test/img_a.jpg", "0--Test/img_b.jpg",
                                                          "0--Test/img_c.jpg"]
    assert data["categories"] == [{"id": 1, "name": "face", "supercategory": "face"}]
    anns = data["annotations"]
    assert len(anns) == 6 and len({a["id"] for a in anns}) == 6
    assert [a["iscrowd"] for a in anns] == [0, 1, 0, 0, 1, 1]  # outside easy, degenerate, empty keep list
    assert anns[0]["bbox"] == [10.0, 10.0, 40.0, 50.0] and anns[0]["area"] == 2000.0
    assert [a["image_id"] for a in anns] == [1, 1, 1, 2, 2, 3]
    assert "width" not in data["images"][0]  # sizes are not in the annotations
    hard = coco_export.wider_ground_truth(gt, "hard")
    assert sum(a["iscrowd"] for a in hard["annotations"]) == 1  # only the degenerate box
    assert sum(a["iscrowd"] for a in coco_export.wider_ground_truth(gt, "all")["annotations"]) == 1


def test_a_degenerate_box_in_the_keep_list_counts_as_the_official_tool_counts_it(tmp_path: Path) -> None:
    from protocols import wider_face

    images = [{"name": "img", "boxes": [[10, 10, 40, 50], [1026, 474, -2, 23]], "easy": [1], "medium": [1, 2],
               "hard": [1, 2]}]
    gt = wider_face.load_ground_truth(write_ground_truth(tmp_path / "gt", [("0--Test", images)] +
                                                         [(f"{i}--Empty", []) for i in range(1, 61)]))
    hard = coco_export.wider_ground_truth(gt, "hard")["annotations"]
    assert [a["iscrowd"] for a in hard] == [0, 0]
    assert hard[1]["bbox"] == [1026.0, 474.0, 0.0, 23.0] and hard[1]["area"] == 0.0
    assert [a["iscrowd"] for a in coco_export.wider_ground_truth(gt, "easy")["annotations"]] == [0, 1]
    assert [a["iscrowd"] for a in coco_export.wider_ground_truth(gt, "all")["annotations"]] == [0, 1]


def test_perfect_predictions_score_one_and_ignored_hits_cost_nothing(gt, tmp_path: Path) -> None:
    data = coco_export.wider_ground_truth(gt, "easy")
    # every easy face found, plus high-scored exact hits on the faces easy ignores
    preds = predictions_for(gt, tmp_path, {"img_a": [1, 0, 2], "img_b": [0], "img_c": [0]})
    dets = coco_export.wider_detections(preds)
    assert len(dets) == 5 and dets[0]["image_id"] == 1 and dets[0]["category_id"] == 1
    stats = coco_export.coco_evaluate(data, dets, iou_thresholds=None)
    assert stats["ap50"] == pytest.approx(1.0) and stats["ap"] == pytest.approx(1.0)
    assert stats["recall50"] == pytest.approx(1.0)


def test_half_the_faces_found(gt, tmp_path: Path) -> None:
    data = coco_export.wider_ground_truth(gt, "hard")  # 5 counted faces
    preds = predictions_for(gt, tmp_path, {"img_a": [0, 2]},
                            extra={"img_b": [[400, 400, 20, 20, 0.001]]})  # one false positive, lowest score
    stats = coco_export.coco_evaluate(data, coco_export.wider_detections(preds))
    assert stats["recall50"] == pytest.approx(2 / 5)
    # precision 1 up to recall 0.4: COCO's 101-point interpolation gives 41 of 101 points
    assert stats["ap50"] == pytest.approx(41 / 101)


def test_export_command_writes_files_pycocotools_reads(gt, tmp_path: Path, capsys) -> None:
    from pycocotools.coco import COCO

    from facebench.cli import main

    predictions_for(gt, tmp_path, {"img_a": [0, 1, 2], "img_b": [0], "img_c": [0]})
    out_gt, out_dt = tmp_path / "coco" / "gt.json", tmp_path / "coco" / "dt.json"
    main(["export", "coco", "widerface", "--gt-dir", gt.source, "--predictions", str(tmp_path / "pred"),
          "--setting", "medium", "--out-gt", str(out_gt), "--out-predictions", str(out_dt), "--evaluate"])
    out = capsys.readouterr().out
    assert "3 images, 6 faces (2 as iscrowd=1, ignored)" in out and "5 detections" in out
    assert "AP@0.5 1.0000" in out
    coco = COCO(str(out_gt))
    assert len(coco.getImgIds()) == 3 and len(coco.getAnnIds(iscrowd=False)) == 4
    results = coco.loadRes(str(out_dt))
    assert len(results.getAnnIds()) == 5
    assert json.loads(out_dt.read_text())[0]["score"] == 0.99


def test_export_command_bad_input(tmp_path: Path, gt, capsys) -> None:
    from facebench.cli import main

    predictions_for(gt, tmp_path, {"img_a": [0]})
    (tmp_path / "g.json").write_text("{}")
    for args, message in ((["--evaluate"], "--evaluate need --predictions"),
                          (["--event", "9--Nope"], "unknown WIDER event(s): 9--Nope"),
                          (["--predictions", str(tmp_path / "pred"), "--max-dets", "0"], "--max-dets"),
                          (["--predictions", str(tmp_path / "pred"), "--out-predictions", str(tmp_path / "g.json")],
                           "--out-predictions: the same file as --out-gt")):
        with pytest.raises(SystemExit) as info:
            main(["export", "coco", "widerface", "--gt-dir", gt.source, "--out-gt", str(tmp_path / "g.json"), *args])
        assert info.value.code == 2
        assert message in capsys.readouterr().err
    assert (tmp_path / "g.json").read_text() == "{}"  # nothing written before the checks


def test_export_command_offers_the_ignore_unknown_it_suggests(gt, tmp_path: Path, capsys) -> None:
    from facebench.cli import main

    predictions_for(gt, tmp_path, {"img_a": [0, 1, 2], "img_b": [0], "img_c": [0]})
    stray = tmp_path / "pred" / "99--Stray"
    stray.mkdir()
    (stray / "x.txt").write_text("x\n0\n")
    args = ["export", "coco", "widerface", "--gt-dir", gt.source, "--predictions", str(tmp_path / "pred"),
            "--out-gt", str(tmp_path / "g.json"), "--out-predictions", str(tmp_path / "d.json")]
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2 and "--ignore-unknown" in capsys.readouterr().err
    main(args + ["--ignore-unknown"])
    assert "5 detections" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------------- real data

def test_real_wider_export_cross_checks_with_pycocotools(shared_data: Path) -> None:
    """yolov7-tiny's real predictions on two events: COCO counts match the protocol's, AP@0.5 is close."""
    from protocols import wider_face

    gt = wider_face.load_ground_truth(shared_data / "widerface" / "ground_truth")
    folder = shared_data / "widerface" / "results" / "yolov7-tiny-leak_derronqi" / "widerface_txt"
    preds = wider_face.read_predictions(folder, gt, quiet=True)
    data, dets = coco_export.select_images(coco_export.wider_ground_truth(gt, "hard"),
                                           coco_export.wider_detections(preds),
                                           lambda im: im["wider_event"] in ("0--Parade", "1--Handshaking"))
    assert len(data["images"]) == 145
    counted = sum(1 for a in data["annotations"] if not a["iscrowd"])
    in_events = [i for i, (event, _) in enumerate(gt.images) if event in ("0--Parade", "1--Handshaking")]
    faces = sum(int(gt.keep["hard"][gt.face_offsets[i]:gt.face_offsets[i + 1]].sum()) for i in in_events)
    assert counted == faces
    assert len(dets) == sum(int(preds.offsets[i + 1] - preds.offsets[i]) for i in in_events)
    stats = coco_export.coco_evaluate(data, dets, iou_thresholds=[0.5])
    assert 0.75 < stats["ap50"] < 0.88  # official hard AP of the full set is 0.8297; COCO rules differ
    assert stats["recall50"] > stats["ap50"]


def test_real_afw_export(shared_data: Path) -> None:
    """S3FD's AFW detections: the ignore rule gives the protocol's 72 ignored faces; COCO AP@0.5 is near 1."""
    from protocols.face_eval import load_ground_truth, read_detections

    gt = load_ground_truth("afw", shared_data / "afw" / "annotations" / "new_annotations_AFW.mat")
    data = coco_export.face_eval_ground_truth(gt)
    assert len(data["images"]) == 205 and len(data["annotations"]) == 545
    assert sum(a["iscrowd"] for a in data["annotations"]) == 72  # protocols.md §3.1
    dets = coco_export.face_eval_detections(
        read_detections(shared_data / "afw" / "results" / "S3FD_official" / "SFD_AFW_PR.txt"), gt)
    stats = coco_export.coco_evaluate(data, dets)
    assert stats["ap50"] > 0.98 and stats["recall50"] == pytest.approx(1.0)


def test_export_of_afw_reads_the_annotations_under_data_root(tmp_path: Path, capsys, monkeypatch) -> None:
    from facebench.cli import main
    from tests.test_face_eval import GT_IMAGES, write_struct_annotations

    monkeypatch.delenv("FACEBENCH_DATA_ROOT", raising=False)
    folder = tmp_path / "data" / "afw" / "annotations"
    folder.mkdir(parents=True)
    write_struct_annotations(folder / "new_annotations_AFW.mat", GT_IMAGES)
    main(["export", "coco", "afw", "--data-root", str(tmp_path / "data"), "--out-gt", str(tmp_path / "gt.json")])
    data = json.loads((tmp_path / "gt.json").read_text())
    assert [im["file_name"] for im in data["images"]] == ["img1.jpg", "img2.jpg", "img3.jpg"]
