"""Leaderboard rows, sorting, published references, rendering (md/csv/html) and the overlay plots."""

from __future__ import annotations

import csv
import functools
import io
from pathlib import Path

import numpy as np
import pytest

from facebench.errors import InputError
from facebench.leaderboard import build_leaderboard, render_csv, render_html, render_markdown, write_leaderboard
from facebench.store import scan
from tests.test_store import GT_A, GT_B, synthetic_document, write

REPO = Path(__file__).resolve().parent.parent


def write_synthetic_results(folder: Path) -> Path:
    """Three WIDER detectors (one also on another ground truth), two FDDB detectors, one AFW result."""
    folder.mkdir(parents=True, exist_ok=True)
    # detector and timing blocks as `facebench run` writes them (per-stage times, hardware, ...)
    run = {"name": "strong", "options": {}, "config_hash": "abc123", "weights_sha256": None,
           "class": "detectors.x:Strong", "input_policy": "original", "precision": "fp32"}
    timing = {"ms_per_image": {"load": 5.0, "forward": 36.5, "total": 41.5}, "median_ms_per_image": {"total": 40.0},
              "images_timed": 6, "device": "cpu", "hardware": {"cpu": "x", "threads": None}, "precision": "fp32"}
    write(folder / "strong.json", synthetic_document(values={"easy": 0.95, "medium": 0.94, "hard": 0.90},
                                                     label=None, detector=run, timing=timing))
    write(folder / "mid.json", synthetic_document(values={"easy": 0.96, "medium": 0.93, "hard": 0.80}, label="mid"))
    write(folder / "weak.json", synthetic_document(values={"easy": 0.80, "medium": 0.70, "hard": 0.50},
                                                   label="weak"))
    write(folder / "weak_old_gt.json", synthetic_document(values={"easy": 0.81, "medium": 0.71, "hard": 0.51},
                                                          label="weak", gt=GT_B))
    write(folder / "fddb_a.json", synthetic_document("fddb", {"disc_tpr_at_1000fp": 0.95, "cont_tpr_at_1000fp": 0.7},
                                                     label="alpha"))
    write(folder / "fddb_b.json", synthetic_document("fddb", {"disc_tpr_at_1000fp": 0.97, "cont_tpr_at_1000fp": 0.6},
                                                     label="beta"))
    write(folder / "afw.json", synthetic_document("afw", {"ap": 0.99}, label="gamma"))
    return folder


@functools.lru_cache(maxsize=2)
def real_references(root: Path) -> tuple:
    """All published references of the real data, loaded once per test session (they take seconds)."""
    from facebench.published import load_references

    return tuple(load_references(root))


@pytest.fixture()
def board(tmp_path: Path):
    return build_leaderboard(scan(write_synthetic_results(tmp_path / "results")))


def test_rows_are_per_detector_per_benchmark_sorted_by_headline(board) -> None:
    sections = {s.benchmark: s for s in board.sections}
    assert list(sections) == ["widerface-val", "fddb", "afw"]
    wider = sections["widerface-val"]
    assert [r.name for r in wider.rows] == ["strong", "mid", "weak", "weak"]  # by hard AP
    assert wider.sort_key == "hard"
    assert wider.rows[0].kind == "run" and wider.rows[0].ms_per_image == 41.5
    assert wider.rows[1].kind == "evaluated" and wider.rows[1].ms_per_image is None
    assert [r.name for r in sections["fddb"].rows] == ["beta", "alpha"]  # by discrete TPR@1000FP


def test_different_ground_truths_are_kept_apart_with_a_warning(board) -> None:
    weak = [r for r in board.sections[0].rows if r.name == "weak"]
    assert {r.ground_truth_sha256 for r in weak} == {GT_A, GT_B}
    assert all("ground truth" in r.note for r in weak)
    assert len(board.warnings) == 1 and "weak on widerface-val" in board.warnings[0]
    assert "not merged" in board.warnings[0]


def test_sort_by_another_metric(tmp_path: Path) -> None:
    board = build_leaderboard(scan(write_synthetic_results(tmp_path)), sort="easy")
    assert [r.name for r in board.sections[0].rows][:2] == ["mid", "strong"]


def test_markdown_and_csv(board) -> None:
    md = render_markdown(board)
    assert "## WIDER FACE val (`widerface-val`)" in md
    assert "| 1 | strong | run | 95.00 | 94.00 | 90.00 | 41.5 | wider_face/1 official | aaaaaaaa |" in md
    assert "## Warnings" in md
    rows = list(csv.DictReader(io.StringIO(render_csv(board))))
    assert len(rows) == 7
    first = rows[0]
    assert first["benchmark"] == "widerface-val" and first["method"] == "strong" and first["rank"] == "1"
    assert float(first["hard"]) == 0.90 and float(first["ms_per_image"]) == 41.5
    assert rows[4]["disc_tpr_at_1000fp"] == "0.97" and rows[4]["easy"] == ""


