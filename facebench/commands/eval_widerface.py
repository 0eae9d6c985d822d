"""`facebench eval widerface`: score a WIDER FACE val prediction folder."""

from __future__ import annotations

import time
from pathlib import Path

import click

from facebench.errors import InputError, check_output_paths
from facebench.results import records_path

GT_SUBDIRS = {"2017": "ground_truth", "2016": "ground_truth_old_2016"}


def resolve_gt_dir(gt_dir: str | None, data_root: str | None, version: str) -> Path:
    """--gt-dir, else the version's folder under --data-root, else under the default roots (`default_data_roots`)."""
    from facebench.datasets import default_data_roots

    if gt_dir:
        return Path(gt_dir)
    roots = [Path(data_root)] if data_root else default_data_roots()
    sub = GT_SUBDIRS[version]
    for root in roots:
        for candidate in (root / "widerface" / sub, root / sub, root / "eval_tools" / sub):
            if (candidate / "wider_face_val.mat").is_file():
                return candidate
    if data_root:
        raise InputError(data_root, None, f"no WIDER FACE {version} ground truth found under it (looked for "
                         f"widerface/{sub}/wider_face_val.mat); pass --gt-dir")
    raise InputError(None, None, f"no WIDER FACE {version} ground truth found (looked for widerface/{sub}/ in "
                     f"{', '.join(str(r) for r in roots)}): pass --gt-dir DIR (the folder with wider_face_val.mat "
                     "and wider_{easy,medium,hard}_val.mat) or --data-root DIR, or set FACEBENCH_DATA_ROOT")


def load_versioned_ground_truth(gt_dir: Path, version: str | None):
    """The ground truth of a folder, labelled with the version its files hold (int32 boxes: 2017, float: 2016);
    a --gt-version the files contradict is an error, not a label."""
    from protocols import wider_face

    gt = wider_face.load_ground_truth(gt_dir)
    if version is not None and gt.version != version:
        kind = "integer" if gt.integer_boxes else "float"
        raise InputError(gt_dir, None, f"holds the {gt.version} ground truth ({kind} boxes), not --gt-version "
                                       f"{version}")
    return gt


def default_label(pred_dir: Path) -> str:
    """A legend name: the folder, or its parent when the folder has a generic name."""
    name = pred_dir.resolve().name
    return pred_dir.resolve().parent.name if name in {"widerface_txt", "predictions", "preds", "txt"} else name


def published_overlays(folders) -> dict:
    """setting -> [PRCurve] for published method folders."""
    from facebench.plots.pr import PRCurve
    from protocols.wider_face.published import load_published_method

    panels: dict = {}
    for folder in folders:
        for setting, curve in load_published_method(folder).items():
            panels.setdefault(setting, []).append(
                PRCurve(curve.legend, curve.recall, curve.precision, curve.ap, published=True))
    return panels



@click.command("widerface")
@click.argument("pred_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--gt-dir", type=click.Path(file_okay=False), help="Folder with the four official .mat files.")
@click.option("--gt-version", type=click.Choice(["2017", "2016"]), default=None,
              help="Ground truth under --data-root: current (2017, integer boxes; the default) or old (2016, "
                   "float boxes). The version recorded is always the one the files hold.")
@click.option("--gt-txt", type=click.Path(dir_okay=False), help="Take boxes and attributes from a "
              "wider_face_val_bbx_gt.txt (keep lists still come from the .mat files).")
@click.option("--data-root", type=click.Path(file_okay=False), help="Root holding widerface/ground_truth*/ "
              "(default: $FACEBENCH_DATA_ROOT, $FACEBENCH_SHARED_DATA, then ../shared/data beside the checkout).")
@click.option("--semantics", type=click.Choice(["official", "python-port"]), default="official",
              show_default=True, help="Official MATLAB eval_tools, or the popular Python port's numbers.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the result JSON here "
              "(and the per-image records beside it as .records.npz).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write the PR curves (PNG/PDF).")
@click.option("--overlay", "overlays", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="A published method folder (wider_pr_info_*_val.mat) to draw beside; repeatable.")
@click.option("--label", default=None, help="Method name for the plot legend (default: the folder name).")
@click.option("--no-breakdown", is_flag=True, help="Skip the per-attribute / face-height breakdown.")
@click.option("--breakdown-base", type=click.Choice(["easy", "medium", "hard"]), default="hard",
              show_default=True, help="Setting whose faces the breakdown splits.")
@click.option("--ignore-unknown", is_flag=True, help="Skip event folders / files not in the ground truth.")
@click.option("--ci", "with_ci", is_flag=True, help="Add image-level bootstrap 95% intervals (1000 resamples, seed 0).")
def widerface_command(pred_dir: Path, gt_dir: str | None, gt_version: str, gt_txt: str | None, data_root: str | None, semantics: str,
                      out: Path | None, plot: Path | None, overlays: tuple[Path, ...], label: str | None, no_breakdown: bool,
                      breakdown_base: str, ignore_unknown: bool, with_ci: bool) -> None:
    """Evaluate PRED_DIR (<event>/<image>.txt files) on WIDER FACE val: easy / medium / hard AP."""
    from protocols import wider_face

    check_output_paths([gt_txt], plot=plot, overlays=overlays,
                       out=[out, records_path(out)] if out is not None else None)
    published = published_overlays(overlays)  # read first: a bad overlay must not leave outputs half written
    started = time.perf_counter()
    gt = load_versioned_ground_truth(resolve_gt_dir(gt_dir, data_root, gt_version or "2017"), gt_version)
    if gt_txt:
        from protocols.wider_face.ground_truth import with_split_txt

        gt = with_split_txt(gt, gt_txt)
    predictions = wider_face.read_predictions(pred_dir, gt, semantics=semantics, ignore_unknown=ignore_unknown)
    result = wider_face.evaluate(gt, predictions, breakdown=not no_breakdown, breakdown_base=breakdown_base)
    elapsed = time.perf_counter() - started
    extra = {"evaluation_seconds": round(elapsed, 4)}
    intervals = None
    if with_ci:
        try:
            from facebench.bootstrap import intervals_for_result
        except ImportError:
            raise InputError(None, None, "--ci needs facebench.bootstrap, which this install lacks") from None
        intervals = intervals_for_result(result)
        extra["ci95"] = intervals
    click.echo(f"WIDER FACE val ({semantics} semantics, ground truth {gt.version}): {pred_dir}")
    click.echo(result.table() if intervals is None else result.table(intervals))
    if result.breakdown:
        worst = sorted((c.ap, name) for name, c in result.breakdown.items() if c.ap is not None)[:3]
        click.echo("weakest breakdown cells (" + breakdown_base + "): " +
                   ", ".join(f"{name} {100 * ap:.2f}" for ap, name in worst))
    if out is not None:
        from facebench.results import write_document

        write_document(result.to_document(extra=extra), out)
        result.save_records(records_path(out))
        click.echo(f"wrote {out}")
    if plot is not None:
        result.plot(plot, label=label or default_label(pred_dir), overlays=published)
        click.echo(f"wrote {plot}")
