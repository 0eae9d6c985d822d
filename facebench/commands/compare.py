"""`facebench compare A.json B.json`: paired bootstrap difference of two results on the same images."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("compare")
@click.argument("a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--resamples", type=click.IntRange(min=10), default=1000, show_default=True,
              help="Bootstrap resamples (the same image draws for A and B).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the image draws.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the comparison JSON here.")
def compare_command(a: Path, b: Path, resamples: int, seed: int, out: Path | None) -> None:
    """Compare result A with result B: A - B per metric, its 95% interval and a two-sided p-value.

    Both results need their per-image records (X.records.npz beside X.json, written by `facebench eval
    ... --out X.json`), the same ground truth and the same protocol settings.
    """
    from facebench.compare import compare_files
    from facebench.errors import check_output_paths
    from facebench.results import records_path

    check_output_paths([a, b, records_path(a), records_path(b)], out=out)
    comparison = compare_files(a, b, resamples=resamples, seed=seed)
    click.echo(comparison.table())
    if out is not None:
        from facebench.results import write_document

        write_document(comparison.to_document(), out)
        click.echo(f"wrote {out}")
