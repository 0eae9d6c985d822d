"""`facebench check`: the CI gate; exit 1 when a metric falls below baseline minus tolerance."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("check")
@click.argument("result", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--baseline", required=True, type=click.Path(path_type=Path),
              help="Baseline result JSON, or a folder of them (e.g. results/baselines): the comparable one is "
                   "picked.")
@click.option("--tolerance", type=float, default=None,
              help="Allowed drop, in metric units (fractions: 0.002 = 0.2 AP points). Default: the baseline's "
                   "check.tolerance, else 0.002.")
@click.option("--metric", "metrics", multiple=True,
              help="Gate only these metrics (default: the baseline's check.metrics, else the benchmark's "
                   "headline metrics); repeatable. Only higher-is-better fractions (AP, TPR) can be gated.")
def check_command(result: Path, baseline: Path, tolerance: float | None, metrics: tuple[str, ...]) -> None:
    """Compare RESULT with a baseline; exit 0 pass, 1 regression, 2 bad or incomparable input."""
    from facebench.check import check_result, find_baseline
    from facebench.store import load_result

    stored = load_result(result)
    report = check_result(stored, find_baseline(stored, baseline), tolerance, tuple(dict.fromkeys(metrics)) or None)
    click.echo(report.table())
    if not report.passed:
        sys.exit(report.exit_code)
