"""CLI: `facebench run`, `facebench detectors`, `facebench merge`."""

from __future__ import annotations

import json
import math
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from facebench.errors import InputError


def parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`-o key=value` pairs -> options (values read as JSON when they parse: numbers, true/false, null)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(None, None, f"detector option '{pair}' must be KEY=VALUE")
        if key.strip() == "device":
            raise InputError(None, None, f"'-o {pair}': the device is not a detector option; use --device")
        try:
            value: Any = json.loads(text)
        except (ValueError, RecursionError):  # not JSON (or a number past int()'s digit limit): a string
            value = text
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(None, None, f"detector option '{key.strip()}={text}' must be a finite number")
        options[key.strip()] = value
    return options


def resume_hint(argv: list[str]) -> str:
    """What to tell a user who stopped a run: the images done so far are cached, the same command resumes."""
    command = "facebench " + shlex.join(argv) if "run" in argv else "the same command"
    return f"interrupted: the images done so far are cached; re-run `{command}` to resume where it stopped"


def _echo_result(result: Any) -> None:
    from facebench.run import RunResult, ShardOutcome

    if isinstance(result, ShardOutcome):
        k, n = result.shard
        click.echo(f"shard {k} of {n}: {result.n_images} images ({result.computed} computed, {result.cached} "
                   f"from the cache, {len(result.unreadable)} unreadable) in {result.wall_s:.1f} s")
        return
    assert isinstance(result, RunResult)
    click.echo(result.table)
    if result.document is not None:
        timing = result.document.get("timing", {})
        ms = timing.get("ms_per_image", {})
        parts = ", ".join(f"{k} {v:.1f}" for k, v in ms.items() if k != "total")
        if ms:
            click.echo(f"time: {ms.get('total', 0.0):.1f} ms/image ({parts}); peak RSS "
                       f"{timing.get('peak_memory_mib', {}).get('rss') or 0:.0f} MiB")
    if result.unreadable:
        click.echo(f"{len(result.unreadable)} unreadable images skipped (listed in the result JSON)")
    if result.result_path is not None:
        from facebench.results import records_path
        from facebench.run import PLOT

        written = [result.result_path, records_path(result.result_path), result.result_path.parent / PLOT]
        files = ", ".join(str(path) for path in written if path.is_file())
        click.echo(f"wrote {files}; predictions in {result.predictions}")


@click.command(name="run")
@click.argument("detector", required=False)
@click.argument("benchmark", required=False)
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="Folder holding widerface/, fddb/, afw/, pascal/ in their official layouts (as for `facebench "
                   "eval`; one benchmark's folder itself also works); default $FACEBENCH_DATA_ROOT. Not needed "
                   "for 'sample'.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default runs/DETECTOR-BENCHMARK): result.json, records, pr.png, "
                   "predictions/, cache/.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N (detectors that support it).")
@click.option("--batch-size", type=int, default=1, show_default=True, help="Images per detect() call.")
@click.option("--num-shards", type=int, default=None, help="Split the images into N contiguous shards ...")
@click.option("--shard-id", type=int, default=None, help="... and run shard K (0-based); then `facebench merge`.")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Detector option, repeatable (e.g. -o score_threshold=0.05 -o threads=2).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--no-plot", is_flag=True, help="Skip the plot (saves about a second).")
def run_command(detector: str | None, benchmark: str | None, data_root: str | None, out: Path | None, device: str,
                batch_size: int, num_shards: int | None, shard_id: int | None, options: tuple[str, ...],
                no_progress: bool, no_plot: bool) -> None:
    """Run DETECTOR (default: yunet) on BENCHMARK (default: sample), score it and save results.

    Per-image detections are cached under OUT/cache, so an interrupted run resumes where it stopped.
    With `torchrun --nproc-per-node N -m facebench run ...` every rank takes one contiguous shard and
    rank 0 merges and scores.
    """
    from detectors.registry import DEFAULT_DETECTOR
    from facebench.datasets import DEFAULT_BENCHMARK
    from facebench.run import RunRequest, run

    request = RunRequest(detector=detector or DEFAULT_DETECTOR, benchmark=benchmark or DEFAULT_BENCHMARK,
                         data_root=data_root, out=out, device=device, batch_size=batch_size, num_shards=num_shards,
                         shard_id=shard_id, options=parse_options(options), progress=not no_progress,
                         plot=not no_plot)
    try:
        result = run(request)
    except KeyboardInterrupt:
        click.echo(resume_hint(sys.argv[1:]), err=True)
        raise
    _echo_result(result)
    if num_shards and num_shards > 1 and hasattr(result, "shard"):
        target = out or Path("runs") / f"{request.detector}-{request.benchmark}"
        click.echo(f"when every shard is done: facebench merge {target} (followed by the other shards' --out "
                   "folders if they differ)")


@click.command(name="detectors")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable listing.")
def detectors_command(name: str | None, as_json: bool) -> None:
    """List the registered detectors (built in and from installed packages) and whether they can run here;
    with NAME, that detector's `-o KEY=VALUE` options, their defaults and allowed values."""
    from detectors.registry import DEFAULT_DETECTOR, entries

    if name is not None:
        _echo_detector_options(name, as_json)
        return

    rows = []
    for name, entry in sorted(entries().items()):
        missing = entry.missing()
        rows.append({"name": name, "target": entry.target, "summary": entry.summary, "options": dict(entry.options),
                     "licence": entry.licence, "source": entry.source, "installed": not missing,
                     "missing": [req.package for req in missing],
                     "install": missing[0].hint() if missing else None, "default": name == DEFAULT_DETECTOR})
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        state = "ready" if r["installed"] else f"needs {', '.join(r['missing'])}: {r['install']}"
        star = " (default)" if r["default"] else ""
        opts = " ".join(f"{k}={v}" for k, v in r["options"].items())
        click.echo(f"{r['name']:<{width}}  {r['summary']}{star}{' [' + opts + ']' if opts else ''}  -- {state}")


def _echo_detector_options(name: str, as_json: bool) -> None:
    """One detector's options (imports its module, not its weights)."""
    from detectors.registry import get_entry, load_class

    entry = get_entry(name)
    cls = load_class(entry)
    rows = [{"option": key, "default": entry.options.get(key, default), "allowed": allowed}
            for key, default, allowed in cls.option_table()]
    if as_json:
        click.echo(json.dumps({"name": name, "summary": entry.summary, "options": rows}, indent=1, default=str))
        return
    click.echo(f"{name}: {entry.summary}")
    if not rows:
        click.echo("  (no declared options)")
    width = max((len(r["option"]) for r in rows), default=0)
    for r in rows:
        default = "-" if r["default"] is None else json.dumps(r["default"], default=str)
        click.echo(f"  -o {r['option']:<{width}} = {default:<10} {r['allowed']}")


@click.command(name="merge")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the merged results (default: the first DIR).")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="Data root (or the benchmark folder), when it is not where the shards saw it.")
@click.option("--no-plot", is_flag=True, help="Skip the plot.")
def merge_command(dirs: tuple[Path, ...], out: Path | None, data_root: str | None, no_plot: bool) -> None:
    """Merge the shards of a run (`--num-shards/--shard-id`, one or several --out folders) and score it."""
    from facebench.run import finalize

    result = finalize(out or dirs[0], list(dirs), data_root=data_root, plot=not no_plot)
    _echo_result(result)
