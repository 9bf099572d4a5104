"""ResNet-50 backbones (C4 or FPN) with their RPN anchor generator, RoI pooling and RoI feature extractor.

No weights are ever downloaded: torchvision's resnet50 is built with weights=None and, when
ModelConfig.backbone_weights names a file, a local torchvision ResNet-50 state dict is loaded into it.
As torchvision's detection builders do, pretrained backbones use frozen batch norm and random ones
use ordinary (batch-statistics) batch norm, unless ModelConfig.backbone_norm asks for GroupNorm.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn
from torchvision.models import resnet50
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from .config import ModelConfig

_STAGES_TOP_DOWN = ("layer4", "layer3", "layer2", "layer1", "conv1")


class DetectorParts(NamedTuple):
    """What the two backbone variants hand to the detector.

    backbone: images (B, 3, H, W) -> OrderedDict of feature maps, with `out_channels`.
    anchor_generator: RPN box anchors for those maps.
    roi_pool: RoIAlign over the maps.
    box_features: pooled RoIs -> (S, feature_dim).
    feature_dim: size of the RoI feature vector.
    """

    backbone: nn.Module
    anchor_generator: AnchorGenerator
    roi_pool: MultiScaleRoIAlign
    box_features: nn.Module
    feature_dim: int


class ResNetC4(nn.Module):
    """ResNet stem + layer1..layer3: the stride-16 'res4' map shared by the RPN and RoIAlign (Detectron C4)."""

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(
            resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1, resnet.layer2, resnet.layer3
        )
        self.out_channels = 1024

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """(B, 3, H, W) normalised images -> {"0": (B, 1024, H/16, W/16)}."""
        return OrderedDict([("0", self.body(images))])


def _norm_layer(cfg: ModelConfig) -> Callable[[int], nn.Module]:
    """The ResNet's normalisation: frozen BatchNorm over pretrained weights (as torchvision's detectors),
    live BatchNorm from scratch, or GroupNorm (32 groups), which does not depend on the batch."""
    if cfg.backbone_norm == "groupnorm":
        return lambda channels: nn.GroupNorm(32, channels)
    if cfg.backbone_norm == "auto" and cfg.backbone_weights is not None:
        return FrozenBatchNorm2d
    return nn.BatchNorm2d


def _resnet50(cfg: ModelConfig) -> nn.Module:
    resnet = resnet50(weights=None, norm_layer=_norm_layer(cfg))
    if cfg.backbone_weights is not None:
        state = torch.load(cfg.backbone_weights, map_location="cpu", weights_only=True)
        resnet.load_state_dict(state)
    train = list(_STAGES_TOP_DOWN[: cfg.trainable_layers])
    if cfg.trainable_layers == 5:
        train.append("bn1")
    for name, param in resnet.named_parameters():
        if not any(name.startswith(stage) for stage in train):
            param.requires_grad_(False)
    return resnet


def build_c4(cfg: ModelConfig) -> DetectorParts:
    """C4: res2-res4 shared features, 14x14 RoIAlign, res5 (stride 2) + average pool as the RoI feature (2048)."""
    resnet = _resnet50(cfg)
    box_features = nn.Sequential(resnet.layer4, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return DetectorParts(
        backbone=ResNetC4(resnet),
        anchor_generator=AnchorGenerator((tuple(cfg.rpn_anchor_sizes),), (tuple(cfg.rpn_aspect_ratios),)),
        roi_pool=MultiScaleRoIAlign(["0"], output_size=14, sampling_ratio=2),
        box_features=box_features,
        feature_dim=2048,
    )


def build_fpn(cfg: ModelConfig) -> DetectorParts:
    """FPN: res2-res5 + FPN (256 channels, 5 levels), 7x7 multi-level RoIAlign, flattened (256 * 7 * 7)."""
    resnet = _resnet50(cfg)
    backbone = BackboneWithFPN(
        resnet,
        return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
        in_channels_list=[256, 512, 1024, 2048],
        out_channels=256,
        extra_blocks=LastLevelMaxPool(),
    )
    levels = len(cfg.rpn_anchor_sizes)
    return DetectorParts(
        backbone=backbone,
        anchor_generator=AnchorGenerator(
            tuple((s,) for s in cfg.rpn_anchor_sizes), (tuple(cfg.rpn_aspect_ratios),) * levels
        ),
        roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], output_size=7, sampling_ratio=2),
        box_features=nn.Flatten(),
        feature_dim=256 * 7 * 7,
    )


BUILDERS = {"resnet50_c4": build_c4, "resnet50_fpn": build_fpn}
