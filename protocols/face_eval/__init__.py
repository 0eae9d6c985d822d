"""AFW and PASCAL Face with the face-eval toolbox protocol (Mathias et al. 2014; protocols.md §3)."""

from protocols.face_eval.curve import precision_recall, voc_ap, voc_ap_11point
from protocols.face_eval.detections import Detections, read_detections
from protocols.face_eval.evaluate import (DEFAULT_ITERATIONS, BoxCorrection, FaceEvalResult, baseline_overlap,
                                          evaluate, is_point_baseline, records_ap)
from protocols.face_eval.ground_truth import (ANNOTATION_FILES, FaceEvalGroundTruth, default_annotation_file,
                                              load_ground_truth, minimum_detection_size)
from protocols.face_eval.matching import match_detections, size_filter_mask

__all__ = [
    "ANNOTATION_FILES", "DEFAULT_ITERATIONS", "BoxCorrection", "Detections", "FaceEvalGroundTruth",
    "FaceEvalResult", "baseline_overlap", "default_annotation_file", "evaluate", "is_point_baseline",
    "load_ground_truth", "match_detections", "minimum_detection_size", "precision_recall", "read_detections",
    "records_ap", "size_filter_mask", "voc_ap", "voc_ap_11point",
]
