"""The leaderboard: one row per detector per benchmark, from the results store plus published reference rows.

Sections per benchmark (WIDER easy/medium/hard AP, FDDB discrete/continuous TPR at 1000 FP, AFW AP, PASCAL AP),
each sorted by its headline metric, with ms/image for runs that were timed. Rows are `run` (made by
`facebench run`), `evaluated` (third-party prediction files scored by facebench) or `published` (published
curves or baseline files: "published, not run"). Rendered as Markdown, CSV or a static HTML page that shows the
tables and the PR/ROC overlay figures (embedded as data URIs, or as PNG files beside the page).

Results with per-image records beside them (X.records.npz next to X.json) show the 95% bootstrap interval of
each headline metric, and results of one comparison group (same benchmark, ground truth, protocol and scoring
settings) are ranked by paired bootstrap on the sort metric: rows sharing a rank "=k" are statistically tied.
Other rows (published, or results without records) keep their plain position rank.

Results on different ground truth are never ranked in one table: each benchmark has one table per ground truth
(ground_truth_sha256). The main table is the one on the ground truth its published reference rows are scored on
(when they record it: the AFW/PASCAL baselines); otherwise, among the results' ground truths, the one covering
the most images (counts.images), then the newest `ground_truth_version`, then the one most entries use. WIDER's
official curves and FDDB's ROC files record no ground truth and belong to the main table. Every other ground
truth gets its own table, titled with its short sha256 and image count and ranked only among itself, plus a
warning. Evaluated results are one entry per name and scored predictions (store.StoredResult.entry_id): two
prediction folders of one name are two rows, told apart by the nearest path component in which they differ.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import hashlib
import html
import io
import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from facebench.errors import InputError
from facebench.store import StoredResult, differing_fields, group, split_entries

FAMILY_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "wider": (("easy", "Easy"), ("medium", "Medium"), ("hard", "Hard")),
    "fddb": (("disc_tpr_at_1000fp", "Disc TPR@1000FP"), ("cont_tpr_at_1000fp", "Cont TPR@1000FP")),
    "face-eval": (("ap", "AP"),),
}
DEFAULT_SORT = {"wider": "hard", "fddb": "disc_tpr_at_1000fp", "face-eval": "ap"}
BENCHMARK_ORDER = ("widerface-val", "fddb", "afw", "pascal")
BENCHMARK_TITLES = {"widerface-val": "WIDER FACE val", "fddb": "FDDB", "afw": "AFW", "pascal": "PASCAL Face",
                    "sample": "Embedded sample (WIDER FACE format)"}
SECTION_NOTES = {
    "wider": "AP (%) on the official easy / medium / hard settings (VOCap on the 1000-threshold PR curve).",
    "fddb": "True positive rate (%) at 1000 false positives (max over ROC points with FP <= 1000), all 10 folds.",
    "face-eval": "AP (%) with the face-eval protocol (Mathias et al. 2014 annotations, 5-iteration box correction).",
}
PUBLISHED_SOURCES = {"wider": "official PR curve", "fddb": "published ROC file",
                     "face-eval": "baseline file, scored by face-eval"}
KIND_LABELS = {"run": "run", "evaluated": "evaluated (prediction files)", "published": "published, not run"}
CSV_METRICS = ("easy", "medium", "hard", "disc_tpr_at_1000fp", "cont_tpr_at_1000fp", "ap")


@dataclass(frozen=True, eq=False)
class Row:
    """One leaderboard line: a detector (or published method) on one benchmark."""

    benchmark: str
    family: str
    name: str
    kind: str  # run | evaluated | published
    values: dict[str, float | None]
    ms_per_image: float | None = None
    protocol: str = ""
    convention: str = ""
    ground_truth_sha256: str | None = None
    runs: int = 1
    created: str | None = None
    source: str = ""
    note: str = ""
    origin: Any = field(default=None, repr=False)  # StoredResult or PublishedReference (for figures)
    intervals: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # metric -> 95% interval
    has_records: bool = False  # per-image records beside the result: bootstrap intervals and tie ranks apply
    images: int | None = None  # images the result was scored on (counts.images), when recorded
    ground_truth_version: str | None = None  # settings.ground_truth_version (WIDER: 2016 / 2017), when recorded

    def value(self, key: str) -> float | None:
        v = self.values.get(key)
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def interval(self, key: str) -> tuple[float, float] | None:
        """The 95% interval of a metric (fractions), or None."""
        return self.intervals.get(key)


@dataclass(frozen=True, eq=False)
class Section:
    """One benchmark's table: sorted rows and the columns to show."""

    benchmark: str
    family: str
    columns: tuple[tuple[str, str], ...]
    sort_key: str
    rows: tuple[Row, ...]
    ranks: tuple[str, ...] = ()  # shown rank per row: "3", or "=2" when statistically tied (default: position)
    ground_truth_sha256: str | None = None  # the ground truth of every result row (None: only published rows)
    main: bool = True  # the benchmark's main table (False: results on another ground truth)
    split: bool = False  # the benchmark has tables on several ground truths
    images: int | None = None  # images of this ground truth, when the results record it
    main_ground_truth_sha256: str | None = None  # the main table's ground truth (for a table that is not main)

    @property
    def key(self) -> str:
        """Unique id of the table: the benchmark for the main one, `<benchmark>__gt-<sha8>` for the others."""
        return self.benchmark if self.main else f"{self.benchmark}__gt-{(self.ground_truth_sha256 or '')[:8]}"

    def rank(self, index: int) -> str:
        """The rank shown for rows[index]."""
        return self.ranks[index] if self.ranks else str(index + 1)

    def tied(self, index: int) -> bool:
        """True when rows[index] shares its rank with a statistically tied row."""
        return self.rank(index).startswith("=")

    @property
    def has_statistics(self) -> bool:
        """True when some row shows an interval or a tied rank."""
        return any(r.intervals for r in self.rows) or any(self.tied(i) for i in range(len(self.rows)))


