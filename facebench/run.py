"""`facebench run`: a detector over a benchmark -> cached per-image detections -> official-format predictions
-> the benchmark's protocol -> results JSON, records and plot.

Per-image detections are appended, one JSON line per image, to a cache keyed by (detector config hash,
image id) under `<out>/cache/<benchmark>/<config_hash>/`, so a killed run resumes where it stopped with
nothing lost or duplicated. Shards (`--num-shards/--shard-id`, or the ranks of `torchrun`) take contiguous
slices of the image list and write their own cache part; scoring reads every part.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from facebench.errors import InputError, parse_json, warn

MANIFEST = "run.json"
RESULT = "result.json"
RECORDS = "result.records.npz"
PLOT = "pr.png"
PREDICTIONS = "predictions"
TIMING_STAGES = ("load", "preprocess", "forward", "postprocess")


# ---------------------------------------------------------------------------------------------- sharding
def shard_bounds(n_items: int, num_shards: int, shard_id: int) -> tuple[int, int]:
    """Contiguous slice [start, stop) of shard `shard_id`: sizes differ by at most one, no padding."""
    if num_shards < 1:
        raise InputError(None, None, f"--num-shards must be >= 1, got {num_shards}")
    if not 0 <= shard_id < num_shards:
        raise InputError(None, None, f"--shard-id must be in 0..{num_shards - 1}, got {shard_id}")
    return n_items * shard_id // num_shards, n_items * (shard_id + 1) // num_shards


# ------------------------------------------------------------------------------------------------- cache
@dataclass(frozen=True)
class ImageRecord:
    """One image's outcome: detections (x1 y1 x2 y2 score) or the reason it was unreadable, and its timing."""

    id: str
    boxes: np.ndarray
    status: str = "ok"  # "ok" or "unreadable"
    reason: str = ""
    ms: Mapping[str, float] = field(default_factory=dict)

    def to_line(self) -> str:
        """The record as one JSON line (floats written exactly: a float32 widened to double round-trips)."""
        data: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.reason:
            data["reason"] = self.reason
        if self.ms:
            data["ms"] = {k: round(float(v), 4) for k, v in self.ms.items()}
        head = json.dumps(data, separators=(",", ":"))[:-1]
        return f'{head},"boxes":{format_boxes(self.boxes)}}}\n'

    @staticmethod
    def from_line(line: str) -> ImageRecord:
        """Parse one cache line; ValueError (with the reason) for anything but a well-formed record."""
        try:
            data = json.loads(line)
        except RecursionError:
            raise ValueError("nested too deeply") from None
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not a record object")
        if not isinstance(data.get("id"), str) or not data["id"]:
            raise ValueError("no image id")
        status = data.get("status", "ok")
        if status not in ("ok", "unreadable"):
            raise ValueError(f"unknown status {status!r}")
        reason = data.get("reason", "")
        if not isinstance(reason, str):
            raise ValueError("'reason' is not a string")
        if "boxes" not in data:  # every record is written with its boxes: a line without them is damaged
            raise ValueError("no 'boxes'")
        try:
            return ImageRecord(data["id"], _cached_boxes(data["boxes"]), status, reason,
                               _cached_timing(data.get("ms", {})))
        except (OverflowError, TypeError):  # integers too large for a float
            raise ValueError("a number beyond float range") from None


def _cached_boxes(value: Any) -> np.ndarray:
    """Cached detections as [N, 5] finite floats (a NaN here would reach the prediction files)."""
    if not isinstance(value, list):
        raise ValueError("'boxes' is not a list")
    if not value:
        return np.zeros((0, 5))
    if not all(isinstance(row, list) and len(row) == 5 and
               all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row) for row in value):
        raise ValueError("'boxes' rows must be 5 numbers each")
    boxes = np.asarray(value, dtype=np.float64)
    if not np.isfinite(boxes).all():
        raise ValueError("'boxes' holds NaN or inf")
    if np.abs(boxes).max() > np.finfo(np.float32).max:  # the cache is written in float32: not ours
        raise ValueError("'boxes' holds values beyond float32 range")
    return boxes


