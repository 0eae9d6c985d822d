"""The WIDER FACE result: metrics, curves, breakdowns, per-image records, JSON and plot."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from facebench.results import make_document
from protocols.wider_face.evaluate import SettingCurve

PROTOCOL_NAME = "wider_face"
PROTOCOL_VERSION = "1"
BENCHMARK = "widerface-val"
RECORDS_FORMAT = 2


@dataclass(frozen=True, eq=False)
class WiderResult:
    """easy/medium/hard APs with curves, the attribute/height breakdown and the settings used."""

    settings: dict[str, SettingCurve]  # easy, medium, hard
    breakdown: dict[str, SettingCurve]
    semantics: str
    ground_truth_sha256: str
    ground_truth_version: str
    ground_truth_source: str
    predictions_source: str
    image_ids: tuple[str, ...]
    image_faces: dict[str, np.ndarray]  # setting -> kept faces per image
    input_notes: tuple[str, ...] = ()
    n_predictions: int = 0
    n_missing: int = 0
    n_dropped: int = 0
    breakdown_base: str = "hard"
    benchmark: str = BENCHMARK
    extra_settings: dict[str, Any] = field(default_factory=dict)
    matching: Any = None  # evaluate.Matching: per-prediction face hit and counting threshold

    @property
    def metrics(self) -> dict[str, float | None]:
        """AP per setting, fractions 0..1."""
        return {name: curve.ap for name, curve in self.settings.items()}

    def protocol_settings(self) -> dict[str, Any]:
        """Everything that determines the numbers (stored in the JSON)."""
        return {"semantics": self.semantics, "iou_threshold": 0.5, "thresh_num": 1000,
                "ground_truth_version": self.ground_truth_version,
                "ground_truth_dir": self.ground_truth_source, "predictions": self.predictions_source,
                "breakdown_base": self.breakdown_base, **self.extra_settings}

    def to_document(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The self-describing result JSON."""
        curves = {name: {"precision": c.precision, "recall": c.recall} for name, c in self.settings.items()}
        breakdown = {name: {"ap": c.ap, "n_faces": c.n_faces} for name, c in self.breakdown.items()}
        doc_extra: dict[str, Any] = {
            "breakdown": {"base": self.breakdown_base, "metrics": breakdown},
            "counts": {"images": len(self.image_ids), "predictions": self.n_predictions,
                       "images_without_file": self.n_missing, "files_rejected": self.n_dropped,
                       "faces": {name: c.n_faces for name, c in self.settings.items()}},
            "input_notes": list(self.input_notes),
        }
        if extra:
            doc_extra.update(extra)
        return make_document(benchmark=self.benchmark, protocol=PROTOCOL_NAME, protocol_version=PROTOCOL_VERSION,
                             settings=self.protocol_settings(), metrics=self.metrics,
                             ground_truth_sha256=self.ground_truth_sha256, curves=curves, extra=doc_extra)

    def save_records(self, path: str | os.PathLike) -> None:
        """Per-prediction records (.npz) from which the per-image rows of each setting are rebuilt on load.

        Format 2: per prediction (evaluation order) the face hit (-1 none) and the first counting threshold
        index, the per-image prediction offsets and whether the image has faces, and per setting the
        predictions it ignores and those that recall a face; kept faces per image. Rows [n_images, 1000]
        would be ~13 MB per array, so they are not stored.
        """
        m = self.matching
        if m is None:
            raise ValueError("this result has no matching to write records from")
        offsets = np.zeros(m.n_images + 1, dtype=np.int64)
        np.cumsum(np.bincount(m.image, minlength=m.n_images), out=offsets[1:])
        arrays: dict[str, np.ndarray] = {
            "records_format": np.array(RECORDS_FORMAT),
            "image_ids": np.array([i.encode("utf-8") for i in self.image_ids]),  # bytes: 4x smaller than unicode
            "pred_offsets": offsets, "pred_face": m.choice.astype(np.int32),
            "pred_counted": m.counted.astype(np.int16),
            "image_evaluated": np.bincount(m.image[m.evaluated], minlength=m.n_images) > 0,
        }
        for name, curve in self.settings.items():
            arrays[f"{name}_faces"] = self.image_faces[name]
            arrays[f"{name}_ignored"] = np.asarray(curve.ignored, dtype=np.int32)
            arrays[f"{name}_tp"] = np.asarray(curve.tp, dtype=np.int32)
        arrays["meta"] = np.array([PROTOCOL_NAME, PROTOCOL_VERSION, self.semantics, self.ground_truth_sha256])
        np.savez(os.fspath(path), **arrays)

    def plot(self, path: str | os.PathLike, label: str = "facebench", overlays: Mapping[str, Any] | None = None,
             title: str = "WIDER FACE val") -> None:
        """PR curves, one panel per setting, as in the WIDER FACE papers (overlays: setting -> [PRCurve])."""
        from facebench.plots.pr import PRCurve, plot_pr_panels

        panels = {}
        for name, c in self.settings.items():
            panels[name] = [PRCurve(label, c.recall, c.precision, c.ap)] + list((overlays or {}).get(name, []))
        plot_pr_panels(panels, path, title=title)

    def table(self, intervals: Mapping[str, Any] | None = None) -> str:
        """The easy/medium/hard table printed by the CLI (with 95% intervals when given)."""
        rows = [f"{'setting':<8} {'AP':>8} {'faces':>7}" + ("   95% interval" if intervals else "")]
        for name, c in self.settings.items():
            ap = "n/a" if c.ap is None else f"{100 * c.ap:.2f}"
            row = f"{name:<8} {ap:>8} {c.n_faces:>7}"
            if intervals and intervals.get(name):
                lo, hi = intervals[name]
                row += f"   [{100 * lo:.2f}, {100 * hi:.2f}]"
            rows.append(row)
        return "\n".join(rows)
