"""WIDER error analysis: labels of a hand-built case, fixes against re-evaluated files, splits, CLI, gallery."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facebench import error_analysis as ea
from facebench.errors import InputError
from protocols.wider_face import evaluate, load_ground_truth, read_predictions
from protocols.wider_face.evaluate import match, score_setting
from protocols.wider_face.ground_truth import write_ground_truth
from protocols.wider_face.matching import float_overlap
from tests.wider_fixtures import random_events, write_predictions

EVENT = "0--Test"
FACES_A = [[10, 10, 40, 40], [100, 10, 40, 40], [200, 10, 40, 40], [300, 10, 40, 40], [400, 10, 40, 40]]
KEPT_A = [1, 2, 4, 5]  # face 3 (1-based) does not count: hits on it are ignored
PRED = {
    "a": [
        [10, 10, 40, 40, 1.0],  # TP of face 1
        [12, 10, 40, 40, 0.9],  # duplicate of face 1
        [100, 10, 40, 40, 0.8],  # TP of face 2
        [420, 10, 40, 40, 0.7],  # localisation: IoU 0.344 with face 5
        [220, 10, 40, 40, 0.6],  # IoU 0.344 with the ignored face 3
        [200, 10, 40, 40, 0.5],  # hits the ignored face: removed by the protocol, not an FP
        [600, 300, 30, 30, 0.4],  # background
    ],
    "b": [[10, 10, 40, 40, 0.0]],  # TP; lowest score, so removing others keeps the normalisation
}
EXPECTED_CODES = [ea.TRUE_POSITIVE, ea.DUPLICATE, ea.TRUE_POSITIVE, ea.LOCALISATION, ea.IGNORED, ea.REMOVED,
                  ea.BACKGROUND, ea.TRUE_POSITIVE]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))


def hand_gt(root: Path):
    images = [{"name": "a", "boxes": FACES_A, "easy": [1], "medium": [1, 2], "hard": KEPT_A},
              {"name": "b", "boxes": [[10, 10, 40, 40]], "easy": [1], "medium": [1], "hard": [1]}]
    return load_ground_truth(write_ground_truth(root / "gt", [(EVENT, images)]))


def evaluate_folder(gt, root: Path, preds: dict, name: str = "pred"):
    pred = read_predictions(write_predictions(root / name, EVENT, preds), gt, quiet=True)
    return pred, evaluate(gt, pred, breakdown=False)


@pytest.fixture()
def hand(tmp_path):
    gt = hand_gt(tmp_path)
    pred, result = evaluate_folder(gt, tmp_path, PRED)
    return gt, pred, result, ea.analyze(gt, pred, "hard", recall=0.6)


def test_hand_built_labels_and_counts(hand):
    gt, pred, result, analysis = hand
    assert analysis.outcomes.code.tolist() == EXPECTED_CODES
    assert analysis.outcomes.iou[3] == pytest.approx(21 * 41 / (2 * 41 * 41 - 21 * 41))
    assert analysis.outcomes.face[3] == 4 and analysis.outcomes.face[4] == 2  # global face indices
    assert analysis.false_positives == {"localisation": 1, "duplicate": 1, "ignored": 1, "background": 1}
    assert analysis.removed == 1 and analysis.ap == result.metrics["hard"]
    assert analysis.point.threshold_index == 999 and analysis.point.true_positives == 3
    assert analysis.misses["total"] == 2 and analysis.misses["faces"] == 5
    assert analysis.misses["by_height"]["height=20-50"] == {"faces": 5, "missed": 2}
    assert analysis.worst_images[0]["image"] == f"{EVENT}/a" and analysis.worst_images[0]["errors"] == 6


def test_fixes_equal_re_evaluating_the_fixed_files(hand, tmp_path):
    gt, pred, result, analysis = hand
    fixed = analysis.gains["fixed"]
    a = PRED["a"]
    edits = {
        "duplicate": [b for k, b in enumerate(a) if k != 1],
        "ignored": [b for k, b in enumerate(a) if k != 4],
        "background": [b for k, b in enumerate(a) if k != 6],
        "localisation": [b if k != 3 else [400, 10, 40, 40, 0.7] for k, b in enumerate(a)],
    }
    for kind, boxes in edits.items():
        _, re_scored = evaluate_folder(gt, tmp_path, {"a": boxes, "b": PRED["b"]}, name=kind)
        assert fixed[kind] == pytest.approx(re_scored.metrics["hard"], abs=1e-12), kind
        assert analysis.gains["gain"][kind] == pytest.approx(fixed[kind] - analysis.ap, abs=1e-15)
    assert fixed["all"] == pytest.approx(1.0, abs=1e-12)
    # Fixing misses: the two never-recalled faces leave the count (5 -> 3).
    base = score_setting("hard", gt.keep["hard"], match(gt, pred))
    keep = gt.keep["hard"].copy()
    keep[[3, 4]] = False
    assert fixed["missed"] == pytest.approx(score_setting("hard", keep, match(gt, pred)).ap, abs=1e-12)
    assert fixed["missed"] > base.ap


def test_localisation_fix_never_creates_a_duplicate(tmp_path):
    gt = hand_gt(tmp_path)
    # A poorly placed box scores above the TP of the same face: fixed, it takes the face and the TP goes.
    preds = {"a": [[10, 10, 40, 40, 1.0], [420, 10, 40, 40, 0.9], [400, 10, 40, 40, 0.8]], "b": PRED["b"]}
    pred, _ = evaluate_folder(gt, tmp_path, preds)
    analysis = ea.analyze(gt, pred, "hard")
    assert analysis.outcomes.code[:3].tolist() == [ea.TRUE_POSITIVE, ea.LOCALISATION, ea.TRUE_POSITIVE]
    proposal, tp = ea.fixed_flags(analysis.outcomes, ("localisation",))
    assert proposal[:3].tolist() == [True, True, False] and tp[:3].tolist() == [True, True, False]


def test_operating_points(hand):
    gt, pred, _, _ = hand
    at_score = ea.analyze(gt, pred, "hard", score=0.75)
    assert at_score.point.threshold_index == 249 and at_score.point.min_score == 0.8
    assert at_score.false_positives == {"localisation": 0, "duplicate": 1, "ignored": 0, "background": 0}
    at_precision = ea.analyze(gt, pred, "hard", precision=1.0)
    assert at_precision.point.precision == 1.0 and at_precision.point.true_positives == 1
    assert ea.analyze(gt, pred, "hard", score=-5).point.threshold_index == 999
    with pytest.raises(InputError, match="recall 0.9 is never reached"):
        ea.analyze(gt, pred, "hard", recall=0.9)
    with pytest.raises(InputError, match="no prediction has a score >= 2"):
        ea.analyze(gt, pred, "hard", score=2)
    with pytest.raises(InputError, match="choose one operating point"):
        ea.analyze(gt, pred, "hard", score=0.5, recall=0.5)


@pytest.fixture(scope="module")
def random_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("random")
    images, preds = random_events(np.random.default_rng(3), 150)
    gt = load_ground_truth(write_ground_truth(root / "gt", [(EVENT, images)]))
    return gt, read_predictions(write_predictions(root / "pred", EVENT, preds), gt, quiet=True)


@pytest.mark.parametrize("setting", ["easy", "hard"])
def test_split_sums_to_the_protocols_false_positives_and_fixing_all_gives_ap_one(random_case, setting):
    gt, pred = random_case
    curve = score_setting(setting, gt.keep[setting], match(gt, pred))
    for recall in (0.2, 0.5, None):
        kwargs = {"recall": recall * float(curve.recall.max())} if recall else {}
        analysis = ea.analyze(gt, pred, setting, **kwargs)
        t = analysis.point.threshold_index
        total_fp = int(curve.proposals[t] - curve.true_positives[t])
        assert sum(analysis.false_positives.values()) == total_fp > 0
        assert analysis.point.true_positives == int(curve.true_positives[t])
        assert analysis.misses["total"] == curve.n_faces - int(curve.true_positives[t])
    assert sum(analysis.false_positives_all.values()) == int(curve.proposals[-1] - curve.true_positives[-1])
    assert analysis.gains["fixed"]["all"] == pytest.approx(1.0, abs=1e-12)
    for kind in ("duplicate", "ignored", "background", "false_positives"):
        assert analysis.gains["gain"][kind] >= -1e-12


def test_best_overlaps_match_a_loop(random_case, monkeypatch):
    gt, pred = random_case
    monkeypatch.setattr(ea, "PAIRS_PER_BLOCK", 50)  # many blocks
    m = match(gt, pred)
    keep = gt.keep["medium"]
    which = np.arange(len(m.choice))
    got = ea.best_overlaps(gt, pred.boxes, m.image, keep, which)
    for k in which:
        i = m.image[k]
        faces = np.arange(gt.face_offsets[i], gt.face_offsets[i + 1])
        iou = np.clip(np.nan_to_num(float_overlap(gt.boxes[faces], np.repeat(pred.boxes[k:k + 1, :4], len(faces), 0))),
                      0, 1) if len(faces) else np.zeros(0)
        for side, (best, face) in ((True, got[:2]), (False, got[2:])):
            sel = faces[keep[faces] == side]
            values = iou[keep[faces] == side]
            top = values.max(initial=0.0)
            assert best[k] == pytest.approx(top, abs=1e-15)
            assert face[k] == (sel[np.argmax(values)] if top > 0 else -1)


# ------------------------------------------------------------------------------------------------ CLI


@pytest.fixture()
def saved(tmp_path):
    from facebench.cli import main

    gt = hand_gt(tmp_path)
    pred_dir = write_predictions(tmp_path / "pred", EVENT, PRED)
    out = tmp_path / "r.json"
    main(["eval", "widerface", str(pred_dir), "--gt-dir", str(gt.source), "--out", str(out)])
    return gt, pred_dir, out


def test_cli_analyze_writes_table_json_charts_and_gallery(saved, tmp_path, capsys):
    from PIL import Image

    from facebench.cli import main

    gt, pred_dir, out = saved
    images = tmp_path / "images" / EVENT
    images.mkdir(parents=True)
    Image.new("RGB", (700, 400), (40, 40, 40)).save(images / "a.jpg")
    capsys.readouterr()
    main(["analyze", str(out), "--out", str(tmp_path / "an"), "--images", str(tmp_path / "images"),
          "--recall", "0.6"])
    printed = capsys.readouterr().out
    assert "localisation" in printed and "AP if fixed" in printed and "height=20-50" in printed
    doc = json.loads((tmp_path / "an" / "analysis.json").read_text())
    assert doc["schema"] == ea.SCHEMA and doc["false_positives"]["total"] == 4
    assert doc["ap_if_fixed"]["fixed"]["all"] == pytest.approx(1.0)
    for png in ("false_positives.png", "ap_gain.png", "misses.png"):
        assert (tmp_path / "an" / png).stat().st_size > 5000
    page = (tmp_path / "an" / "gallery.html").read_text()
    assert f"{EVENT}/a" in page and "duplicate 1" in page
    drawn = Image.open(tmp_path / "an" / "gallery" / f"{EVENT}__a.jpg").convert("RGB")
    pixels = np.asarray(drawn).astype(int)
    assert pixels[300, 615, 0] > 150 > pixels[300, 615, 1]  # the background box's top edge, in red
    assert abs(pixels[200, 100] - 40).max() < 10  # untouched elsewhere


def test_cli_analyze_bad_inputs_are_one_line(saved, tmp_path):
    from facebench.commands.analyze import analyze_command

    gt, pred_dir, out = saved
    doc = json.loads(out.read_text())

    def run(document, *extra):
        path = tmp_path / "edited.json"
        path.write_text(json.dumps(document))
        with pytest.raises(InputError) as info:
            analyze_command.main([str(path), "--out", str(tmp_path / "x"), *extra], standalone_mode=False)
        assert "\n" not in str(info.value)
        return str(info.value)

    assert "WIDER FACE results only" in run({**doc, "protocol": {"name": "fddb", "version": "1"}})
    missing = {**doc, "settings": {**doc["settings"], "predictions": str(tmp_path / "gone")}}
    assert "settings.predictions" in run(missing) and "--pred-dir" in run(missing)
    assert "folder changed" in run({**doc, "metrics": {**doc["metrics"], "hard": 0.123}})
    with pytest.raises(InputError, match="recall 1 is never reached"):
        analyze_command.main([str(out), "--out", str(tmp_path / "x"), "--recall", "1"], standalone_mode=False)


def test_cli_analyze_finds_the_predictions_beside_a_moved_run_result(saved, tmp_path, monkeypatch, capsys):
    """A run result records its predictions folder; when that path is gone (a cwd-relative path read from
    another folder, or the run folder moved), <result folder>/predictions is used."""
    import shutil

    from facebench.cli import main

    gt, pred_dir, out = saved
    moved = tmp_path / "moved"
    shutil.copytree(pred_dir, moved / "predictions")
    doc = json.loads(out.read_text())
    doc["settings"]["predictions"] = "runs/old/predictions"  # relative to a folder we are not in
    (moved / "result.json").write_text(json.dumps(doc))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    main(["analyze", str(moved / "result.json"), "--out", str(tmp_path / "an2")])
    assert "AP if fixed" in capsys.readouterr().out
    assert json.loads((tmp_path / "an2" / "analysis.json").read_text())["source"]["predictions"] == \
        str(moved / "predictions")


def test_cli_analyze_refuses_a_non_finite_score(saved, tmp_path):
    from facebench.commands.analyze import analyze_command

    _, _, out = saved
    for value in ("nan", "inf"):
        with pytest.raises(InputError, match="--score must be a finite number"):
            analyze_command.main([str(out), "--out", str(tmp_path / "x"), "--score", value], standalone_mode=False)


def test_cli_analyze_checks_its_outputs_before_the_work(saved, tmp_path, capsys):
    """A bad --out or --images is refused before the table is printed or any file is written."""
    from facebench.commands.analyze import analyze_command

    _, _, out = saved
    capsys.readouterr()
    for args, message in (([ "--out", str(out / "sub")], f"--out: {out} is a file, not a folder"),
                          (["--out", str(tmp_path / "an"), "--images", str(tmp_path / "none")],
                           "--images: image folder not found")):
        with pytest.raises(InputError, match=message):
            analyze_command.main([str(out), *args], standalone_mode=False)
        assert capsys.readouterr().out == ""
    assert not (tmp_path / "an").exists()
