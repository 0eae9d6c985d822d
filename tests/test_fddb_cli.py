"""`facebench eval fddb` end to end on the spec §6.2 mini case, bad input, and the ROC plot / reader."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facebench.errors import InputError
from facebench.plots.roc import RocSeries, plot_roc_panels, read_published_roc, roc_kind_and_label
from tests.conftest import run_cli
from tests.test_fddb import SPEC_ELL_DISC, SPEC_RECT_CONT, SPEC_RECT_DISC, write_mini_case


@pytest.fixture()
def mini(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FACEBENCH_FDDB_SIZES", raising=False)
    monkeypatch.delenv("FACEBENCH_DATA_ROOT", raising=False)
    return write_mini_case(tmp_path)


def test_cli_end_to_end(mini, tmp_path, capsys):
    published = tmp_path / "Other_DiscROC.txt"
    published.write_bytes(b"0.5 3 0.1\r\n0.4\t1\t0.9\r\n")
    code, out, err = run_cli(["eval", "fddb", str(mini["rects"]), "--folds-dir", str(mini["folds"]),
                              "--image-sizes", str(mini["sizes"]), "--convention", "opencv4",
                              "--roc-prefix", str(tmp_path / "roc" / "mini"), "--out", str(tmp_path / "r.json"),
                              "--plot", str(tmp_path / "roc.png"), "--overlay", str(published)], capsys)
    assert code == 0, err
    assert "disc TPR" in out and "ROC points: 6" in out
    assert (tmp_path / "roc" / "miniDiscROC.txt").read_text() == SPEC_RECT_DISC
    assert (tmp_path / "roc" / "miniContROC.txt").read_text() == SPEC_RECT_CONT
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["benchmark"] == "fddb" and doc["settings"]["ellipse_convention"] == "opencv4"
    assert doc["metrics"]["disc_tpr_at_1000fp"] == 0.75 and "cont_tpr_at_1000fp" in doc["metrics"]
    assert "evaluation_seconds" in doc
    assert (tmp_path / "r.records.npz").is_file()
    assert (tmp_path / "roc.png").stat().st_size > 10_000


def test_cli_annotations_file_and_ellipse_format(mini, tmp_path, capsys, monkeypatch):
    annotations = tmp_path / "all.txt"
    annotations.write_bytes(mini["ellipses"].read_bytes().replace(b"\n", b"\r\n"))
    monkeypatch.setenv("FACEBENCH_FDDB_SIZES", str(mini["sizes"]))
    code, out, err = run_cli(["eval", "fddb", str(mini["ellipse_dets"]), "--annotations", str(annotations),
                              "--format", "ellipse", "--convention", "opencv4", "--roc-prefix",
                              str(tmp_path / "e")], capsys)
    assert code == 0, err
    assert (tmp_path / "eDiscROC.txt").read_text() == SPEC_ELL_DISC
    assert "annotation file, 3 images, 4 faces" in out


def test_cli_without_sizes_says_what_to_pass(mini, capsys, monkeypatch, tmp_path):
    from facebench import datasets

    monkeypatch.setattr(datasets, "default_data_roots", lambda: [tmp_path / "nowhere"])
    code, _, err = run_cli(["eval", "fddb", str(mini["rects"]), "--folds-dir", str(mini["folds"])], capsys)
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--image-sizes" in errors[0] and "FACEBENCH_FDDB_SIZES" in errors[0]


def test_cli_without_ground_truth(mini, capsys, monkeypatch, tmp_path):
    from facebench import datasets

    monkeypatch.setattr(datasets, "default_data_roots", lambda: [tmp_path / "nowhere"])
    code, _, err = run_cli(["eval", "fddb", str(mini["rects"]), "--image-sizes", str(mini["sizes"])], capsys)
    assert code == 2 and "--folds-dir" in err and f"looked for fddb/FDDB-folds/ in {tmp_path / 'nowhere'}" in err


def test_cli_finds_folds_and_sizes_under_the_default_roots(mini, capsys, monkeypatch, tmp_path):
    import shutil

    from facebench import datasets

    root = tmp_path / "root"
    shutil.copytree(mini["folds"], root / "fddb" / "FDDB-folds")
    shutil.copy(mini["sizes"], root / "fddb" / "image_sizes.tsv")
    monkeypatch.setattr(datasets, "default_data_roots", lambda: [tmp_path / "nowhere", root])
    code, out, err = run_cli(["eval", "fddb", str(mini["rects"]), "--convention", "opencv4"], capsys)
    assert code == 0, err
    assert "ROC points: 6" in out
    (root / "fddb" / "image_sizes.tsv").write_text("z/other\t10\t10\n")
    code, _, err = run_cli(["eval", "fddb", str(mini["rects"]), "--folds-dir", str(mini["folds"])], capsys)
    assert code == 2 and f"the size table found by default under {root}; pass --image-sizes" in err


def test_cli_bad_detection_line_is_one_error_line(mini, capsys):
    mini["rects"].write_text("a/imgA\n1\n25 30 30\nb/imgB\n0\nc/imgC\n0\n")
    code, _, err = run_cli(["eval", "fddb", str(mini["rects"]), "--folds-dir", str(mini["folds"]),
                            "--image-sizes", str(mini["sizes"])], capsys)
    assert code == 2
    line = [l for l in err.splitlines() if l.startswith("error:")]
    assert len(line) == 1 and f"{mini['rects']}:3:" in line[0] and "Traceback" not in err


def test_cli_rejects_both_ground_truth_options(mini, capsys):
    code, _, err = run_cli(["eval", "fddb", str(mini["rects"]), "--folds-dir", str(mini["folds"]), "--annotations",
                            str(mini["ellipses"]), "--image-sizes", str(mini["sizes"])], capsys)
    assert code == 2 and "replaces --folds-dir" in err


def test_published_roc_reader(tmp_path):
    path = tmp_path / "Landmark_DiscROC.txt"
    path.write_bytes(b"0.880101 152 0.380191 5171\r\n0.879907 151 0.401404 5171\r\n")
    roc = read_published_roc(path)
    assert roc.label == "Landmark" and roc.kind == "disc"
    assert roc.tpr.tolist() == [0.880101, 0.879907] and roc.fp.tolist() == [152, 151]
    assert roc.threshold.tolist() == [0.380191, 0.401404]
    two = tmp_path / "BAIDU-IDL-cont.txt"
    two.write_text("0.7 10\n0.6 5\n")
    roc = read_published_roc(two)
    assert roc.kind == "cont" and roc.label == "BAIDU-IDL" and roc.threshold is None
    bad = tmp_path / "badDiscROC.txt"
    bad.write_text("0.7 10\n0.6 x\n")
    with pytest.raises(InputError) as excinfo:
        read_published_roc(bad)
    assert f"{bad}:2:" in str(excinfo.value)


@pytest.mark.parametrize("name, kind, label", [("HeadHunter_DiscROC.txt", "disc", "HeadHunter"),
                                               ("Face++ContROC.txt", "cont", "Face++"),
                                               ("Jain et al.DiscROC.txt", "disc", "Jain et al."),
                                               ("pico-DiscROC.txt", "disc", "pico")])
def test_roc_file_names(name, kind, label):
    assert roc_kind_and_label(name) == (kind, label)


def test_plot_roc_panels(tmp_path):
    fp = np.array([0, 10, 100, 1500])
    series = [RocSeries("mine", fp, np.array([0.1, 0.5, 0.8, 0.9])),
              RocSeries("published", fp, np.array([0.2, 0.4, 0.7, 0.85]), published=True)]
    plot_roc_panels({"discrete": series, "continuous": series[:1]}, tmp_path / "roc.pdf")
    assert (tmp_path / "roc.pdf").stat().st_size > 1000


def test_cli_ci_adds_intervals_containing_the_point(mini, tmp_path, capsys):
    code, out, err = run_cli(["eval", "fddb", str(mini["rects"]), "--folds-dir", str(mini["folds"]),
                              "--image-sizes", str(mini["sizes"]), "--convention", "opencv4",
                              "--out", str(tmp_path / "r.json"), "--ci"], capsys)
    assert code == 0, err
    assert "disc_tpr_at_1000fp: 95% interval" in out
    doc = json.loads((tmp_path / "r.json").read_text())
    lo, hi = doc["ci95"]["disc_tpr_at_1000fp"]
    assert lo <= doc["metrics"]["disc_tpr_at_1000fp"] <= hi


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def _base(mini) -> list[str]:
    return ["eval", "fddb", str(mini["rects"]), "--folds-dir", str(mini["folds"]), "--image-sizes", str(mini["sizes"])]


def test_cli_bad_plot_suffix_fails_before_evaluation(mini, tmp_path, capsys):
    code, out, err = run_cli(_base(mini) + ["--plot", str(tmp_path / "roc.xyz"), "--out", str(tmp_path / "r.json")],
                             capsys)
    assert code == 2 and "disc TPR" not in out and not (tmp_path / "r.json").exists()
    assert len(_errors(err)) == 1 and "roc.xyz" in _errors(err)[0]


@pytest.mark.parametrize("option", ["--out", "--plot"])
def test_cli_refuses_to_overwrite_an_input(mini, capsys, option):
    target = mini["sizes"] if option == "--out" else mini["sizes"].with_suffix(".png")
    if option == "--plot":
        target.write_bytes(b"")
        code, _, err = run_cli(_base(mini) + [option, str(target), "--overlay", str(target)], capsys)
    else:
        code, _, err = run_cli(_base(mini) + [option, str(target)], capsys)
    assert code == 2 and "refusing to overwrite" in err and len(_errors(err)) == 1
    assert option != "--out" or target.read_text().startswith("image")


def test_cli_roc_prefix_files_are_checked_too(mini, tmp_path, capsys):
    published = tmp_path / "OtherDiscROC.txt"
    published.write_text("0.5 3 0.1\n")
    code, out, err = run_cli(_base(mini) + ["--roc-prefix", str(tmp_path / "Other"), "--plot", str(tmp_path / "p.png"),
                                            "--overlay", str(published)], capsys)
    assert code == 2 and "--roc-prefix" in err and published.read_text() == "0.5 3 0.1\n" and "disc TPR" not in out


def test_cli_overlay_needs_plot(mini, tmp_path, capsys):
    published = tmp_path / "Other_DiscROC.txt"
    published.write_text("0.5 3 0.1\n")
    code, out, err = run_cli(_base(mini) + ["--overlay", str(published)], capsys)
    assert code == 2 and _errors(err) == ["error: --overlay needs --plot (overlays are only drawn in the figure)"]
    assert "disc TPR" not in out


def test_cli_empty_overlay_is_one_error_line(mini, tmp_path, capsys):
    empty = tmp_path / "EmptyDiscROC.txt"
    empty.write_text("")
    code, out, err = run_cli(_base(mini) + ["--plot", str(tmp_path / "p.png"), "--overlay", str(empty)], capsys)
    assert code == 2 and err.strip().splitlines() == [f"error: {empty}: no ROC points (empty file)"]
    assert "disc TPR" not in out


def test_cli_ellipse_file_as_rectangles_warns(mini, capsys):
    args = ["eval", "fddb", str(mini["ellipse_dets"]), "--folds-dir", str(mini["folds"]), "--image-sizes",
            str(mini["sizes"])]
    code, _, err = run_cli(args, capsys)
    assert code == 0 and sum("--format ellipse" in line for line in err.splitlines()) == 1


def test_legend_lists_the_evaluated_methods_first():
    from facebench.plots.roc import legend_layout, legend_order

    fp = np.array([0, 500, 1000])
    published = [RocSeries(f"p{k}", fp, np.array([0.1, 0.5, 0.5 + k / 100]), published=True) for k in range(40)]
    mine = [RocSeries("mine", fp, np.array([0.0, 0.1, 0.2])), RocSeries("also mine", fp, np.array([0.0, 0.1, 0.3]))]
    ordered = legend_order(published[:20] + mine[:1] + published[20:] + mine[1:], 1000)
    assert [s.label for s in ordered[:3]] == ["mine", "also mine", "p39"]
    assert legend_layout(3)["loc"] == "lower right"
    many = legend_layout(42)
    assert many["loc"] == "upper left" and many["bbox_to_anchor"][0] > 1 and many["ncol"] == 2


def test_plot_with_many_overlays_keeps_the_legend_in_the_figure(tmp_path):
    from PIL import Image

    fp = np.array([0, 500, 1000])
    series = [RocSeries("mine", fp, np.array([0.0, 0.1, 0.2]))]
    series += [RocSeries(f"published method {k}", fp, np.array([0.1, 0.5, 0.5 + k / 100]), published=True)
               for k in range(36)]
    plot_roc_panels({"discrete": series, "continuous": series}, tmp_path / "roc.png")
    with Image.open(tmp_path / "roc.png") as im:
        pixels = np.asarray(im.convert("L"))
    # cropped to what was drawn (bbox_inches="tight"): the legend beside each panel widens the figure
    assert pixels.shape[1] > 2 * 6.5 * 130 and pixels.shape[0] >= 5 * 130 - 10
    assert (pixels[:, -5:] == 255).all()  # only the crop margin at the right: nothing runs off


def test_cli_warns_when_the_ground_truth_has_no_face(mini, tmp_path, capsys):
    annotations = tmp_path / "empty.txt"
    annotations.write_text("a/imgA\n0\nb/imgB\n0\nc/imgC\n0\n")
    code, out, err = run_cli(["eval", "fddb", str(mini["rects"]), "--annotations", str(annotations),
                              "--image-sizes", str(mini["sizes"])], capsys)
    assert code == 0, err
    assert "lists 3 images but no face; every TPR is 0" in err and len(err.strip().splitlines()) == 1
