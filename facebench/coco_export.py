"""COCO-format export of ground truth and predictions (WIDER FACE; AFW / PASCAL), for pycocotools cross-checks.

Ground truth: one `face` category; every GT box becomes an annotation. Faces that the chosen setting ignores
(WIDER: not in the setting's keep list; AFW/PASCAL: flagged or under the size rule) are exported with
`iscrowd: 1`, the only ignore mechanism COCOeval honours (it rewrites `ignore` from `iscrowd`). COCO's rules are
not the official ones (crowd regions match by intersection over the detection's area, 101-point interpolated
precision, a per-image detection cap), so COCO AP@0.5 is a cross-check, not the benchmark number. Image sizes are
not in the WIDER/face-eval annotations; they are exported only when an image folder is given.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from facebench.errors import InputError

CATEGORY = {"id": 1, "name": "face", "supercategory": "face"}


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image header, None when the file is absent."""
    if not path.is_file():
        return None
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def _image_record(image_id: int, file_name: str, size: tuple[int, int] | None, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"id": image_id, "file_name": file_name}
    if size is not None:
        record["width"], record["height"] = int(size[0]), int(size[1])
    record.update(extra)
    return record


def _annotation(ann_id: int, image_id: int, xywh: Sequence[float], crowd: bool) -> dict[str, Any]:
    x, y, w, h = (float(v) for v in xywh)
    w, h = max(w, 0.0), max(h, 0.0)  # COCO boxes have no negative sizes
    return {"id": ann_id, "image_id": image_id, "category_id": CATEGORY["id"], "bbox": [x, y, w, h],
            "area": w * h, "iscrowd": int(crowd)}


def _dataset(description: str, images: list, annotations: list, extra_info: Mapping[str, Any]) -> dict[str, Any]:
    return {"info": {"description": description, "exported_by": "facebench", **extra_info},
            "licenses": [], "images": images, "annotations": annotations, "categories": [dict(CATEGORY)]}


# ---------------------------------------------------------------------------------------------- WIDER FACE

def wider_ground_truth(gt: Any, setting: str = "hard", images_root: str | os.PathLike | None = None) -> dict[str, Any]:
    """COCO dataset of WIDER val: faces outside the setting's keep list (setting 'all': boxes without an area)
    as crowd."""
    if setting != "all" and setting not in gt.keep:
        raise InputError(None, None, f"unknown WIDER setting {setting!r} (easy, medium, hard or all)")
    # A degenerate box (w or h <= 0) in a keep list counts, as the official tool counts it (one hard face of
    # WIDER val has w = -2); it is exported with its size clamped to 0, which COCO's IoU never matches. No
    # official setting defines 'all', which counts the boxes with an area only.
    valid = (gt.boxes[:, 2] > 0) & (gt.boxes[:, 3] > 0)
    counted = valid if setting == "all" else gt.keep[setting]
    root = Path(images_root) if images_root else None
    images, annotations = [], []
    for index, (event, name) in enumerate(gt.images):
        file_name = f"{event}/{name}.jpg"
        size = _image_size(root / file_name) if root else None
        images.append(_image_record(index + 1, file_name, size, wider_event=event, wider_name=name))
        for face in range(int(gt.face_offsets[index]), int(gt.face_offsets[index + 1])):
            annotations.append(_annotation(face + 1, index + 1, gt.boxes[face], not counted[face]))
    info = {"benchmark": "widerface-val", "setting": setting, "ground_truth_sha256": gt.sha256,
            "ignored_faces": "iscrowd=1"}
    return _dataset(f"WIDER FACE val ground truth, setting {setting}", images, annotations, info)


def wider_detections(predictions: Any) -> list[dict[str, Any]]:
    """COCO result list of WIDER predictions (x, y, w, h, raw score), image ids as in wider_ground_truth."""
    boxes = np.asarray(predictions.boxes, dtype=np.float64)
    counts = np.diff(predictions.offsets)
    image_ids = np.repeat(np.arange(1, len(counts) + 1), counts)
    return [{"image_id": int(i), "category_id": CATEGORY["id"], "bbox": [float(b[0]), float(b[1]), float(b[2]),
             float(b[3])], "score": float(b[4])} for i, b in zip(image_ids.tolist(), boxes.tolist())]


