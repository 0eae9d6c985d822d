"""HAMBox trainer (spec §6): DDP synchronous SGD, AMP, warm-up + step schedule, exact resume, logs.

Launch on several GPUs with `torchrun --nproc_per_node=N -m facebench train CONFIG ...`; on one device
with `facebench train CONFIG ...`. The global batch (`train.total_batch`, 28 in the paper) is kept on any
number of processes by gradient accumulation: accumulation = total_batch / (images_per_gpu * world_size).
Each micro-batch's loss is normalised by its own positive count (spec §5.4) and gradients are averaged
over micro-batches and processes, so a 2-process run and a 1-process run accumulating 2 micro-batches
take the same step.

Resuming: data draws are a pure function of (seed, draw id) (see `data.WiderTrainDataset`), and a
checkpoint stores model, optimiser, AMP scaler, iteration, every process's RNG states, NAMS N, the config
and the backbone weights' sha256 — so a resumed run continues on the trajectory of an unbroken one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from detectors.hambox.train_config import OptimConfig, TrainConfig
from facebench.errors import InputError

if TYPE_CHECKING:
    from detectors.hambox.data import WiderTrainDataset

CHECKPOINT_FORMAT = "facebench.hambox.trainstate/1"
NOT_COMPARABLE = "not comparable"
WEIGHTS_ENV = "FACEBENCH_BACKBONE_WEIGHTS"


# ------------------------------------------------------------------------------------------------
# Pure pieces: schedule, parameter groups, comparability
# ------------------------------------------------------------------------------------------------


def lr_at(iteration: int, optim: OptimConfig) -> float:
    """Learning rate for 0-based `iteration`: step decay times a linear warm-up factor."""
    decays = sum(1 for step in optim.lr_steps if iteration >= step)
    lr = optim.lr * optim.lr_gamma ** decays
    if iteration < optim.warmup_iters:
        alpha = iteration / optim.warmup_iters
        lr *= optim.warmup_start_factor + (1.0 - optim.warmup_start_factor) * alpha
    return lr


def parameter_groups(model: nn.Module, weight_decay: float, decay_bias_and_norm: bool) -> list[dict[str, Any]]:
    """Trainable parameters split into decayed weights and undecayed biases/norm parameters (1-D)."""
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 and not decay_bias_and_norm else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


# Settings a resumed run may change without leaving the unbroken trajectory (bookkeeping, run length).
_RESUME_FREE = {"description", "paper_rows", "data.num_workers", "train.max_iters", "train.log_every",
                "train.checkpoint_every", "train.keep_checkpoints", "train.cudnn_benchmark"}


def changed_settings(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Dotted names of the training-config settings that differ between a checkpoint's config and this one."""
    def flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, Mapping) and key != "model":
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    old, new = flat(saved), flat(current)
    return sorted(key for key in old.keys() | new.keys()
                  if key not in _RESUME_FREE and old.get(key) != new.get(key))


def comparability(config: TrainConfig, weights_sha256: str | None, world_size: int, accumulation: int,
                  max_iters: int) -> tuple[bool, list[str]]:
    """Whether a run follows the paper recipe, and why not."""
    reasons = []
    if config.recipe != "paper":
        reasons.append(f"recipe '{config.recipe}'")
    if weights_sha256 is None:
        reasons.append("backbone trained from scratch (no ImageNet weights)")
    if max_iters != config.train.max_iters:
        reasons.append(f"stopped at {max_iters} of {config.train.max_iters} iterations")
    if config.train.images_per_gpu * world_size * accumulation != 28:
        reasons.append(f"global batch {config.train.images_per_gpu * world_size * accumulation} instead of 28")
    return not reasons, reasons


def accumulation_steps(total_batch: int, images_per_gpu: int, world_size: int) -> int:
    """Micro-batches per step that keep the global batch; ValueError when it does not divide."""
    per_step = images_per_gpu * world_size
    if total_batch % per_step:
        raise ValueError(f"total_batch {total_batch} is not a multiple of images_per_gpu x processes = {per_step}")
    return total_batch // per_step


