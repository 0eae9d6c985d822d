"""Registered benchmarks: where a benchmark's images and ground truth live, how predictions are written in
its official format, and which protocol scores them.

`facebench run` is the only user: it lists `images()`, loads each one, and hands the detections back to
`write_predictions()` and `evaluate()`. Layouts follow the official distributions under `--data-root`.
"""

from __future__ import annotations

import dataclasses
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from facebench.errors import InputError

if TYPE_CHECKING:
    import PIL.Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")


class UnreadableImage(Exception):
    """An image file that is missing, truncated or not an image (the run skips it and counts it)."""

    def __init__(self, image_id: str, path: str, reason: str) -> None:
        self.image_id, self.path, self.reason = image_id, path, reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class ImageRef:
    """One benchmark image: its id (unique in the benchmark; the cache key) and where its pixels come from."""

    id: str
    path: Path | None = None
    render: Callable[[], np.ndarray] | None = dataclasses.field(default=None, compare=False, repr=False)


def _as_rgb8(handle: "PIL.Image.Image") -> np.ndarray:
    """An opened image as RGB uint8; 16-bit and 32-bit grayscale rescaled to 8 bits rather than clipped (PIL's
    convert('RGB') saturates them: a 16-bit scan would turn white), float images taken as 0..1 or 0..255."""
    if handle.mode.startswith("I;16") or handle.mode == "I":
        values = np.asarray(handle).astype(np.float64)
        if handle.mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values / 257.0
    elif handle.mode == "F":
        values = np.asarray(handle).astype(np.float64)
        finite = values[np.isfinite(values)]
        values = np.nan_to_num(values) * (255.0 if finite.size and finite.max() <= 1.0 else 1.0)
    else:
        return np.asarray(handle.convert("RGB"))
    gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def read_rgb(path: str | os.PathLike, image_id: str = "") -> np.ndarray:
    """Decode an image file as RGB uint8 (H, W, 3), pixels as stored (no EXIF rotation, as the annotators saw)."""
    from PIL import Image

    try:
        with Image.open(path) as handle:
            handle.load()
            rgb = _as_rgb8(handle)
    except FileNotFoundError:
        raise UnreadableImage(image_id, os.fspath(path), "file not found") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(image_id, os.fspath(path), f"cannot decode ({exc})") from None
    array = np.asarray(rgb)
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise UnreadableImage(image_id, os.fspath(path), f"empty image {array.shape}")
    return array


@dataclass(frozen=True)
class Scored:
    """A protocol result seen through one interface: the JSON document, records, plot and a printable table."""

    result: Any
    document: Callable[[Mapping[str, Any]], dict[str, Any]]
    save_records: Callable[[Path], None]
    plot: Callable[[Path, str], None]
    table: Callable[[], str]
    metrics: Mapping[str, Any]


class Benchmark(ABC):
    """A benchmark: images, the official prediction format, and its protocol."""

    name: str = ""
    protocol: str = ""
    #: what `write_predictions` produces, for messages and the README
    prediction_format: str = ""
    #: the benchmark's folder under a data root (widerface/, fddb/ ...); "" = the data root is the folder itself
    folder: str = ""
    #: files besides the result, records and figure that scoring writes into a run folder (removed with them
    #: before new predictions land, so none describes the predictions of an earlier run)
    derived_outputs: tuple[str, ...] = ()

    def __init__(self, data_root: str | os.PathLike | None = None) -> None:
        self.data_root = resolve_data_root(self.folder, data_root)

    @abstractmethod
    def images(self) -> list[ImageRef]:
        """Every image of the benchmark, in the official order."""

    def load(self, ref: ImageRef) -> np.ndarray:
        """RGB uint8 pixels of one image (UnreadableImage when it cannot be decoded)."""
        if ref.render is not None:
            return ref.render()
        assert ref.path is not None
        return read_rgb(ref.path, ref.id)

    @abstractmethod
    def write_predictions(self, pred_dir: Path, detections: Mapping[str, np.ndarray]) -> Path:
        """Write detections (image id -> [N, 5] x1 y1 x2 y2 score) in the official format; returns the path."""

    def evaluate(self, predictions: Path) -> Scored | None:
        """Score written predictions with the benchmark's protocol (None when its protocol is not available)."""
        return None

    def describe(self) -> dict[str, Any]:
        """What the results JSON records about the benchmark."""
        return {"name": self.name, "protocol": self.protocol,
                "data_root": None if self.data_root is None else str(self.data_root)}


