"""The dataset ROC: the official merge of per-image entries, `DiscROC.txt` / `ContROC.txt` text, TPR at k FP."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from protocols.fddb.matching import ImageEntries


SUMMARY_FP = (100, 500, 1000, 2000)


@dataclass(frozen=True, eq=False)
class RocCurve:
    """The official ROC points, ascending threshold (so FP decreases down the list)."""

    threshold: np.ndarray
    n_faces: int
    tp_disc: np.ndarray
    tp_cont: np.ndarray
    fp: np.ndarray

    @property
    def disc_tpr(self) -> np.ndarray:
        """Discrete true-positive rate per point (0 when there are no faces)."""
        return self.tp_disc / self.n_faces if self.n_faces else np.zeros(len(self.threshold))

    @property
    def cont_tpr(self) -> np.ndarray:
        """Continuous (mean overlap) true-positive rate per point."""
        return self.tp_cont / self.n_faces if self.n_faces else np.zeros(len(self.threshold))


def merge_entries(entries: ImageEntries) -> RocCurve:
    """The official merge: at each distinct threshold s, every image adds its entry for its smallest
    threshold >= s (all-zero with its N when it has none)."""
    thresholds = np.unique(entries.threshold)
    first = np.zeros(len(entries.threshold), dtype=bool)
    first[entries.start[:-1][np.diff(entries.start) > 0]] = True
    previous = np.where(first, -np.inf, np.concatenate([[-np.inf], entries.threshold[:-1]]))
    lo = np.searchsorted(thresholds, previous, side="right")
    hi = np.searchsorted(thresholds, entries.threshold, side="right")

    def spread(values: np.ndarray) -> np.ndarray:
        acc = np.zeros(len(thresholds) + 1, dtype=values.dtype)
        np.add.at(acc, lo, values)
        np.add.at(acc, hi, -values)
        return np.cumsum(acc[:-1])

    return RocCurve(threshold=thresholds, n_faces=int(entries.faces.sum()),
                    tp_disc=spread(entries.tp_disc.astype(np.int64)),
                    tp_cont=_exact_spread(entries.tp_cont, lo, hi, len(thresholds)),
                    fp=spread(entries.fp.astype(np.int64)))


def _exact_spread(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    """Sum of `values[k]` over k with lo[k] <= j < hi[k], for every j, exactly rounded to double.

    A floating difference array would leave residues like 5.6e-17 where the true sum is 0; the doubles are
    instead summed as exact integers (in units of the smallest binary place present) and rounded once.
    """
    values = np.asarray(values, dtype=np.float64)
    nonzero = values != 0
    if not nonzero.any():
        return np.zeros(n)
    mantissa, exponent = np.frexp(values[nonzero])
    ints = (mantissa * 2.0 ** 53).astype(np.int64)  # exact: value = ints * 2**(exponent - 53)
    scale = int(53 - exponent.min())
    scaled = ints.astype(object) * (2 ** (exponent - exponent.min()).astype(object))
    acc = [0] * (n + 1)
    for value, a, b in zip(scaled.tolist(), lo[nonzero].tolist(), hi[nonzero].tolist()):
        acc[a] += value
        acc[b] -= value
    denominator = 2 ** scale
    return np.array([value / denominator for value in itertools.accumulate(acc[:-1])], dtype=np.float64)


def format_number(value: float) -> str:
    """C++ default stream formatting of a double: 6 significant digits (e.g. 0.896345, 249, 1.79769e+308)."""
    return f"{float(value):.6g}"


def disc_roc_text(curve: RocCurve) -> str:
    """The official DiscROC.txt: `TPR FP threshold` per point."""
    if curve.n_faces:
        tpr = curve.tp_disc / curve.n_faces
        lines = [f"{format_number(t)} {format_number(f)} {format_number(s)}"
                 for t, f, s in zip(tpr.tolist(), curve.fp.tolist(), curve.threshold.tolist())]
    else:
        lines = [f"0 0 {format_number(s)}" for s in curve.threshold.tolist()]
    return "".join(line + "\n" for line in lines)


def cont_roc_text(curve: RocCurve) -> str:
    """The official ContROC.txt: `TPR FP` per point (TPR = mean overlap of the matched faces)."""
    if curve.n_faces:
        tpr = curve.tp_cont / curve.n_faces
        lines = [f"{format_number(t)} {format_number(f)}" for t, f in zip(tpr.tolist(), curve.fp.tolist())]
    else:
        lines = ["0 0"] * len(curve.threshold)
    return "".join(line + "\n" for line in lines)


def write_roc_files(prefix: str | os.PathLike, curve: RocCurve) -> tuple[Path, Path]:
    """Write <prefix>DiscROC.txt and <prefix>ContROC.txt as the official program does."""
    prefix = os.fspath(prefix)
    disc, cont = Path(prefix + "DiscROC.txt"), Path(prefix + "ContROC.txt")
    disc.parent.mkdir(parents=True, exist_ok=True)
    disc.write_text(disc_roc_text(curve))
    cont.write_text(cont_roc_text(curve))
    return disc, cont


def tpr_at_fp(tpr: np.ndarray, fp: np.ndarray, limit: float, rule: str = "max") -> float | None:
    """TPR at `limit` false positives: "max" = largest TPR over points with FP <= limit (facebench's figure);
    "strict" = face-eval's legend rule (each column sorted descending on its own, TPR of the first row with
    FP < limit). None when no point qualifies."""
    tpr = np.asarray(tpr, dtype=np.float64)
    fp = np.asarray(fp, dtype=np.float64)
    if rule == "max":
        ok = fp <= limit
        return float(tpr[ok].max()) if ok.any() else None
    if rule == "strict":
        position = int(np.count_nonzero(fp >= limit))
        if position >= len(tpr):
            return None
        return float(np.sort(tpr)[::-1][position])
    raise ValueError(f"unknown rule {rule!r} (max or strict)")


def summary_metrics(curve: RocCurve, limits: Sequence[int] = SUMMARY_FP) -> dict[str, float | None]:
    """TPR at the quoted false-positive counts, discrete and continuous, by both rules."""
    metrics: dict[str, float | None] = {}
    for kind, tpr in (("disc", curve.disc_tpr), ("cont", curve.cont_tpr)):
        for limit in limits:
            metrics[f"{kind}_tpr_at_{limit}fp"] = tpr_at_fp(tpr, curve.fp, limit, "max")
        for limit in limits:
            metrics[f"{kind}_tpr_at_{limit}fp_strict"] = tpr_at_fp(tpr, curve.fp, limit, "strict")
    return metrics
