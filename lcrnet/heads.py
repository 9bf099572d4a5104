"""The pose RoI head: classification over 2K+1 pose classes and anchor-specific 2D-3D regression.

Sec 3.2-3.4. Each estimate is two shared fully-connected layers followed by a classification layer
(2K+1 logits) and a regression layer ((2K+1) * 5J values, one 5J block per class, as the paper's
(K+1) * 5 * #joints; the background block is never trained). A refinement stage (sec 3.4, Fig. 4)
embeds the previous estimate (class probabilities and regression) in `refine_embed_dim` dimensions,
concatenates it with the RoI features, and makes a new estimate with the same layout. Losses are
applied to every estimate; the last one is used at test time.

Training-time sampling reuses torchvision's Matcher and BalancedPositiveNegativeSampler, as its
RoIHeads does for boxes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import _utils as det_utils

from .anchors import PoseAnchors
from .config import ModelConfig
from .loss import pose_head_loss
from .targets import PoseGroundTruth, decode, encode, label_proposals


def stage_loss_names(stage: int) -> tuple[str, str]:
    """Loss keys of estimate `stage`: 0 -> loss_pose_cls/reg, 1 -> ..._refine, s >= 2 -> ..._refine{s}."""
    suffix = "" if stage == 0 else "_refine" if stage == 1 else f"_refine{stage}"
    return f"loss_pose_cls{suffix}", f"loss_pose_reg{suffix}"


class PoseEstimate(nn.Module):
    """Two shared FC layers, then classification (C logits) and anchor-specific regression (C * 5J).

    With `shared_regression`, each class's regression is the sum of its own linear map and one map
    common to all classes (W_c + W_shared). That is the same family of functions as the paper's
    per-class layer (the sum of two linear maps is one), but the common part learns from every
    positive proposal rather than from those of one class only: what all classes share (a proposal box
    shifted or scaled against the person moves every joint alike, whatever the anchor) is learnt
    about 2K times faster.
    """

    def __init__(
        self, in_dim: int, fc_dim: int, num_classes: int, reg_dim: int, shared_regression: bool = False
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.fc1 = nn.Linear(in_dim, fc_dim)
        self.fc2 = nn.Linear(fc_dim, fc_dim)
        self.cls_logits = nn.Linear(fc_dim, num_classes)
        self.pose_reg = nn.Linear(fc_dim, num_classes * reg_dim)
        self.shared_reg = nn.Linear(fc_dim, reg_dim) if shared_regression else None
        # Small initial outputs (Detectron's Fast R-CNN init): uniform class scores, poses at the anchors.
        nn.init.normal_(self.cls_logits.weight, std=0.01)
        nn.init.zeros_(self.cls_logits.bias)
        for reg in (self.pose_reg, self.shared_reg):
            if reg is not None:
                nn.init.normal_(reg.weight, std=0.001)
                nn.init.zeros_(reg.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, in_dim) -> logits (S, C), regression (S, C * 5J)."""
        x = F.relu(self.fc2(F.relu(self.fc1(x))))
        regression = self.pose_reg(x)
        if self.shared_reg is not None:
            regression = regression + self.shared_reg(x).repeat(1, self.num_classes)
        return self.cls_logits(x), regression