DATA_ROOT_ENV = "FACEBENCH_DATA_ROOT"
SHARED_DATA_ENV = "FACEBENCH_SHARED_DATA"


def default_data_roots() -> list[Path]:
    """Where `facebench eval` looks for ground truth without --data-root: $FACEBENCH_DATA_ROOT,
    $FACEBENCH_SHARED_DATA, then ../shared/data beside the checkout (the layout of all three is the same)."""
    roots = [Path(os.environ[name]) for name in (DATA_ROOT_ENV, SHARED_DATA_ENV) if os.environ.get(name)]
    roots.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    return roots


def resolve_data_root(folder: str, data_root: str | os.PathLike | None) -> Path | None:
    """The benchmark folder: `<DIR>/<folder>` when DIR (--data-root, else $FACEBENCH_DATA_ROOT) holds it, as for
    `facebench eval`, else DIR itself (the benchmark folder given directly); absolute, so that recorded paths
    work from any folder."""
    if data_root is None and folder:
        data_root = os.environ.get(DATA_ROOT_ENV) or None
    if data_root is None:
        return None
    root = Path(data_root)
    if folder and (root / folder).is_dir():
        root = root / folder
    return root.absolute()


def _first_existing(candidates: Sequence[Path]) -> Path | None:
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return None


def _require_root(name: str, data_root: Path | None, expected: str) -> Path:
    if data_root is None:
        raise InputError(None, None, f"benchmark '{name}' needs --data-root DIR (or ${DATA_ROOT_ENV}): "
                                     f"{expected}")
    if not data_root.is_dir():
        raise InputError(data_root, None, f"--data-root for '{name}' is not a folder ({expected})")
    return data_root


def _check_images_present(name: str, root: Path, refs: Sequence[ImageRef], expected: str) -> None:
    missing = [ref for ref in refs if ref.path is not None and not ref.path.is_file()]
    if missing:
        raise InputError(root, None, f"{name}: {len(missing)} of {len(refs)} images missing (first: "
                                     f"{missing[0].path}); expected {expected}")


