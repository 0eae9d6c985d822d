"""Regenerate results/baselines/*.json: the CI gate's stored baselines, as data (like detectron2's EXPECTED_RESULTS).

Each baseline is a facebench result JSON made by running facebench's own protocols on real third-party
prediction files from ../shared/data (nothing is copied from them: the files hold metrics and curves that
facebench computed). Run from the repository root:

    .venv/bin/python benchmarks/make_baselines.py [--data-root ../shared/data] [--out results/baselines]
        [--only widerface|fddb|afw|pascal ...] [--check]

--check re-evaluates and compares with the committed files instead of writing (exit 1 on any difference
beyond 1e-12), which is how to confirm the baselines still reproduce after a protocol change.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from facebench.errors import InputError  # noqa: E402
from facebench.results import write_document  # noqa: E402

# (label, folder under widerface/results, origin as stated in shared/data/SOURCES.md)
WIDER_RUNS = (
    ("yolov7-tiny-leak", "yolov7-tiny-leak_derronqi/widerface_txt", "derronqi/yolov7-face"),
    ("retinaface-mobilenet0.25", "retinaface-mobilenet0.25_thflgg133/widerface_txt", "thflgg133/RetinaFace-optimization"),
    ("yolov5-face", "yolov5-face-unattributed_illenium7/widerface_txt", "illenium7/Yolov5_face"),
)
WIDER_SEMANTICS = ("official", "python-port")
# (label, detections under fddb/results: a folder of fold-XX-out.txt or one file, origin)
FDDB_RUNS = (
    ("MTCNN (imistyrain)", "MTCNN_imistyrain", "imistyrain/fddb"),
    ("JFDA (imistyrain)", "jfda_imistyrain", "imistyrain/fddb"),
    ("pyface (imistyrain)", "pyface_imistyrain/Dets.txt", "imistyrain/fddb"),
    ("JDA (imistyrain)", "JDA_imistyrain/Dets.txt", "imistyrain/fddb"),
    ("MTCNN (hualitlc)", "MTCNN_hualitlc/predict.txt", "hualitlc/MTCNN-on-FDDB-Dataset"),
    ("FaceBoxes (lippman1125)", "faceboxes_lippman1125/fddb_faceboxes_result.txt", "lippman1125/fddb_evaluation"),
    ("MTCNN (lqy, lippman1125)", "mtcnn_lqy_lippman1125/fddb_mtcnn_lqy_result.txt", "lippman1125/fddb_evaluation"),
    ("S3FD (lqy, lippman1125)", "s3fd_lqy_lippman1125/fddb_s3fd_240k_result.txt", "lippman1125/fddb_evaluation"),
    ("RetinaFace-mobilenet0.25", "retinaface-mobilenet0.25_thflgg133/FDDB_dets.txt",
     "thflgg133/RetinaFace-optimization"),
)


def slug(text: str) -> str:
    """A file-name-safe form of a label."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-").lower()


def source_block(data_root: Path, path: Path, origin: str) -> dict[str, Any]:
    """Where the evaluated predictions came from (path relative to the data root)."""
    return {"kind": "third-party predictions", "path": str(path.relative_to(data_root)), "origin": origin,
            "data_root": "../shared/data"}


def wider_baselines(data_root: Path) -> Iterator[tuple[str, dict]]:
    """WIDER FACE val, current ground truth, both semantics, every prediction folder."""
    from protocols import wider_face

    gt = wider_face.load_ground_truth(data_root / "widerface" / "ground_truth", version="2017")
    for label, folder, origin in WIDER_RUNS:
        path = data_root / "widerface" / "results" / folder
        if not path.is_dir():
            print(f"  skip {label}: {path} not found")
            continue
        for semantics in WIDER_SEMANTICS:
            preds = wider_face.read_predictions(path, gt, semantics=semantics, quiet=True)
            doc = wider_face.evaluate(gt, preds).to_document(
                extra={"label": label, "source": source_block(data_root, path, origin)})
            yield f"widerface-val__{slug(label)}__{semantics}", doc


def fddb_baselines(data_root: Path) -> Iterator[tuple[str, dict]]:
    """FDDB, official folds and rotation, image sizes from the size table."""
    from protocols import fddb

    root = data_root / "fddb"
    gt = fddb.load_folds(root / "FDDB-folds")
    sizes = fddb.read_size_table(root / "image_sizes.tsv", gt)
    for label, item, origin in FDDB_RUNS:
        path = root / "results" / item
        if not path.exists():
            print(f"  skip {label}: {path} not found")
            continue
        doc = fddb.evaluate(gt, fddb.read_detections(path, gt), sizes).to_document(
            extra={"label": label, "source": source_block(data_root, path, origin)})
        yield f"fddb__{slug(label)}", reduce_roc_curves(doc)


MAX_BYTES = 200_000
ROC_FP_KEEP = 2000