def _cached_timing(value: Any) -> dict[str, float]:
    """Cached per-stage milliseconds: an object of finite numbers."""
    if not isinstance(value, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value.values()):
        raise ValueError("'ms' is not an object of numbers")
    return {str(k): float(v) for k, v in value.items()}


def format_boxes(boxes: np.ndarray) -> str:
    """Rows as a JSON array of numbers in float32 precision (shortest text that reads back to the float32),
    so cached detections are compact and identical however the run was split."""
    rows = np.asarray(boxes, dtype=np.float32).reshape(-1, 5)
    return "[" + ",".join("[" + ",".join(str(v) for v in row) + "]" for row in rows) + "]"


class PredictionCache:
    """Append-only per-image records in `<directory>/part-*.jsonl`; this process writes only its own part."""

    def __init__(self, directory: Path, part: str) -> None:
        self.directory = directory
        self.path = directory / f"part-{part}.jsonl"
        self._handle = None

    def parts(self) -> list[Path]:
        """Every part file (all shards, all earlier runs)."""
        return sorted(self.directory.glob("part-*.jsonl")) if self.directory.is_dir() else []

    def load(self) -> dict[str, ImageRecord]:
        """Every complete record in every part (a line cut short by a kill is ignored); first one wins."""
        records: dict[str, ImageRecord] = {}
        for part in self.parts():
            for record in read_part(part):
                known = records.get(record.id)
                if known is None or (known.status != "ok" and record.status == "ok"):
                    records[record.id] = record
        return records

    def open(self) -> None:
        """Open this process's part for appending, first cutting off a line a killed run left half-written.
        A second run of the same shard into the same folder is refused while the first holds the part."""
        self.directory.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a", encoding="utf-8")
        try:
            _lock_part(handle, self.path)
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                with open(self.path, "r+b") as raw:
                    raw.truncate(data.rfind(b"\n") + 1)
        except BaseException:
            handle.close()
            raise
        self._handle = handle

    def append(self, record: ImageRecord) -> None:
        """Add one record and push it to the OS at once (a kill after this loses nothing)."""
        assert self._handle is not None, "call open() first"
        self._handle.write(record.to_line())
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None


def _lock_part(handle: Any, path: Path) -> None:
    """Take the part file's lock without waiting (two runs of one shard would both compute every image)."""
    if not _flock(handle, wait=False):
        raise InputError(path, None, "another facebench run is writing this shard into the same --out; wait "
                                     "for it to finish (then run again to resume) or use another --out")


def _flock(handle: Any, *, wait: bool) -> bool:
    """Lock an open file exclusively until it is closed; False when `wait` is off and another holds it.
    Where fcntl is absent (Windows) nothing is locked."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


# (part file, line) pairs already reported in this process: a run reads its cache twice (to resume, to merge)
_REPORTED_DAMAGE: set[tuple[str, int]] = set()


def read_part(path: Path) -> Iterator[ImageRecord]:
    """Records of one part file; a damaged line (not UTF-8, not a record, bad boxes) is skipped with one warning
    naming it, so its image is redone; an unterminated last line (a kill) is skipped silently."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete = lines[:-1]  # the piece after the last newline is a line cut short by a kill (or empty)
    for number, raw in enumerate(complete, start=1):
        try:
            yield ImageRecord.from_line(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            _report_damage(path, number, exc)


def _report_damage(path: Path, line: int, exc: Exception) -> None:
    key = (os.fspath(path.absolute()), line)
    if key in _REPORTED_DAMAGE:
        return
    _REPORTED_DAMAGE.add(key)
    reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc).split("\n")[0][:80]
    warn(f"{path}:{line}: skipping a damaged cache line ({reason}); its image is computed again")


