"""Precision-recall figures: one panel per setting, several methods per panel, AP in the legend."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class PRCurve:
    """One method's PR curve on one setting; `ap` is shown in the legend."""

    label: str
    recall: np.ndarray
    precision: np.ndarray
    ap: float | None = None
    published: bool = False
    point: bool = False  # a single operating point (drawn as a marker)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def pr_figure(panels: dict[str, Sequence[PRCurve]], *, title: str = "", ap_format: str = "{:.3f}",
              legend_loc: str = "lower left"):
    """One PR panel per key of `panels` (e.g. easy/medium/hard), legends sorted by AP, each method in one
    colour on every panel; returns the matplotlib figure."""
    from facebench.plots.colours import method_colours

    plt = _pyplot()
    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 5.0), squeeze=False)
    labels = [c.label for curves in panels.values() for c in curves]
    colour = method_colours(labels, {c.label for curves in panels.values() for c in curves if not c.published})
    for ax, (setting, curves) in zip(axes[0], panels.items()):
        ordered = sorted(curves, key=lambda c: -(c.ap if c.ap is not None and np.isfinite(c.ap) else -1))
        for curve in ordered:
            label = curve.label if curve.ap is None else f"{ap_format.format(curve.ap)} {curve.label}"
            recall = np.asarray(curve.recall, dtype=float)
            precision = np.asarray(curve.precision, dtype=float)
            keep = np.isfinite(recall) & np.isfinite(precision)
            if curve.point or keep.sum() == 1:
                ax.plot(recall[keep], precision[keep], "o", color=colour[curve.label], label=label)
            else:
                ax.plot(recall[keep], precision[keep], "--" if curve.published else "-", color=colour[curve.label],
                        linewidth=1.2 if curve.published else 2, label=label)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("Recall")
        ax.set_ylabel("Precision")
        ax.grid(True, linestyle=":", linewidth=0.6)
        ax.set_title(f"{title} {setting}".strip())
        if curves:
            ax.legend(loc=legend_loc, fontsize=7)
    fig.tight_layout()
    return fig


def plot_pr_panels(panels: dict[str, Sequence[PRCurve]], path: str | os.PathLike, *, title: str = "",
                   ap_format: str = "{:.3f}", legend_loc: str = "lower left") -> None:
    """Draw `pr_figure(panels, ...)` and save it to PNG/PDF/SVG by suffix."""
    plt = _pyplot()
    fig = pr_figure(panels, title=title, ap_format=ap_format, legend_loc=legend_loc)
    fig.savefig(os.fspath(path), dpi=130)
    plt.close(fig)