# --------------------------------------------------------------------------------------------- WIDER FACE
class WiderFaceVal(Benchmark):
    """WIDER FACE val: `WIDER_val/images/<event>/<image>.jpg` and eval_tools' `ground_truth/*.mat`."""

    name = "widerface-val"
    folder = "widerface"
    protocol = "wider_face (official eval_tools semantics)"
    prediction_format = "<event>/<image>.txt: name, count, then 'x y w h score' lines"
    LAYOUT = ("DIR/widerface/WIDER_val/images/<event>/<image>.jpg and "
              "DIR/widerface/ground_truth/wider_{face,easy,medium,hard}_val.mat (eval_tools' ground_truth folder; "
              "eval_tools/ground_truth also works; DIR may also be the widerface folder itself)")

    def __init__(self, data_root: str | os.PathLike | None = None, *, images_dir: str | os.PathLike | None = None,
                 gt_dir: str | os.PathLike | None = None) -> None:
        super().__init__(data_root)
        root = None
        if gt_dir is None or images_dir is None:
            root = _require_root(self.name, self.data_root, self.LAYOUT)
        self.gt_dir = Path(gt_dir) if gt_dir is not None else self._find_gt(root)
        self.images_dir = Path(images_dir) if images_dir is not None else root / "WIDER_val" / "images"
        self._gt = None

    def _find_gt(self, root: Path) -> Path:
        found = _first_existing([root / "ground_truth" / "wider_face_val.mat",
                                 root / "eval_tools" / "ground_truth" / "wider_face_val.mat"])
        if found is None:
            raise InputError(root, None, f"{self.name}: no ground truth (ground_truth/wider_face_val.mat); "
                                         f"expected {self.LAYOUT}")
        return found.parent

    @property
    def ground_truth(self):
        """The protocol's ground truth (read once)."""
        if self._gt is None:
            from protocols.wider_face import load_ground_truth

            self._gt = load_ground_truth(self.gt_dir)
        return self._gt

    def images(self) -> list[ImageRef]:
        refs = [ImageRef(f"{event}/{name}", self._image_path(event, name)) for event, name in self.ground_truth.images]
        _check_images_present(self.name, self.images_dir, refs, self.LAYOUT)
        return refs

    def _image_path(self, event: str, name: str) -> Path:
        return self.images_dir / event / f"{name}.jpg"

    def write_predictions(self, pred_dir: Path, detections: Mapping[str, np.ndarray]) -> Path:
        from protocols.wider_face import write_prediction_file

        for event, name in self.ground_truth.images:
            boxes = detections.get(f"{event}/{name}", np.zeros((0, 5)))
            write_prediction_file(pred_dir / event / f"{name}.txt", name, boxes)
        return pred_dir

    def evaluate(self, predictions: Path) -> Scored:
        from protocols.wider_face import evaluate, read_predictions

        gt = self.ground_truth
        result = evaluate(gt, read_predictions(predictions, gt, semantics="official", quiet=True))
        result = dataclasses.replace(result, benchmark=self.name)
        return Scored(result=result, document=lambda extra: result.to_document(extra=extra),
                      save_records=result.save_records, plot=lambda path, label: result.plot(path, label=label),
                      table=result.table, metrics=result.metrics)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "ground_truth_dir": str(self.gt_dir), "images_dir": str(self.images_dir)}


class SampleBenchmark(WiderFaceVal):
    """The embedded sample (facebench.sample): six images built from matplotlib's photo, WIDER format."""

    name = "sample"
    folder = ""  # embedded: no data root, and $FACEBENCH_DATA_ROOT does not apply
    protocol = "wider_face (official eval_tools semantics) on facebench's embedded sample"

    def __init__(self, data_root: str | os.PathLike | None = None) -> None:
        from facebench import sample

        if data_root is not None:
            raise InputError(data_root, None, "the 'sample' benchmark is embedded and takes no --data-root")
        Benchmark.__init__(self, None)
        self.gt_dir = sample.GROUND_TRUTH_DIR
        self.images_dir = Path("<matplotlib sample_data>")
        self._gt = None

    def images(self) -> list[ImageRef]:
        from facebench import sample

        photo_path = sample.source_path()
        by_id = {image.id: image for image in sample.IMAGES}
        refs = []
        for event, name in self.ground_truth.images:
            spec = by_id.get(f"{event}/{name}")
            if spec is None:
                raise InputError(self.gt_dir, None, f"sample ground truth lists '{event}/{name}', which "
                                                    f"facebench.sample does not define (rebuild the .mat files)")
            refs.append(ImageRef(spec.id, None, _SampleRenderer(spec, photo_path)))
        return refs

    def describe(self) -> dict[str, Any]:
        from facebench import sample

        return {**super().describe(), "source_image": sample.SOURCE_NAME, "source_sha256": sample.SOURCE_SHA256}


@dataclass(frozen=True)
class _SampleRenderer:
    spec: Any
    photo_path: Path

    def __call__(self) -> np.ndarray:
        from facebench import sample

        return sample.render(self.spec, read_rgb(self.photo_path, self.spec.id))