# --------------------------------------------------------------------------------------------- manifest
def cache_dir(out: Path, benchmark: str, config_hash: str) -> Path:
    """Where the per-image records of (benchmark, detector config) live."""
    return out / "cache" / benchmark / config_hash


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON via a per-process temporary file (shards may write the same manifest at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def read_manifest(out: Path) -> dict[str, Any]:
    """The run manifest an earlier `facebench run --out OUT` left."""
    path = out / MANIFEST
    if not path.is_file():
        raise InputError(path, None, "no run manifest here (not the --out folder of a `facebench run`)")
    manifest = parse_json(path.read_text(), path, "damaged run manifest", "damaged run manifest")
    for key in ("benchmark", "detector"):
        entry = manifest.get(key) if isinstance(manifest, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InputError(path, None, f"damaged run manifest (no '{key}' object with a name)")
    return manifest


# ------------------------------------------------------------------------------------------------ system
def peak_rss_mib() -> float | None:
    """This process's peak resident memory in MiB."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / (1024.0 * 1024.0)


def cpu_name() -> str:
    """The CPU model, as the OS names it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: str, threads: int | None) -> dict[str, Any]:
    """Where the run happened (CPU, cores, GPU when used)."""
    from detectors.third_party._common import available_threads

    info: dict[str, Any] = {"cpu": cpu_name(), "cpu_cores_available": available_threads(),
                            "threads": threads, "device": device, "platform": platform.platform(),
                            "python": platform.python_version()}
    if device.startswith("cuda") and "torch" in sys.modules:
        torch = sys.modules["torch"]
        try:
            index = int(device.split(":")[1]) if ":" in device else 0
            info["gpu"] = torch.cuda.get_device_name(index)
        except Exception:  # no CUDA build / no device: leave the GPU unnamed
            pass
    return info


def cuda_peak_mib(device: str) -> float | None:
    """Peak CUDA memory torch allocated in this process (only when torch is already in use)."""
    torch = sys.modules.get("torch")
    if torch is None or not device.startswith("cuda"):
        return None
    try:
        return torch.cuda.max_memory_allocated() / (1024.0 * 1024.0)
    except Exception:
        return None


# ----------------------------------------------------------------------------------------------- detector
def detector_info(registry_name: str, detector: Any) -> dict[str, Any]:
    """What the results JSON records about the detector (one that does not derive from detectors.base.Detector
    needs only detect, input_policy and config_hash, as the README's contract says)."""
    where = f"{type(detector).__module__}:{type(detector).__qualname__}"
    config_hash = getattr(detector, "config_hash", None)
    if not callable(getattr(detector, "detect", None)) or not isinstance(config_hash, str) or not config_hash:
        raise InputError(None, None, f"detector '{registry_name}' ({where}) lacks a detect method or a config_hash "
                                     "string (see detectors/base.py for the contract)")
    config = detector.config() if callable(getattr(detector, "config", None)) else {}
    if not isinstance(config, Mapping):
        raise InputError(None, None, f"detector '{registry_name}' ({where}): config() must return a dict")
    weights = config.get("weights_sha256")
    if weights is None and callable(getattr(detector, "weights_sha256", None)):
        weights = detector.weights_sha256()
    return {"name": registry_name, "class": where,
            "options": config.get("options", getattr(detector, "options", {})), "config_hash": config_hash,
            "weights_sha256": weights, "input_policy": getattr(detector, "input_policy", None),
            "precision": getattr(detector, "precision", "fp32"),
            "provenance": detector.provenance() if hasattr(detector, "provenance") else {}}


def build_detector(name: str, options: Mapping[str, Any], device: str):
    """Create the detector by its registry name and put it on `device`."""
    from detectors import registry

    return registry.create(name, device=device, **options)


# --------------------------------------------------------------------------------------------- inference
@dataclass
class ShardOutcome:
    """What one process did: images in its shard, computed now, taken from the cache, unreadable."""

    shard: tuple[int, int]
    n_images: int
    computed: int
    cached: int
    unreadable: list[str]
    wall_s: float


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def infer_shard(detector: Any, bench: Any, refs: Sequence[Any], cache: PredictionCache, *, batch_size: int,
                progress: bool, desc: str) -> ShardOutcome:
    """Detect on every image of `refs` that the cache does not hold yet, appending each result at once."""
    start = time.perf_counter()
    done = cache.load()
    # unreadable images are tried again: the file may have been fixed since
    todo = [ref for ref in refs if ref.id not in done or done[ref.id].status != "ok"]
    computed, unreadable = 0, []
    cache.open()
    try:
        from tqdm import tqdm

        bar = tqdm(total=len(refs), initial=len(refs) - len(todo), desc=desc, unit="img", disable=not progress,
                   dynamic_ncols=True, leave=False, file=sys.stderr)
        with bar:
            for batch in _batches(todo, max(1, batch_size)):
                images, ok_refs, load_ms = [], [], []
                for ref in batch:
                    t0 = time.perf_counter()
                    try:
                        images.append(bench.load(ref))
                    except Exception as exc:  # noqa: BLE001 - any decoder failure means "unreadable"
                        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
                        where = getattr(exc, "path", None) or ref.path or ref.id
                        warn(f"skipping unreadable image {ref.id} ({where}: {reason})")
                        cache.append(ImageRecord(ref.id, np.zeros((0, 5)), "unreadable", reason))
                        unreadable.append(ref.id)
                        bar.update(1)
                        continue
                    load_ms.append((time.perf_counter() - t0) * 1000.0)
                    ok_refs.append(ref)
                if not images:
                    continue
                t0 = time.perf_counter()
                results = detector.detect(images)
                detect_ms = (time.perf_counter() - t0) * 1000.0
                if len(results) != len(images):
                    raise RuntimeError(f"detector returned {len(results)} results for {len(images)} images")
                split = dict(getattr(detector, "last_timing", None) or {})
                per_image = {k: 1000.0 * float(split[k]) / len(images) for k in ("preprocess", "forward", "postprocess")
                             if k in split}
                if not per_image:  # the detector reports no split: all of detect() counts as forward
                    per_image = {"forward": detect_ms / len(images)}
                for ref, boxes, ms in zip(ok_refs, results, load_ms):
                    record = ImageRecord(ref.id, _checked_boxes(boxes, ref.id), "ok", "",
                                         {"load": ms, **per_image, "detect": detect_ms / len(images)})
                    cache.append(record)
                computed += len(ok_refs)
                bar.update(len(ok_refs))
    finally:
        cache.close()
    return ShardOutcome((0, 0), len(refs), computed, len(refs) - len(todo), unreadable, time.perf_counter() - start)


def _checked_boxes(boxes: Any, image_id: str) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 5))
    if array.ndim != 2 or array.shape[1] < 5:
        raise RuntimeError(f"detector output for {image_id} has shape {array.shape}, expected [N, 5]")
    array = array[:, :5]
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        warn(f"{image_id}: dropping {int((~finite).sum())} detections with NaN/inf values")
        array = array[finite]
    return array


