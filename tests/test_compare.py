"""Paired bootstrap comparison: self-comparison, refusals naming the field, CLI, tied leaderboard ranks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facebench import bootstrap as bs
from facebench import compare as cmp
from facebench.errors import InputError
from tests.test_bootstrap import save_result, synthetic_face_eval_records, synthetic_wider


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def saved_pair(tmp_path_factory):
    """Two results on the same synthetic images: B adds confident background boxes to a third of them."""
    root = tmp_path_factory.mktemp("pair")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEBENCH_CACHE", str(root / "cache"))
        _, ((_, a), (_, b)) = synthetic_wider(root, 90, seed=11, extra_fp=(0, 30))
    return save_result(a, root / "a.json"), save_result(b, root / "b.json")


@pytest.fixture()
def pair(saved_pair, tmp_path):
    """A private copy of the saved pair (tests edit the files)."""
    import shutil

    copies = []
    for path in saved_pair:
        for source in (path, bs.records_path(path)):
            shutil.copy(source, tmp_path / source.name)
        copies.append(tmp_path / path.name)
    return tuple(copies)


def test_result_against_itself_is_a_zero_difference(pair):
    a, _ = pair
    comparison = cmp.compare_files(a, a, resamples=200, seed=1)
    assert [d.metric for d in comparison.differences] == ["easy", "medium", "hard"]
    for d in comparison.differences:
        assert d.difference == 0 and d.low == 0 and d.high == 0 and d.p_value == 1.0 and not d.significant


def test_extra_false_positives_are_a_significant_loss(pair):
    a, b = pair
    comparison = cmp.compare_files(a, b, resamples=400, seed=0)
    for d in comparison.differences:
        assert d.difference > 0 and d.low <= d.difference <= d.high
        assert d.significant and d.p_value < 0.01
    swapped = cmp.compare_files(b, a, resamples=400, seed=0)
    for d, s in zip(comparison.differences, swapped.differences):
        assert s.difference == pytest.approx(-d.difference) and s.low == pytest.approx(-d.high)


def test_paired_p_value():
    assert cmp.paired_p_value(np.zeros(99)) == 1.0
    assert cmp.paired_p_value(np.ones(99)) == pytest.approx(2 / 100)
    assert cmp.paired_p_value(np.r_[-np.ones(10), np.ones(90)]) == pytest.approx(2 * 11 / 101)
    assert cmp.paired_p_value(np.array([np.nan])) is None
    assert cmp.format_p_value(2 / 1001, 1000) == "<0.002" and cmp.format_p_value(0.5, 1000) == "0.500"


@pytest.mark.parametrize("edit, field", [
    (lambda d: d.update(ground_truth_sha256="f" * 64), "ground_truth_sha256"),
    (lambda d: d["settings"].update(semantics="python-port"), "settings.semantics"),
    (lambda d: d["settings"].update(ground_truth_version="2016"), "settings.ground_truth_version"),
    (lambda d: d["protocol"].update(name="face-eval"), "protocol.name"),
    (lambda d: d.update(benchmark="afw"), "benchmark"),
])
def test_incomparable_results_are_refused_naming_the_field(pair, tmp_path, edit, field):
    a, b = pair
    doc = json.loads(b.read_text())
    edit(doc)
    b.write_text(json.dumps(doc))
    with pytest.raises(InputError) as info:
        cmp.compare_files(a, b, resamples=20)
    message = str(info.value)
    assert message.startswith(f"cannot compare: {field} differs") and "\n" not in message


def test_input_paths_may_differ(pair):
    a, b = pair
    doc = json.loads(b.read_text())
    doc["settings"].update(predictions="/elsewhere", ground_truth_dir="/other/copy")
    b.write_text(json.dumps(doc))
    cmp.compare_files(a, b, resamples=20)


def test_missing_records_ask_to_rerun_eval(pair):
    a, b = pair
    bs.records_path(b).unlink()
    with pytest.raises(InputError, match=r"no per-image records .*re-run `facebench eval widerface"):
        cmp.compare_files(a, b, resamples=20)


def test_stale_records_of_another_run_are_refused(pair):
    """B's records copied beside A's JSON do not reproduce A's metrics: refused, not silently compared."""
    import shutil

    a, b = pair
    shutil.copy(bs.records_path(b), bs.records_path(a))
    with pytest.raises(InputError) as info:
        cmp.compare_files(a, b, resamples=20)
    message = str(info.value)
    assert message.startswith(str(bs.records_path(a))) and "do not belong to a.json" in message
    assert "stale" in message and "\n" not in message