# ------------------------------------------------------------------------------------------------- FDDB
class FDDB(Benchmark):
    """FDDB: `FDDB-folds/FDDB-fold-XX.txt` (+ ellipseList) and `originalPics/<entry>.jpg`, 10 folds."""

    name = "fddb"
    folder = "fddb"
    protocol = "fddb (official evaluate: discrete and continuous ROC)"
    prediction_format = "fold-XX-out.txt per fold: name, count, then 'left top width height score' lines"
    LAYOUT = ("DIR/fddb/FDDB-folds/FDDB-fold-{01..10}.txt, DIR/fddb/FDDB-folds/FDDB-fold-{01..10}-ellipseList.txt "
              "and DIR/fddb/originalPics/<entry>.jpg (DIR may also be the fddb folder itself)")
    FOLDS = tuple(f"{i:02d}" for i in range(1, 11))
    ROC_PREFIX = "fddb-"
    derived_outputs = (f"{ROC_PREFIX}DiscROC.txt", f"{ROC_PREFIX}ContROC.txt")

    def __init__(self, data_root: str | os.PathLike | None = None) -> None:
        super().__init__(data_root)
        root = _require_root(self.name, self.data_root, self.LAYOUT)
        self.folds_dir = root / "FDDB-folds"
        self.images_dir = root / "originalPics"
        missing = [f"FDDB-folds/FDDB-fold-{fold}{suffix}.txt" for fold in self.FOLDS for suffix in ("", "-ellipseList")
                   if not (self.folds_dir / f"FDDB-fold-{fold}{suffix}.txt").is_file()]
        if missing:
            raise InputError(root, None, f"fddb: missing {len(missing)} fold files (first: {missing[0]}); "
                                         f"expected {self.LAYOUT}")
        self._folds: dict[str, list[str]] | None = None

    @property
    def folds(self) -> dict[str, list[str]]:
        """Fold number -> image entries (e.g. '2002/08/11/big/img_591'), in the fold files' order."""
        if self._folds is None:
            self._folds = {}
            for fold in self.FOLDS:
                path = self.folds_dir / f"FDDB-fold-{fold}.txt"
                self._folds[fold] = path.read_text(encoding="latin-1").split()
        return self._folds

    def images(self) -> list[ImageRef]:
        refs = [ImageRef(entry, self.images_dir / f"{entry}.jpg") for fold in self.FOLDS for entry in self.folds[fold]]
        _check_images_present(self.name, self.images_dir, refs, self.LAYOUT)
        return refs

    def write_predictions(self, pred_dir: Path, detections: Mapping[str, np.ndarray]) -> Path:
        from protocols.wider_face.predictions import format_score

        pred_dir.mkdir(parents=True, exist_ok=True)
        for fold in self.FOLDS:
            lines = []
            for entry in self.folds[fold]:
                boxes = np.asarray(detections.get(entry, np.zeros((0, 5))), dtype=np.float64).reshape(-1, 5)
                boxes = boxes[np.argsort(-boxes[:, 4], kind="stable")]
                lines += [entry, str(len(boxes))]
                lines += [f"{x1:.3f} {y1:.3f} {x2 - x1:.3f} {y2 - y1:.3f} {format_score(s)}"
                          for x1, y1, x2, y2, s in boxes]
            (pred_dir / f"fold-{fold}-out.txt").write_text("\n".join(lines) + "\n")
        return pred_dir

    def evaluate(self, predictions: Path) -> Scored | None:
        return _fddb_scored(self, predictions)


