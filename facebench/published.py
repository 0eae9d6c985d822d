"""Published reference results (not run by facebench): WIDER's official PR curves, FDDB's ROC files, face-eval baselines.

Each becomes a `PublishedReference` with the same metric keys and curve layout as a result JSON of its
benchmark, so the leaderboard and the overlay plots treat both alike. Metrics are computed here from the
published artifacts: WIDER AP with VOCap from the `pr_cruve` file (as wider_plot does), FDDB TPR at 1000 false
positives from the DiscROC/ContROC files, AFW/PASCAL AP by scoring the toolbox's baseline detection files with
facebench's face-eval protocol. Modules of absent protocols are skipped, never an error.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from facebench.errors import InputError

WIDER_CURVES = Path("widerface/results/official_pr_curves/Val/setting_int")
# face-eval first: its legend names ("Jain et al.") are the readable ones; the FDDB page copy adds ContROC files.
FDDB_ROC_DIRS = (Path("fddb/results/face-eval_discroc"), Path("fddb/results/official_roc_curves"))
FACE_EVAL_DIRS = {"afw": Path("afw/results"), "pascal": Path("pascal/results")}
FACE_EVAL_SUFFIXES = (".txt", ".mat", ".ramananmat", ".shenmat", ".csv")
FP_LIMIT = 1000
_ROC_NAME = re.compile(r"^(?P<method>.*?)[-_ ]?(?P<kind>disc|cont)(?:roc)?(?P<suffix>[-_ ][^.]*)?\.txt$", re.I)
# Names the face-eval copy gives to files whose method is known from its source (see shared/data/SOURCES.md).
FDDB_LABELS = {"Ours": "SmallHardFace", "SFD": "S3FD", "dr40": "dr40"}


@dataclass(frozen=True, eq=False)
class PublishedReference:
    """One published method on one benchmark: metrics and curves in the result-JSON layout."""

    method: str
    benchmark: str
    family: str
    metrics: dict[str, float | None]
    curves: dict[str, dict[str, np.ndarray]]
    source: str
    point: bool = False  # a single operating point (no scores), drawn as a marker
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def default_data_root() -> Path | None:
    """$FACEBENCH_SHARED_DATA, else ../shared/data beside the checkout; None when neither exists."""
    env = os.environ.get("FACEBENCH_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


# ---------------------------------------------------------------------------------------------- WIDER FACE

def wider_references(curves_root: str | os.PathLike) -> list[PublishedReference]:
    """One reference per method folder of the official curves (easy/medium/hard AP by VOCap)."""
    from protocols.wider_face.published import list_published_methods, load_published_method

    refs = []
    for folder in list_published_methods(curves_root):
        curves = load_published_method(folder)
        legend = next(iter(curves.values())).legend
        refs.append(PublishedReference(
            method=folder.name, benchmark="widerface-val", family="wider",
            metrics={s: (curves[s].ap if s in curves else None) for s in ("easy", "medium", "hard")},
            curves={s: {"precision": c.precision, "recall": c.recall} for s, c in curves.items()},
            source=str(folder), note=f"WIDER FACE official PR curves (legend {legend!r})"))
    return refs


# ---------------------------------------------------------------------------------------------------- FDDB

def read_roc_file(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A DiscROC/ContROC text file: (tpr, fp, threshold or None); first two columns TPR and FP."""
    from facebench.plots.roc import read_published_roc

    roc = read_published_roc(path)
    return roc.tpr, roc.fp, roc.threshold


def tpr_at_fp(tpr: np.ndarray, fp: np.ndarray, limit: float = FP_LIMIT, rule: str = "max") -> float | None:
    """TPR at `limit` false positives by protocols.fddb's rules ("max": max TPR over points with FP <= limit;
    "strict": face-eval's legend rule); a local max rule when the FDDB protocol is absent."""
    if _module_available("protocols.fddb"):
        from protocols.fddb import tpr_at_fp as protocol_tpr_at_fp

        return protocol_tpr_at_fp(tpr, fp, limit, rule)
    if rule != "max":
        return None
    tpr = np.asarray(tpr, dtype=np.float64)
    keep = np.asarray(fp, dtype=np.float64) <= limit
    return float(tpr[keep].max()) if keep.any() else None


def roc_file_pairs(folder: str | os.PathLike) -> dict[str, dict[str, Path]]:
    """method -> {"disc": path, "cont": path} for the ROC files of a folder (either may be absent)."""
    pairs: dict[str, dict[str, Path]] = {}
    for path in sorted(Path(folder).glob("*.txt")):
        match = _ROC_NAME.match(path.name)
        if not match or match["method"].lower().startswith("temp"):
            continue
        method = match["method"].strip(" _-") or path.stem
        method = FDDB_LABELS.get(method, method)
        if match["suffix"]:
            method = f"{method} {match['suffix'].strip(' _-')}"
        pairs.setdefault(method, {})[match["kind"].lower()] = path
    return pairs


