"""`facebench eval fddb`: the official FDDB discrete / continuous ROC of a detection file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from facebench.errors import InputError, check_output_paths, warn
from facebench.results import records_path

CONVENTIONS = ("opencv21", "negated-angle", "opencv4")


def _roots(data_root: str | None) -> list[Path]:
    """--data-root alone when given, else the default roots (`default_data_roots`)."""
    from facebench.datasets import default_data_roots

    return [Path(data_root)] if data_root else default_data_roots()


def _listed(roots: list[Path]) -> str:
    return ", ".join(str(root) for root in roots)


def resolve_ground_truth(folds_dir: Path | None, annotations: Path | None, data_root: str | None):
    """--annotations, else --folds-dir, else <data root>/fddb/FDDB-folds."""
    from protocols import fddb

    if folds_dir is not None and annotations is not None:
        raise InputError(None, None, "--annotations replaces --folds-dir: give one of them")
    if annotations is not None:
        return fddb.load_annotations(annotations)
    if folds_dir is not None:
        return fddb.load_folds(folds_dir)
    roots = _roots(data_root)
    for root in roots:
        for candidate in (root / "fddb" / "FDDB-folds", root / "FDDB-folds"):
            if candidate.is_dir():
                return fddb.load_folds(candidate)
    raise InputError(None, None, f"no FDDB ground truth found (looked for fddb/FDDB-folds/ in {_listed(roots)}): "
                     "pass --folds-dir DIR (FDDB-fold-XX.txt with FDDB-fold-XX-ellipseList.txt), --annotations "
                     "FILE (one ellipse list) or --data-root DIR")


def resolve_sizes(gt, image_sizes: Path | None, images: Path | None, data_root: str | None):
    """--image-sizes, else --images, else $FACEBENCH_FDDB_SIZES, else <data root>/fddb/image_sizes.tsv."""
    from protocols import fddb

    if image_sizes is not None and images is not None:
        raise InputError(None, None, "give either --image-sizes or --images, not both")
    if image_sizes is not None:
        return fddb.read_size_table(image_sizes, gt)
    if images is not None:
        return fddb.read_image_sizes(images, gt)
    env = os.environ.get("FACEBENCH_FDDB_SIZES")
    if env:
        return fddb.read_size_table(env, gt)
    for root in _roots(data_root):
        for candidate in (root / "fddb" / "image_sizes.tsv", root / "image_sizes.tsv"):
            if candidate.is_file():
                try:
                    return fddb.read_size_table(candidate, gt)
                except InputError as exc:
                    raise InputError(exc.path, exc.line, f"{exc.message} (the size table found by default under "
                                     f"{root}; pass --image-sizes FILE.tsv or --images DIR)") from None
    raise InputError(None, None, "FDDB clips every region to its image, so it needs the image sizes: pass "
                     "--image-sizes FILE.tsv (columns image width height) or --images DIR, or set "
                     "FACEBENCH_FDDB_SIZES")


def input_files(*paths: Path | str | None) -> list[Path]:
    """The named inputs, folders expanded to the files directly inside them (what an output must not replace)."""
    files: list[Path] = []
    for path in paths:
        if path is None:
            continue
        path = Path(path)
        files.extend(sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path])
    return files


def overlay_series(paths):
    """{"discrete": [...], "continuous": [...]} RocSeries from published ROC files or folders of them."""
    from facebench.plots.roc import RocSeries, read_published_roc

    panels: dict[str, list] = {"discrete": [], "continuous": []}
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        files.extend(sorted(p for p in path.iterdir() if p.suffix == ".txt") if path.is_dir() else [path])
    for file in files:
        roc = read_published_roc(file)
        panel = "discrete" if roc.kind == "disc" else "continuous"
        panels[panel].append(RocSeries(roc.label, roc.fp, roc.tpr, published=True))
    return panels


@click.command("fddb")
@click.argument("detections", type=click.Path(path_type=Path))
@click.option("--folds-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder with FDDB-fold-XX.txt and FDDB-fold-XX-ellipseList.txt (the ten official folds).")
@click.option("--annotations", type=click.Path(dir_okay=False, path_type=Path),
              help="One ellipse list naming the images in order (e.g. S3FD's corrected file); replaces --folds-dir.")
@click.option("--image-sizes", type=click.Path(dir_okay=False, path_type=Path),
              help="Table 'image width height' covering every evaluated image.")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the images (<name>.jpg); only their sizes are read.")
@click.option("--data-root", type=click.Path(file_okay=False), help="Root holding fddb/FDDB-folds and "
              "fddb/image_sizes.tsv (default $FACEBENCH_DATA_ROOT, $FACEBENCH_SHARED_DATA, then ../shared/data "
              "beside the checkout), used when the options above are absent.")
@click.option("--format", "fmt", type=click.Choice(["rect", "ellipse"]), default="rect", show_default=True,
              help="Detections as 'left top width height score' or 'major minor angle cx cy score'.")
@click.option("--convention", type=click.Choice(CONVENTIONS), default="opencv21", show_default=True,
              help="Ellipse raster: the program as released (OpenCV <= 2.1), the '180 - angle' patch on a "
                   "modern OpenCV, or the unmodified program on a modern OpenCV.")
@click.option("--msvc-pi", is_flag=True, help="Use M_PI = 3.14156 as Windows (MSVC) builds of the program do.")
@click.option("--roc-prefix", help="Write <PREFIX>DiscROC.txt and <PREFIX>ContROC.txt in the official format.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the result JSON here (and the per-image records beside it as .records.npz).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write the ROC figure (PNG/PDF).")
@click.option("--overlay", "overlays", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="A published ROC file ('TPR FP [threshold]') or a folder of them, drawn beside; repeatable.")
@click.option("--label", default=None, help="Method name in the plot legend (default: the detections' name).")
@click.option("--no-cache", is_flag=True, help="Do not keep the annotation rasters in $FACEBENCH_CACHE.")
@click.option("--ci", "with_ci", is_flag=True,
              help="Add image-level bootstrap 95% intervals of the TPR figures (1000 resamples, seed 0).")
def fddb_command(detections: Path, folds_dir: Path | None, annotations: Path | None, image_sizes: Path | None,
                 images: Path | None, data_root: str | None, fmt: str, convention: str, msvc_pi: bool,
                 roc_prefix: str | None, out: Path | None, plot: Path | None, overlays: tuple[Path, ...],
                 label: str | None, no_cache: bool, with_ci: bool) -> None:
    """Evaluate DETECTIONS (one FDDB output file, or a folder of fold-XX-out.txt) on FDDB."""
    import math

    from protocols import fddb
    from protocols.fddb.raster import MSVC_PI

    env_sizes = os.environ.get("FACEBENCH_FDDB_SIZES") or None
    check_output_paths(input_files(detections, folds_dir, annotations, image_sizes, env_sizes, *overlays),
                       plot=plot, overlays=overlays, out=[out, records_path(out)] if out is not None else None,
                       roc_prefix=[roc_prefix + n for n in ("DiscROC.txt", "ContROC.txt")] if roc_prefix else None)
    panels = overlay_series(overlays)  # read before the evaluation, so a bad overlay fails fast
    started = time.perf_counter()
    gt = resolve_ground_truth(folds_dir, annotations, data_root)
    if gt.n_faces == 0:  # the official program writes '0 0' lines then: say why every TPR is 0
        warn(f"{gt.source}: the ground truth lists {gt.n_images} images but no face; every TPR is 0")
    sizes = resolve_sizes(gt, image_sizes, images, data_root)
    dets = fddb.read_detections(detections, gt, fmt)
    pi = MSVC_PI if msvc_pi else math.pi
    result = fddb.evaluate(gt, dets, sizes, convention=convention, cache=not no_cache, pi=pi)
    elapsed = time.perf_counter() - started
    folds = f"{len(gt.folds)} folds" if gt.folds else "annotation file"
    click.echo(f"FDDB ({folds}, {gt.n_images} images, {gt.n_faces} faces, {dets.count} detections; "
               f"ellipse convention {convention}{', MSVC pi' if msvc_pi else ''}): {detections}")
    click.echo(result.table())
    click.echo(f"ROC points: {len(result.curve.threshold)}  (TPR at k FP = max TPR over points with FP <= k)")
    extra = {"evaluation_seconds": round(elapsed, 4)}
    if with_ci:
        from facebench.bootstrap import intervals_for_result

        intervals = intervals_for_result(result)
        extra["ci95"] = intervals
        for name in ("disc_tpr_at_1000fp", "cont_tpr_at_1000fp"):
            if intervals.get(name):
                lo, hi = intervals[name]
                click.echo(f"{name}: 95% interval [{100 * lo:.2f}, {100 * hi:.2f}] (image-level bootstrap, "
                           f"1000 resamples of {gt.n_images} images)")
    if roc_prefix:
        disc, cont = result.write_roc(roc_prefix)
        click.echo(f"wrote {disc} and {cont}")
    if out is not None:
        from facebench.results import write_document

        write_document(result.to_document(extra=extra), out)
        result.save_records(records_path(out))
        click.echo(f"wrote {out}")
    if plot is not None:
        from facebench.plots.roc import RocSeries, plot_roc_panels

        name = label or (detections.stem if detections.is_file() else detections.resolve().name)
        c = result.curve
        panels["discrete"].insert(0, RocSeries(name, c.fp, c.disc_tpr))
        panels["continuous"].insert(0, RocSeries(name, c.fp, c.cont_tpr))
        plot_roc_panels(panels, plot, title="FDDB")
        click.echo(f"wrote {plot}")