def _fddb_scored(bench: FDDB, predictions: Path) -> Scored | None:
    """Score FDDB with protocols.fddb (official evaluate semantics), image sizes read from the images."""
    import importlib.util

    if importlib.util.find_spec("protocols.fddb") is None:
        return None
    import protocols.fddb as fddb

    if not all(hasattr(fddb, f) for f in ("load_folds", "read_detections", "read_image_sizes", "evaluate")):
        return None
    gt = fddb.load_folds(bench.folds_dir)
    detections = fddb.read_detections(predictions, gt, "rect")
    # Images the run skipped as unreadable have no detections; their size does not change the score.
    empty = [name for name, n in zip(gt.images, np.diff(detections.det_start)) if n == 0]
    result = fddb.evaluate(gt, detections, fddb.read_image_sizes(bench.images_dir, gt, without_detections=empty))

    def save_records(path: Path) -> None:
        result.save_records(path)
        result.write_roc(path.with_name(bench.ROC_PREFIX))  # the official fddb-DiscROC.txt / ContROC.txt beside

    return Scored(result=result, document=lambda extra: result.to_document(extra=extra), save_records=save_records,
                  plot=lambda path, label: plot_roc(path, label, result.curve), table=result.table,
                  metrics=result.metrics)


def plot_roc(path: Path, label: str, curve: Any) -> None:
    """Discrete and continuous FDDB ROC (true positive rate against false positives, up to 2000 FP)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, tpr, title in ((axes[0], curve.disc_tpr, "FDDB discrete ROC"), (axes[1], curve.cont_tpr,
                                                                              "FDDB continuous ROC")):
        ax.plot(curve.fp, tpr, label=label)
        ax.set_xlim(0, 2000)
        ax.set_ylim(0, 1)
        ax.set_xlabel("False positives")
        ax.set_ylabel("True positive rate")
        ax.set_title(title)
        ax.grid(True, linestyle=":")
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------------------- AFW and PASCAL
class FaceEvalBenchmark(Benchmark):
    """AFW or PASCAL Face with the face-eval toolbox protocol: one detections file `id score x1 y1 x2 y2`."""

    dataset = ""
    image_dirs: tuple[str, ...] = ()
    protocol = "face-eval (Mathias et al. 2014: AP with 5 box-correction iterations)"
    prediction_format = "<benchmark>_dets.txt: 'image_id score x1 y1 x2 y2' per line"

    def __init__(self, data_root: str | os.PathLike | None = None, *, images_dir: str | os.PathLike | None = None,
                 annotations: str | os.PathLike | None = None) -> None:
        super().__init__(data_root)
        from protocols.face_eval import default_annotation_file

        self.annotation_name = default_annotation_file(self.dataset)
        layout = (f"DIR/{self.folder}/annotations/{self.annotation_name} and the images in "
                  + " or ".join(f"DIR/{self.folder}/{d}/" for d in self.image_dirs)
                  + f" (DIR may also be the {self.folder} folder itself)")
        if annotations is None or images_dir is None:
            root = _require_root(self.name, self.data_root, layout)
        if annotations is None:
            found = _first_existing([root / "annotations" / self.annotation_name, root / self.annotation_name])
            if found is None:
                raise InputError(root, None, f"{self.name}: missing annotations/{self.annotation_name}; "
                                             f"expected {layout}")
            annotations = found
        self.annotations = Path(annotations)
        if images_dir is None:
            images_dir = _first_existing([root / d for d in self.image_dirs]) or root / self.image_dirs[0]
        self.images_dir = Path(images_dir)
        self.layout = layout
        self._gt = None

    @property
    def ground_truth(self):
        """The protocol's ground truth (read once)."""
        if self._gt is None:
            from protocols.face_eval import load_ground_truth

            self._gt = load_ground_truth(self.dataset, self.annotations)
        return self._gt

    def images(self) -> list[ImageRef]:
        gt = self.ground_truth
        refs = [ImageRef(key, self._image_path(name, key)) for name, key in zip(gt.image_names, gt.image_keys)]
        _check_images_present(self.name, self.images_dir, refs, self.layout)
        return refs

    def _image_path(self, name: str, key: str) -> Path:
        base = Path(name.replace("\\", "/")).name
        direct = self.images_dir / base
        if Path(base).suffix and direct.is_file():
            return direct
        for suffix in IMAGE_SUFFIXES:
            candidate = self.images_dir / f"{key}{suffix}"
            if candidate.is_file():
                return candidate
        return direct if Path(base).suffix else self.images_dir / f"{key}.jpg"

    def write_predictions(self, pred_dir: Path, detections: Mapping[str, np.ndarray]) -> Path:
        from protocols.wider_face.predictions import format_score

        pred_dir.mkdir(parents=True, exist_ok=True)
        lines = []
        for key in self.ground_truth.image_keys:
            boxes = np.asarray(detections.get(key, np.zeros((0, 5))), dtype=np.float64).reshape(-1, 5)
            boxes = boxes[np.argsort(-boxes[:, 4], kind="stable")]
            lines += [f"{key} {format_score(s)} {x1:.3f} {y1:.3f} {x2:.3f} {y2:.3f}" for x1, y1, x2, y2, s in boxes]
        path = pred_dir / f"{self.name}_dets.txt"
        path.write_text("\n".join(lines) + ("\n" if lines else ""))
        return path

    def evaluate(self, predictions: Path) -> Scored | None:
        from protocols.face_eval import evaluate, read_detections
        from protocols.face_eval.detections import no_detections

        # The file this run wrote: empty when the detector found nothing, which scores AP 0 (an input file
        # given to `facebench eval` that is empty is refused instead, as a likely mistake).
        found = predictions.read_text().strip() != ""
        result = evaluate(self.ground_truth, read_detections(predictions) if found else no_detections(predictions))

        def document(extra: Mapping[str, Any]) -> dict[str, Any]:
            doc = result.to_document()
            doc.update(extra)
            return doc

        def plot(path: Path, label: str) -> None:
            from facebench.plots.pr import PRCurve, plot_pr_panels

            plot_pr_panels({self.name: [PRCurve(label, result.recall, result.precision, result.ap)]}, path,
                           title=f"{self.name.upper()} (face-eval)")

        def table() -> str:
            return f"{'AP':<8} {100 * result.ap:>8.2f}   ({result.n_positives} faces, {result.n_detections} detections)"

        return Scored(result=result, document=document, save_records=result.save_records, plot=plot, table=table,
                      metrics={"ap": result.ap})

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "annotations": str(self.annotations), "images_dir": str(self.images_dir)}


