"""Leaderboard rows and tables: one row per entry per benchmark, split by ground truth, sorted by a metric."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from facebench.store import StoredResult, differing_fields, group, split_entries


FAMILY_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "wider": (("easy", "Easy"), ("medium", "Medium"), ("hard", "Hard")),
    "fddb": (("disc_tpr_at_1000fp", "Disc TPR@1000FP"), ("cont_tpr_at_1000fp", "Cont TPR@1000FP")),
    "face-eval": (("ap", "AP"),),
}
DEFAULT_SORT = {"wider": "hard", "fddb": "disc_tpr_at_1000fp", "face-eval": "ap"}
BENCHMARK_ORDER = ("widerface-val", "fddb", "afw", "pascal")
PUBLISHED_SOURCES = {"wider": "official PR curve", "fddb": "published ROC file",
                     "face-eval": "baseline file, scored by face-eval"}


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


def other_columns(rows: Sequence[Row]) -> tuple[tuple[str, str], ...]:
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
    text = " ".join(str(settings[k]) for k in keys if k in settings)
    sizes = (settings.get("min_width", 30), settings.get("min_height", 30))
    if family == "face-eval" and sizes != (30, 30):  # another size rule changes AP as much as another convention
        text += f" faces>={sizes[0]:g}x{sizes[1]:g}"
    return text


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


def common_images(rows: Iterable[Row]) -> int | None:
    """The image count most of the rows record (None when none does)."""
    counts = [r.images for r in rows if r.images is not None]
    return max(set(counts), key=lambda n: (counts.count(n), n)) if counts else None


def main_ground_truth(rows: Sequence[Row]) -> str | None:
    """The ground truth of a benchmark's main table: the one most published rows that record one are scored on
    (the first of them on a tie); else, among the results', the one covering the most images, then the newest
    ground_truth_version, then the one most entries use (then sha256 order); None when no row records one."""
    published = [r.ground_truth_sha256 for r in rows if r.kind == "published" and r.ground_truth_sha256]
    if published:
        # on a tie, the first scored: the references list the default annotations' baselines first
        return max(dict.fromkeys(published), key=published.count)
    by_gt: dict[str, list[Row]] = {}
    for row in rows:
        if row.ground_truth_sha256:
            by_gt.setdefault(row.ground_truth_sha256, []).append(row)
    if not by_gt:
        return None

    def strength(gt: str) -> tuple:
        members = by_gt[gt]
        versions = [r.ground_truth_version for r in members if r.ground_truth_version]
        return (common_images(members) or -1, max(versions, default=""), len(members))

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
                    key=lambda gt: (-(common_images(tables[gt]) or -1), -len(tables[gt]), gt))
    return [(main, tables[main])] + [(gt, tables[gt]) for gt in others]


def gt_label(sha: str | None, images: int | None) -> str:
    """e.g. "d4b5be5a (3,226 images)"."""
    text = (sha or "unknown")[:8]
    return f"{text} ({images:,} images)" if images is not None else text


def sort_rows(rows: Iterable[Row], key: str) -> tuple[Row, ...]:
    def order(row: Row):
        value = row.value(key)
        return (value is None, -(value or 0.0), row.kind == "published", row.name.lower())

    return tuple(sorted(rows, key=order))
