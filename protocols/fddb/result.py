"""The typed FDDB result: metrics, the result JSON, per-image records, ROC files and the CLI table."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from facebench.results import make_document
from protocols.fddb.matching import ImageEntries
from protocols.fddb.roc import RocCurve, SUMMARY_FP, summary_metrics, write_roc_files


PROTOCOL_NAME = "fddb"
PROTOCOL_VERSION = "1"
BENCHMARK = "fddb"


@dataclass(frozen=True, eq=False)
class FddbResult:
    """An FDDB evaluation: the ROC, the per-image entries it sums, and what determined the numbers."""

    curve: RocCurve
    entries: ImageEntries
    image_ids: tuple[str, ...]
    convention: str
    detection_format: str
    ground_truth_source: str
    ground_truth_sha256: str
    detections_source: str
    sizes_source: str
    folds: tuple[str, ...]
    n_detections: int
    n_pairs: int
    pi: float = math.pi

    @property
    def metrics(self) -> dict[str, Any]:
        """Summary TPRs (fractions) plus the number of ROC points."""
        return {**summary_metrics(self.curve), "roc_points": int(len(self.curve.threshold))}

    def protocol_settings(self) -> dict[str, Any]:
        """Everything that determines the numbers."""
        return {"ellipse_convention": self.convention, "pi": self.pi, "detection_format": self.detection_format,
                "overlap": "pixel IoU on the OpenCV raster, clipped to the image", "matching": "hungarian-max-sum",
                "discrete_threshold": "> 0.5", "tpr_at_fp_rule": "max TPR over points with FP <= k ('_strict': "
                "face-eval, first row with FP < k after sorting each column)",
                "ground_truth": self.ground_truth_source, "folds": list(self.folds),
                "detections": self.detections_source, "image_sizes": self.sizes_source}

    def to_document(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The self-describing result JSON."""
        c = self.curve
        curves = {"disc": {"tpr": c.disc_tpr, "fp": c.fp, "threshold": c.threshold},
                  "cont": {"tpr": c.cont_tpr, "fp": c.fp, "threshold": c.threshold}}
        doc_extra: dict[str, Any] = {
            "counts": {"images": len(self.image_ids), "faces": c.n_faces, "detections": self.n_detections,
                       "overlapping_pairs": self.n_pairs, "roc_points": int(len(c.threshold))},
        }
        if extra:
            doc_extra.update(extra)
        return make_document(benchmark=BENCHMARK, protocol=PROTOCOL_NAME, protocol_version=PROTOCOL_VERSION,
                             settings=self.protocol_settings(), metrics=self.metrics,
                             ground_truth_sha256=self.ground_truth_sha256, curves=curves, extra=doc_extra)

    def save_records(self, path: str | os.PathLike) -> None:
        """Per-image entries (what the ROC sums) as a compressed .npz.

        Keys: image_ids, faces (N per image), entry_start (image i owns entries entry_start[i]:[i+1]),
        entry_threshold, entry_valid, entry_tp_cont, entry_tp_disc, entry_fp, meta.
        """
        e = self.entries
        np.savez_compressed(os.fspath(path), image_ids=np.array(self.image_ids), faces=e.faces,
                            entry_start=e.start, entry_threshold=e.threshold, entry_valid=e.valid,
                            entry_tp_cont=e.tp_cont, entry_tp_disc=e.tp_disc, entry_fp=e.fp,
                            meta=np.array([PROTOCOL_NAME, PROTOCOL_VERSION, self.convention,
                                           self.ground_truth_sha256]))

    def write_roc(self, prefix: str | os.PathLike) -> tuple[Path, Path]:
        """<prefix>DiscROC.txt and <prefix>ContROC.txt, official format."""
        return write_roc_files(prefix, self.curve)

    def table(self) -> str:
        """The short table the CLI prints: TPR at the quoted FP counts."""
        m = summary_metrics(self.curve)
        rows = [f"{'FP':>6} {'disc TPR':>9} {'cont TPR':>9}"]
        for limit in SUMMARY_FP:
            d, c = m[f"disc_tpr_at_{limit}fp"], m[f"cont_tpr_at_{limit}fp"]
            rows.append(f"{limit:>6} {'n/a' if d is None else f'{d:.4f}':>9} {'n/a' if c is None else f'{c:.4f}':>9}")
        return "\n".join(rows)
