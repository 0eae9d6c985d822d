"""Published WIDER FACE PR curves (`wider_pr_info_<method>_<setting>_val.mat`, as eval_tools ships them)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebench.errors import InputError
from facebench.io_mat import load_mat
from protocols.wider_face.curves import voc_ap

_NAME = re.compile(r"^wider_pr_info_(?P<method>.+)_(?P<setting>easy|medium|hard)_(?P<split>val|test)\.mat$")


@dataclass(frozen=True)
class PublishedCurve:
    """One method's published curve on one setting, AP recomputed with VOCap as wider_plot does."""

    method: str
    setting: str
    legend: str
    precision: np.ndarray
    recall: np.ndarray
    ap: float
    path: str


def _legend(value) -> str:
    if isinstance(value, str):
        return value
    flat = np.asarray(value).ravel()
    return str(flat[0]) if flat.size else ""


def read_published_curve(path: str | os.PathLike) -> PublishedCurve:
    """Read one pr_cruve file (1000 x 2: precision, recall)."""
    path = Path(path)
    match = _NAME.match(path.name)
    if not match:
        raise InputError(path, None, "not a wider_pr_info_<method>_<easy|medium|hard>_<val|test>.mat file")
    data = load_mat(path)
    curve = data.get("pr_cruve", data.get("pr_curve"))
    if curve is None:
        raise InputError(path, None, "no variable 'pr_cruve' (or 'pr_curve')")
    curve = np.asarray(curve)
    if curve.dtype.kind not in "iuf":
        raise InputError(path, None, f"pr_cruve must hold numbers, got {curve.dtype.name} values")
    curve = curve.astype(np.float64)
    if curve.ndim != 2 or 2 not in curve.shape:
        raise InputError(path, None, f"pr_cruve must be N x 2, got {curve.shape}")
    if curve.shape[1] != 2:
        curve = curve.T
    precision, recall = curve[:, 0], curve[:, 1]
    legend = _legend(data.get("legend_name", match["method"])) or match["method"]
    return PublishedCurve(method=path.parent.name or match["method"], setting=match["setting"], legend=legend,
                          precision=precision, recall=recall, ap=voc_ap(recall, precision), path=str(path))


def load_published_method(folder: str | os.PathLike, split: str = "val") -> dict[str, PublishedCurve]:
    """easy/medium/hard curves of one method folder (the current-eval_tools files when both exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, None, "published-curve folder not found")
    found: dict[str, PublishedCurve] = {}
    for path in sorted(folder.glob(f"wider_pr_info_*_{split}.mat"), key=lambda p: (p.name.lower() != p.name, p.name)):
        curve = read_published_curve(path)
        found.setdefault(curve.setting, curve)  # lower-case (current eval_tools) names sort first
    if not found:
        raise InputError(folder, None, f"no wider_pr_info_*_{split}.mat files in it")
    return found


def list_published_methods(root: str | os.PathLike) -> list[Path]:
    """Method folders under a baselines tree (e.g. .../official_pr_curves/Val/setting_int)."""
    root = Path(root)
    return sorted(p for p in root.iterdir() if p.is_dir() and any(p.glob("wider_pr_info_*.mat")))