# ------------------------------------------------------------------------------------------------
# Distributed context and RNG state
# ------------------------------------------------------------------------------------------------


@dataclass
class DistContext:
    """Process-group facts for this process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def setup_distributed(device: str | None = None) -> DistContext:
    """Join the torchrun process group when WORLD_SIZE > 1 (NCCL on CUDA, else gloo); pick the device."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        return DistContext(rank, world, local, _pick_device(device, local, world), owns_group=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=_pick_device(device, 0, 1))
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    chosen = _pick_device(device, local, world)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return DistContext(rank, world, local, chosen, owns_group=True)


def _pick_device(device: str | None, local_rank: int, world: int) -> torch.device:
    if device in (None, "auto"):
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(None, None, f"--device {device}: CUDA is not available on this machine")
        if world > 1 or chosen.index is None:
            chosen = torch.device(f"cuda:{local_rank}")
    return chosen


def rng_state() -> dict[str, Any]:
    """This process's Python, NumPy and torch RNG states (JSON/tensor types only, weights_only-safe)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": _to_lists(random.getstate()),
             "numpy": {"kind": kind, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
                       "gauss": float(gauss)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what `rng_state` saved."""
    random.setstate(_to_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------------
# Data location
# ------------------------------------------------------------------------------------------------


def resolve_wider_train(data_root: Path | None, gt: Path | None = None,
                        images: Path | None = None) -> tuple[Path, Path]:
    """(ground-truth path, image root) from a WIDER root or explicit paths.

    A WIDER root holds `wider_face_split/` and `WIDER_train/images/`; a generated dataset holds
    `wider_face_train_bbx_gt.txt` and `images/`. The data root of `run` and `eval` (the folder holding
    `widerface/`) works too.
    """
    if data_root is None and (gt is None or images is None):
        raise InputError(None, None, "pass --data-root DIR (WIDER root: wider_face_split/ and WIDER_train/images/), "
                                     "or both --gt and --images")
    if data_root is not None and not (data_root / "wider_face_split").exists() \
            and (data_root / "widerface" / "wider_face_split").exists():
        data_root = data_root / "widerface"
    if gt is None:
        for candidate in (data_root / "wider_face_split", data_root / "wider_face_train.mat",
                          data_root / "wider_face_train_bbx_gt.txt"):
            if candidate.exists():
                gt = candidate
                break
        else:
            raise InputError(data_root, None, "no wider_face_split/ or wider_face_train annotation here")
    if images is None:
        for candidate in (data_root / "WIDER_train" / "images", data_root / "images", data_root):
            if candidate.is_dir():
                images = candidate
                break
    if not Path(images).is_dir():
        raise InputError(images, None, "image folder not found")
    return Path(gt), Path(images)


# ------------------------------------------------------------------------------------------------
# Checkpoints
# ------------------------------------------------------------------------------------------------


def checkpoint_dir(out_dir: Path) -> Path:
    """Where iteration checkpoints live."""
    return out_dir / "checkpoints"


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest checkpoint named by checkpoints/latest, or None."""
    pointer = checkpoint_dir(out_dir) / "latest"
    if not pointer.is_file():
        return None
    path = checkpoint_dir(out_dir) / pointer.read_text().strip()
    return path if path.is_file() else None


def save_train_state(path: Path, model: nn.Module, model_config: Any, extra: Mapping[str, Any], keep: int = 0) -> Path:
    """Write a detector checkpoint carrying the training state in `extra`, point checkpoints/latest at it,
    and prune iteration checkpoints beyond the newest `keep` + 1 (0 keeps all).

    The file is the model helper's checkpoint format, so `facebench run hambox -o checkpoint=PATH` reads it too.
    """
    from detectors.hambox.checkpoint import save_checkpoint

    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, model, model_config, extra=dict(extra))
    pointer = path.parent / "latest"
    pointer_tmp = path.parent / "latest.tmp"
    pointer_tmp.write_text(path.name + "\n")
    os.replace(pointer_tmp, pointer)
    if keep > 0:
        older = sorted(p for p in path.parent.glob("ckpt_*.pt") if p != path)
        for stale in older[:-keep] if len(older) > keep else []:
            stale.unlink(missing_ok=True)
    return path


def load_train_state(path: Path) -> dict[str, Any]:
    """The training state of a checkpoint: its `extra` plus `model` (state dict) and `model_config`."""
    from detectors.hambox.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path)
    if checkpoint.extra.get("format") != CHECKPOINT_FORMAT:
        raise InputError(path, None, "a HAMBox model without training state (optimizer, iteration): "
                                     "cannot resume from it")
    state = dict(checkpoint.extra)
    state["model"] = checkpoint.state_dict
    state["model_config"] = checkpoint.config.to_dict()
    return state


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------


class LossModule(nn.Module):
    """nn.Module whose forward is the detector's training loss (so DDP sees a forward call)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images_rgb255: Tensor, targets: Sequence[Tensor], with_stats: bool = False):
        out = self.model.loss(self.model.normalize(images_rgb255), targets, with_stats=with_stats)
        return out.total, out.parts, out.stats


@dataclass
class RunOptions:
    """Everything `train` needs besides the config."""

    config: TrainConfig
    out_dir: Path
    data_root: Path | None = None
    gt: Path | None = None
    images: Path | None = None
    backbone_weights: Path | None = None
    from_scratch: bool = False
    resume: bool = False
    resume_from: Path | None = None
    max_iters: int | None = None
    device: str | None = None
    num_workers: int | None = None
    allow_missing_images: bool = False
    echo: Callable[[str], None] = print


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    iteration: int
    out_dir: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Path | None = None
    comparable: bool = False
    reasons: list[str] = field(default_factory=list)


def _weights_path(options: RunOptions) -> Path | None:
    if options.backbone_weights is not None:
        return Path(options.backbone_weights)
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env) if env else None


