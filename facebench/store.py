"""The results store: scan a folder of result JSONs, validate each one, group runs that may be compared.

Every result file is read with facebench.results.read_document and then checked field by field; a bad file
raises InputError naming the file, the line of the field and the field (e.g. `protocol.version`). Runs are
grouped by (entry, benchmark, ground-truth sha256, protocol name, version, convention), where the entry is the
detector (name, config hash, weights sha256) of a `facebench run` result and, for an evaluated result, its name
plus the predictions it scored (their recorded sha256, else their path); runs that differ in any of the last
four are never merged (`merge_runs` refuses and says which field differs).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple

from facebench.errors import InputError, is_finite_number, warn
from facebench.results import read_document

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GENERIC_DIRS = {"widerface_txt", "predictions", "preds", "txt", "results", "detections", "dets", "ours",
                 "fddb_dets"}

# Headline metrics each benchmark family must carry (fractions 0..1).
FAMILY_METRICS: dict[str, tuple[str, ...]] = {
    "wider": ("easy", "medium", "hard"),
    "fddb": ("disc_tpr_at_1000fp", "cont_tpr_at_1000fp"),
    "face-eval": ("ap",),
}
# The settings that change a protocol's numbers (its "convention"); results differing in them are not comparable.
CONVENTION_KEYS: dict[str, tuple[str, ...]] = {
    "wider": ("semantics", "iou_threshold", "thresh_num"),
    "fddb": ("ellipse_convention", "pi", "matching", "discrete_threshold", "folds"),
    "face-eval": ("annotation_style", "iterations", "overlap_threshold", "min_width", "min_height",
                  "min_detection_pixels"),
}
# Settings the leaderboard, plots and checks read as numbers (validated when present).
NUMERIC_SETTINGS: dict[str, tuple[str, ...]] = {
    "wider": ("iou_threshold", "thresh_num"),
    "fddb": ("pi",),
    "face-eval": ("iterations", "overlap_threshold", "min_width", "min_height", "min_detection_pixels"),
}
# Protocols whose documents use the result envelope but are analyses, not benchmark results (no leaderboard row).
ANALYSIS_PROTOCOLS = frozenset({"anchor-coverage"})
GENERIC_CONVENTION_KEYS = ("semantics", "convention", "compat", "iou_threshold", "overlap_threshold")


def protocol_family(benchmark: str, protocol_name: str) -> str:
    """wider | fddb | face-eval | other: which columns and curves a result has."""
    name = protocol_name.lower().replace("_", "-")
    bench = benchmark.lower()
    if protocol_name in ANALYSIS_PROTOCOLS:
        return "other"
    if name.startswith("wider") or bench.startswith("wider"):
        return "wider"
    if name.startswith("fddb") or bench.startswith("fddb"):
        return "fddb"
    if name == "face-eval" or bench in ("afw", "pascal"):
        return "face-eval"
    return "other"


def _field_line(text: str, field: str) -> int | None:
    """1-based line of a dotted field's last key in the JSON text (the first occurrence after its parents)."""
    position = 0
    for part in field.split("."):
        found = text.find(json.dumps(part) + ":", position)
        if found < 0:
            return None
        position = found
    return text.count("\n", 0, position) + 1


def field_line(path: str | os.PathLike, field: str) -> int | None:
    """The line of a dotted field in a JSON file (None when the file or the field cannot be found)."""
    try:
        return _field_line(Path(path).read_text(encoding="utf-8"), field)
    except (OSError, UnicodeDecodeError):
        return None


