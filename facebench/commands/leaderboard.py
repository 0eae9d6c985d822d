"""`facebench leaderboard`: the results store as Markdown, CSV or a static HTML page with PR/ROC figures."""

from __future__ import annotations

from pathlib import Path

import click

from facebench.errors import InputError, warn

BENCHMARKS = ("widerface-val", "fddb", "afw", "pascal")


def check_benchmarks(wanted: tuple[str, ...], results: list, references: list) -> None:
    """Every --benchmark must name a known benchmark (registered, or present in the results)."""
    present = {r.benchmark for r in results} | {r.benchmark for r in references}
    known = list(dict.fromkeys([*BENCHMARKS, "sample", *sorted(present)]))
    unknown = [b for b in wanted if b not in known]
    if unknown:
        raise InputError(None, None, f"--benchmark {unknown[0]!r}: unknown benchmark (known: {', '.join(known)})")
    if wanted and not present & set(wanted):
        raise InputError(None, None, f"--benchmark {', '.join(wanted)}: no results or published references for it "
                                     f"(the results have: {', '.join(sorted(present)) or 'none'})")


def published_references(root: Path, benchmarks: tuple[str, ...], results: list) -> list:
    """The published rows under `root`; AFW/PASCAL baselines scored on the default annotations and size rule, and
    again on each other one the results of that dataset record, so every results table gets its baseline rows."""
    from facebench.published import FACE_EVAL_DIRS, FaceEvalScoring, load_references

    wanted = list(benchmarks) or [*BENCHMARKS]
    references = load_references(root, [b for b in wanted if b not in FACE_EVAL_DIRS])
    for dataset in (b for b in wanted if b in FACE_EVAL_DIRS):
        scorings = FaceEvalScoring.of_results(r.doc for r in results if r.benchmark == dataset)
        for scoring in scorings:
            if scoring.annotations and not (root / dataset / "annotations" / scoring.annotations).is_file():
                warn(f"{dataset}: results scored on {scoring.annotations}, which is not under "
                     f"{root / dataset / 'annotations'}; their table gets no baseline rows")
        references += load_references(root, [dataset], scorings)
    return references


@click.command("leaderboard")
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=Path("results"),
              show_default=True, help="Folder of result JSONs (searched recursively).")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "csv"]), default="md", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout).")
@click.option("--published", "published_root", type=click.Path(file_okay=False, path_type=Path),
              help="Data root holding published curves/baselines (the ../shared/data layout): adds "
                   "'published, not run' reference rows.")
@click.option("--benchmark", "benchmarks", multiple=True,
              help="Only these benchmarks (e.g. widerface-val, fddb, afw, pascal); repeatable.")
@click.option("--sort", "sort", default=None, help="Sort the tables that show this column by it (easy, medium, "
              "hard, disc_tpr_at_1000fp, cont_tpr_at_1000fp, ap); the others keep their default (hard, "
              "disc_tpr_at_1000fp or ap).")
@click.option("--figures", type=click.Choice(["embed", "files", "none"]), default="embed", show_default=True,
              help="HTML: figures embedded in the page, or PNG files in <out>_figures/ beside it "
                   "(also links them from Markdown).")
@click.option("--figure-top", type=int, default=10, show_default=True,
              help="Published curves drawn per figure (the best ones); every run is drawn.")
@click.option("--skip-invalid", is_flag=True, help="Warn about invalid result files instead of stopping.")
@click.option("--ci/--no-ci", "with_ci", default=None,
              help="95% bootstrap intervals and statistically tied ranks (\"=2\") for results with per-image "
                   "records beside them (X.records.npz next to X.json). Default: on where records exist.")
@click.option("--resamples", type=click.IntRange(min=10), default=1000, show_default=True,
              help="Bootstrap resamples of the tie ranking and of intervals not stored in the result JSON.")
def leaderboard_command(results_dir: Path, fmt: str, out: Path | None, published_root: Path | None,
                        benchmarks: tuple[str, ...], sort: str | None, figures: str, figure_top: int,
                        skip_invalid: bool, with_ci: bool | None, resamples: int) -> None:
    """One row per detector per benchmark (a table per ground truth), sorted, with published reference rows."""
    from facebench.leaderboard import build_leaderboard, write_leaderboard
    from facebench.store import scan

    if not results_dir.exists():
        raise InputError(results_dir, None, "results folder not found (pass --results DIR)")
    ignored: list[Path] = []
    results = scan(results_dir, skip_invalid=skip_invalid, ignored=ignored)
    if ignored:
        click.echo(f"note: {len(ignored)} JSON files that are not facebench results ignored (run manifests, "
                   f"comparisons, analyses ...; e.g. {ignored[0]})", err=True)
    references = []
    if published_root is not None:
        references = published_references(published_root, benchmarks, results)
        if not references:
            warn(f"no published curves or baselines found under {published_root}")
    if not results and not references:
        raise InputError(results_dir, None, "no result JSONs found (and no --published references)")
    check_benchmarks(benchmarks, results, references)
    board = build_leaderboard(results, references, sort=sort, benchmarks=benchmarks or None, ci=with_ci,
                              resamples=resamples)
    if sort and not any(sort in dict(section.columns) for section in board.sections):
        known = sorted({key for section in board.sections for key, _ in section.columns})
        raise InputError(None, None, f"--sort {sort!r}: no such column (choose from {', '.join(known)})")
    for message in board.warnings:
        warn(message)
    text = write_leaderboard(board, fmt, out, figures=figures, top_published=figure_top)
    if out is None:
        click.echo(text, nl=False)
    else:
        n_rows = sum(len(s.rows) for s in board.sections)
        n_benchmarks = len({s.benchmark for s in board.sections})
        extra = len(board.sections) - n_benchmarks  # tables of results on another ground truth
        tables = f", {extra} more table{'s' * (extra != 1)} on other ground truth" if extra else ""
        click.echo(f"wrote {out} ({n_rows} rows in {n_benchmarks} benchmarks{tables})", err=True)
