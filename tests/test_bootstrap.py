"""Image-level bootstrap: the vectorised math against per-resample loops, intervals, records files, --ci."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facebench import bootstrap as bs
from facebench.errors import InputError
from protocols.wider_face import curves, evaluate, load_ground_truth, read_predictions
from protocols.wider_face.ground_truth import write_ground_truth
from tests.wider_fixtures import random_events, write_predictions


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))


def synthetic_wider(root: Path, n_images: int, seed: int = 0, extra_fp: tuple[int, ...] = (0,)):
    """A random WIDER ground truth and predictions: gt, pred dir, result; with several `extra_fp` values, one
    prediction folder and result per value on the same ground truth (that many images get two confident
    background boxes)."""
    rng = np.random.default_rng(seed)
    images, preds = random_events(rng, n_images)
    gt = load_ground_truth(write_ground_truth(root / "gt", [("0--Synthetic", images)]))
    out = []
    for k, n_extra in enumerate(extra_fp):
        edited = dict(preds)
        for name in list(preds)[:n_extra]:
            edited[name] = preds[name] + [[500.0, 500.0, 20.0, 20.0, 0.99], [520.0, 540.0, 25.0, 25.0, 0.97]]
        pred_dir = write_predictions(root / f"pred{k}", "0--Synthetic", edited)
        out.append((pred_dir, evaluate(gt, read_predictions(pred_dir, gt, quiet=True))))
    if len(out) == 1:
        return gt, out[0][0], out[0][1]
    return gt, out


def save_result(result, path: Path) -> Path:
    """The JSON and records pair `facebench eval --out` writes."""
    from facebench.results import write_document

    write_document(result.to_document(), path)
    result.save_records(bs.records_path(path))
    return path


def synthetic_face_eval_records(n_images: int, seed: int) -> bs.FaceEvalRecords:
    """Score-ordered detections whose TP probability grows with the score."""
    rng = np.random.default_rng(seed)
    per_image = rng.integers(1, 6, n_images)
    positives = rng.integers(1, 4, n_images)
    image = np.repeat(np.arange(n_images), per_image)
    score = rng.random(len(image))
    order = np.argsort(-score, kind="stable")
    image, score = image[order], score[order]
    tp = rng.random(len(image)) < score
    return bs.FaceEvalRecords(image_ids=tuple(map(str, range(n_images))), tp=tp, fp=~tp, image_index=image,
                              positives_per_image=positives)


def synthetic_wider_records(n_images: int, seed: int) -> bs.WiderRecords:
    """Per-image rows of random detections: scores uniform, TP with probability = score."""
    rng = np.random.default_rng(seed)
    per_image = rng.integers(0, 8, n_images)
    image = np.repeat(np.arange(n_images), per_image)
    counted = rng.integers(0, curves.THRESH_NUM, len(image))
    tp = rng.random(len(image)) < 1.0 - counted / curves.THRESH_NUM
    flags = np.ones(len(image), dtype=bool)
    rows_p = curves.image_counts(counted, flags, image, n_images)
    rows_tp = curves.image_counts(counted, tp, image, n_images)
    faces = np.bincount(image[tp], minlength=n_images) + rng.integers(0, 2, n_images)
    return bs.WiderRecords(image_ids=tuple(map(str, range(n_images))), proposals={"hard": rows_p},
                           true_positives={"hard": rows_tp}, faces={"hard": faces.astype(np.int32)})


# ------------------------------------------------------------------------------------------------ math


def test_resample_weights_are_seeded_multinomial_counts():
    w = bs.resample_weights(50, 200, seed=3)
    assert w.shape == (200, 50) and w.dtype == np.int32
    assert (w.sum(axis=1) == 50).all() and (w >= 0).all()
    assert np.array_equal(w, bs.resample_weights(50, 200, seed=3))
    assert not np.array_equal(w, bs.resample_weights(50, 200, seed=4))
    assert abs(w.mean() - 1.0) < 1e-12 and 0.8 < w.var() < 1.2  # Multinomial(n, 1/n): variance ~ 1
    with pytest.raises(ValueError):
        bs.resample_weights(0, 10)


def test_batch_voc_ap_equals_the_protocols_voc_ap():
    from protocols.face_eval import voc_ap as face_eval_voc_ap

    rng = np.random.default_rng(0)
    recalls, precisions, expected, expected_fe = [], [], [], []
    for _ in range(40):
        n = int(rng.integers(1, 60))
        tp = np.cumsum(rng.random(n) < 0.6)
        proposals = np.arange(1, n + 1)
        lead = int(rng.integers(0, 5))  # leading thresholds where nothing fires (0/0 = NaN precision)
        tp = np.concatenate((np.zeros(lead), tp))
        proposals = np.concatenate((np.zeros(lead), proposals))
        precision, recall = curves.pr_curve(proposals, tp, int(tp[-1]) + int(rng.integers(0, 4)) or 1)
        recalls.append(np.pad(recall, (0, 70 - len(recall)), mode="edge"))
        precisions.append(np.pad(precision, (0, 70 - len(precision)), mode="edge"))
        expected.append(curves.voc_ap(recall, precision))
        expected_fe.append(face_eval_voc_ap(recall, precision))
    got = bs.batch_voc_ap(np.array(recalls).T, np.array(precisions).T)
    assert got == pytest.approx(expected, abs=1e-13)
    assert got == pytest.approx(expected_fe, abs=1e-13)
    assert bs.batch_voc_ap(np.array([0.5, 1.0]), np.array([1.0, 0.5]))[0] == pytest.approx(0.75)


@pytest.mark.parametrize("density", [0.0, 1.0])  # forces the dense, then the sparse product
def test_weighted_row_sums_are_exact_on_both_paths(monkeypatch, density):
    monkeypatch.setattr(bs, "SPARSE_DENSITY", density if density else 1e-12)
    rng = np.random.default_rng(1)
    rows = [np.cumsum(rng.integers(0, 3, (30, 12)) * (rng.random((30, 12)) < 0.2), axis=1).astype(np.int32)
            for _ in range(2)]
    w = bs.resample_weights(30, 17, seed=2)
    got = bs.weighted_row_sums(w, rows)
    for r, g in zip(rows, got):
        assert g.shape == (12, 17)
        assert np.array_equal(g, (w.astype(np.int64) @ r.astype(np.int64)).T)


def test_weighted_row_sums_switch_to_float64_beyond_float32_exactness():
    rows = [np.full((3, 2), 2 ** 23 + 1, dtype=np.int64)]
    w = np.array([[3, 0, 0], [1, 1, 1]], dtype=np.int32)
    got = bs.weighted_row_sums(w, rows)[0]
    assert got[:, 0].tolist() == [3 * (2 ** 23 + 1)] * 2  # 25,165,827 is not a float32


# ------------------------------------------------------------------------------------------------ WIDER


def test_wider_resamples_match_a_per_resample_loop(tmp_path):
    _, _, result = synthetic_wider(tmp_path, 40, seed=5)
    records = bs.records_from_result(result)
    assert records.point_estimates() == result.metrics
    ones = np.ones((1, 40), dtype=np.int32)
    for name, ap in records.resampled(ones).items():
        assert ap[0] == pytest.approx(result.metrics[name], abs=1e-12)
    weights = bs.resample_weights(40, 6, seed=1)
    fast = records.resampled(weights)
    for name, curve in result.settings.items():
        for r, w in enumerate(weights):
            # The definition: the protocol's curve and AP on the weighted sums of the per-image rows.
            p = (w[:, None] * curve.image_proposals).sum(axis=0)
            t = (w[:, None] * curve.image_true_positives).sum(axis=0)
            precision, recall = curves.pr_curve(p, t, int((w * result.image_faces[name]).sum()))
            assert fast[name][r] == pytest.approx(curves.voc_ap(recall, precision), abs=1e-12)


def test_point_estimate_inside_its_interval(tmp_path):
    _, _, result = synthetic_wider(tmp_path, 120, seed=7)
    intervals = bs.intervals_for_result(result, resamples=300, seed=0)
    for name, ap in result.metrics.items():
        lo, hi = intervals[name]
        assert lo <= ap <= hi and hi - lo > 0
    assert intervals == bs.intervals_for_result(result, resamples=300, seed=0)  # seeded


@pytest.mark.parametrize("make", [synthetic_wider_records, synthetic_face_eval_records])
def test_intervals_shrink_as_images_grow(make):
    widths = []
    for n in (100, 400, 1600):
        boot = bs.bootstrap(make(n, seed=n), resamples=400, seed=0)
        (lo, hi), = [v for v in boot.intervals().values()]
        point, = boot.point.values()
        assert lo <= point <= hi
        widths.append(hi - lo)
    # Standard error ~ 1/sqrt(n): each 4x more images roughly halves the width.
    assert widths[0] > 1.4 * widths[1] > 1.4 * 1.4 * widths[2]


def test_records_file_round_trip_and_cli_ci(tmp_path, capsys):
    from facebench.cli import main

    gt, pred_dir, result = synthetic_wider(tmp_path, 30, seed=2)
    path = save_result(result, tmp_path / "r.json")
    from_file = bs.intervals_for_file(path, resamples=200, seed=1)
    assert from_file == bs.intervals_for_result(result, resamples=200, seed=1)
    out = tmp_path / "ci.json"
    main(["eval", "widerface", str(pred_dir), "--gt-dir", str(gt.source), "--out", str(out), "--ci"])
    printed = capsys.readouterr().out
    assert "95% interval" in printed
    doc = json.loads(out.read_text())
    default = bs.intervals_for_result(result)
    for name in ("easy", "medium", "hard"):
        assert doc["ci95"][name] == pytest.approx(list(default[name]), abs=1e-12)
        assert f"[{100 * default[name][0]:.2f}, {100 * default[name][1]:.2f}]" in printed


def test_missing_or_old_records_ask_to_rerun_eval(tmp_path):
    _, _, result = synthetic_wider(tmp_path, 10)
    path = save_result(result, tmp_path / "r.json")
    bs.records_path(path).unlink()
    with pytest.raises(InputError, match=r"no per-image records.*re-run `facebench eval widerface"):
        bs.load_records(path)
    np.savez(bs.records_path(path), image_ids=np.array(["a"]))
    with pytest.raises(InputError, match=r"records lack .*re-run `facebench eval widerface"):
        bs.load_records(path)


def test_records_of_another_ground_truth_are_refused(tmp_path):
    _, _, result = synthetic_wider(tmp_path / "a", 10, seed=1)
    _, _, other = synthetic_wider(tmp_path / "b", 10, seed=2)
    path = save_result(result, tmp_path / "r.json")
    other.save_records(bs.records_path(path))
    with pytest.raises(InputError, match="another ground truth"):
        bs.load_records(path)


# --------------------------------------------------------------------------------------- face-eval, FDDB


def test_face_eval_records_match_records_ap_and_a_weighted_loop():
    from protocols.face_eval import precision_recall, records_ap, voc_ap

    rec = synthetic_face_eval_records(60, seed=3)
    n_pos = int(rec.positives_per_image.sum())
    assert rec.point_estimates()["ap"] == pytest.approx(records_ap(rec.tp, rec.fp, n_pos), abs=1e-15)
    ones = np.ones((1, 60), dtype=np.int32)
    assert rec.resampled(ones)["ap"][0] == pytest.approx(records_ap(rec.tp, rec.fp, n_pos), abs=1e-12)
    weights = bs.resample_weights(60, 5, seed=9)
    fast = rec.resampled(weights)["ap"]
    for r, w in enumerate(weights):
        wd = w[rec.image_index]
        recall, precision = precision_recall(wd * rec.tp, wd * rec.fp, int(w @ rec.positives_per_image))
        assert fast[r] == pytest.approx(voc_ap(recall, precision), abs=1e-12)


def _fddb_entries(rng, n_images):
    from protocols.fddb import DBL_MAX, ImageEntries

    start, thr, valid, tc, td = [0], [], [], [], []
    faces = rng.integers(0, 4, n_images)
    for i in range(n_images):
        k = int(rng.integers(0, 6))
        if k == 0:
            thr.append(DBL_MAX)
            valid.append(0)
            tc.append(0.0)
            td.append(0)
        else:
            t = np.sort(rng.choice(np.round(rng.random(40), 2), k, replace=False))
            v = np.arange(k, 0, -1)  # ascending thresholds: fewer valid detections
            d = np.minimum(v, faces[i]) * (rng.random(k) < 0.8)
            thr += t.tolist()
            valid += v.tolist()
            td += d.astype(int).tolist()
            tc += (d * 0.7).tolist()
        start.append(len(thr))
    return ImageEntries(start=np.array(start), threshold=np.array(thr), valid=np.array(valid),
                        tp_cont=np.array(tc), tp_disc=np.array(td), faces=faces)


def _fddb_records(e):
    return bs.FddbRecords(image_ids=tuple(map(str, range(len(e.faces)))), faces=e.faces, entry_start=e.start,
                          entry_threshold=e.threshold, entry_tp_disc=e.tp_disc, entry_tp_cont=e.tp_cont,
                          entry_fp=e.fp)


def test_fddb_resample_equals_the_official_merge_of_the_replicated_images():
    from protocols.fddb import SUMMARY_FP, ImageEntries, merge_entries, summary_metrics

    assert tuple(SUMMARY_FP) == bs.FDDB_LIMITS
    rng = np.random.default_rng(4)
    e = _fddb_entries(rng, 300)
    rec = _fddb_records(e)
    expected = summary_metrics(merge_entries(e))
    for name, value in rec.point_estimates().items():
        assert value == pytest.approx(expected[name], abs=1e-12)
    w = rng.integers(0, 3, 300)
    # A resample is the dataset with image i present w[i] times: build it and run the protocol's merge.
    images = np.repeat(np.arange(300), w)
    parts = [np.arange(e.start[i], e.start[i + 1]) for i in images]
    sel = np.concatenate(parts)
    starts = np.concatenate(([0], np.cumsum([len(p) for p in parts])))
    replicated = ImageEntries(start=starts, threshold=e.threshold[sel], valid=e.valid[sel],
                              tp_cont=e.tp_cont[sel], tp_disc=e.tp_disc[sel], faces=e.faces[images])
    expected = summary_metrics(merge_entries(replicated))
    got = rec.resampled(w[None, :].astype(np.int32))
    for name in rec.names():
        assert got[name][0] == pytest.approx(expected[name], abs=1e-12)


def test_fddb_records_file_round_trip(tmp_path):
    from protocols.fddb import FddbResult, merge_entries

    e = _fddb_entries(np.random.default_rng(6), 80)
    result = FddbResult(curve=merge_entries(e), entries=e, image_ids=tuple(f"img_{i}" for i in range(80)),
                        convention="opencv21", detection_format="rect", ground_truth_source="synthetic",
                        ground_truth_sha256="0" * 64, detections_source="synthetic", sizes_source="synthetic",
                        folds=(), n_detections=int(e.valid.max()), n_pairs=0)
    path = save_result(result, tmp_path / "f.json")
    from_file = bs.intervals_for_file(path, resamples=150, seed=2)
    assert from_file == bs.intervals_for_result(result, resamples=150, seed=2)
    assert set(from_file) == set(bs.FddbRecords.names())


# ------------------------------------------------------------------------------------------------ real data


def test_real_wider_intervals_contain_the_official_ap(shared_data, tmp_path):
    from tests.conftest import require

    gt = load_ground_truth(require(shared_data / "widerface" / "ground_truth"))
    folder = require(shared_data / "widerface" / "results" / "yolov7-tiny-leak_derronqi" / "widerface_txt")
    result = evaluate(gt, read_predictions(folder, gt, quiet=True), breakdown=False)
    intervals = bs.intervals_for_result(result)
    for name, ap in result.metrics.items():
        lo, hi = intervals[name]
        assert lo < ap < hi and 0.003 < hi - lo < 0.06


def test_real_fddb_intervals_contain_the_result(shared_data):
    from protocols import fddb
    from tests.conftest import require

    folds = require(shared_data / "fddb" / "FDDB-folds")
    gt = fddb.load_folds(folds)
    dets = fddb.read_detections(require(shared_data / "fddb" / "results" / "MTCNN_imistyrain"), gt)
    result = fddb.evaluate(gt, dets, fddb.read_size_table(require(shared_data / "fddb" / "image_sizes.tsv"), gt))
    assert result.metrics["disc_tpr_at_1000fp"] == pytest.approx(0.896345, abs=5e-7)  # MTCNNDiscROC.txt's row
    boot = bs.bootstrap(bs.records_from_result(result), resamples=300)
    for name, (lo, hi) in boot.intervals().items():
        assert lo <= result.metrics[name] <= hi and hi - lo < 0.05


# --- edges found by mutation testing ---------------------------------------------------------------------

def test_resampling_draws_every_image_alike():
    weights = bs.resample_weights(3, 6000, seed=1)
    assert (weights.sum(axis=1) == 3).all()
    assert np.allclose(weights.mean(axis=0), 1.0, atol=0.05)  # image 0 included: each is drawn 1/n of the time
    rng = np.random.default_rng(0)  # the documented draw: numpy's default generator, integers in [0, n)
    draws = rng.integers(0, 3, size=(2, 3))
    assert bs.resample_weights(3, 2, 0).tolist() == [np.bincount(d, minlength=3).tolist() for d in draws]


def test_percentile_interval_is_two_sided_over_the_defined_samples():
    assert bs.percentile_interval(np.arange(101.0), 0.95) == pytest.approx((2.5, 97.5))
    assert bs.percentile_interval(np.array([0.1, np.nan, 0.3, 0.5]), 0.95) == pytest.approx((0.11, 0.49))
    assert bs.percentile_interval(np.array([np.nan, np.nan])) is None


def test_a_resample_without_faces_has_no_face_eval_ap():
    records = bs.FaceEvalRecords(image_ids=("a", "b"), tp=np.zeros(0, bool), fp=np.zeros(0, bool),
                                 image_index=np.zeros(0, np.int64), positives_per_image=np.array([1, 0]))
    assert np.isnan(records.resampled(np.array([[0, 2]]))["ap"]).all()


def test_fddb_resampled_max_rule_includes_exactly_k_false_positives():
    records = bs.FddbRecords(image_ids=("a",), faces=np.array([2]), entry_start=np.array([0, 2]),
                             entry_threshold=np.array([0.5, 0.9]), entry_tp_disc=np.array([2, 1]),
                             entry_tp_cont=np.array([1.5, 0.8]), entry_fp=np.array([100, 0]))
    assert records.resampled(np.array([[1]]))["disc_tpr_at_100fp"].tolist() == [1.0]


def test_weighted_row_sums_stay_exact_past_float32():
    big = 2 ** 24 + 1  # float32 would round it to 2**24
    (sums,) = bs.weighted_row_sums(np.array([[1]]), [np.array([[0, big]])])
    assert sums.ravel().tolist() == [0.0, float(big)]