def _canonical(name: str) -> str:
    return re.sub(r"[^a-z0-9+]", "", name.lower())


def fddb_references(folders: Iterable[str | os.PathLike]) -> list[PublishedReference]:
    """One reference per distinct published curve in the FDDB ROC folders (first folder's name wins)."""
    by_content: dict[str, dict[str, Any]] = {}
    names: set[str] = set()
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for method, files in roc_file_pairs(folder).items():
            if "disc" not in files:
                continue
            tpr, fp, _ = read_roc_file(files["disc"])
            # The same curve is shipped under several names (e.g. "jain" and "Jain et al."): one entry.
            content = hashlib.sha256(tpr.tobytes() + fp.tobytes()).hexdigest()
            entry = by_content.get(content)
            if entry is None:
                if _canonical(method) in names:
                    continue
                names.add(_canonical(method))
                entry = by_content[content] = {"method": method, "folder": folder.name, "source": files["disc"],
                                               "curves": {"disc": {"tpr": tpr, "fp": fp}}}
            if "cont" in files and "cont" not in entry["curves"]:
                ctpr, cfp, _ = read_roc_file(files["cont"])
                entry["curves"]["cont"] = {"tpr": ctpr, "fp": cfp}
    return [_fddb_reference(e["method"], e["curves"], e["source"], e["folder"]) for e in by_content.values()]


def _fddb_reference(method: str, curves: dict[str, dict[str, np.ndarray]], source: Path,
                    folder: str) -> PublishedReference:
    """A reference from disc (and maybe cont) ROC arrays: TPR at 1000 FP by both rules."""
    metrics: dict[str, float | None] = {}
    for rule, suffix in (("max", ""), ("strict", "_strict")):
        for kind in ("disc", "cont"):
            metrics[f"{kind}_tpr_at_{FP_LIMIT}fp{suffix}"] = (
                tpr_at_fp(curves[kind]["tpr"], curves[kind]["fp"], FP_LIMIT, rule) if kind in curves else None)
    return PublishedReference(method=method, benchmark="fddb", family="fddb", metrics=metrics, curves=curves,
                              source=str(source), note=f"FDDB published ROC files ({folder})")


# --------------------------------------------------------------------------------------------- AFW / PASCAL

