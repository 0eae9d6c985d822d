"""Leaderboard rendering: Markdown, CSV and a static HTML page with the PR/ROC overlay figures."""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import os
from pathlib import Path

from facebench.errors import InputError
from facebench.leaderboard.rows import Leaderboard, Row, Section, gt_label


BENCHMARK_TITLES = {"widerface-val": "WIDER FACE val", "fddb": "FDDB", "afw": "AFW", "pascal": "PASCAL Face",
                    "sample": "Embedded sample (WIDER FACE format)"}
SECTION_NOTES = {
    "wider": "AP (%) on the official easy / medium / hard settings (VOCap on the 1000-threshold PR curve).",
    "fddb": "True positive rate (%) at 1000 false positives (max over ROC points with FP <= 1000), all 10 folds.",
    "face-eval": "AP (%) with the face-eval protocol (Mathias et al. 2014 annotations, 5-iteration box correction).",
}
KIND_LABELS = {"run": "run", "evaluated": "evaluated (prediction files)", "published": "published, not run"}
CSV_METRICS = ("easy", "medium", "hard", "disc_tpr_at_1000fp", "cont_tpr_at_1000fp", "ap")


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def _ms(value: float | None) -> str:
    return "" if value is None else (f"{value:.1f}" if value >= 10 else f"{value:.2f}")


def _gt(row: Row) -> str:
    return row.ground_truth_sha256[:8] if row.ground_truth_sha256 else ""


def _title(section: Section) -> str:
    return BENCHMARK_TITLES.get(section.benchmark, section.benchmark)


def _ground_truth_heading(section: Section) -> str:
    """What follows the title when a benchmark has tables on several ground truths ("" otherwise)."""
    if not section.split:
        return ""
    which = "ground truth" if section.main else "other ground truth"
    return f", {which} {gt_label(section.ground_truth_sha256, section.images)}"


def ground_truth_note(section: Section) -> str:
    """Why a table stands apart: results on another ground truth than the benchmark's main table ("" if main)."""
    if section.main:
        return ""
    images = f", {section.images:,} images" if section.images is not None else ""
    return (f"These results use another ground truth (sha256 {section.ground_truth_sha256}{images}) than the main "
            f"{_title(section)} table ({(section.main_ground_truth_sha256 or 'unknown')[:8]}): ranked only among "
            "themselves, not comparable with the main table or its published rows.")


def _interval(row: Row, key: str) -> str:
    """The 95% interval in percent, e.g. "[81.33, 84.64]" (empty without one)."""
    pair = row.interval(key)
    return "" if pair is None or row.value(key) is None else f"[{100 * pair[0]:.2f}, {100 * pair[1]:.2f}]"


def _metric_cell(row: Row, key: str) -> str:
    return f"{_percent(row.value(key))} {_interval(row, key)}".strip()


def _table_cells(section: Section, index: int, row: Row) -> list[str]:
    cells = [section.rank(index), row.name, KIND_LABELS.get(row.kind, row.kind)]
    cells += [_metric_cell(row, key) for key, _ in section.columns]
    cells += [_ms(row.ms_per_image), f"{row.protocol} {row.convention}".strip(), _gt(row)]
    return cells


def statistics_note(board: Leaderboard, section: Section) -> str:
    """What the intervals and the "=k" ranks of a section mean (empty when it shows neither)."""
    if not section.has_statistics:
        return ""
    resamples = f"{board.resamples} resamples" if board.resamples else "resamples"
    text = (f"[low, high]: 95% image-level bootstrap interval ({resamples}; a result's stored `ci95` when it has "
            "one), for results with per-image records.")
    if any(section.tied(i) for i in range(len(section.rows))):
        text += (f" =k: statistically tied on {_sort_label(section)} (paired bootstrap over the same images, 95%: "
                 "the rows marked =k have equally many results significantly better than them), among results "
                 "of the same ground truth, protocol and settings; other ranks are positions.")
    return text


def _headers(section: Section) -> list[str]:
    return ["#", "Method", "Type"] + [label for _, label in section.columns] + ["ms/image", "Protocol",
                                                                                 "Ground truth"]


def _sort_label(section: Section) -> str:
    return dict(section.columns).get(section.sort_key, section.sort_key)


