"""Backbones (ResNet-18/34/50 FPN, ResNet-50 C4, MobileNetV3-Large FPN) with their RPN anchor generator,
RoI pooling and RoI feature extractor.

No weights are ever downloaded: every torchvision network is built with weights=None and, when
ModelConfig.backbone_weights names a file, a local torchvision state dict of that network (e.g. the
ImageNet `resnet18` or `mobilenet_v3_large` weights saved with torch.save) is loaded into it.

Normalisation (ModelConfig.backbone_norm): over pretrained weights, frozen batch norm (as torchvision's
detectors); from scratch, GroupNorm by default, because a detector trains on a few images per batch and
batch statistics of 2-8 images make the features depend on the batch (measured: 3x the 3D error at the
true boxes in train mode against eval mode with BatchNorm; none with GroupNorm; He et al., "Rethinking
ImageNet Pre-training", train detectors from scratch the same way). "batchnorm" keeps live BatchNorm.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn
from torchvision.models import mobilenet_v3_large, resnet18, resnet34, resnet50
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN, _mobilenet_extractor
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign

from .config import ModelConfig

_RESNETS = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}


class DetectorParts(NamedTuple):
    """What a backbone variant hands to the detector.

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


def uses_groupnorm(cfg: ModelConfig) -> bool:
    """True when the backbone normalises with GroupNorm (from scratch, unless BatchNorm is asked for)."""
    return cfg.backbone_norm == "groupnorm" or (cfg.backbone_norm == "auto" and cfg.backbone_weights is None)


def _group_norm(channels: int) -> nn.Module:
    # 32 groups (Wu & He) where the width allows; MobileNet's 24, 40, 72, ... channels take the gcd.
    return nn.GroupNorm(math.gcd(32, channels), channels)


def _norm_layer(cfg: ModelConfig) -> Callable[..., nn.Module]:
    """GroupNorm from scratch (module docstring), frozen BatchNorm over weights, or live BatchNorm."""
    if uses_groupnorm(cfg):
        return _group_norm
    if cfg.backbone_weights is not None and cfg.backbone_norm == "auto":
        return FrozenBatchNorm2d
    return nn.BatchNorm2d


def _load_weights(network: nn.Module, cfg: ModelConfig) -> nn.Module:
    if cfg.backbone_weights is not None:
        state = torch.load(cfg.backbone_weights, map_location="cpu", weights_only=True)
        network.load_state_dict(state)
    return network


def _resnet(cfg: ModelConfig) -> nn.Module:
    name = cfg.backbone.split("_")[0]
    return _load_weights(_RESNETS[name](weights=None, norm_layer=_norm_layer(cfg)), cfg)


def _fpn_anchor_generator(cfg: ModelConfig, levels: int) -> AnchorGenerator:
    """One anchor size per FPN level (ModelConfig.rpn_anchor_sizes), every aspect ratio at each."""
    sizes = tuple(cfg.rpn_anchor_sizes)
    if len(sizes) != levels:
        raise ValueError(f"{cfg.backbone} has {levels} feature levels: rpn_anchor_sizes needs {levels} values, got {sizes}")
    return AnchorGenerator(tuple((s,) for s in sizes), (tuple(cfg.rpn_aspect_ratios),) * levels)


def build_c4(cfg: ModelConfig) -> DetectorParts:
    """C4: res2-res4 shared features, 14x14 RoIAlign, res5 (stride 2) + average pool as the RoI feature (2048)."""
    resnet = _resnet(cfg)
    _freeze_resnet(resnet, cfg.trainable_layers)
    box_features = nn.Sequential(resnet.layer4, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return DetectorParts(
        backbone=ResNetC4(resnet),
        anchor_generator=AnchorGenerator((tuple(cfg.rpn_anchor_sizes),), (tuple(cfg.rpn_aspect_ratios),)),
        roi_pool=MultiScaleRoIAlign(["0"], output_size=14, sampling_ratio=2),
        box_features=box_features,
        feature_dim=2048,
    )


def _freeze_resnet(resnet: nn.Module, trainable_layers: int) -> None:
    """Train the top `trainable_layers` stages (layer4 down to conv1 + bn1), as torchvision's detectors."""
    train = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        train.append("bn1")
    for name, param in resnet.named_parameters():
        if not any(name.startswith(stage) for stage in train):
            param.requires_grad_(False)


def build_resnet_fpn(cfg: ModelConfig) -> DetectorParts:
    """ResNet-18/34/50 + FPN (ModelConfig.fpn_channels, 5 levels), 7x7 multi-level RoIAlign, flattened
    (fpn_channels * 7 * 7).

    torchvision's FPN (as fasterrcnn_resnet50_fpn: layer1-4 and a max-pooled level), over a network
    built here so that no weights are downloaded and the normalisation is ours.
    """
    resnet = _resnet(cfg)
    _freeze_resnet(resnet, cfg.trainable_layers)
    stage2 = resnet.inplanes // 8  # layer1's output width (64 for ResNet-18/34, 256 for ResNet-50)
    backbone = BackboneWithFPN(
        resnet,
        return_layers={f"layer{i}": str(i - 1) for i in range(1, 5)},
        in_channels_list=[stage2 * 2 ** (i - 1) for i in range(1, 5)],
        out_channels=cfg.fpn_channels,
        extra_blocks=LastLevelMaxPool(),
    )
    return DetectorParts(
        backbone=backbone,
        anchor_generator=_fpn_anchor_generator(cfg, 5),
        roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], output_size=7, sampling_ratio=2),
        box_features=nn.Flatten(),
        feature_dim=cfg.fpn_channels * 7 * 7,
    )


def build_mobilenet_fpn(cfg: ModelConfig) -> DetectorParts:
    """MobileNetV3-Large + FPN on its last two stages (256 channels, 3 levels with the pooled one), as
    torchvision's fasterrcnn_mobilenet_v3_large_fpn; 7x7 RoIAlign over the two stages, flattened."""
    network = _load_weights(mobilenet_v3_large(weights=None, norm_layer=_norm_layer(cfg)), cfg)
    # The extractor counts trainable blocks over MobileNet's 6 stages; our 0..5 scale maps onto it.
    backbone = _mobilenet_extractor(network, True, min(6, cfg.trainable_layers + (cfg.trainable_layers == 5)))
    return DetectorParts(
        backbone=backbone,
        anchor_generator=_fpn_anchor_generator(cfg, 3),
        roi_pool=MultiScaleRoIAlign(["0", "1"], output_size=7, sampling_ratio=2),
        box_features=nn.Flatten(),
        feature_dim=256 * 7 * 7,
    )


BUILDERS: dict[str, Callable[[ModelConfig], DetectorParts]] = {
    "resnet50_c4": build_c4,
    "resnet18_fpn": build_resnet_fpn,
    "resnet34_fpn": build_resnet_fpn,
    "resnet50_fpn": build_resnet_fpn,
    "mobilenet_v3_large_fpn": build_mobilenet_fpn,
}

FPN_LEVELS = {"resnet18_fpn": 5, "resnet34_fpn": 5, "resnet50_fpn": 5, "mobilenet_v3_large_fpn": 3, "resnet50_c4": 1}