@dataclass(frozen=True, eq=False)
class Leaderboard:
    """All sections plus the warnings raised while building them (e.g. runs kept apart)."""

    sections: tuple[Section, ...]
    warnings: tuple[str, ...] = ()
    resamples: int | None = None  # bootstrap resamples of the intervals computed and of the tie ranking


def _other_columns(rows: Sequence[Row]) -> tuple[tuple[str, str], ...]:
    keys: list[str] = []
    for row in rows:
        for key, value in row.values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in keys:
                keys.append(key)
    return tuple((k, k) for k in keys[:4])


# Differences that make two results of one detector incomparable (a convention difference, e.g. official vs
# python-port semantics, is a deliberate choice shown in the Protocol column; a ground-truth difference puts the
# results in different tables, with a warning of its own).
_SERIOUS = ("protocol (protocol.name)", "protocol version (protocol.version)")
CONVENTION_DISPLAY = {"wider": ("semantics",), "face-eval": ("annotation_style",), "fddb": ("ellipse_convention",)}


def short_convention(family: str, settings: dict, full: str) -> str:
    """The convention as shown in tables: the one setting that usually differs (the full string otherwise)."""
    keys = CONVENTION_DISPLAY.get(family)
    if not keys:
        return full
    return " ".join(str(settings[k]) for k in keys if k in settings)


def source_tags(sources: Sequence[str | None]) -> list[str]:
    """Short tags telling prediction sources of one name apart: the nearest path component in which their
    paths differ (`e1`, `e2` for e1/mymodel/widerface_txt and e2/mymodel/widerface_txt), else a short digest
    ("" for no source, or for the only one)."""
    named = [s for s in dict.fromkeys(sources) if s is not None]
    tags: dict[str | None, str] = {None: ""}
    paths = {s: Path(s.split(", ")[0]).parts[::-1] for s in named if not s.startswith("sha256:")}
    if len(named) > 1 and len(paths) == len(named):
        for depth in range(max(len(p) for p in paths.values())):
            parts = [p[depth] if depth < len(p) else "" for p in paths.values()]
            if len(set(parts)) > 1:
                if len(set(parts)) == len(parts) and all(parts):
                    tags.update(zip(paths, parts))
                break
    for source in named:
        if source not in tags:
            if len(named) == 1 and None not in sources:
                tags[source] = ""
            else:
                digest = source[7:] if source.startswith("sha256:") else hashlib.sha256(source.encode()).hexdigest()
                tags[source] = digest[:8]
    return [tags[s] for s in sources]