# ------------------------------------------------------------------------------------------------- scoring
def _timed_batch_size(metas: Sequence[Mapping[str, Any]], requested: int) -> int | list[int]:
    """The batch size the per-image times come from; a list when resumed runs used several."""
    sizes = sorted({int(b) for m in metas for b in (m.get("batch_sizes") or []) if isinstance(b, int)})
    if not sizes:
        return requested
    return sizes[0] if len(sizes) == 1 else sizes


def _timing_block(records: Sequence[ImageRecord], metas: Sequence[Mapping[str, Any]], batch_size: int,
                  detector: Mapping[str, Any]) -> dict[str, Any]:
    timed = [r for r in records if r.status == "ok" and r.ms]
    stages = [s for s in TIMING_STAGES if any(s in r.ms for r in timed)]
    mean = {s: float(np.mean([r.ms.get(s, 0.0) for r in timed])) for s in stages} if timed else {}
    median = {s: float(np.median([r.ms.get(s, 0.0) for r in timed])) for s in stages} if timed else {}
    if timed:
        total = [sum(r.ms.get(s, 0.0) for s in stages) for r in timed]
        mean["total"], median["total"] = float(np.mean(total)), float(np.median(total))
    split = bool(timed) and all(s in r.ms for r in timed for s in ("preprocess", "postprocess"))
    rss = [m["peak_rss_mib"] for m in metas if m.get("peak_rss_mib") is not None]
    gpu = [m["peak_cuda_mib"] for m in metas if m.get("peak_cuda_mib") is not None]
    hw = []
    for m in metas:
        if m.get("hardware") and m["hardware"] not in hw:
            hw.append(m["hardware"])
    return {
        "ms_per_image": mean, "median_ms_per_image": median, "images_timed": len(timed),
        "split": "detector-reported" if split else "forward = whole detect() call",
        "note": "load = image decode; per-image times of a batch are the batch time / its size; "
                "the mean includes the first image's warm-up",
        "batch_size": _timed_batch_size(metas, batch_size),
        "device": ", ".join(sorted({m.get("device", "cpu") for m in metas})) or "cpu",
        "precision": detector.get("precision"), "input_policy": detector.get("input_policy"),
        "hardware": hw[0] if len(hw) == 1 else hw,
        "peak_memory_mib": {"rss": max(rss) if rss else None, "cuda": max(gpu) if gpu else None,
                            "processes": len(metas)},
        "inference_wall_s": float(sum(m.get("wall_s", 0.0) for m in metas)),
    }


