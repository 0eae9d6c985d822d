"""The HAMBox network and its training loss path (spec §1-§5).

`HAMBoxConfig()` is the paper's full HAMBox (Table 4 last row): ResNet-50 + LFPN (product),
P2-P7, anchors 0.68 x {16..512}, deep head + SSH + pyramid anchors, SMS + OAM (K=3, T=0.8) +
RAL. Every [choice] of the spec is a field with the spec's default. `PRESETS` holds the
ablation rows (baseline, sms, dms, nams, zcc, oam, oam-ral, hambox) and `tiny` (a reduced
width/depth network with live BatchNorm for tests and from-scratch smoke runs; not a paper
setting). Presets combine with "+": `HAMBoxConfig.preset("zcc+tiny", oam_t=0.5)` applies zcc,
then tiny, then the keyword overrides.

Images given to `forward`/`loss` are already normalised [B, 3, H, W] float tensors (use
`normalize`, which takes RGB 0-255 [B, 3, H, W] and applies the config's input normalisation).
Targets are a list of B float tensors [G_i, 4] of face boxes (x1, y1, x2, y2) in input pixels.

Public API:
- `HAMBoxConfig` (dataclass): `to_dict()`, `from_dict(d)`, `replace(**kw)`, `preset(name, **kw)`,
  `normalization()`; `NORMALIZATION_PRESETS` ("torchvision", "caffe");
  `with_normalization(config, preset)`.
- `HAMBox(config)`: `forward(images, with_context=None) -> HAMBoxOutput`;
  `loss(images, targets, with_stats=False) -> LossOutput`; `normalize(images_rgb255)`;
  `anchors_for(image_hw) -> [A, 4]`; `predict(images) -> list of [N, 5]` (single-pass,
  post-processed, in input pixels).
- `HAMBoxOutput(cls_logits [B, A], box_deltas [B, A, 4], anchors [A, 4], feature_shapes,
  strides, context {name: (cls [B, A'], box [B, A', 4])}, context_first_anchor)`.
- `LossOutput(total, parts {cls, loc, pa_<name>_cls, pa_<name>_loc}, match, stats)`.
- `context_boxes(boxes, factor, image_hw)`: PA head (factor 2) / body (factor 4) boxes.
- `shift_jitter(images, targets, max_shift)`: ZCC face shift jittering.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from detectors.hambox import matching
from detectors.hambox.anchors import anchor_sizes, anchors_per_location, generate_anchors, level_numbers, level_ranges
from detectors.hambox.backbone import ResNet
from detectors.hambox.box_coding import decode, encode, pairwise_iou
from detectors.hambox.config_types import check_field_types
from detectors.hambox.heads import HAMBoxHead
from detectors.hambox.inference import postprocess
from detectors.hambox.losses import plain_detection_loss, ral_detection_loss
from detectors.hambox.neck import LFPN

NORMALIZATION_PRESETS: dict[str, dict[str, Any]] = {
    # torchvision ImageNet weights: RGB in [0, 1], ImageNet mean/std
    "torchvision": {"input_channel_order": "RGB", "input_scale": 1.0 / 255.0,
                    "input_mean": (0.485, 0.456, 0.406), "input_std": (0.229, 0.224, 0.225)},
    # Caffe/MSRA (Detectron R-50): BGR 0-255 minus the pixel means, std 1
    "caffe": {"input_channel_order": "BGR", "input_scale": 1.0,
              "input_mean": (102.9801, 115.9465, 122.7717), "input_std": (1.0, 1.0, 1.0)},
}


@dataclass(frozen=True)
class HAMBoxConfig:
    """Every switch of the HAMBox family; defaults = the paper's full HAMBox."""

    # backbone (spec §1.1)
    backbone_layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    backbone_width: int = 64
    backbone_norm: str = "frozen"          # "frozen" (FrozenBN) | "batch" (live BN)
    frozen_stages: int = 1                 # stem only; 2 also freezes layer1 (Detectron)
    stride_in_1x1: bool = False            # v1 / Caffe-MSRA layout
    # neck (spec §1.2-1.3)
    levels: str = "P2-P7"                  # | "P2-P6"
    fusion: str = "product"                # | "sum"
    channels: int = 256
    # heads (spec §2)
    head: str = "deep"                     # "plain" | "deep"
    tower_convs: int = 4                   # deep-head tower depth
    ssh: bool = True
    pyramid_anchors: bool = True
    pa_body: bool = False
    pa_min_level: int = 2                  # 3 = head branch only on P3 and above
    pa_weight: float = 1.0
    pa_threshold: float = 0.35
    prior_prob: float = 0.01
    # anchors (spec §3)
    anchor_ratio: float = 0.68
    shifted_anchor_levels: tuple[int, ...] = ()   # ZCC: (2,) = P2, (2, 3) = P2 + P3
    zcc_upsample_p2: bool = False
    variances: tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)
    # matching (spec §4)
    matcher: str = "oam"                   # "sms" | "dms" | "nams" | "zcc" | "oam"
    match_threshold: float = 0.35
    dms_min_iou: float = 0.0
    nams_n: int | None = None              # measured before training (matching.estimate_nams_n)
    nams_candidate_iou: float = 0.1
    zcc_n: int = 5
    zcc_shift_jitter: int = 1              # shifts drawn from {0..this}; 0 disables
    oam_k: int = 3
    oam_t: float = 0.8
    ral: bool = True                       # OAM with the regression-aware focal loss
    ral_high_quality: float = 0.5
    # losses (spec §5)
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    smooth_l1_beta: float = 1.0
    loc_weight: float = 1.0
    normalisers_across_gpus: bool = False
    # input normalisation (a property of the backbone weights; spec §1.1)
    input_channel_order: str = "RGB"
    input_scale: float = 1.0 / 255.0
    input_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    input_std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        check_field_types(self)
        choices = {"backbone_norm": ("frozen", "batch"), "levels": ("P2-P7", "P2-P6"),
                   "fusion": ("product", "sum"), "head": ("plain", "deep"),
                   "matcher": matching.STRATEGIES, "input_channel_order": ("RGB", "BGR")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"config {name}={getattr(self, name)!r}; expected one of {list(allowed)}")
        levels = level_numbers(self.levels)
        for level in self.shifted_anchor_levels:
            if level not in levels:
                raise ValueError(f"shifted anchor level P{level} is not among {self.levels}")
        if self.matcher == "nams" and self.nams_n is not None and int(self.nams_n) < 1:
            raise ValueError("nams_n must be >= 1")
        if self.channels < 4 or self.channels % 4:
            raise ValueError("channels must be a positive multiple of 4 (SSH split)")
        # Checked here, not only where the modules are built, so a bad checkpoint or config file is refused
        # when it is read (by name), not with a crash in the first loss.
        if len(self.backbone_layers) != 4 or min(self.backbone_layers) < 1:
            raise ValueError(f"backbone_layers must be four positive block counts, got {list(self.backbone_layers)}")
        if not 0 <= self.frozen_stages <= 5:
            raise ValueError(f"frozen_stages must be in 0..5, got {self.frozen_stages}")
        if self.backbone_width < 1 or self.tower_convs < 0:
            raise ValueError("backbone_width must be >= 1 and tower_convs >= 0")
        if self.pyramid_anchors and not min(levels) <= self.pa_min_level <= max(levels):
            raise ValueError(f"pa_min_level={self.pa_min_level} is not a level of {self.levels}")
        if self.oam_k < 1 or self.zcc_n < 1:
            raise ValueError("oam_k and zcc_n must be >= 1")
        for name in ("match_threshold", "oam_t", "ral_high_quality", "pa_threshold"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if not 0.0 < self.prior_prob < 1.0:
            raise ValueError(f"prior_prob must be in (0, 1), got {self.prior_prob}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "HAMBoxConfig":
        """Inverse of `to_dict`; an unknown key raises ValueError naming it."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in names:
                raise ValueError(f"unknown HAMBox config key '{key}'")
            kwargs[key] = tuple(value) if isinstance(value, list) else value
        return cls(**kwargs)

    def replace(self, **changes: Any) -> "HAMBoxConfig":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "HAMBoxConfig":
        """A named ablation setting (see PRESETS; "a+b" merges several in order) with overrides."""
        values: dict[str, Any] = {}
        for part in name.split("+"):
            if part not in PRESETS:
                raise ValueError(f"unknown HAMBox preset {part!r}; expected one of {sorted(PRESETS)}")
            values.update(PRESETS[part])
        return cls(**{**values, **overrides})

    def normalization(self) -> dict[str, Any]:
        """The input-normalisation fields."""
        return {k: getattr(self, k) for k in NORMALIZATION_PRESETS["torchvision"]}

    @property
    def context_branches(self) -> tuple[str, ...]:
        """PA branches trained next to the face branch."""
        if not self.pyramid_anchors:
            return ()
        return ("head", "body") if self.pa_body else ("head",)


_PLAIN = {"head": "plain", "ssh": False, "pyramid_anchors": False}
PRESETS: dict[str, dict[str, Any]] = {
    "hambox": {},                                                             # Table 4, full HAMBox
    "baseline": {**_PLAIN, "anchor_ratio": 1.0, "matcher": "dms"},            # Table 1 baseline
    "sms": {**_PLAIN, "matcher": "sms"},                                      # Table 1 + SMS (0.68)
    "dms": {**_PLAIN, "matcher": "dms"},                                      # Table 1 + DMS (0.68)
    "nams": {**_PLAIN, "matcher": "nams"},                                    # Table 1 + NAMS (0.68)
    "zcc": {**_PLAIN, "anchor_ratio": 1.0, "matcher": "zcc", "shifted_anchor_levels": (2,)},  # Table 3 ZCC*
    "oam": {**_PLAIN, "matcher": "oam", "ral": False},                        # Table 4 + OAM
    "oam-ral": {**_PLAIN, "matcher": "oam", "ral": True},                     # Table 3/4 + RAL
    # reduced network for tests and smoke runs (not a paper setting)
    "tiny": {"backbone_layers": (1, 1, 1, 1), "backbone_width": 8, "channels": 16, "tower_convs": 1,
             "backbone_norm": "batch"},
}


def with_normalization(config: HAMBoxConfig, preset: str) -> HAMBoxConfig:
    """Config with a normalisation preset ("torchvision" or "caffe")."""
    if preset not in NORMALIZATION_PRESETS:
        raise ValueError(f"unknown normalisation preset {preset!r}; expected one of {sorted(NORMALIZATION_PRESETS)}")
    return config.replace(**NORMALIZATION_PRESETS[preset])


@dataclass
class HAMBoxOutput:
    """Raw network outputs for one batch (anchor order = level, y, x, anchor-in-location)."""

    cls_logits: Tensor
    box_deltas: Tensor
    anchors: Tensor
    feature_shapes: list[tuple[int, int]]
    strides: tuple[int, ...]
    context: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)
    context_first_anchor: int = 0


@dataclass
class LossOutput:
    """Total loss (with grad), its detached parts, the face-branch match and optional stats."""

    total: Tensor
    parts: dict[str, Tensor]
    match: matching.MatchResult
    stats: dict[str, float] | None = None


def context_boxes(boxes: Tensor, factor: float, image_hw: Sequence[int]) -> Tensor:
    """Boxes grown `factor` x about their centre (2 = PA head box), clipped to the image."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    gx = 0.5 * (factor - 1.0) * w
    gy = 0.5 * (factor - 1.0) * h
    out = torch.stack([boxes[:, 0] - gx, boxes[:, 1] - gy, boxes[:, 2] + gx, boxes[:, 3] + gy], dim=1)
    out[:, 0::2] = out[:, 0::2].clamp(0, float(image_hw[1]))
    out[:, 1::2] = out[:, 1::2].clamp(0, float(image_hw[0]))
    return out


def shift_jitter(images: Tensor, targets: Sequence[Tensor], max_shift: int,
                 generator: torch.Generator | None = None) -> tuple[Tensor, list[Tensor]]:
    """ZCC face shift jittering: move each image and its boxes by integer (dx, dy) in {0..max_shift}
    (the uncovered border becomes 0 = the mean colour after normalisation; boxes clipped)."""
    if max_shift <= 0:
        return images, list(targets)
    b, _, h, w = images.shape
    shifts = torch.randint(0, max_shift + 1, (b, 2), generator=generator)
    out = torch.zeros_like(images)
    moved = []
    for i in range(b):
        dx, dy = int(shifts[i, 0]), int(shifts[i, 1])
        out[i, :, dy:, dx:] = images[i, :, : h - dy, : w - dx]
        boxes = targets[i] + torch.tensor([dx, dy, dx, dy], dtype=targets[i].dtype, device=targets[i].device)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        moved.append(boxes[keep])
    return out, moved


class HAMBox(nn.Module):
    """ResNet-50 + LFPN single-stage face detector with pluggable anchor matching."""

    def __init__(self, config: HAMBoxConfig | None = None) -> None:
        super().__init__()
        self.config = config or HAMBoxConfig()
        cfg = self.config
        self.level_nums = level_numbers(cfg.levels)
        self.per_location = tuple(anchors_per_location(l, cfg.shifted_anchor_levels) for l in self.level_nums)
        self.sizes = anchor_sizes(cfg.anchor_ratio, self.level_nums)
        self.backbone = ResNet(cfg.backbone_layers, cfg.backbone_width, cfg.backbone_norm,
                               cfg.frozen_stages, cfg.stride_in_1x1)
        self.neck = LFPN(self.backbone.out_channels, cfg.channels, cfg.levels, cfg.fusion, cfg.zcc_upsample_p2)
        self.head = HAMBoxHead(cfg.channels, self.level_nums, self.per_location,
                               cfg.tower_convs if cfg.head == "deep" else 0, cfg.ssh,
                               cfg.context_branches, cfg.pa_min_level, cfg.prior_prob)
        self._anchor_cache: dict[tuple, Tensor] = {}

    # -- geometry -----------------------------------------------------------------------------
    def _anchors(self, shapes: Sequence[tuple[int, int]], device: torch.device) -> Tensor:
        key = (tuple(shapes), str(device))
        if key not in self._anchor_cache:
            if len(self._anchor_cache) > 32:
                self._anchor_cache.clear()
            self._anchor_cache[key] = generate_anchors(shapes, self.neck.strides, self.sizes,
                                                       self.per_location, device=device)
        return self._anchor_cache[key]

    def feature_shapes(self, image_hw: Sequence[int]) -> list[tuple[int, int]]:
        """Feature-map sizes the network produces for an (h, w) input (stride-2 convs: ceil halving)."""
        h, w = int(image_hw[0]), int(image_hw[1])
        sizes = []
        for _ in range(7):
            h, w = (h + 1) // 2, (w + 1) // 2
            sizes.append((h, w))
        shapes = [sizes[l - 1] for l in self.level_nums]
        if self.config.zcc_upsample_p2:
            shapes[0] = sizes[0]
        return shapes

    def anchors_for(self, image_hw: Sequence[int], device: torch.device | str = "cpu") -> Tensor:
        """All anchors [A, 4] of an (h, w) input, without running the network."""
        return self._anchors(self.feature_shapes(image_hw), torch.device(device))

    def normalize(self, images: Tensor) -> Tensor:
        """RGB 0-255 images [B, 3, H, W] (uint8 or float) -> the network's normalised input."""
        cfg = self.config
        x = images.to(torch.float32)
        if cfg.input_channel_order == "BGR":
            x = x.flip(1)
        mean = torch.tensor(cfg.input_mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(cfg.input_std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * cfg.input_scale - mean) / std

    # -- forward ------------------------------------------------------------------------------
    def forward(self, images: Tensor, with_context: bool | None = None) -> HAMBoxOutput:
        """Network outputs; PA context branches run when training (or when asked)."""
        if with_context is None:
            with_context = self.training
        with_context = with_context and bool(self.head.context)
        features = self.neck(self.backbone(images))
        cls, box, context = self.head(features, with_context)
        shapes = [(int(f.shape[-2]), int(f.shape[-1])) for f in features]
        anchors = self._anchors(shapes, images.device)
        first = level_ranges(shapes, self.per_location)[self.head.context_first][0] if self.head.context_first < len(shapes) else anchors.shape[0]
        return HAMBoxOutput(cls, box, anchors, shapes, self.neck.strides, context, first)

    @torch.no_grad()
    def predict(self, images: Tensor, score_threshold: float = 0.01, pre_nms_top_k: int = 5000,
                nms_threshold: float = 0.3, max_detections: int = 750) -> list[Tensor]:
        """Single-pass detections per image [N, 5] in input pixels (images already normalised)."""
        out = self.forward(images, with_context=False)
        return [postprocess(out.cls_logits[i], out.box_deltas[i], out.anchors, self.config.variances,
                            score_threshold, pre_nms_top_k, nms_threshold, max_detections)
                for i in range(images.shape[0])]

    # -- training -----------------------------------------------------------------------------
    def loss(self, images: Tensor, targets: Sequence[Tensor], with_stats: bool = False) -> LossOutput:
        """Training loss of one batch: match (no grad), face-branch loss, PA losses, optional stats."""
        cfg = self.config
        if len(targets) != images.shape[0]:
            raise ValueError(f"{len(targets)} target tensors for {images.shape[0]} images")
        targets = [t.to(device=images.device, dtype=torch.float32).reshape(-1, 4) for t in targets]
        if cfg.matcher == "zcc" and cfg.zcc_shift_jitter > 0 and self.training:
            images, targets = shift_jitter(images, targets, cfg.zcc_shift_jitter)
        out = self.forward(images, with_context=True)
        anchors = out.anchors
        need_pred = cfg.matcher == "oam" or with_stats
        pred_boxes = decode(anchors, out.box_deltas.detach().float(), cfg.variances) if need_pred else None

        per_image = []
        ious, pred_ious = [], []
        with torch.no_grad():
            for i, gt in enumerate(targets):
                iou = pairwise_iou(gt, anchors)
                pred_iou = pairwise_iou(gt, pred_boxes[i]) if need_pred else None
                per_image.append(matching.match(
                    cfg.matcher, iou, pred_iou=pred_iou, threshold=cfg.match_threshold,
                    dms_min_iou=cfg.dms_min_iou, nams_n=cfg.nams_n, nams_candidate_iou=cfg.nams_candidate_iou,
                    zcc_n=cfg.zcc_n, oam_k=cfg.oam_k, oam_t=cfg.oam_t))
                if with_stats:
                    ious.append(iou)
                    pred_ious.append(pred_iou)
        match = _stack_matches(per_image)

        box_targets = torch.zeros((len(targets), anchors.shape[0], 4), device=images.device)
        for i, gt in enumerate(targets):
            pos = match.assigned[i] >= 0
            if bool(pos.any()):
                box_targets[i, pos] = encode(anchors[pos], gt[match.assigned[i, pos]], cfg.variances)

        loss_kw = dict(alpha=cfg.focal_alpha, gamma=cfg.focal_gamma, beta=cfg.smooth_l1_beta,
                       across_gpus=cfg.normalisers_across_gpus)
        if cfg.matcher == "oam" and cfg.ral:
            face = ral_detection_loss(out.cls_logits, out.box_deltas, match.first_step >= 0, match.compensated,
                                      match.quality, box_targets, high_quality=cfg.ral_high_quality, **loss_kw)
        else:
            face = plain_detection_loss(out.cls_logits, out.box_deltas, match.assigned >= 0, box_targets, **loss_kw)
        total = face["cls"] + cfg.loc_weight * face["loc"]
        parts = {"cls": face["cls"].detach(), "loc": face["loc"].detach()}
        for key in ("num_pos", "num_norm", "num_com", "num_ignored"):
            if key in face:
                parts[key] = face[key]

        factors = {"head": 2.0, "body": 4.0}
        ctx_anchors = anchors[out.context_first_anchor:]
        for name, (ctx_cls, ctx_box) in out.context.items():
            positive = torch.zeros(ctx_cls.shape, dtype=torch.bool, device=images.device)
            ctx_targets = torch.zeros(ctx_box.shape, device=images.device)
            with torch.no_grad():
                for i, gt in enumerate(targets):
                    boxes = context_boxes(gt, factors[name], images.shape[-2:])
                    assigned = matching.sms(pairwise_iou(boxes, ctx_anchors), threshold=cfg.pa_threshold)
                    pos = assigned >= 0
                    positive[i] = pos
                    if bool(pos.any()):
                        ctx_targets[i, pos] = encode(ctx_anchors[pos], boxes[assigned[pos]], cfg.variances)
            ctx = plain_detection_loss(ctx_cls, ctx_box, positive, ctx_targets, **loss_kw)
            total = total + cfg.pa_weight * (ctx["cls"] + cfg.loc_weight * ctx["loc"])
            parts[f"pa_{name}_cls"] = ctx["cls"].detach()
            parts[f"pa_{name}_loc"] = ctx["loc"].detach()
        parts["total"] = total.detach()

        stats = None
        if with_stats:
            from detectors.hambox.stats import training_step_stats

            stats = training_step_stats(per_image, ious, pred_ious, k=cfg.oam_k, threshold=cfg.match_threshold,
                                        high_quality=cfg.ral_high_quality,
                                        ral=cfg.matcher == "oam" and cfg.ral)
        return LossOutput(total, parts, match, stats)


def _stack_matches(results: Sequence[matching.MatchResult]) -> matching.MatchResult:
    """Per-image MatchResults -> one batched MatchResult (num_matched padded with -1)."""
    gmax = max([r.num_matched.shape[0] for r in results] + [0])
    num_matched = torch.full((len(results), gmax), -1, dtype=torch.long,
                             device=results[0].assigned.device if results else "cpu")
    for i, r in enumerate(results):
        num_matched[i, : r.num_matched.shape[0]] = r.num_matched
    quality = None
    if results and all(r.quality is not None for r in results):
        quality = torch.stack([r.quality for r in results])
    return matching.MatchResult(
        assigned=torch.stack([r.assigned for r in results]),
        first_step=torch.stack([r.first_step for r in results]),
        compensated=torch.stack([r.compensated for r in results]),
        num_matched=num_matched, quality=quality)
