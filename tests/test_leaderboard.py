"""Leaderboard rows, sorting, published references, rendering (md/csv/html) and the overlay plots."""

from __future__ import annotations

import csv
import json
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
    """Three WIDER detectors (one also scored by another protocol version), two FDDB detectors, one AFW result
    (all on one ground truth per benchmark: tables per ground truth are tested on their own)."""
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
    write(folder / "weak_v2.json", synthetic_document(values={"easy": 0.81, "medium": 0.71, "hard": 0.51},
                                                      label="weak", version="2"))
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


def test_different_protocol_versions_are_kept_apart_with_a_warning(board) -> None:
    weak = [r for r in board.sections[0].rows if r.name == "weak"]
    assert {r.protocol for r in weak} == {"wider_face/1", "wider_face/2"}
    assert all("protocol version" in r.note for r in weak)
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


def test_leaderboard_benchmark_filter_must_name_a_known_benchmark(tmp_path: Path, capsys) -> None:
    from facebench.cli import main

    folder = write_synthetic_results(tmp_path / "results")
    with pytest.raises(SystemExit) as info:
        main(["leaderboard", "--results", str(folder), "--benchmark", "bogus"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert "--benchmark 'bogus': unknown benchmark (known: widerface-val, fddb, afw, pascal" in err


def test_other_facebench_documents_in_the_results_folder_do_not_break_it(tmp_path: Path, capsys) -> None:
    """`facebench compare --out` and `facebench anchors --out t.json` files beside results are skipped."""
    from facebench.cli import main
    from facebench.results import make_document

    folder = write_synthetic_results(tmp_path / "results")
    (folder / "cmp.json").write_text(json.dumps({"schema": "facebench.comparison/1", "a": "x", "b": "y"}))
    write(folder / "t.json", make_document(benchmark="widerface-train", protocol="anchor-coverage",
                                           protocol_version="1", settings={}, metrics={"faces": 3},
                                           ground_truth_sha256=GT_A))
    main(["leaderboard", "--results", str(folder), "--format", "csv"])
    out = capsys.readouterr()
    assert "strong" in out.out and "widerface-train" not in out.out
    assert "note: 2 JSON files that are not facebench results ignored" in out.err and "error" not in out.err


# ------------------------------------------------------------------------------------- tables per ground truth

def _with_counts(doc: dict, images: int | None = None, version: str | None = None,
                 predictions: str | None = None) -> dict:
    """The doc with counts.images, settings.ground_truth_version and settings.predictions as the protocols write."""
    if images is not None:
        doc["counts"] = {"images": images}
    if version is not None:
        doc["settings"]["ground_truth_version"] = version
    if predictions is not None:
        doc["settings"]["predictions"] = predictions
    return doc


def test_results_on_a_ground_truth_subset_get_their_own_table(tmp_path: Path) -> None:
    """A 10-image FDDB result (its best TPR by far) is not ranked #1 above the full-FDDB results: its own table,
    after the main one, titled with its short sha256 and image count, and a warning."""
    folder = tmp_path / "results"
    for name, disc in (("alpha", 0.95), ("beta", 0.97)):
        write(folder / f"{name}.json", _with_counts(synthetic_document(
            "fddb", {"disc_tpr_at_1000fp": disc, "cont_tpr_at_1000fp": 0.7}, label=name), images=2845))
    write(folder / "tiny.json", _with_counts(synthetic_document(
        "fddb", {"disc_tpr_at_1000fp": 1.0, "cont_tpr_at_1000fp": 0.9}, label="tiny", gt=GT_B), images=10))
    board = build_leaderboard(scan(folder))
    main, other = board.sections
    assert (main.benchmark, main.main, main.ground_truth_sha256, main.images) == ("fddb", True, GT_A, 2845)
    assert [r.name for r in main.rows] == ["beta", "alpha"] and main.rank(0) == "1"
    assert (other.main, other.ground_truth_sha256, other.images, other.key) == (False, GT_B, 10, "fddb__gt-bbbbbbbb")
    assert [r.name for r in other.rows] == ["tiny"] and other.rank(0) == "1"
    assert board.warnings == ("fddb: 1 result on ground truth bbbbbbbb (10 images), not the main table's aaaaaaaa "
                              "(2,845 images); listed in a separate table, not ranked with it",)
    md = render_markdown(board)
    assert "## FDDB (`fddb`), ground truth aaaaaaaa (2,845 images)" in md
    assert "## FDDB (`fddb`), other ground truth bbbbbbbb (10 images)" in md
    assert md.index("| 1 | beta |") < md.index("| 1 | tiny |")
    assert f"These results use another ground truth (sha256 {GT_B}, 10 images) than the main FDDB table " \
           "(aaaaaaaa): ranked only among themselves" in md
    table = list(csv.DictReader(io.StringIO(render_csv(board))))
    assert [(r["method"], r["rank"], r["table"]) for r in table] == [("beta", "1", "fddb"), ("alpha", "2", "fddb"),
                                                                     ("tiny", "1", "fddb__gt-bbbbbbbb")]
    page = write_leaderboard(board, "html", tmp_path / "board.html")
    assert '<section id="fddb">' in page and '<section id="fddb__gt-bbbbbbbb">' in page
    assert page.count('<table class="leaderboard" data-benchmark="fddb"') == 2
    assert f'data-ground-truth="{GT_B}" data-main="false"' in page
    assert page.count('src="data:image/png;base64,') == 2  # one figure per table
    write_leaderboard(board, "md", tmp_path / "board.md", figures="files")
    assert sorted(p.name for p in (tmp_path / "board_figures").iterdir()) == ["fddb.png", "fddb__gt-bbbbbbbb.png"]


def test_older_wider_ground_truth_is_not_interleaved_with_the_current_one(tmp_path: Path) -> None:
    """Same images (3,226), different annotation release: the newest ground_truth_version is the main table,
    even when fewer results use it; each table ranks only its own rows."""
    folder = tmp_path / "results"
    write(folder / "new.json", _with_counts(synthetic_document(values={"easy": 0.9, "medium": 0.8, "hard": 0.6},
                                                               label="new"), 3226, "2017"))
    for name, hard in (("old1", 0.7), ("old2", 0.5)):
        write(folder / f"{name}.json", _with_counts(synthetic_document(
            values={"easy": 0.9, "medium": 0.8, "hard": hard}, label=name, gt=GT_B), 3226, "2016"))
    main, other = build_leaderboard(scan(folder)).sections
    assert main.ground_truth_sha256 == GT_A and [r.name for r in main.rows] == ["new"]
    assert other.ground_truth_sha256 == GT_B and [r.name for r in other.rows] == ["old1", "old2"]


def test_one_detector_on_two_ground_truths_is_two_tables_with_one_warning(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    write(folder / "a.json", synthetic_document(label="weak"))
    write(folder / "b.json", synthetic_document(label="mid"))
    write(folder / "c.json", synthetic_document(label="weak", gt=GT_B))
    board = build_leaderboard(scan(folder))
    assert [[r.name for r in s.rows] for s in board.sections] == [["mid", "weak"], ["weak"]]
    assert not any(r.note for s in board.sections for r in s.rows)  # the table says it, not a per-row note
    assert len(board.warnings) == 1 and "widerface-val: 1 result on ground truth bbbbbbbb" in board.warnings[0]


def test_published_references_decide_the_main_ground_truth(tmp_path: Path) -> None:
    """AFW/PASCAL baselines record the annotations they are scored on: results on other annotations are a
    separate table even when they are the majority; WIDER's official curves (no sha256) join the main table."""
    from facebench.published import PublishedReference

    def ref(method: str, benchmark: str, value: dict, gt: str | None) -> PublishedReference:
        return PublishedReference(method=method, benchmark=benchmark, family="face-eval" if "wider" not in benchmark
                                  else "wider", metrics=value, curves={}, source=method,
                                  extra={"ground_truth_sha256": gt} if gt else {})

    folder = tmp_path / "results"
    write(folder / "x.json", synthetic_document("afw", {"ap": 0.99}, label="x", gt=GT_B))
    write(folder / "y.json", synthetic_document("afw", {"ap": 0.98}, label="y", gt=GT_B))
    write(folder / "w.json", synthetic_document(label="w", gt=GT_B))
    refs = [ref("DPM", "afw", {"ap": 0.97}, GT_A),
            ref("Alpha", "widerface-val", {"easy": 0.9, "medium": 0.9, "hard": 0.95}, None)]
    board = build_leaderboard(scan(folder), refs, ci=False)
    tables = [(s.benchmark, s.main, s.ground_truth_sha256, [r.name for r in s.rows]) for s in board.sections]
    assert tables == [("widerface-val", True, GT_B, ["Alpha", "w"]), ("afw", True, GT_A, ["DPM"]),
                      ("afw", False, GT_B, ["x", "y"])]
    assert len(board.warnings) == 1 and board.warnings[0].startswith("afw: 2 results on ground truth bbbbbbbb")


def test_same_named_prediction_folders_are_two_rows(tmp_path: Path) -> None:
    """Evaluating e1/mymodel/widerface_txt and e2/mymodel/widerface_txt gives two rows told apart by the folder;
    re-evaluating e1 counts as a second run of its row (the latest wins)."""
    folder = tmp_path / "results"
    docs = {"a": ("/w/e1/mymodel/widerface_txt", "2026-01-01T00:00:00+00:00", 0.5),
            "b": ("/w/e2/mymodel/widerface_txt", "2026-01-02T00:00:00+00:00", 0.7),
            "c": ("/w/e1/mymodel/widerface_txt", "2026-01-03T00:00:00+00:00", 0.6)}
    for name, (predictions, created, hard) in docs.items():
        doc = synthetic_document(values={"easy": 0.9, "medium": 0.8, "hard": hard}, label=None, created=created)
        write(folder / f"{name}.json", _with_counts(doc, predictions=predictions))
    (section,) = build_leaderboard(scan(folder)).sections
    assert [(r.name, r.value("hard"), r.runs) for r in section.rows] == [("mymodel [e2]", 0.7, 1),
                                                                         ("mymodel [e1]", 0.6, 2)]


def test_source_tags() -> None:
    from facebench.leaderboard import source_tags

    assert source_tags(["/w/e1/m/txt", "/w/e2/m/txt", "/w/e1/m/txt"]) == ["e1", "e2", "e1"]
    assert source_tags(["/a/m/txt", "/b/c/m/txt"]) == ["a", "c"]
    digest = "sha256:" + "c" * 64
    tags = source_tags([digest, "/x/m.txt"])
    assert tags[0] == "cccccccc" and len(tags[1]) == 8 and tags[1] != tags[0]
    assert source_tags(["/x/m.txt", "/x/m.txt"]) == ["", ""]
    untagged, tagged = source_tags([None, "/a/m"])  # a result that records no predictions path beside one that does
    assert untagged == "" and len(tagged) == 8
    assert source_tags([None, "/a/m", "/c/m"]) == ["", "a", "c"]


def test_malformed_curve_is_a_one_line_error_or_skipped(tmp_path: Path, capsys) -> None:
    """curves.hard.precision as strings or as a number: `leaderboard` (md and html) and `plot` name the file
    and field (exit 2); `leaderboard --skip-invalid` warns and builds the page without it."""
    from facebench.cli import main

    folder = write_synthetic_results(tmp_path / "results")
    for value in (["a"] * 60, 5):
        doc = synthetic_document(label="broken")
        doc["curves"]["hard"]["precision"] = value
        bad = write(folder / "broken.json", doc)
        for args in (["leaderboard", "--results", str(folder), "--format", "html", "--out", str(tmp_path / "x.html")],
                     ["leaderboard", "--results", str(folder)],
                     ["plot", str(bad), "--out", str(tmp_path / "fig.png")]):
            capsys.readouterr()
            with pytest.raises(SystemExit) as info:
                main(args)
            err = capsys.readouterr().err
            assert info.value.code == 2 and err.count("\n") == 1, err
            assert err.startswith(f"error: {bad}:") and "field 'curves.hard.precision'" in err
        main(["leaderboard", "--results", str(folder), "--format", "html", "--skip-invalid",
              "--out", str(tmp_path / "ok.html")])
        err = capsys.readouterr().err
        assert f"warning: skipped {bad}:" in err and "curves.hard.precision" in err
        page = (tmp_path / "ok.html").read_text()
        assert "strong" in page and "broken" not in page


def test_overlay_curves_name_the_source_of_a_bad_array() -> None:
    from facebench.overlay_plot import curves_from_document

    doc = synthetic_document()
    doc["curves"]["easy"]["recall"] = 5
    with pytest.raises(InputError, match=r"^r\.json: field 'curves\.easy\.recall': must be an array"):
        curves_from_document(doc, "x", source="r.json")


def test_pr_figure_keeps_one_colour_per_method_across_panels() -> None:
    from facebench.overlay_plot import curves_from_document, pr_figure

    # the order by AP differs between panels: A leads on easy, B on hard
    a = synthetic_document(values={"easy": 0.95, "medium": 0.80, "hard": 0.40})
    b = synthetic_document(values={"easy": 0.90, "medium": 0.85, "hard": 0.70})
    c = synthetic_document(values={"easy": 0.50, "medium": 0.90, "hard": 0.60})
    curves = [*curves_from_document(a, "A"), *curves_from_document(b, "B"), *curves_from_document(c, "C")]
    fig = pr_figure(curves, "wider", "widerface-val")
    colours: dict[str, set] = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            colours.setdefault(line.get_label().split()[-1], set()).add(tuple(line.get_color()))
    assert sorted(colours) == ["A", "B", "C"] and all(len(v) == 1 for v in colours.values())
    assert len({next(iter(v)) for v in colours.values()}) == 3


def test_plot_top_must_be_positive(tmp_path: Path, capsys) -> None:
    from facebench.cli import main

    folder = write_synthetic_results(tmp_path / "results")
    for top in ("-1", "0"):
        with pytest.raises(SystemExit) as info:
            main(["plot", str(folder / "afw.json"), "--published", str(tmp_path), "--top", top,
                  "--out", str(tmp_path / "x.png")])
        assert info.value.code == 2 and "--top must be >= 1" in capsys.readouterr().err


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


def test_overlay_plot_output_suffixes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from facebench.cli import main

    folder = write_synthetic_results(tmp_path / "results")
    main(["plot", str(folder / "strong.json"), "--out", str(tmp_path / "fig.jpg"), "--out", str(tmp_path / "v1")])
    assert (tmp_path / "fig.jpg").read_bytes()[:2] == b"\xff\xd8"  # a JPEG, not fig.jpg.png
    assert not (tmp_path / "fig.jpg.png").exists()
    assert (tmp_path / "v1.png").exists() and (tmp_path / "v1.pdf").exists()
    with pytest.raises(SystemExit) as info:
        main(["plot", str(folder / "strong.json"), "--out", ""])
    assert info.value.code == 2 and "not a file name" in capsys.readouterr().err
    main(["plot", str(folder / "strong.json"), "--out", str(tmp_path / "yunet-v1.2")])  # a dot, not a format
    assert (tmp_path / "yunet-v1.2.png").exists() and (tmp_path / "yunet-v1.2.pdf").exists()
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:  # the figure written twice
        main(["plot", str(folder / "strong.json"), "--out", str(tmp_path / "a"), "--out", str(tmp_path / "a.png")])
    assert info.value.code == 2 and "the same file given twice" in capsys.readouterr().err
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(SystemExit) as info:
        main(["plot", str(folder / "strong.json"), "--out", str(tmp_path / "dir.png")])
    assert info.value.code == 2 and "is a directory" in capsys.readouterr().err


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


def test_single_published_baseline_file_loads_only_that_file(tmp_path: Path, shared_data: Path, monkeypatch,
                                                             capsys) -> None:
    """`plot --published SFD_AFW_PR.txt` scores that file, not every file beside it (a README.txt there used to
    fail as `README.txt:1: expected 6 fields`)."""
    import shutil

    from facebench.cli import main
    from facebench.published import reference_from_path
    from tests.conftest import require

    monkeypatch.setenv("FACEBENCH_SHARED_DATA", str(shared_data))
    folder = tmp_path / "S3FD"
    folder.mkdir()
    item = Path(shutil.copy(require(shared_data / "afw" / "results" / "S3FD_official" / "SFD_AFW_PR.txt"), folder))
    (folder / "README.txt").write_text("S3FD's AFW detections, as published by the authors.\n")
    (folder / "other.txt").write_text("not a detection file\n")
    (ref,) = reference_from_path(item, "afw")
    assert ref.source == str(item) and ref.benchmark == "afw" and ref.metrics["ap"] is not None
    main(["plot", "--published", str(item), "--benchmark", "afw", "--out", str(tmp_path / "afw.png")])
    assert (tmp_path / "afw.png").read_bytes()[:4] == b"\x89PNG"
    assert "README" not in capsys.readouterr().err


def test_plot_scores_face_eval_baselines_like_the_results(tmp_path: Path, shared_data: Path, monkeypatch,
                                                          capsys) -> None:
    """A result on the original AFW annotations gets its baselines scored on them too (the same DPM file used
    to show 97.59 as the result and 97.21 as the published curve); annotations that are not under the data root
    fall back to the default with a warning."""
    import shutil

    from facebench.cli import main
    from facebench.published import FaceEvalScoring, reference_from_path
    from tests.conftest import require

    monkeypatch.setenv("FACEBENCH_SHARED_DATA", str(shared_data))
    dpm = require(shared_data / "afw" / "results" / "DPM_Mathias2014" / "DPM.txt")
    old = tmp_path / "old.json"
    main(["eval", "afw", str(dpm), "--data-root", str(shared_data), "--old-annotations", "--out", str(old)])
    doc = json.loads(old.read_text())
    scoring = FaceEvalScoring.of_result(doc)
    assert scoring == FaceEvalScoring("anno2.mat", 30, 30)
    (same,) = reference_from_path(dpm, "afw", scoring)
    (default,) = reference_from_path(dpm, "afw")
    assert same.metrics["ap"] == doc["metrics"]["ap"] and same.extra["ground_truth_sha256"] == doc["ground_truth_sha256"]
    assert default.metrics["ap"] != doc["metrics"]["ap"]
    capsys.readouterr()
    main(["plot", str(old), "--published", str(dpm), "--benchmark", "afw", "--out", str(tmp_path / "a.png")])
    assert "not comparable" not in capsys.readouterr().err
    # The same result, on a renamed copy of the annotations that the data root does not hold.
    copy = Path(shutil.copy(shared_data / "afw" / "annotations" / "anno2.mat", tmp_path / "mine.mat"))
    mine = tmp_path / "mine.json"
    main(["eval", "afw", str(dpm), "--annotations", str(copy), "--out", str(mine)])
    capsys.readouterr()
    main(["plot", str(mine), "--published", str(dpm), "--benchmark", "afw", "--out", str(tmp_path / "b.png")])
    err = capsys.readouterr().err
    assert "published DPM (new_annotations_AFW.mat, min size 30x30) scored on other annotations" in err
    assert err.count("\n") == 1


def test_face_eval_scorings_of_results() -> None:
    """The default scoring first, then each distinct other one the results record; a size-rule label only for a
    rule other than the toolbox's 30x30."""
    from facebench.published import FaceEvalScoring

    docs = [{"settings": {"annotations": "/x/anno2.mat", "min_width": 30, "min_height": 30}},
            {"settings": {"annotations": "new_annotations_AFW.mat", "min_width": 0, "min_height": 0}},
            {"settings": {"annotations": "/y/anno2.mat"}}, {}]
    scorings = FaceEvalScoring.of_results(docs)
    assert scorings == [FaceEvalScoring(), FaceEvalScoring("anno2.mat"),
                        FaceEvalScoring("new_annotations_AFW.mat", 0, 0)]
    assert [s.size_label() for s in scorings] == ["", "", " (faces >= 0x0 px)"]


def test_main_table_is_the_first_scored_ground_truth_on_a_tie() -> None:
    from facebench.leaderboard.rows import Row, main_ground_truth

    rows = [Row(benchmark="afw", family="face-eval", name=n, kind="published", values={"ap": 0.9},
                ground_truth_sha256=gt) for n, gt in (("a", GT_B), ("b", GT_A), ("c", GT_B), ("d", GT_A))]
    assert main_ground_truth(rows) == GT_B
    assert main_ground_truth(rows[1:]) == GT_A


def test_leaderboard_scores_face_eval_baselines_like_each_table(tmp_path: Path, shared_data: Path,
                                                                capsys) -> None:
    """Results on the original AFW annotations get a table with the baselines scored on them (that table used to
    have none), and a result with another size rule gets baselines scored with its rule, labelled so."""
    from facebench.cli import main
    from tests.conftest import require

    dpm = require(shared_data / "afw" / "results" / "DPM_Mathias2014" / "DPM.txt")
    results = tmp_path / "results"
    main(["eval", "afw", str(dpm), "--data-root", str(shared_data), "--old-annotations",
          "--out", str(results / "old.json")])
    main(["eval", "afw", str(dpm), "--data-root", str(shared_data), "--min-width", "0", "--min-height", "0",
          "--out", str(results / "zero.json")])
    old, zero = (json.loads((results / f"{n}.json").read_text())["metrics"]["ap"] for n in ("old", "zero"))
    capsys.readouterr()
    main(["leaderboard", "--results", str(results), "--published", str(shared_data), "--benchmark", "afw",
          "--no-ci", "--format", "csv", "--out", str(tmp_path / "board.csv")])
    err = capsys.readouterr().err
    assert "afw: 1 result (with 11 published rows) on ground truth 1f931610" in err
    rows = list(csv.DictReader((tmp_path / "board.csv").open()))
    by_table: dict[str, dict[str, list[dict]]] = {}
    for row in rows:
        by_table.setdefault(row["ground_truth_sha256"][:8], {}).setdefault(row["method"], []).append(row)
    assert set(by_table) == {"951dea37", "1f931610"}
    original, default = by_table["1f931610"], by_table["951dea37"]
    assert [r["type"] for r in original["DPM"]] == ["evaluated", "published"]
    assert {round(float(r["ap"]), 12) for r in original["DPM"]} == {round(old, 12)}
    assert "DPM (faces >= 0x0 px)" not in original and len(original) == 11  # 11 baselines, DPM twice
    assert float(default["DPM (faces >= 0x0 px)"][0]["ap"]) == pytest.approx(zero, abs=1e-12)
    evaluated = [r for r in default["DPM"] if r["type"] == "evaluated"]
    assert [r["convention"] for r in evaluated] == ["mathias2014 faces>=0x0"]


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


# ------------------------------------------------------------------------- intervals and statistically tied ranks

TIE_IMAGES = 60


@pytest.fixture(scope="module")
def tied_results(tmp_path_factory) -> Path:
    """Three WIDER results on one synthetic ground truth, written by `facebench eval widerface --out`: `best`
    (the predictions), `tie_a` and `tie_b` (confident background boxes added to two different thirds of the
    images: clearly worse than best, tied with each other); tie_b with --ci (its JSON carries ci95). Plus an
    old result without records and two published curves."""
    from facebench.cli import main
    from protocols.wider_face.ground_truth import write_ground_truth
    from tests.wider_fixtures import random_events, write_predictions

    root = tmp_path_factory.mktemp("tied")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEBENCH_CACHE", str(root / "cache"))
        images, preds = random_events(np.random.default_rng(3), TIE_IMAGES)
        gt_dir = write_ground_truth(root / "gt", [("0--Synthetic", images)])
        names = list(preds)
        third = TIE_IMAGES // 3
        background = [[500.0, 500.0, 20.0, 20.0, 0.99], [520.0, 540.0, 25.0, 25.0, 0.97]]
        sets = {"best": preds,
                "tie_a": {k: v + background if k in names[:third] else v for k, v in preds.items()},
                "tie_b": {k: v + background if k in names[third:2 * third] else v for k, v in preds.items()}}
        results = root / "results"
        for name, per_image in sets.items():
            folder = write_predictions(root / "predictions" / name, "0--Synthetic", per_image)
            args = ["eval", "widerface", str(folder), "--gt-dir", str(gt_dir), "--no-breakdown",
                    "--out", str(results / f"{name}.json")] + (["--ci"] if name == "tie_b" else [])
            main(args)  # returns on success (exit 2 with a one-line error otherwise)
    # An old result (no records) on the same ground truth whose hard AP falls between tie_a and tie_b.
    gt_sha = json.loads((results / "best.json").read_text())["ground_truth_sha256"]
    write(results / "old.json", synthetic_document(values={"easy": 0.2, "medium": 0.2, "hard": 0.1990}, label="old",
                                                   gt=gt_sha))
    _write_published_wider(root / "data")
    return root


def _tied_board(root: Path, **options):
    from facebench.published import load_references

    return build_leaderboard(scan(root / "results"), load_references(root / "data"), **options)


def test_tied_rows_share_a_marked_rank(tied_results: Path) -> None:
    board = _tied_board(tied_results, resamples=200)
    (section,) = board.sections
    names = [r.name for r in section.rows]
    assert names == ["Alpha", "Beta", "best", "tie_a", "old", "tie_b"]  # sorted by hard AP
    values = {r.name: r.value("hard") for r in section.rows}
    assert values["tie_a"] > values["old"] > values["tie_b"]
    # Published and record-less rows keep their position; tie_b shares tie_a's rank across the old row.
    assert [section.rank(i) for i in range(6)] == ["1", "2", "3", "=4", "5", "=4"]
    assert [section.tied(i) for i in range(6)] == [False, False, False, True, False, True]
    rows = {r.name: r for r in section.rows}
    for name in ("best", "tie_a", "tie_b"):
        row = rows[name]
        assert row.has_records and set(row.intervals) == {"easy", "medium", "hard"}
        for key, (low, high) in row.intervals.items():
            assert low <= row.value(key) <= high
    assert rows["best"].interval("hard")[0] > rows["tie_a"].value("hard")  # clearly better
    for name in ("Alpha", "Beta", "old"):
        assert not rows[name].has_records and not rows[name].intervals
    # tie_b's interval is the one its JSON stores (1000 resamples), not recomputed with 200.
    stored = json.loads((tied_results / "results" / "tie_b.json").read_text())["ci95"]
    assert rows["tie_b"].interval("hard") == tuple(stored["hard"])
    assert board.resamples == 200 and not board.warnings


def test_tied_ranks_in_markdown_csv_and_html(tied_results: Path) -> None:
    board = _tied_board(tied_results, resamples=200)
    rows = {r.name: r for r in board.sections[0].rows}
    low, high = rows["tie_a"].interval("hard")
    md = render_markdown(board)
    assert "| =4 | tie_a | evaluated (prediction files) |" in md
    assert f"{100 * rows['tie_a'].value('hard'):.2f} [{100 * low:.2f}, {100 * high:.2f}] |" in md
    assert "| 5 | old |" in md and "| =4 | tie_b |" in md
    assert "=k: statistically tied on Hard" in md and "200 resamples" in md
    table = list(csv.DictReader(io.StringIO(render_csv(board))))
    by_name = {r["method"]: r for r in table}
    assert [r["rank"] for r in table] == ["1", "2", "3", "=4", "5", "=4"]
    assert by_name["tie_a"]["tied"] == "true" and by_name["best"]["tied"] == "false"
    assert float(by_name["tie_a"]["hard_ci95_low"]) == low and float(by_name["tie_a"]["hard_ci95_high"]) == high
    assert by_name["old"]["hard_ci95_low"] == "" and by_name["Alpha"]["easy_ci95_high"] == ""
    page = render_html(board)
    assert page.count('<td class="num rank tied" title="statistically tied">=4</td>') == 2
    assert page.count('<span class="ci">') == 9  # three settings of three results with records


def test_no_ci_keeps_plain_ranks(tied_results: Path) -> None:
    board = _tied_board(tied_results, ci=False)
    (section,) = board.sections
    assert [section.rank(i) for i in range(6)] == ["1", "2", "3", "4", "5", "6"]
    assert not any(r.intervals for r in section.rows) and board.resamples is None
    assert "statistically tied" not in render_markdown(board)


def test_records_are_resampled_once_per_file(tied_results: Path, monkeypatch) -> None:
    from facebench import bootstrap

    calls = []
    original = bootstrap.WiderRecords.resampled
    monkeypatch.setattr(bootstrap.WiderRecords, "resampled",
                        lambda self, weights: calls.append(weights.shape) or original(self, weights))
    _tied_board(tied_results, resamples=200)
    # best and tie_a: once for their intervals, reused by the ranking; tie_b (stored ci95): once, by the ranking.
    assert calls == [(200, TIE_IMAGES)] * 3


def test_leaderboard_command_with_and_without_ci(tied_results: Path, capsys) -> None:
    from facebench.cli import main

    main(["leaderboard", "--results", str(tied_results / "results"), "--format", "csv", "--resamples", "200"])
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["rank"] for r in table] == ["1", "=2", "3", "=2"]  # best, tie_a, old, tie_b
    main(["leaderboard", "--results", str(tied_results / "results"), "--no-ci"])
    assert "| 2 | tie_a |" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["leaderboard", "--results", str(tied_results / "results"), "--resamples", "0"])
    assert info.value.code == 2


def test_unusable_records_fall_back_to_plain_ranks(tied_results: Path, tmp_path: Path) -> None:
    import shutil

    from facebench.bootstrap import records_path

    folder = tmp_path / "results"
    shutil.copytree(tied_results / "results", folder)
    records_path(folder / "tie_a.json").write_bytes(b"not an npz")
    board = build_leaderboard(scan(folder), resamples=200)
    (section,) = board.sections
    assert [r.name for r in section.rows] == ["best", "tie_a", "old", "tie_b"]
    assert [section.rank(i) for i in range(4)] == ["1", "2", "3", "4"]  # tie_b has nobody left to tie with
    assert len(board.warnings) == 1 and "tie_a.json" in board.warnings[0] and "unreadable records" in board.warnings[0]
    assert section.rows[3].intervals  # tie_b still shows its stored interval


def test_explicit_ci_without_records_warns(tmp_path: Path) -> None:
    results = scan(write_synthetic_results(tmp_path / "results"))
    assert not any("--ci" in w for w in build_leaderboard(results).warnings)
    warnings = build_leaderboard(results, ci=True).warnings
    assert any(w.startswith("--ci: no result has per-image records") for w in warnings)


def test_comparison_groups_ignore_input_paths_not_scoring_settings() -> None:
    from facebench.leaderboard import comparison_key

    a = synthetic_document(values={"easy": 0.9, "medium": 0.8, "hard": 0.7})
    b = json.loads(json.dumps(a))
    b["settings"]["predictions"] = "/elsewhere/preds"
    assert comparison_key(a) == comparison_key(b)
    b["settings"]["semantics"] = "python-port"
    assert comparison_key(a) != comparison_key(b)
    c = synthetic_document(values={"easy": 0.9, "medium": 0.8, "hard": 0.7}, gt=GT_B)
    assert comparison_key(a) != comparison_key(c)


def test_real_yolov5_face_and_yolov7_tiny_are_tied_on_hard(shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    """yolov5-face 82.73 vs yolov7-tiny-leak 82.97 hard AP: a paired difference of -0.24 [-0.70, +0.25], tied;
    RetinaFace-MobileNet0.25 (73.83) is significantly below both."""
    from facebench.results import write_document
    from protocols.wider_face import evaluate, load_ground_truth, read_predictions
    from tests.conftest import require

    wider = shared_data / "widerface"
    gt = load_ground_truth(require(wider / "ground_truth"))
    for folder in ("yolov5-face-unattributed_illenium7", "yolov7-tiny-leak_derronqi",
                   "retinaface-mobilenet0.25_thflgg133"):
        predictions = read_predictions(require(wider / "results" / folder / "widerface_txt"), gt, quiet=True)
        result = evaluate(gt, predictions, breakdown=False)
        write_document(result.to_document(), tmp_path / f"{folder}.json")
        result.save_records(tmp_path / f"{folder}.records.npz")
    board = build_leaderboard(scan(tmp_path))
    (section,) = board.sections
    shown = [(r.name, section.rank(i)) for i, r in enumerate(section.rows)]
    assert shown == [("yolov7-tiny-leak_derronqi", "=1"), ("yolov5-face-unattributed_illenium7", "=1"),
                     ("retinaface-mobilenet0.25_thflgg133", "3")]
    yolov7 = section.rows[0]
    assert yolov7.value("hard") == pytest.approx(0.829738522421083, abs=1e-12)
    low, high = yolov7.interval("hard")
    assert low < 0.8297 < high and high - low < 0.05