def face_eval_baseline_files(folder: str | os.PathLike) -> list[Path]:
    """The baseline detection files under a face-eval results folder (one per method sub-folder)."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FACE_EVAL_SUFFIXES)


@dataclass(frozen=True)
class FaceEvalScoring:
    """How AFW/PASCAL baselines are scored: the annotation file (a name under <root>/<dataset>/annotations; None
    = the default) and the ground-truth size rule, taken from a result so its baselines are scored alike."""

    annotations: str | None = None
    min_width: float = 30
    min_height: float = 30

    @classmethod
    def of_result(cls, doc: dict) -> FaceEvalScoring:
        """The scoring a face-eval result JSON records (its settings' annotations, min_width, min_height)."""
        settings = doc.get("settings") or {}
        name = settings.get("annotations")
        sizes = [settings.get(k, 30) for k in ("min_width", "min_height")]
        sizes = [v if isinstance(v, (int, float)) and not isinstance(v, bool) else 30 for v in sizes]
        return cls(Path(name).name if isinstance(name, str) and name else None, *sizes)

    @classmethod
    def of_results(cls, docs: Iterable[dict]) -> list[FaceEvalScoring]:
        """The default scoring, then each other distinct scoring the face-eval result JSONs record."""
        scorings = [cls()]
        for doc in docs:
            each = cls.of_result(doc)
            if each not in scorings:
                scorings.append(each)
        return scorings

    def size_label(self) -> str:
        """A label suffix for a size rule other than the toolbox's 30x30 ("" for that one)."""
        if (self.min_width, self.min_height) == (30, 30):
            return ""
        return f" (faces >= {self.min_width:g}x{self.min_height:g} px)"

    def annotation_file(self, root: Path, dataset: str) -> Path:
        """The annotation file under a data root: the recorded one when it is there, else the default."""
        from protocols.face_eval import default_annotation_file

        folder = root / dataset / "annotations"
        if self.annotations and (folder / self.annotations).is_file():
            return folder / self.annotations
        return folder / default_annotation_file(dataset)


def face_eval_references(dataset: str, folder: str | os.PathLike | None, annotations: str | os.PathLike,
                         files: Iterable[str | os.PathLike] | None = None,
                         scoring: FaceEvalScoring | None = None, suffix: str = "") -> list[PublishedReference]:
    """AP of each baseline detection file of AFW or PASCAL (those under `folder`, or exactly `files`), scored
    here with the face-eval protocol (and the size rule of `scoring`); `suffix` is appended to each label."""
    from facebench.commands.eval_face_eval import baseline_label
    from protocols.face_eval import baseline_overlap, evaluate, is_point_baseline, load_ground_truth, read_detections

    scoring = scoring or FaceEvalScoring()
    paths = [Path(f) for f in files] if files is not None else face_eval_baseline_files(folder)
    gt = load_ground_truth(dataset, annotations, min_width=scoring.min_width, min_height=scoring.min_height)
    refs = []
    for path in paths:
        result = evaluate(gt, read_detections(path), overlap_threshold=baseline_overlap(path))
        point = is_point_baseline(path)
        if point:
            recall, precision = result.recall[-1:], result.precision[-1:]
        else:
            recall, precision = result.recall, result.precision
        refs.append(PublishedReference(
            method=baseline_label(path) + suffix, benchmark=dataset, family="face-eval",
            metrics={"ap": None if point else result.ap}, curves={"pr": {"recall": recall, "precision": precision}},
            source=str(path), point=point,
            note="face-eval toolbox baseline detections, scored by facebench" +
                 (" (single operating point)" if point else ""),
            extra={"ground_truth_sha256": gt.sha256, "annotations": Path(annotations).name,
                   "min_width": scoring.min_width, "min_height": scoring.min_height}))
    return refs


# ------------------------------------------------------------------------------------------------ all of it

def load_references(data_root: str | os.PathLike, benchmarks: Iterable[str] | None = None,
                    scoring: FaceEvalScoring | Iterable[FaceEvalScoring] | None = None) -> list[PublishedReference]:
    """Every published reference found under a data root (the layout of ../shared/data); absent parts skipped.
    AFW/PASCAL baselines are scored on the default annotations, or as `scoring` says (one scoring, or several:
    the baselines once per distinct annotation file and size rule found under the root)."""
    root = Path(data_root)
    if not root.is_dir():
        raise InputError(root, None, "published-data folder not found")
    wanted = set(benchmarks) if benchmarks is not None else {"widerface-val", "fddb", "afw", "pascal"}
    refs: list[PublishedReference] = []
    if "widerface-val" in wanted and (root / WIDER_CURVES).is_dir() and _module_available("protocols.wider_face"):
        refs += wider_references(root / WIDER_CURVES)
    if "fddb" in wanted:
        refs += fddb_references(root / d for d in FDDB_ROC_DIRS)
    if _module_available("protocols.face_eval"):
        scorings = [scoring or FaceEvalScoring()] if scoring is None or isinstance(scoring, FaceEvalScoring) \
            else list(scoring)
        for dataset, sub in FACE_EVAL_DIRS.items():
            if dataset not in wanted or not (root / sub).is_dir():
                continue
            done = set()
            for each in scorings:
                annotations = each.annotation_file(root, dataset)
                key = (annotations, each.min_width, each.min_height)
                if key in done or not annotations.is_file():
                    continue
                done.add(key)
                refs += face_eval_references(dataset, root / sub, annotations, scoring=each,
                                             suffix=each.size_label())
    return refs


def reference_from_path(path: str | os.PathLike, benchmark: str | None = None,
                        scoring: FaceEvalScoring | None = None) -> list[PublishedReference]:
    """References from one published item: a WIDER method folder, an FDDB ROC file, or a face-eval baseline file
    (scored on the default annotations, or as `scoring` says)."""
    path = Path(path)
    if path.is_dir() and any(path.glob("wider_pr_info_*.mat")):
        from protocols.wider_face.published import load_published_method

        curves = load_published_method(path)
        return [PublishedReference(
            method=path.name, benchmark="widerface-val", family="wider",
            metrics={s: (curves[s].ap if s in curves else None) for s in ("easy", "medium", "hard")},
            curves={s: {"precision": c.precision, "recall": c.recall} for s, c in curves.items()},
            source=str(path))]
    if path.is_file() and _ROC_NAME.match(path.name):
        # the file and its Disc/Cont partner beside it
        kind = _ROC_NAME.match(path.name)["kind"].lower()
        method, files = next(((m, f) for m, f in roc_file_pairs(path.parent).items() if path in f.values()),
                             (path.stem, {kind: path}))
        curves = {}
        for kind, file in files.items():
            tpr, fp, _ = read_roc_file(file)
            curves[kind] = {"tpr": tpr, "fp": fp}
        return [_fddb_reference(method, curves, path, path.parent.name)]
    if path.is_file() and benchmark in FACE_EVAL_DIRS:
        root = default_data_root()
        annotations = None if root is None else (scoring or FaceEvalScoring()).annotation_file(root, benchmark)
        if annotations is None or not annotations.is_file():
            raise InputError(path, None, f"scoring a {benchmark} baseline needs the {benchmark} annotations "
                                         "(set FACEBENCH_SHARED_DATA)")
        # this file only, not its folder
        return face_eval_references(benchmark, None, annotations, files=[path], scoring=scoring)
    raise InputError(path, None, "not a published item (a WIDER method folder of wider_pr_info_*.mat, an FDDB "
                                 "*DiscROC/*ContROC .txt file, or an AFW/PASCAL baseline with --benchmark)")