def test_html_page_is_static_and_embeds_figures(board, tmp_path: Path) -> None:
    out = tmp_path / "board.html"
    text = write_leaderboard(board, "html", out)
    assert out.read_text() == text
    assert "<script" not in text.lower()
    assert text.count('<table class="leaderboard"') == 3
    assert text.count("<tr class=") == 7
    assert text.count('src="data:image/png;base64,') == 3
    plain = render_html(board, None)
    assert "<img" not in plain


def test_markdown_with_figure_files(tmp_path: Path) -> None:
    board = build_leaderboard(scan(write_synthetic_results(tmp_path / "results")), benchmarks=["fddb"])
    out = tmp_path / "board.md"
    text = write_leaderboard(board, "md", out, figures="files")
    assert "![FDDB](board_figures/fddb.png)" in text
    assert [p.name for p in (tmp_path / "board_figures").iterdir()] == ["fddb.png"]
    png = (tmp_path / "board_figures" / "fddb.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_leaderboard_command(tmp_path: Path, capsys) -> None:
    from facebench.cli import main

    folder = write_synthetic_results(tmp_path / "results")
    main(["leaderboard", "--results", str(folder), "--format", "csv", "--benchmark", "fddb"])
    out = capsys.readouterr()
    assert out.out.count("\nfddb,") == 2
    (folder / "junk.json").write_text('{"schema": "facebench.result/1"}')
    with pytest.raises(SystemExit) as info:
        main(["leaderboard", "--results", str(folder)])
    assert info.value.code == 2
    assert "junk.json" in capsys.readouterr().err
    main(["leaderboard", "--results", str(folder), "--skip-invalid", "--out", str(tmp_path / "b.md")])
    assert "strong" in (tmp_path / "b.md").read_text()


# ------------------------------------------------------------------------------------------ published references

def _write_published_wider(root: Path) -> Path:
    import scipy.io

    folder = root / "widerface" / "results" / "official_pr_curves" / "Val" / "setting_int"
    for method, scale in (("Alpha", 1.0), ("Beta", 0.8)):
        (folder / method).mkdir(parents=True)
        for setting in ("easy", "medium", "hard"):
            recall = np.linspace(0, scale * 0.9, 1000)
            curve = np.stack([np.full(1000, 1.0), recall], axis=1)
            scipy.io.savemat(folder / method / f"wider_pr_info_{method}_{setting}_val.mat",
                             {"pr_cruve": curve, "legend_name": method})
    return folder


def _write_published_fddb(root: Path) -> Path:
    folder = root / "fddb" / "results" / "official_roc_curves"
    folder.mkdir(parents=True)
    (folder / "GoodDiscROC.txt").write_text("0.95 1500 0.1\r\n0.93 1000 0.2\r\n0.90 500 0.3\r\n0.5 0 0.9\r\n")
    (folder / "GoodContROC.txt").write_text("0.75 1500\n0.72 1000\n0.70 500\n0.4 0\n")
    (folder / "Same_as_good-disc.txt").write_text((folder / "GoodDiscROC.txt").read_text())  # a duplicate
    (folder / "Other-DiscROC_v2.txt").write_text("0.80\t999\n0.70\t10\n")
    return folder


def test_published_references_from_a_data_root(tmp_path: Path) -> None:
    from facebench.published import load_references

    _write_published_wider(tmp_path)
    _write_published_fddb(tmp_path)
    refs = {(r.benchmark, r.method): r for r in load_references(tmp_path)}
    assert set(refs) == {("widerface-val", "Alpha"), ("widerface-val", "Beta"), ("fddb", "Good"),
                         ("fddb", "Other v2")}
    assert refs[("widerface-val", "Alpha")].metrics["hard"] == pytest.approx(0.9, abs=1e-3)
    good = refs[("fddb", "Good")].metrics
    assert good["disc_tpr_at_1000fp"] == 0.93 and good["cont_tpr_at_1000fp"] == 0.72
    assert good["disc_tpr_at_1000fp_strict"] == 0.90  # face-eval's rule: FP < 1000
    assert refs[("fddb", "Other v2")].metrics["cont_tpr_at_1000fp"] is None

    board = build_leaderboard([], load_references(tmp_path))
    assert all(r.kind == "published" for s in board.sections for r in s.rows)
    assert "published, not run" in render_markdown(board)


def test_bad_roc_file_names_its_line(tmp_path: Path) -> None:
    from facebench.published import read_roc_file

    path = tmp_path / "BadDiscROC.txt"
    path.write_text("0.9 10 0.5\n0.8 x 0.4\n")
    with pytest.raises(InputError) as info:
        read_roc_file(path)
    assert info.value.line == 2


def test_overlay_plot_png_and_pdf(tmp_path: Path) -> None:
    from facebench.cli import main

    folder = write_synthetic_results(tmp_path / "results")
    published = _write_published_wider(tmp_path / "data")
    main(["plot", str(folder / "strong.json"), str(folder / "mid.json"), "--published", str(published / "Alpha"),
          "--out", str(tmp_path / "fig")])
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "fig.pdf").read_bytes()[:5] == b"%PDF-"
    fddb_root = tmp_path / "data2"
    _write_published_fddb(fddb_root)
    main(["plot", str(folder / "fddb_a.json"), str(folder / "fddb_b.json"), "--published", str(fddb_root),
          "--top", "1", "--out", str(tmp_path / "roc.pdf")])
    assert (tmp_path / "roc.pdf").stat().st_size > 1000
    with pytest.raises(SystemExit) as info:  # one benchmark per figure
        main(["plot", str(folder / "strong.json"), str(folder / "afw.json"), "--out", str(tmp_path / "x.png")])
    assert info.value.code == 2


