"""Image-level bootstrap confidence intervals from a result's per-image records, vectorised over resamples.

A resample draws n images with replacement; the metric of a resample is the protocol's metric computed on
the weighted sums of the per-image records (weight = how often the image was drawn), so nothing is re-matched.
Thresholds and score normalisation stay those of the full evaluation (the bootstrap is conditional on them).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
import zipfile
import zlib
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from facebench.results import records_path
from facebench.errors import InputError

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
LEVEL = 0.95
# Below this fraction of non-zero histogram cells the sparse product beats the dense BLAS one (measured by
# benchmarks/bench_bootstrap.py on WIDER val records: 1-4 % non-zero for real detectors).
SPARSE_DENSITY = 0.06
FLOAT32_EXACT = 2 ** 24  # integers below this are exact in float32, partial sums included
RESAMPLE_BLOCK = 1000  # resamples per block: bounds memory at about 50 MB for WIDER's three settings
# Records reproduce their result's metrics to ~1e-15 (measured on WIDER, FDDB and AFW); far above that, they are
# another run's.
RECORDS_MATCH_TOLERANCE = 1e-9


class Records(Protocol):
    """What the bootstrap needs from a protocol: per-image records, exact point metrics, resampled metrics."""

    protocol: str
    image_ids: tuple[str, ...]

    def point_estimates(self) -> dict[str, float | None]:
        """The headline metrics of the full image set (the protocol's own numbers)."""

    def resampled(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Headline metrics for each row of `weights` ([resamples, n_images] image multiplicities)."""


# --------------------------------------------------------------------------------------------------- math


def resample_weights(n_images: int, resamples: int, seed: int = DEFAULT_SEED) -> np.ndarray:
    """[resamples, n_images] int32: how often each image is drawn in each seeded resample (rows sum to n)."""
    if n_images <= 0:
        raise ValueError("cannot bootstrap an empty image set")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_images, size=(resamples, n_images))
    flat = (draws + np.arange(resamples)[:, None] * n_images).ravel()
    return np.bincount(flat, minlength=resamples * n_images).reshape(resamples, n_images).astype(np.int32)


def batch_voc_ap(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """All-point interpolated (VOC) AP of many curves at once: columns of [points, curves] arrays.

    Same definition as protocols.wider_face.curves.voc_ap: sentinels (0, 0) and (1, 0), the precision
    envelope from the right skipping NaN (MATLAB max), area over the recall steps. Summing every step,
    zero-width ones included, equals summing the changed ones (a zero step adds exactly 0).
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if recall.ndim == 1:
        recall, precision = recall[:, None], precision[:, None]
    zeros, ones = np.zeros((1, recall.shape[1])), np.ones((1, recall.shape[1]))
    mrec = np.concatenate((zeros, recall, ones))
    mpre = np.concatenate((zeros, precision, zeros))
    # Points along axis 0 keep every step of the sweep a contiguous row operation.
    envelope = np.fmax.accumulate(mpre[::-1], axis=0)[::-1]
    return np.sum(np.diff(mrec, axis=0) * envelope[1:], axis=0)


def weighted_row_sums(weights: np.ndarray, rows: Sequence[np.ndarray]) -> list[np.ndarray]:
    """(weights @ rows).T for several [n_images, T] cumulative count matrices, exactly: float64 [T, R] each.

    The rows are cumulative per-threshold counts, so their increments (a histogram) are sparse: the product
    is taken on the increments (sparse or dense, whichever is cheaper) and cumulated afterwards. Values are
    integers; float32 is used only when every partial sum stays below 2**24, where it is exact.
    """
    rows = [np.ascontiguousarray(r) for r in rows]
    n_images = weights.shape[1]
    increments = [np.diff(r, axis=1, prepend=np.zeros((n_images, 1), dtype=r.dtype)) for r in rows]
    finals = np.zeros(n_images)
    for r in rows:
        if r.shape[1]:
            finals = np.maximum(finals, np.abs(r[:, -1]))
    # Counts are non-decreasing along thresholds, so no partial sum exceeds the weighted final counts.
    bound = float((weights @ finals).max(initial=0.0))
    exact32 = bound < FLOAT32_EXACT and not any((h < 0).any() for h in increments)
    dtype = np.float32 if exact32 else np.float64
    columns = np.ascontiguousarray(weights.T, dtype=dtype)  # [n_images, R]
    nonzero = sum(np.count_nonzero(h) for h in increments)
    cells = sum(h.size for h in increments)
    sparse = cells > 0 and nonzero < SPARSE_DENSITY * cells
    if sparse:
        import scipy.sparse
    out = []
    for h in increments:
        if sparse:
            flat = np.flatnonzero(h)  # row-major: already in CSR order
            width = h.shape[1]
            indptr = np.zeros(n_images + 1, dtype=np.int64)
            np.cumsum(np.bincount(flat // width, minlength=n_images), out=indptr[1:])
            matrix = scipy.sparse.csr_matrix((h.ravel()[flat].astype(dtype), flat % width, indptr),
                                             shape=h.shape)
            product = matrix.T @ columns  # [T, R]
        else:
            product = h.T.astype(dtype) @ columns
        out.append(np.cumsum(np.asarray(product, dtype=np.float64), axis=0))
    return out


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float] | None:
    """The percentile bootstrap interval of the defined (non-NaN) samples; None when there are none."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return None
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(samples, [tail, 1.0 - tail])
    return float(lo), float(hi)


# ------------------------------------------------------------------------------------------ protocol records


@dataclass(frozen=True, eq=False)
class WiderRecords:
    """WIDER FACE: per image and setting, proposals and TP at the 1000 thresholds, and kept faces."""

    image_ids: tuple[str, ...]
    proposals: dict[str, np.ndarray]  # setting -> [n_images, 1000]
    true_positives: dict[str, np.ndarray]
    faces: dict[str, np.ndarray]  # setting -> [n_images]
    protocol: str = "wider_face"
    points: dict[str, float | None] = field(default_factory=dict)

    def point_estimates(self) -> dict[str, float | None]:
        """AP per setting from the summed rows (the protocol's curves.pr_curve and curves.voc_ap)."""
        from protocols.wider_face import curves

        out: dict[str, float | None] = {}
        for name in self.proposals:
            if name in self.points:
                out[name] = self.points[name]
                continue
            n_faces = int(self.faces[name].sum())
            if n_faces == 0:
                out[name] = None
                continue
            precision, recall = curves.pr_curve(self.proposals[name].sum(axis=0),
                                                self.true_positives[name].sum(axis=0), n_faces)
            out[name] = curves.voc_ap(recall, precision)
        return out

    def resampled(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """AP per setting for every resample (rows of `weights`)."""
        names = list(self.proposals)
        matrices = [m for name in names for m in (self.proposals[name], self.true_positives[name])]
        sums = weighted_row_sums(weights, matrices)
        out = {}
        for k, name in enumerate(names):
            proposals, tps = sums[2 * k], sums[2 * k + 1]
            n_faces = weights.astype(np.float64) @ self.faces[name].astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                precision = tps / proposals
                recall = tps / n_faces[None, :]
            ap = batch_voc_ap(recall, precision)
            ap[n_faces == 0] = np.nan
            out[name] = ap
        return out


@dataclass(frozen=True, eq=False)
class FaceEvalRecords:
    """AFW / PASCAL Face (face-eval): per detection in score order, TP/FP flags and image; positives per image."""

    image_ids: tuple[str, ...]
    tp: np.ndarray  # [D] bool, score order
    fp: np.ndarray
    image_index: np.ndarray  # [D]
    positives_per_image: np.ndarray  # [n_images]
    protocol: str = "face-eval"
    points: dict[str, float | None] = field(default_factory=dict)

    def point_estimates(self) -> dict[str, float | None]:
        """AP (the toolbox's records_ap on the flags)."""
        if "ap" in self.points:
            return {"ap": self.points["ap"]}
        from protocols.face_eval import records_ap

        return {"ap": records_ap(self.tp, self.fp, int(self.positives_per_image.sum()))}

    def resampled(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """AP for every resample: each detection weighs as often as its image was drawn."""
        tp = self.tp.astype(np.float64)
        fp = self.fp.astype(np.float64)
        positives = weights.astype(np.float64) @ self.positives_per_image.astype(np.float64)
        out = np.empty(weights.shape[0])
        # Blocks of resamples keep [block, D] small even for long detection lists.
        block = max(1, int(4_000_000 // max(1, len(tp))))
        for start in range(0, weights.shape[0], block):
            w = weights[start:start + block].T[self.image_index].astype(np.float64)  # [D, block]
            tp_cum = np.cumsum(w * tp[:, None], axis=0)
            fp_cum = np.cumsum(w * fp[:, None], axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                recall = tp_cum / positives[None, start:start + block]
                precision = tp_cum / (tp_cum + fp_cum)
            out[start:start + block] = batch_voc_ap(recall, precision)
        out[positives == 0] = np.nan
        return {"ap": out}


FDDB_LIMITS = (100, 500, 1000, 2000)  # false-positive counts of the quoted TPRs (protocols.fddb.SUMMARY_FP)
FDDB_BLOCK_CELLS = 4_000_000  # ROC points x resamples per block


@dataclass(frozen=True, eq=False)
class FddbRecords:
    """FDDB: per image, its entries (ascending own thresholds) with discrete/continuous TP and FP; faces."""

    image_ids: tuple[str, ...]
    faces: np.ndarray  # [n_images]
    entry_start: np.ndarray  # [n_images + 1]: image i owns entries entry_start[i]:entry_start[i + 1]
    entry_threshold: np.ndarray
    entry_tp_disc: np.ndarray
    entry_tp_cont: np.ndarray
    entry_fp: np.ndarray
    protocol: str = "fddb"
    points: dict[str, float | None] = field(default_factory=dict)

    @staticmethod
    def names() -> tuple[str, ...]:
        """Metric names: the max-rule TPR at each quoted FP count, discrete and continuous."""
        return tuple(f"{kind}_tpr_at_{limit}fp" for kind in ("disc", "cont") for limit in FDDB_LIMITS)

    def point_estimates(self) -> dict[str, float | None]:
        """The result's own figures when known, else the records' unit-weight curve."""
        if self.points:
            return {name: self.points.get(name) for name in self.names()}
        values = self.resampled(np.ones((1, len(self.image_ids)), dtype=np.int32))
        return {name: (None if not np.isfinite(v[0]) else float(v[0])) for name, v in values.items()}

    def _spread_matrices(self) -> tuple[int, list[Any]]:
        """Sparse difference matrices [points + 1, n_images]: entry k adds its value on points lo_k..hi_k-1.

        As in the official merge, at each distinct threshold every image contributes its entry for its
        smallest own threshold >= it: entry k serves the points after its predecessor's threshold up to its own.
        """
        import scipy.sparse

        thresholds = np.unique(self.entry_threshold)
        start = np.asarray(self.entry_start)
        image = np.repeat(np.arange(len(start) - 1), np.diff(start))
        first = np.zeros(len(self.entry_threshold), dtype=bool)
        first[start[:-1][np.diff(start) > 0]] = True
        previous = np.where(first, -np.inf, np.concatenate([[-np.inf], self.entry_threshold[:-1]]))
        lo = np.searchsorted(thresholds, previous, side="right")
        hi = np.searchsorted(thresholds, self.entry_threshold, side="right")
        shape = (len(thresholds) + 1, len(start) - 1)
        rows, cols = np.concatenate([lo, hi]), np.concatenate([image, image])
        matrices = []
        for values in (self.entry_tp_disc, self.entry_tp_cont, self.entry_fp):
            v = np.asarray(values, dtype=np.float64)
            matrices.append(scipy.sparse.csr_matrix((np.concatenate([v, -v]), (rows, cols)), shape=shape))
        return len(thresholds), matrices

    def resampled(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Max-rule TPR at each FP count for every resample (rows of `weights`)."""
        n_points, (disc, cont, fp) = self._spread_matrices()
        n_faces = weights.astype(np.float64) @ np.asarray(self.faces, dtype=np.float64)
        out = {name: np.full(weights.shape[0], np.nan) for name in self.names()}
        block = max(1, FDDB_BLOCK_CELLS // max(1, n_points))
        for s in range(0, weights.shape[0], block):
            columns = np.ascontiguousarray(weights[s:s + block].T, dtype=np.float64)
            fps = np.cumsum(fp @ columns, axis=0)[:n_points]
            faces = n_faces[s:s + block]
            for kind, matrix in (("disc", disc), ("cont", cont)):
                with np.errstate(divide="ignore", invalid="ignore"):
                    tpr = np.cumsum(matrix @ columns, axis=0)[:n_points] / faces[None, :]
                for limit in FDDB_LIMITS:
                    best = np.where(fps <= limit, tpr, -np.inf).max(axis=0, initial=-np.inf)
                    best[~np.isfinite(best) | (faces == 0)] = np.nan
                    out[f"{kind}_tpr_at_{limit}fp"][s:s + block] = best
        return out


def records_from_result(result: Any) -> Records:
    """The bootstrap records of an in-memory protocol result (WiderResult, FaceEvalResult)."""
    if hasattr(result, "settings") and hasattr(result, "image_faces"):
        settings = result.settings
        if any(c.image_proposals is None for c in settings.values()):
            raise InputError(None, None, "this WIDER result has no per-image rows (evaluate(..., per_image=True))")
        return WiderRecords(
            image_ids=tuple(result.image_ids),
            proposals={n: c.image_proposals for n, c in settings.items()},
            true_positives={n: c.image_true_positives for n, c in settings.items()},
            faces={n: np.asarray(result.image_faces[n]) for n in settings},
            points={n: c.ap for n, c in settings.items()})
    if hasattr(result, "positives_per_image") and hasattr(result, "tp"):
        return FaceEvalRecords(image_ids=tuple(result.image_keys), tp=np.asarray(result.tp, dtype=bool),
                               fp=np.asarray(result.fp, dtype=bool), image_index=np.asarray(result.image_index),
                               positives_per_image=np.asarray(result.positives_per_image),
                               points={"ap": float(result.ap)})
    if hasattr(result, "entries") and hasattr(result, "curve"):
        e = result.entries
        metrics = result.metrics
        return FddbRecords(image_ids=tuple(result.image_ids), faces=np.asarray(e.faces), entry_start=e.start,
                           entry_threshold=e.threshold, entry_tp_disc=e.tp_disc, entry_tp_cont=e.tp_cont,
                           entry_fp=e.fp, points={k: v for k, v in metrics.items() if k in FddbRecords.names()})
    raise InputError(None, None, f"no bootstrap support for {type(result).__name__} results")


# ------------------------------------------------------------------------------------------------ intervals


@dataclass(frozen=True, eq=False)
class Bootstrap:
    """Point estimates, resampled metrics and percentile intervals of one result."""

    point: dict[str, float | None]
    samples: dict[str, np.ndarray]  # metric -> [resamples]
    resamples: int
    seed: int
    level: float = LEVEL

    def intervals(self) -> dict[str, tuple[float, float] | None]:
        """metric -> (low, high) percentile interval."""
        return {name: percentile_interval(s, self.level) for name, s in self.samples.items()}


def resampled_metrics(records: Records, weights: np.ndarray) -> dict[str, np.ndarray]:
    """The records' metrics for every row of `weights`, in blocks of resamples (bounded memory)."""
    if weights.shape[1] != len(records.image_ids):
        raise ValueError(f"weights cover {weights.shape[1]} images, records {len(records.image_ids)}")
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, weights.shape[0], RESAMPLE_BLOCK):
        for name, values in records.resampled(weights[start:start + RESAMPLE_BLOCK]).items():
            parts.setdefault(name, []).append(values)
    return {name: np.concatenate(values) for name, values in parts.items()}


def bootstrap(records: Records, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
              level: float = LEVEL) -> Bootstrap:
    """Seeded image-level bootstrap of every headline metric of `records`."""
    weights = resample_weights(len(records.image_ids), resamples, seed)
    return Bootstrap(point=records.point_estimates(), samples=resampled_metrics(records, weights),
                     resamples=resamples, seed=seed, level=level)


def intervals_for_result(result: Any, resamples: int = DEFAULT_RESAMPLES,
                         seed: int = DEFAULT_SEED) -> dict[str, tuple[float, float] | None]:
    """95% bootstrap interval of each headline metric of an in-memory result: {metric: (low, high)}."""
    return bootstrap(records_from_result(result), resamples, seed).intervals()


# ------------------------------------------------------------------------------------- result files (.npz)


def _rerun_hint(doc: Mapping[str, Any]) -> str:
    benchmark = str(doc.get("benchmark", ""))
    command = {"widerface-val": "widerface", "afw": "afw", "pascal": "pascal"}.get(benchmark, "<benchmark>")
    if benchmark.startswith("fddb"):
        command = "fddb"
    return f"re-run `facebench eval {command} ... --out` to write them"


def _npz(path: Path, doc: Mapping[str, Any], result_path: Path):
    if not path.is_file():
        raise InputError(result_path, None, f"no per-image records ({path.name} not found beside it): "
                         f"{_rerun_hint(doc)}")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(path, None, f"unreadable records file ({exc}); {_rerun_hint(doc)}") from None


def _require(data, keys: Sequence[str], path: Path, doc: Mapping[str, Any]) -> None:
    missing = [k for k in keys if k not in data.files]
    if missing:
        raise InputError(path, None, f"records lack {', '.join(missing)} (older facebench?); {_rerun_hint(doc)}")


def _wider_records(data, path: Path, result_path: Path, doc: Mapping[str, Any],
                   metrics: Mapping[str, Any]) -> WiderRecords:
    """WIDER records: format 2 (per prediction, rows rebuilt here) or format 1 (rows stored)."""
    stored = [k[:-len("_proposals")] for k in data.files if k.endswith("_proposals")]
    names = stored or [k[:-len("_tp")] for k in data.files if k.endswith("_tp")]
    parts = ("proposals", "true_positives", "faces") if stored else ("ignored", "tp", "faces")
    shared = [] if stored else ["pred_offsets", "pred_counted", "image_evaluated"]
    _require(data, ["image_ids", "meta"] + shared + [f"{n}_{s}" for n in names for s in parts], path, doc)
    if not names:
        raise InputError(path, None, f"records hold no per-image rows; {_rerun_hint(doc)}")
    meta = [str(x) for x in data["meta"]]
    if len(meta) >= 4 and meta[3] != doc.get("ground_truth_sha256"):
        raise InputError(path, None, "records were written for another ground truth than "
                         f"{result_path.name} (sha256 differs); {_rerun_hint(doc)}")
    image_ids = tuple(x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in data["image_ids"])
    if stored:
        proposals = {n: data[f"{n}_proposals"] for n in names}
        true_positives = {n: data[f"{n}_true_positives"] for n in names}
    else:
        from protocols.wider_face.evaluate import image_rows

        offsets = data["pred_offsets"].astype(np.int64)
        counted = data["pred_counted"].astype(np.int64)
        n_images = len(image_ids)
        if len(offsets) != n_images + 1 or offsets[-1] != len(counted):
            raise InputError(path, None, f"records are inconsistent (prediction offsets); {_rerun_hint(doc)}")
        image = np.repeat(np.arange(n_images), np.diff(offsets))
        evaluated = np.flatnonzero(data["image_evaluated"].astype(bool)[image])
        every = image_rows(counted, image, evaluated, n_images)
        proposals, true_positives = {}, {}
        for n in names:
            proposals[n] = every - image_rows(counted, image, data[f"{n}_ignored"].astype(np.int64), n_images)
            true_positives[n] = image_rows(counted, image, data[f"{n}_tp"].astype(np.int64), n_images)
    return WiderRecords(image_ids=image_ids, proposals=proposals, true_positives=true_positives,
                        faces={n: data[f"{n}_faces"] for n in names},
                        points={n: metrics.get(n) for n in names if isinstance(metrics.get(n), (int, float))})


def records_mismatch(records: Records, metrics: Mapping[str, Any]) -> str | None:
    """The first headline metric the records do not reproduce, as 'name: records X, result Y' (None if all do)."""
    own = dataclasses.replace(records, points={}).point_estimates()
    for name, value in own.items():
        stated = metrics.get(name)
        if name not in metrics or isinstance(stated, bool) or not isinstance(stated, (int, float, type(None))):
            continue
        if value is None and stated is None:
            continue
        if value is None or stated is None or not math.isfinite(value) or \
                abs(float(value) - float(stated)) > RECORDS_MATCH_TOLERANCE:
            return f"{name}: records give {_shown(value)}, the result says {_shown(stated)}"
    return None


def _shown(value: float | None) -> str:
    return "null" if value is None else f"{float(value):.6f}"


def load_records(result_path: str | os.PathLike, doc: Mapping[str, Any] | None = None) -> Records:
    """The bootstrap records of a result JSON, read from the X.records.npz beside it; records that do not
    reproduce the JSON's metrics (another run's, left beside it) are an InputError."""
    from facebench.results import read_document

    result_path = Path(result_path)
    doc = read_document(result_path) if doc is None else doc
    try:
        records = _read_records(result_path, doc)
        _check_shapes(records)
        problem = records_mismatch(records, doc.get("metrics") or {})
    except InputError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, AttributeError, EOFError,
            zipfile.BadZipFile, zlib.error) as exc:
        # facebench writes these files; whatever fails in reading them back means the file is damaged
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        raise InputError(records_path(result_path), None, f"damaged records file ({type(exc).__name__}: {first}); "
                                                          f"{_rerun_hint(doc)}") from None
    if problem:
        raise InputError(records_path(result_path), None, f"records do not belong to {result_path.name} "
                         f"({problem}): stale records from another run; {_rerun_hint(doc)}")
    return records


def _numeric(name: str, array: Any, ndim: int, length: int | None = None) -> np.ndarray:
    """`array` as a finite numeric array of `ndim` dimensions (first one `length`), else ValueError."""
    array = np.asarray(array)
    if array.ndim != ndim or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"'{name}' is not a {ndim}-d numeric array")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ValueError(f"'{name}' holds non-finite values")
    if length is not None and len(array) != length:
        raise ValueError(f"'{name}' has {len(array)} rows, expected {length}")
    return array


def _check_shapes(records: Records) -> None:
    """The arrays of loaded records agree in shape with each other and the image list (ValueError otherwise)."""
    n = len(records.image_ids)
    if isinstance(records, WiderRecords):
        for key in records.faces:
            rows = _numeric(f"{key}_proposals", records.proposals[key], 2, n)
            if _numeric(f"{key}_true_positives", records.true_positives[key], 2, n).shape != rows.shape:
                raise ValueError(f"'{key}' proposals and true positives differ in shape")
            _numeric(f"{key}_faces", records.faces[key], 1, n)
    elif isinstance(records, FaceEvalRecords):
        d = len(_numeric("tp", records.tp, 1))
        _numeric("fp", records.fp, 1, d)
        index = _numeric("image_index", records.image_index, 1, d)
        _numeric("positives_per_image", records.positives_per_image, 1, n)
        if d and (index.min() < 0 or index.max() >= n):
            raise ValueError("'image_index' points outside the image list")
    elif isinstance(records, FddbRecords):
        _numeric("faces", records.faces, 1, n)
        start = _numeric("entry_start", records.entry_start, 1, n + 1)
        e = len(_numeric("entry_threshold", records.entry_threshold, 1))
        for name in ("entry_tp_disc", "entry_tp_cont", "entry_fp"):
            _numeric(name, getattr(records, name), 1, e)
        if start[0] != 0 or start[-1] != e or (np.diff(start) < 0).any():
            raise ValueError("'entry_start' does not partition the entries")


def _read_records(result_path: Path, doc: Mapping[str, Any]) -> Records:
    """The records file's contents for the result's protocol."""
    path = records_path(result_path)
    protocol = (doc.get("protocol") or {}).get("name")
    metrics = doc.get("metrics") or {}
    with _npz(path, doc, result_path) as data:
        if protocol == "wider_face":
            return _wider_records(data, path, result_path, doc, metrics)
        if protocol == "face-eval":
            _require(data, ["tp", "fp", "image_index", "image_keys", "positives_per_image"], path, doc)
            points = {"ap": float(metrics["ap"])} if isinstance(metrics.get("ap"), (int, float)) else {}
            return FaceEvalRecords(image_ids=tuple(str(x) for x in data["image_keys"]),
                                   tp=data["tp"].astype(bool), fp=data["fp"].astype(bool),
                                   image_index=data["image_index"].astype(np.int64),
                                   positives_per_image=data["positives_per_image"], points=points)
        if protocol == "fddb":
            keys = ["image_ids", "faces", "entry_start", "entry_threshold", "entry_tp_disc", "entry_tp_cont",
                    "entry_fp", "meta"]
            _require(data, keys, path, doc)
            meta = [str(x) for x in data["meta"]]
            if len(meta) >= 4 and meta[3] != doc.get("ground_truth_sha256"):
                raise InputError(path, None, "records were written for another ground truth than "
                                 f"{result_path.name} (sha256 differs); {_rerun_hint(doc)}")
            return FddbRecords(image_ids=tuple(str(x) for x in data["image_ids"]), faces=data["faces"],
                               entry_start=data["entry_start"], entry_threshold=data["entry_threshold"],
                               entry_tp_disc=data["entry_tp_disc"], entry_tp_cont=data["entry_tp_cont"],
                               entry_fp=data["entry_fp"],
                               points={k: (None if v is None else float(v)) for k, v in metrics.items()
                                       if k in FddbRecords.names() and (v is None or isinstance(v, (int, float)))
                                       and not isinstance(v, bool)})
    raise InputError(result_path, None, f"no bootstrap support for protocol {protocol!r}")


def intervals_for_file(result_path: str | os.PathLike, resamples: int = DEFAULT_RESAMPLES,
                       seed: int = DEFAULT_SEED) -> dict[str, tuple[float, float] | None]:
    """95% bootstrap intervals of a saved result (JSON + records .npz)."""
    return bootstrap(load_records(result_path), resamples, seed).intervals()