def render_markdown(board: Leaderboard, figures: dict[str, str] | None = None) -> str:
    """Markdown tables, one per benchmark and ground truth (figure links when given: Section.key -> path)."""
    out = ["# facebench leaderboard", ""]
    for section in board.sections:
        out += [f"## {_title(section)} (`{section.benchmark}`){_ground_truth_heading(section)}", ""]
        note = SECTION_NOTES.get(section.family, "")
        out += [f"{note} Sorted by {_sort_label(section)}.".strip(), ""]
        if ground_truth_note(section):
            out += [ground_truth_note(section), ""]
        headers = _headers(section)
        out.append("| " + " | ".join(headers) + " |")
        out.append("|" + "|".join("---:" if h in ("#", "ms/image") or h in dict(section.columns).values()
                                  else "---" for h in headers) + "|")
        for index, row in enumerate(section.rows):
            cells = [c.replace("|", "\\|") for c in _table_cells(section, index, row)]
            out.append("| " + " | ".join(cells) + " |")
        stats_note = statistics_note(board, section)
        if stats_note:
            out += ["", stats_note]
        notes = [f"- {row.name}: {row.note}" for row in section.rows if row.note and row.kind != "published"]
        if notes:
            out += [""] + notes
        if figures and section.key in figures:
            out += ["", f"![{_title(section)}]({figures[section.key]})"]
        out.append("")
    if board.warnings:
        out += ["## Warnings", ""] + [f"- {w}" for w in board.warnings] + [""]
    return "\n".join(out)


def render_csv(board: Leaderboard) -> str:
    """One long table: every row of every section, metrics as fractions (`table`: its Section.key)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    interval_columns = [f"{k}_ci95_{end}" for k in CSV_METRICS for end in ("low", "high")]
    writer.writerow(["benchmark", "rank", "tied", "method", "type", *CSV_METRICS, *interval_columns,
                     "ms_per_image", "protocol", "convention", "ground_truth_sha256", "runs", "created", "source",
                     "note", "table"])
    for section in board.sections:
        for index, row in enumerate(section.rows):
            metric_cells = ["" if row.value(k) is None else repr(row.value(k)) for k in CSV_METRICS]
            interval_cells = ["" if row.interval(k) is None else repr(row.interval(k)[end])
                              for k in CSV_METRICS for end in (0, 1)]
            writer.writerow([section.benchmark, section.rank(index), str(section.tied(index)).lower(), row.name,
                             row.kind, *metric_cells, *interval_cells,
                             "" if row.ms_per_image is None else repr(row.ms_per_image), row.protocol,
                             row.convention, row.ground_truth_sha256 or "", row.runs, row.created or "",
                             row.source, row.note, section.key])
    return buffer.getvalue()


def figure_curves(section: Section, top_published: int = 10) -> list:
    """Overlay curves of a section: every run/evaluated row, plus the best `top_published` published rows."""
    from facebench.overlay_plot import curves_from_document, curves_from_reference, unique_labels

    measured = [r for r in section.rows if r.kind != "published"]
    published = [r for r in section.rows if r.kind == "published"]
    published = [r for r in published if r.value(section.sort_key) is not None][:max(0, top_published)] + \
        [r for r in published if r.value(section.sort_key) is None and r.origin is not None and
         getattr(r.origin, "point", False)][:3]
    labels = unique_labels([r.name for r in measured], [r.convention for r in measured])
    curves = []
    for row, label in zip(measured, labels):
        curves += curves_from_document(row.origin.doc, label, source=row.source)
    for row in published:
        curves += curves_from_reference(row.origin)
    return curves


def render_figures(board: Leaderboard, top_published: int = 10) -> dict[str, bytes]:
    """Section.key -> PNG bytes of its overlay figure (sections without drawable curves are left out)."""
    from facebench.overlay_plot import figure_png

    figures = {}
    for section in board.sections:
        if section.family not in ("wider", "fddb", "face-eval"):
            continue
        try:
            curves = figure_curves(section, top_published)
        except InputError:
            continue  # a result without curves: its row stays in the table
        if curves:
            figures[section.key] = figure_png(curves, section.benchmark, section.family)
    return figures


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table.leaderboard { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 14px; }
table.leaderboard th, table.leaderboard td { border: 1px solid #ccc; padding: 3px 8px; }
table.leaderboard th { background: #f0f0f0; }
table.leaderboard td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.published td { color: #666; font-style: italic; }
tr.run td, tr.evaluated td { font-weight: 600; }
figure img { max-width: 100%; border: 1px solid #ddd; }
p.note { color: #555; }
span.ci { color: #777; font-size: 12px; font-weight: normal; }
td.tied { color: #a05a00; }
"""