# -------------------------------------------------------------------------------------------- AFW / PASCAL

def face_eval_ground_truth(gt: Any, images_root: str | os.PathLike | None = None) -> dict[str, Any]:
    """COCO dataset of AFW or PASCAL Face: ignored faces (flag or size rule) as crowd; corners -> x, y, w, h."""
    root = Path(images_root) if images_root else None
    images, annotations = [], []
    for index, name in enumerate(gt.image_names):
        size = _image_size(root / name) if root else None
        images.append(_image_record(index + 1, name, size, face_eval_key=gt.image_keys[index]))
        for face in range(int(gt.offsets[index]), int(gt.offsets[index + 1])):
            x1, y1, x2, y2 = gt.boxes[face]
            xywh = (min(x1, x2), min(y1, y2), abs(x2 - x1), abs(y2 - y1))
            annotations.append(_annotation(face + 1, index + 1, xywh, bool(gt.ignored[face])))
    info = {"benchmark": gt.dataset, "annotation_style": gt.style, "ground_truth_sha256": gt.sha256,
            "ignored_faces": "iscrowd=1"}
    return _dataset(f"{gt.dataset} ground truth ({gt.style})", images, annotations, info)


def face_eval_detections(detections: Any, gt: Any) -> list[dict[str, Any]]:
    """COCO result list of AFW/PASCAL detections (corner boxes -> x, y, w, h); unknown image ids are errors."""
    index = detections.image_indices(gt)
    out = []
    for i, score, (x1, y1, x2, y2) in zip(index.tolist(), detections.scores.tolist(), detections.boxes.tolist()):
        out.append({"image_id": i + 1, "category_id": CATEGORY["id"],
                    "bbox": [min(x1, x2), min(y1, y2), abs(x2 - x1), abs(y2 - y1)], "score": float(score)})
    return out


def select_images(ground_truth: Mapping[str, Any], detections: list[dict[str, Any]],
                  keep: Callable[[Mapping[str, Any]], bool]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The export restricted to the images for which keep(image record) is true (ids unchanged)."""
    images = [im for im in ground_truth["images"] if keep(im)]
    ids = {im["id"] for im in images}
    subset = dict(ground_truth)
    subset["images"] = images
    subset["annotations"] = [a for a in ground_truth["annotations"] if a["image_id"] in ids]
    return subset, [d for d in detections if d["image_id"] in ids]


# --------------------------------------------------------------------------------------------- evaluation

def coco_evaluate(ground_truth: Mapping[str, Any], detections: list[dict[str, Any]], max_dets: int = 1000,
                  iou_thresholds: Sequence[float] | None = None) -> dict[str, float]:
    """Run pycocotools' COCOeval (bbox, all areas) on an export: AP@0.5, AP@[.5:.95], recall at max_dets."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco_gt = COCO()
        coco_gt.dataset = json.loads(json.dumps(ground_truth))
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(json.loads(json.dumps(detections))) if detections else COCO()
        if not detections:
            coco_dt.dataset = {"images": ground_truth["images"], "annotations": [], "categories":
                               ground_truth["categories"]}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.params.maxDets = [int(max_dets)]
        evaluator.params.areaRng = [[0.0, 1e10]]
        evaluator.params.areaRngLbl = ["all"]
        if iou_thresholds is not None:
            evaluator.params.iouThrs = np.asarray(iou_thresholds, dtype=np.float64)
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][:, :, 0, 0, 0]  # [iou, recall points]
    recall = evaluator.eval["recall"][:, 0, 0, 0]
    thresholds = evaluator.params.iouThrs

    def mean_valid(values: np.ndarray) -> float | None:
        values = values[values > -1]
        return float(values.mean()) if values.size else None

    at50 = np.flatnonzero(np.isclose(thresholds, 0.5))
    return {
        "ap50": mean_valid(precision[at50[0]]) if at50.size else None,
        "ap": mean_valid(precision.ravel()),
        "recall50": (float(recall[at50[0]]) if at50.size and recall[at50[0]] > -1 else None),
        "max_dets": float(max_dets),
    }


def write_json(data: Any, path: str | os.PathLike) -> Path:
    """Write one export file (compact JSON)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, separators=(",", ":")))
    return path