def reduce_roc_curves(doc: dict, fp_max: int = ROC_FP_KEEP) -> dict:
    """Keep, per distinct FP count <= fp_max, the point with the highest TPR, without thresholds: the max-rule
    TPR at any FP limit <= fp_max and the plotted curve (0..2000 FP) stay exact. Only for documents whose full
    curves would exceed MAX_BYTES."""
    if len(json.dumps(doc, indent=1)) <= MAX_BYTES:
        return doc
    for name, curve in doc["curves"].items():
        best: dict[float, tuple[float, int]] = {}
        for i, (tpr, fp) in enumerate(zip(curve["tpr"], curve["fp"])):
            if fp is not None and fp <= fp_max and tpr is not None and (fp not in best or tpr > best[fp][0]):
                best[fp] = (tpr, i)
        fps = sorted(best, reverse=True)  # the official files list FP descending
        doc["curves"][name] = {"tpr": [best[fp][0] for fp in fps], "fp": fps}
    doc["curves_note"] = (f"ROC curves reduced for storage: per distinct FP count <= {fp_max}, the highest-TPR "
                          f"point; thresholds left out (the full curve has {doc['metrics'].get('roc_points')} "
                          "points; rerun the evaluation for it)")
    return doc


def face_eval_baselines(dataset: str) -> Callable[[Path], Iterator[tuple[str, dict]]]:
    """AFW or PASCAL Face: every baseline detection file that has scores (single operating points skipped)."""

    def make(data_root: Path) -> Iterator[tuple[str, dict]]:
        from facebench.commands.eval_face_eval import baseline_label
        from facebench.published import face_eval_baseline_files
        from protocols.face_eval import (baseline_overlap, default_annotation_file, evaluate, is_point_baseline,
                                         load_ground_truth, read_detections)

        gt = load_ground_truth(dataset, data_root / dataset / "annotations" / default_annotation_file(dataset))
        for path in face_eval_baseline_files(data_root / dataset / "results"):
            if is_point_baseline(path):
                continue
            label = baseline_label(path)
            doc = evaluate(gt, read_detections(path), overlap_threshold=baseline_overlap(path)).to_document()
            doc["label"] = label
            doc["source"] = source_block(data_root, path, "face-eval toolbox baselines / authors' files "
                                                          "(see shared/data/SOURCES.md)")
            yield f"{dataset}__{slug(label)}", doc

    return make


MAKERS = {"widerface": ("protocols.wider_face", wider_baselines), "fddb": ("protocols.fddb", fddb_baselines),
          "afw": ("protocols.face_eval", face_eval_baselines("afw")),
          "pascal": ("protocols.face_eval", face_eval_baselines("pascal"))}
VOLATILE = ("created", "git_commit", "facebench_version", "evaluation_seconds")


def differences(old: Any, new: Any, where: str = "", tol: float = 1e-12) -> list[str]:
    """Paths at which two JSON values differ (numbers within tol are equal; volatile keys skipped)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            if key in VOLATILE or key in ("settings",) and not where:
                continue
            if key not in old or key not in new:
                out.append(f"{where}.{key}: only in {'new' if key in new else 'stored'}")
            else:
                out += differences(old[key], new[key], f"{where}.{key}", tol)
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: length {len(old)} vs {len(new)}"]
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out += differences(a, b, f"{where}[{i}]", tol)
            if len(out) > 5:
                break
        return out
    if isinstance(old, (int, float)) and isinstance(new, (int, float)) and not isinstance(old, bool):
        return [] if abs(old - new) <= tol else [f"{where}: {old!r} vs {new!r}"]
    return [] if old == new else [f"{where}: {old!r} vs {new!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "baselines")
    parser.add_argument("--only", nargs="*", choices=sorted(MAKERS), default=sorted(MAKERS))
    parser.add_argument("--check", action="store_true", help="compare with the stored files instead of writing")
    args = parser.parse_args(argv)
    if not args.data_root.is_dir():
        print(f"data root not found: {args.data_root}", file=sys.stderr)
        return 2
    failures = 0
    for name in args.only:
        module, maker = MAKERS[name]
        if importlib.util.find_spec(module) is None:
            print(f"{name}: skipped ({module} is not installed)")
            continue
        started = time.perf_counter()
        count = 0
        try:
            made = list(maker(args.data_root))
        except InputError as exc:
            print(f"{name}: FAILED: {exc}")
            failures += 1
            continue
        for stem, doc in made:
            target = args.out / f"{stem}.json"
            metrics = {k: round(v, 6) for k, v in doc["metrics"].items()
                       if k in ("easy", "medium", "hard", "ap", "disc_tpr_at_1000fp", "cont_tpr_at_1000fp")}
            if args.check:
                if not target.is_file():
                    print(f"  MISSING {target}")
                    failures += 1
                    continue
                diff = differences(json.loads(target.read_text()), json.loads(json.dumps(doc)))
                print(f"  {'ok' if not diff else 'DIFFERS'} {target.name} {metrics}")
                for line in diff[:5]:
                    print(f"      {line}")
                failures += bool(diff)
            else:
                write_document(doc, target)
                print(f"  wrote {target.relative_to(REPO) if target.is_relative_to(REPO) else target} "
                      f"({target.stat().st_size // 1024} KB) {metrics}")
            count += 1
        print(f"{name}: {count} baselines in {time.perf_counter() - started:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