@dataclass
class RunResult:
    """What `finalize` produced."""

    out: Path
    predictions: Path
    result_path: Path | None
    metrics: Mapping[str, Any] | None
    table: str
    document: dict[str, Any] | None
    unreadable: list[str]


def _check_mergeable(src: Path, other: Mapping[str, Any], first_src: Path, first: Mapping[str, Any]) -> None:
    """Shards merge only when they ran the same benchmark and the same detector configuration."""
    for key in ("benchmark", "detector"):
        if other[key]["name"] != first[key]["name"]:
            raise InputError(src / MANIFEST, None, f"this run's {key} ({other[key]['name']}) differs from "
                                                   f"{first_src}'s ({first[key]['name']}); cannot merge")
    differs = _data_difference(first["benchmark"], other["benchmark"])
    if differs:  # the cache is keyed by image id: shards of other data would mix other pixels' boxes
        key, theirs, mine = differs
        raise InputError(src / MANIFEST, None, f"this run's {key} ({mine}) differs from {first_src}'s "
                                               f"({theirs}); cannot merge shards of other data")
    mine, theirs = other["detector"], first["detector"]
    if mine.get("config_hash") != theirs.get("config_hash"):
        raise InputError(src / MANIFEST, None, f"this run's {mine['name']} options / config hash "
                         f"({_options_text(mine)}, {mine.get('config_hash')}) differ from {first_src}'s "
                         f"({_options_text(theirs)}, {theirs.get('config_hash')}); cannot merge")


def _options_text(detector: Mapping[str, Any]) -> str:
    options = detector.get("options") or {}
    return " ".join(f"-o {k}={json.dumps(v)}" for k, v in sorted(options.items())) or "no -o options"


def _replace_predictions(out: Path, bench: Any, detections: Mapping[str, Any]) -> Path:
    """Write the prediction files beside, then swap them in; the old result, records and figure go first, so a
    kill at any point never leaves a result describing other predictions."""
    pred_root = out / PREDICTIONS
    if pred_root.exists() and not pred_root.is_dir():  # before anything is removed or staged
        raise InputError(pred_root, None, "a file where the run's predictions/ folder belongs; move it away")
    staging = out / f".{PREDICTIONS}.{os.getpid()}.tmp"
    for left in out.glob(f".{PREDICTIONS}.*.tmp"):  # an earlier finalize killed while writing
        shutil.rmtree(left, ignore_errors=True)
    written = bench.write_predictions(staging, detections)
    derived = [out / name for name in getattr(bench, "derived_outputs", ())]
    for stale in (out / RESULT, out / RECORDS, out / PLOT, *derived):
        # Without --plot an old figure would sit beside the new result; only facebench writes these names.
        stale.unlink(missing_ok=True)
    if pred_root.exists():
        shutil.rmtree(pred_root)  # only facebench writes here; stale files would be read as predictions
    os.replace(staging, pred_root)
    return pred_root / Path(written).relative_to(staging)