def _name_tags(groups: Mapping[Any, list[StoredResult]]) -> dict[str, str]:
    """entry id -> the tag its row name gets when several entries of one benchmark share a name ("" if none)."""
    by_name: dict[tuple[str, str], dict[str, StoredResult]] = {}
    for key, runs in groups.items():
        by_name.setdefault((runs[-1].detector_name, key.benchmark), {})[key.detector] = runs[-1]
    tags: dict[str, str] = {}
    for members in by_name.values():
        if len(members) < 2:
            continue
        evaluated = [entry for entry, r in members.items() if r.kind != "run"]
        for entry, tag in zip(evaluated, source_tags([members[e].prediction_source for e in evaluated])):
            tags[entry] = tag
        for entry, latest in members.items():
            if latest.kind == "run":  # one name, several configurations / weights
                det = latest.doc.get("detector", {})
                tags[entry] = (det.get("config_hash") or det.get("weights_sha256") or "")[:8]
    return tags


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def rows_from_results(results: Iterable[StoredResult]) -> tuple[list[Row], list[str]]:
    """One row per (entry, benchmark, ground truth, protocol) group: its latest run; and warnings. An entry is
    a run's detector or an evaluated result's name plus scored predictions; names shared by several entries of
    one benchmark get a tag (config hash, or the distinguishing part of the predictions path)."""
    groups = group(results)
    warnings = []
    entries = split_entries(groups)
    tags = _name_tags(groups)
    rows = []
    for key, runs in groups.items():
        latest = runs[-1]
        siblings = entries[(key.detector, key.benchmark)]
        note = ""
        fields = [f for f in differing_fields(siblings) if f in _SERIOUS]
        if fields:
            note = "kept apart from its other results: different " + ", ".join(fields)
        provenance = latest.doc.get("detector", {}).get("provenance") or {}
        if provenance.get("comparable") is False:  # e.g. a HAMBox trained --from-scratch or for fewer iterations
            note = "; ".join(filter(None, [note, str(provenance.get("label") or "not comparable")]))
        name = latest.detector_name
        tag = tags.get(key.detector, "")
        name = f"{name} [{tag}]" if tag else name
        settings = latest.doc.get("settings", {})
        convention = short_convention(latest.family, settings, key.convention)
        counts = latest.doc.get("counts")
        version = settings.get("ground_truth_version")
        rows.append(Row(
            benchmark=key.benchmark, family=latest.family, name=name, kind=latest.kind,
            values=dict(latest.metrics), ms_per_image=latest.ms_per_image,
            protocol=f"{key.protocol}/{key.protocol_version}", convention=str(convention),
            ground_truth_sha256=key.ground_truth_sha256, runs=len(runs), created=latest.created,
            source=str(latest.path), note=note, origin=latest,
            images=_count(counts.get("images")) if isinstance(counts, Mapping) else None,
            ground_truth_version=None if version is None else str(version)))
    for (detector, benchmark), keys in entries.items():
        serious = [f for f in differing_fields(keys) if f in _SERIOUS]
        if serious:
            shown = groups[keys[0]][-1].detector_name
            warnings.append(f"{shown} on {benchmark}: results with different {' and '.join(serious)}; "
                            "not merged, listed as separate rows")
    return rows, warnings


def rows_from_references(references: Iterable[Any]) -> list[Row]:
    """Rows of published references (facebench.published.PublishedReference)."""
    rows = []
    for ref in references:
        rows.append(Row(benchmark=ref.benchmark, family=ref.family, name=ref.method, kind="published",
                        values=dict(ref.metrics), protocol=PUBLISHED_SOURCES.get(ref.family, "published"),
                        convention="",
                        ground_truth_sha256=ref.extra.get("ground_truth_sha256"), runs=0, source=ref.source,
                        note=ref.note, origin=ref))
    return rows


def _common_images(rows: Iterable[Row]) -> int | None:
    """The image count most of the rows record (None when none does)."""
    counts = [r.images for r in rows if r.images is not None]
    return max(set(counts), key=lambda n: (counts.count(n), n)) if counts else None


