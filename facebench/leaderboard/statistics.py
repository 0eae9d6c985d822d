"""Leaderboard statistics: 95% bootstrap intervals per row and tie ranks by paired bootstrap within a table."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from facebench.errors import InputError
from facebench.leaderboard.rows import Row


class _MemoisedRecords:
    """Records whose resampled metrics are computed once per weight matrix (intervals and ranking share them)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.protocol = inner.protocol
        self.image_ids = inner.image_ids
        self._cache: dict[tuple, dict] = {}

    def point_estimates(self) -> dict[str, float | None]:
        """The wrapped records' point estimates."""
        return self.inner.point_estimates()

    def resampled(self, weights: Any) -> dict:
        """The wrapped records' resampled metrics, computed once per distinct weight matrix."""
        import numpy as np

        weights = np.ascontiguousarray(weights)
        key = (weights.shape, str(weights.dtype), hashlib.sha1(weights.view(np.uint8)).hexdigest())
        if key not in self._cache:
            self._cache[key] = self.inner.resampled(weights)
        return self._cache[key]


def stored_intervals(doc: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """The `ci95` block a result JSON carries (`facebench eval --ci`): metric -> (low, high), valid pairs only."""
    block = doc.get("ci95")
    if not isinstance(block, Mapping):
        return {}
    out = {}
    for metric, pair in block.items():
        if isinstance(pair, (list, tuple)) and len(pair) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pair):
            out[str(metric)] = (float(pair[0]), float(pair[1]))
    return out


class ResultStatistics:
    """Per-file records and bootstrap intervals, each loaded or computed once per leaderboard build."""

    def __init__(self, resamples: int | None = None, seed: int | None = None) -> None:
        from facebench.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED

        self.resamples = DEFAULT_RESAMPLES if resamples is None else int(resamples)
        self.seed = DEFAULT_SEED if seed is None else int(seed)
        self.warnings: list[str] = []
        self._records: dict[Path, Any] = {}
        self._computed: dict[Path, dict[str, tuple[float, float]]] = {}

    @staticmethod
    def records_file(result_path: str | os.PathLike) -> Path:
        """X.json -> X.records.npz."""
        from facebench.results import records_path

        return records_path(result_path)

    def has_records(self, result_path: str | os.PathLike) -> bool:
        """True when the result has a records file beside it."""
        return self.records_file(result_path).is_file()

    def records(self, result: Any) -> Any | None:
        """The (memoised) bootstrap records of a StoredResult; None, with a warning, when they cannot be used."""
        from facebench.bootstrap import load_records

        path = Path(result.path).resolve()
        if path not in self._records:
            try:
                self._records[path] = _MemoisedRecords(load_records(result.path, result.doc))
            except InputError as exc:
                self.warnings.append(f"{result.path}: per-image records not used ({exc.message})")
                self._records[path] = None
        return self._records[path]

    def computed_intervals(self, result: Any) -> dict[str, tuple[float, float]]:
        """Bootstrap intervals of every headline metric the records give (empty when they cannot be used)."""
        from facebench.bootstrap import bootstrap

        path = Path(result.path).resolve()
        if path not in self._computed:
            records = self.records(result)
            found = {} if records is None else bootstrap(records, self.resamples, self.seed).intervals()
            self._computed[path] = {k: v for k, v in found.items() if v is not None}
        return self._computed[path]

    def intervals(self, result: Any, metrics: Sequence[str]) -> dict[str, tuple[float, float]]:
        """metric -> 95% interval: the JSON's own `ci95` where it has one, else computed from the records."""
        out = {k: v for k, v in stored_intervals(result.doc).items() if k in metrics}
        if any(m not in out for m in metrics) and self.has_records(result.path):
            computed = self.computed_intervals(result)
            out.update({m: computed[m] for m in metrics if m not in out and m in computed})
        return {m: out[m] for m in metrics if m in out}


def comparison_key(doc: Mapping[str, Any]) -> str:
    """What results must share to be compared by paired bootstrap (facebench.compare.check_comparable)."""
    from facebench.compare import INPUT_SETTINGS

    protocol = doc.get("protocol") or {}
    settings = {k: v for k, v in (doc.get("settings") or {}).items() if k not in INPUT_SETTINGS}
    return json.dumps([doc.get("benchmark"), protocol.get("name"), protocol.get("version"),
                       doc.get("ground_truth_sha256"), settings], sort_keys=True, default=str)


def statistical_ranks(rows: Sequence[Row], sort_key: str, stats: ResultStatistics) -> tuple[str, ...]:
    """Shown ranks of sorted rows: position, except that rows of one comparison group that the paired bootstrap
    finds tied on `sort_key` share the position of the best of them, marked "=" (e.g. "=2")."""
    from facebench.compare import ranked_with_ties

    ranks = [str(i + 1) for i in range(len(rows))]
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        if row.has_records and row.origin is not None and row.value(sort_key) is not None:
            groups.setdefault(comparison_key(row.origin.doc), []).append(i)
    for members in groups.values():
        usable = [i for i in members if stats.records(rows[i].origin) is not None]
        if len(usable) < 2:
            continue
        try:
            entries = ranked_with_ties([stats.records(rows[i].origin) for i in usable], sort_key,
                                       stats.resamples, stats.seed)
        except InputError as exc:
            stats.warnings.append(f"{rows[usable[0]].benchmark}: no tie ranking for "
                                  f"{', '.join(rows[i].name for i in usable)} ({exc.message})")
            continue
        classes: dict[int, list[int]] = {}
        for entry in entries:
            if entry.value is not None:
                classes.setdefault(entry.rank, []).append(usable[entry.index])
        for tied in classes.values():
            if len(tied) > 1:
                for i in tied:
                    ranks[i] = f"={min(tied) + 1}"
    return tuple(ranks)


def with_statistics(rows: Iterable[Row], metrics: Sequence[str], stats: ResultStatistics) -> list[Row]:
    """Rows of stored results with their intervals and whether records are beside them."""
    out = []
    for row in rows:
        if row.kind == "published" or row.origin is None or not hasattr(row.origin, "doc"):
            out.append(row)
            continue
        has_records = stats.has_records(row.origin.path)
        intervals = stats.intervals(row.origin, metrics)
        out.append(replace(row, intervals=intervals, has_records=has_records))
    return out
