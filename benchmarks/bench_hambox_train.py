"""HAMBox training throughput: a timed run of a paper config on the real WIDER train sample images plus generated data.

Run (GPU): `python benchmarks/bench_hambox_train.py` (defaults: config t4_hambox, CUDA when present, 300
iterations, random backbone, i.e. labelled "not comparable"). CPU smoke:
`python benchmarks/bench_hambox_train.py --device cpu --iters 3 --set model.preset=tiny --set data.crop_size=128
--set train.images_per_gpu=2 --set train.total_batch=2`.

Builds one WIDER-layout training set in a temporary folder: the real train images found under
--sample-images (default ../shared/data/widerface/images_sample/WIDER_train/images) with their boxes from
--sample-gt (wider_face_split), plus --synthetic generated images with face-like ellipses. Then runs
`facebench train`'s trainer and reports images/s (median over the logged windows after the first, which holds
start-up and cuDNN autotuning), peak GPU memory, the share of time spent waiting for data, and the loss.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectors.hambox.data import make_synthetic_wider, read_wider_split  # noqa: E402
from detectors.hambox.train import RunOptions, train  # noqa: E402
from detectors.hambox.train_config import CONFIG_DIR, parse_train_config  # noqa: E402


def shared_widerface() -> Path | None:
    """../shared/data/widerface (or $FACEBENCH_SHARED_DATA/widerface) when present."""
    for root in (os.environ.get("FACEBENCH_SHARED_DATA"), REPO.parent / "shared" / "data"):
        if root and (Path(root) / "widerface").is_dir():
            return Path(root) / "widerface"
    return None


def load_config_dict(name: str) -> dict:
    """A bundled config by name, or a JSON file."""
    path = Path(name) if Path(name).suffix == ".json" else CONFIG_DIR / f"{name}.json"
    if not path.is_file():
        sys.exit(f"{name}: no such config (bundled names: see detectors/hambox/configs/index.json)")
    return json.loads(path.read_text())


def apply_overrides(config: dict, assignments: list[str]) -> dict:
    """section.key=value (value parsed as JSON, else kept as a string)."""
    for item in assignments:
        key, _, raw = item.partition("=")
        section, _, field = key.partition(".")
        if not field:
            sys.exit(f"--set {item}: expected section.key=value")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        config.setdefault(section, {})[field] = value
    return config


def build_dataset(root: Path, sample_gt: Path | None, sample_images: Path | None, n_synthetic: int,
                  seed: int) -> tuple[Path, Path, int, int]:
    """WIDER layout under root: (gt txt, image root, real images used, synthetic images)."""
    synthetic = make_synthetic_wider(root, n_images=n_synthetic, image_size=(1024, 768), faces_per_image=(2, 12),
                                     face_sides=(8.0, 220.0), seed=seed)
    lines = [synthetic.annotation.read_text().rstrip("\n")] if n_synthetic else []
    real = 0
    if sample_gt is not None and sample_gt.exists() and sample_images is not None and sample_images.is_dir():
        records, _ = read_wider_split(sample_gt)
        for record in records:
            source = sample_images / record.name
            if not source.is_file():
                continue
            target = synthetic.image_root / record.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            boxes = record.boxes_xywh.reshape(-1, 4)
            lines += [record.name, str(len(boxes))]
            lines += [" ".join(f"{v:g}" for v in box) + " 0 0 0 0 0 0" for box in boxes]
            real += 1
    annotation = root / "train_gt.txt"
    annotation.write_text("\n".join(lines) + "\n")
    return annotation, synthetic.image_root, real, n_synthetic


def summarize(records: list[dict], device: str) -> dict:
    """images/s, memory and data-wait share from the trainer's logged windows."""
    timed = records[1:] if len(records) > 1 else records
    rates = [r["images_per_s"] for r in timed]
    memory = [r["max_memory_mib"] for r in records if r.get("max_memory_mib") is not None]
    window = sum(r["window_s"] for r in timed)
    return {"device": device, "windows": len(timed), "images_per_s_median": statistics.median(rates),
            "images_per_s_min": min(rates), "images_per_s_max": max(rates),
            "peak_memory_mib": max(memory) if memory else None,
            "data_wait_share": sum(r["data_wait_s"] for r in timed) / window if window else None,
            "loss_first": records[0]["loss"]["total"], "loss_last": records[-1]["loss"]["total"],
            "iterations": records[-1]["iteration"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="t4_hambox", help="bundled config name or JSON file")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--iters", type=int, default=None, help="iterations (default 300 CUDA, 3 CPU)")
    parser.add_argument("--log-every", type=int, default=None, help="iterations per logged window")
    parser.add_argument("--synthetic", type=int, default=64, help="generated 1024x768 training images")
    parser.add_argument("--sample-gt", type=Path, default=None, help="wider_face_split folder or train txt/mat")
    parser.add_argument("--sample-images", type=Path, default=None, help="WIDER_train/images of the real sample")
    parser.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (default: config's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value (JSON), e.g. train.images_per_gpu=4; repeatable")
    parser.add_argument("--out", type=Path, default=None, help="write the summary JSON here")
    parser.add_argument("--keep", type=Path, default=None, help="run folder to keep (default: temporary)")
    args = parser.parse_args(argv)

    widerface = shared_widerface()
    sample_gt = args.sample_gt or (widerface / "wider_face_split" if widerface else None)
    sample_images = args.sample_images or (widerface / "images_sample" / "WIDER_train" / "images" if widerface else None)
    iters = args.iters or (300 if args.device.startswith("cuda") else 3)
    log_every = args.log_every or (max(1, iters // 10) if args.device.startswith("cuda") else 1)
    config_dict = apply_overrides(load_config_dict(args.config), args.overrides)
    config_dict.setdefault("train", {}).update({"log_every": log_every, "checkpoint_every": 10 ** 9})
    config = parse_train_config(config_dict, source=args.config)

    work = Path(tempfile.mkdtemp(prefix="facebench-train-bench-"))
    try:
        annotation, image_root, real, synthetic = build_dataset(work / "data", sample_gt, sample_images,
                                                                args.synthetic, config.train.seed)
        print(f"config {config.name}, device {args.device}, torch {torch.__version__}"
              + (f", {torch.cuda.get_device_name(0)}" if args.device.startswith("cuda") else "")
              + f"; data: {real} real sample images + {synthetic} generated; {iters} iterations, "
              f"{config.train.images_per_gpu} images per step, crop {config_dict.get('data', {}).get('crop_size')}")
        result = train(RunOptions(config=config, out_dir=args.keep or work / "run", gt=annotation,
                                  images=image_root, from_scratch=True, max_iters=iters, device=args.device,
                                  num_workers=args.num_workers, echo=print))
        summary = summarize(result.records, args.device)
        summary.update({"config": config.name, "real_images": real, "synthetic_images": synthetic,
                        "images_per_step": config.train.images_per_gpu, "amp": config.train.amp,
                        "torch": torch.__version__, "comparable": False})
        memory = f"{summary['peak_memory_mib']:.0f} MiB" if summary["peak_memory_mib"] is not None else "n/a (CPU)"
        print(f"train throughput: {summary['images_per_s_median']:.2f} images/s median over {summary['windows']} "
              f"windows ({summary['images_per_s_min']:.2f}-{summary['images_per_s_max']:.2f}); peak memory {memory}; "
              f"data wait {100 * (summary['data_wait_share'] or 0):.0f}% of the time; loss "
              f"{summary['loss_first']:.3f} -> {summary['loss_last']:.3f} at iteration {summary['iterations']}")
        if args.out:
            args.out.write_text(json.dumps(summary, indent=2) + "\n")
        return summary
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
