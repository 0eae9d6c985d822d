"""Builders for WIDER FACE fixtures: official-structure ground truth and prediction folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from protocols.wider_face.ground_truth import write_ground_truth

MINI_GT = [
    {"name": "A", "boxes": [[10, 10, 20, 20], [12, 12, 20, 20], [100, 100, 10, 10], [200, 200, 30, 30]],
     "easy": [1, 2, 4], "medium": [1, 2, 3, 4], "hard": [1, 2, 3, 4]},
    {"name": "B", "boxes": [[50, 50, 40, 40]], "easy": [], "medium": [1], "hard": [1]},
    {"name": "C", "boxes": [[10, 10, 10, 10]], "easy": [1], "medium": [1], "hard": [1]},
    {"name": "D", "boxes": [[200, 200, 30, 30]], "easy": [1], "medium": [1], "hard": [1]},
]
MINI_PRED = {
    "A": [(12.4, 12.4, 20, 20, 0.9), (10, 10, 20, 20, 0.8), (100.5, 100.5, 9, 9, 0.7), (208.5, 200, 34.5, 30, 0.6),
          (400, 400, 20, 20, 0.3)],
    "B": [(52, 52, 40, 40, 0.95), (300, 300, 10, 10, 0.1)],
    "C": [],
    "D": [(209.1, 200, 34, 30, 0.5), (205, 205, 30, 30, 0.2)],
}


def mini_events(first_event: str = "0--Mini") -> list[tuple[str, list[dict]]]:
    """The spec §6.1 ground truth: 61 events, only the first holds images."""
    return [(first_event, MINI_GT)] + [(f"{i}--Empty", []) for i in range(1, 61)]


def write_mini_gt(root: Path) -> Path:
    """The §6.1 ground truth as the four official .mat files."""
    return write_ground_truth(root, mini_events())


def write_predictions(root: Path, event: str, per_image: dict[str, list], count_override: dict | None = None) -> Path:
    """A prediction folder <root>/<event>/<image>.txt in the official format."""
    folder = root / event
    folder.mkdir(parents=True, exist_ok=True)
    for name, boxes in per_image.items():
        count = (count_override or {}).get(name, len(boxes))
        lines = [name, str(count)] + [" ".join(repr(float(v)) if isinstance(v, float) else str(v) for v in box)
                                      for box in boxes]
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return root


def random_events(rng: np.random.Generator, n_images: int, float_boxes: bool = False,
                  crowded: bool = True) -> tuple[list[tuple[str, list[dict]]], dict[str, list]]:
    """Random GT (with overlapping faces, degenerate boxes, empty keep lists) and jittered predictions."""
    images, preds = [], {}
    for i in range(n_images):
        g = int(rng.integers(0, 12 if crowded else 4))
        xy = rng.integers(0, 300, size=(g, 2))
        wh = rng.integers(1, 60, size=(g, 2))
        if g and rng.random() < 0.3:  # an overlapping neighbour, as in crowded WIDER scenes
            xy[-1] = xy[0] + rng.integers(-3, 4, size=2)
            wh[-1] = wh[0] + rng.integers(-3, 4, size=2)
        if g and rng.random() < 0.1:
            wh[0, 0] = int(rng.integers(-2, 1))  # degenerate GT (val has a few)
        boxes = np.concatenate([xy, wh], axis=1)
        if float_boxes:
            boxes = boxes + np.round(rng.normal(0, 0.3, size=boxes.shape), 4)
        keep_hard = [k + 1 for k in range(g) if rng.random() < 0.8]
        keep_medium = [k for k in keep_hard if rng.random() < 0.7]
        keep_easy = [k for k in keep_medium if rng.random() < 0.6]
        name = f"img_{i}"
        images.append({"name": name, "boxes": boxes.tolist(), "easy": keep_easy, "medium": keep_medium,
                       "hard": keep_hard})
        p = []
        for b in boxes:
            for _ in range(int(rng.integers(0, 3))):
                jitter = np.round(rng.normal(0, 2.5, size=4), 1)
                p.append([*(np.asarray(b, dtype=float) + jitter).round(2), round(float(rng.random()), 3)])
        for _ in range(int(rng.integers(0, 4))):
            p.append([*rng.integers(0, 300, 2).tolist(), *rng.integers(2, 50, 2).tolist(),
                      round(float(rng.random()), 3)])
        if p and rng.random() < 0.3:
            p.append(list(p[0][:4]) + [p[0][4]])  # an exact tie in score
        preds[name] = p
    return images, preds
