"""WIDER FACE validation protocol, identical to the official MATLAB eval_tools (or the Python port).

API: load_ground_truth(gt_dir) -> WiderGroundTruth; read_predictions(pred_dir, gt, semantics) ->
WiderPredictions; evaluate(gt, predictions) -> WiderResult; write_prediction_file(path, name, dets).
"""

from __future__ import annotations

from protocols.wider_face.evaluate import breakdown_masks, image_face_counts, match, score_setting
from protocols.wider_face.ground_truth import SETTINGS, WiderGroundTruth, load_ground_truth
from protocols.wider_face.predictions import (SEMANTICS, WiderPredictions, format_prediction_file,
                                               read_predictions, write_prediction_file)
from protocols.wider_face.result import WiderResult

__all__ = ["SEMANTICS", "SETTINGS", "WiderGroundTruth", "WiderPredictions", "WiderResult", "evaluate",
           "format_prediction_file", "load_ground_truth", "read_predictions", "write_prediction_file"]


def evaluate(gt: WiderGroundTruth, predictions: WiderPredictions, breakdown: bool = True,
             breakdown_base: str = "hard") -> WiderResult:
    """Score predictions on easy/medium/hard (and the attribute/height breakdown) in one pass."""
    m = match(gt, predictions)
    settings = {name: score_setting(name, gt.keep[name], m, per_image=True) for name in SETTINGS}
    extra = {name: score_setting(name, mask, m) for name, mask in breakdown_masks(gt, breakdown_base).items()} \
        if breakdown else {}
    return WiderResult(
        settings=settings, breakdown=extra, semantics=predictions.semantics, ground_truth_sha256=gt.sha256,
        ground_truth_version=gt.version, ground_truth_source=gt.source, predictions_source=predictions.source,
        image_ids=tuple(f"{e}/{n}" for e, n in gt.images),
        image_faces={name: image_face_counts(gt, gt.keep[name]) for name in SETTINGS},
        input_notes=predictions.notes, n_predictions=int(len(predictions.boxes)),
        n_missing=len(predictions.missing), n_dropped=len(predictions.dropped), breakdown_base=breakdown_base,
        matching=m,
    )
