"""`facebench analyze RESULT.json`: why a WIDER FACE result loses AP (error split, misses, AP per fix)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from facebench.errors import InputError, check_output_folder


def recorded_folder(value: Any, result: Path, field: str, override: Path | None, option: str,
                    beside: str | None = None) -> Path:
    """A folder named in the result's settings: as recorded (absolute or from here), else relative to the result,
    else `beside` next to the result (a `facebench run` folder moved or read from elsewhere)."""
    if override is not None:
        return override
    fallback = [result.parent / beside] if beside else []
    if not value and not any(c.is_dir() for c in fallback):
        raise InputError(result, None, f"settings.{field} is missing; pass {option}")
    recorded = Path(str(value or ""))
    candidates = ([recorded, result.parent / recorded] if value else []) + fallback
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise InputError(result, None, f"settings.{field}: folder {recorded} not found; pass {option}")


def check_same_numbers(analysis_ap: float | None, doc: dict, setting: str, result: Path) -> None:
    """The re-read inputs must reproduce the result's AP (else the folder changed since the evaluation)."""
    recorded = (doc.get("metrics") or {}).get(setting)
    if recorded is None or analysis_ap is None:
        return
    if abs(float(recorded) - analysis_ap) > 1e-9:
        raise InputError(result, None, f"the predictions re-read now give {setting} AP {analysis_ap:.6f}, the result "
                         f"says {float(recorded):.6f}: the folder changed since; re-run `facebench eval widerface`")


@click.command("analyze")
@click.argument("result", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for analysis.json and the charts (default: RESULT's name + .analysis beside it).")
@click.option("--images", "images_dir", type=click.Path(file_okay=False, path_type=Path),
              help="WIDER_val/images folder: also write gallery.html of the worst images with boxes drawn.")
@click.option("--setting", type=click.Choice(["easy", "medium", "hard"]), default="hard", show_default=True,
              help="Setting whose counted faces define TPs, FPs and misses.")
@click.option("--score", type=float, help="Operating point: predictions with at least this raw score.")
@click.option("--precision", type=click.FloatRange(0, 1), help="Operating point: highest recall with this precision.")
@click.option("--recall", type=click.FloatRange(0, 1), help="Operating point: highest threshold reaching this recall.")
@click.option("--gallery", "gallery_size", type=click.IntRange(min=1), default=24, show_default=True,
              help="Images in the gallery.")
@click.option("--pred-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Prediction folder (default: settings.predictions of RESULT).")
@click.option("--gt-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Ground-truth folder (default: settings.ground_truth_dir of RESULT).")
def analyze_command(result: Path, out_dir: Path | None, images_dir: Path | None, setting: str, score: float | None,
                    precision: float | None, recall: float | None, gallery_size: int, pred_dir: Path | None,
                    gt_dir: Path | None) -> None:
    """Split false positives (localisation, duplicate, ignored/invalid, background) at an operating point
    (default: best F1), break misses down by face height and attribute, and give the AP gained per fix."""
    from facebench.error_analysis import analyze, write_analysis, write_gallery
    from facebench.store import load_result
    from protocols import wider_face

    if score is not None and not math.isfinite(score):
        raise InputError(None, None, f"--score must be a finite number, got {score}")
    if out_dir is None:
        stem = result.name[:-5] if result.name.endswith(".json") else result.name
        out_dir = result.with_name(stem + ".analysis")
    check_output_folder(out_dir, "--out")
    if images_dir is not None and not images_dir.is_dir():
        raise InputError(images_dir, None, "--images: image folder not found")
    doc = load_result(result).doc
    protocol = (doc.get("protocol") or {}).get("name")
    if protocol != "wider_face":
        raise InputError(result, None, f"error analysis supports WIDER FACE results only (this one is {protocol!r})")
    settings = doc.get("settings") or {}
    gt_path = recorded_folder(settings.get("ground_truth_dir"), result, "ground_truth_dir", gt_dir, "--gt-dir")
    # the recorded path can be stale; a `facebench run` folder keeps predictions/ beside its result.json (the AP
    # check below refuses a folder that does not reproduce the result)
    pred_path = recorded_folder(settings.get("predictions"), result, "predictions", pred_dir, "--pred-dir",
                                "predictions")
    gt = wider_face.load_ground_truth(gt_path, version=settings.get("ground_truth_version"))
    if gt.sha256 != doc.get("ground_truth_sha256"):
        raise InputError(gt_path, None, f"not the ground truth {result.name} was scored on (sha256 differs); "
                         "pass --gt-dir")
    predictions = wider_face.read_predictions(pred_path, gt, semantics=settings.get("semantics", "official"),
                                              ignore_unknown=True, quiet=True)
    analysis = analyze(gt, predictions, setting, score=score, precision=precision, recall=recall,
                       source={"result": str(result), "predictions": str(pred_path), "ground_truth": str(gt_path),
                               "semantics": predictions.semantics})
    check_same_numbers(analysis.ap, doc, setting, result)
    click.echo(analysis.table())
    for path in write_analysis(analysis, out_dir):
        click.echo(f"wrote {path}")
    if images_dir is not None:
        click.echo(f"wrote {write_gallery(analysis, gt, predictions, images_dir, out_dir, gallery_size)}")
