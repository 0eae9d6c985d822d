"""The self-describing result JSON shared by every protocol: build, write, read."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from facebench import __version__
from facebench.errors import InputError, parse_json, read_input_text

SCHEMA = "facebench.result/1"
REQUIRED_FIELDS = ("schema", "benchmark", "protocol", "metrics", "ground_truth_sha256",
                   "facebench_version", "created", "settings")


def sha256_files(paths: Iterable[str | os.PathLike]) -> str:
    """sha256 over the bytes of several files, in the given order (name-independent)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def git_commit() -> str | None:
    """The facebench checkout's git commit, when it is a git checkout."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _jsonable(value: Any) -> Any:
    """Turn numpy scalars/arrays and NaN into plain JSON values (NaN/inf -> null)."""
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "fiub":
        # Curves: 1000-point arrays, converted whole rather than element by element.
        items = value.tolist()
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            items = [v if ok else None for v, ok in zip(items, np.isfinite(value).tolist())]
        return items
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if np.isfinite(value) else None
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value


def make_document(*, benchmark: str, protocol: str, protocol_version: str, settings: Mapping[str, Any],
                  metrics: Mapping[str, Any], ground_truth_sha256: str, curves: Mapping[str, Any] | None = None,
                  extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The common envelope: every result JSON of every protocol has these keys."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "benchmark": benchmark,
        "protocol": {"name": protocol, "version": protocol_version},
        "settings": dict(settings),
        "metrics": dict(metrics),
        "curves": dict(curves or {}),
        "ground_truth_sha256": ground_truth_sha256,
        "facebench_version": __version__,
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if extra:
        doc.update(extra)
    return _jsonable(doc)


def write_document(doc: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write a result JSON atomically (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(doc), indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def records_path(result_path: str | os.PathLike) -> Path:
    """X.json -> X.records.npz: where the per-image records of a result JSON live."""
    path = Path(result_path)
    stem = path.name[:-5] if path.name.endswith(".json") else path.name
    return path.with_name(stem + ".records.npz")


def read_document(path: str | os.PathLike) -> dict[str, Any]:
    """Read and minimally validate a result JSON (missing fields name the file and field)."""
    path = Path(path)
    text = read_input_text(path, "result file")
    doc = parse_json(text, path)
    if not isinstance(doc, dict):
        raise InputError(path, None, "a result file must hold a JSON object")
    for field in REQUIRED_FIELDS:
        if field not in doc:
            raise InputError(path, None, f"missing field '{field}' (not a facebench result?)")
    if doc["schema"] != SCHEMA:
        raise InputError(path, None, f"unknown schema '{doc['schema']}' (expected '{SCHEMA}')")
    if not isinstance(doc["metrics"], dict):
        raise InputError(path, None, "field 'metrics' must be an object")
    return doc