def truncate_log(path: Path, iteration: int) -> None:
    """Drop log records after `iteration` (written by a killed run past its last checkpoint)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("iteration", 0) <= iteration:
                kept.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by the kill
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)


def present_images(records: Sequence[Any], image_root: Path, allow_missing: bool,
                   echo: Callable[[str], None]) -> list[Any]:
    """Records whose image file exists; a missing one is an error unless `allow_missing` (checked up front)."""
    present = [r for r in records if (image_root / r.name).is_file()]
    missing = len(records) - len(present)
    if missing and not allow_missing:
        first = next(r for r in records if not (image_root / r.name).is_file())
        raise InputError(image_root / first.name, None, f"training image not found ({missing} of {len(records)} "
                                                        "listed images are missing; --allow-missing-images trains "
                                                        "on the present ones)")
    if missing:
        echo(f"warning: {missing} of {len(records)} listed images are missing under {image_root}; "
             f"training on the {len(present)} present")
    return present


def check_weights_policy(config: TrainConfig, weights: Path | None, from_scratch: bool) -> None:
    """The paper recipe needs ImageNet weights; `--from-scratch` is the explicit, labelled escape hatch."""
    if weights is not None and from_scratch:
        raise InputError(None, None, "--backbone-weights and --from-scratch exclude each other")
    if weights is None and not from_scratch and config.recipe == "paper":
        raise InputError(config.source, None,
                         "this config follows the paper recipe, which starts from an ImageNet ResNet-50: pass "
                         "--backbone-weights PATH (a torchvision-layout state dict such as resnet50-0676ba61.pth, "
                         f"or set {WEIGHTS_ENV}), or --from-scratch for a smoke test (labelled '{NOT_COMPARABLE}')")


def estimate_nams_n_for(model: nn.Module, dataset: "WiderTrainDataset", crops: int, seed: int,
                        threshold: float) -> tuple[int, float]:
    """NAMS N = round(mean stage-one matches per face) on `crops` seeded augmented crops (geometry only)."""
    from PIL import Image

    from detectors.hambox import matching
    from detectors.hambox.data import sample_crop_boxes

    aug = dataset.config
    boxes = []
    for k in range(crops):
        index = dataset.image_index(k)
        name, raw = dataset.items[index]
        try:
            with Image.open(dataset.image_root / name) as handle:
                size = handle.size
        except OSError as exc:  # PIL's UnidentifiedImageError is an OSError
            raise InputError(dataset.image_root / name, None, f"cannot read image: {exc}") from None
        drawn = sample_crop_boxes(raw, size, aug, np.random.default_rng([seed, 0xA115, k]))
        if drawn is not None:
            boxes.append(torch.from_numpy(drawn[1]))
    anchors = model.anchors_for((aug.crop_size, aug.crop_size))
    mean = matching.mean_matches_per_face(boxes, anchors, threshold)
    if mean != mean:
        raise InputError(dataset.image_root, None, "cannot measure NAMS N: no face survived augmentation")
    # Same rule as matching.estimate_nams_n (spec §4.3: N = round(mean), at least 1), without a second pass.
    return max(1, int(math.floor(mean + 0.5))), mean


def effective_amp(device: torch.device, amp: str) -> str:
    """The precision a run really uses: the config's on CUDA; on CPU only bf16 autocast (fp16 runs in fp32)."""
    if device.type == "cuda":
        return amp
    return "bf16" if amp == "bf16" else "off"