def finalize(out: Path, sources: Sequence[Path] | None = None, *, data_root: str | None = None,
             label: str | None = None, bench: Any = None, plot: bool = True) -> RunResult:
    """Merge every cached record of the run in `sources` (default: `out`), write predictions, score, save.

    `bench` replaces the registered benchmark the manifest names (Python API: a custom Benchmark object).
    """
    # a folder named twice would count its shards' timing twice
    sources = list(dict.fromkeys(Path(src).absolute() for src in (sources or [out])))
    manifests = [read_manifest(src) for src in sources]
    first = manifests[0]
    for src, other in zip(sources[1:], manifests[1:]):
        _check_mergeable(src, other, sources[0], first)
    out = Path(out).absolute()  # recorded paths must not depend on the folder the run was started from
    with _exclusive(out):
        return _finalize(out, sources, first, data_root=data_root, label=label, bench=bench, plot=plot)


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold `out`'s finalize lock: two merges into one folder at once deleted each other's staged predictions
    and scored the half-written files (the second waits, then redoes the merge). No lock where fcntl is absent."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".finalize.lock", "a") as handle:  # closing it releases the lock
        _flock(handle, wait=True)
        yield


def _finalize(out: Path, sources: list[Path], first: Mapping[str, Any], *, data_root: str | None,
              label: str | None, bench: Any, plot: bool) -> RunResult:
    from facebench.datasets import get_benchmark
    from facebench.results import write_document

    det = first["detector"]
    if bench is None:
        bench = get_benchmark(first["benchmark"]["name"], data_root or first["benchmark"].get("data_root"))
    refs = bench.images()
    records: dict[str, ImageRecord] = {}
    metas: list[dict[str, Any]] = []
    for src in sources:
        directory = cache_dir(src, bench.name, det["config_hash"])
        for record in PredictionCache(directory, "merge").load().values():
            known = records.get(record.id)
            if known is None or (known.status != "ok" and record.status == "ok"):
                records[record.id] = record
        for meta_path in sorted(directory.glob("part-*.meta.json")):
            try:
                metas.append(json.loads(meta_path.read_text()))
            except (OSError, ValueError, RecursionError):
                warn(f"{meta_path}: unreadable shard metadata (timing of that shard left out)")
    missing = [ref.id for ref in refs if ref.id not in records]
    if missing:
        others = sorted({part.parent.name for src in sources for part in (src / "cache" / bench.name).glob(
            "*/part-*.jsonl") if part.parent.name != det["config_hash"]})
        hint = (f"; the cache also holds records of {len(others)} other detector configuration"
                f"{'s' * (len(others) != 1)} ({', '.join(others[:3])}): shards run with other options, another "
                f"detector or a changed checkpoint into one folder do not merge, and run.json names the last "
                f"({_options_text(det)}, {det['config_hash']})") if others else ""
        raise InputError(sources[0], None, f"{len(missing)} of {len(refs)} images have no cached detections yet "
                                           f"(first: {missing[0]}); finish every shard, then merge again{hint}")
    ordered = [records[ref.id] for ref in refs]
    unreadable = [r.id for r in ordered if r.status != "ok"]
    predictions = _replace_predictions(out, bench, {r.id: r.boxes for r in ordered})
    run_info = {
        "images": len(refs), "images_with_detections": sum(1 for r in ordered if len(r.boxes)),
        "detections": int(sum(len(r.boxes) for r in ordered)),
        "unreadable_images": {"count": len(unreadable), "ids": unreadable},
        "num_shards": first.get("num_shards", 1), "sources": [str(s.absolute()) for s in sources],
        "cache": str(cache_dir(out, bench.name, det["config_hash"])), "predictions": str(predictions),
        "prediction_format": bench.prediction_format,
    }
    extra = {"detector": {k: det.get(k) for k in ("name", "options", "config_hash", "weights_sha256", "class",
                                                  "input_policy", "precision", "provenance") if k in det},
             "timing": _timing_block(ordered, metas, int(first.get("batch_size", 1)), det),
             "run": run_info, "dataset": first["benchmark"]}
    scored = bench.evaluate(predictions)
    out.mkdir(parents=True, exist_ok=True)
    if scored is None:
        write_json_atomic(out / "run-summary.json", {**extra, "evaluation": "not wired"})
        table = (f"{bench.name}: predictions written to {predictions}; scoring for this benchmark is not wired "
                 f"yet (its protocol module is not available), so no result JSON was written")
        return RunResult(out, predictions, None, None, table, None, unreadable)
    document = scored.document(extra)
    result_path = write_document(document, out / RESULT)
    scored.save_records(out / RECORDS)
    try:
        if plot:
            scored.plot(out / PLOT, label or det["name"])
    except Exception as exc:  # noqa: BLE001 - a plotting backend problem must not lose the scored result
        warn(f"could not draw {out / PLOT}: {type(exc).__name__}: {exc}")
    table = scored.table()
    provenance = det.get("provenance") or {}
    if provenance.get("comparable") is False:
        table += f"\nweights: {provenance.get('label', 'not comparable with the paper recipe')}"
    return RunResult(out, predictions, result_path, scored.metrics, table, document, unreadable)