class _Validator:
    """Collects the first problem of a document as an InputError at the field's line."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def fail(self, field: str, message: str) -> InputError:
        return InputError(self.path, _field_line(self.text, field), f"field '{field}': {message}")

    def missing(self, field: str, message: str = "missing") -> InputError:
        """A missing field, at the line of the object that should hold it (its own key is nowhere)."""
        parent = field.rpartition(".")[0]
        line = _field_line(self.text, parent) if parent else None
        return InputError(self.path, line, f"field '{field}': {message}")

    def string(self, value: Any, field: str, *, empty: bool = False, nullable: bool = False) -> None:
        if value is None and nullable:
            return
        if not isinstance(value, str) or (not empty and not value.strip()):
            raise self.fail(field, f"must be a non-empty string, got {json.dumps(value)[:60]}")

    def sha(self, value: Any, field: str, *, nullable: bool = False) -> None:
        if value is None and nullable:
            return
        if not isinstance(value, str) or not _SHA256.match(value):
            raise self.fail(field, f"must be a sha256 (64 lower-case hex digits), got {json.dumps(value)[:80]}")

    def obj(self, value: Any, field: str) -> None:
        if not isinstance(value, dict):
            raise self.fail(field, f"must be an object, got {type(value).__name__}")

    def curve_array(self, value: Any, field: str) -> None:
        """A curve array: a list of finite numbers, null allowed (the writers store NaN/inf as null)."""
        if not isinstance(value, list):
            raise self.fail(field, f"must be an array of numbers, got {json.dumps(value)[:60]}")
        for index, item in enumerate(value):
            if item is None:
                continue
            if not is_finite_number(item):
                raise self.fail(field, f"element {index} must be a number or null, got {json.dumps(item)[:60]}")

    def number(self, value: Any, field: str, *, nullable: bool = True, minimum: float | None = None) -> None:
        if value is None and nullable:
            return
        if not is_finite_number(value):
            raise self.fail(field, f"must be a number{' or null' if nullable else ''}, got {json.dumps(value)[:60]}")
        if minimum is not None and value < minimum:
            raise self.fail(field, f"must be >= {minimum}, got {value}")


def validate_document(doc: dict[str, Any], path: str | os.PathLike, text: str | None = None) -> None:
    """Check every field a stored result needs; raise InputError(file, line, "field 'x.y': ...") on the first."""
    path = Path(path)
    if text is None:
        text = json.dumps(doc, indent=1)
    v = _Validator(path, text)
    v.string(doc["benchmark"], "benchmark")
    v.obj(doc["protocol"], "protocol")
    for key in ("name", "version"):
        if key not in doc["protocol"]:
            raise v.missing(f"protocol.{key}")
        v.string(doc["protocol"][key], f"protocol.{key}")
    v.obj(doc["settings"], "settings")
    v.obj(doc["metrics"], "metrics")
    v.sha(doc["ground_truth_sha256"], "ground_truth_sha256")
    v.string(doc["facebench_version"], "facebench_version")
    v.string(doc.get("git_commit"), "git_commit", nullable=True)
    v.string(doc["created"], "created")
    try:
        _dt.datetime.fromisoformat(doc["created"])
    except ValueError:
        raise v.fail("created", f"not an ISO 8601 date-time: {doc['created']!r}") from None

    for name, value in doc["metrics"].items():
        if isinstance(value, (dict, list)):
            continue  # structured extras (e.g. per-threshold tables) are allowed; only scalars are gated
        v.number(value, f"metrics.{name}")
    family = protocol_family(doc["benchmark"], doc["protocol"]["name"])
    for name in FAMILY_METRICS.get(family, ()):
        if name not in doc["metrics"]:
            raise v.missing(f"metrics.{name}", f"missing (a {doc['benchmark']} result must report it)")
        value = doc["metrics"][name]
        v.number(value, f"metrics.{name}")  # the gate, plots and ranks read a headline metric as one number
        if isinstance(value, (int, float)) and not 0.0 <= value <= 1.0:  # a percentage here would pass any gate
            raise v.fail(f"metrics.{name}", f"must be a fraction in [0, 1], got {value}")

    for name in NUMERIC_SETTINGS.get(family, ()):
        if name in doc["settings"]:
            v.number(doc["settings"][name], f"settings.{name}", nullable=False, minimum=0)

    curves = doc.get("curves", {})
    v.obj(curves, "curves")
    for name, curve in curves.items():
        if not isinstance(curve, dict):
            if family in FAMILY_METRICS:  # the plots and the leaderboard read these as {array name: array}
                raise v.fail(f"curves.{name}", f"must be an object of arrays, got {json.dumps(curve)[:60]}")
            continue
        for key, arr in curve.items():
            if isinstance(arr, list) or family in FAMILY_METRICS:
                v.curve_array(arr, f"curves.{name}.{key}")
        lengths = {key: len(arr) for key, arr in curve.items() if isinstance(arr, list)}
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{k} {n}" for k, n in lengths.items())
            raise v.fail(f"curves.{name}", f"arrays differ in length ({detail})")

    if "detector" in doc:
        det = doc["detector"]
        v.obj(det, "detector")
        if "name" not in det:
            raise v.missing("detector.name")
        v.string(det["name"], "detector.name")
        if "options" in det:
            v.obj(det["options"], "detector.options")
        v.string(det.get("config_hash"), "detector.config_hash", nullable=True)
        v.sha(det.get("weights_sha256"), "detector.weights_sha256", nullable=True)
    if "timing" in doc:
        v.obj(doc["timing"], "timing")
        for key in ("ms_per_image", "median_ms_per_image"):
            value = doc["timing"].get(key)
            if isinstance(value, dict):  # per stage (load, forward, ..., total), as `facebench run` writes
                for stage, ms in value.items():
                    v.number(ms, f"timing.{key}.{stage}", minimum=0)
            else:
                v.number(value, f"timing.{key}", minimum=0)


def convention(doc: Mapping[str, Any]) -> str:
    """The protocol settings that change the numbers, as one canonical `key=value;...` string."""
    family = protocol_family(doc["benchmark"], doc["protocol"]["name"])
    keys = CONVENTION_KEYS.get(family, GENERIC_CONVENTION_KEYS)
    settings = doc.get("settings", {})
    return ";".join(f"{k}={json.dumps(settings[k], sort_keys=True)}" for k in keys if k in settings)


def derived_label(doc: Mapping[str, Any], path: Path | None = None) -> str:
    """A display name for a result without a `detector` block: its label, else its predictions' name."""
    if isinstance(doc.get("label"), str) and doc["label"].strip():
        return doc["label"].strip()
    settings = doc.get("settings", {})
    for key in ("predictions", "detections", "predictions_dir", "detections_file"):
        value = settings.get(key)
        if isinstance(value, str) and value:
            p = Path(value.split(", ")[0])  # FDDB lists its fold files comma-separated
            name = p.stem if p.suffix and p.suffix.lower() in (".txt", ".mat", ".csv") else p.name
            if (name.lower() in _GENERIC_DIRS or re.match(r"fold-\d+-out$", name)) and p.parent.name:
                name = p.parent.name
            return name
    return path.stem if path is not None else "unnamed"


