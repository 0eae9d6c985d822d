"""HAMBox speed and memory: forward latency / images per second and peak memory at 640x640.

Run: `.venv/bin/python benchmarks/bench_hambox.py` (options: --size, --iters, --batch, --config,
--skip-model, --device cpu|cuda|all).

Measures, in one run:
- the network forward pass (default config = full HAMBox; `--config sms` etc. for the plain-head
  ablations) on CPU in fp32 and, when CUDA is present, in fp32 and fp16 (channels-last), with
  images/s and peak memory (CPU: peak RSS growth via /proc/self/status VmHWM; CUDA:
  torch.cuda.max_memory_allocated). The issue's target is >= 100 images/s at 640x640 fp16 on an
  H100 for the single-scale model; the fp16/fp32 ratio is printed next to it.
- post-processing NMS (vectorised, this package) against a box-by-box greedy reference written
  here, on 5,000 clustered boxes: time ratio and identical output check.
- OAM matching (vectorised rounds) against a face-by-face Python reference at 34,125 anchors.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors.hambox import matching  # noqa: E402
from detectors.hambox.box_coding import pairwise_iou  # noqa: E402
from detectors.hambox.inference import nms  # noqa: E402
from detectors.hambox.model import HAMBox, HAMBoxConfig  # noqa: E402


def _rss_kib(field: str) -> int:
    """A memory field of /proc/self/status in KiB (0 when unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def bench_forward(config: HAMBoxConfig, device: str, half: bool, size: int, batch: int, iters: int, warmup: int) -> dict:
    """Mean forward latency per batch, images/s and peak memory for one setting."""
    torch.manual_seed(0)
    model = HAMBox(config).eval().to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # one fixed input size: let cuDNN pick its fastest kernels
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    if half:
        model, x = model.half(), x.half()
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        base_rss = _rss_kib("VmRSS")
        reset = _reset_peak_rss() if device == "cpu" else False
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            model(x)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    if device == "cuda":
        peak_mib = torch.cuda.max_memory_allocated() / 2 ** 20
        peak_kind = "cuda max_memory_allocated"
    else:
        peak_mib = (_rss_kib("VmHWM") - base_rss) / 1024 if reset else float("nan")
        peak_kind = "peak RSS growth"
    latency = float(np.median(times))
    return {"device": device, "dtype": "fp16" if half else "fp32", "batch": batch, "latency_s": latency,
            "images_per_s": batch / latency, "peak_mib": peak_mib, "peak_kind": peak_kind}


def reference_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """Box-by-box greedy NMS with torchvision semantics (IoU > thr suppresses)."""
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for a in range(len(order)):
        if suppressed[a]:
            continue
        i = order[a]
        keep.append(int(i))
        for b in range(a + 1, len(order)):
            if suppressed[b]:
                continue
            j = order[b]
            iw = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
            ih = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
            if iw <= 0 or ih <= 0:
                continue
            inter = iw * ih
            union = ((boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
                     + (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1]) - inter)
            if inter / union > thr:
                suppressed[b] = True
    return keep


def bench_nms(n: int = 5000) -> dict:
    """Vectorised NMS vs the per-box reference on clustered boxes (as detector outputs are)."""
    g = np.random.default_rng(0)
    centres = g.random((150, 2)) * 600
    pick = g.integers(0, 150, n)
    size = g.random((n, 1)) * 40 + 10
    xy = centres[pick] + g.normal(0, 4, (n, 2))
    boxes = np.concatenate([xy, xy + size], 1).astype(np.float32)
    scores = g.random(n).astype(np.float32)
    tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
    start = time.perf_counter()
    fast = nms(tb, ts, 0.3).tolist()
    fast_s = time.perf_counter() - start
    start = time.perf_counter()
    ref = reference_nms(boxes.astype(np.float64), scores, 0.3)
    ref_s = time.perf_counter() - start
    return {"boxes": n, "kept": len(fast), "vectorised_s": fast_s, "reference_s": ref_s,
            "speedup": ref_s / fast_s, "identical": fast == ref}


def reference_oam(iou: torch.Tensor, pred: torch.Tensor, k: int, t: float, thr: float
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Face-by-face OAM (Algorithm 1) as loops over faces and candidate anchors; same outputs as matching.oam."""
    g, a = iou.shape
    best, face = iou.max(dim=0)
    assigned = torch.where(best >= thr, face, torch.full_like(face, -1))
    first = assigned.clone()
    counts = [int((assigned == j).sum()) for j in range(g)]
    quality = pred.max(dim=0).values.clamp(min=0)
    for j in range(g):
        if counts[j] >= k:
            continue
        candidates = torch.nonzero((pred[j] > t) & (assigned < 0)).squeeze(1).tolist()
        candidates.sort(key=lambda i: (-float(pred[j, i]), i))
        for i in candidates[: k - counts[j]]:
            assigned[i] = j
            quality[i] = pred[j, i]
    return assigned, (assigned >= 0) & (first < 0), quality


def bench_oam(faces: int, size: int = 640) -> dict:
    """OAM on a 640x640 anchor set; every anchor predicts a slightly moved copy of its nearest face."""
    model = HAMBox(HAMBoxConfig.preset("tiny"))
    anchors = model.anchors_for((size, size))
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(faces, 2, generator=g) * (size - 60)
    wh = torch.rand(faces, 2, generator=g) * 40 + 6
    gt = torch.cat([xy, xy + wh], 1)
    iou = pairwise_iou(gt, anchors)
    pred_boxes = gt[iou.argmax(dim=0)] + torch.randn(anchors.shape[0], 4, generator=g) * 2
    pred = pairwise_iou(gt, pred_boxes)
    timings = {}
    for name, fn in (("vectorised", lambda: matching.oam(iou, pred, k=3, t=0.8)),
                     ("reference", lambda: reference_oam(iou, pred, 3, 0.8, 0.35))):
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            out = fn()
            runs.append(time.perf_counter() - start)
        timings[name] = (min(runs), out)
    fast_s, fast = timings["vectorised"]
    ref_s, ref = timings["reference"]
    identical = all(torch.equal(a, b) for a, b in zip(fast, ref))
    return {"faces": faces, "anchors": anchors.shape[0], "vectorised_s": fast_s, "reference_s": ref_s,
            "speedup": ref_s / fast_s, "identical": identical}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--iters", type=int, default=None, help="timed forward passes (default 2 CPU, 20 CUDA)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 1 CPU, 16 CUDA)")
    parser.add_argument("--config", default="hambox", help="HAMBoxConfig preset name (default: full HAMBox)")
    parser.add_argument("--device", default="all", choices=["all", "cpu", "cuda"])
    parser.add_argument("--skip-model", action="store_true", help="only the NMS and matching comparisons")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpu count {os.cpu_count()}, "
          f"cuda {'yes: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no'}")
    result = bench_nms()
    print(f"NMS {result['boxes']} boxes (kept {result['kept']}): vectorised {result['vectorised_s'] * 1e3:.1f} ms, "
          f"per-box reference {result['reference_s'] * 1e3:.0f} ms, speedup x{result['speedup']:.0f}, "
          f"identical={result['identical']}")
    for faces in (10, 60, 300):
        result = bench_oam(faces)
        print(f"OAM {result['faces']} faces x {result['anchors']} anchors: vectorised {result['vectorised_s'] * 1e3:.1f} ms, "
              f"per-face reference {result['reference_s'] * 1e3:.1f} ms, speedup x{result['speedup']:.2f}, "
              f"identical={result['identical']}")
    if args.skip_model:
        return
    config = HAMBoxConfig.preset(args.config)
    runs = []
    if args.device in ("all", "cpu"):
        runs.append(("cpu", False))
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        runs += [("cuda", False), ("cuda", True)]
    results = []
    for device, half in runs:
        batch = args.batch or (16 if device == "cuda" else 1)
        iters = args.iters or (20 if device == "cuda" else 2)
        r = bench_forward(config, device, half, args.size, batch, iters, warmup=1 if device == "cpu" else 5)
        results.append(r)
        print(f"forward [{args.config}] {args.size}x{args.size} {r['device']} {r['dtype']} batch {r['batch']}: "
              f"{r['latency_s'] * 1e3:.1f} ms/batch, {r['images_per_s']:.2f} images/s, "
              f"peak {r['peak_mib']:.0f} MiB ({r['peak_kind']})")
    cuda = {r["dtype"]: r for r in results if r["device"] == "cuda"}
    if "fp16" in cuda:
        fp16 = cuda["fp16"]["images_per_s"]
        print(f"CUDA fp16 / fp32 throughput ratio x{fp16 / cuda['fp32']['images_per_s']:.2f}; "
              f"fp16 vs the 100 images/s target: x{fp16 / 100:.2f}")
    elif args.device != "cpu":
        print("CUDA not available: the fp16 figure needs a GPU run")


if __name__ == "__main__":
    main()