def _amp_context(device: torch.device, amp: str):
    amp = effective_amp(device, amp)
    if amp == "off":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.float16 if amp == "fp16" else torch.bfloat16)


def _mean_dict(items: Sequence[Mapping[str, float]]) -> dict[str, float]:
    keys = sorted({k for item in items for k in item})
    out = {}
    for key in keys:
        values = [float(item[key]) for item in items if key in item and item[key] is not None]
        finite = [v for v in values if math.isfinite(v)]
        out[key] = sum(finite) / len(finite) if finite else float("nan")
    return out


def _reduce_mean(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Average a dict of floats over processes (NaN entries skipped)."""
    if not ctx.distributed or not values:
        return values
    import torch.distributed as dist

    keys = sorted(values)
    data = torch.tensor([[values[k] if math.isfinite(values[k]) else 0.0 for k in keys],
                         [1.0 if math.isfinite(values[k]) else 0.0 for k in keys]], dtype=torch.float64,
                        device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(data)
    return {k: (float(data[0, i] / data[1, i]) if data[1, i] > 0 else float("nan")) for i, k in enumerate(keys)}


def _tensorboard(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard is optional
        return None
    return SummaryWriter(str(log_dir))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def train(options: RunOptions, ctx: DistContext | None = None) -> TrainResult:
    """Run (or resume) one training run; rank 0 writes logs, checkpoints and run.json under out_dir."""
    from detectors.hambox.backbone import load_torchvision_weights
    from detectors.hambox.data import (TrainBatchSampler, WiderTrainDataset, make_train_loader, raise_loader_error,
                                       read_wider_split)
    from detectors.hambox.model import HAMBox
    from facebench.results import git_commit, sha256_files

    config = options.config
    ctx = ctx or setup_distributed(options.device)
    echo = options.echo if ctx.is_main else (lambda _msg: None)
    out_dir = Path(options.out_dir)
    weights = _weights_path(options)

    # -- resume state first: it fixes the config, the weights hash and NAMS N ----------------------
    resume_path = options.resume_from
    if options.resume and resume_path is None:
        resume_path = latest_checkpoint(out_dir)
        if resume_path is None:
            raise InputError(out_dir, None, "--resume: no checkpoint in this run folder (checkpoints/latest)")
    state = load_train_state(Path(resume_path)) if resume_path else None
    if state is not None:
        saved = state["train_config"]
        if saved.get("name") != config.name or saved.get("model") != config.to_dict()["model"]:
            raise InputError(resume_path, None, f"checkpoint was made with config '{saved.get('name')}', "
                                                f"not '{config.name}' (or its model section differs)")
        weights_sha = state.get("backbone_weights_sha256")
        changed = changed_settings(saved, config.to_dict())
        if changed:
            echo(f"warning: resuming with settings that differ from the checkpoint's ({', '.join(changed)}); "
                 "the run will not follow the trajectory of an unbroken one")
    else:
        check_weights_policy(config, weights, options.from_scratch)
        weights_sha = sha256_files([weights]) if weights is not None else None
    max_iters = int(options.max_iters or config.train.max_iters)
    if state is not None and max_iters < int(state["iteration"]):
        raise InputError(resume_path, None, f"--max-iters {max_iters} is below the checkpoint's iteration "
                                            f"{int(state['iteration'])}: nothing to train")
    try:
        accumulation = accumulation_steps(config.train.total_batch, config.train.images_per_gpu, ctx.world_size)
    except ValueError as exc:  # the config alone was fine: the process count makes it indivisible
        raise InputError(config.source, None, f"train.total_batch: {exc} ({ctx.world_size} processes); launch "
                                              "a number of processes that divides it, or change the config") \
            from None
    comparable, reasons = comparability(config, weights_sha, ctx.world_size, accumulation, max_iters)
    label = "comparable with the paper recipe" if comparable else f"{NOT_COMPARABLE}: " + "; ".join(reasons)

    # -- data ---------------------------------------------------------------------------------------
    gt_path, image_root = resolve_wider_train(options.data_root, options.gt, options.images)
    records, gt_file = read_wider_split(gt_path, "train")
    records = present_images(records, image_root, options.allow_missing_images, echo)
    aug = config.augment_config()
    dataset = WiderTrainDataset(records, image_root, aug, seed=config.train.seed)

    # -- model --------------------------------------------------------------------------------------
    seed_everything(config.train.seed)  # identical initialisation on every process
    model_config = config.model_config()
    if state is not None and state.get("nams_n") is not None:
        model_config = model_config.replace(nams_n=int(state["nams_n"]))
    model = HAMBox(model_config)
    if state is None and weights is not None:
        load_torchvision_weights(model.backbone, weights)
    nams_mean = None
    if model_config.matcher == "nams" and model_config.nams_n is None:
        n, nams_mean = estimate_nams_n_for(model, dataset, config.train.nams_n_crops, config.train.seed,
                                           model_config.match_threshold)
        model_config = model_config.replace(nams_n=n)
        model.config = model_config
        echo(f"NAMS N = {n} (mean stage-one matches per face {nams_mean:.3f} on "
             f"{config.train.nams_n_crops} seeded crops)")
    if state is not None:
        model.load_state_dict(state["model"])
    model.to(ctx.device)
    model.train()
    loss_module: nn.Module = LossModule(model)
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        loss_module = DistributedDataParallel(
            loss_module, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
            find_unused_parameters=config.train.find_unused_parameters)

    optim = config.optim
    optimizer = torch.optim.SGD(parameter_groups(model, optim.weight_decay, optim.decay_bias_and_norm),
                                lr=lr_at(0, optim), momentum=optim.momentum)
    use_scaler = effective_amp(ctx.device, config.train.amp) == "fp16"
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=use_scaler)
    start = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler") and use_scaler:
            scaler.load_state_dict(state["scaler"])
        start = int(state["iteration"])
        states = state.get("rng", [])
        if len(states) == ctx.world_size:
            set_rng_state(states[ctx.rank])
        else:
            echo(f"warning: checkpoint has RNG states of {len(states)} processes, this run has "
                 f"{ctx.world_size}; RNG reseeded (the trajectory will differ)")
            seed_everything(config.train.seed * 1000 + ctx.rank + 1 + start)
        echo(f"resumed from {resume_path} at iteration {start}")
    else:
        # Per-process stream for training-time randomness (e.g. ZCC shift jitter).
        seed_everything(config.train.seed * 1000 + ctx.rank + 1)

    run_info = {
        "schema": "facebench.hambox.run/1", "config_name": config.name, "config_source": config.source,
        "train_config": config.to_dict(), "model_config": model_config.to_dict(),
        "backbone_weights": str(weights) if weights is not None and state is None else
        (state or {}).get("backbone_weights"), "backbone_weights_sha256": weights_sha,
        "comparable": comparable, "label": label, "not_comparable_reasons": reasons,
        "world_size": ctx.world_size, "accumulation": accumulation,
        "global_batch": config.train.images_per_gpu * ctx.world_size * accumulation,
        "max_iters": max_iters, "device": str(ctx.device), "amp": effective_amp(ctx.device, config.train.amp),
        "nams_n": model_config.nams_n, "nams_mean_stage_one": nams_mean,
        "ground_truth": str(gt_file), "ground_truth_sha256": sha256_files([gt_file]), "images": str(image_root),
        "train_images": len(dataset), "git_commit": git_commit(), "torch": torch.__version__,
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if state is not None:
        run_info["resumed_from"] = str(resume_path)
        run_info["resumed_at_iteration"] = start
    log_path = out_dir / "train_log.jsonl"
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "run.json").write_text(json.dumps(_jsonable(run_info), indent=1) + "\n")
        if state is not None:
            truncate_log(log_path, start)
    echo(f"[{config.name}] {label}")
    echo(f"[{config.name}] {len(dataset)} images, {ctx.world_size} process(es) x {config.train.images_per_gpu} "
         f"images x {accumulation} micro-batches = {run_info['global_batch']} per step, device {ctx.device}, "
         f"amp {run_info['amp']}, iterations {start} -> {max_iters}")

    sampler = TrainBatchSampler(config.train.images_per_gpu, ctx.world_size, ctx.rank, accumulation,
                                start_iteration=start, max_iterations=max_iters)
    workers = config.num_workers if options.num_workers is None else options.num_workers
    loader = make_train_loader(dataset, sampler, num_workers=workers, pin_memory=ctx.device.type == "cuda")
    batches = iter(loader)

    writer = _tensorboard(out_dir / "tensorboard") if ctx.is_main else None
    records: list[dict[str, Any]] = []
    last_checkpoint: Path | None = None
    window_start = time.perf_counter()
    window_images = 0
    data_time = 0.0
    t = config.train
    if ctx.device.type == "cuda":
        torch.backends.cudnn.benchmark = t.cudnn_benchmark
        torch.cuda.reset_peak_memory_stats(ctx.device)
    done = start
    # The RNG state and batch-norm statistics when `done` iterations were complete: what a checkpoint at `done`
    # must hold (the except below). A forward of an unfinished iteration moves both.
    running_stats = [b for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                     for b in m.buffers(recurse=False)]
    done_rng = None if ctx.distributed else rng_state()
    done_stats = [] if ctx.distributed else [b.detach().clone() for b in running_stats]
    try:
        for iteration in range(start, max_iters):
            lr = lr_at(iteration, optim)
            for group in optimizer.param_groups:
                group["lr"] = lr
            log_now = (iteration + 1) % t.log_every == 0 or iteration == start or iteration + 1 == max_iters
            optimizer.zero_grad(set_to_none=True)
            parts_list, stats_list = [], []
            for micro in range(accumulation):
                fetch = time.perf_counter()
                batch = next(batches)
                raise_loader_error(batch)
                images = batch["images"].to(ctx.device, non_blocking=True)
                targets = [b.to(ctx.device, non_blocking=True) for b in batch["boxes"]]
                data_time += time.perf_counter() - fetch
                sync = loss_module.no_sync() if ctx.distributed and micro < accumulation - 1 \
                    else contextlib.nullcontext()
                with sync:
                    with _amp_context(ctx.device, t.amp):
                        total, parts, stats = loss_module(images, targets, log_now)
                    if not torch.isfinite(total.detach()).all():
                        raise RuntimeError(f"non-finite loss at iteration {iteration + 1} "
                                           f"(draws {batch['draws'].tolist()}): {({k: float(v) for k, v in parts.items()})}")
                    scaler.scale(total / accumulation).backward()
                parts_list.append({k: float(v) for k, v in parts.items()})
                if stats:
                    stats_list.append(stats)
                window_images += images.shape[0] * ctx.world_size
            if optim.grad_clip_norm:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip_norm)
            scaler.step(optimizer)
            scaler.update()
            done = iteration + 1
            if not ctx.distributed:
                done_rng = rng_state()
                done_stats = [b.detach().clone() for b in running_stats]

            if log_now:
                if ctx.device.type == "cuda":
                    torch.cuda.synchronize(ctx.device)
                elapsed = time.perf_counter() - window_start
                loss_parts = _reduce_mean(_mean_dict(parts_list), ctx)
                step_stats = _reduce_mean(_mean_dict(stats_list), ctx)
                record = {
                    "iteration": done, "lr": lr,
                    "loss": {k: v for k, v in loss_parts.items() if not k.startswith("num_")},
                    "normalisers": {k: v for k, v in loss_parts.items() if k.startswith("num_")},
                    "stats": step_stats, "images_per_s": window_images / max(elapsed, 1e-9),
                    "data_wait_s": data_time, "window_s": elapsed,
                    "epoch": done * run_info["global_batch"] / len(dataset),
                    "max_memory_mib": (torch.cuda.max_memory_allocated(ctx.device) / 2 ** 20
                                       if ctx.device.type == "cuda" else None),
                    "amp_scale": float(scaler.get_scale()) if use_scaler else None,
                    "comparable": comparable,
                    "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                }
                records.append(record)
                if ctx.is_main:
                    with open(log_path, "a") as handle:
                        handle.write(json.dumps(_jsonable(record)) + "\n")
                    mem = f" mem {record['max_memory_mib']:.0f}MiB" if record["max_memory_mib"] else ""
                    stat = ""
                    if step_stats:
                        stat = (f" | M {step_stats.get('mean_matches', float('nan')):.2f}"
                                f" comp {step_stats.get('num_compensated', float('nan')):.1f}"
                                f" F {step_stats.get('mean_compensated_quality', float('nan')):.3f}"
                                f" hq-unmatched {step_stats.get('high_quality_unmatched_fraction', float('nan')):.3f}")
                    terms = " ".join(f"{k} {v:.4f}" for k, v in record["loss"].items() if k != "total")
                    echo(f"it {done}/{max_iters} lr {lr:.5f} loss {record['loss'].get('total', float('nan')):.4f} "
                         f"({terms}){stat} | {record['images_per_s']:.3g} img/s data {data_time:.2f}s{mem}"
                         + ("" if comparable else f" [{NOT_COMPARABLE}]"))
                    if writer is not None:
                        for key, value in record["loss"].items():
                            writer.add_scalar(f"loss/{key}", value, done)
                        for key, value in step_stats.items():
                            writer.add_scalar(f"stats/{key}", value, done)
                        writer.add_scalar("lr", lr, done)
                        writer.add_scalar("images_per_s", record["images_per_s"], done)
                window_start, window_images, data_time = time.perf_counter(), 0, 0.0

            if done % t.checkpoint_every == 0 or done == max_iters:
                last_checkpoint = _save(out_dir, done, model, optimizer, scaler, use_scaler, config, model_config,
                                        run_info, ctx, t.keep_checkpoints)
    except (Exception, KeyboardInterrupt):
        # Bad input met mid-run (an unreadable image), a non-finite loss or Ctrl-C: keep the iterations done
        # since the last periodic checkpoint. A partial iteration changed no weights and its RNG draws are undone
        # by saving `done_rng`, so --resume follows the uninterrupted trajectory. Not with several processes:
        # the others may be mid-collective and a gather would hang.
        if done_rng is not None and done > start and (last_checkpoint is None
                                                      or not last_checkpoint.name.endswith(f"{done:07d}.pt")):
            try:
                with torch.no_grad():
                    for buffer, value in zip(running_stats, done_stats):
                        buffer.copy_(value)
                saved = _save(out_dir, done, model, optimizer, scaler, use_scaler, config, model_config, run_info,
                              ctx, t.keep_checkpoints, states=[done_rng])
                echo(f"[{config.name}] stopped after iteration {done}: saved {saved}; re-run with --resume to "
                     "continue")
            except Exception as exc:  # noqa: BLE001 - the original error is the one to report
                echo(f"warning: could not save a checkpoint at iteration {done}: {type(exc).__name__}: {exc}")
        raise
    finally:
        if writer is not None:
            writer.close()
        del batches
    if ctx.is_main:
        final = _export_model(out_dir, model, model_config, run_info)
        echo(f"[{config.name}] model for `facebench run hambox -o checkpoint={final}`")
    if ctx.owns_group:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return TrainResult(max_iters, out_dir, records, last_checkpoint, comparable, reasons)


def _save(out_dir: Path, iteration: int, model: nn.Module, optimizer, scaler, use_scaler: bool,
          config: TrainConfig, model_config, run_info: Mapping[str, Any], ctx: DistContext, keep: int,
          states: list[dict[str, Any]] | None = None) -> Path | None:
    """Gather every process's RNG state (or save `states`, one process); rank 0 writes the checkpoint."""
    if states is None and not ctx.distributed:
        states = [rng_state()]
    elif states is None:
        import torch.distributed as dist

        states = [None] * ctx.world_size
        dist.all_gather_object(states, rng_state())
    if not ctx.is_main:
        return None
    extra = {
        "format": CHECKPOINT_FORMAT, "iteration": iteration,
        "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict() if use_scaler else None,
        "schedule": {"lr_steps": list(config.optim.lr_steps), "lr_gamma": config.optim.lr_gamma,
                     "warmup_iters": config.optim.warmup_iters, "base_lr": config.optim.lr},
        "rng": states, "world_size": ctx.world_size, "train_config": config.to_dict(),
        "nams_n": model_config.nams_n, **_metadata(run_info),
    }
    return save_train_state(checkpoint_dir(out_dir) / f"ckpt_{iteration:07d}.pt", model, model_config,
                            _jsonable_payload(extra), keep)


def _metadata(run_info: Mapping[str, Any]) -> dict[str, Any]:
    return {"backbone_weights": run_info["backbone_weights"],
            "backbone_weights_sha256": run_info["backbone_weights_sha256"],
            "comparable": run_info["comparable"], "label": run_info["label"],
            "train_config_name": run_info["config_name"], "max_iters": run_info["max_iters"],
            "global_batch": run_info["global_batch"]}


def _jsonable_payload(value: Any) -> Any:
    """Tuples -> lists, so the payload holds only weights_only-loadable types."""
    if isinstance(value, dict):
        return {k: _jsonable_payload(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable_payload(v) for v in value]
    return value


def _export_model(out_dir: Path, model: nn.Module, model_config, run_info: Mapping[str, Any]) -> Path:
    """The trained detector without optimiser state, for `facebench run hambox -o checkpoint=PATH`."""
    from detectors.hambox.checkpoint import save_checkpoint

    path = out_dir / "model_final.pt"
    save_checkpoint(path, model, model_config, extra=_jsonable_payload(_metadata(run_info)))
    return path


def main_echo(message: str) -> None:
    """Console line, flushed (torchrun interleaves several processes' output)."""
    print(message, flush=True)
    sys.stdout.flush()
