"""The CI gate: `facebench check RESULT --baseline BASELINE [--tolerance]` verdicts and exit codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facebench.check import DEFAULT_TOLERANCE, MetricCheck, check_result, find_baseline
from facebench.errors import InputError
from facebench.store import load_result
from tests.test_store import GT_B, synthetic_document, write

REPO = Path(__file__).resolve().parent.parent
BASE = {"easy": 0.90, "medium": 0.85, "hard": 0.70}


def exit_code(args: list[str]) -> int:
    """Run the real CLI entry point in-process and return its exit status."""
    from facebench.cli import main

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture()
def baseline(tmp_path: Path) -> Path:
    return write(tmp_path / "baseline.json", synthetic_document(values=BASE))


def result_file(tmp_path: Path, name: str = "result.json", **changes: float) -> Path:
    return write(tmp_path / name, synthetic_document(values={**BASE, **changes}))


def test_metric_verdicts() -> None:
    assert MetricCheck("hard", 0.70, 0.699, 0.002).status == "ok"
    assert MetricCheck("hard", 0.70, 0.698, 0.002).status == "ok"  # exactly at the limit passes
    assert MetricCheck("hard", 0.70, 0.6979, 0.002).status == "FAIL"
    assert MetricCheck("hard", 0.70, 0.71, 0.002).status == "improved"
    assert MetricCheck("hard", 0.70, None, 0.002).failed
    assert not MetricCheck("hard", None, 0.5, 0.002).failed


@pytest.mark.parametrize("baseline_value, tolerance", [(0.549, 0.05), (0.83, 0.01), (0.3, 0.1), (0.7, 0.02)])
def test_a_drop_of_exactly_the_tolerance_passes_despite_rounding(baseline_value: float, tolerance: float) -> None:
    drop = round(baseline_value - tolerance, 6)  # the value a 3-decimal result file holds
    assert MetricCheck("hard", baseline_value, drop, tolerance).status == "ok"
    assert MetricCheck("hard", baseline_value, round(drop - 1e-6, 7), tolerance).status == "FAIL"
    assert MetricCheck("hard", drop, baseline_value, tolerance).status == "ok"


def test_identical_result_passes(tmp_path: Path, baseline: Path, capsys) -> None:
    assert exit_code(["check", str(result_file(tmp_path)), "--baseline", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "PASSED: 3 metrics within tolerance" in out
    assert out.count(" ok") == 3


def test_deliberately_worse_result_fails_with_a_readable_table(tmp_path: Path, baseline: Path, capsys) -> None:
    worse = result_file(tmp_path, hard=0.69, easy=0.899)
    assert exit_code(["check", str(worse), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("metric"))
    assert lines[header].split() == ["metric", "baseline", "result", "delta", "allowed", "status"]
    rows = {line.split()[0]: line for line in lines[header + 2:header + 5]}
    assert rows["hard"].split()[1:3] == ["0.700000", "0.690000"]
    assert "-0.010000 (-1.000 pt)" in rows["hard"] and rows["hard"].endswith("FAIL")
    assert rows["easy"].endswith("ok") and rows["medium"].endswith("ok")
    assert "FAILED: hard below baseline - tolerance" in out


def test_tolerance_option_and_baseline_stored_tolerance(tmp_path: Path, baseline: Path) -> None:
    worse = result_file(tmp_path, hard=0.69)
    assert exit_code(["check", str(worse), "--baseline", str(baseline), "--tolerance", "0.02"]) == 0
    assert exit_code(["check", str(worse), "--baseline", str(baseline), "--tolerance", "0"]) == 1
    doc = synthetic_document(values=BASE)
    doc["check"] = {"tolerance": 0.05, "metrics": ["hard"]}
    stored = write(tmp_path / "with_check.json", doc)
    report = check_result(load_result(worse), load_result(stored))
    assert [c.metric for c in report.checks] == ["hard"] and report.passed
    assert report.checks[0].tolerance == 0.05
    assert check_result(load_result(worse), load_result(baseline)).checks[0].tolerance == DEFAULT_TOLERANCE


def test_metric_option_and_unknown_metric(tmp_path: Path, baseline: Path, capsys) -> None:
    worse = result_file(tmp_path, hard=0.5)
    assert exit_code(["check", str(worse), "--baseline", str(baseline), "--metric", "easy"]) == 0
    assert exit_code(["check", str(worse), "--baseline", str(baseline), "--metric", "ap50"]) == 2
    assert "baseline has no metric 'ap50'" in capsys.readouterr().err


def test_missing_metric_in_result_fails(tmp_path: Path, baseline: Path) -> None:
    doc = synthetic_document(values=BASE)
    doc["metrics"]["hard"] = None  # e.g. a setting without faces
    report = check_result(load_result(write(tmp_path / "r.json", doc)), load_result(baseline))
    assert not report.passed and [c.status for c in report.checks] == ["ok", "ok", "no value"]
    assert "FAILED: hard null in the result (no value to compare)" in report.table()
    assert "below baseline" not in report.table()


def test_a_gated_metric_absent_from_the_result_is_bad_input(tmp_path: Path, capsys) -> None:
    doc = synthetic_document(benchmark="afw", values={"ap": 0.9})
    doc["metrics"]["ap_11point"] = 0.88
    base = write(tmp_path / "base.json", doc)
    result = write(tmp_path / "r.json", synthetic_document(benchmark="afw", values={"ap": 0.9}))
    assert exit_code(["check", str(result), "--baseline", str(base), "--metric", "ap_11point"]) == 2
    err = capsys.readouterr().err
    assert "r.json" in err and "result has no metric 'ap_11point'" in err and err.count("\n") == 1


@pytest.mark.parametrize("metric", ["n_fp", "n_detections_unknown_image", "ap_percent"])
def test_counts_and_percentages_cannot_be_gated(tmp_path: Path, capsys, metric: str) -> None:
    doc = synthetic_document(benchmark="afw", values={"ap": 0.9})
    doc["metrics"].update(n_fp=10749, n_detections_unknown_image=0, ap_percent=90.0, recall_at_last_detection=0.95)
    base = write(tmp_path / "base.json", doc)
    worse = dict(doc, metrics=dict(doc["metrics"], n_fp=21498, n_detections_unknown_image=500, ap_percent=80.0))
    result = write(tmp_path / "r.json", worse)
    assert exit_code(["check", str(result), "--baseline", str(base), "--metric", metric]) == 2
    err = capsys.readouterr().err
    assert f"metric '{metric}' cannot be gated" in err and "higher-is-better fractions" in err
    assert "ap, recall_at_last_detection" in err
    assert exit_code(["check", str(result), "--baseline", str(base), "--metric", "recall_at_last_detection"]) == 0


def test_the_result_is_never_its_own_baseline(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "results"
    write(folder / "accepted.json", synthetic_document(values=BASE, label="det-accepted"))
    result = write(folder / "ci" / "det" / "result.json", synthetic_document(values={**BASE, "hard": 0.64}))
    assert find_baseline(load_result(result), folder).path.name == "accepted.json"
    assert exit_code(["check", str(result), "--baseline", str(folder)]) == 1
    assert "hard below baseline - tolerance" in capsys.readouterr().out
    assert exit_code(["check", str(result), "--baseline", str(result)]) == 2
    assert "the baseline is the result itself" in capsys.readouterr().err


@pytest.mark.parametrize("changes, reason", [
    (dict(gt=GT_B), "ground truth"),
    (dict(version="2"), "protocol version"),
    (dict(semantics="python-port"), "protocol convention"),
    (dict(benchmark="fddb", values={"disc_tpr_at_1000fp": 0.9, "cont_tpr_at_1000fp": 0.7}), "benchmark"),
])
def test_incomparable_result_is_an_input_error(tmp_path: Path, baseline: Path, capsys, changes: dict,
                                               reason: str) -> None:
    other = write(tmp_path / "other.json", synthetic_document(**({"values": BASE} | changes)))
    assert exit_code(["check", str(other), "--baseline", str(baseline)]) == 2
    err = capsys.readouterr().err
    assert f"{reason}" in err and "not comparable" in err and err.count("\n") == 1


def test_bad_input_exit_codes(tmp_path: Path, baseline: Path) -> None:
    assert exit_code(["check", str(tmp_path / "absent.json"), "--baseline", str(baseline)]) == 2
    (tmp_path / "broken.json").write_text("{")
    assert exit_code(["check", str(tmp_path / "broken.json"), "--baseline", str(baseline)]) == 2
    assert exit_code(["check", str(result_file(tmp_path)), "--baseline", str(baseline), "--tolerance", "-1"]) == 2


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-0.5"])
def test_non_finite_or_negative_tolerance_option_is_refused(tmp_path: Path, baseline: Path, capsys,
                                                            value: str) -> None:
    worse = result_file(tmp_path, hard=0.2)  # would pass with a NaN or infinite tolerance: the gate turned off
    assert exit_code(["check", str(worse), "--baseline", str(baseline), f"--tolerance={value}"]) == 2
    err = capsys.readouterr().err
    assert "--tolerance must be a finite number >= 0" in err and err.count("\n") == 1


@pytest.mark.parametrize("block, needle", [
    ({"tolerance": float("nan")}, "field 'check.tolerance' must be a finite number >= 0"),
    ({"tolerance": float("inf")}, "field 'check.tolerance' must be a finite number >= 0"),
    ({"tolerance": "0.001"}, "field 'check.tolerance' must be a finite number >= 0"),
    ({"metrics": "hard"}, "field 'check.metrics' must be a non-empty list"),
    ([1], "field 'check' must be an object"),
])
def test_bad_stored_check_block_is_an_input_error_at_its_line(tmp_path: Path, capsys, block, needle) -> None:
    doc = synthetic_document(values={**BASE, "hard": 0.99})
    doc["check"] = block
    stored = write(tmp_path / "stored.json", doc)
    assert exit_code(["check", str(result_file(tmp_path)), "--baseline", str(stored)]) == 2
    err = capsys.readouterr().err
    key = "check" if isinstance(block, list) else next(iter(block))
    line = int(err.split(":")[2])
    assert err.startswith(f"error: {stored}:") and needle in err and err.count("\n") == 1
    assert f'"{key}":' in stored.read_text().splitlines()[line - 1]


def test_null_baseline_metric_is_an_input_error_naming_file_and_metric(tmp_path: Path, capsys) -> None:
    doc = synthetic_document(values=BASE)
    doc["metrics"]["hard"] = None
    stored = write(tmp_path / "nullb.json", doc)
    worse = result_file(tmp_path, hard=0.1)
    assert exit_code(["check", str(worse), "--baseline", str(stored)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {stored}:") and "baseline metric 'hard' is null" in err
    line = int(err.split(":")[2])
    assert '"hard": null' in stored.read_text().splitlines()[line - 1]
    assert exit_code(["check", str(worse), "--baseline", str(stored), "--metric", "easy"]) == 0


def test_missing_baseline_says_baseline_not_found(tmp_path: Path, capsys) -> None:
    assert exit_code(["check", str(result_file(tmp_path)), "--baseline", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert "nope.json: baseline file or folder not found" in err and "results folder" not in err


def test_baseline_folder_picks_the_comparable_one(tmp_path: Path) -> None:
    folder = tmp_path / "baselines"
    write(folder / "a.json", synthetic_document(values=BASE, label="det"))
    write(folder / "b.json", synthetic_document(values=BASE, label="other"))
    write(folder / "c.json", synthetic_document(values=BASE, label="det", semantics="python-port"))
    result = load_result(result_file(tmp_path))
    assert find_baseline(result, folder).path.name == "a.json"  # comparable and same detector
    (folder / "a.json").unlink()
    assert find_baseline(result, folder).path.name == "b.json"  # the only comparable one
    write(folder / "d.json", synthetic_document(values=BASE, label="third"))
    with pytest.raises(InputError, match="no baseline for detector 'det' here, and several other"):
        find_baseline(result, folder)
    write(folder / "a.json", synthetic_document(values=BASE, label="det"))
    write(folder / "a2.json", synthetic_document(values=BASE, label="det"))
    with pytest.raises(InputError, match=r"several baselines match \(a.json, a2.json\)"):
        find_baseline(result, folder)
    (folder / "a.json").unlink()
    (folder / "a2.json").unlink()
    same_files = synthetic_document(values=BASE, label="renamed")
    same_files["settings"]["predictions"] = "/data/preds"
    write(folder / "e.json", same_files)
    renamed = synthetic_document(values=BASE, label="new-name")
    renamed["settings"]["predictions"] = "/data/preds"
    assert find_baseline(load_result(write(tmp_path / "n.json", renamed)), folder).path.name == "e.json"


# ----------------------------------------------------------------------------------------------------- real data

def _wider_result(shared_data: Path, drop_every: int = 0) -> dict:
    """yolov7-tiny's real predictions, optionally with every n-th image's predictions removed."""
    from protocols import wider_face
    from protocols.wider_face.predictions import WiderPredictions

    gt = wider_face.load_ground_truth(shared_data / "widerface" / "ground_truth")
    folder = shared_data / "widerface" / "results" / "yolov7-tiny-leak_derronqi" / "widerface_txt"
    preds = wider_face.read_predictions(folder, gt, quiet=True)
    if drop_every:
        counts = np.diff(preds.offsets)
        image = np.repeat(np.arange(gt.n_images), counts)
        keep = image % drop_every != 0
        offsets = np.concatenate([[0], np.cumsum(np.bincount(image[keep], minlength=gt.n_images))])
        preds = WiderPredictions(boxes=preds.boxes[keep], offsets=offsets, semantics=preds.semantics,
                                 source=preds.source + f" (every {drop_every}th image emptied)")
    return wider_face.evaluate(gt, preds, breakdown=False).to_document()


def test_real_result_against_committed_baseline(tmp_path: Path, shared_data: Path, capsys) -> None:
    """The real run reproduces its committed baseline exactly; a deliberately worse one fails the gate."""
    baseline = REPO / "results" / "baselines" / "widerface-val__yolov7-tiny-leak__official.json"
    same = write(tmp_path / "same.json", _wider_result(shared_data))
    assert exit_code(["check", str(same), "--baseline", str(baseline), "--tolerance", "0"]) == 0
    worse = write(tmp_path / "worse.json", _wider_result(shared_data, drop_every=10))
    assert exit_code(["check", str(worse), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "FAILED: easy, medium, hard below baseline - tolerance" in out  # each drops by about a tenth
    assert load_result(worse).metrics["hard"] < 0.829738522421083 - 0.05


def test_the_same_detector_outranks_the_same_prediction_files(tmp_path: Path) -> None:
    folder = tmp_path / "baselines"
    same_detector = synthetic_document(values=BASE, label="det")
    same_detector["settings"]["predictions"] = "/data/old"
    same_files = synthetic_document(values=BASE, label="other")
    same_files["settings"]["predictions"] = "/data/preds"
    write(folder / "a.json", same_detector)
    write(folder / "e.json", same_files)
    result = synthetic_document(values=BASE, label="det")
    result["settings"]["predictions"] = "/data/preds"
    assert find_baseline(load_result(write(tmp_path / "r.json", result)), folder).path.name == "a.json"