PREDICTION_SOURCE_KEYS = ("predictions", "detections", "predictions_dir", "detections_file")


def prediction_source(doc: Mapping[str, Any]) -> str | None:
    """What an evaluated result scored: its `detections_sha256` digest when recorded (`sha256:<hex>`), else its
    predictions path(s) from the settings, normalised (FDDB's comma-separated fold files each); None if neither."""
    digest = doc.get("detections_sha256")
    if isinstance(digest, str) and _SHA256.match(digest):
        return f"sha256:{digest}"
    settings = doc.get("settings") or {}
    for key in PREDICTION_SOURCE_KEYS:
        value = settings.get(key) if isinstance(settings, Mapping) else None
        if isinstance(value, str) and value.strip():
            return ", ".join(os.path.normpath(part.strip()) for part in value.split(", ") if part.strip())
    return None


class GroupKey(NamedTuple):
    """What must be equal for two runs to be the same entry (never merged otherwise); `detector` is the entry's
    identity (StoredResult.entry_id)."""

    detector: str
    benchmark: str
    ground_truth_sha256: str
    protocol: str
    protocol_version: str
    convention: str


@dataclass(frozen=True, eq=False)
class StoredResult:
    """One validated result file."""

    path: Path
    doc: dict[str, Any]

    @property
    def benchmark(self) -> str:
        return self.doc["benchmark"]

    @property
    def protocol(self) -> str:
        return self.doc["protocol"]["name"]

    @property
    def protocol_version(self) -> str:
        return self.doc["protocol"]["version"]

    @property
    def family(self) -> str:
        return protocol_family(self.benchmark, self.protocol)

    @property
    def ground_truth_sha256(self) -> str:
        return self.doc["ground_truth_sha256"]

    @property
    def convention(self) -> str:
        return convention(self.doc)

    @property
    def metrics(self) -> dict[str, Any]:
        return self.doc["metrics"]

    @property
    def created(self) -> str:
        return self.doc["created"]

    @property
    def kind(self) -> str:
        """run (made by `facebench run`: has a detector block) or evaluated (prediction files scored)."""
        return "run" if "detector" in self.doc else "evaluated"

    @property
    def detector_name(self) -> str:
        det = self.doc.get("detector")
        return det["name"] if det else derived_label(self.doc, self.path)

    @property
    def detector_id(self) -> str:
        """Name plus config and weights hashes: two configurations of one detector are two entries."""
        det = self.doc.get("detector")
        if not det:
            return self.detector_name
        parts = [det["name"]]
        for key in ("config_hash", "weights_sha256"):
            if det.get(key):
                parts.append(f"{key.split('_')[0]}={det[key]}")
        return "@".join(parts)

    @property
    def prediction_source(self) -> str | None:
        """The scored predictions' digest or path (see prediction_source); None when the document has neither."""
        return prediction_source(self.doc)

    @property
    def entry_id(self) -> str:
        """The leaderboard entry: detector_id for a run; for an evaluated result its name plus what it scored
        (predictions digest or path), so two prediction folders of one name are two entries, while
        re-evaluating the same predictions is the same entry."""
        if self.kind == "run":
            return self.detector_id
        source = self.prediction_source
        return f"{self.detector_name}@predictions={source}" if source else self.detector_name

    @property
    def ms_per_image(self) -> float | None:
        """Mean milliseconds per image (the `total` stage when timing is split by stage)."""
        value = (self.doc.get("timing") or {}).get("ms_per_image")
        if isinstance(value, dict):
            value = value.get("total")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @property
    def key(self) -> GroupKey:
        return GroupKey(self.entry_id, self.benchmark, self.ground_truth_sha256, self.protocol,
                        self.protocol_version, self.convention)

    def comparable_key(self) -> tuple[str, str, str, str, str]:
        """The key without the detector: what a check against a baseline requires to be equal."""
        return self.key[1:]