def main_ground_truth(rows: Sequence[Row]) -> str | None:
    """The ground truth of a benchmark's main table: the one most published rows that record one are scored on;
    else, among the results', the one covering the most images, then the newest ground_truth_version, then the
    one most entries use (then sha256 order); None when no row records a ground truth."""
    published = [r.ground_truth_sha256 for r in rows if r.kind == "published" and r.ground_truth_sha256]
    if published:
        return max(sorted(set(published)), key=published.count)
    by_gt: dict[str, list[Row]] = {}
    for row in rows:
        if row.ground_truth_sha256:
            by_gt.setdefault(row.ground_truth_sha256, []).append(row)
    if not by_gt:
        return None

    def strength(gt: str) -> tuple:
        members = by_gt[gt]
        versions = [r.ground_truth_version for r in members if r.ground_truth_version]
        return (_common_images(members) or -1, max(versions, default=""), len(members))

    return max(sorted(by_gt), key=strength)


def split_by_ground_truth(rows: Sequence[Row]) -> list[tuple[str | None, list[Row]]]:
    """A benchmark's rows as (ground truth, rows) tables: the main one first (with the published rows that record
    no ground truth; never empty for non-empty rows), then the others by image count, then size."""
    main = main_ground_truth(rows)
    tables: dict[str | None, list[Row]] = {main: []}
    for row in rows:
        gt = row.ground_truth_sha256
        tables.setdefault(main if gt is None or gt == main else gt, []).append(row)
    others = sorted((gt for gt in tables if gt != main),
                    key=lambda gt: (-(_common_images(tables[gt]) or -1), -len(tables[gt]), gt))
    return [(main, tables[main])] + [(gt, tables[gt]) for gt in others]


def _gt_label(sha: str | None, images: int | None) -> str:
    """e.g. "d4b5be5a (3,226 images)"."""
    text = (sha or "unknown")[:8]
    return f"{text} ({images:,} images)" if images is not None else text


def _sort_rows(rows: Iterable[Row], key: str) -> tuple[Row, ...]:
    def order(row: Row):
        value = row.value(key)
        return (value is None, -(value or 0.0), row.kind == "published", row.name.lower())

    return tuple(sorted(rows, key=order))


# ------------------------------------------------------------------------------------------------ statistics


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


def build_leaderboard(results: Iterable[StoredResult], references: Iterable[Any] = (),
                      sort: str | None = None, benchmarks: Sequence[str] | None = None, *,
                      ci: bool | None = None, resamples: int | None = None, seed: int | None = None) -> Leaderboard:
    """Sections per benchmark (known ones first) and ground truth (main one first, see main_ground_truth), rows
    sorted by the headline metric (or `sort`); a warning for each table on another ground truth.

    ci: None (default) = intervals and tie ranks for results with records beside them (or a stored `ci95`);
    False = none; True = as None, with a warning when no result has records.
    """
    if benchmarks:
        results = [r for r in results if r.benchmark in benchmarks]
        references = [r for r in references if r.benchmark in benchmarks]
    results = list(results)
    rows, warnings = rows_from_results(results)
    rows += rows_from_references(references)
    stats = ResultStatistics(resamples, seed) if ci is not False else None
    by_benchmark: dict[str, list[Row]] = {}
    for row in rows:
        by_benchmark.setdefault(row.benchmark, []).append(row)
    ordered = [b for b in BENCHMARK_ORDER if b in by_benchmark] + sorted(b for b in by_benchmark
                                                                         if b not in BENCHMARK_ORDER)
    sections = []
    for benchmark in ordered:
        items = by_benchmark[benchmark]
        family = items[0].family
        columns = FAMILY_COLUMNS.get(family) or _other_columns(items)
        keys = [c[0] for c in columns]
        sort_key = sort if sort in keys else DEFAULT_SORT.get(family, keys[0] if keys else "")
        tables = split_by_ground_truth(items)
        main_gt, main_images = tables[0][0], _common_images(tables[0][1])
        for index, (gt, members) in enumerate(tables):
            is_main = index == 0
            if stats is not None:
                members = with_statistics(members, keys, stats)
            sorted_rows = _sort_rows(members, sort_key)
            ranks = statistical_ranks(sorted_rows, sort_key, stats) if stats is not None else ()
            images = _common_images(members)
            sections.append(Section(benchmark, family, columns, sort_key, sorted_rows, ranks,
                                    ground_truth_sha256=gt, main=is_main, split=len(tables) > 1, images=images,
                                    main_ground_truth_sha256=None if is_main else main_gt))
            if not is_main:
                warnings.append(f"{benchmark}: {len(members)} result{'s' * (len(members) != 1)} on ground truth "
                                f"{_gt_label(gt, images)}, not the main table's {_gt_label(main_gt, main_images)}; "
                                "listed in a separate table, not ranked with it")
    if stats is not None:
        warnings += stats.warnings
        if ci and results and not any(r.has_records for s in sections for r in s.rows):
            warnings.append("--ci: no result has per-image records beside it (X.records.npz next to X.json); "
                            "re-run `facebench eval ... --out` to write them")
    return Leaderboard(tuple(sections), tuple(warnings), stats.resamples if stats is not None else None)


