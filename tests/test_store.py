"""The results store: validation with file/line/field errors, grouping, and refusing to merge incomparable runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facebench.errors import InputError
from facebench.results import make_document, write_document
from facebench.store import (GroupKey, convention, derived_label, group, load_result, merge_runs, scan,
                             split_entries, validate_document)

REPO = Path(__file__).resolve().parent.parent
GT_A = "a" * 64
GT_B = "b" * 64
HEADLINE = {"widerface-val": ("easy", "medium", "hard"), "fddb": ("disc_tpr_at_1000fp", "cont_tpr_at_1000fp"),
            "afw": ("ap",), "pascal": ("ap",)}
PROTOCOLS = {"widerface-val": ("wider_face", "1"), "fddb": ("fddb", "1"), "afw": ("face-eval", "mathias2014-d5f4d0b"),
             "pascal": ("face-eval", "mathias2014-d5f4d0b")}


def synthetic_curves(benchmark: str, values: dict[str, float], n: int = 60) -> dict:
    """Plausible curves ending at the given headline values (shapes only matter for plotting)."""
    if benchmark == "widerface-val":
        out = {}
        for setting, ap in values.items():
            recall = np.linspace(0, min(1.0, ap + 0.05), n)
            out[setting] = {"precision": (1 - 0.5 * (recall / recall[-1]) ** 6).tolist(), "recall": recall.tolist()}
        return out
    if benchmark == "fddb":
        fp = np.arange(n)[::-1] * 40.0
        return {kind: {"tpr": (values[f"{kind}_tpr_at_1000fp"] * (1 - np.exp(-fp / 150.0))).tolist(),
                       "fp": fp.tolist()} for kind in ("disc", "cont")}
    recall = np.linspace(0.01, values["ap"], n)
    return {"pr": {"recall": recall.tolist(), "precision": (1 - 0.3 * recall ** 8).tolist()}}


def synthetic_document(benchmark: str = "widerface-val", values: dict | None = None, gt: str = GT_A,
                       label: str | None = "det", semantics: str = "official", detector: dict | None = None,
                       timing: dict | None = None, version: str | None = None, created: str | None = None) -> dict:
    """A result JSON in the real envelope (make_document), as the protocols would write it."""
    keys = HEADLINE[benchmark]
    values = dict(values or {k: 0.9 - 0.1 * i for i, k in enumerate(keys)})
    name, default_version = PROTOCOLS[benchmark]
    settings = {"semantics": semantics, "iou_threshold": 0.5, "thresh_num": 1000} if benchmark == "widerface-val" \
        else {"ellipse_convention": "opencv21", "matching": "hungarian-max-sum"} if benchmark == "fddb" \
        else {"annotation_style": "mathias2014", "iterations": 5, "overlap_threshold": 0.5}
    extra: dict = {}
    if label is not None:
        extra["label"] = label
    if detector is not None:
        extra["detector"] = detector
    if timing is not None:
        extra["timing"] = timing
    doc = make_document(benchmark=benchmark, protocol=name, protocol_version=version or default_version,
                        settings=settings, metrics=values, ground_truth_sha256=gt,
                        curves=synthetic_curves(benchmark, values), extra=extra)
    if created:
        doc["created"] = created
    return doc


def write(path: Path, doc: dict) -> Path:
    return write_document(doc, path)


# -------------------------------------------------------------------------------------------------- validation

def test_valid_document_loads_with_its_key(tmp_path: Path) -> None:
    path = write(tmp_path / "r.json", synthetic_document(values={"easy": 0.9, "medium": 0.8, "hard": 0.7}))
    result = load_result(path)
    assert result.key == GroupKey("det", "widerface-val", GT_A, "wider_face", "1",
                                  'semantics="official";iou_threshold=0.5;thresh_num=1000')
    assert result.kind == "evaluated" and result.family == "wider" and result.ms_per_image is None


def test_run_document_identity_includes_config_and_weights(tmp_path: Path) -> None:
    det = {"name": "hambox", "options": {"scale": 1}, "config_hash": "c0ffee12", "weights_sha256": "d" * 64}
    path = write(tmp_path / "r.json", synthetic_document(detector=det, timing={"ms_per_image": 12.5}, label=None))
    result = load_result(path)
    assert result.kind == "run" and result.detector_name == "hambox"
    assert result.detector_id == f"hambox@config=c0ffee12@weights={'d' * 64}"
    assert result.ms_per_image == 12.5


@pytest.mark.parametrize("mutate, field, present", [
    (lambda d: d.update(ground_truth_sha256="not-a-sha"), "ground_truth_sha256", True),
    (lambda d: d["protocol"].update(version=2), "protocol.version", True),
    (lambda d: d["protocol"].pop("name"), "protocol.name", False),
    (lambda d: d.update(benchmark=""), "benchmark", True),
    (lambda d: d["metrics"].update(hard="high"), "metrics.hard", True),
    (lambda d: d["metrics"].pop("medium"), "metrics.medium", False),
    (lambda d: d.update(created="yesterday"), "created", True),
    (lambda d: d["curves"]["easy"].update(recall=[0.1, 0.2]), "curves.easy", True),
    # curve arrays hold finite numbers or null (the plots and the HTML leaderboard read them as floats)
    (lambda d: d["curves"]["hard"].update(precision=["a"] * len(d["curves"]["hard"]["recall"])),
     "curves.hard.precision", True),
    (lambda d: d["curves"]["hard"].update(precision=5), "curves.hard.precision", True),
    (lambda d: d["curves"]["medium"]["recall"].__setitem__(3, True), "curves.medium.recall", True),
    (lambda d: d["curves"]["easy"]["precision"].__setitem__(0, float("inf")), "curves.easy.precision", True),
    (lambda d: d["curves"].update(easy=[0.1, 0.2]), "curves.easy", True),
    (lambda d: d.update(detector={"options": {}}), "detector.name", False),
    (lambda d: d.update(detector={"name": "x", "weights_sha256": "123"}), "detector.weights_sha256", True),
    (lambda d: d.update(timing={"ms_per_image": -3}), "timing.ms_per_image", True),
    (lambda d: d.update(timing={"ms_per_image": {"total": "fast"}}), "timing.ms_per_image.total", True),
    (lambda d: d.update(settings=[]), "settings", True),
    # settings the leaderboard and the checks read as numbers
    (lambda d: d["settings"].update(thresh_num="many"), "settings.thresh_num", True),
    (lambda d: d["settings"].update(iou_threshold=None), "settings.iou_threshold", True),
])
def test_invalid_fields_name_file_line_and_field(tmp_path: Path, mutate, field: str, present: bool) -> None:
    doc = synthetic_document()
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc, indent=1))
    with pytest.raises(InputError) as info:
        load_result(path)
    err = info.value
    assert err.path == str(path)
    assert err.message.startswith(f"field '{field}': ")
    if present:  # the error points at the line holding the field
        assert f'"{field.split(".")[-1]}":' in path.read_text().splitlines()[err.line - 1]
    else:
        assert "missing" in err.message
    assert str(path) in str(err)


@pytest.mark.parametrize("benchmark, curve, key", [("fddb", "disc", "fp"), ("fddb", "cont", "tpr"),
                                                   ("afw", "pr", "recall"), ("pascal", "pr", "precision")])
def test_malformed_curve_arrays_of_every_family_are_errors(tmp_path: Path, benchmark: str, curve: str,
                                                           key: str) -> None:
    doc = synthetic_document(benchmark)
    doc["curves"][curve][key][-1] = "x"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc, indent=1))
    with pytest.raises(InputError) as info:
        load_result(path)
    assert info.value.message == f"field 'curves.{curve}.{key}': element {len(doc['curves'][curve][key]) - 1} " \
                                 "must be a number or null, got \"x\""
    assert f'"{key}":' in path.read_text().splitlines()[info.value.line - 1]


def test_curve_arrays_may_hold_null_as_the_writers_store_nan(tmp_path: Path) -> None:
    doc = synthetic_document()
    doc["curves"]["easy"]["precision"][:3] = [float("nan")] * 3  # make_document / write_document: NaN -> null
    path = write(tmp_path / "r.json", doc)
    assert load_result(path).doc["curves"]["easy"]["precision"][:3] == [None, None, None]
    fddb = synthetic_document("fddb")
    fddb["curves"]["disc"]["threshold"] = [None] * len(fddb["curves"]["disc"]["fp"])
    load_result(write(tmp_path / "f.json", fddb))


def test_scan_skips_a_file_with_a_malformed_curve(tmp_path: Path, capsys) -> None:
    write(tmp_path / "ok.json", synthetic_document())
    bad = synthetic_document()
    bad["curves"]["hard"]["precision"] = 5
    write(tmp_path / "bad.json", bad)
    with pytest.raises(InputError, match=r"bad\.json:\d+: field 'curves\.hard\.precision': must be an array"):
        scan(tmp_path)
    assert [r.path.name for r in scan(tmp_path, skip_invalid=True)] == ["ok.json"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "skipped" in err and "bad.json" in err and "curves.hard.precision" in err


@pytest.mark.parametrize("value", ["30", [30, 30], None, -1, True])
def test_face_eval_size_settings_must_be_numbers(tmp_path: Path, value) -> None:
    doc = synthetic_document("afw")
    doc["settings"]["min_width"] = value
    with pytest.raises(InputError, match="field 'settings.min_width': must be"):
        load_result(write(tmp_path / "bad.json", doc))
    doc["settings"]["min_width"] = 20  # another size rule is valid, and the leaderboard shows it
    assert load_result(write(tmp_path / "ok.json", doc)).doc["settings"]["min_width"] == 20


def test_missing_required_field_and_bad_json_are_clear(tmp_path: Path) -> None:
    doc = synthetic_document()
    del doc["schema"]
    (tmp_path / "a.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="missing field 'schema'"):
        load_result(tmp_path / "a.json")
    (tmp_path / "b.json").write_text('{"schema": "facebench.result/1",\n "benchmark": }')
    with pytest.raises(InputError) as info:
        load_result(tmp_path / "b.json")
    assert info.value.line == 2 and "not valid JSON" in info.value.message


def test_numbers_beyond_float_or_int_parsing_are_field_errors(tmp_path: Path) -> None:
    doc = synthetic_document()
    doc["metrics"]["recall_at_top"] = 10 ** 400  # an integer past float range: math.isfinite would overflow
    with pytest.raises(InputError, match="field .metrics.recall_at_top.: must be a number or null"):
        load_result(write(tmp_path / "a.json", doc))
    doc = synthetic_document()
    doc["curves"]["hard"]["recall"][0] = 10 ** 400
    with pytest.raises(InputError, match="element 0 must be a number or null"):
        load_result(write(tmp_path / "b.json", doc))
    (tmp_path / "c.json").write_text('{"schema": ' + "9" * 5000 + "}")  # past int()'s 4300-digit limit
    with pytest.raises(InputError, match="c.json: not a usable JSON document"):
        load_result(tmp_path / "c.json")


def test_unknown_benchmark_needs_no_headline_metrics(tmp_path: Path) -> None:
    doc = make_document(benchmark="sample", protocol="custom", protocol_version="0", settings={},
                        metrics={"score": 0.5}, ground_truth_sha256=GT_A)
    validate_document(doc, tmp_path / "x.json")


def test_scan_stops_on_invalid_file_or_skips_it(tmp_path: Path, capsys) -> None:
    write(tmp_path / "ok.json", synthetic_document())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "broken.json").write_text('{"schema": "facebench.result/1", "benchmark": "x"}')
    with pytest.raises(InputError, match="broken.json"):
        scan(tmp_path)
    assert [r.path.name for r in scan(tmp_path, skip_invalid=True)] == ["ok.json"]
    assert "skipped" in capsys.readouterr().err
    with pytest.raises(InputError, match="results folder not found"):
        scan(tmp_path / "nope")


def test_scan_ignores_other_json_but_not_damaged_results(tmp_path: Path) -> None:
    """A `facebench run` folder also holds run.json and cache *.meta.json; those are not results."""
    run = tmp_path / "runs" / "yunet"
    write(run / "result.json", synthetic_document())
    (run / "run.json").write_text('{"detector": {"name": "yunet"}, "num_shards": 1}')
    (run / "cache").mkdir()
    (run / "cache" / "part-0000.meta.json").write_text("[1, 2]")
    ignored: list[Path] = []
    assert [r.path.name for r in scan(tmp_path, ignored=ignored)] == ["result.json"]
    assert sorted(p.name for p in ignored) == ["part-0000.meta.json", "run.json"]
    (run / "truncated.json").write_text('{"schema": "facebench.res')
    with pytest.raises(InputError, match="truncated.json.*not valid JSON"):
        scan(tmp_path)


def test_scan_skips_other_facebench_documents_but_validates_results(tmp_path: Path) -> None:
    """`facebench compare --out`, `analyze` and `anchors --out x.json` documents in a results folder are not
    results: skipped (listed in `ignored`), never validated as results; an old result schema is still an error."""
    write(tmp_path / "result.json", synthetic_document())
    (tmp_path / "cmp.json").write_text(json.dumps({"schema": "facebench.comparison/1", "a": "x", "b": "y"}))
    (tmp_path / "an.json").write_text(json.dumps({"schema": "facebench.error_analysis/1", "ap": 0.5}))
    anchors = make_document(benchmark="widerface-train", protocol="anchor-coverage", protocol_version="1",
                            settings={}, metrics={"max_share_matchable": 0.99}, ground_truth_sha256=GT_A)
    write(tmp_path / "anchors.json", anchors)
    ignored: list[Path] = []
    assert [r.path.name for r in scan(tmp_path, ignored=ignored)] == ["result.json"]
    assert sorted(p.name for p in ignored) == ["an.json", "anchors.json", "cmp.json"]
    load_result(tmp_path / "anchors.json")  # read directly, it is a valid document without WIDER metrics
    old = synthetic_document()
    old["schema"] = "facebench.result/0"
    write(tmp_path / "old.json", old)
    with pytest.raises(InputError, match="old.json.*unknown schema"):
        scan(tmp_path)


def test_missing_field_points_at_the_object_that_should_hold_it(tmp_path: Path) -> None:
    doc = synthetic_document()
    del doc["metrics"]["hard"]  # curves.hard still exists further down: not the line to show
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc, indent=1))
    with pytest.raises(InputError) as info:
        load_result(path)
    assert info.value.message.startswith("field 'metrics.hard': missing")
    assert path.read_text().splitlines()[info.value.line - 1].strip() == '"metrics": {'


@pytest.mark.parametrize("value", [84.04, -0.5, 1.0000001])
def test_headline_metrics_must_be_fractions(tmp_path: Path, value: float) -> None:
    doc = synthetic_document()
    doc["metrics"]["hard"] = value  # e.g. a percentage: a gate would read it as a huge improvement
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc, indent=1))
    with pytest.raises(InputError, match=r"field 'metrics.hard': must be a fraction in \[0, 1\]"):
        load_result(path)


# ------------------------------------------------------------------------------------------ grouping / merging

def test_runs_of_one_entry_group_oldest_first(tmp_path: Path) -> None:
    write(tmp_path / "r2.json", synthetic_document(created="2026-02-01T00:00:00+00:00"))
    write(tmp_path / "r1.json", synthetic_document(created="2026-01-01T00:00:00+00:00"))
    groups = group(scan(tmp_path))
    assert len(groups) == 1
    (runs,) = groups.values()
    assert [r.path.name for r in runs] == ["r1.json", "r2.json"]


@pytest.mark.parametrize("other, what", [
    (dict(gt=GT_B), "ground truth"),
    (dict(version="2"), "protocol version"),
    (dict(semantics="python-port"), "protocol convention"),
])
def test_merging_runs_of_different_ground_truth_or_protocol_is_refused(tmp_path: Path, other: dict,
                                                                       what: str) -> None:
    a = load_result(write(tmp_path / "a.json", synthetic_document()))
    b = load_result(write(tmp_path / "b.json", synthetic_document(**other)))
    with pytest.raises(InputError, match=f"cannot merge .*{what}"):
        merge_runs([a, b])
    groups = group([a, b])  # grouping keeps them apart instead
    assert len(groups) == 2
    assert len(split_entries(groups)[("det", "widerface-val")]) == 2


def _evaluated(predictions: str, created: str, hard: float = 0.5) -> dict:
    """An evaluated WIDER result (no label, no detector block) of a predictions folder."""
    doc = synthetic_document(values={"easy": 0.9, "medium": 0.8, "hard": hard}, label=None, created=created)
    doc["settings"]["predictions"] = predictions
    return doc


def test_evaluated_prediction_sets_of_one_name_are_separate_entries(tmp_path: Path) -> None:
    """e1/mymodel/widerface_txt and e2/mymodel/widerface_txt are both named "mymodel" but are two entries;
    evaluating e1 again (the same predictions) is the same entry, latest run last."""
    write(tmp_path / "a.json", _evaluated("/w/e1/mymodel/widerface_txt", "2026-01-01T00:00:00+00:00", 0.5))
    write(tmp_path / "b.json", _evaluated("/w/e2/mymodel/widerface_txt", "2026-01-02T00:00:00+00:00", 0.7))
    write(tmp_path / "c.json", _evaluated("/w/e1/./mymodel/widerface_txt", "2026-01-03T00:00:00+00:00", 0.6))
    results = scan(tmp_path)
    assert {r.detector_name for r in results} == {"mymodel"}
    groups = group(results)
    assert len(groups) == 2
    runs = {key.detector: [r.path.name for r in members] for key, members in groups.items()}
    assert runs == {"mymodel@predictions=/w/e1/mymodel/widerface_txt": ["a.json", "c.json"],
                    "mymodel@predictions=/w/e2/mymodel/widerface_txt": ["b.json"]}
    assert results[0].detector_id == "mymodel"  # what `facebench check` matches on is unchanged


def test_entry_identity_prefers_the_recorded_predictions_digest() -> None:
    from facebench.store import prediction_source

    doc = synthetic_document("afw", {"ap": 0.9})
    doc["settings"]["detections"] = "/a/x/dets.txt"
    assert prediction_source(doc) == "/a/x/dets.txt"
    doc["detections_sha256"] = "c" * 64  # face-eval records the detections' sha256: moved files stay one entry
    assert prediction_source(doc) == "sha256:" + "c" * 64
    fddb = {"settings": {"detections": "/d/m/../m/fold-01-out.txt, /d/m/fold-02-out.txt"}}
    assert prediction_source(fddb) == "/d/m/fold-01-out.txt, /d/m/fold-02-out.txt"
    assert prediction_source({"settings": {}}) is None


def test_derived_labels_from_prediction_paths() -> None:
    base = {"settings": {}}
    assert derived_label({"settings": {"predictions": "/x/yolov7_derronqi/widerface_txt"}}) == "yolov7_derronqi"
    assert derived_label({"settings": {"detections": "/x/afw/results/S3FD/SFD_AFW_PR.txt"}}) == "SFD_AFW_PR"
    assert derived_label({"settings": {"detections": "/d/MTCNN_x/fold-01-out.txt, /d/MTCNN_x/fold-02-out.txt"}}) \
        == "MTCNN_x"
    assert derived_label({"label": "named", **base}) == "named"
    assert derived_label(base, Path("/r/run3.json")) == "run3"


def test_convention_lists_only_number_changing_settings() -> None:
    doc = synthetic_document()
    doc["settings"]["predictions"] = "/somewhere"
    assert convention(doc) == 'semantics="official";iou_threshold=0.5;thresh_num=1000'


# ----------------------------------------------------------------------------------------------------- real data

def test_committed_baselines_are_valid_facebench_results() -> None:
    results = scan(REPO / "results" / "baselines")
    assert len(results) >= 20
    benchmarks = {r.benchmark for r in results}
    assert {"widerface-val", "afw", "pascal"} <= benchmarks
    for result in results:
        assert result.doc["source"]["kind"] == "third-party predictions"
        assert result.path.stat().st_size < 210_000
    assert len(group(results)) == len(results)  # one entry per file: nothing silently merged


def test_real_wider_result_round_trips_through_the_store(tmp_path: Path, shared_data: Path) -> None:
    from protocols import wider_face

    gt = wider_face.load_ground_truth(shared_data / "widerface" / "ground_truth")
    folder = shared_data / "widerface" / "results" / "retinaface-mobilenet0.25_thflgg133" / "widerface_txt"
    result = wider_face.evaluate(gt, wider_face.read_predictions(folder, gt, quiet=True), breakdown=False)
    stored = load_result(write(tmp_path / "retina.json", result.to_document()))
    assert stored.detector_name == "retinaface-mobilenet0.25_thflgg133"
    assert stored.ground_truth_sha256 == gt.sha256
    baseline = load_result(REPO / "results" / "baselines" / "widerface-val__retinaface-mobilenet0.25__official.json")
    assert stored.comparable_key() == baseline.comparable_key()
    for setting in ("easy", "medium", "hard"):  # the committed baseline is this very computation
        assert stored.metrics[setting] == pytest.approx(baseline.metrics[setting], abs=1e-12)
    # golden.md, official semantics
    assert stored.metrics["easy"] == pytest.approx(0.907016114445436, abs=1e-12)


def test_unreadable_inputs_are_one_line_errors(tmp_path):
    # Every text reader goes through facebench.errors.read_input_*: a folder, bad bytes or a missing file
    # is an InputError naming the file (and the line of the bad byte), never a traceback.
    from facebench.errors import read_input_bytes, read_input_text
    from facebench.results import read_document

    with pytest.raises(InputError, match="is a directory, expected a result file"):
        read_document(tmp_path)
    bad = tmp_path / "r.json"
    bad.write_bytes(b'{"a": 1,\n "b": "\xff"}\n')
    with pytest.raises(InputError, match=r"r\.json:2: result file is not UTF-8 text \(byte 0xff\)"):
        read_document(bad)
    with pytest.raises(InputError, match="annotation file not found"):
        read_input_text(tmp_path / "missing.txt", "annotation file")
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfhello\n")
    assert read_input_text(bom) == "hello\n" and read_input_bytes(bom).startswith(b"\xef")
