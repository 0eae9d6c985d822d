"""Paired bootstrap comparison of results on the same images, and statistically tied leaderboard ranks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from facebench.bootstrap import (DEFAULT_RESAMPLES, DEFAULT_SEED, LEVEL, Records, load_records,
                                 percentile_interval, resample_weights, resampled_metrics)
from facebench.errors import InputError

# Settings that name an input rather than change how it is scored: they may differ between compared results.
INPUT_SETTINGS = frozenset({"predictions", "ground_truth_dir", "ground_truth", "detections", "detections_dir",
                            "detections_format", "detection_format", "breakdown_base", "label", "images",
                            "image_sizes", "annotations_dir"})


@dataclass(frozen=True)
class MetricDifference:
    """A - B on one metric over paired resamples of the same images."""

    metric: str
    a: float | None
    b: float | None
    difference: float | None
    low: float | None
    high: float | None
    p_value: float | None

    @property
    def significant(self) -> bool:
        """True when the interval of the difference excludes zero."""
        return self.low is not None and (self.low > 0 or self.high < 0)


@dataclass(frozen=True)
class Comparison:
    """The paired comparison of two results, metric by metric."""

    a: str
    b: str
    benchmark: str
    n_images: int
    resamples: int
    seed: int
    level: float
    differences: tuple[MetricDifference, ...]

    def table(self) -> str:
        """The table `facebench compare` prints (metrics in percent)."""
        pct = f"{int(round(self.level * 100))}% interval"
        width = max([10] + [len(d.metric) for d in self.differences])
        lines = [f"paired bootstrap over {self.n_images} images ({self.resamples} resamples, seed {self.seed})",
                 f"  A = {self.a}", f"  B = {self.b}",
                 f"{'metric':<{width}} {'A':>8} {'B':>8} {'A - B':>8}   {pct:<18} {'p':>8}"]
        for d in self.differences:
            interval = "n/a" if d.low is None else f"[{100 * d.low:+.2f}, {100 * d.high:+.2f}]"
            mark = " *" if d.significant else ""
            lines.append(f"{d.metric:<{width}} {_pct(d.a):>8} {_pct(d.b):>8} {_pct(d.difference, signed=True):>8}   "
                         f"{interval:<18} {format_p_value(d.p_value, self.resamples):>8}{mark}")
        if any(d.significant for d in self.differences):
            lines.append("* the interval excludes 0: a statistically significant difference")
        return "\n".join(lines)

    def to_document(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {"schema": "facebench.comparison/1", "a": self.a, "b": self.b, "benchmark": self.benchmark,
                "images": self.n_images, "resamples": self.resamples, "seed": self.seed, "level": self.level,
                "metrics": {d.metric: {"a": d.a, "b": d.b, "difference": d.difference,
                                       "interval": None if d.low is None else [d.low, d.high],
                                       "p_value": d.p_value, "significant": d.significant}
                            for d in self.differences}}


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def format_p_value(p: float | None, resamples: int) -> str:
    """A p-value as text; at the bootstrap's resolution floor it reads '<' the floor."""
    if p is None:
        return "n/a"
    floor = 2.0 / (resamples + 1)
    if p <= floor + 1e-15:
        return f"<{floor:.2g}" if floor < 0.01 else f"{p:.3f}"
    return f"{p:.3f}"


def paired_p_value(differences: np.ndarray) -> float | None:
    """Two-sided bootstrap p-value of 'no difference': twice the smaller tail mass at zero, (k + 1)/(R + 1)."""
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return None
    below = (np.count_nonzero(d <= 0) + 1) / (d.size + 1)
    above = (np.count_nonzero(d >= 0) + 1) / (d.size + 1)
    return float(min(1.0, 2.0 * min(below, above)))


def difference_of_samples(metric: str, a_point: float | None, b_point: float | None, a: np.ndarray, b: np.ndarray,
                          level: float = LEVEL) -> MetricDifference:
    """Summarise paired resampled metrics of A and B into a MetricDifference."""
    if a_point is None or b_point is None:
        return MetricDifference(metric, a_point, b_point, None, None, None, None)
    d = a - b
    interval = percentile_interval(d, level)
    low, high = (None, None) if interval is None else interval
    return MetricDifference(metric, a_point, b_point, a_point - b_point, low, high, paired_p_value(d))


def check_comparable(a: Mapping[str, Any], b: Mapping[str, Any], a_name: str = "A", b_name: str = "B") -> None:
    """Raise a one-line InputError naming the first field that makes two result documents incomparable."""
    def differ(field: str, va: Any, vb: Any) -> InputError:
        return InputError(None, None, f"cannot compare: {field} differs ({va!r} in {a_name}, {vb!r} in {b_name})")

    for field in ("benchmark",):
        if a.get(field) != b.get(field):
            raise differ(field, a.get(field), b.get(field))
    pa, pb = a.get("protocol") or {}, b.get("protocol") or {}
    for key in ("name", "version"):
        if pa.get(key) != pb.get(key):
            raise differ(f"protocol.{key}", pa.get(key), pb.get(key))
    if a.get("ground_truth_sha256") != b.get("ground_truth_sha256"):
        raise differ("ground_truth_sha256", a.get("ground_truth_sha256"), b.get("ground_truth_sha256"))
    sa, sb = a.get("settings") or {}, b.get("settings") or {}
    for key in sorted(set(sa) | set(sb)):
        if key in INPUT_SETTINGS:
            continue
        if sa.get(key) != sb.get(key):
            raise differ(f"settings.{key}", sa.get(key), sb.get(key))


