"""ModelConfig: every knob of the LCR-Net++ model, in one frozen dataclass.

`build_model(cfg, anchors)` (lcrnet/model.py) is the only place that turns these fields into
constructor arguments. Defaults follow the paper (Rogez et al., TPAMI 2019) where it gives a value
and torchvision's Faster R-CNN defaults elsewhere ("same parameters as [9] for RPN", sec 3.5).
The config is saved with checkpoints (`dataclasses.asdict`) and read back with `from_dict`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from posebank.skeleton import get_skeleton

BACKBONES = ("resnet50_c4", "resnet18_fpn", "resnet34_fpn", "resnet50_fpn", "mobilenet_v3_large_fpn")
BACKBONE_NORMS = ("auto", "batchnorm", "groupnorm")
INTEGRATIONS = ("ppi", "nms", "none")
PPI_IOU_FUNCS = ("bbox", "bbox_torsohead")
PPI_SELECTIONS = ("best_mode", "all_modes")


@dataclass(frozen=True)
class ModelConfig:
    """LCR-Net++ model configuration (architecture, training-time sampling, inference post-processing)."""

    # bump when a field changes meaning, so old checkpoints can be recognised (2: backbone_norm "auto"
    # means GroupNorm from scratch; PPI selects the best mode per person, as the LCR-Net release)
    version: int = 2
    skeleton: str = "j13"  # canonical joint set (posebank.skeleton); J = its number of joints
    num_anchors: int = 200  # K anchor-poses; 2K pose classes + background (K=200 for MPII, sec 4.2)
    # --- backbone ---
    # "resnet50_c4" (res2-4 shared, res5 as RoI head, Detectron C4, as the release), or an FPN backbone:
    # "resnet18_fpn", "resnet34_fpn", "resnet50_fpn", "mobilenet_v3_large_fpn" (light ones for CPUs)
    backbone: str = "resnet50_c4"
    backbone_weights: str | None = None  # local torchvision state-dict file of that network; None = random init (never downloads)
    # "auto": frozen BatchNorm with backbone_weights, GroupNorm from scratch (batch-independent features,
    # which small batches need); "batchnorm": live BatchNorm; "groupnorm": GroupNorm (from scratch only)
    backbone_norm: str = "auto"
    trainable_layers: int = 3  # ResNet stages trained, counted from layer4 down (0..5), as torchvision's detection models
    # FPN width of the ResNet FPN backbones (torchvision's 256); the FPN and RPN 3x3 convolutions at stride 4
    # cost more than ResNet-18 itself at 128 px, so the CPU preset halves it (MobileNet's FPN stays 256)
    fpn_channels: int = 256
    # --- input transform (torchvision GeneralizedRCNNTransform) ---
    min_size: tuple[int, ...] = (800,)  # shorter image side after resizing; several values = random choice in training
    max_size: int = 1333  # cap on the longer side after resizing
    image_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # ImageNet RGB mean (images are float in [0, 1])
    image_std: tuple[float, float, float] = (0.229, 0.224, 0.225)  # ImageNet RGB std
    # --- RPN (torchvision defaults, as the paper keeps Faster R-CNN's RPN) ---
    rpn_anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)  # box anchor sizes in px (FPN: one per level: 5, MobileNet 3)
    rpn_aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # box anchor height/width ratios
    rpn_pre_nms_top_n_train: int = 2000  # proposals kept per level before NMS, training
    rpn_pre_nms_top_n_test: int = 1000  # proposals kept per level before NMS, inference
    rpn_post_nms_top_n_train: int = 2000  # proposals kept per image after NMS, training
    rpn_post_nms_top_n_test: int = 1000  # proposals kept per image after NMS, inference
    rpn_nms_thresh: float = 0.7  # IoU of the RPN's NMS
    rpn_fg_iou_thresh: float = 0.7  # box anchor is positive above this IoU with a GT pose box
    rpn_bg_iou_thresh: float = 0.3  # box anchor is negative below this IoU
    rpn_batch_size_per_image: int = 256  # box anchors sampled per image for the RPN loss
    rpn_positive_fraction: float = 0.5  # fraction of positives in that sample
    # --- pose RoI head: sampling and targets (sec 3.1, 3.5) ---
    box_fg_iou_thresh: float = 0.5  # proposal takes a pose label at IoU >= 0.5 with a GT pose box (sec 3.1)
    box_bg_iou_thresh: float = 0.5  # ... and is background below 0.5 (no ignored band)
    box_batch_size_per_image: int = 32  # proposals per image for the head losses (256 boxes from 8 images, sec 3.5)
    box_positive_fraction: float = 0.25  # one quarter of the boxes on humans (sec 3.5)
    box_margin: float = 0.1  # a pose box is the joints' box grown by this fraction of its width/height in total (sec 3.1; posebank.boxes)
    reg_scale: float = 5.0  # regression targets are multiplied by this (as the LCR-Net release)
    smooth_l1_beta: float = 1.0  # smooth-L1 switch point; 1.0 is eq. 5 exactly
    # weight of an auxiliary joint-heatmap loss on the finest feature map, training only (lcrnet.joint_heatmaps;
    # not in the paper); 0 = off
    joint_heatmap_weight: float = 0.0
    # each class's regression = its own linear map + one shared by all classes (lcrnet.heads.PoseEstimate):
    # the paper's function family, learnt from every positive proposal; False = the paper's layer as written
    shared_regression: bool = False
    # --- pose RoI head: architecture (sec 3.2-3.4) ---
    head_fc_dim: int = 1024  # width of the two shared fully-connected layers of each estimate
    refine_iters: int = 1  # refinement stages after the first estimate (sec 3.4); 0 = plain LCR-Net
    refine_embed_dim: int = 2048  # FC embedding of (class probabilities, regression) fed to a refinement (sec 3.4)
    # --- inference (sec 3.6) ---
    score_thresh: float = 0.05  # (box, class) pose proposals below this classification score are dropped
    pre_integration_top_n: int = 1000  # at most this many pose proposals per image enter rescoring and PPI/NMS
    rescore: bool = True  # apply eq. 6 (penalise joints outside the proposal box)
    sigma_b_px: float = 25.0  # sigma_b of eq. 6, in network-input pixels
    integration: str = "ppi"  # "ppi" (sec 3.6), "nms", or "none" (all rescored proposals, for external integration)
    ppi_iou_thresh: float = 0.12  # PPI groups pose boxes above this IoU with the group's top (0.12 for PCKh, 0.54 for AP)
    ppi_t3d_m: float = 0.13  # PPI mode radius T_3D in metres on D3D (0.13 for PCKh, 0.03 for AP)
    ppi_upper_leg_weight: float = 0.1  # weight factor of upper-body proposals on lower-body joints in the PPI average
    ppi_iou_func: str = "bbox"  # PPI grouping boxes around all joints ("bbox") or hips, shoulders and head ("bbox_torsohead")
    ppi_selection: str = "best_mode"  # "best_mode": one pose per group, its best mode (the release); "all_modes": every mode (the paper's text)
    ppi_min_mode_score: float = 0.05  # stop opening modes in a group once its best free proposal scores below this (the release)
    ppi_min_person_score: float = 0.0  # drop people whose pose scores at most this (the release's th_persondetect)
    nms_iou_thresh: float = 0.5  # IoU of the NMS on pose boxes
    detections_per_img: int = 100  # poses returned per image, highest scores first

    def __post_init__(self) -> None:
        get_skeleton(self.skeleton)  # raises ValueError on an unknown name
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.backbone_norm not in BACKBONE_NORMS:
            raise ValueError(f"backbone_norm must be one of {BACKBONE_NORMS}, got {self.backbone_norm!r}")
        if self.backbone_norm == "groupnorm" and self.backbone_weights is not None:
            raise ValueError("backbone_norm 'groupnorm' is for training from scratch: torchvision's ResNet-50 weights hold BatchNorm statistics")
        if self.integration not in INTEGRATIONS:
            raise ValueError(f"integration must be one of {INTEGRATIONS}, got {self.integration!r}")
        if self.num_anchors < 1:
            raise ValueError(f"num_anchors must be >= 1, got {self.num_anchors}")
        if not 0 <= self.trainable_layers <= 5:
            raise ValueError(f"trainable_layers must be in 0..5, got {self.trainable_layers}")
        if self.refine_iters < 0:
            raise ValueError(f"refine_iters must be >= 0, got {self.refine_iters}")
        levels = {"resnet50_c4": None, "mobilenet_v3_large_fpn": 3}.get(self.backbone, 5)
        if levels is not None and len(self.rpn_anchor_sizes) != levels:
            raise ValueError(f"{self.backbone} needs one RPN anchor size per level ({levels}), got {self.rpn_anchor_sizes}")
        if self.fpn_channels < 1 or (self.backbone == "mobilenet_v3_large_fpn" and self.fpn_channels != 256):
            raise ValueError(f"fpn_channels must be >= 1 (and 256 for mobilenet_v3_large_fpn), got {self.fpn_channels}")
        if self.ppi_iou_func not in PPI_IOU_FUNCS:
            raise ValueError(f"ppi_iou_func must be one of {PPI_IOU_FUNCS}, got {self.ppi_iou_func!r}")
        if self.ppi_selection not in PPI_SELECTIONS:
            raise ValueError(f"ppi_selection must be one of {PPI_SELECTIONS}, got {self.ppi_selection!r}")

    def ppi_config(self):  # noqa: ANN201 -- lcrnet.postprocess.PPIConfig (imported here: no cycle)
        """The model's PPI settings as a lcrnet.postprocess.PPIConfig."""
        from .postprocess import PPIConfig

        return PPIConfig(
            iou_thresh=self.ppi_iou_thresh, t3d_m=self.ppi_t3d_m, iou_func=self.ppi_iou_func,
            selection=self.ppi_selection, min_mode_score=self.ppi_min_mode_score,
            min_person_score=self.ppi_min_person_score, upper_leg_weight=self.ppi_upper_leg_weight,
        )  # fmt: skip

    @property
    def num_joints(self) -> int:
        """J, the number of joints of `skeleton`."""
        return get_skeleton(self.skeleton).num_joints

    @property
    def num_classes(self) -> int:
        """2K + 1: background, K full-body and K upper-body anchor classes."""
        return 2 * self.num_anchors + 1

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Inverse of `dataclasses.asdict` after a JSON round trip (lists back to tuples)."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown ModelConfig field(s): {', '.join(sorted(unknown))}")
        values = dict(values)
        if values.get("version", 1) < 2:
            # Version 1 read "auto" as live BatchNorm from scratch, and PPI returned every mode.
            if values.get("backbone_norm", "auto") == "auto" and values.get("backbone_weights") is None:
                values["backbone_norm"] = "batchnorm"
            values.setdefault("ppi_selection", "all_modes")
            values.setdefault("ppi_min_mode_score", 0.0)
            values["version"] = 2
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