def render_html(board: Leaderboard, figures: dict[str, str] | None = None, title: str = "facebench leaderboard",
                generated: str | None = None) -> str:
    """A static page (no server, no script): tables and figures (Section.key -> image src: a data URI or path)."""
    generated = generated or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>{html.escape(title)}</h1>",
           f'<p class="note">Generated {html.escape(generated)}. Rows: <b>run</b> = made by facebench run; '
           "<b>evaluated</b> = third-party prediction files scored by facebench; <i>published, not run</i> = "
           "published curves or baseline files, scored from the published material.</p>"]
    for section in board.sections:
        sid = html.escape(section.benchmark)
        out.append(f'<section id="{html.escape(section.key, quote=True)}">')
        out.append(f"<h2>{html.escape(_title(section))} <code>{sid}</code>"
                   f"{html.escape(_ground_truth_heading(section))}</h2>")
        note = SECTION_NOTES.get(section.family, "")
        out.append(f'<p class="note">{html.escape(note)} Sorted by {html.escape(_sort_label(section))}.</p>')
        if ground_truth_note(section):
            out.append(f'<p class="note ground-truth">{html.escape(ground_truth_note(section))}</p>')
        gt_attr = html.escape(section.ground_truth_sha256 or "", quote=True)
        out.append(f'<table class="leaderboard" data-benchmark="{sid}" data-ground-truth="{gt_attr}" '
                   f'data-main="{str(section.main).lower()}">')
        out.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in _headers(section)) +
                   "</tr></thead>")
        out.append("<tbody>")
        numeric = {0, *range(3, 3 + len(section.columns) + 1)}
        metric_index = {3 + k: key for k, (key, _) in enumerate(section.columns)}
        for index, row in enumerate(section.rows):
            cells = _table_cells(section, index, row)
            tds = []
            for i, c in enumerate(cells):
                if i == 0 and section.tied(index):
                    tds.append(f'<td class="num rank tied" title="statistically tied">{html.escape(c)}</td>')
                elif i in metric_index and _interval(row, metric_index[i]):
                    key = metric_index[i]
                    tds.append(f'<td class="num">{html.escape(_percent(row.value(key)))} '
                               f'<span class="ci">{html.escape(_interval(row, key))}</span></td>')
                elif i in numeric:
                    tds.append(f'<td class="num">{html.escape(c)}</td>')
                else:
                    tds.append(f"<td>{html.escape(c)}</td>")
            tip = html.escape(row.note or row.source, quote=True)
            out.append(f'<tr class="{row.kind}" data-kind="{row.kind}" title="{tip}">{"".join(tds)}</tr>')
        out.append("</tbody></table>")
        stats_note = statistics_note(board, section)
        if stats_note:
            out.append(f'<p class="note stats">{html.escape(stats_note)}</p>')
        if figures and section.key in figures:
            kind = "ROC" if section.family == "fddb" else "PR"
            alt = f"{_title(section)}{_ground_truth_heading(section)} {kind} curves"
            out.append(f'<figure><img class="curves" src="{html.escape(figures[section.key], quote=True)}" '
                       f'alt="{html.escape(alt, quote=True)}"><figcaption>{html.escape(alt)}</figcaption></figure>')
        out.append("</section>")
    if board.warnings:
        out.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in board.warnings) + "</ul>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def data_uri(png: bytes) -> str:
    """An embeddable data: URI for PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def write_leaderboard(board: Leaderboard, fmt: str, out: str | os.PathLike | None, *, figures: str = "embed",
                      top_published: int = 10) -> str:
    """Render in md | html | csv; write to `out` (figures embedded, or as PNGs in <out stem>_figures/)."""
    if fmt == "csv":
        text = render_csv(board)
    else:
        sources: dict[str, str] | None = None
        if figures != "none" and (fmt == "html" or out is not None and figures == "files"):
            pngs = render_figures(board, top_published)
            if figures == "files" or fmt == "md":
                if out is None:
                    raise InputError(None, None, "--figures files needs --out (the figures go beside it)")
                folder = Path(out).with_name(Path(out).stem + "_figures")
                folder.mkdir(parents=True, exist_ok=True)
                sources = {}
                for key, png in pngs.items():
                    (folder / f"{key}.png").write_bytes(png)
                    sources[key] = f"{folder.name}/{key}.png"
            else:
                sources = {b: data_uri(png) for b, png in pngs.items()}
        text = render_html(board, sources) if fmt == "html" else render_markdown(board, sources)
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return text
