"""WIDER FACE error analysis: false positives by cause, misses by face height and attribute, AP per fix.

In the spirit of TIDE (Bolya et al. 2020) and Hoiem et al. (2012), adapted to the WIDER protocol. Which face
each prediction hits, and from which threshold it counts, is the protocol's own matching (evaluate.match);
curves and AP are its curves functions. This module labels the outcomes (checked against the protocol's own
curve, score_setting) and re-scores modified labels.

False positives (proposals that are not true positives) are split, per prediction, into
- duplicate: hits (protocol overlap >= 0.5) a counted face already recalled by an earlier prediction;
- localisation: no hit, best float IoU >= 0.1 with a counted face (and at least its best IoU with other faces);
- ignored: no hit, best float IoU >= 0.1 with a face that does not count in the setting (ignored or invalid);
- background: best float IoU < 0.1 with every face of the image.
Misses are counted faces not recalled at the operating point. The AP gained by fixing one error type is
measured on the whole curve (all thresholds), TIDE's way: duplicates, ignored and background errors are
removed; a localisation error becomes a perfect detection of its face (one that would only duplicate an
earlier detection is removed instead, so a fix never creates another error); missed faces (never recalled)
leave the face count.
"""

from __future__ import annotations

import dataclasses
import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facebench.errors import InputError, warn
from protocols.wider_face import curves
from protocols.wider_face.evaluate import HEIGHT_BINS, Matching, match, score_setting
from protocols.wider_face.ground_truth import ATTRIBUTE_VALUES, WiderGroundTruth
from protocols.wider_face.matching import float_overlap
from protocols.wider_face.predictions import WiderPredictions

SCHEMA = "facebench.error_analysis/1"
FP_TYPES = ("localisation", "duplicate", "ignored", "background")
ERROR_TYPES = FP_TYPES + ("missed",)
BACKGROUND_IOU = 0.1
MISS_ATTRIBUTES = ("blur", "occlusion", "pose", "illumination", "expression")
PAIRS_PER_BLOCK = 4_000_000

# Per-prediction outcome codes.
NOT_COUNTED = -1  # never enters the curve (image without GT, or a score below every threshold)
TRUE_POSITIVE = 0
LOCALISATION, DUPLICATE, IGNORED, BACKGROUND = 1, 2, 3, 4
REMOVED = 5  # hits a face that does not count: neither TP nor FP under the protocol
FP_CODES = {"localisation": LOCALISATION, "duplicate": DUPLICATE, "ignored": IGNORED, "background": BACKGROUND}

COLOURS = {"tp": (0, 200, 0), "localisation": (255, 150, 0), "duplicate": (230, 0, 230), "ignored": (150, 150, 150),
           "background": (255, 0, 0), "missed": (0, 120, 255), "ignored_face": (200, 200, 200)}


# ------------------------------------------------------------------------------------------ per prediction


def first_hit_flags(choice: np.ndarray, keep: np.ndarray, evaluated: np.ndarray) -> np.ndarray:
    """True positives under the protocol's rule: the first evaluated prediction to hit each counted face."""
    hit = choice >= 0
    counts = np.zeros(len(choice), dtype=bool)
    counts[hit] = keep[choice[hit]]
    candidates = np.flatnonzero(counts & evaluated)
    tp = np.zeros(len(choice), dtype=bool)
    _, first = np.unique(choice[candidates], return_index=True)
    tp[candidates[first]] = True
    return tp