def test_roc_figure_without_the_roc_plot_module(tmp_path: Path, monkeypatch) -> None:
    """FDDB figures still draw when facebench.plots.roc is absent (an install without the FDDB work)."""
    import sys

    from facebench.overlay_plot import curves_from_document, plot_overlay

    monkeypatch.setitem(sys.modules, "facebench.plots.roc", None)  # makes the import fail
    doc = synthetic_document("fddb", {"disc_tpr_at_1000fp": 0.9, "cont_tpr_at_1000fp": 0.6})
    (path,) = plot_overlay(curves_from_document(doc, "x"), "fddb", "fddb", [tmp_path / "roc.png"])
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_overlay_curves_from_documents() -> None:
    from facebench.overlay_plot import curves_from_document, unique_labels

    doc = synthetic_document("fddb", {"disc_tpr_at_1000fp": 0.9, "cont_tpr_at_1000fp": 0.6})
    curves = curves_from_document(doc, "x")
    assert [c.panel for c in curves] == ["disc", "cont"] and curves[0].value == 0.9
    doc["curves"] = {}
    with pytest.raises(InputError, match="no curves to plot"):
        curves_from_document(doc, "x")
    assert unique_labels(["a", "a", "b"], ["official", "python-port", "x"]) == ["a (official)", "a (python-port)",
                                                                                 "b"]


# ----------------------------------------------------------------------------------------------------- real data

def test_real_published_references(shared_data: Path) -> None:
    """WIDER's 41 official curves; FDDB TPR@1000FP as protocols.md §2.7 measured; face-eval APs of §3.6."""
    refs = {(r.benchmark, r.method): r for r in real_references(shared_data)}
    wider = [r for (b, _), r in refs.items() if b == "widerface-val"]
    assert len(wider) == 41
    assert all(r.metrics["hard"] is not None for r in wider)
    fddb = {m: r.metrics for (b, m), r in refs.items() if b == "fddb"}
    for method, tpr in {"HeadHunter": 0.8706, "DPM": 0.8644, "Structured Models": 0.8463, "Face++": 0.8387,
                        "SURF Cascade multiview": 0.8372, "PEP-Adapt": 0.8093, "Jain et al.": 0.6774,
                        "Viola Jones": 0.5968}.items():
        assert round(fddb[method]["disc_tpr_at_1000fp"], 4) == tpr, method
    assert round(fddb["Illuxtech"]["disc_tpr_at_1000fp"], 4) == 0.7180
    assert round(fddb["Illuxtech"]["disc_tpr_at_1000fp_strict"], 4) == 0.7178
    assert fddb["BAIDU-IDL"]["cont_tpr_at_1000fp"] is not None  # ContROC paired from the FDDB page copy
    afw = {m: r.metrics["ap"] for (b, m), r in refs.items() if b == "afw"}
    pascal = {m: r.metrics["ap"] for (b, m), r in refs.items() if b == "pascal"}
    for table, expected in ((afw, {"DPM": 97.21, "HeadHunter": 97.14, "SquaresChnFtrs-5": 95.24,
                                   "Structured Models": 95.19, "Shen et al.": 89.03, "TSM": 87.99}),
                            (pascal, {"DPM": 90.29, "HeadHunter": 89.63, "SquaresChnFtrs-5": 85.57,
                                      "Structured Models": 83.87, "Sky Biometry": 68.57, "OpenCV": 61.09,
                                      "W.S. Boosting": 59.72})):
        for method, ap in expected.items():
            assert round(100 * table[method], 2) == ap, method
    assert afw["Face++"] is None and refs[("afw", "Face++")].point  # a single operating point


def test_real_leaderboard_from_committed_baselines(tmp_path: Path, shared_data: Path) -> None:
    board = build_leaderboard(scan(REPO / "results" / "baselines"), real_references(shared_data),
                              benchmarks=["widerface-val"])
    (section,) = board.sections
    names = [r.name for r in section.rows]
    assert names[0] == "MogFace"  # best published hard AP (93.83)
    yolo = [r for r in section.rows if r.name == "yolov7-tiny-leak" and r.convention == "official"][0]
    assert yolo.value("hard") == pytest.approx(0.829738522421083, abs=1e-12)  # golden.md
    assert not board.warnings  # official vs python-port is a convention, shown, not a conflict
    out = tmp_path / "real.html"
    write_leaderboard(board, "html", out)
    assert out.read_text().count('src="data:image/png;base64,') == 1
