"""`facebench train CONFIG`: train a HAMBox detector (one config per row of the paper's Tables 1-4)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="train")
@click.argument("config")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="WIDER FACE root holding wider_face_split/ and WIDER_train/images/.")
@click.option("--gt", type=click.Path(path_type=Path), default=None,
              help="Train ground truth (.mat, .txt or wider_face_split/), instead of the one under --data-root.")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Train image root (event folders), instead of the one under --data-root.")
@click.option("--backbone-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="torchvision-layout ResNet-50 state dict (.pth); required by paper-recipe configs "
                   "(or set FACEBENCH_BACKBONE_WEIGHTS).")
@click.option("--weights-preset", type=click.Choice(["torchvision", "caffe"]), default=None,
              help="Input normalisation of the weights (default: the config's, torchvision).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder (default runs/<config name>): run.json, train_log.jsonl, checkpoints/.")
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --out.")
@click.option("--resume-from", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Continue from this checkpoint file.")
@click.option("--from-scratch", is_flag=True,
              help="Random backbone initialisation, for smoke tests; the run is labelled 'not comparable'.")
@click.option("--max-iters", type=click.IntRange(min=1), default=None,
              help="Stop after this many iterations (the schedule is unchanged; labelled 'not comparable').")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available; torchrun: LOCAL_RANK).")
@click.option("--num-workers", type=click.IntRange(min=0), default=None, help="DataLoader workers per process.")
@click.option("--allow-missing-images", is_flag=True,
              help="Train on the listed images that exist (e.g. the WIDER sample images) instead of failing.")
def train_command(config: str, data_root: Path | None, gt: Path | None, images: Path | None,
                  backbone_weights: Path | None, weights_preset: str | None, out_dir: Path | None, resume: bool,
                  resume_from: Path | None, from_scratch: bool, max_iters: int | None, device: str | None,
                  num_workers: int | None, allow_missing_images: bool) -> None:
    """Train HAMBox with CONFIG (a JSON file or a bundled name such as t4_hambox); torchrun for many GPUs."""
    from detectors.hambox.train import RunOptions, main_echo, train
    from detectors.hambox.train_config import load_train_config

    cfg = load_train_config(config)
    if weights_preset is not None:
        cfg = cfg.replace(weights_preset=weights_preset)
    options = RunOptions(config=cfg, out_dir=out_dir or Path("runs") / cfg.name, data_root=data_root, gt=gt,
                         images=images, backbone_weights=backbone_weights, from_scratch=from_scratch,
                         resume=resume or resume_from is not None, resume_from=resume_from, max_iters=max_iters,
                         device=device, num_workers=num_workers, allow_missing_images=allow_missing_images,
                         echo=main_echo)
    result = train(options)
    if result.checkpoint is not None:
        main_echo(f"[{cfg.name}] finished at iteration {result.iteration}; checkpoint {result.checkpoint}")