def _check_images(a: Records, b: Records, a_name: str, b_name: str) -> None:
    if tuple(a.image_ids) != tuple(b.image_ids):
        raise InputError(None, None, f"cannot compare: image_ids differ between the records of {a_name} and "
                         f"{b_name} ({len(a.image_ids)} vs {len(b.image_ids)} images)")


def compare_records(a: Records, b: Records, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                    level: float = LEVEL, a_name: str = "A", b_name: str = "B") -> list[MetricDifference]:
    """A - B per metric over the same seeded resamples of the same images."""
    _check_images(a, b, a_name, b_name)
    weights = resample_weights(len(a.image_ids), resamples, seed)
    sa, sb = resampled_metrics(a, weights), resampled_metrics(b, weights)
    pa, pb = a.point_estimates(), b.point_estimates()
    return [difference_of_samples(m, pa.get(m), pb.get(m), sa[m], sb[m], level) for m in pa if m in sb]


def _validated(path: str | os.PathLike) -> dict[str, Any]:
    """A result document checked field by field (store.validate_document), so bad fields name file and line."""
    from facebench.store import load_result

    return load_result(path).doc


def _load(path: str | os.PathLike) -> tuple[dict[str, Any], Records]:
    doc = _validated(path)
    return doc, load_records(path, doc)


def compare_files(a_path: str | os.PathLike, b_path: str | os.PathLike, resamples: int = DEFAULT_RESAMPLES,
                  seed: int = DEFAULT_SEED, level: float = LEVEL) -> Comparison:
    """Paired comparison of two saved results (JSON + records .npz beside each)."""
    doc_a, doc_b = _validated(a_path), _validated(b_path)
    check_comparable(doc_a, doc_b, str(a_path), str(b_path))
    rec_a, rec_b = load_records(a_path, doc_a), load_records(b_path, doc_b)
    differences = compare_records(rec_a, rec_b, resamples, seed, level, str(a_path), str(b_path))
    return Comparison(a=str(a_path), b=str(b_path), benchmark=str(doc_a.get("benchmark")),
                      n_images=len(rec_a.image_ids), resamples=resamples, seed=seed, level=level,
                      differences=tuple(differences))


# ------------------------------------------------------------------------------------------- leaderboard ties


@dataclass(frozen=True)
class RankedEntry:
    """One result's place on a leaderboard metric, with its interval and statistical rank."""

    index: int  # position in the input sequence
    value: float | None
    low: float | None  # its own bootstrap interval
    high: float | None
    rank: int  # 1 + the number of results significantly better than this one (paired bootstrap)
    tied: bool  # True when another result shares this rank


def ranked_with_ties(results: Sequence[str | os.PathLike | Records], metric: str,
                     resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                     level: float = LEVEL) -> list[RankedEntry]:
    """Results ordered by `metric` (best first), ranked by paired bootstrap: rank = 1 + #significantly better.

    Every result is resampled with the same seeded image weights, so each pair is a paired comparison; j is
    significantly better than i when the interval of metric_j - metric_i lies above zero. Results whose
    metric is undefined go last. File paths are checked to be comparable (InputError naming the field).
    """
    records = _records_of(results)
    if not records:
        return []
    for k in range(1, len(records)):
        _check_images(records[0], records[k], _name(results[0]), _name(results[k]))
    weights = resample_weights(len(records[0].image_ids), resamples, seed)
    samples, values = [], []
    for rec in records:
        point = rec.point_estimates()
        if metric not in point:
            raise InputError(None, None, f"metric {metric!r} not among {', '.join(point)}")
        values.append(point[metric])
        samples.append(resampled_metrics(rec, weights)[metric])
    order = sorted(range(len(records)), key=lambda i: (values[i] is None, -(values[i] or 0.0)))
    better = [0] * len(records)
    for i in order:
        for j in order:
            if i == j or values[i] is None or values[j] is None:
                continue
            interval = percentile_interval(samples[j] - samples[i], level)
            if interval is not None and interval[0] > 0:
                better[i] += 1
    entries = []
    for i in order:
        own = percentile_interval(samples[i], level) if values[i] is not None else None
        rank = 1 + better[i] if values[i] is not None else len(records)
        entries.append(RankedEntry(index=i, value=values[i], low=None if own is None else own[0],
                                   high=None if own is None else own[1], rank=rank, tied=False))
    counts: dict[int, int] = {}
    for e in entries:
        counts[e.rank] = counts.get(e.rank, 0) + 1
    return [RankedEntry(e.index, e.value, e.low, e.high, e.rank, counts[e.rank] > 1) for e in entries]


def tied_groups(results: Sequence[str | os.PathLike | Records], metric: str, resamples: int = DEFAULT_RESAMPLES,
                seed: int = DEFAULT_SEED, level: float = LEVEL) -> list[list[int]]:
    """Input indices grouped by shared statistical rank, best group first (singletons are untied)."""
    groups: dict[int, list[int]] = {}
    for entry in ranked_with_ties(results, metric, resamples, seed, level):
        groups.setdefault(entry.rank, []).append(entry.index)
    return [groups[r] for r in sorted(groups)]


def _name(item: Any) -> str:
    return str(item) if isinstance(item, (str, Path, os.PathLike)) else f"records[{type(item).__name__}]"


def _records_of(results: Sequence[str | os.PathLike | Records]) -> list[Records]:
    docs: list[tuple[str, dict[str, Any]]] = []
    records: list[Records] = []
    for item in results:
        if isinstance(item, (str, Path, os.PathLike)):
            doc, rec = _load(item)
            if docs:
                check_comparable(docs[0][1], doc, docs[0][0], str(item))
            docs.append((str(item), doc))
            records.append(rec)
        else:
            records.append(item)
    return records
