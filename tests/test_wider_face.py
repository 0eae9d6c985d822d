"""WIDER FACE protocol: the official tool's figures, the Python port's, parity with the literal reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from protocols.wider_face import evaluate, load_ground_truth, read_predictions
from protocols.wider_face.curves import entry_threshold, normalise_scores, voc_ap
from protocols.wider_face.matching import official_int_overlap, round_half_away
from protocols.wider_face.reference import evaluate_reference
from protocols.wider_face.ground_truth import write_ground_truth
from tests.conftest import require
from tests.wider_fixtures import MINI_PRED, random_events, write_mini_gt, write_predictions

GOLDEN = {  # ../shared/specs/golden.md (official eval_tools under Octave, and the Python port)
    ("yolov7-tiny-leak_derronqi", "official"): (0.93243941106335, 0.912910061774677, 0.829738522421083),
    ("yolov7-tiny-leak_derronqi", "python-port"): (0.932493263383599, 0.912794290988633, 0.829720502205992),
    ("retinaface-mobilenet0.25_thflgg133", "official"): (0.907016114445436, 0.881537334146821, 0.738258215733815),
    ("retinaface-mobilenet0.25_thflgg133", "python-port"): (0.906958424385669, 0.881579055128884,
                                                            0.738286325538105),
}


@pytest.fixture()
def mini(tmp_path):
    gt = load_ground_truth(write_mini_gt(tmp_path / "gt"))
    pred = write_predictions(tmp_path / "pred", "0--Mini", MINI_PRED)
    return gt, pred


@pytest.mark.parametrize("semantics, expected", [
    ("official", (0.3, 0.488095238095238, 0.488095238095238)),
    ("python-port", (0.733333333333333, 0.821428571428571, 0.821428571428571)),
])
def test_mini_case_ap(mini, semantics, expected):
    gt, pred = mini
    result = evaluate(gt, read_predictions(pred, gt, semantics))
    assert [result.metrics[s] for s in ("easy", "medium", "hard")] == pytest.approx(expected, abs=1e-12)


def test_mini_case_official_curve_rows(mini):
    gt, pred = mini
    result = evaluate(gt, read_predictions(pred, gt))
    easy = result.settings["easy"]
    assert math.isnan(easy.precision[0]) and easy.recall[0] == 0
    assert easy.precision[99] == 1 and easy.recall[99] == pytest.approx(0.2)
    assert easy.precision[999] == pytest.approx(2 / 7) and easy.recall[999] == pytest.approx(0.4)
    for setting in ("medium", "hard"):
        curve = result.settings[setting]
        assert curve.precision[999] == pytest.approx(4 / 9) and curve.recall[999] == pytest.approx(4 / 7)
    assert {s: c.n_faces for s, c in result.settings.items()} == {"easy": 5, "medium": 7, "hard": 7}


def test_int32_overlap_rules_from_the_spec():
    gt = np.array([[200, 200, 30, 30], [200, 200, 30, 30]], dtype=np.int32)
    pred = np.array([[208.5, 200, 34.5, 30], [209.1, 200, 34, 30]])
    # 682 / 1380 rounds to 0; 682 / 1364 is exactly 0.5 and rounds half away to 1.
    assert official_int_overlap(gt, pred).tolist() == [0.0, 1.0]
    assert round_half_away(np.array([0.5, 1.5, 2.5, -0.5, -2.5, 0.49999999999999994])).tolist() == \
        [1, 2, 3, -1, -3, 0]


def test_normalisation_initial_bounds():
    scores = np.array([-3.0, -1.0])
    official = normalise_scores(scores, "official")  # max starts at float32's smallest normal
    assert official[1] == pytest.approx(2.0 / (np.finfo(np.float32).tiny + 3.0))
    port = normalise_scores(scores, "python-port")  # max starts at 0
    assert port.tolist() == [0.0, 2.0 / 3.0]
    assert entry_threshold(np.array([1.0, 0.999, 0.9985, 0.0, -0.1, np.nan])).tolist() == [0, 0, 1, 999, 1000, 1000]


def test_equal_scores_give_zero_ap(mini, tmp_path):
    gt, _ = mini
    preds = {name: [(*box[:4], 0.5) for box in boxes] for name, boxes in MINI_PRED.items()}
    result = evaluate(gt, read_predictions(write_predictions(tmp_path / "eq", "0--Mini", preds), gt))
    assert result.metrics == {"easy": 0.0, "medium": 0.0, "hard": 0.0}


@pytest.mark.parametrize("float_boxes", [False, True])
@pytest.mark.parametrize("semantics", ["official", "python-port"])
def test_parity_with_literal_reference(tmp_path, semantics, float_boxes):
    rng = np.random.default_rng(7 + float_boxes)
    images, preds = random_events(rng, 24)
    events = [("0--Rand", images)] + [(f"{i}--E", []) for i in range(1, 3)]
    if float_boxes:
        # 2016-style float ground truth: the official tool then computes overlaps in double.
        import scipy.io

        gt_dir = write_ground_truth(tmp_path / "gt", events)
        for name in ("wider_face_val.mat", "wider_easy_val.mat", "wider_medium_val.mat", "wider_hard_val.mat"):
            data = scipy.io.loadmat(gt_dir / name)
            data = {k: v for k, v in data.items() if not k.startswith("__")}
            for e in range(data["face_bbx_list"].shape[0]):
                for j in range(data["face_bbx_list"][e, 0].shape[0]):
                    box = data["face_bbx_list"][e, 0][j, 0].astype(np.float64)
                    data["face_bbx_list"][e, 0][j, 0] = box + 0.25 * ((e + j) % 3)
            scipy.io.savemat(gt_dir / name, data)
    else:
        gt_dir = write_ground_truth(tmp_path / "gt", events)
    gt = load_ground_truth(gt_dir)
    assert gt.integer_boxes != float_boxes
    pred_dir = write_predictions(tmp_path / "pred", "0--Rand", preds)
    fast = evaluate(gt, read_predictions(pred_dir, gt, semantics))
    ref_images = []
    for i, img in enumerate(images):
        lo, hi = gt.face_offsets[i], gt.face_offsets[i + 1]
        keeps = [gt.keep[s][lo:hi] for s in ("easy", "medium", "hard")]
        ref_images.append((gt.boxes[lo:hi], keeps, np.asarray(preds[img["name"]], dtype=float).reshape(-1, 5)))
    expected = evaluate_reference(ref_images, semantics)
    got = [fast.metrics[s] for s in ("easy", "medium", "hard")]
    assert got == pytest.approx([expected[0], expected[1], expected[2]], abs=1e-12)


def test_unsorted_files_only_break_the_port(mini, tmp_path):
    gt, _ = mini
    shuffled = {name: list(reversed(boxes)) for name, boxes in MINI_PRED.items()}
    folder = write_predictions(tmp_path / "shuf", "0--Mini", shuffled)
    assert evaluate(gt, read_predictions(folder, gt)).metrics["easy"] == pytest.approx(0.3)
    port = evaluate(gt, read_predictions(folder, gt, "python-port")).metrics["easy"]
    assert port != pytest.approx(0.733333333333333)


def test_breakdown_and_records(mini, tmp_path):
    gt, pred = mini
    result = evaluate(gt, read_predictions(pred, gt))
    assert "blur=clear" in result.breakdown and "height=20-50" in result.breakdown
    # Every mini face has blur 0, so blur=clear is the hard setting itself.
    assert result.breakdown["blur=clear"].ap == pytest.approx(result.metrics["hard"])
    from facebench.bootstrap import load_records
    from facebench.results import write_document

    doc_path = tmp_path / "r.json"
    write_document(result.to_document(), doc_path)
    result.save_records(tmp_path / "r.records.npz")
    assert int(np.load(tmp_path / "r.records.npz")["records_format"]) == 2
    records = load_records(doc_path)
    for name, curve in result.settings.items():
        # The rows rebuilt from the per-prediction records are the in-memory rows, and sum to the curve.
        np.testing.assert_array_equal(records.proposals[name], curve.image_proposals)
        np.testing.assert_array_equal(records.true_positives[name], curve.image_true_positives)
        np.testing.assert_array_equal(records.proposals[name].sum(axis=0), curve.proposals)
        np.testing.assert_array_equal(records.true_positives[name].sum(axis=0), curve.true_positives)
    assert records.faces["hard"].tolist() == [4, 1, 1, 1]
    # Format 1 (rows stored, facebench 0.1 before records format 2) still loads.
    old = {"image_ids": np.array(result.image_ids), "meta": np.array(["wider_face", "1", "official", gt.sha256])}
    for name, curve in result.settings.items():
        old |= {f"{name}_proposals": curve.image_proposals, f"{name}_true_positives": curve.image_true_positives,
                f"{name}_faces": result.image_faces[name]}
    np.savez_compressed(tmp_path / "r.records.npz", **old)
    again = load_records(doc_path)
    np.testing.assert_array_equal(again.proposals["hard"], records.proposals["hard"])


def test_missing_file_counts_as_no_detections(mini, tmp_path, capsys):
    gt, _ = mini
    preds = dict(MINI_PRED)
    del preds["D"]
    folder = write_predictions(tmp_path / "p", "0--Mini", preds)
    result = evaluate(gt, read_predictions(folder, gt))
    assert "1 of 4 images have no prediction file" in capsys.readouterr().err
    assert result.n_missing == 1


def test_count_larger_than_lines_drops_image_with_warning(mini, tmp_path, capsys):
    gt, _ = mini
    folder = write_predictions(tmp_path / "p", "0--Mini", MINI_PRED, count_override={"D": 5})
    result = evaluate(gt, read_predictions(folder, gt))
    err = capsys.readouterr().err
    assert "D.txt:5" in err and "rejected, as the official tool does" in err
    assert result.n_dropped == 1
    # Dropping D removes its TP: the same as evaluating without D's boxes.
    preds = dict(MINI_PRED, D=[])
    reference = evaluate(gt, read_predictions(write_predictions(tmp_path / "q", "0--Mini", preds), gt))
    assert result.metrics == reference.metrics


def test_non_numeric_field_is_reported_with_line(mini, tmp_path, capsys):
    gt, _ = mini
    folder = write_predictions(tmp_path / "p", "0--Mini", MINI_PRED)
    (folder / "0--Mini" / "A.txt").write_text("A\n2\n1 2 3 4 0.5\n1 2 x 4 0.3\n")
    result = read_predictions(folder, gt)
    assert "A.txt:4: not a number: 'x'" in capsys.readouterr().err
    assert len(result.dropped) == 1


@pytest.mark.parametrize("count, line, why", [
    ("99999999999999999999", 5, "file has 2 box lines but its count says 99999999999999999999"),
    ("-1", 2, "negative count -1: read as no boxes"),
    ("0_2", 2, "count line is not an integer: '0_2'"),
    ("\u0662", 2, "count line is not an integer"),
])
def test_odd_count_lines_reject_the_file_with_its_line(mini, tmp_path, capsys, count, line, why):
    gt, _ = mini
    folder = write_predictions(tmp_path / "p", "0--Mini", MINI_PRED)
    (folder / "0--Mini" / "A.txt").write_text(f"A\n{count}\n1 2 3 4 0.5\n1 2 3 4 0.3\n", encoding="utf-8")
    result = read_predictions(folder, gt)
    assert f"A.txt:{line}: {why}" in capsys.readouterr().err
    assert len(result.dropped) == 1 and len(result.image_boxes(gt.image_index[("0--Mini", "A")])) == 0


@pytest.mark.parametrize("extra, kept", [(" 7 8.5e1 -3", True), (" face", False), (" 1_0", False), (" 0x1", False)])
def test_text_after_the_five_numbers_drops_the_file_as_str2num_does(mini, tmp_path, capsys, extra, kept):
    gt, _ = mini
    folder = write_predictions(tmp_path / "p", "0--Mini", MINI_PRED)
    (folder / "0--Mini" / "A.txt").write_text(f"A\n2\n1 2 3 4 0.5\n1 2 3 4 0.3{extra}\n")
    official = read_predictions(folder, gt)
    assert (len(official.dropped) == 0) == kept
    if not kept:
        assert f"A.txt:4: not a number: '{extra.strip()}'" in capsys.readouterr().err
    # The Python port reads only the first five tokens of a line.
    assert len(read_predictions(folder, gt, semantics="python-port").dropped) == 0


def test_commas_read_as_separators_officially_but_stop_the_python_port(mini, tmp_path, capsys):
    gt, _ = mini
    folder = write_predictions(tmp_path / "p", "0--Mini", MINI_PRED)
    (folder / "0--Mini" / "A.txt").write_text("A, a name\n2\n1,2,3,4,0.5\n1 2 3 4 0.3\n")
    assert len(read_predictions(folder, gt).dropped) == 0  # str2num reads commas as separators
    port = read_predictions(folder, gt, semantics="python-port")
    assert len(port.dropped) == 1 and "A.txt:3: a comma in a box line" in capsys.readouterr().err


@pytest.mark.parametrize("line, box", [
    ("1 2 3 4 0.3;", [1, 2, 3, 4, 0.3]),            # a trailing semicolon: one row
    ("1;2;3;4;0.3", [1, 2, 3, 4, 0.3]),             # a column: the same five numbers
    ("1 2 3 4 0.3; 5 6 7 8 0.1", [1, 5, 2, 6, 3]),  # a 2x5 matrix read column-major, as raw_info(k) does
    ("1 2 3 4 0.3;;", [1, 2, 3, 4, 0.3]),           # empty rows are dropped
    ("1 2 3 4 0.3; 5 6", None),                     # rows of different lengths: str2num fails
    ("1 2; 3 4", None),                             # four numbers in all
])
def test_semicolons_make_a_matrix_as_str2num_does(mini, tmp_path, capsys, line, box):
    gt, _ = mini
    folder = write_predictions(tmp_path / "p", "0--Mini", MINI_PRED)
    (folder / "0--Mini" / "A.txt").write_text(f"A\n2\n1 2 3 4 0.5\n{line}\n")
    result = read_predictions(folder, gt)
    boxes = result.image_boxes(gt.image_index[("0--Mini", "A")])
    if box is None:
        assert len(result.dropped) == 1 and "A.txt:4: " in capsys.readouterr().err and len(boxes) == 0
    else:
        assert len(result.dropped) == 0 and len(boxes) == 2  # sorted by score: find the row, not its place
        assert any(np.allclose(row, box) for row in boxes), boxes


def test_a_count_of_thousands_of_digits_drops_the_file(mini, tmp_path, capsys):
    gt, _ = mini
    folder = write_predictions(tmp_path / "p", "0--Mini", MINI_PRED)
    (folder / "0--Mini" / "A.txt").write_text("A\n" + "9" * 5000 + "\n1 2 3 4 0.5\n")
    result = read_predictions(folder, gt)
    assert len(result.dropped) == 1 and "its count says a number of more than 38 digits" in capsys.readouterr().err


def test_non_numeric_ground_truth_variables_are_input_errors(tmp_path):
    import scipy.io

    from facebench.errors import InputError

    root = write_mini_gt(tmp_path / "gt")
    face = scipy.io.loadmat(root / "wider_face_val.mat")
    labels = face["blur_label_list"]
    labels[0, 0][0, 0] = np.array([["abc"]], dtype=object)
    scipy.io.savemat(root / "wider_face_val.mat", {**{k: v for k, v in face.items() if not k.startswith("__")},
                                                   "blur_label_list": labels})
    with pytest.raises(InputError, match="variable 'blur_label_list' must hold numeric labels"):
        load_ground_truth(root)


def test_keep_lists_that_do_not_nest_warn_naming_the_file(tmp_path, capsys):
    two = [{"name": "A", "boxes": [[0, 0, 20, 20], [40, 40, 20, 20]], "easy": [1, 2], "medium": [1, 2], "hard": [2]}]
    root = write_ground_truth(tmp_path / "gt", [("0--Mini", two)])
    for _ in range(2):  # parsed, then from the cache
        gt = load_ground_truth(root)
        err = capsys.readouterr().err
        assert err.count("warning: ") == 1
        assert (f"{root / 'wider_hard_val.mat'}: 1 faces kept in medium are not kept in hard "
                "(first: 0--Mini/A face 1)") in err
    assert gt.keep["hard"].tolist() == [False, True]  # still scored as the files say
    load_ground_truth(write_mini_gt(tmp_path / "nested"))
    assert capsys.readouterr().err == ""


def test_no_pair_reaching_half_overlap_gives_zero_ap(tmp_path):
    one = {"name": "A", "boxes": [[0, 0, 20, 20]], "easy": [1], "medium": [1], "hard": [1]}
    gt = load_ground_truth(write_ground_truth(tmp_path / "gt", [("0--Mini", [one])]))
    folder = write_predictions(tmp_path / "p", "0--Mini", {"A": [[0, 0, 20, 8, 0.9]]})
    for semantics in ("official", "python-port"):
        result = evaluate(gt, read_predictions(folder, gt, semantics=semantics))
        assert result.metrics == {"easy": 0.0, "medium": 0.0, "hard": 0.0}


def test_an_unlistable_event_folder_is_an_input_error(mini, tmp_path):
    from facebench.errors import InputError
    from protocols.wider_face.predictions import _scan

    with pytest.raises(InputError, match="cannot list folder"):
        _scan(tmp_path / "absent")


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_non_finite_score_is_an_error(mini, tmp_path, bad):
    from facebench.errors import InputError

    gt, _ = mini
    folder = write_predictions(tmp_path / "p", "0--Mini", MINI_PRED)
    (folder / "0--Mini" / "B.txt").write_text(f"B\n2\n1 2 3 4 0.5\n1 2 3 4 {bad}\n")
    with pytest.raises(InputError, match=r"B\.txt:4: non-finite score"):
        read_predictions(folder, gt)


def test_unknown_event_and_image_are_errors(mini, tmp_path):
    from facebench.errors import InputError

    gt, _ = mini
    folder = write_predictions(tmp_path / "p", "0--Mini", MINI_PRED)
    (folder / "0--Mini" / "Z.txt").write_text("Z\n0\n")
    with pytest.raises(InputError, match="unknown image"):
        read_predictions(folder, gt)
    assert len(read_predictions(folder, gt, ignore_unknown=True).boxes) == 9
    (folder / "0--Mini" / "Z.txt").unlink()
    (folder / "99--Nope").mkdir()
    with pytest.raises(InputError, match="unknown event folder"):
        read_predictions(folder, gt)


def test_crlf_and_extra_columns_read_the_same(mini, tmp_path):
    gt, pred = mini
    base = evaluate(gt, read_predictions(pred, gt)).metrics
    for path in (pred / "0--Mini").glob("*.txt"):
        lines = path.read_text().splitlines()
        lines = lines[:2] + [line + " 1 2 3 4 5 6 7 8 9 10 " for line in lines[2:]]
        path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    assert evaluate(gt, read_predictions(pred, gt)).metrics == base


def test_wrong_gt_dir_is_a_clear_error(tmp_path):
    from facebench.errors import InputError

    (tmp_path / "wider_face_val.mat").write_bytes(b"")
    with pytest.raises(InputError, match="missing wider_easy_val.mat"):
        load_ground_truth(tmp_path)
    with pytest.raises(InputError, match="not found"):
        load_ground_truth(tmp_path / "absent")


def test_voc_ap_nan_rules():
    recall = np.array([0.0, 0.5, 1.0])
    precision = np.array([np.nan, 1.0, 0.5])
    assert voc_ap(recall, precision) == pytest.approx(0.75)


def test_cli_json_and_plot(mini, tmp_path):
    from click.testing import CliRunner

    from facebench.cli import cli

    gt, pred = mini
    out, plot = tmp_path / "r.json", tmp_path / "pr.png"
    runner = CliRunner()
    res = runner.invoke(cli, ["eval", "widerface", str(pred), "--gt-dir", gt.source, "--out", str(out),
                              "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    assert "easy" in res.output and "30.00" in res.output
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "widerface-val" and doc["schema"] == "facebench.result/1"
    assert doc["metrics"]["easy"] == pytest.approx(0.3)
    assert doc["ground_truth_sha256"] == gt.sha256 and doc["settings"]["semantics"] == "official"
    assert len(doc["curves"]["hard"]["precision"]) == 1000 and doc["curves"]["easy"]["precision"][0] is None
    assert "blur=clear" in doc["breakdown"]["metrics"] and doc["facebench_version"] and doc["created"]
    assert plot.stat().st_size > 10_000 and (tmp_path / "r.records.npz").is_file()


def test_cli_checks_outputs_and_overlays_before_writing_anything(mini, tmp_path, capsys):
    from facebench.cli import main

    gt, pred = mini
    out = tmp_path / "r.json"
    cases = [(["--plot", str(tmp_path / "pr.xyz")], "cannot write a '.xyz' figure"),
             (["--overlay", str(tmp_path)], "--overlay needs --plot"),
             (["--plot", str(tmp_path / "pr.png"), "--overlay", str(tmp_path)], "wider_pr_info")]
    for extra, message in cases:
        with pytest.raises(SystemExit) as done:
            main(["eval", "widerface", str(pred), "--gt-dir", gt.source, "--out", str(out), *extra])
        assert done.value.code == 2 and message in capsys.readouterr().err
        assert not out.exists() and not (tmp_path / "r.records.npz").exists() and not (tmp_path / "pr.png").exists()


def test_cli_records_the_version_the_files_hold(mini, tmp_path, capsys):
    """--gt-version only picks a folder under --data-root: the version recorded is the files' own (integer
    boxes: 2017, float: 2016), and a flag the files contradict is an error instead of a wrong label."""
    from facebench.cli import main

    gt, pred = mini
    out = tmp_path / "r.json"
    main(["eval", "widerface", str(pred), "--gt-dir", gt.source, "--out", str(out)])
    assert json.loads(out.read_text())["settings"]["ground_truth_version"] == "2017"
    with pytest.raises(SystemExit) as done:
        main(["eval", "widerface", str(pred), "--gt-dir", gt.source, "--gt-version", "2016"])
    assert done.value.code == 2
    assert capsys.readouterr().err.endswith("holds the 2017 ground truth (integer boxes), not --gt-version 2016\n")


def test_cli_labels_the_old_float_ground_truth_2016(tmp_path, capsys, shared_data):
    from facebench.cli import main

    out = tmp_path / "r.json"
    old = require(shared_data / "widerface" / "ground_truth_old_2016")
    predictions = require(shared_data / "widerface" / "results" / "yolov7-tiny-leak_derronqi" / "widerface_txt")
    main(["eval", "widerface", str(predictions), "--gt-dir", str(old), "--out", str(out)])
    assert "ground truth 2016" in capsys.readouterr().out
    assert json.loads(out.read_text())["settings"]["ground_truth_version"] == "2016"


def test_ground_truth_folder_from_data_root_or_the_default_roots(mini, tmp_path, monkeypatch):
    import shutil

    from facebench import datasets
    from facebench.commands.eval_widerface import resolve_gt_dir
    from facebench.errors import InputError

    gt, _ = mini
    root = tmp_path / "root"
    shutil.copytree(gt.source, root / "widerface" / "ground_truth")
    assert resolve_gt_dir(None, str(root), "2017") == root / "widerface" / "ground_truth"
    with pytest.raises(InputError, match="no WIDER FACE 2016 ground truth found under it"):
        resolve_gt_dir(None, str(root), "2016")
    monkeypatch.setattr(datasets, "default_data_roots", lambda: [tmp_path / "nowhere", root])
    assert resolve_gt_dir(None, None, "2017") == root / "widerface" / "ground_truth"
    assert str(resolve_gt_dir("given", str(tmp_path / "nowhere"), "2017")) == "given"
    monkeypatch.setattr(datasets, "default_data_roots", lambda: [tmp_path / "nowhere"])
    with pytest.raises(InputError, match=f"looked for widerface/ground_truth/ in {tmp_path / 'nowhere'}"):
        resolve_gt_dir(None, None, "2017")


def test_default_roots_order(monkeypatch, tmp_path):
    from facebench.datasets import default_data_roots

    monkeypatch.setenv("FACEBENCH_DATA_ROOT", str(tmp_path / "a"))
    monkeypatch.setenv("FACEBENCH_SHARED_DATA", str(tmp_path / "b"))
    roots = default_data_roots()
    assert roots[:2] == [tmp_path / "a", tmp_path / "b"] and roots[2].parts[-2:] == ("shared", "data")
    monkeypatch.delenv("FACEBENCH_DATA_ROOT")
    assert default_data_roots()[0] == tmp_path / "b"


def test_cli_bad_input_is_one_line(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "facebench", "eval", "widerface", str(tmp_path / "none"),
                           "--gt-dir", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_golden_real_predictions(shared_data, case):
    folder, semantics = case
    gt = load_ground_truth(require(shared_data / "widerface" / "ground_truth"))
    pred = require(shared_data / "widerface" / "results" / folder / "widerface_txt")
    result = evaluate(gt, read_predictions(pred, gt, semantics, quiet=True), breakdown=False)
    got = [result.metrics[s] for s in ("easy", "medium", "hard")]
    assert got == pytest.approx(list(GOLDEN[case]), abs=1e-9)


def test_real_ground_truth_counts(shared_data):
    gt = load_ground_truth(require(shared_data / "widerface" / "ground_truth"))
    assert (len(gt.events), gt.n_images, len(gt.boxes)) == (61, 3226, 39708)
    assert {s: int(m.sum()) for s, m in gt.keep.items()} == {"easy": 7211, "medium": 13319, "hard": 31958}
    assert not (gt.keep["hard"] & (gt.attributes["invalid"] == 1)).any()
    assert not (gt.keep["easy"] & ~gt.keep["medium"]).any() and not (gt.keep["medium"] & ~gt.keep["hard"]).any()
    old = load_ground_truth(require(shared_data / "widerface" / "ground_truth_old_2016"))
    assert old.version == "2016" and not old.integer_boxes and old.n_images == 3226


def test_published_curve_reader(shared_data):
    from protocols.wider_face.published import load_published_method

    folder = require(shared_data / "widerface" / "results" / "official_pr_curves" / "Val" / "setting_int" / "SSH")
    curves = load_published_method(folder)
    assert set(curves) == {"easy", "medium", "hard"}
    assert 0.8 < curves["hard"].ap < curves["easy"].ap < 1


@pytest.mark.parametrize("curve, message", [
    (np.array("text"), "pr_cruve must hold numbers, got str"),
    (np.zeros((3, 3)), r"pr_cruve must be N x 2, got \(3, 3\)"),
])
def test_published_curve_errors_name_the_file(tmp_path, curve, message):
    import scipy.io

    from facebench.errors import InputError
    from protocols.wider_face.published import read_published_curve

    path = tmp_path / "M" / "wider_pr_info_M_hard_val.mat"
    path.parent.mkdir()
    scipy.io.savemat(path, {"pr_cruve": curve, "legend_name": "M"})
    with pytest.raises(InputError, match=message) as info:
        read_published_curve(path)
    assert info.value.path == str(path)
    scipy.io.savemat(path, {"pr_cruve": np.array([[1.0, 0.1], [0.5, 0.6]]), "legend_name": "M"})
    assert read_published_curve(path).legend == "M"


def test_split_txt_reader_and_errors(tmp_path):
    from facebench.errors import InputError
    from protocols.wider_face.split_txt import read_split_txt

    good = tmp_path / "split.txt"
    good.write_text("0--A/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n5 6 7 8 2 1 1 0 1 1\n0--A/b.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n")
    images = read_split_txt(good)
    assert [img.name for img in images] == ["a", "b"] and images[0].attributes[1].tolist() == [2, 1, 1, 0, 1, 1]
    assert images[1].boxes.shape == (0, 4)
    bad = tmp_path / "bad.txt"
    bad.write_text("0--A/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n5 6 x 8 2 1 1 0 1 1\n")
    with pytest.raises(InputError, match=r"bad\.txt:4: non-numeric value"):
        read_split_txt(bad)
    for row in ("nan 2 3 4 0 0 0 0 0 0", "1 2 1e12 4 0 0 0 0 0 0"):
        bad.write_text(f"0--A/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n{row}\n")
        with pytest.raises(InputError, match=r"bad\.txt:4: box row values must be finite and within int32 range"):
            read_split_txt(bad)
    bad.write_text("0--A/a.jpg\n3\n1 2 3 4 0 0 0 0 0 0\n")
    with pytest.raises(InputError, match=r"bad\.txt:2: .*announces 3 boxes but only 1 lines follow"):
        read_split_txt(bad)
    for count in ("1000000000000", "9" * 5000):  # refused before any allocation
        bad.write_text(f"0--A/a.jpg\n{count}\n1 2 3 4 0 0 0 0 0 0\n")
        with pytest.raises(InputError, match=r"bad\.txt:2: "):
            read_split_txt(bad)


def test_split_txt_matches_the_mat_files(shared_data):
    from protocols.wider_face.ground_truth import with_split_txt

    gt = load_ground_truth(require(shared_data / "widerface" / "ground_truth"))
    txt = require(shared_data / "widerface" / "wider_face_split" / "wider_face_val_bbx_gt.txt")
    from_txt = with_split_txt(gt, txt)
    np.testing.assert_array_equal(from_txt.boxes, gt.boxes)
    for name, values in gt.attributes.items():
        np.testing.assert_array_equal(from_txt.attributes[name], values)


def test_reading_is_the_same_for_every_parser_and_worker_count(tmp_path, monkeypatch):
    # Enough images that the reader splits them over workers; mixed number formats, unsorted scores with ties,
    # one malformed file: the compiled and numpy parsers, serial and parallel, must give identical arrays.
    rng = np.random.default_rng(11)
    images, preds = random_events(rng, 900, crowded=False)
    gt = load_ground_truth(write_ground_truth(tmp_path / "gt", [("0--Big", images), ("1--E", [])]))
    folder = tmp_path / "pred" / "0--Big"
    folder.mkdir(parents=True)
    formats = ["{:.2f}", "{!r}", "{:e}", "{:.0f}", "{:.20f}"]
    for k, (name, boxes) in enumerate(preds.items()):
        lines = [name, str(len(boxes))]
        for j, box in enumerate(boxes):
            fields = [formats[(k + j + c) % len(formats)].format(float(v)) for c, v in enumerate(box)]
            fields[4] = fields[4] if j % 3 else "0.5"  # ties
            lines.append((", " if k % 7 == 0 else "\t" if k % 5 == 0 else " ").join(fields))
        if k == 13 and boxes:
            lines[-1] += " 7"  # an unused sixth number: ignored
        if k == 17 and boxes:
            lines[2] = "1 2 3 oops 0.5"  # rejected, as the official reader does
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
    results = []
    for pure, workers in [("0", "1"), ("0", "2"), ("1", "1"), ("1", "2")]:
        monkeypatch.setenv("FACEBENCH_PURE_PARSER", pure)
        monkeypatch.setenv("FACEBENCH_WORKERS", workers)
        results.append(read_predictions(tmp_path / "pred", gt, quiet=True))
    first = results[0]
    assert len(first.dropped) == 1 and len(first.boxes) > 1000
    scores = first.boxes[:, 4]
    image = np.repeat(np.arange(gt.n_images), np.diff(first.offsets))
    assert np.all((scores[1:] <= scores[:-1]) | (image[1:] != image[:-1]))
    for other in results[1:]:
        assert np.array_equal(other.boxes, first.boxes) and np.array_equal(other.offsets, first.offsets)
        assert other.dropped == first.dropped


@pytest.mark.parametrize("text, expected", [
    ("A\n3\n1 2 3 4 0.5\n5 6 7 8 0.4\n", [[1, 2, 3, 4, 0.5], [5, 6, 7, 8, 0.4]]),  # count ignored
    ("A\n1\n1 2 3 4 0.5\n\n\n", [[1, 2, 3, 4, 0.5]]),  # trailing blank lines
    ("A\n1\n1 2 3 4 0.5\n\n", [[1, 2, 3, 4, 0.5]]),
    ("A\n2\n 1 2 3 4 0.9\n1 2 3 4 0.5\n\n5 6 7 8 0.4", [[1, 2, 3, 4, 0.5], [5, 6, 7, 8, 0.4]]),  # space-led
    ("A\n0\n", []),
])
def test_port_reader_line_rules(mini, tmp_path, text, expected):
    # The Python port keeps every line after the count that is non-empty and does not start with a space.
    gt, _ = mini
    folder = write_predictions(tmp_path / "p", "0--Mini", {"B": [], "C": [], "D": []})
    (folder / "0--Mini" / "A.txt").write_text(text)
    got = read_predictions(folder, gt, "python-port", quiet=True)
    np.testing.assert_array_equal(got.image_boxes(0), np.array(expected, dtype=float).reshape(-1, 5))


# --- edges found by mutation testing: each case below flips the official outcome when the rule is broken -----

@pytest.mark.parametrize("face, prediction, hit", [
    ([0, 0, 9, 9], [1, 3, 6.7, 4.8], False),  # union 144.66 rounds to 145 (48/97 -> 0); truncated, 48/96 -> 1
    ([1, 0, 0, 4], [0.6, 1.3, 0.1, 4.3], True),  # rounding widens the intersection by 1 px: the prefilter keeps it
    ([8, 0, 3, 0], [10.4, 0, 0.2, 0], True),  # 2/3 rounds to 1: the sweep window over face x1 must reach it
])
def test_int32_overlap_edge_cases(face, prediction, hit):
    from protocols.wider_face.matching import match_predictions

    gt = np.array([face], dtype=np.int32)
    pred = np.array([prediction + [0.9]])
    assert (official_int_overlap(gt, pred[:, :4])[0] == 1) == hit
    assert match_predictions(pred, np.array([0, 1]), gt, np.array([0, 1]), "first-int").tolist() == [0 if hit else -1]


def test_int32_matching_equals_a_brute_force_loop_on_tiny_boxes():
    """Tiny integer faces and fractional predictions, where rounding decides most hits: the prefilter and the
    sweep window must never lose a pair the official int32 overlap accepts."""
    from protocols.wider_face.matching import match_predictions

    rng = np.random.default_rng(7)
    for _ in range(40):
        faces = np.concatenate([rng.integers(0, 12, (25, 2)), rng.integers(0, 5, (25, 2))], axis=1).astype(np.int32)
        preds = np.concatenate([rng.uniform(-1, 13, (60, 2)), rng.uniform(0, 5, (60, 2)), rng.uniform(0, 1, (60, 1))],
                               axis=1)
        got = match_predictions(preds, np.array([0, 60]), faces, np.array([0, 25]), "first-int")
        pairs_face, pairs_pred = np.repeat(np.arange(25), 60), np.tile(np.arange(60), 25)
        overlap = official_int_overlap(faces[pairs_face], preds[pairs_pred, :4]).reshape(25, 60)  # 0/1 (int32)
        expected = np.where(overlap.max(axis=0) >= 1, overlap.argmax(axis=0), -1)
        assert got.tolist() == expected.tolist()


def test_official_normalisation_starts_from_float_bounds_and_the_port_from_zero_one():
    # Scores all above 1: the official min starts at FLT_MAX (so it is the data's 2), the port's at 1.
    assert normalise_scores(np.array([2.0, 3.0, 4.0]), "official").tolist() == pytest.approx([0, 0.5, 1])
    assert normalise_scores(np.array([2.0, 3.0, 4.0]), "python-port").tolist() == pytest.approx([1 / 3, 2 / 3, 1])
    assert entry_threshold(normalise_scores(np.array([2.0, 3.0, 4.0]), "official")).tolist() == [999, 499, 0]


def test_height_bins_are_half_open():
    from types import SimpleNamespace

    from protocols.wider_face.evaluate import breakdown_masks

    gt = SimpleNamespace(keep={"hard": np.array([True, True, True])}, attributes={},
                         boxes=np.array([[0, 0, 5, 9], [0, 0, 5, 10], [0, 0, 5, 15]]))
    masks = breakdown_masks(gt)
    assert masks["height=0-10"].tolist() == [True, False, False]
    assert masks["height=10-20"].tolist() == [False, True, True]


def test_equal_scores_keep_their_file_order(tmp_path):
    gt = load_ground_truth(write_mini_gt(tmp_path / "gt"))
    pred = write_predictions(tmp_path / "pred", "0--Mini", {"C": [(1, 1, 5, 5, 0.5), (10, 10, 10, 10, 0.9),
                                                                   (2, 2, 5, 5, 0.5)]})
    read = read_predictions(pred, gt, quiet=True)
    assert read.image_boxes(gt.image_index[("0--Mini", "C")])[:, 0].tolist() == [10, 1, 2]


def test_prediction_files_keep_every_score_distinct():
    """Scores are written as the shortest text that reads back to their float32: six fixed decimals tied the
    distinct scores of weak detectors (739 became 7) and zeroed every score under 1e-6, which changes AP."""
    from protocols.wider_face.predictions import format_prediction_file, format_score

    scores = np.array([0.12345671, 0.12345674, 3e-7, 1e-9, 1.0, 0.5], dtype=np.float32)
    boxes = np.column_stack([np.zeros((6, 4)), scores.astype(np.float64)])
    boxes[:, 2:4] = 10
    text = format_prediction_file("img", boxes)
    written = np.array([float(line.split()[4]) for line in text.splitlines()[2:]], dtype=np.float32)
    assert sorted(written.tolist()) == sorted(scores.tolist()) and len(set(written.tolist())) == 6
    assert format_score(0.5) == "0.5" and format_score(np.float32(1e-9)) == "1e-09"
