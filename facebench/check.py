"""The CI regression gate: compare a result with a stored baseline, metric by metric, within a tolerance.

A metric fails when result < baseline - tolerance (all gated metrics are higher-is-better fractions). Results
are only compared with baselines of the same benchmark, ground truth, protocol version and convention;
anything else is an input error, not a pass or a fail. Exit codes (the CLI): 0 pass, 1 regression, 2 bad input.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from facebench.errors import InputError
from facebench.store import FAMILY_METRICS, StoredResult, field_line, find_result_files, load_result

DEFAULT_TOLERANCE = 0.002
EXIT_PASS, EXIT_REGRESSION, EXIT_INPUT = 0, 1, 2
# Float slack in the verdict: a drop of exactly the tolerance passes (0.549 - 0.05 rounds above 0.499).
_SLACK = 1e-12
# The metrics the gate may compare: higher-is-better fractions. Counts (n_fp, roc_points) and percentages are
# refused rather than gated the wrong way round or on the wrong scale.
GATEABLE: dict[str, re.Pattern] = {
    "wider": re.compile(r"easy|medium|hard"),
    "fddb": re.compile(r"(disc|cont)_tpr_at_[0-9]+fp(_strict)?"),
    "face-eval": re.compile(r"ap|ap_11point|precision_at_last_detection|recall_at_last_detection"),
}
_NAMES = ("benchmark", "ground truth (ground_truth_sha256)", "protocol (protocol.name)",
          "protocol version (protocol.version)", "protocol convention (settings)")


@dataclass(frozen=True)
class MetricCheck:
    """One metric's verdict."""

    metric: str
    baseline: float | None
    result: float | None
    tolerance: float

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.result is None:
            return None
        return self.result - self.baseline

    @property
    def status(self) -> str:
        """ok | FAIL | improved | no value (the result's metric is null) | no baseline (baseline has none)."""
        if self.baseline is None:
            return "no baseline"
        if self.result is None:
            return "no value"
        delta = self.result - self.baseline
        if delta < -self.tolerance - _SLACK:
            return "FAIL"
        if delta > self.tolerance + _SLACK:
            return "improved"
        return "ok"

    @property
    def failed(self) -> bool:
        return self.status in ("FAIL", "no value")


@dataclass(frozen=True)
class CheckReport:
    """All metric verdicts of one result against one baseline."""

    result_path: str
    baseline_path: str
    checks: tuple[MetricCheck, ...]
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not any(c.failed for c in self.checks)

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.passed else EXIT_REGRESSION

    def table(self) -> str:
        """The readable verdict table (values as fractions, delta also in points x100)."""
        def fmt(value: float | None) -> str:
            return "-" if value is None else f"{value:.6f}"

        header = ("metric", "baseline", "result", "delta", "allowed", "status")
        rows = [header]
        for c in self.checks:
            delta = "-" if c.delta is None else f"{c.delta:+.6f} ({100 * c.delta:+.3f} pt)"
            rows.append((c.metric, fmt(c.baseline), fmt(c.result), delta, f"-{c.tolerance:g}", c.status))
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = [f"result:   {self.result_path}", f"baseline: {self.baseline_path}"]
        lines += [f"note: {n}" for n in self.notes]
        for i, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(widths[j]) if j == 0 or j == 5 else cell.rjust(widths[j])
                                   for j, cell in enumerate(row)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        below = [c.metric for c in self.checks if c.status == "FAIL"]
        null = [c.metric for c in self.checks if c.status == "no value"]
        verdicts = ([f"{', '.join(below)} below baseline - tolerance"] if below else []) + \
            ([f"{', '.join(null)} null in the result (no value to compare)"] if null else [])
        n = len(self.checks)
        lines.append(f"FAILED: {'; '.join(verdicts)}" if verdicts else
                     f"PASSED: {n} metric{'s' * (n != 1)} within tolerance")
        return "\n".join(lines)


def _baseline_error(baseline: StoredResult, field: str, message: str) -> InputError:
    """An InputError at the line of a baseline field."""
    return InputError(baseline.path, field_line(baseline.path, field), message)


def check_block(baseline: StoredResult) -> dict:
    """The baseline's `check` object ({} when absent); anything else is an InputError naming its line."""
    block = baseline.doc.get("check")
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise _baseline_error(baseline, "check", f"field 'check' must be an object, got {type(block).__name__}")
    metrics = block.get("metrics")
    if metrics is not None and (not isinstance(metrics, list) or not metrics
                                or not all(isinstance(m, str) and m for m in metrics)):
        raise _baseline_error(baseline, "check.metrics", "field 'check.metrics' must be a non-empty list of "
                                                         f"metric names, got {json_text(metrics)}")
    if "tolerance" in block:
        validate_tolerance(block["tolerance"], baseline.path, field_line(baseline.path, "check.tolerance"),
                           "field 'check.tolerance'")
    return block


def validate_tolerance(value, path: str | os.PathLike | None = None, line: int | None = None,
                       what: str = "--tolerance") -> float:
    """A tolerance must be a finite number >= 0 (NaN or inf would turn the gate off)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InputError(path, line, f"{what} must be a finite number >= 0, got {value!r}")
    return float(value)


def gated_metrics(baseline: StoredResult) -> list[str]:
    """The metrics a baseline gates: its `check.metrics` list, else the benchmark's headline metrics."""
    block = check_block(baseline)
    if block.get("metrics"):
        return list(block["metrics"])
    names = FAMILY_METRICS.get(baseline.family)
    if names:
        return list(names)
    return [k for k, v in baseline.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]


