"""LCR-Net++: localisation (RPN), classification over anchor-poses and 2D-3D regression, end to end.

Composed from torchvision detection parts as torchvision's keypoint_rcnn composes FasterRCNN:
GeneralizedRCNNTransform, a ResNet-50 backbone (lcrnet/backbone.py), RegionProposalNetwork, and
the pose RoI head (lcrnet/heads.py). At inference the pose proposals are rescored (eq. 6) and
integrated by PPI or NMS (lcrnet/postprocess.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from posebank.skeleton import get_skeleton

from .anchors import PoseAnchors
from .backbone import BUILDERS
from .config import ModelConfig
from .heads import PoseRoIHeads
from .joint_heatmaps import JointHeatmapLoss
from .poses import centre_poses, from_box_coords, pose_boxes
from .postprocess import integrate, rescore
from .targets import PoseGroundTruth, build_ground_truth

OUTPUT_KEYS = ("boxes", "scores", "labels", "pose_2d", "pose_3d")


class LCRNet(nn.Module):
    """LCR-Net++ multi-person 2D+3D pose detector.

    Input images are a list of (3, H, W) float tensors in [0, 1], RGB, of any sizes.

    Targets (training), one dict per image, N people (N may be 0):
        - pose_2d (FloatTensor[N, J, 2]): joint positions in pixels of the input image, origin at the
          top-left corner, completed (every joint finite, missing ones filled by posebank's matching).
        - visible (BoolTensor[N, J]): True where the joint is annotated in the source. A person with
          no annotated joint is ignored; one with an annotated ankle or knee also gets a full-body box.
        - pose_3d (FloatTensor[N, J, 3]): metres, camera frame (x right, y down, z forward); it is
          re-centred on the body centre (mean of hips and shoulders).
        - boxes (FloatTensor[N, 4]): not required and ignored; the pose boxes are always derived
          from pose_2d (joints' box + margin, sec 3.1) so that boxes and poses cannot disagree.
        - ignore_boxes (FloatTensor[I, 4], optional): x0, y0, x1, y1 px of people who are not
          training targets (no pseudo-3D pose); proposals on them are not sampled as background
          (lcrnet/targets.py). Other keys (image_id, head_size, ...) are ignored.

    Training returns a dict of scalar losses: loss_objectness, loss_rpn_box_reg (torchvision RPN),
    loss_pose_cls, loss_pose_reg (first estimate), then loss_pose_cls_refine, loss_pose_reg_refine
    for the first refinement and loss_pose_cls_refine{s}, loss_pose_reg_refine{s} for refinement
    s >= 2 (see `loss_names`), and loss_joint_heatmap when ModelConfig.joint_heatmap_weight > 0 (an auxiliary
    loss on the finest feature map, lcrnet/joint_heatmaps.py). The training loss is their sum.

    Inference returns one dict per image:
        - boxes (FloatTensor[M, 4]): x0, y0, x1, y1 px of the input image, the pose box (joints'
          box + margin) of pose_2d; it can extend past the image for hallucinated legs.
        - scores (FloatTensor[M]): rescored classification score (NMS, none) or the mode's sum of
          scores (PPI), highest first.
        - labels (Int64Tensor[M]): pose class in 1..2K (K+1..2K: upper-body anchor classes).
        - pose_2d (FloatTensor[M, J, 2]): px of the input image.
        - pose_3d (FloatTensor[M, J, 3]): metres, body-centred, camera frame (x right, y down, z forward).
    """

    def __init__(
        self,
        *,
        transform: GeneralizedRCNNTransform,
        backbone: nn.Module,
        rpn: RegionProposalNetwork,
        roi_heads: PoseRoIHeads,
        cfg: ModelConfig,
        joint_heatmaps: JointHeatmapLoss | None = None,
    ) -> None:
        super().__init__()
        self.transform = transform
        self.joint_heatmaps = joint_heatmaps
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads
        self.cfg = cfg
        self.skeleton = get_skeleton(cfg.skeleton)
        # Eval mode: True returns each image's raw pose proposals (before rescoring and integration),
        # which `candidates` / `integrate` / `postprocess` turn into detections (evaluation compares
        # several integrations of the same proposals).
        self.return_raw_proposals = False

    @property
    def anchors(self) -> PoseAnchors:
        """The anchor-poses (buffers of the pose head)."""
        return self.roi_heads.anchors

    def loss_names(self) -> list[str]:
        """The keys of the training loss dict, in order."""
        aux = ["loss_joint_heatmap"] if self.joint_heatmaps is not None else []
        return ["loss_objectness", "loss_rpn_box_reg", *self.roi_heads.loss_names(), *aux]

    def forward(
        self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None
    ) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        """Losses (training) or detections (eval); see the class docstring for the formats."""
        if self.training and targets is None:
            raise ValueError("targets are required in training mode")
        image_list, _ = self.transform(images)
        scales = input_scales(images, image_list)
        gts = self._ground_truth(targets, scales) if self.training and targets is not None else None
        features = self.backbone(image_list.tensors)
        rpn_targets = [{"boxes": gt.boxes} for gt in gts] if gts is not None else None
        proposals, rpn_losses = self.rpn(image_list, features, rpn_targets)
        pose_proposals, head_losses = self.roi_heads(features, proposals, image_list.image_sizes, gts)
        if self.training:
            losses = {**rpn_losses, **head_losses}
            if self.joint_heatmaps is not None:  # targets: checked above (training needs them)
                finest = next(iter(features.values()))
                stride = image_list.tensors.shape[-1] / finest.shape[-1]
                poses = [t["pose_2d"].float() * s for t, s in zip(targets, scales)]
                loss = self.joint_heatmaps(finest, stride, poses, [t["visible"] for t in targets])
                losses["loss_joint_heatmap"] = self.cfg.joint_heatmap_weight * loss
            return losses
        raw = [
            {**p, "scale": s, "image_size": torch.tensor([img.shape[-2], img.shape[-1]])}
            for p, s, img in zip(pose_proposals, scales, images)
        ]
        if self.return_raw_proposals:
            return raw
        return [self.postprocess(r) for r in raw]

    def _ground_truth(self, targets: list[dict[str, torch.Tensor]], scales: list[torch.Tensor]) -> list[PoseGroundTruth]:
        gts = []
        for i, (t, scale) in enumerate(zip(targets, scales)):
            missing = {"pose_2d", "visible", "pose_3d"} - set(t)
            if missing:
                raise ValueError(f"target {i} lacks {', '.join(sorted(missing))}")
            j = self.cfg.num_joints
            if t["pose_2d"].dim() != 3 or t["pose_2d"].shape[1:] != (j, 2):
                raise ValueError(f"target {i}: pose_2d must be (N, {j}, 2), got {tuple(t['pose_2d'].shape)}")
            ignore = t.get("ignore_boxes")
            gts.append(
                build_ground_truth(
                    t["pose_2d"].float() * scale,
                    t["visible"],
                    t["pose_3d"].float(),
                    self.anchors,
                    self.skeleton,
                    self.cfg.box_margin,
                    ignore.float().reshape(-1, 4) * scale.repeat(2) if ignore is not None else None,
                )
            )
        return gts

    def candidates(self, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One image's raw pose proposals -> rescored candidates in input pixels, before integration.

        Rescoring (eq. 6) works in network pixels (sigma_b is a network-pixel length), then the poses
        go back to input pixels and the 3D poses are centred (the regression only approximately keeps
        the anchor's body centre; the output contract is exact).

        Args:
            raw: with return_raw_proposals, one image's dict: boxes (P, 4) proposal boxes, scores (P,),
                labels (P,), pose_2d (P, J, 2) network px, pose_3d (P, J, 3) m, scale (2,) input ->
                network px, image_size (2,) input (H, W).

        Returns:
            dict with pose_2d (P, J, 2) input px, pose_3d (P, J, 3) m body-centred, scores (P,), labels (P,),
            upper (P,) bool (upper-body classes), sorted by score.
        """
        scores = raw["scores"]
        if self.cfg.rescore:
            scores = rescore(scores, raw["pose_2d"], raw["boxes"], self.cfg.sigma_b_px)
        order = scores.argsort(descending=True, stable=True)
        return {
            "pose_2d": (raw["pose_2d"] / raw["scale"])[order],
            "pose_3d": centre_poses(raw["pose_3d"], self.skeleton.torso)[order],
            "scores": scores[order],
            "labels": raw["labels"][order],
            "upper": (raw["labels"] > self.anchors.num_anchors)[order],
        }

    def integrate(self, candidates: dict[str, torch.Tensor], image_size: tuple[int, int], **overrides: Any) -> dict[str, torch.Tensor]:
        """Candidates (`candidates`) -> people, by the config's integration (or `method=...`, `ppi_config=...`)."""
        cfg = self.cfg
        args: dict[str, Any] = {"method": cfg.integration, "nms_iou_thresh": cfg.nms_iou_thresh, "ppi_config": cfg.ppi_config()}
        args.update(overrides)
        c = candidates
        return integrate(c["pose_2d"], c["pose_3d"], c["scores"], c["labels"], c["upper"], image_size=image_size,
                         skeleton=self.skeleton, margin=cfg.box_margin, **args)  # fmt: skip

    def postprocess(self, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One image's raw proposals -> its detections (the eval-mode output; class docstring)."""
        h, w = (int(v) for v in raw["image_size"])
        merged = self.integrate(self.candidates(raw), (h, w))
        top = self.cfg.detections_per_img
        pose_2d, pose_3d = merged["pose_2d"][:top], merged["pose_3d"][:top]
        return {
            "boxes": pose_boxes(pose_2d, self.cfg.box_margin),
            "scores": merged["scores"][:top],
            "labels": merged["labels"][:top],
            "pose_2d": pose_2d,
            "pose_3d": pose_3d,
        }


def anchor_only_proposals(raw: dict[str, torch.Tensor], anchors: PoseAnchors) -> dict[str, torch.Tensor]:
    """The anchor-only baseline of raw proposals: each pose is its class's anchor-pose placed in the
    proposal box, as if the last regression output zeros (same boxes, classes and class scores)."""
    device = raw["boxes"].device  # evaluation keeps proposals on the CPU, the anchors stay with the model
    anchors_2d, anchors_3d = (a.to(device) for a in anchors.class_poses(raw["labels"].to(anchors.poses_3d.device)))
    return {**raw, "pose_2d": from_box_coords(anchors_2d, raw["boxes"]), "pose_3d": anchors_3d}


def input_scales(images: list[torch.Tensor], image_list: ImageList) -> list[torch.Tensor]:
    """(sx, sy) per image: input pixels -> network-input pixels, after the model's resizing transform."""
    return [
        torch.tensor([new[1] / img.shape[-1], new[0] / img.shape[-2]], device=image_list.tensors.device)
        for new, img in zip(image_list.image_sizes, images)
    ]


def build_model(cfg: ModelConfig, anchors: PoseAnchors) -> LCRNet:
    """Build LCR-Net++ from a config and anchor-poses (K and J must match the config).

    Args:
        cfg: model configuration.
        anchors: K anchor-poses for `cfg.skeleton` (lcrnet.anchors.PoseAnchors).

    Returns:
        LCRNet in training mode; weights are random except a backbone loaded from cfg.backbone_weights.
    """
    if anchors.num_anchors != cfg.num_anchors or anchors.num_joints != cfg.num_joints:
        raise ValueError(
            f"anchors are K={anchors.num_anchors}, J={anchors.num_joints}; "
            f"the config wants K={cfg.num_anchors}, J={cfg.num_joints}"
        )
    parts = BUILDERS[cfg.backbone](cfg)
    rpn = RegionProposalNetwork(
        parts.anchor_generator,
        RPNHead(parts.backbone.out_channels, parts.anchor_generator.num_anchors_per_location()[0]),
        fg_iou_thresh=cfg.rpn_fg_iou_thresh,
        bg_iou_thresh=cfg.rpn_bg_iou_thresh,
        batch_size_per_image=cfg.rpn_batch_size_per_image,
        positive_fraction=cfg.rpn_positive_fraction,
        pre_nms_top_n={"training": cfg.rpn_pre_nms_top_n_train, "testing": cfg.rpn_pre_nms_top_n_test},
        post_nms_top_n={"training": cfg.rpn_post_nms_top_n_train, "testing": cfg.rpn_post_nms_top_n_test},
        nms_thresh=cfg.rpn_nms_thresh,
    )
    roi_heads = PoseRoIHeads(
        box_roi_pool=parts.roi_pool,
        box_features=parts.box_features,
        feature_dim=parts.feature_dim,
        anchors=anchors,
        cfg=cfg,
    )
    transform = GeneralizedRCNNTransform(
        min_size=cfg.min_size, max_size=cfg.max_size, image_mean=list(cfg.image_mean), image_std=list(cfg.image_std)
    )
    joint_heatmaps = (
        JointHeatmapLoss(parts.backbone.out_channels, cfg.num_joints) if cfg.joint_heatmap_weight > 0 else None
    )
    return LCRNet(transform=transform, backbone=parts.backbone, rpn=rpn, roi_heads=roi_heads, cfg=cfg,
                  joint_heatmaps=joint_heatmaps)  # fmt: skip
