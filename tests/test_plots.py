"""Figure colours: one colour per method, evaluated methods strong, published ones never a pale copy of them."""

from __future__ import annotations

from matplotlib import colormaps

from facebench.plots.colours import method_colours


def test_published_methods_never_get_a_pale_version_of_an_evaluated_hue() -> None:
    tab20 = colormaps["tab20"].colors
    own = ["mine", "baseline"]
    published = [f"paper{i}" for i in range(14)]
    colours = method_colours(own + published, own)
    assert [colours[m] for m in own] == list(colormaps["tab10"].colors[:2])
    pale_of_own = {tab20[1], tab20[3]}
    assert not {colours[m] for m in published} & (set(colours[m] for m in own) | pale_of_own)
    assert len({colours[m] for m in own + published}) == len(own + published)  # all told apart
    assert colours["paper0"] == tab20[4]  # the first unused strong hue comes first


def test_up_to_ten_methods_without_own_all_get_strong_colours() -> None:
    labels = [f"m{i}" for i in range(10)]
    assert list(method_colours(labels).values()) == list(colormaps["tab10"].colors)


def test_a_result_missing_a_panel_curve_is_named(tmp_path, capsys) -> None:
    from facebench.overlay_plot import curves_from_document
    from tests.test_store import synthetic_document

    doc = synthetic_document(values={"easy": 0.9, "medium": 0.8, "hard": 0.7})
    del doc["curves"]["medium"]
    doc["curves"]["hard"] = {"foo": [1, 2]}
    curves = curves_from_document(doc, "det", source="r.json")
    assert [c.panel for c in curves] == ["easy"]
    assert capsys.readouterr().err == "warning: r.json: no usable curves.medium/hard; left out of the medium and " \
                                      "hard panels\n"
    curves_from_document(doc, "paper", published=True, source="p")
    assert capsys.readouterr().err == ""


def test_a_near_miss_figure_suffix_is_written_as_a_name_with_a_warning(capsys) -> None:
    from pathlib import Path

    from facebench.commands.plot import _outputs

    assert _outputs((Path("fig.pnng"),)) == [Path("fig.pnng.png"), Path("fig.pnng.pdf")]
    assert "'.pnng' is not a figure suffix (did you mean '.png'?)" in capsys.readouterr().err
    assert _outputs((Path("yunet-v1.2"), Path("a.svg"))) == [Path("yunet-v1.2.png"), Path("yunet-v1.2.pdf"),
                                                             Path("a.svg")]
    assert capsys.readouterr().err == ""