# ------------------------------------------------------------------------------------------------ rendering

def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def _ms(value: float | None) -> str:
    return "" if value is None else (f"{value:.1f}" if value >= 10 else f"{value:.2f}")


def _gt(row: Row) -> str:
    return row.ground_truth_sha256[:8] if row.ground_truth_sha256 else ""


def _title(section: Section) -> str:
    return BENCHMARK_TITLES.get(section.benchmark, section.benchmark)


def _ground_truth_heading(section: Section) -> str:
    """What follows the title when a benchmark has tables on several ground truths ("" otherwise)."""
    if not section.split:
        return ""
    which = "ground truth" if section.main else "other ground truth"
    return f", {which} {_gt_label(section.ground_truth_sha256, section.images)}"


def ground_truth_note(section: Section) -> str:
    """Why a table stands apart: results on another ground truth than the benchmark's main table ("" if main)."""
    if section.main:
        return ""
    images = f", {section.images:,} images" if section.images is not None else ""
    return (f"These results use another ground truth (sha256 {section.ground_truth_sha256}{images}) than the main "
            f"{_title(section)} table ({(section.main_ground_truth_sha256 or 'unknown')[:8]}): ranked only among "
            "themselves, not comparable with the main table or its published rows.")


def _interval(row: Row, key: str) -> str:
    """The 95% interval in percent, e.g. "[81.33, 84.64]" (empty without one)."""
    pair = row.interval(key)
    return "" if pair is None or row.value(key) is None else f"[{100 * pair[0]:.2f}, {100 * pair[1]:.2f}]"


def _metric_cell(row: Row, key: str) -> str:
    return f"{_percent(row.value(key))} {_interval(row, key)}".strip()


def _table_cells(section: Section, index: int, row: Row) -> list[str]:
    cells = [section.rank(index), row.name, KIND_LABELS.get(row.kind, row.kind)]
    cells += [_metric_cell(row, key) for key, _ in section.columns]
    cells += [_ms(row.ms_per_image), f"{row.protocol} {row.convention}".strip(), _gt(row)]
    return cells


def statistics_note(board: Leaderboard, section: Section) -> str:
    """What the intervals and the "=k" ranks of a section mean (empty when it shows neither)."""
    if not section.has_statistics:
        return ""
    resamples = f"{board.resamples} resamples" if board.resamples else "resamples"
    text = (f"[low, high]: 95% image-level bootstrap interval ({resamples}; a result's stored `ci95` when it has "
            "one), for results with per-image records.")
    if any(section.tied(i) for i in range(len(section.rows))):
        text += (f" =k: statistically tied on {_sort_label(section)} (paired bootstrap over the same images, 95%: "
                 "the rows marked =k have equally many results significantly better than them), among results "
                 "of the same ground truth, protocol and settings; other ranks are positions.")
    return text


def _headers(section: Section) -> list[str]:
    return ["#", "Method", "Type"] + [label for _, label in section.columns] + ["ms/image", "Protocol",
                                                                                 "Ground truth"]


def _sort_label(section: Section) -> str:
    return dict(section.columns).get(section.sort_key, section.sort_key)


