"""Benchmark: 1,000 image-level bootstrap resamples of a WIDER FACE val result (easy, medium and hard AP).

Target: <= 2 s on 2 cores. Input: the per-image records of a real prediction folder (evaluated here), a saved
result (--result X.json with X.records.npz), or synthetic records of WIDER val's size. Prints wall and CPU
time of the vectorised bootstrap (cold: first call, scipy.sparse import included; warm: second call), the
sparse and dense products separately, peak memory, and the ratio against a straightforward per-resample loop
(draw images, sum their rows, the protocol's pr_curve + voc_ap) timed in the same run on --naive-resamples
resamples and scaled to the full count; the loop's APs are checked equal to the vectorised ones.

    python benchmarks/bench_bootstrap.py                      # yolov7-tiny-leak from ../shared/data
    python benchmarks/bench_bootstrap.py --result /tmp/y7.json
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from facebench import bootstrap as bs  # noqa: E402
from protocols.wider_face import curves  # noqa: E402

DEFAULT_FOLDER = "yolov7-tiny-leak_derronqi"


def real_records(shared: Path, folder: str) -> bs.WiderRecords | None:
    """Evaluate a real prediction folder and return its records (None when the data is absent)."""
    gt_dir = shared / "widerface" / "ground_truth"
    pred_dir = shared / "widerface" / "results" / folder / "widerface_txt"
    if not (gt_dir / "wider_face_val.mat").is_file() or not pred_dir.is_dir():
        return None
    from protocols.wider_face import evaluate, load_ground_truth, read_predictions

    gt = load_ground_truth(gt_dir)
    return bs.records_from_result(evaluate(gt, read_predictions(pred_dir, gt, quiet=True), breakdown=False))


def synthetic_records(n_images: int = 3226, seed: int = 0) -> bs.WiderRecords:
    """Records of WIDER's size: ~40 predictions per image, TP probability rising with the score."""
    rng = np.random.default_rng(seed)
    proposals, tps, faces = {}, {}, {}
    per_image = rng.poisson(40, n_images)
    image = np.repeat(np.arange(n_images), per_image)
    counted = (curves.THRESH_NUM * rng.beta(2, 1, len(image))).astype(np.int64)
    for k, name in enumerate(("easy", "medium", "hard")):
        tp = rng.random(len(image)) < (1 - counted / curves.THRESH_NUM) * (0.5 + 0.2 * k)
        proposal = tp | (rng.random(len(image)) < 0.7 + 0.1 * k)
        proposals[name] = curves.image_counts(counted, proposal, image, n_images)
        tps[name] = curves.image_counts(counted, tp, image, n_images)
        faces[name] = (np.bincount(image[tp], minlength=n_images) + rng.poisson(2 + 3 * k, n_images)).astype(np.int32)
    return bs.WiderRecords(image_ids=tuple(map(str, range(n_images))), proposals=proposals, true_positives=tps,
                           faces=faces)


def naive_loop(records: bs.WiderRecords, weights: np.ndarray) -> dict[str, np.ndarray]:
    """The straightforward reference: per resample, expand the drawn images and sum their rows."""
    out = {name: np.empty(len(weights)) for name in records.proposals}
    for r, w in enumerate(weights):
        drawn = np.repeat(np.arange(len(w)), w)  # the resample as a list of images
        for name in records.proposals:
            p = records.proposals[name][drawn].sum(axis=0)
            t = records.true_positives[name][drawn].sum(axis=0)
            n_faces = int(records.faces[name][drawn].sum())
            precision, recall = curves.pr_curve(p, t, n_faces)
            out[name][r] = curves.voc_ap(recall, precision)
    return out


def timed(fn, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn(*args)
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--result", type=Path, help="a saved WIDER result JSON (records .npz beside it)")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--folder", default=DEFAULT_FOLDER, help="prediction folder under widerface/results")
    parser.add_argument("--synthetic", action="store_true", help="use synthetic records of WIDER's size")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--naive-resamples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.result:
        records, source = bs.load_records(args.result), str(args.result)
    else:
        records = None if args.synthetic else real_records(args.shared, args.folder)
        source = f"{args.folder} (evaluated here)"
        if records is None:
            records, source = synthetic_records(seed=args.seed), "synthetic records (3,226 images)"
    n = len(records.image_ids)
    cells = sum(r.size for r in records.proposals.values()) * 2
    nonzero = sum(np.count_nonzero(np.diff(r, axis=1)) for m in (records.proposals, records.true_positives)
                  for r in m.values())
    print(f"records: {source}; {n} images, {len(records.proposals)} settings, "
          f"{100 * nonzero / cells:.2f}% non-zero increments")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} "
          "(other processes share the cores: compare CPU with wall time)")

    cold, wall_cold, cpu_cold = timed(bs.bootstrap, records, args.resamples, args.seed)
    tracemalloc.start()
    warm, wall, cpu = timed(bs.bootstrap, records, args.resamples, args.seed)
    peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"vectorised, {args.resamples} resamples: cold wall {wall_cold:.3f} s (cpu {cpu_cold:.3f} s, "
          f"scipy.sparse import included); warm wall {wall:.3f} s (cpu {cpu:.3f} s); peak traced {peak:.0f} MiB, "
          f"max RSS {rss:.0f} MiB")
    weights = bs.resample_weights(n, args.resamples, args.seed)
    for label, density in (("sparse", 1.0), ("dense", 0.0)):
        saved = bs.SPARSE_DENSITY
        bs.SPARSE_DENSITY = density
        try:
            _, w_wall, w_cpu = timed(bs.resampled_metrics, records, weights)
        finally:
            bs.SPARSE_DENSITY = saved
        print(f"  metrics only, {label} product: wall {w_wall:.3f} s (cpu {w_cpu:.3f} s)")
    for name, (lo, hi) in warm.intervals().items():
        print(f"  {name}: AP {100 * warm.point[name]:.2f}, 95% interval [{100 * lo:.2f}, {100 * hi:.2f}]")

    k = min(args.naive_resamples, args.resamples)
    naive, naive_wall, naive_cpu = timed(naive_loop, records, weights[:k])
    for name in naive:
        worst = float(np.max(np.abs(naive[name] - warm.samples[name][:k])))
        if worst > 1e-12:
            sys.exit(f"vectorised and naive APs differ on {name} by {worst:.3g}")
    scale = args.resamples / k
    print(f"naive loop: {naive_wall:.3f} s (cpu {naive_cpu:.3f} s) for {k} resamples -> "
          f"~{naive_wall * scale:.1f} s for {args.resamples} (scaled); APs equal to 1e-12")
    print(f"ratio: vectorised (warm) is {naive_wall * scale / wall:.0f}x faster than the naive loop (wall), "
          f"{naive_cpu * scale / cpu:.0f}x (cpu); target <= 2 s: {'met' if wall <= 2.0 else 'NOT met'} "
          f"(warm wall {wall:.2f} s, cold {wall_cold:.2f} s)")


if __name__ == "__main__":
    main()
