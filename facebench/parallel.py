"""Split index ranges over forked worker processes (both cores of a small machine), serial when not worth it."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

_TASK: Callable[[int, int], Any] | None = None


def worker_count() -> int:
    """Workers to use: $FACEBENCH_WORKERS, else the CPUs this process may run on (at most 8)."""
    env = os.environ.get("FACEBENCH_WORKERS")
    if env:
        if not env.strip().isdigit():
            from facebench.errors import InputError

            raise InputError(None, None, f"FACEBENCH_WORKERS must be a positive integer, got {env!r}")
        return max(1, int(env))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def _run(bounds: tuple[int, int]) -> Any:
    assert _TASK is not None
    return _TASK(*bounds)


def map_ranges(task: Callable[[int, int], Any], n_items: int, min_items: int = 1,
               threads: bool = False, chunk_items: int | None = None) -> list[Any]:
    """task(start, stop) over contiguous chunks of range(n_items), in order; forked workers share memory.

    Fork (not spawn) so the task may read large arrays of the parent without pickling them; used only on
    Linux and when each worker gets at least `min_items` items. threads=True runs the chunks on threads
    instead, for tasks whose heavy part releases the GIL (no fork, no result pickling). chunk_items splits
    the work into chunks of about that many items even on one worker: cache-sized pieces run faster.
    """
    global _TASK
    workers = min(worker_count(), max(1, n_items // max(1, min_items)))
    parallel = workers > 1 and (threads or sys.platform.startswith("linux"))
    n_chunks = workers if parallel else 1
    if chunk_items:
        n_chunks = max(n_chunks, -(-n_items // chunk_items))
    edges = [round(k * n_items / n_chunks) for k in range(n_chunks + 1)]
    chunks = [(edges[k], edges[k + 1]) for k in range(n_chunks)]
    if not parallel:
        return [task(start, stop) for start, stop in chunks]
    if threads:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda bounds: task(*bounds), chunks))
    import multiprocessing

    _TASK = task
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return pool.map(_run, chunks)
    finally:
        _TASK = None