def best_overlaps(gt: WiderGroundTruth, boxes: np.ndarray, image: np.ndarray, keep: np.ndarray,
                  which: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For predictions `which`: best float IoU (and first face reaching it) among counted faces, and among the
    other faces of the image; 0 and -1 where no face overlaps."""
    n = len(which)
    best = {True: np.zeros(n), False: np.zeros(n)}
    face = {True: np.full(n, -1, dtype=np.int64), False: np.full(n, -1, dtype=np.int64)}
    counts = np.diff(gt.face_offsets)[image[which]]
    ends = np.cumsum(counts)
    gx1 = gt.boxes[:, 0].astype(np.float64)
    gx2 = gx1 + gt.boxes[:, 2]
    px1 = boxes[which, 0]
    px2 = px1 + boxes[which, 2]
    start = 0
    while start < n:
        # Blocks of predictions holding at most PAIRS_PER_BLOCK (prediction, face) pairs.
        limit = (ends[start - 1] if start else 0) + PAIRS_PER_BLOCK
        stop = max(start + 1, int(np.searchsorted(ends, limit, side="right")))
        c = counts[start:stop]
        pair_row = np.repeat(np.arange(start, stop), c)
        first = np.cumsum(c) - c
        face_start = gt.face_offsets[image[which[start:stop]]]
        pair_face = np.arange(int(c.sum())) - np.repeat(first, c) + np.repeat(face_start, c)
        # Only pairs overlapping in x can have a positive IoU (the +1 convention widens by one pixel).
        near = (gx1[pair_face] <= px2[pair_row] + 1) & (px1[pair_row] <= gx2[pair_face] + 1)
        pair_row, pair_face = pair_row[near], pair_face[near]
        start = stop
        if pair_row.size == 0:
            continue
        iou = float_overlap(gt.boxes[pair_face], boxes[which[pair_row], :4])
        iou = np.clip(np.nan_to_num(iou, nan=0.0, posinf=0.0, neginf=0.0), 0.0, 1.0)
        # Pairs are grouped by prediction: per-segment maxima, then the first face reaching the maximum.
        seg = np.flatnonzero(np.concatenate(([True], pair_row[1:] != pair_row[:-1])))
        rows = pair_row[seg]
        sizes = np.diff(np.append(seg, pair_row.size))
        for kept_side in (True, False):
            value = np.where(keep[pair_face] == kept_side, iou, 0.0)
            top = np.maximum.reduceat(value, seg)
            at_top = (value == np.repeat(top, sizes)) & (value > 0)
            lead = np.minimum.reduceat(np.where(at_top, pair_face, np.iinfo(np.int64).max), seg)
            good = top > 0
            best[kept_side][rows[good]] = top[good]
            face[kept_side][rows[good]] = lead[good]
    return best[True], face[True], best[False], face[False]


@dataclass(frozen=True, eq=False)
class Outcomes:
    """Each prediction's outcome in one setting, and the face it concerns."""

    code: np.ndarray  # [n_boxes] int8 outcome code
    face: np.ndarray  # [n_boxes] hit face (TP, duplicate, removed) or best-IoU face (localisation, ignored)
    iou: np.ndarray  # [n_boxes] best float IoU with any face (FP kinds; 0 elsewhere)


def classify_predictions(gt: WiderGroundTruth, predictions: WiderPredictions, m: Matching,
                         keep: np.ndarray) -> Outcomes:
    """Label every prediction TP / localisation / duplicate / ignored / background / removed / not counted."""
    n = len(m.choice)
    code = np.full(n, NOT_COUNTED, dtype=np.int8)
    face = np.where(m.choice >= 0, m.choice, -1).astype(np.int64)
    iou = np.zeros(n)
    evaluated = np.diff(gt.face_offsets)[m.image] > 0
    active = evaluated & (m.counted < curves.THRESH_NUM)
    hit = m.choice >= 0
    kept_hit = np.zeros(n, dtype=bool)
    kept_hit[hit] = keep[m.choice[hit]]
    tp = first_hit_flags(m.choice, keep, evaluated)
    code[active & tp] = TRUE_POSITIVE
    code[active & kept_hit & ~tp] = DUPLICATE
    code[active & hit & ~kept_hit] = REMOVED
    misses = np.flatnonzero(active & ~hit)
    bk, fk, bo, fo = best_overlaps(gt, predictions.boxes, m.image, keep, misses)
    best = np.maximum(bk, bo)
    background = best < BACKGROUND_IOU
    localisation = ~background & (bk >= bo)
    code[misses[background]] = BACKGROUND
    code[misses[localisation]] = LOCALISATION
    code[misses[~background & ~localisation]] = IGNORED
    face[misses] = np.where(localisation, fk, np.where(background, -1, fo))
    iou[misses] = best
    return Outcomes(code=code, face=face, iou=iou)


def recalled_at(m: Matching, outcomes: Outcomes, n_faces: int) -> np.ndarray:
    """[n_faces] first threshold index at which each face is recalled (THRESH_NUM: never)."""
    at = np.full(n_faces, curves.THRESH_NUM, dtype=np.int64)
    tp = np.flatnonzero(outcomes.code == TRUE_POSITIVE)
    np.minimum.at(at, outcomes.face[tp], m.counted[tp])
    return at


# -------------------------------------------------------------------------------------------------- fixes


def curve_counts(counted: np.ndarray, proposal: np.ndarray, tp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dataset proposals and TP per threshold from per-prediction flags (the protocol's dataset_counts)."""
    return curves.dataset_counts(counted, proposal), curves.dataset_counts(counted, tp)


def flags_ap(counted: np.ndarray, proposal: np.ndarray, tp: np.ndarray, n_faces: int) -> float | None:
    """AP of a curve given per-prediction proposal / TP flags (the protocol's pr_curve and voc_ap)."""
    if n_faces <= 0:
        return None
    proposals, tps = curve_counts(counted, proposal, tp)
    precision, recall = curves.pr_curve(proposals, tps, n_faces)
    return curves.voc_ap(recall, precision)


def fixed_flags(outcomes: Outcomes, kinds: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per-prediction (proposal, TP) flags with the given FP kinds fixed (see the module docstring)."""
    code = outcomes.code
    proposal = np.isin(code, (TRUE_POSITIVE, LOCALISATION, DUPLICATE, IGNORED, BACKGROUND))
    tp = code == TRUE_POSITIVE
    if "localisation" in kinds:
        # Fixed boxes join the hits; per face the first in evaluation order (index order) is the TP, and the
        # hits a fix pushes behind another (TPs or fixed boxes, not original duplicates) are removed.
        claim = np.flatnonzero(np.isin(code, (TRUE_POSITIVE, DUPLICATE, LOCALISATION)))
        _, first = np.unique(outcomes.face[claim], return_index=True)
        tp = np.zeros(len(code), dtype=bool)
        tp[claim[first]] = True
        pushed = ~tp & ((code == TRUE_POSITIVE) | (code == LOCALISATION))
        proposal &= ~pushed
    for kind in kinds:
        if kind != "localisation":
            proposal &= code != FP_CODES[kind]
    return proposal, tp


def ap_gains(counted: np.ndarray, outcomes: Outcomes, n_faces: int) -> dict[str, dict[str, float | None]]:
    """AP after fixing each error type alone, all FP types, and everything, with the gain over the base AP."""
    base_proposal, base_tp = fixed_flags(outcomes, ())
    base = flags_ap(counted, base_proposal, base_tp, n_faces)
    fixed: dict[str, float | None] = {}
    for kind in FP_TYPES:
        fixed[kind] = flags_ap(counted, *fixed_flags(outcomes, (kind,)), n_faces)
    # Fixing misses: faces never recalled leave the face count.
    fixed["missed"] = flags_ap(counted, base_proposal, base_tp, int(base_tp.sum()))
    proposal, tp = fixed_flags(outcomes, FP_TYPES)
    fixed["false_positives"] = flags_ap(counted, proposal, tp, n_faces)
    fixed["all"] = flags_ap(counted, proposal, tp, int(tp.sum()))
    gains = {k: (None if v is None or base is None else v - base) for k, v in fixed.items()}
    return {"base": {"ap": base}, "fixed": fixed, "gain": gains}


# ------------------------------------------------------------------------------------------ operating point


@dataclass(frozen=True)
class OperatingPoint:
    """One of the protocol's 1000 thresholds, and the curve there."""

    threshold_index: int  # 0-based: predictions counted at or before it are in
    threshold: float  # normalised-score threshold 1 - (index + 1) / 1000
    how: str
    precision: float | None
    recall: float
    true_positives: int
    proposals: int
    min_score: float | None  # lowest raw score among the predictions in


def choose_threshold(curve, scores: np.ndarray, semantics: str, *, score: float | None = None,
                     precision: float | None = None, recall: float | None = None) -> tuple[int, str]:
    """Threshold index for a raw score, a precision target (highest recall reaching it), a recall target
    (highest threshold reaching it), or by default the best F1."""
    given = [x is not None for x in (score, precision, recall)]
    if sum(given) > 1:
        raise InputError(None, None, "choose one operating point: --score, --precision or --recall")
    if score is not None:
        if scores.size == 0 or score > scores.max():
            raise InputError(None, None, f"no prediction has a score >= {score:g}")
        if score <= scores.min():
            return curves.THRESH_NUM - 1, f"score >= {score:g}, on the protocol's threshold grid"
        # Appending a score inside the range leaves the normalisation bounds unchanged.
        norm = curves.normalise_scores(np.append(scores, score), semantics)[-1:]
        index = int(min(curves.entry_threshold(norm)[0], curves.THRESH_NUM - 1))
        return index, f"score >= {score:g}, on the protocol's threshold grid"
    if precision is not None:
        ok = np.flatnonzero(np.nan_to_num(curve.precision, nan=-1.0) >= precision)
        if ok.size == 0:
            raise InputError(None, None, f"precision {precision:g} is never reached "
                             f"(best {np.nanmax(curve.precision) if np.isfinite(curve.precision).any() else 0:.4f})")
        return int(ok[-1]), f"precision >= {precision:g}"
    if recall is not None:
        ok = np.flatnonzero(curve.recall >= recall)
        if ok.size == 0:
            raise InputError(None, None, f"recall {recall:g} is never reached (best {curve.recall.max():.4f})")
        return int(ok[0]), f"recall >= {recall:g}"
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * curve.precision * curve.recall / (curve.precision + curve.recall)
    f1 = np.nan_to_num(f1, nan=-1.0)
    return int(np.argmax(f1)), "best F1"


# ---------------------------------------------------------------------------------------------- the analysis


@dataclass(frozen=True, eq=False)
class ErrorAnalysis:
    """Error split, misses and AP gains of one WIDER result in one setting, plus what the gallery draws."""

    setting: str
    ap: float | None
    point: OperatingPoint
    false_positives: dict[str, int]  # at the operating point
    false_positives_all: dict[str, int]  # over every threshold
    ignored_invalid: int  # of the 'ignored' FPs at the point, those nearest an invalid-flagged face
    removed: int  # protocol-ignored hits at the point (not FPs)
    misses: dict[str, Any]
    gains: dict[str, dict[str, float | None]]
    worst_images: list[dict[str, Any]]
    source: dict[str, Any]
    # Arrays for drawing
    outcomes: Outcomes = dataclasses.field(repr=False)
    inside: np.ndarray = dataclasses.field(repr=False)  # [n_boxes] prediction counted at the point
    missed_faces: np.ndarray = dataclasses.field(repr=False)  # [n_faces] counted face missed at the point
    keep: np.ndarray = dataclasses.field(repr=False)

    def to_document(self) -> dict[str, Any]:
        """The analysis JSON (plain Python values)."""
        return {
            "schema": SCHEMA, "protocol": "wider_face", "setting": self.setting, "ap": self.ap,
            "source": self.source, "operating_point": dataclasses.asdict(self.point),
            "false_positives": {"total": sum(self.false_positives.values()), **self.false_positives,
                                "ignored_of_which_invalid": self.ignored_invalid},
            "false_positives_all_thresholds": {"total": sum(self.false_positives_all.values()),
                                               **self.false_positives_all},
            "protocol_ignored_hits": self.removed,
            "misses": self.misses, "ap_if_fixed": self.gains, "worst_images": self.worst_images,
            "definitions": {"localisation_iou": [BACKGROUND_IOU, 0.5], "background_iou_below": BACKGROUND_IOU,
                            "ap_gain": "whole curve, one error type fixed at a time (TIDE)"},
        }

    def table(self) -> str:
        """Plain-text summary."""
        p = self.point
        total = sum(self.false_positives.values())
        prec = "n/a" if p.precision is None else f"{100 * p.precision:.2f}"
        lines = [f"WIDER FACE {self.setting}: AP {100 * (self.ap or 0):.2f}; operating point ({p.how}): threshold "
                 f"{p.threshold:.3f}" + (f", raw score >= {p.min_score:.4g}" if p.min_score is not None else "")
                 + f", precision {prec}, recall {100 * p.recall:.2f}, {p.true_positives} TP, {total} FP",
                 "", f"{'error':<14} {'count':>7} {'share':>7} {'AP if fixed':>12} {'gain':>7}"]
        for kind in ERROR_TYPES:
            count = self.misses["total"] if kind == "missed" else self.false_positives[kind]
            share = "" if kind == "missed" else f"{100 * count / total:.1f}%" if total else "-"
            lines.append(f"{kind:<14} {count:>7} {share:>7} {_pct(self.gains['fixed'][kind]):>12} "
                         f"{_pct(self.gains['gain'][kind], True):>7}")
        for kind in ("false_positives", "all"):
            lines.append(f"{kind.replace('_', ' '):<14} {'':>7} {'':>7} {_pct(self.gains['fixed'][kind]):>12} "
                         f"{_pct(self.gains['gain'][kind], True):>7}")
        lines.append(f"(ignored FPs nearest an invalid face: {self.ignored_invalid}; protocol-ignored hits, not FPs: "
                     f"{self.removed})")
        lines.append("")
        lines.append(f"misses at the operating point: {self.misses['total']} of {self.misses['faces']} faces")
        lines.append(f"{'face height':<16} {'faces':>7} {'missed':>7} {'rate':>7}")
        for label, row in self.misses["by_height"].items():
            lines.append(f"{label:<16} {row['faces']:>7} {row['missed']:>7} {_rate(row):>7}")
        lines.append(f"{'attribute':<24} {'faces':>7} {'missed':>7} {'rate':>7}")
        for attr, values in self.misses["by_attribute"].items():
            for label, row in values.items():
                lines.append(f"{attr + '=' + label:<24} {row['faces']:>7} {row['missed']:>7} {_rate(row):>7}")
        return "\n".join(lines)

    def plot(self, out_dir: str | os.PathLike) -> list[Path]:
        """Bar charts: FP split, AP gain per fix, miss rate by height and by attribute (PNG)."""
        from facebench.plots.pr import _pyplot

        plt = _pyplot()
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []

        fig, ax = plt.subplots(figsize=(6, 4))
        counts = [self.false_positives[k] for k in FP_TYPES]
        ax.bar(FP_TYPES, counts, color=[np.array(COLOURS[k]) / 255 for k in FP_TYPES])
        ax.set_ylabel("false positives")
        ax.set_title(f"{self.setting}: false positives at {self.point.how} (threshold {self.point.threshold:.3f})")
        for x, c in enumerate(counts):
            ax.text(x, c, str(c), ha="center", va="bottom", fontsize=9)
        written.append(_save(fig, out_dir / "false_positives.png", plt))

        fig, ax = plt.subplots(figsize=(7, 4))
        kinds = list(ERROR_TYPES) + ["false_positives", "all"]
        gains = [100 * (self.gains["gain"][k] or 0.0) for k in kinds]
        colours = [np.array(COLOURS.get(k, (90, 90, 90))) / 255 for k in kinds]
        ax.bar([k.replace("_", " ") for k in kinds], gains, color=colours)
        ax.set_ylabel("AP gained if fixed (points)")
        ax.set_title(f"{self.setting}: AP {100 * (self.ap or 0):.2f}, gain per fixed error type")
        ax.tick_params(axis="x", rotation=30)
        for x, g in enumerate(gains):
            ax.text(x, g, f"{g:.2f}", ha="center", va="bottom", fontsize=8)
        written.append(_save(fig, out_dir / "ap_gain.png", plt))

        groups = [("face height", self.misses["by_height"])] + \
                 [(attr, values) for attr, values in self.misses["by_attribute"].items()]
        fig, axes = plt.subplots(1, len(groups), figsize=(2.6 * len(groups) + 1.5, 3.8), squeeze=False,
                                 sharey=True)
        for ax, (title, rows) in zip(axes[0], groups):
            labels = [k[len("height"):].lstrip("=") if k.startswith("height") else k for k in rows]
            rates = [100 * r["missed"] / r["faces"] if r["faces"] else 0.0 for r in rows.values()]
            ax.bar(labels, rates, color=np.array(COLOURS["missed"]) / 255)
            ax.set_title(title)
            ax.tick_params(axis="x", rotation=45)
        axes[0][0].set_ylabel("missed (% of faces)")
        fig.suptitle(f"{self.setting}: misses at {self.point.how}")
        written.append(_save(fig, out_dir / "misses.png", plt))
        return written


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def _rate(row: dict[str, int]) -> str:
    return f"{100 * row['missed'] / row['faces']:.1f}%" if row["faces"] else "-"


def _miss_table(gt: WiderGroundTruth, keep: np.ndarray, missed: np.ndarray) -> dict[str, Any]:
    heights = gt.boxes[:, 3].astype(np.float64)
    edges = list(HEIGHT_BINS) + [np.inf]
    by_height = {}
    for lo, hi in zip(edges[:-1], edges[1:]):
        label = f"height={lo}-{hi}" if np.isfinite(hi) else f"height>={lo}"
        in_bin = keep & (heights >= lo) & (heights < hi)
        by_height[label] = {"faces": int(in_bin.sum()), "missed": int((in_bin & missed).sum())}
    below = keep & (heights < edges[0])
    if below.any():  # degenerate boxes (h <= 0) would otherwise fall outside every bin
        by_height[f"height<{edges[0]}"] = {"faces": int(below.sum()), "missed": int((below & missed).sum())}
    by_attribute: dict[str, dict[str, dict[str, int]]] = {}
    for attr in MISS_ATTRIBUTES:
        if attr not in gt.attributes:
            continue
        values = gt.attributes[attr]
        by_attribute[attr] = {}
        for value, label in ATTRIBUTE_VALUES[attr].items():
            sel = keep & (values == value)
            by_attribute[attr][label] = {"faces": int(sel.sum()), "missed": int((sel & missed).sum())}
    return {"total": int(missed.sum()), "faces": int(keep.sum()), "by_height": by_height,
            "by_attribute": by_attribute}


def _counts(code: np.ndarray, mask: np.ndarray) -> dict[str, int]:
    return {kind: int(np.count_nonzero(mask & (code == c))) for kind, c in FP_CODES.items()}


def analyze(gt: WiderGroundTruth, predictions: WiderPredictions, setting: str = "hard", *,
            score: float | None = None, precision: float | None = None, recall: float | None = None,
            worst: int = 50, source: dict[str, Any] | None = None) -> ErrorAnalysis:
    """Match with the protocol, label every prediction, and summarise errors at the chosen operating point."""
    if setting not in gt.keep:
        raise InputError(None, None, f"unknown setting {setting!r} (choose from {', '.join(gt.keep)})")
    keep = gt.keep[setting]
    m = match(gt, predictions)
    curve = score_setting(setting, keep, m)
    outcomes = classify_predictions(gt, predictions, m, keep)
    proposal, tp = fixed_flags(outcomes, ())
    proposals, tps = curve_counts(m.counted, proposal, tp)
    if not (np.array_equal(proposals, curve.proposals) and np.array_equal(tps, curve.true_positives)):
        raise AssertionError("prediction labels disagree with the protocol's curve")  # a bug, not bad input
    index, how = choose_threshold(curve, predictions.boxes[:, 4], predictions.semantics, score=score,
                                  precision=precision, recall=recall)
    inside = (outcomes.code != NOT_COUNTED) & (m.counted <= index)
    scores_in = predictions.boxes[inside, 4]
    point = OperatingPoint(
        threshold_index=index, threshold=float(curves.thresholds()[index]), how=how,
        precision=None if not np.isfinite(curve.precision[index]) else float(curve.precision[index]),
        recall=float(curve.recall[index]), true_positives=int(curve.true_positives[index]),
        proposals=int(curve.proposals[index]), min_score=float(scores_in.min()) if scores_in.size else None)
    fp_point = _counts(outcomes.code, inside)
    if sum(fp_point.values()) != point.proposals - point.true_positives:
        raise AssertionError("error split does not add up to the protocol's false positives")  # a bug, not input
    face_invalid = gt.attributes.get("invalid", np.zeros(len(keep), dtype=np.int16)) == 1
    ignored_at = np.flatnonzero(inside & (outcomes.code == IGNORED))
    ignored_invalid = int(face_invalid[outcomes.face[ignored_at]].sum()) if ignored_at.size else 0
    missed = keep & (recalled_at(m, outcomes, len(keep)) > index)

    image = m.image
    n_images = gt.n_images
    fp_mask = inside & np.isin(outcomes.code, list(FP_CODES.values()))
    fp_per_image = np.bincount(image[fp_mask], minlength=n_images)
    tp_per_image = np.bincount(image[inside & (outcomes.code == TRUE_POSITIVE)], minlength=n_images)
    face_image = np.repeat(np.arange(n_images), np.diff(gt.face_offsets))
    missed_per_image = np.bincount(face_image[missed], minlength=n_images)
    badness = fp_per_image + missed_per_image
    order = np.lexsort((np.arange(n_images), -badness))
    worst_images = []
    for i in order[:worst]:
        if badness[i] == 0:
            break
        sel = inside & (image == i)
        worst_images.append({"image": f"{gt.images[i][0]}/{gt.images[i][1]}", "index": int(i),
                             "errors": int(badness[i]), "true_positives": int(tp_per_image[i]),
                             "missed": int(missed_per_image[i]), **_counts(outcomes.code, sel)})
    return ErrorAnalysis(
        setting=setting, ap=curve.ap, point=point, false_positives=fp_point,
        false_positives_all=_counts(outcomes.code, outcomes.code != NOT_COUNTED), ignored_invalid=ignored_invalid,
        removed=int(np.count_nonzero(inside & (outcomes.code == REMOVED))), misses=_miss_table(gt, keep, missed),
        gains=ap_gains(m.counted, outcomes, curve.n_faces), worst_images=worst_images, source=dict(source or {}),
        outcomes=outcomes, inside=inside, missed_faces=missed, keep=keep)


# ------------------------------------------------------------------------------------------------ gallery


def find_image(images_dir: Path, event: str, name: str) -> Path | None:
    """The image file of a val image in a WIDER_val/images-style folder (a few common layouts)."""
    for base in (images_dir, images_dir / "images", images_dir / "WIDER_val" / "images"):
        for ext in (".jpg", ".jpeg", ".png", ".JPG"):
            path = base / event / f"{name}{ext}"
            if path.is_file():
                return path
    return None


def write_gallery(analysis: ErrorAnalysis, gt: WiderGroundTruth, predictions: WiderPredictions,
                  images_dir: str | os.PathLike, out_dir: str | os.PathLike, limit: int = 24) -> Path:
    """gallery.html with the worst images (among those found in images_dir), TP/FP/missed boxes drawn."""
    from PIL import Image, ImageDraw

    images_dir, out_dir = Path(images_dir), Path(out_dir)
    if not images_dir.is_dir():
        raise InputError(images_dir, None, "image folder not found")
    folder = out_dir / "gallery"
    folder.mkdir(parents=True, exist_ok=True)
    code = analysis.outcomes.code
    pred_image = np.repeat(np.arange(gt.n_images), np.diff(predictions.offsets))
    items = []
    candidates = [w["index"] for w in analysis.worst_images]
    # Images beyond the worst list are used when few of the worst are on disk (e.g. a sample folder).
    seen = set(candidates)
    candidates += [i for i in range(gt.n_images) if i not in seen]
    for i in candidates:
        if len(items) >= limit:
            break
        event, name = gt.images[i]
        path = find_image(images_dir, event, name)
        if path is None:
            continue
        with Image.open(path) as img:
            canvas = img.convert("RGB")
        draw = ImageDraw.Draw(canvas)
        faces = np.arange(gt.face_offsets[i], gt.face_offsets[i + 1])
        for f in faces:
            x, y, w, h = (float(v) for v in gt.boxes[f])
            if not analysis.keep[f]:
                draw.rectangle([x, y, x + w, y + h], outline=COLOURS["ignored_face"], width=1)
            elif analysis.missed_faces[f]:
                draw.rectangle([x, y, x + w, y + h], outline=COLOURS["missed"], width=3)
        preds = np.flatnonzero((pred_image == i) & analysis.inside)
        counts = {"tp": 0, **{k: 0 for k in FP_TYPES}}
        for p in preds:
            kind = "tp" if code[p] == TRUE_POSITIVE else next((k for k, c in FP_CODES.items() if c == code[p]), None)
            if kind is None:
                continue
            counts[kind] += 1
            x, y, w, h = (float(v) for v in predictions.boxes[p, :4])
            draw.rectangle([x, y, x + w, y + h], outline=COLOURS[kind], width=2)
        file_name = f"{event}__{name}.jpg"
        canvas.save(folder / file_name, quality=88)
        items.append((f"{event}/{name}", file_name, counts, int(analysis.missed_faces[faces].sum())))
    if len(items) < min(limit, gt.n_images):
        warn(f"{images_dir}: gallery holds {len(items)} of {min(limit, gt.n_images)} images "
             "(only these were found there)")
    legend = " ".join(f'<span style="color:rgb{COLOURS[k]}">&#9632; {html.escape(label)}</span>' for k, label in (
        ("tp", "true positive"), ("localisation", "localisation"), ("duplicate", "duplicate"),
        ("ignored", "ignored/invalid hit"), ("background", "background"), ("missed", "missed face"),
        ("ignored_face", "face not counted")))
    cards = []
    for image_id, file_name, counts, n_missed in items:
        detail = ", ".join(f"{k} {v}" for k, v in counts.items()) + f", missed {n_missed}"
        cards.append(f'<figure><a href="gallery/{html.escape(file_name)}"><img src="gallery/{html.escape(file_name)}" '
                     f'loading="lazy"></a><figcaption><b>{html.escape(image_id)}</b><br>{html.escape(detail)}'
                     f'</figcaption></figure>')
    p = analysis.point
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>facebench error gallery: {html.escape(analysis.setting)}</title>
<style>body{{font-family:sans-serif;margin:1em}}
figure{{display:inline-block;width:480px;margin:6px;vertical-align:top}}
img{{max-width:480px;border:1px solid #ccc}} figcaption{{font-size:12px}}</style></head><body>
<h1>Worst images: WIDER FACE {html.escape(analysis.setting)}</h1>
<p>Operating point {html.escape(p.how)}: threshold {p.threshold:.3f}, {p.true_positives} TP of {p.proposals}
proposals, recall {100 * p.recall:.2f}%. Images ranked by false positives + missed faces at that point
(only images found in {html.escape(str(images_dir))}; {len(items)} shown).</p>
<p>{legend}</p>
{chr(10).join(cards) if cards else '<p>No image of this set was found in the image folder.</p>'}
</body></html>
"""
    path = out_dir / "gallery.html"
    path.write_text(page)
    return path


def write_analysis(analysis: ErrorAnalysis, out_dir: str | os.PathLike) -> list[Path]:
    """analysis.json and the bar charts into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from facebench.results import write_document

    path = write_document(analysis.to_document(), out_dir / "analysis.json")
    return [path] + analysis.plot(out_dir)
