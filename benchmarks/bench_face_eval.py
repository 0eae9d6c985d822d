"""Speed of the vectorised face-eval evaluation against a per-detection loop (the spec read literally).

Run: .venv/bin/python benchmarks/bench_face_eval.py [--repeat 3] [--synthetic 50000]
Prints, per case, wall time of both, their ratio, peak traced memory, and checks the APs agree exactly.
Cases: the largest real baseline files when ../shared/data is present, plus a synthetic set of N detections.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols.face_eval import evaluate, load_ground_truth, read_detections  # noqa: E402
from protocols.face_eval.curve import precision_recall, voc_ap  # noqa: E402
from protocols.face_eval.evaluate import correct_boxes, fit_correction  # noqa: E402
from protocols.face_eval.ground_truth import minimum_detection_size  # noqa: E402
from protocols.face_eval.matching import match_detections_reference, size_filter_mask  # noqa: E402


def reference_ap(gt, dets, iterations: int = 5) -> float:
    """The same pipeline with the per-detection matching loop."""
    image = dets.image_indices(gt)
    keep = size_filter_mask(dets.boxes, minimum_detection_size(gt.min_width, gt.min_height))
    order = np.flatnonzero(keep)[np.argsort(-dets.scores[keep], kind="stable")]
    boxes, det_image = dets.boxes[order], image[order]
    for iteration in range(iterations):
        outcome = match_detections_reference(det_image, boxes, gt.boxes, gt.ignored, gt.offsets)
        if iteration == iterations - 1:
            break
        hits = np.flatnonzero(outcome.tp)
        boxes = correct_boxes(boxes, fit_correction(boxes[hits], gt.boxes[outcome.gt_index[hits]]))
    return voc_ap(*precision_recall(outcome.tp, outcome.fp, gt.n_positives))


def measure(function, repeat: int) -> tuple[float, float, object]:
    """Best wall time over `repeat` runs, peak traced memory (MiB) of one run, and the value."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    function()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return min(times), peak, value


def synthetic_case(folder: Path, n_detections: int, seed: int = 0) -> tuple[Path, Path]:
    """A PASCAL-sized GT (851 images, ~2 faces each) and n jittered/random detections in the text format."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    n_images = 851
    records = np.zeros((n_images, 1), dtype=[("imgname", "O"), ("objects", "O")])
    gt_boxes = []
    for i in range(n_images):
        k = int(rng.integers(0, 5))
        xy = rng.uniform(0, 400, (k, 2))
        wh = rng.uniform(15, 150, (k, 1)).repeat(2, axis=1) * rng.uniform(0.9, 1.2, (k, 2))
        objects = np.hstack([np.round(xy), np.round(xy + wh), np.zeros((k, 1)), (rng.random((k, 1)) < 0.05)])
        records[i, 0]["imgname"] = f"{i:06d}.jpg"
        records[i, 0]["objects"] = objects if k else np.zeros((0, 6))
        gt_boxes.append(objects[:, :4])
    gt_path = folder / "synthetic_gt.mat"
    savemat(gt_path, {"Annotations": records})
    offsets = np.concatenate(([0], np.cumsum([len(b) for b in gt_boxes])))
    all_gt = np.concatenate(gt_boxes)
    image = rng.integers(0, n_images, n_detections)
    counts = np.diff(offsets)[image]
    near = (counts > 0) & (rng.random(n_detections) < 0.3)  # 30% jittered copies of a face, the rest random
    pick = offsets[image] + (rng.integers(0, 1 << 30, n_detections) % np.maximum(counts, 1))
    x1, y1 = rng.uniform(0, 450, (2, n_detections))
    boxes = np.stack([x1, y1, x1 + rng.uniform(5, 120, n_detections), y1 + rng.uniform(5, 120, n_detections)], 1)
    jittered = all_gt[np.minimum(pick, len(all_gt) - 1)] + rng.normal(0, 6, (n_detections, 4))
    boxes = np.where(near[:, None], jittered, boxes)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
    scores = rng.random(n_detections)
    lines = [f"{i:06d} {s:.3f} {b[0]:.1f} {b[1]:.1f} {b[2]:.1f} {b[3]:.1f}\n"
             for i, s, b in zip(image.tolist(), scores.tolist(), boxes.tolist())]
    det_path = folder / "synthetic_dets.txt"
    det_path.write_text("".join(lines))
    return gt_path, det_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--synthetic", type=int, default=50_000, help="synthetic detections (0: skip)")
    parser.add_argument("--data", default=os.environ.get("FACEBENCH_SHARED_DATA",
                                                         str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    args = parser.parse_args()
    data = Path(args.data)
    cases = []
    pascal_gt = "Annotations_Face_PASCALLayout_large_fixed.mat"
    real = [("afw", "new_annotations_AFW.mat", "SquaresChnFtrs-5_Mathias2014/Baseline.txt"),
            ("pascal", pascal_gt, "SquaresChnFtrs-5_Mathias2014/Ours_Baseline.txt"),
            ("pascal", pascal_gt, "S3FD_official/SFD_PASCAL_PR.txt")]
    for dataset, ann, name in real:
        if (data / dataset / "results" / name).is_file():
            cases.append((f"{dataset}:{name}", dataset, data / dataset / "annotations" / ann,
                          data / dataset / "results" / name))
    with tempfile.TemporaryDirectory() as tmp:
        if args.synthetic:
            gt_path, det_path = synthetic_case(Path(tmp), args.synthetic)
            cases.append((f"synthetic {args.synthetic} dets", "pascal", gt_path, det_path))
        print(f"{'case':48s} {'dets':>8s} {'vectorised':>11s} {'loop':>9s} {'ratio':>7s} {'peak MiB':>9s} "
              f"{'loop MiB':>9s}  AP")
        for label, dataset, gt_path, det_path in cases:
            gt = load_ground_truth(dataset, gt_path)
            dets = read_detections(det_path)
            fast_t, fast_mem, fast = measure(lambda: evaluate(gt, dets), args.repeat)
            slow_t, slow_mem, slow_ap = measure(lambda: reference_ap(gt, dets), 1)
            assert fast.ap == slow_ap or (np.isnan(fast.ap) and np.isnan(slow_ap)), (label, fast.ap, slow_ap)
            print(f"{label:48s} {len(dets):8d} {fast_t:10.3f}s {slow_t:8.2f}s {slow_t / fast_t:6.1f}x "
                  f"{fast_mem:9.1f} {slow_mem:9.1f}  {fast.ap:.15g} (equal)")


if __name__ == "__main__":
    main()
