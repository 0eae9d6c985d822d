"""`facebench export coco`: ground truth and predictions as COCO JSON, for pycocotools cross-checks."""

from __future__ import annotations

from pathlib import Path

import click

from facebench.errors import InputError, check_output_paths


@click.group("export")
def export_group() -> None:
    """Export ground truth and predictions to other tools' formats."""


@click.command("coco")
@click.argument("benchmark", type=click.Choice(["widerface", "afw", "pascal"]))
@click.option("--predictions", type=click.Path(path_type=Path),
              help="WIDER: prediction folder (<event>/<image>.txt); AFW/PASCAL: detection file.")
@click.option("--gt-dir", type=click.Path(file_okay=False), help="WIDER: folder of the four official .mat files.")
@click.option("--data-root", type=click.Path(file_okay=False), help="Root holding widerface/ground_truth/ (WIDER) or afw|pascal/annotations/ (AFW/PASCAL); "
              "default: $FACEBENCH_DATA_ROOT, $FACEBENCH_SHARED_DATA, then ../shared/data beside the checkout.")
@click.option("--annotations", type=click.Path(), help="AFW/PASCAL: annotation .mat or its folder.")
@click.option("--setting", type=click.Choice(["easy", "medium", "hard", "all"]), default="hard", show_default=True,
              help="WIDER: faces outside this setting are exported as crowd (ignored) regions.")
@click.option("--semantics", type=click.Choice(["official", "python-port"]), default="official", show_default=True,
              help="WIDER: how prediction files are read (official: count line authoritative, sorted).")
@click.option("--images", "images_root", type=click.Path(file_okay=False),
              help="Image folder, to record width/height (read from the image headers).")
@click.option("--out-gt", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the COCO ground truth JSON.")
@click.option("--out-predictions", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the COCO detection results JSON (needs --predictions).")
@click.option("--event", "events", multiple=True, help="WIDER: only images of this event (e.g. 0--Parade); "
              "repeatable.")
@click.option("--ignore-unknown", is_flag=True, help="WIDER: skip prediction folders and files of events or "
              "images that the ground truth does not list (default: an error naming them).")
@click.option("--evaluate", "run_eval", is_flag=True, help="Also run pycocotools COCOeval and print AP.")
@click.option("--iou", "iou", type=click.Choice(["0.5", "coco"]), default="0.5", show_default=True,
              help="COCOeval IoU thresholds: 0.5 only, or COCO's 0.5:0.95 (ten times slower).")
@click.option("--max-dets", type=click.IntRange(min=1), default=1000, show_default=True, help="COCOeval detections per image.")
def coco_command(benchmark: str, predictions: Path | None, gt_dir: str | None, data_root: str | None,
                 annotations: str | None, setting: str, semantics: str, images_root: str | None, out_gt: Path,
                 out_predictions: Path | None, events: tuple[str, ...], ignore_unknown: bool, run_eval: bool,
                 iou: str, max_dets: int) -> None:
    """Write BENCHMARK's ground truth (and predictions) in COCO format."""
    from facebench import coco_export

    if (out_predictions or run_eval) and predictions is None:
        raise InputError(None, None, "--out-predictions and --evaluate need --predictions")
    check_output_paths([predictions, annotations], out_gt=out_gt, out_predictions=out_predictions)
    detections = None
    if benchmark == "widerface":
        from facebench.commands.eval_widerface import resolve_gt_dir
        from protocols import wider_face

        gt = wider_face.load_ground_truth(resolve_gt_dir(gt_dir, data_root, "2017"))
        dataset = coco_export.wider_ground_truth(gt, setting, images_root)
        if predictions is not None:
            read = wider_face.read_predictions(predictions, gt, semantics, ignore_unknown=ignore_unknown)
            detections = coco_export.wider_detections(read)
    else:
        from facebench.commands.eval_face_eval import resolve_annotations
        from protocols.face_eval import load_ground_truth, read_detections

        if annotations is None and data_root is not None:  # as `eval afw|pascal --data-root` reads it
            annotations = str(Path(data_root) / benchmark / "annotations")
        gt = load_ground_truth(benchmark, resolve_annotations(benchmark, annotations, False))
        dataset = coco_export.face_eval_ground_truth(gt, images_root)
        if predictions is not None:
            detections = coco_export.face_eval_detections(read_detections(predictions), gt)
    if events:
        if benchmark != "widerface":
            raise InputError(None, None, "--event applies to widerface only")
        unknown = sorted(set(events) - {im["wider_event"] for im in dataset["images"]})
        if unknown:
            raise InputError(None, None, f"unknown WIDER event(s): {', '.join(unknown)}")
        dataset, detections_subset = coco_export.select_images(dataset, detections or [],
                                                               lambda im: im["wider_event"] in events)
        detections = detections_subset if detections is not None else None
    coco_export.write_json(dataset, out_gt)
    crowd = sum(a["iscrowd"] for a in dataset["annotations"])
    click.echo(f"wrote {out_gt}: {len(dataset['images'])} images, {len(dataset['annotations'])} faces "
               f"({crowd} as iscrowd=1, ignored)")
    if out_predictions is not None and detections is not None:
        coco_export.write_json(detections, out_predictions)
        click.echo(f"wrote {out_predictions}: {len(detections)} detections")
    if run_eval and detections is not None:
        thresholds = [0.5] if iou == "0.5" else None
        stats = coco_export.coco_evaluate(dataset, detections, max_dets=max_dets, iou_thresholds=thresholds)

        def show(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.4f}"

        line = f"pycocotools COCOeval (bbox, maxDets {max_dets}): AP@0.5 {show(stats['ap50'])}"
        if thresholds is None:
            line += f", AP@[.5:.95] {show(stats['ap'])}"
        click.echo(line + f", recall@0.5 {show(stats['recall50'])} (COCO rules: a cross-check, not the "
                          "benchmark's number)")


export_group.add_command(coco_command)
