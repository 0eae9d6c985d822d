"""Split index ranges over forked worker processes (both cores of a small machine), serial when not worth it."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Sequence

_TASK: Callable[[int, int], Any] | None = None


def worker_count() -> int:
    """Workers to use: $FACEBENCH_WORKERS, else the CPUs this process may run on (at most 8)."""
    env = os.environ.get("FACEBENCH_WORKERS")
    if env:
        return max(1, int(env))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def _run(bounds: tuple[int, int]) -> Any:
    assert _TASK is not None
    return _TASK(*bounds)


def map_ranges(task: Callable[[int, int], Any], n_items: int, min_items: int = 1) -> list[Any]:
    """task(start, stop) over contiguous chunks of range(n_items), in order; forked workers share memory.

    Fork (not spawn) so the task may read large arrays of the parent without pickling them; used only on
    Linux and when each worker gets at least `min_items` items.
    """
    global _TASK
    workers = min(worker_count(), max(1, n_items // max(1, min_items)))
    if workers <= 1 or not sys.platform.startswith("linux"):
        return [task(0, n_items)]
    import multiprocessing

    edges = [round(k * n_items / workers) for k in range(workers + 1)]
    chunks = [(edges[k], edges[k + 1]) for k in range(workers)]
    _TASK = task
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return pool.map(_run, chunks)
    finally:
        _TASK = None