def render_markdown(board: Leaderboard, figures: dict[str, str] | None = None) -> str:
    """Markdown tables, one per benchmark and ground truth (figure links when given: Section.key -> path)."""
    out = ["# facebench leaderboard", ""]
    for section in board.sections:
        out += [f"## {_title(section)} (`{section.benchmark}`){_ground_truth_heading(section)}", ""]
        note = SECTION_NOTES.get(section.family, "")
        out += [f"{note} Sorted by {_sort_label(section)}.".strip(), ""]
        if ground_truth_note(section):
            out += [ground_truth_note(section), ""]
        headers = _headers(section)
        out.append("| " + " | ".join(headers) + " |")
        out.append("|" + "|".join("---:" if h in ("#", "ms/image") or h in dict(section.columns).values()
                                  else "---" for h in headers) + "|")
        for index, row in enumerate(section.rows):
            cells = [c.replace("|", "\\|") for c in _table_cells(section, index, row)]
            out.append("| " + " | ".join(cells) + " |")
        stats_note = statistics_note(board, section)
        if stats_note:
            out += ["", stats_note]
        notes = [f"- {row.name}: {row.note}" for row in section.rows if row.note and row.kind != "published"]
        if notes:
            out += [""] + notes
        if figures and section.key in figures:
            out += ["", f"![{_title(section)}]({figures[section.key]})"]
        out.append("")
    if board.warnings:
        out += ["## Warnings", ""] + [f"- {w}" for w in board.warnings] + [""]
    return "\n".join(out)


def render_csv(board: Leaderboard) -> str:
    """One long table: every row of every section, metrics as fractions (`table`: its Section.key)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    interval_columns = [f"{k}_ci95_{end}" for k in CSV_METRICS for end in ("low", "high")]
    writer.writerow(["benchmark", "rank", "tied", "method", "type", *CSV_METRICS, *interval_columns,
                     "ms_per_image", "protocol", "convention", "ground_truth_sha256", "runs", "created", "source",
                     "note", "table"])
    for section in board.sections:
        for index, row in enumerate(section.rows):
            metric_cells = ["" if row.value(k) is None else repr(row.value(k)) for k in CSV_METRICS]
            interval_cells = ["" if row.interval(k) is None else repr(row.interval(k)[end])
                              for k in CSV_METRICS for end in (0, 1)]
            writer.writerow([section.benchmark, section.rank(index), str(section.tied(index)).lower(), row.name,
                             row.kind, *metric_cells, *interval_cells,
                             "" if row.ms_per_image is None else repr(row.ms_per_image), row.protocol,
                             row.convention, row.ground_truth_sha256 or "", row.runs, row.created or "",
                             row.source, row.note, section.key])
    return buffer.getvalue()


def figure_curves(section: Section, top_published: int = 10) -> list:
    """Overlay curves of a section: every run/evaluated row, plus the best `top_published` published rows."""
    from facebench.overlay_plot import curves_from_document, curves_from_reference, unique_labels

    measured = [r for r in section.rows if r.kind != "published"]
    published = [r for r in section.rows if r.kind == "published"]
    published = [r for r in published if r.value(section.sort_key) is not None][:max(0, top_published)] + \
        [r for r in published if r.value(section.sort_key) is None and r.origin is not None and
         getattr(r.origin, "point", False)][:3]
    labels = unique_labels([r.name for r in measured], [r.convention for r in measured])
    curves = []
    for row, label in zip(measured, labels):
        curves += curves_from_document(row.origin.doc, label, source=row.source)
    for row in published:
        curves += curves_from_reference(row.origin)
    return curves


def render_figures(board: Leaderboard, top_published: int = 10) -> dict[str, bytes]:
    """Section.key -> PNG bytes of its overlay figure (sections without drawable curves are left out)."""
    from facebench.overlay_plot import figure_png

    figures = {}
    for section in board.sections:
        if section.family not in ("wider", "fddb", "face-eval"):
            continue
        try:
            curves = figure_curves(section, top_published)
        except InputError:
            continue  # a result without curves: its row stays in the table
        if curves:
            figures[section.key] = figure_png(curves, section.benchmark, section.family)
    return figures


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table.leaderboard { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 14px; }
table.leaderboard th, table.leaderboard td { border: 1px solid #ccc; padding: 3px 8px; }
table.leaderboard th { background: #f0f0f0; }
table.leaderboard td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.published td { color: #666; font-style: italic; }
tr.run td, tr.evaluated td { font-weight: 600; }
figure img { max-width: 100%; border: 1px solid #ddd; }
p.note { color: #555; }
span.ci { color: #777; font-size: 12px; font-weight: normal; }
td.tied { color: #a05a00; }
"""