class AFW(FaceEvalBenchmark):
    """Annotated Faces in the Wild (Zhu & Ramanan 2012), Mathias et al. 2014 re-annotation."""

    name = "afw"
    folder = "afw"
    dataset = "afw"
    image_dirs = ("testimages", "images")


class PascalFace(FaceEvalBenchmark):
    """PASCAL Face (Yan et al. 2014, on VOC2012 images), Mathias et al. 2014 re-annotation."""

    name = "pascal"
    folder = "pascal"
    dataset = "pascal"
    image_dirs = ("JPEGImages", "VOCdevkit/VOC2012/JPEGImages", "images")


BENCHMARKS: dict[str, type[Benchmark]] = {
    "sample": SampleBenchmark,
    "widerface-val": WiderFaceVal,
    "fddb": FDDB,
    "afw": AFW,
    "pascal": PascalFace,
}
DEFAULT_BENCHMARK = "sample"


def benchmark_names() -> list[str]:
    """Registered benchmark names."""
    return list(BENCHMARKS)


def get_benchmark(name: str, data_root: str | os.PathLike | None = None) -> Benchmark:
    """The benchmark `name` over `data_root` (layout checked), or an InputError with a did-you-mean."""
    if name not in BENCHMARKS:
        from detectors.registry import suggest

        raise InputError(None, None, f"unknown benchmark '{name}'.{suggest(name, list(BENCHMARKS))} "
                                     f"(choose from {', '.join(BENCHMARKS)})")
    return BENCHMARKS[name](data_root)
