"""Overlay figures: any number of result JSONs and published curves on one figure, as PNG and/or PDF.

WIDER: one PR panel per setting (easy, medium, hard); FDDB: discrete and continuous ROC panels (TPR against
false positives); AFW / PASCAL: one PR panel. Runs are solid lines, published curves dashed, single operating
points markers. Legends carry the headline number (AP, or TPR at 1000 FP).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from facebench.errors import PLOT_SUFFIXES, InputError, warn
from facebench.store import protocol_family

PANELS = {"wider": ("easy", "medium", "hard"), "fddb": ("disc", "cont"), "face-eval": ("pr",)}
TITLES = {"widerface-val": "WIDER FACE val", "fddb": "FDDB", "afw": "AFW", "pascal": "PASCAL Face"}
FDDB_PANEL_TITLES = {"disc": "discrete score", "cont": "continuous score"}
ROC_FP_MAX = 2000


@dataclass(frozen=True, eq=False)
class OverlayCurve:
    """One curve on one panel: x is recall (PR) or false positives (ROC), y precision or TPR."""

    label: str
    panel: str
    x: np.ndarray
    y: np.ndarray
    value: float | None = None  # legend number: AP, or TPR at 1000 FP (fractions)
    published: bool = False
    point: bool = False


def _array(values: Any, where: Any = None, field: str = "curves") -> np.ndarray:
    """JSON list (nulls allowed) -> float array with NaN for null; InputError naming `where` for anything else."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(np.float64).ravel()
    if isinstance(values, (list, tuple)) and all(
            v is None or (isinstance(v, (int, float, np.number)) and not isinstance(v, bool)) for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    raise InputError(where, None, f"field '{field}': must be an array of numbers or nulls, got {str(values)[:60]}")


def _pick(curve: Mapping[str, Any], names: Sequence[str]) -> Any:
    for name in names:
        if name in curve:
            return curve[name]
    return None


def _roc_panels(curves: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """disc/cont ROC blocks of an FDDB result, whatever their exact key names."""
    found: dict[str, Mapping[str, Any]] = {}
    for key, curve in curves.items():
        if not isinstance(curve, Mapping):
            continue
        lower = key.lower()
        kind = "disc" if "disc" in lower else "cont" if "cont" in lower else None
        if kind and kind not in found:
            found[kind] = curve
    return found


def curves_from_document(doc: Mapping[str, Any], label: str, published: bool = False,
                         source: str | os.PathLike | None = None) -> list[OverlayCurve]:
    """The overlay curves of one result JSON (or of a published reference in the same layout)."""
    family = protocol_family(doc.get("benchmark", ""), (doc.get("protocol") or {}).get("name", ""))
    curves = doc.get("curves") or {}
    metrics = doc.get("metrics") or {}
    where = source if source is not None else label
    out: list[OverlayCurve] = []
    if family == "wider":
        for setting in PANELS["wider"]:
            curve = curves.get(setting)
            if isinstance(curve, Mapping) and "precision" in curve and "recall" in curve:
                x = _array(curve["recall"], where, f"curves.{setting}.recall")
                y = _array(curve["precision"], where, f"curves.{setting}.precision")
                out.append(OverlayCurve(label, setting, x, y, metrics.get(setting), published))
    elif family == "face-eval":
        curve = curves.get("pr")
        if isinstance(curve, Mapping) and "precision" in curve and "recall" in curve:
            x = _array(curve["recall"], where, "curves.pr.recall")
            y = _array(curve["precision"], where, "curves.pr.precision")
            out.append(OverlayCurve(label, "pr", x, y, metrics.get("ap"), published, point=len(x) == 1))
    elif family == "fddb":
        for kind, curve in _roc_panels(curves).items():
            tpr = _pick(curve, ("tpr", "true_positive_rate", "TPR"))
            fp = _pick(curve, ("fp", "false_positives", "FP"))
            if tpr is None or fp is None:
                continue
            out.append(OverlayCurve(label, kind, _array(fp, where, f"curves.{kind}.fp"),
                                    _array(tpr, where, f"curves.{kind}.tpr"), metrics.get(f"{kind}_tpr_at_1000fp"),
                                    published))
    if not out:
        raise InputError(where, None, f"no curves to plot for benchmark {doc.get('benchmark')!r} "
                                      "(field 'curves' lacks the expected entries)")
    missing = [panel for panel in PANELS.get(family, ()) if panel not in {c.panel for c in out}]
    if missing and not published:  # published files may lack a panel (an FDDB method without ContROC)
        warn(f"{where}: no usable curves.{'/'.join(missing)}; left out of the {' and '.join(missing)} "
             f"panel{'s' * (len(missing) > 1)}")
    return out


def curves_from_reference(ref: Any) -> list[OverlayCurve]:
    """The overlay curves of a facebench.published.PublishedReference."""
    doc = {"benchmark": ref.benchmark, "protocol": {"name": ref.family}, "metrics": ref.metrics,
           "curves": {k: {n: np.asarray(a) for n, a in v.items()} for k, v in ref.curves.items()}}
    curves = curves_from_document(doc, ref.method, published=True, source=ref.source)
    return [OverlayCurve(c.label, c.panel, c.x, c.y, c.value, True, ref.point) for c in curves]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _pr_panels(curves: Sequence[OverlayCurve], family: str, benchmark: str) -> dict[str, list[OverlayCurve]]:
    """Panel title -> its curves (WIDER: easy / medium / hard; face-eval: one panel)."""
    panels: dict[str, list[OverlayCurve]] = {}
    for panel in PANELS[family] if family == "wider" else ("pr",):
        items = [c for c in curves if c.panel == panel]
        if items:
            panels[panel if family == "wider" else TITLES.get(benchmark, benchmark)] = items
    return panels


def pr_figure(curves: Sequence[OverlayCurve], family: str, benchmark: str):
    """The PR figure: a panel per setting, legends sorted by AP, each method in one colour on every panel."""
    from facebench.plots.pr import PRCurve, pr_figure as draw

    percent = family == "face-eval"  # face-eval legends print AP x 100 with two decimals
    panels = {setting: [PRCurve(c.label, c.x, c.y, None if c.value is None else (100 * c.value if percent else c.value),
                                published=c.published, point=c.point) for c in items]
              for setting, items in _pr_panels(curves, family, benchmark).items()}
    title = TITLES.get(benchmark, benchmark) if family == "wider" else ""
    return draw(panels, title=title, ap_format="{:.2f}" if percent else "{:.3f}")


def _plot_pr(curves: Sequence[OverlayCurve], family: str, benchmark: str, path: Path) -> None:
    plt = _pyplot()
    fig = pr_figure(curves, family, benchmark)
    fig.savefig(os.fspath(path), dpi=130)
    plt.close(fig)


def _plot_roc(curves: Sequence[OverlayCurve], benchmark: str, path: Path, fp_max: float = ROC_FP_MAX) -> None:
    """FDDB discrete and continuous ROC panels through facebench.plots.roc (the project's ROC figure)."""
    from facebench.plots.roc import RocSeries, plot_roc_panels

    panels = {}
    for panel in PANELS["fddb"]:
        items = [c for c in curves if c.panel == panel]
        if items:
            panels[f"ROC, {FDDB_PANEL_TITLES[panel]}"] = [RocSeries(c.label, c.x, c.y, c.published) for c in items]
    plot_roc_panels(panels, path, title=TITLES.get(benchmark, benchmark), max_fp=fp_max)


def unique_labels(labels: Sequence[str], details: Sequence[str]) -> list[str]:
    """Labels made unique: a repeated label gets its detail (e.g. the semantics) in brackets, then a number."""
    out = []
    for label, detail in zip(labels, details):
        out.append(f"{label} ({detail})" if labels.count(label) > 1 and detail else label)
    seen: dict[str, int] = {}
    for i, label in enumerate(out):
        if out.count(label) > 1:
            seen[label] = seen.get(label, 0) + 1
            out[i] = f"{label} #{seen[label]}"
    return out


def plot_overlay(curves: Iterable[OverlayCurve], benchmark: str, family: str,
                 paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Draw the curves on one figure and save it to every path (format by suffix)."""
    curves = list(curves)
    if not curves:
        raise InputError(None, None, "nothing to plot: no result or published curve given")
    written = []
    for path in paths:
        path = Path(path)
        if path.suffix.lower() not in PLOT_SUFFIXES:
            raise InputError(path, None, f"figure file must end in one of {', '.join(PLOT_SUFFIXES)}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if family == "fddb":
            _plot_roc(curves, benchmark, path)
        elif family in ("wider", "face-eval"):
            _plot_pr(curves, family, benchmark, path)
        else:
            raise InputError(path, None, f"no figure type for benchmark {benchmark!r}")
        written.append(path)
    return written


def figure_png(curves: Iterable[OverlayCurve], benchmark: str, family: str) -> bytes:
    """The overlay figure as PNG bytes (for embedding in a page)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "figure.png"
        plot_overlay(curves, benchmark, family, [path])
        return path.read_bytes()