class PoseRefinement(nn.Module):
    """One iterative-estimation step (sec 3.4): embed the previous estimate, join it to the RoI features."""

    def __init__(
        self,
        feature_dim: int,
        embed_dim: int,
        fc_dim: int,
        num_classes: int,
        reg_dim: int,
        shared_regression: bool = False,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(num_classes * (1 + reg_dim), embed_dim)
        self.estimate = PoseEstimate(embed_dim + feature_dim, fc_dim, num_classes, reg_dim, shared_regression)

    def forward(
        self, features: torch.Tensor, logits: torch.Tensor, regression: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """features (S, D), previous logits (S, C) and regression (S, C * 5J) -> new (logits, regression)."""
        # A fixed-size representation of the previous estimate, independent of K (sec 3.4).
        embedded = F.relu(self.embed(torch.cat([logits.softmax(dim=1), regression], dim=1)))
        return self.estimate(torch.cat([embedded, features], dim=1))


class PoseRoIHeads(nn.Module):
    """RoI pooling, RoI feature extractor, first estimate and refinements; sampling, losses, decoding.

    Args:
        box_roi_pool: torchvision MultiScaleRoIAlign over the backbone's feature maps.
        box_features: pooled (S, C, h, w) -> (S, feature_dim) vectors (res5 + average pool for C4,
            flatten for FPN).
        feature_dim: D, the size of those vectors.
        anchors: the anchor-poses (classes, targets, decoding).
        cfg: model configuration (sampling, head widths, refinements, inference thresholds).
    """

    def __init__(
        self,
        *,
        box_roi_pool: nn.Module,
        box_features: nn.Module,
        feature_dim: int,
        anchors: PoseAnchors,
        cfg: ModelConfig,
    ) -> None:
        super().__init__()
        self.box_roi_pool = box_roi_pool
        self.box_features = box_features
        self.anchors = anchors
        self.matcher = det_utils.Matcher(cfg.box_fg_iou_thresh, cfg.box_bg_iou_thresh, allow_low_quality_matches=False)
        self.sampler = det_utils.BalancedPositiveNegativeSampler(cfg.box_batch_size_per_image, cfg.box_positive_fraction)
        num_classes, reg_dim = anchors.num_classes, 5 * anchors.num_joints
        shared = cfg.shared_regression
        self.stages = nn.ModuleList(
            [PoseEstimate(feature_dim, cfg.head_fc_dim, num_classes, reg_dim, shared)]
            + [
                PoseRefinement(feature_dim, cfg.refine_embed_dim, cfg.head_fc_dim, num_classes, reg_dim, shared)
                for _ in range(cfg.refine_iters)
            ]
        )
        self.reg_scale = cfg.reg_scale
        self.smooth_l1_beta = cfg.smooth_l1_beta
        self.score_thresh = cfg.score_thresh
        self.pre_integration_top_n = cfg.pre_integration_top_n

    def loss_names(self) -> list[str]:
        """The loss keys this head returns in training, in order."""
        return [name for s in range(len(self.stages)) for name in stage_loss_names(s)]

    def select_training_samples(
        self, proposals: list[torch.Tensor], gts: list[PoseGroundTruth]
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Label proposals (GT boxes added, as torchvision does), sample them, encode their targets.

        Args:
            proposals: per image (P_i, 4) px boxes from the RPN.
            gts: per image ground truth.

        Returns:
            sampled proposals per image (S_i, 4); labels (S,) int64 over the batch; targets (S, 5J).
        """
        labelled = []
        for props, gt in zip(proposals, gts):
            props = torch.cat([props, gt.boxes.to(props.dtype)])
            labels, matched = label_proposals(props, gt, self.matcher)
            labelled.append((props, labels, matched))
        pos_masks, neg_masks = self.sampler([labels for _, labels, _ in labelled])
        sampled, all_labels, all_targets = [], [], []
        for (props, labels, matched), pos, neg, gt in zip(labelled, pos_masks, neg_masks, gts):
            keep = torch.where(pos | neg)[0]
            props, labels, matched = props[keep], labels[keep], matched[keep]
            targets = torch.zeros((keep.numel(), 5 * self.anchors.num_joints), dtype=props.dtype, device=props.device)
            fg = torch.where(labels > 0)[0]
            if fg.numel() > 0:
                anchors_2d, anchors_3d = self.anchors.class_poses(labels[fg])
                g = matched[fg]
                targets[fg] = encode(
                    gt.poses_2d[g], gt.poses_3d[g], props[fg], anchors_2d, anchors_3d, self.reg_scale
                )
            sampled.append(props)
            all_labels.append(labels)
            all_targets.append(targets)
        return sampled, torch.cat(all_labels), torch.cat(all_targets)

    def forward(
        self,
        features: dict[str, torch.Tensor],
        proposals: list[torch.Tensor],
        image_sizes: list[tuple[int, int]],
        gts: list[PoseGroundTruth] | None = None,
    ) -> tuple[list[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
        """Run the head.

        Args:
            features: backbone feature maps.
            proposals: per image (P_i, 4) px boxes in network-input pixels.
            image_sizes: per image (H, W) after resizing.
            gts: per image ground truth; required in training mode.

        Returns:
            proposals: in eval mode, per image a dict of pose proposals with keys boxes (P, 4) px
                (the proposal box B), scores (P,), labels (P,) int64 in 1..2K, pose_2d (P, J, 2) px of
                the network input, pose_3d (P, J, 3) metres; empty list in training mode.
            losses: in training mode, loss_pose_cls / loss_pose_reg per estimate (see stage_loss_names).
        """
        labels = targets = None
        # Under autocast the RPN's boxes come out in half precision (0.5 px steps at 1000 px, and a
        # dtype clash with the float32 targets): labelling, encoding and decoding work in float32.
        proposals = [p.float() for p in proposals]
        if self.training:
            if gts is None:
                raise ValueError("ground truth is required in training mode")
            proposals, labels, targets = self.select_training_samples(proposals, gts)

        feats = self.box_features(self.box_roi_pool(features, proposals, image_sizes))
        estimates = [self.stages[0](feats)]
        for refine in self.stages[1:]:
            estimates.append(refine(feats, *estimates[-1]))

        if self.training:
            assert labels is not None and targets is not None
            losses: dict[str, torch.Tensor] = {}
            for s, (logits, regression) in enumerate(estimates):
                cls_name, reg_name = stage_loss_names(s)
                losses[cls_name], losses[reg_name] = pose_head_loss(
                    logits, regression, labels, targets, self.smooth_l1_beta
                )
            return [], losses
        logits, regression = estimates[-1]
        return self.pose_proposals(logits, regression, proposals), {}

    def pose_proposals(
        self, logits: torch.Tensor, regression: torch.Tensor, proposals: list[torch.Tensor]
    ) -> list[dict[str, torch.Tensor]]:
        """Every (box, pose class) pair above score_thresh, decoded, as the paper's N x K pose proposals (sec 3.1).

        Args:
            logits: (P, C) for the proposals of all images.
            regression: (P, C * 5J).
            proposals: per image (P_i, 4) px.

        Returns:
            per image dict (keys as in `forward`), highest scores first, at most pre_integration_top_n.
        """
        num_classes = logits.shape[1]
        probs = logits.softmax(dim=1)[:, 1:]  # drop background
        per_class = regression.reshape(logits.shape[0], num_classes, -1)
        results = []
        start = 0
        for boxes in proposals:
            stop = start + boxes.shape[0]
            flat = probs[start:stop].flatten()
            idx = torch.where(flat > self.score_thresh)[0]
            scores, order = flat[idx].sort(descending=True)
            idx = idx[order][: self.pre_integration_top_n]
            scores = scores[: self.pre_integration_top_n]
            box_idx = idx // (num_classes - 1)
            labels = idx % (num_classes - 1) + 1
            anchors_2d, anchors_3d = self.anchors.class_poses(labels)
            pose_2d, pose_3d = decode(
                per_class[start:stop][box_idx, labels], boxes[box_idx], anchors_2d, anchors_3d, self.reg_scale
            )
            results.append(
                {"boxes": boxes[box_idx], "scores": scores, "labels": labels, "pose_2d": pose_2d, "pose_3d": pose_3d}
            )
            start = stop
        return results