def incompatibilities(result: StoredResult, baseline: StoredResult) -> list[str]:
    """Why two results cannot be compared (empty when they can)."""
    problems = []
    for name, a, b in zip(_NAMES, result.comparable_key(), baseline.comparable_key()):
        if a != b:
            short = (lambda v: v[:12] if len(v) == 64 else repr(v))
            problems.append(f"{name} differs: result {short(a)}, baseline {short(b)}")
    return problems


def json_text(value) -> str:
    """A value as JSON shows it (null, a list ...), for messages."""
    return json.dumps(value)[:60]


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def check_result(result: StoredResult, baseline: StoredResult, tolerance: float | None = None,
                 metrics: Sequence[str] | None = None) -> CheckReport:
    """Verdict per gated metric; InputError when result and baseline are not comparable."""
    problems = incompatibilities(result, baseline)
    if problems:
        raise InputError(result.path, None, f"not comparable with baseline {baseline.path}: " + "; ".join(problems))
    block = check_block(baseline)
    if tolerance is None:
        tolerance = float(block.get("tolerance", DEFAULT_TOLERANCE))
    tolerance = validate_tolerance(tolerance)
    names = list(metrics) if metrics else gated_metrics(baseline)
    unknown = [m for m in names if m not in baseline.metrics]
    if unknown:
        raise InputError(baseline.path, None, f"baseline has no metric {', '.join(repr(m) for m in unknown)} "
                                              f"(it has {', '.join(sorted(baseline.metrics))})")
    pattern = GATEABLE.get(baseline.family)
    counts = [m for m in names if pattern is not None and not pattern.fullmatch(m)]
    if counts:
        allowed = [m for m in baseline.metrics if pattern.fullmatch(m)]
        raise InputError(baseline.path, None, f"metric {', '.join(repr(m) for m in counts)} cannot be gated: the "
                                              "gate compares higher-is-better fractions only (here: "
                                              f"{', '.join(allowed)})")
    absent = [m for m in names if m not in result.metrics]
    if absent:
        raise InputError(result.path, field_line(result.path, "metrics"), f"result has no metric "
                         f"{', '.join(repr(m) for m in absent)} (it has {', '.join(sorted(result.metrics))})")
    for name in names:
        if _number(baseline.metrics[name]) is None:
            raise _baseline_error(baseline, f"metrics.{name}", f"baseline metric '{name}' is "
                                  f"{json_text(baseline.metrics[name])}, so it cannot be gated (regenerate the "
                                  "baseline, or gate other metrics with --metric or check.metrics)")
    checks = tuple(MetricCheck(m, _number(baseline.metrics.get(m)), _number(result.metrics.get(m)), tolerance)
                   for m in names)
    notes = []
    if result.detector_id != baseline.detector_id:
        notes.append(f"detector differs: result {result.detector_name!r}, baseline {baseline.detector_name!r}")
    return CheckReport(str(result.path), str(baseline.path), checks, tuple(notes))


def _same_detector(a: StoredResult, b: StoredResult) -> bool:
    return a.detector_id == b.detector_id


def _same_inputs(a: StoredResult, b: StoredResult) -> bool:
    """Same prediction files: equal detections sha256, or the same predictions/detections path."""
    if a.doc.get("detections_sha256") and a.doc.get("detections_sha256") == b.doc.get("detections_sha256"):
        return True
    for key in ("predictions", "detections"):
        left, right = a.doc["settings"].get(key), b.doc["settings"].get(key)
        if left and left == right:
            return True
    return False


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def find_baseline(result: StoredResult, baselines: str | os.PathLike) -> StoredResult:
    """The baseline for a result: the file itself, or in a folder the one comparable result (when several are
    comparable: the same detector, else the same prediction files)."""
    path = Path(baselines)
    if path.is_file():
        if _same_file(path, result.path):
            raise InputError(path, None, "the baseline is the result itself; pass an accepted result")
        return load_result(path)
    if not path.exists():
        raise InputError(path, None, "baseline file or folder not found")
    # The result may sit inside the folder (results/ci/x/result.json under results/): never its own baseline.
    candidates = [load_result(p) for p in find_result_files(path) if not _same_file(p, result.path)]
    comparable = [c for c in candidates if not incompatibilities(result, c)]
    for same_entry in (_same_detector, _same_inputs):  # tie-breaks, most specific first
        if len(comparable) > 1:
            comparable = [c for c in comparable if same_entry(result, c)] or comparable
    if len(comparable) == 1:
        return comparable[0]
    if not comparable:
        raise InputError(path, None, f"no baseline for {result.benchmark} with this ground truth, protocol version "
                                     f"and convention ({len(candidates)} result files looked at)")
    names = ", ".join(c.path.name for c in comparable)
    if not any(_same_detector(result, c) for c in comparable):
        raise InputError(path, None, f"no baseline for detector '{result.detector_id}' here, and several other "
                                     f"comparable results ({names}); store an accepted result of it in this folder "
                                     "or pass one file with --baseline")
    raise InputError(path, None, f"several baselines match ({names}); pass one file with --baseline")
