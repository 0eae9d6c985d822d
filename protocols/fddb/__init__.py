"""FDDB (Jain & Learned-Miller 2010): the official `evaluate` program as a vectorised port (protocols.md §2).

Pipeline: readers (`ground_truth`: folds or one ellipse list, `detections`, `image_sizes`) -> pixel-exact
regions (`raster`) -> overlaps |A n D| / |A u D| of every touching (face, detection) pair (`overlaps`) ->
maximum-overlap-sum matching per image at every unique score (`matching`) -> the official merge into one
ROC and its `DiscROC.txt` / `ContROC.txt` text (`roc`) -> the result JSON (`result`).
"""

from __future__ import annotations

import math

from protocols.fddb.detections import FORMAT_COLUMNS, FddbDetections, detection_files, read_detections
from protocols.fddb.ground_truth import FOLD_IDS, FddbGroundTruth, fold_ids_present, load_annotations, load_folds
from protocols.fddb.image_sizes import ImageSizes, read_image_sizes, read_size_table
from protocols.fddb.matching import DBL_MAX, ImageEntries, image_entries
from protocols.fddb.overlaps import PairOverlaps, face_runs, pair_overlaps
from protocols.fddb.reference import evaluate_reference
from protocols.fddb.result import BENCHMARK, PROTOCOL_NAME, PROTOCOL_VERSION, FddbResult
from protocols.fddb.roc import (SUMMARY_FP, RocCurve, cont_roc_text, disc_roc_text, format_number, merge_entries,
                                summary_metrics, tpr_at_fp, write_roc_files)

__all__ = [
    "BENCHMARK", "DBL_MAX", "FOLD_IDS", "FORMAT_COLUMNS", "PROTOCOL_NAME", "PROTOCOL_VERSION", "SUMMARY_FP",
    "FddbDetections", "FddbGroundTruth", "FddbResult", "ImageEntries", "ImageSizes", "PairOverlaps", "RocCurve",
    "cont_roc_text", "detection_files", "disc_roc_text", "evaluate", "evaluate_reference", "face_runs",
    "fold_ids_present", "format_number", "image_entries", "load_annotations", "load_folds", "merge_entries",
    "pair_overlaps", "read_detections", "read_image_sizes", "read_size_table", "summary_metrics", "tpr_at_fp",
    "write_roc_files",
]


def evaluate(gt: FddbGroundTruth, dets: FddbDetections, sizes: ImageSizes, convention: str = "opencv21",
             cache: bool = True, pi: float = math.pi) -> FddbResult:
    """The official FDDB evaluation of `dets` on `gt` (images of the given sizes).

    `pi` is the program's M_PI (raster.MSVC_PI reproduces Windows builds); `cache` keeps the annotation
    rasters on disk (see `overlaps.face_runs`); results never depend on it.
    """
    overlaps = pair_overlaps(gt, dets, sizes, convention, cache=cache, pi=pi)
    entries = image_entries(gt, dets, overlaps)
    curve = merge_entries(entries)
    return FddbResult(curve=curve, entries=entries, image_ids=gt.images, convention=convention,
                      detection_format=dets.format, ground_truth_source=gt.source,
                      ground_truth_sha256=gt.sha256(), detections_source=", ".join(dets.files),
                      sizes_source=sizes.source, folds=gt.folds, n_detections=dets.count,
                      n_pairs=int(len(overlaps.face)), pi=pi)
