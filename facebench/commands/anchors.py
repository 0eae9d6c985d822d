"""`facebench anchors`: the anchor-ratio analysis of HAMBox's Figure 1, from ground truth alone (CPU)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click

from facebench.errors import InputError, check_output_paths

COLUMNS = ("ratio", "faces", "share_matchable", "mean_matched_per_face", "mean_assigned_per_face",
           "share_assigned", "share_outer_k3", "share_matching_first_level", "mean_best_iou")


def interval_at_least(rows: list[dict], level: float) -> list[float] | None:
    """[lowest, highest] ratio whose share of matchable faces is >= level (None if none)."""
    hits = [r["ratio"] for r in rows if r.get("share_matchable", 0.0) >= level]
    return [min(hits), max(hits)] if hits else None


def check_out_suffix(path: Path | None) -> None:
    """--out must be a .csv or .json file (checked before the computation, not after it)."""
    if path is not None and path.suffix.lower() not in (".csv", ".json"):
        raise InputError(path, None, "--out must end in .csv or .json")


def write_table(rows: list[dict], path: Path, document: dict) -> None:
    """CSV (one row per ratio) or the JSON result document, by suffix."""
    if path.suffix.lower() == ".csv":
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(COLUMNS), extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    elif path.suffix.lower() == ".json":
        from facebench.results import write_document

        write_document(document, path)
    else:
        raise InputError(path, None, "--out must end in .csv or .json")


@click.command(name="anchors")
@click.option("--gt", "gt_path", type=click.Path(path_type=Path), required=True,
              help="WIDER ground truth: wider_face_train.mat, wider_face_train_bbx_gt.txt, or their folder.")
@click.option("--split", default="train", show_default=True, help="Split to read when --gt is a folder.")
@click.option("--frame", type=click.Choice(["crop640", "original"]), default="crop640", show_default=True,
              help="crop640: faces in seeded data-anchor-sampling crops (spec §8); original: faces as annotated.")
@click.option("--ratios", default="0.2:1.2:0.02", show_default=True,
              help="Anchor scale ratios: START:STOP:STEP (inclusive) or a comma list.")
@click.option("--levels", type=click.Choice(["P2-P7", "P2-P6"]), default="P2-P7", show_default=True)
@click.option("--iou", "iou_threshold", type=float, default=0.35, show_default=True,
              help="An anchor matches a face when IoU >= this.")
@click.option("--crop-size", type=int, default=640, show_default=True,
              help="Crop side for --frame crop640 (>= 16).")
@click.option("--samples-per-image", type=int, default=1, show_default=True, help="DAS crops per image (crop640).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the DAS crops (crop640).")
@click.option("--das-scale-sampling", type=click.Choice(["uniform", "log_uniform"]), default="uniform",
              show_default=True)
@click.option("--das-index-rule", type=click.Choice(["spec", "pyramidbox"]), default="spec", show_default=True,
              help="Highest anchor index DAS may draw: argmin + 1 (spec) or PyramidBox's size buckets.")
@click.option("--image-sizes", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="TSV 'name width height'; without it, original frames have an unbounded anchor grid and "
                   "DAS takes each image to be its boxes' extent.")
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None, help="table.csv or result .json")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), default=None, help="Figure (.png/.pdf).")
def anchors_command(gt_path: Path, split: str, frame: str, ratios: str, levels: str, iou_threshold: float,
                    crop_size: int, samples_per_image: int, seed: int, das_scale_sampling: str,
                    das_index_rule: str, image_sizes: Path | None, out_path: Path | None, plot_path: Path | None) -> None:
    """Mean anchors matched per face and share of matchable faces, per anchor ratio (HAMBox Fig. 1)."""
    from detectors.hambox import anchor_analysis as aa
    from detectors.hambox.data import AugmentConfig, read_wider_split, valid_boxes_xyxy
    from facebench.results import make_document, sha256_files

    try:
        ratio_list = aa.parse_ratios(ratios)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ratios") from None
    if not 0.0 < iou_threshold <= 1.0:
        raise click.BadParameter("must lie in (0, 1]", param_hint="--iou")
    if samples_per_image < 1:
        raise click.BadParameter("must be >= 1", param_hint="--samples-per-image")
    if crop_size < 16:
        raise InputError(None, None, f"--crop-size must be >= 16, got {crop_size}")
    check_out_suffix(out_path)
    check_output_paths([gt_path, image_sizes], plot=plot_path, out=out_path)
    records, gt_file = read_wider_split(gt_path, split)
    boxes = [valid_boxes_xyxy(r) for r in records]
    sizes = aa.read_image_sizes(str(image_sizes), [r.name for r in records]) if image_sizes else None
    strides = aa.STRIDES_P2_P7 if levels == "P2-P7" else aa.STRIDES_P2_P6
    if frame == "crop640":
        config = AugmentConfig(crop_size=crop_size, color_distort=False, das_scale_sampling=das_scale_sampling,
                               das_index_rule=das_index_rule)
        faces = aa.faces_in_training_crops(boxes, sizes, config, samples_per_image, seed)
        frame_note = (f"{crop_size}x{crop_size} DAS crops, {samples_per_image} per image, seed {seed}, "
                      f"image size {'from ' + image_sizes.name if sizes else 'taken as the boxes extent'}")
    else:
        faces = aa.faces_in_original_frames(boxes, sizes)
        frame_note = ("annotated boxes; anchor grid " +
                      ("bounded by the image sizes given" if sizes else "unbounded (image sizes unknown)"))
    n_images = sum(1 for b in boxes if len(b))
    click.echo(f"{gt_file}: {n_images} images with faces, {sum(len(b) for b in boxes)} valid boxes; "
               f"frame: {frame_note}; {faces.n_faces} faces analysed", err=True)
    if faces.n_faces == 0:
        raise InputError(gt_file, None, "no face with positive width and height to analyse"
                         + (" in the training crops" if frame == "crop640" else ""))
    rows = aa.sweep_ratios(faces, ratio_list, strides, iou_threshold)
    header = f"{'ratio':>6} {'matchable%':>10} {'matched/face':>12} {'assigned/face':>13} {'M<3 %':>7} {'P2 %':>6}"
    click.echo(header)
    for row in rows:
        if not row.get("faces"):
            continue
        click.echo(f"{row['ratio']:6.3f} {100 * row['share_matchable']:10.2f} {row['mean_matched_per_face']:12.3f} "
                   f"{row['mean_assigned_per_face']:13.3f} {100 * row['share_outer_k3']:7.2f} "
                   f"{100 * row['share_matching_first_level']:6.2f}")
    best = max(rows, key=lambda r: r.get("share_matchable", 0.0))
    metrics = {"max_share_matchable": best.get("share_matchable"), "ratio_at_max_share": best["ratio"],
               "ratio_interval_share_ge_0.95": interval_at_least(rows, 0.95),
               "ratio_interval_share_ge_0.90": interval_at_least(rows, 0.90), "faces": faces.n_faces}
    click.echo(f"max share {100 * best.get('share_matchable', 0):.2f}% at ratio {best['ratio']:.3f}; "
               + (f"share >= 95% for ratios {metrics['ratio_interval_share_ge_0.95']}"
                  if metrics["ratio_interval_share_ge_0.95"] is not None else "no ratio reaches a 95% share"),
               err=True)
    settings = {"frame": frame, "frame_note": frame_note, "ratios": ratio_list, "levels": levels,
                "strides": list(strides), "iou_threshold": iou_threshold, "crop_size": crop_size,
                "samples_per_image": samples_per_image, "seed": seed, "das_scale_sampling": das_scale_sampling,
                "das_index_rule": das_index_rule,
                "image_sizes": str(image_sizes) if image_sizes else None, "ground_truth": str(gt_file),
                "anchor_rule": "side = ratio * 4 * stride, centres ((x+0.5)s, (y+0.5)s), IoU >= threshold; "
                               "assigned = SMS first step (anchor to its highest-IoU face)"}
    document = make_document(benchmark=f"widerface-{split}", protocol="anchor-coverage", protocol_version="1",
                             settings=settings, metrics=metrics, ground_truth_sha256=sha256_files([gt_file]),
                             curves={"coverage": rows})
    if out_path is not None:
        write_table(rows, out_path, document)
        click.echo(f"wrote {out_path}", err=True)
    if plot_path is not None:
        title = f"anchor coverage, WIDER {split} ({frame}, IoU >= {iou_threshold:g})"
        aa.plot_coverage(rows, str(plot_path), title=title)
        click.echo(f"wrote {plot_path}", err=True)
    if out_path is None and plot_path is None:
        click.echo(json.dumps(metrics), err=True)
