"""HAMBox checkpoint files: the model weights plus everything needed to rebuild and feed the model.

Format (one `torch.save` file, written atomically; readable with `torch.load(weights_only=True)`
as long as `extra` holds only tensors and plain Python values):

    {
      "format": "facebench.hambox.checkpoint",
      "version": 1,
      "config": HAMBoxConfig.to_dict(),      # every switch, incl. matcher, nams_n, anchors
      "normalization": {                     # copy of the config's input normalisation
          "input_channel_order": "RGB", "input_scale": 1/255,
          "input_mean": [...], "input_std": [...]},
      "state_dict": {name: tensor (CPU)},    # HAMBox.state_dict()
      "extra": {...},                        # caller's data: iteration, optimiser, RNG, weights hash
    }

Public API:
- `save_checkpoint(path, model, config=None, extra=None) -> str` (sha256 of the written file);
  `config` defaults to `model.config` (a HAMBoxConfig or its dict).
- `load_checkpoint(path, weights_only=True) -> Checkpoint` (config, state_dict, normalization,
  extra, sha256, path); bad files raise `facebench.errors.InputError` (one line).
- `check_state_dict(model, state_dict, path=None)`: InputError naming the first missing,
  unexpected or wrongly shaped key.
- `build_model(checkpoint, device="cpu") -> HAMBox` (eval mode, weights loaded strictly).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from facebench.errors import InputError

FORMAT = "facebench.hambox.checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint."""

    path: str
    config: Any  # HAMBoxConfig
    state_dict: dict[str, Tensor]
    normalization: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: Any = None,
                    extra: Mapping[str, Any] | None = None) -> str:
    """Write model weights + config + normalisation (+ extra) to `path`; returns the file's sha256."""
    from detectors.hambox.model import HAMBoxConfig

    if config is None:
        config = getattr(model, "config")
    if isinstance(config, Mapping):
        config = HAMBoxConfig.from_dict(config)
    target = getattr(model, "module", model)  # unwrap DistributedDataParallel
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "normalization": {k: list(v) if isinstance(v, tuple) else v for k, v in config.normalization().items()},
        "state_dict": {k: v.detach().cpu().clone() for k, v in target.state_dict().items()},
        "extra": dict(extra or {}),
    }
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".hambox-", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return file_sha256(path)


def load_checkpoint(path: str | os.PathLike, weights_only: bool = True) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`; InputError for a missing or malformed file."""
    from detectors.hambox.model import HAMBoxConfig

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(path, None, "checkpoint file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as exc:  # torch raises many unrelated types for unreadable files
        from detectors.hambox.torch_files import load_failure

        raise InputError(path, None, f"cannot read checkpoint ({load_failure(path, exc)})") from None
    if not isinstance(payload, Mapping) or payload.get("format") != FORMAT:
        raise InputError(path, None, f"not a HAMBox checkpoint (expected format '{FORMAT}')")
    version = payload.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError(path, None, f"checkpoint version must be an integer, got {version!r}")
    if version > VERSION:
        raise InputError(path, None, f"checkpoint version {payload.get('version')} is newer than supported ({VERSION})")
    for key in ("config", "state_dict"):
        if not isinstance(payload.get(key), Mapping):
            raise InputError(path, None, f"checkpoint lacks '{key}'")
    for key in ("normalization", "extra"):
        if payload.get(key) is not None and not isinstance(payload[key], Mapping):
            raise InputError(path, None, f"checkpoint '{key}' must be a mapping, got {type(payload[key]).__name__}")
    try:
        config = HAMBoxConfig.from_dict(payload["config"])
    except (TypeError, ValueError) as exc:
        raise InputError(path, None, f"bad checkpoint config: {exc}") from None
    return Checkpoint(path=path, config=config, state_dict=dict(payload["state_dict"]),
                      normalization=dict(payload.get("normalization") or config.normalization()),
                      extra=dict(payload.get("extra") or {}), sha256=file_sha256(path))


def check_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor], path: str | None = None) -> None:
    """Raise InputError naming the first key that is missing, wrongly shaped or unexpected."""
    expected = model.state_dict()
    for key, value in expected.items():
        if key not in state_dict:
            raise InputError(path, None, f"state dict mismatch: missing key '{key}'")
        got = state_dict[key]
        if not isinstance(got, Tensor) or tuple(got.shape) != tuple(value.shape):
            shape = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
            raise InputError(path, None, f"state dict mismatch: key '{key}' has shape {shape}, model expects {tuple(value.shape)}")
        if got.is_floating_point() != value.is_floating_point() or got.is_complex():
            raise InputError(path, None, f"state dict mismatch: key '{key}' has dtype {got.dtype}, model expects "
                                         f"{value.dtype}")
        # A diverged run saves NaN weights; they would score 0 AP without a word.
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            raise InputError(path, None, f"key '{key}' holds NaN or infinite weights (did the training diverge?)")
    for key in state_dict:
        if key not in expected:
            raise InputError(path, None, f"state dict mismatch: unexpected key '{key}'")


def build_model(checkpoint: Checkpoint, device: str | torch.device = "cpu") -> nn.Module:
    """The HAMBox of a checkpoint, weights loaded strictly, in eval mode on `device`."""
    from detectors.hambox.model import HAMBox

    model = HAMBox(checkpoint.config)
    check_state_dict(model, checkpoint.state_dict, checkpoint.path)
    model.load_state_dict(checkpoint.state_dict, strict=True)
    return model.to(device).eval()