def test_cli_compare_prints_and_writes(pair, tmp_path, capsys):
    import subprocess
    import sys

    from facebench.cli import main

    a, b = pair
    out = tmp_path / "cmp.json"
    main(["compare", str(a), str(b), "--resamples", "300", "--seed", "4", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "paired bootstrap over 90 images (300 resamples, seed 4)" in printed and "A - B" in printed
    doc = json.loads(out.read_text())
    assert doc["schema"] == "facebench.comparison/1" and doc["metrics"]["hard"]["significant"] is True
    for target, seed in ((a, "0"), (bs.records_path(b), "0"), (out, "-1")):  # inputs are never overwritten
        before = target.read_bytes()
        with pytest.raises(SystemExit) as info:
            main(["compare", str(a), str(b), "--seed", seed, "--out", str(target)])
        assert info.value.code == 2 and target.read_bytes() == before
        capsys.readouterr()
    bs.records_path(a).unlink()
    proc = subprocess.run([sys.executable, "-m", "facebench", "compare", str(a), str(b)], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "re-run `facebench eval" in proc.stderr


def test_tied_groups_and_statistical_ranks():
    base = synthetic_face_eval_records(800, seed=1)
    # A near-copy (a few flags flipped): tied with the base; a much worse one (half its TPs turned FP).
    rng = np.random.default_rng(0)
    flip = rng.random(len(base.tp)) < 0.003
    near = bs.FaceEvalRecords(base.image_ids, base.tp ^ flip, base.fp ^ flip, base.image_index,
                              base.positives_per_image)
    worse_tp = base.tp & (rng.random(len(base.tp)) < 0.5)
    worse = bs.FaceEvalRecords(base.image_ids, worse_tp, ~worse_tp, base.image_index, base.positives_per_image)
    entries = cmp.ranked_with_ties([worse, base, near], "ap", resamples=300)
    assert sorted(e.index for e in entries[:2]) == [1, 2] and entries[2].index == 0
    assert [e.rank for e in entries] == [1, 1, 3] and [e.tied for e in entries] == [True, True, False]
    for e in entries:
        assert e.low <= e.value <= e.high
    groups = cmp.tied_groups([worse, base, near], "ap", resamples=300)
    assert sorted(groups[0]) == [1, 2] and groups[1] == [0]


def test_tied_groups_refuse_incomparable_files(pair, tmp_path):
    a, b = pair
    doc = json.loads(b.read_text())
    doc["settings"]["semantics"] = "python-port"
    b.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="settings.semantics"):
        cmp.tied_groups([a, b], "hard", resamples=20)


def test_real_yolov7_beats_retinaface_mobilenet_on_hard(shared_data):
    from protocols.wider_face import evaluate, load_ground_truth, read_predictions
    from tests.conftest import require

    gt = load_ground_truth(require(shared_data / "widerface" / "ground_truth"))
    results = []
    for folder in ("yolov7-tiny-leak_derronqi", "retinaface-mobilenet0.25_thflgg133"):
        pred = require(shared_data / "widerface" / "results" / folder / "widerface_txt")
        results.append(bs.records_from_result(evaluate(gt, read_predictions(pred, gt, quiet=True), breakdown=False)))
    differences = {d.metric: d for d in cmp.compare_records(results[0], results[1])}
    hard = differences["hard"]
    assert hard.difference == pytest.approx(0.829738522421083 - 0.738258215733815, abs=1e-12)
    assert hard.significant and hard.low > 0.05 and hard.p_value < 0.01


def test_real_afw_dpm_and_headhunter_are_tied(shared_data, tmp_path):
    from protocols.face_eval import evaluate, load_ground_truth, read_detections
    from tests.conftest import require

    afw = shared_data / "afw"
    gt = load_ground_truth("afw", require(afw / "annotations" / "new_annotations_AFW.mat"))
    records = []
    for path in (afw / "results" / "DPM_Mathias2014" / "DPM.txt",
                 next(iter(sorted(require(afw / "results" / "HeadHunter_Mathias2014").iterdir()))),
                 afw / "results" / "S3FD_official" / "SFD_AFW_PR.txt"):
        records.append(bs.records_from_result(evaluate(gt, read_detections(require(path)))))
    # The paper's 97.21 vs 97.14 is no ranking; S3FD's 99.85 is above both.
    assert cmp.tied_groups(records, "ap", resamples=500) == [[2], [0, 1]]


def test_damaged_records_or_result_fields_are_one_line_errors(pair, tmp_path):
    a, b = pair
    records = bs.records_path(a)
    original = records.read_bytes()
    records.write_bytes(original[: len(original) // 2])  # truncated
    with pytest.raises(InputError, match="records"):
        cmp.compare_files(a, b, resamples=10)
    with np.load(bs.records_path(b)) as data:
        arrays = {k: data[k] for k in data.files}
    for name in [k for k in arrays if k.endswith("_faces")][:1]:
        broken = dict(arrays)
        broken[name] = broken[name][:-1]  # one image short
        np.savez(records, **broken)
        with pytest.raises(InputError, match="damaged records file"):
            cmp.compare_files(a, b, resamples=10)
        broken[name] = np.array("x")
        np.savez(records, **broken)
        with pytest.raises(InputError, match="damaged records file"):
            cmp.compare_files(a, b, resamples=10)
    records.write_bytes(original)
    doc = json.loads(a.read_text())
    doc["protocol"] = "wider_face"
    a.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="field 'protocol': must be an object"):
        cmp.compare_files(a, b, resamples=10)