def load_result(path: str | os.PathLike) -> StoredResult:
    """Read and fully validate one result JSON."""
    path = Path(path)
    doc = read_document(path)
    validate_document(doc, path, path.read_text())
    return StoredResult(path=path, doc=doc)


RESULT_SCHEMA_PREFIX = "facebench.result/"


def other_document_kind(doc: Any) -> str | None:
    """What a facebench JSON that is not a benchmark result is (its schema, or its analysis protocol); None for a
    result or anything that claims to be one."""
    if not isinstance(doc, dict):
        return None
    schema = doc.get("schema")
    if isinstance(schema, str) and schema.startswith("facebench.") and not schema.startswith(RESULT_SCHEMA_PREFIX):
        return schema
    protocol = doc.get("protocol")
    name = protocol.get("name") if isinstance(protocol, dict) else None
    if isinstance(name, str) and name in ANALYSIS_PROTOCOLS:
        return f"{name} analysis"
    return None


def _is_result_candidate(path: Path) -> bool:
    """A JSON file that claims to be a facebench result (has a `schema` field and is not another facebench
    document: a comparison, an error analysis, an anchor analysis, a training config ...), or that is not valid
    JSON (a damaged result must not vanish silently). Other JSON (run manifests, caches, COCO exports) is not."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):  # load_result then names what is wrong
        return True
    return isinstance(doc, dict) and "schema" in doc and other_document_kind(doc) is None


def find_result_files(root: str | os.PathLike, ignored: list[Path] | None = None) -> list[Path]:
    """Result JSONs under a folder (recursive, sorted); a file argument is returned as is. JSON files without a
    `schema` field, and other facebench documents, are not results: they are skipped (and appended to `ignored`
    when given)."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise InputError(root, None, "results folder not found")
    found = []
    for path in sorted(p for p in root.rglob("*.json") if p.is_file() and not p.name.startswith(".")):
        if _is_result_candidate(path):
            found.append(path)
        elif ignored is not None:
            ignored.append(path)
    return found


def scan(root: str | os.PathLike, *, skip_invalid: bool = False, ignored: list[Path] | None = None) \
        -> list[StoredResult]:
    """Load every result under `root`; a bad file is an error (or, with skip_invalid, a warning)."""
    results = []
    for path in find_result_files(root, ignored):
        try:
            results.append(load_result(path))
        except InputError as exc:
            if not skip_invalid:
                raise
            warn(f"skipped {exc}")
    return results


_KEY_FIELDS = ("detector", "benchmark", "ground truth (ground_truth_sha256)", "protocol (protocol.name)",
               "protocol version (protocol.version)", "protocol convention (settings)")


def merge_runs(results: Iterable[StoredResult]) -> list[StoredResult]:
    """Runs of one entry, oldest first; InputError when they differ in detector, ground truth or protocol."""
    results = list(results)
    if not results:
        return []
    first = results[0]
    for other in results[1:]:
        for i, (a, b) in enumerate(zip(first.key, other.key)):
            if a != b:
                raise InputError(other.path, None, f"cannot merge with {first.path}: {_KEY_FIELDS[i]} differs "
                                 f"({_short(a)} vs {_short(b)})")
    return sorted(results, key=lambda r: r.created)


def _short(value: str) -> str:
    return value[:12] if _SHA256.match(value or "") else repr(value)


def group(results: Iterable[StoredResult]) -> dict[GroupKey, list[StoredResult]]:
    """Runs grouped by their full key (each group is safe to merge), runs oldest first."""
    groups: dict[GroupKey, list[StoredResult]] = {}
    for result in results:
        groups.setdefault(result.key, []).append(result)
    return {key: merge_runs(runs) for key, runs in groups.items()}


def split_entries(groups: Mapping[GroupKey, list[StoredResult]]) -> dict[tuple[str, str], list[GroupKey]]:
    """(detector, benchmark) -> its groups; more than one means different ground truth or protocol."""
    entries: dict[tuple[str, str], list[GroupKey]] = {}
    for key in groups:
        entries.setdefault((key.detector, key.benchmark), []).append(key)
    return entries


def differing_fields(keys: list[GroupKey]) -> list[str]:
    """Names of the key fields that differ among several groups of one (detector, benchmark)."""
    return [_KEY_FIELDS[i] for i in range(2, len(GroupKey._fields)) if len({k[i] for k in keys}) > 1]
