"""`facebench plot`: overlay result JSONs and published curves on one PR (WIDER, AFW, PASCAL) or ROC (FDDB) figure."""

from __future__ import annotations

import difflib
from pathlib import Path

import click

from facebench.errors import PLOT_SUFFIXES, InputError, warn


def _outputs(out: tuple[Path, ...]) -> list[Path]:
    """--out values; one without a figure suffix (none, or a dot in a name like 'yunet-v1.2') means both
    X.png and X.pdf."""
    paths: list[Path] = []
    for path in out:
        if not path.name:
            raise InputError(None, None, f"--out {str(path)!r}: not a file name")
        if path.suffix.lower() in PLOT_SUFFIXES:
            paths.append(path)
            continue
        near = difflib.get_close_matches(path.suffix.lower(), PLOT_SUFFIXES, n=1, cutoff=0.7)
        if near:  # 'fig.pnng': most likely a typo, still a legal name
            warn(f"--out {path}: '{path.suffix}' is not a figure suffix (did you mean '{near[0]}'?); writing "
                 f"{path.name}.png and {path.name}.pdf")
        paths += [path.with_name(path.name + ".png"), path.with_name(path.name + ".pdf")]
    return paths


@click.command("plot")
@click.argument("results", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--published", "published", multiple=True, type=click.Path(path_type=Path),
              help="A published item (WIDER method folder, FDDB *DiscROC.txt, AFW/PASCAL baseline file) or a "
                   "data root (the ../shared/data layout: all published methods of the benchmark); repeatable.")
@click.option("--method", "methods", multiple=True,
              help="With a data root: only these published methods (case-insensitive); repeatable.")
@click.option("--top", type=int, default=None, help="With a data root: only the N best published methods.")
@click.option("--benchmark", default=None, help="Benchmark when only published curves are plotted "
              "(widerface-val, fddb, afw, pascal).")
@click.option("--label", "labels", multiple=True, help="Legend label per RESULT, in order (default: detector "
              "name).")
@click.option("--out", "out", multiple=True, required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Figure file (.png, .pdf, .svg, .jpg, .eps, ...); without a suffix both .png and .pdf; "
                   "repeatable.")
def plot_command(results: tuple[Path, ...], published: tuple[Path, ...], methods: tuple[str, ...], top: int | None,
                 benchmark: str | None, labels: tuple[str, ...], out: tuple[Path, ...]) -> None:
    """Overlay RESULTS (result JSONs) and --published curves of one benchmark on one figure."""
    from facebench.overlay_plot import curves_from_document, curves_from_reference, plot_overlay, unique_labels
    from facebench.published import FaceEvalScoring, load_references, reference_from_path
    from facebench.errors import check_output_paths
    from facebench.store import load_result, protocol_family

    figures = _outputs(out)
    check_output_paths([*results, *published], out=figures)
    if top is not None and top < 1:
        raise InputError(None, None, f"--top must be >= 1, got {top}")
    stored = [load_result(p) for p in results]
    if labels and len(labels) != len(stored):
        raise InputError(None, None, f"--label given {len(labels)} times for {len(stored)} results")
    benchmarks = {r.benchmark for r in stored} | ({benchmark} if benchmark else set())
    if len(benchmarks) > 1:
        raise InputError(None, None, f"results are for different benchmarks ({', '.join(sorted(benchmarks))}); "
                                     "plot one benchmark per figure")
    if not benchmarks:
        raise InputError(None, None, "give at least one RESULT.json, or --benchmark with --published")
    bench = benchmarks.pop()
    family = stored[0].family if stored else protocol_family(bench, "")
    if len({(r.ground_truth_sha256, r.protocol_version, r.convention) for r in stored}) > 1:
        warn("the results differ in ground truth or protocol convention; their curves are not comparable")

    names = list(labels) or [r.detector_name for r in stored]
    details = [r.doc.get("settings", {}).get("semantics") or r.path.stem for r in stored]
    curves = []
    for result, label in zip(stored, unique_labels(names, details)):
        curves += curves_from_document(result.doc, label, source=result.path)

    wanted = {m.lower() for m in methods}
    # AFW/PASCAL baselines are scored here: on the results' annotations and size rule when they share them.
    scorings = {FaceEvalScoring.of_result(r.doc) for r in stored} if family == "face-eval" else set()
    scoring = scorings.pop() if len(scorings) == 1 else None
    result_scoring = {(r.ground_truth_sha256, scoring.min_width, scoring.min_height) for r in stored} \
        if scoring is not None else set()
    elsewhere: list[str] = []
    for item in published:
        if item.is_dir() and not any(item.glob("wider_pr_info_*.mat")):
            refs = load_references(item, [bench], scoring)
            if wanted:
                refs = [r for r in refs if r.method.lower() in wanted]
            if top is not None:
                from facebench.leaderboard import DEFAULT_SORT

                key = DEFAULT_SORT.get(family, "")
                scored = sorted((r for r in refs if r.metrics.get(key) is not None), key=lambda r: -r.metrics[key])
                refs = scored[:top]
            if not refs:
                raise InputError(item, None, f"no published {bench} methods found"
                                             + (f" matching {', '.join(methods)}" if methods else ""))
        else:
            refs = reference_from_path(item, bench, scoring)
        for ref in refs:
            if ref.benchmark != bench:
                raise InputError(ref.source, None, f"published curve is for {ref.benchmark}, not {bench}")
            used = (ref.extra.get("ground_truth_sha256"), ref.extra.get("min_width"), ref.extra.get("min_height"))
            if result_scoring and ref.family == "face-eval" and used not in result_scoring:
                elsewhere.append(f"{ref.method} ({ref.extra.get('annotations')}, min size {used[1]}x{used[2]})")
            curves += curves_from_reference(ref)
    if elsewhere:
        warn(f"published {', '.join(elsewhere)} scored on other annotations than the results (theirs are not "
             "under the data root); their curves are not comparable")
    for path in plot_overlay(curves, bench, family, figures):
        click.echo(f"wrote {path}")