def render_html(board: Leaderboard, figures: dict[str, str] | None = None, title: str = "facebench leaderboard",
                generated: str | None = None) -> str:
    """A static page (no server, no script): tables and figures (Section.key -> image src: a data URI or path)."""
    generated = generated or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>{html.escape(title)}</h1>",
           f'<p class="note">Generated {html.escape(generated)}. Rows: <b>run</b> = made by facebench run; '
           "<b>evaluated</b> = third-party prediction files scored by facebench; <i>published, not run</i> = "
           "published curves or baseline files, scored from the published material.</p>"]
    for section in board.sections:
        sid = html.escape(section.benchmark)
        out.append(f'<section id="{html.escape(section.key, quote=True)}">')
        out.append(f"<h2>{html.escape(_title(section))} <code>{sid}</code>"
                   f"{html.escape(_ground_truth_heading(section))}</h2>")
        note = SECTION_NOTES.get(section.family, "")
        out.append(f'<p class="note">{html.escape(note)} Sorted by {html.escape(_sort_label(section))}.</p>')
        if ground_truth_note(section):
            out.append(f'<p class="note ground-truth">{html.escape(ground_truth_note(section))}</p>')
        gt_attr = html.escape(section.ground_truth_sha256 or "", quote=True)
        out.append(f'<table class="leaderboard" data-benchmark="{sid}" data-ground-truth="{gt_attr}" '
                   f'data-main="{str(section.main).lower()}">')
        out.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in _headers(section)) +
                   "</tr></thead>")
        out.append("<tbody>")
        numeric = {0, *range(3, 3 + len(section.columns) + 1)}
        metric_index = {3 + k: key for k, (key, _) in enumerate(section.columns)}
        for index, row in enumerate(section.rows):
            cells = _table_cells(section, index, row)
            tds = []
            for i, c in enumerate(cells):
                if i == 0 and section.tied(index):
                    tds.append(f'<td class="num rank tied" title="statistically tied">{html.escape(c)}</td>')
                elif i in metric_index and _interval(row, metric_index[i]):
                    key = metric_index[i]
                    tds.append(f'<td class="num">{html.escape(_percent(row.value(key)))} '
                               f'<span class="ci">{html.escape(_interval(row, key))}</span></td>')
                elif i in numeric:
                    tds.append(f'<td class="num">{html.escape(c)}</td>')
                else:
                    tds.append(f"<td>{html.escape(c)}</td>")
            tip = html.escape(row.note or row.source, quote=True)
            out.append(f'<tr class="{row.kind}" data-kind="{row.kind}" title="{tip}">{"".join(tds)}</tr>')
        out.append("</tbody></table>")
        stats_note = statistics_note(board, section)
        if stats_note:
            out.append(f'<p class="note stats">{html.escape(stats_note)}</p>')
        if figures and section.key in figures:
            kind = "ROC" if section.family == "fddb" else "PR"
            alt = f"{_title(section)}{_ground_truth_heading(section)} {kind} curves"
            out.append(f'<figure><img class="curves" src="{html.escape(figures[section.key], quote=True)}" '
                       f'alt="{html.escape(alt, quote=True)}"><figcaption>{html.escape(alt)}</figcaption></figure>')
        out.append("</section>")
    if board.warnings:
        out.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in board.warnings) + "</ul>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def data_uri(png: bytes) -> str:
    """An embeddable data: URI for PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def write_leaderboard(board: Leaderboard, fmt: str, out: str | os.PathLike | None, *, figures: str = "embed",
                      top_published: int = 10) -> str:
    """Render in md | html | csv; write to `out` (figures embedded, or as PNGs in <out stem>_figures/)."""
    if fmt == "csv":
        text = render_csv(board)
    else:
        sources: dict[str, str] | None = None
        if figures != "none" and (fmt == "html" or out is not None and figures == "files"):
            pngs = render_figures(board, top_published)
            if figures == "files" or fmt == "md":
                if out is None:
                    raise InputError(None, None, "--figures files needs --out (the figures go beside it)")
                folder = Path(out).with_name(Path(out).stem + "_figures")
                folder.mkdir(parents=True, exist_ok=True)
                sources = {}
                for key, png in pngs.items():
                    (folder / f"{key}.png").write_bytes(png)
                    sources[key] = f"{folder.name}/{key}.png"
            else:
                sources = {b: data_uri(png) for b, png in pngs.items()}
        text = render_html(board, sources) if fmt == "html" else render_markdown(board, sources)
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return text
