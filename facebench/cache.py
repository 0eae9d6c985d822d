"""The on-disk cache of parsed ground truth and annotation rasters: $FACEBENCH_CACHE, else ~/.cache/facebench.

Entries are named by the sha256 of what they were computed from, so they never go stale; an empty
FACEBENCH_CACHE disables the cache, and a cache that cannot be read or written only costs speed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

CACHE_ENV = "FACEBENCH_CACHE"


def cache_dir() -> Path | None:
    """$FACEBENCH_CACHE (None when set but empty: caching off), else ~/.cache/facebench."""
    root = os.environ.get(CACHE_ENV)
    if root is not None and not root.strip():
        return None
    return Path(root) if root else Path.home() / ".cache" / "facebench"


def cache_file(name: str) -> Path | None:
    """The path of cache entry `name`, or None when caching is off."""
    root = cache_dir()
    return None if root is None else root / name


def load_arrays(path: Path | None) -> dict[str, np.ndarray] | None:
    """The arrays of a cache entry, or None when it is missing or unreadable."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except Exception:  # a damaged entry (bad zip, truncated member, ...) is recomputed, whatever its error
        return None


def save_arrays(path: Path | None, arrays: Mapping[str, np.ndarray]) -> None:
    """Write a cache entry atomically (a concurrent reader sees the old file or the whole new one)."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs speed


def encode_strings(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings as UTF-8 bytes plus offsets (NumPy's str arrays would drop trailing NUL characters)."""
    encoded = [v.encode("utf-8", errors="surrogatepass") for v in values]
    offsets = np.cumsum([0] + [len(e) for e in encoded], dtype=np.int64)
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets


def decode_strings(data: np.ndarray, offsets: np.ndarray) -> list[str]:
    """The inverse of encode_strings."""
    raw = data.tobytes()
    bounds = offsets.tolist()
    return [raw[a:b].decode("utf-8", errors="surrogatepass") for a, b in zip(bounds[:-1], bounds[1:])]