# --------------------------------------------------------------------------------------------------- run
@dataclass
class RunRequest:
    """Everything `facebench run` was asked to do."""

    detector: str
    benchmark: str = "sample"
    data_root: str | None = None
    out: Path | None = None
    device: str = "cpu"
    batch_size: int = 1
    num_shards: int | None = None
    shard_id: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = True
    #: a Benchmark object to use instead of the registered `benchmark` (Python API)
    bench: Any = None
    plot: bool = True


def default_out(detector: str, benchmark: str) -> Path:
    """`runs/<detector>-<benchmark>` in the current folder."""
    return Path("runs") / f"{detector}-{benchmark}"


def _distributed() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) under torchrun with more than one process, else None."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def run(request: RunRequest) -> RunResult | ShardOutcome:
    """Run a detector over a benchmark: shard, infer (resuming from the cache), then merge and score."""
    from facebench.datasets import get_benchmark

    if request.batch_size < 1:
        raise InputError(None, None, f"--batch-size must be >= 1, got {request.batch_size}")
    dist = _distributed()
    device = request.device
    if dist is not None:
        if request.num_shards is not None or request.shard_id is not None:
            raise InputError(None, None, "--num-shards/--shard-id cannot be combined with torchrun (the ranks "
                                         "are the shards)")
        rank, world, local_rank = dist
        num_shards, shard_id = world, rank
        if device == "cuda":
            device = f"cuda:{local_rank}"
    else:
        if request.num_shards is not None and request.num_shards < 1:
            raise InputError(None, None, f"--num-shards must be >= 1, got {request.num_shards}")
        if (request.num_shards is None) != (request.shard_id is None) and request.num_shards not in (None, 1):
            raise InputError(None, None, "--num-shards and --shard-id go together")
        if request.num_shards is None and request.shard_id not in (None, 0):
            raise InputError(None, None, f"--shard-id {request.shard_id} needs --num-shards N (the shard count)")
        num_shards, shard_id = request.num_shards or 1, request.shard_id or 0
    bench = request.bench or get_benchmark(request.benchmark, request.data_root)
    out = request.out or default_out(request.detector, bench.name)
    refs = bench.images()
    _check_same_data(out, bench.describe())
    start, stop = shard_bounds(len(refs), num_shards, shard_id)

    group = _init_process_group() if dist is not None else None
    try:
        detector = build_detector(request.detector, request.options, device)
        info = detector_info(request.detector, detector)
        described = bench.describe()
        write_json_atomic(out / MANIFEST, {"detector": info, "benchmark": described, "num_shards": num_shards,
                                           "batch_size": request.batch_size, "facebench_run": 1})
        _record_data(out, described)
        cache = PredictionCache(cache_dir(out, bench.name, info["config_hash"]), f"{shard_id:04d}-of-{num_shards:04d}")
        desc = request.detector if num_shards == 1 else f"{request.detector} [{shard_id + 1}/{num_shards}]"
        show = request.progress and (dist is None or dist[0] == 0)
        outcome = infer_shard(detector, bench, refs[start:stop], cache, batch_size=request.batch_size,
                              progress=show, desc=desc)
        outcome.shard = (shard_id, num_shards)
        _write_meta(cache, outcome, device, getattr(detector, "threads", None), request.batch_size)
        if group is not None:
            group.barrier()
            if dist[0] != 0:
                return outcome
        elif num_shards > 1:
            return outcome
        return finalize(out, bench=request.bench, plot=request.plot)
    finally:
        if group is not None:
            group.destroy_process_group()


_DATA_KEYS = ("data_root", "ground_truth_dir", "images_dir", "annotations")


