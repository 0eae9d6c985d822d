"""`facebench eval afw` and `facebench eval pascal`: the face-eval toolbox protocol (protocols.md §3)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import click

from facebench.errors import InputError, check_output_paths
from facebench.results import records_path

DATASET_TITLES = {"afw": "AFW", "pascal": "PASCAL Face"}
DETECTION_SUFFIXES = (".txt", ".mat", ".ramananmat", ".shenmat", ".csv")
# Legend names of the toolbox's baseline files (file stem -> label), as in the papers' Figure 5.
BASELINE_LABELS = {
    "Headhunter": "HeadHunter", "Ours_Headhunter": "HeadHunter", "Baseline": "SquaresChnFtrs-5",
    "Ours_Baseline": "SquaresChnFtrs-5", "DPM": "DPM", "Structured_models": "Structured Models",
    "TSM": "TSM", "Shen_et_al.": "Shen et al.", "Face++": "Face++", "Face.com": "Face.com", "Picasa": "Picasa",
    "OpenCV": "OpenCV", "Sky_Biometry": "Sky Biometry", "WS_Boosting": "W.S. Boosting",
    "SFD_AFW_PR": "S3FD", "SFD_PASCAL_PR": "S3FD", "SFD": "S3FD",
}


MAX_ITERATIONS = 1000  # the correction converges in a few rounds; more only burns time
MAX_MIN_SIZE = 10 ** 9  # pixels; keeps int(sqrt(0.5 * w * h)) within float range


def _option_error(param: click.Parameter, message: str) -> InputError:
    """A bad option value as the one-line error the CLI prints (click's own errors add usage lines)."""
    return InputError(None, None, f"{param.opts[0]}: {message}")


def _check_iterations(ctx: click.Context, param: click.Parameter, value: int) -> int:
    """--iterations: an integer from 1 to MAX_ITERATIONS."""
    if value < 1:
        raise _option_error(param, "must be >= 1 (1 = no box correction; the toolbox computes no PR with 0)")
    if value > MAX_ITERATIONS:
        raise _option_error(param, f"must be at most {MAX_ITERATIONS} (the box correction converges in a few)")
    return value


def _check_min_size(ctx: click.Context, param: click.Parameter, value: int) -> int:
    """--min-width / --min-height: a whole number of pixels from 0 to MAX_MIN_SIZE."""
    if not 0 <= value <= MAX_MIN_SIZE:
        raise _option_error(param, f"must be a number of pixels from 0 to {MAX_MIN_SIZE}, got {value}")
    return value


def _check_overlap(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """--overlap: a finite IoU threshold strictly between 0 and 1."""
    if not math.isfinite(value) or not 0.0 < value < 1.0:
        raise _option_error(param, f"must be a number strictly between 0 and 1, got {value}")
    return value


def shared_annotation_dirs(dataset: str) -> list[Path]:
    """Where annotations are looked for without --annotations or --data-root (see `default_data_roots`)."""
    from facebench.datasets import default_data_roots

    return [root / dataset / "annotations" for root in default_data_roots()]


def resolve_annotations(dataset: str, annotations: str | None, old: bool) -> Path:
    """The annotation file: --annotations as a file, or the default file inside --annotations or a known folder."""
    from protocols.face_eval import default_annotation_file

    name = default_annotation_file(dataset, old)
    if annotations is not None:
        path = Path(annotations)
        if path.is_dir():
            path = path / name
        if not path.is_file():
            raise InputError(path, None, "annotation file not found")
        return path
    for folder in shared_annotation_dirs(dataset):
        if (folder / name).is_file():
            return folder / name
    searched = ", ".join(str(f) for f in shared_annotation_dirs(dataset))
    raise InputError(None, None, f"no {name} found (looked in {searched}); pass --annotations FILE_OR_FOLDER")


def baseline_label(path: str | os.PathLike) -> str:
    """Legend label of a detection file: the toolbox's names for its baselines, else the file (or folder) name."""
    path = Path(path)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    if stem in BASELINE_LABELS:
        return BASELINE_LABELS[stem]
    if stem.lower() in ("ours", "detections", "dets", "results") and path.parent.name:
        return path.parent.name.replace("_", " ")
    return stem.replace("_", " ")


def overlay_files(items: tuple[str, ...], exclude: str | os.PathLike | None = None) -> list[Path]:
    """--overlay arguments expanded: files as given, folders to their detection/result files (sorted), once each."""
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in
                           DETECTION_SUFFIXES + (".json",))
            if not found:
                raise InputError(path, None, "no detection or result files in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(path, None, "overlay file not found")
    # The evaluated file itself (e.g. inside an overlaid folder) and repeats are drawn once.
    seen = {Path(exclude).resolve()} if exclude is not None else set()
    unique = []
    for path in files:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append(path)
    return unique


def overlay_curves(files: list[Path], gt, iterations: int, benchmark: str, strict_ids: bool = False):
    """PR curves to draw beside the main one: detection files evaluated here, result JSONs read as saved."""
    import numpy as np

    from facebench.plots.pr import PRCurve
    from facebench.store import load_result
    from protocols.face_eval import baseline_overlap, evaluate, is_point_baseline, read_detections

    curves = []
    for path in files:
        if path.suffix.lower() == ".json":
            doc = load_result(path).doc
            if doc.get("benchmark") != benchmark:
                raise InputError(path, None, f"result is for benchmark {doc.get('benchmark')!r}, not {benchmark!r}")
            pr = (doc.get("curves") or {}).get("pr") or {}
            if "recall" not in pr or "precision" not in pr:
                raise InputError(path, None, "result has no curves.pr to overlay")
            ap = doc["metrics"].get("ap")
            curves.append(PRCurve(label=baseline_label(doc.get("settings", {}).get("detections", path.stem)),
                                  recall=np.asarray(pr["recall"], dtype=float),
                                  precision=np.asarray(pr["precision"], dtype=float),
                                  ap=None if ap is None else ap * 100.0, published=True))
            continue
        result = evaluate(gt, read_detections(path), iterations=iterations, overlap_threshold=baseline_overlap(path),
                          strict_ids=strict_ids)
        if is_point_baseline(path):
            curves.append(PRCurve(label=baseline_label(path), recall=result.recall[-1:],
                                  precision=result.precision[-1:], ap=None, published=True))
        else:
            curves.append(PRCurve(label=baseline_label(path), recall=result.recall, precision=result.precision,
                                  ap=result.ap * 100.0, published=True))
    return curves



def interval_line(title: str, interval: tuple[float, float] | None, resamples: int, n_images: int) -> str:
    """The printed line of `--ci`: AP's 95% bootstrap interval in percent."""
    shown = "n/a (no counted faces)" if interval is None else f"[{100 * interval[0]:.2f}, {100 * interval[1]:.2f}]"
    return f"{title}: AP 95% interval {shown} (image-level bootstrap, {resamples} resamples of {n_images} images)"


def run_face_eval(dataset: str, detections: str, annotations: str | None, old_annotations: bool, iterations: int,
                  min_width: int, min_height: int, overlap: float, out: str | None, plot: str | None,
                  overlays: tuple[str, ...], label: str | None, with_ci: bool = False,
                  strict_ids: bool = False) -> None:
    """Shared body of the afw and pascal commands."""
    from facebench.results import write_document
    from protocols.face_eval import evaluate, load_ground_truth, read_detections

    ann_path = resolve_annotations(dataset, annotations, old_annotations)
    check_output_paths([detections, ann_path, *overlays], plot=plot, overlays=overlays,
                       out=[out, records_path(out)] if out else None)
    overlay_list = overlay_files(overlays, exclude=detections)  # check them before the main evaluation
    gt = load_ground_truth(dataset, ann_path, min_width=min_width, min_height=min_height)
    if old_annotations and gt.style != "original":
        raise InputError(ann_path, None, "--old-annotations given, but this file holds the Mathias et al. 2014 "
                                         "re-annotation (ignore flags); pass the original file or its folder")
    # Overlays are scored first: a bad one must not leave the outputs half written.
    published = overlay_curves(overlay_list, gt, iterations, dataset, strict_ids) if plot else []
    result = evaluate(gt, read_detections(detections), iterations=iterations, overlap_threshold=overlap,
                      strict_ids=strict_ids)
    title = DATASET_TITLES[dataset]
    click.echo(f"{title}: AP {result.ap * 100:.2f} ({result.ap:.15g}) | {result.n_detections} detections "
               f"({result.n_detections_filtered} below {result.min_pixels} px dropped), "
               f"{int(result.tp.sum())} TP / {result.n_positives} faces, {result.iterations} iteration(s), "
               f"{gt.style} annotations")
    intervals = None
    if with_ci:
        from facebench.bootstrap import DEFAULT_RESAMPLES, intervals_for_result

        intervals = intervals_for_result(result)
        click.echo(interval_line(title, intervals.get("ap"), DEFAULT_RESAMPLES, len(result.image_keys)))
    if out:
        doc = result.to_document()
        if intervals is not None:
            doc["ci95"] = intervals
        write_document(doc, out)
        result.save_records(records_path(out))
        click.echo(f"wrote {out} and {records_path(out)}")
    if plot:
        from facebench.plots.pr import PRCurve, plot_pr_panels

        curves = [PRCurve(label=label or baseline_label(detections), recall=result.recall,
                          precision=result.precision, ap=result.ap * 100.0)]
        curves += published
        Path(plot).parent.mkdir(parents=True, exist_ok=True)  # like --out: a new folder is made
        plot_pr_panels({title: curves}, plot, ap_format="{:.2f}")
        click.echo(f"wrote {plot}")


def _face_eval_command(dataset: str) -> click.Command:
    title = DATASET_TITLES[dataset]

    @click.command(name=dataset, short_help=f"{title} AP, face-eval protocol (IoU > 0.5, box correction).", help=f"{title} AP with the face-eval protocol (Mathias et al. 2014): new "
                                      f"annotations with ignore flags, IoU > 0.5, iterative box-style correction.")
    @click.argument("detections", type=click.Path(dir_okay=False))
    @click.option("--annotations", type=click.Path(), default=None,
                  help=f"Annotation .mat, or a folder holding it (default: {dataset}/annotations/ under "
                       "--data-root, $FACEBENCH_DATA_ROOT, $FACEBENCH_SHARED_DATA or ../shared/data).")
    @click.option("--data-root", type=click.Path(file_okay=False), default=None,
                  help=f"Root holding {dataset}/annotations/ (the layout `facebench run` reads).")
    @click.option("--old-annotations", is_flag=True, help="Use the original annotations (no ignore flags).")
    @click.option("--iterations", type=int, default=5, show_default=True, callback=_check_iterations,
                  help=f"Box-correction iterations, 1 to {MAX_ITERATIONS}; the PR comes from the last one "
                       "(1 = no correction).")
    @click.option("--min-width", type=int, default=30, show_default=True, callback=_check_min_size,
                  help="GT faces narrower than this (pixels, >= 0) are ignored. With --min-height it also sets "
                       "the detection size filter: a detection is kept if its width or height exceeds "
                       "int(sqrt(0.5 * min-width * min-height)) (21 px for the defaults).")
    @click.option("--min-height", type=int, default=30, show_default=True, callback=_check_min_size,
                  help="GT faces shorter than this (pixels, >= 0) are ignored; also sets the detection size "
                       "filter (see --min-width).")
    @click.option("--overlap", type=float, default=0.5, show_default=True, callback=_check_overlap,
                  help="IoU threshold (strict >), between 0 and 1.")
    @click.option("--strict-ids", is_flag=True,
                  help="Stop at a detection whose image id is not in the annotations (default: count it as a "
                       "false positive, as the toolbox does, with a warning).")
    @click.option("--out", type=click.Path(dir_okay=False), default=None,
                  help="Write the result JSON here (and X.records.npz beside it).")
    @click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write a PR plot (PNG/PDF).")
    @click.option("--overlay", "overlays", multiple=True, type=click.Path(),
                  help="Baseline detection file, folder of them, or result JSON to draw on the plot (repeatable).")
    @click.option("--label", default=None, help="Legend label of DETECTIONS (default: from the file name).")
    @click.option("--ci", "with_ci", is_flag=True,
                  help="Add AP's 95% image-level bootstrap interval (1000 resamples): printed, and as ci95 "
                       "in the JSON.")
    def command(detections: str, annotations: str | None, data_root: str | None, old_annotations: bool, iterations: int, min_width: int,
                min_height: int, overlap: float, out: str | None, plot: str | None, overlays: tuple[str, ...],
                label: str | None, with_ci: bool, strict_ids: bool) -> None:
        if annotations is None and data_root is not None:
            annotations = str(Path(data_root) / dataset / "annotations")
        run_face_eval(dataset, detections, annotations, old_annotations, iterations, min_width, min_height,
                      overlap, out, plot, overlays, label, with_ci, strict_ids)

    return command


afw_command = _face_eval_command("afw")
pascal_command = _face_eval_command("pascal")
