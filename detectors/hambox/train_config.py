"""HAMBox training configs: a documented JSON schema, its loader and validator (one file per paper row).

Schema `facebench.hambox.train/1` (keys starting with "_" are comments and ignored):

    {
      "schema": "facebench.hambox.train/1",
      "name": "t1_baseline",                       # short id, used in output folders
      "description": "...",                        # free text
      "recipe": "paper" | "smoke",                 # "paper" refuses to start without backbone weights
      "paper_rows": [{"table": "1", "row": "Baseline",
                      "reported_val_ap": {"easy": 0.943, "medium": 0.931, "hard": 0.894}}],
      "model": {"preset": "baseline", ...},        # detectors.hambox.model.PRESETS name + HAMBoxConfig overrides
      "weights_preset": "torchvision" | "caffe",   # input normalisation bound to the backbone weights
      "data": {...},                               # detectors.hambox.data.AugmentConfig fields + "num_workers"
      "optim": {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-5, "decay_bias_and_norm": false,
                "lr_steps": [110000], "lr_gamma": 0.1, "warmup_iters": 500,
                "warmup_start_factor": 0.3333333333, "grad_clip_norm": null},
      "train": {"max_iters": 140000, "images_per_gpu": 7, "total_batch": 28, "amp": "fp16" | "bf16" | "off",
                "checkpoint_every": 5000, "keep_checkpoints": 3, "log_every": 20, "seed": 0,
                "nams_n_crops": 2000, "find_unused_parameters": false, "cudnn_benchmark": true}
    }

Every section and key is optional except "schema", "name" and "model"; missing keys take the defaults
above (the paper's recipe, spec §6). Unknown keys are errors naming the key and its line.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from detectors.hambox.config_types import config_type_problem
from facebench.errors import InputError, parse_json, read_input_text

if TYPE_CHECKING:
    from detectors.hambox.data import AugmentConfig
    from detectors.hambox.model import HAMBoxConfig

SCHEMA = "facebench.hambox.train/1"
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass(frozen=True)
class OptimConfig:
    """SGD with momentum, step schedule and linear warm-up (spec §6)."""

    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-5
    decay_bias_and_norm: bool = False  # PyramidBox convention: no decay on biases and norm parameters
    lr_steps: tuple[int, ...] = (110_000,)
    lr_gamma: float = 0.1
    warmup_iters: int = 500  # [choice] recorded deviation from the paper
    warmup_start_factor: float = 1.0 / 3.0
    grad_clip_norm: float | None = None


@dataclass(frozen=True)
class LoopConfig:
    """Iterations, batch layout, precision, checkpoint and log cadence."""

    max_iters: int = 140_000
    images_per_gpu: int = 7
    total_batch: int = 28  # kept on any GPU count by gradient accumulation
    amp: str = "fp16"  # CUDA; on CPU only "bf16" applies (autocast), fp16 runs in fp32
    checkpoint_every: int = 5000
    keep_checkpoints: int = 3  # iteration checkpoints kept besides the newest (0 = keep all)
    log_every: int = 20
    seed: int = 0
    nams_n_crops: int = 2000  # augmented crops used to measure NAMS N before training
    find_unused_parameters: bool = False
    cudnn_benchmark: bool = True  # CUDA only: crops have one fixed size, so cuDNN's autotuned kernels pay off


@dataclass(frozen=True)
class TrainConfig:
    """A validated training config (see the module docstring for the file schema)."""

    name: str
    model: dict[str, Any]
    description: str = ""
    recipe: str = "paper"
    paper_rows: tuple[dict[str, Any], ...] = ()
    weights_preset: str = "torchvision"
    data: dict[str, Any] = field(default_factory=dict)
    num_workers: int = 4
    optim: OptimConfig = OptimConfig()
    train: LoopConfig = LoopConfig()
    source: str | None = None

    def model_config(self) -> "HAMBoxConfig":
        """The HAMBoxConfig this run trains (preset + overrides + normalisation preset)."""
        from detectors.hambox.model import HAMBoxConfig, with_normalization

        values = dict(self.model)
        preset = values.pop("preset", None)
        base = HAMBoxConfig.preset(preset) if preset else HAMBoxConfig()
        merged = {**base.to_dict(), **values}
        return with_normalization(HAMBoxConfig.from_dict(merged), self.weights_preset)

    def augment_config(self) -> "AugmentConfig":
        """The data-augmentation settings."""
        from detectors.hambox.data import AugmentConfig

        return AugmentConfig.from_mapping(self.data)

    def to_dict(self) -> dict[str, Any]:
        """The config as a file would hold it (schema included)."""
        return {"schema": SCHEMA, "name": self.name, "description": self.description, "recipe": self.recipe,
                "paper_rows": [dict(r) for r in self.paper_rows], "model": dict(self.model),
                "weights_preset": self.weights_preset, "data": {**self.data, "num_workers": self.num_workers},
                "optim": _plain(dataclasses.asdict(self.optim)), "train": _plain(dataclasses.asdict(self.train))}

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with top-level fields changed."""
        return dataclasses.replace(self, **changes)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _line_of(text: str, key: str) -> int | None:
    """1-based line of the first `"key":` in a JSON text (for error messages)."""
    match = re.search(r'"' + re.escape(key) + r'"\s*:', text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _strip_comments(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_comments(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [_strip_comments(v) for v in value]
    return value


def _section(cls: type, values: Mapping[str, Any], section: str, fail) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            fail(key, f"unknown key '{section}.{key}' (known: {', '.join(sorted(names))})")
        default = names[key].default
        if isinstance(default, tuple):
            problem = config_type_problem(f"{section}.{key}", value, default, any_length=True)
            if not isinstance(value, list) or problem:
                fail(key, problem or f"'{section}.{key}' must be a list")
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                fail(key, f"'{section}.{key}' must be true or false")
        elif isinstance(default, (int, float)) and default is not None:
            if config_type_problem(key, value, 0.0) is not None:  # a finite number (an int past float range is not)
                fail(key, f"'{section}.{key}' must be a finite number, got {json.dumps(value)[:60]}")
            if isinstance(default, int) and not isinstance(default, bool) and not float(value).is_integer():
                fail(key, f"'{section}.{key}' must be an integer")
            value = type(default)(value)
        kwargs[key] = value
    return cls(**kwargs)


def parse_train_config(data: Mapping[str, Any], source: str | None = None, text: str = "") -> TrainConfig:
    """Validate a config mapping; errors are InputError naming the source, the key's line and the key."""

    def fail(key: str | None, message: str, fallback: str | None = None):
        line = _line_of(text, key) if key and text else None
        if line is None and fallback and text:
            line = _line_of(text, fallback)
        raise InputError(source, line, message)

    if not isinstance(data, Mapping):
        fail(None, "a training config must be a JSON object")
    data = _strip_comments(dict(data))
    known = {"schema", "name", "description", "recipe", "paper_rows", "model", "weights_preset", "data",
             "optim", "train"}
    for key in data:
        if key not in known:
            fail(key, f"unknown top-level key '{key}' (known: {', '.join(sorted(known))})")
    if data.get("schema") != SCHEMA:
        fail("schema", f"'schema' must be '{SCHEMA}'")
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
        fail("name", "'name' must be a short id (letters, digits, _ . -)")
    recipe = data.get("recipe", "paper")
    if recipe not in ("paper", "smoke"):
        fail("recipe", "'recipe' must be 'paper' or 'smoke'")
    weights_preset = data.get("weights_preset", "torchvision")
    if weights_preset not in ("torchvision", "caffe"):
        fail("weights_preset", "'weights_preset' must be 'torchvision' or 'caffe'")
    model = data.get("model")
    if not isinstance(model, Mapping):
        fail("model", "'model' must be an object (a preset name and HAMBoxConfig overrides)")
    if "preset" in model and not isinstance(model["preset"], str):
        fail("preset", f"'model.preset' must be a preset name (a string), got {json.dumps(model['preset'])}")
    for key in ("data", "optim", "train"):
        if key in data and not isinstance(data[key], Mapping):
            fail(key, f"'{key}' must be an object, got {json.dumps(data[key])[:40]}")
    data_section = dict(data.get("data", {}))
    num_workers = data_section.pop("num_workers", 4)
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        fail("num_workers", "'data.num_workers' must be an integer >= 0")
    rows = data.get("paper_rows", [])
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) and "table" in r and "row" in r for r in rows):
        fail("paper_rows", "'paper_rows' must be a list of {table, row, reported_val_ap}")
    optim = _section(OptimConfig, data.get("optim", {}), "optim", fail)
    train = _section(LoopConfig, data.get("train", {}), "train", fail)
    config = TrainConfig(name=name, model=dict(model), description=str(data.get("description", "")),
                         recipe=recipe, paper_rows=tuple(dict(r) for r in rows), weights_preset=weights_preset,
                         data=data_section, num_workers=num_workers, optim=optim, train=train, source=source)
    _check_values(config, fail)
    return config


def _check_values(config: TrainConfig, fail) -> None:
    """Range checks, and that the model and data sections build."""
    o, t = config.optim, config.train
    if o.lr <= 0 or not 0 <= o.momentum < 1 or o.weight_decay < 0 or not 0 < o.lr_gamma <= 1:
        fail("optim", "optim: lr > 0, 0 <= momentum < 1, weight_decay >= 0, 0 < lr_gamma <= 1 required")
    if list(o.lr_steps) != sorted(o.lr_steps) or any(s <= 0 for s in o.lr_steps):
        fail("lr_steps", "'optim.lr_steps' must be increasing positive iterations")
    if o.grad_clip_norm is not None and (isinstance(o.grad_clip_norm, bool)
                                         or not isinstance(o.grad_clip_norm, (int, float)) or o.grad_clip_norm <= 0):
        fail("grad_clip_norm", "'optim.grad_clip_norm' must be null or a positive number")
    if o.warmup_iters < 0 or not 0 < o.warmup_start_factor <= 1:
        fail("warmup_iters", "warm-up needs warmup_iters >= 0 and 0 < warmup_start_factor <= 1")
    if t.max_iters < 1 or t.images_per_gpu < 1 or t.total_batch < t.images_per_gpu:
        fail("train", "train: max_iters >= 1, images_per_gpu >= 1, total_batch >= images_per_gpu required")
    if t.total_batch % t.images_per_gpu:
        fail("total_batch", "'train.total_batch' must be a multiple of 'train.images_per_gpu'")
    if t.amp not in ("fp16", "bf16", "off"):
        fail("amp", "'train.amp' must be 'fp16', 'bf16' or 'off'")
    if t.seed < 0:
        fail("seed", "'train.seed' must be >= 0")
    if t.checkpoint_every < 1 or t.log_every < 1 or t.keep_checkpoints < 0 or t.nams_n_crops < 1:
        fail("train", "train: checkpoint_every, log_every, nams_n_crops >= 1 and keep_checkpoints >= 0 required")
    try:
        model = config.model_config()
    except (ValueError, TypeError) as exc:
        fail(_first_quoted(str(exc)) or "model", f"model: {exc}", "model")
    try:
        augment = config.augment_config()
    except (ValueError, TypeError) as exc:
        fail(_first_quoted(str(exc)) or "data", f"data: {exc}", "data")
    if model.matcher == "zcc" and model.zcc_shift_jitter > 0 and augment.shift_jitter > 0:
        # Two spellings of one ZCC step (the crop's {0..n-1}, the model's {0..n}): both on would jitter twice.
        fail("shift_jitter", f"'data.shift_jitter' ({augment.shift_jitter}) and the zcc model's 'zcc_shift_jitter' "
             f"({model.zcc_shift_jitter}) both jitter the faces: set one of them to 0")


def _first_quoted(message: str) -> str | None:
    match = re.search(r"'([A-Za-z0-9_]+)'", message)
    return match.group(1) if match else None


def load_train_config(path: str | Path) -> TrainConfig:
    """Read and validate a training config file; a bare name looks in detectors/hambox/configs/."""
    path = Path(path)
    if not path.exists() and not path.suffix and (CONFIG_DIR / f"{path}.json").is_file():
        path = CONFIG_DIR / f"{path}.json"
    if not path.exists():
        raise InputError(path, None, "training config not found "
                         f"(bundled configs: {', '.join(list_bundled_configs())})")
    text = read_input_text(path, "training config")
    return parse_train_config(parse_json(text, path), str(path), text)


def list_bundled_configs() -> list[str]:
    """Names of the configs shipped in detectors/hambox/configs/."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json") if p.stem != "index")