DATA_RECORD = "data.json"  # beside a benchmark's cache: the data its records were computed on


def _check_same_data(out: Path, benchmark: Mapping[str, Any]) -> None:
    """Refuse to resume a run folder made on other data: its cache is keyed by image id and would serve
    detections of other pixels for the same ids. The data is recorded beside each benchmark's cache (older
    folders: in the manifest), so a run of another benchmark in between, or a damaged manifest, keeps the guard."""
    cache = out / "cache" / str(benchmark["name"])
    record = cache / DATA_RECORD
    previous: Any = None
    if record.is_file():
        try:
            previous = json.loads(record.read_text())
        except (OSError, ValueError, RecursionError):
            previous = None
    if not isinstance(previous, dict):
        try:
            manifest = read_manifest(out)
        except (InputError, OSError):  # no earlier run here, or a damaged manifest the run rewrites
            manifest = {}
        previous = manifest.get("benchmark")
        if not isinstance(previous, dict) or previous.get("name") != benchmark.get("name"):
            previous = None
    differs = _data_difference(previous, benchmark) if previous is not None and cache.is_dir() else None
    if differs:
        key, was, now = differs
        raise InputError(record if record.is_file() else out / MANIFEST, None,
                         f"this run folder holds a run of {benchmark['name']} on other data ({key} was {was}, now "
                         f"{now}); its cached detections would be reused for these images: use another --out, or "
                         f"delete {out / 'cache'} to start again")


def _data_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[str, Any, Any] | None:
    """The first data setting (root, ground truth, images, annotations) both record with different values."""
    for key in _DATA_KEYS:
        if a.get(key) is not None and b.get(key) is not None and a[key] != b[key]:
            return key, a[key], b[key]
    return None


def _record_data(out: Path, benchmark: Mapping[str, Any]) -> None:
    """Record the data of a benchmark's cache beside it, once (what _check_same_data compares against)."""
    record = out / "cache" / str(benchmark["name"]) / DATA_RECORD
    if not record.is_file():
        write_json_atomic(record, {key: benchmark[key] for key in _DATA_KEYS if key in benchmark})


def _write_meta(cache: PredictionCache, outcome: ShardOutcome, device: str, threads: int | None,
                batch_size: int = 1) -> None:
    meta_path = cache.path.with_suffix(".meta.json")
    previous: dict[str, Any] = {}
    if meta_path.is_file():
        try:
            previous = json.loads(meta_path.read_text())
        except (OSError, ValueError, RecursionError):
            previous = {}
        if not isinstance(previous, dict):
            previous = {}
    rss = [v for v in (previous.get("peak_rss_mib"), peak_rss_mib()) if v is not None]
    gpu = [v for v in (previous.get("peak_cuda_mib"), cuda_peak_mib(device)) if v is not None]
    write_json_atomic(meta_path, {
        "shard": list(outcome.shard), "images": outcome.n_images, "computed": outcome.computed,
        "from_cache": outcome.cached, "unreadable": len(outcome.unreadable),
        "wall_s": float(previous.get("wall_s", 0.0)) + outcome.wall_s, "device": device,
        "peak_rss_mib": max(rss) if rss else None, "peak_cuda_mib": max(gpu) if gpu else None,
        "hardware": hardware(device, threads), "runs": int(previous.get("runs", 0)) + 1,
        # the batch sizes the cached times were measured with (a resume may use another)
        "batch_sizes": sorted(set(previous.get("batch_sizes", [])) | ({batch_size} if outcome.computed else set())),
    })


class _ProcessGroup:
    """torch.distributed used only as a barrier (gloo works on every device)."""

    def __init__(self) -> None:
        import datetime

        import torch.distributed as dist

        self.dist = dist
        if not dist.is_initialized():
            # a long inference on one rank must not time the others out at the barrier
            dist.init_process_group("gloo", timeout=datetime.timedelta(hours=24))

    def barrier(self) -> None:
        self.dist.barrier()

    def destroy_process_group(self) -> None:
        if self.dist.is_initialized():
            self.dist.destroy_process_group()


def _init_process_group() -> _ProcessGroup:
    return _ProcessGroup()
