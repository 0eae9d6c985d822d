"""FDDB-style ROC figures (true positive rate against false positives) and the published ROC files."""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from facebench.errors import InputError, read_input_bytes, text_lines
from facebench.plots.colours import method_colours


@dataclass(frozen=True)
class RocSeries:
    """One method's ROC: `tpr` against `fp` (any order); `published` draws it thinner and dashed."""

    label: str
    fp: np.ndarray
    tpr: np.ndarray
    published: bool = False


@dataclass(frozen=True)
class PublishedRoc:
    """A ROC file as the FDDB results page distributes them: `TPR FP [threshold ...]` per line."""

    path: str
    label: str
    kind: str  # "disc" or "cont"
    tpr: np.ndarray
    fp: np.ndarray
    threshold: np.ndarray | None


_KIND_PATTERN = re.compile(r"[-_ ]?(disc|cont)(roc)?", re.IGNORECASE)


def roc_kind_and_label(path: str | os.PathLike) -> tuple[str, str]:
    """("disc" | "cont", method name) from a file name such as `HeadHunter_DiscROC.txt` or `BAIDU-IDL-cont.txt`."""
    stem = Path(path).stem
    match = None
    for match in _KIND_PATTERN.finditer(stem):
        pass
    if match is None:
        return "disc", stem
    kind = match.group(1).lower()
    label = (stem[:match.start()] + stem[match.end():]).strip(" -_") or stem
    return kind, label


def read_published_roc(path: str | os.PathLike, kind: str | None = None) -> PublishedRoc:
    """Read a published ROC file (CRLF, tabs and extra columns allowed); bad lines name file and line."""
    path = Path(path)
    data = read_input_bytes(path, "ROC file")
    text = "\n".join(text_lines(data.decode("utf-8", errors="replace")))
    if not text.strip():  # before loadtxt, which would print a multi-line UserWarning
        raise InputError(path, None, "no ROC points (empty file)")
    guessed, label = roc_kind_and_label(path)
    try:
        table = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2, comments=None)
    except ValueError:  # ragged or broken: line by line, so an error names its line
        table = None
    if table is not None and table.shape[0] and table.shape[1] >= 2:
        threshold = table[:, 2].copy() if table.shape[1] >= 3 else None
        return PublishedRoc(path=str(path), label=label, kind=kind or guessed, tpr=table[:, 0].copy(),
                            fp=table[:, 1].copy(), threshold=threshold)
    rows: list[list[float]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise InputError(path, number, "expected 'TPR FP [threshold]'")
        try:
            values = [float(p) for p in parts[:3]]
        except ValueError:
            raise InputError(path, number, f"not numbers: {line.strip()!r}") from None
        rows.append(values)
    if not rows:
        raise InputError(path, None, "no ROC points")
    with_threshold = all(len(r) >= 3 for r in rows)
    tpr = np.array([r[0] for r in rows])
    fp = np.array([r[1] for r in rows])
    threshold = np.array([r[2] for r in rows]) if with_threshold else None
    return PublishedRoc(path=str(path), label=label, kind=kind or guessed, tpr=tpr, fp=fp, threshold=threshold)


def tpr_at(series: RocSeries, limit: float) -> float | None:
    """Largest TPR over points with FP <= limit (the figure shown in legends)."""
    ok = np.asarray(series.fp) <= limit
    return float(np.asarray(series.tpr)[ok].max()) if ok.any() else None


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def legend_order(series: Sequence[RocSeries], legend_at: float) -> list[RocSeries]:
    """The evaluated methods first (their order kept), then the published ones by TPR at `legend_at`."""
    def key(s: RocSeries) -> float:
        value = tpr_at(s, legend_at)
        return -1.0 if value is None else value

    own = [s for s in series if not s.published]
    return own + sorted((s for s in series if s.published), key=key, reverse=True)


LEGEND_INSIDE = 8  # entries that fit in the lower right corner of a panel
LEGEND_ROWS = 40  # entries per legend column beside a panel


def legend_layout(entries: int) -> dict:
    """Legend placement: inside the axes when short, else beside them (rows capped, smaller font)."""
    if entries <= LEGEND_INSIDE:
        return {"loc": "lower right", "fontsize": 7}
    return {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0,
            "fontsize": 7 if entries <= 16 else 6, "ncol": -(-entries // LEGEND_ROWS)}


def figure_size(panels: int, entries: int) -> tuple[float, float]:
    """Width and height (inches) leaving room for the legends beside the panels."""
    if entries <= LEGEND_INSIDE:
        return 6.0 * panels, 5.0
    columns = -(-entries // LEGEND_ROWS)
    return (6.0 + 1.8 * columns) * panels, max(5.0, 0.12 * min(entries, LEGEND_ROWS) + 1.0)


def plot_roc_panels(panels: Mapping[str, Sequence[RocSeries]], path: str | os.PathLike, *, title: str = "FDDB",
                    max_fp: float = 2000, legend_at: float = 1000) -> None:
    """One panel per key (e.g. discrete / continuous), as on the FDDB results page; PNG/PDF by suffix.

    Legends show each method's TPR at `legend_at` false positives: the evaluated methods first, then the
    published ones sorted by it; long legends sit beside the axes and the saved figure is cropped to hold them.
    """
    plt = _pyplot()
    n = max(1, len(panels))
    most = max((len(series) for series in panels.values()), default=0)
    fig, axes = plt.subplots(1, n, figsize=figure_size(n, most), squeeze=False)
    labels = list(dict.fromkeys(s.label for series in panels.values() for s in series))
    own = {s.label for series in panels.values() for s in series if not s.published}
    colour = method_colours(labels, own)
    for ax, (name, series) in zip(axes[0], panels.items()):
        for s in legend_order(series, legend_at):
            fp = np.asarray(s.fp, dtype=float)
            tpr = np.asarray(s.tpr, dtype=float)
            order = np.argsort(fp, kind="stable")
            value = tpr_at(s, legend_at)
            label = s.label if value is None else f"{s.label} ({value:.4f})"
            style = ({"linestyle": "--", "linewidth": 1.0, "zorder": 2} if s.published
                     else {"linestyle": "-", "linewidth": 2.2, "zorder": 3})  # evaluated curves on top
            ax.plot(fp[order], tpr[order], color=colour[s.label], label=label, **style)
        ax.set_xlim(0, max_fp)
        ax.set_ylim(0, 1.0)
        ax.set_xlabel("False positives")
        ax.set_ylabel("True positive rate")
        ax.grid(True, linestyle=":", linewidth=0.6)
        ax.set_title(f"{title} {name}".strip())
        if series:
            ax.legend(**legend_layout(len(series)))
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=130, bbox_inches="tight")
    plt.close(fig)