# Named starting points for ModelConfig; explicit fields override them (ModelConfig(**{**preset, **fields})).
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # The paper and the release: ResNet-50 C4 at 800 px, every default above.
    "paper": {},
    # Light and fast on a CPU, from random weights on small images (bench/learn_cpu.py, the README demo):
    # ResNet-18 FPN (GroupNorm) 128 channels wide, every stage trained, 128 px, RPN boxes 16-256 px, fewer
    # proposals, 512-d head and 256-d refinement embedding.
    "cpu": {
        "backbone": "resnet18_fpn", "fpn_channels": 128, "trainable_layers": 5, "min_size": (128,), "max_size": 128,
        "rpn_anchor_sizes": (16, 32, 64, 128, 256), "rpn_pre_nms_top_n_train": 500, "rpn_post_nms_top_n_train": 300,
        "rpn_pre_nms_top_n_test": 300, "rpn_post_nms_top_n_test": 100, "head_fc_dim": 512, "refine_embed_dim": 256,
    },
}  # fmt: skip


def parse_model_options(values: list[str]) -> dict[str, Any]:
    """ModelConfig fields given as KEY=VALUE strings (`--model-option`): VALUE as JSON when it parses (numbers,
    true/false/null; lists become tuples, as ModelConfig's sequences are), else a string; dashes in KEY read as
    underscores. ValueError without '='."""
    options: dict[str, Any] = {}
    for v in values:
        key, sep, raw = v.partition("=")
        if not sep or not key:
            raise ValueError(f"{v!r}: expected KEY=VALUE, e.g. head_fc_dim=256")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options[key.strip().replace("-", "_")] = tuple(value) if isinstance(value, list) else value
    return options


def model_config_from_preset(preset: str, **fields: Any) -> ModelConfig:
    """ModelConfig of a named preset (MODEL_PRESETS) with `fields` overriding it."""
    if preset not in MODEL_PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; choose one of {', '.join(MODEL_PRESETS)}")
    return ModelConfig(**{**MODEL_PRESETS[preset], **fields})
